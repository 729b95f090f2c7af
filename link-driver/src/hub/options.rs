//! `HubOptions`: every option of the reference hub (PROTOCOL.md §13, `createHub`) with
//! its default, plus the application's async parts: server RPC handlers, a key
//! resolver, ACL hooks.

use super::{Hub, ServerRpcContext};
use crate::handler::{self, ErasedHandler, RpcHandlerError};
use crate::runtime::{BoxFuture, Runtime};
use link_sansio::hub::{AclDecision, HubConfig, Keys};
use link_sansio::wire::{HashAlgo, Value};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub(crate) type ResolverFn =
    Arc<dyn Fn(String) -> BoxFuture<'static, Option<String>> + Send + Sync>;
pub(crate) type AclFn<Q> = Arc<dyn Fn(Q) -> BoxFuture<'static, AclDecision> + Send + Sync>;

/// What an ACL hook may answer: `true`/`false` or a full [`AclDecision`] (a denial
/// with its own code and message).
pub trait AclAnswer: Send + 'static {
    /// The decision.
    fn into_decision(self) -> AclDecision;
}

impl AclAnswer for bool {
    fn into_decision(self) -> AclDecision {
        if self {
            AclDecision::Allow
        } else {
            AclDecision::Deny {
                code: None,
                message: None,
            }
        }
    }
}

impl AclAnswer for AclDecision {
    fn into_decision(self) -> AclDecision {
        self
    }
}

/// `canRpc({from, to, rpcType, rpcData})`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RpcCheck {
    /// The caller's authenticated kind.
    pub from: String,
    /// The target kind, or `server`; empty when the request names none (the
    /// reference's `null`): such a request, if allowed, is refused with
    /// `RPC_BAD_REQUEST`.
    pub to: String,
    /// The RPC type.
    pub rpc_type: String,
    /// `rpcData`.
    pub rpc_data: Option<Value>,
}

/// `canPublish({from, topic, payload})`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PublishCheck {
    /// The publisher.
    pub from: String,
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Option<Value>,
}

/// `canSubscribe({from, topic})`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SubscribeCheck {
    /// The subscriber.
    pub from: String,
    /// The topic.
    pub topic: String,
}

/// `canSend({from, to, type, data})`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SendCheck {
    /// The sender.
    pub from: String,
    /// The target kind.
    pub to: String,
    /// The direct message type.
    pub direct_type: String,
    /// The payload.
    pub data: Option<Value>,
}

#[derive(Clone, Default)]
pub(crate) struct AclFns {
    pub(crate) rpc: Option<AclFn<RpcCheck>>,
    pub(crate) publish: Option<AclFn<PublishCheck>>,
    pub(crate) subscribe: Option<AclFn<SubscribeCheck>>,
    pub(crate) send: Option<AclFn<SendCheck>>,
}

fn acl_fn<Q, A, F, Fut>(f: F) -> AclFn<Q>
where
    Q: Send + 'static,
    A: AclAnswer,
    F: Fn(Q) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = A> + Send + 'static,
{
    Arc::new(move |q| {
        let fut = f(q);
        Box::pin(async move { fut.await.into_decision() })
    })
}

/// Options for a [`Hub`], by value: `HubOptions::new(secret).handle(..).build()`.
///
/// Defaults are the reference's: `hash_algo` sha256, `replay_window` 300 s,
/// `max_recent_ids` 10 000, `max_message_bytes` 1 MiB, `max_buffered_bytes` 4 MiB,
/// `max_outbox_bytes` 16 MiB, `max_pending_sockets` 1024, `max_concurrent_rpc` 256,
/// `keepalive_interval` 15 s, `hello_timeout` 10 s, `expose_rpc_errors` false,
/// features `["topics", "direct"]`.
pub struct HubOptions<R> {
    pub(crate) runtime: R,
    pub(crate) config: HubConfig,
    pub(crate) handlers: BTreeMap<String, ErasedHandler<ServerRpcContext>>,
    pub(crate) catch_all: Option<ErasedHandler<ServerRpcContext>>,
    pub(crate) resolver: Option<ResolverFn>,
    pub(crate) acl: AclFns,
    pub(crate) event_capacity: usize,
}

impl<R: fmt::Debug> fmt::Debug for HubOptions<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubOptions")
            .field(
                "keys",
                &match &self.config.keys {
                    Keys::Shared(_) => "shared",
                    Keys::PerKind(_) => "per-kind",
                    _ => "resolver",
                },
            )
            .field("hash_algo", &self.config.hash_algo)
            .field("limits", &self.config.limits)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
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

impl<R: Runtime + Default> HubOptions<R> {
    /// A hub whose peers all share `secret` (the reference's string `secret`).
    pub fn new(secret: impl Into<String>) -> Self {
        Self::with_keys(R::default(), Keys::Shared(secret.into()))
    }

    /// A hub with one key per kind (the reference's object `secret`); hellos of other
    /// kinds are dropped silently.
    pub fn per_peer_keys<K: Into<String>, V: Into<String>>(
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map = keys
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<BTreeMap<_, _>>();
        Self::with_keys(R::default(), Keys::PerKind(map))
    }

    /// A hub that asks `resolve(kind)` for each hello's key (the reference's function
    /// `secret`); `None` (or a panic) = no key, the hello is dropped silently.
    pub fn key_resolver<F, Fut>(resolve: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        let mut o = Self::with_keys(R::default(), Keys::Resolver);
        o.resolver = Some(Arc::new(move |kind| Box::pin(resolve(kind))));
        o
    }
}

impl<R: Runtime> HubOptions<R> {
    /// Options on an explicit runtime value and key source.
    pub fn with_keys(runtime: R, keys: Keys) -> Self {
        Self {
            runtime,
            config: HubConfig::new(keys),
            handlers: BTreeMap::new(),
            catch_all: None,
            resolver: None,
            acl: AclFns::default(),
            event_capacity: 1024,
        }
    }

    setter!(
        /// HMAC hash (`hashAlgo`, sha256); must match every client.
        hash_algo: HashAlgo => |s, v| s.config.hash_algo = v);
    setter!(
        /// Replay window (`replayWindowMs`, 300 s; zero disables replay protection).
        replay_window: Duration => |s, v| s.config.limits.replay_window_ms = v.as_millis() as u64);
    setter!(
        /// Ids remembered per sender (`maxRecentIds`, 10 000).
        max_recent_ids: usize => |s, v| s.config.limits.max_recent_ids = v);
    setter!(
        /// Largest message (`maxMessageBytes`, 1 MiB); also the WebSocket frame cap of
        /// the axum integration and `HubServer` (larger frames close with 1009).
        max_message_bytes: usize => |s, v| s.config.limits.max_message_bytes = v);
    setter!(
        /// Per-peer transport backlog above which messages queue (`maxBufferedBytes`,
        /// 4 MiB).
        max_buffered_bytes: usize => |s, v| s.config.max_buffered_bytes = v);
    setter!(
        /// Per-peer outbox cap (`maxOutboxBytes`, 16 MiB).
        max_outbox_bytes: usize => |s, v| s.config.max_outbox_bytes = v);
    setter!(
        /// Pre-hello sockets before the oldest is evicted (`maxPendingSockets`, 1024).
        max_pending_sockets: usize => |s, v| s.config.max_pending_sockets = v);
    setter!(
        /// Server RPCs in flight before `RPC_OVERLOADED` (`maxConcurrentRpc`, 256; 0 =
        /// unlimited).
        max_concurrent_rpc: usize => |s, v| s.config.max_concurrent_rpc = v);
    setter!(
        /// Ping cadence for peers (`keepaliveIntervalMs`, 15 s; zero disables).
        keepalive_interval: Duration => |s, v| s.config.keepalive_interval = v);
    setter!(
        /// Time to complete the hello (`helloTimeoutMs`, 10 s; zero disables).
        hello_timeout: Duration => |s, v| s.config.hello_timeout = v);
    setter!(
        /// Send server handler errors unsanitised (`exposeRpcErrors`, false).
        expose_rpc_errors: bool => |s, v| s.config.expose_rpc_errors = v);
    setter!(
        /// Features advertised in `hello.ack` (default `["topics", "direct"]`).
        features: Vec<String> => |s, v| s.config.features = v);
    setter!(
        /// Emit the `message` firehose event for every verified frame (default true).
        message_events: bool => |s, v| s.config.message_events = v);
    setter!(
        /// Events buffered per [`Hub::events`] stream before it lags (default 1024).
        event_capacity: usize => |s, v| s.event_capacity = v.max(1));

    /// Register a server RPC handler for `to: "server"` calls of `rpc_type`
    /// (`rpcHandlers`; overrides a built-in of the same name): an async closure
    /// `|ctx, req| async move { Ok(resp) }` with serde types.
    pub fn handle<Req, Resp, F, Fut>(mut self, rpc_type: impl Into<String>, f: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(ServerRpcContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
    {
        self.handlers.insert(rpc_type.into(), handler::erase(f));
        self
    }

    /// A catch-all server handler for types with no handler and no built-in.
    pub fn handle_all<Req, Resp, F, Fut>(mut self, f: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(ServerRpcContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
    {
        self.catch_all = Some(handler::erase(f));
        self
    }

    /// `canRpc`: an async check for every RPC (also `to: "server"`). A panic denies.
    /// A call allowed after its caller's socket closed or was replaced is dropped
    /// (a `stale-socket` protocol error), neither forwarded nor run: no one could
    /// take its answer.
    pub fn can_rpc<A: AclAnswer, F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(RpcCheck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = A> + Send + 'static,
    {
        self.config.acl.rpc = true;
        self.acl.rpc = Some(acl_fn(f));
        self
    }

    /// `canPublish`: an async check for every publish. A panic denies.
    pub fn can_publish<A: AclAnswer, F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(PublishCheck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = A> + Send + 'static,
    {
        self.config.acl.publish = true;
        self.acl.publish = Some(acl_fn(f));
        self
    }

    /// `canSubscribe`: an async check for every subscribe. A panic denies.
    pub fn can_subscribe<A: AclAnswer, F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(SubscribeCheck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = A> + Send + 'static,
    {
        self.config.acl.subscribe = true;
        self.acl.subscribe = Some(acl_fn(f));
        self
    }

    /// `canSend`: an async check for every direct message. A panic denies.
    pub fn can_send<A: AclAnswer, F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(SendCheck) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = A> + Send + 'static,
    {
        self.config.acl.send = true;
        self.acl.send = Some(acl_fn(f));
        self
    }

    /// The core configuration these options produce.
    pub fn hub_config(&self) -> &HubConfig {
        &self.config
    }

    /// Start the hub (and its timer task) and return its handle. Must be called within
    /// the runtime.
    pub fn build(self) -> Hub {
        super::driver::spawn(self)
    }
}
