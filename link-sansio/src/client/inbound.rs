//! Frames from the hub: validation in the reference's order (size, JSON, id,
//! signature, version, replay guard), then dispatch by message type.

use super::*;

impl Connection {
    pub(super) fn protocol_error(
        &mut self,
        reason: DropReason,
        msg_type: Option<String>,
        detail: Option<String>,
    ) {
        self.emit(ClientEvent::ProtocolError {
            reason,
            msg_type,
            detail,
        });
    }

    pub(super) fn on_frame(&mut self, now: Now, bytes: &[u8]) {
        if self.transport != Transport::Open {
            return;
        }
        let frame = match Frame::parse(bytes, &self.config.limits) {
            Ok(f) => f,
            Err(reason) => {
                let detail =
                    (reason == DropReason::Oversize).then(|| format!("size {}", bytes.len()));
                return self.protocol_error(reason, None, detail);
            }
        };
        if let Err(reason) = frame.verify_received(bytes, &self.key, &mut self.scratch) {
            let msg_type = frame.msg_type().map(JsString::to_string_lossy);
            return self.protocol_error(reason, msg_type, None);
        }
        let sender = match frame.from() {
            Some(f) if !f.is_empty() => f.to_string_lossy(),
            _ => SERVER.to_owned(),
        };
        if let Err(reason) =
            self.replay
                .check(&sender, frame.id(), frame.ts(), frame.msg_type(), now.ms())
        {
            let mut detail = None;
            if reason == DropReason::ReplayWindow {
                self.skew_drops = self.skew_drops.saturating_add(1);
                self.last_skew = now.ms() - frame.ts();
                detail = Some(format!("skew {}ms", self.last_skew));
            }
            let msg_type = frame.msg_type().map(JsString::to_string_lossy);
            return self.protocol_error(reason, msg_type, detail);
        }
        let env = frame.into_envelope();
        if !self.verified {
            self.verified = true;
            self.skew_drops = 0;
            self.emit(ClientEvent::Verified);
        }
        self.last_verified_at = Some(now.wall_ms);
        // The reference's `message` firehose fires after the ack's readiness work
        // and before any other type's handling.
        let copy = self.config.message_events.then(|| env.clone());
        if matches!(env.message, Message::HelloAck(_)) {
            self.dispatch(now, env);
            if let Some(e) = copy {
                self.emit(ClientEvent::Message(Box::new(e)));
            }
        } else {
            if let Some(e) = copy {
                self.emit(ClientEvent::Message(Box::new(e)));
            }
            self.dispatch(now, env);
        }
    }

    pub(super) fn dispatch(&mut self, now: Now, env: Envelope) {
        let Envelope {
            id, from, message, ..
        } = env;
        match message {
            Message::HelloAck(ack) => self.on_hello_ack(now, &ack),
            Message::PeersUpdate(update) => {
                for change in self.peers.update(update.peers()) {
                    let event = match change {
                        PeerChange::Connected(p) => ClientEvent::PeerConnected(p),
                        PeerChange::Replaced { previous, peer } => ClientEvent::PeerReplaced {
                            kind: peer.kind.clone(),
                            previous: Box::new(previous),
                            peer: Box::new(peer),
                        },
                        PeerChange::Disconnected(p) => {
                            // Its ids can no longer arrive; a returning peer starts afresh.
                            self.replay.forget(&p.kind);
                            ClientEvent::PeerDisconnected(p)
                        }
                    };
                    self.emit(event);
                }
            }
            Message::StatusSnapshot(snapshot) => {
                for (kind, entry) in snapshot.entries() {
                    self.peers.set_status(kind, entry);
                }
            }
            Message::StatusUpdate(update) => {
                if let Some(relay) = update.as_relay().filter(|r| !r.from.is_empty()) {
                    self.peers.set_status(
                        relay.from.clone(),
                        StatusEntry {
                            status: relay.status.clone(),
                            at: relay.at,
                        },
                    );
                    self.emit(ClientEvent::PeerStatus {
                        from: relay.from,
                        status: relay.status,
                        at: relay.at,
                    });
                }
            }
            Message::RpcRequest(req) => self.on_rpc_request(now, id, from, req),
            Message::RpcResponse(resp) => self.on_rpc_response(now, &id, from, &resp),
            Message::RpcCancel(cancel) => {
                if let Some(target) = cancel.id_str() {
                    let target = target.clone();
                    self.on_rpc_cancel(&target, from);
                }
            }
            Message::TopicMessage(m) => {
                let Some(topic) = m.topic.as_ref().and_then(Value::as_str) else {
                    return;
                };
                let own = from
                    .as_ref()
                    .is_some_and(|f| *f == self.config.kind.as_str());
                if topic.is_empty() || own || !self.subscriptions.contains(topic) {
                    return;
                }
                self.emit(ClientEvent::TopicMessage {
                    topic: topic.to_owned(),
                    from: from.as_ref().map(JsString::to_string_lossy),
                    payload: m.payload,
                });
            }
            Message::Direct(d) => {
                let Some(direct_type) = d.direct_type_str().map(JsString::to_string_lossy) else {
                    return;
                };
                self.emit(ClientEvent::Direct {
                    from: from.as_ref().map(JsString::to_string_lossy),
                    direct_type,
                    data: d.direct_data,
                });
            }
            _ => {}
        }
    }

    pub(super) fn on_hello_ack(&mut self, now: Now, ack: &HelloAck) {
        self.timers.hello_diagnostic = None;
        if !ack.ok() {
            let error = ack
                .data
                .as_ref()
                .and_then(|d| d.get("error"))
                .filter(|e| e.is_truthy())
                .map(|e| js_string_of(e).to_string_lossy());
            let reason = error.clone().unwrap_or_else(|| "hello rejected".to_owned());
            self.emit(ClientEvent::Rejected { reason, error });
            if self.config.reconnect_on_rejection {
                let reason = "hello rejected - will retry";
                let close = Output::Close {
                    code: CLOSE_NORMAL,
                    reason: reason.to_owned(),
                };
                self.drop_transport(now, close, CLOSE_NORMAL, reason);
            } else {
                // Immediate, not graceful: a hub that refused us gets nothing more.
                self.stop(now, false);
            }
            return;
        }
        let previous = self.features.replace(ack.features());
        let has_topics =
            |f: &Option<Vec<String>>| f.as_ref().is_some_and(|f| f.iter().any(|x| x == "topics"));
        if self.ready && previous.is_some() && !has_topics(&previous) && has_topics(&self.features)
        {
            self.replay_subscriptions(now);
        }
        if !self.ready && !self.stopped {
            self.become_ready(now);
        }
    }

    pub(super) fn on_rpc_request(
        &mut self,
        now: Now,
        wire_id: JsString,
        from: Option<JsString>,
        req: RpcRequest,
    ) {
        // The reference's `String(rpcType || '')`.
        let rpc_type = req
            .rpc_type
            .as_ref()
            .filter(|t| t.is_truthy())
            .map(|t| js_string_of(t).to_string_lossy())
            .unwrap_or_default();
        let refusal = if self.config.max_concurrent_rpc > 0
            && self.inbound.len() >= self.config.max_concurrent_rpc
        {
            Some(HandlerError::exposed(
                "RPC_OVERLOADED",
                "Handler overloaded - too many concurrent RPCs",
            ))
        } else if !self.catch_all && !self.config.rpc_handlers.contains(&rpc_type) {
            Some(HandlerError::UnknownType(rpc_type.clone()))
        } else {
            None
        };
        let from_name = from.as_ref().map(JsString::to_string_lossy);
        if let Some(err) = refusal {
            let code = if matches!(err, HandlerError::UnknownType(_)) {
                "RPC_UNKNOWN_TYPE"
            } else {
                "RPC_OVERLOADED"
            };
            let (body, _) = rpc::response_body(Err(err), false);
            let message = Message::RpcResponse(body);
            let item = Item::new(wire_id, types::RPC_RESPONSE, from, payload(&message));
            let _ = self.enqueue_or_send(now, item);
            self.emit(ClientEvent::RpcRefused {
                from: from_name,
                rpc_type,
                code,
            });
            return;
        }
        let request = self.inbound.insert(wire_id, from, rpc_type.clone());
        self.emit(ClientEvent::RpcRequest {
            request,
            from: from_name,
            rpc_type,
            data: req.rpc_data,
        });
    }

    pub(super) fn on_rpc_response(
        &mut self,
        now: Now,
        wire_id: &JsString,
        from: Option<JsString>,
        resp: &RpcResponse,
    ) {
        let Some((id, call)) = self.pending.find(wire_id) else {
            self.emit(ClientEvent::LateResponse {
                id: wire_id.to_string_lossy(),
                from: from.as_ref().map(JsString::to_string_lossy),
            });
            return;
        };
        if let Some(f) = &from
            && *f != SERVER
            && *f != call.to.as_str()
        {
            let detail = format!(
                "from {} but the call went to {}",
                f.to_string_lossy(),
                call.to
            );
            return self.protocol_error(
                DropReason::RpcResponseMismatch,
                Some(types::RPC_RESPONSE.to_owned()),
                Some(detail),
            );
        }
        let Some(call) = self.pending.remove(id) else {
            return;
        };
        let outcome = match resp.reply() {
            RpcReply::Ok(result) => Ok(result),
            RpcReply::Err(e) => Err(RpcError::Remote(Box::new(RemoteFailure {
                to: call.to.clone(),
                rpc_type: call.rpc_type.clone(),
                code: e.code,
                message: e.message,
                data: e.data,
            }))),
        };
        let took = now.instant.saturating_duration_since(call.started);
        self.complete(id, call.to, call.rpc_type, took, outcome);
    }

    pub(super) fn on_rpc_cancel(&mut self, target: &JsString, from: Option<JsString>) {
        let Some((request, req)) = self.inbound.find_mut(target) else {
            return;
        };
        // Only the peer that made the request may cancel it (the hub stamps `from`).
        if let (Some(origin), Some(canceller)) = (&req.from, &from)
            && origin != canceller
        {
            return;
        }
        if req.aborted {
            return;
        }
        req.aborted = true;
        let (from, rpc_type) = (
            req.from.as_ref().map(JsString::to_string_lossy),
            req.rpc_type.clone(),
        );
        self.emit(ClientEvent::RpcCancelled {
            request,
            from,
            rpc_type,
            reason: CancelReason::Caller,
        });
    }
}
