//! Micro-benchmarks of the per-frame wire work, on a ~300-byte `rpc.request`
//! envelope: decode + verify (what every inbound frame costs) and encode + sign (what
//! every outbound frame costs), and the replay check that follows a verify. Divan
//! prints the time per operation.
//!
//! The `serde_payload` group compares serde payload conversions, old route and new.
//!
//! `cargo bench -p link-sansio`

use divan::{Bencher, black_box};
use link_sansio::wire::message::RpcRequest;
use link_sansio::wire::{self, HashAlgo, Header, Key, Limits, Message, Value, json};

fn main() {
    let frame = signed_frame();
    eprintln!("envelope: {} bytes", frame.len());
    divan::main();
}

fn key() -> Key {
    Key::new("bench-secret", HashAlgo::Sha256)
}

fn payload() -> Value {
    json::parse(
        r#"{"orderId":"ord-417","customer":"Zoë","items":[{"sku":"A-17","qty":2,"price":19.99}],"rush":true}"#
            .as_bytes(),
    )
    .expect("payload")
}

fn header() -> Header<'static> {
    Header {
        id: "7b0c3e3a-9a55-4f0e-8f43-5d2b7a1e6c90".into(),
        ts: 1_795_391_149_808.0,
        from: Some("orders".into()),
        to: Some("billing".into()),
    }
}

fn message() -> Message {
    Message::RpcRequest(RpcRequest::new("order.charge", Some(payload())))
}

fn signed_frame() -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode_message(&key(), &header(), &message(), &mut out);
    out
}

/// Parse, canonicalize, HMAC and check: everything before the replay guard.
#[divan::bench]
fn decode_verify(bencher: Bencher<'_, '_>) {
    let (key, limits, frame) = (key(), Limits::default(), signed_frame());
    let mut scratch = Vec::new();
    bencher.bench_local(|| {
        wire::decode(black_box(&frame), &key, &limits, &mut scratch).expect("verifies")
    });
}

/// A typed message to signed bytes, including canonicalizing its payload.
#[divan::bench]
fn encode_sign(bencher: Bencher<'_, '_>) {
    let (key, header, message) = (key(), header(), message());
    let mut out = Vec::with_capacity(512);
    bencher.bench_local(|| {
        wire::encode_message(&key, &header, black_box(&message), &mut out);
        out.len()
    });
}

/// The fan-out path: the payload is canonicalized once and only the envelope is
/// written and signed per recipient.
#[divan::bench]
fn encode_sign_precanonical(bencher: Bencher<'_, '_>) {
    let (key, header) = (key(), header());
    let mut data = Vec::new();
    message().write_data(&mut data);
    let mut out = Vec::with_capacity(512);
    bencher.bench_local(|| {
        wire::encode(
            &key,
            &header,
            "rpc.request",
            Some(black_box(&data)),
            &mut out,
        );
        out.len()
    });
}

/// The HMAC alone, for scale.
#[divan::bench]
fn hmac_only(bencher: Bencher<'_, '_>) {
    let (key, frame) = (key(), signed_frame());
    let mut sig = Vec::with_capacity(64);
    bencher.bench_local(|| {
        sig.clear();
        key.sign_hex_into(black_box(&frame), &mut sig);
    });
}

/// The JSON parser alone on the whole envelope (no id, MAC or typed message).
#[divan::bench]
fn parse_only(bencher: Bencher<'_, '_>) {
    let frame = signed_frame();
    bencher.bench_local(|| json::parse(black_box(&frame)).expect("parses"));
}

/// What a subscriber does first with each delivery: parse a hub-signed
/// `topic.message` carrying the reference benchmark's event (payload kept as text).
#[divan::bench]
fn frame_parse_topic_message(bencher: Bencher<'_, '_>) {
    let payload = json::parse(
        br#"{"kind":"event","seq":417,"ts":1795391149808,"tags":["a","b","c"],"nested":{"ok":true,"n":42}}"#,
    )
    .expect("payload");
    let mut data = json::Object::new();
    data.insert("payload", payload);
    data.insert("topic", Value::from("bench.fanout.10"));
    let mut frame = Vec::new();
    wire::encode(
        &key(),
        &header(),
        "topic.message",
        Some(&Value::from(data).to_canonical()),
        &mut frame,
    );
    let limits = Limits::default();
    bencher.bench_local(|| wire::Frame::parse(black_box(&frame), &limits).expect("parses"));
}

/// serde_json parsing the same text into its own `Value`, for scale.
#[divan::bench]
fn parse_serde_json(bencher: Bencher<'_, '_>) {
    let frame = signed_frame();
    bencher.bench_local(|| {
        serde_json::from_slice::<serde_json::Value>(black_box(&frame)).expect("parses")
    });
}

/// serde payloads ⇄ wire `Value`: the old route through `serde_json::Value`
/// (`to_value` + `from_serde`, `to_serde` + `from_value`) against `wire::to_value` /
/// `wire::from_value`, for a typical event as a derived struct and as a
/// `serde_json::Value`.
#[divan::bench_group]
mod serde_payload {
    use divan::{Bencher, black_box};
    use link_sansio::wire::{self, Value};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Event {
        kind: String,
        seq: u64,
        ts: f64,
        tags: Vec<String>,
        nested: Nested,
    }

    #[derive(Serialize, Deserialize)]
    struct Nested {
        ok: bool,
        n: u32,
    }

    fn event() -> Event {
        Event {
            kind: "event".into(),
            seq: 417,
            ts: 1_795_391_149_808.0,
            tags: vec!["a".into(), "b".into(), "c".into()],
            nested: Nested { ok: true, n: 42 },
        }
    }

    fn json() -> serde_json::Value {
        serde_json::to_value(event()).expect("json")
    }

    fn wire_value() -> Value {
        wire::to_value(&event()).expect("wire")
    }

    fn old_encode<T: Serialize>(v: &T) -> Value {
        let j = serde_json::to_value(v).expect("json");
        Value::from_serde(&j).expect("safe")
    }

    fn old_decode<T: serde::de::DeserializeOwned>(v: &Value) -> T {
        serde_json::from_value(v.to_serde()).expect("decodes")
    }

    #[divan::bench]
    fn encode_struct_old(bencher: Bencher<'_, '_>) {
        let v = event();
        bencher.bench_local(|| old_encode(black_box(&v)));
    }

    #[divan::bench]
    fn encode_struct_new(bencher: Bencher<'_, '_>) {
        let v = event();
        bencher.bench_local(|| wire::to_value(black_box(&v)).expect("safe"));
    }

    #[divan::bench]
    fn encode_json_old(bencher: Bencher<'_, '_>) {
        let v = json();
        bencher.bench_local(|| old_encode(black_box(&v)));
    }

    #[divan::bench]
    fn encode_json_new(bencher: Bencher<'_, '_>) {
        let v = json();
        bencher.bench_local(|| wire::to_value(black_box(&v)).expect("safe"));
    }

    #[divan::bench]
    fn decode_struct_old(bencher: Bencher<'_, '_>) {
        let v = wire_value();
        bencher.bench_local(|| old_decode::<Event>(black_box(&v)));
    }

    #[divan::bench]
    fn decode_struct_new(bencher: Bencher<'_, '_>) {
        let v = wire_value();
        bencher.bench_local(|| wire::from_value::<Event>(Some(black_box(&v))).expect("decodes"));
    }

    #[divan::bench]
    fn decode_json_old(bencher: Bencher<'_, '_>) {
        let v = wire_value();
        bencher.bench_local(|| old_decode::<serde_json::Value>(black_box(&v)));
    }

    #[divan::bench]
    fn decode_json_new(bencher: Bencher<'_, '_>) {
        let v = wire_value();
        bencher.bench_local(|| {
            wire::from_value::<serde_json::Value>(Some(black_box(&v))).expect("decodes")
        });
    }
}

/// One sender's replay check in steady state: the cache is full (10,000 ids by
/// default), so every fresh id evicts the oldest.
#[divan::bench]
fn replay_check_full_cache(bencher: Bencher<'_, '_>) {
    use link_sansio::wire::replay::ReplayGuard;
    let limits = Limits::default();
    let ids: Vec<wire::JsString> = (0..4 * limits.max_recent_ids as u64)
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            wire::JsString::from(format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                h >> 32,
                (h >> 16) & 0xffff,
                h & 0xfff,
                i & 0xfff,
                i
            ))
        })
        .collect();
    let mut guard = ReplayGuard::new(&limits, link_sansio::seeded::SeededState::new(7));
    let msg_type = Some(wire::JsString::from("rpc.request"));
    let now = 1_795_391_149_808.0;
    let mut next = 0usize;
    for id in &ids[..limits.max_recent_ids] {
        guard
            .check("caller", id, now, msg_type.as_ref(), now)
            .expect("fresh");
        next += 1;
    }
    bencher.bench_local(|| {
        let id = &ids[next % ids.len()];
        next += 1;
        // Wrapping around repeats ids that were evicted long ago: still fresh.
        guard.check("caller", black_box(id), now, msg_type.as_ref(), now)
    });
}
