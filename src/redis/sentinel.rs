//! The Sentinel watcher: follows master switches at once instead of waiting for the old master's demotion.
//!
//! Contract: [`run_watcher`] keeps connections to every configured Sentinel, subscribed to
//! `+switch-master` and `+promoted-slave` (the earlier of the two announcements), and also polls each
//! Sentinel every second for its configuration epoch and master address (so a message missed during a
//! Sentinel reconnect is caught within a second). When the master address of our master name changes, it
//! records the new address and the time in [`MasterState`], broadcasts a [`SwitchEvent`], and forces every
//! registered client (the command client, the pub/sub client, lock clients) to reconnect — fred, in Sentinel
//! mode, then asks the Sentinels for the master again. Without this, fred keeps writing to the old master until
//! Sentinel demotes it (~10 s in a planned failover), and those writes are lost.
//!
//! Switches only move forward. For a second or two after a promotion the Sentinels that did not lead it still
//! name the old master; a polled answer counts only when its configuration epoch is newer than the one the
//! watcher knows (an announcement raises the known epoch by one), so a stale Sentinel never switches the
//! gateway back and forth (each flap would reconnect every client).
//!
//! Every second the watcher also checks where each registered client is connected: a client that stays
//! connected to a server other than the known master for [`MISPLACED_CHECKS`] checks in a row (fred asked a
//! stale Sentinel while something else listened at the old address) is reconnected and counted in
//! `maple_redis_misplaced_reconnects_total`.
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
/// Consecutive once-a-second checks a client may spend connected to a server other than the known master
/// before it is reconnected (a reconnect in progress gets that long to land).
pub const MISPLACED_CHECKS: u32 = 3;

/// Where the Sentinels are and which master they watch. `Debug` shows whether a password is set, never
/// the password.
#[derive(Clone)]
pub struct SentinelSettings {
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for SentinelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelSettings")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
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
    /// The newest Sentinel configuration epoch known (raised by one on an announced switch until a Sentinel
    /// reports the real one).
    pub config_epoch: Option<u64>,
}

/// `host:port` of the server a client is connected to, while it is connected.
fn connected_to(client: &impl ClientLike) -> Option<String> {
    super::server_address(client).filter(|_| client.is_connected())
}

/// A client that must follow a switch.
#[derive(Clone)]
pub enum Follower {
    Client(Client),
    Subscriber(SubscriberClient),
}

impl Follower {
    /// `host:port` of the server the client is connected to, while it is connected.
    fn connected_to(&self) -> Option<String> {
        match self {
            Follower::Client(c) => connected_to(c),
            Follower::Subscriber(c) => connected_to(c),
        }
    }

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
    /// Each registered client and the checks in a row it was found connected elsewhere.
    followers: Mutex<Vec<(Follower, u32)>>,
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

/// Where a master address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// `+switch-master` / `+promoted-slave`: a Sentinel has just taken the new configuration.
    Announced,
    /// A Sentinel's answer to a poll, with the configuration epoch it holds.
    Polled { epoch: u64 },
}

impl MasterState {
    pub fn info(&self) -> MasterInfo {
        self.info.lock().expect("poisoned").clone()
    }

    /// Registers a client to be reconnected on every switch.
    pub fn follow(&self, f: Follower) {
        self.followers.lock().expect("poisoned").push((f, 0));
    }

    /// Switch notifications (for drills and tests).
    pub fn subscribe(&self) -> broadcast::Receiver<SwitchEvent> {
        self.events.subscribe()
    }

    /// Records what a Sentinel reported; on a change, moves every follower. A polled answer older than the
    /// known configuration is ignored (see the module doc).
    pub async fn observe(&self, address: String, report: Report) {
        let event = {
            let mut info = self.info.lock().expect("poisoned");
            let known = info.config_epoch;
            if let Report::Polled { epoch } = report {
                let newer =
                    known.is_none_or(|k| epoch > k || (epoch == k && info.address.is_none()));
                if !newer {
                    return;
                }
                info.config_epoch = Some(epoch);
            }
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
                    if report == Report::Announced {
                        info.config_epoch = known.map(|e| e + 1);
                    }
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
            let followers: Vec<Follower> = self
                .followers
                .lock()
                .expect("poisoned")
                .iter()
                .map(|(f, _)| f.clone())
                .collect();
            futures::future::join_all(followers.iter().map(|f| f.reconnect())).await;
            let _ = self.events.send(ev);
        }
    }

    /// Reconnects every client found connected to a server other than the known master for
    /// [`MISPLACED_CHECKS`] checks in a row; returns how many were reconnected.
    pub async fn check_followers(&self) -> usize {
        let Some(master) = self.info().address else {
            return 0;
        };
        let misplaced: Vec<(Follower, String)> = {
            let mut followers = self.followers.lock().expect("poisoned");
            let mut out = Vec::new();
            for (f, strikes) in followers.iter_mut() {
                match f.connected_to() {
                    Some(server) if server != master => {
                        *strikes += 1;
                        if *strikes >= MISPLACED_CHECKS {
                            *strikes = 0;
                            out.push((f.clone(), server));
                        }
                    }
                    _ => *strikes = 0,
                }
            }
            out
        };
        for (f, server) in &misplaced {
            tracing::warn!(%server, %master, "a redis client stays connected to a server that is not the master: reconnecting it");
            metrics::counter!("maple_redis_misplaced_reconnects_total").increment(1);
            f.reconnect().await;
        }
        misplaced.len()
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
                    subscribed = sub
                        .subscribe(vec![SWITCH_CHANNEL, PROMOTED_CHANNEL])
                        .await
                        .is_ok();
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
                                state.observe(addr, Report::Announced).await;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => {
                            rx = sub.message_rx();
                            subscribed = false;
                        }
                    },
                    _ = poll.tick() => {
                        if let Some((addr, epoch)) = poll_master(&cmd, &master).await {
                            state.observe(addr, Report::Polled { epoch }).await;
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
    {
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let mut check = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = check.tick() => {
                        state.check_followers().await;
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// One Sentinel's configuration epoch and master address. The epoch is read first: the address read after
/// it is at least as new, so an answer is never credited with a newer epoch than its address.
async fn poll_master(cmd: &SentinelClient, master: &str) -> Option<(String, u64)> {
    let fields: std::collections::HashMap<String, String> = cmd.master(master).await.ok()?;
    let epoch = fields.get("config-epoch")?.parse().ok()?;
    let addr = addr_from_reply(cmd.get_master_addr_by_name(master).await.ok()?)?;
    Some((addr, epoch))
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

    #[test]
    fn sentinel_settings_never_show_the_password_in_debug() {
        let s = SentinelSettings {
            sentinels: vec![("127.0.0.1".into(), 26379)],
            master: "mymaster".into(),
            password: Some("hunter2-sentinel-secret".into()),
        };
        let shown = format!("{s:?} {s:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("mymaster") && shown.contains("26379"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_changed_address_is_a_switch_and_the_first_is_not() {
        let s = MasterState::default();
        let mut rx = s.subscribe();
        s.observe("h:1".into(), Report::Polled { epoch: 0 }).await;
        assert_eq!(s.info().switches, 0);
        s.observe("h:1".into(), Report::Polled { epoch: 0 }).await;
        s.observe("h:2".into(), Report::Polled { epoch: 1 }).await;
        let info = s.info();
        assert_eq!(info.address.as_deref(), Some("h:2"));
        assert_eq!((info.switches, info.config_epoch), (1, Some(1)));
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.old.as_deref(), Some("h:1"));
        assert_eq!(ev.new, "h:2");
    }

    #[tokio::test]
    async fn a_stale_sentinel_never_switches_back_after_an_announcement() {
        let s = MasterState::default();
        s.observe("old:1".into(), Report::Polled { epoch: 4 }).await;
        // The leader announces the promotion; the other Sentinels still hold epoch 4 and the old master.
        s.observe("new:2".into(), Report::Announced).await;
        assert_eq!(s.info().config_epoch, Some(5));
        for _ in 0..3 {
            s.observe("old:1".into(), Report::Polled { epoch: 4 }).await;
        }
        // The same announcement from every Sentinel that takes the new configuration changes nothing.
        s.observe("new:2".into(), Report::Announced).await;
        // The leader's real epoch (elections may have skipped some) replaces the estimate.
        s.observe("new:2".into(), Report::Polled { epoch: 7 }).await;
        s.observe("old:1".into(), Report::Polled { epoch: 5 }).await;
        let info = s.info();
        assert_eq!(info.address.as_deref(), Some("new:2"));
        assert_eq!((info.switches, info.config_epoch), (1, Some(7)));
    }

    #[tokio::test]
    async fn a_missed_announcement_is_caught_by_a_newer_poll_and_an_equal_epoch_never_switches() {
        let s = MasterState::default();
        s.observe("old:1".into(), Report::Polled { epoch: 4 }).await;
        s.observe("new:2".into(), Report::Polled { epoch: 4 }).await;
        assert_eq!(s.info().address.as_deref(), Some("old:1"));
        s.observe("new:2".into(), Report::Polled { epoch: 5 }).await;
        let info = s.info();
        assert_eq!(info.address.as_deref(), Some("new:2"));
        assert_eq!(info.switches, 1);
    }
}

/// What the drill's JSON says about its two probes.
pub const DRILL_NOTE: &str = "lost_writes counts durable-probe writes (SADD, acknowledged only after WAIT 1 saw a \
replica take it, as the likes' staging writes are) missing from the new master: it must be 0. \
lost_disposable_writes counts plain INCRs (fire-and-forget, like cache values, leases and limiter state) that \
the old master acknowledged but the new master does not have: writes taken between the promotion and the \
gateway's switch are erased when the old master resyncs. Replication is asynchronous, so this figure is \
expected above 0; such a loss costs an upstream call or a lease, never an acknowledged like.";

/// The result of a planned failover drill.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FailoverReport {
    pub old_master: Option<String>,
    pub new_master: Option<String>,
    /// From the request to the watcher seeing the switch.
    pub switch_detected_ms: Option<u64>,
    /// From the request to the first plain probe write acknowledged after the switch (on the new master).
    pub first_write_ok_ms: Option<u64>,
    /// From the request to the first durable probe write acknowledged after the switch (it needs a replica
    /// of the new master: the old one, once Sentinel has made it a replica).
    pub first_durable_write_ok_ms: Option<u64>,
    /// Probe writes (either probe) that failed with an error during the drill.
    pub errors_during_drill: u64,
    /// Durable probe writes acknowledged (a replica had them, per `WAIT`).
    pub acknowledged_writes: u64,
    /// Durable probe writes not acknowledged: `WAIT` counted no replica in time, or the master had none (the
    /// probe keeps going; durable writers retry these).
    pub unacknowledged_writes: u64,
    /// Acknowledged durable probe writes missing from the new master. Must be 0.
    pub lost_writes: Option<u64>,
    /// Plain probe writes (`INCR`) acknowledged by a master.
    pub acknowledged_disposable_writes: u64,
    /// The plain probe counter read back from the new master.
    pub final_disposable_counter: Option<u64>,
    /// Acknowledged plain writes missing from the new master (see [`DRILL_NOTE`]).
    pub lost_disposable_writes: Option<u64>,
    /// What the two loss figures mean.
    pub note: &'static str,
}

/// How long the probes may take to get their first acknowledged write before the failover is asked for.
const WARM_UP: Duration = Duration::from_secs(2);

/// How long the drill waits after the switch for the first acknowledged durable write: until the new master
/// has a replica online (the old master, once Sentinel has demoted it and its full sync is done — about 15 s
/// with Redis's defaults, so a bound of 15 s left the figure `null` about as often as not).
const DURABLE_RESUME_WAIT: Duration = Duration::from_secs(30);

/// How long deleting a probe key may wait for the command client to be on the known master.
const PROBE_DELETE_WAIT: Duration = Duration::from_secs(10);

/// The probe keys expire by themselves after this long (a backstop: the drill deletes them).
const PROBE_TTL_MS: i64 = 60_000;

/// What the probes observed (shared with their tasks).
#[derive(Default)]
struct Probes {
    plain_acked: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
    unacked: std::sync::atomic::AtomicU64,
    switched: std::sync::atomic::AtomicBool,
    first_ok_ms: Mutex<Option<u64>>,
    first_durable_ok_ms: Mutex<Option<u64>>,
    /// Members of the durable probe set that were acknowledged.
    durable_acked: Mutex<Vec<u64>>,
}

impl Probes {
    fn after_switch(&self, slot: &Mutex<Option<u64>>, started: tokio::time::Instant) {
        if self.switched.load(std::sync::atomic::Ordering::SeqCst) {
            let mut f = slot.lock().expect("poisoned");
            if f.is_none() {
                *f = Some(started.elapsed().as_millis() as u64);
            }
        }
    }
}

/// Asks a Sentinel to fail the master over and measures what the gateway saw, with two probes writing every
/// 10 ms during the drill: a plain `INCR` through the gateway's command client (the disposable class) and an
/// `SADD` of a sequence number through `durable` (the durable class: acknowledged only when `WAIT` saw a
/// replica take it). Afterwards both are read back from the new master: `lost_writes` is the number of
/// acknowledged durable members missing, `lost_disposable_writes` the acknowledged increments missing.
///
/// The failover is asked for once both probes have an acknowledged write (at most [`WARM_UP`]), so that
/// each figure covers writes on both sides of the switch.
///
/// Bounded: connecting to each Sentinel takes at most 2 s, the switch is awaited at most `max_wait`, the
/// first write after it at most 5 s more (the first durable write, which needs the new master to have a
/// replica online, at most [`DURABLE_RESUME_WAIT`] more). Whatever way it ends — a report, an error, or `cancel` firing (the
/// request that asked for it went away) — the probes stop writing, every Sentinel client it opened is quit,
/// and the probe keys are deleted on the master the watcher knows (on cancellation after the switch is
/// awaited, bounded by `max_wait`; each delete waits at most [`PROBE_DELETE_WAIT`] for the command client to
/// be on that master, since a delete on the demoted one is undone by its resync; the keys also expire after
/// a minute). A cancelled drill returns an error.
#[allow(clippy::too_many_arguments)]
pub async fn failover_drill(
    client: &Client,
    durable: Arc<super::durable::DurableWrites>,
    sentinels: &[(String, u16)],
    master: &str,
    password: Option<String>,
    state: &MasterState,
    max_wait: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<FailoverReport, super::RedisError> {
    use std::sync::atomic::Ordering;

    let mut events = state.subscribe();
    let old = state.info().address;
    let key = format!("maple:v1:drill:probe:{:016x}", rand::random::<u64>());
    let durable_key = format!("{key}:durable");
    let started = tokio::time::Instant::now();
    let probes = Arc::new(Probes::default());
    let stop = tokio_util::sync::CancellationToken::new();
    // Stops the probes however this function is left (it is also dropped when its task is aborted).
    let _stop_probe = stop.clone().drop_guard();

    let plain = {
        let (client, key, probes, stop) =
            (client.clone(), key.clone(), probes.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                match client.incr::<i64, _>(&key).await {
                    Ok(n) => {
                        if n == 1 {
                            let _ = client.pexpire::<i64, _>(&key, PROBE_TTL_MS, None).await;
                        }
                        probes.plain_acked.fetch_add(1, Ordering::SeqCst);
                        probes.after_switch(&probes.first_ok_ms, started);
                    }
                    Err(_) => {
                        probes.errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    };
    let durable_probe = {
        let (key, probes, stop) = (durable_key.clone(), probes.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for seq in 1u64.. {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let member = seq.to_string();
                let write = durable.add_member(&key, &member, PROBE_TTL_MS);
                let r = tokio::select! {
                    r = write => r,
                    // A write cut short is simply not acknowledged.
                    _ = stop.cancelled() => break,
                };
                match r {
                    Ok(_) => {
                        probes.durable_acked.lock().expect("poisoned").push(seq);
                        probes.after_switch(&probes.first_durable_ok_ms, started);
                    }
                    Err(super::durable::DurableError::Redis(_)) => {
                        probes.errors.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => {
                        probes.unacked.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    };
    let tasks = [plain, durable_probe];
    let stop_probes = || {
        stop.cancel();
        futures::future::join_all(tasks)
    };

    // Both probes get an acknowledged write on the old master first (at most 2 s), so that a loss could show.
    let warm = async {
        while probes.plain_acked.load(Ordering::SeqCst) == 0
            || probes.durable_acked.lock().expect("poisoned").is_empty()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(WARM_UP, warm) => {}
        _ = cancel.cancelled() => {}
    }

    if cancel.is_cancelled() {
        // Nothing asked of the Sentinels yet: the keys can go at once.
        stop_probes().await;
        remove_probe(client, state, &key).await;
        remove_probe(client, state, &durable_key).await;
        return Err(super::RedisError::Unavailable(
            "failover drill abandoned by its request".into(),
        ));
    }

    let mut abandoned = false;
    let asked = tokio::select! {
        r = ask_failover(sentinels, master, password) => r,
        _ = cancel.cancelled() => {
            abandoned = true;
            Ok(())
        }
    };
    if let Err(e) = asked {
        stop_probes().await;
        remove_probe(client, state, &key).await;
        remove_probe(client, state, &durable_key).await;
        return Err(e);
    }

    let mut switch_seen = false;
    let mut switch_detected_ms = None;
    if !abandoned {
        tokio::select! {
            switch = tokio::time::timeout(max_wait, events.recv()) => {
                if let Ok(Ok(_)) = switch {
                    switch_seen = true;
                    probes.switched.store(true, Ordering::SeqCst);
                    switch_detected_ms = Some(started.elapsed().as_millis() as u64);
                }
            }
            _ = cancel.cancelled() => abandoned = true,
        }
    }
    if switch_seen && !abandoned {
        let settle = async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while probes.first_ok_ms.lock().expect("poisoned").is_none()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Durable writes resume once the new master has a replica online (the demoted old master).
            let deadline = tokio::time::Instant::now() + DURABLE_RESUME_WAIT;
            while probes
                .first_durable_ok_ms
                .lock()
                .expect("poisoned")
                .is_none()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // A few more writes on the new master, so the read-back covers both sides of the switch.
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        tokio::select! {
            _ = settle => {}
            _ = cancel.cancelled() => abandoned = true,
        }
    }
    stop_probes().await;

    if abandoned {
        // The failover may still be under way: a delete sent now could land on the master about to be
        // demoted and be undone by its resynchronisation. Wait (bounded) for the switch, then delete.
        if !switch_seen {
            let left = max_wait.saturating_sub(started.elapsed());
            let _ = tokio::time::timeout(left, events.recv()).await;
        }
        remove_probe(client, state, &key).await;
        remove_probe(client, state, &durable_key).await;
        tracing::warn!(
            probe = %key,
            "redis failover drill abandoned by its request: probes stopped and deleted"
        );
        return Err(super::RedisError::Unavailable(
            "failover drill abandoned by its request".into(),
        ));
    }

    let final_counter = client.get::<Option<u64>, _>(&key).await.ok().flatten();
    let members: Option<std::collections::HashSet<u64>> = client
        .smembers::<Vec<String>, _>(&durable_key)
        .await
        .ok()
        .map(|m| m.iter().filter_map(|s| s.parse().ok()).collect());
    remove_probe(client, state, &key).await;
    remove_probe(client, state, &durable_key).await;
    let plain_acked = probes.plain_acked.load(Ordering::SeqCst);
    let durable_acked = std::mem::take(&mut *probes.durable_acked.lock().expect("poisoned"));
    let first_write_ok_ms = *probes.first_ok_ms.lock().expect("poisoned");
    let first_durable_write_ok_ms = *probes.first_durable_ok_ms.lock().expect("poisoned");
    Ok(FailoverReport {
        old_master: old,
        new_master: state.info().address,
        switch_detected_ms,
        first_write_ok_ms,
        first_durable_write_ok_ms,
        errors_during_drill: probes.errors.load(Ordering::SeqCst),
        acknowledged_writes: durable_acked.len() as u64,
        unacknowledged_writes: probes.unacked.load(Ordering::SeqCst),
        lost_writes: members
            .map(|m| durable_acked.iter().filter(|s| !m.contains(s)).count() as u64),
        acknowledged_disposable_writes: plain_acked,
        final_disposable_counter: final_counter,
        lost_disposable_writes: final_counter.map(|f| plain_acked.saturating_sub(f)),
        note: DRILL_NOTE,
    })
}

/// A Sentinel client that is quit however its owner is left (connected or still trying to connect).
struct QuitOnDrop(SentinelClient);

impl Drop for QuitOnDrop {
    fn drop(&mut self) {
        let client = self.0.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), client.quit()).await;
            });
        }
    }
}

/// Asks the Sentinels in turn to fail `master` over, until one accepts.
async fn ask_failover(
    sentinels: &[(String, u16)],
    master: &str,
    password: Option<String>,
) -> Result<(), super::RedisError> {
    let mut asked = Err(super::RedisError::Unavailable(
        "no Sentinel answered".into(),
    ));
    for (host, port) in sentinels {
        let sc = QuitOnDrop(sentinel_client(host, *port, password.clone()));
        sc.0.connect();
        if tokio::time::timeout(Duration::from_secs(2), sc.0.wait_for_connect())
            .await
            .is_err()
        {
            continue;
        }
        let r: Result<String, _> = sc.0.failover(master).await;
        match r {
            Ok(_) => {
                asked = Ok(());
                break;
            }
            Err(e) => asked = Err(e.into()),
        }
    }
    asked
}

/// Deletes the probe key and checks it is gone, retrying for a few seconds (the client may be reconnecting
/// to a new master).
async fn remove_probe(client: &Client, state: &MasterState, key: &str) {
    // Only a delete on the master the watcher knows counts: one that lands on a server about to be demoted
    // (the command client is still there for up to MISPLACED_CHECKS seconds after a switch) is undone when
    // that server resyncs from the new master.
    let deadline = tokio::time::Instant::now() + PROBE_DELETE_WAIT;
    loop {
        let master = state.info().address;
        if master.is_some() && connected_to(client) == master {
            let deleted = client.del::<i64, _>(key).await.is_ok();
            if deleted && client.exists::<i64, _>(key).await.is_ok_and(|n| n == 0) {
                return;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!(probe = %key, "failover drill probe key not confirmed deleted on the master; it expires within a minute");
}
