//! The application workload: what each peer does while the faults last.

use super::*;

impl World {
    pub(super) fn act(&mut self, c: usize) {
        if !self.chaos {
            return;
        }
        let mean = self.sc.act_every_ms * MS;
        let d = self.rand(1, 2 * mean);
        self.after(d, Ev::Act { c });
        if self.peers[c].stopped {
            return;
        }
        let roll = self.rand(0, 99);
        match roll {
            0..=29 => self.act_rpc(c, false),
            30..=34 => self.act_cancel(c),
            35..=54 => self.act_publish(c),
            55..=62 => self.act_subscribe(c),
            63..=67 => self.act_unsubscribe(c),
            68..=89 => self.act_send(c),
            90..=92 => {
                let now = self.client_now(c);
                let _ = self.peers[c].conn.push_status(now, None);
            }
            93 if chance(&mut self.rng, 0.25) => {
                // The application stops its link for a while (gracefully or not) and
                // starts it again before the faults end.
                let now = self.client_now(c);
                let graceful = chance(&mut self.rng, 0.5);
                self.peers[c].conn.stop(now, graceful);
                let d = self.rand(100 * MS, 1_500 * MS);
                self.after(d, Ev::Start { c });
            }
            _ => self.act_rpc(c, true),
        }
        self.drain_client(c);
    }

    pub(super) fn pick_kind(&mut self) -> String {
        let n = self.peers.len() as u64;
        if chance(&mut self.rng, 0.05) {
            return GHOST.to_owned();
        }
        let i = self.rand(0, n - 1) as usize;
        self.peers[i].kind.clone()
    }

    pub(super) fn padding(&mut self) -> usize {
        if chance(&mut self.rng, 0.2) {
            self.rand(0, self.sc.max_padding as u64) as usize
        } else {
            0
        }
    }

    pub(super) fn next_seq(&mut self, c: usize) -> u64 {
        self.peers[c].next_seq += 1;
        self.peers[c].next_seq
    }

    pub(super) fn act_rpc(&mut self, c: usize, to_server: bool) {
        let (to, rpc_type) = if to_server {
            let t = match self.rand(0, 9) {
                0..=4 => "sim.echo",
                5 => "sim.fail",
                6 => "sim.slow",
                7 => "link.health",
                8 => "nope.server",
                _ if self.sc.acl => FORBIDDEN,
                _ => "sim.echo",
            };
            (SERVER.to_owned(), t)
        } else {
            let t = match self.rand(0, 9) {
                0..=5 => "echo",
                6 => "slow",
                7 => "fail",
                8 => "nope",
                _ if self.sc.acl => FORBIDDEN,
                _ => "echo",
            };
            (self.pick_kind(), t)
        };
        let timeout = match self.rand(0, 3) {
            0 => None,
            _ => Some(Duration::from_millis(self.rand(50, 3_000))),
        };
        self.issue_rpc(c, &to, rpc_type, timeout, false);
    }

    pub(super) fn issue_rpc(
        &mut self,
        c: usize,
        to: &str,
        rpc_type: &str,
        timeout: Option<Duration>,
        probe: bool,
    ) {
        let seq = self.next_seq(c);
        let padding = if probe { 0 } else { self.padding() };
        let data = tag(c, seq, &self.peers[c].kind, padding);
        let now = self.client_now(c);
        self.stats.rpcs += 1;
        match self.peers[c]
            .conn
            .rpc(now, to, rpc_type, Some(data), timeout)
        {
            Ok(id) => {
                if probe {
                    self.expected_rpcs.insert((c, id.0));
                }
                let timeout =
                    Some(timeout.unwrap_or(Duration::from_millis(self.sc.rpc_timeout_ms)));
                self.peers[c].pending.insert(
                    id.0,
                    Call {
                        to: to.to_owned(),
                        rpc_type: rpc_type.to_owned(),
                        seq,
                        timeout,
                        sent_at: self.now,
                        probe,
                    },
                );
            }
            Err(RpcError::NotReady { .. }) | Err(RpcError::Backpressure { .. }) if !probe => {
                self.orphans_owed += 1;
            }
            Err(e) => self.fail(format!("client {c}: rpc({to}, {rpc_type}) refused: {e:?}")),
        }
    }

    pub(super) fn act_cancel(&mut self, c: usize) {
        let ids: Vec<u64> = self.peers[c].pending.keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        let id = ids[self.rand(0, ids.len() as u64 - 1) as usize];
        let now = self.client_now(c);
        self.peers[c].conn.cancel_rpc(now, RpcId(id));
        // The abort settles at once: the call must be gone after this drain.
        self.drain_client(c);
        if self.peers[c].pending.contains_key(&id) {
            self.fail(format!(
                "client {c}: cancel_rpc(rpc#{id}) did not settle the call"
            ));
        }
    }

    pub(super) fn act_publish(&mut self, c: usize) {
        let topic = if self.sc.acl && chance(&mut self.rng, 0.1) {
            SECRET_TOPIC
        } else {
            TOPICS[self.rand(0, TOPICS.len() as u64 - 1) as usize]
        };
        let padding = self.padding();
        self.publish(c, topic, padding);
    }

    pub(super) fn publish(&mut self, c: usize, topic: &str, padding: usize) -> Option<u64> {
        let seq = self.next_seq(c);
        let payload = tag(c, seq, &self.peers[c].kind, padding);
        let now = self.client_now(c);
        self.peers[c].accepted.insert(seq);
        let r = self.peers[c].conn.publish(now, topic, Some(payload));
        self.accepted(c, seq, r, "publish")
    }

    pub(super) fn accepted(
        &mut self,
        c: usize,
        seq: u64,
        r: Result<(), ClientError>,
        op: &str,
    ) -> Option<u64> {
        match r {
            Ok(()) => return Some(seq),
            Err(ClientError::OutboxFull { .. }) => {}
            Err(ClientError::NotReady { .. }) if self.peers[c].stopped => {}
            Err(e) => self.fail(format!("client {c}: {op} refused: {e:?}")),
        }
        // Refused before it was queued, so it will never be transmitted.
        self.peers[c].accepted.remove(&seq);
        None
    }

    pub(super) fn act_subscribe(&mut self, c: usize) {
        let topic = if self.sc.acl && chance(&mut self.rng, 0.1) {
            SECRET_TOPIC
        } else {
            TOPICS[self.rand(0, TOPICS.len() as u64 - 1) as usize]
        };
        let now = self.client_now(c);
        match self.peers[c].conn.subscribe(now, topic) {
            Ok(()) => {
                self.peers[c].subs.insert(topic.to_owned());
            }
            Err(e) => self.fail(format!("client {c}: subscribe({topic}) refused: {e:?}")),
        }
    }

    pub(super) fn act_unsubscribe(&mut self, c: usize) {
        let subs: Vec<String> = self.peers[c].subs.iter().cloned().collect();
        if subs.is_empty() {
            return;
        }
        let topic = subs[self.rand(0, subs.len() as u64 - 1) as usize].clone();
        let now = self.client_now(c);
        match self.peers[c].conn.unsubscribe(now, &topic) {
            Ok(was) => {
                self.peers[c].subs.remove(&topic);
                if !was {
                    self.fail(format!(
                        "client {c}: unsubscribe({topic}) forgot the subscription"
                    ));
                }
            }
            Err(e) => self.fail(format!("client {c}: unsubscribe({topic}) refused: {e:?}")),
        }
    }

    pub(super) fn act_send(&mut self, c: usize) {
        let to = self.pick_kind();
        let direct_type = if self.sc.acl && chance(&mut self.rng, 0.1) {
            FORBIDDEN
        } else {
            "note"
        };
        let padding = self.padding();
        self.send(c, &to, direct_type, padding);
    }

    pub(super) fn send(
        &mut self,
        c: usize,
        to: &str,
        direct_type: &str,
        padding: usize,
    ) -> Option<u64> {
        let seq = self.next_seq(c);
        let data = tag(c, seq, &self.peers[c].kind, padding);
        let now = self.client_now(c);
        self.peers[c].accepted.insert(seq);
        let r = self.peers[c].conn.send(now, to, direct_type, Some(data));
        self.accepted(c, seq, r, "send")
    }
}
