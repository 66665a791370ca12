//! The canary: a campaign's very message mailed to staff before any reader, and the wait for
//! its window to end (or for staff to release a campaign they held).
//!
//! A campaign started with a canary window has `release_at` in the ledger, set in the
//! transaction that creates it. Until then, and while staff hold it, [`Ledger::claim_due`]
//! claims nobody: the gate is in the ledger, so it holds whichever process sends (the daemon,
//! `brief send`), across restarts. The copies go out once, to `[server] staff`, recorded apart
//! from the deliveries so they are never counted as readers.
//!
//! [`Ledger::claim_due`]: crate::ledger::Ledger::claim_due

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::Clock;
use crate::dkim::DkimSigner;
use crate::ledger::{Campaign, CampaignId, CanarySend, Gate, SharedLedger};
use crate::message::MessageTemplate;
use crate::token::TokenKey;

/// How often a waiting campaign looks at the ledger for a hold or a release.
pub const POLL: Duration = Duration::from_secs(2);

/// The outbox folder (`outbox_dir/canary`) of the copies, with the outbox transport.
pub const OUTBOX: &str = "canary";

/// Sends the canary copies of `campaign` unless they went out already or its window is over:
/// the stored message, as readers get it (with canary Message-IDs), to each `[server] staff`
/// address over the campaign's transport, signed like the campaign. Records each reply and
/// returns them; `None` when nothing was to send.
pub async fn send_copies(
    app: &App,
    ledger: &SharedLedger,
    campaign: &Campaign,
    key: &TokenKey,
    dkim: Option<&DkimSigner>,
) -> anyhow::Result<Option<Vec<CanarySend>>> {
    let now = app.clock.now_ms();
    if campaign.release_at.is_none_or(|t| t <= now) || app.config.server.staff.is_empty() {
        return Ok(None);
    }
    let cid = campaign.id;
    let stored = ledger
        .with(move |l| {
            if !l.canary_sends(cid)?.is_empty() {
                return Ok(None);
            }
            l.campaign_message(cid)
        })
        .await?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let template = MessageTemplate::thaw(&stored.template, campaign.issue, key)?.into_canary();
    let staff = crate::staff::staff_addresses(app);
    let replies = app
        .send_each(&template, OUTBOX, dkim, &staff, &mut |_| {})
        .await?;
    let at = app.clock.now_ms();
    let sends: Vec<CanarySend> = replies
        .into_iter()
        .map(|r| CanarySend {
            address: r.address.to_string(),
            accepted: r.accepted,
            code: r.code,
            text: r.text,
            at,
        })
        .collect();
    let recorded = sends.clone();
    ledger
        .with(move |l| l.record_canary_sends(cid, &recorded))
        .await?;
    Ok(Some(sends))
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
/// out too; without it (`brief send`) a hold ends the wait.
pub async fn wait(
    ledger: &SharedLedger,
    campaign: CampaignId,
    clock: &dyn Clock,
    stop: &CancellationToken,
    through_holds: bool,
) -> anyhow::Result<Waited> {
    let mut logged = None;
    loop {
        let now = clock.now_ms();
        let gate = ledger.with(move |l| l.gate(campaign, now)).await?;
        let pause = match gate {
            Gate::Open => return Ok(Waited::Open),
            Gate::Held { since } if !through_holds => return Ok(Waited::Held { since }),
            Gate::Held { .. } => POLL,
            Gate::Canary { until } => {
                Duration::from_millis((until - now).clamp(1, POLL.as_millis() as i64) as u64)
            }
        };
        if logged != Some(gate) {
            match gate {
                Gate::Canary { until } => tracing::info!(
                    release_at = %crate::app::fmt_ms(Some(until)),
                    "canary window: the readers are mailed when it ends, unless staff hold \
                     the campaign (`brief hold`, or Hold in the console)"
                ),
                Gate::Held { since } => tracing::info!(
                    held_since = %crate::app::fmt_ms(Some(since)),
                    "the campaign is held by staff: no reader is mailed until it is released \
                     (`brief release`, or Release in the console)"
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
