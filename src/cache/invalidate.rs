//! Invalidation: dropping every key of a prefix from L2, from L1 here and, through Redis pub/sub, from L1 on
//! every other instance; and the pub/sub listener that receives those messages and the flight's completion
//! signals.
//!
//! Contract: L2 is purged first (`SCAN MATCH` on the literal prefix, `DEL` in batches; flight leases stay), so
//! no instance can promote an old value from L2 again after dropping its copy; a Redis failure is logged and
//! counted and the L1 drops happen anyway. An instance ignores its own invalidation messages. The listener
//! reconnects and resubscribes through fred's subscriber client and returns when its token is cancelled.

use fred::prelude::*;

use super::{CacheError, TieredCache, flight};
use crate::redis::RedisHandle;

/// `s` with Redis glob metacharacters escaped, for a `MATCH` pattern that matches it literally.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The invalidation channel: payload `instance_id\nkey-prefix`.
pub const INVALIDATE_CHANNEL: &str = "maple:v1:invalidate";

impl<E> TieredCache<E>
where
    E: Clone + Send + Sync + std::fmt::Display + From<CacheError> + 'static,
{
    /// Drops every key starting with `prefix` from L2, from L1 here, and (via pub/sub) from L1 on the other
    /// instances. L2 goes first, so no instance can promote an old value from L2 again after dropping its
    /// copy. Flight leases under the prefix stay (a running load keeps its one leader). A Redis failure is
    /// logged and counted (`maple_cache_l2_errors_total{op="invalidate"}`); the L1 drops happen anyway.
    pub async fn invalidate_prefix(&self, prefix: &str) {
        self.invalidate_l2(prefix).await;
        self.invalidate_local(prefix);
        self.publish_invalidation(prefix).await;
    }

    /// Deletes the L2 keys starting with `prefix` (found with `SCAN MATCH`, deleted in batches).
    async fn invalidate_l2(&self, prefix: &str) {
        use futures::TryStreamExt;
        let Some(redis) = &self.inner.l2 else {
            return;
        };
        let failed = |e: &dyn std::fmt::Display| {
            metrics::counter!("maple_cache_l2_errors_total", "op" => "invalidate").increment(1);
            tracing::warn!(error = %e, prefix, "L2 invalidation failed");
        };
        let pattern = format!("{}*", glob_escape(prefix));
        let scanned: Result<Vec<fred::types::Key>, _> = redis
            .client()
            .scan_buffered(pattern, Some(1000), None)
            .try_collect()
            .await;
        let keys: Vec<fred::types::Key> = match scanned {
            Ok(keys) => keys
                .into_iter()
                .filter(|k| {
                    !k.as_str()
                        .is_some_and(|k| k.ends_with(flight::LEASE_SUFFIX))
                })
                .collect(),
            Err(e) => return failed(&e),
        };
        for batch in keys.chunks(500) {
            if let Err(e) = redis.client().del::<i64, _>(batch.to_vec()).await {
                failed(&e);
            }
        }
    }

    /// Tells the other instances (not this one) to drop their L1 entries under `prefix`: after a forced
    /// refresh this instance already holds the new values, and L2 has them for the others.
    pub async fn publish_invalidation(&self, prefix: &str) {
        if let Some(redis) = &self.inner.l2 {
            let msg = format!("{}\n{}", self.inner.instance_id, prefix);
            if let Err(e) = redis
                .client()
                .publish::<i64, _, _>(INVALIDATE_CHANNEL, msg)
                .await
            {
                tracing::warn!(error = %e, "invalidation publish failed");
            }
        }
    }

    /// Drops matching L1 entries in this instance only (what a received invalidation message does).
    pub fn invalidate_local(&self, prefix: &str) {
        let p = prefix.to_string();
        let _ = self
            .inner
            .l1
            .invalidate_entries_if(move |k, _| k.starts_with(&p));
    }

    /// Handles an invalidation message; messages from this instance are ignored.
    pub fn on_invalidation_message(&self, payload: &str) {
        if let Some((from, prefix)) = payload.split_once('\n')
            && from != self.inner.instance_id
        {
            self.invalidate_local(prefix);
        }
    }
}

/// Runs the pub/sub listener: flight completion signals and invalidation messages. Returns when the
/// cancellation token fires. Reconnects and resubscribes through fred's subscriber client.
pub async fn run_listener<E>(
    redis: RedisHandle,
    cache: TieredCache<E>,
    cancel: tokio_util::sync::CancellationToken,
) where
    E: Clone + Send + Sync + std::fmt::Display + From<CacheError> + 'static,
{
    let sub = match redis.subscriber() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the pub/sub client: invalidation and flight signals off");
            return;
        }
    };
    let _ = sub.init().await;
    let _manage = sub.manage_subscriptions();
    if let Err(e) = sub
        .subscribe(vec![flight::DONE_CHANNEL, INVALIDATE_CHANNEL])
        .await
    {
        tracing::warn!(error = %e, "subscribe failed; fred resubscribes after reconnecting");
    }
    let mut rx = sub.message_rx();
    let signals = cache.flight_signals();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            msg = rx.recv() => {
                let Ok(msg) = msg else { continue };
                let Some(payload) = msg.value.as_string() else { continue };
                if &*msg.channel == flight::DONE_CHANNEL {
                    if let Some(s) = &signals {
                        s.signal(&payload);
                    }
                } else {
                    cache.on_invalidation_message(&payload);
                }
            }
        }
    }
    let _ = sub.quit().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_patterns_match_the_prefix_literally() {
        assert_eq!(glob_escape("maple:v1:c:stat1:"), "maple:v1:c:stat1:");
        assert_eq!(glob_escape(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
    }
}
