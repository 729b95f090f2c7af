//! RPC bookkeeping: the pending table of outbound calls (with their deadlines) and the
//! table of inbound requests the application is handling, plus the wire body of a
//! handler's answer (sanitised as the reference does).

use std::fmt;

/// Handle of an outbound RPC, returned by `Connection::rpc` and carried by its
/// `RpcComplete` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RpcId(pub u64);

impl fmt::Display for RpcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rpc#{}", self.0)
    }
}

/// Handle of an inbound request, carried by `ClientEvent::RpcRequest`; answer it with
/// `Connection::respond`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboundRpcId(pub u64);

impl fmt::Display for InboundRpcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inbound#{}", self.0)
    }
}
