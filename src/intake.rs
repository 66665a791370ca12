//! Bounce intake: one message that came back to the bounce address (from `brief bounces
//! import`, the webhook or the IMAP mailbox) classified by `bounce`, attributed to a delivery
//! only on unforgeable evidence, and recorded under the ledger's policy.

use sha2::{Digest, Sha256};

use crate::app::App;
use crate::bounce;
use crate::ledger::{BounceOutcome, BounceTarget, Evidence, Ledger, NewBounce, Reason};
use crate::metrics::{BounceKind as BounceMetric, Metrics};
use crate::token::TokenKey;

/// What [`take_bounce`] made of one message that came back to the bounce address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenBounce {
    /// What the parser found.
    pub report: bounce::Report,
    pub outcome: BounceHandling,
}

/// What a message that came back changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BounceHandling {
    /// Not a bounce or complaint (an auto-reply, a reply from a person, a success notice,
    /// anything unrecognised): nothing changed.
    Ignored,
    /// A bounce or complaint that neither a valid VERP tag nor a keyed Message-ID attributes
    /// to a delivery of ours (a forgery, or a report about mail brief did not send): nothing
    /// changed.
    Unattributed,
    /// Named a delivery only by an unkeyed Message-ID (of a campaign stored before keyed ids,
    /// which anyone can compute): recorded against the delivery as unverified, for staff to
    /// see; nobody suppressed, nothing counted toward a limit.
    Unverified(BounceTarget),
    /// Recorded before for this delivery: nothing changed.
    Duplicate(BounceTarget),
    /// Recorded against the delivery; the address was suppressed for this reason by it.
    Recorded {
        target: BounceTarget,
        suppressed: Option<Reason>,
    },
}

impl TakenBounce {
    /// Whether it changed nothing and matched nothing: what an IMAP mailbox leaves in place.
    pub fn recognised(&self) -> bool {
        !matches!(
            self.outcome,
            BounceHandling::Ignored | BounceHandling::Unattributed
        )
    }
}

/// The delivery `report` is about and what names it: the first VERP tag whose HMAC checks out
/// and names a delivery; else the first returned Message-ID of a delivery whose keyed MAC
/// checks out for that delivery's issue and address; else a delivery whose recorded
/// Message-ID is merely equal to a returned one, as [`Evidence::Unverified`]. `None`: nothing
/// names a delivery of ours.
fn attribute(
    ledger: &Ledger,
    key: &TokenKey,
    report: &bounce::Report,
) -> anyhow::Result<Option<(BounceTarget, Evidence)>> {
    for id in report.tags.iter().filter_map(|t| key.open_verp_tag(t)) {
        if let Some(target) = ledger.bounce_target(id)? {
            return Ok(Some((target, Evidence::Tag)));
        }
    }
    let mut unverified = None;
    for mid in &report.original_message_ids {
        let Some(target) = ledger.bounce_target_by_message_id(mid)? else {
            continue;
        };
        if crate::message::is_campaign_id(key, mid, &target.issue, &target.address) {
            return Ok(Some((target, Evidence::MessageId)));
        }
        unverified.get_or_insert(target);
    }
    Ok(unverified.map(|t| (t, Evidence::Unverified)))
}

/// Takes one message that came back to the bounce address (from `brief bounces import`,
/// the webhook or the IMAP mailbox): classifies it, attributes it to a delivery, and
/// records it under the policy of [`Ledger::record_bounce`]. Counts it in
/// `brief_bounces_total` and logs a suppression with the address as a keyed hash.
///
/// Only unforgeable evidence attributes a report: a VERP tag whose HMAC checks out under
/// `key`, else a returned Message-ID whose MAC does (see [`crate::message::is_campaign_id`]).
/// A returned Message-ID of a campaign stored before keyed ids (which anyone can compute
/// from the issue id, the address and the From domain) is recorded against its delivery as
/// [`Evidence::Unverified`], for staff to see, and suppresses nobody. A report nothing
/// attributes is *unattributed*: counted and logged, nothing changed.
pub fn take_bounce(
    app: &App,
    ledger: &mut Ledger,
    key: &TokenKey,
    metrics: &Metrics,
    raw: &[u8],
) -> anyhow::Result<TakenBounce> {
    let bounces = app.config.bounces.as_ref();
    let address = bounces.map(|b| b.address.email.to_string());
    let report = bounce::parse(raw, address.as_deref());
    let Some(kind) = report.kind.recorded() else {
        metrics.bounce(BounceMetric::ignored);
        return Ok(TakenBounce {
            report,
            outcome: BounceHandling::Ignored,
        });
    };
    let Some((target, evidence)) = attribute(ledger, key, &report)? else {
        tracing::info!(
            kind = kind.as_str(),
            reporting_mta = report.reporting_mta.as_deref().unwrap_or("-"),
            "an unattributed {kind} report (no valid VERP tag, no keyed Message-ID of ours); \
             nothing changed"
        );
        metrics.bounce(BounceMetric::unattributed);
        return Ok(TakenBounce {
            report,
            outcome: BounceHandling::Unattributed,
        });
    };
    let report_key = match &report.report_id {
        Some(id) => format!("mid:{id}"),
        None => format!("sha256:{}", crate::token::hex(&Sha256::digest(raw))),
    };
    let soft_limit = bounces.map_or_else(crate::config::default_soft_limit, |b| b.soft_limit);
    let outcome = ledger.record_bounce(
        &target,
        &NewBounce {
            kind,
            evidence,
            report_key: &report_key,
            status: report.status.as_deref(),
            diagnostic: report.diagnostic.as_deref(),
            reporting_mta: report.reporting_mta.as_deref(),
            at: app.clock.now_ms(),
        },
        soft_limit,
    )?;
    let outcome = match outcome {
        BounceOutcome::Duplicate => BounceHandling::Duplicate(target),
        BounceOutcome::Recorded { .. } if evidence == Evidence::Unverified => {
            tracing::info!(
                recipient = %key.tag(&target.address),
                issue = %target.issue,
                kind = kind.as_str(),
                "a {kind} report names a delivery by an unkeyed Message-ID only (a campaign \
                 stored before keyed ids): recorded as unverified, nobody suppressed"
            );
            metrics.bounce(BounceMetric::unattributed);
            BounceHandling::Unverified(target)
        }
        BounceOutcome::Recorded { suppressed } => {
            metrics.bounce(kind.into());
            if let Some(reason) = suppressed {
                tracing::info!(
                    recipient = %key.tag(&target.address),
                    issue = %target.issue,
                    kind = kind.as_str(),
                    status = report.status.as_deref().unwrap_or("-"),
                    "suppressed as {reason} after a {kind} report"
                );
            }
            BounceHandling::Recorded { target, suppressed }
        }
    };
    Ok(TakenBounce { report, outcome })
}
