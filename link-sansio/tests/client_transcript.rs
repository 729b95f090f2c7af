//! The reference transcript (tests/vectors/transcript.jsonl, recorded between a
//! Node.js hub and Node.js clients) replayed against `Connection`s playing `alpha`
//! and `beta`: every hub frame the reference clients received is fed to ours (byte
//! for byte, except RPC responses to our own calls, which are re-signed with our
//! request ids), and every frame ours send is compared with what the reference
//! clients sent, field by field (ids, timestamps and signatures aside). The outcomes
//! the application sees are compared with `transcript-meta.json`.

mod client_support;

use std::path::Path;
use std::time::Duration;

use client_support::*;
use link_sansio::client::{
    CancelReason, ClientConfig, ClientEvent, DisconnectInfo, HandlerError, InboundRpcId, Input,
    RpcId,
};
use link_sansio::time::Now;
use link_sansio::wire::{self, HashAlgo, Header, Key, Value};
use serde_json::json;

const SECRET: &str = "interop-secret";

struct Row {
    dir: String,
    conn: u64,
    text: String,
    msg: serde_json::Value,
}

struct Transcript {
    rows: Vec<(u64, Row)>,
    meta: serde_json::Value,
}

impl Transcript {
    fn load() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let text = std::fs::read_to_string(dir.join("transcript.jsonl")).expect("transcript");
        let rows = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let r: serde_json::Value = serde_json::from_str(l).expect("row");
                let text = r["text"].as_str().expect("text").to_owned();
                let msg = serde_json::from_str(&text).expect("frame");
                (
                    r["seq"].as_u64().expect("seq"),
                    Row {
                        dir: r["dir"].as_str().expect("dir").to_owned(),
                        conn: r["conn"].as_u64().expect("conn"),
                        text,
                        msg,
                    },
                )
            })
            .collect();
        let meta = serde_json::from_str(
            &std::fs::read_to_string(dir.join("transcript-meta.json")).expect("meta"),
        )
        .expect("meta json");
        Self { rows, meta }
    }

    fn row(&self, seq: u64) -> &Row {
        &self
            .rows
            .iter()
            .find(|(s, _)| *s == seq)
            .expect("seq exists")
            .1
    }
}

fn harness(kind: &str, name: Option<&str>, configure: impl FnOnce(&mut ClientConfig)) -> Harness {
    let mut c = ClientConfig::new(URL, kind, SECRET);
    c.name = name.map(str::to_owned);
    c.pid = Some(15102);
    configure(&mut c);
    let mut h = Harness::new(c);
    h.key = Key::new(SECRET, HashAlgo::Sha256);
    h
}

/// Sets the wall clock to `ts` (moving the monotonic clock along with it).
fn at(h: &mut Harness, ts: f64) {
    let ts = ts as u64;
    let step = ts.saturating_sub(h.now.wall_ms);
    h.now = Now::new(h.now.instant + Duration::from_millis(step), ts);
}

/// Feeds the reference hub's frame as recorded.
fn feed(h: &mut Harness, t: &Transcript, seq: u64) {
    let row = t.row(seq);
    assert_eq!(row.dir, "h->c", "seq {seq} is a hub frame");
    at(h, row.msg["ts"].as_f64().expect("ts"));
    let before = h.events.len();
    h.input(Input::Frame(row.text.as_bytes()));
    let dropped: Vec<_> = h.events[before..]
        .iter()
        .filter(|e| matches!(e, ClientEvent::ProtocolError { .. }))
        .collect();
    assert!(dropped.is_empty(), "seq {seq} was refused: {dropped:?}");
}

/// Feeds the hub's response to a call of ours, re-signed with our request id.
fn feed_response(h: &mut Harness, t: &Transcript, seq: u64, our_id: &str) {
    let m = &t.row(seq).msg;
    assert_eq!(m["type"], "rpc.response");
    at(h, m["ts"].as_f64().expect("ts"));
    let key = Key::new(SECRET, HashAlgo::Sha256);
    let data = v(m["data"].clone()).to_canonical();
    let header = Header {
        id: our_id.into(),
        ts: m["ts"].as_f64().expect("ts"),
        from: m["from"].as_str().map(Into::into),
        to: m["to"].as_str().map(Into::into),
    };
    let mut out = Vec::new();
    wire::encode(&key, &header, "rpc.response", Some(&data), &mut out);
    h.input(Input::Frame(&out));
}

/// The one frame `h` sent since the last call, checked against the reference's.
fn expect_sent(h: &mut Harness, t: &Transcript, seq: u64) -> Sent {
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1, "seq {seq}: expected one frame, got {sent:?}");
    let ours = sent.into_iter().next().expect("one");
    let theirs = &t.row(seq).msg;
    assert_eq!(t.row(seq).dir, "c->h");
    assert_eq!(
        ours.msg_type,
        theirs["type"].as_str().expect("type"),
        "seq {seq} type"
    );
    assert_eq!(
        ours.env
            .from
            .as_ref()
            .map(|f| f.to_string_lossy())
            .as_deref(),
        theirs["from"].as_str(),
        "seq {seq} from"
    );
    assert_eq!(ours.to().as_deref(), theirs["to"].as_str(), "seq {seq} to");
    ours
}

fn same_data(ours: &Sent, t: &Transcript, seq: u64) {
    let theirs = t.row(seq).msg.get("data").cloned().map(v);
    assert_eq!(ours.data, theirs, "seq {seq} data");
}

fn outcome(h: &mut Harness, id: RpcId) -> serde_json::Value {
    let events = h.take_events();
    let done: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::RpcComplete(c) if c.id == id => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(done.len(), 1, "{events:?}");
    match &done[0].outcome {
        Ok(r) => r
            .as_ref()
            .map(Value::to_serde)
            .unwrap_or(serde_json::Value::Null),
        Err(e) => {
            let mut o = json!({"ok": false, "code": e.code(), "message": e.to_string()});
            if let Some(d) = e.data() {
                o["data"] = d.to_serde();
            }
            o
        }
    }
}

/// A peer RPC step: request, forward, response, response forward (transcript seqs),
/// beta's answer (`None`: no handler), and the key of the outcome in the meta file.
type PeerRpc = (
    u64,
    u64,
    u64,
    u64,
    Option<Result<Option<Value>, HandlerError>>,
    &'static str,
);

fn without_name(mut meta: serde_json::Value) -> serde_json::Value {
    if let Some(o) = meta.as_object_mut() {
        o.remove("name");
    }
    meta
}

fn inbound(h: &mut Harness) -> InboundRpcId {
    let events = h.take_events();
    match events[..] {
        [ClientEvent::RpcRequest { request, .. }] => request,
        _ => panic!("expected one request: {events:?}"),
    }
}

#[test]
fn the_reference_session_replays_against_our_clients() {
    let t = Transcript::load();
    let meta = &t.meta["results"];

    // --- alpha says hello, is acknowledged, pushes its first status.
    let mut alpha = harness("alpha", Some("alpha service"), |c| c.make_status = true);
    at(&mut alpha, 1_795_391_149_808.0);
    alpha.conn.start(alpha.now);
    alpha.pump();
    alpha.up();
    let hello = expect_sent(&mut alpha, &t, 1);
    same_data(&hello, &t, 1);
    feed(&mut alpha, &t, 2);
    feed(&mut alpha, &t, 3);
    feed(&mut alpha, &t, 4);
    assert!(alpha.conn.is_ready());
    let events = alpha.take_events();
    assert!(events.contains(&ClientEvent::StatusWanted));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::PeerConnected(p) if p.kind == "alpha"))
    );
    alpha
        .conn
        .push_status(
            alpha.now,
            Some(v(json!({"state": "idle", "n": 1, "note": "café ☃"}))),
        )
        .expect("status");
    alpha.pump();
    let s = expect_sent(&mut alpha, &t, 5);
    same_data(&s, &t, 5);

    // --- beta (name defaults to its kind) joins and learns alpha's status.
    let mut beta = harness("beta", None, |c| {
        c.make_status = true;
        for ty in ["add", "nothing", "fail", "boom", "slow"] {
            c.rpc_handlers.insert(ty.into());
        }
    });
    at(&mut beta, 1_795_391_149_920.0);
    beta.conn.start(beta.now);
    beta.pump();
    beta.up();
    let hello = expect_sent(&mut beta, &t, 6);
    same_data(&hello, &t, 6);
    for seq in [7, 8, 9] {
        feed(&mut beta, &t, seq);
    }
    assert_eq!(
        beta.conn
            .peer_status("alpha")
            .and_then(|s| s.status.clone()),
        Some(v(json!({"state": "idle", "n": 1, "note": "café ☃"})))
    );
    beta.take_events();
    beta.conn
        .push_status(beta.now, Some(v(json!({"state": "busy", "load": 0.25}))))
        .expect("status");
    beta.pump();
    let s = expect_sent(&mut beta, &t, 11);
    same_data(&s, &t, 11);
    feed(&mut alpha, &t, 10);
    feed(&mut alpha, &t, 12);
    let events = alpha.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::PeerConnected(p) if p.kind == "beta"))
    );
    assert!(events.contains(&ClientEvent::PeerStatus {
        from: "beta".into(),
        status: Some(v(json!({"state": "busy", "load": 0.25}))),
        at: 1_795_391_149_925.0
    }));

    // --- RPCs. `call` makes alpha's call and checks the request against the
    // reference's; the hub's answer comes back re-signed with our id.
    let call = |alpha: &mut Harness, seq: u64, timeout: Option<Duration>| -> (RpcId, String) {
        let req = &t.row(seq).msg;
        let data = req["data"].clone();
        let id = alpha
            .conn
            .rpc(
                alpha.now,
                req["to"].as_str().expect("to"),
                data["rpcType"].as_str().expect("type"),
                Some(v(data["rpcData"].clone())),
                timeout,
            )
            .expect("sent");
        alpha.pump();
        let ours = expect_sent(alpha, &t, seq);
        same_data(&ours, &t, seq);
        (id, ours.id())
    };

    let (id, wire_id) = call(&mut alpha, 13, None);
    feed_response(&mut alpha, &t, 14, &wire_id);
    assert_eq!(outcome(&mut alpha, id), meta["serverPing"]);

    // Peer RPCs: beta gets the hub's forward as recorded and answers like the
    // reference handlers did; its response must match the reference byte for byte
    // in content (same id: the forward kept the caller's id).
    let peer_rpcs: [PeerRpc; 5] = [
        (15, 16, 17, 18, Some(Ok(Some(v(json!({"sum": 5}))))), "add"),
        (19, 20, 21, 22, Some(Ok(None)), ""),
        (
            25,
            26,
            27,
            28,
            Some(Err(HandlerError::exposed(
                "ORDER_NOT_FOUND",
                "order not found",
            )
            .with_data(v(json!({"orderId": 42}))))),
            "handlerError",
        ),
        (
            29,
            30,
            31,
            32,
            Some(Err(HandlerError::internal("kaboom"))),
            "plainThrow",
        ),
        (33, 34, 35, 36, None, "unknownPeerType"),
    ];
    for (req_seq, fwd_seq, resp_seq, back_seq, answer, key) in peer_rpcs {
        let (id, wire_id) = call(&mut alpha, req_seq, None);
        feed(&mut beta, &t, fwd_seq);
        match answer {
            Some(reply) => {
                let request = inbound(&mut beta);
                beta.conn.respond(beta.now, request, reply);
                beta.pump();
                let hidden = beta.take_events();
                if key == "plainThrow" {
                    assert!(
                        matches!(&hidden[..], [ClientEvent::RpcHandlerError { message, .. }] if message == "kaboom")
                    );
                }
            }
            None => {
                let events = beta.take_events();
                assert!(
                    matches!(
                        events[..],
                        [ClientEvent::RpcRefused {
                            code: "RPC_UNKNOWN_TYPE",
                            ..
                        }]
                    ),
                    "{events:?}"
                );
            }
        }
        let resp = expect_sent(&mut beta, &t, resp_seq);
        same_data(&resp, &t, resp_seq);
        assert_eq!(
            resp.id(),
            t.row(resp_seq).msg["id"].as_str().expect("id"),
            "seq {resp_seq} echoes the request id"
        );
        feed_response(&mut alpha, &t, back_seq, &wire_id);
        let got = outcome(&mut alpha, id);
        match key {
            "add" => assert_eq!(got, meta["add"]),
            "" => assert_eq!(got, serde_json::Value::Null),
            k => assert_eq!(got, without_name(meta[k].clone()), "{k}"),
        }
    }

    for (req_seq, resp_seq, k) in [(23, 24, "offline"), (37, 38, "unknownServerType")] {
        let (id, wire_id) = call(&mut alpha, req_seq, None);
        feed_response(&mut alpha, &t, resp_seq, &wire_id);
        assert_eq!(
            outcome(&mut alpha, id),
            without_name(meta[k].clone()),
            "{k}"
        );
    }

    // Timeout, then the cancel, which reaches beta's handler.
    let (id, wire_id) = call(&mut alpha, 39, Some(Duration::from_millis(300)));
    feed(&mut beta, &t, 40);
    let slow = inbound(&mut beta);
    alpha.ms(300);
    let cancel = expect_sent(&mut alpha, &t, 41);
    assert_eq!(cancel.data, Some(v(json!({"id": wire_id}))));
    assert_eq!(
        outcome(&mut alpha, id),
        without_name(meta["timeout"].clone())
    );
    feed(&mut beta, &t, 42);
    assert_eq!(
        beta.take_events(),
        vec![ClientEvent::RpcCancelled {
            request: slow,
            from: Some("alpha".into()),
            rpc_type: "slow".into(),
            reason: CancelReason::Caller
        }]
    );
    assert_eq!(meta["slowAborted"], json!(true));

    // --- Topics and direct.
    beta.conn.subscribe(beta.now, "news.tech").expect("topic");
    beta.pump();
    let s = expect_sent(&mut beta, &t, 43);
    same_data(&s, &t, 43);
    let payload = t.row(44).msg["data"]["payload"].clone();
    alpha
        .conn
        .publish(alpha.now, "news.tech", Some(v(payload.clone())))
        .expect("publish");
    alpha.pump();
    let s = expect_sent(&mut alpha, &t, 44);
    same_data(&s, &t, 44);
    feed(&mut beta, &t, 45);
    assert_eq!(
        beta.take_events(),
        vec![ClientEvent::TopicMessage {
            topic: "news.tech".into(),
            from: Some("alpha".into()),
            payload: Some(v(meta["topicReceived"][0]["p"].clone()))
        }]
    );
    beta.conn.unsubscribe(beta.now, "news.tech").expect("topic");
    beta.pump();
    let s = expect_sent(&mut beta, &t, 46);
    same_data(&s, &t, 46);
    alpha
        .conn
        .publish(
            alpha.now,
            "news.tech",
            Some(v(json!({"headline": "nobody listening"}))),
        )
        .expect("publish");
    alpha.pump();
    let s = expect_sent(&mut alpha, &t, 47);
    same_data(&s, &t, 47);
    alpha
        .conn
        .send(
            alpha.now,
            "beta",
            "greet",
            Some(v(json!({"msg": "hi beta", "n": 1}))),
        )
        .expect("send");
    alpha.pump();
    let s = expect_sent(&mut alpha, &t, 48);
    same_data(&s, &t, 48);
    feed(&mut beta, &t, 49);
    let d = &meta["direct"][0];
    assert_eq!(
        beta.take_events(),
        vec![ClientEvent::Direct {
            from: Some("alpha".into()),
            direct_type: "greet".into(),
            data: Some(v(d["data"].clone()))
        }]
    );

    // --- Built-in server RPCs.
    beta.conn.subscribe(beta.now, "jobs.queue").expect("topic");
    beta.pump();
    let s = expect_sent(&mut beta, &t, 50);
    same_data(&s, &t, 50);
    for (req_seq, resp_seq, k) in [
        (51, 52, "topicListAll"),
        (53, 54, "topicListOne"),
        (55, 56, "health"),
    ] {
        let (id, wire_id) = call(&mut alpha, req_seq, None);
        feed_response(&mut alpha, &t, resp_seq, &wire_id);
        assert_eq!(outcome(&mut alpha, id), meta[k], "{k}");
    }

    // --- A second status, relayed.
    alpha
        .conn
        .push_status(alpha.now, Some(v(json!({"state": "working", "n": 99}))))
        .expect("status");
    alpha.pump();
    let s = expect_sent(&mut alpha, &t, 57);
    same_data(&s, &t, 57);
    feed(&mut beta, &t, 58);
    assert!(
        beta.take_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::PeerStatus { from, .. } if from == "alpha"))
    );

    // --- A second alpha displaces the first (close 4000 on conn 1).
    let mut alpha2 = harness("alpha", Some("alpha replacement"), |_| {});
    at(&mut alpha2, 1_795_391_151_656.0);
    alpha2.conn.start(alpha2.now);
    alpha2.pump();
    alpha2.up();
    let hello = expect_sent(&mut alpha2, &t, 59);
    same_data(&hello, &t, 59);
    alpha.take_events();
    alpha.down(4000, "replaced by new connection");
    let r = &meta["replacementDisconnect"][0];
    assert!(
        alpha
            .take_events()
            .contains(&ClientEvent::Disconnected(DisconnectInfo {
                code: Some(4000),
                reason: r["reason"].as_str().expect("reason").into(),
                will_reconnect: r["willReconnect"].as_bool().expect("bool"),
                was_ready: r["wasReady"].as_bool().expect("bool"),
                displaced: r["displaced"].as_bool().expect("bool"),
            }))
    );
    for seq in [61, 62, 63] {
        feed(&mut alpha2, &t, seq);
    }
    assert!(alpha2.conn.is_ready());
    assert!(
        alpha2.conn.peer_status("beta").is_some() && alpha2.conn.peer_status("alpha").is_some()
    );
    feed(&mut beta, &t, 64);
    assert!(
        beta.take_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::PeerReplaced { kind, .. } if kind == "alpha"))
    );
    alpha.ms(60_000);
    assert!(
        alpha.take_actions().is_empty(),
        "the displaced alpha stays down"
    );

    // Every frame the reference clients sent was matched by one of ours above.
    let checked = [
        1, 5, 6, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 33, 35, 37, 39, 41, 43, 44, 46, 47,
        48, 50, 51, 53, 55, 57, 59,
    ];
    let client_frames: Vec<u64> = t
        .rows
        .iter()
        .filter(|(_, r)| r.dir == "c->h")
        .map(|(seq, r)| {
            assert!(r.conn <= 3);
            *seq
        })
        .collect();
    assert_eq!(client_frames, checked);
}
