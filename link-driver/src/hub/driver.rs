//! The hub's driver task (owns `HubState`; frame in | deadline | command → core →
//! frames out) and the per-socket connection task (socket ⇄ hub, writes batched,
//! flushed bytes reported back).

use super::options::{AclFns, ResolverFn};
use super::{
    Hub, HubOptions, PublishCheck, RpcCheck, SendCheck, ServerRpcContext, Shared, SubscribeCheck,
};
use crate::handler::{ErasedHandler, HandlerFailure};
use crate::runtime::{BoxFuture, Runtime, Timer, now, os_seed};
use crate::transport::{Inbound, Outbound, Pump, Transport, TransportError};
use bytes::Bytes;
use futures_util::FutureExt;
use link_sansio::hub::{
    AclDecision, AclOp, ConnId, HubEvent, HubHealth, HubState, HubStateSnapshot, Input, Output,
    ServerCall, ServerReply,
};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};
use tracing::Instrument;

/// A sleep on the hub's runtime.
pub(crate) type SleepFn = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// How long a socket closed for an oversized message stays open so the peer can read
/// the 1009 close frame (its unread remainder would otherwise reset the connection).
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// From connection tasks to the hub (bounded: a busy hub slows readers down).
pub(crate) enum ConnMsg {
    Opened {
        conn: ConnId,
        remote: Option<SocketAddr>,
        out: mpsc::UnboundedSender<ConnOut>,
    },
    Frame {
        conn: ConnId,
        bytes: Bytes,
        /// The frame's share of the inbound byte budget, released once the hub has
        /// handled it (when this message is dropped).
        _held: OwnedSemaphorePermit,
    },
    Pong {
        conn: ConnId,
    },
    Flushed {
        conn: ConnId,
        bytes: usize,
    },
    Closed {
        conn: ConnId,
        code: Option<u16>,
        reason: String,
    },
}

/// Bytes of frames read from sockets and not yet handled by the hub, shared by every
/// connection. The channel to the hub counts frames, not bytes; without this, a socket
/// streaming large frames that are expensive to parse would queue thousands of them in
/// memory. Holding permits makes readers wait, so TCP slows the sender down instead
/// (as the reference's inline `JSON.parse` does).
#[derive(Clone, Debug)]
pub(crate) struct InboundBudget {
    permits: Arc<Semaphore>,
    total: usize,
}

impl InboundBudget {
    /// A budget of a few maximal frames (at least 1 MiB).
    pub(crate) fn new(max_message_bytes: usize) -> Self {
        let total = max_message_bytes
            .saturating_mul(4)
            .clamp(1 << 20, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Self {
            permits: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Wait until `len` bytes (capped at the whole budget) may be in flight.
    async fn hold(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let n = len.clamp(1, self.total) as u32;
        self.permits.clone().acquire_many_owned(n).await.ok()
    }
}

/// From the hub to one connection task. Unbounded, but bounded in practice: the core
/// stops transmitting to a socket whose unflushed bytes exceed `maxBufferedBytes`.
pub(crate) enum ConnOut {
    Frame(Outbound),
    Terminate,
}

pub(crate) enum HubCommand {
    Health {
        reply: oneshot::Sender<HubHealth>,
    },
    State {
        reply: oneshot::Sender<HubStateSnapshot>,
    },
    Drain {
        close: Option<(u16, String)>,
        reply: oneshot::Sender<()>,
    },
    TerminateAll {
        reply: oneshot::Sender<()>,
    },
    ConnectionCount {
        reply: oneshot::Sender<usize>,
    },
}

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

struct Driver<R: Runtime> {
    rt: R,
    hub: HubState,
    inbound: mpsc::Receiver<ConnMsg>,
    commands: mpsc::Receiver<HubCommand>,
    commands_closed: bool,
    control: mpsc::UnboundedReceiver<HubControl>,
    control_tx: mpsc::UnboundedSender<HubControl>,
    conns: HashMap<ConnId, mpsc::UnboundedSender<ConnOut>>,
    events: broadcast::Sender<HubEvent>,
    handlers: HashMap<String, ErasedHandler<ServerRpcContext>>,
    catch_all: Option<ErasedHandler<ServerRpcContext>>,
    resolver: Option<ResolverFn>,
    acl: AclFns,
    timer: R::Timer,
    deadline: Instant,
    armed: Option<Instant>,
    drain_waiters: Vec<oneshot::Sender<()>>,
    drained: bool,
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
    let (in_tx, in_rx) = mpsc::channel(opts.inbound_capacity.max(1));
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let (ev_tx, _) = broadcast::channel(opts.event_capacity);
    let rt = opts.runtime.clone();
    let sleep: SleepFn = Arc::new(move |d: Duration| {
        let timer = rt.timer(Instant::now() + d);
        Box::pin(timer) as BoxFuture<'static, ()>
    });
    let driver = Driver {
        timer: opts.runtime.timer(t.instant),
        rt: opts.runtime.clone(),
        hub,
        inbound: in_rx,
        commands: cmd_rx,
        commands_closed: false,
        control: ctl_rx,
        control_tx: ctl_tx.clone(),
        conns: HashMap::new(),
        events: ev_tx.clone(),
        handlers: opts.handlers.into_iter().collect(),
        catch_all: opts.catch_all,
        resolver: opts.resolver,
        acl: opts.acl,
        deadline: t.instant,
        armed: None,
        drain_waiters: Vec::new(),
        drained: false,
    };
    opts.runtime
        .spawn(driver.run().instrument(tracing::info_span!("link.hub")));
    Hub {
        shared: Arc::new(Shared {
            commands: cmd_tx,
            control: ctl_tx,
            inbound: in_tx,
            events: ev_tx.downgrade(),
            next_conn: AtomicU64::new(1),
            max_message_bytes,
            sleep,
            inbound_budget: InboundBudget::new(max_message_bytes),
        }),
    }
}

impl<R: Runtime> Driver<R> {
    async fn run(mut self) {
        tracing::debug!("hub started");
        // Process the startup outputs (first keepalive deadline).
        self.drain_outputs();
        poll_fn(|cx| self.poll(cx)).await;
        for (_, out) in self.conns.drain() {
            let _ = out.send(ConnOut::Terminate);
        }
        tracing::debug!("hub stopped");
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..32 {
            let mut busy = false;
            while let Poll::Ready(Some(c)) = self.control.poll_recv(cx) {
                self.on_control(c);
                busy = true;
            }
            if !self.commands_closed {
                loop {
                    match self.commands.poll_recv(cx) {
                        Poll::Ready(Some(c)) => {
                            self.on_command(c);
                            busy = true;
                        }
                        Poll::Ready(None) => {
                            self.commands_closed = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            for _ in 0..1024 {
                match self.inbound.poll_recv(cx) {
                    Poll::Ready(Some(m)) => {
                        self.on_conn_msg(m);
                        busy = true;
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            if Instant::now() >= self.deadline {
                self.hub.handle_input(now(), Input::Timeout);
                self.armed = None;
                busy = true;
            }
            self.drain_outputs();
            // Every handle is gone and so is every socket: nobody can reach the hub.
            if self.commands_closed && self.conns.is_empty() {
                return Poll::Ready(());
            }
            if busy {
                continue;
            }
            if self.armed != Some(self.deadline) {
                self.timer.reset(self.deadline);
                self.armed = Some(self.deadline);
            }
            if Pin::new(&mut self.timer).poll(cx).is_ready() {
                continue;
            }
            return Poll::Pending;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn on_conn_msg(&mut self, m: ConnMsg) {
        let t = now();
        match m {
            ConnMsg::Opened { conn, remote, out } => {
                self.conns.insert(conn, out);
                self.hub.handle_input(t, Input::Opened { conn, remote });
            }
            ConnMsg::Frame { conn, bytes, .. } => {
                self.hub.handle_input(
                    t,
                    Input::Frame {
                        conn,
                        bytes: &bytes,
                    },
                );
            }
            ConnMsg::Pong { conn } => self.hub.handle_input(t, Input::Pong { conn }),
            ConnMsg::Flushed { conn, bytes } => {
                self.hub.handle_input(t, Input::Flushed { conn, bytes });
            }
            ConnMsg::Closed { conn, code, reason } => {
                self.conns.remove(&conn);
                self.hub.handle_input(
                    t,
                    Input::Closed {
                        conn,
                        code,
                        reason: &reason,
                    },
                );
            }
        }
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
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(ev);
        }
    }

    fn resolve_key(&mut self, request: link_sansio::hub::KeyRequestId, kind: String) {
        let control = self.control_tx.clone();
        let Some(resolver) = self.resolver.clone() else {
            let _ = control.send(HubControl::Key { request, key: None });
            return;
        };
        self.rt.spawn(async move {
            let key = match std::panic::catch_unwind(AssertUnwindSafe(|| resolver(kind))) {
                Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await.unwrap_or(None),
                Err(_) => None,
            };
            let _ = control.send(HubControl::Key { request, key });
        });
    }

    fn server_rpc(&mut self, call: ServerCall) {
        let control = self.control_tx.clone();
        let id = call.call;
        let Some(h) = self
            .handlers
            .get(&call.rpc_type)
            .or(self.catch_all.as_ref())
            .cloned()
        else {
            // Unregistered between the core's dispatch and now.
            let _ = control.send(HubControl::ServerRpcDone {
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
        self.rt.spawn(async move {
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
            let _ = control.send(HubControl::ServerRpcDone { call: id, reply });
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
        let control = self.control_tx.clone();
        match fut {
            // No hook for this op: allowed.
            None => {
                let _ = control.send(HubControl::Acl {
                    check,
                    decision: AclDecision::Allow,
                });
            }
            Some(fut) => self.rt.spawn(async move {
                let decision = fut.await;
                let _ = control.send(HubControl::Acl { check, decision });
            }),
        }
    }

    fn on_control(&mut self, c: HubControl) {
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

    fn on_command(&mut self, c: HubCommand) {
        match c {
            HubCommand::Health { reply } => {
                let _ = reply.send(self.hub.health());
            }
            HubCommand::State { reply } => {
                let _ = reply.send(self.hub.state());
            }
            HubCommand::Drain { close, reply } => {
                if self.drained || self.hub.is_drained() {
                    let _ = reply.send(());
                } else {
                    // The server's own close frame goes first; the core's later close
                    // of the same socket is then a no-op in the WebSocket library.
                    if let Some((code, reason)) = close {
                        for out in self.conns.values() {
                            let _ = out.send(ConnOut::Frame(Outbound::Close(code, reason.clone())));
                        }
                    }
                    self.drain_waiters.push(reply);
                    self.hub.handle_input(now(), Input::Drain);
                }
            }
            HubCommand::TerminateAll { reply } => {
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
                let _ = reply.send(());
            }
            HubCommand::ConnectionCount { reply } => {
                let _ = reply.send(self.conns.len());
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

/// One socket's life: frames in → hub, hub's frames out (fed in batches, one flush),
/// flushed byte counts back. Ends when the socket ends or the hub terminates it.
pub(crate) async fn run_connection<T: Transport>(
    conn: ConnId,
    socket: T,
    to_hub: mpsc::Sender<ConnMsg>,
    mut from_hub: mpsc::UnboundedReceiver<ConnOut>,
    sleep: SleepFn,
    budget: InboundBudget,
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
        let msg = match step {
            Step::Frame(Inbound::Pong) => ConnMsg::Pong { conn },
            Step::Frame(Inbound::Ping) => continue,
            Step::Frame(Inbound::Close(info)) => {
                close_frame = Some(info.unwrap_or_else(|| (1005, String::new())));
                continue;
            }
            Step::Frame(Inbound::Text(bytes)) => match budget.hold(bytes.len()).await {
                Some(_held) => ConnMsg::Frame { conn, bytes, _held },
                None => return,
            },
            Step::Frame(Inbound::Binary(b)) => {
                let bytes = Bytes::from(String::from_utf8_lossy(&b).into_owned());
                match budget.hold(bytes.len()).await {
                    Some(_held) => ConnMsg::Frame { conn, bytes, _held },
                    None => return,
                }
            }
            Step::Flushed(bytes) => ConnMsg::Flushed { conn, bytes },
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
                let _ = to_hub
                    .send(ConnMsg::Closed {
                        conn,
                        code: Some(code),
                        reason: String::new(),
                    })
                    .await;
                return;
            }
            Step::Failed(e) => {
                tracing::debug!(error = %e, "socket failed");
                let _ = to_hub
                    .send(ConnMsg::Closed {
                        conn,
                        code: Some(1006),
                        reason: String::new(),
                    })
                    .await;
                return;
            }
            Step::Ended => {
                let (code, reason) = close_frame.take().unwrap_or((1006, String::new()));
                let _ = to_hub
                    .send(ConnMsg::Closed {
                        conn,
                        code: Some(code),
                        reason,
                    })
                    .await;
                return;
            }
            #[allow(unreachable_patterns)]
            Step::Frame(_) => continue,
        };
        if to_hub.send(msg).await.is_err() {
            return;
        }
    }
}
