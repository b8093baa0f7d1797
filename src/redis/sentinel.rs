//! The Sentinel watcher: follows master switches at once instead of waiting for the old master's demotion.
//!
//! Contract: [`run_watcher`] keeps connections to every configured Sentinel, subscribed to
//! `+switch-master` and `+promoted-slave` (the earlier of the two announcements), and also asks `SENTINEL get-master-addr-by-name` every second (so a message missed during
//! a Sentinel reconnect is caught within a second). When the master address of our master name changes, it
//! records the new address and the time in [`MasterState`], broadcasts a [`SwitchEvent`], and forces every
//! registered client (the command client, the pub/sub client, lock clients) to reconnect — fred, in Sentinel
//! mode, then asks the Sentinels for the master again. Without this, fred keeps writing to the old master until
//! Sentinel demotes it (~10 s in a planned failover), and those writes are lost.
//!
//! Failure modes: an unreachable Sentinel is retried by its client's reconnect policy; as long as one Sentinel
//! answers, switches are detected. The watcher never fails the gateway; it stops when cancelled.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::{SentinelClient, SubscriberClient};
use fred::prelude::*;
use fred::types::config::SentinelConfig;
use tokio::sync::broadcast;

/// The channel Sentinel announces master switches on.
pub const SWITCH_CHANNEL: &str = "+switch-master";
/// Published as soon as the chosen replica has been promoted — about a second before `+switch-master`
/// (which waits for the other replicas' reconfiguration). Acting on it shrinks the window in which writes
/// still go to the old master and are lost.
pub const PROMOTED_CHANNEL: &str = "+promoted-slave";

/// Where the Sentinels are and which master they watch.
#[derive(Clone, Debug)]
pub struct SentinelSettings {
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub password: Option<String>,
}

/// A detected master switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchEvent {
    pub old: Option<String>,
    pub new: String,
    pub at_ms: i64,
}

/// What the watcher knows about the master.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MasterInfo {
    /// `host:port` of the current master, once known.
    pub address: Option<String>,
    /// When the last switch was detected (Unix ms).
    pub changed_at_ms: Option<i64>,
    /// Switches detected since start.
    pub switches: u64,
}

/// A client that must follow a switch.
#[derive(Clone)]
pub enum Follower {
    Client(Client),
    Subscriber(SubscriberClient),
}

impl Follower {
    async fn reconnect(&self) {
        let r = match self {
            Follower::Client(c) => c.force_reconnection().await,
            Follower::Subscriber(c) => c.force_reconnection().await,
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "forced reconnection after a master switch failed; the reconnect policy retries");
        }
    }
}

/// Shared master state plus the clients to move on a switch.
pub struct MasterState {
    info: Mutex<MasterInfo>,
    followers: Mutex<Vec<Follower>>,
    events: broadcast::Sender<SwitchEvent>,
}

impl Default for MasterState {
    fn default() -> Self {
        MasterState {
            info: Mutex::new(MasterInfo::default()),
            followers: Mutex::new(Vec::new()),
            events: broadcast::channel(16).0,
        }
    }
}

impl MasterState {
    pub fn info(&self) -> MasterInfo {
        self.info.lock().expect("poisoned").clone()
    }

    /// Registers a client to be reconnected on every switch.
    pub fn follow(&self, f: Follower) {
        self.followers.lock().expect("poisoned").push(f);
    }

    /// Switch notifications (for drills and tests).
    pub fn subscribe(&self) -> broadcast::Receiver<SwitchEvent> {
        self.events.subscribe()
    }

    /// Records what a Sentinel reported; on a change, moves every follower.
    async fn observe(&self, address: String) {
        let event = {
            let mut info = self.info.lock().expect("poisoned");
            match &info.address {
                Some(a) if *a == address => None,
                None => {
                    info.address = Some(address);
                    None
                }
                Some(old) => {
                    let now = chrono::Utc::now().timestamp_millis();
                    let ev = SwitchEvent {
                        old: Some(old.clone()),
                        new: address.clone(),
                        at_ms: now,
                    };
                    info.address = Some(address);
                    info.changed_at_ms = Some(now);
                    info.switches += 1;
                    Some(ev)
                }
            }
        };
        if let Some(ev) = event {
            tracing::warn!(old = ?ev.old, new = %ev.new, "redis master switched: reconnecting every client");
            metrics::counter!("maple_redis_master_switches_total").increment(1);
            let followers = self.followers.lock().expect("poisoned").clone();
            futures::future::join_all(followers.iter().map(|f| f.reconnect())).await;
            let _ = self.events.send(ev);
        }
    }
}

/// A connected Sentinel client (for the watcher and for drills).
pub fn sentinel_client(host: &str, port: u16, password: Option<String>) -> SentinelClient {
    SentinelClient::new(
        SentinelConfig {
            host: host.to_string(),
            port,
            password,
            ..Default::default()
        },
        None,
        None,
        Some(ReconnectPolicy::new_exponential(0, 100, 2_000, 2)),
    )
}

fn parse_switch(payload: &str, master: &str) -> Option<String> {
    // "<master name> <old ip> <old port> <new ip> <new port>"
    let parts: Vec<&str> = payload.split_whitespace().collect();
    (parts.len() == 5 && parts[0] == master).then(|| format!("{}:{}", parts[3], parts[4]))
}

fn parse_promoted(payload: &str, master: &str) -> Option<String> {
    // "slave <ip>:<port> <ip> <port> @ <master name> <old master ip> <old master port>"
    let parts: Vec<&str> = payload.split_whitespace().collect();
    (parts.len() == 8 && parts[4] == "@" && parts[5] == master)
        .then(|| format!("{}:{}", parts[2], parts[3]))
}

fn addr_from_reply(v: Vec<String>) -> Option<String> {
    (v.len() == 2).then(|| format!("{}:{}", v[0], v[1]))
}

/// Runs the watcher until `cancel` fires.
pub async fn run_watcher(
    sentinels: Vec<(String, u16)>,
    master: String,
    password: Option<String>,
    state: Arc<MasterState>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for (host, port) in &sentinels {
        // Two connections per Sentinel: a subscribed connection accepts no other commands.
        let sub = sentinel_client(host, *port, password.clone());
        let cmd = sentinel_client(host, *port, password.clone());
        let state = state.clone();
        let master = master.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            sub.connect();
            cmd.connect();
            let _ = tokio::time::timeout(Duration::from_secs(2), sub.wait_for_connect()).await;
            let mut rx = sub.message_rx();
            let mut subscribed = false;
            let mut poll = tokio::time::interval(Duration::from_secs(1));
            loop {
                if !subscribed {
                    subscribed = sub.subscribe(vec![SWITCH_CHANNEL, PROMOTED_CHANNEL]).await.is_ok();
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    msg = rx.recv() => match msg {
                        Ok(m) => {
                            let payload = m.value.as_string().unwrap_or_default();
                            let addr = if &*m.channel == PROMOTED_CHANNEL {
                                parse_promoted(&payload, &master)
                            } else {
                                parse_switch(&payload, &master)
                            };
                            if let Some(addr) = addr {
                                state.observe(addr).await;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => {
                            rx = sub.message_rx();
                            subscribed = false;
                        }
                    },
                    _ = poll.tick() => {
                        if let Ok(v) = cmd.get_master_addr_by_name::<Vec<String>, _>(master.as_str()).await
                            && let Some(addr) = addr_from_reply(v)
                        {
                            state.observe(addr).await;
                        }
                        // After a reconnect the subscription is gone: subscribe again (idempotent).
                        subscribed = subscribed && sub.is_connected();
                    }
                }
            }
            let _ = sub.quit().await;
            let _ = cmd.quit().await;
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_switch_messages_for_our_master_only() {
        assert_eq!(
            parse_switch("mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster"),
            Some("127.0.0.1:6380".into())
        );
        assert_eq!(
            parse_switch("other 127.0.0.1 6379 127.0.0.1 6380", "mymaster"),
            None
        );
        assert_eq!(parse_switch("mymaster garbage", "mymaster"), None);
        assert_eq!(
            parse_promoted(
                "slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379",
                "mymaster"
            ),
            Some("127.0.0.1:6380".into())
        );
        assert_eq!(
            parse_promoted(
                "slave 127.0.0.1:6380 127.0.0.1 6380 @ other 127.0.0.1 6379",
                "mymaster"
            ),
            None
        );
    }

    #[tokio::test]
    async fn a_changed_address_is_a_switch_and_the_first_is_not() {
        let s = MasterState::default();
        let mut rx = s.subscribe();
        s.observe("h:1".into()).await;
        assert_eq!(s.info().switches, 0);
        s.observe("h:1".into()).await;
        s.observe("h:2".into()).await;
        let info = s.info();
        assert_eq!(info.address.as_deref(), Some("h:2"));
        assert_eq!(info.switches, 1);
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.old.as_deref(), Some("h:1"));
        assert_eq!(ev.new, "h:2");
    }
}

/// The result of a planned failover drill.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailoverReport {
    pub old_master: Option<String>,
    pub new_master: Option<String>,
    /// From the request to the watcher seeing the switch.
    pub switch_detected_ms: Option<u64>,
    /// From the request to the first acknowledged probe write after the switch (on the new master).
    pub first_write_ok_ms: Option<u64>,
    /// Probe writes that failed during the drill.
    pub errors_during_drill: u64,
    /// Probe writes acknowledged during the drill.
    pub acknowledged_writes: u64,
    /// The probe counter read back from the new master.
    pub final_counter: Option<u64>,
    /// Acknowledged writes missing from the new master.
    pub lost_writes: Option<u64>,
}

/// Asks a Sentinel to fail the master over and measures what the gateway saw: a probe counter is incremented
/// every 10 ms through the gateway's own client during the drill and read back from the new master.
pub async fn failover_drill(
    client: &Client,
    sentinels: &[(String, u16)],
    master: &str,
    password: Option<String>,
    state: &MasterState,
    max_wait: Duration,
) -> Result<FailoverReport, super::RedisError> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let mut events = state.subscribe();
    let old = state.info().address;
    let key = format!("maple:v1:drill:probe:{:016x}", rand::random::<u64>());
    let started = tokio::time::Instant::now();
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let switched = Arc::new(AtomicBool::new(false));
    let first_ok_ms = Arc::new(Mutex::new(None::<u64>));
    let stop = tokio_util::sync::CancellationToken::new();

    let probe = {
        let (client, key) = (client.clone(), key.clone());
        let (acked, errors, switched, first_ok_ms, stop) = (
            acked.clone(),
            errors.clone(),
            switched.clone(),
            first_ok_ms.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !stop.is_cancelled() {
                tick.tick().await;
                match client.incr::<i64, _>(&key).await {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::SeqCst);
                        if switched.load(Ordering::SeqCst) {
                            let mut f = first_ok_ms.lock().expect("poisoned");
                            if f.is_none() {
                                *f = Some(started.elapsed().as_millis() as u64);
                            }
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    };

    let mut asked = Err(super::RedisError::Unavailable(
        "no Sentinel answered".into(),
    ));
    for (host, port) in sentinels {
        let sc = sentinel_client(host, *port, password.clone());
        sc.connect();
        if tokio::time::timeout(Duration::from_secs(2), sc.wait_for_connect())
            .await
            .is_err()
        {
            continue;
        }
        let r: Result<String, _> = sc.failover(master).await;
        let _ = sc.quit().await;
        match r {
            Ok(_) => {
                asked = Ok(());
                break;
            }
            Err(e) => asked = Err(e.into()),
        }
    }
    if let Err(e) = asked {
        stop.cancel();
        let _ = probe.await;
        return Err(e);
    }

    let switch = tokio::time::timeout(max_wait, events.recv()).await;
    let switch_detected_ms = match &switch {
        Ok(Ok(_)) => {
            switched.store(true, Ordering::SeqCst);
            Some(started.elapsed().as_millis() as u64)
        }
        _ => None,
    };
    if switch_detected_ms.is_some() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while first_ok_ms.lock().expect("poisoned").is_none()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A few more writes on the new master, so the read-back covers both sides of the switch.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    let _ = probe.await;

    let final_counter = client.get::<Option<u64>, _>(&key).await.ok().flatten();
    let _ = client.del::<i64, _>(&key).await;
    let acknowledged = acked.load(Ordering::SeqCst);
    let first_write_ok_ms = *first_ok_ms.lock().expect("poisoned");
    Ok(FailoverReport {
        old_master: old,
        new_master: state.info().address,
        switch_detected_ms,
        first_write_ok_ms,
        errors_during_drill: errors.load(Ordering::SeqCst),
        acknowledged_writes: acknowledged,
        final_counter,
        lost_writes: final_counter.map(|f| acknowledged.saturating_sub(f)),
    })
}
