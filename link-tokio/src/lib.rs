//! link on tokio: a [`LinkClient`] for services, an embeddable [`Hub`] (attach any
//! WebSocket, or mount it in an axum router), and [`HubServer`], a batteries-included
//! hub with `/health`, opt-in `/state`, signal handling and graceful shutdown.
//!
//! The protocol is wire-compatible with the Node.js `link-core` reference: HMAC-signed
//! JSON envelopes over WebSockets, RPC, pub/sub, direct messages and status.
//!
//! # A hub and two services
//!
//! ```
//! use link_tokio::{HubOptions, HubServerOptions, LinkOptions, RpcHandlerError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Job { id: u32 }
//! #[derive(Serialize, Deserialize)]
//! struct Done { id: u32, ok: bool }
//!
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(async {
//! // The hub: `/health`, WebSocket upgrades on any path (a real service would use
//! // the default port 8080 and keep the SIGINT/SIGTERM handling on).
//! let server = HubServerOptions::new(HubOptions::new("s3cret"))
//!     .host("127.0.0.1")
//!     .port(0)
//!     .handle_signals(false)
//!     .start()
//!     .await?;
//!
//! // A worker that answers `job.run`.
//! let worker = LinkOptions::new()
//!     .kind("worker")
//!     .secret("s3cret")
//!     .handle("job.run", |_ctx, job: Job| async move {
//!         Ok::<_, RpcHandlerError>(Done { id: job.id, ok: true })
//!     })
//!     .connect(server.url())?;
//!
//! // A coordinator that calls it, and listens to a topic.
//! let coordinator = LinkOptions::new()
//!     .kind("coordinator")
//!     .secret("s3cret")
//!     .connect(server.url())?;
//! worker.ready().await?;
//! coordinator.ready().await?;
//! let done: Done = coordinator.rpc("worker", "job.run", &Job { id: 7 }).await?;
//! assert!(done.ok && done.id == 7);
//!
//! coordinator.stop().await?;
//! worker.stop().await?;
//! server.stop().await?;
//! # Ok::<(), link_tokio::Error>(())
//! # }).expect("example runs");
//! ```
//!
//! # Pub/sub
//!
//! ```
//! use futures_util::StreamExt;
//! use link_tokio::{HubOptions, HubServerOptions, LinkOptions};
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(async {
//! # let server = HubServerOptions::new(HubOptions::new("s3cret"))
//! #     .host("127.0.0.1").port(0).handle_signals(false).start().await?;
//! let a = LinkOptions::new().kind("a").secret("s3cret").connect(server.url())?;
//! let b = LinkOptions::new().kind("b").secret("s3cret").connect(server.url())?;
//! a.ready().await?;
//! b.ready().await?;
//! let mut jobs = a.subscribe("jobs.done").await?; // unsubscribes when dropped
//! // Wait until the hub has the subscription (topic list is a built-in server RPC).
//! while b.rpc::<_, serde_json::Value>("server", "link.topic.list", &serde_json::json!({"topic": "jobs.done"}))
//!     .await?["subscribers"] != serde_json::json!(["a"]) {}
//! b.publish("jobs.done", &serde_json::json!({ "id": 42 })).await?;
//! let msg = jobs.next().await.expect("a message");
//! assert_eq!(msg.from.as_deref(), Some("b"));
//! assert_eq!(msg.payload_as::<serde_json::Value>()?["id"], 42);
//! # a.stop().await?; b.stop().await?; server.stop().await?;
//! # Ok::<(), link_tokio::Error>(())
//! # }).expect("example runs");
//! ```
//!
//! # Embedding the hub in an axum application
//!
//! ```
//! use link_tokio::{HubOptions, LinkOptions, ws::RouterExt};
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(async {
//! let hub = HubOptions::new("s3cret").build();
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my app" }))
//!     .link_hub("/link", hub.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| link_tokio::Error::Io(e.to_string()))?;
//! let addr = listener.local_addr().map_err(|e| link_tokio::Error::Io(e.to_string()))?;
//! tokio::spawn(axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).into_future());
//!
//! let client = LinkOptions::new().kind("svc").secret("s3cret").connect(format!("ws://{addr}/link"))?;
//! client.ready().await?;
//! assert_eq!(hub.health().await?.peer_count, 1);
//! # client.stop().await?;
//! # Ok::<(), link_tokio::Error>(())
//! # }).expect("example runs");
//! ```
//!
//! # Environment
//!
//! [`LinkOptions::from_env`](link_driver::client::LinkOptions::from_env) reads the
//! reference's `LINK_URL`, `LINK_KIND`, `LINK_SECRET`, `LINK_HASH_ALGO`,
//! `LINK_REPLAY_WINDOW_MS`, … then `.start()` connects to `LINK_URL`.

pub mod runtime;
pub mod server;
pub mod transport;
pub mod ws;

pub use link_driver::cancel::CancelSignal;
pub use link_driver::client::{
    Event, EventStream, LinkClient, ReadyInfo, Rpc, RpcContext, Subscription, TopicMessage,
};
pub use link_driver::hub::{
    AclAnswer, Hub, HubEvents, PublishCheck, RpcCheck, SendCheck, ServerRpcContext, SubscribeCheck,
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
