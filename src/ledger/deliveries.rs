//! Deliveries: claims, recorded attempts, the operations that put deliveries back to pending,
//! and the per-recipient report.

use super::base::*;
use super::campaigns::*;

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
    pub id: DeliveryId,
    /// The address as the list spelled it.
    pub address: String,
    pub key: AddressKey,
    pub name: Option<String>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The language it is sent in (a configured tag), as resolved when the campaign started;
    /// `None` for a delivery of an older campaign: the default language.
    pub lang: Option<String>,
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
    /// The language it is sent in; `None` for a delivery of a campaign started before
    /// editions (the default language).
    pub lang: Option<String>,
}

/// What [`Ledger::claim_due`] reads: due pending deliveries (`?1` campaign, `?2` limit), then
/// due deferred ones (`?3` now), each with whether its address is suppressed.
const CLAIM_QUERIES: [&str; 2] = [
    "SELECT d.id, d.address, d.address_key, d.name, d.attempts, s.address_key IS NOT NULL, d.lang
     FROM deliveries d LEFT JOIN suppressions s ON s.address_key = d.address_key
     WHERE d.campaign_id = ?1 AND d.state = 'pending'
     ORDER BY d.next_attempt_at, d.id LIMIT ?2",
    "SELECT d.id, d.address, d.address_key, d.name, d.attempts, s.address_key IS NOT NULL, d.lang
     FROM deliveries d LEFT JOIN suppressions s ON s.address_key = d.address_key
     WHERE d.campaign_id = ?1 AND d.state = 'deferred' AND d.next_attempt_at <= ?3
     ORDER BY d.next_attempt_at, d.id LIMIT ?2",
];

impl Ledger {
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

    /// The deliveries of `campaign` by language (`None`: the default language of a campaign
    /// started before editions), in the order the languages first appear in its list.
    pub fn counts_by_lang(
        &self,
        campaign: CampaignId,
    ) -> anyhow::Result<Vec<(Option<String>, Counts)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT lang, state, count(*), min(id) FROM deliveries WHERE campaign_id = ?1
             GROUP BY lang, state ORDER BY min(id)",
        )?;
        let rows = st.query_map([campaign], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, State>(1)?,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        let mut out: Vec<(Option<String>, Counts)> = Vec::new();
        for row in rows {
            let (lang, s, n) = row?;
            match out.iter_mut().find(|(l, _)| *l == lang) {
                Some((_, c)) => *c.slot(s) += n,
                None => {
                    let mut c = Counts::default();
                    *c.slot(s) = n;
                    out.push((lang, c));
                }
            }
        }
        Ok(out)
    }

    /// One of the five ways a delivery goes back to `pending`: at the start of a run, for
    /// whatever a killed run left in flight.
    ///
    /// - Which: every delivery of `campaign` in state `sending`.
    /// - State: `sending -> pending`.
    /// - Attempts: unchanged (`next_attempt_at` and the last reply too).
    /// - Flags: sets `possible_duplicate`.
    ///
    /// Returns how many. They may or may not have reached the server: this is where the
    /// at-most-in-flight duplicates of a crash come from, and the flag is how the report names
    /// the readers who may have them.
    pub fn reset_in_flight_as_possible_duplicates(
        &mut self,
        campaign: CampaignId,
    ) -> anyhow::Result<u64> {
        Ok(self.conn.execute(
            "UPDATE deliveries SET state = 'pending', possible_duplicate = 1
             WHERE campaign_id = ?1 AND state = 'sending'",
            [campaign],
        )? as u64)
    }

    /// One of the five ways a delivery goes back to `pending`: at the end of a stopping run, for
    /// the claims it never handed to the server.
    ///
    /// - Which: every delivery of `campaign` in state `sending` (the run's own claims: call it
    ///   only once every outcome of the run is recorded; anything else left `sending` is
    ///   [`Ledger::reset_in_flight_as_possible_duplicates`]'s).
    /// - State: `sending -> pending`.
    /// - Attempts: unchanged (`next_attempt_at` and the last reply too).
    /// - Flags: none set or cleared (unlike the reset, no `possible_duplicate`).
    ///
    /// Returns how many.
    pub fn unclaim_all_sending(&mut self, campaign: CampaignId) -> anyhow::Result<u64> {
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
                                lang: r.get(6)?,
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

    /// One of the five ways a delivery goes back to `pending`: during a run, for named claims
    /// that were not attempted (no connection could be opened, or the run is stopping).
    ///
    /// - Which: the deliveries of `campaign` with the address keys `keys` that are `sending`
    ///   (one transaction).
    /// - State: `sending -> pending`.
    /// - Attempts: unchanged (`next_attempt_at` and the last reply too).
    /// - Flags: none set or cleared.
    pub fn release_untried(
        &mut self,
        campaign: CampaignId,
        keys: &[AddressKey],
    ) -> anyhow::Result<()> {
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

    /// One of the five ways a delivery goes back to `pending`: takes back attempts that were the
    /// relay's fault, not the readers' (the circuit breaker's streak).
    ///
    /// - Which: the deliveries of `campaign` with the address keys given, in state `pending`,
    ///   `sending`, `deferred` or `failed` (a delivery sent or suppressed meanwhile is left
    ///   alone; one transaction).
    /// - State: `-> pending`.
    /// - Attempts: set back to the count given beside each key (what it had before the streak,
    ///   as if never attempted since); `next_attempt_at` cleared. The last reply stays, so the
    ///   report says what happened.
    /// - Flags: none set or cleared.
    ///
    /// Returns how many went back.
    pub fn undo_streak_attempts(
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

    /// How many `failed` deliveries of the campaign [`Self::retry_failed_deliveries`] would put back: those
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

    /// One of the five ways a delivery goes back to `pending`: staff retrying the failures
    /// (`brief send --retry-failed`, after fixing a cause brief could not see).
    ///
    /// - Which: the deliveries of `campaign` in state `failed` whose address is not suppressed.
    /// - State: `failed -> pending`; the campaign goes back to `sending`, unfinished, when any
    ///   delivery went back.
    /// - Attempts: reset to 0, `next_attempt_at` cleared. The last reply stays, prefixed (once)
    ///   with `retried with --retry-failed after: `.
    /// - Flags: none set or cleared.
    ///
    /// Returns how many went back. Call it holding the campaign's send lock.
    pub fn retry_failed_deliveries(&mut self, campaign: CampaignId) -> anyhow::Result<u64> {
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
}

pub(super) fn record_in(
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
pub(super) const DELIVERY_COLUMNS: &str =
    "address, name, state, attempts, last_code, last_text, message_id, \
     first_attempt_at, last_attempt_at, next_attempt_at, possible_duplicate, revision, lang, \
     (SELECT b.kind || COALESCE(' ' || b.status, '') || COALESCE(': ' || b.diagnostic, '') \
             || COALESCE(' (' || b.reporting_mta || ')', '') \
             || CASE WHEN b.evidence = 'unverified' THEN ' [unverified]' ELSE '' END \
      FROM bounces b WHERE b.delivery_id = deliveries.id ORDER BY b.at DESC, b.id DESC LIMIT 1)";

/// One row of [`DELIVERY_COLUMNS`] as a report row.
pub(super) fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
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
        lang: r.get(12)?,
        bounce: r.get(13)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::audience::Reason;
    use crate::ledger::campaigns::kit::{four_readers, message};

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
        assert_eq!(l.reset_in_flight_as_possible_duplicates(c.id).unwrap(), 2);
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
        assert_eq!(l.unclaim_all_sending(c.id).unwrap(), 2);
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
            .undo_streak_attempts(
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
        assert_eq!(l.retry_failed_deliveries(c.id).unwrap(), 1);
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
        assert_eq!(l.retry_failed_deliveries(c.id).unwrap(), 0);
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

    #[test]
    fn campaign_is_unique_per_issue_and_delivery_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("d/brief.db")).unwrap();
        let id: IssueId = "2021-07".parse().unwrap();
        l.suppress(&addr("gone@example.org"), Reason::Unsubscribed, "", 1)
            .unwrap();
        let (c, new) = l
            .create_campaign(id, &[message("s")], Trigger::Cli, Millis(1), None, |sink| {
                assert!(sink.add(&addr("a@example.org"), None, "m1", None)?);
                assert!(!sink.add(&addr("A@Example.org"), None, "m2", None)?);
                assert!(sink.add(&addr("Gone@example.org"), None, "m3", None)?);
                Ok(())
            })
            .unwrap();
        assert!(new);
        let (c2, new2) = l
            .create_campaign(id, &[message("s")], Trigger::Cli, Millis(2), None, |_| {
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
            .create_campaign(
                id,
                &[message("first")],
                Trigger::Cli,
                Millis(1),
                None,
                |sink| {
                    sink.add(&addr("a@x.org"), None, "m1", None)?;
                    sink.add(&addr("b@x.org"), None, "m2", None)?;
                    Ok(())
                },
            )
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

        let revision = l.revise_campaign(c.id, &[message("second")]).unwrap();

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
}
