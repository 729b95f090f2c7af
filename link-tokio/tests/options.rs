//! Option builders: the reference's defaults, `LINK_*` environment parsing, and
//! refusals at connect time.

mod common;

use common::*;
use link_tokio::{HashAlgo, HubOptions, LinkOptions};
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn client_defaults_are_the_reference_defaults() {
    let o = LinkOptions::new();
    let c = o.client_config();
    assert_eq!(c.hash_algo, HashAlgo::Sha256);
    assert_eq!(c.limits.replay_window_ms, 300_000);
    assert_eq!(c.limits.max_recent_ids, 10_000);
    assert_eq!(c.limits.max_message_bytes, 1_048_576);
    assert_eq!(c.max_buffered_bytes, 4_194_304);
    assert_eq!(c.max_outbox_bytes, 16_777_216);
    assert_eq!(c.default_rpc_timeout, Duration::from_millis(5_000));
    assert_eq!(c.max_concurrent_rpc, 256);
    assert_eq!(c.status_interval, Duration::from_millis(10_000));
    assert_eq!(c.keepalive_interval, Duration::from_millis(30_000));
    assert_eq!(c.hello_ack_diagnostic, Duration::from_millis(5_000));
    assert_eq!(c.reconnect_initial, Duration::from_millis(1_000));
    assert_eq!(c.reconnect_max, Duration::from_millis(10_000));
    assert_eq!(c.reconnect_growth, 1.5);
    assert_eq!(c.reconnect_jitter, 0.5);
    assert_eq!(c.max_reconnect_attempts, None);
    assert_eq!(c.stop_drain, Duration::from_millis(5_000));
    assert!(!c.per_message_deflate && !c.reconnect_on_rejection && !c.expose_rpc_errors);
    assert_eq!(c.name, None, "name defaults to the kind");

    let h = HubOptions::new("s");
    let h = h.hub_config();
    assert_eq!(h.max_pending_sockets, 1024);
    assert_eq!(h.keepalive_interval, Duration::from_millis(15_000));
    assert_eq!(h.hello_timeout, Duration::from_millis(10_000));
    assert_eq!(h.max_concurrent_rpc, 256);
    assert_eq!(h.features, vec!["topics".to_owned(), "direct".to_owned()]);
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn link_env_variables_are_read() {
    let o = LinkOptions::new()
        .apply_env(
            env(&[
                ("URL", "ws://hub:9000"),
                ("KIND", "worker"),
                ("SECRET", "s3"),
                ("NAME", "worker-1"),
                ("HASH_ALGO", "sha512"),
                ("PERMESSAGE_DEFLATE", "false"),
                ("RECONNECT_ON_REJECTION", "true"),
                ("RECONNECT_JITTER", "0.25"),
                ("REPLAY_WINDOW_MS", "0"),
                ("MAX_RECENT_IDS", "50"),
                ("MAX_MESSAGE_BYTES", "2048"),
                ("MAX_BUFFERED_BYTES", "4096"),
                ("UNRELATED", "x"),
            ]),
            "LINK_",
        )
        .expect("valid env");
    assert_eq!(o.configured_url(), Some("ws://hub:9000"));
    let c = o.client_config();
    assert_eq!((c.kind.as_str(), c.secret.as_str()), ("worker", "s3"));
    assert_eq!(c.name.as_deref(), Some("worker-1"));
    assert_eq!(c.hash_algo, HashAlgo::Sha512);
    assert!(c.reconnect_on_rejection && !c.per_message_deflate);
    assert_eq!(c.reconnect_jitter, 0.25);
    assert_eq!(c.limits.replay_window_ms, 0);
    assert_eq!(c.limits.max_recent_ids, 50);
    assert_eq!(c.limits.max_message_bytes, 2048);
    assert_eq!(c.max_buffered_bytes, 4096);

    // Empty values keep the default.
    let o = LinkOptions::new()
        .apply_env(env(&[("MAX_RECENT_IDS", " ")]), "LINK_")
        .expect("empty is unset");
    assert_eq!(o.client_config().limits.max_recent_ids, 10_000);
}

#[test]
fn malformed_env_variables_name_the_variable() {
    for (name, value) in [
        ("REPLAY_WINDOW_MS", "soon"),
        ("MAX_MESSAGE_BYTES", "-1"),
        ("HASH_ALGO", "md5"),
        ("RECONNECT_JITTER", "2"),
        ("PERMESSAGE_DEFLATE", "maybe"),
    ] {
        let e = LinkOptions::new()
            .apply_env(env(&[(name, value)]), "FOO_")
            .expect_err(name);
        assert_eq!(e.code(), "INVALID_ENV");
        assert!(e.to_string().contains(&format!("FOO_{name}")), "{e}");
    }
}

#[tokio::test]
async fn bad_options_are_refused_at_connect() {
    let e = options("ok")
        .per_message_deflate(true)
        .connect("ws://127.0.0.1:9")
        .expect_err("no compression available");
    assert_eq!(e.code(), "UNSUPPORTED_OPTION");
    let e = options("bad kind!")
        .connect("ws://127.0.0.1:9")
        .expect_err("invalid kind");
    assert_eq!(e.code(), "INVALID_CONFIG");
    let e = LinkOptions::new()
        .kind("k")
        .secret("s")
        .start()
        .expect_err("no url");
    assert_eq!(e.code(), "INVALID_CONFIG");
}
