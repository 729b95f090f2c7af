//! Throughput and latency of a link hub over loopback, against a raw relay in the same
//! run: the reference's `bench/throughput.js` workloads, plus fan-out and idle memory.
//!
//! ```text
//! cargo run --release -p link-tokio --example bench
//! ```
//!
//! The hub (and the raw relay) run in a child process, as in production; the clients
//! run here. Every message carries the reference's payload
//! `{kind:'event', seq, ts, tags:['a','b','c'], nested:{ok:true, n:42}}`.
//!
//! - `rpc_seq`: 5,000 sequential RPCs (mean, p50, p99, max, calls/s);
//! - `rpc_concurrent`: 20,000 RPCs in flight at once (calls/s);
//! - `send`, `publish`: 50,000 direct messages / publishes to one subscriber (msgs/s);
//! - `fanout_10`, `fanout_100`: one publish stream to 10 / 100 subscribers
//!   (deliveries/s);
//! - `idle_bytes_per_conn`: hub RSS growth per idle WebSocket connection, 10,000 of them.
//!
//! Each round also prints the server process's peak memory (`VmHWM`). The fan-out to
//! 100 subscribers sets it, through the frames queued behind slow subscribers, so it
//! varies widely between runs (from 72 to 280 MiB on the 2-core development machine).
//!
//! Throughput workloads measure a steady state: each first runs unmeasured (a fifth of
//! its count for one-way workloads but at least 10,000 messages, the replay caches'
//! size; one whole batch for concurrent RPCs), which fills the replay caches, queues
//! and allocator pools that a long-running hub and its clients fill once. The raw
//! relay is warmed up the same way.
//!
//! The raw relay forwards frames between WebSockets by a route fixed at connect time
//! (`/name/peer/other`, `/name/topic/t`, `/name/sub/t`): no JSON, no HMAC. Its
//! clients send frames of the same size as link's. One-way workloads keep at most a
//! window of messages in flight (the same for both), so what is measured is sustained
//! throughput rather than the depth of the queues.
//!
//! Idle connections are WebSockets that stay open without a hello: 10,000
//! *authenticated* peers cannot be measured on any link hub, because every join
//! broadcasts the whole peer list to every peer (O(n²) bytes per join).
//!
//! link and the raw relay take turns for `--rounds N` rounds (5 by default), and each
//! figure is the median of its rounds. Output ends with one line per workload:
//! `result <workload> <link> <raw> <unit>`.
//!
//! Options: `--rounds N`; `--only W[,W...]` runs those link workloads alone (for a
//! profiler, or an A/B of two builds); `--quick` divides every count by 20 (a smoke
//! test of the program, not a measurement); `--help`.

// Both the hub child and the relay child are this binary: the same allocator for both.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use link_tokio::{
    ClientEvent, Event, HubOptions, HubServerOptions, LinkClient, LinkOptions, RpcHandlerError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

const SECRET: &str = "bench-secret";
const RPC_SEQ: usize = 5_000;
const RPC_WARMUP: usize = 500;
const RPC_CONCURRENT: usize = 20_000;
const ONE_WAY: usize = 50_000;
/// Deliveries measured per fan-out workload: enough for a steady state (about a
/// second at link's rate here).
const FANOUT_DELIVERIES: usize = 500_000;
const IDLE_CONNS: usize = 10_000;
/// The replay caches' size (`max_recent_ids`, the reference's default on both ends): a
/// one-way workload's warm-up sends at least this many messages, so that its measured
/// part finds every cache full, as in a long-running deployment.
const REPLAY_IDS: usize = 10_000;
/// The workloads, in the order they run.
const WORKLOADS: [&str; 6] = [
    "rpc_seq",
    "rpc_concurrent",
    "send",
    "publish",
    "fanout_10",
    "fanout_100",
];
/// Messages in flight (sent, not yet received) in one-way workloads.
const WINDOW: u64 = 8_192;
/// No workload may take longer than this.
const WORKLOAD_LIMIT: Duration = Duration::from_secs(60);

type BenchResult<T> = Result<T, String>;

/// `--quick` divides every count by 20 and runs one round: a smoke test of the
/// program, not a measurement.
static QUICK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--rounds N`: how many times link and the raw relay take turns (default 5: rounds
/// of one run differ by tens of percent on a shared machine, and a median of five
/// rides out two disturbed rounds where one of three rides out one).
static ROUNDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(5);

/// `--only <workload>[,<workload>...]` runs those link workloads alone, in their usual
/// order (for a profiler or an A/B of two builds), nothing else: one round, or
/// `--rounds N`.
static ONLY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn wanted(workload: &str) -> bool {
    ONLY.get()
        .is_none_or(|list| list.split(',').any(|w| w == workload))
}

fn scaled(full: usize) -> usize {
    if QUICK.load(Ordering::Relaxed) {
        (full / 20).max(1)
    } else {
        full
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        serve(args.get(1).map(String::as_str).unwrap_or("link"));
        return;
    }
    match parse_args(&args) {
        Ok(Cli::Run) => {}
        Ok(Cli::Help) => {
            println!("{}", usage());
            return;
        }
        Err(e) => {
            eprintln!("bench: {e}\n{}", usage());
            std::process::exit(2);
        }
    }
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// What the command line asks for.
enum Cli {
    Run,
    Help,
}

fn usage() -> String {
    format!(
        "usage: bench [--rounds N] [--only WORKLOAD[,WORKLOAD...]] [--quick] [--help]\n\
         workloads: {}",
        WORKLOADS.join(" ")
    )
}

/// Applies the command line's options.
fn parse_args(args: &[String]) -> Result<Cli, String> {
    let mut rounds = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Cli::Help),
            "--quick" => {
                QUICK.store(true, Ordering::Relaxed);
                ROUNDS.store(1, Ordering::Relaxed);
            }
            "--only" => {
                let list = args.next().ok_or("--only needs a workload list")?;
                if let Some(w) = list.split(',').find(|w| !WORKLOADS.contains(w)) {
                    return Err(format!("no workload {w:?}"));
                }
                let _ = ONLY.set(list.clone());
                ROUNDS.store(1, Ordering::Relaxed);
            }
            "--rounds" => {
                let n = args
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--rounds needs a positive number")?;
                rounds = Some(n);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(n) = rounds {
        ROUNDS.store(n, Ordering::Relaxed);
    }
    Ok(Cli::Run)
}

// ---------------------------------------------------------------- child processes

/// `bench --serve link|raw`: serve on a free loopback port, print `port N`, and exit
/// when stdin closes (the parent went away).
fn serve(mode: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let port = match mode {
            "raw" => (raw_relay().await, None),
            _ => {
                let hub = HubOptions::new(SECRET)
                    // Nobody listens to the per-frame firehose here.
                    .message_events(false)
                    // Idle connections stay pending without a hello: let 10,000 of them.
                    .max_pending_sockets(2 * IDLE_CONNS)
                    .hello_timeout(Duration::ZERO);
                let server = HubServerOptions::new(hub)
                    .host("127.0.0.1")
                    .port(0)
                    .handle_signals(false)
                    .start()
                    .await
                    .expect("hub starts");
                (server.local_addr().port(), Some(server))
            }
        };
        println!("port {}", port.0);
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .ok();
        drop(port.1);
    });
}

/// A child process serving `mode`; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(mode: &str) -> BenchResult<Server> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(["--serve", mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("start {mode} server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{mode} server said {line:?}"))?;
        Ok(Server { child, port })
    }

    fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// The server's resident memory now.
    fn rss_bytes(&self) -> BenchResult<u64> {
        self.status_bytes("VmRSS")
    }

    /// The most resident memory the server has had (the kernel's high-water mark).
    fn peak_rss_bytes(&self) -> BenchResult<u64> {
        self.status_bytes("VmHWM")
    }

    /// A size field of `/proc/<pid>/status`, in bytes.
    fn status_bytes(&self, field: &str) -> BenchResult<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("read hub status: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| format!("no {field}"))
    }

    /// Prints the server's peak memory over the workloads it served.
    fn report_peak(&self, side: &str) {
        if let Ok(peak) = self.peak_rss_bytes() {
            println!(
                "peak memory     {side:<4}  {:>9.1} MiB (server process, this round)",
                peak as f64 / (1024.0 * 1024.0)
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) of a process so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = stat.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// CPU spent by the server process and by this (client) process during a workload.
struct CpuMeter {
    server: String,
    start: (Duration, Duration),
}

impl CpuMeter {
    fn start(server: &Server) -> CpuMeter {
        let server = server.child.id().to_string();
        let start = (cpu_time(&server), cpu_time("self"));
        CpuMeter { server, start }
    }

    /// "cpu per message: server X us, clients Y us".
    fn per(&self, messages: u64) -> String {
        let hub = cpu_time(&self.server).saturating_sub(self.start.0);
        let clients = cpu_time("self").saturating_sub(self.start.1);
        let m = messages.max(1) as f64;
        format!(
            "cpu/msg: server {:.1}us, clients {:.1}us",
            us(hub) / m,
            us(clients) / m
        )
    }
}

fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let want = (IDLE_CONNS as u64) + 1_000;
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if limit.current.is_some_and(|c| c >= want) {
        return;
    }
    limit.current = Some(hard.min(want.max(hard.min(65_536))));
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        eprintln!("bench: cannot raise the open-file limit: {e}");
    }
    let now = getrlimit(Resource::Nofile).current;
    eprintln!("open-file limit: {now:?} (hard {hard})");
}

// ---------------------------------------------------------------- payload

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The reference's payload, as a Rust service would declare it: sent by every
/// workload, and read back as this type by the RPC echo handler and its callers.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    kind: Cow<'static, str>,
    seq: u64,
    ts: u64,
    tags: [Cow<'static, str>; 3],
    nested: Nested,
}

#[derive(Debug, Serialize, Deserialize)]
struct Nested {
    ok: bool,
    n: u32,
}

fn payload(seq: u64) -> Payload {
    Payload {
        kind: Cow::Borrowed("event"),
        seq,
        ts: now_ms(),
        tags: [Cow::Borrowed("a"), Cow::Borrowed("b"), Cow::Borrowed("c")],
        nested: Nested { ok: true, n: 42 },
    }
}

/// A frame the size and shape of a link envelope carrying the payload, for the raw
/// relay (formatted, not serialized: the raw side does no JSON work).
fn raw_frame(seq: u64) -> Message {
    let ts = now_ms();
    Message::text(format!(
        r#"{{"data":{{"payload":{{"kind":"event","nested":{{"n":42,"ok":true}},"seq":{seq},"tags":["a","b","c"],"ts":{ts}}},"topic":"bench.events"}},"from":"publisher","id":"6f1d2c3b-{seq:012x}-4e5f-8a9b-0c1d2e3f4a5b","sig":"{:064x}","to":"subscriber","ts":{ts},"type":"topic.message","v":1}}"#,
        seq
    ))
}

// ---------------------------------------------------------------- stats

#[derive(Debug, Clone, Copy)]
struct Latency {
    mean: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    per_sec: f64,
}

fn latency(mut samples: Vec<Duration>, total: Duration) -> Latency {
    samples.sort_unstable();
    let n = samples.len().max(1);
    let at = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)];
    Latency {
        mean: samples.iter().sum::<Duration>() / n as u32,
        p50: at(0.50),
        p99: at(0.99),
        max: samples.last().copied().unwrap_or_default(),
        per_sec: n as f64 / total.as_secs_f64(),
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A counter one task bumps and another waits on.
#[derive(Default)]
struct Counter {
    n: AtomicU64,
    changed: Notify,
}

impl Counter {
    fn add(&self, k: u64) {
        self.n.fetch_add(k, Ordering::AcqRel);
        self.changed.notify_one();
    }
    fn get(&self) -> u64 {
        self.n.load(Ordering::Acquire)
    }
    /// Wait until the count reaches `target` (or the deadline passes).
    async fn reach(&self, target: u64, deadline: Instant) -> bool {
        while self.get() < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(
                left.min(Duration::from_millis(100)),
                self.changed.notified(),
            )
            .await;
        }
        true
    }
}

// ---------------------------------------------------------------- link side

fn options(kind: &str) -> LinkOptions {
    LinkOptions::new()
        .kind(kind)
        .secret(SECRET)
        .default_rpc_timeout(WORKLOAD_LIMIT)
        .max_concurrent_rpc(0)
        // Room for a window of messages in flight, and then some.
        .subscription_capacity(4 * WINDOW as usize)
}

async fn ready(options: LinkOptions, url: &str) -> BenchResult<LinkClient> {
    let client = options.connect(url).map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(20), client.ready())
        .await
        .map_err(|_| format!("{} not ready", client.kind()))?
        .map_err(|e| e.to_string())?;
    Ok(client)
}

async fn link_rpc_seq(caller: &LinkClient) -> BenchResult<Latency> {
    for i in 0..scaled(RPC_WARMUP) {
        let _: Payload = caller
            .rpc("echo", "bench.echo", &payload(i as u64))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut samples = Vec::with_capacity(scaled(RPC_SEQ));
    let start = Instant::now();
    for i in 0..scaled(RPC_SEQ) {
        let t = Instant::now();
        let _: Payload = caller
            .rpc("echo", "bench.echo", &payload(i as u64))
            .await
            .map_err(|e| e.to_string())?;
        samples.push(t.elapsed());
    }
    Ok(latency(samples, start.elapsed()))
}

async fn link_rpc_concurrent(caller: &LinkClient) -> BenchResult<f64> {
    let start = Instant::now();
    let mut calls: FuturesUnordered<_> = (0..scaled(RPC_CONCURRENT))
        .map(|i| {
            caller
                .rpc::<_, Payload>("echo", "bench.echo", &payload(i as u64))
                .into_future()
        })
        .collect();
    let mut failed = 0usize;
    let mut first_error = None;
    while let Some(r) = calls.next().await {
        if let Err(e) = r {
            failed += 1;
            first_error.get_or_insert(e.to_string());
        }
    }
    let elapsed = start.elapsed();
    if failed > 0 {
        return Err(format!("{failed} concurrent RPCs failed: {first_error:?}"));
    }
    Ok(scaled(RPC_CONCURRENT) as f64 / elapsed.as_secs_f64())
}

/// Count what `receiver` gets: directs when `topic` is `None`, else topic messages.
async fn link_counter(
    receiver: &LinkClient,
    topic: Option<&str>,
    counter: Arc<Counter>,
) -> BenchResult<()> {
    let c = counter;
    match topic {
        None => {
            let mut events = receiver.events();
            tokio::spawn(async move {
                while let Some(ev) = events.next().await {
                    match ev {
                        Event::Link(ClientEvent::Direct { .. }) => c.add(1),
                        Event::Lagged { missed } => {
                            eprintln!("bench: event stream lagged by {missed}")
                        }
                        _ => {}
                    }
                }
            });
        }
        Some(topic) => {
            // Returns once the hub has registered it.
            let mut sub = receiver.subscribe(topic).await.map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                while sub.recv().await.is_some() {
                    c.add(1);
                }
            });
        }
    }
    Ok(())
}

/// Sends issued at once without waiting for each (the reference's `send()` and
/// `publish()` return at once; here they are async, so keep several going).
const PIPELINE: usize = 256;

/// Drive `pending` sends until `counter` reaches `target`; false at the deadline.
async fn drive_until<Fut>(
    pending: &mut FuturesUnordered<Fut>,
    counter: &Counter,
    target: u64,
    deadline: Instant,
) -> BenchResult<bool>
where
    Fut: std::future::Future<Output = BenchResult<()>>,
{
    loop {
        if counter.get() >= target {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        tokio::select! {
            Some(r) = pending.next(), if !pending.is_empty() => r?,
            _ = tokio::time::timeout(left.min(Duration::from_millis(100)), counter.changed.notified()) => {}
        }
    }
}

/// Messages sent (and delivered) before a one-way workload is measured, as a share of
/// its count (and at least [`REPLAY_IDS`]): the first messages grow the replay caches,
/// queues and allocator pools to their steady size, which a long-running hub does
/// once, not per message.
const WARMUP_DIVISOR: u64 = 5;

/// Send `count` messages with `send_one` after an unmeasured warm-up of
/// `count / WARMUP_DIVISOR` (at least [`REPLAY_IDS`]), keeping at most `WINDOW`
/// undelivered (deliveries counted by `counter`, `fanout` per message) and up to
/// `PIPELINE` sends in progress. Returns msgs (deliveries) per second and the CPU per
/// delivery of the measured part.
async fn windowed<F, Fut>(
    server: &Server,
    count: u64,
    fanout: u64,
    counter: &Counter,
    mut send_one: F,
) -> BenchResult<(f64, String)>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = BenchResult<()>>,
{
    let warmup = (count / WARMUP_DIVISOR).max(scaled(REPLAY_IDS) as u64);
    stream(0..warmup, fanout, counter, &mut send_one).await?;
    let cpu = CpuMeter::start(server);
    let start = Instant::now();
    stream(warmup..warmup + count, fanout, counter, &mut send_one).await?;
    let rate = (count * fanout) as f64 / start.elapsed().as_secs_f64();
    Ok((rate, cpu.per(count * fanout)))
}

/// Send messages `seqs` and wait until all of them are delivered (see [`windowed`]).
async fn stream<F, Fut>(
    seqs: std::ops::Range<u64>,
    fanout: u64,
    counter: &Counter,
    send_one: &mut F,
) -> BenchResult<()>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = BenchResult<()>>,
{
    let deadline = Instant::now() + WORKLOAD_LIMIT;
    let base = counter.get();
    let count = seqs.end - seqs.start;
    let mut pending = FuturesUnordered::new();
    for (sent, seq) in seqs.enumerate() {
        let in_flight_limit = (sent as u64 * fanout).saturating_sub(WINDOW * fanout);
        if !drive_until(&mut pending, counter, base + in_flight_limit, deadline).await? {
            return Err(format!(
                "stalled after {sent} messages ({} delivered)",
                counter.get() - base
            ));
        }
        pending.push(send_one(seq));
        while pending.len() >= PIPELINE {
            if let Some(r) = pending.next().await {
                r?;
            }
        }
    }
    let target = base + count * fanout;
    if !drive_until(&mut pending, counter, target, deadline).await? {
        return Err(format!(
            "{} of {} deliveries within {WORKLOAD_LIMIT:?}",
            counter.get() - base,
            count * fanout
        ));
    }
    Ok(())
}

struct LinkFigures {
    rpc_seq: Latency,
    rpc_concurrent: f64,
    send: f64,
    publish: f64,
    fanout: Vec<(usize, f64)>,
}

async fn link_workloads() -> BenchResult<LinkFigures> {
    let server = Server::start("link")?;
    let url = server.url("");
    let echo = ready(
        options("echo")
            // Direct messages arrive as events: room for a window of them. (The event
            // ring keeps its last values alive, so a larger one only costs memory.)
            .event_capacity(4 * WINDOW as usize)
            .handle("bench.echo", |_ctx, p: Payload| async move {
                Ok::<_, RpcHandlerError>(p)
            }),
        &url,
    )
    .await?;
    let caller = ready(options("caller"), &url).await?;
    eprintln!("hub process {}", server.child.id());
    let mut figures = LinkFigures {
        rpc_seq: latency(vec![Duration::ZERO], Duration::from_secs(1)),
        rpc_concurrent: 0.0,
        send: 0.0,
        publish: 0.0,
        fanout: vec![(10, 0.0), (100, 0.0)],
    };

    if wanted("rpc_seq") {
        let cpu = CpuMeter::start(&server);
        figures.rpc_seq = link_rpc_seq(&caller).await?;
        report_latency("link", &figures.rpc_seq);
        println!(
            "                      {}",
            cpu.per((scaled(RPC_SEQ) + scaled(RPC_WARMUP)) as u64)
        );
    }
    if wanted("rpc_concurrent") {
        // Warm-up: one unmeasured batch of the same size (see `WARMUP_DIVISOR`).
        link_rpc_concurrent(&caller).await?;
        let cpu = CpuMeter::start(&server);
        figures.rpc_concurrent = link_rpc_concurrent(&caller).await?;
        println!(
            "rpc_concurrent  link  {:>12.0} calls/s   {}",
            figures.rpc_concurrent,
            cpu.per(scaled(RPC_CONCURRENT) as u64)
        );
    }
    if wanted("send") {
        let directs = Arc::new(Counter::default());
        link_counter(&echo, None, directs.clone()).await?;
        let (rate, cpu) = windowed(&server, scaled(ONE_WAY) as u64, 1, &directs, |seq| {
            let caller = caller.clone();
            async move {
                caller
                    .send("echo", "bench.event", &payload(seq))
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .await?;
        figures.send = rate;
        println!("send            link  {rate:>12.0} msgs/s   {cpu}");
    }

    if wanted("publish") {
        let received = Arc::new(Counter::default());
        link_counter(&echo, Some("bench.events"), received.clone()).await?;
        let (rate, cpu) = windowed(&server, scaled(ONE_WAY) as u64, 1, &received, |seq| {
            let caller = caller.clone();
            async move {
                caller
                    .publish("bench.events", &payload(seq))
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .await?;
        figures.publish = rate;
        println!("publish         link  {rate:>12.0} msgs/s   {cpu}");
    }

    for (slot, n) in [10usize, 100].into_iter().enumerate() {
        if !wanted(&format!("fanout_{n}")) {
            continue;
        }
        let topic = format!("bench.fanout.{n}");
        let counter = Arc::new(Counter::default());
        let mut subscribers = Vec::new();
        for i in 0..n {
            let sub = ready(options(&format!("sub-{n}-{i}")), &url).await?;
            link_counter(&sub, Some(&topic), counter.clone()).await?;
            subscribers.push(sub);
        }
        let messages = (scaled(FANOUT_DELIVERIES) / n) as u64;
        let (rate, cpu) = windowed(&server, messages, n as u64, &counter, |seq| {
            let caller = caller.clone();
            let topic = topic.clone();
            async move {
                caller
                    .publish(&topic, &payload(seq))
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .await?;
        println!("fanout_{n:<8} link  {rate:>12.0} deliveries/s   {cpu} (per delivery)");
        figures.fanout[slot] = (n, rate);
        for s in subscribers {
            let _ = s.stop_now().await;
        }
    }
    let _ = caller.stop_now().await;
    let _ = echo.stop_now().await;
    server.report_peak("link");
    Ok(figures)
}

fn report_latency(side: &str, l: &Latency) {
    println!(
        "rpc_seq         {side:<4}  mean {:>7.1}us  p50 {:>7.1}us  p99 {:>7.1}us  max {:>8.1}us  {:>9.0} calls/s",
        us(l.mean),
        us(l.p50),
        us(l.p99),
        us(l.max),
        l.per_sec
    );
}

// ---------------------------------------------------------------- raw relay

type Route = mpsc::UnboundedSender<Message>;

#[derive(Default)]
struct Routes {
    peers: HashMap<String, Route>,
    topics: HashMap<String, Vec<Route>>,
}

/// The relay: forwards every frame along the route its connection declared.
async fn raw_relay() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let port = listener.local_addr().expect("relay addr").port();
    let routes = Arc::new(RwLock::new(Routes::default()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(relay_conn(stream, routes));
        }
    });
    port
}

// The handshake callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn relay_conn(stream: TcpStream, routes: Arc<RwLock<Routes>>) {
    let _ = stream.set_nodelay(true);
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let mut route = None;
    // Registered before the handshake answer leaves: once a client's connect returns,
    // frames routed to it arrive.
    let ws = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: Response| {
        let parts: Vec<String> = req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        if let [name, mode, arg] = parts.as_slice()
            && let Ok(mut r) = routes.write()
        {
            r.peers.insert(name.clone(), tx.clone());
            if mode == "sub" {
                r.topics.entry(arg.clone()).or_default().push(tx.clone());
            }
            route = Some((mode.clone(), arg.clone()));
        }
        Ok(resp)
    })
    .await;
    let (Ok(ws), Some((mode, arg))) = (ws, route) else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    // Writer: batch what is queued, flush once per batch.
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.feed(m).await.is_err() {
                return;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        if !(msg.is_text() || msg.is_binary()) {
            continue;
        }
        let Ok(r) = routes.read() else { return };
        match mode.as_str() {
            "peer" => {
                if let Some(to) = r.peers.get(&arg) {
                    let _ = to.send(msg);
                }
            }
            "topic" => {
                if let Some(subs) = r.topics.get(&arg) {
                    for s in subs {
                        let _ = s.send(msg.clone());
                    }
                }
            }
            _ => {}
        }
    }
}

/// A raw relay client: frames out through a batching writer, frames in as a stream.
struct RawClient {
    out: mpsc::UnboundedSender<Message>,
    incoming: futures_util::stream::SplitStream<
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    >,
}

async fn raw_client(url: String) -> BenchResult<RawClient> {
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| format!("raw connect {url}: {e}"))?;
    if let tokio_tungstenite::MaybeTlsStream::Plain(s) = ws.get_ref() {
        let _ = s.set_nodelay(true);
    }
    let (mut sink, incoming) = ws.split();
    let (out, mut rx) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.feed(m).await.is_err() {
                return;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    Ok(RawClient { out, incoming })
}

/// Echo every frame back along this client's route; count what arrives.
fn raw_echo(mut c: RawClient) {
    tokio::spawn(async move {
        while let Some(Ok(m)) = c.incoming.next().await {
            if (m.is_text() || m.is_binary()) && c.out.send(m).is_err() {
                return;
            }
        }
    });
}

fn raw_count(mut c: RawClient, counter: Arc<Counter>) {
    tokio::spawn(async move {
        while let Some(Ok(m)) = c.incoming.next().await {
            if m.is_text() || m.is_binary() {
                counter.add(1);
            }
        }
    });
}

/// The raw relay's figures have the same shape as link's.
type RawFigures = LinkFigures;

/// Each figure's median over `rounds` (the first round's latency details otherwise).
fn median_figures(rounds: &[LinkFigures]) -> BenchResult<LinkFigures> {
    let first = rounds.first().ok_or("no rounds")?;
    let median = |f: &dyn Fn(&LinkFigures) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(LinkFigures {
        rpc_seq: Latency {
            p50: Duration::from_secs_f64(median(&|x| x.rpc_seq.p50.as_secs_f64())),
            ..first.rpc_seq
        },
        rpc_concurrent: median(&|x| x.rpc_concurrent),
        send: median(&|x| x.send),
        publish: median(&|x| x.publish),
        fanout: first
            .fanout
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (*n, median(&|x| x.fanout[i].1)))
            .collect(),
    })
}

async fn raw_workloads() -> BenchResult<RawFigures> {
    let server = Server::start("raw")?;
    let echo = raw_client(server.url("/echo/peer/caller")).await?;
    let mut caller = raw_client(server.url("/caller/peer/echo")).await?;
    raw_echo(echo);

    let mut round_trip = async |seq: u64| -> BenchResult<()> {
        caller.out.send(raw_frame(seq)).map_err(|e| e.to_string())?;
        loop {
            match caller.incoming.next().await {
                Some(Ok(m)) if m.is_text() => return Ok(()),
                Some(Ok(_)) => continue,
                other => return Err(format!("raw echo: {other:?}")),
            }
        }
    };
    for i in 0..scaled(RPC_WARMUP) {
        round_trip(i as u64).await?;
    }
    let mut samples = Vec::with_capacity(scaled(RPC_SEQ));
    let start = Instant::now();
    for i in 0..scaled(RPC_SEQ) {
        let t = Instant::now();
        round_trip(i as u64).await?;
        samples.push(t.elapsed());
    }
    let rpc_seq = latency(samples, start.elapsed());
    report_latency("raw", &rpc_seq);

    let mut batch = async || -> BenchResult<f64> {
        let start = Instant::now();
        for i in 0..scaled(RPC_CONCURRENT) {
            caller
                .out
                .send(raw_frame(i as u64))
                .map_err(|e| e.to_string())?;
        }
        let mut got = 0;
        while got < scaled(RPC_CONCURRENT) {
            match tokio::time::timeout(WORKLOAD_LIMIT, caller.incoming.next()).await {
                Ok(Some(Ok(m))) if m.is_text() => got += 1,
                Ok(Some(Ok(_))) => {}
                other => return Err(format!("raw concurrent: {got} replies, then {other:?}")),
            }
        }
        Ok(scaled(RPC_CONCURRENT) as f64 / start.elapsed().as_secs_f64())
    };
    // Warm-up: one unmeasured batch, as on the link side.
    batch().await?;
    let cpu = CpuMeter::start(&server);
    let rpc_concurrent = batch().await?;
    println!(
        "rpc_concurrent  raw   {rpc_concurrent:>12.0} calls/s   {}",
        cpu.per(scaled(RPC_CONCURRENT) as u64)
    );
    drop(caller);

    // One-way: a sender routed to a counting receiver.
    let one_way =
        async |path_out: &str, path_in: &str, fanout: usize| -> BenchResult<(f64, String)> {
            let counter = Arc::new(Counter::default());
            for i in 0..fanout {
                let r = raw_client(server.url(&path_in.replace("{i}", &i.to_string()))).await?;
                raw_count(r, counter.clone());
            }
            let sender = raw_client(server.url(path_out)).await?;
            // Registration happens in the relay's connection task: one frame through
            // proves every route is in place.
            let total = if fanout == 1 {
                scaled(ONE_WAY)
            } else {
                scaled(FANOUT_DELIVERIES) / fanout
            } as u64;
            let warm_deadline = Instant::now() + Duration::from_secs(10);
            sender.out.send(raw_frame(0)).map_err(|e| e.to_string())?;
            if !counter.reach(fanout as u64, warm_deadline).await {
                return Err("raw routes not ready".into());
            }
            let out = sender.out.clone();
            windowed(&server, total, fanout as u64, &counter, |seq| {
                let r = out.send(raw_frame(seq)).map_err(|e| e.to_string());
                async move { r }
            })
            .await
        };
    let (send, cpu) = one_way("/sender/peer/receiver", "/receiver/peer/none", 1).await?;
    println!("send            raw   {send:>12.0} msgs/s   {cpu}");
    let (publish, cpu) = one_way(
        "/publisher/topic/bench.events",
        "/subscriber/sub/bench.events",
        1,
    )
    .await?;
    println!("publish         raw   {publish:>12.0} msgs/s   {cpu}");
    let mut fanout = Vec::new();
    for n in [10usize, 100] {
        let (rate, cpu) = one_way(
            &format!("/fan-pub-{n}/topic/fan.{n}"),
            &format!("/fan-sub-{n}-{{i}}/sub/fan.{n}"),
            n,
        )
        .await?;
        println!("fanout_{n:<8} raw   {rate:>12.0} deliveries/s   {cpu} (per delivery)");
        fanout.push((n, rate));
    }
    server.report_peak("raw");
    Ok(RawFigures {
        rpc_seq,
        rpc_concurrent,
        send,
        publish,
        fanout,
    })
}

// ---------------------------------------------------------------- idle memory

async fn idle_bytes_per_conn() -> BenchResult<f64> {
    let server = Server::start("link")?;
    let url = server.url("");
    let monitor = ready(options("monitor"), &url).await?;
    let pending = async || -> BenchResult<f64> {
        let h: Value = monitor
            .rpc("server", "link.health", &())
            .await
            .map_err(|e| e.to_string())?;
        h["pendingSocketCount"]
            .as_f64()
            .ok_or_else(|| "no pendingSocketCount".to_owned())
    };
    // Warm the hub's allocator and tables with a first batch, then measure the rest.
    let mut conns = Vec::with_capacity(scaled(IDLE_CONNS) + 100);
    for _ in 0..100 {
        conns.push(raw_idle(&url).await?);
    }
    wait_pending(&pending, 100).await?;
    let before = server.rss_bytes()?;
    let start = Instant::now();
    let mut batch = FuturesUnordered::new();
    for _ in 0..scaled(IDLE_CONNS) {
        batch.push(raw_idle(&url));
        if batch.len() >= 256
            && let Some(c) = batch.next().await
        {
            conns.push(c?);
        }
    }
    while let Some(c) = batch.next().await {
        conns.push(c?);
    }
    wait_pending(&pending, (scaled(IDLE_CONNS) + 100) as u64).await?;
    let after = server.rss_bytes()?;
    println!(
        "idle            link  {} connections in {:.1}s: hub RSS {:.1} MiB -> {:.1} MiB",
        scaled(IDLE_CONNS),
        start.elapsed().as_secs_f64(),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    drop(conns);
    let _ = monitor.stop_now().await;
    Ok(after.saturating_sub(before) as f64 / scaled(IDLE_CONNS) as f64)
}

async fn wait_pending<F>(pending: &F, want: u64) -> BenchResult<()>
where
    F: AsyncFn() -> BenchResult<f64>,
{
    let deadline = Instant::now() + WORKLOAD_LIMIT;
    loop {
        let n = pending().await? as u64;
        if n >= want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("only {n} of {want} idle connections registered"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn raw_idle(
    url: &str,
) -> BenchResult<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>> {
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| format!("idle connect: {e}"))
}

// ---------------------------------------------------------------- report

async fn run() -> BenchResult<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("link bench: loopback, {cores} cores; hub and relay in a child process");
    println!("-- round 1 of {}: link hub", ROUNDS.load(Ordering::Relaxed));
    if ONLY.get().is_some_and(|w| w == "idle") {
        let idle = idle_bytes_per_conn().await?;
        println!("idle_bytes_per_conn {idle:.0}");
        return Ok(());
    }
    // link and the raw relay take turns, round after round, and each figure is the
    // median of its rounds: a shared machine speeds up and slows down by tens of
    // percent over seconds, and alternating keeps both sides in the same weather.
    let rounds = ROUNDS.load(Ordering::Relaxed);
    let (mut links, mut raws) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        if round > 1 {
            println!("-- round {round} of {rounds}: link hub");
        }
        links.push(link_workloads().await?);
        if ONLY.get().is_some() {
            continue;
        }
        println!("-- round {round} of {rounds}: raw relay");
        raws.push(raw_workloads().await?);
    }
    if ONLY.get().is_some() {
        return Ok(());
    }
    let (link, raw) = (median_figures(&links)?, median_figures(&raws)?);
    println!("-- idle connections");
    let idle = idle_bytes_per_conn().await?;

    let ratio = |l: f64, r: f64| l / r;
    println!("-- against the raw relay, medians of {rounds} rounds (targets on a 2-core machine)");
    let check = |name: &str, value: f64, ok: bool, target: &str| {
        println!(
            "{name:<22} {value:>6.2}x  target {target:<10} {}",
            if ok { "met" } else { "MISSED" }
        );
    };
    let seq = us(link.rpc_seq.p50) / us(raw.rpc_seq.p50);
    check("rpc_seq_p50 (latency)", seq, seq <= 1.5, "<= 1.5x");
    let c = ratio(link.rpc_concurrent, raw.rpc_concurrent);
    check("rpc_concurrent", c, c >= 0.15, ">= 0.15x");
    let s = ratio(link.send, raw.send);
    check("send", s, s >= 0.20, ">= 0.20x");
    let p = ratio(link.publish, raw.publish);
    check("publish", p, p >= 0.20, ">= 0.20x");
    let f10 = ratio(link.fanout[0].1, raw.fanout[0].1);
    check("fanout_10", f10, f10 >= 0.5, ">= 0.5x");
    let f100 = ratio(link.fanout[1].1, raw.fanout[1].1);
    println!("{:<22} {f100:>6.2}x  (no target)", "fanout_100");
    println!(
        "{:<22} {:>7.0}  target <= 16384 bytes {}",
        "idle_bytes_per_conn",
        idle,
        if idle <= 16384.0 { "met" } else { "MISSED" }
    );
    println!("-- against the Node.js reference's bench/throughput.js here (10x targets)");
    for (name, value, node) in [
        ("send", link.send, 12_000.0),
        ("publish", link.publish, 12_000.0),
        ("rpc_concurrent", link.rpc_concurrent, 7_000.0),
    ] {
        let x = value / node;
        println!(
            "{name:<22} {x:>6.1}x  target >= 10x {}",
            if x >= 10.0 { "met" } else { "MISSED" }
        );
    }
    println!(
        "result rpc_seq_p50 {:.1} {:.1} us",
        us(link.rpc_seq.p50),
        us(raw.rpc_seq.p50)
    );
    println!(
        "result rpc_concurrent {:.0} {:.0} calls/s",
        link.rpc_concurrent, raw.rpc_concurrent
    );
    println!("result send {:.0} {:.0} msgs/s", link.send, raw.send);
    println!(
        "result publish {:.0} {:.0} msgs/s",
        link.publish, raw.publish
    );
    for ((n, l), (_, r)) in link.fanout.iter().zip(&raw.fanout) {
        println!("result fanout_{n} {l:.0} {r:.0} deliveries/s");
    }
    println!("result idle_bytes_per_conn {idle:.0} - bytes");
    Ok(())
}
