//! The shared upstream rate limiter: one rate limit per API key, shared by every instance through Redis (one
//! atomic Lua script), local when Redis is not configured or not answering (each instance then takes 1/N of
//! it). Retries are bounded separately, by the retry budget (`retry_budget`).
//!
//! Contract:
//! - The limit is a *sliding log*: at most `per_second` admissions in any window of [`WINDOW`] (1 s plus a
//!   small guard), and at most `per_day` per KST day. A caller that finds the window full is given the
//!   earliest free slot *in the future* and reserves it (first come, first served across the cluster); it
//!   waits for it only if the wait is within its `max_wait`, otherwise it is refused with the wait as its
//!   `Retry-After`. Bursts up to `per_second` pass at once; no 1-second window ever holds more.
//! - [`Priority::Interactive`] calls may wait (the caller passes at most `MAPLE_RATE_WAIT_MS`);
//!   [`Priority::Background`] calls never wait and may only take a slot while the window is less than
//!   [`BACKGROUND_SHARE`] full, so refreshes can never use up what interactive requests need.
//! - [`RateLimiter::penalize`] records the upstream's own 429 `Retry-After`: no instance calls before it has
//!   passed (interactive callers within their wait excepted, who then wait it out); it is clamped to
//!   [`MAX_RETRY_AFTER`], so no upstream header can stop the cluster for longer or overflow the clock; a
//!   shared deadline found beyond that bound (set by hand, or by an older version) is cut to it on read.
//! - Shared mode: keys `maple:v1:rate:{key-id}:{log,day:YYYYMMDD,backoff}`, where the key id is a hash
//!   prefix of the API key (the key itself never reaches Redis or the logs); Redis's own clock (`TIME`) is
//!   the only clock, so instance clock skew does not matter. Each admission is one `EVALSHA`.
//! - Local mode (no Redis, or a Redis error/timeout — then Redis is not tried again for [`REDIS_RETRY`]): the
//!   same algorithm in-process with `per_second / N` and `per_day / N`. Degradation is logged and counted.
//! - Metrics: `maple_rate_limit_total{priority,result,mode}`, `maple_rate_wait_seconds`,
//!   `maple_upstream_daily_usage` (this key's count today: cluster-wide when shared) and
//!   `maple_upstream_daily_limit`.
//!
//! Why a sliding log rather than a token bucket / GCRA with burst: the upstream limits calls per second; a
//! bucket with burst B lets up to B + rate calls into one second, which is exactly what a "calls per second
//! never exceed the rate" guarantee forbids, while GCRA without burst makes an ordinary cold request (an
//! `/id` call followed by an item-equipment call) wait a full emission interval on a 5/s development key.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use fred::types::scripts::Script;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::transport::MAX_RETRY_AFTER;
use crate::ids::Priority;
use crate::redis::RedisHandle;

/// The window of the per-second limit: one second plus a guard for the jitter between admission and the
/// call's arrival upstream (the upstream counts arrivals).
pub const WINDOW: Duration = Duration::from_millis(1025);
/// Background calls may only take a slot while the window is filled below this share.
pub const BACKGROUND_SHARE: f64 = 0.5;
/// Longest time a limiter round trip to Redis may take before the local limit is used instead.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// After a Redis failure, how long the local limit is used before Redis is tried again.
pub const REDIS_RETRY: Duration = Duration::from_secs(1);

/// Counter of admissions and refusals.
pub const RATE_LIMIT_TOTAL: &str = "maple_rate_limit_total";
/// Histogram of the time admitted calls waited for their slot.
pub const RATE_WAIT_SECONDS: &str = "maple_rate_wait_seconds";
/// Gauge: upstream calls admitted today (KST) for this key.
pub const DAILY_USAGE: &str = "maple_upstream_daily_usage";
/// Gauge: the daily limit in force.
pub const DAILY_LIMIT: &str = "maple_upstream_daily_limit";

const KST_OFFSET_MS: i64 = 9 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The rate limiter's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateConfig {
    pub per_second: u64,
    /// `u64::MAX`: no daily limit.
    pub per_day: u64,
    /// The longest an interactive call waits for a slot.
    pub max_wait: Duration,
    /// N: the share each instance takes (1/N) when the limit cannot be shared.
    pub instances: u32,
}

impl RateConfig {
    /// The upstream's published limits for a key type: development keys (`test_…`) 5/s and 1,000/day,
    /// service keys 500/s and 20,000,000/day. The embedded simulator gets a generous simulated limit
    /// (10,000/s, no daily limit) so local load tests measure the gateway, not the limit.
    pub fn defaults_for(key: &str, embedded_simulator: bool) -> (u64, u64) {
        if embedded_simulator {
            (10_000, u64::MAX)
        } else if key.starts_with("test_") {
            (5, 1_000)
        } else {
            (500, 20_000_000)
        }
    }
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// The window is full beyond the caller's wait.
    Rate,
    /// The upstream asked to back off (429 `Retry-After`).
    Backoff,
    /// Today's calls are used up.
    Daily,
    /// A background call found the window at or above the background share.
    Background,
}

impl RefusalReason {
    fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Rate => "refused_rate",
            RefusalReason::Backoff => "refused_backoff",
            RefusalReason::Daily => "refused_daily",
            RefusalReason::Background => "refused_background",
        }
    }
}

/// A refused call and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub reason: RefusalReason,
    pub retry_after: Duration,
}

/// Where the rate limit is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitMode {
    Shared,
    Local,
}

impl RateLimitMode {
    fn as_str(self) -> &'static str {
        match self {
            RateLimitMode::Shared => "shared",
            RateLimitMode::Local => "local",
        }
    }
}

/// What `/health/ready` shows.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct RateStatus {
    pub mode: RateLimitMode,
    pub per_second: u64,
    /// `None`: no daily limit.
    pub per_day: Option<u64>,
    /// Instances the limit is split across in local mode.
    pub local_share_of: u32,
    pub max_wait_ms: u64,
    /// Calls admitted today (as last seen: cluster-wide when shared).
    pub used_today: u64,
}

/// One admission request, in the units both implementations use.
#[derive(Clone, Copy, Debug)]
struct Ask {
    limit: u64,
    daily_limit: u64,
    max_wait: Duration,
    background: bool,
    background_limit: u64,
}

fn background_limit(limit: u64) -> u64 {
    ((limit as f64 * BACKGROUND_SHARE).floor() as u64).max(1)
}

/// The in-process sliding log (local mode, and the model the Lua script implements).
#[derive(Debug, Default)]
struct LocalLog {
    entries: VecDeque<Instant>,
    backoff_until: Option<Instant>,
    day: i64,
    day_count: u64,
}

impl LocalLog {
    fn admit(&mut self, now: Instant, day: i64, a: &Ask) -> Result<(Duration, u64), Refused> {
        if day != self.day {
            self.day = day;
            self.day_count = 0;
        }
        if self.day_count >= a.daily_limit {
            return Err(Refused {
                reason: RefusalReason::Daily,
                retry_after: Duration::ZERO,
            });
        }
        let mut start = now;
        if let Some(b) = self.backoff_until
            && b > now
        {
            if a.background || b - now > a.max_wait {
                return Err(Refused {
                    reason: RefusalReason::Backoff,
                    retry_after: b - now,
                });
            }
            start = b;
        }
        while let Some(&front) = self.entries.front() {
            if front + WINDOW <= now {
                self.entries.pop_front();
            } else {
                break;
            }
        }
        let n = self.entries.len() as u64;
        let mut slot = start;
        if let Some(&last) = self.entries.back() {
            slot = slot.max(last);
        }
        if n >= a.limit {
            let kth = self.entries[(n - a.limit) as usize];
            slot = slot.max(kth + WINDOW);
        }
        let wait = slot - now;
        if wait > a.max_wait || (a.background && !wait.is_zero()) {
            return Err(Refused {
                reason: RefusalReason::Rate,
                retry_after: wait,
            });
        }
        if a.background && n + 1 > a.background_limit {
            let free_at = self.entries[(n + 1 - a.background_limit) as usize - 1] + WINDOW;
            return Err(Refused {
                reason: RefusalReason::Background,
                retry_after: free_at.saturating_duration_since(now),
            });
        }
        self.entries.push_back(slot);
        self.day_count += 1;
        Ok((wait, self.day_count))
    }

    fn penalize(&mut self, until: Instant) {
        if self.backoff_until.is_none_or(|b| b < until) {
            self.backoff_until = Some(until);
        }
    }
}

/// The admission script: KEYS = log, day counter, backoff; ARGV = limit, window µs, max wait µs,
/// background (0/1), background limit, daily limit, member nonce, day-key TTL s, longest back-off µs.
/// A stored back-off deadline beyond now + the longest back-off (written by hand or by an older version) is
/// rewritten to that bound, with an expiry, before it is honoured.
/// Returns `{status, µs, daily}`: status 0 admitted (µs = wait), 1 rate, 2 daily, 3 backoff, 4 background.
const ADMIT_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local background = ARGV[4] == '1'
local daily = tonumber(redis.call('GET', KEYS[2]) or '0')
if daily >= tonumber(ARGV[6]) then return {2, 0, daily} end
local start = now
local backoff = tonumber(redis.call('GET', KEYS[3]) or '0')
local longest = tonumber(ARGV[9])
if backoff > now + longest then
  backoff = now + longest
  redis.call('SET', KEYS[3], string.format('%.0f', backoff), 'PX', math.floor(longest / 1000) + 1000)
end
if backoff > now then
  if background or backoff - now > max_wait then return {3, backoff - now, daily} end
  start = backoff
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local slot = start
if n > 0 then
  local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
  if last > slot then slot = last end
  if n >= limit then
    local kth = tonumber(redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')[2]) + window
    if kth > slot then slot = kth end
  end
end
local wait = slot - now
if wait > max_wait or (background and wait > 0) then return {1, wait, daily} end
if background and n + 1 > tonumber(ARGV[5]) then
  local first = tonumber(redis.call('ZRANGE', KEYS[1], n - tonumber(ARGV[5]), n - tonumber(ARGV[5]), 'WITHSCORES')[2])
  return {4, first + window - now, daily}
end
redis.call('ZADD', KEYS[1], slot, string.format('%.0f', slot) .. ':' .. ARGV[7])
redis.call('PEXPIRE', KEYS[1], math.floor((wait + window) / 1000) + 1000)
daily = redis.call('INCR', KEYS[2])
if daily == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8])) end
return {0, wait, daily}
"#;

/// The backoff script: KEYS = backoff; ARGV = µs. Moves the backoff deadline later, never earlier.
const PENALIZE_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untilv = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilv > cur then
  redis.call('SET', KEYS[1], string.format('%.0f', untilv), 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
end
return 1
"#;

struct Shared {
    redis: RedisHandle,
    admit: Script,
    penalize: Script,
    prefix: String,
}

/// A wall clock (Unix ms) that follows tokio time after an anchor, so paused-time tests can cross midnight.
#[derive(Clone, Copy, Debug)]
struct WallClock {
    anchor_ms: i64,
    anchor: Instant,
}

impl WallClock {
    fn now_ms(&self) -> i64 {
        self.anchor_ms + self.anchor.elapsed().as_millis() as i64
    }
    /// The KST day number and the time left until the next KST midnight.
    fn kst_day(&self) -> (i64, Duration) {
        let kst = self.now_ms() + KST_OFFSET_MS;
        let day = kst.div_euclid(DAY_MS);
        let left = (day + 1) * DAY_MS - kst;
        (day, Duration::from_millis(left as u64))
    }
}

/// The limiter.
pub struct RateLimiter {
    config: RateConfig,
    shared: Option<Shared>,
    local: Mutex<LocalLog>,
    redis_down_until: Mutex<Option<Instant>>,
    clock: WallClock,
    used_today: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// A key's identity in Redis: a hash prefix, never the key.
pub fn key_id(api_key: &str) -> String {
    hex::encode(&Sha256::digest(api_key.as_bytes())[..8])
}

impl RateLimiter {
    /// `redis: None` → local mode for good.
    pub fn new(config: RateConfig, api_key: &str, redis: Option<RedisHandle>) -> Self {
        Self::with_wall_clock(
            config,
            api_key,
            redis,
            chrono::Utc::now().timestamp_millis(),
        )
    }

    /// As [`RateLimiter::new`], with the wall clock reading `wall_ms` now (tests pin the day).
    pub fn with_wall_clock(
        config: RateConfig,
        api_key: &str,
        redis: Option<RedisHandle>,
        wall_ms: i64,
    ) -> Self {
        let config = RateConfig {
            per_second: config.per_second.max(1),
            per_day: config.per_day.max(1),
            instances: config.instances.max(1),
            ..config
        };
        metrics::gauge!(DAILY_LIMIT).set(if config.per_day == u64::MAX {
            f64::INFINITY
        } else {
            config.per_day as f64
        });
        RateLimiter {
            shared: redis.map(|redis| Shared {
                redis,
                admit: Script::from_lua(ADMIT_LUA),
                penalize: Script::from_lua(PENALIZE_LUA),
                prefix: format!("maple:v1:rate:{}", key_id(api_key)),
            }),
            config,
            local: Mutex::new(LocalLog::default()),
            redis_down_until: Mutex::new(None),
            clock: WallClock {
                anchor_ms: wall_ms,
                anchor: Instant::now(),
            },
            used_today: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &RateConfig {
        &self.config
    }

    fn redis_usable(&self) -> bool {
        self.shared.is_some()
            && self
                .redis_down_until
                .lock()
                .expect("limiter lock poisoned")
                .is_none_or(|t| Instant::now() >= t)
    }

    fn mark_redis(&self, ok: bool, error: Option<&str>) {
        let mut g = self.redis_down_until.lock().expect("limiter lock poisoned");
        if ok {
            if g.take().is_some() {
                tracing::info!("shared rate budget reachable again: using Redis");
            }
        } else {
            if g.is_none() {
                tracing::warn!(
                    error = error.unwrap_or(""),
                    share_of = self.config.instances,
                    "shared rate budget unreachable: using the local 1/N budget"
                );
            }
            *g = Some(Instant::now() + REDIS_RETRY);
        }
    }

    /// The mode the next admission will use.
    pub fn mode(&self) -> RateLimitMode {
        if self.redis_usable() {
            RateLimitMode::Shared
        } else {
            RateLimitMode::Local
        }
    }

    /// Waits for a slot (at most `max_wait`; background callers never wait) or refuses.
    pub async fn acquire(&self, priority: Priority, max_wait: Duration) -> Result<(), Refused> {
        let background = priority == Priority::Background;
        let max_wait = if background { Duration::ZERO } else { max_wait };
        let (day, to_midnight) = self.clock.kst_day();
        let (result, mode) = match self.try_shared(background, max_wait, day).await {
            Some(r) => (r, RateLimitMode::Shared),
            None => (self.local(background, max_wait, day), RateLimitMode::Local),
        };
        let result = result.map_err(|mut r| {
            if r.reason == RefusalReason::Daily {
                r.retry_after = to_midnight;
            }
            r
        });
        let label = match &result {
            Ok((w, _)) if w.is_zero() => "admitted",
            Ok(_) => "waited",
            Err(r) => r.reason.as_str(),
        };
        metrics::counter!(RATE_LIMIT_TOTAL, "priority" => priority.as_str(), "result" => label, "mode" => mode.as_str())
            .increment(1);
        let (wait, used) = result?;
        self.used_today
            .store(used, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!(DAILY_USAGE).set(used as f64);
        metrics::histogram!(RATE_WAIT_SECONDS).record(wait.as_secs_f64());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    fn ask(&self, background: bool, max_wait: Duration, mode: RateLimitMode) -> Ask {
        let n = match mode {
            RateLimitMode::Shared => 1,
            RateLimitMode::Local => self.config.instances as u64,
        };
        let limit = (self.config.per_second / n).max(1);
        Ask {
            limit,
            daily_limit: if self.config.per_day == u64::MAX {
                u64::MAX
            } else {
                (self.config.per_day / n).max(1)
            },
            max_wait,
            background,
            background_limit: background_limit(limit),
        }
    }

    fn local(
        &self,
        background: bool,
        max_wait: Duration,
        day: i64,
    ) -> Result<(Duration, u64), Refused> {
        let ask = self.ask(background, max_wait, RateLimitMode::Local);
        self.local
            .lock()
            .expect("limiter lock poisoned")
            .admit(Instant::now(), day, &ask)
    }

    /// `None` when Redis is not configured or failed (the caller then uses the local limit).
    async fn try_shared(
        &self,
        background: bool,
        max_wait: Duration,
        day: i64,
    ) -> Option<Result<(Duration, u64), Refused>> {
        if !self.redis_usable() {
            return None;
        }
        let s = self.shared.as_ref()?;
        let ask = self.ask(background, max_wait, RateLimitMode::Shared);
        let date = chrono::DateTime::from_timestamp_millis(day * DAY_MS)
            .map(|d| d.format("%Y%m%d").to_string())
            .unwrap_or_default();
        let keys = vec![
            format!("{}:log", s.prefix),
            format!("{}:day:{date}", s.prefix),
            format!("{}:backoff", s.prefix),
        ];
        let args = vec![
            ask.limit.to_string(),
            WINDOW.as_micros().to_string(),
            ask.max_wait.as_micros().to_string(),
            if background { "1" } else { "0" }.to_string(),
            ask.background_limit.to_string(),
            if ask.daily_limit == u64::MAX {
                "1e300".to_string()
            } else {
                ask.daily_limit.to_string()
            },
            format!("{:016x}", rand::random::<u64>()),
            (2 * 24 * 3600).to_string(),
            MAX_RETRY_AFTER.as_micros().to_string(),
        ];
        let call = s
            .admit
            .evalsha_with_reload::<Vec<i64>, _, _>(s.redis.client(), keys, args);
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(v)) if v.len() == 3 => {
                self.mark_redis(true, None);
                let us = Duration::from_micros(v[1].max(0) as u64);
                let daily = v[2].max(0) as u64;
                Some(match v[0] {
                    0 => Ok((us, daily)),
                    status => Err(Refused {
                        reason: match status {
                            2 => RefusalReason::Daily,
                            3 => RefusalReason::Backoff,
                            4 => RefusalReason::Background,
                            _ => RefusalReason::Rate,
                        },
                        retry_after: us,
                    }),
                })
            }
            Ok(Ok(v)) => {
                self.mark_redis(false, Some(&format!("unexpected reply {v:?}")));
                None
            }
            Ok(Err(e)) => {
                self.mark_redis(false, Some(&e.to_string()));
                None
            }
            Err(_) => {
                self.mark_redis(false, Some("timed out"));
                None
            }
        }
    }

    /// The upstream answered 429: nobody calls it for `retry_after` (cluster-wide when shared; the local
    /// limit always remembers it too, in case Redis fails next).
    /// `retry_after` is clamped to [`MAX_RETRY_AFTER`] (the transport already clamps what it reads).
    pub async fn penalize(&self, retry_after: Duration) {
        let retry_after = retry_after.min(MAX_RETRY_AFTER);
        // Computed before the lock is taken; `checked_add` because `Instant` has no defined maximum.
        if let Some(until) = Instant::now().checked_add(retry_after) {
            self.local
                .lock()
                .expect("limiter lock poisoned")
                .penalize(until);
        }
        if let Some(s) = &self.shared
            && self.redis_usable()
        {
            let call = s.penalize.evalsha_with_reload::<i64, _, _>(
                s.redis.client(),
                vec![format!("{}:backoff", s.prefix)],
                vec![retry_after.as_micros().to_string()],
            );
            match tokio::time::timeout(REDIS_TIMEOUT, call).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => self.mark_redis(false, Some(&e.to_string())),
                Err(_) => self.mark_redis(false, Some("timed out")),
            }
        }
    }

    pub fn status(&self) -> RateStatus {
        RateStatus {
            mode: self.mode(),
            per_second: self.config.per_second,
            per_day: (self.config.per_day != u64::MAX).then_some(self.config.per_day),
            local_share_of: self.config.instances,
            max_wait_ms: self.config.max_wait.as_millis() as u64,
            used_today: self.used_today.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-06-01 12:00:00 UTC = 21:00 KST: three hours before the KST day changes.
    const NOON_UTC: i64 = 1_717_243_200_000;

    fn limiter(per_second: u64, per_day: u64, instances: u32) -> RateLimiter {
        RateLimiter::with_wall_clock(
            RateConfig {
                per_second,
                per_day,
                max_wait: Duration::from_millis(100),
                instances,
            },
            "test_key",
            None,
            NOON_UTC,
        )
    }

    const WAIT: Duration = Duration::from_millis(100);

    #[test]
    fn defaults_follow_the_key_type() {
        assert_eq!(RateConfig::defaults_for("test_abc", false), (5, 1_000));
        assert_eq!(
            RateConfig::defaults_for("live_abc", false),
            (500, 20_000_000)
        );
        assert_eq!(
            RateConfig::defaults_for("anything", true),
            (10_000, u64::MAX)
        );
        assert_ne!(key_id("test_abc"), key_id("test_abd"));
        assert!(!key_id("test_secret").contains("secret"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_up_to_the_rate_passes_then_callers_wait_or_are_refused() {
        let l = limiter(5, 1_000, 1);
        let t0 = Instant::now();
        for _ in 0..5 {
            l.acquire(Priority::Interactive, WAIT).await.unwrap();
        }
        assert_eq!(Instant::now(), t0, "the burst did not wait");
        let r = l.acquire(Priority::Interactive, WAIT).await.unwrap_err();
        assert_eq!(r.reason, RefusalReason::Rate);
        assert_eq!(r.retry_after, WINDOW);
        // Shortly before the first slot frees, a caller within its wait gets it.
        tokio::time::advance(WINDOW - Duration::from_millis(60)).await;
        let before = Instant::now();
        l.acquire(Priority::Interactive, WAIT).await.unwrap();
        assert_eq!(Instant::now() - before, Duration::from_millis(60));
        assert_eq!(l.status().used_today, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_ever_holds_more_than_the_rate() {
        let l = std::sync::Arc::new(limiter(5, 1_000_000, 1));
        let admitted = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            let l = l.clone();
            let admitted = admitted.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 17 % 3000)).await;
                if l.acquire(Priority::Interactive, WAIT).await.is_ok() {
                    admitted.lock().unwrap().push(Instant::now());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut at = admitted.lock().unwrap().clone();
        at.sort();
        assert!(at.len() >= 10, "{}", at.len());
        for (i, t) in at.iter().enumerate() {
            let in_window = at[i..].iter().take_while(|u| **u - *t < WINDOW).count();
            assert!(in_window <= 5, "{in_window} calls within one window");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn background_never_waits_and_leaves_half_the_window_to_interactive_calls() {
        let l = limiter(10, 1_000, 1);
        for _ in 0..5 {
            l.acquire(Priority::Background, WAIT).await.unwrap();
        }
        let r = l.acquire(Priority::Background, WAIT).await.unwrap_err();
        assert_eq!(r.reason, RefusalReason::Background);
        assert_eq!(r.retry_after, WINDOW);
        for _ in 0..5 {
            l.acquire(Priority::Interactive, WAIT).await.unwrap();
        }
        let t = Instant::now();
        let r = l.acquire(Priority::Background, WAIT).await.unwrap_err();
        assert_eq!(r.reason, RefusalReason::Rate);
        assert_eq!(Instant::now(), t, "background never waits");
    }

    #[tokio::test(start_paused = true)]
    async fn an_upstream_429_stops_every_call_until_retry_after() {
        let l = limiter(500, 20_000_000, 1);
        l.penalize(Duration::from_secs(1)).await;
        let r = l.acquire(Priority::Interactive, WAIT).await.unwrap_err();
        assert_eq!(r.reason, RefusalReason::Backoff);
        assert_eq!(r.retry_after, Duration::from_secs(1));
        tokio::time::advance(Duration::from_millis(950)).await;
        let t = Instant::now();
        l.acquire(Priority::Interactive, WAIT).await.unwrap();
        assert_eq!(
            Instant::now() - t,
            Duration::from_millis(50),
            "waited it out"
        );
        assert!(l.acquire(Priority::Background, WAIT).await.is_ok());
    }

    /// A `Retry-After` beyond what `Instant` can hold must neither panic (with the log's lock held) nor block
    /// the upstream for longer than the transport's maximum; later calls work once it has passed.
    #[tokio::test(start_paused = true)]
    async fn a_huge_retry_after_neither_panics_nor_blocks_beyond_the_maximum() {
        let max = Duration::from_secs(3600);
        let l = limiter(5, u64::MAX, 1);
        l.penalize(Duration::from_secs(u64::MAX)).await;
        l.penalize(Duration::MAX).await;
        let r = l.acquire(Priority::Interactive, WAIT).await.unwrap_err();
        assert_eq!(r.reason, RefusalReason::Backoff);
        assert!(r.retry_after <= max, "{:?}", r.retry_after);
        tokio::time::advance(max).await;
        l.acquire(Priority::Interactive, WAIT).await.unwrap();
        l.penalize(Duration::from_secs(1)).await;
        assert!(l.acquire(Priority::Interactive, WAIT).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_daily_budget_resets_at_kst_midnight() {
        let l = limiter(1_000, 3, 1);
        for _ in 0..3 {
            l.acquire(Priority::Interactive, WAIT).await.unwrap();
        }
        let r = l.acquire(Priority::Interactive, WAIT).await.unwrap_err();
        assert_eq!(r.reason, RefusalReason::Daily);
        assert_eq!(r.retry_after, Duration::from_secs(3 * 3600), "21:00 KST");
        tokio::time::advance(Duration::from_secs(3 * 3600)).await;
        l.acquire(Priority::Interactive, WAIT).await.unwrap();
        assert_eq!(l.status().used_today, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn without_redis_each_instance_takes_one_nth() {
        let l = limiter(10, 100, 4);
        assert_eq!(l.mode(), RateLimitMode::Local);
        let admitted = (0..10)
            .filter(|_| l.local(false, Duration::ZERO, 0).is_ok())
            .count();
        assert_eq!(admitted, 2, "10/s over 4 instances → 2 per window");
        let l = limiter(1_000, 100, 4);
        let admitted = (0..100)
            .filter(|_| l.local(false, Duration::ZERO, 0).is_ok())
            .count();
        assert_eq!(admitted, 25, "100/day over 4 instances → 25");
    }
}
