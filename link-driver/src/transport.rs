//! The WebSocket as the driver sees it: a stream of inbound frames and a sink of
//! outbound ones, plus [`Pump`], which batches writes and counts flushed bytes (the
//! core's `bufferedAmount`).

use bytes::Bytes;
use futures_util::{Sink, Stream};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A frame received from the peer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Inbound {
    /// A text frame (one JSON envelope).
    Text(Bytes),
    /// A binary frame: treated as text, like the reference's `String(buf)`.
    Binary(Bytes),
    /// A ping control frame (the WebSocket library answers it).
    Ping,
    /// A pong control frame: proof of liveness for keepalive.
    Pong,
    /// The peer's close frame, with its code and reason if it carried one.
    Close(Option<(u16, String)>),
}

/// A frame to send to the peer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outbound {
    /// A text frame (one signed envelope).
    Text(String),
    /// A ping control frame (keepalive).
    Ping,
    /// A close frame with a code and reason; with
    /// [`CLOSE_NO_STATUS`](link_sansio::wire::CLOSE_NO_STATUS) (1005), a close frame
    /// without a body.
    Close(u16, String),
}

impl Outbound {
    /// Bytes of payload this frame puts on the wire (what the core's backlog counts).
    pub fn payload_len(&self) -> usize {
        match self {
            Outbound::Text(t) => t.len(),
            _ => 0,
        }
    }
}

/// Why a WebSocket failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A message larger than `maxMessageBytes` arrived (the connection closes with 1009).
    #[error("message too big: {size} > {max} bytes")]
    TooBig {
        /// Size of the message, as far as it was read.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The peer broke the WebSocket protocol: invalid UTF-8 in a text frame (the
    /// connection closes with 1007) or a malformed frame (1002), as the reference's
    /// `ws` library answers.
    #[error("invalid frame: {reason}")]
    Invalid {
        /// The close code the connection is closed with.
        code: u16,
        /// What was wrong.
        reason: String,
    },
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// Connecting failed (DNS, TCP, TLS or the HTTP upgrade).
    #[error("connect failed: {0}")]
    Connect(String),
    /// Any other I/O or protocol failure of the WebSocket.
    #[error("websocket error: {0}")]
    Io(String),
}

impl TransportError {
    /// The close frame this failure is answered with before the socket is dropped
    /// (1009 too big, 1007 / 1002 invalid), like the reference's `ws`; `None` when the
    /// connection is simply gone.
    pub fn close(&self) -> Option<(u16, &'static str)> {
        match self {
            TransportError::TooBig { .. } => Some((1009, "Max payload size exceeded")),
            TransportError::Invalid { code, .. } => Some((*code, "")),
            _ => None,
        }
    }

    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            TransportError::TooBig { .. } => "MESSAGE_TOO_BIG",
            TransportError::Invalid { .. } => "INVALID_FRAME",
            TransportError::Closed => "CONNECTION_CLOSED",
            TransportError::Connect(_) => "CONNECT_FAILED",
            TransportError::Io(_) => "WEBSOCKET_ERROR",
        }
    }
}

/// A WebSocket the driver can run: frames in, frames out.
pub trait Transport:
    Stream<Item = Result<Inbound, TransportError>>
    + Sink<Outbound, Error = TransportError>
    + Send
    + Unpin
    + 'static
{
}

impl<T> Transport for T where
    T: Stream<Item = Result<Inbound, TransportError>>
        + Sink<Outbound, Error = TransportError>
        + Send
        + Unpin
        + 'static
{
}

/// Owns a transport's write side: queues frames, feeds as many as the socket accepts,
/// then flushes once, and reports how many payload bytes that flush completed.
#[derive(Debug)]
pub struct Pump<T> {
    io: T,
    queue: VecDeque<Outbound>,
    /// Payload bytes fed to the sink but not yet flushed.
    fed: usize,
    unflushed: bool,
    read_done: bool,
}

impl<T: Transport> Pump<T> {
    /// Wrap a connected transport.
    pub fn new(io: T) -> Self {
        Self {
            io,
            queue: VecDeque::new(),
            fed: 0,
            unflushed: false,
            read_done: false,
        }
    }

    /// Queue a frame for the next [`Pump::poll_write`].
    pub fn push(&mut self, frame: Outbound) {
        self.queue.push_back(frame);
    }

    /// Whether frames are queued or written but not yet flushed.
    pub fn has_pending_writes(&self) -> bool {
        !self.queue.is_empty() || self.unflushed
    }

    /// Feed queued frames while the socket takes them, then flush. Returns the payload
    /// bytes whose flush completed during this call (0 if none); registers the waker
    /// whenever something is left to do.
    pub fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<usize, TransportError> {
        while let Some(frame) = self.queue.pop_front() {
            match Pin::new(&mut self.io).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {
                    self.queue.push_front(frame);
                    return Ok(0);
                }
            }
            self.fed += frame.payload_len();
            self.unflushed = true;
            Pin::new(&mut self.io).start_send(frame)?;
        }
        if !self.unflushed {
            return Ok(0);
        }
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.unflushed = false;
                Ok(std::mem::take(&mut self.fed))
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(0),
        }
    }

    /// The next inbound frame; `None` once the peer has gone.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Inbound, TransportError>>> {
        if self.read_done {
            return Poll::Ready(None);
        }
        let r = Pin::new(&mut self.io).poll_next(cx);
        if let Poll::Ready(None) = r {
            self.read_done = true;
        }
        r
    }

    /// Close the sink (sends a close frame if none was sent) and wait until it is done.
    pub fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// Frame payload as the core wants it: binary frames become text via lossy UTF-8, as
/// the reference feeds `String(buf)` to `JSON.parse`.
pub fn frame_text(frame: &Inbound) -> Option<std::borrow::Cow<'_, [u8]>> {
    match frame {
        Inbound::Text(b) => Some(std::borrow::Cow::Borrowed(&b[..])),
        Inbound::Binary(b) => Some(match String::from_utf8_lossy(b) {
            std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
        }),
        _ => None,
    }
}
