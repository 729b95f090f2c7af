//! The local subscription set: what this peer wants from the hub, kept across
//! reconnects and replayed after every ready (the hub forgets on disconnect).

use std::collections::BTreeSet;

/// Topics this peer is subscribed to, in a stable order for replay.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    topics: BTreeSet<String>,
}

impl Subscriptions {
    /// Adds `topic`; `true` if it was new (only then does the hub need telling).
    pub fn add(&mut self, topic: &str) -> bool {
        self.topics.insert(topic.to_owned())
    }

    /// Removes `topic`; `true` if it was there.
    pub fn remove(&mut self, topic: &str) -> bool {
        self.topics.remove(topic)
    }

    /// Whether `topic` is subscribed.
    pub fn contains(&self, topic: &str) -> bool {
        self.topics.contains(topic)
    }

    /// Every subscribed topic.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.topics.iter().map(String::as_str)
    }

    /// How many topics.
    pub fn len(&self) -> usize {
        self.topics.len()
    }
}
