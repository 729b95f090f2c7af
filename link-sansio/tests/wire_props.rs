//! Properties of the wire layer over generated JSON texts: canonicalization is
//! idempotent, sign → verify round-trips, a flipped byte never verifies as different
//! content, and no input makes decoding panic. The generator writes JSON *text* the
//! way a JavaScript peer might: astral characters, `\ud800`-style lone surrogates,
//! control characters, odd number spellings, duplicate keys, random whitespace.
//! Failures persist under the repository's `proptest-regressions/`.

use link_sansio::seeded::SeededState;
use link_sansio::wire::{
    self, DropReason, Frame, HashAlgo, Header, JsString, Key, Limits, ReplayGuard, Value, json,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../proptest-regressions/wire_props.txt"
        )))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------
// JSON text generators

/// Whitespace JSON allows between tokens.
fn ws() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(String::new()),
        1 => "[ \t\n\r]{1,3}",
    ]
}

/// One piece of a string literal's body, already in JSON text form.
fn string_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        // Plain text, astral and BMP alike.
        4 => any::<char>().prop_map(|c| escape_char(c, false)),
        2 => "[a-z]{1,4}",
        // Characters that must be escaped, written the ways a sender may write them.
        1 => (0u8..0x20).prop_map(|b| escape_char(char::from(b), false)),
        1 => (0u8..0x20).prop_map(|b| format!("\\u{:04X}", b)),
        1 => prop_oneof![
            Just("\\\"".to_owned()),
            Just("\\\\".to_owned()),
            Just("\\/".to_owned()),
            Just("\\b".to_owned()),
            Just("\\f".to_owned()),
            Just("\\n".to_owned()),
            Just("\\r".to_owned()),
            Just("\\t".to_owned()),
        ],
        // Any UTF-16 unit as an escape: lone surrogates included.
        2 => any::<u16>().prop_map(|u| format!("\\u{u:04x}")),
        1 => (0xD800u16..0xE000).prop_map(|u| format!("\\u{u:04X}")),
        // A well-formed pair written as two escapes.
        1 => (0x1_0000u32..0x11_0000).prop_map(|cp| {
            let c = cp - 0x1_0000;
            format!("\\u{:04x}\\u{:04x}", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF))
        }),
        1 => prop_oneof![Just("😀".to_owned()), Just("～".to_owned()), Just("\u{2028}".to_owned()), Just("\u{7f}".to_owned())],
    ]
}

/// `c` as it may appear raw inside a JSON string (escaped when it must be).
fn escape_char(c: char, upper: bool) -> String {
    match c {
        '"' => "\\\"".to_owned(),
        '\\' => "\\\\".to_owned(),
        c if (c as u32) < 0x20 => {
            if upper {
                format!("\\u{:04X}", c as u32)
            } else {
                format!("\\u{:04x}", c as u32)
            }
        }
        c => c.to_string(),
    }
}

fn string_lit() -> impl Strategy<Value = String> {
    prop::collection::vec(string_piece(), 0..6).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// Number spellings: JSON's grammar with long mantissas and exponents, so values
/// round, overflow to infinity, underflow to zero, and land beyond 2^53.
fn number_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
        2 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        2 => any::<i64>().prop_map(|i| i.to_string()),
        1 => prop_oneof![
            Just("-0".to_owned()),
            Just("1e400".to_owned()),
            Just("-1e400".to_owned()),
            Just("1e-400".to_owned()),
            Just("5e-324".to_owned()),
            Just("9007199254740993".to_owned()),
            Just("1.7976931348623157e308".to_owned()),
            Just("0.1".to_owned()),
            Just("1E21".to_owned()),
            Just("1e-7".to_owned()),
        ],
    ]
}

/// A key: often from a small pool so that duplicates and ordering traps occur.
fn key_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "\"a\"", "\"b\"", "\"B\"", "\"1\"", "\"10\"", "\"2\"", "\"\"", "\"😀\"", "\"～\"",
            "\"\\ud800\"", "\"\\udc00\"", "\"sig\"", "\"__proto__\"",
            // The envelope's own keys, one spelled with an escape, which frames read
            // into slots of their own.
            "\"data\"", "\"from\"", "\"to\"", "\"ts\"", "\"type\"", "\"v\"",
            "\"\\u0074s\"",
        ])
        .prop_map(str::to_owned),
        3 => string_lit(),
    ]
}

/// Any JSON text.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number_lit(),
        string_lit(),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(a, v, b)| format!("{a}{v}{b}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((key_lit(), ws(), inner), 0..6).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, w, v)| format!("{k}{w}:{w}{v}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// A string value a peer may send (parsed from a generated literal).
fn js_string() -> impl Strategy<Value = JsString> {
    string_lit().prop_map(|lit| match json::parse(lit.as_bytes()) {
        Ok(Value::String(s)) => s,
        other => panic!("generated literal {lit:?} parsed to {other:?}"),
    })
}

fn algo() -> impl Strategy<Value = HashAlgo> {
    prop::sample::select(vec![HashAlgo::Sha256, HashAlgo::Sha384, HashAlgo::Sha512])
}

/// What a signed envelope is made of.
#[derive(Debug, Clone)]
struct Parts {
    id: JsString,
    ts: f64,
    from: Option<JsString>,
    to: Option<JsString>,
    msg_type: String,
    data: Option<Value>,
    secret: String,
    algo: HashAlgo,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        js_string().prop_filter("id is 1..=256 units", |s| {
            !s.is_empty() && s.utf16_len() <= 256
        }),
        prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            (0u64..4_000_000_000_000).prop_map(|n| n as f64),
        ],
        prop::option::of(js_string()),
        prop::option::of(js_string()),
        prop_oneof![
            prop::sample::select(vec!["direct", "rpc.request", "rpc.response", "hello"])
                .prop_map(str::to_owned),
            ".{0,12}",
        ],
        prop::option::of(json_text()),
        ".{0,16}",
        algo(),
    )
        .prop_map(|(id, ts, from, to, msg_type, data, secret, algo)| Parts {
            id,
            ts,
            from,
            to,
            msg_type,
            data: data.map(|t| json::parse(t.as_bytes()).expect("generated JSON parses")),
            secret,
            algo,
        })
}

fn encode(p: &Parts) -> Vec<u8> {
    let header = Header {
        id: (&p.id).into(),
        ts: p.ts,
        from: p.from.as_ref().map(Into::into),
        to: p.to.as_ref().map(Into::into),
    };
    let data = p.data.as_ref().map(Value::to_canonical);
    let mut out = Vec::new();
    wire::encode(
        &Key::new(&p.secret, p.algo),
        &header,
        &p.msg_type,
        data.as_deref(),
        &mut out,
    );
    out
}

fn unlimited() -> Limits {
    Limits {
        max_message_bytes: usize::MAX,
        ..Limits::default()
    }
}

// ---------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(512))]

    /// parse(canonical(x)) canonicalizes to the same bytes, and the canonical text is
    /// valid UTF-8 free of raw control characters.
    #[test]
    fn canonicalization_is_idempotent(text in json_text()) {
        let value = json::parse(text.as_bytes()).expect("generated JSON parses");
        let once = value.to_canonical();
        let reparsed = json::parse(&once).expect("canonical text parses");
        prop_assert_eq!(&reparsed.to_canonical(), &once);
        let s = std::str::from_utf8(&once).expect("canonical text is UTF-8");
        prop_assert!(!s.chars().any(|c| (c as u32) < 0x20));
    }

    /// Every finite double prints as JavaScript would and reads back as itself.
    #[test]
    fn numbers_round_trip(n in any::<f64>()) {
        let mut out = Vec::new();
        json::write_number(n, &mut out);
        let text = std::str::from_utf8(&out).expect("ascii");
        if n.is_finite() {
            let back: f64 = text.parse().expect("number");
            prop_assert_eq!(back, if n == 0.0 { 0.0 } else { n });
            prop_assert!(!text.contains('E') && !text.ends_with(".0"), "{}", text);
        } else {
            prop_assert_eq!(text, "null");
        }
    }

    /// What we sign, we verify: every header field and the data come back as sent.
    #[test]
    fn sign_then_verify_round_trips(p in parts()) {
        let frame = encode(&p);
        prop_assert!(std::str::from_utf8(&frame).is_ok(), "frames are UTF-8");
        let key = Key::new(&p.secret, p.algo);
        let env = wire::decode(&frame, &key, &unlimited(), &mut Vec::new())
            .expect("our frame verifies");
        prop_assert_eq!(&env.id, &p.id);
        prop_assert_eq!(env.ts, p.ts);
        prop_assert_eq!(&env.from, &p.from);
        // An empty `to` is no recipient (`to ? String(to) : null`).
        prop_assert_eq!(&env.to, &p.to.clone().filter(|t| !t.is_empty()));
        prop_assert_eq!(env.len, frame.len());
        let parsed = Frame::parse(&frame, &unlimited()).expect("parses");
        prop_assert_eq!(
            parsed.data().map(Value::to_canonical),
            p.data.as_ref().map(Value::to_canonical)
        );
        // The wire text is the canonical text plus `sig`.
        let canonical = wire::inspect(&frame, &key, &unlimited()).expect("inspects");
        prop_assert_eq!(&frame[..canonical.len() - 1], &canonical[..canonical.len() - 1]);
        // And the same frame fails under any other key.
        let other = Key::new(&format!("{}x", p.secret), p.algo);
        prop_assert_eq!(
            wire::decode(&frame, &other, &unlimited(), &mut Vec::new()).map(|_| ()),
            Err(DropReason::BadSignature)
        );
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Flipping any bits of any one byte of a signed frame never yields a verified
    /// message whose signed content differs from the original.
    #[test]
    fn flipped_bytes_never_verify_as_different_content(p in parts(), masks in prop::collection::vec(1u8..=255, 16)) {
        let frame = encode(&p);
        let key = Key::new(&p.secret, p.algo);
        let original = wire::inspect(&frame, &key, &unlimited()).expect("verifies");
        for i in 0..frame.len() {
            let mut flipped = frame.clone();
            flipped[i] ^= masks[i % masks.len()];
            if let Ok(canonical) = wire::inspect(&flipped, &key, &unlimited()) {
                prop_assert_eq!(
                    &canonical, &original,
                    "byte {} flipped: {}", i, String::from_utf8_lossy(&flipped)
                );
            }
        }
    }
}

/// Everything a receiver does with untrusted bytes; must not panic.
fn receive(bytes: &[u8]) {
    let key = Key::new("k", HashAlgo::Sha256);
    let limits = Limits {
        max_message_bytes: 4096,
        max_recent_ids: 2,
        ..Limits::default()
    };
    let _ = wire::inspect(bytes, &key, &limits);
    if let Ok(frame) = Frame::parse(bytes, &limits) {
        let _ = frame.verify(&key, &mut Vec::new());
        let _ = frame.canonical();
        let _ = frame.message();
        let _ = wire::validate::sanitize_hello(frame.data());
        let mut guard = ReplayGuard::new(&limits, SeededState::new(1));
        let sender = frame
            .from()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default();
        for now in [frame.ts(), frame.ts() + 1.0, 0.0, f64::NAN] {
            let _ = guard.check(&sender, frame.id(), frame.ts(), frame.msg_type(), now);
        }
        let _ = frame.into_envelope();
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        receive(&bytes);
    }

    /// Near-valid input reaches deeper: a real frame or JSON text with a few bytes
    /// overwritten, inserted or cut off.
    #[test]
    fn mangled_frames_never_panic(
        p in parts(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = encode(&p);
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => bytes.truncate(i),
            }
        }
        receive(&bytes);
    }
}

/// UTF-16 units with the interesting ranges over-represented: ASCII, the surrogates,
/// U+E000..U+FFFF, and pairs for supplementary characters.
fn utf16_units() -> impl Strategy<Value = Vec<u16>> {
    let unit = prop_oneof![
        0x20u16..0x80,
        0x80u16..0xD800,
        0xD800u16..0xE000,
        0xE000u16..=0xFFFF,
    ];
    prop::collection::vec(unit, 0..6)
}

proptest! {
    #![proptest_config(config(2048))]

    /// Strings order by UTF-16 code units, as JavaScript's default sort does.
    #[test]
    fn strings_order_by_utf16_units(a in utf16_units(), b in utf16_units()) {
        let parse = |units: &[u16]| {
            let lit: String = units.iter().map(|u| format!("\\u{u:04x}")).collect();
            match json::parse(format!("\"{lit}\"").as_bytes()) {
                Ok(Value::String(s)) => s,
                other => panic!("{other:?}"),
            }
        };
        prop_assert_eq!(parse(&a).cmp(&parse(&b)), a.cmp(&b));
        // Common prefixes reach the slow path more often.
        let mut c = a.clone();
        c.extend_from_slice(&b);
        let mut d = a.clone();
        d.extend_from_slice(&b[b.len() / 2..]);
        prop_assert_eq!(parse(&c).cmp(&parse(&d)), c.cmp(&d));
    }
}

// ---------------------------------------------------------------------------------
// Verifying on the received bytes

/// A frame text from generated members, each written as generated or canonically,
/// in generated or canonical order, with `sig` (a placeholder) last or elsewhere:
/// mostly near-canonical texts, where a mistake in noticing canonical text hides.
fn frame_text() -> impl Strategy<Value = String> {
    let member = (key_lit(), json_text(), prop::bool::weighted(0.8));
    (
        prop::collection::vec(member, 0..6),
        prop::bool::weighted(0.8),
        prop_oneof![4 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
        ws(),
    )
        .prop_map(|(members, sort, sig_at, w)| {
            let mut members: Vec<(String, String)> = members
                .into_iter()
                .map(|(k, v, canonical)| {
                    if !canonical {
                        return (k, v);
                    }
                    let write = |t: &str| {
                        let parsed = json::parse(t.as_bytes()).expect("generated JSON parses");
                        String::from_utf8(parsed.to_canonical()).expect("UTF-8")
                    };
                    (write(&k), write(&v))
                })
                .collect();
            members.push(("\"id\"".to_owned(), "\"frame-1\"".to_owned()));
            if let Some((_, v)) = members.first().cloned() {
                // A `data` object whose members hold the generated values: payloads.
                members.push(("\"data\"".to_owned(), format!("{{\"p\":{v},\"q\":[{v}]}}")));
            }
            members.push(("\"v\"".to_owned(), "1".to_owned()));
            if sort {
                let key = |k: &String| match json::parse(k.as_bytes()) {
                    Ok(Value::String(s)) => s,
                    other => panic!("{other:?}"),
                };
                members.sort_by_key(|m| key(&m.0));
            }
            let sig = ("\"sig\"".to_owned(), format!("\"{}\"", "0".repeat(64)));
            match sig_at {
                Some(at) => members.insert(at.index(members.len() + 1), sig),
                None => members.push(sig),
            }
            let members: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{w}{v}")).collect();
            format!("{{{}}}", members.join(","))
        })
}

proptest! {
    #![proptest_config(config(2048))]

    /// Checking the MAC on the received bytes never disagrees with checking it on the
    /// canonical text: a frame signed over its canonical text verifies either way, and
    /// one signed over its own bytes (minus `sig`) verifies only if they are canonical.
    #[test]
    fn verifying_received_bytes_agrees_with_canonical_text(text in frame_text()) {
        let key = Key::new("k", HashAlgo::Sha256);
        let Ok(frame) = Frame::parse(text.as_bytes(), &unlimited()) else {
            // The id may have been overwritten by a generated `id` member.
            return Ok(());
        };
        let canonical = frame.canonical();
        let placeholder = format!("\"{}\"", "0".repeat(64));
        let signed = |sig: String| text.replace(&placeholder, &format!("\"{sig}\""));
        // Signed over the canonical text, as every honest sender signs.
        let honest = signed(key.sign_hex(&canonical));
        if let Ok(f) = Frame::parse(honest.as_bytes(), &unlimited()) {
            let slow = f.verify(&key, &mut Vec::new());
            let fast = f.verify_received(honest.as_bytes(), &key, &mut Vec::new());
            prop_assert_eq!(fast, slow, "{}", honest);
        }
        // Signed over the received bytes up to `,"sig"`, as a careless sender might.
        if let Some(at) = text.rfind(",\"sig\":") {
            let mut raw = text.as_bytes()[..at].to_vec();
            raw.push(b'}');
            let careless = signed(key.sign_hex(&raw));
            if let Ok(f) = Frame::parse(careless.as_bytes(), &unlimited()) {
                let slow = f.verify(&key, &mut Vec::new());
                let fast = f.verify_received(careless.as_bytes(), &key, &mut Vec::new());
                prop_assert_eq!(fast, slow, "{}", careless);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// Objects a frame keeps as text (payloads inside `data`) read and write exactly
    /// as the eagerly parsed JSON does: same values, same canonical text.
    #[test]
    fn frames_read_like_plain_json(text in frame_text()) {
        let Ok(frame) = Frame::parse(text.as_bytes(), &unlimited()) else {
            return Ok(());
        };
        let Ok(Value::Object(mut eager)) = json::parse(text.as_bytes()) else {
            panic!("a frame is a JSON object: {text}");
        };
        eager.remove("sig");
        prop_assert_eq!(frame.canonical(), Value::Object(eager.clone()).to_canonical(), "{}", text);
        prop_assert_eq!(frame.data(), eager.get("data"), "{}", text);
        // Read member by member too (text objects parse on first access).
        if let (Some(Value::Object(lazy)), Some(Value::Object(plain))) = (frame.data(), eager.get("data")) {
            for ((lk, lv), (pk, pv)) in lazy.iter().zip(plain.iter()) {
                prop_assert_eq!(lk, pk);
                prop_assert_eq!(lv.to_canonical(), pv.to_canonical());
                prop_assert_eq!(lv, pv);
            }
        }
    }
}

/// Texts that are canonical but for one detail: each must be checked on its
/// canonical text, so a signature over the received bytes fails.
#[test]
fn near_canonical_texts_are_not_taken_as_canonical() {
    let key = Key::new("k", HashAlgo::Sha256);
    let cases = [
        r#"{"a":"x\/y","id":"i","v":1"#,
        r#"{"a":"\u001F","id":"i","v":1"#,
        r#"{"a":"\u0008","id":"i","v":1"#,
        r#"{"a":"\u0041","id":"i","v":1"#,
        r#"{"a":"\uD800","id":"i","v":1"#,
        r#"{"a":"\ud83d\ude00","id":"i","v":1"#,
        r#"{"a":1.0,"id":"i","v":1"#,
        r#"{"a":1e2,"id":"i","v":1"#,
        r#"{"a":-0,"id":"i","v":1"#,
        r#"{"a":1E21,"id":"i","v":1"#,
        r#"{"a":0.10,"id":"i","v":1"#,
        r#"{"a": 1,"id":"i","v":1"#,
        r#"{"id":"i","a":1,"v":1"#,
        r#"{"a":1,"a":1,"id":"i","v":1"#,
        r#"{"a":{"d":1,"c":2},"id":"i","v":1"#,
        r#"{"a":[1, 2],"id":"i","v":1"#,
        r#"{"a":1,"id":"i","sig":"x","v":1"#,
    ];
    for case in cases {
        let mut raw = case.as_bytes().to_vec();
        raw.push(b'}');
        let sig = key.sign_hex(&raw);
        let text = format!("{case},\"sig\":\"{sig}\"}}");
        let frame = Frame::parse(text.as_bytes(), &unlimited()).expect(case);
        assert_eq!(
            frame.verify_received(text.as_bytes(), &key, &mut Vec::new()),
            Err(DropReason::BadSignature),
            "{text}"
        );
        // Signed properly, it verifies through the slow path.
        let good = format!("{case},\"sig\":\"{}\"}}", key.sign_hex(&frame.canonical()));
        let frame = Frame::parse(good.as_bytes(), &unlimited()).expect(case);
        assert_eq!(
            frame.verify_received(good.as_bytes(), &key, &mut Vec::new()),
            Ok(()),
            "{good}"
        );
    }
    // And canonical texts with the escapes `JSON.stringify` writes do take the fast
    // path: a signature over their bytes verifies.
    for case in [
        r#"{"a":"\"\\\b\f\n\r\t\u0000\u001f\udfff\ud800","id":"i","v":1"#,
        r#"{"a":[1,-2,0.5,1e+21,1.5e-7,-1.7976931348623157e+308],"id":"i","v":1"#,
        r#"{"":null,"a":{"b":[true,false,{}],"c":[]},"id":"i","v":1"#,
    ] {
        let mut raw = case.as_bytes().to_vec();
        raw.push(b'}');
        let text = format!("{case},\"sig\":\"{}\"}}", key.sign_hex(&raw));
        let frame = Frame::parse(text.as_bytes(), &unlimited()).expect(case);
        assert_eq!(frame.canonical(), raw, "{case} is canonical");
        assert_eq!(
            frame.verify_received(text.as_bytes(), &key, &mut Vec::new()),
            Ok(())
        );
    }
}
