-- The whole schema of the SQLite migrations 0001–0006, in PostgreSQL's types: the same
-- tables, column names and encodings (times are BIGINT microseconds since the Unix epoch,
-- event filters JSON arrays as text), so one set of row mappers reads both backends.

CREATE TABLE accounts (
    auth_id                  TEXT PRIMARY KEY,
    name                     TEXT NOT NULL,
    timezone                 TEXT NOT NULL,
    default_callback_url     TEXT,
    default_callback_method  TEXT NOT NULL,
    default_callback_events  TEXT NOT NULL,
    parent_auth_id           TEXT REFERENCES accounts (auth_id),
    -- SHA-256 of the auth token, for authentication (compared in constant time).
    token_hash               BYTEA NOT NULL,
    -- The token itself, sealed with the server key: Vobiz signatures are keyed by it.
    token_sealed             BYTEA NOT NULL,
    -- Counts changes of the signing keys; claims return it so caches are never stale.
    keys_version             BIGINT NOT NULL DEFAULT 0,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);

CREATE TABLE applications (
    app_id                 TEXT PRIMARY KEY,
    auth_id                TEXT NOT NULL REFERENCES accounts (auth_id),
    name                   TEXT NOT NULL,
    callback_url           TEXT,
    callback_method        TEXT NOT NULL,
    fallback_callback_url  TEXT,
    callback_events        TEXT NOT NULL,
    answer_url             TEXT,
    answer_method          TEXT NOT NULL,
    hangup_url             TEXT,
    hangup_method          TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX applications_by_account ON applications (auth_id, created_at, app_id);

CREATE TABLE trunks (
    trunk_id                TEXT PRIMARY KEY,
    auth_id                 TEXT NOT NULL REFERENCES accounts (auth_id),
    name                    TEXT NOT NULL,
    status_callback         TEXT,
    status_callback_method  TEXT NOT NULL,
    status_callback_events  TEXT NOT NULL,
    trunk_direction         TEXT NOT NULL,
    trunk_status            TEXT NOT NULL,
    termination_uri         TEXT,
    recording               BOOLEAN NOT NULL,
    engine                  TEXT NOT NULL DEFAULT 'simulated',
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX trunks_by_account ON trunks (auth_id, created_at, trunk_id);

CREATE TABLE signing_secrets (
    secret_id      TEXT PRIMARY KEY,
    auth_id        TEXT NOT NULL REFERENCES accounts (auth_id),
    -- The secret bytes sealed with the server key: Standard Webhooks signatures need them.
    secret_sealed  BYTEA NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX signing_secrets_by_account ON signing_secrets (auth_id, created_at);

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
    time_limit             BIGINT NOT NULL,
    ring_timeout           BIGINT NOT NULL,
    record                 BOOLEAN NOT NULL,
    call_status            TEXT NOT NULL,
    initiated_at           BIGINT NOT NULL,
    ringing_at             BIGINT,
    answered_at            BIGINT,
    ended_at               BIGINT,
    hangup_cause           TEXT,
    hangup_source          TEXT,
    recording_id           TEXT,
    recording_url          TEXT,
    recording_duration_ms  BIGINT,
    recording_end_reason   TEXT,
    last_sequence          BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX calls_by_account ON calls (auth_id, initiated_at, call_uuid);
CREATE INDEX calls_unfinished ON calls (engine, call_status);

CREATE TABLE events (
    event_id     TEXT PRIMARY KEY,
    call_uuid    TEXT NOT NULL REFERENCES calls (call_uuid),
    auth_id      TEXT NOT NULL,
    sequence     BIGINT NOT NULL,
    event        TEXT NOT NULL,
    call_status  TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    -- The callback's form fields, [[name, value], …] in wire order, fixed when the event happened.
    fields       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (call_uuid, sequence)
);

CREATE TABLE deliveries (
    delivery_id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (event_id),
    call_uuid        TEXT NOT NULL,
    auth_id          TEXT NOT NULL,
    sequence         BIGINT NOT NULL,
    event            TEXT NOT NULL,
    channel          TEXT NOT NULL,
    level            TEXT,
    reason           TEXT NOT NULL,
    url              TEXT,
    method           TEXT NOT NULL,
    fallback_url     TEXT,
    status           TEXT NOT NULL,
    delivered_to     TEXT,
    -- NULL on a pending delivery: it waits behind an earlier pending event of its call to the
    -- same URL, and that event's end gives it a due time.
    next_attempt_at  BIGINT,
    target           TEXT NOT NULL DEFAULT 'primary',
    target_attempts  BIGINT NOT NULL DEFAULT 0,
    attempt_count    BIGINT NOT NULL DEFAULT 0,
    -- A node holds the delivery until then; an expired lease is claimable again.
    leased_until     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (event_id, channel)
) WITH (fillfactor = 80);
CREATE INDEX deliveries_by_call ON deliveries (call_uuid, sequence, channel);
CREATE INDEX deliveries_by_account ON deliveries (auth_id, created_at);
-- Only pending rows: the claim's index stays as small as the queue, however long the history.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, delivery_id) WHERE status = 'pending';
-- The ordering rule (an earlier pending event of the call to the same URL) and the promotion of
-- the next waiting event look up exactly this; pending rows only, so it stays small too.
CREATE INDEX deliveries_pending_by_destination ON deliveries (call_uuid, url, sequence) WHERE status = 'pending';

CREATE TABLE attempts (
    attempt_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id    BIGINT NOT NULL REFERENCES deliveries (delivery_id),
    attempt        BIGINT NOT NULL,
    target         TEXT NOT NULL,
    url            TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    latency_ms     BIGINT NOT NULL,
    status_code    BIGINT,
    -- timeout, connect, tls, dns, blocked, status; NULL on success.
    error          TEXT,
    -- The delay a 429/503 asked for, in ms, when it did.
    retry_after_ms BIGINT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, attempt);

CREATE TABLE idempotency_keys (
    auth_id       TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    status        BIGINT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (auth_id, key)
);
