//! How much a hub socket gathers before writing. tungstenite's write buffer holds
//! frames until they pass its `write_buffer_size` and never shrinks, so the most it
//! ever held at once is memory the socket keeps for its life.

use std::io::{self, Read, Write};

use link_driver::ws::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use link_driver::ws::tungstenite::{Message, Utf8Bytes};
use link_driver::ws::{HUB_WRITE_BUFFER_BYTES, hub_ws_config};

/// A socket that takes every byte written to it, noting the largest single write.
#[derive(Default)]
struct Sink {
    written: usize,
    largest: usize,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        self.largest = self.largest.max(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

/// The most bytes a socket with `config` held at once while writing a burst of 200
/// frames of 1 KB queued for it together (as a connection task feeds its backlog).
fn largest_write_in_a_burst(config: WebSocketConfig) -> usize {
    let frame: Utf8Bytes = "x".repeat(1000).into();
    let mut ws = WebSocket::from_raw_socket(Sink::default(), Role::Server, Some(config));
    for _ in 0..200 {
        ws.write(Message::Text(frame.clone()))
            .expect("the sink takes every frame");
    }
    ws.flush().expect("flushed");
    let sink = ws.get_ref();
    assert!(sink.written > 200 * 1000, "every frame was written");
    sink.largest
}

#[test]
fn a_hub_socket_gathers_at_most_its_write_buffer_and_one_frame() {
    let default = largest_write_in_a_burst(WebSocketConfig::default());
    let hub = largest_write_in_a_burst(hub_ws_config(1 << 20));
    assert!(
        default > 128 * 1024,
        "tungstenite's default held {default} bytes"
    );
    assert!(
        hub > HUB_WRITE_BUFFER_BYTES && hub <= HUB_WRITE_BUFFER_BYTES + 1010,
        "the hub's config held {hub} bytes"
    );
}
