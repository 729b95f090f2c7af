//! `wire::to_value` and `wire::from_value` against the pipeline they replace:
//! `Value::from_serde(&serde_json::to_value(v)?)` one way and
//! `serde_json::from_value(v.to_serde())` the other. Same values, same errors (down to
//! the path of an unsafe integer and serde_json's wording), over generated JSON trees,
//! generated typed values, and wire values holding lone surrogates, infinities and keys
//! whose UTF-16 order differs from their byte order.

use link_sansio::wire::{
    self, BridgeError, Frame, JsString, Limits, Message, UnsafeJson, Value, json,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde::de::DeserializeOwned;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../proptest-regressions/wire_serde_bridge.txt"
        )))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------
// The old pipelines, and strict comparison

/// What the driver did before: both error kinds as text.
fn old_encode<T: Serialize + ?Sized>(v: &T) -> Result<Value, String> {
    let j = serde_json::to_value(v).map_err(|e| e.to_string())?;
    Value::from_serde(&j).map_err(|e| e.to_string())
}

fn old_decode<T: DeserializeOwned>(v: Option<&Value>) -> Result<T, String> {
    let j = v.map(Value::to_serde).unwrap_or(serde_json::Value::Null);
    serde_json::from_value(j).map_err(|e| e.to_string())
}

/// Structural equality that tells `-0` from `0`.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}

/// `to_value` agrees with the old pipeline: value for value, message for message.
fn assert_encodes_alike<T: Serialize + ?Sized + Debug>(v: &T) {
    let old = old_encode(v);
    let new = wire::to_value(v);
    match (&old, &new) {
        (Ok(o), Ok(n)) => {
            assert!(same(o, n), "{v:?}: old {o:?}, new {n:?}");
            // Objects written straight to text must be the very text the tree writes.
            assert_eq!(o.to_canonical(), n.to_canonical(), "{v:?}");
        }
        (Err(o), Err(n)) => assert_eq!(o, &n.to_string(), "{v:?}"),
        _ => panic!("{v:?}: old {old:?}, new {new:?}"),
    }
}

/// `from_value` agrees with the old pipeline, for type `T`: for `v` as built, and for
/// `v` as a receiver holds it (see [`as_received`]).
fn assert_decodes_alike<T: DeserializeOwned + PartialEq + Debug>(v: &Value) {
    for v in [v, &as_received(v)] {
        let old = old_decode::<T>(Some(v));
        let new = wire::from_value::<T>(Some(v)).map_err(|e| e.to_string());
        assert_eq!(old, new, "{} from {v:?}", std::any::type_name::<T>());
    }
}

/// `v` as the payload of a received frame: objects inside it are then held as the
/// canonical text they arrived as, and read from that text.
fn as_received(v: &Value) -> Value {
    let text = format!(
        r#"{{"data":{{"payload":{},"topic":"t"}},"id":"i","type":"topic.message","v":1}}"#,
        String::from_utf8(v.to_canonical()).expect("utf-8")
    );
    let frame = Frame::parse(text.as_bytes(), &Limits::default()).expect("frame parses");
    match frame.message() {
        Message::TopicMessage(m) => m.payload.expect("payload"),
        other => panic!("not a topic message: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Generators

/// Keys from a small pool, so duplicates occur and UTF-16 order differs from byte
/// order (U+E000..=U+FFFF against supplementary characters).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "a", "b", "B", "1", "10", "2", "", "😀", "\u{10000}", "\u{E000}", "\u{FFFD}",
            "\u{FFFF}", "～", "a😀", "a\u{E000}", "__proto__",
        ])
        .prop_map(str::to_owned),
        1 => prop::collection::vec(
            prop_oneof![
                any::<char>(),
                prop::char::range('\u{E000}', '\u{FFFF}'),
                prop::char::range('\u{10000}', '\u{10FFFF}'),
            ],
            0..4,
        )
        .prop_map(|c| c.into_iter().collect()),
    ]
}

const SAFE: i64 = (1 << 53) - 1;

/// Numbers around every edge the conversion has.
fn number() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        2 => any::<i64>().prop_map(serde_json::Value::from),
        2 => any::<u64>().prop_map(serde_json::Value::from),
        2 => (-3i64..=3).prop_map(|d| serde_json::Value::from(SAFE + d)),
        2 => (-3i64..=3).prop_map(|d| serde_json::Value::from(-SAFE + d)),
        1 => prop::sample::select(vec![u64::MAX, 1 << 53, (1 << 53) + 1, i64::MAX as u64 + 1])
            .prop_map(serde_json::Value::from),
        1 => Just(serde_json::Value::from(i64::MIN)),
        2 => any::<f64>().prop_map(serde_json::Value::from),
        1 => prop::sample::select(vec![
            -0.0, 0.5, -1.5, 1e21, 1e-7, 9_007_199_254_740_992.0, -9_007_199_254_740_992.0,
            9_007_199_254_740_991.0, 5e-324, f64::MAX,
        ])
        .prop_map(serde_json::Value::from),
    ]
}

/// Any serde_json tree.
fn serde_tree() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        number(),
        key().prop_map(serde_json::Value::String),
        ".{0,8}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A piece of a JSON string literal's body, lone surrogates included.
fn string_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9]{1,3}",
        2 => prop::sample::select(vec![
            "\\ud800", "\\udc00", "\\udbff", "\\ud83d\\ude00", "\\ufffd", "\\ue000", "\\uffff",
            "😀", "-", " ", "1", "\\\"", "\\n",
        ])
        .prop_map(str::to_owned),
    ]
}

fn string_lit() -> impl Strategy<Value = String> {
    prop::collection::vec(string_piece(), 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// Keys as wire text: numeric spellings (for maps with integer keys), booleans, and
/// keys that collapse into one once their lone surrogates are replaced.
fn key_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "\"1\"", "\"-1\"", "\"01\"", "\"1 \"", "\" 1\"", "\"1e2\"", "\"1.5\"", "\"300\"",
            "\"-\"", "\"18446744073709551616\"", "\"1\\ud800\"", "\"-\\udc00\"", "\"true\"",
            "\"false\"", "\"a\"", "\"b\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ufffd\"",
            "\"\\ue000\"", "\"😀\"", "\"Unit\"", "\"New\"", "\"Tup\"", "\"Rec\"",
        ])
        .prop_map(str::to_owned),
        1 => string_lit(),
    ]
}

fn number_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "-?(0|[1-9][0-9]{0,17})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
        1 => prop::sample::select(vec![
            "-0", "1e400", "-1e400", "9007199254740991", "9007199254740992", "-9007199254740991",
            "0.5", "255", "256", "-129", "65536", "4294967296",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A wire value parsed from generated text: lone surrogates, infinities (`1e400`),
/// duplicate keys and all.
fn wire_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number_lit(),
        string_lit(),
    ];
    let text = leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|i| format!("[{}]", i.join(","))),
            prop::collection::vec((key_lit(), inner), 0..5).prop_map(|m| {
                let m: Vec<String> = m.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", m.join(","))
            }),
        ]
    });
    text.prop_map(|t| json::parse(t.as_bytes()).expect("generated JSON parses"))
}

/// Wire values of both origins.
fn any_wire() -> impl Strategy<Value = Value> {
    prop_oneof![
        wire_tree(),
        serde_tree().prop_filter_map("wire-safe", |j| Value::from_serde(&j).ok()),
    ]
}

// ---------------------------------------------------------------------------------
// Types

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    New(u32),
    Tup(u8, String),
    Rec { a: bool, b: Option<i64> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    #[serde(rename = "id")]
    order_id: String,
    qty: u64,
    price: f64,
    rush_delivery: Option<bool>,
    shape: Shape,
    tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
enum Tagged {
    Ping { seq: u32 },
    Note { text: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Loose {
    Num(i64),
    Text(String),
    List(Vec<Loose>),
}

/// A struct whose two unsafe fields are declared out of alphabetical order: the old
/// pipeline reports `$.a`, the first in serde_json's map order.
#[derive(Debug, Serialize)]
struct TwoBig {
    z: u64,
    b: Vec<i64>,
    a: u64,
}

/// A map serialized member by member, duplicates and all.
#[derive(Debug)]
struct Members<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Members<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A type whose Serialize fails with its own message.
#[derive(Debug)]
struct Refuses;

impl Serialize for Refuses {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("not today"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Id(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Color {
    Red,
    Green,
}

// ---------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(1024))]

    /// Any serde_json tree converts as `from_serde` converts it, or fails with the same
    /// path and problem.
    #[test]
    fn to_value_matches_from_serde(j in serde_tree()) {
        match (Value::from_serde(&j), wire::to_value(&j)) {
            (Ok(old), Ok(new)) => {
                prop_assert!(same(&old, &new), "{old:?} vs {new:?}");
                prop_assert_eq!(old.to_canonical(), new.to_canonical());
            }
            (Err(old), Err(BridgeError::Unsafe(new))) => {
                prop_assert_eq!(&old.path, &new.path);
                prop_assert_eq!(old.problem, new.problem);
            }
            (old, new) => prop_assert!(false, "old {old:?}, new {new:?}"),
        }
    }

    /// Any wire value reads into `serde_json::Value` exactly as `to_serde` builds it,
    /// as built and as received.
    #[test]
    fn from_value_matches_to_serde(v in any_wire()) {
        for v in [&v, &as_received(&v)] {
            let new: serde_json::Value = wire::from_value(Some(v)).expect("any value reads");
            let old = v.to_serde();
            prop_assert_eq!(&new, &old);
            // `==` takes -0.0 for 0.0; the text tells them apart.
            prop_assert_eq!(new.to_string(), old.to_string());
        }
    }

    /// Typed reads of arbitrary wire values: the same values, the same error messages.
    #[test]
    fn typed_reads_match(v in any_wire()) {
        assert_decodes_alike::<u8>(&v);
        assert_decodes_alike::<i32>(&v);
        assert_decodes_alike::<u64>(&v);
        assert_decodes_alike::<i128>(&v);
        assert_decodes_alike::<f32>(&v);
        assert_decodes_alike::<f64>(&v);
        assert_decodes_alike::<bool>(&v);
        assert_decodes_alike::<char>(&v);
        assert_decodes_alike::<String>(&v);
        assert_decodes_alike::<()>(&v);
        assert_decodes_alike::<Option<String>>(&v);
        assert_decodes_alike::<Vec<u8>>(&v);
        assert_decodes_alike::<Vec<Option<f64>>>(&v);
        assert_decodes_alike::<(u8, String)>(&v);
        assert_decodes_alike::<HashMap<u32, String>>(&v);
        assert_decodes_alike::<BTreeMap<i64, serde_json::Value>>(&v);
        assert_decodes_alike::<BTreeMap<u8, bool>>(&v);
        assert_decodes_alike::<BTreeMap<i128, serde_json::Value>>(&v);
        assert_decodes_alike::<BTreeMap<bool, serde_json::Value>>(&v);
        assert_decodes_alike::<BTreeMap<Id, serde_json::Value>>(&v);
        assert_decodes_alike::<BTreeMap<Color, serde_json::Value>>(&v);
        assert_decodes_alike::<BTreeMap<String, String>>(&v);
        assert_decodes_alike::<Vec<(String, serde_json::Value)>>(&v);
        assert_decodes_alike::<Shape>(&v);
        assert_decodes_alike::<Vec<Shape>>(&v);
        assert_decodes_alike::<BTreeMap<String, Shape>>(&v);
        assert_decodes_alike::<Color>(&v);
        assert_decodes_alike::<Order>(&v);
        assert_decodes_alike::<Tagged>(&v);
        assert_decodes_alike::<Loose>(&v);
        assert_decodes_alike::<Id>(&v);
    }

    /// Typed values with big integers, odd floats and duplicate keys write alike.
    #[test]
    fn typed_writes_match(
        big in prop::collection::vec(prop_oneof![any::<u64>(), (1u64 << 53) - 2..(1u64 << 53) + 2], 3),
        floats in prop::collection::vec(
            prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-0.0)], 0..4),
        members in prop::collection::vec((key(), any::<i64>()), 0..6),
        wide in prop_oneof![any::<i128>(), (-(1i128 << 60))..(1i128 << 60)],
        c in any::<char>(),
    ) {
        assert_encodes_alike(&TwoBig { z: big[0], b: vec![big[1] as i64, (big[2] as i64).wrapping_neg()], a: big[2] });
        assert_encodes_alike(&floats);
        assert_encodes_alike(&floats.iter().map(|f| *f as f32).collect::<Vec<_>>());
        assert_encodes_alike(&Members(members.clone()));
        assert_encodes_alike(&Members(vec![("k".to_owned(), big[0]), ("k".to_owned(), 1)]));
        assert_encodes_alike(&Members(floats.iter().map(|f| (*f, 1u8)).collect()));
        assert_encodes_alike(&Members(vec![(*floats.first().unwrap_or(&0.5) as f32, 1u8)]));
        assert_encodes_alike(&Members(vec![(wide, members.len())]));
        assert_encodes_alike(&Members(vec![(c, wide)]));
        assert_encodes_alike(&wide);
        assert_encodes_alike(&(wide as u128));
        assert_encodes_alike(&c);
    }
}

// ---------------------------------------------------------------------------------
// Typed cases

fn encode<T: Serialize + ?Sized + Debug>(v: &T) -> Value {
    assert_encodes_alike(v);
    wire::to_value(v).expect("encodes")
}

fn canonical(v: &Value) -> String {
    String::from_utf8(v.to_canonical()).expect("utf-8")
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) {
    let wire = encode(v);
    assert_decodes_alike::<T>(&wire);
    assert_eq!(&wire::from_value::<T>(Some(&wire)).expect("decodes"), v);
}

#[test]
fn struct_with_renamed_fields_and_options() {
    let order = Order {
        order_id: "ord-1".into(),
        qty: 3,
        price: 19.99,
        rush_delivery: None,
        shape: Shape::Unit,
        tags: vec!["a".into(), "😀".into()],
    };
    let wire = encode(&order);
    assert_eq!(
        canonical(&wire),
        r#"{"id":"ord-1","price":19.99,"qty":3,"rushDelivery":null,"shape":"Unit","tags":["a","😀"]}"#
    );
    round_trip(&order);
    round_trip(&Order {
        rush_delivery: Some(true),
        ..order
    });
}

#[test]
fn enums_of_all_four_kinds() {
    for (shape, text) in [
        (Shape::Unit, r#""Unit""#),
        (Shape::New(7), r#"{"New":7}"#),
        (Shape::Tup(1, "x".into()), r#"{"Tup":[1,"x"]}"#),
        (
            Shape::Rec {
                a: true,
                b: Some(-2),
            },
            r#"{"Rec":{"a":true,"b":-2}}"#,
        ),
    ] {
        assert_eq!(canonical(&encode(&shape)), text);
        round_trip(&shape);
    }
    round_trip(&Tagged::Ping { seq: 4 });
    round_trip(&Loose::List(vec![Loose::Num(-1), Loose::Text("t".into())]));
}

#[test]
fn integer_keys_become_strings_and_read_back() {
    let map: HashMap<u32, String> = [(1, "one".into()), (20, "twenty".into())].into();
    assert_eq!(canonical(&encode(&map)), r#"{"1":"one","20":"twenty"}"#);
    round_trip(&map);
    round_trip(&BTreeMap::from([(true, 1u8), (false, 0)]));
    round_trip(&BTreeMap::from([(Id(3), 'c')]));
    round_trip(&BTreeMap::from([(Color::Green, ()), (Color::Red, ())]));
    round_trip(&BTreeMap::from([(-5i128, 1u8)]));
}

#[test]
fn keys_that_are_not_strings_are_refused_like_serde_json() {
    let err = wire::to_value(&Members(vec![(vec![1u8], 1)])).expect_err("seq key");
    assert_eq!(err.to_string(), "key must be a string");
    assert_encodes_alike(&Members(vec![((), 1)]));
    assert_encodes_alike(&Members(vec![(Some(1), 1)]));
    assert_encodes_alike(&Members(vec![(Shape::New(1), 1)]));
    assert_encodes_alike(&Members(vec![(f64::NAN, 1)]));
    assert_encodes_alike(&Members(vec![(1.5f64, 1), (0.1f64, 2), (1e21, 3)]));
    assert_encodes_alike(&Members(vec![(0.1f32, 1)]));
}

#[test]
fn integers_beyond_2_pow_53_are_refused_with_their_path() {
    let err = wire::to_value(&serde_json::json!({"a": [1, 2, {"b": 9_007_199_254_740_992u64}]}))
        .expect_err("unsafe");
    assert_eq!(
        err,
        BridgeError::Unsafe(UnsafeJson {
            path: "$.a[2].b".into(),
            problem: "integer beyond ±2^53 would lose precision",
        })
    );
    assert_encodes_alike(&u64::MAX);
    assert_encodes_alike(&i64::MIN);
    assert_encodes_alike(&9_007_199_254_740_991u64);
    assert_encodes_alike(&-9_007_199_254_740_991i64);
    // Declared z, b, a: serde_json's map visits `a` first.
    let two = TwoBig {
        z: u64::MAX,
        b: vec![0, i64::MIN],
        a: u64::MAX,
    };
    let err = wire::to_value(&two).expect_err("unsafe");
    assert!(
        matches!(&err, BridgeError::Unsafe(e) if e.path == "$.a"),
        "{err}"
    );
    assert_encodes_alike(&two);
    // A later duplicate replaces the unsafe one: no error, as before.
    assert_encodes_alike(&Members(vec![("k", u64::MAX), ("k", 1)]));
    assert!(wire::to_value(&Members(vec![("k", u64::MAX), ("k", 1)])).is_ok());
}

#[test]
fn non_finite_floats_become_null_as_serde_json_writes_them() {
    assert_eq!(encode(&f64::NAN), Value::Null);
    assert_eq!(encode(&f64::NEG_INFINITY), Value::Null);
    assert_eq!(
        encode(&vec![f32::INFINITY]),
        Value::Array(vec![Value::Null])
    );
    // And the other way, an infinity on the wire reads as null.
    let inf = json::parse(b"[1e400]").expect("parses");
    assert_decodes_alike::<Vec<Option<f64>>>(&inf);
    assert_eq!(
        wire::from_value::<Vec<Option<f64>>>(Some(&inf)).expect("reads"),
        vec![None]
    );
}

#[test]
fn unit_tuples_bytes_chars_and_wide_integers() {
    assert_eq!(encode(&()), Value::Null);
    round_trip(&());
    round_trip(&(1u8, "two".to_owned(), 3.5f64));
    assert_eq!(canonical(&encode(&vec![1u8, 2, 255])), "[1,2,255]");
    round_trip(&vec![0u8, 255]);
    round_trip(&'😀');
    round_trip(&'x');
    round_trip(&-9_007_199_254_740_991i128);
    round_trip(&9_007_199_254_740_991u128);
    assert_encodes_alike(&(1i128 << 70));
    assert_eq!(
        wire::to_value(&(1u128 << 64))
            .expect_err("too wide")
            .to_string(),
        "number out of range"
    );
    assert_encodes_alike(&Refuses);
    assert_eq!(
        wire::to_value(&vec![Refuses]).expect_err("refuses"),
        BridgeError::Custom("not today".into())
    );
}

#[test]
fn absent_data_reads_as_null() {
    assert_eq!(wire::from_value::<()>(None), Ok(()));
    assert_eq!(wire::from_value::<Option<u8>>(None), Ok(None));
    assert_eq!(
        wire::from_value::<serde_json::Value>(None),
        Ok(serde_json::Value::Null)
    );
    assert_eq!(
        wire::from_value::<u8>(None).expect_err("null").to_string(),
        old_decode::<u8>(None).expect_err("null")
    );
}

#[test]
fn lone_surrogates_read_as_replacement_characters() {
    let v = json::parse(br#"{"\ud800":"x\udc00","\udc00":1,"\ufffd":2}"#).expect("parses");
    assert_decodes_alike::<serde_json::Value>(&v);
    assert_decodes_alike::<BTreeMap<String, serde_json::Value>>(&v);
    // Three keys collapse into one; the last in UTF-16 order wins, as in `to_serde`.
    let map: BTreeMap<String, serde_json::Value> = wire::from_value(Some(&v)).expect("reads");
    assert_eq!(map.len(), 1);
    assert_decodes_alike::<Shape>(&json::parse(br#""\ud800""#).expect("parses"));
    assert_decodes_alike::<HashMap<u32, u8>>(&json::parse(br#"{"1\ud800":1}"#).expect("parses"));
    assert_decodes_alike::<HashMap<u8, u8>>(&json::parse(br#"{"300\ud800":1}"#).expect("parses"));
    let s = JsString::from("plain");
    assert_eq!(
        wire::from_value::<String>(Some(&Value::String(s))),
        Ok("plain".to_owned())
    );
}

#[test]
fn raw_values_pass_through() {
    let raw =
        serde_json::value::RawValue::from_string(r#"{"b":[1,2],"a":9007199254740993}"#.into())
            .expect("raw");
    assert_encodes_alike(&raw);
    let err = wire::to_value(&raw).expect_err("unsafe");
    assert!(
        matches!(&err, BridgeError::Unsafe(e) if e.path == "$.a"),
        "{err}"
    );
    let ok = serde_json::value::RawValue::from_string(r#"[1,{"x":null}]"#.into()).expect("raw");
    assert_eq!(canonical(&encode(&ok)), r#"[1,{"x":null}]"#);
    #[derive(Debug, Serialize)]
    struct Holder<'a> {
        inner: &'a serde_json::value::RawValue,
    }
    assert_encodes_alike(&Holder { inner: &ok });

    let wire = json::parse(br#"{"a":[1,2.5,"\ud800"],"b":null}"#).expect("parses");
    let old: Box<serde_json::value::RawValue> = old_decode(Some(&wire)).expect("old");
    let new: Box<serde_json::value::RawValue> = wire::from_value(Some(&wire)).expect("new");
    assert_eq!(old.get(), new.get());
}

/// Visitors that stop early: one reads the first member or item and returns, one
/// takes keys without their values. The text reader reports what is left exactly as
/// the reader of built values does.
#[derive(Debug, PartialEq)]
struct Partial;

#[derive(Debug, PartialEq)]
struct KeysOnly;

impl<'de> Deserialize<'de> for Partial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Partial;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("anything")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Partial, A::Error> {
                let _ = m.next_entry::<String, serde::de::IgnoredAny>()?;
                Ok(Partial)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Partial, A::Error> {
                let _ = s.next_element::<serde::de::IgnoredAny>()?;
                Ok(Partial)
            }
            fn visit_unit<E>(self) -> Result<Partial, E> {
                Ok(Partial)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for KeysOnly {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeysOnly;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<KeysOnly, A::Error> {
                while m.next_key::<String>()?.is_some() {}
                Ok(KeysOnly)
            }
        }
        d.deserialize_map(V)
    }
}

#[test]
fn early_stops_read_alike_from_text() {
    for text in [
        r#"{}"#,
        r#"{"a":1}"#,
        r#"{"a":{"x":[1,2]},"b":"s","c":null}"#,
        r#"{"a":[[1],{"b":2}],"c":3}"#,
        r#"{"list":[1,[2,3],{"x":4},"y"]}"#,
    ] {
        let v = json::parse(text.as_bytes()).expect("parses");
        assert_decodes_alike::<Partial>(&v);
        assert_decodes_alike::<KeysOnly>(&v);
        assert_decodes_alike::<BTreeMap<String, Partial>>(&v);
        assert_decodes_alike::<BTreeMap<String, Vec<Partial>>>(&v);
    }
}

/// The reference's benchmark payload, and one with escapes, read from received text.
#[test]
fn typed_payloads_read_from_received_text() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Nested {
        ok: bool,
        n: u32,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Payload {
        kind: String,
        seq: u64,
        ts: f64,
        tags: Vec<String>,
        nested: Nested,
        note: Option<String>,
    }
    for note in [None, Some("tab\tquote\" é ～ \u{1}".to_owned())] {
        let payload = Payload {
            kind: "event".to_owned(),
            seq: 7,
            ts: 1_700_000_000_123.5,
            tags: vec!["a".into(), "b".into(), "c".into()],
            nested: Nested { ok: true, n: 42 },
            note,
        };
        let received = as_received(&encode(&payload));
        assert!(matches!(&received, Value::Object(_)));
        assert_eq!(
            wire::from_value::<Payload>(Some(&received)).expect("reads"),
            payload
        );
        assert_decodes_alike::<Payload>(&received);
    }
}

/// Objects written straight to text hold doubles beyond ±2^53 as JavaScript writes
/// them, and the core sends them: a JavaScript peer holds the very same doubles.
#[test]
fn large_doubles_in_written_objects_are_written_as_javascript_does() {
    #[derive(Serialize)]
    struct Reading {
        at: f64,
        n: f64,
    }
    for (n, text) in [
        (1.5, r#"{"at":1,"n":1.5}"#),
        (1e21, r#"{"at":1,"n":1e+21}"#),
        (9_007_199_254_740_992.0, r#"{"at":1,"n":9007199254740992}"#),
        (-1e300, r#"{"at":1,"n":-1e+300}"#),
    ] {
        let v = wire::to_value(&Reading { at: 1.0, n }).expect("encodes");
        assert_eq!(wire::validate::check_json_safe(&v), Ok(()), "{n}");
        assert_eq!(canonical(&v), text);
    }
}

/// A payload far larger than the writer keeps buffers for, before and after small
/// ones, writes exactly as the tree does.
#[test]
fn large_payloads_write_alike() {
    #[derive(Debug, Serialize)]
    struct Blob {
        z: String,
        a: Vec<u32>,
    }
    for size in [10, 300_000, 10] {
        let blob = Blob {
            z: "é".repeat(size),
            a: (0..size as u32 / 10).collect(),
        };
        assert_encodes_alike(&blob);
    }
}
