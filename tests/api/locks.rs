//! Distributed locks against real servers: a `redis-server` per test and a fresh MariaDB database.
//! "Instances" are separate lock services with their own Redis clients and MySQL pools; a killed holder
//! is a real child process (this test binary, running the ignored `child_process_holds_lock`) stopped
//! with SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use maple_gateway::config::{DatabaseSettings, RedactedUrl, RedisSettings};
use maple_gateway::lock::{LockError, LockService, LockTier, mysql_lock_name};
use maple_gateway::redis::RedisHandle;
use maple_gateway::store::{LikeBatch, LikeRecord, Store, StoreError};

use crate::harness::{RedisServer, TestDatabase, wait_until};

pub fn mysql_settings(url: &str) -> DatabaseSettings {
    DatabaseSettings::Mysql {
        url: RedactedUrl::new(url),
    }
}

pub async fn redis_handle(url: &str) -> RedisHandle {
    RedisHandle::connect(&RedisSettings::Standalone {
        url: RedactedUrl::new(url),
    })
    .await
    .unwrap()
    .unwrap()
}

/// One "instance": its own Redis client (when given) and its own MySQL lock pool.
async fn instance(redis: Option<&str>, db_url: &str) -> LockService {
    let handle = match redis {
        Some(u) => Some(redis_handle(u).await),
        None => None,
    };
    LockService::new(handle, &mysql_settings(db_url)).unwrap()
}

/// The store (its migrations create `lock_tokens` and `lock_fences`).
async fn store(db: &TestDatabase) -> Store {
    Store::connect(&mysql_settings(&db.url())).await.unwrap()
}

fn batch(id: &str, liker: &str) -> LikeBatch {
    LikeBatch {
        id: id.into(),
        likes: vec![LikeRecord {
            character: "fenced".into(),
            liker: liker.into(),
            at_ms: 1,
        }],
    }
}

/// 2 × `per` tasks increment a counter row by read, random pause, write — correct only under mutual
/// exclusion.
async fn hammer(a: &LockService, b: &LockService, pool: &sqlx::MySqlPool, per: usize) {
    let mut tasks = Vec::new();
    for i in 0..per * 2 {
        let locks = if i % 2 == 0 { a.clone() } else { b.clone() };
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let g = locks
                .acquire("counter", Duration::from_secs(60), Duration::from_secs(2))
                .await
                .unwrap();
            let v: i64 = sqlx::query_scalar("SELECT v FROM counter WHERE id = 1")
                .fetch_one(&pool)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % 3000)).await;
            sqlx::query("UPDATE counter SET v = ? WHERE id = 1")
                .bind(v + 1)
                .execute(&pool)
                .await
                .unwrap();
            g.release().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_of_fifty_tasks_keep_a_mysql_counter_exact_on_both_tiers() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let _store = store(&db).await;
    db.query("CREATE TABLE counter (id INT PRIMARY KEY, v BIGINT NOT NULL)");
    db.query("INSERT INTO counter VALUES (1, 0)");
    let pool = sqlx::MySqlPool::connect(&db.url()).await.unwrap();

    let a = instance(Some(&redis.url()), &db.url()).await;
    let b = instance(Some(&redis.url()), &db.url()).await;
    hammer(&a, &b, &pool, 50).await;
    assert_eq!(db.query("SELECT v FROM counter"), "100");
    assert_eq!(
        a.stats().acquired(LockTier::Redis) + b.stats().acquired(LockTier::Redis),
        100
    );
    assert_eq!(
        a.stats()
            .fallbacks
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // The MySQL tier alone (no Redis configured) excludes the same way.
    let a = instance(None, &db.url()).await;
    let b = instance(None, &db.url()).await;
    hammer(&a, &b, &pool, 25).await;
    assert_eq!(db.query("SELECT v FROM counter"), "150");
    assert_eq!(
        a.stats().acquired(LockTier::Mysql) + b.stats().acquired(LockTier::Mysql),
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_watchdog_keeps_a_lease_shorter_than_the_work_on_both_tiers() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let _store = store(&db).await;
    let a = instance(Some(&redis.url()), &db.url()).await;
    let b = instance(Some(&redis.url()), &db.url()).await;
    let lease = Duration::from_millis(500);
    let g = a.acquire("long-job", Duration::ZERO, lease).await.unwrap();
    assert_eq!(g.tier(), LockTier::Redis);
    // Three leases of work: the contender waits through them and still does not get in.
    let e = b
        .acquire("long-job", Duration::from_millis(1500), lease)
        .await
        .unwrap_err();
    assert!(matches!(e, LockError::Timeout { .. }), "{e}");
    assert!(g.is_held());
    g.release().await.unwrap();
    b.acquire("long-job", Duration::from_millis(500), lease)
        .await
        .unwrap();

    // MySQL: the session's wait_timeout is the lease (2 s); the watchdog's queries keep it alive.
    let a = instance(None, &db.url()).await;
    let b = instance(None, &db.url()).await;
    let lease = Duration::from_millis(1500);
    let g = a.acquire("long-job", Duration::ZERO, lease).await.unwrap();
    assert_eq!(g.tier(), LockTier::Mysql);
    let e = b
        .acquire("long-job", Duration::from_millis(4500), lease)
        .await
        .unwrap_err();
    assert!(matches!(e, LockError::Timeout { .. }), "{e}");
    assert!(g.is_held());
    g.release().await.unwrap();
    b.acquire("long-job", Duration::from_millis(500), lease)
        .await
        .unwrap();
}

/// Run by [`a_killed_holder_frees_the_lock`] in a child process: takes the lock and holds it forever.
#[tokio::test]
#[ignore = "started as a child process by a_killed_holder_frees_the_lock"]
async fn child_process_holds_lock() {
    let Ok(spec) = std::env::var("MAPLE_TEST_LOCK_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let redis = (parts[0] != "-").then_some(parts[0]);
    let locks = instance(redis, parts[1]).await;
    let lease = Duration::from_millis(parts[3].parse().unwrap());
    let g = locks
        .acquire(parts[2], Duration::from_secs(10), lease)
        .await
        .unwrap();
    // Own line: libtest has already written "test … ... " without a newline.
    println!("\nHELD {} {}", g.tier().as_str(), g.token());
    std::future::pending::<()>().await;
}

struct Holder {
    child: Child,
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a child process holding `name`; returns once it holds it.
fn spawn_holder(redis: Option<&str>, db_url: &str, name: &str, lease_ms: u64) -> Holder {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "locks::child_process_holds_lock",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(
            "MAPLE_TEST_LOCK_CHILD",
            format!("{}|{db_url}|{name}|{lease_ms}", redis.unwrap_or("-")),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    // Owned by the guard before waiting, so a failed wait still kills it.
    let holder = Holder { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("HELD ") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the child process takes the lock");
    assert!(line.starts_with("HELD "), "{line}");
    holder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_holder_frees_the_lock() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let _store = store(&db).await;
    let locks = instance(Some(&redis.url()), &db.url()).await;

    // Redis: the key outlives the process until its lease runs out (the last renewal was at most a
    // third of a lease before the kill).
    let holder = spawn_holder(Some(&redis.url()), &db.url(), "job", 1000);
    let e = locks
        .acquire("job", Duration::from_millis(100), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(e, LockError::Timeout { .. }));
    drop(holder);
    let t = Instant::now();
    let g = locks
        .acquire("job", Duration::from_secs(5), Duration::from_secs(1))
        .await
        .unwrap();
    let waited = t.elapsed();
    assert_eq!(g.tier(), LockTier::Redis);
    assert!(
        waited >= Duration::from_millis(300) && waited <= Duration::from_millis(2500),
        "freed after the lease, got {waited:?}"
    );
    drop(g);

    // MySQL: the lock dies with the killed process's session, at once (the lease is 10 s).
    let mysql_only = instance(None, &db.url()).await;
    let holder = spawn_holder(None, &db.url(), "job2", 10_000);
    assert!(
        mysql_only
            .acquire("job2", Duration::from_millis(100), Duration::from_secs(10))
            .await
            .is_err()
    );
    drop(holder);
    let t = Instant::now();
    let g = mysql_only
        .acquire("job2", Duration::from_secs(5), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(g.tier(), LockTier::Mysql);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_rejects_a_holder_paused_past_its_lease() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let store = store(&db).await;
    let a = instance(Some(&redis.url()), &db.url()).await;
    let b = instance(Some(&redis.url()), &db.url()).await;

    let ga = a
        .acquire("likes-sync", Duration::ZERO, Duration::from_millis(400))
        .await
        .unwrap();
    store
        .apply_likes(&batch("a0", "early"), &ga.fence())
        .await
        .unwrap();
    // A pauses (no renewals) past its lease; B takes over and writes.
    ga.stop_watchdog();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!ga.is_held());
    let gb = b
        .acquire("likes-sync", Duration::from_secs(2), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(gb.token() > ga.token());
    store
        .apply_likes(&batch("b1", "b"), &gb.fence())
        .await
        .unwrap();
    // A resumes and writes: rejected, nothing written.
    let e = store
        .apply_likes(&batch("a1", "late"), &ga.fence())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    assert_eq!(store.like_count("fenced").await.unwrap(), 2);
    assert!(!store.has_liked("fenced", "late").await.unwrap());

    // Across tiers: a MySQL holder taking over while the Redis holder still believes it holds the lock
    // (Redis unreachable from the taker's side) fences the Redis holder out with its first write.
    let c = instance(None, &db.url()).await;
    let gc = c
        .acquire("likes-sync", Duration::ZERO, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(gc.tier(), LockTier::Mysql);
    assert!(gc.token() > gb.token(), "{} vs {}", gc.token(), gb.token());
    store
        .apply_likes(&batch("c1", "c"), &gc.fence())
        .await
        .unwrap();
    assert!(gb.is_held(), "B's Redis lease is still valid");
    let e = store
        .apply_likes(&batch("b2", "b-late"), &gb.fence())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    assert_eq!(store.like_count("fenced").await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_moves_locks_to_mysql_within_one_acquisition_timeout_and_contention_never_does()
 {
    let mut redis = RedisServer::start();
    let db = TestDatabase::create();
    let store = store(&db).await;
    let a = instance(Some(&redis.url()), &db.url()).await;
    let b = instance(Some(&redis.url()), &db.url()).await;
    let lease = Duration::from_secs(2);

    let ga = a.acquire("job", Duration::ZERO, lease).await.unwrap();
    assert_eq!(ga.tier(), LockTier::Redis);
    for _ in 0..3 {
        let e = b
            .acquire("job", Duration::from_millis(300), lease)
            .await
            .unwrap_err();
        assert!(matches!(e, LockError::Timeout { .. }), "{e}");
    }
    let fallbacks = |s: &LockService| {
        s.stats()
            .fallbacks
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    assert_eq!(fallbacks(&b), 0, "contention never moves a lock");
    assert_eq!(b.stats().acquired(LockTier::Mysql), 0);

    redis.stop();
    let wait = Duration::from_secs(2);
    let t = Instant::now();
    let other = b.acquire("other", wait, lease).await.unwrap();
    assert_eq!(other.tier(), LockTier::Mysql);
    assert!(t.elapsed() <= wait, "{:?}", t.elapsed());
    drop(other);
    // The lock A holds in the dead Redis: B takes it on MySQL; the fence orders the two holders.
    let t = Instant::now();
    let gb = b.acquire("job", wait, lease).await.unwrap();
    assert_eq!(gb.tier(), LockTier::Mysql);
    assert!(t.elapsed() <= wait, "{:?}", t.elapsed());
    assert!(fallbacks(&b) >= 2);
    store
        .apply_likes(&batch("b", "b"), &gb.fence())
        .await
        .unwrap();
    assert!(matches!(
        store.apply_likes(&batch("a", "a"), &ga.fence()).await,
        Err(StoreError::Fenced { .. })
    ));
    tokio::time::timeout(Duration::from_secs(5), ga.lost())
        .await
        .expect("A learns it lost the lock: it cannot renew");
    drop(ga);

    // Redis back: acquisitions return to Redis after the breaker's cooldown, but a Redis acquirer
    // treats the lock B still holds in MySQL as busy.
    tokio::task::block_in_place(|| redis.restart());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let g = a
            .acquire("probe", Duration::from_millis(200), lease)
            .await
            .unwrap();
        if g.tier() == LockTier::Redis {
            break;
        }
        assert!(Instant::now() < deadline, "locks did not return to Redis");
        drop(g);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let e = a
        .acquire("job", Duration::from_millis(400), lease)
        .await
        .unwrap_err();
    assert!(matches!(e, LockError::Timeout { .. }), "{e}");
    gb.release().await.unwrap();
    let g = a
        .acquire("job", Duration::from_secs(1), lease)
        .await
        .unwrap();
    assert_eq!(g.tier(), LockTier::Redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mysql_lock_lives_and_dies_with_its_pinned_session() {
    let db = TestDatabase::create();
    let _store = store(&db).await;
    let m = instance(None, &db.url()).await;
    let other = instance(None, &db.url()).await;
    let name = mysql_lock_name(&db.name, "session");
    let holder_of = || db.query(&format!("SELECT IS_USED_LOCK('{name}')"));
    let alive = |id: &str| {
        db.query(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"
        ))
    };

    let g = m
        .acquire("session", Duration::ZERO, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(g.tier(), LockTier::Mysql);
    let session = holder_of();
    assert_ne!(session, "NULL");
    assert!(
        other
            .acquire(
                "session",
                Duration::from_millis(200),
                Duration::from_secs(5)
            )
            .await
            .is_err()
    );
    // Released by RELEASE_LOCK on that very session (only it can), which stays open in the pool.
    g.release().await.unwrap();
    assert_eq!(holder_of(), "NULL");
    assert_eq!(
        alive(&session),
        "1",
        "the session was not closed to free the lock"
    );
    let g = m
        .acquire("session", Duration::ZERO, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(holder_of(), session, "the pooled session is reused");

    // Closed on error: the session is killed; the lock is free at once and the guard learns it.
    db.query(&format!("KILL {session}"));
    let t = Instant::now();
    let g2 = other
        .acquire("session", Duration::from_secs(2), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    tokio::time::timeout(Duration::from_secs(4), g.lost())
        .await
        .expect("the holder's watchdog notices its session is gone");
    assert!(!g.is_held());
    drop(g);
    g2.release().await.unwrap();
    // The broken connection was not returned: the next lock gets a live session.
    let g3 = m
        .acquire("session", Duration::from_secs(1), Duration::from_secs(5))
        .await
        .unwrap();
    let s3 = holder_of();
    assert_ne!(s3, session);
    assert_eq!(alive(&s3), "1");
    drop(g3);

    // A stalled holder: the server closes its idle session after the lease (wait_timeout), and the lock
    // with it.
    let stalled = m
        .acquire("stalled", Duration::ZERO, Duration::from_secs(1))
        .await
        .unwrap();
    stalled.stop_watchdog();
    let t = Instant::now();
    let next = other
        .acquire("stalled", Duration::from_secs(6), Duration::from_secs(1))
        .await
        .unwrap();
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited <= Duration::from_millis(4000),
        "{waited:?}"
    );
    assert!(next.token() > stalled.token());
    wait_until(
        "the stalled guard reports the loss",
        Duration::from_secs(3),
        || !stalled.is_held(),
    );
}
