-- The change log: a row for every change to a key, so a running gateway's
-- cache forgets only the keys that changed, not every key whenever anything
-- (usage, the audit log) commits to the file. Triggers write it, so every
-- writer logs its changes, whether or not it goes through the Store:
-- keyctl, the admin API, a script, an operator's sqlite3 shell. SQLite
-- serializes writers and AUTOINCREMENT never hands out an id again (a
-- rolled-back transaction gives its ids back), so ids follow commit order
-- without gaps and a cache reads the changes after the last one it applied.
CREATE TABLE key_changes (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id INTEGER NOT NULL
);

CREATE TRIGGER api_keys_insert_logged AFTER INSERT ON api_keys
BEGIN
    INSERT INTO key_changes (key_id) VALUES (NEW.id);
END;

-- A key whose id changes is logged under both: caches know it by the old.
CREATE TRIGGER api_keys_update_logged AFTER UPDATE ON api_keys
BEGIN
    INSERT INTO key_changes (key_id) VALUES (OLD.id);
    INSERT INTO key_changes (key_id) SELECT NEW.id WHERE NEW.id IS NOT OLD.id;
END;

CREATE TRIGGER api_keys_delete_logged AFTER DELETE ON api_keys
BEGIN
    INSERT INTO key_changes (key_id) VALUES (OLD.id);
END;

-- The log keeps the newest 10,000 changes. A cache further behind than
-- that finds the change after its last one gone, and forgets every key.
CREATE TRIGGER key_changes_pruned AFTER INSERT ON key_changes
BEGIN
    DELETE FROM key_changes WHERE id <= NEW.id - 10000;
END;
