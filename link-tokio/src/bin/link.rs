//! `link`: the command line for humans and scripts. Connects to a hub as one peer
//! (`LINK_URL`, `LINK_SECRET`, `LINK_KIND`; flags override), does one thing, and exits
//! with a status scripts can rely on: 0 ok, 1 remote error (or a rejected frame for
//! `verify`, or output that could not be written), 2 usage, 3 timeout or not
//! connected (this peer to the hub, or an RPC's target). Errors go to stderr as
//! `link: CODE: message`. JSON arguments may also be `-` (read stdin) or `@FILE`.
//!
//! ```text
//! link rpc worker job.run '{"jobId": 1}'     # prints the result as JSON
//! link pub jobs.progress '{"pct": 50}'
//! link sub jobs.progress                     # one JSON line per message
//! link send worker cache.flush
//! link reply job.run --echo                  # serve an RPC type until stopped
//! link peers | link health | link verify < frames.jsonl
//! ```

use clap::{ArgGroup, Args as ClapArgs, Parser, Subcommand};
use link_tokio::core::wire::{self, HashAlgo, Key, Limits};
use link_tokio::{ClientEvent, Error, Event, LinkClient, LinkOptions, RpcHandlerError};
use serde_json::Value;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

const EXIT_REMOTE: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_CONNECTED: u8 = 3;

const DEFAULT_URL: &str = "ws://127.0.0.1:8080";

/// Talk to a link hub from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "link",
    version,
    about = "Talk to a link hub from the command line: call and serve RPCs, publish, \
             subscribe, send, list peers, read the hub's health, check frames.",
    long_about = None
)]
struct Cli {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: Command,
}

/// How to reach the hub; every subcommand accepts these.
#[derive(Debug, ClapArgs)]
struct Conn {
    /// Hub URL.
    #[arg(
        long,
        env = "LINK_URL",
        global = true,
        default_value = DEFAULT_URL
    )]
    url: String,

    /// HMAC secret: the hub's shared secret, or this kind's own key.
    #[arg(long, env = "LINK_SECRET", global = true, hide_env_values = true)]
    secret: Option<String>,

    /// This peer's kind (default: `link-cli-<pid>`; `reply` needs one). The hub keeps
    /// one connection per kind: give concurrent commands different kinds.
    #[arg(long, env = "LINK_KIND", global = true)]
    kind: Option<String>,

    /// HMAC hash: sha256, sha384 or sha512 (must match the hub).
    #[arg(long, env = "LINK_HASH_ALGO", global = true)]
    hash_algo: Option<String>,

    /// Extra CA certificates (PEM) to trust for a `wss://` hub, besides the public
    /// roots: a private CA, or a hub's self-signed certificate.
    #[arg(long, env = "LINK_CA_FILE", global = true, value_name = "PEM")]
    ca_file: Option<String>,

    /// Seconds to wait for the hub to accept this peer, and for each RPC.
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call an RPC on a peer (or `server` for the hub) and print the result as JSON.
    #[command(allow_negative_numbers = true)]
    Rpc {
        /// Target kind, or `server`.
        to: String,
        /// RPC type.
        rpc_type: String,
        /// Request data as JSON, `-` (stdin) or `@FILE` (default: none).
        json: Option<String>,
    },
    /// Publish a JSON payload on a topic.
    #[command(allow_negative_numbers = true)]
    Pub {
        /// Topic.
        topic: String,
        /// Payload as JSON, `-` (stdin) or `@FILE`.
        json: String,
    },
    /// Print every message on a topic as one JSON line `{"from", "payload", "topic"}`.
    Sub {
        /// Topic.
        topic: String,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Send a fire-and-forget direct message to a peer.
    #[command(allow_negative_numbers = true)]
    Send {
        /// Target kind.
        to: String,
        /// Message type.
        direct_type: String,
        /// Data as JSON, `-` (stdin) or `@FILE` (default: none).
        json: Option<String>,
    },
    /// Serve RPCs of one type as this kind until stopped (Ctrl-C or SIGTERM).
    Reply(Reply),
    /// Print the connected peers, one JSON line each.
    Peers,
    /// Print the hub's health snapshot (`link.health`) as JSON.
    Health,
    /// Check frames (one JSON text per line on stdin, or as arguments) with the secret:
    /// prints `ok` or the drop reason per frame; exits 1 if any is rejected.
    Verify {
        /// After `ok`, print a tab and the canonical text that was signed.
        #[arg(long)]
        canonical: bool,
        /// Frames to check instead of stdin.
        frames: Vec<String>,
    },
}

#[derive(Debug, ClapArgs)]
#[command(group(ArgGroup::new("answer").required(true).args(["echo", "json", "command"])))]
struct Reply {
    /// RPC type to serve.
    rpc_type: String,
    /// Answer with the request data.
    #[arg(long)]
    echo: bool,
    /// Answer with this JSON result (or `@FILE`).
    #[arg(long, value_name = "RESULT", allow_negative_numbers = true)]
    json: Option<String>,
    /// Run this shell command with the request JSON on stdin; its stdout (JSON) is the
    /// result, a non-zero exit an error. Killed if the caller cancels or on Ctrl-C.
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
    /// Answer this many requests, then exit; requests beyond them are refused with
    /// `REPLY_LIMIT` (never run).
    #[arg(long)]
    count: Option<u64>,
}

/// Why a command failed: the code printed on stderr and the exit status.
#[derive(Debug)]
struct Failure {
    code: String,
    message: String,
    exit: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: "USAGE".into(),
            message: message.into(),
            exit: EXIT_USAGE,
        }
    }

    fn not_connected(message: impl Into<String>) -> Self {
        Failure {
            code: "LINK_NOT_READY".into(),
            message: message.into(),
            exit: EXIT_NOT_CONNECTED,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let exit = match &e {
            Error::Rpc(r) => match r.reason() {
                "timeout" | "disconnect" | "not-ready" => EXIT_NOT_CONNECTED,
                "invalid-argument" => EXIT_USAGE,
                // The target is not connected (yet): a script may wait and retry.
                _ if e.code() == "RPC_NO_TARGET" => EXIT_NOT_CONNECTED,
                _ => EXIT_REMOTE,
            },
            Error::Client(c) => match c.code() {
                "LINK_NOT_READY" => EXIT_NOT_CONNECTED,
                "INVALID_TOPIC" | "INVALID_ARGUMENT" | "PAYLOAD_NOT_SERIALIZABLE" => EXIT_USAGE,
                _ => EXIT_REMOTE,
            },
            Error::Config(_) | Error::Unsupported { .. } | Error::Env { .. } | Error::Encode(_) => {
                EXIT_USAGE
            }
            Error::Stopped
            | Error::Timeout(_)
            | Error::Transport(_)
            | Error::HelloRejected { .. } => EXIT_NOT_CONNECTED,
            _ => EXIT_REMOTE,
        };
        let mut message = e.to_string();
        if let Error::Rpc(r) = &e
            && let Some(data) = r.data()
        {
            message = format!("{message} {}", data.to_serde());
        }
        Failure {
            code: e.code().to_owned(),
            message,
            exit,
        }
    }
}

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    cli.conn.normalize();
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr closed) is dropped, never a panic.
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        Command::Verify { canonical, frames } => verify(&cli.conn, canonical, frames),
        command => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(run(cli.conn, command)),
            Err(e) => Err(Failure {
                code: "IO_ERROR".into(),
                message: format!("cannot start the runtime: {e}"),
                exit: EXIT_REMOTE,
            }),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("link: {}: {}", f.code, f.message);
            ExitCode::from(f.exit)
        }
    }
}

/// An argument error as `link: USAGE: …` with exit status 2; `--help` and
/// `--version` print as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            let text = e.render().to_string();
            let text = text.trim_start_matches("error: ").trim_end();
            eprintln!("link: USAGE: {text}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// A JSON argument: the text itself, `-` for stdin, or `@FILE`.
fn parse_json(what: &str, arg: &str) -> Result<Value, Failure> {
    let text = if arg == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::usage(format!("{what}: reading stdin: {e}")))?;
        text
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("{what}: reading {path}: {e}")))?
    } else {
        arg.to_owned()
    };
    // Read as `JSON.parse` reads it (every number the nearest double, correctly
    // rounded), with the wire's own parser.
    let value = wire::json::parse(text.as_bytes())
        .map_err(|e| Failure::usage(format!("{what} is not JSON: {e}")))?;
    // `1e400` reads as Infinity, which JSON cannot carry.
    wire::validate::check_json_safe(&value).map_err(|e| Failure::usage(format!("{what}: {e}")))?;
    if let Some(path) = lone_surrogate(&value, &mut String::from("$")) {
        return Err(Failure::usage(format!(
            "{what}: the string at {path} holds a lone surrogate, which link cannot send \
             from the command line"
        )));
    }
    Ok(value.to_serde())
}

/// Where `value` holds a string (or key) with a lone surrogate, which serde types
/// would turn into U+FFFD.
fn lone_surrogate(value: &wire::Value, path: &mut String) -> Option<String> {
    match value {
        wire::Value::String(s) if s.as_str().is_none() => Some(path.clone()),
        wire::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = lone_surrogate(item, path);
            path.truncate(len);
            found
        }),
        wire::Value::Object(o) => o.iter().find_map(|(k, v)| {
            let len = path.len();
            path.push('.');
            path.push_str(&k.to_string_lossy());
            let found = if k.as_str().is_none() {
                Some(path.clone())
            } else {
                lone_surrogate(v, path)
            };
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

/// Write one line to stdout: `Ok(false)` once the reader has gone away (`| head`),
/// an `IO_ERROR` failure if the line could not be written for another reason (a full
/// disk, a closed stdout).
fn print_line(line: &str) -> Result<bool, Failure> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure {
            code: "IO_ERROR".into(),
            message: format!("writing stdout: {e}"),
            exit: EXIT_REMOTE,
        }),
    }
}

/// Ctrl-C, or SIGTERM (how a service manager stops a long-running command).
async fn shutdown_signal() {
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

impl Conn {
    /// Empty values (an unset variable expanded by a shell or a compose file) count
    /// as unset, as the library's `from_env` reads them.
    fn normalize(&mut self) {
        if self.url.is_empty() {
            self.url = DEFAULT_URL.to_owned();
        }
        self.kind = self.kind.take().filter(|k| !k.is_empty());
        self.hash_algo = self.hash_algo.take().filter(|h| !h.is_empty());
        self.ca_file = self.ca_file.take().filter(|p| !p.is_empty());
    }

    fn hash_algo(&self) -> Result<Option<HashAlgo>, Failure> {
        self.hash_algo
            .as_deref()
            .map(|h| {
                h.parse::<HashAlgo>()
                    .map_err(|e| Failure::usage(e.to_string()))
            })
            .transpose()
    }

    /// A URL the link can never use is a usage error now, not a timeout later.
    fn check_url(&self) -> Result<(), Failure> {
        let lower = self.url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("ws://")
            .or_else(|| lower.strip_prefix("wss://"));
        match rest {
            Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
            _ => Err(Failure::usage(format!(
                "--url {:?} is not a WebSocket URL (ws://HOST:PORT[/PATH] or wss://…)",
                self.url
            ))),
        }
    }

    fn timeout(&self) -> Result<Duration, Failure> {
        Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| Failure::usage("--timeout must be a positive number of seconds"))
    }

    /// Connect as this peer, with `configure` adding handlers, and wait (bounded by
    /// `--timeout`) until the hub has accepted the hello.
    async fn connect(
        &self,
        configure: impl FnOnce(LinkOptions) -> LinkOptions,
    ) -> Result<LinkClient, Failure> {
        let timeout = self.timeout()?;
        self.check_url()?;
        let hash_algo = self.hash_algo()?;
        let secret = self
            .secret
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Failure::usage("no secret: pass --secret or set LINK_SECRET"))?;
        let kind = self
            .kind
            .clone()
            .unwrap_or_else(|| format!("link-cli-{}", std::process::id()));
        let mut options = LinkOptions::from_env()?
            .kind(kind)
            .secret(secret)
            .default_rpc_timeout(timeout)
            // A command line is waiting: retry a missing hub quickly, within --timeout.
            .reconnect_initial(Duration::from_millis(200))
            .reconnect_max(Duration::from_secs(2));
        if let Some(algo) = hash_algo {
            options = options.hash_algo(algo);
        }
        if let Some(pem) = &self.ca_file {
            let tls = link_tokio::tls_config_trusting(pem)
                .map_err(|e| Failure::usage(format!("--ca-file: {e}")))?;
            options = options.tls_config(tls);
        }
        let client = configure(options).connect(self.url.clone())?;
        let mut events = client.events();
        let mut last_problem: Option<String> = None;
        let wait = async {
            let ready = client.ready();
            tokio::pin!(ready);
            loop {
                tokio::select! {
                    r = &mut ready => return r,
                    ev = futures_util::StreamExt::next(&mut events) => match ev {
                        Some(Event::TransportError { error }) => last_problem = Some(error),
                        Some(Event::Link(ClientEvent::HelloAckDiagnostic(d))) => {
                            last_problem = Some(format!(
                                "the hub did not acknowledge the hello ({}): wrong secret, hash algorithm or unknown kind?",
                                d.as_str()
                            ));
                        }
                        Some(_) => {}
                        None => return client.ready().await,
                    },
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(e)) => {
                stop_now(&client).await;
                Err(e.into())
            }
            Err(_) => {
                stop_now(&client).await;
                let why = last_problem
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_else(|| " (wrong secret, hash algorithm or unknown kind?)".into());
                Err(Failure::not_connected(format!(
                    "not accepted by the hub at {} within {:?}{why}",
                    self.url, timeout
                )))
            }
        }
    }
}

/// Stopping is bounded: a command line must exit even if the hub stops answering.
const STOP_BUDGET: Duration = Duration::from_secs(5);

async fn stop(client: &LinkClient) {
    let _ = tokio::time::timeout(STOP_BUDGET, client.stop()).await;
}

async fn stop_now(client: &LinkClient) {
    let _ = tokio::time::timeout(STOP_BUDGET, client.stop_now()).await;
}

async fn run(conn: Conn, command: Command) -> Result<u8, Failure> {
    match command {
        Command::Rpc { to, rpc_type, json } => {
            let data = json
                .as_deref()
                .map(|j| parse_json("request data", j))
                .transpose()?;
            let client = conn.connect(|o| o).await?;
            let result: Result<Value, Error> = match &data {
                Some(d) => client.rpc(&to, &rpc_type, d).await,
                None => client.rpc(&to, &rpc_type, &()).await,
            };
            stop_now(&client).await;
            print_line(&json_text(&result?))?;
            Ok(0)
        }
        Command::Pub { topic, json } => {
            let payload = parse_json("payload", &json)?;
            let client = conn.connect(|o| o).await?;
            let published = client.publish(&topic, &payload).await;
            // A graceful stop flushes the message before the socket closes.
            stop(&client).await;
            published?;
            Ok(0)
        }
        Command::Send {
            to,
            direct_type,
            json,
        } => {
            let data = json.as_deref().map(|j| parse_json("data", j)).transpose()?;
            let client = conn.connect(|o| o).await?;
            let sent = match &data {
                Some(d) => client.send(&to, &direct_type, d).await,
                None => client.send(&to, &direct_type, &()).await,
            };
            stop(&client).await;
            sent?;
            Ok(0)
        }
        Command::Sub { topic, count } => sub(&conn, &topic, count).await,
        Command::Reply(reply) => serve(&conn, reply).await,
        Command::Peers => {
            let client = conn.connect(|o| o).await?;
            // The hub sends `peers.update` right after `hello.ack`; any server RPC
            // answered on this socket proves it has arrived.
            let _ = client.rpc::<_, Value>("server", "link.health", &()).await;
            let peers = client.peers().await;
            let me = client.kind().to_owned();
            stop_now(&client).await;
            // This command's own short-lived connection is not one of them.
            for p in peers?.into_iter().filter(|p| p.kind != me) {
                let line = serde_json::json!({
                    "kind": p.kind,
                    "hello": p.hello.to_value().to_serde(),
                    "connectedAt": wire::Value::Number(p.connected_at).to_serde(),
                    "connected": p.connected,
                });
                if !print_line(&line.to_string())? {
                    break;
                }
            }
            Ok(0)
        }
        Command::Health => {
            let client = conn.connect(|o| o).await?;
            let health: Result<Value, Error> = client.rpc("server", "link.health", &()).await;
            stop_now(&client).await;
            print_line(&json_text(&health?))?;
            Ok(0)
        }
        Command::Verify { .. } => Err(Failure::usage("verify runs without a hub")),
    }
}

async fn sub(conn: &Conn, topic: &str, count: Option<u64>) -> Result<u8, Failure> {
    let client = conn.connect(|o| o.subscription_capacity(65_536)).await?;
    // Returns once the hub has registered it: a publish from now on reaches us.
    let mut subscription = client.subscribe(topic).await?;
    eprintln!("subscribed {topic}");
    let mut seen = 0u64;
    let outcome = loop {
        if count.is_some_and(|n| seen >= n) {
            break Ok(0);
        }
        tokio::select! {
            msg = subscription.recv() => match msg {
                Some(m) => {
                    match print_line(&message_line(&m)) {
                        Ok(true) => seen += 1,
                        Ok(false) => break Ok(0),
                        Err(f) => break Err(f),
                    }
                }
                None => break Err(Failure::not_connected("the link stopped (replaced by another connection of this kind?)")),
            },
            () = shutdown_signal() => break Ok(0),
        }
    };
    drop(subscription);
    stop(&client).await;
    outcome
}

/// `value` as one line of JSON, written as JavaScript writes it (`1e+21`, and an
/// integral double without `.0`), with keys in JavaScript's order.
fn json_text(value: &Value) -> String {
    match wire::Value::from_serde(value) {
        Ok(v) => wire_text(&v),
        Err(_) => value.to_string(),
    }
}

/// A wire value's canonical text, which escapes lone surrogates: it is UTF-8.
fn wire_text(value: &wire::Value) -> String {
    String::from_utf8_lossy(&value.to_canonical()).into_owned()
}

/// A topic message as one JSON line `{"from","payload","topic"}`, written as the wire
/// holds it: a lone surrogate in the payload stays an escape (`\ud800`), where serde
/// types would turn it into U+FFFD, and numbers read as JavaScript writes them.
fn message_line(m: &link_tokio::TopicMessage) -> String {
    use wire::json::{JsString, Object};
    let line = wire::Value::Object(Object::from_members(vec![
        (
            JsString::from("from"),
            m.from
                .as_deref()
                .map_or(wire::Value::Null, wire::Value::from),
        ),
        (
            JsString::from("payload"),
            m.payload.clone().unwrap_or(wire::Value::Null),
        ),
        (JsString::from("topic"), wire::Value::from(m.topic.as_str())),
    ]));
    wire_text(&line)
}

async fn serve(conn: &Conn, reply: Reply) -> Result<u8, Failure> {
    if conn.kind.is_none() {
        return Err(Failure::usage(
            "reply serves as a kind that callers name: pass --kind or set LINK_KIND",
        ));
    }
    if reply.rpc_type.is_empty() {
        return Err(Failure::usage("the RPC type to serve must not be empty"));
    }
    enum Answer {
        Echo,
        Fixed(Value),
        Command(String),
    }
    let answer = Arc::new(match (reply.echo, reply.json, reply.command) {
        (true, _, _) => Answer::Echo,
        (_, Some(j), _) => {
            let result = parse_json("--json result", &j)?;
            // Refused now, not on every call.
            wire::Value::from_serde(&result)
                .map_err(|e| Failure::usage(format!("--json result: {e}")))?;
            Answer::Fixed(result)
        }
        (_, _, Some(c)) => Answer::Command(c),
        _ => {
            return Err(Failure::usage(
                "one of --echo, --json, --command is required",
            ));
        }
    });
    let limit = reply.count;
    // Requests taken (at most `limit`), requests answered, and the signals between
    // the handlers and this loop.
    let taken = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let stopping = Arc::new(Notify::new());
    let handler = {
        let (taken, answered, done, stopping) = (
            taken.clone(),
            answered.clone(),
            done.clone(),
            stopping.clone(),
        );
        move |ctx: link_tokio::RpcContext, req: Value| {
            let answer = answer.clone();
            let (taken, answered, done, stopping) = (
                taken.clone(),
                answered.clone(),
                done.clone(),
                stopping.clone(),
            );
            async move {
                let n = taken.fetch_add(1, Ordering::AcqRel) + 1;
                if let Some(l) = limit.filter(|&l| n > l) {
                    return Err(RpcHandlerError::new(format!(
                        "this replier answers {l} requests and has taken them all"
                    ))
                    .with_code("REPLY_LIMIT"));
                }
                let result = match &*answer {
                    Answer::Echo => Ok(req),
                    Answer::Fixed(v) => Ok(v.clone()),
                    Answer::Command(cmd) => tokio::select! {
                        r = run_command(cmd, req, &stopping) => r,
                        // The caller gave up (its timeout, or a cancel): the command
                        // is killed, and the answer goes nowhere.
                        () = ctx.cancel_signal().cancelled() => Err(RpcHandlerError::new("cancelled by the caller")),
                    },
                };
                let n = answered.fetch_add(1, Ordering::AcqRel) + 1;
                if limit.is_some_and(|l| n >= l) {
                    done.notify_one();
                }
                result
            }
        }
    };
    let rpc_type = reply.rpc_type.clone();
    let client = conn.connect(move |o| o.handle(rpc_type, handler)).await?;
    if limit == Some(0) {
        stop(&client).await;
        return Ok(0);
    }
    eprintln!("serving {} as {}", reply.rpc_type, client.kind());
    // The last answers leave their handlers before the link has sent them: wait
    // (bounded) until no handler is in flight and the outbox is empty.
    let settle = || async {
        let settled = async {
            while let Ok(h) = client.health().await {
                if h.in_flight_rpc == 0 && h.outbox_size == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let _ = tokio::time::timeout(STOP_BUDGET, settled).await;
    };
    let mut events = client.events();
    let outcome = loop {
        tokio::select! {
            _ = done.notified() => {
                settle().await;
                break Ok(0);
            }
            () = shutdown_signal() => {
                // Commands still running are killed, and their callers told so.
                stopping.notify_waiters();
                settle().await;
                break Ok(0);
            }
            ev = futures_util::StreamExt::next(&mut events) => match ev {
                Some(Event::Link(ClientEvent::Stopped)) | None => {
                    break Err(Failure::not_connected("the link stopped (replaced by another connection of this kind?)"));
                }
                Some(_) => {}
            },
        }
    };
    // A graceful stop sends the last responses before closing.
    stop(&client).await;
    outcome
}

/// The largest result `--command` may answer with: a frame must stay within the hub's
/// `maxMessageBytes` (1 MiB by default), and the envelope around the result takes a
/// few hundred bytes. A larger answer would make the hub close this socket.
const MAX_RESULT_BYTES: usize = 1_048_576 - 4_096;

/// `--command`: the request JSON on the command's stdin, its stdout parsed as the
/// result (empty = null), a failure reported to the caller as `COMMAND_FAILED`.
/// Input and output flow at once (a command may answer before it has read all its
/// input), and the command is killed if `stopping` fires first.
async fn run_command(cmd: &str, req: Value, stopping: &Notify) -> Result<Value, RpcHandlerError> {
    use tokio::io::AsyncWriteExt;
    let failed = |message: String| RpcHandlerError::new(message).with_code("COMMAND_FAILED");
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot run command: {e}")))?;
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A command that ignores its input may close stdin early: not an error.
            let mut line = req.to_string().into_bytes();
            line.push(b'\n');
            let _ = stdin.write_all(&line).await;
        }
    };
    let run = async {
        let (output, ()) = tokio::join!(child.wait_with_output(), feed);
        output
    };
    let out = tokio::select! {
        out = run => out.map_err(|e| failed(format!("cannot run command: {e}")))?,
        // Dropping `run` kills the command.
        () = stopping.notified() => return Err(failed("stopped before the command finished".into())),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(failed(format!(
            "command failed ({}): {}",
            out.status,
            stderr.trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = stdout.trim();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let result: Value = serde_json::from_str(text)
        .map_err(|e| failed(format!("command output is not JSON: {e}")))?;
    // Measured as it will be sent (numbers and escapes may grow or shrink).
    let size = wire::Value::from_serde(&result).map_or(0, |v| v.to_canonical().len());
    if size > MAX_RESULT_BYTES {
        return Err(failed(format!(
            "command output is {size} bytes of JSON, more than a frame may carry ({MAX_RESULT_BYTES})"
        )));
    }
    Ok(result)
}

/// `link verify`: the `verify` example's checks and output (`ok`, `ok<TAB>canonical`,
/// or the drop reason), over stdin lines or the given frames.
fn verify(conn: &Conn, canonical: bool, frames: Vec<String>) -> Result<u8, Failure> {
    let secret = conn
        .secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failure::usage("no secret: pass --secret or set LINK_SECRET"))?;
    let key = Key::new(secret, conn.hash_algo()?.unwrap_or_default());
    let limits = Limits::default();
    let mut rejected = false;
    let mut check = |frame: &[u8]| -> Result<bool, Failure> {
        let frame = frame.strip_suffix(b"\r").unwrap_or(frame);
        if frame.iter().all(u8::is_ascii_whitespace) {
            return Ok(true);
        }
        let line = match wire::inspect(frame, &key, &limits) {
            // Canonical text is always UTF-8 without raw tabs or newlines.
            Ok(text) if canonical => format!("ok\t{}", String::from_utf8_lossy(&text)),
            Ok(_) => "ok".to_owned(),
            Err(reason) => {
                rejected = true;
                reason.as_str().to_owned()
            }
        };
        print_line(&line)
    };
    if frames.is_empty() {
        // Lines are read as bytes: a frame that is not UTF-8 is a parse error to
        // report, not a reason to stop.
        for line in std::io::stdin().lock().split(b'\n') {
            let line = line.map_err(|e| Failure {
                code: "IO_ERROR".into(),
                message: format!("reading stdin: {e}"),
                exit: EXIT_REMOTE,
            })?;
            if !check(&line)? {
                break;
            }
        }
    } else {
        for f in &frames {
            if !check(f.as_bytes())? {
                break;
            }
        }
    }
    Ok(if rejected { EXIT_REMOTE } else { 0 })
}
