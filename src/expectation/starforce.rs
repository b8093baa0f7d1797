//! Starforce: expected meso, attempts and destructions to take an item from 0★ to its current stars, under the
//! starforce system of the snapshot's rule set ([`System::of`]): [`KMS_30`] (the 30-star system, current) or
//! [`KMS_25`] (the 25-star system before the 30-star update).
//!
//! Contract:
//! - Rates per star `s`: success, destroy (0 below 15★), otherwise a failure. In [`KMS_30`] (`s` 0..=29:
//!   [`SUCCESS`], [`DESTROY`]) a failure keeps the star. In [`KMS_25`] (`s` 0..=24: [`SUCCESS_25`], [`DESTROY_25`])
//!   a failure drops one star where [`DROPS_25`] says so (16–19★, 21–24★; 15★ and 20★ keep it), and after
//!   [`CHANCE_TIME_AFTER`] drops in a row the next attempt succeeds surely (chance time). A destroyed item comes
//!   back at [`DESTROY_RETURN`]★ in both. The player's options are a validated [`StarforceSettings`] (all off by
//!   default; the older four-field [`StarforceOptions`] converts into it, its `discount` becoming the event sale;
//!   [`StarforceSettings::from_params`] reads the sale to the basis point, the unit its key fragment names it in):
//!   - star catch multiplies success by [`STAR_CATCH_MULTIPLIER`] (capped at 1), the gain taken from the failure
//!     and destroy rates in proportion;
//!   - Sunday destruction relief multiplies destroy by [`SUNDAY_DESTROY_FACTOR`] at [`SUNDAY_STARS`] (to the
//!     failure) in [`KMS_30`]; [`KMS_25`] has no such relief and the flag changes nothing there (the item says so
//!     with an `option_not_in_force` warning);
//!   - destruction prevention sets destroy to 0 (to the failure: a kept star, or a drop at 16★ in [`KMS_25`]) at
//!     [`PREVENTION_STARS`] / [`PREVENTION_STARS_25`];
//!   - the 5/10/15 event makes an attempt at [`SURE_SUCCESS_STARS`] succeed surely;
//!   - the 1+1 event makes a success at or below [`ONE_PLUS_ONE_MAX_STAR`] add two stars.
//!
//!   The rate rules commute (each keeps failure + destroy = 1 − success), so their order does not matter.
//! - Cost per attempt at `s` for level `L`: base `B = 1000 + L³(s+1)/d` for `s ≤ 9` (`d` = [`LOW_DIVISOR`] 36,
//!   [`LOW_DIVISOR_25`] 25), `1000 + L³(s+1)^2.7 / d_s` for `s ≥ 10` ([`DIVISOR`], [`DIVISOR_25`]); paid
//!   `B·(1 − low)·(1 − sale) + prevention`, where `low` = MVP grade discount + PC-room discount for attempts below
//!   [`LOW_STAR_DISCOUNT_BELOW`]★ (0 above), `sale` = the event sale, and `prevention` = surcharge`·B` (of the
//!   undiscounted base; [`PREVENTION_SURCHARGE`] +200 %, [`PREVENTION_SURCHARGE_25`] +100 %) when prevention is on
//!   and the attempt can destroy at a prevention star (never on a sure 5/10/15 or chance-time attempt); rounded to
//!   the nearest [`COST_ROUNDING`] (10) / [`COST_ROUNDING_25`] (100).
//! - The chain is solved exactly. With `F[s]` the expectation from `s` with no drop counted, `x = F[12]`, and a
//!   drop from `s` to `s−1` (state `G`) and a second drop to `s−2` (chance time, back to `s−1`) substituted, each
//!   row reads `(1 − stay_s − drop_s·p_{s−1})·F[s] − drop_s·(stay_{s−1} + drop_{s−1})·F[s−1] − p_s·F[next(s)] =
//!   C_s + drop_s·(C_{s−1} + drop_{s−1}·K_{s−2}) + (d_s + drop_s·d_{s−1})·x` (`C` an attempt's amount, `K` a
//!   chance-time attempt's; `F[S] = 0`; `next(s)` = `s + 1`, or `min(s + 2, S)` under 1+1). Eliminated from `S−1`
//!   down, every `F[s] = U_s + V_s·x + W_s·F[s−1]` (`W_s = 0` where nothing drops, so in [`KMS_30`] this is the
//!   plain `E[s] = (C_s + p_s·E[next(s)] + d_s·x) / (p_s + d_s)`); then `x = U₁₂ / (1 − V₁₂)` and the answer is
//!   swept up from the bottom. The same rows with `C = K = 1` give expected attempts and with `C = d_s`, `K = 0`
//!   expected destructions. Each destruction also costs a replacement item: priced with the caller's
//!   `replacement_cost`, or reported as "not priced" (never as 0).
//! - Max stars by level: ≤94 → 5, ≤107 → 8, ≤117 → 10, ≤127 → 15, ≤137 → 20, else 30 ([`KMS_30`]) or 25
//!   ([`KMS_25`]); more stars than that → `stars_above_max`. Scroll-starred items (`starforce_scroll_flag` =
//!   `사용`, max 15, never destroyed): expected scrolls `Σ 1/p_s` with the scroll rates; no meso. Items issued with
//!   fixed stars ([`FIXED_STAR_ITEMS`]) are not starforced: kind `fixed`, no meso.
//! - Failure modes: invalid option values are [`ExpectationError::InvalidStarforceOption`] at construction; the
//!   engine never fails on an item (odd stars are an `unavailable` reason).
//!
//! Why exact: the reference figure (0→22★ at L = 200, no options, 36,404,721,571 meso) must be reproduced to the
//! meso, and a closed form is both faster and easier to check than iteration; with star drops the rows stay
//! tridiagonal, so the elimination costs one pass per star. Rules, sources and the constants that encode them are
//! tabled in `docs/expectation.md`.

use std::ops::RangeInclusive;

use serde::Serialize;

use super::block::{Block, Unavailable};
use super::cube::round_meso;
use super::error::ExpectationError;
use super::meso::meso_text;
use super::model::Item;
use super::rules::RuleSet;
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

/// Cost divisor `d` below 10★: `1000 + L³(s+1)/36`.
pub const LOW_DIVISOR: f64 = 36.0;
/// An attempt's price is rounded to the nearest 10 meso.
pub const COST_ROUNDING: f64 = 10.0;

/// The 25-star system (before the 30-star update): success rate by star 0..=24.
pub const SUCCESS_25: [f64; 25] = [
    0.95, 0.90, 0.85, 0.85, 0.80, 0.75, 0.70, 0.65, 0.60, 0.55, 0.50, 0.45, 0.40, 0.35, 0.30, 0.30,
    0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.03, 0.02, 0.01,
];
/// The 25-star system: destroy rate by star 0..=24.
pub const DESTROY_25: [f64; 25] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.021, 0.021, 0.021,
    0.028, 0.028, 0.07, 0.07, 0.194, 0.294, 0.396,
];
/// The 25-star system: whether a failure at the star drops one star. Nothing drops below 16★; 15★ and 20★
/// keep their star on failure (the guaranteed floors).
pub const DROPS_25: [bool; 25] = [
    false, false, false, false, false, false, false, false, false, false, false, false, false,
    false, false, false, true, true, true, true, false, true, true, true, true,
];
/// The 25-star system: cost divisor below 10★ (`1000 + L³(s+1)/25`).
pub const LOW_DIVISOR_25: f64 = 25.0;
/// The 25-star system: cost divisors `d_s` for stars 10..=24.
pub const DIVISOR_25: [f64; 15] = [
    400.0, 220.0, 150.0, 110.0, 75.0, 200.0, 200.0, 200.0, 200.0, 200.0, 200.0, 200.0, 200.0,
    200.0, 200.0,
];
/// The 25-star system: an attempt's price is rounded to the nearest 100 meso.
pub const COST_ROUNDING_25: f64 = 100.0;
/// The 25-star system: destruction prevention at these stars …
pub const PREVENTION_STARS_25: RangeInclusive<u8> = 15..=16;
/// … for +100 % of the undiscounted base cost.
pub const PREVENTION_SURCHARGE_25: f64 = 1.0;
/// Chance time (25-star system): after this many drops in a row the next attempt succeeds surely (and is not
/// charged for prevention). The chain solver is written for exactly two.
pub const CHANCE_TIME_AFTER: u8 = 2;

/// Scroll-starring success by star 0..=14.
pub const SCROLL_SUCCESS: [f64; 15] = [
    0.60, 0.55, 0.50, 0.40, 0.30, 0.20, 0.19, 0.18, 0.17, 0.16, 0.16, 0.14, 0.12, 0.10, 0.10,
];

/// The star a destroyed item comes back at.
pub const DESTROY_RETURN: u8 = 12;
/// The highest star a scroll-starred item can have.
pub const SCROLL_MAX: u8 = 15;
/// Whether a failed scroll star destroys the item. Guides disagree (the "advanced" scroll destroys, the
/// "high-quality" one does not); the engine prices scroll starring as never destroying (expected scrolls only).
pub const SCROLL_FAILURE_DESTROYS: bool = false;

/// Star catch multiplies the success rate by this. KMS sources give 1.05; GMS guides give 1.045. The engine prices
/// KMS data (the Nexon Open API serves the Korean game), so it follows 1.05.
pub const STAR_CATCH_MULTIPLIER: f64 = 1.05;
/// Sunday destruction relief: destroy × 0.7 (−30 %) …
pub const SUNDAY_DESTROY_FACTOR: f64 = 0.7;
/// … for attempts at 21★ and below (destroy is 0 below 15★).
pub const SUNDAY_STARS: RangeInclusive<u8> = 15..=21;
/// Destruction prevention can be bought for attempts at these stars …
pub const PREVENTION_STARS: RangeInclusive<u8> = 15..=17;
/// … for this multiple of the undiscounted base cost on top of the (discounted) attempt cost (+200 %).
pub const PREVENTION_SURCHARGE: f64 = 2.0;
/// The MVP grade and PC-room discounts apply to attempts below this star only.
pub const LOW_STAR_DISCOUNT_BELOW: u8 = 17;
/// The PC-room discount (added to the MVP grade discount).
pub const PC_ROOM_DISCOUNT: f64 = 0.05;
/// The 5/10/15 event: an attempt at these stars succeeds surely.
pub const SURE_SUCCESS_STARS: [u8; 3] = [5, 10, 15];
/// The 1+1 event: a success at or below this star adds two stars.
pub const ONE_PLUS_ONE_MAX_STAR: u8 = 10;
/// Items issued with fixed stars that cannot be starforced: `(item name prefix, stars)`.
pub const FIXED_STAR_ITEMS: &[(&str, u8)] = &[("제네시스 ", 22), ("데스티니 ", 22)];

mod options;
pub use options::{
    MAX_SALE, MvpGrade, PARAMS, SALE_STEPS, StarforceOptions, StarforceSettings, ToSettings,
    quantise_sale,
};

/// The outcome probabilities of one attempt: success, destruction, and a failure that either keeps the star
/// (`stay`) or drops one (`drop`; only in the 25-star system, at the stars of [`DROPS_25`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepRates {
    pub success: f64,
    pub destroy: f64,
    pub stay: f64,
    pub drop: f64,
}

/// The starforce system of one rule set: rates, costs, maxima, and which options it has. [`KMS_30`] and
/// [`KMS_25`] are the two the engine prices; [`System::of`] picks one for a [`RuleSet`].
#[derive(Debug)]
pub struct System {
    pub rule_set: RuleSet,
    /// Success rate by star `0..top_stars`.
    pub success: &'static [f64],
    /// Destroy rate by star.
    pub destroy: &'static [f64],
    /// Whether a failed attempt at the star drops a star (else it stays); empty: never.
    pub drops: &'static [bool],
    /// `d` of the cost `1000 + L³(s+1)/d` below 10★.
    pub low_divisor: f64,
    /// `d_s` of the cost `1000 + L³(s+1)^2.7/d_s` for stars 10 and up.
    pub divisors: &'static [f64],
    /// An attempt's price is rounded to the nearest multiple of this.
    pub cost_rounding: f64,
    /// The most stars an item of level 138 and above can have.
    pub top_stars: u8,
    pub prevention_stars: RangeInclusive<u8>,
    /// Prevention adds this multiple of the undiscounted base cost.
    pub prevention_surcharge: f64,
    /// Sunday destruction relief (destroy factor, stars), when the system has it.
    pub sunday: Option<(f64, RangeInclusive<u8>)>,
    /// After [`CHANCE_TIME_AFTER`] drops in a row the next attempt succeeds surely.
    pub chance_time: bool,
}

/// The 30-star system (current).
pub const KMS_30: System = System {
    rule_set: RuleSet::Kms30Stars,
    success: &SUCCESS,
    destroy: &DESTROY,
    drops: &[],
    low_divisor: LOW_DIVISOR,
    divisors: &DIVISOR,
    cost_rounding: COST_ROUNDING,
    top_stars: 30,
    prevention_stars: PREVENTION_STARS,
    prevention_surcharge: PREVENTION_SURCHARGE,
    sunday: Some((SUNDAY_DESTROY_FACTOR, SUNDAY_STARS)),
    chance_time: false,
};

/// The 25-star system in force before the 30-star update.
pub const KMS_25: System = System {
    rule_set: RuleSet::Kms25Stars,
    success: &SUCCESS_25,
    destroy: &DESTROY_25,
    drops: &DROPS_25,
    low_divisor: LOW_DIVISOR_25,
    divisors: &DIVISOR_25,
    cost_rounding: COST_ROUNDING_25,
    top_stars: 25,
    prevention_stars: PREVENTION_STARS_25,
    prevention_surcharge: PREVENTION_SURCHARGE_25,
    sunday: None,
    chance_time: true,
};

/// The longest chain a system can solve: the game's maximum of stars.
const CHAIN_LEN: usize = super::model::MAX_STARS as usize;
const _: () =
    assert!(KMS_30.top_stars as usize <= CHAIN_LEN && KMS_25.top_stars as usize <= CHAIN_LEN);

impl System {
    /// The starforce system of a rule set.
    pub fn of(rules: RuleSet) -> &'static System {
        match rules {
            RuleSet::Kms25Stars => &KMS_25,
            RuleSet::Kms30Stars => &KMS_30,
        }
    }

    /// Whether a failed attempt at `star` drops a star.
    pub fn drops_at(&self, star: u8) -> bool {
        self.drops.get(star as usize).copied().unwrap_or(false)
    }

    /// The rates of an attempt at `star` (below [`System::top_stars`]) under the settings; see the module
    /// contract. Options the system does not have (Sunday relief in the 25-star system) change nothing.
    pub fn step_rates(&self, star: u8, opts: &StarforceSettings) -> StepRates {
        let s = star as usize;
        if opts.event_5_10_15 && SURE_SUCCESS_STARS.contains(&star) {
            return StepRates {
                success: 1.0,
                destroy: 0.0,
                stay: 0.0,
                drop: 0.0,
            };
        }
        let mut success = self.success[s];
        let mut destroy = self.destroy[s];
        // A failure: the star stays, or drops where the system drops it.
        let mut fail = 1.0 - success - destroy;
        if opts.starcatch {
            let boosted = (success * STAR_CATCH_MULTIPLIER).min(1.0);
            let gain = boosted - success;
            let rest = fail + destroy;
            if rest > 0.0 {
                fail -= gain * fail / rest;
                destroy -= gain * destroy / rest;
            }
            success = boosted;
        }
        if let Some((factor, stars)) = &self.sunday
            && opts.sunday
            && stars.contains(&star)
        {
            fail += destroy * (1.0 - factor);
            destroy *= factor;
        }
        if opts.prevention && self.prevention_stars.contains(&star) {
            fail += destroy;
            destroy = 0.0;
        }
        let fail = fail.max(0.0);
        let drops = self.drops_at(star);
        StepRates {
            success,
            destroy: destroy.max(0.0),
            stay: if drops { 0.0 } else { fail },
            drop: if drops { fail } else { 0.0 },
        }
    }

    /// The undiscounted base cost of an attempt at `star` on a level-`level` item (not rounded).
    pub fn base_cost(&self, level: u32, star: u8) -> f64 {
        let l3 = f64::from(level).powi(3);
        let next = f64::from(star) + 1.0;
        if star <= 9 {
            1000.0 + l3 * next / self.low_divisor
        } else {
            1000.0 + l3 * next.powf(2.7) / self.divisors[star as usize - 10]
        }
    }

    /// Whether prevention is charged at `star`: bought, at a prevention star, and the attempt can destroy.
    fn prevention_charged(&self, star: u8, opts: &StarforceSettings) -> bool {
        opts.prevention
            && self.prevention_stars.contains(&star)
            && !(opts.event_5_10_15 && SURE_SUCCESS_STARS.contains(&star))
    }

    fn paid(&self, level: u32, star: u8, opts: &StarforceSettings, prevention: bool) -> f64 {
        let base = self.base_cost(level, star);
        let mut cost = base * (1.0 - opts.low_star_discount(star)) * (1.0 - opts.event_sale);
        if prevention {
            cost += self.prevention_surcharge * base;
        }
        (cost / self.cost_rounding).round() * self.cost_rounding
    }

    /// Meso for one attempt at `star` on a level-`level` item, discounts and prevention applied, rounded; see the
    /// module contract.
    pub fn attempt_cost(&self, level: u32, star: u8, opts: &StarforceSettings) -> f64 {
        self.paid(level, star, opts, self.prevention_charged(star, opts))
    }

    /// Meso for a chance-time attempt at `star`: discounts apply, prevention is not charged (it cannot fail).
    pub fn chance_time_cost(&self, level: u32, star: u8, opts: &StarforceSettings) -> f64 {
        self.paid(level, star, opts, false)
    }

    /// Max stars by item level.
    pub fn max_stars(&self, level: i64) -> u8 {
        match level {
            l if l <= 94 => 5,
            l if l <= 107 => 8,
            l if l <= 117 => 10,
            l if l <= 127 => 15,
            l if l <= 137 => 20,
            _ => self.top_stars,
        }
    }

    /// Solves the chain from `from` to `to` (`from ≤ to ≤ top_stars`) exactly; see the module contract.
    pub fn expected_chain(
        &self,
        level: u32,
        from: u8,
        to: u8,
        opts: &StarforceSettings,
    ) -> ChainExpectation {
        let to = to.min(self.top_stars);
        if from >= to {
            return ChainExpectation {
                meso: 0.0,
                attempts: 0.0,
                destroys: 0.0,
            };
        }
        // The chain needs E[12] whenever the target lies above it (destruction returns there).
        let low = if to > DESTROY_RETURN {
            from.min(DESTROY_RETURN)
        } else {
            from
        } as usize;
        let top = to as usize;
        // Fixed-size (a chain is at most CHAIN_LEN stars long): one solve per starforced item, no allocation.
        let mut rates = [StepRates::default(); CHAIN_LEN];
        for s in 0..to {
            rates[s as usize] = self.step_rates(s, opts);
        }
        let next = |s: usize| {
            if opts.event_1plus1 && s <= ONE_PLUS_ONE_MAX_STAR as usize {
                (s + 2).min(top)
            } else {
                s + 1
            }
        };
        // Per-attempt amounts of each quantity q = [meso, attempts, destroys]: an attempt, a chance-time attempt.
        let amounts = |s: usize| {
            [
                self.attempt_cost(level, s as u8, opts),
                1.0,
                rates[s].destroy,
            ]
        };
        let chance = |s: usize| [self.chance_time_cost(level, s as u8, opts), 1.0, 0.0];
        // F[s] = U[s][q] + V[s]·x + W[s]·F[s−1], from the top down; F[to] = 0.
        let mut u = [[0.0f64; 3]; CHAIN_LEN + 1];
        let mut v = [0.0f64; CHAIN_LEN + 1];
        let mut w = [0.0f64; CHAIN_LEN + 1];
        for s in (low..top).rev() {
            let r = rates[s];
            let n = next(s);
            let mut rhs = amounts(s);
            let mut x_coef = r.destroy;
            let mut diag = 1.0 - r.stay;
            let mut sub = 0.0;
            if r.drop > 0.0 {
                // A drop lands on s−1 with one drop counted (state G); a second drop there is chance time at s−2,
                // which succeeds back to s−1. Substituting both leaves F[s−1] as the only lower neighbour.
                let t = s - 1;
                let rt = rates[t];
                let (at, ct) = (amounts(t), chance(t - 1));
                for q in 0..3 {
                    rhs[q] += r.drop * (at[q] + rt.drop * ct[q]);
                }
                x_coef += r.drop * rt.destroy;
                diag -= r.drop * rt.success;
                sub = r.drop * (rt.stay + rt.drop);
                debug_assert_eq!(next(t), s);
            }
            let (un, vn) = if n < top {
                debug_assert!(
                    n == s + 1 || w[n] == 0.0,
                    "a 1+1 jump lands where nothing drops"
                );
                if n == s + 1 {
                    diag -= r.success * w[n];
                }
                (u[n], v[n])
            } else {
                ([0.0; 3], 0.0)
            };
            for q in 0..3 {
                u[s][q] = (rhs[q] + r.success * un[q]) / diag;
            }
            v[s] = (x_coef + r.success * vn) / diag;
            w[s] = sub / diag;
        }
        // x = E[12] (nothing drops at or below 15★, so F[12] has no lower neighbour: W[12] = 0).
        let ret = DESTROY_RETURN as usize;
        let x = if to > DESTROY_RETURN && v[ret] < 1.0 {
            debug_assert_eq!(w[ret], 0.0);
            [0, 1, 2].map(|q| u[ret][q] / (1.0 - v[ret]))
        } else {
            [0.0; 3]
        };
        // Bottom up to `from`: F[low] has no lower neighbour either, then F[s] = U + V·x + W·F[s−1].
        let mut e = [0.0f64; 3];
        for s in low..=from as usize {
            for q in 0..3 {
                e[q] = u[s][q] + v[s] * x[q] + w[s] * e[q];
            }
        }
        ChainExpectation {
            meso: e[0],
            attempts: e[1],
            destroys: e[2],
        }
    }
}

/// The rates of an attempt at `star` (0..=29) in the 30-star system ([`KMS_30`]).
pub fn step_rates(star: u8, opts: &StarforceSettings) -> StepRates {
    KMS_30.step_rates(star, opts)
}

/// The undiscounted base cost of an attempt at `star` in the 30-star system (not rounded).
pub fn base_cost(level: u32, star: u8) -> f64 {
    KMS_30.base_cost(level, star)
}

/// Meso for one attempt at `star` in the 30-star system; see the module contract.
pub fn attempt_cost(level: u32, star: u8, opts: &StarforceSettings) -> f64 {
    KMS_30.attempt_cost(level, star, opts)
}

/// Max stars by item level in the 30-star system.
pub fn max_stars(level: i64) -> u8 {
    KMS_30.max_stars(level)
}

/// Expectations of the chain from `from` to `to` stars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChainExpectation {
    pub meso: f64,
    pub attempts: f64,
    pub destroys: f64,
}

/// The chain from `from` to `to` stars in the 30-star system ([`KMS_30`]); see the module contract.
pub fn expected_chain(level: u32, from: u8, to: u8, opts: &StarforceSettings) -> ChainExpectation {
    KMS_30.expected_chain(level, from, to, opts)
}

/// Expected scrolls to reach `to` stars by scroll starring (`to ≤ 15`).
pub fn expected_scrolls(to: u8) -> f64 {
    SCROLL_SUCCESS
        .iter()
        .take(to as usize)
        .map(|p| 1.0 / p)
        .sum()
}

/// The fixed stars of an item issued with them (by item name), if it is one.
pub fn fixed_stars(item: &Item) -> Option<u8> {
    let name = item.item_name.as_deref()?.trim_start();
    FIXED_STAR_ITEMS
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|&(_, stars)| stars)
}

/// How the stars were made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StarforceKind {
    /// Regular starforce with meso.
    Meso,
    /// Scroll starring (`starforce_scroll_flag` = `사용`).
    Scroll,
    /// Issued with these stars; not starforced (no meso, no destruction).
    Fixed,
}

/// The items destroyed on the way and what replacing them costs.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Replacement {
    /// Expected destroyed items (each needs a replacement).
    pub expected_items: f64,
    /// Meso per replacement item, as given by the caller; `null` when not given.
    pub unit_cost: Option<u64>,
    /// `expected_items × unit_cost`; `null` when not priced.
    pub expected_meso: Option<u64>,
    /// Korean meso text, or `"not priced"`.
    pub meso_text: String,
}

impl Replacement {
    pub fn new(expected_items: f64, unit_cost: Option<u64>) -> Replacement {
        let expected_meso = unit_cost.map(|c| round_meso(expected_items * c as f64));
        Replacement {
            expected_items,
            unit_cost,
            expected_meso,
            meso_text: expected_meso.map_or_else(|| "not priced".to_owned(), meso_text),
        }
    }
}

/// One starforce block's result.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StarforceResult {
    pub kind: StarforceKind,
    pub stars: u8,
    pub max_stars: u8,
    pub level: i64,
    /// Meso of the attempts; `null` for scroll-starred and fixed-star items.
    pub expected_meso: Option<u64>,
    pub meso_text: Option<String>,
    pub expected_attempts: Option<f64>,
    pub expected_destroys: Option<f64>,
    /// Destroyed items and their replacement cost (a separate line from the attempts' meso); `null` for
    /// scroll-starred and fixed-star items.
    pub replacement: Option<Replacement>,
    /// Only for scroll-starred items.
    pub expected_scrolls: Option<f64>,
}

/// The starforce block of one item under the snapshot's rule set.
pub fn evaluate(
    item: &Item,
    opts: &StarforceSettings,
    rules: RuleSet,
    options_valid: bool,
) -> Block<StarforceResult> {
    let text = item.starforce.as_deref().unwrap_or("0");
    let Some(stars) = Stars::parse(text) else {
        return Block::unavailable_because(Unavailable::InvalidStars, text.to_owned());
    };
    let stars = stars.get();
    let level = item.base_level();
    let scroll = item.starforce_scroll_flag.as_deref().map(str::trim) == Some("사용");
    let system = System::of(rules);
    let max = if scroll {
        SCROLL_MAX
    } else {
        system.max_stars(level)
    };
    let empty = |kind| StarforceResult {
        kind,
        stars,
        max_stars: max,
        level,
        expected_meso: None,
        meso_text: None,
        expected_attempts: None,
        expected_destroys: None,
        replacement: None,
        expected_scrolls: None,
    };
    if !scroll && fixed_stars(item) == Some(stars) {
        return Block::Available(empty(StarforceKind::Fixed));
    }
    if stars > max {
        return Block::unavailable_because(
            Unavailable::StarsAboveMax,
            format!("{stars} stars, at most {max} at level {level}"),
        );
    }
    if scroll {
        return Block::Available(StarforceResult {
            expected_scrolls: Some(expected_scrolls(stars)),
            ..empty(StarforceKind::Scroll)
        });
    }
    if !options_valid {
        return Block::unavailable(Unavailable::InvalidOptions);
    }
    let level_u32 = level.clamp(0, i64::from(u32::MAX)) as u32;
    let chain = system.expected_chain(level_u32, 0, stars, opts);
    let meso = round_meso(chain.meso);
    Block::Available(StarforceResult {
        expected_meso: Some(meso),
        meso_text: Some(meso_text(meso)),
        expected_attempts: Some(chain.attempts),
        expected_destroys: Some(chain.destroys),
        replacement: Some(Replacement::new(chain.destroys, opts.replacement_cost)),
        ..empty(StarforceKind::Meso)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    const PLAIN: StarforceSettings = StarforceSettings {
        starcatch: false,
        sunday: false,
        prevention: false,
        mvp: MvpGrade::None,
        pc_room: false,
        event_sale: 0.0,
        event_5_10_15: false,
        event_1plus1: false,
        replacement_cost: None,
    };

    #[test]
    fn reference_figure_zero_to_22_at_level_200() {
        let e = expected_chain(200, 0, 22, &PLAIN);
        let reference = 36_404_721_571.0;
        assert!((e.meso - reference).abs() / reference < 1e-3, "{}", e.meso);
        // The exact solution matches the reference to the meso.
        assert_eq!(e.meso.round() as u64, 36_404_721_571);
        // The first API's options convert to the same settings.
        assert_eq!(StarforceSettings::from(StarforceOptions::default()), PLAIN);
    }

    #[test]
    fn costs_and_rates_follow_the_documented_formulas() {
        // 1000 + 200³·1/36 = 223222.2 → 223220
        assert_eq!(attempt_cost(200, 0, &PLAIN), 223_220.0);
        // 1000 + 200³·11^2.7/571
        let raw = 1000.0 + 8_000_000.0 * 11f64.powf(2.7) / 571.0;
        assert_eq!(attempt_cost(200, 10, &PLAIN), (raw / 10.0).round() * 10.0);
        let o = StarforceSettings {
            prevention: true,
            event_sale: 0.3,
            ..PLAIN
        };
        // Prevention adds +200 % of the undiscounted base to the sale price: 0.7·B + 2·B.
        let raw = 1000.0 + 8_000_000.0 * 16f64.powf(2.7) / 200.0;
        assert_eq!(
            attempt_cost(200, 15, &o),
            ((raw * 0.7 + 2.0 * raw) / 10.0).round() * 10.0
        );
        assert_eq!(
            attempt_cost(200, 18, &o),
            ((1000.0 + 8e6 * 19f64.powf(2.7) / 70.0) * 0.7 / 10.0).round() * 10.0
        );
        // MVP diamond + PC room add (15 %) below 17★, then multiply with the sale; nothing at 17★ and above.
        let o = StarforceSettings {
            mvp: MvpGrade::Diamond,
            pc_room: true,
            event_sale: 0.3,
            ..PLAIN
        };
        let raw16 = 1000.0 + 8e6 * 17f64.powf(2.7) / 200.0;
        assert_eq!(
            attempt_cost(200, 16, &o),
            (raw16 * 0.85 * 0.7 / 10.0).round() * 10.0
        );
        let raw17 = 1000.0 + 8e6 * 18f64.powf(2.7) / 150.0;
        assert_eq!(
            attempt_cost(200, 17, &o),
            (raw17 * 0.7 / 10.0).round() * 10.0
        );

        for star in 0..30u8 {
            for bits in 0..32u8 {
                let o = StarforceSettings {
                    starcatch: bits & 1 != 0,
                    sunday: bits & 2 != 0,
                    prevention: bits & 4 != 0,
                    event_5_10_15: bits & 8 != 0,
                    event_1plus1: bits & 16 != 0,
                    ..PLAIN
                };
                let r = step_rates(star, &o);
                assert!((r.success + r.destroy + r.stay - 1.0).abs() < 1e-12);
                assert!(r.success > 0.0 && r.destroy >= 0.0 && r.stay >= 0.0);
            }
        }
        let catch = StarforceSettings {
            starcatch: true,
            ..PLAIN
        };
        let r = step_rates(22, &catch);
        assert!((r.success - 0.1575).abs() < 1e-12);
        // Gain 0.0075 taken from stay 0.68 and destroy 0.17 in proportion.
        assert!((r.destroy - (0.17 - 0.0075 * 0.17 / 0.85)).abs() < 1e-12);
        assert!((step_rates(0, &catch).success - 0.9975).abs() < 1e-15);
        let sunday = StarforceSettings {
            sunday: true,
            ..PLAIN
        };
        assert!((step_rates(21, &sunday).destroy - 0.1275 * 0.7).abs() < 1e-12);
        assert_eq!(step_rates(22, &sunday).destroy, 0.17);
        let prevent = StarforceSettings {
            prevention: true,
            ..PLAIN
        };
        assert_eq!(step_rates(17, &prevent).destroy, 0.0);
        assert_eq!(step_rates(18, &prevent).destroy, 0.068);
        let sure = StarforceSettings {
            event_5_10_15: true,
            prevention: true,
            ..PLAIN
        };
        for s in [5, 10, 15] {
            assert_eq!(step_rates(s, &sure).success, 1.0);
        }
        assert_eq!(step_rates(16, &sure).success, 0.3);
        // No prevention charge where the attempt cannot destroy.
        assert_eq!(attempt_cost(200, 15, &sure), attempt_cost(200, 15, &PLAIN));
    }

    /// An independent solver: value iteration over the star chain with the published rules written out here
    /// (rates, base costs, discounts, prevention, sure success, 1+1, destruction to 12★), iterated to a fixed point.
    fn value_iteration(level: f64, to: usize, o: &StarforceSettings) -> (f64, f64) {
        let divisors = [
            571.0, 314.0, 214.0, 157.0, 107.0, 200.0, 200.0, 150.0, 70.0, 45.0, 200.0, 125.0,
            200.0, 200.0, 200.0,
        ];
        let success = [
            0.95, 0.90, 0.85, 0.85, 0.80, 0.75, 0.70, 0.65, 0.60, 0.55, 0.50, 0.45, 0.40, 0.35,
            0.30, 0.30, 0.30, 0.15, 0.15, 0.15, 0.30, 0.15, 0.15, 0.10, 0.10,
        ];
        let boom = [
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.021,
            0.021, 0.068, 0.068, 0.085, 0.105, 0.1275, 0.17, 0.18, 0.18,
        ];
        let mvp = match o.mvp {
            MvpGrade::Silver => 0.03,
            MvpGrade::Gold => 0.05,
            MvpGrade::Diamond | MvpGrade::Red => 0.1,
            _ => 0.0,
        };
        let step = |s: usize| -> (f64, f64, f64, usize) {
            let base = if s < 10 {
                1000.0 + level.powi(3) * (s as f64 + 1.0) / 36.0
            } else {
                1000.0 + level.powi(3) * (s as f64 + 1.0).powf(2.7) / divisors[s - 10]
            };
            let sure = o.event_5_10_15 && (s == 5 || s == 10 || s == 15);
            let (mut p, mut d) = if sure {
                (1.0, 0.0)
            } else {
                (success[s], boom[s])
            };
            if o.starcatch && !sure {
                let q = (p * 1.05f64).min(1.0);
                d *= (1.0 - q) / (1.0 - p);
                p = q;
            }
            if o.sunday && (15..=21).contains(&s) {
                d *= 0.7;
            }
            let guarded = o.prevention && (15..=17).contains(&s) && !sure;
            if guarded {
                d = 0.0;
            }
            let low = if s < 17 {
                mvp + if o.pc_room { 0.05 } else { 0.0 }
            } else {
                0.0
            };
            let mut c = base * (1.0 - low) * (1.0 - o.event_sale);
            if guarded {
                c += 2.0 * base;
            }
            let c = (c / 10.0).round() * 10.0;
            let next = if o.event_1plus1 && s <= 10 {
                (s + 2).min(to)
            } else {
                s + 1
            };
            (p, d, c, next)
        };
        // E[s]: expected meso from s; B[s]: expected destructions from s.
        let mut e = vec![0.0f64; to.max(12) + 1];
        let mut b = vec![0.0f64; to.max(12) + 1];
        for _ in 0..200_000 {
            let mut delta = 0.0f64;
            for s in (0..to).rev() {
                let (p, d, c, next) = step(s);
                // E = c + p·E[next] + d·E[12] + (1 − p − d)·E  ⇒  E = (c + p·E[next] + d·E[12]) / (p + d)
                let ne = (c + p * e[next] + d * e[12]) / (p + d);
                let nb = (p * b[next] + d * (1.0 + b[12])) / (p + d);
                delta = delta.max((ne - e[s]).abs() / ne.max(1.0));
                e[s] = ne;
                b[s] = nb;
            }
            if delta < 1e-15 {
                break;
            }
        }
        (e[0], b[0])
    }

    #[test]
    fn independent_value_iteration_agrees_for_every_rule() {
        let cases = [
            PLAIN,
            StarforceSettings {
                prevention: true,
                event_sale: 0.3,
                ..PLAIN
            },
            StarforceSettings {
                mvp: MvpGrade::Diamond,
                ..PLAIN
            },
            StarforceSettings {
                mvp: MvpGrade::Gold,
                pc_room: true,
                event_sale: 0.3,
                starcatch: true,
                sunday: true,
                ..PLAIN
            },
            StarforceSettings {
                event_5_10_15: true,
                event_1plus1: true,
                prevention: true,
                ..PLAIN
            },
        ];
        for o in cases {
            for (level, to) in [(200u32, 22u8), (160, 17), (250, 24), (140, 11)] {
                let (meso, destroys) = value_iteration(f64::from(level), to as usize, &o);
                let e = expected_chain(level, 0, to, &o);
                assert!(
                    (e.meso - meso).abs() / meso < 1e-9,
                    "{level} 0→{to} {o:?}: engine {} independent {meso}",
                    e.meso
                );
                assert!((e.destroys - destroys).abs() < 1e-9, "{o:?}");
            }
        }
        // The published figures at L200 0→22: prevention + 30 % sale ≈ 385.3억; MVP 10 % ≈ 7 % under full price.
        let o = StarforceSettings {
            prevention: true,
            event_sale: 0.3,
            ..PLAIN
        };
        let (meso, _) = value_iteration(200.0, 22, &o);
        assert_eq!((meso / 1e7).round() as u64, 3853, "{meso}");
        assert_eq!(
            (expected_chain(200, 0, 22, &o).meso / 1e7).round() as u64,
            3853
        );
        let mvp = StarforceSettings {
            mvp: MvpGrade::Diamond,
            ..PLAIN
        };
        let (cheap, _) = value_iteration(200.0, 22, &mvp);
        let (full, _) = value_iteration(200.0, 22, &PLAIN);
        let ratio = expected_chain(200, 0, 22, &mvp).meso / expected_chain(200, 0, 22, &PLAIN).meso;
        assert!((ratio - cheap / full).abs() < 1e-9);
        assert!(ratio > 0.9 && ratio < 0.99, "{ratio}");
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
        // 1+1: from 0 every success at ≤10★ adds two stars, so 0→12 takes the attempts at 0, 2, 4, 6, 8, 10.
        let o = StarforceSettings {
            event_1plus1: true,
            ..PLAIN
        };
        let direct: f64 = [0u8, 2, 4, 6, 8, 10]
            .iter()
            .map(|&s| attempt_cost(150, s, &o) / SUCCESS[s as usize])
            .sum();
        assert!((expected_chain(150, 0, 12, &o).meso - direct).abs() < 1e-6);
    }

    #[test]
    fn options_are_validated() {
        assert!(StarforceOptions::new(true, true, true, 0.3).is_ok());
        assert!(StarforceOptions::new(false, false, false, 1.0).is_err());
        assert!(StarforceOptions::new(false, false, false, -0.1).is_err());
        assert!(StarforceOptions::new(false, false, false, f64::NAN).is_err());
        assert_eq!(
            StarforceSettings::from(StarforceOptions::default()),
            StarforceSettings::default()
        );
        assert_eq!(StarforceSettings::default(), PLAIN);
    }

    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    }

    #[test]
    fn settings_from_raw_parameters() {
        let s = StarforceSettings::from_params(params(&[])).unwrap();
        assert_eq!(s, PLAIN);
        let s = StarforceSettings::from_params(params(&[
            ("starcatch", "true"),
            ("mvp", "Diamond"),
            ("pc_room", "1"),
            ("event_sale", "0.3"),
            ("event_5_10_15", "true"),
            ("event_1plus1", "false"),
            ("replacement_cost", "1500000000"),
        ]))
        .unwrap();
        assert_eq!(s.mvp, MvpGrade::Diamond);
        assert_eq!(s.event_sale, 0.3);
        assert_eq!(s.replacement_cost, Some(1_500_000_000));
        assert_eq!(
            s.key_fragment(),
            "sc1su0pr0mvdiamondpc1es3000e1o0rc1500000000"
        );
        assert_eq!(PLAIN.key_fragment(), "sc0su0pr0mvnonepc0es0e0o0rc-");
        // `discount` is the older name of the event sale.
        let d = StarforceSettings::from_params(params(&[("discount", "0.3")])).unwrap();
        assert_eq!(d.event_sale, 0.3);
        assert_eq!(
            d,
            StarforceSettings::from(StarforceOptions::new(false, false, false, 0.3).unwrap())
        );
        // Given both, the newer name prices the sale; a malformed older one is still refused.
        let both =
            StarforceSettings::from_params(params(&[("event_sale", "0.3"), ("discount", "0.5")]))
                .unwrap();
        assert_eq!(both.event_sale, 0.3);
        assert!(
            StarforceSettings::from_params(params(&[("event_sale", "0.3"), ("discount", "x")]))
                .is_err()
        );
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["mvp"], "diamond");
        assert_eq!(v["replacement_cost"], 1_500_000_000u64);
        assert_eq!(v["starcatch"], true);
        for bad in [
            ("mvp", "platinum"),
            ("event_sale", "1"),
            ("event_sale", "-0.1"),
            ("event_sale", "NaN"),
            ("discount", "2"),
            ("pc_room", "maybe"),
            ("replacement_cost", "-5"),
            ("replacement_cost", "1e9"),
        ] {
            let e = StarforceSettings::from_params(params(&[bad])).unwrap_err();
            assert!(
                matches!(e, ExpectationError::InvalidStarforceOption { name, .. } if name == bad.0),
                "{bad:?}: {e}"
            );
            assert!(e.to_string().contains(bad.1), "{e}");
        }
    }

    #[test]
    fn the_sale_is_read_to_the_basis_point_the_key_names() {
        // The key names the sale in basis points; the settings must compute with that same value, so two
        // sales the key cannot tell apart are one setting.
        let fine = StarforceSettings::from_params(params(&[("discount", "0.30004")])).unwrap();
        let plain = StarforceSettings::from_params(params(&[("event_sale", "0.3")])).unwrap();
        assert_eq!(fine.key_fragment(), plain.key_fragment());
        assert_eq!(fine, plain);
        assert_eq!(fine.event_sale, 0.3);
        assert_eq!(
            expected_chain(200, 0, 22, &fine),
            expected_chain(200, 0, 22, &plain)
        );
        // Given together, the alias and the name agree when they name the same basis point.
        assert!(
            StarforceSettings::from_params(params(&[
                ("event_sale", "0.3"),
                ("discount", "0.30004")
            ]))
            .is_ok()
        );
        // A sale that rounds to 100 % is not a sale.
        let e = StarforceSettings::from_params(params(&[("event_sale", "0.99996")])).unwrap_err();
        assert!(e.to_string().contains("event_sale"), "{e}");
        // Nor is one above the largest step as written (the published maximum is 0.9999), though it would
        // round to it; below it, the value is read to the basis point.
        assert!(StarforceSettings::from_params(params(&[("event_sale", "0.99994")])).is_err());
        let near = StarforceSettings::from_params(params(&[("event_sale", "0.99986")])).unwrap();
        assert_eq!(near.event_sale, 0.9999);
    }

    #[test]
    fn max_stars_scrolls_fixed_stars_and_blocks() {
        assert_eq!(
            [94, 95, 107, 108, 117, 127, 137, 138].map(max_stars),
            [5, 8, 8, 10, 10, 15, 20, 30]
        );
        let scrolls = expected_scrolls(15);
        assert!((scrolls - SCROLL_SUCCESS.iter().map(|p| 1.0 / p).sum::<f64>()).abs() < 1e-12);
        let now = RuleSet::Kms30Stars;
        let mut item = Item {
            starforce: Some("12".into()),
            starforce_scroll_flag: Some("사용".into()),
            item_base_option: Some(crate::expectation::model::ItemOption {
                base_equipment_level: Some(150),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = evaluate(&item, &PLAIN, now, true);
        let r = r.available().unwrap();
        assert_eq!(r.kind, StarforceKind::Scroll);
        assert_eq!(r.expected_meso, None);
        assert_eq!(r.replacement, None);
        assert!((r.expected_scrolls.unwrap() - expected_scrolls(12)).abs() < 1e-12);
        item.starforce = Some("17".into());
        assert_eq!(
            evaluate(&item, &PLAIN, now, true).reason(),
            Some(Unavailable::StarsAboveMax)
        );
        item.starforce_scroll_flag = Some("미사용".into());
        let r = evaluate(&item, &PLAIN, now, true);
        let chain = expected_chain(150, 0, 17, &PLAIN);
        let r = r.available().unwrap();
        assert_eq!(r.expected_meso, Some(chain.meso.round() as u64));
        let rep = r.replacement.as_ref().unwrap();
        assert_eq!(rep.expected_items, chain.destroys);
        assert_eq!(
            (rep.expected_meso, rep.meso_text.as_str()),
            (None, "not priced")
        );
        let priced = StarforceSettings {
            replacement_cost: Some(1_000_000_000),
            ..PLAIN
        };
        let r = evaluate(&item, &priced, now, true);
        let rep = r.available().unwrap().replacement.clone().unwrap();
        assert_eq!(
            rep.expected_meso,
            Some((chain.destroys * 1e9).round() as u64)
        );
        assert_eq!(
            evaluate(&item, &PLAIN, now, false).reason(),
            Some(Unavailable::InvalidOptions)
        );
        // Under the 25-star rules the same item is priced with that system's chain and maximum.
        let old = evaluate(&item, &PLAIN, RuleSet::Kms25Stars, true);
        let old = old.available().unwrap();
        assert_eq!(
            old.expected_meso,
            Some(KMS_25.expected_chain(150, 0, 17, &PLAIN).meso.round() as u64)
        );
        assert_ne!(old.expected_meso, Some(chain.meso.round() as u64));
        assert_eq!(old.max_stars, 25);
        item.starforce = Some("26".into());
        assert_eq!(
            evaluate(&item, &PLAIN, RuleSet::Kms25Stars, true).reason(),
            Some(Unavailable::StarsAboveMax)
        );
        assert!(evaluate(&item, &PLAIN, now, true).available().is_some());
        assert_eq!(
            [94, 95, 107, 108, 117, 127, 137, 138].map(|l| KMS_25.max_stars(l)),
            [5, 8, 8, 10, 10, 15, 20, 25]
        );
        item.starforce = Some("x".into());
        assert_eq!(
            evaluate(&item, &PLAIN, now, true).reason(),
            Some(Unavailable::InvalidStars)
        );
        item.item_base_option = None;
        item.starforce = Some("6".into());
        assert_eq!(
            evaluate(&item, &PLAIN, now, true).reason(),
            Some(Unavailable::StarsAboveMax)
        );
        // Genesis and Destiny weapons are issued at 22★ and not starforced.
        for name in ["제네시스 스태프", "데스티니 샤이닝로드"] {
            let weapon = Item {
                item_name: Some(name.into()),
                starforce: Some("22".into()),
                item_base_option: Some(crate::expectation::model::ItemOption {
                    base_equipment_level: Some(200),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let r = evaluate(&weapon, &PLAIN, now, true);
            let r = r.available().unwrap();
            assert_eq!(
                (r.kind, r.stars, r.expected_meso),
                (StarforceKind::Fixed, 22, None)
            );
        }
    }

    /// Sums of the simulated meso and destructions per trial, for the Monte Carlo tests of both systems.
    #[derive(Default)]
    struct Tally {
        sum: f64,
        sum_sq: f64,
        dsum: f64,
        dsum_sq: f64,
    }

    impl Tally {
        fn add(&mut self, cost: f64, destroys: f64) {
            self.sum += cost;
            self.sum_sq += cost * cost;
            self.dsum += destroys;
            self.dsum_sq += destroys * destroys;
        }

        /// The simulated means of `trials` trials lie within 3 standard errors of the exact chain.
        fn assert_agrees(&self, trials: u32, exact: ChainExpectation, context: &str) {
            let n = f64::from(trials);
            for (what, s, s2, expect) in [
                ("meso", self.sum, self.sum_sq, exact.meso),
                ("destroys", self.dsum, self.dsum_sq, exact.destroys),
            ] {
                let mean = s / n;
                let se = ((s2 / n - mean * mean).max(0.0) / n).sqrt();
                assert!(
                    (mean - expect).abs() <= 3.0 * se,
                    "{what}: simulated {mean}, exact {expect}, se {se} ({context})"
                );
            }
        }
    }

    /// Simulates starforce attempts with rates and costs written out independently of [`step_rates`] and
    /// [`attempt_cost`] and checks the sample means of meso and destructions against the exact chain within
    /// 3 standard errors.
    fn monte_carlo(level: u32, from: u8, to: u8, opts: StarforceSettings, trials: u32, seed: u64) {
        let mvp = [0.0, 0.0, 0.03, 0.05, 0.1, 0.1]
            [MvpGrade::ALL.iter().position(|g| *g == opts.mvp).unwrap()];
        let table: Vec<(f64, f64, f64)> = (0..30usize)
            .map(|s| {
                let sure = opts.event_5_10_15 && [5, 10, 15].contains(&s);
                let (mut p, mut d) = if sure {
                    (1.0, 0.0)
                } else {
                    (SUCCESS[s], DESTROY[s])
                };
                if opts.starcatch && !sure {
                    let q = (p * 1.05).min(1.0);
                    d *= (1.0 - q) / (1.0 - p);
                    p = q;
                }
                if opts.sunday && (15..=21).contains(&s) {
                    d *= 0.7;
                }
                let guarded = opts.prevention && (15..=17).contains(&s) && !sure;
                if guarded {
                    d = 0.0;
                }
                let l3 = f64::from(level).powi(3);
                let base = if s < 10 {
                    1000.0 + l3 * (s as f64 + 1.0) / 36.0
                } else {
                    1000.0 + l3 * (s as f64 + 1.0).powf(2.7) / DIVISOR[s - 10]
                };
                let low = if s < 17 {
                    mvp + if opts.pc_room { 0.05 } else { 0.0 }
                } else {
                    0.0
                };
                let c = base * (1.0 - low) * (1.0 - opts.event_sale)
                    + if guarded { 2.0 * base } else { 0.0 };
                (p, d, (c / 10.0).round() * 10.0)
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut tally = Tally::default();
        for _ in 0..trials {
            let (mut s, mut cost, mut destroys) = (from as usize, 0.0f64, 0.0f64);
            while s < to as usize {
                let (p, d, c) = table[s];
                cost += c;
                let u: f64 = rng.random();
                if u < p {
                    s += if opts.event_1plus1 && s <= 10 { 2 } else { 1 };
                } else if u < p + d {
                    s = DESTROY_RETURN as usize;
                    destroys += 1.0;
                }
            }
            tally.add(cost, destroys);
        }
        let exact = expected_chain(level, from, to, &opts);
        tally.assert_agrees(trials, exact, &format!("{level} {from}→{to} {opts:?}"));
    }

    #[test]
    fn monte_carlo_plain_chain() {
        monte_carlo(160, 10, 21, PLAIN, 200_000, 11);
    }

    #[test]
    fn monte_carlo_with_every_option() {
        let o = StarforceSettings {
            starcatch: true,
            sunday: true,
            prevention: true,
            event_sale: 0.3,
            ..PLAIN
        };
        monte_carlo(200, 12, 22, o, 200_000, 12);
    }

    #[test]
    fn monte_carlo_discounts_and_events() {
        let o = StarforceSettings {
            mvp: MvpGrade::Gold,
            pc_room: true,
            event_sale: 0.3,
            prevention: true,
            ..PLAIN
        };
        monte_carlo(200, 12, 22, o, 200_000, 13);
        let o = StarforceSettings {
            event_5_10_15: true,
            event_1plus1: true,
            mvp: MvpGrade::Silver,
            ..PLAIN
        };
        monte_carlo(150, 0, 17, o, 200_000, 14);
    }

    /// The 25-star system as published, written out here independently of [`KMS_25`]: per star (success,
    /// destroy, whether a failure drops a star, cost divisor).
    fn published_25(s: usize) -> (f64, f64, bool, f64) {
        let success = match s {
            0 => 0.95,
            1 => 0.90,
            2 | 3 => 0.85,
            4 => 0.80,
            5 => 0.75,
            6 => 0.70,
            7 => 0.65,
            8 => 0.60,
            9 => 0.55,
            10 => 0.50,
            11 => 0.45,
            12 => 0.40,
            13 => 0.35,
            14..=21 => 0.30,
            22 => 0.03,
            23 => 0.02,
            _ => 0.01,
        };
        let destroy = match s {
            0..=14 => 0.0,
            15..=17 => 0.021,
            18 | 19 => 0.028,
            20 | 21 => 0.07,
            22 => 0.194,
            23 => 0.294,
            _ => 0.396,
        };
        let drops = matches!(s, 16..=19 | 21..=24);
        let divisor = match s {
            0..=9 => 25.0,
            10 => 400.0,
            11 => 220.0,
            12 => 150.0,
            13 => 110.0,
            14 => 75.0,
            _ => 200.0,
        };
        (success, destroy, drops, divisor)
    }

    /// One attempt at `s` under the 25-star rules and the options, written out independently:
    /// `(success, stay, drop, destroy, price, chance-time price)`. Star catch ×1.05 taken from failure and
    /// destruction in proportion; prevention at 15–16★ (destruction becomes the star's failure) for +100 % of the
    /// undiscounted base; MVP + PC room below 17★ then the sale; prices rounded to 100; no Sunday relief.
    fn attempt_25(level: f64, s: usize, o: &StarforceSettings) -> (f64, f64, f64, f64, f64, f64) {
        let (p0, d0, drops, divisor) = published_25(s);
        let sure = o.event_5_10_15 && [5, 10, 15].contains(&s);
        let (mut p, mut d) = if sure { (1.0, 0.0) } else { (p0, d0) };
        if o.starcatch && !sure {
            let q = (p * 1.05f64).min(1.0);
            d *= (1.0 - q) / (1.0 - p);
            p = q;
        }
        let guarded = o.prevention && (15..=16).contains(&s) && !sure;
        if guarded {
            d = 0.0;
        }
        let fail = 1.0 - p - d;
        let (stay, drop) = if drops { (0.0, fail) } else { (fail, 0.0) };
        let l3 = level.powi(3);
        let base = if s < 10 {
            1000.0 + l3 * (s as f64 + 1.0) / divisor
        } else {
            1000.0 + l3 * (s as f64 + 1.0).powf(2.7) / divisor
        };
        let mvp = match o.mvp {
            MvpGrade::Silver => 0.03,
            MvpGrade::Gold => 0.05,
            MvpGrade::Diamond | MvpGrade::Red => 0.1,
            MvpGrade::None | MvpGrade::Bronze => 0.0,
        };
        let low = if s < 17 {
            mvp + if o.pc_room { 0.05 } else { 0.0 }
        } else {
            0.0
        };
        let price = base * (1.0 - low) * (1.0 - o.event_sale);
        let round = |c: f64| (c / 100.0).round() * 100.0;
        let guard = if guarded { base } else { 0.0 };
        (p, stay, drop, d, round(price + guard), round(price))
    }

    /// An independent exact solver for the 25-star chain: the full linear system over the states (star, drops in
    /// a row ∈ {0, 1, 2}) — two drops in a row make the next attempt a sure chance-time success, a destruction
    /// returns to (12, 0) — solved by dense Gaussian elimination with partial pivoting. Returns (meso, destroys,
    /// attempts) from (`from`, 0).
    fn dense_solve_25(level: u32, from: usize, to: usize, o: &StarforceSettings) -> [f64; 3] {
        let n = 3 * to;
        let idx = |s: usize, c: usize| 3 * s + c;
        let next = |s: usize| {
            if o.event_1plus1 && s <= 10 {
                (s + 2).min(to)
            } else {
                s + 1
            }
        };
        // a·E = b for three right-hand sides.
        let mut a = vec![vec![0.0f64; n]; n];
        let mut b = vec![[0.0f64; 3]; n];
        let add = |row: usize, s: usize, c: usize, prob: f64, a: &mut [Vec<f64>]| {
            if s < to {
                a[row][idx(s, c)] -= prob;
            }
        };
        for s in 0..to {
            let (p, stay, drop, d, price, chance_price) = attempt_25(f64::from(level), s, o);
            for c in 0..3 {
                let row = idx(s, c);
                a[row][row] += 1.0;
                if c == 2 {
                    b[row] = [chance_price, 0.0, 1.0];
                    add(row, next(s), 0, 1.0, &mut a);
                    continue;
                }
                b[row] = [price, d, 1.0];
                add(row, next(s), 0, p, &mut a);
                add(row, s, 0, stay, &mut a);
                if drop > 0.0 {
                    add(row, s - 1, c + 1, drop, &mut a);
                }
                add(row, 12, 0, d, &mut a);
            }
        }
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .unwrap();
            a.swap(col, pivot);
            b.swap(col, pivot);
            let (pivot_row, pivot_b) = (a[col].clone(), b[col]);
            for row in col + 1..n {
                let f = a[row][col] / pivot_row[col];
                if f != 0.0 {
                    for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                        *x -= f * p;
                    }
                    for (x, p) in b[row].iter_mut().zip(pivot_b) {
                        *x -= f * p;
                    }
                }
            }
        }
        let mut e = vec![[0.0f64; 3]; n];
        for row in (0..n).rev() {
            for q in 0..3 {
                let rest: f64 = (row + 1..n).map(|k| a[row][k] * e[k][q]).sum();
                e[row][q] = (b[row][q] - rest) / a[row][row];
            }
        }
        e[idx(from, 0)]
    }

    #[test]
    fn costs_and_rates_of_the_25_star_system_follow_the_published_rules() {
        // 1000 + 200³·1/25 = 321000 (rounded to 100)
        assert_eq!(KMS_25.attempt_cost(200, 0, &PLAIN), 321_000.0);
        // 11★: 1000 + 200³·12^2.7/220, to the nearest 100.
        let raw = 1000.0 + 8e6 * 12f64.powf(2.7) / 220.0;
        assert_eq!(
            KMS_25.attempt_cost(200, 11, &PLAIN),
            (raw / 100.0).round() * 100.0
        );
        // Prevention at 16★: +100 % of the undiscounted base on the sale price; none at 17★; none in chance time.
        let o = StarforceSettings {
            prevention: true,
            event_sale: 0.3,
            ..PLAIN
        };
        let raw16 = 1000.0 + 8e6 * 17f64.powf(2.7) / 200.0;
        assert_eq!(
            KMS_25.attempt_cost(200, 16, &o),
            ((raw16 * 0.7 + raw16) / 100.0).round() * 100.0
        );
        assert_eq!(
            KMS_25.chance_time_cost(200, 16, &o),
            (raw16 * 0.7 / 100.0).round() * 100.0
        );
        let raw17 = 1000.0 + 8e6 * 18f64.powf(2.7) / 200.0;
        assert_eq!(
            KMS_25.attempt_cost(200, 17, &o),
            (raw17 * 0.7 / 100.0).round() * 100.0
        );
        for star in 0..25u8 {
            for bits in 0..64u8 {
                let o = StarforceSettings {
                    starcatch: bits & 1 != 0,
                    sunday: bits & 2 != 0,
                    prevention: bits & 4 != 0,
                    event_5_10_15: bits & 8 != 0,
                    mvp: if bits & 16 != 0 {
                        MvpGrade::Gold
                    } else {
                        MvpGrade::None
                    },
                    pc_room: bits & 32 != 0,
                    ..PLAIN
                };
                let r = KMS_25.step_rates(star, &o);
                let (p, stay, drop, d, price, _) = attempt_25(200.0, star as usize, &o);
                for (engine, published) in [
                    (r.success, p),
                    (r.stay, stay),
                    (r.drop, drop),
                    (r.destroy, d),
                ] {
                    assert!((engine - published).abs() < 1e-12, "{star} {o:?}: {r:?}");
                }
                assert!((r.success + r.destroy + r.stay + r.drop - 1.0).abs() < 1e-12);
                assert_eq!(KMS_25.attempt_cost(200, star, &o), price, "{star} {o:?}");
            }
        }
        // Failures drop a star at 16–19 and 21–24 only; 15★ and 20★ keep it. Prevention turns 16★'s destruction
        // into a drop and 15★'s into a kept star.
        let prevent = StarforceSettings {
            prevention: true,
            ..PLAIN
        };
        let r = KMS_25.step_rates(16, &prevent);
        assert_eq!((r.destroy, r.stay), (0.0, 0.0));
        assert!((r.drop - 0.7).abs() < 1e-12);
        let r = KMS_25.step_rates(15, &prevent);
        assert_eq!((r.destroy, r.drop), (0.0, 0.0));
        assert!((r.stay - 0.7).abs() < 1e-12);
        assert_eq!(KMS_25.step_rates(17, &prevent).destroy, 0.021);
        assert_eq!(KMS_25.step_rates(20, &PLAIN).drop, 0.0);
        // No Sunday relief in the 25-star system: the flag changes nothing.
        let sunday = StarforceSettings {
            sunday: true,
            ..PLAIN
        };
        assert_eq!(
            KMS_25.expected_chain(200, 0, 22, &sunday),
            KMS_25.expected_chain(200, 0, 22, &PLAIN)
        );
    }

    #[test]
    fn the_25_star_chain_agrees_with_an_independent_dense_solve() {
        let cases = [
            PLAIN,
            StarforceSettings {
                prevention: true,
                event_sale: 0.3,
                ..PLAIN
            },
            StarforceSettings {
                mvp: MvpGrade::Diamond,
                pc_room: true,
                starcatch: true,
                ..PLAIN
            },
            StarforceSettings {
                event_5_10_15: true,
                event_1plus1: true,
                prevention: true,
                starcatch: true,
                ..PLAIN
            },
        ];
        for o in cases {
            for (level, from, to) in [
                (200u32, 0u8, 22u8),
                (160, 0, 17),
                (250, 10, 25),
                (140, 0, 11),
                (200, 17, 21),
                (150, 16, 18),
            ] {
                let [meso, destroys, attempts] =
                    dense_solve_25(level, from as usize, to as usize, &o);
                let e = KMS_25.expected_chain(level, from, to, &o);
                // Up to 25★ the figures reach 10^15 meso through success rates of 1–3 %: both solves' round-off
                // grows to a few 10^-9 there.
                let tol = if to == 25 { 1e-7 } else { 1e-9 };
                assert!(
                    (e.meso - meso).abs() / meso < tol,
                    "{level} {from}→{to} {o:?}: engine {} independent {meso}",
                    e.meso
                );
                assert!(
                    (e.destroys - destroys).abs() <= tol * destroys.max(1.0),
                    "{level} {from}→{to} {o:?}: engine {} independent {destroys}",
                    e.destroys
                );
                assert!(
                    (e.attempts - attempts).abs() / attempts < tol,
                    "{level} {from}→{to} {o:?}: engine {} independent {attempts}",
                    e.attempts
                );
            }
        }
        // The reference figure of the 25-star system: L = 200, 0→22★, no options, from the independent solve.
        let [meso, destroys, _] = dense_solve_25(200, 0, 22, &PLAIN);
        let e = KMS_25.expected_chain(200, 0, 22, &PLAIN);
        assert_eq!(e.meso.round(), meso.round());
        assert_eq!(
            meso.round() as u64,
            REFERENCE_25_L200_0_TO_22,
            "{meso} {destroys}"
        );
        // Below 15★ nothing drops or is destroyed: the chain is the plain sum of price / success.
        let direct: f64 = (0..12)
            .map(|s| {
                let (p, _, _, _, price, _) = attempt_25(150.0, s, &PLAIN);
                price / p
            })
            .sum();
        assert!((KMS_25.expected_chain(150, 0, 12, &PLAIN).meso - direct).abs() < 1e-6);
    }

    /// L = 200, 0→22★, no options, under the 25-star rules: the independent dense solve's figure.
    const REFERENCE_25_L200_0_TO_22: u64 = 43_056_254_991;

    /// Simulates 25-star attempts (drops, chance time after two drops in a row, destruction to 12★) with the
    /// rates and prices of [`attempt_25`] and checks the sample means of meso and destructions against the exact
    /// chain within 3 standard errors.
    fn monte_carlo_25(
        level: u32,
        from: u8,
        to: u8,
        opts: StarforceSettings,
        trials: u32,
        seed: u64,
    ) {
        let table: Vec<_> = (0..25)
            .map(|s| attempt_25(f64::from(level), s, &opts))
            .collect();
        let next = |s: usize| {
            if opts.event_1plus1 && s <= 10 {
                s + 2
            } else {
                s + 1
            }
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let mut tally = Tally::default();
        for _ in 0..trials {
            let (mut s, mut in_a_row, mut cost, mut destroys) = (from as usize, 0, 0.0f64, 0.0f64);
            while s < to as usize {
                let (p, stay, drop, _, price, chance_price) = table[s];
                if in_a_row == 2 {
                    cost += chance_price;
                    s = next(s);
                    in_a_row = 0;
                    continue;
                }
                cost += price;
                let u: f64 = rng.random();
                if u < p {
                    s = next(s);
                    in_a_row = 0;
                } else if u < p + stay {
                    in_a_row = 0;
                } else if u < p + stay + drop {
                    s -= 1;
                    in_a_row += 1;
                } else {
                    s = DESTROY_RETURN as usize;
                    in_a_row = 0;
                    destroys += 1.0;
                }
            }
            tally.add(cost, destroys);
        }
        let exact = KMS_25.expected_chain(level, from, to, &opts);
        tally.assert_agrees(trials, exact, &format!("{level} {from}→{to} {opts:?}"));
    }

    #[test]
    fn monte_carlo_25_star_plain_chain() {
        monte_carlo_25(160, 10, 21, PLAIN, 200_000, 21);
    }

    #[test]
    fn monte_carlo_25_star_with_options() {
        let o = StarforceSettings {
            starcatch: true,
            prevention: true,
            mvp: MvpGrade::Gold,
            pc_room: true,
            event_sale: 0.3,
            ..PLAIN
        };
        monte_carlo_25(200, 12, 22, o, 200_000, 22);
        let o = StarforceSettings {
            event_5_10_15: true,
            event_1plus1: true,
            prevention: true,
            ..PLAIN
        };
        monte_carlo_25(150, 0, 18, o, 200_000, 23);
    }

    fn arb_settings() -> impl Strategy<Value = StarforceSettings> {
        (0u8..128, 0usize..6, 0.0f64..0.9).prop_map(|(bits, mvp, sale)| StarforceSettings {
            starcatch: bits & 1 != 0,
            sunday: bits & 2 != 0,
            prevention: bits & 4 != 0,
            pc_room: bits & 8 != 0,
            event_5_10_15: bits & 16 != 0,
            event_1plus1: bits & 32 != 0,
            replacement_cost: (bits & 64 != 0).then_some(1_000_000),
            mvp: MvpGrade::ALL[mvp],
            event_sale: sale,
        })
    }

    fn arb_system() -> impl Strategy<Value = &'static System> {
        prop_oneof![Just(&KMS_30), Just(&KMS_25)]
    }

    proptest! {
        #[test]
        fn expected_cost_grows_with_stars_and_level(
            sys in arb_system(), level in 0u32..300, stars in 0u8..30, o in arb_settings(),
        ) {
            let stars = stars % sys.top_stars;
            let here = sys.expected_chain(level, 0, stars, &o);
            let next_star = sys.expected_chain(level, 0, stars + 1, &o);
            let next_level = sys.expected_chain(level + 1, 0, stars, &o);
            prop_assert!(here.meso.is_finite() && here.meso >= 0.0);
            // Under 1+1 one success can cover two stars, so the next star may cost nothing more.
            if o.event_1plus1 && stars <= ONE_PLUS_ONE_MAX_STAR + 1 {
                prop_assert!(next_star.meso >= here.meso);
                prop_assert!(next_star.attempts >= here.attempts);
            } else {
                prop_assert!(next_star.meso > here.meso);
                prop_assert!(next_star.attempts > here.attempts);
            }
            prop_assert!(next_level.meso >= here.meso);
            prop_assert!(next_star.destroys >= here.destroys - 1e-12);
        }

        #[test]
        fn discounts_never_raise_the_price(
            sys in arb_system(), level in 100u32..300, stars in 0u8..30, o in arb_settings(),
        ) {
            let stars = stars.min(sys.top_stars);
            let full = StarforceSettings { mvp: MvpGrade::None, pc_room: false, event_sale: 0.0, ..o };
            prop_assert!(
                sys.expected_chain(level, 0, stars, &o).meso
                    <= sys.expected_chain(level, 0, stars, &full).meso * (1.0 + 1e-12) + 1e-6
            );
        }

        #[test]
        fn rates_are_a_distribution_and_prevention_never_adds_destructions(
            sys in arb_system(), level in 100u32..300, stars in 0u8..30, o in arb_settings(),
        ) {
            let star = stars % sys.top_stars;
            let r = sys.step_rates(star, &o);
            for x in [r.success, r.destroy, r.stay, r.drop] {
                prop_assert!((0.0..=1.0).contains(&x), "{r:?}");
            }
            prop_assert!((r.success + r.destroy + r.stay + r.drop - 1.0).abs() < 1e-12);
            prop_assert!(r.stay == 0.0 || r.drop == 0.0);
            let stars = stars.min(sys.top_stars);
            let guarded = StarforceSettings { prevention: true, ..o };
            let unguarded = StarforceSettings { prevention: false, ..o };
            let g = sys.expected_chain(level, 0, stars, &guarded);
            let u = sys.expected_chain(level, 0, stars, &unguarded);
            prop_assert!(g.destroys <= u.destroys * (1.0 + 1e-9) + 1e-12, "{g:?} {u:?}");
        }

        #[test]
        fn raw_parameters_round_trip_through_the_key(o in arb_settings()) {
            let sale = o.event_sale.to_string();
            let rc = o.replacement_cost.map(|c| c.to_string());
            let b = |x: bool| if x { "true" } else { "false" };
            let pairs = [
                ("starcatch", b(o.starcatch)), ("sunday", b(o.sunday)), ("prevention", b(o.prevention)),
                ("pc_room", b(o.pc_room)), ("event_5_10_15", b(o.event_5_10_15)),
                ("event_1plus1", b(o.event_1plus1)), ("mvp", o.mvp.as_str()), ("event_sale", sale.as_str()),
            ];
            let get = |k: &str| {
                if k == "replacement_cost" { return rc.as_deref(); }
                pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
            };
            let parsed = StarforceSettings::from_params(get).unwrap();
            // The sale is read to the basis point, the unit the key names it in.
            prop_assert_eq!(parsed, StarforceSettings { event_sale: quantise_sale(o.event_sale), ..o });
            prop_assert_eq!(parsed.key_fragment(), o.key_fragment());
        }
    }
}
