//! The SQLite [`Repository`] (the embedded default).
//!
//! Contract: a WAL-mode database file, 4 connections, 5 s busy timeout; migrations from
//! `migrations/sqlite` applied at connect. Likes follow the same transaction as the MySQL backend (fence
//! row first — it is also the first write, so the transaction takes SQLite's write lock at once and the
//! busy timeout applies — then batch id, staged pairs in a per-connection temporary table, insert and
//! count of the new ones).
//!
//! Failure modes: `SQLITE_BUSY` beyond the busy timeout surfaces as a query error; any error rolls the
//! transaction back.

use std::path::Path;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection, Row, SqlitePool};

use super::{
    AppliedBatch, Backend, CharacterRow, Fence, LikeBatch, Repository, STAGE_CHUNK, StoreError,
    StoreFuture, dedupe, now_ms, placeholders, tuples,
};

/// The SQLite backend.
#[derive(Clone, Debug)]
pub struct SqliteRepository {
    pool: SqlitePool,
}

const CREATE_STAGE: &str = "CREATE TEMP TABLE IF NOT EXISTS like_stage (\
     character_name TEXT NOT NULL, liker TEXT NOT NULL, created_at INTEGER NOT NULL, \
     PRIMARY KEY (character_name, liker))";

impl SqliteRepository {
    /// Opens (creating the file and its parent directory) and applies the migrations.
    pub async fn connect(path: &Path) -> Result<SqliteRepository, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Setup(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteRepository { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn apply(&self, batch: &LikeBatch, fence: &Fence) -> Result<AppliedBatch, StoreError> {
        let (unique, chars) = dedupe(&batch.likes);
        let mut conn = self.pool.acquire().await?;
        sqlx::query(CREATE_STAGE).execute(&mut *conn).await?;
        let mut tx = conn.begin().await?;

        sqlx::query(
            "INSERT INTO lock_fences (lock_name, last_token) VALUES (?, ?) \
             ON CONFLICT(lock_name) DO UPDATE SET last_token = MAX(last_token, excluded.last_token)",
        )
        .bind(&fence.lock)
        .bind(fence.token as i64)
        .execute(&mut *tx)
        .await?;
        let current: i64 =
            sqlx::query_scalar("SELECT last_token FROM lock_fences WHERE lock_name = ?")
                .bind(&fence.lock)
                .fetch_one(&mut *tx)
                .await?;
        if current as u64 != fence.token {
            tx.rollback().await?;
            return Err(StoreError::Fenced {
                lock: fence.lock.clone(),
                token: fence.token,
                current: current as u64,
            });
        }

        let seen: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM applied_entries WHERE entry_id = ?")
                .bind(&batch.id)
                .fetch_optional(&mut *tx)
                .await?;
        let mut inserted = 0;
        if seen.is_none() {
            sqlx::query("DELETE FROM like_stage")
                .execute(&mut *tx)
                .await?;
            for chunk in unique.chunks(STAGE_CHUNK) {
                let sql = format!(
                    "INSERT INTO like_stage (character_name, liker, created_at) VALUES {}",
                    tuples(chunk.len())
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for l in chunk {
                    q = q.bind(&l.character).bind(&l.liker).bind(l.at_ms);
                }
                q.execute(&mut *tx).await?;
            }
            sqlx::query(
                "DELETE FROM like_stage WHERE EXISTS (SELECT 1 FROM character_likes c \
                 WHERE c.character_name = like_stage.character_name AND c.liker = like_stage.liker)",
            )
            .execute(&mut *tx)
            .await?;
            inserted = sqlx::query(
                "INSERT INTO character_likes (character_name, liker, created_at) \
                 SELECT character_name, liker, created_at FROM like_stage",
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "INSERT INTO characters (name, fetched_at, like_count) \
                 SELECT character_name, 0, COUNT(*) FROM like_stage WHERE true GROUP BY character_name \
                 ON CONFLICT(name) DO UPDATE SET like_count = like_count + excluded.like_count",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO applied_entries (entry_id, applied_at) VALUES (?, ?)")
                .bind(&batch.id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }

        let mut counts = Vec::with_capacity(chars.len());
        for chunk in chars.chunks(STAGE_CHUNK) {
            let sql = format!(
                "SELECT name, like_count FROM characters WHERE name IN ({})",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                q = q.bind(*c);
            }
            for row in q.fetch_all(&mut *tx).await? {
                counts.push((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?));
            }
        }
        tx.commit().await?;
        Ok(AppliedBatch {
            already_applied: seen.is_some(),
            inserted,
            counts,
        })
    }
}

fn read_character(r: &sqlx::sqlite::SqliteRow) -> Result<CharacterRow, sqlx::Error> {
    Ok(CharacterRow {
        name: r.try_get("name")?,
        ocid: r.try_get("ocid")?,
        world: r.try_get("world")?,
        class: r.try_get("class")?,
        level: r.try_get("level")?,
        image: r.try_get("image")?,
        fetched_at_ms: r.try_get("fetched_at")?,
        like_count: r.try_get("like_count")?,
    })
}

impl Repository for SqliteRepository {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.pool.close().boxed()
    }

    fn upsert_character<'a>(&'a self, row: &'a CharacterRow) -> StoreFuture<'a, ()> {
        async move {
            sqlx::query(
                "INSERT INTO characters (name, ocid, world, class, level, image, fetched_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT(name) DO UPDATE SET ocid = excluded.ocid, world = excluded.world, \
                 class = excluded.class, level = excluded.level, image = excluded.image, \
                 fetched_at = excluded.fetched_at",
            )
            .bind(&row.name)
            .bind(&row.ocid)
            .bind(&row.world)
            .bind(&row.class)
            .bind(row.level)
            .bind(&row.image)
            .bind(row.fetched_at_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        }
        .boxed()
    }

    fn get_character<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<CharacterRow>> {
        async move {
            let row = sqlx::query(
                "SELECT name, ocid, world, class, level, image, fetched_at, like_count \
                 FROM characters WHERE name = ?",
            )
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
            Ok(match row {
                Some(r) => Some(read_character(&r)?),
                None => None,
            })
        }
        .boxed()
    }

    fn set_ocid<'a>(
        &'a self,
        name: &'a str,
        ocid: &'a str,
        fetched_at_ms: i64,
    ) -> StoreFuture<'a, ()> {
        async move {
            sqlx::query(
                "INSERT INTO characters (name, ocid, fetched_at) VALUES (?, ?, ?) \
                 ON CONFLICT(name) DO UPDATE SET ocid = excluded.ocid, fetched_at = excluded.fetched_at",
            )
            .bind(name)
            .bind(ocid)
            .bind(fetched_at_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        }
        .boxed()
    }

    fn clear_ocid<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()> {
        async move {
            sqlx::query("UPDATE characters SET ocid = NULL WHERE name = ?")
                .bind(name)
                .execute(&self.pool)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn put_snapshot_gz<'a>(
        &'a self,
        ocid: &'a str,
        data_date: &'a str,
        gz: Vec<u8>,
        fetched_at_ms: i64,
    ) -> StoreFuture<'a, ()> {
        async move {
            sqlx::query(
                "INSERT INTO equipment_snapshots (ocid, data_date, payload, fetched_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT(ocid, data_date) DO UPDATE SET payload = excluded.payload, fetched_at = excluded.fetched_at",
            )
            .bind(ocid)
            .bind(data_date)
            .bind(gz)
            .bind(fetched_at_ms)
            .execute(&self.pool)
            .await?;
            Ok(())
        }
        .boxed()
    }

    fn get_snapshot_raw<'a>(
        &'a self,
        ocid: &'a str,
        data_date: &'a str,
    ) -> StoreFuture<'a, Option<(Vec<u8>, i64)>> {
        async move {
            Ok(sqlx::query_as(
                "SELECT payload, fetched_at FROM equipment_snapshots WHERE ocid = ? AND data_date = ?",
            )
            .bind(ocid)
            .bind(data_date)
            .fetch_optional(&self.pool)
            .await?)
        }
        .boxed()
    }

    fn apply_likes<'a>(
        &'a self,
        batch: &'a LikeBatch,
        fence: &'a Fence,
    ) -> StoreFuture<'a, AppliedBatch> {
        self.apply(batch, fence).boxed()
    }

    fn like_count<'a>(&'a self, character: &'a str) -> StoreFuture<'a, i64> {
        async move {
            let n: Option<i64> =
                sqlx::query_scalar("SELECT like_count FROM characters WHERE name = ?")
                    .bind(character)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(n.unwrap_or(0))
        }
        .boxed()
    }

    fn has_liked<'a>(&'a self, character: &'a str, liker: &'a str) -> StoreFuture<'a, bool> {
        async move {
            let n: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM character_likes WHERE character_name = ? AND liker = ?",
            )
            .bind(character)
            .bind(liker)
            .fetch_optional(&self.pool)
            .await?;
            Ok(n.is_some())
        }
        .boxed()
    }

    fn is_applied<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        async move {
            let n: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM applied_entries WHERE entry_id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(n.is_some())
        }
        .boxed()
    }

    fn fence_position<'a>(&'a self, lock: &'a str) -> StoreFuture<'a, Option<u64>> {
        async move {
            let n: Option<i64> =
                sqlx::query_scalar("SELECT last_token FROM lock_fences WHERE lock_name = ?")
                    .bind(lock)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(n.map(|n| n as u64))
        }
        .boxed()
    }
}
