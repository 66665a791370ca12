//! The engine's settings (`[delivery]` as the engine sees it) and the backoff between attempts.

use std::time::Duration;

use crate::config::{Ambiguous, Delivery};

/// A connection idle for this long is probed with NOOP before it carries a message: servers close
/// idle sessions, and a message sent into a closed one would cost its reader an attempt.
pub const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The engine's settings (from `[delivery]`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub concurrency: u32,
    pub rate_per_second: u32,
    pub max_attempts: u32,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub ambiguous: Ambiguous,
    /// Probe a connection with NOOP before reusing it after this much idle time
    /// (default [`IDLE_CHECK`]).
    pub idle_check: Duration,
    /// Stop the run when this many distinct readers in a row get the same failure; 0: never.
    pub breaker: u32,
    /// Messages sent on one connection before it is closed and a new one opened (many relays
    /// cap a session at about 100); 0: no limit. From `[smtp] max_messages_per_connection`.
    pub messages_per_connection: u32,
}

impl From<&Delivery> for Settings {
    fn from(d: &Delivery) -> Self {
        Settings {
            concurrency: d.concurrency,
            rate_per_second: d.rate_per_second,
            max_attempts: d.max_attempts,
            retry_min: d.retry_min,
            retry_max: d.retry_max,
            ambiguous: d.ambiguous,
            idle_check: IDLE_CHECK,
            breaker: d.breaker,
            messages_per_connection: 0,
        }
    }
}

impl Settings {
    /// The delay before attempt `attempts + 1`: `retry_min` doubled per attempt made, at most
    /// `retry_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_min
            .checked_mul(factor)
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }

    /// The most messages that can be sent but not yet recorded at any moment, hence the most
    /// duplicates a crash can cause.
    pub fn in_flight_bound(&self) -> usize {
        2 * self.concurrency.max(1) as usize
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Settings for the engine's unit tests (the breaker's use them too).
    pub(crate) fn settings() -> Settings {
        Settings {
            concurrency: 4,
            rate_per_second: 0,
            max_attempts: 3,
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(300),
            ambiguous: Ambiguous::Retry,
            idle_check: IDLE_CHECK,
            breaker: 20,
            messages_per_connection: 0,
        }
    }

    #[test]
    fn the_crash_bound_is_twice_the_workers() {
        assert_eq!(settings().in_flight_bound(), 8);
        let one = Settings {
            concurrency: 0,
            ..settings()
        };
        assert_eq!(one.in_flight_bound(), 2);
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let s = settings();
        assert_eq!(s.backoff(1), Duration::from_secs(60));
        assert_eq!(s.backoff(2), Duration::from_secs(120));
        assert_eq!(s.backoff(3), Duration::from_secs(240));
        assert_eq!(s.backoff(4), Duration::from_secs(300));
        assert_eq!(s.backoff(60), Duration::from_secs(300));
    }
}
