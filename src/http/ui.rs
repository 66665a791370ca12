//! The look of the HTTP side's pages: the page frame, headings and paragraphs in the
//! newsletter's styles, redirects, `no-store`, and the 404 and 500 pages.
//!
//! A public page speaks its reader's language ([`Face`]): the one a `?lang=` parameter asks for
//! (the links between languages on every page, and the links in a reader's mail, carry it),
//! else the browser's `Accept-Language`; it links to itself in the other languages. The staff
//! pages ([`page`]) stay in the default language's frame, with English words.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::error::ErrorPage;
use super::site::{Shared, Site};
use crate::lang::Lang;
use crate::render::Context;

/// The language a public page answers in, and its own address (for the links to it in the
/// other languages).
#[derive(Clone, Debug)]
pub(super) struct Face {
    pub lang: Lang,
    /// The page's public URL without its query, for the links to it in the other languages;
    /// `None`: a page that offers no other language.
    pub here: Option<url::Url>,
    /// Whether the language came from `Accept-Language` (the answer then varies with it).
    negotiated: bool,
}

impl Face {
    /// The face of a request for `uri` with `headers`.
    pub fn of(d: &Site, uri: &Uri, headers: &HeaderMap) -> Face {
        let languages = &d.app.config.newsletter.languages;
        let asked = uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .and_then(|(_, v)| languages.matching(&v).cloned())
        });
        let public = &d.app.config.server.public_url;
        // The path is set on the public URL, never joined: no request path can make the
        // links point at another host (`//host`, `\\host`).
        let mut here = public.clone();
        here.set_path(&format!(
            "{}{}",
            public.path(),
            uri.path().trim_start_matches(['/', '\\'])
        ));
        let here = Some(here);
        match asked {
            Some(lang) => Face {
                lang,
                here,
                negotiated: false,
            },
            None => Face {
                lang: languages
                    .negotiate(
                        headers
                            .get(header::ACCEPT_LANGUAGE)
                            .and_then(|v| v.to_str().ok()),
                    )
                    .clone(),
                here,
                negotiated: true,
            },
        }
    }

    /// This face in `lang`, the language a form or a token names (one that is configured).
    pub fn speaking(self, lang: Lang) -> Face {
        Face {
            lang,
            negotiated: false,
            ..self
        }
    }

    /// This face without the links to the other languages: a page about one language (the
    /// language switch).
    pub fn alone(self) -> Face {
        Face { here: None, ..self }
    }

    /// The renderer's context in this face's language.
    pub fn ctx<'a>(&self, d: &'a Site) -> Context<'a> {
        d.app.render_context_in(&self.lang)
    }

    /// Message `id` of this face's catalogue.
    pub fn word(&self, d: &Site, id: &str) -> String {
        self.ctx(d).words.get(id)
    }
}

impl FromRequestParts<Arc<Site>> for Face {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Site>) -> Result<Face, Self::Rejection> {
        Ok(Face::of(d, &parts.uri, &parts.headers))
    }
}

/// A public page in `face`'s language: masthead with the links to the other languages, `body`,
/// footer; `title` is the page's own title, in that language.
pub(super) fn page_in(
    d: &Site,
    face: &Face,
    status: StatusCode,
    title: &str,
    body: Markup,
) -> Response {
    let ctx = face.ctx(d);
    let html = crate::render::frame_with(
        ctx,
        &ctx.words.with_text("page-title", "title", title),
        face.here.as_ref(),
        body,
    );
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html.into_string(),
    )
        .into_response();
    res.headers_mut().insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_str(face.lang.as_str()).expect("a language tag is a header value"),
    );
    if face.negotiated {
        res.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    }
    res
}

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

/// A link to the archive in `face`'s language ("Past issues are in the archive").
pub(super) fn archive_link(d: &Site, face: &Face) -> Markup {
    let mut url = url(d, "archive/");
    if !d.app.templates.editions()[0].lang.eq(&face.lang) {
        url.query_pairs_mut()
            .append_pair("lang", face.lang.as_str());
    }
    html! {
        p style=(d.app.templates.style("paragraph")) {
            a style=(d.app.templates.style("link")) href=(url.as_str()) { (face.word(d, "see-archive")) }
        }
    }
}

/// The 404 page, in `face`'s language.
pub(super) fn not_found_in(d: &Site, face: &Face) -> Response {
    let body = html! {
        (heading(d, &face.word(d, "not-found-title")))
        (paragraph(d, &face.word(d, "not-found-text")))
        (archive_link(d, face))
    };
    page_in(
        d,
        face,
        StatusCode::NOT_FOUND,
        &face.word(d, "not-found-title"),
        body,
    )
}

/// The 404 page in the default language (where no request is at hand).
pub(super) fn not_found(d: &Site) -> Response {
    let face = Face::of(d, &Uri::from_static("/"), &HeaderMap::new());
    not_found_in(d, &face)
}

/// The 500 page; `e` is logged with its chain.
pub(super) fn server_error(d: &Site, e: anyhow::Error) -> Response {
    tracing::error!(error.message = %e, "request failed: {e:#}");
    let face = Face::of(d, &Uri::from_static("/"), &HeaderMap::new());
    server_error_page(d, &face)
}

/// The 500 page, for an error already logged.
fn server_error_page(d: &Site, face: &Face) -> Response {
    let body = html! {
        (heading(d, &face.word(d, "error-heading")))
        (paragraph(d, &face.word(d, "error-text")))
    };
    page_in(
        d,
        face,
        StatusCode::INTERNAL_SERVER_ERROR,
        &face.word(d, "error-title"),
        body,
    )
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

/// The error-page layer: a response a [`super::error::PageError`] made gets its page, in the
/// request's language, with the headers inner layers gave it (the staff pages' `no-store` and
/// policy).
pub(super) async fn error_pages(
    State(d): Shared,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let face = Face::of(&d, req.uri(), req.headers());
    let res = next.run(req).await;
    let Some(kind) = res.extensions().get::<ErrorPage>().copied() else {
        return res;
    };
    let mut page = match kind {
        ErrorPage::NotFound => not_found_in(&d, &face),
        ErrorPage::Internal => server_error_page(&d, &face),
    };
    for (name, value) in res.headers() {
        if !page.headers().contains_key(name) {
            page.headers_mut().insert(name, value.clone());
        }
    }
    page
}
