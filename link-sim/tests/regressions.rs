//! Minimal reproductions of what the simulator and the fuzz targets found, kept as
//! tests so that the behaviour they pin down stays put.

use std::time::{Duration, Instant};

use link_sansio::client::{ClientConfig, ClientError, Connection, Input, Output};
use link_sansio::time::Now;
use link_sansio::wire::Value;

fn drain(conn: &mut Connection) -> Vec<Output> {
    let mut outs = Vec::new();
    loop {
        match conn.poll_output() {
            Output::Timeout(_) | Output::Idle => return outs,
            o => outs.push(o),
        }
    }
}

/// client_inputs, 17:58 UTC: with the outbox full, subscription changes are still
/// queued (the client never refuses one), so `outbox_bytes` passes `max_outbox_bytes`.
/// What keeps this bounded is that changes are conflated per topic: flipping one topic
/// a hundred times leaves at most one item for it.
#[test]
fn subscription_changes_beyond_a_full_outbox_stay_one_per_topic() {
    let mut cfg = ClientConfig::new("ws://hub/", "a", "secret");
    cfg.max_outbox_bytes = 512;
    let mut conn = Connection::new(cfg, 1).expect("valid config");
    let t0 = Instant::now();
    let mut now = Now::new(t0, 1_750_000_000_000);
    conn.start(now);
    drain(&mut conn);
    conn.handle_input(now, Input::TransportUp);
    drain(&mut conn);

    // Not acknowledged yet: publishes queue until the outbox refuses one.
    let mut refused = false;
    for i in 0..20 {
        now = now.advance(Duration::from_millis(1));
        match conn.publish(now, "news", Some(Value::Number(f64::from(i)))) {
            Ok(()) => {}
            Err(ClientError::OutboxFull { .. }) => refused = true,
            Err(e) => panic!("publish refused for another reason: {e}"),
        }
    }
    assert!(refused, "the outbox never filled");
    let full = conn.health().outbox_bytes;
    assert!(full <= 512, "publishes alone went over the cap: {full}");

    for _ in 0..100 {
        for topic in ["t1", "t2", "t3"] {
            conn.subscribe(now, topic)
                .expect("subscribe is never refused");
            conn.unsubscribe(now, topic)
                .expect("unsubscribe is never refused");
        }
    }
    conn.subscribe(now, "t1")
        .expect("subscribe is never refused");
    drain(&mut conn);
    let h = conn.health();
    assert!(
        h.outbox_bytes <= 512 + 3 * (300 + 2),
        "subscription changes are not conflated per topic: {} bytes in {} items",
        h.outbox_bytes,
        h.outbox_size
    );
    assert_eq!(h.subscriptions, 1);
}
