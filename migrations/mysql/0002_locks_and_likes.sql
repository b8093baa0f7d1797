-- Locks and likes (MySQL / MariaDB). Logically identical to migrations/sqlite/0002_locks_and_likes.sql.
-- lock_tokens: the last fencing token issued by the MySQL lock tier per lock name (lock_fences holds the
-- last token a writer presented; the two are different sides of the fence).
CREATE TABLE IF NOT EXISTS lock_tokens (
    lock_name    VARCHAR(191) NOT NULL PRIMARY KEY,
    last_issued  BIGINT NOT NULL
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
