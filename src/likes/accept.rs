//! Accepting a like: the request path's write, and the journal's intake.
//!
//! Guarantee: a like answered 200 is retained in the local buffer (`buffer.rs`) until MySQL is *known* to
//! have it, and — when a journal is attached — is written and fsynced by the journal before the answer
//! (group commit: the entry is handed over under the buffer's lock, so in sequence order, and the answer
//! waits for the writer's commit mark to cover its sequence number). A pair already retained here or
//! already pending in Redis is answered as a duplicate (no second entry), once everything handed to the
//! journal so far is committed (which covers the first like of the pair when it is still in flight).
//! No I/O besides one Redis read for the count (through `count.rs`) and the wait for the journal.
//!
//! Failure modes: with the buffer at `MAPLE_LIKE_BUFFER_MAX` entries (neither Redis nor the database takes
//! likes), a new like is refused with [`LikeError::Full`] (503 `LIKES_UNAVAILABLE`) — never accepted and
//! then dropped. Redis or the database being slow or down only degrades the count in the answer (a lower
//! bound), never the acceptance. A journal group whose write or fsync failed, or a writer that stopped,
//! answers [`LikeError::NotDurable`] (503 `LIKES_UNAVAILABLE`): the like stays retained and normally still
//! reaches MySQL, but it is not acknowledged. A disk that hangs holds the answer until the request timeout.
//!
//! Why a concrete channel rather than a callback: the journal is the one consumer, and a send on an
//! unbounded channel is the cheapest thing the request path can do; the writer thread does the file I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};

use crate::ids::CharacterName;

use super::buffer::{Accept, pair_key};
use super::{LikeError, LikeService};
use crate::ids::LikerId;

/// Likes received, by result (`new`, `duplicate`, `rejected`).
pub const LIKE_REQUESTS_TOTAL: &str = "maple_like_requests_total";

/// One accepted like, with its unique id.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LikeEntry {
    pub id: String,
    /// The character's canonical key ([`CharacterName::key`]).
    pub character: String,
    pub liker: String,
    pub at_ms: i64,
}

/// The answer to a like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct LikeAnswer {
    pub liked: bool,
    pub like_count: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What the journal's writer receives, in order.
#[derive(Debug)]
pub enum JournalMsg {
    /// A like accepted by the service, with its buffer sequence number. Sent under the buffer's lock, so
    /// the writer receives them in increasing `seq` order.
    Accepted { seq: u64, entry: LikeEntry },
    /// Write and fsync what is queued, then stop.
    Stop,
}

/// What the writer has made durable: every journaled like with `seq <= upto` was written and fsynced,
/// except those of a group whose write or fsync failed (`seq <= failed_upto`, conservatively).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitMark {
    pub upto: u64,
    pub failed_upto: u64,
}

impl CommitMark {
    fn covers(&self, seq: u64) -> bool {
        self.upto >= seq
    }
    fn failed(&self, seq: u64) -> bool {
        seq <= self.failed_upto
    }
}

/// The writer's side of the commit mark: published after each group's fsync.
#[derive(Debug)]
pub struct JournalCommits {
    tx: tokio::sync::watch::Sender<CommitMark>,
}

impl JournalCommits {
    /// The group ending at `seq` is written and fsynced (`ok`), or its write or fsync failed.
    pub fn committed(&self, seq: u64, ok: bool) {
        self.tx.send_modify(|m| {
            m.upto = m.upto.max(seq);
            if !ok {
                m.failed_upto = m.failed_upto.max(seq);
            }
        });
    }
}

/// The journal's intake: the sending half of its writer's channel and the commit mark it publishes.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct JournalHandle {
    tx: Sender<JournalMsg>,
    /// The highest `seq` handed over (written under the buffer's lock).
    sent: Arc<AtomicU64>,
    commits: tokio::sync::watch::Receiver<CommitMark>,
}

/// Why a like is not acknowledged although it is retained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotCommitted {
    /// The group's write or fsync failed.
    Failed,
    /// The writer stopped before the group was committed.
    Stopped,
}

impl JournalHandle {
    /// A new intake, the receiving end its writer reads and the writer's side of the commit mark.
    pub fn channel() -> (JournalHandle, Receiver<JournalMsg>, JournalCommits) {
        let (tx, rx) = std::sync::mpsc::channel();
        let (ctx, crx) = tokio::sync::watch::channel(CommitMark::default());
        (
            JournalHandle {
                tx,
                sent: Arc::new(AtomicU64::new(0)),
                commits: crx,
            },
            rx,
            JournalCommits { tx: ctx },
        )
    }

    /// Hands an accepted entry to the writer (never blocks). Call under the buffer's lock (so entries
    /// arrive in `seq` order). Returns the `seq` to wait for, or `None` when the writer has stopped.
    fn accepted(&self, seq: u64, entry: &LikeEntry) -> Option<u64> {
        let msg = JournalMsg::Accepted {
            seq,
            entry: entry.clone(),
        };
        self.tx.send(msg).ok()?;
        self.sent.store(seq, Ordering::SeqCst);
        Some(seq)
    }

    /// The highest `seq` handed over so far: waiting for it covers every like handed over before.
    fn last_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Waits until the group holding `seq` is written and fsynced.
    pub async fn committed(&self, seq: u64) -> Result<(), NotCommitted> {
        let mut rx = self.commits.clone();
        loop {
            let m = *rx.borrow_and_update();
            if m.covers(seq) {
                return if m.failed(seq) {
                    Err(NotCommitted::Failed)
                } else {
                    Ok(())
                };
            }
            if rx.changed().await.is_err() {
                let m = *rx.borrow();
                return match (m.covers(seq), m.failed(seq)) {
                    (true, false) => Ok(()),
                    (true, true) => Err(NotCommitted::Failed),
                    (false, _) => Err(NotCommitted::Stopped),
                };
            }
        }
    }

    /// Asks the writer to write what is queued, fsync and stop.
    pub fn stop(&self) {
        let _ = self.tx.send(JournalMsg::Stop);
    }
}

impl LikeService {
    /// Attaches the journal: every like accepted from now on is handed to it before it is acknowledged
    /// (once; false if one is already attached).
    pub fn attach_journal(&self, journal: JournalHandle) -> bool {
        self.inner.journal.set(journal).is_ok()
    }
    /// Accepts a like (see the module documentation).
    pub async fn like(
        &self,
        character: &CharacterName,
        liker: &LikerId,
    ) -> Result<LikeAnswer, LikeError> {
        let c = character.key();
        let l = liker.as_str();
        let view = self.count_view().await;
        let peek = self.peek(&c, &pair_key(&c, l)).await;
        let journal = self.inner.journal.get();
        let (accepted, local, mark, commit) = {
            let mut b = self.inner.buf.lock().expect("poisoned");
            let a = if peek.as_ref().is_some_and(|p| p.member) {
                Accept::Duplicate
            } else {
                b.accept(&c, l, now_ms())
            };
            // Handed over under the lock: the writer sees entries in `seq` order, so a commit mark
            // covering this `seq` covers every like accepted before it.
            let commit = match (&a, journal) {
                (Accept::New(entry), Some(j)) => Some(
                    b.seq_of(&entry.character, &entry.liker)
                        .and_then(|seq| j.accepted(seq, entry))
                        .ok_or(NotCommitted::Stopped),
                ),
                // A duplicate answers for the first like of the pair: wait for everything handed over
                // so far, which covers it when it was accepted here and is still in flight.
                (Accept::Duplicate, Some(j)) => Some(Ok(j.last_sent())),
                _ => None,
            };
            let local = if peek.is_some() {
                b.unflushed_for(&c)
            } else {
                b.retained_for(&c)
            };
            (a, local, b.accept_mark(&c), commit)
        };
        match accepted {
            Accept::Full => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "rejected").increment(1);
                return Err(LikeError::Full(self.buffered()));
            }
            Accept::New(_) => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "new").increment(1);
            }
            Accept::Duplicate => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "duplicate").increment(1);
            }
        }
        let (base, fresh) = self.base_count(&c, peek.as_ref()).await;
        let like_count =
            self.settle_count(&c, view.is_some() && fresh, base + i64::from(local), mark);
        // Group commit: the answer goes out once the journal fsync covering this like is done.
        if let (Some(seq), Some(j)) = (commit, journal) {
            j.committed(seq.map_err(LikeError::NotDurable)?)
                .await
                .map_err(LikeError::NotDurable)?;
        }
        Ok(LikeAnswer {
            liked: true,
            like_count,
        })
    }
}
