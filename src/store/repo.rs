//! The one store algorithm: every query and the like-batch transaction, written once over any sqlx
//! database that implements [`Dialect`] (MySQL / MariaDB in `mysql.rs`, SQLite in `sqlite.rs`).
//!
//! Contract: [`Repo`] holds a pool that is already migrated. The statements both engines accept
//! verbatim live here; a backend supplies only what really differs ([`Sql`]: upserts, the fence's
//! `GREATEST`/`MAX`, the stage table and how stored pairs are taken out of it) and the row count of a
//! statement. Payload bytes here are stored and returned as they are; compression is the caller's.
//!
//! Likes are applied in one transaction per batch on one connection: the fence row first (the upsert
//! also locks it until commit, and on SQLite it is the first write, so the transaction takes the write
//! lock at once and the busy timeout applies), then the batch id check, then the batch's distinct
//! pairs staged in a per-connection temporary table (emptied at the start of every batch), the pairs
//! already stored taken out or marked, the rest inserted and counted per character into
//! `characters.like_count`, and the totals read back. The number of statements per batch does not
//! depend on its size (multi-row inserts of [`STAGE_CHUNK`] rows).
//!
//! Failure modes: every sqlx error becomes a [`StoreError`]; any error rolls the transaction back
//! (dropping an uncommitted transaction rolls it back), so a failed batch leaves nothing behind.

use std::fmt;

use sqlx::{
    AssertSqlSafe, ColumnIndex, Connection, Database, Decode, Encode, Executor, IntoArguments,
    Pool, Row, Type,
};

use super::{AppliedBatch, Backend, CharacterRow, Fence, LikeBatch, LikeRecord, StoreError};

/// Rows per multi-row insert (3 binds each; well under both backends' placeholder limits).
pub(crate) const STAGE_CHUNK: usize = 1000;

/// The statements whose text differs between the engines.
pub(crate) struct Sql {
    /// Inserts or updates a character's basic info (binds: name, ocid, world, class, level, image,
    /// fetched_at); the like count is left as it is.
    pub upsert_character: &'static str,
    /// Inserts a bare row or updates ocid and fetch time (binds: name, ocid, fetched_at).
    pub set_ocid: &'static str,
    /// Inserts or replaces a snapshot (binds: ocid, data_date, payload, fetched_at).
    pub put_snapshot: &'static str,
    /// Presents a fencing token, keeping the larger one (binds: lock, token).
    pub present_fence: &'static str,
    /// Creates the per-connection `like_stage` table if this connection has none yet.
    pub create_stage: &'static str,
    /// Takes the staged pairs that are already stored out of play (deletes or marks them).
    pub drop_stored_pairs: &'static str,
    /// Inserts the staged pairs still in play into `character_likes`.
    pub insert_new_likes: &'static str,
    /// Adds the number of staged pairs still in play to each character's `like_count`.
    pub count_new_likes: &'static str,
    /// Reads `(name, like_count)` of every character of the staged batch by a join, when the stage
    /// still lists every pair of the batch after [`Sql::drop_stored_pairs`]; `None` reads them by name.
    pub totals_from_stage: Option<&'static str>,
}

/// What a backend supplies to the algorithm. The bounds are the column types the queries use.
pub(crate) trait Dialect: Database
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
{
    const BACKEND: Backend;
    const SQL: Sql;
    /// The number of rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

const GET_CHARACTER: &str = "SELECT name, ocid, world, class, level, image, fetched_at, like_count \
                             FROM characters WHERE name = ?";
const CLEAR_OCID: &str = "UPDATE characters SET ocid = NULL WHERE name = ?";
const GET_SNAPSHOT: &str =
    "SELECT payload, fetched_at FROM equipment_snapshots WHERE ocid = ? AND data_date = ?";
const FENCE_POSITION: &str = "SELECT last_token FROM lock_fences WHERE lock_name = ?";
const IS_APPLIED: &str = "SELECT 1 FROM applied_entries WHERE entry_id = ?";
const RECORD_APPLIED: &str = "INSERT INTO applied_entries (entry_id, applied_at) VALUES (?, ?)";
const LIKE_COUNT: &str = "SELECT like_count FROM characters WHERE name = ?";
const HAS_LIKED: &str = "SELECT 1 FROM character_likes WHERE character_name = ? AND liker = ?";
const EMPTY_STAGE: &str = "DELETE FROM like_stage";

/// A migrated pool and the algorithm over it.
pub(crate) struct Repo<DB: Database> {
    pool: Pool<DB>,
}

impl<DB: Database> Repo<DB> {
    /// The pool (the backend's own setup, and tests that inspect connection state).
    pub(crate) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

impl<DB: Database> Clone for Repo<DB> {
    fn clone(&self) -> Self {
        Repo {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Database> fmt::Debug for Repo<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repo").field("pool", &self.pool).finish()
    }
}

impl<DB> Repo<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'n> &'n str: ColumnIndex<DB::Row> + Encode<'n, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
{
    /// Wraps a pool whose migrations are applied.
    pub fn new(pool: Pool<DB>) -> Self {
        Repo { pool }
    }

    pub fn backend(&self) -> Backend {
        DB::BACKEND
    }

    /// A cheap liveness probe (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    pub async fn upsert_character(&self, row: &CharacterRow) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.upsert_character)
            .bind(row.name.as_str())
            .bind(row.ocid.clone())
            .bind(row.world.clone())
            .bind(row.class.clone())
            .bind(row.level)
            .bind(row.image.clone())
            .bind(row.fetched_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn get_character(&self, name: &str) -> Result<Option<CharacterRow>, StoreError> {
        let row = sqlx::query(GET_CHARACTER)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(read_character(&r)?),
            None => None,
        })
    }

    pub async fn set_ocid(
        &self,
        name: &str,
        ocid: &str,
        fetched_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.set_ocid)
            .bind(name)
            .bind(ocid)
            .bind(fetched_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn clear_ocid(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query(CLEAR_OCID)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores `payload` exactly as given.
    pub async fn put_snapshot(
        &self,
        ocid: &str,
        data_date: &str,
        payload: Vec<u8>,
        fetched_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.put_snapshot)
            .bind(ocid)
            .bind(data_date)
            .bind(payload)
            .bind(fetched_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The stored payload, exactly as stored, and its fetch time.
    pub async fn get_snapshot(
        &self,
        ocid: &str,
        data_date: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        Ok(sqlx::query_as(GET_SNAPSHOT)
            .bind(ocid)
            .bind(data_date)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn like_count(&self, character: &str) -> Result<i64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(LIKE_COUNT)
            .bind(character)
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.unwrap_or(0))
    }

    pub async fn has_liked(&self, character: &str, liker: &str) -> Result<bool, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(HAS_LIKED)
            .bind(character)
            .bind(liker)
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.is_some())
    }

    pub async fn is_applied(&self, id: &str) -> Result<bool, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(IS_APPLIED)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.is_some())
    }

    pub async fn fence_position(&self, lock: &str) -> Result<Option<u64>, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(FENCE_POSITION)
            .bind(lock)
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.map(|n| n as u64))
    }

    /// Applies a batch under its fence; see the module documentation. The id is already validated.
    pub async fn apply_likes(
        &self,
        batch: &LikeBatch,
        fence: &Fence,
    ) -> Result<AppliedBatch, StoreError> {
        let (unique, chars) = dedupe(&batch.likes);
        let mut conn = self.pool.acquire().await?;
        sqlx::query(DB::SQL.create_stage)
            .execute(&mut *conn)
            .await?;
        let mut tx = conn.begin().await?;

        // 1. The fence: present the token; a newer one already presented wins.
        sqlx::query(DB::SQL.present_fence)
            .bind(fence.lock.as_str())
            .bind(fence.token as i64)
            .execute(&mut *tx)
            .await?;
        let current: i64 = sqlx::query_scalar(FENCE_POSITION)
            .bind(fence.lock.as_str())
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
        let seen: Option<i64> = sqlx::query_scalar(IS_APPLIED)
            .bind(batch.id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let mut inserted = 0;
        if seen.is_none() {
            // 3. Stage the distinct pairs, take out those already stored, insert and count the rest.
            sqlx::query(EMPTY_STAGE).execute(&mut *tx).await?;
            for chunk in unique.chunks(STAGE_CHUNK) {
                let sql = format!(
                    "INSERT INTO like_stage (character_name, liker, created_at) VALUES {}",
                    tuples(chunk.len())
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for l in chunk {
                    q = q
                        .bind(l.character.as_str())
                        .bind(l.liker.as_str())
                        .bind(l.at_ms);
                }
                q.execute(&mut *tx).await?;
            }
            sqlx::query(DB::SQL.drop_stored_pairs)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query(DB::SQL.insert_new_likes)
                .execute(&mut *tx)
                .await?;
            inserted = DB::rows_affected(&done);
            sqlx::query(DB::SQL.count_new_likes)
                .execute(&mut *tx)
                .await?;
            sqlx::query(RECORD_APPLIED)
                .bind(batch.id.as_str())
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }

        // 4. The exact totals of every character of the batch, as of this transaction.
        let mut counts = Vec::with_capacity(chars.len());
        match DB::SQL.totals_from_stage {
            Some(join) if seen.is_none() => {
                for row in sqlx::query(join).fetch_all(&mut *tx).await? {
                    counts.push((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?));
                }
            }
            _ => {
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
        }
        tx.commit().await?;
        Ok(AppliedBatch {
            already_applied: seen.is_some(),
            inserted,
            counts,
        })
    }
}

fn read_character<R>(r: &R) -> Result<CharacterRow, sqlx::Error>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    for<'q> String: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> i64: Decode<'q, R::Database> + Type<R::Database>,
    for<'q> Option<String>: Decode<'q, R::Database>,
    for<'q> Option<i64>: Decode<'q, R::Database>,
{
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

/// The pairs of a batch without duplicates (first occurrence wins), and its characters, sorted.
fn dedupe(likes: &[LikeRecord]) -> (Vec<&LikeRecord>, Vec<&str>) {
    let mut seen = std::collections::HashSet::with_capacity(likes.len());
    let mut unique = Vec::with_capacity(likes.len());
    let mut chars = std::collections::BTreeSet::new();
    for l in likes {
        if seen.insert((l.character.as_str(), l.liker.as_str())) {
            unique.push(l);
            chars.insert(l.character.as_str());
        }
    }
    (unique, chars.into_iter().collect())
}

/// `(?, ?, ?), (?, ?, ?), …` with `n` tuples.
fn tuples(n: usize) -> String {
    let mut s = String::with_capacity(n * 11);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str("(?, ?, ?)");
    }
    s
}

/// `?, ?, …` with `n` placeholders.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
