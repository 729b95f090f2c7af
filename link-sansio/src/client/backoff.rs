//! Reconnect backoff: exponential growth to a cap with jitter from the seeded RNG,
//! counting consecutive attempts and reset only when the link becomes ready.

use std::time::Duration;

use crate::seeded::Rng;

/// The reconnect schedule of one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ms: f64,
    max_ms: f64,
    growth: f64,
    jitter: f64,
    max_attempts: Option<u32>,
    base_ms: f64,
    attempt: u32,
}

/// What to do after losing the transport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retry {
    /// Reconnect after `delay`; this is attempt number `attempt`.
    After {
        /// 1-based attempt number.
        attempt: u32,
        /// The jittered delay.
        delay: Duration,
    },
    /// The ceiling was reached after `attempts` attempts.
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The ceiling.
        max_attempts: u32,
    },
}

impl Backoff {
    /// A schedule from the reference's options.
    pub fn new(
        initial: Duration,
        max: Duration,
        growth: f64,
        jitter: f64,
        max_attempts: Option<u32>,
    ) -> Self {
        let initial_ms = initial.as_secs_f64() * 1000.0;
        Self {
            initial_ms,
            max_ms: max.as_secs_f64() * 1000.0,
            growth,
            jitter,
            max_attempts,
            base_ms: initial_ms,
            attempt: 0,
        }
    }

    /// The link became ready: start over from the initial delay.
    pub fn reset(&mut self) {
        self.base_ms = self.initial_ms;
        self.attempt = 0;
    }

    /// The transport was lost: the next attempt and its delay,
    /// `base × (1 − j/2 + rand·j)`, or exhaustion.
    pub fn next(&mut self, rng: &mut Rng) -> Retry {
        let attempt = self.attempt.saturating_add(1);
        if let Some(max_attempts) = self.max_attempts
            && attempt > max_attempts
        {
            return Retry::Exhausted {
                attempts: self.attempt,
                max_attempts,
            };
        }
        self.attempt = attempt;
        let j = self.jitter;
        let ms = (self.base_ms * (1.0 - j / 2.0 + rng.unit() * j)).max(0.0);
        Retry::After {
            attempt,
            delay: Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX),
        }
    }

    /// The delay elapsed and a connect is starting: the base grows for next time
    /// (the reference grows it when the timer fires, not when it is set).
    pub fn grow(&mut self) {
        self.base_ms = (self.base_ms * self.growth).min(self.max_ms);
    }

    /// Consecutive attempts since the last ready.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[test]
    fn grows_to_the_cap_within_jitter_bounds_and_resets() {
        let mut b = Backoff::new(
            Duration::from_millis(1000),
            Duration::from_millis(10_000),
            1.5,
            0.5,
            None,
        );
        let mut rng = Rng::new(3);
        let mut base = 1000.0f64;
        for n in 1..=12 {
            let Retry::After { attempt, delay } = b.next(&mut rng) else {
                panic!("unbounded attempts never exhaust");
            };
            assert_eq!(attempt, n);
            let d = ms(delay);
            assert!(
                d >= base * 0.75 - 1e-6 && d < base * 1.25 + 1e-6,
                "{d} vs base {base}"
            );
            b.grow();
            base = (base * 1.5).min(10_000.0);
        }
        b.reset();
        let Retry::After { attempt, delay } = b.next(&mut rng) else {
            panic!("reset");
        };
        assert_eq!(attempt, 1);
        assert!(ms(delay) < 1250.0);
    }

    #[test]
    fn zero_jitter_is_exact_and_ceiling_exhausts() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(1000),
            2.0,
            0.0,
            Some(2),
        );
        let mut rng = Rng::new(1);
        assert_eq!(
            b.next(&mut rng),
            Retry::After {
                attempt: 1,
                delay: Duration::from_millis(100)
            }
        );
        b.grow();
        assert_eq!(
            b.next(&mut rng),
            Retry::After {
                attempt: 2,
                delay: Duration::from_millis(200)
            }
        );
        b.grow();
        assert_eq!(
            b.next(&mut rng),
            Retry::Exhausted {
                attempts: 2,
                max_attempts: 2
            }
        );
    }
}
