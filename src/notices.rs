//! One durable queue for the notices brief mails: a reader's confirmation, a staff sign-in
//! link, a campaign's canary copies, the checks before a send, the summaries, and the word
//! that a campaign is held because no staff address accepted its canary copy.
//!
//! Each notice is a row of the ledger (`notices`): its kind, recipient, the whole message as
//! rendered (DKIM-signed again at each try), its state (`pending`, `sending`, `sent`,
//! `failed`), tries, the time of the next and the last reply. Whoever makes a notice queues it
//! and, where a person may be waiting, tries it at once through [`Sender::send_now`]; what the
//! relay did not take is tried again with backoff by the daemon's worker ([`run`], woken by
//! `App::notice_wake` and at the earliest `next_at`), or by `brief send` before it exits:
//!
//! - a 4xx reply, a lost connection or a lost reply after the message is tried again (a lost
//!   reply may mean a second copy: for a notice that is better than none), on the kind's
//!   [`Backoff`]: within seconds for what a person waits for (confirmation, sign-in link, canary
//!   copy), every few minutes to an hour for staff reports; given up after the kind's limit;
//! - a 5xx reply is final, and logged (by keyed tag, never the address).
//!
//! A claim is a lease (`sending` until `next_at`): a process that dies while trying a notice
//! leaves it to be tried again when the lease lapses, never lost. What a notice's outcome
//! changes is written in the same transaction ([`Ledger::record_notice`]): a confirmation's
//! rate mark is set only when the relay accepts it, and the canary's verdict (see
//! [`crate::canary`]) moves the campaign's gate.
//!
//! [`Ledger::record_notice`]: crate::ledger::Ledger::record_notice

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::Address;
use tokio_util::sync::CancellationToken;

use crate::address::AddressKey;
use crate::app::{App, TestReply};
use crate::clock::Millis;
use crate::dkim::DkimSigner;
use crate::issue::IssueId;
use crate::ledger::{
    CampaignId, CanaryVerdict, NewNotice, Notice, NoticeKind, NoticeOutcome, SharedLedger,
};
use crate::message::{Kind, MessageTemplate, Recipient};
use crate::metrics::{Metrics, SubscriptionEvent};
use crate::render::Rendered;
use crate::token::TokenKey;
use crate::transport::{Connection, SendFailure};

/// How long a claim on a notice lasts: a process that dies while trying it leaves it to be
/// tried again this much later.
pub const LEASE: Duration = Duration::from_secs(120);

/// How long a stop waits for a notice being tried (below the daemon's 8 s): one that takes
/// longer is left claimed and tried again when its lease lapses.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The longest sleep of the worker between two looks at the ledger.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Notices claimed at a time.
const BATCH: usize = 16;

/// When a notice that was not accepted is tried again: after each wait of `steps` in turn
/// (the last one repeating), until `give_up` after it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub steps: &'static [Duration],
    pub give_up: Duration,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// For what a person waits for: a confirmation, a sign-in link, a canary copy.
const QUICK: &[Duration] = &[
    secs(2),
    secs(5),
    secs(15),
    secs(30),
    secs(60),
    secs(120),
    secs(300),
    secs(600),
];

/// For staff reports: the checks before a send, summaries, the canary's hold.
const SLOW: &[Duration] = &[secs(60), secs(300), secs(900), secs(1800), secs(3600)];

impl Backoff {
    /// The backoff of a kind of notice.
    pub fn of(kind: NoticeKind) -> Backoff {
        match kind {
            // The link expires after 15 minutes (`staff::LINK_TTL`): later is no use.
            NoticeKind::StaffLogin => Backoff {
                steps: QUICK,
                give_up: secs(15 * 60),
            },
            NoticeKind::Confirmation | NoticeKind::Canary => Backoff {
                steps: QUICK,
                give_up: secs(3600),
            },
            NoticeKind::Preflight | NoticeKind::Summary | NoticeKind::CanaryHeld => Backoff {
                steps: SLOW,
                give_up: secs(24 * 3600),
            },
        }
    }

    /// When to try again after the `tries`th try (1 for the first) failed at `now`, for a
    /// notice made at `created_at`; `None` when it is given up.
    pub fn next(self, tries: u32, created_at: i64, now: i64) -> Option<i64> {
        let i = (tries.max(1) - 1) as usize;
        let wait = self.steps[i.min(self.steps.len() - 1)];
        let at = now + wait.as_millis() as i64;
        (at <= created_at + self.give_up.as_millis() as i64).then_some(at)
    }
}

/// The outbox sub-folder (with the outbox transport) of a kind.
fn outbox(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Confirmation => "signup",
        NoticeKind::Canary => "canary",
        NoticeKind::StaffLogin
        | NoticeKind::Preflight
        | NoticeKind::Summary
        | NoticeKind::CanaryHeld => "staff",
    }
}

/// The addresses of `[server] staff`, each once however it is spelled.
pub fn staff_addresses(app: &App) -> Vec<Address> {
    let mut seen = std::collections::HashSet::new();
    app.config
        .server
        .staff
        .iter()
        .filter(|m| seen.insert(AddressKey::of(&m.email)))
        .map(|m| m.email.clone())
        .collect()
}

/// A message that is no issue (no list headers, a Message-ID of its own) from its parts.
pub fn template(
    app: &App,
    key: &TokenKey,
    subject: String,
    html: String,
    text: String,
) -> MessageTemplate {
    let rendered = Rendered {
        subject,
        preheader: String::new(),
        // Staff read brief in its default language.
        lang: app.config.newsletter.languages.default_lang().clone(),
        html: vec![html],
        text: vec![text],
    };
    let now = app.clock.now();
    MessageTemplate::new(
        &rendered,
        &app.config.newsletter,
        IssueId::of_date(now.date_naive()),
        now,
        &app.config.server.public_url,
        key,
        // Random: two notices made at one instant (a fixed clock) still differ.
        Kind::Notice {
            nonce: rand::Rng::random(&mut rand::rng()),
        },
    )
}

/// The notice of `kind` that carries `template` to `to`.
pub fn notice(
    kind: NoticeKind,
    template: &MessageTemplate,
    to: &Address,
    campaign: Option<CampaignId>,
) -> NewNotice {
    NewNotice {
        kind,
        recipient: to.to_string(),
        message: template.to_bytes(Recipient {
            address: to,
            name: None,
        }),
        campaign,
    }
}

/// A report to staff: `paragraphs`, then a button to `link`.
#[derive(Clone, Copy, Debug)]
pub struct Report<'a> {
    pub subject: &'a str,
    pub paragraphs: &'a [String],
    pub button: &'a str,
    pub link: &'a url::Url,
}

/// `report` to every staff address (the checks before a send, a summary); none without staff.
pub fn staff_report(
    app: &App,
    key: &TokenKey,
    kind: NoticeKind,
    campaign: Option<CampaignId>,
    report: Report<'_>,
) -> Vec<NewNotice> {
    let to = staff_addresses(app);
    if to.is_empty() {
        return Vec::new();
    }
    let (html, text) = crate::render::staff_report(
        app.render_context(),
        report.subject,
        report.paragraphs,
        report.button,
        report.link,
    );
    let t = template(app, key, report.subject.to_string(), html, text);
    to.iter().map(|a| notice(kind, &t, a, campaign)).collect()
}

/// What the log says of a notice of this kind.
fn describe(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Confirmation => "confirmation message",
        NoticeKind::StaffLogin => "staff sign-in link",
        NoticeKind::Canary => "canary copy",
        NoticeKind::Preflight => "checks-before-the-send mail",
        NoticeKind::Summary => "summary mail",
        NoticeKind::CanaryHeld => "canary-held notice",
    }
}

/// One try of a notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tried {
    pub id: i64,
    pub kind: NoticeKind,
    pub reply: TestReply,
    pub outcome: NoticeOutcome,
}

impl Tried {
    /// True when it will be tried again.
    pub fn retried(&self) -> bool {
        matches!(self.outcome, NoticeOutcome::Retry { .. })
    }
}

/// Sends notices and records each try: what the daemon's worker, the sign-up task, the
/// schedule's staff mails and `brief send` all go through.
pub struct Sender<'a> {
    pub app: &'a App,
    pub ledger: &'a SharedLedger,
    pub key: &'a TokenKey,
    pub dkim: Option<&'a DkimSigner>,
    /// The daemon's metrics (`None` in the CLI).
    pub metrics: Option<&'a Metrics>,
}

impl Sender<'_> {
    /// Queues `notices` and tries them at once (claimed for this call, so nobody else does);
    /// what is not accepted stays queued for the worker. Returns each try, in order.
    pub async fn send_now(&self, notices: Vec<NewNotice>) -> anyhow::Result<Vec<Tried>> {
        if notices.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.app.clock.now_ms();
        let queued = notices.clone();
        let ids = self
            .ledger
            .with(move |l| l.enqueue_notices(&queued, Millis(now), Some(LEASE)))
            .await?;
        self.try_claimed(claimed(ids, notices, now), None).await
    }

    /// Queues the canary copies of `campaign` and tries them at once, unless it has copies
    /// already (`None`). Its gate stays closed until a staff address accepts one.
    pub async fn send_canary(
        &self,
        campaign: CampaignId,
        notices: Vec<NewNotice>,
    ) -> anyhow::Result<Option<Vec<Tried>>> {
        let now = self.app.clock.now_ms();
        let queued = notices.clone();
        let ids = self
            .ledger
            .with(move |l| l.enqueue_canary(campaign, &queued, Millis(now), LEASE))
            .await?;
        let Some(ids) = ids else { return Ok(None) };
        Ok(Some(
            self.try_claimed(claimed(ids, notices, now), None).await?,
        ))
    }

    /// Queues `notices` for the worker (due now) and wakes it; nothing is tried here.
    pub async fn queue(&self, notices: Vec<NewNotice>) -> anyhow::Result<()> {
        let now = self.app.clock.instant();
        self.ledger
            .with(move |l| l.enqueue_notices(&notices, now, None))
            .await?;
        self.app.notice_wake.notify_one();
        Ok(())
    }

    /// Tries every notice due now (of `campaign` only, when given) until none is left due;
    /// returns how many were tried. After `stop`, no new one is started.
    pub async fn drain(
        &self,
        campaign: Option<CampaignId>,
        stop: Option<&CancellationToken>,
    ) -> anyhow::Result<usize> {
        let mut tried = 0;
        loop {
            if stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(tried);
            }
            let now = self.app.clock.instant();
            let due = self
                .ledger
                .with(move |l| l.claim_notices(now, LEASE, BATCH, campaign))
                .await?;
            let n = due.len();
            tried += self.try_claimed(due, stop).await?.len();
            if n < BATCH {
                return Ok(tried);
            }
        }
    }

    /// Tries claimed notices, one connection per outbox sub-folder, and records each try.
    async fn try_claimed(
        &self,
        notices: Vec<Notice>,
        stop: Option<&CancellationToken>,
    ) -> anyhow::Result<Vec<Tried>> {
        let from = match &self.app.config.bounces {
            Some(b) => b.address.email.clone(),
            None => self.app.config.newsletter.from.email.clone(),
        };
        let mut conns: HashMap<&'static str, Connection> = HashMap::new();
        let mut tried = Vec::with_capacity(notices.len());
        let mut left = notices.into_iter();
        while let Some(n) = left.next() {
            if stop.is_some_and(|s| s.is_cancelled()) {
                let ids: Vec<i64> = std::iter::once(n.id).chain(left.map(|n| n.id)).collect();
                let now = self.app.clock.now_ms();
                self.ledger
                    .with(move |l| l.unclaim_notices(&ids, now))
                    .await?;
                break;
            }
            let result = self.try_one(&n, &from, &mut conns).await;
            tried.push(self.record(n, result).await?);
        }
        for (_, c) in conns {
            c.close().await;
        }
        Ok(tried)
    }

    async fn try_one(
        &self,
        n: &Notice,
        from: &Address,
        conns: &mut HashMap<&'static str, Connection>,
    ) -> Result<crate::transport::Reply, SendFailure> {
        let to: Address = n.recipient.parse().map_err(|e| SendFailure::Permanent {
            code: 553,
            text: format!("the queued recipient is not an address: {e}"),
            stage: crate::transport::Stage::Rcpt,
        })?;
        let sub = outbox(n.kind);
        if !conns.get(sub).is_some_and(|c| c.is_usable()) {
            if let Some(old) = conns.remove(sub) {
                old.close().await;
            }
            let transport = self
                .app
                .transport(sub)
                .map_err(|e| SendFailure::Temporary {
                    code: None,
                    text: format!("{e:#}"),
                    stage: crate::transport::Stage::Connect,
                })?;
            conns.insert(sub, transport.connect().await?);
        }
        let mut raw = n.message.clone();
        if let Some(d) = self.dkim {
            d.sign_in_place(&mut raw, self.app.clock.now().timestamp());
        }
        conns
            .get_mut(sub)
            .expect("connected above")
            .send(from, &to, &raw, None)
            .await
    }

    /// Records one try in the ledger, logs it, and acts on what it changed.
    async fn record(
        &self,
        n: Notice,
        result: Result<crate::transport::Reply, SendFailure>,
    ) -> anyhow::Result<Tried> {
        let now = self.app.clock.now_ms();
        let tries = n.attempts + 1;
        let outcome = match &result {
            Ok(r) => NoticeOutcome::Sent {
                code: r.code,
                text: r.text.clone(),
            },
            Err(f @ SendFailure::Permanent { .. }) => NoticeOutcome::Failed {
                code: f.code(),
                text: f.to_string(),
            },
            Err(f) => match Backoff::of(n.kind).next(tries, n.created_at, now) {
                Some(next_at) => NoticeOutcome::Retry {
                    code: f.code(),
                    text: f.to_string(),
                    next_at,
                },
                None => NoticeOutcome::Failed {
                    code: f.code(),
                    text: format!("{f} (given up after {tries} tries)"),
                },
            },
        };
        let recorded = outcome.clone();
        let verdict = self
            .ledger
            .with(move |l| l.record_notice(n.id, &recorded, Millis(now)))
            .await?;
        let tag = self.key.tag(&n.recipient);
        let what = describe(n.kind);
        let reply = TestReply {
            address: n
                .recipient
                .parse()
                .unwrap_or_else(|_| "invalid@invalid".parse().expect("literal address")),
            code: match &result {
                Ok(r) => Some(r.code),
                Err(f) => f.code(),
            },
            text: match &result {
                Ok(r) => r.text.clone(),
                Err(f) => f.to_string(),
            },
            accepted: result.is_ok(),
        };
        // A reply may quote the address (`550 5.1.1 <ana@...>: unknown`): the log gets the tag.
        let said = self.key.redact(&reply.text);
        match &outcome {
            NoticeOutcome::Sent { .. } => {
                tracing::info!(kind = %n.kind, to = %tag, tries, "{what} sent");
                if n.kind == NoticeKind::Confirmation {
                    if let Some(m) = self.metrics {
                        m.subscription(SubscriptionEvent::requested);
                    }
                }
            }
            NoticeOutcome::Retry { next_at, .. } => {
                self.app.notice_wake.notify_one();
                tracing::warn!(
                    kind = %n.kind, to = %tag, tries, code = reply.code, reply = %said,
                    retry_in = %humantime::format_duration(Duration::from_secs(((next_at - now).max(0) / 1000) as u64)),
                    "{what} not accepted: it is tried again"
                );
            }
            NoticeOutcome::Failed { text, .. } => {
                let text = self.key.redact(text);
                tracing::error!(kind = %n.kind, to = %tag, tries, code = reply.code, reply = %text, "{what} failed for good");
            }
        }
        match verdict {
            Some(CanaryVerdict::Accepted) => tracing::info!(
                to = %tag,
                "a staff address accepted the canary copy: the readers wait only for the window"
            ),
            Some(CanaryVerdict::Unaccepted) => {
                if let Some(cid) = n.campaign {
                    self.canary_unaccepted(cid).await?;
                }
            }
            None => {}
        }
        Ok(Tried {
            id: n.id,
            kind: n.kind,
            reply,
            outcome,
        })
    }

    /// A campaign was held because no staff address accepted its canary copy: says so in
    /// the log and queues a notice to staff (it goes out if any address works later).
    async fn canary_unaccepted(&self, campaign: CampaignId) -> anyhow::Result<()> {
        let issue = self
            .ledger
            .with(move |l| {
                Ok(l.campaigns()?
                    .into_iter()
                    .find(|c| c.id == campaign)
                    .map(|c| c.issue))
            })
            .await?;
        let Some(issue) = issue else { return Ok(()) };
        tracing::error!(
            issue = %issue,
            "no staff address accepted the canary copy: the campaign is held and no reader is \
             mailed; check `[server] staff` and the relay, then `brief release --issue {issue}` \
             (or Release in the console)"
        );
        let notices = canary_held(self.app, self.key, campaign, issue);
        self.queue(notices).await
    }
}

/// The notice to every staff address that `campaign` (of `issue`) is held because no staff
/// address accepted its canary copy, with a button to its campaign page.
pub fn canary_held(
    app: &App,
    key: &TokenKey,
    campaign: CampaignId,
    issue: IssueId,
) -> Vec<NewNotice> {
    let link = app
        .config
        .server
        .public_url
        .join(&format!("admin/campaigns/{issue}"))
        .expect("an issue id is a valid path");
    let kicker = &app.config.newsletter.kicker;
    let subject = format!("Held: {kicker} {issue}: no staff address accepted the canary copy");
    let paragraphs = [
        format!(
            "The canary copy of issue {issue} was refused by every staff address, so \
             nobody has seen the message: the campaign is held and no reader was mailed."
        ),
        format!(
            "Check `[server] staff` and the relay, then release it (`brief release \
             --issue {issue}`, or Release on the campaign page)."
        ),
    ];
    staff_report(
        app,
        key,
        NoticeKind::CanaryHeld,
        Some(campaign),
        Report {
            subject: &subject,
            paragraphs: &paragraphs,
            button: "Open the campaign",
            link: &link,
        },
    )
}

/// Claimed rows for notices just queued with `ids`.
fn claimed(ids: Vec<i64>, notices: Vec<NewNotice>, now: i64) -> Vec<Notice> {
    ids.into_iter()
        .zip(notices)
        .map(|(id, n)| Notice {
            id,
            kind: n.kind,
            recipient: n.recipient,
            message: n.message,
            campaign: n.campaign,
            state: crate::ledger::NoticeState::Sending,
            attempts: 0,
            next_at: now + LEASE.as_millis() as i64,
            last_code: None,
            last_text: None,
            created_at: now,
        })
        .collect()
}

/// The daemon's notice worker: tries what is due, then sleeps until the earliest `next_at`
/// (at most a minute) or until `App::notice_wake`; ends at `stop`, after the notice being
/// tried (at most [`STOP_GRACE`]).
pub async fn run(
    app: Arc<App>,
    ledger: SharedLedger,
    key: TokenKey,
    dkim: Option<Arc<DkimSigner>>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let sender = Sender {
        app: &app,
        ledger: &ledger,
        key: &key,
        dkim: dkim.as_deref(),
        metrics: Some(&metrics),
    };
    loop {
        let grace = async {
            stop.cancelled().await;
            tokio::time::sleep(STOP_GRACE).await;
        };
        tokio::select! {
            r = sender.drain(None, Some(&stop)) => {
                if let Err(e) = r {
                    tracing::error!(error.message = %e, "cannot send the queued notices: {e:#}");
                }
            }
            () = grace => {
                tracing::warn!("a notice was still being tried at the stop: it is tried again at the next start");
                return;
            }
        }
        if stop.is_cancelled() {
            return;
        }
        let now = app.clock.now_ms();
        let next = ledger
            .with(|l| l.next_notice_at())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error.message = %e, "cannot read the notice queue: {e:#}");
                None
            });
        let wait = next.map_or(MAX_SLEEP, |t| {
            Duration::from_millis((t - now).max(0) as u64).min(MAX_SLEEP)
        });
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = app.notice_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_waits_seconds_staff_reports_minutes_and_each_gives_up() {
        let quick = Backoff::of(NoticeKind::Confirmation);
        assert_eq!(quick.next(1, 0, 0), Some(2_000));
        assert_eq!(quick.next(2, 0, 2_000), Some(7_000));
        assert_eq!(quick.next(30, 0, 3_000_000), Some(3_600_000));
        assert_eq!(quick.next(31, 0, 3_000_001), None, "given up after an hour");
        let login = Backoff::of(NoticeKind::StaffLogin);
        assert_eq!(login.next(9, 0, 14 * 60_000), None, "the link expired");
        let slow = Backoff::of(NoticeKind::Summary);
        assert_eq!(slow.next(1, 0, 0), Some(60_000));
        assert_eq!(slow.next(9, 0, 0), Some(3_600_000));
        assert_eq!(slow.next(9, 0, 24 * 3_600_000), None);
    }
}
