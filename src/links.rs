//! The link check of an issue (`brief check --links`): every link collected once, fetched with limits.
//!
//! [`links_of`] collects an issue's links in the order a reader meets them: each entry's "Learn
//! more" link, the links of its Markdown body (inside bold, emphasis and list items too) and the
//! `href`s of a feed item's cleaned HTML. Only http and https links are kept, each URL once, with
//! the place it first appeared: a file and line, or a feed and item.
//!
//! A [`Checker`] fetches them, [`MAX_CONCURRENT`] at a time: `HEAD` first, and `GET` (headers
//! only, the body is never read) when the server answers `HEAD` with 405 or 501. It follows at
//! most [`MAX_REDIRECTS`] redirects, and gives each link one timeout for the whole exchange,
//! redirects and the fallback included. A link is fine when its final answer is 2xx; anything
//! else is a [`Problem`] of kind [`ProblemKind::Link`], from [`LinkOutcome::problem`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use url::Url;

use crate::error::{Problem, ProblemKind};
use crate::issue::{Block, Body, EntrySource, Inline, Issue};

/// At most this many links are fetched at the same time.
pub const MAX_CONCURRENT: usize = 8;

/// At most this many redirects are followed; the next one is a problem.
pub const MAX_REDIRECTS: usize = 5;

/// The User-Agent of every link check request, so site owners can tell who asks.
pub const USER_AGENT: &str = concat!(
    "brief/",
    env!("CARGO_PKG_VERSION"),
    " (+newsletter link check)"
);

/// One link of an issue, with the place it first appeared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub url: Url,
    pub place: Place,
}

/// Where a link first appeared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// An entry file; `line` is 1-based, `None` when the URL's text is not found in the file
    /// (the file changed, or `Url` wrote the URL differently from how it was typed).
    File { path: PathBuf, line: Option<usize> },
    /// A feed item, named by its key.
    Feed { feed_url: Url, item_key: String },
}

/// Every http and https link of `issue`, each URL once, in the order a reader meets them.
///
/// Reads each entry file to find the line of its links; a file that cannot be read gives links
/// without a line.
pub fn links_of(issue: &Issue) -> Vec<Link> {
    let mut seen = HashSet::new();
    let mut files: HashMap<&Path, Option<String>> = HashMap::new();
    let mut links = Vec::new();
    for entry in &issue.entries {
        let mut urls = vec![entry.link.clone()];
        for section in &entry.sections {
            match &section.body {
                Body::Blocks(blocks) => {
                    for block in blocks {
                        match block {
                            Block::Paragraph(inlines) => inline_links(inlines, &mut urls),
                            Block::List(items) => {
                                for item in items {
                                    inline_links(item, &mut urls);
                                }
                            }
                        }
                    }
                }
                Body::Sanitized(html) => urls.extend(hrefs(html.html())),
            }
        }
        for url in urls {
            if !is_web(&url) || !seen.insert(url.as_str().to_string()) {
                continue;
            }
            let place = match &entry.source {
                EntrySource::File(path) => {
                    let text = files
                        .entry(path.as_path())
                        .or_insert_with(|| std::fs::read_to_string(path).ok());
                    Place::File {
                        path: path.clone(),
                        line: text.as_deref().and_then(|t| line_of_url(t, &url)),
                    }
                }
                EntrySource::Feed {
                    feed_url, item_key, ..
                } => Place::Feed {
                    feed_url: feed_url.clone(),
                    item_key: item_key.clone(),
                },
            };
            links.push(Link { url, place });
        }
    }
    links
}

fn is_web(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// The link targets in `inlines`, in order, looking inside bold, emphasis and link text.
fn inline_links(inlines: &[Inline], out: &mut Vec<Url>) {
    for inline in inlines {
        match inline {
            Inline::Link { url, children } => {
                out.push(url.clone());
                inline_links(children, out);
            }
            Inline::Strong(children) | Inline::Emphasis(children) => inline_links(children, out),
            Inline::Text(_) | Inline::Code(_) | Inline::LineBreak => {}
        }
    }
}

/// The absolute http and https URLs of the `href` attributes in `html`, in order. A simple scan,
/// enough for the feed cleaner's output (quoted values, a few entities), not a parser.
fn hrefs(html: &str) -> Vec<Url> {
    // ASCII lowercasing keeps every byte offset, so a match in `lower` is one in `html`.
    let lower = html.to_ascii_lowercase();
    let mut urls = Vec::new();
    for (at, m) in lower.match_indices("href") {
        if !lower[..at].ends_with(|c: char| c.is_ascii_whitespace()) {
            continue; // part of a longer name, or text
        }
        let rest = html[at + m.len()..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        };
        if let Ok(url) = Url::parse(&unescape(value)) {
            if is_web(&url) {
                urls.push(url);
            }
        }
    }
    urls
}

/// The few character references a serializer writes in an attribute value.
fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The 1-based line of `text` where `url` first appears as written. `Url` adds a `/` to a bare
/// host (`https://a.org` becomes `https://a.org/`), so the form without it is tried too. A match
/// must end where the URL does, so that `https://a.org` is not found inside `https://a.org/x`;
/// failing that, the first match anywhere will do.
fn line_of_url(text: &str, url: &Url) -> Option<usize> {
    let full = url.as_str();
    let short = full.strip_suffix('/');
    let whole = |needle: &str| {
        text.match_indices(needle).map(|(at, _)| at).find(|&at| {
            text[at + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !continues_url(c))
        })
    };
    let at = whole(full)
        .or_else(|| short.and_then(whole))
        .or_else(|| text.find(full))?;
    Some(crate::config::line_of(text, at))
}

/// Whether `c` may go on a URL as typed (quotes, brackets, parentheses and spaces end it).
fn continues_url(c: char) -> bool {
    c.is_alphanumeric() || "-._~:/?#@!$&+,;=%".contains(c)
}

/// What fetching one link came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The final answer, after redirects, was 2xx.
    Fine(StatusCode),
    /// The final answer, after redirects, was not 2xx (a 4xx or 5xx, or a 3xx not followed).
    Answered(StatusCode),
    /// More than [`MAX_REDIRECTS`] redirects.
    TooManyRedirects,
    /// No answer: the connection, TLS or HTTP failed; the short reason.
    Failed(String),
    /// No final answer within the timeout.
    TimedOut(Duration),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answered = |f: &mut fmt::Formatter<'_>, s: &StatusCode| match s.canonical_reason() {
            Some(reason) => write!(f, "answered {} {reason}", s.as_u16()),
            None => write!(f, "answered {}", s.as_u16()),
        };
        match self {
            Verdict::Fine(s) | Verdict::Answered(s) => answered(f, s),
            Verdict::TooManyRedirects => {
                write!(f, "failed: too many redirects (more than {MAX_REDIRECTS})")
            }
            Verdict::Failed(reason) => write!(f, "failed: {reason}"),
            Verdict::TimedOut(t) => write!(f, "timed out after {}", humantime::format_duration(*t)),
        }
    }
}

/// One link and what fetching it came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkOutcome {
    pub link: Link,
    pub verdict: Verdict,
}

impl LinkOutcome {
    pub fn is_fine(&self) -> bool {
        matches!(self.verdict, Verdict::Fine(_))
    }

    /// The problem to report, at the place the link first appeared; `None` for a fine link.
    /// `path:line: link URL answered 404 Not Found` for a file; for a feed item the path is the
    /// feed's URL and the message starts with `item KEY: `.
    pub fn problem(&self) -> Option<Problem> {
        if self.is_fine() {
            return None;
        }
        let url = &self.link.url;
        let (path, line, message) = match &self.link.place {
            Place::File { path, line } => {
                (path.clone(), *line, format!("link {url} {}", self.verdict))
            }
            Place::Feed { feed_url, item_key } => (
                PathBuf::from(feed_url.as_str()),
                None,
                format!("item {item_key}: link {url} {}", self.verdict),
            ),
        };
        Some(Problem {
            path,
            line,
            kind: ProblemKind::Link {
                url: Box::new(url.clone()),
            },
            message,
        })
    }
}

/// Fetches links with the limits of this module and one timeout per link.
pub struct Checker {
    client: reqwest::Client,
    timeout: Duration,
}

impl Checker {
    /// Builds the HTTP client. Installs ring as rustls' crypto provider if none is installed
    /// yet, as the feed fetcher does.
    pub fn new(timeout: Duration) -> anyhow::Result<Checker> {
        // An error means a provider is already installed, which is all we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for the link check: {e}"))?;
        Ok(Checker { client, timeout })
    }

    /// Fetches every link, [`MAX_CONCURRENT`] at a time; the outcomes are in the order of `links`.
    pub async fn check(&self, links: Vec<Link>) -> Vec<LinkOutcome> {
        futures_util::stream::iter(links)
            .map(|link| self.check_one(link))
            .buffered(MAX_CONCURRENT)
            .collect()
            .await
    }

    /// Fetches one link within the timeout.
    pub async fn check_one(&self, link: Link) -> LinkOutcome {
        let verdict = if !is_web(&link.url) {
            Verdict::Failed(format!(
                "only http and https links are checked, not {}:",
                link.url.scheme()
            ))
        } else {
            match tokio::time::timeout(self.timeout, self.exchange(&link.url)).await {
                Ok(Ok(status)) if status.is_success() => Verdict::Fine(status),
                Ok(Ok(status)) => Verdict::Answered(status),
                Ok(Err(e)) if e.is_redirect() => Verdict::TooManyRedirects,
                Ok(Err(e)) if e.is_timeout() => Verdict::TimedOut(self.timeout),
                Ok(Err(e)) => Verdict::Failed(crate::feed::cause(&e)),
                // Dropping the exchange closes its connection, so a stalled server is let go.
                Err(_elapsed) => Verdict::TimedOut(self.timeout),
            }
        };
        LinkOutcome { link, verdict }
    }

    /// `HEAD`, then `GET` if the server does not do `HEAD`: the final status after redirects.
    async fn exchange(&self, url: &Url) -> Result<StatusCode, reqwest::Error> {
        let status = self.client.head(url.clone()).send().await?.status();
        if status != StatusCode::METHOD_NOT_ALLOWED && status != StatusCode::NOT_IMPLEMENTED {
            return Ok(status);
        }
        // The response is dropped as soon as its status is read: the body is never downloaded.
        Ok(self.client.get(url.clone()).send().await?.status())
    }
}

/// Fetches `links` with a new [`Checker`]; the outcomes are in the order of `links`.
pub async fn check(links: Vec<Link>, timeout: Duration) -> anyhow::Result<Vec<LinkOutcome>> {
    Ok(Checker::new(timeout)?.check(links).await)
}

/// What the link check of an issue found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkReport {
    /// The number of distinct links fetched.
    pub checked: usize,
    /// One problem per link that is not fine, in the order of the issue.
    pub problems: Vec<Problem>,
}

/// Collects the links of `issue` and fetches them, each within `timeout`.
pub async fn check_issue(issue: &Issue, timeout: Duration) -> anyhow::Result<LinkReport> {
    let outcomes = check(links_of(issue), timeout).await?;
    Ok(LinkReport {
        checked: outcomes.len(),
        problems: outcomes.iter().filter_map(LinkOutcome::problem).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{Entry, SanitizedHtml, Section};
    use chrono::NaiveDate;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn text(s: &str) -> Inline {
        Inline::Text(s.to_string())
    }

    fn link(s: &str) -> Inline {
        Inline::Link {
            url: url(s),
            children: vec![text("here")],
        }
    }

    fn entry(link: &str, body: Body, source: EntrySource) -> Entry {
        Entry {
            number: 1,
            title: "T".to_string(),
            date: NaiveDate::from_ymd_opt(2021, 7, 1).unwrap(),
            link: url(link),
            sections: vec![Section { label: None, body }],
            source,
        }
    }

    fn issue(entries: Vec<Entry>) -> Issue {
        Issue {
            id: "2021-07".parse().unwrap(),
            date: NaiveDate::from_ymd_opt(2021, 7, 1).unwrap(),
            subject: None,
            intro: None,
            preheader: None,
            entries,
        }
    }

    fn urls(links: &[Link]) -> Vec<&str> {
        links.iter().map(|l| l.url.as_str()).collect()
    }

    fn feed_source() -> EntrySource {
        EntrySource::Feed {
            feed_url: url("https://partner.example.org/feed.json"),
            label: None,
            item_key: "https://partner.example.org/items/7".to_string(),
            lang: None,
        }
    }

    #[test]
    fn the_entry_link_and_nested_body_links_are_collected_with_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("01-a.md");
        std::fs::write(
            &path,
            "+++\ntitle = \"T\"\nlink = \"https://a.org\"\n+++\n\n\
             See [the **bold** one](https://b.org/x).\n\n\
             - an item with _[a link](https://c.org/list)_\n\
             - [mail](mailto:someone@example.org) and [the prefix](https://b.org)\n",
        )
        .unwrap();
        let body = Body::Blocks(vec![
            Block::Paragraph(vec![
                text("See "),
                Inline::Strong(vec![Inline::Emphasis(vec![link("https://b.org/x")])]),
            ]),
            Block::List(vec![
                vec![Inline::Emphasis(vec![link("https://c.org/list")])],
                vec![link("mailto:someone@example.org"), link("https://b.org")],
            ]),
        ]);
        let got = links_of(&issue(vec![entry(
            "https://a.org",
            body,
            EntrySource::File(path.clone()),
        )]));
        assert_eq!(
            urls(&got),
            [
                "https://a.org/",
                "https://b.org/x",
                "https://c.org/list",
                "https://b.org/"
            ]
        );
        let lines: Vec<_> = got
            .iter()
            .map(|l| match &l.place {
                Place::File { path: p, line } => {
                    assert_eq!(p, &path);
                    *line
                }
                Place::Feed { .. } => panic!("not a feed"),
            })
            .collect();
        // `https://a.org/` is found without its `/`; `https://b.org` not inside `https://b.org/x`.
        assert_eq!(lines, [Some(3), Some(6), Some(8), Some(9)]);
    }

    #[test]
    fn a_file_without_the_url_or_missing_gives_no_line() {
        let got = links_of(&issue(vec![entry(
            "https://a.org/x",
            Body::Blocks(Vec::new()),
            EntrySource::File(PathBuf::from("/nonexistent/brief/01.md")),
        )]));
        assert_eq!(
            got[0].place,
            Place::File {
                path: PathBuf::from("/nonexistent/brief/01.md"),
                line: None
            }
        );
    }

    #[test]
    fn sanitized_hrefs_are_parsed_and_only_web_links_kept() {
        let html = "<p>Read <a href=\"https://partner.example.org/a?x=1&amp;y=2\" rel=\"noopener noreferrer\">this</a>, \
                    <a href='http://other.example.org/b'>that</a>, \
                    <a href=\"mailto:press@example.org\">mail</a>, <a href=\"/relative\">rel</a>, \
                    and <a data-href=\"https://no.example.org/\">not one</a>.</p>";
        assert_eq!(
            hrefs(html).iter().map(Url::as_str).collect::<Vec<_>>(),
            [
                "https://partner.example.org/a?x=1&y=2",
                "http://other.example.org/b"
            ]
        );
        let body = Body::Sanitized(SanitizedHtml::from_cleaned(html.to_string(), String::new()));
        let got = links_of(&issue(vec![entry(
            "https://partner.example.org/items/7",
            body,
            feed_source(),
        )]));
        assert_eq!(
            urls(&got),
            [
                "https://partner.example.org/items/7",
                "https://partner.example.org/a?x=1&y=2",
                "http://other.example.org/b"
            ]
        );
        assert_eq!(
            got[1].place,
            Place::Feed {
                feed_url: url("https://partner.example.org/feed.json"),
                item_key: "https://partner.example.org/items/7".to_string()
            }
        );
    }

    #[test]
    fn the_hrefs_of_a_cleaned_feed_item_are_found() {
        let json = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "P", "items": [{
            "id": "https://p.example.org/1", "url": "https://p.example.org/1", "title": "One",
            "date_published": "2021-07-05T00:00:00Z",
            "content_html": "<p>See <a href=\"/minutes?a=1&b=2\">the minutes</a>, <a href=\"mailto:x@p.example.org\">write</a> and <A HREF='https://other.example.org/x' onclick='evil()'>this</A>.</p>"
        }]}"#;
        let feed = crate::config::Feed {
            url: url("https://p.example.org/feed.json"),
            label: Some("P".to_string()),
            optional: false,
            lang: None,
            line: 1,
        };
        let entries = crate::feed::parse(json, &feed).unwrap();
        assert!(
            matches!(entries[0].sections[0].body, Body::Sanitized(_)),
            "{entries:?}"
        );
        assert_eq!(
            urls(&links_of(&issue(entries))),
            [
                "https://p.example.org/1",
                "https://p.example.org/minutes?a=1&b=2",
                "https://other.example.org/x"
            ]
        );
    }

    #[test]
    fn each_url_is_kept_once_where_it_first_appeared() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("01.md"), dir.path().join("02.md"));
        std::fs::write(&one, "link = \"https://a.org/same\"\n").unwrap();
        std::fs::write(&two, "\n\nlink = \"https://a.org/same\"\n").unwrap();
        let body = || Body::Blocks(vec![Block::Paragraph(vec![link("https://a.org/same")])]);
        let got = links_of(&issue(vec![
            entry("https://a.org/same", body(), EntrySource::File(one.clone())),
            entry("https://a.org/same", body(), EntrySource::File(two)),
            entry("https://a.org/same", body(), feed_source()),
        ]));
        assert_eq!(
            got,
            [Link {
                url: url("https://a.org/same"),
                place: Place::File {
                    path: one,
                    line: Some(1)
                }
            }]
        );
    }

    #[test]
    fn problems_name_the_place_and_the_reason() {
        let file = Link {
            url: url("https://a.org/missing"),
            place: Place::File {
                path: PathBuf::from("content/2021-07/02-b.md"),
                line: Some(4),
            },
        };
        let outcome = |link: &Link, verdict| LinkOutcome {
            link: link.clone(),
            verdict,
        };
        let shown = |o: LinkOutcome| o.problem().map(|p| p.to_string());
        assert_eq!(shown(outcome(&file, Verdict::Fine(StatusCode::OK))), None);
        assert_eq!(
            shown(outcome(&file, Verdict::Answered(StatusCode::NOT_FOUND))).unwrap(),
            "content/2021-07/02-b.md:4: link https://a.org/missing answered 404 Not Found"
        );
        assert_eq!(
            shown(outcome(&file, Verdict::TimedOut(Duration::from_secs(10)))).unwrap(),
            "content/2021-07/02-b.md:4: link https://a.org/missing timed out after 10s"
        );
        assert_eq!(
            shown(outcome(&file, Verdict::TooManyRedirects)).unwrap(),
            "content/2021-07/02-b.md:4: link https://a.org/missing failed: too many redirects (more than 5)"
        );
        let feed = Link {
            url: url("https://a.org/gone"),
            place: Place::Feed {
                feed_url: url("https://partner.example.org/feed.json"),
                item_key: "item-7".to_string(),
            },
        };
        let p = outcome(
            &feed,
            Verdict::Failed("tcp connect error: Connection refused".into()),
        )
        .problem()
        .unwrap();
        assert_eq!(
            p.to_string(),
            "https://partner.example.org/feed.json: item item-7: link https://a.org/gone failed: tcp connect error: Connection refused"
        );
        assert_eq!(
            p.kind,
            ProblemKind::Link {
                url: Box::new(url("https://a.org/gone"))
            }
        );
    }
}
