//! Tracing subscriber, the Prometheus metrics recorder, and the metric handles the request path shares.
//!
//! Contract: [`init_tracing`] installs the global subscriber at most once (later calls are no-ops, so tests
//! that build several applications in one process are fine). [`metrics_handle`] installs the Prometheus
//! recorder at most once per process and returns a handle that renders the text exposition format; every
//! application in the process shares it. A metric's name lives beside the code that records it (the
//! `cache`, `characters`, `likes`, `lock`, `nexon`, `pipeline`, `redis`, `shutdown` and `store` modules, the
//! API layer); the constants below name the HTTP metrics recorded here and the few that other modules
//! share. `GET /metrics` lists every metric the running gateway has recorded. Labels are
//! bounded-cardinality (never a character name). Installing the recorder registers the HELP text of every metric ([`help::CATALOG`], the one
//! table of names, kinds and meanings) and sets `maple_build_info`;
//! [`flush`] also reads the `process_*` metrics from `/proc` (Linux; elsewhere they are absent).
//!
//! The recorder is installed without its own upkeep task: the application runs [`run_upkeep`] (histogram
//! buffers drained every 5 s) until shutdown. Hot paths do not call `metrics::counter!` with labels per
//! event: they keep handles in a [`HandleCache`] or [`HttpMetrics`] owned by the component, registered
//! on first use with the recorder current at that moment (a handle registered before any recorder is
//! installed counts nowhere, so components are built after [`metrics_handle`]). The handles the request
//! path updates on every request (HTTP, pipeline task and cache request metrics) are batched per thread
//! shard ([`BatchedCounter`], [`BatchedHistogram`]): their updates reach the recorder at the next
//! [`flush`], which the `/metrics` handler runs before rendering and [`run_upkeep`] every 5 s, so a scrape
//! sees every update made before it and nothing is lost; a component that renders a handle itself flushes
//! first. Counts that every request changes and only rare readers sum (the shutdown gate's in-flight
//! requests, the cache's hits and misses for the operator status) live in a [`ShardedCount`]: one cache
//! line per thread shard, so the request threads of different cores never write the same line.

pub mod help;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// HTTP requests served, by route template, method and status.
pub const HTTP_REQUESTS_TOTAL: &str = "maple_http_requests_total";
/// HTTP request latency in seconds, by route template and method.
pub const HTTP_REQUEST_DURATION: &str = "maple_http_request_duration_seconds";
/// Requests rejected before reaching a handler, by reason (`overloaded`, `timeout`, `body_too_large`).
pub const HTTP_REJECTED_TOTAL: &str = "maple_http_rejected_total";
/// Requests whose handler panicked (answered 500 `INTERNAL`), by route template.
pub const HTTP_PANICS_TOTAL: &str = "maple_http_panics_total";
/// Cache lookups by tier and result (`hit`, `miss`, `stale`).
pub const CACHE_REQUESTS_TOTAL: &str = "maple_cache_requests_total";
/// Upstream calls by endpoint and outcome.
pub const UPSTREAM_CALLS_TOTAL: &str = "maple_upstream_calls_total";
/// Upstream call latency in seconds, by endpoint.
pub const UPSTREAM_CALL_DURATION: &str = "maple_upstream_call_duration_seconds";
/// 1 when the loaded cube table has groups summing over 1 (a data error), per table version.
pub const CUBE_TABLE_ERRORS: &str = "maple_cube_table_error_groups";
/// 1 while the application is ready, 0 while starting or shutting down.
pub const READY: &str = "maple_ready";
/// Always 1; labels `version` (the crate's) and `commit` (`MAPLE_GIT_COMMIT` at build time, else `unknown`).
pub const BUILD_INFO: &str = "maple_build_info";
/// Resident memory of the process in bytes (`/proc/self/status` `VmRSS`).
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// CPU time of the process (user + system) in seconds (`/proc/self/stat`). A gauge carrying a counter's
/// value: the recorder's counters are integers; `rate()` works on it as on a counter.
pub const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Open file descriptors (`/proc/self/fd`).
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// When the process started, in Unix seconds (`/proc/self/stat` start time plus the boot time).
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";

/// The git commit the binary was built from, when the build set `MAPLE_GIT_COMMIT`.
pub const GIT_COMMIT: &str = match option_env!("MAPLE_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// Sets `maple_build_info` (once per recorder: the labels never change).
fn export_build_info() {
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => GIT_COMMIT)
        .set(1.0);
}

/// What the process metrics read from `/proc` (Linux only; elsewhere, or when a file cannot be read, the
/// metric is not updated).
#[derive(Debug, Default, PartialEq)]
struct ProcessSample {
    resident_bytes: Option<f64>,
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<f64>,
}

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`: 100 on every Linux architecture the gateway
/// is built for).
const USER_HZ: f64 = 100.0;

/// `VmRSS` of `/proc/self/status` in bytes.
fn parse_rss(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// `(cpu seconds, start time in seconds since boot)` from `/proc/self/stat` (fields 14 + 15 and 22; the
/// command name, field 2, may contain spaces and parentheses, so fields are counted after its last `)`).
fn parse_stat(stat: &str) -> Option<(f64, f64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i)?.parse::<f64>().ok();
    // After `)`, index 0 is field 3 (state): field n is at index n - 3.
    Some(((tick(11)? + tick(12)?) / USER_HZ, tick(19)? / USER_HZ))
}

/// The `btime` line of `/proc/stat`: boot time in Unix seconds.
fn parse_btime(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn sample_process() -> ProcessSample {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let stat = read("/proc/self/stat").and_then(|s| parse_stat(&s));
    let btime = read("/proc/stat").and_then(|s| parse_btime(&s));
    ProcessSample {
        resident_bytes: read("/proc/self/status").and_then(|s| parse_rss(&s)),
        cpu_seconds: stat.map(|(cpu, _)| cpu),
        start_time_seconds: stat.zip(btime).map(|((_, start), boot)| boot + start),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64),
    }
}

/// Reads the process metrics from `/proc` into their gauges ([`flush`] runs it, so every scrape sees them
/// current).
fn export_process_metrics() {
    let s = sample_process();
    for (name, value) in [
        (PROCESS_RESIDENT_MEMORY, s.resident_bytes),
        (PROCESS_CPU_SECONDS, s.cpu_seconds),
        (PROCESS_START_TIME, s.start_time_seconds),
        (PROCESS_OPEN_FDS, s.open_fds),
    ] {
        if let Some(v) = value {
            metrics::gauge!(name).set(v);
        }
    }
}

/// Installs the global tracing subscriber (idempotent). Filter from `RUST_LOG`, default `info`.
pub fn init_tracing(format: LogFormat) {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,fred=warn,hyper=warn"));
        let registry = tracing_subscriber::registry().with(filter);
        let result = match format {
            LogFormat::Json => registry
                .with(fmt::layer().json().with_current_span(true))
                .try_init(),
            LogFormat::Text => registry.with(fmt::layer().with_target(true)).try_init(),
        };
        // Another subscriber (e.g. a test harness) may already be installed; that one wins.
        let _ = result;
    });
}

/// The process-wide Prometheus handle, installing the recorder on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ])
                .expect("static bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    help::describe_all();
                    export_build_info();
                    handle
                }
                // A recorder was installed by someone else: render our own (empty) one rather than panic.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// How often [`run_upkeep`] flushes the batched metrics and drains the recorder's histogram buffers.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Hands the batched metrics to the recorder ([`flush`]) and drains the Prometheus recorder's histogram
/// sample buffers every [`UPKEEP_EVERY`] until `cancel` fires.
/// The recorder is installed without its own upkeep task, and between two scrapes (or forever, when nobody
/// scrapes `/metrics`) each histogram would otherwise keep every sample it was given.
pub async fn run_upkeep(handle: PrometheusHandle, cancel: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                flush();
                handle.run_upkeep();
            }
        }
    }
}

/// Locks of the handle caches, one per shard; a thread always uses the same shard, so the two workers of a
/// small machine do not bounce one lock's reader count between their cores on every request.
const HANDLE_SHARDS: usize = 8;

/// The shard of the current thread (threads are numbered round-robin on first use).
fn shard_index() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % HANDLE_SHARDS;
    }
    SHARD.with(|s| *s)
}

/// A count kept in one atomic per shard, each on its own cache line: adding and taking back touch only the
/// current thread's line (request threads never bounce it between cores); reading sums the shards, for
/// readers that are rare (shutdown, status). Exact: a unit is taken back from the shard it was added to.
pub(crate) struct ShardedCount {
    shards: Box<[Padded<std::sync::atomic::AtomicU64>]>,
}

impl Default for ShardedCount {
    fn default() -> Self {
        ShardedCount {
            shards: padded_shards(),
        }
    }
}

impl std::fmt::Debug for ShardedCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ShardedCount").field(&self.sum()).finish()
    }
}

impl ShardedCount {
    /// Adds one on the current thread's shard; returns the shard to [`ShardedCount::take_back`] it from
    /// (a count that only grows ignores it).
    pub(crate) fn add(&self) -> usize {
        let shard = shard_index();
        self.shards[shard]
            .0
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        shard
    }

    /// Takes back one unit added on `shard`.
    pub(crate) fn take_back(&self, shard: usize) {
        self.shards[shard]
            .0
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(std::sync::atomic::Ordering::SeqCst))
            .sum()
    }
}

/// A counter whose increments gather in one atomic of its own and reach the recorder at the next
/// [`flush`] (run before every render of `/metrics` and by [`run_upkeep`]). The recorder's own counter is an
/// atomic that every request thread writes (twice: the value and its generation), so on a hot path its
/// cache line travels between the cores on each increment; kept per thread shard ([`HandleCache`],
/// [`PerShard`]) a batched counter's line stays with its thread. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct BatchedCounter(std::sync::Arc<Padded<CounterBatch>>);

struct CounterBatch {
    pending: std::sync::atomic::AtomicU64,
    target: metrics::Counter,
}

impl BatchedCounter {
    /// Batches increments for `target` (a handle registered with the recorder it should count into).
    pub fn new(target: metrics::Counter) -> Self {
        BatchedCounter(registered(Padded(CounterBatch {
            pending: Default::default(),
            target,
        })))
    }

    pub fn increment(&self, n: u64) {
        self.0
            .0
            .pending
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Flush for Padded<CounterBatch> {
    fn flush(&self) {
        let n = self.0.pending.swap(0, std::sync::atomic::Ordering::Relaxed);
        if n > 0 {
            self.0.target.increment(n);
        }
    }
}

/// A histogram whose samples gather in a buffer of its own and reach the recorder at the next [`flush`]
/// (or when [`HISTOGRAM_BATCH_MAX`] samples are waiting: the recording thread hands them over itself, so a
/// buffer never holds more). Kept per thread shard like [`BatchedCounter`], for the same reason: the
/// recorder's histogram is a shared buffer every request thread appends to.
#[derive(Clone)]
pub struct BatchedHistogram(std::sync::Arc<Padded<HistogramBatch>>);

/// Samples a [`BatchedHistogram`] holds at most before handing them to the recorder.
pub const HISTOGRAM_BATCH_MAX: usize = 4096;

struct HistogramBatch {
    pending: std::sync::Mutex<Vec<f64>>,
    target: metrics::Histogram,
}

impl BatchedHistogram {
    /// Batches samples for `target` (a handle registered with the recorder it should record into).
    pub fn new(target: metrics::Histogram) -> Self {
        BatchedHistogram(registered(Padded(HistogramBatch {
            pending: Default::default(),
            target,
        })))
    }

    pub fn record(&self, value: f64) {
        let batch = &self.0.0;
        let mut pending = batch
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.push(value);
        if pending.len() >= HISTOGRAM_BATCH_MAX {
            let full = std::mem::take(&mut *pending);
            drop(pending);
            batch.hand_over(full);
        }
    }
}

impl HistogramBatch {
    /// Records `samples` with the recorder (outside the buffer's lock).
    fn hand_over(&self, samples: Vec<f64>) {
        samples.into_iter().for_each(|v| self.target.record(v));
    }
}

impl Flush for Padded<HistogramBatch> {
    fn flush(&self) {
        let waiting = std::mem::take(
            &mut *self
                .0
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.0.hand_over(waiting);
    }
}

/// A batch of metric updates that can be handed to the recorder.
trait Flush: Send + Sync {
    fn flush(&self);
}

/// Every live batch of the process (dropped ones are pruned at each [`flush`]).
static BATCHES: std::sync::Mutex<Vec<std::sync::Weak<dyn Flush>>> =
    std::sync::Mutex::new(Vec::new());

/// `batch`, shared, and listed for [`flush`].
fn registered<B: Flush + 'static>(batch: B) -> std::sync::Arc<B> {
    let batch = std::sync::Arc::new(batch);
    BATCHES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(std::sync::Arc::downgrade(&batch) as std::sync::Weak<dyn Flush>);
    batch
}

/// Hands every batched counter's and histogram's pending updates to the recorder and reads the process
/// metrics. Run before rendering the metrics (the `/metrics` handler does) so that the text includes
/// everything counted until then.
pub fn flush() {
    export_process_metrics();
    let live: Vec<_> = {
        let mut batches = BATCHES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        batches.retain(|b| b.strong_count() > 0);
        batches
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect()
    };
    live.iter().for_each(|b| b.flush());
}

/// One `T` per thread shard, each on its own cache line, built eagerly; [`PerShard::get`] gives the current
/// thread's. For a component's fixed set of batched handles (its threads then never share a line).
pub struct PerShard<T>(Box<[Padded<T>]>);

impl<T> PerShard<T> {
    pub fn new(make: impl FnMut() -> T) -> Self {
        PerShard(shards_of(make))
    }

    pub fn get(&self) -> &T {
        &self.0[shard_index()].0
    }
}

/// The maps of metric handles, looked up on every request: foldhash instead of SipHash (the keys are label
/// values the code chooses, not attacker-controlled input; foldhash is still seeded per map).
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A value on a cache line of its own.
#[repr(align(128))]
struct Padded<T>(T);

/// One lock per shard.
type Shards<T> = Box<[Padded<std::sync::RwLock<T>>]>;

/// One default `T` per shard, each on its own cache line.
fn padded_shards<T: Default>() -> Box<[Padded<T>]> {
    shards_of(T::default)
}

/// One `T` per shard from `make`, each on its own cache line.
fn shards_of<T>(mut make: impl FnMut() -> T) -> Box<[Padded<T>]> {
    (0..HANDLE_SHARDS).map(|_| Padded(make())).collect()
}

/// Metric handles looked up by a small `Copy` key (label values that are `&'static str`s or numbers).
///
/// `metrics::counter!` with labels builds the key and its labels and looks them up in the recorder's
/// registry on every call; on the hot path that costs more than the rest of a cache hit. A cache holds the
/// handle registered on first use (with the recorder current at that moment) and lends it: one
/// uncontended read lock (the map is sharded by thread) and one hash lookup. Keep one cache per owner (a
/// policy, an application), not a global one, so that code running under a thread-local test recorder
/// registers with that recorder.
pub struct HandleCache<K, H> {
    shards: Shards<FastMap<K, H>>,
}

impl<K, H> Default for HandleCache<K, H> {
    fn default() -> Self {
        HandleCache {
            shards: padded_shards(),
        }
    }
}

impl<K, H> std::fmt::Debug for HandleCache<K, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleCache").finish_non_exhaustive()
    }
}

impl<K: std::hash::Hash + Eq + Copy, H> HandleCache<K, H> {
    /// Runs `use_it` on the handle of `key`, registering the handle with `register` the first time (per
    /// shard: registering the same name and labels again returns a handle to the same metric).
    pub fn with<R>(&self, key: K, register: impl FnOnce() -> H, use_it: impl FnOnce(&H) -> R) -> R {
        let shard = &self.shards[shard_index()].0;
        if let Some(h) = shard
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return use_it(h);
        }
        let h = register();
        use_it(
            shard
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(key)
                .or_insert(h),
        )
    }
}

/// A label value the code chooses, as a map key compared and hashed by address (a pointer and a length)
/// instead of by its characters: the handle maps are looked up on every request. Two equal strings at
/// different addresses are two keys, whose handles count into the same metric — so identity is enough.
#[derive(Clone, Copy, Debug)]
pub struct Label(pub &'static str);

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Label {}

impl std::hash::Hash for Label {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.as_ptr() as usize);
        state.write_usize(self.0.len());
    }
}

/// The handles of the HTTP metrics ([`HTTP_REQUESTS_TOTAL`], [`HTTP_REQUEST_DURATION`]) by route template,
/// method and status (sharded by thread like [`HandleCache`]). Route templates come from the router, so
/// the set is bounded.
pub struct HttpMetrics {
    shards: Shards<RouteMetrics>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            shards: padded_shards(),
        }
    }
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

/// One shard's handles: (route, method, status) → requests, (route, method) → durations.
#[derive(Default)]
struct RouteMetrics {
    requests: FastMap<(Label, Label, u16), BatchedCounter>,
    durations: FastMap<(Label, Label), BatchedHistogram>,
}

impl HttpMetrics {
    /// Counts one request of `route` answered with `status` and records its duration.
    pub fn record(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        let (route, method) = (Label(route), Label(method));
        let shard = &self.shards[shard_index()].0;
        {
            let m = shard
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let (Some(requests), Some(duration)) = (
                m.requests.get(&(route, method, status)),
                m.durations.get(&(route, method)),
            ) {
                requests.increment(1);
                duration.record(seconds);
                return;
            }
        }
        let mut m = shard
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.requests
            .entry((route, method, status))
            .or_insert_with(|| {
                BatchedCounter::new(metrics::counter!(HTTP_REQUESTS_TOTAL, "route" => route.0, "method" => method.0, "status" => status.to_string()))
            })
            .increment(1);
        m.durations
            .entry((route, method))
            .or_insert_with(|| {
                BatchedHistogram::new(metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route.0, "method" => method.0))
            })
            .record(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_metrics_are_parsed_from_proc_text() {
        let status = "Name:\tmaple\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\nThreads:\t4\n";
        assert_eq!(parse_rss(status), Some(2048.0 * 1024.0));
        assert_eq!(parse_rss("Name: x\n"), None);
        // The command name may hold spaces and parentheses.
        let stat = "4242 (maple (gw) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 \
                    1000 500 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((3.0, 123.45)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000.0)
        );
        if cfg!(target_os = "linux") {
            let s = sample_process();
            assert!(s.resident_bytes.is_some_and(|b| b > 1e6), "{s:?}");
            assert!(s.cpu_seconds.is_some_and(|c| c >= 0.0), "{s:?}");
            assert!(s.open_fds.is_some_and(|n| n >= 3.0), "{s:?}");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            assert!(
                s.start_time_seconds
                    .is_some_and(|t| t <= now + 1.0 && t > now - 86_400.0),
                "{s:?}"
            );
        }
    }

    #[test]
    fn sharded_counts_are_exact_when_units_are_taken_back_on_other_threads() {
        let count = ShardedCount::default();
        let shards: Vec<usize> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..(2 * HANDLE_SHARDS))
                .map(|_| scope.spawn(|| (0..100).map(|_| count.add()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(count.sum(), 100 * 2 * HANDLE_SHARDS as u64);
        let (half, rest) = shards.split_at(shards.len() / 2);
        std::thread::scope(|scope| {
            scope.spawn(|| half.iter().for_each(|&s| count.take_back(s)));
        });
        assert_eq!(count.sum(), rest.len() as u64);
        rest.iter().for_each(|&s| count.take_back(s));
        assert_eq!(count.sum(), 0);
    }

    #[test]
    fn batched_counts_reach_the_recorder_at_the_flush() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let (counter, histogram) = metrics::with_local_recorder(&recorder, || {
            (
                BatchedCounter::new(metrics::counter!("maple_telemetry_batched_total")),
                BatchedHistogram::new(metrics::histogram!("maple_telemetry_batched_seconds")),
            )
        });
        let on_another_thread = counter.clone();
        std::thread::scope(|scope| {
            scope.spawn(|| on_another_thread.increment(2));
        });
        counter.increment(3);
        histogram.record(0.25);
        histogram.record(0.5);
        let before = handle.render();
        assert!(
            before.contains("maple_telemetry_batched_total 0"),
            "nothing reaches the recorder before the flush:\n{before}"
        );
        assert!(
            !before.contains("maple_telemetry_batched_seconds_count 2"),
            "{before}"
        );
        flush();
        let after = handle.render();
        for line in [
            "maple_telemetry_batched_total 5",
            "maple_telemetry_batched_seconds_count 2",
            "maple_telemetry_batched_seconds_sum 0.75",
        ] {
            assert!(after.contains(line), "missing {line:?} in:\n{after}");
        }
        counter.increment(1);
        flush();
        flush();
        assert!(
            handle.render().contains("maple_telemetry_batched_total 6"),
            "a flush hands over each increment once"
        );
    }

    #[test]
    fn a_full_histogram_batch_is_handed_over_without_a_flush() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let histogram = metrics::with_local_recorder(&recorder, || {
            BatchedHistogram::new(metrics::histogram!("maple_telemetry_full_seconds"))
        });
        for _ in 0..HISTOGRAM_BATCH_MAX {
            histogram.record(0.001);
        }
        let text = handle.render();
        let line = format!("maple_telemetry_full_seconds_count {HISTOGRAM_BATCH_MAX}");
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
        let pending = histogram.0.0.pending.lock().unwrap();
        assert!(
            pending.is_empty() && pending.capacity() == 0,
            "the buffer was handed over whole"
        );
    }

    #[test]
    fn dropped_batches_leave_the_flush_list() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let counter = metrics::with_local_recorder(&recorder, || {
            BatchedCounter::new(metrics::counter!("maple_telemetry_dropped_total"))
        });
        let weak = std::sync::Arc::downgrade(&counter.0);
        drop(counter);
        flush();
        let listed = BATCHES
            .lock()
            .unwrap()
            .iter()
            .any(|b| std::ptr::addr_eq(b.as_ptr(), weak.as_ptr()));
        assert!(!listed, "a dropped batch is pruned at the next flush");
    }

    #[test]
    fn recorder_is_installed_once_and_renders_counters() {
        let h1 = metrics_handle();
        let h2 = metrics_handle();
        metrics::counter!("maple_telemetry_selftest_total").increment(3);
        let text = h2.render();
        assert!(text.contains("maple_telemetry_selftest_total 3"), "{text}");
        assert!(h1.render().contains("maple_telemetry_selftest_total"));
    }

    #[test]
    fn cached_http_handles_count_into_the_recorder_current_at_first_use() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _local = metrics::set_default_local_recorder(&recorder);
        let http = HttpMetrics::default();
        for _ in 0..3 {
            http.record("/api/v4/characters/{name}/expectation", "GET", 200, 0.001);
        }
        http.record("/api/v4/characters/{name}/expectation", "GET", 404, 0.002);
        http.record("/health/live", "GET", 200, 0.0001);
        flush();
        let text = handle.render();
        for line in [
            r#"maple_http_requests_total{route="/api/v4/characters/{name}/expectation",method="GET",status="200"} 3"#,
            r#"maple_http_requests_total{route="/api/v4/characters/{name}/expectation",method="GET",status="404"} 1"#,
            r#"maple_http_requests_total{route="/health/live",method="GET",status="200"} 1"#,
            r#"maple_http_request_duration_seconds_count{route="/api/v4/characters/{name}/expectation",method="GET"} 4"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn equal_labels_at_different_addresses_count_into_one_metric() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let _local = metrics::set_default_local_recorder(&recorder);
        let http = HttpMetrics::default();
        let copy: &'static str = Box::leak(String::from("/label/identity").into_boxed_str());
        assert_ne!(Label(copy), Label("/label/identity"), "keys are by address");
        http.record("/label/identity", "GET", 200, 0.001);
        http.record(copy, "GET", 200, 0.001);
        flush();
        let text = handle.render();
        let line =
            r#"maple_http_requests_total{route="/label/identity",method="GET",status="200"} 2"#;
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }

    #[test]
    fn handles_cached_on_several_threads_count_into_one_metric() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let http = HttpMetrics::default();
        let tasks: HandleCache<&'static str, metrics::Counter> = HandleCache::default();
        std::thread::scope(|scope| {
            for _ in 0..(2 * HANDLE_SHARDS) {
                scope.spawn(|| {
                    let _local = metrics::set_default_local_recorder(&recorder);
                    for _ in 0..10 {
                        http.record("/health/live", "GET", 200, 0.0001);
                        tasks.with(
                            "x",
                            || metrics::counter!("maple_telemetry_sharded_total"),
                            |c| c.increment(1),
                        );
                    }
                });
            }
        });
        flush();
        let text = handle.render();
        let n = 2 * HANDLE_SHARDS * 10;
        for line in [
            format!(
                r#"maple_http_requests_total{{route="/health/live",method="GET",status="200"}} {n}"#
            ),
            format!("maple_telemetry_sharded_total {n}"),
        ] {
            assert!(text.contains(&line), "missing {line:?} in:\n{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn upkeep_drains_histograms_until_cancelled() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(run_upkeep(handle, cancel.clone()));
        tokio::time::sleep(UPKEEP_EVERY * 3).await;
        assert!(!task.is_finished(), "upkeep runs until cancelled");
        cancel.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(1), task)
            .await
            .expect("upkeep stops when cancelled")
            .expect("no panic");
    }
}
