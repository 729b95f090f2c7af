//! The four-service deployment, 2 of 4: a secrets vault peer. Serves `secs.get
//! {path}` and `secs.set {path, value}`, and announces rotations on
//! `secs.changed.<namespace>` (the reference's `loadSecrets` convention).
//!
//! ```text
//! cargo run -p link-tokio --example vault
//! ```

#[path = "support/mod.rs"]
mod support;

use link_tokio::{LinkOptions, RpcHandlerError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Deserialize)]
struct Get {
    path: String,
}

#[derive(Deserialize)]
struct Set {
    path: String,
    value: String,
}

type Store = Arc<Mutex<BTreeMap<String, String>>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (key, _) = support::key_of("vault");
    let store: Store = Arc::new(Mutex::new(BTreeMap::from([
        ("sec/worker/api-token".to_owned(), "tok-5f2c9a".to_owned()),
        (
            "sec/shared/sentry-dsn".to_owned(),
            "https://sentry.invalid/1".to_owned(),
        ),
    ])));

    let get_store = store.clone();
    let set_store = store.clone();
    let status_store = store.clone();
    let link = LinkOptions::new()
        .kind("vault")
        .secret(key)
        .status(move || json!({ "secrets": status_store.lock().map(|s| s.len()).unwrap_or(0) }))
        .handle("secs.get", move |ctx, req: Get| {
            let store = get_store.clone();
            async move {
                println!("vault: secs.get {} for {:?}", req.path, ctx.from());
                let value = store.lock().ok().and_then(|s| s.get(&req.path).cloned());
                match value {
                    Some(value) => Ok(json!({ "path": req.path, "value": value })),
                    None => Err(RpcHandlerError::new(format!("no secret at {}", req.path))
                        .with_code("SECRET_NOT_FOUND")),
                }
            }
        })
        .handle("secs.set", move |_ctx, req: Set| {
            let store = set_store.clone();
            async move {
                if let Ok(mut s) = store.lock() {
                    s.insert(req.path.clone(), req.value);
                }
                Ok::<_, RpcHandlerError>(json!({ "ok": true, "path": req.path }))
            }
        })
        .connect(support::hub_url())?;
    let ready = link.ready().await?;
    println!(
        "vault: ready as {} (hub features {:?})",
        ready.kind, ready.features
    );

    // Rotations: after a `secs.set`, tell the namespace's watchers. (Here: rotate the
    // worker's token once a minute, so the worker's hot-reload is visible.)
    let rotate = {
        let link = link.clone();
        let store = store.clone();
        async move {
            let mut n = 0u32;
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                n += 1;
                let path = "sec/worker/api-token";
                if let Ok(mut s) = store.lock() {
                    s.insert(path.to_owned(), format!("tok-rotated-{n}"));
                }
                let event: Value = json!({ "path": path, "action": "set" });
                match link.publish("secs.changed.worker", &event).await {
                    Ok(()) => println!("vault: rotated {path}"),
                    Err(e) => println!("vault: rotation not announced: {e}"),
                }
            }
        }
    };
    tokio::select! {
        _ = rotate => {}
        _ = support::shutdown_signal() => {}
    }
    link.stop().await?;
    println!("vault: stopped");
    Ok(())
}
