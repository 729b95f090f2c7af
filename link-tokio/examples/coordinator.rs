//! The four-service deployment, 4 of 4: a coordinator. Listens to `jobs.progress`,
//! waits for a worker, dispatches `LINK_JOBS` jobs (3), prints each result and the
//! worker's status, then exits.
//!
//! ```text
//! cargo run -p link-tokio --example coordinator
//! ```

#[path = "support/mod.rs"]
mod support;

use futures_util::future::join_all;
use link_tokio::LinkOptions;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (key, _) = support::key_of("coordinator");
    let jobs: u64 = support::env_or("LINK_JOBS", "3").parse()?;
    let link = LinkOptions::new()
        .kind("coordinator")
        .secret(key)
        .default_rpc_timeout(Duration::from_secs(30))
        .connect(support::hub_url())?;
    link.ready().await?;

    // Progress from every worker, as it happens.
    let mut progress = link.subscribe("jobs.progress").await?;
    tokio::spawn(async move {
        while let Some(msg) = progress.recv().await {
            if let Ok(p) = msg.payload_as::<Value>() {
                println!(
                    "coordinator: job {} step {}/{} ({})",
                    p["jobId"],
                    p["step"],
                    p["of"],
                    msg.from.as_deref().unwrap_or("?")
                );
            }
        }
    });

    println!("coordinator: waiting for a worker");
    support::wait_for_peer(&link, "worker", Duration::from_secs(60)).await?;
    let time: Value = link.rpc("server", "hub.time", &()).await?;
    println!("coordinator: hub time {}", time["now"]);

    // Dispatch all jobs at once; each answer arrives when its job is done.
    let calls = (1..=jobs).map(|id| {
        let link = link.clone();
        async move {
            let r: Result<Value, _> = support::rpc_with_retry(
                &link,
                "worker",
                "job.run",
                &json!({ "jobId": id, "steps": 3 }),
                3,
            )
            .await;
            (id, r)
        }
    });
    let mut failed = 0;
    for (id, r) in join_all(calls).await {
        match r {
            Ok(done) => println!("coordinator: job {id} done: {}", done["result"]),
            Err(e) => {
                failed += 1;
                println!("coordinator: job {id} failed: {} {e}", e.code());
            }
        }
    }
    // The worker refreshes its status every second: wait (a little) for one that
    // counts these jobs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let status = loop {
        let status = link
            .peer_status("worker")
            .await?
            .and_then(|s| s.status)
            .map(|s| s.to_serde());
        let counted = status
            .as_ref()
            .and_then(|s| s["jobsDone"].as_u64())
            .is_some_and(|n| n >= jobs);
        if counted || tokio::time::Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if let Some(status) = status {
        println!("coordinator: worker status {status}");
    }
    link.stop().await?;
    if failed > 0 {
        return Err(format!("{failed} jobs failed").into());
    }
    println!("coordinator: all {jobs} jobs done");
    Ok(())
}
