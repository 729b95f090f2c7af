//! Keepalive against raw tokio-tungstenite sockets: the hub drops a peer that stops
//! answering pings, and a client whose hub stops answering reconnects.

use futures_util::{SinkExt, StreamExt};
use link_stories::transport::signed_hello;
use link_stories::{Kit, SECRET};

fn wall_ms() -> f64 {
    link_driver::runtime::wall_ms() as f64
}
use link_tokio::core::wire::message::Message;
use link_tokio::core::wire::{HashAlgo, Header, Key, encode_message};
use link_tokio::{HubOptions, TokioRuntime};
use tokio_tungstenite::tungstenite::Message as Ws;

#[tokio::test]
async fn the_hub_terminates_a_peer_that_stops_answering_pings() {
    let k = Kit::<TokioRuntime>::default();
    let hub = HubOptions::new(SECRET).keepalive_interval(std::time::Duration::from_millis(100));
    let server = k.server(hub).await;
    let mut hub_events = server.hub().events();
    // A well-behaved client, there all along: its WebSocket answers every ping.
    let lively = k.ready_client(&server, k.options("lively")).await;
    let mut lively_events = lively.events();

    let (mut ws, _) = k
        .within(
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
    let code = k
        .next_hub_event(&mut hub_events, "keepalive termination", |e| match e {
            link_tokio::HubEvent::PeerDisconnected { kind, code, .. } if kind == "mute" => {
                Some(*code)
            }
            _ => None,
        })
        .await;
    assert_eq!(code, Some(1006));
    k.next_link_event(
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
    let k = Kit::<TokioRuntime>::default();
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
                ts: wall_ms(),
                from: Some("server".into()),
                to: Some("pinger".into()),
            };
            let mut ack = Vec::new();
            encode_message(
                &Key::new(SECRET, HashAlgo::Sha256),
                &header,
                &Message::HelloAck(HelloAck::new(wall_ms(), "pinger", &["topics", "direct"])),
                &mut ack,
            );
            ws.send(Ws::Text(String::from_utf8(ack).expect("utf8").into()))
                .await
                .expect("ack");
            let _ = accepted_tx.send(());
            sockets.push(ws);
        }
    });
    let client = k
        .options("pinger")
        .keepalive_interval(std::time::Duration::from_millis(100))
        .connect(format!("ws://{addr}"))
        .expect("starts");
    let mut events = client.events();
    k.within("first accept", accepted.recv()).await;
    k.within("ready", client.ready()).await.expect("ready");
    k.next_link_event(&mut events, "keepalive timeout", |e| match e {
        link_tokio::ClientEvent::ProtocolError { reason, .. }
            if reason.as_str() == "keepalive-timeout" =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    k.next_link_event(&mut events, "disconnect", |e| match e {
        link_tokio::ClientEvent::Disconnected(d) if d.will_reconnect => Some(()),
        _ => None,
    })
    .await;
    // It comes back by itself.
    k.within("second accept", accepted.recv()).await;
    client.stop_now().await.expect("stop");
    fake_hub.abort();
}
