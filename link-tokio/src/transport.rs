//! WebSockets from tokio-tungstenite and axum, seen as link transports (frames in,
//! frames out), with the frame size cap set to `maxMessageBytes`.

use bytes::Bytes;
use futures_util::{Sink, Stream};
use link_driver::transport::{Inbound, Outbound, TransportError};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{
    self, Message, error::CapacityError, protocol::WebSocketConfig,
    protocol::frame::coding::CloseCode,
};

/// tungstenite settings for link: messages and frames capped at `max_message_bytes`
/// (the `ws` library's `maxPayload`), no compression.
pub fn ws_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

fn map_ws_error(e: tungstenite::Error) -> TransportError {
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

/// Frames the peer should never have sent (answered with 1002), as opposed to
/// handshake and local state errors.
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
        Outbound::Close(code, reason) => Message::Close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        })),
        // `Outbound` is non-exhaustive; nothing else exists today.
        #[allow(unreachable_patterns)]
        _ => Message::Ping(Bytes::new()),
    }
}

/// A tokio-tungstenite `WebSocketStream` as a link transport (client connections and
/// any server socket upgraded with tokio-tungstenite).
#[derive(Debug)]
pub struct WsTransport<S> {
    inner: WebSocketStream<S>,
}

impl<S> WsTransport<S> {
    /// Wrap an upgraded WebSocket. Set its `max_message_size` with [`ws_config`].
    pub fn new(inner: WebSocketStream<S>) -> Self {
        Self { inner }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WsTransport<S> {
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

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Outbound> for WsTransport<S> {
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

/// An axum `WebSocket` (from `WebSocketUpgrade`) as a link transport.
#[derive(Debug)]
pub struct AxumTransport {
    inner: axum::extract::ws::WebSocket,
}

impl AxumTransport {
    /// Wrap an upgraded axum socket. Cap its size with
    /// `WebSocketUpgrade::max_message_size` / `max_frame_size` before upgrading.
    pub fn new(inner: axum::extract::ws::WebSocket) -> Self {
        Self { inner }
    }
}

fn map_axum_error(e: axum::Error) -> TransportError {
    match e.into_inner().downcast::<tungstenite::Error>() {
        Ok(e) => map_ws_error(*e),
        Err(e) => TransportError::Io(e.to_string()),
    }
}

impl Stream for AxumTransport {
    type Item = Result<Inbound, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        use axum::extract::ws::Message as M;
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(m))) => Poll::Ready(Some(Ok(match m {
                M::Text(t) => Inbound::Text(Bytes::from(t)),
                M::Binary(b) => Inbound::Binary(b),
                M::Ping(_) => Inbound::Ping,
                M::Pong(_) => Inbound::Pong,
                M::Close(f) => Inbound::Close(f.map(|f| (f.code, f.reason.as_str().to_owned()))),
            }))),
            Poll::Ready(Some(Err(e))) => match map_axum_error(e) {
                TransportError::Closed => Poll::Ready(None),
                e => Poll::Ready(Some(Err(e))),
            },
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Sink<Outbound> for AxumTransport {
    type Error = TransportError;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner)
            .poll_ready(cx)
            .map_err(map_axum_error)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> Result<(), Self::Error> {
        use axum::extract::ws::{CloseFrame, Message as M};
        let m = match item {
            Outbound::Text(t) => M::Text(t.into()),
            Outbound::Ping => M::Ping(Bytes::new()),
            Outbound::Close(code, reason) => M::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
            #[allow(unreachable_patterns)]
            _ => M::Ping(Bytes::new()),
        };
        Pin::new(&mut self.inner)
            .start_send(m)
            .map_err(map_axum_error)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner)
            .poll_flush(cx)
            .map_err(map_axum_error)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner)
            .poll_close(cx)
            .map_err(map_axum_error)
    }
}
