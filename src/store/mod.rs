//! Persistence: MySQL/MariaDB in distributed mode, SQLite in the embedded default, behind one
//! [`Repository`] trait; [`Store`] is the cheap-to-clone handle every service holds.
//!
//! Contract: [`Store::connect`] opens the pool and applies the embedded migrations
//! (`migrations/mysql`, `migrations/sqlite`) before returning, idempotently (sqlx records applied versions).
//! Both backends hold the same logical schema. Payloads are stored gzip-compressed ([`codec`], done here in
//! [`Store`] so both backends share it); reads tolerate uncompressed legacy rows. Every failure is a
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
//! Why a trait object over two repositories rather than `sqlx::Any`: the dialects differ in upsert syntax,
//! temporary tables and lock functions; each backend keeps its queries explicit, and services depend on
//! the trait only.

pub mod codec;
mod mysql;
mod sqlite;

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::DatabaseSettings;
use crate::error::{Classify, Code, ErrorKind};

pub use mysql::MysqlRepository;
pub use sqlite::SqliteRepository;

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

/// The future a repository method returns.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// What each backend implements. Called through [`Store`]; payload bytes here are already compressed.
pub trait Repository: Send + Sync + fmt::Debug {
    fn backend(&self) -> Backend;
    /// A cheap liveness probe (`SELECT 1`).
    fn ping(&self) -> StoreFuture<'_, ()>;
    fn close(&self) -> BoxFuture<'_, ()>;
    /// Inserts or updates a character's basic info; the like count is left as it is.
    fn upsert_character<'a>(&'a self, row: &'a CharacterRow) -> StoreFuture<'a, ()>;
    fn get_character<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<CharacterRow>>;
    fn clear_ocid<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()>;
    /// Records a character's ocid in one statement: a new row, or the ocid and fetch time of an existing
    /// one (its basic info and like count are kept).
    fn set_ocid<'a>(
        &'a self,
        name: &'a str,
        ocid: &'a str,
        fetched_at_ms: i64,
    ) -> StoreFuture<'a, ()>;
    /// Stores an already gzip-framed payload.
    fn put_snapshot_gz<'a>(
        &'a self,
        ocid: &'a str,
        data_date: &'a str,
        gz: Vec<u8>,
        fetched_at_ms: i64,
    ) -> StoreFuture<'a, ()>;
    /// The stored (possibly compressed) payload and its fetch time.
    fn get_snapshot_raw<'a>(
        &'a self,
        ocid: &'a str,
        data_date: &'a str,
    ) -> StoreFuture<'a, Option<(Vec<u8>, i64)>>;
    /// See the module documentation. `batch.likes` may contain duplicates.
    fn apply_likes<'a>(
        &'a self,
        batch: &'a LikeBatch,
        fence: &'a Fence,
    ) -> StoreFuture<'a, AppliedBatch>;
    /// `characters.like_count`, 0 for an unknown character.
    fn like_count<'a>(&'a self, character: &'a str) -> StoreFuture<'a, i64>;
    fn has_liked<'a>(&'a self, character: &'a str, liker: &'a str) -> StoreFuture<'a, bool>;
    /// Whether an entry or batch id is recorded in `applied_entries`.
    fn is_applied<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;
    /// The last token presented for `lock` (`lock_fences`), if any.
    fn fence_position<'a>(&'a self, lock: &'a str) -> StoreFuture<'a, Option<u64>>;
}

/// The gateway's database: a shared [`Repository`].
#[derive(Clone)]
pub struct Store {
    repo: Arc<dyn Repository>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Store").field(&self.repo).finish()
    }
}

impl Store {
    /// Connects and migrates. For SQLite the parent directory is created.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let repo: Arc<dyn Repository> = match settings {
            DatabaseSettings::Sqlite { path } => Arc::new(SqliteRepository::connect(path).await?),
            DatabaseSettings::Mysql { url } => Arc::new(MysqlRepository::connect(url).await?),
        };
        Ok(Store { repo })
    }

    /// Wraps any repository (another backend, or one built by hand).
    pub fn from_repository(repo: Arc<dyn Repository>) -> Store {
        Store { repo }
    }

    pub fn repository(&self) -> &Arc<dyn Repository> {
        &self.repo
    }

    pub fn backend(&self) -> Backend {
        self.repo.backend()
    }

    /// A cheap liveness probe (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.repo.ping().await
    }

    pub async fn close(&self) {
        self.repo.close().await
    }

    /// Inserts or updates a character's basic info (the like count is left as it is).
    pub async fn upsert_character(&self, row: &CharacterRow) -> Result<(), StoreError> {
        self.repo.upsert_character(row).await
    }

    pub async fn get_character(&self, name: &str) -> Result<Option<CharacterRow>, StoreError> {
        self.repo.get_character(name).await
    }

    /// Records a character's ocid, keeping whatever basic info and like count the row already has.
    pub async fn set_ocid(
        &self,
        name: &str,
        ocid: &str,
        fetched_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.repo.set_ocid(name, ocid, fetched_at_ms).await
    }

    /// Forgets a character's stored ocid (the upstream said it is no longer valid).
    pub async fn clear_ocid(&self, name: &str) -> Result<(), StoreError> {
        self.repo.clear_ocid(name).await
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
        self.repo
            .put_snapshot_gz(ocid, data_date, gz, fetched_at_ms)
            .await
    }

    /// The stored snapshot for (ocid, date) as gzip bytes with its fetch time, without inflating it (rows
    /// written uncompressed are compressed here). The caller validates the payload when it parses it.
    pub async fn get_snapshot_gz(
        &self,
        ocid: &str,
        data_date: &str,
    ) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        Ok(self
            .repo
            .get_snapshot_raw(ocid, data_date)
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
        match self.repo.get_snapshot_raw(ocid, data_date).await? {
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

    /// Applies a batch of likes under a fence (see the module documentation).
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
        self.repo.apply_likes(batch, fence).await
    }

    /// A character's synced like count (0 when unknown).
    pub async fn like_count(&self, character: &str) -> Result<i64, StoreError> {
        self.repo.like_count(character).await
    }

    pub async fn has_liked(&self, character: &str, liker: &str) -> Result<bool, StoreError> {
        self.repo.has_liked(character, liker).await
    }

    /// Whether an entry or batch id is recorded as applied.
    pub async fn is_applied(&self, id: &str) -> Result<bool, StoreError> {
        self.repo.is_applied(id).await
    }

    /// The last fencing token presented for `lock`.
    pub async fn fence_position(&self, lock: &str) -> Result<Option<u64>, StoreError> {
        self.repo.fence_position(lock).await
    }
}

/// The pairs of a batch without duplicates (first occurrence wins), and its characters, sorted.
pub(crate) fn dedupe(likes: &[LikeRecord]) -> (Vec<&LikeRecord>, Vec<&str>) {
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

/// Rows per multi-row insert (3 binds each; well under both backends' placeholder limits).
pub(crate) const STAGE_CHUNK: usize = 1000;

/// `(?, ?, ?), (?, ?, ?), …` with `n` tuples.
pub(crate) fn tuples(n: usize) -> String {
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
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
