//! RPC bookkeeping: the pending table of outbound calls (with their deadlines) and the
//! table of inbound requests the application is handling, plus the wire body of a
//! handler's answer (sanitised as the reference does).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::{Duration, Instant};

use hashbrown::HashTable;

use super::error::HandlerError;
use crate::seeded::{CounterState, SeededState};
use crate::wire::json::{JsString, Value};
use crate::wire::message::RpcResponse;
use crate::wire::validate::check_json_safe;

/// Handle of an outbound RPC, returned by `Connection::rpc` and carried by its
/// `RpcComplete` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RpcId(pub u64);

impl fmt::Display for RpcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rpc#{}", self.0)
    }
}

/// Handle of an inbound request, carried by `ClientEvent::RpcRequest`; answer it with
/// `Connection::respond`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboundRpcId(pub u64);

impl fmt::Display for InboundRpcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inbound#{}", self.0)
    }
}

/// An outbound call awaiting its response.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The envelope id of the `rpc.request` (and of its response).
    pub wire_id: JsString,
    /// The target kind.
    pub to: String,
    /// The RPC type.
    pub rpc_type: String,
    /// When the call was made.
    pub started: Instant,
    /// The call's timeout (zero = none).
    pub timeout: Duration,
}

/// Outbound calls by id, with their deadlines in order. Thousands may be in flight,
/// so lookups are by hash: by handle in the table itself, by a response's id through
/// a [`WireIndex`].
///
/// The deadlines are kept in order ([`Deadlines`]). A call that ends leaves its
/// entry behind (taking an entry out of the middle is not cheap); entries of ended
/// calls are dropped as they come first, so the first is always a live call's, and
/// the entries are rebuilt from the live calls whenever ended ones would outnumber
/// them.
#[derive(Debug)]
pub(crate) struct Pending {
    calls: HashMap<RpcId, Call, CounterState>,
    by_wire: WireIndex<RpcId>,
    deadlines: Deadlines,
    next: u64,
}

/// Deadlines, earliest first. Calls made with one timeout come due in the order they
/// were made, so most deadlines join the back of a queue, and leave from its front,
/// at no cost; one that would come due before the queue's last goes to a heap.
#[derive(Debug, Default)]
struct Deadlines {
    /// Deadlines in the order they were added, which is also their order.
    queue: VecDeque<(Instant, RpcId)>,
    /// The others, earliest on top.
    heap: BinaryHeap<Reverse<(Instant, RpcId)>>,
}

impl Deadlines {
    fn push(&mut self, entry: (Instant, RpcId)) {
        match self.queue.back() {
            Some(last) if entry < *last => self.heap.push(Reverse(entry)),
            _ => self.queue.push_back(entry),
        }
    }

    /// The earliest entry.
    fn peek(&self) -> Option<(Instant, RpcId)> {
        let queued = self.queue.front().copied();
        let heaped = self.heap.peek().map(|Reverse(e)| *e);
        match (queued, heaped) {
            (Some(q), Some(h)) => Some(q.min(h)),
            (q, h) => q.or(h),
        }
    }

    /// Drops the earliest entry.
    fn pop(&mut self) {
        let from_heap = match (self.queue.front(), self.heap.peek()) {
            (Some(q), Some(Reverse(h))) => h < q,
            (None, _) => true,
            (Some(_), None) => false,
        };
        if from_heap {
            self.heap.pop();
        } else {
            self.queue.pop_front();
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(RpcId) -> bool) {
        self.queue.retain(|(_, id)| keep(*id));
        self.heap.retain(|Reverse((_, id))| keep(*id));
    }

    fn len(&self) -> usize {
        self.queue.len() + self.heap.len()
    }

    fn capacity(&self) -> usize {
        self.queue.capacity() + self.heap.capacity()
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.heap.clear();
    }

    /// Gives back memory down to `capacity` for each part.
    fn shrink_to(&mut self, capacity: usize) {
        self.queue.shrink_to(capacity);
        self.heap.shrink_to(capacity);
    }
}

/// Entries of ended calls the deadlines may hold beyond twice the live ones.
const STALE_DEADLINES: usize = 64;

/// Capacity a table keeps whatever it holds. Above it, [`Pending::trim`] and
/// [`Inbound::trim`] give back most of a table that holds less than an eighth of its
/// capacity.
const KEPT_CAPACITY: usize = 1024;

/// The capacity a table that a burst grew should shrink to: once it holds less than
/// an eighth of its capacity, room for twice what it holds.
fn shrunk_capacity(len: usize, capacity: usize) -> Option<usize> {
    (capacity > KEPT_CAPACITY && len * 8 < capacity).then(|| (len * 2).max(KEPT_CAPACITY))
}

/// Gives back the memory of a map that a burst grew (see [`shrunk_capacity`]).
fn shrink<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if let Some(capacity) = shrunk_capacity(map.len(), map.capacity()) {
        map.shrink_to(capacity);
    }
}

/// A table's entries by envelope id (peer-chosen bytes, hence the seeded hash). The
/// index holds only each entry's 8-byte handle and reads the id from the table that
/// owns the entry, when a hash tag matches: a quarter of the memory a table of
/// copied ids (32 bytes an entry) would spread thousands of calls in flight over.
///
/// The latest entry with an id is the one found; removing an older one leaves it.
#[derive(Debug)]
struct WireIndex<I> {
    index: HashTable<I>,
    hasher: SeededState,
}

impl<I: Copy + Eq> WireIndex<I> {
    fn new(hasher: SeededState) -> Self {
        Self {
            index: HashTable::new(),
            hasher,
        }
    }

    fn hash(hasher: &SeededState, wire_id: &JsString) -> u64 {
        hasher.hash_one(wire_id.as_wtf8())
    }

    /// The entry with `wire_id`; `wire_of` reads an entry's id from its table.
    fn find<'t>(
        &self,
        wire_id: &JsString,
        wire_of: impl Fn(I) -> Option<&'t JsString>,
    ) -> Option<I> {
        let hash = Self::hash(&self.hasher, wire_id);
        let found = self
            .index
            .find(hash, |&i| wire_of(i).is_some_and(|w| w == wire_id))?;
        Some(*found)
    }

    /// Indexes `id` (not yet in its table) under `wire_id`, in place of any other
    /// entry with that id.
    fn insert<'t>(
        &mut self,
        wire_id: &JsString,
        id: I,
        wire_of: impl Fn(I) -> Option<&'t JsString>,
    ) {
        let hasher = &self.hasher;
        let hash = Self::hash(hasher, wire_id);
        let same = |&i: &I| i != id && wire_of(i).is_some_and(|w| w == wire_id);
        match self.index.find_entry(hash, same) {
            Ok(mut older) => *older.get_mut() = id,
            Err(_) => {
                self.index.insert_unique(hash, id, |&i| {
                    wire_of(i).map_or(0, |w| Self::hash(hasher, w))
                });
            }
        }
    }

    /// Forgets `id` (whose envelope id is `wire_id`) if it is indexed.
    fn remove(&mut self, wire_id: &JsString, id: I) {
        let hash = Self::hash(&self.hasher, wire_id);
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == id) {
            entry.remove();
        }
    }

    fn clear(&mut self) {
        self.index.clear();
        // Empty: nothing is rehashed.
        self.index.shrink_to(KEPT_CAPACITY, |_| 0);
    }

    /// [`shrink`] for the index.
    fn trim<'t>(&mut self, wire_of: impl Fn(I) -> Option<&'t JsString>) {
        if let Some(capacity) = shrunk_capacity(self.index.len(), self.index.capacity()) {
            let hasher = &self.hasher;
            self.index.shrink_to(capacity, |&i| {
                wire_of(i).map_or(0, |w| Self::hash(hasher, w))
            });
        }
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.index.capacity()
    }
}

impl Pending {
    /// An empty table; `hasher` keys the lookup by response id (peer-chosen bytes).
    pub fn new(hasher: SeededState) -> Self {
        Self {
            calls: HashMap::with_hasher(CounterState),
            by_wire: WireIndex::new(hasher),
            deadlines: Deadlines::default(),
            next: 0,
        }
    }

    /// A fresh handle (also used for calls refused before they were sent).
    pub fn allocate(&mut self) -> RpcId {
        self.next += 1;
        RpcId(self.next)
    }

    /// Records a call made at `now` with `timeout` (zero = none).
    pub fn insert(
        &mut self,
        id: RpcId,
        wire_id: JsString,
        to: String,
        rpc_type: String,
        now: Instant,
        timeout: Duration,
    ) {
        // A timeout too long to represent never fires.
        let deadline = (!timeout.is_zero())
            .then(|| now.checked_add(timeout))
            .flatten();
        if let Some(d) = deadline {
            self.drop_stale_deadlines();
            self.deadlines.push((d, id));
        }
        let calls = &self.calls;
        self.by_wire
            .insert(&wire_id, id, |id| calls.get(&id).map(|c| &c.wire_id));
        self.calls.insert(
            id,
            Call {
                wire_id,
                to,
                rpc_type,
                started: now,
                timeout,
            },
        );
    }

    /// The call a response id belongs to.
    pub fn find(&self, wire_id: &JsString) -> Option<(RpcId, &Call)> {
        let calls = &self.calls;
        let id = self
            .by_wire
            .find(wire_id, |id| calls.get(&id).map(|c| &c.wire_id))?;
        calls.get(&id).map(|c| (id, c))
    }

    /// Takes a call out of the table.
    pub fn remove(&mut self, id: RpcId) -> Option<Call> {
        let call = self.calls.remove(&id)?;
        self.by_wire.remove(&call.wire_id, id);
        // Ids are never reused: an entry whose call is gone is stale.
        while let Some((_, first)) = self.deadlines.peek()
            && !self.calls.contains_key(&first)
        {
            self.deadlines.pop();
        }
        self.drop_stale_deadlines();
        Some(call)
    }

    /// Gives back the memory a burst of calls left behind. Called on a slow timer
    /// (the keepalive), not per call: a client making bursts back to back keeps its
    /// tables rather than regrowing them each time.
    pub fn trim(&mut self) {
        shrink(&mut self.calls);
        let calls = &self.calls;
        self.by_wire.trim(|id| calls.get(&id).map(|c| &c.wire_id));
        if let Some(capacity) = shrunk_capacity(self.deadlines.len(), self.deadlines.capacity()) {
            self.deadlines.shrink_to(capacity);
        }
    }

    /// Rebuilds the deadlines from the live calls once ended ones would outnumber
    /// them: each rebuild follows at least as many endings as it keeps entries.
    fn drop_stale_deadlines(&mut self) {
        if self.deadlines.len() >= 2 * self.calls.len() + STALE_DEADLINES {
            let calls = &self.calls;
            self.deadlines.retain(|id| calls.contains_key(&id));
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|(d, _)| d)
    }

    /// The first call whose deadline is at or before `now`.
    pub fn expired(&self, now: Instant) -> Option<RpcId> {
        self.deadlines
            .peek()
            .filter(|(d, _)| *d <= now)
            .map(|(_, id)| id)
    }

    /// Takes every call, oldest first.
    pub fn take_all(&mut self) -> Vec<(RpcId, Call)> {
        self.by_wire.clear();
        self.deadlines.clear();
        self.deadlines.shrink_to(KEPT_CAPACITY);
        let mut calls: Vec<_> = self.calls.drain().collect();
        self.calls.shrink_to(KEPT_CAPACITY);
        calls.sort_unstable_by_key(|(id, _)| *id);
        calls
    }

    /// Calls awaiting a response.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// An inbound request the application is handling.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The request's envelope id, echoed by the response.
    pub wire_id: JsString,
    /// The caller's authenticated kind (the response's `to`).
    pub from: Option<JsString>,
    /// The RPC type.
    pub rpc_type: String,
    /// Cancelled or orphaned: the handler's answer will be suppressed.
    pub aborted: bool,
}

/// Inbound requests in flight, until the application answers them. An aborted
/// request still counts against `max_concurrent_rpc` until its handler answers, as
/// the reference's in-flight counter does.
#[derive(Debug)]
pub(crate) struct Inbound {
    requests: HashMap<InboundRpcId, Request, CounterState>,
    by_wire: WireIndex<InboundRpcId>,
    next: u64,
}

impl Inbound {
    /// An empty table; `hasher` keys the lookup by request id (peer-chosen bytes).
    pub fn new(hasher: SeededState) -> Self {
        Self {
            requests: HashMap::with_hasher(CounterState),
            by_wire: WireIndex::new(hasher),
            next: 0,
        }
    }

    /// Registers a request for the application.
    pub fn insert(
        &mut self,
        wire_id: JsString,
        from: Option<JsString>,
        rpc_type: String,
    ) -> InboundRpcId {
        self.next += 1;
        let id = InboundRpcId(self.next);
        let requests = &self.requests;
        self.by_wire
            .insert(&wire_id, id, |id| requests.get(&id).map(|r| &r.wire_id));
        self.requests.insert(
            id,
            Request {
                wire_id,
                from,
                rpc_type,
                aborted: false,
            },
        );
        id
    }

    /// The request with envelope id `wire_id`, for `rpc.cancel`.
    pub fn find_mut(&mut self, wire_id: &JsString) -> Option<(InboundRpcId, &mut Request)> {
        let requests = &self.requests;
        let id = self
            .by_wire
            .find(wire_id, |id| requests.get(&id).map(|r| &r.wire_id))?;
        self.requests.get_mut(&id).map(|r| (id, r))
    }

    /// Takes a request out (the application answered).
    pub fn remove(&mut self, id: InboundRpcId) -> Option<Request> {
        let r = self.requests.remove(&id)?;
        self.by_wire.remove(&r.wire_id, id);
        Some(r)
    }

    /// [`Pending::trim`] for the requests table.
    pub fn trim(&mut self) {
        shrink(&mut self.requests);
        let requests = &self.requests;
        self.by_wire
            .trim(|id| requests.get(&id).map(|r| &r.wire_id));
    }

    /// Marks every live request aborted, returning those newly aborted, oldest first.
    pub fn abort_all(&mut self) -> Vec<(InboundRpcId, Request)> {
        let mut out = Vec::new();
        for (id, r) in &mut self.requests {
            if !r.aborted {
                r.aborted = true;
                out.push((*id, r.clone()));
            }
        }
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }

    /// Handlers in flight (the reference's `inFlightRpc`).
    pub fn len(&self) -> usize {
        self.requests.len()
    }
}

/// The wire body answering a request, and the real message of an error that was
/// sanitised (for the local `RpcHandlerError` event).
pub(crate) fn response_body(
    reply: Result<Option<Value>, HandlerError>,
    expose_all: bool,
) -> (RpcResponse, Option<String>) {
    const NOT_SERIALIZABLE: &str = "RPC handler returned a non-serializable result";
    match reply {
        Ok(result) => {
            if let Some(v) = &result
                && check_json_safe(v).is_err()
            {
                return (
                    RpcResponse::err("RPC_RESULT_NOT_SERIALIZABLE", NOT_SERIALIZABLE, None),
                    None,
                );
            }
            (RpcResponse::ok(result), None)
        }
        Err(HandlerError::NotSerializable) => (
            RpcResponse::err("RPC_RESULT_NOT_SERIALIZABLE", NOT_SERIALIZABLE, None),
            None,
        ),
        Err(e @ HandlerError::UnknownType(_)) => {
            (RpcResponse::err(e.code(), &e.to_string(), None), None)
        }
        Err(HandlerError::Failed {
            code,
            message,
            data,
            expose,
        }) if expose || expose_all => {
            // Data that would not arrive intact is stripped; the deliberate message
            // and code still reach the caller.
            let data = data.filter(|d| check_json_safe(d).is_ok());
            let code = code.unwrap_or_else(|| "RPC_HANDLER_ERROR".to_owned());
            (RpcResponse::err(&code, &message, data), None)
        }
        Err(HandlerError::Panicked) if expose_all => (
            RpcResponse::err("RPC_HANDLER_ERROR", "RPC handler panicked", None),
            None,
        ),
        Err(e) => (
            RpcResponse::err("RPC_HANDLER_ERROR", "Internal handler error", None),
            Some(e.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call to `w` of type `x` with wire id `wire`, made at `now`.
    fn call(p: &mut Pending, wire: &str, now: Instant, timeout: Duration) -> RpcId {
        let id = p.allocate();
        p.insert(id, wire.into(), "w".into(), "x".into(), now, timeout);
        id
    }

    fn text(r: &RpcResponse) -> String {
        String::from_utf8_lossy(&r.data.as_ref().map(Value::to_canonical).unwrap_or_default())
            .into_owned()
    }

    #[test]
    fn answers_are_sanitised_like_the_reference() {
        let (r, hidden) = response_body(Ok(None), false);
        assert_eq!((text(&r), hidden), (r#"{"ok":true}"#.to_owned(), None));
        let (r, hidden) = response_body(Err(HandlerError::internal("db down")), false);
        assert_eq!(
            text(&r),
            r#"{"code":"RPC_HANDLER_ERROR","error":"Internal handler error","ok":false}"#
        );
        assert_eq!(hidden.as_deref(), Some("db down"));
        let (r, _) = response_body(Err(HandlerError::internal("db down")), true);
        assert_eq!(
            text(&r),
            r#"{"code":"RPC_HANDLER_ERROR","error":"db down","ok":false}"#
        );
        let e = HandlerError::exposed("E_X", "nope").with_data(Value::Array(vec![
            Value::Number(1.0),
            Value::Number(f64::NAN),
        ]));
        let (r, _) = response_body(Err(e), false);
        assert_eq!(text(&r), r#"{"code":"E_X","error":"nope","ok":false}"#);
        let (r, _) = response_body(Ok(Some(Value::Number(1e300 * 1e300))), false);
        assert_eq!(
            text(&r),
            r#"{"code":"RPC_RESULT_NOT_SERIALIZABLE","error":"RPC handler returned a non-serializable result","ok":false}"#
        );
        let (r, _) = response_body(Err(HandlerError::UnknownType("x.y".into())), false);
        assert_eq!(
            text(&r),
            r#"{"code":"RPC_UNKNOWN_TYPE","error":"Unknown rpcType: x.y","ok":false}"#
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a base for simulated time
    fn pending_deadlines_come_out_in_order() {
        let t0 = Instant::now();
        let mut p = Pending::new(SeededState::new(1));
        let a = call(&mut p, "a", t0, Duration::from_millis(50));
        let b = call(&mut p, "b", t0, Duration::from_millis(10));
        call(&mut p, "c", t0, Duration::ZERO);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(p.expired(t0 + Duration::from_millis(9)), None);
        assert_eq!(p.expired(t0 + Duration::from_millis(10)), Some(b));
        assert!(p.remove(b).is_some());
        assert_eq!(p.find(&"a".into()).map(|(id, _)| id), Some(a));
        assert_eq!(p.take_all().len(), 2);
        assert!(p.is_empty() && p.next_deadline().is_none());
    }

    /// Entries come out earliest first however they went in: in order (the queue),
    /// out of order (the heap), or mixed.
    #[test]
    #[allow(clippy::disallowed_methods)] // a base for simulated time
    fn deadlines_come_out_earliest_first() {
        let t0 = Instant::now();
        let mut rng = crate::seeded::Rng::new(11);
        let mut d = Deadlines::default();
        let mut all = Vec::new();
        for i in 0..2000u64 {
            let ms = match rng.next_u64() % 4 {
                0 => rng.next_u64() % 3000,
                _ => i,
            };
            let entry = (t0 + Duration::from_millis(ms), RpcId(i));
            d.push(entry);
            all.push(entry);
            if rng.next_u64().is_multiple_of(5) {
                all.sort();
                assert_eq!(d.peek(), Some(all.remove(0)));
                d.pop();
            }
        }
        assert!(!d.heap.is_empty() && !d.queue.is_empty());
        all.sort();
        let mut out = Vec::new();
        while let Some(first) = d.peek() {
            out.push(first);
            d.pop();
        }
        assert_eq!(out, all);
        assert_eq!(d.len(), 0);
    }

    /// Deadlines come due in order whatever ended before them, and the entries
    /// of ended calls stay bounded by the live ones.
    #[test]
    #[allow(clippy::disallowed_methods)] // a base for simulated time
    fn deadlines_stay_ordered_and_bounded_as_calls_end() {
        let t0 = Instant::now();
        let mut p = Pending::new(SeededState::new(5));
        let mut rng = crate::seeded::Rng::new(6);
        let mut live = std::collections::BTreeMap::new();
        for i in 0..5000u64 {
            // Mostly one default timeout, now and then a shorter or longer one.
            let ms = match rng.next_u64() % 10 {
                0 => 5 + rng.next_u64() % 50,
                1 => 10_000,
                _ => 1000,
            };
            let now = t0 + Duration::from_millis(i);
            let id = call(&mut p, &format!("id-{i}"), now, Duration::from_millis(ms));
            live.insert(id, now + Duration::from_millis(ms));
            // Most calls end soon, in no particular order.
            if !rng.next_u64().is_multiple_of(4) {
                let ended = *live
                    .keys()
                    .nth((rng.next_u64() % live.len() as u64) as usize)
                    .expect("one");
                assert!(p.remove(ended).is_some());
                live.remove(&ended);
            }
            assert!(p.deadlines.len() <= 2 * p.len() + STALE_DEADLINES + 1);
            let earliest = live.iter().map(|(id, d)| (*d, *id)).min();
            assert_eq!(p.next_deadline(), earliest.map(|(d, _)| d));
        }
        let mut due: Vec<(Instant, RpcId)> = live.iter().map(|(id, d)| (*d, *id)).collect();
        due.sort();
        let end = t0 + Duration::from_secs(3600);
        let mut expired = Vec::new();
        while let Some(id) = p.expired(end) {
            expired.push((p.next_deadline().expect("a deadline"), id));
            assert!(p.remove(id).is_some());
        }
        assert_eq!(expired, due);
        assert!(p.is_empty() && p.next_deadline().is_none());
    }

    /// A burst of calls or requests leaves no lasting memory behind once it has
    /// ended: trimmed (as every keepalive tick does), the tables give back what they
    /// no longer need, and still find the calls that remain.
    #[test]
    #[allow(clippy::disallowed_methods)] // a base for simulated time
    fn tables_give_memory_back_after_a_burst() {
        let t0 = Instant::now();
        let mut p = Pending::new(SeededState::new(7));
        let mut inbound = Inbound::new(SeededState::new(8));
        let mut rng = crate::seeded::Rng::new(9);
        let mut calls = Vec::new();
        let mut requests = Vec::new();
        for _ in 0..20_000 {
            let wire = rng.uuid();
            let id = call(&mut p, &wire, t0, Duration::from_secs(30));
            calls.push((id, wire.clone()));
            requests.push((inbound.insert(wire.as_str().into(), None, "x".into()), wire));
        }
        let burst = (
            p.calls.capacity(),
            p.by_wire.capacity(),
            p.deadlines.capacity(),
        );
        assert!(burst.0 >= 20_000 && burst.1 >= 20_000 && burst.2 >= 20_000);
        // All but ten end, in an order unrelated to their deadlines.
        for (id, _) in calls.iter().skip(10).rev() {
            assert!(p.remove(*id).is_some());
        }
        for (id, _) in requests.iter().skip(10) {
            assert!(inbound.remove(*id).is_some());
        }
        // Ended calls leave few entries behind among the deadlines even before a trim.
        assert!(p.deadlines.len() <= 2 * p.len() + STALE_DEADLINES);
        p.trim();
        inbound.trim();
        let kept = 2 * KEPT_CAPACITY;
        assert!(p.calls.capacity() <= kept, "{}", p.calls.capacity());
        assert!(p.by_wire.capacity() <= kept, "{}", p.by_wire.capacity());
        assert!(p.deadlines.capacity() <= kept, "{}", p.deadlines.capacity());
        assert!(inbound.requests.capacity() <= kept);
        assert!(inbound.by_wire.capacity() <= kept);
        for (id, wire) in &calls[..10] {
            assert_eq!(
                p.find(&wire.as_str().into()).map(|(found, _)| found),
                Some(*id)
            );
        }
        for (id, wire) in &requests[..10] {
            assert_eq!(
                inbound
                    .find_mut(&wire.as_str().into())
                    .map(|(found, _)| found),
                Some(*id)
            );
        }
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(30)));
        assert_eq!(p.take_all().len(), 10);
        assert!(p.calls.capacity() <= kept && p.deadlines.capacity() <= kept);
    }

    /// Calls failed at a disconnect and requests aborted by one come out oldest
    /// first, though the tables are hashed; responses and cancels find theirs by id,
    /// whichever form the id takes.
    #[test]
    #[allow(clippy::disallowed_methods)] // a base for simulated time
    fn tables_find_by_wire_id_and_empty_oldest_first() {
        let t0 = Instant::now();
        let mut p = Pending::new(SeededState::new(2));
        let mut inbound = Inbound::new(SeededState::new(3));
        let mut rng = crate::seeded::Rng::new(4);
        let mut ids = Vec::new();
        for i in 0..200 {
            let wire = if i % 3 == 0 {
                format!("id-{i}")
            } else {
                rng.uuid()
            };
            let id = call(&mut p, &wire, t0, Duration::ZERO);
            inbound.insert(wire.as_str().into(), None, "x".into());
            ids.push((id, wire));
        }
        for (id, wire) in &ids {
            assert_eq!(
                p.find(&wire.as_str().into()).map(|(found, _)| found),
                Some(*id)
            );
            let (_, request) = inbound.find_mut(&wire.as_str().into()).expect("request");
            assert_eq!(request.wire_id, wire.as_str());
        }
        assert!(p.find(&ids[1].1.to_uppercase().as_str().into()).is_none());
        let taken: Vec<RpcId> = p.take_all().into_iter().map(|(id, _)| id).collect();
        assert_eq!(taken, ids.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        let aborted: Vec<u64> = inbound.abort_all().iter().map(|(id, _)| id.0).collect();
        assert_eq!(aborted, (1..=200).collect::<Vec<_>>());
        assert!(inbound.abort_all().is_empty());
    }

    /// A peer may reuse a request id: the latest request with it is the one an
    /// `rpc.cancel` finds, answering the older one leaves the newer findable, and
    /// answering the newer leaves nothing to find (as with a map from id to request).
    #[test]
    fn a_reused_request_id_finds_the_latest_request() {
        let mut inbound = Inbound::new(SeededState::new(12));
        let wire: JsString = "same".into();
        let older = inbound.insert(wire.clone(), None, "a".into());
        let newer = inbound.insert(wire.clone(), None, "b".into());
        assert_eq!(inbound.find_mut(&wire).map(|(id, _)| id), Some(newer));
        assert!(inbound.remove(older).is_some());
        assert_eq!(inbound.find_mut(&wire).map(|(id, _)| id), Some(newer));
        let third = inbound.insert(wire.clone(), None, "c".into());
        assert!(inbound.remove(third).is_some());
        assert_eq!(inbound.find_mut(&wire).map(|(id, _)| id), None);
        assert!(inbound.remove(newer).is_some());
        assert!(inbound.by_wire.index.is_empty());
    }

    /// The index finds every live call among thousands as calls come and go, and
    /// nothing once they are gone.
    #[test]
    #[allow(clippy::disallowed_methods)] // a base for simulated time
    fn the_wire_index_keeps_up_with_calls_coming_and_going() {
        let t0 = Instant::now();
        let mut p = Pending::new(SeededState::new(13));
        let mut rng = crate::seeded::Rng::new(14);
        let mut live = std::collections::BTreeMap::new();
        for round in 0..12_000u64 {
            let wire = rng.uuid();
            let id = call(&mut p, &wire, t0, Duration::from_secs(30));
            live.insert(id, wire);
            if round % 3 != 0 {
                let k = (rng.next_u64() % live.len() as u64) as usize;
                let (&gone, _) = live.iter().nth(k).expect("one");
                let wire = live.remove(&gone).expect("live");
                assert!(p.remove(gone).is_some());
                assert!(p.find(&wire.as_str().into()).is_none());
            }
        }
        for (id, wire) in &live {
            assert_eq!(p.find(&wire.as_str().into()).map(|(f, _)| f), Some(*id));
        }
        assert_eq!(p.by_wire.index.len(), live.len());
    }
}
