//! Tests of the standard policies against a real Prometheus recorder and a capturing tracing
//! subscriber, both installed for the current thread only.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::error::{Classify, Code, ErrorKind};
use crate::pipeline::{Hook, Pipeline, StandardConfig};

use super::support::*;

#[tokio::test]
async fn metrics_policy_counts_and_times_tasks_by_outcome_without_the_key() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let log = new_log();
    let standard = Pipeline::standard(StandardConfig::default());
    let with_flaky_before = Pipeline::builder()
        .policy(crate::pipeline::MetricsPolicy::default())
        .policy(Recorder {
            index: 3,
            script: Script::ok().step(Hook::Before, Step::Fail),
            log: Arc::clone(&log),
            timings: Default::default(),
        })
        .build();

    standard.execute(ctx(), task(Step::Ok, &log)).await.unwrap();
    standard.execute(ctx(), task(Step::Ok, &log)).await.unwrap();
    standard
        .execute(ctx(), task(Step::Fail, &log))
        .await
        .unwrap_err();
    with_flaky_before
        .execute(ctx(), task(Step::Ok, &log))
        .await
        .unwrap();

    crate::telemetry::flush();
    let text = handle.render();
    let expected = [
        r#"maple_task_total{component="characters",operation="expectation",outcome="success"} 3"#,
        r#"maple_task_total{component="characters",operation="expectation",outcome="failure"} 1"#,
        r#"maple_task_duration_seconds_count{component="characters",operation="expectation",outcome="success"} 3"#,
        r#"maple_task_duration_seconds_count{component="characters",operation="expectation",outcome="failure"} 1"#,
        r#"maple_pipeline_hook_errors_total{policy="p3",hook="before"} 1"#,
    ];
    for line in expected {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("Alice"),
        "the key must never be a label:\n{text}"
    );
}

#[tokio::test]
async fn rejected_executions_are_counted_but_not_timed() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let log = new_log();
    let pipeline = Pipeline::builder()
        .policy(crate::pipeline::MetricsPolicy::default())
        .policy(Recorder {
            index: 0,
            script: Script::ok().propagate().step(Hook::Before, Step::Fail),
            log: Arc::clone(&log),
            timings: Default::default(),
        })
        .build();

    pipeline
        .execute(ctx(), task(Step::Ok, &log))
        .await
        .unwrap_err();

    crate::telemetry::flush();
    let text = handle.render();
    assert!(
        text.contains(r#"maple_task_total{component="characters",operation="expectation",outcome="rejected"} 1"#),
        "{text}"
    );
    assert!(!text.contains("maple_task_duration_seconds"), "{text}");
    // Propagated errors are part of the result, not counted as swallowed.
    assert!(!text.contains("maple_pipeline_hook_errors_total"), "{text}");
}

#[derive(Clone, Debug)]
struct Captured {
    level: Level,
    message: String,
    span: Option<&'static str>,
    fields: Vec<(String, String)>,
}

/// A span's name and its fields at creation.
type SpanRecord = (&'static str, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
    spans: Arc<Mutex<Vec<SpanRecord>>>,
}

impl Capture {
    /// Installs a capturing subscriber for the current thread.
    ///
    /// While exactly one scoped dispatcher is registered, `tracing-core` computes the cached
    /// interest of a callsite first hit on *another* thread from that thread's default (no
    /// subscriber: "never"), so events of shared callsites could be lost depending on test order.
    /// A second, inert dispatcher kept alive for the test makes the interest always come from all
    /// registered dispatchers.
    fn install() -> (
        Capture,
        (tracing::subscriber::DefaultGuard, tracing::Dispatch),
    ) {
        let capture = Capture::default();
        let inert = tracing::Dispatch::new(tracing_subscriber::registry());
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
        (capture, (guard, inert))
    }
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        self.spans
            .lock()
            .unwrap()
            .push((attrs.metadata().name(), fields.0));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields
            .0
            .iter()
            .find(|(name, _)| name == "message")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            message,
            span: ctx.event_span(event).map(|s| s.name()),
            fields: fields.0,
        });
    }
}

#[derive(Debug, thiserror::Error)]
#[error("nexon is slow")]
struct Slow;

impl Classify for Slow {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Upstream
    }
    fn retryable(&self) -> bool {
        true
    }
    fn code(&self) -> Code {
        Code::Timeout
    }
}

#[tokio::test(start_paused = true)]
async fn tracing_policy_opens_a_span_per_task_and_warns_about_slow_tasks() {
    let (capture, _scope) = Capture::install();
    let pipeline = Pipeline::standard(StandardConfig {
        slow_threshold: Duration::from_secs(1),
    });

    pipeline
        .execute(ctx(), async {
            tracing::info!("inside the task");
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, Slow>(())
        })
        .await
        .unwrap();
    pipeline
        .execute(ctx(), async { Ok::<_, Slow>(()) })
        .await
        .unwrap();
    pipeline
        .execute(ctx(), async { Err::<(), _>(Slow) })
        .await
        .unwrap_err();

    let spans = capture.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 3, "{spans:?}");
    for (name, fields) in &spans {
        assert_eq!(*name, "task");
        for expected in [
            ("component", "characters"),
            ("operation", "expectation"),
            ("key", "Alice"),
        ] {
            assert!(
                fields
                    .iter()
                    .any(|(k, v)| k == expected.0 && v == expected.1),
                "{expected:?} missing in {fields:?}"
            );
        }
    }

    let events = capture.events.lock().unwrap().clone();
    let inside = events
        .iter()
        .find(|e| e.message == "inside the task")
        .expect("the task's own event");
    assert_eq!(inside.span, Some("task"));

    let slow: Vec<_> = events.iter().filter(|e| e.message == "slow task").collect();
    assert_eq!(
        slow.len(),
        1,
        "only the two-second task is slow: {events:?}"
    );
    assert_eq!(slow[0].level, Level::WARN);
    assert_eq!(slow[0].span, Some("task"));

    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.message == "task failed")
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(
        failed[0].level,
        Level::WARN,
        "upstream failures log at warn"
    );
    assert!(
        failed[0]
            .fields
            .iter()
            .any(|(k, v)| k == "code" && v == "TIMEOUT"),
        "{:?}",
        failed[0]
    );
}

#[tokio::test]
async fn swallowed_hook_errors_are_logged_with_policy_and_hook() {
    let (capture, _scope) = Capture::install();
    let log = new_log();
    let (pipeline, _) = recorders(&[Script::ok().step(Hook::After, Step::Fail)], &log);

    pipeline.execute(ctx(), task(Step::Ok, &log)).await.unwrap();

    let events = capture.events.lock().unwrap().clone();
    let swallowed: Vec<_> = events
        .iter()
        .filter(|e| e.message == "pipeline hook error swallowed")
        .collect();
    assert_eq!(swallowed.len(), 1, "{events:?}");
    let fields = &swallowed[0].fields;
    for expected in [
        ("policy", "p0"),
        ("hook", "after"),
        ("error", "policy `p0` failed in `after`: p0.after failed"),
    ] {
        assert!(
            fields
                .iter()
                .any(|(k, v)| k == expected.0 && v == expected.1),
            "{expected:?} missing in {fields:?}"
        );
    }
}
