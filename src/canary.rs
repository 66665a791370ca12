//! The canary: a campaign's very message mailed to staff before any reader, and the wait for
//! its window to end (or for staff to release a campaign they held).
//!
//! A campaign started with a canary window has `release_at` in the ledger, set in the
//! transaction that creates it. Until then, and while staff hold it, [`Ledger::claim_due`]
//! claims nobody: the gate is in the ledger, so it holds whichever process sends (the daemon,
//! `brief send`), across restarts. The copies go out once, to `[server] staff`, recorded apart
//! from the deliveries so they are never counted as readers.
//!
//! The copies are notices (`notices`): a copy the relay did not take (4xx, a lost
//! connection) is tried again within seconds. No reader is mailed before a staff address
//! accepted a copy: until one does, the gate stays closed after the window too
//! ([`Gate::AwaitingCanary`]), and when every copy has failed (5xx, or given up after an hour)
//! the campaign is held ([`HoldReason::CanaryUnaccepted`]), which the log (ERROR), the metric
//! `brief_canary_unaccepted`, `brief status`, the console and a notice to staff all say. Staff
//! release it as any hold (`brief release`, the console).
//!
//! [`HoldReason::CanaryUnaccepted`]: crate::ledger::HoldReason::CanaryUnaccepted
//!
//! [`Ledger::claim_due`]: crate::ledger::Ledger::claim_due

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::ledger::{Campaign, CampaignId, Gate, HoldReason, NoticeKind, SharedLedger};
use crate::message::MessageTemplate;
use crate::notices::{Sender, Tried};

/// How often a waiting campaign looks at the ledger for a hold or a release.
pub const POLL: Duration = Duration::from_secs(2);

/// The outbox folder (`outbox_dir/canary`) of the copies, with the outbox transport.
pub const OUTBOX: &str = "canary";

/// Queues the canary copies of `campaign` and tries them at once, unless they were queued
/// already or its window is over: the stored message in each of the campaign's languages, as
/// readers get it (with canary Message-IDs), to each `[server] staff` address, signed like the
/// campaign (one copy per language per address). The first copy accepted, in whatever
/// language, opens the gate as before; the campaign is held only when every copy failed. Returns the first
/// tries; `None` when nothing was to send. Its gate stays closed until a staff address accepts
/// a copy: copies the relay did not take are tried again (`notices`), and when every one has
/// failed the campaign is held.
pub async fn send_copies(
    sender: &Sender<'_>,
    campaign: &Campaign,
) -> anyhow::Result<Option<Vec<Tried>>> {
    let app = sender.app;
    let now = app.clock.now_ms();
    if campaign.release_at.is_none_or(|t| t <= now) || app.config.server.staff.is_empty() {
        return Ok(None);
    }
    let cid = campaign.id;
    let stored = sender
        .ledger
        .with(move |l| l.campaign_messages(cid))
        .await?;
    if stored.is_empty() {
        return Ok(None);
    }
    // One copy per language per staff address: staff see every edition readers will get.
    let staff = crate::notices::staff_addresses(app);
    let mut copies = Vec::with_capacity(staff.len() * stored.len());
    for (i, m) in stored.iter().enumerate() {
        // Mail clients fold copies that share a Message-ID: each further edition's copy names
        // its language in its own.
        let edition = m.lang.as_deref().filter(|_| i > 0);
        let template =
            MessageTemplate::thaw(&m.template, campaign.issue, sender.key)?.into_canary(edition);
        copies.extend(
            staff
                .iter()
                .map(|a| crate::notices::notice(NoticeKind::Canary, &template, a, Some(cid))),
        );
    }
    sender.send_canary(cid, copies).await
}

/// How a wait for the gate ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// Readers may be mailed.
    Open,
    /// Staff hold the campaign (only when the wait does not go on through holds).
    Held { since: i64 },
    /// `stop` was cancelled.
    Stopped,
}

/// Waits until the readers of `campaign` may be mailed, looking at the ledger every [`POLL`]
/// (sooner when the window ends first). With `through_holds` (the daemon) a hold is waited
/// out too; without it (`brief send`) a hold ends the wait. With `retry` (`brief send`, where
/// no daemon's worker may run), the campaign's queued notices (canary copies the relay did not
/// take) are tried again meanwhile.
pub async fn wait(
    ledger: &SharedLedger,
    campaign: CampaignId,
    clock: &dyn Clock,
    stop: &CancellationToken,
    through_holds: bool,
    retry: Option<&Sender<'_>>,
) -> anyhow::Result<Waited> {
    let mut logged = None;
    loop {
        let now = clock.now_ms();
        let gate = ledger.with(move |l| l.gate(campaign, now)).await?;
        if let (Some(s), Gate::Canary { .. } | Gate::AwaitingCanary) = (retry, gate) {
            s.drain(Some(campaign), Some(stop)).await?;
        }
        let pause = match gate {
            Gate::Open => return Ok(Waited::Open),
            Gate::Held { since } if !through_holds => return Ok(Waited::Held { since }),
            Gate::Held { .. } | Gate::AwaitingCanary => POLL,
            Gate::Canary { until } => {
                Duration::from_millis((until - now).clamp(1, POLL.as_millis() as i64) as u64)
            }
        };
        if logged != Some(gate) {
            let reason = match gate {
                Gate::Held { .. } => ledger
                    .with(move |l| {
                        Ok(l.campaigns()?
                            .into_iter()
                            .find(|c| c.id == campaign)
                            .and_then(|c| c.hold_reason))
                    })
                    .await?
                    .unwrap_or(HoldReason::Staff),
                _ => HoldReason::Staff,
            };
            match gate {
                Gate::Canary { until } => tracing::info!(
                    release_at = %crate::clock::fmt_ms(Some(until)),
                    "canary window: the readers are mailed when it ends, unless staff hold \
                     the campaign (`brief hold`, or Hold in the console)"
                ),
                Gate::Held { since } => tracing::info!(
                    held_since = %crate::clock::fmt_ms(Some(since)),
                    "the campaign is {}: no reader is mailed until it is released \
                     (`brief release`, or Release in the console)",
                    reason.describe()
                ),
                Gate::AwaitingCanary => tracing::warn!(
                    "the canary window is over but no staff address has accepted the canary \
                     copy yet: no reader is mailed until one does (the copies are tried \
                     again); if none ever does, the campaign is held"
                ),
                Gate::Open => {}
            }
            logged = Some(gate);
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(Waited::Stopped),
            () = tokio::time::sleep(pause) => {}
        }
    }
}
