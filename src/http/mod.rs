//! The daemon's HTTP side: health, metrics, the web archive, one-click unsubscribe, sign-up and
//! staff pages, admin test sends.
//!
//! Routes: `GET /healthz`, `GET /metrics`, `GET /archive/` and `/archive/{id}`,
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
//! [`webhooks::WEBHOOK_BODY_LIMIT`]). Tokens, addresses in URLs
//! and the admin token are never logged.
//!
//! [`serve`] holds no slow client for long: a request header must arrive within
//! `[server] header_timeout` (also the idle limit of a keep-alive connection), at most
//! [`MAX_CONNECTIONS`] are served at once, and a stop waits [`STOP_GRACE`] for requests in
//! progress, then drops their connections.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use maud::{html, Markup};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::limit::RequestBodyLimitLayer;

mod admin;
mod console;
mod join;
mod webhooks;

pub use admin::{staff_page, Admin, Staff, StaffForm};
pub use join::Join;

use crate::address::AddressKey;
use crate::app::App;
use crate::dkim::DkimSigner;
use crate::feed::FetchPolicy;
use crate::issue::IssueId;
use crate::ledger::{Reason, SharedLedger, State as DeliveryState};
use crate::metrics::Metrics;
use crate::token::{Purpose, TokenError, TokenKey};

/// The largest request body accepted: one-click bodies and test-send requests are tiny.
pub const BODY_LIMIT: usize = 4 * 1024;

/// The most HTTP connections served at once. Further clients wait, unaccepted, in the listen
/// backlog: slow clients cannot use up the process's file descriptors (512 leaves room under
/// the common limit of 1024 for the ledger, SMTP and feeds) or its memory.
pub const MAX_CONNECTIONS: usize = 512;

/// How long a stop lets HTTP requests in progress finish before their connections are dropped.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// What the handlers share: built by whoever serves the router (the daemon, a test).
pub struct Site {
    pub app: Arc<App>,
    pub key: TokenKey,
    pub dkim: Option<Arc<DkimSigner>>,
    /// The connection the handlers share (calls run off the async threads).
    pub ledger: SharedLedger,
    pub metrics: Arc<Metrics>,
    /// The sign-up pages' queue and limits; `None`: no sign-up pages (404).
    pub join: Option<join::Join>,
    /// The staff pages' rate limits.
    pub admin: admin::Admin,
    /// Runs a campaign that the console's "Send now" created, in the background, the way the
    /// daemon runs the schedule's; `None`: "Send now" is unavailable (503).
    pub launch: Option<Launch>,
}

/// The seam through which the HTTP side hands a new campaign (with its frozen message and its
/// own ledger connection) to whoever runs campaigns: the daemon provides it, so `http` never
/// imports `daemon`.
pub type Launch = Arc<
    dyn Fn(crate::ledger::Campaign, crate::message::MessageTemplate, crate::ledger::Ledger)
        + Send
        + Sync,
>;

type Shared = State<Arc<Site>>;

/// The router of every endpoint, over `site`.
pub fn router(site: Arc<Site>) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/archive", get(archive_index))
        .route("/archive/", get(archive_index))
        .route("/archive/{id}", get(archive_issue))
        .route("/preview/{token}", get(preview))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        );
    // No admin token configured: the endpoint does not exist (404), rather than refusing
    // every caller.
    if site.app.config.server.admin_token.is_some() {
        r = r.route("/admin/test-send", post(test_send));
    }
    let webhooks = webhooks::routes(&site);
    admin::routes(join::routes(r))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .merge(webhooks)
        .fallback(not_found)
        .layer(axum::middleware::map_response(common_headers))
        .with_state(site)
}

/// Serves `router` on `listener` until `stop` is cancelled, then gives requests in progress
/// [`STOP_GRACE`] to end and drops the connections still open. Returns how many were dropped.
///
/// Each connection is served by hyper's HTTP/1 connection (axum's `serve` offers no header
/// timeout): one that has not sent a whole request header within `header_timeout`, or that
/// waits idle longer than that for its next request, is closed. At most [`MAX_CONNECTIONS`] are
/// served at once; beyond that, new ones are not accepted and wait in the listen backlog until a
/// connection ends (at the latest, `header_timeout` after its last request).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) -> Stopped {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
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
        // Handlers that need the client's address (the sign-up limit) read it from here.
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let (stop, drop_now) = (stop.clone(), drop_now.clone());
        conns.spawn(async move {
            let _slot = slot;
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
            let (mut canary, mut held) = (0, 0);
            for c in l.campaigns()? {
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
            Ok((total, canary, held, problems))
        })
        .await;
    match counts {
        Ok((total, canary, held, problems)) => {
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
async fn archive_index(State(d): Shared) -> Response {
    let campaigns = match d.ledger.with(|l| l.campaigns()).await {
        Ok(c) => c,
        Err(e) => return server_error(&d, e),
    };
    let base = &d.app.config.server.public_url;
    let body = html! {
        h2 style=(d.app.templates.style("entry-title")) { "Archive" }
        @if campaigns.is_empty() {
            p style=(d.app.templates.style("paragraph")) { "No issue has been sent yet." }
        } @else {
            ul style=(d.app.templates.style("list")) {
                @for c in &campaigns {
                    @let url = base.join(&format!("archive/{}", c.issue)).expect("public_url is a base URL");
                    li {
                        a style=(d.app.templates.style("link")) href=(url.as_str()) { (c.subject) }
                        " (" (c.issue) ")"
                    }
                }
            }
        }
    };
    page(&d, StatusCode::OK, "Archive", body)
}

/// The web version of a sent issue, as its campaign sends it (stored when it started, or last
/// revised): the newsletter's layout without personal data. Issues that were never sent are
/// not published (they may be drafts): their test copies link to a signed preview instead.
async fn archive_issue(State(d): Shared, id: Result<Path<String>, PathRejection>) -> Response {
    let Some(id) = id.ok().and_then(|Path(s)| s.parse::<IssueId>().ok()) else {
        return not_found(State(d)).await;
    };
    let stored = d
        .ledger
        .with(move |l| match l.campaign(id)? {
            Some(c) => Ok(Some(l.campaign_message(c.id)?.map(|m| m.web))),
            None => Ok(None),
        })
        .await;
    let web = match stored {
        Ok(Some(web)) => web,
        Ok(None) => return not_found(State(d)).await,
        Err(e) => return server_error(&d, e),
    };
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
    match rendered {
        Ok(Ok(html)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
        Ok(Err(problems)) => {
            tracing::warn!(issue = %id, "the web version cannot be rendered: {problems}");
            not_found(State(d)).await
        }
        Err(e) => server_error(&d, anyhow::anyhow!("render task failed: {e}")),
    }
}

/// A test copy's "View in browser" link: the web version of the issue as its folder renders it
/// now, sent or not, for whoever holds a genuine link that has not expired (see
/// `App::preview_url`). It needs no session, since the link is clicked from webmail, where a
/// `SameSite=Strict` cookie does not ride along. An expired link says so and points at the
/// console and the archive: a test copy's link never ends in a bare 404.
async fn preview(State(d): Shared, token: Path<String>) -> Response {
    let now = d.app.clock.now().timestamp();
    let id = match d.key.open(Purpose::Preview, &token.0, now) {
        Ok(fields) => fields.first().and_then(|f| f.parse::<IssueId>().ok()),
        Err(TokenError::Expired) => {
            let t = &d.app.templates;
            let days = crate::app::PREVIEW_TTL.as_secs() / 86_400;
            let body = html! {
                h2.entry-title style=(t.style("entry-title")) { "This preview has expired" }
                p.paragraph style=(t.style("paragraph")) {
                    "A test copy's \"View in browser\" link works for " (days) " days. Staff can see "
                    "every issue in the "
                    a style=(t.style("link")) href=(admin::url(&d, "admin/").as_str()) { "console" }
                    "; sent issues are in the "
                    a style=(t.style("link")) href=(admin::url(&d, "archive/").as_str()) { "archive" }
                    "."
                }
            };
            return private(page(&d, StatusCode::GONE, "Preview expired", body));
        }
        Err(TokenError::Invalid) => None,
    };
    let Some(id) = id else {
        return private(not_found(State(d)).await);
    };
    let app = d.app.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        app.load_issue(id)
            .map(|issue| crate::render::render_web(&issue, app.render_context()))
    })
    .await;
    match rendered {
        Ok(Ok(html)) => {
            private(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
        }
        Ok(Err(problems)) => {
            // The folder was changed since the test send and does not render now.
            let t = &d.app.templates;
            let body = html! {
                h2.entry-title style=(t.style("entry-title")) { "Issue " (id) " cannot be shown now" }
                p.paragraph style=(t.style("paragraph")) {
                    "Its folder has " (problems.0.len()) " problem(s) since the test copy was sent. "
                    "Run brief check, or open the issue in the "
                    a style=(t.style("link")) href=(admin::url(&d, &format!("admin/issues/{id}")).as_str()) { "console" }
                    "."
                }
            };
            private(page(&d, StatusCode::CONFLICT, "Preview", body))
        }
        Err(e) => server_error(&d, anyhow::anyhow!("render task failed: {e}")),
    }
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
async fn unsubscribe_page(State(d): Shared) -> Response {
    let t = &d.app.templates;
    let n = &d.app.config.newsletter;
    let body = html! {
        h2.entry-title style=(t.style("entry-title")) { "Unsubscribe from " (n.kicker) "?" }
        p.paragraph style=(t.style("paragraph")) {
            "Press the button to stop receiving " (n.kicker) ", the monthly newsletter of the "
            (n.organization) ". Nothing changes until you do."
        }
        // No action: the form posts to this very URL, token included. The field makes the
        // body the same as a mail client's RFC 8058 one-click request.
        form.page-form method="post" style=(t.style("page-form")) {
            input type="hidden" name="List-Unsubscribe" value="One-Click";
            button.page-button type="submit" style=(t.style("page-button")) { "Unsubscribe" }
        }
    };
    no_store(page(&d, StatusCode::OK, "Unsubscribe", body))
}

/// One-click unsubscribe (RFC 8058) and the confirmation page's button: puts the token's
/// address on the suppression list and answers 200 with a page, never a redirect. Any body up
/// to the limit is accepted: mail clients send `List-Unsubscribe=One-Click`, the page's form
/// the same, and no link scanner posts.
async fn unsubscribe(
    State(d): Shared,
    token: Result<Path<String>, PathRejection>,
    _body: Bytes,
) -> Response {
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
        match done {
            Ok(true) => tracing::info!(reader = %d.key.tag(address.as_ref()), "unsubscribed"),
            Ok(false) => tracing::debug!(recipient = %address, "already suppressed"),
            Err(e) => return server_error(&d, e),
        }
    } else {
        tracing::debug!("unsubscribe with a token that does not verify: nothing changed");
    }
    let t = &d.app.templates;
    let n = &d.app.config.newsletter;
    let contact = n.reply_to.as_ref().unwrap_or(&n.from);
    let body = html! {
        h2.entry-title style=(t.style("entry-title")) { "You are unsubscribed" }
        p.paragraph style=(t.style("paragraph")) {
            "This address will receive no more " (n.kicker) ". If that was a mistake, write to "
            a.link style=(t.style("link")) href=(format!("mailto:{}", contact.email)) { (contact.email) }
            "."
        }
    };
    no_store(page(&d, StatusCode::OK, "Unsubscribed", body))
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
}

/// A test send to staff addresses, for staff who cannot run the CLI on the server.
async fn test_send(State(d): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let Some(expected) = &d.app.config.server.admin_token else {
        return not_found(State(d)).await;
    };
    if !bearer_matches(&headers, expected.expose()) {
        tracing::warn!("admin test send refused: missing or wrong bearer token");
        let mut res = json_error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"brief admin\""),
        );
        return res;
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
            Err(m) => return json_error(StatusCode::BAD_REQUEST, &m),
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
    let issue = match d.app.collect_issue(id, FetchPolicy::Once).await {
        Ok(i) => i,
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
    tracing::info!(issue = %id, to = ?to.iter().map(|a| a.to_string()).collect::<Vec<_>>(), "admin test send");
    let replies = match d
        .app
        .test_send(&issue, &d.key, d.dkim.as_deref(), &to, |r| {
            tracing::info!(
                issue = %id,
                recipient = %r.address,
                code = r.code,
                reply = %r.text,
                "test send reply"
            )
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return server_error(&d, e),
    };
    record_test_send(&d, id, &replies).await;
    let all = replies.iter().all(|r| r.accepted);
    let results: Vec<_> = replies
        .iter()
        .map(|r| {
            serde_json::json!({
                "to": r.address.to_string(),
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

/// Keeps the replies of a test send of issue `id` in the ledger's test log (a failure to record
/// is logged: the messages went out either way).
async fn record_test_send(d: &Site, id: IssueId, replies: &[crate::app::TestReply]) {
    let now = d.app.clock.now_ms();
    let record = replies.to_vec();
    let recorded = d
        .ledger
        .with(move |l| {
            for r in &record {
                l.record_test_send(id, &r.address, r.code, &r.text, now)?;
            }
            Ok(())
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error.message = %e, "cannot record the test send: {e:#}");
    }
}

/// Whether `Authorization: Bearer T` carries the expected token. Both sides are hashed first,
/// so the constant-time comparison runs over equal lengths and leaks not even the length.
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        return false;
    };
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}

fn axum_json(value: &serde_json::Value) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{value}\n"),
    )
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum_json(&serde_json::json!({ "error": message }))).into_response()
}

async fn not_found(State(d): Shared) -> Response {
    let body = html! {
        h2 style=(d.app.templates.style("entry-title")) { "Not found" }
        p style=(d.app.templates.style("paragraph")) {
            "There is nothing here. Sent issues are listed in the "
            a style=(d.app.templates.style("link"))
                href=(d.app.config.server.public_url.join("archive/").expect("base URL").as_str()) { "archive" }
            "."
        }
    };
    page(&d, StatusCode::NOT_FOUND, "Not found", body)
}

fn server_error(d: &Site, e: anyhow::Error) -> Response {
    tracing::error!(error.message = %e, "request failed: {e:#}");
    let body = html! {
        h2 style=(d.app.templates.style("entry-title")) { "Something went wrong" }
        p style=(d.app.templates.style("paragraph")) { "Please try again in a few minutes." }
    };
    page(d, StatusCode::INTERNAL_SERVER_ERROR, "Error", body)
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A page in the newsletter's look: masthead, `body`, footer.
fn page(d: &Site, status: StatusCode, title: &str, body: Markup) -> Response {
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
