//! Everything runtime-specific in link on smol / async-std: which executor spawns
//! tasks, async-io's timer, TCP with async-net (connect, bind), rustls streams from
//! futures-rustls, and SIGINT/SIGTERM through async-signal. The rest is `link-driver`.

use async_net::{TcpListener, TcpStream};
use async_tungstenite::tungstenite::{self, handshake::client::Request, protocol::WebSocketConfig};
use futures_util::io::{AsyncRead, AsyncWrite};
use link_driver::Error;
pub use link_driver::runtime::Runtime;
use link_driver::runtime::{BoxFuture, ConnectSpec, Timer};
use link_driver::server::{HttpServe, Serve};
use link_driver::transport::TransportError;
use link_driver::ws::{Dialer, dial};
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

#[cfg(not(any(feature = "smol", feature = "async-std")))]
compile_error!("link-async-std needs the `smol` (default) or the `async-std` feature");

/// An executor that link's tasks run on: the only thing smol and async-std differ in.
pub trait Executor: Send + Sync + 'static {
    /// Run `fut` in the background, detached.
    fn spawn<F: Future<Output = ()> + Send + 'static>(fut: F);
}

/// smol's global executor (`smol::spawn`).
#[cfg(feature = "smol")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

#[cfg(feature = "smol")]
impl Executor for Smol {
    fn spawn<F: Future<Output = ()> + Send + 'static>(fut: F) {
        smol::spawn(fut).detach();
    }
}

/// async-std's executor (`async_std::task::spawn`). async-std is discontinued
/// upstream in favour of smol.
#[cfg(feature = "async-std")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStd;

#[cfg(feature = "async-std")]
impl Executor for AsyncStd {
    fn spawn<F: Future<Output = ()> + Send + 'static>(fut: F) {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(fut));
    }
}

/// link's runtime on async-io (timers, sockets) with executor `E`.
pub struct AsyncIoRuntime<E>(PhantomData<fn() -> E>);

impl<E> std::fmt::Debug for AsyncIoRuntime<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::any::type_name::<E>())
    }
}

impl<E> Clone for AsyncIoRuntime<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for AsyncIoRuntime<E> {}

impl<E> Default for AsyncIoRuntime<E> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// link on smol.
#[cfg(feature = "smol")]
pub type SmolRuntime = AsyncIoRuntime<Smol>;

/// link on async-std (discontinued upstream in favour of smol).
#[cfg(feature = "async-std")]
pub type AsyncStdRuntime = AsyncIoRuntime<AsyncStd>;

/// The runtime of the crate's top-level aliases: smol when its feature is on,
/// otherwise async-std.
#[cfg(feature = "smol")]
pub type DefaultRuntime = SmolRuntime;
/// The runtime of the crate's top-level aliases: smol when its feature is on,
/// otherwise async-std.
#[cfg(all(feature = "async-std", not(feature = "smol")))]
pub type DefaultRuntime = AsyncStdRuntime;

/// async-io's timer, reusable across deadlines.
#[derive(Debug)]
pub struct AsyncIoTimer(async_io::Timer);

impl Future for AsyncIoTimer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Timer for AsyncIoTimer {
    fn reset(&mut self, at: Instant) {
        self.0.set_at(at);
    }
}

/// A byte stream link runs WebSockets over: TCP, or rustls over TCP.
pub trait Socket: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Socket for T {}

/// A client or server connection, plain or TLS (boxed: one per socket, so the
/// indirection costs nothing measurable and spares a forwarding enum).
pub type BoxSocket = Box<dyn Socket>;

/// An async-tungstenite WebSocket as a link transport.
pub type WsTransport<S = BoxSocket> =
    link_driver::ws::WsTransport<async_tungstenite::WebSocketStream<S>>;

impl<E: Executor> Runtime for AsyncIoRuntime<E> {
    type Timer = AsyncIoTimer;
    type Transport = WsTransport;

    fn timer(&self, at: Instant) -> AsyncIoTimer {
        AsyncIoTimer(async_io::Timer::at(at))
    }

    fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        E::spawn(fut);
    }

    fn connect(
        &self,
        spec: ConnectSpec,
    ) -> BoxFuture<'static, Result<WsTransport, TransportError>> {
        Box::pin(dial::<Self>(spec))
    }
}

impl<E: Executor> Serve for AsyncIoRuntime<E> {
    type Routes = crate::server::Routes;

    fn merge_routes(first: Self::Routes, then: Self::Routes) -> Self::Routes {
        first.merge(then)
    }

    fn serve(http: HttpServe<Self>) -> BoxFuture<'static, Result<std::net::SocketAddr, Error>> {
        Box::pin(async move {
            let listener = TcpListener::bind((http.host.as_str(), http.port))
                .await
                .map_err(|e| Error::Io(format!("bind {}:{}: {e}", http.host, http.port)))?;
            let local = listener
                .local_addr()
                .map_err(|e| Error::Io(e.to_string()))?;
            E::spawn(crate::server::accept_loop::<Self>(listener, http));
            Ok(local)
        })
    }

    #[cfg(unix)]
    type Signal = async_signal::Signal;
    #[cfg(not(unix))]
    type Signal = std::convert::Infallible;

    fn default_signals() -> Vec<Self::Signal> {
        #[cfg(unix)]
        return vec![async_signal::Signal::Int, async_signal::Signal::Term];
        #[cfg(not(unix))]
        return Vec::new();
    }

    fn shutdown_signal(&self, signals: Vec<Self::Signal>) -> BoxFuture<'static, ()> {
        #[cfg(unix)]
        let registered = match async_signal::Signals::new(signals) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for signals");
                None
            }
        };
        #[cfg(not(unix))]
        let registered: Option<futures_util::stream::Pending<()>> =
            signals.into_iter().next().map(|never| match never {});
        Box::pin(async move {
            use futures_util::StreamExt;
            match registered {
                Some(mut s) => {
                    s.next().await;
                }
                None => std::future::pending().await,
            }
        })
    }
}

/// An accepted TCP connection, TLS-wrapped when the server has an identity.
pub(crate) async fn accept_tls(
    tcp: TcpStream,
    tls: Option<&futures_rustls::TlsAcceptor>,
) -> std::io::Result<BoxSocket> {
    let _ = tcp.set_nodelay(true);
    Ok(match tls {
        None => Box::new(tcp),
        Some(acceptor) => Box::new(acceptor.accept(tcp).await?),
    })
}

impl<E: Executor> Dialer for AsyncIoRuntime<E> {
    type Tcp = TcpStream;
    type Stream = BoxSocket;
    type Ws = async_tungstenite::WebSocketStream<BoxSocket>;

    async fn tcp(host: &str, port: u16) -> io::Result<TcpStream> {
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    fn plain(tcp: TcpStream) -> BoxSocket {
        Box::new(tcp)
    }

    async fn tls(
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        tcp: TcpStream,
    ) -> io::Result<BoxSocket> {
        let s = futures_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Ok(Box::new(s))
    }

    async fn upgrade(
        request: Request,
        stream: BoxSocket,
        config: WebSocketConfig,
    ) -> Result<Self::Ws, tungstenite::Error> {
        let (ws, _response) =
            async_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        Ok(ws)
    }
}

/// Run `fut` to completion on the current thread (tests, examples, `main`).
pub fn block_on<T>(fut: impl Future<Output = T>) -> T {
    #[cfg(feature = "smol")]
    return smol::block_on(fut);
    #[cfg(not(feature = "smol"))]
    return async_std::task::block_on(fut);
}
