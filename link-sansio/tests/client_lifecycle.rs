//! Connection lifecycle against a fake hub: hello, readiness, rejection, the hello-ack
//! diagnostic, displacement, reconnect backoff, keepalive, configuration checks.

mod client_support;

use std::time::Duration;

use client_support::*;
use link_sansio::client::{
    ClientConfig, ClientEvent, ConfigError, Connection, DisconnectInfo, HelloAckDiagnosis, Input,
    RpcError,
};
use link_sansio::wire::DropReason;
use serde_json::json;

fn reconnect_delays(events: &[ClientEvent]) -> Vec<(u32, Duration)> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::ReconnectScheduled { attempt, delay } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect()
}

#[test]
fn start_asks_to_connect_and_sends_hello_first_on_open() {
    let mut h = Harness::new(config("worker"));
    assert!(matches!(
        h.conn.poll_output(),
        link_sansio::client::Output::Idle
    ));
    h.conn.start(h.now);
    h.pump();
    assert_eq!(h.take_actions(), vec![Action::Connect(URL.into())]);
    assert!(!h.conn.is_connected());
    // A publish before the transport is up waits in the outbox.
    h.conn
        .publish(h.now, "jobs", Some(v(json!(1))))
        .expect("queued");
    h.input(Input::TransportUp);
    let sent = h.take_sent();
    assert_eq!(
        sent.len(),
        1,
        "only the hello goes out before the ack: {sent:?}"
    );
    let hello = &sent[0];
    assert_eq!(hello.msg_type, "hello");
    assert_eq!(
        hello.env.from.as_ref().map(|f| f.to_string_lossy()),
        Some("worker".into())
    );
    assert_eq!(hello.to(), None);
    assert_eq!(
        hello.data,
        Some(v(
            json!({"kind": "worker", "name": "worker", "pid": 4242, "startedAt": WALL})
        ))
    );
    assert!(
        h.take_events()
            .contains(&ClientEvent::Connected { url: URL.into() })
    );
    assert!(h.conn.is_connected() && !h.conn.is_ready());
}

#[test]
fn ready_only_on_a_verified_hello_ack() {
    let mut h = Harness::new(config("worker"));
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.take_events();
    assert_eq!(h.conn.hub_features_known(), None, "unknown until the ack");
    // A verified non-ack message: verified, not ready.
    h.hub(
        "peers.update",
        Some("server"),
        Some(v(json!({"peers": []}))),
    );
    assert_eq!(h.take_events(), vec![ClientEvent::Verified]);
    assert!(h.conn.health().verified && !h.conn.is_ready());
    // A forged ack (wrong key) is dropped.
    let forged = {
        let mut other = Harness::new(config("worker"));
        other.key = link_sansio::wire::Key::new("wrong", link_sansio::wire::HashAlgo::Sha256);
        other.frame("hello.ack", Some("server"), Some(v(json!({"ok": true}))))
    };
    h.input(Input::Frame(&forged));
    assert!(matches!(
        h.take_events()[..],
        [ClientEvent::ProtocolError {
            reason: DropReason::BadSignature,
            ..
        }]
    ));
    assert!(!h.conn.is_ready());
    h.ack(&["topics", "direct"]);
    assert!(h.conn.is_ready());
    assert_eq!(h.conn.hub_features(), ["topics", "direct"]);
    assert!(h.take_events().contains(&ClientEvent::Ready {
        features: vec!["topics".into(), "direct".into()]
    }));
    let health = h.conn.health();
    assert_eq!(health.last_verified_at, Some(WALL));
}

#[test]
fn an_ack_without_ok_is_acceptance_and_missing_features_mean_none() {
    let mut h = Harness::new(config("worker"));
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.hub(
        "hello.ack",
        Some("server"),
        Some(v(json!({"kind": "worker"}))),
    );
    assert!(h.conn.is_ready(), "ok !== false is acceptance");
    assert!(h.conn.hub_features().is_empty());
    let err = h
        .conn
        .publish(h.now, "t", None)
        .expect_err("no topics feature");
    assert_eq!(err.code(), "FEATURE_UNSUPPORTED");
    let err = h
        .conn
        .send(h.now, "other", "x", None)
        .expect_err("no direct feature");
    assert_eq!(err.code(), "FEATURE_UNSUPPORTED");
}

#[test]
fn rejection_stops_the_link_by_default() {
    let mut h = Harness::new(config("worker"));
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.take_events();
    h.hub(
        "hello.ack",
        Some("server"),
        Some(v(json!({"ok": false, "error": "unknown kind"}))),
    );
    let events = h.take_events();
    assert!(events.contains(&ClientEvent::Rejected {
        reason: "unknown kind".into(),
        error: Some("unknown kind".into())
    }));
    assert!(events.contains(&ClientEvent::Stopped));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::Ready { .. }))
    );
    assert!(matches!(h.take_actions()[..], [Action::Close(1005, _)]));
    assert!(h.conn.health().stopped);
    h.ms(60_000);
    assert!(
        h.take_actions().is_empty(),
        "a rejected link does not reconnect"
    );
}

#[test]
fn rejection_with_reconnect_on_rejection_closes_1000_and_backs_off_without_reset() {
    let mut c = config("worker");
    c.reconnect_on_rejection = true;
    let mut h = Harness::new(c);
    h.conn.start(h.now);
    h.pump();
    for attempt in 1..=2 {
        h.up();
        h.hub("hello.ack", Some("server"), Some(v(json!({"ok": false}))));
        assert_eq!(
            h.take_actions(),
            vec![Action::Close(1000, "hello rejected - will retry".into())]
        );
        let events = h.take_events();
        assert!(events.contains(&ClientEvent::Rejected {
            reason: "hello rejected".into(),
            error: None
        }));
        assert!(events.contains(&ClientEvent::Disconnected(DisconnectInfo {
            code: Some(1000),
            reason: "hello rejected - will retry".into(),
            will_reconnect: true,
            was_ready: false,
            displaced: false,
        })));
        let delays = reconnect_delays(&events);
        assert_eq!(delays.len(), 1);
        assert_eq!(delays[0].0, attempt, "a rejection never resets the backoff");
        h.advance(delays[0].1);
        assert_eq!(h.actions, vec![Action::Connect(URL.into())]);
    }
}

#[test]
fn diagnostic_reports_nothing_verified() {
    let mut h = Harness::new(config("worker"));
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.take_events();
    h.ms(4_999);
    assert!(h.take_events().is_empty());
    h.ms(1);
    assert_eq!(
        h.take_events(),
        vec![ClientEvent::HelloAckDiagnostic(
            HelloAckDiagnosis::NothingVerified
        )]
    );
    assert_eq!(HelloAckDiagnosis::NothingVerified.as_str(), "no-ack");
}

#[test]
fn diagnostic_reports_clock_skew() {
    let mut h = Harness::new(config("worker"));
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.take_events();
    // The hub's clock is 10 minutes ahead: its (valid) ack falls outside the window.
    let ts = h.now.ms() + 600_000.0;
    let ack = h.frame_with(
        "a1",
        ts,
        "hello.ack",
        Some("server"),
        Some(v(json!({"ok": true}))),
    );
    h.input(Input::Frame(&ack));
    assert!(matches!(
        h.take_events()[..],
        [ClientEvent::ProtocolError {
            reason: DropReason::ReplayWindow,
            ..
        }]
    ));
    h.ms(5_000);
    let events = h.take_events();
    let [
        ClientEvent::HelloAckDiagnostic(
            d @ HelloAckDiagnosis::ClockSkew {
                dropped: 1,
                skew_ms,
            },
        ),
    ] = events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(skew_ms, -600_000.0);
    assert_eq!(d.as_str(), "clock-skew");
}

#[test]
fn diagnostic_reports_no_ack_after_verified_traffic() {
    let mut h = Harness::new(config("worker"));
    h.conn.start(h.now);
    h.pump();
    h.up();
    h.hub(
        "peers.update",
        Some("server"),
        Some(v(json!({"peers": []}))),
    );
    h.take_events();
    h.ms(5_000);
    assert_eq!(
        h.take_events(),
        vec![ClientEvent::HelloAckDiagnostic(HelloAckDiagnosis::NoAck)]
    );
}

#[test]
fn no_diagnostic_once_ready() {
    let mut h = Harness::ready(config("worker"));
    h.ms(6_000);
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::HelloAckDiagnostic(_)))
    );
}

#[test]
fn displaced_by_4000_stays_down() {
    let mut h = Harness::ready(config("worker"));
    let id = h.conn.rpc(h.now, "other", "x", None, None).expect("sent");
    h.down(4000, "replaced by new connection");
    let events = h.take_events();
    assert!(events.contains(&ClientEvent::Disconnected(DisconnectInfo {
        code: Some(4000),
        reason: "replaced by new connection".into(),
        will_reconnect: false,
        was_ready: true,
        displaced: true,
    })));
    assert!(events.iter().any(|e| matches!(e,
        ClientEvent::RpcComplete(c) if c.id == id
            && matches!(c.outcome, Err(RpcError::Disconnect { stopped: false, .. })))));
    assert_eq!(events.last(), Some(&ClientEvent::Stopped));
    assert!(h.conn.health().stopped);
    h.ms(120_000);
    assert!(
        h.take_actions().is_empty(),
        "a displaced client does not reconnect"
    );
    assert_eq!(
        h.conn
            .publish(h.now, "t", None)
            .map_err(|e| e.code().to_owned()),
        Err("LINK_NOT_READY".into())
    );
}

#[test]
fn reconnect_backoff_grows_with_jitter_and_resets_only_on_ready() {
    let mut h = Harness::ready(config("worker"));
    let mut base = 1000.0f64;
    for attempt in 1..=6u32 {
        // The transport fails (or fails to open) again and again.
        h.down(1006, "");
        let events = h.take_events();
        let delays = reconnect_delays(&events);
        assert_eq!(delays.len(), 1, "{events:?}");
        let (n, delay) = delays[0];
        assert_eq!(n, attempt);
        let ms = delay.as_secs_f64() * 1000.0;
        assert!(
            ms >= base * 0.75 && ms < base * 1.25,
            "attempt {attempt}: {ms}ms vs base {base}"
        );
        assert_eq!(h.conn.health().reconnect_attempt, attempt);
        h.advance(delay);
        assert_eq!(h.take_actions(), vec![Action::Connect(URL.into())]);
        base = (base * 1.5).min(10_000.0);
        if attempt < 6 {
            h.input(Input::TransportUp); // opens, then drops before any ack
        }
    }
    // A transport that opens but is never acknowledged does not reset the backoff;
    // an ack does.
    h.input(Input::TransportUp);
    h.ack(&["topics", "direct"]);
    assert_eq!(h.conn.health().reconnect_attempt, 0);
    h.take_events();
    h.down(1006, "");
    let (n, delay) = reconnect_delays(&h.take_events())[0];
    assert_eq!(n, 1);
    assert!(delay < Duration::from_millis(1250));
}

#[test]
fn backoff_is_reproducible_from_the_seed() {
    let run = || {
        let mut h = Harness::ready(config("worker"));
        let mut delays = Vec::new();
        for _ in 0..4 {
            h.down(1006, "");
            let (_, d) = reconnect_delays(&h.take_events())[0];
            delays.push(d);
            h.advance(d);
            h.take_actions();
        }
        delays
    };
    assert_eq!(run(), run());
}

#[test]
fn max_reconnect_attempts_gives_up_with_an_event() {
    let mut c = config("worker");
    c.max_reconnect_attempts = Some(2);
    let mut h = Harness::ready(c);
    for _ in 0..2 {
        h.down(1006, "");
        let (_, d) = reconnect_delays(&h.take_events())[0];
        h.advance(d);
        assert_eq!(h.take_actions(), vec![Action::Connect(URL.into())]);
    }
    h.down(1006, "");
    let events = h.take_events();
    assert!(events.contains(&ClientEvent::ReconnectExhausted {
        attempts: 2,
        max_attempts: 2
    }));
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::Disconnected(DisconnectInfo {
            will_reconnect: false,
            ..
        })
    )));
    assert_eq!(events.last(), Some(&ClientEvent::Stopped));
    assert!(h.conn.health().stopped);
    h.ms(60_000);
    assert!(h.take_actions().is_empty());
}

#[test]
fn keepalive_pings_and_terminates_when_a_pong_is_missing() {
    let mut h = Harness::ready(config("worker"));
    h.auto_pong = false;
    h.ms(30_000);
    assert_eq!(h.take_actions(), vec![Action::Ping]);
    h.input(Input::Pong);
    h.ms(30_000);
    assert_eq!(h.take_actions(), vec![Action::Ping]);
    // No pong this time.
    h.ms(30_000);
    assert_eq!(h.take_actions(), vec![Action::Terminate]);
    let events = h.take_events();
    assert!(matches!(
        events[0],
        ClientEvent::ProtocolError {
            reason: DropReason::KeepaliveTimeout,
            ..
        }
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::Disconnected(DisconnectInfo {
            code: Some(1006),
            will_reconnect: true,
            ..
        })
    )));
    assert!(!h.conn.is_connected());
    let (_, d) = reconnect_delays(&events)[0];
    h.advance(d);
    assert_eq!(h.take_actions(), vec![Action::Connect(URL.into())]);
}

#[test]
fn keepalive_zero_disables_pings() {
    let mut c = config("worker");
    c.keepalive_interval = Duration::ZERO;
    let mut h = Harness::ready(c);
    h.ms(300_000);
    assert!(h.take_actions().is_empty());
}

#[test]
fn inputs_for_no_transport_are_ignored() {
    let mut h = Harness::new(config("worker"));
    h.input(Input::TransportUp);
    let ack = h.frame("hello.ack", Some("server"), Some(v(json!({"ok": true}))));
    h.input(Input::Frame(&ack));
    h.input(Input::TransportDown {
        code: Some(1006),
        reason: "",
    });
    assert!(h.take_events().is_empty() && h.take_sent().is_empty() && h.take_actions().is_empty());
    assert!(!h.conn.is_ready());
    // start() while a transport is opening does not open a second one.
    h.conn.start(h.now);
    h.conn.start(h.now);
    h.pump();
    assert_eq!(h.take_actions(), vec![Action::Connect(URL.into())]);
}

#[test]
fn health_reports_the_reference_fields() {
    let mut h = Harness::ready(config("worker"));
    h.conn.subscribe(h.now, "a").expect("topic");
    h.conn.rpc(h.now, "other", "x", None, None).expect("sent");
    h.pump();
    let health = h.conn.health();
    assert!(health.connected && health.verified && health.ready && !health.stopped);
    assert_eq!(
        (
            health.pending_rpcs,
            health.subscriptions,
            health.reconnect_attempt
        ),
        (1, 1, 0)
    );
    assert_eq!(health.buffered_bytes, 0, "everything was reported flushed");
    let json = serde_json::to_value(&health).expect("serialisable");
    for key in [
        "connected",
        "verified",
        "ready",
        "lastVerifiedAt",
        "peerCount",
        "pendingRpcCount",
        "subscriptionCount",
        "bufferedAmount",
        "outboxSize",
        "outboxBytes",
        "inFlightRpc",
        "reconnectAttempt",
        "stopped",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
}

#[test]
fn configuration_is_checked_like_the_reference_constructor() {
    let bad_kind = |kind: &str| Connection::new(ClientConfig::new(URL, kind, SECRET), 1).err();
    assert!(matches!(
        bad_kind("server"),
        Some(ConfigError::InvalidKind(_))
    ));
    assert!(matches!(
        bad_kind(" padded "),
        Some(ConfigError::InvalidKind(_))
    ));
    assert!(matches!(bad_kind(""), Some(ConfigError::InvalidKind(_))));
    assert!(bad_kind("worker-1.a_b").is_none());
    let with = |f: &dyn Fn(&mut ClientConfig)| {
        let mut c = ClientConfig::new(URL, "w", SECRET);
        f(&mut c);
        Connection::new(c, 1).err()
    };
    assert_eq!(
        with(&|c| c.secret.clear()),
        Some(ConfigError::Empty("secret"))
    );
    assert_eq!(with(&|c| c.url.clear()), Some(ConfigError::Empty("url")));
    assert!(with(&|c| c.reconnect_jitter = 1.5).is_some());
    assert!(with(&|c| c.reconnect_growth = 0.5).is_some());
    assert!(with(&|c| c.max_reconnect_attempts = Some(0)).is_some());
    assert!(with(&|c| c.default_rpc_timeout = Duration::ZERO).is_some());
    let d = ClientConfig::new(URL, "w", SECRET);
    assert_eq!(
        (
            d.max_buffered_bytes,
            d.max_outbox_bytes,
            d.max_concurrent_rpc,
            d.limits.replay_window_ms
        ),
        (4_194_304, 16_777_216, 256, 300_000)
    );
    assert_eq!(
        (
            d.default_rpc_timeout,
            d.status_interval,
            d.keepalive_interval,
            d.hello_ack_diagnostic
        ),
        (
            Duration::from_secs(5),
            Duration::from_secs(10),
            Duration::from_secs(30),
            Duration::from_secs(5)
        )
    );
    assert_eq!(
        (
            d.reconnect_growth,
            d.reconnect_jitter,
            d.max_reconnect_attempts
        ),
        (1.5, 0.5, None)
    );
}
