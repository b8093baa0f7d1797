//! Write-path tests without servers: the buffer's state machine, liker ids, and the whole service in
//! embedded mode (a real SQLite file, in-process locks, the direct sync path). The Redis path and the
//! outage scenarios run against real Redis and MariaDB in `tests/api/likes.rs`.

use super::*;
use crate::config::DatabaseSettings;
use crate::ids::{CharacterName, LikerId};
use crate::store::{LikeBatch, LikeRecord};

fn entry_pairs(b: &Buffer) -> Vec<(String, String)> {
    b.pending()
        .into_iter()
        .map(|e| (e.character, e.liker))
        .collect()
}

#[test]
fn buffer_accepts_dedupes_and_bounds() {
    let mut b = Buffer::new(3, "gw.1".into());
    let Accept::New(e) = b.accept("evan", "x", 1) else {
        panic!("new")
    };
    assert_eq!(e.id, "gw.1-1");
    assert_eq!(b.accept("evan", "x", 2), Accept::Duplicate);
    assert!(matches!(b.accept("evan", "y", 3), Accept::New(_)));
    assert!(matches!(b.accept("luna", "x", 4), Accept::New(_)));
    assert_eq!(b.accept("luna", "z", 5), Accept::Full);
    assert_eq!(
        b.accept("evan", "y", 6),
        Accept::Duplicate,
        "duplicates are answered when full"
    );
    assert_eq!(b.unflushed_for("evan"), 2);
    assert_eq!(b.retained_for("luna"), 1);
    assert!(b.contains_pair("evan", "y"));
}

#[test]
fn buffer_keeps_entries_until_confirmed_and_repushes_on_a_new_generation() {
    let mut b = Buffer::new(100, "gw.1".into());
    for l in ["a", "b", "c", "d"] {
        b.accept("evan", l, 0);
    }
    let (g, first) = b.take_for_flush(3);
    assert_eq!(
        first.iter().map(|o| o.index).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    b.mark_pushed(g, &first, 3, Instant::now());
    assert!(!b.has_lost_push(0, 3));
    assert!(
        b.has_lost_push(3, 3),
        "the syncer went past position 3 without confirming"
    );
    assert!(
        b.has_lost_push(0, 2),
        "the queue's history no longer reaches position 3"
    );
    assert_eq!(b.unflushed_len(), 1);
    assert_eq!(b.unflushed_for("evan"), 1);
    assert_eq!(b.retained_for("evan"), 4);
    // Only a confirmed prefix is dropped.
    assert_eq!(b.confirm(g, 2), 2);
    assert_eq!(b.len(), 2);
    // A watermark of another generation confirms nothing.
    assert_eq!(b.confirm(g + 1, 10), 0);
    // A failed push: everything unconfirmed goes out again, numbered from 1.
    b.new_generation();
    let (g2, again) = b.take_for_flush(10);
    assert_eq!(g2, g + 1);
    assert_eq!(
        again.iter().map(|o| o.index).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(
        again
            .iter()
            .map(|o| o.entry.liker.as_str())
            .collect::<Vec<_>>(),
        vec!["c", "d"]
    );
    // A push recorded under a stale generation is ignored.
    b.mark_pushed(g, &again, 5, Instant::now());
    assert_eq!(b.unflushed_len(), 2);
    b.mark_pushed(g2, &again, 5, Instant::now());
    assert!(!b.has_lost_push(3, 5));
    assert!(b.has_lost_push(4, 5));
    assert!(b.oldest_push().is_some());
    assert_eq!(b.confirm(g2, 2), 2);
    assert!(b.is_empty());
    assert_eq!(b.retained_for("evan"), 0);
}

#[test]
fn buffer_epoch_change_repushes_and_restore_keeps_ids() {
    let mut b = Buffer::new(2, "gw.1".into());
    assert!(b.adopt_epoch("e1"));
    b.accept("evan", "a", 0);
    let (g, items) = b.take_for_flush(10);
    b.mark_pushed(g, &items, 1, Instant::now());
    assert!(!b.adopt_epoch("e1"));
    assert!(b.adopt_epoch("e2"), "Redis lost its data");
    assert_eq!(b.unflushed_len(), 1);

    let recovered = vec![
        LikeEntry {
            id: "old-7".into(),
            character: "luna".into(),
            liker: "q".into(),
            at_ms: 9,
        },
        LikeEntry {
            id: "old-8".into(),
            character: "evan".into(),
            liker: "a".into(),
            at_ms: 9,
        },
        LikeEntry {
            id: "old-9".into(),
            character: "sol".into(),
            liker: "r".into(),
            at_ms: 9,
        },
    ];
    assert_eq!(b.restore(recovered), 2, "pair already retained is skipped");
    assert_eq!(b.len(), 3, "the bound does not apply to recovered likes");
    assert!(b.pending().iter().any(|e| e.id == "old-7"));
    let seqs: Vec<u64> = b.oldest(2).into_iter().map(|(s, _)| s).collect();
    assert_eq!(b.remove(&seqs), 2);
    assert_eq!(entry_pairs(&b), vec![("sol".into(), "r".into())]);
}

#[test]
fn liker_ids_are_one_to_sixty_four_characters_without_controls() {
    assert!(LikerId::parse("u-1").is_ok());
    assert!(LikerId::parse(&"가".repeat(64)).is_ok());
    for bad in ["", "a\nb", "tab\t", "\u{1f}"] {
        let e = LikerId::parse(bad).unwrap_err();
        assert_eq!(e.code(), "BAD_REQUEST");
    }
    assert!(LikerId::parse(&"x".repeat(65)).is_err());
}

async fn embedded(buffer_max: usize) -> (LikeService, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&DatabaseSettings::Sqlite {
        path: dir.path().join("likes.db"),
    })
    .await
    .unwrap();
    let svc = LikeService::new(
        LikeConfig {
            buffer_max,
            sync_batch: 7,
            ..LikeConfig::default()
        },
        store.clone(),
        None,
        LockService::in_process(),
        "test",
    );
    (svc, store, dir)
}

fn n(s: &str) -> CharacterName {
    CharacterName::parse(s).unwrap()
}

fn l(s: &str) -> LikerId {
    LikerId::parse(s).unwrap()
}

#[tokio::test]
async fn embedded_likes_count_once_per_liker_and_sync_to_the_database() {
    let (svc, store, _dir) = embedded(1000).await;
    assert_eq!(
        svc.like(&n("Evan"), &l("a")).await.unwrap(),
        LikeAnswer {
            liked: true,
            like_count: 1
        }
    );
    assert_eq!(svc.like(&n("evan"), &l("a")).await.unwrap().like_count, 1);
    assert_eq!(svc.like(&n("EVAN"), &l("b")).await.unwrap().like_count, 2);
    for i in 0..20 {
        svc.like(&n("Luna"), &l(&format!("u{i}"))).await.unwrap();
    }
    assert_eq!(svc.buffered(), 22);
    // Batches of 7: one round syncs all of them (and the batch ids are deterministic).
    let out = svc.sync_once().await.unwrap();
    assert_eq!(
        out,
        SyncOutcome::Synced {
            path: SyncPath::Direct,
            entries: 22,
            inserted: 22
        }
    );
    assert_eq!(svc.buffered(), 0);
    assert_eq!(store.like_count("evan").await.unwrap(), 2);
    assert_eq!(store.like_count("luna").await.unwrap(), 20);
    assert_eq!(svc.sync_once().await.unwrap(), SyncOutcome::Idle);
    // After the sync the count comes from the database and a repeated like is known.
    let st = svc.status(&n("evan"), Some(&l("a"))).await.unwrap();
    assert_eq!(
        st,
        LikeStatus {
            liked: Some(true),
            like_count: 2
        }
    );
    let st = svc.status(&n("evan"), Some(&l("zz"))).await.unwrap();
    assert_eq!(st.liked, Some(false));
    assert_eq!(svc.status(&n("evan"), None).await.unwrap().liked, None);
    // A like repeated after its sync is not counted twice in the database.
    svc.like(&n("evan"), &l("a")).await.unwrap();
    svc.sync_once().await.unwrap();
    assert_eq!(store.like_count("evan").await.unwrap(), 2);
}

#[tokio::test]
async fn a_full_buffer_refuses_new_likes_with_503_and_keeps_what_it_accepted() {
    let (svc, store, _dir) = embedded(3).await;
    for who in ["a", "b", "c"] {
        svc.like(&n("evan"), &l(who)).await.unwrap();
    }
    let e = svc.like(&n("evan"), &l("d")).await.unwrap_err();
    assert_eq!(e.code(), "LIKES_UNAVAILABLE");
    assert_eq!(e.code().status().as_u16(), 503);
    assert!(e.retry_after_secs().is_some());
    // A duplicate of a retained like is still answered.
    assert_eq!(svc.like(&n("evan"), &l("a")).await.unwrap().like_count, 3);
    let report = svc.drain(Duration::from_secs(5)).await;
    assert!(report.remaining.is_empty(), "{report:?}");
    assert_eq!(report.synced, 3);
    assert_eq!(store.like_count("evan").await.unwrap(), 3);
    svc.like(&n("evan"), &l("d")).await.unwrap();
}

#[tokio::test]
async fn pending_entries_have_unique_ids_and_apply_entries_is_idempotent() {
    let (svc, store, _dir) = embedded(100).await;
    let (journal, accepted) = committing_journal(&svc);
    for who in ["a", "b", "a", "c"] {
        svc.like(&n("evan"), &l(who)).await.unwrap();
    }
    let pending = svc.pending_entries();
    let ids: std::collections::HashSet<_> = pending.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(pending.iter().all(|e| e.id.starts_with(svc.source())));
    let seen: Vec<String> = accepted.lock().unwrap().clone();
    assert_eq!(
        seen,
        pending.iter().map(|e| e.id.clone()).collect::<Vec<_>>()
    );
    drop(journal);

    let first = svc
        .apply_entries("backup-1:0", &pending, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.inserted, 3);
    let again = svc
        .apply_entries("backup-1:0", &pending, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(again.already_applied);
    assert_eq!(store.like_count("evan").await.unwrap(), 3);
    // The buffer still syncs them: the database counts each pair once.
    svc.sync_once().await.unwrap();
    assert_eq!(store.like_count("evan").await.unwrap(), 3);
}

/// A count read while a sync moves entries from the buffer to the database never sees them in both places:
/// with likes, reads and syncs running at once, the counts every reader sees never go down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_never_go_down_while_entries_move_to_the_database() {
    let (svc, _store, _dir) = embedded(100_000).await;
    let svc = Arc::new(svc);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (svc, stop) = (svc.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                svc.like(&n("Hot"), &l(&format!("w{i}"))).await.unwrap();
                i += 1;
            }
            i
        })
    };
    let syncer = {
        let (svc, stop) = (svc.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                svc.sync_once().await.unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let mut last = 0;
                for _ in 0..2_000 {
                    let c = svc.status(&n("Hot"), None).await.unwrap().like_count;
                    assert!(c >= last, "the count went down from {last} to {c}");
                    last = c;
                }
                last
            })
        })
        .collect();
    for r in readers {
        r.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    syncer.await.unwrap();
    svc.sync_once().await.unwrap();
    assert_eq!(
        svc.status(&n("Hot"), None).await.unwrap().like_count,
        written as i64
    );
}

/// A read that cannot have the count view in time, because a move holds it (here: the entries are
/// committed in the database and not yet out of the buffer), answers a lower bound — never a count with
/// the moving entries in both places.
#[tokio::test]
async fn a_read_without_the_count_view_never_counts_a_moving_entry_twice() {
    let (svc, store, _dir) = embedded(1000).await;
    for i in 0..5 {
        svc.like(&n("Hot"), &l(&format!("u{i}"))).await.unwrap();
    }
    assert_eq!(svc.status(&n("Hot"), None).await.unwrap().like_count, 5);

    let move_guard = svc.inner.count_view.write().await;
    let moving = LikeBatch {
        id: "moving".into(),
        likes: svc
            .pending_entries()
            .into_iter()
            .map(|e| LikeRecord {
                character: e.character,
                liker: e.liker,
                at_ms: e.at_ms,
            })
            .collect(),
    };
    let fence = crate::store::Fence {
        lock: SYNC_LOCK.into(),
        token: 1,
    };
    store.apply_likes(&moving, &fence).await.unwrap();
    assert_eq!(store.like_count(&n("Hot").key()).await.unwrap(), 5);
    assert_eq!(svc.pending_entries().len(), 5);

    let read = svc.status(&n("Hot"), None).await.unwrap().like_count;
    assert_eq!(read, 5, "a read during the move counted entries twice");
    let liked = svc.like(&n("Hot"), &l("late")).await.unwrap().like_count;
    assert_eq!(
        liked, 6,
        "the like accepted during the move is counted once"
    );
    drop(move_guard);

    svc.sync_once().await.unwrap();
    assert!(svc.pending_entries().is_empty());
    assert_eq!(svc.status(&n("Hot"), None).await.unwrap().like_count, 6);
}

#[test]
fn accept_marks_count_every_entry_taken_in_and_never_go_down() {
    let mut b = Buffer::new(10, "gw.1".into());
    assert_eq!(b.accept_mark("evan").accepted, 0);
    b.accept("evan", "x", 1);
    b.accept("evan", "x", 2);
    b.accept("evan", "y", 3);
    b.accept("luna", "x", 4);
    assert_eq!(
        b.accept_mark("evan").accepted,
        2,
        "a duplicate is not taken in"
    );
    let seqs: Vec<u64> = b.oldest(10).into_iter().map(|(s, _)| s).collect();
    b.remove(&seqs);
    assert_eq!(
        b.accept_mark("evan").accepted,
        2,
        "leaving the buffer lowers nothing"
    );
    b.restore([LikeEntry {
        id: "gw.0-1".into(),
        character: "evan".into(),
        liker: "z".into(),
        at_ms: 0,
    }]);
    assert_eq!(b.accept_mark("evan").accepted, 3);
    assert_eq!(b.accept_mark("luna").accepted, 1);
}

/// A journal writer that commits every group at once: the ids it received, in order.
fn committing_journal(
    svc: &LikeService,
) -> (JournalHandle, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let (journal, rx, commits) = JournalHandle::channel();
    assert!(svc.attach_journal(journal.clone()));
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let out = seen.clone();
    std::thread::spawn(move || {
        while let Ok(JournalMsg::Accepted { seq, entry }) = rx.recv() {
            out.lock().unwrap().push(entry.id);
            commits.committed(seq, true);
        }
    });
    (journal, seen)
}

/// Receives the next hand-over of the journal's intake (off the async workers).
async fn next_accepted(
    rx: std::sync::mpsc::Receiver<JournalMsg>,
) -> (u64, std::sync::mpsc::Receiver<JournalMsg>) {
    tokio::task::spawn_blocking(move || match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(JournalMsg::Accepted { seq, .. }) => (seq, rx),
        other => panic!("expected an accepted like, got {other:?}"),
    })
    .await
    .unwrap()
}

/// Group commit: a like is answered only once the journal group holding it is written and fsynced; a
/// duplicate of a pair still in flight waits for it too; a group whose fsync failed, or a writer that
/// stopped, answers 503 (the like stays retained, but it is not acknowledged).
#[tokio::test]
async fn a_like_is_answered_only_after_the_journal_committed_it() {
    let (svc, _store, _dir) = embedded(100).await;
    let (journal, rx, commits) = JournalHandle::channel();
    assert!(svc.attach_journal(journal));

    let s = svc.clone();
    let first = tokio::spawn(async move { s.like(&n("evan"), &l("a")).await });
    let (seq, rx) = next_accepted(rx).await;
    let s = svc.clone();
    let dup = tokio::spawn(async move { s.like(&n("evan"), &l("a")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !first.is_finished(),
        "a like was answered before the journal committed it"
    );
    assert!(
        !dup.is_finished(),
        "a duplicate was answered before the first like of its pair was committed"
    );
    commits.committed(seq, true);
    let first = tokio::time::timeout(Duration::from_secs(5), first).await;
    assert!(first.unwrap().unwrap().unwrap().liked);
    let dup = tokio::time::timeout(Duration::from_secs(5), dup).await;
    assert!(dup.unwrap().unwrap().unwrap().liked);

    let s = svc.clone();
    let failed = tokio::spawn(async move { s.like(&n("evan"), &l("b")).await });
    let (seq, rx) = next_accepted(rx).await;
    commits.committed(seq, false);
    let failed = tokio::time::timeout(Duration::from_secs(5), failed).await;
    let e = failed.unwrap().unwrap().unwrap_err();
    assert!(
        matches!(e, LikeError::NotDurable(NotCommitted::Failed)),
        "{e:?}"
    );
    assert_eq!(e.code(), Code::LikesUnavailable);

    let s = svc.clone();
    let stopped = tokio::spawn(async move { s.like(&n("evan"), &l("c")).await });
    let (_, _rx) = next_accepted(rx).await;
    drop(commits);
    let stopped = tokio::time::timeout(Duration::from_secs(5), stopped).await;
    let e = stopped.unwrap().unwrap().unwrap_err();
    assert!(
        matches!(e, LikeError::NotDurable(NotCommitted::Stopped)),
        "{e:?}"
    );
    // Not acknowledged, but retained: the like still reaches the database.
    assert_eq!(svc.buffered(), 3);
}
