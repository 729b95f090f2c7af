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
//! [`Connection::push_status`]. At ready, the outbox waits for that answer before it
//! drains (as the reference calls `makeStatus` before draining), so a status queued
//! while the link was down is replaced in place by the fresh one instead of going out
//! first; without an answer it drains [`DRAIN_RETRY`] later anyway.

mod backoff;
mod config;
pub mod error;
pub mod events;
mod inbound;
mod lifecycle;
mod outbox;
mod peers;
pub mod rpc;
mod send;
mod topics;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::seeded::{Rng, SeededState};
use crate::time::Now;
use crate::wire::envelope::js_string_of;
use crate::wire::json::{JsString, Value};
use crate::wire::message::{
    Direct, Hello, HelloAck, HelloInfo, PeerEntry, RpcCancel, RpcReply, RpcRequest, RpcResponse,
    StatusEntry, StatusUpdate, TopicMessage, TopicSubscribe, TopicUnsubscribe, types,
};
use crate::wire::validate::{check_json_safe, is_valid_topic};
use crate::wire::{self, DropReason, Envelope, Frame, Header, Key, Message, ReplayGuard};
use backoff::{Backoff, Retry};
use error::RemoteFailure;
use outbox::{Item, Outbox, Overflow};
use peers::{PeerChange, Peers};
use rpc::{Inbound, Pending};
use topics::Subscriptions;

pub use error::{ClientError, ConfigError, HandlerError, RpcError};
pub use events::{CancelReason, ClientEvent, DisconnectInfo, HelloAckDiagnosis, RpcComplete};
pub use rpc::{InboundRpcId, RpcId};

use config::validate;
pub use config::{ClientConfig, DRAIN_RETRY};
use lifecycle::{Drain, IDLE, Timers, Transport};

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
    /// Ready, [`ClientEvent::StatusWanted`] emitted, and no answer yet: the outbox
    /// holds its drain until the fresh status is in it.
    status_due: bool,
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
            status_due: false,
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
        to: impl Into<String>,
        rpc_type: impl Into<String>,
        data: Option<Value>,
        timeout: Option<Duration>,
    ) -> Result<RpcId, RpcError> {
        self.last = Some(now.instant);
        // Owned from here on: the names go into the pending call, then its event.
        let (to, rpc_type): (String, String) = (to.into(), rpc_type.into());
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
                to: to.clone(),
                rpc_type: rpc_type.clone(),
            };
            self.complete(id, to, rpc_type, Duration::ZERO, Err(err.clone()));
            return Err(err);
        }
        let wire_id = JsString::from(self.rng.uuid());
        let timeout = timeout.unwrap_or(self.config.default_rpc_timeout);
        let message = Message::RpcRequest(RpcRequest::new(&rpc_type, data));
        let item = Item::new(
            wire_id.clone(),
            types::RPC_REQUEST,
            Some(to.as_str().into()),
            payload(&message),
        );
        // Sending reads nothing of the pending calls: the call is recorded once its
        // request is out or queued, and a refused one never enters the table.
        if self.enqueue_or_send(now, item).is_err() {
            let err = RpcError::Backpressure {
                to: to.clone(),
                rpc_type: rpc_type.clone(),
                max_outbox_bytes: self.config.max_outbox_bytes,
            };
            self.complete(id, to, rpc_type, Duration::ZERO, Err(err.clone()));
            return Err(err);
        }
        self.pending
            .insert(id, wire_id, to, rpc_type, now.instant, timeout);
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
        self.complete(id, call.to, call.rpc_type, took, Err(err));
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

    /// Whether an application message sent now would go straight to the transport:
    /// the link is ready, nothing waits in the outbox, and the transport's backlog is
    /// within `max_buffered_bytes`. An adapter may step the core from the caller's
    /// task while this holds, and route the caller through its own queue (where it
    /// waits its turn) while it does not.
    pub fn sends_now(&self) -> bool {
        self.outbox.is_empty() && self.writable() && self.buffered <= self.config.max_buffered_bytes
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
        let pushed = self.enqueue_status(now, status);
        if std::mem::take(&mut self.status_due) {
            self.drain_outbox(now);
        }
        pushed
    }

    fn enqueue_status(&mut self, now: Now, status: Option<Value>) -> Result<(), ClientError> {
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
        // A link the hub never acknowledged cannot be drained: anything sent after the
        // hello but before its ack is dropped by the hub as `pre-hello-message`.
        if !graceful || !was_ready || self.transport != Transport::Open || self.settled() {
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

    /// The hub's features, or `None` before this transport's `hello.ack` (the
    /// reference's `hubFeatures`, `null` until acknowledged).
    pub fn hub_features_known(&self) -> Option<&[String]> {
        self.features.as_deref()
    }

    /// The topics subscribed locally.
    pub fn subscriptions(&self) -> impl Iterator<Item = &str> {
        self.subscriptions.iter()
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }
}

/// The close code the hub uses for a displaced socket.
pub const CLOSE_REPLACED: u16 = 4000;
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_ABNORMAL: u16 = 1006;
const SERVER: &str = "server";

/// The canonical `data` of a message (`None` when it has none).
fn payload(message: &Message) -> Option<Vec<u8>> {
    // Typical payloads fit without regrowing; a queued item gives back the rest.
    let mut out = Vec::with_capacity(256);
    message.write_data(&mut out).then_some(out)
}
