//! The outbox and stop against a fake hub: congestion, drain, overflow, conflation,
//! graceful and immediate stop.

mod client_support;

use std::time::Duration;

use client_support::*;
use link_sansio::client::{ClientEvent, DisconnectInfo, Input, RpcError};
use serde_json::json;

fn congested(max_outbox_bytes: usize) -> Harness {
    let mut c = config("pub");
    c.max_buffered_bytes = 1_000;
    c.max_outbox_bytes = max_outbox_bytes;
    let mut h = Harness::ready(c);
    h.auto_flush = false;
    h
}

#[test]
fn a_congested_transport_queues_and_flushed_bytes_drain_it() {
    let mut h = congested(1 << 20);
    let big = "x".repeat(1_500);
    h.conn
        .publish(h.now, "t", Some(v(json!(big))))
        .expect("fast path");
    h.conn
        .publish(h.now, "t", Some(v(json!(1))))
        .expect("queued");
    h.conn
        .publish(h.now, "t", Some(v(json!(2))))
        .expect("queued");
    h.pump();
    assert_eq!(h.take_sent().len(), 1);
    let events = h.take_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Backpressure { .. }))
            .count(),
        1,
        "one backpressure event when congestion starts: {events:?}"
    );
    let health = h.conn.health();
    assert_eq!(health.outbox_size, 2);
    assert!(health.buffered_bytes > 1_000);
    // The drain retry keeps waiting while nothing is flushed.
    h.ms(100);
    assert!(h.take_sent().is_empty());
    h.input(Input::Flushed(health.buffered_bytes));
    let sent = h.take_sent();
    assert_eq!(
        sent.iter()
            .map(|s| s.field("payload").cloned())
            .collect::<Vec<_>>(),
        vec![Some(v(json!(1))), Some(v(json!(2)))]
    );
    assert!(h.take_events().contains(&ClientEvent::OutboxDrained));
    assert_eq!(
        (h.conn.health().outbox_size, h.conn.health().outbox_bytes),
        (0, 0)
    );
}

#[test]
fn the_drain_retries_every_25ms_while_congested() {
    let mut h = congested(1 << 20);
    h.conn
        .publish(h.now, "t", Some(v(json!("x".repeat(1_500)))))
        .expect("fast path");
    h.conn
        .publish(h.now, "t", Some(v(json!(1))))
        .expect("queued");
    h.pump();
    h.take_sent();
    let retry = h.now.instant + Duration::from_millis(25);
    assert_eq!(h.deadline, Some(retry), "a paused drain retries in 25 ms");
    h.ms(25);
    assert!(h.take_sent().is_empty(), "still congested");
    assert_eq!(
        h.deadline,
        Some(retry + Duration::from_millis(25)),
        "and again"
    );
    assert_eq!(h.conn.health().outbox_size, 1);
}

#[test]
fn overflow_refuses_with_an_event_and_status_updates_conflate() {
    let mut h = congested(700);
    h.conn
        .publish(h.now, "t", Some(v(json!("x".repeat(1_500)))))
        .expect("fast path");
    h.conn
        .publish(h.now, "t", Some(v(json!(1))))
        .expect("queued");
    h.conn
        .push_status(h.now, Some(v(json!("a"))))
        .expect("queued");
    let err = h
        .conn
        .publish(h.now, "t", Some(v(json!("y".repeat(300)))))
        .expect_err("over the cap");
    assert_eq!(err.code(), "OUTBOX_OVERFLOW");
    h.pump();
    assert!(h.take_events().iter().any(|e| matches!(
        e,
        ClientEvent::OutboxOverflow {
            msg_type: "topic.message",
            max_outbox_bytes: 700,
            ..
        }
    )));
    // A newer status replaces the queued one instead of adding to the queue.
    h.conn
        .push_status(h.now, Some(v(json!("b"))))
        .expect("conflated");
    assert_eq!(h.conn.health().outbox_size, 2);
    h.input(Input::Flushed(h.conn.health().buffered_bytes));
    let statuses: Vec<_> = h
        .sent_of("status.update")
        .into_iter()
        .map(|s| s.data)
        .collect();
    assert_eq!(statuses, vec![Some(v(json!("b")))]);
}

#[test]
fn the_outbox_survives_a_reconnect_and_flushes_after_the_ack() {
    let mut h = Harness::ready(config("pub"));
    h.down(1006, "");
    h.conn
        .publish(h.now, "t", Some(v(json!(1))))
        .expect("queued while down");
    h.conn
        .send(h.now, "w", "x", None)
        .expect("queued while down");
    assert_eq!(h.conn.health().outbox_size, 2);
    h.take_sent();
    h.reconnect();
    let types: Vec<String> = h.take_sent().iter().map(|s| s.msg_type.clone()).collect();
    assert_eq!(types, vec!["hello", "topic.message", "direct"]);
}

#[test]
fn immediate_stop_clears_everything_and_refuses_further_traffic() {
    let mut h = congested(1 << 20);
    h.conn
        .publish(h.now, "t", Some(v(json!("x".repeat(1_500)))))
        .expect("fast path");
    h.conn
        .publish(h.now, "t", Some(v(json!(1))))
        .expect("queued");
    h.conn.stop(h.now, false);
    h.pump();
    assert_eq!(h.take_actions(), vec![Action::Close(1005, String::new())]);
    let events = h.take_events();
    assert!(events.contains(&ClientEvent::Disconnected(DisconnectInfo {
        code: None,
        reason: "stopped".into(),
        will_reconnect: false,
        was_ready: true,
        displaced: false
    })));
    assert_eq!(events.last(), Some(&ClientEvent::Stopped));
    let health = h.conn.health();
    assert!(health.stopped && !health.connected && !health.ready);
    assert_eq!(health.outbox_size, 0);
    let err = h.conn.publish(h.now, "t", None).expect_err("stopped");
    assert_eq!(err.code(), "LINK_NOT_READY");
    assert!(h.conn.send(h.now, "w", "x", None).is_err());
    h.ms(60_000);
    assert!(h.take_actions().is_empty(), "no reconnect after stop");
    // start() runs it again.
    h.conn.start(h.now);
    h.pump();
    assert_eq!(h.take_actions(), vec![Action::Connect(URL.into())]);
}

#[test]
fn graceful_stop_flushes_the_outbox_and_waits_for_pending_calls() {
    let mut h = congested(1 << 20);
    h.conn
        .publish(h.now, "t", Some(v(json!("x".repeat(1_500)))))
        .expect("fast path");
    h.conn
        .publish(h.now, "t", Some(v(json!("queued"))))
        .expect("queued");
    let id = h
        .conn
        .rpc(h.now, "w", "x", None, Some(Duration::ZERO))
        .expect("queued");
    h.conn.stop(h.now, true);
    h.pump();
    h.take_sent();
    assert!(h.take_actions().is_empty(), "still draining");
    assert!(h.conn.health().stopped);
    h.auto_flush = true;
    h.input(Input::Flushed(h.conn.health().buffered_bytes));
    let sent = h.take_sent();
    assert_eq!(
        sent.iter().map(|s| s.msg_type.as_str()).collect::<Vec<_>>(),
        vec!["topic.message", "rpc.request"]
    );
    assert!(h.take_actions().is_empty(), "the call is still pending");
    h.ms(1_000);
    let req = sent[1].id();
    let resp = h.frame_with(
        &req,
        h.now.ms(),
        "rpc.response",
        Some("w"),
        Some(v(json!({"ok": true, "result": 5}))),
    );
    h.input(Input::Frame(&resp));
    let events = h.take_events();
    assert!(events.iter().any(|e| matches!(e, ClientEvent::RpcComplete(c) if c.id == id && c.outcome == Ok(Some(v(json!(5)))))));
    assert_eq!(events.last(), Some(&ClientEvent::Stopped));
    assert_eq!(h.take_actions(), vec![Action::Close(1005, String::new())]);
}

#[test]
fn graceful_stop_gives_up_after_stop_drain() {
    let mut h = Harness::ready(config("pub"));
    let id = h
        .conn
        .rpc(h.now, "w", "x", None, Some(Duration::ZERO))
        .expect("sent");
    h.conn.stop(h.now, true);
    h.pump();
    assert!(h.take_actions().is_empty());
    h.ms(4_975);
    assert!(h.take_actions().is_empty());
    h.ms(25);
    assert_eq!(h.take_actions(), vec![Action::Close(1005, String::new())]);
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::RpcComplete(c)
        if c.id == id && matches!(c.outcome, Err(RpcError::Disconnect { stopped: true, .. }))))
    );
}

#[test]
fn an_immediate_stop_cuts_a_graceful_one_short() {
    let mut h = Harness::ready(config("pub"));
    h.conn.rpc(h.now, "w", "x", None, None).expect("sent");
    h.conn.stop(h.now, true);
    h.pump();
    assert!(h.take_actions().is_empty());
    h.conn.stop(h.now, false);
    h.pump();
    assert_eq!(h.take_actions(), vec![Action::Close(1005, String::new())]);
    assert_eq!(h.take_events().last(), Some(&ClientEvent::Stopped));
}

#[test]
fn stop_with_nothing_in_flight_closes_at_once() {
    let mut h = Harness::ready(config("pub"));
    h.conn.stop(h.now, true);
    h.pump();
    assert_eq!(h.take_actions(), vec![Action::Close(1005, String::new())]);
    h.take_events();
    h.conn.stop(h.now, true);
    h.pump();
    assert!(
        h.take_events().is_empty() && h.take_actions().is_empty(),
        "stopping twice is a no-op"
    );
}

#[test]
fn start_during_a_graceful_stop_reconnects_once_the_drain_ends() {
    let mut h = Harness::ready(config("pub"));
    let id = h
        .conn
        .rpc(h.now, "w", "x", None, Some(Duration::ZERO))
        .expect("sent");
    h.conn.stop(h.now, true);
    h.conn.start(h.now);
    h.pump();
    assert!(h.take_actions().is_empty(), "still draining the call");
    h.ms(5_000);
    assert_eq!(
        h.take_actions(),
        vec![
            Action::Close(1005, String::new()),
            Action::Connect(URL.into())
        ]
    );
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::RpcComplete(c) if c.id == id))
    );
    assert!(!h.conn.health().stopped);
    h.input(Input::TransportUp);
    h.ack(&["topics", "direct"]);
    assert!(h.conn.is_ready());
}

#[test]
fn graceful_stop_before_the_ack_closes_without_pipelining_the_outbox() {
    let mut h = Harness::new(config("pub"));
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.conn
        .send(h.now, "w", "note", Some(v(json!(1))))
        .expect("queued while not ready");
    h.pump();
    assert_eq!(
        h.take_sent()
            .iter()
            .map(|s| s.msg_type.as_str())
            .collect::<Vec<_>>(),
        ["hello"]
    );
    h.conn.stop(h.now, true);
    h.pump();
    assert!(
        h.take_sent().is_empty(),
        "nothing may follow an unacknowledged hello"
    );
    assert_eq!(h.take_actions(), vec![Action::Close(1005, String::new())]);
    assert!(h.take_events().contains(&ClientEvent::Stopped));
}
