-- Initial schema (MySQL / MariaDB). Logically identical to migrations/sqlite/0001_initial.sql.
CREATE TABLE IF NOT EXISTS characters (
    name        VARCHAR(64) NOT NULL PRIMARY KEY,
    ocid        VARCHAR(128) NULL,
    world       VARCHAR(64) NULL,
    class       VARCHAR(64) NULL,
    level       INT NULL,
    image       TEXT NULL,
    fetched_at  BIGINT NOT NULL,
    like_count  BIGINT NOT NULL DEFAULT 0
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE IF NOT EXISTS equipment_snapshots (
    ocid        VARCHAR(128) NOT NULL,
    data_date   VARCHAR(10) NOT NULL,
    payload     LONGBLOB NOT NULL,
    fetched_at  BIGINT NOT NULL,
    PRIMARY KEY (ocid, data_date)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE IF NOT EXISTS character_likes (
    character_name VARCHAR(64) NOT NULL,
    liker          VARCHAR(64) NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (character_name, liker)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE IF NOT EXISTS lock_fences (
    lock_name   VARCHAR(191) NOT NULL PRIMARY KEY,
    last_token  BIGINT NOT NULL
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE IF NOT EXISTS applied_entries (
    entry_id    VARCHAR(128) NOT NULL PRIMARY KEY,
    applied_at  BIGINT NOT NULL
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
