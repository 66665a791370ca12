//! The one place brief reads the wall clock, so every time-dependent path can run on a fixed clock.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// The current time in Unix milliseconds (the ledger's unit).
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// The current time as a ledger instant.
    fn instant(&self) -> Millis {
        Millis(self.now_ms())
    }
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that says what it is told (tests).
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// An instant as the ledger keeps it: Unix milliseconds, UTC. A type of its own where an
/// instant meets a span or an id in one call, so that they cannot trade places and compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

impl Millis {
    /// `span` later (saturating).
    pub fn after(self, span: Duration) -> Millis {
        Millis(self.0.saturating_add(span_ms(span)))
    }

    /// `span` earlier (saturating).
    pub fn before(self, span: Duration) -> Millis {
        Millis(self.0.saturating_sub(span_ms(span)))
    }

    /// How long after `earlier` this is (zero when it is not after).
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

/// `span` in whole milliseconds, saturating at `i64::MAX`: how the ledger keeps a span.
pub fn span_ms(span: Duration) -> i64 {
    i64::try_from(span.as_millis()).unwrap_or(i64::MAX)
}

/// A Unix-milliseconds time as RFC 3339 UTC (`2021-07-01T09:00:00.000Z`); empty for `None`.
pub fn fmt_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
