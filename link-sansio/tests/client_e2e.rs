//! End-to-end stories: several `Connection`s and a real `HubState` wired together in
//! memory (no sockets), with fake time. Bytes move between the state machines
//! exactly as the adapters would move them.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use link_sansio::client::{
    CancelReason, ClientConfig, ClientEvent, Connection, InboundRpcId, Input, Output, RpcComplete,
    RpcError, RpcId,
};
use link_sansio::hub::{
    self, ConnId, HubConfig, HubEvent, HubState, Keys, ServerCall, ServerReply,
};
use link_sansio::time::Now;
use link_sansio::wire::Value;
use serde_json::json;

const SECRET: &str = "e2e-secret";
const URL: &str = "ws://hub.mem";
const WALL: u64 = 1_767_225_600_000;

fn v(json: serde_json::Value) -> Value {
    Value::from_serde(&json).expect("wire-safe")
}

struct Client {
    conn: Connection,
    socket: Option<ConnId>,
    events: Vec<ClientEvent>,
    deadline: Option<Instant>,
}

/// A hub and its clients on one simulated clock.
struct Net {
    now: Now,
    hub: Option<HubState>,
    hub_events: Vec<HubEvent>,
    hub_deadline: Option<Instant>,
    server_calls: VecDeque<ServerCall>,
    clients: Vec<Client>,
    sockets: BTreeMap<ConnId, usize>,
    next_socket: u64,
    seed: u64,
}

enum Todo {
    ToHub(hub::Input<'static>),
    HubFrame(ConnId, String),
    HubClosed(ConnId, Option<u16>, String),
    ToClient(usize, ClientInput),
}

enum ClientInput {
    Up,
    Frame(String),
    Down(Option<u16>, String),
    Pong,
    Flushed(usize),
}

fn hub_config() -> HubConfig {
    HubConfig::new(Keys::Shared(SECRET.into()))
}

fn client_config(kind: &str) -> ClientConfig {
    ClientConfig::new(URL, kind, SECRET)
}

impl Net {
    fn new() -> Self {
        #[allow(clippy::disallowed_methods)] // the base of simulated time
        let now = Now::new(Instant::now(), WALL);
        Self {
            hub: Some(HubState::new(hub_config(), 1, now)),
            now,
            hub_events: Vec::new(),
            hub_deadline: None,
            server_calls: VecDeque::new(),
            clients: Vec::new(),
            sockets: BTreeMap::new(),
            next_socket: 0,
            seed: 100,
        }
    }

    /// Adds a started client; returns its index.
    fn client(&mut self, config: ClientConfig) -> usize {
        self.seed += 1;
        let mut conn = Connection::new(config, self.seed).expect("valid config");
        conn.start(self.now);
        self.clients.push(Client {
            conn,
            socket: None,
            events: Vec::new(),
            deadline: None,
        });
        self.run();
        self.clients.len() - 1
    }

    fn c(&mut self, i: usize) -> &mut Connection {
        &mut self.clients[i].conn
    }

    fn events(&mut self, i: usize) -> Vec<ClientEvent> {
        std::mem::take(&mut self.clients[i].events)
    }

    /// Moves everything until no state machine has anything more to say.
    fn run(&mut self) {
        let mut todo: VecDeque<Todo> = VecDeque::new();
        loop {
            for i in 0..self.clients.len() {
                loop {
                    match self.clients[i].conn.poll_output() {
                        Output::Timeout(t) => {
                            self.clients[i].deadline = Some(t);
                            break;
                        }
                        Output::Idle => {
                            self.clients[i].deadline = None;
                            break;
                        }
                        Output::Connect { url } => {
                            assert_eq!(url, URL);
                            if self.hub.is_some() {
                                self.next_socket += 1;
                                let id = ConnId(self.next_socket);
                                self.sockets.insert(id, i);
                                self.clients[i].socket = Some(id);
                                todo.push_back(Todo::ToHub(hub::Input::Opened {
                                    conn: id,
                                    remote: None,
                                }));
                                todo.push_back(Todo::ToClient(i, ClientInput::Up));
                            } else {
                                todo.push_back(Todo::ToClient(
                                    i,
                                    ClientInput::Down(Some(1006), String::new()),
                                ));
                            }
                        }
                        Output::Transmit(text) => {
                            todo.push_back(Todo::ToClient(i, ClientInput::Flushed(text.len())));
                            if let Some(id) = self.clients[i].socket {
                                todo.push_back(Todo::HubFrame(id, text));
                            }
                        }
                        Output::Close { code, reason } => {
                            if let Some(id) = self.clients[i].socket.take() {
                                self.sockets.remove(&id);
                                todo.push_back(Todo::HubClosed(id, Some(code), reason));
                            }
                        }
                        Output::Terminate => {
                            if let Some(id) = self.clients[i].socket.take() {
                                self.sockets.remove(&id);
                                todo.push_back(Todo::HubClosed(id, Some(1006), String::new()));
                            }
                        }
                        Output::Ping => todo.push_back(Todo::ToClient(i, ClientInput::Pong)),
                        Output::Event(e) => self.clients[i].events.push(e),
                        other => panic!("unexpected client output {other:?}"),
                    }
                }
            }
            if let Some(hub) = &mut self.hub {
                loop {
                    match hub.poll_output() {
                        hub::Output::Timeout(t) => {
                            self.hub_deadline = Some(t);
                            break;
                        }
                        hub::Output::Transmit { conn, text } => {
                            todo.push_back(Todo::ToHub(hub::Input::Flushed {
                                conn,
                                bytes: text.len(),
                            }));
                            if let Some(&i) = self.sockets.get(&conn) {
                                todo.push_back(Todo::ToClient(i, ClientInput::Frame(text)));
                            }
                        }
                        hub::Output::Close { conn, code, reason } => {
                            if let Some(i) = self.sockets.remove(&conn) {
                                self.clients[i].socket = None;
                                todo.push_back(Todo::ToClient(
                                    i,
                                    ClientInput::Down(Some(code), reason.clone()),
                                ));
                            }
                            todo.push_back(Todo::HubClosed(conn, Some(code), reason));
                        }
                        hub::Output::Terminate { conn } => {
                            if let Some(i) = self.sockets.remove(&conn) {
                                self.clients[i].socket = None;
                                todo.push_back(Todo::ToClient(
                                    i,
                                    ClientInput::Down(Some(1006), String::new()),
                                ));
                            }
                            todo.push_back(Todo::HubClosed(conn, Some(1006), String::new()));
                        }
                        hub::Output::Ping { conn } => {
                            todo.push_back(Todo::ToHub(hub::Input::Pong { conn }))
                        }
                        hub::Output::Event(e) => self.hub_events.push(e),
                        hub::Output::ResolveKey { request, .. } => {
                            todo.push_back(Todo::ToHub(hub::Input::KeyResolved {
                                request,
                                key: Some(SECRET.into()),
                            }))
                        }
                        hub::Output::ServerRpc(call) => self.server_calls.push_back(call),
                        hub::Output::AclCheck(check) => {
                            todo.push_back(Todo::ToHub(hub::Input::AclDecided {
                                check: check.check,
                                decision: hub::AclDecision::Allow,
                            }))
                        }
                        other => panic!("unexpected hub output {other:?}"),
                    }
                }
            }
            if todo.is_empty() {
                return;
            }
            while let Some(t) = todo.pop_front() {
                let now = self.now;
                match t {
                    Todo::ToHub(input) => {
                        if let Some(hub) = &mut self.hub {
                            hub.handle_input(now, input);
                        }
                    }
                    Todo::HubFrame(conn, text) => {
                        if let Some(hub) = &mut self.hub {
                            hub.handle_input(
                                now,
                                hub::Input::Frame {
                                    conn,
                                    bytes: text.as_bytes(),
                                },
                            );
                        }
                    }
                    Todo::HubClosed(conn, code, reason) => {
                        if let Some(hub) = &mut self.hub {
                            hub.handle_input(
                                now,
                                hub::Input::Closed {
                                    conn,
                                    code,
                                    reason: &reason,
                                },
                            );
                        }
                    }
                    Todo::ToClient(i, input) => {
                        let conn = &mut self.clients[i].conn;
                        match input {
                            ClientInput::Up => conn.handle_input(now, Input::TransportUp),
                            ClientInput::Frame(text) => {
                                conn.handle_input(now, Input::Frame(text.as_bytes()))
                            }
                            ClientInput::Down(code, reason) => conn.handle_input(
                                now,
                                Input::TransportDown {
                                    code,
                                    reason: &reason,
                                },
                            ),
                            ClientInput::Pong => conn.handle_input(now, Input::Pong),
                            ClientInput::Flushed(n) => conn.handle_input(now, Input::Flushed(n)),
                        }
                    }
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.clients
            .iter()
            .filter_map(|c| c.deadline)
            .chain(self.hub_deadline.filter(|_| self.hub.is_some()))
            .min()
    }

    fn tick(&mut self) {
        let now = self.now;
        if let Some(hub) = &mut self.hub {
            hub.handle_input(now, hub::Input::Timeout);
        }
        for c in &mut self.clients {
            c.conn.handle_input(now, Input::Timeout);
        }
        self.run();
    }

    /// Moves the clock forward by `d`, stopping at every deadline on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.now.instant + d;
        while let Some(t) = self.next_deadline().filter(|t| *t <= end) {
            let step = t.saturating_duration_since(self.now.instant);
            self.now = self.now.advance(step);
            self.tick();
            if self.next_deadline() == Some(t) {
                break;
            }
        }
        let rest = end.saturating_duration_since(self.now.instant);
        self.now = self.now.advance(rest);
        self.tick();
    }

    /// The hub process dies (every socket drops) and a fresh one starts.
    fn restart_hub(&mut self) {
        self.hub = None;
        for (_, i) in std::mem::take(&mut self.sockets) {
            self.clients[i].socket = None;
            let now = self.now;
            self.clients[i].conn.handle_input(
                now,
                Input::TransportDown {
                    code: Some(1006),
                    reason: "",
                },
            );
        }
        self.run();
        self.hub = Some(HubState::new(hub_config(), 2, self.now));
        self.run();
    }

    fn ready(&self, i: usize) -> bool {
        self.clients[i].conn.is_ready()
    }
}

fn completions(events: &[ClientEvent]) -> Vec<RpcComplete> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::RpcComplete(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn requests(events: &[ClientEvent]) -> Vec<(InboundRpcId, String, Option<Value>)> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::RpcRequest {
                request,
                rpc_type,
                data,
                from,
            } => Some((
                *request,
                format!("{}:{rpc_type}", from.as_deref().unwrap_or("?")),
                data.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn handling(kind: &str, types: &[&str]) -> ClientConfig {
    let mut c = client_config(kind);
    c.rpc_handlers = types.iter().map(|t| (*t).to_owned()).collect();
    c
}

fn outcome(events: &[ClientEvent], id: RpcId) -> Result<Option<Value>, RpcError> {
    let done: Vec<_> = completions(events)
        .into_iter()
        .filter(|c| c.id == id)
        .collect();
    assert_eq!(done.len(), 1, "one completion for {id}: {events:?}");
    done[0].outcome.clone()
}

#[test]
fn clients_become_ready_and_see_each_other() {
    let mut net = Net::new();
    let a = net.client(client_config("alpha"));
    let b = net.client(client_config("beta"));
    assert!(net.ready(a) && net.ready(b));
    assert_eq!(net.c(a).hub_features(), ["topics", "direct"]);
    let kinds = |net: &mut Net, i| net.c(i).peers().map(|p| p.kind.clone()).collect::<Vec<_>>();
    assert_eq!(kinds(&mut net, a), vec!["alpha", "beta"]);
    assert_eq!(kinds(&mut net, b), vec!["alpha", "beta"]);
    assert!(
        net.events(a)
            .iter()
            .any(|e| matches!(e, ClientEvent::PeerConnected(p) if p.kind == "beta"))
    );
}

#[test]
fn rpc_both_ways_through_the_hub() {
    let mut net = Net::new();
    let a = net.client(handling("alpha", &["double"]));
    let b = net.client(handling("beta", &["sum"]));
    net.events(a);
    net.events(b);

    let call = net.clients[a]
        .conn
        .rpc(net.now, "beta", "sum", Some(v(json!([1, 2, 3]))), None)
        .expect("sent");
    net.run();
    let reqs = requests(&net.events(b));
    assert_eq!(reqs.len(), 1);
    let (req, who, data) = reqs[0].clone();
    assert_eq!(
        (who.as_str(), data),
        ("alpha:sum", Some(v(json!([1, 2, 3]))))
    );
    net.clients[b]
        .conn
        .respond(net.now, req, Ok(Some(v(json!(6)))));
    net.run();
    assert_eq!(outcome(&net.events(a), call), Ok(Some(v(json!(6)))));

    let back = net.clients[b]
        .conn
        .rpc(net.now, "alpha", "double", Some(v(json!(21))), None)
        .expect("sent");
    net.run();
    let (req, who, _) = requests(&net.events(a))[0].clone();
    assert_eq!(who, "beta:double");
    net.clients[a]
        .conn
        .respond(net.now, req, Ok(Some(v(json!(42)))));
    net.run();
    assert_eq!(outcome(&net.events(b), back), Ok(Some(v(json!(42)))));

    // An unknown type is answered by beta's connection, a missing peer by the hub.
    let unknown = net.clients[a]
        .conn
        .rpc(net.now, "beta", "nope", None, None)
        .expect("sent");
    let absent = net.clients[a]
        .conn
        .rpc(net.now, "gamma", "sum", None, None)
        .expect("sent");
    net.run();
    let events = net.events(a);
    let e = outcome(&events, unknown).expect_err("unknown type");
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("RPC_UNKNOWN_TYPE", "Unknown rpcType: nope")
    );
    let e = outcome(&events, absent).expect_err("no target");
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("RPC_NO_TARGET", "Target not connected: gamma")
    );
}

#[test]
fn rpc_to_the_server() {
    let mut net = Net::new();
    let a = net.client(client_config("alpha"));
    net.hub.as_mut().expect("hub").register_server_rpc("time");
    net.events(a);

    let health = net.clients[a]
        .conn
        .rpc(net.now, "server", "link.health", None, None)
        .expect("sent");
    let time = net.clients[a]
        .conn
        .rpc(
            net.now,
            "server",
            "time",
            Some(v(json!({"tz": "UTC"}))),
            None,
        )
        .expect("sent");
    let unknown = net.clients[a]
        .conn
        .rpc(net.now, "server", "nope", None, None)
        .expect("sent");
    net.run();
    let call = net
        .server_calls
        .pop_front()
        .expect("the application handler runs");
    assert_eq!(
        (call.from.as_str(), call.rpc_type.as_str()),
        ("alpha", "time")
    );
    assert_eq!(call.data, Some(v(json!({"tz": "UTC"}))));
    net.hub.as_mut().expect("hub").handle_input(
        net.now,
        hub::Input::ServerRpcDone {
            call: call.call,
            reply: ServerReply::Ok(Some(v(json!(12345)))),
        },
    );
    net.run();
    let events = net.events(a);
    let h = outcome(&events, health)
        .expect("built-in")
        .expect("a result");
    assert_eq!(h.get("peerCount"), Some(&v(json!(1))));
    assert_eq!(outcome(&events, time), Ok(Some(v(json!(12345)))));
    let e = outcome(&events, unknown).expect_err("no such server rpc");
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        ("RPC_UNKNOWN_TYPE", "Unknown server rpcType: nope")
    );
}

#[test]
fn an_rpc_cancelled_mid_flight_reaches_the_handler_as_a_cancel() {
    let mut net = Net::new();
    let a = net.client(client_config("alpha"));
    let b = net.client(handling("beta", &["slow"]));
    net.events(a);
    net.events(b);
    let call = net.clients[a]
        .conn
        .rpc(net.now, "beta", "slow", None, None)
        .expect("sent");
    net.run();
    let (req, _, _) = requests(&net.events(b))[0].clone();
    net.advance(Duration::from_millis(100));
    net.clients[a].conn.cancel_rpc(net.now, call);
    net.run();
    let e = outcome(&net.events(a), call).expect_err("aborted");
    assert_eq!(e.code(), "RPC_ABORT");
    assert!(net.events(b).contains(&ClientEvent::RpcCancelled {
        request: req,
        from: Some("alpha".into()),
        rpc_type: "slow".into(),
        reason: CancelReason::Caller,
    }));
    assert!(
        net.hub_events
            .iter()
            .any(|e| matches!(e, HubEvent::RpcCancelled { .. }))
    );
    // The handler finishes anyway: nothing reaches the caller.
    net.clients[b]
        .conn
        .respond(net.now, req, Ok(Some(v(json!("too late")))));
    net.run();
    let events = net.events(a);
    assert!(
        completions(&events).is_empty()
            && !events
                .iter()
                .any(|e| matches!(e, ClientEvent::LateResponse { .. }))
    );

    // A timeout cancels the same way.
    let call = net.clients[a]
        .conn
        .rpc(
            net.now,
            "beta",
            "slow",
            None,
            Some(Duration::from_millis(500)),
        )
        .expect("sent");
    net.run();
    let (req, _, _) = requests(&net.events(b))[0].clone();
    net.advance(Duration::from_millis(500));
    assert_eq!(
        outcome(&net.events(a), call).expect_err("timeout").code(),
        "RPC_TIMEOUT"
    );
    assert!(net.events(b).iter().any(|e| matches!(e,
        ClientEvent::RpcCancelled { request, reason: CancelReason::Caller, .. } if *request == req)));
}

#[test]
fn a_hub_restart_with_100_rpcs_pending_and_publishes_queued() {
    let mut net = Net::new();
    let mut ca = handling("alpha", &[]);
    // alpha comes back after beta, so beta's subscription is in place first.
    ca.reconnect_initial = Duration::from_millis(3_000);
    let a = net.client(ca);
    let b = net.client(handling("beta", &["work"]));
    net.clients[b]
        .conn
        .subscribe(net.now, "jobs")
        .expect("valid");
    net.run();
    net.events(a);
    net.events(b);

    let calls: Vec<RpcId> = (0..100)
        .map(|n| {
            net.clients[a]
                .conn
                .rpc(
                    net.now,
                    "beta",
                    "work",
                    Some(v(json!(n))),
                    Some(Duration::ZERO),
                )
                .expect("sent")
        })
        .collect();
    net.run();
    let inbound = requests(&net.events(b));
    assert_eq!(inbound.len(), 100);
    assert_eq!(net.c(a).health().pending_rpcs, 100);

    net.restart_hub();
    let events = net.events(a);
    let failed = completions(&events);
    assert_eq!(failed.len(), 100);
    assert!(failed.iter().all(|c| calls.contains(&c.id)
        && matches!(c.outcome, Err(RpcError::Disconnect { stopped: false, .. }))));
    assert_eq!(
        net.events(b)
            .iter()
            .filter(|e| matches!(
                e,
                ClientEvent::RpcCancelled {
                    reason: CancelReason::Disconnected,
                    ..
                }
            ))
            .count(),
        100
    );
    for n in 0..5 {
        net.clients[a]
            .conn
            .publish(net.now, "jobs", Some(v(json!(n))))
            .expect("queued while down");
    }
    assert_eq!(net.c(a).health().outbox_size, 5);

    for _ in 0..40 {
        if net.ready(a) && net.ready(b) {
            break;
        }
        net.advance(Duration::from_millis(500));
    }
    assert!(
        net.ready(a) && net.ready(b),
        "both reconnected to the new hub"
    );
    net.run();
    let got: Vec<Value> = net
        .events(b)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::TopicMessage {
                topic,
                from,
                payload,
            } => {
                assert_eq!((topic.as_str(), from.as_deref()), ("jobs", Some("alpha")));
                payload
            }
            _ => None,
        })
        .collect();
    assert_eq!(got, (0..5).map(|n| v(json!(n))).collect::<Vec<_>>());
    assert_eq!(net.c(a).health().outbox_size, 0);
    // Answers to requests from the dead hub's era go nowhere.
    for (req, _, _) in inbound {
        net.clients[b].conn.respond(net.now, req, Ok(None));
    }
    net.run();
    assert!(completions(&net.events(a)).is_empty());
    assert_eq!(net.c(b).health().in_flight_rpc, 0);
}

#[test]
fn subscriptions_come_back_after_a_reconnect() {
    let mut net = Net::new();
    let a = net.client(client_config("alpha"));
    let b = net.client(client_config("beta"));
    net.clients[b]
        .conn
        .subscribe(net.now, "news")
        .expect("valid");
    net.run();
    // beta's socket dies; the hub forgets its subscriptions.
    let socket = net.clients[b].socket.take().expect("connected");
    net.sockets.remove(&socket);
    let now = net.now;
    net.hub.as_mut().expect("hub").handle_input(
        now,
        hub::Input::Closed {
            conn: socket,
            code: Some(1006),
            reason: "",
        },
    );
    net.c(b).handle_input(
        now,
        Input::TransportDown {
            code: Some(1006),
            reason: "",
        },
    );
    net.run();
    net.clients[a]
        .conn
        .publish(net.now, "news", Some(v(json!("missed"))))
        .expect("sent");
    net.run();
    for _ in 0..20 {
        if net.ready(b) {
            break;
        }
        net.advance(Duration::from_millis(500));
    }
    assert!(net.ready(b));
    net.events(b);
    let list = net.clients[a]
        .conn
        .rpc(
            net.now,
            "server",
            "link.topic.list",
            Some(v(json!({"topic": "news"}))),
            None,
        )
        .expect("sent");
    net.clients[a]
        .conn
        .publish(net.now, "news", Some(v(json!("fresh"))))
        .expect("sent");
    net.run();
    let listed = outcome(&net.events(a), list).expect("listed");
    assert_eq!(
        listed,
        Some(v(json!({"topic": "news", "subscribers": ["beta"]})))
    );
    let got: Vec<_> = net
        .events(b)
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::TopicMessage { payload, .. } => payload,
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        vec![v(json!("fresh"))],
        "at-most-once: the message sent while away is lost"
    );
}

#[test]
fn a_displaced_duplicate_kind_stays_down() {
    let mut net = Net::new();
    let first = net.client(client_config("worker"));
    let watcher = net.client(client_config("watcher"));
    net.events(first);
    net.events(watcher);
    net.advance(Duration::from_secs(1));
    let second = net.client(client_config("worker"));
    assert!(net.ready(second));
    let events = net.events(first);
    assert!(
        events.iter().any(|e| matches!(e,
        ClientEvent::Disconnected(d) if d.displaced && d.code == Some(4000) && !d.will_reconnect)),
        "{events:?}"
    );
    assert!(events.contains(&ClientEvent::Stopped));
    net.advance(Duration::from_secs(120));
    assert!(!net.ready(first) && net.c(first).health().stopped);
    assert!(net.ready(second), "the newcomer keeps the kind");
    assert!(
        net.events(watcher)
            .iter()
            .any(|e| matches!(e, ClientEvent::PeerReplaced { kind, .. } if kind == "worker"))
    );
    let workers = net
        .c(watcher)
        .peers()
        .filter(|p| p.kind == "worker")
        .count();
    assert_eq!(workers, 1);
}

#[test]
fn direct_messages_and_statuses_flow_between_peers() {
    let mut net = Net::new();
    let mut ca = client_config("alpha");
    ca.make_status = true;
    let a = net.client(ca);
    let b = net.client(client_config("beta"));
    assert!(net.events(a).contains(&ClientEvent::StatusWanted));
    net.clients[a]
        .conn
        .push_status(net.now, Some(v(json!({"load": 0.5}))))
        .expect("sent");
    net.clients[a]
        .conn
        .send(net.now, "beta", "hint", Some(v(json!([1]))))
        .expect("sent");
    net.run();
    let events = net.events(b);
    assert!(events.contains(&ClientEvent::PeerStatus {
        from: "alpha".into(),
        status: Some(v(json!({"load": 0.5}))),
        at: net.now.ms()
    }));
    assert!(events.contains(&ClientEvent::Direct {
        from: Some("alpha".into()),
        direct_type: "hint".into(),
        data: Some(v(json!([1])))
    }));
    // A late joiner learns alpha's status from the snapshot.
    let c = net.client(client_config("gamma"));
    assert_eq!(
        net.c(c).peer_status("alpha").and_then(|s| s.status.clone()),
        Some(v(json!({"load": 0.5})))
    );
    // Keepalives on both sides keep everyone connected over time.
    net.advance(Duration::from_secs(300));
    assert!(net.ready(a) && net.ready(b) && net.ready(c));
}
