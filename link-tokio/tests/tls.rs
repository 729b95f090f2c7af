//! wss: a `HubServer` with a self-signed certificate generated here (PEM files on
//! disk, as an operator would give them), clients trusting exactly that certificate.

mod common;

use common::*;
use link_tokio::{HubOptions, HubServerOptions, RpcHandlerError, tls_config_with_roots};
use serde_json::{Value, json};

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = TempDir(std::env::temp_dir().join(format!(
        "link-tls-test-{}-{}",
        std::process::id(),
        link_driver_seed()
    )));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let cert_path = dir.0.join("cert.pem");
    let key_path = dir.0.join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).expect("write cert");
    std::fs::write(&key_path, ck.key_pair.serialize_pem()).expect("write key");

    let hub = HubOptions::new(SECRET).handle("whoami", |ctx, _: Value| async move {
        Ok::<_, RpcHandlerError>(json!({ "kind": ctx.from() }))
    });
    let server = server_with(HubServerOptions::new(hub).tls(&cert_path, &key_path)).await;
    assert!(server.url().starts_with("wss://"));
    let url = format!("wss://localhost:{}", server.local_addr().port());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).expect("root");
    let tls = tls_config_with_roots(roots).expect("client tls");

    let a = options("secure")
        .tls_config(tls.clone())
        .connect(&url)
        .expect("starts");
    within("ready over wss", a.ready()).await.expect("ready");
    let r: Value = a.rpc("server", "whoami", &()).await.expect("rpc over wss");
    assert_eq!(r, json!({ "kind": "secure" }));

    // Without the certificate in its roots a client never gets past TLS.
    let untrusting = options("untrusting").connect(&url).expect("starts");
    let mut events = untrusting.events();
    let error = next_event(&mut events, "tls failure", |e| match e {
        link_tokio::Event::TransportError { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(error.contains("tls"), "{error}");
    assert!(!untrusting.is_ready());

    untrusting.stop_now().await.expect("stop");
    a.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

fn link_driver_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}
