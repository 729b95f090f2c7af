//! Which key verifies a hello: the shared secret, the per-kind map (keyed once at
//! construction), or an application resolver asked asynchronously, with the hellos
//! that wait for its answer.

use std::collections::HashMap;

use super::{ConnId, KeyRequestId, Keys};
use crate::seeded::SeededState;
use crate::wire::message::HelloInfo;
use crate::wire::{Frame, HashAlgo, Key};

#[derive(Debug)]
enum Mode {
    Shared(Box<Key>),
    PerKind(HashMap<String, Key, SeededState>),
    Resolver,
}

/// A hello waiting for its kind's key.
#[derive(Debug)]
pub(super) struct WaitingHello {
    pub conn: ConnId,
    pub frame: Frame,
    pub hello: HelloInfo,
}

/// The outcome of looking up a claimed kind's key.
pub(super) enum KeyFor {
    Found(Box<Key>),
    Unknown,
    /// Only the application knows: park the hello and ask.
    Ask,
}

#[derive(Debug)]
pub(super) struct KeyStore {
    mode: Mode,
    algo: HashAlgo,
    waiting: HashMap<KeyRequestId, WaitingHello, SeededState>,
    /// Bytes of parked hello frames, bounded by `max_parked_bytes`: a resolver that
    /// never answers must not let hellos pile up without limit.
    parked_bytes: usize,
    max_parked_bytes: usize,
    next_id: u64,
}

impl KeyStore {
    pub fn new(keys: &Keys, algo: HashAlgo, hasher: SeededState, max_parked_bytes: usize) -> Self {
        let mode = match keys {
            Keys::Shared(secret) => Mode::Shared(Box::new(Key::new(secret, algo))),
            Keys::PerKind(map) => {
                let mut keyed = HashMap::with_hasher(hasher.clone());
                for (kind, secret) in map {
                    if !secret.is_empty() {
                        keyed.insert(kind.clone(), Key::new(secret, algo));
                    }
                }
                Mode::PerKind(keyed)
            }
            Keys::Resolver => Mode::Resolver,
        };
        Self {
            mode,
            algo,
            waiting: HashMap::with_hasher(hasher),
            parked_bytes: 0,
            max_parked_bytes,
            next_id: 0,
        }
    }

    /// The key for `kind`, if known without asking.
    pub fn key_for(&self, kind: &str) -> KeyFor {
        match &self.mode {
            Mode::Shared(key) => KeyFor::Found(key.clone()),
            Mode::PerKind(map) => match map.get(kind) {
                Some(key) => KeyFor::Found(Box::new(key.clone())),
                None => KeyFor::Unknown,
            },
            Mode::Resolver => KeyFor::Ask,
        }
    }

    /// Parks a hello until the application answers the returned request, or refuses
    /// it (`None`) when parked hellos already fill their budget.
    pub fn park(&mut self, conn: ConnId, frame: Frame, hello: HelloInfo) -> Option<KeyRequestId> {
        if self.parked_bytes + frame.len() > self.max_parked_bytes {
            return None;
        }
        self.parked_bytes += frame.len();
        self.next_id += 1;
        let id = KeyRequestId(self.next_id);
        self.waiting.insert(id, WaitingHello { conn, frame, hello });
        Some(id)
    }

    /// Drops the hellos parked for a socket that has gone; a late answer for them is
    /// ignored like any unknown request.
    pub fn forget_conn(&mut self, conn: ConnId) {
        let mut freed = 0;
        self.waiting.retain(|_, w| {
            let keep = w.conn != conn;
            if !keep {
                freed += w.frame.len();
            }
            keep
        });
        self.parked_bytes -= freed;
    }

    /// The parked hello for `request` and the key the application gave (if usable).
    pub fn resolved(
        &mut self,
        request: KeyRequestId,
        secret: Option<String>,
    ) -> Option<(WaitingHello, Option<Key>)> {
        let waiting = self.waiting.remove(&request)?;
        self.parked_bytes -= waiting.frame.len();
        let key = secret
            .filter(|s| !s.is_empty())
            .map(|s| Key::new(&s, self.algo));
        Some((waiting, key))
    }
}
