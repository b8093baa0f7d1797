//! Identifiers of the upstream, parsed before any I/O.
//!
//! Contract: a [`CharacterName`] is 1–12 characters, each a letter or a digit in any script (Hangul names
//! are the norm), with no whitespace, control or punctuation characters — so `..`, `/`, `%`, quotes and
//! empty names can never reach a cache key, a URL or a query. Names compare case-insensitively for ASCII
//! letters ([`CharacterName::key`] is the canonical form used in cache keys). An [`Ocid`] is an opaque token
//! of 1–128 ASCII alphanumerics.

use std::fmt;

use crate::error::{Classify, ErrorKind};

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("character name must not be empty")]
    Empty,
    #[error("character name must be at most 12 characters, got {0}")]
    TooLong(usize),
    #[error("character name may contain only letters and digits, found {0:?}")]
    BadChar(char),
    #[error("ocid must be 1-128 ASCII letters or digits")]
    BadOcid,
}

impl Classify for NameError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Client
    }
    fn retryable(&self) -> bool {
        false
    }
    fn code(&self) -> &'static str {
        "BAD_REQUEST"
    }
}

/// A valid character name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CharacterName(String);

impl CharacterName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let n = raw.chars().count();
        if n == 0 {
            return Err(NameError::Empty);
        }
        if n > 12 {
            return Err(NameError::TooLong(n));
        }
        if let Some(c) = raw.chars().find(|c| !c.is_alphanumeric()) {
            return Err(NameError::BadChar(c));
        }
        Ok(CharacterName(raw.to_string()))
    }

    /// The name as the client wrote it.
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
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() || raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(NameError::BadOcid);
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
    fn rejects_empty_long_punctuation_and_control() {
        assert_eq!(CharacterName::parse(""), Err(NameError::Empty));
        assert_eq!(
            CharacterName::parse("abcdefghijklm"),
            Err(NameError::TooLong(13))
        );
        for bad in [
            "..", "a/b", "a b", "a\u{0}", "a\nb", "a%2e", "name'", "a-b", "<x>",
        ] {
            assert!(
                matches!(CharacterName::parse(bad), Err(NameError::BadChar(_))),
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
}
