//! The replay guard: a timestamp window and a bounded per-sender cache of recent ids
//! (PROTOCOL.md §6 steps 7–8).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::id_key::IdKey;
use super::json::JsString;
use super::message::types;
use super::{DropReason, Limits};
use crate::seeded::SeededState;

/// Recent ids of one sender, oldest first, with an index of each id's latest
/// sighting.
///
/// Every message a hub or client accepts is checked here, and its id is random, so
/// each check lands somewhere new in the index. The index therefore holds only a
/// sighting's 4-byte number (its place in `order`, counted from `first`): for a full
/// cache of 10,000 ids it is 160 KB (32,768 slots: the churn of ids coming and going
/// grows it once), and stays in the CPU's caches where a table of the ids themselves
/// (1 MB at the same size) did not. An id is read from `order` only when its hash tag
/// matches, so a new id costs one probe of the index. With the queue (512 KB), a full
/// cache takes about 670 KB, against 1.6 MB before.
#[derive(Debug, Default)]
struct SenderIds {
    /// Each sighting recorded: the id, and when.
    order: VecDeque<(IdKey, f64)>,
    /// The number of `order`'s front sighting; numbers wrap, and are compared only
    /// as offsets from this one.
    first: u32,
    /// The number of each remembered id's latest sighting, by the id's hash.
    index: HashTable<u32>,
}

impl SenderIds {
    /// The sighting numbered `seq` in `order`, whose front is numbered `first` (a
    /// function of the two fields, so that [`SenderIds::record`] can read them while
    /// it changes the index).
    fn sighting(order: &VecDeque<(IdKey, f64)>, first: u32, seq: u32) -> Option<&(IdKey, f64)> {
        order.get(seq.wrapping_sub(first) as usize)
    }

    /// When `key` (whose hash is `hash`) was last seen, if it is remembered.
    fn last_seen(&self, hash: u64, key: &IdKey) -> Option<f64> {
        let (order, first) = (&self.order, self.first);
        let seq = self.index.find(hash, |&seq| {
            Self::sighting(order, first, seq).is_some_and(|(k, _)| k == key)
        })?;
        Self::sighting(order, first, *seq).map(|(_, at)| *at)
    }

    /// Records a sighting of `key` at `at`, as its latest.
    fn record(&mut self, hasher: &SeededState, hash: u64, key: IdKey, at: f64) {
        let Self {
            order,
            first,
            index,
        } = self;
        let seq = first.wrapping_add(order.len() as u32);
        let at_seq = |seq: u32| Self::sighting(order, *first, seq);
        match index.find_entry(hash, |&s| at_seq(s).is_some_and(|(k, _)| *k == key)) {
            Ok(mut latest) => *latest.get_mut() = seq,
            Err(_) => {
                index.insert_unique(hash, seq, |&s| {
                    at_seq(s).map_or(0, |(k, _)| hasher.hash_one(k))
                });
            }
        }
        order.push_back((key, at));
    }

    /// Drops the oldest sighting, and its id from the index if that sighting is still
    /// the id's latest; false if nothing was recorded.
    fn drop_oldest(&mut self, hasher: &SeededState) -> bool {
        let Some((key, _)) = self.order.pop_front() else {
            return false;
        };
        let seq = self.first;
        self.first = seq.wrapping_add(1);
        if let Ok(latest) = self.index.find_entry(hasher.hash_one(&key), |&s| s == seq) {
            latest.remove();
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
            // Sightings are numbered in 32 bits, and a cache briefly holds one more
            // than its size: a larger one (over 160 GB) would reuse numbers in use.
            max_ids: limits.max_recent_ids.min(u32::MAX as usize - 1),
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
            self.senders.insert(sender.to_owned(), SenderIds::default());
        }
        let Some(entry) = self.senders.get_mut(sender) else {
            return Ok(());
        };
        // Expire from the front: ids were recorded in arrival order.
        while let Some((_, at)) = entry.order.front() {
            if now_ms - at <= self.window_ms && entry.order.len() <= self.max_ids {
                break;
            }
            entry.drop_oldest(&self.hasher);
            self.total -= 1;
        }
        let key = IdKey::of(id);
        let hash = self.hasher.hash_one(&key);
        if entry
            .last_seen(hash, &key)
            .is_some_and(|at| now_ms - at <= self.window_ms)
        {
            return Err(DropReason::ReplayId);
        }
        entry.record(&self.hasher, hash, key, now_ms);
        self.total += 1;
        if entry.order.len() > self.max_ids && entry.drop_oldest(&self.hasher) {
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

    /// The cache decides exactly as a plain list of sightings would: an id is a
    /// replay if its latest remembered sighting is within the window, and sightings
    /// leave oldest first, past the window or beyond the cache's size. Ids repeat
    /// often, and the clock jumps back now and then.
    #[test]
    fn cache_decides_as_a_list_of_sightings_would() {
        let (window, max) = (50.0, 16);
        let mut g = guard(50, max);
        let mut model: VecDeque<(String, f64)> = VecDeque::new();
        let mut rng = crate::seeded::Rng::new(3);
        let d = Some(JsString::from("direct"));
        let mut now = 1000.0;
        let mut replays = 0;
        for _ in 0..20_000 {
            now += match rng.next_u64() % 20 {
                0 => -30.0,
                1 => 60.0,
                n => (n % 4) as f64,
            };
            // Half UUIDs (packed keys), half other text, from a small pool.
            let n = rng.next_u64() % 40;
            let text = if n.is_multiple_of(2) {
                format!("00000000-0000-4000-8000-{n:012x}")
            } else {
                format!("id-{n}")
            };
            while let Some((_, at)) = model.front() {
                if now - at <= window && model.len() <= max {
                    break;
                }
                model.pop_front();
            }
            let latest = model.iter().rev().find(|(k, _)| *k == text);
            let expected = match latest {
                Some((_, at)) if now - at <= window => Err(DropReason::ReplayId),
                _ => {
                    model.push_back((text.clone(), now));
                    if model.len() > max {
                        model.pop_front();
                    }
                    Ok(())
                }
            };
            replays += usize::from(expected.is_err());
            assert_eq!(g.check("a", &id(&text), now, d.as_ref(), now), expected);
            assert_eq!(g.len(), model.len());
        }
        assert!(replays > 1000, "{replays} replays");
    }

    /// Sighting numbers wrap around without losing track of any id.
    #[test]
    fn sighting_numbers_wrap() {
        let hasher = SeededState::new(4);
        let mut ids = SenderIds {
            first: u32::MAX - 3,
            ..SenderIds::default()
        };
        let key = |n: u32| IdKey::of(&id(&format!("id-{n}")));
        let seen = |ids: &SenderIds, n: u32| {
            let k = key(n);
            ids.last_seen(hasher.hash_one(&k), &k)
        };
        for n in 0..10 {
            ids.record(&hasher, hasher.hash_one(key(n)), key(n), f64::from(n));
        }
        // A second sighting of id-2 becomes its latest.
        ids.record(&hasher, hasher.hash_one(key(2)), key(2), 10.0);
        for n in 0..10 {
            let expected = if n == 2 { 10.0 } else { f64::from(n) };
            assert_eq!(seen(&ids, n), Some(expected));
        }
        for _ in 0..5 {
            assert!(ids.drop_oldest(&hasher));
        }
        assert_eq!(ids.first, 1);
        assert_eq!(seen(&ids, 0), None);
        assert_eq!(seen(&ids, 2), Some(10.0));
        assert_eq!(seen(&ids, 5), Some(5.0));
        while ids.drop_oldest(&hasher) {}
        assert!(ids.index.is_empty());
    }
}
