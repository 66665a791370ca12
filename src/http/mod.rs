//! The daemon's HTTP side: health, metrics, the web archive, one-click unsubscribe, sign-up and
//! staff pages, admin test sends.
//!
//! Routes: `GET /healthz`, `GET /metrics`, `GET /archive/`, `/archive/{id}` and
//! `/archive/{id}/{lang}` (another language's edition),
//! `GET /preview/{token}` (a test copy's signed "View in browser" link),
//! `GET` and `POST /unsubscribe/{token}`, the sign-up pages ([`join`]), the staff pages under
//! `/admin/` ([`admin`]: sign-in by emailed link, sessions; `console`: the dashboard, issue,
//! and campaign pages), `POST /admin/test-send` when an admin token is configured, and
//! `POST /webhooks/bounce` ([`webhooks`]) when a bounce webhook token is. Pages share the
//! newsletter's stylesheet and go through maud's escaping.
//!
//! Unsubscribing answers the same page, with the same status, whatever the token: a tampered
//! token changes nothing and cannot be told apart from a genuine token of an address that is not
//! on the list. A `GET` never changes anything (link scanners follow links); only a `POST` does.
//! Request bodies are limited to [`BODY_LIMIT`] bytes (413 beyond; the bounce webhook takes
//! [`webhooks::WEBHOOK_BODY_LIMIT`], the console's CSV import [`site::IMPORT_BODY_LIMIT`]). Tokens, addresses in URLs
//! and the admin token are never logged.
//!
//! [`serve`] holds no slow client for long: a request header must arrive within
//! `[server] header_timeout` (also the idle limit of a keep-alive connection), the whole request
//! within `[server] request_timeout` (408 beyond), at most [`MAX_CONNECTIONS`] are served at
//! once and at most `[server] connections_per_client` for one client, and a stop waits
//! [`STOP_GRACE`] for requests in progress, then drops their connections. Wrong bearer tokens
//! are throttled per client. The limits are [`door`]'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use maud::html;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::limit::RequestBodyLimitLayer;

mod admin;
mod console;
pub mod door;
mod error;
mod join;
mod multipart;
mod site;
mod ui;
mod webhooks;

pub use admin::{staff_page, Staff, StaffForm};
pub use door::MAX_CONNECTIONS;
pub use site::{Admin, Join, Launch, Site, BODY_LIMIT};

use error::{axum_json, json_error, PageError};
use site::{client_of, Shared};
use ui::{no_store, page_in, Face};

use crate::address::AddressKey;
use crate::feed::FetchPolicy;
use crate::issue::IssueId;
use crate::ledger::{Reason, State as DeliveryState};
use crate::token::{Purpose, TokenError};

/// How long a stop lets HTTP requests in progress finish before their connections are dropped.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// The router of every endpoint, over `site`.
pub fn router(site: Arc<Site>) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/archive", get(archive_index))
        .route("/archive/", get(archive_index))
        .route("/archive/{id}", get(archive_issue))
        .route("/archive/{id}/{lang}", get(archive_edition))
        .route("/preview/{token}", get(preview))
        .route("/preview/{token}/{lang}", get(preview_in))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            "/language/{lang}/{token}",
            get(switch_page).post(switch_language),
        );
    // No admin token configured: the endpoint does not exist (404), rather than refusing
    // every caller.
    if site.app.config.server.admin_token.is_some() {
        r = r.route("/admin/test-send", post(test_send));
    }
    let webhooks = webhooks::routes(&site);
    // The staff pages (sign-in and the console) under their own headers.
    let staff = console::routes(admin::routes(Router::new()))
        .layer(axum::middleware::map_response(admin::admin_layer));
    // The console's import takes a file: a limit of its own, and the staff headers.
    let uploads = console::upload_routes()
        .layer(RequestBodyLimitLayer::new(site::IMPORT_BODY_LIMIT))
        .layer(axum::middleware::map_response(admin::admin_layer));
    join::routes(r)
        .merge(staff)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .merge(uploads)
        .merge(webhooks)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            site.clone(),
            ui::error_pages,
        ))
        .layer(axum::middleware::map_response(common_headers))
        .with_state(site)
}

/// Serves `router` on `listener` until `stop` is cancelled, then gives requests in progress
/// [`STOP_GRACE`] to end and drops the connections still open. Returns how many were dropped.
///
/// Each connection is served by hyper's HTTP/1 connection (axum's `serve` offers no header
/// timeout): one that has not sent a whole request header within `header_timeout`, or that
/// waits idle longer than that for its next request, is closed; a request whose body has not
/// arrived within `request_timeout` of the connection's waiting for it gets 408 and the close
/// ([`door::Conn`]). At most [`MAX_CONNECTIONS`] are served at once; beyond that, new ones are
/// not accepted and wait in the listen backlog until a connection ends (at the latest,
/// `request_timeout` after it began waiting for its request). A client (a TCP peer that is not
/// a trusted proxy) holding `per_client` connections has further ones answered 429 and closed
/// at once, so one address never holds more than that many slots.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: door::Limits,
    stop: CancellationToken,
) -> Stopped {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let limits = Arc::new(limits);
    let clients = door::Clients::default();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let conns = TaskTracker::new();
    let drop_now = CancellationToken::new();
    loop {
        let (slot, accepted) = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            a = async {
                let slot = slots.clone().acquire_owned().await.expect("never closed");
                (slot, listener.accept().await)
            } => a,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            // Out of file descriptors, most likely: wait for connections to end.
            Err(e) => {
                tracing::warn!(error.message = %e, "cannot accept an HTTP connection: {e}");
                drop(slot);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        // A trusted proxy's clients are counted per request ([`door::Conn::answer`]).
        let seat = if limits.trusted_proxies.contains(&peer.ip()) {
            None
        } else {
            match clients.take(peer.ip(), limits.per_client) {
                Some(seat) => Some(seat),
                None => {
                    tracing::debug!(peer = %peer.ip(), "connection refused: the client's connection cap is reached");
                    door::refuse(stream);
                    continue;
                }
            }
        };
        let door = Arc::new(door::Conn::new(peer, limits.clone(), clients.clone()));
        let router = router.clone();
        let service = tower::service_fn(move |req: axum::http::Request<hyper::body::Incoming>| {
            let (door, router) = (door.clone(), router.clone());
            async move { Ok::<_, std::convert::Infallible>(door.answer(router, req).await) }
        });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let (stop, drop_now) = (stop.clone(), drop_now.clone());
        conns.spawn(async move {
            let _held = (slot, seat);
            let mut conn = std::pin::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    // Closes an idle connection now; one in a request closes after its answer.
                    conn.as_mut().graceful_shutdown();
                    tokio::select! {
                        r = conn.as_mut() => r,
                        _ = drop_now.cancelled() => return,
                    }
                }
            };
            if let Err(e) = done {
                tracing::debug!(error.message = %e, "HTTP connection ended: {e}");
            }
        });
    }
    drop(listener);
    conns.close();
    if tokio::time::timeout(STOP_GRACE, conns.wait()).await.is_ok() {
        return Stopped { dropped: 0 };
    }
    let dropped = conns.len();
    drop_now.cancel();
    conns.wait().await;
    Stopped { dropped }
}

/// How [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Connections still open [`STOP_GRACE`] after the stop, and dropped then (a request
    /// unfinished, or a client that never finished sending one).
    pub dropped: usize,
}

/// Errors of one incoming connection (it went away before it was accepted), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Headers on every answer: no sniffing, no framing (the unsubscribe button), no Referer
/// (unsubscribe URLs hold tokens), and a policy that allows only inline styles and our own
/// forms.
async fn common_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        // The staff pages set a policy of their own (`admin::ADMIN_CSP`).
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
        .into_response()
}

/// OpenMetrics text; deliveries by state are read from the ledger at each scrape.
async fn metrics(State(d): Shared) -> Response {
    let now = d.app.clock.now_ms();
    let counts = d
        .ledger
        .with(move |l| {
            let mut total = [0u64; DeliveryState::ALL.len()];
            let (mut canary, mut held, mut unaccepted) = (0, 0, 0);
            for c in l.campaigns()? {
                if !c.finished && c.hold_reason == Some(crate::ledger::HoldReason::CanaryUnaccepted)
                {
                    unaccepted += 1;
                }
                let n = l.counts(c.id)?;
                for (i, s) in DeliveryState::ALL.iter().enumerate() {
                    total[i] += n.get(*s);
                }
                match c.state_word(now) {
                    "canary" => canary += 1,
                    "held" => held += 1,
                    _ => {}
                }
            }
            let problems = l.latest_preflight()?.map_or(0, |p| p.problems);
            Ok((total, canary, held, problems, unaccepted))
        })
        .await;
    match counts {
        Ok((total, canary, held, problems, unaccepted)) => {
            d.metrics.set_canary_unaccepted(unaccepted);
            d.metrics.set_deliveries(
                DeliveryState::ALL
                    .iter()
                    .zip(total)
                    .map(|(state, n)| (*state, n)),
            );
            d.metrics.set_waiting(canary, held, problems);
        }
        Err(e) => tracing::error!(error.message = %e, "metrics: cannot read the ledger: {e:#}"),
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        d.metrics.render(),
    )
        .into_response()
}

/// The issues that were sent (or are being sent), newest first, linking to their web versions.
async fn archive_index(State(d): Shared, face: Face) -> Result<Response, PageError> {
    let campaigns = d
        .ledger
        .with(|l| {
            let mut out = Vec::new();
            for c in l.campaigns()? {
                let editions = l.campaign_subjects(c.id)?;
                out.push((c, editions));
            }
            Ok(out)
        })
        .await?;
    let t = &d.app.templates;
    // Each issue by its subject in the page's language when it was sent in it, then its other
    // editions by theirs, each link saying its language.
    let body = html! {
        h2 style=(t.style("entry-title")) { (face.word(&d, "archive-title")) }
        @if campaigns.is_empty() {
            p style=(t.style("paragraph")) { (face.word(&d, "archive-empty")) }
        } @else {
            ul style=(t.style("list")) {
                @for (c, editions) in &campaigns {
                    @let editions = archive_editions(&d, c.issue, editions, &face.lang);
                    li {
                        @for (i, (lang, subject, url)) in editions.iter().enumerate() {
                            @if i == 1 { " \u{b7} " } @else if i > 1 { " | " }
                            a style=(t.style("link")) href=(url.as_str()) lang=(lang) hreflang=(lang) { (subject) }
                            @if i == 0 { " (" (c.issue) ")" }
                        }
                    }
                }
            }
        }
    };
    Ok(page_in(
        &d,
        &face,
        StatusCode::OK,
        &face.word(&d, "archive-title"),
        body,
    ))
}

/// The editions of issue `id` for the archive index (`stored`: each language's tag, `None`
/// for the default, and subject), as language, subject and web address: the one in `first`
/// first when there is one, the rest in the order they were stored. Languages no longer
/// configured are left out.
fn archive_editions(
    d: &Site,
    id: IssueId,
    stored: &[(Option<String>, String)],
    first: &crate::lang::Lang,
) -> Vec<(crate::lang::Lang, String, url::Url)> {
    let languages = &d.app.config.newsletter.languages;
    let mut out: Vec<_> = stored
        .iter()
        .filter_map(|(tag, subject)| {
            let lang = match tag {
                None => languages.default_lang(),
                Some(t) => languages.find(t)?,
            };
            let path = if lang == languages.default_lang() {
                format!("archive/{id}")
            } else {
                format!("archive/{id}/{lang}")
            };
            Some((lang.clone(), subject.clone(), ui::url(d, &path)))
        })
        .collect();
    if let Some(at) = out.iter().position(|(l, _, _)| l == first) {
        let e = out.remove(at);
        out.insert(0, e);
    }
    out
}

/// The web version of a sent issue, as its campaign sends it (stored when it started, or last
/// revised): the newsletter's layout without personal data. Issues that were never sent are
/// not published (they may be drafts): their test copies link to a signed preview instead.
async fn archive_issue(
    State(d): Shared,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let Some(id) = id.ok().and_then(|Path(s)| s.parse::<IssueId>().ok()) else {
        return Err(PageError::NotFound);
    };
    archive_web(d, id, None).await
}

/// The web version of a sent issue in another language than the default (`/archive/ID/es`),
/// as its campaign stored it; 404 for a language the campaign has no edition of.
async fn archive_edition(
    State(d): Shared,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, PageError> {
    let Ok(Path((id, tag))) = path else {
        return Err(PageError::NotFound);
    };
    let Ok(id) = id.parse::<IssueId>() else {
        return Err(PageError::NotFound);
    };
    let languages = &d.app.config.newsletter.languages;
    let Some(lang) = languages.find(&tag) else {
        return Err(PageError::NotFound);
    };
    let lang = (lang != languages.default_lang()).then(|| lang.as_str().to_string());
    archive_web(d, id, lang).await
}

/// The stored web version of issue `id` in `lang` (`None`: the default language).
async fn archive_web(
    d: Arc<Site>,
    id: IssueId,
    lang: Option<String>,
) -> Result<Response, PageError> {
    let other = lang.is_some();
    let stored = d
        .ledger
        .with(move |l| match l.campaign(id)? {
            Some(c) => Ok(Some(l.campaign_web(c.id, lang.as_deref())?)),
            None => Ok(None),
        })
        .await;
    let web = stored?.ok_or(PageError::NotFound)?;
    // Another language's edition is the stored one or nothing: no older file, no folder.
    if other && web.is_none() {
        return Err(PageError::NotFound);
    }
    let app = d.app.clone();
    let rendered = tokio::task::spawn_blocking(move || match web {
        Some(html) => Ok(html),
        // A campaign started by an older brief: the file it saved, else the folder.
        None => match std::fs::read_to_string(app.legacy_web_version_path(id)) {
            Ok(html) => Ok(html),
            Err(_) => app
                .load_issue(id)
                .map(|issue| crate::render::render_web(&issue, app.render_context())),
        },
    })
    .await;
    match rendered.map_err(|e| anyhow::anyhow!("render task failed: {e}"))? {
        Ok(html) => {
            Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
        }
        Err(problems) => {
            tracing::warn!(issue = %id, "the web version cannot be rendered: {problems}");
            Err(PageError::NotFound)
        }
    }
}

/// A test copy's "View in browser" link: the web version of the issue as its folder renders it
/// now, sent or not, for whoever holds a genuine link that has not expired (see
/// `App::preview_url`). It needs no session, since the link is clicked from webmail, where a
/// `SameSite=Strict` cookie does not ride along. An expired link says so and points at the
/// console and the archive: a test copy's link never ends in a bare 404.
async fn preview(
    State(d): Shared,
    face: Face,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    preview_page(d, face, token, None).await
}

/// The preview in another language than the default (the "View in browser" link of a test
/// copy in that language, and the preview's links between languages).
async fn preview_in(
    State(d): Shared,
    face: Face,
    Path((token, lang)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let Some(lang) = d.app.config.newsletter.languages.find(&lang).cloned() else {
        return Ok(private(ui::not_found_in(&d, &face)));
    };
    preview_page(d, face.speaking(lang.clone()), token, Some(lang)).await
}

/// A preview of `token`'s issue in `lang` (`None`: the default language).
async fn preview_page(
    d: Arc<Site>,
    face: Face,
    token: String,
    lang: Option<crate::lang::Lang>,
) -> Result<Response, PageError> {
    let now = d.app.clock.now().timestamp();
    let id = match d.key.open(Purpose::Preview, &token, now) {
        Ok(fields) => fields.first().and_then(|f| f.parse::<IssueId>().ok()),
        Err(TokenError::Expired) => {
            let t = &d.app.templates;
            let days = crate::app::PREVIEW_TTL.as_secs() / 86_400;
            let ctx = face.ctx(&d);
            let body = html! {
                h2.entry-title style=(t.style("entry-title")) { (face.word(&d, "preview-expired-heading")) }
                p.paragraph style=(t.style("paragraph")) {
                    (ctx.words.with("preview-expired-text", &[("days", days.into())]))
                }
                p.paragraph style=(t.style("paragraph")) {
                    a style=(t.style("link")) href=(ui::url(&d, "admin/").as_str()) { (face.word(&d, "open-console")) }
                }
                (ui::archive_link(&d, &face))
            };
            let title = face.word(&d, "preview-expired-title");
            return Ok(private(page_in(&d, &face, StatusCode::GONE, &title, body)));
        }
        Err(TokenError::Invalid) => None,
    };
    let Some(id) = id else {
        return Ok(private(ui::not_found_in(&d, &face)));
    };
    let app = d.app.clone();
    let base = ui::url(&d, &format!("preview/{token}"));
    let rendered = tokio::task::spawn_blocking(move || {
        let languages = &app.config.newsletter.languages;
        let lang = lang.unwrap_or_else(|| languages.default_lang().clone());
        crate::content::load_issue_in(&app.config.content.dir, id, &lang, languages).map(|issue| {
            let mut ctx = app.render_context_in(&lang);
            // Its links between languages lead to the other previews.
            ctx.web_version = Some(&base);
            crate::render::render_web(&issue, ctx)
        })
    })
    .await;
    let rendered = rendered.map_err(|e| anyhow::anyhow!("render task failed: {e}"))?;
    Ok(match rendered {
        Ok(html) => {
            private(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
        }
        Err(problems) => {
            // The folder was changed since the test send and does not render now.
            let t = &d.app.templates;
            let words = face.ctx(&d).words;
            let body = html! {
                h2.entry-title style=(t.style("entry-title")) { (words.with_text("preview-problems-heading", "issue", &id.to_string())) }
                p.paragraph style=(t.style("paragraph")) {
                    (words.with("preview-problems-text", &[("count", problems.0.len().into())]))
                }
                p.paragraph style=(t.style("paragraph")) {
                    a style=(t.style("link")) href=(ui::url(&d, &format!("admin/issues/{id}")).as_str()) { (words.get("open-console")) }
                }
            };
            let title = words.get("preview-problems-title");
            private(page_in(&d, &face, StatusCode::CONFLICT, &title, body))
        }
    })
}

/// A page only its link's holder should see: never cached, never indexed.
fn private(res: Response) -> Response {
    let mut res = no_store(res);
    res.headers_mut().insert(
        HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex, nofollow"),
    );
    res
}

/// The confirmation page. It is the same for every token and changes nothing.
/// The confirmation page. It is the same for every token and changes nothing; it speaks the
/// language the link in the reader's mail names (`?lang=`), else the browser's.
async fn unsubscribe_page(State(d): Shared, face: Face) -> Response {
    let t = &d.app.templates;
    let body = html! {
        h2.entry-title style=(t.style("entry-title")) { (face.word(&d, "unsubscribe-heading")) }
        p.paragraph style=(t.style("paragraph")) { (face.word(&d, "unsubscribe-lead")) }
        // No action: the form posts to this very URL, token (and language) included. The field
        // makes the body the same as a mail client's RFC 8058 one-click request.
        form.page-form method="post" style=(t.style("page-form")) {
            input type="hidden" name="List-Unsubscribe" value="One-Click";
            button.page-button type="submit" style=(t.style("page-button")) { (face.word(&d, "unsubscribe-button")) }
        }
    };
    let title = face.word(&d, "unsubscribe-title");
    no_store(page_in(&d, &face, StatusCode::OK, &title, body))
}

/// One-click unsubscribe (RFC 8058) and the confirmation page's button: puts the token's
/// address on the suppression list and answers 200 with a page, never a redirect. Any body up
/// to the limit is accepted: mail clients send `List-Unsubscribe=One-Click`, the page's form
/// the same, and no link scanner posts.
async fn unsubscribe(
    State(d): Shared,
    face: Face,
    token: Result<Path<String>, PathRejection>,
    _body: Bytes,
) -> Result<Response, PageError> {
    // A token is signed only for an address that parsed, so one that no longer parses is as
    // good as a forged one.
    let address = token
        .ok()
        .and_then(|Path(t)| d.key.verify(&t))
        .and_then(|a| a.parse::<lettre::Address>().ok());
    if let Some(address) = address {
        let now = d.app.clock.now_ms();
        let a = address.clone();
        let hash = d.key.forget_hash(address.as_ref());
        let done = d
            .ledger
            .with(move |l| {
                // A forgotten address stays suppressed by its hash alone: writing it back
                // would undo the erasure.
                if l.is_forgotten(&hash)? {
                    return Ok(false);
                }
                l.suppress(&a, Reason::Unsubscribed, "one-click unsubscribe", now)
            })
            .await;
        if done? {
            tracing::info!(reader = %d.key.tag(address.as_ref()), "unsubscribed");
        } else {
            tracing::debug!(reader = %d.key.tag(address.as_ref()), "already suppressed");
        }
    } else {
        tracing::debug!("unsubscribe with a token that does not verify: nothing changed");
    }
    let t = &d.app.templates;
    let n = &d.app.config.newsletter;
    let contact = n.reply_to.as_ref().unwrap_or(&n.from);
    let body = html! {
        h2.entry-title style=(t.style("entry-title")) { (face.word(&d, "unsubscribed-heading")) }
        p.paragraph style=(t.style("paragraph")) {
            (face.word(&d, "unsubscribed-text")) " "
            a.link style=(t.style("link")) href=(format!("mailto:{}", contact.email)) { (contact.email) }
            "."
        }
    };
    let title = face.word(&d, "unsubscribed-title");
    Ok(no_store(page_in(&d, &face, StatusCode::OK, &title, body)))
}

/// The language a switch link names, if it is configured; the page then speaks it.
fn switch_face(d: &Site, face: Face, lang: &str) -> Option<Face> {
    let lang = d.app.config.newsletter.languages.find(lang)?.clone();
    // The page is about that language: it links to no other.
    Some(face.speaking(lang).alone())
}

/// The page of an issue's "Leer en español" link: it asks, in the language it offers, and
/// changes nothing (link scanners follow links). Like the unsubscribe page, it is the same
/// for every token, genuine or not, so it tells nobody whether an address is a reader.
async fn switch_page(
    State(d): Shared,
    face: Face,
    Path((lang, _token)): Path<(String, String)>,
) -> Response {
    let Some(face) = switch_face(&d, face.clone(), &lang) else {
        return ui::not_found_in(&d, &face);
    };
    let t = &d.app.templates;
    let body = html! {
        h2.entry-title style=(t.style("entry-title")) { (face.word(&d, "switch-heading")) }
        p.paragraph style=(t.style("paragraph")) { (face.word(&d, "switch-lead")) }
        // No action: the form posts to this very URL, token included.
        form.page-form method="post" style=(t.style("page-form")) {
            button.page-button type="submit" style=(t.style("page-button")) { (face.word(&d, "switch-button")) }
        }
    };
    let title = face.word(&d, "switch-title");
    no_store(page_in(&d, &face, StatusCode::OK, &title, body))
}

/// The switch link's button: records the language as the token's reader's choice, which the
/// next campaign reads. The answer is the same whether the token was genuine or not; a
/// forgotten reader stays forgotten (nothing is written about them).
async fn switch_language(
    State(d): Shared,
    face: Face,
    path: Result<Path<(String, String)>, PathRejection>,
    _body: Bytes,
) -> Result<Response, PageError> {
    let Ok(Path((lang, token))) = path else {
        return Err(PageError::NotFound);
    };
    let Some(face) = switch_face(&d, face, &lang) else {
        return Err(PageError::NotFound);
    };
    let address = d
        .key
        .verify(&token)
        .and_then(|a| a.parse::<lettre::Address>().ok());
    match address {
        Some(address) => {
            let now = d.app.clock.now_ms();
            let hash = d.key.forget_hash(address.as_ref());
            let key = AddressKey::of(&address);
            let lang = face.lang.clone();
            let changed = d
                .ledger
                .with(move |l| {
                    if l.is_forgotten(&hash)? {
                        return Ok(false);
                    }
                    l.set_language(&key, &lang, now)
                })
                .await?;
            tracing::info!(reader = %d.key.tag(address.as_ref()), lang = %face.lang, changed, "language chosen with a switch link");
        }
        None => {
            tracing::debug!("language switch with a token that does not verify: nothing changed")
        }
    }
    let t = &d.app.templates;
    let body = html! {
        h2.entry-title style=(t.style("entry-title")) { (face.word(&d, "switched-heading")) }
        p.paragraph style=(t.style("paragraph")) { (face.word(&d, "switched-text")) }
    };
    let title = face.word(&d, "switch-title");
    Ok(no_store(page_in(&d, &face, StatusCode::OK, &title, body)))
}

/// `POST /admin/test-send` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSendRequest {
    /// Staff addresses (from `[server] staff`).
    to: Vec<String>,
    /// The issue; default: the newest issue folder, as `brief send --test` picks it.
    #[serde(default)]
    issue: Option<String>,
    /// The language of the copies (`"es"`); default: one copy per configured language.
    #[serde(default)]
    lang: Option<String>,
}

/// A test send to staff addresses, for staff who cannot run the CLI on the server.
async fn test_send(
    State(d): Shared,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(expected) = &d.app.config.server.admin_token else {
        return ui::not_found(&d);
    };
    let client = client_of(&d, peer, &headers);
    if let Err(refused) = d
        .bearers
        .check(client, &headers, expected.expose(), "admin test send")
    {
        return refused.response("brief admin");
    }
    let req: TestSendRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("the body must be JSON like {{\"to\": [\"editor@example.org\"], \"issue\": \"2021-07\"}}: {e}"),
            )
        }
    };
    if req.to.is_empty() {
        return json_error(StatusCode::BAD_REQUEST, "`to` names no address");
    }
    let staff = &d.app.config.server.staff;
    let mut to = Vec::with_capacity(req.to.len());
    for a in &req.to {
        let address = match crate::address::parse_address(a) {
            Ok(a) => a,
            Err(m) => return json_error(StatusCode::BAD_REQUEST, &m.to_string()),
        };
        let key = AddressKey::of(&address);
        if !staff.iter().any(|m| AddressKey::of(&m.email) == key) {
            return json_error(
                StatusCode::FORBIDDEN,
                &format!(
                    "{address} is not listed in `[server] staff`: test sends go only to staff"
                ),
            );
        }
        // One copy per address, however often (and in whatever case) the body names it.
        if !to.iter().any(|a| AddressKey::of(a) == key) {
            to.push(address);
        }
    }
    let named = match req.issue.as_deref().map(str::parse::<IssueId>).transpose() {
        Ok(i) => i,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let id = match d.app.resolve_issue(named) {
        Ok(id) => id,
        Err(e) => return json_error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e:#}")),
    };
    let editions = match d.app.collect_editions(id, FetchPolicy::Once).await {
        Ok(e) => e,
        Err(problems) => {
            let list: Vec<String> = problems.0.iter().map(|p| p.to_string()).collect();
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum_json(&serde_json::json!({
                    "error": format!("issue {id} has problems: nothing was sent"),
                    "problems": list,
                })),
            )
                .into_response();
        }
    };
    let editions = match crate::campaign::test_send::choose(&d.app, editions, req.lang.as_deref()) {
        Ok(e) => e,
        Err(e) => return json_error(StatusCode::UNPROCESSABLE_ENTITY, &format!("lang: {e}")),
    };
    tracing::info!(issue = %id, to = ?to.iter().map(|a| d.key.tag(a.as_ref())).collect::<Vec<_>>(), "admin test send");
    let replies = crate::campaign::test_send::send(&d.sender(), &editions, &to, |lang, r| {
        tracing::info!(
            issue = %id,
            %lang,
            recipient = %d.key.tag(r.address.as_ref()),
            code = r.code,
            reply = %d.key.redact(&r.text),
            "test send reply"
        )
    })
    .await;
    let replies = match replies {
        Ok(r) => r,
        Err(e) => return error::json_server_error(e),
    };
    let all = replies.iter().all(|(_, r)| r.accepted);
    let results: Vec<_> = replies
        .iter()
        .map(|(lang, r)| {
            serde_json::json!({
                "to": r.address.to_string(),
                "lang": lang.as_str(),
                "accepted": r.accepted,
                "code": r.code,
                "reply": r.text,
            })
        })
        .collect();
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    (
        status,
        axum_json(&serde_json::json!({ "issue": id.to_string(), "results": results })),
    )
        .into_response()
}

/// Anything no route takes: the 404 page.
async fn not_found(State(d): Shared, face: Face) -> Response {
    ui::not_found_in(&d, &face)
}
