//! What the four-service deployment examples share: configuration from `LINK_*`
//! variables with demo defaults, and the reference's `waitForPeer` / `rpcWithRetry`
//! helpers.

#![allow(dead_code)] // each example uses its own subset

use futures_util::StreamExt;
use link_tokio::{ClientEvent, Error, Event, LinkClient};
use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;

/// The kinds of the deployment and the variable holding each one's key.
pub const KINDS: [(&str, &str); 3] = [
    ("vault", "LINK_KEY_VAULT"),
    ("worker", "LINK_KEY_WORKER"),
    ("coordinator", "LINK_KEY_COORDINATOR"),
];

/// `name` from the environment, or `default`.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The hub's URL (`LINK_URL`, default `ws://127.0.0.1:8080`).
pub fn hub_url() -> String {
    env_or("LINK_URL", "ws://127.0.0.1:8080")
}

/// The key of `kind`: its `LINK_KEY_*` variable, else a demo key that is only fit for
/// a laptop (the hub example warns when it uses them).
pub fn key_of(kind: &str) -> (String, bool) {
    let var = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| *v)
        .unwrap_or("LINK_SECRET");
    match std::env::var(var).ok().filter(|v| !v.is_empty()) {
        Some(key) => (key, false),
        None => (format!("demo-key-{kind}"), true),
    }
}

/// Wait until a peer of `kind` is connected (`waitForPeer`): event-driven, bounded.
pub async fn wait_for_peer(link: &LinkClient, kind: &str, timeout: Duration) -> Result<(), Error> {
    // Listen first, then look: a peer that joins in between is not missed.
    let mut events = link.events();
    let present = async || -> Result<bool, Error> {
        Ok(link
            .peers()
            .await?
            .iter()
            .any(|p| p.kind == kind && p.connected))
    };
    let wait = async {
        if present().await? {
            return Ok(());
        }
        while let Some(ev) = events.next().await {
            let maybe = match ev {
                Event::Link(ClientEvent::PeerConnected(p)) => p.kind == kind,
                // Missed or merged updates: look again.
                Event::Link(ClientEvent::PeerReplaced { .. }) | Event::Lagged { .. } => true,
                _ => false,
            };
            if maybe && present().await? {
                return Ok(());
            }
        }
        Err(Error::Stopped)
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| Error::Timeout(timeout))?
}

/// `rpcWithRetry`: retry transient failures (timeout, disconnect, not ready) with a
/// linear backoff; a remote error or a cancellation is final.
pub async fn rpc_with_retry<Req, Resp>(
    link: &LinkClient,
    to: &str,
    rpc_type: &str,
    req: &Req,
    tries: u32,
) -> Result<Resp, Error>
where
    Req: Serialize + ?Sized + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    let mut attempt = 1;
    loop {
        match link.rpc::<Req, Resp>(to, rpc_type, req).await {
            Ok(r) => return Ok(r),
            Err(e)
                if attempt < tries
                    && matches!(
                        e.code(),
                        "RPC_TIMEOUT" | "RPC_DISCONNECT" | "LINK_NOT_READY" | "RPC_NO_TARGET"
                    ) =>
            {
                println!("{to}:{rpc_type} failed ({}), retrying", e.code());
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Wait for Ctrl-C (or SIGTERM on Unix).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
