//! The HTTP side of `HubServer` without a web framework: one hand-parsed HTTP/1.1
//! request per connection (answered with `Connection: close`), the user's [`Routes`],
//! link's `/health` and `/state`, and WebSocket upgrades into the hub.

use crate::runtime::{BoxSocket, WsTransport, accept_tls};
use async_net::{TcpListener, TcpStream};
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::Role;
use futures_util::FutureExt;
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use link_driver::hub::Hub;
use link_driver::runtime::{BoxFuture, Runtime, timeout};
use link_driver::server::{HttpAnswer, HttpServe, LinkRoutes, Serve, StopHttp};
use link_driver::ws::hub_ws_config;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest request head accepted (request line and headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A client must finish TLS and send its request head within this time.
const MAX_HEADERS: usize = 64;
/// After refusing a request, how long and how much of its remainder is read.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1024 * 1024;

/// A request to a user route: the parsed head (bodies are not read).
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    remote: Option<SocketAddr>,
}

impl Request {
    /// `GET`, `POST`, …
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The client's address.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }
}

/// A user route's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Response {
    /// A response with any content type.
    pub fn new(status: u16, content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// `text/plain` in UTF-8.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// `application/json`.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::new(status, "application/json; charset=utf-8", body.to_string())
    }
}

impl From<HttpAnswer> for Response {
    fn from(a: HttpAnswer) -> Self {
        Self::new(a.status, a.content_type, a.body)
    }
}

type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

/// User routes of a `HubServer` (`routes`): exact paths, optionally per method,
/// answered before link's own routes and the WebSocket upgrade.
#[derive(Clone, Default)]
pub struct Routes {
    table: Vec<(Option<String>, String, Handler)>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.table.iter().map(|(m, p, _)| (m, p)))
            .finish()
    }
}

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer `GET` (and `HEAD`) requests for `path` with `handler`.
    pub fn get<F, Fut>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.add(Some("GET"), path, handler)
    }

    /// Answer requests for `path` with any method.
    pub fn any<F, Fut>(self, path: &str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        self.add(None, path, handler)
    }

    fn add<F, Fut>(mut self, method: Option<&str>, path: &str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        self.table.push((
            method.map(str::to_owned),
            link_driver::server::normalize(path).to_owned(),
            handler,
        ));
        self
    }

    /// These routes, then `other`'s (the first match wins).
    pub fn merge(mut self, other: Routes) -> Self {
        self.table.extend(other.table);
        self
    }

    fn find(&self, req: &Request) -> Option<&Handler> {
        let path = link_driver::server::normalize(&req.path);
        let method = if req.method == "HEAD" {
            "GET"
        } else {
            req.method.as_str()
        };
        self.table
            .iter()
            .find(|(m, p, _)| p == path && m.as_deref().is_none_or(|m| m == method))
            .map(|(_, _, h)| h)
    }
}

struct Site {
    user_routes: Routes,
    routes: LinkRoutes,
    tls: Option<futures_rustls::TlsAcceptor>,
    /// How long the request head may take (`HubServerOptions::http_head_timeout`).
    head_timeout: Duration,
    stop: StopHttp,
}

/// Accept connections until the server stops; each gets its own task. The
/// [`link_driver::server::HttpDone`] report goes out when the listener and every
/// connection task have dropped their share of it.
pub(crate) async fn accept_loop<R: Serve<Routes = Routes>>(
    listener: TcpListener,
    http: HttpServe<R>,
) {
    let done = Arc::new(http.done);
    let site = Arc::new(Site {
        user_routes: http.user_routes,
        routes: http.routes,
        tls: http.tls.map(futures_rustls::TlsAcceptor::from),
        head_timeout: http.head_timeout,
        stop: http.stop.clone(),
    });
    let rt = R::default();
    let mut stopped = std::pin::pin!(http.stop.wait());
    loop {
        let accepted = timeout(stopped.as_mut(), listener.accept()).await;
        match accepted {
            None => break,
            Some(Ok((tcp, remote))) => {
                let (site, done) = (site.clone(), done.clone());
                rt.spawn(async move {
                    serve_connection(&R::default(), &site, tcp, remote).await;
                    drop(done);
                });
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "accept failed");
                rt.timer(Instant::now() + Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection<R: Runtime>(rt: &R, site: &Site, tcp: TcpStream, remote: SocketAddr) {
    let deadline = rt.timer(Instant::now() + site.head_timeout);
    let head = timeout(
        deadline,
        timeout(site.stop.clone().wait(), async {
            let mut socket = accept_tls(tcp, site.tls.as_ref()).await.ok()?;
            let head = read_head(&mut socket).await;
            Some((socket, head))
        }),
    )
    .await;
    let Some(Some(Some((mut socket, head)))) = head else {
        tracing::debug!(%remote, "no request head (timeout, TLS failure or shutdown)");
        return;
    };
    let (req, leftover) = match head {
        Ok(parsed) => parsed,
        Err(status) => {
            let _ = respond(&mut socket, "GET", Response::text(status, "bad request")).await;
            // Read what the client is still sending (bounded), so that closing with
            // unread input does not reset the connection before it reads the answer.
            let linger = rt.timer(Instant::now() + LINGER);
            let _ = timeout(linger, discard(&mut socket)).await;
            return;
        }
    };
    let req = Request {
        remote: Some(remote),
        ..req
    };
    if let Some(handler) = site.user_routes.find(&req) {
        let method = req.method.clone();
        // A panicking route answers 500 instead of taking the connection task down.
        let resp = std::panic::AssertUnwindSafe(async { handler(req).await })
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Response::text(500, "internal error"));
        let _ = respond(&mut socket, &method, resp).await;
        return;
    }
    let upgrade = req
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade && site.routes.upgrades_at(&req.path) {
        upgrade_into_hub(site.routes.hub(), socket, &req, leftover).await;
        return;
    }
    let answer = site.routes.answer(&req.path).await;
    let _ = respond(&mut socket, &req.method, answer.into()).await;
}

/// Read until the end of the request head. `Err(status)` for a head too large or
/// malformed. Returns the request and any bytes read past the head.
async fn read_head(socket: &mut BoxSocket) -> Result<(Request, Vec<u8>), u16> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = socket.read(&mut chunk).await.map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let target = parsed.path.unwrap_or("/");
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p, Some(q.to_owned())),
                    None => (target, None),
                };
                let req = Request {
                    method: parsed.method.unwrap_or("GET").to_owned(),
                    path: path.to_owned(),
                    query,
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                    remote: None,
                };
                return Ok((req, buf[len..].to_vec()));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {}
            Ok(httparse::Status::Partial) => return Err(431),
            Err(httparse::Error::TooManyHeaders) => return Err(431),
            Err(_) => return Err(400),
        }
    }
}

async fn discard(socket: &mut BoxSocket) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < LINGER_BYTES {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// Complete the WebSocket handshake by hand (the head is already read) and run the
/// socket as a hub connection.
async fn upgrade_into_hub(hub: &Hub, mut socket: BoxSocket, req: &Request, leftover: Vec<u8>) {
    let key = req.header("sec-websocket-key");
    let version_ok = req.header("sec-websocket-version").map(str::trim) == Some("13");
    let connection_ok = req.header("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    let key = match key {
        Some(k) if req.method == "GET" && version_ok && connection_ok => k,
        _ => {
            let mut resp = Response::text(400, "bad websocket upgrade");
            if !version_ok {
                resp = Response::text(426, "websocket version 13 required");
            }
            let _ = respond(&mut socket, &req.method, resp).await;
            return;
        }
    };
    let accept =
        async_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if socket.write_all(head.as_bytes()).await.is_err() || socket.flush().await.is_err() {
        return;
    }
    let config = hub_ws_config(hub.max_message_bytes());
    let ws =
        WebSocketStream::from_partially_read(socket, leftover, Role::Server, Some(config)).await;
    hub.attach(WsTransport::new(ws), req.remote).await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

async fn respond(socket: &mut BoxSocket, method: &str, resp: Response) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    if resp.status == 426 {
        out.push_str("Sec-WebSocket-Version: 13\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if method != "HEAD" {
        bytes.extend_from_slice(&resp.body);
    }
    socket.write_all(&bytes).await?;
    socket.flush().await?;
    socket.close().await
}
