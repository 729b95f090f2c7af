//! The four-service deployment, 1 of 4: the hub, with one key per peer kind.
//!
//! ```text
//! cargo run -p link-tokio --example hub            # then: vault, worker, coordinator
//! ```
//!
//! Keys come from `LINK_KEY_VAULT`, `LINK_KEY_WORKER`, `LINK_KEY_COORDINATOR` (demo
//! keys when unset: laptop only). `LINK_HOST` (127.0.0.1) and `LINK_PORT` (8080) choose
//! where it listens. `/health` and `/state` are served on the same port.

#[path = "support/mod.rs"]
mod support;

use futures_util::StreamExt;
use link_tokio::{HubEvent, HubOptions, HubServerOptions, HubStreamEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut keys = Vec::new();
    for (kind, var) in support::KINDS {
        let (key, demo) = support::key_of(kind);
        if demo {
            println!("hub: {var} is not set: using a demo key for {kind}");
        }
        keys.push((kind, key));
    }
    let host = support::env_or("LINK_HOST", "127.0.0.1");
    let port: u16 = support::env_or("LINK_PORT", "8080").parse()?;

    let hub = HubOptions::per_peer_keys(keys)
        // A server-side RPC any peer can call with `to: "server"`.
        .handle("hub.time", |_ctx, _req: serde_json::Value| async move {
            Ok::<_, link_tokio::RpcHandlerError>(serde_json::json!({
                "now": std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0)
            }))
        })
        .message_events(false);
    let server = HubServerOptions::new(hub)
        .host(host)
        .port(port)
        .state_route(true)
        .start()
        .await?;
    println!("hub: listening {} (Ctrl-C stops)", server.url());

    // Membership and security events, as an operator wants to see them.
    let mut events = server.hub().events();
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            match ev {
                HubStreamEvent::Hub(HubEvent::PeerConnected { kind, .. }) => {
                    println!("hub: + {kind}");
                }
                HubStreamEvent::Hub(HubEvent::PeerDisconnected { kind, code, .. }) => {
                    println!("hub: - {kind} ({code:?})");
                }
                HubStreamEvent::Hub(HubEvent::ProtocolError { reason, .. }) => {
                    println!("hub: dropped a frame: {}", reason.as_str());
                }
                _ => {}
            }
        }
    });

    // SIGINT/SIGTERM start a graceful shutdown; wait for it.
    server.wait().await?;
    println!("hub: stopped");
    Ok(())
}
