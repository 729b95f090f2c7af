//! A hub attached to the application's own listener with `accept` (the counterpart
//! of link-tokio's axum mount): every connection the application hands over becomes
//! a hub connection after the WebSocket handshake.

use futures_util::future::{Either, select};
use link_async_std::{DefaultRuntime, HubOptions, Runtime, block_on};
use link_stories::{Kit, SECRET};

#[test]
fn hub_attached_to_an_application_listener() {
    block_on(async {
        let k = Kit::<DefaultRuntime>::default();
        let hub = HubOptions::new(SECRET).build();
        let listener = async_net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("ws://{}/app/link", listener.local_addr().expect("addr"));
        let app_hub = hub.clone();
        // The application's accept loop, next to the story.
        let app = async move {
            loop {
                let (stream, remote) = listener.accept().await.expect("accept");
                let hub = app_hub.clone();
                DefaultRuntime::default().spawn(async move {
                    link_async_std::ws::accept(&hub, stream, Some(remote))
                        .await
                        .expect("websocket handshake");
                });
            }
        };
        let story = async {
            let a = k.options("a").connect(&url).expect("a");
            let b = k.options("b").connect(&url).expect("b");
            k.within("a ready", a.ready()).await.expect("ready");
            k.within("b ready", b.ready()).await.expect("ready");
            k.wait_for_peer(&a, "b").await;
            assert_eq!(hub.health().await.expect("health").peer_count, 2);
            let r: serde_json::Value = a.rpc("server", "link.health", &()).await.expect("rpc");
            assert_eq!(r["peerCount"], serde_json::json!(2));
            a.stop().await.expect("stop");
            b.stop().await.expect("stop");
        };
        match select(std::pin::pin!(app), std::pin::pin!(story)).await {
            Either::Left(((), _)) => unreachable!("the accept loop never ends"),
            Either::Right(((), _)) => {}
        }
    });
}
