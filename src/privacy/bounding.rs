//! Person-level contribution bounding: which of a person's decisions a release may use, and
//! how far a value may reach.
//!
//! A person contributes at most `k_d` decisions per domain and `k` in all to one release
//! period. When a person has more, the ones kept are those with the smallest keyed hash
//! (HMAC-SHA256 under the workspace key of person, date, domain and position among that day's
//! same-domain decisions): not the first in the file, which an exporter could order, and not
//! a random draw, which would change between reruns of the same release. Values are clipped to
//! bounds fixed in the policy, never taken from the data.

use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha2::Sha256;

use crate::workspace::SecretKey;

const LABEL: &[u8] = b"kith/bounding/v1\0";

/// One decision as the bounding step sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution {
    /// Person ID.
    pub person: i64,
    /// Day, days since 1970.
    pub date: i32,
    /// Domain index.
    pub domain: u8,
}

/// The largest L2 norm of one person's per-domain counts under the caps: as many domains as
/// possible filled to `per_domain`, the rest of `total` in one more.
pub fn l2_contribution(total: u32, per_domain: u32, domains: u32) -> f64 {
    let full = (total / per_domain.max(1)).min(domains);
    let rest =
        if full < domains { total.saturating_sub(full * per_domain).min(per_domain) } else { 0 };
    (f64::from(full) * f64::from(per_domain).powi(2) + f64::from(rest).powi(2)).sqrt()
}

/// Clips a value to `[low, high]`.
pub fn clip(value: f64, low: f64, high: f64) -> f64 {
    value.clamp(low, high)
}

/// Marks which contributions to keep: at most `per_domain` per (person, domain) and `total`
/// per person, preferring the smallest keyed hash. `rows` must be sorted by person.
pub fn select(rows: &[Contribution], total: u32, per_domain: u32, key: &SecretKey) -> Vec<bool> {
    let mac = Hmac::<Sha256>::new_from_slice(key.expose()).expect("any key length");
    let mut starts: Vec<usize> =
        (0..rows.len()).filter(|&i| i == 0 || rows[i].person != rows[i - 1].person).collect();
    starts.push(rows.len());

    let kept: Vec<Vec<bool>> = starts
        .par_windows(2)
        .map(|window| keep_person(&rows[window[0]..window[1]], total, per_domain, &mac))
        .collect();
    kept.concat()
}

fn keep_person(
    rows: &[Contribution],
    total: u32,
    per_domain: u32,
    mac: &Hmac<Sha256>,
) -> Vec<bool> {
    let mut per = [0u32; 256];
    for row in rows {
        per[usize::from(row.domain)] += 1;
    }
    if rows.len() <= total as usize && per.iter().all(|&n| n <= per_domain) {
        return vec![true; rows.len()];
    }

    // Position among the same person's same-day, same-domain decisions, so that identical
    // rows still hash apart.
    let mut seen: std::collections::HashMap<(i32, u8), u32> = std::collections::HashMap::new();
    let mut ranked: Vec<(u64, usize)> = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let slot = seen.entry((row.date, row.domain)).or_insert(0);
        let position = *slot;
        *slot += 1;
        let mut hash = mac.clone();
        hash.update(LABEL);
        hash.update(&row.person.to_le_bytes());
        hash.update(&row.date.to_le_bytes());
        hash.update(&[row.domain]);
        hash.update(&position.to_le_bytes());
        let digest = hash.finalize().into_bytes();
        ranked.push((u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")), index));
    }
    ranked.sort_unstable();

    let mut keep = vec![false; rows.len()];
    let mut taken = [0u32; 256];
    let mut count = 0u32;
    for (_, index) in ranked {
        let domain = usize::from(rows[index].domain);
        if count < total && taken[domain] < per_domain {
            keep[index] = true;
            taken[domain] += 1;
            count += 1;
        }
    }
    keep
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "square roots of exact small integers")]
mod tests {
    use super::*;

    #[test]
    fn the_l2_bound_fills_domains_greedily() {
        assert_eq!(l2_contribution(32, 8, 8), 16.0);
        assert_eq!(l2_contribution(10, 8, 8), (64.0f64 + 4.0).sqrt());
        assert_eq!(l2_contribution(100, 8, 2), (2.0f64 * 64.0).sqrt());
        assert_eq!(l2_contribution(5, 8, 8), 5.0);
    }

    #[test]
    fn selection_respects_both_caps_and_is_stable() {
        let key = SecretKey::generate().unwrap();
        let mut rows = Vec::new();
        for person in [7i64, 9] {
            for day in 0..20 {
                for domain in 0..3u8 {
                    rows.push(Contribution { person, date: day, domain });
                }
            }
        }
        let keep = select(&rows, 10, 4, &key);
        for person in [7i64, 9] {
            let kept: Vec<&Contribution> = rows
                .iter()
                .zip(&keep)
                .filter(|(r, k)| **k && r.person == person)
                .map(|(r, _)| r)
                .collect();
            assert_eq!(kept.len(), 10);
            for domain in 0..3u8 {
                assert!(kept.iter().filter(|r| r.domain == domain).count() <= 4);
            }
        }
        assert_eq!(select(&rows, 10, 4, &key), keep, "the same key keeps the same rows");
        let other = SecretKey::generate().unwrap();
        assert_ne!(select(&rows, 10, 4, &other), keep, "a different key keeps other rows");

        let few = [Contribution { person: 1, date: 0, domain: 0 }];
        assert_eq!(select(&few, 10, 4, &key), [true]);
    }
}
