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
    next_id: u64,
}

impl KeyStore {
    pub fn new(keys: &Keys, algo: HashAlgo, hasher: SeededState) -> Self {
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

    /// Parks a hello until the application answers the returned request.
    pub fn park(&mut self, conn: ConnId, frame: Frame, hello: HelloInfo) -> KeyRequestId {
        self.next_id += 1;
        let id = KeyRequestId(self.next_id);
        self.waiting.insert(id, WaitingHello { conn, frame, hello });
        id
    }

    /// The parked hello for `request` and the key the application gave (if usable).
    pub fn resolved(
        &mut self,
        request: KeyRequestId,
        secret: Option<String>,
    ) -> Option<(WaitingHello, Option<Key>)> {
        let waiting = self.waiting.remove(&request)?;
        let key = secret
            .filter(|s| !s.is_empty())
            .map(|s| Key::new(&s, self.algo));
        Some((waiting, key))
    }
}
