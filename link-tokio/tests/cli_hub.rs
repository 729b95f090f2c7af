//! `link-hub` as a process: its configuration, refusals, dev mode, per-peer keys and
//! the `listening` line that scripts wait for.

mod cli_support;

use cli_support::*;

const SECRET: &str = "cli-test-secret";

#[test]
fn port_zero_prints_the_real_listening_url_and_serves_peers() {
    let hub = hub(&["--secret", SECRET]);
    let port: u16 = hub
        .url
        .strip_prefix("ws://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected listening url {}", hub.url));
    assert_ne!(port, 0, "the bound port, not the requested one");

    let out = link(&hub.url, SECRET, &["health"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let health: serde_json::Value = serde_json::from_str(&out.stdout[0]).expect("health is JSON");
    assert_eq!(health["peerCount"], 1, "{health}");
}

#[test]
fn without_a_secret_it_refuses_to_start_and_says_how_to_configure_one() {
    let out = spawn(HUB, &["--port", "0"], &[]).finish();
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "never listening: {out:?}");
    assert!(
        out.stderr.contains("no secret configured"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--secret"), "{}", out.stderr);
    assert!(out.stderr.contains("LINK_KEYS_FILE"), "{}", out.stderr);
    assert!(out.stderr.contains("--dev"), "{}", out.stderr);

    // An empty LINK_SECRET is no secret either.
    let out = spawn(HUB, &["--port", "0"], &[("LINK_SECRET", "")]).finish();
    assert_eq!(out.code(), Some(2), "{out:?}");
}

#[test]
fn secret_and_keys_file_together_are_ambiguous() {
    let keys = TempFile::new("keys.json", br#"{"a": "ka"}"#);
    let out = spawn(
        HUB,
        &[
            "--port",
            "0",
            "--secret",
            SECRET,
            "--keys-file",
            keys.path_str(),
        ],
        &[],
    )
    .finish();
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("choose one"), "{}", out.stderr);
}

#[test]
fn dev_mode_prints_its_secret_once_and_binds_loopback_only() {
    let mut hub = spawn(HUB, &["--dev", "--port", "0"], &[]);
    let secret_line = hub.stdout_line("dev secret", |l| l.starts_with("dev secret "));
    let secret = secret_line["dev secret ".len()..].to_owned();
    assert_eq!(secret.len(), 64, "32 random bytes in hex: {secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    let listening = hub.stdout_line("listening line", |l| l.starts_with("listening "));
    let url = listening["listening ".len()..].to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "loopback only: {url}");

    // The printed secret is the one the hub uses.
    let out = link(&url, &secret, &["health"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    drop(hub);

    // It will not serve other interfaces, even when asked.
    let out = spawn(HUB, &["--dev", "--port", "0", "--host", "0.0.0.0"], &[]).finish();
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("127.0.0.1 only"), "{}", out.stderr);
    assert!(
        !out.stdout.iter().any(|l| l.starts_with("dev secret")),
        "{out:?}"
    );

    // A second dev hub gets another secret.
    let mut again = spawn(HUB, &["--dev", "--port", "0"], &[]);
    let other = again.stdout_line("dev secret", |l| l.starts_with("dev secret "));
    assert_ne!(other, secret_line);
}

#[test]
fn per_peer_keys_file_admits_the_right_key_and_never_readies_a_wrong_one() {
    let keys = TempFile::new("keys.json", br#"{"alice": "key-alice", "bob": "key-bob"}"#);
    let hub = spawn(
        HUB,
        &["--port", "0"],
        &[("LINK_KEYS_FILE", keys.path_str())],
    );
    let mut hub = Hub {
        url: String::new(),
        proc: hub,
    };
    let line = hub
        .proc
        .stdout_line("listening line", |l| l.starts_with("listening "));
    hub.url = line["listening ".len()..].to_owned();

    let ok = link(&hub.url, "key-alice", &["--kind", "alice", "health"]);
    assert_eq!(ok.code(), Some(0), "{ok:?}");

    // A wrong key: the hub drops the hello silently, the command times out.
    let wrong = link(
        &hub.url,
        "key-bob",
        &["--kind", "alice", "--timeout", "1.5", "health"],
    );
    assert_eq!(wrong.code(), Some(3), "{wrong:?}");
    assert!(wrong.stderr.contains("LINK_NOT_READY"), "{}", wrong.stderr);
    assert!(wrong.stdout.is_empty(), "{wrong:?}");

    // A kind with no key at all is just as silent.
    let unknown = link(
        &hub.url,
        "key-alice",
        &["--kind", "mallory", "--timeout", "1", "peers"],
    );
    assert_eq!(unknown.code(), Some(3), "{unknown:?}");
}

#[test]
fn a_bad_keys_file_is_refused_with_its_path() {
    for contents in [
        &b"not json"[..],
        b"[1, 2]",
        br#"{"a": 1}"#,
        br#"{"a": ""}"#,
        b"{}",
    ] {
        let keys = TempFile::new("keys.json", contents);
        let out = spawn(HUB, &["--port", "0", "--keys-file", keys.path_str()], &[]).finish();
        assert_eq!(
            out.code(),
            Some(2),
            "{:?}: {out:?}",
            String::from_utf8_lossy(contents)
        );
        assert!(out.stderr.contains(keys.path_str()), "{}", out.stderr);
    }
}

#[test]
fn path_hash_algo_and_state_route_come_from_flags_or_environment() {
    let mut proc = spawn(
        HUB,
        &["--port", "0", "--path", "/link"],
        &[
            ("LINK_SECRET", SECRET),
            ("LINK_HASH_ALGO", "sha512"),
            ("LINK_STATE_ROUTE", "true"),
        ],
    );
    let line = proc.stdout_line("listening line", |l| l.starts_with("listening "));
    let url = line["listening ".len()..].to_owned();
    assert!(url.ends_with("/link"), "{url}");

    let ok = spawn(
        LINK,
        &["--hash-algo", "sha512", "health"],
        &[("LINK_URL", &url), ("LINK_SECRET", SECRET)],
    )
    .finish();
    assert_eq!(ok.code(), Some(0), "{ok:?}");

    // sha256 signatures do not verify on a sha512 hub.
    let wrong = link(&url, SECRET, &["--timeout", "1", "health"]);
    assert_eq!(wrong.code(), Some(3), "{wrong:?}");

    // `/state` is served on the hub's HTTP port.
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/link")
        .to_owned();
    let body = http_get(&addr, "/state");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"peers\""), "{body}");
}

#[test]
fn tls_certificate_and_key_serve_wss() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let cert_file = TempFile::new("cert.pem", cert.cert.pem().as_bytes());
    let key_file = TempFile::new("key.pem", cert.key_pair.serialize_pem().as_bytes());
    let hub = hub(&[
        "--secret",
        SECRET,
        "--tls-cert",
        cert_file.path_str(),
        "--tls-key",
        key_file.path_str(),
    ]);
    assert!(hub.url.starts_with("wss://127.0.0.1:"), "{}", hub.url);

    // A certificate without its key is a usage error.
    let out = spawn(
        HUB,
        &[
            "--port",
            "0",
            "--secret",
            SECRET,
            "--tls-cert",
            cert_file.path_str(),
        ],
        &[],
    )
    .finish();
    assert_eq!(out.code(), Some(2), "{out:?}");
}

/// A plain HTTP/1.1 GET over loopback; the whole response as text.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read");
    body
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let hub = hub(&["--secret", SECRET]);
    let mut listener = spawn(
        LINK,
        &["--kind", "stay", "sub", "anything"],
        &[("LINK_URL", &hub.url), ("LINK_SECRET", SECRET)],
    );
    listener.stderr_line("subscription confirmed", |l| l == "subscribed anything");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &hub.proc.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let out = hub.proc.finish();
    assert_eq!(out.code(), Some(0), "graceful stop: {out:?}");
}
