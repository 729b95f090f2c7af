//! Shared helpers for the loopback integration tests: a hub server on 127.0.0.1:0,
//! clients that connect to it, and waits on the event that proves something happened
//! (never a fixed sleep), each bounded by a generous timeout.

#![allow(dead_code)]

use futures_util::StreamExt;
use link_tokio::{
    ClientEvent, Event, EventStream, HubOptions, HubServer, HubServerOptions, HubStreamEvent,
    LinkClient, LinkOptions,
};
use std::future::Future;
use std::time::Duration;

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(15);

pub const SECRET: &str = "test-secret";

/// Await `fut`, failing the test after [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A hub server on an ephemeral loopback port, without signal handling.
pub async fn server(hub: HubOptions) -> HubServer {
    server_with(HubServerOptions::new(hub)).await
}

pub async fn server_with(opts: HubServerOptions) -> HubServer {
    opts.host("127.0.0.1")
        .port(0)
        .handle_signals(false)
        .start()
        .await
        .expect("hub server starts")
}

/// Client options for `kind` with the shared test secret and quick reconnects.
pub fn options(kind: &str) -> LinkOptions {
    LinkOptions::new()
        .kind(kind)
        .secret(SECRET)
        .reconnect_initial(Duration::from_millis(50))
        .reconnect_max(Duration::from_millis(200))
        .reconnect_jitter(0.0)
}

/// A client of `kind`, connected and ready.
pub async fn ready_client(server: &HubServer, opts: LinkOptions) -> LinkClient {
    let client = opts.connect(server.url()).expect("client starts");
    within("ready", client.ready()).await.expect("ready");
    client
}

/// The next event matching `pick`.
pub async fn next_event<T>(
    events: &mut EventStream,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    within(what, async {
        while let Some(ev) = events.next().await {
            if std::env::var_os("LINK_TEST_TRACE").is_some() {
                eprintln!("client event: {ev:?}");
            }
            if let Some(v) = pick(&ev) {
                return v;
            }
        }
        panic!("event stream ended while waiting for {what}");
    })
    .await
}

/// The next link event matching `pick`.
pub async fn next_link_event<T>(
    events: &mut EventStream,
    what: &str,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    next_event(events, what, |e| match e {
        Event::Link(ev) => pick(ev),
        _ => None,
    })
    .await
}

/// The next hub event matching `pick`.
pub async fn next_hub_event<T>(
    events: &mut link_tokio::HubEvents,
    what: &str,
    mut pick: impl FnMut(&link_tokio::HubEvent) -> Option<T>,
) -> T {
    within(what, async {
        while let Some(ev) = events.next().await {
            if std::env::var_os("LINK_TEST_TRACE").is_some() {
                eprintln!("hub event: {ev:?}");
            }
            if let HubStreamEvent::Hub(ev) = &ev
                && let Some(v) = pick(ev)
            {
                return v;
            }
        }
        panic!("hub event stream ended while waiting for {what}");
    })
    .await
}

/// Wait until the client sees peer `kind` in its peer list.
pub async fn wait_for_peer(client: &LinkClient, kind: &str) {
    let mut events = client.events();
    if client
        .peers()
        .await
        .expect("peers")
        .iter()
        .any(|p| p.kind == kind)
    {
        return;
    }
    next_link_event(&mut events, "peer to connect", |e| match e {
        ClientEvent::PeerConnected(p) if p.kind == kind => Some(()),
        _ => None,
    })
    .await;
}

/// A minimal HTTP/1.1 request over a fresh TCP connection: (status, body).
pub async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within("http response", async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let body = match text.find("\r\n\r\n") {
            Some(i) => text[i + 4..].to_owned(),
            None => String::new(),
        };
        (status, body)
    })
    .await
}
