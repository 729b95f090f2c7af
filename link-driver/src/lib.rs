//! The driver loop shared by link's async adapters, written once and generic over a
//! tiny [`runtime::Runtime`] (timer, spawn, connect) and a WebSocket
//! [`transport::Transport`] (a `Stream` of inbound frames and a `Sink` of outbound ones).
//!
//! It owns the sans-IO state machines of `link-sansio` and gives the application cheap
//! cloneable handles: [`client::LinkClient`] shares its `Connection` with a driver task
//! that owns the socket (handles step it in place for `send`, `publish` and `rpc` while
//! frames go straight out, and talk to the driver over channels otherwise);
//! [`hub::Hub`] shares its `HubState` behind a mutex with the connection tasks, which
//! step it in place with each frame they read (see `hub::driver`). Adapter crates (`link-tokio`, `link-async-std`) supply the runtime
//! and re-export these types.

pub mod api;
pub mod cancel;
pub mod client;
pub mod error;
pub mod handler;
pub mod hub;
pub mod payload;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod transport;
pub mod ws;

pub use error::Error;
pub use handler::RpcHandlerError;

/// The drivers' tables, keyed by their own ids and the application's names, and
/// consulted for every frame: hashed with foldhash (through the core's
/// [`SeededState`](link_sansio::seeded::SeededState)) rather than SipHash.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, link_sansio::seeded::SeededState>;
