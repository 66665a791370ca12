//! Bounces and complaints recorded against deliveries, and the suppression policy they apply.

use super::audience::*;
use super::base::*;

/// What came back about a delivery after it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceKind {
    /// A permanent failure (5.x.x).
    Hard,
    /// A temporary one (4.x.x, or delayed).
    Soft,
    /// The reader reported the message as spam.
    Complaint,
    /// A policy or content refusal (5.7.x, "blocked", "spam"): about the message or its
    /// sender, not the address. Counted for staff, never suppresses.
    Blocked,
}

words!(BounceKind {
    Hard => "hard",
    Soft => "soft",
    Complaint => "complaint",
    Blocked => "blocked",
});

/// What named the delivery a bounce or complaint is recorded against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// A VERP tag whose HMAC checked out.
    Tag,
    /// A keyed Message-ID whose MAC checked out.
    MessageId,
    /// Only an unkeyed Message-ID of a campaign stored before keyed ids: anyone could have
    /// computed it, so the report is shown against the delivery but suppresses nobody and
    /// counts toward nothing.
    Unverified,
}

words!(Evidence {
    Tag => "tag",
    MessageId => "message-id",
    Unverified => "unverified",
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

/// One bounce or complaint as the console's bounces page lists it (see
/// [`Ledger::bounce_list`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BounceListed {
    pub kind: BounceKind,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub evidence: Option<Evidence>,
    pub at: i64,
    /// The issue of the campaign whose delivery it is about.
    pub issue: String,
    /// The address as the list spelled it.
    pub address: String,
    /// The reader's number in the ledger (`readers.id`, what `/admin/subscribers/{id}` names;
    /// `None`: the reader was forgotten).
    pub subscriber: Option<i64>,
}

/// One bounce or complaint to record (see [`Ledger::record_bounce`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBounce<'a> {
    pub kind: BounceKind,
    /// What named the delivery: only [`Evidence::Tag`] and [`Evidence::MessageId`] can
    /// suppress.
    pub evidence: Evidence,
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

/// The line `brief subscribers list` shows for each address with a bounce, by address key.
pub type LatestBounces = std::collections::HashMap<AddressKey, String>;

impl Ledger {
    /// The delivery with row id `id` (from a VERP tag), if there is one.
    pub fn bounce_target(&self, id: DeliveryId) -> anyhow::Result<Option<BounceTarget>> {
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
    /// `complained`, and `soft_limit` soft bounces in distinct campaigns as `bounced`; a
    /// blocked one never suppresses, and nothing recorded on [`Evidence::Unverified`]
    /// suppresses or counts toward the soft limit. The
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
                (delivery_id, report_key, kind, status, diagnostic, reporting_mta, at, evidence)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                target.delivery,
                b.report_key,
                b.kind,
                b.status,
                b.diagnostic,
                b.reporting_mta,
                b.at,
                b.evidence
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
            _ if b.evidence == Evidence::Unverified => None,
            BounceKind::Blocked => None,
            BounceKind::Hard => Some(Reason::Bounced),
            BounceKind::Complaint => Some(Reason::Complained),
            BounceKind::Soft => {
                let campaigns: i64 = tx.query_row(
                    "SELECT COUNT(DISTINCT d.campaign_id) FROM bounces b
                     JOIN deliveries d ON d.id = b.delivery_id
                     WHERE d.address_key = ?1 AND b.kind = 'soft'
                       AND b.evidence IS NOT 'unverified'",
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

    /// A page of every bounce and complaint, newest first: at most `limit` after the first
    /// `offset`, and how many there are in all.
    pub fn bounce_list(&self, offset: u32, limit: u32) -> anyhow::Result<(Vec<BounceListed>, u64)> {
        let total: i64 = self
            .conn
            .query_row("SELECT count(*) FROM bounces", [], |r| r.get(0))?;
        let mut st = self.conn.prepare(
            "SELECT b.kind, b.status, b.diagnostic, b.evidence, b.at, c.issue, d.address, rd.id
             FROM bounces b
             JOIN deliveries d ON d.id = b.delivery_id
             JOIN campaigns c ON c.id = d.campaign_id
             LEFT JOIN readers rd ON rd.address_key = d.address_key
             ORDER BY b.at DESC, b.id DESC LIMIT ?1 OFFSET ?2",
        )?;
        let rows = st.query_map([limit, offset], |r| {
            Ok(BounceListed {
                kind: r.get(0)?,
                status: r.get(1)?,
                diagnostic: r.get(2)?,
                evidence: r.get(3)?,
                at: r.get(4)?,
                issue: r.get(5)?,
                address: r.get(6)?,
                subscriber: r.get(7)?,
            })
        })?;
        Ok((rows.collect::<Result<_, _>>()?, total as u64))
    }

    /// The latest bounce or complaint of every address that has one, by address key, as
    /// `kind status (date)`: what `brief subscribers list` shows.
    pub fn latest_bounces(&self) -> anyhow::Result<LatestBounces> {
        let mut st = self.conn.prepare(
            "SELECT d.address_key, b.kind, b.status, b.at, b.evidence
             FROM bounces b JOIN deliveries d ON d.id = b.delivery_id
             ORDER BY b.at, b.id",
        )?;
        let rows = st.query_map([], |r| {
            let kind: BounceKind = r.get(1)?;
            let status: Option<String> = r.get(2)?;
            let at: i64 = r.get(3)?;
            let evidence: Option<Evidence> = r.get(4)?;
            let day = chrono::DateTime::from_timestamp_millis(at)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            let mut text = match status {
                Some(s) => format!("{kind} {s} ({day})"),
                None => format!("{kind} ({day})"),
            };
            if evidence == Some(Evidence::Unverified) {
                text.push_str(" [unverified]");
            }
            Ok((AddressKey::from_text(&r.get::<_, String>(0)?), text))
        })?;
        // Later rows replace earlier ones: the latest wins.
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
