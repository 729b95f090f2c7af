//! Random sessions against the hub: whatever peers do, every frame the hub sends
//! verifies with its recipient's key and goes to an authenticated socket, one socket
//! holds each kind, queues stay within their caps, and the counters agree with a
//! simple model. Failures persist under the repository's `proptest-regressions/`.

mod hub_harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hub_harness::{Hub, SECRET, c};
use link_sansio::hub::{HubEvent, Input, Output};
use link_sansio::wire::{self, Key, Limits};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Open(u64),
    Hello(u64, u8),
    BadHello(u64),
    Subscribe(u64, u8),
    Unsubscribe(u64, u8),
    Publish(u64, u8, usize),
    Direct(u64, u8),
    Rpc(u64, u8),
    Status(u64),
    Garbage(u64),
    Close(u64),
    Flush(u64),
    Pong(u64),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 1u64..6;
    prop_oneof![
        conn.clone().prop_map(Op::Open),
        (conn.clone(), 0u8..3).prop_map(|(c, k)| Op::Hello(c, k)),
        conn.clone().prop_map(Op::BadHello),
        (conn.clone(), 0u8..3).prop_map(|(c, t)| Op::Subscribe(c, t)),
        (conn.clone(), 0u8..3).prop_map(|(c, t)| Op::Unsubscribe(c, t)),
        (conn.clone(), 0u8..3, 0usize..400).prop_map(|(c, t, n)| Op::Publish(c, t, n)),
        (conn.clone(), 0u8..3).prop_map(|(c, k)| Op::Direct(c, k)),
        (conn.clone(), 0u8..4).prop_map(|(c, k)| Op::Rpc(c, k)),
        conn.clone().prop_map(Op::Status),
        conn.clone().prop_map(Op::Garbage),
        conn.clone().prop_map(Op::Close),
        conn.clone().prop_map(Op::Flush),
        conn.clone().prop_map(Op::Pong),
        (0u64..20_000).prop_map(Op::Advance),
    ]
}

const KINDS: [&str; 3] = ["a", "b", "c"];
const TOPICS: [&str; 3] = ["t0", "t1", "t2"];

/// Checks every output since the last call against the model.
fn check(h: &mut Hub, peers: &mut BTreeMap<u64, &'static str>, closed: &mut BTreeSet<u64>) {
    let outs = h.take();
    // `peer.connect` is reported after the handshake frames it concludes.
    for out in &outs {
        if let Output::Event(HubEvent::PeerConnected { conn, kind, .. }) = out {
            let k = KINDS.iter().find(|k| **k == kind).expect("known kind");
            peers.insert(conn.0, k);
        }
    }
    for out in outs {
        match out {
            Output::Transmit { conn, text } => {
                let kind = peers
                    .get(&conn.0)
                    .unwrap_or_else(|| panic!("frame to non-peer {conn:?}: {text}"));
                let key = Key::new(SECRET, Default::default());
                let mut scratch = Vec::new();
                let env = wire::decode(text.as_bytes(), &key, &Limits::default(), &mut scratch)
                    .expect("every frame verifies");
                assert_eq!(env.to.map(|t| t.to_string_lossy()).as_deref(), Some(*kind));
            }
            Output::Close { conn, .. } => {
                peers.remove(&conn.0);
                closed.insert(conn.0);
            }
            Output::Terminate { conn } => {
                peers.remove(&conn.0);
                closed.insert(conn.0);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../proptest-regressions/hub_props.txt"
        )))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_sessions_keep_the_hub_consistent(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Hub::config(|c| {
            c.max_buffered_bytes = 600;
            c.max_outbox_bytes = 2_000;
            c.max_pending_sockets = 3;
        });
        let mut peers: BTreeMap<u64, &'static str> = BTreeMap::new();
        let mut closed: BTreeSet<u64> = BTreeSet::new();
        let mut opened: BTreeSet<u64> = BTreeSet::new();
        for op in ops {
            match op {
                Op::Open(n) if opened.insert(n) => h.open(n),
                Op::Hello(n, k) if opened.contains(&n) => h.hello_with(n, KINDS[k as usize], SECRET),
                Op::BadHello(n) if opened.contains(&n) => {
                    let key = Key::new(SECRET, Default::default());
                    let text = h.sign(&key, "bad", "hello", None, None, Some(json!({"kind": "no way"})));
                    h.raw(n, &text);
                }
                Op::Subscribe(n, t) if h.keys.contains_key(&c(n)) => {
                    h.send(n, "topic.subscribe", None, Some(json!({"topic": TOPICS[t as usize]})));
                }
                Op::Unsubscribe(n, t) if h.keys.contains_key(&c(n)) => {
                    h.send(n, "topic.unsubscribe", None, Some(json!({"topic": TOPICS[t as usize]})));
                }
                Op::Publish(n, t, len) if h.keys.contains_key(&c(n)) => {
                    h.send(n, "topic.message", None, Some(json!({"topic": TOPICS[t as usize], "payload": "x".repeat(len)})));
                }
                Op::Direct(n, k) if h.keys.contains_key(&c(n)) => {
                    h.send(n, "direct", Some(KINDS[k as usize]), Some(json!({"directType": "d"})));
                }
                Op::Rpc(n, k) if h.keys.contains_key(&c(n)) => {
                    let to = ["a", "b", "c", "server"][k as usize];
                    h.send(n, "rpc.request", Some(to), Some(json!({"rpcType": "link.health"})));
                }
                Op::Status(n) if h.keys.contains_key(&c(n)) => {
                    h.send(n, "status.update", None, Some(json!({"n": n})));
                }
                Op::Garbage(n) if opened.contains(&n) => h.raw(n, "{\"id\":\"x\",\"v\":1}"),
                Op::Close(n) if opened.contains(&n) => {
                    h.close_from_client(n, 1000);
                    peers.remove(&n);
                }
                Op::Flush(n) => h.flush(n),
                Op::Pong(n) => h.input(Input::Pong { conn: c(n) }),
                Op::Advance(ms) => h.advance(Duration::from_millis(ms)),
                _ => {}
            }
            check(&mut h, &mut peers, &mut closed);
            let health = h.hub.health();
            let kinds: BTreeSet<&str> = peers.values().copied().collect();
            prop_assert_eq!(kinds.len(), peers.len(), "one socket per kind");
            prop_assert_eq!(health.peer_count, peers.len());
            prop_assert!(health.pending_socket_count <= 3);
            prop_assert!(health.outbox_bytes <= 2_000 * 5);
            prop_assert!(health.total_subscribers <= 9);
            prop_assert_eq!(h.hub.state().peers.len(), peers.len());
        }
    }
}
