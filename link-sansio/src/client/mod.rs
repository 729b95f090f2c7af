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
//!   transport. Either ends it as far as the connection is concerned: report nothing
//!   more about that transport.
//! - [`Output::Ping`]: send a WebSocket ping; report [`Input::Pong`] on a pong frame.
//! - [`Output::Event`]: tell the application.
//!
//! # Inbound RPCs
//!
//! The application declares the RPC types it handles ([`ClientConfig::rpc_handlers`],
//! [`Connection::handle`], or [`Connection::set_rpc_catch_all`] to see every type).
//! A request of a declared type becomes [`ClientEvent::RpcRequest`], answered with
//! [`Connection::respond`]; any other type is answered `RPC_UNKNOWN_TYPE` by the
//! connection itself ([`ClientEvent::RpcRefused`]).
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

use crate::time::Now;
use crate::wire::json::Value;
use crate::wire::message::{PeerEntry, StatusEntry};
use crate::wire::{HashAlgo, Limits};

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

/// One client's link to a hub. See the module docs.
#[derive(Debug)]
pub struct Connection {
    config: ClientConfig,
    out: VecDeque<Output>,
    last: Option<Instant>,
    peers: Vec<PeerEntry>,
    features: Vec<String>,
}

impl Connection {
    /// A stopped connection; validates the configuration like the reference's
    /// constructor. `seed` drives ids and backoff jitter.
    pub fn new(config: ClientConfig, seed: u64) -> Result<Self, ConfigError> {
        let _ = seed;
        Ok(Self {
            config,
            out: VecDeque::new(),
            last: None,
            peers: Vec::new(),
            features: Vec::new(),
        })
    }

    /// Starts (or restarts after `stop`): emits [`Output::Connect`].
    pub fn start(&mut self, now: Now) {
        self.last = Some(now.instant);
        self.out.push_back(Output::Connect {
            url: self.config.url.clone(),
        });
    }

    /// Feeds an input from the adapter.
    pub fn handle_input(&mut self, now: Now, input: Input<'_>) {
        self.last = Some(now.instant);
        let _ = input;
    }

    /// The next thing to do; drain until [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        match self.last {
            Some(t) => Output::Timeout(t + Duration::from_secs(3600)),
            None => Output::Idle,
        }
    }

    /// Calls `rpc_type` on peer `to` (or `"server"`). `timeout`: `None` = the default,
    /// `Some(ZERO)` = no timeout. The outcome arrives as [`ClientEvent::RpcComplete`].
    pub fn rpc(
        &mut self,
        now: Now,
        to: &str,
        rpc_type: &str,
        data: Option<Value>,
        timeout: Option<Duration>,
    ) -> Result<RpcId, RpcError> {
        let _ = (now, data, timeout);
        Err(RpcError::NotReady {
            to: to.to_owned(),
            rpc_type: rpc_type.to_owned(),
        })
    }

    /// Aborts an outbound call (the caller's AbortSignal): `RPC_ABORT`, and an
    /// `rpc.cancel` to the target while ready.
    pub fn cancel_rpc(&mut self, now: Now, id: RpcId) {
        let _ = (now, id);
    }

    /// Answers an inbound request. Ignored if the request was cancelled or its
    /// transport is gone (the reference suppresses such responses).
    pub fn respond(
        &mut self,
        now: Now,
        request: InboundRpcId,
        reply: Result<Option<Value>, HandlerError>,
    ) {
        let _ = (now, request, reply);
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
        let _ = on;
    }

    /// Subscribes to `topic`; replayed after every ready.
    pub fn subscribe(&mut self, now: Now, topic: &str) -> Result<(), ClientError> {
        let _ = (now, topic);
        Ok(())
    }

    /// Unsubscribes from `topic`; returns whether it was subscribed.
    pub fn unsubscribe(&mut self, now: Now, topic: &str) -> Result<bool, ClientError> {
        let _ = (now, topic);
        Ok(false)
    }

    /// Publishes to `topic` (queued until ready).
    pub fn publish(
        &mut self,
        now: Now,
        topic: &str,
        payload: Option<Value>,
    ) -> Result<(), ClientError> {
        let _ = (now, topic, payload);
        Ok(())
    }

    /// Sends a directed message (queued until ready).
    pub fn send(
        &mut self,
        now: Now,
        to: &str,
        direct_type: &str,
        data: Option<Value>,
    ) -> Result<(), ClientError> {
        let _ = (now, to, direct_type, data);
        Ok(())
    }

    /// Pushes this peer's status (answers [`ClientEvent::StatusWanted`]); conflated
    /// with any status still queued.
    pub fn push_status(&mut self, now: Now, status: Option<Value>) -> Result<(), ClientError> {
        let _ = (now, status);
        Ok(())
    }

    /// Stops: `graceful` flushes the outbox and lets pending RPCs settle within
    /// `stop_drain` first; otherwise everything ends now. Ends with
    /// [`ClientEvent::Stopped`].
    pub fn stop(&mut self, now: Now, graceful: bool) {
        let _ = (now, graceful);
    }

    /// The reference's `health()`.
    pub fn health(&self) -> ClientHealth {
        ClientHealth {
            connected: false,
            verified: false,
            ready: false,
            last_verified_at: None,
            peer_count: self.peers.len(),
            pending_rpcs: 0,
            subscriptions: 0,
            buffered_bytes: 0,
            outbox_size: 0,
            outbox_bytes: 0,
            in_flight_rpc: 0,
            reconnect_attempt: 0,
            stopped: true,
        }
    }

    /// Whether the hub has accepted the hello (`isReady()`).
    pub fn is_ready(&self) -> bool {
        false
    }

    /// Whether the transport is open (`isConnected()`).
    pub fn is_connected(&self) -> bool {
        false
    }

    /// The latest `peers.update`, including this peer (`getPeers()`).
    pub fn peers(&self) -> impl Iterator<Item = &PeerEntry> {
        self.peers.iter()
    }

    /// The last known status of `kind` (`getPeerStatus()`).
    pub fn peer_status(&self, kind: &str) -> Option<&StatusEntry> {
        let _ = kind;
        None
    }

    /// The hub's features from the last `hello.ack` (empty until then).
    pub fn hub_features(&self) -> &[String] {
        &self.features
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
}
