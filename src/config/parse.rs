//! Parsing one raw value (from the file or the environment) into a setting's type, checked against the
//! setting's declared [`Kind`]: integer ranges, durations in ms or s, decimal ranges, word lists, text rules.
//!
//! Contract: [`read`] returns the value, the declared default when the setting is not given, `None` for an
//! unset optional setting, or one [`ConfigError`] naming the setting. It never panics; the problem text of a
//! secret setting never contains the value. A type paired with a kind it cannot hold is reported as a
//! configuration error of that setting (the unit tests load every default and reject a bad value of every
//! setting, so such a pairing cannot ship).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::secret::{RedactedUrl, Secret};
use super::spec::{DefaultValue, Kind, Spec};
use super::{ConfigError, DatabaseSettings, LogFormat, Source};

/// A type a setting can be parsed into. `kind` is the declared kind; the problem text is the part after
/// the setting's name in the error line.
pub(super) trait Value: Sized {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String>;
    /// The value of an unset setting without a default (`None` for optional settings).
    fn absent() -> Option<Self> {
        None
    }
}

fn misdeclared(spec: &Spec) -> String {
    format!(
        "is declared as {:?}, which this setting's type cannot hold",
        spec.kind
    )
}

fn int(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let v = raw
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("expected a non-negative integer, got {raw:?}"))?;
    if v < min {
        return Err(format!("must be at least {min}, got {v}"));
    }
    if v > max {
        return Err(format!("must be at most {max}, got {v}"));
    }
    Ok(v)
}

fn text(raw: &str, spec: &Spec) -> Result<String, String> {
    match spec.kind {
        Kind::Text(rule) => (rule.check)(raw),
        _ => Err(misdeclared(spec)),
    }
}

impl Value for u64 {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        match spec.kind {
            Kind::Int { min, max } => int(raw, min, max),
            _ => Err(misdeclared(spec)),
        }
    }
}

impl Value for u32 {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        u64::parse(raw, spec).map(|v| v.min(u32::MAX as u64) as u32)
    }
}

impl Value for usize {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        u64::parse(raw, spec).map(|v| v.min(usize::MAX as u64) as usize)
    }
}

impl Value for Duration {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        match spec.kind {
            Kind::Millis { min, max } => int(raw, min, max).map(Duration::from_millis),
            Kind::Secs { min, max } => int(raw, min, max).map(Duration::from_secs),
            _ => Err(misdeclared(spec)),
        }
    }
}

impl Value for f64 {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        let Kind::Number { min, max } = spec.kind else {
            return Err(misdeclared(spec));
        };
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && (min..=max).contains(&v) => Ok(v),
            _ => Err(format!("expected a number in [{min}, {max}], got {raw:?}")),
        }
    }
}

impl Value for LogFormat {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        let Kind::OneOf(words) = spec.kind else {
            return Err(misdeclared(spec));
        };
        let word = raw.trim();
        match word {
            "text" if words.contains(&"text") => Ok(LogFormat::Text),
            "json" if words.contains(&"json") => Ok(LogFormat::Json),
            _ => {
                let (last, rest) = words.split_last().unwrap_or((&"", &[]));
                let expected = if rest.is_empty() {
                    last.to_string()
                } else {
                    format!("{} or {last}", rest.join(", "))
                };
                Err(format!("expected {expected}, got {word:?}"))
            }
        }
    }
}

impl Value for String {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        text(raw, spec)
    }
}

impl Value for Secret {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        text(raw, spec).map(Secret)
    }
}

impl Value for RedactedUrl {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        text(raw, spec).map(RedactedUrl)
    }
}

impl Value for PathBuf {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        text(raw, spec).map(PathBuf::from)
    }
}

impl Value for SocketAddr {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        let Kind::Text(rule) = spec.kind else {
            return Err(misdeclared(spec));
        };
        text(raw, spec)?
            .parse()
            .map_err(|_| format!("expected {}, got {raw:?}", rule.accepts))
    }
}

/// A comma-separated list; each entry is checked by the rule.
impl Value for Vec<String> {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        let entries: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if entries.is_empty() {
            return Err("is set but lists no entry".into());
        }
        entries.into_iter().map(|e| text(e, spec)).collect()
    }
}

/// A comma-separated list of IPs or CIDRs; an empty list is allowed (nothing trusted).
impl Value for Vec<super::net::IpNet> {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|e| {
                let e = text(e, spec)?;
                super::net::IpNet::parse(&e)
                    .ok_or_else(|| format!("expected an IP or CIDR, got {e:?}"))
            })
            .collect()
    }
    /// Unset: no proxy is trusted.
    fn absent() -> Option<Self> {
        Some(Vec::new())
    }
}

impl Value for DatabaseSettings {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        let url = text(raw, spec)?;
        Ok(match url.strip_prefix("sqlite://") {
            Some(path) => DatabaseSettings::Sqlite {
                path: PathBuf::from(path),
            },
            None => DatabaseSettings::Mysql {
                url: RedactedUrl(url),
            },
        })
    }
}

impl<T: Value> Value for Option<T> {
    fn parse(raw: &str, spec: &Spec) -> Result<Self, String> {
        match spec.kind {
            Kind::Text(rule) if rule.blank_is_unset && raw.trim().is_empty() => Ok(None),
            _ => T::parse(raw, spec).map(Some),
        }
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

/// Reads one declared setting from `src` (or its default) into `T`.
pub(super) fn read<T: Value>(src: &Source<'_>, spec: &Spec) -> Result<T, ConfigError> {
    let raw = match src.get(spec.name) {
        Some(v) => Some(v),
        None => match spec.default {
            DefaultValue::Value(v) => Some(v.to_string()),
            DefaultValue::Computed { value, .. } => Some(value()),
            DefaultValue::Unset | DefaultValue::Derived(_) => None,
        },
    };
    let problem = match raw {
        Some(raw) => match T::parse(&raw, spec) {
            Ok(v) => return Ok(v),
            Err(p) if spec.secret && !raw.is_empty() => p.replace(&raw, "***"),
            Err(p) => p,
        },
        None => match T::absent() {
            Some(v) => return Ok(v),
            None => "is required".into(),
        },
    };
    Err(ConfigError {
        setting: spec.name.to_string(),
        problem,
    })
}
