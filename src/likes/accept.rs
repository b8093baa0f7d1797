//! Accepting a like: the request path's write, and the journal's intake.
//!
//! Guarantee: a like answered 200 is retained in the local buffer (`buffer.rs`) until MySQL is *known* to
//! have it, and — when a journal is attached — was handed to the journal's writer before the answer. A
//! pair already retained here or already pending in Redis is answered as a duplicate (no second entry).
//! No I/O besides one Redis read for the count (through `count.rs`).
//!
//! Failure modes: with the buffer at `MAPLE_LIKE_BUFFER_MAX` entries (neither Redis nor the database takes
//! likes), a new like is refused with [`LikeError::Full`] (503 `LIKES_UNAVAILABLE`) — never accepted and
//! then dropped. Redis or the database being slow or down only degrades the count in the answer (a lower
//! bound), never the acceptance. A journal whose writer stopped drops the hand-over silently (the buffer
//! → Redis → MySQL path stays the main one).
//!
//! Why a concrete channel rather than a callback: the journal is the one consumer, and a send on an
//! unbounded channel is the cheapest thing the request path can do; the writer thread does the file I/O.

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
    /// A like accepted by the service (sent before it is acknowledged).
    Accepted(LikeEntry),
    /// Write what is queued, fsync and stop.
    Stop,
}

/// The journal's intake: the sending half of its writer's channel. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JournalHandle {
    tx: Sender<JournalMsg>,
}

impl JournalHandle {
    /// A new intake and the receiving end its writer reads.
    pub fn channel() -> (JournalHandle, Receiver<JournalMsg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (JournalHandle { tx }, rx)
    }

    /// Hands an accepted entry to the writer (never blocks; dropped when the writer has stopped).
    pub fn accepted(&self, entry: &LikeEntry) {
        let _ = self.tx.send(JournalMsg::Accepted(entry.clone()));
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
        let (accepted, local, mark) = {
            let mut b = self.inner.buf.lock().expect("poisoned");
            let a = if peek.as_ref().is_some_and(|p| p.member) {
                Accept::Duplicate
            } else {
                b.accept(&c, l, now_ms())
            };
            let local = if peek.is_some() {
                b.unflushed_for(&c)
            } else {
                b.retained_for(&c)
            };
            (a, local, b.accept_mark(&c))
        };
        match accepted {
            Accept::Full => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "rejected").increment(1);
                return Err(LikeError::Full(self.buffered()));
            }
            Accept::New(entry) => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "new").increment(1);
                if let Some(j) = self.inner.journal.get() {
                    j.accepted(&entry);
                }
            }
            Accept::Duplicate => {
                metrics::counter!(LIKE_REQUESTS_TOTAL, "result" => "duplicate").increment(1);
            }
        }
        let (base, fresh) = self.base_count(&c, peek.as_ref()).await;
        let like_count =
            self.settle_count(&c, view.is_some() && fresh, base + i64::from(local), mark);
        Ok(LikeAnswer {
            liked: true,
            like_count,
        })
    }
}
