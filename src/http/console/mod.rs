//! The staff console: the dashboard, an issue's preview with test sends and "Send now", the
//! feeds' cache and "Fetch feeds now", a campaign's page and its CSV, the subscribers (search,
//! a reader's page, add, unsubscribe, re-send the confirmation, forget, change the language,
//! import a CSV file), and
//! the live counts behind the dashboard's small script.
//!
//! Every page takes a [`Staff`](super::admin::Staff) (anonymous requests never get here) and
//! every POST a [`StaffForm`](super::admin::StaffForm) (session CSRF token and `Origin`
//! checked); pages are built by [`staff_page`](super::admin::staff_page), server-rendered with
//! maud, so every word from a file, the list or a reply is escaped. Pages work without
//! JavaScript: the one script (`/admin/live.js`, allowed by the staff pages' own policy) only
//! refreshes a running campaign's counts every 2 s (`parts::POLL_MS`). One file per page, over
//! `parts`, the pieces they share.

mod activity;
mod bounces;
mod campaign;
mod campaigns;
mod dashboard;
mod feeds;
mod import;
mod issue;
mod issues;
mod parts;
mod subscribers;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use super::site::Site;

/// The console's routes (added to the staff pages' router, which adds their headers).
pub(super) fn routes(r: Router<Arc<Site>>) -> Router<Arc<Site>> {
    r.route("/admin/", get(dashboard::dashboard))
        .route("/admin/live.js", get(dashboard::live_js))
        .route("/admin/issues/", get(issues::issues_page))
        .route("/admin/issues/{id}", get(issue::issue_page))
        .route("/admin/issues/{id}/test", post(issue::test_send))
        .route("/admin/issues/{id}/send", post(issue::send_now))
        .route("/admin/campaigns/", get(campaigns::campaigns_page))
        .route("/admin/campaigns/{id}", get(campaign::campaign_page))
        .route("/admin/campaigns/{id}/counts", get(dashboard::counts_json))
        .route("/admin/campaigns/{id}/hold", post(campaign::hold))
        .route("/admin/campaigns/{id}/release", post(campaign::release))
        .route("/admin/activity/", get(activity::activity_page))
        .route("/admin/feeds/fetch", post(feeds::fetch_now))
        .route("/admin/bounces/", get(bounces::bounces_page))
        .route("/admin/subscribers/", get(subscribers::list))
        .route("/admin/subscribers/export.csv", get(subscribers::export))
        .route(
            "/admin/subscribers/add",
            get(subscribers::add_page).post(subscribers::add),
        )
        .route("/admin/subscribers/{id}", get(subscribers::reader_page))
        .route(
            "/admin/subscribers/{id}/unsubscribe",
            post(subscribers::unsubscribe),
        )
        .route(
            "/admin/subscribers/{id}/confirmation",
            post(subscribers::resend_confirmation),
        )
        .route("/admin/subscribers/{id}/forget", post(subscribers::forget))
        .route(
            "/admin/subscribers/{id}/language",
            post(subscribers::set_language),
        )
}

/// The import's routes, which take a file: the router gives them
/// [`IMPORT_BODY_LIMIT`](super::site::IMPORT_BODY_LIMIT) instead of the site's body limit.
pub(super) fn upload_routes() -> Router<Arc<Site>> {
    Router::new()
        .route(
            "/admin/subscribers/import",
            get(import::import_page).post(import::preview),
        )
        .route("/admin/subscribers/import/apply", post(import::apply))
}
