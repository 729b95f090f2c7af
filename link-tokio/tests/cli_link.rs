//! The `link` command line as a process against a real `link-hub`: pub/sub, RPC
//! against `link reply`, peers, verify, and the exit codes scripts rely on.

mod cli_support;

use cli_support::*;
use link_tokio::core::wire::{self, HashAlgo, Key};
use serde_json::{Value, json};

const SECRET: &str = "cli-link-secret";

fn json_line(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn start_link(hub: &Hub, args: &[&str]) -> Proc {
    spawn(
        LINK,
        args,
        &[("LINK_URL", &hub.url), ("LINK_SECRET", SECRET)],
    )
}

#[test]
fn sub_prints_one_json_line_per_message_published() {
    let hub = hub(&["--secret", SECRET]);
    let mut sub = start_link(
        &hub,
        &["--kind", "listener", "sub", "jobs.progress", "--count", "2"],
    );
    sub.stderr_line("subscription confirmed", |l| {
        l == "subscribed jobs.progress"
    });

    let out = link(
        &hub.url,
        SECRET,
        &[
            "--kind",
            "publisher",
            "pub",
            "jobs.progress",
            r#"{"pct": 50}"#,
        ],
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let line = sub.stdout_line("first message", |_| true);
    assert_eq!(
        json_line(&line),
        json!({"topic": "jobs.progress", "from": "publisher", "payload": {"pct": 50}})
    );

    // LINK_KIND works like --kind.
    let out = spawn(
        LINK,
        &["pub", "jobs.progress", "[1, \"two\", null]"],
        &[
            ("LINK_URL", &hub.url),
            ("LINK_SECRET", SECRET),
            ("LINK_KIND", "other"),
        ],
    )
    .finish();
    assert_eq!(out.code(), Some(0), "{out:?}");
    let done = sub.finish();
    assert_eq!(
        done.code(),
        Some(0),
        "--count 2 ends the subscription: {done:?}"
    );
    assert_eq!(
        json_line(done.stdout.last().expect("second line")),
        json!({"topic": "jobs.progress", "from": "other", "payload": [1, "two", null]})
    );
}

#[test]
fn rpc_against_reply_echo_prints_the_result_and_maps_errors_to_exit_codes() {
    let hub = hub(&["--secret", SECRET]);
    let mut echo = start_link(&hub, &["--kind", "echoer", "reply", "echo.me", "--echo"]);
    echo.stderr_line("serving line", |l| l == "serving echo.me as echoer");

    let out = link(
        &hub.url,
        SECRET,
        &["rpc", "echoer", "echo.me", r#"{"x": [1, 2.5, "y"]}"#],
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout.len(), 1, "{out:?}");
    assert_eq!(json_line(&out.stdout[0]), json!({"x": [1, 2.5, "y"]}));

    // No data: the echo is null.
    let out = link(&hub.url, SECRET, &["rpc", "echoer", "echo.me"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, vec!["null".to_owned()]);

    // Remote errors: exit 1 with the code on stderr, nothing on stdout.
    let out = link(&hub.url, SECRET, &["rpc", "echoer", "no.such.type"]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("link: RPC_UNKNOWN_TYPE:"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    let out = link(&hub.url, SECRET, &["rpc", "nobody", "echo.me"]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("link: RPC_NO_TARGET:"),
        "{}",
        out.stderr
    );

    // The hub's own RPCs.
    let out = link(&hub.url, SECRET, &["rpc", "server", "link.health"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(
        json_line(&out.stdout[0])["peerCount"].as_f64().is_some(),
        "{out:?}"
    );

    // `peers` lists the echo server (and the asking peer itself).
    let out = link(&hub.url, SECRET, &["--kind", "asker", "peers"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let kinds: Vec<Value> = out
        .stdout
        .iter()
        .map(|l| json_line(l)["kind"].clone())
        .collect();
    assert!(kinds.contains(&json!("echoer")), "{kinds:?}");
    assert!(kinds.contains(&json!("asker")), "{kinds:?}");
}

#[test]
fn reply_json_and_command_answers() {
    let hub = hub(&["--secret", SECRET]);
    let mut fixed = start_link(
        &hub,
        &[
            "--kind",
            "fixed",
            "reply",
            "version",
            "--json",
            r#"{"v": "1.2.3"}"#,
            "--count",
            "1",
        ],
    );
    fixed.stderr_line("serving line", |l| l.starts_with("serving version"));
    let out = link(&hub.url, SECRET, &["rpc", "fixed", "version", "{}"]);
    assert_eq!(json_line(&out.stdout[0]), json!({"v": "1.2.3"}), "{out:?}");
    // --count 1: the server exits by itself once it has answered.
    assert_eq!(fixed.finish().code(), Some(0));

    let mut cmd = start_link(
        &hub,
        &[
            "--kind",
            "shell",
            "reply",
            "wrap",
            "--command",
            // The request arrives on stdin; stdout is the JSON result.
            r#"read req; if [ "$req" = '"fail"' ]; then echo broken >&2; exit 7; fi; printf '{"got": %s}' "$req""#,
        ],
    );
    cmd.stderr_line("serving line", |l| l.starts_with("serving wrap"));
    let out = link(&hub.url, SECRET, &["rpc", "shell", "wrap", "[1,2]"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(json_line(&out.stdout[0]), json!({"got": [1, 2]}));
    let out = link(&hub.url, SECRET, &["rpc", "shell", "wrap", r#""fail""#]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("COMMAND_FAILED"), "{}", out.stderr);
    assert!(out.stderr.contains("broken"), "{}", out.stderr);
}

#[test]
fn an_rpc_that_outlives_its_timeout_exits_3() {
    let hub = hub(&["--secret", SECRET]);
    let mut slow = start_link(
        &hub,
        &["--kind", "slow", "reply", "wait", "--command", "sleep 20"],
    );
    slow.stderr_line("serving line", |l| l.starts_with("serving wait"));
    let out = link(&hub.url, SECRET, &["--timeout", "1", "rpc", "slow", "wait"]);
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert!(out.stderr.contains("link: RPC_TIMEOUT:"), "{}", out.stderr);
}

#[test]
fn send_reaches_the_hub_and_needs_no_listener() {
    let hub = hub(&["--secret", SECRET]);
    // Direct messages to an absent peer are dropped by the hub without an error.
    let out = link(
        &hub.url,
        SECRET,
        &["send", "nobody", "cache.flush", r#"{"all": true}"#],
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let out = link(&hub.url, SECRET, &["send", "nobody", "ping"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
}

#[test]
fn no_hub_or_wrong_secret_is_exit_3_and_usage_errors_are_exit_2() {
    // Nothing listens on this port (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let out = link(&url, SECRET, &["--timeout", "1", "health"]);
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert!(out.stderr.contains("LINK_NOT_READY"), "{}", out.stderr);

    let hub = hub(&["--secret", SECRET]);
    let out = link(
        &hub.url,
        "wrong",
        &["--timeout", "1", "rpc", "server", "link.health"],
    );
    assert_eq!(out.code(), Some(3), "{out:?}");

    for args in [
        &["rpc"][..],
        &["pub", "topic", "{not json"],
        &["pub", "bad topic!", "1"],
        &["reply", "x", "--echo"], // no kind
        &["reply", "x", "--echo", "--json", "1", "--kind", "k"],
        &["frobnicate"],
    ] {
        let out = link(&hub.url, SECRET, args);
        assert_eq!(out.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let out = spawn(LINK, &["--url", &hub.url, "health"], &[]).finish();
    assert_eq!(out.code(), Some(2), "no secret: {out:?}");
}

#[test]
fn verify_accepts_a_good_frame_and_names_what_is_wrong_with_a_tampered_one() {
    let key = Key::new(SECRET, HashAlgo::Sha256);
    let header = wire::Header {
        id: "f1".into(),
        ts: 1_700_000_000_000.0,
        from: Some("alice".into()),
        to: Some("bob".into()),
    };
    let mut good = Vec::new();
    wire::encode(
        &key,
        &header,
        "direct",
        Some(br#"{"directData":{"n":1},"directType":"note"}"#),
        &mut good,
    );
    let good = String::from_utf8(good).expect("frames are UTF-8");
    let tampered = good.replace(r#""n":1"#, r#""n":2"#);
    assert_ne!(good, tampered);

    let out = link("ws://unused", SECRET, &["verify", &good]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, vec!["ok".to_owned()]);

    let out = link("ws://unused", SECRET, &["verify", &tampered]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert_eq!(out.stdout, vec!["bad-signature".to_owned()]);

    // Several frames, with the canonical text that was signed; the wrong secret.
    let out = link(
        "ws://unused",
        SECRET,
        &["verify", "--canonical", &good, "{oops", &tampered],
    );
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert_eq!(out.stdout.len(), 3, "{out:?}");
    let (ok, canonical) = out.stdout[0].split_once('\t').expect("ok<TAB>canonical");
    assert_eq!(ok, "ok");
    assert!(
        good.starts_with(canonical.trim_end_matches('}')),
        "{canonical}"
    );
    assert_eq!(out.stdout[1], "parse-error");
    assert_eq!(out.stdout[2], "bad-signature");
    let out = link("ws://unused", "another-secret", &["verify", &good]);
    assert_eq!(out.stdout, vec!["bad-signature".to_owned()]);
}

#[test]
fn verify_reads_frames_from_stdin_like_the_verify_example() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let key = Key::new(SECRET, HashAlgo::Sha512);
    let header = wire::Header {
        id: "f2".into(),
        ts: 1.0,
        from: None,
        to: None,
    };
    let mut frame = Vec::new();
    wire::encode(&key, &header, "status.update", None, &mut frame);
    let mut input = frame.clone();
    input.extend_from_slice(b"\n\n{\"v\":1}\n");
    let mut child = Command::new(LINK)
        .args(["--secret", SECRET, "--hash-algo", "sha512", "verify"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start link verify");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write frames");
    let out = child.wait_with_output().expect("link verify finishes");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec!["ok", "missing-id"],
        "{text}"
    );
}
