//! The integration stories of link's async adapters, written once against
//! `link-driver` and generic over the runtime: every primitive end to end over real
//! loopback sockets, keys and ACLs, the hub server's routes and shutdown, reconnects
//! after a hub restart, wss, and clients of two runtimes on one hub. Each adapter's
//! `tests/` calls them under its own executor (and each feature of it).
//!
//! Waits are on the event that proves something happened, each bounded by [`WAIT`];
//! no story sleeps for a fixed time.

#![allow(clippy::unwrap_used, missing_docs)]

pub mod keys_acl;
pub mod mixed;
pub mod primitives;
pub mod reconnect;
pub mod server;
#[cfg(unix)]
pub mod signals;
pub mod tls;
pub mod transport;

use futures_util::StreamExt;
use link_driver::client::{Event, EventStream, LinkClient, LinkOptions};
use link_driver::hub::{HubEvents, HubOptions};
use link_driver::runtime::{Runtime, timeout};
use link_driver::server::{HubServer, HubServerOptions, Serve};
use link_sansio::client::ClientEvent;
use link_sansio::hub::HubEvent;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// Upper bound for any single wait.
pub const WAIT: Duration = Duration::from_secs(15);

/// The secret of the stories' shared-key hubs.
pub const SECRET: &str = "test-secret";

/// Await `fut` on runtime `R`'s timer, failing the story after [`WAIT`].
pub async fn within<R: Runtime + Default, T>(what: &str, fut: impl Future<Output = T>) -> T {
    match timeout(R::default().timer(Instant::now() + WAIT), fut).await {
        Some(v) => v,
        None => panic!("timed out waiting for {what}"),
    }
}

/// Client options on runtime `A` for `kind` with the shared secret and quick reconnects.
pub fn client_options<A: Runtime + Default>(kind: &str) -> LinkOptions<A> {
    LinkOptions::new()
        .kind(kind)
        .secret(SECRET)
        .reconnect_initial(Duration::from_millis(50))
        .reconnect_max(Duration::from_millis(200))
        .reconnect_jitter(0.0)
}

/// The stories' helpers on runtime `R`.
#[derive(Debug)]
pub struct Kit<R>(PhantomData<fn() -> R>);

impl<R> Default for Kit<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: Serve> Kit<R> {
    /// A hub server on an ephemeral loopback port, without signal handling.
    pub async fn server(&self, hub: HubOptions<R>) -> HubServer {
        self.server_with(HubServerOptions::new(hub)).await
    }

    /// [`Kit::server`] with more server options.
    pub async fn server_with(&self, opts: HubServerOptions<R>) -> HubServer {
        opts.host("127.0.0.1")
            .port(0)
            .handle_signals(false)
            .start()
            .await
            .expect("hub server starts")
    }

    /// A client connected to `server` and ready.
    pub async fn ready_client(&self, server: &HubServer, opts: LinkOptions<R>) -> LinkClient {
        let client = opts.connect(server.url()).expect("client starts");
        self.within("ready", client.ready()).await.expect("ready");
        client
    }
}

impl<R: Runtime + Default> Kit<R> {
    /// Await `fut`, failing the story after [`WAIT`].
    pub async fn within<T>(&self, what: &str, fut: impl Future<Output = T>) -> T {
        within::<R, T>(what, fut).await
    }

    /// Client options for `kind` ([`client_options`]).
    pub fn options(&self, kind: &str) -> LinkOptions<R> {
        client_options(kind)
    }

    /// The next client event matching `pick`.
    pub async fn next_event<T>(
        &self,
        events: &mut EventStream,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> T {
        self.within(what, async {
            while let Some(ev) = events.next().await {
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
        &self,
        events: &mut EventStream,
        what: &str,
        mut pick: impl FnMut(&ClientEvent) -> Option<T>,
    ) -> T {
        self.next_event(events, what, |e| match e {
            Event::Link(ev) => pick(ev),
            _ => None,
        })
        .await
    }

    /// The next hub event matching `pick`.
    pub async fn next_hub_event<T>(
        &self,
        events: &mut HubEvents,
        what: &str,
        mut pick: impl FnMut(&HubEvent) -> Option<T>,
    ) -> T {
        self.within(what, async {
            while let Some(ev) = events.next().await {
                if let link_driver::hub::Event::Hub(ev) = &ev
                    && let Some(v) = pick(ev)
                {
                    return v;
                }
            }
            panic!("hub event stream ended while waiting for {what}");
        })
        .await
    }

    /// Wait until `client` sees peer `kind`.
    pub async fn wait_for_peer(&self, client: &LinkClient, kind: &str) {
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
        self.next_link_event(&mut events, "peer to connect", |e| match e {
            ClientEvent::PeerConnected(p) if p.kind == kind => Some(()),
            _ => None,
        })
        .await;
    }

    /// A minimal HTTP/1.1 request over a fresh TCP connection: (status, body).
    pub async fn http(
        &self,
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
    ) -> (u16, String) {
        self.within("http response", http(addr, method, path)).await
    }
}

/// One HTTP/1.1 request with std's blocking socket on a thread of its own (no
/// runtime needed): (status, body).
pub async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = (|| -> std::io::Result<Vec<u8>> {
            let mut s = std::net::TcpStream::connect(addr)?;
            s.set_read_timeout(Some(WAIT))?;
            s.write_all(req.as_bytes())?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf)?;
            Ok(buf)
        })();
        let _ = tx.send(result);
    });
    let buf = rx.await.expect("http thread").expect("http exchange");
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
}
