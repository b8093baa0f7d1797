//! Who exists in the simulated world: character-name rules and self-describing ocids.
//!
//! Contract:
//! - A name exists iff it is 1–12 characters, every character a Unicode letter or digit
//!   (`char::is_alphanumeric`: ASCII, Hangul and other scripts), and it does not start with `ghost`
//!   (ASCII case-insensitive). Names are case-sensitive otherwise: `Evan` and `evan` are two characters.
//! - [`ocid_for`] gives that name's ocid under a seed: 32 hex digits of a keyed SHA-256 tag followed by the
//!   name's UTF-8 bytes in hex (lowercase hex throughout, 34–104 characters). [`name_for_ocid`] inverts it and
//!   accepts only ocids this seed issued, so a tampered, truncated or other-seed ocid is unknown.
//!
//! Why self-describing: the simulator keeps no registry, so an ocid a gateway stored yesterday still resolves
//! after the simulator restarts with the same seed (the embedded mode restarts it with the app), and `basic`
//! can answer with the character's name from the ocid alone. The first 32 characters look like a real ocid;
//! consumers must treat ocids as opaque strings, as the upstream's documentation asks.
//!
//! Failure modes: none beyond `None` for names/ocids that do not exist.

use super::rng::derive;

/// The longest character name, in characters.
pub const MAX_NAME_CHARS: usize = 12;

const TAG_HEX: usize = 32;

/// Whether `name` is a well-formed character name (not whether it exists; see [`exists`]).
pub fn is_valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&n) && name.chars().all(char::is_alphanumeric)
}

/// Names starting with `ghost` (any ASCII case) never exist.
pub fn is_ghost(name: &str) -> bool {
    name.len() >= 5 && name.as_bytes()[..5].eq_ignore_ascii_case(b"ghost")
}

/// Whether a character of this name exists in the simulated world.
pub fn exists(name: &str) -> bool {
    is_valid_name(name) && !is_ghost(name)
}

fn tag_hex(seed: u64, name: &str) -> String {
    // Two independent 64-bit halves make the 128-bit tag.
    let a = derive(seed, &[b"ocid", name.as_bytes(), b"0"]);
    let b = derive(seed, &[b"ocid", name.as_bytes(), b"1"]);
    format!("{a:016x}{b:016x}")
}

/// The ocid of `name` under `seed`; `None` for names that do not exist (ghosts and malformed names).
pub fn ocid_for(seed: u64, name: &str) -> Option<String> {
    if !exists(name) {
        return None;
    }
    let mut s = tag_hex(seed, name);
    for b in name.as_bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    Some(s)
}

/// The name behind an ocid this seed issued; `None` for anything else (malformed, tampered, other seed).
pub fn name_for_ocid(seed: u64, ocid: &str) -> Option<String> {
    if ocid.len() <= TAG_HEX
        || !ocid.len().is_multiple_of(2)
        || !ocid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let (tag, rest) = ocid.split_at(TAG_HEX);
    let bytes: Vec<u8> = (0..rest.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&rest[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let name = String::from_utf8(bytes).ok()?;
    (exists(&name) && tag_hex(seed, &name) == tag).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        for ok in [
            "a",
            "Evan",
            "아델",
            "메이플스토리12",
            "abcdefghijkl",
            "강철의연금술사ab",
        ] {
            assert!(exists(ok), "{ok}");
        }
        for bad in [
            "",
            "abcdefghijklm",
            "a b",
            "a/b",
            "..",
            "a.b",
            "a\u{0}",
            "a-b",
            "이름!",
            "\t",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        for ghost in ["ghost", "ghost1", "GhostRider", "GHOST아델"] {
            assert!(is_valid_name(ghost) && !exists(ghost), "{ghost}");
        }
        assert!(exists("gho5t"));
    }

    #[test]
    fn ocids_round_trip_and_reject_forgeries() {
        let ocid = ocid_for(1, "아델").unwrap();
        assert!(ocid.len() > 32 && ocid.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(name_for_ocid(1, &ocid).as_deref(), Some("아델"));
        assert_eq!(ocid_for(1, "아델"), Some(ocid.clone()), "deterministic");
        assert_ne!(ocid_for(2, "아델"), Some(ocid.clone()), "seeded");
        assert_eq!(
            name_for_ocid(2, &ocid),
            None,
            "another seed's ocid is unknown"
        );
        // Flip one tag digit.
        let mut forged = ocid.clone().into_bytes();
        forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            name_for_ocid(1, std::str::from_utf8(&forged).unwrap()),
            None
        );
        for junk in [
            "",
            "xyz",
            &ocid[..32],
            &ocid[..ocid.len() - 1],
            &ocid.to_uppercase(),
        ] {
            assert_eq!(name_for_ocid(1, junk), None, "{junk}");
        }
        assert_eq!(ocid_for(1, "ghost7"), None);
        assert_eq!(ocid_for(1, "a/b"), None);
        let longest = ocid_for(1, "가나다라마바사아자차카타").unwrap();
        assert_eq!(longest.len(), 32 + 12 * 3 * 2);
    }
}
