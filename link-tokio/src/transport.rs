//! WebSockets from tokio-tungstenite and axum, seen as link transports (frames in,
//! frames out), with the frame size cap set to `maxMessageBytes`.

use bytes::Bytes;
use futures_util::{Sink, Stream};
use link_driver::transport::{Inbound, Outbound, TransportError};
use link_sansio::wire::CLOSE_NO_STATUS;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_tungstenite::tungstenite;

pub use link_driver::ws::{map_ws_error, ws_config};

/// A tokio-tungstenite `WebSocketStream` as a link transport (client connections and
/// any server socket upgraded with tokio-tungstenite): `WsTransport::new(ws)`.
pub type WsTransport<S> = link_driver::ws::WsTransport<tokio_tungstenite::WebSocketStream<S>>;

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
            Outbound::Close(CLOSE_NO_STATUS, _) => M::Close(None),
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
