//! The expectation engine's one error enum.
//!
//! Contract: the engine itself never fails on a parsed payload — an item it cannot price gets an `unavailable`
//! block instead. Errors exist only at the edges: bad caller input (starforce options, each with its name, value and range), a probability table that
//! cannot be read or parsed, and a payload that is not an item-equipment object. Each variant is classified with
//! [`Classify`] so the API layer maps it without knowing the engine.
//!
//! Why: a table problem is the operator's to fix (internal, not retryable), a bad query is the client's
//! (`BAD_REQUEST`), a malformed upstream payload is the upstream's.

use std::path::PathBuf;

use crate::error::{Classify, Code, ErrorKind};

use super::model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum ExpectationError {
    /// The starforce discount is not a number in `[0, 1)`.
    #[error("starforce discount must be a fraction in [0, 1), got {0}")]
    InvalidDiscount(f64),
    /// A starforce option has a value outside its range (see `StarforceSettings::from_params`).
    #[error("starforce option {name} must be {expected}, got {value:?}")]
    InvalidStarforceOption {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// The cube table file could not be read.
    #[error("cannot read the cube probability table {path}: {source}")]
    TableRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cube table is not the documented CSV (missing column, unparsable value, …).
    #[error("cube probability table is invalid at line {line}: {reason}")]
    TableFormat { line: u64, reason: String },
    /// The cube table has a header but no usable row.
    #[error("cube probability table has no usable rows")]
    TableEmpty,
    /// The item-equipment payload is not the documented JSON object.
    #[error(transparent)]
    Payload(#[from] ModelError),
}

impl Classify for ExpectationError {
    fn kind(&self) -> ErrorKind {
        match self {
            ExpectationError::InvalidDiscount(_)
            | ExpectationError::InvalidStarforceOption { .. } => ErrorKind::Client,
            ExpectationError::TableRead { .. }
            | ExpectationError::TableFormat { .. }
            | ExpectationError::TableEmpty => ErrorKind::Internal,
            ExpectationError::Payload(_) => ErrorKind::Upstream,
        }
    }

    fn retryable(&self) -> bool {
        false
    }

    fn code(&self) -> Code {
        match self {
            ExpectationError::InvalidDiscount(_)
            | ExpectationError::InvalidStarforceOption { .. } => Code::BadRequest,
            ExpectationError::TableRead { .. } => Code::CubeTableUnreadable,
            ExpectationError::TableFormat { .. } | ExpectationError::TableEmpty => {
                Code::CubeTableInvalid
            }
            ExpectationError::Payload(_) => Code::UpstreamBadPayload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = ExpectationError::InvalidDiscount(1.5);
        assert_eq!(
            (e.kind(), e.code(), e.retryable()),
            (ErrorKind::Client, Code::BadRequest, false)
        );
        let e = ExpectationError::TableFormat {
            line: 3,
            reason: "x".into(),
        };
        assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::Internal, Code::CubeTableInvalid)
        );
        let bad = super::super::model::ItemEquipment::from_json(b"[1, 2]").unwrap_err();
        let e = ExpectationError::from(bad);
        assert_eq!(e.kind(), ErrorKind::Upstream);
        assert_eq!(e.retry_after_secs(), None);
    }
}
