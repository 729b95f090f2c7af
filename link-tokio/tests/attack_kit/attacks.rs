//! The attacks. Each starts its own arena, attacks it over real sockets, waits on the
//! events that prove the hub reacted as the reference does, and returns the
//! [`Report`]: hub up, legit peers ok, memory bounded, reason/code counted.

use super::*;
use std::collections::BTreeMap;

/// Every attack, in the order the example runs them.
pub const ALL: &[&str] = &[
    "hello flood",
    "silent sockets",
    "oversized frames",
    "garbage frames",
    "invalid websocket frames",
    "deep nesting",
    "huge numbers",
    "duplicate keys",
    "replayed frames",
    "forged from",
    "wrong per-peer key",
    "never-reading client",
    "rpc burst, target drops",
    "hanging key resolver",
    "id flood",
    "server rpc flood",
    "status spam to a stalled peer",
    "subscription flood",
    "stalled http requests",
    "stop under attack",
    "captured hello replayed",
    "forged rpc response",
    "expensive frame flood",
];

/// Run the attack called `name`.
pub async fn run(name: &str) -> Report {
    match name {
        "hello flood" => hello_flood().await,
        "silent sockets" => silent_sockets().await,
        "oversized frames" => oversized_frames().await,
        "garbage frames" => garbage_frames().await,
        "invalid websocket frames" => invalid_websocket_frames().await,
        "deep nesting" => deep_nesting().await,
        "huge numbers" => huge_numbers().await,
        "duplicate keys" => duplicate_keys().await,
        "replayed frames" => replayed_frames().await,
        "forged from" => forged_from().await,
        "wrong per-peer key" => wrong_peer_key().await,
        "never-reading client" => never_reading_client().await,
        "rpc burst, target drops" => rpc_burst_target_drops().await,
        "hanging key resolver" => hanging_key_resolver().await,
        "id flood" => id_flood().await,
        "server rpc flood" => server_rpc_flood().await,
        "status spam to a stalled peer" => status_spam().await,
        "subscription flood" => subscription_flood().await,
        "stalled http requests" => stalled_http_requests().await,
        "stop under attack" => stop_under_attack().await,
        "captured hello replayed" => captured_hello_replayed().await,
        "forged rpc response" => forged_rpc_response().await,
        "expensive frame flood" => expensive_frame_flood().await,
        other => panic!("no attack called {other}"),
    }
}

/// An arena that could not even start: every verdict fails with why.
fn not_started(attack: &'static str, e: String) -> Report {
    Report {
        attack,
        hub_up: Err(e.clone()),
        legit: Err(e.clone()),
        memory: Err(e.clone()),
        counted: Err(e),
        secs: 0.0,
    }
}

macro_rules! arena {
    ($name:expr, $keys:expr, $opts:expr) => {
        match Arena::start($keys, $opts).await {
            Ok(a) => a,
            Err(e) => return not_started($name, e),
        }
    };
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// Frames a client receives, collected from its event stream until `marker` (a
/// `direct` of that type) arrives: everything the hub delivered before it.
async fn directs_until(
    events: &mut link_tokio::EventStream,
    marker: &str,
) -> Result<Vec<(Option<String>, String, Json)>, String> {
    within("marker direct", async {
        let mut seen = Vec::new();
        while let Some(ev) = events.next().await {
            if let Event::Link(ClientEvent::Direct {
                from,
                direct_type,
                data,
            }) = ev
            {
                let data = data.map(|d| d.to_serde()).unwrap_or(Json::Null);
                let done = direct_type == marker;
                seen.push((from, direct_type, data));
                if done {
                    return Ok(seen);
                }
            } else if let Event::Lagged { missed } = ev {
                return Err(format!("event stream lagged by {missed}"));
            }
        }
        Err("event stream ended".to_owned())
    })
    .await?
}

fn direct(key: &Key, from: &str, to: &str, direct_type: &str, data: Json) -> String {
    envelope(
        key,
        "direct",
        Some(from),
        Some(to),
        Some(json!({ "directType": direct_type, "directData": data })),
    )
}

// ---------------------------------------------------------------------------------

/// More pre-hello sockets than `maxPendingSockets`: the oldest are evicted with 1008
/// `pending cap` (one `peer.timeout` each), a legitimate client still gets in.
pub async fn hello_flood() -> Report {
    const NAME: &str = "hello flood";
    // Hello timeout out of the way: only the cap may reap sockets here.
    let a = arena!(
        NAME,
        KeyMode::Shared,
        hub_options(KeyMode::Shared).hello_timeout(Duration::from_secs(30))
    );
    let counted = async {
        let hub = a.server.hub().clone();
        // Phase 1, one at a time so the hub's order is known: cap + 4 sockets.
        let mut first = Vec::new();
        for i in 0..PENDING_CAP + 4 {
            first.push(a.attacker().await?);
            if i < PENDING_CAP {
                let want = i + 1;
                let deadline = tokio::time::Instant::now() + WAIT;
                while hub
                    .health()
                    .await
                    .map_err(|e| e.to_string())?
                    .pending_socket_count
                    < want
                {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(format!("socket {i} never became pending"));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            } else {
                let want = (i + 1 - PENDING_CAP) as u64;
                a.tally
                    .wait_for("eviction", |c| c.timeout("pending-cap") >= want)
                    .await?;
            }
        }
        for (i, s) in first.iter_mut().enumerate().take(4) {
            let end = s.ended().await?;
            expect(
                end.code == Some(1008) && end.reason == "pending cap",
                || format!("oldest socket {i} ended with {end:?}"),
            )?;
        }
        for (i, s) in first.iter_mut().enumerate().skip(4) {
            let st = s.state().await?;
            expect(st.is_none(), || format!("newer socket {i} closed: {st:?}"))?;
        }
        // Phase 2: the pending table is full of attackers; a legitimate client evicts
        // the oldest and completes its hello.
        a.legit_ok()
            .await
            .map_err(|e| format!("legit during flood: {e}"))?;
        // Phase 3: a burst all at once.
        const BURST: usize = 60;
        let burst = futures_util::future::join_all((0..BURST).map(|_| a.attacker())).await;
        let mut burst = burst.into_iter().collect::<Result<Vec<_>, _>>()?;
        let total = (PENDING_CAP + 4 + BURST) as u64;
        // Every attacker socket but the newest PENDING_CAP is evicted (the probe took
        // one pending slot while it was there, evicting one more, then left the table).
        let evicted = total - PENDING_CAP as u64;
        let c = a
            .tally
            .wait_for("evictions", |c| c.timeout("pending-cap") >= evicted)
            .await?;
        let h = hub.health().await.map_err(|e| e.to_string())?;
        expect(h.pending_socket_count == PENDING_CAP, || {
            format!("pending {} after the burst", h.pending_socket_count)
        })?;
        let mut closes: BTreeMap<String, u64> = BTreeMap::new();
        // (The four oldest were checked above.)
        for s in first.iter_mut().skip(4).chain(burst.iter_mut()) {
            let key = match s.state().await? {
                None => "open".to_owned(),
                Some(e) => format!("{:?} {}", e.code, e.reason),
            };
            *closes.entry(key).or_default() += 1;
        }
        let cap_closes = 4 + closes.get("Some(1008) pending cap").copied().unwrap_or(0);
        expect(
            cap_closes == evicted && closes.get("open").copied() == Some(PENDING_CAP as u64),
            || format!("sockets ended as {closes:?}"),
        )?;
        expect(
            c.timeout("pending-cap") == evicted && c.timeout("hello-timeout") == 0,
            || summary(&c),
        )?;
        drop(first);
        drop(burst);
        Ok(format!(
            "pending-cap ×{evicted}, close 1008 \"pending cap\" ×{cap_closes}, oldest first"
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// Sockets that never complete a hello: closed with 1008 `hello timeout`; one that
/// also never reads is released by the hub all the same.
pub async fn silent_sockets() -> Report {
    const NAME: &str = "silent sockets";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut silent = Vec::new();
        for _ in 0..5 {
            silent.push(a.attacker().await?);
        }
        // Talks, but never says hello: dropped as pre-hello-message, timer unaffected.
        let mut chatty = a.attacker().await?;
        for i in 0..3 {
            chatty.send_text(direct(&key, "mallory", "alice", "pre-hello", json!(i))).await?;
        }
        // Never reads, so never answers the close handshake: the hub must terminate it.
        let deaf = a.attacker().await?;
        a.legit_ok().await.map_err(|e| format!("legit while sockets idle: {e}"))?;
        let c = a.tally.wait_for("hello timeouts", |c| c.timeout("hello-timeout") >= 7).await?;
        for s in silent.iter_mut().chain(std::iter::once(&mut chatty)) {
            let end = s.ended().await?;
            expect(end.code == Some(1008) && end.reason == "hello timeout", || format!("silent socket ended with {end:?}"))?;
        }
        expect(c.reason("pre-hello-message") == 3, || summary(&c))?;
        // The deaf socket is gone from the hub although it never answered the close.
        let deadline = tokio::time::Instant::now() + WAIT;
        while a.server.hub().connection_count().await.map_err(|e| e.to_string())? > 2 {
            if tokio::time::Instant::now() >= deadline {
                return Err("the deaf socket was never released".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(deaf);
        Ok(format!(
            "hello-timeout ×{}, close 1008 \"hello timeout\" ×6, pre-hello-message ×3, deaf socket terminated",
            c.timeout("hello-timeout")
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// Frames over the transport cap close with 1009; where the transport cap is larger
/// than `maxMessageBytes` (a loose route), the message is dropped as `oversize`.
pub async fn oversized_frames() -> Report {
    const NAME: &str = "oversized frames";
    let cell: Arc<std::sync::OnceLock<link_tokio::Hub>> = Arc::new(std::sync::OnceLock::new());
    let loose = {
        let cell = cell.clone();
        axum::Router::new().route(
            "/loose",
            axum::routing::any(move |ws: axum::extract::ws::WebSocketUpgrade| {
                let hub = cell.get().cloned();
                async move {
                    use axum::response::IntoResponse;
                    match hub {
                        Some(hub) => ws
                            .max_message_size(4 * MAX_MESSAGE)
                            .max_frame_size(4 * MAX_MESSAGE)
                            .on_upgrade(move |s| {
                                hub.attach(link_tokio::transport::AxumTransport::new(s), None)
                            })
                            .into_response(),
                        None => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    }
                }
            }),
        )
    };
    let opts = HubServerOptions::new(hub_options(KeyMode::Shared)).routes(loose);
    let a = match Arena::start_with(KeyMode::Shared, opts).await {
        Ok(a) => a,
        Err(e) => return not_started(NAME, e),
    };
    let _ = cell.set(a.server.hub().clone());
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut alice_events = a.alice.events();
        // 1. Authenticated peer, one byte over the cap.
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        m.send_text("x".repeat(MAX_MESSAGE + 1)).await?;
        let end1 = m.ended().await?;
        a.tally
            .wait_for("mallory gone", |c| c.disconnected.contains_key("mallory"))
            .await?;
        // 2. Pre-hello socket, a 1 MiB binary frame.
        let mut p = a.attacker().await?;
        let _ = p.send_binary(vec![b'{'; 1 << 20]).await;
        let end2 = p.ended().await?;
        // 3. Loose route: the frame passes the transport, the hub drops it as oversize.
        let mut l = Attacker::connect(a.addr(), "/loose", None).await?;
        l.authenticate(&key, "mallory").await?;
        let big = direct(
            &key,
            "mallory",
            "alice",
            "big",
            json!("y".repeat(MAX_MESSAGE)),
        );
        expect(
            big.len() > MAX_MESSAGE && big.len() < 4 * MAX_MESSAGE,
            || format!("big frame {} bytes", big.len()),
        )?;
        l.send_text(big).await?;
        l.send_text(direct(&key, "mallory", "alice", "small", json!(1)))
            .await?;
        let got = directs_until(&mut alice_events, "small").await?;
        let c = a
            .tally
            .wait_for("oversize", |c| c.reason("oversize") >= 1)
            .await?;
        expect(end1.code == Some(1009) && end2.code == Some(1009), || {
            format!("closes {end1:?} {end2:?}")
        })?;
        expect(
            got.len() == 1 && got[0].0.as_deref() == Some("mallory"),
            || format!("alice got {got:?}"),
        )?;
        let disc = c.disconnected.get("mallory").cloned().unwrap_or_default();
        expect(disc.first() == Some(&Some(1009)), || {
            format!("mallory disconnects {disc:?}")
        })?;
        expect(c.reason("oversize") == 1, || summary(&c))?;
        let st = l.state().await?;
        expect(st.is_none(), || {
            format!("loose socket closed after oversize: {st:?}")
        })?;
        Ok(
            "close 1009 ×2 (peer and pre-hello), peer.disconnect 1009, oversize ×1 (socket kept)"
                .to_owned(),
        )
    }
    .await;
    a.finish(NAME, counted).await
}

/// Garbage, non-JSON, non-object, missing/oversized ids, unsigned frames, binary
/// frames and invalid UTF-8, before and after the hello.
pub async fn garbage_frames() -> Report {
    const NAME: &str = "garbage frames";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut alice_events = a.alice.events();
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        let parse_errors = ["not json", "{", "{\"id\":\"a\",}", "{\"id\":\"\\ud800\\u\"}", ""];
        for g in parse_errors {
            m.send_text(g).await?;
        }
        // JSON, but no string id: `missing-id`, as the reference's `typeof msg?.id`.
        let missing_ids = ["[]", "null", "42", "\"str\"", "{\"v\":1,\"type\":\"direct\"}", "{\"id\":\"\",\"v\":1}", "{\"id\":7}"];
        for g in missing_ids {
            m.send_text(g).await?;
        }
        m.send_text(format!("{{\"id\":\"{}\"}}", "i".repeat(257))).await?; // oversized-id
        m.send_text("{\"v\":1,\"id\":\"u1\",\"type\":\"direct\",\"to\":\"alice\"}").await?; // bad-signature
        m.send_text(sign_text(&Key::new("guess", HashAlgo::default()), "{\"v\":1,\"id\":\"u2\",\"type\":\"direct\",\"to\":\"alice\"}")).await?; // bad-signature
        m.send_text(envelope(&key, "direct", None, Some("alice"), None).replace("\"v\":1", "\"v\":\"1\"")).await?; // bad-signature (v edited after signing)
        m.send_text(sign_text(&key, &format!("{{\"v\":2,\"id\":\"{}\",\"ts\":{},\"type\":\"direct\",\"to\":\"alice\"}}", fresh_id(), now_ms()))).await?; // bad-version
        m.send_binary(vec![0xff, 0xfe, 0x00, 0x80, b'{']).await?; // parse-error (lossy text)
        m.send_binary(Bytes::from(direct(&key, "mallory", "alice", "via-binary", json!(1)))).await?; // accepted
        m.send_text(direct(&key, "mallory", "alice", "after-garbage", json!(2))).await?;
        let got = directs_until(&mut alice_events, "after-garbage").await?;
        let types: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
        expect(types == ["via-binary", "after-garbage"], || format!("alice got {types:?}"))?;
        let c = a.tally.wait_for("the tally to catch up", |c| c.directs.len() >= 2).await?;
        let want = [
            ("parse-error", parse_errors.len() as u64 + 1),
            ("missing-id", missing_ids.len() as u64),
            ("oversized-id", 1),
            ("bad-signature", 3),
            ("bad-version", 1),
        ];
        for (r, n) in want {
            expect(c.reason(r) == n, || format!("{r}: want {n}; {}", summary(&c)))?;
        }
        // Pre-hello garbage: dropped, socket kept, reaped by the hello timer.
        let mut p = a.attacker().await?;
        p.send_text("garbage before hello").await?;
        p.send_binary(vec![0xc3, 0x28]).await?;
        let pre_parse = c.reason("parse-error") + 2;
        let c = a.tally.wait_for("pre-hello garbage", |c| c.reason("parse-error") >= pre_parse).await?;
        let st = m.state().await?;
        expect(st.is_none(), || format!("garbage socket closed: {st:?}"))?;
        drop(p);
        Ok(format!(
            "parse-error ×{}, missing-id ×{}, oversized-id ×1, bad-signature ×3, bad-version ×1; binary envelope delivered",
            c.reason("parse-error"),
            c.reason("missing-id")
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// JSON nested far beyond what a recursive parser survives: dropped as `parse-error`
/// (the parser's depth bound), no stack overflow; nesting within the bound delivers.
pub async fn deep_nesting() -> Report {
    const NAME: &str = "deep nesting";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut alice_events = a.alice.events();
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        let frame_with = |data: &str| {
            sign_text(
                &key,
                &format!(
                    "{{\"v\":1,\"id\":\"{}\",\"ts\":{},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"deep\",\"directData\":{data}}}}}",
                    fresh_id(),
                    now_ms()
                ),
            )
        };
        let depth = (MAX_MESSAGE - 300) / 2;
        let arrays = "[".repeat(depth) + &"]".repeat(depth);
        let objects = "{\"a\":".repeat((MAX_MESSAGE - 300) / 6) + "1" + &"}".repeat((MAX_MESSAGE - 300) / 6);
        let unclosed = "[".repeat(MAX_MESSAGE - 300);
        for d in [&arrays, &objects, &unclosed] {
            m.send_text(frame_with(d)).await?;
        }
        // Pre-hello too.
        let mut p = a.attacker().await?;
        p.send_text(frame_with(&arrays)).await?;
        // Within the bound: envelope and data levels included, 100 deep is fine.
        let ok_depth = 100;
        let fine = "[".repeat(ok_depth) + &"]".repeat(ok_depth);
        m.send_text(sign_text(
            &key,
            &format!(
                "{{\"v\":1,\"id\":\"{}\",\"ts\":{},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"fine\",\"directData\":{fine}}}}}",
                fresh_id(),
                now_ms()
            ),
        ))
        .await?;
        let got = directs_until(&mut alice_events, "fine").await?;
        expect(got.len() == 1, || format!("alice got {} directs", got.len()))?;
        let mut d = 0;
        let mut v = &got[0].2;
        while let Some(inner) = v.as_array() {
            d += 1;
            match inner.first() {
                Some(x) => v = x,
                None => break,
            }
        }
        expect(d == ok_depth, || format!("delivered depth {d}"))?;
        let c = a.tally.wait_for("parse errors", |c| c.reason("parse-error") >= 4).await?;
        expect(c.reason("parse-error") == 4, || summary(&c))?;
        drop(p);
        Ok(format!("parse-error ×4 (depth {depth} arrays, objects, unclosed, pre-hello); depth {ok_depth} delivered"))
    }
    .await;
    a.finish(NAME, counted).await
}

/// Numbers JSON allows but f64 cannot hold: they parse (to ±Infinity / rounded) and
/// canonicalise as the reference does; as `ts` they fail the replay window; as `id`
/// they are not an id.
pub async fn huge_numbers() -> Report {
    const NAME: &str = "huge numbers";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut alice_events = a.alice.events();
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        let with_data = |t: &str, data: &str| {
            sign_text(
                &key,
                &format!(
                    "{{\"v\":1,\"id\":\"{}\",\"ts\":{},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"{t}\",\"directData\":{data}}}}}",
                    fresh_id(),
                    now_ms()
                ),
            )
        };
        let digits = "9".repeat(MAX_MESSAGE / 2);
        m.send_text(with_data("inf", "[1e400,-1e400,1e-400]")).await?;
        m.send_text(with_data("bigint", "123456789012345678901234567890")).await?;
        m.send_text(with_data("digits", &digits)).await?;
        m.send_text(with_data("fraction", &format!("0.{digits}"))).await?;
        let with_ts = |ts: &str| {
            sign_text(
                &key,
                &format!("{{\"v\":1,\"id\":\"{}\",\"ts\":{ts},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"ts\"}}}}", fresh_id()),
            )
        };
        for ts in ["1e400", "-1e400", &digits, "\"now\"", "null"] {
            m.send_text(with_ts(ts)).await?;
        }
        m.send_text(sign_text(&key, &format!("{{\"v\":1,\"id\":1e400,\"ts\":{},\"type\":\"direct\",\"to\":\"alice\"}}", now_ms()))).await?;
        m.send_text(sign_text(&key, &format!("{{\"v\":1e400,\"id\":\"{}\",\"ts\":{},\"type\":\"direct\",\"to\":\"alice\"}}", fresh_id(), now_ms()))).await?;
        m.send_text(with_data("end", "0")).await?;
        let got = directs_until(&mut alice_events, "end").await?;
        let by_type: BTreeMap<&str, &Json> = got.iter().map(|g| (g.1.as_str(), &g.2)).collect();
        expect(by_type.get("inf") == Some(&&json!([null, null, 0])), || format!("inf: {:?}", by_type.get("inf")))?;
        expect(by_type.get("bigint").and_then(|v| v.as_f64()) == Some(1.2345678901234568e29), || format!("bigint: {:?}", by_type.get("bigint")))?;
        expect(by_type.get("digits") == Some(&&Json::Null), || format!("digits: {:?}", by_type.get("digits")))?;
        expect(by_type.get("fraction").and_then(|v| v.as_f64()) == Some(1.0), || format!("fraction: {:?}", by_type.get("fraction")))?;
        expect(!by_type.contains_key("ts") && got.len() == 5, || format!("alice got {:?}", by_type.keys()))?;
        let c = a.tally.wait_for("the tally to catch up", |c| c.directs.len() >= 5).await?;
        expect(c.reason("replay-window") == 5 && c.reason("missing-id") == 1 && c.reason("bad-version") == 1, || summary(&c))?;
        Ok("1e400→null, 30-digit int rounded, 32k digits→null (as JSON.parse); replay-window ×5 (huge/absent ts), missing-id ×1, bad-version ×1".to_owned())
    }
    .await;
    a.finish(NAME, counted).await
}

/// Duplicate keys: the last one wins everywhere (routing, type, id, data), as in
/// `JSON.parse`, and the signature covers exactly that.
pub async fn duplicate_keys() -> Report {
    const NAME: &str = "duplicate keys";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut alice_events = a.alice.events();
        let mut bob_events = a.bob.events();
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        let t = now_ms();
        let dup_to = format!("{{\"v\":1,\"id\":\"{}\",\"ts\":{t},\"type\":\"direct\",\"from\":\"mallory\",\"to\":\"alice\",\"to\":\"bob\",\"data\":{{\"directType\":\"dup-to\"}}}}", fresh_id());
        let dup_type = format!("{{\"v\":1,\"id\":\"{}\",\"ts\":{t},\"type\":\"hello\",\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"dup-type\"}}}}", fresh_id());
        let dup_data = format!("{{\"v\":1,\"id\":\"{}\",\"ts\":{t},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"x\",\"directType\":\"dup-data\",\"directData\":1,\"directData\":2}}}}", fresh_id());
        let last_id = fresh_id();
        let dup_id = format!("{{\"v\":1,\"id\":\"{}\",\"id\":\"{last_id}\",\"ts\":{t},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"dup-id\"}}}}", fresh_id());
        let reuse_id = format!("{{\"v\":1,\"id\":\"{last_id}\",\"ts\":{t},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"reuse-id\"}}}}");
        // A bogus first `sig`: JSON.parse keeps the last one, which is right.
        let dup_sig = sign_text(&key, &format!("{{\"sig\":\"{}\",\"v\":1,\"id\":\"{}\",\"ts\":{t},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"dup-sig\"}}}}", "0".repeat(64), fresh_id()));
        // The `sig` inside a *signed* first copy: stripping must not keep it.
        let dup_sig_bad = format!(
            "{}\"sig\":\"{}\"}}",
            sign_text(&key, &format!("{{\"v\":1,\"id\":\"{}\",\"ts\":{t},\"type\":\"direct\",\"to\":\"alice\",\"data\":{{\"directType\":\"dup-sig-bad\"}}}}", fresh_id())).trim_end_matches('}').to_owned() + ",",
            "0".repeat(64)
        );
        for f in [sign_text(&key, &dup_to), sign_text(&key, &dup_type), sign_text(&key, &dup_data), sign_text(&key, &dup_id), sign_text(&key, &reuse_id), dup_sig, dup_sig_bad] {
            m.send_text(f).await?;
        }
        for who in ["alice", "bob"] {
            m.send_text(direct(&key, "mallory", who, "end", json!(0))).await?;
        }
        let alice_got = directs_until(&mut alice_events, "end").await?;
        let bob_got = directs_until(&mut bob_events, "end").await?;
        let alice_types: Vec<(&str, &Json)> = alice_got.iter().map(|g| (g.1.as_str(), &g.2)).collect();
        let bob_types: Vec<&str> = bob_got.iter().map(|g| g.1.as_str()).collect();
        expect(
            alice_types == [("dup-type", &Json::Null), ("dup-data", &json!(2)), ("dup-id", &Json::Null), ("dup-sig", &Json::Null), ("end", &json!(0))],
            || format!("alice got {alice_types:?}"),
        )?;
        expect(bob_types == ["dup-to", "end"], || format!("bob got {bob_types:?}"))?;
        let c = a.tally.wait_for("the tally to catch up", |c| c.directs.len() >= 7).await?;
        expect(c.reason("replay-id") == 1 && c.reason("bad-signature") == 1, || summary(&c))?;
        Ok("last key wins (to, type, data, id, sig); replay-id ×1 on the last id, bad-signature ×1 on a trailing forged sig".to_owned())
    }
    .await;
    a.finish(NAME, counted).await
}

/// Captured frames sent again: `replay-id` within the window (one delivery only),
/// `replay-window` outside it; a replayed hello does not displace its peer.
pub async fn replayed_frames() -> Report {
    const NAME: &str = "replayed frames";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut alice_events = a.alice.events();
        let mut m = a.attacker().await?;
        let captured_hello = hello(&key, "mallory");
        m.send_text(captured_hello.clone()).await?;
        m.until_type("hello.ack").await?;
        const REPLAYS: u64 = 20;
        let captured = direct(&key, "mallory", "alice", "once", json!(1));
        for _ in 0..=REPLAYS {
            m.send_text(captured.clone()).await?;
        }
        // The captured hello, replayed on a fresh socket while mallory is connected.
        let mut r = a.attacker().await?;
        r.send_text(captured_hello.clone()).await?;
        // Old and future frames (captured long ago / pre-signed for later).
        let now = now_ms() as f64;
        let window = 300_000.0;
        for ts in [now - window - 60_000.0, now + window + 60_000.0, 0.0] {
            m.send_text(envelope_at(&key, &fresh_id(), ts, "direct", None, Some("alice"), Some(json!({"directType": "stale"})))).await?;
        }
        let mut old_hello_socket = a.attacker().await?;
        old_hello_socket
            .send_text(envelope_at(&key, &fresh_id(), now - window - 60_000.0, "hello", Some("bob"), None, Some(json!({"kind": "bob"}))))
            .await?;
        m.send_text(direct(&key, "mallory", "alice", "end", json!(0))).await?;
        let got = directs_until(&mut alice_events, "end").await?;
        let types: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
        expect(types == ["once", "end"], || format!("alice got {types:?}"))?;
        let c = a.tally.wait_for("replays", |c| c.reason("replay-id") > REPLAYS && c.reason("replay-window") >= 4).await?;
        expect(c.reason("replay-id") == REPLAYS + 1 && c.reason("replay-window") == 4, || summary(&c))?;
        expect(c.replaced.is_empty() && c.connects("mallory") == 1 && c.connects("bob") == 1, || summary(&c))?;
        let st = m.state().await?;
        expect(st.is_none(), || format!("mallory lost its socket: {st:?}"))?;
        drop((r, old_hello_socket));
        Ok(format!("replay-id ×{} (20 direct + 1 hello, delivered once, nobody displaced), replay-window ×4 (old, future, ts 0, old hello)", c.reason("replay-id")))
    }
    .await;
    a.finish(NAME, counted).await
}

/// A peer claiming to be someone else in `from`: the hub stamps the authenticated
/// kind on everything it forwards.
pub async fn forged_from() -> Report {
    const NAME: &str = "forged from";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut alice_events = a.alice.events();
        let mut news = a.alice.subscribe("news").await.map_err(|e| e.to_string())?;
        a.tally.wait_for("alice subscribed", |c| c.subscribed.iter().any(|(k, t)| k == "alice" && t == "news")).await?;
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        wait_for_peer(&a.alice, "mallory").await?;
        m.send_text(direct(&key, "bob", "alice", "forged", json!("from bob, honest"))).await?;
        m.send_text(envelope(&key, "topic.message", Some("server"), None, Some(json!({"topic": "news", "payload": "official"})))).await?;
        let rpc_id = fresh_id();
        m.send_text(envelope_at(&key, &rpc_id, now_ms() as f64, "rpc.request", Some("bob"), Some("alice"), Some(json!({"rpcType": "whoami", "rpcData": null})))).await?;
        m.send_text(envelope(&key, "status.update", Some("bob"), None, Some(json!({"mood": "forged"})))).await?;
        m.send_text(direct(&key, "server", "alice", "end", json!(0))).await?;
        let got = directs_until(&mut alice_events, "end").await?;
        expect(got.len() == 2 && got.iter().all(|g| g.0.as_deref() == Some("mallory")), || format!("alice got {got:?}"))?;
        let msg = within("news", news.recv()).await?.ok_or("subscription ended")?;
        expect(msg.from.as_deref() == Some("mallory"), || format!("topic message from {:?}", msg.from))?;
        // The RPC reached alice as mallory's, and the answer came back to mallory.
        let resp = m.until_type("rpc.response").await?;
        expect(resp["id"] == json!(rpc_id) && resp["data"]["result"]["caller"] == json!("mallory") && resp["from"] == json!("alice"), || format!("response {resp}"))?;
        let bob_status = a.alice.peer_status("bob").await.map_err(|e| e.to_string())?;
        expect(bob_status.is_none(), || format!("bob's status was forged: {bob_status:?}"))?;
        let c = a.tally.wait_for("the tally to catch up", |c| c.directs.len() >= 2).await?;
        expect(c.directs.iter().all(|(f, _)| f == "mallory") && c.directs.len() == 2, || format!("hub directs {:?}", c.directs))?;
        Ok("direct, topic.message, rpc.request, status.update: all stamped from=mallory (claimed bob/server)".to_owned())
    }
    .await;
    a.finish(NAME, counted).await
}

/// Per-peer keys: hellos and frames signed with another peer's key are never
/// accepted; unknown kinds are dropped silently; nobody is displaced.
pub async fn wrong_peer_key() -> Report {
    const NAME: &str = "wrong per-peer key";
    let keys = KeyMode::PerPeer;
    let a = arena!(NAME, keys, hub_options(keys));
    let counted = async {
        let mut alice_events = a.alice.events();
        // Claims alice with bob's key, over and over on one socket.
        let mut imp = a.attacker().await?;
        const TRIES: u64 = 20;
        for _ in 0..TRIES {
            imp.send_text(hello(&keys.key("bob"), "alice")).await?;
        }
        // Claims a kind the hub has no key for.
        let mut eve = a.attacker().await?;
        eve.send_text(hello(&keys.key("eve"), "eve")).await?;
        // Claims mallory with the shared-mode secret.
        let mut shared = a.attacker().await?;
        shared
            .send_text(hello(&KeyMode::Shared.key("mallory"), "mallory"))
            .await?;
        // mallory, properly authenticated, signs a frame with alice's key.
        let mut m = a.attacker().await?;
        m.authenticate(&keys.key("mallory"), "mallory").await?;
        m.send_text(direct(
            &keys.key("alice"),
            "alice",
            "bob",
            "impersonated",
            json!(1),
        ))
        .await?;
        m.send_text(direct(
            &keys.key("mallory"),
            "mallory",
            "alice",
            "end",
            json!(0),
        ))
        .await?;
        let got = directs_until(&mut alice_events, "end").await?;
        expect(got.len() == 1, || format!("alice got {got:?}"))?;
        let c = a
            .tally
            .wait_for("hello timeouts", |c| c.timeout("hello-timeout") >= 3)
            .await?;
        for (s, who) in [
            (&mut imp, "impersonator"),
            (&mut eve, "eve"),
            (&mut shared, "shared-key"),
        ] {
            let end = s.ended().await?;
            expect(
                end.code == Some(1008) && end.reason == "hello timeout",
                || format!("{who} ended {end:?}"),
            )?;
        }
        expect(
            c.reason("bad-signature") == TRIES + 2 && c.reason("unknown-kind") == 1,
            || summary(&c),
        )?;
        expect(c.replaced.is_empty() && c.connects("alice") == 1, || {
            summary(&c)
        })?;
        expect(a.alice.is_ready(), || "alice lost her link".to_owned())?;
        Ok(format!(
            "bad-signature ×{}, unknown-kind ×1, hello-timeout ×3, never acked, nobody displaced",
            TRIES + 2
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// A subscriber that never reads: its backlog passes `maxBufferedBytes`
/// (`backpressure`), its outbox fills to `maxOutboxBytes` (`outbox-overflow`), RPCs
/// to it fail fast with `RPC_TARGET_UNAVAILABLE`; the hub's memory stays capped.
pub async fn never_reading_client() -> Report {
    const NAME: &str = "never-reading client";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("sloth");
        let mut sloth = Attacker::connect(a.addr(), "/", Some(4096)).await?;
        sloth.authenticate(&key, "sloth").await?;
        sloth.send_text(envelope(&key, "topic.subscribe", Some("sloth"), None, Some(json!({"topic": "firehose"})))).await?;
        a.tally.wait_for("sloth subscribed", |c| c.subscribed.iter().any(|(k, _)| k == "sloth")).await?;
        wait_for_peer(&a.alice, "sloth").await?;
        // From here on sloth reads nothing.
        let chunk = "z".repeat(32 * 1024);
        let mut published = 0u64;
        let mut max_outbox = 0usize;
        for _ in 0..4000 {
            a.alice.publish("firehose", &json!({"seq": published, "pad": chunk})).await.map_err(|e| format!("publish: {e}"))?;
            published += 1;
            if published.is_multiple_of(8) {
                let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
                max_outbox = max_outbox.max(h.outbox_bytes);
                // Sustained refusals: the kernel's send buffer (autotuned up to a few
                // MiB on loopback) has stopped taking sloth's backlog.
                if a.tally.now().overflow >= 16 {
                    break;
                }
            }
        }
        let c = a.tally.wait_for("outbox overflow", |c| c.overflow >= 16).await?;
        let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
        max_outbox = max_outbox.max(h.outbox_bytes);
        expect(h.outbox_bytes <= MAX_OUTBOX, || format!("health {h:?}"))?;
        // The kernel keeps taking some of sloth's backlog now and then (loopback send
        // buffers autotune up to a few MiB), so the call goes right behind a burst of
        // publishes larger than the whole outbox: the hub handles them back to back
        // and the call finds no room. Bounded retries in case the transport drained in
        // between: the call was then forwarded and times out after a second.
        let big = "q".repeat(60 * 1024);
        let mut attempts = 0;
        let err = loop {
            attempts += 1;
            for _ in 0..(2 * MAX_OUTBOX / chunk.len()) {
                a.alice.publish("firehose", &json!({"seq": published, "pad": chunk})).await.map_err(|e| format!("publish: {e}"))?;
                published += 1;
            }
            let r = within("rpc to sloth", a.alice.rpc::<_, Json>("sloth", "anything", &big).timeout(Duration::from_millis(1000)).into_future()).await?;
            let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
            max_outbox = max_outbox.max(h.outbox_bytes);
            match r {
                Err(e) if e.code() == "RPC_TIMEOUT" && attempts < 5 => continue,
                Err(e) => break e,
                Ok(v) => return Err(format!("rpc to sloth answered {v}")),
            }
        };
        expect(err.code() == "RPC_TARGET_UNAVAILABLE", || format!("rpc to sloth: {} ({err}) after {attempts} attempts", err.code()))?;
        a.legit_ok().await.map_err(|e| format!("legit while sloth congested: {e}"))?;
        let h2 = a.server.hub().health().await.map_err(|e| e.to_string())?;
        expect(h2.outbox_bytes <= MAX_OUTBOX, || format!("health after {h2:?}"))?;
        // sloth wakes up: what the hub accepted for it arrives, in order, once; what it
        // refused was counted as an overflow.
        let reader = tokio::spawn(async move {
            let (mut seqs, mut rpcs) = (Vec::new(), 0u64);
            loop {
                match sloth.next_json().await {
                    Ok(Some(v)) if v["type"] == "topic.message" => match v["data"]["payload"]["seq"].as_u64() {
                        Some(seq) => seqs.push(seq),
                        None => return Ok((seqs, rpcs, sloth)),
                    },
                    Ok(Some(v)) if v["type"] == "rpc.request" => rpcs += 1,
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("sloth's socket closed".to_owned()),
                    Err(e) => return Err(e),
                }
            }
        });
        let deadline = tokio::time::Instant::now() + WAIT;
        while a.server.hub().health().await.map_err(|e| e.to_string())?.outbox_bytes > 0 {
            if tokio::time::Instant::now() >= deadline {
                return Err("sloth's outbox never drained once it read".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        a.alice.publish("firehose", &json!({"end": true})).await.map_err(|e| format!("publish: {e}"))?;
        let (seqs, rpcs, sloth) = within("sloth reads its backlog", reader).await?.map_err(|e| e.to_string())??;
        let refusals = |c: &Counts| c.overflow_types.get("topic.message").copied().unwrap_or(0);
        // The tally may trail sloth's reading; it has caught up once the counts add up
        // (or times out saying how far off they are).
        let received = seqs.len() as u64;
        let refused = match a.tally.wait_for("refusals", |c| received + refusals(c) >= published).await {
            Ok(c) => refusals(&c),
            Err(_) => refusals(&a.tally.now()),
        };
        expect(seqs.windows(2).all(|w| w[0] < w[1]), || "sloth got messages out of order or twice".to_owned())?;
        expect(seqs.len() as u64 + refused == published, || format!("sloth got {} of {published} messages, {refused} refused", seqs.len()))?;
        expect(rpcs == attempts - 1, || format!("sloth got {rpcs} requests after {attempts} attempts"))?;
        sloth.drop_abruptly();
        a.tally.wait_for("sloth gone", |c| c.disconnected.contains_key("sloth")).await?;
        let h3 = a.server.hub().health().await.map_err(|e| e.to_string())?;
        expect(h3.outbox_bytes == 0 && h3.queued_sockets == 0, || format!("outbox kept after sloth left: {h3:?}"))?;
        Ok(format!(
            "backpressure ×{}, outbox-overflow ×{} after {published} publishes, outbox max {} KiB ≤ {} KiB, RPC_TARGET_UNAVAILABLE (attempt {attempts}); once it reads: every accepted message once, in order",
            c.backpressure,
            a.tally.now().overflow,
            max_outbox / 1024,
            MAX_OUTBOX / 1024
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// 1,000 RPCs to a peer that answers some, then drops: the answered ones succeed,
/// the forwarded-but-unanswered ones time out (the hub keeps no pending table), the
/// ones sent after it left get `RPC_NO_TARGET`; every call settles.
pub async fn rpc_burst_target_drops() -> Report {
    const NAME: &str = "rpc burst, target drops";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        const BEFORE: usize = 500;
        const ANSWERED: usize = 250;
        const AFTER: usize = 500;
        let rpc_timeout = Duration::from_millis(2000);
        let key = KeyMode::Shared.key("flaky");
        let mut flaky = a.attacker().await?;
        flaky.authenticate(&key, "flaky").await?;
        wait_for_peer(&a.alice, "flaky").await?;
        let call = |i: usize| {
            let alice = a.alice.clone();
            tokio::spawn(async move {
                let r = alice
                    .rpc::<_, Json>("flaky", "work", &json!({ "i": i }))
                    .timeout(rpc_timeout)
                    .into_future();
                match tokio::time::timeout(WAIT, r).await {
                    Ok(Ok(v)) => format!("ok {}", v == json!(i)),
                    Ok(Err(e)) => e.code().to_owned(),
                    Err(_) => "HUNG".to_owned(),
                }
            })
        };
        let mut calls: Vec<_> = (0..BEFORE).map(call).collect();
        // flaky reads every request, answers the first ANSWERED, then vanishes.
        let mut requests = Vec::new();
        while requests.len() < BEFORE {
            match flaky.next_json().await? {
                Some(v) if v["type"] == "rpc.request" => requests.push(v),
                Some(_) => {}
                None => return Err(format!("flaky closed after {} requests", requests.len())),
            }
        }
        for req in requests.iter().take(ANSWERED) {
            let i = req["data"]["rpcData"]["i"].clone();
            let id = req["id"].as_str().unwrap_or_default().to_owned();
            flaky
                .send_text(envelope_at(
                    &key,
                    &id,
                    now_ms() as f64,
                    "rpc.response",
                    Some("flaky"),
                    Some("alice"),
                    Some(json!({"ok": true, "result": i})),
                ))
                .await?;
        }
        flaky.drop_abruptly();
        a.tally
            .wait_for("flaky gone", |c| c.disconnected.contains_key("flaky"))
            .await?;
        calls.extend((BEFORE..BEFORE + AFTER).map(call));
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for (i, c) in calls.into_iter().enumerate() {
            let o = c.await.map_err(|e| format!("rpc task {i}: {e}"))?;
            let key = if i < BEFORE {
                format!("before: {o}")
            } else {
                format!("after: {o}")
            };
            *outcomes.entry(key).or_default() += 1;
        }
        let want: BTreeMap<String, usize> = [
            ("before: ok true".to_owned(), ANSWERED),
            ("before: RPC_TIMEOUT".to_owned(), BEFORE - ANSWERED),
            ("after: RPC_NO_TARGET".to_owned(), AFTER),
        ]
        .into_iter()
        .collect();
        expect(outcomes == want, || format!("outcomes {outcomes:?}"))?;
        let c = a
            .tally
            .wait_for("the tally to catch up", |c| {
                c.rpc_forwarded.get("flaky") >= Some(&(BEFORE as u64))
            })
            .await?;
        expect(
            c.rpc_forwarded.get("flaky") == Some(&(BEFORE as u64)),
            || summary(&c),
        )?;
        Ok(format!(
            "{} calls settled: ok ×{ANSWERED}, RPC_TIMEOUT ×{}, RPC_NO_TARGET ×{AFTER}, none hung",
            BEFORE + AFTER,
            BEFORE - ANSWERED
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// A key resolver that never answers for some kinds (a dead backend without a
/// timeout): attackers park padded hellos for those kinds and go away, socket after
/// socket. At most four lookups run per socket (`concurrent-hello` beyond), parked
/// hellos have a byte budget (`hello-backlog` beyond), and what a closed socket parked
/// must not stay in the hub's memory.
pub async fn hanging_key_resolver() -> Report {
    const NAME: &str = "hanging key resolver";
    const ROUNDS: usize = 200;
    const PAD: usize = MAX_MESSAGE - 1024;
    let asked = Arc::new(AtomicU64::new(0));
    let resolver = {
        let asked = asked.clone();
        HubOptions::key_resolver(move |kind: String| {
            let asked = asked.clone();
            async move {
                if kind.starts_with("slow-") {
                    asked.fetch_add(1, Ordering::Relaxed);
                    std::future::pending::<()>().await;
                }
                Some(SECRET.to_owned())
            }
        })
    };
    let a = arena!(NAME, KeyMode::Shared, with_caps(resolver));
    let counted = async {
        let pad = "p".repeat(PAD);
        let rss_before = rss_bytes();
        for i in 0..ROUNDS {
            let mut s = a.attacker().await?;
            // Parked before verification, so the signature does not matter.
            let h = format!(
                "{{\"v\":1,\"id\":\"{}\",\"ts\":{},\"type\":\"hello\",\"data\":{{\"kind\":\"slow-{i}\",\"pad\":\"{pad}\"}},\"sig\":\"00\"}}",
                fresh_id(),
                now_ms()
            );
            for _ in 0..5 {
                s.send_text(h.clone()).await?;
            }
            s.drop_abruptly();
        }
        // Wait until the hub has let go of every attacker socket (each is closed by the
        // attacker or evicted by the pending cap; frames still unread on a closed socket
        // are dropped with it, read ones after eviction as `stale-socket`).
        let deadline = tokio::time::Instant::now() + WAIT;
        while a.server.hub().connection_count().await.map_err(|e| e.to_string())? > 2
            || a.server.hub().health().await.map_err(|e| e.to_string())?.pending_socket_count > 0
        {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("attacker sockets never released: {}", summary(&a.tally.now())));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let c = a.tally.now();
        let grew = rss_bytes().saturating_sub(rss_before);
        let sent_bytes = 5 * ROUNDS * PAD;
        let asked = asked.load(Ordering::Relaxed);
        let concurrent = c.details.get("duplicate-hello/concurrent-hello").copied().unwrap_or(0);
        expect(asked <= 4 * ROUNDS as u64, || format!("resolver asked {asked} times for {ROUNDS} sockets"))?;
        // The parked budget (one socket's worth here) was freed again and again.
        expect(asked > 8, || format!("resolver asked only {asked} times: parked hellos were not released: {}", summary(&c)))?;
        expect(grew < (sent_bytes / 2) as u64, || format!("rss grew {} MiB after {} MiB of hellos from sockets that left", grew >> 20, sent_bytes >> 20))?;
        Ok(format!(
            "resolver asked {asked}× (≤ 4 per socket), concurrent-hello ×{concurrent}, hello-backlog ×{}, pending-cap ×{}; rss +{} MiB after {} MiB of hellos from {ROUNDS} sockets that left",
            c.reason("hello-backlog"),
            c.timeout("pending-cap"),
            grew >> 20,
            sent_bytes >> 20
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// Frames the WebSocket layer itself refuses: invalid UTF-8 in a text frame and a
/// reserved opcode. The reference's `ws` answers with a close frame, 1007 and 1002;
/// the socket goes, the hub and everyone else carry on.
pub async fn invalid_websocket_frames() -> Report {
    const NAME: &str = "invalid websocket frames";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut u = a.attacker().await?;
        u.authenticate(&key, "mallory").await?;
        u.send_raw_text(vec![b'{', 0xff, 0xfe, b'}']).await?;
        let utf8 = u.ended().await?;
        a.tally
            .wait_for("mallory gone", |c| c.disconnected.contains_key("mallory"))
            .await?;
        let mut p = a.attacker().await?;
        p.send_raw_frame(Frame::message(
            Bytes::from_static(b"{}"),
            OpCode::Data(Data::Reserved(3)),
            true,
        ))
        .await?;
        let reserved = p.ended().await?;
        expect(utf8.code == Some(1007), || {
            format!("invalid UTF-8 text ended with {utf8:?}, want close 1007")
        })?;
        expect(reserved.code == Some(1002), || {
            format!("reserved opcode ended with {reserved:?}, want close 1002")
        })?;
        Ok("invalid UTF-8 text → close 1007, reserved opcode → close 1002".to_owned())
    }
    .await;
    a.finish(NAME, counted).await
}

/// Thousands of frames with fresh ids from one peer: the replay cache keeps at most
/// `maxRecentIds` per sender (an LRU), and still refuses the recent ones.
pub async fn id_flood() -> Report {
    const NAME: &str = "id flood";
    const MAX_IDS: usize = 500;
    const FRAMES: usize = 4 * MAX_IDS;
    let a = arena!(
        NAME,
        KeyMode::Shared,
        hub_options(KeyMode::Shared).max_recent_ids(MAX_IDS)
    );
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        let mut last = String::new();
        for i in 0..FRAMES {
            // A type the hub ignores: verified, remembered, no reply.
            last = envelope(&key, "noise", Some("mallory"), None, Some(json!(i)));
            m.send_text(last.clone()).await?;
        }
        m.send_text(last).await?;
        let c = a
            .tally
            .wait_for("replay of the last id", |c| c.reason("replay-id") >= 1)
            .await?;
        let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
        // alice, bob and mallory each hold at most MAX_IDS.
        expect(h.recent_ids_size <= 3 * MAX_IDS, || {
            format!("replay cache {} ids", h.recent_ids_size)
        })?;
        expect(c.reason("replay-id") == 1, || summary(&c))?;
        Ok(format!(
            "{FRAMES} fresh ids → replay cache {} ≤ 3×{MAX_IDS}; replay-id ×1 on the newest",
            h.recent_ids_size
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// A peer fires far more `to: "server"` RPCs than `maxConcurrentRpc` at a slow
/// handler: the excess is refused at once with `RPC_OVERLOADED`, the rest complete.
pub async fn server_rpc_flood() -> Report {
    const NAME: &str = "server rpc flood";
    const MAX_RPC: usize = 16;
    const CALLS: usize = 400;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let hub = {
        let gate = gate.clone();
        hub_options(KeyMode::Shared)
            .max_concurrent_rpc(MAX_RPC)
            .handle("slow", move |_ctx, v: Json| {
                let gate = gate.clone();
                async move {
                    let _ = gate.acquire().await.map(|p| p.forget());
                    Ok::<_, RpcHandlerError>(v)
                }
            })
    };
    let a = arena!(NAME, KeyMode::Shared, hub);
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        for i in 0..CALLS {
            let req = envelope(&key, "rpc.request", Some("mallory"), Some("server"), Some(json!({"rpcType": "slow", "rpcData": i})));
            m.send_text(req).await?;
        }
        let mut codes: BTreeMap<String, usize> = BTreeMap::new();
        let mut overloaded = 0;
        while overloaded < CALLS - MAX_RPC {
            let r = m.until_type("rpc.response").await?;
            let code = r["data"]["code"].as_str().unwrap_or("ok").to_owned();
            overloaded += usize::from(code == "RPC_OVERLOADED");
            *codes.entry(code).or_default() += 1;
        }
        let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
        expect(h.server_rpc_in_flight == MAX_RPC, || format!("in flight {}", h.server_rpc_in_flight))?;
        // alice's own server call is refused too while the flood holds every slot.
        let err = within("alice server rpc", a.alice.rpc::<_, Json>("server", "slow", &0).into_future())
            .await?
            .expect_err("no slot left");
        expect(err.code() == "RPC_OVERLOADED", || format!("alice's server rpc: {}", err.code()))?;
        gate.add_permits(MAX_RPC);
        for _ in 0..MAX_RPC {
            let r = m.until_type("rpc.response").await?;
            let code = r["data"]["code"].as_str().unwrap_or("ok").to_owned();
            *codes.entry(code).or_default() += 1;
        }
        gate.add_permits(1 << 20);
        let want: BTreeMap<String, usize> = [("RPC_OVERLOADED".to_owned(), CALLS - MAX_RPC), ("ok".to_owned(), MAX_RPC)].into_iter().collect();
        expect(codes == want, || format!("responses {codes:?}"))?;
        Ok(format!("RPC_OVERLOADED ×{} at once, ok ×{MAX_RPC} once released; in flight held at the cap ({MAX_RPC})", CALLS - MAX_RPC))
    }
    .await;
    gate.add_permits(1 << 20);
    a.finish(NAME, counted).await
}

/// One peer spams large `status.update`s while another never reads: the hub relays
/// them, and once the stalled peer's backlog is full it keeps only the newest status
/// per origin in that peer's outbox (conflation), so nothing overflows.
pub async fn status_spam() -> Report {
    const NAME: &str = "status spam to a stalled peer";
    const UPDATES: usize = 200;
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let sloth_key = KeyMode::Shared.key("sloth");
        let mut sloth = Attacker::connect(a.addr(), "/", Some(4096)).await?;
        sloth.authenticate(&sloth_key, "sloth").await?;
        let key = KeyMode::Shared.key("mallory");
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        let mut alice_events = a.alice.events();
        let pad = "s".repeat(16 * 1024);
        let mut max_outbox = 0;
        for i in 0..UPDATES {
            m.send_text(envelope(&key, "status.update", Some("mallory"), None, Some(json!({"seq": i, "pad": pad})))).await?;
            if i % 16 == 15 {
                let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
                max_outbox = max_outbox.max(h.outbox_bytes);
            }
        }
        m.send_text(direct(&key, "mallory", "alice", "end", json!(0))).await?;
        // Statuses go out before the direct (a queued status keeps its place in line).
        directs_until(&mut alice_events, "end").await?;
        let c = a.tally.wait_for("the tally to catch up", |c| !c.directs.is_empty()).await?;
        let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
        max_outbox = max_outbox.max(h.outbox_bytes);
        expect(c.overflow == 0, || format!("overflow ×{}: {}", c.overflow, summary(&c)))?;
        // At most one queued status per origin and recipient: sloth, and alice and bob
        // when they fall behind for a moment.
        expect(max_outbox <= 3 * (pad.len() + 1024), || format!("outbox reached {max_outbox} B"))?;
        let latest = a.alice.peer_status("mallory").await.map_err(|e| e.to_string())?;
        let seq = latest.and_then(|s| s.status).and_then(|v| v.get("seq").and_then(|x| x.as_f64()));
        expect(seq == Some((UPDATES - 1) as f64), || format!("alice's latest mallory status {seq:?}"))?;
        drop(sloth);
        Ok(format!(
            "{UPDATES} × 16 KiB statuses: backpressure ×{}, overflow ×0, outboxes ≤ {} KiB in all (one status per origin and recipient), alice sees the last",
            c.backpressure,
            max_outbox / 1024
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// A peer subscribes to thousands of topics and leaves: every subscription goes with
/// it (no topic or subscriber left behind).
pub async fn subscription_flood() -> Report {
    const NAME: &str = "subscription flood";
    const TOPICS: usize = 3000;
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let key = KeyMode::Shared.key("mallory");
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        for i in 0..TOPICS {
            m.send_text(envelope(
                &key,
                "topic.subscribe",
                Some("mallory"),
                None,
                Some(json!({"topic": format!("t.{i}")})),
            ))
            .await?;
        }
        // Invalid topics are refused, not stored.
        for bad in [
            json!("a b"),
            json!(""),
            json!("x".repeat(257)),
            json!(42),
            json!("*"),
        ] {
            m.send_text(envelope(
                &key,
                "topic.subscribe",
                Some("mallory"),
                None,
                Some(json!({"topic": bad})),
            ))
            .await?;
        }
        let c = a
            .tally
            .wait_for("subscriptions", |c| {
                c.subscribed.len() >= TOPICS && c.reason("invalid-topic") >= 5
            })
            .await?;
        let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
        expect(
            h.topic_count == TOPICS && h.total_subscribers == TOPICS,
            || format!("while subscribed: {h:?}"),
        )?;
        expect(c.reason("invalid-topic") == 5, || summary(&c))?;
        m.drop_abruptly();
        a.tally
            .wait_for("mallory gone", |c| c.disconnected.contains_key("mallory"))
            .await?;
        let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
        expect(h.topic_count == 0 && h.total_subscribers == 0, || {
            format!("after leaving: {h:?}")
        })?;
        Ok(format!(
            "{TOPICS} topics held then all released on disconnect; invalid-topic ×5"
        ))
    }
    .await;
    a.finish(NAME, counted).await
}

/// Slowloris before the upgrade: TCP connections that send half an HTTP request, or
/// nothing, and stall. They never become hub sockets (nothing pending, nothing
/// counted), and the hub and its peers carry on. (The HTTP server has no header
/// timeout, so they stay open until the attacker leaves: see the findings note.)
pub async fn stalled_http_requests() -> Report {
    const NAME: &str = "stalled http requests";
    const STALLED: usize = 200;
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        use tokio::io::AsyncWriteExt;
        let mut held = Vec::new();
        for i in 0..STALLED {
            let mut s = TcpStream::connect(a.addr()).await.map_err(|e| format!("connect {i}: {e}"))?;
            if i % 2 == 0 {
                let partial = format!("GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n", a.addr());
                s.write_all(partial.as_bytes()).await.map_err(|e| e.to_string())?;
            }
            held.push(s);
        }
        let h = a.server.hub().health().await.map_err(|e| e.to_string())?;
        let conns = a.server.hub().connection_count().await.map_err(|e| e.to_string())?;
        expect(h.pending_socket_count == 0 && conns == 2, || format!("pending {} conns {conns}", h.pending_socket_count))?;
        a.legit_ok().await.map_err(|e| format!("legit while {STALLED} requests stall: {e}"))?;
        a.hub_up().await.map_err(|e| format!("/health while {STALLED} requests stall: {e}"))?;
        drop(held);
        Ok(format!("{STALLED} stalled requests: none reached the hub (pending 0), /health and new peers served meanwhile"))
    }
    .await;
    a.finish(NAME, counted).await
}

/// Graceful shutdown while attacked: silent pending sockets, a peer that never reads
/// (so never answers the close), and stalled HTTP requests. `stop()` must succeed
/// within its drain delay plus a margin (an attacker must not hold it hostage until
/// `shutdown_timeout`) and close pending sockets with 1001 `server shutdown`.
pub async fn stop_under_attack() -> Report {
    const NAME: &str = "stop under attack";
    let drain_delay = Duration::from_millis(250);
    let shutdown_timeout = Duration::from_secs(3);
    let opts = HubServerOptions::new(hub_options(KeyMode::Shared))
        .drain_delay(drain_delay)
        .shutdown_timeout(shutdown_timeout);
    let a = match Arena::start_with(KeyMode::Shared, opts).await {
        Ok(a) => a,
        Err(e) => return not_started(NAME, e),
    };
    let counted = async {
        use tokio::io::AsyncWriteExt;
        let mut pending = Vec::new();
        for _ in 0..4 {
            pending.push(a.attacker().await?);
        }
        let key = KeyMode::Shared.key("sloth");
        let mut sloth = Attacker::connect(a.addr(), "/", Some(4096)).await?;
        sloth.authenticate(&key, "sloth").await?;
        let mut stalled = Vec::new();
        for _ in 0..3 {
            let mut s = TcpStream::connect(a.addr())
                .await
                .map_err(|e| e.to_string())?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .await
                .map_err(|e| e.to_string())?;
            stalled.push(s);
        }
        a.legit_ok().await?;
        Ok((pending, sloth, stalled))
    }
    .await;
    let (mut pending, sloth, stalled) = match counted {
        Ok(x) => x,
        Err(e) => return a.finish(NAME, Err(e)).await,
    };
    let alice_events = a.alice.events();
    let started = Instant::now();
    let stopped = within("stop", a.server.stop())
        .await
        .and_then(|r| r.map_err(|e| e.to_string()));
    let took = started.elapsed();
    let stopped = match stopped {
        Ok(()) if took < drain_delay + Duration::from_secs(2) => Ok(()),
        Ok(()) => Err(format!("stop() took {took:?}")),
        Err(e) => Err(format!("stop() failed after {took:?}: {e}")),
    };
    let counted = async {
        let mut ends = BTreeMap::new();
        for p in pending.iter_mut() {
            let e = p.ended().await?;
            *ends
                .entry(format!("{:?} {}", e.code, e.reason))
                .or_insert(0) += 1;
        }
        expect(ends.get("Some(1001) server shutdown") == Some(&4), || {
            format!("pending sockets ended {ends:?}")
        })?;
        Ok(format!(
            "stop() in {} ms; pending sockets closed 1001 \"server shutdown\", peers 1001",
            took.as_millis()
        ))
    }
    .await;
    drop((stalled, sloth, pending));
    a.finish_stopped(NAME, stopped, alice_events, counted).await
}

/// An eavesdropper (no key) captures carol's frames on the wire and replays them:
/// into carol's own stream (`replay-id`), as her hello on a new socket while she is
/// connected (`replay-id`, nobody displaced), again once carol's traffic has pushed the
/// hello's id out of the `maxRecentIds` cache, and after she has left — neither may
/// displace carol nor hand the eavesdropper her identity and the traffic meant for her.
pub async fn captured_hello_replayed() -> Report {
    const NAME: &str = "captured hello replayed";
    const MAX_IDS: usize = 200;
    let a = arena!(
        NAME,
        KeyMode::Shared,
        hub_options(KeyMode::Shared).max_recent_ids(MAX_IDS)
    );
    let counted = async {
        let tap = Tap::start(a.addr()).await?;
        let carol = legit_options(KeyMode::Shared, "carol")
            .connect(format!("ws://{}/", tap.addr))
            .map_err(|e| e.to_string())?;
        within("carol ready", carol.ready()).await?.map_err(|e| e.to_string())?;
        wait_for_peer(&a.alice, "carol").await?;
        let mut alice_events = a.alice.events();
        carol.send("alice", "from-carol", &1).await.map_err(|e| e.to_string())?;
        let captured_hello = tap.first("hello").ok_or("no hello captured")?;
        let got = directs_until(&mut alice_events, "from-carol").await?;
        expect(got.len() == 1 && got[0].0.as_deref() == Some("carol"), || format!("alice got {got:?}"))?;
        let captured_direct = tap.first("direct").ok_or("no direct captured")?;
        // 1. The captured direct, injected into carol's own connection.
        tap.inject(captured_direct.clone());
        a.tally.wait_for("replay-id (injected)", |c| c.reason("replay-id") >= 1).await?;
        // 2. The captured hello on a fresh socket while carol is connected.
        let mut r1 = a.attacker().await?;
        r1.send_text(captured_hello.clone()).await?;
        a.tally.wait_for("replay-id (hello)", |c| c.reason("replay-id") >= 2).await?;
        expect(carol.is_ready() && a.tally.now().replaced.is_empty(), || "carol was displaced".to_owned())?;
        // 3. carol is busy: her hello's id ages out of the main cache (`maxRecentIds`),
        // and the captured hello is replayed again while she is connected.
        for i in 0..=MAX_IDS {
            carol.publish("void", &i).await.map_err(|e| e.to_string())?;
        }
        carol.send("alice", "busy-done", &0).await.map_err(|e| e.to_string())?;
        directs_until(&mut alice_events, "busy-done").await?;
        let mut r3 = a.attacker().await?;
        r3.send_text(captured_hello.clone()).await?;
        let c = a.tally.wait_for("replay-id (hello of a busy peer)", |c| c.reason("replay-id") >= 3 || !c.replaced.is_empty()).await?;
        expect(c.replaced.is_empty() && carol.is_ready(), || format!("a replayed hello displaced busy carol: {}", summary(&c)))?;
        // 4. carol leaves; the eavesdropper replays her hello within the window.
        within("carol stop", carol.stop()).await?.map_err(|e| e.to_string())?;
        a.tally.wait_for("carol gone", |c| c.disconnected.contains_key("carol")).await?;
        let mut r2 = a.attacker().await?;
        r2.send_text(captured_hello).await?;
        let c = a.tally.wait_for("replay-id (hello after carol left)", |c| c.reason("replay-id") >= 4 || c.connects("carol") >= 2).await?;
        let impersonated = c.connects("carol") >= 2;
        let mut leak = String::new();
        if impersonated {
            // What the impersonator now receives: alice's message for carol.
            a.alice.send("carol", "secret-for-carol", &"the launch code").await.map_err(|e| e.to_string())?;
            if let Ok(v) = r2.until_type("direct").await {
                leak = v["data"].to_string();
            }
        }
        expect(!impersonated, || format!("the eavesdropper became carol with a replayed hello and received {leak}"))?;
        drop((r1, r2, r3));
        Ok(format!("replay-id ×{}: injected frame, hello while connected, hello once its id aged out of the busy cache, hello after carol left; nobody displaced or impersonated", c.reason("replay-id")))
    }
    .await;
    a.finish(NAME, counted).await
}

/// mallory learns the id of carol's call to bob (a tap on carol's link) and answers it
/// first with a forged `rpc.response`: the hub stamps it `from: mallory`, carol's client
/// refuses it (`rpc-response-mismatch`) and still gets bob's real answer.
pub async fn forged_rpc_response() -> Report {
    const NAME: &str = "forged rpc response";
    let a = arena!(NAME, KeyMode::Shared, hub_options(KeyMode::Shared));
    let counted = async {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let g = gate.clone();
        a.bob.handle("hold", move |_ctx, v: Json| {
            let g = g.clone();
            async move {
                let _ = g.acquire().await.map(|p| p.forget());
                Ok::<_, RpcHandlerError>(json!({ "real": v }))
            }
        });
        let tap = Tap::start(a.addr()).await?;
        let carol = legit_options(KeyMode::Shared, "carol")
            .connect(format!("ws://{}/", tap.addr))
            .map_err(|e| e.to_string())?;
        within("carol ready", carol.ready()).await?.map_err(|e| e.to_string())?;
        wait_for_peer(&carol, "bob").await?;
        let mut carol_events = carol.events();
        let call = {
            let carol = carol.clone();
            tokio::spawn(async move { carol.rpc::<_, Json>("bob", "hold", &7).into_future().await })
        };
        // The request passes the tap on its way to the hub: an eavesdropper's view.
        let request = tap.wait_first("rpc.request").await?;
        let id = serde_json::from_str::<Json>(&request).map_err(|e| e.to_string())?["id"].as_str().unwrap_or_default().to_owned();
        let key = KeyMode::Shared.key("mallory");
        let mut m = a.attacker().await?;
        m.authenticate(&key, "mallory").await?;
        for from in ["bob", "server"] {
            m.send_text(envelope_at(&key, &id, now_ms() as f64, "rpc.response", Some(from), Some("carol"), Some(json!({"ok": true, "result": "forged"})))).await?;
        }
        let refused = within("carol refuses the forgeries", async {
            let mut n = 0;
            while let Some(ev) = carol_events.next().await {
                if let Event::Link(ClientEvent::ProtocolError { reason, .. }) = ev
                    && reason.as_str() == "rpc-response-mismatch"
                {
                    n += 1;
                    if n == 2 {
                        return Ok(n);
                    }
                }
            }
            Err("carol's events ended".to_owned())
        })
        .await??;
        // And a forged cancel: bob must not drop carol's call for mallory's say-so.
        m.send_text(envelope(&key, "rpc.cancel", Some("carol"), Some("bob"), Some(json!({ "id": id })))).await?;
        a.tally.wait_for("the cancel handled", |c| c.cancelled.iter().any(|(from, _)| from == "mallory")).await?;
        gate.add_permits(1);
        let got = within("carol's call", call).await?.map_err(|e| e.to_string())?.map_err(|e| format!("carol's call: {} ({e})", e.code()))?;
        expect(got == json!({"real": 7}), || format!("carol's call returned {got}"))?;
        let _ = within("carol stop", carol.stop()).await;
        Ok(format!("2 forged responses (claiming bob, server) stamped from=mallory, rpc-response-mismatch ×{refused} at carol; a forged rpc.cancel ignored by bob; the real answer arrived"))
    }
    .await;
    a.finish(NAME, counted).await
}

/// An unauthenticated socket streams large frames that are valid JSON (expensive to
/// parse) faster than the hub can handle them. Reading must slow down to the hub's
/// pace (TCP backpressure, as with the reference's inline `JSON.parse`) instead of
/// queueing the frames in memory; legitimate traffic keeps flowing meanwhile.
pub async fn expensive_frame_flood() -> Report {
    const NAME: &str = "expensive frame flood";
    const FRAME: usize = 250 * 1024;
    const PER_SOCKET: usize = 120;
    const SOCKETS: usize = 2;
    let hub = hub_options(KeyMode::Shared)
        .max_message_bytes(FRAME + 1024)
        .hello_timeout(Duration::from_secs(60));
    let a = arena!(NAME, KeyMode::Shared, hub);
    let counted = async {
        let frame = format!("{{\"id\":\"x\",\"type\":\"noise\",\"p\":\"{}\"}}", "a".repeat(FRAME - 64));
        let before = rss_bytes();
        let mut peak = 0;
        let mut socks = Vec::new();
        for _ in 0..SOCKETS {
            socks.push(a.attacker().await?);
        }
        for i in 0..PER_SOCKET {
            for s in socks.iter_mut() {
                s.send_text(frame.clone()).await?;
            }
            if i % 10 == 0 {
                peak = peak.max(rss_bytes().saturating_sub(before));
            }
        }
        let sent = (SOCKETS * PER_SOCKET) as u64;
        let c = a.tally.wait_for("every frame handled", |c| c.reason("pre-hello-message") >= sent).await?;
        peak = peak.max(rss_bytes().saturating_sub(before));
        drop(socks);
        let sent_bytes = sent as usize * FRAME;
        expect(peak < (sent_bytes / 2) as u64, || {
            format!("rss peaked at +{} MiB while {} MiB of frames were sent: the hub queued them instead of reading slower", peak >> 20, sent_bytes >> 20)
        })?;
        Ok(format!(
            "pre-hello-message ×{}; {} MiB streamed by {SOCKETS} unauthenticated sockets, rss peak +{} MiB",
            c.reason("pre-hello-message"),
            sent_bytes >> 20,
            peak >> 20
        ))
    }
    .await;
    a.finish(NAME, counted).await
}
