//! The driver loop shared by link's async adapters, written once and generic over a
//! tiny [`runtime::Runtime`] (timer, spawn, connect) and a WebSocket
//! [`transport::Transport`] (a `Stream` of inbound frames and a `Sink` of outbound ones).
//!
//! It owns the sans-IO state machines of `link-sansio` by value, one driver task each,
//! and gives the application cheap cloneable handles that talk to the task over
//! channels: [`client::LinkClient`] and [`hub::Hub`]. Adapter crates (`link-tokio`,
//! `link-async-std`) supply the runtime and re-export these types.

pub mod cancel;
pub mod client;
pub mod error;
pub mod handler;
pub mod hub;
pub mod payload;
pub mod runtime;
pub mod transport;

pub use error::Error;
pub use handler::RpcHandlerError;
