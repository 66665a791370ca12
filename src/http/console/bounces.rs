//! The bounces page (`/admin/bounces/`): every hard and soft bounce, complaint and policy
//! refusal that came back, newest first, paged, each with its diagnostic, its campaign and a
//! link to the reader's page (by the reader's row id, never the address).

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;

use super::super::admin::{console_page, Section, Staff};
use super::super::error::PageError;
use super::super::site::Shared;
use super::parts::{cell, heading, link, local_ms, paragraph, table};
use crate::ledger::Evidence;

/// How many bounces a page lists.
pub(super) const PER_PAGE: u32 = 50;

#[derive(serde::Deserialize)]
pub(super) struct Paging {
    #[serde(default)]
    page: Option<u32>,
}

/// Which page to show (1-based) and how many pages `total` rows make.
pub(super) fn pages(asked: Option<u32>, total: u64) -> (u32, u32) {
    let last = total.div_ceil(PER_PAGE as u64).max(1).min(u32::MAX as u64) as u32;
    (asked.unwrap_or(1).clamp(1, last), last)
}

pub(super) async fn bounces_page(
    State(d): Shared,
    staff: Staff,
    Query(paging): Query<Paging>,
) -> Result<Response, PageError> {
    let asked = paging.page;
    let (rows, total, page, last) = d
        .ledger
        .with(move |l| {
            let (_, total) = l.bounce_list(0, 0)?;
            let (page, last) = pages(asked, total);
            let (rows, total) = l.bounce_list((page - 1) * PER_PAGE, PER_PAGE)?;
            Ok((rows, total, page, last))
        })
        .await?;
    let body = html! {
        p.console-note { (link(&d, "admin/", "Dashboard")) " / bounces" }
        (heading(&d, "Bounces and complaints"))
        @if rows.is_empty() {
            (paragraph(&d, "Nothing came back yet: no bounce and no complaint."))
        } @else {
            p.console-note {
                (total) " in all, newest first"
                @if last > 1 { "; page " (page) " of " (last) }
                ". Hard bounces and complaints suppress the address; soft bounces and policy refusals (blocked) do not."
            }
            (table(&d, "Bounces and complaints", &["when", "kind", "reader", "campaign", "status", "diagnostic"], html! {
                @for b in &rows {
                    tr {
                        (cell(&d, local_ms(&d, Some(b.at))))
                        td.console-td data-kind=(b.kind.as_str()) {
                            (b.kind.as_str())
                            @if b.evidence == Some(Evidence::Unverified) { " (unverified: suppressed nobody)" }
                        }
                        @match b.subscriber {
                            Some(id) => { (cell(&d, link(&d, &format!("admin/subscribers/{id}"), &b.address))) }
                            None => { (cell(&d, &b.address)) }
                        }
                        (cell(&d, link(&d, &format!("admin/campaigns/{}", b.issue), &b.issue)))
                        (cell(&d, b.status.as_deref().unwrap_or("")))
                        (cell(&d, b.diagnostic.as_deref().unwrap_or("")))
                    }
                }
            }))
            @if last > 1 {
                nav.console-pager aria-label="Pages of bounces" {
                    p.paragraph {
                        @if page > 1 { (link(&d, &format!("admin/bounces/?page={}", page - 1), "Newer")) " " }
                        "Page " (page) " of " (last)
                        @if page < last { " " (link(&d, &format!("admin/bounces/?page={}", page + 1), "Older")) }
                    }
                }
            }
        }
    };
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Bounces),
        "Bounces",
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_stay_within_what_there_is() {
        assert_eq!(pages(None, 0), (1, 1));
        assert_eq!(pages(Some(0), 120), (1, 3));
        assert_eq!(pages(Some(3), 120), (3, 3));
        assert_eq!(pages(Some(9), 100), (2, 2));
        assert_eq!(pages(Some(2), 101), (2, 3));
    }
}
