//! serde types straight to and from the wire [`Value`], with no `serde_json::Value` in
//! between. Results and errors are those of the route this replaces,
//! `Value::from_serde(&serde_json::to_value(v)?)` and
//! `serde_json::from_value(value.to_serde())`: serde_json's rules for map keys, enums
//! and numbers, its error wording, and the refusal of integers beyond ±(2^53 − 1).
//! The one liberty: well-formed strings reach visitors as `visit_borrowed_str` rather
//! than an owned `visit_string`, which saves an allocation per key.
//!
//! A received payload object that is still the canonical text it arrived as is read
//! straight from that text, token by token, with no members built (see `TextDe`).

use super::json::{
    BEYOND_SAFE_INTEGER, Cursor, JsString, MAX_SAFE_INTEGER, NOT_FINITE, Object, UnsafeJson, Value,
};
use serde::de::{
    self, DeserializeSeed, Deserializer as _, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::ser::{self, Impossible, Serialize};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::{self, Display};

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A number a JavaScript peer would not receive exactly.
    #[error(transparent)]
    Unsafe(#[from] UnsafeJson),
    /// Anything serde reports: a type's own message, a map key that is not a string,
    /// a value of the wrong type. Worded exactly as serde_json words it.
    #[error("{0}")]
    Custom(String),
}

impl BridgeError {
    /// serde_json's wording of its own error.
    #[cold]
    fn json(e: serde_json::Error) -> Self {
        BridgeError::Custom(e.to_string())
    }
}

// Messages go through serde_json's own error type so that they read the same, down to
// its handling of a trailing "at line N column M".
impl ser::Error for BridgeError {
    #[cold]
    fn custom<T: Display>(msg: T) -> Self {
        Self::json(<serde_json::Error as ser::Error>::custom(msg))
    }
}

impl de::Error for BridgeError {
    #[cold]
    fn custom<T: Display>(msg: T) -> Self {
        Self::json(<serde_json::Error as de::Error>::custom(msg))
    }

    #[cold]
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::json(<serde_json::Error as de::Error>::invalid_type(unexp, exp))
    }

    #[cold]
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::json(<serde_json::Error as de::Error>::invalid_value(unexp, exp))
    }
}

/// serde_json's wording for a map key it cannot turn into a string.
#[cold]
fn key_must_be_a_string() -> BridgeError {
    BridgeError::Custom("key must be a string".to_owned())
}

/// Converts any serializable value to the wire [`Value`].
///
/// Gives exactly what `Value::from_serde(&serde_json::to_value(v)?)` gives: serde_json's
/// errors (a map key that is not a string, a 128-bit integer beyond 64 bits) as
/// [`BridgeError::Custom`], and an integer beyond ±(2^53 − 1) as [`BridgeError::Unsafe`]
/// naming the path of the first such value in the order `from_serde` visits them.
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value, BridgeError> {
    // Payload objects are written straight to canonical text when they can be; the
    // tree below handles the rest, and every error.
    if let Ok(object) = super::canonical_ser::to_canonical_object(v) {
        return Ok(Value::Object(object));
    }
    let tainted = Cell::new(false);
    let value = v.serialize(Ser { tainted: &tainted })?;
    if tainted.get()
        && let Some(e) = first_unsafe(&value, &mut String::from("$"))
    {
        return Err(e.into());
    }
    Ok(value)
}

/// Converts wire data into any deserializable type; `None` (absent data) reads as JSON
/// `null`.
///
/// Behaves exactly like `serde_json::from_value` over `Value::to_serde()`: integral
/// numbers within ±(2^53 − 1) arrive as integers, other finite numbers as `f64`, NaN
/// and infinities as `null`; lone surrogates in strings become U+FFFD.
pub fn from_value<T: de::DeserializeOwned>(v: Option<&Value>) -> Result<T, BridgeError> {
    static NULL: Value = Value::Null;
    T::deserialize(De(v.unwrap_or(&NULL)))
}

// ---------------------------------------------------------------------------------
// Serializer
//
// An unsafe integer does not fail on the spot: serde_json would first finish building
// its tree (and may fail later with an error of its own), then `from_serde` reports the
// first unsafe number in *its* order, which sorts object keys by bytes and keeps only
// the last of duplicate keys. So an unsafe number is written as a marker (NaN for an
// integer, infinity for a non-finite number; neither is otherwise produced, since
// serde_json turns non-finite floats into `null`), a flag is raised, and the path is
// found, on that error path only, by walking the finished value.

/// Marks an integer beyond ±(2^53 − 1).
const UNSAFE_INTEGER: f64 = f64::NAN;
/// Marks a number that is not finite.
const UNSAFE_NUMBER: f64 = f64::INFINITY;

/// The first marker in `from_serde`'s order, with its path.
#[cold]
fn first_unsafe(value: &Value, path: &mut String) -> Option<UnsafeJson> {
    match value {
        Value::Number(n) if !n.is_finite() => Some(UnsafeJson {
            path: path.clone(),
            problem: if n.is_nan() {
                BEYOND_SAFE_INTEGER
            } else {
                NOT_FINITE
            },
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = first_unsafe(item, path);
            path.truncate(len);
            found
        }),
        Value::Object(o) => {
            // serde_json's map iterates in byte order of the keys.
            let mut members: Vec<_> = o.iter().collect();
            members.sort_by(|a, b| a.0.as_wtf8().cmp(b.0.as_wtf8()));
            members.into_iter().find_map(|(k, v)| {
                let len = path.len();
                path.push('.');
                path.push_str(&k.to_string_lossy());
                let found = first_unsafe(v, path);
                path.truncate(len);
                found
            })
        }
        _ => None,
    }
}

/// `from_serde`, with markers in place of errors (for what serde_json builds itself).
fn marked_from_serde(value: &serde_json::Value, tainted: &Cell<bool>) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                integer(tainted, i.unsigned_abs(), i as f64)
            } else if let Some(u) = n.as_u64() {
                integer(tainted, u, u as f64)
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() => Value::Number(f),
                    _ => {
                        tainted.set(true);
                        Value::Number(UNSAFE_NUMBER)
                    }
                }
            }
        }
        serde_json::Value::String(s) => Value::String(JsString::from(s.as_str())),
        serde_json::Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| marked_from_serde(item, tainted))
                .collect(),
        ),
        serde_json::Value::Object(map) => Value::Object(Object::from_members(
            map.iter()
                .map(|(k, v)| (JsString::from(k.as_str()), marked_from_serde(v, tainted)))
                .collect(),
        )),
    }
}

/// An integer of magnitude `magnitude` whose double is `n`.
#[inline]
fn integer(tainted: &Cell<bool>, magnitude: u64, n: f64) -> Value {
    if magnitude <= MAX_SAFE_INTEGER as u64 {
        Value::Number(n)
    } else {
        tainted.set(true);
        Value::Number(UNSAFE_INTEGER)
    }
}

/// serde_json's text for a number it cannot hold (128-bit integers beyond 64 bits).
#[cold]
fn number_out_of_range() -> BridgeError {
    BridgeError::Custom("number out of range".to_owned())
}

/// serde_json's wrappers for `RawValue` and arbitrary-precision numbers are structs
/// with names under this prefix; they are handed to serde_json itself, which knows
/// what its enabled features make of them.
pub(super) const SERDE_JSON_PRIVATE: &str = "$serde_json::private::";

/// The serializer: one per value, sharing the flag that says a marker was written.
#[derive(Clone, Copy)]
struct Ser<'t> {
    tainted: &'t Cell<bool>,
}

impl<'t> ser::Serializer for Ser<'t> {
    type Ok = Value;
    type Error = BridgeError;
    type SerializeSeq = SeqSer<'t>;
    type SerializeTuple = SeqSer<'t>;
    type SerializeTupleStruct = SeqSer<'t>;
    type SerializeTupleVariant = TupleVariantSer<'t>;
    type SerializeMap = MapSer<'t>;
    type SerializeStruct = StructSer<'t>;
    type SerializeStructVariant = StructVariantSer<'t>;

    fn serialize_bool(self, v: bool) -> Result<Value, BridgeError> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, BridgeError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, BridgeError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, BridgeError> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, BridgeError> {
        Ok(integer(self.tainted, v.unsigned_abs(), v as f64))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, BridgeError> {
        if let Ok(u) = u64::try_from(v) {
            self.serialize_u64(u)
        } else if let Ok(i) = i64::try_from(v) {
            self.serialize_i64(i)
        } else {
            Err(number_out_of_range())
        }
    }

    fn serialize_u8(self, v: u8) -> Result<Value, BridgeError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, BridgeError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, BridgeError> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, BridgeError> {
        Ok(integer(self.tainted, v, v as f64))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, BridgeError> {
        match u64::try_from(v) {
            Ok(u) => self.serialize_u64(u),
            Err(_) => Err(number_out_of_range()),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<Value, BridgeError> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, BridgeError> {
        // serde_json::to_value writes NaN and infinities as `null`.
        Ok(if v.is_finite() {
            Value::Number(v)
        } else {
            Value::Null
        })
    }

    fn serialize_char(self, v: char) -> Result<Value, BridgeError> {
        Ok(Value::String(JsString::from(
            v.encode_utf8(&mut [0; 4]) as &str
        )))
    }

    fn serialize_str(self, v: &str) -> Result<Value, BridgeError> {
        Ok(Value::String(JsString::from(v)))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, BridgeError> {
        Ok(Value::Array(
            v.iter().map(|b| Value::Number(f64::from(*b))).collect(),
        ))
    }

    fn serialize_none(self) -> Result<Value, BridgeError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, BridgeError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, BridgeError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, BridgeError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, BridgeError> {
        Ok(Value::String(JsString::from(variant)))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, BridgeError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, BridgeError> {
        Ok(single(variant, value.serialize(self)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer<'t>, BridgeError> {
        Ok(SeqSer {
            items: Vec::with_capacity(len.unwrap_or(0)),
            ser: self,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqSer<'t>, BridgeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqSer<'t>, BridgeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TupleVariantSer<'t>, BridgeError> {
        Ok(TupleVariantSer {
            variant,
            seq: self.serialize_seq(Some(len))?,
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapSer<'t>, BridgeError> {
        Ok(MapSer {
            members: Vec::with_capacity(len.unwrap_or(0)),
            next_key: None,
            ser: self,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<StructSer<'t>, BridgeError> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            let inner = ser::Serializer::serialize_struct(serde_json::value::Serializer, name, len)
                .map_err(BridgeError::json)?;
            return Ok(StructSer::SerdeJson { inner, ser: self });
        }
        self.serialize_map(Some(len)).map(StructSer::Map)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<StructVariantSer<'t>, BridgeError> {
        Ok(StructVariantSer {
            variant,
            members: Vec::with_capacity(len),
            ser: self,
        })
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<Value, BridgeError> {
        Ok(Value::String(JsString::from(value.to_string())))
    }
}

/// `{variant: value}`, serde_json's externally tagged enum.
fn single(variant: &'static str, value: Value) -> Value {
    Value::Object(Object::from_members(vec![(JsString::from(variant), value)]))
}

/// Arrays and tuples.
struct SeqSer<'t> {
    items: Vec<Value>,
    ser: Ser<'t>,
}

impl ser::SerializeSeq for SeqSer<'_> {
    type Ok = Value;
    type Error = BridgeError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BridgeError> {
        self.items.push(value.serialize(self.ser)?);
        Ok(())
    }

    fn end(self) -> Result<Value, BridgeError> {
        Ok(Value::Array(self.items))
    }
}

impl ser::SerializeTuple for SeqSer<'_> {
    type Ok = Value;
    type Error = BridgeError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BridgeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, BridgeError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqSer<'_> {
    type Ok = Value;
    type Error = BridgeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BridgeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, BridgeError> {
        ser::SerializeSeq::end(self)
    }
}

/// `{variant: [fields]}`.
struct TupleVariantSer<'t> {
    variant: &'static str,
    seq: SeqSer<'t>,
}

impl ser::SerializeTupleVariant for TupleVariantSer<'_> {
    type Ok = Value;
    type Error = BridgeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BridgeError> {
        ser::SerializeSeq::serialize_element(&mut self.seq, value)
    }

    fn end(self) -> Result<Value, BridgeError> {
        Ok(single(self.variant, Value::Array(self.seq.items)))
    }
}

/// Maps and structs: members collected, then sorted once (a later duplicate key
/// replaces an earlier one, as in serde_json's map).
struct MapSer<'t> {
    members: Vec<(JsString, Value)>,
    next_key: Option<JsString>,
    ser: Ser<'t>,
}

impl ser::SerializeMap for MapSer<'_> {
    type Ok = Value;
    type Error = BridgeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), BridgeError> {
        self.next_key = Some(JsString::from(key.serialize(KeySer)?));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BridgeError> {
        // serde_json panics here: a Serialize impl that calls this first has a bug.
        let Some(key) = self.next_key.take() else {
            return Err(ser::Error::custom(
                "serialize_value called before serialize_key",
            ));
        };
        self.members.push((key, value.serialize(self.ser)?));
        Ok(())
    }

    fn end(self) -> Result<Value, BridgeError> {
        Ok(Value::Object(Object::from_members(self.members)))
    }
}

/// A struct: a map with `&'static str` keys, or one of serde_json's private wrappers.
enum StructSer<'t> {
    Map(MapSer<'t>),
    SerdeJson {
        inner: <serde_json::value::Serializer as ser::Serializer>::SerializeStruct,
        ser: Ser<'t>,
    },
}

impl ser::SerializeStruct for StructSer<'_> {
    type Ok = Value;
    type Error = BridgeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BridgeError> {
        match self {
            StructSer::Map(map) => {
                map.members
                    .push((JsString::from(key), value.serialize(map.ser)?));
                Ok(())
            }
            StructSer::SerdeJson { inner, .. } => {
                ser::SerializeStruct::serialize_field(inner, key, value).map_err(BridgeError::json)
            }
        }
    }

    fn end(self) -> Result<Value, BridgeError> {
        match self {
            StructSer::Map(map) => ser::SerializeMap::end(map),
            StructSer::SerdeJson { inner, ser } => {
                let json = ser::SerializeStruct::end(inner).map_err(BridgeError::json)?;
                Ok(marked_from_serde(&json, ser.tainted))
            }
        }
    }
}

/// `{variant: {fields}}`.
struct StructVariantSer<'t> {
    variant: &'static str,
    members: Vec<(JsString, Value)>,
    ser: Ser<'t>,
}

impl ser::SerializeStructVariant for StructVariantSer<'_> {
    type Ok = Value;
    type Error = BridgeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BridgeError> {
        self.members
            .push((JsString::from(key), value.serialize(self.ser)?));
        Ok(())
    }

    fn end(self) -> Result<Value, BridgeError> {
        let fields = Value::Object(Object::from_members(self.members));
        Ok(single(self.variant, fields))
    }
}

/// Map keys, by serde_json's `MapKeySerializer` rules: strings, chars, integers, bools,
/// finite floats and unit variants become strings; anything else is an error.
pub(super) struct KeySer;

impl ser::Serializer for KeySer {
    type Ok = String;
    type Error = BridgeError;
    type SerializeSeq = Impossible<String, BridgeError>;
    type SerializeTuple = Impossible<String, BridgeError>;
    type SerializeTupleStruct = Impossible<String, BridgeError>;
    type SerializeTupleVariant = Impossible<String, BridgeError>;
    type SerializeMap = Impossible<String, BridgeError>;
    type SerializeStruct = Impossible<String, BridgeError>;
    type SerializeStructVariant = Impossible<String, BridgeError>;

    fn serialize_bool(self, v: bool) -> Result<String, BridgeError> {
        Ok(if v { "true" } else { "false" }.to_owned())
    }

    fn serialize_i8(self, v: i8) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_i16(self, v: i16) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_i32(self, v: i32) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_i64(self, v: i64) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_i128(self, v: i128) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_u8(self, v: u8) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_u16(self, v: u16) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_u32(self, v: u32) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_u64(self, v: u64) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_u128(self, v: u128) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_f32(self, v: f32) -> Result<String, BridgeError> {
        float_key(v.is_finite(), &v)
    }

    fn serialize_f64(self, v: f64) -> Result<String, BridgeError> {
        float_key(v.is_finite(), &v)
    }

    fn serialize_char(self, v: char) -> Result<String, BridgeError> {
        Ok(v.to_string())
    }

    fn serialize_str(self, v: &str) -> Result<String, BridgeError> {
        Ok(v.to_owned())
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<String, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<String, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<String, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, BridgeError> {
        Ok(variant.to_owned())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, BridgeError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, BridgeError> {
        Err(key_must_be_a_string())
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<String, BridgeError> {
        Ok(value.to_string())
    }
}

/// A float key as serde_json writes it: the shortest text that reads back as the same
/// float, the one serde_json's text serializer writes for the number.
#[cold]
fn float_key<F: Serialize>(finite: bool, v: &F) -> Result<String, BridgeError> {
    if !finite {
        return Err(BridgeError::Custom(
            "float key must be finite (got NaN or +/-inf)".to_owned(),
        ));
    }
    serde_json::to_string(v).map_err(BridgeError::json)
}

// ---------------------------------------------------------------------------------
// Deserializer

/// What `Value::to_serde` would make of a value, without building it.
#[derive(Clone, Copy)]
enum Shape<'a> {
    Null,
    Bool(bool),
    /// A non-negative integer (serde_json's `PosInt`).
    U64(u64),
    /// A negative integer (serde_json's `NegInt`).
    I64(i64),
    /// Any other finite number.
    F64(f64),
    Str(&'a JsString),
    Array(&'a [Value]),
    Object(&'a Object),
}

impl<'a> Shape<'a> {
    #[inline]
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Null => Shape::Null,
            Value::Bool(b) => Shape::Bool(*b),
            Value::Number(n) => Shape::number(*n),
            Value::String(s) => Shape::Str(s),
            Value::Array(items) => Shape::Array(items),
            Value::Object(o) => Shape::Object(o),
        }
    }

    /// As `number_to_serde` converts: integral doubles within the safe range become
    /// integers, other finite ones stay doubles, and the rest become `null`.
    #[inline]
    fn number(n: f64) -> Self {
        if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
            let i = n as i64;
            if i < 0 {
                Shape::I64(i)
            } else {
                Shape::U64(i as u64)
            }
        } else if n.is_finite() {
            Shape::F64(n)
        } else {
            Shape::Null
        }
    }

    /// The number's visit, if this is a number.
    #[inline]
    fn visit_number<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self {
            Shape::U64(u) => visitor.visit_u64(u),
            Shape::I64(i) => visitor.visit_i64(i),
            Shape::F64(f) => visitor.visit_f64(f),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    /// serde_json's "invalid type" error for this value.
    #[cold]
    fn invalid_type(self, exp: &dyn Expected) -> BridgeError {
        let text;
        let unexpected = match self {
            Shape::Null => Unexpected::Unit,
            Shape::Bool(b) => Unexpected::Bool(b),
            Shape::U64(u) => Unexpected::Unsigned(u),
            Shape::I64(i) => Unexpected::Signed(i),
            Shape::F64(f) => Unexpected::Float(f),
            Shape::Str(s) => {
                text = s.to_string_lossy();
                Unexpected::Str(&text)
            }
            Shape::Array(_) => Unexpected::Seq,
            Shape::Object(_) => Unexpected::Map,
        };
        de::Error::invalid_type(unexpected, exp)
    }
}

/// A string as a Rust string: borrowed when well-formed, U+FFFD-replaced otherwise.
#[inline]
fn lossy(s: &JsString) -> Cow<'_, str> {
    match s.as_str() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(s.to_string_lossy()),
    }
}

#[inline]
fn visit_js_string<'a, V: Visitor<'a>>(
    s: &'a JsString,
    visitor: V,
) -> Result<V::Value, BridgeError> {
    match lossy(s) {
        Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
        Cow::Owned(s) => visitor.visit_string(s),
    }
}

fn visit_array<'a, V: Visitor<'a>>(
    items: &'a [Value],
    visitor: V,
) -> Result<V::Value, BridgeError> {
    let mut seq = SeqDe {
        items: items.iter(),
    };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.items.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(
            items.len(),
            &"fewer elements in array",
        ))
    }
}

fn visit_object<'a, V: Visitor<'a>>(o: &'a Object, visitor: V) -> Result<V::Value, BridgeError> {
    // A payload as received, canonical: read from its text, with no members built.
    if let Some(text) = o.plain_canonical_text() {
        let mut cursor = Cursor::new(text);
        return TextDe { c: &mut cursor }.deserialize_map(visitor);
    }
    let mut map = MapDe {
        entries: Entries::new(o),
        value: None,
    };
    let len = map.entries.len();
    let out = visitor.visit_map(&mut map)?;
    if map.entries.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in map"))
    }
}

/// The deserializer over a borrowed wire value.
#[derive(Clone, Copy)]
struct De<'a>(&'a Value);

macro_rules! deserialize_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
            Shape::of(self.0).visit_number(visitor)
        }
    )*};
}

impl<'a> de::Deserializer<'a> for De<'a> {
    type Error = BridgeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Null => visitor.visit_unit(),
            Shape::Bool(b) => visitor.visit_bool(b),
            Shape::U64(u) => visitor.visit_u64(u),
            Shape::I64(i) => visitor.visit_i64(i),
            Shape::F64(f) => visitor.visit_f64(f),
            Shape::Str(s) => visit_js_string(s, visitor),
            Shape::Array(items) => visit_array(items, visitor),
            Shape::Object(o) => visit_object(o, visitor),
        }
    }

    deserialize_number!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    );

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Object(o) => {
                let mut entries = Entries::new(o);
                match (entries.next(), entries.len()) {
                    (Some((variant, value)), 0) => visitor.visit_enum(EnumDe {
                        variant,
                        value: Some(value),
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    )),
                }
            }
            Shape::Str(s) => visitor.visit_enum(EnumDe {
                variant: lossy(s),
                value: None,
            }),
            other => Err(other.invalid_type(&"string or map")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            // `RawValue`: whatever serde_json's enabled features make of it.
            return self
                .0
                .to_serde()
                .deserialize_newtype_struct(name, visitor)
                .map_err(BridgeError::json);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Bool(b) => visitor.visit_bool(b),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Str(s) => visit_js_string(s, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Str(s) => visit_js_string(s, visitor),
            Shape::Array(items) => visit_array(items, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Null => visitor.visit_unit(),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Array(items) => visit_array(items, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Object(o) => visit_object(o, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        match Shape::of(self.0) {
            Shape::Array(items) => visit_array(items, visitor),
            Shape::Object(o) => visit_object(o, visitor),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        visitor.visit_unit()
    }
}

/// Array elements.
struct SeqDe<'a> {
    items: std::slice::Iter<'a, Value>,
}

impl<'a> SeqAccess<'a> for SeqDe<'a> {
    type Error = BridgeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, BridgeError> {
        match self.items.next() {
            Some(item) => seed.deserialize(De(item)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An object's members as `to_serde` would hand them out: its map iterates in byte
/// order of the (U+FFFD-replaced) keys, and of keys that collapse into one, keeps the
/// last.
enum Entries<'a> {
    /// Well-formed keys whose UTF-16 order is also their byte order: the usual case.
    InOrder(std::slice::Iter<'a, (JsString, Value)>),
    /// Re-sorted (and deduplicated) by the keys' replaced text.
    Sorted(std::vec::IntoIter<(Cow<'a, str>, &'a Value)>),
}

impl<'a> Entries<'a> {
    fn new(o: &'a Object) -> Self {
        let members = o.members();
        let in_order = members.iter().all(|(k, _)| k.as_str().is_some())
            && members
                .windows(2)
                .all(|w| w[0].0.as_wtf8() < w[1].0.as_wtf8());
        if in_order {
            return Entries::InOrder(members.iter());
        }
        Self::sorted(members)
    }

    #[cold]
    fn sorted(members: &'a [(JsString, Value)]) -> Self {
        let mut sorted: Vec<(Cow<'a, str>, &'a Value)> =
            members.iter().map(|(k, v)| (lossy(k), v)).collect();
        // Stable, so keys that collapse keep their order; move each later value into
        // the run's first slot, which `dedup_by` keeps.
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        Entries::Sorted(sorted.into_iter())
    }

    fn len(&self) -> usize {
        match self {
            Entries::InOrder(it) => it.len(),
            Entries::Sorted(it) => it.len(),
        }
    }

    fn next(&mut self) -> Option<(Cow<'a, str>, &'a Value)> {
        match self {
            Entries::InOrder(it) => it.next().map(|(k, v)| (lossy(k), v)),
            Entries::Sorted(it) => it.next(),
        }
    }
}

/// Object members.
struct MapDe<'a> {
    entries: Entries<'a>,
    value: Option<&'a Value>,
}

impl<'a> MapAccess<'a> for MapDe<'a> {
    type Error = BridgeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, BridgeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(KeyDe { key }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, BridgeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(De(value)),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum: a string (unit variant) or a single-member object.
struct EnumDe<'a> {
    variant: Cow<'a, str>,
    value: Option<&'a Value>,
}

impl<'a> EnumAccess<'a> for EnumDe<'a> {
    type Error = BridgeError;
    type Variant = VariantDe<'a>;

    fn variant_seed<V: DeserializeSeed<'a>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDe<'a>), BridgeError> {
        let variant: de::value::CowStrDeserializer<'a, BridgeError> =
            self.variant.into_deserializer();
        let value = seed.deserialize(variant)?;
        Ok((value, VariantDe { value: self.value }))
    }
}

/// The content of an enum variant (`None` when the enum was a bare string).
struct VariantDe<'a> {
    value: Option<&'a Value>,
}

impl<'a> VariantAccess<'a> for VariantDe<'a> {
    type Error = BridgeError;

    fn unit_variant(self) -> Result<(), BridgeError> {
        match self.value {
            Some(value) => de::Deserialize::deserialize(De(value)),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(
        self,
        seed: T,
    ) -> Result<T::Value, BridgeError> {
        match self.value {
            Some(value) => seed.deserialize(De(value)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        match self.value.map(Shape::of) {
            Some(Shape::Array([])) => visitor.visit_unit(),
            Some(Shape::Array(items)) => visit_array(items, visitor),
            Some(other) => Err(other.invalid_type(&"tuple variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        match self.value.map(Shape::of) {
            Some(Shape::Object(o)) => visit_object(o, visitor),
            Some(other) => Err(other.invalid_type(&"struct variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

// ---------------------------------------------------------------------------------
// Deserializer over received text
//
// A payload object arrives as text and usually stays text (see `Object`). When that
// text is canonical and plain (`Object::plain_canonical_text`), its members are unique,
// in byte order and well-formed, which is exactly the case where `Entries` hands
// members out in order, unchanged. So the text can be read token by token, in the
// order `De` would visit the parsed members, with the same visits and the same errors,
// and without building the members at all.

/// A text the parser accepted no longer reads: cannot happen short of a bug, and is
/// reported rather than trusted.
#[cold]
fn unreadable() -> BridgeError {
    BridgeError::Custom("payload text does not read back".to_owned())
}

/// The deserializer over the value at a cursor in plain canonical text.
struct TextDe<'c, 'a> {
    c: &'c mut Cursor<'a>,
}

macro_rules! deserialize_text_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
            match self.c.peek() {
                Some(b'-' | b'0'..=b'9') => {
                    let n = self.c.number().ok_or_else(unreadable)?;
                    Shape::number(n).visit_number(visitor)
                }
                _ => Err(self.invalid_type(&visitor)),
            }
        }
    )*};
}

impl<'a> TextDe<'_, 'a> {
    /// The "invalid type" error `De` gives for the value here: the value is parsed for
    /// the message, on this error path only.
    #[cold]
    fn invalid_type(self, exp: &dyn Expected) -> BridgeError {
        match self.c.value() {
            Some(value) => Shape::of(&value).invalid_type(exp),
            None => unreadable(),
        }
    }

    fn visit_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.c.string().ok_or_else(unreadable)? {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    /// `visit_array` over the array here (the cursor is on `[`).
    fn visit_array<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.c.eat(b'[');
        let mut seq = TextSeq {
            c: self.c,
            read: 0,
            done: false,
        };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.done || seq.c.eat(b']') {
            return Ok(out);
        }
        // Items left unread: count them for `De`'s message.
        let mut len = seq.read;
        loop {
            let item = (len == 0 || seq.c.eat(b',')) && seq.c.skip_value();
            if !item {
                return Err(unreadable());
            }
            len += 1;
            if seq.c.eat(b']') {
                break;
            }
        }
        Err(de::Error::invalid_length(len, &"fewer elements in array"))
    }

    /// `visit_object` over the object here (the cursor is on `{`).
    fn visit_object<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.c.eat(b'{');
        let mut map = TextMap {
            c: self.c,
            state: MapState::First,
            read: 0,
        };
        let out = visitor.visit_map(&mut map)?;
        let mut len = map.read;
        if map.state == MapState::Value && !map.c.skip_value() {
            return Err(unreadable());
        }
        if map.state == MapState::Done || map.c.eat(b'}') {
            return Ok(out);
        }
        // Members left unread: count them for `De`'s message.
        while !map.c.eat(b'}') {
            let member = (map.state == MapState::First || map.c.eat(b','))
                && map.c.string().is_some()
                && map.c.eat(b':')
                && map.c.skip_value();
            if !member {
                return Err(unreadable());
            }
            map.state = MapState::Between;
            len += 1;
        }
        Err(de::Error::invalid_length(len, &"fewer elements in map"))
    }
}

impl<'a> de::Deserializer<'a> for TextDe<'_, 'a> {
    type Error = BridgeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b'"') => self.visit_string(visitor),
            Some(b'[') => self.visit_array(visitor),
            Some(b'{') => self.visit_object(visitor),
            Some(b'-' | b'0'..=b'9') => {
                match Shape::number(self.c.number().ok_or_else(unreadable)?) {
                    Shape::U64(u) => visitor.visit_u64(u),
                    Shape::I64(i) => visitor.visit_i64(i),
                    Shape::F64(f) => visitor.visit_f64(f),
                    _ => visitor.visit_unit(),
                }
            }
            _ => match self.c.literal().ok_or_else(unreadable)? {
                Value::Bool(b) => visitor.visit_bool(b),
                _ => visitor.visit_unit(),
            },
        }
    }

    deserialize_text_number!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    );

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        if self.c.peek() == Some(b'n') {
            self.c.literal().ok_or_else(unreadable)?;
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b'"') => {
                let variant = self.c.string().ok_or_else(unreadable)?;
                visitor.visit_enum(TextEnum {
                    variant,
                    c: self.c,
                    value: false,
                })
            }
            Some(b'{') => {
                // Exactly one member, as `De` requires: look ahead, then read it.
                let start = self.c.position();
                self.c.eat(b'{');
                let single = self.c.string().is_some()
                    && self.c.eat(b':')
                    && self.c.skip_value()
                    && self.c.eat(b'}');
                self.c.rewind(start);
                if !single {
                    return Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    ));
                }
                self.c.eat(b'{');
                let variant = self.c.string().ok_or_else(unreadable)?;
                self.c.eat(b':');
                let out = visitor.visit_enum(TextEnum {
                    variant,
                    c: &mut *self.c,
                    value: true,
                })?;
                if self.c.eat(b'}') {
                    Ok(out)
                } else {
                    Err(unreadable())
                }
            }
            _ => Err(self.invalid_type(&"string or map")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        if name.starts_with(SERDE_JSON_PRIVATE) {
            let value = self.c.value().ok_or_else(unreadable)?;
            return value
                .to_serde()
                .deserialize_newtype_struct(name, visitor)
                .map_err(BridgeError::json);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b't' | b'f') => match self.c.literal() {
                Some(Value::Bool(b)) => visitor.visit_bool(b),
                _ => Err(unreadable()),
            },
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b'"') => self.visit_string(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b'"') => self.visit_string(visitor),
            Some(b'[') => self.visit_array(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b'n') => {
                self.c.literal().ok_or_else(unreadable)?;
                visitor.visit_unit()
            }
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b'[') => self.visit_array(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b'{') => self.visit_object(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        match self.c.peek() {
            Some(b'[') => self.visit_array(visitor),
            Some(b'{') => self.visit_object(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        if !self.c.skip_value() {
            return Err(unreadable());
        }
        visitor.visit_unit()
    }
}

/// Array items read from text.
struct TextSeq<'c, 'a> {
    c: &'c mut Cursor<'a>,
    /// Items handed out so far.
    read: usize,
    /// The closing bracket has been read.
    done: bool,
}

impl<'a> SeqAccess<'a> for TextSeq<'_, 'a> {
    type Error = BridgeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, BridgeError> {
        if self.done || self.c.eat(b']') {
            self.done = true;
            return Ok(None);
        }
        if self.read > 0 && !self.c.eat(b',') {
            return Err(unreadable());
        }
        self.read += 1;
        seed.deserialize(TextDe { c: &mut *self.c }).map(Some)
    }
}

/// Where a [`TextMap`] is in its object.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MapState {
    /// Just past `{`.
    First,
    /// A key was handed out; the cursor is on its value.
    Value,
    /// Past a value.
    Between,
    /// Past `}`.
    Done,
}

/// Object members read from text.
struct TextMap<'c, 'a> {
    c: &'c mut Cursor<'a>,
    state: MapState,
    /// Keys handed out so far.
    read: usize,
}

impl<'a> MapAccess<'a> for TextMap<'_, 'a> {
    type Error = BridgeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, BridgeError> {
        match self.state {
            MapState::Done => return Ok(None),
            MapState::Value if !self.c.skip_value() => return Err(unreadable()),
            _ => {}
        }
        if self.c.eat(b'}') {
            self.state = MapState::Done;
            return Ok(None);
        }
        if self.state != MapState::First && !self.c.eat(b',') {
            return Err(unreadable());
        }
        let key = self.c.string().ok_or_else(unreadable)?;
        if !self.c.eat(b':') {
            return Err(unreadable());
        }
        self.state = MapState::Value;
        self.read += 1;
        seed.deserialize(KeyDe { key }).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, BridgeError> {
        if self.state != MapState::Value {
            return Err(de::Error::custom("value is missing"));
        }
        self.state = MapState::Between;
        seed.deserialize(TextDe { c: &mut *self.c })
    }
}

/// An enum read from text: a string, or the single member of an object (the cursor
/// is then on its value).
struct TextEnum<'c, 'a> {
    variant: Cow<'a, str>,
    c: &'c mut Cursor<'a>,
    value: bool,
}

impl<'c, 'a> EnumAccess<'a> for TextEnum<'c, 'a> {
    type Error = BridgeError;
    type Variant = TextVariant<'c, 'a>;

    fn variant_seed<V: DeserializeSeed<'a>>(
        self,
        seed: V,
    ) -> Result<(V::Value, TextVariant<'c, 'a>), BridgeError> {
        let variant: de::value::CowStrDeserializer<'a, BridgeError> =
            self.variant.into_deserializer();
        let value = seed.deserialize(variant)?;
        let content = TextVariant {
            c: self.value.then_some(self.c),
        };
        Ok((value, content))
    }
}

/// The content of an enum variant read from text (`None` for a bare string).
struct TextVariant<'c, 'a> {
    c: Option<&'c mut Cursor<'a>>,
}

impl<'a> VariantAccess<'a> for TextVariant<'_, 'a> {
    type Error = BridgeError;

    fn unit_variant(self) -> Result<(), BridgeError> {
        match self.c {
            Some(c) => de::Deserialize::deserialize(TextDe { c }),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(
        self,
        seed: T,
    ) -> Result<T::Value, BridgeError> {
        match self.c {
            Some(c) => seed.deserialize(TextDe { c }),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        match self.c {
            Some(c) if c.peek() == Some(b'[') => {
                let start = c.position();
                if c.eat(b'[') && c.eat(b']') {
                    return visitor.visit_unit();
                }
                c.rewind(start);
                TextDe { c }.visit_array(visitor)
            }
            Some(c) => Err(TextDe { c }.invalid_type(&"tuple variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        match self.c {
            Some(c) if c.peek() == Some(b'{') => TextDe { c }.visit_object(visitor),
            Some(c) => Err(TextDe { c }.invalid_type(&"struct variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

/// The numeric types a map key may be read as.
#[derive(Clone, Copy)]
enum Numeric {
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
}

impl Numeric {
    fn deserialize<'de, D, V>(self, d: D, visitor: V) -> Result<V::Value, D::Error>
    where
        D: de::Deserializer<'de>,
        V: Visitor<'de>,
    {
        match self {
            Numeric::I8 => d.deserialize_i8(visitor),
            Numeric::I16 => d.deserialize_i16(visitor),
            Numeric::I32 => d.deserialize_i32(visitor),
            Numeric::I64 => d.deserialize_i64(visitor),
            Numeric::I128 => d.deserialize_i128(visitor),
            Numeric::U8 => d.deserialize_u8(visitor),
            Numeric::U16 => d.deserialize_u16(visitor),
            Numeric::U32 => d.deserialize_u32(visitor),
            Numeric::U64 => d.deserialize_u64(visitor),
            Numeric::U128 => d.deserialize_u128(visitor),
            Numeric::F32 => d.deserialize_f32(visitor),
            Numeric::F64 => d.deserialize_f64(visitor),
        }
    }
}

/// serde_json's wording for a map key that is not a number where one was wanted.
#[cold]
fn expected_numeric_key() -> BridgeError {
    BridgeError::Custom("invalid value: expected key to be a number in quotes".to_owned())
}

/// A map key, by serde_json's `MapKeyDeserializer` rules: a string, or read as a number
/// or bool where the type asks for one.
struct KeyDe<'a> {
    key: Cow<'a, str>,
}

impl<'a> KeyDe<'a> {
    /// Parses the key as a JSON number, as serde_json does: with its own number parser
    /// (so the same values, overflows and error positions), and nothing around it.
    fn numeric<V: Visitor<'a>>(self, kind: Numeric, visitor: V) -> Result<V::Value, BridgeError> {
        if !matches!(self.key.as_bytes().first(), Some(b'0'..=b'9' | b'-')) {
            return Err(expected_numeric_key());
        }
        match self.key {
            Cow::Borrowed(key) => {
                let mut de = serde_json::Deserializer::from_str(key);
                let value = kind
                    .deserialize(&mut de, visitor)
                    .map_err(BridgeError::json)?;
                // Anything after the number, whitespace included, is refused.
                if key.ends_with([' ', '\t', '\n', '\r']) || de.end().is_err() {
                    return Err(expected_numeric_key());
                }
                Ok(value)
            }
            Cow::Owned(key) => numeric_owned_key(key, kind, visitor),
        }
    }
}

/// A key that held a lone surrogate (so it is an owned, replaced string) read as a
/// number: handed to serde_json's own map-key deserializer through a one-member map,
/// since a visitor for `'a` cannot read from a shorter-lived string. Rare by nature.
#[cold]
fn numeric_owned_key<'a, V: Visitor<'a>>(
    key: String,
    kind: Numeric,
    visitor: V,
) -> Result<V::Value, BridgeError> {
    struct FirstKey<V> {
        kind: Numeric,
        visitor: V,
    }

    impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for FirstKey<V> {
        type Value = V::Value;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
            self.kind.deserialize(d, self.visitor)
        }
    }

    impl<'de, V: Visitor<'de>> Visitor<'de> for FirstKey<V> {
        type Value = V::Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map with one key")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
            map.next_key_seed(self)?
                .ok_or_else(|| de::Error::custom("map has no key"))
        }
    }

    let mut map = serde_json::Map::new();
    map.insert(key, serde_json::Value::Null);
    map.deserialize_map(FirstKey { kind, visitor })
        .map_err(BridgeError::json)
}

macro_rules! deserialize_numeric_key {
    ($($method:ident => $kind:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
            self.numeric(Numeric::$kind, visitor)
        }
    )*};
}

impl<'a> de::Deserializer<'a> for KeyDe<'a> {
    type Error = BridgeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match self.key {
            Cow::Borrowed(key) => visitor.visit_borrowed_str(key),
            Cow::Owned(key) => visitor.visit_string(key),
        }
    }

    deserialize_numeric_key!(
        deserialize_i8 => I8 deserialize_i16 => I16 deserialize_i32 => I32
        deserialize_i64 => I64 deserialize_i128 => I128 deserialize_u8 => U8
        deserialize_u16 => U16 deserialize_u32 => U32 deserialize_u64 => U64
        deserialize_u128 => U128 deserialize_f32 => F32 deserialize_f64 => F64
    );

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        match &*self.key {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(de::Error::invalid_type(Unexpected::Str(other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, BridgeError> {
        // Map keys cannot be null.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BridgeError> {
        let key: de::value::CowStrDeserializer<'a, BridgeError> = self.key.into_deserializer();
        key.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
