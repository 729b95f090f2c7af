//! `LinkClient`: the application's handle on one link to a hub. Cheap to clone; every
//! clone talks to the same driver task, which owns the sans-IO `Connection`.

mod driver;
mod options;

pub use options::LinkOptions;

use crate::cancel::CancelSignal;
use crate::error::Error;
use crate::handler::{self, ErasedHandler, RpcHandlerError};
use crate::payload;
use crate::runtime::now;
use driver::{Command, Control, QueueSlot, RpcCall};
use futures_util::Stream;
use link_sansio::client::{ClientEvent, ClientHealth, RpcError};
use link_sansio::wire::Value;
use link_sansio::wire::message::{PeerEntry, StatusEntry};
use serde::{Serialize, de::DeserializeOwned};
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A handle on a link to a hub: RPC, pub/sub, direct messages, peers and status.
///
/// Cloning is cheap. The link runs in a background task until [`LinkClient::stop`]
/// or until every handle is dropped.
#[derive(Clone, Debug)]
pub struct LinkClient {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The core, stepped in place by `send`, `publish` and `rpc` when it takes frames at once.
    core: Arc<driver::SharedCore>,
    commands: mpsc::Sender<Command>,
    control: mpsc::UnboundedSender<Control>,
    /// Weak, so that event streams end when the driver does.
    events: broadcast::WeakSender<Event>,
    listeners: Arc<AtomicU64>,
    max_listeners: usize,
    ready: Arc<AtomicBool>,
    next_token: AtomicU64,
    kind: String,
    subscription_capacity: usize,
}

/// What `ready()` resolves with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyInfo {
    /// This peer's kind.
    pub kind: String,
    /// The hub's advertised features (`["topics", "direct"]`).
    pub features: Vec<String>,
}

/// Everything the link reports: every event of the core [`ClientEvent`] (`ready`,
/// `disconnect`, `rpc.complete`, `peer.connect`, `protocol-error`, …) plus the
/// adapter's own.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// An event of the link itself.
    Link(ClientEvent),
    /// A [`Subscription`] is not keeping up: messages for it are being dropped.
    /// Sent once per episode (again after it has caught up and falls behind anew).
    SlowSubscriber {
        /// The topic.
        topic: String,
        /// Messages dropped for that subscription so far.
        dropped: u64,
    },
    /// This event stream fell behind and missed events.
    Lagged {
        /// How many were missed.
        missed: u64,
    },
    /// The WebSocket failed (`ws-error`): a connect error or a transport failure.
    TransportError {
        /// What happened.
        error: String,
    },
}

/// A message published on a subscribed topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMessage {
    /// The topic.
    pub topic: String,
    /// The publisher's authenticated kind.
    pub from: Option<String>,
    /// The payload (`None` when the publisher sent none).
    pub payload: Option<Value>,
}

impl TopicMessage {
    /// The payload decoded into `T` (absent = JSON `null`).
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        payload::decode(self.payload.as_ref())
    }
}

/// What an RPC handler learns about the call besides its data.
#[derive(Debug, Clone)]
pub struct RpcContext {
    from: Option<String>,
    rpc_type: String,
    cancel: CancelSignal,
}

impl RpcContext {
    /// The caller's authenticated kind.
    pub fn from(&self) -> Option<&str> {
        self.from.as_deref()
    }

    /// The RPC type called.
    pub fn rpc_type(&self) -> &str {
        &self.rpc_type
    }

    /// The cancellation signal: fires when the caller sends `rpc.cancel` (or the link
    /// goes away); the response is then suppressed, so the handler may stop early.
    pub fn cancel_signal(&self) -> &CancelSignal {
        &self.cancel
    }

    /// Whether the call has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl LinkClient {
    fn token(&self) -> u64 {
        self.shared.next_token.fetch_add(1, Ordering::Relaxed)
    }

    async fn command<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        self.command_with(None, make).await
    }

    /// [`Self::command`], for a call that took `slot` in the queue if it did.
    async fn command_with<T>(
        &self,
        slot: Option<QueueSlot<'_>>,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(make(tx))
            .await
            .map_err(|_| Error::Stopped)?;
        if let Some(slot) = slot {
            slot.queued();
        }
        rx.await.map_err(|_| Error::Stopped)
    }

    /// This peer's kind.
    pub fn kind(&self) -> &str {
        &self.shared.kind
    }

    /// Wait until the hub has accepted the hello (at once if it has). Fails with
    /// [`Error::HelloRejected`] on `hello.ack ok:false` and [`Error::Stopped`] if the
    /// link stops first. Bound it with your runtime's timeout.
    pub async fn ready(&self) -> Result<ReadyInfo, Error> {
        self.command(|reply| Command::Ready { reply }).await?
    }

    /// Whether the hub has accepted the hello on the current connection.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// Call `rpc_type` on the peer of kind `to` (or `"server"` for the hub) with
    /// `req`, decoding the result into `Resp`. Await the returned [`Rpc`]; set a
    /// per-call timeout with [`Rpc::timeout`]. `&()` sends no `rpcData`.
    ///
    /// Dropping the future before it completes cancels the call: the peer receives
    /// `rpc.cancel` and its handler's cancellation signal fires.
    pub fn rpc<Req, Resp>(&self, to: &str, rpc_type: &str, req: &Req) -> Rpc<Resp>
    where
        Req: Serialize + ?Sized + 'static,
        Resp: DeserializeOwned,
    {
        Rpc {
            client: self.clone(),
            to: to.to_owned(),
            rpc_type: rpc_type.to_owned(),
            data: payload::encode(req),
            timeout: None,
            _resp: PhantomData,
        }
    }

    /// Publish `payload` on `topic` to every subscriber but this peer (at most once;
    /// queued while the link is down). `&()` sends no payload.
    pub async fn publish<T: Serialize + ?Sized + 'static>(
        &self,
        topic: &str,
        payload: &T,
    ) -> Result<(), Error> {
        let payload = payload::encode(payload)?;
        let (payload, slot) = match self
            .shared
            .core
            .step_if_sending(payload, |conn, p| conn.publish(now(), topic, p))
        {
            Ok(sent) => return sent.map_err(Error::from),
            Err(refused) => refused,
        };
        let topic = topic.to_owned();
        self.command_with(Some(slot), |reply| Command::Publish {
            topic,
            payload,
            reply,
        })
        .await?
        .map_err(Error::from)
    }

    /// Send a fire-and-forget `direct` message of `direct_type` to the peer `to`.
    pub async fn send<T: Serialize + ?Sized + 'static>(
        &self,
        to: &str,
        direct_type: &str,
        data: &T,
    ) -> Result<(), Error> {
        let data = payload::encode(data)?;
        let (data, slot) = match self
            .shared
            .core
            .step_if_sending(data, |conn, d| conn.send(now(), to, direct_type, d))
        {
            Ok(sent) => return sent.map_err(Error::from),
            Err(refused) => refused,
        };
        let (to, direct_type) = (to.to_owned(), direct_type.to_owned());
        self.command_with(Some(slot), |reply| Command::Send {
            to,
            direct_type,
            data,
            reply,
        })
        .await?
        .map_err(Error::from)
    }

    /// Subscribe to `topic`. The returned stream yields every message published on it
    /// (replayed to the hub after each reconnect); dropping it unsubscribes. Several
    /// subscriptions to one topic share one hub subscription.
    ///
    /// On a ready link this returns once the hub has registered the subscription, so
    /// whatever anyone publishes afterwards reaches it. The protocol acknowledges no
    /// subscribe, but a hub handles each socket's frames in order: the answer to a
    /// `link.topic.list` request sent after it proves it. (A hub with a subscribe ACL
    /// decides subscriptions apart from RPCs, so there it proves nothing.)
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, Error> {
        let (tx, rx) = mpsc::channel(self.shared.subscription_capacity);
        let id = self.token();
        let t = topic.to_owned();
        self.command(|reply| Command::Subscribe {
            topic: t,
            id,
            tx,
            reply,
        })
        .await??;
        if self.is_ready() {
            // Any answer will do, an error included; none (the link dropped) leaves
            // the subscription to be replayed at the next ready.
            let _ = self
                .rpc::<_, serde_json::Value>(
                    "server",
                    "link.topic.list",
                    &serde_json::json!({ "topic": topic }),
                )
                .await;
        }
        Ok(Subscription {
            topic: topic.to_owned(),
            id,
            rx,
            control: self.shared.control.clone(),
        })
    }

    /// Register (or replace) the handler for `rpc_type`: an async closure
    /// `|ctx, req| async move { Ok(resp) }` with serde types (`()` response = no result).
    pub fn handle<Req, Resp, F, Fut>(&self, rpc_type: &str, f: F)
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(RpcContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
    {
        let h: ErasedHandler<RpcContext> = handler::erase(f);
        let _ = self.shared.control.send(Control::Handle {
            rpc_type: rpc_type.to_owned(),
            handler: Some(h),
        });
    }

    /// Remove the handler for `rpc_type`; later requests get `RPC_UNKNOWN_TYPE` (or go
    /// to the catch-all).
    pub fn unhandle(&self, rpc_type: &str) {
        let _ = self.shared.control.send(Control::Handle {
            rpc_type: rpc_type.to_owned(),
            handler: None,
        });
    }

    /// Install (or replace) a catch-all handler for types without their own handler.
    pub fn handle_all<Req, Resp, F, Fut>(&self, f: F)
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(RpcContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
    {
        let _ = self
            .shared
            .control
            .send(Control::CatchAll(Some(handler::erase(f))));
    }

    /// Remove the catch-all handler.
    pub fn unhandle_all(&self) {
        let _ = self.shared.control.send(Control::CatchAll(None));
    }

    /// A stream of every event from now on. Bounded: a stream that falls behind gets
    /// [`Event::Lagged`] instead of unbounded memory.
    pub fn events(&self) -> EventStream {
        let n = self.shared.listeners.fetch_add(1, Ordering::Relaxed) + 1;
        if n as usize > self.shared.max_listeners {
            tracing::warn!(
                listeners = n,
                max = self.shared.max_listeners,
                "more event streams than max_listeners: possible leak"
            );
        }
        EventStream::new(
            self.shared.events.upgrade().map(|tx| tx.subscribe()),
            self.shared.listeners.clone(),
        )
    }

    /// The peers in the hub's latest `peers.update` (including this one).
    pub async fn peers(&self) -> Result<Vec<PeerEntry>, Error> {
        self.command(|reply| Command::Peers { reply }).await
    }

    /// The last status relayed for `kind`.
    pub async fn peer_status(&self, kind: &str) -> Result<Option<StatusEntry>, Error> {
        let kind = kind.to_owned();
        self.command(|reply| Command::PeerStatus { kind, reply })
            .await
    }

    /// The `health()` snapshot.
    pub async fn health(&self) -> Result<ClientHealth, Error> {
        self.command(|reply| Command::Health { reply }).await
    }

    /// The hub's features from the last `hello.ack`.
    pub async fn hub_features(&self) -> Result<Vec<String>, Error> {
        self.command(|reply| Command::Features { reply }).await
    }

    /// Stop gracefully: flush the outbox and let pending RPCs settle (within
    /// `stop_drain`), close the connection, reject what is left with
    /// `RPC_DISCONNECT`. Resolves once the link has stopped and the close handshake
    /// has finished (at most 2 s after the close frame), so a process may exit right
    /// after it; no reconnects follow.
    pub async fn stop(&self) -> Result<(), Error> {
        match self
            .command(|reply| Command::Stop {
                graceful: true,
                reply,
            })
            .await
        {
            Ok(()) | Err(Error::Stopped) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Stop at once, without draining.
    pub async fn stop_now(&self) -> Result<(), Error> {
        match self
            .command(|reply| Command::Stop {
                graceful: false,
                reply,
            })
            .await
        {
            Ok(()) | Err(Error::Stopped) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// An RPC in preparation; await it (it implements `IntoFuture`).
#[must_use = "an Rpc does nothing until awaited"]
#[derive(Debug)]
pub struct Rpc<Resp> {
    client: LinkClient,
    to: String,
    rpc_type: String,
    data: Result<Option<Value>, Error>,
    timeout: Option<Duration>,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp> Rpc<Resp> {
    /// This call's timeout (`Duration::ZERO` = none); default: the client's
    /// `default_rpc_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Sends `rpc.cancel` if the call is dropped before it completes.
struct CancelOnDrop {
    token: u64,
    control: mpsc::UnboundedSender<Control>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.control.send(Control::CancelRpc(self.token));
        }
    }
}

impl<Resp: DeserializeOwned + Send + 'static> IntoFuture for Rpc<Resp> {
    type Output = Result<Resp, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Resp, Error>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let data = self.data?;
            let token = self.client.token();
            let (tx, rx) = oneshot::channel::<Result<Option<Value>, RpcError>>();
            let mut guard = CancelOnDrop {
                token,
                control: self.client.shared.control.clone(),
                armed: true,
            };
            let call = RpcCall {
                token,
                to: self.to,
                rpc_type: self.rpc_type,
                data,
                timeout: self.timeout,
                reply: tx,
            };
            let shared = &self.client.shared;
            let started = shared
                .core
                .step_if_sending(call, |conn, call| shared.core.start_rpc(conn, call));
            if let Err((call, slot)) = started {
                if shared.commands.send(Command::Rpc(call)).await.is_err() {
                    guard.armed = false;
                    return Err(Error::Stopped);
                }
                slot.queued();
            }
            let outcome = rx.await;
            guard.armed = false;
            let result = outcome.map_err(|_| Error::Stopped)??;
            payload::decode(result.as_ref())
        })
    }
}

/// Messages on one topic; unsubscribes when dropped.
#[derive(Debug)]
pub struct Subscription {
    topic: String,
    id: u64,
    rx: mpsc::Receiver<TopicMessage>,
    control: mpsc::UnboundedSender<Control>,
}

impl Subscription {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message (`None` once the link has stopped).
    pub async fn recv(&mut self) -> Option<TopicMessage> {
        self.rx.recv().await
    }
}

impl Stream for Subscription {
    type Item = TopicMessage;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TopicMessage>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Unsubscribe {
            topic: std::mem::take(&mut self.topic),
            id: self.id,
        });
    }
}

/// The stream returned by [`LinkClient::events`].
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = Event> + Send>>,
    listeners: Arc<AtomicU64>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(rx: Option<broadcast::Receiver<Event>>, listeners: Arc<AtomicU64>) -> Self {
        let inner = futures_util::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Ok(ev) => Some((ev, Some(rx))),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some((Event::Lagged { missed }, Some(rx)))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Self {
            inner: Box::pin(inner),
            listeners,
        }
    }
}

impl Stream for EventStream {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}
