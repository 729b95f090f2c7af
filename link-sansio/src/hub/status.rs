//! Retained statuses: the last `status.update` of each peer, relayed to every other
//! peer (conflated per origin in congested outboxes) and shown to newcomers.

use std::collections::BTreeMap;

use super::HubEvent;
use super::HubState;
use super::outbox::shared_head;
use crate::wire::Value;
use crate::wire::message::{StatusEntry, types, write_members};

/// Last status per kind.
#[derive(Debug, Default)]
pub(super) struct Statuses {
    by_kind: BTreeMap<String, StatusEntry>,
}

impl Statuses {
    pub fn len(&self) -> usize {
        self.by_kind.len()
    }

    pub fn remove(&mut self, kind: &str) {
        self.by_kind.remove(kind);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &StatusEntry)> {
        self.by_kind.iter().map(|(k, e)| (k.as_str(), e))
    }
}

impl HubState {
    /// `status.update` from peer `kind`: store `{status, at}` and relay
    /// `{from, status, at}` to everyone else.
    pub(super) fn on_status_update(&mut self, kind: &str, status: Option<Value>) {
        let at = self.now.ms();
        let mut data = std::mem::take(&mut self.data_buf);
        data.clear();
        write_members(
            &[
                ("at", Some(&Value::Number(at))),
                ("from", Some(&Value::from(kind))),
                ("status", status.as_ref()),
            ],
            &mut data,
        );
        self.status
            .by_kind
            .insert(kind.to_owned(), StatusEntry { status, at });
        let mut head = shared_head(self.peers.len(), "server", &data);
        for conn in self.peers.conns() {
            if self.is_current(conn, kind) {
                continue;
            }
            self.send(
                conn,
                types::STATUS_UPDATE,
                None,
                Some("server"),
                Some(&data),
                Some(kind),
                head.as_mut(),
            );
        }
        self.data_buf = data;
        if self.frame_events {
            self.emit(HubEvent::StatusUpdated {
                kind: kind.to_owned(),
            });
        }
    }
}
