//! The hub side: feeding `HubState` its network events, playing its transport and
//! its application (server RPC handlers, ACL hooks, key lookups), and checking its
//! outputs and tables.

use super::*;

impl World {
    pub(super) fn hub_input(&mut self, input: hub::Input<'_>) {
        let now = self.hub_now();
        if let Some(h) = &mut self.hub {
            h.state.handle_input(now, input);
        }
        self.drain_hub();
    }

    pub(super) fn drain_hub(&mut self) {
        for outputs in 0.. {
            if outputs > MAX_DRAIN {
                return self.fail("hub: never stops producing outputs".to_owned());
            }
            let Some(h) = &mut self.hub else { return };
            let out = h.state.poll_output();
            if self.verbose && !matches!(out, hub::Output::Timeout(_)) {
                eprintln!("            hub -> {out:?}");
            }
            match out {
                hub::Output::Timeout(deadline) => {
                    let at = ceil_us(self.base, deadline).max(self.now + 1);
                    if h.wake != Some(at) {
                        h.wake = Some(at);
                        let epoch = self.epoch;
                        self.at(at, Ev::HubWake { epoch, at });
                    }
                    break;
                }
                hub::Output::Transmit { conn, text } => self.hub_transmit(conn.0 as usize, text),
                hub::Output::Close { conn, code, reason } => {
                    self.hash.write_u16(code);
                    self.hash.write(reason.as_bytes());
                    self.hub_close(conn.0 as usize, Some(code));
                }
                hub::Output::Terminate { conn } => self.hub_close(conn.0 as usize, None),
                hub::Output::Ping { conn } => {
                    let l = conn.0 as usize;
                    if self
                        .links
                        .get(l)
                        .is_some_and(|k| !k.broken && k.epoch == self.epoch)
                    {
                        let c = self.links[l].client;
                        let d = self.latency(c);
                        let there = (self.now + d).max(self.links[l].down_last);
                        let d = self.latency(c);
                        self.at(there + d, Ev::HubPong { link: l });
                    }
                }
                hub::Output::Event(e) => self.hub_event(e),
                hub::Output::ResolveKey { request, kind } => {
                    let known = self.peers.iter().any(|p| p.kind == kind);
                    let key = known.then(|| self.key_of(&kind));
                    let d = self.hook_delay(20 * MS);
                    let epoch = self.epoch;
                    self.after(
                        d,
                        Ev::HubKey {
                            epoch,
                            request,
                            key,
                        },
                    );
                }
                hub::Output::ServerRpc(call) => self.server_rpc(call),
                hub::Output::AclCheck(check) => self.acl_check(check),
                other => self.fail(format!("hub: unexpected output {other:?}")),
            }
            if self.violation.is_some() {
                return;
            }
        }
        self.check_hub_tables();
    }

    pub(super) fn check_hub_tables(&mut self) {
        let Some(h) = &self.hub else { return };
        let health = h.state.health();
        let state = h.state.state();
        let problem = if health.outbox_bytes > self.sc.hub_max_outbox * health.queued_sockets.max(1)
        {
            Some(format!(
                "outbox {} bytes over {} sockets' caps of {}",
                health.outbox_bytes, health.queued_sockets, self.sc.hub_max_outbox
            ))
        } else if health.peer_count != state.peers.len()
            || health.peer_count != self.kind_conn.len()
        {
            Some(format!(
                "peer count {} but state lists {} and events say {}",
                health.peer_count,
                state.peers.len(),
                self.kind_conn.len()
            ))
        } else if health.server_rpc_in_flight != self.server_calls.len() {
            Some(format!(
                "{} server RPCs in flight, the application holds {}",
                health.server_rpc_in_flight,
                self.server_calls.len()
            ))
        } else if health.pending_socket_count > 1024 {
            Some(format!("{} pending sockets", health.pending_socket_count))
        } else if health.status_count > health.peer_count + self.peers.len() {
            Some(format!("{} statuses retained", health.status_count))
        } else {
            let subs: usize = self.hub_subs.values().map(BTreeSet::len).sum();
            let topics: BTreeSet<&String> = self.hub_subs.values().flatten().collect();
            (health.total_subscribers != subs || health.topic_count != topics.len()).then(|| {
                format!(
                    "{} subscriptions on {} topics, events say {subs} on {}",
                    health.total_subscribers,
                    health.topic_count,
                    topics.len()
                )
            })
        };
        if let Some(p) = problem {
            self.fail(format!("hub: {p}"));
        }
    }

    pub(super) fn hub_close(&mut self, l: usize, code: Option<u16>) {
        let Some(link) = self.links.get_mut(l) else {
            return self.fail(format!("hub: closed unknown socket {l}"));
        };
        if link.hub_gone {
            return self.fail(format!("hub: closed socket {l} after it was gone"));
        }
        link.hub_closing = true;
        if link.broken {
            return;
        }
        let c = link.client;
        let d = self.latency(c);
        match code {
            None => {
                self.links[l].broken = true;
                self.after(
                    d,
                    Ev::ClientDown {
                        c,
                        link: l,
                        code: Some(1006),
                        reason: "",
                    },
                );
                self.after(
                    MS,
                    Ev::HubClosed {
                        link: l,
                        code: Some(1006),
                        reason: "",
                    },
                );
            }
            Some(code) => {
                let at = (self.now + d).max(self.links[l].down_last + 1);
                let reason = match code {
                    4000 => "replaced by new connection",
                    _ => "closed by hub",
                };
                self.at(
                    at,
                    Ev::ClientDown {
                        c,
                        link: l,
                        code: Some(code),
                        reason,
                    },
                );
                let d = self.latency(c);
                self.at(
                    at + d,
                    Ev::HubClosed {
                        link: l,
                        code: Some(code),
                        reason,
                    },
                );
            }
        }
    }

    pub(super) fn hub_transmit(&mut self, l: usize, text: String) {
        self.stats.frames += 1;
        self.hash.write(text.as_bytes());
        let Some(link) = self.links.get(l) else {
            return self.fail(format!("hub: transmitted on unknown socket {l}"));
        };
        let frame = match Frame::parse(text.as_bytes(), &self.limits) {
            Ok(f) => f,
            Err(e) => {
                return self.fail(format!(
                    "hub: transmitted an unparsable frame ({e}): {text}"
                ));
            }
        };
        let msg = frame.message();
        let from = frame.from().map(|f| f.to_string_lossy());
        let msg_type = msg.msg_type().to_owned();
        if link.hub_gone || link.hub_closing || link.replaced {
            return self.fail(format!(
                "hub: transmitted {msg_type} on socket {l} after closing or replacing it"
            ));
        }
        if msg_type == "hello.ack" {
            self.links[l].acked = true;
        } else if !link.acked {
            return self.fail(format!(
                "hub: transmitted {msg_type} to socket {l} before it authenticated"
            ));
        }
        let link_kind = self.links[l].kind.clone();
        let tagged = match &msg {
            Message::TopicMessage(m) => {
                let topic = m.topic.as_ref().and_then(Value::as_str).unwrap_or("");
                let subscribed = link_kind
                    .as_ref()
                    .and_then(|k| self.hub_subs_ever.get(k))
                    .is_some_and(|s| s.contains(topic));
                if !subscribed {
                    return self.fail(format!(
                        "hub: sent a {topic} message to socket {l} ({link_kind:?}), not subscribed"
                    ));
                }
                untag(m.payload.as_ref())
            }
            Message::Direct(d) => untag(d.direct_data.as_ref()),
            Message::RpcRequest(r) => untag(r.rpc_data.as_ref()),
            Message::RpcResponse(r) => {
                let by = r
                    .data
                    .as_ref()
                    .and_then(|d| d.get("result"))
                    .and_then(|r| r.get("by"))
                    .and_then(Value::as_str);
                if let Some(by) = by
                    && from.as_deref() != Some(by)
                {
                    return self.fail(format!(
                        "hub: response produced by {by} forwarded as from {from:?}"
                    ));
                }
                None
            }
            _ => None,
        };
        if let Some((s, q)) = tagged {
            let sender = self.peers.get(s).map(|p| p.kind.as_str());
            if sender != from.as_deref() {
                return self.fail(format!(
                    "hub: {msg_type} {s}/{q} of {sender:?} forwarded as from {from:?}"
                ));
            }
        }
        if self.links[l].broken {
            return;
        }
        let app_message = matches!(msg, Message::Direct(_) | Message::TopicMessage(_));
        let text = if app_message && self.sc.sabotage == Sabotage::ForgeFrom {
            self.forged(l, &text).unwrap_or(text)
        } else {
            text
        };
        let c = self.links[l].client;
        let len = text.len();
        let mut per_byte = self.sc.links[c].down_us_per_byte;
        if !self.chaos {
            // Slow consumers catch up once the faults end, so that liveness can be judged.
            per_byte = per_byte.min(2);
        }
        let link = &mut self.links[l];
        link.down_free = link.down_free.max(self.now) + len as T * per_byte;
        let flushed = link.down_free;
        let lat = self.latency(c);
        let arrive = (flushed + lat).max(self.links[l].down_last);
        self.links[l].down_last = arrive;
        self.at(
            flushed,
            Ev::HubFlushed {
                link: l,
                bytes: len,
            },
        );
        match self.sc.sabotage {
            Sabotage::DropFrames if app_message && chance(&mut self.rng, 0.3) => {}
            Sabotage::DuplicateFrames if app_message => {
                let copy = text.clone();
                self.at(arrive, Ev::ClientFrame { c, link: l, text });
                self.at(
                    arrive + 1,
                    Ev::ClientFrame {
                        c,
                        link: l,
                        text: copy,
                    },
                );
            }
            Sabotage::ReorderFrames if app_message => match self.held.take() {
                Some((hl, held)) if hl == l => {
                    self.at(arrive, Ev::ClientFrame { c, link: l, text });
                    self.at(
                        arrive + 1,
                        Ev::ClientFrame {
                            c,
                            link: l,
                            text: held,
                        },
                    );
                }
                _ => self.held = Some((l, text)),
            },
            _ => self.at(arrive, Ev::ClientFrame { c, link: l, text }),
        }
    }

    /// `text` re-signed by the hub's key for this socket but claiming to come from
    /// another peer (what a hub that trusted the sender's `from` would produce).
    pub(super) fn forged(&self, l: usize, text: &str) -> Option<String> {
        let c = self.links[l].client;
        let kind = &self.peers[c].kind;
        let key = link_sansio::wire::Key::new(&self.key_of(kind), self.sc.hash_algo);
        let frame = Frame::parse(text.as_bytes(), &self.limits).ok()?;
        let env = frame.into_envelope();
        let liar = self
            .peers
            .iter()
            .map(|p| p.kind.as_str())
            .find(|k| Some(*k) != env.from.as_ref().and_then(|f| f.as_str()))?;
        let header = link_sansio::wire::Header {
            id: (&env.id).into(),
            ts: env.ts,
            from: Some(liar.into()),
            to: env.to.as_ref().map(Into::into),
        };
        let mut out = Vec::new();
        link_sansio::wire::encode_message(&key, &header, &env.message, &mut out);
        String::from_utf8(out).ok()
    }

    pub(super) fn hub_event(&mut self, e: HubEvent) {
        std::mem::discriminant(&e).hash(&mut self.hash);
        match e {
            HubEvent::PeerConnected { conn, kind, .. } => {
                let l = conn.0 as usize;
                if let Some(link) = self.links.get(l)
                    && self.peers[link.client].bad_key
                {
                    return self.fail(format!(
                        "hub: authenticated client {} ({kind}), whose key is wrong",
                        link.client
                    ));
                }
                if let Some(link) = self.links.get_mut(l) {
                    link.kind = Some(kind.clone());
                }
                self.kind_conn.insert(kind, l);
            }
            HubEvent::PeerReplaced { old_conn, .. } => {
                if let Some(link) = self.links.get_mut(old_conn.0 as usize) {
                    link.replaced = true;
                }
            }
            HubEvent::PeerDisconnected { conn, kind, .. }
                if self.kind_conn.get(&kind) == Some(&(conn.0 as usize)) =>
            {
                self.kind_conn.remove(&kind);
                self.hub_subs.remove(&kind);
                self.hub_subs_ever.remove(&kind);
            }
            HubEvent::TopicSubscribe { kind, topic } => {
                if topic == SECRET_TOPIC {
                    return self.fail(format!("hub: {kind} subscribed to {topic} past the ACL"));
                }
                self.hub_subs_ever
                    .entry(kind.clone())
                    .or_default()
                    .insert(topic.clone());
                self.hub_subs.entry(kind).or_default().insert(topic);
            }
            HubEvent::TopicUnsubscribe { kind, topic } => {
                if let Some(s) = self.hub_subs.get_mut(&kind) {
                    s.remove(&topic);
                    if s.is_empty() {
                        self.hub_subs.remove(&kind);
                    }
                }
            }
            HubEvent::ProtocolError {
                conn,
                reason,
                msg_type,
                detail,
                ..
            } => {
                let link = self.links.get(conn.0 as usize);
                let c = link.map(|l| l.client);
                let beyond = c.is_some_and(|c| self.peers[c].beyond_window);
                // Frames still in flight on a socket the hub has just replaced or
                // closed arrive after the fact; the hub drops them.
                let closing = link.is_some_and(|l| l.replaced || l.hub_closing);
                // An RPC that `canRpc` allowed after its caller's socket closed.
                let gone_caller =
                    link.is_some_and(|l| l.hub_gone) && msg_type.as_deref() == Some("rpc.request");
                let bad_key = c.is_some_and(|c| self.peers[c].bad_key);
                let fine = match reason {
                    DropReason::ReplayWindow => beyond,
                    DropReason::StaleSocket => closing || gone_caller,
                    DropReason::BadSignature => bad_key,
                    _ => false,
                };
                if !fine {
                    self.fail(format!(
                        "hub: protocol error {} on {msg_type:?} ({detail:?}) from client {c:?}",
                        reason.as_str()
                    ));
                }
            }
            HubEvent::OutboxOverflow { .. } => self.stats.overflows += 1,
            HubEvent::Drained => {
                self.drained_events += 1;
                if !self.draining {
                    self.fail("hub: Drained without a Drain".to_owned());
                }
            }
            HubEvent::AclBacklogOverflow { conn, msg_type, .. } => {
                self.stats.overflows += 1;
                if msg_type == "topic.subscribe"
                    && let Some(l) = self.links.get(conn.0 as usize)
                {
                    self.peers[l.client].subs_lost = true;
                }
            }
            _ => {}
        }
    }

    pub(super) fn server_rpc(&mut self, call: hub::ServerCall) {
        let sender = untag(call.data.as_ref()).and_then(|(s, _)| self.peers.get(s));
        if let Some(p) = sender
            && p.kind != call.from
        {
            return self.fail(format!(
                "hub: server RPC of {} handed over as from {}",
                p.kind, call.from
            ));
        }
        if !self.server_calls.insert(call.call.0) {
            return self.fail(format!("hub: server call {} issued twice", call.call.0));
        }
        let mut result = Object::new();
        result.insert("by", Value::from(SERVER));
        if let Some(d) = call.data.clone() {
            result.insert("re", d);
        }
        let (delay, reply) = match call.rpc_type.as_str() {
            "sim.echo" => (
                self.rand(0, 50 * MS),
                ServerReply::Ok(Some(Value::Object(result))),
            ),
            "sim.slow" => (
                self.rand(200 * MS, 3_000 * MS),
                ServerReply::Ok(Some(Value::Object(result))),
            ),
            "sim.fail" => (
                self.rand(0, 50 * MS),
                ServerReply::Err {
                    code: Some("APP_FAIL".to_owned()),
                    message: "simulated failure".to_owned(),
                    data: None,
                    expose: true,
                },
            ),
            other => {
                return self.fail(format!("hub: server RPC of unregistered type {other}"));
            }
        };
        let epoch = self.epoch;
        self.after(
            delay,
            Ev::HubServerRpc {
                epoch,
                call: call.call,
                reply,
            },
        );
    }

    pub(super) fn acl_check(&mut self, check: hub::AclCheck) {
        if !self.sc.acl {
            return self.fail("hub: asked an ACL hook that is not installed".to_owned());
        }
        let (deny, from, data) = match &check.op {
            AclOp::Rpc {
                from,
                rpc_type,
                rpc_data,
                ..
            } => (rpc_type == FORBIDDEN, from, rpc_data.as_ref()),
            AclOp::Publish {
                from,
                topic,
                payload,
            } => (topic == SECRET_TOPIC, from, payload.as_ref()),
            AclOp::Subscribe { from, topic } => (topic == SECRET_TOPIC, from, None),
            AclOp::Send {
                from,
                direct_type,
                data,
                ..
            } => (direct_type == FORBIDDEN, from, data.as_ref()),
            other => return self.fail(format!("hub: unknown ACL question {other:?}")),
        };
        if let Some((s, _)) = untag(data)
            && self.peers.get(s).is_some_and(|p| &p.kind != from)
        {
            return self.fail(format!(
                "hub: ACL asked about {from} for a message of client {s}"
            ));
        }
        let decision = if deny {
            AclDecision::Deny {
                code: None,
                message: None,
            }
        } else {
            AclDecision::Allow
        };
        let d = self.hook_delay(30 * MS);
        let epoch = self.epoch;
        self.after(
            d,
            Ev::HubAcl {
                epoch,
                check: check.check,
                decision,
            },
        );
    }

    // -------------------------------------------------------------------------
}
