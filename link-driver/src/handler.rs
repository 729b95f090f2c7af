//! RPC handlers as async closures: the error a handler returns, and the type-erased
//! form the drivers store (shared by client handlers and hub server handlers).

use crate::payload;
use link_sansio::wire::Value;
use serde::{Serialize, de::DeserializeOwned};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed handler future.
pub(crate) type HandlerFuture =
    Pin<Box<dyn Future<Output = Result<Option<Value>, HandlerFailure>> + Send>>;

/// A handler after type erasure: context and raw data in, wire result out.
pub(crate) type ErasedHandler<C> = Arc<dyn Fn(C, Option<Value>) -> HandlerFuture + Send + Sync>;

/// Why an erased handler produced no result.
#[derive(Debug)]
pub(crate) enum HandlerFailure {
    /// The handler returned an error.
    Failed(RpcHandlerError),
    /// The result could not be encoded for the wire.
    NotSerializable,
}

/// How an RPC handler fails.
///
/// Like the reference, an error is *sanitised* on the wire (`RPC_HANDLER_ERROR` /
/// `Internal handler error`) unless it is exposed: [`RpcHandlerError::new`] is the
/// reference's `RpcHandlerError` (exposed: the caller sees its message, code and data);
/// any other error converted with `?` is internal and stays local (unless the
/// `expose_rpc_errors` option is set).
#[derive(Clone, PartialEq)]
pub struct RpcHandlerError {
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    pub(crate) data: Option<serde_json::Value>,
    pub(crate) expose: bool,
}

impl RpcHandlerError {
    /// A caller-visible error with `message` (code `RPC_HANDLER_ERROR` unless set).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            code: None,
            message: message.into(),
            data: None,
            expose: true,
        }
    }

    /// An internal error: logged locally; the caller sees `Internal handler error`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: None,
            message: message.into(),
            data: None,
            expose: false,
        }
    }

    /// Set the error code the caller sees.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Attach structured data (sent only when exposed, and only if wire-safe).
    pub fn with_data<T: Serialize + ?Sized>(mut self, data: &T) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// The code (`None` = `RPC_HANDLER_ERROR`).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the caller may see the message.
    pub fn is_exposed(&self) -> bool {
        self.expose
    }

    pub(crate) fn wire_data(&self) -> Option<Value> {
        self.data.as_ref().and_then(|d| Value::from_serde(d).ok())
    }
}

impl fmt::Debug for RpcHandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcHandlerError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("expose", &self.expose)
            .finish()
    }
}

impl fmt::Display for RpcHandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for RpcHandlerError {
    fn from(e: E) -> Self {
        RpcHandlerError::internal(e.to_string())
    }
}

/// Wrap a typed async closure: decode the request with serde, encode the response
/// (`()` = no `result`), keep errors typed.
pub(crate) fn erase<C, Req, Resp, F, Fut>(f: F) -> ErasedHandler<C>
where
    C: Send + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(C, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, RpcHandlerError>> + Send + 'static,
{
    Arc::new(move |ctx: C, data: Option<Value>| -> HandlerFuture {
        match payload::decode::<Req>(data.as_ref()) {
            Err(e) => {
                let err = RpcHandlerError::internal(format!("invalid request data: {e}"));
                Box::pin(std::future::ready(Err(HandlerFailure::Failed(err))))
            }
            Ok(req) => {
                let fut = f(ctx, req);
                Box::pin(async move {
                    let resp = fut.await.map_err(HandlerFailure::Failed)?;
                    payload::encode(&resp).map_err(|_| HandlerFailure::NotSerializable)
                })
            }
        }
    })
}
