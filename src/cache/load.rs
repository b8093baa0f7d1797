//! Loading: the read path of the tiered cache (fresh → hit; within the stale-while-revalidate grace → hit
//! and one background refresh; otherwise a load), the local flight (one spawned task per key in this
//! instance) and the cluster flight (one leader per key with Redis), and storing what a load produced.
//!
//! Contract: see the cache's module documentation; a load failure returns the last value still within its
//! stale window with the error, and the caller decides whether to serve it.

use super::*;

impl<E> TieredCache<E>
where
    E: Clone + Send + Sync + std::fmt::Display + From<CacheError> + 'static,
{
    /// The read path: see the module contract.
    pub async fn get_or_load<F, Fut>(
        &self,
        key: &str,
        force: bool,
        load: F,
    ) -> Result<ServedValue, LoadFailure<E>>
    where
        F: FnOnce(Priority) -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedValue, E>> + Send + 'static,
    {
        self.get_or_load_in(key, force, Tiers::All, load).await
    }

    /// As [`TieredCache::get_or_load`], keeping the key's values in the given tiers.
    pub async fn get_or_load_in<F, Fut>(
        &self,
        key: &str,
        force: bool,
        tiers: Tiers,
        load: F,
    ) -> Result<ServedValue, LoadFailure<E>>
    where
        F: FnOnce(Priority) -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedValue, E>> + Send + 'static,
    {
        self.get_or_load_with(key, force, tiers, move || load).await
    }

    /// As [`TieredCache::get_or_load_in`], with the loader built by `make_load` only when it is needed: a
    /// fresh hit never calls it. The loader must own what it uses (it may run in a spawned task); `make_load`
    /// can borrow, so a hit does not pay for the clones the loader needs.
    pub async fn get_or_load_with<M, F, Fut>(
        &self,
        key: &str,
        force: bool,
        tiers: Tiers,
        make_load: M,
    ) -> Result<ServedValue, LoadFailure<E>>
    where
        M: FnOnce() -> F,
        F: FnOnce(Priority) -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedValue, E>> + Send + 'static,
    {
        let now = self.inner.clock.now_ms();
        let existing = self.lookup_in(key, tiers, now).await;
        if !force && let Some((v, tier)) = &existing {
            let tier = *tier;
            // Served from the cache: `Some(refresh in the background too)`.
            let serve = if v.fresh_until_ms > now {
                let early = freshness::xfetch_should_refresh(
                    now,
                    v.fresh_until_ms,
                    v.load_ms,
                    self.inner.config.xfetch_beta,
                    rand::random::<f64>(),
                );
                if early {
                    metrics::counter!("maple_cache_early_refresh_total").increment(1);
                }
                Some(early)
            } else if now < v.fresh_until_ms + self.inner.config.swr_grace.as_millis() as i64 {
                Some(true)
            } else {
                None
            };
            if let Some(refresh) = serve {
                if refresh {
                    self.refresh_in_background(key, tiers, make_load());
                }
                self.count(CacheStatus::Hit(tier));
                // Moved, not cloned: the hot entry's reference count is shared by every thread serving it.
                let (value, _) = existing.expect("matched above");
                return Ok(ServedValue {
                    value,
                    status: CacheStatus::Hit(tier),
                });
            }
        }
        let min_fetched = if force { now } else { i64::MIN };
        let load = make_load();
        // Boxed for the same reason as the L2 read: the hit path above must not carry the flight's state.
        match Box::pin(self.flight(key, min_fetched, tiers, move || load(Priority::Interactive)))
            .await
        {
            Ok(value) => {
                self.count(CacheStatus::Miss);
                Ok(ServedValue {
                    value,
                    status: CacheStatus::Miss,
                })
            }
            Err(error) => Err(LoadFailure {
                error,
                stale: existing.map(|(v, _)| v),
            }),
        }
    }

    /// Starts a refresh that nobody waits for (shares the key's flight if one is running).
    fn refresh_in_background<F, Fut>(&self, key: &str, tiers: Tiers, load: F)
    where
        F: FnOnce(Priority) -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedValue, E>> + Send + 'static,
    {
        let this = self.clone();
        let key = key.to_string();
        let min = self.inner.clock.now_ms();
        tokio::spawn(async move {
            if let Err(e) = this
                .flight(&key, min, tiers, move || load(Priority::Background))
                .await
            {
                metrics::counter!("maple_cache_refresh_failures_total").increment(1);
                tracing::debug!(%key, error = %e, "background refresh failed");
            }
        });
    }

    /// Joins or starts this instance's flight for `key`; the load runs in a spawned task.
    async fn flight<F, Fut>(
        &self,
        key: &str,
        min_fetched_ms: i64,
        tiers: Tiers,
        load: F,
    ) -> Result<Arc<CachedValue>, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedValue, E>> + Send + 'static,
    {
        let fut = {
            let mut flights = self.inner.flights.lock().expect("poisoned");
            if let Some(f) = flights.get(key) {
                metrics::counter!("maple_flight_joins_total", "scope" => "local").increment(1);
                f.clone()
            } else {
                let this = self.clone();
                let k = key.to_string();
                let handle = tokio::spawn(async move {
                    let r = this
                        .load_through_cluster(&k, min_fetched_ms, tiers, load)
                        .await;
                    this.inner.flights.lock().expect("poisoned").remove(&k);
                    r
                });
                let shared = handle
                    .map(|r| match r {
                        Ok(r) => r,
                        Err(join) => Err(E::from(CacheError::LoadAborted(Arc::new(join)))),
                    })
                    .boxed()
                    .shared();
                flights.insert(key.to_string(), shared.clone());
                shared
            }
        };
        fut.await
    }

    async fn load_through_cluster<F, Fut>(
        &self,
        key: &str,
        min_fetched_ms: i64,
        tiers: Tiers,
        load: F,
    ) -> Result<Arc<CachedValue>, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedValue, E>> + Send + 'static,
    {
        let Some(cluster) = self.inner.cluster.clone() else {
            return self.load_and_store(key, tiers, load).await;
        };
        let cfg = &self.inner.config;
        let deadline = tokio::time::Instant::now() + cfg.flight_lease + cfg.flight_wait;
        loop {
            match cluster.join(key).await {
                Ok(FlightRole::Leader(permit)) => {
                    let r = self.load_and_store(key, tiers, load).await;
                    permit.complete().await;
                    return r;
                }
                Ok(FlightRole::Follower(waiter)) => {
                    metrics::counter!("maple_flight_joins_total", "scope" => "cluster")
                        .increment(1);
                    let this = self.clone();
                    let k = key.to_string();
                    let wait = cfg
                        .flight_wait
                        .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                    waiter
                        .wait(wait, || {
                            let this = this.clone();
                            let k = k.clone();
                            async move { this.l2_fetched_after(&k, min_fetched_ms).await.is_some() }
                        })
                        .await;
                    if let Some(v) = self.l2_fetched_after(key, min_fetched_ms).await {
                        return Ok(self.promote(key, v, tiers).await);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        metrics::counter!("maple_flight_takeovers_total", "reason" => "deadline")
                            .increment(1);
                        return self.load_and_store(key, tiers, load).await;
                    }
                    // The leader failed or died: try to take over (its lease is gone or about to be).
                }
                Err(e) => {
                    metrics::counter!("maple_flight_degraded_total").increment(1);
                    tracing::debug!(error = %e, "cluster flight unavailable: loading locally");
                    return self.load_and_store(key, tiers, load).await;
                }
            }
        }
    }

    async fn l2_fetched_after(&self, key: &str, min_fetched_ms: i64) -> Option<CachedValue> {
        let v = self.l2_get(key).await?;
        (v.fetched_at_ms >= min_fetched_ms && v.stale_until_ms > self.inner.clock.now_ms())
            .then_some(v)
    }

    async fn load_and_store<F, Fut>(
        &self,
        key: &str,
        tiers: Tiers,
        load: F,
    ) -> Result<Arc<CachedValue>, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<CachedValue, E>> + Send + 'static,
    {
        let started = tokio::time::Instant::now();
        let mut v = load().await?;
        v.load_ms = started.elapsed().as_millis().min(u32::MAX as u128) as u32;
        let v = Arc::new(v);
        self.put_in(key, v.clone(), tiers).await;
        Ok(v)
    }
}
