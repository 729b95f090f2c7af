//! The client's error types, each with `code()` giving the reference's stable code
//! (`RPC_TIMEOUT`, `LINK_NOT_READY`, …) so applications can branch the way JavaScript
//! callers branch on `err.code`.

use std::time::Duration;

use crate::wire::json::{UnsafeJson, Value};
use crate::wire::validate::BadKind;

/// Code of a programmer error (a `TypeError` in the reference, which has no code).
pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";

/// Code of a payload that would not reach a JavaScript peer intact.
pub const NOT_SERIALIZABLE: &str = "PAYLOAD_NOT_SERIALIZABLE";

/// Why an outbound RPC failed. Every variant but the argument checks is also reported
/// through the call's single `RpcComplete` event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// No response within the call's timeout (`RPC_TIMEOUT`).
    #[error("RPC timeout after {}ms: {to}:{rpc_type}", timeout.as_millis())]
    Timeout {
        /// The target kind.
        to: String,
        /// The RPC type.
        rpc_type: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The link went down, or was stopped, with the call in flight (`RPC_DISCONNECT`).
    #[error("{}", if *stopped { "Link stopped before RPC completed" } else { "Link disconnected before RPC completed" })]
    Disconnect {
        /// The target kind.
        to: String,
        /// The RPC type.
        rpc_type: String,
        /// `stop()` rather than a lost connection.
        stopped: bool,
    },
    /// The caller cancelled the call (`RPC_ABORT`).
    #[error("RPC aborted: {to}:{rpc_type}")]
    Abort {
        /// The target kind.
        to: String,
        /// The RPC type.
        rpc_type: String,
    },
    /// The remote handler or the hub answered with an error; its `code` is the
    /// remote's (`RPC_NO_TARGET`, `RPC_UNKNOWN_TYPE`, an application code, or
    /// `RPC_REMOTE` when the reply carried none).
    #[error("{}", .0.message)]
    Remote(Box<RemoteFailure>),
    /// The outbox refused the request: over `max_outbox_bytes` (`BACKPRESSURE`).
    #[error("RPC dropped: outbound queue full (> {max_outbox_bytes} bytes): {to}:{rpc_type}")]
    Backpressure {
        /// The target kind.
        to: String,
        /// The RPC type.
        rpc_type: String,
        /// The outbox cap.
        max_outbox_bytes: usize,
    },
    /// The link is not connected and acknowledged, or was stopped (`LINK_NOT_READY`).
    #[error("Cannot rpc: link not connected/ready")]
    NotReady {
        /// The target kind.
        to: String,
        /// The RPC type.
        rpc_type: String,
    },
    /// `to` or `rpc_type` empty (a `TypeError` in the reference).
    #[error("rpc(to, rpcType, rpcData, opts?): {0}")]
    InvalidArgument(&'static str),
    /// The request data would not reach a JavaScript peer intact.
    #[error("rpc(to, rpcType, rpcData): payload is not wire-safe: {0}")]
    NotSerializable(UnsafeJson),
}

impl RpcError {
    /// The reference's error code.
    pub fn code(&self) -> &str {
        match self {
            RpcError::Timeout { .. } => "RPC_TIMEOUT",
            RpcError::Disconnect { .. } => "RPC_DISCONNECT",
            RpcError::Abort { .. } => "RPC_ABORT",
            RpcError::Remote(r) => &r.code,
            RpcError::Backpressure { .. } => "BACKPRESSURE",
            RpcError::NotReady { .. } => "LINK_NOT_READY",
            RpcError::InvalidArgument(_) => INVALID_ARGUMENT,
            RpcError::NotSerializable(_) => NOT_SERIALIZABLE,
        }
    }

    /// The `reason` of the reference's `rpc.complete` event (`timeout`, `abort`,
    /// `disconnect`, `not-ready`, `remote-error`, `backpressure`).
    pub fn reason(&self) -> &'static str {
        match self {
            RpcError::Timeout { .. } => "timeout",
            RpcError::Disconnect { .. } => "disconnect",
            RpcError::Abort { .. } => "abort",
            RpcError::Remote { .. } => "remote-error",
            RpcError::Backpressure { .. } => "backpressure",
            RpcError::NotReady { .. } => "not-ready",
            RpcError::InvalidArgument(_) | RpcError::NotSerializable(_) => "invalid-argument",
        }
    }

    /// Structured data of a remote error.
    pub fn data(&self) -> Option<&Value> {
        match self {
            RpcError::Remote(r) => r.data.as_ref(),
            _ => None,
        }
    }
}

/// An error reply to an outbound RPC (the reference's `RpcRemoteError`).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFailure {
    /// The target kind.
    pub to: String,
    /// The RPC type.
    pub rpc_type: String,
    /// The remote error code.
    pub code: String,
    /// The remote message (`RPC error` when the reply carried none).
    pub message: String,
    /// Structured details, if the reply carried any.
    pub data: Option<Value>,
}

/// Why `publish`, `send`, `subscribe`, `unsubscribe` or `push_status` refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The link was stopped (`LINK_NOT_READY`). A merely disconnected link queues.
    #[error("Cannot {op}: link has been stopped - call start() to reconnect")]
    NotReady {
        /// The operation (`publish`, `send`, …).
        op: &'static str,
    },
    /// The hub's `hello.ack` did not advertise the feature (`FEATURE_UNSUPPORTED`).
    #[error("Cannot {op}: hub does not support {feature}")]
    FeatureUnsupported {
        /// The operation.
        op: &'static str,
        /// The missing feature (`topics`, `direct`).
        feature: &'static str,
    },
    /// Not 1–256 characters of `[a-zA-Z0-9._-]` (`INVALID_TOPIC`).
    #[error("invalid topic {0:?}: must match [a-zA-Z0-9._-]+, length 1-256")]
    InvalidTopic(String),
    /// An empty `to` or type (a `TypeError` in the reference).
    #[error("{0}")]
    InvalidArgument(&'static str),
    /// The payload would not reach a JavaScript peer intact.
    #[error("payload is not wire-safe: {0}")]
    NotSerializable(UnsafeJson),
    /// The outbox is over `max_outbox_bytes`; an `OutboxOverflow` event was emitted
    /// (the reference returns `false`).
    #[error("outbound queue full (> {max_outbox_bytes} bytes): {msg_type} refused")]
    OutboxFull {
        /// The refused message's type.
        msg_type: &'static str,
        /// The outbox cap.
        max_outbox_bytes: usize,
    },
}

impl ClientError {
    /// The reference's error code.
    pub fn code(&self) -> &str {
        match self {
            ClientError::NotReady { .. } => "LINK_NOT_READY",
            ClientError::FeatureUnsupported { .. } => "FEATURE_UNSUPPORTED",
            ClientError::InvalidTopic(_) => "INVALID_TOPIC",
            ClientError::InvalidArgument(_) => INVALID_ARGUMENT,
            ClientError::NotSerializable(_) => NOT_SERIALIZABLE,
            ClientError::OutboxFull { .. } => "OUTBOX_OVERFLOW",
        }
    }
}

/// How an application's RPC handler failed, given to `Connection::respond`.
///
/// Errors are sanitised on the wire unless exposed: an exposed error (the reference's
/// `RpcHandlerError`, or `expose: true`, or the `expose_rpc_errors` option) sends its
/// message, code and wire-safe data; anything else reaches the caller as
/// `RPC_HANDLER_ERROR` / `Internal handler error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The handler failed.
    #[error("{message}")]
    Failed {
        /// Error code for the caller (`RPC_HANDLER_ERROR` when `None`).
        code: Option<String>,
        /// Message for the caller (if exposed) or the local log.
        message: String,
        /// Structured details (stripped if not wire-safe).
        data: Option<Value>,
        /// Caller-visible even without `expose_rpc_errors`.
        expose: bool,
    },
    /// The handler's result could not be serialised for the wire.
    #[error("RPC handler returned a non-serializable result")]
    NotSerializable,
    /// The application has no handler for the type (`RPC_UNKNOWN_TYPE`).
    #[error("Unknown rpcType: {0}")]
    UnknownType(String),
    /// The handler panicked (sanitised like any internal fault).
    #[error("RPC handler panicked")]
    Panicked,
}

impl HandlerError {
    /// A caller-visible error, like throwing `RpcHandlerError(message, { code })`.
    pub fn exposed(code: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError::Failed {
            code: Some(code.into()),
            message: message.into(),
            data: None,
            expose: true,
        }
    }

    /// An internal fault: the caller sees only `Internal handler error` unless
    /// `expose_rpc_errors` is set.
    pub fn internal(message: impl Into<String>) -> Self {
        HandlerError::Failed {
            code: None,
            message: message.into(),
            data: None,
            expose: false,
        }
    }

    /// Attaches structured data (sent only when the error is exposed and the data is
    /// wire-safe).
    pub fn with_data(mut self, value: Value) -> Self {
        if let HandlerError::Failed { data, .. } = &mut self {
            *data = Some(value);
        }
        self
    }

    /// The code this error carries on the wire when exposed.
    pub fn code(&self) -> &str {
        match self {
            HandlerError::Failed { code: Some(c), .. } => c,
            HandlerError::Failed { code: None, .. } | HandlerError::Panicked => "RPC_HANDLER_ERROR",
            HandlerError::NotSerializable => "RPC_RESULT_NOT_SERIALIZABLE",
            HandlerError::UnknownType(_) => "RPC_UNKNOWN_TYPE",
        }
    }
}

/// Why `Connection::new` refused the configuration (the reference throws
/// `TypeError` from its constructor).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `url`, `secret` or `name` is empty.
    #[error("{0:?} must be a non-empty string")]
    Empty(&'static str),
    /// The kind would be refused by the hub.
    #[error("invalid kind: {0}")]
    InvalidKind(BadKind),
    /// A numeric option is out of range.
    #[error("option {name}: {problem}")]
    InvalidOption {
        /// The option's field name.
        name: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}
