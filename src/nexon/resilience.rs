//! The policy around every logical upstream call: hold → breaker → rate budget → attempt with timeout →
//! record → maybe retry, all inside one overall deadline.
//!
//! Contract of [`Resilience::call`]:
//! - **Deadline.** A logical call never takes longer than `deadline` (plus scheduling noise): each attempt's
//!   timeout is `min(attempt_timeout, time left)`, a retry is only started if its backoff ends before the
//!   deadline, and rate waits are capped by the time left.
//! - **Holds.** During a maintenance or refused-key hold no call is made ([`NexonError::Held`]); after it one
//!   call checks. Maintenance (00010/00011) enters a `maintenance_hold`, a refused key (00002/00005) an
//!   `auth_hold` and an alert.
//! - **Breaker.** Every attempt needs a breaker ticket ([`NexonError::CircuitOpen`] otherwise); the attempt's
//!   timeout runs inside the ticket, so timeouts count. Upstream faults are failures, answers are successes,
//!   429 and refused keys are neutral. A cancelled half-open probe counts as a failure (the ticket's drop).
//! - **Rate budget.** Every attempt (retries too) takes a slot of the shared budget; interactive calls wait at
//!   most `min(MAPLE_RATE_WAIT_MS, time left)`, background calls never wait. No slot →
//!   [`NexonError::RateLimited`] with the budget's `Retry-After`. An upstream 429 pushes the whole cluster's
//!   budget back by its `Retry-After`.
//! - **Retries.** Only for connect errors, timeouts, 5xx and 429; at most `max_retries`; full-jitter
//!   exponential backoff ([`super::retry_budget::full_jitter`]), at least the upstream's `Retry-After` after a 429
//!   (and only if that fits the caller's rate wait); only within the retry budget (retries ≤ ratio × calls
//!   over a sliding window); never for background calls (a refresh that fails leaves the cached value in
//!   place). When a retry is refused by a hold, the breaker or the budget, the previous attempt's error is
//!   returned.
//! - Logical calls are counted in `maple_upstream_requests_total{endpoint,priority,outcome}` (real attempts
//!   in `maple_upstream_calls_total`), retries in `maple_upstream_retries_total{result}`.
//!
//! Why in this order: holds and the breaker are local, cheap and make no call, so they come before the rate
//! budget (which may cost a Redis round trip and a slot); the timeout sits inside the breaker so a hung
//! upstream trips it; retries wrap all of it so every real call is budgeted, rate-limited and seen by the
//! breaker.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::alert::{AlertKind, Alerter};
use super::breaker::{Breaker, BreakerConfig, BreakerStatus, CallOutcome, Ticket};
use super::error::{HoldReason, NexonError};
use super::hold::{HoldStatus, Holds};
use super::rate_limit::{RateLimiter, RateStatus, RefusalReason};
use super::retry_budget::{RetryBudget, RetryBudgetStatus, full_jitter};
use super::transport::Endpoint;
use crate::ids::Priority;

/// Counter of logical calls by endpoint, priority and outcome.
pub const UPSTREAM_REQUESTS_TOTAL: &str = "maple_upstream_requests_total";
/// Counter of retry decisions (`attempted`, `budget_exhausted`, `deadline`, `max_reached`).
pub const UPSTREAM_RETRIES_TOTAL: &str = "maple_upstream_retries_total";

/// The policy's tunables (the rate budget's are in [`super::rate_limit::RateConfig`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ResilienceConfig {
    pub attempt_timeout: Duration,
    pub deadline: Duration,
    pub max_retries: u32,
    pub retry_budget_ratio: f64,
    pub breaker: BreakerConfig,
    pub maintenance_hold: Duration,
    pub auth_hold: Duration,
}

impl ResilienceConfig {
    /// The policy's part of the upstream settings group.
    pub fn from_settings(s: &crate::config::UpstreamSettings) -> ResilienceConfig {
        ResilienceConfig {
            attempt_timeout: s.timeout,
            deadline: s.deadline,
            max_retries: s.retry_max,
            retry_budget_ratio: s.retry_budget_ratio,
            breaker: BreakerConfig::from_settings(s),
            maintenance_hold: s.maintenance_hold,
            auth_hold: s.auth_hold,
        }
    }
}

impl Default for ResilienceConfig {
    /// The declared defaults.
    fn default() -> Self {
        ResilienceConfig::from_settings(&crate::config::UpstreamSettings::default())
    }
}

/// Everything `/health/ready` (and later the admin API) shows about the upstream.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UpstreamStatus {
    /// `up`, `degraded` (half-open), `down` (open), `maintenance`, `key_refused`.
    pub health: &'static str,
    pub breaker: BreakerStatus,
    pub hold: Option<HoldStatus>,
    pub rate: RateStatus,
    pub retry_budget: RetryBudgetStatus,
}

/// The policy stack (shared by clones of the client).
#[derive(Debug)]
pub struct Resilience {
    config: ResilienceConfig,
    breaker: Breaker,
    limiter: RateLimiter,
    budget: RetryBudget,
    holds: Holds,
    alerts: Alerter,
}

/// What an outcome means for the breaker.
fn breaker_outcome(r: &Result<(), &NexonError>) -> CallOutcome {
    match r {
        Ok(()) => CallOutcome::Success,
        Err(e) if e.is_upstream_fault() => CallOutcome::Failure,
        Err(NexonError::RateLimited { .. } | NexonError::Auth(_)) => CallOutcome::Neutral,
        // The upstream answered (not found, bad input, data being prepared, a malformed body).
        Err(_) => CallOutcome::Success,
    }
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

impl Resilience {
    pub fn new(config: ResilienceConfig, limiter: RateLimiter, alerts: Alerter) -> Self {
        let a = alerts.clone();
        let breaker = Breaker::with_listener(config.breaker.clone(), move |t| {
            if t.to == super::breaker::BreakerState::Open {
                a.alert(
                    AlertKind::BreakerOpen,
                    "upstream circuit breaker opened: serving stale copies only",
                    serde_json::to_value(t).unwrap_or_default(),
                );
            }
        });
        Resilience {
            budget: RetryBudget::new(config.retry_budget_ratio),
            breaker,
            limiter,
            holds: Holds::new(),
            alerts,
            config,
        }
    }

    pub fn config(&self) -> &ResilienceConfig {
        &self.config
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    pub fn status(&self) -> UpstreamStatus {
        let breaker = self.breaker.status();
        let hold = self.holds.status();
        let health = match (&hold, breaker.state) {
            (Some(h), _) if h.reason == HoldReason::Maintenance => "maintenance",
            (Some(_), _) => "key_refused",
            (None, super::breaker::BreakerState::Open) => "down",
            (None, super::breaker::BreakerState::HalfOpen) => "degraded",
            (None, super::breaker::BreakerState::Closed) => "up",
        };
        UpstreamStatus {
            health,
            breaker,
            hold,
            rate: self.limiter.status(),
            retry_budget: self.budget.status(),
        }
    }

    /// The error a call would fail with right now without reaching the upstream (open breaker, hold), if any.
    /// The read path uses it to skip work for background refreshes that cannot succeed.
    pub fn refusal(&self) -> Option<NexonError> {
        if self.holds.is_holding() {
            return self.holds.check().err();
        }
        if self.breaker.is_rejecting() {
            let retry_after = self
                .breaker
                .status()
                .retry_in_ms
                .map(|ms| secs_ceil(Duration::from_millis(ms)))
                .unwrap_or(1);
            return Some(NexonError::CircuitOpen { retry_after });
        }
        None
    }

    /// One logical call: `attempt(timeout)` makes one real call bounded by `timeout`.
    pub async fn call<T, F, Fut>(
        &self,
        ep: Endpoint,
        priority: Priority,
        mut attempt: F,
    ) -> Result<T, NexonError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, NexonError>>,
    {
        let deadline = Instant::now() + self.config.deadline;
        self.budget.record_call();
        let mut last: Option<NexonError> = None;
        let mut retries = 0u32;
        let result = loop {
            let e = match self
                .attempt_once(ep, priority, deadline, &mut attempt)
                .await
            {
                Ok(v) => break Ok(v),
                // A retry refused before reaching the upstream reports what the upstream last said.
                Err(Failed { called: false, .. }) if last.is_some() => {
                    break Err(last.take().expect("checked"));
                }
                Err(Failed { error, .. }) => error,
            };
            match self.retry_delay(&e, priority, retries, deadline) {
                Some(delay) => {
                    metrics::counter!(UPSTREAM_RETRIES_TOTAL, "result" => "attempted").increment(1);
                    tracing::debug!(endpoint = ep.as_str(), error = %e, retry = retries + 1, delay_ms = delay.as_millis() as u64, "retrying upstream call");
                    tokio::time::sleep(delay).await;
                    retries += 1;
                    last = Some(e);
                }
                None => break Err(e),
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.label(),
        };
        metrics::counter!(UPSTREAM_REQUESTS_TOTAL, "endpoint" => ep.as_str(), "priority" => priority.as_str(), "outcome" => outcome)
            .increment(1);
        result
    }

    /// Whether and after how long to retry after `e`; takes the retry from the budget when it says yes.
    fn retry_delay(
        &self,
        e: &NexonError,
        priority: Priority,
        retries: u32,
        deadline: Instant,
    ) -> Option<Duration> {
        if !e.is_retryable_attempt() || priority == Priority::Background {
            return None;
        }
        if retries >= self.config.max_retries {
            metrics::counter!(UPSTREAM_RETRIES_TOTAL, "result" => "max_reached").increment(1);
            return None;
        }
        let mut delay = full_jitter(retries, rand::random::<f64>());
        if let NexonError::RateLimited { retry_after } = e {
            let wait = Duration::from_secs(retry_after.unwrap_or(1));
            if wait > self.limiter.config().max_wait {
                return None;
            }
            delay = delay.max(wait);
        }
        if Instant::now() + delay >= deadline {
            metrics::counter!(UPSTREAM_RETRIES_TOTAL, "result" => "deadline").increment(1);
            return None;
        }
        if !self.budget.try_retry() {
            metrics::counter!(UPSTREAM_RETRIES_TOTAL, "result" => "budget_exhausted").increment(1);
            return None;
        }
        Some(delay)
    }

    async fn attempt_once<T, F, Fut>(
        &self,
        ep: Endpoint,
        priority: Priority,
        deadline: Instant,
        attempt: &mut F,
    ) -> Result<T, Failed>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, NexonError>>,
    {
        let hold_probe = self.holds.check().map_err(Failed::refused)?;
        let ticket: Ticket = self.breaker.try_acquire().map_err(|r| {
            Failed::refused(NexonError::CircuitOpen {
                retry_after: secs_ceil(r.retry_in),
            })
        })?;
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(refused) = self
            .limiter
            .acquire(priority, self.limiter.config().max_wait.min(left))
            .await
        {
            ticket.record(CallOutcome::Neutral);
            if refused.reason == RefusalReason::Daily {
                tracing::warn!(
                    endpoint = ep.as_str(),
                    "daily upstream budget used up: serving stale copies until KST midnight"
                );
            }
            return Err(Failed::refused(NexonError::RateLimited {
                retry_after: Some(secs_ceil(refused.retry_after)),
            }));
        }
        let timeout = self
            .config
            .attempt_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            ticket.record(CallOutcome::Neutral);
            return Err(Failed::refused(NexonError::Timeout));
        }
        let r = match tokio::time::timeout(timeout, attempt(timeout)).await {
            Ok(r) => r,
            Err(_) => Err(NexonError::Timeout),
        };
        ticket.record(breaker_outcome(&r.as_ref().map(|_| ())));
        self.after_attempt(&r, hold_probe).await;
        r.map_err(|error| Failed {
            error,
            called: true,
        })
    }

    /// Holds, alerts and rate backoff implied by an attempt's outcome.
    async fn after_attempt<T>(
        &self,
        r: &Result<T, NexonError>,
        hold_probe: Option<super::hold::HoldProbe>,
    ) {
        match r {
            Err(NexonError::Maintenance(code)) => {
                let first = !self.holds.is_holding() && hold_probe.is_none();
                self.holds
                    .enter(HoldReason::Maintenance, code, self.config.maintenance_hold);
                if let Some(p) = hold_probe {
                    p.still_held();
                }
                if first {
                    self.alerts.alert(
                        AlertKind::Maintenance,
                        "upstream under maintenance: serving stale copies only",
                        serde_json::json!({"code": code, "hold_s": self.config.maintenance_hold.as_secs()}),
                    );
                }
            }
            Err(NexonError::Auth(code)) => {
                self.holds
                    .enter(HoldReason::Auth, code, self.config.auth_hold);
                if let Some(p) = hold_probe {
                    p.still_held();
                }
                self.alerts.alert(
                    AlertKind::KeyRefused,
                    "upstream refused the API key: check NEXON_API_KEY",
                    serde_json::json!({"code": code, "hold_s": self.config.auth_hold.as_secs()}),
                );
            }
            Err(NexonError::RateLimited { retry_after }) => {
                self.limiter
                    .penalize(Duration::from_secs(retry_after.unwrap_or(1).max(1)))
                    .await;
                // A 429 says nothing about maintenance or the key: a hold check stays unresolved.
            }
            Err(e) if e.is_local_refusal() => {}
            _ => {
                if let Some(p) = hold_probe {
                    p.clear();
                }
            }
        }
    }
}

/// An attempt's failure, and whether the upstream was called at all.
struct Failed {
    error: NexonError,
    called: bool,
}

impl Failed {
    fn refused(error: NexonError) -> Self {
        Failed {
            error,
            called: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexon::rate_limit::RateConfig;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn resilience(cfg: ResilienceConfig) -> Resilience {
        let limiter = RateLimiter::new(
            RateConfig {
                per_second: 1_000,
                per_day: u64::MAX,
                max_wait: Duration::from_millis(100),
                instances: 1,
            },
            "k",
            None,
        );
        Resilience::new(cfg, limiter, Alerter::new(None, "t".into()))
    }

    fn cfg() -> ResilienceConfig {
        ResilienceConfig {
            attempt_timeout: Duration::from_millis(200),
            deadline: Duration::from_secs(2),
            max_retries: 2,
            retry_budget_ratio: 0.2,
            breaker: BreakerConfig {
                failures: 5,
                open: Duration::from_secs(1),
                open_max: Duration::from_secs(8),
                probes: 1,
            },
            maintenance_hold: Duration::from_secs(300),
            auth_hold: Duration::from_secs(60),
        }
    }

    /// Fills the retry budget's window with successful calls.
    async fn prime(r: &Resilience, n: usize) {
        for _ in 0..n {
            r.call(Endpoint::Basic, Priority::Interactive, |_| async {
                Ok::<_, NexonError>(())
            })
            .await
            .unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_upstream_answers_within_timeout_times_attempts_plus_backoff() {
        let r = resilience(cfg());
        prime(&r, 20).await;
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let t = Instant::now();
        let e = r
            .call(Endpoint::Basic, Priority::Interactive, move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok::<(), _>(())
                }
            })
            .await
            .unwrap_err();
        assert!(matches!(e, NexonError::Timeout), "{e:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "1 attempt + 2 retries");
        let bound = Duration::from_millis(3 * 200 + 100 + 200);
        assert!(t.elapsed() <= bound, "{:?} > {bound:?}", t.elapsed());
        assert!(t.elapsed() >= Duration::from_millis(600));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_caps_the_whole_call() {
        let r = resilience(ResilienceConfig {
            attempt_timeout: Duration::from_secs(3),
            deadline: Duration::from_millis(4500),
            ..cfg()
        });
        prime(&r, 50).await;
        let t = Instant::now();
        let e = r
            .call(Endpoint::Basic, Priority::Interactive, |_| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<(), _>(())
            })
            .await
            .unwrap_err();
        assert!(matches!(e, NexonError::Timeout));
        assert!(
            t.elapsed() <= Duration::from_millis(4500),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_may_help_and_only_within_the_budget() {
        let r = resilience(ResilienceConfig {
            breaker: BreakerConfig {
                failures: 1_000,
                ..cfg().breaker
            },
            ..cfg()
        });
        let calls = Arc::new(AtomicU32::new(0));
        let failing = |e: NexonError| {
            let c = calls.clone();
            move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                let e = e.clone();
                async move { Err::<(), _>(e) }
            }
        };
        // A fresh budget has nothing in its window: a lone failing call is not retried.
        r.call(
            Endpoint::Basic,
            Priority::Interactive,
            failing(NexonError::Server(500)),
        )
        .await
        .unwrap_err();
        assert_eq!(calls.swap(0, Ordering::SeqCst), 1);
        prime(&r, 30).await;
        for e in [
            NexonError::NotFound,
            NexonError::Bug("OPENAPI00006"),
            NexonError::DataPreparing,
            NexonError::BadResponse("x".into()),
        ] {
            r.call(Endpoint::Basic, Priority::Interactive, failing(e))
                .await
                .unwrap_err();
            assert_eq!(calls.swap(0, Ordering::SeqCst), 1, "never retried");
        }
        r.call(
            Endpoint::Basic,
            Priority::Interactive,
            failing(NexonError::Server(503)),
        )
        .await
        .unwrap_err();
        assert_eq!(calls.swap(0, Ordering::SeqCst), 3, "5xx: two retries");
        r.call(
            Endpoint::Basic,
            Priority::Background,
            failing(NexonError::Server(503)),
        )
        .await
        .unwrap_err();
        assert_eq!(calls.swap(0, Ordering::SeqCst), 1, "background: no retries");
        // 37 calls and 2 retries so far; ten more failing calls make 47: at most 9 retries in all.
        let mut total = 0;
        for _ in 0..10 {
            r.call(
                Endpoint::Basic,
                Priority::Interactive,
                failing(NexonError::Timeout),
            )
            .await
            .unwrap_err();
            total += calls.swap(0, Ordering::SeqCst);
        }
        assert!(total > 10, "some timeouts were retried");
        assert!(total - 10 <= 7, "{} retries exceed the budget", total - 10);
        let s = r.status().retry_budget;
        assert!(s.retries as f64 <= 0.2 * s.calls as f64, "{s:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_stops_calls_and_one_probe_closes_it() {
        let r = resilience(ResilienceConfig {
            max_retries: 0,
            ..cfg()
        });
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let down = move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(NexonError::Connect("refused".into())) }
        };
        for _ in 0..5 {
            r.call(Endpoint::Id, Priority::Interactive, down.clone())
                .await
                .unwrap_err();
        }
        assert_eq!(r.status().health, "down");
        for _ in 0..20 {
            let e = r
                .call(Endpoint::Id, Priority::Interactive, down.clone())
                .await
                .unwrap_err();
            assert!(
                matches!(e, NexonError::CircuitOpen { retry_after: 1 }),
                "{e:?}"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 5, "no call while open");
        assert!(r.refusal().is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(r.refusal().is_none(), "due for a probe");
        r.call(Endpoint::Id, Priority::Interactive, |_| async {
            Ok::<_, NexonError>(())
        })
        .await
        .unwrap();
        assert_eq!(r.status().health, "up");
    }

    #[tokio::test(start_paused = true)]
    async fn maintenance_holds_calls_off_then_one_call_checks() {
        let r = resilience(cfg());
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let maint = move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(NexonError::Maintenance("OPENAPI00011")) }
        };
        r.call(Endpoint::Basic, Priority::Interactive, maint.clone())
            .await
            .unwrap_err();
        let s = r.status();
        assert_eq!(s.health, "maintenance");
        assert_eq!(s.hold.as_ref().unwrap().code, "OPENAPI00011");
        for _ in 0..10 {
            let e = r
                .call(Endpoint::Basic, Priority::Interactive, maint.clone())
                .await
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    NexonError::Held {
                        reason: HoldReason::Maintenance,
                        retry_after: 300,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(300)).await;
        r.call(Endpoint::Basic, Priority::Interactive, maint.clone())
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one check after the hold");
        assert_eq!(r.status().health, "maintenance", "still under maintenance");
        tokio::time::advance(Duration::from_secs(300)).await;
        r.call(Endpoint::Basic, Priority::Interactive, |_| async {
            Ok::<_, NexonError>(())
        })
        .await
        .unwrap();
        assert_eq!(r.status().health, "up");
        assert!(r.status().hold.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_key_is_not_hammered() {
        let r = resilience(cfg());
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let refused = move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(NexonError::Auth("OPENAPI00005")) }
        };
        prime(&r, 50).await;
        for _ in 0..20 {
            r.call(Endpoint::Basic, Priority::Interactive, refused.clone())
                .await
                .unwrap_err();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(r.status().health, "key_refused");
        assert_eq!(
            r.breaker().state(),
            super::super::breaker::BreakerState::Closed,
            "a refused key is not an upstream fault"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_upstream_429_backs_everyone_off_for_its_retry_after() {
        let r = resilience(cfg());
        prime(&r, 50).await;
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let limited = move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<(), _>(NexonError::RateLimited {
                    retry_after: Some(2),
                })
            }
        };
        let e = r
            .call(Endpoint::Basic, Priority::Interactive, limited.clone())
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            NexonError::RateLimited {
                retry_after: Some(2)
            }
        ));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "Retry-After 2 s exceeds the rate wait: no retry"
        );
        let e = r
            .call(Endpoint::Basic, Priority::Interactive, limited.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                NexonError::RateLimited {
                    retry_after: Some(2)
                }
            ),
            "{e:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "backed off: no call");
        tokio::time::advance(Duration::from_secs(2)).await;
        r.call(Endpoint::Basic, Priority::Interactive, |_| async {
            Ok::<_, NexonError>(())
        })
        .await
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_reopens_the_breaker() {
        let r = Arc::new(resilience(ResilienceConfig {
            max_retries: 0,
            breaker: BreakerConfig {
                failures: 1,
                ..cfg().breaker
            },
            ..cfg()
        }));
        r.call(Endpoint::Id, Priority::Interactive, |_| async {
            Err::<(), _>(NexonError::Server(500))
        })
        .await
        .unwrap_err();
        tokio::time::advance(Duration::from_secs(1)).await;
        let rr = r.clone();
        let probe = tokio::spawn(async move {
            rr.call(Endpoint::Id, Priority::Interactive, |_| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, NexonError>(())
            })
            .await
        });
        tokio::task::yield_now().await;
        assert_eq!(r.breaker().status().probes_in_flight, 1);
        let other = r
            .call(Endpoint::Id, Priority::Interactive, |_| async {
                Ok::<_, NexonError>(())
            })
            .await;
        assert!(
            matches!(other, Err(NexonError::CircuitOpen { .. })),
            "one probe at a time"
        );
        probe.abort();
        let _ = probe.await;
        assert_eq!(r.status().health, "down");
        assert_eq!(r.breaker().status().open_for_ms, Some(2000));
    }
}
