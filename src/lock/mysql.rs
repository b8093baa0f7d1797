//! The MySQL tier: `GET_LOCK` / `RELEASE_LOCK` on one pinned connection of a small dedicated pool.
//!
//! Contract: a MySQL named lock belongs to the *session* that took it, so every statement of a lock —
//! `GET_LOCK`, the renewals (`IS_USED_LOCK(name) = CONNECTION_ID()`), `RELEASE_LOCK` — runs on the one
//! connection taken from the pool at acquisition and kept by the guard's keeper; never through the pool
//! handle, where the release could land on another connection and fail silently. The session's
//! `wait_timeout` is set to the lease, so a holder that stops issuing statements loses its session — and
//! the lock — after the lease, like a Redis key expiring. After a clean release the connection's
//! `wait_timeout` is restored and it goes back to the pool; on any error, refusal or unexpected answer the
//! connection is closed instead (`close_on_drop`), so a lock can never stay behind in the pool.
//!
//! `GET_LOCK` answers 1 (taken), 0 (timed out: contention) or NULL (error). A pool that cannot hand out a
//! connection within the wait is contention when all of its connections are busy waiting for locks, and an
//! unavailable database otherwise.

use std::str::FromStr;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, MySql, MySqlPool};
use tokio::time::Instant;

use super::{Acquired, Held, TierDown};
use crate::config::RedactedUrl;

/// Connections of the dedicated lock pool (each held or waiting lock pins one).
pub const POOL_SIZE: u32 = 8;
/// Time allowed to get a connection even when the caller's wait is shorter.
const CONNECT_FLOOR: Duration = Duration::from_secs(1);
/// Bound on a renewal or the failback probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The name used with `GET_LOCK`: named locks are server-wide, so the database name is part of it —
/// `maple:<database>:<name>`, or a digest of that when it exceeds MySQL's 64 characters.
pub fn mysql_lock_name(database: &str, name: &str) -> String {
    let full = format!("maple:{database}:{name}");
    if full.chars().count() <= 64 {
        full
    } else {
        let digest = hex::encode(Sha256::digest(full.as_bytes()));
        format!("maple:{}", &digest[..58])
    }
}

fn down(e: sqlx::Error) -> TierDown {
    TierDown::from_error(e)
}

pub(crate) struct MysqlTier {
    pool: MySqlPool,
    database: String,
}

impl MysqlTier {
    /// A lazily connecting pool (start-up never fails because the database is down).
    pub fn new(url: &RedactedUrl) -> Result<MysqlTier, String> {
        let opts = MySqlConnectOptions::from_str(url.expose())
            .map_err(|e| format!("bad MySQL URL {}: {e}", url.redacted()))?;
        let database = opts.get_database().unwrap_or("").to_string();
        let pool = MySqlPoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(opts);
        Ok(MysqlTier { pool, database })
    }

    /// `Ok(None)` on contention until the deadline; `Err` when the database did not answer.
    pub async fn acquire(
        &self,
        name: &str,
        deadline: Instant,
        lease: Duration,
    ) -> Result<Option<Acquired>, TierDown> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let conn =
            match tokio::time::timeout(remaining.max(CONNECT_FLOOR), self.pool.acquire()).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) if !self.all_busy() => return Err(down(e)),
                Err(_) if !self.all_busy() => {
                    return Err(TierDown::new("no lock connection within the wait"));
                }
                _ => return Ok(None),
            };
        let mut pinned = Pinned(Some(conn));
        let db_name = mysql_lock_name(&self.database, name);
        let lease_secs = lease.as_secs_f64().ceil().max(1.0) as u64;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let got: Option<i64> = {
            let c = pinned.conn();
            sqlx::query(AssertSqlSafe(format!(
                "SET SESSION wait_timeout = {lease_secs}"
            )))
            .execute(&mut **c)
            .await
            .map_err(down)?;
            sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
                .bind(&db_name)
                .bind(remaining.as_secs_f64())
                .fetch_one(&mut **c)
                .await
                .map_err(down)?
        };
        let taken_at = Instant::now();
        match got {
            Some(1) => {}
            Some(0) => {
                pinned.restore_and_return().await;
                return Ok(None);
            }
            _ => return Err(TierDown::new(format!("GET_LOCK({db_name}) returned NULL"))),
        }
        // The token: the database clock in µs, above the last one issued for this name. Safe to
        // read-modify-write here: only the holder of the named lock runs it.
        let token: i64 = {
            let c = pinned.conn();
            sqlx::query(
                "INSERT INTO lock_tokens (lock_name, last_issued) \
                 VALUES (?, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)) \
                 ON DUPLICATE KEY UPDATE last_issued = GREATEST(last_issued + 1, VALUES(last_issued))",
            )
            .bind(name)
            .execute(&mut **c)
            .await
            .map_err(down)?;
            sqlx::query_scalar("SELECT last_issued FROM lock_tokens WHERE lock_name = ?")
                .bind(name)
                .fetch_one(&mut **c)
                .await
                .map_err(down)?
        };
        Ok(Some(Acquired {
            held: Box::new(MysqlHeld {
                conn: pinned,
                db_name,
            }),
            token: token as u64,
            taken_at,
        }))
    }

    fn all_busy(&self) -> bool {
        self.pool.size() >= POOL_SIZE && self.pool.num_idle() == 0
    }

    /// Whether no session holds `name` (true when the database cannot tell: fencing is the backstop).
    pub async fn is_free(&self, name: &str) -> bool {
        let q = sqlx::query_scalar::<_, Option<i64>>("SELECT IS_FREE_LOCK(?)")
            .bind(mysql_lock_name(&self.database, name))
            .fetch_one(&self.pool);
        !matches!(
            tokio::time::timeout(PROBE_TIMEOUT, q).await,
            Ok(Ok(Some(0)))
        )
    }
}

/// A pinned connection: closed on drop unless handed back after a clean release.
struct Pinned(Option<PoolConnection<MySql>>);

impl Pinned {
    fn conn(&mut self) -> &mut PoolConnection<MySql> {
        self.0
            .as_mut()
            .expect("pinned connection present until release")
    }

    /// Restores the session's `wait_timeout` and returns the connection to the pool (closes it if that
    /// fails).
    async fn restore_and_return(&mut self) {
        let ok = sqlx::query("SET SESSION wait_timeout = @@GLOBAL.wait_timeout")
            .execute(&mut **self.conn())
            .await
            .is_ok();
        if ok {
            drop(self.0.take());
        }
    }
}

impl Pinned {
    /// Closes the connection (it is not returned to the pool).
    fn close_now(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.close_on_drop();
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            c.close_on_drop();
        }
    }
}

struct MysqlHeld {
    conn: Pinned,
    db_name: String,
}

impl Held for MysqlHeld {
    fn renew(&mut self, lease: Duration) -> BoxFuture<'_, Result<bool, TierDown>> {
        async move {
            let bound = (lease / 3).clamp(Duration::from_millis(50), PROBE_TIMEOUT);
            let Some(c) = self.conn.0.as_mut() else {
                return Ok(false);
            };
            let q =
                sqlx::query_scalar::<_, Option<i64>>("SELECT IS_USED_LOCK(?) = CONNECTION_ID()")
                    .bind(&self.db_name)
                    .fetch_one(&mut **c);
            match tokio::time::timeout(bound, q).await {
                Ok(Ok(Some(1))) => Ok(true),
                // Refused, or the session failed or hung: close it now, so that a session still alive on
                // the server lets the lock go at once rather than after `wait_timeout`.
                _ => {
                    self.conn.close_now();
                    Ok(false)
                }
            }
        }
        .boxed()
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<(), TierDown>> {
        async move {
            let Some(c) = self.conn.0.as_mut() else {
                return Err(TierDown::new("the lock's session was already closed"));
            };
            let r: Result<Option<i64>, _> = sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
                .bind(&self.db_name)
                .fetch_one(&mut **c)
                .await;
            match r {
                Ok(Some(1)) => {
                    self.conn.restore_and_return().await;
                    Ok(())
                }
                Ok(other) => Err(TierDown::new(format!(
                    "RELEASE_LOCK({}) returned {other:?}: not held by this session",
                    self.db_name
                ))),
                Err(e) => Err(down(e)),
            }
        }
        .boxed()
    }
}
