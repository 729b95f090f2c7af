//! `HubServer` on tokio (the reference's `createHubServer`): the options, routes,
//! `/health`, `/state`, drain and shutdown are `link-driver`'s, for every runtime;
//! this module serves them with axum (user routes are an axum `Router`), upgrades
//! WebSockets into the hub, listens for TLS, and turns signals into a shutdown.

use crate::TokioRuntime;
use crate::ws::{RemoteAddr, remote_addr, upgrade};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use link_driver::Error;
use link_driver::runtime::BoxFuture;
use link_driver::server::{HttpAnswer, HttpServe, LinkRoutes, Serve};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Options for a [`HubServer`](crate::HubServer) on tokio (`createHubServer`), by
/// value: `HubServerOptions::new(hub).port(..).routes(router).start()`. See
/// [`link_driver::server::HubServerOptions`] for every option and its default.
pub type HubServerOptions = link_driver::server::HubServerOptions<TokioRuntime>;

/// A TCP listener that completes TLS handshakes off the accept path (a slow client
/// cannot stall others) and yields only established TLS streams.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    ready_tx: mpsc::Sender<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    ready_rx: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

/// A plain TCP listener that turns Nagle's algorithm off on every connection: link
/// frames are small and latency-bound, and the transport batches writes itself.
#[derive(Debug)]
pub struct NoDelayListener(pub TcpListener);

impl axum::serve::Listener for NoDelayListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = stream.set_nodelay(true);
        (stream, addr)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// TLS handshakes that take longer than this are abandoned.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    /// Wrap a bound listener.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        let (ready_tx, ready_rx) = mpsc::channel(64);
        Self {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(config),
            ready_tx,
            ready_rx,
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                r = self.tcp.accept() => match r {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        let acceptor = self.acceptor.clone();
                        let tx = self.ready_tx.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => { let _ = tx.send((tls, addr)).await; }
                                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "tls handshake failed"),
                                Err(_) => tracing::debug!(%addr, "tls handshake timed out"),
                            }
                        });
                    }
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(ready) = self.ready_rx.recv() => return ready,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

fn is_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn response_of(answer: HttpAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(answer.content_type),
        )],
        answer.body,
    )
        .into_response()
}

async fn dispatch(routes: LinkRoutes, req: Request) -> Response {
    if is_upgrade(&req) && routes.upgrades_at(req.uri().path()) {
        let remote = remote_addr(req.extensions());
        let (mut parts, _body) = req.into_parts();
        return match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => upgrade(routes.hub(), ws, remote),
            Err(rejection) => rejection.into_response(),
        };
    }
    response_of(routes.answer(req.uri().path()).await)
}

impl Serve for TokioRuntime {
    type Routes = Router;

    fn merge_routes(first: Router, then: Router) -> Router {
        first.merge(then)
    }

    fn serve(http: HttpServe<Self>) -> BoxFuture<'static, Result<SocketAddr, Error>> {
        Box::pin(async move {
            let HttpServe {
                host,
                port,
                user_routes,
                routes,
                tls,
                head_timeout,
                stop,
                done,
            } = http;
            let listener = TcpListener::bind((host.as_str(), port))
                .await
                .map_err(|e| Error::Io(format!("bind {host}:{port}: {e}")))?;
            let local_addr = listener
                .local_addr()
                .map_err(|e| Error::Io(e.to_string()))?;
            let app: Router = user_routes.fallback(move |req: Request<Body>| {
                let routes = routes.clone();
                async move { dispatch(routes, req).await }
            });
            let stop = stop.wait();
            match tls {
                None => {
                    let listener = NoDelayListener(listener);
                    tokio::spawn(async move {
                        serve_http(listener, app, head_timeout, stop).await;
                        drop(done);
                    });
                }
                Some(config) => {
                    let listener = TlsListener::new(listener, config);
                    tokio::spawn(async move {
                        serve_http(listener, app, head_timeout, stop).await;
                        drop(done);
                    });
                }
            }
            Ok(local_addr)
        })
    }

    #[cfg(unix)]
    type Signal = tokio::signal::unix::SignalKind;
    /// Ctrl-C (the only signal outside Unix).
    #[cfg(not(unix))]
    type Signal = ();

    fn default_signals() -> Vec<Self::Signal> {
        #[cfg(unix)]
        return vec![
            tokio::signal::unix::SignalKind::interrupt(),
            tokio::signal::unix::SignalKind::terminate(),
        ];
        #[cfg(not(unix))]
        return vec![()];
    }

    fn shutdown_signal(&self, signals: Vec<Self::Signal>) -> BoxFuture<'static, ()> {
        Box::pin(wait_for_signal(signals))
    }
}

/// Serves `app` on `listener` until `stop` fires, then lets every connection finish
/// gracefully (what `axum::serve(..).with_graceful_shutdown(..)` does), with one
/// addition: hyper's timer closes a connection whose request head has not fully
/// arrived within `head_timeout`, so half-sent requests cannot hold sockets forever.
async fn serve_http<L>(
    mut listener: L,
    app: Router,
    head_timeout: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use tokio::sync::watch;
    use tower::ServiceExt;

    // Dropped when `stop` fires: connection tasks see it closed and shut down.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        stop.await;
        drop(signal_rx);
    });
    // Each connection task holds a receiver; all gone = every connection finished.
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let (io, remote) = tokio::select! {
            conn = listener.accept() => conn,
            _ = signal_tx.closed() => break,
        };
        let app = app.clone();
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(RemoteAddr(remote)));
                app.clone().oneshot(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(head_timeout);
            let conn = builder
                .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut signalled = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%remote, error = %e, "http connection ended");
                        }
                        break;
                    }
                    _ = signal_tx.closed(), if !signalled => {
                        signalled = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
}

#[cfg(unix)]
fn wait_for_signal(
    kinds: Vec<tokio::signal::unix::SignalKind>,
) -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::signal;
    // Register now, so a signal that arrives right after `start` is not missed.
    let mut streams = Vec::new();
    for kind in kinds {
        match signal(kind) {
            Ok(s) => streams.push(s),
            Err(e) => tracing::warn!(error = %e, "cannot listen for a signal"),
        }
    }
    async move {
        if streams.is_empty() {
            return std::future::pending().await;
        }
        std::future::poll_fn(|cx| {
            for s in &mut streams {
                if s.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(());
                }
            }
            std::task::Poll::Pending
        })
        .await;
    }
}

#[cfg(not(unix))]
fn wait_for_signal(ctrl_c: Vec<()>) -> impl Future<Output = ()> + Send + 'static {
    async move {
        if ctrl_c.is_empty() {
            return std::future::pending().await;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
