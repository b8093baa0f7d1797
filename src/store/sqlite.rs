//! The SQLite backend (the embedded default): its connection, its migrations and the statements whose
//! text is its own.
//!
//! Contract: a WAL-mode database file (created with its parent directory), 4 connections, 5 s busy
//! timeout, `synchronous=FULL` on every connection; migrations from `migrations/sqlite` applied at
//! connect. FULL because a committed like batch is the moment the buffer and the journal let those
//! likes go: in WAL mode `NORMAL` does not fsync the WAL at commit, so a power loss could drop a batch
//! nothing else holds any more; `FULL` fsyncs the WAL at every commit (one fsync per sync batch of up to
//! `MAPLE_LIKE_SYNC_BATCH` likes, and one per snapshot write, which the embedded mode can afford). Upserts are `INSERT … ON CONFLICT
//! DO UPDATE`; the fence keeps `MAX` of the tokens. The like stage is a per-connection temporary table
//! from which the pairs already stored are deleted, so the totals are read back by name.
//!
//! Failure modes: a directory that cannot be created is [`StoreError::Setup`]; `SQLITE_BUSY` beyond the
//! busy timeout surfaces as a query error.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool};

use super::repo::{Dialect, Sql};
use super::{Backend, StoreError};

impl Dialect for Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
    const SQL: Sql = Sql {
        upsert_character: "INSERT INTO characters (name, ocid, world, class, level, image, fetched_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT(name) DO UPDATE SET ocid = excluded.ocid, world = excluded.world, \
             class = excluded.class, level = excluded.level, image = excluded.image, \
             fetched_at = excluded.fetched_at",
        set_ocid: "INSERT INTO characters (name, ocid, fetched_at) VALUES (?, ?, ?) \
             ON CONFLICT(name) DO UPDATE SET ocid = excluded.ocid, fetched_at = excluded.fetched_at",
        put_snapshot: "INSERT INTO equipment_snapshots (ocid, data_date, payload, fetched_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT(ocid, data_date) DO UPDATE SET payload = excluded.payload, fetched_at = excluded.fetched_at",
        present_fence: "INSERT INTO lock_fences (lock_name, last_token) VALUES (?, ?) \
             ON CONFLICT(lock_name) DO UPDATE SET last_token = MAX(last_token, excluded.last_token)",
        create_stage: "CREATE TEMP TABLE IF NOT EXISTS like_stage (\
             character_name TEXT NOT NULL, liker TEXT NOT NULL, created_at INTEGER NOT NULL, \
             PRIMARY KEY (character_name, liker))",
        drop_stored_pairs: "DELETE FROM like_stage WHERE EXISTS (SELECT 1 FROM character_likes c \
             WHERE c.character_name = like_stage.character_name AND c.liker = like_stage.liker)",
        insert_new_likes: "INSERT INTO character_likes (character_name, liker, created_at) \
             SELECT character_name, liker, created_at FROM like_stage",
        // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join constraint.
        count_new_likes: "INSERT INTO characters (name, fetched_at, like_count) \
             SELECT character_name, 0, COUNT(*) FROM like_stage WHERE true GROUP BY character_name \
             ON CONFLICT(name) DO UPDATE SET like_count = like_count + excluded.like_count",
        totals_from_stage: None,
    };

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Opens (creating the file and its parent directory) and applies the migrations.
pub(super) async fn connect(path: &Path) -> Result<SqlitePool, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Setup(format!("cannot create {}: {e}", parent.display())))?;
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(pool)
}
