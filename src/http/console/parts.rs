//! What the console's pages share: styles, headings, links, tables, times, the answers of a
//! refused action, and the live-count script's tag.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::super::admin::{staff_page, Staff, StaffForm};
use super::super::site::Site;
use super::super::ui::url;
use crate::error::Problem;
use crate::issue::IssueId;
use crate::ledger::{Counts, State as DeliveryState};
use crate::schedule::Plan;

/// How often the live counts are fetched again.
pub const POLL_MS: u32 = 2000;

/// The most readers a campaign page lists (the CSV has them all).
pub const ROW_CAP: u32 = 500;

/// How many campaigns the dashboard lists, and how many suppressions.
pub(super) const RECENT: usize = 10;

/// A console page's title (the page's one `h1`; the console's stylesheet styles every part by
/// its class).
pub(super) fn heading(_d: &Site, text: &str) -> Markup {
    html! { h1.console-title { (text) } }
}

/// A paragraph of a console page.
pub(super) fn paragraph(_d: &Site, text: &str) -> Markup {
    html! { p.paragraph { (text) } }
}

/// A section's heading.
pub(super) fn subheading(_d: &Site, text: &str) -> Markup {
    html! { h2.console-heading { (text) } }
}

pub(super) fn link(d: &Site, path: &str, text: &str) -> Markup {
    html! { a.link href=(url(d, path).as_str()) { (text) } }
}

/// A page of the console that says one thing, with `status`.
pub(super) fn message(
    d: &Site,
    staff: &Staff,
    status: StatusCode,
    title: &str,
    body: Markup,
) -> Response {
    let mut res = staff_page(d, staff, title, html! { (heading(d, title)) (body) });
    *res.status_mut() = status;
    res
}

/// The answer to a send refused because the issue has problems: the list, as `check` gives it.
pub(super) fn not_sent_for_problems(
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

pub(super) fn not_found(d: &Site, staff: &Staff, what: &str) -> Response {
    message(
        d,
        staff,
        StatusCode::NOT_FOUND,
        "Not found",
        html! { (paragraph(d, what)) p { (link(d, "admin/", "Back to the dashboard")) } },
    )
}

pub(super) fn issue_id(raw: &str) -> Option<IssueId> {
    raw.parse().ok()
}

/// A time as the staff read it: in the schedule's time zone when there is one, else UTC.
pub(super) fn local_time(d: &Site, t: DateTime<Utc>) -> String {
    match Plan::new(&d.app.config.schedule) {
        Some(p) => {
            let tz = p.timezone();
            let local = t.with_timezone(&tz);
            format!("{} ({})", local.format("%a %-d %b %Y, %H:%M %Z"), tz.name())
        }
        None => t.format("%a %-d %b %Y, %H:%M UTC").to_string(),
    }
}

pub(super) fn local_ms(d: &Site, ms: Option<i64>) -> String {
    ms.and_then(DateTime::from_timestamp_millis)
        .map(|t| local_time(d, t))
        .unwrap_or_default()
}

pub(super) fn problem_list(_d: &Site, problems: &[Problem]) -> Markup {
    html! {
        ul.list {
            @for p in problems { li.reply { code.code { (p.to_string()) } } }
        }
    }
}

/// A table that scrolls inside its own box on a narrow screen.
/// A table in a box that scrolls sideways when the screen is narrow; the box is a labelled
/// region that takes the keyboard's focus, so it can be scrolled without a mouse.
pub(super) fn table(_d: &Site, label: &str, head: &[&str], rows: Markup) -> Markup {
    html! {
        div.console-scroll role="region" aria-label=(label) tabindex="0" {
            table.console-table {
                thead { tr { @for h in head { th.console-th { (h) } } } }
                tbody { (rows) }
            }
        }
    }
}

pub(super) fn cell(_d: &Site, content: impl maud::Render) -> Markup {
    html! { td.console-td { (content) } }
}

/// The counts cells of a campaign; live (`data-count`) when it is running.
pub(super) fn count_cells(_d: &Site, counts: &Counts) -> Markup {
    html! {
        @for s in DeliveryState::ALL {
            td.console-td data-count=(s.as_str()) { (counts.get(s)) }
        }
        td.console-td data-count="total" { (counts.total()) }
    }
}

pub(super) fn count_head() -> Vec<&'static str> {
    let mut h: Vec<&str> = DeliveryState::ALL.iter().map(|s| s.as_str()).collect();
    h.push("total");
    h
}

pub(super) fn live_script(d: &Site) -> Markup {
    html! { script src=(url(d, "admin/live.js").as_str()) {} }
}

pub(super) fn field<'a, const L: usize>(form: &'a StaffForm<L>, name: &str) -> Option<&'a str> {
    form.fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(super) fn back_to_issue(d: &Site, id: IssueId) -> Markup {
    html! { p.paragraph { (link(d, &format!("admin/issues/{id}"), &format!("Back to issue {id}"))) } }
}

/// Preformatted text (a text part, headers, a report) in a box that may scroll: a labelled
/// region that takes the keyboard's focus.
pub(super) fn preformatted(_d: &Site, label: &str, text: &str) -> Markup {
    html! { pre.console-pre role="region" aria-label=(label) tabindex="0" { (text) } }
}
