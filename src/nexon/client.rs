//! The upstream client the rest of the gateway calls: typed endpoints behind the resilience policy.
//!
//! Contract: [`NexonClient::ocid`], [`NexonClient::basic`] and [`NexonClient::item_equipment`] each make one
//! *logical* call through [`Resilience::call`] (hold → breaker → shared rate budget → attempt with timeout →
//! budgeted retries, inside an overall deadline) and then validate the body into its typed response; a body
//! that does not parse is [`NexonError::BadResponse`] (502, never retried, never hidden behind stale data).
//! The [`Priority`] says who is asking: interactive requests may wait briefly for a rate slot and are
//! retried; background refreshes never wait and are not retried. [`NexonClient::status`] is the snapshot
//! `/health/ready` shows; [`NexonClient::refusal`] tells the read path that a call would be refused right
//! now without reaching the upstream.
//!
//! Cloning is cheap and clones share the breaker, holds, budget and limiter: one client per process.

use std::sync::Arc;

use bytes::Bytes;

use super::alert::Alerter;
use super::error::NexonError;
use super::rate_limit::{RateConfig, RateLimiter};
use super::resilience::{Resilience, ResilienceConfig, UpstreamStatus};
use super::transport::{Endpoint, Transport};
use super::wire::{CharacterBasic, IdResponse};
use crate::config::UpstreamSettings;
use crate::expectation::model::ItemEquipment;
use crate::ids::{CharacterName, Ocid, Priority};
use crate::redis::RedisHandle;

/// Everything the client needs besides the base URL and key.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub resilience: ResilienceConfig,
    pub rate: RateConfig,
    /// The shared rate budget's Redis (`None`: local budget).
    pub redis: Option<RedisHandle>,
    pub alert_webhook: Option<String>,
    pub instance_id: String,
}

impl ClientOptions {
    /// The upstream settings group; the rate budget is the key type's unless the group sets it.
    pub fn from_settings(
        s: &UpstreamSettings,
        key: &str,
        redis: Option<RedisHandle>,
        instance_id: &str,
    ) -> Self {
        let (per_second, per_day) = RateConfig::defaults_for(key, s.uses_embedded_simulator());
        ClientOptions {
            resilience: ResilienceConfig::from_settings(s),
            rate: RateConfig {
                per_second: s.rate_per_s.unwrap_or(per_second),
                per_day: s.rate_per_day.unwrap_or(per_day),
                max_wait: s.rate_wait,
                instances: s.rate_instances,
            },
            redis,
            alert_webhook: s.alert_webhook.clone(),
            instance_id: instance_id.to_string(),
        }
    }
}

/// The client.
#[derive(Clone)]
pub struct NexonClient {
    transport: Transport,
    resilience: Arc<Resilience>,
}

impl std::fmt::Debug for NexonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NexonClient")
            .field("base", &self.transport.base_url())
            .finish_non_exhaustive()
    }
}

impl NexonClient {
    /// Builds the client (spawns the alert sender when a webhook is configured: call inside a runtime).
    pub fn new(
        base: &str,
        key: crate::config::Secret,
        options: ClientOptions,
    ) -> Result<Self, NexonError> {
        let limiter = RateLimiter::new(options.rate, key.expose(), options.redis);
        let alerts = Alerter::new(options.alert_webhook, options.instance_id);
        Ok(NexonClient {
            transport: Transport::new(base, key)?,
            resilience: Arc::new(Resilience::new(options.resilience, limiter, alerts)),
        })
    }

    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    /// Breaker, hold, rate budget and retry budget, as `/health/ready` shows them.
    /// The circuit breaker (operators force it through the admin API).
    pub fn breaker(&self) -> &super::breaker::Breaker {
        self.resilience.breaker()
    }

    pub fn status(&self) -> UpstreamStatus {
        self.resilience.status()
    }

    /// The error a call would fail with right now without reaching the upstream, if any.
    pub fn refusal(&self) -> Option<NexonError> {
        self.resilience.refusal()
    }

    async fn get(
        &self,
        ep: Endpoint,
        priority: Priority,
        query: &[(&str, &str)],
    ) -> Result<Bytes, NexonError> {
        let t = &self.transport;
        self.resilience
            .call(ep, priority, |timeout| t.get(ep, query, timeout))
            .await
    }

    /// `/id`: name → ocid.
    pub async fn ocid(&self, name: &CharacterName, priority: Priority) -> Result<Ocid, NexonError> {
        let body = self
            .get(Endpoint::Id, priority, &[("character_name", name.as_str())])
            .await?;
        let r: IdResponse = serde_json::from_slice(&body)
            .map_err(|e| NexonError::BadResponse(format!("id: {e}")))?;
        Ocid::parse(&r.ocid).map_err(|_| NexonError::BadResponse("id: malformed ocid".into()))
    }

    /// `/character/basic`.
    pub async fn basic(
        &self,
        ocid: &Ocid,
        date: Option<&str>,
        priority: Priority,
    ) -> Result<CharacterBasic, NexonError> {
        let mut q = vec![("ocid", ocid.as_str())];
        if let Some(d) = date {
            q.push(("date", d));
        }
        let body = self.get(Endpoint::Basic, priority, &q).await?;
        serde_json::from_slice(&body).map_err(|e| NexonError::BadResponse(format!("basic: {e}")))
    }

    /// `/character/item-equipment`: the raw bytes, not yet validated — the caller parses them with
    /// [`parse_item_equipment`] (CPU work it schedules itself) before using or storing them.
    pub async fn item_equipment_raw(
        &self,
        ocid: &Ocid,
        date: Option<&str>,
        priority: Priority,
    ) -> Result<Bytes, NexonError> {
        let mut q = vec![("ocid", ocid.as_str())];
        if let Some(d) = date {
            q.push(("date", d));
        }
        self.get(Endpoint::ItemEquipment, priority, &q).await
    }
}

/// Validates an `item-equipment` body into the engine's model ([`ItemEquipment::from_json_for_engine`]:
/// the whole body must be JSON of the payload's shape, only what the engine reads is kept); a body that does
/// not parse is the upstream's fault ([`NexonError::BadResponse`], 502 `UPSTREAM_BAD_RESPONSE`, never cached).
pub fn parse_item_equipment(body: &[u8]) -> Result<ItemEquipment, NexonError> {
    ItemEquipment::from_json_for_engine(body)
        .map_err(|e| NexonError::BadResponse(format!("item-equipment: {e}")))
}
