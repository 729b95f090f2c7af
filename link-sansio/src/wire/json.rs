//! JSON values as a JavaScript peer sees them: numbers are `f64`, strings are
//! sequences of UTF-16 code units (lone surrogates included), objects keep the last
//! of duplicate keys. This module parses untrusted text into that form and writes the
//! canonical serialization that link signs (the reference's `stableStringify`).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// Deepest nesting of arrays and objects accepted from the wire. `JSON.parse` has no
/// such limit, but unbounded recursion is a stack overflow waiting for a peer to
/// trigger it; serde_json uses the same bound.
pub const MAX_DEPTH: usize = 128;

/// Largest integer magnitude a JavaScript number holds exactly (2^53 − 1).
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A string as JavaScript holds it: UTF-16 code units, stored as WTF-8 (UTF-8 that may
/// also encode lone surrogates). A well-formed string is plain UTF-8.
#[derive(Clone)]
pub struct JsString {
    repr: Repr,
}

/// Strings this short (most keys, kinds, types and small values) are stored inline:
/// parsing a frame then allocates for its long strings only.
const INLINE: usize = 23;

#[derive(Clone)]
enum Repr {
    Inline(Inline),
    Heap(Box<[u8]>),
}

/// An inline string, word-aligned: values holding one are then moved as whole words.
/// (Byte-aligned, they were copied in pieces at odd offsets that later loads straddled,
/// stalling store forwarding in the parser.)
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Inline {
    buf: [u8; INLINE],
    len: u8,
}

/// The empty string, for a reference that must outlive any value.
pub(crate) static EMPTY_STRING: JsString = JsString {
    repr: Repr::Inline(Inline {
        buf: [0; INLINE],
        len: 0,
    }),
};

impl Default for JsString {
    fn default() -> Self {
        Self::from_slice(&[])
    }
}

impl PartialEq for JsString {
    fn eq(&self, other: &Self) -> bool {
        self.as_wtf8() == other.as_wtf8()
    }
}

impl Eq for JsString {}

impl std::hash::Hash for JsString {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_wtf8().hash(state);
    }
}

impl JsString {
    fn from_slice(bytes: &[u8]) -> Self {
        let repr = if bytes.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Repr::Inline(Inline {
                len: bytes.len() as u8,
                buf,
            })
        } else {
            Repr::Heap(bytes.into())
        };
        Self { repr }
    }

    /// The string at `text[start..end]`. When the text goes on for a whole inline
    /// buffer past `start`, that many bytes are copied at once (a fixed-size copy the
    /// compiler keeps in two vector moves): bytes past the end are never read.
    fn from_text(text: &[u8], start: usize, end: usize) -> Self {
        let len = end - start;
        if len <= INLINE
            && let Some(window) = text.get(start..start + INLINE)
        {
            let mut buf = [0; INLINE];
            buf.copy_from_slice(window);
            return Self {
                repr: Repr::Inline(Inline {
                    len: len as u8,
                    buf,
                }),
            };
        }
        Self::from_slice(&text[start..end])
    }

    /// Builds a string from WTF-8 bytes produced by this module's parser.
    fn from_wtf8(bytes: Vec<u8>) -> Self {
        if bytes.len() <= INLINE {
            return Self::from_slice(&bytes);
        }
        Self {
            repr: Repr::Heap(bytes.into_boxed_slice()),
        }
    }

    /// The string as Rust `&str`, or `None` when it holds a lone surrogate.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_wtf8()).ok()
    }

    /// The string with any lone surrogate replaced by U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        match self.as_str() {
            Some(s) => s.to_owned(),
            None => code_points(self.as_wtf8())
                .map(|cp| char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        }
    }

    /// The raw WTF-8 bytes.
    pub fn as_wtf8(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline(Inline { len, buf }) => &buf[..usize::from(*len)],
            Repr::Heap(b) => b,
        }
    }

    /// Length in UTF-16 code units, as JavaScript's `.length` counts.
    pub fn utf16_len(&self) -> usize {
        if self.as_wtf8().is_ascii() {
            return self.as_wtf8().len();
        }
        code_points(self.as_wtf8())
            .map(|cp| if cp >= 0x1_0000 { 2 } else { 1 })
            .sum()
    }

    /// The first `max` UTF-16 code units (a surrogate pair cut in half leaves its
    /// high surrogate, as JavaScript's `slice` does).
    pub fn slice_utf16(&self, max: usize) -> JsString {
        if self.as_wtf8().len() <= max {
            return self.clone();
        }
        let mut out = Vec::with_capacity(self.as_wtf8().len());
        let mut units = 0;
        for cp in code_points(self.as_wtf8()) {
            let n = if cp >= 0x1_0000 { 2 } else { 1 };
            if units + n > max {
                if units < max {
                    push_wtf8(0xD800 + ((cp - 0x1_0000) >> 10), &mut out);
                }
                break;
            }
            units += n;
            push_wtf8(cp, &mut out);
        }
        JsString::from_wtf8(out)
    }

    /// The string without the leading and trailing characters `strip` accepts. Works
    /// on code points, so a lone surrogate is kept as it is (it is never stripped).
    pub fn trim_matches(&self, strip: impl Fn(char) -> bool) -> JsString {
        let mut offset = 0;
        let mut kept: Option<(usize, usize)> = None;
        for cp in code_points(self.as_wtf8()) {
            let len = match cp {
                0..=0x7F => 1,
                0x80..=0x7FF => 2,
                0x800..=0xFFFF => 3,
                _ => 4,
            };
            if !char::from_u32(cp).is_some_and(&strip) {
                let first = kept.map_or(offset, |(first, _)| first);
                kept = Some((first, offset + len));
            }
            offset += len;
        }
        match kept {
            Some((first, end)) if first == 0 && end == self.as_wtf8().len() => self.clone(),
            Some((first, end)) => JsString::from_wtf8(self.as_wtf8()[first..end].to_vec()),
            None => JsString::default(),
        }
    }

    /// `prefix`, one separator byte (ASCII), then `rest`: a composite key.
    pub fn joined(prefix: &[u8], separator: u8, rest: &JsString) -> JsString {
        debug_assert!(separator.is_ascii() && std::str::from_utf8(prefix).is_ok());
        let mut bytes = Vec::with_capacity(prefix.len() + 1 + rest.as_wtf8().len());
        bytes.extend_from_slice(prefix);
        bytes.push(separator);
        bytes.extend_from_slice(rest.as_wtf8());
        JsString::from_wtf8(bytes)
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.as_wtf8().is_empty()
    }
}

impl From<&str> for JsString {
    fn from(s: &str) -> Self {
        Self::from_slice(s.as_bytes())
    }
}

impl From<String> for JsString {
    fn from(s: String) -> Self {
        Self::from_wtf8(s.into_bytes())
    }
}

impl PartialEq<str> for JsString {
    fn eq(&self, other: &str) -> bool {
        self.as_wtf8() == other.as_bytes()
    }
}

impl PartialEq<&str> for JsString {
    fn eq(&self, other: &&str) -> bool {
        self.as_wtf8() == other.as_bytes()
    }
}

impl fmt::Debug for JsString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

impl fmt::Display for JsString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl PartialOrd for JsString {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JsString {
    /// JavaScript's default sort order: by UTF-16 code units.
    fn cmp(&self, other: &Self) -> Ordering {
        utf16_cmp(self.as_wtf8(), other.as_wtf8())
    }
}

/// Compares two WTF-8 strings by their UTF-16 code units.
#[inline]
pub(crate) fn utf16_cmp(a: &[u8], b: &[u8]) -> Ordering {
    // UTF-8 byte order is code point order, which equals UTF-16 order except where a
    // supplementary character meets one in U+E000..=U+FFFF. Compare bytes up to the
    // first difference and only decode when that difference involves such a pair.
    let shorter = a.len().min(b.len());
    let mut common = 0;
    while common < shorter && a[common] == b[common] {
        common += 1;
    }
    if common == shorter {
        return a.len().cmp(&b.len());
    }
    // Keys are mostly ASCII: two ASCII bytes each start a BMP code point, so bytes
    // order them as UTF-16 does.
    if a[common] < 0x80 && b[common] < 0x80 {
        return a[common].cmp(&b[common]);
    }
    utf16_cmp_from(a, b, common)
}

/// [`utf16_cmp`] past a common prefix of `common` bytes, where a non-ASCII byte
/// differs.
fn utf16_cmp_from(a: &[u8], b: &[u8], common: usize) -> Ordering {
    // Back up to the start of the code point that differs.
    let mut start = common;
    while start > 0 && (a[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    // Two supplementary characters, or two BMP units (surrogates included), order
    // the same by bytes as by UTF-16. Only a supplementary character (lead byte
    // F0..) against a BMP one needs decoding.
    let supplementary = |lead: u8| lead >= 0xF0;
    if supplementary(a[start]) == supplementary(b[start]) {
        return a[common].cmp(&b[common]);
    }
    let ua = code_points(&a[start..]).flat_map(utf16_units);
    let ub = code_points(&b[start..]).flat_map(utf16_units);
    ua.cmp(ub)
}

fn utf16_units(cp: u32) -> impl Iterator<Item = u16> {
    let (first, second) = if cp >= 0x1_0000 {
        let c = cp - 0x1_0000;
        (
            (0xD800 + (c >> 10)) as u16,
            Some((0xDC00 + (c & 0x3FF)) as u16),
        )
    } else {
        (cp as u16, None)
    };
    std::iter::once(first).chain(second)
}

/// Decodes WTF-8 into code points (surrogates included as their own values).
fn code_points(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b0 = *bytes.get(i)?;
        let (len, init) = match b0 {
            0x00..=0x7F => (1, u32::from(b0)),
            0xC0..=0xDF => (2, u32::from(b0 & 0x1F)),
            0xE0..=0xEF => (3, u32::from(b0 & 0x0F)),
            _ => (4, u32::from(b0 & 0x07)),
        };
        let mut cp = init;
        for k in 1..len {
            cp = (cp << 6) | u32::from(bytes.get(i + k).copied().unwrap_or(0x80) & 0x3F);
        }
        i += len;
        Some(cp)
    })
}

/// A JSON object: members sorted by key in UTF-16 order, each key once.
///
/// An object received inside a payload may be held as its text until someone looks
/// inside: the hub forwards payloads without reading them, and writes them back as
/// received when they were canonical.
#[derive(Clone, Default)]
pub struct Object {
    repr: ObjectRepr,
}

#[derive(Clone)]
enum ObjectRepr {
    Members(Members),
    /// Shared: copies of a received payload (one per event listener or subscriber)
    /// cost a reference count, not a copy of the text.
    Text(std::sync::Arc<TextObject>),
}

impl Default for ObjectRepr {
    fn default() -> Self {
        ObjectRepr::Members(Vec::new())
    }
}

/// An object kept as the (validated) text it arrived as; parsed on first access.
struct TextObject {
    text: Box<[u8]>,
    /// Whether `text` is exactly the object's canonical serialization.
    canonical: bool,
    /// Whether every number in `text` is known to be finite and, if integral, within
    /// ±(2^53 − 1) (true for text written by the serde bridge; received text is not
    /// judged).
    json_safe: bool,
    members: std::sync::OnceLock<Members>,
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.members() == other.members()
    }
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an object from members in any order; a later duplicate key wins, as in
    /// `JSON.parse`.
    pub fn from_members(members: Vec<(JsString, Value)>) -> Self {
        Self::from_parsed(members).0
    }

    /// [`Object::from_members`], also telling whether the members arrived in strictly
    /// increasing order (canonical order, no duplicates), which the parser needs.
    fn from_parsed(mut members: Vec<(JsString, Value)>) -> (Self, bool) {
        // Frames written by link (and canonical text generally) arrive sorted.
        let sorted = members.windows(2).all(|w| w[0].0 < w[1].0);
        if !sorted {
            // A stable sort keeps duplicates in arrival order; `dedup_by` keeps the
            // first of each run, so move each later value into it: the last one wins.
            members.sort_by(|a, b| a.0.cmp(&b.0));
            members.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                same
            });
        }
        let object = Self {
            repr: ObjectRepr::Members(members),
        };
        (object, sorted)
    }

    /// An object held as `text`, which the parser has checked is a valid JSON object
    /// (within the nesting bound); `canonical` if it is also its canonical text.
    fn from_text(text: &[u8], canonical: bool) -> Self {
        Self {
            repr: ObjectRepr::Text(std::sync::Arc::new(TextObject {
                text: text.into(),
                canonical,
                json_safe: false,
                members: std::sync::OnceLock::new(),
            })),
        }
    }

    /// An object held as `text`, which the caller wrote as canonical JSON (within the
    /// nesting bound) with only finite numbers and integers within ±(2^53 − 1).
    pub(crate) fn from_safe_canonical_text(text: &[u8]) -> Self {
        Self {
            repr: ObjectRepr::Text(std::sync::Arc::new(TextObject {
                text: text.into(),
                canonical: true,
                json_safe: true,
                members: std::sync::OnceLock::new(),
            })),
        }
    }

    /// The members in canonical order, as a slice.
    pub(crate) fn members(&self) -> &[(JsString, Value)] {
        match &self.repr {
            ObjectRepr::Members(m) => m,
            ObjectRepr::Text(t) => t.members.get_or_init(|| members_of_text(&t.text)),
        }
    }

    /// The members, for changing them (a text object is parsed and stops being text).
    fn members_mut(&mut self) -> &mut Members {
        if let ObjectRepr::Text(t) = &mut self.repr {
            let members = match std::sync::Arc::get_mut(t) {
                Some(only) => only.members.take(),
                None => t.members.get().cloned(),
            };
            let members = members.unwrap_or_else(|| members_of_text(&t.text));
            self.repr = ObjectRepr::Members(members);
        }
        match &mut self.repr {
            ObjectRepr::Members(m) => m,
            // Replaced just above.
            ObjectRepr::Text(_) => unreachable!("text objects are parsed before changes"),
        }
    }

    /// The canonical text, when the object is held as text that is already canonical.
    fn canonical_text(&self) -> Option<&[u8]> {
        match &self.repr {
            ObjectRepr::Text(t) if t.canonical => Some(&t.text),
            _ => None,
        }
    }

    /// The text of an object held as canonical text that can be read member by member
    /// with nothing sorted or replaced: no character beyond the Basic Multilingual
    /// Plane and no escaped surrogate, so every key is well-formed and keys in UTF-16
    /// order (the canonical order) are in byte order too. `None` for anything else.
    pub(crate) fn plain_canonical_text(&self) -> Option<&[u8]> {
        let text = self.canonical_text()?;
        // Most payloads have no escape at all: then two whole-text passes the compiler
        // vectorises decide it, rather than a branch per byte. (It is asked on every
        // read of a received payload.)
        if text.iter().copied().max().unwrap_or(0) >= 0xF0 {
            return None;
        }
        if !text.contains(&b'\\') {
            return Some(text);
        }
        let mut i = 0;
        while let Some(&b) = text.get(i) {
            match b {
                0xF0.. => return None,
                b'\\' => {
                    if text.get(i + 1) == Some(&b'u')
                        && text.get(i + 2).is_some_and(|&c| c | 0x20 == b'd')
                    {
                        return None;
                    }
                    // Past the escaped character, so `\\u` is not taken for an escape.
                    i += 2;
                }
                _ => i += 1,
            }
        }
        Some(text)
    }

    /// Whether the object is known to hold only numbers a JavaScript peer receives
    /// intact (see [`Object::from_safe_canonical_text`]); `false` when unknown.
    pub(crate) fn known_json_safe(&self) -> bool {
        matches!(&self.repr, ObjectRepr::Text(t) if t.json_safe)
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let members = self.members();
        position(members, key).ok().map(|i| &members[i].1)
    }

    /// Inserts or replaces `key`.
    pub fn insert(&mut self, key: impl Into<JsString>, value: Value) {
        let key = key.into();
        let members = self.members_mut();
        match members.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => members[i].1 = value,
            Err(i) => members.insert(i, (key, value)),
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let members = self.members_mut();
        match position(members, key) {
            Ok(i) => Some(members.remove(i).1),
            Err(_) => None,
        }
    }

    /// Members in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (&JsString, &Value)> {
        self.members().iter().map(|(k, v)| (k, v))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members().len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.members().is_empty()
    }
}

/// Where `key` is in sorted `members`, or would be inserted; compares in place rather
/// than building a `JsString`, since lookups run several times per frame.
fn position(members: &[(JsString, Value)], key: &str) -> Result<usize, usize> {
    members.binary_search_by(|(k, _)| utf16_cmp(k.as_wtf8(), key.as_bytes()))
}

/// Parses the text of a [`TextObject`]. The parser validated it when it was received,
/// so this cannot fail; if it somehow did, the object reads as empty rather than
/// bringing the process down.
fn members_of_text(text: &[u8]) -> Members {
    let mut p = Parser::new(text);
    match p.value(0) {
        Ok(Value::Object(o)) => match o.repr {
            ObjectRepr::Members(m) => m,
            ObjectRepr::Text(_) => Vec::new(),
        },
        _ => {
            debug_assert!(false, "a text object failed to parse");
            Vec::new()
        }
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A JSON value as `JSON.parse` produces it.
#[derive(Clone, PartialEq, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// Any number, as an IEEE-754 double (literals out of range become ±Infinity).
    Number(f64),
    /// A string of UTF-16 code units.
    String(JsString),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Object),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_canonical()))
    }
}

impl Value {
    /// The string, if this is a well-formed string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => s.as_str(),
            _ => None,
        }
    }

    /// The string, if this is a string (lone surrogates allowed).
    pub fn as_js_string(&self) -> Option<&JsString> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The object, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The array, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A member of an object value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// Whether JavaScript would consider this value truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// The canonical serialization (the reference's `stableStringify`).
    pub fn to_canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_canonical(self, &mut out);
        out
    }

    /// Converts to a `serde_json::Value`. Lone surrogates become U+FFFD and non-finite
    /// numbers become `null`, as they would after a round trip through a Rust string.
    pub fn to_serde(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_serde(*n),
            Value::String(s) => serde_json::Value::String(s.to_string_lossy()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_serde).collect()),
            Value::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string_lossy(), v.to_serde()))
                    .collect(),
            ),
        }
    }

    /// Converts from a `serde_json::Value`, checking that a JavaScript peer would
    /// receive exactly this value. The error names the path of the offending value.
    pub fn from_serde(value: &serde_json::Value) -> Result<Value, UnsafeJson> {
        from_serde_at(value, &mut String::from("$"))
    }
}

fn number_to_serde(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
        // Integral doubles within the safe range are exact as i64.
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// [`UnsafeJson::problem`] for an integer a double cannot hold exactly.
pub(crate) const BEYOND_SAFE_INTEGER: &str = "integer beyond ±2^53 would lose precision";
/// [`UnsafeJson::problem`] for NaN or an infinity.
pub(crate) const NOT_FINITE: &str = "number is not finite";

/// A value that would not survive the trip to a JavaScript peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value at {path} is not JSON-safe: {problem}")]
pub struct UnsafeJson {
    /// Where the value sits, as `$.a.b[3]`.
    pub path: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

fn from_serde_at(value: &serde_json::Value, path: &mut String) -> Result<Value, UnsafeJson> {
    let unsafe_at = |path: &String, problem| UnsafeJson {
        path: path.clone(),
        problem,
    };
    Ok(match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if (i as f64).abs() > MAX_SAFE_INTEGER || i.unsigned_abs() > (1u64 << 53) - 1 {
                    return Err(unsafe_at(path, BEYOND_SAFE_INTEGER));
                }
                Value::Number(i as f64)
            } else if let Some(u) = n.as_u64() {
                if u > (1u64 << 53) - 1 {
                    return Err(unsafe_at(path, BEYOND_SAFE_INTEGER));
                }
                Value::Number(u as f64)
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() => Value::Number(f),
                    _ => return Err(unsafe_at(path, NOT_FINITE)),
                }
            }
        }
        serde_json::Value::String(s) => Value::String(JsString::from(s.as_str())),
        serde_json::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(from_serde_at(item, path)?);
                path.truncate(len);
            }
            Value::Array(out)
        }
        serde_json::Value::Object(map) => {
            let mut members = Vec::with_capacity(map.len());
            for (k, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                members.push((JsString::from(k.as_str()), from_serde_at(v, path)?));
                path.truncate(len);
            }
            Value::Object(Object::from_members(members))
        }
    })
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}

impl From<JsString> for Value {
    fn from(s: JsString) -> Self {
        Value::String(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Value::Object(o)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

// ---------------------------------------------------------------------------------
// Canonical writer

/// Appends the canonical serialization of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(*n, out),
        Value::String(s) => write_string(s.as_wtf8(), out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(obj) => write_canonical_object(obj, out),
    }
}

/// Appends the canonical serialization of an object to `out`.
pub fn write_canonical_object(obj: &Object, out: &mut Vec<u8>) {
    if let Some(text) = obj.canonical_text() {
        out.extend_from_slice(text);
        return;
    }
    out.push(b'{');
    for (i, (k, v)) in obj.members().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(k.as_wtf8(), out);
        out.push(b':');
        write_canonical(v, out);
    }
    out.push(b'}');
}

/// Appends a number as JavaScript's `JSON.stringify` writes it (`null` if not finite).
pub fn write_number(n: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(number_text(n, &mut NumberBuf::new()));
}

/// Room to format a number: integers by `itoa`, everything else by `ryu_js`.
struct NumberBuf {
    int: itoa::Buffer,
    float: ryu_js::Buffer,
}

impl NumberBuf {
    fn new() -> Self {
        Self {
            int: itoa::Buffer::new(),
            float: ryu_js::Buffer::new(),
        }
    }
}

/// `n` as `JSON.stringify` writes it, formatted in `buf` when it takes formatting.
fn number_text(n: f64, buf: &mut NumberBuf) -> &[u8] {
    if !n.is_finite() {
        b"null"
    } else if n == 0.0 {
        b"0"
    } else if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
        // JavaScript writes an integer below 1e21 as its plain digits, as `itoa`
        // does; `ryu_js` would get there through the shortest-digits search first.
        // Envelope timestamps and sequence numbers all take this path.
        buf.int.format(n as i64).as_bytes()
    } else {
        buf.float.format_finite(n).as_bytes()
    }
}

/// Appends a quoted string escaped as `JSON.stringify` does (well-formed variant:
/// lone surrogates as `\udxxx`).
pub fn write_string(wtf8: &[u8], out: &mut Vec<u8>) {
    out.reserve(wtf8.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    let mut i = 0;
    loop {
        i = escape_stop(wtf8, i);
        let Some(&b) = wtf8.get(i) else { break };
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0C => Some(b"\\f"),
            0x00..=0x1F => None,
            // 0xED 0xA0..=0xBF starts an encoded surrogate (U+D800..=U+DFFF).
            0xED if wtf8.get(i + 1).is_some_and(|n| *n >= 0xA0) => None,
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&wtf8[run_start..i]);
        match escape {
            Some(e) => {
                out.extend_from_slice(e);
                i += 1;
            }
            None if b < 0x20 => {
                push_u_escape(u32::from(b), out);
                i += 1;
            }
            None => {
                let cp = 0xD000
                    | (u32::from(wtf8[i + 1] & 0x3F) << 6)
                    | u32::from(wtf8.get(i + 2).copied().unwrap_or(0x80) & 0x3F);
                push_u_escape(cp, out);
                i += 3;
            }
        }
        run_start = i;
    }
    out.extend_from_slice(&wtf8[run_start.min(wtf8.len())..]);
    out.push(b'"');
}

fn push_u_escape(unit: u32, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((unit >> shift) & 0xF) as usize]);
    }
}

// ---------------------------------------------------------------------------------
// Parser

/// Why a JSON text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {problem}")]
pub struct ParseError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was wrong.
    pub problem: &'static str,
}

/// Parses a complete JSON text as `JSON.parse` would (with a nesting bound of
/// [`MAX_DEPTH`]).
pub fn parse(text: &[u8]) -> Result<Value, ParseError> {
    // Outside strings only ASCII is valid JSON, and inside them invalid UTF-8 (raw
    // encoded surrogates included) is refused too, so one check of the whole text
    // covers every string; `\u` escapes are the only way a lone surrogate gets in.
    if let Err(e) = std::str::from_utf8(text) {
        return Err(ParseError {
            offset: e.valid_up_to(),
            problem: "invalid UTF-8",
        });
    }
    let mut p = Parser::new(text);
    p.skip_ws();
    let v = p.value(0).map_err(|Fail| p.failure())?;
    p.skip_ws();
    if p.i != p.s.len() {
        let Fail = p.err("trailing characters");
        return Err(p.failure());
    }
    Ok(v)
}

/// Depth from which [`parse_envelope`] keeps objects as text: the envelope is depth
/// 0, `data` depth 1, and a payload object inside `data` depth 2.
const ENVELOPE_TEXT_DEPTH: usize = 2;

/// The envelope's own members, in canonical order: [`ParsedEnvelope::known`] holds
/// each one's value at its index here.
pub(crate) const ENVELOPE_KEYS: [&str; 7] = ["data", "from", "id", "to", "ts", "type", "v"];

/// A JSON text whose top level is an object, read member by member into fixed slots:
/// no object is built for the envelope itself and no key is looked up afterwards.
#[derive(Debug)]
pub(crate) struct ParsedEnvelope {
    /// The last value of each of [`ENVELOPE_KEYS`], by index.
    pub known: [Option<Value>; 7],
    /// Every other member but `sig`, in arrival order (duplicates included; usually
    /// empty).
    pub extra: Members,
    /// The last `sig` member's value.
    pub sig: Option<Value>,
    /// `Some(n)` when `text[..n]` followed by `}` is exactly the canonical text of
    /// the members other than `sig`: the text was canonical apart from a final `sig`
    /// member. A verifier can then MAC the received bytes instead of writing the
    /// canonical text again.
    pub canonical_prefix: Option<usize>,
}

/// Parses a JSON text that must be an object (`None` for any other valid JSON), as
/// [`parse`] does, and notices whether it is already canonical: every frame link
/// writes is, so its signature can be checked on the bytes as received.
pub(crate) fn parse_envelope(text: &[u8]) -> Result<Option<ParsedEnvelope>, ParseError> {
    if let Err(e) = std::str::from_utf8(text) {
        return Err(ParseError {
            offset: e.valid_up_to(),
            problem: "invalid UTF-8",
        });
    }
    let mut p = Parser::new(text);
    // Objects inside `data`'s members (payloads, RPC data and results) stay text
    // until read: the hub forwards them unread, and a receiver may never look.
    p.text_from_depth = ENVELOPE_TEXT_DEPTH;
    p.skip_ws();
    if p.peek() != Some(b'{') {
        p.value(0).map_err(|Fail| p.failure())?;
        p.skip_ws();
        if p.i != p.s.len() {
            let Fail = p.err("trailing characters");
            return Err(p.failure());
        }
        return Ok(None);
    }
    let mut known: [Option<Value>; 7] = Default::default();
    let mut extra = Members::new();
    let mut sig = None;
    // Where the last `sig` member begins (its comma), whether it was the only one and
    // came last, and whether the keys before it were strictly increasing.
    let mut sig_at = None;
    let mut sigs = 0;
    let mut sig_last = false;
    let mut sorted = true;
    let mut previous: Option<Cow<'_, [u8]>> = None;
    p.list(0, b'}', |p, member_start| {
        let key = p.key_text()?;
        let value = p.value(1)?;
        if *key == *b"sig" {
            sig = Some(value);
            sig_at = Some(member_start);
            sigs += 1;
            sig_last = true;
            return Ok(());
        }
        sig_last = false;
        if sorted
            && previous
                .as_ref()
                .is_some_and(|prev| utf16_cmp(prev, &key) != Ordering::Less)
        {
            sorted = false;
        }
        match ENVELOPE_KEYS.iter().position(|k| *key == *k.as_bytes()) {
            Some(slot) => known[slot] = Some(value),
            None => extra.push((JsString::from_wtf8(key.to_vec()), value)),
        }
        previous = Some(key);
        Ok(())
    })
    .map_err(|Fail| p.failure())?;
    p.skip_ws();
    if p.i != p.s.len() {
        let Fail = p.err("trailing characters");
        return Err(p.failure());
    }
    // Canonical apart from `sig`: a single `sig` came last, the members before it are
    // in strictly increasing order, and nothing was written in a non-canonical form
    // (checked as the parser went).
    let canonical_prefix = sig_at.filter(|_| p.canonical && sigs == 1 && sig_last && sorted);
    Ok(Some(ParsedEnvelope {
        known,
        extra,
        sig,
        canonical_prefix,
    }))
}

/// A reader over JSON text that the parser has already checked (an object's
/// [`Object::plain_canonical_text`]), one token at a time: the serde bridge reads
/// payloads through it without building a [`Value`] for them. Text that is somehow
/// not valid makes a read return `None` (or `false`), never panic.
pub(crate) struct Cursor<'a> {
    p: Parser<'a>,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`.
    pub(crate) fn new(text: &'a [u8]) -> Self {
        Cursor {
            p: Parser::new(text),
        }
    }

    /// The next byte (the text has no whitespace).
    pub(crate) fn peek(&self) -> Option<u8> {
        self.p.peek()
    }

    /// Steps over `byte` if it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        let next = self.p.peek() == Some(byte);
        if next {
            self.p.i += 1;
        }
        next
    }

    /// Where the cursor is, for [`Cursor::rewind`].
    pub(crate) fn position(&self) -> usize {
        self.p.i
    }

    /// Goes back to a [`Cursor::position`].
    pub(crate) fn rewind(&mut self, position: usize) {
        self.p.i = position;
    }

    /// Reads a string (the cursor is on its opening quote): borrowed from the text
    /// when it has no escapes, with lone surrogates replaced by U+FFFD otherwise.
    pub(crate) fn string(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        let s = self.p.s;
        let start = self.p.i + 1;
        let stop = string_stop(s, start);
        if s.get(stop) == Some(&b'"')
            && let Ok(plain) = std::str::from_utf8(&s[start..stop])
        {
            self.p.i = stop + 1;
            return Some(std::borrow::Cow::Borrowed(plain));
        }
        let js = self.p.string().ok()?;
        Some(std::borrow::Cow::Owned(js.to_string_lossy()))
    }

    /// Reads a number as [`parse`] reads it.
    pub(crate) fn number(&mut self) -> Option<f64> {
        match self.p.number() {
            Ok(Value::Number(n)) => Some(n),
            _ => None,
        }
    }

    /// Reads `null`, `true` or `false`.
    pub(crate) fn literal(&mut self) -> Option<Value> {
        match self.p.peek()? {
            b'n' => self.p.expect_lit(b"null", Value::Null),
            b't' => self.p.expect_lit(b"true", Value::Bool(true)),
            b'f' => self.p.expect_lit(b"false", Value::Bool(false)),
            _ => return None,
        }
        .ok()
    }

    /// Steps over one whole value.
    pub(crate) fn skip_value(&mut self) -> bool {
        self.p.skip_value(0).is_ok()
    }

    /// Reads one whole value.
    pub(crate) fn value(&mut self) -> Option<Value> {
        self.p.value(0).ok()
    }
}

/// An object's members in arrival order.
type Members = Vec<(JsString, Value)>;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// Whether everything parsed so far is written as the canonical writer would
    /// write it (no whitespace, sorted keys, canonical escapes and numbers).
    canonical: bool,
    /// Members of the objects being parsed, innermost last: each object's members
    /// move out in one exact-size allocation when it closes, instead of growing a
    /// vector of its own push by push.
    members: Members,
    /// The same for array items.
    items: Vec<Value>,
    /// Objects this deep or deeper are checked and kept as text (see [`Object`]);
    /// `usize::MAX` parses everything.
    text_from_depth: usize,
    /// Why parsing stopped. Kept here rather than in each `Result`, so the parsing
    /// functions return values through registers-sized results (moving a value
    /// beside a large error type cost a store-forwarding stall per value).
    failure: std::cell::Cell<Option<ParseError>>,
}

/// A parsing function failed; the reason is in [`Parser::failure`].
struct Fail;

impl<'a> Parser<'a> {
    fn new(s: &'a [u8]) -> Self {
        Parser {
            s,
            i: 0,
            canonical: true,
            members: Vec::new(),
            items: Vec::new(),
            text_from_depth: usize::MAX,
            failure: std::cell::Cell::new(None),
        }
    }

    /// Records why parsing stopped; the caller returns the [`Fail`] marker.
    fn err(&self, problem: &'static str) -> Fail {
        self.failure.set(Some(ParseError {
            offset: self.i,
            problem,
        }));
        Fail
    }

    /// The recorded reason for a [`Fail`].
    fn failure(&self) -> ParseError {
        self.failure.take().unwrap_or(ParseError {
            offset: self.i,
            problem: "invalid JSON",
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
            self.canonical = false;
        }
    }

    fn expect_lit(&mut self, lit: &[u8], v: Value) -> Result<Value, Fail> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Fail> {
        match self.peek() {
            None => Err(self.err("unexpected end")),
            Some(b'n') => self.expect_lit(b"null", Value::Null),
            Some(b't') => self.expect_lit(b"true", Value::Bool(true)),
            Some(b'f') => self.expect_lit(b"false", Value::Bool(false)),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'[') => {
                let base = self.items.len();
                self.list(depth, b']', |p, _| {
                    let item = p.value(depth + 1)?;
                    p.items.push(item);
                    Ok(())
                })?;
                Ok(Value::Array(self.items.drain(base..).collect()))
            }
            Some(b'{') if depth >= self.text_from_depth => {
                let start = self.i;
                let outer = std::mem::replace(&mut self.canonical, true);
                self.skip_object(depth)?;
                let canonical = self.canonical;
                self.canonical = outer && canonical;
                Ok(Value::Object(Object::from_text(
                    &self.s[start..self.i],
                    canonical,
                )))
            }
            Some(b'{') => {
                let members = self.object_members(depth)?;
                let (object, sorted) = Object::from_parsed(members);
                if !sorted {
                    self.canonical = false;
                }
                Ok(Value::Object(object))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    /// Parses an object's members in arrival order (the cursor is on `{`).
    fn object_members(&mut self, depth: usize) -> Result<Members, Fail> {
        let base = self.members.len();
        self.list(depth, b'}', |p, _| {
            let k = p.key()?;
            let v = p.value(depth + 1)?;
            p.members.push((k, v));
            Ok(())
        })?;
        Ok(self.members.drain(base..).collect())
    }

    /// Walks an array or object (the cursor is on its opening bracket, `close` is the
    /// closing one) within the nesting bound: `item` reads each element, called with
    /// the cursor on it and the offset where the element begins in the text (its
    /// comma, or just past the opening bracket for the first).
    fn list(
        &mut self,
        depth: usize,
        close: u8,
        mut item: impl FnMut(&mut Self, usize) -> Result<(), Fail>,
    ) -> Result<(), Fail> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.i += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(());
        }
        let mut start = self.i;
        loop {
            self.skip_ws();
            item(self, start)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    start = self.i;
                    self.i += 1;
                }
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(());
                }
                _ if close == b']' => return Err(self.err("expected , or ]")),
                _ => return Err(self.err("expected , or }")),
            }
        }
    }

    /// An object key and its colon; the cursor ends on the value.
    fn key(&mut self) -> Result<JsString, Fail> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected key"));
        }
        let k = self.string()?;
        self.colon()?;
        Ok(k)
    }

    /// [`Parser::key`] as the key's text, borrowed when it has no escapes (most keys):
    /// a key that is only compared then builds no string.
    fn key_text(&mut self) -> Result<Cow<'a, [u8]>, Fail> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected key"));
        }
        let text = self.s;
        let start = self.i + 1;
        let end = string_stop(text, start);
        let key = if text.get(end) == Some(&b'"') {
            self.i = end + 1;
            Cow::Borrowed(&text[start..end])
        } else {
            // Escapes, a control character or no end: read (or refused) as any string.
            Cow::Owned(self.string()?.as_wtf8().to_vec())
        };
        self.colon()?;
        Ok(key)
    }

    /// The colon after a key, with the whitespace around it.
    fn colon(&mut self) -> Result<(), Fail> {
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.err("expected :"));
        }
        self.i += 1;
        self.skip_ws();
        Ok(())
    }

    /// Checks a value as [`Parser::value`] would parse it, building nothing.
    fn skip_value(&mut self, depth: usize) -> Result<(), Fail> {
        match self.peek() {
            Some(b'"') => self.skip_string().map(|_| ()),
            Some(b'{') => self.skip_object(depth),
            Some(b'[') => self.list(depth, b']', |p, _| p.skip_value(depth + 1)),
            // Numbers and literals build no heap value: read them as usual.
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            _ => self.value(depth).map(|_| ()),
        }
    }

    /// Checks an object (the cursor is on `{`) as [`Parser::object_members`] would
    /// parse it, building nothing; notes whether its keys are in canonical order.
    fn skip_object(&mut self, depth: usize) -> Result<(), Fail> {
        // The previous key's text, when it had no escapes (else order is not judged
        // here and the object counts as not canonical).
        let mut previous: Option<(usize, usize)> = None;
        self.list(depth, b'}', |p, _| {
            if p.peek() != Some(b'"') {
                return Err(p.err("expected key"));
            }
            let key_start = p.i + 1;
            let plain = p.skip_string()?;
            let key = (key_start, p.i - 1);
            if p.canonical {
                let in_order = plain
                    && previous.is_none_or(|(a, b)| {
                        utf16_cmp(&p.s[a..b], &p.s[key.0..key.1]) == Ordering::Less
                    });
                if !in_order {
                    p.canonical = false;
                }
            }
            previous = Some(key);
            p.colon()?;
            p.skip_value(depth + 1)
        })
    }

    /// Checks a string (the cursor is on its opening quote) as [`Parser::string`]
    /// would read it, building nothing. True if it had no escapes.
    fn skip_string(&mut self) -> Result<bool, Fail> {
        self.i = string_stop(self.s, self.i + 1);
        if self.peek() == Some(b'"') {
            self.i += 1;
            return Ok(true);
        }
        self.skip_escaped_string().map(|()| false)
    }

    /// The rest of a string [`Parser::skip_string`] found not plain (the cursor is on
    /// the first byte the plain run did not take). Out of line, like
    /// [`Parser::escaped_string`].
    #[cold]
    #[inline(never)]
    fn skip_escaped_string(&mut self) -> Result<(), Fail> {
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'/' => self.canonical = false,
                        b'u' => {
                            self.unicode_escape()?;
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                _ => return Err(self.err("control character in string")),
            }
            self.i = string_stop(self.s, self.i);
        }
    }

    fn number(&mut self) -> Result<Value, Fail> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        // The integer part, its value gathered on the way (used only while it has at
        // most 15 digits, so wrapping never matters).
        let int_start = self.i;
        let mut magnitude = 0u64;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while let Some(&d @ b'0'..=b'9') = self.s.get(self.i) {
                    magnitude = magnitude.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                    self.i += 1;
                }
            }
            _ => return Err(self.err("invalid number")),
        }
        // Integers of up to 15 digits (most numbers on the wire: counters, timestamps)
        // are exact in a double and written back digit for digit.
        if self.i - int_start <= 15 && !matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            if negative && magnitude == 0 {
                self.canonical = false;
                return Ok(Value::Number(-0.0));
            }
            let n = magnitude as f64;
            return Ok(Value::Number(if negative { -n } else { n }));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err("invalid number"));
            }
            self.digits();
        }
        // The lexeme is ASCII by construction.
        let lexeme = &self.s[start..self.i];
        let text = std::str::from_utf8(lexeme).map_err(|_| self.err("number"))?;
        // std's parser rounds to nearest like JS and overflows to infinity.
        let n = text
            .parse::<f64>()
            .map_err(|_| self.err("invalid number"))?;
        if self.canonical && !is_canonical_number(lexeme, n) {
            self.canonical = false;
        }
        Ok(Value::Number(n))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    /// Reads the rest of a `\uXXXX` escape (the cursor is past the `u`), joining a
    /// surrogate pair written as two escapes; returns the code point (a lone
    /// surrogate stays one). Notes whether the escape is the one `JSON.stringify`
    /// would write: `\u` only for control characters without a short form and for
    /// lone surrogates, in lowercase hex.
    fn unicode_escape(&mut self) -> Result<u32, Fail> {
        let escape = self.i;
        let unit = self.hex4()?;
        let mut cp = unit;
        if (0xD800..0xDC00).contains(&unit) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                cp = 0x1_0000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
            } else {
                self.i = save;
            }
        }
        let needed = (cp < 0x20 && !matches!(cp, 0x08 | 0x09 | 0x0A | 0x0C | 0x0D))
            || (0xD800..0xE000).contains(&cp);
        if !needed
            || self.s[escape..escape + 4]
                .iter()
                .any(u8::is_ascii_uppercase)
        {
            self.canonical = false;
        }
        Ok(cp)
    }

    fn hex4(&mut self) -> Result<u32, Fail> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape")),
            };
            n = (n << 4) | u32::from(d);
            self.i += 1;
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<JsString, Fail> {
        self.i += 1; // opening quote
        let start = self.i;
        // Fast path: no escapes.
        self.i = string_stop(self.s, self.i);
        match self.peek() {
            Some(b'"') => {
                let end = self.i;
                self.i += 1;
                Ok(JsString::from_text(self.s, start, end))
            }
            Some(0x00..=0x1F) => Err(self.err("control character in string")),
            // A backslash, or the end of the text: the slow path reads on.
            _ => self.escaped_string(start),
        }
    }

    /// The rest of a string that has escapes (or no end), from its first character at
    /// `start` (the cursor is on the first byte the plain run did not take). Kept out
    /// of [`Parser::string`], so the plain strings that make up most frames run
    /// through a small function.
    #[cold]
    #[inline(never)]
    fn escaped_string(&mut self, start: usize) -> Result<JsString, Fail> {
        let mut buf = self.s[start..self.i].to_vec();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(JsString::from_wtf8(buf));
                }
                b'\\' => {
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => buf.push(b'"'),
                        b'\\' => buf.push(b'\\'),
                        b'/' => {
                            self.canonical = false;
                            buf.push(b'/');
                        }
                        b'b' => buf.push(0x08),
                        b'f' => buf.push(0x0C),
                        b'n' => buf.push(b'\n'),
                        b'r' => buf.push(b'\r'),
                        b't' => buf.push(b'\t'),
                        b'u' => {
                            let cp = self.unicode_escape()?;
                            push_wtf8(cp, &mut buf);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                0x00..=0x1F => return Err(self.err("control character in string")),
                _ => {
                    buf.push(b);
                    self.i += 1;
                }
            }
        }
    }
}

/// The first offset from `i` holding a byte that ends a plain run inside a string
/// being read (`"`, `\\` or a control character), or `s.len()`.
fn string_stop(s: &[u8], i: usize) -> usize {
    first_stop::<false>(s, i)
}

/// [`string_stop`] for a string being written, which also stops at `0xED`, the lead
/// byte of an encoded surrogate (and of U+D000..=U+D7FF, which the writer passes on).
fn escape_stop(s: &[u8], i: usize) -> usize {
    first_stop::<true>(s, i)
}

/// Reads eight bytes at a time: strings on the wire are mostly long plain runs (ids,
/// signatures, payload text).
fn first_stop<const LEAD_ED: bool>(s: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    /// High bit set in each byte of `x` that is zero. A borrow can also mark a byte
    /// above a true match, never one below it, so the lowest mark is exact.
    fn zero_bytes(x: u64) -> u64 {
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    while let Some(chunk) = s.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Bytes below 0x20 (a byte of 0x80 or more never counts, as `!x` clears it),
        // then bytes equal to `"` and to `\\`.
        let mut stops = (x.wrapping_sub(ONES * 0x20) & !x & HIGHS)
            | zero_bytes(x ^ (ONES * u64::from(b'"')))
            | zero_bytes(x ^ (ONES * u64::from(b'\\')));
        if LEAD_ED {
            stops |= zero_bytes(x ^ (ONES * 0xED));
        }
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = s.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 || (LEAD_ED && b == 0xED) {
            return i;
        }
        i += 1;
    }
    i
}

/// Whether `lexeme`, which parsed to `n` and is not a short integer, is how
/// `JSON.stringify` writes `n`.
fn is_canonical_number(lexeme: &[u8], n: f64) -> bool {
    // A non-finite number is written `null`, never its lexeme.
    number_text(n, &mut NumberBuf::new()) == lexeme
}

fn push_wtf8(cp: u32, out: &mut Vec<u8>) {
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => {
            out.push(0xC0 | (cp >> 6) as u8);
            out.push(0x80 | (cp & 0x3F) as u8);
        }
        0x800..=0xFFFF => {
            out.push(0xE0 | (cp >> 12) as u8);
            out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
            out.push(0x80 | (cp & 0x3F) as u8);
        }
        _ => {
            out.push(0xF0 | (cp >> 18) as u8);
            out.push(0x80 | ((cp >> 12) & 0x3F) as u8);
            out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
            out.push(0x80 | (cp & 0x3F) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(parse(s.as_bytes()).expect("parses").to_canonical()).expect("utf8")
    }

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(canon("-0"), "0");
        assert_eq!(canon("1e21"), "1e+21");
        assert_eq!(canon("1e-7"), "1e-7");
        assert_eq!(canon("1E2"), "100");
        assert_eq!(canon("1e400"), "null");
        assert_eq!(canon("1e-400"), "0");
        assert_eq!(canon("-9007199254740991"), "-9007199254740991");
        assert_eq!(canon("9007199254740993"), "9007199254740992");
        assert_eq!(canon("123456789012345678901"), "123456789012345680000");
    }

    /// Integers take a path of their own (`itoa`); it must agree with `ryu_js`.
    #[test]
    fn integers_print_as_ryu_js_prints_them() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..100_000u64 {
            // xorshift: integers of every magnitude up to 2^53, both signs.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let magnitude = (x >> 11) >> (i % 53);
            let n = if x & 1 == 0 {
                magnitude as f64
            } else {
                -(magnitude as f64)
            };
            if n == 0.0 {
                continue;
            }
            let mut buf = NumberBuf::new();
            let ours = number_text(n, &mut buf).to_vec();
            assert_eq!(
                ours,
                ryu_js::Buffer::new().format_finite(n).as_bytes(),
                "{n}"
            );
        }
    }

    /// The word-at-a-time scan stops exactly where a byte-by-byte scan would.
    /// Integers are read in one pass; every spelling still parses to std's value and
    /// counts as canonical exactly when `JSON.stringify` would write it so.
    #[test]
    fn numbers_parse_like_std_and_know_their_canonical_spelling() {
        for (lit, canonical) in [
            ("0", true),
            ("-0", false),
            ("7", true),
            ("-7", true),
            ("417", true),
            ("999999999999999", true),
            ("-999999999999999", true),
            ("1000000000000000", true),
            ("9007199254740993", false),
            ("100000000000000000000", true),
            ("123456789012345678901", false),
            ("1234567890123456789012", false),
            ("0.5", true),
            ("-0.0", false),
            ("1e3", false),
            ("10E-1", false),
            ("0e0", false),
        ] {
            let Ok(Value::Number(n)) = parse(lit.as_bytes()) else {
                panic!("{lit} does not parse to a number");
            };
            let want: f64 = lit.parse().expect("std parses it");
            assert_eq!(n.to_bits(), want.to_bits(), "{lit}");
            let frame = format!(r#"{{"id":"x","ts":{lit},"sig":"s"}}"#);
            let parsed = parse_envelope(frame.as_bytes())
                .expect("parses")
                .expect("an object");
            assert_eq!(parsed.canonical_prefix.is_some(), canonical, "{lit}");
        }
        for bad in ["-", "01", "-01", "1.", "1e", "--1", "1.e3", "-a"] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    /// Strings inside a payload kept as text are checked without being built: their
    /// escapes are judged (canonical or not, valid or not) exactly as when they are
    /// read into values.
    #[test]
    fn skipped_strings_judge_escapes_like_read_ones() {
        for (body, canonical) in [
            ("plain", true),
            (r#"a\"b"#, true),
            (r#"a\\b"#, true),
            (r#"a\nb\t"#, true),
            (r#"\ud800"#, true),
            (r#"\u0001"#, true),
            (r#"a\/b"#, false),
            (r#"\u00e9"#, false),
            (r#"\u000a"#, false),
            (r#"\u001F"#, false),
        ] {
            for data in [
                format!(r#"{{"p":{{"k":"{body}"}}}}"#),
                format!(r#"{{"k":"{body}"}}"#),
            ] {
                let text = format!(r#"{{"data":{data},"id":"x","sig":"s"}}"#);
                let parsed = parse_envelope(text.as_bytes())
                    .unwrap_or_else(|e| panic!("{text}: {e:?}"))
                    .expect("an object");
                assert_eq!(parsed.canonical_prefix.is_some(), canonical, "{text}");
            }
        }
        for body in [r#"\x"#, "\u{1}", r#"\u12"#, r#"ab\"#] {
            for data in [
                format!(r#"{{"p":{{"k":"{body}"}}}}"#),
                format!(r#"{{"k":"{body}"}}"#),
            ] {
                let text = format!(r#"{{"data":{data},"id":"x","sig":"s"}}"#);
                assert!(parse_envelope(text.as_bytes()).is_err(), "{text}");
            }
        }
    }

    #[test]
    fn string_stop_agrees_with_a_byte_scan() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Mostly plain text, with stops and bytes on either side of each stop value.
        let palette = [
            b'a', b'"', b'\\', 0xED, 0xEC, 0xEE, 0x00, 0x1F, 0x20, 0x21, 0x5B, 0x5D, 0x7F, 0x80,
            0xA0, 0xFF,
        ];
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        palette[(r >> 8) as usize % palette.len()]
                    } else {
                        b'a' + (r >> 8) as u8 % 26
                    }
                })
                .collect();
            for from in 0..=len {
                let naive = (from..len)
                    .find(|&i| matches!(text[i], b'"' | b'\\' | 0x00..=0x1F))
                    .unwrap_or(len);
                assert_eq!(string_stop(&text, from), naive, "{text:?} from {from}");
                let naive = (from..len)
                    .find(|&i| matches!(text[i], b'"' | b'\\' | 0x00..=0x1F | 0xED))
                    .unwrap_or(len);
                assert_eq!(escape_stop(&text, from), naive, "{text:?} from {from}");
            }
        }
    }

    /// Copies of an object held as text share it; changing one copy leaves the
    /// others as they were, read or not.
    #[test]
    fn text_objects_are_shared_until_changed() {
        let text = br#"{"a":1,"b":"x"}"#;
        let original = Object::from_text(text, true);
        let read = original.clone();
        assert_eq!(read.get("b"), Some(&Value::from("x")));
        let mut changed = read.clone();
        changed.insert("c", Value::Bool(true));
        assert_eq!(changed.len(), 3);
        assert_eq!(original.len(), 2);
        assert_eq!(read.len(), 2);
        assert_eq!(original.canonical_text(), Some(&text[..]));
        assert_eq!(read.canonical_text(), Some(&text[..]));
        assert_eq!(changed.canonical_text(), None);
        let mut alone = Object::from_text(text, true);
        assert_eq!(alone.remove("a"), Some(Value::Number(1.0)));
        assert_eq!(Value::Object(alone).to_canonical(), br#"{"b":"x"}"#);
    }

    /// Canonical text is read member by member unless a character beyond the BMP or
    /// an escaped surrogate could make byte order differ from UTF-16 order; other
    /// escapes (an escaped backslash before a `u` included) leave it plain.
    #[test]
    fn plain_text_is_judged_like_the_byte_walk() {
        let plain = |text: &str, canonical| {
            Object::from_text(text.as_bytes(), canonical)
                .plain_canonical_text()
                .is_some()
        };
        assert!(plain(r#"{"a":1,"b":"x"}"#, true));
        assert!(!plain(r#"{"a":1,"b":"x"}"#, false));
        assert!(plain(r#"{"a":"\\ud800","b":"\\"}"#, true));
        assert!(plain(r#"{"a":"\n\"\\u"}"#, true));
        assert!(plain("{\"a\":\"é～\"}", true));
        assert!(!plain(r#"{"a":"\ud800"}"#, true));
        assert!(!plain(r#"{"a":"\uDC00"}"#, true));
        assert!(!plain("{\"a\":\"😀\"}", true));
        assert!(!plain("{\"😀\":1,\"a\":\"\\n\"}", true));
        assert!(plain("{}", true));
    }

    #[test]
    fn keys_sort_by_utf16_and_last_duplicate_wins() {
        assert_eq!(canon(r#"{"b":1,"a":2,"b":3}"#), r#"{"a":2,"b":3}"#);
        assert_eq!(canon(r#"{"a":1,"a":2,"b":0,"a":3}"#), r#"{"a":3,"b":0}"#);
        assert_eq!(canon(r#"{"a":1,"b":2}"#), r#"{"a":1,"b":2}"#);
        assert_eq!(canon("{\"～\":1,\"😀\":2}"), "{\"😀\":2,\"～\":1}");
        assert_eq!(canon(r#"{"2":1,"10":1,"1":1}"#), r#"{"1":1,"10":1,"2":1}"#);
    }

    #[test]
    fn lone_surrogates_survive() {
        assert_eq!(canon(r#""\ud800x""#), r#""\ud800x""#);
        assert_eq!(canon(r#""\uDFFF""#), r#""\udfff""#);
        assert_eq!(canon(r#""\ud83d\ude00""#), "\"😀\"");
        assert_eq!(canon(r#""\ud800\ud800""#), r#""\ud800\ud800""#);
    }

    #[test]
    fn escapes_follow_json_stringify() {
        assert_eq!(
            canon(r#""\u0001\/\u2028\u007f""#),
            "\"\\u0001/\u{2028}\u{7f}\""
        );
        assert_eq!(canon(r#""\b\f\n\r\t""#), r#""\b\f\n\r\t""#);
    }

    #[test]
    fn rejects_what_json_parse_rejects() {
        for bad in [
            "",
            "01",
            "1.",
            "[1,]",
            "{\"a\" 1}",
            "\"\u{1}\"",
            "nul",
            "1 2",
            "-",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_invalid_utf8_even_where_it_would_decode_to_a_surrogate() {
        for bad in [
            &b"\"\xff\""[..],
            b"\"\xed\xa0\x80\"",
            b"\"\\n\xed\xa0\x80\"",
            b"\"\\ud800\xed\xb0\x80\"",
            b"[1,\xc3]",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(canon("\"\\né\""), "\"\\né\"");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
    }
}
