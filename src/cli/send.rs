//! `brief send`: a campaign with a confirmation, a progress bar and a clean stop; or a test send.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use super::load::load_editions_or_report;
use super::progress::ProgressBar;
use crate::address::{parse_address, AddressKey};
use crate::app::App;
use crate::campaign::run::{self, Ended, Means, Policy, Watch};
use crate::campaign::{self, start, Decision, Intent};
use crate::deliver::{Stopped, Summary};
use crate::error::UsageError;
use crate::issue::IssueId;
use crate::ledger::{
    Campaign, Counts, Gate, HoldOutcome, HoldReason, Ledger, SharedLedger, Trigger,
};
use crate::message::Kind;
use crate::notices::Tried;
use crate::shutdown::Signals;
use crate::transport::Transport;

fn confirm(prompt: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError::msg(
            "refusing to send without confirmation: standard input is not a terminal, so pass --yes",
        )
        .into());
    }
    eprint!("{prompt} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn campaign_transport(app: &App, sub: &str) -> anyhow::Result<Transport> {
    app.transport(sub).map_err(|e| UsageError(e).into())
}

/// How `brief send` treats a campaign that exists and is not finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resume {
    /// Send the message the campaign started with (the default).
    AsStarted,
    /// Render the issue again and send that to the readers not yet sent (`--restart-unsent`).
    RestartUnsent,
    /// Put the failed deliveries back to pending, then send as started (`--retry-failed`); also
    /// for a finished campaign.
    RetryFailed,
}

pub(super) async fn send(
    app: &App,
    issue: Option<IssueId>,
    yes: bool,
    resume: Resume,
    canary: Option<std::time::Duration>,
) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    if canary.is_some() && app.config.server.staff.is_empty() {
        return Err(UsageError::msg(format!(
            "--canary needs staff addresses in `[server] staff` of {}: the canary copies go to them",
            app.config.source.display()
        ))
        .into());
    }
    print_warnings(app);
    let mut ledger = app.open_ledger()?;
    let intent = match resume {
        Resume::AsStarted => Intent::StartOrResume,
        Resume::RestartUnsent => Intent::RestartUnsent,
        Resume::RetryFailed => Intent::RetryFailed,
    };
    let decision = campaign::consider(&ledger, id, intent)?;
    match &decision {
        Decision::Exists(c) => {
            let counts = ledger.counts(c.id)?;
            println!(
                "issue {id} was already sent (campaign finished, {} sent, {} failed): nothing to send",
                counts.sent, counts.failed
            );
            let retryable = ledger.retryable_failed(c.id)?;
            if retryable > 0 {
                println!(
                    "{retryable} failed deliveries can be sent again once their cause is fixed: \
                     `brief send --issue {id} --retry-failed`"
                );
            } else if resume == Resume::RetryFailed {
                println!("no failed delivery to retry (a suppressed address stays suppressed)");
            }
            all_failed(id, &counts)?;
            return Ok(ExitCode::SUCCESS);
        }
        Decision::NoCampaign if resume == Resume::RestartUnsent => {
            return Err(UsageError::msg(format!(
                "issue {id} has no campaign to restart: `brief send --issue {id}` starts one"
            ))
            .into())
        }
        Decision::NoCampaign => {
            return Err(UsageError::msg(format!(
                "issue {id} has no campaign, so no failed delivery to retry: `brief send --issue \
                 {id}` starts one"
            ))
            .into())
        }
        _ => {}
    }
    let transport = campaign_transport(app, &id.to_string())?;
    let dkim = app.dkim_signer().map_err(UsageError)?.map(Arc::new);
    let key = app.key().clone();
    let default_lang = app.config.newsletter.languages.default_lang();
    let stored = match &decision {
        Decision::Resume(c) | Decision::RetryFailed { campaign: c, .. } => {
            start::stored_editions(&ledger, c, &key, default_lang)?
        }
        _ => None,
    };
    // A running campaign sends what it started with, whatever the folder says now; otherwise
    // (a new campaign, a restart, or a campaign an older brief started) the folder is rendered,
    // every language's edition.
    let (editions, subject, prepared) = match stored {
        Some((editions, sent)) => {
            if start::folder_changed(app, id, &sent[0]) {
                eprintln!("{}", folder_changed_note(id, sent[0].revision));
            }
            (Some(editions), sent[0].subject.clone(), None)
        }
        None => {
            let Some(found) = load_editions_or_report(app, id).await else {
                return Ok(ExitCode::from(1));
            };
            let prepared = start::prepare(app, found, &key, Kind::Campaign);
            let subject = prepared[0].subject.clone();
            (None, subject, Some(prepared))
        }
    };
    if !yes {
        let via = transport.describe();
        let left = |c: &Campaign| -> anyhow::Result<u64> {
            let n = ledger.counts(c.id)?;
            Ok(n.pending + n.sending + n.deferred)
        };
        let what = match &decision {
            Decision::Resume(c) => format!(
                "Resume issue {id} (\"{subject}\"): {} deliveries left, via {via}?",
                left(c)?
            ),
            Decision::RestartUnsent(c) => format!(
                "Send the issue {id} as it is now (\"{subject}\") to the {} readers not yet \
                 sent, via {via}? Those already sent keep the first version.",
                left(c)?
            ),
            Decision::RetryFailed {
                campaign: c,
                retryable,
            } => {
                let left = left(c)?;
                format!(
                    "Send issue {id} (\"{subject}\") again to the {retryable} readers whose \
                     delivery failed{}, via {via}?",
                    if left > 0 {
                        format!(", and to the {left} not yet sent")
                    } else {
                        String::new()
                    }
                )
            }
            _ => {
                let readers = crate::audience::reachable_readers(app, &ledger)?;
                let canary = match canary {
                    Some(w) => format!(
                        ", staff first and the readers {} later",
                        humantime::format_duration(w)
                    ),
                    None => String::new(),
                };
                format!(
                    "Send issue {id} (\"{subject}\") to {readers} reader{} via {via}{canary}?",
                    if readers == 1 { "" } else { "s" },
                )
            }
        };
        if !confirm(&what)? {
            println!("not sent");
            return Ok(ExitCode::from(1));
        }
    }
    let campaign = match (decision, prepared.as_deref()) {
        (Decision::RetryFailed { campaign: c, .. }, _) => {
            let back = start::retry_failed(&mut ledger, &c)?;
            println!(
                "issue {id}: {back} failed deliveries put back to pending, their attempts reset \
                 (suppressed addresses stay suppressed)"
            );
            // Re-read: the campaign may have been finished, and is not any more.
            ledger.campaign(id)?.unwrap_or(c)
        }
        (Decision::RestartUnsent(c), Some(prepared)) => {
            let revision = start::revise(app, &mut ledger, &c, prepared)?;
            println!(
                "issue {id}: revision {revision} of the message goes to the readers not yet sent"
            );
            c
        }
        (Decision::Resume(c), _) => c,
        (_, Some(prepared)) => {
            let (campaign, _new, problems) =
                start::begin(app, &mut ledger, prepared, Trigger::Cli, canary)?;
            for p in &problems {
                tracing::warn!("skipped subscriber: {p}");
            }
            campaign
        }
        (_, None) => unreachable!("a new campaign and a restart render the folder"),
    };
    if canary.is_some() && campaign.release_at.is_none() {
        println!(
            "note: --canary applies to a new campaign; issue {id}'s campaign started without one"
        );
    }
    let (cid, sent_before) = (campaign.id, ledger.counts(campaign.id)?.sent);
    let editions = match (editions, prepared) {
        (Some(e), _) => e,
        (None, Some(prepared)) => start::into_editions(prepared),
        (None, None) => unreachable!("a campaign sends what it stored or what was rendered"),
    };
    let ended = run_campaign(app, ledger, campaign, editions, transport, dkim, &key).await;
    let Ended { summary, held } = match ended {
        Ok(ended) => ended,
        Err(e) => {
            // The run failed (the ledger itself, say, on a full disk): the summary of what the
            // ledger holds still comes first, so staff know what went out before the error.
            if let Ok(counts) = app.open_ledger().and_then(|l| l.counts(cid)) {
                let summary = Summary {
                    counts,
                    sent_now: counts.sent.saturating_sub(sent_before),
                    finished: false,
                    interrupted: false,
                    stopped: None,
                };
                print_summary(id, &summary, None);
            }
            return Err(e);
        }
    };
    if held == Some(HoldReason::CanaryUnaccepted) {
        eprintln!(
            "error: issue {id} is held: no staff address accepted the canary copy, so no \
             reader was mailed; check `[server] staff` and the relay, then `brief release \
             --issue {id}`"
        );
    }
    print_summary(id, &summary, held);
    let left = summary.counts.pending + summary.counts.sending + summary.counts.deferred;
    match &summary.stopped {
        Some(Stopped::Relay(e)) => bail!(
            "{e}: the relay failed before any reader was named, so {left} deliveries are left \
             untouched (no attempt was counted); run `brief send` again once the relay is fixed"
        ),
        Some(Stopped::Breaker(trip)) => bail!(
            "{trip}; the run stopped and {left} deliveries are left with no attempt counted for \
             it; run `brief send` again once the relay is fixed"
        ),
        Some(Stopped::Held) | None => {}
    }
    if summary.finished {
        all_failed(id, &summary.counts)?;
    }
    Ok(if summary.interrupted || !summary.finished {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A finished campaign that reached nobody is a failure, whatever the reason: never exit 0.
fn all_failed(id: IssueId, counts: &Counts) -> anyhow::Result<()> {
    if counts.sent == 0 && counts.failed > 0 {
        bail!(
            "every delivery of issue {id} failed ({} failed, none sent): see `brief report --issue \
             {id}`; once the cause is fixed, `brief send --issue {id} --retry-failed` sends them \
             again",
            counts.failed
        );
    }
    Ok(())
}

/// The config's warnings (settings that work but hurt delivery), on stderr.
fn print_warnings(app: &App) {
    for w in &app.config.warnings {
        eprintln!("warning: {w}");
    }
}

/// What `send` and `status` say when the folder of a running campaign was edited.
pub(super) fn folder_changed_note(id: IssueId, revision: u32) -> String {
    format!(
        "note: the content folder of issue {id} changed since its campaign started (message \
         revision {revision}); the readers not yet sent still get the issue as it was. To send \
         them the corrected issue instead: `brief send --issue {id} --restart-unsent`"
    )
}

/// Runs a campaign to its end ([`campaign::run::drive`] under the command's policy) with a
/// progress bar on a terminal, stopping cleanly on a signal; prints the canary replies and the
/// window as they come.
async fn run_campaign(
    app: &App,
    ledger: Ledger,
    campaign: Campaign,
    editions: crate::deliver::Editions,
    transport: Transport,
    dkim: Option<Arc<crate::dkim::DkimSigner>>,
    key: &crate::token::TokenKey,
) -> anyhow::Result<Ended> {
    let stop = CancellationToken::new();
    Signals::new()?.watch(stop.clone());
    let ledger = SharedLedger::new(ledger);
    let signer = dkim.clone();
    let sender = crate::notices::Sender {
        app,
        ledger: &ledger,
        key,
        dkim: signer.as_deref(),
        metrics: None,
    };
    let means = Means {
        notices: &sender,
        transport: Arc::new(transport),
        dkim,
        // The CLI serves no /metrics: the engine counts into a registry nobody reads.
        metrics: Arc::new(crate::metrics::Metrics::new()),
    };
    let mut printer = Printer {
        database: app.config.delivery.database.clone(),
        bar: None,
    };
    let run = run::drive(
        &means,
        campaign,
        Arc::new(editions),
        Policy::COMMAND,
        &stop,
        &mut printer,
    );
    run.await
}

/// What `brief send` prints as a run goes: the canary replies, the window, a progress bar.
struct Printer {
    database: std::path::PathBuf,
    bar: Option<ProgressBar>,
}

impl Watch for Printer {
    fn canary_mailed(&mut self, _campaign: &Campaign, tries: &[Tried]) {
        for t in tries {
            let c = &t.reply;
            println!(
                "canary to {}: {}{}{}",
                c.address,
                c.code.map(|c| format!("{c} ")).unwrap_or_default(),
                c.text,
                if t.retried() {
                    " (tried again within seconds)"
                } else {
                    ""
                }
            );
        }
    }

    fn waiting(&mut self, campaign: &Campaign, gate: Gate) {
        if let Gate::Canary { until } = gate {
            let id = campaign.issue;
            println!(
                "issue {id}: the readers are mailed at {} unless staff hold it (`brief hold \
                 --issue {id}`, or Hold in the console); `brief release --issue {id}` sends at \
                 once",
                crate::clock::fmt_ms(Some(until))
            );
        }
    }

    fn readers_start(&mut self, campaign: &Campaign) {
        self.bar = ProgressBar::start(&self.database, campaign.id);
    }

    fn readers_end(&mut self, _campaign: &Campaign) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

fn print_summary(id: IssueId, s: &Summary, held: Option<HoldReason>) {
    let c = &s.counts;
    let state = if s.finished {
        "finished".to_string()
    } else if s.interrupted {
        "interrupted: run `brief send` again to resume".to_string()
    } else if let Some(stopped) = &s.stopped {
        match stopped {
            Stopped::Relay(_) => "stopped: the relay failed before any reader was named",
            Stopped::Breaker(_) => "stopped by the circuit breaker",
            Stopped::Held if held == Some(HoldReason::CanaryUnaccepted) => {
                "held because no staff address accepted the canary copy, before any reader \
                 was mailed: `brief release` lets it go"
            }
            Stopped::Held => {
                "held by staff before any reader was mailed: `brief release` lets it go"
            }
        }
        .to_string()
    } else {
        "not finished".to_string()
    };
    println!(
        "issue {id}: {} sent now; {} sent, {} failed, {} suppressed, {} deferred, {} pending of {} ({state})",
        s.sent_now,
        c.sent,
        c.failed,
        c.suppressed,
        c.deferred,
        c.pending + c.sending,
        c.total()
    );
}

/// A test send to `to`, or, when it names nobody, to every address of `[server] staff`.
pub(super) async fn test_send(
    app: &App,
    issue: Option<IssueId>,
    to: &[String],
    lang: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    print_warnings(app);
    let addresses = if to.is_empty() {
        let staff = &app.config.server.staff;
        if staff.is_empty() {
            return Err(UsageError::msg(format!(
                "a test send needs --to ADDRESS, or staff addresses in `[server] staff` of {}",
                app.config.source.display()
            ))
            .into());
        }
        crate::staff::staff_addresses(app)
    } else {
        // One copy per address, however often (and in whatever case) it was named.
        let mut seen = std::collections::HashSet::new();
        let mut addresses = Vec::with_capacity(to.len());
        for a in to {
            let address = parse_address(a).map_err(|m| UsageError::msg(format!("--to: {m}")))?;
            if seen.insert(AddressKey::of(&address)) {
                addresses.push(address);
            }
        }
        addresses
    };
    if let Some(tag) = lang {
        campaign::test_send::choose(app, Vec::new(), Some(tag))
            .map_err(|e| UsageError::msg(format!("--lang: {e}")))?;
    }
    let Some(found) = load_editions_or_report(app, id).await else {
        return Ok(ExitCode::from(1));
    };
    let editions = campaign::test_send::choose(app, found, lang)
        .map_err(|e| UsageError::msg(format!("--lang: {e}")))?;
    let several = editions.len() > 1;
    let key = app.key().clone();
    let dkim = app.dkim_signer().map_err(UsageError)?;
    // Fails here, with exit 2, when the transport is misconfigured.
    campaign_transport(app, "test")?;
    let ledger = SharedLedger::new(app.open_ledger()?);
    let sender = crate::notices::Sender {
        app,
        ledger: &ledger,
        key: &key,
        dkim: dkim.as_ref(),
        metrics: None,
    };
    let replies = campaign::test_send::send(&sender, &editions, &addresses, |lang, r| {
        println!(
            "{}{}: {}{}",
            if several {
                format!("[{lang}] ")
            } else {
                String::new()
            },
            r.address,
            r.code.map(|c| format!("{c} ")).unwrap_or_default(),
            r.text
        );
    })
    .await?;
    let accepted = replies.iter().filter(|(_, r)| r.accepted).count();
    println!(
        "test send of issue {id}: {accepted} of {} accepted",
        replies.len()
    );
    Ok(if accepted == replies.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `brief hold`: stops the campaign of the issue before any reader is mailed (in its canary
/// window, or before it started sending).
pub(super) fn hold(app: &App, issue: Option<IssueId>) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    let mut ledger = app.open_ledger()?;
    match ledger.hold_campaign(id, app.clock.now_ms())? {
        HoldOutcome::Held => {
            println!(
                "issue {id} is held: no reader is mailed until `brief release --issue {id}` (or \
                 Release in the console)"
            );
            Ok(ExitCode::SUCCESS)
        }
        HoldOutcome::AlreadyHeld { since } => {
            println!(
                "issue {id} was held already (since {}): no reader is mailed until `brief \
                 release --issue {id}`",
                crate::clock::fmt_ms(Some(since))
            );
            Ok(ExitCode::SUCCESS)
        }
        HoldOutcome::TooLate { reached } => {
            eprintln!(
                "error: issue {id} cannot be held: its campaign reached {reached} reader{} \
                 already (a hold stops a campaign before any reader is mailed)",
                if reached == 1 { "" } else { "s" }
            );
            Ok(ExitCode::from(1))
        }
        HoldOutcome::NoCampaign => {
            eprintln!("error: issue {id} has no campaign to hold");
            Ok(ExitCode::from(1))
        }
    }
}

/// `brief release`: lets a held campaign, or one in its canary window, go to its readers.
pub(super) fn release(app: &App, issue: Option<IssueId>) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    let mut ledger = app.open_ledger()?;
    let now = app.clock.now_ms();
    let Some(c) = ledger.open_gate(id, now)? else {
        eprintln!("error: issue {id} has no campaign to release");
        return Ok(ExitCode::from(1));
    };
    if c.finished || c.gate(now) == Gate::Open {
        println!("issue {id} was neither held nor waiting for its canary window: nothing changed");
    } else {
        println!(
            "issue {id} is released: a running daemon mails the readers within a few seconds; \
             without one, `brief send --issue {id}` does"
        );
    }
    Ok(ExitCode::SUCCESS)
}
