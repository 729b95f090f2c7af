//! The client's options, with the reference's defaults and its constructor's checks.

use std::collections::BTreeSet;
use std::time::Duration;

use super::error::ConfigError;
use crate::wire::validate::check_kind;
use crate::wire::{HashAlgo, Limits};

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
    /// [`ClientEvent::StatusWanted`](super::ClientEvent::StatusWanted).
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
    /// Emit [`ClientEvent::Message`](super::ClientEvent::Message) for every verified
    /// message (the reference's `message` event, which costs nothing without a
    /// listener; off by default here for the same reason).
    pub message_events: bool,
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
            message_events: false,
        }
    }
}

/// The reference constructor's checks.
pub(super) fn validate(c: &ClientConfig) -> Result<(), ConfigError> {
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
