//! Lock tests that need no server: the in-process tier under paused tokio time (leases, watchdog,
//! expiry) and the breaker's transitions. The Redis and MySQL tiers are tested
//! against real servers in `tests/api/locks.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::*;

const LEASE: Duration = Duration::from_millis(300);

#[tokio::test(start_paused = true)]
async fn in_process_lock_excludes_and_hands_over_to_waiters() {
    let locks = LockService::in_process();
    // Two counters: the lock must make the read-sleep-write sequence atomic.
    let value = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let locks = locks.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let g = locks
                .acquire("counter", Duration::from_secs(60), LEASE)
                .await
                .unwrap();
            let v = value.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(i % 7)).await;
            value.store(v + 1, Ordering::SeqCst);
            g.release().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(value.load(Ordering::SeqCst), 40);
    assert_eq!(locks.stats().acquired(LockTier::InProcess), 40);
    assert_eq!(locks.stats().fallbacks.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_keeps_a_lease_shorter_than_the_work() {
    let locks = LockService::in_process();
    let g = locks.acquire("job", Duration::ZERO, LEASE).await.unwrap();
    // Work for ten leases; a contender waiting that long never gets in.
    let contender = locks.clone();
    let waiting = tokio::spawn(async move {
        contender
            .acquire("job", Duration::from_secs(2), LEASE)
            .await
            .map(|_| ())
    });
    tokio::time::sleep(LEASE * 10).await;
    assert!(g.is_held());
    let e = waiting.await.unwrap().unwrap_err();
    assert!(matches!(e, LockError::Timeout { .. }), "{e}");
    assert_eq!(e.code(), "LOCK_TIMEOUT");
    g.release().await.unwrap();
    locks.acquire("job", Duration::ZERO, LEASE).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stalled_holder_loses_the_lock_after_its_lease_and_cannot_release_the_next_one() {
    let locks = LockService::in_process();
    let stalled = locks.acquire("job", Duration::ZERO, LEASE).await.unwrap();
    stalled.stop_watchdog();
    let t0 = Instant::now();
    let next = locks
        .acquire("job", Duration::from_secs(5), LEASE)
        .await
        .unwrap();
    let waited = t0.elapsed();
    assert!(
        waited >= LEASE - Duration::from_millis(1) && waited <= LEASE + Duration::from_millis(50),
        "{waited:?}"
    );
    assert!(next.token() > stalled.token(), "tokens are monotonic");
    tokio::time::timeout(Duration::from_secs(1), stalled.lost())
        .await
        .expect("the stalled guard learns it lost the lock");
    assert!(!stalled.is_held());
    // Owner-checked: the stale guard's release must not free the new holder's lock.
    assert!(matches!(stalled.release().await, Err(LockError::Lost(_))));
    let e = locks
        .acquire("job", Duration::from_millis(100), LEASE)
        .await
        .unwrap_err();
    assert!(matches!(e, LockError::Timeout { .. }));
    assert!(next.is_held());
    drop(next);
    // The drop releases from the keeper task.
    locks
        .acquire("job", Duration::from_millis(100), LEASE)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn different_names_do_not_contend_and_names_are_validated() {
    let locks = LockService::in_process();
    let _a = locks.acquire("a", Duration::ZERO, LEASE).await.unwrap();
    let _b = locks.acquire("b", Duration::ZERO, LEASE).await.unwrap();
    for bad in ["", "has space", "tab\t", &"x".repeat(MAX_NAME_LEN + 1)] {
        assert!(matches!(
            locks.acquire(bad, Duration::ZERO, LEASE).await,
            Err(LockError::InvalidName(_))
        ));
    }
    locks
        .acquire("캐릭터:하나", Duration::ZERO, LEASE)
        .await
        .unwrap();
}

#[test]
fn tokens_from_the_clock_are_strictly_increasing() {
    let last = AtomicU64::new(u64::MAX / 2);
    let a = next_clock_token(&last);
    let b = next_clock_token(&last);
    assert_eq!(
        a,
        u64::MAX / 2 + 1,
        "a clock behind the last token is overtaken"
    );
    assert_eq!(b, a + 1);
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_on_failure_probes_once_and_closes_on_success() {
    let cooldown = Duration::from_secs(1);
    let mut b = Breaker::new(cooldown);
    let t = Instant::now();
    assert!(b.allow(t));
    b.on_failure(t);
    assert!(matches!(b.state(), BreakerState::Open { .. }));
    assert!(!b.allow(t + cooldown / 2));
    assert!(!b.would_allow(t + cooldown / 2));
    assert!(b.would_allow(t + cooldown));
    assert!(
        b.allow(t + cooldown),
        "the first caller after the cooldown probes"
    );
    assert!(!b.allow(t + cooldown), "one probe at a time");
    assert!(
        b.allow(t + cooldown * 2),
        "a probe that never reported is replaced"
    );
    b.on_failure(t + cooldown * 2);
    assert!(!b.allow(t + cooldown * 2));
    assert!(b.allow(t + cooldown * 3));
    b.on_success();
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(b.allow(t + cooldown * 3));
}
