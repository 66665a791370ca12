//! How long a campaign took and how fast it went, counted from the first reader tried: the
//! canary window (and any hold) before it is told apart, never folded into the rate. The
//! console's campaign page and the summary mail both say it through [`Pace`].

use std::time::Duration;

/// A campaign's timing, from its row and its deliveries (pure: no I/O, no clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// From the campaign's start to its first reader tried (or to `end` while none was):
    /// the canary window and any hold.
    pub before_readers_ms: i64,
    /// From the first reader tried to `end`; `None` while no reader was tried.
    pub readers_ms: Option<i64>,
    /// Readers whose copy was accepted.
    pub sent: u64,
}

impl Pace {
    /// The pace of a campaign started at `created_at`, whose first reader was tried at
    /// `first_attempt`, seen at `end` (when it finished, or now while it runs).
    pub fn of(created_at: i64, first_attempt: Option<i64>, end: i64, sent: u64) -> Pace {
        match first_attempt {
            Some(first) => Pace {
                before_readers_ms: (first - created_at).max(0),
                readers_ms: Some((end - first).max(0)),
                sent,
            },
            None => Pace {
                before_readers_ms: (end - created_at).max(0),
                readers_ms: None,
                sent,
            },
        }
    }

    /// How long the readers took, in whole seconds ("2m 5s", "under a second").
    pub fn readers_duration(&self) -> Option<String> {
        self.readers_ms.map(words)
    }

    /// How long the campaign waited before its first reader ("10m", "under a second").
    pub fn before_readers(&self) -> String {
        words(self.before_readers_ms)
    }

    /// Readers accepted a second while readers were tried ("22.9 messages a second").
    pub fn rate(&self) -> Option<String> {
        let ms = self.readers_ms?;
        Some(if ms > 0 {
            format!(
                "{:.1} messages a second",
                self.sent as f64 * 1000.0 / ms as f64
            )
        } else {
            "all within a second".to_string()
        })
    }
}

/// A span in whole seconds, as humans read it.
fn words(ms: i64) -> String {
    if ms < 1000 {
        "under a second".to_string()
    } else {
        humantime::format_duration(Duration::from_secs(ms as u64 / 1000)).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_window_is_apart_from_the_readers_time_and_rate() {
        // Started at 0, a 2-minute window, readers from 120 s to 130 s: 229 sent.
        let p = Pace::of(0, Some(120_000), 130_000, 229);
        assert_eq!(p.before_readers(), "2m");
        assert_eq!(p.readers_duration().as_deref(), Some("10s"));
        assert_eq!(p.rate().as_deref(), Some("22.9 messages a second"));
    }

    #[test]
    fn no_reader_tried_means_no_rate_and_no_sending_time() {
        let p = Pace::of(1_000, None, 14_000, 0);
        assert_eq!(p.readers_duration(), None);
        assert_eq!(p.rate(), None);
        assert_eq!(p.before_readers(), "13s");
    }

    #[test]
    fn short_and_clock_skewed_spans_say_under_a_second() {
        let p = Pace::of(0, Some(500), 400, 3);
        assert_eq!(p.readers_duration().as_deref(), Some("under a second"));
        assert_eq!(p.rate().as_deref(), Some("all within a second"));
        assert_eq!(
            Pace::of(0, Some(0), 999, 3).rate().as_deref(),
            Some("3.0 messages a second")
        );
    }
}
