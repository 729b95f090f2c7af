//! The outbox: messages waiting for a ready, uncongested link, bounded by the
//! reference's byte estimate. Items are kept unsigned (canonical payload bytes plus
//! envelope fields) and signed when flushed, so a message that waits through a
//! reconnect still gets a fresh `ts`.

use std::collections::VecDeque;

use crate::wire::json::JsString;
use crate::wire::message::types;

/// A message waiting to be signed and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Envelope id (for `rpc.request`/`rpc.response`, the RPC's id; a response
    /// echoes the caller's id exactly, lone surrogates included).
    pub id: JsString,
    /// Message type.
    pub msg_type: &'static str,
    /// Envelope `to`.
    pub to: Option<JsString>,
    /// Canonical payload, or `None` to omit `data`.
    pub data: Option<Vec<u8>>,
    size: usize,
}

impl Item {
    /// An item; its size is estimated once, here.
    pub fn new(
        id: JsString,
        msg_type: &'static str,
        to: Option<JsString>,
        data: Option<Vec<u8>>,
    ) -> Self {
        let mut item = Item {
            id,
            msg_type,
            to,
            data,
            size: 0,
        };
        item.size = estimate_size(&item);
        item
    }

    /// The estimated size counted against the cap.
    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.size
    }
}

/// The reference's estimate: 200 bytes of envelope scaffolding plus the UTF-8 lengths
/// of id, type and to, plus the JSON length of the payload (`null` when absent). The
/// canonical text has the same length as `JSON.stringify`'s.
pub fn estimate_size(item: &Item) -> usize {
    200 + item.id.as_wtf8().len()
        + item.msg_type.len()
        + item.to.as_ref().map_or(0, |t| t.as_wtf8().len())
        + item.data.as_ref().map_or(4, Vec::len)
}

fn is_subscription_change(msg_type: &str) -> bool {
    msg_type == types::TOPIC_SUBSCRIBE || msg_type == types::TOPIC_UNSUBSCRIBE
}

/// The queue was full; nothing was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// Bytes queued at the time.
    pub outbox_bytes: usize,
}

/// Outgoing messages in order, with their total estimated size.
#[derive(Debug, Clone)]
pub struct Outbox {
    items: VecDeque<Item>,
    bytes: usize,
    max_bytes: usize,
}

impl Outbox {
    /// An empty outbox capped at `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            items: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Appends `item`, or refuses it if the cap would be exceeded. A `status.update`
    /// replaces one already queued, in place (only the newest status matters).
    ///
    /// Subscription changes are never refused: the application cannot tell that a
    /// queued `topic.subscribe` was lost, and the next ready's replay would go through
    /// the same full queue, so a transient backlog would become a silent, lasting loss.
    /// They are conflated per topic (the latest change wins), which bounds them by the
    /// number of topics the application named.
    pub fn push(&mut self, item: Item) -> Result<(), Overflow> {
        if is_subscription_change(item.msg_type) {
            if let Some(i) = self
                .items
                .iter()
                .position(|it| is_subscription_change(it.msg_type) && it.data == item.data)
                && let Some(old) = self.items.remove(i)
            {
                self.bytes -= old.size;
            }
            self.bytes += item.size;
            self.items.push_back(item);
            return Ok(());
        }
        if item.msg_type == types::STATUS_UPDATE
            && let Some(i) = self
                .items
                .iter()
                .position(|it| it.msg_type == types::STATUS_UPDATE)
        {
            let projected = self.bytes - self.items[i].size + item.size;
            if projected > self.max_bytes {
                return Err(Overflow {
                    outbox_bytes: self.bytes,
                });
            }
            self.bytes = projected;
            self.items[i] = item;
            return Ok(());
        }
        if self.bytes + item.size > self.max_bytes {
            return Err(Overflow {
                outbox_bytes: self.bytes,
            });
        }
        self.bytes += item.size;
        self.items.push_back(item);
        Ok(())
    }

    /// The oldest item.
    #[cfg(test)]
    pub fn front(&self) -> Option<&Item> {
        self.items.front()
    }

    /// Takes the oldest item.
    pub fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        self.bytes -= item.size;
        Some(item)
    }

    /// Removes the item with envelope id `id`; `true` if found.
    pub fn remove_by_id(&mut self, id: &JsString) -> bool {
        match self.items.iter().position(|it| it.id == *id) {
            Some(i) => {
                if let Some(it) = self.items.remove(i) {
                    self.bytes -= it.size;
                }
                true
            }
            None => false,
        }
    }

    /// Removes every item `pred` selects; returns how many.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Item) -> bool) -> usize {
        let before = self.items.len();
        self.items.retain(|it| !pred(it));
        self.bytes = self.items.iter().map(|it| it.size).sum();
        before - self.items.len()
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Estimated bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The cap.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, t: &'static str, data: &str) -> Item {
        Item::new(
            id.into(),
            t,
            Some("w".into()),
            Some(data.as_bytes().to_vec()),
        )
    }

    #[test]
    fn estimate_matches_the_reference_formula() {
        let it = item("abc", types::DIRECT, "{\"x\":1}");
        assert_eq!(it.size(), 200 + 3 + 6 + 1 + 7);
        let none = Item::new("i".into(), types::STATUS_UPDATE, None, None);
        assert_eq!(none.size(), 200 + 1 + 13 + 4);
    }

    #[test]
    fn subscription_changes_pass_a_full_queue_and_conflate_per_topic() {
        let mut q = Outbox::new(250);
        q.push(item("1", types::TOPIC_MESSAGE, "{}")).expect("fits");
        assert!(q.push(item("2", types::TOPIC_MESSAGE, "{}")).is_err());
        q.push(item("3", types::TOPIC_SUBSCRIBE, r#"{"topic":"a"}"#))
            .expect("subscriptions are never refused");
        q.push(item("4", types::TOPIC_SUBSCRIBE, r#"{"topic":"b"}"#))
            .expect("subscriptions are never refused");
        q.push(item("5", types::TOPIC_UNSUBSCRIBE, r#"{"topic":"a"}"#))
            .expect("subscriptions are never refused");
        assert_eq!(
            q.len(),
            3,
            "the unsubscribe replaced the queued subscribe of a"
        );
        let ids: Vec<_> = std::iter::from_fn(|| q.pop())
            .map(|i| i.id.to_string())
            .collect();
        assert_eq!(ids, ["1", "4", "5"]);
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn cap_refuses_and_status_conflates_in_place() {
        let a = item("a", types::DIRECT, "1");
        let cap = a.size() * 2 + 10;
        let mut o = Outbox::new(cap);
        o.push(item("s1", types::STATUS_UPDATE, "1")).expect("fits");
        o.push(a.clone()).expect("fits");
        assert!(o.push(item("b", types::DIRECT, "1")).is_err());
        o.push(item("s2", types::STATUS_UPDATE, "2"))
            .expect("replaces");
        assert_eq!(o.len(), 2);
        assert_eq!(
            o.front().map(|i| i.id.to_string_lossy()),
            Some("s2".to_owned())
        );
        assert!(o.remove_by_id(&JsString::from("a")));
        assert_eq!(o.remove_where(|i| i.msg_type == types::STATUS_UPDATE), 1);
        assert_eq!((o.len(), o.bytes()), (0, 0));
    }
}
