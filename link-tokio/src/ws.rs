//! Mounting a [`Hub`] in an axum application: a route that upgrades WebSockets into
//! the hub, with the frame size capped at the hub's `maxMessageBytes`.

use crate::transport::AxumTransport;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::Extensions;
use axum::response::Response;
use axum::routing::{MethodRouter, any};
use link_driver::hub::Hub;
use std::net::SocketAddr;

/// The remote address of a connection, as [`crate::HubServer`] records it (axum
/// `ConnectInfo` for both plain and TLS listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for RemoteAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        RemoteAddr(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, crate::server::NoDelayListener>,
    > for RemoteAddr
{
    fn connect_info(
        stream: axum::serve::IncomingStream<'_, crate::server::NoDelayListener>,
    ) -> Self {
        RemoteAddr(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, crate::server::TlsListener>,
    > for RemoteAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::server::TlsListener>) -> Self {
        RemoteAddr(*stream.remote_addr())
    }
}

/// The peer address from a request's extensions (`ConnectInfo<SocketAddr>` or
/// `ConnectInfo<RemoteAddr>`), if the server recorded one.
pub fn remote_addr(ext: &Extensions) -> Option<SocketAddr> {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| ext.get::<ConnectInfo<RemoteAddr>>().map(|c| c.0.0))
}

/// Complete a WebSocket upgrade into `hub`: caps messages and frames at the hub's
/// `maxMessageBytes` (larger ones close with 1009) and runs the socket as a hub
/// connection.
pub fn upgrade(hub: &Hub, ws: WebSocketUpgrade, remote: Option<SocketAddr>) -> Response {
    let hub = hub.clone();
    let max = hub.max_message_bytes();
    ws.read_buffer_size(link_driver::ws::HUB_READ_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| hub.attach(AxumTransport::new(socket), remote))
}

/// A route that upgrades WebSocket requests into `hub`, for
/// `Router::new().route("/link", link_tokio::ws::route(hub))`.
pub fn route<S: Clone + Send + Sync + 'static>(hub: Hub) -> MethodRouter<S> {
    any(move |ws: WebSocketUpgrade, ext: Extensions| {
        let hub = hub.clone();
        async move { upgrade(&hub, ws, remote_addr(&ext)) }
    })
}

/// Mount a hub in an existing router.
pub trait RouterExt {
    /// Serve WebSocket upgrades at `path` into `hub`.
    fn link_hub(self, path: &str, hub: Hub) -> Self;
}

impl<S: Clone + Send + Sync + 'static> RouterExt for Router<S> {
    fn link_hub(self, path: &str, hub: Hub) -> Self {
        self.route(path, route(hub))
    }
}

/// Upgrade a raw stream (e.g. from your own `TcpListener`) with tokio-tungstenite and
/// run it as a hub connection until it closes; messages are capped at the hub's
/// `maxMessageBytes`. Fails only if the WebSocket handshake fails.
pub async fn accept<S>(
    hub: &Hub,
    stream: S,
    remote: Option<SocketAddr>,
) -> Result<(), link_driver::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ws = tokio_tungstenite::accept_async_with_config(
        stream,
        Some(link_driver::ws::hub_ws_config(hub.max_message_bytes())),
    )
    .await
    .map_err(|e| link_driver::Error::Io(format!("websocket handshake: {e}")))?;
    hub.attach(crate::transport::WsTransport::new(ws), remote)
        .await;
    Ok(())
}
