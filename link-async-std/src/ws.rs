//! Attaching async-tungstenite WebSockets to a [`Hub`]: sockets you accept yourself
//! ([`accept`] does the handshake), or ones already upgraded ([`WsTransport`]).

use link_driver::Error;
use link_driver::hub::Hub;
use link_driver::ws::hub_ws_config;
use std::net::SocketAddr;

pub use crate::runtime::WsTransport;

/// Upgrade a raw stream (e.g. from your own `TcpListener`) with async-tungstenite and
/// run it as a hub connection until it closes; messages are capped at the hub's
/// `maxMessageBytes`. Fails only if the WebSocket handshake fails. For a socket
/// already upgraded with async-tungstenite, call
/// `hub.attach(WsTransport::new(ws), remote)` instead.
pub async fn accept<S>(hub: &Hub, stream: S, remote: Option<SocketAddr>) -> Result<(), Error>
where
    S: futures_util::io::AsyncRead + futures_util::io::AsyncWrite + Unpin + Send + 'static,
{
    let config = hub_ws_config(hub.max_message_bytes());
    let ws = async_tungstenite::accept_async_with_config(stream, Some(config))
        .await
        .map_err(|e| Error::Io(format!("websocket handshake: {e}")))?;
    hub.attach(WsTransport::new(ws), remote).await;
    Ok(())
}
