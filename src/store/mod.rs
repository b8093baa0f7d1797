//! Persistence: MySQL/MariaDB in distributed mode, SQLite in the embedded default; [`Store`] is the
//! cheap-to-clone handle every service holds.
//!
//! Contract: [`Store::connect`] opens the pool and applies the embedded migrations
//! (`migrations/mysql`, `migrations/sqlite`) before returning, idempotently (sqlx records applied versions).
//! [`Store::connect_deferred`] opens a MySQL pool without reaching the server, for a gateway that starts
//! with the database down; [`Store::migrate`] then applies the migrations once it answers.
//! Both backends hold the same logical schema. Payloads are stored gzip-compressed ([`crate::codec`], done
//! here in [`Store`] for both backends); reads tolerate uncompressed legacy rows. Every failure is a
//! [`StoreError`] classified as upstream-kind (a backing service) and retryable when the database was
//! unreachable.
//!
//! Likes and fencing: [`Store::apply_likes`] applies a [`LikeBatch`] in one transaction that first
//! presents the writer's [`Fence`] (`lock_fences`: a token lower than the last one presented for the lock is
//! rejected with [`StoreError::Fenced`] and nothing is written — this is how a lock holder whose lease
//! silently expired is stopped), then records the batch id in `applied_entries` (a batch applied twice
//! counts once), inserts the (character, liker) pairs that are new and adds exactly their number to
//! `characters.like_count`. Because the fence row is locked until commit, fenced writers on one lock are
//! serialised by the database itself, whatever the lock tier did.
//!
//! Why one algorithm over a dialect rather than `sqlx::Any`: the engines differ in upsert syntax,
//! temporary tables and lock functions. Every query and the like transaction are written once, generic
//! over the sqlx database (`repo`); each backend module (`mysql`, `sqlite`) holds only its connection,
//! its migrations and the statements whose text is its own, and [`Store`] picks one of the two.

mod mysql;
mod repo;
mod sqlite;

use sqlx::{MySql, Sqlite};

use crate::codec;
use crate::config::DatabaseSettings;
use crate::error::{Classify, Code, ErrorKind};

use repo::Repo;
#[cfg(test)]
use repo::STAGE_CHUNK;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database query failed: {0}")]
    Query(#[source] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored payload is corrupt: {0}")]
    Corrupt(String),
    #[error("database setup failed: {0}")]
    Setup(String),
    /// The writer's fencing token is older than the last one presented for its lock: its lease expired
    /// and someone else took the lock. Nothing was written.
    #[error("write rejected by fence: lock {lock} token {token} is older than {current}")]
    Fenced {
        lock: String,
        token: u64,
        current: u64,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            other => StoreError::Query(other),
        }
    }
}

impl Classify for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable(_) | StoreError::Fenced { .. } => ErrorKind::Upstream,
            _ => ErrorKind::Internal,
        }
    }
    fn retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Fenced { .. })
    }
    fn code(&self) -> Code {
        match self {
            StoreError::Unavailable(_) => Code::DatabaseUnavailable,
            StoreError::Fenced { .. } => Code::LockLost,
            _ => Code::Internal,
        }
    }
}

/// Which backend a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Mysql,
}

/// A stored character row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CharacterRow {
    pub name: String,
    pub ocid: Option<String>,
    pub world: Option<String>,
    pub class: Option<String>,
    pub level: Option<i64>,
    pub image: Option<String>,
    pub fetched_at_ms: i64,
    pub like_count: i64,
}

/// A stored raw equipment snapshot (payload already inflated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub ocid: String,
    /// `YYYY-MM-DD`, or `latest` for the undated ("today") snapshot.
    pub data_date: String,
    pub payload: Vec<u8>,
    pub fetched_at_ms: i64,
}

/// A lock's fencing token as presented to the store: writes carrying a token lower than the last one
/// presented for the same lock are rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    pub lock: String,
    pub token: u64,
}

/// One like as stored: the character's canonical key, the liker, when it was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LikeRecord {
    pub character: String,
    pub liker: String,
    pub at_ms: i64,
}

/// Likes applied together; `id` (≤ 128 chars) makes the application idempotent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LikeBatch {
    pub id: String,
    pub likes: Vec<LikeRecord>,
}

/// What applying a batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppliedBatch {
    /// The batch id was already recorded: nothing was written this time.
    pub already_applied: bool,
    /// (character, liker) pairs that were new and were inserted.
    pub inserted: u64,
    /// The exact `like_count` after the transaction of every character in the batch.
    pub counts: Vec<(String, i64)>,
}

/// Longest batch id `applied_entries` holds.
pub const MAX_BATCH_ID: usize = 128;

/// The gateway's database: one of the two backends, driven by the same algorithm.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

#[derive(Clone, Debug)]
enum Db {
    Mysql(Repo<MySql>),
    Sqlite(Repo<Sqlite>),
}

/// Runs `$call` on the backend's repository, whichever it is.
macro_rules! on_backend {
    ($store:expr, $repo:ident => $call:expr) => {
        match &$store.db {
            Db::Mysql($repo) => $call,
            Db::Sqlite($repo) => $call,
        }
    };
}

impl Store {
    /// Connects and migrates. For SQLite the parent directory is created.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let db = match settings {
            DatabaseSettings::Sqlite { path } => {
                Db::Sqlite(Repo::new(sqlite::connect(path).await?))
            }
            DatabaseSettings::Mysql { url } => Db::Mysql(Repo::new(mysql::connect(url).await?)),
        };
        Ok(Store { db })
    }

    /// Opens the store without requiring the database to answer: for MySQL a pool that connects on first
    /// use, whose migrations [`Store::migrate`] applies later (the gateway starts with the database
    /// down); SQLite, a local file, is opened and migrated as by [`Store::connect`].
    pub async fn connect_deferred(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let db = match settings {
            DatabaseSettings::Sqlite { path } => {
                Db::Sqlite(Repo::new(sqlite::connect(path).await?))
            }
            DatabaseSettings::Mysql { url } => Db::Mysql(Repo::new(mysql::connect_lazy(url)?)),
        };
        Ok(Store { db })
    }

    /// Applies the migrations (idempotent; for MySQL under the migration lock). A store from
    /// [`Store::connect`] is already migrated.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Mysql(r) => mysql::migrate_exclusively(r.pool()).await,
            Db::Sqlite(_) => Ok(()),
        }
    }

    pub fn backend(&self) -> Backend {
        on_backend!(self, r => r.backend())
    }

    /// A cheap liveness probe (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, r => r.ping().await)
    }

    pub async fn close(&self) {
        on_backend!(self, r => r.close().await)
    }

    /// Inserts or updates a character's basic info (the like count is left as it is).
    pub async fn upsert_character(&self, row: &CharacterRow) -> Result<(), StoreError> {
        on_backend!(self, r => r.upsert_character(row).await)
    }

    pub async fn get_character(&self, name: &str) -> Result<Option<CharacterRow>, StoreError> {
        on_backend!(self, r => r.get_character(name).await)
    }

    /// Records a character's ocid in one statement: a new row, or the ocid and fetch time of an
    /// existing one (its basic info and like count are kept).
    pub async fn set_ocid(
        &self,
        name: &str,
        ocid: &str,
        fetched_at_ms: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, r => r.set_ocid(name, ocid, fetched_at_ms).await)
    }

    /// Forgets a character's stored ocid (the upstream said it is no longer valid).
    pub async fn clear_ocid(&self, name: &str) -> Result<(), StoreError> {
        on_backend!(self, r => r.clear_ocid(name).await)
    }

    /// Stores a raw equipment payload (compressed here) as the last good copy for (ocid, date).
    pub async fn put_snapshot(
        &self,
        ocid: &str,
        data_date: &str,
        payload: &[u8],
        fetched_at_ms: i64,
    ) -> Result<(), StoreError> {
        let gz = if codec::is_gzip(payload) {
            payload.to_vec()
        } else {
            codec::compress_raw(payload)
        };
        self.put_snapshot_as_is(ocid, data_date, gz, fetched_at_ms)
            .await
    }

    /// Stores `payload` without compressing it (the tests write legacy rows with it).
    async fn put_snapshot_as_is(
        &self,
        ocid: &str,
        data_date: &str,
        payload: Vec<u8>,
        fetched_at_ms: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, r => r.put_snapshot(ocid, data_date, payload, fetched_at_ms).await)
    }

    /// The stored payload for (ocid, date) as it is stored (gzip, or a legacy uncompressed row).
    async fn get_snapshot_as_is(
        &self,
        ocid: &str,
        data_date: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        on_backend!(self, r => r.get_snapshot(ocid, data_date).await)
    }

    /// The stored snapshot for (ocid, date) as gzip bytes with its fetch time, without inflating it (rows
    /// written uncompressed are compressed here). The caller validates the payload when it parses it.
    pub async fn get_snapshot_gz(
        &self,
        ocid: &str,
        data_date: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        Ok(self
            .get_snapshot_as_is(ocid, data_date)
            .await?
            .map(|(payload, fetched_at_ms)| {
                if codec::is_gzip(&payload) {
                    (payload, fetched_at_ms)
                } else {
                    (codec::compress_raw(&payload), fetched_at_ms)
                }
            }))
    }

    /// The stored snapshot for (ocid, date), inflated.
    pub async fn get_snapshot(
        &self,
        ocid: &str,
        data_date: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        match self.get_snapshot_as_is(ocid, data_date).await? {
            None => Ok(None),
            Some((payload, fetched_at_ms)) => {
                let payload = codec::decompress(&payload).map_err(|e| {
                    StoreError::Corrupt(format!("snapshot {ocid}/{data_date}: {e}"))
                })?;
                Ok(Some(Snapshot {
                    ocid: ocid.to_string(),
                    data_date: data_date.to_string(),
                    payload,
                    fetched_at_ms,
                }))
            }
        }
    }

    /// Applies a batch of likes under a fence (see the module documentation). `batch.likes` may
    /// contain duplicates.
    pub async fn apply_likes(
        &self,
        batch: &LikeBatch,
        fence: &Fence,
    ) -> Result<AppliedBatch, StoreError> {
        if batch.id.is_empty() || batch.id.len() > MAX_BATCH_ID {
            return Err(StoreError::Setup(format!(
                "batch id must be 1-{MAX_BATCH_ID} bytes, got {}",
                batch.id.len()
            )));
        }
        on_backend!(self, r => r.apply_likes(batch, fence).await)
    }

    /// A character's synced like count (0 when unknown).
    pub async fn like_count(&self, character: &str) -> Result<i64, StoreError> {
        on_backend!(self, r => r.like_count(character).await)
    }

    pub async fn has_liked(&self, character: &str, liker: &str) -> Result<bool, StoreError> {
        on_backend!(self, r => r.has_liked(character, liker).await)
    }

    /// Whether an entry or batch id is recorded in `applied_entries`.
    pub async fn is_applied(&self, id: &str) -> Result<bool, StoreError> {
        on_backend!(self, r => r.is_applied(id).await)
    }

    /// The last fencing token presented for `lock` (`lock_fences`), if any.
    pub async fn fence_position(&self, lock: &str) -> Result<Option<u64>, StoreError> {
        on_backend!(self, r => r.fence_position(lock).await)
    }
}

#[cfg(test)]
mod tests;
