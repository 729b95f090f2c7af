//! Reproducible randomness: message ids, backoff jitter and hash-table keys all come
//! from a seed the adapter supplies, so the same inputs replay the same run.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::hash::{BuildHasher, Hasher};

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

/// Hash-table keys for ids this process counts out itself (1, 2, 3, …), never for
/// anything a peer chooses: consecutive ids land in consecutive buckets.
///
/// Thousands of calls may be in flight, and their entries are touched in about the
/// order they were made. A seeded hash scatters them, so each lookup is a cache miss
/// once the tables outgrow the CPU's caches; kept in order, neighbouring calls share
/// cache lines. The top seven bits, which the table compares before the key, are
/// mixed from the id so that neighbours still differ there.
#[derive(Debug, Clone, Copy, Default)]
pub struct CounterState;

impl BuildHasher for CounterState {
    type Hasher = CounterHasher;

    fn build_hasher(&self) -> Self::Hasher {
        CounterHasher(0)
    }
}

/// The hasher of [`CounterState`]: the id itself in the low bits, a mix of it in the
/// top seven.
#[derive(Debug, Clone, Copy)]
pub struct CounterHasher(u64);

impl Hasher for CounterHasher {
    fn finish(&self) -> u64 {
        const LOW: u64 = (1 << 57) - 1;
        let tag = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) & !LOW;
        (self.0 & LOW) | tag
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached by the `u64` ids it is meant for; any other key still hashes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id;
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

    /// Consecutive ids hash to consecutive buckets, and the tags a table compares
    /// first tell neighbours apart.
    #[test]
    fn counted_ids_stay_in_order_with_distinct_tags() {
        let hash = |id: u64| CounterState.hash_one(id);
        let mask = (1u64 << 15) - 1;
        for base in [0, 1, 40_000, u64::from(u32::MAX)] {
            let tags: std::collections::HashSet<u64> =
                (base..base + 16).map(|id| hash(id) >> 57).collect();
            assert!(tags.len() >= 12, "{base}: {} tags", tags.len());
            for id in base..base + 64 {
                assert_eq!(hash(id) & mask, id & mask);
            }
        }
        let mut map = std::collections::HashMap::with_hasher(CounterState);
        for id in 0..10_000u64 {
            map.insert(id, id * 2);
        }
        assert!((0..10_000u64).all(|id| map.get(&id) == Some(&(id * 2))));
    }
}
