//! Clients on two different runtimes talking through one hub (whichever runtime
//! runs it): RPC both ways, publish/subscribe both ways, a direct message.

use crate::Kit;
use futures_util::StreamExt;
use link_driver::RpcHandlerError;
use link_driver::runtime::Runtime;
use link_sansio::client::ClientEvent;
use serde_json::{Value, json};
use std::future::IntoFuture;

/// `url` is a hub with the shared [`crate::SECRET`]; `A` and `B` are the two clients'
/// runtimes (both must be usable from the calling thread).
pub async fn clients_of_two_runtimes_talk<A, B>(url: &str)
where
    A: Runtime + Default,
    B: Runtime + Default,
{
    let (ka, kb) = (Kit::<A>::default(), Kit::<B>::default());
    let echo = |kind: &'static str| {
        move |ctx: link_driver::client::RpcContext, v: Value| async move {
            Ok::<_, RpcHandlerError>(json!({ "by": kind, "from": ctx.from(), "v": v }))
        }
    };
    let a = ka
        .options("side-a")
        .handle("echo", echo("side-a"))
        .connect(url)
        .expect("a");
    let b = kb
        .options("side-b")
        .handle("echo", echo("side-b"))
        .connect(url)
        .expect("b");
    ka.within("a ready", a.ready()).await.expect("a ready");
    kb.within("b ready", b.ready()).await.expect("b ready");
    ka.wait_for_peer(&a, "side-b").await;
    kb.wait_for_peer(&b, "side-a").await;

    let r: Value = ka
        .within("a→b", a.rpc("side-b", "echo", &1).into_future())
        .await
        .expect("rpc a→b");
    assert_eq!(r, json!({ "by": "side-b", "from": "side-a", "v": 1 }));
    let r: Value = kb
        .within("b→a", b.rpc("side-a", "echo", &2).into_future())
        .await
        .expect("rpc b→a");
    assert_eq!(r, json!({ "by": "side-a", "from": "side-b", "v": 2 }));

    let mut on_a = a.subscribe("mixed.news").await.expect("subscribe a");
    let mut on_b = b.subscribe("mixed.news").await.expect("subscribe b");
    // Each side proves its subscription reached the hub before the other publishes.
    for (c, who) in [(&a, "side-a"), (&b, "side-b")] {
        ka.within("subscription at the hub", async {
            loop {
                let t: Value = c
                    .rpc("server", "link.topic.list", &json!({"topic": "mixed.news"}))
                    .await
                    .expect("topic list");
                if t["subscribers"]
                    .as_array()
                    .is_some_and(|s| s.contains(&json!(who)))
                {
                    break;
                }
            }
        })
        .await;
    }
    a.publish("mixed.news", &"from a").await.expect("publish a");
    b.publish("mixed.news", &"from b").await.expect("publish b");
    // A publisher does not hear itself: each side gets the other's message.
    let m = ka
        .within("b's message on a", on_a.next())
        .await
        .expect("message");
    assert_eq!(
        (m.from.as_deref(), m.payload_as::<String>().ok()),
        (Some("side-b"), Some("from b".into()))
    );
    let m = kb
        .within("a's message on b", on_b.next())
        .await
        .expect("message");
    assert_eq!(
        (m.from.as_deref(), m.payload_as::<String>().ok()),
        (Some("side-a"), Some("from a".into()))
    );

    let mut b_events = b.events();
    a.send("side-b", "note", &json!({"hi": true}))
        .await
        .expect("send");
    let from = kb
        .next_link_event(&mut b_events, "direct", |e| match e {
            ClientEvent::Direct {
                from, direct_type, ..
            } if direct_type == "note" => Some(from.clone()),
            _ => None,
        })
        .await;
    assert_eq!(from.as_deref(), Some("side-a"));

    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
}

/// [`clients_of_two_runtimes_talk`] through a hub server on runtime `H`.
pub async fn through_a_hub_on<H, A, B>()
where
    H: link_driver::server::Serve,
    A: Runtime + Default,
    B: Runtime + Default,
{
    let hub = link_driver::hub::HubOptions::<H>::new(crate::SECRET);
    let server = Kit::<H>::default().server(hub).await;
    clients_of_two_runtimes_talk::<A, B>(&server.url()).await;
    server.stop().await.expect("hub stops");
}
