//! Graceful shutdown and crash recovery: a restart loses no acknowledged like.
//!
//! # Contract
//!
//! Shutdown (driven by [`crate::app::Application::run_until`]; SIGTERM or SIGINT in the binary):
//!
//! 1. `/health/ready` turns 503 at once; the listener stops accepting; in-flight requests drain for at
//!    most `MAPLE_SHUTDOWN_GRACE_MS`. Requests still running then are answered 503 `SHUTTING_DOWN` by the
//!    [`RequestGate`] (the outermost layer), so they never hold the process up.
//! 2. Background tasks are cancelled through the one cancellation token and awaited with a deadline.
//! 3. Buffers flush in order: local like buffer → Redis → MySQL under the sync lock
//!    ([`LikeService::drain`]), then pending snapshot writes → database.
//! 4. Likes still not known to be in MySQL are written to
//!    `MAPLE_DATA_DIR/backup/shutdown-<instance>-<unix_ms>.json` ([`backup`]: versioned, one entry per
//!    like with its unique id; temp file, fsync, rename, directory fsync). Once that file is durable (or
//!    nothing was left), this process's journal segments are deleted.
//! 5. One summary log line ("shutdown complete": drained and cut requests, flushed/synced likes, backed-up
//!    likes, elapsed); the process exits 0 within grace + 10 s ([`POST_GRACE_BUDGET`] bounds steps 2–4).
//!
//! A second signal (the binary) writes the backup of whatever is pending at once and exits
//! ([`Emergency::backup_and_exit`]).
//!
//! Recovery at start-up (before ready; [`recovery`]) applies every backup file and every journal segment
//! of earlier processes idempotently. The journal ([`journal`]) appends every accepted like so that even a
//! `kill -9` loses nothing that reached the OS.
//!
//! # Guarantee
//!
//! An acknowledged like is in MySQL after a restart and the next sync — graceful shutdown or `kill -9` —
//! unless the machine itself fails (power loss, kernel crash) within one journal fsync window
//! (`MAPLE_JOURNAL_FSYNC_MS`) of the like being accepted, or the process is killed in the
//! sub-millisecond gap between the acknowledgement and the journal thread's write. No like is ever counted
//! twice (pairs are unique in the database and batch ids are recorded).
//!
//! Snapshot writes are not backed up: they are a copy of upstream data, fetched again on demand.

pub mod backup;
pub mod journal;
pub mod recovery;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::error::{Classify, Code, ErrorKind};
use crate::likes::LikeService;

pub use journal::Journal;
pub use recovery::{Dirs, Recovery, RecoveryReport, Source};

/// Bound on everything after the grace period (background tasks, flushes, backup, closing connections).
pub const POST_GRACE_BUDGET: Duration = Duration::from_secs(8);
/// After the grace period, cut requests get this long to have their 503 written.
pub const CUT_WRITE_TIME: Duration = Duration::from_millis(500);
/// Likes written to backup files.
pub const BACKUP_ENTRIES_TOTAL: &str = "maple_backup_entries_total";
/// Requests answered 503 because the grace period ended.
pub const SHUTDOWN_CUT_REQUESTS_TOTAL: &str = "maple_shutdown_cut_requests_total";

/// A shutdown or recovery failure.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A backup file that is not a whole file of the known format and version.
    #[error("not a valid backup file: {0}")]
    Corrupt(String),
}

impl Classify for ShutdownError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
    fn retryable(&self) -> bool {
        matches!(self, ShutdownError::Io { .. })
    }
    fn code(&self) -> Code {
        Code::Internal
    }
}

#[derive(Debug, Default)]
struct GateInner {
    /// Sharded by thread: every request adds and takes back one.
    in_flight: crate::telemetry::ShardedCount,
    draining: AtomicBool,
    drained: AtomicU64,
    cut: AtomicU64,
    /// Set by [`RequestGate::cut`] before the token is cancelled: what each new request checks. The token's
    /// own `is_cancelled` takes a lock every request would share; the token is for the requests that wait.
    is_cut: AtomicBool,
    cut_token: CancellationToken,
}

/// Counts in-flight requests, and answers 503 for those still running when the grace period ends.
#[derive(Clone, Debug, Default)]
pub struct RequestGate {
    inner: Arc<GateInner>,
}

/// One request in flight: (the gate, the shard it was counted on).
struct InFlight(Arc<GateInner>, usize);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.take_back(self.1);
    }
}

impl RequestGate {
    /// Shutdown began: requests finishing from now on count as drained.
    pub fn begin_drain(&self) -> u64 {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.in_flight()
    }

    /// The grace period is over: every request still running is answered 503.
    pub fn cut(&self) {
        self.inner.is_cut.store(true, Ordering::SeqCst);
        self.inner.cut_token.cancel();
    }

    pub fn in_flight(&self) -> u64 {
        self.inner.in_flight.sum()
    }

    /// Requests completed during the drain.
    pub fn drained(&self) -> u64 {
        self.inner.drained.load(Ordering::SeqCst)
    }

    /// Requests answered 503 at the end of the grace period.
    pub fn cut_count(&self) -> u64 {
        self.inner.cut.load(Ordering::SeqCst)
    }
}

fn shutting_down() -> Response {
    let body = serde_json::json!({"error": {
        "code": "SHUTTING_DOWN",
        "message": "the gateway is shutting down; retry on another instance",
        "request_id": "",
    }});
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// [`RequestGate`] is the layer of the gate; install it outermost, around the whole served service
/// (`tower::Layer::layer(&gate, api)`), not per route.
impl<S> tower::Layer<S> for RequestGate {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Gated<S> {
        Gated {
            gate: self.clone(),
            inner,
        }
    }
}

/// A service behind the [`RequestGate`]: counts its requests in flight and answers 503 `SHUTTING_DOWN` once
/// the gate is cut. Hand-written rather than `from_fn` (which boxes a clone of the inner service and a
/// future per request): it is on every request's path.
#[derive(Clone)]
pub struct Gated<S> {
    gate: RequestGate,
    inner: S,
}

impl<S> tower::Service<Request> for Gated<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    /// The inner service is called here, synchronously (it is not cloned per request); the returned future
    /// drives its answer against the cut.
    fn call(&mut self, req: Request) -> Self::Future {
        let gate = &self.gate.inner;
        if gate.is_cut.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Ok(shutting_down())));
        }
        let shard = gate.in_flight.add();
        let guard = InFlight(self.gate.inner.clone(), shard);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let gate = &*guard.0;
            // Biased: a request that completes on its first poll (a cache hit) never registers with the token.
            tokio::select! {
                biased;
                r = answer => {
                    if gate.draining.load(Ordering::SeqCst) {
                        gate.drained.fetch_add(1, Ordering::SeqCst);
                    }
                    match r {
                        Ok(r) => Ok(r),
                        Err(never) => match never {},
                    }
                }
                _ = gate.cut_token.cancelled() => {
                    gate.cut.fetch_add(1, Ordering::SeqCst);
                    metrics::counter!(SHUTDOWN_CUT_REQUESTS_TOTAL).increment(1);
                    Ok(shutting_down())
                }
            }
        })
    }
}

/// What the second signal needs: write the backup of everything pending, then exit.
#[derive(Clone, Debug)]
pub struct Emergency {
    pub likes: LikeService,
    pub backup_dir: PathBuf,
    pub instance: String,
}

impl Emergency {
    /// Writes the backup of every pending like (synchronously) and exits the process: 0 when the backup
    /// is durable (or there was nothing to back up), 1 otherwise.
    pub fn backup_and_exit(&self) -> ! {
        let pending = self.likes.pending_entries();
        let code = match backup::write(&self.backup_dir, &self.instance, "forced", &pending) {
            Ok(file) => {
                tracing::warn!(
                    backed_up = pending.len(),
                    file = ?file.map(|f| f.display().to_string()),
                    "second signal: forced exit after writing the backup"
                );
                0
            }
            Err(e) => {
                tracing::error!(error = %e, pending = pending.len(), "second signal: backup FAILED (the journal still holds the likes)");
                1
            }
        };
        std::process::exit(code)
    }
}

#[cfg(test)]
mod tests;
