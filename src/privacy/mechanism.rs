//! The noise mechanisms: the only code in kith that makes a released number noisy.
//!
//! Every mechanism is an OpenDP measurement (`make_gaussian` on one number or a vector,
//! `make_gaussian_threshold` for keys not known in advance). kith never samples noise and never
//! types a calibration formula: the noise scale for a target privacy loss is found by binary
//! search (`opendp::utilities::binary_search`) over the measurement's own privacy map, and the
//! cost reported is that map evaluated at the statistic's sensitivity.
//!
//! Accounting is zero-concentrated DP (ρ), which adds up under composition; partition
//! selection also spends a δ. Losses are combined by OpenDP's own composition rule
//! ([`Cost::composed`]), never by hand. Conversion to (ε, δ) for display goes through OpenDP's
//! `make_zCDP_to_approxDP` (see [`epsilon`]).
//!
//! Sensitivities are not computed here: each caller passes the bound its person-level
//! argument gives (see `docs/privacy.md`), and the mechanism charges for exactly that bound.
//! OpenDP measurements are not `Send`, so exact aggregates are computed in parallel elsewhere
//! and noise is added here on one thread.

use std::collections::HashMap;

use opendp::combinators::{CompositionMeasure, make_zCDP_to_approxDP};
use opendp::core::Measurement;
use opendp::domains::{AtomDomain, MapDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_gaussian_threshold};
use opendp::measures::{Approximate, ZeroConcentratedDivergence};
use opendp::metrics::{AbsoluteDistance, L0PInfDistance, L2Distance};
use opendp::utilities::{Above, binary_search};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The privacy loss of one release: ρ in zero-concentrated DP, plus the δ of threshold steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// zCDP ρ.
    pub rho: f64,
    /// Additive δ (partition selection only).
    pub delta: f64,
}

impl Cost {
    /// The loss of running every measurement in `costs` on the same people, by OpenDP's
    /// composition rule for approximate zCDP (ρ and δ each add; OpenDP rounds the sums up).
    pub fn composed(costs: &[Cost]) -> Result<Cost> {
        let parts = costs.iter().map(|cost| (cost.rho, cost.delta)).collect();
        let (rho, delta) = Approximate(ZeroConcentratedDivergence)
            .compose(parts)
            .map_err(opendp_error("composing privacy losses"))?;
        Ok(Cost { rho, delta })
    }

    /// This loss followed by `other` (see [`Cost::composed`]).
    pub fn plus(self, other: Cost) -> Result<Cost> {
        Cost::composed(&[self, other])
    }
}

/// A noisy number with the standard deviation of its noise and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Noisy {
    /// The released value.
    pub value: f64,
    /// Standard deviation of the noise that was added.
    pub std_error: f64,
    /// Privacy loss charged.
    pub cost: Cost,
}

/// A noisy vector: every component has noise of the same standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoisyVector {
    /// The released values.
    pub values: Vec<f64>,
    /// Standard deviation of each component's noise.
    pub std_error: f64,
    /// Privacy loss charged.
    pub cost: Cost,
}

/// A ratio of two noisy numbers, with its delta-method standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoisyMean {
    /// `sum / count`, post-processed from the two releases.
    pub value: f64,
    /// Approximate standard deviation of `value` due to the noise.
    pub std_error: f64,
    /// The noisy sum.
    pub sum: Noisy,
    /// The noisy count.
    pub count: Noisy,
    /// Privacy loss of both.
    pub cost: Cost,
}

type Scalar = Measurement<AtomDomain<f64>, AbsoluteDistance<f64>, ZeroConcentratedDivergence, f64>;
type Vector = Measurement<
    VectorDomain<AtomDomain<f64>>,
    L2Distance<f64>,
    ZeroConcentratedDivergence,
    Vec<f64>,
>;
type Threshold = Measurement<
    MapDomain<AtomDomain<String>, AtomDomain<f64>>,
    L0PInfDistance<2, AbsoluteDistance<f64>>,
    Approximate<ZeroConcentratedDivergence>,
    HashMap<String, f64>,
>;

fn opendp_error(what: &str) -> impl Fn(opendp::error::Error) -> Error + '_ {
    move |error| Error::Privacy { message: format!("{what}: {error}") }
}

fn scalar(scale: f64) -> Result<Scalar> {
    make_gaussian(AtomDomain::<f64>::new_non_nan(), AbsoluteDistance::<f64>::default(), scale, None)
        .map_err(opendp_error("building the Gaussian mechanism"))
}

fn vector(scale: f64) -> Result<Vector> {
    let domain = VectorDomain::new(AtomDomain::<f64>::new_non_nan());
    make_gaussian(domain, L2Distance::<f64>::default(), scale, None)
        .map_err(opendp_error("building the vector Gaussian mechanism"))
}

fn threshold(scale: f64, level: f64) -> Result<Threshold> {
    let domain = MapDomain::new(AtomDomain::<String>::default(), AtomDomain::<f64>::new_non_nan());
    make_gaussian_threshold(domain, L0PInfDistance(AbsoluteDistance::default()), scale, level, None)
        .map_err(opendp_error("building the thresholded Gaussian mechanism"))
}

fn check_target(sensitivity: f64, rho: f64) -> Result<()> {
    if !(sensitivity.is_finite() && sensitivity > 0.0 && rho.is_finite() && rho > 0.0) {
        return Err(Error::Privacy {
            message: format!(
                "a release needs a positive, finite sensitivity and budget (got {sensitivity} \
                 and rho {rho})"
            ),
        });
    }
    Ok(())
}

/// OpenDP's `invoke` trusts its input to lie in the domain, so non-finite aggregates (a bug
/// upstream) are refused here rather than released as noise around NaN.
fn finite(values: &[f64]) -> Result<()> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::internal("a non-finite aggregate reached a noise mechanism"))
    }
}

/// The smallest noise scale whose privacy map charges at most `rho` at `sensitivity`, found
/// by binary search over `map(scale)`.
fn calibrate(sensitivity: f64, rho: f64, map: impl Fn(f64) -> Result<f64>) -> Result<f64> {
    check_target(sensitivity, rho)?;
    let within = |scale: &f64| *scale > 0.0 && map(*scale).is_ok_and(|spent| spent <= rho);
    binary_search(within, Above(0.0)).map_err(opendp_error("calibrating the noise scale"))
}

/// The noise scale of a one-number Gaussian release with this sensitivity and budget.
pub fn scalar_scale(sensitivity: f64, rho: f64) -> Result<f64> {
    calibrate(sensitivity, rho, |scale| {
        scalar(scale)?.map(&sensitivity).map_err(opendp_error("the privacy map"))
    })
}

/// The noise scale of a vector Gaussian release with this L2 sensitivity and budget.
pub fn vector_scale(l2_sensitivity: f64, rho: f64) -> Result<f64> {
    calibrate(l2_sensitivity, rho, |scale| {
        vector(scale)?.map(&l2_sensitivity).map_err(opendp_error("the privacy map"))
    })
}

/// Releases one number whose value one person can move by at most `sensitivity`.
pub fn gaussian(value: f64, sensitivity: f64, rho: f64) -> Result<Noisy> {
    finite(&[value])?;
    let scale = scalar_scale(sensitivity, rho)?;
    let measurement = scalar(scale)?;
    let spent = measurement.map(&sensitivity).map_err(opendp_error("the privacy map"))?;
    let value = measurement.invoke(&value).map_err(opendp_error("adding noise"))?;
    Ok(Noisy { value, std_error: scale, cost: Cost { rho: spent, delta: 0.0 } })
}

/// A vector Gaussian measurement calibrated once for an L2 sensitivity and a budget, then
/// invoked on as many inputs as needed: a release builds one per statistic, and the privacy
/// audit reuses one over many draws.
pub struct VectorGaussian {
    measurement: Vector,
    /// Standard deviation of each component's noise.
    pub scale: f64,
    /// What one invocation costs at the sensitivity it was calibrated for.
    pub cost: Cost,
}

impl VectorGaussian {
    /// Calibrates the noise for `l2_sensitivity` and `rho`.
    pub fn calibrate(l2_sensitivity: f64, rho: f64) -> Result<VectorGaussian> {
        let scale = vector_scale(l2_sensitivity, rho)?;
        let measurement = vector(scale)?;
        let spent = measurement.map(&l2_sensitivity).map_err(opendp_error("the privacy map"))?;
        Ok(VectorGaussian { measurement, scale, cost: Cost { rho: spent, delta: 0.0 } })
    }

    /// One noisy release of `values`.
    pub fn release(&self, values: &[f64]) -> Result<NoisyVector> {
        finite(values)?;
        let values =
            self.measurement.invoke(&values.to_vec()).map_err(opendp_error("adding noise"))?;
        Ok(NoisyVector { values, std_error: self.scale, cost: self.cost })
    }
}

/// Releases a vector whose L2 norm one person can move by at most `l2_sensitivity`.
pub fn gaussian_vector(values: &[f64], l2_sensitivity: f64, rho: f64) -> Result<NoisyVector> {
    VectorGaussian::calibrate(l2_sensitivity, rho)?.release(values)
}

/// Adds Gaussian noise of a given scale, bypassing calibration. Only the privacy audit uses
/// it, to build deliberately broken mechanisms and show that the audit catches them; nothing
/// released goes through it.
pub fn noise_at_scale(value: f64, scale: f64) -> Result<f64> {
    finite(&[value])?;
    scalar(scale)?.invoke(&value).map_err(opendp_error("adding noise"))
}

/// A noisy count of rows when one person contributes at most `per_person` of them.
pub fn noisy_count(count: u64, per_person: u32, rho: f64) -> Result<Noisy> {
    gaussian(count as f64, f64::from(per_person), rho)
}

/// A noisy sum of values already clipped so that one person moves it by at most `bound`.
pub fn bounded_sum(sum: f64, bound: f64, rho: f64) -> Result<Noisy> {
    gaussian(sum, bound, rho)
}

/// A noisy mean: noisy sum over noisy count, each given half of `rho`.
pub fn mean(sum: f64, count: u64, sum_bound: f64, per_person: u32, rho: f64) -> Result<NoisyMean> {
    let sum = bounded_sum(sum, sum_bound, rho / 2.0)?;
    let count = noisy_count(count, per_person, rho / 2.0)?;
    let (value, std_error) = ratio(&sum, &count);
    Ok(NoisyMean { value, std_error, sum, count, cost: sum.cost.plus(count.cost)? })
}

/// `numerator / denominator` of two noisy releases and the delta-method standard deviation of
/// that ratio (post-processing; NaN when the denominator is not positive).
pub fn ratio(numerator: &Noisy, denominator: &Noisy) -> (f64, f64) {
    if denominator.value <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let value = numerator.value / denominator.value;
    let relative = (numerator.std_error.powi(2) + (value * denominator.std_error).powi(2)).sqrt();
    (value, relative / denominator.value)
}

/// A noisy histogram over keys declared in advance (every key is released, empty or not).
pub fn histogram(counts: &[f64], l2_sensitivity: f64, rho: f64) -> Result<NoisyVector> {
    gaussian_vector(counts, l2_sensitivity, rho)
}

/// A noisy vector of sufficient statistics (for regression: `X'X` and `X'y` entries).
pub fn sufficient_statistics(
    statistics: &[f64],
    l2_sensitivity: f64,
    rho: f64,
) -> Result<NoisyVector> {
    gaussian_vector(statistics, l2_sensitivity, rho)
}

/// Thresholded partition selection calibrated once: noisy counts of keys not known in
/// advance, where only keys whose noisy count clears a threshold are released (OpenDP's
/// thresholded Gaussian). One person touches at most `keys_per_person` keys and adds at most
/// `per_key` to each.
pub struct PartitionSelection {
    measurement: Threshold,
    /// Standard deviation of the noise on each released count.
    pub scale: f64,
    /// The threshold a noisy count must clear.
    pub threshold: f64,
    /// What one invocation costs: ρ for the counts and δ for the keys it may reveal.
    pub cost: Cost,
}

impl PartitionSelection {
    /// Calibrates the noise for `rho`, then the threshold for `delta`.
    pub fn calibrate(
        keys_per_person: u32,
        per_key: f64,
        rho: f64,
        delta: f64,
    ) -> Result<PartitionSelection> {
        if !(delta > 0.0 && delta < 1.0) {
            return Err(Error::Privacy {
                message: format!("partition selection needs 0 < δ < 1, got {delta}"),
            });
        }
        let l2 = f64::from(keys_per_person).sqrt() * per_key;
        let d_in = (keys_per_person, l2, per_key);
        let scale = calibrate(l2, rho, |scale| {
            let (spent, _) = threshold(scale, f64::MAX / 4.0)?
                .map(&d_in)
                .map_err(opendp_error("the privacy map"))?;
            Ok(spent)
        })?;
        let within = |level: &f64| {
            threshold(scale, *level)
                .is_ok_and(|m| m.map(&d_in).is_ok_and(|(_, spent)| spent <= delta))
        };
        let level = binary_search(within, Above(per_key))
            .map_err(opendp_error("calibrating the threshold"))?;
        let measurement = threshold(scale, level)?;
        let (spent_rho, spent_delta) =
            measurement.map(&d_in).map_err(opendp_error("the privacy map"))?;
        Ok(PartitionSelection {
            measurement,
            scale,
            threshold: level,
            cost: Cost { rho: spent_rho, delta: spent_delta },
        })
    }

    /// The keys whose noisy count cleared the threshold, with those noisy counts.
    pub fn release<S: std::hash::BuildHasher>(
        &self,
        counts: &HashMap<String, f64, S>,
    ) -> Result<HashMap<String, f64>> {
        let counts: HashMap<String, f64> = counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        finite(&counts.values().copied().collect::<Vec<f64>>())?;
        self.measurement.invoke(&counts).map_err(opendp_error("adding noise"))
    }
}

/// One thresholded partition selection (see [`PartitionSelection`]): the released keys with
/// their noisy counts, the noise scale, and the cost.
pub fn select_partitions<S: std::hash::BuildHasher>(
    counts: &HashMap<String, f64, S>,
    keys_per_person: u32,
    per_key: f64,
    rho: f64,
    delta: f64,
) -> Result<(HashMap<String, f64>, f64, Cost)> {
    let selection = PartitionSelection::calibrate(keys_per_person, per_key, rho, delta)?;
    Ok((selection.release(counts)?, selection.scale, selection.cost))
}

/// The ε of a total zCDP loss `rho` at `delta`, from OpenDP's zCDP to (ε, δ) conversion.
///
/// The conversion depends on ρ alone; it is evaluated on the privacy profile of a unit-scale
/// Gaussian measurement at the input distance whose map is exactly that ρ.
pub fn epsilon(rho: f64, delta: f64) -> Result<f64> {
    if rho <= 0.0 {
        return Ok(0.0);
    }
    let profile = make_zCDP_to_approxDP(scalar(1.0)?)
        .map_err(opendp_error("converting zCDP to (ε, δ)"))?
        .map(&(2.0 * rho).sqrt())
        .map_err(opendp_error("converting zCDP to (ε, δ)"))?;
    profile.epsilon(delta).map_err(opendp_error("converting zCDP to (ε, δ)"))
}

/// The largest ρ whose (ε, δ) conversion stays within `epsilon` at `delta`: how a budget
/// stated in ε becomes a zCDP budget.
pub fn rho_for_epsilon(epsilon_cap: f64, delta: f64) -> Result<f64> {
    if !(epsilon_cap.is_finite() && epsilon_cap > 0.0) {
        return Err(Error::Privacy {
            message: format!("an ε budget must be positive, got {epsilon_cap}"),
        });
    }
    let within = |rho: &f64| epsilon(*rho, delta).is_ok_and(|spent| spent <= epsilon_cap);
    let rho = binary_search(|rho: &f64| !within(rho), Above(0.0))
        .map_err(opendp_error("converting an ε budget to ρ"))?;
    // `rho` is the smallest failing value; step back to the largest passing one.
    Ok(rho * (1.0 - 1e-9))
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "the cost must equal the privacy map exactly")]
mod tests {
    use super::*;

    /// Sample variance of `draws` releases of `value` through `release`.
    fn variance(draws: usize, mut release: impl FnMut() -> f64, value: f64) -> f64 {
        let sum_sq: f64 = (0..draws).map(|_| (release() - value).powi(2)).sum();
        sum_sq / draws as f64
    }

    #[test]
    fn the_cost_reported_is_the_privacy_map_and_meets_the_target() {
        for (sensitivity, rho) in [(1.0, 0.05), (32.0, 0.5), (16.0, 0.01), (0.5, 2.0)] {
            let noisy = gaussian(100.0, sensitivity, rho).unwrap();
            let map = scalar(noisy.std_error).unwrap().map(&sensitivity).unwrap();
            assert_eq!(noisy.cost.rho, map);
            assert!(noisy.cost.rho <= rho && noisy.cost.rho > rho * 0.999_999, "{noisy:?}");

            let noisy = gaussian_vector(&[1.0; 5], sensitivity, rho).unwrap();
            let map = vector(noisy.std_error).unwrap().map(&sensitivity).unwrap();
            assert_eq!(noisy.cost.rho, map);
            assert!(noisy.cost.rho <= rho && noisy.cost.rho > rho * 0.999_999);
        }
    }

    #[test]
    fn more_sensitivity_or_less_budget_means_more_noise() {
        let base = scalar_scale(1.0, 0.1).unwrap();
        assert!(scalar_scale(2.0, 0.1).unwrap() > base);
        assert!(scalar_scale(1.0, 0.05).unwrap() > base);
        assert!(gaussian(1.0, 0.0, 0.1).is_err());
        assert!(gaussian(1.0, 1.0, 0.0).is_err());
        assert!(gaussian(f64::NAN, 1.0, 0.1).is_err(), "NaN is outside the domain");
        assert!(gaussian_vector(&[1.0, f64::INFINITY], 1.0, 0.1).is_err());
    }

    #[test]
    fn empirical_noise_matches_the_calibrated_scale() {
        let (sensitivity, rho) = (8.0, 0.2);
        let scale = scalar_scale(sensitivity, rho).unwrap();
        let measurement = scalar(scale).unwrap();
        let observed = variance(20_000, || measurement.invoke(&50.0).unwrap(), 50.0);
        let ratio = observed / scale.powi(2);
        assert!((ratio - 1.0).abs() < 0.05, "variance ratio {ratio}");

        let scale = vector_scale(sensitivity, rho).unwrap();
        let measurement = vector(scale).unwrap();
        let draws: Vec<f64> =
            (0..5_000).flat_map(|_| measurement.invoke(&vec![0.0; 4]).unwrap()).collect();
        let observed = draws.iter().map(|x| x * x).sum::<f64>() / draws.len() as f64;
        let ratio = observed / scale.powi(2);
        assert!((ratio - 1.0).abs() < 0.05, "vector variance ratio {ratio}");
    }

    #[test]
    fn a_mean_propagates_both_noises() {
        let mean = mean(500.0, 1000, 1.0, 1, 0.5).unwrap();
        assert!((mean.value - 0.5).abs() < 0.2);
        assert!(mean.std_error > 0.0 && mean.std_error < 0.1);
        assert_eq!(mean.cost.rho, mean.sum.cost.rho + mean.count.cost.rho);
        let (value, error) = ratio(&mean.sum, &Noisy { value: -1.0, ..mean.count });
        assert!(value.is_nan() && error.is_nan());
    }

    #[test]
    fn partition_selection_keeps_large_keys_and_meets_delta() {
        let counts: HashMap<String, f64> =
            [("big".to_owned(), 10_000.0), ("tiny".to_owned(), 1.0)].into();
        let (released, scale, cost) = select_partitions(&counts, 1, 1.0, 0.5, 1e-7).unwrap();
        assert!(released.contains_key("big"));
        assert!(!released.contains_key("tiny"));
        assert!(cost.rho <= 0.5 && cost.delta <= 1e-7 && cost.delta > 0.0);
        assert!(scale > 0.0);
    }

    #[test]
    fn calibrated_measurements_charge_their_map_on_every_invocation() {
        let (l2, rho) = (16.0, 0.08);
        let vector_noise = VectorGaussian::calibrate(l2, rho).unwrap();
        assert_eq!(vector_noise.cost.rho, vector(vector_noise.scale).unwrap().map(&l2).unwrap());
        let first = vector_noise.release(&[10.0; 3]).unwrap();
        let second = vector_noise.release(&[10.0; 3]).unwrap();
        assert_eq!(first.cost, second.cost);
        assert_ne!(first.values, second.values, "each invocation draws fresh noise");

        let selection = PartitionSelection::calibrate(1, 1.0, 0.04, 1e-8).unwrap();
        let map = threshold(selection.scale, selection.threshold).unwrap().map(&(1, 1.0, 1.0));
        let (map_rho, map_delta) = map.unwrap();
        assert_eq!((selection.cost.rho, selection.cost.delta), (map_rho, map_delta));
        assert!(selection.cost.rho <= 0.04 && selection.cost.delta <= 1e-8);
        // A lone person's key must clear a threshold more than 5 noise deviations above 1 to
        // appear with probability 1e-8.
        assert!(selection.threshold > 1.0 + 5.0 * selection.scale, "{}", selection.threshold);
    }

    #[test]
    fn epsilon_conversion_is_monotone_and_invertible() {
        let delta = 1e-7;
        let small = epsilon(0.01, delta).unwrap();
        let large = epsilon(0.5, delta).unwrap();
        assert!(small > 0.0 && small < large);
        // The classic bound ρ + 2·sqrt(ρ·ln(1/δ)) is an upper bound on the tight conversion.
        assert!(large <= 0.5 + 2.0 * (0.5 * (1.0 / delta).ln()).sqrt());
        let rho = rho_for_epsilon(2.0, delta).unwrap();
        let back = epsilon(rho, delta).unwrap();
        assert!(back <= 2.0 && back > 1.99, "{rho} -> {back}");
        assert_eq!(epsilon(0.0, delta).unwrap(), 0.0);
    }
}
