//! `Connection`: one client's link to a hub as a pure state machine, at parity with
//! the reference `LinkClient` v0.6 (PROTOCOL.md). The adapter owns the socket and the
//! clock; this type owns everything else: hello, readiness, reconnect backoff, RPC
//! tables, the outbox, subscriptions, peers, keepalive and graceful stop.
//!
//! # Driving it
//!
//! Call [`Connection::start`], then after every input or command drain
//! [`Connection::poll_output`] until it returns [`Output::Timeout`] (the next deadline,
//! at which to feed [`Input::Timeout`]). Outputs:
//!
//! - [`Output::Connect`]: open a WebSocket to the URL; report [`Input::TransportUp`]
//!   when it opens or [`Input::TransportDown`] if it fails.
//! - [`Output::Transmit`]: write this text frame; report [`Input::Flushed`] with the
//!   byte count as the transport writes it (the `bufferedAmount` analogue).
//! - [`Output::Close`] / [`Output::Terminate`]: close (with a close frame) or drop the
//!   transport, or abandon a connect still in progress. Either ends it as far as the
//!   connection is concerned: report nothing more about that transport.
//! - [`Output::Ping`]: send a WebSocket ping; report [`Input::Pong`] on a pong frame.
//! - [`Output::Event`]: tell the application.
//! - [`Output::Idle`]: only before the first call that carries a `now`; there is no
//!   deadline yet.
//!
//! # Inbound RPCs
//!
//! The application declares the RPC types it handles ([`ClientConfig::rpc_handlers`],
//! [`Connection::handle`], or [`Connection::set_rpc_catch_all`] to see every type).
//! A request of a declared type becomes [`ClientEvent::RpcRequest`], answered with
//! [`Connection::respond`]; any other type is answered `RPC_UNKNOWN_TYPE` by the
//! connection itself ([`ClientEvent::RpcRefused`]). Answer every request once, even
//! after [`ClientEvent::RpcCancelled`] (that answer is suppressed): like the
//! reference's in-flight counter, a request counts against `max_concurrent_rpc` until
//! its handler has finished.
//!
//! # Status
//!
//! With [`ClientConfig::make_status`], the connection emits [`ClientEvent::StatusWanted`]
//! on every ready and every `status_interval`; the application answers with
//! [`Connection::push_status`].

pub mod backoff;
pub mod error;
pub mod events;
pub mod outbox;
pub mod peers;
pub mod rpc;
pub mod topics;

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::seeded::{Rng, SeededState};
use crate::time::Now;
use crate::wire::envelope::js_string_of;
use crate::wire::json::{JsString, Value};
use crate::wire::message::{
    Direct, Hello, HelloAck, HelloInfo, PeerEntry, RpcCancel, RpcReply, RpcRequest, RpcResponse,
    StatusEntry, StatusUpdate, TopicMessage, TopicSubscribe, TopicUnsubscribe, types,
};
use crate::wire::validate::{check_json_safe, check_kind, is_valid_topic};
use crate::wire::{
    self, DropReason, Envelope, Frame, HashAlgo, Header, Key, Limits, Message, ReplayGuard,
};
use backoff::{Backoff, Retry};
use error::RemoteFailure;
use outbox::{Item, Outbox, Overflow};
use peers::{PeerChange, Peers};
use rpc::{Inbound, Pending};
use topics::Subscriptions;

pub use error::{ClientError, ConfigError, HandlerError, RpcError};
pub use events::{CancelReason, ClientEvent, DisconnectInfo, HelloAckDiagnosis, RpcComplete};
pub use rpc::{InboundRpcId, RpcId};

/// Everything the reference `LinkClient` takes as options (PROTOCOL.md §13), with its
/// defaults. Durations of zero mean "off" where the reference says 0 disables.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Hub WebSocket URL (`url`).
    pub url: String,
    /// This peer's kind (`kind`): 1–256 of `[a-zA-Z0-9._-]`, not reserved.
    pub kind: String,
    /// The HMAC secret (`secret`).
    pub secret: String,
    /// Display name sent in `hello` (`name`; defaults to the kind).
    pub name: Option<String>,
    /// Process id sent in `hello` (the reference sends `process.pid`).
    pub pid: Option<u32>,
    /// HMAC hash (`hashAlgo`, sha256).
    pub hash_algo: HashAlgo,
    /// `maxMessageBytes` (1 MiB), `replayWindowMs` (300 000; 0 off), `maxRecentIds`
    /// (10 000).
    pub limits: Limits,
    /// Transport backlog above which sends queue instead (`maxBufferedBytes`, 4 MiB).
    pub max_buffered_bytes: usize,
    /// Outbox cap (`maxOutboxBytes`, 16 MiB).
    pub max_outbox_bytes: usize,
    /// Default per-call RPC timeout (`defaultRpcTimeoutMs`, 5 s).
    pub default_rpc_timeout: Duration,
    /// Inbound handlers in flight before `RPC_OVERLOADED` (`maxConcurrentRpc`, 256;
    /// 0 = unlimited).
    pub max_concurrent_rpc: usize,
    /// Whether the application supplies a status (`makeStatus` given): drives
    /// [`ClientEvent::StatusWanted`].
    pub make_status: bool,
    /// Status push cadence (`statusIntervalMs`, 10 s).
    pub status_interval: Duration,
    /// Ping cadence (`keepaliveIntervalMs`, 30 s; zero disables).
    pub keepalive_interval: Duration,
    /// Delay of the missing-`hello.ack` diagnostic (`helloAckDiagnosticMs`, 5 s; zero
    /// disables).
    pub hello_ack_diagnostic: Duration,
    /// First reconnect delay (`reconnectInitialMs`, 1 s).
    pub reconnect_initial: Duration,
    /// Reconnect delay cap (`reconnectMaxMs`, 10 s).
    pub reconnect_max: Duration,
    /// Backoff growth factor (`reconnectGrowth`, 1.5; at least 1).
    pub reconnect_growth: f64,
    /// Jitter fraction (`reconnectJitter`, 0.5; 0–1): delay = base × (1 − j/2 + rand·j).
    pub reconnect_jitter: f64,
    /// Give up after this many consecutive reconnects (`maxReconnectAttempts`;
    /// `None` = Infinity).
    pub max_reconnect_attempts: Option<u32>,
    /// Graceful-stop budget (`stopDrainMs`, 5 s; zero = no limit).
    pub stop_drain: Duration,
    /// Keep retrying after `hello.ack ok:false` (`reconnectOnRejection`, false).
    pub reconnect_on_rejection: bool,
    /// Forward every handler error verbatim (`exposeRpcErrors`, false).
    pub expose_rpc_errors: bool,
    /// Pass-through for the adapter's WebSocket (`perMessageDeflate`, false).
    pub per_message_deflate: bool,
    /// RPC types the application handles (`rpcHandlers` keys).
    pub rpc_handlers: BTreeSet<String>,
}

/// Outbox drain retry while the transport is congested (fixed in the reference).
pub const DRAIN_RETRY: Duration = Duration::from_millis(25);

impl ClientConfig {
    /// A configuration with the reference's defaults.
    pub fn new(url: impl Into<String>, kind: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            kind: kind.into(),
            secret: secret.into(),
            name: None,
            pid: None,
            hash_algo: HashAlgo::Sha256,
            limits: Limits::default(),
            max_buffered_bytes: 4_194_304,
            max_outbox_bytes: 16_777_216,
            default_rpc_timeout: Duration::from_millis(5_000),
            max_concurrent_rpc: 256,
            make_status: false,
            status_interval: Duration::from_millis(10_000),
            keepalive_interval: Duration::from_millis(30_000),
            hello_ack_diagnostic: Duration::from_millis(5_000),
            reconnect_initial: Duration::from_millis(1_000),
            reconnect_max: Duration::from_millis(10_000),
            reconnect_growth: 1.5,
            reconnect_jitter: 0.5,
            max_reconnect_attempts: None,
            stop_drain: Duration::from_millis(5_000),
            reconnect_on_rejection: false,
            expose_rpc_errors: false,
            per_message_deflate: false,
            rpc_handlers: BTreeSet::new(),
        }
    }
}

/// What the adapter reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input<'a> {
    /// The transport asked for by [`Output::Connect`] opened.
    TransportUp,
    /// A text (or binary) frame arrived.
    Frame(&'a [u8]),
    /// The transport closed or failed to open.
    TransportDown {
        /// The close code, if any (1006 for an abnormal loss).
        code: Option<u16>,
        /// The close reason.
        reason: &'a str,
    },
    /// A pong frame arrived.
    Pong,
    /// The transport finished writing this many bytes of what it was given.
    Flushed(usize),
    /// A deadline given by [`Output::Timeout`] passed.
    Timeout,
}

/// What the connection asks of the adapter. See the module docs.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
#[non_exhaustive]
pub enum Output {
    /// Open a WebSocket to `url`.
    Connect {
        /// The hub URL.
        url: String,
    },
    /// Write one text frame.
    Transmit(String),
    /// Close the transport with a close frame.
    Close {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Drop the transport without a close frame.
    Terminate,
    /// Send a WebSocket ping.
    Ping,
    /// Tell the application.
    Event(ClientEvent),
    /// Nothing more to do until this instant (or the next input or command).
    Timeout(Instant),
    /// Nothing to do and no deadline: only before the first call carrying a `now`.
    Idle,
}

/// The reference's `health()` snapshot.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientHealth {
    /// The transport is open.
    pub connected: bool,
    /// A verified message arrived on this transport.
    pub verified: bool,
    /// The hub accepted the hello.
    pub ready: bool,
    /// Wall-clock ms of the last verified message.
    pub last_verified_at: Option<u64>,
    /// Entries in the last `peers.update` (including this peer).
    pub peer_count: usize,
    /// Outbound RPCs awaiting a response.
    #[serde(rename = "pendingRpcCount")]
    pub pending_rpcs: usize,
    /// Topics subscribed locally.
    #[serde(rename = "subscriptionCount")]
    pub subscriptions: usize,
    /// Bytes handed to the transport and not yet flushed.
    #[serde(rename = "bufferedAmount")]
    pub buffered_bytes: usize,
    /// Items queued in the outbox.
    pub outbox_size: usize,
    /// Estimated bytes queued in the outbox.
    pub outbox_bytes: usize,
    /// Inbound handlers in flight.
    pub in_flight_rpc: usize,
    /// Consecutive reconnects since the last ready.
    pub reconnect_attempt: u32,
    /// `stop()` was called (or the link gave up).
    pub stopped: bool,
}

/// Where the transport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// None: never started, stopped, or waiting out a backoff.
    None,
    /// `Connect` emitted, waiting for `TransportUp`.
    Connecting,
    /// Open: `hello` sent.
    Open,
}

/// A graceful stop in progress.
#[derive(Debug, Clone, Copy)]
struct Drain {
    was_ready: bool,
    deadline: Option<Instant>,
    restart: bool,
}

/// Every timer the connection runs (RPC deadlines live in the pending table).
#[derive(Debug, Clone, Copy, Default)]
struct Timers {
    reconnect: Option<Instant>,
    hello_diagnostic: Option<Instant>,
    keepalive: Option<Instant>,
    status: Option<Instant>,
    drain_retry: Option<Instant>,
    stop_tick: Option<Instant>,
}

impl Timers {
    /// The timers that belong to one transport (the reference's `_clearTimers`).
    fn clear_connection(&mut self) {
        self.reconnect = None;
        self.hello_diagnostic = None;
        self.keepalive = None;
        self.status = None;
    }

    fn earliest(&self) -> Option<Instant> {
        [
            self.reconnect,
            self.hello_diagnostic,
            self.keepalive,
            self.status,
            self.drain_retry,
            self.stop_tick,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// How long `poll_output` lets an idle connection sleep.
const IDLE: Duration = Duration::from_secs(3600);

/// One client's link to a hub. See the module docs.
#[derive(Debug)]
pub struct Connection {
    config: ClientConfig,
    key: Key,
    rng: Rng,
    replay: ReplayGuard,
    scratch: Vec<u8>,
    out: VecDeque<Output>,
    last: Option<Instant>,

    transport: Transport,
    stopped: bool,
    drain: Option<Drain>,
    verified: bool,
    ready: bool,
    features: Option<Vec<String>>,
    last_verified_at: Option<u64>,
    skew_drops: u32,
    last_skew: f64,
    pong_alive: bool,
    disconnect_emitted: bool,
    buffered: usize,
    backoff: Backoff,
    catch_all: bool,
    timers: Timers,

    outbox: Outbox,
    subscriptions: Subscriptions,
    peers: Peers,
    pending: Pending,
    inbound: Inbound,
}

impl Connection {
    /// A stopped connection; validates the configuration like the reference's
    /// constructor. `seed` drives ids and backoff jitter.
    pub fn new(config: ClientConfig, seed: u64) -> Result<Self, ConfigError> {
        validate(&config)?;
        let mut rng = Rng::new(seed);
        let replay = ReplayGuard::new(&config.limits, SeededState::from_rng(&mut rng));
        let pending = Pending::new(SeededState::from_rng(&mut rng));
        let inbound = Inbound::new(SeededState::from_rng(&mut rng));
        Ok(Self {
            key: Key::new(&config.secret, config.hash_algo),
            backoff: Backoff::new(
                config.reconnect_initial,
                config.reconnect_max,
                config.reconnect_growth,
                config.reconnect_jitter,
                config.max_reconnect_attempts,
            ),
            outbox: Outbox::new(config.max_outbox_bytes),
            rng,
            replay,
            scratch: Vec::new(),
            out: VecDeque::new(),
            last: None,
            transport: Transport::None,
            stopped: false,
            drain: None,
            verified: false,
            ready: false,
            features: None,
            last_verified_at: None,
            skew_drops: 0,
            last_skew: 0.0,
            pong_alive: true,
            disconnect_emitted: false,
            buffered: 0,
            catch_all: false,
            timers: Timers::default(),
            subscriptions: Subscriptions::default(),
            peers: Peers::default(),
            pending,
            inbound,
            config,
        })
    }

    /// Starts (or restarts after `stop`): emits [`Output::Connect`]. A no-op while a
    /// transport is open or opening.
    pub fn start(&mut self, now: Now) {
        self.last = Some(now.instant);
        if let Some(d) = &mut self.drain {
            // The reference restarts once the graceful stop's drain has finished.
            d.restart = true;
            return;
        }
        if self.transport != Transport::None {
            self.stopped = false;
            return;
        }
        self.timers.reconnect = None;
        self.stopped = false;
        self.connect();
    }

    /// Feeds an input from the adapter. Expired timers run first, as they would have
    /// in an event loop.
    pub fn handle_input(&mut self, now: Now, input: Input<'_>) {
        self.last = Some(now.instant);
        self.run_timers(now);
        match input {
            Input::TransportUp => self.on_transport_up(now),
            Input::Frame(bytes) => self.on_frame(now, bytes),
            Input::TransportDown { code, reason } => {
                if self.transport != Transport::None {
                    self.on_transport_down(now, code, reason);
                }
            }
            Input::Pong => self.pong_alive = true,
            Input::Flushed(n) => {
                self.buffered = self.buffered.saturating_sub(n);
                // A graceful stop drains while no longer ready.
                if (self.ready || self.drain.is_some()) && !self.outbox.is_empty() {
                    self.drain_outbox(now);
                }
            }
            Input::Timeout => {}
        }
        self.check_drained(now);
    }

    /// The next thing to do; drain until [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        let Some(last) = self.last else {
            return Output::Idle;
        };
        let next = [self.timers.earliest(), self.pending.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        Output::Timeout(next.unwrap_or_else(|| last.checked_add(IDLE).unwrap_or(last)))
    }

    // ---------------------------------------------------------------------------
    // Application commands

    /// Calls `rpc_type` on peer `to` (or `"server"`). `timeout`: `None` = the default,
    /// `Some(ZERO)` = no timeout. The outcome arrives as [`ClientEvent::RpcComplete`],
    /// which is also emitted for a call refused here (not ready, backpressure).
    pub fn rpc(
        &mut self,
        now: Now,
        to: &str,
        rpc_type: &str,
        data: Option<Value>,
        timeout: Option<Duration>,
    ) -> Result<RpcId, RpcError> {
        self.last = Some(now.instant);
        if to.is_empty() {
            return Err(RpcError::InvalidArgument(
                "\"to\" must be a non-empty string",
            ));
        }
        if rpc_type.is_empty() {
            return Err(RpcError::InvalidArgument(
                "\"rpcType\" must be a non-empty string",
            ));
        }
        if let Some(d) = &data {
            check_json_safe(d).map_err(RpcError::NotSerializable)?;
        }
        let id = self.pending.allocate();
        if !self.writable() {
            let err = RpcError::NotReady {
                to: to.to_owned(),
                rpc_type: rpc_type.to_owned(),
            };
            self.complete(id, to, rpc_type, Duration::ZERO, Err(err.clone()));
            return Err(err);
        }
        let wire_id = JsString::from(self.rng.uuid());
        let timeout = timeout.unwrap_or(self.config.default_rpc_timeout);
        self.pending
            .insert(id, wire_id.clone(), to, rpc_type, now.instant, timeout);
        let message = Message::RpcRequest(RpcRequest::new(rpc_type, data));
        let item = Item::new(
            wire_id,
            types::RPC_REQUEST,
            Some(to.into()),
            payload(&message),
        );
        if self.enqueue_or_send(now, item).is_err() {
            self.pending.remove(id);
            let err = RpcError::Backpressure {
                to: to.to_owned(),
                rpc_type: rpc_type.to_owned(),
                max_outbox_bytes: self.config.max_outbox_bytes,
            };
            self.complete(id, to, rpc_type, Duration::ZERO, Err(err.clone()));
            return Err(err);
        }
        Ok(id)
    }

    /// Aborts an outbound call (the caller's AbortSignal): `RPC_ABORT`, and an
    /// `rpc.cancel` to the target while ready. Unknown or settled ids are ignored.
    pub fn cancel_rpc(&mut self, now: Now, id: RpcId) {
        self.last = Some(now.instant);
        let Some(call) = self.pending.remove(id) else {
            return;
        };
        self.outbox.remove_by_id(&call.wire_id);
        self.send_rpc_cancel(now, &call.wire_id, &call.to);
        let err = RpcError::Abort {
            to: call.to.clone(),
            rpc_type: call.rpc_type.clone(),
        };
        let took = now.instant.saturating_duration_since(call.started);
        self.complete(id, &call.to, &call.rpc_type, took, Err(err));
    }

    /// Answers an inbound request. Suppressed if the caller cancelled or the
    /// transport it came on is gone (as the reference suppresses such responses);
    /// ignored for unknown handles.
    pub fn respond(
        &mut self,
        now: Now,
        request: InboundRpcId,
        reply: Result<Option<Value>, HandlerError>,
    ) {
        self.last = Some(now.instant);
        let Some(req) = self.inbound.remove(request) else {
            return;
        };
        if req.aborted {
            return;
        }
        let (body, hidden) = rpc::response_body(reply, self.config.expose_rpc_errors);
        if let Some(message) = hidden {
            self.emit(ClientEvent::RpcHandlerError {
                from: req.from.as_ref().map(JsString::to_string_lossy),
                rpc_type: req.rpc_type.clone(),
                message,
            });
        }
        let message = Message::RpcResponse(body);
        let item = Item::new(
            req.wire_id,
            types::RPC_RESPONSE,
            req.from,
            payload(&message),
        );
        // Overflow is reported by the event; the caller times out, as in the reference.
        let _ = self.enqueue_or_send(now, item);
    }

    /// Declares that the application handles `rpc_type`; returns whether it already
    /// did (the reference's `handle()`).
    pub fn handle(&mut self, rpc_type: &str) -> bool {
        !self.config.rpc_handlers.insert(rpc_type.to_owned())
    }

    /// Withdraws a handler; returns whether one was declared (`unhandle()`).
    pub fn unhandle(&mut self, rpc_type: &str) -> bool {
        self.config.rpc_handlers.remove(rpc_type)
    }

    /// Routes every inbound RPC type to the application (which then answers unknown
    /// types itself, e.g. with [`HandlerError::UnknownType`]).
    pub fn set_rpc_catch_all(&mut self, on: bool) {
        self.catch_all = on;
    }

    /// Subscribes to `topic`; the subscription is replayed after every ready.
    pub fn subscribe(&mut self, now: Now, topic: &str) -> Result<(), ClientError> {
        self.last = Some(now.instant);
        if !is_valid_topic(topic) {
            return Err(ClientError::InvalidTopic(topic.to_owned()));
        }
        if self.subscriptions.add(topic) && self.writable() {
            self.send_topic_control(now, types::TOPIC_SUBSCRIBE, topic);
        }
        Ok(())
    }

    /// Unsubscribes from `topic`; returns whether it was subscribed.
    pub fn unsubscribe(&mut self, now: Now, topic: &str) -> Result<bool, ClientError> {
        self.last = Some(now.instant);
        if !is_valid_topic(topic) {
            return Err(ClientError::InvalidTopic(topic.to_owned()));
        }
        if !self.subscriptions.remove(topic) {
            return Ok(false);
        }
        if self.writable() {
            self.send_topic_control(now, types::TOPIC_UNSUBSCRIBE, topic);
        }
        Ok(true)
    }

    /// Publishes to `topic`. Queued while the link is down; refused after `stop()` or
    /// when the hub's features are known and lack `topics`.
    pub fn publish(
        &mut self,
        now: Now,
        topic: &str,
        payload_value: Option<Value>,
    ) -> Result<(), ClientError> {
        self.last = Some(now.instant);
        if !is_valid_topic(topic) {
            return Err(ClientError::InvalidTopic(topic.to_owned()));
        }
        self.check_sendable("publish")?;
        if let Some(p) = &payload_value {
            check_json_safe(p).map_err(ClientError::NotSerializable)?;
        }
        self.check_feature("publish", "topics")?;
        let message = Message::TopicMessage(TopicMessage {
            topic: Some(Value::from(topic)),
            payload: payload_value,
        });
        self.send_app(now, types::TOPIC_MESSAGE, None, &message)
    }

    /// Sends a directed message. Queued while the link is down; refused after
    /// `stop()` or when the hub's features are known and lack `direct`.
    pub fn send(
        &mut self,
        now: Now,
        to: &str,
        direct_type: &str,
        data: Option<Value>,
    ) -> Result<(), ClientError> {
        self.last = Some(now.instant);
        if to.is_empty() {
            return Err(ClientError::InvalidArgument(
                "send(to, type, data): \"to\" must be a non-empty string",
            ));
        }
        if direct_type.is_empty() {
            return Err(ClientError::InvalidArgument(
                "send(to, type, data): \"type\" must be a non-empty string",
            ));
        }
        self.check_sendable("send")?;
        if let Some(d) = &data {
            check_json_safe(d).map_err(ClientError::NotSerializable)?;
        }
        self.check_feature("send", "direct")?;
        let message = Message::Direct(Direct {
            direct_type: Some(Value::from(direct_type)),
            direct_data: data,
        });
        self.send_app(now, types::DIRECT, Some(to.into()), &message)
    }

    /// Pushes this peer's status (the answer to [`ClientEvent::StatusWanted`]);
    /// conflated with any status still queued.
    pub fn push_status(&mut self, now: Now, status: Option<Value>) -> Result<(), ClientError> {
        self.last = Some(now.instant);
        self.check_sendable("status")?;
        if let Some(s) = &status {
            check_json_safe(s).map_err(ClientError::NotSerializable)?;
        }
        let message = Message::StatusUpdate(StatusUpdate::new(status));
        self.send_app(now, types::STATUS_UPDATE, None, &message)
    }

    /// Stops: `graceful` flushes the outbox and lets pending RPCs settle within
    /// `stop_drain` before closing; otherwise everything ends now. Pending RPCs fail
    /// with `RPC_DISCONNECT`, the outbox is cleared, and [`ClientEvent::Stopped`]
    /// follows. An immediate stop during a graceful one cuts it short.
    pub fn stop(&mut self, now: Now, graceful: bool) {
        self.last = Some(now.instant);
        if self.drain.is_some() {
            if !graceful {
                self.hard_stop(now);
            }
            return;
        }
        if self.stopped && self.transport == Transport::None {
            return;
        }
        self.stopped = true;
        self.timers.clear_connection();
        self.timers.drain_retry = None;
        let was_ready = self.ready;
        self.ready = false;
        self.verified = false;
        self.features = None;
        self.drain = Some(Drain {
            was_ready,
            deadline: (!self.config.stop_drain.is_zero())
                .then(|| now.instant.checked_add(self.config.stop_drain))
                .flatten(),
            restart: false,
        });
        if !graceful || self.transport != Transport::Open || self.settled() {
            self.hard_stop(now);
        } else {
            self.stop_tick(now);
        }
    }

    // ---------------------------------------------------------------------------
    // Introspection

    /// The reference's `health()`.
    pub fn health(&self) -> ClientHealth {
        ClientHealth {
            connected: self.transport == Transport::Open,
            verified: self.verified,
            ready: self.ready,
            last_verified_at: self.last_verified_at,
            peer_count: self.peers.len(),
            pending_rpcs: self.pending.len(),
            subscriptions: self.subscriptions.len(),
            buffered_bytes: self.buffered,
            outbox_size: self.outbox.len(),
            outbox_bytes: self.outbox.bytes(),
            in_flight_rpc: self.inbound.len(),
            reconnect_attempt: self.backoff.attempt(),
            stopped: self.stopped,
        }
    }

    /// Whether the hub has accepted the hello (`isReady()`).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Whether the transport is open (`isConnected()`).
    pub fn is_connected(&self) -> bool {
        self.transport == Transport::Open
    }

    /// The latest `peers.update`, including this peer (`getPeers()`).
    pub fn peers(&self) -> impl Iterator<Item = &PeerEntry> {
        self.peers.list().iter()
    }

    /// The last known status of `kind` (`getPeerStatus()`).
    pub fn peer_status(&self, kind: &str) -> Option<&StatusEntry> {
        self.peers.status(kind)
    }

    /// The hub's features from this transport's `hello.ack` (empty until then).
    pub fn hub_features(&self) -> &[String] {
        self.features.as_deref().unwrap_or(&[])
    }

    /// The topics subscribed locally.
    pub fn subscriptions(&self) -> impl Iterator<Item = &str> {
        self.subscriptions.iter()
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    // ---------------------------------------------------------------------------
    // Lifecycle

    fn emit(&mut self, event: ClientEvent) {
        self.out.push_back(Output::Event(event));
    }

    fn connect(&mut self) {
        self.disconnect_emitted = false;
        self.transport = Transport::Connecting;
        self.out.push_back(Output::Connect {
            url: self.config.url.clone(),
        });
    }

    fn on_transport_up(&mut self, now: Now) {
        if self.transport != Transport::Connecting {
            return;
        }
        self.transport = Transport::Open;
        self.verified = false;
        self.ready = false;
        self.features = None;
        self.pong_alive = true;
        self.skew_drops = 0;
        self.last_skew = 0.0;
        self.buffered = 0;
        // hello bypasses the outbox: it must be the first frame on the socket.
        let info = HelloInfo {
            kind: self.config.kind.clone(),
            name: JsString::from(self.config.name.as_deref().unwrap_or(&self.config.kind)),
            pid: self.config.pid.map(f64::from),
            started_at: Some(now.ms()),
        };
        let id = JsString::from(self.rng.uuid());
        self.transmit_message(now, &id, None, &Message::Hello(Hello::new(&info)));
        if !self.config.hello_ack_diagnostic.is_zero() {
            self.timers.hello_diagnostic =
                now.instant.checked_add(self.config.hello_ack_diagnostic);
        }
        if !self.config.keepalive_interval.is_zero() {
            self.timers.keepalive = now.instant.checked_add(self.config.keepalive_interval);
        }
        self.emit(ClientEvent::Connected {
            url: self.config.url.clone(),
        });
    }

    /// The reference's `handleClose`.
    fn on_transport_down(&mut self, now: Now, code: Option<u16>, reason: &str) {
        self.transport = Transport::None;
        self.buffered = 0;
        self.timers.clear_connection();
        self.timers.drain_retry = None;
        let was_ready = self.ready;
        self.ready = false;
        self.features = None;
        if !self.stopped {
            self.fail_all_pending(now, false);
        }
        // A request or cancel belongs to the connection that carried it.
        self.outbox.remove_where(|it| {
            it.msg_type == types::RPC_REQUEST || it.msg_type == types::RPC_CANCEL
        });
        self.abort_inbound(CancelReason::Disconnected);
        if self.stopped {
            if self.drain.is_some() {
                self.hard_stop(now);
            }
            return;
        }
        if code == Some(CLOSE_REPLACED) {
            self.stopped = true;
            self.outbox.clear();
            let reason = if reason.is_empty() {
                "replaced by new connection"
            } else {
                reason
            };
            self.emit_disconnect(DisconnectInfo {
                code,
                reason: reason.to_owned(),
                will_reconnect: false,
                was_ready,
                displaced: true,
            });
            self.emit(ClientEvent::Stopped);
            return;
        }
        match self.backoff.next(&mut self.rng) {
            Retry::Exhausted {
                attempts,
                max_attempts,
            } => {
                self.stopped = true;
                self.outbox.clear();
                self.emit_disconnect(DisconnectInfo {
                    code,
                    reason: reason.to_owned(),
                    will_reconnect: false,
                    was_ready,
                    displaced: false,
                });
                self.emit(ClientEvent::ReconnectExhausted {
                    attempts,
                    max_attempts,
                });
                self.emit(ClientEvent::Stopped);
            }
            Retry::After { attempt, delay } => {
                self.emit_disconnect(DisconnectInfo {
                    code,
                    reason: reason.to_owned(),
                    will_reconnect: true,
                    was_ready,
                    displaced: false,
                });
                self.emit(ClientEvent::ReconnectScheduled { attempt, delay });
                self.timers.reconnect = now.instant.checked_add(delay);
            }
        }
    }

    fn emit_disconnect(&mut self, info: DisconnectInfo) {
        if !self.disconnect_emitted {
            self.disconnect_emitted = true;
            self.emit(ClientEvent::Disconnected(info));
        }
    }

    /// Ends the transport from this side (close frame or terminate) and runs the
    /// close handling at once: the adapter reports nothing more about it.
    fn drop_transport(&mut self, now: Now, output: Output, code: u16, reason: &str) {
        self.out.push_back(output);
        self.on_transport_down(now, Some(code), reason);
    }

    fn become_ready(&mut self, now: Now) {
        self.ready = true;
        self.backoff.reset();
        let features = self.features.clone().unwrap_or_default();
        let has_topics = features.iter().any(|f| f == "topics");
        let has_direct = features.iter().any(|f| f == "direct");
        let dropped = self.outbox.remove_where(|it| {
            (!has_topics
                && matches!(
                    it.msg_type,
                    types::TOPIC_MESSAGE | types::TOPIC_SUBSCRIBE | types::TOPIC_UNSUBSCRIBE
                ))
                || (!has_direct && it.msg_type == types::DIRECT)
        });
        if dropped > 0 {
            self.emit(ClientEvent::OutboxPurged { dropped });
        }
        if has_topics {
            self.replay_subscriptions(now);
        }
        if self.config.make_status && self.timers.status.is_none() {
            self.emit(ClientEvent::StatusWanted);
            self.timers.status = now.instant.checked_add(self.config.status_interval);
        }
        self.drain_outbox(now);
        self.emit(ClientEvent::Ready { features });
    }

    fn replay_subscriptions(&mut self, now: Now) {
        let topics: Vec<String> = self.subscriptions.iter().map(str::to_owned).collect();
        for topic in topics {
            self.send_topic_control(now, types::TOPIC_SUBSCRIBE, &topic);
        }
    }

    fn hard_stop(&mut self, now: Now) {
        let drain = self.drain.take();
        let was_ready = drain.is_some_and(|d| d.was_ready);
        self.stopped = true;
        self.timers = Timers::default();
        if self.transport != Transport::None {
            self.out.push_back(Output::Close {
                code: CLOSE_NORMAL,
                reason: String::new(),
            });
        }
        self.transport = Transport::None;
        self.buffered = 0;
        self.ready = false;
        self.outbox.clear();
        self.abort_inbound(CancelReason::Stopped);
        self.fail_all_pending(now, true);
        if was_ready {
            self.emit_disconnect(DisconnectInfo {
                code: None,
                reason: "stopped".to_owned(),
                will_reconnect: false,
                was_ready: true,
                displaced: false,
            });
        }
        self.emit(ClientEvent::Stopped);
        if drain.is_some_and(|d| d.restart) {
            self.stopped = false;
            self.connect();
        }
    }

    fn settled(&self) -> bool {
        self.transport != Transport::Open
            || (self.outbox.is_empty() && self.pending.is_empty() && self.buffered == 0)
    }

    fn stop_tick(&mut self, now: Now) {
        let Some(drain) = self.drain else {
            return;
        };
        if self.settled() || drain.deadline.is_some_and(|d| now.instant >= d) {
            self.hard_stop(now);
            return;
        }
        self.drain_outbox(now);
        self.timers.stop_tick = now.instant.checked_add(DRAIN_RETRY);
    }

    fn check_drained(&mut self, now: Now) {
        if self.drain.is_some() && self.settled() {
            self.hard_stop(now);
        }
    }

    fn fail_all_pending(&mut self, now: Now, stopped: bool) {
        for (id, call) in self.pending.take_all() {
            let err = RpcError::Disconnect {
                to: call.to.clone(),
                rpc_type: call.rpc_type.clone(),
                stopped,
            };
            let took = now.instant.saturating_duration_since(call.started);
            self.complete(id, &call.to, &call.rpc_type, took, Err(err));
        }
    }

    fn abort_inbound(&mut self, reason: CancelReason) {
        for (request, r) in self.inbound.abort_all() {
            self.emit(ClientEvent::RpcCancelled {
                request,
                from: r.from.as_ref().map(JsString::to_string_lossy),
                rpc_type: r.rpc_type,
                reason,
            });
        }
    }

    fn complete(
        &mut self,
        id: RpcId,
        to: &str,
        rpc_type: &str,
        duration: Duration,
        outcome: Result<Option<Value>, RpcError>,
    ) {
        self.emit(ClientEvent::RpcComplete(RpcComplete {
            id,
            to: to.to_owned(),
            rpc_type: rpc_type.to_owned(),
            outcome,
            duration,
        }));
    }

    // ---------------------------------------------------------------------------
    // Timers

    fn run_timers(&mut self, now: Now) {
        let t = now.instant;
        while let Some(id) = self.pending.expired(t) {
            self.on_rpc_timeout(now, id);
        }
        if self.timers.hello_diagnostic.is_some_and(|d| d <= t) {
            self.timers.hello_diagnostic = None;
            self.hello_diagnostic();
        }
        if self.timers.keepalive.is_some_and(|d| d <= t) {
            self.timers.keepalive = None;
            self.keepalive(now);
        }
        if self.timers.status.is_some_and(|d| d <= t) {
            self.timers.status = None;
            if self.ready {
                self.emit(ClientEvent::StatusWanted);
                self.timers.status = t.checked_add(self.config.status_interval);
            }
        }
        if self.timers.drain_retry.is_some_and(|d| d <= t) {
            self.timers.drain_retry = None;
            if self.ready || self.drain.is_some() {
                self.drain_outbox(now);
            }
        }
        if self.timers.stop_tick.is_some_and(|d| d <= t) {
            self.timers.stop_tick = None;
            self.stop_tick(now);
        }
        if self.timers.reconnect.is_some_and(|d| d <= t) {
            self.timers.reconnect = None;
            if !self.stopped && self.transport == Transport::None {
                self.backoff.grow();
                self.connect();
            }
        }
    }

    fn on_rpc_timeout(&mut self, now: Now, id: RpcId) {
        let Some(call) = self.pending.remove(id) else {
            return;
        };
        self.outbox.remove_by_id(&call.wire_id);
        self.send_rpc_cancel(now, &call.wire_id, &call.to);
        let err = RpcError::Timeout {
            to: call.to.clone(),
            rpc_type: call.rpc_type.clone(),
            timeout: call.timeout,
        };
        let took = now.instant.saturating_duration_since(call.started);
        self.complete(id, &call.to, &call.rpc_type, took, Err(err));
    }

    fn hello_diagnostic(&mut self) {
        if self.ready || self.transport != Transport::Open {
            return;
        }
        let diagnosis = if self.verified {
            HelloAckDiagnosis::NoAck
        } else if self.skew_drops > 0 {
            HelloAckDiagnosis::ClockSkew {
                dropped: self.skew_drops,
                skew_ms: self.last_skew,
            }
        } else {
            HelloAckDiagnosis::NothingVerified
        };
        self.emit(ClientEvent::HelloAckDiagnostic(diagnosis));
    }

    fn keepalive(&mut self, now: Now) {
        if self.transport != Transport::Open {
            return;
        }
        if !self.pong_alive {
            self.emit(ClientEvent::ProtocolError {
                reason: DropReason::KeepaliveTimeout,
                msg_type: None,
                detail: None,
            });
            self.drop_transport(now, Output::Terminate, CLOSE_ABNORMAL, "");
            return;
        }
        self.pong_alive = false;
        self.out.push_back(Output::Ping);
        self.timers.keepalive = now.instant.checked_add(self.config.keepalive_interval);
    }

    // ---------------------------------------------------------------------------
    // Outbound

    /// The link may carry application traffic: open and acknowledged.
    fn writable(&self) -> bool {
        self.transport == Transport::Open && self.ready
    }

    fn check_sendable(&self, op: &'static str) -> Result<(), ClientError> {
        if self.stopped {
            Err(ClientError::NotReady { op })
        } else {
            Ok(())
        }
    }

    fn check_feature(&self, op: &'static str, feature: &'static str) -> Result<(), ClientError> {
        match &self.features {
            Some(f) if !f.iter().any(|x| x == feature) => {
                Err(ClientError::FeatureUnsupported { op, feature })
            }
            _ => Ok(()),
        }
    }

    fn send_app(
        &mut self,
        now: Now,
        msg_type: &'static str,
        to: Option<JsString>,
        message: &Message,
    ) -> Result<(), ClientError> {
        let id = JsString::from(self.rng.uuid());
        let item = Item::new(id, msg_type, to, payload(message));
        self.enqueue_or_send(now, item)
            .map_err(|_| ClientError::OutboxFull {
                msg_type,
                max_outbox_bytes: self.config.max_outbox_bytes,
            })
    }

    fn send_topic_control(&mut self, now: Now, msg_type: &'static str, topic: &str) {
        let message = if msg_type == types::TOPIC_SUBSCRIBE {
            Message::TopicSubscribe(TopicSubscribe {
                topic: Some(Value::from(topic)),
            })
        } else {
            Message::TopicUnsubscribe(TopicUnsubscribe {
                topic: Some(Value::from(topic)),
            })
        };
        let id = JsString::from(self.rng.uuid());
        let _ = self.enqueue_or_send(now, Item::new(id, msg_type, None, payload(&message)));
    }

    fn send_rpc_cancel(&mut self, now: Now, wire_id: &JsString, to: &str) {
        if !self.writable() {
            return;
        }
        let message = Message::RpcCancel(RpcCancel {
            id: Some(Value::String(wire_id.clone())),
        });
        let id = JsString::from(self.rng.uuid());
        let item = Item::new(id, types::RPC_CANCEL, Some(to.into()), payload(&message));
        let _ = self.enqueue_or_send(now, item);
    }

    /// Sends now on the fast path (ready, nothing queued, transport not congested),
    /// otherwise queues.
    fn enqueue_or_send(&mut self, now: Now, item: Item) -> Result<(), Overflow> {
        if self.outbox.is_empty()
            && self.writable()
            && self.buffered <= self.config.max_buffered_bytes
        {
            self.transmit_item(now, &item);
            return Ok(());
        }
        let was_empty = self.outbox.is_empty();
        let (msg_type, to) = (item.msg_type, item.to.clone());
        if let Err(o) = self.outbox.push(item) {
            self.emit(ClientEvent::OutboxOverflow {
                msg_type,
                to: to.map(|t| t.to_string_lossy()),
                outbox_bytes: o.outbox_bytes,
                max_outbox_bytes: self.outbox.max_bytes(),
            });
            return Err(o);
        }
        if was_empty {
            self.emit(ClientEvent::Backpressure {
                msg_type,
                to: to.map(|t| t.to_string_lossy()),
                buffered: self.buffered,
                outbox_size: self.outbox.len(),
            });
        }
        if self.writable() {
            self.drain_outbox(now);
        }
        Ok(())
    }

    /// Flushes what the transport will take, pausing while it is congested. Gated on
    /// the transport only, so a graceful stop (no longer ready) can still drain.
    fn drain_outbox(&mut self, now: Now) {
        if self.transport != Transport::Open {
            return;
        }
        let mut drained_any = false;
        while !self.outbox.is_empty() {
            if self.buffered > self.config.max_buffered_bytes {
                if self.timers.drain_retry.is_none() {
                    self.timers.drain_retry = now.instant.checked_add(DRAIN_RETRY);
                }
                break;
            }
            if let Some(item) = self.outbox.pop() {
                self.transmit_item(now, &item);
                drained_any = true;
            }
        }
        if drained_any && self.outbox.is_empty() {
            self.emit(ClientEvent::OutboxDrained);
        }
    }

    fn transmit_item(&mut self, now: Now, item: &Item) {
        let header = Header {
            id: (&item.id).into(),
            ts: now.ms(),
            from: Some(self.config.kind.as_str().into()),
            to: item.to.as_ref().map(Into::into),
        };
        let mut out = Vec::new();
        wire::encode(
            &self.key,
            &header,
            item.msg_type,
            item.data.as_deref(),
            &mut out,
        );
        self.transmit(out);
    }

    fn transmit_message(
        &mut self,
        now: Now,
        id: &JsString,
        to: Option<&JsString>,
        message: &Message,
    ) {
        let header = Header {
            id: id.into(),
            ts: now.ms(),
            from: Some(self.config.kind.as_str().into()),
            to: to.map(Into::into),
        };
        let mut out = Vec::new();
        wire::encode_message(&self.key, &header, message, &mut out);
        self.transmit(out);
    }

    fn transmit(&mut self, bytes: Vec<u8>) {
        // The encoder only writes UTF-8 (lone surrogates are escaped).
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.buffered += text.len();
        self.out.push_back(Output::Transmit(text));
    }

    // ---------------------------------------------------------------------------
    // Inbound

    fn protocol_error(
        &mut self,
        reason: DropReason,
        msg_type: Option<String>,
        detail: Option<String>,
    ) {
        self.emit(ClientEvent::ProtocolError {
            reason,
            msg_type,
            detail,
        });
    }

    fn on_frame(&mut self, now: Now, bytes: &[u8]) {
        if self.transport != Transport::Open {
            return;
        }
        let frame = match Frame::parse(bytes, &self.config.limits) {
            Ok(f) => f,
            Err(reason) => {
                let detail =
                    (reason == DropReason::Oversize).then(|| format!("size {}", bytes.len()));
                return self.protocol_error(reason, None, detail);
            }
        };
        let msg_type = frame.msg_type().map(JsString::to_string_lossy);
        if let Err(reason) = frame.verify(&self.key, &mut self.scratch) {
            return self.protocol_error(reason, msg_type, None);
        }
        let sender = match frame.from() {
            Some(f) if !f.is_empty() => f.to_string_lossy(),
            _ => SERVER.to_owned(),
        };
        if let Err(reason) =
            self.replay
                .check(&sender, frame.id(), frame.ts(), frame.msg_type(), now.ms())
        {
            let mut detail = None;
            if reason == DropReason::ReplayWindow {
                self.skew_drops = self.skew_drops.saturating_add(1);
                self.last_skew = now.ms() - frame.ts();
                detail = Some(format!("skew {}ms", self.last_skew));
            }
            return self.protocol_error(reason, msg_type, detail);
        }
        let env = frame.into_envelope();
        if !self.verified {
            self.verified = true;
            self.skew_drops = 0;
            self.emit(ClientEvent::Verified);
        }
        self.last_verified_at = Some(now.wall_ms);
        self.dispatch(now, env);
    }

    fn dispatch(&mut self, now: Now, env: Envelope) {
        let Envelope {
            id, from, message, ..
        } = env;
        match message {
            Message::HelloAck(ack) => self.on_hello_ack(now, &ack),
            Message::PeersUpdate(update) => {
                for change in self.peers.update(update.peers()) {
                    let event = match change {
                        PeerChange::Connected(p) => ClientEvent::PeerConnected(p),
                        PeerChange::Replaced { previous, peer } => ClientEvent::PeerReplaced {
                            kind: peer.kind.clone(),
                            previous: Box::new(previous),
                            peer: Box::new(peer),
                        },
                        PeerChange::Disconnected(p) => {
                            // Its ids can no longer arrive; a returning peer starts afresh.
                            self.replay.forget(&p.kind);
                            ClientEvent::PeerDisconnected(p)
                        }
                    };
                    self.emit(event);
                }
            }
            Message::StatusSnapshot(snapshot) => {
                for (kind, entry) in snapshot.entries() {
                    self.peers.set_status(kind, entry);
                }
            }
            Message::StatusUpdate(update) => {
                if let Some(relay) = update.as_relay().filter(|r| !r.from.is_empty()) {
                    self.peers.set_status(
                        relay.from.clone(),
                        StatusEntry {
                            status: relay.status.clone(),
                            at: relay.at,
                        },
                    );
                    self.emit(ClientEvent::PeerStatus {
                        from: relay.from,
                        status: relay.status,
                        at: relay.at,
                    });
                }
            }
            Message::RpcRequest(req) => self.on_rpc_request(now, id, from, req),
            Message::RpcResponse(resp) => self.on_rpc_response(now, &id, from, &resp),
            Message::RpcCancel(cancel) => {
                if let Some(target) = cancel.id_str() {
                    let target = target.clone();
                    self.on_rpc_cancel(&target, from);
                }
            }
            Message::TopicMessage(m) => {
                let Some(topic) = m.topic.as_ref().and_then(Value::as_str) else {
                    return;
                };
                let own = from
                    .as_ref()
                    .is_some_and(|f| *f == self.config.kind.as_str());
                if topic.is_empty() || own || !self.subscriptions.contains(topic) {
                    return;
                }
                self.emit(ClientEvent::TopicMessage {
                    topic: topic.to_owned(),
                    from: from.as_ref().map(JsString::to_string_lossy),
                    payload: m.payload,
                });
            }
            Message::Direct(d) => {
                let Some(direct_type) = d.direct_type_str().map(JsString::to_string_lossy) else {
                    return;
                };
                self.emit(ClientEvent::Direct {
                    from: from.as_ref().map(JsString::to_string_lossy),
                    direct_type,
                    data: d.direct_data,
                });
            }
            _ => {}
        }
    }

    fn on_hello_ack(&mut self, now: Now, ack: &HelloAck) {
        self.timers.hello_diagnostic = None;
        if !ack.ok() {
            let error = ack
                .data
                .as_ref()
                .and_then(|d| d.get("error"))
                .filter(|e| e.is_truthy())
                .map(|e| js_string_of(e).to_string_lossy());
            let reason = error.clone().unwrap_or_else(|| "hello rejected".to_owned());
            self.emit(ClientEvent::Rejected { reason, error });
            if self.config.reconnect_on_rejection {
                let reason = "hello rejected - will retry";
                let close = Output::Close {
                    code: CLOSE_NORMAL,
                    reason: reason.to_owned(),
                };
                self.drop_transport(now, close, CLOSE_NORMAL, reason);
            } else {
                // Immediate, not graceful: a hub that refused us gets nothing more.
                self.stop(now, false);
            }
            return;
        }
        let previous = self.features.replace(ack.features());
        let has_topics =
            |f: &Option<Vec<String>>| f.as_ref().is_some_and(|f| f.iter().any(|x| x == "topics"));
        if self.ready && previous.is_some() && !has_topics(&previous) && has_topics(&self.features)
        {
            self.replay_subscriptions(now);
        }
        if !self.ready && !self.stopped {
            self.become_ready(now);
        }
    }

    fn on_rpc_request(
        &mut self,
        now: Now,
        wire_id: JsString,
        from: Option<JsString>,
        req: RpcRequest,
    ) {
        // The reference's `String(rpcType || '')`.
        let rpc_type = req
            .rpc_type
            .as_ref()
            .filter(|t| t.is_truthy())
            .map(|t| js_string_of(t).to_string_lossy())
            .unwrap_or_default();
        let refusal = if self.config.max_concurrent_rpc > 0
            && self.inbound.len() >= self.config.max_concurrent_rpc
        {
            Some(HandlerError::exposed(
                "RPC_OVERLOADED",
                "Handler overloaded - too many concurrent RPCs",
            ))
        } else if !self.catch_all && !self.config.rpc_handlers.contains(&rpc_type) {
            Some(HandlerError::UnknownType(rpc_type.clone()))
        } else {
            None
        };
        let from_name = from.as_ref().map(JsString::to_string_lossy);
        if let Some(err) = refusal {
            let code = if matches!(err, HandlerError::UnknownType(_)) {
                "RPC_UNKNOWN_TYPE"
            } else {
                "RPC_OVERLOADED"
            };
            let (body, _) = rpc::response_body(Err(err), false);
            let message = Message::RpcResponse(body);
            let item = Item::new(wire_id, types::RPC_RESPONSE, from, payload(&message));
            let _ = self.enqueue_or_send(now, item);
            self.emit(ClientEvent::RpcRefused {
                from: from_name,
                rpc_type,
                code,
            });
            return;
        }
        let request = self.inbound.insert(wire_id, from, rpc_type.clone());
        self.emit(ClientEvent::RpcRequest {
            request,
            from: from_name,
            rpc_type,
            data: req.rpc_data,
        });
    }

    fn on_rpc_response(
        &mut self,
        now: Now,
        wire_id: &JsString,
        from: Option<JsString>,
        resp: &RpcResponse,
    ) {
        let Some((id, call)) = self.pending.find(wire_id) else {
            self.emit(ClientEvent::LateResponse {
                id: wire_id.to_string_lossy(),
                from: from.as_ref().map(JsString::to_string_lossy),
            });
            return;
        };
        if let Some(f) = &from
            && *f != SERVER
            && *f != call.to.as_str()
        {
            let detail = format!(
                "from {} but the call went to {}",
                f.to_string_lossy(),
                call.to
            );
            return self.protocol_error(
                DropReason::RpcResponseMismatch,
                Some(types::RPC_RESPONSE.to_owned()),
                Some(detail),
            );
        }
        let Some(call) = self.pending.remove(id) else {
            return;
        };
        let outcome = match resp.reply() {
            RpcReply::Ok(result) => Ok(result),
            RpcReply::Err(e) => Err(RpcError::Remote(Box::new(RemoteFailure {
                to: call.to.clone(),
                rpc_type: call.rpc_type.clone(),
                code: e.code,
                message: e.message,
                data: e.data,
            }))),
        };
        let took = now.instant.saturating_duration_since(call.started);
        self.complete(id, &call.to, &call.rpc_type, took, outcome);
    }

    fn on_rpc_cancel(&mut self, target: &JsString, from: Option<JsString>) {
        let Some((request, req)) = self.inbound.find_mut(target) else {
            return;
        };
        // Only the peer that made the request may cancel it (the hub stamps `from`).
        if let (Some(origin), Some(canceller)) = (&req.from, &from)
            && origin != canceller
        {
            return;
        }
        if req.aborted {
            return;
        }
        req.aborted = true;
        let (from, rpc_type) = (
            req.from.as_ref().map(JsString::to_string_lossy),
            req.rpc_type.clone(),
        );
        self.emit(ClientEvent::RpcCancelled {
            request,
            from,
            rpc_type,
            reason: CancelReason::Caller,
        });
    }
}

/// The close code the hub uses for a displaced socket.
pub const CLOSE_REPLACED: u16 = 4000;
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_ABNORMAL: u16 = 1006;
const SERVER: &str = "server";

/// The canonical `data` of a message (`None` when it has none).
fn payload(message: &Message) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    message.write_data(&mut out).then_some(out)
}

/// The reference constructor's checks.
fn validate(c: &ClientConfig) -> Result<(), ConfigError> {
    let bad = |name, problem| Err(ConfigError::InvalidOption { name, problem });
    if c.url.is_empty() {
        return Err(ConfigError::Empty("url"));
    }
    if c.secret.is_empty() {
        return Err(ConfigError::Empty("secret"));
    }
    if c.name.as_ref().is_some_and(String::is_empty) {
        return Err(ConfigError::Empty("name"));
    }
    check_kind(&c.kind).map_err(ConfigError::InvalidKind)?;
    if c.limits.max_message_bytes == 0 {
        return bad("limits.max_message_bytes", "must be positive");
    }
    if c.limits.max_recent_ids == 0 {
        return bad("limits.max_recent_ids", "must be positive");
    }
    if c.max_buffered_bytes == 0 {
        return bad("max_buffered_bytes", "must be positive");
    }
    if c.max_outbox_bytes == 0 {
        return bad("max_outbox_bytes", "must be positive");
    }
    if c.default_rpc_timeout.is_zero() {
        return bad("default_rpc_timeout", "must be positive");
    }
    if c.status_interval.is_zero() {
        return bad("status_interval", "must be positive");
    }
    if c.reconnect_initial.is_zero() {
        return bad("reconnect_initial", "must be positive");
    }
    if c.reconnect_max.is_zero() {
        return bad("reconnect_max", "must be positive");
    }
    if !(c.reconnect_growth.is_finite() && c.reconnect_growth >= 1.0) {
        return bad("reconnect_growth", "must be a finite number >= 1");
    }
    if !(0.0..=1.0).contains(&c.reconnect_jitter) {
        return bad("reconnect_jitter", "must be between 0 and 1");
    }
    if c.max_reconnect_attempts == Some(0) {
        return bad(
            "max_reconnect_attempts",
            "must be positive (None = unlimited)",
        );
    }
    Ok(())
}
