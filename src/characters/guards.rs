//! Bounds on what one client can make the read path do for a character: forced refreshes, and the number of
//! option variants kept in the cache.
//!
//! Contract:
//! - [`ForceGuard::admit`]: at most one forced refresh per character and route per [`FORCE_WINDOW`]. With
//!   Redis the window is cluster-wide (`SET maple:v1:force:<name>:<route> NX PX …`); without Redis, or when a
//!   Redis call fails, it is this instance's (an in-process map of the last admitted force). A force that is
//!   not admitted is answered by the caller as a normal read. Counted in `maple_force_refresh_total`
//!   (`outcome` = `honoured` / `throttled`).
//! - [`VariantGuard::admit`]: at most [`MAX_OPTION_VARIANTS`] distinct expectation keys (option sets, table
//!   versions) per character and date are admitted to the cache; a key already admitted stays admitted.
//!   With Redis the set of admitted keys is shared (`…:xv:<date>`, under the character's prefix so an
//!   invalidation of the character resets it, kept [`VARIANT_MEMORY`]); without Redis, or when a Redis call
//!   fails, it is this instance's. A key beyond the bound is computed and answered by the caller but not
//!   stored (`maple_option_variants_uncached_total`).
//! - Neither guard ever fails a request: when its bookkeeping cannot be consulted it decides from memory.
//!   The in-process maps are bounded; when they overflow they forget, which can only admit more.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::prelude::*;
use fred::types::scripts::Script;
use fred::types::{Expiration, SetOptions};
use tokio::time::Instant;

use crate::ids::CharacterName;
use crate::redis::RedisHandle;

/// A character's forced refreshes of one route are admitted at most once per this window.
pub const FORCE_WINDOW: Duration = Duration::from_secs(60);
/// Distinct option variants (expectation keys) of one character and date that are cached.
pub const MAX_OPTION_VARIANTS: usize = 16;
/// How long the shared set of a character's admitted variants is remembered after its last admission
/// (the longest a cached expectation lives).
pub const VARIANT_MEMORY: Duration = Duration::from_secs(31 * 24 * 3600);
/// Forced refreshes by outcome (`honoured`, `throttled`).
pub const FORCE_REFRESH_TOTAL: &str = "maple_force_refresh_total";
/// Expectations computed and answered but not cached because their character and date already have
/// [`MAX_OPTION_VARIANTS`] variants.
pub const VARIANTS_UNCACHED_TOTAL: &str = "maple_option_variants_uncached_total";

/// Entries of each in-process map.
const LOCAL_ENTRIES: u64 = 100_000;

/// Admits a member if it is in the set, or adds it while the set is smaller than ARGV[2].
const ADMIT_VARIANT: &str = r#"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"#;

/// One forced refresh per character and route per window.
pub struct ForceGuard {
    redis: Option<RedisHandle>,
    window: Duration,
    local: moka::sync::Cache<String, Instant>,
}

impl ForceGuard {
    pub fn new(redis: Option<RedisHandle>, window: Duration) -> ForceGuard {
        ForceGuard {
            redis,
            window,
            local: moka::sync::Cache::builder()
                .max_capacity(LOCAL_ENTRIES)
                .time_to_live(window)
                .build(),
        }
    }

    /// Whether a forced refresh of `name` on `route` may go ahead now.
    pub async fn admit(&self, name: &CharacterName, route: &str) -> bool {
        let key = format!("maple:v1:force:{}:{route}", name.key());
        let admitted = match self.shared(&key).await {
            Some(admitted) => admitted,
            None => self.local(key),
        };
        let outcome = if admitted { "honoured" } else { "throttled" };
        metrics::counter!(FORCE_REFRESH_TOTAL, "outcome" => outcome).increment(1);
        admitted
    }

    async fn shared(&self, key: &str) -> Option<bool> {
        let redis = self.redis.as_ref()?;
        let set: Result<Option<String>, _> = redis
            .client()
            .set(
                key,
                "1",
                Some(Expiration::PX(self.window.as_millis() as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await;
        match set {
            Ok(set) => Some(set.is_some()),
            Err(e) => {
                tracing::debug!(error = %e, "force guard: Redis unavailable, deciding locally");
                None
            }
        }
    }

    fn local(&self, key: String) -> bool {
        let now = Instant::now();
        let window = self.window;
        self.local
            .entry(key)
            .or_insert_with_if(|| now, |at| now.saturating_duration_since(*at) >= window)
            .is_fresh()
    }
}

/// At most [`MAX_OPTION_VARIANTS`] cached expectation keys per character and date.
pub struct VariantGuard {
    redis: Option<RedisHandle>,
    max: usize,
    script: Script,
    local: moka::sync::Cache<String, Arc<Mutex<HashSet<String>>>>,
}

impl VariantGuard {
    pub fn new(redis: Option<RedisHandle>, max: usize) -> VariantGuard {
        VariantGuard {
            redis,
            max,
            script: Script::from_lua(ADMIT_VARIANT),
            local: moka::sync::Cache::builder()
                .max_capacity(LOCAL_ENTRIES)
                .time_to_idle(VARIANT_MEMORY)
                .build(),
        }
    }

    /// Whether `key` (an expectation key of the character and date whose variant set is `set_key`) may be
    /// cached.
    pub async fn admit(&self, set_key: &str, key: &str) -> bool {
        let set = self
            .local
            .get_with(set_key.to_string(), || Arc::new(Mutex::new(HashSet::new())));
        // A key this instance saw admitted stays admitted: a cached read costs no Redis call.
        if set.lock().expect("poisoned").contains(key) {
            return true;
        }
        let admitted = match self.shared(set_key, key).await {
            Some(true) => {
                // Admitted by the shared set, which holds the bound; the local copy only remembers it.
                let mut set = set.lock().expect("poisoned");
                if set.len() < 4 * self.max {
                    set.insert(key.to_string());
                }
                true
            }
            Some(false) => false,
            None => Self::local(&set, self.max, key),
        };
        if !admitted {
            metrics::counter!(VARIANTS_UNCACHED_TOTAL).increment(1);
        }
        admitted
    }

    async fn shared(&self, set_key: &str, key: &str) -> Option<bool> {
        let redis = self.redis.as_ref()?;
        let r: Result<i64, _> = self
            .script
            .evalsha_with_reload(
                redis.client(),
                vec![set_key.to_string()],
                vec![
                    key.to_string(),
                    self.max.to_string(),
                    VARIANT_MEMORY.as_millis().to_string(),
                ],
            )
            .await;
        match r {
            Ok(n) => Some(n == 1),
            Err(e) => {
                tracing::debug!(error = %e, "variant guard: Redis unavailable, deciding locally");
                None
            }
        }
    }

    /// The decision without Redis: this instance's set of admitted keys holds the bound.
    fn local(set: &Mutex<HashSet<String>>, max: usize, key: &str) -> bool {
        let mut set = set.lock().expect("poisoned");
        if set.contains(key) {
            return true;
        }
        if set.len() < max {
            set.insert(key.to_string());
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_force_per_character_and_route_per_window() {
        let g = ForceGuard::new(None, Duration::from_secs(60));
        let a = CharacterName::parse("Evan").unwrap();
        let b = CharacterName::parse("Adele").unwrap();
        assert!(g.admit(&a, "expectation").await);
        assert!(!g.admit(&a, "expectation").await);
        assert!(
            !g.admit(&CharacterName::parse("EVAN").unwrap(), "expectation")
                .await,
            "one character whatever its ASCII case"
        );
        assert!(g.admit(&a, "equipment").await, "another route");
        assert!(g.admit(&b, "expectation").await, "another character");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!g.admit(&a, "expectation").await);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(g.admit(&a, "expectation").await, "a new window");
        assert!(!g.admit(&a, "expectation").await);
    }

    #[tokio::test]
    async fn variants_beyond_the_bound_are_not_admitted_but_known_ones_stay() {
        let g = VariantGuard::new(None, 2);
        assert!(g.admit("c:a:2025-01-01", "k1").await);
        assert!(g.admit("c:a:2025-01-01", "k2").await);
        assert!(!g.admit("c:a:2025-01-01", "k3").await);
        assert!(g.admit("c:a:2025-01-01", "k1").await, "already admitted");
        assert!(g.admit("c:a:2025-01-02", "k3").await, "another date");
        assert!(g.admit("c:b:2025-01-01", "k3").await, "another character");
    }
}
