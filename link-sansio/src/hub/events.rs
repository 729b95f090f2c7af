//! What the hub tells the application: one [`HubEvent`] per reference hub event
//! (`peer.connect`, `protocol-error`, `rpc.forwarded`, …), observability only.

use std::net::SocketAddr;
use std::time::Duration;

use super::ConnId;
use crate::wire::message::HelloInfo;
use crate::wire::{DropReason, JsString, Value};

/// Why a pending socket was reaped (`peer.timeout`'s `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerTimeoutReason {
    /// No accepted hello within `hello_timeout` (the reference leaves `reason` absent).
    HelloTimeout,
    /// Evicted as the oldest pending socket when over `max_pending_sockets`.
    PendingCap,
}

impl PeerTimeoutReason {
    /// The reference's name: `hello-timeout` or `pending-cap`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerTimeoutReason::HelloTimeout => "hello-timeout",
            PeerTimeoutReason::PendingCap => "pending-cap",
        }
    }
}

/// Which ACL hook denied (`acl-denied`'s `op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclOpKind {
    /// `canRpc`.
    Rpc,
    /// `canPublish`.
    Publish,
    /// `canSubscribe`.
    Subscribe,
    /// `canSend`.
    Send,
}

impl AclOpKind {
    /// The reference's op name: `rpc`, `publish`, `subscribe`, `send`.
    pub fn as_str(self) -> &'static str {
        match self {
            AclOpKind::Rpc => "rpc",
            AclOpKind::Publish => "publish",
            AclOpKind::Subscribe => "subscribe",
            AclOpKind::Send => "send",
        }
    }
}

/// Everything the reference hub emits, plus `Drained` for graceful shutdown.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HubEvent {
    /// `peer.connect`: a peer completed the hello handshake.
    PeerConnected {
        /// Its socket.
        conn: ConnId,
        /// Its authenticated kind.
        kind: String,
        /// Its sanitised hello.
        hello: HelloInfo,
        /// Hub time of authentication (ms since epoch).
        connected_at: f64,
        /// Whether it displaced an older socket of the same kind.
        replaced: bool,
    },
    /// `peer.disconnect`: the current socket of a kind closed (or the hub dropped it).
    PeerDisconnected {
        /// Its socket.
        conn: ConnId,
        /// Its kind.
        kind: String,
        /// Its hello.
        hello: HelloInfo,
        /// When it had authenticated.
        connected_at: f64,
        /// Close code, if the transport reported one (1006 when the hub terminated it).
        code: Option<u16>,
        /// Close reason text.
        reason: String,
    },
    /// `peer.replaced`: a newer socket authenticated as an already connected kind.
    PeerReplaced {
        /// The kind.
        kind: String,
        /// The displaced socket (closed with 4000).
        old_conn: ConnId,
        /// The new socket.
        new_conn: ConnId,
        /// The displaced socket's hello.
        prev_hello: HelloInfo,
        /// The new socket's hello.
        new_hello: HelloInfo,
    },
    /// `peer.timeout`: a pending socket was reaped.
    PeerTimeout {
        /// The socket.
        conn: ConnId,
        /// Its remote address, if the adapter gave one.
        remote: Option<SocketAddr>,
        /// The configured hello timeout.
        hello_timeout: Duration,
        /// Why.
        reason: PeerTimeoutReason,
    },
    /// `protocol-error`: a frame was dropped.
    ProtocolError {
        /// The socket it arrived on.
        conn: ConnId,
        /// The socket's authenticated kind (or the claimed kind for a hello), if known.
        kind: Option<String>,
        /// Why (the reference's reason name via [`DropReason::as_str`]).
        reason: DropReason,
        /// The frame's type, when it was readable.
        msg_type: Option<String>,
        /// Extra detail (`missing-kind`, `concurrent-hello`, …).
        detail: Option<String>,
    },
    /// `message`: every verified frame (the firehose; see `HubConfig::message_events`).
    Message {
        /// The socket.
        conn: ConnId,
        /// The authenticated kind (claimed kind for a hello).
        from: String,
        /// The frame's type.
        msg_type: String,
        /// The envelope id.
        id: JsString,
    },
    /// `topic.subscribe`: the first subscription of `kind` to `topic`.
    TopicSubscribe {
        /// The subscriber.
        kind: String,
        /// The topic.
        topic: String,
    },
    /// `topic.unsubscribe`: `kind` left `topic`.
    TopicUnsubscribe {
        /// The subscriber.
        kind: String,
        /// The topic.
        topic: String,
    },
    /// `topic.publish`: a peer published, whatever the subscriber count.
    TopicPublish {
        /// The publisher.
        from: String,
        /// The topic.
        topic: String,
        /// The payload.
        payload: Option<Value>,
        /// Subscribers of the topic at publish time (the publisher included if subscribed).
        subscriber_count: usize,
        /// Recipients the message was sent or queued to.
        delivered: usize,
    },
    /// `rpc.forwarded`: an `rpc.request` went to its target peer.
    RpcForwarded {
        /// The request id.
        id: JsString,
        /// The caller.
        from: String,
        /// The target.
        to: String,
        /// The RPC type (`String()` of the wire value).
        rpc_type: String,
    },
    /// `rpc.response.forwarded`: an `rpc.response` went back to its caller.
    RpcResponseForwarded {
        /// The request id.
        id: JsString,
        /// The responder.
        from: String,
        /// The caller.
        to: String,
        /// Whether `data.ok` was truthy.
        ok: bool,
    },
    /// `rpc.server`: a `to: "server"` RPC was answered.
    RpcServer {
        /// The request id.
        id: JsString,
        /// The caller.
        from: String,
        /// The RPC type.
        rpc_type: String,
        /// Whether it succeeded.
        ok: bool,
        /// The error text sent, on failure.
        error: Option<String>,
        /// How long the handler took.
        duration: Duration,
    },
    /// `direct`: a direct message was forwarded.
    Direct {
        /// The sender.
        from: String,
        /// The target.
        to: String,
        /// The application's type.
        direct_type: String,
        /// The payload.
        data: Option<Value>,
    },
    /// `backpressure`: a socket's transport backlog is over `max_buffered_bytes`, so
    /// messages to it now wait in its outbox (emitted when it starts queueing).
    Backpressure {
        /// The congested socket.
        conn: ConnId,
        /// Its kind.
        kind: String,
        /// The type of the message that had to wait.
        msg_type: String,
        /// Bytes handed to the transport and not yet flushed.
        buffered_amount: usize,
        /// The configured cap.
        max_buffered_bytes: usize,
    },
    /// `outbox-overflow`: a message was refused because the socket's outbox is full.
    OutboxOverflow {
        /// The socket.
        conn: ConnId,
        /// Its kind.
        kind: String,
        /// The refused message's type.
        msg_type: String,
        /// Bytes queued at the time.
        outbox_bytes: usize,
        /// The configured cap.
        max_outbox_bytes: usize,
    },
    /// `acl-denied`: an ACL hook refused an operation.
    AclDenied {
        /// Which hook.
        op: AclOpKind,
        /// The peer that asked.
        from: String,
        /// The target (rpc, send).
        to: Option<String>,
        /// The RPC type (rpc).
        rpc_type: Option<String>,
        /// The topic (publish, subscribe).
        topic: Option<String>,
        /// The direct type (send).
        direct_type: Option<String>,
        /// The denial code (`RPC_FORBIDDEN`, `PUBLISH_FORBIDDEN`, … or the hook's own).
        code: String,
        /// The denial text (`Forbidden` or the hook's own).
        error: String,
    },
    /// Messages waiting for ACL decisions on one socket exceeded `max_outbox_bytes`;
    /// this one was dropped (the reference's backlog is unbounded; ours is not).
    AclBacklogOverflow {
        /// The socket.
        conn: ConnId,
        /// Its kind.
        kind: String,
        /// The dropped message's type.
        msg_type: String,
    },
    /// `rpc.cancelled`: an `rpc.cancel` was handled.
    RpcCancelled {
        /// The cancelled request's id.
        id: JsString,
        /// The canceller.
        from: String,
        /// The request's target.
        to: String,
        /// Whether the request was still queued and has been removed.
        found: bool,
        /// Whether the cancel was forwarded to the target.
        forwarded: bool,
    },
    /// A peer's `status.update` was stored and relayed.
    StatusUpdated {
        /// The peer.
        kind: String,
    },
    /// After [`super::Input::Drain`]: every socket is gone.
    Drained,
}
