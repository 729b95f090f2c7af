//! Transport details against a raw WebSocket (tungstenite's blocking client on a
//! thread of its own): binary frames are read as text, like the reference, and the
//! hub answers pings.

use crate::{Kit, SECRET};
use link_driver::hub::HubOptions;
use link_driver::server::Serve;
use link_driver::ws::tungstenite::{self, Message as Ws};
use link_sansio::wire::message::{Hello, HelloInfo, Message};
use link_sansio::wire::{HashAlgo, Header, Key, encode_message};

/// A hello from `kind`, signed with the stories' shared secret, as a raw peer sends it.
pub fn signed_hello(kind: &str) -> Vec<u8> {
    let info = HelloInfo {
        kind: kind.to_owned(),
        name: kind.into(),
        pid: Some(1.0),
        started_at: Some(1.0),
    };
    let header = Header {
        id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
        ts: link_driver::runtime::wall_ms() as f64,
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

/// Say hello in a binary frame and ping; report once both the `hello.ack` (in a text
/// frame) and the pong came back, then hold the socket open until `release`.
fn raw_session(
    url: String,
    report: tokio::sync::oneshot::Sender<Result<(), String>>,
    release: std::sync::mpsc::Receiver<()>,
) {
    match hello_and_ping(&url) {
        Ok(_socket) => {
            let _ = report.send(Ok(()));
            // `_socket` stays open until the story has looked at the hub.
            let _ = release.recv_timeout(crate::WAIT);
        }
        Err(e) => {
            let _ = report.send(Err(e));
        }
    }
}

type RawSocket = tungstenite::WebSocket<std::net::TcpStream>;

fn hello_and_ping(url: &str) -> Result<RawSocket, String> {
    let addr = url.trim_start_matches("ws://").to_owned();
    let tcp = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(crate::WAIT))
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client(url, tcp).map_err(|e| e.to_string())?;
    ws.send(Ws::Binary(signed_hello("raw").into()))
        .map_err(|e| e.to_string())?;
    ws.send(Ws::Ping(b"are you there".to_vec().into()))
        .map_err(|e| e.to_string())?;
    let (mut ack, mut pong) = (false, false);
    while !(ack && pong) {
        match ws.read().map_err(|e| e.to_string())? {
            // Replies are always text, never binary.
            Ws::Text(t) => ack |= t.as_str().contains(r#""type":"hello.ack""#),
            Ws::Pong(p) => {
                if &p[..] != b"are you there" {
                    return Err(format!("pong payload {p:?}"));
                }
                pong = true;
            }
            Ws::Binary(_) => return Err("the hub sent a binary frame".into()),
            _ => {}
        }
    }
    Ok(ws)
}

pub async fn binary_frames_are_treated_as_text_and_pings_are_answered<R: Serve>() {
    let k = Kit::<R>::default();
    let server = k.server(HubOptions::new(SECRET)).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (release, held) = std::sync::mpsc::channel();
    let url = server.url();
    std::thread::spawn(move || raw_session(url, tx, held));
    k.within("hello.ack and pong", rx)
        .await
        .expect("raw session thread")
        .expect("raw session");
    let peers = server.hub().state().await.expect("state").peers;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].kind, "raw");
    let _ = release.send(());
    server.stop().await.expect("server stops");
}
