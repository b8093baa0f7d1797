//! The key scheme of the read path: every cache key of a character starts with its prefix
//! `maple:v1:c:<lowercased name>:`, so dropping that prefix drops everything cached about it.
//!
//! Contract (pure string functions, no failure modes):
//! - `…:ocid` the character's ocid, `…:basic` its basic info, `…:eq:<date>` its raw equipment of a date;
//! - `…:exp:<date>:<options>:<table>` an expectation, named by character, date, starforce options and table
//!   version (a new table or option set is a new key, derived from the cached raw equipment);
//! - `…:xv:<date>` the set of expectation keys of a date admitted to the cache (the variant bound);
//! - `<equipment key>@<fetched_at_ms>` names one parsed payload in the service's recent-models cache.

use std::fmt::Write;

use super::date::RequestDate;
use crate::expectation::StarforceOptions;
use crate::ids::CharacterName;

/// `maple:v1:c:<lowercased name>:`, the prefix of every key of the character.
pub(super) fn prefix(name: &CharacterName) -> String {
    let mut prefix = String::new();
    push_prefix(&mut prefix, name);
    prefix
}

/// Appends [`prefix`] to `out`.
fn push_prefix(out: &mut String, name: &CharacterName) {
    out.push_str("maple:v1:c:");
    name.push_key(out);
    out.push(':');
}

/// The character's ocid.
pub(super) fn ocid_key(name: &CharacterName) -> String {
    format!("{}ocid", prefix(name))
}

/// The character's basic info.
pub(super) fn basic_key(name: &CharacterName) -> String {
    format!("{}basic", prefix(name))
}

/// The character's raw equipment of `date`.
pub(super) fn equipment_key(name: &CharacterName, date: RequestDate) -> String {
    format!("{}eq:{}", prefix(name), date.key())
}

/// The set of the expectation keys of (name, date) admitted to the cache.
pub(super) fn variant_set_key(name: &CharacterName, date: RequestDate) -> String {
    format!("{}xv:{}", prefix(name), date.key())
}

/// The recent-models key of the raw equipment of (name, date) fetched at `fetched_at_ms`.
pub(super) fn model_key(name: &CharacterName, date: RequestDate, fetched_at_ms: i64) -> String {
    format!("{}@{fetched_at_ms}", equipment_key(name, date))
}

/// `maple:v1:c:<name>:exp:<date>:<options>:<table>`, built in one buffer (every request builds it).
pub(super) fn expectation_key(
    name: &CharacterName,
    date: RequestDate,
    opts: &StarforceOptions,
    table_version: &str,
) -> String {
    let mut key = String::with_capacity(64 + table_version.len());
    push_prefix(&mut key, name);
    key.push_str("exp:");
    date.push_key(&mut key);
    let _ = write!(
        key,
        ":sc{}su{}pr{}d{}:{table_version}",
        opts.starcatch as u8,
        opts.sunday as u8,
        opts.prevention as u8,
        (opts.discount * 10_000.0).round() as i64
    );
    key
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use crate::characters::DataDate;

    #[test]
    fn expectation_keys_name_character_date_options_and_table_under_the_character_prefix() {
        let name = CharacterName::parse("BenchHot").unwrap();
        let plain = StarforceOptions::new(false, false, false, 0.0).unwrap();
        let key = expectation_key(&name, RequestDate::LATEST, &plain, "v7");
        assert_eq!(key, "maple:v1:c:benchhot:exp:latest:sc0su0pr0d0:v7");
        assert!(key.starts_with(&prefix(&name)));

        let date = RequestDate::new(DataDate::parse("2025-01-02", 1_800_000_000_000).unwrap());
        let opts = StarforceOptions::new(true, false, true, 0.3).unwrap();
        assert_eq!(
            expectation_key(&name, date, &opts, "none"),
            "maple:v1:c:benchhot:exp:2025-01-02:sc1su0pr1d3000:none"
        );
    }

    #[test]
    fn every_key_of_a_character_starts_with_its_prefix() {
        let name = CharacterName::parse("BenchHot").unwrap();
        let p = prefix(&name);
        assert_eq!(p, "maple:v1:c:benchhot:");
        assert_eq!(ocid_key(&name), "maple:v1:c:benchhot:ocid");
        assert_eq!(basic_key(&name), "maple:v1:c:benchhot:basic");
        assert_eq!(
            equipment_key(&name, RequestDate::LATEST),
            "maple:v1:c:benchhot:eq:latest"
        );
        assert_eq!(
            variant_set_key(&name, RequestDate::LATEST),
            "maple:v1:c:benchhot:xv:latest"
        );
        assert_eq!(
            model_key(&name, RequestDate::LATEST, 42),
            "maple:v1:c:benchhot:eq:latest@42"
        );
    }
}
