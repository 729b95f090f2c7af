//! A serde serializer that writes a payload object's canonical text directly, for
//! [`to_value`](super::to_value): no member, string or object is built on the way, and
//! the core then copies the text into the frame as it is.
//!
//! It covers what payloads are made of: structs and maps with string-like keys,
//! sequences, strings, safe integers, finite floats, options and enums. Anything else
//! (a number beyond ±(2^53 − 1), `-0.0`, a key serde_json would refuse, serde_json's
//! own `RawValue`, nesting near the parser's bound, any error a `Serialize` impl
//! raises) makes it give up, and `to_value` takes the tree-building route, which gives
//! that route's exact result or error.

use super::json::{self, MAX_DEPTH, MAX_SAFE_INTEGER, Object, utf16_cmp};
use super::serde_bridge::{KeySer, SERDE_JSON_PRIVATE};
use serde::ser::{self, Serialize};
use std::cell::RefCell;
use std::fmt::{self, Display};
use std::ops::Range;

/// Objects nested deeper than this are left to the tree-building route: the text must
/// parse again within [`MAX_DEPTH`] wherever it ends up inside a frame.
const DEPTH_LIMIT: usize = MAX_DEPTH - 8;

/// Largest buffer kept for the next payload, in bytes.
const KEPT_CAPACITY: usize = 64 * 1024;

/// The serializer gave up; the caller takes the other route.
#[derive(Debug)]
pub(super) struct GiveUp;

impl Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not written directly")
    }
}

impl std::error::Error for GiveUp {}

impl ser::Error for GiveUp {
    fn custom<T: Display>(_msg: T) -> Self {
        GiveUp
    }
}

/// `v` as an object held as its canonical text, or `GiveUp` if `v` is not an object or
/// holds anything the direct route leaves to the other (see the module docs).
pub(super) fn to_canonical_object<T: Serialize + ?Sized>(v: &T) -> Result<Object, GiveUp> {
    thread_local! {
        /// Buffers kept from call to call: writing then allocates nothing but the
        /// finished text.
        static WRITER: RefCell<Writer> = RefCell::new(Writer::default());
    }
    WRITER.with(|writer| match writer.try_borrow_mut() {
        Ok(mut w) => w.write(v),
        // A `Serialize` impl that serializes something else inside: fresh buffers.
        Err(_) => Writer::default().write(v),
    })
}

/// One member of an object being written: its raw key (in [`Writer::keys`]) and its
/// `"key":value` text (in [`Writer::out`]).
struct Member {
    key: Range<usize>,
    text: Range<usize>,
}

#[derive(Default)]
struct Writer {
    out: Vec<u8>,
    /// Members of the objects being written, innermost last.
    members: Vec<Member>,
    /// Their raw keys, for sorting.
    keys: Vec<u8>,
    /// Room to reorder an object's members.
    scratch: Vec<u8>,
    /// Objects and arrays open around the value being written.
    depth: usize,
}

impl Writer {
    /// Writes `v` (see [`to_canonical_object`]), leaving the buffers empty.
    fn write<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<Object, GiveUp> {
        self.out.clear();
        self.members.clear();
        self.keys.clear();
        self.depth = 0;
        let written = v.serialize(&mut *self);
        let object = written.map(|()| Object::from_safe_canonical_text(&self.out));
        // One huge payload must not pin its buffer for the life of the thread.
        if self.out.capacity() > KEPT_CAPACITY {
            self.out = Vec::new();
            self.scratch = Vec::new();
        }
        object
    }

    /// Values outside any object: only objects are written directly.
    fn at_top(&self) -> Result<(), GiveUp> {
        if self.depth == 0 { Err(GiveUp) } else { Ok(()) }
    }

    fn open(&mut self, bracket: u8) -> Result<(), GiveUp> {
        if self.depth >= DEPTH_LIMIT {
            return Err(GiveUp);
        }
        self.depth += 1;
        self.out.push(bracket);
        Ok(())
    }

    fn begin_object(&mut self) -> Result<ObjectWriter<'_>, GiveUp> {
        self.open(b'{')?;
        Ok(ObjectWriter {
            start: self.out.len() - 1,
            members: self.members.len(),
            keys: self.keys.len(),
            w: self,
        })
    }

    fn begin_array(&mut self) -> Result<ArrayWriter<'_>, GiveUp> {
        self.at_top()?;
        self.open(b'[')?;
        Ok(ArrayWriter {
            first: true,
            w: self,
        })
    }

    fn number(&mut self, n: f64) -> Result<(), GiveUp> {
        self.at_top()?;
        json::write_number(n, &mut self.out);
        Ok(())
    }

    fn integer(&mut self, magnitude: u64, n: f64) -> Result<(), GiveUp> {
        if magnitude > MAX_SAFE_INTEGER as u64 {
            return Err(GiveUp);
        }
        self.number(n)
    }

    fn string(&mut self, s: &str) -> Result<(), GiveUp> {
        self.at_top()?;
        json::write_string(s.as_bytes(), &mut self.out);
        Ok(())
    }

    fn literal(&mut self, text: &[u8]) -> Result<(), GiveUp> {
        self.at_top()?;
        self.out.extend_from_slice(text);
        Ok(())
    }

    /// Starts `{"variant":` for an externally tagged enum variant with content.
    fn begin_variant(&mut self, variant: &str) -> Result<(), GiveUp> {
        self.open(b'{')?;
        json::write_string(variant.as_bytes(), &mut self.out);
        self.out.push(b':');
        Ok(())
    }

    fn end_variant(&mut self) {
        self.out.push(b'}');
        self.depth -= 1;
    }
}

/// An object being written: members go out in the order they come, and are put in
/// canonical order (a later duplicate key winning) when the object ends.
struct ObjectWriter<'w> {
    w: &'w mut Writer,
    /// Where the object's `{` is.
    start: usize,
    /// Where its members begin in [`Writer::members`] and [`Writer::keys`].
    members: usize,
    keys: usize,
}

impl<'w> ObjectWriter<'w> {
    fn member<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), GiveUp> {
        let w = &mut *self.w;
        let key_start = w.keys.len();
        w.keys.extend_from_slice(key.as_bytes());
        if w.members.len() > self.members {
            w.out.push(b',');
        }
        let text_start = w.out.len();
        json::write_string(key.as_bytes(), &mut w.out);
        w.out.push(b':');
        value.serialize(&mut *w)?;
        w.members.push(Member {
            key: key_start..w.keys.len(),
            text: text_start..w.out.len(),
        });
        Ok(())
    }

    /// Closes the object; hands the writer back for what encloses it.
    fn end(self) -> &'w mut Writer {
        let w = self.w;
        let members = &mut w.members[self.members..];
        let keys = &w.keys;
        let in_order = members
            .windows(2)
            .all(|pair| utf16_cmp(&keys[pair[0].key.clone()], &keys[pair[1].key.clone()]).is_lt());
        if !in_order {
            // Stable, so duplicates stay in arrival order; the last of each run wins.
            members.sort_by(|a, b| utf16_cmp(&keys[a.key.clone()], &keys[b.key.clone()]));
            w.scratch.clear();
            w.scratch.extend_from_slice(&w.out[self.start + 1..]);
            w.out.truncate(self.start + 1);
            let base = self.start + 1;
            let mut first = true;
            for (i, m) in members.iter().enumerate() {
                let superseded = members
                    .get(i + 1)
                    .is_some_and(|next| keys[next.key.clone()] == keys[m.key.clone()]);
                if superseded {
                    continue;
                }
                if !first {
                    w.out.push(b',');
                }
                first = false;
                w.out
                    .extend_from_slice(&w.scratch[m.text.start - base..m.text.end - base]);
            }
        }
        w.out.push(b'}');
        w.members.truncate(self.members);
        w.keys.truncate(self.keys);
        w.depth -= 1;
        w
    }
}

struct ArrayWriter<'w> {
    w: &'w mut Writer,
    first: bool,
}

impl<'w> ArrayWriter<'w> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        if !self.first {
            self.w.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.w)
    }

    /// Closes the array; hands the writer back for what encloses it.
    fn end(self) -> &'w mut Writer {
        self.w.out.push(b']');
        self.w.depth -= 1;
        self.w
    }
}

impl<'w> ser::Serializer for &'w mut Writer {
    type Ok = ();
    type Error = GiveUp;
    type SerializeSeq = ArrayWriter<'w>;
    type SerializeTuple = ArrayWriter<'w>;
    type SerializeTupleStruct = ArrayWriter<'w>;
    type SerializeTupleVariant = ArrayWriter<'w>;
    type SerializeMap = MapWriter<'w>;
    type SerializeStruct = ObjectWriter<'w>;
    type SerializeStructVariant = ObjectWriter<'w>;

    fn serialize_bool(self, v: bool) -> Result<(), GiveUp> {
        self.literal(if v { b"true" } else { b"false" })
    }

    fn serialize_i8(self, v: i8) -> Result<(), GiveUp> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<(), GiveUp> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<(), GiveUp> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<(), GiveUp> {
        self.integer(v.unsigned_abs(), v as f64)
    }

    fn serialize_i128(self, v: i128) -> Result<(), GiveUp> {
        let v = i64::try_from(v).map_err(|_| GiveUp)?;
        self.serialize_i64(v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), GiveUp> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), GiveUp> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), GiveUp> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<(), GiveUp> {
        self.integer(v, v as f64)
    }

    fn serialize_u128(self, v: u128) -> Result<(), GiveUp> {
        let v = u64::try_from(v).map_err(|_| GiveUp)?;
        self.serialize_u64(v)
    }

    fn serialize_f32(self, v: f32) -> Result<(), GiveUp> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), GiveUp> {
        if !v.is_finite() {
            // serde_json writes NaN and infinities as `null`.
            return self.literal(b"null");
        }
        if v == 0.0 && v.is_sign_negative() {
            // The tree keeps `-0`; text would read back as `0`.
            return Err(GiveUp);
        }
        self.number(v)
    }

    fn serialize_char(self, v: char) -> Result<(), GiveUp> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), GiveUp> {
        self.string(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), GiveUp> {
        let mut array = self.begin_array()?;
        for b in v {
            array.item(b)?;
        }
        array.end();
        Ok(())
    }

    fn serialize_none(self) -> Result<(), GiveUp> {
        self.literal(b"null")
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), GiveUp> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), GiveUp> {
        self.literal(b"null")
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), GiveUp> {
        self.literal(b"null")
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), GiveUp> {
        self.string(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), GiveUp> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), GiveUp> {
        self.begin_variant(variant)?;
        value.serialize(&mut *self)?;
        self.end_variant();
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<ArrayWriter<'w>, GiveUp> {
        self.begin_array()
    }

    fn serialize_tuple(self, _len: usize) -> Result<ArrayWriter<'w>, GiveUp> {
        self.begin_array()
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<ArrayWriter<'w>, GiveUp> {
        self.begin_array()
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<ArrayWriter<'w>, GiveUp> {
        // `{"variant":[...]}`: the array's end closes the object too (see
        // `SerializeTupleVariant::end`).
        self.begin_variant(variant)?;
        self.begin_array()
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapWriter<'w>, GiveUp> {
        Ok(MapWriter {
            object: self.begin_object()?,
            key: None,
        })
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<ObjectWriter<'w>, GiveUp> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            return Err(GiveUp);
        }
        self.begin_object()
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<ObjectWriter<'w>, GiveUp> {
        // `{"variant":{...}}`: the inner object's end closes the outer one too (see
        // `SerializeStructVariant::end`).
        self.begin_variant(variant)?;
        self.begin_object()
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), GiveUp> {
        self.string(&value.to_string())
    }
}

impl ser::SerializeSeq for ArrayWriter<'_> {
    type Ok = ();
    type Error = GiveUp;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        self.item(value)
    }

    fn end(self) -> Result<(), GiveUp> {
        ArrayWriter::end(self);
        Ok(())
    }
}

impl ser::SerializeTuple for ArrayWriter<'_> {
    type Ok = ();
    type Error = GiveUp;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        self.item(value)
    }

    fn end(self) -> Result<(), GiveUp> {
        ArrayWriter::end(self);
        Ok(())
    }
}

impl ser::SerializeTupleStruct for ArrayWriter<'_> {
    type Ok = ();
    type Error = GiveUp;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        self.item(value)
    }

    fn end(self) -> Result<(), GiveUp> {
        ArrayWriter::end(self);
        Ok(())
    }
}

impl ser::SerializeTupleVariant for ArrayWriter<'_> {
    type Ok = ();
    type Error = GiveUp;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        self.item(value)
    }

    fn end(self) -> Result<(), GiveUp> {
        ArrayWriter::end(self).end_variant();
        Ok(())
    }
}

/// A map: each key is turned into a string by serde_json's rules.
struct MapWriter<'w> {
    object: ObjectWriter<'w>,
    key: Option<String>,
}

impl ser::SerializeMap for MapWriter<'_> {
    type Ok = ();
    type Error = GiveUp;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), GiveUp> {
        self.key = Some(key.serialize(KeySer).map_err(|_| GiveUp)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GiveUp> {
        let key = self.key.take().ok_or(GiveUp)?;
        self.object.member(&key, value)
    }

    fn end(self) -> Result<(), GiveUp> {
        if self.key.is_some() {
            return Err(GiveUp);
        }
        self.object.end();
        Ok(())
    }
}

impl ser::SerializeStruct for ObjectWriter<'_> {
    type Ok = ();
    type Error = GiveUp;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), GiveUp> {
        self.member(key, value)
    }

    fn end(self) -> Result<(), GiveUp> {
        ObjectWriter::end(self);
        Ok(())
    }
}

impl ser::SerializeStructVariant for ObjectWriter<'_> {
    type Ok = ();
    type Error = GiveUp;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), GiveUp> {
        self.member(key, value)
    }

    fn end(self) -> Result<(), GiveUp> {
        ObjectWriter::end(self).end_variant();
        Ok(())
    }
}
