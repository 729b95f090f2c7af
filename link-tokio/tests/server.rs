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
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
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
