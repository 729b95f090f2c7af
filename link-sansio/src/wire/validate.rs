//! Validation rules for names on the wire (kinds, topics) and the hub's sanitising of
//! `hello`, exactly as PROTOCOL.md §3, §5 and §8 state them.

use super::envelope::js_string_of;
use super::json::{JsString, UnsafeJson, Value};
use super::message::HelloInfo;

/// Longest kind, topic or hello name, in UTF-16 code units.
pub const MAX_NAME_LEN: usize = 256;

/// Kinds no peer may claim.
pub const RESERVED_KINDS: [&str; 4] = ["__proto__", "constructor", "prototype", "server"];

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Whether `topic` is a valid topic: 1–256 characters of `[a-zA-Z0-9._-]`.
pub fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= MAX_NAME_LEN && topic.bytes().all(is_name_char)
}

/// A topic from the wire, if it is a string that passes [`is_valid_topic`].
pub fn topic_of(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|t| is_valid_topic(t))
}

/// Why a hello's kind was refused; [`BadKind::as_str`] is the close reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadKind {
    /// Empty after trimming.
    #[error("missing-kind")]
    Missing,
    /// Longer than 256 characters.
    #[error("oversized-kind")]
    Oversized,
    /// One of `__proto__`, `constructor`, `prototype`, `server`.
    #[error("reserved-kind")]
    Reserved,
    /// Characters outside `[a-zA-Z0-9._-]`.
    #[error("invalid-kind")]
    Invalid,
}

impl BadKind {
    /// The reference's detail string.
    pub fn as_str(self) -> &'static str {
        match self {
            BadKind::Missing => "missing-kind",
            BadKind::Oversized => "oversized-kind",
            BadKind::Reserved => "reserved-kind",
            BadKind::Invalid => "invalid-kind",
        }
    }
}

/// Checks a kind the way the hub does, after coercion and trimming, in the
/// reference's order: missing, oversized, reserved, invalid.
pub fn check_kind(kind: &str) -> Result<(), BadKind> {
    if kind.is_empty() {
        Err(BadKind::Missing)
    } else if kind.encode_utf16().count() > MAX_NAME_LEN {
        Err(BadKind::Oversized)
    } else if RESERVED_KINDS.contains(&kind) {
        Err(BadKind::Reserved)
    } else if !kind.bytes().all(is_name_char) {
        Err(BadKind::Invalid)
    } else {
        Ok(())
    }
}

/// JavaScript's `String(x ?? '').trim()` for a hello field.
fn coerce_trim(v: Option<&Value>) -> JsString {
    match v {
        None | Some(Value::Null) => JsString::default(),
        Some(v) => js_trim(&js_string_of(v)),
    }
}

/// Whether JavaScript's `String.prototype.trim` strips `c`.
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{A}' | '\u{B}' | '\u{C}' | '\u{D}' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// JavaScript's `trim()`. Lone surrogates are never whitespace and stay as they are.
pub fn js_trim(s: &JsString) -> JsString {
    s.trim_matches(is_js_whitespace)
}

/// Cuts `s` to at most `max` UTF-16 code units (as `String.prototype.slice` would,
/// possibly splitting a surrogate pair).
pub fn cut_utf16(s: &JsString, max: usize) -> JsString {
    s.slice_utf16(max)
}

/// Why a hello was refused before key resolution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad hello: {0}")]
pub struct BadHello(pub BadKind);

/// The hub's sanitising of hello data: kind coerced and trimmed then checked, name
/// coerced, trimmed and cut to 256 units, pid/startedAt kept only if finite numbers;
/// every other field discarded.
pub fn sanitize_hello(data: Option<&Value>) -> Result<HelloInfo, BadHello> {
    let kind = coerce_trim(data.and_then(|d| d.get("kind")));
    let Some(kind) = kind.as_str() else {
        // A lone surrogate is never a name character, but length comes first in the
        // reference's order.
        return Err(BadHello(if kind.utf16_len() > MAX_NAME_LEN {
            BadKind::Oversized
        } else {
            BadKind::Invalid
        }));
    };
    check_kind(kind).map_err(BadHello)?;
    let kind = kind.to_owned();
    let name = cut_utf16(&coerce_trim(data.and_then(|d| d.get("name"))), MAX_NAME_LEN);
    let finite = |key| {
        data.and_then(|d| d.get(key))
            .and_then(Value::as_f64)
            .filter(|n| n.is_finite())
    };
    Ok(HelloInfo {
        kind,
        name,
        pid: finite("pid"),
        started_at: finite("startedAt"),
    })
}

/// Checks an outgoing payload for values a JavaScript peer would not receive
/// intact: non-finite numbers (JSON has none). The error names the path.
///
/// Every other number here is already a double, exactly what a JavaScript peer holds
/// (`1e21`, `2 ** 53`, a value such a peer just sent), so it goes as it is, as the
/// reference's `assertJsonSerializable` lets it. A Rust integer that a double cannot
/// hold (beyond ±2^53) is refused earlier, where it becomes a double
/// ([`to_value`](super::serde_bridge::to_value), [`Value::from_serde`]).
pub fn check_json_safe(v: &Value) -> Result<(), UnsafeJson> {
    /// The problem with a number, if any.
    fn unsafe_number(n: f64) -> Option<&'static str> {
        if !n.is_finite() {
            Some("number is not finite")
        } else {
            None
        }
    }
    /// Whether everything in `v` is safe: the common case, checked without building
    /// a path for each member.
    fn safe(v: &Value) -> bool {
        match v {
            Value::Number(n) => unsafe_number(*n).is_none(),
            Value::Array(items) => items.iter().all(safe),
            Value::Object(o) => o.known_json_safe() || o.iter().all(|(_, item)| safe(item)),
            _ => true,
        }
    }
    if safe(v) {
        return Ok(());
    }
    fn walk(v: &Value, path: &mut String) -> Result<(), UnsafeJson> {
        match v {
            Value::Number(n) => match unsafe_number(*n) {
                Some(problem) => Err(UnsafeJson {
                    path: path.clone(),
                    problem,
                }),
                None => Ok(()),
            },
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(o) => {
                for (k, item) in o.iter() {
                    let len = path.len();
                    path.push('.');
                    path.push_str(&k.to_string_lossy());
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(v, &mut String::from("$"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::json::parse;

    fn hello(text: &str) -> Result<HelloInfo, BadHello> {
        sanitize_hello(Some(&parse(text.as_bytes()).expect("json")))
    }

    #[test]
    fn kinds_are_coerced_trimmed_and_checked_in_order() {
        assert_eq!(hello(r#"{"kind":123}"#).map(|h| h.kind), Ok("123".into()));
        assert_eq!(
            hello(r#"{"kind":"  padded  "}"#).map(|h| h.kind),
            Ok("padded".into())
        );
        assert_eq!(hello(r#"{"kind":"  "}"#), Err(BadHello(BadKind::Missing)));
        assert_eq!(hello(r#"{}"#), Err(BadHello(BadKind::Missing)));
        let long = format!(r#"{{"kind":"{}"}}"#, "a".repeat(257));
        assert_eq!(hello(&long), Err(BadHello(BadKind::Oversized)));
        let long_bad = format!(r#"{{"kind":"{}"}}"#, "!".repeat(257));
        assert_eq!(hello(&long_bad), Err(BadHello(BadKind::Oversized)));
        assert_eq!(
            hello(r#"{"kind":"server"}"#),
            Err(BadHello(BadKind::Reserved))
        );
        assert_eq!(hello(r#"{"kind":"a b"}"#), Err(BadHello(BadKind::Invalid)));
        assert_eq!(hello(r#"{"kind":{}}"#), Err(BadHello(BadKind::Invalid)));
    }

    #[test]
    fn hello_fields_are_sanitised() {
        let h = hello(r#"{"kind":"w","name":"  n  ","pid":"7","startedAt":5,"extra":1}"#)
            .expect("valid");
        assert_eq!(h.name, "n");
        assert_eq!(h.pid, None);
        assert_eq!(h.started_at, Some(5.0));
        let long = format!(r#"{{"kind":"w","name":"{}"}}"#, "x".repeat(300));
        assert_eq!(hello(&long).expect("valid").name.utf16_len(), 256);
        let astral = format!(r#"{{"kind":"w","name":"{}😀"}}"#, "x".repeat(255));
        let cut = hello(&astral).expect("valid").name;
        assert_eq!(cut.utf16_len(), 256);
        assert!(
            cut.as_str().is_none(),
            "half a surrogate pair survives the cut"
        );
    }

    #[test]
    fn topics() {
        assert!(is_valid_topic("jobs.queue-1_a"));
        assert!(!is_valid_topic(""));
        assert!(!is_valid_topic("a*"));
        assert!(!is_valid_topic("a b"));
        assert!(!is_valid_topic(&"a".repeat(257)));
        assert!(is_valid_topic(&"a".repeat(256)));
    }
}
