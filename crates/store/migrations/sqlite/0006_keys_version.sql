-- Counts the changes of an account's signing keys (token rotated, secret created or deleted),
-- in the transaction that makes them. A claim returns it with each delivery, so a process
-- that caches keys sees a change before it signs the next callback (no time window).
ALTER TABLE accounts ADD COLUMN keys_version INTEGER NOT NULL DEFAULT 0;
