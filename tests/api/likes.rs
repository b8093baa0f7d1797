//! Likes end to end: the real application (one or two instances) with a real `redis-server` and a fresh
//! MariaDB database. The database outage is real too: the instances reach MariaDB through a TCP relay
//! that the test cuts (open connections dropped, new ones refused) and restores.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use maple_gateway::codec;
use maple_gateway::config::{DatabaseSettings, RedactedUrl, RedisSettings, Settings};
use maple_gateway::store::{Fence, LikeBatch, LikeRecord, Store, StoreError};
use serde_json::Value;

use crate::harness::{RedisServer, TestDatabase};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// A TCP relay to a local port that can be cut (every open connection dropped, new ones refused) and
/// restored: a database outage as the application sees it.
pub struct CutRelay {
    pub port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Workload {
    /// The expected totals of a list of likes (a liker counts once per character).
    pub(crate) fn of(likes: Vec<(String, String)>) -> Workload {
        let pairs: BTreeSet<(String, String)> = likes
            .iter()
            .map(|(c, l)| (c.to_ascii_lowercase(), l.clone()))
            .collect();
        let mut expected = BTreeMap::new();
        for (c, _) in &pairs {
            *expected.entry(c.clone()).or_insert(0) += 1;
        }
        Workload {
            likes,
            expected,
            distinct: pairs.len(),
        }
    }
}

impl CutRelay {
    pub async fn start(target: u16) -> CutRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (u, c) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let t = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(t.abort_handle());
            }
        });
        CutRelay {
            port,
            up,
            conns,
            accept,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    pub fn url(&self, db: &TestDatabase) -> String {
        format!("mysql://root@127.0.0.1:{}/{}", self.port, db.name)
    }
}

impl Drop for CutRelay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// 15,000 random (character, liker) likes over 500 characters and 2,000 likers, plus 5,000 repeats of
/// earlier ones, shuffled.
pub(crate) struct Workload {
    pub(crate) likes: Vec<(String, String)>,
    /// Distinct likers per character key.
    pub(crate) expected: BTreeMap<String, i64>,
    pub(crate) distinct: usize,
}

fn workload(seed: u64) -> Workload {
    let mut s = seed.max(1);
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut likes: Vec<(String, String)> = (0..15_000)
        .map(|_| {
            (
                format!("Maple{}", next() % 500),
                format!("liker-{}", next() % 2000),
            )
        })
        .collect();
    for _ in 0..5_000 {
        let i = (next() % likes.len() as u64) as usize;
        likes.push(likes[i].clone());
    }
    for i in (1..likes.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        likes.swap(i, j);
    }
    Workload::of(likes)
}

pub(crate) fn fast_likes(s: &mut Settings) {
    s.likes.flush = Duration::from_millis(100);
    s.likes.sync = Duration::from_millis(300);
}

async fn instance(
    redis_url: &str,
    db_url: &str,
    tweak: impl FnOnce(&mut Settings) + Send + 'static,
) -> TestApp {
    let (redis_url, db_url) = (redis_url.to_string(), db_url.to_string());
    spawn_app_with(move |s| {
        s.redis = RedisSettings::Standalone {
            url: RedactedUrl::new(redis_url),
        };
        s.database = DatabaseSettings::Mysql {
            url: RedactedUrl::new(db_url),
        };
        fast_likes(s);
        tweak(s);
    })
    .await
}

async fn post_like(app: &TestApp, character: &str, liker: &str) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/v2/characters/{character}/like")))
        .header("x-liker-id", liker)
        .send()
        .await
        .expect("request")
}

/// Sends likes round-robin over the instances, 64 at a time; returns the statuses.
pub(crate) async fn send(apps: &[&TestApp], likes: &[(String, String)]) -> Vec<u16> {
    futures::stream::iter(likes.iter().enumerate())
        .map(|(i, (c, l))| {
            let app = apps[i % apps.len()];
            async move { post_like(app, c, l).await.status().as_u16() }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

pub(crate) fn assert_all_ok(statuses: &[u16], what: &str) {
    let bad: BTreeMap<u16, usize> =
        statuses
            .iter()
            .filter(|s| **s != 200)
            .fold(BTreeMap::new(), |mut m, s| {
                *m.entry(*s).or_default() += 1;
                m
            });
    assert!(bad.is_empty(), "{what}: non-200 answers {bad:?}");
}

fn db_totals(db: &TestDatabase) -> (BTreeMap<String, i64>, usize) {
    let rows = db.query("SELECT name, like_count FROM characters WHERE like_count > 0");
    let map = rows
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, c)| (n.to_string(), c.parse().unwrap()))
        .collect();
    let pairs = db
        .query("SELECT COUNT(*) FROM character_likes")
        .parse()
        .unwrap();
    (map, pairs)
}

/// Waits until MySQL holds exactly the workload's distinct likes and counts.
pub(crate) async fn wait_for_exact_totals(db: &TestDatabase, w: &Workload, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (counts, pairs) = db_totals(db);
        if counts == w.expected && pairs == w.distinct {
            return;
        }
        if Instant::now() >= deadline {
            let total: i64 = counts.values().sum();
            let wrong: Vec<_> = w
                .expected
                .iter()
                .filter(|(c, n)| counts.get(*c) != Some(n))
                .take(5)
                .map(|(c, n)| (c.clone(), *n, counts.get(c).copied()))
                .collect();
            panic!(
                "MySQL totals not exact after {within:?}: {pairs} pairs / {total} counted, \
                 expected {} pairs; first differences (character, expected, got): {wrong:?}",
                w.distinct
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn like_count(app: &TestApp, character: &str) -> i64 {
    let (status, body) = app
        .get_json(&format!("/api/v2/characters/{character}/like"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["like_count"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_twenty_thousand_likes_reach_mysql_exactly() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let a = instance(&redis.url(), &db.url(), |_| {}).await;
    let b = instance(&redis.url(), &db.url(), |_| {}).await;
    let w = workload(7);
    let statuses = send(&[&a, &b], &w.likes).await;
    assert_all_ok(&statuses, "likes");
    wait_for_exact_totals(&db, &w, Duration::from_secs(30)).await;
    // The count read catches up with the database within a sync interval, on either instance.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for (i, (c, n)) in w.expected.iter().enumerate().step_by(10) {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(like_count(app, c).await, *n, "count of {c}");
    }
    let (c, l) = &w.likes[0];
    let (_, body) = a
        .get_json(&format!("/api/v2/characters/{c}/like?liker={l}"))
        .await;
    assert_eq!(body["liked"], true);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn likes_stay_exact_when_redis_is_restarted_in_the_middle() {
    let mut redis = RedisServer::start();
    let db = TestDatabase::create();
    // Syncs are rarer than flushes here, so Redis holds likes MySQL does not have yet when it dies.
    let slow_sync = |s: &mut Settings| {
        s.likes.flush = Duration::from_millis(50);
        s.likes.sync = Duration::from_millis(2000);
    };
    let a = instance(&redis.url(), &db.url(), slow_sync).await;
    let b = instance(&redis.url(), &db.url(), slow_sync).await;
    let w = workload(11);
    let third = w.likes.len() / 3;
    assert_all_ok(&send(&[&a, &b], &w.likes[..third]).await, "before");
    // Claimed batches stay at the head of the queue until acknowledged.
    let staged = || {
        crate::harness::redis_cmd(redis.port, &["LLEN", "maple:v1:likes:queue"])
            .and_then(|r| r.trim_start_matches(':').parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut sent = third;
    loop {
        assert_all_ok(
            &send(&[&a, &b], &w.likes[sent..sent + 200]).await,
            "staging",
        );
        sent += 200;
        tokio::time::sleep(Duration::from_millis(150)).await;
        if staged() >= 100 {
            break;
        }
        assert!(sent + 200 < 2 * third, "never caught likes staged in Redis");
    }
    // Redis dies with what it staged (no persistence); likes keep coming.
    tokio::task::block_in_place(|| redis.stop());
    assert_all_ok(
        &send(&[&a, &b], &w.likes[sent..2 * third]).await,
        "with Redis down",
    );
    tokio::task::block_in_place(|| redis.restart());
    assert_all_ok(&send(&[&a, &b], &w.likes[2 * third..]).await, "after");
    wait_for_exact_totals(&db, &w, Duration::from_secs(40)).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn likes_lost_from_the_tail_of_the_redis_queue_are_pushed_again() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let app = instance(&redis.url(), &db.url(), |s| {
        s.likes.flush = Duration::from_millis(50);
        s.likes.sync = Duration::from_millis(3000);
    })
    .await;
    let mut likes: Vec<(String, String)> = Vec::new();
    // A failover to a replica that missed the last writes: the queue's tail and the push counter roll
    // back together (same epoch, so nothing else tells the instance). Replication keeps order, so the
    // lost writes all come after any claim the replica has: the tail never reaches into a claimed batch.
    const ROLL_BACK: &str = "local claimed = tonumber(redis.call('hget', KEYS[3], 'n') or '0') \
         if redis.call('llen', KEYS[1]) - claimed < 300 then return 0 end \
         for i = 1, 300 do redis.call('rpop', KEYS[1]) end \
         redis.call('decrby', KEYS[2], 300) return 1";
    let mut round = 0;
    loop {
        let batch: Vec<(String, String)> = (0..400)
            .map(|i| (format!("Tail{}", i % 9), format!("r{round}-{i}")))
            .collect();
        assert_all_ok(&send(&[&app], &batch).await, "likes");
        likes.extend(batch);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = crate::harness::redis_cmd(
            redis.port,
            &[
                "EVAL",
                ROLL_BACK,
                "3",
                "maple:v1:likes:queue",
                "maple:v1:likes:pushed",
                "maple:v1:likes:inflight",
            ],
        );
        if r.as_deref() == Some(":1") {
            break;
        }
        round += 1;
        assert!(round < 10, "never caught 300 likes staged in Redis: {r:?}");
    }
    let pairs: BTreeSet<(String, String)> = likes
        .iter()
        .map(|(c, l)| (c.to_ascii_lowercase(), l.clone()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, stored) = db_totals(&db);
        if stored == pairs.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stored} of {} likes reached MySQL",
            pairs.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counted: i64 = db
        .query("SELECT SUM(like_count) FROM characters")
        .parse()
        .unwrap();
    assert_eq!(counted as usize, pairs.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn likes_stay_exact_when_mariadb_is_unavailable_for_ten_seconds() {
    let redis = RedisServer::start();
    let db = TestDatabase::create();
    let relay = CutRelay::start(db.port).await;
    let a = instance(&redis.url(), &relay.url(&db), |_| {}).await;
    let b = instance(&redis.url(), &relay.url(&db), |_| {}).await;
    let w = workload(23);
    let (first, second) = (7_000, 13_000);
    assert_all_ok(&send(&[&a, &b], &w.likes[..first]).await, "before");
    relay.cut();
    let cut_at = Instant::now();
    assert_all_ok(
        &send(&[&a, &b], &w.likes[first..second]).await,
        "with MariaDB down",
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(cut_at.elapsed())).await;
    let (_, pairs_during) = db_totals(&db);
    assert!(pairs_during < w.distinct, "the outage was real");
    relay.restore();
    assert_all_ok(&send(&[&a, &b], &w.likes[second..]).await, "after");
    wait_for_exact_totals(&db, &w, Duration::from_secs(40)).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_and_mariadb_down_the_buffer_fills_to_its_bound_then_503_and_nothing_accepted_is_lost()
 {
    let mut redis = RedisServer::start();
    let db = TestDatabase::create();
    let relay = CutRelay::start(db.port).await;
    let app = instance(&redis.url(), &relay.url(&db), |s| s.likes.buffer_max = 50).await;
    tokio::task::block_in_place(|| redis.stop());
    relay.cut();
    let likes: Vec<(String, String)> = (0..80)
        .map(|i| (format!("Bound{}", i % 7), format!("u{i}")))
        .collect();
    let answers: Vec<(usize, u16, Option<String>, Value)> =
        futures::stream::iter(likes.iter().enumerate())
            .map(|(i, (c, l))| {
                let app = &app;
                async move {
                    let r = post_like(app, c, l).await;
                    let status = r.status().as_u16();
                    let retry = r
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_string());
                    (i, status, retry, r.json().await.unwrap_or(Value::Null))
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
    let accepted: BTreeSet<usize> = answers.iter().filter(|a| a.1 == 200).map(|a| a.0).collect();
    assert_eq!(accepted.len(), 50, "exactly the bound is accepted");
    for (_, status, retry, body) in answers.iter().filter(|a| a.1 != 200) {
        assert_eq!(*status, 503);
        assert!(retry.is_some(), "Retry-After on 503");
        assert_eq!(body["error"]["code"], "LIKES_UNAVAILABLE", "{body}");
    }
    // A repeat of an accepted like is still answered.
    let i = *accepted.iter().next().unwrap();
    assert_eq!(
        post_like(&app, &likes[i].0, &likes[i].1).await.status(),
        200
    );

    tokio::task::block_in_place(|| redis.restart());
    relay.restore();
    let want: BTreeSet<(String, String)> = accepted
        .iter()
        .map(|i| (likes[*i].0.to_ascii_lowercase(), likes[*i].1.clone()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = db.query("SELECT character_name, liker FROM character_likes");
        let got: BTreeSet<(String, String)> = rows
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(c, l)| (c.to_string(), l.to_string()))
            .collect();
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "accepted likes did not all reach MySQL: {} of {}",
            got.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counted: i64 = db
        .query("SELECT SUM(like_count) FROM characters")
        .parse()
        .unwrap();
    assert_eq!(counted, 50);
    // MySQL has them before the instance knows: its buffer drops them at its next flush after the
    // sync's acknowledgement, and only then does a new like fit again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = post_like(&app, "Bound1", "late").await.status().as_u16();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "a like after recovery");
        assert!(
            Instant::now() < deadline,
            "the buffer never made room after recovery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn like_endpoints_validate_input_and_count_each_liker_once() {
    let app = spawn_app().await;
    let bad = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    };
    let no_header = app
        .http
        .post(app.url("/api/v2/characters/Evan/like"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad(no_header).await, (400, "BAD_REQUEST".to_string()));
    assert_eq!(
        bad(post_like(&app, "Evan", &"x".repeat(65)).await).await.0,
        400
    );
    assert_eq!(bad(post_like(&app, "Ev..an", "u1").await).await.0, 400);
    assert_eq!(
        bad(app
            .http
            .post(app.url("/api/v2/characters/Evan/like?x=1"))
            .header("x-liker-id", "u1")
            .send()
            .await
            .unwrap())
        .await
        .0,
        400
    );

    let like = |who: &'static str| {
        let app = &app;
        async move {
            let r = post_like(app, "Evan", who).await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        like("u1").await,
        serde_json::json!({"liked": true, "like_count": 1})
    );
    assert_eq!(
        like("u1").await,
        serde_json::json!({"liked": true, "like_count": 1})
    );
    assert_eq!(like("u2").await["like_count"], 2);
    // Names are case-insensitive: the same character.
    let r = post_like(&app, "EVAN", "u3").await;
    assert_eq!(r.json::<Value>().await.unwrap()["like_count"], 3);
    let (s, body) = app.get_json("/api/v2/characters/evan/like?liker=u2").await;
    assert_eq!(s, 200);
    assert_eq!(body, serde_json::json!({"liked": true, "like_count": 3}));
    let (_, body) = app
        .get_json("/api/v2/characters/evan/like?liker=nobody")
        .await;
    assert_eq!(body["liked"], false);
    let (_, body) = app.get_json("/api/v2/characters/evan/like").await;
    assert_eq!(body, serde_json::json!({"like_count": 3}));
    let (s, _) = app.get_json("/api/v2/characters/evan/like?who=u1").await;
    assert_eq!(s, 400);
    app.stop().await;
}

#[tokio::test]
async fn the_mysql_store_applies_like_batches_once_under_the_fence_and_keeps_payloads_gzipped() {
    let db = TestDatabase::create();
    let store = Store::connect(&DatabaseSettings::Mysql {
        url: RedactedUrl::new(db.url()),
    })
    .await
    .unwrap();
    // Applying the migrations again is a no-op.
    Store::connect(&DatabaseSettings::Mysql {
        url: RedactedUrl::new(db.url()),
    })
    .await
    .unwrap();
    let rec = |c: &str, l: &str| LikeRecord {
        character: c.into(),
        liker: l.into(),
        at_ms: 1,
    };
    let fence = |token| Fence {
        lock: "likes-sync".into(),
        token,
    };
    let b1 = LikeBatch {
        id: "b1".into(),
        // 1,200 distinct pairs (i mod 3, i mod 700 repeat together only every 2,100), then 100 repeats.
        likes: (0..1200)
            .chain(0..100)
            .map(|i| rec(&format!("c{}", i % 3), &format!("l{}", i % 700)))
            .collect(),
    };
    let r = store.apply_likes(&b1, &fence(5)).await.unwrap();
    assert_eq!(r.inserted, 1200);
    assert_eq!(r.counts.iter().map(|(_, n)| n).sum::<i64>(), 1200);
    let again = store.apply_likes(&b1, &fence(5)).await.unwrap();
    assert!(again.already_applied);
    assert_eq!(again.inserted, 0);
    let total: i64 = db
        .query("SELECT SUM(like_count) FROM characters")
        .parse()
        .unwrap();
    assert_eq!(total, r.inserted as i64);
    let stale = store
        .apply_likes(
            &LikeBatch {
                id: "b2".into(),
                likes: vec![rec("c0", "new")],
            },
            &fence(4),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, StoreError::Fenced { current: 5, .. }),
        "{stale}"
    );
    assert!(!store.has_liked("c0", "new").await.unwrap());

    // The real upstream sample: stored compressed, read back identical.
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/nexon/item-equipment-evan.json"
    ))
    .unwrap();
    store
        .put_snapshot("ocid1", "latest", &sample, 1)
        .await
        .unwrap();
    let stored: usize = db
        .query("SELECT LENGTH(payload) FROM equipment_snapshots WHERE ocid = 'ocid1'")
        .parse()
        .unwrap();
    let back = store
        .get_snapshot("ocid1", "latest")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.payload, sample);
    let ratio = sample.len() as f64 / stored as f64;
    println!(
        "gzip ratio on item-equipment-evan.json: {} -> {stored} bytes = {ratio:.1}x",
        sample.len()
    );
    assert!(ratio > 8.0, "{ratio}");
    assert!(codec::is_gzip(&codec::compress(&sample)));
}
