//! The audience: who gets an issue and what brief knows of each address. The subscriber list
//! (the CSV file, then the addresses held in the ledger) as one stream, each reader with the
//! language on record (their own choice, else the list's `lang`), the readers a send
//! would reach, the roster that `brief subscribers list` and `export` and the console show,
//! the import policy (a suppressed, forgotten or pending address is never re-subscribed) and forgetting a person at
//! their request.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use lettre::Address;

use crate::address::{parse_address, AddressKey};
use crate::app::App;
use crate::error::{Problem, ProblemKind, UsageError};
use crate::lang::Lang;
use crate::ledger::{Forgot, Ledger, Reason, StoredSubscriber};
use crate::subscribers::{self, Subscriber};
use crate::token::TokenKey;

/// What [`import_subscribers`] did, row by row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub added: u64,
    /// Already on the list.
    pub known: u64,
    /// Unsubscribed, bounced, complained or forgotten: not re-subscribed.
    pub suppressed: u64,
    /// Waiting for their own sign-up confirmation: not added.
    pub pending: u64,
    pub bad: u64,
}

/// The addresses forgotten at their owners' request, as keyed hashes ([`forgotten`]).
pub struct Forgotten {
    key: Option<TokenKey>,
    hashes: std::collections::HashSet<String>,
}

impl Forgotten {
    /// The keyed hash of `address` when it was forgotten.
    pub fn hash_of(&self, address: &Address) -> Option<String> {
        let hash = self.key.as_ref()?.forget_hash(address.as_ref());
        self.hashes.contains(&hash).then_some(hash)
    }
}

/// What the ledger holds of the list, read once for a whole pass over it ([`each_subscriber`]):
/// the subscribers it keeps, and the readers' own language choices by address key (only those
/// who chose), which apply over the `lang` any list recorded.
#[derive(Clone, Debug, Default)]
pub struct Held {
    pub subscribers: Vec<StoredSubscriber>,
    pub choices: HashMap<AddressKey, Lang>,
}

impl Held {
    pub fn load(ledger: &Ledger) -> anyhow::Result<Held> {
        Ok(Held {
            subscribers: ledger.stored_subscribers()?,
            choices: ledger.language_choices()?,
        })
    }

    /// Nothing from the ledger: the list file's rows as they are.
    pub fn none() -> Held {
        Held::default()
    }

    /// The reader's language on record: their choice, else `listed` (what their list says).
    fn lang_of(&self, address: &Address, listed: Option<Lang>) -> Option<Lang> {
        if self.choices.is_empty() {
            return listed;
        }
        self.choices
            .get(&AddressKey::of(address))
            .cloned()
            .or(listed)
    }
}

/// The state of an address in `brief subscribers list` and `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RosterState {
    /// On the list and not suppressed: gets the next issue.
    Active,
    /// Asked to join (a sign-up request), not confirmed yet.
    Pending,
    Suppressed(Reason),
    /// Forgotten at its owner's request, yet still in the list file.
    Forgotten,
}

impl RosterState {
    pub fn as_str(self) -> &'static str {
        match self {
            RosterState::Active => "active",
            RosterState::Pending => "pending",
            RosterState::Suppressed(r) => r.as_str(),
            RosterState::Forgotten => "forgotten",
        }
    }
}

/// One address of [`roster`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterRow {
    pub address: String,
    pub name: Option<String>,
    pub state: RosterState,
    /// `file`, `staff` (`subscribers add`, `import`), `form` (the reader confirmed), or empty
    /// (a suppressed address on no list).
    pub source: String,
    /// When the reader asked to join, when known (Unix milliseconds).
    pub requested_at: Option<i64>,
    /// When the reader confirmed, when known.
    pub confirmed_at: Option<i64>,
    /// The language on record, unresolved (see [`Subscriber::lang`]): the reader's choice, else
    /// the list's or the sign-up's; `None`, the default.
    pub lang: Option<Lang>,
}

/// What [`forget`] erased.
#[derive(Clone, Copy, Debug)]
pub struct Forgetting {
    /// The ledger's rows.
    pub rows: Forgot,
    /// The list file still holds the address (brief does not edit it).
    pub in_file: bool,
    /// The messages to the address deleted from the outbox folder.
    pub outbox_files: u64,
}

/// Calls `f` for each subscriber: the CSV file's rows (streamed), then the ones `held` in the
/// database, each with its language on record (the reader's choice in `held`, else the row's
/// `lang`). Bad rows go to `bad`. Suppression is not applied here (the ledger does).
pub fn each_subscriber(
    app: &App,
    held: &Held,
    mut f: impl FnMut(Subscriber) -> anyhow::Result<()>,
    mut bad: impl FnMut(Problem),
) -> anyhow::Result<()> {
    let file = &app.config.subscribers.file;
    if file.exists() {
        subscribers::read(file, |row| {
            match row {
                Ok(mut s) => {
                    s.lang = held.lang_of(&s.address, s.lang);
                    f(s)?
                }
                Err(p) => bad(p),
            }
            Ok(())
        })?;
    } else if held.subscribers.is_empty() {
        // The config points at it: a config error (exit 2), not a failed send.
        return Err(UsageError::msg(format!(
            "the subscriber list {} does not exist (`[subscribers] file` in {}): create it \
             with the header line `email,name`, or set `file` to where the list is",
            file.display(),
            app.config.source.display()
        ))
        .into());
    }
    for s in &held.subscribers {
        match parse_address(&s.address) {
            Ok(address) => f(Subscriber {
                lang: held.lang_of(&address, s.lang.clone()),
                address,
                name: s.name.clone(),
            })?,
            Err(m) => bad(
                Problem::whole(Path::new("ledger subscribers"), m.to_string())
                    .kind(ProblemKind::Subscriber),
            ),
        }
    }
    Ok(())
}

/// The forgotten addresses (see [`Ledger::forget`]), to test addresses against. The token
/// key is needed (and read) only when there are any.
pub fn forgotten(app: &App, ledger: &Ledger) -> anyhow::Result<Forgotten> {
    let hashes = ledger.forgotten_hashes()?;
    let key = if hashes.is_empty() {
        None
    } else {
        Some(app.key().clone())
    };
    Ok(Forgotten { key, hashes })
}

/// Every address brief knows with its state, for `brief subscribers list` and `export`:
/// the list (the file's rows, then the database's), then sign-ups waiting for their
/// confirmation, then suppressed addresses on no list. An address shows once; a file row
/// of a forgotten address shows as [`RosterState::Forgotten`].
pub fn roster(
    app: &App,
    ledger: &Ledger,
    mut bad: impl FnMut(Problem),
) -> anyhow::Result<Vec<RosterRow>> {
    let held = Held::load(ledger)?;
    let forgotten = forgotten(app, ledger)?;
    let now = app.clock.now_ms();
    let signups: std::collections::HashMap<AddressKey, crate::ledger::Signup> = ledger
        .signups()?
        .into_iter()
        .filter(|s| s.expires_at > now)
        .map(|s| (AddressKey::from_text(&s.address), s))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::new();
    let mut listed = Vec::new();
    each_subscriber(
        app,
        &held,
        |s| {
            if seen.insert(AddressKey::of(&s.address)) {
                listed.push(s);
            }
            Ok(())
        },
        &mut bad,
    )?;
    for s in listed {
        let key = AddressKey::of(&s.address);
        let consent = ledger.consent(&key)?;
        let mut row = RosterRow {
            address: s.address.to_string(),
            name: s.name,
            state: RosterState::Active,
            source: consent
                .as_ref()
                .map_or_else(|| "file".to_string(), |c| c.source.clone()),
            requested_at: consent.as_ref().and_then(|c| c.requested_at),
            confirmed_at: consent.as_ref().and_then(|c| c.confirmed_at),
            lang: s.lang,
        };
        if forgotten.hash_of(&s.address).is_some() {
            row.state = RosterState::Forgotten;
        } else if let Some(r) = ledger.suppression(&key)? {
            // An unsubscribed reader who asked to join again waits for the confirmation.
            match signups.get(&key) {
                Some(p) => {
                    row.state = RosterState::Pending;
                    row.requested_at = Some(p.requested_at);
                    row.confirmed_at = None;
                }
                None => row.state = RosterState::Suppressed(r),
            }
        }
        rows.push(row);
    }
    for p in ledger.signups()? {
        let key = AddressKey::from_text(&p.address);
        if p.expires_at > now && seen.insert(key.clone()) {
            rows.push(RosterRow {
                address: p.address,
                name: p.name,
                state: RosterState::Pending,
                source: "form".to_string(),
                requested_at: Some(p.requested_at),
                confirmed_at: None,
                lang: held.choices.get(&key).cloned().or(p.lang),
            });
        }
    }
    for (address, reason) in ledger.suppressed_addresses()? {
        let key = AddressKey::from_text(&address);
        if seen.insert(key.clone()) {
            rows.push(RosterRow {
                address,
                name: None,
                state: RosterState::Suppressed(reason),
                source: String::new(),
                requested_at: None,
                confirmed_at: None,
                lang: held.choices.get(&key).cloned(),
            });
        }
    }
    Ok(rows)
}

/// Writes `rows` as the CSV of `brief subscribers export` and the console's export: `email`,
/// `name`, `state`, `source`, `requested_at`, `confirmed_at` (RFC 3339 UTC), `lang` (the tag
/// on record, empty for the default: the file imports back as it was).
pub fn write_roster_csv<W: std::io::Write>(rows: &[RosterRow], out: W) -> anyhow::Result<W> {
    let mut w = crate::sheet::Sheet::new(
        out,
        &[
            "email",
            "name",
            "state",
            "source",
            "requested_at",
            "confirmed_at",
            "lang",
        ],
    )?;
    for r in rows {
        w.row([
            r.address.as_str(),
            r.name.as_deref().unwrap_or(""),
            r.state.as_str(),
            &r.source,
            &crate::clock::fmt_ms(r.requested_at),
            &crate::clock::fmt_ms(r.confirmed_at),
            r.lang.as_ref().map_or("", Lang::as_str),
        ])?;
    }
    w.finish()
}

/// Erases what brief holds about `address` at its owner's request ([`Ledger::forget`]),
/// holding the send lock of every unfinished campaign so no run is sending meanwhile, then
/// the messages to it in the outbox folder ([`crate::transport::remove_outbox_files`]).
/// Returns what was erased and whether the list file still holds the address (brief does
/// not edit that file: staff must remove the line).
pub fn forget(app: &App, ledger: &mut Ledger, address: &Address) -> anyhow::Result<Forgetting> {
    let key = app.key().clone();
    let hash = key.forget_hash(address.as_ref());
    let mut locks = Vec::new();
    for c in ledger.campaigns()?.iter().filter(|c| !c.finished) {
        locks.push(ledger.lock_campaign(c)?);
    }
    let address_key = AddressKey::of(address);
    let forgot = ledger.forget(&address_key, &hash, app.clock.now_ms())?;
    drop(locks);
    // Whatever the transport is now: files an earlier outbox run wrote are kept there.
    let outbox_files =
        crate::transport::remove_outbox_files(&app.config.smtp.outbox_dir, &address_key)?;
    let mut in_file = false;
    if app.config.subscribers.file.exists() {
        each_subscriber(
            app,
            &Held::none(),
            |s| {
                in_file |= AddressKey::of(&s.address) == address_key;
                Ok(())
            },
            |_| {},
        )?;
    }
    Ok(Forgetting {
        rows: forgot,
        in_file,
        outbox_files,
    })
}

/// Whether `key` is on the list: held in the database or a good row of the CSV file
/// (suppressed or not).
pub fn on_the_list(app: &App, ledger: &Ledger, key: &AddressKey) -> anyhow::Result<bool> {
    if ledger.is_stored_subscriber(key)? {
        return Ok(true);
    }
    Ok(file_row(app, key)?.is_some())
}

/// The first good row of `key` in the list file, as the file has it (its `lang` cell included,
/// not the reader's choice); `None` when the file has none (or there is no file).
pub fn file_row(app: &App, key: &AddressKey) -> anyhow::Result<Option<Subscriber>> {
    if !app.config.subscribers.file.exists() {
        return Ok(None);
    }
    let mut found = None;
    each_subscriber(
        app,
        &Held::none(),
        |s| {
            if found.is_none() && AddressKey::of(&s.address) == *key {
                found = Some(s);
            }
            Ok(())
        },
        |_| {},
    )?;
    Ok(found)
}

/// How many readers a campaign started now would mail: the distinct addresses of the list
/// (file and database) that are not suppressed.
pub fn reachable_readers(app: &App, ledger: &Ledger) -> anyhow::Result<u64> {
    let held = Held {
        subscribers: ledger.stored_subscribers()?,
        // Only counted: the languages do not matter.
        choices: HashMap::new(),
    };
    let forgotten = forgotten(app, ledger)?;
    let mut seen = std::collections::HashSet::new();
    let mut readers = 0;
    each_subscriber(
        app,
        &held,
        |s| {
            let key = AddressKey::of(&s.address);
            if ledger.suppression(&key)?.is_none()
                && forgotten.hash_of(&s.address).is_none()
                && seen.insert(key)
            {
                readers += 1;
            }
            Ok(())
        },
        |_| {},
    )?;
    Ok(readers)
}

/// Adds the rows of the `email,name,lang` CSV at `file` to the list held in the database, under
/// the import policy ([`import`]); bad rows are reported with their line through `bad` and
/// skipped.
pub fn import_subscribers(
    app: &App,
    ledger: &mut Ledger,
    file: &Path,
    mut bad: impl FnMut(Problem),
) -> anyhow::Result<Imported> {
    let rows = ImportRows::read(
        file,
        std::fs::File::open(file)
            .with_context(|| format!("cannot open the subscriber list {}", file.display()))?,
    )?;
    let done = import(app, ledger, rows, ImportMode::Apply { source: None })?;
    for p in &done.bad {
        bad(p.clone());
    }
    Ok(done.counts())
}

/// The rows of a CSV to import, read and parsed, the bad ones set aside with their lines.
#[derive(Clone, Debug, Default)]
pub struct ImportRows {
    pub good: Vec<Subscriber>,
    pub bad: Vec<Problem>,
}

impl ImportRows {
    /// Reads the `email,name,lang` CSV `csv` (named `path` in its problems) as the list file is
    /// read ([`subscribers::read_from`]). Fails only when the file as a whole cannot be read
    /// (no `email` column): the error says why, for people.
    pub fn read(path: &Path, csv: impl std::io::Read) -> anyhow::Result<ImportRows> {
        let mut rows = ImportRows::default();
        subscribers::read_from(path, csv, |row| {
            match row {
                Ok(s) => rows.good.push(s),
                Err(p) => rows.bad.push(p),
            }
            Ok(())
        })?;
        Ok(rows)
    }
}

/// Why the import policy leaves an address out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unsubscribed, bounced or complained: only the reader can join again.
    Suppressed(Reason),
    /// Forgotten at its owner's request.
    Forgotten,
    /// Asked to join with the sign-up form and not confirmed yet: the reader's own
    /// confirmation decides.
    Pending,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Suppressed(r) => r.as_str(),
            Refusal::Forgotten => "forgotten",
            Refusal::Pending => "pending",
        }
    }
}

/// Whether [`import`] only says what it would do or does it.
#[derive(Clone, Copy, Debug)]
pub enum ImportMode<'a> {
    /// Nothing is written.
    Preview,
    /// The new readers are added: with `source` as their consent source (kept as
    /// `staff: SOURCE`, as the console's "Add a reader" keeps it), or `None` for the CLI's
    /// `staff`.
    Apply { source: Option<&'a str> },
}

/// What [`import`] did, or would do, row by row.
#[derive(Clone, Debug, Default)]
pub struct ImportPlan {
    /// Added (or to be added).
    pub added: Vec<Subscriber>,
    /// Already on the list (held by the ledger, or earlier in the same file): left as they
    /// are, names included.
    pub known: Vec<Subscriber>,
    pub refused: Vec<(Subscriber, Refusal)>,
    pub bad: Vec<Problem>,
}

impl ImportPlan {
    pub fn counts(&self) -> Imported {
        let n = |f: fn(Refusal) -> bool| self.refused.iter().filter(|(_, r)| f(*r)).count() as u64;
        Imported {
            added: self.added.len() as u64,
            known: self.known.len() as u64,
            suppressed: n(|r| r != Refusal::Pending),
            pending: n(|r| r == Refusal::Pending),
            bad: self.bad.len() as u64,
        }
    }
}

/// The import policy, for `brief subscribers import` and the console's import alike, decided
/// against the ledger as it is now: a forgotten or suppressed address (unsubscribed, bounced,
/// complained) is never re-subscribed, nor an address waiting for its sign-up confirmation;
/// an address already on the list is left as it is; the others are new readers. In
/// [`ImportMode::Apply`] the new readers are added.
pub fn import(
    app: &App,
    ledger: &mut Ledger,
    rows: ImportRows,
    mode: ImportMode<'_>,
) -> anyhow::Result<ImportPlan> {
    let now = app.clock.now_ms();
    let forgotten = forgotten(app, ledger)?;
    let pending: std::collections::HashSet<AddressKey> = ledger
        .signups()?
        .into_iter()
        .filter(|s| s.expires_at > now)
        .map(|s| AddressKey::from_text(&s.address))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut plan = ImportPlan {
        bad: rows.bad,
        ..ImportPlan::default()
    };
    for s in rows.good {
        let key = AddressKey::of(&s.address);
        let refusal = if forgotten.hash_of(&s.address).is_some() {
            Some(Refusal::Forgotten)
        } else if let Some(r) = ledger.suppression(&key)? {
            Some(if pending.contains(&key) {
                Refusal::Pending
            } else {
                Refusal::Suppressed(r)
            })
        } else if !ledger.is_stored_subscriber(&key)? && pending.contains(&key) {
            Some(Refusal::Pending)
        } else {
            None
        };
        if let Some(r) = refusal {
            plan.refused.push((s, r));
            continue;
        }
        let new = seen.insert(key.clone())
            && match mode {
                ImportMode::Preview => !ledger.is_stored_subscriber(&key)?,
                ImportMode::Apply { source: None } => {
                    ledger.add_subscriber(&s.address, s.name.as_deref(), s.lang.as_ref(), now)?
                }
                ImportMode::Apply {
                    source: Some(source),
                } => {
                    ledger
                        .add_subscriber_by_staff(
                            &s.address,
                            s.name.as_deref(),
                            s.lang.as_ref(),
                            source,
                            now,
                        )?
                        .1
                }
            };
        if new {
            plan.added.push(s);
        } else {
            plan.known.push(s);
        }
    }
    Ok(plan)
}
