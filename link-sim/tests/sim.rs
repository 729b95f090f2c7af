//! Runs the simulator over many seeds (CI), one seed (`SIM_SEED=n … one_seed`), and
//! checks that a seed replays exactly.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use link_sim::{Outcome, Sabotage, Scenario, repro_command, run, run_scenario, run_verbose};

/// Seeds run by default; `SIM_SEEDS=N` runs more (or fewer).
const DEFAULT_SEEDS: u64 = 1_000;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

/// Runs one seed, turning a panic into a failure that names the seed.
fn run_reporting(seed: u64) -> Result<Outcome, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| run(seed))).map_err(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!(
            "seed {seed} panicked: {msg}\n  reproduce: {}",
            repro_command(seed)
        )
    })?;
    match &outcome.violation {
        None => Ok(outcome),
        Some(v) => Err(format!(
            "seed {seed} broke an invariant: {v}\n  reproduce: {}",
            repro_command(seed)
        )),
    }
}

#[test]
fn many_seeds() {
    if std::env::var("SIM_SEED").is_ok() {
        return; // one_seed does the work
    }
    let n = env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut total = link_sim::Stats::default();
    for seed in first..first + n {
        match run_reporting(seed) {
            Ok(o) => total.add(&o.stats),
            Err(e) => {
                eprintln!("{e}");
                failures.push(seed);
                if failures.len() >= 10 {
                    break;
                }
            }
        }
    }
    eprintln!(
        "link-sim: {n} seeds from {first} in {:.1}s: {total:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn one_seed() {
    let Some(seed) = env_u64("SIM_SEED") else {
        return;
    };
    let o = if std::env::var("SIM_VERBOSE").is_ok() {
        run_verbose(seed)
    } else {
        run(seed)
    };
    eprintln!("seed {seed}: {:?}", o.stats);
    if let Err(e) = run_reporting(seed) {
        panic!("{e}");
    }
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 17, 4242] {
        let a = run(seed);
        let b = run(seed);
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed} did not replay");
        assert_eq!(a.stats, b.stats, "seed {seed} did not replay");
        assert!(a.stats.frames > 0, "seed {seed} moved no frames");
    }
    assert_ne!(
        run(3).trace_hash,
        run(4).trace_hash,
        "different seeds, same run"
    );
}

/// The invariants are not vacuous: a network that loses, repeats, reorders or forges
/// what the hub sends is caught within a few seeds.
#[test]
fn sabotage_is_caught() {
    for sabotage in [
        Sabotage::DropFrames,
        Sabotage::DuplicateFrames,
        Sabotage::ReorderFrames,
        Sabotage::ForgeFrom,
    ] {
        let caught = (0..20).find_map(|seed| {
            let mut sc = Scenario::from_seed(seed);
            sc.sabotage = sabotage;
            run_scenario(seed, sc).violation
        });
        let Some(v) = caught else {
            panic!("{sabotage:?} went unnoticed over 20 seeds");
        };
        eprintln!("{sabotage:?}: {v}");
    }
}
