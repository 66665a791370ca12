//! `brief check`, `preview`, `status` and `report`: commands that read and change nothing.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::args::ReportFormat;
use super::load::load_editions_or_report;
use crate::app::App;
use crate::clock::fmt_ms;
use crate::error::{Problem, ProblemKind, UsageError};
use crate::feed::FetchPolicy;
use crate::issue::IssueId;
use crate::ledger::{Gate, HoldReason};
use crate::message::Kind;
use crate::report::ReportRow;

/// With `links`, also fetches every link of the issue (only when the issue itself loads).
pub(super) async fn check(
    app: &App,
    issue: Option<IssueId>,
    links: bool,
) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    for warning in &app.config.warnings {
        println!("warning: {warning}");
    }
    let mut problems = Vec::new();
    // Every configured language's edition, so a missing translation is reported too.
    let editions = match app.collect_editions(id, FetchPolicy::Once).await {
        Ok(e) => Some(e),
        Err(p) => {
            problems.extend(p.0);
            None
        }
    };
    match app.dkim_signer() {
        Ok(Some(d)) => {
            for (name, txt) in d.records() {
                println!("dkim: publish this TXT record at {name}:\n  {txt}");
            }
        }
        Ok(None) => {}
        Err(e) => problems.push(
            Problem::whole(&app.config.source, format!("[dkim]: {e:#}")).kind(ProblemKind::Config),
        ),
    }
    let ledger = app.open_ledger()?;
    let held = crate::audience::Held::load(&ledger)?;
    let mut readers = 0u64;
    crate::audience::each_subscriber(
        app,
        &held,
        |_| {
            readers += 1;
            Ok(())
        },
        |p| problems.push(p),
    )?;
    // Link problems join the others; the summary line follows them.
    let links_line = match (&editions, links) {
        (Some(e), true) => {
            let report = app.check_edition_links(e).await?;
            let line = format!(
                "links: {} checked, {} broken",
                report.checked,
                report.problems.len()
            );
            problems.extend(report.problems);
            Some(line)
        }
        (None, true) => Some("links: not checked, since the issue has problems".to_string()),
        (_, false) => None,
    };
    for p in &problems {
        println!("{p}");
    }
    if let Some(line) = links_line {
        println!("{line}");
    }
    match (&editions, problems.is_empty()) {
        (Some(e), true) => {
            let entries = match e.as_slice() {
                [(_, i)] => format!("{} entries", i.entries.len()),
                several => several
                    .iter()
                    .map(|(lang, i)| format!("{lang}: {} entries", i.entries.len()))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            println!("ok: issue {id}, {entries}, {readers} subscribers");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            let count =
                |kind: fn(&ProblemKind) -> bool| problems.iter().filter(|p| kind(&p.kind)).count();
            let listed = count(|k| *k == ProblemKind::Subscriber);
            let config = count(|k| *k == ProblemKind::Config);
            let mut line = format!(
                "{} problem(s) in issue {id}",
                problems.len() - listed - config
            );
            if listed > 0 {
                line.push_str(&format!(", {listed} in the subscriber list"));
            }
            if config > 0 {
                line.push_str(&format!(", {config} in the config"));
            }
            println!("{line}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `brief preview`: each language's edition as a reader gets it, in `out`: `ID.html`, `.txt`
/// and `.eml` for the default language, `ID.LANG.*` for each other.
pub(super) async fn preview(
    app: &App,
    issue: Option<IssueId>,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    let Some(editions) = load_editions_or_report(app, id).await else {
        return Ok(ExitCode::from(1));
    };
    let key = app.key().clone();
    let dkim = app.dkim_signer().map_err(UsageError)?;
    let (sample, _) = App::sample_recipient();
    let token = key.token(sample.as_ref());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let default = app.config.newsletter.languages.default_lang();
    for (lang, issue) in &editions {
        let (rendered, template) = app.prepare_in(lang, issue, &key, Kind::Campaign);
        let mut eml = App::sample_message(&template);
        if let Some(d) = &dkim {
            d.sign_in_place(&mut eml, app.clock.now().timestamp());
        }
        let files = [
            (
                "html",
                crate::render::Rendered::fill(&rendered.html, &token).into_bytes(),
            ),
            (
                "txt",
                crate::render::Rendered::fill(&rendered.text, &token).into_bytes(),
            ),
            ("eml", eml),
        ];
        let stem = if lang == default {
            id.to_string()
        } else {
            format!("{id}.{lang}")
        };
        for (ext, bytes) in files {
            let p = out.join(format!("{stem}.{ext}"));
            std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
            println!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn status(app: &App, issue: Option<IssueId>) -> anyhow::Result<ExitCode> {
    let ledger = app.open_ledger()?;
    let campaigns = match issue {
        Some(id) => match ledger.campaign(id)? {
            Some(c) => vec![c],
            None => {
                println!("issue {id}: no campaign yet");
                return Ok(ExitCode::SUCCESS);
            }
        },
        None => ledger.campaigns()?,
    };
    if campaigns.is_empty() {
        println!("no campaigns yet");
    }
    let now = app.clock.now_ms();
    for c in campaigns {
        let n = ledger.counts(c.id)?;
        let gate = c.gate(now);
        println!(
            "{}  {:<9} started {}  sent {}  failed {}  suppressed {}  deferred {}  pending {}  sending {}  total {}  \"{}\"",
            c.issue,
            c.state_word(now),
            fmt_ms(Some(c.created_at)),
            n.sent,
            n.failed,
            n.suppressed,
            n.deferred,
            n.pending,
            n.sending,
            n.total(),
            c.subject
        );
        if let Some(split) = crate::report::by_language(&ledger.counts_by_lang(c.id)?) {
            println!("  by language: {split}");
        }
        match gate {
            _ if c.finished => {}
            Gate::Held { since } => println!(
                "  {} since {}: no reader is mailed until `brief release --issue {}`",
                c.hold_reason.unwrap_or(HoldReason::Staff).describe(),
                fmt_ms(Some(since)),
                c.issue
            ),
            Gate::AwaitingCanary => println!(
                "  canary window over, but no staff address has accepted the canary copy yet: \
                 no reader is mailed until one does (the copies are tried again; if all fail, \
                 the campaign is held)"
            ),
            Gate::Canary { until } => println!(
                "  canary window: the readers are mailed at {} unless staff hold it (`brief hold --issue {}`)",
                fmt_ms(Some(until)),
                c.issue
            ),
            Gate::Open => {}
        }
        let canaries = ledger.canary_sends(c.id)?;
        if !canaries.is_empty() {
            let accepted = canaries.iter().filter(|s| s.accepted).count();
            println!(
                "  canary: {accepted} of {} staff copies accepted (not counted as readers)",
                canaries.len()
            );
        }
        if let Some(m) = ledger.campaign_message(c.id)? {
            if m.revision > 1 {
                println!(
                    "  message revision {} (by --restart-unsent) went to the {} readers then not yet sent",
                    m.revision, m.unsent
                );
            }
            if !c.finished && crate::campaign::start::folder_changed(app, c.issue, &m) {
                println!(
                    "  {}",
                    super::send::folder_changed_note(c.issue, m.revision)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn report(
    app: &App,
    issue: Option<IssueId>,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    let ledger = app.open_ledger()?;
    let Some(c) = ledger.campaign(id)? else {
        bail!("issue {id} has no campaign yet: nothing to report");
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        ReportFormat::Csv => {
            ReportRow::write_csv(&ledger, c.id, out)?.flush()?;
        }
        ReportFormat::Jsonl => {
            ledger.each_delivery(c.id, |d| {
                serde_json::to_writer(&mut out, &ReportRow::from(&d))?;
                Ok(out.write_all(b"\n")?)
            })?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
