//! What the structure-aware targets share: JSON values, strings and signed frames
//! drawn from the fuzzer's bytes, so that most inputs get past parsing and the HMAC
//! and reach the state machines' logic.

#![allow(dead_code)]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use link_sansio::wire::{self, Header, JsString, Key, Object, Value};

/// Names peers, topics and types are drawn from, so that inputs refer to each other.
pub const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "server",
    "",
    "t",
    "u",
    "echo",
    "link.health",
    "link.topic.list",
    "x y",
    "__proto__",
    "constructor",
    "  a  ",
    "0",
];

/// A short string: mostly one of [`NAMES`], sometimes anything.
pub fn name(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(7, 8)? {
        Ok((*u.choose(NAMES)?).to_owned())
    } else {
        let s: String = u.arbitrary()?;
        Ok(s.chars().take(300).collect())
    }
}

/// A number that is interesting to JavaScript's `Number`.
pub fn number(u: &mut Unstructured<'_>) -> Result<f64> {
    Ok(match u.int_in_range(0..=7)? {
        0 => f64::from(u.int_in_range(-3..=3)?),
        1 => f64::from(u.arbitrary::<i32>()?),
        2 => u.arbitrary::<f64>()?,
        3 => 9_007_199_254_740_993.0,
        4 => -0.0,
        5 => 1e21,
        6 => f64::NAN,
        _ => f64::INFINITY,
    })
}

/// A JSON value, at most `depth` levels deep.
pub fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let top = if depth == 0 { 4 } else { 6 };
    Ok(match u.int_in_range(0..=top)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(number(u)?),
        3 | 4 => Value::String(JsString::from(name(u)?)),
        5 => {
            let n = u.int_in_range(0..=3)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(value(u, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => {
            let n = u.int_in_range(0..=3)?;
            let mut o = Object::new();
            for _ in 0..n {
                let k = name(u)?;
                o.insert(k, value(u, depth - 1)?);
            }
            Value::Object(o)
        }
    })
}

/// An object with the given members (each `None` member left out).
pub fn object(members: Vec<(&str, Option<Value>)>) -> Value {
    let mut o = Object::new();
    for (k, v) in members {
        if let Some(v) = v {
            o.insert(k, v);
        }
    }
    Value::Object(o)
}

/// `Some(v)` most of the time.
pub fn maybe(
    u: &mut Unstructured<'_>,
    v: impl FnOnce(&mut Unstructured<'_>) -> Result<Value>,
) -> Result<Option<Value>> {
    Ok(if u.ratio(7, 8)? { Some(v(u)?) } else { None })
}

/// The envelope fields of a frame to build.
pub struct Envelope {
    pub id: String,
    pub ts: f64,
    pub from: Option<String>,
    pub to: Option<String>,
    pub msg_type: String,
    pub data: Option<Value>,
}

/// A frame with `env`, signed with `key`: the canonical text plus `sig`.
pub fn signed(key: &Key, env: &Envelope) -> Vec<u8> {
    let data = env.data.as_ref().map(|d| d.to_canonical());
    let header = Header {
        id: env.id.as_str().into(),
        ts: env.ts,
        from: env.from.as_deref().map(Into::into),
        to: env.to.as_deref().map(Into::into),
    };
    let mut out = Vec::new();
    wire::encode(key, &header, &env.msg_type, data.as_deref(), &mut out);
    out
}

/// Damages a frame the way a broken or hostile peer might.
pub fn mangle(u: &mut Unstructured<'_>, frame: &mut Vec<u8>) -> Result<()> {
    match u.int_in_range(0..=3)? {
        0 if !frame.is_empty() => {
            let i = u.choose_index(frame.len())?;
            frame[i] = u.arbitrary()?;
        }
        1 => {
            let n = u.int_in_range(0..=frame.len())?;
            frame.truncate(n);
        }
        2 => {
            let n = u.int_in_range(0..=8)?;
            frame.extend_from_slice(u.bytes(n)?);
        }
        _ => {
            // Whatever bytes remain in a short run: garbage, or a raw JSON attempt.
            let n = u.int_in_range(0..=64)?;
            *frame = u.bytes(n)?.to_vec();
        }
    }
    Ok(())
}
