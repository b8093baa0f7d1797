//! The MySQL / MariaDB backend: its connection, its migrations and the statements whose text is its own.
//!
//! Contract: one pool (16 connections, 3 s acquire timeout); migrations from `migrations/mysql` applied at
//! connect while holding a named lock (`GET_LOCK`) on one pinned connection, so instances starting together
//! on a fresh database take turns (MySQL DDL is not transactional: two instances running the same migration
//! at once leave it "partially applied"). Upserts are `INSERT … ON DUPLICATE KEY UPDATE`; the fence keeps
//! `GREATEST` of the tokens. The like stage is a per-connection temporary MEMORY table (no undo or redo
//! work; it is emptied at the start of every batch, so it needs no transactionality) that keeps every pair
//! of the batch and marks the stored ones `fresh = 0`, so the totals are read back by one join.
//!
//! Failure modes: a bad URL or a migration lock held elsewhere for over 60 s is [`StoreError::Setup`]; an
//! unreachable server is [`StoreError::Unavailable`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlQueryResult};
use sqlx::{MySql, MySqlPool};

use super::repo::{Dialect, Sql};
use super::{Backend, StoreError};
use crate::config::RedactedUrl;

impl Dialect for MySql {
    const BACKEND: Backend = Backend::Mysql;
    const SQL: Sql = Sql {
        upsert_character: "INSERT INTO characters (name, ocid, world, class, level, image, fetched_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE ocid = VALUES(ocid), world = VALUES(world), \
             class = VALUES(class), level = VALUES(level), image = VALUES(image), \
             fetched_at = VALUES(fetched_at)",
        set_ocid: "INSERT INTO characters (name, ocid, fetched_at) VALUES (?, ?, ?) \
             ON DUPLICATE KEY UPDATE ocid = VALUES(ocid), fetched_at = VALUES(fetched_at)",
        put_snapshot: "INSERT INTO equipment_snapshots (ocid, data_date, payload, fetched_at) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE payload = VALUES(payload), fetched_at = VALUES(fetched_at)",
        present_fence: "INSERT INTO lock_fences (lock_name, last_token) VALUES (?, ?) \
             ON DUPLICATE KEY UPDATE last_token = GREATEST(last_token, VALUES(last_token))",
        create_stage: "CREATE TEMPORARY TABLE IF NOT EXISTS like_stage (\
             character_name VARCHAR(64) NOT NULL, liker VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL, \
             fresh TINYINT NOT NULL DEFAULT 1, PRIMARY KEY (character_name, liker)) \
             ENGINE=MEMORY CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        drop_stored_pairs: "UPDATE like_stage s JOIN character_likes c \
             ON c.character_name = s.character_name AND c.liker = s.liker SET s.fresh = 0",
        insert_new_likes: "INSERT INTO character_likes (character_name, liker, created_at) \
             SELECT character_name, liker, created_at FROM like_stage WHERE fresh = 1",
        count_new_likes: "INSERT INTO characters (name, fetched_at, like_count) \
             SELECT character_name, 0, COUNT(*) FROM like_stage WHERE fresh = 1 \
             GROUP BY character_name \
             ON DUPLICATE KEY UPDATE like_count = like_count + VALUES(like_count)",
        totals_from_stage: Some(
            "SELECT c.name, c.like_count FROM characters c \
             JOIN (SELECT DISTINCT character_name FROM like_stage) s ON s.character_name = c.name",
        ),
    };

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Connects (16 connections) and applies the migrations.
pub(super) async fn connect(url: &RedactedUrl) -> Result<MySqlPool, StoreError> {
    let opts = MySqlConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::Setup(format!("bad MySQL URL {}: {e}", url.redacted())))?;
    let pool = MySqlPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(opts)
        .await?;
    migrate_exclusively(&pool).await?;
    Ok(pool)
}

/// The pool without reaching the server (connections are made on first use); apply the migrations
/// with [`migrate_exclusively`] once the server answers.
pub(super) fn connect_lazy(url: &RedactedUrl) -> Result<MySqlPool, StoreError> {
    let opts = MySqlConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::Setup(format!("bad MySQL URL {}: {e}", url.redacted())))?;
    Ok(MySqlPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(opts))
}

/// Applies the migrations while holding a named lock on one pinned connection (see the module
/// documentation).
pub(super) async fn migrate_exclusively(pool: &MySqlPool) -> Result<(), StoreError> {
    const LOCK: &str = "maple_gateway_migrations";
    let mut conn = pool.acquire().await?;
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
        .bind(LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if got != Some(1) {
        conn.close_on_drop();
        return Err(StoreError::Setup(
            "another instance held the migration lock for over 60 s".into(),
        ));
    }
    let result = sqlx::migrate!("./migrations/mysql").run(&mut *conn).await;
    let released: Result<Option<i64>, _> = sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
        .bind(LOCK)
        .fetch_one(&mut *conn)
        .await;
    if released.is_err() {
        // Closing the session releases the lock for certain.
        conn.close_on_drop();
    }
    result?;
    Ok(())
}
