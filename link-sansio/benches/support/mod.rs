//! What the hub benchmark and the `instructions` example share: signed frames of the
//! reference benchmark's payload, and a hub core with peers, driven without sockets.
//! (The example includes this file by path.)
#![allow(dead_code)]

use link_sansio::hub::{ConnId, HubConfig, HubState, Input, Keys, Output};
use link_sansio::time::Now;
use link_sansio::wire::{self, HashAlgo, Header, Key, Value, json};
use std::time::Instant;

pub const SECRET: &str = "bench-secret";
pub const WALL_MS: u64 = 1_800_000_000_000;

pub fn key() -> Key {
    Key::new(SECRET, HashAlgo::Sha256)
}

/// The reference benchmark's payload.
pub fn payload(seq: u64) -> Value {
    json::parse(
        format!(
            r#"{{"kind":"event","seq":{seq},"ts":{WALL_MS},"tags":["a","b","c"],"nested":{{"ok":true,"n":42}}}}"#
        )
        .as_bytes(),
    )
    .expect("payload")
}

pub fn frame(id: &str, msg_type: &str, from: &str, to: Option<&str>, data: &Value) -> Vec<u8> {
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
pub fn drain(hub: &mut HubState, now: Now) -> usize {
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

/// A hub with `peers` authenticated peers, `peer-0` .. `peer-{n-1}` on conns 1..=n, and
/// its per-frame events off.
// The one reading of the clock: an anchor for the simulated time the hub runs on.
#[allow(clippy::disallowed_methods)]
pub fn hub(peers: u64) -> (HubState, Now) {
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
    // As a hub server runs while nobody listens to its events.
    hub.set_frame_events(false);
    (hub, now)
}

pub fn uuid(n: u64) -> String {
    format!(
        "6f1d2c3b-{:04x}-4e5f-8a9b-{:012x}",
        n >> 48,
        n & 0xFFFF_FFFF_FFFF
    )
}
