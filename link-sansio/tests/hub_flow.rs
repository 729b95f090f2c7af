//! Flow control, keepalive, ACL, replay guard, limits, drain and introspection
//! stories.

mod hub_harness;

use std::time::Duration;

use hub_harness::{Hub, c};
use link_sansio::hub::{AclDecision, AclOp, AclOpKind, HubEvent, Input, Output};
use serde_json::json;

fn acl_checks(h: &mut Hub) -> Vec<link_sansio::hub::AclCheck> {
    h.take()
        .into_iter()
        .filter_map(|o| match o {
            Output::AclCheck(check) => Some(check),
            _ => None,
        })
        .collect()
}

#[test]
fn a_congested_socket_queues_until_the_transport_flushes_and_queued_frames_get_a_fresh_ts() {
    let mut h = Hub::config(|c| c.max_buffered_bytes = 10);
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.flush_all();
    h.take();
    h.send(1, "direct", Some("beta"), Some(json!({"directType": "a"})));
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, HubEvent::Backpressure { .. }))
    );
    h.send(1, "direct", Some("beta"), Some(json!({"directType": "b"})));
    h.send(1, "direct", Some("beta"), Some(json!({"directType": "c"})));
    let events = h.events();
    let pressure: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, HubEvent::Backpressure { .. }))
        .collect();
    assert_eq!(pressure.len(), 1, "one event when queueing starts");
    assert!(
        matches!(pressure[0], HubEvent::Backpressure { kind, msg_type, max_buffered_bytes: 10, buffered_amount, .. }
        if kind == "beta" && msg_type == "direct" && *buffered_amount > 10)
    );
    let first = h.frames(2);
    assert_eq!(first.len(), 1);
    let health = h.hub.health();
    assert_eq!(health.queued_sockets, 1);
    assert!(health.outbox_bytes > 400);
    h.advance(Duration::from_millis(700));
    h.flush(2);
    let next = h.frames(2);
    assert_eq!(next.len(), 1, "one frame per flush while over the cap");
    assert_eq!(next[0]["data"]["directType"], "b");
    assert_eq!(next[0]["ts"].as_u64(), Some(h.now.wall_ms));
    assert!(next[0]["ts"].as_u64() > first[0]["ts"].as_u64());
    h.flush(2);
    assert_eq!(h.frames(2)[0]["data"]["directType"], "c");
    assert_eq!(h.hub.health().outbox_bytes, 0);
    assert_eq!(h.hub.health().queued_sockets, 0);
}

#[test]
fn an_over_full_outbox_refuses_and_reports_overflow() {
    let mut h = Hub::config(|c| {
        c.max_buffered_bytes = 10;
        c.max_outbox_bytes = 500;
    });
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.flush_all();
    h.take();
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "t"})));
    for _ in 0..4 {
        h.send(
            1,
            "topic.message",
            None,
            Some(json!({"topic": "t", "payload": "x".repeat(100)})),
        );
    }
    let events = h.events();
    let overflows = events
        .iter()
        .filter(|e| matches!(e, HubEvent::OutboxOverflow { kind, .. } if kind == "beta"))
        .count();
    assert_eq!(overflows, 2);
    let delivered: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            HubEvent::TopicPublish { delivered, .. } => Some(*delivered),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [1, 1, 0, 0]);
}

#[test]
fn queued_status_relays_are_conflated_per_origin() {
    let mut h = Hub::config(|c| c.max_buffered_bytes = 10);
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.connect(3, "gamma");
    h.flush_all();
    h.take();
    h.send(2, "status.update", None, Some(json!(1)));
    h.send(2, "status.update", None, Some(json!(2)));
    h.send(3, "status.update", None, Some(json!("g")));
    h.send(2, "status.update", None, Some(json!(3)));
    assert_eq!(h.frames(1).len(), 1);
    h.flush_all();
    let relays: Vec<(String, serde_json::Value)> = h
        .frames(1)
        .iter()
        .map(|f| {
            (
                f["data"]["from"].as_str().unwrap_or("").to_owned(),
                f["data"]["status"].clone(),
            )
        })
        .collect();
    // The newest status takes the queued one's place, as in the reference.
    assert_eq!(
        relays,
        [
            ("beta".to_owned(), json!(3)),
            ("gamma".to_owned(), json!("g"))
        ]
    );
}

/// A newer status that does not fit in the outbox in place of the queued one is
/// refused, and the queued one stays (the reference checks before it replaces).
#[test]
fn a_status_too_large_to_replace_the_queued_one_is_refused_and_the_old_one_kept() {
    let mut h = Hub::config(|c| {
        c.max_buffered_bytes = 10;
        c.max_outbox_bytes = 600;
    });
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.flush_all();
    h.take();
    h.send(2, "status.update", None, Some(json!("first")));
    h.send(2, "status.update", None, Some(json!("queued")));
    h.send(2, "status.update", None, Some(json!("x".repeat(400))));
    let overflows = h
        .events()
        .iter()
        .filter(|e| matches!(e, HubEvent::OutboxOverflow { kind, .. } if kind == "alpha"))
        .count();
    assert_eq!(overflows, 1);
    h.flush_all();
    let statuses: Vec<serde_json::Value> = h
        .frames(1)
        .iter()
        .map(|f| f["data"]["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("first"), json!("queued")]);
}

#[test]
fn keepalive_pings_peers_and_terminates_one_that_did_not_pong() {
    let mut h = Hub::shared();
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.open(3);
    h.take();
    h.advance(Duration::from_millis(15_000));
    let pings: Vec<u64> = h
        .take()
        .into_iter()
        .filter_map(|o| match o {
            Output::Ping { conn } => Some(conn.0),
            _ => None,
        })
        .collect();
    assert_eq!(pings, [1, 2], "pending sockets are not pinged");
    h.input(Input::Pong { conn: c(1) });
    h.advance(Duration::from_millis(9_000));
    // Hello timeout of the pending socket fires meanwhile; ignore it.
    h.take();
    h.advance(Duration::from_millis(6_000));
    assert_eq!(h.terminated(), [2]);
    let events = h.events();
    assert!(events.iter().any(
        |e| matches!(e, HubEvent::PeerDisconnected { kind, code: Some(1006), .. } if kind == "beta")
    ));
    let update = h.frames(1);
    assert_eq!(update[0]["type"], "peers.update");
    assert_eq!(update[0]["data"]["peers"].as_array().map(Vec::len), Some(1));
    assert!(
        h.take()
            .iter()
            .any(|o| matches!(o, Output::Ping { conn } if *conn == c(1)))
    );
    assert_eq!(h.hub.health().peer_count, 1);
}

/// As in the reference, `canRpc` is asked before a request without `to` is refused:
/// denied, it gets the ACL's answer; allowed, `RPC_BAD_REQUEST`.
#[test]
fn an_rpc_without_to_goes_to_can_rpc_before_it_is_refused() {
    let mut h = Hub::config(|c| c.acl.rpc = true);
    h.connect(1, "alpha");
    h.take();
    for (decision, want) in [
        (
            AclDecision::Deny {
                code: None,
                message: None,
            },
            "RPC_FORBIDDEN",
        ),
        (AclDecision::Allow, "RPC_BAD_REQUEST"),
    ] {
        h.send(1, "rpc.request", None, Some(json!({"rpcType": "x"})));
        let checks = acl_checks(&mut h);
        assert!(
            matches!(&checks[..], [check] if matches!(&check.op, AclOp::Rpc { to, .. } if to.is_empty())),
            "{checks:?}"
        );
        h.input(Input::AclDecided {
            check: checks[0].check,
            decision,
        });
        let f = h.frames(1);
        assert_eq!(f[0]["data"]["code"], want);
    }
}

#[test]
fn a_denied_rpc_gets_rpc_forbidden_and_an_acl_denied_event() {
    let mut h = Hub::config(|c| c.acl.rpc = true);
    h.connect(1, "alpha");
    h.connect(2, "beta");
    let id = h.send(
        1,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "add", "rpcData": 1})),
    );
    let checks = acl_checks(&mut h);
    assert_eq!(checks.len(), 1);
    assert!(
        matches!(&checks[0].op, AclOp::Rpc { from, to, rpc_type, .. } if from == "alpha" && to == "beta" && rpc_type == "add")
    );
    h.input(Input::AclDecided {
        check: checks[0].check,
        decision: AclDecision::Deny {
            code: None,
            message: None,
        },
    });
    let f = h.frames(1);
    assert_eq!(f[0]["id"], json!(id));
    assert_eq!(f[0]["from"], "server");
    assert_eq!(
        f[0]["data"],
        json!({"ok": false, "error": "Forbidden", "code": "RPC_FORBIDDEN"})
    );
    assert!(h.frames(2).is_empty());
    assert!(h.events().iter().any(|e| matches!(e, HubEvent::AclDenied { op: AclOpKind::Rpc, code, error, rpc_type: Some(t), to: Some(to), .. }
        if code == "RPC_FORBIDDEN" && error == "Forbidden" && t == "add" && to == "beta")));
    // Custom code and message; server RPCs are gated too.
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.health"})),
    );
    let check = acl_checks(&mut h)[0].check;
    h.input(Input::AclDecided {
        check,
        decision: AclDecision::Deny {
            code: Some("NOPE".into()),
            message: Some("not you".into()),
        },
    });
    assert_eq!(
        h.frames(1)[0]["data"],
        json!({"ok": false, "error": "not you", "code": "NOPE"})
    );
    // Allowed: forwarded.
    h.send(
        1,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "add"})),
    );
    let check = acl_checks(&mut h)[0].check;
    h.input(Input::AclDecided {
        check,
        decision: AclDecision::Allow,
    });
    assert_eq!(h.frames(2)[0]["type"], "rpc.request");
}

#[test]
fn an_rpc_allowed_after_its_caller_left_or_was_replaced_is_dropped_as_stale() {
    let mut h = Hub::config(|c| c.acl.rpc = true);
    h.hub.register_server_rpc("work");
    h.connect(1, "alpha");
    h.connect(2, "beta");
    // To a peer, then the caller's socket closes before `canRpc` answers.
    h.send(
        1,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "add"})),
    );
    // To the server (an application handler), likewise.
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "work"})),
    );
    let checks = acl_checks(&mut h);
    assert_eq!(checks.len(), 2);
    h.close_from_client(1, 1000);
    h.take();
    for check in &checks {
        h.input(Input::AclDecided {
            check: check.check,
            decision: AclDecision::Allow,
        });
    }
    let out = h.take();
    assert!(
        !out.iter().any(|o| matches!(o, Output::ServerRpc(_))),
        "a server RPC for a caller that left: {out:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Transmit { .. })),
        "forwarded for a caller that left: {out:?}"
    );
    let stale = out
        .iter()
        .filter(|o| {
            matches!(o, Output::Event(HubEvent::ProtocolError { reason, msg_type: Some(t), .. })
            if reason.as_str() == "stale-socket" && t == "rpc.request")
        })
        .count();
    assert_eq!(stale, 2, "each dropped request is reported once");

    // The caller's kind connects again on a new socket while its old request waits:
    // the answer is still for the old socket, and the new one never asked.
    h.connect(3, "alpha");
    h.send(
        3,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "add"})),
    );
    let check = acl_checks(&mut h)[0].check;
    h.connect(4, "alpha");
    h.take();
    h.input(Input::AclDecided {
        check,
        decision: AclDecision::Allow,
    });
    let out = h.take();
    assert!(
        !out.iter().any(|o| matches!(o, Output::Transmit { .. })),
        "forwarded for a replaced caller: {out:?}"
    );
    assert!(out.iter().any(
        |o| matches!(o, Output::Event(HubEvent::ProtocolError { reason, .. })
        if reason.as_str() == "stale-socket")
    ));

    // A denial for a caller that left is still reported, with nothing written.
    h.send(
        4,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "add"})),
    );
    let check = acl_checks(&mut h)[0].check;
    h.close_from_client(4, 1000);
    h.take();
    h.input(Input::AclDecided {
        check,
        decision: AclDecision::Deny {
            code: None,
            message: None,
        },
    });
    assert!(
        !h.take()
            .iter()
            .any(|o| matches!(o, Output::Transmit { .. }))
    );
}

#[test]
fn gated_messages_of_one_socket_wait_in_arrival_order_and_denials_are_silent() {
    let mut h = Hub::config(|c| {
        c.acl.publish = true;
        c.acl.subscribe = true;
    });
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "t"})));
    let sub = acl_checks(&mut h);
    assert!(
        matches!(&sub[..], [link_sansio::hub::AclCheck { op: AclOp::Subscribe { from, topic }, .. }] if from == "beta" && topic == "t")
    );
    h.input(Input::AclDecided {
        check: sub[0].check,
        decision: AclDecision::Allow,
    });
    h.take();
    // alpha: publish #1 (asked), direct (no hook, waits behind it), publish #2.
    h.send(
        1,
        "topic.message",
        None,
        Some(json!({"topic": "t", "payload": 1})),
    );
    h.send(1, "direct", Some("beta"), Some(json!({"directType": "d"})));
    h.send(
        1,
        "topic.message",
        None,
        Some(json!({"topic": "t", "payload": 2})),
    );
    let checks = acl_checks(&mut h);
    assert_eq!(checks.len(), 1, "only the head of the lane is asked");
    assert!(h.frames(2).is_empty());
    // Not gated: an RPC passes the waiting lane.
    h.send(
        1,
        "rpc.request",
        Some("beta"),
        Some(json!({"rpcType": "x"})),
    );
    assert_eq!(h.types(2), ["rpc.request"]);
    h.input(Input::AclDecided {
        check: checks[0].check,
        decision: AclDecision::Deny {
            code: None,
            message: None,
        },
    });
    assert!(h.events().iter().any(
        |e| matches!(e, HubEvent::AclDenied { op: AclOpKind::Publish, code, topic: Some(t), .. }
        if code == "PUBLISH_FORBIDDEN" && t == "t")
    ));
    // The direct went through; publish #2 is now asked.
    assert_eq!(h.types(2), ["direct"]);
    let checks = acl_checks(&mut h);
    assert!(
        matches!(&checks[..], [link_sansio::hub::AclCheck { op: AclOp::Publish { payload: Some(p), .. }, .. }] if *p == link_sansio::wire::Value::Number(2.0))
    );
    h.input(Input::AclDecided {
        check: checks[0].check,
        decision: AclDecision::Allow,
    });
    let f = h.frames(2);
    assert_eq!(f[0]["data"]["payload"], 2);
    assert!(h.frames(1).is_empty(), "publish denial sends nothing");
}

#[test]
fn a_send_denial_is_silent_with_send_forbidden() {
    let mut h = Hub::config(|c| c.acl.send = true);
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.send(
        1,
        "direct",
        Some("beta"),
        Some(json!({"directType": "d", "directData": 1})),
    );
    let checks = acl_checks(&mut h);
    assert!(
        matches!(&checks[0].op, AclOp::Send { to, direct_type, .. } if to == "beta" && direct_type == "d")
    );
    h.input(Input::AclDecided {
        check: checks[0].check,
        decision: AclDecision::Deny {
            code: None,
            message: None,
        },
    });
    assert!(h.frames(2).is_empty());
    assert!(h.frames(1).is_empty());
    assert!(h.events().iter().any(
        |e| matches!(e, HubEvent::AclDenied { op: AclOpKind::Send, code, direct_type: Some(d), .. }
        if code == "SEND_FORBIDDEN" && d == "d")
    ));
}

#[test]
fn the_replay_guard_refuses_repeated_ids_and_stale_timestamps_per_kind() {
    let mut h = Hub::config(|c| c.keepalive_interval = Duration::ZERO);
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.take();
    h.send_id(1, "same", "status.update", None, Some(json!(1)));
    h.send_id(1, "same", "status.update", None, Some(json!(2)));
    assert_eq!(Hub::drops(&h.events()), [("replay-id", None)]);
    // Another sender may use the same id; responses are exempt from the id check.
    h.send_id(2, "same", "status.update", None, Some(json!(1)));
    h.send_id(
        2,
        "resp",
        "rpc.response",
        Some("alpha"),
        Some(json!({"ok": true})),
    );
    h.send_id(
        2,
        "resp",
        "rpc.response",
        Some("alpha"),
        Some(json!({"ok": true})),
    );
    assert!(Hub::drops(&h.events()).is_empty());
    // A frame signed 301 s ago is outside the window.
    let key = h.keys[&c(1)].clone();
    let old = h.sign(&key, "old", "status.update", None, None, Some(json!(1)));
    h.advance(Duration::from_millis(301_000));
    h.take();
    h.raw(1, &old);
    let drops = Hub::drops(&h.events());
    assert!(drops.contains(&("replay-window", None)), "{drops:?}");
    // A disconnect forgets the kind's ids.
    h.close_from_client(1, 1000);
    h.connect(3, "alpha");
    h.send_id(3, "same", "status.update", None, Some(json!(9)));
    assert!(Hub::drops(&h.events()).is_empty());
}

#[test]
fn a_zero_replay_window_disables_the_guard() {
    let mut h = Hub::config(|c| c.limits.replay_window_ms = 0);
    h.connect(1, "alpha");
    h.send_id(1, "same", "status.update", None, Some(json!(1)));
    h.send_id(1, "same", "status.update", None, Some(json!(1)));
    assert!(Hub::drops(&h.events()).is_empty());
    assert_eq!(h.hub.health().recent_ids_size, 0);
}

#[test]
fn malformed_frames_are_dropped_with_the_reference_reasons() {
    let mut h = Hub::config(|c| c.limits.max_message_bytes = 600);
    h.connect(1, "alpha");
    h.take();
    h.raw(1, "not json");
    h.raw(1, "[1]");
    h.raw(1, r#"{"v":1,"type":"x"}"#);
    h.raw(1, r#"{"v":1,"id":""}"#);
    let long = format!(r#"{{"v":1,"id":"{}"}}"#, "i".repeat(257));
    h.raw(1, &long);
    let big = format!(r#"{{"v":1,"id":"x","pad":"{}"}}"#, "p".repeat(600));
    h.raw(1, &big);
    let key = h.keys[&c(1)].clone();
    let mut bad_version = h.sign(&key, "bv", "status.update", None, None, None);
    bad_version = bad_version.replace(r#""v":1"#, r#""v":2"#);
    h.raw(1, &bad_version);
    let reasons: Vec<&str> = Hub::drops(&h.events())
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(
        reasons,
        [
            "parse-error",
            "missing-id",
            "missing-id",
            "missing-id",
            "oversized-id",
            "oversize",
            "bad-signature"
        ]
    );
    assert!(h.closes().is_empty());
    assert!(h.frames(1).is_empty());
}

#[test]
fn drain_closes_pending_with_1001_and_peers_without_a_code_then_reports_drained() {
    let mut h = Hub::shared();
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.open(3);
    h.take();
    h.input(Input::Drain);
    let mut closes = h.closes();
    closes.sort();
    assert_eq!(
        closes,
        [
            // A bare `ws.close()` for peers: a close frame without a code (1005).
            (1, 1005, String::new()),
            (2, 1005, String::new()),
            (3, 1001, "hub stopped".to_owned())
        ]
    );
    assert!(h.frames(1).is_empty(), "no peers.update while draining");
    assert!(!h.hub.is_drained());
    h.open(4);
    assert_eq!(h.closes(), [(4, 1001, "hub stopped".to_owned())]);
    h.hello_with(4, "late", hub_harness::SECRET);
    assert!(h.frames(4).is_empty());
    for conn in [1, 2, 3] {
        h.close_from_client(conn, 1000);
    }
    assert!(!h.events().iter().any(|e| matches!(e, HubEvent::Drained)));
    // The late socket never completes its close: it is dropped.
    h.advance(Duration::from_millis(500));
    assert_eq!(h.terminated(), [4]);
    assert!(h.hub.is_drained());
    let drained = h
        .events()
        .iter()
        .filter(|e| matches!(e, HubEvent::Drained))
        .count();
    assert_eq!(drained, 1);
}

#[test]
fn health_and_state_describe_the_hub() {
    let mut h = Hub::shared();
    h.connect(1, "alpha");
    h.connect(2, "beta");
    h.open(3);
    h.send(1, "topic.subscribe", None, Some(json!({"topic": "a"})));
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "a"})));
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "b"})));
    h.send(2, "status.update", None, Some(json!("ok")));
    let health = h.hub.health();
    assert_eq!(
        (
            health.peer_count,
            health.pending_socket_count,
            health.topic_count,
            health.total_subscribers,
            health.status_count
        ),
        (2, 1, 2, 3, 1)
    );
    assert_eq!(health.recent_ids_size, 6);
    let state = h.hub.state();
    let kinds: Vec<&str> = state.peers.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["alpha", "beta"]);
    assert_eq!(state.last_status.len(), 1);
    let v = state.to_value().to_serde();
    assert_eq!(v["peers"][1]["hello"]["name"], "beta");
    assert_eq!(v["lastStatus"]["beta"]["status"], "ok");
}

#[test]
fn a_subscribe_denial_is_silent_and_leaves_no_subscription() {
    let mut h = Hub::config(|c| c.acl.subscribe = true);
    h.connect(1, "alpha");
    h.send(1, "topic.subscribe", None, Some(json!({"topic": "t"})));
    let checks = acl_checks(&mut h);
    h.input(Input::AclDecided {
        check: checks[0].check,
        decision: AclDecision::Deny {
            code: None,
            message: Some(String::new()),
        },
    });
    assert!(h.events().iter().any(
        |e| matches!(e, HubEvent::AclDenied { op: AclOpKind::Subscribe, code, error, .. }
        if code == "SUBSCRIBE_FORBIDDEN" && error == "Forbidden")
    ));
    assert!(h.frames(1).is_empty());
    assert_eq!(h.hub.health().total_subscribers, 0);
    // Unsubscribe is not gated.
    h.send(1, "topic.unsubscribe", None, Some(json!({"topic": "t"})));
    assert!(acl_checks(&mut h).is_empty());
}

#[test]
fn frames_that_arrive_while_the_hello_key_is_being_resolved_are_pre_hello() {
    let mut h = Hub::new(link_sansio::hub::HubConfig::new(
        link_sansio::hub::Keys::Resolver,
    ));
    h.open(1);
    h.hello_with(1, "w", "k");
    let Some(Output::ResolveKey { request, .. }) = h.take().pop() else {
        panic!("key request");
    };
    h.send(1, "status.update", None, Some(json!(1)));
    assert_eq!(Hub::drops(&h.events()), [("pre-hello-message", None)]);
    h.input(Input::KeyResolved {
        request,
        key: Some("k".into()),
    });
    assert_eq!(h.types(1), ["hello.ack", "peers.update", "status.snapshot"]);
    assert_eq!(h.hub.health().status_count, 0);
}

#[test]
fn a_pending_socket_that_closes_is_forgotten_quietly() {
    let mut h = Hub::shared();
    h.open(1);
    h.close_from_client(1, 1001);
    assert_eq!(h.hub.health().pending_socket_count, 0);
    assert!(h.take().is_empty());
    h.advance(Duration::from_secs(11));
    assert!(
        h.closes().is_empty(),
        "no hello timeout for a closed socket"
    );
}

#[test]
fn message_events_can_be_turned_off() {
    let mut h = Hub::config(|c| c.message_events = false);
    h.connect(1, "alpha");
    h.send(1, "custom", None, None);
    assert!(h.events().is_empty());
}

#[test]
fn the_hub_can_move_to_another_thread() {
    fn send<T: Send + 'static>(_: &T) {}
    let h = Hub::shared();
    send(&h.hub);
    send(&link_sansio::hub::HubConfig::new(
        link_sansio::hub::Keys::Resolver,
    ));
}

#[test]
fn messages_waiting_for_acl_answers_are_bounded_per_socket() {
    let mut h = Hub::config(|c| {
        c.acl.publish = true;
        c.acl.rpc = true;
        c.max_outbox_bytes = 1_000;
    });
    h.connect(1, "alpha");
    for _ in 0..6 {
        h.send(
            1,
            "topic.message",
            None,
            Some(json!({"topic": "t", "payload": "x".repeat(100)})),
        );
    }
    h.send(
        1,
        "rpc.request",
        Some("server"),
        Some(json!({"rpcType": "link.health", "rpcData": "y".repeat(300)})),
    );
    let events = h.events();
    let dropped: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            HubEvent::AclBacklogOverflow { msg_type, .. } => Some(msg_type.as_str()),
            _ => None,
        })
        .collect();
    // Each publish frame is ~290 bytes: three fit in 1 000, the rest and the RPC do not.
    assert_eq!(
        dropped,
        [
            "topic.message",
            "topic.message",
            "topic.message",
            "rpc.request"
        ]
    );
    assert_eq!(
        acl_checks(&mut h).len(),
        1,
        "the lane asks about its head only"
    );
}

#[test]
fn a_publish_backlog_does_not_crowd_out_a_subscription_waiting_for_acl() {
    let mut h = Hub::config(|c| {
        c.acl.publish = true;
        c.acl.subscribe = true;
        c.max_outbox_bytes = 1_000;
    });
    h.connect(1, "alpha");
    for _ in 0..6 {
        h.send(
            1,
            "topic.message",
            None,
            Some(json!({"topic": "t", "payload": "x".repeat(100)})),
        );
    }
    h.send(1, "topic.subscribe", None, Some(json!({"topic": "jobs"})));
    let dropped: Vec<String> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            HubEvent::AclBacklogOverflow { msg_type, .. } => Some(msg_type),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, ["topic.message", "topic.message", "topic.message"]);
    // Subscriptions have their own budget, bounded all the same.
    for i in 0..40 {
        h.send(
            1,
            "topic.subscribe",
            None,
            Some(json!({"topic": format!("t{i}")})),
        );
    }
    assert!(
        h.events().iter().any(|e| matches!(
            e,
            HubEvent::AclBacklogOverflow { msg_type, .. } if msg_type == "topic.subscribe"
        )),
        "a flood of subscriptions still hits a bound"
    );
}
