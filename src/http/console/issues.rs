//! The list of issues (`/admin/issues/`): every issue folder, newest first, with what it is now
//! (problems, ready, scheduled, canary, held, sending, sent) and links to its pages.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::super::admin::{console_page, Section, Staff};
use super::super::error::PageError;
use super::super::site::Shared;
use super::parts::{cell, heading, link, local_ms, local_time, paragraph, table};
use crate::issue::IssueId;
use crate::ledger::{Campaign, Counts, Gate};
use crate::schedule::Plan;

/// One issue folder as the list shows it.
struct Row {
    id: IssueId,
    /// The number of entries, or the problems that keep it from being sent.
    loaded: Result<usize, usize>,
    campaign: Option<(Campaign, Counts)>,
}

pub(super) async fn issues_page(State(d): Shared, staff: Staff) -> Result<Response, PageError> {
    let app = d.app.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        // Newest first; a content folder that cannot be read lists no folder (a feeds-only
        // setup may have none).
        let mut ids = crate::content::list_issues(&app.config.content.dir).unwrap_or_default();
        ids.reverse();
        ids.into_iter()
            .map(|id| {
                let n = app
                    .load_issue(id)
                    .map(|i| i.entries.len())
                    .map_err(|p| p.0.len());
                (id, n)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| anyhow::anyhow!("reading the issue folders failed: {e}"))?;
    let campaigns = d
        .ledger
        .with(|l| {
            let mut v = Vec::new();
            for c in l.campaigns()? {
                let n = l.counts(c.id)?;
                v.push((c, n));
            }
            Ok(v)
        })
        .await?;
    let mut rows: Vec<Row> = loaded
        .into_iter()
        .map(|(id, loaded)| Row {
            id,
            loaded,
            campaign: campaigns.iter().find(|(c, _)| c.issue == id).cloned(),
        })
        .collect();
    // A campaign whose folder is gone (or made from feeds alone) is still an issue.
    for (c, n) in &campaigns {
        if !rows.iter().any(|r| r.id == c.issue) {
            rows.push(Row {
                id: c.issue,
                loaded: Ok(0),
                campaign: Some((c.clone(), *n)),
            });
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.id));

    let now = d.app.clock.now();
    let next = Plan::new(&d.app.config.schedule)
        .and_then(|p| p.next_fire(now).map(|at| (p.issue_for(at), at)));
    let now_ms = now.timestamp_millis();
    let state = |r: &Row| -> String {
        match (&r.campaign, r.loaded) {
            (Some((c, n)), _) if c.finished => format!(
                "sent on {} to {} reader{}",
                local_ms(&d, c.finished_at),
                n.sent,
                if n.sent == 1 { "" } else { "s" }
            ),
            (Some((c, _)), _) => match c.gate(now_ms) {
                Gate::Held { since } => format!("held since {}", local_ms(&d, Some(since))),
                Gate::Canary { until } => {
                    format!("canary: readers at {}", local_ms(&d, Some(until)))
                }
                Gate::AwaitingCanary => "canary: waiting for a staff address".to_string(),
                Gate::Open => "sending".to_string(),
            },
            (None, Err(p)) => format!("{p} problem{}", if p == 1 { "" } else { "s" }),
            (None, Ok(_)) => match next {
                Some((id, at)) if id == r.id => {
                    format!("ready; scheduled for {}", local_time(&d, at))
                }
                _ => "ready".to_string(),
            },
        }
    };
    let body = html! {
        (heading(&d, "Issues"))
        @if rows.is_empty() {
            (paragraph(&d, &format!("No issue folder in {} yet.", d.app.config.content.dir.display())))
        } @else {
            (table(&d, "Issues", &["issue", "entries", "state", "campaign", "archive"], html! {
                @for r in &rows {
                    tr {
                        (cell(&d, link(&d, &format!("admin/issues/{}", r.id), &r.id.to_string())))
                        (cell(&d, match r.loaded { Ok(n) if r.campaign.is_none() || n > 0 => n.to_string(), _ => String::new() }))
                        (cell(&d, state(r)))
                        (cell(&d, html! {
                            @if r.campaign.is_some() { (link(&d, &format!("admin/campaigns/{}", r.id), &format!("campaign {}", r.id))) }
                        }))
                        (cell(&d, html! {
                            @if r.campaign.as_ref().is_some_and(|(c, _)| c.finished) {
                                (link(&d, &format!("archive/{}", r.id), &format!("web version of {}", r.id)))
                            }
                        }))
                    }
                }
            }))
        }
    };
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Issues),
        "Issues",
        body,
    ))
}
