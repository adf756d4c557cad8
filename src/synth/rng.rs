//! Deterministic randomness for the generator.
//!
//! Every random stream is derived from the user's seed, a stream label and a block number, so
//! the output does not depend on how rayon schedules the blocks: the same seed gives the same
//! bytes on one core or sixteen. `ChaCha8` is used because its output is specified and stable
//! across `rand` releases, unlike `SmallRng`. Single coin flips that must agree between passes
//! (does this tie get reciprocated?) use a keyed mix of the pair instead of a stream.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// People per block of generation work: large enough to amortise rayon's scheduling, small
/// enough to keep both cores busy on the 2,000-person sample.
pub(crate) const BLOCK: usize = 4096;

/// Labels of the independent random streams.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Structure = 1,
    Person = 2,
    Ties = 3,
    Closure = 4,
    Consent = 5,
    Decisions = 6,
    Dirty = 7,
}

/// The `SplitMix64` finaliser: a bijective, well-mixed 64-bit hash.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A hash of the seed, a stream and up to two keys.
pub(crate) fn keyed(seed: u64, stream: Stream, a: u64, b: u64) -> u64 {
    mix(mix(mix(seed ^ ((stream as u64) << 56)) ^ a) ^ b.rotate_left(29))
}

/// A uniform number in [0, 1) from a hash.
pub(crate) fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// The random stream for one block of one pass.
pub(crate) fn block_rng(seed: u64, stream: Stream, pass: u64, block: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(keyed(seed, stream, pass, block as u64))
}

/// A bijection of `[0, modulus)`: `index * multiplier + offset (mod modulus)`. Used to hand out
/// unique identifiers and identity pairs without a lookup table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scramble {
    modulus: u64,
    multiplier: u64,
    offset: u64,
}

impl Scramble {
    /// `multiplier` must be coprime with `modulus`; a prime larger than `modulus` always is.
    pub(crate) fn new(modulus: u64, multiplier: u64, seed: u64) -> Scramble {
        debug_assert!(gcd(multiplier % modulus, modulus) == 1);
        Scramble { modulus, multiplier: multiplier % modulus, offset: mix(seed) % modulus }
    }

    pub(crate) fn apply(&self, index: u64) -> u64 {
        let product = u128::from(index) * u128::from(self.multiplier) + u128::from(self.offset);
        (product % u128::from(self.modulus)) as u64
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scramble_is_a_bijection() {
        let scramble = Scramble::new(10_000, 2_654_435_761, 7);
        let mut seen = vec![false; 10_000];
        for i in 0..10_000 {
            let v = scramble.apply(i) as usize;
            assert!(!seen[v]);
            seen[v] = true;
        }
    }

    #[test]
    fn unit_stays_in_range() {
        for i in 0..1000 {
            let u = unit(keyed(1, Stream::Dirty, i, 0));
            assert!((0.0..1.0).contains(&u));
        }
    }
}
