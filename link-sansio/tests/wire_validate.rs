//! The validation rules of PROTOCOL.md §3, §5 and §8: topics, kinds (and the order
//! their failures are reported in), hello sanitising, and the JSON-safety check for
//! outgoing payloads.

use link_sansio::wire::validate::{
    BadHello, BadKind, check_json_safe, check_kind, cut_utf16, is_valid_topic, js_trim,
    sanitize_hello, topic_of,
};
use link_sansio::wire::{JsString, Value, json};

fn parse(text: &str) -> Value {
    json::parse(text.as_bytes()).expect("test JSON")
}

#[test]
fn topics_are_1_to_256_name_characters() {
    for good in ["a", "jobs.queue-1_A", "...", "-", &"z".repeat(256)] {
        assert!(is_valid_topic(good), "{good:?}");
    }
    for bad in [
        "",
        "a b",
        "a*",
        "a/b",
        "a:b",
        "é",
        "a\n",
        "😀",
        &"z".repeat(257),
    ] {
        assert!(!is_valid_topic(bad), "{bad:?}");
    }
}

#[test]
fn topic_of_takes_only_valid_strings() {
    assert_eq!(topic_of(Some(&parse(r#""jobs""#))), Some("jobs"));
    for v in ["5", "null", "[\"jobs\"]", "\"\"", "\"a b\"", r#""\ud800""#] {
        assert_eq!(topic_of(Some(&parse(v))), None, "{v}");
    }
    assert_eq!(topic_of(None), None);
}

#[test]
fn kinds_fail_in_the_reference_order() {
    assert_eq!(check_kind("worker-1.eu_west"), Ok(()));
    assert_eq!(check_kind(&"k".repeat(256)), Ok(()));
    assert_eq!(check_kind(""), Err(BadKind::Missing));
    // Length is checked before characters and reserved names.
    assert_eq!(check_kind(&"k".repeat(257)), Err(BadKind::Oversized));
    assert_eq!(check_kind(&"!".repeat(257)), Err(BadKind::Oversized));
    assert_eq!(check_kind(&"é".repeat(200)), Err(BadKind::Invalid));
    assert_eq!(check_kind(&"😀".repeat(129)), Err(BadKind::Oversized));
    for reserved in ["server", "__proto__", "constructor", "prototype"] {
        assert_eq!(check_kind(reserved), Err(BadKind::Reserved), "{reserved}");
    }
    assert_eq!(
        check_kind("Server"),
        Ok(()),
        "reserved names are case-sensitive"
    );
    for invalid in ["a b", "a,b", "[object Object]", "ü", "a\u{0}"] {
        assert_eq!(check_kind(invalid), Err(BadKind::Invalid), "{invalid:?}");
    }
    assert_eq!(BadKind::Oversized.as_str(), "oversized-kind");
    assert_eq!(BadKind::Reserved.to_string(), "reserved-kind");
}

fn hello(text: &str) -> Result<link_sansio::wire::message::HelloInfo, BadHello> {
    sanitize_hello(Some(&parse(text)))
}

fn kind_of(text: &str) -> Result<String, BadKind> {
    hello(text).map(|h| h.kind).map_err(|BadHello(k)| k)
}

#[test]
fn hello_kind_is_coerced_like_javascript_string() {
    assert_eq!(kind_of(r#"{"kind":123}"#), Ok("123".into()));
    assert_eq!(kind_of(r#"{"kind":1.50}"#), Ok("1.5".into()));
    assert_eq!(kind_of(r#"{"kind":true}"#), Ok("true".into()));
    // String([]) is "", String(["a","b"]) is "a,b", String({}) is "[object Object]".
    assert_eq!(kind_of(r#"{"kind":[]}"#), Err(BadKind::Missing));
    assert_eq!(kind_of(r#"{"kind":["ab"]}"#), Ok("ab".into()));
    assert_eq!(kind_of(r#"{"kind":["a","b"]}"#), Err(BadKind::Invalid));
    assert_eq!(kind_of(r#"{"kind":{}}"#), Err(BadKind::Invalid));
    // `kind ?? ''`: null and missing are empty.
    assert_eq!(kind_of(r#"{"kind":null}"#), Err(BadKind::Missing));
    assert_eq!(kind_of(r#"{}"#), Err(BadKind::Missing));
    assert_eq!(sanitize_hello(None).map_err(|e| e.0), Err(BadKind::Missing));
    assert_eq!(kind_of("5"), Err(BadKind::Missing));
    assert_eq!(kind_of(r#"{"kind":"server"}"#), Err(BadKind::Reserved));
}

#[test]
fn hello_kind_is_trimmed_of_javascript_whitespace() {
    assert_eq!(kind_of(r#"{"kind":" \t\n w \r"}"#), Ok("w".into()));
    assert_eq!(
        kind_of("{\"kind\":\"\u{a0}\u{feff}\u{3000}w\u{2028}\u{205f}\"}"),
        Ok("w".into())
    );
    assert_eq!(kind_of(r#"{"kind":"\u000b\u000cw"}"#), Ok("w".into()));
    // U+200B (zero-width space) is not whitespace to JavaScript.
    assert_eq!(kind_of("{\"kind\":\"\u{200b}w\"}"), Err(BadKind::Invalid));
    assert_eq!(kind_of(r#"{"kind":"   "}"#), Err(BadKind::Missing));
    assert_eq!(kind_of(r#"{"kind":" a b "}"#), Err(BadKind::Invalid));
}

#[test]
fn hello_kind_with_a_lone_surrogate_keeps_the_reference_order() {
    assert_eq!(kind_of(r#"{"kind":"a\ud800"}"#), Err(BadKind::Invalid));
    let long = format!(r#"{{"kind":"{}\ud800"}}"#, "a".repeat(256));
    assert_eq!(kind_of(&long), Err(BadKind::Oversized));
}

#[test]
fn hello_name_is_coerced_trimmed_and_cut_to_256_units() {
    let h = hello(r#"{"kind":"w","name":"  svc  "}"#).expect("valid");
    assert_eq!(h.name, "svc");
    assert_eq!(
        hello(r#"{"kind":"w","name":42}"#).expect("valid").name,
        "42"
    );
    assert_eq!(hello(r#"{"kind":"w"}"#).expect("valid").name, "");
    assert_eq!(
        hello(r#"{"kind":"w","name":null}"#).expect("valid").name,
        ""
    );
    let long = format!(r#"{{"kind":"w","name":"  {}  "}}"#, "n".repeat(300));
    assert_eq!(hello(&long).expect("valid").name.utf16_len(), 256);
    // A cut through a surrogate pair keeps the high half, as String#slice does.
    let astral = format!(r#"{{"kind":"w","name":"{}😀"}}"#, "n".repeat(255));
    let name = hello(&astral).expect("valid").name;
    assert_eq!(name.utf16_len(), 256);
    assert_eq!(
        json::parse(&Value::String(name.clone()).to_canonical()).expect("json"),
        Value::String(name.clone())
    );
    assert!(String::from_utf8_lossy(&Value::String(name).to_canonical()).ends_with("n\\ud83d\""));
}

#[test]
fn hello_name_keeps_lone_surrogates_when_trimmed() {
    let h = hello(r#"{"kind":"w","name":"  \ud800x\udfff  "}"#).expect("valid");
    assert_eq!(
        Value::String(h.name).to_canonical(),
        br#""\ud800x\udfff""#.to_vec()
    );
}

#[test]
fn hello_numbers_are_kept_only_when_finite_numbers() {
    let h =
        hello(r#"{"kind":"w","pid":1234,"startedAt":1.5e12,"extra":"dropped"}"#).expect("valid");
    assert_eq!(h.pid, Some(1234.0));
    assert_eq!(h.started_at, Some(1.5e12));
    let h = hello(r#"{"kind":"w","pid":"1234","startedAt":1e400}"#).expect("valid");
    assert_eq!(h.pid, None);
    assert_eq!(h.started_at, None);
    // Only the four sanitised fields go on the wire; absent numbers are null.
    assert_eq!(
        String::from_utf8(h.to_value().to_canonical()).expect("utf8"),
        r#"{"kind":"w","name":"","pid":null,"startedAt":null}"#
    );
}

#[test]
fn js_trim_and_cut_on_their_own() {
    assert_eq!(js_trim(&JsString::from("\u{2000}x\u{200a}")), "x");
    assert_eq!(js_trim(&JsString::from("x")), "x");
    assert_eq!(js_trim(&JsString::from(" \u{3000} ")), "");
    assert_eq!(cut_utf16(&JsString::from("abc"), 2), "ab");
    assert_eq!(cut_utf16(&JsString::from("abc"), 5), "abc");
    assert_eq!(cut_utf16(&JsString::from("é😀"), 2).utf16_len(), 2);
    assert_eq!(cut_utf16(&JsString::from("é😀"), 3), "é😀");
}

fn unsafe_path(v: serde_json::Value) -> Option<(String, String)> {
    Value::from_serde(&v)
        .err()
        .map(|e| (e.path.clone(), e.to_string()))
}

#[test]
fn from_serde_refuses_integers_beyond_2_pow_53_and_names_the_path() {
    let max = (1i64 << 53) - 1;
    assert_eq!(unsafe_path(serde_json::json!(max)), None);
    assert_eq!(unsafe_path(serde_json::json!(-max)), None);
    assert_eq!(
        Value::from_serde(&serde_json::json!(max)).expect("safe"),
        Value::Number(max as f64)
    );
    for beyond in [
        serde_json::json!(max + 1),
        serde_json::json!(-max - 1),
        serde_json::json!(i64::MIN),
        serde_json::json!(u64::MAX),
    ] {
        let (path, message) = unsafe_path(beyond.clone()).expect("refused");
        assert_eq!(path, "$", "{beyond}");
        assert!(message.contains("2^53"), "{message}");
    }
    let nested = serde_json::json!({"a": [0, 1, {"b": 9_007_199_254_740_993u64}]});
    let (path, message) = unsafe_path(nested).expect("refused");
    assert_eq!(path, "$.a[2].b");
    assert!(
        message.starts_with("value at $.a[2].b is not JSON-safe"),
        "{message}"
    );
    // Floats and ordinary values convert, including keys JavaScript sorts differently.
    let ok = serde_json::json!({"x": 0.1, "y": [true, null, "s"], "～": 1, "😀": 2});
    let v = Value::from_serde(&ok).expect("safe");
    assert_eq!(
        String::from_utf8(v.to_canonical()).expect("utf8"),
        r#"{"x":0.1,"y":[true,null,"s"],"😀":2,"～":1}"#
    );
    assert_eq!(v.to_serde(), ok);
}

/// Doubles beyond ±2^53 are what a JavaScript peer holds (and may have just sent):
/// they go as they are, as the reference lets them. Only what JSON cannot carry is
/// refused. (Rust integers beyond ±2^53 are refused where they become doubles.)
#[test]
fn check_json_safe_refuses_only_non_finite_numbers() {
    for safe in [
        r#"{"a":[1,0.5,-0,"x",null]}"#,
        "9007199254740991",
        "9007199254740992",
        "[9007199254740993]",
        r#"{"n":{"m":-1e20}}"#,
        "1e21",
        "1.7976931348623157e308",
    ] {
        assert_eq!(check_json_safe(&parse(safe)), Ok(()), "{safe}");
    }
    let cases = [
        (Value::Number(f64::NAN), "$", "not finite"),
        (Value::Number(f64::INFINITY), "$", "not finite"),
        (parse(r#"{"a":[0,{"b":1e400}]}"#), "$.a[1].b", "not finite"),
    ];
    for (value, path, problem) in cases {
        let err = check_json_safe(&value).expect_err("refused");
        assert_eq!(err.path, path);
        assert!(err.problem.contains(problem), "{}", err.problem);
    }
}
