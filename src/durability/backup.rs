//! Backup files: what could not be flushed at shutdown, on disk, in a versioned JSON format.
//!
//! Contract: [`write`] creates `backup/shutdown-<instance>-<unix_ms>.json` atomically — the bytes go to a
//! hidden temp file in the same directory, which is fsynced, renamed to its final name, and the directory
//! is fsynced — so a reader sees either no file or a whole one (a crash mid-write leaves only a `.tmp`
//! file, which recovery ignores and removes). [`parse`] accepts exactly the format written here
//! (`format = "maple-gateway-backup"`, `version = 1`) and refuses anything else with
//! [`DurabilityError::Corrupt`], which recovery turns into a quarantine.
//!
//! Format (one entry per pending write; the entry id is the like's unique id, recorded in the database on
//! application):
//!
//! ```json
//! {"format":"maple-gateway-backup","version":1,"instance":"gw-1","created_ms":1718000000000,
//!  "reason":"shutdown","entries":[{"kind":"like","id":"gw-1.1a2b3c4d-17","character":"evan",
//!  "liker":"u1","at_ms":1718000000000}]}
//! ```
//!
//! Why JSON rather than a binary log: the file is rare, small and meant to be readable by an operator who
//! has to decide what to do with a quarantined one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::likes::LikeEntry;

use super::DurabilityError;

/// The `format` field of every backup file.
pub const FORMAT: &str = "maple-gateway-backup";
/// The current (and only) version.
pub const VERSION: u32 = 1;

/// A backup file's content.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BackupFile {
    pub format: String,
    pub version: u32,
    pub instance: String,
    pub created_ms: i64,
    /// `shutdown` (graceful) or `forced` (second signal).
    pub reason: String,
    pub entries: Vec<BackupEntry>,
}

/// One pending write.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackupEntry {
    Like(LikeEntry),
}

/// Characters allowed in a file name part; others become `_`.
pub(crate) fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Fsyncs a directory (makes a rename or unlink in it durable).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename, directory fsync.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DurabilityError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error| DurabilityError::Io {
        path: path.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_dir(dir).map_err(io)
}

/// Writes a backup of `entries` into `dir` (nothing when empty). Returns the file written.
pub fn write(
    dir: &Path,
    instance: &str,
    reason: &str,
    entries: &[LikeEntry],
) -> Result<Option<PathBuf>, DurabilityError> {
    if entries.is_empty() {
        return Ok(None);
    }
    let created_ms = now_ms();
    let file = BackupFile {
        format: FORMAT.to_string(),
        version: VERSION,
        instance: instance.to_string(),
        created_ms,
        reason: reason.to_string(),
        entries: entries.iter().cloned().map(BackupEntry::Like).collect(),
    };
    let bytes = serde_json::to_vec(&file).map_err(|e| DurabilityError::Corrupt(e.to_string()))?;
    let mut path = dir.join(format!(
        "shutdown-{}-{created_ms}.json",
        file_safe(instance)
    ));
    // Two backups in the same millisecond (forced exit racing the graceful one) must not overwrite.
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!(
            "shutdown-{}-{created_ms}-{n}.json",
            file_safe(instance)
        ));
        n += 1;
    }
    write_atomic(&path, &bytes)?;
    Ok(Some(path))
}

/// Parses a backup file; anything but a whole file of the known format and version is `Corrupt`.
pub fn parse(bytes: &[u8]) -> Result<BackupFile, DurabilityError> {
    let file: BackupFile =
        serde_json::from_slice(bytes).map_err(|e| DurabilityError::Corrupt(e.to_string()))?;
    if file.format != FORMAT {
        return Err(DurabilityError::Corrupt(format!(
            "format is {:?}, expected {FORMAT:?}",
            file.format
        )));
    }
    if file.version != VERSION {
        return Err(DurabilityError::Corrupt(format!(
            "unsupported version {} (this build reads version {VERSION})",
            file.version
        )));
    }
    Ok(file)
}

/// The likes of a parsed backup.
pub fn likes(file: BackupFile) -> Vec<LikeEntry> {
    file.entries
        .into_iter()
        .map(|e| match e {
            BackupEntry::Like(l) => l,
        })
        .collect()
}
