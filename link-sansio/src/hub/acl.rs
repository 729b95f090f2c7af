//! ACL gates (PROTOCOL.md §12): questions put to the application's hooks, the RPCs
//! and per-socket lane of publish / subscribe / direct waiting for answers (the lane
//! keeps one socket's gated messages in arrival order), and fail-closed denials.

use std::collections::{HashMap, VecDeque};

use super::{
    AclCheck, AclCheckId, AclDecision, AclOp, AclOpKind, ConnId, HubEvent, HubState, Output,
};
use crate::seeded::SeededState;
use crate::wire::message::{Message, types};
use crate::wire::validate::topic_of;
use crate::wire::{DropReason, JsString, Value};

/// A publish, subscribe or direct that passed validation.
#[derive(Debug)]
pub(super) enum Gated {
    Subscribe {
        topic: String,
    },
    Publish {
        topic: String,
        payload: Option<Value>,
    },
    Direct {
        to: String,
        direct_type: Value,
        data: Option<Value>,
    },
}

impl Gated {
    fn op(&self) -> AclOpKind {
        match self {
            Gated::Subscribe { .. } => AclOpKind::Subscribe,
            Gated::Publish { .. } => AclOpKind::Publish,
            Gated::Direct { .. } => AclOpKind::Send,
        }
    }

    fn msg_type(&self) -> &'static str {
        match self {
            Gated::Subscribe { .. } => types::TOPIC_SUBSCRIBE,
            Gated::Publish { .. } => types::TOPIC_MESSAGE,
            Gated::Direct { .. } => types::DIRECT,
        }
    }
}

#[derive(Debug)]
struct LaneItem {
    gated: Gated,
    bytes: usize,
    /// The question asked for this item, once it reached the head of the lane.
    check: Option<AclCheckId>,
}

/// One socket's gated messages awaiting decisions, oldest first.
#[derive(Debug, Default)]
pub(super) struct Lane {
    items: VecDeque<LaneItem>,
    /// Bytes of lane items and of RPCs awaiting `canRpc`, bounded by `max_outbox_bytes`.
    bytes: usize,
    /// Bytes of queued `topic.subscribe` items, with a budget of their own: a backlog
    /// of large publishes must not crowd out a reconnecting peer's subscription replay,
    /// which the peer would never learn was lost.
    subscribe_bytes: usize,
}

impl Lane {
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
        self.subscribe_bytes = 0;
    }

    /// The counter an item of this kind is charged to.
    fn budget(&mut self, gated: &Gated) -> &mut usize {
        match gated {
            Gated::Subscribe { .. } => &mut self.subscribe_bytes,
            _ => &mut self.bytes,
        }
    }
}

/// An `rpc.request` waiting for `canRpc`.
#[derive(Debug)]
pub(super) struct WaitingRpc {
    pub conn: ConnId,
    pub kind: String,
    pub id: JsString,
    pub to: JsString,
    pub rpc_type: Option<Value>,
    pub rpc_data: Option<Value>,
    pub bytes: usize,
}

#[derive(Debug)]
enum Waiting {
    Rpc(WaitingRpc),
    Lane(ConnId),
}

/// Questions in flight.
#[derive(Debug)]
pub(super) struct AclChecks {
    waiting: HashMap<AclCheckId, Waiting, SeededState>,
    next_id: u64,
}

impl AclChecks {
    pub fn new(hasher: SeededState) -> Self {
        Self {
            waiting: HashMap::with_hasher(hasher),
            next_id: 0,
        }
    }

    fn next(&mut self) -> AclCheckId {
        self.next_id += 1;
        AclCheckId(self.next_id)
    }
}

/// The reference's default denial code per hook.
fn default_code(op: AclOpKind) -> &'static str {
    match op {
        AclOpKind::Rpc => "RPC_FORBIDDEN",
        AclOpKind::Publish => "PUBLISH_FORBIDDEN",
        AclOpKind::Subscribe => "SUBSCRIBE_FORBIDDEN",
        AclOpKind::Send => "SEND_FORBIDDEN",
    }
}

/// `(code, error)` of a denial, with the defaults for missing or empty parts.
fn denial(op: AclOpKind, decision: AclDecision) -> Option<(String, String)> {
    match decision {
        AclDecision::Allow => None,
        AclDecision::Deny { code, message } => Some((
            code.filter(|c| !c.is_empty())
                .unwrap_or_else(|| default_code(op).to_owned()),
            message
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "Forbidden".to_owned()),
        )),
    }
}

impl HubState {
    /// A subscribe, publish or direct from peer `kind`: validated, then processed now
    /// or queued in the socket's lane when ACL hooks are installed.
    pub(super) fn on_gated(
        &mut self,
        conn: ConnId,
        kind: &str,
        to: Option<JsString>,
        message: Message,
        len: usize,
    ) {
        let gated = match message {
            Message::TopicSubscribe(m) => match topic_of(m.topic.as_ref()) {
                Some(t) => Gated::Subscribe {
                    topic: t.to_owned(),
                },
                None => {
                    self.invalid_topic(conn, kind, types::TOPIC_SUBSCRIBE);
                    return;
                }
            },
            Message::TopicMessage(m) => match topic_of(m.topic.as_ref()) {
                Some(t) => Gated::Publish {
                    topic: t.to_owned(),
                    payload: m.payload,
                },
                None => {
                    self.invalid_topic(conn, kind, types::TOPIC_MESSAGE);
                    return;
                }
            },
            Message::Direct(m) => {
                // Needs a target and a type; otherwise dropped without a word.
                let Some(to) = to.filter(|t| !t.is_empty()) else {
                    return;
                };
                if m.direct_type_str().is_none() {
                    return;
                }
                Gated::Direct {
                    to: to.to_string_lossy(),
                    direct_type: m.direct_type.unwrap_or(Value::Null),
                    data: m.direct_data,
                }
            }
            _ => return,
        };
        let hooks = self.config.acl;
        let lane_on = hooks.publish || hooks.subscribe || hooks.send;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !lane_on {
            self.process_gated(conn, kind, gated);
            return;
        }
        if *c.lane.budget(&gated) + len > self.config.max_outbox_bytes {
            let msg_type = gated.msg_type().to_owned();
            self.emit(HubEvent::AclBacklogOverflow {
                conn,
                kind: kind.to_owned(),
                msg_type,
            });
            return;
        }
        *c.lane.budget(&gated) += len;
        c.lane.items.push_back(LaneItem {
            gated,
            bytes: len,
            check: None,
        });
        self.pump_lane(conn);
    }

    fn invalid_topic(&mut self, conn: ConnId, kind: &str, msg_type: &str) {
        self.protocol_error(
            conn,
            Some(kind),
            DropReason::InvalidTopic,
            Some(msg_type),
            None,
        );
    }
}

fn hooked(h: super::AclHooks, op: AclOpKind) -> bool {
    {
        match op {
            AclOpKind::Rpc => h.rpc,
            AclOpKind::Publish => h.publish,
            AclOpKind::Subscribe => h.subscribe,
            AclOpKind::Send => h.send,
        }
    }
}

impl HubState {
    /// Processes the lane's head items until one needs an answer.
    fn pump_lane(&mut self, conn: ConnId) {
        let hooks = self.config.acl;
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let Some(kind) = c.kind().cloned() else {
                return;
            };
            let Some(head) = c.lane.items.front_mut() else {
                return;
            };
            if head.check.is_some() {
                return;
            }
            let op = head.gated.op();
            if hooked(hooks, op) {
                let id = self.acl.next();
                let Some(head) = self
                    .conns
                    .get_mut(&conn)
                    .and_then(|c| c.lane.items.front_mut())
                else {
                    return;
                };
                head.check = Some(id);
                let op = match &head.gated {
                    Gated::Subscribe { topic } => AclOp::Subscribe {
                        from: kind.to_string(),
                        topic: topic.clone(),
                    },
                    Gated::Publish { topic, payload } => AclOp::Publish {
                        from: kind.to_string(),
                        topic: topic.clone(),
                        payload: payload.clone(),
                    },
                    Gated::Direct {
                        to,
                        direct_type,
                        data,
                    } => AclOp::Send {
                        from: kind.to_string(),
                        to: to.clone(),
                        direct_type: value_text(Some(direct_type)),
                        data: data.clone(),
                    },
                };
                self.acl.waiting.insert(id, Waiting::Lane(conn));
                self.outputs
                    .push_back(Output::AclCheck(AclCheck { check: id, op }));
                return;
            }
            let Some(item) = c.lane.items.pop_front() else {
                return;
            };
            *c.lane.budget(&item.gated) -= item.bytes;
            self.process_gated(conn, &kind, item.gated);
        }
    }

    fn process_gated(&mut self, conn: ConnId, kind: &str, gated: Gated) {
        let _ = conn;
        match gated {
            Gated::Subscribe { topic } => self.subscribe(kind, &topic),
            Gated::Publish { topic, payload } => self.publish(kind, topic, payload),
            Gated::Direct {
                to,
                direct_type,
                data,
            } => self.direct(kind, to, direct_type, data),
        }
    }

    /// Puts an `rpc.request` to `canRpc`.
    pub(super) fn ask_rpc(&mut self, rpc: WaitingRpc) {
        let Some(c) = self.conns.get_mut(&rpc.conn) else {
            return;
        };
        if c.lane.bytes + rpc.bytes > self.config.max_outbox_bytes {
            let event = HubEvent::AclBacklogOverflow {
                conn: rpc.conn,
                kind: rpc.kind,
                msg_type: types::RPC_REQUEST.to_owned(),
            };
            self.emit(event);
            return;
        }
        c.lane.bytes += rpc.bytes;
        let id = self.acl.next();
        let op = AclOp::Rpc {
            from: rpc.kind.clone(),
            to: rpc.to.to_string_lossy(),
            rpc_type: value_text(rpc.rpc_type.as_ref()),
            rpc_data: rpc.rpc_data.clone(),
        };
        self.acl.waiting.insert(id, Waiting::Rpc(rpc));
        self.outputs
            .push_back(Output::AclCheck(AclCheck { check: id, op }));
    }

    pub(super) fn on_acl_decided(&mut self, check: AclCheckId, decision: AclDecision) {
        let Some(waiting) = self.acl.waiting.remove(&check) else {
            return;
        };
        match waiting {
            Waiting::Rpc(rpc) => {
                if let Some(c) = self.conns.get_mut(&rpc.conn) {
                    c.lane.bytes = c.lane.bytes.saturating_sub(rpc.bytes);
                }
                match denial(AclOpKind::Rpc, decision) {
                    // Allowed for a caller that has gone: nobody could take the answer,
                    // so the request is dropped rather than run or forwarded.
                    None if !self.is_current(rpc.conn, &rpc.kind) => self.protocol_error(
                        rpc.conn,
                        Some(&rpc.kind),
                        DropReason::StaleSocket,
                        Some(types::RPC_REQUEST),
                        None,
                    ),
                    None => self.route_rpc(
                        rpc.conn,
                        &rpc.kind,
                        rpc.id,
                        rpc.to,
                        rpc.rpc_type,
                        rpc.rpc_data,
                    ),
                    Some((code, error)) => {
                        self.reply_error(rpc.conn, &rpc.id, &code, &error);
                        let rpc_type = value_text(rpc.rpc_type.as_ref());
                        self.emit(HubEvent::AclDenied {
                            op: AclOpKind::Rpc,
                            from: rpc.kind,
                            to: Some(rpc.to.to_string_lossy()),
                            rpc_type: Some(rpc_type),
                            topic: None,
                            direct_type: None,
                            code,
                            error,
                        });
                    }
                }
            }
            Waiting::Lane(conn) => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let Some(kind) = c.kind().cloned() else {
                    return;
                };
                if c.lane.items.front().and_then(|i| i.check) != Some(check) {
                    return;
                }
                let Some(item) = c.lane.items.pop_front() else {
                    return;
                };
                *c.lane.budget(&item.gated) -= item.bytes;
                let op = item.gated.op();
                match denial(op, decision) {
                    None => self.process_gated(conn, &kind, item.gated),
                    Some((code, error)) => {
                        let (to, topic, direct_type) = match item.gated {
                            Gated::Subscribe { topic } | Gated::Publish { topic, .. } => {
                                (None, Some(topic), None)
                            }
                            Gated::Direct {
                                to, direct_type, ..
                            } => (Some(to), None, Some(value_text(Some(&direct_type)))),
                        };
                        self.emit(HubEvent::AclDenied {
                            op,
                            from: kind.to_string(),
                            to,
                            rpc_type: None,
                            topic,
                            direct_type,
                            code,
                            error,
                        });
                    }
                }
                self.pump_lane(conn);
            }
        }
    }
}

/// JavaScript's `String(x)` of an optional wire value (`undefined` when absent).
pub(super) fn value_text(v: Option<&Value>) -> String {
    match v {
        None => "undefined".to_owned(),
        Some(v) => crate::wire::envelope::js_string_of(v).to_string_lossy(),
    }
}
