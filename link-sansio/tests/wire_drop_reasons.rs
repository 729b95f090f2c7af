//! One test per inbound drop reason of PROTOCOL.md §6, in the reference's order, with
//! the edges that decide between two reasons.

use link_sansio::seeded::SeededState;
use link_sansio::wire::{
    self, DropReason, Frame, HashAlgo, Key, Limits, ReplayGuard, Value, json, message::types,
};

const SECRET: &str = "drop-secret";

fn key() -> Key {
    Key::new(SECRET, HashAlgo::Sha256)
}

/// Signs the object in `text` (any `sig` it has is replaced) and returns the frame.
fn signed_with(text: &str, key: &Key) -> Vec<u8> {
    let Value::Object(mut obj) = json::parse(text.as_bytes()).expect("test frame is JSON") else {
        panic!("test frame is an object");
    };
    obj.remove("sig");
    let canonical = Value::Object(obj.clone()).to_canonical();
    obj.insert("sig", Value::from(key.sign_hex(&canonical)));
    Value::Object(obj).to_canonical()
}

fn signed(text: &str) -> Vec<u8> {
    signed_with(text, &key())
}

/// The frame in `text` with its `sig` replaced by `sig` (raw JSON).
fn with_sig(text: &str, sig: &str) -> Vec<u8> {
    let mut obj = json::parse(text.as_bytes())
        .expect("json")
        .as_object()
        .expect("object")
        .clone();
    obj.insert("sig", json::parse(sig.as_bytes()).expect("sig json"));
    Value::Object(obj).to_canonical()
}

fn decode(bytes: &[u8]) -> Result<wire::Envelope, DropReason> {
    wire::decode(bytes, &key(), &Limits::default(), &mut Vec::new())
}

const GOOD: &str = r#"{"v":1,"id":"m-1","ts":1000,"type":"direct","from":"a","to":"b","data":{"directType":"t","directData":[1,2]}}"#;

#[test]
fn a_well_formed_frame_decodes() {
    let env = decode(&signed(GOOD)).expect("verifies");
    assert_eq!(env.id, "m-1");
    assert_eq!(env.ts, 1000.0);
    assert_eq!(env.from.as_ref().map(|f| f.to_string()), Some("a".into()));
    assert_eq!(env.message.msg_type(), types::DIRECT);
}

#[test]
fn oversize_is_checked_on_raw_length_before_parsing() {
    let frame = signed(GOOD);
    let exact = Limits {
        max_message_bytes: frame.len(),
        ..Limits::default()
    };
    assert!(wire::decode(&frame, &key(), &exact, &mut Vec::new()).is_ok());
    let one_less = Limits {
        max_message_bytes: frame.len() - 1,
        ..Limits::default()
    };
    assert_eq!(
        wire::decode(&frame, &key(), &one_less, &mut Vec::new()).map(|_| ()),
        Err(DropReason::Oversize)
    );
    // Garbage that is too long is oversize, not a parse error.
    let garbage = vec![b'x'; 11];
    let small = Limits {
        max_message_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        Frame::parse(&garbage, &small).map(|_| ()),
        Err(DropReason::Oversize)
    );
}

/// `JSON.parse` accepts these, and the reference then finds no string `id` in them.
#[test]
fn missing_id_for_json_that_is_not_an_object() {
    let cases: [&[u8]; 6] = [b"[1,2]", b"[]", b"\"a string\"", b" 42 ", b"null", b"true"];
    for case in cases {
        assert_eq!(
            decode(case).map(|_| ()),
            Err(DropReason::MissingId),
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn parse_error_for_anything_json_parse_refuses() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let cases: Vec<&[u8]> = vec![
        b"",
        b"   ",
        b"not json",
        b"{\"id\":\"x\"",
        b"{\"id\":\"x\"} trailing",
        b"{\"id\":\"x\",}",
        b"{'id':'x'}",
        // Invalid UTF-8 in a string, with and without an escape before it.
        b"{\"id\":\"\xff\"}",
        b"{\"id\":\"\\n\xed\xa0\x80\"}",
        b"{\"id\":\"\\u12\"}",
        deep.as_bytes(),
    ];
    for case in cases {
        assert_eq!(
            decode(case).map(|_| ()),
            Err(DropReason::ParseError),
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn missing_id_when_not_a_non_empty_string() {
    for id in [None, Some("\"\""), Some("5"), Some("null"), Some("[\"a\"]")] {
        let text = match id {
            Some(id) => format!(r#"{{"v":1,"id":{id},"ts":1,"type":"direct"}}"#),
            None => r#"{"v":1,"ts":1,"type":"direct"}"#.to_owned(),
        };
        // Signed or not, the id is checked first.
        assert_eq!(
            decode(&signed(&text)).map(|_| ()),
            Err(DropReason::MissingId),
            "{text}"
        );
        assert_eq!(
            decode(text.as_bytes()).map(|_| ()),
            Err(DropReason::MissingId)
        );
    }
}

#[test]
fn oversized_id_counts_utf16_units() {
    let frame = |id: &str| signed(&format!(r#"{{"v":1,"id":"{id}","ts":1,"type":"direct"}}"#));
    assert!(decode(&frame(&"a".repeat(256))).is_ok());
    assert_eq!(
        decode(&frame(&"a".repeat(257))).map(|_| ()),
        Err(DropReason::OversizedId)
    );
    // 128 astral characters are 256 units (512 UTF-8 bytes): still fine.
    assert!(decode(&frame(&"😀".repeat(128))).is_ok());
    assert_eq!(
        decode(&frame(&"😀".repeat(129))).map(|_| ()),
        Err(DropReason::OversizedId)
    );
    // Escaped lone surrogates are one unit each.
    assert!(decode(&frame(&"\\ud800".repeat(256))).is_ok());
    assert_eq!(
        decode(&frame(&"\\ud800".repeat(257))).map(|_| ()),
        Err(DropReason::OversizedId)
    );
    // Oversized id wins over a bad signature (step 3 before step 5).
    let unsigned = format!(r#"{{"v":1,"id":"{}","ts":1}}"#, "a".repeat(257));
    assert_eq!(
        decode(unsigned.as_bytes()).map(|_| ()),
        Err(DropReason::OversizedId)
    );
}

#[test]
fn bad_signature_when_missing_empty_or_not_a_string() {
    assert_eq!(
        decode(GOOD.as_bytes()).map(|_| ()),
        Err(DropReason::BadSignature)
    );
    for sig in ["\"\"", "null", "0", "false", "true", "[]", "{}"] {
        assert_eq!(
            decode(&with_sig(GOOD, sig)).map(|_| ()),
            Err(DropReason::BadSignature),
            "sig {sig}"
        );
    }
    // The right signature as an array or object of itself does not pass either.
    let good = String::from_utf8(signed(GOOD)).expect("utf8");
    let sig = json::parse(good.as_bytes())
        .expect("json")
        .get("sig")
        .and_then(Value::as_str)
        .expect("sig")
        .to_owned();
    assert_eq!(
        decode(&with_sig(GOOD, &format!("[\"{sig}\"]"))).map(|_| ()),
        Err(DropReason::BadSignature)
    );
}

#[test]
fn bad_signature_for_wrong_length_digits_or_key() {
    let good = signed(GOOD);
    let sig = json::parse(&good)
        .expect("json")
        .get("sig")
        .and_then(Value::as_str)
        .expect("sig")
        .to_owned();
    assert!(decode(&with_sig(GOOD, &format!("\"{sig}\""))).is_ok());
    assert!(
        decode(&with_sig(GOOD, &format!("\"{}\"", sig.to_uppercase()))).is_ok(),
        "either case is accepted"
    );
    let truncated = &sig[..63];
    let cases = [
        truncated.to_owned(),
        sig[..62].to_owned(),
        // The reference tolerates these trailing extras; we accept exactly the
        // digest's length (DESIGN.md), which no reference sender ever exceeds.
        format!("{sig}a"),
        format!("{sig}ab"),
        format!("{sig}zz"),
        format!(" {sig}"),
        format!("{}g", truncated),
        // A sha512-length signature for a sha256 key.
        Key::new(SECRET, HashAlgo::Sha512).sign_hex(b"x"),
    ];
    for bad in cases {
        assert_eq!(
            decode(&with_sig(GOOD, &format!("\"{bad}\""))).map(|_| ()),
            Err(DropReason::BadSignature),
            "sig {bad}"
        );
    }
    // Another secret, or the same secret under another hash.
    assert_eq!(
        decode(&signed_with(GOOD, &Key::new("other", HashAlgo::Sha256))).map(|_| ()),
        Err(DropReason::BadSignature)
    );
    let sha512 = Key::new(SECRET, HashAlgo::Sha512);
    let frame = signed_with(GOOD, &sha512);
    assert_eq!(decode(&frame).map(|_| ()), Err(DropReason::BadSignature));
    assert!(wire::decode(&frame, &sha512, &Limits::default(), &mut Vec::new()).is_ok());
}

#[test]
fn bad_signature_when_any_signed_field_changes() {
    let good = String::from_utf8(signed(GOOD)).expect("utf8");
    for (from, to) in [
        ("\"ts\":1000", "\"ts\":1001"),
        ("\"from\":\"a\"", "\"from\":\"c\""),
        ("[1,2]", "[1,3]"),
        ("\"v\":1", "\"v\":1,\"extra\":null"),
    ] {
        let tampered = good.replacen(from, to, 1);
        assert_ne!(tampered, good);
        assert_eq!(
            decode(tampered.as_bytes()).map(|_| ()),
            Err(DropReason::BadSignature),
            "{from} -> {to}"
        );
    }
    // Extra top-level fields are signed like the rest, and a nested `sig` too.
    let extra = r#"{"v":1,"id":"m","ts":1,"type":"x","extra":{"sig":"nested"}}"#;
    let frame = String::from_utf8(signed(extra)).expect("utf8");
    assert!(decode(frame.as_bytes()).is_ok());
    let tampered = frame.replacen("nested", "nestee", 1);
    assert_eq!(
        decode(tampered.as_bytes()).map(|_| ()),
        Err(DropReason::BadSignature)
    );
}

#[test]
fn bad_version_unless_the_number_one_and_only_after_the_signature() {
    let frame = |v: &str| format!(r#"{{"v":{v},"id":"m","ts":1,"type":"direct"}}"#);
    assert!(decode(&signed(&frame("1"))).is_ok());
    assert!(decode(&signed(&frame("1.0"))).is_ok(), "1.0 parses to 1");
    assert!(decode(&signed(&frame("1e0"))).is_ok());
    assert!(decode(&signed(&frame("10e-1"))).is_ok());
    for v in ["\"1\"", "2", "0", "-1", "1.5", "true", "null", "[1]", "{}"] {
        assert_eq!(
            decode(&signed(&frame(v))).map(|_| ()),
            Err(DropReason::BadVersion),
            "v {v}"
        );
    }
    let no_v = r#"{"id":"m","ts":1,"type":"direct"}"#;
    assert_eq!(
        decode(&signed(no_v)).map(|_| ()),
        Err(DropReason::BadVersion)
    );
    // An unsigned frame with a bad version is a bad signature: step 5 comes first.
    assert_eq!(
        decode(frame("2").as_bytes()).map(|_| ()),
        Err(DropReason::BadSignature)
    );
}

fn guard(window: u64) -> ReplayGuard {
    let limits = Limits {
        replay_window_ms: window,
        max_recent_ids: 100,
        ..Limits::default()
    };
    ReplayGuard::new(&limits, SeededState::new(3))
}

/// Runs a signed frame through decode and the guard, as a hub or client does.
fn admit(guard: &mut ReplayGuard, text: &str, now_ms: f64) -> Result<(), DropReason> {
    let frame = Frame::parse(&signed(text), &Limits::default())?;
    frame.verify(&key(), &mut Vec::new())?;
    let sender = frame
        .from()
        .map(|f| f.to_string())
        .unwrap_or_else(|| "server".into());
    guard.check(&sender, frame.id(), frame.ts(), frame.msg_type(), now_ms)
}

#[test]
fn replay_window_is_symmetric_and_a_missing_ts_counts_as_zero() {
    let mut g = guard(300_000);
    let at = |ts: &str, id: &str| format!(r#"{{"v":1,"id":"{id}","ts":{ts},"type":"direct"}}"#);
    let now = 1_700_000_000_000.0;
    assert_eq!(admit(&mut g, &at("1700000000000", "a"), now), Ok(()));
    assert_eq!(admit(&mut g, &at("1699999700000", "b"), now), Ok(()));
    assert_eq!(admit(&mut g, &at("1700000300000", "c"), now), Ok(()));
    assert_eq!(
        admit(&mut g, &at("1699999699999", "d"), now),
        Err(DropReason::ReplayWindow)
    );
    assert_eq!(
        admit(&mut g, &at("1700000300001", "e"), now),
        Err(DropReason::ReplayWindow)
    );
    for ts in ["null", "\"1700000000000\"", "1e400"] {
        assert_eq!(
            admit(&mut g, &at(ts, "f"), now),
            Err(DropReason::ReplayWindow),
            "ts {ts}"
        );
    }
    let no_ts = r#"{"v":1,"id":"g","type":"direct"}"#;
    assert_eq!(admit(&mut g, no_ts, now), Err(DropReason::ReplayWindow));
    // A window of 0 turns the check off.
    assert_eq!(admit(&mut guard(0), no_ts, now), Ok(()));
}

#[test]
fn replay_id_per_sender() {
    let mut g = guard(300_000);
    let from = |sender: &str, id: &str| {
        format!(r#"{{"v":1,"id":"{id}","ts":1000,"type":"direct","from":"{sender}"}}"#)
    };
    assert_eq!(admit(&mut g, &from("a", "x"), 1000.0), Ok(()));
    assert_eq!(
        admit(&mut g, &from("a", "x"), 1001.0),
        Err(DropReason::ReplayId)
    );
    assert_eq!(admit(&mut g, &from("b", "x"), 1001.0), Ok(()));
    // A hub-originated frame (from null) is keyed as "server".
    let server = r#"{"v":1,"id":"x","ts":1000,"type":"direct","from":null}"#;
    assert_eq!(admit(&mut g, server, 1000.0), Ok(()));
    assert_eq!(admit(&mut g, server, 1000.0), Err(DropReason::ReplayId));
    // Forgetting a sender (disconnect) clears its ids.
    g.forget("a");
    assert_eq!(admit(&mut g, &from("a", "x"), 1002.0), Ok(()));
    // With the guard off, duplicates pass.
    let mut off = guard(0);
    assert_eq!(admit(&mut off, &from("a", "x"), 1000.0), Ok(()));
    assert_eq!(admit(&mut off, &from("a", "x"), 1000.0), Ok(()));
    assert!(off.is_empty());
}

#[test]
fn rpc_response_is_exempt_from_the_id_check_but_not_the_window() {
    let mut g = guard(300_000);
    let response = |ts: u64| {
        format!(
            r#"{{"v":1,"id":"r","ts":{ts},"type":"rpc.response","from":"a","data":{{"ok":true}}}}"#
        )
    };
    assert_eq!(admit(&mut g, &response(1000), 1000.0), Ok(()));
    assert_eq!(admit(&mut g, &response(1000), 1000.0), Ok(()));
    assert_eq!(g.len(), 0, "responses are not remembered");
    assert_eq!(
        admit(&mut g, &response(1000), 400_000.0),
        Err(DropReason::ReplayWindow)
    );
    // Other types with the same id are still checked.
    let request = r#"{"v":1,"id":"r","ts":1000,"type":"rpc.request","from":"a"}"#;
    assert_eq!(admit(&mut g, request, 1000.0), Ok(()));
    assert_eq!(admit(&mut g, request, 1000.0), Err(DropReason::ReplayId));
}

#[test]
fn drop_reason_names_match_the_reference() {
    let names = [
        (DropReason::Oversize, "oversize"),
        (DropReason::ParseError, "parse-error"),
        (DropReason::MissingId, "missing-id"),
        (DropReason::OversizedId, "oversized-id"),
        (DropReason::BadSignature, "bad-signature"),
        (DropReason::BadVersion, "bad-version"),
        (DropReason::ReplayWindow, "replay-window"),
        (DropReason::ReplayId, "replay-id"),
    ];
    for (reason, name) in names {
        assert_eq!(reason.as_str(), name);
        assert_eq!(reason.to_string(), name);
    }
}
