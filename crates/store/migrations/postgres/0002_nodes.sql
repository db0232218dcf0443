-- Nodes on this database and when each last said it was alive (the server's clock, so the
-- nodes' clocks need not agree). A claim names its node; the leases of a node that stopped
-- heartbeating are released by the others, so a crashed node's deliveries go out again within
-- seconds instead of at the end of their lease.
CREATE TABLE nodes (
    node_id  TEXT PRIMARY KEY,
    seen_at  BIGINT NOT NULL
);
ALTER TABLE deliveries ADD COLUMN leased_by TEXT;
