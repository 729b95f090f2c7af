//! Per-socket flow control: the transport backlog (the `bufferedAmount` analogue, from
//! `Transmit` minus `Flushed`) and a byte-bounded outbox of unsigned messages, signed
//! with a fresh `ts` when they leave (PROTOCOL.md §11).

use std::collections::VecDeque;

use super::{ConnId, HubEvent, HubState, Output};
use crate::wire::envelope::SharedHead;
use crate::wire::{Header, JsString, Key, encode};

/// The reference's per-item size estimate: 200 + id, type, to, from + data.
const ITEM_OVERHEAD: usize = 200;

/// A message waiting for the transport backlog to fall.
#[derive(Debug)]
pub(super) struct Queued {
    pub msg_type: &'static str,
    pub id: JsString,
    pub from: Option<String>,
    pub data: Option<Vec<u8>>,
    /// The peer a relayed `status.update` is about: one queued per origin.
    pub status_origin: Option<String>,
    bytes: usize,
}

/// One socket's backlog and queue.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// Bytes handed to the transport and not yet reported flushed.
    buffered: usize,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
}

impl Outbox {
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn flushed(&mut self, bytes: usize) {
        self.buffered = self.buffered.saturating_sub(bytes);
    }

    pub fn clear(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
    }

    /// Removes a still-queued `rpc.request` with `id` from `from`.
    pub fn remove_request(&mut self, id: &JsString, from: &str) -> bool {
        let Some(pos) = self.queue.iter().position(|q| {
            q.msg_type == crate::wire::message::types::RPC_REQUEST
                && q.id == *id
                && q.from.as_deref() == Some(from)
        }) else {
            return false;
        };
        if let Some(q) = self.queue.remove(pos) {
            self.queued_bytes -= q.bytes;
        }
        true
    }
}

/// What became of a message handed to [`HubState::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    /// Signed and transmitted.
    Now,
    /// Waiting in the outbox.
    Queued,
    /// Refused: the outbox is full (or the socket is not an open peer).
    Refused,
}

impl Sent {
    pub fn ok(self) -> bool {
        self != Sent::Refused
    }
}

/// The head shared by the frames of a message from `from` carrying `data` to
/// `recipients` sockets, when there is more than one to share it.
pub(super) fn shared_head(recipients: usize, from: &str, data: &[u8]) -> Option<SharedHead> {
    (recipients > 1)
        .then(|| SharedHead::new(Some(from.into()), Some(data)))
        .flatten()
}

/// A frame [`encode`] writes, as text (the encoder writes only UTF-8; were it not,
/// the frame would be empty).
fn signed_text(key: &Key, header: &Header<'_>, msg_type: &str, data: Option<&[u8]>) -> String {
    let mut out = Vec::new();
    encode(key, header, msg_type, data, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn id_str(buf: &[u8; 36]) -> &str {
    // Hex digits and dashes are ASCII.
    std::str::from_utf8(buf).unwrap_or("")
}

impl HubState {
    /// Sends a message to peer socket `conn`, signed with its key and addressed to its
    /// kind: now when nothing is queued and the backlog is under `max_buffered_bytes`,
    /// else queued if the outbox has room. `id` `None` means a fresh id; `data` is the
    /// canonical payload, shared by every recipient of a fan-out, whose frames `head`
    /// (made from the same `from` and `data`) builds when given.
    // Each argument is a separate envelope field or routing fact; grouping them would
    // only move the list into a struct literal at every call.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send(
        &mut self,
        conn: ConnId,
        msg_type: &'static str,
        id: Option<&JsString>,
        from: Option<&str>,
        data: Option<&[u8]>,
        status_origin: Option<&str>,
        head: Option<&mut SharedHead>,
    ) -> Sent {
        let max_buffered = self.config.max_buffered_bytes;
        let max_outbox = self.config.max_outbox_bytes;
        let Some(c) = self.conns.get_mut(&conn) else {
            return Sent::Refused;
        };
        let (super::conn::Phase::Peer { kind }, Some(key)) = (&c.phase, c.key.as_ref()) else {
            return Sent::Refused;
        };
        if c.outbox.queue.is_empty() && c.outbox.buffered <= max_buffered {
            let mut idbuf = [0u8; 36];
            let id = match id {
                Some(id) => id.into(),
                None => {
                    self.rng.uuid_into(&mut idbuf);
                    id_str(&idbuf).into()
                }
            };
            let header = Header {
                id,
                ts: self.now.ms(),
                from: from.map(Into::into),
                to: Some((&**kind).into()),
            };
            let text = match head {
                Some(head) => head.frame(key, &header, msg_type),
                None => signed_text(key, &header, msg_type, data),
            };
            c.outbox.buffered += text.len();
            self.outputs.push_back(Output::Transmit { conn, text });
            return Sent::Now;
        }
        // Queue it. A newer status of the same origin replaces the queued one in place
        // (keeping its turn), if the outbox has room for the difference.
        let replaces = status_origin.and_then(|origin| {
            c.outbox
                .queue
                .iter()
                .position(|q| q.status_origin.as_deref() == Some(origin))
        });
        let freed = replaces
            .and_then(|i| c.outbox.queue.get(i))
            .map_or(0, |q| q.bytes);
        let id = match id {
            Some(id) => id.clone(),
            None => JsString::from(self.rng.uuid()),
        };
        let bytes = ITEM_OVERHEAD
            + id.as_wtf8().len()
            + msg_type.len()
            + kind.len()
            + from.map_or(0, str::len)
            + data.map_or(0, <[u8]>::len);
        let kind = kind.to_string();
        if c.outbox.queued_bytes.saturating_sub(freed) + bytes > max_outbox {
            let event = HubEvent::OutboxOverflow {
                conn,
                kind,
                msg_type: msg_type.to_owned(),
                outbox_bytes: c.outbox.queued_bytes,
                max_outbox_bytes: max_outbox,
            };
            self.emit(event);
            return Sent::Refused;
        }
        let item = Queued {
            msg_type,
            id,
            from: from.map(str::to_owned),
            data: data.map(<[u8]>::to_vec),
            status_origin: status_origin.map(str::to_owned),
            bytes,
        };
        if let Some(slot) = replaces.and_then(|i| c.outbox.queue.get_mut(i)) {
            c.outbox.queued_bytes = c.outbox.queued_bytes.saturating_sub(freed) + bytes;
            *slot = item;
            return Sent::Queued;
        }
        let started = c.outbox.queue.is_empty();
        let buffered = c.outbox.buffered;
        c.outbox.queued_bytes += bytes;
        c.outbox.queue.push_back(item);
        if started {
            self.emit(HubEvent::Backpressure {
                conn,
                kind,
                msg_type: msg_type.to_owned(),
                buffered_amount: buffered,
                max_buffered_bytes: max_buffered,
            });
        }
        Sent::Queued
    }

    /// Moves queued messages to the transport while its backlog allows.
    pub(super) fn flush_outbox(&mut self, conn: ConnId) {
        let max_buffered = self.config.max_buffered_bytes;
        let ts = self.now.ms();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (super::conn::Phase::Peer { kind }, Some(key)) = (&c.phase, c.key.as_ref()) else {
            return;
        };
        while c.outbox.buffered <= max_buffered {
            let Some(q) = c.outbox.queue.pop_front() else {
                break;
            };
            c.outbox.queued_bytes -= q.bytes;
            let header = Header {
                id: (&q.id).into(),
                ts,
                from: q.from.as_deref().map(Into::into),
                to: Some((&**kind).into()),
            };
            let text = signed_text(key, &header, q.msg_type, q.data.as_deref());
            c.outbox.buffered += text.len();
            self.outputs.push_back(Output::Transmit { conn, text });
        }
    }
}
