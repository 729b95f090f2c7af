//! Running `link-hub` and `link` as real processes: output read line by line on
//! threads, every wait bounded by a deadline, children killed when dropped.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

pub const HUB: &str = env!("CARGO_BIN_EXE_link-hub");
pub const LINK: &str = env!("CARGO_BIN_EXE_link");

/// The `LINK_*` variables a developer's shell may have set; tests start from none.
const LINK_VARS: &[&str] = &[
    "LINK_URL",
    "LINK_SECRET",
    "LINK_KIND",
    "LINK_KEYS_FILE",
    "LINK_HOST",
    "LINK_PORT",
    "LINK_PATH",
    "LINK_STATE_ROUTE",
    "LINK_TLS_CERT",
    "LINK_TLS_KEY",
    "LINK_HASH_ALGO",
    "LINK_NAME",
];

/// A running child process with its output delivered line by line.
pub struct Proc {
    name: String,
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    stdout_seen: Vec<String>,
    stderr_all: Arc<Mutex<String>>,
}

fn pump(
    stream: impl Read + Send + 'static,
    tx: mpsc::Sender<String>,
    copy: Option<Arc<Mutex<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(copy) = &copy
                && let Ok(mut all) = copy.lock()
            {
                all.push_str(&line);
                all.push('\n');
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

/// Start `bin` with `args` and `env`, in a clean `LINK_*` environment.
pub fn spawn(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in LINK_VARS {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let (out_tx, stdout) = mpsc::channel();
    let (err_tx, stderr) = mpsc::channel();
    let stderr_all = Arc::new(Mutex::new(String::new()));
    pump(child.stdout.take().expect("piped stdout"), out_tx, None);
    pump(
        child.stderr.take().expect("piped stderr"),
        err_tx,
        Some(stderr_all.clone()),
    );
    let name = format!(
        "{} {}",
        std::path::Path::new(bin)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        args.join(" ")
    );
    Proc {
        name,
        child,
        stdout,
        stderr,
        stdout_seen: Vec::new(),
        stderr_all,
    }
}

fn wait_line(
    rx: &Receiver<String>,
    what: &str,
    name: &str,
    pred: impl Fn(&str) -> bool,
    stderr: &Mutex<String>,
    seen: &mut Vec<String>,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if pred(&line) {
                    return line;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{name}: no {what} within {WAIT:?}; saw {seen:?}; stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "{name}: exited before {what}; saw {seen:?}; stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                )
            }
        }
    }
}

impl Proc {
    /// The next stdout line matching `pred` (earlier lines are kept in `stdout_seen`).
    pub fn stdout_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut seen = std::mem::take(&mut self.stdout_seen);
        let line = wait_line(
            &self.stdout,
            what,
            &self.name,
            pred,
            &self.stderr_all,
            &mut seen,
        );
        self.stdout_seen = seen;
        line
    }

    /// The next stderr line matching `pred`.
    pub fn stderr_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        wait_line(
            &self.stderr,
            what,
            &self.name,
            pred,
            &self.stderr_all,
            &mut seen,
        )
    }

    /// Wait (bounded) for the process to exit; returns its status, all its remaining
    /// stdout lines, and its whole stderr.
    pub fn finish(mut self) -> Output {
        let deadline = Instant::now() + WAIT;
        let mut stdout = std::mem::take(&mut self.stdout_seen);
        // Both pipes close when the process exits; then `wait` returns at once.
        for rx in [&self.stdout, &self.stderr] {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) => {
                        if std::ptr::eq(rx, &self.stdout) {
                            stdout.push(line);
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => panic!(
                        "{}: still running after {WAIT:?}; stdout {stdout:?}; stderr:\n{}",
                        self.name,
                        self.stderr_all
                            .lock()
                            .map(|s| s.clone())
                            .unwrap_or_default()
                    ),
                }
            }
        }
        let status = self.child.wait().expect("wait for the child");
        let stderr = self
            .stderr_all
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished process left.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Run `link` with `args` against `url` with `secret`, to completion.
pub fn link(url: &str, secret: &str, args: &[&str]) -> Output {
    spawn(LINK, args, &[("LINK_URL", url), ("LINK_SECRET", secret)]).finish()
}

/// A running `link-hub` and the URL from its `listening` line.
pub struct Hub {
    pub proc: Proc,
    pub url: String,
}

/// Start `link-hub` with `args` (plus `--port 0`) and wait for its `listening` line.
pub fn hub(args: &[&str]) -> Hub {
    let mut all = vec!["--port", "0"];
    all.extend_from_slice(args);
    let mut proc = spawn(HUB, &all, &[]);
    let line = proc.stdout_line("listening line", |l| l.starts_with("listening "));
    let url = line["listening ".len()..].to_owned();
    Hub { proc, url }
}

/// A hub serving `wss://` with a fresh self-signed certificate for `localhost`, and
/// that certificate (PEM) for clients to trust.
pub struct TlsHub {
    pub hub: Hub,
    pub cert: TempFile,
    _key: TempFile,
}

/// Start `link-hub` with `secret` and a new self-signed certificate.
pub fn tls_hub(secret: &str) -> TlsHub {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let cert_file = TempFile::new("cert.pem", cert.cert.pem().as_bytes());
    let key_file = TempFile::new("key.pem", cert.key_pair.serialize_pem().as_bytes());
    let hub = hub(&[
        "--secret",
        secret,
        "--tls-cert",
        cert_file.path_str(),
        "--tls-key",
        key_file.path_str(),
    ]);
    TlsHub {
        hub,
        cert: cert_file,
        _key: key_file,
    }
}

/// A file in a fresh temporary directory, removed with it when dropped.
pub struct TempFile {
    dir: std::path::PathBuf,
    pub path: std::path::PathBuf,
}

impl TempFile {
    pub fn new(name: &str, contents: &[u8]) -> TempFile {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("link-cli-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        TempFile { dir, path }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
