//! The typed view of every message type in PROTOCOL.md §4.
//!
//! Fields hold the values exactly as they arrived (`Option<Value>`: absent, or any
//! JSON), because the hub forwards them verbatim and the reference coerces them late;
//! accessors give the typed reading. Constructors build what this side sends.

use super::json::{self, JsString, Object, Value};

/// Every link message type. `data` layouts follow PROTOCOL.md §4.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// `hello` (client → hub).
    Hello(Hello),
    /// `hello.ack` (hub → client).
    HelloAck(HelloAck),
    /// `peers.update` (hub → client).
    PeersUpdate(PeersUpdate),
    /// `status.snapshot` (hub → new client).
    StatusSnapshot(StatusSnapshot),
    /// `status.update`: the status itself from a client, `{from, status, at}` from the hub.
    StatusUpdate(StatusUpdate),
    /// `rpc.request`.
    RpcRequest(RpcRequest),
    /// `rpc.response`.
    RpcResponse(RpcResponse),
    /// `rpc.cancel`.
    RpcCancel(RpcCancel),
    /// `topic.subscribe`.
    TopicSubscribe(TopicSubscribe),
    /// `topic.unsubscribe`.
    TopicUnsubscribe(TopicUnsubscribe),
    /// `topic.message`.
    TopicMessage(TopicMessage),
    /// `direct`.
    Direct(Direct),
    /// Any other type: verified, then ignored by the hub (PROTOCOL.md §4).
    Other {
        /// The `type` field, if it was a string.
        msg_type: Option<JsString>,
        /// The payload.
        data: Option<Value>,
    },
}

/// Wire names of the message types.
pub mod types {
    /// `hello`
    pub const HELLO: &str = "hello";
    /// `hello.ack`
    pub const HELLO_ACK: &str = "hello.ack";
    /// `peers.update`
    pub const PEERS_UPDATE: &str = "peers.update";
    /// `status.snapshot`
    pub const STATUS_SNAPSHOT: &str = "status.snapshot";
    /// `status.update`
    pub const STATUS_UPDATE: &str = "status.update";
    /// `rpc.request`
    pub const RPC_REQUEST: &str = "rpc.request";
    /// `rpc.response`
    pub const RPC_RESPONSE: &str = "rpc.response";
    /// `rpc.cancel`
    pub const RPC_CANCEL: &str = "rpc.cancel";
    /// `topic.subscribe`
    pub const TOPIC_SUBSCRIBE: &str = "topic.subscribe";
    /// `topic.unsubscribe`
    pub const TOPIC_UNSUBSCRIBE: &str = "topic.unsubscribe";
    /// `topic.message`
    pub const TOPIC_MESSAGE: &str = "topic.message";
    /// `direct`
    pub const DIRECT: &str = "direct";
}

fn field(data: Option<&Value>, key: &str) -> Option<Value> {
    data.and_then(|d| d.get(key)).cloned()
}

fn take(data: &mut Option<Value>, key: &str) -> Option<Value> {
    match data {
        Some(Value::Object(o)) => o.remove(key),
        _ => None,
    }
}

impl Message {
    /// Builds the typed view from an envelope's `type` and `data`.
    pub fn from_parts(msg_type: Option<&JsString>, data: Option<Value>) -> Message {
        let mut data = data;
        let d = &mut data;
        let Some(t) = msg_type.and_then(JsString::as_str) else {
            return Message::Other {
                msg_type: msg_type.cloned(),
                data,
            };
        };
        match t {
            types::HELLO => Message::Hello(Hello { data }),
            types::HELLO_ACK => Message::HelloAck(HelloAck { data }),
            types::PEERS_UPDATE => Message::PeersUpdate(PeersUpdate { data }),
            types::STATUS_SNAPSHOT => Message::StatusSnapshot(StatusSnapshot { data }),
            types::STATUS_UPDATE => Message::StatusUpdate(StatusUpdate { data }),
            types::RPC_REQUEST => Message::RpcRequest(RpcRequest {
                rpc_type: take(d, "rpcType"),
                rpc_data: take(d, "rpcData"),
            }),
            types::RPC_RESPONSE => Message::RpcResponse(RpcResponse { data }),
            types::RPC_CANCEL => Message::RpcCancel(RpcCancel { id: take(d, "id") }),
            types::TOPIC_SUBSCRIBE => Message::TopicSubscribe(TopicSubscribe {
                topic: take(d, "topic"),
            }),
            types::TOPIC_UNSUBSCRIBE => Message::TopicUnsubscribe(TopicUnsubscribe {
                topic: take(d, "topic"),
            }),
            types::TOPIC_MESSAGE => Message::TopicMessage(TopicMessage {
                topic: take(d, "topic"),
                payload: take(d, "payload"),
            }),
            types::DIRECT => Message::Direct(Direct {
                direct_type: take(d, "directType"),
                direct_data: take(d, "directData"),
            }),
            _ => Message::Other {
                msg_type: msg_type.cloned(),
                data,
            },
        }
    }

    /// The wire `type` of this message (`""` for an [`Message::Other`] without a
    /// string type).
    pub fn msg_type(&self) -> &str {
        match self {
            Message::Hello(_) => types::HELLO,
            Message::HelloAck(_) => types::HELLO_ACK,
            Message::PeersUpdate(_) => types::PEERS_UPDATE,
            Message::StatusSnapshot(_) => types::STATUS_SNAPSHOT,
            Message::StatusUpdate(_) => types::STATUS_UPDATE,
            Message::RpcRequest(_) => types::RPC_REQUEST,
            Message::RpcResponse(_) => types::RPC_RESPONSE,
            Message::RpcCancel(_) => types::RPC_CANCEL,
            Message::TopicSubscribe(_) => types::TOPIC_SUBSCRIBE,
            Message::TopicUnsubscribe(_) => types::TOPIC_UNSUBSCRIBE,
            Message::TopicMessage(_) => types::TOPIC_MESSAGE,
            Message::Direct(_) => types::DIRECT,
            Message::Other { msg_type, .. } => {
                msg_type.as_ref().and_then(JsString::as_str).unwrap_or("")
            }
        }
    }

    /// Appends the canonical `data` to `out`; returns `false` (writing nothing) when
    /// the message has no `data` field.
    pub fn write_data(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Message::Hello(Hello { data })
            | Message::HelloAck(HelloAck { data })
            | Message::PeersUpdate(PeersUpdate { data })
            | Message::StatusSnapshot(StatusSnapshot { data })
            | Message::StatusUpdate(StatusUpdate { data })
            | Message::RpcResponse(RpcResponse { data })
            | Message::Other { data, .. } => match data {
                Some(d) => {
                    json::write_canonical(d, out);
                    true
                }
                None => false,
            },
            Message::RpcRequest(r) => {
                write_members(
                    &[
                        ("rpcData", r.rpc_data.as_ref()),
                        ("rpcType", r.rpc_type.as_ref()),
                    ],
                    out,
                );
                true
            }
            Message::RpcCancel(c) => {
                write_members(&[("id", c.id.as_ref())], out);
                true
            }
            Message::TopicSubscribe(TopicSubscribe { topic })
            | Message::TopicUnsubscribe(TopicUnsubscribe { topic }) => {
                write_members(&[("topic", topic.as_ref())], out);
                true
            }
            Message::TopicMessage(m) => {
                write_members(
                    &[("payload", m.payload.as_ref()), ("topic", m.topic.as_ref())],
                    out,
                );
                true
            }
            Message::Direct(m) => {
                write_members(
                    &[
                        ("directData", m.direct_data.as_ref()),
                        ("directType", m.direct_type.as_ref()),
                    ],
                    out,
                );
                true
            }
        }
    }
}

/// Writes an object whose keys are given already in canonical order; absent values
/// are omitted like JavaScript's `undefined`.
pub fn write_members(members: &[(&str, Option<&Value>)], out: &mut Vec<u8>) {
    debug_assert!(
        members.windows(2).all(|w| w[0].0 < w[1].0),
        "keys must be in canonical order"
    );
    out.push(b'{');
    let mut first = true;
    for (k, v) in members {
        let Some(v) = v else { continue };
        if !first {
            out.push(b',');
        }
        first = false;
        json::write_string(k.as_bytes(), out);
        out.push(b':');
        json::write_canonical(v, out);
    }
    out.push(b'}');
}

fn object(members: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(Object::from_members(
        members
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (JsString::from(k), v)))
            .collect(),
    ))
}

fn string_of(v: Option<&Value>) -> Option<&JsString> {
    v.and_then(Value::as_js_string)
}

/// `hello` data: `{kind, name, pid, startedAt}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    /// The payload as received; see [`super::validate::sanitize_hello`].
    pub data: Option<Value>,
}

/// A peer's self-description, as the hub stores and broadcasts it after sanitising.
#[derive(Debug, Clone, PartialEq)]
pub struct HelloInfo {
    /// The peer's kind.
    pub kind: String,
    /// Free-form display name (at most 256 UTF-16 units).
    pub name: JsString,
    /// Process id, if the peer sent a finite number.
    pub pid: Option<f64>,
    /// Start time in ms since epoch, if the peer sent a finite number.
    pub started_at: Option<f64>,
}

impl HelloInfo {
    /// The wire form `{kind, name, pid, startedAt}` (absent numbers are `null`).
    pub fn to_value(&self) -> Value {
        object(vec![
            ("kind", Some(Value::from(self.kind.as_str()))),
            ("name", Some(Value::String(self.name.clone()))),
            ("pid", Some(Value::from(self.pid))),
            ("startedAt", Some(Value::from(self.started_at))),
        ])
    }

    /// Reads a hello object leniently (a peer entry's `hello` in `peers.update`).
    pub fn from_value(v: &Value) -> Option<HelloInfo> {
        Some(HelloInfo {
            kind: v.get("kind")?.as_str()?.to_owned(),
            name: v
                .get("name")
                .and_then(Value::as_js_string)
                .cloned()
                .unwrap_or_default(),
            pid: v.get("pid").and_then(Value::as_f64),
            started_at: v.get("startedAt").and_then(Value::as_f64),
        })
    }
}

impl Hello {
    /// The hello a client sends.
    pub fn new(info: &HelloInfo) -> Hello {
        Hello {
            data: Some(info.to_value()),
        }
    }
}

/// `hello.ack` data: `{ok, serverTime, kind, features}`.
#[derive(Debug, Clone, PartialEq)]
pub struct HelloAck {
    /// The payload as received.
    pub data: Option<Value>,
}

impl HelloAck {
    /// The acknowledgement the hub sends.
    pub fn new(server_time: f64, kind: &str, features: &[&str]) -> HelloAck {
        HelloAck {
            data: Some(object(vec![
                ("ok", Some(Value::Bool(true))),
                ("serverTime", Some(Value::Number(server_time))),
                ("kind", Some(Value::from(kind))),
                (
                    "features",
                    Some(Value::Array(
                        features.iter().map(|f| Value::from(*f)).collect(),
                    )),
                ),
            ])),
        }
    }

    /// Whether the hub accepted the hello: `data.ok` is not `false`.
    pub fn ok(&self) -> bool {
        self.data.as_ref().and_then(|d| d.get("ok")) != Some(&Value::Bool(false))
    }

    /// The hub's clock at acknowledgement, if given.
    pub fn server_time(&self) -> Option<f64> {
        field(self.data.as_ref(), "serverTime").and_then(|v| v.as_f64())
    }

    /// The features the hub advertises (`[]` when missing or not an array).
    pub fn features(&self) -> Vec<String> {
        self.data
            .as_ref()
            .and_then(|d| d.get("features"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One entry of `peers.update`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerEntry {
    /// The peer's kind.
    pub kind: String,
    /// Its sanitised hello.
    pub hello: HelloInfo,
    /// When it authenticated (hub ms since epoch).
    pub connected_at: f64,
    /// Always `true` from the reference hub.
    pub connected: bool,
}

impl PeerEntry {
    fn to_value(&self) -> Value {
        object(vec![
            ("kind", Some(Value::from(self.kind.as_str()))),
            ("hello", Some(self.hello.to_value())),
            ("connectedAt", Some(Value::Number(self.connected_at))),
            ("connected", Some(Value::Bool(self.connected))),
        ])
    }
}

/// `peers.update` data: `{peers: [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeersUpdate {
    /// The payload as received.
    pub data: Option<Value>,
}

impl PeersUpdate {
    /// The update the hub broadcasts.
    pub fn new(peers: &[PeerEntry]) -> PeersUpdate {
        PeersUpdate {
            data: Some(object(vec![(
                "peers",
                Some(Value::Array(
                    peers.iter().map(PeerEntry::to_value).collect(),
                )),
            )])),
        }
    }

    /// The entries, skipping any without a string kind.
    pub fn peers(&self) -> Vec<PeerEntry> {
        let Some(list) = self
            .data
            .as_ref()
            .and_then(|d| d.get("peers"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|p| {
                let kind = p.get("kind")?.as_str()?.to_owned();
                let hello = p
                    .get("hello")
                    .and_then(HelloInfo::from_value)
                    .unwrap_or_else(|| HelloInfo {
                        kind: kind.clone(),
                        name: JsString::default(),
                        pid: None,
                        started_at: None,
                    });
                Some(PeerEntry {
                    kind,
                    hello,
                    connected_at: p.get("connectedAt").and_then(Value::as_f64).unwrap_or(0.0),
                    connected: p.get("connected").is_some_and(Value::is_truthy),
                })
            })
            .collect()
    }
}

/// A retained status: `{status, at}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEntry {
    /// The status value (absent when the peer sent none).
    pub status: Option<Value>,
    /// Hub time it was received (ms since epoch).
    pub at: f64,
}

/// `status.snapshot` data: `{ <kind>: {status, at}, ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSnapshot {
    /// The payload as received.
    pub data: Option<Value>,
}

impl StatusSnapshot {
    /// The snapshot the hub sends a newcomer.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a StatusEntry)>,
    ) -> StatusSnapshot {
        let members = entries
            .into_iter()
            .map(|(kind, e)| {
                (
                    JsString::from(kind),
                    object(vec![
                        ("status", e.status.clone()),
                        ("at", Some(Value::Number(e.at))),
                    ]),
                )
            })
            .collect();
        StatusSnapshot {
            data: Some(Value::Object(Object::from_members(members))),
        }
    }

    /// The entries, skipping malformed ones.
    pub fn entries(&self) -> Vec<(String, StatusEntry)> {
        let Some(obj) = self.data.as_ref().and_then(Value::as_object) else {
            return Vec::new();
        };
        obj.iter()
            .filter_map(|(k, v)| {
                let o = v.as_object()?;
                Some((
                    k.as_str()?.to_owned(),
                    StatusEntry {
                        status: o.get("status").cloned(),
                        at: o.get("at").and_then(Value::as_f64).unwrap_or(0.0),
                    },
                ))
            })
            .collect()
    }
}

/// `status.update` data: the status itself (client → hub) or `{from, status, at}`
/// (hub relay).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The payload as received.
    pub data: Option<Value>,
}

/// A relayed status update, read from the hub's `{from, status, at}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRelay {
    /// The peer whose status this is.
    pub from: String,
    /// Its status (absent when the peer sent none).
    pub status: Option<Value>,
    /// Hub time the status was received.
    pub at: f64,
}

impl StatusUpdate {
    /// A client's own status.
    pub fn new(status: Option<Value>) -> StatusUpdate {
        StatusUpdate { data: status }
    }

    /// The hub's relay of `from`'s status.
    pub fn relay(from: &str, status: Option<Value>, at: f64) -> StatusUpdate {
        StatusUpdate {
            data: Some(object(vec![
                ("from", Some(Value::from(from))),
                ("status", status),
                ("at", Some(Value::Number(at))),
            ])),
        }
    }

    /// Reads the payload as a hub relay.
    pub fn as_relay(&self) -> Option<StatusRelay> {
        let d = self.data.as_ref()?.as_object()?;
        Some(StatusRelay {
            from: d.get("from")?.as_str()?.to_owned(),
            status: d.get("status").cloned(),
            at: d.get("at").and_then(Value::as_f64).unwrap_or(0.0),
        })
    }
}

/// `rpc.request` data: `{rpcType, rpcData}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcRequest {
    /// The RPC type as received.
    pub rpc_type: Option<Value>,
    /// The request payload.
    pub rpc_data: Option<Value>,
}

impl RpcRequest {
    /// A request of `rpc_type` with optional data.
    pub fn new(rpc_type: &str, rpc_data: Option<Value>) -> RpcRequest {
        RpcRequest {
            rpc_type: Some(Value::from(rpc_type)),
            rpc_data,
        }
    }

    /// The RPC type, if it is a string.
    pub fn rpc_type_str(&self) -> Option<&JsString> {
        string_of(self.rpc_type.as_ref())
    }
}

/// `rpc.response` data: `{ok:true, result}` or `{ok:false, error, code, data?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcResponse {
    /// The payload as received (the hub forwards it verbatim).
    pub data: Option<Value>,
}

/// The reading of an `rpc.response` that a caller acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcReply {
    /// `ok` was truthy: the result (absent when the handler returned nothing).
    Ok(Option<Value>),
    /// The remote failed.
    Err(RemoteError),
}

/// A structured error carried by an `rpc.response`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError {
    /// Stable error code (`RPC_REMOTE` when the reply had none).
    pub code: String,
    /// Human-readable message (`RPC error` when the reply had none).
    pub message: String,
    /// Structured details, if any.
    pub data: Option<Value>,
}

impl RpcResponse {
    /// A success reply; `None` omits `result` (a handler that returned nothing).
    pub fn ok(result: Option<Value>) -> RpcResponse {
        RpcResponse {
            data: Some(object(vec![
                ("ok", Some(Value::Bool(true))),
                ("result", result),
            ])),
        }
    }

    /// An error reply.
    pub fn err(code: &str, message: &str, data: Option<Value>) -> RpcResponse {
        Self::err_js(code, JsString::from(message), data)
    }

    /// [`RpcResponse::err`] with a message that may hold lone surrogates (one that
    /// echoes a peer's string exactly, as the reference's template strings do).
    pub fn err_js(code: &str, message: JsString, data: Option<Value>) -> RpcResponse {
        RpcResponse {
            data: Some(object(vec![
                ("ok", Some(Value::Bool(false))),
                ("error", Some(Value::String(message))),
                ("code", Some(Value::from(code))),
                ("data", data),
            ])),
        }
    }

    /// How the reference client reads the reply.
    pub fn reply(&self) -> RpcReply {
        let d = self.data.as_ref();
        if d.and_then(|d| d.get("ok")).is_some_and(Value::is_truthy) {
            return RpcReply::Ok(field(d, "result"));
        }
        let text = |key, default: &str| {
            d.and_then(|d| d.get(key))
                .filter(|v| v.is_truthy())
                .map(|v| super::envelope::js_string_of(v).to_string_lossy())
                .unwrap_or_else(|| default.to_owned())
        };
        RpcReply::Err(RemoteError {
            code: text("code", "RPC_REMOTE"),
            message: text("error", "RPC error"),
            data: field(d, "data"),
        })
    }
}

/// `rpc.cancel` data: `{id: <request id>}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcCancel {
    /// The id of the request to cancel, as received.
    pub id: Option<Value>,
}

impl RpcCancel {
    /// A cancel for request `id`.
    pub fn new(id: &str) -> RpcCancel {
        RpcCancel {
            id: Some(Value::from(id)),
        }
    }

    /// The request id, if a non-empty string.
    pub fn id_str(&self) -> Option<&JsString> {
        string_of(self.id.as_ref()).filter(|s| !s.is_empty())
    }
}

/// `topic.subscribe` data: `{topic}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSubscribe {
    /// The topic as received.
    pub topic: Option<Value>,
}

/// `topic.unsubscribe` data: `{topic}` (missing or empty: every topic).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicUnsubscribe {
    /// The topic as received.
    pub topic: Option<Value>,
}

/// `topic.message` data: `{topic, payload}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMessage {
    /// The topic as received.
    pub topic: Option<Value>,
    /// The payload.
    pub payload: Option<Value>,
}

/// `direct` data: `{directType, directData}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Direct {
    /// The application's message type, as received.
    pub direct_type: Option<Value>,
    /// The payload.
    pub direct_data: Option<Value>,
}

impl Direct {
    /// The direct type, if it is a non-empty string.
    pub fn direct_type_str(&self) -> Option<&JsString> {
        string_of(self.direct_type.as_ref()).filter(|s| !s.is_empty())
    }
}
