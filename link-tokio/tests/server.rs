//! tokio-only ways to run a hub: mounted in an existing axum router, and attached to
//! raw sockets of your own tokio listener (the shared stories cover `HubServer`).

use link_stories::{Kit, SECRET};
use link_tokio::ws::RouterExt;
use link_tokio::{HubOptions, TokioRuntime};
use serde_json::Value;

#[tokio::test]
async fn hub_mounted_in_an_existing_axum_router() {
    let k = Kit::<TokioRuntime>::default();
    let hub = HubOptions::new(SECRET).build();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "app" }))
        .link_hub("/link", hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serve = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let url = format!("ws://{addr}/link");
    let a = k.options("a").connect(&url).expect("a");
    let b = k.options("b").connect(&url).expect("b");
    k.within("a ready", a.ready()).await.expect("ready");
    k.within("b ready", b.ready()).await.expect("ready");
    let (status, body) = k.http(addr, "GET", "/").await;
    assert_eq!((status, body.as_str()), (200, "app"));
    assert_eq!(hub.health().await.expect("health").peer_count, 2);
    // A drain closes peers as the reference's `hub.stop()` does, with a bare
    // `ws.close()`: the close frame (through axum) carries no code, seen as 1005.
    let mut a_events = a.events();
    let draining = tokio::spawn({
        let hub = hub.clone();
        async move { hub.drain().await }
    });
    let code = k
        .next_event(&mut a_events, "a is closed by the drain", |ev| match ev {
            link_tokio::Event::Link(link_tokio::ClientEvent::Disconnected(info)) => Some(info.code),
            _ => None,
        })
        .await;
    assert_eq!(code, Some(1005));
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    k.within("the drain ends", draining)
        .await
        .expect("drain task")
        .expect("drained");
    serve.abort();
}

#[tokio::test]
async fn hub_attached_to_a_raw_tokio_tungstenite_socket() {
    let k = Kit::<TokioRuntime>::default();
    let hub = HubOptions::new(SECRET).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let h = hub.clone();
    let accepting = tokio::spawn(async move {
        loop {
            let Ok((stream, remote)) = listener.accept().await else {
                return;
            };
            let h = h.clone();
            tokio::spawn(async move { link_tokio::ws::accept(&h, stream, Some(remote)).await });
        }
    });
    let url = format!("ws://{addr}");
    let a = k
        .options("a")
        .handle("ping", |_ctx, _: Value| async move {
            Ok::<_, link_tokio::RpcHandlerError>("pong")
        })
        .connect(&url)
        .expect("a");
    let b = k.options("b").connect(&url).expect("b");
    k.within("a ready", a.ready()).await.expect("ready");
    k.within("b ready", b.ready()).await.expect("ready");
    k.wait_for_peer(&b, "a").await;
    let r: String = b.rpc("a", "ping", &()).await.expect("rpc");
    assert_eq!(r, "pong");
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    accepting.abort();
}

/// A process that stops its link and exits at once (a worker on SIGTERM) must still
/// send its close frame: `stop()` returns only once it has gone out. Like the
/// reference's bare `ws.close()`, the frame carries no code, so the hub sees 1005
/// (without it, the hub would see the connection drop: 1006).
#[test]
fn stop_returns_after_the_close_frame_has_left() {
    let hub_rt = tokio::runtime::Runtime::new().expect("hub runtime");
    let k = Kit::<TokioRuntime>::default();
    let (server, mut events) = hub_rt.block_on(async {
        let server = k.server(HubOptions::new(SECRET)).await;
        let events = server.hub().events();
        (server, events)
    });
    let url = format!("ws://{}", server.local_addr());
    // The client lives on a runtime of its own, dropped right after `stop()` returns,
    // as it would be when `main` returns.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    client_rt.block_on(async {
        let client = k.options("leaver").connect(&url).expect("connect");
        k.within("ready", client.ready()).await.expect("ready");
        client.stop().await.expect("stop");
    });
    drop(client_rt);
    let code = hub_rt.block_on(k.next_hub_event(
        &mut events,
        "the hub sees the peer leave",
        |ev| match ev {
            link_tokio::HubEvent::PeerDisconnected { kind, code, .. } if kind == "leaver" => {
                Some(*code)
            }
            _ => None,
        },
    ));
    assert_eq!(code, Some(1005));
    drop(server);
}

/// The hub has no task of its own to stop: it lives while a handle or a socket does.
/// With every `Hub` handle dropped it keeps serving the sockets it has, and once the
/// last of them is gone it finishes, which ends its event streams.
#[tokio::test]
async fn a_hub_without_handles_serves_its_sockets_then_finishes() {
    use futures_util::StreamExt;
    use std::future::IntoFuture;
    let k = Kit::<TokioRuntime>::default();
    let hub = HubOptions::new(SECRET).build();
    let mut events = hub.events();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    // One socket, attached with the only other handle, which is dropped once the
    // socket is attached.
    let h = hub.clone();
    let accepting = tokio::spawn(async move {
        let (stream, remote) = listener.accept().await.expect("accept");
        let ws = tokio_tungstenite::accept_async(stream)
            .await
            .expect("upgrade");
        let served = h.attach(link_tokio::transport::WsTransport::new(ws), Some(remote));
        drop(h);
        served.await;
    });
    let client = k.options("last").connect(&url).expect("connect");
    k.within("ready", client.ready()).await.expect("ready");
    drop(hub);
    // Still served: the hub answers its built-in RPC.
    let health: Value = k
        .within(
            "rpc",
            client.rpc("server", "link.health", &()).into_future(),
        )
        .await
        .expect("health");
    assert_eq!(health["peerCount"], 1);
    client.stop().await.expect("stop");
    // Promptly: not at the core's next keepalive deadline, seconds later.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while events.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the hub's event stream did not end");
    k.within("the socket task ends", accepting)
        .await
        .expect("accept task");
}
