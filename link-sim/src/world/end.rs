//! The end of a run: liveness once the faults stop, the probes, the statuses and
//! the graceful drain.

use super::*;

impl World {
    pub(super) fn live(&self, c: usize) -> bool {
        let p = &self.peers[c];
        !p.stopped && !p.displaced && !p.beyond_window && !p.bad_key
    }

    /// After the faults stop and the network settles, everything must be back: every
    /// live peer ready, nothing queued anywhere, every RPC settled. Then each live
    /// peer sends probes that must all arrive.
    pub(super) fn check_settled(&mut self) {
        if self.hub.is_none() {
            return self.fail("hub still down after the settle period".to_owned());
        }
        let mut ready_kinds = BTreeSet::new();
        for c in 0..self.peers.len() {
            if !self.live(c) {
                continue;
            }
            let p = &self.peers[c];
            let h = p.conn.health();
            if !p.ready || !p.conn.is_ready() {
                return self.fail(format!("client {c} ({}) not ready after settling", p.kind));
            }
            if h.outbox_size != 0 || !p.accepted.is_empty() {
                return self.fail(format!(
                    "client {c}: {} items ({:?}) still queued after settling",
                    h.outbox_size, p.accepted
                ));
            }
            if !p.pending.is_empty() {
                let ids: Vec<_> = p.pending.keys().collect();
                return self.fail(format!("client {c}: RPCs {ids:?} never settled"));
            }
            ready_kinds.insert(p.kind.clone());
        }
        if let Some(h) = &self.hub {
            let health = h.state.health();
            if health.peer_count != ready_kinds.len() {
                return self.fail(format!(
                    "hub lists {} peers after settling, {} are ready",
                    health.peer_count,
                    ready_kinds.len()
                ));
            }
            if health.outbox_bytes != 0 || health.server_rpc_in_flight != 0 {
                return self.fail(format!("hub still busy after settling: {health:?}"));
            }
        }
        for p in &mut self.peers {
            p.status_floor = p.status_sent;
        }
        // Probes: a direct to every other live peer, a publish on every topic, and an
        // RPC to the next live peer and to the server.
        let live: Vec<usize> = (0..self.peers.len()).filter(|&c| self.live(c)).collect();
        for &c in &live {
            for &d in &live {
                if self.peers[d].kind == self.peers[c].kind {
                    continue;
                }
                let to = self.peers[d].kind.clone();
                if let Some(q) = self.send(c, &to, "probe", 0) {
                    self.expected.insert((to, c, q));
                    self.stats.probes += 1;
                }
            }
            for topic in TOPICS {
                if let Some(q) = self.publish(c, topic, 0) {
                    for &d in &live {
                        let p = &self.peers[d];
                        if p.kind != self.peers[c].kind && p.subs.contains(topic) && !p.subs_lost {
                            self.expected.insert((p.kind.clone(), c, q));
                            self.stats.probes += 1;
                        }
                    }
                }
            }
            let timeout = Some(Duration::from_millis(self.sc.probe_ms - 500));
            self.issue_rpc(c, SERVER, "sim.echo", timeout, true);
            if let Some(&d) = live
                .iter()
                .find(|&&d| self.peers[d].kind != self.peers[c].kind)
            {
                let to = self.peers[d].kind.clone();
                self.issue_rpc(c, &to, "echo", timeout, true);
            }
            self.drain_client(c);
            if self.violation.is_some() {
                return;
            }
        }
    }

    pub(super) fn check_probes(&mut self) {
        if let Some((kind, s, q)) = self.expected.first() {
            let n = self.expected.len();
            return self.fail(format!(
                "{n} probe messages lost after the network settled, e.g. {s}/{q} to {kind}"
            ));
        }
        if let Some((c, id)) = self.expected_rpcs.first() {
            return self.fail(format!("client {c}: probe RPC rpc#{id} never settled"));
        }
        // Statuses: the hub and every live peer know each live peer's status as it was
        // when the network settled (or newer).
        let status_n = |s: Option<&Value>| {
            s.and_then(|v| v.get("n"))
                .and_then(Value::as_f64)
                .map_or(0, |n| n as u64)
        };
        let live: Vec<usize> = (0..self.peers.len()).filter(|&c| self.live(c)).collect();
        let hub_status = self.hub.as_ref().map(|h| h.state.state().last_status);
        for &a in &live {
            let (kind, floor) = (self.peers[a].kind.clone(), self.peers[a].status_floor);
            let at_hub = hub_status
                .as_ref()
                .and_then(|l| l.iter().find(|(k, _)| *k == kind))
                .map(|(_, e)| status_n(e.status.as_ref()));
            if at_hub.unwrap_or(0) < floor {
                return self.fail(format!(
                    "hub holds status {at_hub:?} of {kind}, which sent #{floor} before settling"
                ));
            }
            for &b in &live {
                if self.peers[b].kind == kind {
                    continue;
                }
                let seen = self.peers[b]
                    .conn
                    .peer_status(&kind)
                    .map(|e| status_n(e.status.as_ref()));
                if seen.unwrap_or(0) < floor {
                    return self.fail(format!(
                        "client {b} holds status {seen:?} of {kind}, which sent #{floor} before settling"
                    ));
                }
            }
        }
        // Last, the hub shuts down gracefully: every socket must be gone in time.
        if self.hub.is_some() {
            self.draining = true;
            self.hub_input(hub::Input::Drain);
            self.after(DRAIN_LIMIT, Ev::Shutdown);
        }
    }

    pub(super) fn check_drained(&mut self) {
        let Some(h) = &self.hub else { return };
        if !h.state.is_drained() || self.drained_events != 1 {
            let open = self
                .links
                .iter()
                .filter(|l| l.epoch == self.epoch && !l.hub_gone)
                .count();
            return self.fail(format!(
                "hub not drained {}s after Drain: {open} sockets open, {} Drained events",
                DRAIN_LIMIT / 1_000_000,
                self.drained_events
            ));
        }
        // Stop the clock here: nothing scheduled later matters.
        self.queue.clear();
    }
}
