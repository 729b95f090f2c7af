//! The hub core alone, with no sockets or runtime: one signed frame in, everything the
//! hub does with it (parse, verify, replay guard, route, re-sign for each recipient)
//! and its outputs drained. Compared with the hub process's CPU per message in
//! `link-tokio`'s bench, this separates the core's share from the adapter's.
//!
//! `cargo bench -p link-sansio --bench hub`

use divan::{Bencher, black_box};
use link_sansio::hub::{ConnId, HubConfig, HubState, Input, Keys, Output};
use link_sansio::time::Now;
use link_sansio::wire::{self, HashAlgo, Header, Key, Value, json};
use std::time::Instant;

const SECRET: &str = "bench-secret";
const WALL_MS: u64 = 1_800_000_000_000;

fn main() {
    divan::main();
}

fn key() -> Key {
    Key::new(SECRET, HashAlgo::Sha256)
}

/// The reference benchmark's payload.
fn payload(seq: u64) -> Value {
    json::parse(
        format!(
            r#"{{"kind":"event","seq":{seq},"ts":{WALL_MS},"tags":["a","b","c"],"nested":{{"ok":true,"n":42}}}}"#
        )
        .as_bytes(),
    )
    .expect("payload")
}

fn frame(id: &str, msg_type: &str, from: &str, to: Option<&str>, data: &Value) -> Vec<u8> {
    let header = Header {
        id: id.into(),
        ts: WALL_MS as f64,
        from: Some(from.into()),
        to: to.map(Into::into),
    };
    let mut out = Vec::new();
    wire::encode(
        &key(),
        &header,
        msg_type,
        Some(&data.to_canonical()),
        &mut out,
    );
    out
}

/// Everything the hub wants done, with transmitted bytes reported flushed at once.
fn drain(hub: &mut HubState, now: Now) -> usize {
    let mut sent = Vec::new();
    loop {
        match hub.poll_output() {
            Output::Timeout(_) => break,
            Output::Transmit { conn, text } => sent.push((conn, text.len())),
            _ => {}
        }
    }
    let n = sent.len();
    for (conn, bytes) in sent {
        hub.handle_input(now, Input::Flushed { conn, bytes });
        while !matches!(hub.poll_output(), Output::Timeout(_)) {}
    }
    n
}

/// A hub with `peers` authenticated peers, `peer-0` .. `peer-{n-1}` on conns 1..=n.
// The one reading of the clock: an anchor for the simulated time the hub runs on.
#[allow(clippy::disallowed_methods)]
fn hub(peers: u64) -> (HubState, Now) {
    let now = Now::new(Instant::now(), WALL_MS);
    let mut hub = HubState::new(HubConfig::new(Keys::Shared(SECRET.into())), 7, now);
    for i in 0..peers {
        let conn = ConnId(i + 1);
        let kind = format!("peer-{i}");
        hub.handle_input(now, Input::Opened { conn, remote: None });
        let hello = json::parse(
            format!(r#"{{"kind":"{kind}","name":"{kind}","pid":1,"startedAt":5}}"#).as_bytes(),
        )
        .expect("hello");
        let bytes = frame(&format!("hello-{i}"), "hello", &kind, None, &hello);
        hub.handle_input(
            now,
            Input::Frame {
                conn,
                bytes: &bytes,
            },
        );
        drain(&mut hub, now);
    }
    (hub, now)
}

fn uuid(n: u64) -> String {
    format!(
        "6f1d2c3b-{:04x}-4e5f-8a9b-{:012x}",
        n >> 48,
        n & 0xFFFF_FFFF_FFFF
    )
}

/// `direct` from one peer to another: one frame in, one re-signed frame out.
#[divan::bench]
fn direct(bencher: Bencher<'_, '_>) {
    let (mut hub, now) = hub(2);
    let mut seq = 0;
    bencher
        .with_inputs(|| {
            seq += 1;
            let mut data = json::Object::new();
            data.insert("directType", Value::from("bench.event"));
            data.insert("directData", payload(seq));
            frame(&uuid(seq), "direct", "peer-0", Some("peer-1"), &data.into())
        })
        .bench_local_refs(|bytes| {
            hub.handle_input(
                now,
                Input::Frame {
                    conn: ConnId(1),
                    bytes: black_box(bytes),
                },
            );
            drain(&mut hub, now)
        });
}

/// `topic.message` from one peer to 10 subscribers: one frame in, ten out.
#[divan::bench]
fn publish_to_10(bencher: Bencher<'_, '_>) {
    let (mut hub, now) = hub(11);
    for i in 1..=10 {
        let mut data = json::Object::new();
        data.insert("topic", Value::from("bench.events"));
        let bytes = frame(
            &uuid(1_000_000 + i),
            "topic.subscribe",
            "x",
            None,
            &data.into(),
        );
        hub.handle_input(
            now,
            Input::Frame {
                conn: ConnId(i + 1),
                bytes: &bytes,
            },
        );
        drain(&mut hub, now);
    }
    let mut seq = 0;
    bencher
        .with_inputs(|| {
            seq += 1;
            let mut data = json::Object::new();
            data.insert("topic", Value::from("bench.events"));
            data.insert("payload", payload(seq));
            frame(&uuid(seq), "topic.message", "peer-0", None, &data.into())
        })
        .bench_local_refs(|bytes| {
            hub.handle_input(
                now,
                Input::Frame {
                    conn: ConnId(1),
                    bytes: black_box(bytes),
                },
            );
            assert_eq!(drain(&mut hub, now), 10);
        });
}

/// A peer joins a hub of 200 and leaves again: each time every peer is sent the whole
/// peer list (`peers.update`), so the hub signs 2 × 200 frames of about 30 KB.
#[divan::bench]
fn join_and_leave_among_200(bencher: Bencher<'_, '_>) {
    const PEERS: u64 = 200;
    let (mut hub, now) = hub(PEERS);
    let conn = ConnId(PEERS + 1);
    let mut seq = 0;
    bencher
        .with_inputs(|| {
            seq += 1;
            let hello = json::parse(br#"{"kind":"joiner","name":"joiner","pid":1,"startedAt":5}"#)
                .expect("hello");
            frame(&uuid(seq), "hello", "joiner", None, &hello)
        })
        .bench_local_refs(|bytes| {
            hub.handle_input(now, Input::Opened { conn, remote: None });
            hub.handle_input(now, Input::Frame { conn, bytes });
            let joined = drain(&mut hub, now);
            hub.handle_input(
                now,
                Input::Closed {
                    conn,
                    code: Some(1000),
                    reason: "",
                },
            );
            // The joiner's ack and snapshot, then the list to all others twice.
            assert!(joined + drain(&mut hub, now) >= 2 * PEERS as usize);
        });
}
