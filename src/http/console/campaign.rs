//! A campaign's page (`/admin/campaigns/{id}`), its CSV, and the hold and release forms.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::super::admin::{console_page, Section, Staff, StaffForm};
use super::super::error::PageError;
use super::super::site::{Shared, Site};
use super::super::ui::{see_other, url};
use super::parts::{
    cell, count_cells, count_head, heading, issue_id, link, live_script, local_ms, message,
    not_found, paragraph, subheading, table, ROW_CAP,
};
use super::subscribers::csv_download;
use crate::ledger::{
    Action, Campaign, CanarySend, Counts, DeliveryRow, Gate, HoldOutcome, HoldReason,
    State as DeliveryState,
};
use crate::report::ReportRow;
use crate::timing::Pace;

/// One canary copy's line: the staff address and the relay's reply.
pub(super) fn canary_line(s: &CanarySend) -> String {
    let code = s.code.map(|c| c.to_string()).unwrap_or_default();
    format!("{}: {code} {}", s.address, s.text)
}

// ---------------------------------------------------------------------------------------------
// Campaign page

#[derive(serde::Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    state: Option<String>,
    /// `excel=1` on the CSV: the Excel variant (with a byte-order mark).
    #[serde(default)]
    excel: Option<String>,
}

pub(super) async fn campaign_page(
    State(d): Shared,
    staff: Staff,
    Path(raw): Path<String>,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    if let Some(raw) = raw.strip_suffix(".csv") {
        return csv(d, staff, raw, filter.excel.is_some()).await;
    }
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, &staff, "There is no campaign by that id."));
    };
    let state = filter
        .state
        .as_deref()
        .and_then(|s| DeliveryState::ALL.into_iter().find(|x| x.as_str() == s));
    let found = d
        .ledger
        .with(move |l| match l.campaign(id)? {
            Some(c) => {
                let n = l.counts(c.id)?;
                let (rows, total) = l.deliveries(c.id, state, ROW_CAP)?;
                let canaries = l.canary_sends(c.id)?;
                let first = l.first_attempt(c.id)?;
                let by_lang = crate::report::by_language(&l.counts_by_lang(c.id)?);
                Ok(Some((c, n, rows, total, canaries, first, by_lang)))
            }
            None => Ok(None),
        })
        .await;
    let Some((c, n, rows, matching, canaries, first, by_lang)) = found? else {
        return Ok(not_found(
            &d,
            &staff,
            &format!("Issue {id} has no campaign yet."),
        ));
    };
    let body = campaign_body(
        &d,
        &staff,
        &c,
        &n,
        &canaries,
        Listing {
            state,
            rows: &rows,
            matching,
            first_attempt: first,
            by_language: by_lang.as_deref(),
        },
    );
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Campaigns),
        &format!("Campaign {id}"),
        body,
    ))
}

/// The readers a campaign page lists: those in `state` (any when `None`), at most
/// [`ROW_CAP`] of the `matching`.
pub(super) struct Listing<'a> {
    state: Option<DeliveryState>,
    rows: &'a [DeliveryRow],
    matching: u64,
    /// When its first reader was tried.
    first_attempt: Option<i64>,
    /// The counts by language, when the campaign is in several (`en 3 sent, es 2 sent`).
    by_language: Option<&'a str>,
}

/// The canary part of a campaign page: the copies mailed to staff, and while no reader was
/// mailed, the Hold and Release buttons.
pub(super) fn canary_part(
    d: &Site,
    staff: &Staff,
    c: &Campaign,
    n: &Counts,
    canaries: &[CanarySend],
) -> Markup {
    let id = c.issue;
    // A finished campaign waits for nothing, whatever its row still says.
    let gate = if c.finished {
        Gate::Open
    } else {
        c.gate(d.app.clock.now_ms())
    };
    let untouched = n.sent + n.failed + n.deferred + n.sending == 0;
    let held = matches!(gate, Gate::Held { .. });
    html! {
        @match gate {
            Gate::Held { since } if c.hold_reason == Some(HoldReason::CanaryUnaccepted) => {
                p.form-error data-canary="unaccepted" {
                    "Held: no staff address accepted the canary copy (since " (local_ms(d, Some(since)))
                    "), so nobody has seen the message and no reader is mailed until it is released. Check the staff addresses and the relay first."
                }
            }
            Gate::Held { since } => {
                p.form-error data-canary="held" {
                    "Held by staff since " (local_ms(d, Some(since))) ": no reader is mailed until it is released."
                }
            }
            Gate::AwaitingCanary => {
                p.form-error data-canary="awaiting" {
                    "The canary window is over, but no staff address has accepted the canary copy yet: no reader is mailed until one does (the copies are tried again; if all fail, the campaign is held)."
                }
            }
            Gate::Canary { until } => {
                p.console-ok data-canary="window" {
                    "Canary window: the readers are mailed at " strong { (local_ms(d, Some(until))) }
                    " unless staff hold the campaign."
                }
            }
            Gate::Open => {}
        }
        @if !canaries.is_empty() || (c.release_at.is_some() && !c.finished) {
            p.paragraph { "Canary copies (the readers' message, sent to staff first; not counted as readers):" }
            // The live script rewrites this list from the counts' `canaries` as replies come.
            ul.list data-canaries=(url(d, &format!("admin/campaigns/{id}/counts")).as_str()) {
                @for s in canaries {
                    li.reply { (canary_line(s)) }
                }
                @if canaries.is_empty() {
                    li.reply { "None sent yet." }
                }
            }
        }
        @if untouched && gate != Gate::Open {
            @if !held {
                form method="post" action=(url(d, &format!("admin/campaigns/{id}/hold")).as_str()) {
                    (staff.csrf_field(d))
                    p { button.page-button.page-button.page-button type="submit" { "Hold" } }
                }
            }
            form method="post" action=(url(d, &format!("admin/campaigns/{id}/release")).as_str()) {
                (staff.csrf_field(d))
                p {
                    button.page-button.page-button.page-button type="submit" {
                        (if held { "Release" } else { "Release now" })
                    }
                }
                p.console-note {
                    "Release sends the campaign to its readers within a few seconds."
                }
            }
        }
    }
}

pub(super) fn campaign_body(
    d: &Site,
    staff: &Staff,
    c: &Campaign,
    n: &Counts,
    canaries: &[CanarySend],
    listing: Listing<'_>,
) -> Markup {
    let Listing {
        state,
        rows,
        matching,
        first_attempt: listing_first,
        by_language,
    } = listing;
    let id = c.issue;
    let now = d.app.clock.now_ms();
    let end = c.finished_at.unwrap_or(now);
    let pace = Pace::of(c.created_at, listing_first, end, n.sent);
    let waited = c.release_at.is_some() || c.held_at.is_some() || !canaries.is_empty();
    let live_url = url(d, &format!("admin/campaigns/{id}/counts"));
    let mut head = vec!["state"];
    head.extend(count_head());
    html! {
        p.console-crumbs { (link(d, "admin/campaigns/", "Campaigns")) " / " (id) }
        (heading(d, &format!("Campaign {id}")))
        p.paragraph data-pace="" {
            "Subject: " strong { (c.subject) } br;
            "Started " (local_ms(d, Some(c.created_at))) " by " (c.trigger.as_str()) br;
            @if waited {
                @if listing_first.is_some() {
                    "Canary window and hold, before the first reader: " (pace.before_readers()) br;
                } @else if !c.finished {
                    "Waiting before the first reader (canary window or hold) for " (pace.before_readers()) br;
                }
            }
            @match (pace.readers_duration(), pace.rate()) {
                (Some(took), Some(rate)) => {
                    "First reader tried " (local_ms(d, listing_first)) br;
                    @if c.finished { "Finished " (local_ms(d, c.finished_at)) ", readers mailed in " (took) }
                    @else { "Sending to readers for " (took) }
                    br;
                    "Rate: " span data-rate="" { (rate) } " (from the first reader tried)"
                }
                _ => {
                    @if c.finished { "Finished " (local_ms(d, c.finished_at)) ": no reader was tried." }
                    @else { "No reader has been mailed yet." }
                }
            }
        }
        (canary_part(d, staff, c, n, canaries))
        (table(d, "Counts", &head, html! {
            tr data-live=[(!c.finished).then(|| live_url.to_string())] {
                td.console-td data-count="state" { (c.state_word(d.app.clock.now_ms())) }
                (count_cells(d, n))
            }
        }))
        @if let Some(split) = by_language {
            p.paragraph data-by-language="" { "By language: " (split) }
        }
        p.paragraph {
            (link(d, &format!("admin/campaigns/{id}.csv"), "Download the report (CSV)"))
            " or "
            (link(d, &format!("admin/campaigns/{id}.csv?excel=1"), "for Excel"))
            " \u{2013} every reader, the columns of " code.code { "brief report" } "."
        }
        (subheading(d, "Readers"))
        form method="get" action=(url(d, &format!("admin/campaigns/{id}")).as_str()) {
            label.field-label for="brief-state" { "Show readers whose delivery is" }
            select.field id="brief-state" name="state" {
                option value="" selected[state.is_none()] { "any state" }
                @for s in DeliveryState::ALL {
                    option value=(s.as_str()) selected[state == Some(s)] { (s.as_str()) " (" (n.get(s)) ")" }
                }
            }
            p { button.page-button.page-button.page-button type="submit" { "Show" } }
        }
        p.console-note {
            @if matching > rows.len() as u64 {
                "Showing the first " (rows.len()) " of " (matching) " readers; the CSV has them all."
            } @else {
                (matching) " reader" (if matching == 1 { "" } else { "s" }) "."
            }
        }
        (table(d, "Readers", &["address", "name", "state", "attempts", "last reply", "last attempt", "bounce"], html! {
            @for r in rows {
                tr {
                    (cell(d, &r.address))
                    (cell(d, r.name.as_deref().unwrap_or("")))
                    (cell(d, r.state.as_str()))
                    (cell(d, r.attempts))
                    (cell(d, format!("{} {}", r.last_code.map(|c| c.to_string()).unwrap_or_default(), r.last_text.as_deref().unwrap_or("")).trim().to_string()))
                    (cell(d, local_ms(d, r.last_attempt_at)))
                    (cell(d, r.bounce.as_deref().unwrap_or("")))
                }
            }
        }))
        @if !c.finished { (live_script(d)) }
    }
}

/// "Hold": stops a campaign in its canary window before any reader is mailed.
pub(super) async fn hold(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, staff, "There is no campaign by that id."));
    };
    let now = d.app.clock.now_ms();
    let outcome = d.ledger.with(move |l| l.hold_campaign(id, now)).await;
    Ok(match outcome? {
        HoldOutcome::Held => {
            tracing::info!(issue = %id, staff = %d.key.tag(staff.address.as_ref()), "campaign held from the console");
            staff
                .record(&d, Action::Hold, id.to_string(), String::new())
                .await;
            see_other(&url(&d, &format!("admin/campaigns/{id}")))
        }
        HoldOutcome::AlreadyHeld { .. } => see_other(&url(&d, &format!("admin/campaigns/{id}"))),
        HoldOutcome::TooLate { reached } => message(
            &d,
            staff,
            StatusCode::CONFLICT,
            "Not held",
            html! {
                (paragraph(&d, &format!("Issue {id} has reached {reached} reader(s) already: a hold stops a campaign only before any reader is mailed.")))
                p.paragraph { (link(&d, &format!("admin/campaigns/{id}"), &format!("Back to campaign {id}"))) }
            },
        ),
        HoldOutcome::NoCampaign => not_found(&d, staff, &format!("Issue {id} has no campaign.")),
    })
}

/// "Release": lets a held campaign, or one in its canary window, go to its readers; the
/// daemon's waiting run sees it within a few seconds.
pub(super) async fn release(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, staff, "There is no campaign by that id."));
    };
    let now = d.app.clock.now_ms();
    Ok(match d.ledger.with(move |l| l.open_gate(id, now)).await? {
        Some(_) => {
            tracing::info!(issue = %id, staff = %d.key.tag(staff.address.as_ref()), "campaign released from the console");
            staff
                .record(&d, Action::Release, id.to_string(), String::new())
                .await;
            see_other(&url(&d, &format!("admin/campaigns/{id}")))
        }
        None => not_found(&d, staff, &format!("Issue {id} has no campaign.")),
    })
}

/// The campaign's report as CSV: the columns and rows of `brief report`.
pub(super) async fn csv(
    d: Arc<Site>,
    staff: Staff,
    raw: &str,
    excel: bool,
) -> Result<Response, PageError> {
    let Some(id) = issue_id(raw) else {
        return Ok(not_found(&d, &staff, "There is no campaign by that id."));
    };
    let made = d
        .ledger
        .with(move |l| {
            let Some(c) = l.campaign(id)? else {
                return Ok(None);
            };
            Ok(Some(ReportRow::write_csv(l, c.id, Vec::new())?))
        })
        .await;
    Ok(match made? {
        Some(bytes) => csv_download(&format!("brief-report-{id}.csv"), bytes, excel),
        None => not_found(&d, &staff, &format!("Issue {id} has no campaign yet.")),
    })
}
