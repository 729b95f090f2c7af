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
    // A target that is not connected (yet) is exit 3, like a hub that is not: a
    // script may wait and retry.
    let out = link(&hub.url, SECRET, &["rpc", "nobody", "echo.me"]);
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert!(
        out.stderr.contains("link: RPC_NO_TARGET:"),
        "{}",
        out.stderr
    );
    // Negative numbers are JSON, not flags.
    let out = link(&hub.url, SECRET, &["rpc", "echoer", "echo.me", "-2.5"]);
    assert_eq!(out.stdout, vec!["-2.5".to_owned()], "{out:?}");
    // Numbers as JavaScript reads and writes them, large ones included: what a
    // JavaScript peer sends, a Rust echo sends back.
    let out = link(
        &hub.url,
        SECRET,
        &[
            "rpc",
            "echoer",
            "echo.me",
            // 123456789012345680000: the double JavaScript reads there
            // (serde_json's own float parsing lands one step away).
            "[1e21, 9007199254740993, -2e-7, 100.0, 123456789012345680000]",
        ],
    );
    assert_eq!(
        out.stdout,
        vec!["[1e+21,9007199254740992,-2e-7,100,123456789012345680000]".to_owned()],
        "{out:?}"
    );

    // The hub's own RPCs.
    let out = link(&hub.url, SECRET, &["rpc", "server", "link.health"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(
        json_line(&out.stdout[0])["peerCount"].as_f64().is_some(),
        "{out:?}"
    );

    // `peers` lists the echo server, not the asking command's own connection.
    let out = link(&hub.url, SECRET, &["--kind", "asker", "peers"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let kinds: Vec<Value> = out
        .stdout
        .iter()
        .map(|l| json_line(l)["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("echoer")]);
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
        &["reply", "", "--echo", "--kind", "k"],
        &["reply", "x", "--json", "1e400", "--kind", "k"],
        &["rpc", "server", "x", "@/nonexistent/file.json"],
        &["pub", "topic", r#"{"s": "\ud800"}"#],
        &["--url", "notaurl", "health"],
        &["--url", "http://127.0.0.1:1/", "health"],
        &["--hash-algo", "md5", "health"],
        &["frobnicate"],
    ] {
        let started = std::time::Instant::now();
        let out = link(&hub.url, SECRET, args);
        assert_eq!(out.code(), Some(2), "{args:?}: {out:?}");
        // At once, with the error code scripts read.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{args:?}"
        );
        // `link: CODE: message`, the code USAGE or a more precise one.
        let code = out
            .stderr
            .strip_prefix("link: ")
            .and_then(|r| r.split_once(": "));
        assert!(
            code.is_some_and(
                |(c, _)| !c.is_empty() && c.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            ),
            "{args:?}: {}",
            out.stderr
        );
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

/// `--command` streams a request larger than a pipe holds while it reads the answer
/// (writing it all first would deadlock), takes JSON from `@FILE`, and refuses an
/// answer larger than a frame may carry at once instead of letting the hub close
/// the link over it.
#[test]
fn reply_command_streams_large_requests_and_refuses_outsized_answers() {
    let hub = hub(&["--secret", SECRET]);
    let mut cat = start_link(&hub, &["--kind", "cat", "reply", "cat", "--command", "cat"]);
    cat.stderr_line("serving line", |l| l.starts_with("serving cat"));
    // About 450 KB of JSON, several times what a pipe buffers.
    let big: Vec<String> = (0..30_000).map(|i| format!("item-{i:08}")).collect();
    let file = TempFile::new(
        "big.json",
        serde_json::to_string(&big).expect("json").as_bytes(),
    );
    let arg = format!("@{}", file.path_str());
    let out = link(
        &hub.url,
        SECRET,
        &["--timeout", "20", "rpc", "cat", "cat", &arg],
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(json_line(&out.stdout[0]), json!(big));

    let mut flood = start_link(
        &hub,
        &[
            "--kind",
            "flood",
            "reply",
            "flood",
            "--command",
            "printf '\"%02000000d\"' 0",
        ],
    );
    flood.stderr_line("serving line", |l| l.starts_with("serving flood"));
    let started = std::time::Instant::now();
    let out = link(
        &hub.url,
        SECRET,
        &["--timeout", "20", "rpc", "flood", "flood"],
    );
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("COMMAND_FAILED"), "{}", out.stderr);
    assert!(
        out.stderr.contains("more than a frame may carry"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// `--count N` runs the command for N requests only, and refuses the rest at once.
#[test]
fn reply_count_answers_that_many_requests_and_refuses_the_rest() {
    let hub = hub(&["--secret", SECRET]);
    let mut once = start_link(
        &hub,
        &[
            "--kind",
            "once",
            "reply",
            "job",
            "--command",
            "sleep 1; cat",
            "--count",
            "1",
        ],
    );
    once.stderr_line("serving line", |l| l.starts_with("serving job"));
    let callers: Vec<Proc> = (0..3)
        .map(|i| {
            let data = i.to_string();
            start_link(&hub, &["--timeout", "20", "rpc", "once", "job", &data])
        })
        .collect();
    let outs: Vec<Output> = callers.into_iter().map(Proc::finish).collect();
    let ok = outs.iter().filter(|o| o.code() == Some(0)).count();
    let refused = outs
        .iter()
        .filter(|o| o.code() == Some(1) && o.stderr.contains("link: REPLY_LIMIT:"))
        .count();
    assert_eq!((ok, refused), (1, 2), "{outs:?}");
    assert_eq!(once.finish().code(), Some(0));
}

/// Ctrl-C (or SIGTERM) stops `link reply` at once even while a command runs: the
/// command is killed and its caller told, rather than left to time out.
#[test]
fn reply_stops_on_sigint_while_a_command_runs() {
    let hub = hub(&["--secret", SECRET]);
    let dir = TempFile::new("sleeper.pid", b"");
    let pid_file = dir.path_str().to_owned();
    let command = format!("echo $$ > {pid_file}; exec sleep 30");
    let mut slow = start_link(
        &hub,
        &["--kind", "slow", "reply", "nap", "--command", &command],
    );
    slow.stderr_line("serving line", |l| l.starts_with("serving nap"));
    let caller = start_link(&hub, &["--timeout", "25", "rpc", "slow", "nap"]);
    // Wait for the command to start.
    let deadline = std::time::Instant::now() + WAIT;
    let sleeper = loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<u32>() {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let started = std::time::Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &slow.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = slow.finish();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    let out = caller.finish();
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("stopped before the command finished"),
        "{}",
        out.stderr
    );
    let alive = std::process::Command::new("kill")
        .args(["-0", &sleeper.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("kill -0");
    assert!(!alive.success(), "the command was killed");
}

/// Output that cannot be written is an error, not a silent success; a reader that
/// leaves early (`| head`) is not.
#[test]
fn output_that_cannot_be_written_is_an_io_error() {
    let hub = hub(&["--secret", SECRET]);
    let full = std::fs::File::create("/dev/full").expect("/dev/full");
    let out = std::process::Command::new(LINK)
        .args(["--url", &hub.url, "--secret", SECRET, "health"])
        .stdout(full)
        .output()
        .expect("run link");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("link: IO_ERROR:"), "{stderr}");
}

/// Empty variables (a compose file's `${VAR}` with nothing set) count as unset.
#[test]
fn empty_environment_variables_count_as_unset() {
    let hub = hub(&["--secret", SECRET]);
    let out = spawn(
        LINK,
        &["health"],
        &[
            ("LINK_URL", &hub.url),
            ("LINK_SECRET", SECRET),
            ("LINK_KIND", ""),
            ("LINK_HASH_ALGO", ""),
            ("LINK_CA_FILE", ""),
        ],
    )
    .finish();
    assert_eq!(out.code(), Some(0), "{out:?}");
}

/// A `wss://` hub with a certificate from a private CA is reachable with `--ca-file`
/// (or `LINK_CA_FILE`), and refused without it.
#[test]
fn ca_file_trusts_a_private_certificate() {
    let TlsHub {
        hub,
        cert: cert_file,
        ..
    } = tls_hub(SECRET);
    let url = hub.url.replace("127.0.0.1", "localhost");
    let out = link(&url, SECRET, &["--timeout", "2", "health"]);
    assert_eq!(out.code(), Some(3), "untrusted: {out:?}");
    let out = link(&url, SECRET, &["--ca-file", cert_file.path_str(), "health"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    let out = spawn(
        LINK,
        &["health"],
        &[
            ("LINK_URL", &url),
            ("LINK_SECRET", SECRET),
            ("LINK_CA_FILE", cert_file.path_str()),
        ],
    )
    .finish();
    assert_eq!(out.code(), Some(0), "{out:?}");
}

/// `link sub` prints a payload as the wire holds it: a lone surrogate that a
/// JavaScript peer sent stays an escape rather than turning into U+FFFD.
#[test]
fn sub_prints_a_lone_surrogate_as_it_was_sent() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let hub = hub(&["--secret", SECRET]);
    let mut sub = start_link(&hub, &["--kind", "listener", "sub", "odd", "--count", "1"]);
    sub.stderr_line("subscription confirmed", |l| l == "subscribed odd");
    let key = Key::new(SECRET, HashAlgo::Sha256);
    let frame = |id: &str, msg_type: &str, data: &[u8]| {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as f64;
        let header = wire::Header {
            id: id.into(),
            ts,
            from: Some("js".into()),
            to: None,
        };
        let mut out = Vec::new();
        wire::encode(&key, &header, msg_type, Some(data), &mut out);
        String::from_utf8(out).expect("frames are UTF-8")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // A peer speaking the protocol by hand, as a JavaScript one would.
        let (mut ws, _) = tokio_tungstenite::connect_async(hub.url.as_str())
            .await
            .expect("connect");
        let hello = frame("h-1", "hello", br#"{"kind":"js","name":"js"}"#);
        ws.send(Message::Text(hello.into())).await.expect("hello");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"hello.ack\"") => break,
                Some(Ok(_)) => {}
                other => panic!("no hello.ack: {other:?}"),
            }
        }
        let publish = frame(
            "p-1",
            "topic.message",
            br#"{"payload":{"s":"a\ud800b"},"topic":"odd"}"#,
        );
        ws.send(Message::Text(publish.into()))
            .await
            .expect("publish");
        let out = sub.finish();
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert_eq!(
            out.stdout.last().map(String::as_str),
            Some(r#"{"from":"js","payload":{"s":"a\ud800b"},"topic":"odd"}"#),
            "{out:?}"
        );
    });
}
