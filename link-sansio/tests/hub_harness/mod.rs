//! A hand-driven hub with a fake clock: feed inputs, collect outputs, read the frames
//! each socket was sent (verified with that socket's key) and the events.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use link_sansio::hub::{ConnId, HubConfig, HubEvent, HubState, Input, Keys, Output};
use link_sansio::time::Now;
use link_sansio::wire::{self, HashAlgo, Header, Key, Limits, Value};
use serde_json::Value as Json;

pub const SECRET: &str = "s3cret";

/// A fixed origin: the tests never read the real clock except for this anchor.
#[allow(clippy::disallowed_methods)]
pub fn origin() -> Now {
    Now::new(Instant::now(), 1_800_000_000_000)
}

pub fn c(n: u64) -> ConnId {
    ConnId(n)
}

pub struct Hub {
    pub hub: HubState,
    pub now: Now,
    pub deadline: Instant,
    /// The key each connection's client signs with (and verifies the hub with).
    pub keys: HashMap<ConnId, Key>,
    pub algo: HashAlgo,
    out: Vec<Output>,
    next_id: u64,
    /// Bytes transmitted per socket and not yet reported flushed.
    unflushed: HashMap<ConnId, usize>,
}

impl Hub {
    pub fn new(config: HubConfig) -> Self {
        let now = origin();
        let algo = config.hash_algo;
        let mut hub = Hub {
            hub: HubState::new(config, 7, now),
            now,
            deadline: now.instant,
            keys: HashMap::new(),
            algo,
            out: Vec::new(),
            next_id: 0,
            unflushed: HashMap::new(),
        };
        hub.drain();
        hub
    }

    pub fn shared() -> Self {
        Self::new(HubConfig::new(Keys::Shared(SECRET.into())))
    }

    pub fn config(f: impl FnOnce(&mut HubConfig)) -> Self {
        let mut config = HubConfig::new(Keys::Shared(SECRET.into()));
        f(&mut config);
        Self::new(config)
    }

    fn drain(&mut self) {
        loop {
            match self.hub.poll_output() {
                Output::Timeout(t) => {
                    self.deadline = t;
                    break;
                }
                o => {
                    if let Output::Transmit { conn, text } = &o {
                        *self.unflushed.entry(*conn).or_default() += text.len();
                    }
                    self.out.push(o)
                }
            }
        }
    }

    pub fn input(&mut self, input: Input<'_>) {
        self.hub.handle_input(self.now, input);
        self.drain();
    }

    /// Moves the clock and lets deadlines fire.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now.instant + d;
        while self.deadline <= target {
            let step = self.deadline.saturating_duration_since(self.now.instant);
            self.now = self.now.advance(step);
            self.input(Input::Timeout);
        }
        let rest = target.saturating_duration_since(self.now.instant);
        self.now = self.now.advance(rest);
        self.input(Input::Timeout);
    }

    /// The transport writes everything it was given to `conn`.
    pub fn flush(&mut self, conn: u64) {
        let bytes = self.unflushed.remove(&c(conn)).unwrap_or(0);
        self.input(Input::Flushed {
            conn: c(conn),
            bytes,
        });
    }

    /// The transport writes everything, until nothing is left queued.
    pub fn flush_all(&mut self) {
        for _ in 0..1000 {
            let mut conns: Vec<u64> = self.unflushed.keys().map(|c| c.0).collect();
            if conns.is_empty() {
                return;
            }
            conns.sort_unstable();
            for conn in conns {
                self.flush(conn);
            }
        }
    }

    pub fn open(&mut self, conn: u64) {
        self.input(Input::Opened {
            conn: c(conn),
            remote: Some("127.0.0.1:4000".parse().expect("addr")),
        });
    }

    pub fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("test-{}", self.next_id)
    }

    /// A frame signed with `key`.
    pub fn sign(
        &self,
        key: &Key,
        id: &str,
        msg_type: &str,
        from: Option<&str>,
        to: Option<&str>,
        data: Option<Json>,
    ) -> String {
        let data = data.map(|d| Value::from_serde(&d).expect("safe json").to_canonical());
        let mut out = Vec::new();
        wire::encode(
            key,
            &Header {
                id: id.into(),
                ts: self.now.ms(),
                from: from.map(Into::into),
                to: to.map(Into::into),
            },
            msg_type,
            data.as_deref(),
            &mut out,
        );
        String::from_utf8(out).expect("utf8")
    }

    pub fn raw(&mut self, conn: u64, text: &str) {
        self.input(Input::Frame {
            conn: c(conn),
            bytes: text.as_bytes(),
        });
    }

    /// Sends a message from `conn` signed with its key; returns the envelope id.
    pub fn send(
        &mut self,
        conn: u64,
        msg_type: &str,
        to: Option<&str>,
        data: Option<Json>,
    ) -> String {
        let id = self.fresh_id();
        self.send_id(conn, &id, msg_type, to, data);
        id
    }

    pub fn send_id(
        &mut self,
        conn: u64,
        id: &str,
        msg_type: &str,
        to: Option<&str>,
        data: Option<Json>,
    ) {
        let key = self.keys.get(&c(conn)).expect("key for conn").clone();
        let text = self.sign(&key, id, msg_type, Some("claimed"), to, data);
        self.raw(conn, &text);
    }

    /// Opens `conn` and sends a hello for `kind` signed with `secret`.
    pub fn hello_with(&mut self, conn: u64, kind: &str, secret: &str) {
        let key = Key::new(secret, self.algo);
        self.keys.insert(c(conn), key.clone());
        let id = self.fresh_id();
        let text = self.sign(
            &key,
            &id,
            "hello",
            Some(kind),
            None,
            Some(serde_json::json!({"kind": kind, "name": kind, "pid": 1, "startedAt": 5})),
        );
        self.raw(conn, &text);
    }

    /// Opens `conn`, authenticates it as `kind` with the shared secret, and clears
    /// the outputs.
    pub fn connect(&mut self, conn: u64, kind: &str) {
        self.open(conn);
        self.hello_with(conn, kind, SECRET);
        let outs = self.take();
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Event(HubEvent::PeerConnected { .. }))),
            "{kind} connected: {outs:?}"
        );
    }

    /// Every output so far (cleared).
    pub fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// Frames sent to `conn` so far (removed), verified with its key.
    pub fn frames(&mut self, conn: u64) -> Vec<Json> {
        let key = self.keys.get(&c(conn)).cloned();
        let mut frames = Vec::new();
        self.out.retain(|o| match o {
            Output::Transmit { conn: to, text } if *to == c(conn) => {
                let key = key.as_ref().expect("key for conn");
                let mut scratch = Vec::new();
                wire::decode(text.as_bytes(), key, &Limits::default(), &mut scratch)
                    .unwrap_or_else(|e| panic!("frame to {conn} does not verify: {e} {text}"));
                frames.push(serde_json::from_str(text).expect("json"));
                false
            }
            _ => true,
        });
        frames
    }

    /// Types of the frames sent to `conn` (removed).
    pub fn types(&mut self, conn: u64) -> Vec<String> {
        self.frames(conn)
            .iter()
            .map(|f| f["type"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// Events so far (removed).
    pub fn events(&mut self) -> Vec<HubEvent> {
        let mut events = Vec::new();
        self.out.retain(|o| match o {
            Output::Event(e) => {
                events.push(e.clone());
                false
            }
            _ => true,
        });
        events
    }

    /// Close frames so far (removed): `(conn, code, reason)`.
    pub fn closes(&mut self) -> Vec<(u64, u16, String)> {
        let mut closes = Vec::new();
        self.out.retain(|o| match o {
            Output::Close { conn, code, reason } => {
                closes.push((conn.0, *code, reason.clone()));
                false
            }
            _ => true,
        });
        closes
    }

    pub fn terminated(&mut self) -> Vec<u64> {
        let mut list = Vec::new();
        self.out.retain(|o| match o {
            Output::Terminate { conn } => {
                list.push(conn.0);
                false
            }
            _ => true,
        });
        list
    }

    pub fn close_from_client(&mut self, conn: u64, code: u16) {
        self.input(Input::Closed {
            conn: c(conn),
            code: Some(code),
            reason: "",
        });
    }

    /// The protocol-error reasons among `events`.
    pub fn drops(events: &[HubEvent]) -> Vec<(&'static str, Option<String>)> {
        events
            .iter()
            .filter_map(|e| match e {
                HubEvent::ProtocolError { reason, detail, .. } => {
                    Some((reason.as_str(), detail.clone()))
                }
                _ => None,
            })
            .collect()
    }
}
