//! Topic subscriptions (a set of kinds per topic, kept across a kind's socket
//! replacement and dropped when it disconnects) and fan-out of `topic.message`.

use std::collections::HashMap;

use super::outbox::shared_head;
use super::{ConnId, HubEvent, HubState};
use crate::seeded::SeededState;
use crate::wire::message::{types, write_members};
use crate::wire::{DropReason, Value};

#[derive(Debug)]
struct Topic {
    /// Creation order, for `link.topic.list`.
    seq: u64,
    /// Subscribed kinds in subscription order.
    kinds: Vec<String>,
}

#[derive(Debug)]
pub(super) struct Topics {
    topics: HashMap<String, Topic, SeededState>,
    by_kind: HashMap<String, Vec<String>, SeededState>,
    next_seq: u64,
    total: usize,
}

impl Topics {
    pub fn new(hasher: SeededState) -> Self {
        Self {
            topics: HashMap::with_hasher(hasher.clone()),
            by_kind: HashMap::with_hasher(hasher),
            next_seq: 0,
            total: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.topics.len()
    }

    pub fn total_subscribers(&self) -> usize {
        self.total
    }

    /// Adds `kind` to `topic`; whether it was new.
    pub fn subscribe(&mut self, kind: &str, topic: &str) -> bool {
        let next_seq = &mut self.next_seq;
        let t = self.topics.entry(topic.to_owned()).or_insert_with(|| {
            *next_seq += 1;
            Topic {
                seq: *next_seq,
                kinds: Vec::new(),
            }
        });
        if t.kinds.iter().any(|k| k == kind) {
            return false;
        }
        t.kinds.push(kind.to_owned());
        self.by_kind
            .entry(kind.to_owned())
            .or_default()
            .push(topic.to_owned());
        self.total += 1;
        true
    }

    /// Removes `kind` from `topic`; whether it was there.
    pub fn unsubscribe(&mut self, kind: &str, topic: &str) -> bool {
        let Some(t) = self.topics.get_mut(topic) else {
            return false;
        };
        let Some(pos) = t.kinds.iter().position(|k| k == kind) else {
            return false;
        };
        t.kinds.remove(pos);
        if t.kinds.is_empty() {
            self.topics.remove(topic);
        }
        if let Some(list) = self.by_kind.get_mut(kind) {
            list.retain(|x| x != topic);
            if list.is_empty() {
                self.by_kind.remove(kind);
            }
        }
        self.total -= 1;
        true
    }

    /// Removes every subscription of `kind`, returning the topics it left.
    pub fn remove_kind(&mut self, kind: &str) -> Vec<String> {
        let topics = self.by_kind.remove(kind).unwrap_or_default();
        for topic in &topics {
            if let Some(t) = self.topics.get_mut(topic.as_str()) {
                t.kinds.retain(|k| k != kind);
                self.total -= 1;
                if t.kinds.is_empty() {
                    self.topics.remove(topic.as_str());
                }
            }
        }
        topics
    }

    pub fn subscribers(&self, topic: &str) -> &[String] {
        self.topics.get(topic).map_or(&[], |t| &t.kinds)
    }

    /// Every topic with its subscribers, in creation order.
    pub fn list(&self) -> Vec<(&str, &[String])> {
        let mut all: Vec<(&String, &Topic)> = self.topics.iter().collect();
        all.sort_by_key(|(_, t)| t.seq);
        all.into_iter()
            .map(|(name, t)| (name.as_str(), t.kinds.as_slice()))
            .collect()
    }
}

/// JavaScript truthiness of an optional wire value (`undefined` is falsy).
fn truthy(v: Option<&Value>) -> bool {
    v.is_some_and(Value::is_truthy)
}

impl HubState {
    pub(super) fn subscribe(&mut self, kind: &str, topic: &str) {
        if self.topics.subscribe(kind, topic) {
            self.emit(HubEvent::TopicSubscribe {
                kind: kind.to_owned(),
                topic: topic.to_owned(),
            });
        }
    }

    /// `topic.unsubscribe` (not ACL-gated): a falsy topic leaves every topic.
    pub(super) fn on_unsubscribe(&mut self, conn: ConnId, kind: &str, topic: Option<Value>) {
        if !truthy(topic.as_ref()) {
            for topic in self.topics.remove_kind(kind) {
                self.emit(HubEvent::TopicUnsubscribe {
                    kind: kind.to_owned(),
                    topic,
                });
            }
            return;
        }
        let Some(topic) = crate::wire::validate::topic_of(topic.as_ref()) else {
            self.protocol_error(
                conn,
                Some(kind),
                DropReason::InvalidTopic,
                Some(types::TOPIC_UNSUBSCRIBE),
                None,
            );
            return;
        };
        if self.topics.unsubscribe(kind, topic) {
            self.emit(HubEvent::TopicUnsubscribe {
                kind: kind.to_owned(),
                topic: topic.to_owned(),
            });
        }
    }

    /// Fans `payload` out to every subscriber of `topic` but the publisher, one
    /// envelope each, from one canonical rendering of the payload.
    pub(super) fn publish(&mut self, kind: &str, topic: String, payload: Option<Value>) {
        let mut data = std::mem::take(&mut self.data_buf);
        data.clear();
        let topic_value = Value::from(topic.as_str());
        write_members(
            &[("payload", payload.as_ref()), ("topic", Some(&topic_value))],
            &mut data,
        );
        let mut targets = std::mem::take(&mut self.fanout);
        targets.clear();
        let subscribers = self.topics.subscribers(&topic);
        let subscriber_count = subscribers.len();
        for sub in subscribers {
            if sub == kind {
                continue;
            }
            if let Some(p) = self.peers.get(sub) {
                targets.push(p.conn);
            }
        }
        let mut delivered = 0;
        let mut head = shared_head(targets.len(), kind, &data);
        for &conn in &targets {
            if self
                .send(
                    conn,
                    types::TOPIC_MESSAGE,
                    None,
                    Some(kind),
                    Some(&data),
                    None,
                    head.as_mut(),
                )
                .ok()
            {
                delivered += 1;
            }
        }
        self.fanout = targets;
        self.data_buf = data;
        if self.frame_events {
            self.emit(HubEvent::TopicPublish {
                from: kind.to_owned(),
                topic,
                payload,
                subscriber_count,
                delivered,
            });
        }
    }
}
