//! The HTTP side's error answers: [`PageError`], what a page handler returns with `?` (the
//! page itself is drawn by [`crate::http`]'s error-page layer, which has the `Site` that
//! `IntoResponse` lacks), and the JSON errors of the API endpoints.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A JSON body (with its newline) and its content type.
pub(super) fn axum_json(
    value: &serde_json::Value,
) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{value}\n"),
    )
}

/// A JSON error answer: `{"error": message}` with `status`.
pub(super) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum_json(&serde_json::json!({ "error": message }))).into_response()
}

/// The JSON answer of an endpoint that failed on our side: `e` is logged with its chain, and
/// the client is told only that it failed (the log says why).
pub(super) fn json_server_error(e: anyhow::Error) -> Response {
    tracing::error!(error.message = %e, "request failed: {e:#}");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request failed on the server: its log says why",
    )
}

/// Why a page could not be answered; each kind is one status and one page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Nothing at this address: the site's 404 page.
    #[error("not found")]
    NotFound,
    /// Something failed on our side: logged once, with its chain, and the 500 page.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The page a [`PageError`] asks for, left in its response's extensions for the error-page
/// layer to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ErrorPage {
    NotFound,
    Internal,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, page) = match self {
            PageError::NotFound => (StatusCode::NOT_FOUND, ErrorPage::NotFound),
            PageError::Internal(e) => {
                tracing::error!(error.message = %e, "request failed: {e:#}");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorPage::Internal)
            }
        };
        let mut res = status.into_response();
        res.extensions_mut().insert(page);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_error_is_its_status_and_asks_for_its_page() {
        let cases = [
            (
                PageError::NotFound,
                StatusCode::NOT_FOUND,
                ErrorPage::NotFound,
            ),
            (
                PageError::Internal(anyhow::anyhow!("disk full").context("reading the ledger")),
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorPage::Internal,
            ),
        ];
        for (error, status, page) in cases {
            let res = error.into_response();
            assert_eq!(res.status(), status);
            assert_eq!(res.extensions().get::<ErrorPage>(), Some(&page));
        }
    }

    #[test]
    fn question_mark_turns_any_error_into_an_internal_one() {
        fn failing() -> Result<(), PageError> {
            Err(anyhow::anyhow!("no such table"))?;
            Ok(())
        }
        assert!(
            matches!(failing(), Err(PageError::Internal(e)) if e.to_string() == "no such table")
        );
    }
}
