//! The Redis tier's breaker: after Redis failed, skip it for a cooldown, then let one probe through.
//!
//! Contract: an explicit state machine, one function per state, with the transition rule written next to
//! it. `allow` answers "may this acquisition ask Redis?" and, in half-open, hands out exactly one probe at
//! a time (a probe that never reports back — its caller was cancelled — is replaced after the cooldown);
//! `on_success` / `on_failure` report the outcome. Contention is a success here: the breaker only tracks
//! whether Redis answers, never whether the lock was free.

use std::time::Duration;

use tokio::time::Instant;

/// Where the breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Redis answers: ask it.
    Closed,
    /// Redis failed: skip it until `until`.
    Open { until: Instant },
    /// The cooldown is over: one probe (started at `probe_started`) decides.
    HalfOpen { probe_started: Option<Instant> },
}

/// The breaker of one lock service.
#[derive(Debug)]
pub struct Breaker {
    state: BreakerState,
    cooldown: Duration,
}

impl Breaker {
    pub fn new(cooldown: Duration) -> Breaker {
        Breaker {
            state: BreakerState::Closed,
            cooldown,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// May an acquisition ask Redis now? Claims the probe in half-open.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } => self.allow_open(now, until),
            BreakerState::HalfOpen { probe_started } => self.allow_half_open(now, probe_started),
        }
    }

    /// Like [`Breaker::allow`] without claiming anything.
    pub fn would_allow(&self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } => now >= until,
            BreakerState::HalfOpen { probe_started } => {
                probe_started.is_none_or(|t| now >= t + self.cooldown)
            }
        }
    }

    /// Open: refuse until the cooldown is over, then become half-open and probe.
    fn allow_open(&mut self, now: Instant, until: Instant) -> bool {
        if now < until {
            return false;
        }
        self.state = BreakerState::HalfOpen {
            probe_started: Some(now),
        };
        true
    }

    /// Half-open: one probe at a time; a probe silent for a whole cooldown is replaced.
    fn allow_half_open(&mut self, now: Instant, probe_started: Option<Instant>) -> bool {
        match probe_started {
            Some(t) if now < t + self.cooldown => false,
            _ => {
                self.state = BreakerState::HalfOpen {
                    probe_started: Some(now),
                };
                true
            }
        }
    }

    /// Redis answered (the lock was taken or was busy): closed.
    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed;
    }

    /// Redis did not answer: open for a cooldown (from any state).
    pub fn on_failure(&mut self, now: Instant) {
        self.state = BreakerState::Open {
            until: now + self.cooldown,
        };
    }
}
