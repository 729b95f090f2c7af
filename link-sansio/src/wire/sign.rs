//! HMAC signing and constant-time verification of canonical envelopes.
//!
//! A [`Key`] holds the HMAC state already keyed, so signing a message clones a small
//! state instead of re-hashing the secret every time.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;

/// The hash under the HMAC. Both ends must agree; there is no negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HashAlgo {
    /// SHA-256 (the reference's default): 64 hex characters.
    #[default]
    Sha256,
    /// SHA-384: 96 hex characters.
    Sha384,
    /// SHA-512: 128 hex characters.
    Sha512,
}

impl HashAlgo {
    /// The name Node.js uses for the hash (`sha256`, …).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha384 => "sha384",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// Length of a signature in hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgo::Sha256 => 64,
            HashAlgo::Sha384 => 96,
            HashAlgo::Sha512 => 128,
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A hash name that link does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported hash algorithm {0:?} (expected sha256, sha384 or sha512)")]
pub struct UnknownHashAlgo(pub String);

impl FromStr for HashAlgo {
    type Err = UnknownHashAlgo;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sha256" => Ok(HashAlgo::Sha256),
            "sha384" => Ok(HashAlgo::Sha384),
            "sha512" => Ok(HashAlgo::Sha512),
            _ => Err(UnknownHashAlgo(s.to_owned())),
        }
    }
}

#[derive(Clone)]
enum Keyed {
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

/// A secret ready to sign and verify, for one hash algorithm.
#[derive(Clone)]
pub struct Key {
    keyed: Keyed,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("algo", &self.algo())
            .finish_non_exhaustive()
    }
}

/// Largest digest produced by any supported algorithm, in bytes.
pub const MAX_DIGEST: usize = 64;

impl Key {
    /// Keys `secret` (its UTF-8 bytes, as the reference does) for `algo`.
    pub fn new(secret: &str, algo: HashAlgo) -> Self {
        Self::from_bytes(secret.as_bytes(), algo)
    }

    /// Keys raw secret bytes for `algo`.
    pub fn from_bytes(secret: &[u8], algo: HashAlgo) -> Self {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let keyed = match algo {
            HashAlgo::Sha256 => Keyed::Sha256(
                <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length"),
            ),
            HashAlgo::Sha384 => Keyed::Sha384(
                <Hmac<Sha384> as Mac>::new_from_slice(secret).expect("HMAC takes any key length"),
            ),
            HashAlgo::Sha512 => Keyed::Sha512(
                <Hmac<Sha512> as Mac>::new_from_slice(secret).expect("HMAC takes any key length"),
            ),
        };
        Self { keyed }
    }

    /// The hash algorithm.
    pub fn algo(&self) -> HashAlgo {
        match self.keyed {
            Keyed::Sha256(_) => HashAlgo::Sha256,
            Keyed::Sha384(_) => HashAlgo::Sha384,
            Keyed::Sha512(_) => HashAlgo::Sha512,
        }
    }

    /// Computes the MAC of `msg` into `out`, returning the digest length.
    fn mac(&self, msg: &[u8], out: &mut [u8; MAX_DIGEST]) -> usize {
        self.mac_parts(&[msg], out)
    }

    /// Computes the MAC of the concatenation of `parts` into `out`, returning the
    /// digest length.
    fn mac_parts(&self, parts: &[&[u8]], out: &mut [u8; MAX_DIGEST]) -> usize {
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]], out: &mut [u8]) -> usize {
            let mut m = m.clone();
            for part in parts {
                m.update(part);
            }
            let tag = m.finalize().into_bytes();
            out[..tag.len()].copy_from_slice(&tag);
            tag.len()
        }
        match &self.keyed {
            Keyed::Sha256(m) => run(m, parts, out),
            Keyed::Sha384(m) => run(m, parts, out),
            Keyed::Sha512(m) => run(m, parts, out),
        }
    }

    /// Appends the lowercase hex signature of `msg` to `out`.
    pub fn sign_hex_into(&self, msg: &[u8], out: &mut Vec<u8>) {
        let (hex, n) = self.sign_hex_array(msg);
        out.extend_from_slice(&hex[..n]);
    }

    /// The lowercase hex signature of `msg` in a stack buffer, with its length (no
    /// allocation on the signing hot path).
    pub fn sign_hex_array(&self, msg: &[u8]) -> ([u8; MAX_DIGEST * 2], usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut tag = [0u8; MAX_DIGEST];
        let n = self.mac(msg, &mut tag);
        let mut hex = [0u8; MAX_DIGEST * 2];
        for (i, b) in tag[..n].iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 0xF)];
        }
        (hex, n * 2)
    }

    /// The lowercase hex signature of `msg`.
    pub fn sign_hex(&self, msg: &[u8]) -> String {
        let mut out = Vec::with_capacity(MAX_DIGEST * 2);
        self.sign_hex_into(msg, &mut out);
        // Hex digits are ASCII.
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Checks `sig_hex` against the MAC of `msg` in constant time. Accepts exactly the
    /// digest's length in hex, in either case, and nothing else.
    pub fn verify_hex(&self, msg: &[u8], sig_hex: &[u8]) -> bool {
        self.verify_hex_parts(&[msg], sig_hex)
    }

    /// [`Key::verify_hex`] for a message given as the concatenation of `parts`.
    pub fn verify_hex_parts(&self, parts: &[&[u8]], sig_hex: &[u8]) -> bool {
        let algo = self.algo();
        if sig_hex.len() != algo.hex_len() {
            return false;
        }
        // Decoded by table, without a branch per digit: signature digits are random,
        // so "digit or letter?" branches would mispredict about every third time.
        let mut given = [0u8; MAX_DIGEST];
        let mut invalid = 0u8;
        for (i, pair) in sig_hex.chunks_exact(2).enumerate() {
            let (hi, lo) = (
                HEX_VALUE[usize::from(pair[0])],
                HEX_VALUE[usize::from(pair[1])],
            );
            invalid |= (hi | lo) & NOT_HEX;
            given[i] = (hi << 4) | (lo & 0x0F);
        }
        if invalid != 0 {
            return false;
        }
        let mut tag = [0u8; MAX_DIGEST];
        let n = self.mac_parts(parts, &mut tag);
        tag[..n].ct_eq(&given[..n]).into()
    }
}

/// Each byte's value as a hex digit (either case), or [`NOT_HEX`] if it is not one.
static HEX_VALUE: [u8; 256] = hex_digit_values(true);

/// Marks a byte that is not a hex digit in [`hex_digit_values`]'s tables.
pub(crate) const NOT_HEX: u8 = 0x80;

/// A table of each byte's value as a hex digit, [`NOT_HEX`] for every other byte;
/// `uppercase` says whether `A`–`F` count as digits.
pub(crate) const fn hex_digit_values(uppercase: bool) -> [u8; 256] {
    let mut t = [NOT_HEX; 256];
    let mut c = 0;
    while c < 10 {
        t[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        t[b'a' as usize + c] = 10 + c as u8;
        if uppercase {
            t[b'A' as usize + c] = 10 + c as u8;
        }
        c += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_is_strict_about_length_and_digits() {
        let key = Key::new("k", HashAlgo::Sha256);
        let sig = key.sign_hex(b"msg");
        assert!(key.verify_hex(b"msg", sig.as_bytes()));
        assert!(key.verify_hex(b"msg", sig.to_uppercase().as_bytes()));
        assert!(!key.verify_hex(b"msg", format!("{sig}a").as_bytes()));
        assert!(!key.verify_hex(b"msg", &sig.as_bytes()[..62]));
        assert!(!key.verify_hex(b"msh", sig.as_bytes()));
        let mut bad = sig.into_bytes();
        bad[0] = b'g';
        assert!(!key.verify_hex(b"msg", &bad));
    }

    #[test]
    fn algo_names_parse() {
        assert_eq!("SHA512".parse::<HashAlgo>(), Ok(HashAlgo::Sha512));
        assert!("md5".parse::<HashAlgo>().is_err());
    }
}
