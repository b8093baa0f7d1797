-- Locks and likes (SQLite). Logically identical to migrations/mysql/0002_locks_and_likes.sql.
-- lock_tokens: the last fencing token issued by the MySQL lock tier per lock name (unused by the embedded
-- in-process tier, kept so both schemas stay the same).
CREATE TABLE IF NOT EXISTS lock_tokens (
    lock_name    TEXT PRIMARY KEY NOT NULL,
    last_issued  INTEGER NOT NULL
);
