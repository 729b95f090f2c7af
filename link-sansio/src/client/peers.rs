//! The peers table from `peers.update` and the last known status of each kind, with
//! the connect / disconnect / replaced changes a new update implies.

use std::collections::BTreeMap;

use crate::wire::message::{PeerEntry, StatusEntry};

/// Most statuses remembered (far more kinds than a hub ever serves).
pub const MAX_STATUSES: usize = 65_536;

/// What changed between two `peers.update`s.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerChange {
    /// A kind appeared.
    Connected(PeerEntry),
    /// A kind is back with a different `connectedAt`.
    Replaced {
        /// The old entry.
        previous: PeerEntry,
        /// The new entry.
        peer: PeerEntry,
    },
    /// A kind is gone.
    Disconnected(PeerEntry),
}

/// The hub's view of who is connected, as last told, plus their statuses.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    list: Vec<PeerEntry>,
    statuses: BTreeMap<String, StatusEntry>,
}

impl Peers {
    /// Replaces the list with `new`, returning the changes in the reference's order
    /// (arrivals and replacements in list order, then departures). A departed kind's
    /// status is forgotten.
    pub fn update(&mut self, new: Vec<PeerEntry>) -> Vec<PeerChange> {
        let mut changes = Vec::new();
        let new_by_kind: BTreeMap<&str, &PeerEntry> =
            new.iter().map(|p| (p.kind.as_str(), p)).collect();
        let old_by_kind: BTreeMap<&str, &PeerEntry> =
            self.list.iter().map(|p| (p.kind.as_str(), p)).collect();
        for np in &new {
            match old_by_kind.get(np.kind.as_str()) {
                None => changes.push(PeerChange::Connected(np.clone())),
                Some(op) if op.connected_at != np.connected_at => {
                    changes.push(PeerChange::Replaced {
                        previous: (*op).clone(),
                        peer: np.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        for op in &self.list {
            if !new_by_kind.contains_key(op.kind.as_str()) {
                self.statuses.remove(&op.kind);
                changes.push(PeerChange::Disconnected(op.clone()));
            }
        }
        self.list = new;
        changes
    }

    /// Records a status (from a snapshot or a relay). Beyond [`MAX_STATUSES`] kinds,
    /// statuses of new kinds are not kept: the table is fed by the network, so it is
    /// bounded even if the hub misbehaves.
    pub fn set_status(&mut self, kind: String, entry: StatusEntry) {
        if self.statuses.len() >= MAX_STATUSES && !self.statuses.contains_key(&kind) {
            return;
        }
        self.statuses.insert(kind, entry);
    }

    /// The last known status of `kind`.
    pub fn status(&self, kind: &str) -> Option<&StatusEntry> {
        self.statuses.get(kind)
    }

    /// The current list, in the hub's order.
    pub fn list(&self) -> &[PeerEntry] {
        &self.list
    }

    /// How many peers (this one included).
    pub fn len(&self) -> usize {
        self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::json::JsString;
    use crate::wire::message::HelloInfo;

    fn peer(kind: &str, at: f64) -> PeerEntry {
        PeerEntry {
            kind: kind.into(),
            hello: HelloInfo {
                kind: kind.into(),
                name: JsString::from(kind),
                pid: None,
                started_at: None,
            },
            connected_at: at,
            connected: true,
        }
    }

    #[test]
    fn changes_follow_the_reference_order() {
        let mut p = Peers::default();
        assert_eq!(
            p.update(vec![peer("a", 1.0), peer("b", 1.0)]),
            vec![
                PeerChange::Connected(peer("a", 1.0)),
                PeerChange::Connected(peer("b", 1.0))
            ]
        );
        p.set_status(
            "b".into(),
            StatusEntry {
                status: None,
                at: 5.0,
            },
        );
        let changes = p.update(vec![peer("a", 2.0), peer("c", 2.0)]);
        assert_eq!(
            changes,
            vec![
                PeerChange::Replaced {
                    previous: peer("a", 1.0),
                    peer: peer("a", 2.0)
                },
                PeerChange::Connected(peer("c", 2.0)),
                PeerChange::Disconnected(peer("b", 1.0)),
            ]
        );
        assert!(
            p.status("b").is_none(),
            "a departed kind's status is forgotten"
        );
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn statuses_are_bounded() {
        let mut p = Peers::default();
        for i in 0..MAX_STATUSES + 10 {
            p.set_status(
                format!("k{i}"),
                StatusEntry {
                    status: None,
                    at: 1.0,
                },
            );
        }
        assert_eq!(p.statuses.len(), MAX_STATUSES);
        p.set_status(
            "k0".into(),
            StatusEntry {
                status: None,
                at: 2.0,
            },
        );
        assert_eq!(
            p.status("k0").map(|s| s.at),
            Some(2.0),
            "known kinds still update"
        );
    }
}
