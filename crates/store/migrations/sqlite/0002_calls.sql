-- Calls, their events, and one delivery per event and channel. An event, the call state it
-- produced and its deliveries are always written in one transaction.

CREATE TABLE calls (
    call_uuid              TEXT PRIMARY KEY,
    auth_id                TEXT NOT NULL REFERENCES accounts (auth_id),
    direction              TEXT NOT NULL,
    from_number            TEXT NOT NULL,
    to_number              TEXT NOT NULL,
    engine                 TEXT NOT NULL,
    -- No foreign keys: a call keeps the ids it was placed with after the app or trunk is deleted.
    app_id                 TEXT,
    trunk_id               TEXT,
    status_url             TEXT,
    status_method          TEXT,
    ring_url               TEXT,
    ring_method            TEXT,
    answer_url             TEXT,
    answer_method          TEXT,
    hangup_url             TEXT,
    hangup_method          TEXT,
    time_limit             INTEGER NOT NULL,
    ring_timeout           INTEGER NOT NULL,
    record                 INTEGER NOT NULL,
    call_status            TEXT NOT NULL,
    initiated_at           INTEGER NOT NULL,
    ringing_at             INTEGER,
    answered_at            INTEGER,
    ended_at               INTEGER,
    hangup_cause           TEXT,
    hangup_source          TEXT,
    recording_id           TEXT,
    recording_url          TEXT,
    recording_duration_ms  INTEGER,
    recording_end_reason   TEXT,
    last_sequence          INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX calls_by_account ON calls (auth_id, initiated_at, call_uuid);
CREATE INDEX calls_unfinished ON calls (engine, call_status);

CREATE TABLE events (
    event_id     TEXT PRIMARY KEY,
    call_uuid    TEXT NOT NULL REFERENCES calls (call_uuid),
    auth_id      TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    event        TEXT NOT NULL,
    call_status  TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    -- The callback's form fields, [[name, value], …] in wire order, fixed when the event happened.
    fields       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (call_uuid, sequence)
);

CREATE TABLE deliveries (
    delivery_id      INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (event_id),
    call_uuid        TEXT NOT NULL,
    auth_id          TEXT NOT NULL,
    sequence         INTEGER NOT NULL,
    event            TEXT NOT NULL,
    channel          TEXT NOT NULL,
    level            TEXT,
    reason           TEXT NOT NULL,
    url              TEXT,
    method           TEXT NOT NULL,
    fallback_url     TEXT,
    status           TEXT NOT NULL,
    delivered_to     TEXT,
    next_attempt_at  INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (event_id, channel)
);
CREATE INDEX deliveries_by_call ON deliveries (call_uuid, sequence, channel);
CREATE INDEX deliveries_by_account ON deliveries (auth_id, created_at);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE idempotency_keys (
    auth_id       TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (auth_id, key)
);

-- What drives calls placed through a trunk: the simulated carrier or a real switch.
ALTER TABLE trunks ADD COLUMN engine TEXT NOT NULL DEFAULT 'simulated';
