//! The integration stories of link's async adapters, written once against
//! `link-driver` and generic over the runtime: every primitive end to end over real
//! loopback sockets, keys and ACLs, the hub server's routes and shutdown, reconnects
//! after a hub restart, wss, and clients of two runtimes on one hub. Each adapter's
//! `tests/` calls them under its own executor (and each feature of it).
//!
//! Waits are on the event that proves something happened, each bounded by [`WAIT`];
//! no story sleeps for a fixed time.

#![allow(clippy::unwrap_used, missing_docs)]

pub mod keepalive;
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

/// One `#[test]` per story on `runtime`, each run to completion by `block_on`.
/// `routes` must answer `GET /health` with `user health wins` and `GET /hello` with
/// `hi`; `usr1` is the runtime's name for SIGUSR1 (evaluated on Unix only).
#[macro_export]
macro_rules! stories {
    (runtime: $runtime:ty, block_on: $block_on:path, routes: $routes:expr, usr1: $usr1:expr $(,)?) => {
        use $crate::{keepalive, keys_acl, primitives, reconnect, server, tls, transport};

        #[test]
        fn rpc_both_ways_with_typed_payloads() {
            $block_on(primitives::rpc_both_ways_with_typed_payloads::<$runtime>());
        }
        #[test]
        fn rpc_to_the_hub_custom_and_built_in() {
            $block_on(primitives::rpc_to_the_hub_custom_and_built_in::<$runtime>());
        }
        #[test]
        fn rpc_errors_timeouts_and_missing_targets() {
            $block_on(primitives::rpc_errors_timeouts_and_missing_targets::<
                $runtime,
            >());
        }
        #[test]
        fn dropping_an_rpc_future_cancels_the_remote_handler() {
            $block_on(primitives::dropping_an_rpc_future_cancels_the_remote_handler::<$runtime>());
        }
        #[test]
        fn publish_subscribe_and_unsubscribe_on_drop() {
            $block_on(primitives::publish_subscribe_and_unsubscribe_on_drop::<
                $runtime,
            >());
        }
        #[test]
        fn a_publish_right_after_subscribe_returns_arrives() {
            $block_on(primitives::a_publish_right_after_subscribe_returns_arrives::<$runtime>());
        }
        #[test]
        fn slow_subscriber_gets_an_event_not_unbounded_memory() {
            $block_on(primitives::slow_subscriber_gets_an_event_not_unbounded_memory::<$runtime>());
        }
        #[test]
        fn direct_messages_arrive_as_events() {
            $block_on(primitives::direct_messages_arrive_as_events::<$runtime>());
        }
        #[test]
        fn status_peers_and_health() {
            $block_on(primitives::status_peers_and_health::<$runtime>());
        }
        #[test]
        fn catch_all_handler_sees_every_unhandled_type() {
            $block_on(primitives::catch_all_handler_sees_every_unhandled_type::<
                $runtime,
            >());
        }
        #[test]
        fn a_slow_event_stream_lags_instead_of_growing() {
            $block_on(primitives::a_slow_event_stream_lags_instead_of_growing::<
                $runtime,
            >());
        }
        #[test]
        fn event_streams_end_when_the_link_stops() {
            $block_on(primitives::event_streams_end_when_the_link_stops::<$runtime>());
        }
        #[test]
        fn binary_frames_are_treated_as_text_and_pings_are_answered() {
            $block_on(
                transport::binary_frames_are_treated_as_text_and_pings_are_answered::<$runtime>(),
            );
        }
        #[test]
        fn the_hub_terminates_a_peer_that_stops_answering_pings() {
            $block_on(
                keepalive::the_hub_terminates_a_peer_that_stops_answering_pings::<$runtime>(),
            );
        }
        #[test]
        fn a_client_whose_hub_stops_answering_pings_reconnects() {
            $block_on(keepalive::a_client_whose_hub_stops_answering_pings_reconnects::<$runtime>());
        }
        #[cfg(unix)]
        #[test]
        fn a_signal_triggers_graceful_shutdown() {
            $block_on($crate::signals::a_signal_triggers_graceful_shutdown::<
                $runtime,
            >($usr1));
        }
        #[test]
        fn per_peer_keys_wrong_key_is_never_ready_and_the_hub_counts_the_drop() {
            $block_on(
                keys_acl::per_peer_keys_wrong_key_is_never_ready_and_the_hub_counts_the_drop::<
                    $runtime,
                >(),
            );
        }
        #[test]
        fn async_key_resolver_admits_known_kinds_and_survives_a_panic() {
            $block_on(
                keys_acl::async_key_resolver_admits_known_kinds_and_survives_a_panic::<$runtime>(),
            );
        }
        #[test]
        fn acl_hooks_deny_with_codes_and_fail_closed() {
            $block_on(keys_acl::acl_hooks_deny_with_codes_and_fail_closed::<
                $runtime,
            >());
        }
        #[test]
        fn an_rpc_allowed_after_its_caller_left_is_never_run() {
            $block_on(keys_acl::an_rpc_allowed_after_its_caller_left_is_never_run::<$runtime>());
        }
        #[test]
        fn http_routes_health_state_user_routes_and_404() {
            $block_on(server::http_routes_health_state_user_routes_and_404::<
                $runtime,
            >($routes));
        }
        #[test]
        fn upgrades_only_at_the_configured_path_and_frames_are_capped() {
            $block_on(
                server::upgrades_only_at_the_configured_path_and_frames_are_capped::<$runtime>(),
            );
        }
        #[test]
        fn half_sent_request_heads_are_closed_after_the_head_timeout() {
            $block_on(
                server::half_sent_request_heads_are_closed_after_the_head_timeout::<$runtime>(),
            );
        }
        #[test]
        fn graceful_shutdown_with_clients_connected() {
            $block_on(server::graceful_shutdown_with_clients_connected::<$runtime>());
        }
        #[test]
        fn clients_survive_a_hub_restart_on_the_same_port() {
            $block_on(reconnect::clients_survive_a_hub_restart_on_the_same_port::<
                $runtime,
            >());
        }
        #[test]
        fn wss_with_a_self_signed_certificate() {
            $block_on(tls::wss_with_a_self_signed_certificate::<$runtime>());
        }
    };
}

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
