//! Fault injection: the settings `POST /_sim/faults` merges, and the per-call decision they imply.
//!
//! Contract:
//! - [`FaultPatch`] is the JSON body: `latency_ms` (u64, ≤ 600000), `error_rate` (finite, 0..=1), `outage`
//!   (bool), `status` (u16, 400..=599), `nexon_error` (`OPENAPI000NN`, a code the upstream documents); all
//!   optional, unknown fields rejected. [`FaultState::apply`] validates the whole patch before changing
//!   anything (a rejected patch leaves the state as it was) and merges the given fields.
//! - The failure a fault produces is `status` with the body `{"error":{"name":nexon_error,…}}`. By default
//!   that is 503 `OPENAPI00011`. `status` follows `nexon_error`'s own HTTP status (00007 → 429, 00001 →
//!   500, …) unless a patch set `status` explicitly; a later patch that sets `nexon_error` without `status`
//!   returns `status` to following the code. [`FaultState::default`] is "no faults".
//! - [`FaultState::decide`]: with `outage` every call fails; otherwise a call fails with probability
//!   `error_rate`, judged by the caller-supplied uniform draw.
//!
//! Why this shape: tests of the gateway's breaker, retry, stale fallback and maintenance mode need exactly
//! these knobs, switchable at run time without restarting the simulator, and a typo in a drill's JSON must
//! fail loudly rather than silently inject nothing.

use serde::{Deserialize, Serialize};

use crate::nexon::wire::NexonErrorCode;

/// The longest latency a patch may ask for (10 minutes).
pub const MAX_LATENCY_MS: u64 = 600_000;

/// A `POST /_sim/faults` body; absent fields keep their current value.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPatch {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub outage: Option<bool>,
    pub status: Option<u16>,
    pub nexon_error: Option<String>,
}

/// The current faults as `GET /_sim/faults` shows them (status already resolved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    pub latency_ms: u64,
    pub error_rate: f64,
    pub outage: bool,
    pub status: u16,
    pub nexon_error: String,
}

/// Why a patch was rejected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultError {
    #[error("error_rate must be a number between 0 and 1, got {0}")]
    ErrorRate(f64),
    #[error("status must be an HTTP error status (400..=599), got {0}")]
    Status(u16),
    #[error("latency_ms must be at most {MAX_LATENCY_MS}, got {0}")]
    Latency(u64),
    #[error("nexon_error must be a documented code such as OPENAPI00011, got {0:?}")]
    Code(String),
}

/// The simulator's fault settings.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultState {
    pub latency_ms: u64,
    pub error_rate: f64,
    pub outage: bool,
    /// An explicit status; `None` means "the code's own status".
    pub status: Option<u16>,
    pub code: NexonErrorCode,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            latency_ms: 0,
            error_rate: 0.0,
            outage: false,
            status: None,
            code: NexonErrorCode::ApiMaintenance,
        }
    }
}

/// What a failing call answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub code: NexonErrorCode,
}

impl FaultState {
    /// Validates the whole patch, then merges it; on error nothing changes.
    pub fn apply(&mut self, p: &FaultPatch) -> Result<(), FaultError> {
        if let Some(r) = p.error_rate
            && !(r.is_finite() && (0.0..=1.0).contains(&r))
        {
            return Err(FaultError::ErrorRate(r));
        }
        if let Some(s) = p.status
            && !(400..=599).contains(&s)
        {
            return Err(FaultError::Status(s));
        }
        if let Some(l) = p.latency_ms
            && l > MAX_LATENCY_MS
        {
            return Err(FaultError::Latency(l));
        }
        let code = match &p.nexon_error {
            Some(n) => Some(NexonErrorCode::parse(n).ok_or_else(|| FaultError::Code(n.clone()))?),
            None => None,
        };
        if let Some(l) = p.latency_ms {
            self.latency_ms = l;
        }
        if let Some(r) = p.error_rate {
            self.error_rate = r;
        }
        if let Some(o) = p.outage {
            self.outage = o;
        }
        if let Some(c) = code {
            self.code = c;
            self.status = None;
        }
        if let Some(s) = p.status {
            self.status = Some(s);
        }
        Ok(())
    }

    /// The failure every faulted call answers with.
    pub fn failure(&self) -> Failure {
        Failure {
            status: self.status.unwrap_or(self.code.http_status()),
            code: self.code,
        }
    }

    /// Whether this call fails; `draw` is a uniform number in `[0, 1)`.
    pub fn decide(&self, draw: f64) -> Option<Failure> {
        (self.outage || draw < self.error_rate).then(|| self.failure())
    }

    pub fn view(&self) -> Faults {
        let f = self.failure();
        Faults {
            latency_ms: self.latency_ms,
            error_rate: self.error_rate,
            outage: self.outage,
            status: f.status,
            nexon_error: f.code.name().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> FaultPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_no_faults_with_a_maintenance_failure() {
        let s = FaultState::default();
        assert_eq!(s.decide(0.0), None);
        assert_eq!(
            s.view(),
            Faults {
                latency_ms: 0,
                error_rate: 0.0,
                outage: false,
                status: 503,
                nexon_error: "OPENAPI00011".into()
            }
        );
    }

    #[test]
    fn patches_merge_and_status_follows_the_code_unless_set() {
        let mut s = FaultState::default();
        s.apply(&patch(r#"{"outage":true}"#)).unwrap();
        assert_eq!(s.decide(0.99).unwrap().status, 503);
        s.apply(&patch(r#"{"nexon_error":"OPENAPI00007"}"#))
            .unwrap();
        assert!(s.outage, "merge keeps earlier fields");
        assert_eq!(
            s.decide(0.5),
            Some(Failure {
                status: 429,
                code: NexonErrorCode::RateLimited
            })
        );
        s.apply(&patch(r#"{"status":500}"#)).unwrap();
        assert_eq!(s.failure().status, 500);
        assert_eq!(s.failure().code, NexonErrorCode::RateLimited);
        s.apply(&patch(r#"{"nexon_error":"OPENAPI00001"}"#))
            .unwrap();
        assert_eq!(s.failure().status, 500);
        s.apply(&patch(r#"{"nexon_error":"OPENAPI00010"}"#))
            .unwrap();
        assert_eq!(s.failure().status, 400, "code's own status again");
        s.apply(&patch(
            r#"{"outage":false,"error_rate":0.25,"latency_ms":30}"#,
        ))
        .unwrap();
        assert!(s.decide(0.24).is_some());
        assert!(s.decide(0.25).is_none());
        assert_eq!(s.latency_ms, 30);
    }

    #[test]
    fn invalid_patches_change_nothing() {
        let mut s = FaultState::default();
        s.apply(&patch(r#"{"latency_ms":5}"#)).unwrap();
        let before = s.clone();
        for (json, err) in [
            (
                r#"{"error_rate":1.5,"latency_ms":9}"#,
                FaultError::ErrorRate(1.5),
            ),
            (r#"{"error_rate":-0.1}"#, FaultError::ErrorRate(-0.1)),
            (r#"{"status":200,"outage":true}"#, FaultError::Status(200)),
            (r#"{"latency_ms":600001}"#, FaultError::Latency(600_001)),
            (
                r#"{"nexon_error":"OPENAPI00008","outage":true}"#,
                FaultError::Code("OPENAPI00008".into()),
            ),
        ] {
            assert_eq!(s.apply(&patch(json)), Err(err), "{json}");
            assert_eq!(s, before, "{json}");
        }
        assert!(serde_json::from_str::<FaultPatch>(r#"{"outages":true}"#).is_err());
        assert!(serde_json::from_str::<FaultPatch>(r#"{"latency_ms":-1}"#).is_err());
    }
}
