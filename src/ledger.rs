//! The ledger: campaigns, per-recipient deliveries and the suppression list, in one SQLite file.
//!
//! Only this module touches the database. It runs in WAL mode with versioned migrations. A
//! campaign is unique per issue; a delivery is unique per (campaign, lowercased address), which is
//! what makes a re-run resume instead of mailing the list again. Times are Unix milliseconds
//! passed in by the caller: the ledger never reads the clock.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::{bail, Context};
use lettre::Address;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::address::AddressKey;
use crate::issue::IssueId;

/// A campaign's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CampaignId(i64);

#[cfg(test)]
impl CampaignId {
    /// An id for code under test that takes a [`Campaign`] without reading the ledger.
    pub(crate) fn for_tests(id: i64) -> CampaignId {
        CampaignId(id)
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ToSql for CampaignId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for CampaignId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(CampaignId)
    }
}

/// A value the ledger stores as one of a fixed set of words.
trait Word: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

/// Reads a [`Word`] back, refusing any text this brief does not know.
fn word_from_sql<W: Word>(value: ValueRef<'_>) -> FromSqlResult<W> {
    let text = value.as_str()?;
    W::ALL
        .iter()
        .copied()
        .find(|w| w.as_str() == text)
        .ok_or_else(|| FromSqlError::Other(format!("unknown value `{text}` in the ledger").into()))
}

/// Makes an enum a [`Word`]: `words!(State { Pending => "pending", ... })` gives it `ALL`,
/// `as_str`, and its SQL, serde and `Display` conversions, from that one list.
macro_rules! words {
    ($t:ident { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            /// Every value, in declaration order.
            pub const ALL: [$t; [$($s),+].len()] = [$($t::$v),+];

            /// The word stored in the ledger and printed in reports.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($t::$v => $s),+
                }
            }
        }
        impl Word for $t {
            const ALL: &'static [$t] = &$t::ALL;
            fn as_str(self) -> &'static str {
                $t::as_str(self)
            }
        }
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                word_from_sql(value)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// The state of one delivery: `pending -> sending -> sent | deferred | failed`, or `suppressed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Sending,
    Sent,
    Deferred,
    Failed,
    Suppressed,
}

words!(State {
    Pending => "pending",
    Sending => "sending",
    Sent => "sent",
    Deferred => "deferred",
    Failed => "failed",
    Suppressed => "suppressed",
});

/// Why an address is on the suppression list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Unsubscribed,
    Bounced,
    /// The reader marked a message as spam.
    Complained,
}

words!(Reason {
    Unsubscribed => "unsubscribed",
    Bounced => "bounced",
    Complained => "complained",
});

/// What came back about a delivery after it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceKind {
    /// A permanent failure (5.x.x).
    Hard,
    /// A temporary one (4.x.x, or delayed).
    Soft,
    /// The reader reported the message as spam.
    Complaint,
}

words!(BounceKind {
    Hard => "hard",
    Soft => "soft",
    Complaint => "complaint",
});

/// A delivery a bounce or complaint is about, as [`Ledger::bounce_target`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BounceTarget {
    pub delivery: i64,
    pub campaign: CampaignId,
    pub issue: String,
    /// The address as the list spelled it.
    pub address: String,
}

/// One bounce or complaint to record (see [`Ledger::record_bounce`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBounce<'a> {
    pub kind: BounceKind,
    /// What makes the same report recognisable when it comes again: its Message-ID, or a hash
    /// of its bytes.
    pub report_key: &'a str,
    pub status: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
    pub reporting_mta: Option<&'a str>,
    pub at: i64,
}

/// What [`Ledger::record_bounce`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceOutcome {
    /// The same report was recorded before for this delivery: nothing changed.
    Duplicate,
    /// Recorded; the address was suppressed for this reason by it (`None`: not suppressed by
    /// this report, e.g. a soft bounce under the limit, or an address suppressed already).
    Recorded { suppressed: Option<Reason> },
}

/// What started a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Staff, with `brief send`.
    Cli,
    /// The daemon's monthly schedule.
    Schedule,
    /// Staff, with the console's "Send now".
    Staff,
}

words!(Trigger {
    Cli => "cli",
    Schedule => "schedule",
    Staff => "staff",
});

/// Whether a campaign's readers may be mailed (see [`Ledger::gate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// In its canary window, until this time (ms).
    Canary {
        until: i64,
    },
    /// Held by staff since this time (ms).
    Held {
        since: i64,
    },
}

/// What [`Ledger::hold_campaign`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    Held,
    AlreadyHeld {
        since: i64,
    },
    /// Readers were reached already (or the campaign finished): nothing changed.
    TooLate {
        reached: u64,
    },
    NoCampaign,
}

/// One canary copy: the campaign's message mailed to a staff address before the readers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanarySend {
    pub address: String,
    pub accepted: bool,
    pub code: Option<u16>,
    pub text: String,
    pub at: i64,
}

/// Which summary mail of a campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryKind {
    /// When the campaign finishes.
    AtFinish,
    /// A day later, with the bounces, complaints and unsubscribes since.
    FollowUp,
}

/// What a summary of a campaign reports (see [`Ledger::summary_facts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryFacts {
    pub counts: Counts,
    /// When the first reader was tried (the send's start, after any canary window).
    pub first_attempt: Option<i64>,
    /// The most frequent last replies of failed and deferred deliveries: code, text, count.
    pub failures: Vec<(Option<u16>, String, u64)>,
    pub bounces: SummaryBounces,
}

/// Readers of a campaign with a bounce or complaint reported, and unsubscribes since its send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SummaryBounces {
    pub hard: u64,
    pub soft: u64,
    pub complaints: u64,
    pub unsubscribes: u64,
}

/// The checks run before a scheduled fire, as mailed to staff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preflight {
    pub issue: IssueId,
    /// The fire they were run for (ms).
    pub fire_at: i64,
    pub ran_at: i64,
    /// How many problems they found (0: ready).
    pub problems: u64,
    /// The report, as text.
    pub report: String,
}

/// One campaign: the sending of one issue.
#[derive(Clone, Debug, PartialEq)]
pub struct Campaign {
    pub id: CampaignId,
    pub issue: IssueId,
    pub subject: String,
    pub finished: bool,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub trigger: Trigger,
    /// The end of its canary window: no reader is mailed before it (`None`: no window).
    pub release_at: Option<i64>,
    /// When staff held it: no reader is mailed until they release it.
    pub held_at: Option<i64>,
}

impl Gate {
    /// The gate of a campaign held since `held_at` (if held) whose window ends at
    /// `release_at` (if it has one), at `now`: the one rule, for the ledger's claims and for
    /// what the CLI and the console show.
    fn of(held_at: Option<i64>, release_at: Option<i64>, now: i64) -> Gate {
        match (held_at, release_at) {
            (Some(since), _) => Gate::Held { since },
            (None, Some(until)) if until > now => Gate::Canary { until },
            _ => Gate::Open,
        }
    }
}

impl Campaign {
    /// Whether its readers may be mailed at `now`, as this copy of its row says (the
    /// ledger's [`Ledger::gate`] reads the row again).
    pub fn gate(&self, now: i64) -> Gate {
        Gate::of(self.held_at, self.release_at, now)
    }

    /// Its state in one word at `now`: `finished`, `held` (by staff), `canary` (in its
    /// canary window) or `sending`.
    pub fn state_word(&self, now: i64) -> &'static str {
        match self.gate(now) {
            _ if self.finished => "finished",
            Gate::Held { .. } => "held",
            Gate::Canary { .. } => "canary",
            Gate::Open => "sending",
        }
    }
}

/// Deliveries of a campaign by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub suppressed: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.pending + self.sending + self.sent + self.deferred + self.failed + self.suppressed
    }

    pub fn get(&self, s: State) -> u64 {
        match s {
            State::Pending => self.pending,
            State::Sending => self.sending,
            State::Sent => self.sent,
            State::Deferred => self.deferred,
            State::Failed => self.failed,
            State::Suppressed => self.suppressed,
        }
    }

    fn slot(&mut self, s: State) -> &mut u64 {
        match s {
            State::Pending => &mut self.pending,
            State::Sending => &mut self.sending,
            State::Sent => &mut self.sent,
            State::Deferred => &mut self.deferred,
            State::Failed => &mut self.failed,
            State::Suppressed => &mut self.suppressed,
        }
    }
}

/// A delivery claimed for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The delivery's row id: what its VERP tag names.
    pub id: i64,
    /// The address as the list spelled it.
    pub address: String,
    pub key: AddressKey,
    pub name: Option<String>,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// The outcome of one attempt, to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// The address as claimed (any case).
    pub address: String,
    pub key: AddressKey,
    /// `Sent`, `Deferred` or `Failed`.
    pub state: State,
    pub code: Option<u16>,
    pub text: String,
    /// For `Deferred`: when to try again.
    pub next_at: Option<i64>,
    /// The reply to the final dot was lost: the reader may get this message twice.
    pub possible_duplicate: bool,
    /// Put the address on the suppression list (a 5.1.x "no such user" bounce).
    pub suppress: bool,
    pub at: i64,
}

/// One row of the per-recipient report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DeliveryRow {
    pub address: String,
    pub name: Option<String>,
    pub state: State,
    pub attempts: u32,
    pub last_code: Option<u16>,
    pub last_text: Option<String>,
    pub message_id: String,
    pub first_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub possible_duplicate: bool,
    /// The revision of the campaign's message it was last attempted with (see
    /// [`CampaignMessage::revision`]); `None` before any attempt.
    pub revision: Option<u32>,
    /// The latest bounce or complaint reported after the send: kind, status, diagnostic and
    /// reporting MTA (`hard 5.1.1: 550 ... (mx.example.net)`).
    pub bounce: Option<String>,
}

/// One suppressed address, as [`Ledger::recent_suppressions`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressionRow {
    pub address: String,
    pub reason: Reason,
    pub detail: Option<String>,
    pub at: i64,
}

/// What a campaign sends: its message, fixed when the campaign starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignMessage {
    /// 1 for the message the campaign started with; one more for each `--restart-unsent`.
    pub revision: u32,
    pub subject: String,
    /// The pre-encoded message (`MessageTemplate::freeze`).
    pub template: String,
    /// The web version shown in the archive.
    pub web: String,
    /// The fingerprint of the issue folder this was rendered from (`None`: no folder).
    pub folder_hash: Option<String>,
    /// How many deliveries were still to send when this revision took over.
    pub unsent: u64,
    pub at: i64,
}

/// Adds recipients to a campaign being created (see [`Ledger::create_campaign`]).
pub struct RecipientSink<'t> {
    st: rusqlite::Statement<'t>,
    forgotten: rusqlite::Statement<'t>,
    campaign: CampaignId,
}

impl RecipientSink<'_> {
    /// Adds one recipient; returns false when the address (in any case) is already there.
    /// A suppressed address is recorded as suppressed.
    pub fn add(
        &mut self,
        address: &Address,
        name: Option<&str>,
        message_id: &str,
    ) -> anyhow::Result<bool> {
        Ok(self.st.execute(params![
            self.campaign,
            address.as_ref() as &str,
            AddressKey::of(address).as_str(),
            name,
            message_id
        ])? == 1)
    }

    /// Adds the reader whose address was forgotten (see [`Ledger::forget`]) by its keyed hash
    /// `hash`, as suppressed, with neither address nor name; false when already there.
    pub fn add_forgotten(&mut self, hash: &str) -> anyhow::Result<bool> {
        Ok(self
            .forgotten
            .execute(params![self.campaign, FORGOTTEN, hash])?
            == 1)
    }
}

/// What a forgotten reader's address, name and Message-ID become in past deliveries.
pub const FORGOTTEN: &str = "forgotten";

/// What [`Ledger::forget`] erased, in rows per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forgot {
    pub subscribers: u64,
    pub signups: u64,
    pub suppressions: u64,
    pub test_sends: u64,
    pub confirmation_sends: u64,
    /// Deliveries of past campaigns made anonymous.
    pub deliveries: u64,
    /// The address had been forgotten before.
    pub already: bool,
    /// The file was rebuilt and the WAL emptied, so no copy of the erased rows is left on disk.
    pub scrubbed: bool,
}

/// A subscriber held in the database (added with `brief subscribers add` or `import`).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSubscriber {
    pub address: String,
    pub name: Option<String>,
}

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sending', 'finished')),
        trigger TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
        address TEXT NOT NULL,
        address_key TEXT NOT NULL,
        name TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'deferred', 'failed', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_code INTEGER,
        last_text TEXT,
        message_id TEXT NOT NULL,
        first_attempt_at INTEGER,
        last_attempt_at INTEGER,
        next_attempt_at INTEGER,
        possible_duplicate INTEGER NOT NULL DEFAULT 0,
        UNIQUE (campaign_id, address_key)
    );
    CREATE INDEX deliveries_by_state ON deliveries (campaign_id, state, next_attempt_at);
    CREATE TABLE suppressions (
        address_key TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced')),
        detail TEXT,
        at INTEGER NOT NULL
    );
    CREATE TABLE subscribers (
        address_key TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        name TEXT,
        added_at INTEGER NOT NULL
    );
    CREATE TABLE feed_items (
        item_key TEXT PRIMARY KEY,
        feed_url TEXT NOT NULL,
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id)
    );
    CREATE TABLE test_sends (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL,
        address TEXT NOT NULL,
        code INTEGER,
        text TEXT NOT NULL,
        at INTEGER NOT NULL
    );",
    // 2: schedule fires missed while the daemon was down, so each is reported once.
    "CREATE TABLE missed_fires (
        issue TEXT PRIMARY KEY,
        fired_at INTEGER NOT NULL,
        reported_at INTEGER NOT NULL
    );",
    // 3: what a campaign sends, fixed when it starts (revision 1) and changed only on purpose
    // (`--restart-unsent`: revision 2, ...); the revision each delivery was sent.
    "CREATE TABLE campaign_messages (
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
        revision INTEGER NOT NULL,
        subject TEXT NOT NULL,
        template TEXT NOT NULL,
        web TEXT NOT NULL,
        folder_hash TEXT,
        unsent INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, revision)
    );
    ALTER TABLE deliveries ADD COLUMN revision INTEGER;",
    // 4: readers who join by themselves: requests waiting for confirmation, the consent of
    // those who confirmed, and the confirmation messages sent.
    "CREATE TABLE signups (
        address_key TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        name TEXT,
        requested_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        mailed_at INTEGER
    );
    ALTER TABLE subscribers ADD COLUMN source TEXT NOT NULL DEFAULT 'staff';
    ALTER TABLE subscribers ADD COLUMN requested_at INTEGER;
    ALTER TABLE subscribers ADD COLUMN confirmed_at INTEGER;
    CREATE TABLE confirmation_sends (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        code INTEGER,
        text TEXT NOT NULL,
        at INTEGER NOT NULL
    );",
    // 5: a third reason to suppress an address, `complained` (SQLite cannot alter a CHECK: the
    // table is rebuilt), and the keyed hashes of the addresses whose owners asked to be
    // forgotten, which keep them suppressed without keeping them.
    "CREATE TABLE suppressions_new (
        address_key TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'complained')),
        detail TEXT,
        at INTEGER NOT NULL
    );
    INSERT INTO suppressions_new (address_key, address, reason, detail, at)
        SELECT address_key, address, reason, detail, at FROM suppressions;
    DROP TABLE suppressions;
    ALTER TABLE suppressions_new RENAME TO suppressions;
    CREATE TABLE forgotten (
        hash TEXT PRIMARY KEY,
        at INTEGER NOT NULL
    );",
    // 6: staff sign-in: the ids of emailed sign-in links already used (each works once; kept
    // until the link expires), and the sessions, by the hash of their id (never the id).
    "CREATE TABLE staff_links_used (
        id TEXT PRIMARY KEY,
        used_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE staff_sessions (
        id_hash TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );",
    // 7: bounces and complaints that came back after a delivery, one row per report and
    // delivery (the same report processed twice is one row), and a way to find a delivery by
    // the Message-ID a report returns.
    "CREATE TABLE bounces (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
        report_key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
        status TEXT,
        diagnostic TEXT,
        reporting_mta TEXT,
        at INTEGER NOT NULL,
        UNIQUE (report_key, delivery_id)
    );
    CREATE INDEX bounces_delivery ON bounces (delivery_id);
    CREATE INDEX deliveries_message_id ON deliveries (message_id);",
    // 8: confidence around a send. A canary window (readers wait until `release_at`, staff may
    // hold the campaign meanwhile) and the copies mailed to staff first, apart from the
    // deliveries so they never count as readers; when each summary mail to staff went (those
    // of campaigns finished before this version count as sent, so an upgrade mails nothing
    // old); and the checks run before each scheduled fire.
    "ALTER TABLE campaigns ADD COLUMN release_at INTEGER;
    ALTER TABLE campaigns ADD COLUMN held_at INTEGER;
    ALTER TABLE campaigns ADD COLUMN summary_at INTEGER;
    ALTER TABLE campaigns ADD COLUMN followup_at INTEGER;
    UPDATE campaigns SET summary_at = coalesce(finished_at, created_at),
        followup_at = coalesce(finished_at, created_at) WHERE state = 'finished';
    CREATE TABLE canary_sends (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
        address TEXT NOT NULL,
        accepted INTEGER NOT NULL,
        code INTEGER,
        text TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE preflights (
        issue TEXT NOT NULL,
        fire_at INTEGER NOT NULL,
        ran_at INTEGER NOT NULL,
        problems INTEGER NOT NULL,
        report TEXT NOT NULL,
        PRIMARY KEY (issue, fire_at)
    );",
];

/// A new staff session (see [`Ledger::sign_in_staff`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStaffSession<'a> {
    /// The random id of the sign-in link used, and when that link expires.
    pub link_id: &'a str,
    pub link_expires_at: i64,
    /// The hash of the session id (the id itself stays in the staff member's cookie).
    pub id_hash: &'a str,
    pub address: &'a str,
    pub expires_at: i64,
}

/// What became of a sign-up request (see [`Ledger::request_signup`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupRequest {
    /// Noted: mail the confirmation now.
    Mail,
    /// A confirmation went to this address less than the minimum gap ago: none now.
    TooSoon,
    /// The address was forgotten at its owner's request: nothing noted, nothing to send.
    Forgotten,
}

/// What became of a confirmation (see [`Ledger::confirm_signup`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The address is active now.
    Subscribed,
    /// It was active with its consent already: nothing changed.
    Already,
    /// The address was forgotten at its owner's request: nothing changed.
    Forgotten,
}

/// A sign-up waiting for its confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signup {
    pub address: String,
    pub name: Option<String>,
    pub requested_at: i64,
    pub expires_at: i64,
}

/// How a subscriber held in the database came to be there, and their consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    /// `staff` (`subscribers add` or `import`) or `form` (confirmed by the reader).
    pub source: String,
    pub requested_at: Option<i64>,
    pub confirmed_at: Option<i64>,
}

/// What [`Ledger::claim_due`] reads: due pending deliveries (`?1` campaign, `?2` limit), then
/// due deferred ones (`?3` now), each with whether its address is suppressed.
const CLAIM_QUERIES: [&str; 2] = [
    "SELECT d.id, d.address, d.address_key, d.name, d.attempts, s.address_key IS NOT NULL
     FROM deliveries d LEFT JOIN suppressions s ON s.address_key = d.address_key
     WHERE d.campaign_id = ?1 AND d.state = 'pending'
     ORDER BY d.next_attempt_at, d.id LIMIT ?2",
    "SELECT d.id, d.address, d.address_key, d.name, d.attempts, s.address_key IS NOT NULL
     FROM deliveries d LEFT JOIN suppressions s ON s.address_key = d.address_key
     WHERE d.campaign_id = ?1 AND d.state = 'deferred' AND d.next_attempt_at <= ?3
     ORDER BY d.next_attempt_at, d.id LIMIT ?2",
];

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: std::path::PathBuf,
}

/// One ledger connection shared by tasks (the daemon's scheduler and HTTP handlers, a send
/// run's dispatcher and recorder). Calls run off the async threads, one at a time.
///
/// One policy for a poisoned lock: go on. A panic inside a call cannot leave the database half
/// written, since an unfinished transaction rolls back when it is dropped, so the connection
/// is as good as before; refusing every later call would only turn one bug into an outage.
#[derive(Clone)]
pub struct SharedLedger(Arc<Mutex<Ledger>>);

impl SharedLedger {
    pub fn new(ledger: Ledger) -> SharedLedger {
        SharedLedger(Arc::new(Mutex::new(ledger)))
    }

    /// The connection, for code that already runs off the async threads.
    pub fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection in tokio's blocking pool.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ledger) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || f(&mut shared.lock()))
            .await
            .context("a ledger task panicked")?
    }
}

/// Held while a process sends a campaign; the operating system releases it when the process
/// ends, however it ends.
#[derive(Debug)]
pub struct CampaignLock {
    _file: std::fs::File,
}

impl Ledger {
    /// Opens (creating it and its folder if needed) the ledger at `path` and migrates it.
    pub fn open(path: &Path) -> anyhow::Result<Ledger> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
        }
        // Switching a new file to WAL answers "database is locked" at once, without waiting,
        // to a second process doing the same: opening is serialized by a file lock beside it.
        let lock_path = path.with_file_name(format!(
            "{}.open.lock",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("brief.db")
        ));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the ledger {}", path.display()))?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger
            .setup()
            .with_context(|| format!("cannot prepare the ledger {}", path.display()))?;
        drop(lock);
        Ok(ledger)
    }

    fn setup(&mut self) -> anyhow::Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("the ledger could not switch to WAL mode (it is in {mode} mode)");
        }
        // NORMAL in WAL mode survives a killed process (the WAL is in the OS's hands); only a
        // power loss can take back the last commits.
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        let version =
            self.conn
                .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        if version > MIGRATIONS.len() {
            bail!(
                "the ledger has schema version {version}, newer than this brief knows ({}): upgrade brief",
                MIGRATIONS.len()
            );
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            // Write-locked before the version is read again: of two processes opening a fresh
            // ledger at once, the second waits, then finds the migration done.
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
            if now <= i {
                tx.execute_batch(m)
                    .with_context(|| format!("migration {} failed", i + 1))?;
                tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// Takes the campaign's send lock (a file lock beside the database), so that two processes
    /// (staff running `brief send` while the daemon resumes, say) never send one campaign at
    /// once. Fails at once, naming the campaign, when another process holds it.
    pub fn lock_campaign(&self, campaign: &Campaign) -> anyhow::Result<CampaignLock> {
        let name = format!(
            "{}.{}.lock",
            self.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("brief.db"),
            campaign.issue
        );
        let path = self.path.with_file_name(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the send lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(CampaignLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "issue {} is being sent by another brief process (lock {}): let it finish, or stop it first",
                campaign.issue,
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// The campaign of `issue`, if there is one.
    pub fn campaign(&self, issue: IssueId) -> anyhow::Result<Option<Campaign>> {
        campaign_by_issue(&self.conn, issue)
    }

    /// Every campaign, newest issue first.
    pub fn campaigns(&self) -> anyhow::Result<Vec<Campaign>> {
        let mut st = self.conn.prepare(
            "SELECT id, issue, subject, state, created_at, finished_at, trigger, release_at, held_at FROM campaigns ORDER BY issue DESC",
        )?;
        let rows = st.query_map([], campaign_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates the campaign of `issue` unless it exists; returns it and whether it is new. A new
    /// campaign's message (revision 1 of `message`) is stored and its recipients are added by
    /// `fill` in the same transaction, so a campaign never exists without its list or without
    /// what it sends. Two processes racing here get the same campaign: the issue is a unique
    /// key.
    pub fn create_campaign(
        &mut self,
        issue: IssueId,
        message: &CampaignMessage,
        trigger: Trigger,
        now: i64,
        release_at: Option<i64>,
        fill: impl FnOnce(&mut RecipientSink<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<(Campaign, bool)> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO campaigns (issue, subject, state, trigger, created_at, release_at)
             VALUES (?1, ?2, 'sending', ?3, ?4, ?5)",
            params![issue.to_string(), message.subject, trigger, now, release_at],
        )?;
        if n == 1 {
            let campaign = CampaignId(tx.last_insert_rowid());
            let mut sink = RecipientSink {
                st: tx.prepare(
                    "INSERT OR IGNORE INTO deliveries (campaign_id, address, address_key, name, state, message_id)
                     VALUES (?1, ?2, ?3, ?4,
                             CASE WHEN EXISTS (SELECT 1 FROM suppressions WHERE address_key = ?3) THEN 'suppressed' ELSE 'pending' END,
                             ?5)",
                )?,
                forgotten: tx.prepare(
                    "INSERT OR IGNORE INTO deliveries (campaign_id, address, address_key, name, state, message_id)
                     VALUES (?1, ?2, ?3, NULL, 'suppressed', ?2)",
                )?,
                campaign,
            };
            fill(&mut sink)?;
            drop(sink);
            let unsent: i64 = tx.query_row(
                "SELECT count(*) FROM deliveries WHERE campaign_id = ?1 AND state = 'pending'",
                [campaign],
                |r| r.get(0),
            )?;
            insert_message(
                &tx,
                campaign,
                &CampaignMessage {
                    revision: 1,
                    unsent: unsent as u64,
                    ..message.clone()
                },
            )?;
        }
        tx.commit()?;
        let c = self.campaign(issue)?.expect("just inserted");
        Ok((c, n == 1))
    }

    /// The message `campaign` sends now (its latest revision); `None` for a campaign started by
    /// a brief that did not store it.
    pub fn campaign_message(
        &self,
        campaign: CampaignId,
    ) -> anyhow::Result<Option<CampaignMessage>> {
        Ok(self
            .conn
            .query_row(
                "SELECT revision, subject, template, web, folder_hash, unsent, at
                 FROM campaign_messages WHERE campaign_id = ?1 ORDER BY revision DESC LIMIT 1",
                [campaign],
                |r| {
                    Ok(CampaignMessage {
                        revision: r.get(0)?,
                        subject: r.get(1)?,
                        template: r.get(2)?,
                        web: r.get(3)?,
                        folder_hash: r.get(4)?,
                        unsent: r.get::<_, i64>(5)? as u64,
                        at: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// Makes `message` what `campaign` sends from now on, as its next revision, for the
    /// deliveries not yet sent (staff correcting an issue mid-campaign, on purpose). Returns
    /// the new revision. Call it holding the campaign's send lock.
    pub fn revise_campaign(
        &mut self,
        campaign: CampaignId,
        message: &CampaignMessage,
    ) -> anyhow::Result<u32> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let last: Option<u32> = tx.query_row(
            "SELECT max(revision) FROM campaign_messages WHERE campaign_id = ?1",
            [campaign],
            |r| r.get(0),
        )?;
        let unsent: i64 = tx.query_row(
            "SELECT count(*) FROM deliveries
             WHERE campaign_id = ?1 AND state IN ('pending', 'sending', 'deferred')",
            [campaign],
            |r| r.get(0),
        )?;
        let revision = last.unwrap_or(1) + 1;
        insert_message(
            &tx,
            campaign,
            &CampaignMessage {
                revision,
                unsent: unsent as u64,
                ..message.clone()
            },
        )?;
        tx.execute(
            "UPDATE campaigns SET subject = ?2 WHERE id = ?1",
            params![campaign, message.subject],
        )?;
        tx.commit()?;
        Ok(revision)
    }

    /// Deliveries of a campaign by state.
    pub fn counts(&self, campaign: CampaignId) -> anyhow::Result<Counts> {
        let mut st = self.conn.prepare_cached(
            "SELECT state, count(*) FROM deliveries WHERE campaign_id = ?1 GROUP BY state",
        )?;
        let mut counts = Counts::default();
        let rows = st.query_map([campaign], |r| {
            Ok((r.get::<_, State>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        for row in rows {
            let (s, n) = row?;
            *counts.slot(s) = n;
        }
        Ok(counts)
    }

    /// Puts deliveries left `sending` by a run that was killed back to `pending`, flagged
    /// `possible_duplicate`; returns how many. They may or may not have reached the server: this
    /// is where the at-most-in-flight duplicates of a crash come from, and the flag is how the
    /// report names the readers who may have them.
    pub fn reset_in_flight(&mut self, campaign: CampaignId) -> anyhow::Result<u64> {
        Ok(self.conn.execute(
            "UPDATE deliveries SET state = 'pending', possible_duplicate = 1
             WHERE campaign_id = ?1 AND state = 'sending'",
            [campaign],
        )? as u64)
    }

    /// Puts the deliveries a run claimed and never handed to the server (it was stopping) back
    /// to `pending`, unflagged; returns how many. Only for the run's own claims, once every
    /// outcome of it is recorded: anything else left `sending` is [`Ledger::reset_in_flight`]'s.
    pub fn unclaim(&mut self, campaign: CampaignId) -> anyhow::Result<u64> {
        Ok(self.conn.execute(
            "UPDATE deliveries SET state = 'pending' WHERE campaign_id = ?1 AND state = 'sending'",
            [campaign],
        )? as u64)
    }

    /// Claims up to `limit` deliveries that are due at `now` (pending ones in list order, then
    /// deferred ones whose time has come, oldest first), marking them `sending`. A delivery whose
    /// address was suppressed since the campaign began is marked suppressed when it comes due,
    /// instead of being claimed.
    ///
    /// Both queries read the `(campaign_id, state, next_attempt_at)` index in its own order
    /// (pending rows all have a NULL `next_attempt_at`), and the suppression check is one key
    /// lookup per row: a claim costs what it returns, whatever the length of the list.
    pub fn claim_due(
        &mut self,
        campaign: CampaignId,
        now: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<Due>> {
        // Immediate: a hold landing between the gate's read and the claim's writes would
        // otherwise fail this transaction instead of waiting for it.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if gate_in(&tx, campaign, now)? != Gate::Open {
            return Ok(Vec::new());
        }
        let mut due = Vec::with_capacity(limit);
        {
            let mut mark = tx.prepare_cached("UPDATE deliveries SET state = ?2 WHERE id = ?1")?;
            for (pass, sql) in CLAIM_QUERIES.into_iter().enumerate() {
                let mut st = tx.prepare_cached(sql)?;
                // Suppressed rows leave the state they were read in, so asking again for the
                // shortfall makes progress.
                while due.len() < limit {
                    let want = limit - due.len();
                    // Read first, then update: rows must not change under a running query.
                    let map = |r: &rusqlite::Row<'_>| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            Due {
                                id: r.get(0)?,
                                address: r.get(1)?,
                                key: AddressKey::from_text(&r.get::<_, String>(2)?),
                                name: r.get(3)?,
                                attempts: r.get(4)?,
                            },
                            r.get::<_, bool>(5)?,
                        ))
                    };
                    let rows = if pass == 0 {
                        st.query_map(params![campaign, want as i64], map)?
                            .collect::<Result<Vec<_>, _>>()?
                    } else {
                        st.query_map(params![campaign, want as i64, now], map)?
                            .collect::<Result<Vec<_>, _>>()?
                    };
                    let got = rows.len();
                    for (id, d, suppressed) in rows {
                        if suppressed {
                            mark.execute(params![id, State::Suppressed])?;
                        } else {
                            mark.execute(params![id, State::Sending])?;
                            due.push(d);
                        }
                    }
                    if got < want {
                        break;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(due)
    }

    /// Records outcomes in one transaction (the group commit of the send engine).
    pub fn record(&mut self, campaign: CampaignId, attempts: &[Attempt]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        record_in(&tx, campaign, attempts)?;
        tx.commit()?;
        Ok(())
    }

    /// Puts claimed deliveries that were not attempted (no connection could be opened, or the
    /// run is stopping) back to `pending`, their attempts unchanged.
    pub fn release(&mut self, campaign: CampaignId, keys: &[AddressKey]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "UPDATE deliveries SET state = 'pending'
                 WHERE campaign_id = ?1 AND address_key = ?2 AND state = 'sending'",
            )?;
            for key in keys {
                st.execute(params![campaign, key.as_str()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Takes back attempts that were the relay's fault, not the readers' (the circuit breaker's
    /// streak): each delivery goes back to `pending` with the attempts it had before (the
    /// second element), as if never attempted. Its last reply stays, so the report says what
    /// happened. A delivery sent meanwhile is left alone. Returns how many went back.
    pub fn undo_attempts(
        &mut self,
        campaign: CampaignId,
        deliveries: &[(AddressKey, u32)],
    ) -> anyhow::Result<u64> {
        let tx = self.conn.transaction()?;
        let mut back = 0;
        {
            let mut st = tx.prepare_cached(
                "UPDATE deliveries SET state = 'pending', attempts = ?3, next_attempt_at = NULL
                 WHERE campaign_id = ?1 AND address_key = ?2
                   AND state IN ('pending', 'sending', 'deferred', 'failed')",
            )?;
            for (key, attempts) in deliveries {
                back += st.execute(params![campaign, key.as_str(), attempts])? as u64;
            }
        }
        tx.commit()?;
        Ok(back)
    }

    /// How many `failed` deliveries of the campaign [`Self::retry_failed`] would put back: those
    /// whose address is not suppressed.
    pub fn retryable_failed(&self, campaign: CampaignId) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM deliveries d
             WHERE d.campaign_id = ?1 AND d.state = 'failed'
               AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address_key = d.address_key)",
            [campaign],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Puts the campaign's `failed` deliveries whose address is not suppressed back to
    /// `pending` with no attempt counted, and marks the campaign unfinished again (staff fixed
    /// a cause brief could not see). The last reply stays, noted as what the retry follows.
    /// Returns how many went back. Call it holding the campaign's send lock.
    pub fn retry_failed(&mut self, campaign: CampaignId) -> anyhow::Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let back = tx.execute(
            "UPDATE deliveries
             SET state = 'pending', attempts = 0, next_attempt_at = NULL,
                 last_text = CASE WHEN last_text LIKE 'retried with --retry-failed after: %'
                                  THEN last_text
                                  ELSE 'retried with --retry-failed after: ' || coalesce(last_text, '')
                             END
             WHERE campaign_id = ?1 AND state = 'failed'
               AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address_key = deliveries.address_key)",
            [campaign],
        )? as u64;
        if back > 0 {
            tx.execute(
                "UPDATE campaigns SET state = 'sending', finished_at = NULL WHERE id = ?1",
                [campaign],
            )?;
        }
        tx.commit()?;
        Ok(back)
    }

    /// When the next deferred delivery of the campaign is due, if any.
    pub fn next_retry_at(&self, campaign: CampaignId) -> anyhow::Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT min(next_attempt_at) FROM deliveries WHERE campaign_id = ?1 AND state = 'deferred'",
            [campaign],
            |r| r.get(0),
        )?)
    }

    /// Marks the campaign finished when every delivery is final; returns whether it is finished.
    pub fn finish_if_done(&mut self, campaign: CampaignId, now: i64) -> anyhow::Result<bool> {
        let open: i64 = self.conn.query_row(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ?1 AND state IN ('pending', 'sending', 'deferred')",
            [campaign],
            |r| r.get(0),
        )?;
        if open > 0 {
            return Ok(false);
        }
        self.conn.execute(
            "UPDATE campaigns SET state = 'finished', finished_at = coalesce(finished_at, ?2) WHERE id = ?1",
            params![campaign, now],
        )?;
        Ok(true)
    }

    /// Calls `f` for each delivery of a campaign, in list order (streams: constant memory).
    pub fn each_delivery(
        &self,
        campaign: CampaignId,
        mut f: impl FnMut(DeliveryRow) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE campaign_id = ?1 ORDER BY id"
        ))?;
        let mut rows = st.query([campaign])?;
        while let Some(r) = rows.next()? {
            f(delivery_row(r)?)?;
        }
        Ok(())
    }

    /// Up to `limit` deliveries of a campaign, in list order, only those in `state` when it is
    /// given; and how many there are in all (in that state).
    pub fn deliveries(
        &self,
        campaign: CampaignId,
        state: Option<State>,
        limit: u32,
    ) -> anyhow::Result<(Vec<DeliveryRow>, u64)> {
        let total: i64 = self.conn.query_row(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ?1 AND (?2 IS NULL OR state = ?2)",
            params![campaign, state],
            |r| r.get(0),
        )?;
        let mut st = self.conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
                 WHERE campaign_id = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY id LIMIT ?3"
        ))?;
        let rows = st.query_map(params![campaign, state, limit], delivery_row)?;
        Ok((rows.collect::<Result<_, _>>()?, total as u64))
    }

    /// The latest `limit` suppressions (unsubscribes, bounces, complaints), newest first.
    pub fn recent_suppressions(&self, limit: u32) -> anyhow::Result<Vec<SuppressionRow>> {
        let mut st = self.conn.prepare(
            "SELECT address, reason, detail, at FROM suppressions ORDER BY at DESC, rowid DESC LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| {
            Ok(SuppressionRow {
                address: r.get(0)?,
                reason: r.get(1)?,
                detail: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Puts `address` on the suppression list; returns false when it already was.
    pub fn suppress(
        &mut self,
        address: &Address,
        reason: Reason,
        detail: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO suppressions (address_key, address, reason, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![AddressKey::of(address).as_str(), address.as_ref() as &str, reason, detail, now],
        )? == 1)
    }

    /// The delivery with row id `id` (from a VERP tag), if there is one.
    pub fn bounce_target(&self, id: i64) -> anyhow::Result<Option<BounceTarget>> {
        self.bounce_target_where("d.id = ?1", &id)
    }

    /// The delivery whose message had Message-ID `message_id` (without angle brackets), if
    /// there is one.
    pub fn bounce_target_by_message_id(
        &self,
        message_id: &str,
    ) -> anyhow::Result<Option<BounceTarget>> {
        self.bounce_target_where("d.message_id = ?1", &message_id)
    }

    fn bounce_target_where(
        &self,
        condition: &str,
        value: &dyn rusqlite::ToSql,
    ) -> anyhow::Result<Option<BounceTarget>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT d.id, d.campaign_id, c.issue, d.address FROM deliveries d
                     JOIN campaigns c ON c.id = d.campaign_id WHERE {condition} LIMIT 1"
                ),
                [value],
                |r| {
                    Ok(BounceTarget {
                        delivery: r.get(0)?,
                        campaign: r.get(1)?,
                        issue: r.get(2)?,
                        address: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records a bounce or complaint about `target` and applies the policy, in one
    /// transaction: a hard bounce suppresses the address as `bounced`, a complaint as
    /// `complained`, and `soft_limit` soft bounces in distinct campaigns as `bounced`. The
    /// same report (`report_key`) for the same delivery counts once. Suppression applies to
    /// every later campaign and to the rest of a running one; a reason already on the list
    /// stays.
    pub fn record_bounce(
        &mut self,
        target: &BounceTarget,
        b: &NewBounce<'_>,
        soft_limit: u32,
    ) -> anyhow::Result<BounceOutcome> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO bounces
                (delivery_id, report_key, kind, status, diagnostic, reporting_mta, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                target.delivery,
                b.report_key,
                b.kind,
                b.status,
                b.diagnostic,
                b.reporting_mta,
                b.at
            ],
        )?;
        if added == 0 {
            return Ok(BounceOutcome::Duplicate);
        }
        let key: String = tx.query_row(
            "SELECT address_key FROM deliveries WHERE id = ?1",
            [target.delivery],
            |r| r.get(0),
        )?;
        let reason = match b.kind {
            BounceKind::Hard => Some(Reason::Bounced),
            BounceKind::Complaint => Some(Reason::Complained),
            BounceKind::Soft => {
                let campaigns: i64 = tx.query_row(
                    "SELECT COUNT(DISTINCT d.campaign_id) FROM bounces b
                     JOIN deliveries d ON d.id = b.delivery_id
                     WHERE d.address_key = ?1 AND b.kind = 'soft'",
                    [&key],
                    |r| r.get(0),
                )?;
                (campaigns >= i64::from(soft_limit)).then_some(Reason::Bounced)
            }
        };
        let mut suppressed = None;
        if let Some(reason) = reason {
            let detail = match (b.kind, b.status) {
                (BounceKind::Soft, _) => format!("{soft_limit} soft bounces"),
                (_, Some(status)) => format!("{} {status}", b.kind),
                (_, None) => b.kind.to_string(),
            };
            let n = tx.execute(
                "INSERT OR IGNORE INTO suppressions (address_key, address, reason, detail, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, target.address, reason, detail, b.at],
            )?;
            if n == 1 {
                suppressed = Some(reason);
            }
        }
        tx.commit()?;
        Ok(BounceOutcome::Recorded { suppressed })
    }

    /// The latest bounce or complaint of every address that has one, by address key, as
    /// `kind status (date)`: what `brief subscribers list` shows.
    pub fn latest_bounces(&self) -> anyhow::Result<std::collections::HashMap<AddressKey, String>> {
        let mut st = self.conn.prepare(
            "SELECT d.address_key, b.kind, b.status, b.at
             FROM bounces b JOIN deliveries d ON d.id = b.delivery_id
             ORDER BY b.at, b.id",
        )?;
        let rows = st.query_map([], |r| {
            let kind: BounceKind = r.get(1)?;
            let status: Option<String> = r.get(2)?;
            let at: i64 = r.get(3)?;
            let day = chrono::DateTime::from_timestamp_millis(at)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let text = match status {
                Some(s) => format!("{kind} {s} ({day})"),
                None => format!("{kind} ({day})"),
            };
            Ok((AddressKey::from_text(&r.get::<_, String>(0)?), text))
        })?;
        // Later rows replace earlier ones: the latest wins.
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Why the address of `key` is suppressed, if it is.
    pub fn suppression(&self, key: &AddressKey) -> anyhow::Result<Option<Reason>> {
        Ok(self
            .conn
            .query_row(
                "SELECT reason FROM suppressions WHERE address_key = ?1",
                [key.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Adds a subscriber held in the database; returns false when the address was there.
    pub fn add_subscriber(
        &mut self,
        address: &Address,
        name: Option<&str>,
        now: i64,
    ) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO subscribers (address_key, address, name, added_at) VALUES (?1, ?2, ?3, ?4)",
            params![AddressKey::of(address).as_str(), address.as_ref() as &str, name, now],
        )? == 1)
    }

    /// Whether `key` is a subscriber held in the database.
    pub fn is_stored_subscriber(&self, key: &AddressKey) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM subscribers WHERE address_key = ?1",
                [key.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The subscribers held in the database, in the order they were added.
    pub fn stored_subscribers(&self) -> anyhow::Result<Vec<StoredSubscriber>> {
        let mut st = self
            .conn
            .prepare("SELECT address, name FROM subscribers ORDER BY added_at, rowid")?;
        let rows = st.query_map([], |r| {
            Ok(StoredSubscriber {
                address: r.get(0)?,
                name: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Notes that `address` asked to subscribe at `now` (a request that expires at
    /// `expires_at`), unless a confirmation went to it less than `min_gap` ms ago, or it was
    /// forgotten (`forget_hash` is its keyed hash, [`crate::token::TokenKey::forget_hash`]). A
    /// new request replaces an older one of the same address.
    pub fn request_signup(
        &mut self,
        address: &Address,
        name: Option<&str>,
        forget_hash: &str,
        now: i64,
        expires_at: i64,
        min_gap: i64,
    ) -> anyhow::Result<SignupRequest> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if forgotten_in(&tx, forget_hash)? {
            return Ok(SignupRequest::Forgotten);
        }
        let key = AddressKey::of(address);
        let mailed: Option<Option<i64>> = tx
            .query_row(
                "SELECT mailed_at FROM signups WHERE address_key = ?1",
                [key.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(Some(at)) = mailed {
            if now - at < min_gap {
                return Ok(SignupRequest::TooSoon);
            }
        }
        tx.execute(
            "INSERT INTO signups (address_key, address, name, requested_at, expires_at, mailed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?4)
             ON CONFLICT (address_key) DO UPDATE SET address = ?2, name = ?3, requested_at = ?4,
                 expires_at = ?5, mailed_at = ?4",
            params![
                key.as_str(),
                address.as_ref() as &str,
                name,
                now,
                expires_at
            ],
        )?;
        tx.commit()?;
        Ok(SignupRequest::Mail)
    }

    /// Makes the address of a confirmed request an active subscriber held in the database,
    /// with its consent: the time of the request, of the confirmation, and the source `form`.
    /// A confirmed request lifts a suppression (unsubscribed, bounced): its owner asked again.
    /// An address forgotten since the link was mailed (`forget_hash`, its keyed hash) stays
    /// forgotten.
    pub fn confirm_signup(
        &mut self,
        address: &Address,
        name: Option<&str>,
        forget_hash: &str,
        requested_at: i64,
        now: i64,
    ) -> anyhow::Result<Confirmed> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if forgotten_in(&tx, forget_hash)? {
            return Ok(Confirmed::Forgotten);
        }
        let key = AddressKey::of(address);
        let lifted = tx.execute(
            "DELETE FROM suppressions WHERE address_key = ?1",
            [key.as_str()],
        )?;
        tx.execute("DELETE FROM signups WHERE address_key = ?1", [key.as_str()])?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO subscribers
             (address_key, address, name, added_at, source, requested_at, confirmed_at)
             VALUES (?1, ?2, ?3, ?4, 'form', ?5, ?4)",
            params![
                key.as_str(),
                address.as_ref() as &str,
                name,
                now,
                requested_at
            ],
        )?;
        // Held already (added by staff, or confirmed before a leave): the consent is new.
        let consented = tx.execute(
            "UPDATE subscribers SET source = 'form', requested_at = ?2, confirmed_at = ?3
             WHERE address_key = ?1 AND confirmed_at IS NULL",
            params![key.as_str(), requested_at, now],
        )?;
        tx.commit()?;
        Ok(if lifted + added + consented > 0 {
            Confirmed::Subscribed
        } else {
            Confirmed::Already
        })
    }

    /// Deletes the sign-up requests that expired by `now`; returns how many.
    pub fn purge_expired_signups(&mut self, now: i64) -> anyhow::Result<u64> {
        Ok(self
            .conn
            .execute("DELETE FROM signups WHERE expires_at <= ?1", [now])? as u64)
    }

    /// The sign-up requests waiting for their confirmation, oldest first.
    pub fn signups(&self) -> anyhow::Result<Vec<Signup>> {
        let mut st = self.conn.prepare(
            "SELECT address, name, requested_at, expires_at FROM signups ORDER BY requested_at, rowid",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Signup {
                address: r.get(0)?,
                name: r.get(1)?,
                requested_at: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The consent of a subscriber held in the database, if it is one.
    pub fn consent(&self, key: &AddressKey) -> anyhow::Result<Option<Consent>> {
        Ok(self
            .conn
            .query_row(
                "SELECT source, requested_at, confirmed_at FROM subscribers WHERE address_key = ?1",
                [key.as_str()],
                |r| {
                    Ok(Consent {
                        source: r.get(0)?,
                        requested_at: r.get(1)?,
                        confirmed_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Marks a sign-in link used and opens its session, in one transaction: `false` (and no
    /// session) when the link was used before. Expired links and sessions are deleted on the way.
    pub fn sign_in_staff(&mut self, s: &NewStaffSession<'_>, now: i64) -> anyhow::Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM staff_links_used WHERE expires_at <= ?1", [now])?;
        tx.execute("DELETE FROM staff_sessions WHERE expires_at <= ?1", [now])?;
        let fresh = tx.execute(
            "INSERT OR IGNORE INTO staff_links_used (id, used_at, expires_at) VALUES (?1, ?2, ?3)",
            params![s.link_id, now, s.link_expires_at],
        )?;
        if fresh == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO staff_sessions (id_hash, address, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![s.id_hash, s.address, now, s.expires_at],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The staff address of the session whose id hashes to `id_hash`, if it has not expired
    /// by `now`.
    pub fn staff_session(&self, id_hash: &str, now: i64) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT address FROM staff_sessions WHERE id_hash = ?1 AND expires_at > ?2",
                params![id_hash, now],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Ends the session whose id hashes to `id_hash`; `false` if there was none.
    pub fn end_staff_session(&mut self, id_hash: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM staff_sessions WHERE id_hash = ?1", [id_hash])?
            > 0)
    }

    /// Records one confirmation message's reply (kept apart from every campaign).
    pub fn record_confirmation_send(
        &mut self,
        address: &Address,
        code: Option<u16>,
        text: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO confirmation_sends (address, code, text, at) VALUES (?1, ?2, ?3, ?4)",
            params![address.as_ref() as &str, code, text, now],
        )?;
        Ok(())
    }

    /// How many confirmation messages were recorded for `address`.
    pub fn confirmation_send_count(&self, address: &Address) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM confirmation_sends WHERE lower(address) = lower(?1)",
            [address.as_ref() as &str],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Every suppressed address (by its key) with its reason.
    pub fn suppressions(&self) -> anyhow::Result<Vec<(AddressKey, Reason)>> {
        let mut st = self
            .conn
            .prepare("SELECT address_key, reason FROM suppressions ORDER BY address_key")?;
        let rows = st.query_map([], |r| {
            Ok((AddressKey::from_text(&r.get::<_, String>(0)?), r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every suppressed address as the ledger spelled it, with its reason.
    pub fn suppressed_addresses(&self) -> anyhow::Result<Vec<(String, Reason)>> {
        let mut st = self
            .conn
            .prepare("SELECT address, reason FROM suppressions ORDER BY at, address_key")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The keyed hashes of every forgotten address.
    pub fn forgotten_hashes(&self) -> anyhow::Result<HashSet<String>> {
        let mut st = self.conn.prepare("SELECT hash FROM forgotten")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether the address of keyed hash `hash` was forgotten.
    pub fn is_forgotten(&self, hash: &str) -> anyhow::Result<bool> {
        forgotten_in(&self.conn, hash)
    }

    /// Erases what the ledger holds about the address of `key`, at its owner's request, in one
    /// transaction: its rows in `subscribers`, `signups`, `suppressions`, `test_sends` and
    /// `confirmation_sends` are deleted; in past campaigns' deliveries, the address, name and
    /// Message-ID become [`FORGOTTEN`], the key becomes `hash` (its keyed hash, unique like the
    /// key), a reply that named the address no longer does, and a delivery not yet sent or
    /// failed becomes `suppressed`. Only `hash` is kept, in `forgotten`, so that the address
    /// stays suppressed. Call it holding the send lock of every unfinished campaign.
    pub fn forget(&mut self, key: &AddressKey, hash: &str, now: i64) -> anyhow::Result<Forgot> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let k = key.as_str();
        let mut f = Forgot {
            already: forgotten_in(&tx, hash)?,
            ..Forgot::default()
        };
        f.subscribers = tx.execute("DELETE FROM subscribers WHERE address_key = ?1", [k])? as u64;
        f.signups = tx.execute("DELETE FROM signups WHERE address_key = ?1", [k])? as u64;
        f.suppressions = tx.execute("DELETE FROM suppressions WHERE address_key = ?1", [k])? as u64;
        // These keep the address as typed: compared by key in Rust (SQLite's lower() is ASCII).
        for table in ["test_sends", "confirmation_sends"] {
            let ids = {
                let mut st = tx.prepare(&format!("SELECT id, address FROM {table}"))?;
                let rows =
                    st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                let mut ids = Vec::new();
                for row in rows {
                    let (id, address) = row?;
                    if AddressKey::from_text(&address) == *key {
                        ids.push(id);
                    }
                }
                ids
            };
            let mut del = tx.prepare(&format!("DELETE FROM {table} WHERE id = ?1"))?;
            for id in &ids {
                del.execute([id])?;
            }
            let n = ids.len() as u64;
            match table {
                "test_sends" => f.test_sends = n,
                _ => f.confirmation_sends = n,
            }
        }
        let rows = {
            let mut st =
                tx.prepare("SELECT id, last_text FROM deliveries WHERE address_key = ?1")?;
            let rows = st.query_map([k], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        {
            let mut up = tx.prepare(
                "UPDATE deliveries SET address = ?2, address_key = ?3, message_id = ?2,
                        name = CASE WHEN name IS NULL THEN NULL ELSE ?2 END, last_text = ?4,
                        state = CASE WHEN state = 'sent' THEN 'sent' ELSE 'suppressed' END,
                        next_attempt_at = NULL
                 WHERE id = ?1",
            )?;
            // A bounce's diagnostic quotes the address ("550 5.1.1 <ana@...>: unknown").
            let mut bounces =
                tx.prepare("UPDATE bounces SET diagnostic = NULL WHERE delivery_id = ?1")?;
            for (id, text) in rows {
                bounces.execute([id])?;
                let text = text.map(|t| {
                    let lower = t.to_lowercase();
                    if lower.contains(k) {
                        lower.replace(k, FORGOTTEN)
                    } else {
                        t
                    }
                });
                up.execute(params![id, FORGOTTEN, hash, text])?;
                f.deliveries += 1;
            }
        }
        tx.execute(
            "INSERT OR IGNORE INTO forgotten (hash, at) VALUES (?1, ?2)",
            params![hash, now],
        )?;
        tx.commit()?;
        // Deleted and rewritten rows linger in the file's free space and in the WAL until
        // overwritten: rebuild the file and empty the WAL, so the address is gone from the
        // disk too. Another connection busy for longer than the busy timeout leaves that undone.
        f.scrubbed = self
            .conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .is_ok();
        Ok(f)
    }

    /// Records one test-send reply (kept apart from every campaign).
    pub fn record_test_send(
        &mut self,
        issue: IssueId,
        address: &Address,
        code: Option<u16>,
        text: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO test_sends (issue, address, code, text, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![issue.to_string(), address.as_ref() as &str, code, text, now],
        )?;
        Ok(())
    }

    /// How many test sends were recorded for `issue`.
    pub fn test_send_count(&self, issue: IssueId) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM test_sends WHERE issue = ?1",
            [issue.to_string()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Whether readers of `campaign` may be mailed at `now`: not while it is held, nor before
    /// the end of its canary window.
    pub fn gate(&self, campaign: CampaignId, now: i64) -> anyhow::Result<Gate> {
        gate_in(&self.conn, campaign, now)
    }

    /// Holds the campaign of `issue` (staff, during its canary window): no reader is mailed
    /// until [`Ledger::release_campaign`]. Refused once a reader was mailed: a hold stops a
    /// campaign before it reaches anyone, it does not pause one under way.
    pub fn hold_campaign(&mut self, issue: IssueId, now: i64) -> anyhow::Result<HoldOutcome> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(c) = campaign_by_issue(&tx, issue)? else {
            return Ok(HoldOutcome::NoCampaign);
        };
        if let Some(at) = c.held_at {
            return Ok(HoldOutcome::AlreadyHeld { since: at });
        }
        let reached: i64 = tx.query_row(
            "SELECT count(*) FROM deliveries
             WHERE campaign_id = ?1 AND (attempts > 0 OR state IN ('sending', 'sent', 'deferred', 'failed'))",
            [c.id],
            |r| r.get(0),
        )?;
        if c.finished || reached > 0 {
            return Ok(HoldOutcome::TooLate {
                reached: reached as u64,
            });
        }
        tx.execute(
            "UPDATE campaigns SET held_at = ?2 WHERE id = ?1",
            params![c.id, now],
        )?;
        tx.commit()?;
        Ok(HoldOutcome::Held)
    }

    /// Lets the campaign of `issue` go: ends a hold and what is left of its canary window, so
    /// the run that waits for it (the daemon, or `brief send`) mails the readers. Returns the
    /// campaign as it was, `None` when there is none.
    pub fn release_campaign(
        &mut self,
        issue: IssueId,
        now: i64,
    ) -> anyhow::Result<Option<Campaign>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let c = campaign_by_issue(&tx, issue)?;
        if let Some(c) = &c {
            tx.execute(
                "UPDATE campaigns SET held_at = NULL,
                    release_at = CASE WHEN release_at > ?2 THEN ?2 ELSE release_at END
                 WHERE id = ?1",
                params![c.id, now],
            )?;
        }
        tx.commit()?;
        Ok(c)
    }

    /// Records the replies to the canary copies of `campaign` (kept apart from its deliveries:
    /// staff are not counted as readers).
    pub fn record_canary_sends(
        &mut self,
        campaign: CampaignId,
        sends: &[CanarySend],
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT INTO canary_sends (campaign_id, address, accepted, code, text, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for c in sends {
                st.execute(params![
                    campaign, c.address, c.accepted, c.code, c.text, c.at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The canary copies of `campaign`, in the order they were sent.
    pub fn canary_sends(&self, campaign: CampaignId) -> anyhow::Result<Vec<CanarySend>> {
        let mut st = self.conn.prepare(
            "SELECT address, accepted, code, text, at FROM canary_sends WHERE campaign_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([campaign], |r| {
            Ok(CanarySend {
                address: r.get(0)?,
                accepted: r.get(1)?,
                code: r.get(2)?,
                text: r.get(3)?,
                at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The summaries due at `now`: finished campaigns whose summary was not mailed, and those
    /// finished `followup_after` ms ago or more whose follow-up was not.
    pub fn due_summaries(
        &self,
        now: i64,
        followup_after: i64,
    ) -> anyhow::Result<Vec<(Campaign, SummaryKind)>> {
        let mut due = Vec::new();
        for (kind, sql) in [
            (
                SummaryKind::AtFinish,
                "SELECT id, issue, subject, state, created_at, finished_at, trigger, release_at, held_at
                 FROM campaigns WHERE state = 'finished' AND summary_at IS NULL ORDER BY id",
            ),
            (
                SummaryKind::FollowUp,
                "SELECT id, issue, subject, state, created_at, finished_at, trigger, release_at, held_at
                 FROM campaigns WHERE state = 'finished' AND followup_at IS NULL
                 AND finished_at <= ?1 ORDER BY id",
            ),
        ] {
            let mut st = self.conn.prepare(sql)?;
            let rows = if kind == SummaryKind::AtFinish {
                st.query_map([], campaign_row)?
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                st.query_map([now - followup_after], campaign_row)?
                    .collect::<Result<Vec<_>, _>>()?
            };
            due.extend(rows.into_iter().map(|c| (c, kind)));
        }
        Ok(due)
    }

    /// Marks a summary of `campaign` as mailed at `now`; false when another process did
    /// first (each summary goes out once).
    pub fn claim_summary(
        &mut self,
        campaign: CampaignId,
        kind: SummaryKind,
        now: i64,
    ) -> anyhow::Result<bool> {
        let sql = match kind {
            SummaryKind::AtFinish => {
                "UPDATE campaigns SET summary_at = ?2 WHERE id = ?1 AND summary_at IS NULL"
            }
            SummaryKind::FollowUp => {
                "UPDATE campaigns SET followup_at = ?2 WHERE id = ?1 AND followup_at IS NULL"
            }
        };
        Ok(self.conn.execute(sql, params![campaign, now])? == 1)
    }

    /// Takes back the claim of a summary that could not be mailed, so it is tried again.
    pub fn unclaim_summary(
        &mut self,
        campaign: CampaignId,
        kind: SummaryKind,
    ) -> anyhow::Result<()> {
        let sql = match kind {
            SummaryKind::AtFinish => "UPDATE campaigns SET summary_at = NULL WHERE id = ?1",
            SummaryKind::FollowUp => "UPDATE campaigns SET followup_at = NULL WHERE id = ?1",
        };
        self.conn.execute(sql, [campaign])?;
        Ok(())
    }

    /// What a summary of `campaign` reports, as the ledger holds it now.
    pub fn summary_facts(&self, campaign: &Campaign) -> anyhow::Result<SummaryFacts> {
        let counts = self.counts(campaign.id)?;
        let first_attempt: Option<i64> = self.conn.query_row(
            "SELECT min(first_attempt_at) FROM deliveries WHERE campaign_id = ?1",
            [campaign.id],
            |r| r.get(0),
        )?;
        let mut st = self.conn.prepare(
            "SELECT last_code, last_text, count(*) FROM deliveries
             WHERE campaign_id = ?1 AND state IN ('failed', 'deferred') AND last_text IS NOT NULL
             GROUP BY last_code, last_text ORDER BY count(*) DESC, last_text LIMIT 5",
        )?;
        let failures = st
            .query_map([campaign.id], |r| {
                Ok((
                    r.get::<_, Option<u16>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut bounces = SummaryBounces::default();
        let mut st = self.conn.prepare(
            "SELECT b.kind, count(DISTINCT b.delivery_id) FROM bounces b
             JOIN deliveries d ON d.id = b.delivery_id
             WHERE d.campaign_id = ?1 GROUP BY b.kind",
        )?;
        for row in st.query_map([campaign.id], |r| {
            Ok((r.get::<_, BounceKind>(0)?, r.get::<_, i64>(1)? as u64))
        })? {
            let (kind, n) = row?;
            match kind {
                BounceKind::Hard => bounces.hard = n,
                BounceKind::Soft => bounces.soft = n,
                BounceKind::Complaint => bounces.complaints = n,
            }
        }
        let since = campaign.finished_at.unwrap_or(campaign.created_at);
        bounces.unsubscribes = self.conn.query_row(
            "SELECT count(*) FROM suppressions WHERE reason = 'unsubscribed' AND at >= ?1",
            [first_attempt.unwrap_or(since)],
            |r| r.get::<_, i64>(0),
        )? as u64;
        Ok(SummaryFacts {
            counts,
            first_attempt,
            failures,
            bounces,
        })
    }

    /// Records the checks run before the fire at `fire_at` of `issue`; false when they were
    /// recorded before (an earlier start of the daemon ran them).
    pub fn record_preflight(&mut self, p: &Preflight) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO preflights (issue, fire_at, ran_at, problems, report)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                p.issue.to_string(),
                p.fire_at,
                p.ran_at,
                p.problems as i64,
                p.report
            ],
        )? == 1)
    }

    /// Whether the checks before the fire at `fire_at` of `issue` were run.
    pub fn preflight_done(&self, issue: IssueId, fire_at: i64) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM preflights WHERE issue = ?1 AND fire_at = ?2",
                params![issue.to_string(), fire_at],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The latest checks run before a fire.
    pub fn latest_preflight(&self) -> anyhow::Result<Option<Preflight>> {
        Ok(self
            .conn
            .query_row(
                "SELECT issue, fire_at, ran_at, problems, report FROM preflights
                 ORDER BY ran_at DESC LIMIT 1",
                [],
                |r| {
                    let issue: String = r.get(0)?;
                    Ok(Preflight {
                        issue: issue.parse().map_err(|_| {
                            rusqlite::Error::InvalidColumnType(
                                0,
                                issue.clone(),
                                rusqlite::types::Type::Text,
                            )
                        })?,
                        fire_at: r.get(1)?,
                        ran_at: r.get(2)?,
                        problems: r.get::<_, i64>(3)? as u64,
                        report: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Notes that the schedule's fire at `fired_at` for `issue` was missed and reported at
    /// `now`; returns false when it was noted before (by an earlier start).
    pub fn note_missed_fire(
        &mut self,
        issue: IssueId,
        fired_at: i64,
        now: i64,
    ) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO missed_fires (issue, fired_at, reported_at) VALUES (?1, ?2, ?3)",
            params![issue.to_string(), fired_at, now],
        )? == 1)
    }

    /// The keys of every feed item already included in the campaign of another issue than
    /// `issue` (a resumed campaign keeps its own items).
    pub fn sent_feed_items_except(&self, issue: IssueId) -> anyhow::Result<HashSet<String>> {
        let mut st = self.conn.prepare(
            "SELECT f.item_key FROM feed_items f JOIN campaigns c ON c.id = f.campaign_id WHERE c.issue != ?1",
        )?;
        let rows = st.query_map([issue.to_string()], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that these feed items went out with `campaign`.
    pub fn record_feed_items<'a>(
        &mut self,
        campaign: CampaignId,
        items: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT OR IGNORE INTO feed_items (item_key, feed_url, campaign_id) VALUES (?1, ?2, ?3)",
            )?;
            for (key, url) in items {
                st.execute(params![key, url, campaign])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Whether `hash` is a forgotten address's keyed hash.
fn forgotten_in(conn: &Connection, hash: &str) -> anyhow::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM forgotten WHERE hash = ?1",
            [hash],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn insert_message(
    tx: &Transaction<'_>,
    campaign: CampaignId,
    m: &CampaignMessage,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO campaign_messages
         (campaign_id, revision, subject, template, web, folder_hash, unsent, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            campaign,
            m.revision,
            m.subject,
            m.template,
            m.web,
            m.folder_hash,
            m.unsent as i64,
            m.at
        ],
    )?;
    Ok(())
}

fn record_in(
    tx: &Transaction<'_>,
    campaign: CampaignId,
    attempts: &[Attempt],
) -> anyhow::Result<()> {
    // The revision a delivery was sent is the campaign's latest: a revision is made only under
    // the campaign's send lock, so it cannot change while a run records.
    let revision: Option<u32> = tx
        .prepare_cached("SELECT max(revision) FROM campaign_messages WHERE campaign_id = ?1")?
        .query_row([campaign], |r| r.get(0))?;
    let mut up = tx.prepare_cached(
        "UPDATE deliveries SET state = ?3, attempts = attempts + 1, last_code = ?4, last_text = ?5,
                first_attempt_at = coalesce(first_attempt_at, ?6), last_attempt_at = ?6,
                next_attempt_at = ?7, possible_duplicate = possible_duplicate OR ?8,
                revision = ?9
         WHERE campaign_id = ?1 AND address_key = ?2",
    )?;
    let mut sup = tx.prepare_cached(
        "INSERT OR IGNORE INTO suppressions (address_key, address, reason, detail, at) VALUES (?1, ?2, 'bounced', ?3, ?4)",
    )?;
    for a in attempts {
        let key = a.key.as_str();
        let n = up.execute(params![
            campaign,
            key,
            a.state,
            a.code,
            a.text,
            a.at,
            a.next_at,
            a.possible_duplicate,
            revision
        ])?;
        if n != 1 {
            bail!(
                "no delivery of {} in campaign {campaign} to record",
                a.address
            );
        }
        if a.suppress {
            sup.execute(params![key, a.address, a.text, a.at])?;
        }
    }
    Ok(())
}

/// The columns [`delivery_row`] reads, in its order.
const DELIVERY_COLUMNS: &str = "address, name, state, attempts, last_code, last_text, message_id, \
     first_attempt_at, last_attempt_at, next_attempt_at, possible_duplicate, revision, \
     (SELECT b.kind || COALESCE(' ' || b.status, '') || COALESCE(': ' || b.diagnostic, '') \
             || COALESCE(' (' || b.reporting_mta || ')', '') \
      FROM bounces b WHERE b.delivery_id = deliveries.id ORDER BY b.at DESC, b.id DESC LIMIT 1)";

/// One row of [`DELIVERY_COLUMNS`] as a report row.
fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        address: r.get(0)?,
        name: r.get(1)?,
        state: r.get(2)?,
        attempts: r.get(3)?,
        last_code: r.get(4)?,
        last_text: r.get(5)?,
        message_id: r.get(6)?,
        first_attempt_at: r.get(7)?,
        last_attempt_at: r.get(8)?,
        next_attempt_at: r.get(9)?,
        possible_duplicate: r.get(10)?,
        revision: r.get(11)?,
        bounce: r.get(12)?,
    })
}

fn campaign_by_issue(conn: &Connection, issue: IssueId) -> anyhow::Result<Option<Campaign>> {
    Ok(conn
        .query_row(
            "SELECT id, issue, subject, state, created_at, finished_at, trigger, release_at, held_at
             FROM campaigns WHERE issue = ?1",
            [issue.to_string()],
            campaign_row,
        )
        .optional()?)
}

fn gate_in(conn: &Connection, campaign: CampaignId, now: i64) -> anyhow::Result<Gate> {
    let (held_at, release_at) = conn.query_row(
        "SELECT held_at, release_at FROM campaigns WHERE id = ?1",
        [campaign],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(Gate::of(held_at, release_at, now))
}

fn campaign_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Campaign> {
    let issue: String = r.get(1)?;
    Ok(Campaign {
        id: r.get(0)?,
        issue: issue.parse().map_err(|_| {
            rusqlite::Error::InvalidColumnType(1, issue.clone(), rusqlite::types::Type::Text)
        })?,
        subject: r.get(2)?,
        finished: r.get::<_, String>(3)? == "finished",
        created_at: r.get(4)?,
        finished_at: r.get(5)?,
        trigger: r.get(6)?,
        release_at: r.get(7)?,
        held_at: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Address {
        s.parse().unwrap()
    }

    /// A fresh ledger in `dir` with the campaign of 2021-07 to a@, b@, c@ and d@x.org.
    fn four_readers(dir: &tempfile::TempDir) -> (Ledger, Campaign) {
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let (c, _) = l
            .create_campaign(
                "2021-07".parse().unwrap(),
                &message("s"),
                Trigger::Cli,
                1,
                None,
                |sink| {
                    for a in ["a@x.org", "b@x.org", "c@x.org", "d@x.org"] {
                        sink.add(&addr(a), None, a)?;
                    }
                    Ok(())
                },
            )
            .unwrap();
        (l, c)
    }

    fn message(subject: &str) -> CampaignMessage {
        CampaignMessage {
            revision: 1,
            subject: subject.into(),
            template: format!("template of {subject}"),
            web: format!("<p>{subject}</p>"),
            folder_hash: Some(format!("hash of {subject}")),
            unsent: 0,
            at: 1,
        }
    }

    #[test]
    fn campaign_is_unique_per_issue_and_delivery_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("d/brief.db")).unwrap();
        let id: IssueId = "2021-07".parse().unwrap();
        l.suppress(&addr("gone@example.org"), Reason::Unsubscribed, "", 1)
            .unwrap();
        let (c, new) = l
            .create_campaign(id, &message("s"), Trigger::Cli, 1, None, |sink| {
                assert!(sink.add(&addr("a@example.org"), None, "m1")?);
                assert!(!sink.add(&addr("A@Example.org"), None, "m2")?);
                assert!(sink.add(&addr("Gone@example.org"), None, "m3")?);
                Ok(())
            })
            .unwrap();
        assert!(new);
        let (c2, new2) = l
            .create_campaign(id, &message("s"), Trigger::Cli, 2, None, |_| {
                panic!("an existing campaign is not refilled")
            })
            .unwrap();
        assert!(!new2);
        assert_eq!(c.id, c2.id);
        let counts = l.counts(c.id).unwrap();
        assert_eq!((counts.pending, counts.suppressed), (1, 1));
        let due = l.claim_due(c.id, 10, 100).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(l.counts(c.id).unwrap().sending, 1);
        assert!(!l.finish_if_done(c.id, 11).unwrap());
        l.record(
            c.id,
            &[Attempt {
                address: "A@EXAMPLE.ORG".into(),
                key: AddressKey::from_text("A@EXAMPLE.ORG"),
                state: State::Sent,
                code: Some(250),
                text: "ok".into(),
                next_at: None,
                possible_duplicate: false,
                suppress: false,
                at: 12,
            }],
        )
        .unwrap();
        assert!(l.finish_if_done(c.id, 13).unwrap());
        assert!(l.campaign(id).unwrap().unwrap().finished);
    }

    #[test]
    fn a_campaign_keeps_its_message_and_records_which_revision_each_reader_got() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let id: IssueId = "2021-07".parse().unwrap();
        let (c, _) = l
            .create_campaign(id, &message("first"), Trigger::Cli, 1, None, |sink| {
                sink.add(&addr("a@x.org"), None, "m1")?;
                sink.add(&addr("b@x.org"), None, "m2")?;
                Ok(())
            })
            .unwrap();
        let stored = l.campaign_message(c.id).unwrap().unwrap();
        assert_eq!((stored.revision, stored.unsent), (1, 2));
        assert_eq!(stored.template, "template of first");
        let sent = |key: &str| Attempt {
            address: key.into(),
            key: AddressKey::from_text(key),
            state: State::Sent,
            code: Some(250),
            text: "ok".into(),
            next_at: None,
            possible_duplicate: false,
            suppress: false,
            at: 2,
        };
        l.claim_due(c.id, 2, 1).unwrap();
        l.record(c.id, &[sent("a@x.org")]).unwrap();

        let revision = l.revise_campaign(c.id, &message("second")).unwrap();

        assert_eq!(revision, 2);
        let now = l.campaign_message(c.id).unwrap().unwrap();
        assert_eq!((now.revision, now.unsent), (2, 1));
        assert_eq!(now.template, "template of second");
        assert_eq!(l.campaign(id).unwrap().unwrap().subject, "second");
        l.claim_due(c.id, 3, 1).unwrap();
        l.record(c.id, &[sent("b@x.org")]).unwrap();
        let mut got = Vec::new();
        l.each_delivery(c.id, |d| {
            got.push((d.address, d.revision));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            [
                ("a@x.org".to_string(), Some(1)),
                ("b@x.org".to_string(), Some(2))
            ]
        );
    }

    #[test]
    fn sign_ups_wait_ten_minutes_between_messages_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let a = addr("New@example.org");
        let gap = 600_000;
        assert_eq!(
            l.request_signup(&a, Some("N"), "h1", 1_000, 50_000, gap)
                .unwrap(),
            SignupRequest::Mail
        );
        assert_eq!(
            l.request_signup(
                &addr("new@example.org"),
                None,
                "h1",
                1_000 + gap - 1,
                60_000,
                gap
            )
            .unwrap(),
            SignupRequest::TooSoon
        );
        assert_eq!(l.signups().unwrap().len(), 1);
        assert_eq!(l.purge_expired_signups(49_999).unwrap(), 0);
        assert_eq!(l.purge_expired_signups(50_000).unwrap(), 1);
        assert!(l.signups().unwrap().is_empty());
        // After the gap, a new request mails again.
        assert_eq!(
            l.request_signup(&a, None, "h1", 1_000 + gap, 2_000_000, gap)
                .unwrap(),
            SignupRequest::Mail
        );
        // Confirming makes an active subscriber with consent, once.
        assert_eq!(
            l.confirm_signup(&a, Some("N"), "h1", 1_000, 5_000).unwrap(),
            Confirmed::Subscribed
        );
        assert_eq!(
            l.confirm_signup(&a, Some("N"), "h1", 1_000, 6_000).unwrap(),
            Confirmed::Already
        );
        let c = l.consent(&AddressKey::of(&a)).unwrap().unwrap();
        assert_eq!(
            (c.source.as_str(), c.requested_at, c.confirmed_at),
            ("form", Some(1_000), Some(5_000))
        );
        assert!(l.signups().unwrap().is_empty());
    }

    #[test]
    fn one_process_at_a_time_sends_a_campaign() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brief.db");
        let mut a = Ledger::open(&p).unwrap();
        let b = Ledger::open(&p).unwrap();
        let (c, _) = a
            .create_campaign(
                "2021-07".parse().unwrap(),
                &message("s"),
                Trigger::Cli,
                1,
                None,
                |_| Ok(()),
            )
            .unwrap();
        let held = a.lock_campaign(&c).unwrap();
        let e = b.lock_campaign(&c).unwrap_err().to_string();
        assert!(
            e.starts_with("issue 2021-07 is being sent by another brief process"),
            "{e}"
        );
        drop(held);
        b.lock_campaign(&c).unwrap();
    }

    #[test]
    fn unknown_words_in_the_ledger_are_refused_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        l.conn
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 INSERT INTO suppressions (address_key, address, reason, at)
                 VALUES ('x@example.org', 'x@example.org', 'spam', 1);",
            )
            .unwrap();
        let e = l
            .suppression(&AddressKey::from_text("x@example.org"))
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown value `spam` in the ledger"),
            "{e:#}"
        );
    }

    #[test]
    fn deliveries_left_in_flight_by_a_killed_run_are_flagged_possible_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let (mut l, c) = four_readers(&dir);
        let flags = |l: &Ledger| {
            let mut v = Vec::new();
            l.each_delivery(c.id, |d| {
                v.push((d.address, d.state, d.possible_duplicate));
                Ok(())
            })
            .unwrap();
            v
        };
        // A run claims a and b, and is killed: the next run cannot know whether they went out.
        l.claim_due(c.id, 2, 2).unwrap();
        assert_eq!(l.reset_in_flight(c.id).unwrap(), 2);
        // The next run sends a (which keeps its flag), claims b and c and stops before handing
        // them to the server: c was never on the wire, so it is not flagged.
        assert_eq!(l.claim_due(c.id, 3, 1).unwrap()[0].address, "a@x.org");
        l.record(
            c.id,
            &[Attempt {
                address: "a@x.org".into(),
                key: AddressKey::from_text("a@x.org"),
                state: State::Sent,
                code: Some(250),
                text: "ok".into(),
                next_at: None,
                possible_duplicate: false,
                suppress: false,
                at: 4,
            }],
        )
        .unwrap();
        l.claim_due(c.id, 5, 2).unwrap();
        assert_eq!(l.unclaim(c.id).unwrap(), 2);
        assert_eq!(
            flags(&l),
            [
                ("a@x.org".to_string(), State::Sent, true),
                ("b@x.org".to_string(), State::Pending, true),
                ("c@x.org".to_string(), State::Pending, false),
                ("d@x.org".to_string(), State::Pending, false),
            ]
        );
    }

    #[test]
    fn processes_opening_a_fresh_ledger_at_once_all_migrate_it_once() {
        // Two `brief` processes started together on a new data folder once failed with
        // "migration 1 failed: table campaigns already exists".
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("data/brief.db");
            let n = 8;
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
            let opened: Vec<_> = (0..n)
                .map(|_| {
                    let (p, barrier) = (p.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Ledger::open(&p).map_err(|e| format!("{e:#}"))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            for l in &opened {
                let l = l.as_ref().unwrap();
                let version: i64 = l
                    .conn
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(version as usize, MIGRATIONS.len());
            }
        }
    }

    #[test]
    fn a_sign_in_link_opens_one_session_and_sessions_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let s = NewStaffSession {
            link_id: "link-1",
            link_expires_at: 1_000,
            id_hash: "hash-1",
            address: "editor@example.org",
            expires_at: 5_000,
        };
        assert!(l.sign_in_staff(&s, 100).unwrap());
        assert_eq!(
            l.staff_session("hash-1", 200).unwrap().as_deref(),
            Some("editor@example.org")
        );
        // The same link again: refused, and no second session.
        let again = NewStaffSession {
            id_hash: "hash-2",
            ..s.clone()
        };
        assert!(!l.sign_in_staff(&again, 300).unwrap());
        assert_eq!(l.staff_session("hash-2", 300).unwrap(), None);
        // Past its expiry a session opens nothing, and it is deleted at the next sign-in.
        assert_eq!(l.staff_session("hash-1", 5_000).unwrap(), None);
        let other = NewStaffSession {
            link_id: "link-2",
            link_expires_at: 7_000,
            id_hash: "hash-3",
            ..s.clone()
        };
        assert!(l.sign_in_staff(&other, 6_000).unwrap());
        let n: i64 = l
            .conn
            .query_row("SELECT count(*) FROM staff_sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(l.end_staff_session("hash-3").unwrap());
        assert!(!l.end_staff_session("hash-3").unwrap());
        assert_eq!(l.staff_session("hash-3", 6_001).unwrap(), None);
    }

    #[test]
    fn migration_5_keeps_suppressions_and_allows_complaints() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brief.db");
        {
            // A ledger as brief left it at schema version 4.
            let conn = Connection::open(&p).unwrap();
            for m in &MIGRATIONS[..4] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 4;
                 INSERT INTO suppressions (address_key, address, reason, detail, at)
                 VALUES ('x@example.org', 'X@example.org', 'bounced', '550', 7);",
            )
            .unwrap();
        }
        let mut l = Ledger::open(&p).unwrap();
        assert_eq!(
            l.suppressed_addresses().unwrap(),
            [("X@example.org".to_string(), Reason::Bounced)]
        );
        l.suppress(&addr("y@example.org"), Reason::Complained, "spam", 8)
            .unwrap();
        assert_eq!(
            l.suppression(&AddressKey::from_text("y@example.org"))
                .unwrap(),
            Some(Reason::Complained)
        );
        let e = l
            .conn
            .execute(
                "INSERT INTO suppressions (address_key, address, reason, at) VALUES ('z', 'z', 'spam', 1)",
                [],
            )
            .unwrap_err();
        assert!(e.to_string().contains("CHECK"), "{e}");
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brief.db");
        {
            let mut l = Ledger::open(&p).unwrap();
            l.suppress(&addr("x@example.org"), Reason::Bounced, "550", 1)
                .unwrap();
        }
        let l = Ledger::open(&p).unwrap();
        assert_eq!(
            l.suppression(&AddressKey::from_text("X@example.org"))
                .unwrap(),
            Some(Reason::Bounced)
        );
    }

    #[test]
    fn claims_skip_addresses_suppressed_since_the_start_and_keep_list_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut l, c) = four_readers(&dir);
        l.suppress(&addr("B@x.org"), Reason::Unsubscribed, "", 2)
            .unwrap();
        let addresses = |due: Vec<Due>| due.into_iter().map(|d| d.address).collect::<Vec<_>>();
        assert_eq!(
            addresses(l.claim_due(c.id, 3, 2).unwrap()),
            ["a@x.org", "c@x.org"]
        );
        assert_eq!(l.counts(c.id).unwrap().suppressed, 1);
        let deferred = |address: &str, next_at| Attempt {
            address: address.into(),
            key: AddressKey::from_text(address),
            state: State::Deferred,
            code: Some(451),
            text: "later".into(),
            next_at: Some(next_at),
            possible_duplicate: false,
            suppress: false,
            at: 4,
        };
        l.record(c.id, &[deferred("c@x.org", 50), deferred("a@x.org", 60)])
            .unwrap();
        // Pending first, then deferred ones that are due, the longest due first.
        assert_eq!(addresses(l.claim_due(c.id, 10, 10).unwrap()), ["d@x.org"]);
        assert_eq!(
            addresses(l.claim_due(c.id, 100, 10).unwrap()),
            ["c@x.org", "a@x.org"]
        );
        assert!(l.claim_due(c.id, 100, 10).unwrap().is_empty());
    }

    #[test]
    fn undone_attempts_and_retried_failures_go_back_to_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (mut l, c) = four_readers(&dir);
        assert_eq!(l.claim_due(c.id, 1, 10).unwrap().len(), 4);
        let attempt = |address: &str, state, code| Attempt {
            address: address.into(),
            key: AddressKey::from_text(address),
            state,
            code: Some(code),
            text: format!("{code} reply"),
            next_at: (state == State::Deferred).then_some(99),
            possible_duplicate: false,
            suppress: false,
            at: 2,
        };
        l.record(
            c.id,
            &[
                attempt("a@x.org", State::Deferred, 451),
                attempt("b@x.org", State::Failed, 550),
                attempt("c@x.org", State::Sent, 250),
                attempt("d@x.org", State::Failed, 550),
            ],
        )
        .unwrap();
        let key = AddressKey::from_text;
        // The streak: a and b were the relay's fault; c was sent meanwhile and stays sent.
        let back = l
            .undo_attempts(
                c.id,
                &[
                    (key("a@x.org"), 0),
                    (key("b@x.org"), 0),
                    (key("c@x.org"), 0),
                ],
            )
            .unwrap();
        assert_eq!(back, 2);
        let rows = |l: &Ledger| {
            let mut rows = Vec::new();
            l.each_delivery(c.id, |r| {
                rows.push((r.address, r.state, r.attempts, r.last_text));
                Ok(())
            })
            .unwrap();
            rows
        };
        let got = rows(&l);
        assert_eq!(
            got.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(),
            [
                (State::Pending, 0),
                (State::Pending, 0),
                (State::Sent, 1),
                (State::Failed, 1)
            ]
        );
        assert_eq!(
            got[1].3.as_deref(),
            Some("550 reply"),
            "the last reply stays"
        );
        assert!(l.next_retry_at(c.id).unwrap().is_none());

        // d failed for a cause staff fixed; a suppressed failure stays failed.
        l.record(c.id, &[attempt("b@x.org", State::Failed, 550)])
            .unwrap();
        l.suppress(&addr("b@x.org"), Reason::Bounced, "", 3)
            .unwrap();
        l.record(c.id, &[attempt("a@x.org", State::Sent, 250)])
            .unwrap();
        assert!(l.finish_if_done(c.id, 4).unwrap());
        assert_eq!(l.retryable_failed(c.id).unwrap(), 1);
        assert_eq!(l.retry_failed(c.id).unwrap(), 1);
        assert!(
            !l.campaign(c.issue).unwrap().unwrap().finished,
            "un-finished"
        );
        let got = rows(&l);
        assert_eq!((got[1].1, got[1].2), (State::Failed, 1));
        assert_eq!((got[3].1, got[3].2), (State::Pending, 0));
        assert_eq!(
            got[3].3.as_deref(),
            Some("retried with --retry-failed after: 550 reply")
        );
        assert_eq!(l.retry_failed(c.id).unwrap(), 0);
    }

    #[test]
    fn claims_read_the_state_index_in_order() {
        // A sort or a scan of the whole campaign here would make every claim cost the whole list,
        // and a send quadratic in its length.
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        for sql in CLAIM_QUERIES {
            let mut st = l
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let ones = vec![1; st.parameter_count()];
            let plan: Vec<String> = st
                .query_map(rusqlite::params_from_iter(ones), |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter()
                    .any(|p| p.contains("deliveries_by_state (campaign_id=? AND state=?")),
                "{plan:?}"
            );
            assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
        }
    }
}
