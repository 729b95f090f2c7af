//! Transport details against a raw WebSocket: binary frames are read as text (like
//! the reference), and the hub answers pings.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use link_tokio::HubOptions;
use link_tokio::core::wire::message::{Hello, HelloInfo, Message};
use link_tokio::core::wire::{HashAlgo, Header, Key, encode_message};
use tokio_tungstenite::tungstenite::Message as Ws;

fn signed_hello(kind: &str) -> Vec<u8> {
    let info = HelloInfo {
        kind: kind.to_owned(),
        name: kind.into(),
        pid: Some(1.0),
        started_at: Some(1.0),
    };
    let header = Header {
        id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
        ts: link_driver_now(),
        from: Some(kind.into()),
        to: None,
    };
    let mut out = Vec::new();
    encode_message(
        &Key::new(SECRET, HashAlgo::Sha256),
        &header,
        &Message::Hello(Hello::new(&info)),
        &mut out,
    );
    out
}

fn link_driver_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

#[tokio::test]
async fn binary_frames_are_treated_as_text_and_pings_are_answered() {
    let server = server(HubOptions::new(SECRET)).await;
    let (mut ws, _) = within(
        "raw connect",
        tokio_tungstenite::connect_async(server.url()),
    )
    .await
    .expect("raw websocket");
    ws.send(Ws::Binary(signed_hello("raw").into()))
        .await
        .expect("send hello");
    ws.send(Ws::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    let (mut ack, mut pong) = (false, false);
    within("hello.ack and pong", async {
        while !(ack && pong) {
            match ws.next().await {
                Some(Ok(Ws::Text(t))) => {
                    // Replies are always text, never binary.
                    if t.as_str().contains(r#""type":"hello.ack""#) {
                        ack = true;
                    }
                }
                Some(Ok(Ws::Pong(p))) => {
                    assert_eq!(&p[..], b"are you there");
                    pong = true;
                }
                Some(Ok(Ws::Binary(_))) => panic!("the hub sent a binary frame"),
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await;
    let peers = server.hub().state().await.expect("state").peers;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].kind, "raw");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn the_hub_terminates_a_peer_that_stops_answering_pings() {
    let hub = HubOptions::new(SECRET).keepalive_interval(std::time::Duration::from_millis(100));
    let server = server(hub).await;
    let mut hub_events = server.hub().events();
    // A well-behaved client, there all along: its WebSocket answers every ping.
    let lively = ready_client(&server, options("lively")).await;
    let mut lively_events = lively.events();

    let (mut ws, _) = within(
        "raw connect",
        tokio_tungstenite::connect_async(server.url()),
    )
    .await
    .expect("raw websocket");
    ws.send(Ws::Text(
        String::from_utf8(signed_hello("mute"))
            .expect("utf8")
            .into(),
    ))
    .await
    .expect("send hello");
    // From now on the raw socket is never read, so no pong ever goes back.
    let code = next_hub_event(&mut hub_events, "keepalive termination", |e| match e {
        link_tokio::HubEvent::PeerDisconnected { kind, code, .. } if kind == "mute" => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, Some(1006));
    next_link_event(
        &mut lively_events,
        "mute leaves the peer list",
        |e| match e {
            link_tokio::ClientEvent::PeerDisconnected(p) if p.kind == "mute" => Some(()),
            _ => None,
        },
    )
    .await;
    // The live client went through the same ping rounds and is still there.
    assert!(lively.is_ready());
    let peers = server.hub().state().await.expect("state").peers;
    assert_eq!(
        peers.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>(),
        ["lively"]
    );
    drop(ws);
    lively.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

#[tokio::test]
async fn a_client_whose_hub_stops_answering_pings_reconnects() {
    use link_tokio::core::wire::message::HelloAck;
    // A bare-bones "hub": accepts, acknowledges the hello, then never reads again (so
    // it never answers a ping).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    let fake_hub = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            let mut ws = tokio_tungstenite::accept_async(stream)
                .await
                .expect("upgrade");
            let _hello = ws.next().await;
            let header = Header {
                id: "7c9e6679-7425-40de-944b-e07fc1f90ae7".into(),
                ts: link_driver_now(),
                from: Some("server".into()),
                to: Some("pinger".into()),
            };
            let mut ack = Vec::new();
            encode_message(
                &Key::new(SECRET, HashAlgo::Sha256),
                &header,
                &Message::HelloAck(HelloAck::new(
                    link_driver_now(),
                    "pinger",
                    &["topics", "direct"],
                )),
                &mut ack,
            );
            ws.send(Ws::Text(String::from_utf8(ack).expect("utf8").into()))
                .await
                .expect("ack");
            let _ = accepted_tx.send(());
            sockets.push(ws);
        }
    });
    let client = options("pinger")
        .keepalive_interval(std::time::Duration::from_millis(100))
        .connect(format!("ws://{addr}"))
        .expect("starts");
    let mut events = client.events();
    within("first accept", accepted.recv()).await;
    within("ready", client.ready()).await.expect("ready");
    next_link_event(&mut events, "keepalive timeout", |e| match e {
        link_tokio::ClientEvent::ProtocolError { reason, .. }
            if reason.as_str() == "keepalive-timeout" =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    next_link_event(&mut events, "disconnect", |e| match e {
        link_tokio::ClientEvent::Disconnected(d) if d.will_reconnect => Some(()),
        _ => None,
    })
    .await;
    // It comes back by itself.
    within("second accept", accepted.recv()).await;
    client.stop_now().await.expect("stop");
    fake_hub.abort();
}
