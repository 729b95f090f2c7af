//! A cancellation signal handed to RPC handlers: set once by the driver when the
//! caller sends `rpc.cancel` (or the link goes away), awaited by any number of tasks.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct Inner {
    cancelled: bool,
    wakers: Vec<Waker>,
}

/// Tells a handler that its caller no longer wants the answer. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CancelSignal {
    inner: Arc<Mutex<Inner>>,
}

impl CancelSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fire the signal, waking every task waiting in [`CancelSignal::cancelled`].
    pub fn cancel(&self) {
        let wakers = {
            let mut g = match self.inner.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            g.cancelled = true;
            std::mem::take(&mut g.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Whether the signal has fired.
    pub fn is_cancelled(&self) -> bool {
        match self.inner.lock() {
            Ok(g) => g.cancelled,
            Err(p) => p.into_inner().cancelled,
        }
    }

    /// Completes once the signal fires (at once if it already has). Use it in a
    /// `select!` next to the handler's work.
    pub fn cancelled(&self) -> Cancelled {
        Cancelled {
            signal: self.clone(),
        }
    }
}

/// Future returned by [`CancelSignal::cancelled`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Cancelled {
    signal: CancelSignal,
}

impl Future for Cancelled {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = match self.signal.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.cancelled {
            return Poll::Ready(());
        }
        if !g.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            g.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
