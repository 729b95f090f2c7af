//! `LinkOptions`: the by-value builder for a client, with every option of the
//! reference `LinkClient` (PROTOCOL.md §13) and its default, plus `from_env()` for the
//! reference's `LINK_*` variables.

use super::{LinkClient, RpcContext};
use crate::error::Error;
use crate::handler::{self, ErasedHandler, RpcHandlerError};
use crate::runtime::Runtime;
use link_sansio::client::ClientConfig;
use link_sansio::wire::{self, HashAlgo, Value};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Status provider (`makeStatus`): called on every ready and every `status_interval`.
/// `None` when the status does not convert to wire JSON.
pub(crate) type StatusFn = Arc<dyn Fn() -> Option<Value> + Send + Sync>;

/// Options for a [`LinkClient`], by value: `LinkOptions::new().kind(..).secret(..)`
/// then `.connect(url)`.
///
/// Defaults are the reference's (PROTOCOL.md §13): `hash_algo` sha256,
/// `replay_window` 300 s, `max_recent_ids` 10 000, `max_message_bytes` 1 MiB,
/// `max_buffered_bytes` 4 MiB, `max_outbox_bytes` 16 MiB, `default_rpc_timeout` 5 s,
/// `max_concurrent_rpc` 256, `status_interval` 10 s, `keepalive_interval` 30 s,
/// `hello_ack_diagnostic` 5 s, reconnect 1 s → 10 s × 1.5 with jitter 0.5, unlimited
/// reconnect attempts, `stop_drain` 5 s, `max_listeners` 100, no compression,
/// `reconnect_on_rejection` false, `expose_rpc_errors` false, `name` = kind.
pub struct LinkOptions<R> {
    pub(crate) runtime: R,
    pub(crate) config: ClientConfig,
    pub(crate) handlers: BTreeMap<String, ErasedHandler<RpcContext>>,
    pub(crate) catch_all: Option<ErasedHandler<RpcContext>>,
    pub(crate) status: Option<StatusFn>,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) subscription_capacity: usize,
    pub(crate) event_capacity: usize,
    pub(crate) command_capacity: usize,
    pub(crate) max_listeners: usize,
}

impl<R: fmt::Debug> fmt::Debug for LinkOptions<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut config = self.config.clone();
        config.secret = "<redacted>".into();
        f.debug_struct("LinkOptions")
            .field("config", &config)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .field("catch_all", &self.catch_all.is_some())
            .field("status", &self.status.is_some())
            .field("tls", &self.tls.is_some())
            .field("subscription_capacity", &self.subscription_capacity)
            .field("event_capacity", &self.event_capacity)
            .finish()
    }
}

impl<R: Runtime + Default> Default for LinkOptions<R> {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty => |$s:ident, $v:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name(mut self, $v: $ty) -> Self {
            let $s = &mut self;
            $body;
            self
        }
    };
}

impl<R: Runtime + Default> LinkOptions<R> {
    /// Options with every default; set at least `kind` and `secret`.
    pub fn new() -> Self {
        Self::with_runtime(R::default())
    }

    /// Options from the reference's environment variables (`linkClientOptionsFromEnv`):
    /// `LINK_URL`, `LINK_KIND`, `LINK_SECRET`, `LINK_NAME`, `LINK_HASH_ALGO`,
    /// `LINK_PERMESSAGE_DEFLATE`, `LINK_RECONNECT_ON_REJECTION`, `LINK_RECONNECT_JITTER`,
    /// `LINK_REPLAY_WINDOW_MS`, `LINK_MAX_RECENT_IDS`, `LINK_MAX_MESSAGE_BYTES`,
    /// `LINK_MAX_BUFFERED_BYTES`. Unset or empty variables keep the default.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_prefixed("LINK_")
    }

    /// Like [`LinkOptions::from_env`] with another prefix (`FOO_URL`, `FOO_KIND`, …).
    pub fn from_env_prefixed(prefix: &str) -> Result<Self, Error> {
        Self::new().apply_env(|name| std::env::var(format!("{prefix}{name}")).ok(), prefix)
    }
}

impl<R: Runtime> LinkOptions<R> {
    /// Options on an explicit runtime value.
    pub fn with_runtime(runtime: R) -> Self {
        Self {
            runtime,
            config: ClientConfig::new("", "", ""),
            handlers: BTreeMap::new(),
            catch_all: None,
            status: None,
            tls: None,
            subscription_capacity: 1024,
            event_capacity: 1024,
            command_capacity: 1024,
            max_listeners: 100,
        }
    }

    /// Read options through `get(name)` (name without prefix); used by `from_env`.
    pub fn apply_env(
        mut self,
        get: impl Fn(&str) -> Option<String>,
        prefix: &str,
    ) -> Result<Self, Error> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let bad = |name: &str, problem: String| Error::Env {
            var: format!("{prefix}{name}"),
            problem,
        };
        let num = |name: &str| -> Result<Option<u64>, Error> {
            match var(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| bad(name, format!("not a non-negative integer: {v:?}"))),
            }
        };
        let boolean = |name: &str| -> Result<Option<bool>, Error> {
            match var(name).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(None),
                Some(v) => match v.as_str() {
                    "1" | "true" | "yes" | "on" => Ok(Some(true)),
                    "0" | "false" | "no" | "off" => Ok(Some(false)),
                    _ => Err(bad(name, format!("not a boolean: {v:?}"))),
                },
            }
        };
        if let Some(v) = var("URL") {
            self.config.url = v;
        }
        if let Some(v) = var("KIND") {
            self.config.kind = v;
        }
        if let Some(v) = var("SECRET") {
            self.config.secret = v;
        }
        if let Some(v) = var("NAME") {
            self.config.name = Some(v);
        }
        if let Some(v) = var("HASH_ALGO") {
            self.config.hash_algo = v
                .parse::<HashAlgo>()
                .map_err(|e| bad("HASH_ALGO", e.to_string()))?;
        }
        if let Some(v) = boolean("PERMESSAGE_DEFLATE")? {
            self.config.per_message_deflate = v;
        }
        if let Some(v) = boolean("RECONNECT_ON_REJECTION")? {
            self.config.reconnect_on_rejection = v;
        }
        if let Some(v) = var("RECONNECT_JITTER") {
            let j = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|j| (0.0..=1.0).contains(j))
                .ok_or_else(|| bad("RECONNECT_JITTER", format!("not a number in 0..=1: {v:?}")))?;
            self.config.reconnect_jitter = j;
        }
        if let Some(v) = num("REPLAY_WINDOW_MS")? {
            self.config.limits.replay_window_ms = v;
        }
        if let Some(v) = num("MAX_RECENT_IDS")? {
            self.config.limits.max_recent_ids = v as usize;
        }
        if let Some(v) = num("MAX_MESSAGE_BYTES")? {
            self.config.limits.max_message_bytes = v as usize;
        }
        if let Some(v) = num("MAX_BUFFERED_BYTES")? {
            self.config.max_buffered_bytes = v as usize;
        }
        Ok(self)
    }

    setter!(
        /// Hub URL (`url`), `ws://` or `wss://`; [`LinkOptions::connect`] also takes one.
        url: impl Into<String> => |s, v| s.config.url = v.into());
    setter!(
        /// This service's kind (`kind`, required): its identity on the hub, one
        /// connection per kind.
        kind: impl Into<String> => |s, v| s.config.kind = v.into());
    setter!(
        /// The HMAC secret (`secret`, required): shared, or this kind's own key.
        secret: impl Into<String> => |s, v| s.config.secret = v.into());
    setter!(
        /// Display name in `hello` (`name`; default: the kind).
        name: impl Into<String> => |s, v| s.config.name = Some(v.into()));
    setter!(
        /// Process id announced in `hello` (default: this process's id).
        pid: u32 => |s, v| s.config.pid = Some(v));
    setter!(
        /// HMAC hash (`hashAlgo`, sha256); must match the hub.
        hash_algo: HashAlgo => |s, v| s.config.hash_algo = v);
    setter!(
        /// Replay window (`replayWindowMs`, 300 s; zero disables replay protection).
        replay_window: Duration => |s, v| s.config.limits.replay_window_ms = v.as_millis() as u64);
    setter!(
        /// Ids remembered per sender (`maxRecentIds`, 10 000).
        max_recent_ids: usize => |s, v| s.config.limits.max_recent_ids = v);
    setter!(
        /// Largest message accepted (`maxMessageBytes`, 1 MiB): larger frames close the
        /// connection with 1009.
        max_message_bytes: usize => |s, v| s.config.limits.max_message_bytes = v);
    setter!(
        /// Transport backlog above which sends queue in the outbox (`maxBufferedBytes`,
        /// 4 MiB).
        max_buffered_bytes: usize => |s, v| s.config.max_buffered_bytes = v);
    setter!(
        /// Outbox cap (`maxOutboxBytes`, 16 MiB); beyond it sends are refused.
        max_outbox_bytes: usize => |s, v| s.config.max_outbox_bytes = v);
    setter!(
        /// Default RPC timeout (`defaultRpcTimeoutMs`, 5 s; must be positive, as in the
        /// reference). One call waits without limit with `.timeout(Duration::ZERO)`.
        default_rpc_timeout: Duration => |s, v| s.config.default_rpc_timeout = v);
    setter!(
        /// Inbound handlers in flight before `RPC_OVERLOADED` (`maxConcurrentRpc`, 256;
        /// 0 = unlimited).
        max_concurrent_rpc: usize => |s, v| s.config.max_concurrent_rpc = v);
    setter!(
        /// Status push cadence (`statusIntervalMs`, 10 s) when a status is set.
        status_interval: Duration => |s, v| s.config.status_interval = v);
    setter!(
        /// Ping cadence (`keepaliveIntervalMs`, 30 s; zero disables).
        keepalive_interval: Duration => |s, v| s.config.keepalive_interval = v);
    setter!(
        /// Delay of the missing-`hello.ack` diagnostic (`helloAckDiagnosticMs`, 5 s;
        /// zero disables).
        hello_ack_diagnostic: Duration => |s, v| s.config.hello_ack_diagnostic = v);
    setter!(
        /// First reconnect delay (`reconnectInitialMs`, 1 s).
        reconnect_initial: Duration => |s, v| s.config.reconnect_initial = v);
    setter!(
        /// Reconnect delay cap (`reconnectMaxMs`, 10 s).
        reconnect_max: Duration => |s, v| s.config.reconnect_max = v);
    setter!(
        /// Backoff growth factor (`reconnectGrowth`, 1.5).
        reconnect_growth: f64 => |s, v| s.config.reconnect_growth = v);
    setter!(
        /// Backoff jitter fraction (`reconnectJitter`, 0.5).
        reconnect_jitter: f64 => |s, v| s.config.reconnect_jitter = v);
    setter!(
        /// Give up after this many consecutive reconnects (`maxReconnectAttempts`;
        /// `None` = never, the default).
        max_reconnect_attempts: Option<u32> => |s, v| s.config.max_reconnect_attempts = v);
    setter!(
        /// Graceful-stop budget (`stopDrainMs`, 5 s).
        stop_drain: Duration => |s, v| s.config.stop_drain = v);
    setter!(
        /// Keep retrying after `hello.ack ok:false` (`reconnectOnRejection`, false).
        reconnect_on_rejection: bool => |s, v| s.config.reconnect_on_rejection = v);
    setter!(
        /// Send every handler error to the caller unsanitised (`exposeRpcErrors`, false).
        expose_rpc_errors: bool => |s, v| s.config.expose_rpc_errors = v);
    setter!(
        /// permessage-deflate (`perMessageDeflate`, false). Compression is not
        /// available in this transport: `true` makes `connect` fail with
        /// [`Error::Unsupported`]. (Off on both sides is the reference's default.)
        per_message_deflate: bool => |s, v| s.config.per_message_deflate = v);
    setter!(
        /// Warn (via `tracing`) when more than this many [`LinkClient::events`] streams
        /// are open at once (`maxListeners`, 100).
        max_listeners: usize => |s, v| s.max_listeners = v);
    setter!(
        /// TLS settings for `wss://` (e.g. a private root store); default: webpki roots.
        tls_config: Arc<rustls::ClientConfig> => |s, v| s.tls = Some(v));
    setter!(
        /// Messages buffered per [`super::Subscription`] before the slowest drops them
        /// (with an [`super::Event::SlowSubscriber`] event); default 1024.
        subscription_capacity: usize => |s, v| s.subscription_capacity = v.max(1));
    setter!(
        /// Events buffered per [`LinkClient::events`] stream before it lags; default 1024.
        event_capacity: usize => |s, v| s.event_capacity = v.max(1));

    /// This peer's status (`makeStatus`): called on every ready and every
    /// `status_interval`; its value is pushed as `status.update`.
    pub fn status<T, F>(mut self, make_status: F) -> Self
    where
        T: Serialize,
        F: Fn() -> T + Send + Sync + 'static,
    {
        self.config.make_status = true;
        self.status = Some(Arc::new(move || wire::to_value(&make_status()).ok()));
        self
    }

    /// Register an RPC handler for `rpc_type` (`rpcHandlers`), an async closure
    /// `|ctx, req| async move { Ok(resp) }` with serde types; `()` as the response
    /// means "no result".
    pub fn handle<Req, Resp, F, Fut>(mut self, rpc_type: impl Into<String>, f: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(RpcContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
    {
        self.handlers.insert(rpc_type.into(), handler::erase(f));
        self
    }

    /// A catch-all handler for RPC types without their own handler; `ctx.rpc_type()`
    /// tells which. Return `Err(RpcHandlerError::new(..).with_code("RPC_UNKNOWN_TYPE"))`
    /// for types it does not know.
    pub fn handle_all<Req, Resp, F, Fut>(mut self, f: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(RpcContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
    {
        self.catch_all = Some(handler::erase(f));
        self
    }

    /// The core configuration these options produce (for inspection).
    pub fn client_config(&self) -> &ClientConfig {
        &self.config
    }

    /// The configured URL, if any.
    pub fn configured_url(&self) -> Option<&str> {
        Some(self.config.url.as_str()).filter(|u| !u.is_empty())
    }

    /// Start the link to `url` and return its handle at once; it connects (and
    /// reconnects) in the background. Await [`LinkClient::ready`] before calling
    /// peers. Must be called within the runtime.
    pub fn connect(mut self, url: impl Into<String>) -> Result<LinkClient, Error> {
        self.config.url = url.into();
        self.start()
    }

    /// Start the link to the configured URL ([`LinkOptions::url`] or `LINK_URL`).
    pub fn start(self) -> Result<LinkClient, Error> {
        if self.config.per_message_deflate {
            return Err(Error::Unsupported {
                option: "perMessageDeflate",
                why: "the WebSocket library has no permessage-deflate; leave it off",
            });
        }
        super::driver::spawn(self)
    }
}
