-- The delivery queue: leases, the current target (primary or fallback), attempt counters, and
-- every attempt made.

ALTER TABLE deliveries ADD COLUMN target TEXT NOT NULL DEFAULT 'primary';
-- Attempts on the current target (the retry budget is per URL).
ALTER TABLE deliveries ADD COLUMN target_attempts INTEGER NOT NULL DEFAULT 0;
-- Every attempt of the delivery: primary, fallback and redeliveries (X-Hookline-Attempt).
ALTER TABLE deliveries ADD COLUMN attempt_count INTEGER NOT NULL DEFAULT 0;
-- A worker holds the delivery until then; an expired lease is claimable again.
ALTER TABLE deliveries ADD COLUMN leased_until INTEGER;

-- Ordering: a delivery waits while an earlier event of its call to the same URL is pending.
CREATE INDEX deliveries_pending_by_destination ON deliveries (call_uuid, url, sequence) WHERE status = 'pending';

CREATE TABLE attempts (
    attempt_id   INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries (delivery_id),
    attempt      INTEGER NOT NULL,
    target       TEXT NOT NULL,
    url          TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    latency_ms   INTEGER NOT NULL,
    status_code  INTEGER,
    -- timeout, connect, tls, dns, blocked, status; NULL on success.
    error        TEXT,
    -- The delay a 429/503 asked for, in ms, when it did.
    retry_after_ms INTEGER
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, attempt);
