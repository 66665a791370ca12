//! The feeds as the console sees them: an issue collected from each feed's last fetched copy
//! (never fetched on a page load), the cache's state of every feed, and "Fetch feeds now"
//! (`POST /admin/feeds/fetch`), which fetches every feed once into the cache.

use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};

use super::super::admin::{Staff, StaffForm};
use super::super::error::PageError;
use super::super::site::{Shared, Site};
use super::super::ui::{see_other, url};
use super::parts::{cell, field, issue_id, local_ms, paragraph, subheading, table};
use crate::error::Problems;
use crate::feed::{self, FeedStatus};
use crate::issue::{Issue, IssueId};
use crate::lang::Lang;
use crate::ledger::Action;

/// Issue `id` as the console shows it: its folder and each feed's cached copy, read on a
/// blocking thread; and the cache's state of every feed.
pub(super) async fn cached_issue(
    d: &Site,
    id: IssueId,
) -> Result<(Result<Issue, Problems>, Vec<FeedStatus>), PageError> {
    let app = d.app.clone();
    tokio::task::spawn_blocking(move || app.collect_issue_cached(id))
        .await
        .map_err(|e| PageError::Internal(anyhow::anyhow!("collecting issue {id}: {e}")))
}

/// [`cached_issue`] in every configured language (the default first).
#[allow(clippy::type_complexity)]
pub(super) async fn cached_editions(
    d: &Site,
    id: IssueId,
) -> Result<(Result<Vec<(Lang, Issue)>, Problems>, Vec<FeedStatus>), PageError> {
    let app = d.app.clone();
    tokio::task::spawn_blocking(move || app.collect_editions_cached(id))
        .await
        .map_err(|e| PageError::Internal(anyhow::anyhow!("collecting issue {id}: {e}")))
}

/// The cache's state of every feed, read on a blocking thread.
pub(super) async fn statuses(d: &Site) -> Result<Vec<FeedStatus>, PageError> {
    let app = d.app.clone();
    tokio::task::spawn_blocking(move || {
        feed::statuses(&app.config.content, &app.data_dir().join("feeds"))
    })
    .await
    .map_err(|e| PageError::Internal(anyhow::anyhow!("reading the feed cache: {e}")))
}

/// The "Feeds" section: when each feed was last fetched and how its last fetch went, and the
/// "Fetch feeds now" button, which comes back to `back` (`None`: the dashboard). Empty when no
/// feed is configured.
pub(super) fn feeds_section(
    d: &Site,
    staff: &Staff,
    statuses: &[FeedStatus],
    back: Option<IssueId>,
) -> Markup {
    if statuses.is_empty() {
        return html! {};
    }
    html! {
        (subheading(d, "Feeds"))
        (paragraph(d, "Pages show each feed as it was last fetched: loading a page never fetches a feed. The send (scheduled or \"Send now\") and test sends fetch every feed again."))
        (table(d, "Feeds", &["feed", "last fetched", "last fetch"], html! {
            @for s in statuses {
                tr data-feed=(s.url.as_str()) {
                    (cell(d, html! {
                        @if let Some(label) = &s.label { (label) br; }
                        (s.url.as_str())
                    }))
                    @match (s.cached, s.fetched_at) {
                        (_, Some(at)) => { td.console-td data-fetched=(at) { (local_ms(d, Some(at))) } }
                        (true, None) => { (cell(d, "fetched (time not noted)")) }
                        (false, None) => { (cell(d, "not fetched yet: press Fetch feeds now")) }
                    }
                    @match &s.failed {
                        Some((at, why)) => {
                            td.console-td.form-error data-feed-failed="" {
                                "failed " (local_ms(d, Some(*at))) ": " (why)
                            }
                        }
                        None => { (cell(d, if s.cached { "ok" } else { "" })) }
                    }
                }
            }
        }))
        form method="post" action=(url(d, "admin/feeds/fetch").as_str()) {
            (staff.csrf_field(d))
            @if let Some(id) = back {
                input type="hidden" name="back" value=(id.to_string());
            }
            p { button.page-button.page-button.page-button type="submit" { "Fetch feeds now" } }
        }
    }
}

/// "Fetch feeds now": every configured feed fetched once into the cache; back (303) to the
/// page the button was on, which shows the outcome per feed.
pub(super) async fn fetch_now(State(d): Shared, form: StaffForm) -> Result<Response, PageError> {
    let staff = &form.staff;
    let back = match field(&form, "back").and_then(issue_id) {
        Some(id) => url(&d, &format!("admin/issues/{id}")),
        None => url(&d, "admin/"),
    };
    let content = &d.app.config.content;
    let cache = d.app.data_dir().join("feeds");
    let summary = match feed::fetch_all(content, &cache, d.app.clock.as_ref()).await {
        Ok(results) => {
            let failed: Vec<String> = results
                .iter()
                .filter_map(|r| r.as_ref().err().map(ToString::to_string))
                .collect();
            let mut s = format!(
                "{} of {} feed(s) fetched",
                results.len() - failed.len(),
                results.len()
            );
            if !failed.is_empty() {
                s.push_str(&format!("; failed: {}", failed.join("; ")));
            }
            s
        }
        Err(e) => format!("not fetched: {e}"),
    };
    tracing::info!(staff = %d.key.tag(staff.address.as_ref()), "feeds fetched from the console: {summary}");
    staff
        .record(&d, Action::FetchFeeds, "feeds".into(), summary)
        .await;
    Ok(see_other(&back))
}
