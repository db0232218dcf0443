-- A value sealed with the server key by the first node: every node must open it to start, so
-- two nodes with different `secret_key`s cannot both write to one database (each would seal
-- tokens and secrets the other cannot open), even when it holds no account yet.
CREATE TABLE hookline_key_check (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    sealed  BYTEA NOT NULL
);
