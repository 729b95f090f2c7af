//! tokio's side of the driver: its timer, `tokio::spawn`, and a WebSocket connector
//! (TCP, rustls for `wss://`, then tokio-tungstenite's handshake).

use crate::transport::WsTransport;
use link_driver::runtime::{BoxFuture, ConnectSpec, Runtime, Timer};
use link_driver::transport::TransportError;
use link_driver::ws::{Dialer, dial};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, handshake::client::Request, protocol::WebSocketConfig};

/// The tokio runtime, as the link driver uses it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

/// tokio's `Sleep`, reusable across deadlines.
#[derive(Debug)]
pub struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioTimer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl Timer for TokioTimer {
    fn reset(&mut self, at: Instant) {
        self.0.as_mut().reset(tokio::time::Instant::from_std(at));
    }
}

impl Runtime for TokioRuntime {
    type Timer = TokioTimer;
    type Transport = WsTransport<MaybeTlsStream>;

    fn timer(&self, at: Instant) -> TokioTimer {
        TokioTimer(Box::pin(tokio::time::sleep_until(
            tokio::time::Instant::from_std(at),
        )))
    }

    fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(fut);
    }

    fn connect(
        &self,
        spec: ConnectSpec,
    ) -> BoxFuture<'static, Result<Self::Transport, TransportError>> {
        Box::pin(dial::<Self>(spec))
    }
}

/// A client socket: plain TCP for `ws://`, rustls over TCP for `wss://`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per connection; boxing buys nothing
pub enum MaybeTlsStream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`
    Tls(tokio_rustls::client::TlsStream<TcpStream>),
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTlsStream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(s) => s.is_write_vectored(),
            MaybeTlsStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl Dialer for TokioRuntime {
    type Tcp = TcpStream;
    type Stream = MaybeTlsStream;
    type Ws = tokio_tungstenite::WebSocketStream<MaybeTlsStream>;

    async fn tcp(host: &str, port: u16) -> io::Result<TcpStream> {
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    fn plain(tcp: TcpStream) -> MaybeTlsStream {
        MaybeTlsStream::Plain(tcp)
    }

    async fn tls(
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        tcp: TcpStream,
    ) -> io::Result<MaybeTlsStream> {
        let s = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Ok(MaybeTlsStream::Tls(s))
    }

    async fn upgrade(
        request: Request,
        stream: MaybeTlsStream,
        config: WebSocketConfig,
    ) -> Result<Self::Ws, tungstenite::Error> {
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        Ok(ws)
    }
}

/// Run `fut` to completion on a fresh multi-threaded tokio runtime (tests, examples,
/// a `main` without `#[tokio::main]`). Panics if the runtime cannot be built.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    #[allow(clippy::expect_used)] // no runtime, no program: nothing to recover
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(fut)
}
