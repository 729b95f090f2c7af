//! Per-peer keys (static map and async resolver) and ACL hooks, over loopback.

mod common;

use common::*;
use link_tokio::core::wire::DropReason;
use link_tokio::{AclDecision, ClientEvent, HubEvent, HubOptions};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn per_peer_keys_wrong_key_is_never_ready_and_the_hub_counts_the_drop() {
    let hub = HubOptions::per_peer_keys([("good", "key-good"), ("bad", "key-bad")]);
    let server = server(hub).await;
    let mut hub_events = server.hub().events();

    let good = ready_client(&server, options("good").secret("key-good")).await;

    let bad = options("bad")
        .secret("not-the-key")
        .hello_ack_diagnostic(Duration::from_millis(200))
        .connect(server.url())
        .expect("bad client starts");
    let mut bad_events = bad.events();
    next_link_event(&mut bad_events, "bad client connected", |e| match e {
        ClientEvent::Connected { .. } => Some(()),
        _ => None,
    })
    .await;

    // The hub drops the hello as badly signed, silently.
    next_hub_event(&mut hub_events, "bad-signature drop", |e| match e {
        HubEvent::ProtocolError {
            reason: DropReason::BadSignature,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    // The client hears nothing verified: the no-ack diagnostic.
    next_link_event(&mut bad_events, "no-ack diagnostic", |e| match e {
        ClientEvent::HelloAckDiagnostic(d) if d.as_str() == "no-ack" => Some(()),
        _ => None,
    })
    .await;
    assert!(!bad.is_ready());
    assert!(!bad.health().await.expect("health").ready);
    let peers: Vec<String> = good
        .peers()
        .await
        .expect("peers")
        .into_iter()
        .map(|p| p.kind)
        .collect();
    assert_eq!(peers, vec!["good".to_owned()]);
    assert_eq!(server.hub().health().await.expect("health").peer_count, 1);

    // A kind with no key at all is dropped as unknown.
    let mut hub_events = server.hub().events();
    let stranger = options("stranger").connect(server.url()).expect("starts");
    next_hub_event(&mut hub_events, "unknown-kind drop", |e| match e {
        HubEvent::ProtocolError {
            reason: DropReason::UnknownKind,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    assert!(!stranger.is_ready());

    for c in [&good, &bad, &stranger] {
        c.stop_now().await.expect("stop");
    }
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn async_key_resolver_admits_known_kinds_and_survives_a_panic() {
    let hub = HubOptions::key_resolver(|kind: String| async move {
        match kind.as_str() {
            "dyn" => Some("key-dyn".to_owned()),
            "boom" => panic!("resolver bug"),
            _ => None,
        }
    });
    let server = server(hub).await;
    let mut hub_events = server.hub().events();
    let dynamic = ready_client(&server, options("dyn").secret("key-dyn")).await;
    let r: Value = dynamic
        .rpc("server", "link.health", &())
        .await
        .expect("works");
    assert_eq!(r["peerCount"], json!(1));

    let boom = options("boom")
        .secret("whatever")
        .connect(server.url())
        .expect("starts");
    next_hub_event(&mut hub_events, "resolver panic = no key", |e| match e {
        HubEvent::ProtocolError {
            reason: DropReason::UnknownKind,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    assert!(!boom.is_ready());
    boom.stop_now().await.expect("stop");
    dynamic.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn acl_hooks_deny_with_codes_and_fail_closed() {
    let hub = HubOptions::new(SECRET)
        .can_rpc(|q: link_tokio::RpcCheck| async move {
            match q.rpc_type.as_str() {
                "admin.wipe" => AclDecision::Deny {
                    code: Some("ADMIN_ONLY".into()),
                    message: Some("admins only".into()),
                },
                "acl.panics" => panic!("acl bug"),
                _ => AclDecision::Allow,
            }
        })
        .can_publish(|q: link_tokio::PublishCheck| async move { q.topic != "secret" })
        .can_subscribe(|q: link_tokio::SubscribeCheck| async move { q.from != "untrusted" })
        .can_send(|q: link_tokio::SendCheck| async move { q.direct_type != "forbidden" });
    let server = server(hub).await;
    let mut hub_events = server.hub().events();
    let c = ready_client(&server, options("client")).await;

    let e = c
        .rpc::<_, Value>("server", "admin.wipe", &())
        .await
        .expect_err("denied");
    assert_eq!(e.code(), "ADMIN_ONLY");
    assert_eq!(e.to_string(), "admins only");
    let e = c
        .rpc::<_, Value>("server", "acl.panics", &())
        .await
        .expect_err("fail closed");
    assert_eq!(e.code(), "RPC_FORBIDDEN");
    let ok: Value = c.rpc("server", "link.health", &()).await.expect("allowed");
    assert_eq!(ok["peerCount"], json!(1));

    // Publish denial is a silent drop at the hub: the subscriber gets only what is
    // allowed, in order.
    let sub = ready_client(&server, options("listener")).await;
    let mut secret = sub.subscribe("secret").await.expect("subscribe");
    let mut open = sub.subscribe("open").await.expect("subscribe");
    for topic in ["secret", "open"] {
        let topics: Value = c
            .rpc("server", "link.topic.list", &json!({ "topic": topic }))
            .await
            .expect("topic list");
        assert_eq!(topics["subscribers"], json!(["listener"]), "{topic}");
    }
    c.publish("secret", &1)
        .await
        .expect("publish (dropped at hub)");
    next_hub_event(&mut hub_events, "publish denied", |e| match e {
        HubEvent::AclDenied { code, topic, .. } if topic.as_deref() == Some("secret") => {
            Some(code.clone())
        }
        _ => None,
    })
    .await;
    c.publish("open", &2).await.expect("publish");
    use futures_util::StreamExt;
    let m = within("open message", open.next()).await.expect("message");
    assert_eq!(m.payload_as::<i32>().expect("int"), 2);
    assert!(futures_util::FutureExt::now_or_never(secret.next()).is_none());

    // Subscribe denial.
    let untrusted = ready_client(&server, options("untrusted")).await;
    let _s = untrusted
        .subscribe("open")
        .await
        .expect("local subscribe is fine");
    let code = next_hub_event(&mut hub_events, "subscribe denied", |e| match e {
        HubEvent::AclDenied { from, code, .. } if from == "untrusted" => Some(code.clone()),
        _ => None,
    })
    .await;
    assert_eq!(code, "SUBSCRIBE_FORBIDDEN");

    // Send denial.
    c.send("listener", "forbidden", &())
        .await
        .expect("send (dropped at hub)");
    let code = next_hub_event(&mut hub_events, "send denied", |e| match e {
        HubEvent::AclDenied {
            direct_type, code, ..
        } if direct_type.as_deref() == Some("forbidden") => Some(code.clone()),
        _ => None,
    })
    .await;
    assert_eq!(code, "SEND_FORBIDDEN");

    for x in [&c, &sub, &untrusted] {
        x.stop().await.expect("stop");
    }
    server.stop().await.expect("server stops");
}
