//! The in-process like buffer: every accepted like stays here until MySQL is known to have it.
//!
//! Contract: an entry is *unflushed* until a flush script put it in the Redis queue, then *pushed*
//! (with the generation and the index under which it was pushed) until the syncer reports, through the
//! per-source watermark, that every index up to its own reached MySQL — only then is it dropped. An entry
//! synced straight to the database (Redis down) is dropped when its batch commits. Nothing else ever drops
//! an entry, so an accepted like is lost only if the process dies before MySQL has it (the shutdown
//! sequence backs up [`Buffer::pending`] at shutdown).
//!
//! Generations: pushes of one source are numbered 1, 2, 3… within a generation; the syncer confirms a
//! prefix. Whenever that numbering can no longer be trusted — a flush failed (it may or may not have
//! reached Redis), Redis lost its data (epoch changed), the syncer went past a pushed entry's queue
//! position without confirming it (the queue lost it, which includes a queue found shorter than its
//! counters by the flush's last-resort check) —
//! [`Buffer::new_generation`] starts a fresh numbering and marks every pushed entry unflushed again, so it
//! is pushed again. Pushing twice is harmless: MySQL counts each (character, liker) pair once.
//!
//! Bound: [`Buffer::accept`] refuses a new entry ([`Accept::Full`]) once `max` entries are retained; a
//! duplicate of a retained pair is always answered (nothing is added).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio::time::Instant;

use super::LikeEntry;

/// How an entry was pushed to Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Push {
    pub generation: u32,
    pub index: u64,
    /// Position in the Redis queue of this epoch (1 = the first entry ever pushed).
    pub position: u64,
    pub at: Instant,
}

#[derive(Debug)]
struct Slot {
    entry: LikeEntry,
    pushed: Option<Push>,
}

/// What [`Buffer::accept`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Accept {
    /// A new entry (its clone), retained until MySQL has it.
    New(LikeEntry),
    /// The pair is already retained here.
    Duplicate,
    /// The bound is reached: refuse (503).
    Full,
}

/// One entry handed to a flush: its sequence number, the index assigned for this push, the entry.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub seq: u64,
    pub index: u64,
    pub entry: LikeEntry,
}

/// The buffer of one process.
#[derive(Debug)]
pub struct Buffer {
    max: usize,
    id_prefix: String,
    next_seq: u64,
    slots: BTreeMap<u64, Slot>,
    pairs: HashMap<String, u64>,
    unflushed: BTreeSet<u64>,
    unflushed_by_char: HashMap<String, u32>,
    retained_by_char: HashMap<String, u32>,
    /// Entries ever inserted per character (never lowered; see [`AcceptMark`]).
    accepted_by_char: HashMap<String, u64>,
    /// Bumped whenever `accepted_by_char` is cleared to stay bounded.
    accepted_round: u64,
    generation: u32,
    last_index: u64,
    epoch: Option<String>,
}

/// Characters whose accepted totals the buffer tracks before it starts over (a new round).
const ACCEPTED_CHARS_MAX: usize = 100_000;

/// How many entries of one character this buffer had taken in at some moment. Two marks of the same
/// round tell how many likes of the character were accepted between them, wherever those entries are now
/// (buffer, Redis or the database).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptMark {
    pub round: u64,
    pub accepted: u64,
}

/// The key of a (character, liker) pair; `\x1f` cannot occur in either part.
pub fn pair_key(character: &str, liker: &str) -> String {
    let mut s = String::with_capacity(character.len() + liker.len() + 1);
    s.push_str(character);
    s.push('\x1f');
    s.push_str(liker);
    s
}

fn bump(map: &mut HashMap<String, u32>, key: &str, up: bool) {
    if up {
        *map.entry(key.to_string()).or_default() += 1;
    } else if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Buffer {
    /// `id_prefix` makes entry ids unique across processes (`<instance>.<nonce>`).
    pub fn new(max: usize, id_prefix: String) -> Buffer {
        Buffer {
            max,
            id_prefix,
            next_seq: 1,
            slots: BTreeMap::new(),
            pairs: HashMap::new(),
            unflushed: BTreeSet::new(),
            unflushed_by_char: HashMap::new(),
            retained_by_char: HashMap::new(),
            accepted_by_char: HashMap::new(),
            accepted_round: 0,
            generation: 1,
            last_index: 0,
            epoch: None,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn unflushed_len(&self) -> usize {
        self.unflushed.len()
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    pub fn contains_pair(&self, character: &str, liker: &str) -> bool {
        self.pairs.contains_key(&pair_key(character, liker))
    }

    /// The sequence number of the retained entry of a pair.
    pub fn seq_of(&self, character: &str, liker: &str) -> Option<u64> {
        self.pairs.get(&pair_key(character, liker)).copied()
    }

    /// The lowest sequence number still retained: every entry numbered below it has left the buffer
    /// (MySQL has it).
    pub fn oldest_seq(&self) -> Option<u64> {
        self.slots.first_key_value().map(|(seq, _)| *seq)
    }

    /// Retained entries of `character` not yet pushed to Redis.
    pub fn unflushed_for(&self, character: &str) -> u32 {
        self.unflushed_by_char.get(character).copied().unwrap_or(0)
    }

    /// Retained entries of `character`, pushed or not.
    pub fn retained_for(&self, character: &str) -> u32 {
        self.retained_by_char.get(character).copied().unwrap_or(0)
    }

    /// The accepted-entries mark of `character` now.
    pub fn accept_mark(&self, character: &str) -> AcceptMark {
        AcceptMark {
            round: self.accepted_round,
            accepted: self.accepted_by_char.get(character).copied().unwrap_or(0),
        }
    }

    /// Accepts a like (see [`Accept`]).
    pub fn accept(&mut self, character: &str, liker: &str, at_ms: i64) -> Accept {
        let key = pair_key(character, liker);
        if self.pairs.contains_key(&key) {
            return Accept::Duplicate;
        }
        if self.slots.len() >= self.max {
            return Accept::Full;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = LikeEntry {
            id: format!("{}-{seq}", self.id_prefix),
            character: character.to_string(),
            liker: liker.to_string(),
            at_ms,
        };
        self.insert(seq, key, entry.clone());
        Accept::New(entry)
    }

    /// Re-buffers entries recovered from elsewhere (a backup, a journal), keeping their ids; pairs already
    /// retained are skipped. Ignores the bound: recovered likes were already acknowledged. Returns how many
    /// were added.
    pub fn restore(&mut self, entries: impl IntoIterator<Item = LikeEntry>) -> usize {
        let mut added = 0;
        for entry in entries {
            let key = pair_key(&entry.character, &entry.liker);
            if self.pairs.contains_key(&key) {
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.insert(seq, key, entry);
            added += 1;
        }
        added
    }

    fn insert(&mut self, seq: u64, key: String, entry: LikeEntry) {
        if self.accepted_by_char.len() >= ACCEPTED_CHARS_MAX
            && !self.accepted_by_char.contains_key(&entry.character)
        {
            self.accepted_by_char.clear();
            self.accepted_round += 1;
        }
        *self
            .accepted_by_char
            .entry(entry.character.clone())
            .or_default() += 1;
        bump(&mut self.unflushed_by_char, &entry.character, true);
        bump(&mut self.retained_by_char, &entry.character, true);
        self.pairs.insert(key, seq);
        self.unflushed.insert(seq);
        self.slots.insert(
            seq,
            Slot {
                entry,
                pushed: None,
            },
        );
    }

    /// Up to `max` unflushed entries, oldest first, each with the next push index of the current
    /// generation. Call [`Buffer::mark_pushed`] when the push succeeded, or [`Buffer::new_generation`]
    /// when it may have failed.
    pub fn take_for_flush(&mut self, max: usize) -> (u32, Vec<Outgoing>) {
        let mut out = Vec::with_capacity(max.min(self.unflushed.len()));
        for seq in self.unflushed.iter().take(max) {
            self.last_index += 1;
            out.push(Outgoing {
                seq: *seq,
                index: self.last_index,
                entry: self.slots[seq].entry.clone(),
            });
        }
        (self.generation, out)
    }

    /// Records a successful push of `items` under `generation`, the last of them at queue position
    /// `last_position` (ignored if the generation moved on).
    pub fn mark_pushed(
        &mut self,
        generation: u32,
        items: &[Outgoing],
        last_position: u64,
        at: Instant,
    ) {
        if generation != self.generation {
            return;
        }
        let first = (last_position + 1).saturating_sub(items.len() as u64);
        for (i, it) in items.iter().enumerate() {
            if let Some(slot) = self.slots.get_mut(&it.seq)
                && self.unflushed.remove(&it.seq)
            {
                slot.pushed = Some(Push {
                    generation,
                    index: it.index,
                    position: first + i as u64,
                    at,
                });
                bump(&mut self.unflushed_by_char, &slot.entry.character, false);
            }
        }
    }

    /// Drops the entries pushed under `generation` with an index ≤ `watermark` (MySQL has them).
    /// Returns how many.
    pub fn confirm(&mut self, generation: u32, watermark: u64) -> usize {
        if generation != self.generation || watermark == 0 {
            return 0;
        }
        let done: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.pushed
                    .is_some_and(|p| p.generation == generation && p.index <= watermark)
            })
            .map(|(seq, _)| *seq)
            .collect();
        self.remove(&done)
    }

    /// Drops entries by sequence number (their batch was committed to MySQL). Returns how many.
    pub fn remove(&mut self, seqs: &[u64]) -> usize {
        let mut n = 0;
        for seq in seqs {
            if let Some(slot) = self.slots.remove(seq) {
                n += 1;
                self.pairs
                    .remove(&pair_key(&slot.entry.character, &slot.entry.liker));
                if self.unflushed.remove(seq) {
                    bump(&mut self.unflushed_by_char, &slot.entry.character, false);
                }
                bump(&mut self.retained_by_char, &slot.entry.character, false);
            }
        }
        n
    }

    /// Starts a new push numbering: every pushed, unconfirmed entry becomes unflushed again.
    pub fn new_generation(&mut self) {
        self.generation += 1;
        self.last_index = 0;
        for (seq, slot) in self.slots.iter_mut() {
            if slot.pushed.take().is_some() {
                self.unflushed.insert(*seq);
                bump(&mut self.unflushed_by_char, &slot.entry.character, true);
            }
        }
    }

    /// Adopts the Redis epoch; a change means Redis lost what was pushed, so a new generation starts.
    /// Returns true when the epoch changed.
    pub fn adopt_epoch(&mut self, epoch: &str) -> bool {
        if self.epoch.as_deref() == Some(epoch) {
            return false;
        }
        self.epoch = Some(epoch.to_string());
        self.new_generation();
        true
    }

    /// True when a pushed, unconfirmed entry is no longer in the Redis queue: the syncer went past its
    /// position (`≤ acked`) without MySQL receiving it, or the queue's history is shorter than its
    /// position (`> pushed`: a failover to a replica that missed the tail). It must be pushed again.
    pub fn has_lost_push(&self, acked: u64, pushed: u64) -> bool {
        self.slots.values().any(|s| {
            s.pushed
                .is_some_and(|p| p.position <= acked || p.position > pushed)
        })
    }

    /// When the oldest pushed, unconfirmed entry was pushed.
    pub fn oldest_push(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|s| s.pushed.map(|p| p.at))
            .min()
    }

    /// True when some entries are pushed and waiting for confirmation.
    pub fn has_pushed(&self) -> bool {
        self.slots.len() > self.unflushed.len()
    }

    /// Up to `max` retained entries (pushed or not), oldest first, with their sequence numbers: the
    /// direct-to-database path syncs them all.
    pub fn oldest(&self, max: usize) -> Vec<(u64, LikeEntry)> {
        self.slots
            .iter()
            .take(max)
            .map(|(seq, s)| (*seq, s.entry.clone()))
            .collect()
    }

    /// Every retained entry, oldest first.
    pub fn pending(&self) -> Vec<LikeEntry> {
        self.slots.values().map(|s| s.entry.clone()).collect()
    }
}
