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
        out.stderr
            .contains("link-hub: CONFIG_ERROR: no secret configured"),
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
    assert_config_error(&out);
    assert!(out.stderr.contains("choose one"), "{}", out.stderr);
}

#[test]
fn dev_mode_prints_its_secret_once_and_binds_loopback_only() {
    let mut hub = spawn(HUB, &["--dev", "--port", "0"], &[("RUST_LOG", "info")]);
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

    // Once in all: stderr may go to a log collector, so it never carries the secret.
    sigterm(hub.id());
    let out = hub.finish();
    assert_eq!(out.code(), Some(0), "{out:?}");
    let printed = out
        .stdout
        .iter()
        .map(|l| l.matches(secret.as_str()).count())
        .sum::<usize>()
        + out.stderr.matches(secret.as_str()).count();
    assert_eq!(printed, 1, "{out:?}");
    assert!(
        out.stderr.contains("dev secret"),
        "says where: {}",
        out.stderr
    );

    // It will not serve other interfaces, even when asked.
    let out = spawn(HUB, &["--dev", "--port", "0", "--host", "0.0.0.0"], &[]).finish();
    assert_config_error(&out);
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
        assert!(
            out.stderr.starts_with("link-hub: CONFIG_ERROR: "),
            "{}",
            out.stderr
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
    let TlsHub {
        hub,
        cert: cert_file,
        ..
    } = tls_hub(SECRET);
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
    sigterm(hub.proc.id());
    let out = hub.proc.finish();
    assert_eq!(out.code(), Some(0), "graceful stop: {out:?}");
}

/// Send SIGTERM to `pid`.
fn sigterm(pid: u32) {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -TERM {pid}");
}

/// A `link-hub` whose stdout and stderr the test wires itself; killed when dropped.
struct BareHub {
    child: std::process::Child,
}

impl BareHub {
    /// Start `link-hub` with `args`, logging at `info`, in an environment holding
    /// only `env` (so no `LINK_*` leaks in from the developer's shell).
    fn start(
        args: &[&str],
        env: &[(&str, &str)],
        stdout: std::process::Stdio,
        stderr: std::process::Stdio,
    ) -> BareHub {
        let child = std::process::Command::new(HUB)
            .args(args)
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start link-hub");
        BareHub { child }
    }

    /// SIGTERM, then the exit status (bounded by `WAIT`).
    fn terminate(&mut self) -> std::process::ExitStatus {
        sigterm(self.child.id());
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "link-hub still running {WAIT:?} after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for BareHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read `stderr` until the hub logs that it listens; its `HOST:PORT`.
fn listening_addr_in_log(stderr: impl std::io::Read) -> String {
    use std::io::BufRead;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.expect("read stderr");
        if line.contains("link hub listening")
            && let Some(rest) = line.split("local_addr=").nth(1)
        {
            return rest.split_whitespace().next().unwrap_or("").to_owned();
        }
    }
    panic!("link-hub exited without logging `link hub listening`");
}

#[test]
fn losing_stderr_breaks_neither_connections_nor_signals() {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut hub = BareHub::start(
        &["--port", "0", "--secret", SECRET],
        &[],
        Stdio::piped(),
        Stdio::piped(),
    );
    let stdout = hub.child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let line = lines
        .next()
        .expect("a listening line")
        .expect("read stdout");
    let url = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    // Whatever read the logs goes away; every log line from now on fails to write.
    drop(hub.child.stderr.take());

    for _ in 0..3 {
        let out = link(&url, SECRET, &["health"]);
        assert_eq!(out.code(), Some(0), "{out:?}");
    }
    let body = http_get(url.trim_start_matches("ws://"), "/health");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert_eq!(hub.terminate().code(), Some(0), "graceful stop");
}

#[test]
fn a_closed_or_full_stdout_does_not_stop_the_hub() {
    use std::process::Stdio;
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("open /dev/full")
    };
    // `link-hub --dev > /dev/full`: every stdout write fails (the secret, `listening`).
    let mut hub = BareHub::start(
        &["--dev", "--port", "0"],
        &[],
        Stdio::from(full()),
        Stdio::piped(),
    );
    let addr = listening_addr_in_log(hub.child.stderr.take().expect("piped stderr"));
    let body = http_get(&addr, "/health");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert_eq!(hub.terminate().code(), Some(0), "graceful stop");

    // `link-hub ... | head -0`: the reader is gone before the hub writes anything.
    let mut hub = BareHub::start(
        &["--secret", SECRET, "--port", "0"],
        &[],
        Stdio::piped(),
        Stdio::piped(),
    );
    drop(hub.child.stdout.take());
    let addr = listening_addr_in_log(hub.child.stderr.take().expect("piped stderr"));
    let out = link(&format!("ws://{addr}"), SECRET, &["health"]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(hub.terminate().code(), Some(0), "graceful stop");
}

#[test]
fn a_flag_overrides_the_environment_for_secret_and_keys_file() {
    let keys = TempFile::new("keys.json", br#"{"alice": "key-alice"}"#);

    // README: `export LINK_SECRET=...`, later `link-hub --keys-file keys.json`.
    let mut proc = spawn(
        HUB,
        &["--port", "0", "--keys-file", keys.path_str()],
        &[("LINK_SECRET", SECRET)],
    );
    let line = proc.stdout_line("listening line", |l| l.starts_with("listening "));
    let url = &line["listening ".len()..];
    let ok = link(url, "key-alice", &["--kind", "alice", "health"]);
    assert_eq!(ok.code(), Some(0), "the keys file is in force: {ok:?}");
    drop(proc);

    // And the other way round.
    let mut proc = spawn(
        HUB,
        &["--port", "0", "--secret", SECRET],
        &[("LINK_KEYS_FILE", keys.path_str())],
    );
    let line = proc.stdout_line("listening line", |l| l.starts_with("listening "));
    let url = &line["listening ".len()..];
    let ok = link(url, SECRET, &["health"]);
    assert_eq!(ok.code(), Some(0), "the shared secret is in force: {ok:?}");
    drop(proc);

    // Both from the environment: still ambiguous.
    let out = spawn(
        HUB,
        &["--port", "0"],
        &[("LINK_SECRET", SECRET), ("LINK_KEYS_FILE", keys.path_str())],
    )
    .finish();
    assert_config_error(&out);
    assert!(out.stderr.contains("choose one"), "{}", out.stderr);
}

#[test]
fn a_path_is_normalised_to_one_leading_slash_and_no_trailing_one() {
    for (flag, env) in [
        (Some("link"), None),
        (None, Some("link/")),
        (Some("/link/"), None),
    ] {
        let mut args = vec!["--port", "0"];
        if let Some(path) = flag {
            args.extend(["--path", path]);
        }
        let mut vars = vec![("LINK_SECRET", SECRET)];
        if let Some(path) = env {
            vars.push(("LINK_PATH", path));
        }
        let mut proc = spawn(HUB, &args, &vars);
        let line = proc.stdout_line("listening line", |l| l.starts_with("listening "));
        let url = &line["listening ".len()..];
        let port = url
            .strip_prefix("ws://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix("/link"))
            .and_then(|p| p.parse::<u16>().ok());
        assert!(port.is_some(), "{flag:?} {env:?}: {line}");
        let ok = link(url, SECRET, &["health"]);
        assert_eq!(ok.code(), Some(0), "{flag:?} {env:?}: {ok:?}");
    }
}

#[test]
fn boolean_environment_values_take_the_usual_spellings() {
    for (value, on) in [
        ("1", true),
        ("Yes", true),
        ("ON", true),
        ("0", false),
        ("off", false),
        ("", false),
    ] {
        let mut proc = spawn(
            HUB,
            &["--port", "0", "--secret", SECRET],
            &[("LINK_STATE_ROUTE", value)],
        );
        let line = proc.stdout_line("listening line", |l| l.starts_with("listening "));
        let addr = line["listening ".len()..].trim_start_matches("ws://");
        let body = http_get(addr, "/state");
        let expected = if on { "HTTP/1.1 200" } else { "HTTP/1.1 404" };
        assert!(
            body.starts_with(expected),
            "LINK_STATE_ROUTE={value:?}: {body}"
        );
    }

    let out = spawn(
        HUB,
        &["--port", "0", "--secret", SECRET],
        &[("LINK_STATE_ROUTE", "maybe")],
    )
    .finish();
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("LINK_STATE_ROUTE") || out.stderr.contains("--state-route"));
}

#[test]
fn empty_environment_values_count_as_unset() {
    // `${VAR}` of an unset variable in a compose or systemd file: empty strings.
    let empty = [
        ("LINK_HASH_ALGO", ""),
        ("LINK_HOST", ""),
        ("LINK_PATH", ""),
        ("LINK_KEYS_FILE", ""),
        ("LINK_TLS_CERT", ""),
        ("LINK_TLS_KEY", ""),
        ("LINK_STATE_ROUTE", ""),
    ];
    let mut vars = empty.to_vec();
    vars.push(("LINK_SECRET", SECRET));
    let mut proc = spawn(HUB, &["--port", "0"], &vars);
    let line = proc.stdout_line("listening line", |l| l.starts_with("listening "));
    let url = &line["listening ".len()..];
    let port = url
        .strip_prefix("ws://127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok());
    assert!(
        port.is_some(),
        "defaults: 127.0.0.1, no path, ws://: {line}"
    );
    let ok = link(url, SECRET, &["health"]);
    assert_eq!(ok.code(), Some(0), "sha256 by default: {ok:?}");
    drop(proc);

    // An empty LINK_PORT is no port (the default, never bound here: the missing
    // secret stops the hub first) rather than an invalid one.
    let mut vars = empty.to_vec();
    vars.push(("LINK_PORT", ""));
    vars.push(("LINK_SECRET", ""));
    let out = spawn(HUB, &[], &vars).finish();
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("CONFIG_ERROR: no secret configured"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_carry_a_code_too() {
    for args in [
        &["--port", "eighty"][..],
        &["--port", "0", "--secret", SECRET, "--hash-algo", "md5"],
        &["--port", "0", "--secret", SECRET, "--no-such-flag"],
    ] {
        let out = spawn(HUB, args, &[]).finish();
        assert_eq!(out.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            out.stderr.starts_with("link-hub: USAGE: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{out:?}");
    }
}

#[test]
fn help_describes_the_hub_and_names_each_variable() {
    let out = spawn(HUB, &["--help"], &[]).finish();
    assert_eq!(out.code(), Some(0), "{out:?}");
    let help = out.stdout.join("\n");
    assert!(help.starts_with("The link hub"), "{help}");
    assert!(
        !help.contains("LinkClient"),
        "not the library's blurb: {help}"
    );
    for (flag, var) in [
        ("--secret", "LINK_SECRET"),
        ("--keys-file", "LINK_KEYS_FILE"),
        ("--host", "LINK_HOST"),
        ("--port", "LINK_PORT"),
        ("--path", "LINK_PATH"),
        ("--state-route", "LINK_STATE_ROUTE"),
        ("--tls-cert", "LINK_TLS_CERT"),
        ("--tls-key", "LINK_TLS_KEY"),
        ("--hash-algo", "LINK_HASH_ALGO"),
    ] {
        // The flag's entry, however clap wraps it to the terminal's width.
        let start = out
            .stdout
            .iter()
            .position(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("no {flag} in {help}"));
        let entry: Vec<&str> = out.stdout[start..]
            .iter()
            .enumerate()
            .take_while(|(i, l)| *i == 0 || !l.trim_start().starts_with('-'))
            .flat_map(|(_, l)| l.split_whitespace())
            .collect();
        let entry = entry.join(" ");
        assert!(entry.contains(&format!("[env: {var}")), "{entry}");
    }
}

#[test]
fn keys_files_with_kinds_no_peer_can_claim_are_refused() {
    let long = format!(r#"{{"{}": "k"}}"#, "k".repeat(257));
    for (contents, culprit) in [
        (r#"{"": "k"}"#, r#""""#),
        (r#"{"ok": "k", "bad kind!": "k"}"#, r#""bad kind!""#),
        (r#"{" padded ": "k"}"#, r#"" padded ""#),
        (r#"{"server": "k"}"#, r#""server""#),
        (r#"{"__proto__": "k"}"#, r#""__proto__""#),
        (long.as_str(), "kkkkkkkk"),
        (r#"{"ok": "k", "empty": ""}"#, r#""empty""#),
    ] {
        let keys = TempFile::new("keys.json", contents.as_bytes());
        let out = spawn(HUB, &["--port", "0", "--keys-file", keys.path_str()], &[]).finish();
        assert_eq!(out.code(), Some(2), "{contents}: {out:?}");
        assert!(out.stdout.is_empty(), "never listening: {out:?}");
        assert!(
            out.stderr.starts_with("link-hub: CONFIG_ERROR: "),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(keys.path_str()), "{}", out.stderr);
        assert!(out.stderr.contains(culprit), "{contents}: {}", out.stderr);
    }
}

#[test]
fn logs_on_a_pipe_have_no_colour_codes() {
    let mut hub = spawn(
        HUB,
        &["--port", "0", "--secret", SECRET],
        &[("RUST_LOG", "info")],
    );
    let line = hub.stdout_line("listening line", |l| l.starts_with("listening "));
    let ok = link(&line["listening ".len()..], SECRET, &["health"]);
    assert_eq!(ok.code(), Some(0), "{ok:?}");
    sigterm(hub.id());
    let out = hub.finish();
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(out.stderr.contains("link hub listening"), "{}", out.stderr);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
}

/// The hub refused its configuration: exit 2, `link-hub: CONFIG_ERROR: …`.
fn assert_config_error(out: &Output) {
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.starts_with("link-hub: CONFIG_ERROR: "),
        "{}",
        out.stderr
    );
}
