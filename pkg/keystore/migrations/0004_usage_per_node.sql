-- Usage per node: each apiserver adds its own counts to its own row, so
-- replicas never write the same row; a key's usage is the sum of its rows
-- and its last use the latest. What the key table held moves to the node
-- '' (before nodes had names).
CREATE TABLE key_usage (
    key_id         INTEGER NOT NULL,
    node           TEXT    NOT NULL,
    last_used_at   INTEGER, -- unix nanoseconds
    last_used_addr TEXT,
    requests       INTEGER NOT NULL DEFAULT 0,
    points         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, node)
) WITHOUT ROWID;

INSERT INTO key_usage (key_id, node, last_used_at, last_used_addr, requests, points)
    SELECT id, '', last_used_at, last_used_addr, request_count, point_count FROM api_keys
    WHERE last_used_at IS NOT NULL OR request_count > 0 OR point_count > 0;

ALTER TABLE api_keys DROP COLUMN last_used_at;
ALTER TABLE api_keys DROP COLUMN last_used_addr;
ALTER TABLE api_keys DROP COLUMN request_count;
ALTER TABLE api_keys DROP COLUMN point_count;

-- The node (apiserver --node-name) through which a change was made; empty
-- for keyctl, whose actor names its host.
ALTER TABLE audit_log ADD COLUMN node TEXT NOT NULL DEFAULT '';
