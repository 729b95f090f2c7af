//! HMAC signing and constant-time verification of canonical envelopes.
//!
//! A [`Key`] holds the HMAC state already keyed, so signing a message clones a small
//! state instead of re-hashing the secret every time.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
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

impl Keyed {
    /// This state fed `bytes`.
    fn updated(&self, bytes: &[u8]) -> Keyed {
        let mut next = self.clone();
        match &mut next {
            Keyed::Sha256(m) => m.update(bytes),
            Keyed::Sha384(m) => m.update(bytes),
            Keyed::Sha512(m) => m.update(bytes),
        }
        next
    }

    /// Computes the MAC of everything fed so far followed by the concatenation of
    /// `parts` into `out`, returning the digest length.
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
        match self {
            Keyed::Sha256(m) => run(m, parts, out),
            Keyed::Sha384(m) => run(m, parts, out),
            Keyed::Sha512(m) => run(m, parts, out),
        }
    }

    /// The lowercase hex MAC of everything fed so far followed by `msg`, in a stack
    /// buffer, with its length.
    fn sign_hex_array(&self, msg: &[u8]) -> ([u8; MAX_DIGEST * 2], usize) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut tag = [0u8; MAX_DIGEST];
        let n = self.mac_parts(&[msg], &mut tag);
        let mut hex = [0u8; MAX_DIGEST * 2];
        for (i, b) in tag[..n].iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 0xF)];
        }
        (hex, n * 2)
    }
}

/// A secret ready to sign and verify, for one hash algorithm. Clones share the keyed
/// state, and a partial MAC (of a fan-out's shared head) knows by that sharing which
/// key it came from.
#[derive(Clone)]
pub struct Key {
    keyed: Arc<Keyed>,
}

/// A key's MAC part-way through: its state after bytes that several messages begin
/// with (the head a fan-out's envelopes share), so each message is finished by
/// hashing only its own remaining bytes.
#[derive(Clone)]
pub(crate) struct PartialMac {
    key: Arc<Keyed>,
    state: Keyed,
}

impl PartialMac {
    /// Whether this was started with `key` (or a clone of it).
    pub(crate) fn is_from(&self, key: &Key) -> bool {
        Arc::ptr_eq(&self.key, &key.keyed)
    }

    /// The lowercase hex signature of the started bytes followed by `rest`, as
    /// [`Key::sign_hex_array`] gives for the whole message.
    pub(crate) fn sign_hex_array(&self, rest: &[u8]) -> ([u8; MAX_DIGEST * 2], usize) {
        self.state.sign_hex_array(rest)
    }
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
        Self {
            keyed: Arc::new(keyed),
        }
    }

    /// The hash algorithm.
    pub fn algo(&self) -> HashAlgo {
        match *self.keyed {
            Keyed::Sha256(_) => HashAlgo::Sha256,
            Keyed::Sha384(_) => HashAlgo::Sha384,
            Keyed::Sha512(_) => HashAlgo::Sha512,
        }
    }

    /// Computes the MAC of the concatenation of `parts` into `out`, returning the
    /// digest length.
    fn mac_parts(&self, parts: &[&[u8]], out: &mut [u8; MAX_DIGEST]) -> usize {
        self.keyed.mac_parts(parts, out)
    }

    /// Starts a MAC with `head`, for messages that all begin with it.
    pub(crate) fn partial(&self, head: &[u8]) -> PartialMac {
        PartialMac {
            key: Arc::clone(&self.keyed),
            state: self.keyed.updated(head),
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
        self.keyed.sign_hex_array(msg)
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
static HEX_VALUE: [u8; 256] = hex_digit_values();

/// Marks a byte that is not a hex digit in [`HEX_VALUE`].
const NOT_HEX: u8 = 0x80;

/// [`HEX_VALUE`]'s table.
const fn hex_digit_values() -> [u8; 256] {
    let mut t = [NOT_HEX; 256];
    let mut c = 0;
    while c < 10 {
        t[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        t[b'a' as usize + c] = 10 + c as u8;
        t[b'A' as usize + c] = 10 + c as u8;
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

    /// A MAC started on a head and finished on the rest signs exactly as the key
    /// signs the whole, for every algorithm and wherever the split falls.
    #[test]
    fn partial_macs_sign_like_the_whole() {
        let msg: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
        for algo in [HashAlgo::Sha256, HashAlgo::Sha384, HashAlgo::Sha512] {
            let key = Key::new("k", algo);
            for split in [0, 1, 63, 64, 65, 127, 128, 129, 200, 300] {
                let partial = key.partial(&msg[..split]);
                assert_eq!(
                    partial.sign_hex_array(&msg[split..]),
                    key.sign_hex_array(&msg),
                    "{algo} split at {split}"
                );
            }
        }
    }

    #[test]
    fn partial_macs_know_their_key() {
        let key = Key::new("k", HashAlgo::Sha256);
        let partial = key.partial(b"head");
        assert!(partial.is_from(&key));
        assert!(partial.is_from(&key.clone()));
        // Same secret, separately keyed: not known to be the same.
        assert!(!partial.is_from(&Key::new("k", HashAlgo::Sha256)));
        assert!(!partial.is_from(&Key::new("other", HashAlgo::Sha256)));
    }

    #[test]
    fn algo_names_parse() {
        assert_eq!("SHA512".parse::<HashAlgo>(), Ok(HashAlgo::Sha512));
        assert!("md5".parse::<HashAlgo>().is_err());
    }
}
