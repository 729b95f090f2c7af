//! `HubServer`, batteries included (the reference's `createHubServer`): an HTTP
//! server with `/health`, opt-in `/state`, user routes and WebSocket upgrades into a
//! [`Hub`]; SIGINT/SIGTERM handling; graceful drain and shutdown bounded by a
//! timeout; an `on_shutdown` hook; wss with a certificate and key.

use crate::HubOptions;
use crate::ws::{RemoteAddr, remote_addr, upgrade};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use link_driver::Error;
use link_driver::hub::Hub;
use link_driver::runtime::wall_ms;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

type ExtraState = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;
type ShutdownHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Where the server's TLS identity comes from.
enum TlsSource {
    Files { cert: PathBuf, key: PathBuf },
    Config(Arc<rustls::ServerConfig>),
}

/// Options for a [`HubServer`] (`createHubServer`), by value.
///
/// Defaults: `host` 0.0.0.0, `port` 8080, WebSocket upgrades on any path, `/health`
/// on, `/state` off, signal handling on (SIGINT, SIGTERM), `drain_delay` 250 ms,
/// `shutdown_timeout` 30 s, no compression, plain `ws://`.
pub struct HubServerOptions {
    hub: HubOptions,
    host: String,
    port: u16,
    path: Option<String>,
    health_route: bool,
    state_route: bool,
    routes: Router,
    extra_state: Option<ExtraState>,
    handle_signals: bool,
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::SignalKind>,
    drain_delay: Duration,
    shutdown_timeout: Duration,
    on_shutdown: Option<ShutdownHook>,
    tls: Option<TlsSource>,
    per_message_deflate: bool,
}

impl std::fmt::Debug for HubServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubServerOptions")
            .field("hub", &self.hub)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("health_route", &self.health_route)
            .field("state_route", &self.state_route)
            .field("handle_signals", &self.handle_signals)
            .field("drain_delay", &self.drain_delay)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl HubServerOptions {
    /// A server around a hub with `hub` options.
    pub fn new(hub: HubOptions) -> Self {
        Self {
            hub,
            host: "0.0.0.0".into(),
            port: 8080,
            path: None,
            health_route: true,
            state_route: false,
            routes: Router::new(),
            extra_state: None,
            handle_signals: true,
            #[cfg(unix)]
            signals: vec![
                tokio::signal::unix::SignalKind::interrupt(),
                tokio::signal::unix::SignalKind::terminate(),
            ],
            drain_delay: Duration::from_millis(250),
            shutdown_timeout: Duration::from_millis(30_000),
            on_shutdown: None,
            tls: None,
            per_message_deflate: false,
        }
    }

    /// Interface to bind (`host`, `0.0.0.0`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Port to bind (`port`, 8080; 0 = any free port, see [`HubServer::local_addr`]).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Accept WebSocket upgrades only at this path (`path`; default: any path).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(normalize(&path.into()).to_owned());
        self
    }

    /// Serve `GET /health` (`enableHealthRoute`, true).
    pub fn health_route(mut self, on: bool) -> Self {
        self.health_route = on;
        self
    }

    /// Serve `GET /state` with peers and statuses (`enableStateRoute`, false).
    pub fn state_route(mut self, on: bool) -> Self {
        self.state_route = on;
        self
    }

    /// User routes (`routes`): they take precedence over `/health`, `/state` and the
    /// WebSocket upgrade.
    pub fn routes(mut self, router: Router) -> Self {
        self.routes = self.routes.merge(router);
        self
    }

    /// Extra fields merged into `/state` (`extraState`); must return a JSON object.
    pub fn extra_state<F>(mut self, f: F) -> Self
    where
        F: Fn() -> serde_json::Value + Send + Sync + 'static,
    {
        self.extra_state = Some(Arc::new(f));
        self
    }

    /// Stop gracefully on SIGINT/SIGTERM (`handleSignals`, true).
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// Which signals stop the server when `handle_signals` is on (`signals`,
    /// SIGINT and SIGTERM).
    #[cfg(unix)]
    pub fn signals(
        mut self,
        signals: impl IntoIterator<Item = tokio::signal::unix::SignalKind>,
    ) -> Self {
        self.signals = signals.into_iter().collect();
        self
    }

    /// Time between asking sockets to close and terminating stragglers
    /// (`drainDelayMs`, 250 ms).
    pub fn drain_delay(mut self, d: Duration) -> Self {
        self.drain_delay = d;
        self
    }

    /// Hard cap on the whole shutdown (`shutdownTimeoutMs`, 30 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// Run at the end of shutdown, after sockets and the HTTP server are closed
    /// (`onShutdown`).
    pub fn on_shutdown<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_shutdown = Some(Box::new(move || Box::pin(f())));
        self
    }

    /// Serve `wss://` with a PEM certificate chain and private key (read at start).
    pub fn tls(mut self, cert_pem: impl Into<PathBuf>, key_pem: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsSource::Files {
            cert: cert_pem.into(),
            key: key_pem.into(),
        });
        self
    }

    /// Serve `wss://` with a ready rustls configuration.
    pub fn tls_config(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(TlsSource::Config(config));
        self
    }

    /// permessage-deflate (`perMessageDeflate`, false). Not available in this
    /// transport: `true` makes [`HubServerOptions::start`] fail.
    pub fn per_message_deflate(mut self, on: bool) -> Self {
        self.per_message_deflate = on;
        self
    }

    /// Bind, start serving and return the running server.
    pub async fn start(self) -> Result<HubServer, Error> {
        HubServer::start(self).await
    }
}

/// Load a PEM certificate chain and private key into a rustls server configuration
/// (`ring` provider).
pub fn load_tls_config(
    cert_pem: impl AsRef<std::path::Path>,
    key_pem: impl AsRef<std::path::Path>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert_pem.as_ref())
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Io(format!("certificate {}: {e}", cert_pem.as_ref().display())))?;
    let key = PrivateKeyDer::from_pem_file(key_pem.as_ref())
        .map_err(|e| Error::Io(format!("private key {}: {e}", key_pem.as_ref().display())))?;
    server_tls_config(certs, key)
}

/// A rustls server configuration from DER certificates and key (`ring` provider).
pub fn server_tls_config(
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Io(format!("tls: {e}")))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| Error::Io(format!("tls: {e}")))?;
    Ok(Arc::new(config))
}

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

/// A running hub server. Stop it with [`HubServer::stop`] (or a signal); wait for
/// the end with [`HubServer::wait`].
#[derive(Clone, Debug)]
pub struct HubServer {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    local_addr: SocketAddr,
    tls: bool,
    stopping: AtomicBool,
    stop_http: watch::Sender<bool>,
    http_done: watch::Receiver<bool>,
    done: watch::Sender<Option<Result<(), Error>>>,
    drain_delay: Duration,
    shutdown_timeout: Duration,
    on_shutdown: std::sync::Mutex<Option<ShutdownHook>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls)
            .field("stopping", &self.stopping)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Routes {
    hub: Hub,
    path: Option<String>,
    health: bool,
    state: bool,
    extra_state: Option<ExtraState>,
}

/// Path without query and without trailing slashes (`/` stays `/`).
fn normalize(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    if p.is_empty() { "/" } else { p }
}

fn is_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        "not found",
    )
        .into_response()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn dispatch(routes: Routes, req: Request) -> Response {
    let path = normalize(req.uri().path()).to_owned();
    if is_upgrade(&req) && routes.path.as_deref().is_none_or(|p| p == path) {
        let remote = remote_addr(req.extensions());
        let (mut parts, _body) = req.into_parts();
        return match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => upgrade(&routes.hub, ws, remote),
            Err(rejection) => rejection.into_response(),
        };
    }
    match path.as_str() {
        "/health" if routes.health => match routes.hub.health().await {
            Ok(h) => {
                let body = serde_json::json!({
                    "ok": true,
                    "now": wall_ms(),
                    "hub": h.to_value().to_serde(),
                });
                json_response(StatusCode::OK, body.to_string())
            }
            Err(e) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "ok": false, "error": e.to_string() }).to_string(),
            ),
        },
        "/state" if routes.state => {
            let state = match routes.hub.state().await {
                Ok(s) => s.to_value().to_serde(),
                Err(e) => {
                    return json_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        serde_json::json!({ "ok": false, "error": e.to_string() }).to_string(),
                    );
                }
            };
            let mut state = match state {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            if let Some(f) = &routes.extra_state {
                let extra = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f()));
                match extra {
                    Ok(serde_json::Value::Object(m)) => state.extend(m),
                    Ok(_) => {}
                    Err(_) => {
                        return json_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            serde_json::json!({ "ok": false, "error": "extraState failed" })
                                .to_string(),
                        );
                    }
                }
            }
            match serde_json::to_string_pretty(&serde_json::Value::Object(state)) {
                Ok(body) => json_response(StatusCode::OK, body),
                Err(e) => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "ok": false, "error": e.to_string() }).to_string(),
                ),
            }
        }
        _ => not_found(),
    }
}

impl HubServer {
    async fn start(opts: HubServerOptions) -> Result<HubServer, Error> {
        if opts.per_message_deflate {
            return Err(Error::Unsupported {
                option: "perMessageDeflate",
                why: "the WebSocket library has no permessage-deflate; leave it off",
            });
        }
        let tls = match opts.tls {
            None => None,
            Some(TlsSource::Config(c)) => Some(c),
            Some(TlsSource::Files { cert, key }) => Some(load_tls_config(cert, key)?),
        };
        let listener = TcpListener::bind((opts.host.as_str(), opts.port))
            .await
            .map_err(|e| Error::Io(format!("bind {}:{}: {e}", opts.host, opts.port)))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::Io(e.to_string()))?;
        if opts.state_route && local_addr.ip().is_unspecified() {
            tracing::info!(%local_addr, "/state is enabled on a public bind: it shows peer kinds, hellos and statuses");
        }
        let hub = opts.hub.build();
        let routes = Routes {
            hub: hub.clone(),
            path: opts.path,
            health: opts.health_route,
            state: opts.state_route,
            extra_state: opts.extra_state,
        };
        let app: Router = opts.routes.fallback(move |req: Request<Body>| {
            let routes = routes.clone();
            async move { dispatch(routes, req).await }
        });
        let (stop_http, mut stop_rx) = watch::channel(false);
        let (http_done_tx, http_done) = watch::channel(false);
        let shutdown = async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        };
        let is_tls = tls.is_some();
        match tls {
            None => {
                let serve = axum::serve(
                    NoDelayListener(listener),
                    app.into_make_service_with_connect_info::<RemoteAddr>(),
                )
                .with_graceful_shutdown(shutdown);
                tokio::spawn(async move {
                    if let Err(e) = serve.await {
                        tracing::warn!(error = %e, "http server failed");
                    }
                    http_done_tx.send_replace(true);
                });
            }
            Some(config) => {
                let serve = axum::serve(
                    TlsListener::new(listener, config),
                    app.into_make_service_with_connect_info::<RemoteAddr>(),
                )
                .with_graceful_shutdown(shutdown);
                tokio::spawn(async move {
                    if let Err(e) = serve.await {
                        tracing::warn!(error = %e, "https server failed");
                    }
                    http_done_tx.send_replace(true);
                });
            }
        }
        let (done, _) = watch::channel(None);
        let server = HubServer {
            inner: Arc::new(Inner {
                hub,
                local_addr,
                tls: is_tls,
                stopping: AtomicBool::new(false),
                stop_http,
                http_done,
                done,
                drain_delay: opts.drain_delay,
                shutdown_timeout: opts.shutdown_timeout,
                on_shutdown: std::sync::Mutex::new(opts.on_shutdown),
            }),
        };
        if opts.handle_signals {
            let s = server.clone();
            #[cfg(unix)]
            let waiting = wait_for_signal(opts.signals);
            #[cfg(not(unix))]
            let waiting = wait_for_signal();
            tokio::spawn(async move {
                waiting.await;
                tracing::info!("signal received: shutting down");
                let _ = s.stop().await;
            });
        }
        tracing::info!(%local_addr, tls = is_tls, "link hub listening");
        Ok(server)
    }

    /// The hub behind the server.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The URL clients connect to (`ws://` or `wss://`, with the bound address).
    pub fn url(&self) -> String {
        let scheme = if self.inner.tls { "wss" } else { "ws" };
        format!("{scheme}://{}", self.inner.local_addr)
    }

    /// Whether a shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    /// Graceful shutdown (idempotent): stop accepting, drain the hub (sockets are
    /// asked to close), terminate stragglers after `drain_delay`, wait for the HTTP
    /// server, run `on_shutdown`. Bounded by `shutdown_timeout` ([`Error::Timeout`]).
    pub async fn stop(&self) -> Result<(), Error> {
        if self.inner.stopping.swap(true, Ordering::AcqRel) {
            return self.wait().await;
        }
        let inner = self.inner.clone();
        let result = tokio::time::timeout(inner.shutdown_timeout, async {
            inner.stop_http.send_replace(true);
            let drained = tokio::time::timeout(
                inner.drain_delay,
                inner.hub.drain_with(1001, "server shutdown"),
            )
            .await;
            if !matches!(drained, Ok(Ok(()))) {
                let _ = inner.hub.terminate_all().await;
            }
            // The listener is closed and every socket is gone. An HTTP connection still
            // in the middle of a request (a stalled or hostile client; there is no
            // header timeout) must not hold the shutdown until `shutdown_timeout`.
            let mut http_done = inner.http_done.clone();
            let _ = tokio::time::timeout(inner.drain_delay, http_done.wait_for(|d| *d)).await;
            let hook = match inner.on_shutdown.lock() {
                Ok(mut g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            if let Some(hook) = hook {
                hook().await;
            }
        })
        .await
        .map_err(|_| Error::Timeout(inner.shutdown_timeout));
        tracing::info!(ok = result.is_ok(), "link hub stopped");
        inner.done.send_replace(Some(result.clone()));
        result
    }

    /// Wait until the server has shut down (by [`HubServer::stop`] or a signal).
    pub async fn wait(&self) -> Result<(), Error> {
        let mut rx = self.inner.done.subscribe();
        match rx.wait_for(|d| d.is_some()).await {
            Ok(d) => d.clone().unwrap_or(Ok(())),
            Err(_) => Ok(()),
        }
    }
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
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
