//! The client's driver task: owns the socket, and runs the one loop — command |
//! control | frame in | deadline → core → frames out (batched) — until the link
//! stops. The core (`Connection`) is shared with the handles, which step it in place
//! for `send`, `publish` and `rpc` while frames go out at once, and wake this task to
//! write what they produced.

use super::options::StatusFn;
use super::{Event, LinkClient, LinkOptions, ReadyInfo, RpcContext, Shared, TopicMessage};
use crate::Map;
use crate::cancel::CancelSignal;
use crate::error::Error;
use crate::handler::{ErasedHandler, HandlerFailure, RpcHandlerError};
use crate::runtime::{BoxFuture, ConnectSpec, Runtime, Timer, now, os_seed};
use crate::transport::{Inbound, Outbound, Pump, Transport, TransportError, frame_text};
use futures_util::FutureExt;
use futures_util::task::AtomicWaker;
use link_sansio::client::{
    ClientError, ClientEvent, ClientHealth, Connection, HandlerError, InboundRpcId, Input, Output,
    RpcError, RpcId,
};
use link_sansio::seeded::CounterState;
use link_sansio::time::Now;
use link_sansio::wire::CLOSE_NO_STATUS;
use link_sansio::wire::Value;
use link_sansio::wire::message::{PeerEntry, StatusEntry};
use std::cell::Cell;
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::Instrument;

/// Requests from handles that need an answer (bounded channel: callers wait when the
/// driver is behind).
pub(crate) enum Command {
    Rpc(RpcCall),
    Publish {
        topic: String,
        payload: Option<Value>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Send {
        to: String,
        direct_type: String,
        data: Option<Value>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Subscribe {
        topic: String,
        id: u64,
        tx: mpsc::Sender<TopicMessage>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Ready {
        reply: oneshot::Sender<Result<ReadyInfo, Error>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerEntry>>,
    },
    PeerStatus {
        kind: String,
        reply: oneshot::Sender<Option<StatusEntry>>,
    },
    Health {
        reply: oneshot::Sender<ClientHealth>,
    },
    Features {
        reply: oneshot::Sender<Vec<String>>,
    },
    Stop {
        graceful: bool,
        reply: oneshot::Sender<()>,
    },
}

/// Fire-and-forget notices (unbounded: sent from `Drop`, handler tasks and sync
/// registration; each is small and bounded by live objects).
pub(crate) enum Control {
    CancelRpc(u64),
    Unsubscribe {
        topic: String,
        id: u64,
    },
    Handle {
        rpc_type: String,
        handler: Option<ErasedHandler<RpcContext>>,
    },
    CatchAll(Option<ErasedHandler<RpcContext>>),
    Responded {
        request: InboundRpcId,
        reply: Result<Option<Value>, HandlerError>,
    },
}

struct SubSlot {
    id: u64,
    tx: mpsc::Sender<TopicMessage>,
    dropped: u64,
    lagging: bool,
}

impl SubSlot {
    /// Queues `msg` unless the subscription is full (counted; the drop count and the
    /// refused message's topic are pushed to `slow` when it starts lagging). False
    /// once the subscription is gone.
    fn try_deliver(&mut self, msg: TopicMessage, slow: &mut Vec<(u64, String)>) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => {
                self.lagging = false;
                true
            }
            Err(mpsc::error::TrySendError::Full(refused)) => {
                self.dropped += 1;
                if !self.lagging {
                    self.lagging = true;
                    slow.push((self.dropped, refused.topic));
                }
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// An outbound call on its way into the core.
pub(crate) struct RpcCall {
    /// The handle's name for the call (what cancelling it names).
    pub(crate) token: u64,
    pub(crate) to: String,
    pub(crate) rpc_type: String,
    pub(crate) data: Option<Value>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) reply: RpcReply,
}

type RpcReply = oneshot::Sender<Result<Option<Value>, RpcError>>;

/// Calls the core has started and not yet completed: who to tell, by core id and by
/// the handle's token. Both are counters this client hands out, so the tables keep
/// them in order ([`CounterState`]).
#[derive(Default)]
struct Calls {
    rpcs: HashMap<RpcId, (u64, RpcReply), CounterState>,
    tokens: HashMap<u64, RpcId, CounterState>,
}

impl Calls {
    fn insert(&mut self, id: RpcId, token: u64, reply: RpcReply) {
        self.tokens.insert(token, id);
        self.rpcs.insert(id, (token, reply));
    }

    /// Forgets the call the core knows as `id`; who was to be told of it.
    fn remove(&mut self, id: RpcId) -> Option<RpcReply> {
        let (token, reply) = self.rpcs.remove(&id)?;
        self.tokens.remove(&token);
        Some(reply)
    }

    /// Forgets the call the handle knows as `token`; the core's id for it.
    fn remove_token(&mut self, token: u64) -> Option<RpcId> {
        let id = self.tokens.remove(&token)?;
        self.rpcs.remove(&id);
        Some(id)
    }
}

/// `m`, locked. A panic while it was held (a bug) does not stop the link.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The core, shared by the driver task and the handles. Handles step it in place for
/// `send`, `publish` and `rpc` while it takes frames at once
/// ([`Connection::sends_now`]): no channel hop, and no driver turn before the frame
/// goes out. The locks are held only for a step, never across an `.await`, and no
/// user code runs under them. Lock order: `conn`, then `calls`.
pub(crate) struct SharedCore {
    conn: Mutex<Connection>,
    calls: Mutex<Calls>,
    /// `send`, `publish` and `rpc` commands queued and not yet carried out: while there
    /// are any, handles queue theirs behind them instead of stepping in place, so calls
    /// leave in the order they were made.
    queued: AtomicUsize,
    /// Wakes the driver to carry out what a handle's step produced.
    driver: AtomicWaker,
}

impl std::fmt::Debug for SharedCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCore").finish_non_exhaustive()
    }
}

impl SharedCore {
    /// The core, locked. A panic while it was held (a bug) does not stop the link.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    fn calls(&self) -> MutexGuard<'_, Calls> {
        lock(&self.calls)
    }

    /// Locks the core if a handle may step it in place: it takes frames at once and
    /// no earlier command waits in the queue. If not, takes a place in the queue.
    fn in_place(&self) -> Result<MutexGuard<'_, Connection>, QueueSlot<'_>> {
        let conn = self.lock();
        if conn.sends_now() && self.queued.load(Ordering::Acquire) == 0 {
            return Ok(conn);
        }
        // Taken under the lock, so no later call can step in place ahead of it.
        self.queued.fetch_add(1, Ordering::AcqRel);
        Err(QueueSlot(Some(&self.queued)))
    }

    /// Steps the core with `step` on `input` if it may be stepped in place. If not
    /// (without calling `step`), hands `input` back with a place in the queue, where
    /// the caller should put its command.
    pub(crate) fn step_if_sending<A, T>(
        &self,
        input: A,
        step: impl FnOnce(&mut Connection, A) -> T,
    ) -> Result<T, (A, QueueSlot<'_>)> {
        let mut conn = match self.in_place() {
            Ok(conn) => conn,
            Err(slot) => return Err((input, slot)),
        };
        let out = step(&mut conn, input);
        drop(conn);
        self.driver.wake();
        Ok(out)
    }

    /// Starts `call` in `conn` (this core, locked) and records it, or tells its caller
    /// why not. The record is made before `conn` is released, so the call's
    /// completion (a later step of `conn`) always finds it. A queued call whose caller
    /// has given up (its future dropped, so its cancel found nothing to cancel) is
    /// not started at all.
    pub(crate) fn start_rpc(&self, conn: &mut Connection, call: RpcCall) {
        let RpcCall {
            token,
            to,
            rpc_type,
            data,
            timeout,
            reply,
        } = call;
        if reply.is_closed() {
            return;
        }
        match conn.rpc(now(), to, rpc_type, data, timeout) {
            Ok(id) => self.calls().insert(id, token, reply),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// A queued `send`, `publish` or `rpc` has been carried out.
    fn dequeued(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place taken in the command queue ([`SharedCore::step_if_sending`]). Given back
/// on drop unless the command went into the queue ([`QueueSlot::queued`]); the
/// driver gives it back once it has carried the command out.
pub(crate) struct QueueSlot<'a>(Option<&'a AtomicUsize>);

impl QueueSlot<'_> {
    /// The command is in the queue: the driver gives the place back.
    pub(crate) fn queued(mut self) {
        self.0 = None;
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        if let Some(queued) = self.0 {
            queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

struct Driver<R: Runtime> {
    rt: R,
    core: Arc<SharedCore>,
    spec: ConnectSpec,
    kind: String,
    commands: mpsc::Receiver<Command>,
    commands_closed: bool,
    control: mpsc::UnboundedReceiver<Control>,
    control_tx: mpsc::UnboundedSender<Control>,
    events: broadcast::Sender<Event>,
    ready_flag: Arc<AtomicBool>,
    timer: R::Timer,
    deadline: Option<Instant>,
    armed: Option<Instant>,
    connecting: Option<BoxFuture<'static, Result<R::Transport, TransportError>>>,
    pump: Option<Pump<R::Transport>>,
    close_frame: Option<(u16, String)>,
    subs: Map<String, Vec<SubSlot>>,
    handlers: Map<String, ErasedHandler<RpcContext>>,
    catch_all: Option<ErasedHandler<RpcContext>>,
    inbound: Map<InboundRpcId, CancelSignal>,
    ready_waiters: Vec<oneshot::Sender<Result<ReadyInfo, Error>>>,
    stop_waiters: Vec<oneshot::Sender<()>>,
    /// Resolves when the last connection closed in the background has finished its
    /// close handshake (or given up): `stop()` waits for it, so a process that exits
    /// right after stopping still closes with its close frame, not a reset.
    closing: Option<oneshot::Receiver<()>>,
    status: Option<StatusFn>,
    stopped: bool,
    /// The time of this turn of [`Driver::poll`]'s loop, read once when first needed
    /// ([`Driver::now`]): a turn handles up to a few hundred frames in well under a
    /// millisecond, and two clock reads per frame were a few percent of a client's
    /// CPU.
    turn_clock: Cell<Option<Now>>,
}

/// Validate the options, start the driver task, return the first handle.
pub(crate) fn spawn<R: Runtime>(opts: LinkOptions<R>) -> Result<LinkClient, Error> {
    let mut config = opts.config;
    if config.pid.is_none() {
        config.pid = Some(std::process::id());
    }
    config.rpc_handlers.extend(opts.handlers.keys().cloned());
    let kind = config.kind.clone();
    let spec = ConnectSpec {
        url: config.url.clone(),
        tls: opts.tls,
        max_message_bytes: config.limits.max_message_bytes,
    };
    let mut conn = Connection::new(config, os_seed())?;
    if opts.catch_all.is_some() {
        conn.set_rpc_catch_all(true);
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(opts.command_capacity.max(1));
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let (ev_tx, _) = broadcast::channel(opts.event_capacity);
    let ready = Arc::new(AtomicBool::new(false));
    let t = now();
    conn.start(t);
    let span = tracing::info_span!("link.client", kind = %kind, url = %spec.url);
    let core = Arc::new(SharedCore {
        conn: Mutex::new(conn),
        calls: Mutex::new(Calls::default()),
        queued: AtomicUsize::new(0),
        driver: AtomicWaker::new(),
    });
    let driver = Driver {
        timer: opts.runtime.timer(t.instant + Duration::from_secs(3600)),
        rt: opts.runtime.clone(),
        core: core.clone(),
        spec,
        kind: kind.clone(),
        commands: cmd_rx,
        commands_closed: false,
        control: ctl_rx,
        control_tx: ctl_tx.clone(),
        events: ev_tx.clone(),
        ready_flag: ready.clone(),
        deadline: None,
        armed: None,
        connecting: None,
        pump: None,
        close_frame: None,
        subs: Map::default(),
        handlers: opts.handlers.into_iter().collect(),
        catch_all: opts.catch_all,
        inbound: Map::default(),
        ready_waiters: Vec::new(),
        stop_waiters: Vec::new(),
        closing: None,
        status: opts.status,
        stopped: false,
        turn_clock: Cell::new(None),
    };
    opts.runtime.spawn(driver.run().instrument(span));
    Ok(LinkClient {
        shared: Arc::new(Shared {
            core,
            commands: cmd_tx,
            control: ctl_tx,
            events: ev_tx.downgrade(),
            listeners: Arc::new(AtomicU64::new(0)),
            max_listeners: opts.max_listeners,
            ready,
            next_token: AtomicU64::new(1),
            kind,
            subscription_capacity: opts.subscription_capacity,
        }),
    })
}

/// Close a socket the core is done with: send what is queued (the close frame), then
/// read until the peer answers the close, at most `CLOSE_GRACE`.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub(crate) async fn close_gracefully<R: Runtime, T: Transport>(rt: R, mut pump: Pump<T>) {
    let mut timer = rt.timer(Instant::now() + CLOSE_GRACE);
    poll_fn(|cx| {
        if Pin::new(&mut timer).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if pump.poll_write(cx).is_err() {
            return Poll::Ready(());
        }
        if pump.has_pending_writes() {
            return Poll::Pending;
        }
        loop {
            match pump.poll_read(cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => {
                    // Keep flushing the close reply tungstenite queues while reading.
                    let _ = pump.poll_write(cx);
                    return Poll::Pending;
                }
            }
        }
    })
    .await;
}

fn handler_error(e: RpcHandlerError) -> HandlerError {
    let data = e.wire_data();
    HandlerError::Failed {
        code: e.code,
        message: e.message,
        data,
        expose: e.expose,
    }
}

impl<R: Runtime> Driver<R> {
    /// The time of this turn of the poll loop (see `turn_clock`).
    fn now(&self) -> Now {
        if let Some(t) = self.turn_clock.get() {
            return t;
        }
        let t = now();
        self.turn_clock.set(Some(t));
        t
    }

    /// The core, locked for one step.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.core.lock()
    }

    async fn run(mut self) {
        tracing::debug!("link driver started");
        poll_fn(|cx| self.poll(cx)).await;
        for w in self.ready_waiters.drain(..) {
            let _ = w.send(Err(Error::Stopped));
        }
        for w in self.stop_waiters.drain(..) {
            let _ = w.send(());
        }
        for (_, s) in self.inbound.drain() {
            s.cancel();
        }
        tracing::debug!("link driver stopped");
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before looking for work: a handle stepping the core after this
        // wakes the task again.
        self.core.driver.register(cx.waker());
        for _ in 0..32 {
            self.turn_clock.set(None);
            let mut busy = false;
            while let Poll::Ready(Some(c)) = self.control.poll_recv(cx) {
                self.on_control(c);
                busy = true;
            }
            if !self.commands_closed {
                for _ in 0..256 {
                    match self.commands.poll_recv(cx) {
                        Poll::Ready(Some(c)) => {
                            self.on_command(c);
                            busy = true;
                        }
                        Poll::Ready(None) => {
                            // Every handle is gone: nobody can use the link any more.
                            self.commands_closed = true;
                            if !self.stopped {
                                self.conn().stop(self.now(), true);
                            }
                            busy = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            if let Some(f) = self.connecting.as_mut()
                && let Poll::Ready(r) = f.as_mut().poll(cx)
            {
                self.connecting = None;
                busy = true;
                self.on_connected(r);
            }
            for _ in 0..256 {
                let Some(p) = self.pump.as_mut() else { break };
                match p.poll_read(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        busy = true;
                        self.on_frame(frame);
                    }
                    Poll::Ready(Some(Err(e))) => {
                        busy = true;
                        self.on_transport_error(e);
                        break;
                    }
                    Poll::Ready(None) => {
                        busy = true;
                        self.pump = None;
                        let (code, reason) = self
                            .close_frame
                            .take()
                            .unwrap_or_else(|| (1006, String::new()));
                        self.conn().handle_input(
                            self.now(),
                            Input::TransportDown {
                                code: Some(code),
                                reason: &reason,
                            },
                        );
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            // On this turn's clock: a deadline it just misses fires the timer, and
            // so the next turn, at once.
            if let Some(d) = self.deadline
                && let t = self.now()
                && t.instant >= d
            {
                self.deadline = None;
                self.armed = None;
                self.conn().handle_input(t, Input::Timeout);
                busy = true;
            }
            busy |= self.drain_outputs();
            if let Some(p) = self.pump.as_mut() {
                match p.poll_write(cx) {
                    Ok(0) => {}
                    Ok(n) => {
                        self.conn().handle_input(self.now(), Input::Flushed(n));
                        busy = true;
                    }
                    Err(e) => {
                        busy = true;
                        self.on_transport_error(e);
                    }
                }
            }
            busy |= self.drain_outputs();
            if self.stopped {
                // The core is done with any transport: a connect still in flight is
                // abandoned, an open socket closed politely in the background.
                self.connecting = None;
                if let Some(mut p) = self.pump.take() {
                    p.push(Outbound::Close(CLOSE_NO_STATUS, String::new()));
                    self.rt.spawn(close_gracefully(self.rt.clone(), p));
                }
                return Poll::Ready(());
            }
            if busy {
                continue;
            }
            match self.deadline {
                Some(d) => {
                    if self.armed != Some(d) {
                        self.timer.reset(d);
                        self.armed = Some(d);
                    }
                    if Pin::new(&mut self.timer).poll(cx).is_ready() {
                        continue;
                    }
                }
                None => self.armed = None,
            }
            return Poll::Pending;
        }
        // Let other tasks run; come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn broadcast(&self, ev: Event) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(ev);
        }
    }

    fn on_connected(&mut self, r: Result<R::Transport, TransportError>) {
        match r {
            Ok(t) => {
                tracing::debug!("websocket open");
                self.pump = Some(Pump::new(t));
                self.close_frame = None;
                self.conn().handle_input(self.now(), Input::TransportUp);
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                let reason = e.to_string();
                self.broadcast(Event::TransportError {
                    error: reason.clone(),
                });
                self.conn().handle_input(
                    self.now(),
                    Input::TransportDown {
                        code: Some(1006),
                        reason: &reason,
                    },
                );
            }
        }
    }

    fn on_transport_error(&mut self, e: TransportError) {
        let reason = e.to_string();
        tracing::debug!(error = %reason, "websocket failed");
        self.broadcast(Event::TransportError {
            error: reason.clone(),
        });
        let code = match (e.close(), self.pump.take()) {
            (Some((code, why)), Some(mut p)) => {
                p.push(Outbound::Close(code, why.into()));
                self.rt.spawn(close_gracefully(self.rt.clone(), p));
                code
            }
            _ => 1006,
        };
        self.close_frame = None;
        self.conn().handle_input(
            self.now(),
            Input::TransportDown {
                code: Some(code),
                reason: &reason,
            },
        );
    }

    fn on_frame(&mut self, frame: Inbound) {
        match &frame {
            Inbound::Pong => self.conn().handle_input(self.now(), Input::Pong),
            Inbound::Close(info) => {
                self.close_frame = Some(info.clone().unwrap_or_else(|| (1005, String::new())));
            }
            _ => {
                if let Some(bytes) = frame_text(&frame) {
                    self.conn().handle_input(self.now(), Input::Frame(&bytes));
                }
            }
        }
    }

    /// Carry out the core's outputs; returns whether there were any besides the
    /// deadline (a new connect or queued frames need polling before sleeping).
    fn drain_outputs(&mut self) -> bool {
        let mut any = false;
        loop {
            let output = self.conn().poll_output();
            match output {
                Output::Timeout(at) => {
                    self.deadline = Some(at);
                    return any;
                }
                Output::Idle => {
                    self.deadline = None;
                    return any;
                }
                Output::Transmit(text) => {
                    any = true;
                    if let Some(p) = self.pump.as_mut() {
                        p.push(Outbound::Text(text));
                    }
                }
                Output::Ping => {
                    any = true;
                    if let Some(p) = self.pump.as_mut() {
                        p.push(Outbound::Ping);
                    }
                }
                Output::Connect { url } => {
                    any = true;
                    self.pump = None;
                    let mut spec = self.spec.clone();
                    spec.url = url;
                    self.connecting = Some(self.rt.connect(spec));
                }
                Output::Close { code, reason } => {
                    self.connecting = None;
                    if let Some(mut p) = self.pump.take() {
                        p.push(Outbound::Close(code, reason));
                        let (done, closing) = oneshot::channel();
                        self.closing = Some(closing);
                        let rt = self.rt.clone();
                        self.rt.spawn(async move {
                            close_gracefully(rt, p).await;
                            let _ = done.send(());
                        });
                    }
                }
                Output::Terminate => {
                    self.connecting = None;
                    self.pump = None;
                }
                Output::Event(ev) => self.on_event(ev),
                _ => {}
            }
        }
    }

    fn on_event(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::RpcComplete(c) => {
                let pending = self.core.calls().remove(c.id);
                if self.events.receiver_count() > 0 {
                    if let Some(tx) = pending {
                        let _ = tx.send(c.outcome.clone());
                    }
                    self.broadcast(Event::Link(ClientEvent::RpcComplete(c)));
                } else if let Some(tx) = pending {
                    let _ = tx.send(c.outcome);
                }
                return;
            }
            ClientEvent::TopicMessage {
                topic,
                from,
                payload,
            } => {
                let msg = TopicMessage {
                    topic,
                    from,
                    payload,
                };
                if let Some(msg) = self.deliver(msg) {
                    self.broadcast(Event::Link(ClientEvent::TopicMessage {
                        topic: msg.topic,
                        from: msg.from,
                        payload: msg.payload,
                    }));
                }
                return;
            }
            // With nobody listening, the handler takes the request without copies.
            ClientEvent::RpcRequest {
                request,
                from,
                rpc_type,
                data,
            } if self.events.receiver_count() == 0 => {
                self.dispatch(request, from, rpc_type, data);
                return;
            }
            _ => {}
        }
        match &ev {
            ClientEvent::Ready { features } => {
                tracing::info!(?features, "link ready");
                self.ready_flag.store(true, Ordering::Release);
                for w in self.ready_waiters.drain(..) {
                    let _ = w.send(Ok(ReadyInfo {
                        kind: self.kind.clone(),
                        features: features.clone(),
                    }));
                }
            }
            ClientEvent::Disconnected(info) => {
                tracing::info!(code = ?info.code, reason = %info.reason, will_reconnect = info.will_reconnect, "link down");
                self.ready_flag.store(false, Ordering::Release);
            }
            ClientEvent::Rejected { reason, .. } => {
                tracing::warn!(%reason, "hello rejected");
                for w in self.ready_waiters.drain(..) {
                    let _ = w.send(Err(Error::HelloRejected {
                        reason: reason.clone(),
                    }));
                }
            }
            ClientEvent::Stopped => {
                self.stopped = true;
                self.ready_flag.store(false, Ordering::Release);
                for w in self.ready_waiters.drain(..) {
                    let _ = w.send(Err(Error::Stopped));
                }
                let waiters = std::mem::take(&mut self.stop_waiters);
                let answer = move || {
                    for w in waiters {
                        let _ = w.send(());
                    }
                };
                match self.closing.take() {
                    // Answer once the close frame is out (bounded by CLOSE_GRACE).
                    Some(closing) => self.rt.spawn(async move {
                        let _ = closing.await;
                        answer();
                    }),
                    None => answer(),
                }
            }
            ClientEvent::RpcRequest {
                request,
                from,
                rpc_type,
                data,
            } => self.dispatch(*request, from.clone(), rpc_type.clone(), data.clone()),
            ClientEvent::RpcCancelled { request, .. } => {
                if let Some(s) = self.inbound.remove(request) {
                    s.cancel();
                }
            }
            ClientEvent::StatusWanted => {
                if let Some(f) = &self.status {
                    let status = f();
                    let _ = self.conn().push_status(self.now(), status);
                }
            }
            ClientEvent::ProtocolError { reason, detail, .. } => {
                tracing::debug!(reason = reason.as_str(), ?detail, "frame dropped");
            }
            _ => {}
        }
        self.broadcast(Event::Link(ev));
    }

    /// Hands `msg` to every subscription on its topic. Returns it if the event stream
    /// still wants it; otherwise the last subscription gets it without a copy.
    fn deliver(&mut self, msg: TopicMessage) -> Option<TopicMessage> {
        let Some(slots) = self.subs.get_mut(&msg.topic) else {
            return Some(msg);
        };
        let keep = self.events.receiver_count() > 0;
        let last = slots.len().saturating_sub(1);
        let mut msg = Some(msg);
        let mut at = 0;
        let mut slow = Vec::new();
        slots.retain_mut(|s| {
            let copy = if at == last && !keep {
                msg.take()
            } else {
                msg.clone()
            };
            at += 1;
            let Some(copy) = copy else { return true };
            s.try_deliver(copy, &mut slow)
        });
        for (dropped, topic) in slow {
            tracing::warn!(topic = %topic, dropped, "slow subscriber: dropping messages");
            self.broadcast(Event::SlowSubscriber { topic, dropped });
        }
        msg
    }

    fn dispatch(
        &mut self,
        request: InboundRpcId,
        from: Option<String>,
        rpc_type: String,
        data: Option<Value>,
    ) {
        let Some(h) = self
            .handlers
            .get(&rpc_type)
            .or(self.catch_all.as_ref())
            .cloned()
        else {
            self.conn().respond(
                self.now(),
                request,
                Err(HandlerError::UnknownType(rpc_type)),
            );
            return;
        };
        let cancel = CancelSignal::new();
        let ctx = RpcContext {
            from,
            rpc_type,
            cancel: cancel.clone(),
        };
        let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| h(ctx, data))) {
            Ok(f) => f,
            Err(_) => {
                self.conn()
                    .respond(self.now(), request, Err(HandlerError::Panicked));
                return;
            }
        };
        // Most handlers finish without waiting for anything: poll once here and
        // answer at once, sparing a task, two wake-ups and a channel hop per call.
        // A handler that is still pending moves to a task of its own (its next poll
        // registers that task's waker). Only then can a cancel arrive for it, so
        // only then is its signal recorded.
        let mut fut = AssertUnwindSafe(fut).catch_unwind();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // `catch_unwind()` above turns a panic during this poll into an outcome too.
        if let Poll::Ready(outcome) = fut.poll_unpin(&mut cx) {
            self.conn()
                .respond(self.now(), request, handler_reply(outcome));
            return;
        }
        self.inbound.insert(request, cancel);
        let control = self.control_tx.clone();
        self.rt.spawn(async move {
            let reply = handler_reply(fut.await);
            let _ = control.send(Control::Responded { request, reply });
        });
    }

    fn on_control(&mut self, c: Control) {
        match c {
            Control::CancelRpc(token) => {
                // Its own statement: `calls` is released before `conn` is taken.
                let id = self.core.calls().remove_token(token);
                if let Some(id) = id {
                    self.conn().cancel_rpc(self.now(), id);
                }
            }
            Control::Unsubscribe { topic, id } => {
                if let Some(slots) = self.subs.get_mut(&topic) {
                    slots.retain(|s| s.id != id);
                    if slots.is_empty() {
                        self.subs.remove(&topic);
                        let _ = self.conn().unsubscribe(self.now(), &topic);
                    }
                }
            }
            Control::Handle { rpc_type, handler } => match handler {
                Some(h) => {
                    self.conn().handle(&rpc_type);
                    self.handlers.insert(rpc_type, h);
                }
                None => {
                    self.conn().unhandle(&rpc_type);
                    self.handlers.remove(&rpc_type);
                }
            },
            Control::CatchAll(h) => {
                self.conn().set_rpc_catch_all(h.is_some());
                self.catch_all = h;
            }
            Control::Responded { request, reply } => {
                self.inbound.remove(&request);
                self.conn().respond(self.now(), request, reply);
            }
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Rpc(call) => {
                self.core.start_rpc(&mut self.conn(), call);
                self.core.dequeued();
            }
            Command::Publish {
                topic,
                payload,
                reply,
            } => {
                let _ = reply.send(self.conn().publish(self.now(), &topic, payload));
                self.core.dequeued();
            }
            Command::Send {
                to,
                direct_type,
                data,
                reply,
            } => {
                let _ = reply.send(self.conn().send(self.now(), &to, &direct_type, data));
                self.core.dequeued();
            }
            Command::Subscribe {
                topic,
                id,
                tx,
                reply,
            } => {
                let first = !self.subs.contains_key(&topic);
                if first && let Err(e) = self.conn().subscribe(self.now(), &topic) {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                self.subs.entry(topic).or_default().push(SubSlot {
                    id,
                    tx,
                    dropped: 0,
                    lagging: false,
                });
                let _ = reply.send(Ok(()));
            }
            Command::Ready { reply } => {
                if self.ready_flag.load(Ordering::Acquire) {
                    let _ = reply.send(Ok(ReadyInfo {
                        kind: self.kind.clone(),
                        features: self.conn().hub_features().to_vec(),
                    }));
                } else if self.stopped {
                    let _ = reply.send(Err(Error::Stopped));
                } else {
                    self.ready_waiters.push(reply);
                }
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.conn().peers().cloned().collect());
            }
            Command::PeerStatus { kind, reply } => {
                let _ = reply.send(self.conn().peer_status(&kind).cloned());
            }
            Command::Health { reply } => {
                let _ = reply.send(self.conn().health());
            }
            Command::Features { reply } => {
                let _ = reply.send(self.conn().hub_features().to_vec());
            }
            Command::Stop { graceful, reply } => {
                if self.stopped {
                    let _ = reply.send(());
                } else {
                    self.stop_waiters.push(reply);
                    self.conn().stop(self.now(), graceful);
                }
            }
        }
    }
}

/// The core's reply for a handler's outcome (a panic included).
fn handler_reply(
    outcome: std::thread::Result<Result<Option<Value>, HandlerFailure>>,
) -> Result<Option<Value>, HandlerError> {
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(HandlerFailure::Failed(e))) => Err(handler_error(e)),
        Ok(Err(HandlerFailure::NotSerializable)) => Err(HandlerError::NotSerializable),
        Err(_) => Err(HandlerError::Panicked),
    }
}
