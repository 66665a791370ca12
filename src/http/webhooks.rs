//! `POST /webhooks/bounce`: a relay or an MTA's pipe hands brief one returned message (a raw
//! RFC 5322 message as the body), which goes to the same bounce parser and policy as
//! `brief bounces import` and the IMAP mailbox.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use tower_http::limit::RequestBodyLimitLayer;

use super::error::{axum_json, json_error};
use super::site::{client_of, Site};
use crate::intake::BounceHandling;

/// The largest message the webhook takes by default (`[bounces] max_size`): a bounce with the
/// original's headers is a few kilobytes, one returning the whole original rarely passes a few
/// hundred.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// The webhook's route, with its own body limit, `[bounces] max_size` (the rest of the site
/// takes 4 KiB); absent (404) unless `[bounces] webhook_token_env` names a variable that is
/// set.
pub(super) fn routes(site: &Site) -> Router<Arc<Site>> {
    let Some(bounces) = site
        .app
        .config
        .bounces
        .as_ref()
        .filter(|b| b.webhook_token.is_some())
    else {
        return Router::new();
    };
    let limit = usize::try_from(bounces.max_size).unwrap_or(WEBHOOK_BODY_LIMIT);
    Router::new()
        .route("/webhooks/bounce", post(bounce))
        .layer(RequestBodyLimitLayer::new(limit))
}

/// Takes one returned message. Answers `200` with what it changed (JSON) whatever the message
/// was, so that a pipe does not retry an auto-reply forever; `401` without the right token,
/// `429` after a few wrong tokens from one client (`door::Bearers`), `400` for an empty body, and `413` past `[bounces] max_size`, each changing nothing.
async fn bounce(
    State(d): State<Arc<Site>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(expected) = d
        .app
        .config
        .bounces
        .as_ref()
        .and_then(|b| b.webhook_token.as_ref())
    else {
        return json_error(StatusCode::NOT_FOUND, "no bounce webhook");
    };
    let client = client_of(&d, peer, &headers);
    if let Err(refused) = d
        .bearers
        .check(client, &headers, expected.expose(), "bounce webhook")
    {
        return refused.response("brief bounces");
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the body must be the returned message (RFC 5322), and it is empty",
        );
    }
    let site = d.clone();
    let taken = d
        .ledger
        .with(move |l| crate::intake::take_bounce(&site.app, l, &site.key, &site.metrics, &body))
        .await;
    let taken = match taken {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error.message = %e, "bounce webhook failed: {e:#}");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "the ledger failed");
        }
    };
    let (outcome, issue, suppressed) = match &taken.outcome {
        BounceHandling::Ignored => ("ignored", None, None),
        BounceHandling::Unattributed => ("unattributed", None, None),
        BounceHandling::Unverified(t) => ("unverified", Some(t.issue.clone()), None),
        BounceHandling::Duplicate(t) => ("duplicate", Some(t.issue.clone()), None),
        BounceHandling::Recorded { target, suppressed } => (
            "recorded",
            Some(target.issue.clone()),
            suppressed.map(|r| r.as_str()),
        ),
    };
    let r = &taken.report;
    (
        StatusCode::OK,
        axum_json(&serde_json::json!({
            "kind": r.kind.as_str(),
            "outcome": outcome,
            "issue": issue,
            "status": r.status,
            "suppressed": suppressed,
            "note": r.note,
        })),
    )
        .into_response()
}
