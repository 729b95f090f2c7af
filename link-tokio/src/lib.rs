//! link on tokio: a [`LinkClient`] for services, an embeddable [`Hub`] (attach any
//! WebSocket, or mount it in an axum router), and [`HubServer`], a batteries-included
//! hub with `/health`, opt-in `/state`, signal handling and graceful shutdown.
//!
//! The protocol is wire-compatible with the Node.js `link-core` reference: HMAC-signed
//! JSON envelopes over WebSockets, RPC, pub/sub, direct messages and status.
//!
//! # A hub and two services
//!
//! ```no_run
//! use link_tokio::{HubOptions, HubServerOptions, LinkOptions, RpcHandlerError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Job { id: u32 }
//! #[derive(Serialize, Deserialize)]
//! struct Done { id: u32, ok: bool }
//!
//! # async fn run() -> Result<(), link_tokio::Error> {
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
//! ```
//!
//! # Embedding the hub in an axum application
//!
//! ```no_run
//! use link_tokio::{HubOptions, ws::RouterExt};
//! # async fn run() -> std::io::Result<()> {
//! let hub = HubOptions::new("s3cret").build();
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my app" }))
//!     .link_hub("/link", hub.clone());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
//! # }
//! ```

pub mod runtime;
pub mod server;
pub mod transport;
pub mod ws;

pub use link_driver::cancel::CancelSignal;
pub use link_driver::client::{
    Event, EventStream, LinkClient, ReadyInfo, Rpc, RpcContext, Subscription, TopicMessage,
};
pub use link_driver::hub::{
    AclAnswer, Hub, HubEvents, PublishCheck, RpcCheck, SendCheck, ServerRpcContext,
    SubscribeCheck,
};
pub use link_driver::{Error, RpcHandlerError};
pub use runtime::{TokioRuntime, default_tls_config, tls_config_with_roots};
pub use server::{HubServer, HubServerOptions, load_tls_config, server_tls_config};

/// The core types behind the API: events, health snapshots, errors, wire values.
pub use link_sansio as core;
pub use link_sansio::client::{ClientError, ClientEvent, ClientHealth, RpcError};
pub use link_sansio::hub::{AclDecision, HubEvent, HubHealth, HubStateSnapshot};
pub use link_sansio::wire::HashAlgo;
pub use link_sansio::wire::message::{PeerEntry, StatusEntry};

/// Client options on tokio: `LinkOptions::new().kind(..).secret(..).connect(url)`.
pub type LinkOptions = link_driver::client::LinkOptions<TokioRuntime>;

/// Hub options on tokio: `HubOptions::new(secret).handle(..).build()`.
pub type HubOptions = link_driver::hub::HubOptions<TokioRuntime>;

/// Hub events stream items ([`Hub::events`]).
pub type HubStreamEvent = link_driver::hub::Event;
