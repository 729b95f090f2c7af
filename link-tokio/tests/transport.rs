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
