//! What a `Connection` tells its application: the reference client's events
//! (`ready`, `disconnect`, `rpc.complete`, `peer.connect`, …) as one enum.

use std::time::Duration;

use super::error::RpcError;
use super::rpc::{InboundRpcId, RpcId};
use crate::wire::json::Value;
use crate::wire::message::PeerEntry;
use crate::wire::{DropReason, Envelope};

/// One event from the connection, in the order things happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The transport opened and `hello` was sent (`connect`).
    Connected {
        /// The hub URL.
        url: String,
    },
    /// The first signed-and-verified message of this connection arrived (`verified`).
    Verified,
    /// The hub accepted the hello: safe to publish, send and call (`ready`).
    Ready {
        /// The hub's advertised features.
        features: Vec<String>,
    },
    /// The hub answered `hello.ack` with `ok: false` (`rejected`).
    Rejected {
        /// `data.error`, or `hello rejected`.
        reason: String,
        /// `data.error` as sent.
        error: Option<String>,
    },
    /// The transport closed (`disconnect`); at most once per transport.
    Disconnected(DisconnectInfo),
    /// A reconnect is scheduled (`reconnecting`).
    ReconnectScheduled {
        /// 1 for the first retry after a loss.
        attempt: u32,
        /// Delay before the next `Connect`.
        delay: Duration,
    },
    /// `max_reconnect_attempts` was reached; the link stopped (`reconnect-exhausted`).
    ReconnectExhausted {
        /// Attempts made.
        attempts: u32,
        /// The configured ceiling.
        max_attempts: u32,
    },
    /// No `hello.ack` within `hello_ack_diagnostic` of connecting (a
    /// `protocol-error` with reason `no-ack` or `clock-skew` in the reference).
    HelloAckDiagnostic(HelloAckDiagnosis),
    /// Every verified message, when `ClientConfig::message_events` is on (`message`).
    Message(Box<Envelope>),
    /// An inbound frame was dropped, or the keepalive failed (`protocol-error`).
    ProtocolError {
        /// The reference's reason.
        reason: DropReason,
        /// The message type, when known.
        msg_type: Option<String>,
        /// Extra detail (skew, sender, …).
        detail: Option<String>,
    },
    /// An outbound RPC settled: exactly one per `rpc()` call that got an id
    /// (`rpc.complete`).
    RpcComplete(RpcComplete),
    /// A response arrived for no pending call (timed out, aborted or unknown); dropped.
    LateResponse {
        /// The response id.
        id: String,
        /// Who sent it.
        from: Option<String>,
    },
    /// A peer's request for one of the application's handlers (`rpc.request`). Answer
    /// with `Connection::respond`.
    RpcRequest {
        /// Handle to answer with.
        request: InboundRpcId,
        /// The caller's authenticated kind.
        from: Option<String>,
        /// The RPC type.
        rpc_type: String,
        /// The request data.
        data: Option<Value>,
    },
    /// A request the connection answered itself (`RPC_UNKNOWN_TYPE`, `RPC_OVERLOADED`).
    RpcRefused {
        /// The caller's kind.
        from: Option<String>,
        /// The RPC type.
        rpc_type: String,
        /// The error code sent back.
        code: &'static str,
    },
    /// An inbound request's handler should stop: its response will be suppressed
    /// (`rpc.cancel` when the caller cancelled; the AbortSignal otherwise).
    RpcCancelled {
        /// The request.
        request: InboundRpcId,
        /// The caller's kind.
        from: Option<String>,
        /// The RPC type.
        rpc_type: String,
        /// Why.
        reason: CancelReason,
    },
    /// A handler error was sanitised before reaching the caller (`rpc.handler-error`).
    RpcHandlerError {
        /// The caller's kind.
        from: Option<String>,
        /// The RPC type.
        rpc_type: String,
        /// The real error message, kept local.
        message: String,
    },
    /// A publish on a subscribed topic.
    TopicMessage {
        /// The topic.
        topic: String,
        /// The publisher's authenticated kind.
        from: Option<String>,
        /// The payload.
        payload: Option<Value>,
    },
    /// A directed message (`direct`).
    Direct {
        /// The sender's authenticated kind.
        from: Option<String>,
        /// The application's message type.
        direct_type: String,
        /// The payload.
        data: Option<Value>,
    },
    /// A kind appeared in `peers.update` (`peer.connect`).
    PeerConnected(PeerEntry),
    /// A kind left `peers.update` (`peer.disconnect`).
    PeerDisconnected(PeerEntry),
    /// A kind reconnected with a new `connectedAt` (`peer.replaced`).
    PeerReplaced {
        /// The kind.
        kind: String,
        /// The previous entry.
        previous: Box<PeerEntry>,
        /// The new entry.
        peer: Box<PeerEntry>,
    },
    /// A peer's status was relayed (`peer.status`).
    PeerStatus {
        /// The peer.
        from: String,
        /// Its status.
        status: Option<Value>,
        /// Hub time of the update.
        at: f64,
    },
    /// Time to push a status (the reference calls `makeStatus()`): answer with
    /// `Connection::push_status`. Emitted on ready and every `status_interval`,
    /// only when `ClientConfig::make_status` is set.
    StatusWanted,
    /// A message was queued behind a congested or not-yet-ready link (`backpressure`).
    Backpressure {
        /// The message type.
        msg_type: &'static str,
        /// Its target.
        to: Option<String>,
        /// Bytes handed to the transport and not yet flushed.
        buffered: usize,
        /// Items now queued.
        outbox_size: usize,
    },
    /// The outbox refused a message: over `max_outbox_bytes` (`outbox-overflow`).
    OutboxOverflow {
        /// The refused message type.
        msg_type: &'static str,
        /// Its target.
        to: Option<String>,
        /// Bytes queued.
        outbox_bytes: usize,
        /// The cap.
        max_outbox_bytes: usize,
    },
    /// The outbox emptied after holding messages (`outbox-drained`).
    OutboxDrained,
    /// Queued messages needing a feature the hub lacks were dropped at ready.
    OutboxPurged {
        /// How many.
        dropped: usize,
    },
    /// The link is stopped for good (after `stop()`, a displacement, a rejection or
    /// exhausted reconnects); `start()` may run it again.
    Stopped,
}

/// The `disconnect` event's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct DisconnectInfo {
    /// The close code, if the transport reported one.
    pub code: Option<u16>,
    /// The close reason (`stopped` after `stop()`).
    pub reason: String,
    /// Whether a reconnect follows.
    pub will_reconnect: bool,
    /// Whether the link had been ready on this transport.
    pub was_ready: bool,
    /// Closed with 4000 because another connection took this kind: no reconnect.
    pub displaced: bool,
}

/// What the hello-ack diagnostic found.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum HelloAckDiagnosis {
    /// Nothing verified at all: most likely a secret or hash mismatch (`no-ack`).
    NothingVerified,
    /// Signature-valid messages were dropped as outside the replay window
    /// (`clock-skew`).
    ClockSkew {
        /// How many.
        dropped: u32,
        /// The last skew seen, `now − ts` in ms.
        skew_ms: f64,
    },
    /// Messages verified but no `hello.ack` came: a non-conforming hub (`no-ack`,
    /// `verified: true`).
    NoAck,
}

impl HelloAckDiagnosis {
    /// The reference's `protocol-error` reason.
    pub fn as_str(&self) -> &'static str {
        match self {
            HelloAckDiagnosis::ClockSkew { .. } => "clock-skew",
            HelloAckDiagnosis::NothingVerified | HelloAckDiagnosis::NoAck => "no-ack",
        }
    }
}

/// Why an inbound request's handler should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// The original caller sent `rpc.cancel`.
    Caller,
    /// The link went down: the answer could not be delivered.
    Disconnected,
    /// `stop()`.
    Stopped,
}

/// The `rpc.complete` event.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcComplete {
    /// The call.
    pub id: RpcId,
    /// The target kind.
    pub to: String,
    /// The RPC type.
    pub rpc_type: String,
    /// The result, or why it failed.
    pub outcome: Result<Option<Value>, RpcError>,
    /// From the call to its settlement.
    pub duration: Duration,
}

impl RpcComplete {
    /// `true` on success.
    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The reference's `reason` (`None` on success).
    pub fn reason(&self) -> Option<&'static str> {
        self.outcome.as_ref().err().map(RpcError::reason)
    }
}
