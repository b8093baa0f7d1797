//! The MySQL / MariaDB [`Repository`].
//!
//! Contract: one pool (16 connections, 3 s acquire timeout); migrations from `migrations/mysql` applied at
//! connect. Likes are applied in one transaction per batch: fence row (`INSERT … ON DUPLICATE KEY UPDATE
//! last_token = GREATEST(…)`, which also locks it until commit), batch id check, the batch's distinct pairs
//! staged in a per-connection temporary MEMORY table, pairs already stored marked by a join, the rest
//! inserted and counted per character into `characters.like_count`, the totals read back by a join. The number of statements per
//! batch does not depend on its size (multi-row inserts of [`super::STAGE_CHUNK`] rows), which is what
//! makes the sync throughput.
//!
//! Failure modes: any error rolls the transaction back (the temporary table is emptied at the start of
//! the next batch, so a failed batch leaves nothing behind).

use std::str::FromStr;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Connection, MySqlPool, Row};

use super::{
    AppliedBatch, Backend, CharacterRow, Fence, LikeBatch, Repository, STAGE_CHUNK, StoreError,
    StoreFuture, dedupe, now_ms, placeholders, tuples,
};
use crate::config::RedactedUrl;

/// The MySQL / MariaDB backend.
#[derive(Clone, Debug)]
pub struct MysqlRepository {
    pool: MySqlPool,
}

/// The per-connection stage: a MEMORY table (no undo or redo work; it is emptied at the start of every
/// batch, so it needs no transactionality). `fresh` marks the pairs not yet stored.
const CREATE_STAGE: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS like_stage (\
     character_name VARCHAR(64) NOT NULL, liker VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL, \
     fresh TINYINT NOT NULL DEFAULT 1, PRIMARY KEY (character_name, liker)) \
     ENGINE=MEMORY CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";

impl MysqlRepository {
    /// Connects (16 connections) and applies the migrations.
    pub async fn connect(url: &RedactedUrl) -> Result<MysqlRepository, StoreError> {
        let opts = MySqlConnectOptions::from_str(url.expose())
            .map_err(|e| StoreError::Setup(format!("bad MySQL URL {}: {e}", url.redacted())))?;
        let pool = MySqlPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts)
            .await?;
        migrate_exclusively(&pool).await?;
        Ok(MysqlRepository { pool })
    }

    /// Wraps an existing, already migrated pool.
    pub fn from_pool(pool: MySqlPool) -> MysqlRepository {
        MysqlRepository { pool }
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    async fn apply(&self, batch: &LikeBatch, fence: &Fence) -> Result<AppliedBatch, StoreError> {
        let (unique, chars) = dedupe(&batch.likes);
        let mut conn = self.pool.acquire().await?;
        sqlx::query(CREATE_STAGE).execute(&mut *conn).await?;
        let mut tx = conn.begin().await?;

        // 1. The fence: present the token; a newer one already presented wins.
        sqlx::query(
            "INSERT INTO lock_fences (lock_name, last_token) VALUES (?, ?) \
             ON DUPLICATE KEY UPDATE last_token = GREATEST(last_token, VALUES(last_token))",
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

        // 2. Idempotency by batch id.
        let seen: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM applied_entries WHERE entry_id = ?")
                .bind(&batch.id)
                .fetch_optional(&mut *tx)
                .await?;
        let mut inserted = 0;
        if seen.is_none() {
            // 3. Stage the distinct pairs, mark those already stored, insert and count the rest.
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
                "UPDATE like_stage s JOIN character_likes c \
                 ON c.character_name = s.character_name AND c.liker = s.liker SET s.fresh = 0",
            )
            .execute(&mut *tx)
            .await?;
            inserted = sqlx::query(
                "INSERT INTO character_likes (character_name, liker, created_at) \
                 SELECT character_name, liker, created_at FROM like_stage WHERE fresh = 1",
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "INSERT INTO characters (name, fetched_at, like_count) \
                 SELECT character_name, 0, COUNT(*) FROM like_stage WHERE fresh = 1 \
                 GROUP BY character_name \
                 ON DUPLICATE KEY UPDATE like_count = like_count + VALUES(like_count)",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO applied_entries (entry_id, applied_at) VALUES (?, ?)")
                .bind(&batch.id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }

        // 4. The exact totals of every character of the batch, as of this transaction.
        let mut counts = Vec::with_capacity(chars.len());
        if seen.is_none() {
            let rows = sqlx::query(
                "SELECT c.name, c.like_count FROM characters c \
                 JOIN (SELECT DISTINCT character_name FROM like_stage) s ON s.character_name = c.name",
            )
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                counts.push((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?));
            }
        } else {
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
        }
        tx.commit().await?;
        Ok(AppliedBatch {
            already_applied: seen.is_some(),
            inserted,
            counts,
        })
    }
}

fn read_character(r: &sqlx::mysql::MySqlRow) -> Result<CharacterRow, sqlx::Error> {
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

impl Repository for MysqlRepository {
    fn backend(&self) -> Backend {
        Backend::Mysql
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
                 ON DUPLICATE KEY UPDATE ocid = VALUES(ocid), world = VALUES(world), \
                 class = VALUES(class), level = VALUES(level), image = VALUES(image), \
                 fetched_at = VALUES(fetched_at)",
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
                 ON DUPLICATE KEY UPDATE ocid = VALUES(ocid), fetched_at = VALUES(fetched_at)",
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
                 ON DUPLICATE KEY UPDATE payload = VALUES(payload), fetched_at = VALUES(fetched_at)",
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

/// Applies the migrations while holding a named lock on one pinned connection, so instances starting
/// together on a fresh database take turns (MySQL DDL is not transactional: two instances running the same
/// migration at once leave it "partially applied").
async fn migrate_exclusively(pool: &MySqlPool) -> Result<(), StoreError> {
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
