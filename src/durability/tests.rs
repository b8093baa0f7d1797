//! Unit tests of the on-disk formats: backup files round-trip and refuse damage; journal segments
//! tolerate a torn last line and report damaged ones.

use super::{backup, journal};
use crate::likes::LikeEntry;

fn entry(i: usize) -> LikeEntry {
    LikeEntry {
        id: format!("gw.0001-{i}"),
        character: format!("char{}", i % 7),
        liker: format!("u{i}"),
        at_ms: 1_700_000_000_000 + i as i64,
    }
}

#[test]
fn shutdown_backup_round_trips_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<LikeEntry> = (0..10).map(entry).collect();
    let path = backup::write(dir.path(), "gw 1", "shutdown", &entries)
        .unwrap()
        .expect("a file");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("shutdown-gw_1-") && name.ends_with(".json"),
        "{name}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temp file left behind");
    let file = backup::parse(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(file.version, backup::VERSION);
    assert_eq!(backup::likes(file), entries);
    assert!(
        backup::write(dir.path(), "gw", "shutdown", &[])
            .unwrap()
            .is_none()
    );
}

#[test]
fn shutdown_backup_refuses_truncated_and_unknown_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = backup::write(dir.path(), "gw", "shutdown", &[entry(1)])
        .unwrap()
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(backup::parse(&bytes[..bytes.len() / 2]).is_err());
    let other = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("\"version\":1", "\"version\":99");
    let e = backup::parse(other.as_bytes()).unwrap_err().to_string();
    assert!(e.contains("unsupported version 99"), "{e}");
    assert!(
        backup::parse(
            br#"{"format":"x","version":1,"instance":"a","created_ms":0,"reason":"","entries":[]}"#
        )
        .is_err()
    );
}

#[test]
fn shutdown_journal_segment_skips_torn_tail_and_counts_damage() {
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&serde_json::to_string(&entry(i)).unwrap());
        text.push('\n');
    }
    let (e, damaged) = journal::read_segment(format!("{text}{{\"id\":\"x").as_bytes());
    assert_eq!((e.len(), damaged), (3, 0));
    let (e, damaged) = journal::read_segment(format!("garbage\n{text}").as_bytes());
    assert_eq!((e.len(), damaged), (3, 1));
}
