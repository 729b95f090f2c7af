//! link's integration stories (`link-stories`, shared with link-async-std) on tokio,
//! over real loopback sockets.

use axum::routing::get;

/// The user routes the HTTP story expects.
fn story_routes() -> axum::Router {
    axum::Router::new()
        .route("/health", get(|| async { "user health wins" }))
        .route("/hello", get(|| async { "hi" }))
}

link_stories::stories! {
    runtime: link_tokio::TokioRuntime,
    block_on: link_tokio::block_on,
    routes: story_routes(),
    usr1: tokio::signal::unix::SignalKind::user_defined1(),
}
