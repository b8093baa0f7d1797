//! Values that must never be printed: [`Secret`] (never shown at all) and [`RedactedUrl`] (shown with the
//! password part of its authority replaced by `***`).
//!
//! Contract: `Debug` of either type cannot reveal the secret; the only way to the clear text is `expose`,
//! for the one place that must send it. Redaction never fails: a URL it cannot parse is shown as it is
//! (such a URL has no `user:password@` part to hide).

use std::fmt;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub(super) String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A URL whose password part is redacted in `Debug` and [`RedactedUrl::redacted`].
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(pub(super) String);

impl RedactedUrl {
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl(url.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with any `:password@` replaced by `:***@`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// `url` with the user-info part of its authority masked (`user:***@`, or `***@` without a colon).
pub(super) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_string()
            };
            format!("{}://{}@{}", &url[..scheme_end], masked, &rest[at + 1..])
        }
        None => url.to_string(),
    }
}
