//! Crash durability of likes: the journal, the backup file format and start-up recovery.
//!
//! # Guarantee
//!
//! An acknowledged like is in MySQL after a restart and the next sync — graceful shutdown, `kill -9`,
//! power loss or kernel crash (the disk honouring fsync): the 200 goes out only after the journal fsync
//! that covers the like (group commit, ADR 0013). No like is ever counted twice (pairs are unique in the
//! database and batch ids are recorded).
//!
//! Where a like becomes durable, in order:
//!
//! 1. [`journal`]: the like service hands every accepted like to the journal's writer thread (through
//!    [`crate::likes::JournalHandle`]) and answers once the thread has appended it, with every other like
//!    queued meanwhile, to this process's segment file and fsynced it.
//! 2. The like path itself (buffer → Redis → MySQL, `crate::likes`): once MySQL has an entry, the journal
//!    segments holding it are deleted.
//! 3. [`backup`]: at shutdown, what MySQL does not have yet is written to a backup file (atomically);
//!    once that file is durable this process's journal segments are deleted.
//! 4. [`recovery`]: at the next start-up, in the background once the port serves (`/health/ready` 503
//!    `recovering` until done), every backup file and every journal segment of earlier processes is
//!    applied to the database idempotently.
//!
//! Failure modes: a journal write or fsync error is logged and counted, and the likes of that group are
//! answered 503 (retained, not acknowledged); a damaged backup file or journal segment is quarantined for an
//! operator, never a crash; a file that cannot be applied at start-up (database down) is retried in the
//! background while its likes are re-buffered. Snapshot writes are not covered: they are a copy of
//! upstream data, fetched again on demand.

pub mod backup;
pub mod journal;
pub mod recovery;

#[cfg(test)]
mod tests;

use crate::error::{Classify, Code, ErrorKind};

pub use journal::Journal;
pub use recovery::{Dirs, Recovery, RecoveryReport, Source};

/// A journal, backup or recovery failure.
#[derive(Debug, thiserror::Error)]
pub enum DurabilityError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A backup file that is not a whole file of the known format and version.
    #[error("not a valid backup file: {0}")]
    Corrupt(String),
}

impl Classify for DurabilityError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
    fn retryable(&self) -> bool {
        matches!(self, DurabilityError::Io { .. })
    }
    fn code(&self) -> Code {
        Code::Internal
    }
}
