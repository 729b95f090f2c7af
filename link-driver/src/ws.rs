//! tungstenite WebSockets as link transports, for every runtime: any stream of
//! `tungstenite::Message` that is also a sink of them (tokio-tungstenite's and
//! async-tungstenite's `WebSocketStream`) becomes a [`WsTransport`]. Also owns the URL
//! → TCP target step of connecting, which does not depend on the runtime either.

use crate::runtime::ConnectSpec;
use crate::transport::{Inbound, Outbound, TransportError};
use bytes::Bytes;
use futures_util::{Sink, Stream};
use link_sansio::wire::CLOSE_NO_STATUS;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tungstenite::client::IntoClientRequest;
use tungstenite::error::CapacityError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, handshake::client::Request};

pub use tungstenite;

/// tungstenite settings for link: messages and frames capped at `max_message_bytes`
/// (the `ws` library's `maxPayload`), no compression.
pub fn ws_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

/// Bytes each hub socket reads at a time. tungstenite's default (128 KiB) is held by
/// every connection, idle or not: 10,000 idle peers cost 1.3 GB of hub memory with
/// it, about 100 MB with this (link frames are a few hundred bytes; larger ones just
/// take more reads).
pub const HUB_READ_BUFFER_BYTES: usize = 4 * 1024;

/// Bytes a client socket reads at a time. tungstenite zero-fills the free part of its
/// read window (up to this much) before every read, so its default of 128 KiB cost a
/// client several percent of its CPU at high message rates; 16 KiB still takes in
/// dozens of link frames per read.
pub const CLIENT_READ_BUFFER_BYTES: usize = 16 * 1024;

/// [`ws_config`] for a client's side of a socket: reads [`CLIENT_READ_BUFFER_BYTES`]
/// at a time.
pub fn client_ws_config(max_message_bytes: usize) -> WebSocketConfig {
    ws_config(max_message_bytes).read_buffer_size(CLIENT_READ_BUFFER_BYTES)
}

/// Bytes a hub socket gathers before writing them. tungstenite holds outgoing frames
/// until they pass its `write_buffer_size`, and its buffer never shrinks, so the most a
/// socket ever gathered stays allocated while it is open. With tungstenite's default
/// (128 KiB), every socket that once had that much queued at one time (a subscriber of
/// a busy topic that fell behind) keeps 128 KiB or more; with this, 16 KiB and one
/// frame. Frames written in one turn of the connection task still leave together
/// (about 48 link frames per write), and the hub's CPU per message did not change
/// measurably. The benchmark's peak hub memory does not show the difference: frames
/// queued behind slow sockets set it, and it moves by far more between runs.
pub const HUB_WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// [`ws_config`] for a hub's side of a socket: reads [`HUB_READ_BUFFER_BYTES`] at a
/// time and writes once [`HUB_WRITE_BUFFER_BYTES`] have gathered, since a hub holds
/// many sockets, most of them quiet most of the time.
pub fn hub_ws_config(max_message_bytes: usize) -> WebSocketConfig {
    ws_config(max_message_bytes)
        .read_buffer_size(HUB_READ_BUFFER_BYTES)
        .write_buffer_size(HUB_WRITE_BUFFER_BYTES)
}

/// A tungstenite error in link's terms (oversized message → [`TransportError::TooBig`]).
pub fn map_ws_error(e: tungstenite::Error) -> TransportError {
    match e {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            TransportError::TooBig {
                size,
                max: max_size,
            }
        }
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            TransportError::Closed
        }
        tungstenite::Error::Utf8(reason) => TransportError::Invalid { code: 1007, reason },
        tungstenite::Error::Protocol(p) if peer_broke_protocol(&p) => TransportError::Invalid {
            code: 1002,
            reason: p.to_string(),
        },
        other => TransportError::Io(other.to_string()),
    }
}

/// Frames the peer should never have sent (answered with 1002, as the reference's `ws`
/// does), as opposed to handshake and local state errors.
fn peer_broke_protocol(p: &tungstenite::error::ProtocolError) -> bool {
    use tungstenite::error::ProtocolError as P;
    matches!(
        p,
        P::NonZeroReservedBits
            | P::UnmaskedFrameFromClient
            | P::MaskedFrameFromServer
            | P::FragmentedControlFrame
            | P::ControlFrameTooBig
            | P::UnknownControlFrameType(_)
            | P::UnknownDataFrameType(_)
            | P::UnexpectedContinueFrame
            | P::ExpectedFragment(_)
            | P::InvalidOpcode(_)
            | P::InvalidCloseSequence
    )
}

fn inbound_of(msg: Message) -> Option<Inbound> {
    Some(match msg {
        Message::Text(t) => Inbound::Text(Bytes::from(t)),
        Message::Binary(b) => Inbound::Binary(b),
        Message::Ping(_) => Inbound::Ping,
        Message::Pong(_) => Inbound::Pong,
        Message::Close(f) => Inbound::Close(f.map(|f| (u16::from(f.code), f.reason.to_string()))),
        Message::Frame(_) => return None,
    })
}

fn message_of(frame: Outbound) -> Message {
    match frame {
        Outbound::Text(t) => Message::Text(t.into()),
        Outbound::Ping => Message::Ping(Bytes::new()),
        Outbound::Close(CLOSE_NO_STATUS, _) => Message::Close(None),
        Outbound::Close(code, reason) => Message::Close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        })),
    }
}

/// A tungstenite `WebSocketStream` (tokio-tungstenite or async-tungstenite) as a link
/// transport: client connections and any server socket upgraded with either.
#[derive(Debug)]
pub struct WsTransport<W> {
    inner: W,
}

impl<W> WsTransport<W> {
    /// Wrap an upgraded WebSocket. Set its `max_message_size` with [`ws_config`].
    pub fn new(inner: W) -> Self {
        Self { inner }
    }

    /// The wrapped WebSocket.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W> Stream for WsTransport<W>
where
    W: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    type Item = Result<Inbound, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(m))) => match inbound_of(m) {
                    Some(f) => Poll::Ready(Some(Ok(f))),
                    None => continue,
                },
                Poll::Ready(Some(Err(e))) => match map_ws_error(e) {
                    TransportError::Closed => Poll::Ready(None),
                    e => Poll::Ready(Some(Err(e))),
                },
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

impl<W> Sink<Outbound> for WsTransport<W>
where
    W: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    type Error = TransportError;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner)
            .poll_ready(cx)
            .map_err(map_ws_error)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> Result<(), Self::Error> {
        Pin::new(&mut self.inner)
            .start_send(message_of(item))
            .map_err(map_ws_error)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner)
            .poll_flush(cx)
            .map_err(map_ws_error)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner)
            .poll_close(cx)
            .map_err(map_ws_error)
    }
}

/// Where a `ws://` / `wss://` URL points: the upgrade request, the TCP host and port,
/// and whether to run TLS (with `server_name`) before the upgrade.
#[derive(Debug)]
pub struct Target {
    /// The HTTP upgrade request for the handshake.
    pub request: Request,
    /// Host to resolve and connect to (IPv6 brackets removed).
    pub host: String,
    /// TCP port (the URL's, else 80 / 443).
    pub port: u16,
    /// The TLS server name for `wss://`; `None` for `ws://`.
    pub server_name: Option<rustls::pki_types::ServerName<'static>>,
}

impl Target {
    /// Parse `spec.url`; only `ws` and `wss` are accepted.
    pub fn of(spec: &ConnectSpec) -> Result<Target, TransportError> {
        let request = spec
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let uri = request.uri().clone();
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            other => {
                return Err(TransportError::Connect(format!(
                    "unsupported URL scheme {other:?} (want ws or wss)"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| TransportError::Connect("URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let server_name = if tls {
            Some(
                rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                    TransportError::Connect(format!("tls server name {host:?}: {e}"))
                })?,
            )
        } else {
            None
        };
        Ok(Target {
            request,
            host,
            port,
            server_name,
        })
    }
}

/// The socket steps of connecting a client, done with each runtime's own types;
/// [`dial`] runs them in link's order and reports failures in link's terms.
pub trait Dialer {
    /// A connected TCP stream.
    type Tcp: Send;
    /// The stream the WebSocket runs over: TCP, or TLS over TCP.
    type Stream: Send;
    /// The upgraded WebSocket (a stream and sink of `tungstenite::Message`).
    type Ws;

    /// Connect to `host:port` (resolving the name), Nagle off: envelopes are small and
    /// latency-bound, and the driver batches writes itself.
    fn tcp(host: &str, port: u16) -> impl Future<Output = io::Result<Self::Tcp>> + Send;

    /// A plain `ws://` stream.
    fn plain(tcp: Self::Tcp) -> Self::Stream;

    /// A rustls client handshake for `wss://`.
    fn tls(
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        tcp: Self::Tcp,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// The WebSocket client handshake.
    fn upgrade(
        request: Request,
        stream: Self::Stream,
        config: WebSocketConfig,
    ) -> impl Future<Output = Result<Self::Ws, tungstenite::Error>> + Send;
}

/// Open a WebSocket to `spec.url` with `D`'s sockets: TCP, TLS for `wss://` (the
/// configured roots, else webpki's), then the upgrade with frames capped at
/// `maxMessageBytes`.
pub async fn dial<D: Dialer>(spec: ConnectSpec) -> Result<WsTransport<D::Ws>, TransportError> {
    let target = Target::of(&spec)?;
    let (host, port) = (target.host.as_str(), target.port);
    let tcp = D::tcp(host, port)
        .await
        .map_err(|e| TransportError::Connect(format!("{host}:{port}: {e}")))?;
    let stream = match target.server_name {
        None => D::plain(tcp),
        Some(name) => {
            let config = match spec.tls {
                Some(c) => c,
                None => crate::tls::default_tls_config()?,
            };
            D::tls(config, name, tcp)
                .await
                .map_err(|e| TransportError::Connect(format!("tls: {e}")))?
        }
    };
    let ws = D::upgrade(
        target.request,
        stream,
        client_ws_config(spec.max_message_bytes),
    )
    .await
    .map_err(|e| TransportError::Connect(e.to_string()))?;
    Ok(WsTransport::new(ws))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_sockets_use_small_buffers_and_every_socket_caps_messages() {
        let c = hub_ws_config(1000);
        assert_eq!(c.read_buffer_size, HUB_READ_BUFFER_BYTES);
        assert_eq!(c.write_buffer_size, HUB_WRITE_BUFFER_BYTES);
        assert_eq!(c.max_message_size, Some(1000));
        assert_eq!(c.max_frame_size, Some(1000));
        let c = client_ws_config(1000);
        assert_eq!(c.read_buffer_size, CLIENT_READ_BUFFER_BYTES);
        assert_eq!(c.max_message_size, Some(1000));
    }
}
