//! An arbitrary sequence of hub inputs: sockets opening and closing, frames (most of
//! them well signed, built from the input so the fuzzer gets past the HMAC; some
//! mangled or raw), pongs, flush reports, answers to key lookups, server RPCs and ACL
//! questions (right, stale or made up), drains and time steps, under a configuration
//! that is itself drawn from the input. The hub must never panic, never talk on a
//! socket it was not given or was told is closed, and keep its tables within their
//! caps and consistent with each other after every input.
#![no_main]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Envelope, mangle, maybe, name, object, signed, value};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use link_sansio::hub::{
    AclCheckId, AclDecision, AclHooks, ConnId, HubConfig, HubState, Input, KeyRequestId, Keys,
    Output, ServerCallId, ServerReply,
};
use link_sansio::time::Now;
use link_sansio::wire::{self, HashAlgo, Key, Limits, Value};

const WALL0: u64 = 1_750_000_000_000;
const MAX_OPS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

/// The adapter's view of one socket.
#[derive(Default)]
struct Socket {
    /// Bytes handed to the transport and not yet reported flushed.
    unflushed: usize,
    /// The kind it said hello as (to sign its frames with that kind's key).
    kind: Option<String>,
    /// The hub asked to close or terminate it.
    closing: bool,
}

struct Fuzz {
    hub: HubState,
    base: Instant,
    ms: u64,
    /// Sockets opened and not yet reported closed.
    open: BTreeMap<u64, Socket>,
    next_conn: u64,
    key_requests: Vec<u64>,
    server_calls: BTreeSet<u64>,
    acl_checks: Vec<u64>,
    ids: Vec<String>,
    max_outbox: usize,
    max_pending: usize,
    keys: BTreeMap<String, String>,
    shared: Option<String>,
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let key_mode = u.int_in_range(0..=2)?;
    let shared = "fuzz-secret".to_owned();
    let per_kind: BTreeMap<String, String> = [("a", "key-a"), ("b", "key-b"), ("0", "key-0")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let keys = match key_mode {
        0 => Keys::Shared(shared.clone()),
        1 => Keys::PerKind(per_kind.clone()),
        _ => Keys::Resolver,
    };
    let mut cfg = HubConfig::new(keys);
    cfg.limits = Limits {
        max_message_bytes: u.int_in_range(64..=8192)?,
        replay_window_ms: if u.arbitrary()? { 300_000 } else { 0 },
        max_recent_ids: u.int_in_range(1..=16)?,
    };
    cfg.max_buffered_bytes = u.int_in_range(0..=4096)?;
    cfg.max_outbox_bytes = u.int_in_range(0..=8192)?;
    cfg.max_pending_sockets = u.int_in_range(1..=4)?;
    cfg.max_concurrent_rpc = u.int_in_range(0..=3)?;
    cfg.keepalive_interval = Duration::from_millis(u.int_in_range(0..=5_000)?);
    cfg.hello_timeout = Duration::from_millis(u.int_in_range(0..=5_000)?);
    cfg.expose_rpc_errors = u.arbitrary()?;
    cfg.message_events = u.arbitrary()?;
    cfg.acl = AclHooks {
        rpc: u.arbitrary()?,
        publish: u.arbitrary()?,
        subscribe: u.arbitrary()?,
        send: u.arbitrary()?,
    };
    let max_outbox = cfg.max_outbox_bytes;
    let max_pending = cfg.max_pending_sockets;
    let base = Instant::now();
    let seed = u.arbitrary()?;
    let mut f = Fuzz {
        hub: HubState::new(cfg, seed, Now::new(base, WALL0)),
        base,
        ms: 0,
        open: BTreeMap::new(),
        next_conn: 0,
        key_requests: Vec::new(),
        server_calls: BTreeSet::new(),
        acl_checks: Vec::new(),
        ids: Vec::new(),
        max_outbox,
        max_pending,
        keys: per_kind,
        shared: (key_mode == 0).then_some(shared),
    };
    if u.arbitrary()? {
        f.hub.register_server_rpc("echo");
    }
    f.hub.set_server_rpc_catch_all(u.arbitrary()?);
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
        self.hub.handle_input(now, input);
    }

    fn pick_conn(&self, u: &mut Unstructured<'_>) -> Result<Option<u64>> {
        if self.open.is_empty() {
            return Ok(None);
        }
        let conns: Vec<u64> = self.open.keys().copied().collect();
        Ok(Some(*u.choose(&conns)?))
    }

    fn key_for(&self, kind: &str) -> Key {
        let secret = match &self.shared {
            Some(s) => s.clone(),
            None => self
                .keys
                .get(kind)
                .cloned()
                .unwrap_or_else(|| format!("resolved-{kind}")),
        };
        Key::new(&secret, HashAlgo::Sha256)
    }

    fn op(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        match u.int_in_range(0..=13)? {
            0 => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.open.insert(conn, Socket::default());
                self.input(Input::Opened {
                    conn: ConnId(conn),
                    remote: None,
                });
            }
            1..=5 => {
                let Some(conn) = self.pick_conn(u)? else {
                    return Ok(());
                };
                let bytes = self.frame(u, conn)?;
                self.input(Input::Frame {
                    conn: ConnId(conn),
                    bytes: &bytes,
                });
            }
            6 => {
                let Some(conn) = self.pick_conn(u)? else {
                    return Ok(());
                };
                self.open.remove(&conn);
                let code = if u.arbitrary()? {
                    Some(u.arbitrary()?)
                } else {
                    None
                };
                let reason = name(u)?;
                self.input(Input::Closed {
                    conn: ConnId(conn),
                    code,
                    reason: &reason,
                });
            }
            7 => {
                if let Some(conn) = self.pick_conn(u)? {
                    self.input(Input::Pong { conn: ConnId(conn) });
                }
            }
            8 => {
                let Some(conn) = self.pick_conn(u)? else {
                    return Ok(());
                };
                let Some(s) = self.open.get_mut(&conn) else {
                    return Ok(());
                };
                let bytes = u.int_in_range(0..=s.unflushed)?;
                s.unflushed -= bytes;
                self.input(Input::Flushed {
                    conn: ConnId(conn),
                    bytes,
                });
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
                let request = self.answer_id(u, |f| &mut f.key_requests)?;
                let key = match u.int_in_range(0..=3)? {
                    0 => None,
                    1 => Some(String::new()),
                    2 => Some(name(u)?),
                    // The key the frames of that kind are signed with.
                    _ => Some(format!("resolved-{}", name(u)?)),
                };
                self.input(Input::KeyResolved {
                    request: KeyRequestId(request),
                    key,
                });
            }
            11 => {
                let call = if !self.server_calls.is_empty() && u.ratio(3, 4)? {
                    let calls: Vec<u64> = self.server_calls.iter().copied().collect();
                    let c = *u.choose(&calls)?;
                    self.server_calls.remove(&c);
                    c
                } else {
                    u.int_in_range(0..=64)?
                };
                let reply = match u.int_in_range(0..=3)? {
                    0 => ServerReply::Ok(if u.arbitrary()? {
                        Some(value(u, 2)?)
                    } else {
                        None
                    }),
                    1 => ServerReply::Err {
                        code: if u.arbitrary()? { Some(name(u)?) } else { None },
                        message: name(u)?,
                        data: if u.arbitrary()? {
                            Some(value(u, 2)?)
                        } else {
                            None
                        },
                        expose: u.arbitrary()?,
                    },
                    2 => ServerReply::NotSerializable,
                    _ => ServerReply::Panicked,
                };
                self.input(Input::ServerRpcDone {
                    call: ServerCallId(call),
                    reply,
                });
            }
            12 => {
                let check = self.answer_id(u, |f| &mut f.acl_checks)?;
                let decision = if u.arbitrary()? {
                    AclDecision::Allow
                } else {
                    AclDecision::Deny {
                        code: if u.arbitrary()? { Some(name(u)?) } else { None },
                        message: if u.arbitrary()? { Some(name(u)?) } else { None },
                    }
                };
                self.input(Input::AclDecided {
                    check: AclCheckId(check),
                    decision,
                });
            }
            _ => match u.int_in_range(0..=7)? {
                // Rare: after a drain the hub accepts no one.
                0 if u.ratio(1, 16)? => self.input(Input::Drain),
                1 => self.hub.register_server_rpc(&name(u)?),
                2 => self.hub.unregister_server_rpc(&name(u)?),
                3 => self.hub.set_server_rpc_catch_all(u.arbitrary()?),
                4 => self.hub.set_frame_events(u.arbitrary()?),
                _ => self.input(Input::Timeout),
            },
        }
        Ok(())
    }

    /// An id the hub asked about (usually, and answered once), or a made-up one.
    fn answer_id(
        &mut self,
        u: &mut Unstructured<'_>,
        list: impl Fn(&mut Self) -> &mut Vec<u64>,
    ) -> Result<u64> {
        let l = list(self);
        if !l.is_empty() && u.ratio(3, 4)? {
            let i = u.choose_index(l.len())?;
            Ok(l.swap_remove(i))
        } else {
            u.int_in_range(0..=64)
        }
    }

    /// A frame for `conn`: usually well signed and well formed, sometimes damaged.
    fn frame(&mut self, u: &mut Unstructured<'_>, conn: u64) -> Result<Vec<u8>> {
        let known_kind = self.open.get(&conn).and_then(|s| s.kind.clone());
        // A socket that has not said hello yet mostly says it now.
        let pick = if known_kind.is_none() && u.ratio(3, 4)? {
            0
        } else {
            u.int_in_range(0..=10)?
        };
        let msg_type = match pick {
            0 => "hello",
            1 => "rpc.request",
            2 => "rpc.response",
            3 => "rpc.cancel",
            4 => "topic.subscribe",
            5 => "topic.unsubscribe",
            6 => "topic.message",
            7 => "direct",
            8 => "status.update",
            9 => "hello.ack",
            _ => "other",
        }
        .to_owned();
        let kind = match &known_kind {
            Some(k) if msg_type != "hello" || u.ratio(1, 4)? => k.clone(),
            // Kinds that have a key in every key mode, mostly.
            _ if u.ratio(3, 4)? => (*u.choose(&["a", "b", "0"])?).to_owned(),
            _ => name(u)?,
        };
        let id = if !self.ids.is_empty() && u.ratio(1, 4)? {
            u.choose(&self.ids)?.clone()
        } else {
            let id = format!("id-{}", u.int_in_range(0..=u16::MAX)?);
            if self.ids.len() < 32 {
                self.ids.push(id.clone());
            }
            id
        };
        let data = match msg_type.as_str() {
            "hello" => Some(object(vec![
                ("kind", maybe(u, |_| Ok(Value::from(kind.as_str())))?),
                ("name", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                (
                    "pid",
                    maybe(u, |u| {
                        Ok(Value::Number(f64::from(u.int_in_range(0..=99_999)?)))
                    })?,
                ),
                (
                    "startedAt",
                    maybe(u, |_| Ok(Value::Number((WALL0 + self.ms) as f64)))?,
                ),
            ])),
            "rpc.request" => Some(object(vec![
                ("rpcType", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                ("rpcData", maybe(u, |u| Ok(value(u, 2)?))?),
            ])),
            "rpc.response" => Some(if u.arbitrary()? {
                object(vec![
                    ("ok", Some(Value::Bool(true))),
                    ("result", maybe(u, |u| Ok(value(u, 2)?))?),
                ])
            } else {
                object(vec![
                    ("ok", Some(Value::Bool(false))),
                    ("error", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                    ("code", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                    ("data", maybe(u, |u| Ok(value(u, 1)?))?),
                ])
            }),
            "rpc.cancel" => {
                let target = if self.ids.is_empty() {
                    name(u)?
                } else {
                    u.choose(&self.ids)?.clone()
                };
                Some(object(vec![("id", maybe(u, |_| Ok(Value::from(target)))?)]))
            }
            "topic.subscribe" | "topic.unsubscribe" => Some(object(vec![(
                "topic",
                maybe(u, |u| Ok(Value::from(name(u)?)))?,
            )])),
            "topic.message" => Some(object(vec![
                ("topic", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                ("payload", maybe(u, |u| Ok(value(u, 2)?))?),
            ])),
            "direct" => Some(object(vec![
                ("directType", maybe(u, |u| Ok(Value::from(name(u)?)))?),
                ("directData", maybe(u, |u| Ok(value(u, 2)?))?),
            ])),
            _ => maybe(u, |u| Ok(value(u, 3)?))?,
        };
        let ts = match u.int_in_range(0..=5)? {
            0..=2 => (WALL0 + self.ms) as f64,
            3 => 0.0,
            4 => (WALL0 + self.ms) as f64 - 400_000.0,
            _ => common::number(u)?,
        };
        let env = Envelope {
            id,
            ts,
            from: if u.ratio(7, 8)? {
                Some(kind.clone())
            } else {
                None
            },
            to: if u.arbitrary()? { Some(name(u)?) } else { None },
            msg_type: msg_type.clone(),
            data,
        };
        // Sign with the key of the kind the socket speaks for (a hello: the claimed
        // kind), sometimes with another one.
        let signer = if u.ratio(7, 8)? {
            kind.clone()
        } else {
            name(u)?
        };
        let mut bytes = signed(&self.key_for(signer.trim()), &env);
        if msg_type == "hello"
            && let Some(s) = self.open.get_mut(&conn)
        {
            s.kind = Some(kind.trim().to_owned());
        }
        // Once the input runs out, `ratio` answers yes and ranges their low end:
        // those must be the well-formed choices.
        if !u.ratio(7, 8)? {
            mangle(u, &mut bytes)?;
        }
        Ok(bytes)
    }

    /// Drains the hub, playing a well-behaved adapter and checking every output.
    fn drain(&mut self) {
        for _ in 0..100_000 {
            match self.hub.poll_output() {
                Output::Timeout(at) => {
                    assert!(at >= self.base, "a deadline before the hub was created");
                    self.check_tables();
                    return;
                }
                Output::Transmit { conn, text } => {
                    let s = self
                        .open
                        .get_mut(&conn.0)
                        .unwrap_or_else(|| panic!("transmit on unknown or closed {conn:?}"));
                    assert!(!s.closing, "transmit on {conn:?} after closing it");
                    s.unflushed += text.len();
                    // Everything the hub writes is a well-formed frame signed with the
                    // socket's key (checkable here when all kinds share one).
                    if let Some(secret) = &self.shared {
                        let key = Key::new(secret, HashAlgo::Sha256);
                        let limits = Limits {
                            max_message_bytes: usize::MAX,
                            ..Limits::default()
                        };
                        let mut scratch = Vec::new();
                        if let Err(e) = wire::decode(text.as_bytes(), &key, &limits, &mut scratch) {
                            panic!("the hub wrote a frame that does not verify ({e}): {text}");
                        }
                    }
                    assert!(
                        text.len() <= 64 * 1024 * 1024,
                        "a frame of {} bytes",
                        text.len()
                    );
                }
                Output::Close { conn, .. } | Output::Terminate { conn } => {
                    let s = self
                        .open
                        .get_mut(&conn.0)
                        .unwrap_or_else(|| panic!("close of unknown or closed {conn:?}"));
                    s.closing = true;
                }
                Output::Ping { conn } => {
                    assert!(
                        self.open.contains_key(&conn.0),
                        "ping of unknown or closed {conn:?}"
                    );
                }
                Output::ResolveKey { request, .. } => self.key_requests.push(request.0),
                Output::ServerRpc(call) => {
                    assert!(
                        self.hub.state().peers.iter().any(|p| p.kind == call.from),
                        "server RPC from {}, who is not a peer",
                        call.from
                    );
                    assert!(
                        self.server_calls.insert(call.call.0),
                        "server call {} issued twice",
                        call.call.0
                    );
                }
                Output::AclCheck(check) => self.acl_checks.push(check.check.0),
                Output::Event(_) => {}
                _ => {}
            }
        }
        panic!("the hub produced 100 000 outputs for one input");
    }

    fn check_tables(&self) {
        let h = self.hub.health();
        let state = self.hub.state();
        assert!(
            h.outbox_bytes <= self.max_outbox * h.queued_sockets.max(1),
            "outbox {} bytes over {} sockets capped at {}",
            h.outbox_bytes,
            h.queued_sockets,
            self.max_outbox
        );
        assert!(h.queued_sockets <= self.open.len(), "{h:?}");
        assert!(h.pending_socket_count <= self.max_pending, "{h:?}");
        assert!(
            h.pending_socket_count + h.peer_count <= self.open.len(),
            "more sockets in the tables than open: {h:?}, {} open",
            self.open.len()
        );
        assert_eq!(h.peer_count, state.peers.len(), "{h:?}");
        let kinds: BTreeSet<&str> = state.peers.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds.len(), state.peers.len(), "a kind listed twice");
        assert!(h.topic_count <= h.total_subscribers, "{h:?}");
        assert!(
            h.server_rpc_in_flight <= self.server_calls.len(),
            "{} server RPCs in flight, {} unanswered",
            h.server_rpc_in_flight,
            self.server_calls.len()
        );
    }
}
