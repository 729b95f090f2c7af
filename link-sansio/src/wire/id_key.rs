//! Envelope ids as hash-table keys: the replay cache remembers them, and a client
//! matches responses and cancels to its calls by them.

use super::json::JsString;

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

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex as two 64-bit halves;
/// `None` for any other text (uppercase included, since ids compare case-sensitively).
fn pack_uuid(text: &[u8]) -> Option<[u64; 2]> {
    let text: &[u8; 36] = text.try_into().ok()?;
    if [text[8], text[13], text[18], text[23]] != [b'-'; 4] {
        return None;
    }
    let eight = |at: usize| -> Option<u64> {
        let chunk: [u8; 8] = text.get(at..at + 8)?.try_into().ok()?;
        hex8(chunk)
    };
    let mut second = [0u8; 8];
    second[..4].copy_from_slice(&text[9..13]);
    second[4..].copy_from_slice(&text[14..18]);
    let mut third = [0u8; 8];
    third[..4].copy_from_slice(&text[19..23]);
    third[4..].copy_from_slice(&text[24..28]);
    let high = (eight(0)? << 32) | hex8(second)?;
    let low = (hex8(third)? << 32) | eight(28)?;
    Some([high, low])
}

/// The value of eight lowercase hex digits, the first the most significant; `None` if
/// any byte is not one. All eight are judged and converted at once, a byte per lane
/// of a 64-bit word: an id is packed several times on its way through a client, and
/// this is about a fifth of the work of a digit at a time.
fn hex8(digits: [u8; 8]) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOP: u64 = ONES * 0x80;
    let x = u64::from_be_bytes(digits);
    if x & TOP != 0 {
        return None;
    }
    // Every byte is below 0x80, so adding less than 0x80 to each cannot carry into
    // the next: a lane's top bit then tells how the byte compares.
    let at_least = |lo: u8| (x + ONES * u64::from(0x80 - lo)) & TOP;
    let at_most = |hi: u8| !(x + ONES * u64::from(0x7F - hi)) & TOP;
    let digit = at_least(b'0') & at_most(b'9');
    let letter = at_least(b'a') & at_most(b'f');
    if digit | letter != TOP {
        return None;
    }
    // '0'..'9' are 0x30..0x39 and 'a'..'f' 0x61..0x66: the low nibble, plus 9 for a
    // letter. Then the nibbles are gathered pairwise into the low 32 bits.
    let v = (x & (ONES * 0x0F)) + (letter >> 7) * 9;
    let v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
    let v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
    Some((v | (v >> 16)) & 0xFFFF_FFFF)
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
        // Every byte value at every position.
        for i in 0..uuid.len() {
            for byte in 0..=u8::MAX {
                let mut text = uuid.as_bytes().to_vec();
                text[i] = byte;
                let dash = matches!(i, 8 | 13 | 18 | 23);
                let hex = byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
                let expected = if dash {
                    (byte == b'-').then_some(number)
                } else {
                    hex.then(|| {
                        let text = String::from_utf8_lossy(&text).replace('-', "");
                        u128::from_str_radix(&text, 16).expect("hex")
                    })
                };
                let packed = pack_uuid(&text).map(|[h, l]| (u128::from(h) << 64) | u128::from(l));
                assert_eq!(packed, expected, "{i} {byte}");
            }
        }
        for digits in ["00000000", "ffffffff", "0123abcd", "9a9a9a9a", "fedcba98"] {
            let chunk: [u8; 8] = digits.as_bytes().try_into().expect("eight");
            let expected = u64::from_str_radix(digits, 16).expect("hex");
            assert_eq!(hex8(chunk), Some(expected), "{digits}");
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
