//! The connection's life: opening the transport and sending `hello`, becoming ready
//! on the ack, losing the transport (reconnect backoff, displacement, exhaustion),
//! stopping (graceful or immediate), and the timers behind all of it.

use std::time::{Duration, Instant};

use super::*;

/// Where the transport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// None: never started, stopped, or waiting out a backoff.
    None,
    /// `Connect` emitted, waiting for `TransportUp`.
    Connecting,
    /// Open: `hello` sent.
    Open,
}

/// A graceful stop in progress.
#[derive(Debug, Clone, Copy)]
pub(super) struct Drain {
    pub(super) was_ready: bool,
    pub(super) deadline: Option<Instant>,
    pub(super) restart: bool,
}

/// Every timer the connection runs (RPC deadlines live in the pending table).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timers {
    pub(super) reconnect: Option<Instant>,
    pub(super) hello_diagnostic: Option<Instant>,
    pub(super) keepalive: Option<Instant>,
    pub(super) status: Option<Instant>,
    pub(super) drain_retry: Option<Instant>,
    pub(super) stop_tick: Option<Instant>,
}

impl Timers {
    /// The timers that belong to one transport (the reference's `_clearTimers`).
    pub(super) fn clear_connection(&mut self) {
        self.reconnect = None;
        self.hello_diagnostic = None;
        self.keepalive = None;
        self.status = None;
    }

    pub(super) fn earliest(&self) -> Option<Instant> {
        [
            self.reconnect,
            self.hello_diagnostic,
            self.keepalive,
            self.status,
            self.drain_retry,
            self.stop_tick,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// How long `poll_output` lets an idle connection sleep.
pub(super) const IDLE: Duration = Duration::from_secs(3600);

impl Connection {
    pub(super) fn emit(&mut self, event: ClientEvent) {
        self.out.push_back(Output::Event(event));
    }

    pub(super) fn connect(&mut self) {
        self.disconnect_emitted = false;
        self.transport = Transport::Connecting;
        self.out.push_back(Output::Connect {
            url: self.config.url.clone(),
        });
    }

    pub(super) fn on_transport_up(&mut self, now: Now) {
        if self.transport != Transport::Connecting {
            return;
        }
        self.transport = Transport::Open;
        self.verified = false;
        self.ready = false;
        self.features = None;
        self.pong_alive = true;
        self.skew_drops = 0;
        self.last_skew = 0.0;
        self.buffered = 0;
        // hello bypasses the outbox: it must be the first frame on the socket.
        let info = HelloInfo {
            kind: self.config.kind.clone(),
            name: JsString::from(self.config.name.as_deref().unwrap_or(&self.config.kind)),
            pid: self.config.pid.map(f64::from),
            started_at: Some(now.ms()),
        };
        let id = JsString::from(self.rng.uuid());
        self.transmit_message(now, &id, None, &Message::Hello(Hello::new(&info)));
        if !self.config.hello_ack_diagnostic.is_zero() {
            self.timers.hello_diagnostic =
                now.instant.checked_add(self.config.hello_ack_diagnostic);
        }
        if !self.config.keepalive_interval.is_zero() {
            self.timers.keepalive = now.instant.checked_add(self.config.keepalive_interval);
        }
        self.emit(ClientEvent::Connected {
            url: self.config.url.clone(),
        });
    }

    /// The reference's `handleClose`.
    pub(super) fn on_transport_down(&mut self, now: Now, code: Option<u16>, reason: &str) {
        self.transport = Transport::None;
        self.buffered = 0;
        self.timers.clear_connection();
        self.timers.drain_retry = None;
        let was_ready = self.ready;
        self.ready = false;
        self.features = None;
        if !self.stopped {
            self.fail_all_pending(now, false);
        }
        // A request or cancel belongs to the connection that carried it.
        self.outbox.remove_where(|it| {
            it.msg_type == types::RPC_REQUEST || it.msg_type == types::RPC_CANCEL
        });
        self.abort_inbound(CancelReason::Disconnected);
        if self.stopped {
            if self.drain.is_some() {
                self.hard_stop(now);
            }
            return;
        }
        if code == Some(CLOSE_REPLACED) {
            self.stopped = true;
            self.outbox.clear();
            let reason = if reason.is_empty() {
                "replaced by new connection"
            } else {
                reason
            };
            self.emit_disconnect(DisconnectInfo {
                code,
                reason: reason.to_owned(),
                will_reconnect: false,
                was_ready,
                displaced: true,
            });
            self.emit(ClientEvent::Stopped);
            return;
        }
        match self.backoff.next(&mut self.rng) {
            Retry::Exhausted {
                attempts,
                max_attempts,
            } => {
                self.stopped = true;
                self.outbox.clear();
                self.emit_disconnect(DisconnectInfo {
                    code,
                    reason: reason.to_owned(),
                    will_reconnect: false,
                    was_ready,
                    displaced: false,
                });
                self.emit(ClientEvent::ReconnectExhausted {
                    attempts,
                    max_attempts,
                });
                self.emit(ClientEvent::Stopped);
            }
            Retry::After { attempt, delay } => {
                self.emit_disconnect(DisconnectInfo {
                    code,
                    reason: reason.to_owned(),
                    will_reconnect: true,
                    was_ready,
                    displaced: false,
                });
                self.emit(ClientEvent::ReconnectScheduled { attempt, delay });
                self.timers.reconnect = now.instant.checked_add(delay);
            }
        }
    }

    pub(super) fn emit_disconnect(&mut self, info: DisconnectInfo) {
        if !self.disconnect_emitted {
            self.disconnect_emitted = true;
            self.emit(ClientEvent::Disconnected(info));
        }
    }

    /// Ends the transport from this side (close frame or terminate) and runs the
    /// close handling at once: the adapter reports nothing more about it.
    pub(super) fn drop_transport(&mut self, now: Now, output: Output, code: u16, reason: &str) {
        self.out.push_back(output);
        self.on_transport_down(now, Some(code), reason);
    }

    pub(super) fn become_ready(&mut self, now: Now) {
        self.ready = true;
        self.backoff.reset();
        let features = self.features.clone().unwrap_or_default();
        let has_topics = features.iter().any(|f| f == "topics");
        let has_direct = features.iter().any(|f| f == "direct");
        let dropped = self.outbox.remove_where(|it| {
            (!has_topics
                && matches!(
                    it.msg_type,
                    types::TOPIC_MESSAGE | types::TOPIC_SUBSCRIBE | types::TOPIC_UNSUBSCRIBE
                ))
                || (!has_direct && it.msg_type == types::DIRECT)
        });
        if dropped > 0 {
            self.emit(ClientEvent::OutboxPurged { dropped });
        }
        if has_topics {
            self.replay_subscriptions(now);
        }
        if self.config.make_status && self.timers.status.is_none() {
            self.emit(ClientEvent::StatusWanted);
            self.timers.status = now.instant.checked_add(self.config.status_interval);
            // The drain waits for the answer (`push_status`), or this long at most.
            self.status_due = true;
            if self.timers.drain_retry.is_none() {
                self.timers.drain_retry = now.instant.checked_add(DRAIN_RETRY);
            }
        }
        self.drain_outbox(now);
        self.emit(ClientEvent::Ready { features });
    }

    pub(super) fn replay_subscriptions(&mut self, now: Now) {
        let topics: Vec<String> = self.subscriptions.iter().map(str::to_owned).collect();
        for topic in topics {
            self.send_topic_control(now, types::TOPIC_SUBSCRIBE, &topic);
        }
    }

    pub(super) fn hard_stop(&mut self, now: Now) {
        let drain = self.drain.take();
        let was_ready = drain.is_some_and(|d| d.was_ready);
        self.stopped = true;
        self.timers = Timers::default();
        if self.transport != Transport::None {
            // The reference's bare `ws.close()`: a close frame without a code.
            self.out.push_back(Output::Close {
                code: crate::wire::CLOSE_NO_STATUS,
                reason: String::new(),
            });
        }
        self.transport = Transport::None;
        self.buffered = 0;
        self.ready = false;
        self.outbox.clear();
        self.abort_inbound(CancelReason::Stopped);
        self.fail_all_pending(now, true);
        if was_ready {
            self.emit_disconnect(DisconnectInfo {
                code: None,
                reason: "stopped".to_owned(),
                will_reconnect: false,
                was_ready: true,
                displaced: false,
            });
        }
        self.emit(ClientEvent::Stopped);
        if drain.is_some_and(|d| d.restart) {
            self.stopped = false;
            self.connect();
        }
    }

    pub(super) fn settled(&self) -> bool {
        self.transport != Transport::Open
            || (self.outbox.is_empty() && self.pending.is_empty() && self.buffered == 0)
    }

    pub(super) fn stop_tick(&mut self, now: Now) {
        let Some(drain) = self.drain else {
            return;
        };
        if self.settled() || drain.deadline.is_some_and(|d| now.instant >= d) {
            self.hard_stop(now);
            return;
        }
        self.drain_outbox(now);
        self.timers.stop_tick = now.instant.checked_add(DRAIN_RETRY);
    }

    pub(super) fn check_drained(&mut self, now: Now) {
        if self.drain.is_some() && self.settled() {
            self.hard_stop(now);
        }
    }

    pub(super) fn fail_all_pending(&mut self, now: Now, stopped: bool) {
        for (id, call) in self.pending.take_all() {
            let err = RpcError::Disconnect {
                to: call.to.clone(),
                rpc_type: call.rpc_type.clone(),
                stopped,
            };
            let took = now.instant.saturating_duration_since(call.started);
            self.complete(id, call.to, call.rpc_type, took, Err(err));
        }
    }

    pub(super) fn abort_inbound(&mut self, reason: CancelReason) {
        for (request, r) in self.inbound.abort_all() {
            self.emit(ClientEvent::RpcCancelled {
                request,
                from: r.from.as_ref().map(JsString::to_string_lossy),
                rpc_type: r.rpc_type,
                reason,
            });
        }
    }

    /// Reports call `id` settled; `to` and `rpc_type` move into the event (the call's
    /// own copies, once it is out of the table).
    pub(super) fn complete(
        &mut self,
        id: RpcId,
        to: String,
        rpc_type: String,
        duration: Duration,
        outcome: Result<Option<Value>, RpcError>,
    ) {
        self.emit(ClientEvent::RpcComplete(RpcComplete {
            id,
            to,
            rpc_type,
            outcome,
            duration,
        }));
    }

    // ---------------------------------------------------------------------------
    // Timers

    pub(super) fn run_timers(&mut self, now: Now) {
        let t = now.instant;
        while let Some(id) = self.pending.expired(t) {
            self.on_rpc_timeout(now, id);
        }
        if self.timers.hello_diagnostic.is_some_and(|d| d <= t) {
            self.timers.hello_diagnostic = None;
            self.hello_diagnostic();
        }
        if self.timers.keepalive.is_some_and(|d| d <= t) {
            self.timers.keepalive = None;
            // On this slow tick, the RPC tables give back what a burst left behind.
            self.pending.trim();
            self.inbound.trim();
            self.keepalive(now);
        }
        if self.timers.status.is_some_and(|d| d <= t) {
            self.timers.status = None;
            if self.ready {
                self.emit(ClientEvent::StatusWanted);
                self.timers.status = t.checked_add(self.config.status_interval);
            }
        }
        if self.timers.drain_retry.is_some_and(|d| d <= t) {
            self.timers.drain_retry = None;
            self.status_due = false;
            if self.ready || self.drain.is_some() {
                self.drain_outbox(now);
            }
        }
        if self.timers.stop_tick.is_some_and(|d| d <= t) {
            self.timers.stop_tick = None;
            self.stop_tick(now);
        }
        if self.timers.reconnect.is_some_and(|d| d <= t) {
            self.timers.reconnect = None;
            if !self.stopped && self.transport == Transport::None {
                self.backoff.grow();
                self.connect();
            }
        }
    }

    pub(super) fn on_rpc_timeout(&mut self, now: Now, id: RpcId) {
        let Some(call) = self.pending.remove(id) else {
            return;
        };
        self.outbox.remove_by_id(&call.wire_id);
        self.send_rpc_cancel(now, &call.wire_id, &call.to);
        let err = RpcError::Timeout {
            to: call.to.clone(),
            rpc_type: call.rpc_type.clone(),
            timeout: call.timeout,
        };
        let took = now.instant.saturating_duration_since(call.started);
        self.complete(id, call.to, call.rpc_type, took, Err(err));
    }

    pub(super) fn hello_diagnostic(&mut self) {
        if self.ready || self.transport != Transport::Open {
            return;
        }
        let diagnosis = if self.verified {
            HelloAckDiagnosis::NoAck
        } else if self.skew_drops > 0 {
            HelloAckDiagnosis::ClockSkew {
                dropped: self.skew_drops,
                skew_ms: self.last_skew,
            }
        } else {
            HelloAckDiagnosis::NothingVerified
        };
        self.emit(ClientEvent::HelloAckDiagnostic(diagnosis));
    }

    pub(super) fn keepalive(&mut self, now: Now) {
        if self.transport != Transport::Open {
            return;
        }
        if !self.pong_alive {
            self.emit(ClientEvent::ProtocolError {
                reason: DropReason::KeepaliveTimeout,
                msg_type: None,
                detail: None,
            });
            self.drop_transport(now, Output::Terminate, CLOSE_ABNORMAL, "");
            return;
        }
        self.pong_alive = false;
        self.out.push_back(Output::Ping);
        self.timers.keepalive = now.instant.checked_add(self.config.keepalive_interval);
    }
}
