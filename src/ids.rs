//! Identifiers parsed before any I/O, and the priority a caller runs at.
//!
//! Contract: a [`CharacterName`] is normalised to Unicode NFC first (so a precomposed Hangul syllable and
//! its decomposed jamo spell one name, with one cache key and one like count), then must be 1–12
//! characters, each a letter or a digit in any script (Hangul names are the norm), with no whitespace,
//! control or punctuation characters — so `..`, `/`, `%`, quotes and empty names can never reach a cache
//! key, a URL or a query. Names compare case-insensitively for ASCII
//! letters ([`CharacterName::key`] is the canonical form used in cache keys). An [`Ocid`] is the upstream's
//! opaque token of 1–128 ASCII alphanumerics. A [`LikerId`] is an opaque client-chosen id of 1–64
//! characters without control characters. Every parse failure is an [`IdError`], a client error
//! (`BAD_REQUEST`) that retrying cannot fix.
//!
//! [`Priority`] says who a piece of work runs for — a caller waiting for it, or a background refresh nobody
//! waits for — from the cache that starts a load down to the upstream rate limiter that admits its calls.
//!
//! This module sits on the bottom floor: the read path, the write path, the cache, the upstream client and
//! the HTTP layer all share these types without importing one another.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::error::{Classify, Code, ErrorKind};

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("character name must not be empty")]
    Empty,
    #[error("character name must be at most 12 characters, got {0}")]
    TooLong(usize),
    #[error("character name may contain only letters and digits, found {0:?}")]
    BadChar(char),
    #[error("ocid must be 1-128 ASCII letters or digits")]
    BadOcid,
    #[error("invalid liker id: must be 1-64 characters, got {0}")]
    LikerLength(usize),
    #[error("invalid liker id: must not contain control characters")]
    LikerControl,
}

impl Classify for IdError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Client
    }
    fn retryable(&self) -> bool {
        false
    }
    fn code(&self) -> Code {
        Code::BadRequest
    }
}

/// A valid character name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CharacterName(String);

impl CharacterName {
    /// Normalises `raw` to NFC, then validates it.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let name: String = if unicode_normalization::is_nfc(raw) {
            raw.to_string()
        } else {
            raw.nfc().collect()
        };
        let n = name.chars().count();
        if n == 0 {
            return Err(IdError::Empty);
        }
        if n > 12 {
            return Err(IdError::TooLong(n));
        }
        if let Some(c) = name.chars().find(|c| !c.is_alphanumeric()) {
            return Err(IdError::BadChar(c));
        }
        Ok(CharacterName(name))
    }

    /// The name as the client wrote it, in NFC.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Canonical form for keys: ASCII letters lower-cased.
    pub fn key(&self) -> String {
        let mut key = String::with_capacity(self.0.len());
        self.push_key(&mut key);
        key
    }

    /// Appends [`CharacterName::key`] to `out` (for keys built in one buffer).
    pub fn push_key(&self, out: &mut String) {
        let start = out.len();
        out.push_str(&self.0);
        out[start..].make_ascii_lowercase();
    }
}

impl fmt::Display for CharacterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CharacterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CharacterName({:?})", self.0)
    }
}

/// The upstream's opaque character id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Ocid(String);

impl Ocid {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() || raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(IdError::BadOcid);
        }
        Ok(Ocid(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ocid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An opaque liker id: 1–64 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LikerId(String);

impl LikerId {
    pub fn parse(raw: &str) -> Result<LikerId, IdError> {
        let n = raw.chars().count();
        if n == 0 || n > 64 {
            return Err(IdError::LikerLength(n));
        }
        if raw.chars().any(char::is_control) {
            return Err(IdError::LikerControl);
        }
        Ok(LikerId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a piece of work runs for: a caller waiting for it, or a refresh nobody waits for
/// (stale-while-revalidate, XFetch). Interactive work may wait a little for an upstream rate slot;
/// background work never waits for, nor crowds out, the upstream rate interactive requests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Interactive,
    Background,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Background => "background",
        }
    }

    /// The lower of two priorities: work done for a background refresh anywhere along its chain is
    /// background work.
    pub fn lower(self, other: Priority) -> Priority {
        match (self, other) {
            (Priority::Interactive, Priority::Interactive) => Priority::Interactive,
            _ => Priority::Background,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_and_digits_in_any_script() {
        for ok in [
            "아델",
            "Evan123",
            "a",
            "가나다라마바사아자차카타",
            "ABCdef123456",
        ] {
            assert!(CharacterName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(CharacterName::parse("EvAn").unwrap().key(), "evan");
    }

    #[test]
    fn decomposed_hangul_is_the_same_name_as_precomposed() {
        let nfc = CharacterName::parse("에반").unwrap();
        let nfd = CharacterName::parse("\u{110b}\u{1166}\u{1107}\u{1161}\u{11ab}").unwrap();
        assert_eq!(nfd, nfc);
        assert_eq!(nfd.key(), nfc.key());
        assert_eq!(nfd.as_str(), "에반");
        // Twelve syllables decomposed are 36 code points, still a valid twelve-character name.
        let long: String = "가나다라마바사아자차카타".nfd().collect();
        assert!(CharacterName::parse(&long).is_ok());
    }

    #[test]
    fn rejects_empty_long_punctuation_and_control() {
        assert_eq!(CharacterName::parse(""), Err(IdError::Empty));
        assert_eq!(
            CharacterName::parse("abcdefghijklm"),
            Err(IdError::TooLong(13))
        );
        for bad in [
            "..", "a/b", "a b", "a\u{0}", "a\nb", "a%2e", "name'", "a-b", "<x>",
        ] {
            assert!(
                matches!(CharacterName::parse(bad), Err(IdError::BadChar(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ocid_is_ascii_alphanumeric() {
        assert!(Ocid::parse("e0a4f439e53c369866b55297d2f5f4eb").is_ok());
        assert!(Ocid::parse("").is_err());
        assert!(Ocid::parse("abc/def").is_err());
        assert!(Ocid::parse(&"a".repeat(128)).is_ok());
        assert!(Ocid::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn liker_ids_are_one_to_sixty_four_characters_without_controls() {
        assert!(LikerId::parse("u-1").is_ok());
        assert!(LikerId::parse(&"가".repeat(64)).is_ok());
        assert_eq!(LikerId::parse(""), Err(IdError::LikerLength(0)));
        assert_eq!(
            LikerId::parse(&"x".repeat(65)),
            Err(IdError::LikerLength(65))
        );
        for bad in ["a\nb", "tab\t", "\u{1f}"] {
            assert_eq!(LikerId::parse(bad), Err(IdError::LikerControl), "{bad:?}");
        }
        let e = LikerId::parse("").unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Client, Code::BadRequest));
        assert_eq!(
            e.to_string(),
            "invalid liker id: must be 1-64 characters, got 0"
        );
    }

    #[test]
    fn the_lower_priority_wins() {
        use Priority::*;
        assert_eq!(Interactive.lower(Interactive), Interactive);
        assert_eq!(Interactive.lower(Background), Background);
        assert_eq!(Background.lower(Interactive), Background);
        assert_eq!(Background.lower(Background), Background);
    }
}
