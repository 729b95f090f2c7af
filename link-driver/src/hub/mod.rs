//! `Hub`: the application's handle on a running `HubState`. Attach any upgraded
//! WebSocket to it; register server RPC handlers; watch its events; ask for its
//! health and state; drain it for a graceful shutdown.

mod driver;
mod options;

pub use options::{AclAnswer, HubOptions, PublishCheck, RpcCheck, SendCheck, SubscribeCheck};

use crate::error::Error;
use crate::handler::{self, RpcHandlerError};
use crate::transport::Transport;
pub(crate) use driver::SleepFn;
use driver::{HubControl, HubCore};
use futures_util::Stream;
use link_sansio::hub::{ConnId, HubEvent, HubHealth, HubStateSnapshot};
use serde::{Serialize, de::DeserializeOwned};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::Instrument;

/// A running hub. Cheap to clone; all clones drive the same `HubState`.
#[derive(Clone, Debug)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    core: HubCore,
    /// Weak, so that event streams end when the hub does.
    events: broadcast::WeakSender<HubEvent>,
    next_conn: AtomicU64,
    max_message_bytes: usize,
    /// The runtime's timer, for connection tasks (which know no runtime).
    sleep: driver::SleepFn,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.core.lock().handles_dropped();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

/// What a server RPC handler learns about the call besides its data.
#[derive(Debug, Clone)]
pub struct ServerRpcContext {
    from: String,
    rpc_type: String,
    request_id: String,
}

impl ServerRpcContext {
    /// The caller's authenticated kind.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The RPC type called.
    pub fn rpc_type(&self) -> &str {
        &self.rpc_type
    }

    /// The request's envelope id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

/// An item of [`Hub::events`].
#[derive(Debug, Clone)]
#[non_exhaustive]
// Nearly every item is `Hub`: boxing it would cost an allocation per event and save
// no memory.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// An event of the hub (`peer.connect`, `protocol-error`, `rpc.forwarded`, …).
    Hub(HubEvent),
    /// This stream fell behind and missed events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

impl Hub {
    pub(crate) fn new(
        core: HubCore,
        events: broadcast::WeakSender<HubEvent>,
        max_message_bytes: usize,
        sleep: driver::SleepFn,
    ) -> Hub {
        Hub {
            shared: Arc::new(Shared {
                core,
                events,
                next_conn: AtomicU64::new(1),
                max_message_bytes,
                sleep,
            }),
        }
    }

    fn control(&self, c: HubControl) {
        self.shared.core.lock().control(c);
    }

    /// Run one upgraded WebSocket as a hub connection until it closes. Call it from
    /// your upgrade handler (it is the whole life of the socket, so spawn it or return
    /// it as the upgrade's future). `remote` appears in `peer.timeout` events.
    ///
    /// Cap the socket's message size at [`Hub::max_message_bytes`] when upgrading,
    /// so oversized frames close with 1009 like the reference.
    pub fn attach<T: Transport>(
        &self,
        socket: T,
        remote: Option<SocketAddr>,
    ) -> impl Future<Output = ()> + Send + use<T> {
        let conn = ConnId(self.shared.next_conn.fetch_add(1, Ordering::Relaxed));
        let core = self.shared.core.clone();
        let sleep = self.shared.sleep.clone();
        let span = tracing::info_span!("link.hub.conn", conn = conn.0, remote = ?remote);
        async move {
            let (out_tx, out_rx) = mpsc::unbounded_channel();
            core.lock().opened(conn, remote, out_tx);
            driver::run_connection(conn, socket, core, out_rx, sleep).await;
        }
        .instrument(span)
    }

    /// The hub runtime's timer, as a function (for code that knows no runtime type).
    pub(crate) fn sleep_fn(&self) -> driver::SleepFn {
        self.shared.sleep.clone()
    }

    /// The frame size cap for sockets attached to this hub (`maxMessageBytes`).
    pub fn max_message_bytes(&self) -> usize {
        self.shared.max_message_bytes
    }

    /// Register (or replace) the server handler for `rpc_type`.
    pub fn handle<Req, Resp, F, Fut>(&self, rpc_type: &str, f: F)
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(ServerRpcContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
    {
        self.control(HubControl::Handle {
            rpc_type: rpc_type.to_owned(),
            handler: Some(handler::erase(f)),
        });
    }

    /// Remove the server handler for `rpc_type` (a built-in of that name applies again).
    pub fn unhandle(&self, rpc_type: &str) {
        self.control(HubControl::Handle {
            rpc_type: rpc_type.to_owned(),
            handler: None,
        });
    }

    /// Install (or replace) the catch-all server handler.
    pub fn handle_all<Req, Resp, F, Fut>(&self, f: F)
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(ServerRpcContext, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
    {
        self.control(HubControl::CatchAll(Some(handler::erase(f))));
    }

    /// Remove the catch-all server handler.
    pub fn unhandle_all(&self) {
        self.control(HubControl::CatchAll(None));
    }

    /// Every hub event from now on (bounded: a slow stream gets [`Event::Lagged`]).
    pub fn events(&self) -> HubEvents {
        let rx = self.shared.events.upgrade().map(|tx| tx.subscribe());
        let inner = futures_util::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Ok(ev) => Some((Event::Hub(ev), Some(rx))),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some((Event::Lagged { missed }, Some(rx)))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        HubEvents {
            inner: Box::pin(inner),
        }
    }

    /// The `health()` counters (what `link.health` and `/health` report).
    pub async fn health(&self) -> Result<HubHealth, Error> {
        Ok(self.shared.core.lock().health())
    }

    /// The `getState()` snapshot (peers and their last statuses).
    pub async fn state(&self) -> Result<HubStateSnapshot, Error> {
        Ok(self.shared.core.lock().state())
    }

    /// Graceful drain: refuse new hellos, close pending sockets with 1001 and peers
    /// with a close frame without a code (seen as 1005, as after the reference's
    /// `hub.stop()`); resolves once every socket is gone. Bound it with a timeout and
    /// follow with [`Hub::terminate_all`].
    pub async fn drain(&self) -> Result<(), Error> {
        self.drain_inner(None).await
    }

    /// Like [`Hub::drain`], but every socket is first closed with `code` and `reason`
    /// (`HubServer` uses 1001 `server shutdown`, as the reference's server does).
    pub async fn drain_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.drain_inner(Some((code, reason.to_owned()))).await
    }

    /// Drop every remaining socket without a close frame (after a drain timed out).
    pub async fn terminate_all(&self) -> Result<(), Error> {
        self.shared.core.lock().terminate_all();
        Ok(())
    }

    /// Number of sockets currently attached.
    pub async fn connection_count(&self) -> Result<usize, Error> {
        Ok(self.shared.core.lock().connection_count())
    }

    async fn drain_inner(&self, close: Option<(u16, String)>) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.shared.core.lock().drain(close, tx);
        rx.await.map_err(|_| Error::Stopped)
    }
}

/// The stream returned by [`Hub::events`].
pub struct HubEvents {
    inner: Pin<Box<dyn Stream<Item = Event> + Send>>,
}

impl std::fmt::Debug for HubEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubEvents").finish_non_exhaustive()
    }
}

impl Stream for HubEvents {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.inner.as_mut().poll_next(cx)
    }
}
