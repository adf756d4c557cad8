//! Agreement between two partitions of the same people: normalized mutual information and the
//! adjusted Rand index, for recovery tests and for choosing Leiden's default resolution.
//!
//! Written here (a contingency table and two textbook formulas) because no maintained crate
//! offers both without pulling in a machine-learning stack.

use std::collections::HashMap;

/// Joint counts of label pairs, and each side's label counts.
type Tables = (HashMap<(u32, u32), f64>, HashMap<u32, f64>, HashMap<u32, f64>);

fn contingency(a: &[u32], b: &[u32]) -> Tables {
    let mut joint = HashMap::new();
    let mut left = HashMap::new();
    let mut right = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_insert(0.0) += 1.0;
        *left.entry(x).or_insert(0.0) += 1.0;
        *right.entry(y).or_insert(0.0) += 1.0;
    }
    (joint, left, right)
}

/// Normalized mutual information (arithmetic-mean normalization, as scikit-learn's default).
pub fn nmi(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len() as f64;
    let (joint, left, right) = contingency(a, b);
    let entropy = |counts: &HashMap<u32, f64>| -> f64 {
        counts.values().map(|&c| -(c / n) * (c / n).ln()).sum()
    };
    let mutual: f64 =
        joint.iter().map(|(&(x, y), &c)| (c / n) * ((c * n) / (left[&x] * right[&y])).ln()).sum();
    let (ha, hb) = (entropy(&left), entropy(&right));
    if ha + hb == 0.0 { 1.0 } else { 2.0 * mutual / (ha + hb) }
}

/// Adjusted Rand index (Hubert and Arabie).
pub fn ari(a: &[u32], b: &[u32]) -> f64 {
    let pairs = |c: f64| c * (c - 1.0) / 2.0;
    let (joint, left, right) = contingency(a, b);
    let index: f64 = joint.values().map(|&c| pairs(c)).sum();
    let sum_a: f64 = left.values().map(|&c| pairs(c)).sum();
    let sum_b: f64 = right.values().map(|&c| pairs(c)).sum();
    let expected = sum_a * sum_b / pairs(a.len() as f64);
    let max = f64::midpoint(sum_a, sum_b);
    if (max - expected).abs() < f64::EPSILON { 1.0 } else { (index - expected) / (max - expected) }
}
