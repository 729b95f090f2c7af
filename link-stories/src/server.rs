//! `HubServer`: HTTP routes (`/health`, opt-in `/state`, user routes, 404), upgrades
//! only at the configured path, the frame size cap, graceful shutdown with clients
//! connected (and its `on_shutdown` hook).

use crate::{Kit, SECRET};
use link_driver::client::Event;
use link_driver::hub::HubOptions;
use link_driver::server::{HubServerOptions, Serve};
use link_sansio::client::ClientEvent;
use link_sansio::hub::HubEvent;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `routes` must answer `GET /health` with `user health wins` and `GET /hello` with
/// `hi` (both `200`, plain text): each adapter builds them with its own route type.
pub async fn http_routes_health_state_user_routes_and_404<R: Serve>(routes: R::Routes) {
    let k = Kit::<R>::default();
    let opts = HubServerOptions::new(HubOptions::new(SECRET))
        .state_route(true)
        .extra_state(|| json!({ "kvKeys": 42 }))
        .routes(routes);
    let server = k.server_with(opts).await;
    let c = k.ready_client(&server, k.options("svc")).await;
    let addr = server.local_addr();

    let (status, body) = k.http(addr, "GET", "/hello").await;
    assert_eq!((status, body.as_str()), (200, "hi"));
    let (status, body) = k.http(addr, "GET", "/health").await;
    assert_eq!((status, body.as_str()), (200, "user health wins"));

    let (status, body) = k.http(addr, "GET", "/state/").await;
    assert_eq!(status, 200);
    assert!(body.contains('\n'), "pretty-printed: {body}");
    let state: Value = serde_json::from_str(&body).expect("state json");
    assert_eq!(state["kvKeys"], json!(42));
    assert_eq!(state["peers"][0]["kind"], json!("svc"));
    assert!(state["lastStatus"].is_object());

    let (status, body) = k.http(addr, "POST", "/nowhere?x=1").await;
    assert_eq!((status, body.as_str()), (404, "not found"));
    c.stop().await.expect("stop");
    server.stop().await.expect("server stops");

    // Defaults: /health on (any method, trailing slash and query ignored), /state off.
    let server = k.server(HubOptions::new(SECRET)).await;
    let (status, body) = k
        .http(server.local_addr(), "HEAD", "/health/?probe=1")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = k.http(server.local_addr(), "GET", "/health").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).expect("health json");
    assert_eq!(health["ok"], json!(true));
    assert!(health["now"].as_f64().is_some());
    assert_eq!(health["hub"]["peerCount"], json!(0));
    let (status, _) = k.http(server.local_addr(), "GET", "/state").await;
    assert_eq!(status, 404);
    server.stop().await.expect("server stops");
}

pub async fn upgrades_only_at_the_configured_path_and_frames_are_capped<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k
        .server_with(
            HubServerOptions::new(HubOptions::new(SECRET).max_message_bytes(64 * 1024))
                .path("/link"),
        )
        .await;
    let base = server.url();

    // Wrong path: the upgrade is refused, the client keeps retrying, never ready.
    let lost = k
        .options("lost")
        .connect(format!("{base}/elsewhere"))
        .expect("starts");
    let mut lost_events = lost.events();
    k.next_event(&mut lost_events, "upgrade refused", |e| match e {
        Event::TransportError { .. } => Some(()),
        _ => None,
    })
    .await;
    assert!(!lost.is_ready());
    lost.stop_now().await.expect("stop");

    // The configured path, with a trailing slash and a query string.
    let a = k
        .options("a")
        .connect(format!("{base}/link/?v=1"))
        .expect("starts");
    k.within("ready at /link", a.ready()).await.expect("ready");
    let mut a_events = a.events();

    // Over the hub's 64 KiB cap: the hub closes the socket with 1009 and the client
    // reconnects.
    let big = "x".repeat(100 * 1024);
    let _ = a.publish("big", &big).await;
    let code = k
        .next_link_event(&mut a_events, "1009 close", |e| match e {
            ClientEvent::Disconnected(d) => Some(d.code),
            _ => None,
        })
        .await;
    assert_eq!(code, Some(1009));
    k.within("ready again", a.ready())
        .await
        .expect("ready again");
    a.stop_now().await.expect("stop");
    server.stop().await.expect("server stops");
}

pub async fn graceful_shutdown_with_clients_connected<R: Serve>() {
    let k = Kit::<R>::default();
    let hook_ran = Arc::new(AtomicBool::new(false));
    let h = hook_ran.clone();
    let server = k
        .server_with(
            HubServerOptions::new(HubOptions::new(SECRET))
                .drain_delay(Duration::from_millis(500))
                .on_shutdown(move || async move { h.store(true, Ordering::SeqCst) }),
        )
        .await;
    let mut hub_events = server.hub().events();
    let clients = [
        k.ready_client(&server, k.options("one")).await,
        k.ready_client(&server, k.options("two")).await,
        k.ready_client(&server, k.options("three")).await,
    ];
    let mut events: Vec<_> = clients.iter().map(|c| c.events()).collect();

    k.within("shutdown", server.stop())
        .await
        .expect("graceful stop");
    assert!(hook_ran.load(Ordering::SeqCst), "on_shutdown ran");
    assert!(server.is_stopping());
    k.within("wait", server.wait())
        .await
        .expect("wait after stop");

    for ev in &mut events {
        let d = k
            .next_link_event(ev, "disconnect", |e| match e {
                ClientEvent::Disconnected(d) => Some(d.clone()),
                _ => None,
            })
            .await;
        assert!(
            d.will_reconnect,
            "a hub shutdown is not a displacement: {d:?}"
        );
    }
    k.next_hub_event(&mut hub_events, "drained", |e| match e {
        HubEvent::Drained => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(server.hub().connection_count().await.unwrap_or(0), 0);
    // The port is closed: nothing answers any more (a refused loopback connect
    // returns at once).
    assert!(std::net::TcpStream::connect(server.local_addr()).is_err());
    for c in &clients {
        assert!(!c.is_ready());
        c.stop_now().await.expect("stop");
    }
}

/// A client that sends half an HTTP request head and then nothing is cut off after
/// `http_head_timeout`, while complete requests on other connections are answered.
pub async fn half_sent_request_heads_are_closed_after_the_head_timeout<R: Serve>() {
    use std::io::{Read, Write};
    let k = Kit::<R>::default();
    let server = k
        .server_with(
            HubServerOptions::new(HubOptions::new(SECRET))
                .http_head_timeout(Duration::from_millis(300)),
        )
        .await;
    let addr = server.local_addr();
    // A blocking socket on a thread of its own: how long until the server closes it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = (|| -> std::io::Result<(Duration, usize)> {
            let mut s = std::net::TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let started = std::time::Instant::now();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")?;
            let mut buf = Vec::new();
            // Ends when the server closes (or errors on a reset, or the 10 s read timeout).
            let read = s.read_to_end(&mut buf).unwrap_or(0);
            Ok((started.elapsed(), read))
        })();
        let _ = tx.send(result);
    });
    // Meanwhile, whole requests are served.
    let (status, _) = k.http(addr, "GET", "/health").await;
    assert_eq!(status, 200);
    let (held, _) = k
        .within("the half-sent request is closed", rx)
        .await
        .expect("slow client thread")
        .expect("slow client socket");
    assert!(
        held >= Duration::from_millis(250) && held < Duration::from_secs(5),
        "a half-sent request head was held for {held:?}"
    );
    server.stop().await.expect("stop");
}
