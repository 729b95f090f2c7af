//! Hello handshake stories: ack order, sanitising, refusals, timeouts, the pending
//! cap, displacement, and the three key modes.

mod hub_harness;

use std::collections::BTreeMap;
use std::time::Duration;

use hub_harness::{Hub, SECRET, c};
use link_sansio::hub::{HubConfig, HubEvent, Input, Keys, Output, PeerTimeoutReason};
use link_sansio::wire::{HashAlgo, Key};
use serde_json::json;

#[test]
fn an_accepted_hello_gets_ack_then_peers_update_then_status_snapshot() {
    let mut h = Hub::shared();
    h.open(1);
    h.hello_with(1, "worker", SECRET);
    let frames = h.frames(1);
    let types: Vec<&str> = frames
        .iter()
        .map(|f| f["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["hello.ack", "peers.update", "status.snapshot"]);
    let at = h.now.wall_ms;
    let ack = &frames[0];
    assert_eq!(ack["from"], "server");
    assert_eq!(ack["to"], "worker");
    assert_eq!(
        ack["data"],
        json!({"ok": true, "serverTime": at, "kind": "worker", "features": ["topics", "direct"]})
    );
    assert_eq!(
        frames[1]["data"],
        json!({"peers": [{"kind": "worker", "hello": {"kind": "worker", "name": "worker", "pid": 1, "startedAt": 5}, "connectedAt": at, "connected": true}]})
    );
    assert_eq!(frames[2]["data"], json!({}));
    let ids: Vec<&str> = frames
        .iter()
        .map(|f| f["id"].as_str().unwrap_or(""))
        .collect();
    assert!(ids.iter().all(|id| id.len() == 36) && ids[0] != ids[1] && ids[1] != ids[2]);
    let events = h.events();
    assert!(events.iter().any(
        |e| matches!(e, HubEvent::PeerConnected { kind, replaced: false, .. } if kind == "worker")
    ));
    assert!(events.iter().any(|e| matches!(e, HubEvent::Message { msg_type, from, .. } if msg_type == "hello" && from == "worker")));
    assert_eq!(h.hub.health().peer_count, 1);
    assert_eq!(h.hub.health().pending_socket_count, 0);
}

#[test]
fn a_new_peer_is_announced_to_everyone_in_registration_order() {
    let mut h = Hub::shared();
    h.connect(1, "alpha");
    h.send(1, "status.update", None, Some(json!({"state": "idle"})));
    h.take();
    h.open(2);
    h.hello_with(2, "beta", SECRET);
    let to_beta = h.frames(2);
    assert_eq!(to_beta.len(), 3);
    let kinds: Vec<&str> = to_beta[1]["data"]["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["alpha", "beta"]);
    assert_eq!(to_beta[2]["type"], "status.snapshot");
    assert_eq!(
        to_beta[2]["data"]["alpha"]["status"],
        json!({"state": "idle"})
    );
    let to_alpha = h.frames(1);
    assert_eq!(to_alpha.len(), 1);
    assert_eq!(to_alpha[0]["type"], "peers.update");
    assert_eq!(to_alpha[0]["to"], "alpha");
    assert_eq!(to_alpha[0]["data"], to_beta[1]["data"]);
}

#[test]
fn a_second_hello_for_kind_worker_displaces_the_first_with_4000() {
    let mut h = Hub::shared();
    h.connect(1, "other");
    h.connect(2, "worker");
    h.send(2, "topic.subscribe", None, Some(json!({"topic": "jobs"})));
    h.send(2, "status.update", None, Some(json!("old")));
    h.take();
    h.open(3);
    h.hello_with(3, "worker", SECRET);
    assert_eq!(
        h.closes(),
        [(2, 4000, "replaced by new connection".to_owned())]
    );
    let events = h.events();
    assert!(events.iter().any(|e| matches!(e, HubEvent::PeerReplaced { kind, old_conn, new_conn, .. } if kind == "worker" && *old_conn == c(2) && *new_conn == c(3))));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, HubEvent::PeerConnected { replaced: true, .. }))
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, HubEvent::PeerDisconnected { .. }))
    );
    assert_eq!(h.types(3), ["hello.ack", "peers.update", "status.snapshot"]);
    // The kind keeps its place in the registration order.
    let update = h.frames(1);
    let kinds: Vec<&str> = update[0]["data"]["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["other", "worker"]);
    assert!(h.frames(2).is_empty());
    // Frames on the displaced socket are stale; its close does not unregister the kind.
    h.send(2, "status.update", None, Some(json!("ghost")));
    assert_eq!(Hub::drops(&h.events()), [("stale-socket", None)]);
    h.close_from_client(2, 4000);
    assert!(h.events().is_empty());
    assert_eq!(h.hub.health().peer_count, 2);
    // The old status and subscriptions linger until the new socket changes them.
    assert_eq!(h.hub.state().last_status[0].1.status, Some("old".into()));
    assert_eq!(h.hub.health().total_subscribers, 1);
}

#[test]
fn a_message_before_hello_is_dropped_without_closing() {
    let mut h = Hub::shared();
    h.open(1);
    h.keys.insert(c(1), Key::new(SECRET, h.algo));
    h.send(1, "status.update", None, Some(json!(1)));
    assert_eq!(Hub::drops(&h.events()), [("pre-hello-message", None)]);
    assert!(h.take().is_empty());
    h.hello_with(1, "w", SECRET);
    assert_eq!(h.types(1).len(), 3);
}

#[test]
fn bad_kinds_close_with_1008_and_the_reason_in_order() {
    let long = "a".repeat(257);
    let cases = [
        (json!({"kind": "   "}), "missing-kind"),
        (json!({"name": "x"}), "missing-kind"),
        (json!({"kind": long}), "oversized-kind"),
        (json!({"kind": "server"}), "reserved-kind"),
        (json!({"kind": "__proto__"}), "reserved-kind"),
        (json!({"kind": "a b"}), "invalid-kind"),
    ];
    for (n, (data, reason)) in cases.into_iter().enumerate() {
        let mut h = Hub::shared();
        let conn = n as u64 + 1;
        h.open(conn);
        let key = Key::new(SECRET, h.algo);
        let text = h.sign(&key, "h1", "hello", None, None, Some(data));
        h.raw(conn, &text);
        assert_eq!(h.closes(), [(conn, 1008, reason.to_owned())], "{reason}");
        assert_eq!(
            Hub::drops(&h.events()),
            [("bad-hello", Some(reason.to_owned()))]
        );
    }
}

#[test]
fn hello_is_sanitised_before_it_is_stored_and_broadcast() {
    let mut h = Hub::shared();
    h.open(1);
    let key = Key::new(SECRET, h.algo);
    h.keys.insert(c(1), key.clone());
    let text = h.sign(
        &key,
        "h1",
        "hello",
        None,
        None,
        Some(json!({"kind": "  padded  ", "name": format!("  {}", "n".repeat(300)), "pid": "12", "startedAt": 7, "secret": "x"})),
    );
    h.raw(1, &text);
    let frames = h.frames(1);
    assert_eq!(frames[0]["data"]["kind"], "padded");
    let hello = &frames[1]["data"]["peers"][0]["hello"];
    assert_eq!(hello["kind"], "padded");
    assert_eq!(hello["name"].as_str().map(str::len), Some(256));
    assert_eq!(hello["pid"], json!(null));
    assert_eq!(hello["startedAt"], 7);
    assert!(hello.get("secret").is_none());
    assert_eq!(frames[0]["to"], "padded");
}

#[test]
fn a_silent_socket_is_closed_after_the_hello_timeout_and_terminated_500ms_later() {
    let mut h = Hub::shared();
    h.open(1);
    h.advance(Duration::from_millis(9_999));
    assert!(h.closes().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.closes(), [(1, 1008, "hello timeout".to_owned())]);
    let events = h.events();
    assert!(matches!(
        &events[..],
        [HubEvent::PeerTimeout { conn, reason: PeerTimeoutReason::HelloTimeout, hello_timeout, remote: Some(_) }]
            if *conn == c(1) && *hello_timeout == Duration::from_secs(10)
    ));
    h.advance(Duration::from_millis(499));
    assert!(h.terminated().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.terminated(), [1]);
    assert_eq!(h.hub.health().pending_socket_count, 0);
}

/// Whatever made the hub close a socket (a bad kind, the pending cap, a newer socket
/// of its kind), a peer that never answers the close frame loses the socket 30 s
/// later, as with the reference's `ws` library; one that answers is simply gone.
#[test]
fn a_socket_the_hub_closed_is_dropped_30s_later_unless_its_peer_answers() {
    let mut h = Hub::config(|c| {
        c.max_pending_sockets = 1;
        // Peers 6 and 8 stay silent here, so keepalive must not drop them first.
        c.keepalive_interval = Duration::from_secs(3600);
    });
    h.connect(5, "w");
    h.connect(7, "x");
    for (conn, kind) in [(6, "w"), (8, "x")] {
        h.open(conn);
        h.hello_with(conn, kind, SECRET);
    }
    h.open(1);
    h.hello_with(1, "no spaces", SECRET);
    h.open(2);
    h.open(3);
    let mut closes = h.closes();
    closes.sort();
    assert_eq!(
        closes,
        [
            (1, 1008, "invalid-kind".to_owned()),
            (2, 1008, "pending cap".to_owned()),
            (5, 4000, "replaced by new connection".to_owned()),
            (7, 4000, "replaced by new connection".to_owned()),
        ]
    );
    h.close_from_client(7, 4000);
    // The pending socket 3 times out its hello at 10 s and is dropped 500 ms later.
    h.advance(Duration::from_millis(29_999));
    assert_eq!(h.closes(), [(3, 1008, "hello timeout".to_owned())]);
    assert_eq!(h.terminated(), [3]);
    h.advance(Duration::from_millis(1));
    let mut dropped = h.terminated();
    dropped.sort();
    assert_eq!(dropped, [1, 2, 5]);
    h.advance(Duration::from_secs(60));
    assert!(h.terminated().is_empty());
    assert!(h.closes().is_empty());
}

#[test]
fn a_zero_hello_timeout_never_closes() {
    let mut h = Hub::config(|c| c.hello_timeout = Duration::ZERO);
    h.open(1);
    h.advance(Duration::from_secs(100));
    assert!(h.closes().is_empty());
    assert_eq!(h.hub.health().pending_socket_count, 1);
}

#[test]
fn over_the_pending_cap_the_oldest_pending_socket_is_evicted() {
    let mut h = Hub::config(|c| c.max_pending_sockets = 2);
    h.connect(5, "peer");
    h.open(1);
    h.open(2);
    assert!(h.closes().is_empty());
    h.open(3);
    assert_eq!(h.closes(), [(1, 1008, "pending cap".to_owned())]);
    assert!(matches!(
        &h.events()[..],
        [HubEvent::PeerTimeout { conn, reason: PeerTimeoutReason::PendingCap, .. }] if *conn == c(1)
    ));
    assert_eq!(h.hub.health().pending_socket_count, 2);
}

#[test]
fn a_hello_with_a_bad_signature_is_dropped_silently_and_may_be_retried() {
    let mut h = Hub::shared();
    h.open(1);
    h.hello_with(1, "w", "wrong");
    assert_eq!(Hub::drops(&h.events()), [("bad-signature", None)]);
    assert!(h.take().is_empty());
    h.hello_with(1, "w", SECRET);
    assert_eq!(h.types(1), ["hello.ack", "peers.update", "status.snapshot"]);
}

#[test]
fn a_hello_on_an_authenticated_socket_is_a_duplicate_and_keeps_the_socket() {
    let mut h = Hub::shared();
    h.connect(1, "w");
    h.hello_with(1, "w", SECRET);
    assert_eq!(Hub::drops(&h.events()), [("duplicate-hello", None)]);
    assert!(h.closes().is_empty());
    assert!(h.frames(1).is_empty());
}

#[test]
fn per_kind_keys_drop_unknown_kinds_silently_and_resign_forwards_per_recipient() {
    let mut keys = BTreeMap::new();
    keys.insert("alpha".to_owned(), "key-a".to_owned());
    keys.insert("beta".to_owned(), "key-b".to_owned());
    let mut h = Hub::new(HubConfig::new(Keys::PerKind(keys)));
    h.open(9);
    h.hello_with(9, "gamma", "key-a");
    assert_eq!(Hub::drops(&h.events()), [("unknown-kind", None)]);
    assert!(h.take().is_empty(), "no ack, no close");
    // A leaked alpha key cannot authenticate as beta.
    h.open(8);
    h.hello_with(8, "beta", "key-a");
    assert_eq!(Hub::drops(&h.events()), [("bad-signature", None)]);
    h.open(1);
    h.hello_with(1, "alpha", "key-a");
    h.open(2);
    h.hello_with(2, "beta", "key-b");
    h.take();
    h.send(
        1,
        "direct",
        Some("beta"),
        Some(json!({"directType": "hi", "directData": 1})),
    );
    // `frames` verifies with beta's own key.
    let got = h.frames(2);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["from"], "alpha");
}

/// Fan-outs (a publish, a status relay, the peer list) share one rendering of the
/// message between recipients; with per-kind keys each frame is still signed with
/// its recipient's own key, in whatever order the keys come up.
#[test]
fn fan_outs_sign_each_frame_with_its_recipients_key() {
    let mut keys = BTreeMap::new();
    for (kind, key) in [
        ("alpha", "key-a"),
        ("beta", "key-b"),
        ("delta", "key-a"),
        ("pub", "key-p"),
    ] {
        keys.insert(kind.to_owned(), key.to_owned());
    }
    let mut h = Hub::new(HubConfig::new(Keys::PerKind(keys)));
    let subscribers = [
        (1, "alpha", "key-a"),
        (2, "beta", "key-b"),
        (3, "delta", "key-a"),
    ];
    for (conn, kind, key) in subscribers {
        h.open(conn);
        h.hello_with(conn, kind, key);
    }
    h.open(4);
    h.hello_with(4, "pub", "key-p");
    h.take();
    for (conn, _, _) in subscribers {
        h.send(conn, "topic.subscribe", None, Some(json!({"topic": "t"})));
    }
    h.send(
        4,
        "topic.message",
        None,
        Some(json!({"topic": "t", "payload": [1]})),
    );
    h.send(4, "status.update", None, Some(json!({"load": 2})));
    for (conn, kind, _) in subscribers {
        // `frames` checks each frame's signature with the recipient's key.
        let got = h.frames(conn);
        let types: Vec<_> = got.iter().map(|f| f["type"].as_str()).collect();
        assert_eq!(
            types,
            [Some("topic.message"), Some("status.update")],
            "{kind}"
        );
        assert_eq!(got[0]["to"], kind);
        assert_eq!(got[0]["data"], json!({"topic": "t", "payload": [1]}));
    }
}

#[test]
fn a_resolver_is_asked_for_every_hello_and_its_answer_decides() {
    let mut h = Hub::new(HubConfig::new(Keys::Resolver));
    h.open(1);
    h.hello_with(1, "w", "k1");
    let outs = h.take();
    let [Output::ResolveKey { request, kind }] = &outs[..] else {
        panic!("expected a key request: {outs:?}");
    };
    assert_eq!(kind, "w");
    let request = *request;
    h.input(Input::KeyResolved {
        request,
        key: Some("k1".into()),
    });
    assert_eq!(h.types(1), ["hello.ack", "peers.update", "status.snapshot"]);

    h.open(2);
    h.hello_with(2, "x", "k2");
    let Some(Output::ResolveKey { request, .. }) = h.take().pop() else {
        panic!("expected a key request");
    };
    h.input(Input::KeyResolved { request, key: None });
    assert_eq!(Hub::drops(&h.events()), [("unknown-kind", None)]);
    assert!(h.take().is_empty());
}

#[test]
fn of_two_racing_hellos_the_first_resolved_wins_and_the_other_is_concurrent() {
    let mut h = Hub::new(HubConfig::new(Keys::Resolver));
    h.open(1);
    h.hello_with(1, "w", "k");
    h.hello_with(1, "w", "k");
    let requests: Vec<_> = h
        .take()
        .into_iter()
        .filter_map(|o| match o {
            Output::ResolveKey { request, .. } => Some(request),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 2);
    h.input(Input::KeyResolved {
        request: requests[1],
        key: Some("k".into()),
    });
    assert_eq!(h.types(1).len(), 3);
    h.events();
    h.input(Input::KeyResolved {
        request: requests[0],
        key: Some("k".into()),
    });
    assert_eq!(
        Hub::drops(&h.events()),
        [("duplicate-hello", Some("concurrent-hello".to_owned()))]
    );
    assert!(h.frames(1).is_empty());
}

#[test]
fn sha512_hubs_sign_with_sha512() {
    let mut h = Hub::config(|c| c.hash_algo = link_sansio::wire::HashAlgo::Sha512);
    h.connect(1, "w");
    h.connect(2, "v");
    h.send(2, "status.update", None, None);
    let frames = h.frames(1);
    assert!(!frames.is_empty());
    assert!(
        frames
            .iter()
            .all(|f| f["sig"].as_str().map(str::len) == Some(128))
    );
}

#[test]
fn hellos_waiting_for_a_silent_resolver_are_bounded_and_released_when_their_socket_closes() {
    // Room for about two parked hellos (each frame is ~250 bytes).
    let mut h = Hub::new({
        let mut c = HubConfig::new(Keys::Resolver);
        c.max_outbox_bytes = 600;
        c
    });
    let key_requests = |h: &mut Hub| {
        h.take()
            .iter()
            .filter(|o| matches!(o, Output::ResolveKey { .. }))
            .count()
    };
    for conn in 1..=3 {
        h.open(conn);
        h.hello_with(conn, "w", "k");
    }
    assert_eq!(Hub::drops(&h.events()), [("hello-backlog", None)]);
    assert_eq!(key_requests(&mut h), 2, "the resolver never answers");
    // The parked hellos' sockets go away: their budget comes back.
    h.close_from_client(1, 1000);
    h.close_from_client(2, 1000);
    h.events();
    for conn in 4..=5 {
        h.open(conn);
        h.hello_with(conn, "w", "k");
    }
    assert!(Hub::drops(&h.events()).is_empty());
    assert_eq!(key_requests(&mut h), 2);
}

#[test]
fn a_captured_hello_replayed_after_its_peer_left_does_not_let_anyone_in() {
    let mut h = Hub::shared();
    let key = Key::new(SECRET, HashAlgo::Sha256);
    let hello = h.sign(
        &key,
        "captured-hello",
        "hello",
        Some("carol"),
        None,
        Some(json!({"kind": "carol", "name": "carol"})),
    );
    let connected = |outs: &[Output]| {
        outs.iter()
            .any(|o| matches!(o, Output::Event(HubEvent::PeerConnected { .. })))
    };
    h.open(1);
    h.raw(1, &hello);
    assert!(connected(&h.take()), "the original hello is accepted");
    // Carol leaves; her per-sender id cache goes with her, as in the reference.
    h.close_from_client(1, 1000);
    h.take();
    // An eavesdropper replays her hello on a fresh socket inside the window.
    h.advance(Duration::from_secs(1));
    h.open(2);
    h.raw(2, &hello);
    assert_eq!(Hub::drops(&h.events()), [("replay-id", None)]);
    let outs = h.take();
    assert!(
        !connected(&outs),
        "a replayed hello lets nobody in: {outs:?}"
    );
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::Transmit { conn, .. } if *conn == c(2))),
        "no ack for a replayed hello"
    );
    // Carol herself, with a fresh hello, still gets in.
    h.connect(3, "carol");
}

#[test]
fn a_replayed_hello_is_refused_once_its_id_aged_out_and_after_its_peer_left() {
    let mut h = Hub::config(|c| c.limits.max_recent_ids = 3);
    h.open(1);
    let key = Key::new(SECRET, h.algo);
    h.keys.insert(c(1), key.clone());
    let hello = h.sign(
        &key,
        "hello-1",
        "hello",
        Some("worker"),
        None,
        Some(json!({"kind": "worker"})),
    );
    h.raw(1, &hello);
    // A busy peer: its later frames push the hello's id out of the main id cache.
    for _ in 0..5 {
        h.send(1, "status.update", None, Some(json!(1)));
    }
    h.take();
    // An eavesdropper replays the captured hello while the peer is connected.
    h.open(2);
    h.raw(2, &hello);
    let events = h.events();
    assert_eq!(Hub::drops(&events), [("replay-id", None)]);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, HubEvent::PeerReplaced { .. }))
    );
    // And once the peer has left.
    h.close_from_client(1, 1000);
    h.take();
    h.open(3);
    h.raw(3, &hello);
    let events = h.events();
    assert_eq!(Hub::drops(&events), [("replay-id", None)]);
    assert_eq!(h.hub.health().peer_count, 0);
}
