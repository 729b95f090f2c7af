//! The adversarial suite's arena: a `HubServer` on 127.0.0.1:0 with small caps, two
//! legitimate `LinkClient`s (alice and bob) that must keep working, a tally of every
//! hub event, raw attacker sockets (tokio-tungstenite) that sign whatever they like,
//! and the four verdicts each attack is judged on (hub up, legit peers ok, memory
//! bounded, the right reason or code counted). Shared by `tests/attack_*.rs` and
//! `examples/attack.rs`.

#![allow(dead_code)]

pub mod attacks;

use futures_util::{SinkExt, StreamExt};
use link_tokio::core::hub::PeerTimeoutReason;
use link_tokio::core::wire::{HashAlgo, json, sign::Key};
use link_tokio::{
    ClientEvent, Event, HubEvent, HubOptions, HubServer, HubServerOptions, HubStreamEvent,
    LinkClient, LinkOptions, RpcHandlerError,
};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// Upper bound of any single wait; an attack that needs longer has failed.
pub const WAIT: Duration = Duration::from_secs(10);
/// The shared secret (shared-key arenas).
pub const SECRET: &str = "attack-suite-secret";
/// `maxPendingSockets` in the arena: small, so a flood crosses it quickly.
pub const PENDING_CAP: usize = 8;
/// `helloTimeoutMs` in the arena: short, so silent sockets are reaped within the test.
pub const HELLO_TIMEOUT: Duration = Duration::from_millis(800);
/// `maxMessageBytes` of the hub (and its WebSocket frame cap).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// `maxBufferedBytes` of the hub: backlog beyond which messages queue.
pub const MAX_BUFFERED: usize = 64 * 1024;
/// `maxOutboxBytes` of the hub: per-socket queue cap.
pub const MAX_OUTBOX: usize = 256 * 1024;
/// Process RSS may grow at most this much over one attack (the attacker sockets, the
/// hub and the clients all live in this process).
pub const RSS_BOUND: u64 = 64 * 1024 * 1024;

/// Every hub event of interest, counted by name.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// `protocol-error` reasons (`parse-error`, `bad-signature`, …).
    pub reasons: BTreeMap<&'static str, u64>,
    /// `protocol-error` reason/detail pairs (`bad-hello/invalid-kind`).
    pub details: BTreeMap<String, u64>,
    /// `peer.timeout` reasons (`hello-timeout`, `pending-cap`).
    pub timeouts: BTreeMap<&'static str, u64>,
    /// `peer.connect` per kind.
    pub connected: BTreeMap<String, u64>,
    /// `peer.disconnect` close codes per kind.
    pub disconnected: BTreeMap<String, Vec<Option<u16>>>,
    /// `peer.replaced` per kind.
    pub replaced: BTreeMap<String, u64>,
    /// `outbox-overflow` events.
    pub overflow: u64,
    /// `outbox-overflow` events by refused message type.
    pub overflow_types: BTreeMap<String, u64>,
    /// `backpressure` events.
    pub backpressure: u64,
    /// `rpc.forwarded` events per target kind.
    pub rpc_forwarded: BTreeMap<String, u64>,
    /// `direct` events (from, to).
    pub directs: Vec<(String, String)>,
    /// `topic.subscribe` events (kind, topic).
    pub subscribed: Vec<(String, String)>,
    /// `rpc.cancelled` events (canceller, target).
    pub cancelled: Vec<(String, String)>,
    /// Events the tally missed (its stream lagged): any is a test failure.
    pub lagged: u64,
}

impl Counts {
    /// Count of a protocol-error reason.
    pub fn reason(&self, r: &str) -> u64 {
        self.reasons.get(r).copied().unwrap_or(0)
    }
    /// Count of a peer.timeout reason.
    pub fn timeout(&self, r: &str) -> u64 {
        self.timeouts.get(r).copied().unwrap_or(0)
    }
    /// `peer.connect` count of a kind.
    pub fn connects(&self, kind: &str) -> u64 {
        self.connected.get(kind).copied().unwrap_or(0)
    }
}

/// A background task that drains `hub.events()` into [`Counts`] and wakes waiters.
#[derive(Clone)]
pub struct Tally {
    counts: Arc<Mutex<Counts>>,
    changed: watch::Receiver<u64>,
}

impl Tally {
    fn start(server: &HubServer) -> Tally {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let (tx, rx) = watch::channel(0u64);
        let mut events = server.hub().events();
        let c = counts.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(ev) = events.next().await {
                {
                    let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
                    match ev {
                        HubStreamEvent::Hub(ev) => record(&mut c, ev),
                        HubStreamEvent::Lagged { missed } => c.lagged += missed,
                        _ => {}
                    }
                }
                n += 1;
                let _ = tx.send(n);
            }
        });
        Tally {
            counts,
            changed: rx,
        }
    }

    /// A copy of the counts so far.
    pub fn now(&self) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wait until `pred` holds (checked after every event), at most [`WAIT`].
    pub async fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&Counts) -> bool,
    ) -> Result<Counts, String> {
        let mut rx = self.changed.clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let c = self.now();
            if pred(&c) {
                return Ok(c);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(format!("event stream ended waiting for {what}")),
                Err(_) => {
                    return Err(format!(
                        "timed out waiting for {what}; counts: {}",
                        summary(&c)
                    ));
                }
            }
        }
    }
}

fn record(c: &mut Counts, ev: HubEvent) {
    match ev {
        HubEvent::ProtocolError { reason, detail, .. } => {
            *c.reasons.entry(reason.as_str()).or_default() += 1;
            if let Some(d) = detail {
                *c.details
                    .entry(format!("{}/{d}", reason.as_str()))
                    .or_default() += 1;
            }
        }
        HubEvent::PeerTimeout { reason, .. } => {
            let r = match reason {
                PeerTimeoutReason::HelloTimeout => "hello-timeout",
                PeerTimeoutReason::PendingCap => "pending-cap",
                _ => "other",
            };
            *c.timeouts.entry(r).or_default() += 1;
        }
        HubEvent::PeerConnected { kind, .. } => *c.connected.entry(kind).or_default() += 1,
        HubEvent::PeerDisconnected { kind, code, .. } => {
            c.disconnected.entry(kind).or_default().push(code);
        }
        HubEvent::PeerReplaced { kind, .. } => *c.replaced.entry(kind).or_default() += 1,
        HubEvent::OutboxOverflow { msg_type, .. } => {
            c.overflow += 1;
            *c.overflow_types.entry(msg_type).or_default() += 1;
        }
        HubEvent::Backpressure { .. } => c.backpressure += 1,
        HubEvent::RpcForwarded { to, .. } => *c.rpc_forwarded.entry(to).or_default() += 1,
        HubEvent::Direct { from, to, .. } => c.directs.push((from, to)),
        HubEvent::TopicSubscribe { kind, topic } => c.subscribed.push((kind, topic)),
        HubEvent::RpcCancelled { from, to, .. } => c.cancelled.push((from, to)),
        _ => {}
    }
}

/// The counts in one line (for failure messages).
pub fn summary(c: &Counts) -> String {
    format!(
        "reasons {:?} details {:?} timeouts {:?} connected {:?} replaced {:?} overflow {} backpressure {} forwarded {:?} lagged {}",
        c.reasons,
        c.details,
        c.timeouts,
        c.connected,
        c.replaced,
        c.overflow,
        c.backpressure,
        c.rpc_forwarded,
        c.lagged
    )
}

/// How the hub keys its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// One secret for everyone ([`SECRET`]).
    Shared,
    /// One key per kind (`key-of-<kind>`) for the known kinds only.
    PerPeer,
}

/// Kinds that have a key in a per-peer arena.
pub const KNOWN_KINDS: &[&str] = &["alice", "bob", "probe", "mallory", "sloth", "flaky"];

impl KeyMode {
    /// The secret `kind` holds.
    pub fn secret(self, kind: &str) -> String {
        match self {
            KeyMode::Shared => SECRET.to_owned(),
            KeyMode::PerPeer => format!("key-of-{kind}"),
        }
    }

    /// `kind`'s signing key.
    pub fn key(self, kind: &str) -> Key {
        Key::new(&self.secret(kind), HashAlgo::default())
    }
}

/// Hub options of the arena: small caps, a large event buffer (the tally must see
/// every event of a flood), default keepalive (longer than any attack).
pub fn hub_options(keys: KeyMode) -> HubOptions {
    let base = match keys {
        KeyMode::Shared => HubOptions::new(SECRET),
        KeyMode::PerPeer => {
            HubOptions::per_peer_keys(KNOWN_KINDS.iter().map(|k| (*k, keys.secret(k))))
        }
    };
    with_caps(base)
}

/// The arena's caps on any hub options.
pub fn with_caps(base: HubOptions) -> HubOptions {
    base.max_pending_sockets(PENDING_CAP)
        .hello_timeout(HELLO_TIMEOUT)
        .max_message_bytes(MAX_MESSAGE)
        .max_buffered_bytes(MAX_BUFFERED)
        .max_outbox_bytes(MAX_OUTBOX)
        .event_capacity(1 << 16)
}

/// Client options for a legitimate peer of `kind`: echoes `echo` requests and reports
/// the caller it saw under `whoami`.
pub fn legit_options(keys: KeyMode, kind: &str) -> LinkOptions {
    LinkOptions::new()
        .kind(kind)
        .secret(keys.secret(kind))
        .reconnect_initial(Duration::from_millis(50))
        .reconnect_max(Duration::from_millis(200))
        .reconnect_jitter(0.0)
        .handle("echo", |_ctx, v: Json| async move {
            Ok::<_, RpcHandlerError>(v)
        })
        .handle("whoami", |ctx, _v: Json| async move {
            Ok::<_, RpcHandlerError>(json!({ "caller": ctx.from() }))
        })
}

/// Await `fut` for at most [`WAIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(WAIT, fut)
        .await
        .map_err(|_| format!("timed out waiting for {what}"))
}

/// Resident set size of this process, from /proc/self/status (0 where unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Attacks run one at a time per process: RSS is per process, and the 2-core machine
/// should not carry two floods at once.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running hub with two legitimate peers, alice and bob.
pub struct Arena {
    /// The server under attack.
    pub server: HubServer,
    /// Its events, counted.
    pub tally: Tally,
    /// Legitimate peer (also the usual victim of forged messages).
    pub alice: LinkClient,
    /// Legitimate peer.
    pub bob: LinkClient,
    /// How peers are keyed.
    pub keys: KeyMode,
    rss_before: u64,
    started: Instant,
    nonce: AtomicU64,
    heartbeat: Heartbeat,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Arena {
    /// Start a hub with `hub` options and connect alice and bob.
    pub async fn start(keys: KeyMode, hub: HubOptions) -> Result<Arena, String> {
        Self::start_with(keys, HubServerOptions::new(hub)).await
    }

    /// Like [`Arena::start`] with full server options.
    pub async fn start_with(keys: KeyMode, opts: HubServerOptions) -> Result<Arena, String> {
        let serial = SERIAL.lock().await;
        let rss_before = rss_bytes();
        let server = opts
            .host("127.0.0.1")
            .port(0)
            .handle_signals(false)
            .start()
            .await
            .map_err(|e| format!("hub server start: {e}"))?;
        let tally = Tally::start(&server);
        let alice = legit_options(keys, "alice")
            .connect(server.url())
            .map_err(|e| format!("alice: {e}"))?;
        let bob = legit_options(keys, "bob")
            .connect(server.url())
            .map_err(|e| format!("bob: {e}"))?;
        within("alice ready", alice.ready())
            .await?
            .map_err(|e| format!("alice ready: {e}"))?;
        within("bob ready", bob.ready())
            .await?
            .map_err(|e| format!("bob ready: {e}"))?;
        wait_for_peer(&alice, "bob").await?;
        wait_for_peer(&bob, "alice").await?;
        let heartbeat = Heartbeat::start(alice.clone());
        Ok(Arena {
            server,
            tally,
            alice,
            bob,
            keys,
            rss_before,
            started: Instant::now(),
            nonce: AtomicU64::new(1),
            heartbeat,
            _serial: serial,
        })
    }

    /// The hub's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A raw attacker socket to the hub.
    pub async fn attacker(&self) -> Result<Attacker, String> {
        Attacker::connect(self.addr(), "/", None).await
    }

    /// Alice and bob still call each other, and a fresh client can connect and call
    /// the hub.
    pub async fn legit_ok(&self) -> Result<(), String> {
        let n = self.nonce.fetch_add(1, Ordering::Relaxed);
        for (caller, target) in [(&self.alice, "bob"), (&self.bob, "alice")] {
            let want = json!({ "nonce": n, "from": caller.kind() });
            let got: Json = within("legit rpc", caller.rpc(target, "echo", &want).into_future())
                .await?
                .map_err(|e| {
                    format!(
                        "{} → {target} echo failed: {} ({e})",
                        caller.kind(),
                        e.code()
                    )
                })?;
            if got != want {
                return Err(format!("{} → {target} echo returned {got}", caller.kind()));
            }
        }
        let probe = legit_options(self.keys, "probe")
            .connect(self.server.url())
            .map_err(|e| format!("probe: {e}"))?;
        let result = async {
            within("probe ready", probe.ready())
                .await?
                .map_err(|e| format!("probe ready: {e}"))?;
            let h: Json = within(
                "probe link.health",
                probe.rpc("server", "link.health", &()).into_future(),
            )
            .await?
            .map_err(|e| format!("probe link.health: {} ({e})", e.code()))?;
            if h.get("peerCount").and_then(Json::as_u64).unwrap_or(0) < 3 {
                return Err(format!("probe link.health: {h}"));
            }
            Ok(())
        }
        .await;
        let _ = within("probe stop", probe.stop()).await;
        result
    }

    /// `/health` answers 200 with `ok: true`.
    pub async fn hub_up(&self) -> Result<(), String> {
        let (status, body) = http_get(self.addr(), "/health").await?;
        let v: Json =
            serde_json::from_str(&body).map_err(|e| format!("/health body {body:?}: {e}"))?;
        if status != 200 || v["ok"] != json!(true) {
            return Err(format!("/health: {status} {body}"));
        }
        Ok(())
    }

    /// The hub's own accounting within its caps, no socket left behind by the attack
    /// (only alice and bob remain), and process RSS within [`RSS_BOUND`].
    pub async fn memory_bounded(&self) -> Result<String, String> {
        let hub = self.server.hub();
        // Attacker sockets were dropped by the attack; wait for the hub to see them go.
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut conns;
        loop {
            conns = hub
                .connection_count()
                .await
                .map_err(|e| format!("connection_count: {e}"))?;
            if conns <= 2 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let h = hub.health().await.map_err(|e| format!("health: {e}"))?;
        let rss = rss_bytes();
        let grew = rss.saturating_sub(self.rss_before);
        let line = format!(
            "conns {conns}, pending {}, outbox {} B, ids {}, rss +{} KiB",
            h.pending_socket_count,
            h.outbox_bytes,
            h.recent_ids_size,
            grew / 1024
        );
        let mut bad = Vec::new();
        if conns > 2 {
            bad.push(format!(
                "{conns} sockets still attached (want alice and bob only)"
            ));
        }
        if h.pending_socket_count > PENDING_CAP {
            bad.push("pending over cap".to_owned());
        }
        if h.outbox_bytes > MAX_OUTBOX * h.peer_count.max(1) {
            bad.push("outbox over cap".to_owned());
        }
        if h.recent_ids_size > 10_000 * h.peer_count.max(1) {
            bad.push("replay cache over cap".to_owned());
        }
        if grew > RSS_BOUND {
            bad.push(format!("rss grew by {} MiB", grew >> 20));
        }
        if bad.is_empty() {
            Ok(line)
        } else {
            Err(format!("{}: {line}", bad.join(", ")))
        }
    }

    /// Judge the attack and stop everything.
    pub async fn finish(mut self, attack: &'static str, counted: Result<String, String>) -> Report {
        let lagged = self.tally.now().lagged;
        let counted = match counted {
            Ok(_) if lagged > 0 => Err(format!("the tally lagged by {lagged} events")),
            c => c,
        };
        let hub_up = self.hub_up().await;
        let beat = self.heartbeat.stop().await;
        let legit = match (beat, self.legit_ok().await) {
            (Ok(_), Ok(())) => Ok(()),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let memory = self.memory_bounded().await;
        self.wind_up(attack, hub_up, legit, memory, counted).await
    }

    /// Judge an attack that ends with the server stopped: the stop itself is the
    /// "hub up" verdict (it must succeed), alice and bob must see the hub go with
    /// 1001 and expect to reconnect, and the hub must hold no socket afterwards.
    pub async fn finish_stopped(
        mut self,
        attack: &'static str,
        stopped: Result<(), String>,
        mut alice_events: link_tokio::EventStream,
        counted: Result<String, String>,
    ) -> Report {
        let beat = self.heartbeat.stop().await;
        let seen = within("alice sees the hub go", async {
            while let Some(ev) = alice_events.next().await {
                if let Event::Link(ClientEvent::Disconnected(d)) = ev {
                    return Ok(d);
                }
            }
            Err("alice's event stream ended".to_owned())
        })
        .await
        .and_then(|r| r);
        let legit = match seen {
            Ok(d) if d.will_reconnect && d.code == Some(1001) => Ok(()),
            Ok(d) => Err(format!("alice saw {d:?}")),
            Err(e) => Err(e),
        };
        // The heartbeat may have been cut by the stop itself; only earlier failures count.
        let legit = match (legit, beat) {
            (Ok(()), Err(e)) if !e.contains("RPC_DISCONNECT") && !e.contains("LINK_NOT_READY") => {
                Err(e)
            }
            (l, _) => l,
        };
        let conns = self
            .server
            .hub()
            .connection_count()
            .await
            .unwrap_or(usize::MAX);
        let grew = rss_bytes().saturating_sub(self.rss_before);
        let memory = if conns == 0 && grew <= RSS_BOUND {
            Ok(format!("conns 0 after stop, rss +{} KiB", grew / 1024))
        } else {
            Err(format!(
                "conns {conns} after stop, rss +{} KiB",
                grew / 1024
            ))
        };
        self.wind_up(attack, stopped, legit, memory, counted).await
    }

    async fn wind_up(
        self,
        attack: &'static str,
        hub_up: Result<(), String>,
        legit: Result<(), String>,
        memory: Result<String, String>,
        counted: Result<String, String>,
    ) -> Report {
        let secs = self.started.elapsed().as_secs_f64();
        let _ = within("alice stop", self.alice.stop()).await;
        let _ = within("bob stop", self.bob.stop()).await;
        let _ = within("server stop", self.server.stop()).await;
        Report {
            attack,
            hub_up,
            legit,
            memory,
            counted,
            secs,
        }
    }
}

/// alice calls bob in a loop for the whole attack: legitimate traffic must keep
/// flowing *throughout*, not only once the attack is over.
struct Heartbeat {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<u64, String>>>,
}

impl Heartbeat {
    fn start(alice: LinkClient) -> Heartbeat {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut beats = 0u64;
            loop {
                let want = json!({ "beat": beats });
                let call = alice
                    .rpc::<_, Json>("bob", "echo", &want)
                    .timeout(WAIT)
                    .into_future();
                match call.await {
                    Ok(v) if v == want => beats += 1,
                    Ok(v) => return Err(format!("heartbeat {beats}: echo returned {v}")),
                    Err(e) => return Err(format!("heartbeat {beats}: {} ({e})", e.code())),
                }
                // Pacing, so the heartbeat is a trickle and not a load of its own.
                tokio::select! {
                    _ = stopped.changed() => return Ok(beats),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        });
        Heartbeat {
            stop,
            task: Some(task),
        }
    }

    async fn stop(&mut self) -> Result<u64, String> {
        let _ = self.stop.send(true);
        let Some(task) = self.task.take() else {
            return Err("heartbeat already stopped".to_owned());
        };
        match within("heartbeat", task).await? {
            Ok(Ok(0)) => Err("no heartbeat completed during the attack".to_owned()),
            Ok(r) => r,
            Err(e) => Err(format!("heartbeat task: {e}")),
        }
    }
}

/// Wait until `client` lists `kind` among its peers.
pub async fn wait_for_peer(client: &LinkClient, kind: &str) -> Result<(), String> {
    let mut events = client.events();
    let present = |peers: Vec<link_tokio::PeerEntry>| peers.iter().any(|p| p.kind == kind);
    if present(client.peers().await.map_err(|e| e.to_string())?) {
        return Ok(());
    }
    within("peer", async {
        while let Some(ev) = events.next().await {
            match ev {
                Event::Link(ClientEvent::PeerConnected(p)) if p.kind == kind => return,
                Event::Lagged { .. } if client.peers().await.map(present).unwrap_or(false) => {
                    return;
                }
                _ => {}
            }
        }
    })
    .await
}

/// A plain HTTP/1.1 GET over a fresh connection: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within("http", async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status line in {text:?}"))?;
        let body = text
            .find("\r\n\r\n")
            .map(|i| text[i + 4..].to_owned())
            .unwrap_or_default();
        Ok((status, body))
    })
    .await?
}

/// One attack's verdicts.
#[derive(Debug)]
pub struct Report {
    /// The attack's name.
    pub attack: &'static str,
    /// `/health` answered after the attack.
    pub hub_up: Result<(), String>,
    /// Alice and bob kept working and a fresh client could connect and call.
    pub legit: Result<(), String>,
    /// Hub accounting within caps, sockets released, RSS bounded.
    pub memory: Result<String, String>,
    /// The right protocol-error reasons / close codes / error codes were counted.
    pub counted: Result<String, String>,
    /// Wall time of the attack.
    pub secs: f64,
}

impl Report {
    /// Whether every verdict holds.
    pub fn ok(&self) -> bool {
        self.hub_up.is_ok() && self.legit.is_ok() && self.memory.is_ok() && self.counted.is_ok()
    }

    /// Panic with every failed verdict.
    pub fn assert_ok(&self) {
        assert!(self.ok(), "attack {} failed:\n{self:#?}", self.attack);
    }
}

fn mark<T>(r: &Result<T, String>) -> &'static str {
    if r.is_ok() { "yes" } else { "NO" }
}

/// The table the example prints: attack | hub up | legit peers ok | memory bounded |
/// reason/code counted.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    let w = reports
        .iter()
        .map(|r| r.attack.len())
        .max()
        .unwrap_or(6)
        .max(6);
    out.push_str(&format!(
        "| {:w$} | hub up | legit peers ok | memory bounded | reason/code counted\n",
        "attack"
    ));
    out.push_str(&format!(
        "|{}|--------|----------------|----------------|--------------------\n",
        "-".repeat(w + 2)
    ));
    for r in reports {
        let counted = match &r.counted {
            Ok(s) => s.clone(),
            Err(e) => format!("NO: {e}"),
        };
        out.push_str(&format!(
            "| {:w$} | {:6} | {:14} | {:14} | {counted}\n",
            r.attack,
            mark(&r.hub_up),
            mark(&r.legit),
            mark(&r.memory)
        ));
    }
    for r in reports {
        for (what, e) in [
            ("hub up", r.hub_up.as_ref().err()),
            ("legit", r.legit.as_ref().err()),
            ("memory", r.memory.as_ref().err()),
        ] {
            if let Some(e) = e {
                out.push_str(&format!("  {}: {what}: {e}\n", r.attack));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// The attacker's tools: raw sockets and hand-made envelopes.

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh envelope id.
pub fn fresh_id() -> String {
    format!(
        "atk-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    )
}

/// Wall clock in ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sign a hand-written envelope text (a JSON object without `sig`, written any way
/// the attacker likes: duplicate keys, odd numbers, extra fields): the signature
/// covers the canonical form of what `JSON.parse` makes of it, as a real peer's would.
/// Texts the parser refuses get a dummy signature.
pub fn sign_text(key: &Key, unsigned: &str) -> String {
    let sig = match json::parse(unsigned.as_bytes()) {
        Ok(mut v) => {
            // Only the top-level `sig` is outside the MAC, whatever its value.
            if let json::Value::Object(o) = &mut v {
                o.remove("sig");
            }
            let mut canon = Vec::new();
            json::write_canonical(&v, &mut canon);
            key.sign_hex(&canon)
        }
        Err(_) => "00".repeat(32),
    };
    let body = unsigned.trim_end();
    let body = body.strip_suffix('}').unwrap_or(body);
    format!("{body},\"sig\":\"{sig}\"}}")
}

/// A well-formed signed envelope with a fresh id and the current time.
pub fn envelope(
    key: &Key,
    msg_type: &str,
    from: Option<&str>,
    to: Option<&str>,
    data: Option<Json>,
) -> String {
    envelope_at(key, &fresh_id(), now_ms() as f64, msg_type, from, to, data)
}

/// A signed envelope with a chosen id and timestamp.
pub fn envelope_at(
    key: &Key,
    id: &str,
    ts: f64,
    msg_type: &str,
    from: Option<&str>,
    to: Option<&str>,
    data: Option<Json>,
) -> String {
    let mut env = json!({ "v": 1, "id": id, "ts": ts, "type": msg_type, "from": from, "to": to });
    if let Some(d) = data {
        env["data"] = d;
    }
    sign_text(key, &env.to_string())
}

/// A hello for `kind`.
pub fn hello(key: &Key, kind: &str) -> String {
    envelope(
        key,
        "hello",
        Some(kind),
        None,
        Some(json!({ "kind": kind, "name": kind, "pid": 1, "startedAt": now_ms() })),
    )
}

/// How a raw socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The close frame's code, if the hub sent one.
    pub code: Option<u16>,
    /// Its reason.
    pub reason: String,
}

/// A raw WebSocket to the hub, under the attacker's full control.
pub struct Attacker {
    ws: WebSocketStream<TcpStream>,
}

impl Attacker {
    /// Connect to `addr` at `path`; `rcvbuf` shrinks the socket's receive buffer (a
    /// peer that never reads then stalls the hub's writes quickly).
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        rcvbuf: Option<u32>,
    ) -> Result<Attacker, String> {
        within("attacker connect", async {
            let sock = TcpSocket::new_v4().map_err(|e| e.to_string())?;
            if let Some(n) = rcvbuf {
                sock.set_recv_buffer_size(n).map_err(|e| e.to_string())?;
            }
            let tcp = sock
                .connect(addr)
                .await
                .map_err(|e| format!("tcp connect: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let config = WebSocketConfig::default()
                .max_message_size(Some(64 << 20))
                .max_frame_size(Some(64 << 20))
                .read_buffer_size(if rcvbuf.is_some() { 4096 } else { 128 * 1024 });
            let (ws, _) = tokio_tungstenite::client_async_with_config(
                format!("ws://{addr}{path}"),
                tcp,
                Some(config),
            )
            .await
            .map_err(|e| format!("ws handshake: {e}"))?;
            Ok(Attacker { ws })
        })
        .await?
    }

    /// Send one text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), String> {
        let text: String = text.into();
        within("send", self.ws.send(Message::text(text)))
            .await?
            .map_err(|e| format!("send: {e}"))
    }

    /// Send one binary frame.
    pub async fn send_binary(&mut self, bytes: impl Into<Bytes>) -> Result<(), String> {
        within("send", self.ws.send(Message::binary(bytes)))
            .await?
            .map_err(|e| format!("send: {e}"))
    }

    /// Send a text frame whose payload is arbitrary bytes (invalid UTF-8 included).
    pub async fn send_raw_text(&mut self, bytes: impl Into<Bytes>) -> Result<(), String> {
        let frame = Frame::message(bytes.into(), OpCode::Data(Data::Text), true);
        within("send", self.ws.send(Message::Frame(frame)))
            .await?
            .map_err(|e| format!("send: {e}"))
    }

    /// Send any frame, however malformed.
    pub async fn send_raw_frame(&mut self, frame: Frame) -> Result<(), String> {
        within("send", self.ws.send(Message::Frame(frame)))
            .await?
            .map_err(|e| format!("send: {e}"))
    }

    /// Send `hello` and wait for `hello.ack`.
    pub async fn authenticate(&mut self, key: &Key, kind: &str) -> Result<(), String> {
        self.send_text(hello(key, kind)).await?;
        self.until_type("hello.ack").await.map(|_| ())
    }

    /// The next text frame as JSON (skipping control frames), `None` when closed.
    pub async fn next_json(&mut self) -> Result<Option<Json>, String> {
        loop {
            match within("frame", self.ws.next()).await? {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str())
                        .map(Some)
                        .map_err(|e| e.to_string());
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Frames until one of `msg_type` arrives.
    pub async fn until_type(&mut self, msg_type: &str) -> Result<Json, String> {
        loop {
            match self.next_json().await? {
                Some(v) if v["type"] == msg_type => return Ok(v),
                Some(_) => {}
                None => return Err(format!("closed before {msg_type}")),
            }
        }
    }

    /// Read until the hub closes the socket; report its close frame (ignores data).
    pub async fn ended(&mut self) -> Result<Ended, String> {
        within("close", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(f))) => {
                        return Ended {
                            code: f.as_ref().map(|f| u16::from(f.code)),
                            reason: f.map(|f| f.reason.to_string()).unwrap_or_default(),
                        };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        return Ended {
                            code: None,
                            reason: String::new(),
                        };
                    }
                }
            }
        })
        .await
    }

    /// `None` while the socket is open (a ping is answered by a pong), else how it
    /// ended.
    pub async fn state(&mut self) -> Result<Option<Ended>, String> {
        // A failed send means the hub has gone; its close frame may still be buffered.
        let _ = self.ws.send(Message::Ping(Bytes::new())).await;
        within("pong or close", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Pong(_))) => return None,
                    Some(Ok(Message::Close(f))) => {
                        return Some(Ended {
                            code: f.as_ref().map(|f| u16::from(f.code)),
                            reason: f.map(|f| f.reason.to_string()).unwrap_or_default(),
                        });
                    }
                    Some(Err(_)) | None => {
                        return Some(Ended {
                            code: None,
                            reason: String::new(),
                        });
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
    }

    /// Drop the TCP connection without a close frame.
    pub fn drop_abruptly(self) {
        drop(self.ws);
    }
}

/// A man in the middle between one legitimate client and the hub: relays WebSocket
/// messages both ways, records the client's frames (what an eavesdropper captures)
/// and can inject frames into the client's stream towards the hub.
pub struct Tap {
    /// Where the client connects instead of the hub.
    pub addr: SocketAddr,
    captured: Arc<Mutex<Vec<String>>>,
    new_frame: Arc<tokio::sync::Notify>,
    inject: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Tap {
    /// Start relaying to the hub at `hub`.
    pub async fn start(hub: SocketAddr) -> Result<Tap, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let captured = Arc::new(Mutex::new(Vec::new()));
        let (inject, injected) = tokio::sync::mpsc::unbounded_channel::<String>();
        let cap = captured.clone();
        let new_frame = Arc::new(tokio::sync::Notify::new());
        let notify = new_frame.clone();
        tokio::spawn(async move {
            let mut injected = Some(injected);
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                    continue;
                };
                let Ok((upstream, _)) =
                    tokio_tungstenite::connect_async(format!("ws://{hub}/")).await
                else {
                    continue;
                };
                let cap = cap.clone();
                let notify = notify.clone();
                // Injection goes into the first relayed connection only.
                let mut inj = injected.take();
                tokio::spawn(async move {
                    let (mut c_tx, mut c_rx) = client.split();
                    let (mut h_tx, mut h_rx) = upstream.split();
                    loop {
                        tokio::select! {
                            m = c_rx.next() => match m {
                                Some(Ok(m)) => {
                                    if let Message::Text(t) = &m {
                                        cap.lock().unwrap_or_else(|p| p.into_inner()).push(t.as_str().to_owned());
                                        notify.notify_waiters();
                                    }
                                    if h_tx.send(m).await.is_err() { break; }
                                }
                                _ => break,
                            },
                            m = h_rx.next() => match m {
                                Some(Ok(m)) => if c_tx.send(m).await.is_err() { break; },
                                _ => break,
                            },
                            Some(t) = async { match inj.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => {
                                if h_tx.send(Message::text(t)).await.is_err() { break; }
                            }
                        }
                    }
                    let _ = h_tx.close().await;
                    let _ = c_tx.close().await;
                });
            }
        });
        Ok(Tap {
            addr,
            captured,
            new_frame,
            inject,
        })
    }

    /// The client's frames so far.
    pub fn captured(&self) -> Vec<String> {
        self.captured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The first captured frame of `msg_type`.
    pub fn first(&self, msg_type: &str) -> Option<String> {
        self.captured()
            .into_iter()
            .find(|t| serde_json::from_str::<Json>(t).is_ok_and(|v| v["type"] == msg_type))
    }

    /// Wait (at most [`WAIT`]) for the first captured frame of `msg_type`.
    pub async fn wait_first(&self, msg_type: &str) -> Result<String, String> {
        within(msg_type, async {
            loop {
                let next = self.new_frame.notified();
                if let Some(f) = self.first(msg_type) {
                    return f;
                }
                next.await;
            }
        })
        .await
    }

    /// Send `text` to the hub on the client's connection.
    pub fn inject(&self, text: String) {
        let _ = self.inject.send(text);
    }
}
