//! The like journal: every accepted like appended to a local file, so a `kill -9` loses (almost) nothing.
//!
//! Contract: [`Journal::start`] attaches the journal's intake ([`JournalHandle`]) to the like service;
//! each accepted like is handed to a dedicated writer thread through that channel before it is
//! acknowledged (no I/O on the request path) and written —
//! `write(2)`, i.e. into the OS page cache, which survives the death of the process — as soon as the
//! thread receives it, together with whatever else is queued. The file is fsynced every
//! `MAPLE_JOURNAL_FSYNC_MS` (default 50) while it has unsynced lines, so a machine crash or power loss
//! loses at most the likes of the last fsync window.
//!
//! Segments: `journal/<source>-<n>.jnl`, one JSON [`LikeEntry`] per line. The current segment is rotated
//! every [`ROTATE_EVERY`] (or at [`ROTATE_ENTRIES`] lines); a closed segment is deleted (checked every
//! [`COLLECT_EVERY`]) once none of its entries is still pending in the like service (an entry leaves the buffer only when MySQL is known to
//! have it). Segments left by an earlier process are replayed at start-up by recovery (idempotently) and
//! deleted once the database has them.
//!
//! Failure modes: a write or fsync error is logged once per streak and counted
//! (`maple_journal_errors_total`); likes keep being accepted (the journal is a safety net, the buffer →
//! Redis → MySQL path stays the main one). A torn last line (the process died mid-write) is skipped at
//! replay.
//!
//! Why a thread and not a task: the writer does blocking file I/O and fsync; a thread keeps that off the
//! async workers and keeps working while the runtime is busy.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::likes::{JournalHandle, JournalMsg, LikeEntry, LikeService};

use super::DurabilityError;
use super::backup::{file_safe, sync_dir};

/// A segment is closed after this long.
pub const ROTATE_EVERY: Duration = Duration::from_secs(2);
/// … or after this many lines.
pub const ROTATE_ENTRIES: usize = 50_000;
/// Likes written to the journal.
pub const JOURNAL_ENTRIES_TOTAL: &str = "maple_journal_entries_total";
/// Journal write or fsync failures.
pub const JOURNAL_ERRORS_TOTAL: &str = "maple_journal_errors_total";

/// How often closed segments are checked against the pending likes (the check copies the buffer's ids).
pub const COLLECT_EVERY: Duration = Duration::from_secs(1);
/// The file extension of journal segments.
pub const EXT: &str = "jnl";

/// The running journal. Dropping it stops the writer (after a last write and fsync).
pub struct Journal {
    intake: JournalHandle,
    thread: Option<std::thread::JoinHandle<Vec<PathBuf>>>,
    dir: PathBuf,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Segments present in `dir` (from earlier processes when called before [`Journal::start`]), oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == EXT))
        .map(|p| {
            let t = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, p)
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// A segment's entries, and the number of damaged lines other than a torn last line.
pub fn read_segment(bytes: &[u8]) -> (Vec<LikeEntry>, usize) {
    let text = String::from_utf8_lossy(bytes);
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let mut entries = Vec::with_capacity(lines.len());
    let mut damaged = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<LikeEntry>(line) {
            Ok(e) => entries.push(e),
            // A torn last line is what a kill -9 mid-write leaves: expected, not damage.
            Err(_) if i + 1 == lines.len() && !complete => {}
            Err(_) => damaged += 1,
        }
    }
    (entries, damaged)
}

impl Journal {
    /// Starts the writer and attaches its intake to `likes`.
    pub fn start(
        dir: &Path,
        likes: LikeService,
        fsync_every: Duration,
    ) -> Result<Journal, DurabilityError> {
        std::fs::create_dir_all(dir).map_err(|source| DurabilityError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let (intake, rx) = JournalHandle::channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            prefix: file_safe(likes.source()),
            likes: likes.clone(),
            fsync_every,
            seq: 0,
            current: None,
            closed: Vec::new(),
            failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("like-journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| DurabilityError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        likes.attach_journal(intake.clone());
        Ok(Journal {
            intake,
            thread: Some(thread),
            dir: dir.to_path_buf(),
        })
    }

    /// Stops the writer after a last write and fsync; returns this process's segments still on disk.
    pub fn close(&mut self) -> Vec<PathBuf> {
        self.intake.stop();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }

    /// Deletes segments (after their entries were backed up or are known to be in the database).
    pub fn remove(&self, segments: &[PathBuf]) {
        for s in segments {
            let _ = std::fs::remove_file(s);
        }
        let _ = sync_dir(&self.dir);
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.intake.stop();
    }
}

struct Segment {
    path: PathBuf,
    out: BufWriter<File>,
    ids: Vec<String>,
    dirty: bool,
    opened: Instant,
}

struct ClosedSegment {
    path: PathBuf,
    ids: Vec<String>,
}

struct Writer {
    dir: PathBuf,
    prefix: String,
    likes: LikeService,
    fsync_every: Duration,
    seq: u64,
    current: Option<Segment>,
    closed: Vec<ClosedSegment>,
    failing: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<JournalMsg>) -> Vec<PathBuf> {
        let mut next_sync = Instant::now() + self.fsync_every;
        let mut next_collect = Instant::now() + COLLECT_EVERY;
        loop {
            let wait = next_sync.saturating_duration_since(Instant::now());
            let mut stop = false;
            match rx.recv_timeout(wait) {
                Ok(JournalMsg::Accepted(e)) => {
                    self.append(&e);
                    // Take whatever else is queued, then hand it all to the OS in one write.
                    loop {
                        match rx.try_recv() {
                            Ok(JournalMsg::Accepted(e)) => self.append(&e),
                            Ok(JournalMsg::Stop) => {
                                stop = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.flush();
                }
                Ok(JournalMsg::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if stop {
                // Entries sent before the stop are still queued behind it only if they raced it: take them.
                while let Ok(JournalMsg::Accepted(e)) = rx.try_recv() {
                    self.append(&e);
                }
                self.sync();
                return self.remaining();
            }
            if Instant::now() >= next_sync {
                self.sync();
                next_sync = Instant::now() + self.fsync_every;
                self.maybe_rotate();
                if Instant::now() >= next_collect {
                    self.collect();
                    next_collect = Instant::now() + COLLECT_EVERY;
                }
            }
        }
    }

    fn error(&mut self, what: &str, e: &std::io::Error) {
        metrics::counter!(JOURNAL_ERRORS_TOTAL).increment(1);
        if !self.failing {
            tracing::error!(error = %e, dir = %self.dir.display(), "like journal {what} failed: kill -9 safety is reduced until it recovers");
        }
        self.failing = true;
    }

    fn open(&mut self) -> Option<&mut Segment> {
        if self.current.is_none() {
            self.seq += 1;
            let path = self
                .dir
                .join(format!("{}-{:06}.{EXT}", self.prefix, self.seq));
            match File::create(&path) {
                Ok(f) => {
                    let _ = sync_dir(&self.dir);
                    self.current = Some(Segment {
                        path,
                        out: BufWriter::with_capacity(256 * 1024, f),
                        ids: Vec::new(),
                        dirty: false,
                        opened: Instant::now(),
                    });
                }
                Err(e) => {
                    self.error("open", &e);
                    return None;
                }
            }
        }
        self.current.as_mut()
    }

    fn append(&mut self, e: &LikeEntry) {
        let Ok(mut line) = serde_json::to_vec(e) else {
            return;
        };
        line.push(b'\n');
        let r = match self.open() {
            Some(seg) => {
                seg.ids.push(e.id.clone());
                seg.dirty = true;
                seg.out.write_all(&line)
            }
            None => return,
        };
        metrics::counter!(JOURNAL_ENTRIES_TOTAL).increment(1);
        if let Err(err) = r {
            self.error("write", &err);
        }
    }

    fn flush(&mut self) {
        if let Some(seg) = self.current.as_mut()
            && let Err(e) = seg.out.flush()
        {
            self.error("write", &e);
        }
    }

    fn sync(&mut self) {
        let Some(seg) = self.current.as_mut() else {
            return;
        };
        if !seg.dirty {
            return;
        }
        let r = seg.out.flush().and_then(|_| seg.out.get_ref().sync_data());
        match r {
            Ok(()) => {
                seg.dirty = false;
                if self.failing {
                    tracing::info!("like journal writes recovered");
                }
                self.failing = false;
            }
            Err(e) => self.error("fsync", &e),
        }
    }

    fn maybe_rotate(&mut self) {
        let due = self.current.as_ref().is_some_and(|s| {
            !s.ids.is_empty()
                && (s.opened.elapsed() >= ROTATE_EVERY || s.ids.len() >= ROTATE_ENTRIES)
        });
        if due && let Some(seg) = self.current.take() {
            self.closed.push(ClosedSegment {
                path: seg.path,
                ids: seg.ids,
            });
        }
    }

    /// Deletes closed segments none of whose entries is still pending.
    fn collect(&mut self) {
        if self.closed.is_empty() {
            return;
        }
        let pending: HashSet<String> = self
            .likes
            .pending_entries()
            .into_iter()
            .map(|e| e.id)
            .collect();
        let before = self.closed.len();
        self.closed.retain(|s| {
            if s.ids.iter().any(|id| pending.contains(id)) {
                return true;
            }
            let _ = std::fs::remove_file(&s.path);
            false
        });
        if self.closed.len() != before {
            let _ = sync_dir(&self.dir);
        }
    }

    fn remaining(&mut self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.closed.drain(..).map(|s| s.path).collect();
        if let Some(seg) = self.current.take() {
            v.push(seg.path);
        }
        v
    }
}
