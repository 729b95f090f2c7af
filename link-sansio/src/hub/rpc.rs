//! RPC routing (PROTOCOL.md §7): `rpc.request` forwarded to a peer or run as a server
//! RPC (application handler or the built-ins `link.topic.list` and `link.health`),
//! every hub-made error reply, `rpc.response` forwarding and `rpc.cancel`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::acl::{WaitingRpc, value_text};
use super::{ConnId, HubEvent, HubState, Output, ServerCall, ServerCallId, ServerReply};
use crate::seeded::SeededState;
use crate::wire::envelope::js_string_of;
use crate::wire::message::{Message, RpcCancel, RpcRequest, RpcResponse, types, write_members};
use crate::wire::validate::check_json_safe;
use crate::wire::{JsString, Object, Value};

/// Reply codes and texts of hub-made errors (PROTOCOL.md §7.1).
pub mod codes {
    /// `to` missing.
    pub const BAD_REQUEST: &str = "RPC_BAD_REQUEST";
    /// Target not connected.
    pub const NO_TARGET: &str = "RPC_NO_TARGET";
    /// Target's outbox refused the request.
    pub const TARGET_UNAVAILABLE: &str = "RPC_TARGET_UNAVAILABLE";
    /// No server handler.
    pub const UNKNOWN_TYPE: &str = "RPC_UNKNOWN_TYPE";
    /// Too many server RPCs in flight.
    pub const OVERLOADED: &str = "RPC_OVERLOADED";
    /// The server handler failed.
    pub const HANDLER_ERROR: &str = "RPC_HANDLER_ERROR";
    /// The server handler's result is not JSON.
    pub const NOT_SERIALIZABLE: &str = "RPC_RESULT_NOT_SERIALIZABLE";
}

const INTERNAL_ERROR: &str = "Internal handler error";
const TOPIC_LIST: &str = "link.topic.list";
const HEALTH: &str = "link.health";

/// Application server RPC types, which take precedence over built-ins.
#[derive(Debug)]
pub(super) struct ServerHandlers {
    registered: HashSet<String, SeededState>,
    pub catch_all: bool,
}

impl ServerHandlers {
    pub fn new(hasher: SeededState) -> Self {
        Self {
            registered: HashSet::with_hasher(hasher),
            catch_all: false,
        }
    }

    pub fn register(&mut self, rpc_type: &str) {
        self.registered.insert(rpc_type.to_owned());
    }

    pub fn unregister(&mut self, rpc_type: &str) {
        self.registered.remove(rpc_type);
    }
}

/// Who answers a server RPC.
enum Handler {
    App,
    TopicList,
    Health,
}

/// A server RPC in flight.
#[derive(Debug)]
struct Call {
    conn: ConnId,
    kind: String,
    request_id: JsString,
    rpc_type: String,
    started: Instant,
}

/// Server RPCs in flight.
#[derive(Debug)]
pub(super) struct ServerCalls {
    calls: HashMap<ServerCallId, Call, SeededState>,
    next_id: u64,
}

impl ServerCalls {
    pub fn new(hasher: SeededState) -> Self {
        Self {
            calls: HashMap::with_hasher(hasher),
            next_id: 0,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.calls.len()
    }
}

impl HubState {
    /// `rpc.request` from peer `kind` on `conn`.
    pub(super) fn on_rpc_request(
        &mut self,
        conn: ConnId,
        kind: &str,
        id: JsString,
        to: Option<JsString>,
        request: RpcRequest,
        len: usize,
    ) {
        // No `to` is the empty string here; as in the reference, `canRpc` is asked
        // first, and only an allowed request is refused for it.
        let to = to.unwrap_or_default();
        if self.config.acl.rpc {
            self.ask_rpc(WaitingRpc {
                conn,
                kind: kind.to_owned(),
                id,
                to,
                rpc_type: request.rpc_type,
                rpc_data: request.rpc_data,
                bytes: len,
            });
            return;
        }
        self.route_rpc(conn, kind, id, to, request.rpc_type, request.rpc_data);
    }

    /// An allowed `rpc.request`: to the server, or forwarded with the caller's id.
    pub(super) fn route_rpc(
        &mut self,
        conn: ConnId,
        kind: &str,
        id: JsString,
        to: JsString,
        rpc_type: Option<Value>,
        rpc_data: Option<Value>,
    ) {
        if to == "server" {
            self.server_rpc(conn, kind, id, rpc_type, rpc_data);
            return;
        }
        if to.is_empty() {
            self.reply_error(conn, &id, codes::BAD_REQUEST, "rpc.request missing \"to\"");
            return;
        }
        // A `to` with a lone surrogate is no kind; the error echoes it exactly.
        let target = to
            .as_str()
            .and_then(|to| self.peers.get(to))
            .map(|p| p.conn);
        let Some(target) = target else {
            let message = JsString::joined(b"Target not connected:", b' ', &to);
            self.reply(
                conn,
                &id,
                &RpcResponse::err_js(codes::NO_TARGET, message, None),
            );
            return;
        };
        let mut data = std::mem::take(&mut self.data_buf);
        data.clear();
        write_members(
            &[
                ("rpcData", rpc_data.as_ref()),
                ("rpcType", rpc_type.as_ref()),
            ],
            &mut data,
        );
        let sent = self.send(
            target,
            types::RPC_REQUEST,
            Some(&id),
            Some(kind),
            Some(&data),
            None,
            None,
        );
        self.data_buf = data;
        if !sent.ok() {
            self.reply_error(
                conn,
                &id,
                codes::TARGET_UNAVAILABLE,
                &format!("Target backpressured or send failed: {to}"),
            );
            return;
        }
        if self.frame_events {
            self.emit(HubEvent::RpcForwarded {
                id,
                from: kind.to_owned(),
                to: to.to_string_lossy(),
                rpc_type: value_text(rpc_type.as_ref()),
            });
        }
    }

    /// Sends an `ok:false` reply from `"server"` to the caller.
    pub(super) fn reply_error(&mut self, conn: ConnId, id: &JsString, code: &str, message: &str) {
        self.reply(conn, id, &RpcResponse::err(code, message, None));
    }

    fn reply(&mut self, conn: ConnId, id: &JsString, response: &RpcResponse) {
        let mut data = std::mem::take(&mut self.data_buf);
        data.clear();
        Message::RpcResponse(response.clone()).write_data(&mut data);
        self.send(
            conn,
            types::RPC_RESPONSE,
            Some(id),
            Some("server"),
            Some(&data),
            None,
            None,
        );
        self.data_buf = data;
    }

    fn server_rpc(
        &mut self,
        conn: ConnId,
        kind: &str,
        id: JsString,
        rpc_type: Option<Value>,
        rpc_data: Option<Value>,
    ) {
        let type_js = match &rpc_type {
            Some(v) => js_string_of(v),
            None => JsString::from("undefined"),
        };
        // Handlers are looked up by `String(rpcType)`, as a JavaScript property is (a
        // lone surrogate matches no handler's name).
        let handler = match type_js.as_str() {
            Some(t) if self.server_rpc.registered.contains(t) => Some(Handler::App),
            Some(TOPIC_LIST) => Some(Handler::TopicList),
            Some(HEALTH) => Some(Handler::Health),
            _ if self.server_rpc.catch_all => Some(Handler::App),
            _ => None,
        };
        let Some(handler) = handler else {
            let message = JsString::joined(b"Unknown server rpcType:", b' ', &type_js);
            self.reply(
                conn,
                &id,
                &RpcResponse::err_js(codes::UNKNOWN_TYPE, message, None),
            );
            return;
        };
        let type_text = type_js.to_string_lossy();
        let max = self.config.max_concurrent_rpc;
        if max > 0 && self.rpc.in_flight() >= max {
            self.reply_error(
                conn,
                &id,
                codes::OVERLOADED,
                "Server overloaded - too many concurrent RPCs",
            );
            return;
        }
        self.rpc.next_id += 1;
        let call = ServerCallId(self.rpc.next_id);
        self.rpc.calls.insert(
            call,
            Call {
                conn,
                kind: kind.to_owned(),
                request_id: id.clone(),
                rpc_type: type_text.clone(),
                started: self.now.instant,
            },
        );
        let reply = match handler {
            Handler::App => {
                self.outputs.push_back(Output::ServerRpc(ServerCall {
                    call,
                    from: kind.to_owned(),
                    rpc_type: type_text,
                    data: rpc_data,
                    request_id: id,
                }));
                return;
            }
            Handler::TopicList => self.topic_list(rpc_data.as_ref()),
            Handler::Health => ServerReply::Ok(Some(self.health().to_value())),
        };
        self.on_server_rpc_done(call, reply);
    }

    /// The built-in `link.topic.list`.
    fn topic_list(&self, rpc_data: Option<&Value>) -> ServerReply {
        if rpc_data == Some(&Value::Null) {
            // The reference destructures `rpcData`, which throws on null.
            return ServerReply::Err {
                code: None,
                message: "Cannot destructure property 'topic' of 'rpcData' as it is null."
                    .to_owned(),
                data: None,
                expose: false,
            };
        }
        let kinds =
            |list: &[String]| Value::Array(list.iter().map(|k| Value::from(k.as_str())).collect());
        let object = |members: Vec<(&str, Value)>| {
            Value::Object(Object::from_members(
                members
                    .into_iter()
                    .map(|(k, v)| (JsString::from(k), v))
                    .collect(),
            ))
        };
        let topic = rpc_data
            .and_then(|d| d.get("topic"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let result = match topic {
            Some(topic) => object(vec![
                ("topic", Value::from(topic)),
                ("subscribers", kinds(self.topics.subscribers(topic))),
            ]),
            None => object(vec![(
                "topics",
                Value::Array(
                    self.topics
                        .list()
                        .into_iter()
                        .map(|(t, subs)| {
                            object(vec![
                                ("topic", Value::from(t)),
                                ("subscribers", kinds(subs)),
                            ])
                        })
                        .collect(),
                ),
            )]),
        };
        ServerReply::Ok(Some(result))
    }

    pub(super) fn on_server_rpc_done(&mut self, call: ServerCallId, reply: ServerReply) {
        let Some(info) = self.rpc.calls.remove(&call) else {
            return;
        };
        let expose_all = self.config.expose_rpc_errors;
        let internal = || RpcResponse::err(codes::HANDLER_ERROR, INTERNAL_ERROR, None);
        let not_serializable = || {
            RpcResponse::err(
                codes::NOT_SERIALIZABLE,
                "RPC handler returned a non-serializable result",
                None,
            )
        };
        let response = match reply {
            ServerReply::Ok(result) => {
                if result.as_ref().is_some_and(has_non_finite) {
                    not_serializable()
                } else {
                    RpcResponse::ok(result)
                }
            }
            ServerReply::Err {
                code,
                message,
                data,
                expose,
            } => {
                if expose || expose_all {
                    let code = code
                        .filter(|c| !c.is_empty())
                        .unwrap_or_else(|| codes::HANDLER_ERROR.to_owned());
                    let data = data.filter(|d| check_json_safe(d).is_ok());
                    RpcResponse::err(&code, &message, data)
                } else {
                    internal()
                }
            }
            ServerReply::NotSerializable => not_serializable(),
            ServerReply::Panicked => internal(),
        };
        let (ok, error) = match response.reply() {
            crate::wire::message::RpcReply::Ok(_) => (true, None),
            crate::wire::message::RpcReply::Err(e) => (false, Some(e.message)),
        };
        // Only the socket that asked gets the answer; a replaced socket gets nothing.
        if self.is_current(info.conn, &info.kind) {
            self.reply(info.conn, &info.request_id, &response);
        }
        let duration = self
            .now
            .instant
            .checked_duration_since(info.started)
            .unwrap_or(Duration::ZERO);
        self.emit(HubEvent::RpcServer {
            id: info.request_id,
            from: info.kind,
            rpc_type: info.rpc_type,
            ok,
            error,
            duration,
        });
    }

    /// `rpc.response` from peer `kind`: forwarded verbatim to `to` if connected.
    pub(super) fn on_rpc_response(
        &mut self,
        kind: &str,
        id: JsString,
        to: Option<JsString>,
        response: RpcResponse,
    ) {
        let Some(to) = to.filter(|t| !t.is_empty()) else {
            return;
        };
        // A `to` with a lone surrogate is no kind.
        let Some(target) = to.as_str().and_then(|t| self.peers.get(t)).map(|p| p.conn) else {
            return;
        };
        let mut data = std::mem::take(&mut self.data_buf);
        data.clear();
        if let Some(d) = &response.data {
            crate::wire::json::write_canonical(d, &mut data);
        }
        let sent = self.send(
            target,
            types::RPC_RESPONSE,
            Some(&id),
            Some(kind),
            response.data.is_some().then_some(data.as_slice()),
            None,
            None,
        );
        self.data_buf = data;
        if sent.ok() && self.frame_events {
            let ok = response
                .data
                .as_ref()
                .and_then(|d| d.get("ok"))
                .is_some_and(Value::is_truthy);
            self.emit(HubEvent::RpcResponseForwarded {
                id,
                from: kind.to_owned(),
                to: to.to_string_lossy(),
                ok,
            });
        }
    }

    /// `rpc.cancel` from peer `kind`: drop the request from the target's outbox if it
    /// is still queued there, else forward the cancel.
    pub(super) fn on_rpc_cancel(&mut self, kind: &str, to: Option<JsString>, cancel: RpcCancel) {
        let Some(request_id) = cancel.id_str().cloned() else {
            return;
        };
        let Some(to) = to.filter(|t| !t.is_empty()) else {
            return;
        };
        let to = to.to_string_lossy();
        if to == "server" {
            return;
        }
        let target = self.peers.get(&to).map(|p| p.conn);
        let found = target
            .and_then(|t| self.conns.get_mut(&t))
            .is_some_and(|c| c.outbox.remove_request(&request_id, kind));
        let mut forwarded = false;
        if let (false, Some(target)) = (found, target) {
            let mut data = std::mem::take(&mut self.data_buf);
            data.clear();
            let id_value = Value::String(request_id.clone());
            write_members(&[("id", Some(&id_value))], &mut data);
            forwarded = self
                .send(
                    target,
                    types::RPC_CANCEL,
                    None,
                    Some(kind),
                    Some(&data),
                    None,
                    None,
                )
                .ok();
            self.data_buf = data;
        }
        self.emit(HubEvent::RpcCancelled {
            id: request_id,
            from: kind.to_owned(),
            to,
            found,
            forwarded,
        });
    }
}

/// Whether a result holds NaN or ±Infinity, which JSON cannot carry faithfully.
fn has_non_finite(v: &Value) -> bool {
    match v {
        Value::Number(n) => !n.is_finite(),
        Value::Array(items) => items.iter().any(has_non_finite),
        Value::Object(o) => o.iter().any(|(_, v)| has_non_finite(v)),
        _ => false,
    }
}
