//! The send path: application traffic takes the fast path to the transport when the
//! link is ready and uncongested, otherwise waits in the outbox; the drain signs each
//! item when it finally goes out.

use super::*;

impl Connection {
    /// The link may carry application traffic: open and acknowledged.
    pub(super) fn writable(&self) -> bool {
        self.transport == Transport::Open && self.ready
    }

    pub(super) fn check_sendable(&self, op: &'static str) -> Result<(), ClientError> {
        if self.stopped {
            Err(ClientError::NotReady { op })
        } else {
            Ok(())
        }
    }

    pub(super) fn check_feature(
        &self,
        op: &'static str,
        feature: &'static str,
    ) -> Result<(), ClientError> {
        match &self.features {
            Some(f) if !f.iter().any(|x| x == feature) => {
                Err(ClientError::FeatureUnsupported { op, feature })
            }
            _ => Ok(()),
        }
    }

    pub(super) fn send_app(
        &mut self,
        now: Now,
        msg_type: &'static str,
        to: Option<JsString>,
        message: &Message,
    ) -> Result<(), ClientError> {
        let id = JsString::from(self.rng.uuid());
        let item = Item::new(id, msg_type, to, payload(message));
        self.enqueue_or_send(now, item)
            .map_err(|_| ClientError::OutboxFull {
                msg_type,
                max_outbox_bytes: self.config.max_outbox_bytes,
            })
    }

    pub(super) fn send_topic_control(&mut self, now: Now, msg_type: &'static str, topic: &str) {
        let message = if msg_type == types::TOPIC_SUBSCRIBE {
            Message::TopicSubscribe(TopicSubscribe {
                topic: Some(Value::from(topic)),
            })
        } else {
            Message::TopicUnsubscribe(TopicUnsubscribe {
                topic: Some(Value::from(topic)),
            })
        };
        let id = JsString::from(self.rng.uuid());
        let _ = self.enqueue_or_send(now, Item::new(id, msg_type, None, payload(&message)));
    }

    pub(super) fn send_rpc_cancel(&mut self, now: Now, wire_id: &JsString, to: &str) {
        if !self.writable() {
            return;
        }
        let message = Message::RpcCancel(RpcCancel {
            id: Some(Value::String(wire_id.clone())),
        });
        let id = JsString::from(self.rng.uuid());
        let item = Item::new(id, types::RPC_CANCEL, Some(to.into()), payload(&message));
        let _ = self.enqueue_or_send(now, item);
    }

    /// Sends now on the fast path (ready, nothing queued, transport not congested),
    /// otherwise queues.
    pub(super) fn enqueue_or_send(&mut self, now: Now, mut item: Item) -> Result<(), Overflow> {
        if self.outbox.is_empty()
            && self.writable()
            && self.buffered <= self.config.max_buffered_bytes
        {
            self.transmit_item(now, &item);
            return Ok(());
        }
        if let Some(data) = &mut item.data {
            data.shrink_to_fit();
        }
        let was_empty = self.outbox.is_empty();
        let (msg_type, to) = (item.msg_type, item.to.clone());
        if let Err(o) = self.outbox.push(item) {
            self.emit(ClientEvent::OutboxOverflow {
                msg_type,
                to: to.map(|t| t.to_string_lossy()),
                outbox_bytes: o.outbox_bytes,
                max_outbox_bytes: self.outbox.max_bytes(),
            });
            return Err(o);
        }
        if was_empty {
            self.emit(ClientEvent::Backpressure {
                msg_type,
                to: to.map(|t| t.to_string_lossy()),
                buffered: self.buffered,
                outbox_size: self.outbox.len(),
            });
        }
        if self.writable() {
            self.drain_outbox(now);
        }
        Ok(())
    }

    /// Flushes what the transport will take, pausing while it is congested. Gated on
    /// the transport only, so a graceful stop (no longer ready) can still drain.
    pub(super) fn drain_outbox(&mut self, now: Now) {
        if self.transport != Transport::Open || (self.ready && self.status_due) {
            return;
        }
        let mut drained_any = false;
        while !self.outbox.is_empty() {
            if self.buffered > self.config.max_buffered_bytes {
                if self.timers.drain_retry.is_none() {
                    self.timers.drain_retry = now.instant.checked_add(DRAIN_RETRY);
                }
                break;
            }
            if let Some(item) = self.outbox.pop() {
                self.transmit_item(now, &item);
                drained_any = true;
            }
        }
        if drained_any && self.outbox.is_empty() {
            self.emit(ClientEvent::OutboxDrained);
        }
    }

    pub(super) fn transmit_item(&mut self, now: Now, item: &Item) {
        let header = Header {
            id: (&item.id).into(),
            ts: now.ms(),
            from: Some(self.config.kind.as_str().into()),
            to: item.to.as_ref().map(Into::into),
        };
        let mut out = Vec::new();
        wire::encode(
            &self.key,
            &header,
            item.msg_type,
            item.data.as_deref(),
            &mut out,
        );
        self.transmit(out);
    }

    pub(super) fn transmit_message(
        &mut self,
        now: Now,
        id: &JsString,
        to: Option<&JsString>,
        message: &Message,
    ) {
        let header = Header {
            id: id.into(),
            ts: now.ms(),
            from: Some(self.config.kind.as_str().into()),
            to: to.map(Into::into),
        };
        let mut out = Vec::new();
        wire::encode_message(&self.key, &header, message, &mut out);
        self.transmit(out);
    }

    pub(super) fn transmit(&mut self, bytes: Vec<u8>) {
        // The encoder only writes UTF-8 (lone surrogates are escaped).
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.buffered += text.len();
        self.out.push_back(Output::Transmit(text));
    }
}
