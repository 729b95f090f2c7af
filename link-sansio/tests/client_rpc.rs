//! RPC against a fake hub: outbound calls (pending table, timeout, abort, cancel,
//! mismatch, typed outcomes, one `RpcComplete` per call) and inbound requests
//! (handlers, unknown types, overload, sanitised errors, cancellation).

mod client_support;

use std::time::Duration;

use client_support::*;
use link_sansio::client::{
    CancelReason, ClientEvent, HandlerError, InboundRpcId, Input, RpcComplete, RpcError, RpcId,
};
use link_sansio::wire::{DropReason, Value};
use serde_json::json;

fn completions(events: &[ClientEvent]) -> Vec<RpcComplete> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::RpcComplete(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn only_completion(h: &mut Harness, id: RpcId) -> RpcComplete {
    let done = completions(&h.take_events());
    assert_eq!(done.len(), 1, "exactly one RpcComplete: {done:?}");
    assert_eq!(done[0].id, id);
    done[0].clone()
}

/// The request frame the client sent for its last call.
fn last_request(h: &mut Harness) -> Sent {
    h.take_sent()
        .into_iter()
        .rfind(|s| s.msg_type == "rpc.request")
        .expect("an rpc.request was sent")
}

fn respond_frame(h: &mut Harness, id: &str, from: Option<&str>, data: serde_json::Value) {
    let frame = h.frame_with(id, h.now.ms(), "rpc.response", from, Some(v(data)));
    h.input(Input::Frame(&frame));
}

#[test]
fn rpc_before_ready_fails_with_link_not_ready_and_one_completion() {
    let mut h = Harness::new(config("caller"));
    let err = h
        .conn
        .rpc(h.now, "worker", "job.run", None, None)
        .expect_err("not ready");
    assert_eq!(err.code(), "LINK_NOT_READY");
    h.pump();
    let done = completions(&h.take_events());
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].reason(), Some("not-ready"));
    assert!(h.take_sent().is_empty());
}

#[test]
fn rpc_arguments_are_checked_before_anything_else() {
    let mut h = Harness::ready(config("caller"));
    let e = h
        .conn
        .rpc(h.now, "", "x", None, None)
        .expect_err("empty to");
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    let e = h
        .conn
        .rpc(h.now, "w", "", None, None)
        .expect_err("empty type");
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    let e = h
        .conn
        .rpc(h.now, "w", "x", Some(Value::Number(f64::INFINITY)), None)
        .expect_err("not wire-safe");
    assert!(matches!(e, RpcError::NotSerializable(_)));
    h.pump();
    assert!(h.take_events().is_empty() && h.take_sent().is_empty());
}

#[test]
fn rpc_sends_a_request_and_resolves_with_the_result() {
    let mut h = Harness::ready(config("caller"));
    let id = h
        .conn
        .rpc(h.now, "worker", "job.run", Some(v(json!({"n": 1}))), None)
        .expect("sent");
    h.pump();
    let req = last_request(&mut h);
    assert_eq!(req.to(), Some("worker".into()));
    assert_eq!(
        req.data,
        Some(v(json!({"rpcType": "job.run", "rpcData": {"n": 1}})))
    );
    assert_eq!(h.conn.health().pending_rpcs, 1);
    h.ms(40);
    respond_frame(
        &mut h,
        &req.id(),
        Some("worker"),
        json!({"ok": true, "result": [1, 2]}),
    );
    let done = only_completion(&mut h, id);
    assert_eq!(done.outcome, Ok(Some(v(json!([1, 2])))));
    assert_eq!(done.duration, Duration::from_millis(40));
    assert_eq!(
        (done.to.as_str(), done.rpc_type.as_str()),
        ("worker", "job.run")
    );
    assert_eq!(h.conn.health().pending_rpcs, 0);
}

#[test]
fn remote_errors_keep_their_code_and_data() {
    let mut h = Harness::ready(config("caller"));
    let a = h.conn.rpc(h.now, "worker", "x", None, None).expect("sent");
    h.pump();
    let req = last_request(&mut h);
    respond_frame(
        &mut h,
        &req.id(),
        Some("server"),
        json!({"ok": false, "error": "Target not connected: worker", "code": "RPC_NO_TARGET", "data": {"k": 1}}),
    );
    let done = only_completion(&mut h, a);
    assert_eq!(done.reason(), Some("remote-error"));
    let err = done.outcome.expect_err("remote error");
    assert_eq!(err.code(), "RPC_NO_TARGET");
    assert_eq!(err.to_string(), "Target not connected: worker");
    assert_eq!(err.data(), Some(&v(json!({"k": 1}))));
    // A reply with neither code nor message gets the reference's fallbacks.
    let b = h.conn.rpc(h.now, "worker", "x", None, None).expect("sent");
    h.pump();
    let req = last_request(&mut h);
    respond_frame(&mut h, &req.id(), None, json!({"ok": false}));
    let err = only_completion(&mut h, b)
        .outcome
        .expect_err("remote error");
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        ("RPC_REMOTE", "RPC error")
    );
}

#[test]
fn timeout_rejects_sends_a_cancel_and_drops_the_late_response() {
    let mut h = Harness::ready(config("caller"));
    let id = h
        .conn
        .rpc(h.now, "worker", "slow", None, None)
        .expect("sent");
    h.pump();
    let req = last_request(&mut h);
    h.ms(4_999);
    assert!(completions(&h.take_events()).is_empty());
    h.ms(1);
    let done = only_completion(&mut h, id);
    let err = done.outcome.expect_err("timeout");
    assert_eq!(err.code(), "RPC_TIMEOUT");
    assert_eq!(err.to_string(), "RPC timeout after 5000ms: worker:slow");
    let cancels = h.sent_of("rpc.cancel");
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].to(), Some("worker".into()));
    assert_eq!(cancels[0].data, Some(v(json!({"id": req.id()}))));
    assert_ne!(
        cancels[0].id(),
        req.id(),
        "a cancel has a fresh envelope id"
    );
    // The response arrives after all: dropped with an event, no second completion.
    respond_frame(&mut h, &req.id(), Some("worker"), json!({"ok": true}));
    let events = h.take_events();
    assert!(completions(&events).is_empty());
    assert!(events.contains(&ClientEvent::LateResponse {
        id: req.id(),
        from: Some("worker".into())
    }));
}

#[test]
fn per_call_timeout_overrides_and_zero_means_none() {
    let mut h = Harness::ready(config("caller"));
    let short = h
        .conn
        .rpc(h.now, "w", "x", None, Some(Duration::from_millis(100)))
        .expect("sent");
    let never = h
        .conn
        .rpc(h.now, "w", "x", None, Some(Duration::ZERO))
        .expect("sent");
    h.pump();
    h.ms(100);
    assert_eq!(only_completion(&mut h, short).reason(), Some("timeout"));
    h.advance(Duration::from_secs(3600));
    assert!(completions(&h.take_events()).is_empty());
    h.conn.cancel_rpc(h.now, never);
    h.pump();
    assert_eq!(only_completion(&mut h, never).reason(), Some("abort"));
}

#[test]
fn caller_abort_rejects_and_sends_a_cancel_while_ready() {
    let mut h = Harness::ready(config("caller"));
    let id = h.conn.rpc(h.now, "worker", "x", None, None).expect("sent");
    h.pump();
    let req = last_request(&mut h);
    h.conn.cancel_rpc(h.now, id);
    h.pump();
    let err = only_completion(&mut h, id).outcome.expect_err("aborted");
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        ("RPC_ABORT", "RPC aborted: worker:x")
    );
    assert_eq!(
        h.sent_of("rpc.cancel")[0].data,
        Some(v(json!({"id": req.id()})))
    );
    // Aborting again, or after settlement, does nothing.
    h.take_sent();
    h.conn.cancel_rpc(h.now, id);
    h.pump();
    assert!(h.take_events().is_empty() && h.take_sent().is_empty());
}

#[test]
fn disconnect_rejects_everything_pending_and_no_cancel_is_sent() {
    let mut h = Harness::ready(config("caller"));
    let a = h.conn.rpc(h.now, "w", "x", None, None).expect("sent");
    let b = h
        .conn
        .rpc(h.now, "server", "link.health", None, None)
        .expect("sent");
    h.pump();
    h.take_sent();
    h.down(1006, "");
    let done = completions(&h.take_events());
    assert_eq!(done.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a, b]);
    for c in &done {
        let err = c.outcome.clone().expect_err("disconnect");
        assert_eq!(err.code(), "RPC_DISCONNECT");
        assert_eq!(err.to_string(), "Link disconnected before RPC completed");
    }
    assert!(h.take_sent().is_empty(), "no cancel without a ready link");
    // The timeouts of the rejected calls never fire.
    h.reconnect();
    h.ms(10_000);
    assert!(completions(&h.take_events()).is_empty());
}

#[test]
fn queued_requests_and_cancels_never_survive_a_reconnect() {
    let mut c = config("caller");
    c.max_buffered_bytes = 1; // one unflushed frame congests the transport
    let mut h = Harness::ready(c);
    h.auto_flush = false;
    h.conn
        .publish(h.now, "t", Some(v(json!("first"))))
        .expect("sent");
    let id = h.conn.rpc(h.now, "w", "x", None, None).expect("queued");
    h.conn
        .publish(h.now, "t", Some(v(json!("second"))))
        .expect("queued");
    h.conn.cancel_rpc(h.now, id); // removes the queued request; its cancel is queued
    h.pump();
    assert_eq!(h.take_sent().len(), 1);
    assert_eq!(
        h.conn.health().outbox_size,
        2,
        "the second publish and the cancel"
    );
    h.down(1006, "");
    assert_eq!(h.conn.health().outbox_size, 1, "only the publish survives");
    h.auto_flush = true;
    h.reconnect();
    let types: Vec<String> = h.take_sent().iter().map(|s| s.msg_type.clone()).collect();
    assert_eq!(types, vec!["hello", "topic.message"]);
}

#[test]
fn a_response_from_another_peer_is_a_mismatch_and_the_call_stays_pending() {
    let mut h = Harness::ready(config("caller"));
    let id = h.conn.rpc(h.now, "worker", "x", None, None).expect("sent");
    h.pump();
    let req = last_request(&mut h);
    respond_frame(
        &mut h,
        &req.id(),
        Some("intruder"),
        json!({"ok": true, "result": 1}),
    );
    let events = h.take_events();
    assert!(matches!(
        events[..],
        [ClientEvent::ProtocolError {
            reason: DropReason::RpcResponseMismatch,
            ..
        }]
    ));
    assert_eq!(h.conn.health().pending_rpcs, 1);
    respond_frame(
        &mut h,
        &req.id(),
        Some("worker"),
        json!({"ok": true, "result": 2}),
    );
    assert_eq!(only_completion(&mut h, id).outcome, Ok(Some(v(json!(2)))));
}

#[test]
fn hub_made_and_null_from_responses_are_accepted() {
    let mut h = Harness::ready(config("caller"));
    for from in [Some("server"), None] {
        let id = h.conn.rpc(h.now, "worker", "x", None, None).expect("sent");
        h.pump();
        let req = last_request(&mut h);
        respond_frame(&mut h, &req.id(), from, json!({"ok": true}));
        assert_eq!(only_completion(&mut h, id).outcome, Ok(None));
    }
}

#[test]
fn a_full_outbox_refuses_the_call_with_backpressure() {
    let mut c = config("caller");
    c.max_buffered_bytes = 1;
    c.max_outbox_bytes = 300;
    let mut h = Harness::ready(c);
    h.auto_flush = false;
    h.conn
        .publish(h.now, "t", None)
        .expect("sent on the fast path");
    let filler = h.conn.rpc(h.now, "w", "x", None, None).expect("queued");
    let err = h
        .conn
        .rpc(h.now, "w", "x", Some(v(json!("y".repeat(100)))), None)
        .expect_err("full");
    assert_eq!(err.code(), "BACKPRESSURE");
    assert_eq!(
        err.to_string(),
        "RPC dropped: outbound queue full (> 300 bytes): w:x"
    );
    h.pump();
    let events = h.take_events();
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::OutboxOverflow {
            msg_type: "rpc.request",
            ..
        }
    )));
    let done = completions(&events);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].reason(), Some("backpressure"));
    assert_ne!(done[0].id, filler);
    assert_eq!(h.conn.health().pending_rpcs, 1);
}

#[test]
fn stop_rejects_pending_calls_as_stopped() {
    let mut h = Harness::ready(config("caller"));
    let id = h.conn.rpc(h.now, "w", "x", None, None).expect("sent");
    h.conn.stop(h.now, false);
    h.pump();
    let err = only_completion(&mut h, id).outcome.expect_err("stopped");
    assert_eq!(err.code(), "RPC_DISCONNECT");
    assert_eq!(err.to_string(), "Link stopped before RPC completed");
    let e = h
        .conn
        .rpc(h.now, "w", "x", None, None)
        .expect_err("stopped");
    assert_eq!(e.code(), "LINK_NOT_READY");
}

// ---------------------------------------------------------------------------------
// Inbound

fn request_from(h: &mut Harness, id: &str, from: &str, rpc_type: &str, data: serde_json::Value) {
    let frame = h.frame_with(
        id,
        h.now.ms(),
        "rpc.request",
        Some(from),
        Some(v(json!({"rpcType": rpc_type, "rpcData": data}))),
    );
    h.input(Input::Frame(&frame));
}

fn inbound_request(h: &mut Harness) -> InboundRpcId {
    let events = h.take_events();
    match events[..] {
        [ClientEvent::RpcRequest { request, .. }] => request,
        _ => panic!("expected one RpcRequest: {events:?}"),
    }
}

fn responses(h: &mut Harness) -> Vec<Sent> {
    h.take_sent()
        .into_iter()
        .filter(|s| s.msg_type == "rpc.response")
        .collect()
}

fn handler_config() -> link_sansio::client::ClientConfig {
    let mut c = config("worker");
    c.rpc_handlers.insert("job.run".into());
    c
}

#[test]
fn an_inbound_request_reaches_the_application_and_its_answer_goes_back() {
    let mut h = Harness::ready(handler_config());
    request_from(&mut h, "req-1", "caller", "job.run", json!({"n": 2}));
    let events = h.take_events();
    let [
        ClientEvent::RpcRequest {
            request,
            ref from,
            ref rpc_type,
            ref data,
        },
    ] = events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(
        (from.as_deref(), rpc_type.as_str()),
        (Some("caller"), "job.run")
    );
    assert_eq!(data, &Some(v(json!({"n": 2}))));
    assert_eq!(h.conn.health().in_flight_rpc, 1);
    h.conn
        .respond(h.now, request, Ok(Some(v(json!({"done": true})))));
    h.pump();
    let r = responses(&mut h);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].id(), r[0].to()),
        ("req-1".to_owned(), Some("caller".to_owned()))
    );
    assert_eq!(
        r[0].data,
        Some(v(json!({"ok": true, "result": {"done": true}})))
    );
    assert_eq!(h.conn.health().in_flight_rpc, 0);
    // A second answer to the same request goes nowhere.
    h.conn.respond(h.now, request, Ok(None));
    h.pump();
    assert!(responses(&mut h).is_empty());
}

#[test]
fn a_handler_returning_nothing_answers_ok_without_result() {
    let mut h = Harness::ready(handler_config());
    request_from(&mut h, "r", "caller", "job.run", json!(null));
    let request = inbound_request(&mut h);
    h.conn.respond(h.now, request, Ok(None));
    h.pump();
    assert_eq!(responses(&mut h)[0].data, Some(v(json!({"ok": true}))));
}

#[test]
fn unknown_types_are_answered_by_the_connection() {
    let mut h = Harness::ready(handler_config());
    request_from(&mut h, "r1", "caller", "constructor", json!({}));
    let events = h.take_events();
    assert_eq!(
        events,
        vec![ClientEvent::RpcRefused {
            from: Some("caller".into()),
            rpc_type: "constructor".into(),
            code: "RPC_UNKNOWN_TYPE"
        }]
    );
    let r = responses(&mut h);
    assert_eq!(r[0].id(), "r1");
    assert_eq!(
        r[0].data,
        Some(v(
            json!({"ok": false, "code": "RPC_UNKNOWN_TYPE", "error": "Unknown rpcType: constructor"})
        ))
    );
    // Declared at runtime, the type reaches the application; withdrawn, it does not.
    assert!(!h.conn.handle("constructor"));
    request_from(&mut h, "r2", "caller", "constructor", json!({}));
    inbound_request(&mut h);
    assert!(h.conn.unhandle("constructor"));
    request_from(&mut h, "r3", "caller", "constructor", json!({}));
    assert!(matches!(
        h.take_events()[..],
        [ClientEvent::RpcRefused { .. }]
    ));
}

#[test]
fn catch_all_hands_every_type_to_the_application() {
    let mut h = Harness::ready(config("worker"));
    h.conn.set_rpc_catch_all(true);
    request_from(&mut h, "r1", "caller", "anything", json!(1));
    let request = inbound_request(&mut h);
    h.conn.respond(
        h.now,
        request,
        Err(HandlerError::UnknownType("anything".into())),
    );
    h.pump();
    assert_eq!(
        responses(&mut h)[0].data,
        Some(v(
            json!({"ok": false, "code": "RPC_UNKNOWN_TYPE", "error": "Unknown rpcType: anything"})
        ))
    );
}

#[test]
fn max_concurrent_rpc_answers_overloaded() {
    let mut c = handler_config();
    c.max_concurrent_rpc = 2;
    let mut h = Harness::ready(c);
    request_from(&mut h, "a", "caller", "job.run", json!(1));
    let first = inbound_request(&mut h);
    request_from(&mut h, "b", "caller", "job.run", json!(1));
    inbound_request(&mut h);
    request_from(&mut h, "c", "caller", "job.run", json!(1));
    assert!(matches!(
        h.take_events()[..],
        [ClientEvent::RpcRefused {
            code: "RPC_OVERLOADED",
            ..
        }]
    ));
    let r = responses(&mut h);
    assert_eq!(r[0].id(), "c");
    assert_eq!(
        r[0].data,
        Some(v(
            json!({"ok": false, "code": "RPC_OVERLOADED", "error": "Handler overloaded - too many concurrent RPCs"})
        ))
    );
    h.conn.respond(h.now, first, Ok(None));
    request_from(&mut h, "d", "caller", "job.run", json!(1));
    inbound_request(&mut h);
}

#[test]
fn handler_errors_are_sanitised_unless_exposed() {
    let mut h = Harness::ready(handler_config());
    let answer = |h: &mut Harness, id: &str, err: HandlerError| {
        request_from(h, id, "caller", "job.run", json!(null));
        let request = inbound_request(h);
        h.conn.respond(h.now, request, Err(err));
        h.pump();
        (responses(h)[0].data.clone(), h.take_events())
    };
    let (data, events) = answer(
        &mut h,
        "a",
        HandlerError::internal("db password is hunter2"),
    );
    assert_eq!(
        data,
        Some(v(
            json!({"ok": false, "code": "RPC_HANDLER_ERROR", "error": "Internal handler error"})
        ))
    );
    assert_eq!(
        events,
        vec![ClientEvent::RpcHandlerError {
            from: Some("caller".into()),
            rpc_type: "job.run".into(),
            message: "db password is hunter2".into()
        }]
    );
    let exposed =
        HandlerError::exposed("E_QUOTA", "quota exceeded").with_data(v(json!({"left": 0})));
    let (data, events) = answer(&mut h, "b", exposed);
    assert_eq!(
        data,
        Some(v(
            json!({"ok": false, "code": "E_QUOTA", "error": "quota exceeded", "data": {"left": 0}})
        ))
    );
    assert!(events.is_empty());
    let (data, _) = answer(&mut h, "c", HandlerError::Panicked);
    assert_eq!(
        data.as_ref().and_then(|d| d.get("error")),
        Some(&v(json!("Internal handler error")))
    );

    let mut c = handler_config();
    c.expose_rpc_errors = true;
    let mut h = Harness::ready(c);
    let (data, _) = answer(&mut h, "d", HandlerError::internal("db down"));
    assert_eq!(
        data,
        Some(v(
            json!({"ok": false, "code": "RPC_HANDLER_ERROR", "error": "db down"})
        ))
    );
}

#[test]
fn results_that_are_not_wire_safe_become_not_serializable() {
    let mut h = Harness::ready(handler_config());
    request_from(&mut h, "a", "caller", "job.run", json!(null));
    let request = inbound_request(&mut h);
    h.conn
        .respond(h.now, request, Ok(Some(Value::Number(f64::NAN))));
    h.pump();
    assert_eq!(
        responses(&mut h)[0].data,
        Some(v(
            json!({"ok": false, "code": "RPC_RESULT_NOT_SERIALIZABLE", "error": "RPC handler returned a non-serializable result"})
        ))
    );
}

#[test]
fn a_cancel_from_the_caller_reaches_the_handler_and_suppresses_its_answer() {
    let mut h = Harness::ready(handler_config());
    request_from(&mut h, "req-9", "caller", "job.run", json!(null));
    let request = inbound_request(&mut h);
    // Another peer cannot cancel it.
    h.hub(
        "rpc.cancel",
        Some("mallory"),
        Some(v(json!({"id": "req-9"}))),
    );
    assert!(h.take_events().is_empty());
    h.hub(
        "rpc.cancel",
        Some("caller"),
        Some(v(json!({"id": "req-9"}))),
    );
    assert_eq!(
        h.take_events(),
        vec![ClientEvent::RpcCancelled {
            request,
            from: Some("caller".into()),
            rpc_type: "job.run".into(),
            reason: CancelReason::Caller
        }]
    );
    assert_eq!(
        h.conn.health().in_flight_rpc,
        1,
        "still running until it answers"
    );
    h.conn.respond(h.now, request, Ok(Some(v(json!("late")))));
    h.pump();
    assert!(
        responses(&mut h).is_empty(),
        "the cancelled handler's answer is suppressed"
    );
    assert_eq!(h.conn.health().in_flight_rpc, 0);
}

#[test]
fn a_disconnect_aborts_inbound_handlers() {
    let mut h = Harness::ready(handler_config());
    request_from(&mut h, "req-1", "caller", "job.run", json!(null));
    let request = inbound_request(&mut h);
    h.down(1006, "");
    assert!(h.take_events().contains(&ClientEvent::RpcCancelled {
        request,
        from: Some("caller".into()),
        rpc_type: "job.run".into(),
        reason: CancelReason::Disconnected
    }));
    h.reconnect();
    h.take_sent();
    h.conn.respond(h.now, request, Ok(None));
    h.pump();
    assert!(
        responses(&mut h).is_empty(),
        "no answer on a connection that did not ask"
    );
}

#[test]
fn an_unrepresentably_long_timeout_never_fires_and_never_panics() {
    let mut h = Harness::ready(config("caller"));
    let id = h
        .conn
        .rpc(h.now, "w", "x", None, Some(Duration::MAX))
        .expect("sent");
    h.advance(Duration::from_secs(3600));
    let events = h.take_events();
    assert!(completions(&events).is_empty(), "{events:?}");
    assert_eq!(h.conn.health().pending_rpcs, 1);
    h.conn.cancel_rpc(h.now, id);
    h.pump();
    assert_eq!(only_completion(&mut h, id).reason(), Some("abort"));
}
