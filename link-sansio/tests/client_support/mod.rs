//! A fake hub for client scenario tests: it drives one `Connection` with fake time,
//! collects what it sends (decoded and verified) and what it reports, and signs the
//! frames a hub would send.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use link_sansio::client::{ClientConfig, ClientEvent, Connection, Input, Output};
use link_sansio::time::Now;
use link_sansio::wire::{self, Envelope, HashAlgo, Header, Key, Limits, Value};

pub const SECRET: &str = "s3cret";
pub const URL: &str = "ws://hub.test:8080";
/// 2026-01-01T00:00:00Z: any fixed wall clock will do.
pub const WALL: u64 = 1_767_225_600_000;

/// A JSON literal as a wire value.
pub fn v(json: serde_json::Value) -> Value {
    Value::from_serde(&json).expect("test JSON is wire-safe")
}

/// A frame the client sent, decoded.
#[derive(Debug, Clone)]
pub struct Sent {
    pub env: Envelope,
    pub msg_type: String,
    pub data: Option<Value>,
}

impl Sent {
    pub fn id(&self) -> String {
        self.env.id.to_string_lossy()
    }
    pub fn to(&self) -> Option<String> {
        self.env.to.as_ref().map(|t| t.to_string_lossy())
    }
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.data.as_ref().and_then(|d| d.get(key))
    }
}

/// Anything else the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Connect(String),
    Close(u16, String),
    Terminate,
    Ping,
}

pub struct Harness {
    pub conn: Connection,
    pub now: Now,
    pub key: Key,
    pub sent: Vec<Sent>,
    pub events: Vec<ClientEvent>,
    pub actions: Vec<Action>,
    pub deadline: Option<Instant>,
    /// Report every transmitted frame as flushed at once (an idle socket).
    pub auto_flush: bool,
    /// Answer every ping with a pong (a live hub).
    pub auto_pong: bool,
    next_id: u64,
}

pub fn config(kind: &str) -> ClientConfig {
    let mut c = ClientConfig::new(URL, kind, SECRET);
    c.pid = Some(4242);
    c
}

impl Harness {
    pub fn new(config: ClientConfig) -> Self {
        #[allow(clippy::disallowed_methods)] // the base of simulated time
        let base = Instant::now();
        Self {
            key: Key::new(SECRET, HashAlgo::Sha256),
            conn: Connection::new(config, 7).expect("valid config"),
            now: Now::new(base, WALL),
            sent: Vec::new(),
            events: Vec::new(),
            actions: Vec::new(),
            deadline: None,
            auto_flush: true,
            auto_pong: true,
            next_id: 0,
        }
    }

    /// Drains outputs into `sent`, `events` and `actions`, playing the socket's part
    /// (flush reports, pongs) as configured.
    pub fn pump(&mut self) {
        loop {
            let (flushed, pings) = self.pump_once();
            let mut fed = false;
            if flushed > 0 && self.auto_flush {
                self.conn.handle_input(self.now, Input::Flushed(flushed));
                fed = true;
            }
            if pings > 0 && self.auto_pong {
                self.conn.handle_input(self.now, Input::Pong);
                fed = true;
            }
            if !fed {
                break;
            }
        }
    }

    fn pump_once(&mut self) -> (usize, usize) {
        let (mut flushed, mut pings) = (0, 0);
        loop {
            match self.conn.poll_output() {
                Output::Timeout(t) => {
                    self.deadline = Some(t);
                    break;
                }
                Output::Idle => {
                    self.deadline = None;
                    break;
                }
                Output::Transmit(text) => {
                    flushed += text.len();
                    let mut scratch = Vec::new();
                    let env =
                        wire::decode(text.as_bytes(), &self.key, &Limits::default(), &mut scratch)
                            .expect("the client signs what it sends");
                    let frame =
                        wire::Frame::parse(text.as_bytes(), &Limits::default()).expect("frame");
                    self.sent.push(Sent {
                        msg_type: env.message.msg_type().to_owned(),
                        data: frame.data().cloned(),
                        env,
                    });
                }
                Output::Event(e) => self.events.push(e),
                Output::Connect { url } => self.actions.push(Action::Connect(url)),
                Output::Close { code, reason } => self.actions.push(Action::Close(code, reason)),
                Output::Terminate => self.actions.push(Action::Terminate),
                Output::Ping => {
                    pings += 1;
                    self.actions.push(Action::Ping);
                }
                other => panic!("unexpected output {other:?}"),
            }
        }
        (flushed, pings)
    }

    pub fn input(&mut self, input: Input<'_>) {
        self.conn.handle_input(self.now, input);
        self.pump();
    }

    /// Moves time forward by `d`, firing whatever falls due.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now.advance(d);
        // Step through deadlines in order, as a real event loop would.
        while let Some(t) = self.deadline.filter(|t| *t <= end.instant) {
            let step = t.saturating_duration_since(self.now.instant);
            self.now = self.now.advance(step);
            self.input(Input::Timeout);
            if self.deadline == Some(t) {
                break;
            }
        }
        let rest = end.instant.saturating_duration_since(self.now.instant);
        self.now = self.now.advance(rest);
        self.input(Input::Timeout);
    }

    pub fn ms(&mut self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    pub fn take_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// A frame as the hub would sign it, stamped now.
    pub fn frame(&mut self, msg_type: &str, from: Option<&str>, data: Option<Value>) -> Vec<u8> {
        self.next_id += 1;
        let id = format!("hub-{}", self.next_id);
        self.frame_with(&id, self.now.ms(), msg_type, from, data)
    }

    pub fn frame_with(
        &self,
        id: &str,
        ts: f64,
        msg_type: &str,
        from: Option<&str>,
        data: Option<Value>,
    ) -> Vec<u8> {
        let header = Header {
            id: id.into(),
            ts,
            from: from.map(Into::into),
            to: Some(self.conn.config().kind.as_str().into()),
        };
        let canonical = data.as_ref().map(Value::to_canonical);
        let mut out = Vec::new();
        wire::encode(&self.key, &header, msg_type, canonical.as_deref(), &mut out);
        out
    }

    /// The hub sends a message.
    pub fn hub(&mut self, msg_type: &str, from: Option<&str>, data: Option<Value>) {
        let bytes = self.frame(msg_type, from, data);
        self.input(Input::Frame(&bytes));
    }

    pub fn ack(&mut self, features: &[&str]) {
        let kind = self.conn.config().kind.clone();
        self.hub(
            "hello.ack",
            Some("server"),
            Some(v(serde_json::json!({
                "ok": true, "serverTime": WALL, "kind": kind, "features": features
            }))),
        );
    }

    /// Start, open the transport and accept the hello.
    pub fn ready(config: ClientConfig) -> Self {
        let mut h = Self::new(config);
        h.conn.start(h.now);
        h.pump();
        h.up();
        h.ack(&["topics", "direct"]);
        assert!(h.conn.is_ready());
        h.take_events();
        h.take_sent();
        h.take_actions();
        h
    }

    /// The transport opens (after a Connect).
    pub fn up(&mut self) {
        assert!(
            self.actions.iter().any(|a| matches!(a, Action::Connect(_))),
            "no Connect was asked for: {:?}",
            self.actions
        );
        self.actions.retain(|a| !matches!(a, Action::Connect(_)));
        self.input(Input::TransportUp);
    }

    /// The hub side closes the transport.
    pub fn down(&mut self, code: u16, reason: &str) {
        self.input(Input::TransportDown {
            code: Some(code),
            reason,
        });
    }

    /// Reconnect after a loss: wait for the Connect, open, acknowledge.
    pub fn reconnect(&mut self) {
        for _ in 0..100 {
            if self.actions.iter().any(|a| matches!(a, Action::Connect(_))) {
                break;
            }
            self.ms(250);
        }
        self.up();
        self.ack(&["topics", "direct"]);
        assert!(self.conn.is_ready());
    }

    pub fn sent_of(&self, msg_type: &str) -> Vec<Sent> {
        self.sent
            .iter()
            .filter(|s| s.msg_type == msg_type)
            .cloned()
            .collect()
    }
}
