//! Topics, direct messages, status and peers against a fake hub.

mod client_support;

use client_support::*;
use link_sansio::client::{ClientEvent, Input};
use link_sansio::wire::message::StatusEntry;
use link_sansio::wire::{DropReason, Value};
use serde_json::json;

fn types_of(sent: &[Sent]) -> Vec<String> {
    sent.iter().map(|s| s.msg_type.clone()).collect()
}

#[test]
fn subscribe_validates_sends_once_and_unsubscribe_sends() {
    let mut h = Harness::ready(config("sub"));
    for bad in ["", "a*", "a b", &"x".repeat(257)] {
        let err = h.conn.subscribe(h.now, bad).expect_err("invalid topic");
        assert_eq!(err.code(), "INVALID_TOPIC");
    }
    h.conn.subscribe(h.now, "jobs.done").expect("valid");
    h.conn.subscribe(h.now, "jobs.done").expect("idempotent");
    h.pump();
    let sent = h.take_sent();
    assert_eq!(types_of(&sent), vec!["topic.subscribe"]);
    assert_eq!(sent[0].data, Some(v(json!({"topic": "jobs.done"}))));
    assert_eq!(sent[0].to(), None);
    assert_eq!(h.conn.unsubscribe(h.now, "jobs.done"), Ok(true));
    assert_eq!(h.conn.unsubscribe(h.now, "jobs.done"), Ok(false));
    h.pump();
    let sent = h.take_sent();
    assert_eq!(types_of(&sent), vec!["topic.unsubscribe"]);
    assert_eq!(sent[0].data, Some(v(json!({"topic": "jobs.done"}))));
}

#[test]
fn subscriptions_made_offline_are_sent_at_ready_and_replayed_after_every_ready() {
    let mut h = Harness::new(config("sub"));
    h.conn.subscribe(h.now, "a").expect("valid");
    h.conn.subscribe(h.now, "b").expect("valid");
    h.conn.start(h.now);
    h.pump();
    h.up();
    assert_eq!(
        types_of(&h.take_sent()),
        vec!["hello"],
        "nothing before the ack"
    );
    h.ack(&["topics", "direct"]);
    let topics = |sent: Vec<Sent>| -> Vec<Value> {
        sent.into_iter()
            .filter(|s| s.msg_type == "topic.subscribe")
            .filter_map(|s| s.field("topic").cloned())
            .collect()
    };
    assert_eq!(topics(h.take_sent()), vec![v(json!("a")), v(json!("b"))]);
    h.conn.unsubscribe(h.now, "a").expect("valid");
    h.down(1006, "");
    h.reconnect();
    assert_eq!(topics(h.take_sent()), vec![v(json!("b"))]);
}

#[test]
fn topic_messages_reach_subscribers_only_and_never_echo_own_publishes() {
    let mut h = Harness::ready(config("sub"));
    h.conn.subscribe(h.now, "news").expect("valid");
    h.hub(
        "topic.message",
        Some("pub"),
        Some(v(json!({"topic": "news", "payload": {"x": 1}}))),
    );
    assert_eq!(
        h.take_events(),
        vec![ClientEvent::TopicMessage {
            topic: "news".into(),
            from: Some("pub".into()),
            payload: Some(v(json!({"x": 1})))
        }]
    );
    h.hub(
        "topic.message",
        Some("pub"),
        Some(v(json!({"topic": "other", "payload": 1}))),
    );
    h.hub(
        "topic.message",
        Some("sub"),
        Some(v(json!({"topic": "news", "payload": 1}))),
    );
    h.hub("topic.message", Some("pub"), Some(v(json!({"payload": 1}))));
    assert!(h.take_events().is_empty());
}

#[test]
fn publish_queues_until_ready_and_is_signed_at_flush_time() {
    let mut h = Harness::new(config("pub"));
    h.conn.start(h.now);
    h.pump();
    h.conn
        .publish(h.now, "news", Some(v(json!("early"))))
        .expect("queued");
    h.conn.send(h.now, "other", "ping", None).expect("queued");
    assert_eq!(h.conn.health().outbox_size, 2);
    let queued_at = h.now.ms();
    h.ms(2_000);
    h.up();
    h.take_sent();
    h.ack(&["topics", "direct"]);
    let sent = h.take_sent();
    assert_eq!(types_of(&sent), vec!["topic.message", "direct"]);
    assert_eq!(
        sent[0].data,
        Some(v(json!({"topic": "news", "payload": "early"})))
    );
    assert_eq!(sent[0].env.ts, queued_at + 2_000.0, "fresh ts at flush");
    assert_eq!(sent[1].to(), Some("other".into()));
    assert_eq!(sent[1].data, Some(v(json!({"directType": "ping"}))));
    let events = h.take_events();
    let drained = events.iter().position(|e| *e == ClientEvent::OutboxDrained);
    let ready = events
        .iter()
        .position(|e| matches!(e, ClientEvent::Ready { .. }));
    assert!(
        drained.is_some() && drained < ready,
        "drained before ready: {events:?}"
    );
}

#[test]
fn feature_gated_messages_are_purged_when_the_hub_lacks_the_feature() {
    let mut h = Harness::new(config("pub"));
    h.conn.subscribe(h.now, "news").expect("valid");
    h.conn.start(h.now);
    h.pump();
    h.conn
        .publish(h.now, "news", None)
        .expect("queued: features unknown");
    h.conn
        .send(h.now, "other", "x", None)
        .expect("queued: features unknown");
    h.conn
        .push_status(h.now, Some(v(json!("ok"))))
        .expect("queued");
    h.up();
    h.take_sent();
    h.ack(&["direct"]);
    let sent = h.take_sent();
    assert_eq!(
        types_of(&sent),
        vec!["direct", "status.update"],
        "no topics traffic at all"
    );
    assert!(
        h.take_events()
            .contains(&ClientEvent::OutboxPurged { dropped: 1 })
    );
    let err = h
        .conn
        .publish(h.now, "news", None)
        .expect_err("known and missing");
    assert_eq!(err.code(), "FEATURE_UNSUPPORTED");
    h.conn
        .send(h.now, "other", "x", None)
        .expect("direct is advertised");
}

#[test]
fn publish_and_send_check_their_arguments() {
    let mut h = Harness::ready(config("pub"));
    assert_eq!(
        h.conn
            .publish(h.now, "bad topic", None)
            .map_err(|e| e.code().to_owned()),
        Err("INVALID_TOPIC".into())
    );
    assert_eq!(
        h.conn
            .send(h.now, "", "x", None)
            .map_err(|e| e.code().to_owned()),
        Err("INVALID_ARGUMENT".into())
    );
    assert_eq!(
        h.conn
            .send(h.now, "w", "", None)
            .map_err(|e| e.code().to_owned()),
        Err("INVALID_ARGUMENT".into())
    );
    let nan = Some(Value::Number(f64::NAN));
    assert_eq!(
        h.conn
            .publish(h.now, "t", nan.clone())
            .map_err(|e| e.code().to_owned()),
        Err("PAYLOAD_NOT_SERIALIZABLE".into())
    );
    assert_eq!(
        h.conn
            .send(h.now, "w", "x", nan)
            .map_err(|e| e.code().to_owned()),
        Err("PAYLOAD_NOT_SERIALIZABLE".into())
    );
    h.pump();
    assert!(h.take_sent().is_empty());
}

#[test]
fn direct_messages_are_delivered_with_the_hub_stamped_sender() {
    let mut h = Harness::ready(config("coord"));
    h.hub(
        "direct",
        Some("worker"),
        Some(v(
            json!({"directType": "job.progress", "directData": {"pct": 50}}),
        )),
    );
    assert_eq!(
        h.take_events(),
        vec![ClientEvent::Direct {
            from: Some("worker".into()),
            direct_type: "job.progress".into(),
            data: Some(v(json!({"pct": 50})))
        }]
    );
    h.hub(
        "direct",
        Some("worker"),
        Some(v(json!({"directType": "", "directData": 1}))),
    );
    h.hub("direct", Some("worker"), Some(v(json!({"directData": 1}))));
    assert!(
        h.take_events().is_empty(),
        "a direct without a type is ignored"
    );
    h.conn
        .send(h.now, "worker", "job.cancel", Some(v(json!({"id": 7}))))
        .expect("sent");
    h.pump();
    let sent = h.take_sent();
    assert_eq!(sent[0].msg_type, "direct");
    assert_eq!(sent[0].to(), Some("worker".into()));
    assert_eq!(
        sent[0].data,
        Some(v(
            json!({"directType": "job.cancel", "directData": {"id": 7}})
        ))
    );
}

#[test]
fn status_is_wanted_on_ready_and_every_interval_and_is_conflated() {
    let mut c = config("worker");
    c.make_status = true;
    let mut h = Harness::new(c);
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.ack(&["topics", "direct"]);
    let wanted = |events: Vec<ClientEvent>| {
        events
            .iter()
            .filter(|e| **e == ClientEvent::StatusWanted)
            .count()
    };
    assert_eq!(wanted(h.take_events()), 1);
    h.take_sent();
    h.conn
        .push_status(h.now, Some(v(json!({"state": "idle"}))))
        .expect("sent");
    h.pump();
    let sent = h.take_sent();
    assert_eq!(types_of(&sent), vec!["status.update"]);
    assert_eq!(sent[0].data, Some(v(json!({"state": "idle"}))));
    assert_eq!(sent[0].to(), None);
    h.ms(9_999);
    assert_eq!(wanted(h.take_events()), 0);
    h.ms(1);
    assert_eq!(wanted(h.take_events()), 1);
    h.ms(20_000);
    assert_eq!(wanted(h.take_events()), 2);
    // While the link is down statuses queue, conflated to the newest.
    h.down(1006, "");
    h.ms(30_000);
    assert_eq!(wanted(h.take_events()), 0, "no status timer while down");
    h.conn
        .push_status(h.now, Some(v(json!(1))))
        .expect("queued");
    h.conn
        .push_status(h.now, Some(v(json!(2))))
        .expect("conflated");
    assert_eq!(h.conn.health().outbox_size, 1);
    assert!(
        h.conn
            .push_status(h.now, Some(Value::Number(f64::INFINITY)))
            .is_err()
    );
    h.take_sent();
    h.reconnect();
    assert_eq!(wanted(h.take_events()), 1, "wanted again at the new ready");
    let statuses = |h: &mut Harness| -> Vec<Option<Value>> {
        h.take_sent()
            .into_iter()
            .filter(|s| s.msg_type == "status.update")
            .map(|s| s.data)
            .collect()
    };
    // Answered in time, the fresh status replaces the queued one: the stale status
    // never goes out.
    assert_eq!(statuses(&mut h), vec![]);
    h.conn
        .push_status(h.now, Some(v(json!(3))))
        .expect("conflated");
    h.pump();
    assert_eq!(statuses(&mut h), vec![Some(v(json!(3)))]);
    // Unanswered, the queued status drains shortly after ready anyway.
    h.down(1006, "");
    h.conn
        .push_status(h.now, Some(v(json!(4))))
        .expect("queued");
    h.reconnect();
    assert_eq!(statuses(&mut h), vec![]);
    h.ms(25);
    assert_eq!(statuses(&mut h), vec![Some(v(json!(4)))]);
}

/// At ready the reference resubscribes, calls `makeStatus` (which replaces a queued
/// status in place) and only then drains: queued items keep their order around the
/// fresh status.
#[test]
fn at_ready_the_fresh_status_takes_the_queued_ones_place_in_the_outbox() {
    let mut c = config("worker");
    c.make_status = true;
    let mut h = Harness::new(c);
    h.conn.start(h.now);
    h.pump();
    h.conn
        .publish(h.now, "t", Some(v(json!("first"))))
        .expect("queued");
    h.conn
        .push_status(h.now, Some(v(json!("stale"))))
        .expect("queued");
    h.conn
        .publish(h.now, "t", Some(v(json!("last"))))
        .expect("queued");
    h.up();
    h.ack(&["topics", "direct"]);
    assert!(h.take_events().contains(&ClientEvent::StatusWanted));
    assert!(
        h.sent_of("topic.message").is_empty(),
        "the drain waits for the status"
    );
    h.conn
        .push_status(h.now, Some(v(json!("fresh"))))
        .expect("pushed");
    h.pump();
    let sent: Vec<(String, Option<Value>)> = h
        .take_sent()
        .into_iter()
        .filter(|m| m.msg_type != "hello")
        .map(|m| (m.msg_type.clone(), m.data.clone()))
        .collect();
    let payload = |p: &str| Some(v(json!({"topic": "t", "payload": p})));
    assert_eq!(
        sent,
        vec![
            ("topic.message".to_owned(), payload("first")),
            ("status.update".to_owned(), Some(v(json!("fresh")))),
            ("topic.message".to_owned(), payload("last")),
        ]
    );
}

#[test]
fn no_status_wanted_without_make_status() {
    let mut h = Harness::ready(config("worker"));
    h.ms(60_000);
    assert!(!h.take_events().contains(&ClientEvent::StatusWanted));
}

fn peer(kind: &str, at: u64) -> serde_json::Value {
    json!({"kind": kind, "hello": {"kind": kind, "name": kind, "pid": 1, "startedAt": 5}, "connectedAt": at, "connected": true})
}

#[test]
fn peers_update_yields_connect_replace_and_disconnect_events() {
    let mut h = Harness::ready(config("me"));
    h.hub(
        "peers.update",
        Some("server"),
        Some(v(json!({"peers": [peer("me", 1), peer("a", 1)]}))),
    );
    let kinds: Vec<String> = h
        .take_events()
        .into_iter()
        .map(|e| match e {
            ClientEvent::PeerConnected(p) => p.kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, vec!["me", "a"], "the list includes this peer");
    h.hub(
        "status.snapshot",
        Some("server"),
        Some(v(json!({"a": {"status": "busy", "at": 9}}))),
    );
    assert!(
        h.take_events().is_empty(),
        "a snapshot is state, not events"
    );
    assert_eq!(
        h.conn.peer_status("a"),
        Some(&StatusEntry {
            status: Some(v(json!("busy"))),
            at: 9.0
        })
    );
    h.hub(
        "status.update",
        Some("server"),
        Some(v(json!({"from": "a", "status": {"q": 3}, "at": 11}))),
    );
    assert_eq!(
        h.take_events(),
        vec![ClientEvent::PeerStatus {
            from: "a".into(),
            status: Some(v(json!({"q": 3}))),
            at: 11.0
        }]
    );
    h.hub(
        "peers.update",
        Some("server"),
        Some(v(
            json!({"peers": [peer("me", 1), peer("a", 2), peer("b", 2)]}),
        )),
    );
    let events = h.take_events();
    assert!(
        matches!(&events[0], ClientEvent::PeerReplaced { kind, previous, peer }
        if kind == "a" && previous.connected_at == 1.0 && peer.connected_at == 2.0)
    );
    assert!(matches!(&events[1], ClientEvent::PeerConnected(p) if p.kind == "b"));
    h.hub(
        "peers.update",
        Some("server"),
        Some(v(json!({"peers": [peer("me", 1), peer("b", 2)]}))),
    );
    assert!(matches!(&h.take_events()[..], [ClientEvent::PeerDisconnected(p)] if p.kind == "a"));
    assert_eq!(
        h.conn.peer_status("a"),
        None,
        "a departed peer's status is forgotten"
    );
    assert_eq!(
        h.conn.peers().map(|p| p.kind.as_str()).collect::<Vec<_>>(),
        vec!["me", "b"]
    );
    assert_eq!(h.conn.health().peer_count, 2);
}

#[test]
fn replayed_ids_are_dropped_per_sender_and_forgotten_when_the_peer_leaves() {
    let mut h = Harness::ready(config("me"));
    h.conn.subscribe(h.now, "t").expect("valid");
    h.hub(
        "peers.update",
        Some("server"),
        Some(v(json!({"peers": [peer("me", 1), peer("a", 1)]}))),
    );
    h.take_events();
    let msg = |h: &Harness, from: &str| {
        h.frame_with(
            "dup-1",
            h.now.ms(),
            "topic.message",
            Some(from),
            Some(v(json!({"topic": "t", "payload": 1}))),
        )
    };
    let from_a = msg(&h, "a");
    h.input(Input::Frame(&from_a));
    assert_eq!(h.take_events().len(), 1);
    h.input(Input::Frame(&from_a));
    assert!(matches!(
        h.take_events()[..],
        [ClientEvent::ProtocolError {
            reason: DropReason::ReplayId,
            ..
        }]
    ));
    // The same id from another sender is a different message.
    let from_b = msg(&h, "b");
    h.input(Input::Frame(&from_b));
    assert_eq!(h.take_events().len(), 1);
    // `a` leaves: its ids are forgotten, so the frame is accepted again.
    h.hub(
        "peers.update",
        Some("server"),
        Some(v(json!({"peers": [peer("me", 1)]}))),
    );
    h.take_events();
    h.input(Input::Frame(&from_a));
    assert!(matches!(
        h.take_events()[..],
        [ClientEvent::TopicMessage { .. }]
    ));
    // Hub messages without `from` count as "server".
    let f1 = h.frame_with(
        "srv-1",
        h.now.ms(),
        "peers.update",
        None,
        Some(v(json!({"peers": [peer("me", 1)]}))),
    );
    h.input(Input::Frame(&f1));
    let f2 = h.frame_with(
        "srv-1",
        h.now.ms(),
        "peers.update",
        Some("server"),
        Some(v(json!({"peers": [peer("me", 1)]}))),
    );
    h.input(Input::Frame(&f2));
    assert!(matches!(
        h.take_events()[..],
        [ClientEvent::ProtocolError {
            reason: DropReason::ReplayId,
            ..
        }]
    ));
}

#[test]
fn malformed_frames_are_dropped_with_a_reason_and_nothing_else() {
    let mut h = Harness::ready(config("me"));
    let mut c = config("me");
    c.limits.max_message_bytes = 1024;
    let mut small = Harness::ready(c);
    small.input(Input::Frame(&[b' '; 1025]));
    assert!(matches!(
        small.take_events()[..],
        [ClientEvent::ProtocolError {
            reason: DropReason::Oversize,
            ..
        }]
    ));
    for (bytes, reason) in [
        (&b"not json"[..], DropReason::ParseError),
        (&b"{\"v\":1}"[..], DropReason::MissingId),
    ] {
        h.input(Input::Frame(bytes));
        let events = h.take_events();
        assert!(
            matches!(events[..], [ClientEvent::ProtocolError { reason: r, .. }] if r == reason),
            "{events:?}"
        );
    }
    let old = h.frame_with("old", h.now.ms() - 300_001.0, "direct", Some("a"), None);
    h.input(Input::Frame(&old));
    assert!(matches!(
        h.take_events()[..],
        [ClientEvent::ProtocolError {
            reason: DropReason::ReplayWindow,
            ..
        }]
    ));
    assert!(
        h.take_sent().is_empty(),
        "a rejected frame never gets a reply"
    );
    h.ms(1);
    assert_eq!(
        h.conn.health().last_verified_at,
        Some(WALL),
        "nothing new verified"
    );
}

#[test]
fn the_message_firehose_is_opt_in_and_follows_the_ack_work() {
    let mut quiet = Harness::ready(config("me"));
    quiet.hub("something.else", Some("server"), Some(v(json!({"a": 1}))));
    assert!(quiet.take_events().is_empty(), "off by default");

    let mut c = config("me");
    c.message_events = true;
    let mut h = Harness::new(c);
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.take_events();
    h.ack(&["topics"]);
    let events = h.take_events();
    let ready = events
        .iter()
        .position(|e| matches!(e, ClientEvent::Ready { .. }));
    let message = events
        .iter()
        .position(|e| matches!(e, ClientEvent::Message(m) if m.message.msg_type() == "hello.ack"));
    assert!(ready.is_some() && message > ready, "{events:?}");
    h.hub("something.else", Some("server"), Some(v(json!({"a": 1}))));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [ClientEvent::Message(m)] if m.message.msg_type() == "something.else")
    );
}
