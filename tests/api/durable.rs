//! Durable Redis writes (`docs/adr/0012-durable-redis-writes.md`): the failover drill's durable probe loses
//! nothing, run after run on a real master + replica + three Sentinels.

use std::time::{Duration, Instant};

use maple_gateway::config::{DatabaseSettings, RedactedUrl, RedisSettings, Settings};

use crate::admin::{TOKEN, admin, sentinel_settings, wait_master};
use crate::harness::{
    RedisServer, SentinelTopology, TestDatabase, redis_cmd, wait_replica_online, wait_until,
};
use crate::helpers::spawn_app_with;
use crate::likes::{Workload, assert_all_ok, fast_likes, send, wait_for_exact_totals};

/// Polls (bounded) until `master` has its replica `replica` online and every Sentinel names `master` and
/// knows `replica` as a healthy replica: only then does a Sentinel accept the next planned failover.
async fn wait_settled(topo: &SentinelTopology, master: u16, replica: u16, within: Duration) {
    let started = Instant::now();
    loop {
        let info = redis_cmd(master, &["INFO", "replication"]).unwrap_or_default();
        let replica_online =
            info.contains("role:master") && info.contains(&format!("port={replica},state=online"));
        let sentinels_agree = topo.sentinels.iter().all(|s| {
            let addr = redis_cmd(
                s.port,
                &["SENTINEL", "get-master-addr-by-name", &topo.master_name],
            )
            .unwrap_or_default();
            let replicas =
                redis_cmd(s.port, &["SENTINEL", "replicas", &topo.master_name]).unwrap_or_default();
            addr.contains(&master.to_string())
                && replicas.contains(&replica.to_string())
                && !replicas.contains("s_down")
                && !replicas.contains("disconnected")
        });
        if replica_online && sentinels_agree {
            return;
        }
        assert!(
            started.elapsed() < within,
            "topology not settled with master {master} and replica {replica}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_failover_drills_lose_no_durable_write() {
    let topo = SentinelTopology::start();
    let app = spawn_app_with(sentinel_settings(&topo)).await;
    let (mut master, mut replica) = (topo.master.port, topo.replica.port);
    for run in 1..=3 {
        wait_settled(&topo, master, replica, Duration::from_secs(60)).await;
        wait_master(&app, master, Duration::from_secs(30)).await;
        let (status, report) = admin(
            &app,
            reqwest::Method::POST,
            "/admin/drills/redis-failover",
            Some(TOKEN),
        )
        .await;
        assert_eq!(status, 200, "run {run}: {report}");
        eprintln!("failover drill run {run}: {report}");
        assert_eq!(
            (report["old_master"].clone(), report["new_master"].clone()),
            (
                format!("127.0.0.1:{master}").into(),
                format!("127.0.0.1:{replica}").into()
            ),
            "run {run}: {report}"
        );
        assert!(
            report["switch_detected_ms"].is_u64(),
            "run {run}: the switch was seen: {report}"
        );
        assert!(
            report["acknowledged_writes"].as_u64().unwrap_or(0) > 0,
            "run {run}: durable probe writes were acknowledged: {report}"
        );
        assert_eq!(
            report["lost_writes"], 0,
            "run {run}: no acknowledged durable write lost: {report}"
        );
        assert!(
            report["lost_disposable_writes"].is_u64() && report["note"].is_string(),
            "run {run}: the plain probe is reported and explained: {report}"
        );
        std::mem::swap(&mut master, &mut replica);
    }
}

fn likes_workload(prefix: &str, n: usize) -> Workload {
    let mut likes: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("{prefix}{}", (i * 7) % 60),
                format!("liker-{}", (i * 13) % 300),
            )
        })
        .collect();
    let repeats: Vec<_> = likes.iter().step_by(5).cloned().collect();
    likes.extend(repeats);
    Workload::of(likes)
}

fn with_mysql(
    db: &TestDatabase,
    base: impl Fn(&mut Settings) + Clone + Send + 'static,
) -> impl Fn(&mut Settings) + Clone + Send + 'static {
    let url = db.url();
    move |s: &mut Settings| {
        base(s);
        s.database = DatabaseSettings::Mysql {
            url: RedactedUrl::new(url.clone()),
        };
        fast_likes(s);
    }
}

/// The staging area's push counter on `port` (0 when nothing was ever pushed there).
fn pushed_on(port: u16) -> u64 {
    redis_cmd(port, &["GET", "maple:v1:likes:pushed"])
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A standalone Redis without a replica has no failover to lose a write to: durable writes are acknowledged
/// by the master alone and the likes go through the staging area as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn likes_reach_the_database_through_a_standalone_redis_without_a_replica() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let url = redis.url();
    let settings = with_mysql(&db, move |s: &mut Settings| {
        s.redis = RedisSettings::Standalone {
            url: RedactedUrl::new(url.clone()),
        };
    });
    let a = spawn_app_with(settings.clone()).await;
    let b = spawn_app_with(settings).await;
    let w = likes_workload("Solo", 1500);
    assert_all_ok(&send(&[&a, &b], &w.likes).await, "likes");
    wait_for_exact_totals(&db, &w, Duration::from_secs(60)).await;
    assert!(
        pushed_on(redis.port) > 0,
        "the likes went through the staging area"
    );
    let metrics = a.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("maple_redis_durable_writes_total{outcome=\"master_only\"}"),
        "durable writes acknowledged by the master alone are counted"
    );
}

/// Sentinel mode with the only replica stopped: a write acknowledged by the master alone is the write a
/// failover loses, so nothing goes to the staging area; the likes take the database path (as with Redis
/// down) and reach MySQL exactly. With the replica back, they go through the staging area again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn likes_take_the_database_path_while_the_sentinel_master_has_no_replica() {
    let mut topo = SentinelTopology::start();
    let db = TestDatabase::create();
    let settings = with_mysql(&db, sentinel_settings(&topo));
    let a = spawn_app_with(settings.clone()).await;
    let b = spawn_app_with(settings).await;
    wait_master(&a, topo.master.port, Duration::from_secs(10)).await;
    wait_master(&b, topo.master.port, Duration::from_secs(10)).await;

    tokio::task::block_in_place(|| topo.replica.stop()); // SIGKILL by PID
    let mp = topo.master.port;
    tokio::task::block_in_place(|| {
        wait_until(
            "the master sees no replica",
            Duration::from_secs(10),
            || {
                redis_cmd(mp, &["INFO", "replication"])
                    .is_some_and(|s| s.contains("connected_slaves:0"))
            },
        )
    });
    let before = pushed_on(mp);
    let w = likes_workload("Lonely", 1500);
    assert_all_ok(&send(&[&a, &b], &w.likes).await, "likes without a replica");
    wait_for_exact_totals(&db, &w, Duration::from_secs(60)).await;
    assert_eq!(
        pushed_on(mp),
        before,
        "nothing was pushed to the staging area of a master without a replica"
    );

    tokio::task::block_in_place(|| topo.replica.restart());
    tokio::task::block_in_place(|| wait_replica_online(mp, Duration::from_secs(20)));
    // Each instance reads the replica count at most once a second and acts on it at its next flush or sync:
    // likes sent in that moment still take the database path. Send rounds until one is staged (bounded).
    let mut all = w.likes.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    for round in 0.. {
        let more = likes_workload(&format!("Paired{round}x"), 500).likes;
        assert_all_ok(&send(&[&a, &b], &more).await, "likes with the replica back");
        all.extend(more);
        tokio::time::sleep(Duration::from_millis(700)).await;
        if pushed_on(mp) > before || Instant::now() >= deadline {
            break;
        }
    }
    let w2 = Workload::of(all);
    wait_for_exact_totals(&db, &w2, Duration::from_secs(60)).await;
    assert!(
        pushed_on(mp) > before,
        "with a replica the likes go through the staging area again"
    );
}

/// Sends SIGCONT to a stopped process when dropped (also when the test panics).
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// A replica that stays attached but does not acknowledge (SIGSTOP): `WAIT` answers 0, so no staging write
/// counts as written — nothing is synced from a queue a failover could still lose, the likes wait in the
/// buffers — and once the replica acknowledges again they all reach MySQL exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_does_not_acknowledge_holds_the_likes_back_and_loses_none() {
    let master = RedisServer::start();
    let replica = RedisServer::start_replica_of(master.port);
    let mp = master.port;
    tokio::task::block_in_place(|| wait_replica_online(mp, Duration::from_secs(15)));
    let db = TestDatabase::create();
    let url = master.url();
    let settings = with_mysql(&db, move |s: &mut Settings| {
        s.redis = RedisSettings::Standalone {
            url: RedactedUrl::new(url.clone()),
        };
        s.redis_wait = Duration::from_millis(100);
    });
    let a = spawn_app_with(settings.clone()).await;
    let b = spawn_app_with(settings).await;

    let pid = replica.pid().expect("replica running");
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let resume = Resume(pid);
    let w = likes_workload("Hung", 1000);
    assert_all_ok(
        &send(&[&a, &b], &w.likes).await,
        "likes with a hung replica",
    );
    // Ten sync intervals: with every staging write unacknowledged nothing reaches the database.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let synced = db.query("SELECT COUNT(*) FROM character_likes");
    assert_eq!(
        synced, "0",
        "nothing synced from staging writes no replica acknowledged"
    );
    drop(resume);
    wait_for_exact_totals(&db, &w, Duration::from_secs(60)).await;
}
