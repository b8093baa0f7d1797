//! Operator alerts: a JSON POST to `MAPLE_ALERT_WEBHOOK` when the breaker opens, maintenance begins or the
//! upstream refuses the key. Best-effort, rate-limited, off the request path.
//!
//! Contract: [`Alerter::alert`] never blocks and never fails — it logs the alert (always), then hands it to a
//! background task through a bounded queue (`try_send`: a full queue drops the alert and counts it). The same
//! alert kind is sent at most once per [`MIN_INTERVAL`]; suppressed ones are counted, not queued. The task
//! POSTs `{"source":"maple-gateway","instance":…,"kind":…,"message":…,"at":…,"detail":{…}}` with a 2 s
//! timeout, once (no retries: a webhook that is down must not pile up work), and ends when the last
//! [`Alerter`] clone is dropped. Outcomes are counted in `maple_alerts_total{kind,result}`. The webhook URL
//! (which usually carries a token) is never logged: a failed POST logs its status or its error without the
//! URL.
//!
//! Why: an open breaker or a refused key needs a human; the request that noticed it must not wait for the
//! notification, and a flapping upstream must not flood the channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The same kind of alert is sent at most once per this interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Counter of alerts by kind and result (`sent`, `failed`, `suppressed`, `dropped`, `logged`).
pub const ALERTS_TOTAL: &str = "maple_alerts_total";
const QUEUE: usize = 16;
const POST_TIMEOUT: Duration = Duration::from_secs(2);

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    BreakerOpen,
    Maintenance,
    KeyRefused,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::BreakerOpen => "breaker_open",
            AlertKind::Maintenance => "maintenance",
            AlertKind::KeyRefused => "key_refused",
        }
    }
}

/// The webhook body.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    pub source: &'static str,
    pub instance: String,
    pub kind: AlertKind,
    pub message: String,
    pub at: String,
    pub detail: serde_json::Value,
}

struct Inner {
    instance: String,
    tx: Option<mpsc::Sender<Alert>>,
    last: Mutex<HashMap<AlertKind, Instant>>,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct Alerter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field("webhook", &self.inner.tx.is_some())
            .finish_non_exhaustive()
    }
}

impl Alerter {
    /// Without a webhook alerts are only logged. With one, a sender task is spawned (needs a runtime).
    pub fn new(webhook: Option<String>, instance: String) -> Self {
        let tx = webhook.map(|url| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(send_loop(url, rx));
            tx
        });
        Alerter {
            inner: Arc::new(Inner {
                instance,
                tx,
                last: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Logs the alert and queues it for the webhook (rate-limited per kind).
    pub fn alert(&self, kind: AlertKind, message: &str, detail: serde_json::Value) {
        tracing::error!(alert = kind.as_str(), detail = %detail, "{message}");
        let Some(tx) = &self.inner.tx else {
            metrics::counter!(ALERTS_TOTAL, "kind" => kind.as_str(), "result" => "logged")
                .increment(1);
            return;
        };
        let now = Instant::now();
        {
            let mut last = self.inner.last.lock().expect("alert lock poisoned");
            if let Some(t) = last.get(&kind)
                && now.duration_since(*t) < MIN_INTERVAL
            {
                metrics::counter!(ALERTS_TOTAL, "kind" => kind.as_str(), "result" => "suppressed")
                    .increment(1);
                return;
            }
            last.insert(kind, now);
        }
        let alert = Alert {
            source: "maple-gateway",
            instance: self.inner.instance.clone(),
            kind,
            message: message.to_string(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            detail,
        };
        if tx.try_send(alert).is_err() {
            metrics::counter!(ALERTS_TOTAL, "kind" => kind.as_str(), "result" => "dropped")
                .increment(1);
        }
    }
}

async fn send_loop(url: String, mut rx: mpsc::Receiver<Alert>) {
    let http = match reqwest::Client::builder().timeout(POST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "alert webhook client cannot be built: alerts are only logged");
            return;
        }
    };
    while let Some(alert) = rx.recv().await {
        let kind = alert.kind.as_str();
        let result = http.post(&url).json(&alert).send().await;
        // The webhook URL usually carries a token: an error is logged without it.
        let (ok, status, error) = match result {
            Ok(r) => (r.status().is_success(), Some(r.status().as_u16()), None),
            Err(e) => (false, None, Some(e.without_url().to_string())),
        };
        if !ok {
            tracing::warn!(
                alert = kind,
                status,
                error,
                "alert webhook did not accept the alert"
            );
        }
        metrics::counter!(ALERTS_TOTAL, "kind" => kind, "result" => if ok { "sent" } else { "failed" })
            .increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    #[tokio::test]
    async fn alerts_reach_the_webhook_once_per_interval_per_kind() {
        let (tx, mut rx) = mpsc::unbounded_channel::<serde_json::Value>();
        let app = axum::Router::new().route(
            "/hook",
            post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(v);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let a = Alerter::new(Some(format!("http://{addr}/hook")), "gw-1".into());
        a.alert(
            AlertKind::BreakerOpen,
            "breaker opened",
            serde_json::json!({"open_for_ms": 5000}),
        );
        a.alert(AlertKind::BreakerOpen, "again", serde_json::json!({}));
        a.alert(AlertKind::KeyRefused, "key refused", serde_json::json!({}));
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first["kind"], "breaker_open");
        assert_eq!(first["instance"], "gw-1");
        assert_eq!(first["source"], "maple-gateway");
        assert_eq!(first["detail"]["open_for_ms"], 5000);
        let second = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second["kind"], "key_refused", "the repeat was suppressed");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), rx.recv())
                .await
                .is_err()
        );
    }

    /// A log writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[tokio::test]
    async fn a_failed_post_never_logs_the_webhook_url_or_its_token() {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let a = Alerter::new(
            Some(format!(
                "http://127.0.0.1:{closed}/hooks/T0KEN-sekrit-4242?token=T0KEN-sekrit-4242"
            )),
            "gw".into(),
        );
        a.alert(AlertKind::KeyRefused, "key refused", serde_json::json!({}));
        let started = std::time::Instant::now();
        while !logs.text().contains("alert webhook did not accept") {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no failure logged: {}",
                logs.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = logs.text();
        assert!(!text.contains("T0KEN-sekrit"), "{text}");
        assert!(!text.contains("/hooks/"), "{text}");
    }

    #[tokio::test]
    async fn a_dead_webhook_costs_the_caller_nothing() {
        // Nothing listens on port 9 (discard) on loopback in the test environment; either way the call returns at once.
        let a = Alerter::new(Some("http://127.0.0.1:9/hook".into()), "gw".into());
        let t = std::time::Instant::now();
        for _ in 0..100 {
            a.alert(AlertKind::Maintenance, "m", serde_json::json!({}));
        }
        assert!(t.elapsed() < Duration::from_millis(50));
    }
}
