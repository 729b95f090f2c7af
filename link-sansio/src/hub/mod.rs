//! `HubState`: the hub as a pure state machine. It owns the socket table and composes
//! the per-concern tables (keys, peers, topics, statuses, outboxes, ACL lanes, server
//! calls); this file holds the public surface and the input/output loop.
//!
//! The adapter allocates a [`ConnId`] per accepted WebSocket, feeds
//! [`Input`]s with the time, and drains [`HubState::poll_output`] until it returns
//! [`Output::Timeout`]. Asynchronous work the application owns (key lookup, server RPC
//! handlers, ACL hooks) leaves as an output with an id and comes back as an input.
//!
//! What the hub expects of its adapter:
//! - after every input (and after construction), drain `poll_output()` until
//!   `Output::Timeout(at)`, and feed `Input::Timeout` at `at`;
//! - report `Input::Flushed` as the transport writes transmitted text: the hub's view
//!   of a socket's backlog is transmitted − flushed, and queued messages only leave
//!   on a flush;
//! - answer every `ResolveKey`, `ServerRpc` and `AclCheck` exactly once (a panicking
//!   handler is `ServerReply::Panicked`, a panicking or odd ACL hook a `Deny`);
//! - report `Input::Closed` for every socket, including those the hub closed; after
//!   `Output::Terminate` the hub has already forgotten the socket.

mod acl;
mod conn;
mod direct;
mod events;
mod health;
mod hello;
mod keys;
mod outbox;
mod rpc;
mod status;
mod topics;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use events::{AclOpKind, HubEvent, PeerTimeoutReason};
pub use health::{HubHealth, HubStateSnapshot};

use crate::seeded::{Rng, SeededState};
use crate::time::Now;
use crate::wire::{HashAlgo, JsString, Limits, ReplayGuard, Value};

use conn::Conn;

/// A socket, as the adapter names it. The adapter allocates them; never reuse one
/// while the hub may still know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// A key lookup the adapter must answer with [`Input::KeyResolved`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRequestId(pub u64);

/// A server RPC the adapter must complete with [`Input::ServerRpcDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerCallId(pub u64);

/// An ACL question the adapter must answer with [`Input::AclDecided`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclCheckId(pub u64);

/// Where the hub's HMAC keys come from (the reference's `secret` option).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Keys {
    /// One secret shared by every kind.
    Shared(String),
    /// A key per kind; hellos for other kinds are dropped silently. Empty keys are
    /// ignored, as the reference ignores non-string and empty entries.
    PerKind(BTreeMap<String, String>),
    /// Ask the application: every hello emits [`Output::ResolveKey`].
    Resolver,
}

/// Which ACL hooks the application installed. A hook that is not installed allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AclHooks {
    /// `canRpc` (also for `to: "server"`).
    pub rpc: bool,
    /// `canPublish`.
    pub publish: bool,
    /// `canSubscribe`.
    pub subscribe: bool,
    /// `canSend` (direct messages).
    pub send: bool,
}

impl AclHooks {
    /// Whether any hook is installed.
    pub fn any(&self) -> bool {
        self.rpc || self.publish || self.subscribe || self.send
    }
}

/// Hub options (PROTOCOL.md §13, `createHub`) with the reference's defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// `secret`: shared, per kind, or resolved by the application.
    pub keys: Keys,
    /// `hashAlgo` (sha256).
    pub hash_algo: HashAlgo,
    /// `maxMessageBytes` (1 MiB), `replayWindowMs` (300 000; 0 off), `maxRecentIds` (10 000).
    pub limits: Limits,
    /// `maxBufferedBytes` (4 MiB): transport backlog above which messages queue.
    pub max_buffered_bytes: usize,
    /// `maxOutboxBytes` (16 MiB): per-socket queue cap; beyond it messages are refused.
    pub max_outbox_bytes: usize,
    /// `maxPendingSockets` (1024): pre-hello sockets; the oldest is evicted beyond it.
    pub max_pending_sockets: usize,
    /// `maxConcurrentRpc` (256; 0 = unlimited): server RPCs in flight.
    pub max_concurrent_rpc: usize,
    /// `keepaliveIntervalMs` (15 s; zero disables).
    pub keepalive_interval: Duration,
    /// `helloTimeoutMs` (10 s; zero disables).
    pub hello_timeout: Duration,
    /// `exposeRpcErrors` (false): send server handler error messages unsanitised.
    pub expose_rpc_errors: bool,
    /// Advertised in `hello.ack` (`["topics", "direct"]`).
    pub features: Vec<String>,
    /// Installed ACL hooks (none).
    pub acl: AclHooks,
    /// Emit [`HubEvent::Message`] for every verified frame (true, like the reference's
    /// `message` event), while the per-frame events are on
    /// ([`HubState::set_frame_events`]).
    pub message_events: bool,
}

impl HubConfig {
    /// Defaults for everything but the keys.
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            hash_algo: HashAlgo::default(),
            limits: Limits::default(),
            max_buffered_bytes: 4_194_304,
            max_outbox_bytes: 16_777_216,
            max_pending_sockets: 1024,
            max_concurrent_rpc: 256,
            keepalive_interval: Duration::from_millis(15_000),
            hello_timeout: Duration::from_millis(10_000),
            expose_rpc_errors: false,
            features: vec!["topics".to_owned(), "direct".to_owned()],
            acl: AclHooks::default(),
            message_events: true,
        }
    }
}

/// Something that happened, fed to [`HubState::handle_input`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A WebSocket was accepted.
    Opened {
        /// Its handle.
        conn: ConnId,
        /// The peer's address, if known (reported in `peer.timeout`).
        remote: Option<SocketAddr>,
    },
    /// A text (or binary) frame arrived.
    Frame {
        /// The socket.
        conn: ConnId,
        /// The frame's bytes.
        bytes: &'a [u8],
    },
    /// The socket closed (by either side).
    Closed {
        /// The socket.
        conn: ConnId,
        /// Close code, if any.
        code: Option<u16>,
        /// Close reason.
        reason: &'a str,
    },
    /// A pong control frame arrived.
    Pong {
        /// The socket.
        conn: ConnId,
    },
    /// The transport finished writing `bytes` of the text it was given.
    Flushed {
        /// The socket.
        conn: ConnId,
        /// Bytes written since the previous report.
        bytes: usize,
    },
    /// A deadline passed (or just: time moved).
    Timeout,
    /// Answer to [`Output::ResolveKey`]: the kind's secret, or `None` for no key.
    KeyResolved {
        /// The request.
        request: KeyRequestId,
        /// The secret (empty counts as none).
        key: Option<String>,
    },
    /// Answer to [`Output::ServerRpc`].
    ServerRpcDone {
        /// The call.
        call: ServerCallId,
        /// What the handler produced.
        reply: ServerReply,
    },
    /// Answer to [`Output::AclCheck`].
    AclDecided {
        /// The question.
        check: AclCheckId,
        /// The answer.
        decision: AclDecision,
    },
    /// Graceful shutdown: refuse new sockets and hellos, close pending sockets with
    /// 1001 `hub stopped` and peers with a close frame without a code (1005, the
    /// reference's bare `ws.close()`); [`HubEvent::Drained`] once all are gone.
    Drain,
}

/// What a server RPC handler produced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerReply {
    /// Success; `None` omits `result` (a handler that returned nothing).
    Ok(Option<Value>),
    /// The handler failed. Unless `expose` (the reference's `RpcHandlerError` or
    /// `expose === true`) or `HubConfig::expose_rpc_errors`, the caller only sees
    /// `RPC_HANDLER_ERROR` / `Internal handler error`.
    Err {
        /// Error code (`RPC_HANDLER_ERROR` when `None`).
        code: Option<String>,
        /// Error message.
        message: String,
        /// Structured details (sent only when exposed and wire-safe).
        data: Option<Value>,
        /// Whether the message may be shown to the caller.
        expose: bool,
    },
    /// The result could not be represented faithfully in JSON.
    NotSerializable,
    /// The handler panicked (treated as a plain throw).
    Panicked,
}

/// An ACL hook's answer. The adapter maps panics and non-conforming answers to a
/// `Deny` with no code or message (fail closed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclDecision {
    /// `true` / `{ok: true}`.
    Allow,
    /// `false` / `{ok: false, code?, error?}`.
    Deny {
        /// Denial code (defaults per op: `RPC_FORBIDDEN`, `PUBLISH_FORBIDDEN`, …).
        code: Option<String>,
        /// Denial text (default `Forbidden`).
        message: Option<String>,
    },
}

/// A `to: "server"` RPC for the application's handler.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCall {
    /// Answer with [`Input::ServerRpcDone`].
    pub call: ServerCallId,
    /// The caller's authenticated kind.
    pub from: String,
    /// The RPC type.
    pub rpc_type: String,
    /// `rpcData`.
    pub data: Option<Value>,
    /// The request's envelope id.
    pub request_id: JsString,
}

/// A question for an ACL hook.
#[derive(Debug, Clone, PartialEq)]
pub struct AclCheck {
    /// Answer with [`Input::AclDecided`].
    pub check: AclCheckId,
    /// What is asked.
    pub op: AclOp,
}

/// The operation an ACL hook judges (the reference hooks' arguments).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AclOp {
    /// `canRpc({from, to, rpcType, rpcData})`.
    Rpc {
        /// The caller.
        from: String,
        /// The target kind or `server`; empty when the request has no `to` (the
        /// reference passes `null`), which is refused with `RPC_BAD_REQUEST` if allowed.
        to: String,
        /// The RPC type (`String()` of the wire value).
        rpc_type: String,
        /// `rpcData`.
        rpc_data: Option<Value>,
    },
    /// `canPublish({from, topic, payload})`.
    Publish {
        /// The publisher.
        from: String,
        /// The topic.
        topic: String,
        /// The payload.
        payload: Option<Value>,
    },
    /// `canSubscribe({from, topic})`.
    Subscribe {
        /// The subscriber.
        from: String,
        /// The topic.
        topic: String,
    },
    /// `canSend({from, to, type, data})`.
    Send {
        /// The sender.
        from: String,
        /// The target.
        to: String,
        /// The direct type.
        direct_type: String,
        /// The payload.
        data: Option<Value>,
    },
}

/// What the hub wants done, from [`HubState::poll_output`].
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Output {
    /// Write this text frame to the socket (then report [`Input::Flushed`]).
    Transmit {
        /// The socket.
        conn: ConnId,
        /// The frame.
        text: String,
    },
    /// Close the socket with a close frame.
    Close {
        /// The socket.
        conn: ConnId,
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Drop the socket without a close frame.
    Terminate {
        /// The socket.
        conn: ConnId,
    },
    /// Send a ping control frame.
    Ping {
        /// The socket.
        conn: ConnId,
    },
    /// Tell the application.
    Event(HubEvent),
    /// Look up the key of `kind`; answer with [`Input::KeyResolved`].
    ResolveKey {
        /// The request.
        request: KeyRequestId,
        /// The claimed kind.
        kind: String,
    },
    /// Run the application's server RPC handler.
    ServerRpc(ServerCall),
    /// Ask an ACL hook.
    AclCheck(AclCheck),
    /// Nothing more to do now; call [`HubState::handle_input`] with
    /// [`Input::Timeout`] at this instant (or earlier if something happens).
    Timeout(Instant),
}

/// The hub.
#[derive(Debug)]
pub struct HubState {
    config: HubConfig,
    keys: keys::KeyStore,
    rng: Rng,
    now: Now,
    conns: HashMap<ConnId, Conn, SeededState>,
    /// Pending sockets by arrival: the oldest is evicted first, and arrival order is
    /// also hello-deadline order.
    pending: BTreeMap<u64, ConnId>,
    /// Sockets the hub closed and will terminate if the close does not complete.
    terminations: BTreeSet<(Instant, ConnId)>,
    peers: conn::Peers,
    topics: topics::Topics,
    status: status::Statuses,
    replay: ReplayGuard,
    /// Every accepted hello's id, per kind, for the whole replay window. The reference
    /// forgets a sender's ids when it disconnects (and evicts old ones as it talks), so
    /// a captured hello replayed later would let an eavesdropper without the key take
    /// over the kind; this guard outlives the socket and sees only hellos.
    hellos: ReplayGuard,
    rpc: rpc::ServerCalls,
    acl: acl::AclChecks,
    server_rpc: rpc::ServerHandlers,
    next_keepalive: Option<Instant>,
    next_seq: u64,
    draining: bool,
    drained_reported: bool,
    /// Whether the per-frame events are built (see [`HubState::set_frame_events`]).
    frame_events: bool,
    outputs: VecDeque<Output>,
    /// Reused for canonical text while verifying.
    scratch: Vec<u8>,
    /// Reused for a payload's canonical bytes while fanning out.
    data_buf: Vec<u8>,
    /// Reused for a fan-out's recipients.
    fanout: Vec<ConnId>,
}

impl HubState {
    /// A hub with `config`; `seed` drives ids and hash keys, `now` starts its clocks.
    pub fn new(config: HubConfig, seed: u64, now: Now) -> Self {
        let mut rng = Rng::new(seed);
        let hasher = SeededState::from_rng(&mut rng);
        let replay = ReplayGuard::new(&config.limits, SeededState::from_rng(&mut rng));
        let hellos = ReplayGuard::new(&config.limits, SeededState::from_rng(&mut rng));
        let keys = keys::KeyStore::new(
            &config.keys,
            config.hash_algo,
            hasher.clone(),
            config.max_outbox_bytes,
        );
        let next_keepalive =
            (!config.keepalive_interval.is_zero()).then(|| now.instant + config.keepalive_interval);
        Self {
            keys,
            rng,
            now,
            conns: HashMap::with_hasher(hasher.clone()),
            pending: BTreeMap::new(),
            terminations: BTreeSet::new(),
            peers: conn::Peers::new(hasher.clone()),
            topics: topics::Topics::new(hasher.clone()),
            status: status::Statuses::default(),
            replay,
            hellos,
            rpc: rpc::ServerCalls::new(hasher.clone()),
            acl: acl::AclChecks::new(hasher.clone()),
            server_rpc: rpc::ServerHandlers::new(hasher.clone()),
            next_keepalive,
            next_seq: 0,
            draining: false,
            drained_reported: false,
            frame_events: true,
            outputs: VecDeque::new(),
            scratch: Vec::new(),
            data_buf: Vec::new(),
            fanout: Vec::new(),
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Feeds one input at `now`.
    pub fn handle_input(&mut self, now: Now, input: Input<'_>) {
        if now.instant > self.now.instant {
            self.now = now;
        } else {
            // Time never runs backwards inside the hub; keep the wall clock current.
            self.now.wall_ms = now.wall_ms;
        }
        match input {
            Input::Opened { conn, remote } => self.on_opened(conn, remote),
            Input::Frame { conn, bytes } => self.on_frame(conn, bytes),
            Input::Closed { conn, code, reason } => self.on_closed(conn, code, reason),
            Input::Pong { conn } => self.on_pong(conn),
            Input::Flushed { conn, bytes } => self.on_flushed(conn, bytes),
            Input::Timeout => {}
            Input::KeyResolved { request, key } => self.on_key_resolved(request, key),
            Input::ServerRpcDone { call, reply } => self.on_server_rpc_done(call, reply),
            Input::AclDecided { check, decision } => self.on_acl_decided(check, decision),
            Input::Drain => self.on_drain(),
        }
        self.on_timers();
        self.check_drained();
    }

    /// The next thing to do; [`Output::Timeout`] when there is nothing more.
    pub fn poll_output(&mut self) -> Output {
        if let Some(out) = self.outputs.pop_front() {
            return out;
        }
        Output::Timeout(self.next_deadline())
    }

    /// Declares that the application handles server RPC `rpc_type` (this overrides a
    /// built-in of the same name).
    pub fn register_server_rpc(&mut self, rpc_type: &str) {
        self.server_rpc.register(rpc_type);
    }

    /// Removes an application server RPC (a built-in of that name applies again).
    pub fn unregister_server_rpc(&mut self, rpc_type: &str) {
        self.server_rpc.unregister(rpc_type);
    }

    /// With `on`, every server RPC type without a registered handler or built-in goes
    /// to the application instead of `RPC_UNKNOWN_TYPE`.
    pub fn set_server_rpc_catch_all(&mut self, on: bool) {
        self.server_rpc.catch_all = on;
    }

    /// Turns the [`HubEvent::Message`] firehose on or off from now on (it starts as
    /// [`HubConfig::message_events`] says). While nobody listens, an adapter rather
    /// turns off every per-frame event with [`HubState::set_frame_events`].
    pub fn set_message_events(&mut self, on: bool) {
        self.config.message_events = on;
    }

    /// Turns every per-frame event on or off from now on: [`HubEvent::Direct`],
    /// [`HubEvent::TopicPublish`], [`HubEvent::RpcForwarded`],
    /// [`HubEvent::RpcResponseForwarded`], [`HubEvent::StatusUpdated`] and (as
    /// [`HubConfig::message_events`] also allows) [`HubEvent::Message`]. They are on
    /// at first. An adapter turns them off while nobody listens: each carries copies
    /// of names and ids, and building them costs a few percent of routing a frame.
    /// Nothing else depends on them; every other event is always emitted.
    pub fn set_frame_events(&mut self, on: bool) {
        self.frame_events = on;
    }

    /// The `link.health` counters.
    pub fn health(&self) -> HubHealth {
        let (outbox_bytes, queued_sockets) =
            self.conns.values().fold((0, 0), |(bytes, socks), c| {
                let q = c.outbox.queued_bytes();
                (bytes + q, socks + usize::from(!c.outbox.is_empty()))
            });
        HubHealth {
            outbox_bytes,
            queued_sockets,
            total_subscribers: self.topics.total_subscribers(),
            server_rpc_in_flight: self.rpc.in_flight(),
            peer_count: self.peers.len(),
            status_count: self.status.len(),
            topic_count: self.topics.len(),
            pending_socket_count: self.pending.len(),
            recent_ids_size: self.replay.len(),
        }
    }

    /// The `getState()` snapshot: peers in registration order and retained statuses.
    pub fn state(&self) -> HubStateSnapshot {
        HubStateSnapshot {
            peers: self.peers.entries(),
            last_status: self
                .status
                .iter()
                .map(|(k, e)| (k.to_owned(), e.clone()))
                .collect(),
        }
    }

    /// Whether [`Input::Drain`] was given and every socket is gone.
    pub fn is_drained(&self) -> bool {
        self.draining && self.conns.is_empty()
    }

    fn next_deadline(&self) -> Instant {
        // Nothing scheduled: come back in an hour (harmless).
        let mut at = self.now.instant + Duration::from_secs(3600);
        if let Some(k) = self.next_keepalive {
            at = at.min(k);
        }
        if let Some((t, _)) = self.terminations.first() {
            at = at.min(*t);
        }
        if let Some(deadline) = self.oldest_hello_deadline() {
            at = at.min(deadline);
        }
        at
    }

    fn emit(&mut self, event: HubEvent) {
        self.outputs.push_back(Output::Event(event));
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn check_drained(&mut self) {
        if self.draining && !self.drained_reported && self.conns.is_empty() {
            self.drained_reported = true;
            self.emit(HubEvent::Drained);
        }
    }
}
