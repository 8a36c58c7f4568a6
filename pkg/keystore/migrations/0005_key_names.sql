-- Keys as code: a key may have a name, unique among the keys not revoked
-- (a revoked key keeps its name in the record, and the name is free for a
-- new key), and managed_by says what made the key and owns it: 'apply'
-- for keyctl apply, whose --prune revokes only the keys it made; empty for
-- keys made one at a time.
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN managed_by TEXT NOT NULL DEFAULT '';

CREATE UNIQUE INDEX api_keys_name_unique ON api_keys(name) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_name ON api_keys(name);
CREATE INDEX api_keys_managed_by ON api_keys(managed_by);
