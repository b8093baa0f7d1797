//! Store tests on the SQLite backend (a temp file, the real engine); the MySQL backend runs the same
//! contract in the black-box suite against a real MariaDB (`tests/api/likes.rs`).

use super::*;

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&DatabaseSettings::Sqlite {
        path: dir.path().join("t.db"),
    })
    .await
    .unwrap();
    (store, dir)
}

fn like(c: &str, l: &str) -> LikeRecord {
    LikeRecord {
        character: c.into(),
        liker: l.into(),
        at_ms: 1,
    }
}

fn fence(token: u64) -> Fence {
    Fence {
        lock: "likes-sync".into(),
        token,
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_rows_round_trip() {
    let (store, dir) = sqlite().await;
    // Connecting again re-applies nothing and fails on nothing.
    let again = Store::connect(&DatabaseSettings::Sqlite {
        path: dir.path().join("t.db"),
    })
    .await
    .unwrap();
    assert_eq!(again.backend(), Backend::Sqlite);
    let row = CharacterRow {
        name: "evan".into(),
        ocid: Some("abc".into()),
        world: Some("scania".into()),
        class: None,
        level: Some(280),
        image: None,
        fetched_at_ms: 5,
        like_count: 0,
    };
    store.upsert_character(&row).await.unwrap();
    assert_eq!(
        store.get_character("evan").await.unwrap(),
        Some(row.clone())
    );
    // Recording a new ocid keeps the basic info and the like count; a new name gets a bare row.
    store.set_ocid("evan", "def", 6).await.unwrap();
    let kept = store.get_character("evan").await.unwrap().unwrap();
    assert_eq!((kept.ocid.as_deref(), kept.fetched_at_ms), (Some("def"), 6));
    assert_eq!((kept.world, kept.level), (row.world.clone(), row.level));
    store.set_ocid("adele", "ghi", 8).await.unwrap();
    let fresh = store.get_character("adele").await.unwrap().unwrap();
    assert_eq!(
        (fresh.ocid.as_deref(), fresh.world, fresh.like_count),
        (Some("ghi"), None, 0)
    );
    store.clear_ocid("evan").await.unwrap();
    assert_eq!(
        store.get_character("evan").await.unwrap().unwrap().ocid,
        None
    );
    store
        .put_snapshot("abc", "latest", b"{\"a\":1}", 7)
        .await
        .unwrap();
    let snap = store.get_snapshot("abc", "latest").await.unwrap().unwrap();
    assert_eq!(snap.payload, b"{\"a\":1}");
    assert_eq!(snap.fetched_at_ms, 7);
}

#[tokio::test]
async fn a_legacy_uncompressed_snapshot_reads_back() {
    let (store, _dir) = sqlite().await;
    store
        .put_snapshot_as_is("o", "2025-01-01", b"{\"legacy\":true}".to_vec(), 3)
        .await
        .unwrap();
    let snap = store
        .get_snapshot("o", "2025-01-01")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.payload, b"{\"legacy\":true}");
}

#[tokio::test]
async fn likes_count_each_pair_once_and_a_batch_applied_twice_counts_once() {
    let (store, _dir) = sqlite().await;
    let batch = LikeBatch {
        id: "b1".into(),
        likes: vec![
            like("a", "x"),
            like("a", "y"),
            like("a", "x"),
            like("b", "x"),
        ],
    };
    let r = store.apply_likes(&batch, &fence(10)).await.unwrap();
    assert!(!r.already_applied);
    assert_eq!(r.inserted, 3);
    let mut counts = r.counts.clone();
    counts.sort();
    assert_eq!(counts, vec![("a".into(), 2), ("b".into(), 1)]);

    let again = store.apply_likes(&batch, &fence(10)).await.unwrap();
    assert!(again.already_applied);
    assert_eq!(again.inserted, 0);
    assert_eq!(store.like_count("a").await.unwrap(), 2);

    // A different batch repeating stored pairs adds only the new one.
    let b2 = LikeBatch {
        id: "b2".into(),
        likes: vec![like("a", "x"), like("a", "z")],
    };
    let r = store.apply_likes(&b2, &fence(11)).await.unwrap();
    assert_eq!(r.inserted, 1);
    assert_eq!(store.like_count("a").await.unwrap(), 3);
    assert!(store.has_liked("a", "z").await.unwrap());
    assert!(!store.has_liked("b", "z").await.unwrap());
    assert!(store.is_applied("b2").await.unwrap());
    assert_eq!(store.like_count("nobody").await.unwrap(), 0);

    // The basic row written later by the read path keeps the count.
    store
        .upsert_character(&CharacterRow {
            name: "a".into(),
            ocid: Some("o".into()),
            world: None,
            class: None,
            level: None,
            image: None,
            fetched_at_ms: 9,
            like_count: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_character("a").await.unwrap().unwrap().like_count,
        3
    );
}

#[tokio::test]
async fn an_older_fencing_token_is_rejected_and_writes_nothing() {
    let (store, _dir) = sqlite().await;
    let b = |id: &str, l: &str| LikeBatch {
        id: id.into(),
        likes: vec![like("c", l)],
    };
    store.apply_likes(&b("1", "p"), &fence(100)).await.unwrap();
    store.apply_likes(&b("2", "q"), &fence(200)).await.unwrap();
    let e = store
        .apply_likes(&b("3", "r"), &fence(150))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Fenced {
                token: 150,
                current: 200,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.code(), "LOCK_LOST");
    assert_eq!(store.like_count("c").await.unwrap(), 2);
    assert!(!store.is_applied("3").await.unwrap());
    assert_eq!(store.fence_position("likes-sync").await.unwrap(), Some(200));
    // The same token again is the same holder: accepted.
    store.apply_likes(&b("4", "s"), &fence(200)).await.unwrap();
    assert_eq!(store.like_count("c").await.unwrap(), 3);
}

#[tokio::test]
async fn batch_ids_are_bounded() {
    let (store, _dir) = sqlite().await;
    let long = LikeBatch {
        id: "x".repeat(MAX_BATCH_ID + 1),
        likes: vec![],
    };
    assert!(store.apply_likes(&long, &fence(1)).await.is_err());
}

#[tokio::test]
async fn large_batches_span_several_stage_chunks() {
    let (store, _dir) = sqlite().await;
    let likes: Vec<LikeRecord> = (0..(STAGE_CHUNK * 2 + 7))
        .map(|i| like(&format!("c{}", i % 13), &format!("l{i}")))
        .collect();
    let r = store
        .apply_likes(
            &LikeBatch {
                id: "big".into(),
                likes,
            },
            &fence(1),
        )
        .await
        .unwrap();
    assert_eq!(r.inserted as usize, STAGE_CHUNK * 2 + 7);
    assert_eq!(
        r.counts.iter().map(|(_, n)| n).sum::<i64>() as usize,
        STAGE_CHUNK * 2 + 7
    );
}

/// A like batch committed to SQLite must survive a power loss once `apply_likes` returns: the buffer and
/// the journal let it go at that moment. WAL with `synchronous=NORMAL` does not fsync the WAL at commit;
/// `FULL` does. Every connection of the pool (any of them may run `apply_likes`) must be in FULL.
#[tokio::test]
async fn every_sqlite_connection_commits_with_synchronous_full() {
    let (store, _dir) = sqlite().await;
    let Db::Sqlite(repo) = &store.db else {
        unreachable!()
    };
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut conn = repo.pool().acquire().await.unwrap();
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
        assert_eq!(sync, 2, "synchronous on connection {}", held.len());
        held.push(conn);
    }
}
