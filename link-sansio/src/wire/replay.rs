//! The replay guard: a timestamp window and a bounded per-sender cache of recent ids
//! (PROTOCOL.md §6 steps 7–8).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use super::id_key::IdKey;
use super::json::JsString;
use super::message::types;
use super::{DropReason, Limits};
use crate::seeded::SeededState;

/// Recent ids of one sender, oldest first. A remembered UUID costs 64 bytes across
/// table and queue, so a full cache of 10,000 ids per sender stays near the CPU's
/// caches.
#[derive(Debug, Default)]
struct SenderIds {
    ids: HashMap<IdKey, f64, SeededState>,
    order: VecDeque<(IdKey, f64)>,
}

impl SenderIds {
    /// Drops the oldest recorded id, and its table entry if that sighting is still
    /// its latest; false if nothing was recorded.
    fn drop_oldest(&mut self) -> bool {
        let Some((id, at)) = self.order.pop_front() else {
            return false;
        };
        if let Entry::Occupied(seen) = self.ids.entry(id)
            && *seen.get() == at
        {
            seen.remove();
        }
        true
    }
}

/// Timestamp window and per-sender id cache. `replay_window_ms == 0` disables both.
#[derive(Debug)]
pub struct ReplayGuard {
    window_ms: f64,
    max_ids: usize,
    senders: HashMap<String, SenderIds, SeededState>,
    hasher: SeededState,
    total: usize,
}

impl ReplayGuard {
    /// A guard with the window and cache size from `limits`; `hasher` keys the
    /// id tables (seeded by the caller, so runs are reproducible).
    pub fn new(limits: &Limits, hasher: SeededState) -> Self {
        Self {
            window_ms: limits.replay_window_ms as f64,
            max_ids: limits.max_recent_ids,
            senders: HashMap::with_hasher(hasher.clone()),
            hasher,
            total: 0,
        }
    }

    /// Checks a verified message from `sender` with envelope `id`, `ts` and
    /// `msg_type` at wall-clock `now_ms`, and records its id. `rpc.response` is exempt
    /// from the id check.
    pub fn check(
        &mut self,
        sender: &str,
        id: &JsString,
        ts: f64,
        msg_type: Option<&JsString>,
        now_ms: f64,
    ) -> Result<(), DropReason> {
        if self.window_ms <= 0.0 {
            return Ok(());
        }
        // A NaN skew (a clock or `ts` that is not a number) is never within the window.
        let skew = (now_ms - ts).abs();
        if skew.is_nan() || skew > self.window_ms {
            return Err(DropReason::ReplayWindow);
        }
        if msg_type.is_some_and(|t| *t == types::RPC_RESPONSE) {
            return Ok(());
        }
        // Look up before inserting: the sender's name is only copied the first time.
        if !self.senders.contains_key(sender) {
            let fresh = SenderIds {
                ids: HashMap::with_hasher(self.hasher.clone()),
                order: VecDeque::new(),
            };
            self.senders.insert(sender.to_owned(), fresh);
        }
        let Some(entry) = self.senders.get_mut(sender) else {
            return Ok(());
        };
        // Expire from the front: ids were recorded in arrival order.
        while let Some((_, at)) = entry.order.front() {
            if now_ms - at <= self.window_ms && entry.order.len() <= self.max_ids {
                break;
            }
            entry.drop_oldest();
            self.total -= 1;
        }
        let key = IdKey::of(id);
        match entry.ids.entry(key.clone()) {
            Entry::Occupied(seen) if now_ms - seen.get() <= self.window_ms => {
                return Err(DropReason::ReplayId);
            }
            Entry::Occupied(mut seen) => {
                seen.insert(now_ms);
            }
            Entry::Vacant(slot) => {
                slot.insert(now_ms);
            }
        }
        entry.order.push_back((key, now_ms));
        self.total += 1;
        if entry.order.len() > self.max_ids && entry.drop_oldest() {
            self.total -= 1;
        }
        Ok(())
    }

    /// Discards everything remembered about `sender`.
    pub fn forget(&mut self, sender: &str) {
        if let Some(s) = self.senders.remove(sender) {
            self.total -= s.order.len();
        }
    }

    /// Number of ids remembered across all senders (the reference's `recentIdsSize`).
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no ids are remembered.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(window: u64, max: usize) -> ReplayGuard {
        let limits = Limits {
            replay_window_ms: window,
            max_recent_ids: max,
            ..Limits::default()
        };
        ReplayGuard::new(&limits, SeededState::new(1))
    }

    fn id(s: &str) -> JsString {
        JsString::from(s)
    }

    #[test]
    fn window_is_symmetric_and_missing_ts_fails() {
        let mut g = guard(1000, 10);
        let t = Some(JsString::from("direct"));
        assert_eq!(g.check("a", &id("1"), 5000.0, t.as_ref(), 5999.0), Ok(()));
        assert_eq!(g.check("a", &id("2"), 7000.0, t.as_ref(), 6000.0), Ok(()));
        assert_eq!(
            g.check("a", &id("3"), 7001.0, t.as_ref(), 6000.0),
            Err(DropReason::ReplayWindow)
        );
        assert_eq!(
            g.check("a", &id("4"), 0.0, t.as_ref(), 6000.0),
            Err(DropReason::ReplayWindow)
        );
    }

    #[test]
    fn duplicate_ids_are_refused_per_sender_except_responses() {
        let mut g = guard(1000, 10);
        let d = Some(JsString::from("direct"));
        let r = Some(JsString::from("rpc.response"));
        assert_eq!(g.check("a", &id("x"), 10.0, d.as_ref(), 10.0), Ok(()));
        assert_eq!(
            g.check("a", &id("x"), 10.0, d.as_ref(), 11.0),
            Err(DropReason::ReplayId)
        );
        assert_eq!(g.check("b", &id("x"), 10.0, d.as_ref(), 11.0), Ok(()));
        assert_eq!(g.check("a", &id("y"), 10.0, r.as_ref(), 11.0), Ok(()));
        assert_eq!(g.check("a", &id("y"), 10.0, r.as_ref(), 11.0), Ok(()));
        g.forget("a");
        assert_eq!(g.check("a", &id("x"), 10.0, d.as_ref(), 12.0), Ok(()));
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let mut g = guard(1000, 3);
        let d = Some(JsString::from("direct"));
        for i in 0..10 {
            assert_eq!(
                g.check("a", &id(&i.to_string()), 0.0, d.as_ref(), 0.0),
                Ok(())
            );
        }
        assert_eq!(g.len(), 3);
        // The oldest were evicted, so they pass again (bounded memory wins).
        assert_eq!(g.check("a", &id("0"), 0.0, d.as_ref(), 0.0), Ok(()));
        assert_eq!(
            g.check("a", &id("9"), 0.0, d.as_ref(), 0.0),
            Err(DropReason::ReplayId)
        );
        // Past the window everything expires.
        assert_eq!(g.check("a", &id("z"), 2000.0, d.as_ref(), 2000.0), Ok(()));
        assert_eq!(g.len(), 1);
    }

    /// An uppercase UUID is a different id from its lowercase spelling (ids compare
    /// case-sensitively), remembered as text.
    #[test]
    fn uppercase_uuids_are_other_ids() {
        let uuid = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff";
        let mut g = guard(1000, 10);
        let d = Some(JsString::from("direct"));
        let upper = uuid.to_uppercase();
        assert_eq!(g.check("a", &id(uuid), 0.0, d.as_ref(), 0.0), Ok(()));
        assert_eq!(g.check("a", &id(&upper), 0.0, d.as_ref(), 0.0), Ok(()));
        assert_eq!(
            g.check("a", &id(&upper), 0.0, d.as_ref(), 0.0),
            Err(DropReason::ReplayId)
        );
        assert_eq!(
            g.check("a", &id(uuid), 0.0, d.as_ref(), 0.0),
            Err(DropReason::ReplayId)
        );
    }

    #[test]
    fn zero_window_disables_everything() {
        let mut g = guard(0, 3);
        let d = Some(JsString::from("direct"));
        assert_eq!(g.check("a", &id("x"), 0.0, d.as_ref(), 1e12), Ok(()));
        assert_eq!(g.check("a", &id("x"), 0.0, d.as_ref(), 1e12), Ok(()));
    }
}
