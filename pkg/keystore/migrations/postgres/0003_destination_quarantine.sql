-- A key's own destination and series budget, and its quarantine, as in
-- ../0006_destination_quarantine.sql. A quarantine is written through the
-- change log like any other change to a key, so every replica's cache
-- refuses the key's writes once one replica has quarantined it.
ALTER TABLE api_keys ADD COLUMN bucket text NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN max_series bigint;
ALTER TABLE api_keys ADD COLUMN quarantined_at bigint;
ALTER TABLE api_keys ADD COLUMN quarantine_reason text NOT NULL DEFAULT '';
