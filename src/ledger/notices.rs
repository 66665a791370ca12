//! The notice queue: confirmations, sign-in links, canary copies, preflights and summaries,
//! each tried, retried and recorded here.

use super::base::*;
use super::campaigns::*;

/// What a notice is (see the `notices` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// A reader's confirmation message.
    Confirmation,
    /// A staff sign-in link.
    StaffLogin,
    /// A campaign's canary copy to a staff address.
    Canary,
    /// The checks before a scheduled send, to staff.
    Preflight,
    /// A campaign's summary (or its follow-up), to staff.
    Summary,
    /// Tells staff that a campaign is held because no staff address accepted its canary copy.
    CanaryHeld,
}

words!(NoticeKind {
    Confirmation => "confirmation",
    StaffLogin => "staff_login",
    Canary => "canary",
    Preflight => "preflight",
    Summary => "summary",
    CanaryHeld => "canary_held",
});

/// Where a notice is: `pending -> sending -> sent | pending (4xx, lost connection) | failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeState {
    Pending,
    /// Claimed by a process that is trying it; the claim lapses at `next_at`.
    Sending,
    Sent,
    Failed,
}

words!(NoticeState {
    Pending => "pending",
    Sending => "sending",
    Sent => "sent",
    Failed => "failed",
});

/// A notice to queue: one message to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotice {
    pub kind: NoticeKind,
    pub recipient: String,
    /// The whole message as rendered, before DKIM (signed at each try).
    pub message: Vec<u8>,
    /// The campaign it is about (canary copies, summaries, the canary's hold).
    pub campaign: Option<CampaignId>,
}

/// A queued notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: i64,
    pub kind: NoticeKind,
    pub recipient: String,
    pub message: Vec<u8>,
    pub campaign: Option<CampaignId>,
    pub state: NoticeState,
    pub attempts: u32,
    pub next_at: i64,
    pub last_code: Option<u16>,
    pub last_text: Option<String>,
    pub created_at: i64,
}

/// What one try of a notice came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// The relay accepted it.
    Sent { code: u16, text: String },
    /// Not accepted, try again at `next_at` (a 4xx reply, a lost connection).
    Retry {
        code: Option<u16>,
        text: String,
        next_at: i64,
    },
    /// Refused for good (5xx), or given up after the kind's longest wait.
    Failed { code: Option<u16>, text: String },
}

/// What [`Ledger::record_notice`] changed besides the notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanaryVerdict {
    /// The first staff address accepted a canary copy: the readers wait only for the window.
    Accepted,
    /// Every canary copy failed: the campaign is held now.
    Unaccepted,
}

impl Ledger {
    /// Adds `notices` to the queue at `now`. With `lease`, they are claimed (`sending` until
    /// `now + lease`) for the caller, who tries them at once; without, they are due now.
    /// A new confirmation replaces one to the same address still waiting for a retry (its
    /// link is older). Returns their ids, in order.
    pub fn enqueue_notices(
        &mut self,
        notices: &[NewNotice],
        now: Millis,
        lease: Option<Duration>,
    ) -> anyhow::Result<Vec<i64>> {
        let (now, lease) = (now.0, lease.map(span_ms));
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ids = enqueue_in(&tx, notices, now, lease)?;
        tx.commit()?;
        Ok(ids)
    }

    /// Queues the canary copies of `campaign` (claimed for the caller, like
    /// [`Ledger::enqueue_notices`] with a lease), unless it has copies already, and closes its
    /// gate until a staff address accepts one (`canary_pending`). `None` when it had copies.
    pub fn enqueue_canary(
        &mut self,
        campaign: CampaignId,
        notices: &[NewNotice],
        now: Millis,
        lease: Duration,
    ) -> anyhow::Result<Option<Vec<i64>>> {
        let (now, lease) = (now.0, span_ms(lease));
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let copies: i64 = tx.query_row(
            "SELECT (SELECT count(*) FROM notices WHERE campaign_id = ?1 AND kind = 'canary')
                  + (SELECT count(*) FROM canary_sends WHERE campaign_id = ?1)",
            [campaign],
            |r| r.get(0),
        )?;
        if copies > 0 || notices.is_empty() {
            return Ok(None);
        }
        let ids = enqueue_in(&tx, notices, now, Some(lease))?;
        tx.execute(
            "UPDATE campaigns SET canary_pending = 1 WHERE id = ?1",
            [campaign],
        )?;
        tx.commit()?;
        Ok(Some(ids))
    }

    /// Claims up to `limit` notices due at `now` (pending ones whose `next_at` has come, and
    /// claims that lapsed: a process that died while trying them), only those of `campaign`
    /// when given, until `now + lease`.
    pub fn claim_notices(
        &mut self,
        now: Millis,
        lease: Duration,
        limit: usize,
        campaign: Option<CampaignId>,
    ) -> anyhow::Result<Vec<Notice>> {
        let (now, lease) = (now.0, span_ms(lease));
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let notices = {
            let mut st = tx.prepare(&format!(
                "SELECT {NOTICE_COLUMNS} FROM notices
                 WHERE state IN ('pending', 'sending') AND next_at <= ?1
                   AND (?3 IS NULL OR campaign_id = ?3)
                 ORDER BY next_at, id LIMIT ?2"
            ))?;
            let rows = st.query_map(params![now, limit as i64, campaign], notice_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        {
            let mut claim =
                tx.prepare("UPDATE notices SET state = 'sending', next_at = ?2 WHERE id = ?1")?;
            for n in &notices {
                claim.execute(params![n.id, now + lease])?;
            }
        }
        tx.commit()?;
        Ok(notices)
    }

    /// Gives claimed notices back untried (a stop came first): due at `now`.
    pub fn unclaim_notices(&mut self, ids: &[i64], now: i64) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare(
                "UPDATE notices SET state = 'pending', next_at = ?2 WHERE id = ?1 AND state = 'sending'",
            )?;
            for id in ids {
                st.execute(params![id, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records one try of a notice, and what follows from it in the same transaction: a
    /// confirmation the relay accepted sets its address's rate mark (`signups.mailed_at`) and
    /// is recorded in `confirmation_sends`; a canary copy's final outcome goes to
    /// `canary_sends`, the first accepted one opens the campaign's gate (after its window), and
    /// when every copy failed the campaign is held ([`HoldReason::CanaryUnaccepted`]).
    pub fn record_notice(
        &mut self,
        id: i64,
        outcome: &NoticeOutcome,
        now: Millis,
    ) -> anyhow::Result<Option<CanaryVerdict>> {
        let now = now.0;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (kind, recipient, campaign): (NoticeKind, String, Option<CampaignId>) = tx.query_row(
            "SELECT kind, recipient, campaign_id FROM notices WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (state, code, text, next_at) = match outcome {
            NoticeOutcome::Sent { code, text } => (NoticeState::Sent, Some(*code), text, now),
            NoticeOutcome::Retry {
                code,
                text,
                next_at,
            } => (NoticeState::Pending, *code, text, *next_at),
            NoticeOutcome::Failed { code, text } => (NoticeState::Failed, *code, text, now),
        };
        let done = state != NoticeState::Pending;
        tx.execute(
            "UPDATE notices SET state = ?2, attempts = attempts + 1, last_code = ?3,
                last_text = ?4, next_at = ?5, done_at = ?6
             WHERE id = ?1",
            params![id, state, code, text, next_at, done.then_some(now)],
        )?;
        let accepted = state == NoticeState::Sent;
        let mut verdict = None;
        match kind {
            NoticeKind::Confirmation if done => {
                if accepted {
                    tx.execute(
                        "UPDATE signups SET mailed_at = ?2 WHERE address_key = ?1",
                        params![AddressKey::from_text(&recipient).as_str(), now],
                    )?;
                }
                tx.execute(
                    "INSERT INTO confirmation_sends (address, code, text, at) VALUES (?1, ?2, ?3, ?4)",
                    params![recipient, code, text, now],
                )?;
            }
            NoticeKind::Canary if done => {
                let Some(cid) = campaign else {
                    bail!("canary notice {id} names no campaign in the ledger");
                };
                tx.execute(
                    "INSERT INTO canary_sends (campaign_id, address, accepted, code, text, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![cid, recipient, accepted, code, text, now],
                )?;
                if accepted {
                    let opened = tx.execute(
                        "UPDATE campaigns SET canary_pending = 0 WHERE id = ?1 AND canary_pending = 1",
                        [cid],
                    )?;
                    verdict = (opened > 0).then_some(CanaryVerdict::Accepted);
                } else {
                    let open: i64 = tx.query_row(
                        "SELECT count(*) FROM notices WHERE campaign_id = ?1 AND kind = 'canary'
                           AND state IN ('pending', 'sending', 'sent')",
                        [cid],
                        |r| r.get(0),
                    )?;
                    if open == 0 {
                        let held = tx.execute(
                            "UPDATE campaigns SET canary_pending = 0,
                                held_at = coalesce(held_at, ?2), held_reason = ?3
                             WHERE id = ?1 AND canary_pending = 1",
                            params![cid, now, HoldReason::CanaryUnaccepted],
                        )?;
                        verdict = (held > 0).then_some(CanaryVerdict::Unaccepted);
                    }
                }
            }
            _ => {}
        }
        tx.commit()?;
        Ok(verdict)
    }

    /// When the next queued notice is due (a lapsed claim counts), if any is queued.
    pub fn next_notice_at(&self) -> anyhow::Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT min(next_at) FROM notices WHERE state IN ('pending', 'sending')",
            [],
            |r| r.get(0),
        )?)
    }

    /// Every notice, oldest first (`brief status`, tests).
    pub fn notices(&self) -> anyhow::Result<Vec<Notice>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {NOTICE_COLUMNS} FROM notices ORDER BY id"))?;
        let rows = st.query_map([], notice_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

pub(super) const NOTICE_COLUMNS: &str =
    "id, kind, recipient, message, campaign_id, state, attempts, next_at, \
     last_code, last_text, created_at";

pub(super) fn notice_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Notice> {
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

pub(super) fn enqueue_in(
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
