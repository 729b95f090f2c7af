//! `direct`: fire-and-forget to one peer, forwarded with the sender's authenticated
//! kind and a fresh id, or dropped without a word when the target is absent.

use super::{HubEvent, HubState};
use crate::wire::Value;
use crate::wire::message::{types, write_members};

impl HubState {
    pub(super) fn direct(
        &mut self,
        kind: &str,
        to: String,
        direct_type: Value,
        data: Option<Value>,
    ) {
        let Some(target) = self.peers.get(&to).map(|p| p.conn) else {
            return;
        };
        let mut buf = std::mem::take(&mut self.data_buf);
        buf.clear();
        write_members(
            &[
                ("directData", data.as_ref()),
                ("directType", Some(&direct_type)),
            ],
            &mut buf,
        );
        let sent = self.send(
            target,
            types::DIRECT,
            None,
            Some(kind),
            Some(&buf),
            None,
            None,
        );
        self.data_buf = buf;
        if sent.ok() && self.frame_events {
            self.emit(HubEvent::Direct {
                from: kind.to_owned(),
                to,
                direct_type: super::acl::value_text(Some(&direct_type)),
                data,
            });
        }
    }
}
