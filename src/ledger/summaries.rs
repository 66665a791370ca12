//! What staff are told about a campaign: the summaries after it and the checks before a fire.

use super::base::*;
use super::bounces::*;
use super::campaigns::*;
use super::deliveries::*;

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
    /// The counts by language, in the order the languages first appear in the list (`None`:
    /// the default language of a campaign started before editions).
    pub by_language: Vec<(Option<String>, Counts)>,
}

/// Readers of a campaign with a bounce or complaint reported, and unsubscribes since its send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SummaryBounces {
    pub hard: u64,
    pub soft: u64,
    pub complaints: u64,
    /// Refused on policy or content (5.7.x, "blocked", "spam"): the sender's problem.
    pub blocked: u64,
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

impl Ledger {
    /// The summaries due at `now`: finished campaigns whose summary was not mailed, and those
    /// finished `followup_after` ms ago or more whose follow-up was not.
    pub fn due_summaries(
        &self,
        now: Millis,
        followup_after: Duration,
    ) -> anyhow::Result<Vec<(Campaign, SummaryKind)>> {
        let (now, followup_after) = (now.0, span_ms(followup_after));
        let mut due = Vec::new();
        for (kind, sql) in [
            (
                SummaryKind::AtFinish,
                "FROM campaigns WHERE state = 'finished' AND summary_at IS NULL ORDER BY id",
            ),
            (
                SummaryKind::FollowUp,
                "FROM campaigns WHERE state = 'finished' AND followup_at IS NULL
                 AND finished_at <= ?1 ORDER BY id",
            ),
        ] {
            let mut st = self
                .conn
                .prepare(&format!("SELECT {CAMPAIGN_COLUMNS} {sql}"))?;
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

    /// When the first reader of `campaign` was tried (`None`: none yet), the start of its
    /// send to readers, after any canary window or hold.
    pub fn first_attempt(&self, campaign: CampaignId) -> anyhow::Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT min(first_attempt_at) FROM deliveries WHERE campaign_id = ?1",
            [campaign],
            |r| r.get(0),
        )?)
    }

    /// What a summary of `campaign` reports, as the ledger holds it now.
    pub fn summary_facts(&self, campaign: &Campaign) -> anyhow::Result<SummaryFacts> {
        let counts = self.counts(campaign.id)?;
        let first_attempt = self.first_attempt(campaign.id)?;
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
             WHERE d.campaign_id = ?1 AND b.evidence IS NOT 'unverified' GROUP BY b.kind",
        )?;
        for row in st.query_map([campaign.id], |r| {
            Ok((r.get::<_, BounceKind>(0)?, r.get::<_, i64>(1)? as u64))
        })? {
            let (kind, n) = row?;
            match kind {
                BounceKind::Hard => bounces.hard = n,
                BounceKind::Soft => bounces.soft = n,
                BounceKind::Complaint => bounces.complaints = n,
                BounceKind::Blocked => bounces.blocked = n,
            }
        }
        let since = campaign.finished_at.unwrap_or(campaign.created_at);
        bounces.unsubscribes = self.conn.query_row(
            "SELECT count(*) FROM suppressions WHERE reason = 'unsubscribed' AND at >= ?1",
            [first_attempt.unwrap_or(since)],
            |r| r.get::<_, i64>(0),
        )? as u64;
        let by_language = self.counts_by_lang(campaign.id)?;
        Ok(SummaryFacts {
            counts,
            first_attempt,
            failures,
            bounces,
            by_language,
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
}
