//! One hub, clients of two runtimes: a smol (or async-std) client and a tokio client
//! through a tokio hub, and the reverse, through a hub on this crate's runtime.

use link_async_std::DefaultRuntime;
use link_stories::mixed::through_a_hub_on;
use link_tokio::TokioRuntime;

// Tokio clients and the tokio hub need a tokio context (`link_tokio::block_on`);
// this crate's runtime runs its tasks on its own executor from any thread.

#[test]
fn async_io_and_tokio_clients_through_a_tokio_hub() {
    link_tokio::block_on(through_a_hub_on::<TokioRuntime, DefaultRuntime, TokioRuntime>());
}

#[test]
fn tokio_and_async_io_clients_through_an_async_io_hub() {
    link_tokio::block_on(through_a_hub_on::<
        DefaultRuntime,
        TokioRuntime,
        DefaultRuntime,
    >());
}
