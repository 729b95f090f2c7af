//! Per-peer keys (static map and async resolver) and ACL hooks, over loopback.

use crate::{Kit, SECRET};
use futures_util::StreamExt;
use link_driver::RpcHandlerError;
use link_driver::hub::{HubOptions, PublishCheck, RpcCheck, SendCheck, SubscribeCheck};
use link_driver::server::Serve;
use link_sansio::client::ClientEvent;
use link_sansio::hub::{AclDecision, HubEvent};
use link_sansio::wire::DropReason;
use serde_json::{Value, json};
use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub async fn per_peer_keys_wrong_key_is_never_ready_and_the_hub_counts_the_drop<R: Serve>() {
    let k = Kit::<R>::default();
    let hub = HubOptions::per_peer_keys([("good", "key-good"), ("bad", "key-bad")]);
    let server = k.server(hub).await;
    let mut hub_events = server.hub().events();

    let good = k
        .ready_client(&server, k.options("good").secret("key-good"))
        .await;

    let bad = k
        .options("bad")
        .secret("not-the-key")
        .hello_ack_diagnostic(Duration::from_millis(200))
        .connect(server.url())
        .expect("bad client starts");
    let mut bad_events = bad.events();
    k.next_link_event(&mut bad_events, "bad client connected", |e| match e {
        ClientEvent::Connected { .. } => Some(()),
        _ => None,
    })
    .await;

    // The hub drops the hello as badly signed, silently.
    k.next_hub_event(&mut hub_events, "bad-signature drop", |e| match e {
        HubEvent::ProtocolError {
            reason: DropReason::BadSignature,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    // The client hears nothing verified: the no-ack diagnostic.
    k.next_link_event(&mut bad_events, "no-ack diagnostic", |e| match e {
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
    let stranger = k.options("stranger").connect(server.url()).expect("starts");
    k.next_hub_event(&mut hub_events, "unknown-kind drop", |e| match e {
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

pub async fn async_key_resolver_admits_known_kinds_and_survives_a_panic<R: Serve>() {
    let k = Kit::<R>::default();
    let hub = HubOptions::key_resolver(|kind: String| async move {
        match kind.as_str() {
            "dyn" => Some("key-dyn".to_owned()),
            "boom" => panic!("resolver bug"),
            _ => None,
        }
    });
    let server = k.server(hub).await;
    let mut hub_events = server.hub().events();
    let dynamic = k
        .ready_client(&server, k.options("dyn").secret("key-dyn"))
        .await;
    let r: Value = dynamic
        .rpc("server", "link.health", &())
        .await
        .expect("works");
    assert_eq!(r["peerCount"], json!(1));

    let boom = k
        .options("boom")
        .secret("whatever")
        .connect(server.url())
        .expect("starts");
    k.next_hub_event(&mut hub_events, "resolver panic = no key", |e| match e {
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

pub async fn acl_hooks_deny_with_codes_and_fail_closed<R: Serve>() {
    let k = Kit::<R>::default();
    let hub = HubOptions::new(SECRET)
        .can_rpc(|q: RpcCheck| async move {
            match q.rpc_type.as_str() {
                "admin.wipe" => AclDecision::Deny {
                    code: Some("ADMIN_ONLY".into()),
                    message: Some("admins only".into()),
                },
                "acl.panics" => panic!("acl bug"),
                _ => AclDecision::Allow,
            }
        })
        .can_publish(|q: PublishCheck| async move { q.topic != "secret" })
        .can_subscribe(|q: SubscribeCheck| async move { q.from != "untrusted" })
        .can_send(|q: SendCheck| async move { q.direct_type != "forbidden" });
    let server = k.server(hub).await;
    let mut hub_events = server.hub().events();
    let c = k.ready_client(&server, k.options("client")).await;

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
    let sub = k.ready_client(&server, k.options("listener")).await;
    let mut secret = sub.subscribe("secret").await.expect("subscribe");
    let mut open = sub.subscribe("open").await.expect("subscribe");
    // Both subscriptions are in force at the hub (the subscribe check is async).
    let mut pending = vec!["secret", "open"];
    while !pending.is_empty() {
        let topic = k
            .next_hub_event(&mut hub_events, "listener's subscriptions", |e| match e {
                HubEvent::TopicSubscribe { kind, topic, .. } if kind == "listener" => {
                    Some(topic.clone())
                }
                _ => None,
            })
            .await;
        pending.retain(|t| *t != topic);
    }
    c.publish("secret", &1)
        .await
        .expect("publish (dropped at hub)");
    k.next_hub_event(&mut hub_events, "publish denied", |e| match e {
        HubEvent::AclDenied { code, topic, .. } if topic.as_deref() == Some("secret") => {
            Some(code.clone())
        }
        _ => None,
    })
    .await;
    c.publish("open", &2).await.expect("publish");
    let m = k
        .within("open message", open.next())
        .await
        .expect("message");
    assert_eq!(m.payload_as::<i32>().expect("int"), 2);
    assert!(futures_util::FutureExt::now_or_never(secret.next()).is_none());

    // Subscribe denial.
    let untrusted = k.ready_client(&server, k.options("untrusted")).await;
    let _s = untrusted
        .subscribe("open")
        .await
        .expect("local subscribe is fine");
    let code = k
        .next_hub_event(&mut hub_events, "subscribe denied", |e| match e {
            HubEvent::AclDenied { from, code, .. } if from == "untrusted" => Some(code.clone()),
            _ => None,
        })
        .await;
    assert_eq!(code, "SUBSCRIBE_FORBIDDEN");

    // Send denial.
    c.send("listener", "forbidden", &())
        .await
        .expect("send (dropped at hub)");
    let code = k
        .next_hub_event(&mut hub_events, "send denied", |e| match e {
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

/// An RPC that `canRpc` allows only after its caller has gone is neither run by a
/// server handler nor forwarded to its target peer: nobody could take the answer.
pub async fn an_rpc_allowed_after_its_caller_left_is_never_run<R: Serve>() {
    let k = Kit::<R>::default();
    // The hook says when it is asked, then holds its answer until the test lets go.
    let (asked_tx, mut asked) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (release, released) = tokio::sync::watch::channel(false);
    let server_runs = Arc::new(AtomicUsize::new(0));
    let hub = HubOptions::new(SECRET)
        .can_rpc(move |q: RpcCheck| {
            let asked = asked_tx.clone();
            let mut released = released.clone();
            async move {
                let _ = asked.send(q.rpc_type);
                let _ = released.wait_for(|go| *go).await;
                AclDecision::Allow
            }
        })
        .handle("work", counted(server_runs.clone()));
    let server = k.server(hub).await;
    let mut hub_events = server.hub().events();
    let worker_runs = Arc::new(AtomicUsize::new(0));
    let worker = k
        .ready_client(
            &server,
            k.options("worker")
                .handle("job", counted(worker_runs.clone())),
        )
        .await;
    let caller = k.ready_client(&server, k.options("caller")).await;

    let to_server = caller.rpc::<_, Value>("server", "work", &1).into_future();
    let to_worker = caller.rpc::<_, Value>("worker", "job", &2).into_future();
    let story = async {
        let mut pending = vec!["work".to_owned(), "job".to_owned()];
        while !pending.is_empty() {
            let t = k.within("canRpc asked", asked.recv()).await;
            pending.retain(|p| Some(p) != t.as_ref());
        }
        caller.stop_now().await.expect("caller stops");
        k.next_hub_event(&mut hub_events, "caller gone", |e| match e {
            HubEvent::PeerDisconnected { kind, .. } if kind == "caller" => Some(()),
            _ => None,
        })
        .await;
        release.send(true).expect("hooks listen");
        for _ in 0..2 {
            k.next_hub_event(&mut hub_events, "stale rpc.request dropped", |e| match e {
                HubEvent::ProtocolError {
                    reason: DropReason::StaleSocket,
                    msg_type: Some(t),
                    kind: Some(kind),
                    ..
                } if t == "rpc.request" && kind == "caller" => Some(()),
                _ => None,
            })
            .await;
        }
    };
    let (to_server, to_worker, ()) = futures_util::future::join3(to_server, to_worker, story).await;
    assert!(
        to_server.is_err() && to_worker.is_err(),
        "the caller stopped"
    );
    // A live caller's call is still forwarded and answered.
    let live = k.ready_client(&server, k.options("live")).await;
    let _: Value = k
        .within(
            "a live call",
            live.rpc::<_, Value>("worker", "job", &3).into_future(),
        )
        .await
        .expect("a live call is answered");
    assert_eq!(server_runs.load(Ordering::SeqCst), 0, "server handler ran");
    assert_eq!(
        worker_runs.load(Ordering::SeqCst),
        1,
        "only the live call ran"
    );
    for x in [&worker, &live] {
        x.stop().await.expect("stop");
    }
    server.stop().await.expect("server stops");
}

/// An RPC handler (hub or client: `C` is its context) that counts its runs in `runs`.
fn counted<C>(
    runs: Arc<AtomicUsize>,
) -> impl Fn(C, Value) -> futures_util::future::Ready<Result<Value, RpcHandlerError>> {
    move |_ctx, _| {
        runs.fetch_add(1, Ordering::SeqCst);
        futures_util::future::ready(Ok(Value::Null))
    }
}
