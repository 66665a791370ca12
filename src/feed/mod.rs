//! Remote feeds (JSON Feed 1.1, RSS 2.0, Atom): fetched with hard limits, cleaned, made entries.
//!
//! [`collect`] is what an issue calls: it fetches every `[[content.feeds]]` concurrently, turns
//! their items into [`Entry`] values, keeps those dated inside the issue's [`Window`] and not
//! already sent in an earlier issue, and sorts them by date. [`parse`] is its pure core, bytes
//! of one feed in, entries out.
//!
//! # How an item becomes an entry
//! - **Title**: plain text through [`issue::one_line`] (CR, LF and control characters removed,
//!   whitespace folded; an HTML title is reduced to its text first), at most 200 characters. An
//!   item without a title takes the first words of its body (up to 80 characters and "…"), as
//!   JSON Feed allows title-less notes; an item with neither is left out with a warning.
//! - **Date**: published, else updated, as a UTC calendar date; an item with neither is left
//!   out with a warning.
//! - **Link**: the item's first plain or `alternate` link, resolved against the feed URL; an
//!   item without an http or https link is left out with a warning.
//! - **Body**: the content, else the summary, cleaned to a small allow-list (p, a, em, strong,
//!   i, b, ul, ol, li, br; links only to http, https and mailto, with
//!   `rel="noopener noreferrer"`), plus a plain-text rendering of it. It becomes one section
//!   labelled with the feed's `label`; an item whose body is empty gets no section.
//! - **Language**: the feed's `lang` in the config, else the item's own (Atom `xml:lang` on its
//!   `<content>`), else the feed's (RSS `<language>`, Atom `xml:lang`, JSON Feed `language`);
//!   an item goes into the edition of the configured language it matches (by prefix: `es-MX` is
//!   `es`), and an item without one, or with one no edition is in, into every edition (see
//!   `App::collect_editions`).
//! - **Key** ([`EntrySource::Feed::item_key`](crate::issue::EntrySource)): the item's id when it
//!   is a URI (`https://..`, `tag:..`, `urn:uuid:..`); an id that is not (JSON Feed ids like
//!   `"1"`) is prefixed with the feed URL and a space, so two feeds' item 1 stay apart; an item
//!   without an id is keyed by its link. Keys are what `already_sent` holds.
//!
//! # Failures
//! A failed fetch is a [`FeedFailure`] naming the URL and the reason. With
//! [`FetchPolicy::Retry`], connection errors, timeouts and 408, 429 and 5xx answers are retried
//! with exponential backoff; a 404, a too-large body or a parse error is not, since retrying
//! would get the same answer. A feed marked `optional` that still fails is left out and reported
//! in [`Collected::skipped`]; any other failure fails [`collect`] with [`FeedErrors`]. A stale
//! cached copy is never used in place of a failed fetch: an issue either has a feed's current
//! items or says loudly that it could not get them. Only the console's pages, which must not
//! fetch on a page load, show an issue from the cached copies ([`collect_cached`]); what is sent
//! is always fetched.

mod cache;
mod clean;
mod failure;
mod fetch;

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::StatusCode;
use url::Url;

use crate::clock::Clock;
use crate::config;
use crate::issue::{self, Body, Entry, EntrySource, IssueId, SanitizedHtml, Section};
use crate::lang::Lang;

pub use failure::{FailureKind, FeedFailure, MAX_REDIRECTS};
pub(crate) use fetch::cause;
pub use fetch::USER_AGENT;

/// The longest title kept, in characters; longer ones end in "…".
const MAX_TITLE_CHARS: usize = 200;
/// The length of a title made from the body of an item that has none.
const FALLBACK_TITLE_CHARS: usize = 80;

/// The dates an issue takes feed items from: `start` inclusive, `end` exclusive, compared with
/// each item's date in UTC.
///
/// `calendar-month` is [`Window::calendar_month`]; `since-last-issue` is
/// `Window { start: previous issue's date, end: this issue's date }`, so consecutive issues
/// tile the calendar without a gap or an overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Window {
    /// The issue's calendar month.
    pub fn calendar_month(issue: IssueId) -> Window {
        Window {
            start: issue.first_day(),
            end: issue.next_first_day(),
        }
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date < self.end
    }
}

/// How hard to try a fetch that fails for a transient reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchPolicy {
    /// One attempt: for `check` and `preview`, where staff are waiting for the answer.
    Once,
    /// Up to `attempts` attempts in all, waiting `first_backoff`, then twice as long each time:
    /// for the scheduled send, where nobody is watching and a blip must not cancel the issue.
    Retry {
        attempts: u32,
        first_backoff: Duration,
    },
}

impl FetchPolicy {
    /// The policy of the scheduled send: 4 attempts over about a minute of waiting (10 s, 20 s,
    /// 40 s), plus the fetches themselves.
    pub const SCHEDULED: FetchPolicy = FetchPolicy::Retry {
        attempts: 4,
        first_backoff: Duration::from_secs(10),
    };
}

/// What [`collect`] found.
#[derive(Debug, Default)]
pub struct Collected {
    /// The new items inside the window, as entries numbered 0, sorted by date.
    pub entries: Vec<Entry>,
    /// The optional feeds that failed, left out of the issue.
    pub skipped: Vec<FeedFailure>,
}

/// The failures of the required feeds: the error of [`collect`] when any failed. Lists each.
#[derive(Debug)]
pub struct FeedErrors(pub Vec<FeedFailure>);

impl fmt::Display for FeedErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() > 1 {
            write!(f, "{} feeds failed: ", self.0.len())?;
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FeedErrors {}

/// Why [`collect`] returned no entries.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Required feeds failed (after the retries of the policy).
    #[error(transparent)]
    Feeds(#[from] FeedErrors),
    /// The HTTP client or the cache folder could not be set up.
    #[error("cannot prepare the feed client: {0:#}")]
    Setup(anyhow::Error),
}

/// Fetches every configured feed concurrently and returns the items dated inside `window` whose
/// key is not in `already_sent`, as entries (number 0) sorted by date; items with the same key
/// in two feeds are kept once.
///
/// The last good copy of each feed is cached in `cache_dir` (created when missing) and used when
/// the server answers 304 to a conditional GET.
///
/// # Errors
/// [`CollectError::Feeds`] when a feed that is not `optional` fails (after the retries of
/// `policy`), naming each such feed's URL and reason; [`CollectError::Setup`] when the HTTP
/// client cannot be built.
#[tracing::instrument(skip_all, fields(feeds = content.feeds.len()))]
pub async fn collect(
    content: &config::Content,
    cache_dir: &Path,
    window: Window,
    already_sent: &HashSet<String>,
    policy: FetchPolicy,
    clock: &dyn Clock,
) -> Result<Collected, CollectError> {
    if content.feeds.is_empty() {
        return Ok(Collected::default());
    }
    let results = fetch_each(content, cache_dir, policy, clock).await?;
    Ok(gather(content, window, already_sent, results)?)
}

/// Fetches every configured feed with `policy`, concurrently, through the cache in
/// `cache_dir`: each feed's items or its failure, in the config's order.
async fn fetch_each(
    content: &config::Content,
    cache_dir: &Path,
    policy: FetchPolicy,
    clock: &dyn Clock,
) -> Result<Vec<Result<Vec<Entry>, FeedFailure>>, CollectError> {
    let fetcher = fetch::Fetcher::new(content.feed_timeout, content.feed_max_bytes, cache_dir)
        .map_err(CollectError::Setup)?;
    Ok(futures_util::future::join_all(
        content
            .feeds
            .iter()
            .map(|feed| fetch_feed(&fetcher, feed, policy, clock)),
    )
    .await)
}

/// The items of every configured feed as its last fetched copy has them, never fetching: what
/// the console's pages show, so no page load makes a request. A feed without a cached copy
/// fails with [`FailureKind::NotFetched`] (left out with a warning when `optional`), and the
/// rest is as [`collect`]. Blocking: call it off the async threads.
///
/// # Errors
/// [`CollectError::Feeds`] when a feed that is not `optional` has no usable copy.
pub fn collect_cached(
    content: &config::Content,
    cache_dir: &Path,
    window: Window,
    already_sent: &HashSet<String>,
) -> Result<Collected, CollectError> {
    let results = content.feeds.iter().map(|feed| {
        let copy = cache::read_blocking(cache_dir, &feed.url).unwrap_or_else(|e| {
            tracing::warn!(feed = %feed.url, error.message = %e, "cannot read the cached copy of a feed");
            None
        });
        match copy {
            Some(c) => parse(&c.body, feed),
            None => Err(FeedFailure {
                url: feed.url.clone(),
                kind: FailureKind::NotFetched,
            }),
        }
    });
    Ok(gather(content, window, already_sent, results.collect())?)
}

/// What the cache knows of one configured feed: for the console.
#[derive(Debug)]
pub struct FeedStatus {
    pub url: Url,
    pub label: Option<String>,
    /// When its copy was last confirmed current (Unix milliseconds); `None`: never fetched
    /// (or fetched by a version that did not note the time).
    pub fetched_at: Option<i64>,
    /// Whether there is a cached copy at all.
    pub cached: bool,
    /// The last fetch, when it failed: when (Unix milliseconds), and why.
    pub failed: Option<(i64, String)>,
}

/// The cache's state of every configured feed, in the config's order. Blocking.
pub fn statuses(content: &config::Content, cache_dir: &Path) -> Vec<FeedStatus> {
    content
        .feeds
        .iter()
        .map(|feed| {
            let copy = cache::read_blocking(cache_dir, &feed.url).ok().flatten();
            FeedStatus {
                url: feed.url.clone(),
                label: feed.label.clone(),
                fetched_at: copy.as_ref().and_then(|c| c.fetched_at),
                cached: copy.is_some(),
                failed: cache::read_failure_blocking(cache_dir, &feed.url)
                    .map(|n| (n.at, n.message)),
            }
        })
        .collect()
}

/// Fetches every configured feed once, concurrently, into the cache (the console's "Fetch
/// feeds now"): for each feed, its number of items or its failure, in the config's order.
///
/// # Errors
/// [`CollectError::Setup`] when the HTTP client cannot be built.
pub async fn fetch_all(
    content: &config::Content,
    cache_dir: &Path,
    clock: &dyn Clock,
) -> Result<Vec<Result<usize, FeedFailure>>, CollectError> {
    let results = fetch_each(content, cache_dir, FetchPolicy::Once, clock).await?;
    Ok(results.into_iter().map(|r| r.map(|e| e.len())).collect())
}

/// Keeps the items of `results` (one per configured feed) dated inside `window` and not in
/// `already_sent`, once each, sorted by date; fails when a feed that is not `optional` failed.
fn gather(
    content: &config::Content,
    window: Window,
    already_sent: &HashSet<String>,
    results: Vec<Result<Vec<Entry>, FeedFailure>>,
) -> Result<Collected, FeedErrors> {
    let mut collected = Collected::default();
    let mut failed = Vec::new();
    let mut seen = HashSet::new();
    for (feed, result) in content.feeds.iter().zip(results) {
        match result {
            Ok(entries) => {
                for entry in entries {
                    let key = item_key(&entry).unwrap_or_default().to_string();
                    if window.contains(entry.date)
                        && !already_sent.contains(&key)
                        && seen.insert(key)
                    {
                        collected.entries.push(entry);
                    }
                }
            }
            Err(failure) if feed.optional => {
                tracing::warn!(
                    feed = %feed.url,
                    error.message = %failure,
                    "optional feed left out of the issue"
                );
                collected.skipped.push(failure);
            }
            Err(failure) => failed.push(failure),
        }
    }
    if !failed.is_empty() {
        return Err(FeedErrors(failed));
    }
    // Stable: items of one date keep the order of the config and of their feed.
    collected.entries.sort_by_key(|e| e.date);
    Ok(collected)
}

fn item_key(entry: &Entry) -> Option<&str> {
    match &entry.source {
        EntrySource::Feed { item_key, .. } => Some(item_key),
        EntrySource::File(_) => None,
    }
}

/// [`fetch_with_retries`], noting a failure beside the cached copy (and clearing the note of
/// an earlier one after a good fetch), so the console can say how the last fetch went.
async fn fetch_feed(
    fetcher: &fetch::Fetcher,
    feed: &config::Feed,
    policy: FetchPolicy,
    clock: &dyn Clock,
) -> Result<Vec<Entry>, FeedFailure> {
    let result = fetch_with_retries(fetcher, feed, policy, clock).await;
    let dir = fetcher.cache_dir();
    let noted = match &result {
        Ok(_) => cache::clear_failure(dir, &feed.url).await,
        Err(f) => cache::note_failure(dir, &feed.url, clock.now_ms(), &f.to_string()).await,
    };
    if let Err(e) = noted {
        tracing::warn!(feed = %feed.url, error.message = %e, "cannot note how a feed's fetch went");
    }
    result
}

#[tracing::instrument(skip_all, fields(feed = %feed.url))]
async fn fetch_with_retries(
    fetcher: &fetch::Fetcher,
    feed: &config::Feed,
    policy: FetchPolicy,
    clock: &dyn Clock,
) -> Result<Vec<Entry>, FeedFailure> {
    let (attempts, mut backoff) = match policy {
        FetchPolicy::Once => (1, Duration::ZERO),
        FetchPolicy::Retry {
            attempts,
            first_backoff,
        } => (attempts.max(1), first_backoff),
    };
    let mut attempt = 1;
    loop {
        match fetch_once(fetcher, feed, clock).await {
            Ok(entries) => {
                tracing::debug!(items = entries.len(), "feed fetched");
                return Ok(entries);
            }
            Err(failure) if failure.is_transient() && attempt < attempts => {
                tracing::warn!(
                    error.message = %failure,
                    attempt,
                    retry_in = %humantime::format_duration(backoff),
                    "feed fetch failed, retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
                attempt += 1;
            }
            Err(failure) => return Err(failure),
        }
    }
}

async fn fetch_once(
    fetcher: &fetch::Fetcher,
    feed: &config::Feed,
    clock: &dyn Clock,
) -> Result<Vec<Entry>, FeedFailure> {
    let url = &feed.url;
    let dir = fetcher.cache_dir();
    let cached = cache::read(dir, url).await.unwrap_or_else(|e| {
        tracing::warn!(
            cache = %cache::path(dir, url).display(),
            error.message = %e,
            "cannot read the cached copy of a feed, fetching it whole"
        );
        None
    });
    let validators = cached
        .as_ref()
        .map(|c| c.validators.clone())
        .unwrap_or_default();
    match fetcher.get(url, &validators).await? {
        fetch::Fetched::NotModified => {
            // `get` reports 304 only when we sent validators, which came from this copy.
            let mut copy = cached.ok_or_else(|| FeedFailure {
                url: url.clone(),
                kind: FailureKind::Status(StatusCode::NOT_MODIFIED),
            })?;
            tracing::debug!("feed not modified, using the cached copy");
            let entries = parse(&copy.body, feed)?;
            // The copy is current as of now: noted, for the console's "last fetched".
            copy.fetched_at = Some(clock.now_ms());
            if let Err(e) = cache::write(dir, url, &copy).await {
                tracing::warn!(error.message = %e, "cannot note the time of a feed's fetch");
            }
            Ok(entries)
        }
        fetch::Fetched::Fresh { body, validators } => {
            let entries = parse(&body, feed)?;
            // Only a copy that parsed is a good copy to keep.
            let copy = cache::Cached {
                validators,
                fetched_at: Some(clock.now_ms()),
                body,
            };
            if let Err(e) = cache::write(dir, url, &copy).await {
                tracing::warn!(
                    cache = %cache::path(dir, url).display(),
                    error.message = %e,
                    "cannot cache a feed, the next fetch will not be conditional"
                );
            }
            Ok(entries)
        }
    }
}

/// Parses one feed's bytes (JSON Feed 1.1, RSS 2.0 or Atom; the XML encoding is taken from its
/// prolog) into entries numbered 0, in the feed's order, without any date filtering. Items that
/// cannot become an entry are left out with a warning (see the module docs).
///
/// # Errors
/// [`FailureKind::Parse`] when the bytes are not a feed.
pub fn parse(bytes: &[u8], feed: &config::Feed) -> Result<Vec<Entry>, FeedFailure> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(feed.url.as_str()))
        // feed-rs invents an id (a hash, or a random UUID) for items without one; an empty id
        // tells us there was none, so the key falls back to the link, which is stable.
        .id_generator(|_, _, _| String::new())
        .sanitize_content(false)
        .build();
    let parsed = parser.parse(bytes).map_err(|e| FeedFailure {
        url: feed.url.clone(),
        kind: FailureKind::Parse(e.to_string()),
    })?;
    let feed_lang = parsed.language.as_deref().and_then(|l| Lang::parse(l).ok());
    Ok(parsed
        .entries
        .into_iter()
        .filter_map(|item| entry_of(item, feed, feed_lang.as_ref()))
        .collect())
}

/// The language of an item: its feed's `lang` in the config, else the item's own (Atom
/// `xml:lang` on its `<content>`, which is what feed-rs reads), else the feed's (RSS `<language>`, Atom `xml:lang`, JSON Feed
/// `language`); `None` when none says one that is a language tag.
fn item_lang(
    item: &feed_rs::model::Entry,
    feed: &config::Feed,
    feed_lang: Option<&Lang>,
) -> Option<Lang> {
    feed.lang
        .clone()
        .or_else(|| item.language.as_deref().and_then(|l| Lang::parse(l).ok()))
        .or_else(|| feed_lang.cloned())
}

fn entry_of(
    item: feed_rs::model::Entry,
    feed: &config::Feed,
    feed_lang: Option<&Lang>,
) -> Option<Entry> {
    let lang = item_lang(&item, feed, feed_lang);
    let id = item.id.trim();
    let name = describe(&item);
    let Some(when) = item.published.or(item.updated) else {
        tracing::warn!(feed = %feed.url, item = %name, "feed item left out: it has no date (neither published nor updated)");
        return None;
    };
    let base = item
        .base
        .as_deref()
        .and_then(|b| feed.url.join(b).ok())
        .unwrap_or_else(|| feed.url.clone());
    let Some(link) = pick_link(&item.links, &base) else {
        tracing::warn!(feed = %feed.url, item = %name, "feed item left out: it has no http or https link");
        return None;
    };
    let html = clean::sanitize(&body_html(&item), &link);
    let text = clean::to_text(&html);
    let title = item
        .title
        .as_ref()
        .map(|t| plain_title(t, &link))
        .filter(|t| !t.is_empty())
        .map(|t| shorten(&t, MAX_TITLE_CHARS))
        .or_else(|| {
            let first = text.split("\n\n").next().map(issue::one_line)?;
            (!first.is_empty()).then(|| shorten(&first, FALLBACK_TITLE_CHARS))
        });
    let Some(title) = title else {
        tracing::warn!(feed = %feed.url, item = %name, "feed item left out: it has no title and no text to make one from");
        return None;
    };
    let item_key = if id.is_empty() {
        link.to_string()
    } else if Url::parse(id).is_ok() {
        id.to_string()
    } else {
        format!("{} {id}", feed.url)
    };
    let sections = if text.is_empty() {
        Vec::new()
    } else {
        vec![Section {
            label: feed.label.clone(),
            body: Body::Sanitized(SanitizedHtml::from_cleaned(html, text)),
        }]
    };
    Some(Entry {
        number: 0,
        title,
        date: when.date_naive(),
        link,
        sections,
        source: EntrySource::Feed {
            feed_url: feed.url.clone(),
            label: feed.label.clone(),
            item_key,
            lang,
        },
    })
}

/// How a warning names an item: its id, else its title, else a placeholder.
fn describe(item: &feed_rs::model::Entry) -> String {
    if !item.id.trim().is_empty() {
        return shorten(&issue::one_line(&item.id), 120);
    }
    match &item.title {
        Some(t) if !t.content.trim().is_empty() => shorten(&issue::one_line(&t.content), 120),
        _ => "(without id or title)".into(),
    }
}

fn pick_link(links: &[feed_rs::model::Link], base: &Url) -> Option<Url> {
    links
        .iter()
        .filter(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .filter_map(|l| base.join(l.href.trim()).ok())
        .find(|u| matches!(u.scheme(), "http" | "https"))
}

/// The kinds of text a feed marks its fields with.
enum Markup {
    Html,
    Plain,
    Other,
}

fn markup(media_type: &str) -> Markup {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "text/plain" {
        Markup::Plain
    } else if essence.ends_with("html") || essence.contains("xhtml") {
        Markup::Html
    } else {
        Markup::Other
    }
}

/// The body as (uncleaned) HTML: the content, else the summary; plain text made into
/// paragraphs. Empty when the item has neither in a text form.
fn body_html(item: &feed_rs::model::Entry) -> String {
    let content = item.content.as_ref().and_then(|c| {
        let body = c.body.as_deref().filter(|b| !b.trim().is_empty())?;
        Some((c.content_type.as_str(), body))
    });
    let summary = item
        .summary
        .as_ref()
        .filter(|s| !s.content.trim().is_empty())
        .map(|s| (s.content_type.as_str(), s.content.as_str()));
    for (media_type, text) in content.into_iter().chain(summary) {
        match markup(media_type) {
            Markup::Html => return text.to_string(),
            Markup::Plain => return clean::text_to_html(text),
            Markup::Other => {}
        }
    }
    String::new()
}

fn plain_title(title: &feed_rs::model::Text, link: &Url) -> String {
    match markup(title.content_type.as_str()) {
        Markup::Html => issue::one_line(&clean::to_text(&clean::sanitize(&title.content, link))),
        Markup::Plain | Markup::Other => issue::one_line(&title.content),
    }
}

/// `s` cut to at most `max` characters, at a word boundary when one is near, ending in "…".
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if i > cut.len() / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests;
