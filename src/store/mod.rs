//! Persistence: MySQL/MariaDB in distributed mode, SQLite in the embedded default, behind one [`Store`].
//!
//! Contract: [`Store::connect`] opens the pool and applies the embedded migrations
//! (`migrations/mysql`, `migrations/sqlite`) before returning, idempotently (sqlx records applied versions).
//! Both backends hold the same logical schema. Payloads are stored gzip-compressed ([`codec`]); reads
//! tolerate uncompressed legacy rows. Every failure is a [`StoreError`] classified as upstream-kind
//! (a backing service) and retryable when the database was unreachable.
//!
//! Why an enum over the two pools rather than `sqlx::Any`: the two dialects differ in upsert syntax and
//! lock functions, and an enum keeps each query checked and explicit per backend.

pub mod codec;

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{MySqlPool, Row, SqlitePool};

use crate::config::DatabaseSettings;
use crate::error::{Classify, ErrorKind};

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
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e),
            other => StoreError::Query(other),
        }
    }
}

impl Classify for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable(_) => ErrorKind::Upstream,
            _ => ErrorKind::Internal,
        }
    }
    fn retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
    fn code(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "DATABASE_UNAVAILABLE",
            _ => "INTERNAL",
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

/// The gateway's database.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Mysql(MySqlPool),
}

impl Store {
    /// Connects and migrates. For SQLite the parent directory is created.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        match settings {
            DatabaseSettings::Sqlite { path } => {
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
                Ok(Store::Sqlite(pool))
            }
            DatabaseSettings::Mysql { url } => {
                let opts = MySqlConnectOptions::from_str(url.expose()).map_err(|e| {
                    StoreError::Setup(format!("bad MySQL URL {}: {e}", url.redacted()))
                })?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_with(opts)
                    .await?;
                sqlx::migrate!("./migrations/mysql").run(&pool).await?;
                Ok(Store::Mysql(pool))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Mysql(_) => Backend::Mysql,
        }
    }

    /// A cheap liveness probe (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ())?,
            Store::Mysql(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ())?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(p) => p.close().await,
            Store::Mysql(p) => p.close().await,
        }
    }

    /// Inserts or updates a character's basic info (the like count is left as it is).
    pub async fn upsert_character(&self, row: &CharacterRow) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(p) => {
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
                .execute(p)
                .await?;
            }
            Store::Mysql(p) => {
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
                .execute(p)
                .await?;
            }
        }
        Ok(())
    }

    pub async fn get_character(&self, name: &str) -> Result<Option<CharacterRow>, StoreError> {
        const Q: &str = "SELECT name, ocid, world, class, level, image, fetched_at, like_count \
                         FROM characters WHERE name = ?";
        fn read<R: Row>(r: &R) -> Result<CharacterRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
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
        let row = match self {
            Store::Sqlite(p) => match sqlx::query(Q).bind(name).fetch_optional(p).await? {
                Some(r) => Some(read(&r)?),
                None => None,
            },
            Store::Mysql(p) => match sqlx::query(Q).bind(name).fetch_optional(p).await? {
                Some(r) => Some(read(&r)?),
                None => None,
            },
        };
        Ok(row)
    }

    /// Forgets a character's stored ocid (the upstream said it is no longer valid).
    pub async fn clear_ocid(&self, name: &str) -> Result<(), StoreError> {
        const Q: &str = "UPDATE characters SET ocid = NULL WHERE name = ?";
        match self {
            Store::Sqlite(p) => sqlx::query(Q).bind(name).execute(p).await.map(|_| ())?,
            Store::Mysql(p) => sqlx::query(Q).bind(name).execute(p).await.map(|_| ())?,
        }
        Ok(())
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
            codec::compress(payload)
        };
        match self {
            Store::Sqlite(p) => {
                sqlx::query(
                    "INSERT INTO equipment_snapshots (ocid, data_date, payload, fetched_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT(ocid, data_date) DO UPDATE SET payload = excluded.payload, fetched_at = excluded.fetched_at",
                )
                .bind(ocid)
                .bind(data_date)
                .bind(gz)
                .bind(fetched_at_ms)
                .execute(p)
                .await?;
            }
            Store::Mysql(p) => {
                sqlx::query(
                    "INSERT INTO equipment_snapshots (ocid, data_date, payload, fetched_at) VALUES (?, ?, ?, ?) \
                     ON DUPLICATE KEY UPDATE payload = VALUES(payload), fetched_at = VALUES(fetched_at)",
                )
                .bind(ocid)
                .bind(data_date)
                .bind(gz)
                .bind(fetched_at_ms)
                .execute(p)
                .await?;
            }
        }
        Ok(())
    }

    /// The stored snapshot for (ocid, date), inflated.
    pub async fn get_snapshot(
        &self,
        ocid: &str,
        data_date: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        const Q: &str =
            "SELECT payload, fetched_at FROM equipment_snapshots WHERE ocid = ? AND data_date = ?";
        let row: Option<(Vec<u8>, i64)> = match self {
            Store::Sqlite(p) => {
                sqlx::query_as(Q)
                    .bind(ocid)
                    .bind(data_date)
                    .fetch_optional(p)
                    .await?
            }
            Store::Mysql(p) => {
                sqlx::query_as(Q)
                    .bind(ocid)
                    .bind(data_date)
                    .fetch_optional(p)
                    .await?
            }
        };
        match row {
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
}
