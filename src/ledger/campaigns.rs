//! Campaigns: creation and revisions of what they send, the send lock and lease, the canary
//! gate (hold, open) and the canary copies.

use super::base::*;

/// One canary copy: the campaign's message mailed to a staff address before the readers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanarySend {
    pub address: String,
    pub accepted: bool,
    pub code: Option<u16>,
    pub text: String,
    pub at: i64,
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
    /// Held by staff since this time (ms), or held by brief because no staff address
    /// accepted the canary copy ([`Campaign::hold_reason`] says which).
    Held {
        since: i64,
    },
    /// The canary window is over, but no staff address has accepted a canary copy yet and
    /// some copies are still being tried (`notices`): the readers wait for the first to be
    /// accepted, or for all to fail (the campaign is then held).
    AwaitingCanary,
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
    /// Why it is held (`None` when it is not).
    pub hold_reason: Option<HoldReason>,
    /// Its canary copies went out and none was accepted yet, none given up: the readers wait
    /// for a staff address to accept one (see [`Gate::AwaitingCanary`]).
    pub canary_pending: bool,
}

/// Why a campaign is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldReason {
    /// Staff held it (`brief hold`, the console's Hold).
    Staff,
    /// No staff address accepted its canary copy: nobody has seen the message.
    CanaryUnaccepted,
}

words!(HoldReason {
    Staff => "staff",
    CanaryUnaccepted => "canary_unaccepted",
});

impl HoldReason {
    /// What the CLI, the console and the log say about a campaign held for this reason.
    pub fn describe(self) -> &'static str {
        match self {
            HoldReason::Staff => "held by staff",
            HoldReason::CanaryUnaccepted => "held: no staff address accepted the canary copy",
        }
    }
}

/// The columns of a campaign's row that its gate is read from, by name, so that the two
/// instants cannot trade places on the way to [`Gate`].
pub(super) struct GateColumns {
    /// Held since (when held).
    pub held_at: Option<i64>,
    /// The end of its canary window (when it has one).
    pub release_at: Option<i64>,
    /// Its canary copies went out and none was accepted yet.
    pub canary_pending: bool,
}

impl GateColumns {
    /// The gate at `now`: the one rule, for the ledger's claims and for what the CLI and the
    /// console show.
    pub(super) fn gate(&self, now: Millis) -> Gate {
        match (self.held_at, self.release_at) {
            (Some(since), _) => Gate::Held { since },
            (None, Some(until)) if until > now.0 => Gate::Canary { until },
            _ if self.canary_pending => Gate::AwaitingCanary,
            _ => Gate::Open,
        }
    }
}

impl Campaign {
    /// Whether its readers may be mailed at `now`, as this copy of its row says (the
    /// ledger's [`Ledger::gate`] reads the row again).
    pub fn gate(&self, now: i64) -> Gate {
        GateColumns {
            held_at: self.held_at,
            release_at: self.release_at,
            canary_pending: self.canary_pending,
        }
        .gate(Millis(now))
    }

    /// Its state in one word at `now`: `finished`, `held` (by staff), `canary` (in its
    /// canary window) or `sending`.
    pub fn state_word(&self, now: i64) -> &'static str {
        match self.gate(now) {
            _ if self.finished => "finished",
            Gate::Held { .. } => "held",
            Gate::Canary { .. } | Gate::AwaitingCanary => "canary",
            Gate::Open => "sending",
        }
    }
}

/// What a campaign sends in one language: its message, fixed when the campaign starts. A
/// campaign stores one per configured language (each revision has them all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignMessage {
    /// 1 for the message the campaign started with; one more for each `--restart-unsent`.
    pub revision: u32,
    /// The language of this edition (a BCP 47 tag); `None` for the one message of a campaign
    /// stored before editions, which is the default language's.
    pub lang: Option<String>,
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
    /// Adds one recipient, sent in `lang` (a configured language's tag; `None`: the default
    /// language); returns false when the address (in any case) is already there. A suppressed
    /// address is recorded as suppressed.
    pub fn add(
        &mut self,
        address: &Address,
        name: Option<&str>,
        message_id: &str,
        lang: Option<&str>,
    ) -> anyhow::Result<bool> {
        Ok(self.st.execute(params![
            self.campaign,
            address.as_ref() as &str,
            AddressKey::of(address).as_str(),
            name,
            message_id,
            lang
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

/// Held while a process sends a campaign; the operating system releases it when the process
/// ends, however it ends.
#[derive(Debug)]
pub struct CampaignLock {
    _file: std::fs::File,
}

impl Ledger {
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

    /// Renews the lease of `campaign` for `owner` (a process sending it) at `now` (ms): whoever
    /// held it before, the latest heartbeat wins.
    pub fn renew_lease(&self, campaign: CampaignId, owner: &str, now: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO campaign_leases (campaign_id, owner, heartbeat_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (campaign_id) DO UPDATE SET owner = excluded.owner,
                 heartbeat_at = excluded.heartbeat_at",
            params![campaign, owner, now],
        )?;
        Ok(())
    }

    /// The unfinished campaigns nobody has heartbeated since `stale_before` (ms): their lease is
    /// older, or they have none and were created before then. Each with its last heartbeat.
    pub fn stale_campaigns(
        &self,
        stale_before: i64,
    ) -> anyhow::Result<Vec<(Campaign, Option<i64>)>> {
        // The lease's columns share no name with the campaign's, so CAMPAIGN_COLUMNS reads
        // unqualified in the join; the heartbeat comes after them.
        let mut st = self.conn.prepare(&format!(
            "SELECT {CAMPAIGN_COLUMNS}, heartbeat_at
             FROM campaigns c LEFT JOIN campaign_leases l ON l.campaign_id = c.id
             WHERE c.state != 'finished' AND coalesce(l.heartbeat_at, c.created_at) < ?1
             ORDER BY c.issue",
        ))?;
        let rows = st.query_map(params![stale_before], |r| {
            Ok((campaign_row(r)?, r.get(CAMPAIGN_COLUMN_COUNT)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The campaign of `issue`, if there is one.
    pub fn campaign(&self, issue: IssueId) -> anyhow::Result<Option<Campaign>> {
        campaign_by_issue(&self.conn, issue)
    }

    /// Every campaign, newest issue first.
    pub fn campaigns(&self) -> anyhow::Result<Vec<Campaign>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY issue DESC"
        ))?;
        let rows = st.query_map([], campaign_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates the campaign of `issue` unless it exists; returns it and whether it is new. A new
    /// campaign's messages (revision 1 of each of `messages`, one per language, the default
    /// language's first: its subject is the campaign's) are stored and its recipients are
    /// added by `fill` in the same transaction, so a campaign never exists without its list or
    /// without what it sends. Two processes racing here get the same campaign: the issue is a
    /// unique key.
    pub fn create_campaign(
        &mut self,
        issue: IssueId,
        messages: &[CampaignMessage],
        trigger: Trigger,
        now: Millis,
        canary: Option<Duration>,
        fill: impl FnOnce(&mut RecipientSink<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<(Campaign, bool)> {
        let Some(message) = messages.first() else {
            bail!("a campaign of {issue} needs a message in at least one language");
        };
        let release_at = canary.map(|window| now.after(window).0);
        let now = now.0;
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
                    "INSERT OR IGNORE INTO deliveries (campaign_id, address, address_key, name, state, message_id, lang)
                     VALUES (?1, ?2, ?3, ?4,
                             CASE WHEN EXISTS (SELECT 1 FROM suppressions WHERE address_key = ?3) THEN 'suppressed' ELSE 'pending' END,
                             ?5, ?6)",
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
            for m in messages {
                insert_message(
                    &tx,
                    campaign,
                    &CampaignMessage {
                        revision: 1,
                        unsent: unsent as u64,
                        ..m.clone()
                    },
                )?;
            }
        }
        tx.commit()?;
        let c = self.campaign(issue)?.expect("just inserted");
        Ok((c, n == 1))
    }

    /// The message `campaign` sends now in its default language (of its latest revision, the
    /// edition stored first); `None` for a campaign started by a brief that did not store it.
    pub fn campaign_message(
        &self,
        campaign: CampaignId,
    ) -> anyhow::Result<Option<CampaignMessage>> {
        Ok(self.campaign_messages(campaign)?.into_iter().next())
    }

    /// Every edition `campaign` sends now (its latest revision), in the order they were stored:
    /// the default language's first. Empty for a campaign started by a brief that did not
    /// store its message.
    pub fn campaign_messages(&self, campaign: CampaignId) -> anyhow::Result<Vec<CampaignMessage>> {
        let mut st = self.conn.prepare_cached(
            "SELECT revision, lang, subject, template, web, folder_hash, unsent, at
             FROM campaign_messages
             WHERE campaign_id = ?1
               AND revision = (SELECT max(revision) FROM campaign_messages WHERE campaign_id = ?1)
             ORDER BY rowid",
        )?;
        let rows = st.query_map([campaign], message_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The languages `campaign` sends now (its latest revision), each with its subject, in the
    /// order they were stored, the default language's first; `None` for the one message of a
    /// campaign stored before editions.
    pub fn campaign_subjects(
        &self,
        campaign: CampaignId,
    ) -> anyhow::Result<Vec<(Option<String>, String)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT lang, subject FROM campaign_messages
             WHERE campaign_id = ?1
               AND revision = (SELECT max(revision) FROM campaign_messages WHERE campaign_id = ?1)
             ORDER BY rowid",
        )?;
        let rows = st.query_map([campaign], |r| {
            let lang: String = r.get(0)?;
            Ok(((!lang.is_empty()).then_some(lang), r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The web version of `campaign` in `lang` (`None`: its default language) as its latest
    /// revision stored it; `None` when it has no edition in that language.
    pub fn campaign_web(
        &self,
        campaign: CampaignId,
        lang: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        let messages = self.campaign_messages(campaign)?;
        Ok(match lang {
            None => messages.into_iter().next(),
            Some(tag) => messages.into_iter().find(|m| {
                m.lang
                    .as_deref()
                    .is_some_and(|l| l.eq_ignore_ascii_case(tag))
            }),
        }
        .map(|m| m.web))
    }

    /// Makes `messages` (one per language, the default language's first) what `campaign`
    /// sends from now on, as its next revision, for the deliveries not yet sent (staff
    /// correcting an issue mid-campaign, on purpose). Returns the new revision. Call it
    /// holding the campaign's send lock.
    pub fn revise_campaign(
        &mut self,
        campaign: CampaignId,
        messages: &[CampaignMessage],
    ) -> anyhow::Result<u32> {
        let Some(message) = messages.first() else {
            bail!("a revision needs a message in at least one language");
        };
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
        for m in messages {
            insert_message(
                &tx,
                campaign,
                &CampaignMessage {
                    revision,
                    unsent: unsent as u64,
                    ..m.clone()
                },
            )?;
        }
        tx.execute(
            "UPDATE campaigns SET subject = ?2 WHERE id = ?1",
            params![campaign, message.subject],
        )?;
        tx.commit()?;
        Ok(revision)
    }

    /// Whether readers of `campaign` may be mailed at `now`: not while it is held, nor before
    /// the end of its canary window.
    pub fn gate(&self, campaign: CampaignId, now: i64) -> anyhow::Result<Gate> {
        gate_in(&self.conn, campaign, now)
    }

    /// Holds the campaign of `issue` (staff, during its canary window): no reader is mailed
    /// until [`Ledger::open_gate`]. Refused once a reader was mailed: a hold stops a
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

    /// Opens the canary gate of the campaign of `issue` (`brief release`, the console's
    /// Release): ends a hold (`held_at`, `held_reason`), stops waiting for a canary copy to be
    /// accepted (`canary_pending`), and ends what is left of its canary window (`release_at`
    /// becomes `now` if later), so the run that waits for it (the daemon, or `brief send`) mails
    /// the readers. It touches no delivery (not one of the ways back to `pending`). Returns the
    /// campaign as it was, `None` when there is none.
    pub fn open_gate(&mut self, issue: IssueId, now: i64) -> anyhow::Result<Option<Campaign>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let c = campaign_by_issue(&tx, issue)?;
        if let Some(c) = &c {
            tx.execute(
                "UPDATE campaigns SET held_at = NULL, held_reason = NULL, canary_pending = 0,
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
}

pub(super) fn insert_message(
    tx: &Transaction<'_>,
    campaign: CampaignId,
    m: &CampaignMessage,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO campaign_messages
         (campaign_id, revision, subject, template, web, folder_hash, unsent, at, lang)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            campaign,
            m.revision,
            m.subject,
            m.template,
            m.web,
            m.folder_hash,
            m.unsent as i64,
            m.at,
            m.lang.as_deref().unwrap_or("")
        ],
    )?;
    Ok(())
}

/// One row of `campaign_messages` (revision, lang, subject, template, web, folder_hash,
/// unsent, at); an empty `lang` (a row stored before editions) reads as `None`.
fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CampaignMessage> {
    let lang: String = r.get(1)?;
    Ok(CampaignMessage {
        revision: r.get(0)?,
        lang: (!lang.is_empty()).then_some(lang),
        subject: r.get(2)?,
        template: r.get(3)?,
        web: r.get(4)?,
        folder_hash: r.get(5)?,
        unsent: r.get::<_, i64>(6)? as u64,
        at: r.get(7)?,
    })
}

/// The columns [`campaign_row`] reads, in its order, and how many they are.
pub(super) const CAMPAIGN_COLUMNS: &str =
    "id, issue, subject, state, created_at, finished_at, trigger, \
                                release_at, held_at, held_reason, canary_pending";

pub(super) const CAMPAIGN_COLUMN_COUNT: usize = 11;

pub(super) fn campaign_by_issue(
    conn: &Connection,
    issue: IssueId,
) -> anyhow::Result<Option<Campaign>> {
    Ok(conn
        .query_row(
            &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE issue = ?1"),
            [issue.to_string()],
            campaign_row,
        )
        .optional()?)
}

pub(super) fn gate_in(conn: &Connection, campaign: CampaignId, now: i64) -> anyhow::Result<Gate> {
    let columns = conn.query_row(
        "SELECT held_at, release_at, canary_pending FROM campaigns WHERE id = ?1",
        [campaign],
        |r| {
            Ok(GateColumns {
                held_at: r.get(0)?,
                release_at: r.get(1)?,
                canary_pending: r.get(2)?,
            })
        },
    )?;
    Ok(columns.gate(Millis(now)))
}

pub(super) fn campaign_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Campaign> {
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

/// What the ledger's tests of several rooms start from.
#[cfg(test)]
pub(super) mod kit {
    use super::*;

    /// A fresh ledger in `dir` with the campaign of 2021-07 to a@, b@, c@ and d@x.org.
    pub(crate) fn four_readers(dir: &tempfile::TempDir) -> (Ledger, Campaign) {
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let (c, _) = l
            .create_campaign(
                "2021-07".parse().unwrap(),
                &[message("s")],
                Trigger::Cli,
                Millis(1),
                None,
                |sink| {
                    for a in ["a@x.org", "b@x.org", "c@x.org", "d@x.org"] {
                        sink.add(&addr(a), None, a, None)?;
                    }
                    Ok(())
                },
            )
            .unwrap();
        (l, c)
    }

    pub(crate) fn message(subject: &str) -> CampaignMessage {
        CampaignMessage {
            revision: 1,
            lang: None,
            subject: subject.into(),
            template: format!("template of {subject}"),
            web: format!("<p>{subject}</p>"),
            folder_hash: Some(format!("hash of {subject}")),
            unsent: 0,
            at: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kit::{four_readers, message};
    use super::*;

    #[test]
    fn one_process_at_a_time_sends_a_campaign() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brief.db");
        let mut a = Ledger::open(&p).unwrap();
        let b = Ledger::open(&p).unwrap();
        let (c, _) = a
            .create_campaign(
                "2021-07".parse().unwrap(),
                &[message("s")],
                Trigger::Cli,
                Millis(1),
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
    fn a_campaign_whose_lease_went_stale_is_listed_and_a_renewed_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (l, c) = four_readers(&dir);
        let created = l.campaign(c.issue).unwrap().unwrap().created_at;
        // No lease yet: stale once the campaign is older than the cut-off.
        assert!(l.stale_campaigns(created).unwrap().is_empty());
        let stale = l.stale_campaigns(created + 1).unwrap();
        assert_eq!(stale.len(), 1);
        assert_eq!((stale[0].0.id, stale[0].1), (c.id, None));
        l.renew_lease(c.id, "a", created + 10_000).unwrap();
        assert!(l.stale_campaigns(created + 10_000).unwrap().is_empty());
        l.renew_lease(c.id, "b", created + 20_000).unwrap();
        let stale = l.stale_campaigns(created + 20_001).unwrap();
        assert_eq!(stale[0].1, Some(created + 20_000));
    }
}
