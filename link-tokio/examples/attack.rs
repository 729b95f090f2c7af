//! Attack a running hub and print what it survived: every attack of the adversarial
//! suite (`tests/attack_kit/attacks.rs`) against a fresh `HubServer` on 127.0.0.1:0,
//! with alice and bob (legitimate `LinkClient`s) working throughout.
//!
//! ```text
//! cargo run -p link-tokio --example attack            # every attack
//! cargo run -p link-tokio --example attack -- flood   # attacks whose name contains "flood"
//! ```
//!
//! Exits with status 1 if any verdict fails.

#[path = "../tests/attack_kit/mod.rs"]
mod attack_kit;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut reports = Vec::new();
    for name in attack_kit::attacks::ALL {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        eprintln!("attacking: {name}");
        reports.push(attack_kit::attacks::run(name).await);
    }
    println!("{}", attack_kit::table(&reports));
    println!(
        "memory (hub accounting after the attack; RSS growth bound {} MiB):",
        attack_kit::RSS_BOUND >> 20
    );
    for r in &reports {
        let m = match &r.memory {
            Ok(m) => m.clone(),
            Err(e) => format!("NO: {e}"),
        };
        println!("  {:30} {m} ({:.1} s)", r.attack, r.secs);
    }
    if reports.iter().any(|r| !r.ok()) {
        std::process::exit(1);
    }
}
