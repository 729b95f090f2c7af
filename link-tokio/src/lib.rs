//! link on tokio.

pub mod runtime;
pub mod transport;
