//! What every adapter crate re-exports at its root (`pub use link_driver::api::*`):
//! the handles, their events and errors, TLS settings and the core types users meet.
//! One list, so that the adapters cannot drift apart.

pub use crate::cancel::CancelSignal;
pub use crate::client::{
    Event, EventStream, LinkClient, ReadyInfo, Rpc, RpcContext, Subscription, TopicMessage,
};
pub use crate::hub::{
    AclAnswer, Hub, HubEvents, PublishCheck, RpcCheck, SendCheck, ServerRpcContext, SubscribeCheck,
};
pub use crate::server::HubServer;
pub use crate::tls::{
    default_tls_config, load_tls_config, server_tls_config, tls_config_trusting,
    tls_config_with_roots,
};
pub use crate::{Error, RpcHandlerError};

/// The core types behind the API: events, health snapshots, errors, wire values.
pub use link_sansio as core;
pub use link_sansio::client::{ClientError, ClientEvent, ClientHealth, RpcError};
pub use link_sansio::hub::{AclDecision, HubEvent, HubHealth, HubStateSnapshot};
pub use link_sansio::wire::HashAlgo;
pub use link_sansio::wire::message::{PeerEntry, StatusEntry};

/// Hub events stream items ([`Hub::events`]).
pub type HubStreamEvent = crate::hub::Event;
