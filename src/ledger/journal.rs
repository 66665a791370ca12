//! The journal of the schedule: fires missed while the daemon was down, and the feed items
//! already sent.

use super::base::*;

impl Ledger {
    /// Notes that the schedule's fire at `fired_at` for `issue` was missed and reported at
    /// `now`; returns false when it was noted before (by an earlier start).
    pub fn note_missed_fire(
        &mut self,
        issue: IssueId,
        fired_at: chrono::DateTime<chrono::Utc>,
        now: Millis,
    ) -> anyhow::Result<bool> {
        let (fired_at, now) = (fired_at.timestamp_millis(), now.0);
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
