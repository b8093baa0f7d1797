//! The injectable entry point: `Application::build(settings)` → bound address → `run_until(shutdown)`.
//!
//! Contract: `build` does everything that can fail at start-up — data directory, database URL and
//! migrations (when the database answers), cube table, the in-process simulator when no API key is configured, binding the listener
//! (port 0 allowed) — and returns a clear [`AppError`] instead of panicking. `run_until` serves until the
//! shutdown future resolves, then turns `/health/ready` to 503, stops accepting connections, lets in-flight
//! requests drain for at most the configured grace period (axum's graceful shutdown alone would wait forever),
//! and returns.
//!
//! A real deployment (`NEXON_API_KEY` set for Nexon's upstream) never prices with the simulator's synthetic
//! cube table: `build` refuses a `MAPLE_CUBE_TABLE` whose content (version hash) is
//! the synthetic table's, whatever the file is called, with a one-line [`AppError::Table`].
//!
//! Start-up recovery is specified in [`crate::durability`] and the shutdown sequence (flush order, backup
//! file, summary line, the exit bound of grace plus 10 s) in [`crate::shutdown`]: `build` binds first and
//! applies the backup files and journal segments of earlier processes in the background, with
//! `/health/ready` 503 `recovering` until every one is in the database (`/health/live` is 200 meanwhile:
//! a database that is down must not make a liveness probe kill the instance in a loop); `run_until`
//! hands the serving to the sequence.
//!
//! A MySQL database that does not answer within 5 s at start-up does not stop `build` either: the pool
//! connects on first use, the migrations are applied in the background once it answers, and the instance
//! stays `recovering` until then. A bad URL or a failing migration is still a start-up error.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;

use crate::api::gate::{Gated, RequestGate};
use crate::api::{self, AppState, HttpLimits, Readiness, Services, UpstreamMode};
use crate::cache::{self, CacheConfig, Clock, TieredCache};
use crate::characters::CharacterService;
use crate::config::{Secret, Settings};
use crate::durability::{Dirs, DurabilityError, Journal, Recovery};
use crate::error::Classify;
use crate::expectation::{CubeTables, TableReport};
use crate::likes::{LikeConfig, LikeService};
use crate::lock::{LockError, LockService};
use crate::nexon::{ClientOptions, NexonClient};
use crate::pipeline::{Pipeline, StandardConfig};
use crate::redis::{RedisError, RedisHandle};
use crate::shutdown::{self, Shutdown};
use crate::sim;
use crate::store::{Store, StoreError};
use crate::telemetry;

/// A start-up or serving failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cube table: {0}")]
    Table(String),
    #[error("upstream client: {0}")]
    Upstream(String),
    #[error("simulator: {0}")]
    Simulator(std::io::Error),
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("locks: {0}")]
    Lock(LockError),
    #[error("recovery: {0}")]
    Recovery(#[from] DurabilityError),
}

/// A built, bound, not yet running gateway.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    settings: Settings,
    simulator: Option<sim::SimHandle>,
    cancel: tokio_util::sync::CancellationToken,
    background: tokio_util::task::TaskTracker,
    journal: Journal,
    dirs: Dirs,
}

/// Whether the gateway prices real game data: an API key for Nexon's own upstream (a key for a simulator
/// started on its own, as the local cluster runs, still prices simulated characters).
fn prices_real_data(settings: &Settings) -> bool {
    settings.upstream.api_key.is_some()
        && settings.upstream.url == crate::config::DEFAULT_UPSTREAM_URL
}

/// Whether `tables` is the simulator's synthetic table, told by content (its version hash), not by file name.
fn is_synthetic(tables: &CubeTables) -> Result<bool, AppError> {
    let (synthetic, _) = CubeTables::parse(sim::SYNTHETIC_TABLE_CSV.as_bytes())
        .map_err(|e| AppError::Table(format!("simulator table: {e}")))?;
    Ok(tables.version() == synthetic.version())
}

/// Loads the cube table: `MAPLE_CUBE_TABLE`, else the simulator's synthetic table when the simulator is the
/// upstream (its characters were rolled from it), else none (cube blocks report `no_table`).
fn load_tables(
    settings: &Settings,
) -> Result<(Option<Arc<CubeTables>>, serde_json::Value), AppError> {
    let (tables, report, source): (CubeTables, TableReport, String) = if let Some(path) =
        &settings.instance.cube_table
    {
        let (t, r) = CubeTables::load(path)
            .map_err(|e| AppError::Table(format!("{}: {e}", path.display())))?;
        if prices_real_data(settings) && is_synthetic(&t)? {
            return Err(AppError::Table(format!(
                "MAPLE_CUBE_TABLE={} is the simulator's synthetic table (made-up rates, not game data) and NEXON_API_KEY is set for the real upstream: point MAPLE_CUBE_TABLE at the real cube probability table",
                path.display()
            )));
        }
        (t, r, path.display().to_string())
    } else if settings.uses_embedded_simulator() {
        let (t, r) = CubeTables::parse(sim::SYNTHETIC_TABLE_CSV.as_bytes())
            .map_err(|e| AppError::Table(format!("simulator table: {e}")))?;
        (t, r, "simulator (synthetic)".to_string())
    } else {
        tracing::warn!("MAPLE_CUBE_TABLE is not set: cube expectations are unavailable (no_table)");
        return Ok((None, serde_json::json!({"loaded": false})));
    };
    let over_one = report.over_one.len();
    metrics::gauge!(telemetry::CUBE_TABLE_ERRORS, "version" => tables.version().to_string())
        .set(over_one as f64);
    if over_one > 0 {
        tracing::error!(
            source = %source,
            groups = over_one,
            "cube table has groups whose rates sum to more than 1 (+1e-4): items needing them are unavailable"
        );
    }
    tracing::info!(source = %source, version = %tables.version(), rows = report.rows, groups = report.groups, "cube table loaded");
    let status = serde_json::json!({
        "loaded": true,
        "source": source,
        "version": tables.version(),
        "rows": report.rows,
        "groups": report.groups,
        "groups_over_one": over_one,
    });
    Ok((Some(Arc::new(tables)), status))
}

/// What the server serves: the API with its inbound layers, behind the shutdown gate.
pub type Served = Gated<api::Api>;

/// The API with its inbound layers, behind the shutdown gate.
fn served_router(state: &AppState, settings: &Settings, gate: &RequestGate) -> Served {
    let limits = HttpLimits {
        max_concurrency: settings.server.max_concurrency,
        client_rps: settings.server.client_rps,
        trusted_proxies: settings.server.trusted_proxies.clone(),
        request_timeout: settings.server.request_timeout,
    };
    tower::Layer::layer(gate, api::router(state.clone(), &limits))
}

/// How long start-up waits for the database before it serves without it.
const DATABASE_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Pause between attempts to apply the migrations of a database that was down at start-up.
const MIGRATE_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// The store, and whether its migrations are applied. A MySQL database that does not answer at start-up
/// does not stop the gateway: it serves without it (reads degrade as in any database outage) and
/// [`recover`] applies the migrations once it answers. Any other failure (a bad URL, a failing
/// migration, SQLite) is fatal.
async fn open_store(settings: &Settings) -> Result<(Store, bool), AppError> {
    let attempt = tokio::time::timeout(DATABASE_START_TIMEOUT, Store::connect(&settings.database));
    let unreachable = match attempt.await {
        Ok(Ok(store)) => {
            tracing::info!(backend = ?store.backend(), "database ready (migrations applied)");
            return Ok((store, true));
        }
        Ok(Err(e)) if e.retryable() => e.to_string(),
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => format!("no answer within {DATABASE_START_TIMEOUT:?}"),
    };
    let store = Store::connect_deferred(&settings.database).await?;
    if store.backend() != crate::store::Backend::Mysql {
        return Err(AppError::Store(StoreError::Setup(unreachable)));
    }
    tracing::warn!(
        error = %unreachable,
        "database unreachable at start-up: serving without it; migrations and start-up recovery wait for it in the background (/health/ready says recovering)"
    );
    Ok((store, false))
}

/// Start-up recovery in the background: the migrations of a database that was down at start-up, then
/// the files of earlier processes (a first pass that re-buffers what the database cannot take yet, then
/// retries until every file is applied); the instance reports ready once all are.
async fn recover(
    state: AppState,
    recovery: Recovery,
    sources: Vec<crate::durability::Source>,
    migrated: bool,
    cancel: tokio_util::sync::CancellationToken,
) {
    let started = Instant::now();
    let report = recovery.run(sources, true).await;
    tracing::info!(
        files_applied = report.files_applied,
        entries_applied = report.entries_applied,
        inserted = report.inserted,
        quarantined = report.quarantined,
        deferred = report.deferred.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "start-up recovery: first pass done"
    );
    if !migrated {
        loop {
            // sqlx's migration future is not `Send` for every lifetime (it cannot be spawned): drive it on
            // a blocking thread of the runtime instead.
            let store = state.store.clone();
            let migrated = tokio::task::spawn_blocking(move || {
                tokio::runtime::Handle::current().block_on(store.migrate())
            })
            .await;
            match migrated.unwrap_or_else(|e| Err(StoreError::Setup(e.to_string()))) {
                Ok(()) => {
                    tracing::info!("database reachable again: migrations applied");
                    break;
                }
                Err(e) => tracing::debug!(error = %e, "database still unreachable"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(MIGRATE_RETRY) => {}
            }
        }
    }
    if !report.deferred.is_empty() {
        recovery.retry_loop(report.deferred, cancel.clone()).await;
    }
    if !cancel.is_cancelled() {
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "start-up recovery done"
        );
        state.readiness.mark_recovered();
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, AppError> {
        std::fs::create_dir_all(&settings.instance.data_dir).map_err(|source| {
            AppError::DataDir {
                path: settings.instance.data_dir.display().to_string(),
                source,
            }
        })?;

        // The metrics recorder first: recovery (below) already counts.
        let metrics_handle = telemetry::metrics_handle();
        let (store, migrated) = open_store(&settings).await?;

        let (simulator, upstream_base, key, upstream_mode) = if settings.uses_embedded_simulator() {
            let sim = sim::spawn(
                sim::Simulator::new(sim::SimConfig {
                    seed: 1,
                    api_key: None,
                }),
                "127.0.0.1:0".parse().expect("static address"),
            )
            .await
            .map_err(AppError::Simulator)?;
            tracing::warn!(
                simulator = %sim.base_url(),
                "NEXON_API_KEY is not set: serving SIMULATED characters from the in-process Nexon simulator; \
                 set NEXON_API_KEY to use the real Nexon Open API"
            );
            let base = sim.base_url();
            (
                Some(sim),
                base,
                Secret::new("simulator-key"),
                UpstreamMode::Simulator,
            )
        } else {
            let key = settings.upstream.api_key.clone().unwrap_or_default();
            (
                None,
                settings.upstream.url.clone(),
                key,
                UpstreamMode::Nexon,
            )
        };
        let (tables, table_status) = load_tables(&settings)?;
        let redis = RedisHandle::connect_with(&settings.redis, settings.redis_wait).await?;
        let nexon = NexonClient::new(
            &upstream_base,
            key.clone(),
            ClientOptions::from_settings(
                &settings.upstream,
                key.expose(),
                redis.clone(),
                &settings.instance.id,
            ),
        )
        .map_err(|e| AppError::Upstream(e.to_string()))?;
        let rate = nexon.status().rate;
        tracing::info!(
            per_second = rate.per_second,
            per_day = ?rate.per_day,
            mode = ?rate.mode,
            wait_ms = rate.max_wait_ms,
            "upstream rate budget"
        );
        let cache = TieredCache::new(
            CacheConfig::from_settings(&settings.cache),
            redis.clone(),
            Clock::new(),
            settings.instance.id.clone(),
        );
        let cancel = tokio_util::sync::CancellationToken::new();
        let background = tokio_util::task::TaskTracker::new();
        if let Some(r) = &redis {
            background.spawn(cache::run_listener(
                r.clone(),
                cache.clone(),
                cancel.clone(),
            ));
            if let Some(w) = r.watcher(cancel.clone()) {
                background.spawn(w);
            }
        }
        let characters = CharacterService::new(
            nexon.clone(),
            store.clone(),
            tables,
            cache,
            redis.clone(),
            upstream_mode,
        );
        let locks = LockService::new(redis.clone(), &settings.database).map_err(AppError::Lock)?;
        let likes = LikeService::new(
            LikeConfig::from_settings(&settings.likes),
            store.clone(),
            redis.clone(),
            locks,
            &settings.instance.id,
        );
        // Backup files and journal segments of earlier processes, listed before this process's journal
        // starts; applied in the background once the port serves (see `recover`).
        let dirs = Dirs::new(&settings.instance.data_dir);
        dirs.create()?;
        let recovery = Recovery::new(likes.clone(), dirs.clone(), settings.likes.sync_batch);
        let sources = recovery.sources();
        let journal = Journal::start(&dirs.journal, likes.clone())?;
        background.spawn(telemetry::run_upkeep(
            metrics_handle.clone(),
            cancel.clone(),
        ));
        background.spawn(likes.clone().run_flush_loop(cancel.clone()));
        background.spawn(likes.clone().run_sync_loop(cancel.clone()));
        let pipeline = Arc::new(Pipeline::standard(StandardConfig::default()));

        let listener = TcpListener::bind(settings.server.listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: settings.server.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(AppError::Serve)?;

        let state = Arc::new(Services {
            instance_id: settings.instance.id.clone(),
            started_at: Instant::now(),
            readiness: Readiness::default(),
            store,
            nexon,
            upstream_mode,
            metrics: metrics_handle,
            table_status,
            redis,
            pipeline,
            characters,
            admin_token: settings.server.admin_token.clone(),
            server_errors: Default::default(),
            http_metrics: Default::default(),
            likes,
        });

        if !sources.is_empty() || !migrated {
            state.readiness.mark_recovering();
            background.spawn(recover(
                state.clone(),
                recovery,
                sources,
                migrated,
                cancel.clone(),
            ));
        }

        Ok(Application {
            listener,
            addr,
            state,
            settings,
            simulator,
            cancel,
            background,
            journal,
            dirs,
        })
    }

    /// What a second shutdown signal needs to write the backup and exit at once.
    pub fn emergency(&self) -> shutdown::Emergency {
        shutdown::Emergency {
            likes: self.state.likes.clone(),
            backup_dir: self.dirs.backup.clone(),
            instance: self.settings.instance.id.clone(),
        }
    }

    /// The address the server is bound to (the real port when `MAPLE_LISTEN` used port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the in-process simulator, when one runs.
    pub fn simulator_url(&self) -> Option<String> {
        self.simulator.as_ref().map(|s| s.base_url())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The router [`Application::run_until`] serves, behind the request gate `gate`: for in-process
    /// callers (the `http` benchmark drives it without a socket).
    pub fn router(&self, gate: &RequestGate) -> Served {
        served_router(&self.state, &self.settings, gate)
    }

    /// Serves until `shutdown` resolves, then runs the shutdown sequence of [`crate::shutdown`].
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Application {
            listener,
            addr,
            state,
            settings,
            simulator,
            cancel,
            background,
            journal,
            dirs,
        } = self;
        let gate = RequestGate::default();
        let router = served_router(&state, &settings, &gate);
        state.readiness.mark_started();
        tracing::info!(%addr, instance = %state.instance_id, "maple-gateway listening");

        let sequence = Shutdown {
            state,
            gate,
            grace: settings.shutdown.grace,
            cancel,
            background,
            journal,
            backup_dir: dirs.backup,
            simulator,
        };
        sequence
            .serve_until(shutdown, |graceful| {
                axum::serve(
                    listener,
                    axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                        SocketAddr,
                    >(router),
                )
                .with_graceful_shutdown(graceful)
                .into_future()
            })
            .await
            .map_err(AppError::Serve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn keyed_settings(table: &str) -> Settings {
        let dir = std::env::temp_dir().join("maple-app-table-check");
        let mut s = Settings::for_data_dir(&dir);
        s.upstream.api_key = Some(Secret::new("fake-service-key"));
        s.instance.cube_table = Some(std::path::PathBuf::from(table));
        s
    }

    #[test]
    fn a_real_key_refuses_the_simulators_synthetic_table() {
        let Err(err) = load_tables(&keyed_settings("data/sim-cube-table.csv")) else {
            panic!("a synthetic table with a real key must be refused");
        };
        let text = err.to_string();
        assert!(text.contains("MAPLE_CUBE_TABLE"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    #[test]
    fn a_real_key_accepts_the_reference_table() {
        let (tables, _) = load_tables(&keyed_settings("data/cube_probability.csv")).unwrap();
        assert!(tables.is_some());
    }

    #[test]
    fn a_key_for_a_simulator_upstream_keeps_the_synthetic_table() {
        let mut s = keyed_settings("data/sim-cube-table.csv");
        s.upstream.url = "http://127.0.0.1:1".to_string();
        assert!(load_tables(&s).unwrap().0.is_some());
    }
}
