//! Arbitrary bytes through everything a peer's frame touches: parse, verify, the
//! typed view, hello sanitising and the replay guard. Nothing may panic. A frame that
//! parses is also re-encoded and signed by us, and that frame must verify and carry
//! the same content (the encoder's contract, checked on inputs no test would write).
#![no_main]

use libfuzzer_sys::fuzz_target;
use link_sansio::seeded::SeededState;
use link_sansio::wire::{self, Frame, HashAlgo, Header, Key, Limits, ReplayGuard, validate};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_message_bytes: 64 * 1024,
        replay_window_ms: 300_000,
        max_recent_ids: 4,
    };
    let key = Key::new("fuzz-secret", HashAlgo::Sha256);
    let mut scratch = Vec::new();

    let inspected = wire::inspect(data, &key, &limits);
    let Ok(frame) = Frame::parse(data, &limits) else {
        assert!(inspected.is_err());
        return;
    };
    let verified = frame.verify(&key, &mut scratch);
    assert_eq!(verified.is_ok(), inspected.is_ok());
    // Checking the MAC on the received bytes (when they are canonical) agrees with
    // checking it on the canonical text, for a signature over either.
    assert_eq!(frame.verify_received(data, &key, &mut scratch), verified);
    if let Some(at) = data.windows(7).rposition(|w| w == b",\"sig\":") {
        let mut raw = data[..at].to_vec();
        raw.push(b'}');
        let canonical = frame.canonical();
        for signed in [raw, canonical] {
            let sig = key.sign_hex(&signed);
            let mut resigned = data[..at].to_vec();
            resigned.extend_from_slice(format!(",\"sig\":\"{sig}\"}}").as_bytes());
            if let Ok(f) = Frame::parse(&resigned, &limits) {
                assert_eq!(
                    f.verify_received(&resigned, &key, &mut scratch),
                    f.verify(&key, &mut scratch)
                );
            }
        }
    }
    // Objects kept as text read like the plain parse of the same bytes.
    if let Ok(wire::Value::Object(mut plain)) = wire::json::parse(data) {
        plain.remove("sig");
        assert_eq!(frame.data(), plain.get("data"));
        assert_eq!(frame.canonical(), wire::Value::Object(plain).to_canonical());
    }

    // Payloads read through the serde bridge (from their received text, when they
    // are objects kept as text) exactly as serde_json reads the parsed tree, and
    // written back to the same canonical text by either route.
    if let Some(wire::Value::Object(d)) = frame.data() {
        for (_, v) in d.iter() {
            let tree = serde_json::from_value::<serde_json::Value>(v.to_serde());
            let direct = wire::from_value::<serde_json::Value>(Some(v));
            assert_eq!(
                direct.as_ref().map(ToString::to_string).map_err(ToString::to_string),
                tree.as_ref().map(ToString::to_string).map_err(ToString::to_string)
            );
            if let Ok(j) = tree {
                match (wire::to_value(&j), wire::Value::from_serde(&j)) {
                    (Ok(a), Ok(b)) => assert_eq!(a.to_canonical(), b.to_canonical()),
                    (a, b) => assert_eq!(a.is_ok(), b.is_ok()),
                }
            }
        }
    }

    // The typed views a hub or client reads before deciding what to do.
    let message = frame.message();
    let _ = validate::sanitize_hello(frame.data());
    let _ = validate::topic_of(frame.data().and_then(|d| d.get("topic")));
    if let Some(d) = frame.data() {
        let _ = validate::check_json_safe(d);
        let _ = wire::envelope::js_string_of(d);
        let _ = d.to_serde();
    }

    // Replay guard at a few clocks around the frame's own time.
    let ts = frame.ts();
    let sender = frame
        .from()
        .map(|f| f.to_string_lossy())
        .unwrap_or_else(|| "server".to_owned());
    let mut guard = ReplayGuard::new(&limits, SeededState::new(7));
    for now in [
        ts,
        ts,
        ts + 1.0,
        ts + 400_000.0,
        ts - 400_000.0,
        f64::NAN,
        0.0,
    ] {
        let _ = guard.check(&sender, frame.id(), ts, frame.msg_type(), now);
        assert!(guard.len() <= limits.max_recent_ids);
    }
    guard.forget(&sender);
    assert!(guard.is_empty());

    // Re-encode what we understood: it must verify and read back the same.
    let env = frame.into_envelope();
    let header = Header {
        id: (&env.id).into(),
        ts: env.ts,
        from: env.from.as_ref().map(Into::into),
        to: env.to.as_ref().map(Into::into),
    };
    let mut out = Vec::new();
    wire::encode_message(&key, &header, &env.message, &mut out);
    assert!(
        std::str::from_utf8(&out).is_ok(),
        "encoder wrote invalid UTF-8"
    );
    let unlimited = Limits {
        max_message_bytes: usize::MAX,
        ..limits
    };
    let back = wire::decode(&out, &key, &unlimited, &mut scratch).expect("our own frame verifies");
    assert_eq!(back.id, env.id);
    assert_eq!(back.from, env.from);
    assert_eq!(back.to, env.to);
    assert_eq!(back.message.msg_type(), message.msg_type());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    assert_eq!(
        env.message.write_data(&mut a),
        back.message.write_data(&mut b)
    );
    assert_eq!(a, b);
});
