//! The tiered cache directly: freshness with paused time, and flight across instances with real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use maple_gateway::cache::{
    CacheConfig, CacheError, CacheStatus, CachedValue, Clock, TieredCache, flight,
};
use maple_gateway::config::{RedactedUrl, RedisSettings};
use maple_gateway::redis::RedisHandle;

use crate::harness::{RedisServer, redis_cmd};

#[derive(Debug, Clone, thiserror::Error)]
enum TestError {
    #[error("upstream down")]
    Down,
    #[error("cache: {0}")]
    Cache(String),
}

impl From<CacheError> for TestError {
    fn from(e: CacheError) -> Self {
        TestError::Cache(e.to_string())
    }
}

const MIN: i64 = 60_000;

fn value(clock: &Clock, fresh_ms: i64) -> CachedValue {
    let now = clock.now_ms();
    CachedValue {
        body_gz: Bytes::from_static(b"payload"),
        fetched_at_ms: now,
        fresh_until_ms: now + fresh_ms,
        stale_until_ms: now + 30 * 24 * 60 * MIN,
        load_ms: 0,
        negative: false,
        stale: false,
        etag: maple_gateway::cache::ETag::of(b"payload"),
    }
}

fn cache(beta: f64, redis: Option<RedisHandle>, instance: &str) -> TieredCache<TestError> {
    cache_with_lease(beta, redis, instance, Duration::from_millis(1500))
}

fn cache_with_lease(
    beta: f64,
    redis: Option<RedisHandle>,
    instance: &str,
    flight_lease: Duration,
) -> TieredCache<TestError> {
    TieredCache::new(
        CacheConfig {
            xfetch_beta: beta,
            swr_grace: Duration::from_secs(3600),
            flight_lease,
            flight_wait: Duration::from_millis(1000),
            ..CacheConfig::default()
        },
        redis,
        Clock::starting_at(1_800_000_000_000),
        instance.to_string(),
    )
}

async fn get(
    c: &TieredCache<TestError>,
    loads: &Arc<AtomicUsize>,
    ok: bool,
) -> Result<CacheStatus, bool> {
    let l = loads.clone();
    let clock = c.clock().clone();
    c.get_or_load("k", false, move |_| async move {
        l.fetch_add(1, Ordering::SeqCst);
        if ok {
            Ok(value(&clock, 15 * MIN))
        } else {
            Err(TestError::Down)
        }
    })
    .await
    .map(|s| s.status)
    .map_err(|f| f.stale.is_some())
}

/// Lets spawned background refreshes run (paused time auto-advances only when everything is idle).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test(start_paused = true)]
async fn fresh_then_grace_then_miss_then_stale_fallback() {
    let c = cache(0.0, None, "a");
    let loads = Arc::new(AtomicUsize::new(0));
    assert_eq!(get(&c, &loads, true).await, Ok(CacheStatus::Miss));
    tokio::time::advance(Duration::from_secs(14 * 60)).await;
    assert_eq!(
        get(&c, &loads, true).await,
        Ok(CacheStatus::Hit(maple_gateway::cache::CacheTier::L1))
    );
    assert_eq!(loads.load(Ordering::SeqCst), 1, "fresh: no load");

    // Past fresh, within the grace: served at once, one background refresh.
    tokio::time::advance(Duration::from_secs(2 * 60)).await;
    assert!(matches!(
        get(&c, &loads, true).await,
        Ok(CacheStatus::Hit(_))
    ));
    settle().await;
    assert_eq!(
        loads.load(Ordering::SeqCst),
        2,
        "stale-while-revalidate refreshed once"
    );

    // Past fresh + grace with the upstream down: the caller waits for the load, which fails, and gets the
    // stale value back for the read path to serve.
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    assert_eq!(get(&c, &loads, false).await, Err(true));
    assert_eq!(loads.load(Ordering::SeqCst), 3);

    // Past the 30-day window nothing is served.
    tokio::time::advance(Duration::from_secs(31 * 24 * 3600)).await;
    assert_eq!(get(&c, &loads, false).await, Err(false));
}

#[tokio::test(start_paused = true)]
async fn xfetch_refreshes_hot_keys_before_expiry() {
    let c = cache(1.0, None, "a");
    let loads = Arc::new(AtomicUsize::new(0));
    let l = loads.clone();
    let clock = c.clock().clone();
    // A value whose load took 60 s (δ), fresh for 15 min.
    c.get_or_load("k", false, move |_| async move {
        l.fetch_add(1, Ordering::SeqCst);
        let mut v = value(&clock, 15 * MIN);
        v.load_ms = 60_000;
        tokio::time::sleep(Duration::from_secs(60)).await;
        v.fresh_until_ms = clock.now_ms() + 15 * MIN;
        Ok::<_, TestError>(v)
    })
    .await
    .unwrap();
    // Far from expiry: no early refresh across many reads.
    for _ in 0..200 {
        assert!(matches!(
            get(&c, &loads, true).await,
            Ok(CacheStatus::Hit(_))
        ));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // Seconds before expiry, with δ = 60 s, early refreshes become near-certain over a few reads.
    tokio::time::advance(Duration::from_secs(15 * 60 - 30)).await;
    for _ in 0..50 {
        let _ = get(&c, &loads, true).await;
    }
    settle().await;
    assert!(
        loads.load(Ordering::SeqCst) >= 2,
        "XFetch refreshed before expiry"
    );
}

fn redis_settings(r: &RedisServer) -> RedisSettings {
    RedisSettings::Standalone {
        url: RedactedUrl::new(r.url()),
    }
}

#[tokio::test]
async fn a_dead_leader_is_replaced_after_its_lease() {
    let redis = RedisServer::start();
    let handle = RedisHandle::connect(&redis_settings(&redis))
        .await
        .unwrap()
        .unwrap();
    let b = cache(0.0, Some(handle), "b");
    // A leader that crashed holding the lease (its process is gone, the key remains until it expires).
    let lease_key = flight::lease_key("k");
    redis_cmd(
        redis.port,
        &["SET", &lease_key, "dead-leader-token", "PX", "1500"],
    )
    .unwrap();

    let loads = Arc::new(AtomicUsize::new(0));
    let started = tokio::time::Instant::now();
    assert_eq!(get(&b, &loads, true).await, Ok(CacheStatus::Miss));
    let took = started.elapsed();
    assert_eq!(loads.load(Ordering::SeqCst), 1, "exactly one takeover load");
    assert!(
        took >= Duration::from_millis(900),
        "waited for the leader first: {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500 + 1000 + 1500),
        "completed within lease + wait: {took:?}"
    );
}

/// Multi-threaded, so the panic hook (which prints a backtrace under `RUST_BACKTRACE`) does not stall the
/// followers' runtime; a 10 s lease, so a takeover through the released lease (~1 s: one follower wait) and
/// one through the lease's expiry (> 11 s) are far apart and the time bound can be generous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_load_panics_releases_the_lease_and_one_follower_takes_over() {
    let redis = RedisServer::start();
    let ha = RedisHandle::connect(&redis_settings(&redis))
        .await
        .unwrap()
        .unwrap();
    let hb = RedisHandle::connect(&redis_settings(&redis))
        .await
        .unwrap()
        .unwrap();
    let lease = Duration::from_secs(10);
    let a = cache_with_lease(0.0, Some(ha), "a", lease);
    let b = cache_with_lease(0.0, Some(hb), "b", lease);
    let loads = Arc::new(AtomicUsize::new(0));

    let la = loads.clone();
    let leader = tokio::spawn(async move {
        a.get_or_load("k", false, move |_| async move {
            la.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            panic!("leader dies mid-load");
            #[allow(unreachable_code)]
            Err::<CachedValue, _>(TestError::Down)
        })
        .await
        .map(|s| s.status)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    let followers: Vec<_> = (0..20)
        .map(|_| {
            let b = b.clone();
            let loads = loads.clone();
            tokio::spawn(async move { get(&b, &loads, true).await })
        })
        .collect();
    for f in followers {
        assert!(f.await.unwrap().is_ok());
    }
    let leader_result = leader.await.unwrap();
    assert!(
        leader_result.is_err(),
        "the dead leader's own caller sees an error"
    );
    assert_eq!(
        loads.load(Ordering::SeqCst),
        2,
        "the dead leader's load plus exactly one takeover"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "taken over through the released lease, not its expiry: {:?}",
        started.elapsed()
    );
}
