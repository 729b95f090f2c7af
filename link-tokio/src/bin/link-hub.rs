//! `link-hub`: the hub server. Configured by flags, each with a `LINK_*` environment
//! variable; prints exactly one `listening ws://HOST:PORT[PATH]` line on stdout when it
//! accepts connections, and shuts down gracefully on SIGINT/SIGTERM.
//!
//! ```text
//! link-hub --dev                                   # throwaway local hub, generated secret
//! LINK_SECRET=s3cret link-hub --port 8080          # shared secret
//! link-hub --keys-file keys.json --path /link      # per-peer keys: {"kind": "key", ...}
//! ```

use clap::Parser;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use link_tokio::{HashAlgo, HubOptions, HubServerOptions};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status when the configuration is unusable (same as a usage error).
const EXIT_CONFIG: u8 = 2;
/// Exit status when the server cannot start (bind, TLS) or stops badly.
const EXIT_RUNTIME: u8 = 1;

/// The link hub server.
#[derive(Debug, Parser)]
#[command(name = "link-hub", version, about, long_about = None)]
struct Args {
    /// Shared HMAC secret for every peer.
    #[arg(long, env = "LINK_SECRET", hide_env_values = true)]
    secret: Option<String>,

    /// Per-peer keys: a JSON file with one key per kind, `{"worker": "key-1", ...}`.
    /// Hellos of other kinds are dropped silently.
    #[arg(long, env = "LINK_KEYS_FILE", value_name = "FILE")]
    keys_file: Option<PathBuf>,

    /// Interface to bind.
    #[arg(long, env = "LINK_HOST", default_value = "127.0.0.1")]
    host: String,

    /// Port to bind (0 = any free port; the `listening` line shows the real one).
    #[arg(long, env = "LINK_PORT", default_value_t = 8080)]
    port: u16,

    /// Accept WebSocket upgrades only at this path (default: any path).
    #[arg(long, env = "LINK_PATH")]
    path: Option<String>,

    /// Serve `GET /state` (peers, hellos and statuses): for internal dashboards.
    #[arg(long, env = "LINK_STATE_ROUTE")]
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

    /// Development mode: without a configured secret, generate one and print it once;
    /// bind to 127.0.0.1 only.
    #[arg(long)]
    dev: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("link-hub: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(run(args))
}

/// Where the hub's keys come from, decided before anything binds.
enum KeySource {
    Shared(String),
    PerKind(BTreeMap<String, String>),
}

async fn run(args: Args) -> ExitCode {
    let (keys, host) = match configure(&args) {
        Ok(c) => c,
        Err(problem) => {
            eprintln!("link-hub: {problem}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let hub = match keys {
        KeySource::Shared(secret) => HubOptions::new(secret),
        KeySource::PerKind(map) => HubOptions::per_peer_keys(map),
    }
    .hash_algo(args.hash_algo);
    let mut server = HubServerOptions::new(hub)
        .host(host)
        .port(args.port)
        .state_route(args.state_route);
    if let Some(path) = &args.path {
        server = server.path(path.clone());
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        server = server.tls(cert.clone(), key.clone());
    }
    let server = match server.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("link-hub: {}: {e}", e.code());
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // The one line scripts and tests wait for: the real bound port, even with --port 0.
    println!(
        "listening {}{}",
        server.url(),
        args.path.as_deref().unwrap_or("")
    );
    match server.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("link-hub: shutdown: {}: {e}", e.code());
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn configure(args: &Args) -> Result<(KeySource, String), String> {
    let secret = args.secret.as_deref().filter(|s| !s.is_empty());
    let keys = match (secret, &args.keys_file) {
        (Some(_), Some(_)) => {
            return Err(
                "both a shared secret (--secret / LINK_SECRET) and a keys file \
                        (--keys-file / LINK_KEYS_FILE) are set: choose one"
                    .into(),
            );
        }
        (Some(s), None) => Some(KeySource::Shared(s.to_owned())),
        (None, Some(path)) => Some(KeySource::PerKind(read_keys_file(path)?)),
        (None, None) => None,
    };
    if !args.dev {
        let keys = keys.ok_or(
            "no secret configured: pass --secret (or set LINK_SECRET) for a shared secret, \
             or --keys-file (LINK_KEYS_FILE) for per-peer keys; --dev starts a local hub \
             with a generated secret",
        )?;
        return Ok((keys, args.host.clone()));
    }
    // Dev mode never listens beyond this machine, whatever else is configured.
    let loopback = match args.host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => args.host == "localhost",
    };
    if !loopback {
        return Err(format!(
            "--dev binds to 127.0.0.1 only; refusing --host {} (drop --dev to serve other interfaces)",
            args.host
        ));
    }
    let keys = match keys {
        Some(k) => k,
        None => {
            let secret = generate_secret()?;
            // Printed once, here; the hub never logs it.
            println!("dev secret {secret}");
            eprintln!(
                "link-hub: dev mode: generated a throwaway secret; clients use LINK_SECRET={secret}"
            );
            KeySource::Shared(secret)
        }
    };
    Ok((keys, "127.0.0.1".to_owned()))
}

fn read_keys_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("keys file {}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("keys file {}: not JSON: {e}", path.display()))?;
    let serde_json::Value::Object(map) = json else {
        return Err(format!(
            "keys file {}: expected a JSON object {{\"kind\": \"key\", ...}}",
            path.display()
        ));
    };
    let mut keys = BTreeMap::new();
    for (kind, key) in map {
        match key {
            serde_json::Value::String(k) if !k.is_empty() => {
                keys.insert(kind, k);
            }
            _ => {
                return Err(format!(
                    "keys file {}: the key of {kind:?} must be a non-empty string",
                    path.display()
                ));
            }
        }
    }
    if keys.is_empty() {
        return Err(format!("keys file {}: no keys", path.display()));
    }
    Ok(keys)
}

/// 32 random bytes from the OS (through the TLS crypto provider), as hex.
fn generate_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "cannot read the OS random source to generate a dev secret".to_owned())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
