//! Durable Redis writes (`docs/adr/0012-durable-redis-writes.md`): the failover drill's durable probe loses
//! nothing, run after run on a real master + replica + three Sentinels.

use std::time::{Duration, Instant};

use crate::admin::{TOKEN, admin, sentinel_settings, wait_master};
use crate::harness::{SentinelTopology, redis_cmd};
use crate::helpers::spawn_app_with;

/// Polls (bounded) until `master` has its replica `replica` online and every Sentinel names `master` and
/// knows `replica` as a healthy replica: only then does a Sentinel accept the next planned failover.
async fn wait_settled(topo: &SentinelTopology, master: u16, replica: u16, within: Duration) {
    let started = Instant::now();
    loop {
        let info = redis_cmd(master, &["INFO", "replication"]).unwrap_or_default();
        let replica_online =
            info.contains("role:master") && info.contains(&format!("port={replica},state=online"));
        let sentinels_agree = topo.sentinels.iter().all(|s| {
            let addr = redis_cmd(
                s.port,
                &["SENTINEL", "get-master-addr-by-name", &topo.master_name],
            )
            .unwrap_or_default();
            let replicas =
                redis_cmd(s.port, &["SENTINEL", "replicas", &topo.master_name]).unwrap_or_default();
            addr.contains(&master.to_string())
                && replicas.contains(&replica.to_string())
                && !replicas.contains("s_down")
                && !replicas.contains("disconnected")
        });
        if replica_online && sentinels_agree {
            return;
        }
        assert!(
            started.elapsed() < within,
            "topology not settled with master {master} and replica {replica}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_failover_drills_lose_no_durable_write() {
    let topo = SentinelTopology::start();
    let app = spawn_app_with(sentinel_settings(&topo)).await;
    let (mut master, mut replica) = (topo.master.port, topo.replica.port);
    for run in 1..=3 {
        wait_settled(&topo, master, replica, Duration::from_secs(60)).await;
        wait_master(&app, master, Duration::from_secs(30)).await;
        let (status, report) = admin(
            &app,
            reqwest::Method::POST,
            "/admin/drills/redis-failover",
            Some(TOKEN),
        )
        .await;
        assert_eq!(status, 200, "run {run}: {report}");
        eprintln!("failover drill run {run}: {report}");
        assert_eq!(
            (report["old_master"].clone(), report["new_master"].clone()),
            (
                format!("127.0.0.1:{master}").into(),
                format!("127.0.0.1:{replica}").into()
            ),
            "run {run}: {report}"
        );
        assert!(
            report["switch_detected_ms"].is_u64(),
            "run {run}: the switch was seen: {report}"
        );
        assert!(
            report["acknowledged_writes"].as_u64().unwrap_or(0) > 0,
            "run {run}: durable probe writes were acknowledged: {report}"
        );
        assert_eq!(
            report["lost_writes"], 0,
            "run {run}: no acknowledged durable write lost: {report}"
        );
        assert!(
            report["lost_disposable_writes"].is_u64() && report["note"].is_string(),
            "run {run}: the plain probe is reported and explained: {report}"
        );
        std::mem::swap(&mut master, &mut replica);
    }
}
