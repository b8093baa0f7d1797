//! What "acknowledged" means when the database is dead: the gateway binds and serves before start-up
//! recovery (which waits for the database in the background), and the last-resort resend does not copy
//! a backlog into the Redis queue again and again. Real MariaDB (behind a relay that is cut), real Redis;
//! every wait is a poll with a deadline.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use maple_gateway::app::Application;
use maple_gateway::config::{DatabaseSettings, RedactedUrl, RedisSettings};
use maple_gateway::ids::{CharacterName, LikerId};
use maple_gateway::likes::{LikeConfig, LikeEntry, LikeService};
use maple_gateway::lock::LockService;
use maple_gateway::redis::RedisHandle;
use maple_gateway::store::Store;

use crate::harness::{RedisServer, TestDatabase, free_port, redis_cmd};
use crate::helpers::test_settings;
use crate::likes::CutRelay;

fn db_pairs(db: &TestDatabase) -> BTreeSet<(String, String)> {
    db.query("SELECT character_name, liker FROM character_likes")
        .lines()
        .filter_map(|l| {
            let mut p = l.split('\t');
            Some((p.next()?.to_string(), p.next()?.to_string()))
        })
        .collect()
}

/// Journal segments of a process that died with the database down: `files` segments of `per` likes.
fn leave_segments(dir: &std::path::Path, files: usize, per: usize) -> BTreeSet<(String, String)> {
    let journal = dir.join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let mut pairs = BTreeSet::new();
    for f in 0..files {
        let mut text = String::new();
        for i in 0..per {
            let e = LikeEntry {
                id: format!("dead.0001-{}", f * per + i + 1),
                character: format!("recov{}", i % 5),
                liker: format!("f{f}-{i}"),
                at_ms: 1_700_000_000_000,
            };
            pairs.insert((e.character.clone(), e.liker.clone()));
            text.push_str(&serde_json::to_string(&e).unwrap());
            text.push('\n');
        }
        std::fs::write(journal.join(format!("dead.0001-{:06}.jnl", f + 1)), text).unwrap();
    }
    pairs
}

/// With MariaDB unreachable and journal segments left by a crash, the gateway answers `/health/live` at
/// once (a liveness probe must not kill it in a loop) and `/health/ready` 503 "recovering"; the segments'
/// likes reach MariaDB once it is back, and the instance turns ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_the_gateway_serves_live_at_once_and_recovers_when_it_returns() {
    let db = TestDatabase::create();
    let relay = CutRelay::start(db.port).await;
    let data = tempfile::tempdir().unwrap();
    let expected = leave_segments(data.path(), 8, 25);
    // The database existed (with its schema) before it went down.
    let database = DatabaseSettings::Mysql {
        url: RedactedUrl::new(relay.url(&db)),
    };
    Store::connect(&database).await.unwrap().close().await;
    relay.cut();

    let port = free_port();
    let mut settings = test_settings(data.path());
    settings.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    settings.database = database;
    settings.redis = RedisSettings::Disabled;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The gateway on a runtime of its own: before it binds, this test's runtime keeps polling.
    let app = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Application::build(settings).await?;
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
        })
    });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();

    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health/live")).send().await
            && r.status() == 200
        {
            break;
        }
        if app.is_finished() {
            panic!(
                "the gateway did not start with the database down: {:?}",
                app.join()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "/health/live did not answer 200 within 15 s with the database down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "database down: /health/live 200 after {:?}",
        started.elapsed()
    );
    let r = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "recovering", "{body}");
    assert!(
        db_pairs(&db).is_empty(),
        "the outage was real: nothing applied yet"
    );

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = db_pairs(&db);
        let ready = http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if stored.is_superset(&expected) && ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} recovered likes in MariaDB (ready: {ready}) 60 s after it came back",
            expected.intersection(&stored).count(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let counted: i64 = db
        .query("SELECT SUM(like_count) FROM characters")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(counted as usize, expected.len(), "each like counted once");
    let _ = stop.send(());
    let _ = tokio::task::spawn_blocking(move || app.join()).await;
}

fn llen(redis: &RedisServer) -> u64 {
    let r = redis_cmd(redis.port, &["LLEN", "maple:v1:likes:queue"]).unwrap_or_default();
    r.trim_start_matches(':').trim().parse().unwrap_or(u64::MAX)
}

/// The last-resort resend (entries unconfirmed for `resend_after`) fires only when the entry is known
/// not to be in the Redis queue — here, the queue key was deleted behind the counters' back (an eviction)
/// — never on a mere backlog while MySQL is down: the queue keeps one copy of each like however long
/// the outage lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_resort_resend_never_copies_a_backlog_while_mysql_is_down() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let relay = CutRelay::start(db.port).await;
    let database = DatabaseSettings::Mysql {
        url: RedactedUrl::new(relay.url(&db)),
    };
    let store = Store::connect(&database).await.unwrap();
    let handle = RedisHandle::connect(&RedisSettings::Standalone {
        url: RedactedUrl::new(redis.url()),
    })
    .await
    .unwrap();
    let locks = LockService::new(handle.clone(), &database).unwrap();
    let resend_after = Duration::from_millis(300);
    let likes = LikeService::new(
        LikeConfig {
            resend_after,
            ..LikeConfig::default()
        },
        store,
        handle,
        locks,
        "resend",
    );
    relay.cut();
    let n = 40;
    for i in 0..n {
        let c = CharacterName::parse(&format!("Backlog{}", i % 4)).unwrap();
        likes
            .like(&c, &LikerId::parse(&format!("u{i}")).unwrap())
            .await
            .unwrap();
    }
    assert_eq!(likes.flush_once().await.unwrap(), n);
    assert_eq!(llen(&redis), n as u64);
    // MySQL stays down for many resend periods: a backlog, nothing lost.
    for round in 0..4 {
        tokio::time::sleep(resend_after + Duration::from_millis(100)).await;
        let _ = likes.flush_once().await;
        assert_eq!(
            llen(&redis),
            n as u64,
            "round {round}: the queue holds one copy of each like while MySQL is down"
        );
    }
    // The queue itself is lost (evicted) while the counters say it holds the likes: that is known, and
    // the unconfirmed likes are pushed again — once.
    redis_cmd(redis.port, &["DEL", "maple:v1:likes:queue"]);
    tokio::time::sleep(resend_after + Duration::from_millis(100)).await;
    let _ = likes.flush_once().await;
    assert_eq!(llen(&redis), n as u64, "the lost queue is pushed again");
    for round in 0..2 {
        tokio::time::sleep(resend_after + Duration::from_millis(100)).await;
        let _ = likes.flush_once().await;
        assert_eq!(
            llen(&redis),
            n as u64,
            "round {round} after the repair: still one copy of each like"
        );
    }
    // MySQL back: every like once.
    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = likes.flush_once().await;
        let _ = likes.sync_once().await;
        if db_pairs(&db).len() == n && likes.buffered() == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} likes in MariaDB",
            db_pairs(&db).len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counted: i64 = db
        .query("SELECT SUM(like_count) FROM characters")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(counted as usize, n);
}
