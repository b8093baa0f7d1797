//! Starforce: expected meso, attempts and destructions to take an item from 0★ to its current stars.
//!
//! Contract:
//! - Rates per star `s` (0..=29): success `SUCCESS[s]`, destroy `DESTROY[s]` (0 below 15★), otherwise the star stays
//!   (no downgrade). A destroyed item comes back at 12★. Options ([`StarforceOptions`], all off by default):
//!   star catch multiplies success by 1.05 (capped at 1) and takes the gain from stay and destroy in proportion;
//!   Sunday multiplies destroy by 0.7 at 15..=21★ (the difference goes to stay); destroy prevention sets destroy to 0
//!   at 15..=17★ (to stay) and triples that attempt's cost; the discount multiplies every cost by `1 − discount`.
//!   The three rate rules commute (each keeps stay + destroy = 1 − success), so their order does not matter.
//! - Cost per attempt at `s` for level `L`: `1000 + L³(s+1)/36` for `s ≤ 9`, `1000 + L³(s+1)^2.7 / d_s` for
//!   `s ≥ 10`; multipliers applied, then rounded to the nearest 10.
//! - The absorbing chain `E[s] = (C_s + p_s·E[s+1] + d_s·E[12]) / (p_s + d_s)`, `E[S] = 0`, is solved exactly: every
//!   `E[s]` is affine in `x = E[12]`, `E[s] = a_s + b_s·x`, computed from `S−1` down; then `x = a₁₂ / (1 − b₁₂)`.
//!   The same recursion with `C_s = 1` gives expected attempts and with `C_s = d_s` expected destructions.
//! - Max stars by level: ≤94 → 5, ≤107 → 8, ≤117 → 10, ≤127 → 15, ≤137 → 20, else 30; more stars than that →
//!   `stars_above_max`. Scroll-starred items (`starforce_scroll_flag` = `사용`, max 15, never destroyed): expected
//!   scrolls `Σ 1/p_s` with the scroll rates; no meso.
//!
//! Why exact: the reference figure (0→22★ at L = 200, no options, 36,404,721,571 meso) must be reproduced to the
//! meso, and a closed form is both faster and easier to check than iteration.

use serde::Serialize;

use super::block::{Block, Unavailable};
use super::cube::round_meso;
use super::error::ExpectationError;
use super::meso::meso_text;
use super::model::Item;
use super::types::Stars;

/// Success rate by star 0..=29.
pub const SUCCESS: [f64; 30] = [
    0.95, 0.90, 0.85, 0.85, 0.80, 0.75, 0.70, 0.65, 0.60, 0.55, 0.50, 0.45, 0.40, 0.35, 0.30, 0.30,
    0.30, 0.15, 0.15, 0.15, 0.30, 0.15, 0.15, 0.10, 0.10, 0.10, 0.07, 0.05, 0.03, 0.01,
];

/// Destroy rate by star 0..=29.
pub const DESTROY: [f64; 30] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.021, 0.021, 0.068,
    0.068, 0.085, 0.105, 0.1275, 0.17, 0.18, 0.18, 0.18, 0.186, 0.19, 0.194, 0.198,
];

/// Cost divisors `d_s` for stars 10..=29.
pub const DIVISOR: [f64; 20] = [
    571.0, 314.0, 214.0, 157.0, 107.0, 200.0, 200.0, 150.0, 70.0, 45.0, 200.0, 125.0, 200.0, 200.0,
    200.0, 200.0, 200.0, 200.0, 200.0, 200.0,
];

/// Scroll-starring success by star 0..=14.
pub const SCROLL_SUCCESS: [f64; 15] = [
    0.60, 0.55, 0.50, 0.40, 0.30, 0.20, 0.19, 0.18, 0.17, 0.16, 0.16, 0.14, 0.12, 0.10, 0.10,
];

/// The star a destroyed item comes back at.
pub const DESTROY_RETURN: u8 = 12;
/// The highest star a scroll-starred item can have.
pub const SCROLL_MAX: u8 = 15;

/// Query-selectable starforce options. `Default` is all off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StarforceOptions {
    pub starcatch: bool,
    pub sunday: bool,
    pub prevention: bool,
    /// Fraction off every attempt's cost, in `[0, 1)`.
    pub discount: f64,
}

impl StarforceOptions {
    /// Builds validated options.
    pub fn new(
        starcatch: bool,
        sunday: bool,
        prevention: bool,
        discount: f64,
    ) -> Result<StarforceOptions, ExpectationError> {
        let o = StarforceOptions {
            starcatch,
            sunday,
            prevention,
            discount,
        };
        o.validate()?;
        Ok(o)
    }

    /// `discount` must be a number in `[0, 1)`; anything else is a client error (`BAD_REQUEST`).
    pub fn validate(&self) -> Result<(), ExpectationError> {
        if (0.0..1.0).contains(&self.discount) {
            Ok(())
        } else {
            Err(ExpectationError::InvalidDiscount(self.discount))
        }
    }
}

/// The outcome probabilities of one attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepRates {
    pub success: f64,
    pub destroy: f64,
    pub stay: f64,
}

/// The rates of an attempt at `star` (0..=29) under the options.
pub fn step_rates(star: u8, opts: &StarforceOptions) -> StepRates {
    let s = star as usize;
    let mut success = SUCCESS[s];
    let mut destroy = DESTROY[s];
    let mut stay = 1.0 - success - destroy;
    if opts.starcatch {
        let boosted = (success * 1.05).min(1.0);
        let gain = boosted - success;
        let rest = stay + destroy;
        if rest > 0.0 {
            stay -= gain * stay / rest;
            destroy -= gain * destroy / rest;
        }
        success = boosted;
    }
    if opts.sunday && (15..=21).contains(&star) {
        stay += destroy * 0.3;
        destroy *= 0.7;
    }
    if opts.prevention && (15..=17).contains(&star) {
        stay += destroy;
        destroy = 0.0;
    }
    StepRates {
        success,
        destroy: destroy.max(0.0),
        stay: stay.max(0.0),
    }
}

/// Meso for one attempt at `star` on a level-`level` item, multipliers applied, rounded to the nearest 10.
pub fn attempt_cost(level: u32, star: u8, opts: &StarforceOptions) -> f64 {
    let l3 = f64::from(level).powi(3);
    let next = f64::from(star) + 1.0;
    let base = if star <= 9 {
        1000.0 + l3 * next / 36.0
    } else {
        1000.0 + l3 * next.powf(2.7) / DIVISOR[star as usize - 10]
    };
    let mut multiplier = 1.0 - opts.discount;
    if opts.prevention && (15..=17).contains(&star) {
        multiplier *= 3.0;
    }
    ((base * multiplier) / 10.0).round() * 10.0
}

/// Max stars by item level.
pub fn max_stars(level: i64) -> u8 {
    match level {
        l if l <= 94 => 5,
        l if l <= 107 => 8,
        l if l <= 117 => 10,
        l if l <= 127 => 15,
        l if l <= 137 => 20,
        _ => 30,
    }
}

/// Expectations of the chain from `from` to `to` stars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChainExpectation {
    pub meso: f64,
    pub attempts: f64,
    pub destroys: f64,
}

/// Solves the chain from `from` to `to` (`from ≤ to ≤ 30`) exactly; see the module contract.
pub fn expected_chain(level: u32, from: u8, to: u8, opts: &StarforceOptions) -> ChainExpectation {
    if from >= to {
        return ChainExpectation {
            meso: 0.0,
            attempts: 0.0,
            destroys: 0.0,
        };
    }
    let to = to.min(Stars::MAX);
    // The chain needs E[12] whenever the target lies above it (destruction returns there).
    let low = if to > DESTROY_RETURN {
        from.min(DESTROY_RETURN)
    } else {
        from
    };
    // a/b per quantity: [meso, attempts, destroys].
    let mut a = [0.0f64; 3];
    let mut b = 0.0f64;
    let mut at_from = ([0.0f64; 3], 0.0f64);
    let mut at_return = ([0.0f64; 3], 0.0f64);
    for s in (low..to).rev() {
        let r = step_rates(s, opts);
        let denom = r.success + r.destroy;
        let costs = [attempt_cost(level, s, opts), 1.0, r.destroy];
        for q in 0..3 {
            a[q] = (costs[q] + r.success * a[q]) / denom;
        }
        b = (r.success * b + r.destroy) / denom;
        if s == from {
            at_from = (a, b);
        }
        if s == DESTROY_RETURN {
            at_return = (a, b);
        }
    }
    let x = |q: usize| {
        if to > DESTROY_RETURN && at_return.1 < 1.0 {
            at_return.0[q] / (1.0 - at_return.1)
        } else {
            0.0
        }
    };
    let e = |q: usize| at_from.0[q] + at_from.1 * x(q);
    ChainExpectation {
        meso: e(0),
        attempts: e(1),
        destroys: e(2),
    }
}

/// Expected scrolls to reach `to` stars by scroll starring (`to ≤ 15`).
pub fn expected_scrolls(to: u8) -> f64 {
    SCROLL_SUCCESS
        .iter()
        .take(to as usize)
        .map(|p| 1.0 / p)
        .sum()
}

/// How the stars were made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StarforceKind {
    /// Regular starforce with meso.
    Meso,
    /// Scroll starring (`starforce_scroll_flag` = `사용`).
    Scroll,
}

/// One starforce block's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StarforceResult {
    pub kind: StarforceKind,
    pub stars: u8,
    pub max_stars: u8,
    pub level: i64,
    /// `null` for scroll-starred items.
    pub expected_meso: Option<u64>,
    pub meso_text: Option<String>,
    pub expected_attempts: Option<f64>,
    pub expected_destroys: Option<f64>,
    /// Only for scroll-starred items.
    pub expected_scrolls: Option<f64>,
}

/// The starforce block of one item.
pub fn evaluate(
    item: &Item,
    opts: &StarforceOptions,
    options_valid: bool,
) -> Block<StarforceResult> {
    let text = item.starforce.as_deref().unwrap_or("0");
    let Some(stars) = Stars::parse(text) else {
        return Block::unavailable_because(Unavailable::InvalidStars, text.to_owned());
    };
    let stars = stars.get();
    let level = item.base_level();
    let scroll = item.starforce_scroll_flag.as_deref().map(str::trim) == Some("사용");
    let max = if scroll { SCROLL_MAX } else { max_stars(level) };
    if stars > max {
        return Block::unavailable_because(
            Unavailable::StarsAboveMax,
            format!("{stars} stars, at most {max} at level {level}"),
        );
    }
    if scroll {
        return Block::Available(StarforceResult {
            kind: StarforceKind::Scroll,
            stars,
            max_stars: max,
            level,
            expected_meso: None,
            meso_text: None,
            expected_attempts: None,
            expected_destroys: None,
            expected_scrolls: Some(expected_scrolls(stars)),
        });
    }
    if !options_valid {
        return Block::unavailable(Unavailable::InvalidOptions);
    }
    let level_u32 = level.clamp(0, i64::from(u32::MAX)) as u32;
    let chain = expected_chain(level_u32, 0, stars, opts);
    let meso = round_meso(chain.meso);
    Block::Available(StarforceResult {
        kind: StarforceKind::Meso,
        stars,
        max_stars: max,
        level,
        expected_meso: Some(meso),
        meso_text: Some(meso_text(meso)),
        expected_attempts: Some(chain.attempts),
        expected_destroys: Some(chain.destroys),
        expected_scrolls: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    const PLAIN: StarforceOptions = StarforceOptions {
        starcatch: false,
        sunday: false,
        prevention: false,
        discount: 0.0,
    };

    #[test]
    fn reference_figure_zero_to_22_at_level_200() {
        let e = expected_chain(200, 0, 22, &PLAIN);
        let reference = 36_404_721_571.0;
        assert!((e.meso - reference).abs() / reference < 1e-3, "{}", e.meso);
        // The exact solution matches the reference to the meso.
        assert_eq!(e.meso.round() as u64, 36_404_721_571);
    }

    #[test]
    fn costs_and_rates_follow_the_documented_formulas() {
        // 1000 + 200³·1/36 = 223222.2 → 223220
        assert_eq!(attempt_cost(200, 0, &PLAIN), 223_220.0);
        // 1000 + 200³·11^2.7/571
        let raw = 1000.0 + 8_000_000.0 * 11f64.powf(2.7) / 571.0;
        assert_eq!(attempt_cost(200, 10, &PLAIN), (raw / 10.0).round() * 10.0);
        let o = StarforceOptions {
            prevention: true,
            discount: 0.3,
            ..PLAIN
        };
        let raw = 1000.0 + 8_000_000.0 * 16f64.powf(2.7) / 200.0;
        assert_eq!(
            attempt_cost(200, 15, &o),
            (raw * 0.7 * 3.0 / 10.0).round() * 10.0
        );
        assert_eq!(
            attempt_cost(200, 18, &o),
            ((1000.0 + 8e6 * 19f64.powf(2.7) / 70.0) * 0.7 / 10.0).round() * 10.0
        );

        for star in 0..30u8 {
            for bits in 0..8u8 {
                let o = StarforceOptions {
                    starcatch: bits & 1 != 0,
                    sunday: bits & 2 != 0,
                    prevention: bits & 4 != 0,
                    discount: 0.0,
                };
                let r = step_rates(star, &o);
                assert!((r.success + r.destroy + r.stay - 1.0).abs() < 1e-12);
                assert!(r.success > 0.0 && r.destroy >= 0.0 && r.stay >= 0.0);
            }
        }
        let r = step_rates(
            22,
            &StarforceOptions {
                starcatch: true,
                ..PLAIN
            },
        );
        assert!((r.success - 0.1575).abs() < 1e-12);
        // Gain 0.0075 taken from stay 0.68 and destroy 0.17 in proportion.
        assert!((r.destroy - (0.17 - 0.0075 * 0.17 / 0.85)).abs() < 1e-12);
        let r = step_rates(
            0,
            &StarforceOptions {
                starcatch: true,
                ..PLAIN
            },
        );
        assert!((r.success - 0.9975).abs() < 1e-15);
        let r = step_rates(
            21,
            &StarforceOptions {
                sunday: true,
                ..PLAIN
            },
        );
        assert!((r.destroy - 0.1275 * 0.7).abs() < 1e-12);
        assert_eq!(
            step_rates(
                22,
                &StarforceOptions {
                    sunday: true,
                    ..PLAIN
                }
            )
            .destroy,
            0.17
        );
        assert_eq!(
            step_rates(
                17,
                &StarforceOptions {
                    prevention: true,
                    ..PLAIN
                }
            )
            .destroy,
            0.0
        );
        assert_eq!(
            step_rates(
                18,
                &StarforceOptions {
                    prevention: true,
                    ..PLAIN
                }
            )
            .destroy,
            0.068
        );
    }

    #[test]
    fn chains_below_15_have_no_destruction_and_sum_simply() {
        let e = expected_chain(150, 0, 12, &PLAIN);
        let direct: f64 = (0..12)
            .map(|s| attempt_cost(150, s, &PLAIN) / SUCCESS[s as usize])
            .sum();
        assert!((e.meso - direct).abs() < 1e-6);
        assert_eq!(e.destroys, 0.0);
        assert_eq!(expected_chain(150, 5, 5, &PLAIN).meso, 0.0);
    }

    #[test]
    fn options_are_validated() {
        assert!(StarforceOptions::new(true, true, true, 0.3).is_ok());
        assert!(StarforceOptions::new(false, false, false, 1.0).is_err());
        assert!(StarforceOptions::new(false, false, false, -0.1).is_err());
        assert!(StarforceOptions::new(false, false, false, f64::NAN).is_err());
        assert_eq!(StarforceOptions::default(), PLAIN);
    }

    #[test]
    fn max_stars_scrolls_and_blocks() {
        assert_eq!(
            [94, 95, 107, 108, 117, 127, 137, 138].map(max_stars),
            [5, 8, 8, 10, 10, 15, 20, 30]
        );
        let scrolls = expected_scrolls(15);
        assert!((scrolls - SCROLL_SUCCESS.iter().map(|p| 1.0 / p).sum::<f64>()).abs() < 1e-12);
        let mut item = Item {
            starforce: Some("12".into()),
            starforce_scroll_flag: Some("사용".into()),
            item_base_option: Some(crate::expectation::model::ItemOption {
                base_equipment_level: Some(150),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = evaluate(&item, &PLAIN, true);
        let r = r.available().unwrap();
        assert_eq!(r.kind, StarforceKind::Scroll);
        assert_eq!(r.expected_meso, None);
        assert!((r.expected_scrolls.unwrap() - expected_scrolls(12)).abs() < 1e-12);
        item.starforce = Some("17".into());
        assert_eq!(
            evaluate(&item, &PLAIN, true).reason(),
            Some(Unavailable::StarsAboveMax)
        );
        item.starforce_scroll_flag = Some("미사용".into());
        let r = evaluate(&item, &PLAIN, true);
        assert_eq!(
            r.available().unwrap().expected_meso,
            Some(expected_chain(150, 0, 17, &PLAIN).meso.round() as u64)
        );
        assert_eq!(
            evaluate(&item, &PLAIN, false).reason(),
            Some(Unavailable::InvalidOptions)
        );
        item.starforce = Some("x".into());
        assert_eq!(
            evaluate(&item, &PLAIN, true).reason(),
            Some(Unavailable::InvalidStars)
        );
        item.item_base_option = None;
        item.starforce = Some("6".into());
        assert_eq!(
            evaluate(&item, &PLAIN, true).reason(),
            Some(Unavailable::StarsAboveMax)
        );
    }

    /// Simulates starforce attempts with rates written out independently of [`step_rates`] and checks the
    /// sample means of meso and destructions against the exact chain within 3 standard errors.
    fn monte_carlo(level: u32, from: u8, to: u8, opts: StarforceOptions, trials: u32, seed: u64) {
        let rates = |s: usize| -> (f64, f64) {
            let (mut p, mut d) = (SUCCESS[s], DESTROY[s]);
            if opts.starcatch {
                let q = (p * 1.05).min(1.0);
                d *= (1.0 - q) / (1.0 - p);
                p = q;
            }
            if opts.sunday && (15..=21).contains(&s) {
                d *= 0.7;
            }
            if opts.prevention && (15..=17).contains(&s) {
                d = 0.0;
            }
            (p, d)
        };
        let table: Vec<(f64, f64, f64)> = (0..30)
            .map(|s| {
                let (p, d) = rates(s);
                (p, d, attempt_cost(level, s as u8, &opts))
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut sum, mut sum_sq, mut dsum, mut dsum_sq) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for _ in 0..trials {
            let (mut s, mut cost, mut destroys) = (from as usize, 0.0f64, 0.0f64);
            while s < to as usize {
                let (p, d, c) = table[s];
                cost += c;
                let u: f64 = rng.random();
                if u < p {
                    s += 1;
                } else if u < p + d {
                    s = DESTROY_RETURN as usize;
                    destroys += 1.0;
                }
            }
            sum += cost;
            sum_sq += cost * cost;
            dsum += destroys;
            dsum_sq += destroys * destroys;
        }
        let n = f64::from(trials);
        let exact = expected_chain(level, from, to, &opts);
        for (what, s, s2, expect) in [
            ("meso", sum, sum_sq, exact.meso),
            ("destroys", dsum, dsum_sq, exact.destroys),
        ] {
            let mean = s / n;
            let se = ((s2 / n - mean * mean).max(0.0) / n).sqrt();
            assert!(
                (mean - expect).abs() <= 3.0 * se,
                "{what}: simulated {mean}, exact {expect}, se {se} ({level} {from}→{to} {opts:?})"
            );
        }
    }

    #[test]
    fn monte_carlo_plain_chain() {
        monte_carlo(160, 10, 21, PLAIN, 200_000, 11);
    }

    #[test]
    fn monte_carlo_with_every_option() {
        let o = StarforceOptions {
            starcatch: true,
            sunday: true,
            prevention: true,
            discount: 0.3,
        };
        monte_carlo(200, 12, 22, o, 200_000, 12);
    }

    proptest! {
        #[test]
        fn expected_cost_grows_with_stars_and_level(
            level in 0u32..300, stars in 0u8..30, bits in 0u8..8, discount in 0.0f64..0.9,
        ) {
            let o = StarforceOptions {
                starcatch: bits & 1 != 0, sunday: bits & 2 != 0, prevention: bits & 4 != 0, discount,
            };
            let here = expected_chain(level, 0, stars, &o);
            let next_star = expected_chain(level, 0, stars + 1, &o);
            let next_level = expected_chain(level + 1, 0, stars, &o);
            prop_assert!(here.meso.is_finite() && here.meso >= 0.0);
            prop_assert!(next_star.meso > here.meso);
            prop_assert!(next_level.meso >= here.meso);
            prop_assert!(next_star.attempts > here.attempts);
            prop_assert!(next_star.destroys >= here.destroys);
        }
    }
}
