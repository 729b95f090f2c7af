//! Deterministic simulation of a link network: one `HubState` and several `Connection`s
//! over a simulated network, every choice drawn from a single `u64` seed, with the
//! protocol's invariants checked after every step.
//!
//! The simulator plays every role the sans-IO core leaves to others: the network
//! (latency, jitter, bandwidth, lost links, a crashing hub), the clocks (skewed per
//! peer) and the applications (a workload of RPCs, publishes, directs, subscriptions
//! and statuses; RPC handlers on the peers and on the hub; ACL hooks and key lookups).
//! [`run`] returns an [`Outcome`] whose `violation` names the first broken invariant;
//! [`repro_command`] is the one line that replays a seed.
//!
//! # Running it
//!
//! - `cargo test -p link-sim` runs 1,000 seeds (about 80 s of CPU in a debug build);
//!   `SIM_SEEDS=N` runs N, `SIM_FIRST_SEED=S` starts elsewhere.
//! - `SIM_SEED=n cargo test -p link-sim -- one_seed --nocapture` replays one seed;
//!   add `SIM_VERBOSE=1` to print every step and every output.
//!
//! # What is checked, continuously
//!
//! - Every RPC the application issued settles exactly once (result, remote error,
//!   timeout, abort or disconnect), never later than its timeout, with the result its
//!   target produced; a refused call settles once too.
//! - Every delivered topic message, direct, RPC request and relayed status carries the
//!   `from` of its true sender; nothing is delivered twice, nothing to a peer that is not
//!   ready or not subscribed, nothing the ACL denied; per sender, deliveries keep order.
//! - The hub never writes on a socket before its `hello.ack`, after closing or
//!   replacing it, or after it was reported closed; it never lets in a peer with a wrong
//!   key; its counters agree with its events (peers, subscriptions, server calls) and
//!   its outboxes stay within their caps, as do the clients'.
//! - Every direct and publish the application handed over leaves the client exactly
//!   once, in order (or was refused, or the link was stopped).
//! - After the faults stop and the network settles: every live peer is ready, nothing is
//!   queued, nothing pending, the hub lists exactly the live peers, probes (a direct to
//!   every peer, a publish on every topic, an RPC to a peer and to the server) all
//!   arrive, everyone knows everyone's latest status, and a graceful drain completes.

mod scenario;
mod world;

pub use scenario::{KeyMode, LinkProfile, Sabotage, Scenario};
pub use world::Stats;

/// What one simulated run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Hash of everything that happened, in order: equal seeds give equal hashes.
    pub trace_hash: u64,
    /// The first invariant that failed, with the simulated time (ms) it failed at.
    pub violation: Option<String>,
    /// Counters of what the run exercised.
    pub stats: Stats,
}

/// Runs the scenario drawn from `seed` to its end (or its first violation).
pub fn run(seed: u64) -> Outcome {
    run_scenario(seed, Scenario::from_seed(seed))
}

/// Runs an explicit scenario; `seed` drives every choice made while it runs.
pub fn run_scenario(seed: u64, scenario: Scenario) -> Outcome {
    world::World::new(seed, scenario, false).run()
}

/// Runs `seed` printing every step and every output to stderr.
pub fn run_verbose(seed: u64) -> Outcome {
    world::World::new(seed, Scenario::from_seed(seed), true).run()
}

/// The command that replays `seed` alone.
pub fn repro_command(seed: u64) -> String {
    format!("SIM_SEED={seed} cargo test -p link-sim --release -- one_seed --nocapture")
}
