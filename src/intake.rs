//! Bounce intake: one message that came back to the bounce address (from `brief bounces
//! import`, the webhook or the IMAP mailbox) classified by `bounce`, attributed to a delivery
//! only on unforgeable evidence, and recorded under the ledger's policy; and the daemon's
//! visits to the bounce mailbox over IMAP ([`watch_mailbox`]).

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::bounce;
use crate::ledger::{
    BounceOutcome, BounceTarget, DeliveryId, Evidence, Ledger, NewBounce, Reason, SharedLedger,
};
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
        if let Some(target) = ledger.bounce_target(DeliveryId::from_tag(id))? {
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

/// How long each step with the bounce mailbox may take.
const IMAP_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages fetched from the bounce mailbox at a time, and batches per visit: a full mailbox
/// is worked through over a few visits, never in one endless one.
const IMAP_BATCH: usize = 100;
const IMAP_BATCHES: usize = 20;

/// What the bounce mailbox's reports are taken with: the daemon's app, a ledger connection,
/// the token key that checks VERP tags and keyed Message-IDs, and its metrics.
pub struct Mailbox {
    pub app: Arc<App>,
    pub ledger: SharedLedger,
    pub key: TokenKey,
    pub metrics: Arc<Metrics>,
}

/// Reads the bounce mailbox every `interval` until the stop. A mailbox that cannot be
/// reached, or fails mid-way, is logged and tried again at the next interval: it never
/// stops the daemon.
pub async fn watch_mailbox(mailbox: Mailbox, imap: crate::config::Imap, stop: CancellationToken) {
    let Some(password) = imap.password.clone() else {
        tracing::warn!(
            "`bounces.imap.password_env` names {}, which is not set: the bounce mailbox is \
             not read",
            imap.password_env
        );
        return;
    };
    let cfg = crate::imap::MailboxConfig {
        host: imap.host.clone(),
        port: imap.port,
        tls: match imap.tls {
            crate::config::Tls::Tls => crate::imap::ImapTls::Tls,
            crate::config::Tls::Starttls => crate::imap::ImapTls::Starttls,
            crate::config::Tls::None => crate::imap::ImapTls::None,
        },
        username: imap.username.clone(),
        password: password.expose().to_string(),
        folder: imap.folder.clone(),
        processed_folder: imap.processed_folder.clone(),
        ca_file: imap.ca_file.clone(),
        timeout: IMAP_TIMEOUT,
    };
    loop {
        match mailbox.read_once(&cfg, &stop).await {
            Ok((0, 0)) => {}
            Ok((recognised, ignored)) => tracing::info!(
                recognised,
                ignored,
                "bounce mailbox read: {recognised} report(s) taken and moved to {}, {ignored} \
                 message(s) left in place",
                cfg.processed_folder
            ),
            Err(e) => tracing::warn!(
                error.message = %e,
                "cannot read the bounce mailbox {}:{}: {e:#}; trying again in {}",
                cfg.host,
                cfg.port,
                humantime::format_duration(imap.interval)
            ),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(imap.interval) => {}
        }
    }
}

impl Mailbox {
    /// One visit to the bounce mailbox: every new message (at most [`IMAP_BATCH`] x
    /// [`IMAP_BATCHES`] a visit) goes to the bounce parser, one at a time; a recognised one is
    /// moved to the processed folder, anything else is left in place, flagged so it is not
    /// read again. A message over `[bounces] max_size` is never read: it is left unread and
    /// flagged `brief-too-large`. Returns (recognised, left).
    async fn read_once(
        &self,
        cfg: &crate::imap::MailboxConfig,
        stop: &CancellationToken,
    ) -> anyhow::Result<(usize, usize)> {
        use crate::imap::{Body, Verdict};
        let max_size = self
            .app
            .config
            .bounces
            .as_ref()
            .map_or_else(crate::config::default_bounce_max_size, |b| b.max_size);
        let mut mailbox = crate::imap::Mailbox::open(cfg).await?;
        let (mut recognised, mut left) = (0, 0);
        for _ in 0..IMAP_BATCHES {
            let waiting = mailbox.list_new(IMAP_BATCH).await?;
            let last = waiting.len() < IMAP_BATCH;
            for w in waiting {
                let body = if w.size > max_size {
                    Body::TooLarge
                } else {
                    mailbox.fetch(w.uid, max_size).await?
                };
                let verdict = match body {
                    Body::Gone => continue,
                    Body::TooLarge => {
                        tracing::info!(
                            uid = w.uid,
                            size = w.size,
                            "bounce mailbox: message UID {} in {} is {} bytes, over \
                             `bounces.max_size` ({max_size}): left unread, flagged {}",
                            w.uid,
                            cfg.folder,
                            w.size,
                            crate::imap::TOO_LARGE_KEYWORD
                        );
                        self.metrics.bounce(crate::metrics::BounceKind::too_large);
                        Verdict::TooLarge
                    }
                    Body::Read(raw) => {
                        let (app, key, metrics) =
                            (self.app.clone(), self.key.clone(), self.metrics.clone());
                        let taken = self
                            .ledger
                            .with(move |l| take_bounce(&app, l, &key, &metrics, &raw))
                            .await?;
                        if taken.recognised() {
                            Verdict::Processed
                        } else {
                            Verdict::Ignored
                        }
                    }
                };
                if verdict == Verdict::Processed {
                    recognised += 1;
                } else {
                    left += 1;
                }
                mailbox.settle(w.uid, verdict).await?;
            }
            if last || stop.is_cancelled() {
                break;
            }
        }
        mailbox.close().await;
        Ok((recognised, left))
    }
}
