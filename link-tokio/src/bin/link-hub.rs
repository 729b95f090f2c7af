//! `link-hub`: the hub server. Configured by flags, each with a `LINK_*` environment
//! variable (a flag wins; an empty variable counts as unset); prints exactly one
//! `listening ws://HOST:PORT[PATH]` line on stdout when it accepts connections, and
//! shuts down gracefully on SIGINT/SIGTERM. Startup errors read `link-hub: CODE: ...`.
//!
//! ```text
//! link-hub --dev                                   # throwaway local hub, generated secret
//! LINK_SECRET=s3cret link-hub --port 8080          # shared secret
//! link-hub --keys-file keys.json --path /link      # per-peer keys: {"kind": "key", ...}
//! ```

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use link_sansio::wire::validate::{BadKind, check_kind};
use link_tokio::{HashAlgo, HubOptions, HubServerOptions};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status when the configuration or the command line is unusable.
const EXIT_CONFIG: u8 = 2;
/// Exit status when the server cannot start (bind, TLS) or stops badly.
const EXIT_RUNTIME: u8 = 1;

/// The link hub server.
#[derive(Debug, Parser)]
#[command(
    name = "link-hub",
    version,
    about = "The link hub: the WebSocket server that authenticates link peers and routes \
             their RPCs, topics, direct messages and statuses.",
    long_about = None
)]
struct Args {
    /// Shared HMAC secret for every peer (a flag beats a LINK_KEYS_FILE variable).
    #[arg(long, env = "LINK_SECRET", hide_env_values = true)]
    secret: Option<String>,

    /// Per-peer keys: a JSON file with one key per kind, `{"worker": "key-1", ...}`;
    /// hellos of other kinds are dropped silently (a flag beats a LINK_SECRET variable).
    #[arg(long, env = "LINK_KEYS_FILE", value_name = "FILE")]
    keys_file: Option<PathBuf>,

    /// Interface to bind.
    #[arg(long, env = "LINK_HOST", default_value = "127.0.0.1")]
    host: String,

    /// Port to bind (0 = any free port; the `listening` line shows the real one).
    #[arg(long, env = "LINK_PORT", default_value_t = 8080)]
    port: u16,

    /// Accept WebSocket upgrades only at this path, e.g. `/link` (default: any path).
    #[arg(long, env = "LINK_PATH")]
    path: Option<String>,

    /// Serve `GET /state` (peers, hellos and statuses): for internal dashboards. The
    /// variable takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = "LINK_STATE_ROUTE", value_parser = BoolishValueParser::new())]
    state_route: bool,

    /// PEM certificate chain: serve `wss://` (needs --tls-key).
    #[arg(long, env = "LINK_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "LINK_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// HMAC hash: sha256, sha384 or sha512 (every peer must use the same).
    #[arg(long, env = "LINK_HASH_ALGO", default_value = "sha256")]
    hash_algo: HashAlgo,

    /// Development mode: without a configured secret, generate one and print it once
    /// on stdout; bind to 127.0.0.1 only.
    #[arg(long)]
    dev: bool,
}

/// Why the hub does not start, printed as `link-hub: CODE: message`.
#[derive(Debug)]
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    /// An unusable configuration (exit status 2).
    fn config(message: impl Into<String>) -> Refusal {
        Refusal {
            code: "CONFIG_ERROR",
            message: message.into(),
        }
    }

    /// Print it on stderr and give the exit status that goes with its code.
    fn report(&self) -> ExitCode {
        complain(format_args!("{}: {}", self.code, self.message));
        match self.code {
            "CONFIG_ERROR" | "USAGE" => ExitCode::from(EXIT_CONFIG),
            _ => ExitCode::from(EXIT_RUNTIME),
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    init_logs();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Refusal {
                code: "RUNTIME_ERROR",
                message: format!("cannot start the runtime: {e}"),
            }
            .report();
        }
    };
    runtime.block_on(run(args))
}

/// The parser, with every `LINK_*` variable that is set but empty taken as unset:
/// compose and systemd files expand a missing `${VAR}` to an empty string.
fn command() -> clap::Command {
    Args::command().mut_args(|arg| {
        let Some(var) = arg.get_env().map(|v| v.to_owned()) else {
            return arg;
        };
        if std::env::var_os(&var).is_none_or(|v| !v.is_empty()) {
            return arg;
        }
        // clap reads the variable when the argument is declared: forget it, but keep
        // naming it in --help.
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let hint = format!("{help} [env: {}]", var.to_string_lossy());
        arg.env(None).help(hint)
    })
}

/// Flags and `LINK_*` variables as one configuration. A flag beats the variable of
/// its rival: `--keys-file` with `LINK_SECRET` set uses the keys file, and the other
/// way round. `Err` is the exit status once help, version or a usage error is printed.
fn parse_args() -> Result<Args, ExitCode> {
    let usage_error = |e: clap::Error| {
        let text = e.render().to_string();
        let text = text.trim_end();
        Refusal {
            code: "USAGE",
            message: text.strip_prefix("error: ").unwrap_or(text).to_owned(),
        }
        .report()
    };
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        // --help and --version: not errors, and they go to stdout.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return Err(ExitCode::SUCCESS);
        }
        Err(e) => return Err(usage_error(e)),
    };
    let mut args = Args::from_arg_matches(&matches).map_err(usage_error)?;
    // An empty secret is no secret, wherever it comes from.
    args.secret = args.secret.filter(|s| !s.is_empty());
    if args.secret.is_some() && args.keys_file.is_some() {
        let from_flag = |id| matches.value_source(id) == Some(ValueSource::CommandLine);
        match (from_flag("secret"), from_flag("keys_file")) {
            (true, false) => args.keys_file = None,
            (false, true) => args.secret = None,
            _ => {}
        }
    }
    Ok(args)
}

/// Logs on stderr, in colour only on a terminal and without `NO_COLOR`. A log line
/// that cannot be written is dropped: reporting it would go to the same broken
/// stderr, and `eprintln!` would panic in whichever task logged.
fn init_logs() {
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// One line on stdout, `what` naming it. A closed or full stdout (`| head -1`,
/// `> /dev/full`) is logged, never fatal: the hub keeps serving.
fn say(what: &str, line: std::fmt::Arguments<'_>) {
    let line = format!("{line}\n");
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "cannot write the {what} to stdout");
    }
}

/// One `link-hub: ...` line on stderr; nowhere to report it if stderr is gone.
fn complain(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "link-hub: {line}");
}

/// Where the hub's keys come from, decided before anything binds.
enum KeySource {
    Shared(String),
    PerKind(BTreeMap<String, String>),
}

async fn run(args: Args) -> ExitCode {
    let (keys, host) = match configure(&args) {
        Ok(c) => c,
        Err(refusal) => return refusal.report(),
    };
    let hub = match keys {
        KeySource::Shared(secret) => HubOptions::new(secret),
        KeySource::PerKind(map) => HubOptions::per_peer_keys(map),
    }
    .hash_algo(args.hash_algo);
    let path = args.path.as_deref().and_then(normalise_path);
    let mut server = HubServerOptions::new(hub)
        .host(host)
        .port(args.port)
        .state_route(args.state_route);
    if let Some(path) = &path {
        server = server.path(path.clone());
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        server = server.tls(cert.clone(), key.clone());
    }
    let server = match server.start().await {
        Ok(s) => s,
        Err(e) => {
            complain(format_args!("{}: {e}", e.code()));
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // The one line scripts and tests wait for: the real bound port, even with --port 0.
    say(
        "listening line",
        format_args!(
            "listening {}{}",
            server.url(),
            path.as_deref().unwrap_or("")
        ),
    );
    match server.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            complain(format_args!("shutdown: {}: {e}", e.code()));
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `link`, `/link/` and `/link` all mean `/link`, as the server matches paths; an
/// empty path means any path.
fn normalise_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    Some(format!("/{}", path.trim_matches('/')))
}

fn configure(args: &Args) -> Result<(KeySource, String), Refusal> {
    let keys = match (&args.secret, &args.keys_file) {
        (Some(_), Some(_)) => {
            return Err(Refusal::config(
                "both a shared secret (--secret / LINK_SECRET) and a keys file \
                 (--keys-file / LINK_KEYS_FILE) are set: choose one",
            ));
        }
        (Some(s), None) => Some(KeySource::Shared(s.clone())),
        (None, Some(path)) => Some(KeySource::PerKind(read_keys_file(path)?)),
        (None, None) => None,
    };
    if !args.dev {
        let keys = keys.ok_or_else(|| {
            Refusal::config(
                "no secret configured: pass --secret (or set LINK_SECRET) for a shared \
                 secret, or --keys-file (LINK_KEYS_FILE) for per-peer keys; --dev starts \
                 a local hub with a generated secret",
            )
        })?;
        return Ok((keys, args.host.clone()));
    }
    // Dev mode never listens beyond this machine, whatever else is configured.
    let loopback = match args.host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => args.host == "localhost",
    };
    if !loopback {
        return Err(Refusal::config(format!(
            "--dev binds to 127.0.0.1 only; refusing --host {} (drop --dev to serve other interfaces)",
            args.host
        )));
    }
    let keys = match keys {
        Some(k) => k,
        None => {
            let secret = generate_secret()?;
            // Printed once, here, on stdout; stderr (often a log collector) and the
            // logs never see it.
            say("dev secret", format_args!("dev secret {secret}"));
            complain(format_args!(
                "dev mode: generated a throwaway secret, printed on stdout as \
                 `dev secret …`; clients set LINK_SECRET to it"
            ));
            KeySource::Shared(secret)
        }
    };
    Ok((keys, "127.0.0.1".to_owned()))
}

/// Kind → key from a JSON object, refusing any entry no peer could ever use.
fn read_keys_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, Refusal> {
    let refuse = |why: String| Refusal::config(format!("keys file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| refuse(format!("not JSON: {e}")))?;
    let serde_json::Value::Object(map) = json else {
        return Err(refuse(
            "expected a JSON object {\"kind\": \"key\", ...}".to_owned(),
        ));
    };
    let mut keys = BTreeMap::new();
    for (kind, key) in map {
        if let Err(bad) = check_kind(&kind) {
            return Err(refuse(format!(
                "no peer can connect as kind {kind:?}: {}",
                why_kind_is_bad(bad)
            )));
        }
        match key {
            serde_json::Value::String(k) if !k.is_empty() => {
                keys.insert(kind, k);
            }
            _ => {
                return Err(refuse(format!(
                    "the key of {kind:?} must be a non-empty string"
                )));
            }
        }
    }
    if keys.is_empty() {
        return Err(refuse("no keys".to_owned()));
    }
    Ok(keys)
}

/// The kind rules of PROTOCOL.md §3, in words, for the one a kind breaks.
fn why_kind_is_bad(bad: BadKind) -> String {
    let rule = match bad {
        BadKind::Missing => "a kind cannot be empty",
        BadKind::Oversized => "a kind has at most 256 characters",
        BadKind::Reserved => "__proto__, constructor, prototype and server are reserved",
        BadKind::Invalid => "a kind has only letters, digits, '.', '_' and '-'",
        _ => "not a valid kind",
    };
    format!("{rule} ({bad})")
}

/// 32 random bytes from the OS (through the TLS crypto provider), as hex.
fn generate_secret() -> Result<String, Refusal> {
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| Refusal {
            code: "RANDOM_ERROR",
            message: "cannot read the OS random source to generate a dev secret".to_owned(),
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
