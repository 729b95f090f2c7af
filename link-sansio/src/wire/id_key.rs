//! Envelope ids as hash-table keys: the replay cache remembers them, and a client
//! matches responses and cancels to its calls by them.

use super::json::JsString;
use super::sign::{NOT_HEX, hex_digit_values};

/// An envelope id as a table holds it: a lowercase UUID (what every link and
/// reference peer sends) packed into 128 bits, anything else as its bytes. Both forms
/// are exact, so two ids share a key only if they are equal. 24 bytes, with no
/// allocation for a UUID, and hashed as two words rather than 36 bytes of text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum IdKey {
    Uuid([u64; 2]),
    Other(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<IdKey>() == 24);

impl IdKey {
    /// The key of `id`.
    pub(crate) fn of(id: &JsString) -> IdKey {
        match pack_uuid(id.as_wtf8()) {
            Some(n) => IdKey::Uuid(n),
            None => IdKey::Other(id.as_wtf8().into()),
        }
    }
}

/// Hex digit values, and [`NOT_HEX`] for every byte that is not a lowercase hex digit.
const HEX_VALUES: [u8; 256] = hex_digit_values(false);

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex as two 64-bit halves;
/// `None` for any other text (uppercase included, since ids compare case-sensitively).
fn pack_uuid(text: &[u8]) -> Option<[u64; 2]> {
    let text: &[u8; 36] = text.try_into().ok()?;
    if [text[8], text[13], text[18], text[23]] != [b'-'; 4] {
        return None;
    }
    // 16 digits a half; every digit is read, and a non-digit anywhere spoils the lot.
    let mut bad = 0u8;
    let mut half = |groups: &[&[u8]]| {
        let mut n = 0u64;
        for &digit in groups.iter().flat_map(|g| g.iter()) {
            let v = HEX_VALUES[usize::from(digit)];
            bad |= v;
            n = (n << 4) | u64::from(v & 0xF);
        }
        n
    };
    let high = half(&[&text[0..8], &text[9..13], &text[14..18]]);
    let low = half(&[&text[19..23], &text[24..36]]);
    (bad & NOT_HEX == 0).then_some([high, low])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed form is the UUID's 128-bit number, and only lowercase canonical
    /// UUIDs pack: one wrong byte anywhere leaves the id as text.
    #[test]
    fn uuids_pack_exactly() {
        let uuid = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff";
        let number = u128::from_str_radix(&uuid.replace('-', ""), 16).expect("hex");
        let packed = pack_uuid(uuid.as_bytes()).expect("a uuid");
        assert_eq!(
            (u128::from(packed[0]) << 64) | u128::from(packed[1]),
            number
        );
        for i in 0..uuid.len() {
            for bad in [b'A', b'g', b'-', b'0', b'/', b':', b'`', 0xC3] {
                let mut text = uuid.as_bytes().to_vec();
                if text[i] == bad {
                    continue;
                }
                text[i] = bad;
                let dash = matches!(i, 8 | 13 | 18 | 23);
                let still_uuid = !dash && bad == b'0';
                assert_eq!(pack_uuid(&text).is_some(), still_uuid, "{i} {bad}");
            }
        }
        assert_eq!(pack_uuid(&uuid.as_bytes()[1..]), None);
        assert_eq!(pack_uuid(format!("{uuid}0").as_bytes()), None);
    }

    /// Two ids share a key exactly when they are equal, whichever form each takes.
    #[test]
    fn keys_are_equal_exactly_when_ids_are() {
        let uuid = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff";
        let ids = [uuid, &uuid.to_uppercase(), &uuid[1..], "x", "", "\u{e9}"];
        for a in ids {
            for b in ids {
                let (ka, kb) = (IdKey::of(&a.into()), IdKey::of(&b.into()));
                assert_eq!(ka == kb, a == b, "{a:?} {b:?}");
            }
        }
        assert!(matches!(IdKey::of(&uuid.into()), IdKey::Uuid(_)));
        assert!(matches!(IdKey::of(&"x".into()), IdKey::Other(_)));
    }
}
