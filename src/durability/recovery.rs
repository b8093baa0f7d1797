//! Recovery at start-up: backup files and journal segments left by earlier processes are applied before
//! the gateway reports ready — in the background, the port already serving (`/health/live` 200,
//! `/health/ready` 503 `recovering`), so a database that is down cannot keep the listener unbound.
//!
//! Contract: every `backup/*.json` file and every journal segment found at start-up is applied to the
//! database in chunks of `MAPLE_LIKE_SYNC_BATCH` entries through [`LikeService::apply_entries`] (under the
//! sync lock, fenced). Each chunk's batch id is derived from the entry ids it holds (`rc:` + SHA-256), and
//! the store records it in `applied_entries` in the same transaction as the likes, while the (character,
//! liker) pairs it inserts are unique: applying a file twice, or crashing half-way and starting again,
//! counts every entry exactly once. A file is moved to `backup/applied/` (a segment deleted) only after
//! all its chunks are in the database.
//!
//! Failure modes: a file that does not parse (truncated, wrong format or version) is moved to
//! `backup/quarantine/` with an error log line and `maple_recovery_quarantined_files_total` — never a
//! crash. A file that cannot be applied because the database (or the lock) is unavailable stays where it
//! is; its entries are also handed to the like service's buffer (which pushes them to Redis when Redis is
//! up and keeps them until MySQL has them), and [`Recovery::retry_loop`] applies the file again in the
//! background until it succeeds. Once one file found the database down, the pass re-buffers and defers
//! the remaining files without trying each (each try would cost a failing chunk of 3–10 s).
//!
//! Why straight to the database rather than through Redis first: the file can only be retired once the
//! database has its entries; applying there directly makes "moved to applied/" mean "durable".

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::likes::{LikeEntry, LikeService};

use super::{DurabilityError, backup, journal};

/// Backup files moved to quarantine.
pub const RECOVERY_QUARANTINED_TOTAL: &str = "maple_recovery_quarantined_files_total";
/// Entries applied by recovery (including ones the database already had).
pub const RECOVERY_ENTRIES_TOTAL: &str = "maple_recovery_entries_total";
/// Files waiting to be applied (the stores were unavailable).
pub const RECOVERY_DEFERRED_FILES: &str = "maple_recovery_deferred_files";

/// How long one chunk may wait for the sync lock and the database.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between background retries of deferred files.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// The directories recovery works in, under `MAPLE_DATA_DIR`.
#[derive(Clone, Debug)]
pub struct Dirs {
    pub backup: PathBuf,
    pub applied: PathBuf,
    pub quarantine: PathBuf,
    pub journal: PathBuf,
}

impl Dirs {
    pub fn new(data_dir: &Path) -> Dirs {
        let backup = data_dir.join("backup");
        Dirs {
            applied: backup.join("applied"),
            quarantine: backup.join("quarantine"),
            journal: data_dir.join("journal"),
            backup,
        }
    }

    pub fn create(&self) -> Result<(), DurabilityError> {
        for d in [&self.backup, &self.applied, &self.quarantine, &self.journal] {
            std::fs::create_dir_all(d).map_err(|source| DurabilityError::Io {
                path: d.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }

    /// Backup files waiting to be applied, oldest name first (temp files of interrupted writes removed).
    pub fn backup_files(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for p in std::fs::read_dir(&self.backup)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
        {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !p.is_file() {
                continue;
            }
            if name.starts_with('.') && name.ends_with(".tmp") {
                // A backup write that never reached its rename: the journal still holds those likes.
                let _ = std::fs::remove_file(&p);
                continue;
            }
            if name.ends_with(".json") {
                v.push(p);
            }
        }
        v.sort();
        v
    }
}

/// A file recovery handles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Backup(PathBuf),
    Segment(PathBuf),
}

impl Source {
    pub fn path(&self) -> &Path {
        match self {
            Source::Backup(p) | Source::Segment(p) => p,
        }
    }
}

/// What a recovery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub files_applied: usize,
    pub entries_applied: usize,
    /// Pairs the database did not have yet.
    pub inserted: u64,
    pub quarantined: usize,
    /// Files left for the background retry.
    pub deferred: Vec<Source>,
}

/// Applies backup files and journal segments.
#[derive(Clone, Debug)]
pub struct Recovery {
    likes: LikeService,
    dirs: Dirs,
    chunk: usize,
}

/// The batch id of a chunk: a function of its entry ids only.
fn chunk_id(entries: &[LikeEntry]) -> String {
    let mut h = Sha256::new();
    for e in entries {
        h.update(e.id.as_bytes());
        h.update([0u8]);
    }
    format!("rc:{}", &hex::encode(h.finalize())[..40])
}

/// What applying one recovery file did.
enum FileOutcome {
    Applied {
        entries: usize,
        inserted: u64,
    },
    Quarantined,
    Deferred,
    /// The database (or the lock) was unavailable.
    DatabaseDown,
}

impl Recovery {
    pub fn new(likes: LikeService, dirs: Dirs, chunk: usize) -> Recovery {
        Recovery {
            likes,
            dirs,
            chunk: chunk.max(1),
        }
    }

    /// Everything to apply at start-up: backup files, then journal segments of earlier processes (call
    /// before the journal starts).
    pub fn sources(&self) -> Vec<Source> {
        let mut v: Vec<Source> = self
            .dirs
            .backup_files()
            .into_iter()
            .map(Source::Backup)
            .collect();
        v.extend(
            journal::segments(&self.dirs.journal)
                .into_iter()
                .map(Source::Segment),
        );
        v
    }

    /// Applies `sources` (see the module documentation); never fails.
    pub async fn run(&self, sources: Vec<Source>, rebuffer: bool) -> RecoveryReport {
        let mut report = RecoveryReport::default();
        let mut db_down = false;
        for s in sources {
            match self.apply(&s, rebuffer, !db_down).await {
                FileOutcome::Applied { entries, inserted } => {
                    report.files_applied += 1;
                    report.entries_applied += entries;
                    report.inserted += inserted;
                }
                FileOutcome::Quarantined => report.quarantined += 1,
                FileOutcome::Deferred => report.deferred.push(s),
                FileOutcome::DatabaseDown => {
                    db_down = true;
                    report.deferred.push(s);
                }
            }
        }
        metrics::gauge!(RECOVERY_DEFERRED_FILES).set(report.deferred.len() as f64);
        report
    }

    fn quarantine(&self, path: &Path, why: &str) -> FileOutcome {
        let name = path.file_name().unwrap_or_default();
        let to = self.dirs.quarantine.join(name);
        let r =
            std::fs::create_dir_all(&self.dirs.quarantine).and_then(|_| std::fs::rename(path, &to));
        let _ = backup::sync_dir(&self.dirs.quarantine);
        metrics::counter!(RECOVERY_QUARANTINED_TOTAL).increment(1);
        match r {
            Ok(()) => tracing::error!(
                file = %path.display(),
                moved_to = %to.display(),
                reason = why,
                "backup file is damaged and was quarantined: it was NOT applied; inspect it (docs/operations.md, \"Shutdown and recovery\")"
            ),
            Err(e) => tracing::error!(
                file = %path.display(),
                reason = why,
                error = %e,
                "backup file is damaged and could not be moved to quarantine; it is skipped"
            ),
        }
        FileOutcome::Quarantined
    }

    /// Applies one file; with `try_db` false (the database was just found down) only parses and
    /// re-buffers it.
    async fn apply(&self, source: &Source, rebuffer: bool, try_db: bool) -> FileOutcome {
        let path = source.path();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read recovery file; retrying later");
                return FileOutcome::Deferred;
            }
        };
        let (entries, damaged) = match source {
            Source::Backup(_) => match backup::parse(&bytes) {
                Ok(f) => (backup::likes(f), 0),
                Err(e) => return self.quarantine(path, &e.to_string()),
            },
            Source::Segment(_) => journal::read_segment(&bytes),
        };
        if !try_db {
            if rebuffer {
                self.likes.restore(entries);
            }
            return FileOutcome::DatabaseDown;
        }
        let mut inserted = 0;
        for chunk in entries.chunks(self.chunk) {
            let r = tokio::time::timeout(
                CHUNK_TIMEOUT,
                self.likes
                    .apply_entries(&chunk_id(chunk), chunk, CHUNK_TIMEOUT),
            )
            .await;
            match r {
                Ok(Ok(applied)) => {
                    inserted += applied.inserted;
                    metrics::counter!(RECOVERY_ENTRIES_TOTAL).increment(chunk.len() as u64);
                }
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_string(),
                    };
                    if rebuffer {
                        self.likes.restore(entries.clone());
                    }
                    tracing::warn!(
                        file = %path.display(),
                        entries = entries.len(),
                        error = %why,
                        "cannot apply recovery file now (database unavailable); its likes are buffered and the file is retried in the background"
                    );
                    return FileOutcome::DatabaseDown;
                }
            }
        }
        match source {
            Source::Backup(p) => {
                let to = self.dirs.applied.join(p.file_name().unwrap_or_default());
                let _ = std::fs::create_dir_all(&self.dirs.applied);
                if let Err(e) = std::fs::rename(p, &to) {
                    tracing::warn!(file = %p.display(), error = %e, "applied backup file could not be moved to applied/ (applying it again is harmless)");
                }
                let _ = backup::sync_dir(&self.dirs.applied);
                let _ = backup::sync_dir(&self.dirs.backup);
            }
            Source::Segment(p) if damaged > 0 => {
                // Its readable lines are applied; keep the rest for an operator.
                self.quarantine(p, &format!("{damaged} damaged journal lines"));
            }
            Source::Segment(p) => {
                let _ = std::fs::remove_file(p);
                let _ = backup::sync_dir(&self.dirs.journal);
            }
        }
        tracing::info!(file = %path.display(), entries = entries.len(), inserted, "recovery file applied");
        FileOutcome::Applied {
            entries: entries.len(),
            inserted,
        }
    }

    /// Retries deferred files until all are applied (or quarantined) or `cancel` fires.
    pub async fn retry_loop(self, mut deferred: Vec<Source>, cancel: CancellationToken) {
        while !deferred.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
            let report = self.run(std::mem::take(&mut deferred), false).await;
            if report.files_applied > 0 {
                tracing::info!(
                    files = report.files_applied,
                    entries = report.entries_applied,
                    "deferred recovery files applied"
                );
            }
            deferred = report.deferred;
        }
    }
}
