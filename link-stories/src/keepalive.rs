//! Keepalive against raw peers (tungstenite's blocking sockets, on threads of their
//! own): the hub drops a peer that stops answering pings while a live client stays,
//! and a client whose hub stops answering pings reconnects.

use crate::transport::signed_hello;
use crate::{Kit, SECRET, WAIT};
use link_driver::hub::HubOptions;
use link_driver::server::Serve;
use link_driver::ws::tungstenite::{self, Message as Ws};
use link_sansio::client::ClientEvent;
use link_sansio::hub::HubEvent;
use link_sansio::wire::message::{HelloAck, Message};
use link_sansio::wire::{HashAlgo, Header, Key, encode_message};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

type RawSocket = tungstenite::WebSocket<TcpStream>;

fn text(bytes: Vec<u8>) -> Ws {
    Ws::Text(String::from_utf8(bytes).unwrap_or_default().into())
}

/// Connect to `url` and say hello as `kind`; the socket is never read afterwards, so
/// no ping is ever answered.
fn mute_peer(url: &str, kind: &str) -> Result<RawSocket, String> {
    let addr = url.trim_start_matches("ws://");
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client(url, tcp).map_err(|e| e.to_string())?;
    ws.send(text(signed_hello(kind)))
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

pub async fn the_hub_terminates_a_peer_that_stops_answering_pings<R: Serve>() {
    let k = Kit::<R>::default();
    let hub = HubOptions::new(SECRET).keepalive_interval(Duration::from_millis(100));
    let server = k.server(hub).await;
    let mut hub_events = server.hub().events();
    // A well-behaved client, there all along: its WebSocket answers every ping.
    let lively = k.ready_client(&server, k.options("lively")).await;
    let mut lively_events = lively.events();

    let (connected, mute_up) = tokio::sync::oneshot::channel();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let url = server.url();
    std::thread::spawn(move || match mute_peer(&url, "mute") {
        Ok(_socket) => {
            let _ = connected.send(Ok(()));
            let _ = held.recv_timeout(WAIT);
        }
        Err(e) => {
            let _ = connected.send(Err(e));
        }
    });
    k.within("mute peer", mute_up)
        .await
        .expect("mute thread")
        .expect("mute peer connects");
    let code = k
        .next_hub_event(&mut hub_events, "keepalive termination", |e| match e {
            HubEvent::PeerDisconnected { kind, code, .. } if kind == "mute" => Some(*code),
            _ => None,
        })
        .await;
    assert_eq!(code, Some(1006));
    k.next_link_event(
        &mut lively_events,
        "mute leaves the peer list",
        |e| match e {
            ClientEvent::PeerDisconnected(p) if p.kind == "mute" => Some(()),
            _ => None,
        },
    )
    .await;
    // The live client went through the same ping rounds and is still there.
    assert!(lively.is_ready());
    let peers = server.hub().state().await.expect("state").peers;
    let kinds: Vec<&str> = peers.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["lively"]);
    let _ = release.send(());
    lively.stop().await.expect("stop");
    server.stop().await.expect("server stops");
}

/// A bare-bones "hub" for two connections: accept, read the hello, answer with a
/// signed `hello.ack`, then never read again (so no ping is answered).
fn silent_hub(
    listener: TcpListener,
    accepted: tokio::sync::mpsc::UnboundedSender<()>,
    release: std::sync::mpsc::Receiver<()>,
) -> Result<(), String> {
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut ws = tungstenite::accept(stream).map_err(|e| e.to_string())?;
        let _hello = ws.read().map_err(|e| e.to_string())?;
        let now = link_driver::runtime::wall_ms() as f64;
        let header = Header {
            id: "7c9e6679-7425-40de-944b-e07fc1f90ae7".into(),
            ts: now,
            from: Some("server".into()),
            to: Some("pinger".into()),
        };
        let mut ack = Vec::new();
        encode_message(
            &Key::new(SECRET, HashAlgo::Sha256),
            &header,
            &Message::HelloAck(HelloAck::new(now, "pinger", &["topics", "direct"])),
            &mut ack,
        );
        ws.send(text(ack)).map_err(|e| e.to_string())?;
        let _ = accepted.send(());
        sockets.push(ws);
    }
    let _ = release.recv_timeout(WAIT);
    Ok(())
}

pub async fn a_client_whose_hub_stops_answering_pings_reconnects<R: Serve>() {
    let k = Kit::<R>::default();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    let (release, held) = std::sync::mpsc::channel();
    std::thread::spawn(move || silent_hub(listener, accepted_tx, held));
    let client = k
        .options("pinger")
        .keepalive_interval(Duration::from_millis(100))
        .connect(format!("ws://{addr}"))
        .expect("starts");
    let mut events = client.events();
    k.within("first accept", accepted.recv())
        .await
        .expect("accepted");
    k.within("ready", client.ready()).await.expect("ready");
    k.next_link_event(&mut events, "keepalive timeout", |e| match e {
        ClientEvent::ProtocolError { reason, .. } if reason.as_str() == "keepalive-timeout" => {
            Some(())
        }
        _ => None,
    })
    .await;
    k.next_link_event(&mut events, "disconnect", |e| match e {
        ClientEvent::Disconnected(d) if d.will_reconnect => Some(()),
        _ => None,
    })
    .await;
    // It comes back by itself.
    k.within("second accept", accepted.recv())
        .await
        .expect("accepted again");
    client.stop_now().await.expect("stop");
    let _ = release.send(());
}
