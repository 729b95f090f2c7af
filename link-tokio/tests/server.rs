//! `HubServer`: HTTP routes (`/health`, opt-in `/state`, user routes, 404), upgrades
//! only at the configured path, the frame size cap, graceful shutdown with clients
//! connected (and its `on_shutdown` hook), and an axum router that mounts a hub.

mod common;

use common::*;
use link_tokio::ws::RouterExt;
use link_tokio::{ClientEvent, HubOptions, HubServerOptions};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[tokio::test]
async fn http_routes_health_state_user_routes_and_404() {
    let opts = HubServerOptions::new(HubOptions::new(SECRET))
        .state_route(true)
        .extra_state(|| json!({ "kvKeys": 42 }))
        .routes(
            axum::Router::new()
                .route(
                    "/health",
                    axum::routing::get(|| async { "user health wins" }),
                )
                .route("/hello", axum::routing::get(|| async { "hi" })),
        );
    let server = server_with(opts).await;
    let c = ready_client(&server, options("svc")).await;
    let addr = server.local_addr();

    let (status, body) = http(addr, "GET", "/hello").await;
    assert_eq!((status, body.as_str()), (200, "hi"));
    let (status, body) = http(addr, "GET", "/health").await;
    assert_eq!((status, body.as_str()), (200, "user health wins"));

    let (status, body) = http(addr, "GET", "/state/").await;
    assert_eq!(status, 200);
    assert!(body.contains('\n'), "pretty-printed: {body}");
    let state: Value = serde_json::from_str(&body).expect("state json");
    assert_eq!(state["kvKeys"], json!(42));
    assert_eq!(state["peers"][0]["kind"], json!("svc"));
    assert!(state["lastStatus"].is_object());

    let (status, body) = http(addr, "POST", "/nowhere?x=1").await;
    assert_eq!((status, body.as_str()), (404, "not found"));
    c.stop().await.expect("stop");
    server.stop().await.expect("server stops");

    // Defaults: /health on (any method, trailing slash and query ignored), /state off.
    let server = common::server(HubOptions::new(SECRET)).await;
    let (status, body) = http(server.local_addr(), "HEAD", "/health/?probe=1").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(server.local_addr(), "GET", "/health").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).expect("health json");
    assert_eq!(health["ok"], json!(true));
    assert!(health["now"].as_f64().is_some());
    assert_eq!(health["hub"]["peerCount"], json!(0));
    let (status, _) = http(server.local_addr(), "GET", "/state").await;
    assert_eq!(status, 404);
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn upgrades_only_at_the_configured_path_and_frames_are_capped() {
    let server = server_with(
        HubServerOptions::new(HubOptions::new(SECRET).max_message_bytes(64 * 1024)).path("/link"),
    )
    .await;
    let base = server.url();

    // Wrong path: the upgrade is refused, the client keeps retrying, never ready.
    let lost = options("lost")
        .connect(format!("{base}/elsewhere"))
        .expect("starts");
    let mut lost_events = lost.events();
    next_event(&mut lost_events, "upgrade refused", |e| match e {
        link_tokio::Event::TransportError { .. } => Some(()),
        _ => None,
    })
    .await;
    assert!(!lost.is_ready());
    lost.stop_now().await.expect("stop");

    // The configured path, with a trailing slash and a query string.
    let a = options("a")
        .connect(format!("{base}/link/?v=1"))
        .expect("starts");
    within("ready at /link", a.ready()).await.expect("ready");
    let mut a_events = a.events();

    // Over the hub's 64 KiB cap: the hub closes the socket with 1009 and the client
    // reconnects.
    let big = "x".repeat(100 * 1024);
    let _ = a.publish("big", &big).await;
    let code = next_link_event(&mut a_events, "1009 close", |e| match e {
        ClientEvent::Disconnected(d) => Some(d.code),
        _ => None,
    })
    .await;
    assert_eq!(code, Some(1009));
    within("ready again", a.ready()).await.expect("ready again");
    a.stop_now().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn graceful_shutdown_with_clients_connected() {
    let hook_ran = Arc::new(AtomicBool::new(false));
    let h = hook_ran.clone();
    let server = server_with(
        HubServerOptions::new(HubOptions::new(SECRET))
            .drain_delay(Duration::from_millis(500))
            .on_shutdown(move || async move { h.store(true, Ordering::SeqCst) }),
    )
    .await;
    let mut hub_events = server.hub().events();
    let clients = [
        ready_client(&server, options("one")).await,
        ready_client(&server, options("two")).await,
        ready_client(&server, options("three")).await,
    ];
    let mut events: Vec<_> = clients.iter().map(|c| c.events()).collect();

    within("shutdown", server.stop())
        .await
        .expect("graceful stop");
    assert!(hook_ran.load(Ordering::SeqCst), "on_shutdown ran");
    assert!(server.is_stopping());
    within("wait", server.wait())
        .await
        .expect("wait after stop");

    for ev in &mut events {
        let d = next_link_event(ev, "disconnect", |e| match e {
            ClientEvent::Disconnected(d) => Some(d.clone()),
            _ => None,
        })
        .await;
        assert!(
            d.will_reconnect,
            "a hub shutdown is not a displacement: {d:?}"
        );
    }
    next_hub_event(&mut hub_events, "drained", |e| match e {
        link_tokio::HubEvent::Drained => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(server.hub().connection_count().await.unwrap_or(0), 0);
    // The port is closed: nothing answers HTTP any more.
    assert!(
        tokio::net::TcpStream::connect(server.local_addr())
            .await
            .is_err()
    );
    for c in &clients {
        assert!(!c.is_ready());
        c.stop_now().await.expect("stop");
    }
}

#[tokio::test]
async fn hub_mounted_in_an_existing_axum_router() {
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
    let a = options("a").connect(&url).expect("a");
    let b = options("b").connect(&url).expect("b");
    within("a ready", a.ready()).await.expect("ready");
    within("b ready", b.ready()).await.expect("ready");
    let (status, body) = http(addr, "GET", "/").await;
    assert_eq!((status, body.as_str()), (200, "app"));
    assert_eq!(hub.health().await.expect("health").peer_count, 2);
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    serve.abort();
}

#[tokio::test]
async fn hub_attached_to_a_raw_tokio_tungstenite_socket() {
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
    let a = options("a")
        .handle("ping", |_ctx, _: Value| async move {
            Ok::<_, link_tokio::RpcHandlerError>("pong")
        })
        .connect(&url)
        .expect("a");
    let b = options("b").connect(&url).expect("b");
    within("a ready", a.ready()).await.expect("ready");
    within("b ready", b.ready()).await.expect("ready");
    wait_for_peer(&b, "a").await;
    let r: String = b.rpc("a", "ping", &()).await.expect("rpc");
    assert_eq!(r, "pong");
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    accepting.abort();
}
