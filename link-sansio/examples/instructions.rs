//! Runs one piece of the per-frame work many times, for counting its instructions:
//! timings on a shared 2-core machine drift by tens of percent between runs, an
//! instruction count does not, so a change of a few percent shows.
//!
//! ```text
//! cargo build --release -p link-sansio --example instructions
//! valgrind --tool=callgrind --toggle-collect='instructions::measured*' \
//!     target/release/examples/instructions parse 2000
//! ```
//!
//! Workloads, each on the reference benchmark's event payload:
//! - `parse`: a hub-signed `topic.message` (339 bytes) parsed and dropped;
//! - `hub`: a `direct` through the hub core (parse, verify, replay guard, route,
//!   re-sign for the recipient, flush report);
//! - `client`: a `topic.message` through a client core to its event;
//! - `rpc`: a call made by a client core, then its response read back to its result;
//! - `rpc_window`: the same calls in batches of 10,000, each made in full before its
//!   responses are read, as when thousands are in flight (the bench's concurrent
//!   RPC). The first batch also grows the tables: compare 20000 with 40000.
//!
//! Divide the count by the iterations (or run twice and divide the difference). Under
//! valgrind SHA-256 runs in software, not on the CPU's SHA instructions, so the HMAC
//! weighs several times more than it does natively: compare the other functions.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use link_sansio::client::{self, ClientConfig, Connection};
use link_sansio::hub::{self, ConnId, HubState};
use link_sansio::time::Now;
use link_sansio::wire::{self, Limits, Value, json};

#[path = "../benches/support/mod.rs"]
mod support;
use support::{SECRET, WALL_MS, frame, payload, uuid};

const USAGE: &str = "usage: instructions parse|hub|client|rpc|rpc_window [ITERATIONS]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_default();
    let Some(n) = args.next().map_or(Some(1000), |n| n.parse::<u64>().ok()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    // The one reading of the clock: an anchor for the simulated time the cores run on.
    #[allow(clippy::disallowed_methods)]
    let now = Now::new(Instant::now(), WALL_MS);
    let done = match workload.as_str() {
        "parse" => parse(n),
        "hub" => hub(n),
        "client" => client(n, now),
        "rpc" => rpc(n, now, 1),
        "rpc_window" => rpc(n, now, 10_000),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!("{workload}: {n} iterations, {done} results");
    ExitCode::SUCCESS
}

fn topic_message(seq: u64, to: &str) -> Vec<u8> {
    let mut data = json::Object::new();
    data.insert("payload", payload(seq));
    data.insert("topic", Value::from("bench.fanout.10"));
    frame(
        &uuid(seq + 1),
        "topic.message",
        "caller",
        Some(to),
        &data.into(),
    )
}

fn parse(n: u64) -> usize {
    let frame = topic_message(417, "sub");
    measured_parse(n, &frame, &Limits::default())
}

#[inline(never)]
fn measured_parse(n: u64, frame: &[u8], limits: &Limits) -> usize {
    let mut parsed = 0;
    for _ in 0..n {
        let f = wire::Frame::parse(black_box(frame), limits).expect("the frame parses");
        parsed += usize::from(!f.is_empty());
        drop(black_box(f));
    }
    parsed
}

fn hub(n: u64) -> usize {
    let (mut hub, now) = support::hub(2);
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|seq| {
            let mut data = json::Object::new();
            data.insert("directType", Value::from("bench.event"));
            data.insert("directData", payload(seq));
            frame(
                &uuid(seq + 1),
                "direct",
                "peer-0",
                Some("peer-1"),
                &data.into(),
            )
        })
        .collect();
    measured_hub(&mut hub, now, &frames)
}

#[inline(never)]
fn measured_hub(hub: &mut HubState, now: Now, frames: &[Vec<u8>]) -> usize {
    let mut sent = 0;
    for bytes in frames {
        let input = hub::Input::Frame {
            conn: ConnId(1),
            bytes: black_box(bytes),
        };
        hub.handle_input(now, input);
        sent += support::drain(hub, now);
    }
    sent
}

/// The client's outputs carried out: events counted, transmitted bytes flushed.
fn drain_client(c: &mut Connection, now: Now) -> usize {
    let (mut events, mut flushed) = (0, 0);
    loop {
        match c.poll_output() {
            client::Output::Timeout(_) | client::Output::Idle => break,
            client::Output::Transmit(text) => flushed += text.len(),
            client::Output::Event(_) => events += 1,
            _ => {}
        }
    }
    if flushed > 0 {
        c.handle_input(now, client::Input::Flushed(flushed));
        while !matches!(
            c.poll_output(),
            client::Output::Timeout(_) | client::Output::Idle
        ) {}
    }
    events
}

/// A client core of kind `sub`, ready (hello acknowledged).
fn ready_client(now: Now) -> Connection {
    let config = ClientConfig::new("ws://127.0.0.1:1/", "sub", SECRET);
    let mut c = Connection::new(config, 7).expect("the configuration is valid");
    c.start(now);
    drain_client(&mut c, now);
    c.handle_input(now, client::Input::TransportUp);
    drain_client(&mut c, now);
    let ack = format!(
        r#"{{"ok":true,"serverTime":{WALL_MS},"kind":"sub","features":["topics","direct"]}}"#
    );
    let ack = json::parse(ack.as_bytes()).expect("the ack is JSON");
    let bytes = frame("ack-1", "hello.ack", "server", Some("sub"), &ack);
    c.handle_input(now, client::Input::Frame(&bytes));
    drain_client(&mut c, now);
    c
}

fn client(n: u64, now: Now) -> usize {
    let mut c = ready_client(now);
    c.subscribe(now, "bench.fanout.10")
        .expect("ready to subscribe");
    drain_client(&mut c, now);
    let frames: Vec<Vec<u8>> = (0..n).map(|seq| topic_message(seq, "sub")).collect();
    measured_client(&mut c, now, &frames)
}

#[inline(never)]
fn measured_client(c: &mut Connection, now: Now, frames: &[Vec<u8>]) -> usize {
    let mut events = 0;
    for bytes in frames {
        c.handle_input(now, client::Input::Frame(black_box(bytes)));
        events += drain_client(c, now);
    }
    events
}

/// The ids of the first `n` requests a fresh ready client sends (its ids come from a
/// seeded generator, so a second client makes the same ones).
fn request_ids(n: u64, now: Now) -> Vec<String> {
    let mut c = ready_client(now);
    let mut ids = Vec::new();
    for _ in 0..n {
        let _ = c.rpc(now, "echo", "bench.echo", Some(payload(1)), None);
        let mut flushed = 0;
        loop {
            match c.poll_output() {
                client::Output::Transmit(text) => {
                    let frame = wire::Frame::parse(text.as_bytes(), &Limits::default())
                        .expect("the client writes frames that parse");
                    ids.push(frame.id().to_string_lossy());
                    flushed += text.len();
                }
                client::Output::Timeout(_) | client::Output::Idle => break,
                _ => {}
            }
        }
        c.handle_input(now, client::Input::Flushed(flushed));
    }
    ids
}

/// `n` calls and their responses, `window` calls made before their responses are read.
fn rpc(n: u64, now: Now, window: u64) -> usize {
    let responses: Vec<Vec<u8>> = request_ids(n, now)
        .iter()
        .enumerate()
        .map(|(seq, id)| {
            let mut data = json::Object::new();
            data.insert("ok", Value::Bool(true));
            data.insert("result", payload(seq as u64));
            frame(id, "rpc.response", "echo", Some("sub"), &data.into())
        })
        .collect();
    let mut c = ready_client(now);
    let payloads: Vec<Value> = (0..n).map(|_| payload(1)).collect();
    measured_rpc(&mut c, now, payloads, &responses, window.max(1) as usize)
}

#[inline(never)]
fn measured_rpc(
    c: &mut Connection,
    now: Now,
    payloads: Vec<Value>,
    responses: &[Vec<u8>],
    window: usize,
) -> usize {
    let mut results = 0;
    let mut payloads = payloads.into_iter();
    for batch in responses.chunks(window) {
        for data in payloads.by_ref().take(batch.len()) {
            c.rpc(now, "echo", "bench.echo", Some(data), None)
                .expect("the call is made");
            drain_client(c, now);
        }
        for bytes in batch {
            c.handle_input(now, client::Input::Frame(black_box(bytes)));
            loop {
                match c.poll_output() {
                    client::Output::Timeout(_) | client::Output::Idle => break,
                    client::Output::Event(client::ClientEvent::RpcComplete(done)) => {
                        results += usize::from(done.ok());
                    }
                    _ => {}
                }
            }
        }
    }
    results
}
