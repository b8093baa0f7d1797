//! Per-client rate limit for the data routes (`MAPLE_CLIENT_RPS`; 0 = off).
//!
//! Contract: each client has a token bucket refilled at `rps` tokens per second with a burst of `2 × rps`.
//! A client is its peer address (an IPv6 peer by its /64, the block one host is given), since nothing the
//! client sends can be believed. Only when the peer is one of the configured trusted proxies
//! (`MAPLE_TRUSTED_PROXIES`) does the request name its client: by a sane `x-api-client` header (1–64
//! visible ASCII characters), else by `X-Forwarded-For` read as nginx's `real_ip_recursive on` does — the
//! rightmost address that is not a trusted proxy (the leftmost when all are trusted; an unparsable entry
//! stops the walk at the hop before it). So rotating the header or forging the forwarded chain buys no
//! fresh burst and cannot evict other clients' buckets. A request finding the bucket empty is answered at once with 429
//! `RATE_LIMITED` and a `Retry-After` (seconds until a token is back), without touching any service.
//! Buckets of idle clients are forgotten after a minute; at most 100,000 clients are tracked (the least
//! recently seen are dropped first, which can only make the limit more lenient, never wrongly reject).
//! Time is tokio time, so tests can pause it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::error::ApiError;
use crate::config::IpNet;
use crate::error::Code;

/// The header a trusted proxy may use to name the client.
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
    trusted: Arc<[IpNet]>,
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
            trusted: Arc::from(Vec::new()),
        })
    }

    /// Believes `X-Forwarded-For` and `x-api-client` from these peers.
    pub fn trusting(mut self, proxies: &[IpNet]) -> ClientLimiter {
        self.trusted = Arc::from(proxies);
        self
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// The bucket key of a request from `peer` with these headers.
    fn client_key(&self, peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> String {
        let Some(peer) = peer else {
            return "ip:unknown".to_string();
        };
        if !self.is_trusted(peer) {
            return ip_key(peer);
        }
        if let Some(v) = headers.get(CLIENT_HEADER).and_then(|v| v.to_str().ok())
            && !v.is_empty()
            && v.len() <= 64
            && v.bytes().all(|b| b.is_ascii_graphic())
        {
            return format!("h:{v}");
        }
        ip_key(self.forwarded_client(peer, headers))
    }

    /// The client address of `X-Forwarded-For` behind the trusted `peer` (nginx `real_ip_recursive on`).
    fn forwarded_client(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                break;
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
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

/// An IPv4 client by its address, an IPv6 client by its /64.
fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

pub async fn limit(State(limiter): State<ClientLimiter>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    match limiter.check(&limiter.client_key(peer, req.headers())) {
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

#[cfg(test)]
mod key_tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_untrusted_peer_is_its_address_whatever_it_sends() {
        let l = ClientLimiter::new(1).unwrap();
        let h = headers(&[("x-api-client", "me"), ("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(l.client_key(ip("203.0.113.9"), &h), "ip:203.0.113.9");
        assert_eq!(l.client_key(None, &h), "ip:unknown");
        // One IPv6 host is one /64, however many addresses it rotates through.
        assert_eq!(
            l.client_key(ip("2001:db8:1:2:aaaa::1"), &h),
            l.client_key(ip("2001:db8:1:2:bbbb::7"), &h)
        );
        assert_eq!(
            l.client_key(ip("::ffff:198.51.100.1"), &h),
            "ip:198.51.100.1"
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_header_or_the_rightmost_untrusted_hop_names_the_client() {
        let trusted = [
            IpNet::parse("10.0.0.0/8").unwrap(),
            IpNet::parse("127.0.0.1").unwrap(),
        ];
        let l = ClientLimiter::new(1).unwrap().trusting(&trusted);
        let proxy = ip("10.1.1.1");
        assert_eq!(
            l.client_key(proxy, &headers(&[("x-api-client", "load-test-a")])),
            "h:load-test-a"
        );
        // A forged left part of the chain is ignored: the rightmost untrusted hop is the client.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.2.2.2")]);
        assert_eq!(l.client_key(proxy, &h), "ip:198.51.100.7");
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.8"),
        ]);
        assert_eq!(l.client_key(proxy, &h), "ip:198.51.100.8");
        // All hops trusted: the leftmost; garbage stops the walk at the hop before it.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 127.0.0.1")]);
        assert_eq!(l.client_key(proxy, &h), "ip:10.9.9.9");
        let h = headers(&[("x-forwarded-for", "198.51.100.9, junk, 10.3.3.3")]);
        assert_eq!(l.client_key(proxy, &h), "ip:10.3.3.3");
        // No header at all: the proxy itself.
        assert_eq!(l.client_key(proxy, &HeaderMap::new()), "ip:10.1.1.1");
        // An oversized or invisible header name falls back on the forwarded address.
        let h = headers(&[("x-api-client", "a b"), ("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(l.client_key(proxy, &h), "ip:198.51.100.1");
    }
}
