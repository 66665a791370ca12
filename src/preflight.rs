//! The checks the daemon runs `[schedule] preflight` before each scheduled send: the issue's
//! content, every link of it, and the delivery settings, mailed to staff and kept for the
//! console's dashboard.
//!
//! A fire is checked once: the result is recorded in the ledger under (issue, fire time)
//! before it is mailed, so a restart inside the window mails nothing twice. A fire whose issue
//! already has a campaign sends nothing, so it is not checked.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::feed::FetchPolicy;
use crate::issue::IssueId;
use crate::ledger::Preflight;
use crate::notices::Sender;

/// What the checks before a fire found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Entries in the issue's default language (0 when it could not be loaded).
    pub entries: usize,
    /// Links fetched.
    pub links: usize,
    /// Each problem as `path:line: message`: content, feeds, links.
    pub problems: Vec<String>,
    /// The delivery settings' warnings (they do not stop a send).
    pub warnings: Vec<String>,
}

/// Runs the checks of `issue`: loads it in every configured language with its feeds (one try
/// each; a missing translation is a problem), fetches the links of every edition, and adds the
/// config's delivery warnings.
pub async fn check(app: &App, issue: IssueId) -> Findings {
    let mut f = Findings {
        warnings: app.config.warnings.clone(),
        ..Findings::default()
    };
    match app.collect_editions(issue, FetchPolicy::Once).await {
        Ok(editions) => {
            f.entries = editions.first().map_or(0, |(_, i)| i.entries.len());
            if f.entries == 0 {
                f.problems
                    .push(format!("issue {issue} has no entries: the send is skipped"));
            }
            match app.check_edition_links(&editions).await {
                Ok(report) => {
                    f.links = report.checked;
                    f.problems
                        .extend(report.problems.iter().map(|p| p.to_string()));
                }
                Err(e) => f.problems.push(format!("cannot check the links: {e:#}")),
            }
        }
        Err(problems) => f.problems.extend(problems.0.iter().map(|p| p.to_string())),
    }
    f
}

/// The subject and paragraphs of the mail that reports `f` for the fire at `fire_at`.
pub fn compose(
    app: &App,
    issue: IssueId,
    fire_at: DateTime<Utc>,
    f: &Findings,
) -> (String, Vec<String>) {
    let kicker = &app.config.newsletter.kicker;
    let when = fire_at
        .with_timezone(&app.config.schedule.timezone)
        .format("%Y-%m-%d %H:%M %Z");
    let verdict = match f.problems.len() {
        0 => "ready".to_string(),
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    };
    let subject = format!("Checks before the send of {kicker} {issue}: {verdict}");
    let mut paragraphs = vec![format!(
        "Issue {issue} is scheduled to be sent at {when}. The checks found it {}.",
        if f.problems.is_empty() {
            "ready".to_string()
        } else {
            format!(
                "with {verdict}: fix them before the send (`brief check --links --issue {issue}`)"
            )
        }
    )];
    paragraphs.push(format!(
        "Entries: {}\nLinks checked: {}",
        f.entries, f.links
    ));
    if !f.problems.is_empty() {
        paragraphs.push(format!("Problems:\n{}", f.problems.join("\n")));
    }
    if !f.warnings.is_empty() {
        paragraphs.push(format!(
            "Warnings of the delivery settings:\n{}",
            f.warnings.join("\n")
        ));
    }
    (subject, paragraphs)
}

/// The record of `f` as the ledger keeps it (the dashboard shows its report).
pub fn record(
    issue: IssueId,
    fire_at: DateTime<Utc>,
    ran_at: i64,
    paragraphs: &[String],
    f: &Findings,
) -> Preflight {
    Preflight {
        issue,
        fire_at: fire_at.timestamp_millis(),
        ran_at,
        problems: f.problems.len() as u64,
        report: paragraphs.join("\n\n"),
    }
}

/// The checks before the fire at `fire_at` of `issue`: the issue, its links and the delivery
/// settings, recorded in the ledger and mailed to staff through `sender`. Returns what was
/// recorded; `None` when the fire was checked before (an earlier start), or its issue has a
/// campaign already (the fire sends nothing), or the ledger failed, or `stop` came first.
pub async fn run(
    sender: &Sender<'_>,
    issue: IssueId,
    fire_at: DateTime<Utc>,
    stop: &CancellationToken,
) -> Option<Preflight> {
    let (app, ledger) = (sender.app, sender.ledger);
    let at = fire_at.timestamp_millis();
    let skip = ledger
        .with(move |l| Ok(l.preflight_done(issue, at)? || l.campaign(issue)?.is_some()))
        .await;
    match skip {
        Ok(false) => {}
        Ok(true) => return None,
        Err(e) => {
            tracing::error!(error.message = %e, "cannot read the ledger: {e:#}");
            return None;
        }
    }
    tracing::info!(issue = %issue, %fire_at, "checking the issue before its scheduled send");
    let findings = tokio::select! {
        f = check(app, issue) => f,
        () = stop.cancelled() => return None,
    };
    let (subject, paragraphs) = compose(app, issue, fire_at, &findings);
    let record = record(issue, fire_at, app.clock.now_ms(), &paragraphs, &findings);
    let kept = record.clone();
    match ledger.with(move |l| l.record_preflight(&kept)).await {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => {
            tracing::error!(error.message = %e, "cannot record the checks: {e:#}");
            return None;
        }
    }
    if findings.problems.is_empty() {
        tracing::info!(issue = %issue, links = findings.links, "checks before the send: ready");
    } else {
        for p in &findings.problems {
            tracing::warn!(issue = %issue, "check before the send: {p}");
        }
    }
    let link = app
        .config
        .server
        .public_url
        .join(&format!("admin/issues/{issue}"))
        .expect("an issue id is a valid path");
    let mailed = crate::staff::mail_staff(
        sender,
        crate::ledger::NoticeKind::Preflight,
        None,
        crate::notices::Report {
            subject: &subject,
            paragraphs: &paragraphs,
            button: "Open the issue",
            link: &link,
        },
    )
    .await;
    if let Err(e) = mailed {
        tracing::warn!(issue = %issue, error.message = %e, "cannot mail the checks to staff: {e:#}");
    }
    Some(record)
}
