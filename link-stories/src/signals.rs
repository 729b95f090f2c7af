//! A signal stops the server gracefully (SIGUSR1, so that the test process's own
//! SIGINT/SIGTERM behaviour is untouched).

use crate::{Kit, SECRET};
use link_driver::hub::HubOptions;
use link_driver::server::{HubServerOptions, Serve};
use link_sansio::client::ClientEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One signal story at a time per process: the signal reaches every server
/// listening for it (a build with two runtimes runs the story twice).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `usr1` is the runtime's name for SIGUSR1.
pub async fn a_signal_triggers_graceful_shutdown<R: Serve>(usr1: R::Signal) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let k = Kit::<R>::default();
    let hook = Arc::new(AtomicBool::new(false));
    let h = hook.clone();
    let server = HubServerOptions::new(HubOptions::<R>::new(SECRET))
        .host("127.0.0.1")
        .port(0)
        .signals([usr1])
        .on_shutdown(move || async move { h.store(true, Ordering::SeqCst) })
        .start()
        .await
        .expect("starts");
    let c = k.ready_client(&server, k.options("svc")).await;
    let mut events = c.events();

    let status = std::process::Command::new("kill")
        .args(["-USR1", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    k.within("shutdown by signal", server.wait())
        .await
        .expect("graceful");
    assert!(server.is_stopping());
    assert!(hook.load(Ordering::SeqCst));
    let d = k
        .next_link_event(&mut events, "disconnect", |e| match e {
            ClientEvent::Disconnected(d) => Some(d.clone()),
            _ => None,
        })
        .await;
    assert_eq!(d.code, Some(1001));
    c.stop_now().await.expect("stop");
}
