//! What every room of the ledger shares: the `Ledger` and `SharedLedger` types, opening and
//! migrating the file, the ids, the stored words (`Word`, `words!`) and the one-table helpers
//! no room owns. The rooms (`campaigns`, `deliveries`, ...) import this file and each other one
//! way; none imports `mod.rs`.

pub(super) use std::collections::{HashMap, HashSet};
pub(super) use std::fmt;
pub(super) use std::path::Path;
pub(super) use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
pub(super) use std::time::Duration;

pub(super) use anyhow::{bail, Context};
pub(super) use lettre::Address;
pub(super) use rusqlite::types::{
    FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef,
};
pub(super) use rusqlite::{params, Connection, OptionalExtension, Transaction};

pub(super) use crate::address::AddressKey;
pub(super) use crate::clock::{span_ms, Millis};
pub(super) use crate::issue::IssueId;
pub(super) use crate::lang::Lang;

/// A campaign's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CampaignId(pub(super) i64);

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
pub struct DeliveryId(pub(super) u64);

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
pub(super) trait Word: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

/// Reads a [`Word`] back, refusing any text this brief does not know.
pub(super) fn word_from_sql<W: Word>(value: ValueRef<'_>) -> FromSqlResult<W> {
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

/// A language tag is stored as written ([`Lang::as_str`]) and read back checked, like the
/// words: a tag this brief cannot read is refused, not guessed.
impl ToSql for Lang {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Lang {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Lang::parse(value.as_str()?)
            .map_err(|e| FromSqlError::Other(format!("in the ledger: {e}").into()))
    }
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

/// An open ledger.
pub struct Ledger {
    pub(super) conn: Connection,
    pub(super) path: std::path::PathBuf,
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
        if version > super::migrations::MIGRATIONS.len() {
            bail!(
                "the ledger has schema version {version}, newer than this brief knows ({}): upgrade brief",
                super::migrations::MIGRATIONS.len()
            );
        }
        for (i, m) in super::migrations::MIGRATIONS
            .iter()
            .enumerate()
            .skip(version)
        {
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
pub(super) fn forgotten_in(conn: &Connection, hash: &str) -> anyhow::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM forgotten WHERE hash = ?1",
            [hash],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// What a forgotten reader's address, name and Message-ID become in past deliveries.
pub const FORGOTTEN: &str = "forgotten";

/// An address for the ledger's tests.
#[cfg(test)]
pub(super) fn addr(s: &str) -> Address {
    s.parse().unwrap()
}
