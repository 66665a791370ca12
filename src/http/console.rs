//! The staff console: the dashboard, an issue's preview with test sends and "Send now", a
//! campaign's page and its CSV, and the live counts behind the dashboard's small script.
//!
//! Every page takes a [`Staff`] (anonymous requests never get here) and every POST a
//! [`StaffForm`] (session CSRF token and `Origin` checked); pages are built by [`staff_page`],
//! server-rendered with maud, so every word from a file, the list or a reply is escaped. Pages
//! work without JavaScript: the one script (`/admin/live.js`, allowed by the staff pages' own
//! policy) only refreshes a running campaign's counts every [`POLL_MS`] ms.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use lettre::Address;
use maud::{html, Markup};
use tokio_util::sync::CancellationToken;

use super::admin::{staff_page, Staff, StaffForm};
use super::error::{axum_json, json_error, PageError};
use super::site::{Shared, Site};
use super::ui::{heading, paragraph, see_other, url};
use crate::address::AddressKey;
use crate::app::App;
use crate::audience::{self, RosterState};
use crate::campaign::start::{self, NotStarted, Started};
use crate::campaign::test_send;
use crate::error::Problem;
use crate::feed::FetchPolicy;
use crate::issue::{Issue, IssueId};
use crate::ledger::{
    Campaign, CanarySend, Counts, DeliveryRow, Gate, HoldOutcome, HoldReason,
    State as DeliveryState, SuppressionRow, Trigger,
};
use crate::message::Kind;
use crate::render::Rendered;
use crate::report::ReportRow;
use crate::schedule::Plan;

/// How often the live counts are fetched again.
pub const POLL_MS: u32 = 2000;

/// The most readers a campaign page lists (the CSV has them all).
pub const ROW_CAP: u32 = 500;

/// How many campaigns the dashboard lists, and how many suppressions.
const RECENT: usize = 10;

/// The console's routes (added to the staff pages' router, which adds their headers).
pub(super) fn routes(r: Router<Arc<Site>>) -> Router<Arc<Site>> {
    r.route("/admin/", get(dashboard))
        .route("/admin/live.js", get(live_js))
        .route("/admin/issues/{id}", get(issue_page))
        .route("/admin/issues/{id}/test", post(test_send))
        .route("/admin/issues/{id}/send", post(send_now))
        .route("/admin/campaigns/{id}", get(campaign_page))
        .route("/admin/campaigns/{id}/counts", get(counts_json))
        .route("/admin/campaigns/{id}/hold", post(hold))
        .route("/admin/campaigns/{id}/release", post(release))
}

fn style<'a>(d: &'a Site, class: &str) -> &'a str {
    d.app.templates.style(class)
}

fn subheading(d: &Site, text: &str) -> Markup {
    html! { h3 style=(style(d, "console-heading")) { (text) } }
}

fn link(d: &Site, path: &str, text: &str) -> Markup {
    html! { a style=(style(d, "link")) href=(url(d, path).as_str()) { (text) } }
}

/// A page of the console that says one thing, with `status`.
fn message(d: &Site, staff: &Staff, status: StatusCode, title: &str, body: Markup) -> Response {
    let mut res = staff_page(d, staff, title, html! { (heading(d, title)) (body) });
    *res.status_mut() = status;
    res
}

/// The answer to a send refused because the issue has problems: the list, as `check` gives it.
fn not_sent_for_problems(
    d: &Site,
    staff: &Staff,
    id: IssueId,
    problems: &crate::error::Problems,
) -> Response {
    message(
        d,
        staff,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Not sent",
        html! {
            (paragraph(d, &format!("Issue {id} has problems: nothing was sent.")))
            (problem_list(d, &problems.0))
            (back_to_issue(d, id))
        },
    )
}

fn not_found(d: &Site, staff: &Staff, what: &str) -> Response {
    message(
        d,
        staff,
        StatusCode::NOT_FOUND,
        "Not found",
        html! { (paragraph(d, what)) p { (link(d, "admin/", "Back to the dashboard")) } },
    )
}

fn issue_id(raw: &str) -> Option<IssueId> {
    raw.parse().ok()
}

/// A time as the staff read it: in the schedule's time zone when there is one, else UTC.
fn local_time(d: &Site, t: DateTime<Utc>) -> String {
    match Plan::new(&d.app.config.schedule) {
        Some(p) => {
            let tz = p.timezone();
            let local = t.with_timezone(&tz);
            format!("{} ({})", local.format("%a %-d %b %Y, %H:%M %Z"), tz.name())
        }
        None => t.format("%a %-d %b %Y, %H:%M UTC").to_string(),
    }
}

fn local_ms(d: &Site, ms: Option<i64>) -> String {
    ms.and_then(DateTime::from_timestamp_millis)
        .map(|t| local_time(d, t))
        .unwrap_or_default()
}

fn problem_list(d: &Site, problems: &[Problem]) -> Markup {
    html! {
        ul style=(style(d, "list")) {
            @for p in problems { li { code style=(style(d, "code")) { (p.to_string()) } } }
        }
    }
}

/// A table that scrolls inside its own box on a narrow screen.
fn table(d: &Site, head: &[&str], rows: Markup) -> Markup {
    html! {
        div style=(style(d, "console-scroll")) {
            table style=(style(d, "console-table")) {
                thead { tr { @for h in head { th style=(style(d, "console-th")) { (h) } } } }
                tbody { (rows) }
            }
        }
    }
}

fn cell(d: &Site, content: impl maud::Render) -> Markup {
    html! { td style=(style(d, "console-td")) { (content) } }
}

/// The counts cells of a campaign; live (`data-count`) when it is running.
fn count_cells(d: &Site, counts: &Counts) -> Markup {
    html! {
        @for s in DeliveryState::ALL {
            td style=(style(d, "console-td")) data-count=(s.as_str()) { (counts.get(s)) }
        }
        td style=(style(d, "console-td")) data-count="total" { (counts.total()) }
    }
}

fn count_head() -> Vec<&'static str> {
    let mut h: Vec<&str> = DeliveryState::ALL.iter().map(|s| s.as_str()).collect();
    h.push("total");
    h
}

fn live_script(d: &Site) -> Markup {
    html! { script src=(url(d, "admin/live.js").as_str()) {} }
}

// ---------------------------------------------------------------------------------------------
// Dashboard

/// What the dashboard shows, read off the async threads.
struct Overview {
    campaigns: Vec<(Campaign, Counts)>,
    subscribers: [(&'static str, u64); 5],
    suppressions: Vec<SuppressionRow>,
    /// The latest checks before a scheduled send.
    preflight: Option<crate::ledger::Preflight>,
}

async fn dashboard(State(d): Shared, staff: Staff) -> Result<Response, PageError> {
    let now = d.app.clock.now();
    let now_ms = now.timestamp_millis();
    let plan = Plan::new(&d.app.config.schedule);
    let next = plan.as_ref().and_then(|p| p.next_fire(now));
    // The issue the next fire sends when its folder is there, else the newest folder.
    let scheduled = match (&plan, next) {
        (Some(p), Some(at)) => Some(p.issue_for(at)),
        _ => None,
    };
    let folder = |id: IssueId| d.app.config.content.dir.join(id.to_string()).is_dir();
    let issue = match scheduled.filter(|id| folder(*id) || !d.app.config.content.feeds.is_empty()) {
        Some(id) => Ok(id),
        None => d.app.resolve_issue(None),
    };
    let check = match &issue {
        Ok(id) => Some(d.app.collect_issue(*id, FetchPolicy::Once).await),
        Err(_) => None,
    };
    let app = d.app.clone();
    let overview = d
        .ledger
        .with(move |l| {
            let mut campaigns = Vec::new();
            for c in l.campaigns()?.into_iter().take(RECENT) {
                let n = l.counts(c.id)?;
                campaigns.push((c, n));
            }
            let mut n = [0u64; 5];
            for r in audience::roster(&app, l, |_| {})? {
                let i = match r.state {
                    RosterState::Active => 0,
                    RosterState::Pending => 1,
                    RosterState::Suppressed(crate::ledger::Reason::Unsubscribed) => 2,
                    RosterState::Suppressed(crate::ledger::Reason::Bounced) => 3,
                    RosterState::Suppressed(crate::ledger::Reason::Complained) => 4,
                    RosterState::Forgotten => continue,
                };
                n[i] += 1;
            }
            Ok(Overview {
                campaigns,
                subscribers: [
                    ("active", n[0]),
                    ("pending", n[1]),
                    ("unsubscribed", n[2]),
                    ("bounced", n[3]),
                    ("complained", n[4]),
                ],
                suppressions: l.recent_suppressions(RECENT as u32)?,
                preflight: l.latest_preflight()?,
            })
        })
        .await;
    let o = overview?;
    let warnings = &d.app.config.warnings;
    let live = o.campaigns.iter().any(|(c, _)| !c.finished);
    let body = html! {
        (heading(&d, "Dashboard"))
        (subheading(&d, "Next send"))
        p style=(style(&d, "paragraph")) {
            @match (&plan, next) {
                (Some(_), Some(at)) => { strong { (local_time(&d, at)) } }
                (Some(_), None) => { "The schedule has no next fire." }
                (None, _) => { "No schedule: nothing is sent unless staff send it." }
            }
        }
        @match &issue {
            Err(e) => { (paragraph(&d, &format!("No issue to send: {e:#}"))) }
            Ok(id) => {
                p style=(style(&d, "paragraph")) {
                    "Issue " (link(&d, &format!("admin/issues/{id}"), &id.to_string()))
                    @if scheduled == Some(*id) { " (the schedule's issue for that send)" }
                    @else { " (the newest issue folder)" }
                }
                @match &check {
                    Some(Ok(i)) => {
                        p style=(style(&d, "console-ok")) {
                            "Check: ok, " (i.entries.len()) " entries."
                        }
                    }
                    Some(Err(problems)) => {
                        p style=(style(&d, "form-error")) {
                            "Check: " (problems.0.len()) " problem(s); nothing is sent until they are fixed."
                        }
                        (problem_list(&d, &problems.0))
                    }
                    None => {}
                }
            }
        }
        @if let Some(p) = &o.preflight {
            (subheading(&d, "Checks before the send"))
            @if p.problems == 0 {
                p style=(style(&d, "console-ok")) data-preflight="ready" {
                    "Issue " (p.issue) ", checked " (local_ms(&d, Some(p.ran_at))) " for the send at "
                    (local_ms(&d, Some(p.fire_at))) ": ready."
                }
            } @else {
                p style=(style(&d, "form-error")) data-preflight="problems" {
                    "Issue " (p.issue) ", checked " (local_ms(&d, Some(p.ran_at))) " for the send at "
                    (local_ms(&d, Some(p.fire_at))) ": " (p.problems) " problem(s)."
                }
            }
            pre style=(style(&d, "console-pre")) { (p.report) }
        }
        @if !warnings.is_empty() {
            p style=(style(&d, "paragraph")) { "Warnings of the configuration:" }
            ul style=(style(&d, "list")) { @for w in warnings { li { (w) } } }
        }
        (subheading(&d, "Recent campaigns"))
        @for (c, _) in o.campaigns.iter().filter(|(c, _)| !c.finished && c.hold_reason == Some(HoldReason::CanaryUnaccepted)) {
            p style=(style(&d, "form-error")) data-canary="unaccepted" {
                "Issue " (c.issue) " held: no staff address accepted the canary copy. "
                (link(&d, &format!("admin/campaigns/{}", c.issue), "Open the campaign"))
            }
        }
        @if o.campaigns.is_empty() {
            (paragraph(&d, "No campaign yet."))
        } @else {
            @let head = [&["issue", "state"][..], &count_head()].concat();
            (table(&d, &head, html! {
                @for (c, n) in &o.campaigns {
                    @let live_url = url(&d, &format!("admin/campaigns/{}/counts", c.issue));
                    tr data-live=[(!c.finished).then(|| live_url.to_string())] {
                        (cell(&d, link(&d, &format!("admin/campaigns/{}", c.issue), &c.issue.to_string())))
                        td style=(style(&d, "console-td")) data-count="state" {
                            (c.state_word(now_ms))
                        }
                        (count_cells(&d, n))
                    }
                }
            }))
            @if live { p style=(style(&d, "console-note")) { "Counts of a campaign being sent refresh every 2 seconds (with JavaScript; else reload the page)." } }
        }
        (subheading(&d, "Subscribers"))
        (table(&d, &o.subscribers.iter().map(|(s, _)| *s).collect::<Vec<_>>(), html! {
            tr { @for (_, n) in &o.subscribers { (cell(&d, n)) } }
        }))
        (subheading(&d, "Latest unsubscribes and bounces"))
        @if o.suppressions.is_empty() {
            (paragraph(&d, "None yet."))
        } @else {
            (table(&d, &["address", "reason", "when", "detail"], html! {
                @for s in &o.suppressions {
                    tr {
                        (cell(&d, &s.address))
                        (cell(&d, s.reason.as_str()))
                        (cell(&d, local_ms(&d, Some(s.at))))
                        (cell(&d, s.detail.as_deref().unwrap_or("")))
                    }
                }
            }))
        }
        @if live { (live_script(&d)) }
    };
    Ok(staff_page(&d, &staff, "Dashboard", body))
}

/// The one script of the staff pages: every `[data-live]` row fetches its campaign's counts
/// (as JSON, behind the same session) every 2 s and writes them into its `[data-count]` cells,
/// until the campaign is finished.
const LIVE_JS: &str = r#"// brief: live counts of running campaigns.
"use strict";
(function () {
  document.querySelectorAll("[data-live]").forEach(function (row) {
    var src = row.getAttribute("data-live");
    function tick() {
      fetch(src, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (c) {
          if (!c) { return; }
          row.querySelectorAll("[data-count]").forEach(function (cell) {
            var k = cell.getAttribute("data-count");
            if (k in c) { cell.textContent = String(c[k]); }
          });
          if (!c.finished) { setTimeout(tick, POLL); }
        })
        .catch(function () { setTimeout(tick, POLL * 5); });
    }
    setTimeout(tick, POLL);
  });
})();
"#;

async fn live_js(_staff: Staff) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        LIVE_JS.replace("POLL", &POLL_MS.to_string()),
    )
        .into_response()
}

async fn counts_json(
    State(d): Shared,
    _staff: Staff,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let Some(id) = issue_id(&raw) else {
        return Ok(json_error(StatusCode::NOT_FOUND, "no such issue"));
    };
    let found = d
        .ledger
        .with(move |l| match l.campaign(id)? {
            Some(c) => Ok(Some((l.counts(c.id)?, c))),
            None => Ok(None),
        })
        .await;
    Ok(match found? {
        Some((n, c)) => {
            let mut v = serde_json::json!({
                "issue": id.to_string(),
                "finished": c.finished,
                "state": c.state_word(d.app.clock.now_ms()),
                "total": n.total(),
            });
            for s in DeliveryState::ALL {
                v[s.as_str()] = n.get(s).into();
            }
            axum_json(&v).into_response()
        }
        None => json_error(StatusCode::NOT_FOUND, "this issue has no campaign"),
    })
}

// ---------------------------------------------------------------------------------------------
// Issue page

/// The issue as a reader gets it, made out to the sample reader (as `brief preview` does).
struct Preview {
    subject: String,
    html: String,
    text: String,
    headers: String,
    size: usize,
}

fn preview(d: &Site, issue: &Issue) -> Preview {
    let (rendered, template) = d.app.prepare(issue, &d.key, Kind::Campaign);
    let mut eml = App::sample_message(&template);
    if let Some(k) = &d.dkim {
        k.sign_in_place(&mut eml, d.app.clock.now().timestamp());
    }
    let (sample, _) = App::sample_recipient();
    let unsubscribe = template.unsubscribe_url(&sample);
    let end = eml
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(eml.len());
    Preview {
        subject: rendered.subject.clone(),
        html: Rendered::fill(&rendered.html, &unsubscribe),
        text: Rendered::fill(&rendered.text, &unsubscribe),
        headers: String::from_utf8_lossy(&eml[..end]).replace("\r\n", "\n"),
        size: eml.len(),
    }
}

fn size(n: usize) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        format!("{:.1} KiB ({n} bytes)", n as f64 / 1024.0)
    }
}

async fn issue_page(
    State(d): Shared,
    staff: Staff,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, &staff, "There is no issue by that id."));
    };
    let folder = d.app.config.content.dir.join(id.to_string());
    if !folder.is_dir() && d.app.config.content.feeds.is_empty() {
        return Ok(not_found(
            &d,
            &staff,
            &format!("There is no issue folder {id}."),
        ));
    }
    let collected = d.app.collect_issue(id, FetchPolicy::Once).await;
    let app = d.app.clone();
    let found = d
        .ledger
        .with(move |l| {
            let campaign = l.campaign(id)?;
            let readers = match campaign {
                Some(_) => 0,
                None => audience::reachable_readers(&app, l)?,
            };
            Ok((campaign, readers, l.test_send_count(id)?))
        })
        .await;
    let (campaign, readers, tests) = found?;
    let body = issue_body(
        &d,
        &staff,
        id,
        &collected,
        campaign.as_ref(),
        readers,
        tests,
    );
    Ok(staff_page(&d, &staff, &format!("Issue {id}"), body))
}

fn issue_body(
    d: &Site,
    staff: &Staff,
    id: IssueId,
    collected: &Result<Issue, crate::error::Problems>,
    campaign: Option<&Campaign>,
    readers: u64,
    tests: u64,
) -> Markup {
    let staff_list = &d.app.config.server.staff;
    html! {
        p style=(style(d, "console-note")) { (link(d, "admin/", "Dashboard")) " / issue " (id) }
        (heading(d, &format!("Issue {id}")))
        @if let Some(c) = campaign {
            p style=(style(d, "console-ok")) {
                "This issue was already sent: its campaign started " (local_ms(d, Some(c.created_at)))
                @if c.finished { " and is finished" } @else { " and is still sending" }
                ". " (link(d, &format!("admin/campaigns/{id}"), "See the campaign"))
            }
        }
        @match collected {
            Err(problems) => {
                p style=(style(d, "form-error")) {
                    (problems.0.len()) " problem(s): this issue cannot be sent or tested until they are fixed."
                }
                (problem_list(d, &problems.0))
            }
            Ok(issue) => {
                @let p = preview(d, issue);
                p style=(style(d, "paragraph")) {
                    "Subject: " strong { (p.subject) } br;
                    "Size: " (size(p.size)) " (as made out to the sample reader "
                    (crate::app::SAMPLE_ADDRESS) ")" br;
                    "Test sends so far: " (tests)
                }
                (subheading(d, "Send a test"))
                form method="post" action=(url(d, &format!("admin/issues/{id}/test")).as_str()) {
                    (staff.csrf_field(d))
                    label style=(style(d, "field-label")) for="brief-test-to" { "Send the test to" }
                    select style=(style(d, "field")) id="brief-test-to" name="to" {
                        @for m in staff_list {
                            @let me = AddressKey::of(&m.email) == AddressKey::of(&staff.address);
                            option value=(m.email) selected[me] { (m.email) @if me { " (me)" } }
                        }
                    }
                    p { button type="submit" style=(style(d, "page-button")) { "Send a test to me" } }
                    p style=(style(d, "console-note")) {
                        "A test goes only to staff, with [TEST] in its subject, and is kept in the test log."
                    }
                }
                @if campaign.is_none() {
                    (subheading(d, "Send now"))
                    form method="post" action=(url(d, &format!("admin/issues/{id}/send")).as_str()) {
                        (staff.csrf_field(d))
                        p style=(style(d, "paragraph")) {
                            "Sends issue " (id) " to " strong { (readers) } " reader"
                            (if readers == 1 { "" } else { "s" }) " now. This cannot be undone."
                        }
                        @if let Some(w) = d.app.config.schedule.canary {
                            p style=(style(d, "console-note")) {
                                "Staff get it first; the readers " (humantime::format_duration(w))
                                " later, unless it is held on the campaign's page."
                            }
                        }
                        label style=(style(d, "field-label")) for="brief-confirm" {
                            "Type the issue id (" (id) ") to confirm"
                        }
                        input style=(style(d, "field")) id="brief-confirm" name="confirm" type="text"
                            required autocomplete="off" inputmode="numeric";
                        p { button type="submit" style=(style(d, "page-button")) { "Send now" } }
                    }
                }
                h3 id="the-email" style=(style(d, "console-heading")) { "The email" }
                iframe sandbox="" title=(format!("Issue {id} as a reader sees it")) srcdoc=(p.html)
                    style=(style(d, "console-frame")) {}
                (subheading(d, "Text part"))
                pre style=(style(d, "console-pre")) { (p.text) }
                (subheading(d, "Headers"))
                pre style=(style(d, "console-pre")) { (p.headers) }
            }
        }
    }
}

fn field<'a>(form: &'a StaffForm, name: &str) -> Option<&'a str> {
    form.fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn back_to_issue(d: &Site, id: IssueId) -> Markup {
    html! { p style=(style(d, "paragraph")) { (link(d, &format!("admin/issues/{id}"), &format!("Back to issue {id}"))) } }
}

async fn test_send(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, staff, "There is no issue by that id."));
    };
    // To the signed-in member, or another staff address; never anyone else.
    let to: Option<Address> = match field(&form, "to").filter(|t| !t.is_empty()) {
        None => Some(staff.address.clone()),
        Some(t) => crate::address::parse_address(t)
            .ok()
            .and_then(|a| crate::staff::staff_address(&d.app, &a)),
    };
    let Some(to) = to else {
        return Ok(message(
            &d,
            staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not sent",
            html! { (paragraph(&d, "Tests go only to addresses of the staff.")) (back_to_issue(&d, id)) },
        ));
    };
    let issue = match d.app.collect_issue(id, FetchPolicy::Once).await {
        Ok(i) => i,
        Err(problems) => return Ok(not_sent_for_problems(&d, staff, id, &problems)),
    };
    let tag = d.key.tag(staff.address.as_ref());
    tracing::info!(issue = %id, staff = %tag, "console test send");
    let replies = test_send::send(&d.sender(), &issue, &[to], |_| {}).await?;
    let all = replies.iter().all(|r| r.accepted);
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    let title = if all { "Test sent" } else { "Test not sent" };
    Ok(message(
        &d,
        staff,
        status,
        title,
        html! {
            ul style=(style(&d, "list")) {
                @for r in &replies {
                    li {
                        (r.address) ": "
                        @if r.accepted { "accepted" } @else { "refused" }
                        " (" (r.code.map(|c| c.to_string()).unwrap_or_default()) " " (r.text) ")"
                    }
                }
            }
            (back_to_issue(&d, id))
        },
    ))
}

async fn send_now(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, staff, "There is no issue by that id."));
    };
    let refuse = |status: StatusCode, text: &str| {
        message(
            &d,
            staff,
            status,
            "Not sent",
            html! { (paragraph(&d, text)) (back_to_issue(&d, id)) },
        )
    };
    if field(&form, "confirm").map(str::trim) != Some(id.to_string().as_str()) {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("The id typed does not match {id}: nothing was sent."),
        ));
    }
    let Some(launch) = d.launch.clone() else {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "This server cannot run campaigns: use `brief send`.",
        ));
    };
    // Like `brief send --yes`: the campaign with its whole list in one transaction. A request
    // is not cancelled midway: the campaign is made, or not at all.
    let started = start::from_folder(
        &d.app,
        &d.ledger,
        &d.key,
        id,
        Trigger::Staff,
        FetchPolicy::Once,
        &CancellationToken::new(),
    )
    .await;
    let Started {
        ledger,
        template,
        campaign,
        problems,
        ..
    } = match started {
        Ok(s) => s,
        Err(NotStarted::Exists) => {
            return Ok(refuse(
                StatusCode::CONFLICT,
                &format!("Issue {id} was already sent: nothing more was sent."),
            ))
        }
        Err(NotStarted::Empty | NotStarted::Stopped) => {
            return Ok(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Issue {id} has no entries: nothing was sent."),
            ))
        }
        Err(NotStarted::Problems(problems)) => {
            return Ok(not_sent_for_problems(&d, staff, id, &problems))
        }
        Err(NotStarted::Failed(e)) => return Err(e.into()),
    };
    for p in &problems {
        tracing::warn!("skipped subscriber: {p}");
    }
    tracing::info!(issue = %id, staff = %d.key.tag(staff.address.as_ref()), trigger = "staff", "campaign started from the console");
    launch(campaign, template, ledger);
    Ok(see_other(&url(&d, &format!("admin/campaigns/{id}"))))
}

// ---------------------------------------------------------------------------------------------
// Campaign page

#[derive(serde::Deserialize)]
struct Filter {
    #[serde(default)]
    state: Option<String>,
}

async fn campaign_page(
    State(d): Shared,
    staff: Staff,
    Path(raw): Path<String>,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    if let Some(raw) = raw.strip_suffix(".csv") {
        return csv(d, staff, raw).await;
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
                Ok(Some((c, n, rows, total, canaries)))
            }
            None => Ok(None),
        })
        .await;
    let Some((c, n, rows, matching, canaries)) = found? else {
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
        },
    );
    Ok(staff_page(&d, &staff, &format!("Campaign {id}"), body))
}

fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The readers a campaign page lists: those in `state` (any when `None`), at most
/// [`ROW_CAP`] of the `matching`.
struct Listing<'a> {
    state: Option<DeliveryState>,
    rows: &'a [DeliveryRow],
    matching: u64,
}

/// The canary part of a campaign page: the copies mailed to staff, and while no reader was
/// mailed, the Hold and Release buttons.
fn canary_part(
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
                p style=(style(d, "form-error")) data-canary="unaccepted" {
                    "Held: no staff address accepted the canary copy (since " (local_ms(d, Some(since)))
                    "), so nobody has seen the message and no reader is mailed until it is released. Check the staff addresses and the relay first."
                }
            }
            Gate::Held { since } => {
                p style=(style(d, "form-error")) data-canary="held" {
                    "Held by staff since " (local_ms(d, Some(since))) ": no reader is mailed until it is released."
                }
            }
            Gate::AwaitingCanary => {
                p style=(style(d, "form-error")) data-canary="awaiting" {
                    "The canary window is over, but no staff address has accepted the canary copy yet: no reader is mailed until one does (the copies are tried again; if all fail, the campaign is held)."
                }
            }
            Gate::Canary { until } => {
                p style=(style(d, "console-ok")) data-canary="window" {
                    "Canary window: the readers are mailed at " strong { (local_ms(d, Some(until))) }
                    " unless staff hold the campaign."
                }
            }
            Gate::Open => {}
        }
        @if !canaries.is_empty() {
            p style=(style(d, "paragraph")) { "Canary copies (the readers' message, sent to staff first; not counted as readers):" }
            ul style=(style(d, "list")) {
                @for s in canaries {
                    li { (s.address) ": " (s.code.map(|c| c.to_string()).unwrap_or_default()) " " (s.text) }
                }
            }
        }
        @if untouched && gate != Gate::Open {
            @if !held {
                form method="post" action=(url(d, &format!("admin/campaigns/{id}/hold")).as_str()) {
                    (staff.csrf_field(d))
                    p { button type="submit" style=(style(d, "page-button")) { "Hold" } }
                }
            }
            form method="post" action=(url(d, &format!("admin/campaigns/{id}/release")).as_str()) {
                (staff.csrf_field(d))
                p {
                    button type="submit" style=(style(d, "page-button")) {
                        (if held { "Release" } else { "Release now" })
                    }
                }
                p style=(style(d, "console-note")) {
                    "Release sends the campaign to its readers within a few seconds."
                }
            }
        }
    }
}

fn campaign_body(
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
    } = listing;
    let id = c.issue;
    let end = c.finished_at.unwrap_or_else(|| d.app.clock.now_ms());
    let took = end - c.created_at;
    let rate = if took > 0 {
        n.sent as f64 / (took as f64 / 60_000.0)
    } else {
        0.0
    };
    let live_url = url(d, &format!("admin/campaigns/{id}/counts"));
    let mut head = vec!["state"];
    head.extend(count_head());
    html! {
        p style=(style(d, "console-note")) { (link(d, "admin/", "Dashboard")) " / campaign " (id) }
        (heading(d, &format!("Campaign {id}")))
        p style=(style(d, "paragraph")) {
            "Subject: " strong { (c.subject) } br;
            "Started " (local_ms(d, Some(c.created_at))) " by " (c.trigger.as_str()) br;
            @if c.finished { "Finished " (local_ms(d, c.finished_at)) ", after " (duration(took)) }
            @else { "Sending for " (duration(took)) }
            br;
            "Rate: " (format!("{rate:.1}")) " sent a minute"
        }
        (canary_part(d, staff, c, n, canaries))
        (table(d, &head, html! {
            tr data-live=[(!c.finished).then(|| live_url.to_string())] {
                td style=(style(d, "console-td")) data-count="state" { (c.state_word(d.app.clock.now_ms())) }
                (count_cells(d, n))
            }
        }))
        p style=(style(d, "paragraph")) {
            (link(d, &format!("admin/campaigns/{id}.csv"), "Download the report (CSV)"))
            " \u{2013} every reader, the columns of " code style=(style(d, "code")) { "brief report" } "."
        }
        (subheading(d, "Readers"))
        form method="get" action=(url(d, &format!("admin/campaigns/{id}")).as_str()) {
            label style=(style(d, "field-label")) for="brief-state" { "Show readers whose delivery is" }
            select style=(style(d, "field")) id="brief-state" name="state" {
                option value="" selected[state.is_none()] { "any state" }
                @for s in DeliveryState::ALL {
                    option value=(s.as_str()) selected[state == Some(s)] { (s.as_str()) " (" (n.get(s)) ")" }
                }
            }
            p { button type="submit" style=(style(d, "page-button")) { "Show" } }
        }
        p style=(style(d, "console-note")) {
            @if matching > rows.len() as u64 {
                "Showing the first " (rows.len()) " of " (matching) " readers; the CSV has them all."
            } @else {
                (matching) " reader" (if matching == 1 { "" } else { "s" }) "."
            }
        }
        (table(d, &["address", "name", "state", "attempts", "last reply", "last attempt", "bounce"], html! {
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
async fn hold(
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
                p style=(style(&d, "paragraph")) { (link(&d, &format!("admin/campaigns/{id}"), &format!("Back to campaign {id}"))) }
            },
        ),
        HoldOutcome::NoCampaign => not_found(&d, staff, &format!("Issue {id} has no campaign.")),
    })
}

/// "Release": lets a held campaign, or one in its canary window, go to its readers; the
/// daemon's waiting run sees it within a few seconds.
async fn release(
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
            see_other(&url(&d, &format!("admin/campaigns/{id}")))
        }
        None => not_found(&d, staff, &format!("Issue {id} has no campaign.")),
    })
}

/// The campaign's report as CSV: the columns and rows of `brief report`.
async fn csv(d: Arc<Site>, staff: Staff, raw: &str) -> Result<Response, PageError> {
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
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"brief-report-{id}.csv\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        None => not_found(&d, &staff, &format!("Issue {id} has no campaign yet.")),
    })
}
