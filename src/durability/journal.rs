//! The like journal: every acknowledged like is on disk (written and fsynced) before its 200 goes out.
//!
//! Contract (group commit): the like service hands each accepted like to the journal's writer thread
//! through [`JournalHandle`] (under the buffer's lock, so in sequence order) and waits for the commit
//! mark to cover it before it answers. The writer takes everything queued — one like or thousands —
//! appends it to the current segment in one `write(2)`, `fdatasync`s the file, and publishes the highest
//! sequence number of the group: every like waiting on it is answered at once. Concurrent likes share one
//! fsync; a like waits for at most the fsync in progress plus its own group's. So a `kill -9`, a kernel
//! crash or a power loss loses no acknowledged like (the disk honouring fsync), and on a slow disk the
//! POST like latency grows with the fsync latency instead of the loss window (ADR 0013).
//!
//! Segments: `journal/<source>-<n>.jnl`, one JSON [`LikeEntry`] per line. The current segment is rotated
//! every [`ROTATE_EVERY`] (or at [`ROTATE_ENTRIES`] lines); a closed segment is deleted (checked every
//! [`COLLECT_EVERY`]) once every entry in it has left the like buffer (an entry leaves only when MySQL is
//! known to have it): the segment keeps the highest buffer sequence number it holds and is deleted when
//! the buffer's lowest retained one is above it — one lookup, not a copy of the buffer. Segments left by
//! an earlier process are replayed by recovery (idempotently) and deleted once the database has them.
//!
//! Failure modes: a write or fsync error is logged once per streak and counted
//! (`maple_journal_errors_total`); the likes of that group are answered 503 `LIKES_UNAVAILABLE` (they
//! stay in the buffer and normally still reach MySQL, but they are not acknowledged) and the segment is
//! closed, so the next group starts a fresh file. A disk that hangs holds the likes until the request
//! timeout answers them. A torn last line (the process died mid-write) is skipped at replay.
//!
//! Why a thread and not a task: the writer does blocking file I/O and fsync; a thread keeps that off the
//! async workers and keeps working while the runtime is busy.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::likes::{JournalCommits, JournalHandle, JournalMsg, LikeEntry, LikeService};

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

/// How often closed segments are checked against the buffer's lowest retained sequence number.
pub const COLLECT_EVERY: Duration = Duration::from_secs(1);
/// How often the writer wakes without work, to rotate and collect.
const TICK: Duration = Duration::from_millis(250);
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
    pub fn start(dir: &Path, likes: LikeService) -> Result<Journal, DurabilityError> {
        std::fs::create_dir_all(dir).map_err(|source| DurabilityError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let (intake, rx, commits) = JournalHandle::channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            prefix: file_safe(likes.source()),
            likes: likes.clone(),
            commits,
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
    /// Likes handed over after this are not acknowledged (503).
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
    lines: usize,
    /// The highest buffer sequence number written to it.
    max_seq: u64,
    opened: Instant,
}

struct ClosedSegment {
    path: PathBuf,
    max_seq: u64,
}

struct Writer {
    dir: PathBuf,
    prefix: String,
    likes: LikeService,
    commits: JournalCommits,
    seq: u64,
    current: Option<Segment>,
    closed: Vec<ClosedSegment>,
    failing: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<JournalMsg>) -> Vec<PathBuf> {
        let mut next_collect = Instant::now() + COLLECT_EVERY;
        loop {
            let mut stop = false;
            match rx.recv_timeout(TICK) {
                Ok(JournalMsg::Accepted { seq, entry }) => {
                    let mut ok = self.append(seq, &entry);
                    let mut last = seq;
                    // The group: whatever else queued up meanwhile (during the last fsync, typically).
                    loop {
                        match rx.try_recv() {
                            Ok(JournalMsg::Accepted { seq, entry }) => {
                                ok &= self.append(seq, &entry);
                                last = seq;
                            }
                            Ok(JournalMsg::Stop) => {
                                stop = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(last, ok);
                }
                Ok(JournalMsg::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if stop {
                // Entries that raced the stop are still queued behind it: commit them too.
                let mut ok = true;
                let mut last = None;
                while let Ok(JournalMsg::Accepted { seq, entry }) = rx.try_recv() {
                    ok &= self.append(seq, &entry);
                    last = Some(seq);
                }
                if let Some(last) = last {
                    self.commit(last, ok);
                }
                return self.remaining();
            }
            self.maybe_rotate();
            if Instant::now() >= next_collect {
                self.collect();
                next_collect = Instant::now() + COLLECT_EVERY;
            }
        }
    }

    /// Writes and fsyncs the group ending at `last`, then releases the likes waiting on it.
    fn commit(&mut self, last: u64, written: bool) {
        let synced = written && self.sync();
        if !synced {
            // Whatever the page cache holds of this segment can no longer be trusted: start a new one.
            self.close_current();
        }
        self.commits.committed(last, synced);
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
                        lines: 0,
                        max_seq: 0,
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

    /// Appends one entry to the current segment's buffer; false when that failed.
    fn append(&mut self, seq: u64, e: &LikeEntry) -> bool {
        let Ok(mut line) = serde_json::to_vec(e) else {
            return false;
        };
        line.push(b'\n');
        let r = match self.open() {
            Some(seg) => {
                seg.lines += 1;
                seg.max_seq = seg.max_seq.max(seq);
                seg.out.write_all(&line)
            }
            None => return false,
        };
        metrics::counter!(JOURNAL_ENTRIES_TOTAL).increment(1);
        match r {
            Ok(()) => true,
            Err(err) => {
                self.error("write", &err);
                false
            }
        }
    }

    /// Writes what is buffered and fsyncs it; false when either failed.
    fn sync(&mut self) -> bool {
        let Some(seg) = self.current.as_mut() else {
            return false;
        };
        let r = seg.out.flush().and_then(|_| seg.out.get_ref().sync_data());
        match r {
            Ok(()) => {
                if self.failing {
                    tracing::info!("like journal writes recovered");
                }
                self.failing = false;
                true
            }
            Err(e) => {
                self.error("fsync", &e);
                false
            }
        }
    }

    fn close_current(&mut self) {
        if let Some(seg) = self.current.take() {
            self.closed.push(ClosedSegment {
                path: seg.path,
                max_seq: seg.max_seq,
            });
        }
    }

    fn maybe_rotate(&mut self) {
        let due = self.current.as_ref().is_some_and(|s| {
            s.lines > 0 && (s.opened.elapsed() >= ROTATE_EVERY || s.lines >= ROTATE_ENTRIES)
        });
        if due {
            self.close_current();
        }
    }

    /// Deletes closed segments every entry of which has left the buffer.
    fn collect(&mut self) {
        if self.closed.is_empty() {
            return;
        }
        let oldest = self.likes.oldest_retained_seq();
        let before = self.closed.len();
        self.closed.retain(|s| {
            if oldest.is_some_and(|o| o <= s.max_seq) {
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
