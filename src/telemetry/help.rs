//! The HELP text of every metric the gateway exports, in one table ([`CATALOG`]), registered with the recorder
//! when [`super::metrics_handle`] installs it.
//!
//! Contract: every metric name the code records (a `"maple_…"` or `"process_…"` string literal outside tests)
//! has exactly one row here, with its kind and a one-line meaning that names its labels; a unit test scans the
//! sources and fails on a name without a row, or a row whose name no code records. A black-box test checks that
//! every family a running gateway renders at `/metrics` carries `# HELP` and the `# TYPE` of its row.
//! Describing a metric registers no series: a family appears at `/metrics` once the code records it.

/// What a metric is, as Prometheus types it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic count (`# TYPE … counter`).
    Counter,
    /// A value that goes up and down (`# TYPE … gauge`).
    Gauge,
    /// A distribution (`# TYPE … histogram`).
    Histogram,
}

impl Kind {
    /// The word `# TYPE` uses.
    pub fn prometheus_type(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

use Kind::{Counter, Gauge, Histogram};

/// Every exported metric: name, kind, HELP text. Sorted by name (a test keeps it so).
#[rustfmt::skip]
pub const CATALOG: &[(&str, Kind, &str)] = &[
    ("maple_alerts_total", Counter, "Operator alerts by kind and result (sent, failed, suppressed, dropped, logged)."),
    ("maple_backup_entries_total", Counter, "Likes written to backup files at shutdown."),
    ("maple_breaker_probes_cancelled_total", Counter, "Half-open probes of the upstream breaker whose caller went away (counted as failures)."),
    ("maple_breaker_rejections_total", Counter, "Upstream calls the breaker rejected without calling, by breaker and state."),
    ("maple_breaker_state", Gauge, "1 for the upstream breaker's current state (closed, open, half_open), 0 for the others, by breaker."),
    ("maple_breaker_transitions_total", Counter, "Upstream breaker transitions, by breaker and target state."),
    ("maple_build_info", Gauge, "Always 1; labels version and commit of the running binary."),
    ("maple_cache_degraded_writes_total", Counter, "Values kept in L1 only, briefly, because the L2 (Redis) write failed."),
    ("maple_cache_early_refresh_total", Counter, "Cache entries refreshed early, in the background, before they expired."),
    ("maple_cache_l2_errors_total", Counter, "Failed L2 (Redis) cache operations, by op."),
    ("maple_cache_refresh_failures_total", Counter, "Background cache refreshes that failed (the old value stays)."),
    ("maple_cache_requests_total", Counter, "Cache lookups by tier and result (hit, miss, stale)."),
    ("maple_cube_table_error_groups", Gauge, "1 when the loaded cube table has groups whose probabilities sum over 1 (a data error), by table version."),
    ("maple_expectation_out_of_range_items_total", Counter, "Items left out of an expectation for a value outside the game's maxima (their blocks say out_of_range)."),
    ("maple_flight_degraded_total", Counter, "Loads done locally because the cluster-wide flight (Redis lease) was unavailable."),
    ("maple_flight_joins_total", Counter, "Requests that joined a load already in flight instead of calling the upstream, by scope (local, cluster)."),
    ("maple_flight_takeovers_total", Counter, "Loads taken over from a cluster flight leader that failed or timed out, by reason."),
    ("maple_force_refresh_total", Counter, "Forced refreshes by outcome (honoured, throttled)."),
    ("maple_http_panics_total", Counter, "Requests whose handler panicked (answered 500 INTERNAL), by route template."),
    ("maple_http_rejected_total", Counter, "Requests rejected before reaching a handler, by reason (overloaded, timeout, body_too_large)."),
    ("maple_http_request_duration_seconds", Histogram, "HTTP request latency in seconds, by route template and method."),
    ("maple_http_requests_total", Counter, "HTTP requests served, by route template, method and status."),
    ("maple_journal_entries_total", Counter, "Likes written to the local like journal."),
    ("maple_journal_errors_total", Counter, "Like journal write or fsync failures."),
    ("maple_like_buffer_entries", Gauge, "Likes held in this instance's buffer, by state (unflushed, pushed)."),
    ("maple_like_count_lower_bounds_total", Counter, "Like counts answered as a lower bound (the exact count was not had in time)."),
    ("maple_like_count_view_timeouts_total", Counter, "Like count reads that timed out waiting for a consistent view."),
    ("maple_like_flush_duration_seconds", Histogram, "Duration of one flush of buffered likes to Redis, in seconds."),
    ("maple_like_flush_failures_total", Counter, "Flushes of buffered likes to Redis that failed (the likes stay buffered)."),
    ("maple_like_requests_total", Counter, "Likes received, by result (new, duplicate, rejected)."),
    ("maple_like_resends_total", Counter, "Like pushes started again, by reason (epoch, failure, lost, unconfirmed)."),
    ("maple_like_sync_batch_duration_seconds", Histogram, "Duration of one like sync batch into the database, by path (redis, direct), in seconds."),
    ("maple_like_sync_failures_total", Counter, "Failed like sync rounds, by path (redis, direct)."),
    ("maple_like_synced_entries_total", Counter, "Likes moved into the database, by path (direct is the fallback with Redis down)."),
    ("maple_lock_acquisitions_total", Counter, "Distributed lock acquisitions by tier and result (acquired, timeout, unavailable)."),
    ("maple_lock_fallbacks_total", Counter, "Lock acquisitions that moved from Redis to the fallback tier because Redis was unavailable."),
    ("maple_lock_lost_total", Counter, "Held locks whose lease could not be kept, by tier."),
    ("maple_lock_wait_seconds", Histogram, "Time spent acquiring a lock, by tier, in seconds."),
    ("maple_option_variants_uncached_total", Counter, "Expectations answered but not cached because their character and date already have the maximum of option variants."),
    ("maple_pipeline_hook_errors_total", Counter, "Pipeline hook errors swallowed (logged and ignored), by policy and hook."),
    ("maple_rate_limit_total", Counter, "Upstream rate budget admissions and refusals, by result."),
    ("maple_rate_wait_seconds", Histogram, "Time admitted upstream calls waited for their rate slot, in seconds."),
    ("maple_ready", Gauge, "1 while the application is ready, 0 while starting or shutting down."),
    ("maple_recovery_deferred_files", Gauge, "Backup and journal files waiting to be applied because the stores were unavailable."),
    ("maple_recovery_entries_total", Counter, "Likes applied by start-up recovery (including ones the database already had)."),
    ("maple_recovery_quarantined_files_total", Counter, "Backup files moved to quarantine because they could not be read."),
    ("maple_redis_durable_write_seconds", Histogram, "Duration of one durable Redis write (a likes staging script or the drill's durable probe), its WAIT included, in seconds."),
    ("maple_redis_durable_writes_total", Counter, "Durable Redis writes by outcome (replicated, master_only, not_replicated = WAIT timed out, no_replica = refused in Sentinel mode, failed)."),
    ("maple_redis_master_switches_total", Counter, "Redis master switches seen through Sentinel (every client reconnected)."),
    ("maple_redis_misplaced_reconnects_total", Counter, "Redis clients found connected to a server that is not the master, and reconnected."),
    ("maple_shutdown_cut_requests_total", Counter, "Requests answered 503 because the shutdown grace period ended."),
    ("maple_snapshot_reads_total", Counter, "Equipment snapshot reads from the database, by result."),
    ("maple_snapshot_writes_total", Counter, "Equipment snapshot writes to the database, by result (ok, error)."),
    ("maple_stale_from_database_total", Counter, "Stale answers served from the database's last good copy (the cache had none)."),
    ("maple_store_write_failures_total", Counter, "Failed database writes of the read path, by what was written."),
    ("maple_task_duration_seconds", Histogram, "Duration of tasks run through the execution pipeline (the task alone), by component, operation and outcome, in seconds."),
    ("maple_task_total", Counter, "Executions run through the pipeline, by component, operation and outcome."),
    ("maple_upstream_call_duration_seconds", Histogram, "Upstream (Nexon) call latency in seconds, by endpoint."),
    ("maple_upstream_calls_total", Counter, "Upstream (Nexon) HTTP calls by endpoint and outcome."),
    ("maple_upstream_daily_limit", Gauge, "The upstream daily call limit in force."),
    ("maple_upstream_daily_usage", Gauge, "Upstream calls admitted today (KST) for this key."),
    ("maple_upstream_holds_total", Counter, "Upstream holds entered (calls held off), by reason."),
    ("maple_upstream_key_refused", Gauge, "1 while upstream calls are held off because the API key was refused."),
    ("maple_upstream_maintenance", Gauge, "1 while upstream calls are held off for maintenance."),
    ("maple_upstream_requests_total", Counter, "Logical upstream requests by endpoint, priority and outcome (retries included in one)."),
    ("maple_upstream_retries_total", Counter, "Upstream retry decisions (attempted, budget_exhausted, deadline, max_reached)."),
    ("process_cpu_seconds_total", Gauge, "CPU time of the process (user + system) in seconds; a gauge carrying a counter's value."),
    ("process_open_fds", Gauge, "Open file descriptors of the process."),
    ("process_resident_memory_bytes", Gauge, "Resident memory of the process in bytes."),
    ("process_start_time_seconds", Gauge, "When the process started, in Unix seconds."),
];

/// Registers the HELP text of every row of [`CATALOG`] with the installed recorder.
pub fn describe_all() {
    for &(name, kind, help) in CATALOG {
        match kind {
            Counter => metrics::describe_counter!(name, help),
            Gauge => metrics::describe_gauge!(name, help),
            Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// The row of `name`, if the catalog has one.
pub fn row(name: &str) -> Option<(Kind, &'static str)> {
    CATALOG
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, k, h)| (k, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Names that look like metric names but are not metrics.
    const NOT_METRICS: &[&str] = &[
        // The MySQL named lock held while migrations run (`store::mysql`).
        "maple_gateway_migrations",
    ];

    /// The part of a source file outside its `#[cfg(test)]` module (tests come last in every file), or
    /// nothing for a file of tests.
    fn production_part(path: &Path, text: &str) -> String {
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if file == "tests.rs" || path.components().any(|c| c.as_os_str() == "tests") {
            return String::new();
        }
        match text.find("#[cfg(test)]\nmod tests {") {
            Some(at) => text[..at].to_string(),
            None => text.to_string(),
        }
    }

    fn names_in(text: &str, out: &mut BTreeSet<String>) {
        for (i, _) in text.match_indices('"') {
            let rest = &text[i + 1..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            if (word.starts_with("maple_") || word.starts_with("process_"))
                && rest[end..].starts_with('"')
                && word.len() > "maple_".len()
            {
                out.insert(word.to_string());
            }
        }
    }

    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("help.rs") {
                let text = std::fs::read_to_string(&path).expect("source is UTF-8");
                names_in(&production_part(&path, &text), out);
            }
        }
    }

    #[test]
    fn every_metric_the_code_records_has_one_row_and_every_row_is_recorded() {
        let mut recorded = BTreeSet::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut recorded,
        );
        for n in NOT_METRICS {
            recorded.remove(*n);
        }
        let catalog: BTreeSet<String> = CATALOG.iter().map(|(n, _, _)| n.to_string()).collect();
        let undescribed: Vec<_> = recorded.difference(&catalog).collect();
        let unrecorded: Vec<_> = catalog.difference(&recorded).collect();
        assert!(
            undescribed.is_empty(),
            "metrics without a row in telemetry::help::CATALOG: {undescribed:?}"
        );
        assert!(
            unrecorded.is_empty(),
            "rows of telemetry::help::CATALOG that no code records: {unrecorded:?}"
        );
        assert!(
            recorded.len() >= 60,
            "the scan found only {} names",
            recorded.len()
        );
    }

    #[test]
    fn the_catalog_is_sorted_unique_and_every_help_is_one_line() {
        for w in CATALOG.windows(2) {
            assert!(w[0].0 < w[1].0, "{} must come before {}", w[1].0, w[0].0);
        }
        for (name, kind, help) in CATALOG {
            assert!(!help.is_empty() && !help.contains('\n'), "{name}");
            if name.ends_with("_total") && *kind != Counter {
                assert_eq!(
                    *name, "process_cpu_seconds_total",
                    "{name} ends in _total but is not a counter"
                );
            }
        }
    }

    #[test]
    fn described_metrics_render_with_help_and_type() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe_all();
            metrics::counter!("maple_like_requests_total", "result" => "new").increment(1);
            metrics::gauge!("maple_ready").set(1.0);
        });
        let text = handle.render();
        assert!(
            text.contains("# HELP maple_like_requests_total Likes received, by result"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE maple_like_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# HELP maple_ready 1 while the application is ready"),
            "{text}"
        );
    }
}
