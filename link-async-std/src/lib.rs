//! link on smol (default) or async-std: a [`LinkClient`] for services, an embeddable
//! [`Hub`] (attach any async-tungstenite WebSocket) and [`HubServer`], a
//! batteries-included hub with `/health`, opt-in `/state`, signal handling and
//! graceful shutdown. The same library as `link-tokio`, with the same names, options
//! and semantics; only the runtime types differ.
//!
//! The protocol is wire-compatible with the Node.js `link-core` reference: HMAC-signed
//! JSON envelopes over WebSockets, RPC, pub/sub, direct messages and status.
//!
//! # Runtimes
//!
//! Timers and sockets come from `async-io` under both runtimes; the cargo features
//! only choose the executor that spawns link's tasks:
//!
//! - `smol` (default): `SmolRuntime`, tasks on `smol::spawn`.
//! - `async-std` (additive): `AsyncStdRuntime`, tasks on `async_std::task::spawn`.
//!   **async-std is discontinued upstream in favour of smol**; this feature is for
//!   applications that still run on it. New code should use smol.
//!
//! The top-level aliases ([`LinkOptions`], [`HubOptions`], [`HubServerOptions`]) use
//! [`DefaultRuntime`]: smol when its feature is on, otherwise async-std. Per-runtime
//! aliases live in the modules `smol` and `async_std` (one per enabled feature).
//!
//! # A hub and two services
//!
//! ```no_run
//! use link_async_std::{HubOptions, HubServerOptions, LinkOptions, RpcHandlerError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Job { id: u32 }
//! #[derive(Serialize, Deserialize)]
//! struct Done { id: u32, ok: bool }
//!
//! # async fn run() -> Result<(), link_async_std::Error> {
//! // The hub: port 8080, `/health`, SIGINT/SIGTERM → graceful shutdown.
//! let server = HubServerOptions::new(HubOptions::new("s3cret")).port(8080).start().await?;
//!
//! // A worker that answers `job.run`.
//! let worker = LinkOptions::new()
//!     .kind("worker")
//!     .secret("s3cret")
//!     .handle("job.run", |_ctx, job: Job| async move {
//!         Ok::<_, RpcHandlerError>(Done { id: job.id, ok: true })
//!     })
//!     .connect("ws://127.0.0.1:8080")?;
//!
//! // A coordinator that calls it.
//! let coordinator = LinkOptions::new().kind("coordinator").secret("s3cret")
//!     .connect("ws://127.0.0.1:8080")?;
//! coordinator.ready().await?;
//! worker.ready().await?;
//! let done: Done = coordinator.rpc("worker", "job.run", &Job { id: 7 }).await?;
//! assert!(done.ok);
//!
//! coordinator.stop().await?;
//! worker.stop().await?;
//! server.stop().await?;
//! # Ok(()) }
//! # link_async_std::block_on(run()).unwrap();
//! ```
//!
//! # Attaching the hub to your own server
//!
//! ```no_run
//! use link_async_std::{DefaultRuntime, HubOptions, Runtime};
//! # fn main() -> std::io::Result<()> { link_async_std::block_on(async {
//! let hub = HubOptions::new("s3cret").build();
//! let listener = async_net::TcpListener::bind("0.0.0.0:8080").await?;
//! loop {
//!     let (stream, remote) = listener.accept().await?;
//!     let hub = hub.clone();
//!     DefaultRuntime::default()
//!         .spawn(async move { let _ = link_async_std::ws::accept(&hub, stream, Some(remote)).await; });
//! }
//! # }) }
//! ```

//!
//! # Differences from link-tokio
//!
//! Everything but the runtime pieces is `link-driver`'s, shared with `link-tokio`:
//! the client, the hub, the server's options, `/health`, `/state`, drain and
//! shutdown. What differs, and why:
//!
//! - **User routes** are [`Routes`] (exact paths, `GET` or any method, a handler from
//!   the parsed [`Request`] head to a [`Response`]) instead of an axum `Router`: axum
//!   runs on tokio only. The server reads no request bodies and answers one request
//!   per connection (`Connection: close`); heads over 16 KiB get 431. That is all
//!   `/health`, `/state` and WebSocket upgrades need.
//! - **No axum mount** (`ws::route`, `RouterExt`): run the hub on your own listener
//!   with [`ws::accept`], or attach a socket you upgraded with async-tungstenite via
//!   `hub.attach(WsTransport::new(ws), remote)`.
//! - **Signals** for `HubServerOptions::signals` are `async_signal::Signal`
//!   (tokio: `SignalKind`).
//! - **Sockets**: client connections are a [`BoxSocket`] (TCP or rustls over TCP,
//!   boxed) where tokio has an enum; the TLS listener types of link-tokio
//!   (`TlsListener`, `NoDelayListener`) are axum plumbing with no counterpart here.

pub mod runtime;
pub mod server;
pub mod ws;

pub use link_driver::api::*;
#[cfg(feature = "async-std")]
pub use runtime::AsyncStdRuntime;
#[cfg(feature = "smol")]
pub use runtime::SmolRuntime;
pub use runtime::{AsyncIoRuntime, BoxSocket, DefaultRuntime, Runtime, WsTransport, block_on};
pub use server::{Request, Response, Routes};

/// Client options: `LinkOptions::new().kind(..).secret(..).connect(url)`.
pub type LinkOptions = link_driver::client::LinkOptions<DefaultRuntime>;

/// Hub options: `HubOptions::new(secret).handle(..).build()`.
pub type HubOptions = link_driver::hub::HubOptions<DefaultRuntime>;

/// Hub server options: `HubServerOptions::new(hub).port(..).start()`.
pub type HubServerOptions = link_driver::server::HubServerOptions<DefaultRuntime>;

/// The same options on smol, whatever the default runtime.
#[cfg(feature = "smol")]
pub mod smol {
    use crate::SmolRuntime;

    /// Client options on smol.
    pub type LinkOptions = link_driver::client::LinkOptions<SmolRuntime>;
    /// Hub options on smol.
    pub type HubOptions = link_driver::hub::HubOptions<SmolRuntime>;
    /// Hub server options on smol.
    pub type HubServerOptions = link_driver::server::HubServerOptions<SmolRuntime>;
}

/// The same options on async-std (discontinued upstream in favour of smol).
#[cfg(feature = "async-std")]
pub mod async_std {
    use crate::AsyncStdRuntime;

    /// Client options on async-std.
    pub type LinkOptions = link_driver::client::LinkOptions<AsyncStdRuntime>;
    /// Hub options on async-std.
    pub type HubOptions = link_driver::hub::HubOptions<AsyncStdRuntime>;
    /// Hub server options on async-std.
    pub type HubServerOptions = link_driver::server::HubServerOptions<AsyncStdRuntime>;
}
