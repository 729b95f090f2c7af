//! The hello handshake (PROTOCOL.md §5): sanitising, key selection, verification,
//! displacement of the kind's previous socket, then `hello.ack` → `peers.update` →
//! `status.snapshot`.

use std::sync::Arc;

use super::conn::Phase;
use super::keys::KeyFor;
use super::{ConnId, HubEvent, HubState, KeyRequestId, Output};
use crate::wire::message::{HelloAck, HelloInfo, Message, StatusSnapshot, types};
use crate::wire::validate::{BadHello, sanitize_hello};
use crate::wire::{DropReason, Frame, JsString, Key};

/// Most key lookups one pending socket may have in flight; more hellos are refused
/// as concurrent (the reference does not bound them).
const MAX_HELLOS_IN_FLIGHT: usize = 4;

/// Close reason sent to a displaced socket.
pub(super) const REPLACED: &str = "replaced by new connection";

impl HubState {
    /// A `hello` on a pending socket.
    pub(super) fn on_hello(&mut self, conn: ConnId, frame: Frame) {
        let hello = match sanitize_hello(frame.data()) {
            Ok(h) => h,
            Err(BadHello(bad)) => {
                self.protocol_error(
                    conn,
                    None,
                    DropReason::BadHello,
                    Some(types::HELLO),
                    Some(bad.as_str()),
                );
                self.close(conn, 1008, bad.as_str());
                return;
            }
        };
        match self.keys.key_for(&hello.kind) {
            KeyFor::Found(key) => self.finish_hello(conn, frame, hello, *key),
            KeyFor::Unknown => self.protocol_error(
                conn,
                Some(&hello.kind),
                DropReason::UnknownKind,
                Some(types::HELLO),
                None,
            ),
            KeyFor::Ask => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if c.hellos_in_flight >= MAX_HELLOS_IN_FLIGHT {
                    self.protocol_error(
                        conn,
                        Some(&hello.kind),
                        DropReason::DuplicateHello,
                        Some(types::HELLO),
                        Some("concurrent-hello"),
                    );
                    return;
                }
                let kind = hello.kind.clone();
                let Some(request) = self.keys.park(conn, frame, hello) else {
                    self.protocol_error(
                        conn,
                        Some(&kind),
                        DropReason::HelloBacklog,
                        Some(types::HELLO),
                        None,
                    );
                    return;
                };
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.hellos_in_flight += 1;
                }
                self.outputs.push_back(Output::ResolveKey { request, kind });
            }
        }
    }

    pub(super) fn on_key_resolved(&mut self, request: KeyRequestId, secret: Option<String>) {
        let Some((waiting, key)) = self.keys.resolved(request, secret) else {
            return;
        };
        let conn = waiting.conn;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.hellos_in_flight = c.hellos_in_flight.saturating_sub(1);
        }
        match key {
            Some(key) => self.finish_hello(conn, waiting.frame, waiting.hello, key),
            None => self.protocol_error(
                conn,
                Some(&waiting.hello.kind),
                DropReason::UnknownKind,
                Some(types::HELLO),
                None,
            ),
        }
    }

    /// Verifies a hello with its kind's key and, if the socket is still pending,
    /// accepts it. A failure is a silent drop: the socket may try again.
    fn finish_hello(&mut self, conn: ConnId, frame: Frame, hello: HelloInfo, key: Key) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        match c.phase {
            Phase::Pending { .. } => {}
            Phase::Peer { .. } => {
                // Another hello on this socket finished first.
                self.protocol_error(
                    conn,
                    Some(&hello.kind),
                    DropReason::DuplicateHello,
                    Some(types::HELLO),
                    Some("concurrent-hello"),
                );
                return;
            }
            Phase::Closing { .. } => return,
        }
        let checked = frame
            .verify(&key, &mut self.scratch)
            .and_then(|()| {
                self.replay.check(
                    &hello.kind,
                    frame.id(),
                    frame.ts(),
                    frame.msg_type(),
                    self.now.ms(),
                )
            })
            .and_then(|()| {
                // One table for all kinds: kinds never contain the separator.
                let id = JsString::joined(hello.kind.as_bytes(), b'\0', frame.id());
                self.hellos
                    .check("", &id, frame.ts(), frame.msg_type(), self.now.ms())
            });
        if let Err(reason) = checked {
            self.protocol_error(conn, Some(&hello.kind), reason, Some(types::HELLO), None);
            return;
        }
        if self.frame_events && self.config.message_events {
            self.emit(HubEvent::Message {
                conn,
                from: hello.kind.clone(),
                msg_type: types::HELLO.to_owned(),
                id: frame.id().clone(),
            });
        }
        self.accept(conn, hello, key);
    }

    /// Registers the socket as its kind's peer, displacing any older socket.
    fn accept(&mut self, conn: ConnId, hello: HelloInfo, key: Key) {
        let at = self.now.ms();
        let kind = hello.kind.clone();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Phase::Pending { seq, .. } = c.phase {
            self.pending.remove(&seq);
        }
        c.phase = Phase::Peer {
            kind: Arc::from(kind.as_str()),
        };
        c.key = Some(key);
        c.alive = true;
        let prev = self.peers.insert(&kind, conn, hello.clone(), at);
        let replaced = prev.is_some();
        if let Some(prev) = prev {
            // The table already points at the new socket, so closing the old one
            // does not announce a disconnect.
            self.close(prev.conn, 4000, REPLACED);
            self.emit(HubEvent::PeerReplaced {
                kind: kind.clone(),
                old_conn: prev.conn,
                new_conn: conn,
                prev_hello: prev.hello,
                new_hello: hello.clone(),
            });
        }

        let features: Vec<&str> = self.config.features.iter().map(String::as_str).collect();
        let ack = Message::HelloAck(HelloAck::new(at, &kind, &features));
        let mut data = std::mem::take(&mut self.data_buf);
        data.clear();
        ack.write_data(&mut data);
        self.send(
            conn,
            types::HELLO_ACK,
            None,
            Some("server"),
            Some(&data),
            None,
            None,
        );
        self.data_buf = data;

        self.broadcast_peers();

        let snapshot = Message::StatusSnapshot(StatusSnapshot::new(self.status.iter()));
        let mut data = std::mem::take(&mut self.data_buf);
        data.clear();
        snapshot.write_data(&mut data);
        self.send(
            conn,
            types::STATUS_SNAPSHOT,
            None,
            Some("server"),
            Some(&data),
            None,
            None,
        );
        self.data_buf = data;

        self.emit(HubEvent::PeerConnected {
            conn,
            kind,
            hello,
            connected_at: at,
            replaced,
        });
    }
}
