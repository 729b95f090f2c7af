//! Reproducible randomness: message ids, backoff jitter and hash-table keys all come
//! from a seed the adapter supplies, so the same inputs replay the same run.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::hash::BuildHasher;

/// A seeded random source for ids and jitter.
#[derive(Debug, Clone)]
pub struct Rng {
    inner: ChaCha8Rng,
}

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A random v4 UUID in the canonical lowercase form, like `crypto.randomUUID()`.
    pub fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        self.inner.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0F) | 0x40;
        b[8] = (b[8] & 0x3F) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(36);
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                s.push('-');
            }
            s.push(char::from(HEX[usize::from(byte >> 4)]));
            s.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
        s
    }

    /// A float in `[0, 1)`, like `Math.random()`.
    pub fn unit(&mut self) -> f64 {
        (self.inner.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}

/// Hash-table keys drawn from the seed: deterministic for a given seed, yet unknown
/// to peers choosing ids and kinds, so they cannot aim for collisions. The hash is
/// foldhash's quality variant keyed with that secret (SipHash, used before, cost the
/// hub several percent of its CPU per frame in the replay cache alone).
#[derive(Debug, Clone, Default)]
pub struct SeededState {
    inner: foldhash::quality::FixedState,
}

impl SeededState {
    /// Keys derived from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_5eed_5eed_5eed);
        Self::from_rng(&mut rng)
    }

    /// Keys drawn from `rng`.
    pub fn from_rng(rng: &mut Rng) -> Self {
        Self {
            inner: foldhash::quality::FixedState::with_seed(rng.next_u64()),
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = foldhash::quality::FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.inner.build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_reproducible() {
        let a = Rng::new(7).uuid();
        assert_eq!(a, Rng::new(7).uuid());
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }
}
