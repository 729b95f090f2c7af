//! The client side: feeding each `Connection` its network events, playing its
//! transport, and checking everything it emits against the application's model.

use super::*;

impl World {
    pub(super) fn client_input(&mut self, c: usize, input: client::Input<'_>) {
        let now = self.client_now(c);
        self.peers[c].conn.handle_input(now, input);
        self.drain_client(c);
    }

    pub(super) fn drain_client(&mut self, c: usize) {
        let was_ready = self.peers[c].ready;
        let mut disconnected = false;
        let mut outputs = 0;
        loop {
            outputs += 1;
            if outputs > MAX_DRAIN {
                return self.fail(format!("client {c}: never stops producing outputs"));
            }
            let out = self.peers[c].conn.poll_output();
            if self.verbose && !matches!(out, client::Output::Timeout(_)) {
                eprintln!("            client {c} -> {out:?}");
            }
            match out {
                client::Output::Timeout(deadline) => {
                    let at = ceil_us(self.base, deadline).max(self.now + 1);
                    if self.peers[c].wake != Some(at) {
                        self.peers[c].wake = Some(at);
                        self.at(at, Ev::ClientWake { c, at });
                    }
                    break;
                }
                client::Output::Idle => break,
                client::Output::Connect { .. } => self.client_connect(c),
                client::Output::Transmit(text) => self.client_transmit(c, text),
                client::Output::Close { code, reason } => {
                    self.hash.write_u16(code);
                    self.hash.write(reason.as_bytes());
                    self.client_close(c, Some(code));
                }
                client::Output::Terminate => self.client_close(c, None),
                client::Output::Ping => {
                    if let Some(l) = self.peers[c].link
                        && self.peers[c].up
                        && !self.links[l].broken
                    {
                        let d = self.latency(c) * 2;
                        let at = (self.now + d).max(self.links[l].up_last);
                        self.at(at, Ev::ClientPong { c, link: l });
                    }
                }
                client::Output::Event(e) => {
                    if matches!(e, ClientEvent::Disconnected(_)) {
                        disconnected = true;
                    }
                    self.client_event(c, e);
                }
                other => self.fail(format!("client {c}: unexpected output {other:?}")),
            }
            if self.violation.is_some() {
                return;
            }
        }
        if self.orphans_owed > 0 {
            self.fail(format!(
                "client {c}: rpc() refused a call but emitted no RpcComplete for it"
            ));
        }
        // `start()` during a graceful stop takes effect when the stop ends: the
        // connection knows whether it is stopped, the application asks it.
        let stopped = self.peers[c].conn.health().stopped;
        self.peers[c].stopped = stopped;
        let p = &self.peers[c];
        if disconnected && !p.ready && !p.pending.is_empty() {
            let ids: Vec<_> = p.pending.keys().collect();
            self.fail(format!(
                "client {c}: link went down (was ready: {was_ready}) with RPCs still pending: {ids:?}"
            ));
            return;
        }
        let h = p.conn.health();
        // Subscription changes are queued even beyond the cap, one per topic.
        let changes = (TOPICS.len() + 1) * 320;
        if h.outbox_bytes > self.sc.client_max_outbox + changes {
            self.fail(format!(
                "client {c}: outbox {} bytes over its cap {}",
                h.outbox_bytes, self.sc.client_max_outbox
            ));
        } else if h.pending_rpcs != p.pending.len() {
            self.fail(format!(
                "client {c}: health says {} RPCs pending, the application has {}",
                h.pending_rpcs,
                p.pending.len()
            ));
        } else if !p.stopped && h.subscriptions != p.subs.len() {
            self.fail(format!(
                "client {c}: health says {} subscriptions, the application made {}",
                h.subscriptions,
                p.subs.len()
            ));
        }
    }

    pub(super) fn client_connect(&mut self, c: usize) {
        let l = self.links.len();
        let epoch = self.epoch;
        self.links.push(Link {
            client: c,
            epoch,
            ..Link::default()
        });
        self.peers[c].link = Some(l);
        self.peers[c].up = false;
        let d = self.latency(c);
        if self.hub.is_some() && !self.draining {
            self.after(d, Ev::HubOpened { link: l });
            self.after(2 * d, Ev::ClientUp { c, link: l });
        } else {
            self.links[l].broken = true;
            self.links[l].hub_gone = true;
            self.after(
                d,
                Ev::ClientDown {
                    c,
                    link: l,
                    code: Some(1006),
                    reason: "connection refused",
                },
            );
        }
    }

    pub(super) fn client_close(&mut self, c: usize, code: Option<u16>) {
        let Some(l) = self.peers[c].link.take() else {
            return self.fail(format!("client {c}: closed a transport it does not have"));
        };
        self.peers[c].up = false;
        self.links[l].client_gone = true;
        if self.links[l].broken {
            return;
        }
        let d = self.latency(c);
        match code {
            None => {
                self.links[l].broken = true;
                self.after(
                    d,
                    Ev::HubClosed {
                        link: l,
                        code: Some(1006),
                        reason: "",
                    },
                );
            }
            Some(code) => {
                let at = (self.now + d).max(self.links[l].up_last + 1);
                self.at(
                    at,
                    Ev::HubClosed {
                        link: l,
                        code: Some(code),
                        reason: "client closed",
                    },
                );
            }
        }
    }

    pub(super) fn client_transmit(&mut self, c: usize, text: String) {
        self.stats.frames += 1;
        self.hash.write(text.as_bytes());
        let Some(l) = self.peers[c].link else {
            return self.fail(format!(
                "client {c}: transmitted without a transport: {text}"
            ));
        };
        if !self.peers[c].up {
            return self.fail(format!(
                "client {c}: transmitted before its transport opened"
            ));
        }
        // The outbox check: every accepted direct and publish leaves exactly once, in
        // the order the application gave them.
        if let Ok(frame) = Frame::parse(text.as_bytes(), &self.limits) {
            let seq = match frame.message() {
                Message::Direct(d) => untag(d.direct_data.as_ref()),
                Message::TopicMessage(m) => untag(m.payload.as_ref()),
                _ => None,
            };
            if let Some((s, q)) = seq {
                let p = &mut self.peers[c];
                if s != c || !p.accepted.remove(&q) {
                    return self.fail(format!(
                        "client {c}: transmitted message {s}/{q} it never accepted or sent before"
                    ));
                }
                if q <= p.last_tx_seq {
                    let last = p.last_tx_seq;
                    return self.fail(format!(
                        "client {c}: transmitted #{q} after #{last}: outbox out of order"
                    ));
                }
                p.last_tx_seq = q;
            }
        } else {
            return self.fail(format!(
                "client {c}: transmitted an unparsable frame {text}"
            ));
        }
        if self.links[l].broken {
            return;
        }
        let len = text.len();
        let per_byte = self.sc.links[c].up_us_per_byte;
        let link = &mut self.links[l];
        link.up_free = link.up_free.max(self.now) + len as T * per_byte;
        let flushed = link.up_free;
        let lat = self.latency(c);
        let arrive = (flushed + lat).max(self.links[l].up_last);
        self.links[l].up_last = arrive;
        self.at(
            flushed,
            Ev::ClientFlushed {
                c,
                link: l,
                bytes: len,
            },
        );
        self.at(arrive, Ev::HubFrame { link: l, text });
    }

    pub(super) fn client_event(&mut self, c: usize, e: ClientEvent) {
        std::mem::discriminant(&e).hash(&mut self.hash);
        match e {
            ClientEvent::Ready { .. } => {
                if self.peers[c].ready {
                    return self.fail(format!("client {c}: ready twice on one link"));
                }
                self.peers[c].ready = true;
            }
            ClientEvent::Disconnected(info) => {
                self.peers[c].ready = false;
                // Every subscription is sent again on the next ready.
                self.peers[c].subs_lost = false;
                if info.displaced {
                    self.peers[c].displaced = true;
                    self.stats.displaced += 1;
                }
            }
            ClientEvent::Stopped => {
                self.peers[c].ready = false;
                self.peers[c].accepted.clear();
            }
            ClientEvent::RpcComplete(rc) => self.rpc_settled(c, rc),
            ClientEvent::RpcRequest {
                request,
                from,
                rpc_type,
                data,
            } => self.rpc_request(c, request, from, rpc_type, data),
            ClientEvent::TopicMessage {
                topic,
                from,
                payload,
            } => {
                if !self.peers[c].subs.contains(&topic) {
                    return self.fail(format!(
                        "client {c}: got a message on {topic}, which it is not subscribed to"
                    ));
                }
                if topic == SECRET_TOPIC {
                    return self.fail(format!("client {c}: got a message the ACL denied"));
                }
                self.delivery(c, 1, from, payload.as_ref(), "topic message");
            }
            ClientEvent::Direct {
                from,
                direct_type,
                data,
            } => {
                if direct_type == FORBIDDEN {
                    return self.fail(format!("client {c}: got a direct the ACL denied"));
                }
                self.delivery(c, 2, from, data.as_ref(), "direct");
            }
            ClientEvent::PeerStatus { from, status, .. } => {
                let claimed = status
                    .as_ref()
                    .and_then(|s| s.get("k"))
                    .and_then(Value::as_str);
                if claimed.is_some_and(|k| k != from) {
                    self.fail(format!(
                        "client {c}: status of {claimed:?} relayed as coming from {from}"
                    ));
                }
            }
            ClientEvent::StatusWanted => {
                let p = &mut self.peers[c];
                p.status_n += 1;
                let mut o = Object::new();
                o.insert("k", Value::from(p.kind.as_str()));
                o.insert("n", Value::Number(p.status_n as f64));
                let now = self.client_now(c);
                match self.peers[c].conn.push_status(now, Some(Value::Object(o))) {
                    Ok(()) => self.peers[c].status_sent = self.peers[c].status_n,
                    Err(ClientError::OutboxFull { .. }) => {}
                    Err(e) => self.fail(format!("client {c}: push_status refused: {e}")),
                }
            }
            ClientEvent::ProtocolError {
                reason,
                msg_type,
                detail,
            } => {
                let fine = match reason {
                    DropReason::ReplayWindow => self.peers[c].beyond_window,
                    DropReason::KeepaliveTimeout => true,
                    _ => false,
                };
                if !fine {
                    self.fail(format!(
                        "client {c}: protocol error {} on {msg_type:?} ({detail:?})",
                        reason.as_str()
                    ));
                }
            }
            ClientEvent::OutboxOverflow { msg_type, .. } => {
                self.stats.overflows += 1;
                // The client never refuses a subscription change (they are conflated
                // per topic, so they cannot grow without bound).
                if msg_type.starts_with("topic.") && msg_type != "topic.message" {
                    self.fail(format!("client {c}: outbox refused a {msg_type}"));
                }
            }
            _ => {}
        }
    }

    /// A topic message (class 1) or direct (class 2) reached client `c`'s application.
    pub(super) fn delivery(
        &mut self,
        c: usize,
        class: u8,
        from: Option<String>,
        payload: Option<&Value>,
        what: &str,
    ) {
        if !self.peers[c].ready {
            return self.fail(format!("client {c}: got a {what} while not ready"));
        }
        let Some((s, q)) = untag(payload) else {
            return self.fail(format!("client {c}: got an untagged {what}: {payload:?}"));
        };
        let Some(sender) = self.peers.get(s) else {
            return self.fail(format!("client {c}: {what} tagged with unknown sender {s}"));
        };
        if from.as_deref() != Some(sender.kind.as_str()) {
            return self.fail(format!(
                "client {c}: {what} {s}/{q} from {} arrived stamped from {from:?}",
                sender.kind
            ));
        }
        let kind = self.peers[c].kind.clone();
        if !self.delivered.insert((kind.clone(), class, s, q)) {
            return self.fail(format!("client {c}: {what} {s}/{q} delivered twice"));
        }
        let last = self.order.entry((c, s)).or_insert(0);
        if q <= *last {
            let last = *last;
            return self.fail(format!(
                "client {c}: {what} {s}/{q} delivered after {s}/{last}: out of order"
            ));
        }
        *last = q;
        self.expected.remove(&(kind, s, q));
        self.stats.delivered += 1;
    }

    pub(super) fn rpc_request(
        &mut self,
        c: usize,
        request: InboundRpcId,
        from: Option<String>,
        rpc_type: String,
        data: Option<Value>,
    ) {
        if !self.peers[c].ready {
            return self.fail(format!("client {c}: got an RPC request while not ready"));
        }
        if rpc_type == FORBIDDEN {
            return self.fail(format!("client {c}: got an RPC the ACL denied"));
        }
        let Some((s, q)) = untag(data.as_ref()) else {
            return self.fail(format!("client {c}: untagged RPC request {data:?}"));
        };
        let sender_kind = self.peers.get(s).map(|p| p.kind.clone());
        if from != sender_kind {
            return self.fail(format!(
                "client {c}: RPC {s}/{q} from {sender_kind:?} arrived stamped from {from:?}"
            ));
        }
        let kind = self.peers[c].kind.clone();
        if !self.delivered.insert((kind.clone(), 3, s, q)) {
            return self.fail(format!("client {c}: RPC request {s}/{q} delivered twice"));
        }
        let mut result = Object::new();
        result.insert("by", Value::from(kind.as_str()));
        if let Some(d) = data {
            result.insert("re", d);
        }
        let (delay, reply) = match rpc_type.as_str() {
            "echo" => (self.rand(0, 100 * MS), Ok(Some(Value::Object(result)))),
            "slow" => (
                self.rand(300 * MS, 3_000 * MS),
                Ok(Some(Value::Object(result))),
            ),
            "fail" => (
                self.rand(0, 50 * MS),
                Err(HandlerError::exposed("APP_FAIL", "simulated failure")),
            ),
            other => {
                return self.fail(format!("client {c}: got an RPC of unhandled type {other}"));
            }
        };
        self.after(delay, Ev::Respond { c, request, reply });
    }

    pub(super) fn rpc_settled(&mut self, c: usize, rc: client::RpcComplete) {
        let id = rc.id.0;
        self.hash.write_u64(id);
        self.hash.write(rc.reason().unwrap_or("ok").as_bytes());
        let p = &mut self.peers[c];
        let Some(call) = p.pending.remove(&id) else {
            if p.settled.contains(&id) {
                return self.fail(format!("client {c}: RPC {} settled twice", rc.id));
            }
            if self.orphans_owed > 0 {
                self.orphans_owed -= 1;
                p.settled.insert(id);
                if rc.outcome.is_ok() {
                    self.fail(format!("client {c}: a refused RPC completed with a result"));
                }
                return;
            }
            return self.fail(format!(
                "client {c}: RpcComplete for unknown call {}",
                rc.id
            ));
        };
        p.settled.insert(id);
        let elapsed = self.now - call.sent_at;
        if let Some(t) = call.timeout.filter(|t| !t.is_zero()) {
            let t = t.as_micros() as T;
            if elapsed > t + MS {
                return self.fail(format!(
                    "client {c}: RPC {} settled {}ms after it was due",
                    rc.id,
                    (elapsed - t) / MS
                ));
            }
            if matches!(rc.outcome, Err(RpcError::Timeout { .. })) && elapsed + 1 < t {
                return self.fail(format!(
                    "client {c}: RPC {} timed out after {}µs of {}µs",
                    rc.id, elapsed, t
                ));
            }
        }
        if call.probe {
            self.expected_rpcs.remove(&(c, id));
            // Every peer probes the server at once: a hub allowing fewer concurrent
            // server RPCs than that refuses some.
            let overloaded = rc
                .outcome
                .as_ref()
                .is_err_and(|e| e.code() == "RPC_OVERLOADED");
            if rc.outcome.is_err() && !(overloaded && call.to == SERVER) {
                return self.fail(format!(
                    "client {c}: probe RPC to {} failed after the network settled: {:?}",
                    call.to, rc.outcome
                ));
            }
        }
        let server = call.to == SERVER;
        match &rc.outcome {
            Ok(result) => {
                self.stats.rpc_ok += 1;
                if call.rpc_type == "link.health" {
                    return;
                }
                let want_by = if server { SERVER } else { call.to.as_str() };
                let ok_type = matches!(
                    call.rpc_type.as_str(),
                    "echo" | "slow" | "sim.echo" | "sim.slow"
                );
                let by = result
                    .as_ref()
                    .and_then(|r| r.get("by"))
                    .and_then(Value::as_str);
                let re = untag(result.as_ref().and_then(|r| r.get("re")));
                if !ok_type || by != Some(want_by) || re != Some((c, call.seq)) {
                    self.fail(format!(
                        "client {c}: RPC {} {}:{} answered with the wrong result {result:?}",
                        rc.id, call.to, call.rpc_type
                    ));
                }
            }
            Err(RpcError::Remote(r)) => {
                let t = call.rpc_type.as_str();
                let fine = match r.code.as_str() {
                    "RPC_NO_TARGET" | "RPC_TARGET_UNAVAILABLE" => !server,
                    "RPC_OVERLOADED" => true,
                    "RPC_UNKNOWN_TYPE" => t == "nope" || t == "nope.server",
                    "RPC_FORBIDDEN" => t == FORBIDDEN && self.sc.acl,
                    "APP_FAIL" => t == "fail" || t == "sim.fail",
                    _ => false,
                };
                if !fine {
                    self.fail(format!(
                        "client {c}: RPC {} {}:{t} failed with unexpected {} ({})",
                        rc.id, call.to, r.code, r.message
                    ));
                }
            }
            Err(RpcError::Timeout { .. }) => self.stats.rpc_timeouts += 1,
            Err(RpcError::Disconnect { .. }) | Err(RpcError::Abort { .. }) => {}
            Err(other) => self.fail(format!(
                "client {c}: accepted RPC {} settled with {other:?}",
                rc.id
            )),
        }
    }
}
