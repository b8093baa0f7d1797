//! The circuit breaker: an explicit state machine (closed / open / half-open) around failsafe's failure
//! accrual policy, with bounded half-open probes and cancellation counted as failure.
//!
//! Contract:
//! - [`Breaker::try_acquire`] either admits a call with a [`Ticket`] or rejects it with the time until the
//!   next probe. The caller runs the call (with its timeout *inside*, so a timeout is a recorded failure) and
//!   records the outcome on the ticket: [`CallOutcome::Failure`] for upstream faults only (timeouts, connect
//!   errors, 5xx, maintenance), [`CallOutcome::Success`] when the upstream answered (not-found and bad input are
//!   answers), [`CallOutcome::Neutral`] for what says nothing about the upstream's health (429, refused key).
//! - Half-open admits at most `probes` concurrent trial calls; the rest are rejected without a call.
//!   A probe ticket dropped without an outcome (the caller was cancelled) counts as a failure, so a
//!   cancelled probe re-opens the breaker instead of leaking its slot.
//! - Outcomes of tickets issued before the latest transition are ignored (a slow call admitted while closed
//!   cannot close a breaker that has since opened).
//! - Time is tokio's ([`tokio::time::Instant`]), so tests drive open periods with paused time.
//! - Every transition is logged, counted (`maple_breaker_transitions_total{to}`), reflected in the
//!   `maple_breaker_state{breaker="nexon",state}` gauge (1 for the current state, 0 for the others) and passed to the transition listener (the
//!   alerter); rejections are counted in `maple_breaker_rejections_total`. [`Breaker::status`] is the
//!   snapshot `/health/ready` shows (and the admin API can).
//!
//! Why not failsafe's own `StateMachine`: its half-open state admits every call (20 of 20 concurrent in a
//! test), a cancelled call records nothing, it has no "read current state" API, and it reads
//! `std::time::Instant`, which tokio's paused time cannot drive. Its failure *policy*
//! ([`failsafe::failure_policy::consecutive_failures`]: when is the upstream dead, for how long) is used as
//! is, fed by a millisecond-resolution doubling backoff ([`OpenBackoff`]) — failsafe's own backoffs count
//! whole seconds, too coarse for tests and for short open periods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use failsafe::FailurePolicy;
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use serde::Serialize;
use tokio::time::Instant;

/// Gauge, one series per state: `maple_breaker_state{breaker="nexon",state="open"} 1`, the other states 0.
pub const BREAKER_STATE: &str = "maple_breaker_state";
/// The `breaker` label of this breaker's series.
pub const BREAKER_NAME: &str = "nexon";
/// Counter of transitions, by target state.
pub const BREAKER_TRANSITIONS_TOTAL: &str = "maple_breaker_transitions_total";
/// Counter of calls rejected without an upstream call, by state.
pub const BREAKER_REJECTIONS_TOTAL: &str = "maple_breaker_rejections_total";
/// Counter of half-open probes whose caller went away (counted as failures).
pub const BREAKER_PROBES_CANCELLED_TOTAL: &str = "maple_breaker_probes_cancelled_total";

/// Breaker tunables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive upstream faults that open the breaker.
    pub failures: u32,
    /// First open period.
    pub open: Duration,
    /// Longest open period (each failed probe doubles the previous one up to this).
    pub open_max: Duration,
    /// Concurrent trial calls admitted while half-open.
    pub probes: u32,
}

impl BreakerConfig {
    /// The breaker's part of the upstream settings group.
    pub fn from_settings(s: &crate::config::UpstreamSettings) -> BreakerConfig {
        BreakerConfig {
            failures: s.breaker_failures,
            open: s.breaker_open,
            open_max: s.breaker_open_max,
            probes: s.breaker_probes,
        }
    }
}

impl Default for BreakerConfig {
    /// The declared defaults.
    fn default() -> Self {
        BreakerConfig::from_settings(&crate::config::UpstreamSettings::default())
    }
}

/// Open periods: `open`, then doubling after each failed probe, capped at `max`.
#[derive(Clone, Debug)]
pub struct OpenBackoff {
    next: Duration,
    max: Duration,
}

impl OpenBackoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        OpenBackoff {
            next: first,
            max: max.max(first),
        }
    }
}

impl Iterator for OpenBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        Some(d)
    }
}

/// The three states, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
    const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ];

    /// Sets the state gauge: 1 for `self`'s series, 0 for the others.
    fn export(self) {
        for s in Self::ALL {
            metrics::gauge!(BREAKER_STATE, "breaker" => BREAKER_NAME, "state" => s.as_str())
                .set(if s == self { 1.0 } else { 0.0 });
        }
    }
}

/// What a call's outcome says about the upstream's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The upstream answered (including not-found, bad input, data being prepared).
    Success,
    /// An upstream fault: timeout, connect error, 5xx, maintenance.
    Failure,
    /// Says nothing about health (429, refused key, the rate budget refused the call before it was made).
    Neutral,
}

/// A rejected call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub state: BreakerState,
    /// When a probe may be admitted again (zero: as soon as a probe slot frees).
    pub retry_in: Duration,
}

/// An operator's command (admin API, outage drills). It bypasses the failure count: `Open(d)` rejects every
/// call for `d` (then the usual half-open probing follows); `Close` and `Reset` close at once and forget all
/// failure state (the consecutive-failure count, the failure policy's own count and the open-period backoff),
/// so the breaker behaves as a new one (the lifetime totals `opened_total` / `rejected_total` remain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Force {
    Open(Duration),
    Close,
    Reset,
}

/// The state with its data. Each variant's rule lives in the function of the same name below.
#[derive(Clone, Copy, Debug)]
enum State {
    Closed,
    Open { until: Instant, delay: Duration },
    HalfOpen { in_flight: u32, delay: Duration },
}

impl State {
    fn public(&self) -> BreakerState {
        match self {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// An input of the machine.
#[derive(Clone, Copy, Debug)]
enum Event {
    Acquire,
    /// An outcome of a ticket of the current epoch; `probe` tells a trial call from a closed-state call.
    Outcome {
        outcome: CallOutcome,
        probe: bool,
    },
}

/// The machine's answer to an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Admit { probe: bool },
    Reject(Rejected),
    Recorded,
}

struct Machine {
    state: State,
    policy: ConsecutiveFailures<OpenBackoff>,
    /// Bumped on every transition; outcomes of older tickets are ignored.
    epoch: u64,
    since: Instant,
    consecutive_failures: u32,
    opened_total: u64,
    rejected_total: u64,
}

/// A transition, as the listener sees it.
#[derive(Clone, Debug, Serialize)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    /// The open period starting now (transitions to open only).
    pub open_for_ms: Option<u64>,
    pub consecutive_failures: u32,
}

type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

struct Inner {
    config: BreakerConfig,
    machine: Mutex<Machine>,
    /// Whether `machine.state` is `Closed`: written under the mutex at every change of state, read without
    /// it by [`Breaker::is_rejecting`] (asked on every cached answer), so a closed breaker costs request
    /// threads one atomic load instead of a shared lock.
    closed: AtomicBool,
    listener: Option<Listener>,
}

impl Inner {
    /// The one way `machine.state` changes (`m` is the locked machine): keeps `closed` in step with it.
    fn set_state(&self, m: &mut Machine, next: State) {
        m.state = next;
        self.closed
            .store(matches!(next, State::Closed), Ordering::Release);
    }
}

/// The breaker (cheap to clone; clones share state).
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// What `/health/ready` and the admin API show.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BreakerStatus {
    pub state: BreakerState,
    /// Milliseconds since the last transition.
    pub in_state_ms: u64,
    pub consecutive_failures: u32,
    /// Open: time until a probe is admitted.
    pub retry_in_ms: Option<u64>,
    /// Open / half-open: the current open period.
    pub open_for_ms: Option<u64>,
    pub probes_in_flight: u32,
    pub probes_max: u32,
    pub failures_to_open: u32,
    pub opened_total: u64,
    pub rejected_total: u64,
}

/// Permission for one call; record its outcome (a dropped probe counts as a failure).
pub struct Ticket {
    breaker: Breaker,
    epoch: u64,
    probe: bool,
    done: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("epoch", &self.epoch)
            .field("probe", &self.probe)
            .finish()
    }
}

impl Ticket {
    /// True for a half-open trial call.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn record(mut self, outcome: CallOutcome) {
        self.done = true;
        self.breaker.finish(self.epoch, self.probe, outcome);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.probe {
            // The trial call was cancelled: it proved nothing, and the breaker must not wait for it forever.
            metrics::counter!(BREAKER_PROBES_CANCELLED_TOTAL).increment(1);
            self.breaker.finish(self.epoch, true, CallOutcome::Failure);
        }
        // A cancelled closed-state call records nothing: its outcome is unknown.
    }
}

// ---- the states: one function each, the transition rule next to it ------------------------------------

/// **Closed** — every call is admitted. A failure goes to the failure policy (failsafe's consecutive
/// failures); when the policy declares the upstream dead → **Open** for the period it returns. A success
/// resets the count. Neutral outcomes change nothing.
fn closed(m: &mut Machine, ev: Event, now: Instant) -> (Option<State>, Answer) {
    match ev {
        Event::Acquire => (None, Answer::Admit { probe: false }),
        Event::Outcome {
            outcome: CallOutcome::Success,
            ..
        } => {
            m.policy.record_success();
            m.consecutive_failures = 0;
            (None, Answer::Recorded)
        }
        Event::Outcome {
            outcome: CallOutcome::Failure,
            ..
        } => {
            m.consecutive_failures += 1;
            match m.policy.mark_dead_on_failure() {
                Some(delay) => (
                    Some(State::Open {
                        until: now + delay,
                        delay,
                    }),
                    Answer::Recorded,
                ),
                None => (None, Answer::Recorded),
            }
        }
        Event::Outcome {
            outcome: CallOutcome::Neutral,
            ..
        } => (None, Answer::Recorded),
    }
}

/// **Open** — every call is rejected until the open period ends. The first call at or after its end →
/// **HalfOpen** and is admitted as the first probe. (No outcome is expected while open: tickets of the
/// closed period that preceded it belong to an older epoch and never reach here.)
fn open(
    _m: &mut Machine,
    until: Instant,
    delay: Duration,
    ev: Event,
    now: Instant,
) -> (Option<State>, Answer) {
    match ev {
        Event::Acquire if now >= until => (
            Some(State::HalfOpen {
                in_flight: 1,
                delay,
            }),
            Answer::Admit { probe: true },
        ),
        Event::Acquire => (
            None,
            Answer::Reject(Rejected {
                state: BreakerState::Open,
                retry_in: until - now,
            }),
        ),
        Event::Outcome { .. } => (None, Answer::Recorded),
    }
}

/// **HalfOpen** — at most `probes` trial calls run at once; other calls are rejected. A probe success →
/// **Closed** (the policy is revived: fresh backoff). A probe failure (a cancelled probe is one) → **Open**
/// for the policy's next period (doubling up to the maximum). A neutral probe outcome frees its slot.
fn half_open(
    m: &mut Machine,
    in_flight: u32,
    delay: Duration,
    probes: u32,
    ev: Event,
    now: Instant,
) -> (Option<State>, Answer) {
    match ev {
        Event::Acquire if in_flight < probes => (
            Some(State::HalfOpen {
                in_flight: in_flight + 1,
                delay,
            }),
            Answer::Admit { probe: true },
        ),
        Event::Acquire => (
            None,
            Answer::Reject(Rejected {
                state: BreakerState::HalfOpen,
                retry_in: Duration::ZERO,
            }),
        ),
        // Only probes are admitted in this state; anything else is from an older epoch.
        Event::Outcome { probe: false, .. } => (None, Answer::Recorded),
        Event::Outcome {
            outcome: CallOutcome::Success,
            ..
        } => {
            m.policy.revived();
            m.consecutive_failures = 0;
            (Some(State::Closed), Answer::Recorded)
        }
        Event::Outcome {
            outcome: CallOutcome::Failure,
            ..
        } => {
            m.consecutive_failures += 1;
            let next = m.policy.mark_dead_on_failure().unwrap_or(delay);
            (
                Some(State::Open {
                    until: now + next,
                    delay: next,
                }),
                Answer::Recorded,
            )
        }
        Event::Outcome {
            outcome: CallOutcome::Neutral,
            ..
        } => (
            Some(State::HalfOpen {
                in_flight: in_flight.saturating_sub(1),
                delay,
            }),
            Answer::Recorded,
        ),
    }
}

/// Bookkeeping of entering a new public state; returns the transition to announce.
fn entered(m: &mut Machine, from: BreakerState, next: State) -> Transition {
    let to = next.public();
    if to == BreakerState::Open {
        m.opened_total += 1;
    }
    Transition {
        from,
        to,
        open_for_ms: match next {
            State::Open { delay, .. } => Some(delay.as_millis() as u64),
            _ => None,
        },
        consecutive_failures: m.consecutive_failures,
    }
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self::build(config, None)
    }

    /// A breaker that calls `listener` after every transition (outside its lock).
    pub fn with_listener(
        config: BreakerConfig,
        listener: impl Fn(&Transition) + Send + Sync + 'static,
    ) -> Self {
        Self::build(config, Some(Arc::new(listener)))
    }

    fn build(config: BreakerConfig, listener: Option<Listener>) -> Self {
        let config = BreakerConfig {
            failures: config.failures.max(1),
            probes: config.probes.max(1),
            ..config
        };
        let policy = consecutive_failures(
            config.failures,
            OpenBackoff::new(config.open, config.open_max),
        );
        BreakerState::Closed.export();
        Breaker {
            inner: Arc::new(Inner {
                machine: Mutex::new(Machine {
                    state: State::Closed,
                    policy,
                    epoch: 0,
                    since: Instant::now(),
                    consecutive_failures: 0,
                    opened_total: 0,
                    rejected_total: 0,
                }),
                config,
                closed: AtomicBool::new(true),
                listener,
            }),
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// Runs one event through the state's function and applies the transition it asks for.
    fn step(&self, ev: Event, epoch: Option<u64>) -> (Answer, u64) {
        let now = Instant::now();
        let (answer, epoch_after, transition) = {
            let mut m = self.inner.machine.lock().expect("breaker lock poisoned");
            if let Some(e) = epoch
                && e != m.epoch
            {
                return (Answer::Recorded, m.epoch);
            }
            let state = m.state;
            let (next, answer) = match state {
                State::Closed => closed(&mut m, ev, now),
                State::Open { until, delay } => open(&mut m, until, delay, ev, now),
                State::HalfOpen { in_flight, delay } => {
                    half_open(&mut m, in_flight, delay, self.inner.config.probes, ev, now)
                }
            };
            if let Answer::Reject(_) = answer {
                m.rejected_total += 1;
            }
            let mut transition = None;
            if let Some(next) = next {
                let (from, to) = (state.public(), next.public());
                self.inner.set_state(&mut m, next);
                if from != to {
                    m.epoch += 1;
                    m.since = now;
                    transition = Some(entered(&mut m, from, next));
                }
            }
            (answer, m.epoch, transition)
        };
        if let Answer::Reject(r) = answer {
            metrics::counter!(BREAKER_REJECTIONS_TOTAL, "state" => r.state.as_str()).increment(1);
        }
        if let Some(t) = transition {
            self.announce(&t);
        }
        (answer, epoch_after)
    }

    fn announce(&self, t: &Transition) {
        t.to.export();
        metrics::counter!(BREAKER_TRANSITIONS_TOTAL, "to" => t.to.as_str()).increment(1);
        match t.to {
            BreakerState::Open => tracing::warn!(
                from = t.from.as_str(),
                open_for_ms = t.open_for_ms,
                consecutive_failures = t.consecutive_failures,
                "upstream circuit breaker opened: no upstream calls until the open period ends"
            ),
            BreakerState::HalfOpen => tracing::info!(
                probes = self.inner.config.probes,
                "upstream circuit breaker half-open: probing"
            ),
            BreakerState::Closed => {
                tracing::info!(from = t.from.as_str(), "upstream circuit breaker closed")
            }
        }
        if let Some(l) = &self.inner.listener {
            l(t);
        }
    }

    /// Asks to make one call.
    pub fn try_acquire(&self) -> Result<Ticket, Rejected> {
        match self.step(Event::Acquire, None) {
            (Answer::Admit { probe }, epoch) => Ok(Ticket {
                breaker: self.clone(),
                epoch,
                probe,
                done: false,
            }),
            (Answer::Reject(r), _) => Err(r),
            (Answer::Recorded, _) => unreachable!("acquire always admits or rejects"),
        }
    }

    fn finish(&self, epoch: u64, probe: bool, outcome: CallOutcome) {
        self.step(Event::Outcome { outcome, probe }, Some(epoch));
    }

    /// Applies an operator's command; the transition is announced (metrics, log, listener) like any other.
    pub fn force(&self, cmd: Force) {
        let now = Instant::now();
        let transition = {
            let mut m = self.inner.machine.lock().expect("breaker lock poisoned");
            let from = m.state.public();
            let next = match cmd {
                Force::Open(d) => State::Open {
                    until: now + d,
                    delay: d,
                },
                Force::Close | Force::Reset => State::Closed,
            };
            if matches!(cmd, Force::Close | Force::Reset) {
                // All failure state goes, failsafe's own count and backoff included: a closed breaker must
                // not re-open on the next single failure, for a doubled period, while reporting one failure.
                m.consecutive_failures = 0;
                m.policy = consecutive_failures(
                    self.inner.config.failures,
                    OpenBackoff::new(self.inner.config.open, self.inner.config.open_max),
                );
            }
            self.inner.set_state(&mut m, next);
            m.epoch += 1;
            m.since = now;
            (from != next.public()).then(|| entered(&mut m, from, next))
        };
        tracing::warn!(command = ?cmd, "upstream circuit breaker forced by an operator");
        if let Some(t) = transition {
            self.announce(&t);
        }
    }

    /// The state as stored (an open breaker whose period has ended reports open until the next call).
    pub fn state(&self) -> BreakerState {
        self.inner
            .machine
            .lock()
            .expect("breaker lock poisoned")
            .state
            .public()
    }

    /// True when a call would be rejected right now (open and not yet due for a probe).
    pub fn is_rejecting(&self) -> bool {
        if self.inner.closed.load(Ordering::Acquire) {
            return false;
        }
        match self
            .inner
            .machine
            .lock()
            .expect("breaker lock poisoned")
            .state
        {
            State::Open { until, .. } => Instant::now() < until,
            State::HalfOpen { in_flight, .. } => in_flight >= self.inner.config.probes,
            State::Closed => false,
        }
    }

    pub fn status(&self) -> BreakerStatus {
        let now = Instant::now();
        let m = self.inner.machine.lock().expect("breaker lock poisoned");
        let (retry_in_ms, open_for_ms, probes_in_flight) = match m.state {
            State::Closed => (None, None, 0),
            State::Open { until, delay } => (
                // Rounded up: 0 means the open period is over (a call now is admitted as a probe), never
                // "less than a millisecond to go", which a caller would take for the same and be rejected.
                Some(ceil_ms(until.saturating_duration_since(now))),
                Some(delay.as_millis() as u64),
                0,
            ),
            State::HalfOpen { in_flight, delay } => {
                (None, Some(delay.as_millis() as u64), in_flight)
            }
        };
        BreakerStatus {
            state: m.state.public(),
            in_state_ms: now.saturating_duration_since(m.since).as_millis() as u64,
            consecutive_failures: m.consecutive_failures,
            retry_in_ms,
            open_for_ms,
            probes_in_flight,
            probes_max: self.inner.config.probes,
            failures_to_open: self.inner.config.failures,
            opened_total: m.opened_total,
            rejected_total: m.rejected_total,
        }
    }
}

/// Whole milliseconds, rounded up.
pub(crate) fn ceil_ms(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn cfg(failures: u32, probes: u32) -> BreakerConfig {
        BreakerConfig {
            failures,
            open: Duration::from_millis(1000),
            open_max: Duration::from_millis(4000),
            probes,
        }
    }

    fn fail(b: &Breaker) {
        b.try_acquire().unwrap().record(CallOutcome::Failure);
    }

    #[test]
    fn time_left_rounds_up_so_zero_means_due() {
        assert_eq!(ceil_ms(Duration::ZERO), 0);
        assert_eq!(ceil_ms(Duration::from_nanos(1)), 1, "still open: not 0");
        assert_eq!(ceil_ms(Duration::from_micros(999)), 1);
        assert_eq!(ceil_ms(Duration::from_millis(600)), 600);
        assert_eq!(
            ceil_ms(Duration::from_millis(600) + Duration::from_nanos(1)),
            601
        );
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_configured_consecutive_failures_only() {
        let b = Breaker::new(cfg(3, 1));
        fail(&b);
        fail(&b);
        b.try_acquire().unwrap().record(CallOutcome::Success);
        fail(&b);
        fail(&b);
        b.try_acquire().unwrap().record(CallOutcome::Neutral);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
        let r = b.try_acquire().unwrap_err();
        assert_eq!(r.state, BreakerState::Open);
        assert_eq!(r.retry_in, Duration::from_millis(1000));
        assert_eq!(b.status().opened_total, 1);
        assert_eq!(b.status().rejected_total, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn open_period_then_one_probe_then_closed() {
        let b = Breaker::new(cfg(1, 1));
        fail(&b);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(b.try_acquire().is_err(), "still open at 999 ms");
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = b
            .try_acquire()
            .expect("probe admitted at the end of the open period");
        assert!(probe.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let second = b.try_acquire().unwrap_err();
        assert_eq!(second.state, BreakerState::HalfOpen, "one probe at a time");
        probe.record(CallOutcome::Success);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probes_double_the_open_period_up_to_the_maximum_and_success_resets_it() {
        let b = Breaker::new(cfg(1, 1));
        fail(&b);
        let mut periods = Vec::new();
        for _ in 0..4 {
            let open_for = b.status().open_for_ms.unwrap();
            periods.push(open_for);
            tokio::time::advance(Duration::from_millis(open_for)).await;
            fail(&b); // the probe fails
        }
        assert_eq!(periods, vec![1000, 2000, 4000, 4000]);
        tokio::time::advance(Duration::from_millis(4000)).await;
        b.try_acquire().unwrap().record(CallOutcome::Success);
        fail(&b);
        assert_eq!(
            b.status().open_for_ms,
            Some(1000),
            "closing revives the policy: the backoff starts over"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_counts_as_a_failure() {
        let b = Breaker::new(cfg(1, 1));
        fail(&b);
        tokio::time::advance(Duration::from_millis(1000)).await;
        let probe = b.try_acquire().unwrap();
        drop(probe);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.status().open_for_ms, Some(2000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_inside_a_timed_out_future_reopens() {
        let b = Breaker::new(cfg(1, 1));
        fail(&b);
        tokio::time::advance(Duration::from_millis(1000)).await;
        let bb = b.clone();
        let slow = async move {
            let t = bb.try_acquire().unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            t.record(CallOutcome::Success);
        };
        assert!(
            tokio::time::timeout(Duration::from_millis(10), slow)
                .await
                .is_err()
        );
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_at_most_the_configured_probes() {
        let b = Breaker::new(cfg(1, 3));
        fail(&b);
        tokio::time::advance(Duration::from_millis(1000)).await;
        let admitted: Vec<Ticket> = (0..50).filter_map(|_| b.try_acquire().ok()).collect();
        assert_eq!(admitted.len(), 3);
        assert_eq!(b.status().probes_in_flight, 3);
        let mut it = admitted.into_iter();
        it.next().unwrap().record(CallOutcome::Neutral);
        assert_eq!(
            b.status().probes_in_flight,
            2,
            "a neutral probe frees its slot"
        );
        assert!(b.try_acquire().is_ok_and(|t| {
            t.record(CallOutcome::Neutral);
            true
        }));
        it.next().unwrap().record(CallOutcome::Success);
        assert_eq!(b.state(), BreakerState::Closed);
        // The third probe's late failure belongs to the closed epoch's predecessor: ignored.
        it.next().unwrap().record(CallOutcome::Failure);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.status().consecutive_failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_from_before_a_transition_are_ignored() {
        let b = Breaker::new(cfg(2, 1));
        let slow = b.try_acquire().unwrap();
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
        slow.record(CallOutcome::Success);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a stale success cannot close it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn listener_sees_every_transition() {
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let b = Breaker::with_listener(cfg(1, 1), move |t| {
            if t.to == BreakerState::Open {
                assert_eq!(t.open_for_ms, Some(1000));
            }
            s.fetch_add(1, Ordering::SeqCst);
        });
        fail(&b);
        tokio::time::advance(Duration::from_millis(1000)).await;
        b.try_acquire().unwrap().record(CallOutcome::Success);
        assert_eq!(seen.load(Ordering::SeqCst), 3, "open, half-open, closed");
        assert!(!b.is_rejecting(), "closed again after the probe succeeded");
    }

    #[tokio::test(start_paused = true)]
    async fn status_reports_the_time_to_the_next_probe() {
        let b = Breaker::new(cfg(1, 1));
        fail(&b);
        tokio::time::advance(Duration::from_millis(400)).await;
        let s = b.status();
        assert_eq!(s.state, BreakerState::Open);
        assert_eq!(s.retry_in_ms, Some(600));
        assert_eq!(s.in_state_ms, 400);
        assert!(b.is_rejecting());
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(!b.is_rejecting(), "due for a probe");
    }

    /// After an outage an operator closes the breaker by hand: it starts over as a new breaker would — the
    /// configured number of failures opens it again, for the first open period, not the doubled one.
    #[tokio::test(start_paused = true)]
    async fn a_forced_close_or_reset_forgets_all_failure_state() {
        for cmd in [Force::Close, Force::Reset] {
            let b = Breaker::new(cfg(3, 1));
            for _ in 0..3 {
                fail(&b);
            }
            tokio::time::advance(Duration::from_millis(1000)).await;
            fail(&b); // the probe fails: open for 2000 ms
            assert_eq!(b.status().open_for_ms, Some(2000));
            b.force(cmd);
            fail(&b);
            assert_eq!(
                b.state(),
                BreakerState::Closed,
                "{cmd:?}: one failure after the close does not re-open it"
            );
            assert_eq!(b.status().consecutive_failures, 1, "{cmd:?}");
            fail(&b);
            fail(&b);
            assert_eq!(b.state(), BreakerState::Open, "{cmd:?}");
            assert_eq!(
                b.status().open_for_ms,
                Some(1000),
                "{cmd:?}: the backoff starts over"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn operators_can_force_open_close_and_reset() {
        let b = Breaker::new(BreakerConfig::default());
        assert!(!b.is_rejecting(), "a new breaker is closed");
        b.force(Force::Open(Duration::from_secs(10)));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.is_rejecting(), "forced open");
        assert!(b.try_acquire().is_err(), "forced open rejects");
        tokio::time::advance(Duration::from_secs(11)).await;
        let probe = b
            .try_acquire()
            .expect("after the forced period a probe is admitted");
        assert!(probe.is_probe());
        drop(probe);
        b.force(Force::Close);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(!b.is_rejecting(), "forced closed");
        assert!(b.try_acquire().is_ok());
        b.force(Force::Open(Duration::from_secs(60)));
        assert!(b.is_rejecting(), "forced open again after a close");
        b.force(Force::Reset);
        assert!(!b.is_rejecting(), "reset closes");
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.status().consecutive_failures, 0);
    }
}
