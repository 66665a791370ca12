//! One bounded HTTP GET of a feed: timeouts, redirect and size limits, conditional requests.
//!
//! Everything a hostile or broken server can do to us is bounded here: a server that never
//! answers or stops mid-body hits the total timeout, an endless body hits the byte limit as
//! soon as it is crossed (the body is streamed, never buffered whole first), a redirect loop hits
//! the redirect limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::StatusCode;
use url::Url;

use super::cache::Validators;
use super::failure::{FailureKind, FeedFailure, MAX_REDIRECTS};

/// The User-Agent of every feed request, so partners can tell who fetches their feed.
pub const USER_AGENT: &str = concat!(
    "brief/",
    env!("CARGO_PKG_VERSION"),
    " (+newsletter feed fetcher)"
);

/// Connecting never takes longer than this, even when the total timeout is longer, so an
/// unreachable host fails fast enough to leave time for retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer to one GET.
pub(crate) enum Fetched {
    /// A 2xx answer with its body and the validators to send next time.
    Fresh {
        body: Vec<u8>,
        validators: Validators,
    },
    /// 304: the copy named by the validators we sent is still current.
    NotModified,
}

/// A shared HTTP client with the limits of `[content]`.
pub(crate) struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_bytes: u64,
    cache_dir: PathBuf,
}

impl Fetcher {
    /// Builds the client. Installs ring as rustls' process-wide crypto provider if none is
    /// installed yet: reqwest's `rustls-no-provider` feature leaves that choice to us.
    pub fn new(timeout: Duration, max_bytes: u64, cache_dir: &Path) -> anyhow::Result<Fetcher> {
        // An error means a provider is already installed, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut default_headers = HeaderMap::new();
        default_headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/feed+json, application/json;q=0.9, application/atom+xml, \
                 application/rss+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
            ),
        );
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(default_headers)
            .connect_timeout(timeout.min(CONNECT_TIMEOUT))
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .gzip(true)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for feeds: {e}"))?;
        Ok(Fetcher {
            client,
            timeout,
            max_bytes,
            cache_dir: cache_dir.to_path_buf(),
        })
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// One GET of `url`, conditional on `validators` when there are any. The whole exchange,
    /// connection, headers and body, must end within the configured timeout.
    pub async fn get(&self, url: &Url, validators: &Validators) -> Result<Fetched, FeedFailure> {
        let fail = |kind| FeedFailure {
            url: url.clone(),
            kind,
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(fail(FailureKind::Scheme));
        }
        match tokio::time::timeout(self.timeout, self.exchange(url, validators)).await {
            Ok(result) => result.map_err(fail),
            // Dropping the exchange closes the connection, so a stalled server is let go.
            Err(_elapsed) => Err(fail(FailureKind::Timeout(self.timeout))),
        }
    }

    async fn exchange(&self, url: &Url, validators: &Validators) -> Result<Fetched, FailureKind> {
        let mut request = self.client.get(url.clone());
        if let Some(etag) = &validators.etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, lm);
        }
        let mut response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && !validators.is_empty() {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FailureKind::Status(status));
        }
        // A declared length over the limit fails before a byte of the body is read. With gzip,
        // reqwest reports no length, and the streamed check below catches it.
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(FailureKind::TooLarge(self.max_bytes));
        }
        let validators = Validators {
            etag: header_text(response.headers(), header::ETAG),
            last_modified: header_text(response.headers(), header::LAST_MODIFIED),
        };
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            // Counted after decompression, so a small gzip bomb is cut off just the same.
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(FailureKind::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Fresh { body, validators })
    }

    fn classify(&self, e: reqwest::Error) -> FailureKind {
        if e.is_timeout() {
            FailureKind::Timeout(self.timeout)
        } else if e.is_redirect() {
            FailureKind::TooManyRedirects
        } else {
            FailureKind::Connection(cause(&e))
        }
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The causes under a reqwest error, which are what a reader needs ("tcp connect error:
/// Connection refused"); reqwest's own message repeats the URL, which our message names already.
/// The link check (`crate::links`) words its failures with it too.
pub(crate) fn cause(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        // hyper and reqwest often wrap an error in one that prints the same text, and
        // hyper-util's "client error (Connect)" only says which layer is speaking.
        if parts.last() != Some(&text) && !text.starts_with("client error (") {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}
