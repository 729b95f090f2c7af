//! tokio's side of the driver: its timer, `tokio::spawn`, and a WebSocket connector
//! (TCP, rustls for `wss://`, then tokio-tungstenite's handshake).

use crate::transport::{WsTransport, ws_config};
use link_driver::runtime::{BoxFuture, ConnectSpec, Runtime, Timer};
use link_driver::transport::TransportError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

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
        Box::pin(connect(spec))
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

/// rustls client settings trusting the webpki (Mozilla) roots, with the `ring` provider.
pub fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    tls_config_with_roots(roots)
}

/// rustls client settings trusting exactly `roots` (e.g. a test CA), `ring` provider.
pub fn tls_config_with_roots(
    roots: rustls::RootCertStore,
) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TransportError::Connect(format!("tls: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn connect(spec: ConnectSpec) -> Result<WsTransport<MaybeTlsStream>, TransportError> {
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
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| TransportError::Connect(format!("{host}:{port}: {e}")))?;
    // Envelopes are small and latency-bound; the driver batches writes itself.
    let _ = tcp.set_nodelay(true);
    let stream = if tls {
        let config = match spec.tls {
            Some(c) => c,
            None => default_tls_config()?,
        };
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| TransportError::Connect(format!("tls server name {host:?}: {e}")))?;
        let s = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| TransportError::Connect(format!("tls: {e}")))?;
        MaybeTlsStream::Tls(s)
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    let (ws, _response) = tokio_tungstenite::client_async_with_config(
        request,
        stream,
        Some(ws_config(spec.max_message_bytes)),
    )
    .await
    .map_err(|e| TransportError::Connect(e.to_string()))?;
    Ok(WsTransport::new(ws))
}
