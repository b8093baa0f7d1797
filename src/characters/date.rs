//! Which snapshot a request asks for, and how long what it produces stays fresh.
//!
//! Contract:
//! - [`DataDate`] is the latest snapshot or a past date; [`DataDate::parse`] accepts only `YYYY-MM-DD` dates
//!   from [`FIRST_DATE`] up to today in KST and fails with `BadRequest` otherwise.
//! - [`RequestDate`] is derived once per request from its [`DataDate`] (at the public entry point) and passed
//!   down: it carries the date's key and query forms and its freshness rule, so every value of the request
//!   (raw equipment, its snapshot, the expectation derived from it) takes its window from one place.
//!   [`RequestDate::window`] is [`freshness::Schedule::window`] of the date (the rule is written once, there): the latest
//!   snapshot (and a date not yet final) is fresh for [`freshness::LATEST_FRESH`], a final past date for
//!   [`freshness::MAX_AGE`], and nothing is served past [`freshness::MAX_AGE`] after its fetch.

use bytes::Bytes;
use chrono::NaiveDate;

use super::CharacterError;
use crate::cache::{CachedValue, ETag, freshness};

/// The earliest date the upstream serves.
pub const FIRST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2023, 12, 21) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// Which snapshot: the latest, or a past date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataDate(Option<NaiveDate>);

impl DataDate {
    pub const LATEST: DataDate = DataDate(None);

    /// Parses `YYYY-MM-DD`; rejects dates in the future (KST) and before the upstream's first date.
    pub fn parse(raw: &str, now_ms: i64) -> Result<DataDate, CharacterError> {
        let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
            CharacterError::BadRequest(format!("date must be YYYY-MM-DD, got {raw:?}"))
        })?;
        if d < FIRST_DATE {
            return Err(CharacterError::BadRequest(format!(
                "date must be on or after {FIRST_DATE}"
            )));
        }
        if d > freshness::kst_today(now_ms) {
            return Err(CharacterError::BadRequest(
                "date must not be in the future (KST)".into(),
            ));
        }
        Ok(DataDate(Some(d)))
    }

    pub fn date(&self) -> Option<NaiveDate> {
        self.0
    }
}

/// One request's [`DataDate`] with its freshness rule, derived once and passed down the read path.
#[derive(Clone, Copy, Debug)]
pub(super) struct RequestDate {
    date: DataDate,
    /// The date's freshness rule.
    schedule: freshness::Schedule,
}

impl RequestDate {
    /// The latest snapshot (what the ocid and basic info are).
    pub(super) const LATEST: RequestDate = RequestDate {
        date: DataDate::LATEST,
        schedule: freshness::Schedule::LATEST,
    };

    pub(super) fn new(date: DataDate) -> RequestDate {
        RequestDate {
            date,
            schedule: freshness::Schedule::of(date.0),
        }
    }

    /// The freshness window of a value of this date fetched at `fetched_at_ms`.
    pub(super) fn window(&self, fetched_at_ms: i64) -> freshness::Window {
        self.schedule.window(fetched_at_ms)
    }

    /// A value of this date fetched at `fetched_at_ms`, with its window.
    pub(super) fn value(&self, body_gz: Bytes, fetched_at_ms: i64) -> CachedValue {
        let w = self.window(fetched_at_ms);
        CachedValue {
            etag: ETag::of(&body_gz),
            body_gz,
            fetched_at_ms,
            fresh_until_ms: w.fresh_until_ms,
            stale_until_ms: w.stale_until_ms,
            load_ms: 0,
            negative: false,
            stale: false,
        }
    }

    /// `YYYY-MM-DD` or `latest`: the date's part of cache and snapshot keys.
    pub(super) fn key(&self) -> String {
        let mut key = String::new();
        self.push_key(&mut key);
        key
    }

    /// Appends [`RequestDate::key`] to `out`.
    pub(super) fn push_key(&self, out: &mut String) {
        use std::fmt::Write;
        match self.date.0 {
            Some(d) => {
                let _ = write!(out, "{d}");
            }
            None => out.push_str("latest"),
        }
    }

    /// The upstream's `date` parameter (`None` for the latest snapshot).
    pub(super) fn query(&self) -> Option<String> {
        self.date.0.map(|d| d.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_date_window_is_the_freshness_window_of_its_date() {
        let past = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap();
        let final_from = freshness::final_from_ms(past);
        for (date, fetched) in [
            (None, 1_000),
            (Some(past), final_from - 1),
            (Some(past), final_from),
            (Some(past), final_from + 86_400_000),
        ] {
            let rd = RequestDate::new(DataDate(date));
            assert_eq!(
                rd.window(fetched),
                freshness::Schedule::of(date).window(fetched)
            );
            let v = rd.value(Bytes::new(), fetched);
            assert_eq!(v.fresh_until_ms, rd.window(fetched).fresh_until_ms);
            assert_eq!(v.stale_until_ms, rd.window(fetched).stale_until_ms);
        }
        assert_eq!(
            RequestDate::LATEST.window(5),
            freshness::Schedule::LATEST.window(5),
            "the latest snapshot"
        );
    }

    #[test]
    fn dates_key_and_query_as_the_upstream_writes_them() {
        let d = RequestDate::new(DataDate(NaiveDate::from_ymd_opt(2025, 1, 2)));
        assert_eq!(d.key(), "2025-01-02");
        assert_eq!(d.query().as_deref(), Some("2025-01-02"));
        assert_eq!(RequestDate::LATEST.key(), "latest");
        assert_eq!(RequestDate::LATEST.query(), None);
    }

    #[test]
    fn parse_accepts_first_date_to_today_only() {
        let now = freshness::final_from_ms(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        assert!(DataDate::parse("2026-01-02", now).is_ok());
        assert!(DataDate::parse("2026-01-03", now).is_err());
        assert!(DataDate::parse("2023-12-21", now).is_ok());
        assert!(DataDate::parse("2023-12-20", now).is_err());
        assert!(DataDate::parse("2026/01/02", now).is_err());
    }
}
