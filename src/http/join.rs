//! The sign-up pages: `GET`/`POST /subscribe` and `GET`/`POST /confirm/{token}`.
//!
//! `POST /subscribe` answers the same page, byte for byte, whatever the state of the address
//! (new, pending, active, unsubscribed, bounced), so it reveals nothing about who is subscribed;
//! only a malformed address gets the form back with the error (400), and a client past its
//! hourly limit a 429 (counted in the ledger, on the sign-up mailer's connection, so a restart
//! does not reset it). It does no other ledger work and no SMTP work itself: it offers the
//! request to the sign-up queue. A `GET` of a confirmation link shows a button and changes nothing (link
//! scanners follow links); the `POST` of that button confirms, and doing it again changes
//! nothing. An expired or altered link gets the form again, and so does a link older than the
//! address's last unsubscribe, bounce or complaint (409): consent moves forward only.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use super::error::PageError;
use super::site::{client_ip, Shared, Site};
use super::ui::{archive_link, heading, no_store, page_in, paragraph, Face};
use crate::address::parse_address;
use crate::clock::Millis;
use crate::issue::one_line;
use crate::ledger::{Confirmed, Confirming};
use crate::metrics::SubscriptionEvent;
use crate::signup::Request;
use crate::token::TokenError;

/// An hour: the window of the per-client limit.
pub(super) const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

/// The longest name kept from the form: the one cap of every display name.
const NAME_MAX: usize = crate::issue::NAME_MAX;

/// The name of the sign-up limit in the ledger's rate limits.
const SIGNUP_LIMIT: &str = "signup-per-client";

/// The sign-up routes.
pub(super) fn routes(r: Router<Arc<Site>>) -> Router<Arc<Site>> {
    r.route("/subscribe", get(form_page).post(subscribe))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
}

/// The sign-up form in `face`'s language, posting to `public_url/subscribe`.
fn form(d: &Site, face: &Face, error: Option<&str>, email: &str, name: &str) -> Markup {
    let action = d
        .app
        .config
        .server
        .public_url
        .join("subscribe")
        .expect("public_url is a base URL");
    crate::render::signup_form(face.ctx(d), &action, error, email, name)
}

/// A sign-up page in `face`'s language.
fn join_page(d: &Site, face: &Face, status: StatusCode, title_id: &str, body: Markup) -> Response {
    no_store(page_in(d, face, status, &face.word(d, title_id), body))
}

async fn form_page(State(d): Shared, face: Face) -> Response {
    let body = html! {
        (heading(&d, &face.word(&d, "subscribe-heading")))
        (paragraph(&d, &face.word(&d, "subscribe-lead")))
        (form(&d, &face, None, "", ""))
    };
    join_page(&d, &face, StatusCode::OK, "subscribe-title", body)
}

async fn subscribe(
    State(d): Shared,
    face: Face,
    req: axum::extract::Request,
) -> Result<Response, PageError> {
    let Some(join) = &d.join else {
        return Err(PageError::NotFound);
    };
    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| *p);
    let headers = parts.headers;
    let body: Bytes = match axum::body::to_bytes(body, super::site::BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            let body = html! { (paragraph(&d, &face.word(&d, "request-too-large"))) };
            return Ok(join_page(
                &d,
                &face,
                StatusCode::PAYLOAD_TOO_LARGE,
                "subscribe-title",
                body,
            ));
        }
    };
    let mut email = String::new();
    let mut name = String::new();
    let mut honeypot = false;
    let languages = &d.app.config.newsletter.languages;
    let mut lang = None;
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "email" => email = v.into_owned(),
            "name" => name = v.chars().take(NAME_MAX).collect(),
            "lang" => lang = languages.find(&v).cloned(),
            k if k == crate::render::HONEYPOT => honeypot |= !v.trim().is_empty(),
            _ => {}
        }
    }
    // The answer speaks the language chosen on the form.
    let face = match &lang {
        Some(l) => face.speaking(l.clone()),
        None => face,
    };
    let address = match parse_address(&email) {
        Ok(a) => a,
        Err(e) => {
            let words = face.ctx(&d).words;
            let why = words.with_text("check-address", "problem", &words.get(e.catalogue_id()));
            let body = html! {
                (heading(&d, &face.word(&d, "subscribe-title")))
                (form(&d, &face, Some(&why), &email, &name))
            };
            return Ok(join_page(
                &d,
                &face,
                StatusCode::BAD_REQUEST,
                "subscribe-title",
                body,
            ));
        }
    };
    let ip = client_ip(&d, peer, &headers);
    let within = match ip {
        None => true,
        Some(ip) => {
            // A keyed tag: the ledger keeps no client's IP.
            let (client, per_hour, now) = (
                d.key.tag(&ip.to_string()),
                join.per_hour,
                d.app.clock.instant(),
            );
            let counted = join
                .limits
                .with(move |l| l.take_rate_limit(SIGNUP_LIMIT, &client, per_hour, HOUR, now))
                .await;
            counted?
        }
    };
    if !within {
        d.metrics.subscription(SubscriptionEvent::rejected);
        tracing::info!("sign-up refused: the client's hourly limit is reached");
        let body = html! {
            (heading(&d, &face.word(&d, "too-many-heading")))
            (paragraph(&d, &face.word(&d, "too-many-text")))
        };
        return Ok(join_page(
            &d,
            &face,
            StatusCode::TOO_MANY_REQUESTS,
            "subscribe-title",
            body,
        ));
    }
    if honeypot {
        d.metrics.subscription(SubscriptionEvent::rejected);
        tracing::info!("sign-up refused: the hidden field was filled in (a bot)");
    } else {
        let name = Some(one_line(&name)).filter(|n| !n.is_empty());
        // The form's language, else the one the browser asks for.
        let lang = lang.unwrap_or_else(|| {
            let accept = headers.get(axum::http::header::ACCEPT_LANGUAGE);
            languages
                .negotiate(accept.and_then(|v| v.to_str().ok()))
                .clone()
        });
        if !join.queue.offer(Request {
            address,
            name,
            lang,
        }) {
            d.metrics.subscription(SubscriptionEvent::rejected);
            tracing::warn!("sign-up refused: the sign-up queue is full");
        }
    }
    // The same answer whatever happened to the request.
    let words = face.ctx(&d).words;
    let ttl = words.duration(d.app.config.server.confirm_ttl);
    let body = html! {
        (heading(&d, &words.get("check-inbox-title")))
        (paragraph(&d, &words.with_text("check-inbox-text", "ttl", &ttl)))
    };
    Ok(join_page(
        &d,
        &face,
        StatusCode::OK,
        "check-inbox-title",
        body,
    ))
}

/// The page for a link that is expired or not genuine: the form again.
fn bad_link(d: &Site, face: &Face, e: TokenError) -> Response {
    let (status, text) = match e {
        TokenError::Expired => (StatusCode::GONE, "link-expired"),
        TokenError::Invalid => (StatusCode::BAD_REQUEST, "link-invalid"),
    };
    let body = html! {
        (heading(d, &face.word(d, "subscribe-title")))
        (paragraph(d, &face.word(d, text)))
        (form(d, face, None, "", ""))
    };
    join_page(d, face, status, "subscribe-title", body)
}

/// The page for a link older than the reader's last change (an unsubscribe, a bounce, a
/// complaint): nothing changed, and the form again. It says no more than that, since whoever
/// holds the link may not be the address's owner.
fn outdated_link(d: &Site, face: &Face) -> Response {
    let body = html! {
        (heading(d, &face.word(d, "subscribe-title")))
        (paragraph(d, &face.word(d, "link-outdated")))
        (form(d, face, None, "", ""))
    };
    join_page(d, face, StatusCode::CONFLICT, "subscribe-title", body)
}

/// The face of a confirmation link's pages: the language the reader chose on the form (the
/// token carries it), else the request's.
fn reader_face(d: &Site, face: Face, c: &crate::signup::Confirmation) -> Face {
    match c
        .lang
        .as_ref()
        .and_then(|l| d.app.config.newsletter.languages.find(l.as_str()))
    {
        Some(l) => face.speaking(l.clone()),
        None => face,
    }
}

async fn confirm_page(
    State(d): Shared,
    face: Face,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(join) = &d.join else {
        return super::ui::not_found_in(&d, &face);
    };
    let opened = token
        .map_err(|_| TokenError::Invalid)
        .and_then(|Path(t)| join.mailer.open(&t, d.app.clock.now_ms()));
    let face = match opened {
        Err(e) => return bad_link(&d, &face, e),
        Ok(c) => reader_face(&d, face, &c),
    };
    let body = html! {
        (heading(&d, &face.word(&d, "confirm-heading")))
        (paragraph(&d, &face.word(&d, "confirm-lead")))
        // No action: the form posts to this very URL, token included.
        form method="post" {
            button type="submit" style=(d.app.templates.style("page-button")) { (face.word(&d, "confirm-button")) }
        }
    };
    join_page(&d, &face, StatusCode::OK, "confirm-button", body)
}

async fn confirm(
    State(d): Shared,
    face: Face,
    token: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let Some(join) = &d.join else {
        return Err(PageError::NotFound);
    };
    let now = d.app.clock.now_ms();
    let opened = token
        .map_err(|_| TokenError::Invalid)
        .and_then(|Path(t)| join.mailer.open(&t, now));
    let c = match opened {
        Ok(c) => c,
        Err(e) => return Ok(bad_link(&d, &face, e)),
    };
    let face = reader_face(&d, face, &c);
    let tag = d.key.tag(c.address.as_ref());
    let hash = d.key.forget_hash(c.address.as_ref());
    let confirmed = d
        .ledger
        .with(move |l| {
            let confirming = Confirming {
                address: &c.address,
                name: c.name.as_deref(),
                lang: c.lang.as_ref(),
                forget_hash: &hash,
                requested_at: Millis(c.requested_at),
            };
            l.confirm_signup(&confirming, Millis(now))
        })
        .await;
    match confirmed? {
        Confirmed::Subscribed => {
            d.metrics.subscription(SubscriptionEvent::confirmed);
            tracing::info!(reader = %tag, "subscription confirmed");
        }
        Confirmed::Already => {
            tracing::debug!(reader = %tag, "subscription confirmed again: nothing changed")
        }
        // A link mailed before its owner asked to be forgotten: it stays forgotten.
        Confirmed::Forgotten => {
            tracing::info!(reader = %tag, "confirmation of a forgotten address: nothing changed");
            return Ok(bad_link(&d, &face, TokenError::Invalid));
        }
        // Consent moves forward only: a link older than the reader's unsubscribe (or a bounce or
        // complaint since) does not undo it. Asking again makes a new link.
        Confirmed::Outdated(reason) => {
            tracing::info!(reader = %tag, reason = reason.as_str(), "confirmation older than the address's suppression: nothing changed");
            return Ok(outdated_link(&d, &face));
        }
    }
    let body = html! {
        (heading(&d, &face.word(&d, "subscribed-heading")))
        (paragraph(&d, &face.word(&d, "subscribed-text")))
        (archive_link(&d, &face))
    };
    Ok(join_page(
        &d,
        &face,
        StatusCode::OK,
        "subscribed-title",
        body,
    ))
}
