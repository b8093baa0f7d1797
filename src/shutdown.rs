//! The shutdown sequence: a stopping gateway loses no acknowledged like and exits within grace + 10 s.
//!
//! # Contract
//!
//! [`Shutdown::serve_until`] serves until the shutdown signal resolves (SIGTERM or SIGINT in the binary),
//! then runs, in order:
//!
//! 1. `/health/ready` turns 503 at once; the listener stops accepting; in-flight requests drain for at
//!    most `MAPLE_SHUTDOWN_GRACE_MS`. Requests still running then are answered 503 `SHUTTING_DOWN` by the
//!    request gate ([`crate::api::gate`], the outermost layer), and get [`CUT_WRITE_TIME`] to have that
//!    answer written, so they never hold the process up.
//! 2. Background tasks are cancelled through the one cancellation token and awaited with a deadline (the
//!    like sync loop drains on its way out).
//! 3. Buffers flush in order: local like buffer → Redis → MySQL under the sync lock
//!    ([`LikeService::drain`]), then pending snapshot writes → database.
//! 4. Likes still not known to be in MySQL are written to
//!    `MAPLE_DATA_DIR/backup/shutdown-<instance>-<unix_ms>.json` ([`backup`]), counted in
//!    [`BACKUP_ENTRIES_TOTAL`]. Once that file is durable (or nothing was left), this process's journal
//!    segments are deleted.
//! 5. Redis, the database and the simulator are closed; one summary log line ("shutdown complete":
//!    drained and cut requests, flushed/synced likes, backed-up likes, elapsed). [`POST_GRACE_BUDGET`]
//!    bounds steps 2–5.
//!
//! A second signal (the binary) writes the backup of whatever is pending at once and exits
//! ([`Emergency::backup_and_exit`]).
//!
//! Failure modes: a server error ends serving with that error and skips the sequence (the journal still
//! holds every accepted like). Background tasks or flushes that overrun their share of the budget are
//! abandoned with a warning — what they did not move is in the backup file. A failed backup write is
//! logged as an error and the journal segments are kept, so the next start-up replays them
//! ([`crate::durability`] holds the durability guarantee this sequence completes).

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::AppState;
use crate::api::gate::RequestGate;
use crate::durability::{Journal, backup};
use crate::likes::LikeService;
use crate::sim::SimHandle;

/// Bound on everything after the grace period (background tasks, flushes, backup, closing connections).
pub const POST_GRACE_BUDGET: Duration = Duration::from_secs(8);
/// After the grace period, cut requests get this long to have their 503 written.
pub const CUT_WRITE_TIME: Duration = Duration::from_millis(500);
/// Likes written to backup files.
pub const BACKUP_ENTRIES_TOTAL: &str = "maple_backup_entries_total";

/// Everything the sequence stops, drains and closes.
pub struct Shutdown {
    pub state: AppState,
    /// The gate the served router sits behind.
    pub gate: RequestGate,
    /// How long in-flight requests may drain (`MAPLE_SHUTDOWN_GRACE_MS`).
    pub grace: Duration,
    pub cancel: CancellationToken,
    pub background: TaskTracker,
    pub journal: Journal,
    pub backup_dir: PathBuf,
    pub simulator: Option<SimHandle>,
}

impl Shutdown {
    /// Serves through `serve` until `signal` resolves, then runs the sequence (see the module
    /// documentation). `serve` builds the server future from the future to hand to its graceful shutdown
    /// (it resolves once readiness is 503 and the gate drains).
    pub async fn serve_until<S, F>(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
        serve: S,
    ) -> std::io::Result<()>
    where
        S: FnOnce(BoxFuture<'static, ()>) -> F,
        F: Future<Output = std::io::Result<()>>,
    {
        let Shutdown {
            state,
            gate,
            grace,
            cancel,
            background,
            mut journal,
            backup_dir,
            simulator,
        } = self;

        // Step 1: the signal turns readiness 503 and starts the drain; the grace timer starts with it.
        let (begin_tx, begin_rx) = tokio::sync::oneshot::channel::<Instant>();
        let ready_state = state.clone();
        let drain_gate = gate.clone();
        let graceful = Box::pin(async move {
            signal.await;
            ready_state.readiness.mark_shutting_down();
            let in_flight = drain_gate.begin_drain();
            tracing::info!(in_flight, "shutdown requested: draining in-flight requests");
            let _ = begin_tx.send(Instant::now());
        });
        let server = serve(graceful);
        let mut server = std::pin::pin!(server);
        let begun = Arc::new(Mutex::new(None::<Instant>));
        let begun_w = begun.clone();
        let bounded = async move {
            if let Ok(t) = begin_rx.await {
                *begun_w.lock().expect("poisoned") = Some(t);
            }
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            r = &mut server => r?,
            _ = bounded => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, in_flight = gate.in_flight(), "grace period over: answering remaining requests 503");
                gate.cut();
                let _ = tokio::time::timeout(CUT_WRITE_TIME, &mut server).await;
            }
        }
        let began = begun.lock().expect("poisoned").unwrap_or_else(Instant::now);
        let deadline = tokio::time::Instant::now() + POST_GRACE_BUDGET;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());

        // Step 2: background tasks, one token, awaited with a deadline (the like sync loop drains on its
        // way out).
        cancel.cancel();
        background.close();
        let bg_budget = left().min(Duration::from_secs(4));
        if tokio::time::timeout(bg_budget, background.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                budget_ms = bg_budget.as_millis() as u64,
                "background tasks did not stop in time"
            );
        }
        // Step 3: like buffer → Redis → MySQL under the lock, with what is left of the budget.
        let drain_budget = left()
            .saturating_sub(Duration::from_millis(1500))
            .min(Duration::from_secs(3));
        let drained = state.likes.drain(drain_budget).await;
        // Pending snapshot writes → database.
        let snap_budget = left()
            .saturating_sub(Duration::from_millis(1000))
            .min(Duration::from_secs(2));
        let snapshots_done = state.characters.flush_snapshot_writes(snap_budget).await;
        if !snapshots_done {
            tracing::warn!(
                "some equipment snapshot writes did not finish in time (refetched on demand)"
            );
        }
        // Step 4: what is left → backup file; then this process's journal is no longer needed.
        let segments = journal.close();
        let remaining = drained.remaining;
        let backup = backup::write(&backup_dir, &state.instance_id, "shutdown", &remaining);
        let backed_up = match &backup {
            Ok(file) => {
                metrics::counter!(BACKUP_ENTRIES_TOTAL).increment(remaining.len() as u64);
                journal.remove(&segments);
                if let Some(f) = file {
                    tracing::warn!(file = %f.display(), entries = remaining.len(), "likes not yet in the database were backed up; they are applied at the next start");
                }
                remaining.len()
            }
            Err(e) => {
                tracing::error!(error = %e, pending = remaining.len(), "backup write FAILED: the journal segments are kept and replayed at the next start");
                0
            }
        };
        // Step 5: close the connections, then the summary.
        let close_budget = left().max(Duration::from_millis(200));
        let _ = tokio::time::timeout(close_budget, async {
            if let Some(r) = &state.redis {
                r.quit().await;
            }
            state.store.close().await;
            if let Some(sim) = simulator {
                let _ = sim.shutdown().await;
            }
        })
        .await;
        tracing::info!(
            drained_requests = gate.drained(),
            cut_requests = gate.cut_count(),
            likes_flushed = drained.flushed,
            likes_synced = drained.synced,
            likes_backed_up = backed_up,
            backup_failed = backup.is_err(),
            snapshots_flushed = snapshots_done,
            elapsed_ms = began.elapsed().as_millis() as u64,
            "shutdown complete"
        );
        Ok(())
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
