//! The daemon's Prometheus metrics, through `prometheus-client`: typed label sets, one registry,
//! OpenMetrics text for `GET /metrics`.
//!
//! One [`Metrics`] value (shared in an `Arc`) holds every series brief exports; updates are
//! atomic adds, so send workers count each attempt where it is classified without contention
//! worth measuring. Label values are enums (the ledger's [`State`] for deliveries), so a typo
//! cannot start a new series; every known value is exported at 0 from the start, because
//! operators alert on them. The only free-form label, the feed URL, is bounded.
//!
//! A send rate is not exported: `rate(brief_messages_sent_total[5m])` computes it in PromQL.

use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ledger::{self, State};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Distinct label values one metric keeps; more fold into `LABEL_OVERFLOW`, so a bug feeding
/// unbounded values cannot grow the registry without end.
const MAX_LABEL_VALUES: usize = 256;
const LABEL_OVERFLOW: &str = "_other";

// The variants of the label enums below are spelled exactly as they are exported (the derive
// writes the variant's name): dashboards and alerts match these strings, so renaming a variant
// changes the series. `fresh_registry_exports_every_known_label_value_at_zero` pins them.

/// Campaign events counted by `brief_campaigns_total{state}`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum CampaignState {
    /// A schedule fire created the campaign.
    created,
    /// The daemon resumed an unfinished campaign at start.
    resumed,
    /// Every delivery of the campaign is final.
    finished,
}

impl CampaignState {
    pub const ALL: [CampaignState; 3] = [
        CampaignState::created,
        CampaignState::resumed,
        CampaignState::finished,
    ];
}

/// Kinds of failed send attempt, counted by `brief_send_errors_total{kind}`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum SendErrorKind {
    /// A 4xx reply.
    transient,
    /// A 5xx reply (or an address that cannot be sent to at all).
    permanent,
    /// No reply code: the connection could not be opened, or was lost or timed out before the
    /// message was handed over (network, TLS, timeout).
    connection,
    /// The reply to the final dot was lost: the message may have been accepted.
    ambiguous,
}

impl SendErrorKind {
    pub const ALL: [SendErrorKind; 4] = [
        SendErrorKind::transient,
        SendErrorKind::permanent,
        SendErrorKind::connection,
        SendErrorKind::ambiguous,
    ];
}

/// Outcomes of a schedule fire, counted by `brief_schedule_fires_total{outcome}`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum FireOutcome {
    /// The month's campaign was created.
    created,
    /// The month's campaign exists already.
    exists,
    /// The month has no entries.
    empty,
    /// The fire lies past the catch-up window.
    missed,
    /// The fire could not create the campaign.
    failed,
}

impl FireOutcome {
    pub const ALL: [FireOutcome; 5] = [
        FireOutcome::created,
        FireOutcome::exists,
        FireOutcome::empty,
        FireOutcome::missed,
        FireOutcome::failed,
    ];
}

/// What became of sign-ups, counted by `brief_subscriptions_total{event}`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum SubscriptionEvent {
    /// A confirmation message was mailed.
    requested,
    /// A reader confirmed and became active.
    confirmed,
    /// An unconfirmed request expired and was deleted.
    expired,
    /// A request was refused: honeypot, rate limit, a full queue.
    rejected,
}

impl SubscriptionEvent {
    pub const ALL: [SubscriptionEvent; 4] = [
        SubscriptionEvent::requested,
        SubscriptionEvent::confirmed,
        SubscriptionEvent::expired,
        SubscriptionEvent::rejected,
    ];
}

/// What came back to the bounce address, counted by `brief_bounces_total{kind}`.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum BounceKind {
    /// A permanent failure, recorded against its delivery.
    hard,
    /// A temporary failure, recorded against its delivery.
    soft,
    /// A spam complaint, recorded against its delivery.
    complaint,
    /// A policy or content refusal, recorded against its delivery; it suppresses nobody.
    blocked,
    /// A bounce or complaint that neither a valid VERP tag nor a keyed Message-ID attributes
    /// to a delivery (a forgery, or a report about mail brief did not send): nothing changed.
    unattributed,
    /// An auto-reply, a human reply, a success notice, or anything not recognised: nothing
    /// changed.
    ignored,
    /// A message over `[bounces] max_size`, left unread (IMAP) or refused: nothing changed.
    too_large,
}

impl BounceKind {
    pub const ALL: [BounceKind; 7] = [
        BounceKind::hard,
        BounceKind::soft,
        BounceKind::complaint,
        BounceKind::blocked,
        BounceKind::unattributed,
        BounceKind::ignored,
        BounceKind::too_large,
    ];
}

impl From<ledger::BounceKind> for BounceKind {
    /// The label of a report recorded against its delivery.
    fn from(kind: ledger::BounceKind) -> BounceKind {
        match kind {
            ledger::BounceKind::Hard => BounceKind::hard,
            ledger::BounceKind::Soft => BounceKind::soft,
            ledger::BounceKind::Complaint => BounceKind::complaint,
            ledger::BounceKind::Blocked => BounceKind::blocked,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BounceLabels {
    kind: BounceKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SubscriptionLabels {
    event: SubscriptionEvent,
}

/// Delivery states are exported as the ledger spells them.
impl EncodeLabelValue for State {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CampaignLabels {
    state: CampaignState,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeliveryLabels {
    state: State,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SendErrorLabels {
    kind: SendErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FeedLabels {
    url: String,
}

/// Why a campaign's readers wait (`brief_campaigns_waiting{gate}`).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EncodeLabelValue)]
enum WaitingGate {
    canary,
    held,
}

impl WaitingGate {
    const ALL: [WaitingGate; 2] = [WaitingGate::canary, WaitingGate::held];
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WaitingLabels {
    gate: WaitingGate,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FireLabels {
    outcome: FireOutcome,
}

/// Every series of the daemon, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    campaigns: Family<CampaignLabels, Counter>,
    deliveries: Family<DeliveryLabels, Gauge>,
    messages_sent: Counter,
    send_errors: Family<SendErrorLabels, Counter>,
    feed_failures: Family<FeedLabels, Counter>,
    /// How many series `feed_failures` holds; its lock is held while one is added, so the
    /// bound check and the insert are one step.
    feed_series: Mutex<usize>,
    schedule_fires: Family<FireLabels, Counter>,
    subscriptions: Family<SubscriptionLabels, Counter>,
    bounces: Family<BounceLabels, Counter>,
    circuit_breaks: Counter,
    waiting: Family<WaitingLabels, Gauge>,
    preflight_problems: Gauge,
    canary_unaccepted: Gauge,
    up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every known label value at zero and `brief_up` at 1.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("brief"),
            campaigns: Family::default(),
            deliveries: Family::default(),
            messages_sent: Counter::default(),
            send_errors: Family::default(),
            feed_failures: Family::default(),
            feed_series: Mutex::new(0),
            schedule_fires: Family::default(),
            subscriptions: Family::default(),
            bounces: Family::default(),
            circuit_breaks: Counter::default(),
            waiting: Family::default(),
            preflight_problems: Gauge::default(),
            canary_unaccepted: Gauge::default(),
            up: Gauge::default(),
        };
        m.register()
    }

    /// Pre-touches every known label value and registers clones of the handles (they share
    /// their values). The encoder appends each help text's final period and counters' `_total`.
    fn register(mut self) -> Metrics {
        for state in CampaignState::ALL {
            let _ = self.campaigns.get_or_create(&CampaignLabels { state });
        }
        for state in State::ALL {
            let _ = self.deliveries.get_or_create(&DeliveryLabels { state });
        }
        for kind in SendErrorKind::ALL {
            let _ = self.send_errors.get_or_create(&SendErrorLabels { kind });
        }
        for outcome in FireOutcome::ALL {
            let _ = self.schedule_fires.get_or_create(&FireLabels { outcome });
        }
        for event in SubscriptionEvent::ALL {
            let _ = self
                .subscriptions
                .get_or_create(&SubscriptionLabels { event });
        }
        for kind in BounceKind::ALL {
            let _ = self.bounces.get_or_create(&BounceLabels { kind });
        }
        for gate in WaitingGate::ALL {
            let _ = self.waiting.get_or_create(&WaitingLabels { gate });
        }
        self.up.set(1);

        let r = &mut self.registry;
        r.register(
            "campaigns",
            "Campaigns that reached a state since the daemon started",
            self.campaigns.clone(),
        );
        r.register(
            "deliveries",
            "Deliveries in the ledger by state, read at scrape time",
            self.deliveries.clone(),
        );
        r.register(
            "messages_sent",
            "Messages the relay accepted since the daemon started",
            self.messages_sent.clone(),
        );
        r.register(
            "send_errors",
            "Failed send attempts by kind",
            self.send_errors.clone(),
        );
        r.register(
            "feed_failures",
            "Failed feed fetches by feed URL",
            self.feed_failures.clone(),
        );
        r.register(
            "schedule_fires",
            "Schedule fires by outcome",
            self.schedule_fires.clone(),
        );
        r.register(
            "subscriptions",
            "Sign-up requests and confirmations by event",
            self.subscriptions.clone(),
        );
        r.register(
            "bounces",
            "Messages that came back to the bounce address, by what they were",
            self.bounces.clone(),
        );
        r.register(
            "circuit_breaks",
            "Campaign runs stopped by the circuit breaker: the same failure for many readers in a row",
            self.circuit_breaks.clone(),
        );
        r.register(
            "campaigns_waiting",
            "Unfinished campaigns whose readers wait: in their canary window, or held by staff; read at scrape time",
            self.waiting.clone(),
        );
        r.register(
            "preflight_problems",
            "Problems the latest checks before a scheduled send found (0 when ready or never run); read at scrape time",
            self.preflight_problems.clone(),
        );
        r.register(
            "canary_unaccepted",
            "Unfinished campaigns held because no staff address accepted their canary copy; read at scrape time",
            self.canary_unaccepted.clone(),
        );
        r.register(
            "up",
            "1 while the daemon serves, 0 once it is stopping",
            self.up.clone(),
        );
        self
    }

    /// Sets `brief_campaigns_waiting` (campaigns in their canary window, campaigns held) and
    /// `brief_preflight_problems`, as read from the ledger at a scrape.
    pub fn set_waiting(&self, canary: u64, held: u64, preflight_problems: u64) {
        for (gate, n) in [(WaitingGate::canary, canary), (WaitingGate::held, held)] {
            self.waiting
                .get_or_create(&WaitingLabels { gate })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.preflight_problems
            .set(i64::try_from(preflight_problems).unwrap_or(i64::MAX));
    }

    /// Sets `brief_canary_unaccepted`: unfinished campaigns held because no staff address
    /// accepted their canary copy, as read from the ledger at a scrape.
    pub fn set_canary_unaccepted(&self, n: u64) {
        self.canary_unaccepted
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts a campaign reaching `state`.
    pub fn campaign(&self, state: CampaignState) {
        self.campaigns
            .get_or_create(&CampaignLabels { state })
            .inc();
    }

    /// Sets `brief_deliveries` from the ledger's counts per state; a state missing from
    /// `counts` reads 0, so a scrape never shows a stale count.
    pub fn set_deliveries(&self, counts: impl IntoIterator<Item = (State, u64)>) {
        let mut values = [0i64; State::ALL.len()];
        for (state, n) in counts {
            if let Some(i) = State::ALL.iter().position(|s| *s == state) {
                values[i] = i64::try_from(n).unwrap_or(i64::MAX);
            }
        }
        for (state, n) in State::ALL.into_iter().zip(values) {
            self.deliveries
                .get_or_create(&DeliveryLabels { state })
                .set(n);
        }
    }

    /// Counts one sign-up `event`.
    pub fn subscription(&self, event: SubscriptionEvent) {
        self.subscriptions
            .get_or_create(&SubscriptionLabels { event })
            .inc();
    }

    /// Counts one message that came back to the bounce address.
    pub fn bounce(&self, kind: BounceKind) {
        self.bounces.get_or_create(&BounceLabels { kind }).inc();
    }

    /// Counts one message accepted by the relay (2xx, or a lost reply counted as sent).
    pub fn message_sent(&self) {
        self.messages_sent.inc();
    }

    /// Counts one failed send attempt of `kind`.
    pub fn send_error(&self, kind: SendErrorKind) {
        self.send_errors
            .get_or_create(&SendErrorLabels { kind })
            .inc();
    }

    /// Counts one failed fetch of the feed at `url`; past [`MAX_LABEL_VALUES`] distinct URLs,
    /// new ones are counted under `_other`.
    pub fn feed_failure(&self, url: &str) {
        let labels = FeedLabels {
            url: url.to_string(),
        };
        if let Some(counter) = self.feed_failures.get(&labels) {
            counter.inc();
            return;
        }
        let mut series = self
            .feed_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let labels = if self.feed_failures.get(&labels).is_some() || *series < MAX_LABEL_VALUES {
            labels
        } else {
            FeedLabels {
                url: LABEL_OVERFLOW.to_string(),
            }
        };
        if self.feed_failures.get(&labels).is_none() {
            *series += 1;
        }
        self.feed_failures.get_or_create(&labels).inc();
    }

    /// Counts one schedule fire with its `outcome`.
    pub fn schedule_fire(&self, outcome: FireOutcome) {
        self.schedule_fires
            .get_or_create(&FireLabels { outcome })
            .inc();
    }

    /// Counts one campaign run stopped by the circuit breaker.
    pub fn circuit_break(&self) {
        self.circuit_breaks.inc();
    }

    /// Sets `brief_up`: 1 while the daemon serves, 0 once it is stopping.
    pub fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// The OpenMetrics text exposition (ending with `# EOF`), served as [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Only a failing label encoder can make this fail, and ours write plain strings.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding metrics into a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_bounce_is_counted_under_its_own_word() {
        for kind in ledger::BounceKind::ALL {
            assert_eq!(format!("{:?}", BounceKind::from(kind)), kind.as_str());
        }
    }

    /// The sample lines of `text`, sorted (a family's series come in no fixed order).
    fn samples(text: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        lines.sort_unstable();
        lines
    }

    #[test]
    fn fresh_registry_exports_every_known_label_value_at_zero() {
        let text = Metrics::new().render();
        let mut expected = vec![
            "brief_campaigns_total{state=\"created\"} 0",
            "brief_campaigns_total{state=\"resumed\"} 0",
            "brief_campaigns_total{state=\"finished\"} 0",
            "brief_deliveries{state=\"pending\"} 0",
            "brief_deliveries{state=\"sending\"} 0",
            "brief_deliveries{state=\"sent\"} 0",
            "brief_deliveries{state=\"deferred\"} 0",
            "brief_deliveries{state=\"failed\"} 0",
            "brief_deliveries{state=\"suppressed\"} 0",
            "brief_messages_sent_total 0",
            "brief_send_errors_total{kind=\"transient\"} 0",
            "brief_send_errors_total{kind=\"permanent\"} 0",
            "brief_send_errors_total{kind=\"connection\"} 0",
            "brief_send_errors_total{kind=\"ambiguous\"} 0",
            "brief_schedule_fires_total{outcome=\"created\"} 0",
            "brief_schedule_fires_total{outcome=\"exists\"} 0",
            "brief_schedule_fires_total{outcome=\"empty\"} 0",
            "brief_schedule_fires_total{outcome=\"missed\"} 0",
            "brief_schedule_fires_total{outcome=\"failed\"} 0",
            "brief_subscriptions_total{event=\"requested\"} 0",
            "brief_subscriptions_total{event=\"confirmed\"} 0",
            "brief_subscriptions_total{event=\"expired\"} 0",
            "brief_subscriptions_total{event=\"rejected\"} 0",
            "brief_circuit_breaks_total 0",
            "brief_bounces_total{kind=\"hard\"} 0",
            "brief_bounces_total{kind=\"soft\"} 0",
            "brief_bounces_total{kind=\"complaint\"} 0",
            "brief_bounces_total{kind=\"blocked\"} 0",
            "brief_bounces_total{kind=\"unattributed\"} 0",
            "brief_bounces_total{kind=\"ignored\"} 0",
            "brief_bounces_total{kind=\"too_large\"} 0",
            "brief_campaigns_waiting{gate=\"canary\"} 0",
            "brief_campaigns_waiting{gate=\"held\"} 0",
            "brief_preflight_problems 0",
            "brief_canary_unaccepted 0",
            "brief_up 1",
        ];
        expected.sort_unstable();
        assert_eq!(samples(&text), expected, "{text}");
        for (name, kind, help) in [
            (
                "brief_campaigns",
                "counter",
                "Campaigns that reached a state since the daemon started.",
            ),
            (
                "brief_deliveries",
                "gauge",
                "Deliveries in the ledger by state, read at scrape time.",
            ),
            (
                "brief_messages_sent",
                "counter",
                "Messages the relay accepted since the daemon started.",
            ),
            (
                "brief_send_errors",
                "counter",
                "Failed send attempts by kind.",
            ),
            (
                "brief_schedule_fires",
                "counter",
                "Schedule fires by outcome.",
            ),
            (
                "brief_subscriptions",
                "counter",
                "Sign-up requests and confirmations by event.",
            ),
            (
                "brief_circuit_breaks",
                "counter",
                "Campaign runs stopped by the circuit breaker: the same failure for many readers in a row.",
            ),
            (
                "brief_campaigns_waiting",
                "gauge",
                "Unfinished campaigns whose readers wait: in their canary window, or held by staff; read at scrape time.",
            ),
            (
                "brief_preflight_problems",
                "gauge",
                "Problems the latest checks before a scheduled send found (0 when ready or never run); read at scrape time.",
            ),
            (
                "brief_canary_unaccepted",
                "gauge",
                "Unfinished campaigns held because no staff address accepted their canary copy; read at scrape time.",
            ),
            (
                "brief_up",
                "gauge",
                "1 while the daemon serves, 0 once it is stopping.",
            ),
        ] {
            assert!(
                text.contains(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n")),
                "{name} in\n{text}"
            );
        }
        // No URL is known before a fetch fails, and the encoder leaves out a family without series.
        assert!(!text.contains("brief_feed_failures"), "{text}");
        assert!(!text.contains("send_rate"), "{text}");
        assert!(text.ends_with("\n# EOF\n"), "{text}");
    }

    #[test]
    fn every_sample_line_is_well_formed_and_prefixed() {
        let m = Metrics::new();
        m.feed_failure("https://example.org/feed.json");
        let text = m.render();
        for line in samples(&text) {
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
        m.campaign(CampaignState::created);
        m.send_error(SendErrorKind::transient);
        m.send_error(SendErrorKind::transient);
        m.schedule_fire(FireOutcome::exists);
        m.message_sent();
        m.circuit_break();
        m.set_up(false);
        let text = m.render();
        for line in [
            "brief_campaigns_total{state=\"created\"} 1\n",
            "brief_campaigns_total{state=\"finished\"} 0\n",
            "brief_send_errors_total{kind=\"transient\"} 2\n",
            "brief_send_errors_total{kind=\"permanent\"} 0\n",
            "brief_schedule_fires_total{outcome=\"exists\"} 1\n",
            "brief_messages_sent_total 1\n",
            "brief_circuit_breaks_total 1\n",
            "brief_up 0\n",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.feed_failure("https://example.org/a\"b\\c\nd");
        let text = m.render();
        assert!(
            text.contains(
                "# HELP brief_feed_failures Failed feed fetches by feed URL.\n\
                 # TYPE brief_feed_failures counter\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "brief_feed_failures_total{url=\"https://example.org/a\\\"b\\\\c\\nd\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn deliveries_are_replaced_at_each_scrape() {
        let m = Metrics::new();
        m.set_deliveries([(State::Sent, 3), (State::Pending, 2)]);
        m.set_deliveries([(State::Sent, 5)]);
        let text = m.render();
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
    fn concurrent_updates_are_all_counted() {
        let m = Metrics::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5_000 {
                        m.message_sent();
                        m.send_error(SendErrorKind::connection);
                    }
                });
            }
        });
        let text = m.render();
        assert!(text.contains("brief_messages_sent_total 20000\n"), "{text}");
        assert!(text.contains("brief_send_errors_total{kind=\"connection\"} 20000\n"));
    }

    #[test]
    fn label_values_past_the_bound_fold_into_other() {
        let m = Metrics::new();
        for i in 0..MAX_LABEL_VALUES + 10 {
            m.feed_failure(&format!("https://example.org/{i}"));
        }
        // A URL seen before the bound keeps its own series.
        m.feed_failure("https://example.org/0");
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("brief_feed_failures_total{"))
            .count();
        assert_eq!(series, MAX_LABEL_VALUES + 1, "{text}");
        assert!(text.contains("brief_feed_failures_total{url=\"_other\"} 10\n"));
        assert!(text.contains("brief_feed_failures_total{url=\"https://example.org/0\"} 2\n"));
        assert!(!text.contains(&format!("url=\"https://example.org/{MAX_LABEL_VALUES}\"")));
    }

    #[test]
    fn concurrent_new_label_values_stay_within_the_bound() {
        let m = Metrics::new();
        std::thread::scope(|s| {
            for t in 0..4 {
                let m = &m;
                s.spawn(move || {
                    for i in 0..MAX_LABEL_VALUES {
                        m.feed_failure(&format!("https://example.org/{t}/{i}"));
                    }
                });
            }
        });
        let text = m.render();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("brief_feed_failures_total{"))
            .collect();
        assert_eq!(lines.len(), MAX_LABEL_VALUES + 1);
        let total: u64 = lines
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum();
        assert_eq!(
            total,
            4 * MAX_LABEL_VALUES as u64,
            "every failure is counted"
        );
    }
}
