//! wss: a `HubServer` with a self-signed certificate generated here (PEM files on
//! disk, as an operator would give them), clients trusting exactly that certificate.

use crate::{Kit, SECRET};
use link_driver::RpcHandlerError;
use link_driver::client::Event;
use link_driver::hub::HubOptions;
use link_driver::server::{HubServerOptions, Serve};
use link_driver::tls::tls_config_with_roots;
use serde_json::{Value, json};

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory under the system temp dir, removed on drop.
fn temp_dir() -> TempDir {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    let dir = std::env::temp_dir().join(format!("link-tls-{}-{}", std::process::id(), h.finish()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

pub async fn wss_with_a_self_signed_certificate<R: Serve>() {
    let k = Kit::<R>::default();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = temp_dir();
    let cert_path = dir.0.join("cert.pem");
    let key_path = dir.0.join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).expect("write cert");
    std::fs::write(&key_path, ck.key_pair.serialize_pem()).expect("write key");

    let hub = HubOptions::new(SECRET).handle("whoami", |ctx, _: Value| async move {
        Ok::<_, RpcHandlerError>(json!({ "kind": ctx.from() }))
    });
    let server = k
        .server_with(HubServerOptions::new(hub).tls(&cert_path, &key_path))
        .await;
    assert!(server.url().starts_with("wss://"));
    let url = format!("wss://localhost:{}", server.local_addr().port());

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).expect("root");
    let tls = tls_config_with_roots(roots).expect("client tls");

    let a = k
        .options("secure")
        .tls_config(tls.clone())
        .connect(&url)
        .expect("starts");
    k.within("ready over wss", a.ready()).await.expect("ready");
    let r: Value = a.rpc("server", "whoami", &()).await.expect("rpc over wss");
    assert_eq!(r, json!({ "kind": "secure" }));

    // Without the certificate in its roots a client never gets past TLS.
    let untrusting = k.options("untrusting").connect(&url).expect("starts");
    let mut events = untrusting.events();
    let error = k
        .next_event(&mut events, "tls failure", |e| match e {
            Event::TransportError { error } => Some(error.clone()),
            _ => None,
        })
        .await;
    assert!(error.contains("tls"), "{error}");
    assert!(!untrusting.is_ready());

    untrusting.stop_now().await.expect("stop");
    a.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}
