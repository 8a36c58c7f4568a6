-- The audit trail: one row per change to a key, written in the same
-- transaction as the change. It never holds a key's value or hash. key_id is
-- not a foreign key, so the log outlives any future clean-up of old keys.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL, -- unix nanoseconds
    actor   TEXT    NOT NULL,
    key_id  INTEGER,
    action  TEXT    NOT NULL,
    detail  TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_key_id ON audit_log(key_id);
