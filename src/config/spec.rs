//! What a declared setting is: its [`Spec`] (env name, [`Kind`] of value and accepted range, [`DefaultValue`],
//! secrecy, one line of meaning), and how a spec is shown — the TOML key, the README row, the `--help` line.
//!
//! Contract: rendering is pure and total; the README table and `--help` list are functions of
//! [`super::SETTINGS`] alone, so they cannot disagree with what loading accepts.

use super::SETTINGS;
/// One declared setting.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The group (component) that owns it, e.g. `cache`.
    pub group: &'static str,
    /// The env var name (`MAPLE_…`, or `NEXON_API_KEY`).
    pub name: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    /// The whole value is secret: never printed, never part of an error.
    pub secret: bool,
    /// One line: what it does.
    pub doc: &'static str,
}

/// What a setting accepts.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A non-negative integer in `min..=max`.
    Int { min: u64, max: u64 },
    /// Milliseconds, `min..=max`.
    Millis { min: u64, max: u64 },
    /// Seconds, `min..=max`.
    Secs { min: u64, max: u64 },
    /// A decimal number in `min..=max`.
    Number { min: f64, max: f64 },
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// Text checked (and normalised) by a rule.
    Text(Rule),
}

/// The check of a text setting.
#[derive(Clone, Copy)]
pub struct Rule {
    /// What is accepted, for `--help`, the README and error messages.
    pub accepts: &'static str,
    /// The value as the setting holds it (e.g. trimmed), or the problem.
    pub check: fn(&str) -> Result<String, String>,
    /// A blank value counts as unset (instead of being checked).
    pub blank_is_unset: bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rule({:?})", self.accepts)
    }
}

/// A setting's default.
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    /// Unset: the feature is off.
    Unset,
    /// This value (parsed like a configured one).
    Value(&'static str),
    /// Computed at start-up; `shown` describes it.
    Computed {
        shown: &'static str,
        value: fn() -> String,
    },
    /// Unset here; the component derives it (`shown` says how; may carry Markdown backticks).
    Derived(&'static str),
}

impl Spec {
    /// The TOML key: the env name without `MAPLE_`, lower-cased.
    pub fn toml_key(&self) -> String {
        self.name
            .strip_prefix("MAPLE_")
            .unwrap_or(self.name)
            .to_ascii_lowercase()
    }

    /// The default as Markdown (values in backticks).
    pub fn default_markdown(&self) -> String {
        match self.default {
            DefaultValue::Unset => "unset".into(),
            DefaultValue::Value(v) => format!("`{v}`"),
            DefaultValue::Computed { shown, .. } => format!("`{shown}`"),
            DefaultValue::Derived(shown) => shown.into(),
        }
    }

    /// What the setting accepts, as Markdown.
    pub fn accepts_markdown(&self) -> String {
        let range = |min: u64, max: u64, unit: &str| match (min, max) {
            (min, u64::MAX) => format!("≥ {min}{unit}"),
            (min, max) => format!("{min}–{max}{unit}"),
        };
        match self.kind {
            Kind::Int { min, max } => range(min, max, ""),
            Kind::Millis { min, max } => range(min, max, " ms"),
            Kind::Secs { min, max } => range(min, max, " s"),
            Kind::Number { min, max } => format!("{min}–{max}"),
            Kind::OneOf(words) => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Kind::Text(rule) => rule.accepts.into(),
        }
    }

    /// The meaning, with `(secret)` for secret settings, as Markdown.
    pub fn meaning_markdown(&self) -> String {
        if self.secret {
            format!("{} (secret)", self.doc)
        } else {
            self.doc.to_string()
        }
    }

    /// The README table row of this setting.
    pub fn readme_row(&self) -> String {
        format!(
            "| `{}` | {} | {} | {} |",
            self.name,
            self.default_markdown(),
            self.accepts_markdown(),
            self.meaning_markdown()
        )
    }

    /// The `--help` line of this setting (plain text).
    pub fn help_line(&self) -> String {
        let plain = |s: String| s.replace('`', "");
        format!(
            "  {:<28} {} [default: {}; accepts: {}]",
            self.name,
            plain(self.meaning_markdown()),
            plain(self.default_markdown()),
            plain(self.accepts_markdown())
        )
    }
}

/// The README's configuration table header (two lines) followed by one row per setting.
pub fn readme_table() -> String {
    let mut out = String::from("| variable | default | accepts | meaning |\n|---|---|---|---|\n");
    for spec in SETTINGS {
        out.push_str(&spec.readme_row());
        out.push('\n');
    }
    out
}
