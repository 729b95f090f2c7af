//! What a runtime must supply to run link: a timer that fires at an `Instant`, a way to
//! spawn a task, and a WebSocket connector. Everything else is written once, here.

use crate::transport::{Transport, TransportError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A boxed, sendable future (what the connector returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A reusable timer: completes once its deadline has passed, can be moved to a new
/// deadline without allocating.
pub trait Timer: Future<Output = ()> + Send + Unpin + 'static {
    /// Move the deadline (earlier or later); a fired timer becomes pending again.
    fn reset(&mut self, at: Instant);
}

/// Where and how a client connects: the URL, the TLS settings for `wss://` and the
/// transport-level frame size cap.
#[derive(Clone, Debug)]
pub struct ConnectSpec {
    /// `ws://` or `wss://` URL of the hub.
    pub url: String,
    /// TLS client settings for `wss://`; `None` = the webpki root store.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Largest frame or message accepted from the hub (`maxMessageBytes`); larger ones
    /// close the connection with 1009.
    pub max_message_bytes: usize,
}

/// The pieces of an async runtime that link uses. tokio and smol implement it in a
/// few lines each.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The runtime's timer.
    type Timer: Timer;
    /// The client's WebSocket connection.
    type Transport: Transport;

    /// A timer that fires at `at`.
    fn timer(&self, at: Instant) -> Self::Timer;

    /// Run `fut` in the background.
    fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Open a WebSocket to `spec.url` (TCP, TLS for `wss://`, then the upgrade).
    fn connect(
        &self,
        spec: ConnectSpec,
    ) -> BoxFuture<'static, Result<Self::Transport, TransportError>>;
}

/// The current moment as the core wants it: the monotonic clock plus `Date.now()`.
pub fn now() -> link_sansio::time::Now {
    link_sansio::time::Now::new(Instant::now(), wall_ms())
}

/// Wall clock in milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A seed for the core's id generator, from the OS: std's `RandomState` keys are drawn
/// from the operating system's random source once per process and then varied.
pub fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
