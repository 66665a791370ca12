//! The console's dashboard (`/admin/`): the next send and its checks, the issues, recent
//! campaigns and suppressions; and the live counts (`/admin/live.js`, `.../counts`).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::super::admin::{console_page, Section, Staff};
use super::super::error::{axum_json, json_error, PageError};
use super::super::site::Shared;
use super::super::ui::url;
use super::campaign::canary_line;
use super::feeds::{cached_issue, feeds_section, statuses};
use super::parts::{
    cell, count_cells, count_head, heading, issue_id, link, live_script, local_ms, local_time,
    paragraph, preformatted, problem_list, subheading, table, POLL_MS, RECENT,
};
use crate::audience::{self, RosterState};
use crate::issue::IssueId;
use crate::ledger::{Campaign, Counts, HoldReason, State as DeliveryState, SuppressionRow};
use crate::schedule::Plan;

// ---------------------------------------------------------------------------------------------
// Dashboard

/// What the dashboard shows, read off the async threads.
pub(super) struct Overview {
    campaigns: Vec<(Campaign, Counts)>,
    subscribers: [(&'static str, u64); 5],
    suppressions: Vec<SuppressionRow>,
    /// The latest checks before a scheduled send.
    preflight: Option<crate::ledger::Preflight>,
    /// The campaign of the issue the next send would take, when it has one already.
    sent: Option<Campaign>,
}

pub(super) async fn dashboard(State(d): Shared, staff: Staff) -> Result<Response, PageError> {
    let now = d.app.clock.now();
    let now_ms = now.timestamp_millis();
    let plan = Plan::new(&d.app.config.schedule);
    let next = plan.as_ref().and_then(|p| p.next_fire(now));
    // The issue the next fire sends when its folder is there, else the newest folder.
    let scheduled = match (&plan, next) {
        (Some(p), Some(at)) => Some(p.issue_for(at)),
        _ => None,
    };
    // The content folder is read on a blocking thread.
    let app = d.app.clone();
    let (empty_fire, issue) = tokio::task::spawn_blocking(move || {
        let folder = |id: IssueId| app.config.content.dir.join(id.to_string()).is_dir();
        let fillable = |id: &IssueId| folder(*id) || !app.config.content.feeds.is_empty();
        // The fire's issue with nothing to fill it: the fire sends nothing (the daemon skips it).
        let empty_fire = scheduled.filter(|id| !fillable(id));
        let issue = match scheduled.filter(fillable) {
            Some(id) => Ok(id),
            None => app.resolve_issue(None),
        };
        (empty_fire, issue)
    })
    .await
    .map_err(|e| anyhow::anyhow!("reading the content folder: {e}"))?;
    let asked = issue.as_ref().ok().copied();
    let app = d.app.clone();
    let overview = d
        .ledger
        .with(move |l| {
            let sent = match asked {
                Some(id) => l.campaign(id)?,
                None => None,
            };
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
                sent,
            })
        })
        .await;
    let o = overview?;
    // An issue that has a campaign is not sent again: nothing to check for it. The check takes
    // each feed's last fetched copy: a page load never fetches a feed.
    let (check, feed_states) = match (&issue, &o.sent) {
        (Ok(id), None) => {
            let (check, states) = cached_issue(&d, *id).await?;
            (Some(check), states)
        }
        _ => (None, statuses(&d).await?),
    };
    let warnings = &d.app.config.warnings;
    let live = o.campaigns.iter().any(|(c, _)| !c.finished);
    let body = html! {
        (heading(&d, "Dashboard"))
        (subheading(&d, "Next send"))
        p.paragraph {
            @match (&plan, next) {
                (Some(_), Some(at)) => { strong { (local_time(&d, at)) } }
                (Some(_), None) => { "The schedule has no next fire." }
                (None, _) => { "No schedule: nothing is sent unless staff send it." }
            }
        }
        @if let Some(missing) = empty_fire {
            p.form-error data-next="empty" {
                "Nothing will be sent at that fire: issue " (missing) " has no folder in the content directory."
            }
        }
        @match &issue {
            Err(e) => { (paragraph(&d, &format!("No issue to send: {e:#}"))) }
            Ok(id) => {
                @let fired = scheduled == Some(*id);
                @match &o.sent {
                    Some(c) if c.finished => {
                        p.console-ok data-next=(if fired { "nothing" } else { "newest-sent" }) {
                            @if fired { "Nothing will be sent: issue " } @else { "Issue " }
                            (link(&d, &format!("admin/issues/{id}"), &id.to_string()))
                            @if fired { " (the schedule's issue for that send)" }
                            @else { " (the newest issue folder)" }
                            " was sent on " (local_ms(&d, c.finished_at)) " ("
                            (link(&d, &format!("admin/campaigns/{id}"), "its campaign")) ")."
                        }
                    }
                    Some(c) => {
                        p.console-ok data-next="running" {
                            "Issue " (id) " is being sent already (" (c.state_word(now_ms)) ", "
                            (link(&d, &format!("admin/campaigns/{id}"), "its campaign")) ")"
                            @if fired { ": that send starts nothing new" } "."
                        }
                    }
                    None => {
                        p.paragraph data-next=(if fired { "send" } else { "newest" }) {
                            @if fired {
                                "Will send issue " (link(&d, &format!("admin/issues/{id}"), &id.to_string()))
                                " (the schedule's issue for that send), if its check passes then."
                            } @else {
                                "Issue " (link(&d, &format!("admin/issues/{id}"), &id.to_string()))
                                " (the newest issue folder; staff send it from its page)."
                            }
                        }
                    }
                }
                @match &check {
                    Some(Ok(i)) => {
                        p.console-ok data-check="ok" {
                            "Check: ok, " (i.entries.len()) " entries"
                            @if !feed_states.is_empty() { " (feeds as last fetched)" }
                            "."
                        }
                    }
                    Some(Err(problems)) => {
                        p.form-error {
                            "Check: " (problems.0.len()) " problem(s); nothing is sent until they are fixed."
                        }
                        (problem_list(&d, &problems.0))
                    }
                    None => {}
                }
            }
        }
        (feeds_section(&d, &staff, &feed_states, None))
        @if let Some(p) = &o.preflight {
            (subheading(&d, "Checks before the send"))
            @if p.problems == 0 {
                p.console-ok data-preflight="ready" {
                    "Issue " (p.issue) ", checked " (local_ms(&d, Some(p.ran_at))) " for the send at "
                    (local_ms(&d, Some(p.fire_at))) ": ready."
                }
            } @else {
                p.form-error data-preflight="problems" {
                    "Issue " (p.issue) ", checked " (local_ms(&d, Some(p.ran_at))) " for the send at "
                    (local_ms(&d, Some(p.fire_at))) ": " (p.problems) " problem(s)."
                }
            }
            (preformatted(&d, "The checks' report", &p.report))
        }
        @if !warnings.is_empty() {
            p.paragraph { "Warnings of the configuration:" }
            ul.list { @for w in warnings { li.reply { (w) } } }
        }
        (subheading(&d, "Recent campaigns"))
        @for (c, _) in o.campaigns.iter().filter(|(c, _)| !c.finished && c.hold_reason == Some(HoldReason::CanaryUnaccepted)) {
            p.form-error data-canary="unaccepted" {
                "Issue " (c.issue) " held: no staff address accepted the canary copy. "
                (link(&d, &format!("admin/campaigns/{}", c.issue), "Open the campaign"))
            }
        }
        @if o.campaigns.is_empty() {
            (paragraph(&d, "No campaign yet."))
        } @else {
            @let head = [&["issue", "state"][..], &count_head()].concat();
            (table(&d, "Campaigns", &head, html! {
                @for (c, n) in &o.campaigns {
                    @let live_url = url(&d, &format!("admin/campaigns/{}/counts", c.issue));
                    tr data-live=[(!c.finished).then(|| live_url.to_string())] {
                        (cell(&d, link(&d, &format!("admin/campaigns/{}", c.issue), &c.issue.to_string())))
                        td.console-td data-count="state" {
                            (c.state_word(now_ms))
                        }
                        (count_cells(&d, n))
                    }
                }
            }))
            @if live { p.console-note { "Counts of a campaign being sent refresh every 2 seconds (with JavaScript; else reload the page)." } }
            p.paragraph { (link(&d, "admin/campaigns/", "Every campaign")) }
        }
        (subheading(&d, "Subscribers"))
        (table(&d, "Subscribers by state", &o.subscribers.iter().map(|(s, _)| *s).collect::<Vec<_>>(), html! {
            tr { @for (_, n) in &o.subscribers { (cell(&d, n)) } }
        }))
        (subheading(&d, "Latest unsubscribes and bounces"))
        @if o.suppressions.is_empty() {
            (paragraph(&d, "None yet."))
        } @else {
            (table(&d, "Latest unsubscribes and bounces", &["address", "reason", "when", "detail"], html! {
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
        p.paragraph { (link(&d, "admin/bounces/", "Every bounce and complaint")) }
        @if live { (live_script(&d)) }
    };
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Dashboard),
        "Dashboard",
        body,
    ))
}

/// The one script of the staff pages: every `[data-live]` row fetches its campaign's counts
/// (as JSON, behind the same session) every 2 s and writes them into its `[data-count]` cells,
/// until the campaign is finished; a campaign page's canary list (`[data-canaries]` naming the
/// same counts) is rewritten from the replies of its canary copies.
pub(super) const LIVE_JS: &str = r#"// brief: live counts of running campaigns.
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
          document.querySelectorAll("[data-canaries]").forEach(function (list) {
            if (list.getAttribute("data-canaries") !== src || !c.canaries || !c.canaries.length) { return; }
            var items = list.querySelectorAll("li");
            if (items.length === c.canaries.length && Array.prototype.every.call(items, function (li, i) { return li.textContent === c.canaries[i]; })) { return; }
            var tmpl = items[0];
            list.textContent = "";
            c.canaries.forEach(function (line) {
              var li = tmpl ? tmpl.cloneNode(false) : document.createElement("li");
              li.textContent = line;
              list.appendChild(li);
            });
          });
          if (!c.finished) { setTimeout(tick, POLL); }
        })
        .catch(function () { setTimeout(tick, POLL * 5); });
    }
    setTimeout(tick, POLL);
  });
})();
"#;

pub(super) async fn live_js(_staff: Staff) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        LIVE_JS.replace("POLL", &POLL_MS.to_string()),
    )
        .into_response()
}

pub(super) async fn counts_json(
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
            Some(c) => Ok(Some((l.counts(c.id)?, l.canary_sends(c.id)?, c))),
            None => Ok(None),
        })
        .await;
    Ok(match found? {
        Some((n, canaries, c)) => {
            let mut v = serde_json::json!({
                "issue": id.to_string(),
                "finished": c.finished,
                "state": c.state_word(d.app.clock.now_ms()),
                "total": n.total(),
                "canaries": canaries.iter().map(canary_line).collect::<Vec<_>>(),
            });
            for s in DeliveryState::ALL {
                v[s.as_str()] = n.get(s).into();
            }
            axum_json(&v).into_response()
        }
        None => json_error(StatusCode::NOT_FOUND, "this issue has no campaign"),
    })
}
