-- Callback configuration: accounts (level 4), applications (level 2), SIP trunks (level 3)
-- and signing secrets. Times are INTEGER microseconds since the Unix epoch (UTC); event
-- filters are JSON arrays kept as written.

CREATE TABLE accounts (
    auth_id                  TEXT PRIMARY KEY,
    name                     TEXT NOT NULL,
    timezone                 TEXT NOT NULL,
    default_callback_url     TEXT,
    default_callback_method  TEXT NOT NULL,
    default_callback_events  TEXT NOT NULL,
    parent_auth_id           TEXT REFERENCES accounts (auth_id),
    -- SHA-256 of the auth token, for authentication (compared in constant time).
    token_hash               BLOB NOT NULL,
    -- The token itself, sealed with the server key: Vobiz signatures are keyed by it.
    token_sealed             BLOB NOT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
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
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
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
    recording               INTEGER NOT NULL,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX trunks_by_account ON trunks (auth_id, created_at, trunk_id);

CREATE TABLE signing_secrets (
    secret_id      TEXT PRIMARY KEY,
    auth_id        TEXT NOT NULL REFERENCES accounts (auth_id),
    -- The secret bytes sealed with the server key: Standard Webhooks signatures need them.
    secret_sealed  BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX signing_secrets_by_account ON signing_secrets (auth_id, created_at);
