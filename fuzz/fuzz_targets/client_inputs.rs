//! An arbitrary sequence of client inputs and application commands: transports
//! opening and failing, frames from the hub (most of them well signed and shaped like
//! real hub traffic, answering the very requests the client sent; some mangled),
//! pongs, flush reports, time steps, and every command (rpc, cancel, respond,
//! subscribe, publish, send, status, stop, start), under a configuration drawn from the
//! input. The connection must never panic, never transmit without an open transport,
//! settle every RPC at most once, and keep its outbox within its cap.
#![no_main]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Envelope, mangle, maybe, name, object, signed, value};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use link_sansio::client::{
    ClientConfig, ClientEvent, Connection, HandlerError, InboundRpcId, Input, Output, RpcId,
};
use link_sansio::time::Now;
use link_sansio::wire::{Frame, HashAlgo, Key, Limits, Value};

const WALL0: u64 = 1_750_000_000_000;
const MAX_OPS: usize = 256;
const SECRET: &str = "fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    None,
    Connecting,
    Open,
}

struct Fuzz {
    conn: Connection,
    key: Key,
    base: Instant,
    ms: u64,
    transport: Transport,
    unflushed: usize,
    max_outbox: usize,
    /// Calls `rpc()` accepted and not yet settled.
    pending: BTreeSet<u64>,
    settled: BTreeSet<u64>,
    /// Envelope ids and targets of requests the client sent (to answer or cancel).
    request_ids: Vec<(String, String)>,
    /// Inbound requests handed to the application.
    inbound: Vec<u64>,
    /// Topics the application subscribed to or unsubscribed from: the client queues
    /// one pending change per topic even beyond the outbox cap (it never refuses one).
    topics_touched: BTreeSet<String>,
    ids: u64,
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let mut cfg = ClientConfig::new("ws://hub/", "a", SECRET);
    cfg.limits = Limits {
        max_message_bytes: u.int_in_range(64..=8192)?,
        replay_window_ms: if u.arbitrary()? { 300_000 } else { 0 },
        max_recent_ids: u.int_in_range(1..=16)?,
    };
    cfg.max_buffered_bytes = u.int_in_range(0..=4096)?;
    cfg.max_outbox_bytes = u.int_in_range(0..=8192)?;
    cfg.default_rpc_timeout = Duration::from_millis(u.int_in_range(0..=5_000)?);
    cfg.max_concurrent_rpc = u.int_in_range(0..=3)?;
    cfg.make_status = u.arbitrary()?;
    cfg.status_interval = Duration::from_millis(u.int_in_range(1..=10_000)?);
    cfg.keepalive_interval = Duration::from_millis(u.int_in_range(0..=30_000)?);
    cfg.hello_ack_diagnostic = Duration::from_millis(u.int_in_range(0..=5_000)?);
    cfg.reconnect_initial = Duration::from_millis(u.int_in_range(0..=2_000)?);
    cfg.reconnect_max = Duration::from_millis(u.int_in_range(0..=10_000)?);
    cfg.max_reconnect_attempts = if u.arbitrary()? {
        Some(u.int_in_range(0..=5)?)
    } else {
        None
    };
    cfg.stop_drain = Duration::from_millis(u.int_in_range(0..=5_000)?);
    cfg.reconnect_on_rejection = u.arbitrary()?;
    cfg.expose_rpc_errors = u.arbitrary()?;
    cfg.rpc_handlers = ["echo".to_owned()].into_iter().collect();
    let max_outbox = cfg.max_outbox_bytes;
    let seed = u.arbitrary()?;
    // A configuration the constructor refuses is a fine outcome, not a crash.
    let Ok(conn) = Connection::new(cfg, seed) else {
        return Ok(());
    };
    let mut f = Fuzz {
        conn,
        key: Key::new(SECRET, HashAlgo::Sha256),
        base: Instant::now(),
        ms: 0,
        transport: Transport::None,
        unflushed: 0,
        max_outbox,
        pending: BTreeSet::new(),
        settled: BTreeSet::new(),
        request_ids: Vec::new(),
        inbound: Vec::new(),
        topics_touched: BTreeSet::new(),
        ids: 0,
    };
    if u.arbitrary()? {
        f.conn.set_rpc_catch_all(true);
    }
    let now = f.now();
    f.conn.start(now);
    f.drain();
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        f.op(u)?;
        f.drain();
    }
    Ok(())
}

impl Fuzz {
    fn now(&self) -> Now {
        Now::new(self.base + Duration::from_millis(self.ms), WALL0 + self.ms)
    }

    fn input(&mut self, input: Input<'_>) {
        let now = self.now();
        self.conn.handle_input(now, input);
    }

    fn op(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let now = self.now();
        match u.int_in_range(0..=16)? {
            0 => {
                if self.transport == Transport::Connecting {
                    self.transport = Transport::Open;
                    self.unflushed = 0;
                    self.input(Input::TransportUp);
                }
            }
            1..=5 => {
                if self.transport == Transport::Open {
                    let bytes = self.frame(u)?;
                    self.input(Input::Frame(&bytes));
                }
            }
            6 => {
                if self.transport != Transport::None {
                    self.transport = Transport::None;
                    let code = if u.arbitrary()? {
                        Some(u.arbitrary()?)
                    } else {
                        None
                    };
                    let reason = name(u)?;
                    self.input(Input::TransportDown {
                        code,
                        reason: &reason,
                    });
                }
            }
            7 => {
                if self.transport == Transport::Open {
                    self.input(Input::Pong);
                }
            }
            8 => {
                if self.transport == Transport::Open {
                    let n = u.int_in_range(0..=self.unflushed)?;
                    self.unflushed -= n;
                    self.input(Input::Flushed(n));
                }
            }
            9 => {
                self.ms += match u.int_in_range(0..=3)? {
                    0 => u.int_in_range(0..=30)?,
                    1 => u.int_in_range(0..=1_000)?,
                    2 => u.int_in_range(0..=20_000)?,
                    _ => u.int_in_range(0..=400_000)?,
                };
                self.input(Input::Timeout);
            }
            10 => {
                let to = name(u)?;
                let rpc_type = name(u)?;
                let data = if u.arbitrary()? {
                    Some(value(u, 2)?)
                } else {
                    None
                };
                let timeout = match u.int_in_range(0..=2)? {
                    0 => None,
                    1 => Some(Duration::ZERO),
                    _ => Some(Duration::from_millis(u.int_in_range(0..=10_000)?)),
                };
                if let Ok(id) = self.conn.rpc(now, &to, &rpc_type, data, timeout) {
                    assert!(self.pending.insert(id.0), "rpc id {id} handed out twice");
                }
            }
            11 => {
                let id = if !self.pending.is_empty() && u.ratio(3, 4)? {
                    let ids: Vec<u64> = self.pending.iter().copied().collect();
                    *u.choose(&ids)?
                } else {
                    u.int_in_range(0..=64)?
                };
                self.conn.cancel_rpc(now, RpcId(id));
            }
            12 => {
                let request = if !self.inbound.is_empty() && u.ratio(3, 4)? {
                    let i = u.choose_index(self.inbound.len())?;
                    self.inbound.swap_remove(i)
                } else {
                    u.int_in_range(0..=64)?
                };
                let reply = match u.int_in_range(0..=4)? {
                    0 | 1 => Ok(if u.arbitrary()? {
                        Some(value(u, 2)?)
                    } else {
                        None
                    }),
                    2 => Err(HandlerError::exposed(name(u)?, name(u)?)),
                    3 => Err(HandlerError::internal(name(u)?)),
                    _ => Err(HandlerError::NotSerializable),
                };
                self.conn.respond(now, InboundRpcId(request), reply);
            }
            13 => {
                let topic = name(u)?;
                let _ = match u.int_in_range(0..=2)? {
                    0 => {
                        self.topics_touched.insert(topic.clone());
                        self.conn.subscribe(now, &topic)
                    }
                    1 => {
                        self.topics_touched.insert(topic.clone());
                        self.conn.unsubscribe(now, &topic).map(|_| ())
                    }
                    _ => {
                        let payload = if u.arbitrary()? {
                            Some(value(u, 2)?)
                        } else {
                            None
                        };
                        self.conn.publish(now, &topic, payload)
                    }
                };
            }
            14 => {
                let to = name(u)?;
                let t = name(u)?;
                let data = if u.arbitrary()? {
                    Some(value(u, 2)?)
                } else {
                    None
                };
                let _ = if u.arbitrary()? {
                    self.conn.send(now, &to, &t, data)
                } else {
                    self.conn.push_status(now, data)
                };
            }
            15 => {
                let graceful = u.arbitrary()?;
                self.conn.stop(now, graceful);
            }
            _ => self.conn.start(now),
        }
        Ok(())
    }

    /// A frame from the hub: usually well signed and shaped like real hub traffic.
    fn frame(&mut self, u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
        let wall = (WALL0 + self.ms) as f64;
        let peer = || -> Value {
            object(vec![
                ("kind", Some(Value::from("b"))),
                (
                    "hello",
                    Some(object(vec![("kind", Some(Value::from("b")))])),
                ),
                ("connectedAt", Some(Value::Number(1.0))),
                ("connected", Some(Value::Bool(true))),
            ])
        };
        // Until the link is ready, the hub's next frame is usually its ack.
        let pick = if !self.conn.is_ready() && u.ratio(1, 2)? {
            0
        } else {
            u.int_in_range(0..=11)?
        };
        let (msg_type, from, data) = match pick {
            0 => (
                "hello.ack",
                "server".to_owned(),
                Some(object(vec![
                    ("ok", maybe(u, |u| Ok(Value::Bool(u.ratio(7, 8)?)))?),
                    ("kind", Some(Value::from("a"))),
                    ("serverTime", Some(Value::Number(wall))),
                    (
                        "features",
                        maybe(u, |_| {
                            Ok(Value::Array(vec![
                                Value::from("topics"),
                                Value::from("direct"),
                            ]))
                        })?,
                    ),
                ])),
            ),
            1 => {
                let n = u.int_in_range(0..=3)?;
                let mut peers = Vec::new();
                for _ in 0..n {
                    peers.push(if u.arbitrary()? { peer() } else { value(u, 2)? });
                }
                (
                    "peers.update",
                    "server".to_owned(),
                    Some(object(vec![("peers", Some(Value::Array(peers)))])),
                )
            }
            2 => ("status.snapshot", "server".to_owned(), Some(value(u, 3)?)),
            3 => (
                "status.update",
                "server".to_owned(),
                Some(object(vec![
                    ("from", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                    ("status", maybe(u, |u| Ok(value(u, 2)?))?),
                    ("at", maybe(u, |_| Ok(Value::Number(wall)))?),
                ])),
            ),
            4 => (
                "rpc.request",
                name(u)?,
                Some(object(vec![
                    ("rpcType", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                    ("rpcData", maybe(u, |u| Ok(value(u, 2)?))?),
                ])),
            ),
            5 | 6 => {
                let data = if u.arbitrary()? {
                    object(vec![
                        ("ok", Some(Value::Bool(true))),
                        ("result", maybe(u, |u| Ok(value(u, 2)?))?),
                    ])
                } else {
                    object(vec![
                        ("ok", maybe(u, |_| Ok(Value::Bool(false)))?),
                        ("error", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                        ("code", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                        ("data", maybe(u, |u| Ok(value(u, 1)?))?),
                    ])
                };
                ("rpc.response", String::new(), Some(data))
            }
            7 => {
                let target = if self.request_ids.is_empty() {
                    name(u)?
                } else {
                    u.choose(&self.request_ids)?.0.clone()
                };
                (
                    "rpc.cancel",
                    name(u)?,
                    Some(object(vec![("id", maybe(u, |_| Ok(Value::from(target)))?)])),
                )
            }
            8 => (
                "topic.message",
                name(u)?,
                Some(object(vec![
                    ("topic", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                    ("payload", maybe(u, |u| Ok(value(u, 2)?))?),
                ])),
            ),
            9 => (
                "direct",
                name(u)?,
                Some(object(vec![
                    ("directType", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                    ("directData", maybe(u, |u| Ok(value(u, 2)?))?),
                ])),
            ),
            _ => ("other", name(u)?, maybe(u, |u| Ok(value(u, 3)?))?),
        };
        // Responses reuse the id of a request the client sent; the rest get fresh
        // ids, or (to exercise the replay guard) a repeated one.
        let mut from = from;
        let id = if msg_type == "rpc.response" && !self.request_ids.is_empty() && u.ratio(3, 4)? {
            // An answer to a request the client sent, from its target or the hub,
            // or (rarely) from someone else.
            let (id, to) = u.choose(&self.request_ids)?.clone();
            from = match u.int_in_range(0..=3)? {
                0 => "server".to_owned(),
                1 => name(u)?,
                _ => to,
            };
            id
        } else if msg_type == "rpc.response" {
            from = name(u)?;
            format!("hub-{}", u.int_in_range(0..=self.ids)?)
        } else if u.ratio(7, 8)? {
            self.ids += 1;
            format!("hub-{}", self.ids)
        } else {
            format!("hub-{}", u.int_in_range(0..=self.ids)?)
        };
        let ts = match u.int_in_range(0..=7)? {
            0..=5 => wall,
            6 => wall - 400_000.0,
            _ => common::number(u)?,
        };
        let env = Envelope {
            id,
            ts,
            from: if u.ratio(15, 16)? { Some(from) } else { None },
            to: Some("a".to_owned()),
            msg_type: msg_type.to_owned(),
            data,
        };
        let key = if u.ratio(15, 16)? {
            self.key.clone()
        } else {
            Key::new(&name(u)?, HashAlgo::Sha256)
        };
        let mut bytes = signed(&key, &env);
        // Once the input runs out, `ratio` answers yes and ranges their low end:
        // those must be the well-formed choices.
        if !u.ratio(7, 8)? {
            mangle(u, &mut bytes)?;
        }
        Ok(bytes)
    }

    /// Drains the connection, playing a well-behaved adapter and checking every output.
    fn drain(&mut self) {
        for _ in 0..100_000 {
            match self.conn.poll_output() {
                Output::Timeout(_) | Output::Idle => {
                    self.check();
                    return;
                }
                Output::Connect { .. } => {
                    assert_eq!(self.transport, Transport::None, "connect with a transport");
                    self.transport = Transport::Connecting;
                }
                Output::Transmit(text) => {
                    assert_eq!(
                        self.transport,
                        Transport::Open,
                        "transmit without transport"
                    );
                    self.unflushed += text.len();
                    let limits = Limits {
                        max_message_bytes: usize::MAX,
                        ..Limits::default()
                    };
                    let frame = Frame::parse(text.as_bytes(), &limits)
                        .unwrap_or_else(|e| panic!("the client wrote a bad frame ({e}): {text}"));
                    let mut scratch = Vec::new();
                    assert!(
                        frame.verify(&self.key, &mut scratch).is_ok(),
                        "the client's own frame does not verify: {text}"
                    );
                    if frame.msg_type().is_some_and(|t| *t == "rpc.request")
                        && let Some(id) = frame.id().as_str()
                        && self.request_ids.len() < 64
                    {
                        let to = frame.to().map(|t| t.to_string_lossy()).unwrap_or_default();
                        self.request_ids.push((id.to_owned(), to));
                    }
                }
                Output::Close { .. } | Output::Terminate => {
                    assert_ne!(self.transport, Transport::None, "close without transport");
                    self.transport = Transport::None;
                }
                Output::Ping => {
                    assert_eq!(self.transport, Transport::Open, "ping without transport")
                }
                Output::Event(ClientEvent::RpcComplete(rc)) => {
                    let id = rc.id.0;
                    assert!(self.settled.insert(id), "rpc {} settled twice", rc.id);
                    self.pending.remove(&id);
                }
                Output::Event(ClientEvent::RpcRequest { request, .. }) => {
                    if self.inbound.len() < 64 {
                        self.inbound.push(request.0);
                    }
                }
                Output::Event(_) => {}
                _ => {}
            }
        }
        panic!("the connection produced 100 000 outputs for one input");
    }

    fn check(&self) {
        let h = self.conn.health();
        // Subscription changes may exceed the cap, one item (about 300 bytes plus the
        // topic) per topic at most.
        let changes: usize = self.topics_touched.iter().map(|t| 300 + t.len()).sum();
        assert!(
            h.outbox_bytes <= self.max_outbox + changes,
            "outbox {} bytes over its cap {} (+{changes} for subscription changes)",
            h.outbox_bytes,
            self.max_outbox
        );
        assert!(
            h.pending_rpcs <= self.pending.len(),
            "{} RPCs pending, {} issued and unsettled",
            h.pending_rpcs,
            self.pending.len()
        );
        assert!(
            h.buffered_bytes <= self.unflushed,
            "{h:?}, {} unflushed",
            self.unflushed
        );
        assert_eq!(h.connected, self.transport == Transport::Open, "{h:?}");
        assert!(!h.ready || h.connected, "ready without a transport: {h:?}");
    }
}
