-- Keys as code: as ../0005_key_names.sql does for SQLite, a key's name,
-- unique among the keys not revoked, and what made and owns the key.
ALTER TABLE api_keys ADD COLUMN name text;
ALTER TABLE api_keys ADD COLUMN managed_by text NOT NULL DEFAULT '';

CREATE UNIQUE INDEX api_keys_name_unique ON api_keys(name) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_name ON api_keys(name);
CREATE INDEX api_keys_managed_by ON api_keys(managed_by);
