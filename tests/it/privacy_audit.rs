//! Empirical privacy audit: run a mechanism many times on two neighbouring datasets (one
//! person added, with all their rows), and turn how often each output event happens on each
//! into a lower bound on ε with Clopper-Pearson intervals at 99% confidence (Bonferroni over
//! the event family). The bound must never exceed the ε the mechanism claims; a mechanism with
//! its noise halved must be caught.
//!
//! The scalar audits run in the normal suite (100,000 draws per dataset). The full set is
//! `#[ignore]`d for time: `cargo test --release --locked -- --ignored privacy_audit`.

use kith::privacy::bounding::l2_contribution;
use kith::privacy::mechanism::{self, PartitionSelection, VectorGaussian, epsilon};
use statrs::distribution::{Beta, Univariate};

/// The point of the claimed (ε, δ) curve the audit checks. Every δ on a mechanism's curve is a
/// valid claim; at δ = 1e-3, 100,000 draws resolve the curve well enough to tell a correct
/// mechanism from one with half its noise (at the policy's δ = 1e-7 they could not).
pub(crate) const DELTA: f64 = 1e-3;
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
/// coordinate, from `draws` samples of each dataset. The thresholds come from a separate
/// pilot sample, so that the events are fixed before the counted samples are drawn.
pub(crate) fn epsilon_lower_bound(mut run: impl FnMut(bool) -> f64, draws: usize) -> f64 {
    let pilot_draws = (draws / 10).max(1000);
    let mut pilot: Vec<f64> = (0..pilot_draws).flat_map(|_| [run(false), run(true)]).collect();
    pilot.sort_by(f64::total_cmp);
    let thresholds: Vec<f64> = (1..40)
        .map(|i| pilot[i * pilot.len() / 40])
        .chain([pilot[pilot.len() - pilot.len() / 1000 - 1]])
        .collect();

    let without: Vec<f64> = (0..draws).map(|_| run(false)).collect();
    let with: Vec<f64> = (0..draws).map(|_| run(true)).collect();
    // Each event (threshold, direction, which dataset is the numerator) takes two one-sided
    // bounds; Bonferroni spreads the 1% error over all of them.
    let bounds = thresholds.len() * 2 * 2 * 2;
    let alpha = (1.0 - CONFIDENCE) / bounds as f64;

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
/// `sensitivity`, calibrated for `rho`. With `noise_factor` 1 the release goes through the
/// very measurement releases use, calibrated once; any other factor rescales its noise, which
/// only a deliberately broken mechanism does.
fn audit_scalar(sensitivity: f64, rho: f64, noise_factor: f64, draws: usize) -> (f64, f64) {
    let measurement = VectorGaussian::calibrate(sensitivity, rho).unwrap();
    let scale = measurement.scale * noise_factor;
    let honest = (noise_factor - 1.0).abs() < f64::EPSILON;
    let base = 1000.0;
    let bound = epsilon_lower_bound(
        |neighbour| {
            let value = if neighbour { base + sensitivity } else { base };
            if honest {
                measurement.release(&[value]).unwrap().values[0]
            } else {
                mechanism::noise_at_scale(value, scale).unwrap()
            }
        },
        draws,
    );
    (bound, epsilon(measurement.cost.rho, DELTA).unwrap())
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

/// How often a community holding one person appears in `draws` partition selections.
fn lone_member_appearances(selection: &PartitionSelection, draws: usize) -> usize {
    let alone: std::collections::HashMap<String, f64> = [("only-member".to_owned(), 1.0)].into();
    (0..draws).filter(|_| selection.release(&alone).unwrap().contains_key("only-member")).count()
}

#[test]
fn partition_selection_reveals_a_lone_member_with_probability_at_most_delta() {
    // Neighbours: without the person, their community is absent; with them, it holds one
    // person. It must then appear with probability at most δ. At the policy's δ no affordable
    // number of draws could see a violation, so the audit calibrates for δ = 1e-2, where
    // 100,000 draws resolve the probability to about ±10%.
    let (rho, delta, draws) = (0.2, 1e-2, 100_000);
    let selection = PartitionSelection::calibrate(1, 1.0, rho, delta).unwrap();
    assert!(selection.cost.delta <= delta);
    let shown = lone_member_appearances(&selection, draws);
    let (lower, _) = clopper_pearson(shown, draws, 1.0 - CONFIDENCE);
    assert!(lower <= delta, "a lone member's community appeared {shown} times in {draws}");
    assert!(shown > 0, "at δ = 1e-2 the community must show now and then");

    // A selection whose threshold was set for five times the δ it claims is caught.
    let broken = PartitionSelection::calibrate(1, 1.0, rho, 5.0 * delta).unwrap();
    let shown = lone_member_appearances(&broken, draws);
    let (lower, _) = clopper_pearson(shown, draws, 1.0 - CONFIDENCE);
    assert!(lower > delta, "a 5x δ went unnoticed: {shown} in {draws}");
}

#[test]
#[ignore = "about a minute: run with `cargo test --release -- --ignored privacy_audit`"]
fn privacy_audit_of_the_mean() {
    // A mean of healthy flags over a community's decisions: one person adds up to k = 32
    // decisions to the count and as many healthy ones to the sum. The audit watches the
    // released mean itself.
    let (draws, rho) = (100_000, 0.4);
    let claimed = epsilon(rho, DELTA).unwrap();
    let bound = epsilon_lower_bound(
        |neighbour| {
            let (sum, count) = if neighbour { (532.0, 1032) } else { (500.0, 1000) };
            mechanism::mean(sum, count, 32.0, 32, rho).unwrap().value
        },
        draws,
    );
    assert!(bound <= claimed, "mean: {bound} > {claimed}");
}
