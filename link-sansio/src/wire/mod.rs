//! Bytes ⇄ verified messages: the envelope, canonical JSON, HMAC, the typed message
//! enum, the replay guard and validation. Untrusted input is parsed here and only here.

mod canonical_ser;
pub mod envelope;
pub(crate) mod id_key;
pub mod json;
pub mod message;
pub mod replay;
pub mod serde_bridge;
pub mod sign;
pub mod validate;

pub use envelope::{Envelope, Frame, Header, Wtf8, decode, encode, encode_message, inspect};
pub use json::{JsString, Object, UnsafeJson, Value};
pub use message::Message;
pub use replay::ReplayGuard;
pub use serde_bridge::{BridgeError, from_value, to_value};
pub use sign::{HashAlgo, Key};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The close "code" of a close frame that carries none, as the reference's bare
/// `ws.close()` sends (a client's `stop()`, a hub's `stop()` for its peers); the peer
/// reports it as 1005. RFC 6455 forbids 1005 as a code on the wire, so an adapter
/// asked to close with it writes a close frame without a body.
pub const CLOSE_NO_STATUS: u16 = 1005;

/// Size and replay limits shared by hub and client (PROTOCOL.md §13 defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes (`maxMessageBytes`, 1 MiB).
    pub max_message_bytes: usize,
    /// Timestamp tolerance in ms (`replayWindowMs`, 300 000; 0 disables the replay
    /// guard entirely).
    pub replay_window_ms: u64,
    /// Ids remembered per sender (`maxRecentIds`, 10 000; at most 2^32 − 2 are kept).
    pub max_recent_ids: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1_048_576,
            replay_window_ms: 300_000,
            max_recent_ids: 10_000,
        }
    }
}

/// Why an inbound frame was dropped. [`DropReason::as_str`] gives the reference's
/// `protocol-error` reason name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Larger than `max_message_bytes`.
    #[error("oversize")]
    Oversize,
    /// Not a JSON object.
    #[error("parse-error")]
    ParseError,
    /// `id` missing, empty or not a string.
    #[error("missing-id")]
    MissingId,
    /// `id` longer than 256 UTF-16 units.
    #[error("oversized-id")]
    OversizedId,
    /// HMAC mismatch or missing signature.
    #[error("bad-signature")]
    BadSignature,
    /// `v` is not the number 1.
    #[error("bad-version")]
    BadVersion,
    /// `ts` outside the replay window.
    #[error("replay-window")]
    ReplayWindow,
    /// Id seen before from the same sender.
    #[error("replay-id")]
    ReplayId,
    /// (hub) no key for the claimed kind.
    #[error("unknown-kind")]
    UnknownKind,
    /// (hub) a message before the socket's hello was accepted.
    #[error("pre-hello-message")]
    PreHelloMessage,
    /// (hub) hello with an unusable kind.
    #[error("bad-hello")]
    BadHello,
    /// (hub) hello on an authenticated socket, or racing another hello.
    #[error("duplicate-hello")]
    DuplicateHello,
    /// Topic missing or invalid.
    #[error("invalid-topic")]
    InvalidTopic,
    /// (client) `rpc.response` from a peer other than the one called.
    #[error("rpc-response-mismatch")]
    RpcResponseMismatch,
    /// (client) the hub did not answer the previous ping.
    #[error("keepalive-timeout")]
    KeepaliveTimeout,
    /// A message arrived on a socket that has since been replaced or closed.
    #[error("stale-socket")]
    StaleSocket,
    /// (hub) hellos waiting for the key resolver already fill their budget.
    #[error("hello-backlog")]
    HelloBacklog,
}

impl DropReason {
    /// The reference's reason name (`parse-error`, `bad-signature`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Oversize => "oversize",
            DropReason::ParseError => "parse-error",
            DropReason::MissingId => "missing-id",
            DropReason::OversizedId => "oversized-id",
            DropReason::BadSignature => "bad-signature",
            DropReason::BadVersion => "bad-version",
            DropReason::ReplayWindow => "replay-window",
            DropReason::ReplayId => "replay-id",
            DropReason::UnknownKind => "unknown-kind",
            DropReason::PreHelloMessage => "pre-hello-message",
            DropReason::BadHello => "bad-hello",
            DropReason::DuplicateHello => "duplicate-hello",
            DropReason::InvalidTopic => "invalid-topic",
            DropReason::RpcResponseMismatch => "rpc-response-mismatch",
            DropReason::KeepaliveTimeout => "keepalive-timeout",
            DropReason::StaleSocket => "stale-socket",
            DropReason::HelloBacklog => "hello-backlog",
        }
    }
}
