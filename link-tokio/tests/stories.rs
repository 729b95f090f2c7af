//! link's integration stories (`link-stories`, shared with link-async-std) on tokio,
//! over real loopback sockets.

use axum::routing::get;

/// A multi-threaded runtime per story, like `#[tokio::test(flavor = "multi_thread")]`.
fn block_on<F: std::future::Future>(story: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(story)
}

/// The user routes the HTTP story expects.
fn story_routes() -> axum::Router {
    axum::Router::new()
        .route("/health", get(|| async { "user health wins" }))
        .route("/hello", get(|| async { "hi" }))
}

link_stories::stories! {
    runtime: link_tokio::TokioRuntime,
    block_on: block_on,
    routes: story_routes(),
    usr1: tokio::signal::unix::SignalKind::user_defined1(),
}
