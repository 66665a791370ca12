//! The activity log (`/admin/activity/`): who did what in the console and when, newest first,
//! a page at a time.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::super::admin::{console_page, Section, Staff};
use super::super::error::PageError;
use super::super::site::Shared;
use super::parts::{cell, heading, link, local_ms, paragraph, table};
use crate::ledger::Action;

/// How many entries a page shows.
const PAGE: u32 = 50;

#[derive(Debug, Deserialize)]
pub(super) struct Older {
    /// Show the entries older than this one.
    before: Option<i64>,
}

/// What an action is called on the page.
fn said(a: Action) -> &'static str {
    match a {
        Action::SignIn => "signed in",
        Action::TestSend => "sent a test of",
        Action::SendNow => "sent",
        Action::Hold => "held the campaign of",
        Action::Release => "released the campaign of",
        Action::FetchFeeds => "fetched the feeds",
        Action::AddReader => "added",
        Action::UnsubscribeReader => "unsubscribed",
        Action::ResendConfirmation => "re-sent the confirmation to",
        Action::ForgetReader => "forgot",
        Action::Import => "imported",
        Action::SetLanguage => "changed the language of",
    }
}

pub(super) async fn activity_page(
    State(d): Shared,
    staff: Staff,
    Query(older): Query<Older>,
) -> Result<Response, PageError> {
    let rows = d
        .ledger
        .with(move |l| l.activity(older.before, PAGE + 1))
        .await?;
    let more = rows.len() > PAGE as usize;
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let body = html! {
        (heading(&d, "Activity"))
        @if rows.is_empty() {
            (paragraph(&d, "Nothing yet: sign-ins, test sends, sends, holds, releases and changes to readers are listed here."))
        } @else {
            (table(&d, "Activity", &["when", "who", "did", "to", "detail"], html! {
                @for r in rows {
                    tr {
                        (cell(&d, local_ms(&d, Some(r.at))))
                        (cell(&d, &r.staff))
                        (cell(&d, said(r.action)))
                        (cell(&d, &r.subject))
                        (cell(&d, &r.detail))
                    }
                }
            }))
            @if let (true, Some(last)) = (more, rows.last()) {
                p.paragraph { (link(&d, &format!("admin/activity/?before={}", last.id), "Older entries")) }
            }
        }
    };
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Activity),
        "Activity",
        body,
    ))
}
