//! Every primitive end to end over real loopback WebSockets: RPC both ways and to the
//! hub, RPC errors and cancellation, publish/subscribe, direct messages, status and
//! peers, health.

mod common;

use common::*;
use futures_util::StreamExt;
use link_tokio::{ClientEvent, HubOptions, RpcHandlerError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Sum {
    sum: i64,
    caller: Option<String>,
}

#[tokio::test]
async fn rpc_both_ways_with_typed_payloads() {
    let server = server(HubOptions::new(SECRET)).await;
    let adder = |name: &'static str| {
        options(name).handle("math.add", |ctx, req: Add| async move {
            Ok::<_, RpcHandlerError>(Sum {
                sum: req.a + req.b,
                caller: ctx.from().map(str::to_owned),
            })
        })
    };
    let a = ready_client(&server, adder("alpha")).await;
    let b = ready_client(&server, adder("beta")).await;
    wait_for_peer(&a, "beta").await;
    wait_for_peer(&b, "alpha").await;

    let r: Sum = within(
        "a→b",
        a.rpc("beta", "math.add", &Add { a: 2, b: 3 }).into_future(),
    )
    .await
    .expect("rpc a→b");
    assert_eq!(
        r,
        Sum {
            sum: 5,
            caller: Some("alpha".into())
        }
    );
    let r: Sum = within(
        "b→a",
        b.rpc("alpha", "math.add", &Add { a: 40, b: 2 })
            .into_future(),
    )
    .await
    .expect("rpc b→a");
    assert_eq!(
        r,
        Sum {
            sum: 42,
            caller: Some("beta".into())
        }
    );

    // Handlers registered at runtime, and removed again.
    b.handle("echo", |_ctx, v: Value| async move {
        Ok::<_, RpcHandlerError>(v)
    });
    let echoed: Value = within(
        "echo",
        a.rpc("beta", "echo", &json!({"x": [1, "two", null]}))
            .into_future(),
    )
    .await
    .expect("echo");
    assert_eq!(echoed, json!({"x": [1, "two", null]}));
    b.unhandle("echo");
    let err = within(
        "unknown",
        a.rpc::<_, Value>("beta", "echo", &1).into_future(),
    )
    .await
    .expect_err("unhandled type");
    assert_eq!(err.code(), "RPC_UNKNOWN_TYPE");

    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn rpc_to_the_hub_custom_and_built_in() {
    let hub = HubOptions::new(SECRET).handle("time", |ctx, _req: Value| async move {
        Ok::<_, RpcHandlerError>(json!({ "from": ctx.from(), "now": 1 }))
    });
    let server = server(hub).await;
    let c = ready_client(&server, options("caller")).await;

    let r: Value = within("server rpc", c.rpc("server", "time", &()).into_future())
        .await
        .expect("server rpc");
    assert_eq!(r, json!({ "from": "caller", "now": 1 }));

    let health: Value = within(
        "link.health",
        c.rpc("server", "link.health", &()).into_future(),
    )
    .await
    .expect("link.health");
    assert_eq!(health["peerCount"], json!(1));
    assert!(health["serverRpcInFlight"].as_f64().unwrap_or(0.0) >= 1.0);

    // A server handler added at runtime overrides nothing else and answers at once.
    server
        .hub()
        .handle("kv.get", |_ctx, key: String| async move {
            Ok::<_, RpcHandlerError>(format!("value of {key}"))
        });
    let v: String = within("kv.get", c.rpc("server", "kv.get", &"k1").into_future())
        .await
        .expect("kv.get");
    assert_eq!(v, "value of k1");

    let err = within(
        "unknown server type",
        c.rpc::<_, Value>("server", "nope", &()).into_future(),
    )
    .await
    .expect_err("unknown server rpc");
    assert_eq!(err.code(), "RPC_UNKNOWN_TYPE");
    c.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn rpc_errors_timeouts_and_missing_targets() {
    let hub = HubOptions::new(SECRET)
        .handle("fail.exposed", |_ctx, _: Value| async move {
            Err::<(), _>(
                RpcHandlerError::new("no such job")
                    .with_code("JOB_MISSING")
                    .with_data(&json!({"id": 7})),
            )
        })
        .handle("fail.internal", |_ctx, _: Value| async move {
            Err::<(), _>(RpcHandlerError::internal("database password is hunter2"))
        })
        .handle("fail.panic", |_ctx, _: Value| async move {
            if true {
                panic!("handler bug");
            }
            Ok::<(), RpcHandlerError>(())
        });
    let server = server(hub).await;
    let slow = options("slow").handle("sleep", |ctx, _: Value| async move {
        ctx.cancel_signal().cancelled().await;
        Ok::<_, RpcHandlerError>(())
    });
    let slow = ready_client(&server, slow).await;
    let c = ready_client(&server, options("caller")).await;
    wait_for_peer(&c, "slow").await;

    let e = c
        .rpc::<_, Value>("server", "fail.exposed", &())
        .await
        .expect_err("exposed");
    assert_eq!(e.code(), "JOB_MISSING");
    assert_eq!(e.to_string(), "no such job");
    match &e {
        link_tokio::Error::Rpc(r) => {
            assert_eq!(r.data().map(|d| d.to_serde()), Some(json!({"id": 7})))
        }
        other => panic!("unexpected error {other:?}"),
    }

    let e = c
        .rpc::<_, Value>("server", "fail.internal", &())
        .await
        .expect_err("internal");
    assert_eq!(e.code(), "RPC_HANDLER_ERROR");
    assert_eq!(e.to_string(), "Internal handler error");

    let e = c
        .rpc::<_, Value>("server", "fail.panic", &())
        .await
        .expect_err("panic");
    assert_eq!(e.code(), "RPC_HANDLER_ERROR");

    let e = c
        .rpc::<_, Value>("nobody", "x", &())
        .await
        .expect_err("no target");
    assert_eq!(e.code(), "RPC_NO_TARGET");

    let e = within(
        "timeout",
        c.rpc::<_, Value>("slow", "sleep", &())
            .timeout(Duration::from_millis(100))
            .into_future(),
    )
    .await
    .expect_err("timeout");
    assert_eq!(e.code(), "RPC_TIMEOUT");

    // A response of the wrong shape is a decode error, not a panic.
    let e = c
        .rpc::<_, Vec<u8>>("server", "link.health", &())
        .await
        .expect_err("decode");
    assert_eq!(e.code(), "PAYLOAD_MISMATCH");

    // Integers a JavaScript peer would round are refused before sending.
    let e = c
        .rpc::<_, Value>("slow", "sleep", &(1u64 << 60))
        .await
        .expect_err("unsafe int");
    assert_eq!(e.code(), "PAYLOAD_NOT_SERIALIZABLE");

    c.stop().await.expect("stop");
    slow.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn dropping_an_rpc_future_cancels_the_remote_handler() {
    let server = server(HubOptions::new(SECRET)).await;
    let started = Arc::new(tokio::sync::Notify::new());
    let cancelled = Arc::new(AtomicBool::new(false));
    let (s2, c2) = (started.clone(), cancelled.clone());
    let worker = options("worker").handle("long", move |ctx, _: Value| {
        let (started, cancelled) = (s2.clone(), c2.clone());
        async move {
            started.notify_one();
            ctx.cancel_signal().cancelled().await;
            cancelled.store(true, Ordering::SeqCst);
            Ok::<_, RpcHandlerError>(())
        }
    });
    let worker = ready_client(&server, worker).await;
    let mut worker_events = worker.events();
    let caller = ready_client(&server, options("caller")).await;
    wait_for_peer(&caller, "worker").await;

    let call = caller
        .rpc::<_, Value>("worker", "long", &())
        .timeout(Duration::ZERO)
        .into_future();
    let running = tokio::spawn(call);
    within("handler start", started.notified()).await;
    running.abort();
    let _ = running.await;

    next_link_event(&mut worker_events, "rpc cancelled", |e| match e {
        ClientEvent::RpcCancelled { rpc_type, .. } if rpc_type == "long" => Some(()),
        _ => None,
    })
    .await;
    within("cancel signal", async {
        while !cancelled.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    caller.stop().await.expect("stop");
    worker.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn publish_subscribe_and_unsubscribe_on_drop() {
    let server = server(HubOptions::new(SECRET)).await;
    let mut hub_events = server.hub().events();
    let sub = ready_client(&server, options("sub")).await;
    let publisher = ready_client(&server, options("pub")).await;

    let mut s1 = sub.subscribe("jobs.done").await.expect("subscribe");
    let mut s2 = sub.subscribe("jobs.done").await.expect("subscribe twice");
    next_hub_event(&mut hub_events, "topic.subscribe", |e| match e {
        link_tokio::HubEvent::TopicSubscribe { kind, topic, .. }
            if kind == "sub" && topic == "jobs.done" =>
        {
            Some(())
        }
        _ => None,
    })
    .await;

    publisher
        .publish("jobs.done", &json!({"id": 42}))
        .await
        .expect("publish");
    for s in [&mut s1, &mut s2] {
        let m = within("message", s.next()).await.expect("a message");
        assert_eq!(m.topic, "jobs.done");
        assert_eq!(m.from.as_deref(), Some("pub"));
        assert_eq!(m.payload_as::<Value>().expect("json"), json!({"id": 42}));
    }

    // Invalid topics are refused at the API.
    let e = sub
        .subscribe("bad topic!")
        .await
        .expect_err("invalid topic");
    assert_eq!(e.code(), "INVALID_TOPIC");

    // Dropping one subscription keeps the hub subscription; dropping the last removes it.
    drop(s1);
    drop(s2);
    next_hub_event(&mut hub_events, "topic.unsubscribe", |e| match e {
        link_tokio::HubEvent::TopicUnsubscribe { kind, topic, .. }
            if kind == "sub" && topic == "jobs.done" =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    sub.stop().await.expect("stop");
    publisher.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn slow_subscriber_gets_an_event_not_unbounded_memory() {
    let server = server(HubOptions::new(SECRET)).await;
    let sub = ready_client(&server, options("sub").subscription_capacity(2)).await;
    let mut events = sub.events();
    let publisher = ready_client(&server, options("pub")).await;
    let mut s = sub.subscribe("firehose").await.expect("subscribe");
    // Prove the hub has the subscription before publishing.
    let mut hub_events = server.hub().events();
    let topics: Value = publisher
        .rpc("server", "link.topic.list", &json!({"topic": "firehose"}))
        .await
        .expect("topic list");
    if topics["subscribers"] != json!(["sub"]) {
        next_hub_event(&mut hub_events, "topic.subscribe", |e| match e {
            link_tokio::HubEvent::TopicSubscribe { topic, .. } if topic == "firehose" => Some(()),
            _ => None,
        })
        .await;
    }
    for i in 0..10 {
        publisher.publish("firehose", &i).await.expect("publish");
    }
    let dropped = next_event(&mut events, "slow subscriber", |e| match e {
        link_tokio::Event::SlowSubscriber { topic, dropped } if topic == "firehose" => {
            Some(*dropped)
        }
        _ => None,
    })
    .await;
    assert!(dropped >= 1);
    // The buffered ones are still there, in order.
    let first = within("first", s.next()).await.expect("message");
    assert_eq!(first.payload_as::<i32>().expect("int"), 0);
    sub.stop().await.expect("stop");
    publisher.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn direct_messages_arrive_as_events() {
    let server = server(HubOptions::new(SECRET)).await;
    let receiver = ready_client(&server, options("coordinator")).await;
    let mut events = receiver.events();
    let sender = ready_client(&server, options("worker")).await;
    wait_for_peer(&sender, "coordinator").await;
    sender
        .send(
            "coordinator",
            "job.progress",
            &json!({"jobId": 1, "pct": 50}),
        )
        .await
        .expect("send");
    let (from, data) = next_link_event(&mut events, "direct", |e| match e {
        ClientEvent::Direct {
            from,
            direct_type,
            data,
        } if direct_type == "job.progress" => {
            Some((from.clone(), data.as_ref().map(|d| d.to_serde())))
        }
        _ => None,
    })
    .await;
    assert_eq!(from.as_deref(), Some("worker"));
    assert_eq!(data, Some(json!({"jobId": 1, "pct": 50})));
    sender.stop().await.expect("stop");
    receiver.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn status_peers_and_health() {
    let server = server(HubOptions::new(SECRET)).await;
    let observer = ready_client(&server, options("observer")).await;
    let mut events = observer.events();
    let worker = ready_client(
        &server,
        options("worker")
            .name("worker-1")
            .status(|| json!({"state": "idle"})),
    )
    .await;

    let status = next_link_event(&mut events, "peer status", |e| match e {
        ClientEvent::PeerStatus { from, status, .. } if from == "worker" => {
            Some(status.as_ref().map(|s| s.to_serde()))
        }
        _ => None,
    })
    .await;
    assert_eq!(status, Some(json!({"state": "idle"})));
    let entry = observer
        .peer_status("worker")
        .await
        .expect("peer_status")
        .expect("a status");
    assert_eq!(
        entry.status.map(|s| s.to_serde()),
        Some(json!({"state": "idle"}))
    );

    let peers = observer.peers().await.expect("peers");
    let kinds: Vec<&str> = peers.iter().map(|p| p.kind.as_str()).collect();
    assert!(
        kinds.contains(&"observer") && kinds.contains(&"worker"),
        "{kinds:?}"
    );
    let w = peers
        .iter()
        .find(|p| p.kind == "worker")
        .expect("worker entry");
    assert_eq!(w.hello.name.to_string_lossy(), "worker-1");

    let h = worker.health().await.expect("health");
    assert!(h.connected && h.ready && !h.stopped);
    assert!(worker.is_ready());
    let features = worker.hub_features().await.expect("features");
    assert_eq!(features, vec!["topics".to_owned(), "direct".to_owned()]);

    let hub_health = server.hub().health().await.expect("hub health");
    assert_eq!(hub_health.peer_count, 2);
    let state = server.hub().state().await.expect("hub state");
    assert_eq!(state.peers.len(), 2);

    worker.stop().await.expect("stop");
    next_link_event(&mut events, "worker to leave", |e| match e {
        ClientEvent::PeerDisconnected(p) if p.kind == "worker" => Some(()),
        _ => None,
    })
    .await;
    let h = worker.health().await;
    assert!(h.is_err() || h.is_ok_and(|h| h.stopped));
    observer.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn catch_all_handler_sees_every_unhandled_type() {
    let server = server(HubOptions::new(SECRET)).await;
    let svc = options("svc").handle_all(|ctx, data: Value| async move {
        match ctx.rpc_type() {
            "a" | "b" => Ok(json!({ "type": ctx.rpc_type(), "data": data })),
            other => Err(RpcHandlerError::new(format!("Unknown rpcType: {other}"))
                .with_code("RPC_UNKNOWN_TYPE")),
        }
    });
    let svc = ready_client(&server, svc).await;
    let c = ready_client(&server, options("c")).await;
    wait_for_peer(&c, "svc").await;
    let r: Value = c.rpc("svc", "b", &5).await.expect("catch-all");
    assert_eq!(r, json!({"type": "b", "data": 5}));
    let e = c
        .rpc::<_, Value>("svc", "zzz", &())
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), "RPC_UNKNOWN_TYPE");
    c.stop().await.expect("stop");
    svc.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn a_slow_event_stream_lags_instead_of_growing() {
    let server = server(HubOptions::new(SECRET)).await;
    let c = ready_client(&server, options("c").event_capacity(2)).await;
    let mut events = c.events();
    // Each RPC completion is an event; nobody reads the stream meanwhile.
    for _ in 0..10 {
        let _: Value = c.rpc("server", "link.health", &()).await.expect("rpc");
    }
    let missed = next_event(&mut events, "lagged", |e| match e {
        link_tokio::Event::Lagged { missed } => Some(*missed),
        _ => None,
    })
    .await;
    assert!(missed >= 1);
    c.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn event_streams_end_when_the_link_stops() {
    let server = server(HubOptions::new(SECRET)).await;
    let c = ready_client(&server, options("c")).await;
    let events = c.events();
    c.stop().await.expect("stop");
    let all: Vec<_> = within("client stream end", events.collect()).await;
    assert!(
        all.iter()
            .any(|e| matches!(e, link_tokio::Event::Link(ClientEvent::Stopped))),
        "{all:?}"
    );
    assert!(c.events().next().await.is_none(), "no events after the end");
    let e = c.publish("t", &1).await.expect_err("stopped");
    assert_eq!(e.code(), "LINK_NOT_READY");
    server.stop().await.expect("server stops");
}
