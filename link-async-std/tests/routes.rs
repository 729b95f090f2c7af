//! The hand-parsed HTTP side of `HubServer` on async-io: user routes see the request
//! head, a panicking route answers 500, other methods fall through to 404, and an
//! oversized head is refused with 431.

use link_async_std::{DefaultRuntime, HubOptions, HubServerOptions, Response, Routes, block_on};
use link_stories::{Kit, SECRET};

fn routes() -> Routes {
    Routes::new()
        .get("/echo", |req| async move {
            Response::text(
                200,
                format!(
                    "{} {} {:?} {:?} {}",
                    req.method(),
                    req.path(),
                    req.query(),
                    req.header("host").is_some(),
                    req.remote().is_some_and(|a| a.ip().is_loopback()),
                ),
            )
        })
        .get("/boom", |_| async { panic!("route bug") })
        .any("/any", |req| async move {
            Response::text(201, req.method().to_owned())
        })
}

#[test]
fn user_routes_see_the_head_and_fail_safely() {
    block_on(async {
        let k = Kit::<DefaultRuntime>::default();
        let server = k
            .server_with(HubServerOptions::new(HubOptions::new(SECRET)).routes(routes()))
            .await;
        let addr = server.local_addr();

        let (status, body) = k.http(addr, "GET", "/echo/?a=1&b=2").await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"GET /echo/ Some("a=1&b=2") true true"#)
        );
        let (status, body) = k.http(addr, "HEAD", "/echo").await;
        assert_eq!(
            (status, body.as_str()),
            (200, ""),
            "HEAD: the status, no body"
        );
        let (status, _) = k.http(addr, "GET", "/boom").await;
        assert_eq!(status, 500);
        let (status, _) = k.http(addr, "POST", "/echo").await;
        assert_eq!(status, 404, "GET routes take GET and HEAD only");
        let (status, body) = k.http(addr, "DELETE", "/any").await;
        assert_eq!((status, body.as_str()), (201, "DELETE"));

        let huge = format!("/{}", "x".repeat(20 * 1024));
        let (status, _) = k.http(addr, "GET", &huge).await;
        assert_eq!(status, 431);

        // The server still answers after all that.
        let (status, _) = k.http(addr, "GET", "/health").await;
        assert_eq!(status, 200);
        server.stop().await.expect("server stops");
    });
}
