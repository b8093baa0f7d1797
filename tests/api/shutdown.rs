//! Shutdown and recovery with real processes: the test starts the `maple-gateway` binary as a child
//! process (env config, free port), sends it SIGTERM / SIGKILL through `kill`, restarts it, and checks the
//! totals in MariaDB. Redis is a real `redis-server`; a database outage is real (a TCP relay that is cut).
//! Every wait is a poll with a deadline.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use maple_gateway::durability::backup;
use maple_gateway::likes::LikeEntry;

use crate::harness::{RedisServer, TestDatabase, free_port, read_log};
use crate::likes::CutRelay;

/// Grace period used by these tests (short, so the suite stays fast).
const GRACE_MS: u64 = 1000;

struct Gateway {
    child: Child,
    base: String,
    log: PathBuf,
    /// How it was started, to start it again on another port when the one picked was taken meanwhile.
    start: Start,
}

struct Start {
    data_dir: PathBuf,
    env: Vec<(String, String)>,
    name: String,
    /// Starts left after a lost port race.
    retries: u32,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(data_dir: &Path, env: &[(&str, String)], name: &str) -> Gateway {
    let start = Start {
        data_dir: data_dir.to_path_buf(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        name: name.to_string(),
        retries: 5,
    };
    let (child, base, log) = spawn_gateway(&start);
    Gateway {
        child,
        base,
        log,
        start,
    }
}

/// Starts the binary on a free port: (the child, its base URL, its log file).
fn spawn_gateway(start: &Start) -> (Child, String, PathBuf) {
    let port = free_port();
    let log = start.data_dir.join(format!("{}.log", start.name));
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_maple-gateway"));
    cmd.env("MAPLE_LISTEN", format!("127.0.0.1:{port}"))
        .env("MAPLE_DATA_DIR", &start.data_dir)
        .env("MAPLE_INSTANCE_ID", "gw-test")
        .env("MAPLE_SHUTDOWN_GRACE_MS", GRACE_MS.to_string())
        .env("MAPLE_LIKE_FLUSH_MS", "50")
        .env("MAPLE_LIKE_SYNC_MS", "200")
        .env("MAPLE_MAX_CONCURRENCY", "4096")
        .env("MAPLE_CLIENT_RPS", "0")
        .env_remove("MAPLE_REDIS_URL")
        .env_remove("MAPLE_DATABASE_URL")
        .env_remove("NEXON_API_KEY")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in &start.env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start maple-gateway");
    (child, format!("http://127.0.0.1:{port}"), log)
}

impl Gateway {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(sig)
            .arg(self.pid())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    async fn wait_ready(&mut self, deadline: Duration) {
        let http = reqwest::Client::new();
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = read_log(&self.log);
                // The port was free when picked, but another process of the suite may bind it before the
                // child does: start again on another one.
                if log.contains("Address already in use") && self.start.retries > 0 {
                    self.start.retries -= 1;
                    (self.child, self.base, self.log) = spawn_gateway(&self.start);
                    continue;
                }
                panic!("gateway exited during start-up ({status}):\n{log}");
            }
            if let Ok(r) = http
                .get(format!("{}/health/ready", self.base))
                .timeout(Duration::from_millis(500))
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "gateway not ready after {deadline:?}:\n{}",
                read_log(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn wait_exit(&mut self, deadline: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, started.elapsed());
            }
            assert!(
                started.elapsed() < deadline,
                "gateway still running {deadline:?} after the signal:\n{}",
                read_log(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A log without its colour escapes.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn poll_until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < end, "timed out after {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn db_pairs(db: &TestDatabase) -> BTreeSet<(String, String)> {
    db.query("SELECT character_name, liker FROM character_likes")
        .lines()
        .filter_map(|l| {
            let mut it = l.split('\t');
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

fn db_sum(db: &TestDatabase) -> u64 {
    db.query("SELECT COALESCE(SUM(like_count), 0) FROM characters")
        .parse()
        .unwrap()
}

fn db_rows(db: &TestDatabase) -> u64 {
    db.query("SELECT COUNT(*) FROM character_likes")
        .parse()
        .unwrap()
}

/// Every character's `like_count` equals its number of rows: nothing counted twice.
fn assert_counts_consistent(db: &TestDatabase) {
    let bad = db.query(
        "SELECT c.name, c.like_count, (SELECT COUNT(*) FROM character_likes l WHERE l.character_name = c.name) AS n \
         FROM characters c HAVING n <> c.like_count",
    );
    assert!(bad.is_empty(), "like_count differs from the rows: {bad}");
    assert_eq!(db_sum(db), db_rows(db));
}

/// Sends `likes` with 64 connections, stopping early once `stop` is set; returns the pairs that got 200.
async fn like_load(
    base: String,
    likes: Vec<(String, String)>,
    ok: Arc<Mutex<Vec<(String, String)>>>,
) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    futures::stream::iter(likes)
        .map(|(c, l)| {
            let http = http.clone();
            let ok = ok.clone();
            let base = base.clone();
            async move {
                let r = http
                    .post(format!("{base}/api/v2/characters/{c}/like"))
                    .header("x-liker-id", &l)
                    .send()
                    .await;
                if let Ok(r) = r
                    && r.status() == 200
                {
                    // The pair as the database stores it (the character key is lower-case).
                    ok.lock().unwrap().push((c.to_lowercase(), l));
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

fn like_set(n: usize, tag: &str) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("Hero{}", i % 40), format!("{tag}-{i}")))
        .collect()
}

fn backed_up_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect()
}

fn store_env(db_url: String, redis: Option<&RedisServer>) -> Vec<(&'static str, String)> {
    let mut v = vec![("MAPLE_DATABASE_URL", db_url)];
    if let Some(r) = redis {
        v.push(("MAPLE_REDIS_URL", r.url()));
    }
    v
}

/// SIGTERM while 5,000 likes are in flight from 64 connections: every 200 is in MySQL after a restart and
/// a sync, and no like is counted twice; the process exits 0 within grace + 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_sigterm_under_like_load_keeps_every_acknowledged_like() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let env = store_env(db.url(), Some(&redis));
    let mut gw = start_gateway(dir.path(), &env, "first");
    gw.wait_ready(Duration::from_secs(60)).await;

    let ok: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let load = tokio::spawn(like_load(gw.base.clone(), like_set(5000, "t"), ok.clone()));
    poll_until("1,000 likes acknowledged", Duration::from_secs(60), || {
        ok.lock().unwrap().len() >= 1000
    })
    .await;
    gw.signal("-TERM");
    let (status, took) = gw
        .wait_exit(Duration::from_millis(GRACE_MS) + Duration::from_secs(10))
        .await;
    load.await.unwrap();
    let log = read_log(&gw.log);
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(log.contains("shutdown complete"), "{log}");
    let segments = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jnl"))
        .count();
    assert_eq!(segments, 0, "a clean shutdown leaves no journal segment");
    let acknowledged: BTreeSet<(String, String)> = ok.lock().unwrap().iter().cloned().collect();
    eprintln!(
        "SIGTERM under load: {} likes acknowledged, exit after {took:?}",
        acknowledged.len()
    );

    let mut gw2 = start_gateway(dir.path(), &env, "second");
    gw2.wait_ready(Duration::from_secs(60)).await;
    poll_until(
        "every acknowledged like in MySQL",
        Duration::from_secs(30),
        || db_pairs(&db).is_superset(&acknowledged),
    )
    .await;
    assert_counts_consistent(&db);
}

/// SIGTERM with Redis stopped and MariaDB unreachable: a backup file is written and the process still
/// exits 0 in time; restarted with both back, the totals are exact and the file moves to applied/.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_with_both_stores_down_backs_up_and_recovers_exactly() {
    let mut redis = RedisServer::start();
    let db = TestDatabase::create();
    let relay = CutRelay::start(db.port).await;
    let dir = tempfile::tempdir().unwrap();
    let env = store_env(relay.url(&db), Some(&redis));
    let mut gw = start_gateway(dir.path(), &env, "first");
    gw.wait_ready(Duration::from_secs(60)).await;

    tokio::task::block_in_place(|| redis.stop());
    relay.cut();
    let ok: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    like_load(gw.base.clone(), like_set(300, "down"), ok.clone()).await;
    let acknowledged: BTreeSet<(String, String)> = ok.lock().unwrap().iter().cloned().collect();
    assert_eq!(
        acknowledged.len(),
        300,
        "the buffer takes likes while both stores are down"
    );

    gw.signal("-TERM");
    let (status, took) = gw
        .wait_exit(Duration::from_millis(GRACE_MS) + Duration::from_secs(10))
        .await;
    let log = read_log(&gw.log);
    assert!(status.success(), "exit status {status}:\n{log}");
    let files = backed_up_files(&dir.path().join("backup"));
    assert_eq!(files.len(), 1, "one backup file: {files:?}\n{log}");
    let file = backup::parse(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(file.entries.len(), 300);
    eprintln!("SIGTERM with both stores down: exit after {took:?}, 300 likes backed up");

    tokio::task::block_in_place(|| redis.restart());
    relay.restore();
    let mut gw2 = start_gateway(dir.path(), &env, "second");
    gw2.wait_ready(Duration::from_secs(60)).await;
    // Recovery runs before ready: the totals are exact at once.
    assert_eq!(db_pairs(&db), acknowledged);
    assert_counts_consistent(&db);
    assert!(backed_up_files(&dir.path().join("backup")).is_empty());
    assert_eq!(backed_up_files(&dir.path().join("backup/applied")).len(), 1);
}

fn synthetic_entries(n: usize) -> Vec<LikeEntry> {
    (0..n)
        .map(|i| LikeEntry {
            id: format!("old.0000abcd-{i}"),
            character: format!("mage{}", i % 50),
            liker: format!("r{i}"),
            at_ms: 1_700_000_000_000,
        })
        .collect()
}

/// A crash (kill -9) half-way through recovery, then a normal start, then the same file applied again:
/// every entry is counted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_recovery_survives_a_crash_and_a_second_application() {
    const N: usize = 20_000;
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("backup");
    let path = backup::write(&backup_dir, "old", "shutdown", &synthetic_entries(N))
        .unwrap()
        .unwrap();
    let copy = backup_dir.join("shutdown-copy-1.json");
    std::fs::copy(&path, &copy).unwrap();

    let mut env = store_env(db.url(), None);
    env.push(("MAPLE_LIKE_SYNC_BATCH", "100".into()));
    let mut gw = start_gateway(dir.path(), &env, "crash");
    let end = Instant::now() + Duration::from_secs(60);
    // Wait for the recovery to be part-way through (the table exists once migrations ran).
    let mut seen = 0;
    while Instant::now() < end {
        let n = db
            .query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'character_likes'")
            .parse::<u64>()
            .unwrap_or(0);
        if n == 1 {
            seen = db_rows(&db);
            if seen > 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.signal("-KILL");
    gw.wait_exit(Duration::from_secs(10)).await;
    let after_crash = db_rows(&db);
    eprintln!("recovery crash: killed with {seen} of {N} applied ({after_crash} after the kill)");
    assert!(
        seen > 0 && (after_crash as usize) < N,
        "the kill must land during recovery (rows {after_crash} of {N}):\n{}",
        read_log(&gw.log)
    );
    assert_counts_consistent(&db);

    let mut gw2 = start_gateway(dir.path(), &env, "again");
    gw2.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(db_rows(&db) as usize, N);
    assert_counts_consistent(&db);
    let applied = backed_up_files(&backup_dir.join("applied"));
    assert_eq!(applied.len(), 2, "both files applied: {applied:?}");
    drop(gw2);

    // The same file once more: nothing changes.
    std::fs::copy(&applied[0], backup_dir.join("shutdown-replay-2.json")).unwrap();
    let mut gw3 = start_gateway(dir.path(), &env, "replay");
    gw3.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(db_rows(&db) as usize, N);
    assert_counts_consistent(&db);
    assert!(read_log(&gw3.log).contains("start-up recovery done"));
}

/// A truncated backup file is quarantined (log line, metric) and the gateway starts and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_corrupted_backup_is_quarantined_and_the_gateway_serves() {
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("backup");
    let path = backup::write(&backup_dir, "old", "shutdown", &synthetic_entries(50))
        .unwrap()
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let mut gw = start_gateway(dir.path(), &[], "corrupt");
    gw.wait_ready(Duration::from_secs(60)).await;
    let name = path.file_name().unwrap();
    assert!(!path.exists());
    assert!(backup_dir.join("quarantine").join(name).exists());
    let log = read_log(&gw.log);
    assert!(log.contains("quarantined"), "{log}");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v2/characters/Evan/like", gw.base))
        .header("x-liker-id", "after-quarantine")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let metrics = http
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("maple_recovery_quarantined_files_total") && l.ends_with(" 1")),
        "{metrics}"
    );
}

/// kill -9 under a like load: the journal replay brings back every acknowledged like (group commit: the
/// 200 goes out only after the journal fsync that covers the like).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_kill9_under_load_loses_nothing_acknowledged() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let mut env = store_env(db.url(), Some(&redis));
    // Slow flush and sync: at the kill most acknowledged likes exist only in the buffer and the journal,
    // so the test fails unless the journal replay brings them back.
    env.push(("MAPLE_LIKE_FLUSH_MS", "5000".into()));
    env.push(("MAPLE_LIKE_SYNC_MS", "5000".into()));
    let mut gw = start_gateway(dir.path(), &env, "first");
    gw.wait_ready(Duration::from_secs(60)).await;

    let ok: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let load = tokio::spawn(like_load(gw.base.clone(), like_set(5000, "k9"), ok.clone()));
    poll_until("1,500 likes acknowledged", Duration::from_secs(60), || {
        ok.lock().unwrap().len() >= 1500
    })
    .await;
    gw.signal("-KILL");
    gw.wait_exit(Duration::from_secs(10)).await;
    load.await.unwrap();
    let acknowledged: BTreeSet<(String, String)> = ok.lock().unwrap().iter().cloned().collect();
    let in_db_at_kill = db_rows(&db);

    let mut gw2 = start_gateway(dir.path(), &env, "second");
    gw2.wait_ready(Duration::from_secs(60)).await;
    // The Redis queue of the dead process is synced by the new one; wait until the rows stop changing.
    let mut last = u64::MAX;
    let mut stable_since = Instant::now();
    poll_until("MySQL settled", Duration::from_secs(30), || {
        let n = db_rows(&db);
        if n != last {
            last = n;
            stable_since = Instant::now();
        }
        db_pairs(&db).is_superset(&acknowledged) || stable_since.elapsed() > Duration::from_secs(3)
    })
    .await;
    let stored = db_pairs(&db);
    let lost = acknowledged.difference(&stored).count();
    eprintln!(
        "kill -9 under load: {} acknowledged ({in_db_at_kill} in MySQL at the kill), {} lost, {} rows in MySQL after restart",
        acknowledged.len(),
        lost,
        stored.len()
    );
    // Group commit: a like is answered only after the journal group holding it is written and fsynced.
    assert_eq!(lost, 0, "{lost} acknowledged likes lost");
    assert_counts_consistent(&db);
}

/// A request stuck on a slow upstream is answered 503 when the grace period ends, and the process exits
/// within grace + 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_request_stuck_upstream_exits_within_grace() {
    let sim = maple_gateway::sim::spawn(
        maple_gateway::sim::Simulator::new(maple_gateway::sim::SimConfig {
            seed: 1,
            api_key: None,
        }),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/_sim/faults", sim.base_url()))
        .body(r#"{"latency_ms":60000}"#)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("NEXON_API_KEY", "test-key".to_string()),
        ("MAPLE_UPSTREAM_URL", sim.base_url()),
        ("MAPLE_REQUEST_TIMEOUT_MS", "120000".to_string()),
        ("MAPLE_UPSTREAM_TIMEOUT_MS", "120000".to_string()),
        ("MAPLE_UPSTREAM_DEADLINE_MS", "120000".to_string()),
    ];
    let mut gw = start_gateway(dir.path(), &env, "slow");
    gw.wait_ready(Duration::from_secs(60)).await;
    let url = format!("{}/api/v1/characters/Evan", gw.base);
    let stuck = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    let stats = format!("{}/_sim/stats", sim.base_url());
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let s: serde_json::Value = http.get(&stats).send().await.unwrap().json().await.unwrap();
        let calls: u64 = s["calls"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0);
        if calls > 0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "the request never reached the simulator"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    gw.signal("-TERM");
    let (status, took) = gw
        .wait_exit(Duration::from_millis(GRACE_MS) + Duration::from_secs(10))
        .await;
    assert!(status.success(), "exit {status}:\n{}", read_log(&gw.log));
    eprintln!("SIGTERM with a stuck request: exit after {took:?} (grace {GRACE_MS} ms)");
    let answered = stuck.await.unwrap();
    assert_eq!(
        answered.ok(),
        Some(503),
        "the stuck request is cut with 503"
    );
    let log = plain(&read_log(&gw.log));
    assert!(log.contains("cut_requests=1"), "{log}");
}

/// A second SIGTERM during a slow shutdown (both stores down) writes the backup and exits at once; the
/// backup brings every acknowledged like back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_second_signal_forces_exit_after_writing_the_backup() {
    let mut redis = RedisServer::start();
    let db = TestDatabase::create();
    let relay = CutRelay::start(db.port).await;
    let dir = tempfile::tempdir().unwrap();
    let env = store_env(relay.url(&db), Some(&redis));
    let mut gw = start_gateway(dir.path(), &env, "first");
    gw.wait_ready(Duration::from_secs(60)).await;
    tokio::task::block_in_place(|| redis.stop());
    relay.cut();
    let ok: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    like_load(gw.base.clone(), like_set(100, "forced"), ok.clone()).await;
    let acknowledged: BTreeSet<(String, String)> = ok.lock().unwrap().iter().cloned().collect();
    assert_eq!(acknowledged.len(), 100);

    gw.signal("-TERM");
    poll_until("the shutdown began", Duration::from_secs(10), || {
        read_log(&gw.log).contains("shutdown requested")
    })
    .await;
    gw.signal("-TERM");
    let (status, took) = gw.wait_exit(Duration::from_secs(10)).await;
    let log = plain(&read_log(&gw.log));
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("second signal: forced exit"), "{log}");
    assert!(
        !log.contains("shutdown complete"),
        "the graceful sequence did not finish: {log}"
    );
    let files = backed_up_files(&dir.path().join("backup"));
    assert_eq!(files.len(), 1, "{files:?}");
    let file = backup::parse(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!((file.reason.as_str(), file.entries.len()), ("forced", 100));
    eprintln!("second signal: exit after {took:?}");

    tokio::task::block_in_place(|| redis.restart());
    relay.restore();
    let mut gw2 = start_gateway(dir.path(), &env, "second");
    gw2.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(db_pairs(&db), acknowledged);
    assert_counts_consistent(&db);
}
