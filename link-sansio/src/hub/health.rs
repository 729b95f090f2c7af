//! Introspection: the `link.health` / `health()` counters and the `/state` snapshot,
//! with the reference's field names when turned into JSON.

use crate::wire::message::{PeerEntry, StatusEntry};
use crate::wire::{JsString, Object, Value};

/// The hub's counters, as `link.health` returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubHealth {
    /// Bytes waiting in all per-socket outboxes (`outboxBytes`).
    pub outbox_bytes: usize,
    /// Sockets with a non-empty outbox (`queuedSockets`).
    pub queued_sockets: usize,
    /// Subscriptions summed over topics (`totalSubscribers`).
    pub total_subscribers: usize,
    /// Server RPCs being handled (`serverRpcInFlight`).
    pub server_rpc_in_flight: usize,
    /// Authenticated peers (`peerCount`).
    pub peer_count: usize,
    /// Retained statuses (`statusCount`).
    pub status_count: usize,
    /// Topics with at least one subscriber (`topicCount`).
    pub topic_count: usize,
    /// Sockets still waiting for an accepted hello (`pendingSocketCount`).
    pub pending_socket_count: usize,
    /// Ids in the replay cache (`recentIdsSize`).
    pub recent_ids_size: usize,
}

impl HubHealth {
    /// The JSON object `link.health` answers with.
    pub fn to_value(&self) -> Value {
        let n = |x: usize| Value::Number(x as f64);
        Value::Object(Object::from_members(vec![
            (JsString::from("outboxBytes"), n(self.outbox_bytes)),
            (JsString::from("queuedSockets"), n(self.queued_sockets)),
            (
                JsString::from("totalSubscribers"),
                n(self.total_subscribers),
            ),
            (
                JsString::from("serverRpcInFlight"),
                n(self.server_rpc_in_flight),
            ),
            (JsString::from("peerCount"), n(self.peer_count)),
            (JsString::from("statusCount"), n(self.status_count)),
            (JsString::from("topicCount"), n(self.topic_count)),
            (
                JsString::from("pendingSocketCount"),
                n(self.pending_socket_count),
            ),
            (JsString::from("recentIdsSize"), n(self.recent_ids_size)),
        ]))
    }
}

/// What `getState()` returns: the peers (registration order) and retained statuses.
#[derive(Debug, Clone, PartialEq)]
pub struct HubStateSnapshot {
    /// Connected peers, as `peers.update` lists them.
    pub peers: Vec<PeerEntry>,
    /// Each peer's last status, by kind.
    pub last_status: Vec<(String, StatusEntry)>,
}

impl HubStateSnapshot {
    /// The reference's `/state` JSON: `{ peers: [...], lastStatus: { kind: {status, at} } }`.
    pub fn to_value(&self) -> Value {
        let peers = crate::wire::message::PeersUpdate::new(&self.peers)
            .data
            .and_then(|d| d.get("peers").cloned())
            .unwrap_or(Value::Array(Vec::new()));
        let last_status = crate::wire::message::StatusSnapshot::new(
            self.last_status.iter().map(|(k, e)| (k.as_str(), e)),
        )
        .data
        .unwrap_or_else(|| Value::Object(Object::new()));
        Value::Object(Object::from_members(vec![
            (JsString::from("peers"), peers),
            (JsString::from("lastStatus"), last_status),
        ]))
    }
}
