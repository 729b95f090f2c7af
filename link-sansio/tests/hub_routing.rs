//! Routing stories: RPC forwarding and every hub-made error, server RPCs and the
//! built-ins, responses, cancels, direct, topics and statuses.

mod hub_harness;

use hub_harness::{Hub, c};
use link_sansio::hub::{HubEvent, Input, Output, ServerCall, ServerReply};
use link_sansio::wire::{JsString, Value};
use serde_json::json;

fn pair() -> Hub {
    let mut h = Hub::shared();
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.take();
    h
}

fn server_calls(h: &mut Hub) -> Vec<ServerCall> {
    h.take()
        .into_iter()
        .filter_map(|o| match o {
            Output::ServerRpc(call) => Some(call),
            _ => None,
        })
        .collect()
}

/// The single `rpc.response` sent to `conn`: `(id, from, data)`.
fn response(h: &mut Hub, conn: u64) -> (String, String, serde_json::Value) {
    let frames = h.frames(conn);
    assert_eq!(frames.len(), 1, "one frame to {conn}: {frames:?}");
    let f = &frames[0];
    assert_eq!(f["type"], "rpc.response");
    (
        f["id"].as_str().unwrap_or("").to_owned(),
        f["from"].as_str().unwrap_or("").to_owned(),
        f["data"].clone(),
    )
}

#[test]
fn an_rpc_request_is_forwarded_with_the_callers_id_and_authenticated_kind() {
    let mut h = pair();
    let key = h.keys[&c(1)].clone();
    let text = h.sign(
        &key,
        "req-1",
        "rpc.request",
        Some("mallory"),
        Some("beta"),
        Some(json!({"rpcType": "add", "rpcData": {"a": 1}, "extra": true})),
    );
    h.raw(1, &text);
    let got = h.frames(2);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], "req-1");
    assert_eq!(got[0]["from"], "alpha");
    assert_eq!(got[0]["to"], "beta");
    assert_eq!(
        got[0]["data"],
        json!({"rpcType": "add", "rpcData": {"a": 1}})
    );
    assert!(h.events().iter().any(
        |e| matches!(e, HubEvent::RpcForwarded { id, from, to, rpc_type }
        if *id == "req-1" && from == "alpha" && to == "beta" && rpc_type == "add")
    ));
    assert!(h.frames(1).is_empty());
}

#[test]
fn an_rpc_to_an_absent_kind_gets_rpc_no_target_from_server() {
    let mut h = pair();
    let id = h.send(
        1,
        "rpc.request",
        Some("gamma"),
        Some(json!({"rpcType": "x"})),
    );
    let (rid, from, data) = response(&mut h, 1);
    assert_eq!((rid.as_str(), from.as_str()), (id.as_str(), "server"));
    assert_eq!(
        data,
        json!({"ok": false, "error": "Target not connected: gamma", "code": "RPC_NO_TARGET"})
    );
}

#[test]
fn an_rpc_without_to_gets_rpc_bad_request() {
    let mut h = pair();
    h.send(1, "rpc.request", None, Some(json!({"rpcType": "x"})));
    let (_, _, data) = response(&mut h, 1);
    assert_eq!(
        data,
        json!({"ok": false, "error": "rpc.request missing \"to\"", "code": "RPC_BAD_REQUEST"})
    );
}

/// The reference reads `to` as `msg.to ? String(msg.to) : null`: a falsy `to` is
/// missing, and any other value is a kind by its `String()`.
#[test]
fn a_falsy_to_is_missing_and_any_other_is_coerced_with_string() {
    let mut h = pair();
    let key = h.keys[&c(1)].clone();
    let cases = [
        (json!(false), "rpc.request missing \"to\""),
        (json!(0), "rpc.request missing \"to\""),
        (json!(""), "rpc.request missing \"to\""),
        (json!([]), "rpc.request missing \"to\""),
        (json!(true), "Target not connected: true"),
        (json!(1.5), "Target not connected: 1.5"),
        (json!(["a", null, 2]), "Target not connected: a,,2"),
        (json!({"k": 1}), "Target not connected: [object Object]"),
    ];
    for (n, (to, want)) in cases.into_iter().enumerate() {
        let unsigned = json!({
            "v": 1, "id": format!("falsy-{n}"), "ts": h.now.ms(), "from": "alpha",
            "to": to, "type": "rpc.request", "data": {"rpcType": "x"},
        });
        let parsed = link_sansio::wire::json::parse(unsigned.to_string().as_bytes()).expect("json");
        let mut canonical = Vec::new();
        link_sansio::wire::json::write_canonical(&parsed, &mut canonical);
        let mut signed = unsigned;
        signed["sig"] = json!(key.sign_hex(&canonical));
        h.raw(1, &signed.to_string());
        let (_, _, data) = response(&mut h, 1);
        assert_eq!(data["error"], want, "to: {}", signed["to"]);
    }
}

#[test]
fn an_unknown_server_rpc_type_gets_rpc_unknown_type_even_for_prototype_names() {
    let mut h = pair();
    for t in ["no.such", "constructor", "__proto__"] {
        h.send(
            1,
            "rpc.request",
            Some("server"),
            Some(json!({"rpcType": t})),
        );
        let (_, from, data) = response(&mut h, 1);
        assert_eq!(from, "server");
        assert_eq!(
            data,
            json!({"ok": false, "error": format!("Unknown server rpcType: {t}"), "code": "RPC_UNKNOWN_TYPE"})
        );
    }
}

#[test]
fn a_server_rpc_goes_to_the_application_and_its_result_back_to_the_caller() {
    let mut h = pair();
    h.hub.register_server_rpc("ping");
    let id = h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "ping", "rpcData": {"n": 1}})),
    );
    let calls = server_calls(&mut h);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].from, "alpha");
    assert_eq!(calls[0].rpc_type, "ping");
    assert_eq!(calls[0].request_id, JsString::from(id.as_str()));
    assert_eq!(calls[0].data, Value::from_serde(&json!({"n": 1})).ok());
    assert_eq!(h.hub.health().server_rpc_in_flight, 1);
    h.advance(std::time::Duration::from_millis(40));
    h.take();
    h.input(Input::ServerRpcDone {
        call: calls[0].call,
        reply: ServerReply::Ok(Some(
            Value::from_serde(&json!({"pong": true})).expect("json"),
        )),
    });
    let (rid, from, data) = response(&mut h, 1);
    assert_eq!((rid, from), (id, "server".to_owned()));
    assert_eq!(data, json!({"ok": true, "result": {"pong": true}}));
    assert!(h.events().iter().any(
        |e| matches!(e, HubEvent::RpcServer { ok: true, rpc_type, duration, error: None, .. }
        if rpc_type == "ping" && duration.as_millis() == 40)
    ));
    assert_eq!(h.hub.health().server_rpc_in_flight, 0);
    // A handler that returns nothing yields `{ok: true}` without `result`.
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "ping"})),
    );
    let call = server_calls(&mut h)[0].call;
    h.input(Input::ServerRpcDone {
        call,
        reply: ServerReply::Ok(None),
    });
    assert_eq!(response(&mut h, 1).2, json!({"ok": true}));
}

#[test]
fn server_handler_errors_are_sanitised_unless_exposed() {
    let mut h = pair();
    h.hub.set_server_rpc_catch_all(true);
    let cases = [
        (
            ServerReply::Err {
                code: Some("E_X".into()),
                message: "secret detail".into(),
                data: None,
                expose: false,
            },
            json!({"ok": false, "error": "Internal handler error", "code": "RPC_HANDLER_ERROR"}),
        ),
        (
            ServerReply::Err {
                code: Some("ORDER_NOT_FOUND".into()),
                message: "order not found".into(),
                data: Some(Value::from_serde(&json!({"orderId": 42})).expect("json")),
                expose: true,
            },
            json!({"ok": false, "error": "order not found", "code": "ORDER_NOT_FOUND", "data": {"orderId": 42}}),
        ),
        (
            ServerReply::Err {
                code: None,
                message: "m".into(),
                data: Some(Value::Number(f64::NAN)),
                expose: true,
            },
            json!({"ok": false, "error": "m", "code": "RPC_HANDLER_ERROR"}),
        ),
        (
            ServerReply::NotSerializable,
            json!({"ok": false, "error": "RPC handler returned a non-serializable result", "code": "RPC_RESULT_NOT_SERIALIZABLE"}),
        ),
        (
            ServerReply::Ok(Some(Value::Array(vec![Value::Number(f64::INFINITY)]))),
            json!({"ok": false, "error": "RPC handler returned a non-serializable result", "code": "RPC_RESULT_NOT_SERIALIZABLE"}),
        ),
        (
            ServerReply::Panicked,
            json!({"ok": false, "error": "Internal handler error", "code": "RPC_HANDLER_ERROR"}),
        ),
    ];
    for (reply, expected) in cases {
        h.send(
            1,
            "rpc.request",
            Some("server"),
            Some(json!({"rpcType": "any"})),
        );
        let call = server_calls(&mut h)[0].call;
        h.input(Input::ServerRpcDone { call, reply });
        assert_eq!(response(&mut h, 1).2, expected);
        let events = h.events();
        assert!(events.iter().any(|e| matches!(
            e,
            HubEvent::RpcServer {
                ok: false,
                error: Some(_),
                ..
            }
        )));
    }
}

#[test]
fn expose_rpc_errors_shows_plain_handler_messages() {
    let mut h = Hub::config(|c| c.expose_rpc_errors = true);
    h.connect(1, "alpha");
    h.hub.register_server_rpc("f");
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "f"})),
    );
    let call = server_calls(&mut h)[0].call;
    h.input(Input::ServerRpcDone {
        call,
        reply: ServerReply::Err {
            code: None,
            message: "boom".into(),
            data: None,
            expose: false,
        },
    });
    assert_eq!(
        response(&mut h, 1).2,
        json!({"ok": false, "error": "boom", "code": "RPC_HANDLER_ERROR"})
    );
}

#[test]
fn server_rpcs_beyond_max_concurrent_get_rpc_overloaded_after_the_unknown_type_check() {
    let mut h = Hub::config(|c| c.max_concurrent_rpc = 1);
    h.connect(1, "alpha");
    h.hub.register_server_rpc("slow");
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "slow"})),
    );
    assert_eq!(server_calls(&mut h).len(), 1);
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "slow"})),
    );
    assert_eq!(
        response(&mut h, 1).2,
        json!({"ok": false, "error": "Server overloaded - too many concurrent RPCs", "code": "RPC_OVERLOADED"})
    );
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "nope"})),
    );
    assert_eq!(response(&mut h, 1).2["code"], "RPC_UNKNOWN_TYPE");
}

#[test]
fn link_topic_list_lists_one_or_all_topics_and_fails_on_null() {
    let mut h = pair();
    h.send(
        2,
        "topic.subscribe",
        None,
        Some(json!({"topic": "jobs.queue"})),
    );
    h.send(
        1,
        "topic.subscribe",
        None,
        Some(json!({"topic": "jobs.queue"})),
    );
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "news"})));
    h.take();
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.topic.list", "rpcData": {}})),
    );
    assert_eq!(
        response(&mut h, 1).2,
        json!({"ok": true, "result": {"topics": [
            {"topic": "jobs.queue", "subscribers": ["beta", "alpha"]},
            {"topic": "news", "subscribers": ["beta"]}
        ]}})
    );
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.topic.list", "rpcData": {"topic": "news"}})),
    );
    assert_eq!(
        response(&mut h, 1).2,
        json!({"ok": true, "result": {"topic": "news", "subscribers": ["beta"]}})
    );
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.topic.list", "rpcData": {"topic": "none"}})),
    );
    assert_eq!(
        response(&mut h, 1).2,
        json!({"ok": true, "result": {"topic": "none", "subscribers": []}})
    );
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.topic.list"})),
    );
    assert_eq!(
        response(&mut h, 1).2["result"]["topics"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.topic.list", "rpcData": null})),
    );
    assert_eq!(
        response(&mut h, 1).2,
        json!({"ok": false, "error": "Internal handler error", "code": "RPC_HANDLER_ERROR"})
    );
}

#[test]
fn link_health_reports_the_reference_fields_counting_itself() {
    let mut h = pair();
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "t"})));
    h.send(2, "status.update", None, Some(json!(1)));
    h.take();
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.health"})),
    );
    let (_, _, data) = response(&mut h, 1);
    assert_eq!(
        data,
        json!({"ok": true, "result": {
            "outboxBytes": 0, "queuedSockets": 0, "totalSubscribers": 1, "serverRpcInFlight": 1,
            "peerCount": 2, "statusCount": 1, "topicCount": 1, "pendingSocketCount": 0, "recentIdsSize": 5
        }})
    );
}

#[test]
fn an_application_handler_overrides_a_built_in() {
    let mut h = pair();
    h.hub.register_server_rpc("link.health");
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.health"})),
    );
    assert_eq!(server_calls(&mut h).len(), 1);
    h.hub.unregister_server_rpc("link.health");
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.health"})),
    );
    assert_eq!(response(&mut h, 1).2["ok"], true);
}

#[test]
fn an_rpc_response_is_forwarded_verbatim_to_its_to() {
    let mut h = pair();
    let data = json!({"ok": false, "error": "order not found", "code": "ORDER_NOT_FOUND", "data": {"orderId": 42}});
    h.send_id(
        2,
        "req-9",
        "rpc.response",
        Some("alpha"),
        Some(data.clone()),
    );
    let (id, from, got) = response(&mut h, 1);
    assert_eq!((id.as_str(), from.as_str()), ("req-9", "beta"));
    assert_eq!(got, data);
    assert!(h.events().iter().any(|e| matches!(e, HubEvent::RpcResponseForwarded { ok: false, from, to, .. } if from == "beta" && to == "alpha")));
    // No `to`, or an offline `to`: dropped without a word.
    h.send(2, "rpc.response", None, Some(json!({"ok": true})));
    h.send(2, "rpc.response", Some("gamma"), Some(json!({"ok": true})));
    assert!(
        h.take()
            .iter()
            .all(|o| matches!(o, Output::Event(HubEvent::Message { .. })))
    );
}

#[test]
fn rpc_cancel_removes_a_queued_request_or_is_forwarded() {
    let mut h = Hub::config(|c| c.max_buffered_bytes = 10);
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.connect(3, "gamma");
    h.flush_all();
    h.take();
    // beta's transport backlog is over the cap: the next request waits in its outbox.
    h.send(
        1,
        "direct",
        Some("beta"),
        Some(json!({"directType": "fill"})),
    );
    let req = h.send(
        1,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "slow"})),
    );
    assert_eq!(h.frames(2).len(), 1);
    // Only the originator may remove it.
    h.send(3, "rpc.cancel", Some("beta"), Some(json!({"id": req})));
    let events = h.events();
    assert!(events.iter().any(|e| matches!(e, HubEvent::RpcCancelled { found: false, forwarded: true, from, .. } if from == "gamma")));
    h.send(1, "rpc.cancel", Some("beta"), Some(json!({"id": req})));
    assert!(h.events().iter().any(
        |e| matches!(e, HubEvent::RpcCancelled { found: true, forwarded: false, id, from, to }
        if *id == req.as_str() && from == "alpha" && to == "beta")
    ));
    // Drain beta: the cancel from gamma is left, the request is gone.
    h.flush(2);
    let frames = h.frames(2);
    let types: Vec<&str> = frames
        .iter()
        .map(|f| f["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["rpc.cancel"]);
    assert_eq!(frames[0]["from"], "gamma");
    assert_eq!(frames[0]["data"], json!({"id": req}));
    assert_ne!(frames[0]["id"], json!(req));
}

#[test]
fn rpc_cancel_to_server_or_without_id_is_ignored() {
    let mut h = pair();
    h.send(1, "rpc.cancel", Some("server"), Some(json!({"id": "x"})));
    h.send(1, "rpc.cancel", Some("beta"), Some(json!({"id": ""})));
    h.send(1, "rpc.cancel", None, Some(json!({"id": "x"})));
    let events = h.events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, HubEvent::RpcCancelled { .. }))
    );
    assert!(h.frames(2).is_empty());
    h.send(1, "rpc.cancel", Some("beta"), Some(json!({"id": "x"})));
    let f = h.frames(2);
    assert_eq!(f[0]["type"], "rpc.cancel");
    assert_eq!(f[0]["from"], "alpha");
}

#[test]
fn a_forward_the_target_cannot_take_gets_rpc_target_unavailable() {
    let mut h = Hub::config(|c| {
        c.max_buffered_bytes = 10;
        c.max_outbox_bytes = 300;
    });
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.flush_all();
    h.take();
    h.send(
        1,
        "direct",
        Some("beta"),
        Some(json!({"directType": "fill"})),
    );
    h.send(
        1,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "a"})),
    );
    h.send(
        1,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "b", "rpcData": "x".repeat(200)})),
    );
    h.flush(1);
    assert_eq!(
        response(&mut h, 1).2,
        json!({"ok": false, "error": "Target backpressured or send failed: beta", "code": "RPC_TARGET_UNAVAILABLE"})
    );
    let events = h.events();
    assert!(events.iter().any(|e| matches!(e, HubEvent::OutboxOverflow { kind, msg_type, max_outbox_bytes: 300, .. } if kind == "beta" && msg_type == "rpc.request")));
}

#[test]
fn direct_is_forwarded_with_a_fresh_id_or_dropped_silently() {
    let mut h = pair();
    let id = h.send(
        1,
        "direct",
        Some("beta"),
        Some(json!({"directType": "greet", "directData": {"msg": "hi"}, "x": 1})),
    );
    let f = h.frames(2);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["from"], "alpha");
    assert_eq!(f[0]["to"], "beta");
    assert_ne!(f[0]["id"], json!(id));
    assert_eq!(
        f[0]["data"],
        json!({"directType": "greet", "directData": {"msg": "hi"}})
    );
    assert!(
        h.events()
            .iter()
            .any(|e| matches!(e, HubEvent::Direct { direct_type, .. } if direct_type == "greet"))
    );
    h.send(
        1,
        "direct",
        Some("gamma"),
        Some(json!({"directType": "greet"})),
    );
    h.send(1, "direct", Some("beta"), Some(json!({"directType": ""})));
    h.send(1, "direct", None, Some(json!({"directType": "greet"})));
    assert!(h.frames(2).is_empty());
    assert!(h.frames(1).is_empty());
    assert!(Hub::drops(&h.events()).is_empty());
}

/// With the per-frame events off (as an adapter sets them while nobody listens),
/// every message is routed exactly as before and only those events are missing.
#[test]
fn frame_events_off_leave_routing_alone() {
    let traffic = |h: &mut Hub| {
        h.send(2, "topic.subscribe", None, Some(json!({"topic": "t"})));
        h.send(
            1,
            "direct",
            Some("beta"),
            Some(json!({"directType": "greet", "directData": 1})),
        );
        let request = h.send(
            1,
            "rpc.request",
            Some("beta"),
            Some(json!({"rpcType": "x"})),
        );
        h.send_id(
            2,
            &request,
            "rpc.response",
            Some("alpha"),
            Some(json!({"ok": true})),
        );
        h.send(
            1,
            "topic.message",
            None,
            Some(json!({"topic": "t", "payload": 2})),
        );
        h.send(1, "status.update", None, Some(json!("busy")));
        let mut frames = h.frames(1);
        frames.extend(h.frames(2));
        let shape: Vec<_> = frames
            .iter()
            .map(|f| (f["type"].clone(), f["from"].clone(), f["data"].clone()))
            .collect();
        (shape, h.events())
    };
    let per_frame = |e: &HubEvent| {
        matches!(
            e,
            HubEvent::Direct { .. }
                | HubEvent::TopicPublish { .. }
                | HubEvent::RpcForwarded { .. }
                | HubEvent::RpcResponseForwarded { .. }
                | HubEvent::StatusUpdated { .. }
                | HubEvent::Message { .. }
        )
    };
    let mut on = pair();
    let (routed_on, events_on) = traffic(&mut on);
    let mut off = pair();
    off.hub.set_frame_events(false);
    let (routed_off, events_off) = traffic(&mut off);
    assert_eq!(routed_off, routed_on);
    assert_eq!(routed_on.len(), 5, "{routed_on:?}");
    assert_eq!(events_on.iter().filter(|e| per_frame(e)).count(), 11);
    assert!(!events_off.iter().any(per_frame), "{events_off:?}");
    let others = |events: &[HubEvent]| events.iter().filter(|e| !per_frame(e)).count();
    assert_eq!(others(&events_off), others(&events_on));
    assert!(others(&events_on) > 0);
    off.hub.set_frame_events(true);
    off.send(
        1,
        "direct",
        Some("beta"),
        Some(json!({"directType": "again"})),
    );
    assert!(
        off.events()
            .iter()
            .any(|e| matches!(e, HubEvent::Direct { direct_type, .. } if direct_type == "again"))
    );
}

#[test]
fn a_publish_fans_out_to_every_subscriber_but_the_publisher() {
    let mut h = pair();
    h.connect(3, "gamma");
    h.take();
    for conn in [1, 2, 3] {
        h.send(
            conn,
            "topic.subscribe",
            None,
            Some(json!({"topic": "news.tech"})),
        );
    }
    h.send(
        2,
        "topic.subscribe",
        None,
        Some(json!({"topic": "news.tech"})),
    );
    let subs = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, HubEvent::TopicSubscribe { .. }))
        .count();
    assert_eq!(subs, 3, "re-subscribing is idempotent");
    h.send(
        1,
        "topic.message",
        None,
        Some(json!({"topic": "news.tech", "payload": {"headline": "x"}})),
    );
    assert!(h.frames(1).is_empty(), "no self-delivery");
    let to_beta = h.frames(2);
    let to_gamma = h.frames(3);
    assert_eq!(
        to_beta[0]["data"],
        json!({"topic": "news.tech", "payload": {"headline": "x"}})
    );
    assert_eq!(
        (to_beta[0]["from"].as_str(), to_beta[0]["to"].as_str()),
        (Some("alpha"), Some("beta"))
    );
    assert_eq!(to_gamma[0]["to"], "gamma");
    assert_ne!(to_beta[0]["id"], to_gamma[0]["id"]);
    assert!(h.events().iter().any(|e| matches!(e, HubEvent::TopicPublish { subscriber_count: 3, delivered: 2, from, .. } if from == "alpha")));
    h.send(
        2,
        "topic.unsubscribe",
        None,
        Some(json!({"topic": "news.tech"})),
    );
    assert!(
        h.events()
            .iter()
            .any(|e| matches!(e, HubEvent::TopicUnsubscribe { kind, .. } if kind == "beta"))
    );
    h.send(
        1,
        "topic.message",
        None,
        Some(json!({"topic": "news.tech", "payload": 1})),
    );
    assert!(h.frames(2).is_empty());
    assert_eq!(h.frames(3).len(), 1);
}

#[test]
fn invalid_topics_are_protocol_errors_and_an_empty_unsubscribe_leaves_all() {
    let mut h = pair();
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "a*"})));
    h.send(
        2,
        "topic.message",
        None,
        Some(json!({"topic": "", "payload": 1})),
    );
    h.send(2, "topic.unsubscribe", None, Some(json!({"topic": "a b"})));
    assert_eq!(
        Hub::drops(&h.events()),
        [
            ("invalid-topic", None),
            ("invalid-topic", None),
            ("invalid-topic", None)
        ]
    );
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "a"})));
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "b"})));
    h.send(2, "topic.unsubscribe", None, Some(json!({})));
    assert_eq!(h.hub.health().topic_count, 0);
    assert_eq!(h.hub.health().total_subscribers, 0);
}

#[test]
fn a_disconnect_removes_the_peers_subscriptions_and_status_and_tells_the_others() {
    let mut h = pair();
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "t"})));
    h.send(2, "status.update", None, Some(json!("busy")));
    h.take();
    h.close_from_client(2, 1000);
    let events = h.events();
    assert!(events.iter().any(|e| matches!(e, HubEvent::TopicUnsubscribe { kind, topic } if kind == "beta" && topic == "t")));
    assert!(events.iter().any(
        |e| matches!(e, HubEvent::PeerDisconnected { kind, code: Some(1000), .. } if kind == "beta")
    ));
    let update = h.frames(1);
    assert_eq!(update[0]["type"], "peers.update");
    assert_eq!(update[0]["data"]["peers"].as_array().map(Vec::len), Some(1));
    let health = h.hub.health();
    assert_eq!(
        (health.topic_count, health.status_count, health.peer_count),
        (0, 0, 1)
    );
    h.send(1, "topic.message", None, Some(json!({"topic": "t"})));
    assert!(h.events().iter().any(|e| matches!(
        e,
        HubEvent::TopicPublish {
            delivered: 0,
            subscriber_count: 0,
            ..
        }
    )));
}

#[test]
fn a_status_update_is_stored_relayed_to_others_and_shown_to_late_joiners() {
    let mut h = pair();
    h.send(1, "status.update", None, Some(json!({"state": "idle"})));
    let at = h.now.wall_ms;
    assert!(h.frames(1).is_empty());
    let relay = h.frames(2);
    assert_eq!(relay[0]["type"], "status.update");
    assert_eq!(relay[0]["from"], "server");
    assert_eq!(
        relay[0]["data"],
        json!({"from": "alpha", "status": {"state": "idle"}, "at": at})
    );
    h.send(2, "status.update", None, None);
    assert_eq!(
        h.frames(1)[0]["data"],
        json!({"from": "beta", "at": h.now.wall_ms})
    );
    h.open(3);
    h.hello_with(3, "gamma", hub_harness::SECRET);
    let snap = &h.frames(3)[2];
    assert_eq!(
        snap["data"],
        json!({"alpha": {"status": {"state": "idle"}, "at": at}, "beta": {"at": at}})
    );
    let state = h.hub.state().to_value().to_serde();
    assert_eq!(
        state["lastStatus"]["alpha"]["status"],
        json!({"state": "idle"})
    );
    assert_eq!(state["peers"].as_array().map(Vec::len), Some(3));
}

#[test]
fn an_unknown_type_is_verified_reported_and_ignored() {
    let mut h = pair();
    h.send(1, "custom.thing", Some("beta"), Some(json!(1)));
    let events = h.events();
    assert!(
        matches!(&events[..], [HubEvent::Message { msg_type, .. }] if msg_type == "custom.thing")
    );
    assert!(h.take().is_empty());
}

/// The reference's error texts are template strings over the peer's own `to` and
/// `rpcType`, so a lone surrogate in them comes back exactly, escaped as
/// `JSON.stringify` writes it, not replaced by U+FFFD.
#[test]
fn rpc_errors_echo_a_lone_surrogate_exactly() {
    use link_sansio::wire::{self, Header, json};
    let mut h = Hub::shared();
    h.connect(1, "alpha");
    h.take();
    let key = h.keys[&c(1)].clone();
    let lone = |text: &str| match json::parse(text.as_bytes()) {
        Ok(Value::String(s)) => s,
        other => panic!("{other:?}"),
    };
    let cases = [
        (
            lone(r#""\udc00q""#),
            br#"{"rpcType":"x"}"#.as_slice(),
            r#""error":"Target not connected: \udc00q""#,
        ),
        (
            lone(r#""server""#),
            br#"{"rpcType":"\ud800x"}"#.as_slice(),
            r#""error":"Unknown server rpcType: \ud800x""#,
        ),
    ];
    for (n, (to, data, want)) in cases.into_iter().enumerate() {
        let id = format!("lone-{n}");
        let mut frame = Vec::new();
        wire::encode(
            &key,
            &Header {
                id: id.as_str().into(),
                ts: h.now.ms(),
                from: Some("alpha".into()),
                to: Some((&to).into()),
            },
            "rpc.request",
            Some(data),
            &mut frame,
        );
        h.input(Input::Frame {
            conn: c(1),
            bytes: &frame,
        });
        let replies: Vec<String> = h
            .take()
            .into_iter()
            .filter_map(|o| match o {
                Output::Transmit { conn, text } if conn == c(1) => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert!(replies[0].contains(want), "{}", replies[0]);
    }
}
