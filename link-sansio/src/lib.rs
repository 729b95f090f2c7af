//! The link protocol as pure state machines: no sockets, no clock, no randomness.
//!
//! - [`wire`] turns bytes into verified, typed messages and back, byte-identical with
//!   the Node.js reference (canonical JSON, HMAC, replay guard, validation).
//! - [`hub`] is `HubState`, the hub; [`client`] is `Connection`, one client's link.
//!
//! # The contract
//!
//! Each state machine has one `handle_input(Input)` and one `poll_output() -> Output`.
//! Inputs carry the time (`now: Instant`, plus wall-clock milliseconds where the
//! protocol stamps messages). After any mutation (an input or an application command
//! such as `rpc` or `publish`), drain `poll_output()` until it returns
//! `Output::Timeout(deadline)`: that value means "nothing more to do" and is the next
//! deadline at which to call `handle_input(Input::Timeout(..))`.
//!
//! Ids and jitter come from a seed given at construction, so a run is reproducible
//! from its inputs alone.

pub mod client;
pub mod hub;
pub mod seeded;
pub mod time;
pub mod wire;
