//! The body of the `smol` and `async-std` examples: a hub server on a free loopback
//! port and two services talking through it (RPC, publish/subscribe, a direct message,
//! status), then a graceful shutdown. Generic over the runtime, like the library.

use futures_util::StreamExt;
use link_async_std::{ClientEvent, Error, Event, RpcHandlerError};
use link_driver::client::LinkOptions;
use link_driver::hub::HubOptions;
use link_driver::server::{HubServerOptions, Serve};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    id: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Done {
    id: u32,
    by: String,
}

pub async fn hub_and_two_clients<R: Serve>() -> Result<(), Error> {
    let server = HubServerOptions::new(HubOptions::<R>::new("s3cret"))
        .host("127.0.0.1")
        .port(0)
        .state_route(true)
        .start()
        .await?;
    println!("hub on {} (GET /health, /state)", server.url());

    let worker = LinkOptions::<R>::new()
        .kind("worker")
        .secret("s3cret")
        .status(|| json!({ "state": "idle" }))
        .handle("job.run", |ctx, job: Job| async move {
            println!("worker: job {} from {:?}", job.id, ctx.from());
            Ok::<_, RpcHandlerError>(Done {
                id: job.id,
                by: "worker".into(),
            })
        })
        .connect(server.url())?;
    let coordinator = LinkOptions::<R>::new()
        .kind("coordinator")
        .secret("s3cret")
        .connect(server.url())?;
    let mut events = coordinator.events();
    worker.ready().await?;
    coordinator.ready().await?;

    let done: Done = coordinator.rpc("worker", "job.run", &Job { id: 7 }).await?;
    println!("coordinator: {done:?}");

    // Once `subscribe` returns, the hub has the subscription.
    let mut progress = coordinator.subscribe("jobs.progress").await?;
    worker
        .publish("jobs.progress", &json!({ "id": 7, "pct": 100 }))
        .await?;
    if let Some(m) = progress.next().await {
        println!(
            "coordinator: {} from {:?}: {:?}",
            m.topic,
            m.from,
            m.payload_as::<serde_json::Value>()?
        );
    }

    worker.send("coordinator", "hello", &"hi there").await?;
    while let Some(ev) = events.next().await {
        if let Event::Link(ClientEvent::Direct {
            from, direct_type, ..
        }) = ev
        {
            println!("coordinator: direct {direct_type} from {from:?}");
            break;
        }
    }
    if let Some(status) = coordinator.peer_status("worker").await? {
        println!(
            "coordinator: worker status {:?}",
            status.status.map(|s| s.to_serde())
        );
    }

    coordinator.stop().await?;
    worker.stop().await?;
    server.stop().await?;
    println!("stopped");
    Ok(())
}
