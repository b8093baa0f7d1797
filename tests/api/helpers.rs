//! `spawn_app`: the real application on a free port with real dependencies, plus typed request helpers.

#![allow(dead_code)]

use std::net::SocketAddr;

use maple_gateway::app::Application;
use maple_gateway::config::Settings;
use tokio::sync::oneshot;

/// A running gateway; stops (gracefully) when dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub sim_url: Option<String>,
    pub http: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Stops the app and waits for `run_until` to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("app task");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Settings for a test app: everything under a fresh temp dir, port 0, embedded defaults.
pub fn test_settings(data_dir: &std::path::Path) -> Settings {
    Settings::for_data_dir(data_dir)
}

/// Spawns the app with default test settings, modified by `tweak`.
/// Installs, once per test process, a log subscriber writing through the test harness's capture: a
/// failing test prints the gateway's warnings (Redis switches, degraded writes, …) beside its panic;
/// a passing one prints nothing. `MAPLE_TEST_LOG` sets the filter (default `warn`).
fn capture_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let filter = std::env::var("MAPLE_TEST_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    capture_logs();
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data_dir.path());
    tweak(&mut settings);
    let app = Application::build(settings).await.expect("app builds");
    let addr = app.local_addr();
    let sim_url = app.simulator_url();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("app runs");
    });
    TestApp {
        addr,
        base: format!("http://{addr}"),
        sim_url,
        http: reqwest::Client::builder().gzip(false).build().unwrap(),
        data_dir,
        stop: Some(tx),
        task: Some(task),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}
