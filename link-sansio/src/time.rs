//! Time as the core sees it: handed in by the caller with every input and command.

use std::time::Instant;

/// The moment an input happens: a monotonic instant for deadlines, and wall-clock
/// milliseconds since the Unix epoch for envelope timestamps and the replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Now {
    /// Monotonic time, for timers and deadlines.
    pub instant: Instant,
    /// Wall clock in ms since the Unix epoch (`Date.now()`).
    pub wall_ms: u64,
}

impl Now {
    /// A moment from its two clocks.
    pub fn new(instant: Instant, wall_ms: u64) -> Self {
        Self { instant, wall_ms }
    }

    /// The same clocks advanced by `d` (for simulated time in tests).
    pub fn advance(self, d: std::time::Duration) -> Self {
        Self {
            instant: self.instant + d,
            wall_ms: self.wall_ms + d.as_millis() as u64,
        }
    }

    /// Wall clock as the `f64` JavaScript uses for `ts`.
    pub fn ms(self) -> f64 {
        self.wall_ms as f64
    }
}
