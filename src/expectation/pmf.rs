//! Probability mass functions over small non-negative integers, clamped at a threshold.
//!
//! Contract: a [`ClampedPmf`] with cap `T` holds `P(X = k)` for `k < T` and `P(X ≥ T)` in its last cell. Built
//! from (amount, probability) pairs whose probabilities sum to at most 1, the missing mass goes to amount 0 ("some
//! other line"), so every PMF has total mass 1 (up to rounding) and no negative cell. [`ClampedPmf::convolve`] of
//! two clamped PMFs is the clamped PMF of the sum — exact, because clamping commutes with adding non-negative
//! amounts. The answer `P(X₁ + X₂ + X₃ ≥ T)` is then the last cell, clamped to `[0, 1]` against rounding.
//!
//! Why: a cube target is "at least T" over three independent line slots. Clamping keeps every array at `T + 1`
//! cells (T is at most a few hundred), so the convolution is `O(T²)` with no allocation beyond three small vectors.

/// A PMF over `0..cap` plus the tail `≥ cap` in the last cell.
#[derive(Clone, Debug, PartialEq)]
pub struct ClampedPmf {
    mass: Vec<f64>,
}

impl ClampedPmf {
    /// The PMF of one slot: each `(amount, p)` adds `p` at `min(amount, cap)`; the remainder `1 − Σp` (if
    /// positive) adds at 0. `cap` must be at least 1.
    pub fn from_entries(cap: u32, entries: impl IntoIterator<Item = (u32, f64)>) -> ClampedPmf {
        let cap = cap.max(1) as usize;
        let mut mass = vec![0.0; cap + 1];
        let mut total = 0.0;
        for (amount, p) in entries {
            let p = if p.is_finite() { p.max(0.0) } else { 0.0 };
            mass[(amount as usize).min(cap)] += p;
            total += p;
        }
        if total < 1.0 {
            mass[0] += 1.0 - total;
        }
        ClampedPmf { mass }
    }

    /// The PMF of the sum of two independent variables with these PMFs (same cap).
    pub fn convolve(&self, other: &ClampedPmf) -> ClampedPmf {
        let cap = self.cap();
        debug_assert_eq!(cap, other.cap());
        let mut mass = vec![0.0; cap + 1];
        for (i, &a) in self.mass.iter().enumerate() {
            if a == 0.0 {
                continue;
            }
            for (j, &b) in other.mass.iter().enumerate() {
                mass[(i + j).min(cap)] += a * b;
            }
        }
        ClampedPmf { mass }
    }

    /// `P(X ≥ cap)`, clamped to `[0, 1]`.
    pub fn tail(&self) -> f64 {
        self.mass[self.cap()].clamp(0.0, 1.0)
    }

    pub fn cap(&self) -> usize {
        self.mass.len() - 1
    }

    pub fn mass(&self) -> &[f64] {
        &self.mass
    }

    pub fn total(&self) -> f64 {
        self.mass.iter().sum()
    }
}

/// `P(Σ Xᵢ ≥ threshold)` for independent slots given as `(amount, p)` lists (threshold ≥ 1).
pub fn probability_at_least(threshold: u32, slots: &[Vec<(u32, f64)>]) -> f64 {
    let mut acc: Option<ClampedPmf> = None;
    for s in slots {
        let pmf = ClampedPmf::from_entries(threshold, s.iter().copied());
        acc = Some(match acc {
            None => pmf,
            Some(a) => a.convolve(&pmf),
        });
    }
    acc.map(|a| a.tail()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Enumerates every combination of one outcome per slot (the "other" remainder included).
    fn brute_force(threshold: u32, slots: &[Vec<(u32, f64)>]) -> f64 {
        let with_rest: Vec<Vec<(u32, f64)>> = slots
            .iter()
            .map(|s| {
                let mut v = s.clone();
                let sum: f64 = s.iter().map(|e| e.1).sum();
                if sum < 1.0 {
                    v.push((0, 1.0 - sum));
                }
                v
            })
            .collect();
        fn rec(i: usize, acc: u32, p: f64, t: u32, s: &[Vec<(u32, f64)>]) -> f64 {
            if i == s.len() {
                return if acc >= t { p } else { 0.0 };
            }
            s[i].iter()
                .map(|&(a, q)| rec(i + 1, acc + a, p * q, t, s))
                .sum()
        }
        rec(0, 0, 1.0, threshold, &with_rest)
    }

    fn slot() -> impl Strategy<Value = Vec<(u32, f64)>> {
        // Up to 6 outcomes with amounts 0..=15 and weights normalised to a mass in (0.3, 1].
        (
            prop::collection::vec((0u32..=15, 0.01f64..1.0), 1..=6),
            0.3f64..=1.0,
        )
            .prop_map(|(raw, mass)| {
                let w: f64 = raw.iter().map(|e| e.1).sum();
                raw.into_iter().map(|(a, x)| (a, x / w * mass)).collect()
            })
    }

    #[test]
    fn a_known_small_case() {
        // Each slot: 10 with 0.5, otherwise nothing. P(sum ≥ 20) = P(at least two of three) = 0.5.
        let s = vec![(10, 0.5)];
        let p = probability_at_least(20, &[s.clone(), s.clone(), s]);
        assert!((p - 0.5).abs() < 1e-15, "{p}");
    }

    proptest! {
        #[test]
        fn convolution_matches_brute_force(
            slots in prop::collection::vec(slot(), 1..=3),
            t in 1u32..=40,
        ) {
            let fast = probability_at_least(t, &slots);
            let slow = brute_force(t, &slots);
            prop_assert!((fast - slow).abs() <= 1e-12, "fast {} slow {}", fast, slow);
        }

        #[test]
        fn every_pmf_has_mass_one_and_no_negative_cell(
            slots in prop::collection::vec(slot(), 1..=3),
            t in 1u32..=40,
        ) {
            let mut acc = ClampedPmf::from_entries(t, slots[0].iter().copied());
            for s in &slots[1..] {
                acc = acc.convolve(&ClampedPmf::from_entries(t, s.iter().copied()));
            }
            prop_assert!((acc.total() - 1.0).abs() < 1e-9);
            prop_assert!(acc.mass().iter().all(|&m| m >= 0.0));
            let p = acc.tail();
            prop_assert!((0.0..=1.0).contains(&p));
        }

        #[test]
        fn tail_shrinks_as_the_threshold_grows(slots in prop::collection::vec(slot(), 3..=3), t in 1u32..=40) {
            let lo = probability_at_least(t, &slots);
            let hi = probability_at_least(t + 1, &slots);
            prop_assert!(hi <= lo + 1e-12, "P(≥{}) = {} < P(≥{}) = {}", t, lo, t + 1, hi);
        }
    }
}
