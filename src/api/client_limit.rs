//! Per-client rate limit for the data routes (`MAPLE_CLIENT_RPS`; 0 = off).
//!
//! Contract: each client — identified by its `x-api-client` header when it sends a sane one (1–64 visible
//! ASCII characters), otherwise by its IP address — has a token bucket refilled at `rps` tokens per second
//! with a burst of `2 × rps`. A request finding the bucket empty is answered at once with 429
//! `RATE_LIMITED` and a `Retry-After` (seconds until a token is back), without touching any service.
//! Buckets of idle clients are forgotten after a minute; at most 100,000 clients are tracked (the least
//! recently seen are dropped first, which can only make the limit more lenient, never wrongly reject).
//! Time is tokio time, so tests can pause it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::error::ApiError;
use crate::error::Code;

/// The header a client may use to name itself.
pub const CLIENT_HEADER: &str = "x-api-client";

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The limiter shared by all requests.
#[derive(Clone)]
pub struct ClientLimiter {
    rps: f64,
    burst: f64,
    buckets: moka::sync::Cache<String, Arc<Mutex<Bucket>>>,
}

impl ClientLimiter {
    /// `None` when `rps` is 0 (disabled).
    pub fn new(rps: u32) -> Option<ClientLimiter> {
        (rps > 0).then(|| ClientLimiter {
            rps: rps as f64,
            burst: 2.0 * rps as f64,
            buckets: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        })
    }

    /// Takes a token for `client`; `Err(seconds)` until one is available.
    pub fn check(&self, client: &str) -> Result<(), u64> {
        let now = Instant::now();
        let bucket = self.buckets.get_with(client.to_string(), || {
            Arc::new(Mutex::new(Bucket {
                tokens: self.burst,
                last: now,
            }))
        });
        let mut b = bucket.lock().expect("poisoned");
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rps).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rps).ceil().max(1.0) as u64)
        }
    }
}

fn client_key(req: &Request) -> String {
    if let Some(v) = req
        .headers()
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        && !v.is_empty()
        && v.len() <= 64
        && v.bytes().all(|b| b.is_ascii_graphic())
    {
        return format!("h:{v}");
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => format!("ip:{}", addr.ip()),
        None => "ip:unknown".to_string(),
    }
}

pub async fn limit(State(limiter): State<ClientLimiter>, req: Request, next: Next) -> Response {
    match limiter.check(&client_key(&req)) {
        Ok(()) => next.run(req).await,
        Err(secs) => {
            metrics::counter!(crate::telemetry::HTTP_REJECTED_TOTAL, "reason" => "client_rate")
                .increment(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Code::RateLimited,
                "client rate limit exceeded",
            )
            .with_retry_after(secs)
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_refill_at_the_configured_rate() {
        let l = ClientLimiter::new(5).unwrap();
        for _ in 0..10 {
            assert!(l.check("a").is_ok());
        }
        assert_eq!(l.check("a"), Err(1));
        assert!(l.check("b").is_ok(), "clients have separate buckets");
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(l.check("a").is_ok(), "one token back after 1/rps");
        assert!(l.check("a").is_err());
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..10 {
            assert!(l.check("a").is_ok(), "refilled up to the burst");
        }
        assert!(l.check("a").is_err());
        assert!(ClientLimiter::new(0).is_none());
    }
}
