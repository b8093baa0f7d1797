-- Initial schema (SQLite). Logically identical to migrations/mysql/0001_initial.sql.
CREATE TABLE IF NOT EXISTS characters (
    name        TEXT PRIMARY KEY NOT NULL,
    ocid        TEXT,
    world       TEXT,
    class       TEXT,
    level       INTEGER,
    image       TEXT,
    fetched_at  INTEGER NOT NULL,
    like_count  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS equipment_snapshots (
    ocid        TEXT NOT NULL,
    data_date   TEXT NOT NULL,
    payload     BLOB NOT NULL,
    fetched_at  INTEGER NOT NULL,
    PRIMARY KEY (ocid, data_date)
);

CREATE TABLE IF NOT EXISTS character_likes (
    character_name TEXT NOT NULL,
    liker          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (character_name, liker)
);

CREATE TABLE IF NOT EXISTS lock_fences (
    lock_name   TEXT PRIMARY KEY NOT NULL,
    last_token  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS applied_entries (
    entry_id    TEXT PRIMARY KEY NOT NULL,
    applied_at  INTEGER NOT NULL
);
