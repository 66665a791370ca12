//! The daemon's Prometheus metrics: a small registry of counters and gauges, rendered as text.
//!
//! One [`Metrics`] value (shared in an `Arc`) holds every series brief exports; updates are
//! atomic adds, so send workers record without contention worth measuring. [`Metrics::render`]
//! writes the Prometheus text exposition format 0.0.4 for `GET /metrics`. Time comes from the
//! caller (`now_unix`), as everywhere outside the clock module: the send rate is computed from
//! it, which keeps this module testable with fixed instants.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Delivery states (DESIGN "Delivery semantics"), exported at 0 until the ledger says otherwise.
pub const DELIVERY_STATES: &[&str] = &[
    "pending",
    "sending",
    "sent",
    "deferred",
    "failed",
    "suppressed",
];
/// Campaign events counted by `brief_campaigns_total{state}`.
pub const CAMPAIGN_STATES: &[&str] = &["created", "resumed", "finished"];
/// Kinds of send error: `transient` (4xx), `permanent` (5xx), `connection` (network, TLS,
/// timeout: no reply code), `ambiguous` (the reply to the final dot was lost).
pub const SEND_ERROR_KINDS: &[&str] = &["transient", "permanent", "connection", "ambiguous"];
/// Outcomes of a schedule fire: a campaign `created`, one that `exists` already, a month with
/// no entries (`empty`), a fire `missed` past the catch-up window, or `failed`.
pub const FIRE_OUTCOMES: &[&str] = &["created", "exists", "empty", "missed", "failed"];

/// Distinct label values one metric keeps; more fold into `LABEL_OVERFLOW`, so a bug feeding
/// unbounded values (addresses, error texts) cannot grow the registry without end.
const MAX_LABEL_VALUES: usize = 256;
const LABEL_OVERFLOW: &str = "_other";

/// The length of the send-rate window, in seconds.
const RATE_WINDOW: u32 = 60;

/// Every series of the daemon.
#[derive(Debug)]
pub struct Metrics {
    campaigns: Family<AtomicU64>,
    deliveries: Family<AtomicI64>,
    messages_sent: AtomicU64,
    send_rate: RateWindow,
    send_errors: Family<AtomicU64>,
    feed_failures: Family<AtomicU64>,
    schedule_fires: Family<AtomicU64>,
    up: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every known label value at zero and `brief_up` at 1.
    pub fn new() -> Metrics {
        Metrics {
            campaigns: Family::new("state", CAMPAIGN_STATES),
            deliveries: Family::new("state", DELIVERY_STATES),
            messages_sent: AtomicU64::new(0),
            send_rate: RateWindow::default(),
            send_errors: Family::new("kind", SEND_ERROR_KINDS),
            feed_failures: Family::new("url", &[]),
            schedule_fires: Family::new("outcome", FIRE_OUTCOMES),
            up: AtomicI64::new(1),
        }
    }

    /// Counts a campaign reaching `state` (see [`CAMPAIGN_STATES`]).
    pub fn campaign(&self, state: &str) {
        self.campaigns.with(state, inc);
    }

    /// Sets `brief_deliveries` from the ledger's counts per state; a known state missing from
    /// `counts` reads 0, so a scrape never shows a stale count.
    pub fn set_deliveries<'a>(&self, counts: impl IntoIterator<Item = (&'a str, u64)>) {
        let counts: BTreeMap<&str, u64> = counts.into_iter().collect();
        for state in self.deliveries.values() {
            if !counts.contains_key(state.as_str()) {
                self.deliveries
                    .with(&state, |g| g.store(0, Ordering::Relaxed));
            }
        }
        for (state, n) in counts {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.deliveries
                .with(state, |g| g.store(n, Ordering::Relaxed));
        }
    }

    /// Counts one message accepted by the relay (2xx) at `now_unix`.
    pub fn message_sent(&self, now_unix: i64) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.send_rate.record(now_unix);
    }

    /// Counts one failed send attempt of `kind` (see [`SEND_ERROR_KINDS`]).
    pub fn send_error(&self, kind: &str) {
        self.send_errors.with(kind, inc);
    }

    /// Counts one failed fetch of the feed at `url`.
    pub fn feed_failure(&self, url: &str) {
        self.feed_failures.with(url, inc);
    }

    /// Counts one schedule fire with its `outcome` (see [`FIRE_OUTCOMES`]).
    pub fn schedule_fire(&self, outcome: &str) {
        self.schedule_fires.with(outcome, inc);
    }

    /// Sets `brief_up`: 1 while the daemon serves, 0 once it is stopping.
    pub fn set_up(&self, up: bool) {
        self.up.store(i64::from(up), Ordering::Relaxed);
    }

    /// The exposition text at `now_unix` (which the send rate is computed at).
    pub fn render(&self, now_unix: i64) -> String {
        let mut out = String::with_capacity(2048);
        self.campaigns.render(
            &mut out,
            "brief_campaigns_total",
            "counter",
            "Campaigns that reached a state since the daemon started.",
        );
        self.deliveries.render(
            &mut out,
            "brief_deliveries",
            "gauge",
            "Deliveries in the ledger by state, read at scrape time.",
        );
        scalar(
            &mut out,
            "brief_messages_sent_total",
            "counter",
            "Messages the relay accepted since the daemon started.",
            &self.messages_sent.load(Ordering::Relaxed).to_string(),
        );
        self.send_errors.render(
            &mut out,
            "brief_send_errors_total",
            "counter",
            "Failed send attempts by kind.",
        );
        scalar(
            &mut out,
            "brief_send_rate",
            "gauge",
            "Messages accepted per second over the last minute.",
            &float(self.send_rate.per_second(now_unix)),
        );
        self.feed_failures.render(
            &mut out,
            "brief_feed_failures_total",
            "counter",
            "Failed feed fetches by feed URL.",
        );
        self.schedule_fires.render(
            &mut out,
            "brief_schedule_fires_total",
            "counter",
            "Schedule fires by outcome.",
        );
        scalar(
            &mut out,
            "brief_up",
            "gauge",
            "1 while the daemon serves, 0 once it is stopping.",
            &self.up.load(Ordering::Relaxed).to_string(),
        );
        out
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A value an exported series can hold.
trait Sample: Default {
    fn text(&self) -> String;
}

impl Sample for AtomicU64 {
    fn text(&self) -> String {
        self.load(Ordering::Relaxed).to_string()
    }
}

impl Sample for AtomicI64 {
    fn text(&self) -> String {
        self.load(Ordering::Relaxed).to_string()
    }
}

/// One metric with one label: a value per label value.
#[derive(Debug)]
struct Family<T> {
    label: &'static str,
    values: RwLock<BTreeMap<String, T>>,
}

impl<T: Sample> Family<T> {
    fn new(label: &'static str, known: &[&str]) -> Family<T> {
        let values = known
            .iter()
            .map(|v| (v.to_string(), T::default()))
            .collect();
        Family {
            label,
            values: RwLock::new(values),
        }
    }

    /// Runs `f` on the value for `label_value`, creating it at zero on first use. The common
    /// case takes only the read lock; the atomics inside make the update itself.
    fn with<R>(&self, label_value: &str, f: impl FnOnce(&T) -> R) -> R {
        {
            let map = self.values.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = map.get(label_value) {
                return f(v);
            }
        }
        let mut map = self.values.write().unwrap_or_else(PoisonError::into_inner);
        let key = if map.len() >= MAX_LABEL_VALUES && !map.contains_key(label_value) {
            LABEL_OVERFLOW
        } else {
            label_value
        };
        f(map.entry(key.to_string()).or_default())
    }

    fn values(&self) -> Vec<String> {
        let map = self.values.read().unwrap_or_else(PoisonError::into_inner);
        map.keys().cloned().collect()
    }

    fn render(&self, out: &mut String, name: &str, kind: &str, help: &str) {
        header(out, name, kind, help);
        let map = self.values.read().unwrap_or_else(PoisonError::into_inner);
        for (value, sample) in map.iter() {
            let _ = writeln!(
                out,
                "{name}{{{}=\"{}\"}} {}",
                self.label,
                escape_label(value),
                sample.text()
            );
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: &str) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// HELP text escapes backslash and line feed.
fn escape_help(s: &str) -> String {
    s.replace('\\', r"\\").replace('\n', r"\n")
}

/// A float as Prometheus reads it (Rust writes infinity as `inf`).
fn float(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

/// Messages per second over the last [`RATE_WINDOW`] seconds: one slot per second of the
/// window, each one atomic word holding the second it counts (low 32 bits of the unix time)
/// and its count, so a worker starting a new second resets the slot and counts in one step.
#[derive(Debug)]
struct RateWindow {
    slots: [AtomicU64; RATE_WINDOW as usize],
}

impl Default for RateWindow {
    fn default() -> Self {
        RateWindow {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl RateWindow {
    fn slot(&self, now_unix: i64) -> &AtomicU64 {
        &self.slots[now_unix.rem_euclid(i64::from(RATE_WINDOW)) as usize]
    }

    fn record(&self, now_unix: i64) {
        let second = now_unix as u32;
        let slot = self.slot(now_unix);
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let next = if (current >> 32) as u32 == second {
                current + 1
            } else {
                (u64::from(second) << 32) | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    fn per_second(&self, now_unix: i64) -> f64 {
        let now = now_unix as u32;
        let total: u64 = self
            .slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            // Counted within (now - 60 s, now]; a slot stamped in the future (the clock went
            // back) wraps to a large age and is left out.
            .filter(|&w| now.wrapping_sub((w >> 32) as u32) < RATE_WINDOW)
            .map(|w| w & 0xffff_ffff)
            .sum();
        total as f64 / f64::from(RATE_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_registry_renders_every_series() {
        let text = Metrics::new().render(1_000);
        let expected = "\
# HELP brief_campaigns_total Campaigns that reached a state since the daemon started.
# TYPE brief_campaigns_total counter
brief_campaigns_total{state=\"created\"} 0
brief_campaigns_total{state=\"finished\"} 0
brief_campaigns_total{state=\"resumed\"} 0
# HELP brief_deliveries Deliveries in the ledger by state, read at scrape time.
# TYPE brief_deliveries gauge
brief_deliveries{state=\"deferred\"} 0
brief_deliveries{state=\"failed\"} 0
brief_deliveries{state=\"pending\"} 0
brief_deliveries{state=\"sending\"} 0
brief_deliveries{state=\"sent\"} 0
brief_deliveries{state=\"suppressed\"} 0
# HELP brief_messages_sent_total Messages the relay accepted since the daemon started.
# TYPE brief_messages_sent_total counter
brief_messages_sent_total 0
# HELP brief_send_errors_total Failed send attempts by kind.
# TYPE brief_send_errors_total counter
brief_send_errors_total{kind=\"ambiguous\"} 0
brief_send_errors_total{kind=\"connection\"} 0
brief_send_errors_total{kind=\"permanent\"} 0
brief_send_errors_total{kind=\"transient\"} 0
# HELP brief_send_rate Messages accepted per second over the last minute.
# TYPE brief_send_rate gauge
brief_send_rate 0
# HELP brief_feed_failures_total Failed feed fetches by feed URL.
# TYPE brief_feed_failures_total counter
# HELP brief_schedule_fires_total Schedule fires by outcome.
# TYPE brief_schedule_fires_total counter
brief_schedule_fires_total{outcome=\"created\"} 0
brief_schedule_fires_total{outcome=\"empty\"} 0
brief_schedule_fires_total{outcome=\"exists\"} 0
brief_schedule_fires_total{outcome=\"failed\"} 0
brief_schedule_fires_total{outcome=\"missed\"} 0
# HELP brief_up 1 while the daemon serves, 0 once it is stopping.
# TYPE brief_up gauge
brief_up 1
";
        assert_eq!(text, expected);
    }

    #[test]
    fn every_sample_line_is_well_formed_and_prefixed() {
        let m = Metrics::new();
        m.feed_failure("https://example.org/feed.json");
        let text = m.render(0);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(series.starts_with("brief_"), "{line}");
            let name = series.split('{').next().unwrap();
            assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{line}"
            );
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn updates_show_in_the_right_series() {
        let m = Metrics::new();
        m.campaign("created");
        m.send_error("transient");
        m.send_error("transient");
        m.schedule_fire("exists");
        m.message_sent(1_000);
        m.set_up(false);
        let text = m.render(1_000);
        for line in [
            "brief_campaigns_total{state=\"created\"} 1\n",
            "brief_send_errors_total{kind=\"transient\"} 2\n",
            "brief_schedule_fires_total{outcome=\"exists\"} 1\n",
            "brief_messages_sent_total 1\n",
            "brief_up 0\n",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.feed_failure("https://example.org/a\"b\\c\nd");
        let text = m.render(0);
        assert!(
            text.contains(
                "brief_feed_failures_total{url=\"https://example.org/a\\\"b\\\\c\\nd\"} 1\n"
            ),
            "{text}"
        );
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn deliveries_are_replaced_at_each_scrape() {
        let m = Metrics::new();
        m.set_deliveries([("sent", 3), ("pending", 2)]);
        m.set_deliveries([("sent", 5)]);
        let text = m.render(0);
        assert!(
            text.contains("brief_deliveries{state=\"sent\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("brief_deliveries{state=\"pending\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn send_rate_covers_the_last_minute_only() {
        let m = Metrics::new();
        for _ in 0..90 {
            m.message_sent(1_000);
        }
        for _ in 0..30 {
            m.message_sent(1_030);
        }
        let rate = |now| m.send_rate.per_second(now);
        assert_eq!(rate(1_030), 2.0);
        assert_eq!(rate(1_059), 2.0);
        assert_eq!(rate(1_060), 0.5, "the second 1000 left the window");
        assert_eq!(rate(1_090), 0.0);
        // A clock that went back does not count the future.
        assert_eq!(rate(999), 0.0);
        // The slot of second 1000 is reused by second 1060.
        m.message_sent(1_060);
        assert_eq!(rate(1_060), 31.0 / 60.0);
        assert!(m
            .render(1_060)
            .contains("brief_send_rate 0.5166666666666667\n"));
    }

    #[test]
    fn concurrent_updates_are_all_counted() {
        let m = Metrics::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5_000 {
                        m.message_sent(7_000);
                        m.send_error("connection");
                    }
                });
            }
        });
        let text = m.render(7_000);
        assert!(text.contains("brief_messages_sent_total 20000\n"), "{text}");
        assert!(text.contains("brief_send_errors_total{kind=\"connection\"} 20000\n"));
        assert!(text.contains(&format!("brief_send_rate {}\n", 20_000.0 / 60.0)));
    }

    #[test]
    fn unbounded_label_values_fold_into_other() {
        let m = Metrics::new();
        for i in 0..MAX_LABEL_VALUES + 10 {
            m.feed_failure(&format!("https://example.org/{i}"));
        }
        let text = m.render(0);
        let series = text
            .lines()
            .filter(|l| l.starts_with("brief_feed_failures_total{"))
            .count();
        assert_eq!(series, MAX_LABEL_VALUES + 1);
        assert!(text.contains("brief_feed_failures_total{url=\"_other\"} 10\n"));
        assert_eq!(float(f64::INFINITY), "+Inf");
    }
}
