//! A signal stops the server gracefully (SIGUSR1 here, so that the test process's
//! own SIGINT/SIGTERM behaviour is untouched).

#![cfg(unix)]

mod common;

use common::*;
use link_tokio::{ClientEvent, HubOptions, HubServerOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::signal::unix::SignalKind;

#[tokio::test]
async fn a_signal_triggers_graceful_shutdown() {
    let hook = Arc::new(AtomicBool::new(false));
    let h = hook.clone();
    let server = HubServerOptions::new(HubOptions::new(SECRET))
        .host("127.0.0.1")
        .port(0)
        .signals([SignalKind::user_defined1()])
        .on_shutdown(move || async move { h.store(true, Ordering::SeqCst) })
        .start()
        .await
        .expect("starts");
    let c = ready_client(&server, options("svc")).await;
    let mut events = c.events();

    let status = std::process::Command::new("kill")
        .args(["-USR1", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    within("shutdown by signal", server.wait())
        .await
        .expect("graceful");
    assert!(server.is_stopping());
    assert!(hook.load(Ordering::SeqCst));
    let d = next_link_event(&mut events, "disconnect", |e| match e {
        ClientEvent::Disconnected(d) => Some(d.clone()),
        _ => None,
    })
    .await;
    assert_eq!(d.code, Some(1001));
    c.stop_now().await.expect("stop");
}
