//! The hub is killed (its whole runtime dropped: sockets vanish without close frames)
//! and restarted on the same port: clients come back by themselves, subscriptions are
//! replayed, publishes queued during the outage are delivered, and RPCs pending at the
//! time of the loss are rejected with `RPC_DISCONNECT`.

mod common;

use common::*;
use futures_util::StreamExt;
use link_tokio::{ClientEvent, HubEvent, HubOptions, HubServer, HubServerOptions, RpcHandlerError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A hub server in its own runtime, so that dropping the runtime kills every task.
fn hub_in_own_runtime(port: u16) -> (tokio::runtime::Runtime, HubServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(
            HubServerOptions::new(HubOptions::new(SECRET))
                .host("127.0.0.1")
                .port(port)
                .handle_signals(false)
                .start(),
        )
        .expect("hub starts");
    (rt, server)
}

async fn start_hub(port: u16) -> (tokio::runtime::Runtime, HubServer) {
    tokio::task::spawn_blocking(move || hub_in_own_runtime(port))
        .await
        .expect("hub thread")
}

async fn kill_hub(rt: tokio::runtime::Runtime) {
    tokio::task::spawn_blocking(move || rt.shutdown_timeout(Duration::from_secs(5)))
        .await
        .expect("runtime shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_survive_a_hub_restart_on_the_same_port() {
    let (rt, server) = start_hub(0).await;
    let port = server.local_addr().port();
    let url = server.url();

    let started = Arc::new(tokio::sync::Notify::new());
    let s2 = started.clone();
    let worker = options("worker").handle("hang", move |ctx, _: Value| {
        let started = s2.clone();
        async move {
            started.notify_one();
            ctx.cancel_signal().cancelled().await;
            Ok::<_, RpcHandlerError>(())
        }
    });
    let worker = worker.connect(&url).expect("worker");
    let sub = options("sub").connect(&url).expect("sub");
    // The publisher comes back well after the subscriber (2 s vs 50 ms backoff), so
    // its queued publish finds the subscription already replayed.
    let publisher = options("pub")
        .reconnect_initial(Duration::from_secs(2))
        .reconnect_max(Duration::from_secs(2))
        .connect(&url)
        .expect("pub");
    for c in [&worker, &sub, &publisher] {
        within("ready", c.ready()).await.expect("ready");
    }
    wait_for_peer(&publisher, "worker").await;
    let mut news = sub.subscribe("news").await.expect("subscribe");
    let mut pub_events = publisher.events();
    let mut sub_events = sub.events();

    // An RPC in flight when the hub dies.
    let pending = tokio::spawn({
        let p = publisher.clone();
        async move {
            p.rpc::<_, Value>("worker", "hang", &())
                .timeout(Duration::ZERO)
                .await
        }
    });
    within("handler start", started.notified()).await;

    kill_hub(rt).await;

    let err = within("pending rpc", pending)
        .await
        .expect("task")
        .expect_err("rejected");
    assert_eq!(err.code(), "RPC_DISCONNECT");
    next_link_event(&mut pub_events, "publisher disconnect", |e| match e {
        ClientEvent::Disconnected(_) => Some(()),
        _ => None,
    })
    .await;
    assert!(!publisher.is_ready());

    // Published while the hub is down: queued in the outbox.
    publisher
        .publish("news", &json!({"n": 1}))
        .await
        .expect("queued publish");

    let (rt2, server2) = start_hub(port).await;
    let mut hub_events = server2.hub().events();
    next_link_event(&mut sub_events, "subscriber ready again", |e| match e {
        ClientEvent::Ready { .. } => Some(()),
        _ => None,
    })
    .await;
    let topics: Value = within(
        "topic list",
        sub.rpc("server", "link.topic.list", &json!({"topic": "news"}))
            .into_future(),
    )
    .await
    .expect("topic list");
    if topics["subscribers"] != json!(["sub"]) {
        next_hub_event(&mut hub_events, "subscription replayed", |e| match e {
            HubEvent::TopicSubscribe { kind, topic, .. } if kind == "sub" && topic == "news" => {
                Some(())
            }
            _ => None,
        })
        .await;
    }

    let m = within("queued message", news.next())
        .await
        .expect("message after restart");
    assert_eq!(m.from.as_deref(), Some("pub"));
    assert_eq!(m.payload_as::<Value>().expect("json"), json!({"n": 1}));

    // And everything works again, both ways.
    within("publisher ready", publisher.ready())
        .await
        .expect("ready");
    wait_for_peer(&publisher, "worker").await;
    let e = publisher
        .rpc::<_, Value>("worker", "nope", &())
        .await
        .expect_err("unknown type");
    assert_eq!(e.code(), "RPC_UNKNOWN_TYPE");

    for c in [&worker, &sub, &publisher] {
        c.stop().await.expect("stop");
    }
    let stop = server2.clone();
    tokio::task::spawn_blocking(move || {
        let _ = rt2.block_on(stop.stop());
        rt2.shutdown_timeout(Duration::from_secs(5));
    })
    .await
    .expect("hub 2 stops");
}
