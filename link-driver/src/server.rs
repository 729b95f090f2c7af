//! `HubServer` (the reference's `createHubServer`) apart from its HTTP stack: the
//! options, the `/health` and `/state` answers, and the graceful shutdown sequence.
//! An adapter implements [`Serve`] (bind, serve HTTP and upgrades, stop on request);
//! everything a user calls is here, once, for every runtime.

use crate::error::Error;
use crate::hub::{Hub, HubOptions, SleepFn};
use crate::runtime::{BoxFuture, Runtime, timeout, wall_ms};
use crate::tls::load_tls_config;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// `extraState`: fields merged into `/state`.
pub type ExtraState = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;
type ShutdownHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What a runtime adds to [`Runtime`] to run a [`HubServer`].
pub trait Serve: Runtime + Default + fmt::Debug {
    /// User routes the server can carry besides link's own (axum's `Router` on tokio).
    type Routes: Default + Send + 'static;

    /// Combine routes given in two [`HubServerOptions::routes`] calls.
    fn merge_routes(first: Self::Routes, then: Self::Routes) -> Self::Routes;

    /// Bind `http.host:http.port`, start serving (user routes first, then
    /// [`LinkRoutes`], WebSocket upgrades into the hub), and return the bound address.
    /// The server stops accepting when [`HttpServe::stop`] fires and reports with
    /// [`HttpDone`] once its connections are gone.
    fn serve(http: HttpServe<Self>) -> BoxFuture<'static, Result<SocketAddr, Error>>;

    /// A signal the server can stop on (tokio's `SignalKind`, async-signal's `Signal`).
    type Signal: Send + 'static;

    /// The signals `handle_signals` listens for by default: SIGINT and SIGTERM.
    fn default_signals() -> Vec<Self::Signal>;

    /// Completes when one of `signals` arrives (never, where the platform has none).
    /// Registers at once, so a signal right after `start` is not missed.
    fn shutdown_signal(&self, signals: Vec<Self::Signal>) -> BoxFuture<'static, ()>;
}

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
pub struct HubServerOptions<R: Serve> {
    hub: HubOptions<R>,
    host: String,
    port: u16,
    path: Option<String>,
    health_route: bool,
    state_route: bool,
    routes: R::Routes,
    extra_state: Option<ExtraState>,
    handle_signals: bool,
    signals: Vec<R::Signal>,
    drain_delay: Duration,
    shutdown_timeout: Duration,
    http_head_timeout: Duration,
    on_shutdown: Option<ShutdownHook>,
    tls: Option<TlsSource>,
    per_message_deflate: bool,
}

impl<R: Serve> fmt::Debug for HubServerOptions<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

impl<R: Serve> HubServerOptions<R> {
    /// A server around a hub with `hub` options.
    pub fn new(hub: HubOptions<R>) -> Self {
        Self {
            hub,
            host: "0.0.0.0".into(),
            port: 8080,
            path: None,
            health_route: true,
            state_route: false,
            routes: R::Routes::default(),
            extra_state: None,
            handle_signals: true,
            signals: R::default_signals(),
            drain_delay: Duration::from_millis(250),
            shutdown_timeout: Duration::from_millis(30_000),
            http_head_timeout: DEFAULT_HTTP_HEAD_TIMEOUT,
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
    pub fn routes(mut self, routes: R::Routes) -> Self {
        self.routes = R::merge_routes(std::mem::take(&mut self.routes), routes);
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

    /// Which signals stop the server when `handle_signals` is on (`signals`, SIGINT
    /// and SIGTERM).
    pub fn signals(mut self, signals: impl IntoIterator<Item = R::Signal>) -> Self {
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

    /// How long a client may take to send an HTTP request head (the request line and
    /// headers, the upgrade request included) before its connection is closed; 10 s.
    /// Without it, half-sent requests would hold connections open for as long as the
    /// sender likes (Node's server has `headersTimeout` for the same reason).
    pub fn http_head_timeout(mut self, d: Duration) -> Self {
        self.http_head_timeout = d;
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

    /// Bind, start serving and return the running server. Must be called within the
    /// runtime.
    pub async fn start(self) -> Result<HubServer, Error> {
        HubServer::start(self).await
    }
}

/// Default of [`HubServerOptions::http_head_timeout`].
pub const DEFAULT_HTTP_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What an adapter's HTTP server is given by [`Serve::serve`].
pub struct HttpServe<R: Serve> {
    /// Interface to bind.
    pub host: String,
    /// Port to bind (0 = any).
    pub port: u16,
    /// The user's routes, answered first.
    pub user_routes: R::Routes,
    /// link's own routes and the hub to upgrade into.
    pub routes: LinkRoutes,
    /// Serve TLS with this identity (`wss://`, `https://`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Close a connection whose request head has not fully arrived within this.
    pub head_timeout: Duration,
    /// Fires when the server must stop accepting.
    pub stop: StopHttp,
    /// Report once the server has closed.
    pub done: HttpDone,
}

impl<R: Serve> fmt::Debug for HttpServe<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServe")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Fires when the HTTP server must stop accepting (cloneable, one per waiter).
#[derive(Debug, Clone)]
pub struct StopHttp(watch::Receiver<bool>);

impl StopHttp {
    /// Completes once shutdown has begun.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }
}

/// The HTTP server's report that it has closed; dropping it counts as the report.
#[derive(Debug)]
pub struct HttpDone(watch::Sender<bool>);

impl Drop for HttpDone {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// An HTTP answer of link's own routes, for the adapter to write out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` header value.
    pub content_type: &'static str,
    /// Response body.
    pub body: String,
}

impl HttpAnswer {
    fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json; charset=utf-8",
            body,
        }
    }

    fn error(status: u16, error: impl fmt::Display) -> Self {
        Self::json(
            status,
            serde_json::json!({ "ok": false, "error": error.to_string() }).to_string(),
        )
    }

    /// `404 not found`, for paths no route takes.
    pub fn not_found() -> Self {
        Self {
            status: 404,
            content_type: "text/plain",
            body: "not found".into(),
        }
    }
}

/// link's routes of a [`HubServer`]: where WebSockets upgrade into the hub, `/health`
/// and `/state`.
#[derive(Clone)]
pub struct LinkRoutes {
    hub: Hub,
    path: Option<String>,
    health: bool,
    state: bool,
    extra_state: Option<ExtraState>,
}

impl fmt::Debug for LinkRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkRoutes")
            .field("path", &self.path)
            .field("health", &self.health)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Path without trailing slashes (`/` stays `/`).
pub fn normalize(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    if p.is_empty() { "/" } else { p }
}

impl LinkRoutes {
    /// The hub that upgraded sockets attach to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Whether a WebSocket upgrade at `path` (without query) goes into the hub.
    pub fn upgrades_at(&self, path: &str) -> bool {
        self.path.as_deref().is_none_or(|p| p == normalize(path))
    }

    /// The answer to a plain (non-upgrade) request for `path` (without query).
    pub async fn answer(&self, path: &str) -> HttpAnswer {
        match normalize(path) {
            "/health" if self.health => self.health().await,
            "/state" if self.state => self.state().await,
            _ => HttpAnswer::not_found(),
        }
    }

    async fn health(&self) -> HttpAnswer {
        match self.hub.health().await {
            Ok(h) => {
                let body = serde_json::json!({
                    "ok": true,
                    "now": wall_ms(),
                    "hub": h.to_value().to_serde(),
                });
                HttpAnswer::json(200, body.to_string())
            }
            Err(e) => HttpAnswer::error(503, e),
        }
    }

    async fn state(&self) -> HttpAnswer {
        let mut state = match self.hub.state().await {
            Ok(s) => match s.to_value().to_serde() {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
            Err(e) => return HttpAnswer::error(500, e),
        };
        if let Some(f) = &self.extra_state {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f())) {
                Ok(serde_json::Value::Object(m)) => state.extend(m),
                Ok(_) => {}
                Err(_) => return HttpAnswer::error(500, "extraState failed"),
            }
        }
        match serde_json::to_string_pretty(&serde_json::Value::Object(state)) {
            Ok(body) => HttpAnswer::json(200, body),
            Err(e) => HttpAnswer::error(500, e),
        }
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
    sleep: SleepFn,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls)
            .field("stopping", &self.stopping)
            .finish_non_exhaustive()
    }
}

impl HubServer {
    async fn start<R: Serve>(opts: HubServerOptions<R>) -> Result<HubServer, Error> {
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
        let runtime = R::default();
        let hub = opts.hub.build();
        let (stop_http, stop_rx) = watch::channel(false);
        let (http_done_tx, http_done) = watch::channel(false);
        let is_tls = tls.is_some();
        let local_addr = R::serve(HttpServe {
            host: opts.host,
            port: opts.port,
            user_routes: opts.routes,
            routes: LinkRoutes {
                hub: hub.clone(),
                path: opts.path,
                health: opts.health_route,
                state: opts.state_route,
                extra_state: opts.extra_state,
            },
            tls,
            head_timeout: opts.http_head_timeout,
            stop: StopHttp(stop_rx),
            done: HttpDone(http_done_tx),
        })
        .await?;
        if opts.state_route && local_addr.ip().is_unspecified() {
            tracing::info!(%local_addr, "/state is enabled on a public bind: it shows peer kinds, hellos and statuses");
        }
        let sleep = hub.sleep_fn();
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
                sleep,
            }),
        };
        if opts.handle_signals {
            let s = server.clone();
            let signal = runtime.shutdown_signal(opts.signals);
            runtime.spawn(async move {
                signal.await;
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
    /// closed with 1001 `server shutdown`), terminate stragglers after `drain_delay`, wait for the HTTP
    /// server, run `on_shutdown`. Bounded by `shutdown_timeout` ([`Error::Timeout`]).
    pub async fn stop(&self) -> Result<(), Error> {
        if self.inner.stopping.swap(true, Ordering::AcqRel) {
            return self.wait().await;
        }
        let inner = self.inner.clone();
        let result = timeout((inner.sleep)(inner.shutdown_timeout), async {
            inner.stop_http.send_replace(true);
            let drained = timeout(
                (inner.sleep)(inner.drain_delay),
                inner.hub.drain_with(1001, "server shutdown"),
            )
            .await;
            if !matches!(drained, Some(Ok(()))) {
                let _ = inner.hub.terminate_all().await;
            }
            // The listener is closed and every socket is gone. An HTTP connection still
            // in the middle of a request (a stalled or hostile client) must not hold the
            // shutdown until `shutdown_timeout`.
            let mut http_done = inner.http_done.clone();
            let _ = timeout((inner.sleep)(inner.drain_delay), http_done.wait_for(|d| *d)).await;
            let hook = match inner.on_shutdown.lock() {
                Ok(mut g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            if let Some(hook) = hook {
                hook().await;
            }
        })
        .await
        .ok_or(Error::Timeout(inner.shutdown_timeout));
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
