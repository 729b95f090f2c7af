//! The simulated world: an event queue in virtual time, the network between the
//! clients and the hub, the applications on both sides, and the model the outputs are
//! checked against after every step.
//!
//! Every message the workload sends carries a tag `{s: sender index, q: sequence}`,
//! so whoever receives it can tell who really sent it, whether it saw it before and
//! whether it arrived in order.

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

    // -------------------------------------------------------------------------
    // Clients

    fn client_input(&mut self, c: usize, input: client::Input<'_>) {
        let now = self.client_now(c);
        self.peers[c].conn.handle_input(now, input);
        self.drain_client(c);
    }

    fn drain_client(&mut self, c: usize) {
        let was_ready = self.peers[c].ready;
        let mut disconnected = false;
        let mut outputs = 0;
        loop {
            outputs += 1;
            if outputs > MAX_DRAIN {
                return self.fail(format!("client {c}: never stops producing outputs"));
            }
            let out = self.peers[c].conn.poll_output();
            if self.verbose && !matches!(out, client::Output::Timeout(_)) {
                eprintln!("            client {c} -> {out:?}");
            }
            match out {
                client::Output::Timeout(deadline) => {
                    let at = ceil_us(self.base, deadline).max(self.now + 1);
                    if self.peers[c].wake != Some(at) {
                        self.peers[c].wake = Some(at);
                        self.at(at, Ev::ClientWake { c, at });
                    }
                    break;
                }
                client::Output::Idle => break,
                client::Output::Connect { .. } => self.client_connect(c),
                client::Output::Transmit(text) => self.client_transmit(c, text),
                client::Output::Close { code, reason } => {
                    self.hash.write_u16(code);
                    self.hash.write(reason.as_bytes());
                    self.client_close(c, Some(code));
                }
                client::Output::Terminate => self.client_close(c, None),
                client::Output::Ping => {
                    if let Some(l) = self.peers[c].link
                        && self.peers[c].up
                        && !self.links[l].broken
                    {
                        let d = self.latency(c) * 2;
                        let at = (self.now + d).max(self.links[l].up_last);
                        self.at(at, Ev::ClientPong { c, link: l });
                    }
                }
                client::Output::Event(e) => {
                    if matches!(e, ClientEvent::Disconnected(_)) {
                        disconnected = true;
                    }
                    self.client_event(c, e);
                }
                other => self.fail(format!("client {c}: unexpected output {other:?}")),
            }
            if self.violation.is_some() {
                return;
            }
        }
        if self.orphans_owed > 0 {
            self.fail(format!(
                "client {c}: rpc() refused a call but emitted no RpcComplete for it"
            ));
        }
        // `start()` during a graceful stop takes effect when the stop ends: the
        // connection knows whether it is stopped, the application asks it.
        let stopped = self.peers[c].conn.health().stopped;
        self.peers[c].stopped = stopped;
        let p = &self.peers[c];
        if disconnected && !p.ready && !p.pending.is_empty() {
            let ids: Vec<_> = p.pending.keys().collect();
            self.fail(format!(
                "client {c}: link went down (was ready: {was_ready}) with RPCs still pending: {ids:?}"
            ));
            return;
        }
        let h = p.conn.health();
        // Subscription changes are queued even beyond the cap, one per topic.
        let changes = (TOPICS.len() + 1) * 320;
        if h.outbox_bytes > self.sc.client_max_outbox + changes {
            self.fail(format!(
                "client {c}: outbox {} bytes over its cap {}",
                h.outbox_bytes, self.sc.client_max_outbox
            ));
        } else if h.pending_rpcs != p.pending.len() {
            self.fail(format!(
                "client {c}: health says {} RPCs pending, the application has {}",
                h.pending_rpcs,
                p.pending.len()
            ));
        } else if !p.stopped && h.subscriptions != p.subs.len() {
            self.fail(format!(
                "client {c}: health says {} subscriptions, the application made {}",
                h.subscriptions,
                p.subs.len()
            ));
        }
    }

    fn client_connect(&mut self, c: usize) {
        let l = self.links.len();
        let epoch = self.epoch;
        self.links.push(Link {
            client: c,
            epoch,
            ..Link::default()
        });
        self.peers[c].link = Some(l);
        self.peers[c].up = false;
        let d = self.latency(c);
        if self.hub.is_some() && !self.draining {
            self.after(d, Ev::HubOpened { link: l });
            self.after(2 * d, Ev::ClientUp { c, link: l });
        } else {
            self.links[l].broken = true;
            self.links[l].hub_gone = true;
            self.after(
                d,
                Ev::ClientDown {
                    c,
                    link: l,
                    code: Some(1006),
                    reason: "connection refused",
                },
            );
        }
    }

    fn client_close(&mut self, c: usize, code: Option<u16>) {
        let Some(l) = self.peers[c].link.take() else {
            return self.fail(format!("client {c}: closed a transport it does not have"));
        };
        self.peers[c].up = false;
        self.links[l].client_gone = true;
        if self.links[l].broken {
            return;
        }
        let d = self.latency(c);
        match code {
            None => {
                self.links[l].broken = true;
                self.after(
                    d,
                    Ev::HubClosed {
                        link: l,
                        code: Some(1006),
                        reason: "",
                    },
                );
            }
            Some(code) => {
                let at = (self.now + d).max(self.links[l].up_last + 1);
                self.at(
                    at,
                    Ev::HubClosed {
                        link: l,
                        code: Some(code),
                        reason: "client closed",
                    },
                );
            }
        }
    }

    fn client_transmit(&mut self, c: usize, text: String) {
        self.stats.frames += 1;
        self.hash.write(text.as_bytes());
        let Some(l) = self.peers[c].link else {
            return self.fail(format!(
                "client {c}: transmitted without a transport: {text}"
            ));
        };
        if !self.peers[c].up {
            return self.fail(format!(
                "client {c}: transmitted before its transport opened"
            ));
        }
        // The outbox check: every accepted direct and publish leaves exactly once, in
        // the order the application gave them.
        if let Ok(frame) = Frame::parse(text.as_bytes(), &self.limits) {
            let seq = match frame.message() {
                Message::Direct(d) => untag(d.direct_data.as_ref()),
                Message::TopicMessage(m) => untag(m.payload.as_ref()),
                _ => None,
            };
            if let Some((s, q)) = seq {
                let p = &mut self.peers[c];
                if s != c || !p.accepted.remove(&q) {
                    return self.fail(format!(
                        "client {c}: transmitted message {s}/{q} it never accepted or sent before"
                    ));
                }
                if q <= p.last_tx_seq {
                    let last = p.last_tx_seq;
                    return self.fail(format!(
                        "client {c}: transmitted #{q} after #{last}: outbox out of order"
                    ));
                }
                p.last_tx_seq = q;
            }
        } else {
            return self.fail(format!(
                "client {c}: transmitted an unparsable frame {text}"
            ));
        }
        if self.links[l].broken {
            return;
        }
        let len = text.len();
        let per_byte = self.sc.links[c].up_us_per_byte;
        let link = &mut self.links[l];
        link.up_free = link.up_free.max(self.now) + len as T * per_byte;
        let flushed = link.up_free;
        let lat = self.latency(c);
        let arrive = (flushed + lat).max(self.links[l].up_last);
        self.links[l].up_last = arrive;
        self.at(
            flushed,
            Ev::ClientFlushed {
                c,
                link: l,
                bytes: len,
            },
        );
        self.at(arrive, Ev::HubFrame { link: l, text });
    }

    fn client_event(&mut self, c: usize, e: ClientEvent) {
        std::mem::discriminant(&e).hash(&mut self.hash);
        match e {
            ClientEvent::Ready { .. } => {
                if self.peers[c].ready {
                    return self.fail(format!("client {c}: ready twice on one link"));
                }
                self.peers[c].ready = true;
            }
            ClientEvent::Disconnected(info) => {
                self.peers[c].ready = false;
                // Every subscription is sent again on the next ready.
                self.peers[c].subs_lost = false;
                if info.displaced {
                    self.peers[c].displaced = true;
                    self.stats.displaced += 1;
                }
            }
            ClientEvent::Stopped => {
                self.peers[c].ready = false;
                self.peers[c].accepted.clear();
            }
            ClientEvent::RpcComplete(rc) => self.rpc_settled(c, rc),
            ClientEvent::RpcRequest {
                request,
                from,
                rpc_type,
                data,
            } => self.rpc_request(c, request, from, rpc_type, data),
            ClientEvent::TopicMessage {
                topic,
                from,
                payload,
            } => {
                if !self.peers[c].subs.contains(&topic) {
                    return self.fail(format!(
                        "client {c}: got a message on {topic}, which it is not subscribed to"
                    ));
                }
                if topic == SECRET_TOPIC {
                    return self.fail(format!("client {c}: got a message the ACL denied"));
                }
                self.delivery(c, 1, from, payload.as_ref(), "topic message");
            }
            ClientEvent::Direct {
                from,
                direct_type,
                data,
            } => {
                if direct_type == FORBIDDEN {
                    return self.fail(format!("client {c}: got a direct the ACL denied"));
                }
                self.delivery(c, 2, from, data.as_ref(), "direct");
            }
            ClientEvent::PeerStatus { from, status, .. } => {
                let claimed = status
                    .as_ref()
                    .and_then(|s| s.get("k"))
                    .and_then(Value::as_str);
                if claimed.is_some_and(|k| k != from) {
                    self.fail(format!(
                        "client {c}: status of {claimed:?} relayed as coming from {from}"
                    ));
                }
            }
            ClientEvent::StatusWanted => {
                let p = &mut self.peers[c];
                p.status_n += 1;
                let mut o = Object::new();
                o.insert("k", Value::from(p.kind.as_str()));
                o.insert("n", Value::Number(p.status_n as f64));
                let now = self.client_now(c);
                match self.peers[c].conn.push_status(now, Some(Value::Object(o))) {
                    Ok(()) => self.peers[c].status_sent = self.peers[c].status_n,
                    Err(ClientError::OutboxFull { .. }) => {}
                    Err(e) => self.fail(format!("client {c}: push_status refused: {e}")),
                }
            }
            ClientEvent::ProtocolError {
                reason,
                msg_type,
                detail,
            } => {
                let fine = match reason {
                    DropReason::ReplayWindow => self.peers[c].beyond_window,
                    DropReason::KeepaliveTimeout => true,
                    _ => false,
                };
                if !fine {
                    self.fail(format!(
                        "client {c}: protocol error {} on {msg_type:?} ({detail:?})",
                        reason.as_str()
                    ));
                }
            }
            ClientEvent::OutboxOverflow { msg_type, .. } => {
                self.stats.overflows += 1;
                // The client never refuses a subscription change (they are conflated
                // per topic, so they cannot grow without bound).
                if msg_type.starts_with("topic.") && msg_type != "topic.message" {
                    self.fail(format!("client {c}: outbox refused a {msg_type}"));
                }
            }
            _ => {}
        }
    }

    /// A topic message (class 1) or direct (class 2) reached client `c`'s application.
    fn delivery(
        &mut self,
        c: usize,
        class: u8,
        from: Option<String>,
        payload: Option<&Value>,
        what: &str,
    ) {
        if !self.peers[c].ready {
            return self.fail(format!("client {c}: got a {what} while not ready"));
        }
        let Some((s, q)) = untag(payload) else {
            return self.fail(format!("client {c}: got an untagged {what}: {payload:?}"));
        };
        let Some(sender) = self.peers.get(s) else {
            return self.fail(format!("client {c}: {what} tagged with unknown sender {s}"));
        };
        if from.as_deref() != Some(sender.kind.as_str()) {
            return self.fail(format!(
                "client {c}: {what} {s}/{q} from {} arrived stamped from {from:?}",
                sender.kind
            ));
        }
        let kind = self.peers[c].kind.clone();
        if !self.delivered.insert((kind.clone(), class, s, q)) {
            return self.fail(format!("client {c}: {what} {s}/{q} delivered twice"));
        }
        let last = self.order.entry((c, s)).or_insert(0);
        if q <= *last {
            let last = *last;
            return self.fail(format!(
                "client {c}: {what} {s}/{q} delivered after {s}/{last}: out of order"
            ));
        }
        *last = q;
        self.expected.remove(&(kind, s, q));
        self.stats.delivered += 1;
    }

    fn rpc_request(
        &mut self,
        c: usize,
        request: InboundRpcId,
        from: Option<String>,
        rpc_type: String,
        data: Option<Value>,
    ) {
        if !self.peers[c].ready {
            return self.fail(format!("client {c}: got an RPC request while not ready"));
        }
        if rpc_type == FORBIDDEN {
            return self.fail(format!("client {c}: got an RPC the ACL denied"));
        }
        let Some((s, q)) = untag(data.as_ref()) else {
            return self.fail(format!("client {c}: untagged RPC request {data:?}"));
        };
        let sender_kind = self.peers.get(s).map(|p| p.kind.clone());
        if from != sender_kind {
            return self.fail(format!(
                "client {c}: RPC {s}/{q} from {sender_kind:?} arrived stamped from {from:?}"
            ));
        }
        let kind = self.peers[c].kind.clone();
        if !self.delivered.insert((kind.clone(), 3, s, q)) {
            return self.fail(format!("client {c}: RPC request {s}/{q} delivered twice"));
        }
        let mut result = Object::new();
        result.insert("by", Value::from(kind.as_str()));
        if let Some(d) = data {
            result.insert("re", d);
        }
        let (delay, reply) = match rpc_type.as_str() {
            "echo" => (self.rand(0, 100 * MS), Ok(Some(Value::Object(result)))),
            "slow" => (
                self.rand(300 * MS, 3_000 * MS),
                Ok(Some(Value::Object(result))),
            ),
            "fail" => (
                self.rand(0, 50 * MS),
                Err(HandlerError::exposed("APP_FAIL", "simulated failure")),
            ),
            other => {
                return self.fail(format!("client {c}: got an RPC of unhandled type {other}"));
            }
        };
        self.after(delay, Ev::Respond { c, request, reply });
    }

    fn rpc_settled(&mut self, c: usize, rc: client::RpcComplete) {
        let id = rc.id.0;
        self.hash.write_u64(id);
        self.hash.write(rc.reason().unwrap_or("ok").as_bytes());
        let p = &mut self.peers[c];
        let Some(call) = p.pending.remove(&id) else {
            if p.settled.contains(&id) {
                return self.fail(format!("client {c}: RPC {} settled twice", rc.id));
            }
            if self.orphans_owed > 0 {
                self.orphans_owed -= 1;
                p.settled.insert(id);
                if rc.outcome.is_ok() {
                    self.fail(format!("client {c}: a refused RPC completed with a result"));
                }
                return;
            }
            return self.fail(format!(
                "client {c}: RpcComplete for unknown call {}",
                rc.id
            ));
        };
        p.settled.insert(id);
        let elapsed = self.now - call.sent_at;
        if let Some(t) = call.timeout.filter(|t| !t.is_zero()) {
            let t = t.as_micros() as T;
            if elapsed > t + MS {
                return self.fail(format!(
                    "client {c}: RPC {} settled {}ms after it was due",
                    rc.id,
                    (elapsed - t) / MS
                ));
            }
            if matches!(rc.outcome, Err(RpcError::Timeout { .. })) && elapsed + 1 < t {
                return self.fail(format!(
                    "client {c}: RPC {} timed out after {}µs of {}µs",
                    rc.id, elapsed, t
                ));
            }
        }
        if call.probe {
            self.expected_rpcs.remove(&(c, id));
            // Every peer probes the server at once: a hub allowing fewer concurrent
            // server RPCs than that refuses some.
            let overloaded = rc
                .outcome
                .as_ref()
                .is_err_and(|e| e.code() == "RPC_OVERLOADED");
            if rc.outcome.is_err() && !(overloaded && call.to == SERVER) {
                return self.fail(format!(
                    "client {c}: probe RPC to {} failed after the network settled: {:?}",
                    call.to, rc.outcome
                ));
            }
        }
        let server = call.to == SERVER;
        match &rc.outcome {
            Ok(result) => {
                self.stats.rpc_ok += 1;
                if call.rpc_type == "link.health" {
                    return;
                }
                let want_by = if server { SERVER } else { call.to.as_str() };
                let ok_type = matches!(
                    call.rpc_type.as_str(),
                    "echo" | "slow" | "sim.echo" | "sim.slow"
                );
                let by = result
                    .as_ref()
                    .and_then(|r| r.get("by"))
                    .and_then(Value::as_str);
                let re = untag(result.as_ref().and_then(|r| r.get("re")));
                if !ok_type || by != Some(want_by) || re != Some((c, call.seq)) {
                    self.fail(format!(
                        "client {c}: RPC {} {}:{} answered with the wrong result {result:?}",
                        rc.id, call.to, call.rpc_type
                    ));
                }
            }
            Err(RpcError::Remote(r)) => {
                let t = call.rpc_type.as_str();
                let fine = match r.code.as_str() {
                    "RPC_NO_TARGET" | "RPC_TARGET_UNAVAILABLE" => !server,
                    "RPC_OVERLOADED" => true,
                    "RPC_UNKNOWN_TYPE" => t == "nope" || t == "nope.server",
                    "RPC_FORBIDDEN" => t == FORBIDDEN && self.sc.acl,
                    "APP_FAIL" => t == "fail" || t == "sim.fail",
                    _ => false,
                };
                if !fine {
                    self.fail(format!(
                        "client {c}: RPC {} {}:{t} failed with unexpected {} ({})",
                        rc.id, call.to, r.code, r.message
                    ));
                }
            }
            Err(RpcError::Timeout { .. }) => self.stats.rpc_timeouts += 1,
            Err(RpcError::Disconnect { .. }) | Err(RpcError::Abort { .. }) => {}
            Err(other) => self.fail(format!(
                "client {c}: accepted RPC {} settled with {other:?}",
                rc.id
            )),
        }
    }

    // -------------------------------------------------------------------------
    // The workload

    fn act(&mut self, c: usize) {
        if !self.chaos {
            return;
        }
        let mean = self.sc.act_every_ms * MS;
        let d = self.rand(1, 2 * mean);
        self.after(d, Ev::Act { c });
        if self.peers[c].stopped {
            return;
        }
        let roll = self.rand(0, 99);
        match roll {
            0..=29 => self.act_rpc(c, false),
            30..=34 => self.act_cancel(c),
            35..=54 => self.act_publish(c),
            55..=62 => self.act_subscribe(c),
            63..=67 => self.act_unsubscribe(c),
            68..=89 => self.act_send(c),
            90..=92 => {
                let now = self.client_now(c);
                let _ = self.peers[c].conn.push_status(now, None);
            }
            93 if chance(&mut self.rng, 0.25) => {
                // The application stops its link for a while (gracefully or not) and
                // starts it again before the faults end.
                let now = self.client_now(c);
                let graceful = chance(&mut self.rng, 0.5);
                self.peers[c].conn.stop(now, graceful);
                let d = self.rand(100 * MS, 1_500 * MS);
                self.after(d, Ev::Start { c });
            }
            _ => self.act_rpc(c, true),
        }
        self.drain_client(c);
    }

    fn pick_kind(&mut self) -> String {
        let n = self.peers.len() as u64;
        if chance(&mut self.rng, 0.05) {
            return GHOST.to_owned();
        }
        let i = self.rand(0, n - 1) as usize;
        self.peers[i].kind.clone()
    }

    fn padding(&mut self) -> usize {
        if chance(&mut self.rng, 0.2) {
            self.rand(0, self.sc.max_padding as u64) as usize
        } else {
            0
        }
    }

    fn next_seq(&mut self, c: usize) -> u64 {
        self.peers[c].next_seq += 1;
        self.peers[c].next_seq
    }

    fn act_rpc(&mut self, c: usize, to_server: bool) {
        let (to, rpc_type) = if to_server {
            let t = match self.rand(0, 9) {
                0..=4 => "sim.echo",
                5 => "sim.fail",
                6 => "sim.slow",
                7 => "link.health",
                8 => "nope.server",
                _ if self.sc.acl => FORBIDDEN,
                _ => "sim.echo",
            };
            (SERVER.to_owned(), t)
        } else {
            let t = match self.rand(0, 9) {
                0..=5 => "echo",
                6 => "slow",
                7 => "fail",
                8 => "nope",
                _ if self.sc.acl => FORBIDDEN,
                _ => "echo",
            };
            (self.pick_kind(), t)
        };
        let timeout = match self.rand(0, 3) {
            0 => None,
            _ => Some(Duration::from_millis(self.rand(50, 3_000))),
        };
        self.issue_rpc(c, &to, rpc_type, timeout, false);
    }

    fn issue_rpc(
        &mut self,
        c: usize,
        to: &str,
        rpc_type: &str,
        timeout: Option<Duration>,
        probe: bool,
    ) {
        let seq = self.next_seq(c);
        let padding = if probe { 0 } else { self.padding() };
        let data = tag(c, seq, &self.peers[c].kind, padding);
        let now = self.client_now(c);
        self.stats.rpcs += 1;
        match self.peers[c]
            .conn
            .rpc(now, to, rpc_type, Some(data), timeout)
        {
            Ok(id) => {
                if probe {
                    self.expected_rpcs.insert((c, id.0));
                }
                let timeout =
                    Some(timeout.unwrap_or(Duration::from_millis(self.sc.rpc_timeout_ms)));
                self.peers[c].pending.insert(
                    id.0,
                    Call {
                        to: to.to_owned(),
                        rpc_type: rpc_type.to_owned(),
                        seq,
                        timeout,
                        sent_at: self.now,
                        probe,
                    },
                );
            }
            Err(RpcError::NotReady { .. }) | Err(RpcError::Backpressure { .. }) if !probe => {
                self.orphans_owed += 1;
            }
            Err(e) => self.fail(format!("client {c}: rpc({to}, {rpc_type}) refused: {e:?}")),
        }
    }

    fn act_cancel(&mut self, c: usize) {
        let ids: Vec<u64> = self.peers[c].pending.keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        let id = ids[self.rand(0, ids.len() as u64 - 1) as usize];
        let now = self.client_now(c);
        self.peers[c].conn.cancel_rpc(now, RpcId(id));
        // The abort settles at once: the call must be gone after this drain.
        self.drain_client(c);
        if self.peers[c].pending.contains_key(&id) {
            self.fail(format!(
                "client {c}: cancel_rpc(rpc#{id}) did not settle the call"
            ));
        }
    }

    fn act_publish(&mut self, c: usize) {
        let topic = if self.sc.acl && chance(&mut self.rng, 0.1) {
            SECRET_TOPIC
        } else {
            TOPICS[self.rand(0, TOPICS.len() as u64 - 1) as usize]
        };
        let padding = self.padding();
        self.publish(c, topic, padding);
    }

    fn publish(&mut self, c: usize, topic: &str, padding: usize) -> Option<u64> {
        let seq = self.next_seq(c);
        let payload = tag(c, seq, &self.peers[c].kind, padding);
        let now = self.client_now(c);
        self.peers[c].accepted.insert(seq);
        let r = self.peers[c].conn.publish(now, topic, Some(payload));
        self.accepted(c, seq, r, "publish")
    }

    fn accepted(
        &mut self,
        c: usize,
        seq: u64,
        r: Result<(), ClientError>,
        op: &str,
    ) -> Option<u64> {
        match r {
            Ok(()) => return Some(seq),
            Err(ClientError::OutboxFull { .. }) => {}
            Err(ClientError::NotReady { .. }) if self.peers[c].stopped => {}
            Err(e) => self.fail(format!("client {c}: {op} refused: {e:?}")),
        }
        // Refused before it was queued, so it will never be transmitted.
        self.peers[c].accepted.remove(&seq);
        None
    }

    fn act_subscribe(&mut self, c: usize) {
        let topic = if self.sc.acl && chance(&mut self.rng, 0.1) {
            SECRET_TOPIC
        } else {
            TOPICS[self.rand(0, TOPICS.len() as u64 - 1) as usize]
        };
        let now = self.client_now(c);
        match self.peers[c].conn.subscribe(now, topic) {
            Ok(()) => {
                self.peers[c].subs.insert(topic.to_owned());
            }
            Err(e) => self.fail(format!("client {c}: subscribe({topic}) refused: {e:?}")),
        }
    }

    fn act_unsubscribe(&mut self, c: usize) {
        let subs: Vec<String> = self.peers[c].subs.iter().cloned().collect();
        if subs.is_empty() {
            return;
        }
        let topic = subs[self.rand(0, subs.len() as u64 - 1) as usize].clone();
        let now = self.client_now(c);
        match self.peers[c].conn.unsubscribe(now, &topic) {
            Ok(was) => {
                self.peers[c].subs.remove(&topic);
                if !was {
                    self.fail(format!(
                        "client {c}: unsubscribe({topic}) forgot the subscription"
                    ));
                }
            }
            Err(e) => self.fail(format!("client {c}: unsubscribe({topic}) refused: {e:?}")),
        }
    }

    fn act_send(&mut self, c: usize) {
        let to = self.pick_kind();
        let direct_type = if self.sc.acl && chance(&mut self.rng, 0.1) {
            FORBIDDEN
        } else {
            "note"
        };
        let padding = self.padding();
        self.send(c, &to, direct_type, padding);
    }

    fn send(&mut self, c: usize, to: &str, direct_type: &str, padding: usize) -> Option<u64> {
        let seq = self.next_seq(c);
        let data = tag(c, seq, &self.peers[c].kind, padding);
        let now = self.client_now(c);
        self.peers[c].accepted.insert(seq);
        let r = self.peers[c].conn.send(now, to, direct_type, Some(data));
        self.accepted(c, seq, r, "send")
    }

    // -------------------------------------------------------------------------
    // The hub

    fn hub_input(&mut self, input: hub::Input<'_>) {
        let now = self.hub_now();
        if let Some(h) = &mut self.hub {
            h.state.handle_input(now, input);
        }
        self.drain_hub();
    }

    fn drain_hub(&mut self) {
        for outputs in 0.. {
            if outputs > MAX_DRAIN {
                return self.fail("hub: never stops producing outputs".to_owned());
            }
            let Some(h) = &mut self.hub else { return };
            let out = h.state.poll_output();
            if self.verbose && !matches!(out, hub::Output::Timeout(_)) {
                eprintln!("            hub -> {out:?}");
            }
            match out {
                hub::Output::Timeout(deadline) => {
                    let at = ceil_us(self.base, deadline).max(self.now + 1);
                    if h.wake != Some(at) {
                        h.wake = Some(at);
                        let epoch = self.epoch;
                        self.at(at, Ev::HubWake { epoch, at });
                    }
                    break;
                }
                hub::Output::Transmit { conn, text } => self.hub_transmit(conn.0 as usize, text),
                hub::Output::Close { conn, code, reason } => {
                    self.hash.write_u16(code);
                    self.hash.write(reason.as_bytes());
                    self.hub_close(conn.0 as usize, Some(code));
                }
                hub::Output::Terminate { conn } => self.hub_close(conn.0 as usize, None),
                hub::Output::Ping { conn } => {
                    let l = conn.0 as usize;
                    if self
                        .links
                        .get(l)
                        .is_some_and(|k| !k.broken && k.epoch == self.epoch)
                    {
                        let c = self.links[l].client;
                        let d = self.latency(c);
                        let there = (self.now + d).max(self.links[l].down_last);
                        let d = self.latency(c);
                        self.at(there + d, Ev::HubPong { link: l });
                    }
                }
                hub::Output::Event(e) => self.hub_event(e),
                hub::Output::ResolveKey { request, kind } => {
                    let known = self.peers.iter().any(|p| p.kind == kind);
                    let key = known.then(|| self.key_of(&kind));
                    let d = self.hook_delay(20 * MS);
                    let epoch = self.epoch;
                    self.after(
                        d,
                        Ev::HubKey {
                            epoch,
                            request,
                            key,
                        },
                    );
                }
                hub::Output::ServerRpc(call) => self.server_rpc(call),
                hub::Output::AclCheck(check) => self.acl_check(check),
                other => self.fail(format!("hub: unexpected output {other:?}")),
            }
            if self.violation.is_some() {
                return;
            }
        }
        self.check_hub_tables();
    }

    fn check_hub_tables(&mut self) {
        let Some(h) = &self.hub else { return };
        let health = h.state.health();
        let state = h.state.state();
        let problem = if health.outbox_bytes > self.sc.hub_max_outbox * health.queued_sockets.max(1)
        {
            Some(format!(
                "outbox {} bytes over {} sockets' caps of {}",
                health.outbox_bytes, health.queued_sockets, self.sc.hub_max_outbox
            ))
        } else if health.peer_count != state.peers.len()
            || health.peer_count != self.kind_conn.len()
        {
            Some(format!(
                "peer count {} but state lists {} and events say {}",
                health.peer_count,
                state.peers.len(),
                self.kind_conn.len()
            ))
        } else if health.server_rpc_in_flight != self.server_calls.len() {
            Some(format!(
                "{} server RPCs in flight, the application holds {}",
                health.server_rpc_in_flight,
                self.server_calls.len()
            ))
        } else if health.pending_socket_count > 1024 {
            Some(format!("{} pending sockets", health.pending_socket_count))
        } else if health.status_count > health.peer_count + self.peers.len() {
            Some(format!("{} statuses retained", health.status_count))
        } else {
            let subs: usize = self.hub_subs.values().map(BTreeSet::len).sum();
            let topics: BTreeSet<&String> = self.hub_subs.values().flatten().collect();
            (health.total_subscribers != subs || health.topic_count != topics.len()).then(|| {
                format!(
                    "{} subscriptions on {} topics, events say {subs} on {}",
                    health.total_subscribers,
                    health.topic_count,
                    topics.len()
                )
            })
        };
        if let Some(p) = problem {
            self.fail(format!("hub: {p}"));
        }
    }

    fn hub_close(&mut self, l: usize, code: Option<u16>) {
        let Some(link) = self.links.get_mut(l) else {
            return self.fail(format!("hub: closed unknown socket {l}"));
        };
        if link.hub_gone {
            return self.fail(format!("hub: closed socket {l} after it was gone"));
        }
        link.hub_closing = true;
        if link.broken {
            return;
        }
        let c = link.client;
        let d = self.latency(c);
        match code {
            None => {
                self.links[l].broken = true;
                self.after(
                    d,
                    Ev::ClientDown {
                        c,
                        link: l,
                        code: Some(1006),
                        reason: "",
                    },
                );
                self.after(
                    MS,
                    Ev::HubClosed {
                        link: l,
                        code: Some(1006),
                        reason: "",
                    },
                );
            }
            Some(code) => {
                let at = (self.now + d).max(self.links[l].down_last + 1);
                let reason = match code {
                    4000 => "replaced by new connection",
                    _ => "closed by hub",
                };
                self.at(
                    at,
                    Ev::ClientDown {
                        c,
                        link: l,
                        code: Some(code),
                        reason,
                    },
                );
                let d = self.latency(c);
                self.at(
                    at + d,
                    Ev::HubClosed {
                        link: l,
                        code: Some(code),
                        reason,
                    },
                );
            }
        }
    }

    fn hub_transmit(&mut self, l: usize, text: String) {
        self.stats.frames += 1;
        self.hash.write(text.as_bytes());
        let Some(link) = self.links.get(l) else {
            return self.fail(format!("hub: transmitted on unknown socket {l}"));
        };
        let frame = match Frame::parse(text.as_bytes(), &self.limits) {
            Ok(f) => f,
            Err(e) => {
                return self.fail(format!(
                    "hub: transmitted an unparsable frame ({e}): {text}"
                ));
            }
        };
        let msg = frame.message();
        let from = frame.from().map(|f| f.to_string_lossy());
        let msg_type = msg.msg_type().to_owned();
        if link.hub_gone || link.hub_closing || link.replaced {
            return self.fail(format!(
                "hub: transmitted {msg_type} on socket {l} after closing or replacing it"
            ));
        }
        if msg_type == "hello.ack" {
            self.links[l].acked = true;
        } else if !link.acked {
            return self.fail(format!(
                "hub: transmitted {msg_type} to socket {l} before it authenticated"
            ));
        }
        let link_kind = self.links[l].kind.clone();
        let tagged = match &msg {
            Message::TopicMessage(m) => {
                let topic = m.topic.as_ref().and_then(Value::as_str).unwrap_or("");
                let subscribed = link_kind
                    .as_ref()
                    .and_then(|k| self.hub_subs_ever.get(k))
                    .is_some_and(|s| s.contains(topic));
                if !subscribed {
                    return self.fail(format!(
                        "hub: sent a {topic} message to socket {l} ({link_kind:?}), not subscribed"
                    ));
                }
                untag(m.payload.as_ref())
            }
            Message::Direct(d) => untag(d.direct_data.as_ref()),
            Message::RpcRequest(r) => untag(r.rpc_data.as_ref()),
            Message::RpcResponse(r) => {
                let by = r
                    .data
                    .as_ref()
                    .and_then(|d| d.get("result"))
                    .and_then(|r| r.get("by"))
                    .and_then(Value::as_str);
                if let Some(by) = by
                    && from.as_deref() != Some(by)
                {
                    return self.fail(format!(
                        "hub: response produced by {by} forwarded as from {from:?}"
                    ));
                }
                None
            }
            _ => None,
        };
        if let Some((s, q)) = tagged {
            let sender = self.peers.get(s).map(|p| p.kind.as_str());
            if sender != from.as_deref() {
                return self.fail(format!(
                    "hub: {msg_type} {s}/{q} of {sender:?} forwarded as from {from:?}"
                ));
            }
        }
        if self.links[l].broken {
            return;
        }
        let app_message = matches!(msg, Message::Direct(_) | Message::TopicMessage(_));
        let text = if app_message && self.sc.sabotage == Sabotage::ForgeFrom {
            self.forged(l, &text).unwrap_or(text)
        } else {
            text
        };
        let c = self.links[l].client;
        let len = text.len();
        let mut per_byte = self.sc.links[c].down_us_per_byte;
        if !self.chaos {
            // Slow consumers catch up once the faults end, so that liveness can be judged.
            per_byte = per_byte.min(2);
        }
        let link = &mut self.links[l];
        link.down_free = link.down_free.max(self.now) + len as T * per_byte;
        let flushed = link.down_free;
        let lat = self.latency(c);
        let arrive = (flushed + lat).max(self.links[l].down_last);
        self.links[l].down_last = arrive;
        self.at(
            flushed,
            Ev::HubFlushed {
                link: l,
                bytes: len,
            },
        );
        match self.sc.sabotage {
            Sabotage::DropFrames if app_message && chance(&mut self.rng, 0.3) => {}
            Sabotage::DuplicateFrames if app_message => {
                let copy = text.clone();
                self.at(arrive, Ev::ClientFrame { c, link: l, text });
                self.at(
                    arrive + 1,
                    Ev::ClientFrame {
                        c,
                        link: l,
                        text: copy,
                    },
                );
            }
            Sabotage::ReorderFrames if app_message => match self.held.take() {
                Some((hl, held)) if hl == l => {
                    self.at(arrive, Ev::ClientFrame { c, link: l, text });
                    self.at(
                        arrive + 1,
                        Ev::ClientFrame {
                            c,
                            link: l,
                            text: held,
                        },
                    );
                }
                _ => self.held = Some((l, text)),
            },
            _ => self.at(arrive, Ev::ClientFrame { c, link: l, text }),
        }
    }

    /// `text` re-signed by the hub's key for this socket but claiming to come from
    /// another peer (what a hub that trusted the sender's `from` would produce).
    fn forged(&self, l: usize, text: &str) -> Option<String> {
        let c = self.links[l].client;
        let kind = &self.peers[c].kind;
        let key = link_sansio::wire::Key::new(&self.key_of(kind), self.sc.hash_algo);
        let frame = Frame::parse(text.as_bytes(), &self.limits).ok()?;
        let env = frame.into_envelope();
        let liar = self
            .peers
            .iter()
            .map(|p| p.kind.as_str())
            .find(|k| Some(*k) != env.from.as_ref().and_then(|f| f.as_str()))?;
        let header = link_sansio::wire::Header {
            id: (&env.id).into(),
            ts: env.ts,
            from: Some(liar.into()),
            to: env.to.as_ref().map(Into::into),
        };
        let mut out = Vec::new();
        link_sansio::wire::encode_message(&key, &header, &env.message, &mut out);
        String::from_utf8(out).ok()
    }

    fn hub_event(&mut self, e: HubEvent) {
        std::mem::discriminant(&e).hash(&mut self.hash);
        match e {
            HubEvent::PeerConnected { conn, kind, .. } => {
                let l = conn.0 as usize;
                if let Some(link) = self.links.get(l)
                    && self.peers[link.client].bad_key
                {
                    return self.fail(format!(
                        "hub: authenticated client {} ({kind}), whose key is wrong",
                        link.client
                    ));
                }
                if let Some(link) = self.links.get_mut(l) {
                    link.kind = Some(kind.clone());
                }
                self.kind_conn.insert(kind, l);
            }
            HubEvent::PeerReplaced { old_conn, .. } => {
                if let Some(link) = self.links.get_mut(old_conn.0 as usize) {
                    link.replaced = true;
                }
            }
            HubEvent::PeerDisconnected { conn, kind, .. }
                if self.kind_conn.get(&kind) == Some(&(conn.0 as usize)) =>
            {
                self.kind_conn.remove(&kind);
                self.hub_subs.remove(&kind);
                self.hub_subs_ever.remove(&kind);
            }
            HubEvent::TopicSubscribe { kind, topic } => {
                if topic == SECRET_TOPIC {
                    return self.fail(format!("hub: {kind} subscribed to {topic} past the ACL"));
                }
                self.hub_subs_ever
                    .entry(kind.clone())
                    .or_default()
                    .insert(topic.clone());
                self.hub_subs.entry(kind).or_default().insert(topic);
            }
            HubEvent::TopicUnsubscribe { kind, topic } => {
                if let Some(s) = self.hub_subs.get_mut(&kind) {
                    s.remove(&topic);
                    if s.is_empty() {
                        self.hub_subs.remove(&kind);
                    }
                }
            }
            HubEvent::ProtocolError {
                conn,
                reason,
                msg_type,
                detail,
                ..
            } => {
                let link = self.links.get(conn.0 as usize);
                let c = link.map(|l| l.client);
                let beyond = c.is_some_and(|c| self.peers[c].beyond_window);
                // Frames still in flight on a socket the hub has just replaced or
                // closed arrive after the fact; the hub drops them.
                let closing = link.is_some_and(|l| l.replaced || l.hub_closing);
                let bad_key = c.is_some_and(|c| self.peers[c].bad_key);
                let fine = match reason {
                    DropReason::ReplayWindow => beyond,
                    DropReason::StaleSocket => closing,
                    DropReason::BadSignature => bad_key,
                    _ => false,
                };
                if !fine {
                    self.fail(format!(
                        "hub: protocol error {} on {msg_type:?} ({detail:?}) from client {c:?}",
                        reason.as_str()
                    ));
                }
            }
            HubEvent::OutboxOverflow { .. } => self.stats.overflows += 1,
            HubEvent::Drained => {
                self.drained_events += 1;
                if !self.draining {
                    self.fail("hub: Drained without a Drain".to_owned());
                }
            }
            HubEvent::AclBacklogOverflow { conn, msg_type, .. } => {
                self.stats.overflows += 1;
                if msg_type == "topic.subscribe"
                    && let Some(l) = self.links.get(conn.0 as usize)
                {
                    self.peers[l.client].subs_lost = true;
                }
            }
            _ => {}
        }
    }

    fn server_rpc(&mut self, call: hub::ServerCall) {
        let sender = untag(call.data.as_ref()).and_then(|(s, _)| self.peers.get(s));
        if let Some(p) = sender
            && p.kind != call.from
        {
            return self.fail(format!(
                "hub: server RPC of {} handed over as from {}",
                p.kind, call.from
            ));
        }
        if !self.server_calls.insert(call.call.0) {
            return self.fail(format!("hub: server call {} issued twice", call.call.0));
        }
        let mut result = Object::new();
        result.insert("by", Value::from(SERVER));
        if let Some(d) = call.data.clone() {
            result.insert("re", d);
        }
        let (delay, reply) = match call.rpc_type.as_str() {
            "sim.echo" => (
                self.rand(0, 50 * MS),
                ServerReply::Ok(Some(Value::Object(result))),
            ),
            "sim.slow" => (
                self.rand(200 * MS, 3_000 * MS),
                ServerReply::Ok(Some(Value::Object(result))),
            ),
            "sim.fail" => (
                self.rand(0, 50 * MS),
                ServerReply::Err {
                    code: Some("APP_FAIL".to_owned()),
                    message: "simulated failure".to_owned(),
                    data: None,
                    expose: true,
                },
            ),
            other => {
                return self.fail(format!("hub: server RPC of unregistered type {other}"));
            }
        };
        let epoch = self.epoch;
        self.after(
            delay,
            Ev::HubServerRpc {
                epoch,
                call: call.call,
                reply,
            },
        );
    }

    fn acl_check(&mut self, check: hub::AclCheck) {
        if !self.sc.acl {
            return self.fail("hub: asked an ACL hook that is not installed".to_owned());
        }
        let (deny, from, data) = match &check.op {
            AclOp::Rpc {
                from,
                rpc_type,
                rpc_data,
                ..
            } => (rpc_type == FORBIDDEN, from, rpc_data.as_ref()),
            AclOp::Publish {
                from,
                topic,
                payload,
            } => (topic == SECRET_TOPIC, from, payload.as_ref()),
            AclOp::Subscribe { from, topic } => (topic == SECRET_TOPIC, from, None),
            AclOp::Send {
                from,
                direct_type,
                data,
                ..
            } => (direct_type == FORBIDDEN, from, data.as_ref()),
            other => return self.fail(format!("hub: unknown ACL question {other:?}")),
        };
        if let Some((s, _)) = untag(data)
            && self.peers.get(s).is_some_and(|p| &p.kind != from)
        {
            return self.fail(format!(
                "hub: ACL asked about {from} for a message of client {s}"
            ));
        }
        let decision = if deny {
            AclDecision::Deny {
                code: None,
                message: None,
            }
        } else {
            AclDecision::Allow
        };
        let d = self.hook_delay(30 * MS);
        let epoch = self.epoch;
        self.after(
            d,
            Ev::HubAcl {
                epoch,
                check: check.check,
                decision,
            },
        );
    }

    // -------------------------------------------------------------------------
    // The end of the run

    fn live(&self, c: usize) -> bool {
        let p = &self.peers[c];
        !p.stopped && !p.displaced && !p.beyond_window && !p.bad_key
    }

    /// After the faults stop and the network settles, everything must be back: every
    /// live peer ready, nothing queued anywhere, every RPC settled. Then each live
    /// peer sends probes that must all arrive.
    fn check_settled(&mut self) {
        if self.hub.is_none() {
            return self.fail("hub still down after the settle period".to_owned());
        }
        let mut ready_kinds = BTreeSet::new();
        for c in 0..self.peers.len() {
            if !self.live(c) {
                continue;
            }
            let p = &self.peers[c];
            let h = p.conn.health();
            if !p.ready || !p.conn.is_ready() {
                return self.fail(format!("client {c} ({}) not ready after settling", p.kind));
            }
            if h.outbox_size != 0 || !p.accepted.is_empty() {
                return self.fail(format!(
                    "client {c}: {} items ({:?}) still queued after settling",
                    h.outbox_size, p.accepted
                ));
            }
            if !p.pending.is_empty() {
                let ids: Vec<_> = p.pending.keys().collect();
                return self.fail(format!("client {c}: RPCs {ids:?} never settled"));
            }
            ready_kinds.insert(p.kind.clone());
        }
        if let Some(h) = &self.hub {
            let health = h.state.health();
            if health.peer_count != ready_kinds.len() {
                return self.fail(format!(
                    "hub lists {} peers after settling, {} are ready",
                    health.peer_count,
                    ready_kinds.len()
                ));
            }
            if health.outbox_bytes != 0 || health.server_rpc_in_flight != 0 {
                return self.fail(format!("hub still busy after settling: {health:?}"));
            }
        }
        for p in &mut self.peers {
            p.status_floor = p.status_sent;
        }
        // Probes: a direct to every other live peer, a publish on every topic, and an
        // RPC to the next live peer and to the server.
        let live: Vec<usize> = (0..self.peers.len()).filter(|&c| self.live(c)).collect();
        for &c in &live {
            for &d in &live {
                if self.peers[d].kind == self.peers[c].kind {
                    continue;
                }
                let to = self.peers[d].kind.clone();
                if let Some(q) = self.send(c, &to, "probe", 0) {
                    self.expected.insert((to, c, q));
                    self.stats.probes += 1;
                }
            }
            for topic in TOPICS {
                if let Some(q) = self.publish(c, topic, 0) {
                    for &d in &live {
                        let p = &self.peers[d];
                        if p.kind != self.peers[c].kind && p.subs.contains(topic) && !p.subs_lost {
                            self.expected.insert((p.kind.clone(), c, q));
                            self.stats.probes += 1;
                        }
                    }
                }
            }
            let timeout = Some(Duration::from_millis(self.sc.probe_ms - 500));
            self.issue_rpc(c, SERVER, "sim.echo", timeout, true);
            if let Some(&d) = live
                .iter()
                .find(|&&d| self.peers[d].kind != self.peers[c].kind)
            {
                let to = self.peers[d].kind.clone();
                self.issue_rpc(c, &to, "echo", timeout, true);
            }
            self.drain_client(c);
            if self.violation.is_some() {
                return;
            }
        }
    }

    fn check_probes(&mut self) {
        if let Some((kind, s, q)) = self.expected.first() {
            let n = self.expected.len();
            return self.fail(format!(
                "{n} probe messages lost after the network settled, e.g. {s}/{q} to {kind}"
            ));
        }
        if let Some((c, id)) = self.expected_rpcs.first() {
            return self.fail(format!("client {c}: probe RPC rpc#{id} never settled"));
        }
        // Statuses: the hub and every live peer know each live peer's status as it was
        // when the network settled (or newer).
        let status_n = |s: Option<&Value>| {
            s.and_then(|v| v.get("n"))
                .and_then(Value::as_f64)
                .map_or(0, |n| n as u64)
        };
        let live: Vec<usize> = (0..self.peers.len()).filter(|&c| self.live(c)).collect();
        let hub_status = self.hub.as_ref().map(|h| h.state.state().last_status);
        for &a in &live {
            let (kind, floor) = (self.peers[a].kind.clone(), self.peers[a].status_floor);
            let at_hub = hub_status
                .as_ref()
                .and_then(|l| l.iter().find(|(k, _)| *k == kind))
                .map(|(_, e)| status_n(e.status.as_ref()));
            if at_hub.unwrap_or(0) < floor {
                return self.fail(format!(
                    "hub holds status {at_hub:?} of {kind}, which sent #{floor} before settling"
                ));
            }
            for &b in &live {
                if self.peers[b].kind == kind {
                    continue;
                }
                let seen = self.peers[b]
                    .conn
                    .peer_status(&kind)
                    .map(|e| status_n(e.status.as_ref()));
                if seen.unwrap_or(0) < floor {
                    return self.fail(format!(
                        "client {b} holds status {seen:?} of {kind}, which sent #{floor} before settling"
                    ));
                }
            }
        }
        // Last, the hub shuts down gracefully: every socket must be gone in time.
        if self.hub.is_some() {
            self.draining = true;
            self.hub_input(hub::Input::Drain);
            self.after(DRAIN_LIMIT, Ev::Shutdown);
        }
    }

    fn check_drained(&mut self) {
        let Some(h) = &self.hub else { return };
        if !h.state.is_drained() || self.drained_events != 1 {
            let open = self
                .links
                .iter()
                .filter(|l| l.epoch == self.epoch && !l.hub_gone)
                .count();
            return self.fail(format!(
                "hub not drained {}s after Drain: {open} sockets open, {} Drained events",
                DRAIN_LIMIT / 1_000_000,
                self.drained_events
            ));
        }
        // Stop the clock here: nothing scheduled later matters.
        self.queue.clear();
    }
}
