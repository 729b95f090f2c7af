//! The envelope `{v, id, ts, type, from, to, data, sig}`: reading it from untrusted
//! bytes in the reference's validation order, and writing it canonically and signed.

use super::json::{self, JsString, Object, Value};
use super::message::{Message, write_members};
use super::sign::{Key, PartialMac};
use super::{DropReason, Limits};

/// Longest envelope id accepted, in UTF-16 code units.
pub const MAX_ID_LEN: usize = 256;

/// A frame that parsed and carries a usable id, not yet verified (validation steps
/// 1–3 of PROTOCOL.md §6). The hub picks the key (step 4) between [`Frame::parse`]
/// and [`Frame::verify`].
#[derive(Debug, Clone)]
pub struct Frame {
    /// The envelope's own members by [`json::ENVELOPE_KEYS`] index, every other
    /// member but `sig`, and `sig`: together, with `sig` left out, exactly what the
    /// MAC covers.
    known: [Option<Value>; 7],
    extra: Vec<(JsString, Value)>,
    sig: Option<Value>,
    len: usize,
    /// See [`json::ParsedEnvelope::canonical_prefix`].
    canonical_prefix: Option<usize>,
}

/// Indexes into [`Frame::known`], after [`json::ENVELOPE_KEYS`].
const DATA: usize = 0;
const FROM: usize = 1;
const ID: usize = 2;
const TO: usize = 3;
const TS: usize = 4;
const TYPE: usize = 5;
const V: usize = 6;

impl Frame {
    /// Parses `bytes`: size cap, JSON, then the id (`missing-id` for JSON that is not
    /// an object).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Frame, DropReason> {
        if bytes.len() > limits.max_message_bytes {
            return Err(DropReason::Oversize);
        }
        // Valid JSON that is not an object has no string `id`, as the reference's
        // `typeof msg?.id !== 'string'` sees it.
        let parsed = match json::parse_envelope(bytes) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Err(DropReason::MissingId),
            Err(_) => return Err(DropReason::ParseError),
        };
        let json::ParsedEnvelope {
            known,
            extra,
            sig,
            canonical_prefix,
        } = parsed;
        match &known[ID] {
            Some(Value::String(id)) if !id.is_empty() => {
                if id.utf16_len() > MAX_ID_LEN {
                    return Err(DropReason::OversizedId);
                }
            }
            _ => return Err(DropReason::MissingId),
        }
        Ok(Frame {
            known,
            extra,
            sig,
            len: bytes.len(),
            canonical_prefix,
        })
    }

    /// Checks the signature with `key` (step 5), then the version (step 6).
    /// `scratch` is reused for the canonical text to avoid an allocation per frame.
    pub fn verify(&self, key: &Key, scratch: &mut Vec<u8>) -> Result<(), DropReason> {
        self.verify_text(None, key, scratch)
    }

    /// [`Frame::verify`], given the `bytes` this frame was parsed from: when they were
    /// canonical apart from a final `sig` (as every frame link writes is), the MAC runs
    /// over them as received, with no canonical text written.
    pub fn verify_received(
        &self,
        bytes: &[u8],
        key: &Key,
        scratch: &mut Vec<u8>,
    ) -> Result<(), DropReason> {
        self.verify_text(Some(bytes), key, scratch)
    }

    fn verify_text(
        &self,
        bytes: Option<&[u8]>,
        key: &Key,
        scratch: &mut Vec<u8>,
    ) -> Result<(), DropReason> {
        let Some(Value::String(sig)) = &self.sig else {
            return Err(DropReason::BadSignature);
        };
        let signed = match (bytes, self.canonical_prefix) {
            (Some(bytes), Some(n)) if bytes.len() == self.len && n < bytes.len() => {
                key.verify_hex_parts(&[&bytes[..n], b"}"], sig.as_wtf8())
            }
            _ => {
                scratch.clear();
                self.write_canonical(scratch);
                key.verify_hex(scratch, sig.as_wtf8())
            }
        };
        if !signed {
            return Err(DropReason::BadSignature);
        }
        if self.known[V] != Some(Value::Number(1.0)) {
            return Err(DropReason::BadVersion);
        }
        Ok(())
    }

    /// Writes the canonical text of every member but `sig`.
    fn write_canonical(&self, out: &mut Vec<u8>) {
        if self.extra.is_empty() {
            // The envelope's own keys, already in canonical order.
            let members: [(&str, Option<&Value>); 7] =
                std::array::from_fn(|i| (json::ENVELOPE_KEYS[i], self.known[i].as_ref()));
            write_members(&members, out);
        } else {
            json::write_canonical_object(&self.to_object(), out);
        }
    }

    /// Every member but `sig` as one object (a later duplicate key wins).
    fn to_object(&self) -> Object {
        let mut members = self.extra.clone();
        for (key, value) in json::ENVELOPE_KEYS.iter().zip(&self.known) {
            if let Some(v) = value {
                members.push((JsString::from(*key), v.clone()));
            }
        }
        Object::from_members(members)
    }

    /// The envelope id.
    pub fn id(&self) -> &JsString {
        match &self.known[ID] {
            Some(Value::String(id)) => id,
            // Parsing let no other id through.
            _ => &json::EMPTY_STRING,
        }
    }

    /// The sender's timestamp in ms; a missing or non-number `ts` counts as 0.
    pub fn ts(&self) -> f64 {
        self.known[TS]
            .as_ref()
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    }

    /// The message type, if it is a string.
    pub fn msg_type(&self) -> Option<&JsString> {
        self.known[TYPE].as_ref().and_then(Value::as_js_string)
    }

    /// The claimed sender as JavaScript's `String()` would coerce it (`None` for
    /// null or missing).
    pub fn from(&self) -> Option<JsString> {
        self.known[FROM].as_ref().and_then(coerce_nullable)
    }

    /// The recipient as the reference's hub reads it, `to ? String(to) : null`:
    /// `null`, `false`, `0` and `""` are no recipient.
    pub fn to(&self) -> Option<JsString> {
        self.known[TO].as_ref().and_then(coerce_truthy)
    }

    /// The payload, if present.
    pub fn data(&self) -> Option<&Value> {
        self.known[DATA].as_ref()
    }

    /// Size of the frame on the wire, in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame was empty (never true for a parsed frame).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The exact text the signature covers.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_canonical(&mut out);
        out
    }

    /// The typed view of this frame's message.
    pub fn message(&self) -> Message {
        Message::from_parts(self.msg_type(), self.data().cloned())
    }

    /// Consumes the frame into a verified envelope. Call only after [`Frame::verify`].
    pub fn into_envelope(mut self) -> Envelope {
        let data = self.known[DATA].take();
        let id = match self.known[ID].take() {
            Some(Value::String(id)) => id,
            _ => JsString::default(),
        };
        Envelope {
            ts: self.ts(),
            from: take_nullable(self.known[FROM].take()),
            to: self.known[TO].take().as_ref().and_then(coerce_truthy),
            message: Message::from_parts(self.msg_type(), data),
            id,
            len: self.len,
        }
    }
}

/// [`coerce_nullable`] for a value that is no longer needed: a string moves out.
fn take_nullable(v: Option<Value>) -> Option<JsString> {
    match v {
        Some(Value::String(s)) => Some(s),
        other => other.as_ref().and_then(coerce_nullable),
    }
}

/// JavaScript's `v ? String(v) : null`.
fn coerce_truthy(v: &Value) -> Option<JsString> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        other if other.is_truthy() => Some(js_string_of(other)),
        _ => None,
    }
}

/// `null`/missing → `None`; other values → JavaScript's `String(value)`.
fn coerce_nullable(v: &Value) -> Option<JsString> {
    match v {
        Value::Null => None,
        other => Some(js_string_of(other)),
    }
}

/// JavaScript's `String(value)` for a JSON value.
pub fn js_string_of(v: &Value) -> JsString {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => JsString::from("null"),
        Value::Bool(b) => JsString::from(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let mut out = Vec::new();
            if n.is_nan() {
                out.extend_from_slice(b"NaN");
            } else if n.is_infinite() {
                out.extend_from_slice(if *n > 0.0 { b"Infinity" } else { b"-Infinity" });
            } else {
                json::write_number(*n, &mut out);
            }
            JsString::from(String::from_utf8_lossy(&out).into_owned())
        }
        Value::Array(items) => {
            // Array.prototype.join(","), with null and undefined as "".
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::Null => String::new(),
                    other => js_string_of(other).to_string_lossy(),
                })
                .collect();
            JsString::from(parts.join(","))
        }
        Value::Object(_) => JsString::from("[object Object]"),
    }
}

/// A verified message with its envelope fields, as the application sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The envelope id.
    pub id: JsString,
    /// The sender's timestamp (ms since epoch).
    pub ts: f64,
    /// The sender as stated in the envelope (the hub stamps the authenticated kind).
    pub from: Option<JsString>,
    /// The recipient, as [`Frame::to`] reads it.
    pub to: Option<JsString>,
    /// The typed message.
    pub message: Message,
    /// Size on the wire in bytes.
    pub len: usize,
}

/// Parses and verifies `bytes` with `key`: validation steps 1–6 of PROTOCOL.md §6
/// (everything but the replay guard, which needs the time and the sender).
pub fn decode(
    bytes: &[u8],
    key: &Key,
    limits: &Limits,
    scratch: &mut Vec<u8>,
) -> Result<Envelope, DropReason> {
    let frame = Frame::parse(bytes, limits)?;
    frame.verify_received(bytes, key, scratch)?;
    Ok(frame.into_envelope())
}

/// Checks one frame the way a person debugging "bad-signature" wants: validation
/// steps 1–6 of PROTOCOL.md §6 (size, JSON, id, signature, version) and no replay
/// guard, since frames under inspection are usually old. On success returns the exact
/// canonical text the signature covers. The `verify` example and the `link verify`
/// command are thin wrappers around this.
pub fn inspect(bytes: &[u8], key: &Key, limits: &Limits) -> Result<Vec<u8>, DropReason> {
    let frame = Frame::parse(bytes, limits)?;
    let mut canonical = Vec::with_capacity(bytes.len());
    frame.verify(key, &mut canonical)?;
    Ok(canonical)
}

/// The envelope fields of an outgoing message.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// The envelope id.
    pub id: Wtf8<'a>,
    /// Signing time, ms since epoch.
    pub ts: f64,
    /// Sender kind (`"server"` for the hub), or null.
    pub from: Option<Wtf8<'a>>,
    /// Recipient kind, `"server"`, or null.
    pub to: Option<Wtf8<'a>>,
}

/// A borrowed string for the wire: UTF-8, or WTF-8 carrying lone surrogates that a
/// JavaScript peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wtf8<'a>(&'a [u8]);

impl<'a> From<&'a str> for Wtf8<'a> {
    fn from(s: &'a str) -> Self {
        Wtf8(s.as_bytes())
    }
}

impl<'a> From<&'a String> for Wtf8<'a> {
    fn from(s: &'a String) -> Self {
        Wtf8(s.as_bytes())
    }
}

impl<'a> From<&'a JsString> for Wtf8<'a> {
    fn from(s: &'a JsString) -> Self {
        Wtf8(s.as_wtf8())
    }
}

/// Room for a frame's members besides `data` (id, kinds, ts, type, v and the
/// signature) that covers typical frames, so writing one grows its buffer at most once.
pub(crate) const ENVELOPE_ROOM: usize = 256;

/// Writes a signed frame into `out` (cleared first): the canonical envelope, whose
/// MAC is the signature, with `"sig"` appended. The wire text is therefore also the
/// canonical text, so a receiver's canonicalization is a re-serialization of the same
/// bytes. `data` is the canonical serialization of the payload, or `None` to omit it.
pub fn encode(
    key: &Key,
    header: &Header<'_>,
    msg_type: &str,
    data: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.reserve(data.map_or(0, <[u8]>::len) + ENVELOPE_ROOM);
    write_head(header.from, data, out);
    write_tail(header, msg_type, out);
    let (sig, sig_len) = key.sign_hex_array(out);
    append_sig(&sig[..sig_len], out);
}

/// The members before `"id"` in canonical order (data, from, id, to, ts, type, v),
/// with the opening brace: what every recipient of a fan-out shares.
fn write_head(from: Option<Wtf8<'_>>, data: Option<&[u8]>, out: &mut Vec<u8>) {
    out.push(b'{');
    if let Some(data) = data {
        out.extend_from_slice(b"\"data\":");
        out.extend_from_slice(data);
        out.push(b',');
    }
    out.extend_from_slice(b"\"from\":");
    write_nullable(from, out);
    out.push(b',');
}

/// The members from `"id"` on, with the closing brace.
fn write_tail(header: &Header<'_>, msg_type: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"id\":");
    json::write_string(header.id.0, out);
    out.extend_from_slice(b",\"to\":");
    write_nullable(header.to, out);
    out.extend_from_slice(b",\"ts\":");
    json::write_number(header.ts, out);
    out.extend_from_slice(b",\"type\":");
    json::write_string(msg_type.as_bytes(), out);
    out.extend_from_slice(b",\"v\":1}");
}

/// Turns a signed canonical envelope in `out` into the frame: `"sig"` goes last.
fn append_sig(sig: &[u8], out: &mut Vec<u8>) {
    out.pop();
    out.extend_from_slice(b",\"sig\":\"");
    out.extend_from_slice(sig);
    out.extend_from_slice(b"\"}");
}

/// The frames of a fan-out (one message, one sender, a fresh envelope per
/// recipient) built from the part they share: the head up to `"id"` is written and
/// checked as UTF-8 once, and its MAC state is kept for the last key used, so each
/// frame costs only its own members and the hashing of those. A peer list or a
/// payload sent to many recipients is thus hashed once per key, not per recipient.
pub(crate) struct SharedHead {
    text: String,
    mac: Option<PartialMac>,
    /// The frame's own members, reused between recipients.
    tail: Vec<u8>,
}

impl SharedHead {
    /// The head of frames from `from` carrying `data`; `None` if they would not be
    /// UTF-8 (canonical text always is).
    pub(crate) fn new(from: Option<Wtf8<'_>>, data: Option<&[u8]>) -> Option<Self> {
        let mut head = Vec::with_capacity(data.map_or(0, <[u8]>::len) + 64);
        write_head(from, data, &mut head);
        Some(Self {
            text: String::from_utf8(head).ok()?,
            mac: None,
            tail: Vec::with_capacity(256),
        })
    }

    /// The signed frame for one recipient: what [`encode`] writes for `header`
    /// (whose `from` must be the head's) and this head's data.
    pub(crate) fn frame(&mut self, key: &Key, header: &Header<'_>, msg_type: &str) -> String {
        let mac = match &mut self.mac {
            Some(mac) if mac.is_from(key) => mac,
            slot => slot.insert(key.partial(self.text.as_bytes())),
        };
        self.tail.clear();
        write_tail(header, msg_type, &mut self.tail);
        let (sig, sig_len) = mac.sign_hex_array(&self.tail);
        append_sig(&sig[..sig_len], &mut self.tail);
        // The written strings escape lone surrogates, so the tail is UTF-8; were it
        // not, the frame would be empty, as [`encode`]'s callers make it.
        let Ok(tail) = std::str::from_utf8(&self.tail) else {
            return String::new();
        };
        let mut frame = String::with_capacity(self.text.len() + tail.len());
        frame.push_str(&self.text);
        frame.push_str(tail);
        frame
    }
}

fn write_nullable(s: Option<Wtf8<'_>>, out: &mut Vec<u8>) {
    match s {
        Some(s) => json::write_string(s.0, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// Writes a signed frame for a typed message. See [`encode`].
pub fn encode_message(key: &Key, header: &Header<'_>, message: &Message, out: &mut Vec<u8>) {
    let mut data = Vec::with_capacity(ENVELOPE_ROOM);
    let has_data = message.write_data(&mut data);
    encode(
        key,
        header,
        message.msg_type(),
        has_data.then_some(data.as_slice()),
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::HashAlgo;

    fn signed(key: &Key, sig: impl Fn(&str) -> String) -> String {
        let unsigned = r#"{"id":"i","ts":1,"type":"direct","v":1}"#;
        let hex = key.sign_hex(unsigned.as_bytes());
        format!(
            r#"{},"sig":{}}}"#,
            &unsigned[..unsigned.len() - 1],
            sig(&hex)
        )
    }

    fn check(key: &Key, text: &str) -> Result<(), DropReason> {
        let frame = Frame::parse(text.as_bytes(), &Limits::default())?;
        frame.verify_received(text.as_bytes(), key, &mut Vec::new())?;
        frame.verify(key, &mut Vec::new())
    }

    /// A fan-out's frames are byte for byte what [`encode`] writes for each
    /// recipient, whichever keys they use and in whatever order the keys come.
    #[test]
    fn shared_heads_frame_like_encode() {
        let shared = Key::new("shared", HashAlgo::Sha256);
        let keys = [
            shared.clone(),
            shared.clone(),
            Key::new("own", HashAlgo::Sha256),
            shared,
            Key::new("shared", HashAlgo::Sha256),
            Key::new("wide", HashAlgo::Sha512),
        ];
        let big = format!("{{\"big\":\"{}\"}}", "é".repeat(400));
        let data: [Option<&[u8]>; 4] = [
            None,
            Some(b"{}"),
            Some(r#"{"payload":{"n":1,"s":"café \ud800 \u0001 😀"},"topic":"t"}"#.as_bytes()),
            Some(big.as_bytes()),
        ];
        for data in data {
            for from in [Some("pub"), Some("ünï\u{1F600}"), None] {
                let mut head = SharedHead::new(from.map(Into::into), data).expect("UTF-8");
                for (n, key) in keys.iter().enumerate() {
                    let id = format!("id-{n}");
                    let to = format!("sub\"{n}");
                    let header = Header {
                        id: id.as_str().into(),
                        ts: 1_700_000_000_000.0 + n as f64,
                        from: from.map(Into::into),
                        to: Some(to.as_str().into()),
                    };
                    let mut want = Vec::new();
                    encode(key, &header, "topic.message", data, &mut want);
                    let got = head.frame(key, &header, "topic.message");
                    assert_eq!(got.as_bytes(), want, "{from:?} {n}");
                    let frame = Frame::parse(got.as_bytes(), &Limits::default()).expect("parses");
                    assert_eq!(
                        frame.verify_received(got.as_bytes(), key, &mut Vec::new()),
                        Ok(())
                    );
                }
            }
        }
    }

    /// A signature is read in place when plain and decoded when it has escapes; any
    /// other `sig` never verifies.
    #[test]
    fn signatures_in_every_spelling() {
        let key = Key::new("k", HashAlgo::Sha256);
        assert_eq!(check(&key, &signed(&key, |h| format!("\"{h}\""))), Ok(()));
        let escaped = |h: &str| format!("\"\\u00{:x}{}\"", h.as_bytes()[0], &h[1..]);
        assert_eq!(check(&key, &signed(&key, escaped)), Ok(()));
        for bad in [
            |h: &str| format!("\"{h}0\""),
            |h: &str| format!("\"{}\"", h.repeat(3)),
            |_: &str| "null".to_owned(),
            |_: &str| "[]".to_owned(),
            |h: &str| format!("[\"{h}\"]"),
        ] {
            let text = signed(&key, bad);
            assert_eq!(check(&key, &text), Err(DropReason::BadSignature), "{text}");
        }
        // The last of several `sig` members counts.
        let text = signed(&key, |h| format!("\"{}\",\"sig\":\"{h}\"", "0".repeat(64)));
        assert_eq!(check(&key, &text), Ok(()));
    }
}
