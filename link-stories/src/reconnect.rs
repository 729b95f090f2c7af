//! The hub goes away abruptly (every socket dropped without a close frame, the
//! listener closed) and comes back on the same port: clients return by themselves,
//! subscriptions are replayed, publishes queued during the outage are delivered, and
//! RPCs pending at the time of the loss are rejected with `RPC_DISCONNECT`.

use crate::{Kit, SECRET};
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use link_driver::RpcHandlerError;
use link_driver::hub::HubOptions;
use link_driver::server::{HubServer, HubServerOptions, Serve};
use link_sansio::client::ClientEvent;
use link_sansio::hub::HubEvent;
use serde_json::{Value, json};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

async fn start_hub<R: Serve>(port: u16) -> HubServer {
    HubServerOptions::new(HubOptions::<R>::new(SECRET))
        .host("127.0.0.1")
        .port(port)
        .handle_signals(false)
        .start()
        .await
        .expect("hub starts")
}

/// Drop every socket without a close frame, then close the listener.
async fn kill_hub(server: HubServer) {
    server.hub().terminate_all().await.expect("terminate");
    server.stop().await.expect("listener closed");
}

pub async fn clients_survive_a_hub_restart_on_the_same_port<R: Serve>() {
    let k = Kit::<R>::default();
    let server = start_hub::<R>(0).await;
    let port = server.local_addr().port();
    let url = server.url();

    let started = Arc::new(Notify::new());
    let s2 = started.clone();
    let worker = k.options("worker").handle("hang", move |ctx, _: Value| {
        let started = s2.clone();
        async move {
            started.notify_one();
            ctx.cancel_signal().cancelled().await;
            Ok::<_, RpcHandlerError>(())
        }
    });
    let worker = worker.connect(&url).expect("worker");
    let sub = k.options("sub").connect(&url).expect("sub");
    // The publisher comes back well after the subscriber (2 s vs 50 ms backoff), so
    // its queued publish finds the subscription already replayed.
    let publisher = k
        .options("pub")
        .reconnect_initial(Duration::from_secs(2))
        .reconnect_max(Duration::from_secs(2))
        .connect(&url)
        .expect("pub");
    for c in [&worker, &sub, &publisher] {
        k.within("ready", c.ready()).await.expect("ready");
    }
    k.wait_for_peer(&publisher, "worker").await;
    let mut news = sub.subscribe("news").await.expect("subscribe");
    let mut pub_events = publisher.events();
    let mut sub_events = sub.events();

    // An RPC in flight when the hub dies.
    let pending = publisher
        .rpc::<_, Value>("worker", "hang", &())
        .timeout(Duration::ZERO)
        .into_future();
    let pending = std::pin::pin!(pending);
    let handler_started = std::pin::pin!(started.notified());
    let pending = match k
        .within("handler start", select(pending, handler_started))
        .await
    {
        Either::Left((r, _)) => panic!("the call ended first: {r:?}"),
        Either::Right(((), pending)) => pending,
    };

    kill_hub(server).await;

    let err = k
        .within("pending rpc", pending)
        .await
        .expect_err("rejected");
    assert_eq!(err.code(), "RPC_DISCONNECT");
    k.next_link_event(&mut pub_events, "publisher disconnect", |e| match e {
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

    let server = start_hub::<R>(port).await;
    let mut hub_events = server.hub().events();
    k.next_link_event(&mut sub_events, "subscriber ready again", |e| match e {
        ClientEvent::Ready { .. } => Some(()),
        _ => None,
    })
    .await;
    let topics: Value = k
        .within(
            "topic list",
            sub.rpc("server", "link.topic.list", &json!({"topic": "news"}))
                .into_future(),
        )
        .await
        .expect("topic list");
    if topics["subscribers"] != json!(["sub"]) {
        k.next_hub_event(&mut hub_events, "subscription replayed", |e| match e {
            HubEvent::TopicSubscribe { kind, topic, .. } if kind == "sub" && topic == "news" => {
                Some(())
            }
            _ => None,
        })
        .await;
    }

    let m = k
        .within("queued message", news.next())
        .await
        .expect("message after restart");
    assert_eq!(m.from.as_deref(), Some("pub"));
    assert_eq!(m.payload_as::<Value>().expect("json"), json!({"n": 1}));

    // And everything works again, both ways.
    k.within("publisher ready", publisher.ready())
        .await
        .expect("ready");
    k.wait_for_peer(&publisher, "worker").await;
    let e = publisher
        .rpc::<_, Value>("worker", "nope", &())
        .await
        .expect_err("unknown type");
    assert_eq!(e.code(), "RPC_UNKNOWN_TYPE");

    for c in [&worker, &sub, &publisher] {
        c.stop().await.expect("stop");
    }
    server.stop().await.expect("hub 2 stops");
}
