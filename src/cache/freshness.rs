//! Freshness: how long a value may be served, following the upstream's publishing schedule, and the XFetch
//! rule for refreshing hot keys early.
//!
//! Contract (all times in Unix milliseconds, pure functions of their arguments):
//! - the latest ("today") snapshot is fresh for [`LATEST_FRESH`] (the upstream refreshes ~every 15 min);
//! - a past `date` D is final once 02:00 KST of D+1 has passed: from then on it is fresh for [`MAX_AGE`]
//!   (30 days, the maximum allowed age); before that it is treated like the latest snapshot;
//! - nothing is served older than [`MAX_AGE`] after it was fetched (`stale_until`);
//! - [`xfetch_should_refresh`] implements probabilistic early expiration (Vattani et al.): refresh when
//!   `now + δ·β·(−ln U) ≥ fresh_until`, δ being the time the last load took; β = 0 disables it.

use chrono::{Duration as ChronoDuration, FixedOffset, NaiveDate, NaiveTime, TimeZone};

/// Freshness of the latest snapshot.
pub const LATEST_FRESH: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// The maximum allowed age of anything served.
pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

const KST_OFFSET_S: i32 = 9 * 3600;

/// The instant (Unix ms) from which data for `date` is final: 02:00 KST on the following day.
pub fn final_from_ms(date: NaiveDate) -> i64 {
    let kst = FixedOffset::east_opt(KST_OFFSET_S).expect("valid offset");
    let next = date + ChronoDuration::days(1);
    kst.from_local_datetime(&next.and_time(NaiveTime::from_hms_opt(2, 0, 0).expect("valid time")))
        .single()
        .expect("fixed offsets have no gaps")
        .timestamp_millis()
}

/// Today's date in KST at `now_ms`.
pub fn kst_today(now_ms: i64) -> NaiveDate {
    let kst = FixedOffset::east_opt(KST_OFFSET_S).expect("valid offset");
    kst.timestamp_millis_opt(now_ms)
        .single()
        .expect("valid timestamp")
        .date_naive()
}

/// The freshness window of a value fetched at `fetched_ms` for `date` (`None` = latest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub fresh_until_ms: i64,
    pub stale_until_ms: i64,
}

/// The freshness rule of one snapshot date, derived once (the date's final instant is computed here, not per
/// value): [`Schedule::window`] gives the window of any value of that date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// From when the date's data is final; `None` for the latest snapshot.
    final_from_ms: Option<i64>,
}

impl Schedule {
    /// The latest snapshot: never final.
    pub const LATEST: Schedule = Schedule {
        final_from_ms: None,
    };

    /// The rule of `date` (`None` = latest).
    pub fn of(date: Option<NaiveDate>) -> Schedule {
        Schedule {
            final_from_ms: date.map(final_from_ms),
        }
    }

    /// The window of a value fetched at `fetched_ms`.
    pub fn window(&self, fetched_ms: i64) -> Window {
        let max_age = MAX_AGE.as_millis() as i64;
        let fresh = match self.final_from_ms {
            Some(final_from) if fetched_ms >= final_from => max_age,
            _ => LATEST_FRESH.as_millis() as i64,
        };
        Window {
            fresh_until_ms: fetched_ms + fresh,
            stale_until_ms: fetched_ms + max_age,
        }
    }
}

/// XFetch: should a caller that found a fresh value refresh it early? `u` is uniform in (0, 1].
pub fn xfetch_should_refresh(
    now_ms: i64,
    fresh_until_ms: i64,
    delta_ms: u32,
    beta: f64,
    u: f64,
) -> bool {
    if beta <= 0.0 || delta_ms == 0 {
        return now_ms >= fresh_until_ms;
    }
    let u = u.clamp(f64::MIN_POSITIVE, 1.0);
    let gap = delta_ms as f64 * beta * (-u.ln());
    now_ms as f64 + gap >= fresh_until_ms as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kst_ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        FixedOffset::east_opt(KST_OFFSET_S)
            .unwrap()
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn a_past_date_becomes_final_at_two_am_kst_the_next_day() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        assert_eq!(final_from_ms(d), kst_ms(2026, 11, 21, 2, 0));
        // 01:59 KST the next day: not final yet → latest freshness.
        let before = kst_ms(2026, 11, 21, 1, 59);
        assert_eq!(
            Schedule::of(Some(d)).window(before).fresh_until_ms - before,
            LATEST_FRESH.as_millis() as i64
        );
        // 02:00 KST: final → 30 days.
        let at = kst_ms(2026, 11, 21, 2, 0);
        assert_eq!(
            Schedule::of(Some(d)).window(at).fresh_until_ms - at,
            MAX_AGE.as_millis() as i64
        );
    }

    #[test]
    fn latest_is_fresh_fifteen_minutes_and_nothing_lives_past_thirty_days() {
        let w = Schedule::LATEST.window(1_000);
        assert_eq!(w.fresh_until_ms, 1_000 + 15 * 60 * 1000);
        assert_eq!(w.stale_until_ms, 1_000 + 30 * 24 * 3600 * 1000);
    }

    #[test]
    fn kst_today_rolls_over_at_midnight_kst_not_utc() {
        // 2026-11-20 15:00 UTC = 2026-11-21 00:00 KST
        let ms = kst_ms(2026, 11, 21, 0, 0);
        assert_eq!(
            kst_today(ms),
            NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
        );
        assert_eq!(
            kst_today(ms - 1),
            NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
        );
    }

    #[test]
    fn xfetch_refreshes_only_near_expiry_and_never_after_beta_zero_before_expiry() {
        // Far from expiry: even the unluckiest draw does not refresh.
        assert!(!xfetch_should_refresh(0, 60_000, 100, 1.0, 1e-6));
        // Close to expiry with a small draw: refresh early.
        assert!(xfetch_should_refresh(59_900, 60_000, 100, 1.0, 0.1));
        // β = 0: only at expiry.
        assert!(!xfetch_should_refresh(59_999, 60_000, 100, 0.0, 1e-9));
        assert!(xfetch_should_refresh(60_000, 60_000, 100, 0.0, 0.5));
    }

    #[test]
    fn xfetch_probability_grows_towards_expiry() {
        let p = |now: i64| {
            (1..=1000)
                .filter(|i| xfetch_should_refresh(now, 10_000, 1_000, 1.0, *i as f64 / 1000.0))
                .count()
        };
        assert!(p(5_000) < p(8_000));
        assert!(p(8_000) < p(9_500));
        assert_eq!(p(10_000), 1000);
    }
}
