//! The sign-up pages: `GET`/`POST /subscribe` and `GET`/`POST /confirm/{token}`.
//!
//! `POST /subscribe` answers the same page, byte for byte, whatever the state of the address
//! (new, pending, active, unsubscribed, bounced), so it reveals nothing about who is subscribed;
//! only a malformed address gets the form back with the error (400), and a client past its
//! hourly limit a 429. It does no ledger or SMTP work itself: it offers the request to the
//! sign-up queue. A `GET` of a confirmation link shows a button and changes nothing (link
//! scanners follow links); the `POST` of that button confirms, and doing it again changes
//! nothing. An expired or altered link gets the form again.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use maud::{html, Markup};

use super::{no_store, page, Shared, Site};
use crate::address::parse_address;
use crate::issue::one_line;
use crate::ledger::Confirmed;
use crate::metrics::SubscriptionEvent;
use crate::signup::{Mailer, Queue, Request};
use crate::token::TokenError;

/// The longest name kept from the form.
const NAME_MAX: usize = 200;

/// What the sign-up pages need: the queue, the mailer's keys, and the per-client limit.
pub struct Join {
    pub queue: Queue,
    pub mailer: Arc<Mailer>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl Join {
    /// Sign-up pages over `queue`, at most `per_hour` requests per client IP and hour.
    pub fn new(queue: Queue, mailer: Arc<Mailer>, per_hour: u32) -> Join {
        let per_hour = NonZeroU32::new(per_hour).unwrap_or(NonZeroU32::MIN);
        Join {
            queue,
            mailer,
            per_ip: RateLimiter::keyed(Quota::per_hour(per_hour)),
        }
    }
}

impl std::fmt::Debug for Join {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join").finish_non_exhaustive()
    }
}

/// The sign-up routes.
pub(super) fn routes(r: Router<Arc<Site>>) -> Router<Arc<Site>> {
    r.route("/subscribe", get(form_page).post(subscribe))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
}

/// The sign-up form, posting to `public_url/subscribe`.
fn form(d: &Site, error: Option<&str>, email: &str, name: &str) -> Markup {
    let action = d
        .app
        .config
        .server
        .public_url
        .join("subscribe")
        .expect("public_url is a base URL");
    crate::render::signup_form(d.app.render_context(), &action, error, email, name)
}

fn heading(d: &Site, text: &str) -> Markup {
    html! { h2 style=(d.app.templates.style("entry-title")) { (text) } }
}

fn paragraph(d: &Site, text: &str) -> Markup {
    html! { p style=(d.app.templates.style("paragraph")) { (text) } }
}

async fn form_page(State(d): Shared) -> Response {
    let n = &d.app.config.newsletter;
    let body = html! {
        (heading(&d, &format!("Subscribe to {}", n.kicker)))
        (paragraph(&d, &format!("{}, the monthly newsletter of the {}, in your inbox once a month.", n.name, n.organization)))
        (form(&d, None, "", ""))
    };
    no_store(page(&d, StatusCode::OK, "Subscribe", body))
}

/// The client's IP: the connection's peer, or, when the peer is a proxy named in
/// `[server] trusted_proxies`, the last address its `X-Forwarded-For` names.
pub(super) fn client_ip(d: &Site, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !d.app.config.server.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back();
    Some(forwarded.unwrap_or(peer))
}

async fn subscribe(State(d): Shared, req: axum::extract::Request) -> Response {
    let Some(join) = &d.join else {
        return super::not_found(State(d)).await;
    };
    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| *p);
    let headers = parts.headers;
    let body: Bytes = match axum::body::to_bytes(body, super::BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            let body = html! { (paragraph(&d, "The request is too large.")) };
            return page(&d, StatusCode::PAYLOAD_TOO_LARGE, "Subscribe", body);
        }
    };
    let mut email = String::new();
    let mut name = String::new();
    let mut honeypot = false;
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "email" => email = v.into_owned(),
            "name" => name = v.chars().take(NAME_MAX).collect(),
            k if k == crate::render::HONEYPOT => honeypot |= !v.trim().is_empty(),
            _ => {}
        }
    }
    let address = match parse_address(&email) {
        Ok(a) => a,
        Err(m) => {
            let body = html! {
                (heading(&d, "Subscribe"))
                (form(&d, Some(&format!("Please check the address: {m}.")), &email, &name))
            };
            return no_store(page(&d, StatusCode::BAD_REQUEST, "Subscribe", body));
        }
    };
    let ip = client_ip(&d, peer, &headers);
    if ip.is_some_and(|ip| join.per_ip.check_key(&ip).is_err()) {
        d.metrics.subscription(SubscriptionEvent::rejected);
        tracing::info!("sign-up refused: the client's hourly limit is reached");
        let body = html! {
            (heading(&d, "Too many requests"))
            (paragraph(&d, "Too many sign-up requests came from your network. Please try again in an hour."))
        };
        return no_store(page(&d, StatusCode::TOO_MANY_REQUESTS, "Subscribe", body));
    }
    if honeypot {
        d.metrics.subscription(SubscriptionEvent::rejected);
        tracing::info!("sign-up refused: the hidden field was filled in (a bot)");
    } else {
        let name = Some(one_line(&name)).filter(|n| !n.is_empty());
        if !join.queue.offer(Request { address, name }) {
            d.metrics.subscription(SubscriptionEvent::rejected);
            tracing::warn!("sign-up refused: the sign-up queue is full");
        }
    }
    // The same answer whatever happened to the request.
    let ttl = humantime::format_duration(d.app.config.server.confirm_ttl);
    let body = html! {
        (heading(&d, "Check your inbox"))
        (paragraph(&d, &format!(
            "If this address is not subscribed yet, a message with a confirmation link is on its way to it. Open the link within {ttl} to start receiving {}.",
            d.app.config.newsletter.kicker
        )))
    };
    no_store(page(&d, StatusCode::OK, "Check your inbox", body))
}

/// The page for a link that is expired or not genuine: the form again.
fn bad_link(d: &Site, e: TokenError) -> Response {
    let (status, text) = match e {
        TokenError::Expired => (
            StatusCode::GONE,
            "This confirmation link has expired. Ask again below, and open the new link within its time.",
        ),
        TokenError::Invalid => (
            StatusCode::BAD_REQUEST,
            "This confirmation link is not valid (it may have been cut short by your mail program). Ask again below.",
        ),
    };
    let body = html! {
        (heading(d, "Subscribe"))
        (paragraph(d, text))
        (form(d, None, "", ""))
    };
    no_store(page(d, status, "Subscribe", body))
}

async fn confirm_page(State(d): Shared, token: Result<Path<String>, PathRejection>) -> Response {
    let Some(join) = &d.join else {
        return super::not_found(State(d)).await;
    };
    let opened = token
        .map_err(|_| TokenError::Invalid)
        .and_then(|Path(t)| join.mailer.open(&t, d.app.clock.now_ms()));
    if let Err(e) = opened {
        return bad_link(&d, e);
    }
    let n = &d.app.config.newsletter;
    let body = html! {
        (heading(&d, &format!("Confirm your subscription to {}", n.kicker)))
        (paragraph(&d, "Press the button to start receiving the newsletter. Nothing changes until you do."))
        // No action: the form posts to this very URL, token included.
        form method="post" {
            button type="submit" style=(d.app.templates.style("page-button")) { "Confirm subscription" }
        }
    };
    no_store(page(&d, StatusCode::OK, "Confirm subscription", body))
}

async fn confirm(State(d): Shared, token: Result<Path<String>, PathRejection>) -> Response {
    let Some(join) = &d.join else {
        return super::not_found(State(d)).await;
    };
    let now = d.app.clock.now_ms();
    let opened = token
        .map_err(|_| TokenError::Invalid)
        .and_then(|Path(t)| join.mailer.open(&t, now));
    let c = match opened {
        Ok(c) => c,
        Err(e) => return bad_link(&d, e),
    };
    let tag = d.key.tag(c.address.as_ref());
    let hash = d.key.forget_hash(c.address.as_ref());
    let confirmed = d
        .ledger
        .with(move |l| l.confirm_signup(&c.address, c.name.as_deref(), &hash, c.requested_at, now))
        .await;
    match confirmed {
        Ok(Confirmed::Subscribed) => {
            d.metrics.subscription(SubscriptionEvent::confirmed);
            tracing::info!(reader = %tag, "subscription confirmed");
        }
        Ok(Confirmed::Already) => {
            tracing::debug!(reader = %tag, "subscription confirmed again: nothing changed")
        }
        // A link mailed before its owner asked to be forgotten: it stays forgotten.
        Ok(Confirmed::Forgotten) => {
            tracing::info!(reader = %tag, "confirmation of a forgotten address: nothing changed");
            return bad_link(&d, TokenError::Invalid);
        }
        Err(e) => return super::server_error(&d, e),
    }
    let t = &d.app.templates;
    let n = &d.app.config.newsletter;
    let archive = d
        .app
        .config
        .server
        .public_url
        .join("archive/")
        .expect("public_url is a base URL");
    let body = html! {
        (heading(&d, "You're subscribed"))
        p style=(t.style("paragraph")) {
            "Thank you. " (n.kicker) " will come to this address once a month. Past issues are in the "
            a style=(t.style("link")) href=(archive.as_str()) { "archive" } "."
        }
    };
    no_store(page(&d, StatusCode::OK, "Subscribed", body))
}
