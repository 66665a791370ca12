//! The checks the daemon runs `[schedule] preflight` before each scheduled send: the issue's
//! content, every link of it, and the delivery settings, mailed to staff and kept for the
//! console's dashboard.
//!
//! A fire is checked once: the result is recorded in the ledger under (issue, fire time)
//! before it is mailed, so a restart inside the window mails nothing twice. A fire whose issue
//! already has a campaign sends nothing, so it is not checked.

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::feed::FetchPolicy;
use crate::issue::IssueId;
use crate::ledger::Preflight;

/// What the checks before a fire found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Entries in the issue (0 when it could not be loaded).
    pub entries: usize,
    /// Links fetched.
    pub links: usize,
    /// Each problem as `path:line: message`: content, feeds, links.
    pub problems: Vec<String>,
    /// The delivery settings' warnings (they do not stop a send).
    pub warnings: Vec<String>,
}

/// Runs the checks of `issue`: loads it with its feeds (one try each), fetches its links, and
/// adds the config's delivery warnings.
pub async fn check(app: &App, issue: IssueId) -> Findings {
    let mut f = Findings {
        warnings: app.config.warnings.clone(),
        ..Findings::default()
    };
    match app.collect_issue(issue, FetchPolicy::Once).await {
        Ok(i) => {
            f.entries = i.entries.len();
            if i.entries.is_empty() {
                f.problems
                    .push(format!("issue {issue} has no entries: the send is skipped"));
            }
            match app.check_links(&i).await {
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
