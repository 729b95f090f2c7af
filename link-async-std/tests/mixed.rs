//! One hub, clients of two runtimes: a smol (or async-std) client and a tokio client
//! through a tokio hub, and the reverse, through a hub on this crate's runtime.

use link_async_std::{DefaultRuntime, HubOptions, HubServerOptions};
use link_stories::SECRET;
use link_stories::mixed::clients_of_two_runtimes_talk;
use link_tokio::TokioRuntime;

/// Tokio clients and the tokio hub need a tokio context; this crate's runtime runs
/// its tasks on its own executor from any thread.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn async_io_and_tokio_clients_through_a_tokio_hub() {
    tokio_runtime().block_on(async {
        let server = link_tokio::HubServerOptions::new(link_tokio::HubOptions::new(SECRET))
            .host("127.0.0.1")
            .port(0)
            .handle_signals(false)
            .start()
            .await
            .expect("tokio hub");
        clients_of_two_runtimes_talk::<DefaultRuntime, TokioRuntime>(&server.url()).await;
        server.stop().await.expect("tokio hub stops");
    });
}

#[test]
fn tokio_and_async_io_clients_through_an_async_io_hub() {
    tokio_runtime().block_on(async {
        let server = HubServerOptions::new(HubOptions::new(SECRET))
            .host("127.0.0.1")
            .port(0)
            .handle_signals(false)
            .start()
            .await
            .expect("hub");
        clients_of_two_runtimes_talk::<TokioRuntime, DefaultRuntime>(&server.url()).await;
        server.stop().await.expect("hub stops");
    });
}
