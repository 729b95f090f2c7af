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
        let mut text = [0u8; 36];
        write_uuid(b, &mut text);
        // Hex digits and dashes: always ASCII, so never the empty fallback.
        String::from(std::str::from_utf8(&text).unwrap_or_default())
    }

    /// [`Rng::uuid`] written into `out` without allocating (from other random bytes:
    /// two [`Rng::next_u64`] draws).
    pub fn uuid_into(&mut self, out: &mut [u8; 36]) {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        write_uuid(b, out);
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

/// Writes `random` as a v4 UUID: version and variant bits set, lowercase hex, dashes
/// after the 4th, 6th, 8th and 10th bytes.
fn write_uuid(mut random: [u8; 16], out: &mut [u8; 36]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    random[6] = (random[6] & 0x0F) | 0x40;
    random[8] = (random[8] & 0x3F) | 0x80;
    let mut i = 0;
    for (n, byte) in random.iter().enumerate() {
        if matches!(n, 4 | 6 | 8 | 10) {
            out[i] = b'-';
            i += 1;
        }
        out[i] = HEX[usize::from(byte >> 4)];
        out[i + 1] = HEX[usize::from(byte & 0xF)];
        i += 2;
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
        let mut buf = [0u8; 36];
        Rng::new(7).uuid_into(&mut buf);
        let b = std::str::from_utf8(&buf).expect("ascii");
        assert_eq!(b.len(), 36);
        assert_eq!(&b[14..15], "4");
        assert_eq!([8, 13, 18, 23].map(|i| &b[i..=i]), ["-"; 4]);
    }

    /// The digits are the random bytes in order, high nibble first.
    #[test]
    fn uuids_spell_their_bytes() {
        let mut out = [0u8; 36];
        write_uuid(
            [
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
                0x32, 0x10,
            ],
            &mut out,
        );
        assert_eq!(&out, b"01234567-89ab-4def-bedc-ba9876543210");
    }
}
