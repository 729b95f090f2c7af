//! The simulated world: an event queue in virtual time, the network between the
//! clients and the hub, the applications on both sides, and the model the outputs are
//! checked against after every step.
//!
//! Every message the workload sends carries a tag `{s: sender index, q: sequence}`,
//! so whoever receives it can tell who really sent it, whether it saw it before and
//! whether it arrived in order.

mod clients;
mod end;
mod hub_side;
mod workload;

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use link_sansio::client::{
    self, ClientConfig, ClientError, ClientEvent, Connection, HandlerError, InboundRpcId, RpcError,
    RpcId,
};
use link_sansio::hub::{
    self, AclDecision, AclHooks, AclOp, ConnId, HubConfig, HubEvent, HubState, Keys, ServerReply,
};
use link_sansio::seeded::Rng;
use link_sansio::time::Now;
use link_sansio::wire::{DropReason, Frame, Limits, Message, Object, Value};

use crate::Outcome;
use crate::scenario::{KeyMode, Sabotage, Scenario, between, chance};

/// Virtual time in µs since the start of the run.
type T = u64;

const MS: T = 1_000;
/// Wall clock of the hub at the start of every run (ms since the epoch).
const BASE_WALL_MS: i64 = 1_750_000_000_000;
/// A run that needs more steps than this is stuck in a loop.
const MAX_STEPS: u64 = 3_000_000;
/// A graceful hub shutdown must be complete this long after `Input::Drain`.
const DRAIN_LIMIT: T = 10_000 * MS;
/// Outputs one drain may produce before it counts as a livelock.
const MAX_DRAIN: usize = 200_000;
const TOPICS: [&str; 3] = ["t0", "t1", "t2"];
/// Denied by the simulated ACL hooks (topic, direct type and RPC type).
const SECRET_TOPIC: &str = "secret";
const FORBIDDEN: &str = "forbidden";
const GHOST: &str = "ghost";
const SERVER: &str = "server";

/// Counters of what a run exercised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub steps: u64,
    /// Frames the hub and the clients transmitted.
    pub frames: u64,
    /// RPCs issued by the workload (each settled exactly once).
    pub rpcs: u64,
    /// RPCs that settled with a result.
    pub rpc_ok: u64,
    /// RPCs that settled by timeout.
    pub rpc_timeouts: u64,
    /// Messages (topic, direct) delivered to an application.
    pub delivered: u64,
    /// Connections dropped by the network.
    pub drops: u64,
    /// Hub crashes.
    pub crashes: u64,
    /// Outbox overflows reported (hub and clients).
    pub overflows: u64,
    /// Peers displaced by a newer connection of their kind.
    pub displaced: u64,
    /// Probe messages checked at the end.
    pub probes: u64,
}

impl Stats {
    /// Adds another run's counters to these.
    pub fn add(&mut self, other: &Stats) {
        self.steps += other.steps;
        self.frames += other.frames;
        self.rpcs += other.rpcs;
        self.rpc_ok += other.rpc_ok;
        self.rpc_timeouts += other.rpc_timeouts;
        self.delivered += other.delivered;
        self.drops += other.drops;
        self.crashes += other.crashes;
        self.overflows += other.overflows;
        self.displaced += other.displaced;
        self.probes += other.probes;
    }
}

#[derive(Debug)]
enum Ev {
    ClientWake {
        c: usize,
        at: T,
    },
    ClientUp {
        c: usize,
        link: usize,
    },
    ClientFrame {
        c: usize,
        link: usize,
        text: String,
    },
    ClientDown {
        c: usize,
        link: usize,
        code: Option<u16>,
        reason: &'static str,
    },
    ClientPong {
        c: usize,
        link: usize,
    },
    ClientFlushed {
        c: usize,
        link: usize,
        bytes: usize,
    },
    Act {
        c: usize,
    },
    Respond {
        c: usize,
        request: InboundRpcId,
        reply: Result<Option<Value>, HandlerError>,
    },
    Start {
        c: usize,
    },
    HubWake {
        epoch: u64,
        at: T,
    },
    HubOpened {
        link: usize,
    },
    HubFrame {
        link: usize,
        text: String,
    },
    HubClosed {
        link: usize,
        code: Option<u16>,
        reason: &'static str,
    },
    HubPong {
        link: usize,
    },
    HubFlushed {
        link: usize,
        bytes: usize,
    },
    HubKey {
        epoch: u64,
        request: hub::KeyRequestId,
        key: Option<String>,
    },
    HubServerRpc {
        epoch: u64,
        call: hub::ServerCallId,
        reply: ServerReply,
    },
    HubAcl {
        epoch: u64,
        check: hub::AclCheckId,
        decision: AclDecision,
    },
    DropLink,
    Crash {
        down_ms: u64,
    },
    Restart,
    EndChaos,
    Check,
    Final,
    Shutdown,
    ClockJump {
        who: Option<usize>,
        jump_ms: i64,
    },
}

impl Ev {
    fn code(&self) -> u8 {
        match self {
            Ev::ClientWake { .. } => 1,
            Ev::ClientUp { .. } => 2,
            Ev::ClientFrame { .. } => 3,
            Ev::ClientDown { .. } => 4,
            Ev::ClientPong { .. } => 5,
            Ev::ClientFlushed { .. } => 6,
            Ev::Act { .. } => 7,
            Ev::Respond { .. } => 8,
            Ev::Start { .. } => 9,
            Ev::HubWake { .. } => 10,
            Ev::HubOpened { .. } => 11,
            Ev::HubFrame { .. } => 12,
            Ev::HubClosed { .. } => 13,
            Ev::HubPong { .. } => 14,
            Ev::HubFlushed { .. } => 15,
            Ev::HubKey { .. } => 16,
            Ev::HubServerRpc { .. } => 17,
            Ev::HubAcl { .. } => 18,
            Ev::DropLink => 19,
            Ev::Crash { .. } => 20,
            Ev::Restart => 21,
            Ev::EndChaos => 22,
            Ev::Check => 23,
            Ev::Final => 24,
            Ev::Shutdown => 25,
            Ev::ClockJump { .. } => 26,
        }
    }
}

struct Scheduled {
    at: T,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap pops the largest: invert to pop the earliest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// FNV-1a, so the trace hash is the same on every platform and run.
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// One WebSocket between a client and one incarnation of the hub.
#[derive(Debug, Default)]
struct Link {
    client: usize,
    epoch: u64,
    /// Both directions dead: nothing in flight arrives any more.
    broken: bool,
    /// The client has been told it is gone (or closed it): nothing more to report.
    client_gone: bool,
    /// The hub has been given `Closed` (or crashed).
    hub_gone: bool,
    /// The hub asked to close or terminate it: it must not transmit on it again.
    hub_closing: bool,
    /// The hub answered the hello on it: it may carry traffic.
    acked: bool,
    /// Displaced by a newer socket of the same kind.
    replaced: bool,
    /// The authenticated kind, per the hub's events.
    kind: Option<String>,
    up_free: T,
    down_free: T,
    up_last: T,
    down_last: T,
}

#[derive(Debug)]
struct Call {
    to: String,
    rpc_type: String,
    seq: u64,
    timeout: Option<Duration>,
    sent_at: T,
    probe: bool,
}

struct Peer {
    kind: String,
    conn: Connection,
    link: Option<usize>,
    /// The transport the client asked for has opened.
    up: bool,
    wake: Option<T>,
    skew_ms: i64,
    beyond_window: bool,
    ready: bool,
    stopped: bool,
    displaced: bool,
    /// Configured with the wrong secret: the hub must never let it in.
    bad_key: bool,
    subs: BTreeSet<String>,
    /// A `topic.subscribe` of this peer was refused for lack of room in the hub's ACL
    /// backlog, reported by an overflow event: the hub may not know of all its
    /// subscriptions until it reconnects.
    subs_lost: bool,
    pending: BTreeMap<u64, Call>,
    settled: BTreeSet<u64>,
    /// Sequence numbers of directs and publishes accepted but not yet transmitted.
    accepted: BTreeSet<u64>,
    last_tx_seq: u64,
    next_seq: u64,
    status_n: u64,
    /// The last status `push_status` accepted.
    status_sent: u64,
    /// `status_sent` when the settle period ended: everyone must have seen it by the end.
    status_floor: u64,
}

struct Hub {
    state: HubState,
    wake: Option<T>,
}

pub(crate) struct World {
    seed: u64,
    sc: Scenario,
    rng: Rng,
    base: Instant,
    now: T,
    queue: BinaryHeap<Scheduled>,
    next_seq: u64,
    hash: Fnv,
    stats: Stats,
    violation: Option<String>,
    chaos: bool,
    /// Print every step to stderr (for reading a failing seed).
    verbose: bool,

    hub: Option<Hub>,
    epoch: u64,
    links: Vec<Link>,
    peers: Vec<Peer>,
    limits: Limits,

    /// The hub's view, rebuilt from its events: kind → current socket.
    kind_conn: BTreeMap<String, usize>,
    /// The hub's subscriptions by kind, from its events.
    hub_subs: BTreeMap<String, BTreeSet<String>>,
    /// Every topic a kind subscribed to since it connected: a message queued in the
    /// hub's outbox while subscribed may still leave after an unsubscribe (the client
    /// then filters it out).
    hub_subs_ever: BTreeMap<String, BTreeSet<String>>,
    /// Server RPCs the hub handed to the application and not yet answered.
    server_calls: BTreeSet<u64>,

    /// (recipient kind, class, sender, seq) already delivered to an application.
    delivered: BTreeSet<(String, u8, usize, u64)>,
    /// (recipient, sender) → last seq delivered, for the order check.
    order: BTreeMap<(usize, usize), u64>,
    /// Probe deliveries still expected: (recipient kind, sender, seq).
    expected: BTreeSet<(String, usize, u64)>,
    /// Probe RPCs still expected to succeed: (caller, rpc id).
    expected_rpcs: BTreeSet<(usize, u64)>,
    /// `RpcComplete` events for calls `rpc()` refused, still owed in this drain.
    orphans_owed: usize,
    /// The hub's wall-clock offset (ms); it jumps like the clients' do.
    hub_skew_ms: i64,
    /// `Input::Drain` was given to the hub: it accepts no new sockets.
    draining: bool,
    /// `HubEvent::Drained` seen.
    drained_events: u32,
    /// A frame held back by `Sabotage::ReorderFrames`.
    held: Option<(usize, String)>,
}

fn tag(sender: usize, seq: u64, kind: &str, padding: usize) -> Value {
    let mut o = Object::new();
    o.insert("s", Value::Number(sender as f64));
    o.insert("q", Value::Number(seq as f64));
    o.insert("k", Value::from(kind));
    if padding > 0 {
        o.insert("p", Value::from("x".repeat(padding)));
    }
    Value::Object(o)
}

fn untag(v: Option<&Value>) -> Option<(usize, u64)> {
    let o = v?.as_object()?;
    let s = o.get("s")?.as_f64()?;
    let q = o.get("q")?.as_f64()?;
    Some((s as usize, q as u64))
}

fn ceil_us(base: Instant, at: Instant) -> T {
    let d = at.saturating_duration_since(base);
    d.as_nanos().div_ceil(1_000) as T
}

impl World {
    pub(crate) fn new(seed: u64, sc: Scenario, verbose: bool) -> Self {
        let limits = Limits {
            replay_window_ms: sc.replay_window_ms,
            ..Limits::default()
        };
        let mut w = World {
            seed,
            rng: Rng::new(seed),
            base: Instant::now(),
            now: 0,
            queue: BinaryHeap::new(),
            next_seq: 0,
            hash: Fnv(0xcbf2_9ce4_8422_2325),
            stats: Stats::default(),
            violation: None,
            chaos: true,
            verbose,
            hub: None,
            epoch: 0,
            links: Vec::new(),
            peers: Vec::new(),
            limits,
            kind_conn: BTreeMap::new(),
            hub_subs: BTreeMap::new(),
            hub_subs_ever: BTreeMap::new(),
            server_calls: BTreeSet::new(),
            delivered: BTreeSet::new(),
            order: BTreeMap::new(),
            expected: BTreeSet::new(),
            expected_rpcs: BTreeSet::new(),
            orphans_owed: 0,
            held: None,
            hub_skew_ms: 0,
            draining: false,
            drained_events: 0,
            sc,
        };
        for c in 0..w.sc.clients {
            w.add_peer(c, format!("c{c}"));
        }
        if w.sc.impostor_at_ms.is_some() {
            let idx = w.sc.clients;
            w.add_peer(idx, "c0".to_owned());
        }
        w
    }

    fn add_peer(&mut self, idx: usize, kind: String) {
        let sc = &self.sc;
        let bad_key = self.sc.bad_key == Some(idx);
        let mut secret = self.key_of(&kind);
        if bad_key {
            secret.push_str("-wrong");
        }
        let mut cfg = ClientConfig::new("ws://hub.sim/", kind.clone(), secret);
        cfg.pid = Some(1000 + idx as u32);
        cfg.hash_algo = sc.hash_algo;
        cfg.limits = self.limits.clone();
        cfg.max_buffered_bytes = sc.client_max_buffered;
        cfg.max_outbox_bytes = sc.client_max_outbox;
        cfg.default_rpc_timeout = Duration::from_millis(sc.rpc_timeout_ms);
        cfg.make_status = true;
        cfg.status_interval = Duration::from_millis(sc.status_interval_ms);
        cfg.keepalive_interval = Duration::from_millis(sc.client_keepalive_ms);
        cfg.reconnect_initial = Duration::from_millis(sc.reconnect_initial_ms);
        cfg.reconnect_max = Duration::from_millis(sc.reconnect_max_ms);
        cfg.rpc_handlers = ["echo", "slow", "fail", FORBIDDEN]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let conn = match Connection::new(cfg, self.seed.wrapping_add(idx as u64 * 7919)) {
            Ok(c) => c,
            Err(e) => {
                self.fail(format!("client {idx}: configuration refused: {e}"));
                return;
            }
        };
        let skew_ms = sc.skew_ms[idx];
        self.peers.push(Peer {
            kind,
            conn,
            link: None,
            up: false,
            wake: None,
            skew_ms,
            beyond_window: sc.replay_window_ms > 0
                && skew_ms.unsigned_abs() > sc.replay_window_ms / 2,
            ready: false,
            stopped: false,
            displaced: false,
            bad_key,
            subs: BTreeSet::new(),
            subs_lost: false,
            pending: BTreeMap::new(),
            settled: BTreeSet::new(),
            accepted: BTreeSet::new(),
            last_tx_seq: 0,
            next_seq: 0,
            status_n: 0,
            status_sent: 0,
            status_floor: 0,
        });
    }

    fn key_of(&self, kind: &str) -> String {
        match self.sc.keys {
            KeyMode::Shared => "shared-sim-secret".to_owned(),
            KeyMode::PerKind | KeyMode::Resolver => format!("key-{kind}-{}", self.seed % 997),
        }
    }

    fn fail(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("t={}ms: {what}", self.now / MS));
        }
    }

    fn at(&mut self, at: T, ev: Ev) {
        self.next_seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.next_seq,
            ev,
        });
    }

    fn after(&mut self, delay: T, ev: Ev) {
        let at = self.now + delay;
        self.at(at, ev);
    }

    fn wall(&self, skew_ms: i64) -> Now {
        let wall = BASE_WALL_MS + (self.now / MS) as i64 + skew_ms;
        Now::new(self.base + Duration::from_micros(self.now), wall as u64)
    }

    fn client_now(&self, c: usize) -> Now {
        self.wall(self.peers[c].skew_ms)
    }

    fn hub_now(&self) -> Now {
        self.wall(self.hub_skew_ms)
    }

    /// A hook's answer time: quick, or (with `slow_hooks`, sometimes, while the
    /// faults last) seconds.
    fn hook_delay(&mut self, quick: T) -> T {
        if self.sc.slow_hooks && self.chaos && chance(&mut self.rng, 0.1) {
            self.rand(500 * MS, 3_000 * MS)
        } else {
            self.rand(0, quick)
        }
    }

    fn latency(&mut self, c: usize) -> T {
        let p = self.sc.links[c];
        p.latency_us + between(&mut self.rng, 0, p.jitter_us)
    }

    fn rand(&mut self, lo: T, hi: T) -> T {
        between(&mut self.rng, lo, hi)
    }

    pub(crate) fn run(mut self) -> Outcome {
        self.setup();
        while let Some(s) = self.queue.pop() {
            if self.violation.is_some() {
                break;
            }
            self.now = s.at;
            self.stats.steps += 1;
            if self.stats.steps > MAX_STEPS {
                self.fail("too many steps: the run does not settle".to_owned());
                break;
            }
            self.hash.write_u64(s.at);
            self.hash.write_u8(s.ev.code());
            if self.verbose {
                eprintln!("{:>10.3}ms {:?}", s.at as f64 / 1e3, s.ev);
            }
            self.step(s.ev);
        }
        Outcome {
            seed: self.seed,
            trace_hash: self.hash.finish(),
            violation: self.violation,
            stats: self.stats,
        }
    }

    fn setup(&mut self) {
        self.start_hub();
        for c in 0..self.sc.clients {
            let d = self.rand(0, 50 * MS);
            self.after(d, Ev::Start { c });
            let d = self.rand(100 * MS, 400 * MS);
            self.after(d, Ev::Act { c });
        }
        if let Some(at) = self.sc.impostor_at_ms {
            let c = self.sc.clients;
            self.at(at * MS, Ev::Start { c });
            self.at(at * MS + 100 * MS, Ev::Act { c });
        }
        if let Some(every) = self.sc.drop_every_ms {
            let d = self.rand(0, 2 * every * MS);
            self.after(d, Ev::DropLink);
        }
        for (at, who, jump_ms) in self.sc.clock_jumps.clone() {
            if who.is_none_or(|c| c < self.peers.len()) {
                self.at(at * MS, Ev::ClockJump { who, jump_ms });
            }
        }
        for (at, down_ms) in self.sc.crashes.clone() {
            self.at(at * MS, Ev::Crash { down_ms });
        }
        let chaos = self.sc.chaos_ms * MS;
        let check = chaos + self.sc.settle_ms * MS;
        self.at(chaos, Ev::EndChaos);
        self.at(check, Ev::Check);
        self.at(check + self.sc.probe_ms * MS, Ev::Final);
    }

    fn hub_config(&self) -> HubConfig {
        let sc = &self.sc;
        let keys = match sc.keys {
            KeyMode::Shared => Keys::Shared(self.key_of("")),
            KeyMode::PerKind => Keys::PerKind(
                self.peers
                    .iter()
                    .map(|p| (p.kind.clone(), self.key_of(&p.kind)))
                    .collect(),
            ),
            KeyMode::Resolver => Keys::Resolver,
        };
        let mut cfg = HubConfig::new(keys);
        cfg.limits = self.limits.clone();
        cfg.max_buffered_bytes = sc.hub_max_buffered;
        cfg.max_outbox_bytes = sc.hub_max_outbox;
        cfg.keepalive_interval = Duration::from_millis(sc.hub_keepalive_ms);
        cfg.hello_timeout = Duration::from_millis(sc.hub_hello_timeout_ms);
        cfg.max_concurrent_rpc = sc.hub_max_concurrent_rpc;
        cfg.max_pending_sockets = sc.hub_max_pending;
        cfg.hash_algo = sc.hash_algo;
        cfg.message_events = sc.message_events;
        if sc.acl {
            cfg.acl = AclHooks {
                rpc: true,
                publish: true,
                subscribe: true,
                send: true,
            };
        }
        cfg
    }

    fn start_hub(&mut self) {
        self.epoch += 1;
        let seed = self.rng.next_u64();
        let mut state = HubState::new(self.hub_config(), seed, self.hub_now());
        for t in ["sim.echo", "sim.fail", "sim.slow", FORBIDDEN] {
            state.register_server_rpc(t);
        }
        self.hub = Some(Hub { state, wake: None });
        self.kind_conn.clear();
        self.hub_subs.clear();
        self.hub_subs_ever.clear();
        self.server_calls.clear();
        self.drain_hub();
    }
    // -------------------------------------------------------------------------
    // The event loop

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::ClientWake { c, at } => {
                if self.peers[c].wake == Some(at) {
                    self.peers[c].wake = None;
                    self.client_input(c, client::Input::Timeout);
                }
            }
            Ev::ClientUp { c, link } => {
                if self.client_owns(c, link) && !self.links[link].broken {
                    self.peers[c].up = true;
                    self.client_input(c, client::Input::TransportUp);
                }
            }
            Ev::ClientFrame { c, link, text } => {
                if self.client_owns(c, link) && !self.links[link].broken {
                    self.client_input(c, client::Input::Frame(text.as_bytes()));
                }
            }
            Ev::ClientDown {
                c,
                link,
                code,
                reason,
            } => {
                if self.client_owns(c, link) {
                    self.links[link].client_gone = true;
                    self.peers[c].link = None;
                    self.peers[c].up = false;
                    self.client_input(c, client::Input::TransportDown { code, reason });
                }
            }
            Ev::ClientPong { c, link } => {
                if self.client_owns(c, link) && !self.links[link].broken {
                    self.client_input(c, client::Input::Pong);
                }
            }
            Ev::ClientFlushed { c, link, bytes } => {
                if self.client_owns(c, link) && !self.links[link].broken {
                    self.client_input(c, client::Input::Flushed(bytes));
                }
            }
            Ev::Act { c } => self.act(c),
            Ev::Respond { c, request, reply } => {
                let now = self.client_now(c);
                self.peers[c].conn.respond(now, request, reply);
                self.drain_client(c);
            }
            Ev::Start { c } => {
                if self.peers[c].displaced {
                    return;
                }
                let now = self.client_now(c);
                self.peers[c].conn.start(now);
                self.drain_client(c);
            }
            Ev::HubWake { epoch, at } => {
                if epoch == self.epoch && self.hub.as_ref().is_some_and(|h| h.wake == Some(at)) {
                    if let Some(h) = &mut self.hub {
                        h.wake = None;
                    }
                    self.hub_input(hub::Input::Timeout);
                }
            }
            Ev::HubOpened { link } => {
                if self.hub_owns(link) && !self.links[link].broken {
                    self.hub_input(hub::Input::Opened {
                        conn: ConnId(link as u64),
                        remote: None,
                    });
                }
            }
            Ev::HubFrame { link, text } => {
                if self.hub_owns(link) && !self.links[link].broken {
                    self.hub_input(hub::Input::Frame {
                        conn: ConnId(link as u64),
                        bytes: text.as_bytes(),
                    });
                }
            }
            Ev::HubClosed { link, code, reason } => {
                if self.hub_owns(link) {
                    self.links[link].hub_gone = true;
                    self.hub_input(hub::Input::Closed {
                        conn: ConnId(link as u64),
                        code,
                        reason,
                    });
                }
            }
            Ev::HubPong { link } => {
                if self.hub_owns(link) && !self.links[link].broken {
                    self.hub_input(hub::Input::Pong {
                        conn: ConnId(link as u64),
                    });
                }
            }
            Ev::HubFlushed { link, bytes } => {
                if self.hub_owns(link) && !self.links[link].broken {
                    self.hub_input(hub::Input::Flushed {
                        conn: ConnId(link as u64),
                        bytes,
                    });
                }
            }
            Ev::HubKey {
                epoch,
                request,
                key,
            } => {
                if epoch == self.epoch && self.hub.is_some() {
                    self.hub_input(hub::Input::KeyResolved { request, key });
                }
            }
            Ev::HubServerRpc { epoch, call, reply } => {
                if epoch == self.epoch && self.hub.is_some() {
                    self.server_calls.remove(&call.0);
                    self.hub_input(hub::Input::ServerRpcDone { call, reply });
                }
            }
            Ev::HubAcl {
                epoch,
                check,
                decision,
            } => {
                if epoch == self.epoch && self.hub.is_some() {
                    self.hub_input(hub::Input::AclDecided { check, decision });
                }
            }
            Ev::DropLink => self.drop_link(),
            Ev::Crash { down_ms } => self.crash(down_ms),
            Ev::Restart => self.start_hub(),
            Ev::EndChaos => self.chaos = false,
            Ev::Check => self.check_settled(),
            Ev::Final => self.check_probes(),
            Ev::Shutdown => self.check_drained(),
            Ev::ClockJump { who, jump_ms } => match who {
                Some(c) => self.peers[c].skew_ms += jump_ms,
                None => self.hub_skew_ms += jump_ms,
            },
        }
    }

    fn client_owns(&self, c: usize, link: usize) -> bool {
        self.peers[c].link == Some(link) && !self.links[link].client_gone
    }

    fn hub_owns(&self, link: usize) -> bool {
        self.hub.is_some() && self.links[link].epoch == self.epoch && !self.links[link].hub_gone
    }

    // -------------------------------------------------------------------------
    // Faults

    fn drop_link(&mut self) {
        if !self.chaos {
            return;
        }
        let live: Vec<usize> = (0..self.links.len())
            .filter(|&l| {
                let k = &self.links[l];
                !k.broken && !k.client_gone && k.epoch == self.epoch
            })
            .collect();
        if !live.is_empty() {
            let l = live[self.rand(0, live.len() as u64 - 1) as usize];
            self.break_link(l, "link lost");
            self.stats.drops += 1;
        }
        if let Some(every) = self.sc.drop_every_ms {
            let d = self.rand(0, 2 * every * MS);
            self.after(d, Ev::DropLink);
        }
    }

    fn break_link(&mut self, l: usize, reason: &'static str) {
        self.links[l].broken = true;
        let c = self.links[l].client;
        let d = self.latency(c);
        self.after(
            d,
            Ev::ClientDown {
                c,
                link: l,
                code: Some(1006),
                reason,
            },
        );
        let d = self.latency(c);
        self.after(
            d,
            Ev::HubClosed {
                link: l,
                code: Some(1006),
                reason: "",
            },
        );
    }

    fn crash(&mut self, down_ms: u64) {
        if self.hub.is_none() {
            return;
        }
        self.stats.crashes += 1;
        self.hub = None;
        for l in 0..self.links.len() {
            if self.links[l].epoch == self.epoch && !self.links[l].broken {
                self.links[l].hub_gone = true;
                self.break_link(l, "hub crashed");
            }
        }
        self.after(down_ms * MS, Ev::Restart);
    }
}
