//! The look of the HTTP side's pages: the page frame, headings and paragraphs in the
//! newsletter's styles, redirects, `no-store`, and the 404 and 500 pages.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::error::ErrorPage;
use super::site::{Shared, Site};

/// `public_url` joined with `path` (relative, like `admin/login`).
pub(super) fn url(d: &Site, path: &str) -> url::Url {
    d.app
        .config
        .server
        .public_url
        .join(path)
        .expect("public_url is a base URL")
}

/// A 303 to `location`.
pub(super) fn see_other(location: &url::Url) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.as_str().to_string())],
    )
        .into_response()
}

/// A page's heading.
pub(super) fn heading(d: &Site, text: &str) -> Markup {
    html! { h2 style=(d.app.templates.style("entry-title")) { (text) } }
}

/// A paragraph of a page.
pub(super) fn paragraph(d: &Site, text: &str) -> Markup {
    html! { p style=(d.app.templates.style("paragraph")) { (text) } }
}

/// The 404 page.
pub(super) fn not_found(d: &Site) -> Response {
    let body = html! {
        h2 style=(d.app.templates.style("entry-title")) { "Not found" }
        p style=(d.app.templates.style("paragraph")) {
            "There is nothing here. Sent issues are listed in the "
            a style=(d.app.templates.style("link"))
                href=(d.app.config.server.public_url.join("archive/").expect("base URL").as_str()) { "archive" }
            "."
        }
    };
    page(d, StatusCode::NOT_FOUND, "Not found", body)
}

/// The 500 page; `e` is logged with its chain.
pub(super) fn server_error(d: &Site, e: anyhow::Error) -> Response {
    tracing::error!(error.message = %e, "request failed: {e:#}");
    server_error_page(d)
}

/// The 500 page, for an error already logged.
fn server_error_page(d: &Site) -> Response {
    let body = html! {
        h2 style=(d.app.templates.style("entry-title")) { "Something went wrong" }
        p style=(d.app.templates.style("paragraph")) { "Please try again in a few minutes." }
    };
    page(d, StatusCode::INTERNAL_SERVER_ERROR, "Error", body)
}

/// `res` with `Cache-Control: no-store`.
pub(super) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A page in the newsletter's look: masthead, `body`, footer.
pub(super) fn page(d: &Site, status: StatusCode, title: &str, body: Markup) -> Response {
    let n = &d.app.config.newsletter;
    let html = crate::render::frame(
        d.app.render_context(),
        &format!("{title} \u{2013} {}", n.kicker),
        body,
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html.into_string(),
    )
        .into_response()
}

/// The error-page layer: a response a [`super::error::PageError`] made gets its page, with the
/// headers inner layers gave it (the staff pages' `no-store` and policy).
pub(super) async fn error_pages(State(d): Shared, res: Response) -> Response {
    let Some(kind) = res.extensions().get::<ErrorPage>().copied() else {
        return res;
    };
    let mut page = match kind {
        ErrorPage::NotFound => not_found(&d),
        ErrorPage::Internal => server_error_page(&d),
    };
    for (name, value) in res.headers() {
        if !page.headers().contains_key(name) {
            page.headers_mut().insert(name, value.clone());
        }
    }
    page
}
