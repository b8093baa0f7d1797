//! The distributed mode against real backing services: Redis through a Sentinel topology, MariaDB.

use maple_gateway::config::{DatabaseSettings, RedactedUrl, RedisSettings};

use crate::harness::{SentinelTopology, TestDatabase};
use crate::helpers::spawn_app_with;

#[tokio::test]
async fn connects_through_sentinel_and_shares_l2_via_the_master() {
    let topo = SentinelTopology::start();
    let sentinels: Vec<String> = topo.sentinel_list().split(',').map(String::from).collect();
    let settings = move |s: &mut maple_gateway::config::Settings| {
        s.redis = RedisSettings::Sentinel {
            sentinels: sentinels.clone(),
            master: "mymaster".into(),
            password: None,
        };
    };
    let a = spawn_app_with(settings.clone()).await;
    let (s, ready) = a.get_json("/health/ready").await;
    assert_eq!(s, 200);
    assert_eq!(ready["dependencies"]["redis"], "up", "{ready}");
    assert_eq!(ready["redis_mode"], "sentinel");
    assert_eq!(
        ready["redis_server"],
        format!("127.0.0.1:{}", topo.master.port),
        "the client is connected to the master Sentinel reports"
    );
    assert_eq!(
        a.get("/api/v4/characters/Sentry/expectation")
            .await
            .status()
            .as_u16(),
        200
    );

    // The value went to the master: the replica has it too, and a second instance reads it from L2.
    let b = spawn_app_with(settings).await;
    let r = b.get("/api/v4/characters/Sentry/expectation").await;
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert_eq!(r.headers()["x-cache-tier"], "L2");
}

#[tokio::test]
async fn mysql_mode_migrates_a_fresh_database_and_stores_snapshots_there() {
    let db = TestDatabase::create();
    let url = db.url();
    let app = spawn_app_with(move |s| {
        s.database = DatabaseSettings::Mysql {
            url: RedactedUrl::new(url),
        };
    })
    .await;
    let (s, ready) = app.get_json("/health/ready").await;
    assert_eq!(s, 200);
    assert_eq!(ready["database_backend"], "mysql");
    assert_eq!(ready["dependencies"]["database"], "up");
    assert_eq!(
        app.get("/api/v4/characters/Maria1/expectation")
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.get("/api/v1/characters/Maria1").await.status().as_u16(),
        200
    );
    // A character only ever asked for its expectation gets its row from the ocid lookup alone.
    assert_eq!(
        app.get("/api/v4/characters/Maria2/expectation")
            .await
            .status()
            .as_u16(),
        200
    );
    app.stop().await; // flushes background snapshot writes

    let tables = db.query("SHOW TABLES");
    for t in [
        "characters",
        "equipment_snapshots",
        "character_likes",
        "lock_fences",
        "_sqlx_migrations",
    ] {
        assert!(tables.lines().any(|l| l == t), "{t} missing: {tables}");
    }
    assert_eq!(
        db.query("SELECT COUNT(*) FROM equipment_snapshots WHERE data_date = 'latest'"),
        "2"
    );
    // Stored gzip-compressed: the first two bytes are the gzip magic.
    assert_eq!(
        db.query("SELECT DISTINCT HEX(LEFT(payload, 2)) FROM equipment_snapshots"),
        "1F8B"
    );
    let rows = db.query(
        "SELECT name, ocid IS NOT NULL, world IS NOT NULL, like_count FROM characters ORDER BY name",
    );
    assert_eq!(rows, "maria1\t1\t1\t0\nmaria2\t1\t0\t0");
}

#[tokio::test]
async fn instances_starting_together_on_a_fresh_database_migrate_once() {
    let db = TestDatabase::create();
    let start = || {
        let url = db.url();
        spawn_app_with(move |s| {
            s.database = DatabaseSettings::Mysql {
                url: RedactedUrl::new(url),
            };
        })
    };
    let (a, b, c) = tokio::join!(start(), start(), start());
    for app in [&a, &b, &c] {
        let (s, ready) = app.get_json("/health/ready").await;
        assert_eq!(s, 200, "{ready}");
    }
    let applied = db.query("SELECT COUNT(*), SUM(success) FROM _sqlx_migrations");
    let n: Vec<&str> = applied.split('\t').collect();
    assert_eq!(
        n[0], n[1],
        "every migration applied successfully once: {applied}"
    );
}
