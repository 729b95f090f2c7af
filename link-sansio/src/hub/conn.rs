//! The socket table and the peer table: a socket's life (pending → peer → closing),
//! one peer per kind in registration order, keepalive, hello deadlines, closes, drain,
//! and the per-frame dispatch of authenticated traffic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::acl::Lane;
use super::outbox::{Outbox, shared_head};
use super::{ConnId, HubEvent, HubState, Output, PeerTimeoutReason};
use crate::seeded::SeededState;
use crate::wire::message::{HelloInfo, Message, PeerEntry, PeersUpdate, types};
use crate::wire::{DropReason, Frame, Key};

/// The reference terminates a socket this long after closing it for a hello timeout.
pub(super) const TERMINATE_AFTER: Duration = Duration::from_millis(500);

/// A socket the hub closed is dropped this long after the close frame if the peer has
/// not answered it (the reference's `ws` library: `closeTimeout`). Without it, a peer
/// that ignores close frames would keep a socket the hub is done with forever.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a socket is in its life.
#[derive(Debug)]
pub(super) enum Phase {
    /// Waiting for an accepted hello.
    Pending {
        /// Arrival order (key in `HubState::pending`).
        seq: u64,
        /// When it was accepted.
        opened_at: Instant,
    },
    /// Authenticated as `kind`.
    Peer {
        /// The kind (shared cheaply with every message it sends).
        kind: Arc<str>,
    },
    /// The hub closed it (bad hello, displaced, timeout, drain); frames are stale.
    Closing {
        /// When it is dropped if the close handshake has not ended (its entry in
        /// `HubState::terminations`).
        terminate_at: Instant,
    },
}

/// One socket.
#[derive(Debug)]
pub(super) struct Conn {
    pub remote: Option<SocketAddr>,
    pub phase: Phase,
    /// Fixed by the accepted hello: verifies everything received, signs everything sent.
    pub key: Option<Key>,
    pub outbox: Outbox,
    /// Answered the last ping.
    pub alive: bool,
    /// Gated publish/subscribe/direct waiting for ACL decisions, in arrival order.
    pub lane: Lane,
    /// Hello key lookups in flight for this (pending) socket.
    pub hellos_in_flight: usize,
}

impl Conn {
    pub fn kind(&self) -> Option<&Arc<str>> {
        match &self.phase {
            Phase::Peer { kind } => Some(kind),
            _ => None,
        }
    }
}

/// A registered peer.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub conn: ConnId,
    pub hello: HelloInfo,
    pub connected_at: f64,
    /// Registration order; a replacement keeps its predecessor's place, as a
    /// JavaScript `Map.set` on an existing key does.
    seq: u64,
}

/// One socket per kind.
#[derive(Debug)]
pub(super) struct Peers {
    map: HashMap<String, Peer, SeededState>,
    next_seq: u64,
}

impl Peers {
    pub fn new(hasher: SeededState) -> Self {
        Self {
            map: HashMap::with_hasher(hasher),
            next_seq: 0,
        }
    }

    pub fn get(&self, kind: &str) -> Option<&Peer> {
        self.map.get(kind)
    }

    /// Registers `kind` on `conn`, returning the peer it replaces.
    pub fn insert(
        &mut self,
        kind: &str,
        conn: ConnId,
        hello: HelloInfo,
        connected_at: f64,
    ) -> Option<Peer> {
        let seq = match self.map.get(kind) {
            Some(p) => p.seq,
            None => {
                self.next_seq += 1;
                self.next_seq
            }
        };
        self.map.insert(
            kind.to_owned(),
            Peer {
                conn,
                hello,
                connected_at,
                seq,
            },
        )
    }

    pub fn remove(&mut self, kind: &str) -> Option<Peer> {
        self.map.remove(kind)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The peers in registration order, as `peers.update` lists them.
    pub fn entries(&self) -> Vec<PeerEntry> {
        let mut list: Vec<(&String, &Peer)> = self.map.iter().collect();
        list.sort_by_key(|(_, p)| p.seq);
        list.into_iter()
            .map(|(kind, p)| PeerEntry {
                kind: kind.clone(),
                hello: p.hello.clone(),
                connected_at: p.connected_at,
                connected: true,
            })
            .collect()
    }

    /// Sockets of the peers, in registration order.
    pub fn conns(&self) -> Vec<ConnId> {
        let mut list: Vec<&Peer> = self.map.values().collect();
        list.sort_by_key(|p| p.seq);
        list.into_iter().map(|p| p.conn).collect()
    }
}

impl HubState {
    pub(super) fn on_opened(&mut self, conn: ConnId, remote: Option<SocketAddr>) {
        if self.conns.contains_key(&conn) {
            return;
        }
        let seq = self.seq();
        self.conns.insert(
            conn,
            Conn {
                remote,
                phase: Phase::Pending {
                    seq,
                    opened_at: self.now.instant,
                },
                key: None,
                outbox: Outbox::default(),
                alive: true,
                lane: Lane::default(),
                hellos_in_flight: 0,
            },
        );
        if self.draining {
            self.close(conn, 1001, "hub stopped");
            self.terminate_soon(conn);
            return;
        }
        self.pending.insert(seq, conn);
        while self.pending.len() > self.config.max_pending_sockets.max(1) {
            let Some((_, oldest)) = self.pending.pop_first() else {
                break;
            };
            self.reap_pending(oldest, PeerTimeoutReason::PendingCap);
        }
    }

    /// Closes a pending socket for a hello timeout or the pending cap.
    fn reap_pending(&mut self, conn: ConnId, reason: PeerTimeoutReason) {
        let remote = self.conns.get(&conn).and_then(|c| c.remote);
        let text = match reason {
            PeerTimeoutReason::HelloTimeout => "hello timeout",
            PeerTimeoutReason::PendingCap => "pending cap",
        };
        self.close(conn, 1008, text);
        if reason == PeerTimeoutReason::HelloTimeout {
            self.terminate_soon(conn);
        }
        self.emit(HubEvent::PeerTimeout {
            conn,
            remote,
            hello_timeout: self.config.hello_timeout,
            reason,
        });
    }

    /// Sends a close frame and forgets everything the socket held; the socket is
    /// dropped [`CLOSE_TIMEOUT`] later if the peer never answers. A peer's departure
    /// is announced like a disconnect only when it was still the current peer.
    pub(super) fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if matches!(c.phase, Phase::Closing { .. }) {
            return;
        }
        let terminate_at = self.now.instant + CLOSE_TIMEOUT;
        let phase = std::mem::replace(&mut c.phase, Phase::Closing { terminate_at });
        self.terminations.insert((terminate_at, conn));
        c.outbox.clear();
        c.lane.clear();
        self.outputs.push_back(Output::Close {
            conn,
            code,
            reason: reason.to_owned(),
        });
        match phase {
            Phase::Pending { seq, .. } => {
                self.pending.remove(&seq);
            }
            Phase::Peer { kind } => self.remove_peer(conn, &kind, Some(code), reason),
            Phase::Closing { .. } => {}
        }
    }

    /// Moves a closed socket's drop forward to [`TERMINATE_AFTER`] from now.
    fn terminate_soon(&mut self, conn: ConnId) {
        let at = self.now.instant + TERMINATE_AFTER;
        if let Some(c) = self.conns.get_mut(&conn)
            && let Phase::Closing { terminate_at } = &mut c.phase
            && at < *terminate_at
        {
            self.terminations.remove(&(*terminate_at, conn));
            *terminate_at = at;
            self.terminations.insert((at, conn));
        }
    }

    /// Drops a socket without a close frame.
    fn terminate(&mut self, conn: ConnId, code: Option<u16>) {
        self.outputs.push_back(Output::Terminate { conn });
        self.keys.forget_conn(conn);
        if let Some(c) = self.conns.remove(&conn) {
            match c.phase {
                Phase::Pending { seq, .. } => {
                    self.pending.remove(&seq);
                }
                Phase::Peer { kind } => self.remove_peer(conn, &kind, code, ""),
                Phase::Closing { terminate_at } => {
                    self.terminations.remove(&(terminate_at, conn));
                }
            }
        }
    }

    pub(super) fn on_closed(&mut self, conn: ConnId, code: Option<u16>, reason: &str) {
        self.keys.forget_conn(conn);
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match c.phase {
            Phase::Pending { seq, .. } => {
                self.pending.remove(&seq);
            }
            Phase::Peer { kind } => self.remove_peer(conn, &kind, code, reason),
            Phase::Closing { terminate_at } => {
                self.terminations.remove(&(terminate_at, conn));
            }
        }
    }

    /// Whether `conn` is peer `kind`'s socket now: not closed, and not displaced by a
    /// newer socket of the same kind.
    pub(super) fn is_current(&self, conn: ConnId, kind: &str) -> bool {
        self.peers.get(kind).is_some_and(|p| p.conn == conn)
    }

    /// Forgets peer `kind` if `conn` is still its socket: statuses, subscriptions and
    /// replay ids go, everyone else learns from `peers.update`.
    fn remove_peer(&mut self, conn: ConnId, kind: &str, code: Option<u16>, reason: &str) {
        if !self.is_current(conn, kind) {
            return;
        }
        let Some(peer) = self.peers.remove(kind) else {
            return;
        };
        self.status.remove(kind);
        for topic in self.topics.remove_kind(kind) {
            self.emit(HubEvent::TopicUnsubscribe {
                kind: kind.to_owned(),
                topic,
            });
        }
        self.replay.forget(kind);
        if !self.draining {
            self.broadcast_peers();
        }
        self.emit(HubEvent::PeerDisconnected {
            conn,
            kind: kind.to_owned(),
            hello: peer.hello,
            connected_at: peer.connected_at,
            code,
            reason: reason.to_owned(),
        });
    }

    /// Sends the current peer list to every peer.
    pub(super) fn broadcast_peers(&mut self) {
        let update = Message::PeersUpdate(PeersUpdate::new(&self.peers.entries()));
        let mut data = std::mem::take(&mut self.data_buf);
        data.clear();
        update.write_data(&mut data);
        let mut head = shared_head(self.peers.len(), "server", &data);
        for conn in self.peers.conns() {
            self.send(
                conn,
                types::PEERS_UPDATE,
                None,
                Some("server"),
                Some(&data),
                None,
                head.as_mut(),
            );
        }
        self.data_buf = data;
    }

    pub(super) fn on_pong(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.alive = true;
        }
    }

    pub(super) fn on_flushed(&mut self, conn: ConnId, bytes: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.outbox.flushed(bytes);
        }
        self.flush_outbox(conn);
    }

    pub(super) fn oldest_hello_deadline(&self) -> Option<Instant> {
        if self.config.hello_timeout.is_zero() {
            return None;
        }
        let (_, conn) = self.pending.first_key_value()?;
        match self.conns.get(conn)?.phase {
            Phase::Pending { opened_at, .. } => Some(opened_at + self.config.hello_timeout),
            _ => None,
        }
    }

    pub(super) fn on_timers(&mut self) {
        let now = self.now.instant;
        while let Some(deadline) = self.oldest_hello_deadline() {
            if deadline > now {
                break;
            }
            let Some((_, conn)) = self.pending.pop_first() else {
                break;
            };
            self.reap_pending(conn, PeerTimeoutReason::HelloTimeout);
        }
        while let Some(&(at, conn)) = self.terminations.first() {
            if at > now {
                break;
            }
            self.terminations.pop_first();
            if self.conns.contains_key(&conn) {
                self.terminate(conn, None);
            }
        }
        if let Some(at) = self.next_keepalive
            && at <= now
        {
            self.next_keepalive = Some(now + self.config.keepalive_interval);
            self.keepalive();
        }
    }

    /// Pings every peer; a peer that did not answer the previous ping is dropped.
    fn keepalive(&mut self) {
        for conn in self.peers.conns() {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if c.alive {
                c.alive = false;
                self.outputs.push_back(Output::Ping { conn });
            } else {
                self.terminate(conn, Some(1006));
            }
        }
    }

    pub(super) fn on_drain(&mut self) {
        if self.draining {
            return;
        }
        self.draining = true;
        let pending: Vec<ConnId> = self.pending.values().copied().collect();
        for conn in pending {
            self.close(conn, 1001, "hub stopped");
        }
        // The reference's bare `ws.close()` for authenticated sockets: no code.
        for conn in self.peers.conns() {
            self.close(conn, crate::wire::CLOSE_NO_STATUS, "");
        }
        // Sockets whose close handshake does not complete are dropped shortly after.
        let closing: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in closing {
            self.terminate_soon(conn);
        }
    }

    /// Emits `protocol-error`.
    pub(super) fn protocol_error(
        &mut self,
        conn: ConnId,
        kind: Option<&str>,
        reason: DropReason,
        msg_type: Option<&str>,
        detail: Option<&str>,
    ) {
        self.emit(HubEvent::ProtocolError {
            conn,
            kind: kind.map(str::to_owned),
            reason,
            msg_type: msg_type.map(str::to_owned),
            detail: detail.map(str::to_owned),
        });
    }

    /// One frame: parse once, then by socket phase; authenticated frames are verified
    /// with the socket's key, replay-checked and routed by type.
    pub(super) fn on_frame(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let frame = match Frame::parse(bytes, &self.config.limits) {
            Ok(f) => f,
            Err(reason) => {
                let kind = c.kind().cloned();
                self.protocol_error(conn, kind.as_deref(), reason, None, None);
                return;
            }
        };
        let kind = match &c.phase {
            Phase::Closing { .. } => {
                let t = type_name(&frame);
                self.protocol_error(conn, None, DropReason::StaleSocket, t.as_deref(), None);
                return;
            }
            Phase::Pending { .. } => {
                if frame.msg_type().is_some_and(|t| *t == types::HELLO) {
                    self.on_hello(conn, frame);
                } else {
                    let t = type_name(&frame);
                    self.protocol_error(
                        conn,
                        None,
                        DropReason::PreHelloMessage,
                        t.as_deref(),
                        None,
                    );
                }
                return;
            }
            Phase::Peer { kind } => kind.clone(),
        };
        let checked = match &c.key {
            Some(key) => frame.verify_received(bytes, key, &mut self.scratch),
            None => Err(DropReason::BadSignature),
        };
        let checked = checked.and_then(|()| {
            self.replay.check(
                &kind,
                frame.id(),
                frame.ts(),
                frame.msg_type(),
                self.now.ms(),
            )
        });
        if let Err(reason) = checked {
            let t = type_name(&frame);
            self.protocol_error(conn, Some(&kind), reason, t.as_deref(), None);
            return;
        }
        if self.frame_events && self.config.message_events {
            self.emit(HubEvent::Message {
                conn,
                from: kind.to_string(),
                msg_type: type_name(&frame).unwrap_or_default(),
                id: frame.id().clone(),
            });
        }
        let len = frame.len();
        let env = frame.into_envelope();
        match env.message {
            Message::Hello(_) => self.protocol_error(
                conn,
                Some(&kind),
                DropReason::DuplicateHello,
                Some(types::HELLO),
                None,
            ),
            Message::StatusUpdate(m) => self.on_status_update(&kind, m.data),
            Message::RpcRequest(m) => self.on_rpc_request(conn, &kind, env.id, env.to, m, len),
            Message::RpcResponse(m) => self.on_rpc_response(&kind, env.id, env.to, m),
            Message::RpcCancel(m) => self.on_rpc_cancel(&kind, env.to, m),
            Message::TopicUnsubscribe(m) => self.on_unsubscribe(conn, &kind, m.topic),
            gated
            @ (Message::TopicSubscribe(_) | Message::TopicMessage(_) | Message::Direct(_)) => {
                self.on_gated(conn, &kind, env.to, gated, len)
            }
            // Verified, recorded, reported; otherwise ignored without a reply.
            _ => {}
        }
    }
}

/// The frame's type for events, if it is a string.
fn type_name(frame: &Frame) -> Option<String> {
    frame.msg_type().map(|t| t.to_string_lossy())
}
