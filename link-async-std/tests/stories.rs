//! link's integration stories (`link-stories`, shared with link-tokio) on each
//! runtime this build has: smol (default feature) and async-std (`--features
//! async-std`), over real loopback sockets.

use link_async_std::{Response, Routes};

/// The user routes the HTTP story expects.
fn story_routes() -> Routes {
    Routes::new()
        .get("/health", |_| async {
            Response::text(200, "user health wins")
        })
        .get("/hello", |_| async { Response::text(200, "hi") })
}

#[cfg(feature = "smol")]
mod on_smol {
    link_stories::stories! {
        runtime: link_async_std::SmolRuntime,
        block_on: smol::block_on,
        routes: super::story_routes(),
        usr1: async_signal::Signal::Usr1,
    }
}

#[cfg(feature = "async-std")]
mod on_async_std {
    link_stories::stories! {
        runtime: link_async_std::AsyncStdRuntime,
        block_on: async_std::task::block_on,
        routes: super::story_routes(),
        usr1: async_signal::Signal::Usr1,
    }
}
