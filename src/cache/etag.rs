//! Entity tags of stored bodies: the first 16 bytes of the SHA-256 of the stored (gzip) bytes.
//!
//! Contract: a tag is computed once, when a body is created for storage ([`ETag::of`]), and travels beside
//! the body in the cached value (L1 and the L2 encoding); requests never hash a body. Equal stored bytes give
//! equal tags on every instance (the hash has no seed), so instances sharing L2 serve the same tag for the
//! same value. A body derived per request from a stored one (a part of it, or it with a live counter or a
//! stale flag) gets [`ETag::derive`]: the hash of the stored tag and the few bytes that make the derived
//! body differ — still no body is hashed. [`ETag::UNSET`] (all zero) marks a value decoded from an L2 entry
//! written without a tag; the decoder replaces it with the body's tag.

use sha2::{Digest, Sha256};

/// A strong entity tag: 16 bytes, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ETag([u8; 16]);

impl ETag {
    /// No tag known (an L2 entry from before tags were stored); never served.
    pub const UNSET: ETag = ETag([0; 16]);

    /// The tag of stored bytes.
    pub fn of(stored: &[u8]) -> ETag {
        ETag::truncate(Sha256::digest(stored).into())
    }

    /// The tag of a body derived from the one tagged `self` by `part` (e.g. `preset=2`, `likes=7`).
    pub fn derive(&self, part: &[u8]) -> ETag {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update(part);
        ETag::truncate(h.finalize().into())
    }

    fn truncate(digest: [u8; 32]) -> ETag {
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        ETag(out)
    }

    pub fn is_unset(&self) -> bool {
        *self == ETag::UNSET
    }

    /// 32 lowercase hex digits.
    pub fn hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::encode_to_slice(self.0, &mut out).expect("32 hex digits for 16 bytes");
        out
    }
}

impl serde::Serialize for ETag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex = self.hex();
        s.serialize_str(std::str::from_utf8(&hex).expect("hex is ASCII"))
    }
}

impl<'de> serde::Deserialize<'de> for ETag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 16];
        hex::decode_to_slice(s.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(ETag(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_bytes_and_derived_tags_follow_their_part() {
        let a = ETag::of(b"body");
        assert_eq!(a, ETag::of(b"body"), "no seed: same bytes, same tag");
        assert_ne!(a, ETag::of(b"body2"));
        assert!(!a.is_unset());
        assert_eq!(
            std::str::from_utf8(&a.hex()).unwrap(),
            // sha256("body") = 230d8358dc8e8890b4c58deeb62912ee2f20357ae92a5cc861b98e68fe31acb5
            "230d8358dc8e8890b4c58deeb62912ee"
        );
        assert_eq!(a.derive(b"preset=1"), a.derive(b"preset=1"));
        assert_ne!(a.derive(b"preset=1"), a.derive(b"preset=2"));
        assert_ne!(a.derive(b""), a);
    }

    #[test]
    fn tags_round_trip_as_hex_strings() {
        let a = ETag::of(b"x");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json.len(), 34);
        assert_eq!(serde_json::from_str::<ETag>(&json).unwrap(), a);
        assert!(serde_json::from_str::<ETag>("\"zz\"").is_err());
    }
}
