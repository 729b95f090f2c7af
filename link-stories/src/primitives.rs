//! Every primitive end to end over real loopback WebSockets: RPC both ways and to the
//! hub, RPC errors and cancellation, publish/subscribe, direct messages, status and
//! peers, health.

use crate::{Kit, SECRET};
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use link_driver::RpcHandlerError;
use link_driver::client::Event;
use link_driver::hub::HubOptions;
use link_driver::server::Serve;
use link_sansio::client::ClientEvent;
use link_sansio::hub::HubEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

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

pub async fn rpc_both_ways_with_typed_payloads<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let adder = |name: &'static str| {
        k.options(name)
            .handle("math.add", |ctx, req: Add| async move {
                Ok::<_, RpcHandlerError>(Sum {
                    sum: req.a + req.b,
                    caller: ctx.from().map(str::to_owned),
                })
            })
    };
    let a = k.ready_client(&server, adder("alpha")).await;
    let b = k.ready_client(&server, adder("beta")).await;
    k.wait_for_peer(&a, "beta").await;
    k.wait_for_peer(&b, "alpha").await;

    let r: Sum = k
        .within(
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
    let r: Sum = k
        .within(
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
    let echoed: Value = k
        .within(
            "echo",
            a.rpc("beta", "echo", &json!({"x": [1, "two", null]}))
                .into_future(),
        )
        .await
        .expect("echo");
    assert_eq!(echoed, json!({"x": [1, "two", null]}));
    b.unhandle("echo");
    let err = k
        .within(
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

pub async fn rpc_to_the_hub_custom_and_built_in<R: Serve>() {
    let k = Kit::<R>::default();
    let hub = HubOptions::new(SECRET).handle("time", |ctx, _req: Value| async move {
        Ok::<_, RpcHandlerError>(json!({ "from": ctx.from(), "now": 1 }))
    });
    let server = k.server(hub).await;
    let c = k.ready_client(&server, k.options("caller")).await;

    let r: Value = k
        .within("server rpc", c.rpc("server", "time", &()).into_future())
        .await
        .expect("server rpc");
    assert_eq!(r, json!({ "from": "caller", "now": 1 }));

    let health: Value = k
        .within(
            "link.health",
            c.rpc("server", "link.health", &()).into_future(),
        )
        .await
        .expect("link.health");
    assert_eq!(health["peerCount"], json!(1));
    assert!(health["serverRpcInFlight"].as_f64().unwrap_or(0.0) >= 1.0);

    // A server handler added at runtime answers at once.
    server
        .hub()
        .handle("kv.get", |_ctx, key: String| async move {
            Ok::<_, RpcHandlerError>(format!("value of {key}"))
        });
    let v: String = k
        .within("kv.get", c.rpc("server", "kv.get", &"k1").into_future())
        .await
        .expect("kv.get");
    assert_eq!(v, "value of k1");

    let err = k
        .within(
            "unknown server type",
            c.rpc::<_, Value>("server", "nope", &()).into_future(),
        )
        .await
        .expect_err("unknown server rpc");
    assert_eq!(err.code(), "RPC_UNKNOWN_TYPE");
    c.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

pub async fn rpc_errors_timeouts_and_missing_targets<R: Serve>() {
    let k = Kit::<R>::default();
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
    let server = k.server(hub).await;
    let slow = k
        .options("slow")
        .handle("sleep", |ctx, _: Value| async move {
            ctx.cancel_signal().cancelled().await;
            Ok::<_, RpcHandlerError>(())
        });
    let slow = k.ready_client(&server, slow).await;
    let c = k.ready_client(&server, k.options("caller")).await;
    k.wait_for_peer(&c, "slow").await;

    let e = c
        .rpc::<_, Value>("server", "fail.exposed", &())
        .await
        .expect_err("exposed");
    assert_eq!(e.code(), "JOB_MISSING");
    assert_eq!(e.to_string(), "no such job");
    match &e {
        link_driver::Error::Rpc(r) => {
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

    let call = c
        .rpc::<_, Value>("slow", "sleep", &())
        .timeout(Duration::from_millis(100))
        .into_future();
    let e = k.within("timeout", call).await.expect_err("timeout");
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

pub async fn dropping_an_rpc_future_cancels_the_remote_handler<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let started = Arc::new(Notify::new());
    let cancelled = Arc::new(Notify::new());
    let (s2, c2) = (started.clone(), cancelled.clone());
    let worker = k.options("worker").handle("long", move |ctx, _: Value| {
        let (started, cancelled) = (s2.clone(), c2.clone());
        async move {
            started.notify_one();
            ctx.cancel_signal().cancelled().await;
            cancelled.notify_one();
            Ok::<_, RpcHandlerError>(())
        }
    });
    let worker = k.ready_client(&server, worker).await;
    let mut worker_events = worker.events();
    let caller = k.ready_client(&server, k.options("caller")).await;
    k.wait_for_peer(&caller, "worker").await;

    // Run the call until the handler has started, then drop it (boxed, so that
    // dropping the handle drops the future itself).
    let call = Box::pin(
        caller
            .rpc::<_, Value>("worker", "long", &())
            .timeout(Duration::ZERO)
            .into_future(),
    );
    let handler_started = std::pin::pin!(started.notified());
    match k
        .within("handler start", select(call, handler_started))
        .await
    {
        Either::Left((r, _)) => panic!("the call ended first: {r:?}"),
        Either::Right(((), call)) => drop(call),
    }

    k.next_link_event(&mut worker_events, "rpc cancelled", |e| match e {
        ClientEvent::RpcCancelled { rpc_type, .. } if rpc_type == "long" => Some(()),
        _ => None,
    })
    .await;
    k.within("cancel signal", cancelled.notified()).await;
    caller.stop().await.expect("stop");
    worker.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

pub async fn publish_subscribe_and_unsubscribe_on_drop<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let mut hub_events = server.hub().events();
    let sub = k.ready_client(&server, k.options("sub")).await;
    let publisher = k.ready_client(&server, k.options("pub")).await;

    let mut s1 = sub.subscribe("jobs.done").await.expect("subscribe");
    let mut s2 = sub.subscribe("jobs.done").await.expect("subscribe twice");
    k.next_hub_event(&mut hub_events, "topic.subscribe", |e| match e {
        HubEvent::TopicSubscribe { kind, topic, .. } if kind == "sub" && topic == "jobs.done" => {
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
        let m = k.within("message", s.next()).await.expect("a message");
        assert_eq!(m.topic, "jobs.done");
        assert_eq!(m.from.as_deref(), Some("pub"));
        assert_eq!(m.payload_as::<Value>().expect("json"), json!({"id": 42}));
    }

    // A burst whose frames add up to many times the hub's write buffer, with single
    // frames larger than it, arrives whole and in order.
    let sizes: Vec<usize> = (0..60).map(|i| [10, 1_000, 40_000][i % 3]).collect();
    for (i, &size) in sizes.iter().enumerate() {
        publisher
            .publish("jobs.done", &json!({"i": i, "fill": "f".repeat(size)}))
            .await
            .expect("publish");
    }
    for (i, &size) in sizes.iter().enumerate() {
        let m = k
            .within("burst message", s1.next())
            .await
            .expect("a message");
        let got = m.payload_as::<Value>().expect("json");
        assert_eq!(got["i"], json!(i), "message {i} out of order");
        assert_eq!(
            got["fill"].as_str().map(str::len),
            Some(size),
            "message {i}"
        );
        let _ = k.within("burst copy", s2.next()).await.expect("a copy");
    }

    // Invalid topics are refused at the API.
    let e = sub
        .subscribe("bad topic!")
        .await
        .expect_err("invalid topic");
    assert_eq!(e.code(), "INVALID_TOPIC");

    // Dropping the last subscription of a topic unsubscribes at the hub.
    drop(s1);
    drop(s2);
    k.next_hub_event(&mut hub_events, "topic.unsubscribe", |e| match e {
        HubEvent::TopicUnsubscribe { kind, topic, .. } if kind == "sub" && topic == "jobs.done" => {
            Some(())
        }
        _ => None,
    })
    .await;
    sub.stop().await.expect("stop");
    publisher.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

/// Once `subscribe()` has returned on a ready link, the hub has registered the
/// subscription: a publish made right after it, by another peer, always arrives.
pub async fn a_publish_right_after_subscribe_returns_arrives<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let sub = k.ready_client(&server, k.options("sub")).await;
    let publisher = k.ready_client(&server, k.options("pub")).await;
    for round in 0..20 {
        let topic = format!("fresh.{round}");
        let mut s = sub.subscribe(&topic).await.expect("subscribe");
        publisher.publish(&topic, &round).await.expect("publish");
        let m = k
            .within("the first publish", s.next())
            .await
            .expect("message");
        assert_eq!(m.payload_as::<u32>().expect("a number"), round);
    }
    sub.stop().await.expect("stop");
    publisher.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

pub async fn slow_subscriber_gets_an_event_not_unbounded_memory<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let sub = k
        .ready_client(&server, k.options("sub").subscription_capacity(2))
        .await;
    let mut events = sub.events();
    let publisher = k.ready_client(&server, k.options("pub")).await;
    let mut hub_events = server.hub().events();
    let mut s = sub.subscribe("firehose").await.expect("subscribe");
    // Prove the hub has the subscription before publishing.
    let topics: Value = publisher
        .rpc("server", "link.topic.list", &json!({"topic": "firehose"}))
        .await
        .expect("topic list");
    if topics["subscribers"] != json!(["sub"]) {
        k.next_hub_event(&mut hub_events, "topic.subscribe", |e| match e {
            HubEvent::TopicSubscribe { topic, .. } if topic == "firehose" => Some(()),
            _ => None,
        })
        .await;
    }
    for i in 0..10 {
        publisher.publish("firehose", &i).await.expect("publish");
    }
    let dropped = k
        .next_event(&mut events, "slow subscriber", |e| match e {
            Event::SlowSubscriber { topic, dropped } if topic == "firehose" => Some(*dropped),
            _ => None,
        })
        .await;
    assert!(dropped >= 1);
    // The buffered ones are still there, in order.
    let first = k.within("first", s.next()).await.expect("message");
    assert_eq!(first.payload_as::<i32>().expect("int"), 0);
    sub.stop().await.expect("stop");
    publisher.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

pub async fn direct_messages_arrive_as_events<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let receiver = k.ready_client(&server, k.options("coordinator")).await;
    let mut events = receiver.events();
    let sender = k.ready_client(&server, k.options("worker")).await;
    k.wait_for_peer(&sender, "coordinator").await;
    sender
        .send(
            "coordinator",
            "job.progress",
            &json!({"jobId": 1, "pct": 50}),
        )
        .await
        .expect("send");
    let (from, data) = k
        .next_link_event(&mut events, "direct", |e| match e {
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

pub async fn status_peers_and_health<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let observer = k.ready_client(&server, k.options("observer")).await;
    let mut events = observer.events();
    let worker = k
        .ready_client(
            &server,
            k.options("worker")
                .name("worker-1")
                .status(|| json!({"state": "idle"})),
        )
        .await;

    let status = k
        .next_link_event(&mut events, "peer status", |e| match e {
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
    k.next_link_event(&mut events, "worker to leave", |e| match e {
        ClientEvent::PeerDisconnected(p) if p.kind == "worker" => Some(()),
        _ => None,
    })
    .await;
    let h = worker.health().await;
    assert!(h.is_err() || h.is_ok_and(|h| h.stopped));
    observer.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

pub async fn catch_all_handler_sees_every_unhandled_type<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let svc = k.options("svc").handle_all(|ctx, data: Value| async move {
        match ctx.rpc_type() {
            "a" | "b" => Ok(json!({ "type": ctx.rpc_type(), "data": data })),
            other => Err(RpcHandlerError::new(format!("Unknown rpcType: {other}"))
                .with_code("RPC_UNKNOWN_TYPE")),
        }
    });
    let svc = k.ready_client(&server, svc).await;
    let c = k.ready_client(&server, k.options("c")).await;
    k.wait_for_peer(&c, "svc").await;
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

pub async fn a_slow_event_stream_lags_instead_of_growing<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let c = k
        .ready_client(&server, k.options("c").event_capacity(2))
        .await;
    let mut events = c.events();
    // Each RPC completion is an event; nobody reads the stream meanwhile.
    for _ in 0..10 {
        let _: Value = c.rpc("server", "link.health", &()).await.expect("rpc");
    }
    let missed = k
        .next_event(&mut events, "lagged", |e| match e {
            Event::Lagged { missed } => Some(*missed),
            _ => None,
        })
        .await;
    assert!(missed >= 1);
    c.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

pub async fn event_streams_end_when_the_link_stops<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let c = k.ready_client(&server, k.options("c")).await;
    let events = c.events();
    c.stop().await.expect("stop");
    let all: Vec<_> = k.within("client stream end", events.collect()).await;
    assert!(
        all.iter()
            .any(|e| matches!(e, Event::Link(ClientEvent::Stopped))),
        "{all:?}"
    );
    assert!(c.events().next().await.is_none(), "no events after the end");
    let e = c.publish("t", &1).await.expect_err("stopped");
    assert_eq!(e.code(), "LINK_NOT_READY");
    server.stop().await.expect("server stops");
}
