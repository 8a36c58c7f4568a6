-- Version 2 is reserved for a change made beside this one (the key's
-- name); this file only keeps the versions in sequence until that change
-- is merged, when it is replaced by that change's own 0002.
SELECT 1;
