//! Empirical privacy audit: run a mechanism many times on two neighbouring datasets (one
//! person added, with all their rows), and turn how often each output event happens on each
//! into a lower bound on ε with Clopper-Pearson intervals at 99% confidence (Bonferroni over
//! the event family). The bound must never exceed the ε the mechanism claims; a mechanism with
//! its noise halved must be caught.
//!
//! The scalar audits run in the normal suite (100,000 draws per dataset). The full set is
//! `#[ignore]`d for time: `cargo test --release --locked -- --ignored privacy_audit`.

use kith::privacy::bounding::l2_contribution;
use kith::privacy::mechanism::{self, epsilon, scalar_scale};
use statrs::distribution::{Beta, Univariate};

/// The point of the claimed (ε, δ) curve the audit checks. Every δ on a mechanism's curve is a
/// valid claim; at δ = 1e-3, 100,000 draws resolve the curve well enough to tell a correct
/// mechanism from one with half its noise (at the policy's δ = 1e-7 they could not).
const DELTA: f64 = 1e-3;
const CONFIDENCE: f64 = 0.99;

/// The `p` quantile of Beta(a, b): statrs 0.13 gives the CDF (the regularized incomplete beta
/// function), and bisection inverts it to double precision.
fn beta_quantile(a: f64, b: f64, p: f64) -> f64 {
    let beta = Beta::new(a, b).unwrap();
    let (mut low, mut high) = (0.0, 1.0);
    for _ in 0..200 {
        let middle = f64::midpoint(low, high);
        if beta.cdf(middle) < p { low = middle } else { high = middle }
    }
    high
}

/// Clopper-Pearson bounds on a binomial proportion, each one-sided at `1 - alpha`.
fn clopper_pearson(successes: usize, trials: usize, alpha: f64) -> (f64, f64) {
    let (k, n) = (successes as f64, trials as f64);
    let lower = if successes == 0 { 0.0 } else { beta_quantile(k, n - k + 1.0, alpha) };
    let upper = if successes == trials { 1.0 } else { beta_quantile(k + 1.0, n - k, 1.0 - alpha) };
    (lower, upper)
}

/// The largest ε lower bound over threshold events `{y > t}` and `{y < t}` on one output
/// coordinate, from `draws` samples of each dataset.
fn epsilon_lower_bound(mut run: impl FnMut(bool) -> f64, draws: usize) -> f64 {
    let without: Vec<f64> = (0..draws).map(|_| run(false)).collect();
    let with: Vec<f64> = (0..draws).map(|_| run(true)).collect();

    let mut sorted = with.clone();
    sorted.extend_from_slice(&without);
    sorted.sort_by(f64::total_cmp);
    let thresholds: Vec<f64> = (1..40)
        .map(|i| sorted[i * sorted.len() / 40])
        .chain([sorted[sorted.len() - 200]])
        .collect();
    let events = 2 * thresholds.len() * 2;
    let alpha = (1.0 - CONFIDENCE) / events as f64;

    let mut best: f64 = 0.0;
    for &t in &thresholds {
        for (a, b) in [(&with, &without), (&without, &with)] {
            for above in [true, false] {
                let hits = |sample: &[f64]| {
                    sample.iter().filter(|&&y| if above { y > t } else { y < t }).count()
                };
                let (p_hi_lower, _) = clopper_pearson(hits(a), draws, alpha);
                let (_, p_lo_upper) = clopper_pearson(hits(b), draws, alpha);
                if p_hi_lower > DELTA && p_lo_upper > 0.0 {
                    best = best.max(((p_hi_lower - DELTA) / p_lo_upper).ln());
                }
            }
        }
    }
    best
}

/// Audits a scalar Gaussian release of a statistic that the added person moves by
/// `sensitivity`, calibrated for `rho`, with its noise scaled by `noise_factor`.
fn audit_scalar(sensitivity: f64, rho: f64, noise_factor: f64, draws: usize) -> (f64, f64) {
    let scale = scalar_scale(sensitivity, rho).unwrap() * noise_factor;
    let base = 1000.0;
    let bound = epsilon_lower_bound(
        |neighbour| {
            let value = if neighbour { base + sensitivity } else { base };
            mechanism::noise_at_scale(value, scale).unwrap()
        },
        draws,
    );
    (bound, epsilon(rho, DELTA).unwrap())
}

#[test]
fn the_count_mechanism_never_exceeds_its_claimed_epsilon() {
    // A person adds up to k = 32 decisions to a count.
    let (bound, claimed) = audit_scalar(32.0, 0.2, 1.0, 100_000);
    assert!(bound <= claimed, "empirical ε ≥ {bound} exceeds the claimed {claimed}");
    assert!(bound > 1.0, "the audit should see much of the loss, saw {bound} of {claimed}");
}

#[test]
fn a_mechanism_with_half_the_noise_is_caught() {
    let (bound, claimed) = audit_scalar(32.0, 0.2, 0.5, 100_000);
    assert!(bound > claimed, "the broken mechanism went unnoticed: {bound} <= {claimed}");
}

#[test]
#[ignore = "about two minutes: run with `cargo test --release -- --ignored privacy_audit`"]
fn privacy_audit_of_every_mechanism() {
    let draws = 100_000;

    // People count: one person adds 1.
    let (bound, claimed) = audit_scalar(1.0, 0.05, 1.0, draws);
    assert!(bound <= claimed, "count: {bound} > {claimed}");

    // Bounded sum of healthy flags: one person adds at most k = 32.
    let (bound, claimed) = audit_scalar(32.0, 0.1, 1.0, draws);
    assert!(bound <= claimed, "sum: {bound} > {claimed}");

    // Histogram over the 8 domains: one person moves the vector by at most the L2 bound of
    // their capped counts; the worst case puts 8 in each of 4 domains. The audit watches one
    // coordinate the person moves by 8 and the sum of the four they move.
    let l2 = l2_contribution(32, 8, 8);
    let rho = 0.2;
    let claimed = epsilon(rho, DELTA).unwrap();
    let base = vec![500.0; 8];
    let added: Vec<f64> = (0..8).map(|d| if d < 4 { 508.0 } else { 500.0 }).collect();
    let bound = epsilon_lower_bound(
        |neighbour| {
            let input = if neighbour { &added } else { &base };
            let noisy = mechanism::histogram(input, l2, rho).unwrap();
            noisy.values[..4].iter().sum()
        },
        draws,
    );
    assert!(bound <= claimed, "histogram: {bound} > {claimed}");

    // Halved noise on the people count is caught too.
    let (bound, claimed) = audit_scalar(1.0, 0.2, 0.5, draws);
    assert!(bound > claimed, "broken count unnoticed: {bound} <= {claimed}");
}

#[test]
#[ignore = "about a minute: run with `cargo test --release -- --ignored privacy_audit`"]
fn privacy_audit_of_partition_selection() {
    use std::collections::HashMap;

    // Neighbours: without the person, their community is absent; with them, it holds one
    // person. The community must then appear with probability at most δ, whatever happens.
    let (rho, delta) = (0.2, 1e-7);
    let draws = 20_000;
    let alone: HashMap<String, f64> = [("only-member".to_owned(), 1.0)].into();
    let mut shown = 0;
    for _ in 0..draws {
        let (released, _, cost) = mechanism::select_partitions(&alone, 1, 1.0, rho, delta).unwrap();
        assert!(cost.delta <= delta);
        shown += usize::from(released.contains_key("only-member"));
    }
    let (lower, _) = clopper_pearson(shown, draws, 1.0 - CONFIDENCE);
    assert!(lower <= delta, "a lone member's community appeared {shown} times in {draws}");
}
