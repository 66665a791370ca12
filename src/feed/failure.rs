//! Why a feed could not be used ([`FeedFailure`], [`FailureKind`]), and whether trying again
//! later might help; with the redirect limit, which the failure names.

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

/// At most this many redirects are followed; the next one is an error.
pub const MAX_REDIRECTS: usize = 3;

/// Why one feed could not be used. Displays as `feed URL: reason`.
#[derive(Debug, thiserror::Error)]
#[error("feed {url}: {kind}")]
pub struct FeedFailure {
    /// The feed's configured URL (not where redirects led).
    pub url: Url,
    pub kind: FailureKind,
}

/// The reason a feed could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FailureKind {
    /// No connection, or it broke: DNS, refused, reset, TLS.
    #[error("connection failed: {0}")]
    Connection(String),
    /// The server answered with a status other than 2xx (or an unasked-for 304).
    #[error("HTTP status {0}")]
    Status(StatusCode),
    /// The whole fetch, body included, took longer than `content.feed_timeout`.
    #[error("timed out after {} (`content.feed_timeout`)", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The body grew past `content.feed_max_bytes` (counted after decompression).
    #[error("too large: more than {0} bytes (`content.feed_max_bytes`)")]
    TooLarge(u64),
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("too many redirects: more than {MAX_REDIRECTS}")]
    TooManyRedirects,
    /// The body is not a JSON Feed, RSS or Atom document.
    #[error("cannot parse: {0}")]
    Parse(String),
    /// The configured URL is not http or https.
    #[error("not an http or https URL")]
    Scheme,
    /// Collecting from the cache only (the console's pages), and the feed has no cached copy.
    #[error("not fetched yet: press Fetch feeds now")]
    NotFetched,
}

impl FeedFailure {
    /// Whether trying again later might succeed.
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            FailureKind::Connection(_) | FailureKind::Timeout(_) => true,
            FailureKind::Status(s) => {
                s.is_server_error()
                    || *s == StatusCode::TOO_MANY_REQUESTS
                    || *s == StatusCode::REQUEST_TIMEOUT
            }
            FailureKind::TooLarge(_)
            | FailureKind::TooManyRedirects
            | FailureKind::Parse(_)
            | FailureKind::Scheme
            | FailureKind::NotFetched => false,
        }
    }
}
