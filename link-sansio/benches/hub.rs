//! The hub core alone, with no sockets or runtime: one signed frame in, everything the
//! hub does with it (parse, verify, replay guard, route, re-sign for each recipient)
//! and its outputs drained. Compared with the hub process's CPU per message in
//! `link-tokio`'s bench, this separates the core's share from the adapter's.
//!
//! `cargo bench -p link-sansio --bench hub`

use divan::{Bencher, black_box};
use link_sansio::hub::{ConnId, Input};
use link_sansio::wire::{Value, json};

mod support;
use support::{drain, frame, hub, payload, uuid};

fn main() {
    divan::main();
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
