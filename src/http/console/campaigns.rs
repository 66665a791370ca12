//! The list of campaigns (`/admin/campaigns/`): every campaign, newest issue first, with its
//! state, its times and counts, and a link to its page.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::super::admin::{console_page, Section, Staff};
use super::super::error::PageError;
use super::super::site::Shared;
use super::super::ui::url;
use super::parts::{
    cell, count_cells, count_head, heading, link, live_script, local_ms, paragraph, table,
};
use crate::ledger::{Campaign, Counts};

/// One campaign as the list shows it: its row, its counts and when its first reader was tried.
struct Listed {
    campaign: Campaign,
    counts: Counts,
    first_attempt: Option<i64>,
}

pub(super) async fn campaigns_page(State(d): Shared, staff: Staff) -> Result<Response, PageError> {
    let listed = d
        .ledger
        .with(|l| {
            let mut out = Vec::new();
            for c in l.campaigns()? {
                out.push(Listed {
                    counts: l.counts(c.id)?,
                    first_attempt: l.first_attempt(c.id)?,
                    campaign: c,
                });
            }
            Ok(out)
        })
        .await?;
    let now = d.app.clock.now_ms();
    let live = listed.iter().any(|x| !x.campaign.finished);
    let head = [
        &[
            "issue",
            "state",
            "started",
            "first reader tried",
            "finished",
        ][..],
        &count_head(),
    ]
    .concat();
    let body = html! {
        p.console-note { (link(&d, "admin/", "Dashboard")) " / campaigns" }
        (heading(&d, "Campaigns"))
        @if listed.is_empty() {
            (paragraph(&d, "No campaign yet: an issue's page has \"Send now\", and the schedule starts one at each fire."))
        } @else {
            p.console-note {
                (listed.len()) " campaign" (if listed.len() == 1 { "" } else { "s" }) ", newest issue first."
            }
            (table(&d, "Campaigns", &head, html! {
                @for x in &listed {
                    @let c = &x.campaign;
                    @let live_url = url(&d, &format!("admin/campaigns/{}/counts", c.issue));
                    tr data-live=[(!c.finished).then(|| live_url.to_string())] {
                        (cell(&d, link(&d, &format!("admin/campaigns/{}", c.issue), &c.issue.to_string())))
                        td.console-td data-count="state" { (c.state_word(now)) }
                        (cell(&d, local_ms(&d, Some(c.created_at))))
                        (cell(&d, local_ms(&d, x.first_attempt)))
                        (cell(&d, local_ms(&d, c.finished_at)))
                        (count_cells(&d, &x.counts))
                    }
                }
            }))
            @if live {
                p.console-note { "Counts of a campaign being sent refresh every 2 seconds (with JavaScript; else reload the page)." }
                (live_script(&d))
            }
        }
    };
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Campaigns),
        "Campaigns",
        body,
    ))
}
