//! The four-service deployment, 3 of 4: a worker. Fetches its API token from the vault
//! at boot (waiting for the vault, retrying transient failures), reloads it when the
//! vault announces a rotation, serves `job.run` and publishes progress on
//! `jobs.progress`.
//!
//! ```text
//! cargo run -p link-tokio --example worker
//! ```

#[path = "support/mod.rs"]
mod support;

use link_tokio::{LinkOptions, RpcHandlerError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let token = Arc::new(Mutex::new(String::new()));
    let done = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));

    let (status_done, status_busy) = (done.clone(), busy.clone());
    let link = LinkOptions::new()
        .kind("worker")
        .secret(key)
        .status(move || {
            json!({
                "state": if status_busy.load(Ordering::Relaxed) > 0 { "busy" } else { "idle" },
                "jobsDone": status_done.load(Ordering::Relaxed),
            })
        })
        .connect(support::hub_url())?;
    link.ready().await?;
    println!("worker: ready; waiting for the vault");

    // Boot: the token from the vault, before taking any job.
    support::wait_for_peer(&link, "vault", Duration::from_secs(30)).await?;
    let secret: Secret = support::rpc_with_retry(
        &link,
        "vault",
        "secs.get",
        &json!({ "path": TOKEN_PATH }),
        5,
    )
    .await?;
    *token.lock().map_err(|_| "token lock")? = secret.value;
    println!("worker: token loaded from the vault");

    // Hot reload on rotation.
    let mut rotations = link.subscribe("secs.changed.worker").await?;
    let (reload_link, reload_token) = (link.clone(), token.clone());
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
                    if let Ok(mut t) = reload_token.lock() {
                        *t = s.value;
                    }
                    println!("worker: token rotated");
                }
                Err(e) => println!("worker: token reload failed: {} {e}", e.code()),
            }
        }
    });

    // Jobs: progress on a topic, the result as the RPC's answer.
    let (job_link, job_token) = (link.clone(), token.clone());
    link.handle("job.run", move |ctx, job: Job| {
        let (link, token, done, busy) = (
            job_link.clone(),
            job_token.clone(),
            done.clone(),
            busy.clone(),
        );
        async move {
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
            let prefix: String = token
                .lock()
                .map(|t| t.chars().take(4).collect())
                .unwrap_or_default();
            busy.fetch_sub(1, Ordering::Relaxed);
            done.fetch_add(1, Ordering::Relaxed);
            Ok(Done {
                job_id: job.job_id,
                result: format!("{} steps done with token {prefix}…", job.steps),
            })
        }
    });
    println!("worker: serving job.run (Ctrl-C stops)");

    support::shutdown_signal().await;
    link.stop().await?;
    println!("worker: stopped");
    Ok(())
}
