//! The staff pages under `/admin/`: sign-in by emailed link, sessions, and their protection.
//!
//! `GET /admin/login` asks for an address; `POST /admin/login` answers the same page, byte for
//! byte, whatever the address, and mails a staff address (in the background, so the answer's
//! timing tells nothing either) a one-time link `public_url/admin/login/TOKEN`. A `GET` of the
//! link shows a button and changes nothing; its `POST` opens a session (see [`crate::staff`]),
//! sets the cookie and answers `303` to `/admin/`. Sign-in requests are limited per client IP
//! and per staff address, counted in the ledger so a restart does not reset the limits.
//!
//! Every staff page takes a [`Staff`]: the extractor that turns anonymous requests away, in this
//! one place (`303` to the sign-in page, or `401` to a JSON client). Every state-changing form
//! takes a [`StaffForm`], which also refuses (`403`) a POST whose CSRF token is missing or not
//! the session's, or whose `Origin` names another site. Pages are built by [`staff_page`]. All
//! of it is `Cache-Control: no-store`. Logs name staff by their keyed tag, and never hold a
//! token or a session id.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use lettre::Address;
use maud::{html, Markup};

use super::error::{json_error, PageError};
use super::site::{Shared, Site};
use super::ui::{heading, no_store, page, paragraph, see_other, server_error, url};
use crate::ledger::{Action, NewStaffSession};
use crate::staff::{self, LINK_TTL, SESSION_TTL};
use crate::token::TokenError;

/// The session cookie's name.
pub const COOKIE: &str = "brief_staff";

/// The CSRF field of every staff form.
pub const CSRF_FIELD: &str = "csrf";

/// Sign-in links mailed to one address: at most one a minute, and this many an hour.
pub const LINKS_PER_HOUR: u32 = 5;

/// Sign-in requests from one client IP in an hour (whatever the address).
pub const REQUESTS_PER_IP_HOUR: u32 = 30;

/// The names of the sign-in limits in the ledger's rate limits (kept there, so a restart does
/// not reset them; clients and addresses by their keyed tags).
const PER_IP_LIMIT: &str = "staff-login-per-client";
const PER_ADDRESS_MINUTE_LIMIT: &str = "staff-link-per-minute";
const PER_ADDRESS_HOUR_LIMIT: &str = "staff-link-per-hour";

/// The sign-in routes (the router puts them, with the console's, under [`admin_layer`]).
pub(super) fn routes(r: Router<Arc<Site>>) -> Router<Arc<Site>> {
    let admin = Router::new()
        .route("/admin", get(to_dashboard))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/login/{token}", get(link_page).post(use_link))
        .route("/admin/logout", post(logout));
    r.merge(admin)
}

/// The staff pages' policy: the site's, plus our own scripts (the console's live counts) and
/// requests to our own origin (their polling). Nothing else is allowed a script.
pub const ADMIN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; frame-ancestors 'none'; script-src 'self'; connect-src 'self'";

/// The staff pages' headers: `no-store`, [`ADMIN_CSP`], and `Referrer-Policy: same-origin`
/// rather than the site's `no-referrer`, under which browsers send `Origin: null` with a form's
/// POST, which the Origin check must refuse: a same-origin policy lets a browser name our own
/// origin, and still sends nothing to other sites.
pub(super) async fn admin_layer(res: Response) -> Response {
    let mut res = no_store(res);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(ADMIN_CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// The session cookie (`value` set, or cleared): `HttpOnly`, `SameSite=Strict`, for the staff
/// pages only (`Path=/admin` under the public URL's path), and `Secure` when the public URL is
/// https.
fn cookie(d: &Site, value: Option<&str>) -> HeaderValue {
    let public = &d.app.config.server.public_url;
    let mut c = match value {
        Some(v) => format!("{COOKIE}={v}; Max-Age={}", SESSION_TTL.as_secs()),
        None => format!("{COOKIE}=; Max-Age=0"),
    };
    c.push_str(&format!(
        "; Path={}admin; HttpOnly; SameSite=Strict",
        public.path()
    ));
    if public.scheme() == "https" {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("a cookie of base64url and fixed words")
}

/// The session id the request's cookie holds, if it looks like one.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

/// Whether the request's `Origin`, if it sends one, is the public URL's.
fn same_origin(d: &Site, headers: &HeaderMap) -> bool {
    let own = d
        .app
        .config
        .server
        .public_url
        .origin()
        .ascii_serialization();
    headers
        .get_all(header::ORIGIN)
        .iter()
        .all(|v| v.to_str().is_ok_and(|v| v == own))
}

/// A signed-in staff member: what every staff page takes. Anonymous requests never reach the
/// handler: a page gets `303` to the sign-in page, a JSON client (`Accept: application/json`)
/// `401`.
#[derive(Clone)]
pub struct Staff {
    pub address: Address,
    /// The session id (from the cookie): never logged, never shown.
    session_id: String,
}

impl Staff {
    /// Records in the activity log that this member did `action` to `subject` (an issue id, a
    /// reader's number: never a reader's address). The action is done already, so a failure
    /// to record it is logged rather than shown.
    pub async fn record(&self, d: &Site, action: Action, subject: String, detail: String) {
        let (staff, now) = (self.address.to_string(), d.app.clock.now_ms());
        let done = d
            .ledger
            .with(move |l| l.record_activity(now, &staff, action, &subject, &detail))
            .await;
        if let Err(e) = done {
            tracing::error!(error.message = %e, "cannot record {action} in the activity log: {e:#}");
        }
    }
}

impl std::fmt::Debug for Staff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staff")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Staff {
    /// The CSRF token of this session, for the hidden field of a form.
    pub fn csrf(&self, d: &Site) -> String {
        d.key.csrf(&self.session_id)
    }

    /// The hidden CSRF field every staff form carries.
    pub fn csrf_field(&self, d: &Site) -> Markup {
        html! { input type="hidden" name=(CSRF_FIELD) value=(self.csrf(d)); }
    }
}

fn anonymous(d: &Site, json: bool) -> Response {
    if json {
        json_error(StatusCode::UNAUTHORIZED, "sign in at /admin/login first")
    } else {
        see_other(&url(d, "admin/login"))
    }
}

impl FromRequestParts<Arc<Site>> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Site>) -> Result<Staff, Response> {
        let json = wants_json(&parts.headers);
        let Some(id) = session_cookie(&parts.headers) else {
            return Err(anonymous(d, json));
        };
        let hash = staff::session_hash(&id);
        let now = d.app.clock.now_ms();
        let found = d.ledger.with(move |l| l.staff_session(&hash, now)).await;
        let stored = match found {
            Ok(s) => s,
            Err(e) if json => return Err(super::error::json_server_error(e)),
            Err(e) => return Err(server_error(d, e)),
        };
        // A session of someone no longer in `[server] staff` opens nothing.
        match stored
            .and_then(|a| a.parse::<Address>().ok())
            .and_then(|a| staff::staff_address(&d.app, &a))
        {
            Some(address) => Ok(Staff {
                address,
                session_id: id,
            }),
            None => Err(anonymous(d, json)),
        }
    }
}

/// A signed-in staff member's form POST, checked: the session (as [`Staff`]), then the
/// `Origin` and the CSRF token (`403` when either is wrong), then the form's fields, read up to
/// `LIMIT` bytes ([`super::site::BODY_LIMIT`] but on the import's confirmation).
#[derive(Debug)]
pub struct StaffForm<const LIMIT: usize = { super::site::BODY_LIMIT }> {
    pub staff: Staff,
    /// The form's fields, the CSRF token left out.
    pub fields: Vec<(String, String)>,
}

/// The session of a staff form's POST, its `Origin` checked (`403` when it is another site).
async fn staff_of(parts: &mut Parts, d: &Arc<Site>) -> Result<(Staff, String), Response> {
    let staff = Staff::from_request_parts(parts, d).await?;
    let tag = d.key.tag(staff.address.as_ref());
    if !same_origin(d, &parts.headers) {
        tracing::warn!(staff = %tag, "staff form refused: the Origin is another site");
        return Err(forbidden(d));
    }
    Ok((staff, tag))
}

impl<const LIMIT: usize> FromRequest<Arc<Site>> for StaffForm<LIMIT> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, d: &Arc<Site>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let (staff, tag) = staff_of(&mut parts, d).await?;
        let body: Bytes = axum::body::to_bytes(body, LIMIT)
            .await
            .map_err(|_| forbidden(d))?;
        let mut csrf = None;
        let mut fields = Vec::new();
        for (k, v) in url::form_urlencoded::parse(&body) {
            if k == CSRF_FIELD {
                csrf = Some(v.into_owned());
            } else {
                fields.push((k.into_owned(), v.into_owned()));
            }
        }
        if !csrf.is_some_and(|t| d.key.csrf_matches(&staff.session_id, &t)) {
            tracing::warn!(staff = %tag, "staff form refused: missing or wrong CSRF token");
            return Err(forbidden(d));
        }
        Ok(StaffForm { staff, fields })
    }
}

/// A signed-in staff member's `multipart/form-data` POST (the console's import, which uploads
/// a file), checked as [`StaffForm`] is: the session, the `Origin`, and the CSRF field (`403`).
/// The body is read up to [`super::site::IMPORT_BODY_LIMIT`] (`413` beyond) and must be a
/// well-formed form ([`super::multipart`]: `400` with the reason otherwise).
#[derive(Debug)]
pub struct StaffUpload {
    pub staff: Staff,
    /// The form's parts, the CSRF field left out.
    pub parts: Vec<super::multipart::Part>,
}

impl FromRequest<Arc<Site>> for StaffUpload {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, d: &Arc<Site>) -> Result<Self, Response> {
        use futures_util::StreamExt;
        let (mut parts, body) = req.into_parts();
        let (staff, tag) = staff_of(&mut parts, d).await?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let refuse = |status: StatusCode, why: &str| {
            let body = html! {
                (heading(d, "Not a form brief can read"))
                (paragraph(d, why))
                (paragraph(d, "Go back, reload the page and try again."))
            };
            page(d, status, "Not read", body)
        };
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return Err(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The upload is too large, or it was cut short.",
                ));
            };
            if bytes.len() + chunk.len() > super::site::IMPORT_BODY_LIMIT {
                return Err(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The upload is too large.",
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let mut form = match super::multipart::parse(&content_type, &bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(staff = %tag, "staff upload refused: {e}");
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("The upload is not a well-formed form: {e}."),
                ));
            }
        };
        let csrf = form
            .iter()
            .position(|p| p.name == CSRF_FIELD && p.file_name.is_none())
            .map(|i| form.remove(i).bytes);
        let genuine = csrf
            .and_then(|t| String::from_utf8(t).ok())
            .is_some_and(|t| d.key.csrf_matches(&staff.session_id, &t));
        if !genuine {
            tracing::warn!(staff = %tag, "staff upload refused: missing or wrong CSRF token");
            return Err(forbidden(d));
        }
        Ok(StaffUpload { staff, parts: form })
    }
}

pub(super) fn forbidden(d: &Site) -> Response {
    let body = html! {
        (heading(d, "Forbidden"))
        (paragraph(d, "This form was not sent from the staff pages of this site. Go back, reload the page and try again."))
    };
    page(d, StatusCode::FORBIDDEN, "Forbidden", body)
}

/// The console's sections, in the order its header lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Issues,
    Campaigns,
    Subscribers,
    Bounces,
    Activity,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Dashboard,
        Section::Issues,
        Section::Campaigns,
        Section::Subscribers,
        Section::Bounces,
        Section::Activity,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Dashboard => "Dashboard",
            Section::Issues => "Issues",
            Section::Campaigns => "Campaigns",
            Section::Subscribers => "Subscribers",
            Section::Bounces => "Bounces",
            Section::Activity => "Activity",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Section::Dashboard => "admin/",
            Section::Issues => "admin/issues/",
            Section::Campaigns => "admin/campaigns/",
            Section::Subscribers => "admin/subscribers/",
            Section::Bounces => "admin/bounces/",
            Section::Activity => "admin/activity/",
        }
    }
}

/// A staff page outside any one section (an answer to an action).
pub fn staff_page(d: &Site, staff: &Staff, title: &str, body: Markup) -> Response {
    console_page(d, staff, None, title, body)
}

/// A page of the console: the header (the newsletter's name, the sections with `section`
/// marked, who is signed in and a small "Sign out"), then `body` as wide as the screen allows,
/// in the console's own stylesheet (`templates/console.css`).
pub fn console_page(
    d: &Site,
    staff: &Staff,
    section: Option<Section>,
    title: &str,
    body: Markup,
) -> Response {
    let t = &d.app.templates;
    let n = &d.app.config.newsletter;
    // The console is written in English, whatever the readers' languages.
    let (lang, dir) = ("en", "ltr");
    let html = html! {
        (maud::DOCTYPE)
        html lang=(lang) dir=(dir) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="robots" content="noindex";
                title { (title) " \u{2013} " (n.kicker) " console" }
                style { (maud::PreEscaped(t.console_css())) }
            }
            body.console {
                a.skip href="#main" { "Skip to the page" }
                header.shell-head {
                    a.shell-brand href=(url(d, "admin/").as_str()) { (n.kicker) " console" }
                    nav.shell-nav aria-label="Console" {
                        ul {
                            @for s in Section::ALL {
                                li {
                                    a href=(url(d, s.path()).as_str())
                                        aria-current=[(section == Some(s)).then_some("page")] { (s.name()) }
                                }
                            }
                        }
                    }
                    div.shell-who {
                        span { "Signed in as " strong { (staff.address) } }
                        form method="post" action=(url(d, "admin/logout").as_str()) {
                            (staff.csrf_field(d))
                            button.shell-signout type="submit" { "Sign out" }
                        }
                    }
                }
                main.shell-main id="main" { (body) }
            }
        }
    };
    no_store(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html.into_string(),
        )
            .into_response(),
    )
}

async fn to_dashboard(State(d): Shared) -> Response {
    see_other(&url(&d, "admin/"))
}

fn login_form(d: &Site) -> Markup {
    let t = &d.app.templates;
    html! {
        form method="post" action=(url(d, "admin/login").as_str()) accept-charset="utf-8" {
            label style=(t.style("field-label")) for="brief-staff-email" { "Email address" }
            input style=(t.style("field")) id="brief-staff-email" type="email" name="email"
                required autocomplete="email" maxlength="254";
            button type="submit" style=(t.style("page-button")) { "Email me a sign-in link" }
        }
    }
}

async fn login_page(State(d): Shared) -> Response {
    let body = html! {
        (heading(&d, "Staff sign-in"))
        (paragraph(&d, "Staff sign in with a link sent to their address: there is no password. Enter your address to get one."))
        (login_form(&d))
    };
    page(&d, StatusCode::OK, "Staff sign-in", body)
}

/// Mails a sign-in link if the address is staff and within its limits; answers the same page
/// whatever happened.
async fn login(State(d): Shared, req: axum::extract::Request) -> Result<Response, PageError> {
    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| *p);
    if !same_origin(&d, &parts.headers) {
        tracing::warn!("staff sign-in request refused: the Origin is another site");
        return Ok(forbidden(&d));
    }
    let ip = super::site::client_ip(&d, peer, &parts.headers);
    let now = d.app.clock.instant();
    let within = match ip {
        None => true,
        Some(ip) => {
            let client = d.key.tag(&ip.to_string());
            let counted = d
                .ledger
                .with(move |l| {
                    l.take_rate_limit(
                        PER_IP_LIMIT,
                        &client,
                        REQUESTS_PER_IP_HOUR,
                        super::join::HOUR,
                        now,
                    )
                })
                .await;
            counted?
        }
    };
    if !within {
        tracing::info!("staff sign-in request refused: the client's hourly limit is reached");
        let body = html! {
            (heading(&d, "Too many requests"))
            (paragraph(&d, "Too many sign-in requests came from your network. Please try again in an hour."))
        };
        return Ok(page(
            &d,
            StatusCode::TOO_MANY_REQUESTS,
            "Staff sign-in",
            body,
        ));
    }
    let body: Bytes = axum::body::to_bytes(body, super::site::BODY_LIMIT)
        .await
        .unwrap_or_default();
    let email = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let address = crate::address::parse_address(&email)
        .ok()
        .and_then(|a| staff::staff_address(&d.app, &a));
    match address {
        None => {
            tracing::info!("staff sign-in asked for an address that is not staff: nothing sent")
        }
        Some(address) => {
            let tag = d.key.tag(address.as_ref());
            let client = tag.clone();
            // The hour's budget is spent only by requests the minute's limit let through.
            let within = d
                .ledger
                .with(move |l| {
                    Ok(l.take_rate_limit(
                        PER_ADDRESS_MINUTE_LIMIT,
                        &client,
                        1,
                        std::time::Duration::from_secs(60),
                        now,
                    )? && l.take_rate_limit(
                        PER_ADDRESS_HOUR_LIMIT,
                        &client,
                        LINKS_PER_HOUR,
                        super::join::HOUR,
                        now,
                    )?)
                })
                .await;
            if let Err(e) = &within {
                tracing::error!(staff = %tag, error.message = %e, "staff sign-in link not sent: cannot count it against the limits: {e:#}");
            } else if within.as_ref().is_ok_and(|w| !w) {
                tracing::info!(staff = %tag, "staff sign-in link not sent: the address's limit is reached");
            } else {
                // Queued (off the answer's path, which is the same whatever the address): the
                // daemon's notice worker mails it at once, and again within seconds if the
                // relay answers 4xx; a stop waits for it.
                let d = d.clone();
                tokio::spawn(async move {
                    match staff::queue_login(&d.app, &d.ledger, &d.key, &address).await {
                        Ok(()) => tracing::info!(staff = %tag, "staff sign-in link queued"),
                        Err(e) => {
                            tracing::error!(staff = %tag, error.message = %e, "staff sign-in link not queued: {e:#}")
                        }
                    }
                });
            }
        }
    }
    let minutes = LINK_TTL.as_secs() / 60;
    let body = html! {
        (heading(&d, "Check your inbox"))
        (paragraph(&d, &format!(
            "If this address belongs to the staff, a sign-in link is on its way to it. The link works once, within {minutes} minutes."
        )))
    };
    Ok(page(&d, StatusCode::OK, "Staff sign-in", body))
}

/// The page for a link that is expired, used, or not genuine: ask for a new one.
fn bad_link(d: &Site, status: StatusCode, text: &str) -> Response {
    let body = html! {
        (heading(d, "Staff sign-in"))
        (paragraph(d, text))
        (login_form(d))
    };
    page(d, status, "Staff sign-in", body)
}

fn refused_link(d: &Site, e: TokenError) -> Response {
    match e {
        TokenError::Expired => bad_link(
            d,
            StatusCode::GONE,
            "This sign-in link has expired. Ask for a new link below.",
        ),
        TokenError::Invalid => bad_link(
            d,
            StatusCode::BAD_REQUEST,
            "This sign-in link is not valid (it may have been cut short by your mail program). Ask for a new link below.",
        ),
    }
}

/// The sign-in link's page: a button, and nothing changes (link scanners follow links).
async fn link_page(State(d): Shared, token: Result<Path<String>, PathRejection>) -> Response {
    let now = d.app.clock.now_ms();
    let opened = token
        .map_err(|_| TokenError::Invalid)
        .and_then(|Path(t)| staff::open_login(&d.key, &t, now));
    if let Err(e) = opened {
        return refused_link(&d, e);
    }
    let body = html! {
        (heading(&d, "Sign in"))
        (paragraph(&d, "Press the button to sign in to the staff pages. Nothing happens until you do."))
        // No action: the form posts to this very URL, token included.
        form method="post" {
            button type="submit" style=(d.app.templates.style("page-button")) { "Sign in" }
        }
    };
    page(&d, StatusCode::OK, "Sign in", body)
}

/// Uses a sign-in link (once): opens a session, sets its cookie, and sends the browser on to
/// `/admin/`.
async fn use_link(
    State(d): Shared,
    headers: HeaderMap,
    token: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    if !same_origin(&d, &headers) {
        tracing::warn!("staff sign-in refused: the Origin is another site");
        return Ok(forbidden(&d));
    }
    let now = d.app.clock.now_ms();
    let login = match token
        .map_err(|_| TokenError::Invalid)
        .and_then(|Path(t)| staff::open_login(&d.key, &t, now))
    {
        Ok(l) => l,
        Err(e) => return Ok(refused_link(&d, e)),
    };
    // Taken off `[server] staff` since the link was mailed: the link is no good.
    let Some(address) = staff::staff_address(&d.app, &login.address) else {
        return Ok(refused_link(&d, TokenError::Invalid));
    };
    let tag = d.key.tag(address.as_ref());
    let session_id = staff::random_id();
    let id_hash = staff::session_hash(&session_id);
    let stored = address.to_string();
    let expires_at = now + SESSION_TTL.as_millis() as i64;
    let opened = d
        .ledger
        .with(move |l| {
            let opened = l.sign_in_staff(
                &NewStaffSession {
                    link_id: &login.id,
                    link_expires_at: login.expires_at,
                    id_hash: &id_hash,
                    address: &stored,
                    expires_at,
                },
                now,
            )?;
            if opened {
                l.record_activity(now, &stored, Action::SignIn, "console", "")?;
            }
            Ok(opened)
        })
        .await;
    if !opened? {
        tracing::info!(staff = %tag, "staff sign-in refused: the link was used already");
        return Ok(bad_link(
            &d,
            StatusCode::GONE,
            "This sign-in link was used already: each link works once. Ask for a new link below.",
        ));
    }
    tracing::info!(staff = %tag, hours = SESSION_TTL.as_secs() / 3600, "staff signed in");
    let mut res = see_other(&url(&d, "admin/"));
    res.headers_mut()
        .insert(header::SET_COOKIE, cookie(&d, Some(&session_id)));
    Ok(res)
}

/// Ends the session and clears the cookie.
async fn logout(State(d): Shared, form: StaffForm) -> Result<Response, PageError> {
    let hash = staff::session_hash(&form.staff.session_id);
    d.ledger.with(move |l| l.end_staff_session(&hash)).await?;
    tracing::info!(staff = %d.key.tag(form.staff.address.as_ref()), "staff signed out");
    let mut res = see_other(&url(&d, "admin/login"));
    res.headers_mut()
        .insert(header::SET_COOKIE, cookie(&d, None));
    Ok(res)
}
