//! One process, the whole bus: a hub on a free loopback port, a worker that answers an
//! RPC and reports status, and a coordinator that calls it, publishes, subscribes and
//! sends a direct message.
//!
//! ```text
//! cargo run -p link-tokio --example quickstart
//! ```

use futures_util::StreamExt;
use link_tokio::{ClientEvent, Event, HubOptions, HubServerOptions, LinkOptions, RpcHandlerError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Debug)]
struct Sum {
    sum: i64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = "quickstart-secret";

    // The hub: `/health` on the same port; port 0 picks a free one.
    let server = HubServerOptions::new(HubOptions::new(secret))
        .host("127.0.0.1")
        .port(0)
        .start()
        .await?;
    let url = server.url();
    println!("hub listening on {url}");

    // A worker: answers `math.add`, reports a status every 10 s (and on connect).
    let worker = LinkOptions::new()
        .kind("worker")
        .secret(secret)
        .status(|| serde_json::json!({ "state": "idle" }))
        .handle("math.add", |ctx, req: Add| async move {
            println!("worker: math.add from {:?}", ctx.from());
            Ok::<_, RpcHandlerError>(Sum { sum: req.a + req.b })
        })
        .connect(url.as_str())?;
    let mut worker_events = worker.events();

    // A coordinator: the same client type, another kind.
    let coordinator = LinkOptions::new()
        .kind("coordinator")
        .secret(secret)
        .connect(url.as_str())?;
    coordinator.ready().await?;
    worker.ready().await?;

    // RPC with serde types.
    let sum: Sum = coordinator
        .rpc("worker", "math.add", &Add { a: 2, b: 40 })
        .await?;
    println!("coordinator: 2 + 40 = {}", sum.sum);

    // The hub answers RPCs too.
    let health: serde_json::Value = coordinator.rpc("server", "link.health", &()).await?;
    println!("coordinator: hub health {health}");

    // Pub/sub: the subscription is a stream, dropped = unsubscribed. Once
    // `subscribe` returns, the hub has it: the publish below reaches it.
    let mut progress = worker.subscribe("jobs.progress").await?;
    coordinator
        .publish("jobs.progress", &serde_json::json!({ "pct": 50 }))
        .await?;
    if let Some(msg) = progress.next().await {
        let payload: serde_json::Value = msg.payload_as()?;
        println!("worker: {} from {:?}: {payload}", msg.topic, msg.from);
    }

    // Direct, fire-and-forget: arrives as an event.
    coordinator
        .send("worker", "cache.flush", &serde_json::json!({ "all": true }))
        .await?;
    let direct = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = worker_events.next().await {
            if let Event::Link(ClientEvent::Direct {
                from,
                direct_type,
                data,
            }) = ev
            {
                let data = data.map(|d| d.to_serde().to_string()).unwrap_or_default();
                return Some(format!("{direct_type} from {from:?}: {data}"));
            }
        }
        None
    })
    .await?;
    println!("worker: direct {}", direct.unwrap_or_default());

    // Peers and their last status.
    for peer in coordinator.peers().await? {
        println!("peer {} (connected at {})", peer.kind, peer.connected_at);
    }
    if let Some(status) = coordinator.peer_status("worker").await? {
        let last = status.status.map(|s| s.to_serde().to_string());
        println!("worker status: {}", last.unwrap_or_default());
    }

    coordinator.stop().await?;
    worker.stop().await?;
    server.stop().await?;
    println!("done");
    Ok(())
}
