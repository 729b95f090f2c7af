//! The adapter's error type: the core's typed errors plus what only an async adapter
//! can hit (a stopped driver, serde failures, a rejected hello, a bad environment).

use link_sansio::client::{ClientError, ConfigError, RpcError};
use std::time::Duration;

use crate::transport::TransportError;

/// Everything a link operation can fail with. [`Error::code`] gives a stable string:
/// the reference's code where it has one (`RPC_TIMEOUT`, `LINK_NOT_READY`, …).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An RPC failed (timeout, abort, disconnect, remote error, backpressure, …).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// `publish`, `send`, `subscribe` or a status push was refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The client options are invalid (bad kind, empty secret, option out of range).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An option the reference has but this transport cannot honour.
    #[error("unsupported option {option}: {why}")]
    Unsupported {
        /// The option's name.
        option: &'static str,
        /// Why.
        why: &'static str,
    },
    /// A `LINK_*` environment variable is missing or malformed.
    #[error("environment variable {var}: {problem}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The hub answered `hello.ack` with `ok: false`.
    #[error("hello rejected by the hub: {reason}")]
    HelloRejected {
        /// The hub's reason.
        reason: String,
    },
    /// The link has stopped (after `stop()`, a displacement by a newer connection of
    /// the same kind, a rejection or exhausted reconnects).
    #[error("link stopped")]
    Stopped,
    /// A wait bounded by the caller ran out.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A payload could not be turned into wire JSON (serde failed, or an integer
    /// beyond ±2^53 that a JavaScript peer would round).
    #[error("payload is not wire-safe: {0}")]
    Encode(String),
    /// A response or message did not deserialize into the requested type.
    #[error("payload does not match the expected type: {0}")]
    Decode(String),
    /// The WebSocket failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Binding, TLS setup or another I/O step failed.
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// A stable code for matching and metrics.
    pub fn code(&self) -> &str {
        match self {
            Error::Rpc(e) => e.code(),
            Error::Client(e) => e.code(),
            Error::Config(_) => "INVALID_CONFIG",
            Error::Unsupported { .. } => "UNSUPPORTED_OPTION",
            Error::Env { .. } => "INVALID_ENV",
            Error::HelloRejected { .. } => "HELLO_REJECTED",
            Error::Stopped => "LINK_NOT_READY",
            Error::Timeout(_) => "TIMEOUT",
            Error::Encode(_) => link_sansio::client::error::NOT_SERIALIZABLE,
            Error::Decode(_) => "PAYLOAD_MISMATCH",
            Error::Transport(e) => e.code(),
            Error::Io(_) => "IO_ERROR",
        }
    }
}
