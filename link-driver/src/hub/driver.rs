//! The hub's driver. The `HubState` sits behind a mutex and is stepped in place by
//! whoever has an input for it: the connection task that read a frame, the handle
//! asking for health, the task whose server RPC handler finished. Its outputs go
//! straight to the recipients' connection tasks, so a frame crosses one task switch
//! between two sockets, as in a plain relay. One small task sleeps until the core's
//! next deadline (keepalives, RPC timeouts) and steps it then.

use super::options::{AclFns, ResolverFn};
use super::{Hub, HubOptions, PublishCheck, RpcCheck, SendCheck, ServerRpcContext, SubscribeCheck};
use crate::Map;
use crate::handler::{ErasedHandler, HandlerFailure};
use crate::runtime::{BoxFuture, Runtime, now, os_seed};
use crate::transport::{Inbound, Outbound, Pump, Transport, TransportError};
use futures_util::FutureExt;
use link_sansio::hub::{
    AclDecision, AclOp, ConnId, HubEvent, HubState, Input, Output, ServerCall, ServerReply,
};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::Instrument;

/// A sleep on the hub's runtime.
pub(crate) type SleepFn = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// Spawns a task on the hub's runtime.
type SpawnFn = Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>;

/// How long a socket closed for an oversized message stays open so the peer can read
/// the 1009 close frame (its unread remainder would otherwise reset the connection).
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// From the hub to one connection task. Unbounded, but bounded in practice: the core
/// stops transmitting to a socket whose unflushed bytes exceed `maxBufferedBytes`.
pub(crate) enum ConnOut {
    Frame(Outbound),
    Terminate,
}

/// Answers and settings that reach the core from outside a connection: a resolved
/// key, a finished server RPC, an ACL decision, a handler (un)registered.
pub(crate) enum HubControl {
    Key {
        request: link_sansio::hub::KeyRequestId,
        key: Option<String>,
    },
    ServerRpcDone {
        call: link_sansio::hub::ServerCallId,
        reply: ServerReply,
    },
    Acl {
        check: link_sansio::hub::AclCheckId,
        decision: AclDecision,
    },
    Handle {
        rpc_type: String,
        handler: Option<ErasedHandler<ServerRpcContext>>,
    },
    CatchAll(Option<ErasedHandler<ServerRpcContext>>),
}

/// The shared hub: its core and everything that carries out the core's outputs.
#[derive(Clone)]
pub(crate) struct HubCore(Arc<Mutex<Core>>);

impl HubCore {
    /// The core, for one step. Never held across an `.await`. A panic while it was
    /// held (a bug) does not stop the hub: the state is used as it was left.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the timer task is: the deadline it sleeps until, and how to wake it when the
/// core wants an earlier one (or the hub is finished).
#[derive(Default)]
struct TimerSlot {
    armed: Option<Instant>,
    waker: Option<Waker>,
}

pub(crate) struct Core {
    /// This core's own cell, for the tasks it spawns to report back.
    me: Weak<Mutex<Core>>,
    hub: HubState,
    conns: Map<ConnId, mpsc::UnboundedSender<ConnOut>>,
    /// `None` once the hub has finished: event streams end.
    events: Option<broadcast::Sender<HubEvent>>,
    handlers: Map<String, ErasedHandler<ServerRpcContext>>,
    catch_all: Option<ErasedHandler<ServerRpcContext>>,
    resolver: Option<ResolverFn>,
    acl: AclFns,
    spawn: SpawnFn,
    deadline: Instant,
    timer: TimerSlot,
    /// Answers produced while carrying out outputs (no resolver, no ACL hook), applied
    /// once the outputs are drained rather than re-entering the core mid-drain.
    deferred: VecDeque<HubControl>,
    drain_waiters: Vec<oneshot::Sender<()>>,
    drained: bool,
    /// Every `Hub` handle is gone: the hub finishes when its last socket does.
    handles_gone: bool,
}

pub(crate) fn spawn<R: Runtime>(opts: HubOptions<R>) -> Hub {
    let max_message_bytes = opts.config.limits.max_message_bytes;
    let t = now();
    let mut hub = HubState::new(opts.config, os_seed(), t);
    for name in opts.handlers.keys() {
        hub.register_server_rpc(name);
    }
    if opts.catch_all.is_some() {
        hub.set_server_rpc_catch_all(true);
    }
    let (ev_tx, _) = broadcast::channel(opts.event_capacity);
    let weak_events = ev_tx.downgrade();
    let rt = opts.runtime.clone();
    let spawn: SpawnFn = Arc::new(move |fut| rt.spawn(fut));
    let rt = opts.runtime.clone();
    let sleep: SleepFn = Arc::new(move |d: Duration| {
        let timer = rt.timer(Instant::now() + d);
        Box::pin(timer) as BoxFuture<'static, ()>
    });
    let cell = Arc::new_cyclic(|me| {
        Mutex::new(Core {
            me: me.clone(),
            hub,
            conns: Map::default(),
            events: Some(ev_tx),
            handlers: opts.handlers.into_iter().collect(),
            catch_all: opts.catch_all,
            resolver: opts.resolver,
            acl: opts.acl,
            spawn,
            deadline: t.instant,
            timer: TimerSlot::default(),
            deferred: VecDeque::new(),
            drain_waiters: Vec::new(),
            drained: false,
            handles_gone: false,
        })
    });
    let core = HubCore(cell);
    // The startup outputs (the first keepalive deadline).
    core.lock().settle();
    let timer = opts.runtime.timer(t.instant);
    opts.runtime
        .spawn(run_timer(core.clone(), timer).instrument(tracing::info_span!("link.hub")));
    tracing::debug!("hub started");
    Hub::new(core, weak_events, max_message_bytes, sleep)
}

/// Steps the core at its deadlines; finishes the hub once every handle and every
/// socket is gone.
async fn run_timer<T: crate::runtime::Timer>(core: HubCore, mut timer: T) {
    let mut armed = None;
    poll_fn(|cx| {
        for _ in 0..32 {
            let mut c = core.lock();
            if c.handles_gone && c.conns.is_empty() {
                return Poll::Ready(());
            }
            if Instant::now() >= c.deadline {
                c.hub.handle_input(now(), Input::Timeout);
                c.settle();
                continue;
            }
            let at = c.deadline;
            c.timer.armed = Some(at);
            if !c
                .timer
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                c.timer.waker = Some(cx.waker().clone());
            }
            drop(c);
            if armed != Some(at) {
                timer.reset(at);
                armed = Some(at);
            }
            if Pin::new(&mut timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        // Let other tasks run; come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
    let mut c = core.lock();
    for (_, out) in c.conns.drain() {
        let _ = out.send(ConnOut::Terminate);
    }
    c.events = None;
    tracing::debug!("hub stopped");
}

impl Core {
    /// Carry out the core's outputs and the answers they produced, then make sure the
    /// timer task sleeps no later than the core's new deadline.
    pub(crate) fn settle(&mut self) {
        loop {
            self.drain_outputs();
            match self.deferred.pop_front() {
                Some(c) => self.apply(c),
                None => break,
            }
        }
        let finished = self.handles_gone && self.conns.is_empty();
        if (finished || self.timer.armed.is_none_or(|at| self.deadline < at))
            && let Some(w) = self.timer.waker.take()
        {
            self.timer.armed = None;
            w.wake();
        }
    }

    /// A socket was attached; the hub's frames for it go to `out`.
    pub(crate) fn opened(
        &mut self,
        conn: ConnId,
        remote: Option<SocketAddr>,
        out: mpsc::UnboundedSender<ConnOut>,
    ) {
        self.conns.insert(conn, out);
        self.hub.handle_input(now(), Input::Opened { conn, remote });
        self.settle();
    }

    pub(crate) fn frame(&mut self, conn: ConnId, bytes: &[u8]) {
        // The per-frame events (`message` too, if the options ask for it) are built
        // only while someone listens.
        let listening = self.events.as_ref().is_some_and(|e| e.receiver_count() > 0);
        self.hub.set_frame_events(listening);
        self.hub.handle_input(now(), Input::Frame { conn, bytes });
        self.settle();
    }

    pub(crate) fn pong(&mut self, conn: ConnId) {
        self.hub.handle_input(now(), Input::Pong { conn });
        self.settle();
    }

    pub(crate) fn flushed(&mut self, conn: ConnId, bytes: usize) {
        self.hub.handle_input(now(), Input::Flushed { conn, bytes });
        self.settle();
    }

    pub(crate) fn closed(&mut self, conn: ConnId, code: Option<u16>, reason: &str) {
        self.conns.remove(&conn);
        self.hub
            .handle_input(now(), Input::Closed { conn, code, reason });
        self.settle();
    }

    /// An answer or setting from outside (see [`HubControl`]).
    pub(crate) fn control(&mut self, c: HubControl) {
        self.apply(c);
        self.settle();
    }

    /// Every `Hub` handle was dropped.
    pub(crate) fn handles_dropped(&mut self) {
        self.handles_gone = true;
        self.settle();
    }

    pub(crate) fn health(&self) -> link_sansio::hub::HubHealth {
        self.hub.health()
    }

    pub(crate) fn state(&self) -> link_sansio::hub::HubStateSnapshot {
        self.hub.state()
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Start a graceful drain (closing every socket with `close` first, if given);
    /// the answer comes on `reply` once every socket is gone.
    pub(crate) fn drain(&mut self, close: Option<(u16, String)>, reply: oneshot::Sender<()>) {
        if self.drained || self.hub.is_drained() {
            let _ = reply.send(());
            return;
        }
        // The server's own close frame goes first; the core's later close of the same
        // socket is then a no-op in the WebSocket library.
        if let Some((code, reason)) = close {
            for out in self.conns.values() {
                let _ = out.send(ConnOut::Frame(Outbound::Close(code, reason.clone())));
            }
        }
        self.drain_waiters.push(reply);
        self.hub.handle_input(now(), Input::Drain);
        self.settle();
    }

    /// Drop every socket without a close frame.
    pub(crate) fn terminate_all(&mut self) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.send(conn, ConnOut::Terminate);
            self.conns.remove(&conn);
            self.hub.handle_input(
                now(),
                Input::Closed {
                    conn,
                    code: Some(1006),
                    reason: "terminated",
                },
            );
        }
        self.settle();
    }

    fn send(&mut self, conn: ConnId, out: ConnOut) {
        if let Some(tx) = self.conns.get(&conn)
            && tx.send(out).is_err()
        {
            self.conns.remove(&conn);
        }
    }

    fn drain_outputs(&mut self) {
        loop {
            match self.hub.poll_output() {
                Output::Timeout(at) => {
                    self.deadline = at;
                    return;
                }
                Output::Transmit { conn, text } => {
                    self.send(conn, ConnOut::Frame(Outbound::Text(text)));
                }
                Output::Ping { conn } => self.send(conn, ConnOut::Frame(Outbound::Ping)),
                Output::Close { conn, code, reason } => {
                    self.send(conn, ConnOut::Frame(Outbound::Close(code, reason)));
                }
                Output::Terminate { conn } => {
                    self.send(conn, ConnOut::Terminate);
                    self.conns.remove(&conn);
                }
                Output::Event(ev) => self.on_event(ev),
                Output::ResolveKey { request, kind } => self.resolve_key(request, kind),
                Output::ServerRpc(call) => self.server_rpc(call),
                Output::AclCheck(check) => self.acl_check(check.check, check.op),
                _ => {}
            }
        }
    }

    fn on_event(&mut self, ev: HubEvent) {
        match &ev {
            HubEvent::PeerConnected { kind, replaced, .. } => {
                tracing::info!(%kind, replaced, "peer connected");
            }
            HubEvent::PeerDisconnected {
                kind, code, reason, ..
            } => {
                tracing::info!(%kind, ?code, %reason, "peer disconnected");
            }
            HubEvent::ProtocolError {
                kind,
                reason,
                detail,
                ..
            } => {
                tracing::debug!(?kind, reason = reason.as_str(), ?detail, "frame dropped");
            }
            HubEvent::Drained => {
                self.drained = true;
                for w in self.drain_waiters.drain(..) {
                    let _ = w.send(());
                }
            }
            _ => {}
        }
        if let Some(events) = &self.events
            && events.receiver_count() > 0
        {
            let _ = events.send(ev);
        }
    }

    /// Run `work` in its own task and apply the answer it returns to the core.
    fn spawn_answer(&self, work: impl Future<Output = HubControl> + Send + 'static) {
        let me = self.me.clone();
        (self.spawn)(Box::pin(async move {
            let answer = work.await;
            if let Some(cell) = me.upgrade() {
                HubCore(cell).lock().control(answer);
            }
        }));
    }

    fn resolve_key(&mut self, request: link_sansio::hub::KeyRequestId, kind: String) {
        let Some(resolver) = self.resolver.clone() else {
            self.deferred
                .push_back(HubControl::Key { request, key: None });
            return;
        };
        self.spawn_answer(async move {
            let key = match std::panic::catch_unwind(AssertUnwindSafe(|| resolver(kind))) {
                Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await.unwrap_or(None),
                Err(_) => None,
            };
            HubControl::Key { request, key }
        });
    }

    fn server_rpc(&mut self, call: ServerCall) {
        let id = call.call;
        let Some(h) = self
            .handlers
            .get(&call.rpc_type)
            .or(self.catch_all.as_ref())
            .cloned()
        else {
            // Unregistered between the core's dispatch and now.
            self.deferred.push_back(HubControl::ServerRpcDone {
                call: id,
                reply: ServerReply::Err {
                    code: Some("RPC_UNKNOWN_TYPE".into()),
                    message: format!("Unknown server rpcType: {}", call.rpc_type),
                    data: None,
                    expose: true,
                },
            });
            return;
        };
        let ctx = ServerRpcContext {
            from: call.from,
            rpc_type: call.rpc_type,
            request_id: call.request_id.to_string_lossy(),
        };
        let data = call.data;
        self.spawn_answer(async move {
            let reply = match std::panic::catch_unwind(AssertUnwindSafe(|| h(ctx, data))) {
                Err(_) => ServerReply::Panicked,
                Ok(fut) => match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(Ok(v)) => ServerReply::Ok(v),
                    Ok(Err(HandlerFailure::Failed(e))) => ServerReply::Err {
                        data: e.wire_data(),
                        code: e.code,
                        message: e.message,
                        expose: e.expose,
                    },
                    Ok(Err(HandlerFailure::NotSerializable)) => ServerReply::NotSerializable,
                    Err(_) => ServerReply::Panicked,
                },
            };
            HubControl::ServerRpcDone { call: id, reply }
        });
    }

    fn acl_check(&mut self, check: link_sansio::hub::AclCheckId, op: AclOp) {
        let fut: Option<BoxFuture<'static, AclDecision>> = match op {
            AclOp::Rpc {
                from,
                to,
                rpc_type,
                rpc_data,
            } => self.acl.rpc.clone().map(|f| {
                ask(move || {
                    f(RpcCheck {
                        from,
                        to,
                        rpc_type,
                        rpc_data,
                    })
                })
            }),
            AclOp::Publish {
                from,
                topic,
                payload,
            } => self.acl.publish.clone().map(|f| {
                ask(move || {
                    f(PublishCheck {
                        from,
                        topic,
                        payload,
                    })
                })
            }),
            AclOp::Subscribe { from, topic } => self
                .acl
                .subscribe
                .clone()
                .map(|f| ask(move || f(SubscribeCheck { from, topic }))),
            AclOp::Send {
                from,
                to,
                direct_type,
                data,
            } => self.acl.send.clone().map(|f| {
                ask(move || {
                    f(SendCheck {
                        from,
                        to,
                        direct_type,
                        data,
                    })
                })
            }),
            _ => None,
        };
        match fut {
            // No hook for this op: allowed.
            None => self.deferred.push_back(HubControl::Acl {
                check,
                decision: AclDecision::Allow,
            }),
            Some(fut) => self.spawn_answer(async move {
                let decision = fut.await;
                HubControl::Acl { check, decision }
            }),
        }
    }

    fn apply(&mut self, c: HubControl) {
        let t = now();
        match c {
            HubControl::Key { request, key } => {
                self.hub
                    .handle_input(t, Input::KeyResolved { request, key });
            }
            HubControl::ServerRpcDone { call, reply } => {
                self.hub
                    .handle_input(t, Input::ServerRpcDone { call, reply });
            }
            HubControl::Acl { check, decision } => {
                self.hub
                    .handle_input(t, Input::AclDecided { check, decision });
            }
            HubControl::Handle { rpc_type, handler } => match handler {
                Some(h) => {
                    self.hub.register_server_rpc(&rpc_type);
                    self.handlers.insert(rpc_type, h);
                }
                None => {
                    self.hub.unregister_server_rpc(&rpc_type);
                    self.handlers.remove(&rpc_type);
                }
            },
            HubControl::CatchAll(h) => {
                self.hub.set_server_rpc_catch_all(h.is_some());
                self.catch_all = h;
            }
        }
    }
}

/// Run an ACL hook; a panic (while building or awaiting its future) denies.
fn ask<F, Fut>(make: F) -> BoxFuture<'static, AclDecision>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = AclDecision> + Send + 'static,
{
    Box::pin(async move {
        let deny = AclDecision::Deny {
            code: None,
            message: None,
        };
        match std::panic::catch_unwind(AssertUnwindSafe(make)) {
            Err(_) => deny,
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await.unwrap_or(deny),
        }
    })
}

enum Step {
    Frame(Inbound),
    Flushed(usize),
    Failed(TransportError),
    Ended,
    Terminate,
}

/// One socket's life: frames in → the core (stepped in this task), the core's frames
/// for this socket out (fed in batches, one flush), flushed byte counts back. Ends
/// when the socket ends or the hub terminates it.
pub(crate) async fn run_connection<T: Transport>(
    conn: ConnId,
    socket: T,
    core: HubCore,
    mut from_hub: mpsc::UnboundedReceiver<ConnOut>,
    sleep: SleepFn,
) {
    let mut pump = Pump::new(socket);
    let mut close_frame: Option<(u16, String)> = None;
    loop {
        let step = poll_fn(|cx| {
            loop {
                match from_hub.poll_recv(cx) {
                    Poll::Ready(Some(ConnOut::Frame(f))) => pump.push(f),
                    Poll::Ready(Some(ConnOut::Terminate)) | Poll::Ready(None) => {
                        return Poll::Ready(Step::Terminate);
                    }
                    Poll::Pending => break,
                }
            }
            match pump.poll_write(cx) {
                Ok(0) => {}
                Ok(n) => return Poll::Ready(Step::Flushed(n)),
                Err(e) => return Poll::Ready(Step::Failed(e)),
            }
            match pump.poll_read(cx) {
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Step::Frame(f)),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Step::Failed(e)),
                Poll::Ready(None) => Poll::Ready(Step::Ended),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match step {
            Step::Frame(Inbound::Text(bytes)) => core.lock().frame(conn, &bytes),
            Step::Frame(Inbound::Binary(b)) => {
                // Read as text, as the reference's `toString()` does.
                let text = String::from_utf8_lossy(&b);
                core.lock().frame(conn, text.as_bytes());
            }
            Step::Frame(Inbound::Pong) => core.lock().pong(conn),
            Step::Frame(Inbound::Close(info)) => {
                close_frame = Some(info.unwrap_or_else(|| (1005, String::new())));
            }
            Step::Flushed(bytes) => core.lock().flushed(conn, bytes),
            Step::Terminate => {
                tracing::debug!("terminated by the hub");
                return;
            }
            Step::Failed(e) if e.close().is_some() => {
                let (code, reason) = e.close().unwrap_or((1006, ""));
                tracing::debug!(error = %e, code, "bad frame: closing");
                pump.push(Outbound::Close(code, reason.into()));
                let mut linger = sleep(CLOSE_LINGER);
                poll_fn(|cx| {
                    if pump.poll_write(cx).is_err() || linger.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(());
                    }
                    Poll::Pending
                })
                .await;
                core.lock().closed(conn, Some(code), "");
                return;
            }
            Step::Failed(e) => {
                tracing::debug!(error = %e, "socket failed");
                core.lock().closed(conn, Some(1006), "");
                return;
            }
            Step::Ended => {
                let (code, reason) = close_frame.take().unwrap_or((1006, String::new()));
                core.lock().closed(conn, Some(code), &reason);
                return;
            }
            // Pings are answered by the WebSocket library.
            Step::Frame(_) => {}
        }
    }
}
