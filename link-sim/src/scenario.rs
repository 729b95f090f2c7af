//! The shape of one run, drawn from its seed: how many peers, how their links and
//! clocks behave, which faults strike and when, and how the hub and clients are
//! configured (small caps, so that backpressure and overflow actually happen).

use link_sansio::seeded::Rng;
use link_sansio::wire::HashAlgo;

/// Where the hub's keys come from in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// One shared secret.
    Shared,
    /// A key per kind, in the hub's configuration.
    PerKind,
    /// A key per kind, looked up by the application (`Output::ResolveKey`).
    Resolver,
}

/// A deliberate fault in the simulated network that breaks the protocol's
/// assumptions (ordered, exactly-once delivery on a live socket), to show that the
/// invariants catch what they claim to catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sabotage {
    /// An honest network.
    #[default]
    None,
    /// Some directs and topic messages from the hub vanish on a live socket.
    DropFrames,
    /// Directs and topic messages from the hub are delivered twice.
    DuplicateFrames,
    /// Directs and topic messages from the hub overtake each other.
    ReorderFrames,
    /// The hub's frames to a peer are rewritten to claim another sender.
    ForgeFrom,
}

/// One client's network path to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkProfile {
    /// One-way latency, µs.
    pub latency_us: u64,
    /// Extra random delay per frame, up to this many µs (frames never overtake).
    pub jitter_us: u64,
    /// Transmission time per byte from hub to client while the faults last (a slow
    /// consumer has many; afterwards every consumer reads at 2 µs/byte or faster).
    pub down_us_per_byte: u64,
    /// Transmission time per byte from client to hub.
    pub up_us_per_byte: u64,
}

/// Everything a run is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Number of clients (each its own kind).
    pub clients: usize,
    /// Faults and workload run for this long (ms).
    pub chaos_ms: u64,
    /// Then the network is left alone this long before the liveness check (ms).
    pub settle_ms: u64,
    /// Then every live peer sends probes, which must all arrive within this (ms).
    pub probe_ms: u64,
    /// Key source of the hub.
    pub keys: KeyMode,
    /// Whether the hub asks ACL hooks (the simulated application denies a few names).
    pub acl: bool,
    /// Hub `max_buffered_bytes`.
    pub hub_max_buffered: usize,
    /// Hub `max_outbox_bytes`.
    pub hub_max_outbox: usize,
    /// Hub keepalive interval (ms).
    pub hub_keepalive_ms: u64,
    /// Hub hello timeout (ms).
    pub hub_hello_timeout_ms: u64,
    /// Hub `max_concurrent_rpc`.
    pub hub_max_concurrent_rpc: usize,
    /// Hub `replay_window_ms` (and the clients').
    pub replay_window_ms: u64,
    /// Client `max_buffered_bytes`.
    pub client_max_buffered: usize,
    /// Client `max_outbox_bytes`.
    pub client_max_outbox: usize,
    /// Client keepalive interval (ms).
    pub client_keepalive_ms: u64,
    /// Client default RPC timeout (ms).
    pub rpc_timeout_ms: u64,
    /// Client first reconnect delay (ms).
    pub reconnect_initial_ms: u64,
    /// Client reconnect delay cap (ms).
    pub reconnect_max_ms: u64,
    /// Client status interval (ms).
    pub status_interval_ms: u64,
    /// Each client's path to the hub.
    pub links: Vec<LinkProfile>,
    /// Each client's wall-clock offset from the hub's (ms).
    pub skew_ms: Vec<i64>,
    /// Mean time between dropped connections (ms); `None`: no drops.
    pub drop_every_ms: Option<u64>,
    /// Hub crashes: (at ms, down for ms).
    pub crashes: Vec<(u64, u64)>,
    /// When a second client claiming client 0's kind starts (ms), if at all.
    pub impostor_at_ms: Option<u64>,
    /// Mean time between a client's application actions (ms).
    pub act_every_ms: u64,
    /// Largest padding added to a payload (bytes).
    pub max_padding: usize,
    /// Hub `max_pending_sockets`.
    pub hub_max_pending: usize,
    /// Clock jumps: (at ms, client index or `None` for the hub, jump in ms).
    pub clock_jumps: Vec<(u64, Option<usize>, i64)>,
    /// Whether the key resolver and ACL hooks sometimes take seconds to answer.
    pub slow_hooks: bool,
    /// HMAC hash of everyone.
    pub hash_algo: HashAlgo,
    /// Hub `message_events`.
    pub message_events: bool,
    /// A client configured with the wrong secret (never client 0), if any.
    pub bad_key: Option<usize>,
    /// A deliberate network fault (none unless a test asks for one).
    pub sabotage: Sabotage,
}

/// Clock jumps per run, at most.
const MAX_CLOCK_JUMPS: u64 = 2;
/// How far one clock jump moves a clock, at most, either way. A jump of the hub's
/// clock moves every peer's skew.
const MAX_CLOCK_JUMP_MS: u64 = 40_000;

/// Uniform draw in `lo..=hi`.
pub(crate) fn between(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        return lo;
    }
    lo + rng.next_u64() % (hi - lo + 1)
}

/// `true` with probability `p`.
pub(crate) fn chance(rng: &mut Rng, p: f64) -> bool {
    rng.unit() < p
}

impl Scenario {
    /// The scenario of `seed`.
    pub fn from_seed(seed: u64) -> Self {
        // A separate stream from the one that drives the run, so that changing how a
        // run unfolds never changes its shape.
        let mut rng = Rng::new(seed ^ 0x05ce_7a21_0f5e_ed00);
        let r = &mut rng;
        let clients = between(r, 2, 4) as usize;
        let replay_window_ms = 300_000;
        let links = (0..clients + 1)
            .map(|_| {
                let slow = chance(r, 0.15);
                LinkProfile {
                    latency_us: between(r, 200, 40_000),
                    jitter_us: between(r, 0, 20_000),
                    // 1 µs/byte = 1 MB/s; a slow consumer drains at 3–50 KB/s while
                    // the faults last.
                    down_us_per_byte: if slow {
                        between(r, 20, 300)
                    } else {
                        between(r, 0, 2)
                    },
                    up_us_per_byte: between(r, 0, 2),
                }
            })
            .collect();
        let skew_ms = (0..clients + 1)
            .map(|_| {
                if chance(r, 0.04) {
                    // Beyond the replay window: this peer can never be heard, not even
                    // after every clock jump has moved it the other way.
                    let lo = replay_window_ms + MAX_CLOCK_JUMPS * MAX_CLOCK_JUMP_MS + 20_000;
                    let s = between(r, lo, replay_window_ms * 3) as i64;
                    if chance(r, 0.5) { s } else { -s }
                } else if chance(r, 0.3) {
                    between(r, 0, 120_000) as i64 - 60_000
                } else {
                    between(r, 0, 2_000) as i64 - 1_000
                }
            })
            .collect();
        let chaos_ms = between(r, 3_000, 7_000);
        let crash_count = if chance(r, 0.3) { between(r, 1, 2) } else { 0 };
        let crashes = (0..crash_count)
            .map(|_| (between(r, 500, chaos_ms - 1_000), between(r, 50, 3_000)))
            .collect();
        let keys = match between(r, 0, 5) {
            0 => KeyMode::PerKind,
            1 => KeyMode::Resolver,
            _ => KeyMode::Shared,
        };
        let mut sc = Scenario {
            clients,
            chaos_ms,
            settle_ms: 12_000,
            probe_ms: 4_000,
            keys,
            acl: chance(r, 0.35),
            hub_max_buffered: between(r, 2_048, 16_384) as usize,
            hub_max_outbox: between(r, 8_192, 65_536) as usize,
            hub_keepalive_ms: between(r, 1_500, 15_000),
            hub_hello_timeout_ms: between(r, 1_000, 10_000),
            hub_max_concurrent_rpc: if chance(r, 0.3) {
                between(r, 1, 4) as usize
            } else {
                256
            },
            replay_window_ms,
            client_max_buffered: between(r, 2_048, 16_384) as usize,
            client_max_outbox: between(r, 8_192, 65_536) as usize,
            client_keepalive_ms: between(r, 1_500, 30_000),
            rpc_timeout_ms: between(r, 300, 3_000),
            reconnect_initial_ms: between(r, 100, 1_000),
            reconnect_max_ms: between(r, 1_000, 4_000),
            status_interval_ms: between(r, 1_000, 8_000),
            links,
            skew_ms,
            drop_every_ms: chance(r, 0.8).then(|| between(r, 300, 3_000)),
            crashes,
            impostor_at_ms: chance(r, 0.2).then(|| between(r, 200, chaos_ms - 500)),
            act_every_ms: between(r, 30, 200),
            max_padding: if chance(r, 0.2) { 6_000 } else { 300 },
            hub_max_pending: if chance(r, 0.2) {
                between(r, 1, 3) as usize
            } else {
                1024
            },
            clock_jumps: (0..between(r, 0, MAX_CLOCK_JUMPS))
                .map(|_| {
                    let who = between(r, 0, clients as u64);
                    let who = (who < clients as u64).then_some(who as usize);
                    let jump =
                        between(r, 0, 2 * MAX_CLOCK_JUMP_MS) as i64 - MAX_CLOCK_JUMP_MS as i64;
                    (between(r, 100, chaos_ms), who, jump)
                })
                .collect(),
            slow_hooks: chance(r, 0.2),
            bad_key: chance(r, 0.1).then(|| between(r, 1, clients as u64 - 1) as usize),
            hash_algo: HashAlgo::Sha256,
            message_events: true,
            sabotage: Sabotage::None,
        };
        // Drawn last, so that adding them left the earlier seeds' shapes alone.
        if chance(r, 0.1) {
            sc.hash_algo = HashAlgo::Sha512;
        }
        sc.message_events = chance(r, 0.8);
        if chance(r, 0.1) {
            // No replay guard at all: skews of any size are harmless.
            sc.replay_window_ms = 0;
        }
        sc
    }
}
