//! The checks of the text settings ([`Rule`]s: what each accepts and how it is normalised) and the computed
//! default of the instance id.
//!
//! Contract: a check returns the value as the setting holds it (trimmed, `mariadb://` spelled `mysql://`, a
//! trailing `/` removed from the upstream URL) or a one-line problem. Problems quote URLs only redacted, and
//! never quote the API key or the admin token.

use super::secret::redact_url;
use super::spec::Rule;

pub(super) const ANY: Rule = Rule {
    accepts: "any text",
    check: |s| Ok(s.to_string()),
    blank_is_unset: false,
};

pub(super) const IP_NETS: Rule = Rule {
    accepts: "comma-separated IPs or CIDRs such as `10.0.0.0/8,::1`",
    check: |s| match super::net::IpNet::parse(s.trim()) {
        Some(_) => Ok(s.trim().to_string()),
        None => Err(format!(
            "expected IPs or CIDRs such as 10.0.0.0/8, got {s:?}"
        )),
    },
    blank_is_unset: true,
};

pub(super) const HOST_PORT: Rule = Rule {
    accepts: "host:port such as `127.0.0.1:8080`",
    check: |s| Ok(s.trim().to_string()),
    blank_is_unset: false,
};

pub(super) const SENTINEL: Rule = Rule {
    accepts: "`host:port,host:port,…`",
    check: |s| {
        let ok = s
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if ok {
            Ok(s.to_string())
        } else {
            Err(format!("expected host:port entries, got {s:?}"))
        }
    },
    blank_is_unset: false,
};

pub(super) const API_KEY: Rule = Rule {
    accepts: "non-empty, no spaces",
    check: |s| {
        if s.trim().is_empty() {
            Err("is set but empty".into())
        } else if s.chars().any(|c| c.is_control() || c == ' ') {
            Err("contains spaces or control characters".into())
        } else {
            Ok(s.to_string())
        }
    },
    blank_is_unset: false,
};

pub(super) const ADMIN_TOKEN: Rule = Rule {
    accepts: "≥ 16 characters",
    check: |s| {
        if s.len() < 16 {
            Err("must be at least 16 characters long".into())
        } else {
            Ok(s.to_string())
        }
    },
    blank_is_unset: false,
};

pub(super) const HTTP_URL: Rule = Rule {
    accepts: "`http://…` or `https://…`",
    check: |s| {
        let url = s.trim_end_matches('/');
        if (url.starts_with("http://") || url.starts_with("https://"))
            && url.len() > "https://".len()
        {
            Ok(url.to_string())
        } else {
            Err(format!(
                "expected an http:// or https:// URL, got {:?}",
                redact_url(url)
            ))
        }
    },
    blank_is_unset: false,
};

pub(super) const WEBHOOK: Rule = Rule {
    accepts: "`http://…` or `https://…`",
    check: |s| {
        let url = s.trim();
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(url.to_string())
        } else {
            Err(format!(
                "expected an http:// or https:// URL, got {:?}",
                redact_url(url)
            ))
        }
    },
    blank_is_unset: true,
};

pub(super) const REDIS_URL: Rule = Rule {
    accepts: "`redis://…` or `rediss://…`",
    check: |s| {
        let url = s.trim();
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(url.to_string())
        } else {
            Err(format!(
                "expected redis://host:port, got {:?}",
                redact_url(url)
            ))
        }
    },
    blank_is_unset: false,
};

pub(super) const DATABASE_URL: Rule = Rule {
    accepts: "`mysql://…`, `mariadb://…` or `sqlite://path`",
    check: |s| {
        let url = s.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path".into());
            }
            Ok(url.to_string())
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Ok(url.replacen("mariadb://", "mysql://", 1))
        } else {
            Err(format!(
                "expected mysql://… or sqlite://…, got {:?}",
                redact_url(url)
            ))
        }
    },
    blank_is_unset: false,
};

pub(super) const NON_EMPTY: Rule = Rule {
    accepts: "non-empty",
    check: |s| {
        if s.trim().is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(s.to_string())
        }
    },
    blank_is_unset: false,
};

pub(super) const DIRECTORY: Rule = Rule {
    accepts: "a directory path",
    check: |s| {
        if s.is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(s.to_string())
        }
    },
    blank_is_unset: false,
};

pub(super) const EXISTING_FILE: Rule = Rule {
    accepts: "an existing file",
    check: |s| {
        if std::path::Path::new(s).is_file() {
            Ok(s.to_string())
        } else {
            Err(format!("no such file: {s}"))
        }
    },
    blank_is_unset: false,
};

pub(super) const INSTANCE_ID: Rule = Rule {
    accepts: "1–64 of `[A-Za-z0-9._-]`",
    check: |s| {
        if !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            Ok(s.to_string())
        } else {
            Err(format!("expected 1-64 of [A-Za-z0-9._-], got {s:?}"))
        }
    },
    blank_is_unset: false,
};

/// `<host name>-<pid>`, the host name reduced to the characters an instance id allows.
pub(super) fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "gateway".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(48)
        .collect();
    format!(
        "{}-{}",
        if host.is_empty() { "gateway" } else { &host },
        std::process::id()
    )
}
