//! tokio-only client behaviour: a single-threaded runtime, where a task that never
//! yields keeps every other task (the link's driver, the hub) from running.

use futures_util::StreamExt;
use link_stories::{Kit, SECRET};
use link_tokio::{ClientEvent, Event, HubOptions, TokioRuntime};

/// `send` steps the core in place while frames go straight out, and queues behind the
/// driver (waiting its turn) once the transport is backed up. So a sender in a loop
/// that yields nowhere else, on one thread, is paced rather than refused: with every
/// send stepped in place, the driver would never run, and the 4 KiB backlog and
/// 16 KiB outbox would overflow within a hundred messages.
#[tokio::test(flavor = "current_thread")]
async fn a_sender_that_never_yields_is_paced_not_refused() {
    const N: u64 = 3_000;
    let k = Kit::<TokioRuntime>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let receiver = k.ready_client(&server, k.options("sink")).await;
    let mut events = receiver.events();
    let sender = k
        .ready_client(
            &server,
            k.options("source")
                .max_buffered_bytes(4096)
                .max_outbox_bytes(16_384),
        )
        .await;
    k.wait_for_peer(&sender, "sink").await;
    for seq in 0..N {
        if let Err(e) = sender.send("sink", "tick", &seq).await {
            panic!("send {seq} of {N} refused: {e}");
        }
    }
    // Every message arrives (or is counted as missed by a lagging event stream).
    let (mut arrived, mut missed) = (0, 0);
    k.within("every tick arrives", async {
        while arrived + missed < N {
            match events.next().await {
                Some(Event::Link(ClientEvent::Direct { direct_type, .. }))
                    if direct_type == "tick" =>
                {
                    arrived += 1
                }
                Some(Event::Lagged { missed: m }) => missed += m,
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    })
    .await;
    assert!(arrived > 0, "{arrived} arrived, {missed} missed");
    sender.stop().await.expect("stop");
    receiver.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}
