//! The four-service deployment, 3 of 4: a worker. Serves `job.run` from the start and
//! publishes progress on `jobs.progress`; fetches its API token from the vault at boot
//! (waiting for the vault, retrying transient failures; jobs wait for the token), and
//! reloads it when the vault announces a rotation. Its status (`starting`, `idle`,
//! `busy`, jobs done) is refreshed every second.
//!
//! ```text
//! cargo run -p link-tokio --example worker
//! ```

#[path = "support/mod.rs"]
mod support;

use link_tokio::{LinkOptions, RpcHandlerError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Deserialize)]
struct Job {
    #[serde(rename = "jobId")]
    job_id: u64,
    steps: u32,
}

#[derive(Serialize)]
struct Done {
    #[serde(rename = "jobId")]
    job_id: u64,
    result: String,
}

#[derive(Deserialize)]
struct Secret {
    value: String,
}

const TOKEN_PATH: &str = "sec/worker/api-token";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (key, _) = support::key_of("worker");
    // The token: empty until the vault has answered.
    let (token_tx, token) = watch::channel(String::new());
    let done = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));

    let (status_done, status_busy, status_token) = (done.clone(), busy.clone(), token.clone());
    let link = LinkOptions::new()
        .kind("worker")
        .secret(key)
        .status(move || {
            let state = if status_token.borrow().is_empty() {
                "starting"
            } else if status_busy.load(Ordering::Relaxed) > 0 {
                "busy"
            } else {
                "idle"
            };
            json!({ "state": state, "jobsDone": status_done.load(Ordering::Relaxed) })
        })
        // Peers read this status: keep it fresh.
        .status_interval(Duration::from_secs(1))
        .connect(support::hub_url())?;
    link.ready().await?;

    // Jobs: progress on a topic, the result as the RPC's answer. Served from the start,
    // so a coordinator that comes first finds `job.run`; a job waits for the token.
    let job_link = link.clone();
    link.handle("job.run", move |ctx, job: Job| {
        let (link, mut token, done, busy) =
            (job_link.clone(), token.clone(), done.clone(), busy.clone());
        async move {
            let prefix: String = tokio::select! {
                t = token.wait_for(|t| !t.is_empty()) => match t {
                    Ok(t) => t.chars().take(8).collect(),
                    Err(_) => return Err(RpcHandlerError::new("no token").with_code("JOB_FAILED")),
                },
                () = ctx.cancel_signal().cancelled() => {
                    return Err(RpcHandlerError::new("cancelled").with_code("JOB_CANCELLED"));
                }
            };
            busy.fetch_add(1, Ordering::Relaxed);
            println!("worker: job {} from {:?}", job.job_id, ctx.from());
            for step in 1..=job.steps {
                if ctx.is_cancelled() {
                    busy.fetch_sub(1, Ordering::Relaxed);
                    return Err(RpcHandlerError::new("cancelled").with_code("JOB_CANCELLED"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let progress = json!({ "jobId": job.job_id, "step": step, "of": job.steps });
                if let Err(e) = link.publish("jobs.progress", &progress).await {
                    println!("worker: progress not published: {e}");
                }
            }
            busy.fetch_sub(1, Ordering::Relaxed);
            done.fetch_add(1, Ordering::Relaxed);
            Ok(Done {
                job_id: job.job_id,
                result: format!("{} steps done with token {prefix}…", job.steps),
            })
        }
    });
    println!("worker: serving job.run (Ctrl-C stops); waiting for the vault");

    // Boot: the token from the vault; jobs wait for it.
    support::wait_for_peer(&link, "vault", Duration::from_secs(60)).await?;
    let secret: Secret = support::rpc_with_retry(
        &link,
        "vault",
        "secs.get",
        &json!({ "path": TOKEN_PATH }),
        5,
    )
    .await?;
    token_tx.send_replace(secret.value);
    println!("worker: token loaded from the vault");

    // Hot reload on rotation.
    let mut rotations = link.subscribe("secs.changed.worker").await?;
    let reload_link = link.clone();
    tokio::spawn(async move {
        while let Some(msg) = rotations.recv().await {
            let Ok(change) = msg.payload_as::<serde_json::Value>() else {
                continue;
            };
            if change["path"] != TOKEN_PATH || change["action"] != "set" {
                continue;
            }
            match reload_link
                .rpc::<_, Secret>("vault", "secs.get", &json!({ "path": TOKEN_PATH }))
                .await
            {
                Ok(s) => {
                    token_tx.send_replace(s.value);
                    println!("worker: token rotated");
                }
                Err(e) => println!("worker: token reload failed: {} {e}", e.code()),
            }
        }
    });

    support::shutdown_signal().await;
    link.stop().await?;
    println!("worker: stopped");
    Ok(())
}
