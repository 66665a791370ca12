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
use std::time::Duration;

use anyhow::{bail, Context};
use lettre::Address;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::address::AddressKey;
use crate::clock::{span_ms, Millis};
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

/// A delivery's row id: what its VERP tag names. SQLite hands out positive row ids, so it is
/// a `u64`: the tag's number as it is, with no sign to lose on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(u64);

impl DeliveryId {
    /// The delivery a VERP tag's number names (whether it exists is the ledger's to say).
    pub fn from_tag(n: u64) -> DeliveryId {
        DeliveryId(n)
    }

    /// The number its VERP tag carries.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl ToSql for DeliveryId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        // Past i64::MAX no row can have it: -1 matches nothing.
        Ok(ToSqlOutput::from(i64::try_from(self.0).unwrap_or(-1)))
    }
}

impl FromSql for DeliveryId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let id = i64::column_result(value)?;
        u64::try_from(id)
            .map(DeliveryId)
            .map_err(|_| FromSqlError::OutOfRange(id))
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

mod audience;
mod bounces;
mod campaigns;
mod deliveries;
mod journal;
mod migrations;
mod notices;
mod staff;
mod summaries;

pub use self::audience::*;
pub use self::bounces::*;
pub use self::campaigns::*;
pub use self::deliveries::*;
use self::migrations::MIGRATIONS;
pub use self::notices::*;
pub use self::staff::*;
pub use self::summaries::*;

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

/// The columns [`campaign_row`] reads, in its order, and how many they are.
const CAMPAIGN_COLUMNS: &str = "id, issue, subject, state, created_at, finished_at, trigger, \
                                release_at, held_at, held_reason, canary_pending";
const CAMPAIGN_COLUMN_COUNT: usize = 11;

/// The columns [`delivery_row`] reads, in its order.
const DELIVERY_COLUMNS: &str = "address, name, state, attempts, last_code, last_text, message_id, \
     first_attempt_at, last_attempt_at, next_attempt_at, possible_duplicate, revision, \
     (SELECT b.kind || COALESCE(' ' || b.status, '') || COALESCE(': ' || b.diagnostic, '') \
             || COALESCE(' (' || b.reporting_mta || ')', '') \
             || CASE WHEN b.evidence = 'unverified' THEN ' [unverified]' ELSE '' END \
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

const NOTICE_COLUMNS: &str =
    "id, kind, recipient, message, campaign_id, state, attempts, next_at, \
     last_code, last_text, created_at";

fn notice_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Notice> {
    Ok(Notice {
        id: r.get(0)?,
        kind: r.get(1)?,
        recipient: r.get(2)?,
        message: r.get(3)?,
        campaign: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        next_at: r.get(7)?,
        last_code: r.get(8)?,
        last_text: r.get(9)?,
        created_at: r.get(10)?,
    })
}

fn enqueue_in(
    tx: &Transaction<'_>,
    notices: &[NewNotice],
    now: i64,
    lease: Option<i64>,
) -> anyhow::Result<Vec<i64>> {
    let (state, next_at) = match lease {
        Some(l) => (NoticeState::Sending, now + l),
        None => (NoticeState::Pending, now),
    };
    let mut ids = Vec::with_capacity(notices.len());
    let mut superseded = tx.prepare(
        "UPDATE notices SET state = 'failed', last_text = 'replaced by a newer request',
            done_at = ?2
         WHERE kind = 'confirmation' AND state = 'pending' AND lower(recipient) = lower(?1)",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO notices (kind, recipient, message, campaign_id, state, next_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for n in notices {
        if n.kind == NoticeKind::Confirmation {
            superseded.execute(params![n.recipient, now])?;
        }
        insert.execute(params![
            n.kind,
            n.recipient,
            n.message,
            n.campaign,
            state,
            next_at,
            now
        ])?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(ids)
}

fn campaign_by_issue(conn: &Connection, issue: IssueId) -> anyhow::Result<Option<Campaign>> {
    Ok(conn
        .query_row(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE issue = ?1"),
            [issue.to_string()],
            campaign_row,
        )
        .optional()?)
}

fn gate_in(conn: &Connection, campaign: CampaignId, now: i64) -> anyhow::Result<Gate> {
    let (held_at, release_at, pending) = conn.query_row(
        "SELECT held_at, release_at, canary_pending FROM campaigns WHERE id = ?1",
        [campaign],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Gate::of(held_at, release_at, pending, now))
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
        hold_reason: match r.get::<_, Option<i64>>(8)? {
            Some(_) => Some(
                r.get::<_, Option<HoldReason>>(9)?
                    .unwrap_or(HoldReason::Staff),
            ),
            None => None,
        },
        canary_pending: r.get(10)?,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn addr(s: &str) -> Address {
        s.parse().unwrap()
    }

    /// A fresh ledger in `dir` with the campaign of 2021-07 to a@, b@, c@ and d@x.org.
    pub(super) fn four_readers(dir: &tempfile::TempDir) -> (Ledger, Campaign) {
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let (c, _) = l
            .create_campaign(
                "2021-07".parse().unwrap(),
                &message("s"),
                Trigger::Cli,
                Millis(1),
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

    pub(super) fn message(subject: &str) -> CampaignMessage {
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
}
