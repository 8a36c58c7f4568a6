-- The key table. A key's plaintext is never stored: key_hash is the SHA-256 of
-- the key, prefix its first 8 characters for display. The policy and usage
-- columns are nullable so that later features need no redesign.
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash      BLOB    NOT NULL UNIQUE,
    prefix        TEXT    NOT NULL,
    hostname      TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    scopes        TEXT    NOT NULL DEFAULT 'submit',
    measurements  TEXT    NOT NULL DEFAULT '',
    rate          REAL,
    burst         INTEGER,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    expires_at    INTEGER,
    replaced_by   INTEGER REFERENCES api_keys(id),
    last_used_at  INTEGER,
    last_used_addr TEXT,
    request_count INTEGER NOT NULL DEFAULT 0,
    point_count   INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX api_keys_hostname ON api_keys(hostname);
