//! tokio-only client behaviour: a single-threaded runtime, where a task that never
//! yields keeps every other task (the link's driver, the hub) from running.

use futures_util::StreamExt;
use link_stories::{Kit, SECRET};
use link_tokio::{ClientEvent, Event, HubOptions, TokioRuntime};
use std::future::Future;

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

/// Calls made one after another leave in that order, whichever way each goes out:
/// stepped in place, or queued for the driver while the transport is backed up. The
/// publisher keeps a few hundred publishes going at once (polled in the order they
/// were made) on a multi-threaded runtime, where the driver drains the backlog on another
/// thread between them; a later publish must never overtake one still in the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_leave_in_the_order_they_were_made() {
    const N: u64 = 20_000;
    const BATCH: u64 = 400;
    let k = Kit::<TokioRuntime>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let receiver = k
        .ready_client(&server, k.options("sink").subscription_capacity(N as usize))
        .await;
    let mut sub = receiver.subscribe("ordered").await.expect("subscribe");
    let sender = k
        .ready_client(&server, k.options("source").max_buffered_bytes(2048))
        .await;
    // The hub has registered the subscription once it answers a later request.
    let _: serde_json::Value = receiver
        .rpc("server", "link.topic.list", &serde_json::json!({}))
        .await
        .expect("topic list");
    let publisher = tokio::spawn(async move {
        for start in (0..N).step_by(BATCH as usize) {
            // Polled strictly in order, first polls included (`join_all` does not
            // promise that for long lists).
            let mut batch: Vec<_> = (start..start + BATCH)
                .map(|seq| {
                    let sender = sender.clone();
                    Some(Box::pin(
                        async move { sender.publish("ordered", &seq).await },
                    ))
                })
                .collect();
            std::future::poll_fn(|cx| {
                let mut pending = false;
                for slot in batch.iter_mut() {
                    if let Some(fut) = slot {
                        match fut.as_mut().poll(cx) {
                            std::task::Poll::Ready(r) => {
                                r.expect("publish");
                                *slot = None;
                            }
                            std::task::Poll::Pending => pending = true,
                        }
                    }
                }
                if pending {
                    std::task::Poll::Pending
                } else {
                    std::task::Poll::Ready(())
                }
            })
            .await;
        }
        sender
    });
    k.within("every publish arrives, in order", async {
        for want in 0..N {
            let msg = sub.recv().await.expect("subscription open");
            let got: u64 = msg.payload_as().expect("a number");
            assert_eq!(got, want, "publish {got} arrived where {want} was due");
        }
    })
    .await;
    let sender = publisher.await.expect("publisher");
    sender.stop().await.expect("stop");
    receiver.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

/// An RPC whose future is dropped while the call still waits in the driver's queue
/// (the transport is backed up, so the call could not go out in place) never reaches
/// its target: the call is gone before it starts, not cancelled after.
#[tokio::test(flavor = "current_thread")]
async fn an_rpc_dropped_while_queued_never_reaches_its_target() {
    use std::future::IntoFuture;
    use std::sync::{Arc, Mutex};

    let k = Kit::<TokioRuntime>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut worker = k.options("worker");
    for rpc_type in ["long", "ping"] {
        let seen = seen.clone();
        worker = worker.handle(rpc_type, move |_ctx, _: serde_json::Value| {
            seen.lock().expect("lock").push(rpc_type);
            async { Ok::<_, link_tokio::RpcHandlerError>(()) }
        });
    }
    let worker = k.ready_client(&server, worker).await;
    let caller = k
        .ready_client(&server, k.options("caller").max_buffered_bytes(1))
        .await;
    k.wait_for_peer(&caller, "worker").await;
    // One frame handed to the transport and not yet written (the driver cannot run
    // while this task does not yield) backs it up: the next call has to queue.
    caller.publish("backlog", &1).await.expect("publish");
    let mut call = caller
        .rpc::<_, serde_json::Value>("worker", "long", &())
        .into_future();
    // Polled once (queued), then dropped.
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the call cannot have ended yet");
    drop(call);
    // A later call to the same target arrives after the dropped one would have.
    let _: serde_json::Value = k
        .within(
            "ping answered",
            caller.rpc("worker", "ping", &()).into_future(),
        )
        .await
        .expect("ping");
    assert_eq!(*seen.lock().expect("lock"), ["ping"]);
    caller.stop().await.expect("stop");
    worker.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}
