//! The key scheme of the read path: every cache key of a character starts with its prefix
//! `maple:v1:c:<lowercased name>:`, so dropping that prefix drops everything cached about it.
//!
//! Contract (pure string functions, no failure modes):
//! - `…:ocid` the character's ocid, `…:basic` its basic info, `…:eq:<date>` its raw equipment of a date;
//! - `…:exp:<date>:<options>:<rule set>:<table>` an expectation, named by character, date, starforce settings
//!   ([`StarforceSettings::key_fragment`]), rule set ([`RuleSet::key_fragment`]) and table version (a new table,
//!   rule set or option set is a new key, derived from the cached raw equipment);
//! - `…:xv:<date>` the set of expectation keys of a date admitted to the cache (the variant bound);
//! - `<equipment key>@<fetched_at_ms>` names one parsed payload in the service's recent-models cache.

use super::date::RequestDate;
use crate::expectation::{RuleSet, StarforceSettings};
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

/// `maple:v1:c:<name>:exp:<date>:<options>:<rule set>:<table>`, built in one buffer (every request builds it).
pub(super) fn expectation_key(
    name: &CharacterName,
    date: RequestDate,
    opts: &StarforceSettings,
    rule_set: RuleSet,
    table_version: &str,
) -> String {
    let mut key = String::with_capacity(96 + table_version.len());
    push_prefix(&mut key, name);
    key.push_str("exp:");
    date.push_key(&mut key);
    key.push(':');
    key.push_str(&opts.key_fragment());
    key.push(':');
    key.push_str(rule_set.key_fragment());
    key.push(':');
    key.push_str(table_version);
    key
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use crate::characters::DataDate;

    #[test]
    fn expectation_keys_name_character_date_options_rules_and_table_under_the_character_prefix() {
        let name = CharacterName::parse("BenchHot").unwrap();
        let plain = StarforceSettings::default();
        let key = expectation_key(
            &name,
            RequestDate::LATEST,
            &plain,
            RuleSet::Kms30Stars,
            "v7",
        );
        assert_eq!(
            key,
            "maple:v1:c:benchhot:exp:latest:sc0su0pr0mvnonepc0es0e0o0rc-:r30:v7"
        );
        assert!(key.starts_with(&prefix(&name)));

        let date = RequestDate::new(DataDate::parse("2025-01-02", 1_800_000_000_000).unwrap());
        let get = |k: &str| match k {
            "starcatch" | "prevention" => Some("true"),
            "mvp" => Some("gold"),
            "discount" => Some("0.3"),
            "replacement_cost" => Some("2000000000"),
            _ => None,
        };
        let opts = StarforceSettings::from_params(get).unwrap();
        assert_eq!(
            expectation_key(&name, date, &opts, RuleSet::Kms25Stars, "none"),
            "maple:v1:c:benchhot:exp:2025-01-02:sc1su0pr1mvgoldpc0es3000e0o0rc2000000000:r25v2:none"
        );
    }

    #[test]
    fn different_options_or_rule_sets_never_share_a_key() {
        let name = CharacterName::parse("Evan").unwrap();
        let key = |o: &StarforceSettings, r| expectation_key(&name, RequestDate::LATEST, o, r, "v");
        let plain = StarforceSettings::default();
        let variants = [
            StarforceSettings {
                starcatch: true,
                ..plain
            },
            StarforceSettings {
                sunday: true,
                ..plain
            },
            StarforceSettings {
                prevention: true,
                ..plain
            },
            StarforceSettings {
                mvp: crate::expectation::MvpGrade::Silver,
                ..plain
            },
            StarforceSettings {
                pc_room: true,
                ..plain
            },
            StarforceSettings {
                event_sale: 0.0001,
                ..plain
            },
            StarforceSettings {
                event_5_10_15: true,
                ..plain
            },
            StarforceSettings {
                event_1plus1: true,
                ..plain
            },
            StarforceSettings {
                replacement_cost: Some(0),
                ..plain
            },
        ];
        let mut keys = std::collections::HashSet::new();
        for r in [RuleSet::Kms25Stars, RuleSet::Kms30Stars] {
            assert!(keys.insert(key(&plain, r)));
            for v in &variants {
                assert!(keys.insert(key(v, r)), "{v:?} under {r:?}");
            }
        }
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
