-- A key imported from the original database whose value is not a UUID is
-- stored with no display prefix: such a value may be short, so its first 8
-- characters could be most or all of it. Version 1 kept them; this clears
-- every prefix that cannot be the start of a UUID. migrate.go then clears
-- the 8-character ones that are a whole key (whose SHA-256 is the key's).
UPDATE api_keys SET prefix = ''
WHERE length(prefix) <> 8 OR prefix GLOB '*[^0-9a-fA-F]*';
