//! Remote feeds against a real HTTP server on loopback: formats, hostile items, and every way a
//! server can fail us (404, refused, endless body, stall, redirect loop, flakiness).

use std::collections::HashSet;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use brief::config::{Content, Feed};
use brief::feed::{self, CollectError, Collected, FailureKind, FeedErrors, FetchPolicy, Window};
use brief::issue::{Body as SectionBody, Entry, EntrySource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

const JSON: &[u8] = include_bytes!("../fixtures/feeds/partner.json");
const RSS: &[u8] = include_bytes!("../fixtures/feeds/partner.rss");
const ATOM: &[u8] = include_bytes!("../fixtures/feeds/partner.atom");

/// The byte limit of these tests: small, so "too large" is reached in a few chunks.
const MAX_BYTES: u64 = 64 * 1024;
/// A guard so a broken limit fails the test instead of hanging it; not a timing assertion.
const GUARD: Duration = Duration::from_secs(20);

/// What the test server saw.
#[derive(Default)]
struct Seen {
    user_agents: Mutex<Vec<String>>,
    accept_encodings: Mutex<Vec<String>>,
    /// `If-None-Match` / `If-Modified-Since` of each conditional-route request.
    conditions: Mutex<Vec<(Option<String>, Option<String>)>>,
    not_modified: AtomicU32,
    flaky_hits: AtomicU32,
    endless_bytes: AtomicU64,
}

type Shared = Arc<Seen>;

const ETAG: &str = "\"partner-v1\"";
const LAST_MODIFIED: &str = "Wed, 28 Jul 2021 12:00:00 GMT";

fn feed_response(content_type: &'static str, body: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn json(State(seen): State<Shared>, headers: HeaderMap) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    seen.user_agents
        .lock()
        .unwrap()
        .push(text(header::USER_AGENT));
    seen.accept_encodings
        .lock()
        .unwrap()
        .push(text(header::ACCEPT_ENCODING));
    feed_response("application/feed+json", JSON)
}

/// Answers 304 when the request names the current copy by ETag (`/etag`) or by date
/// (`/last-modified`), as a real server would.
async fn conditional(
    State(seen): State<Shared>,
    UrlPath(kind): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let inm = text(header::IF_NONE_MATCH);
    let ims = text(header::IF_MODIFIED_SINCE);
    seen.conditions
        .lock()
        .unwrap()
        .push((inm.clone(), ims.clone()));
    let (validator, current) = match kind.as_str() {
        "etag" => ((header::ETAG, ETAG), inm.as_deref() == Some(ETAG)),
        _ => (
            (header::LAST_MODIFIED, LAST_MODIFIED),
            ims.as_deref() == Some(LAST_MODIFIED),
        ),
    };
    if current {
        seen.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, [validator]).into_response();
    }
    (
        [validator, (header::CONTENT_TYPE, "application/feed+json")],
        JSON,
    )
        .into_response()
}

/// A body that never ends as far as the client can tell: a gigabyte in 16 KiB chunks, made
/// only as fast as the client reads.
async fn endless(State(seen): State<Shared>) -> Response {
    static CHUNK: [u8; 16 * 1024] = [b'a'; 16 * 1024];
    let chunks = futures_util::stream::iter((0..65_536u32).map(move |_| {
        seen.endless_bytes
            .fetch_add(CHUNK.len() as u64, Ordering::SeqCst);
        Ok::<_, Infallible>(Bytes::from_static(&CHUNK))
    }));
    (
        [(header::CONTENT_TYPE, "application/rss+xml")],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// `/redirect/N` redirects N times before serving the RSS feed.
async fn redirect(UrlPath(n): UrlPath<u32>) -> Response {
    if n == 0 {
        return feed_response("application/rss+xml", RSS);
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/redirect/{}", n - 1))],
    )
        .into_response()
}

/// Fails with 503 once, then serves the JSON Feed.
async fn flaky(State(seen): State<Shared>) -> Response {
    if seen.flaky_hits.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    feed_response("application/feed+json", JSON)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A gzip body that inflates to 1 MiB, 16 times the limit.
async fn gzip_bomb() -> Response {
    (
        [(header::CONTENT_ENCODING, "gzip")],
        gzip(&vec![b' '; 1024 * 1024]),
    )
        .into_response()
}

async fn gzipped_atom() -> Response {
    (
        [
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_TYPE, "application/atom+xml"),
        ],
        gzip(ATOM),
    )
        .into_response()
}

/// Starts the test server on 127.0.0.1, port 0; it lives as long as the test's runtime.
async fn server() -> (String, Shared) {
    let seen = Shared::default();
    let app = Router::new()
        .route("/feed.json", get(json))
        .route(
            "/feed.rss",
            get(|| async { feed_response("application/rss+xml", RSS) }),
        )
        .route(
            "/feed.atom",
            get(|| async { feed_response("application/atom+xml", ATOM) }),
        )
        .route("/conditional/{kind}", get(conditional))
        .route("/endless", get(endless))
        .route("/redirect/{n}", get(redirect))
        .route("/flaky", get(flaky))
        .route("/gzip-bomb", get(gzip_bomb))
        .route("/gzipped.atom", get(gzipped_atom))
        .route("/garbage", get(|| async { "this is not a feed" }))
        .with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

/// A server speaking raw HTTP/1.1: it reads each request, writes `response` (maybe nothing, or
/// only its start) and then never says another word, holding the connections open.
async fn stalled_server(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        // A test makes one or two connections; the bounds keep the loops finite regardless.
        for _ in 0..8 {
            let Ok((mut socket, _)) = listener.accept().await else {
                break;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while request.len() < 64 * 1024 && !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket.write_all(response).await;
            held.push(socket);
        }
        std::future::pending::<()>().await;
    });
    addr
}

/// A loopback address where nothing listens.
async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/feed.json")
}

fn feed(url: &str, label: Option<&str>, optional: bool) -> Feed {
    Feed {
        url: Url::parse(url).unwrap(),
        label: label.map(str::to_string),
        optional,
        lang: None,
        line: 1,
    }
}

fn content(feeds: Vec<Feed>, timeout: Duration) -> Content {
    Content {
        feeds,
        feed_timeout: timeout,
        feed_max_bytes: MAX_BYTES,
        ..Content::default()
    }
}

fn july() -> Window {
    Window::calendar_month("2021-07".parse().unwrap())
}

async fn collect_with(
    content: &Content,
    cache: &Path,
    sent: &HashSet<String>,
    policy: FetchPolicy,
) -> Result<Collected, CollectError> {
    tokio::time::timeout(
        GUARD,
        feed::collect(
            content,
            cache,
            july(),
            sent,
            policy,
            &brief::clock::SystemClock,
        ),
    )
    .await
    .expect("collect finished within the guard")
}

async fn collect(content: &Content, cache: &Path) -> Result<Collected, CollectError> {
    collect_with(content, cache, &HashSet::new(), FetchPolicy::Once).await
}

/// The single failure of a failed collect.
fn failure(e: CollectError) -> brief::feed::FeedFailure {
    let CollectError::Feeds(FeedErrors(mut errors)) = e else {
        panic!("expected failed feeds, got {e}");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

fn titles(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.title.as_str()).collect()
}

fn key(e: &Entry) -> &str {
    match &e.source {
        EntrySource::Feed { item_key, .. } => item_key,
        EntrySource::File(_) => panic!("not a feed entry"),
    }
}

#[tokio::test]
async fn items_of_all_three_formats_inside_the_window_join_in_date_order() {
    let (base, seen) = server().await;
    let cache = tempfile::tempdir().unwrap();
    let content = content(
        vec![
            feed(&format!("{base}/feed.json"), Some("Water Council"), false),
            feed(&format!("{base}/feed.rss"), Some("Trade Forum"), false),
            feed(&format!("{base}/feed.atom"), None, false),
        ],
        Duration::from_secs(10),
    );
    // Sent in an earlier issue: must not come back.
    let sent = HashSet::from(["https://trade.example.org/2021/07/forum".to_string()]);

    let got = collect_with(&content, cache.path(), &sent, FetchPolicy::Once)
        .await
        .unwrap();

    assert!(got.skipped.is_empty());
    assert_eq!(
        titles(&got.entries),
        [
            "A short note without a title, about the binational conference on shared…",
            "Binational water council meets in El Paso",
            "Border health week",
            "Hostile Bcc: victim@example.com title",
            "Customs X-Injected: yes working group",
            "Vaccination campaign update",
        ]
    );
    let dates: Vec<String> = got.entries.iter().map(|e| e.date.to_string()).collect();
    assert_eq!(
        dates,
        [
            "2021-07-05",
            "2021-07-12",
            "2021-07-15",
            "2021-07-20",
            "2021-07-28",
            "2021-07-28"
        ]
    );
    // The item from 2015 and last month's are out; so is the one already sent.
    assert!(!got
        .entries
        .iter()
        .any(|e| e.title.contains("Founding") || e.title.contains("Last month")));
    assert!(got.entries.iter().all(|e| e.number == 0));
    assert_eq!(key(&got.entries[1]), format!("{base}/feed.json 1"));
    assert_eq!(
        key(&got.entries[4]),
        "https://trade.example.org/2021/07/customs"
    );

    for e in &got.entries {
        assert!(!e.title.contains(['\r', '\n']), "{:?}", e.title);
        for s in &e.sections {
            let SectionBody::Sanitized(b) = &s.body else {
                panic!("feed sections are sanitized HTML");
            };
            let html = b.html().to_ascii_lowercase();
            for banned in [
                "<script",
                "onerror",
                "onclick",
                "onload",
                "javascript:",
                "style",
                "<img",
            ] {
                assert!(!html.contains(banned), "{banned} in {html}");
            }
        }
    }
    let customs = &got.entries[4];
    assert_eq!(customs.sections[0].label.as_deref(), Some("Trade Forum"));

    let agents = seen.user_agents.lock().unwrap().clone();
    assert_eq!(agents.len(), 1);
    assert!(
        agents[0].starts_with("brief/") && agents[0].ends_with("(+newsletter feed fetcher)"),
        "{agents:?}"
    );
    let encodings = seen.accept_encodings.lock().unwrap().clone();
    assert!(encodings[0].contains("gzip"), "{encodings:?}");
}

#[tokio::test]
async fn a_gzipped_feed_is_inflated_and_a_gzip_bomb_is_too_large() {
    let (base, _) = server().await;
    let cache = tempfile::tempdir().unwrap();

    let ok = content(
        vec![feed(&format!("{base}/gzipped.atom"), None, false)],
        Duration::from_secs(10),
    );
    let got = collect(&ok, cache.path()).await.unwrap();
    assert_eq!(
        titles(&got.entries),
        ["Border health week", "Vaccination campaign update"]
    );

    let url = format!("{base}/gzip-bomb");
    let bomb = content(vec![feed(&url, None, false)], Duration::from_secs(10));
    let f = failure(collect(&bomb, cache.path()).await.unwrap_err());
    assert!(matches!(f.kind, FailureKind::TooLarge(MAX_BYTES)), "{f}");
}

#[tokio::test]
async fn a_missing_feed_fails_with_its_url_and_status_unless_optional() {
    let (base, _) = server().await;
    let cache = tempfile::tempdir().unwrap();
    let url = format!("{base}/gone.xml");

    let required = content(vec![feed(&url, None, false)], Duration::from_secs(10));
    let e = collect(&required, cache.path()).await.unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        format!("feed {url}: HTTP status 404 Not Found")
    );

    let optional = content(
        vec![
            feed(&format!("{base}/feed.atom"), None, false),
            feed(&url, None, true),
        ],
        Duration::from_secs(10),
    );
    let got = collect(&optional, cache.path()).await.unwrap();
    assert_eq!(got.entries.len(), 2);
    assert_eq!(got.skipped.len(), 1);
    assert_eq!(
        got.skipped[0].to_string(),
        format!("feed {url}: HTTP status 404 Not Found")
    );
}

#[tokio::test]
async fn every_failing_required_feed_is_named() {
    let (base, _) = server().await;
    let cache = tempfile::tempdir().unwrap();
    let refused = refused_url().await;
    let garbage = format!("{base}/garbage");
    let c = content(
        vec![
            feed(&refused, None, false),
            feed(&format!("{base}/feed.json"), None, false),
            feed(&garbage, None, false),
        ],
        Duration::from_secs(10),
    );

    let e = collect(&c, cache.path()).await.unwrap_err();

    let message = format!("{e:#}");
    assert!(message.starts_with("2 feeds failed: "), "{message}");
    assert!(
        message.contains(&format!("feed {refused}: connection failed: ")),
        "{message}"
    );
    assert!(
        message.contains(&format!("feed {garbage}: cannot parse: ")),
        "{message}"
    );
}

#[tokio::test]
async fn an_endless_body_stops_at_the_byte_limit() {
    let (base, seen) = server().await;
    let cache = tempfile::tempdir().unwrap();
    let url = format!("{base}/endless");
    let c = content(vec![feed(&url, None, false)], Duration::from_secs(15));

    let e = collect(&c, cache.path()).await.unwrap_err();

    assert_eq!(
        format!("{e:#}"),
        format!("feed {url}: too large: more than 65536 bytes (`content.feed_max_bytes`)")
    );
    // The server could have sent a gigabyte; the client stopped reading near the limit. Socket
    // buffers on loopback hold a few megabytes, hence the loose bound.
    let served = seen.endless_bytes.load(Ordering::SeqCst);
    assert!(
        served < 64 * 1024 * 1024,
        "the server produced {served} bytes"
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_fails_before_the_body() {
    // It claims a gigabyte and then sends nothing: only the declared length can end this early.
    let addr = stalled_server(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n").await;
    let cache = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/huge.xml");
    let c = content(vec![feed(&url, None, false)], Duration::from_secs(15));

    let f = failure(collect(&c, cache.path()).await.unwrap_err());

    assert!(matches!(f.kind, FailureKind::TooLarge(MAX_BYTES)), "{f}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_naming_the_url() {
    let addr = stalled_server(b"").await;
    let cache = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/feed.xml");
    let c = content(vec![feed(&url, None, false)], Duration::from_secs(1));

    let e = collect(&c, cache.path()).await.unwrap_err();

    assert_eq!(
        format!("{e:#}"),
        format!("feed {url}: timed out after 1s (`content.feed_timeout`)")
    );
}

#[tokio::test]
async fn a_body_that_stalls_midway_times_out() {
    let addr = stalled_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 1000\r\n\r\n\
          <?xml version=\"1.0\"?><rss version=\"2.0\"><channel>",
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/feed.rss");
    let c = content(vec![feed(&url, None, false)], Duration::from_secs(1));

    let f = failure(collect(&c, cache.path()).await.unwrap_err());

    assert!(
        matches!(f.kind, FailureKind::Timeout(d) if d == Duration::from_secs(1)),
        "{f}"
    );
}

#[tokio::test]
async fn a_refused_connection_names_the_url_and_the_cause() {
    let cache = tempfile::tempdir().unwrap();
    let url = refused_url().await;
    let c = content(vec![feed(&url, None, false)], Duration::from_secs(5));

    let f = failure(collect(&c, cache.path()).await.unwrap_err());

    assert!(matches!(f.kind, FailureKind::Connection(_)), "{f}");
    let message = f.to_string();
    assert!(
        message.starts_with(&format!("feed {url}: connection failed: ")),
        "{message}"
    );
    assert!(
        message.to_ascii_lowercase().contains("refused"),
        "{message}"
    );
}

#[tokio::test]
async fn three_redirects_are_followed_and_a_fourth_is_refused() {
    let (base, _) = server().await;
    let cache = tempfile::tempdir().unwrap();

    let three = content(
        vec![feed(&format!("{base}/redirect/3"), None, false)],
        Duration::from_secs(10),
    );
    let got = collect(&three, cache.path()).await.unwrap();
    assert_eq!(got.entries.len(), 2);

    let url = format!("{base}/redirect/4");
    let four = content(vec![feed(&url, None, false)], Duration::from_secs(10));
    let e = collect(&four, cache.path()).await.unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        format!("feed {url}: too many redirects: more than 3")
    );
}

#[tokio::test]
async fn a_second_fetch_is_conditional_and_a_304_uses_the_cached_copy() {
    for (kind, sent_back) in [
        ("etag", (Some(ETAG.to_string()), None)),
        ("last-modified", (None, Some(LAST_MODIFIED.to_string()))),
    ] {
        let (base, seen) = server().await;
        let cache = tempfile::tempdir().unwrap();
        let c = content(
            vec![feed(&format!("{base}/conditional/{kind}"), None, false)],
            Duration::from_secs(10),
        );

        let first = collect(&c, cache.path()).await.unwrap();
        let second = collect(&c, cache.path()).await.unwrap();

        assert_eq!(
            *seen.conditions.lock().unwrap(),
            [(None, None), sent_back],
            "{kind}"
        );
        assert_eq!(seen.not_modified.load(Ordering::SeqCst), 1, "{kind}");
        assert_eq!(first.entries.len(), 3, "{kind}");
        assert_eq!(first.entries, second.entries, "{kind}");
        let files: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|f| f.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            files.len(),
            1,
            "one cache file, no temporary left: {files:?}"
        );
        assert!(files[0].ends_with(".feed"), "{files:?}");
    }
}

#[tokio::test]
async fn a_scheduled_fetch_retries_a_transient_failure_and_a_preview_does_not() {
    let (base, seen) = server().await;
    let cache = tempfile::tempdir().unwrap();
    let url = format!("{base}/flaky");
    let c = content(vec![feed(&url, None, false)], Duration::from_secs(10));

    let e = collect(&c, cache.path()).await.unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        format!("feed {url}: HTTP status 503 Service Unavailable")
    );

    seen.flaky_hits.store(0, Ordering::SeqCst);
    let retry = FetchPolicy::Retry {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
    };
    let got = collect_with(&c, cache.path(), &HashSet::new(), retry)
        .await
        .unwrap();
    assert_eq!(got.entries.len(), 3);
    assert_eq!(seen.flaky_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried() {
    let (base, _) = server().await;
    let cache = tempfile::tempdir().unwrap();
    let url = format!("{base}/redirect/9");
    let c = content(vec![feed(&url, None, false)], Duration::from_secs(10));
    // A long backoff: retrying a permanent failure would trip the guard.
    let retry = FetchPolicy::Retry {
        attempts: 5,
        first_backoff: Duration::from_secs(60),
    };

    let e = collect_with(&c, cache.path(), &HashSet::new(), retry)
        .await
        .unwrap_err();

    assert!(format!("{e:#}").contains("too many redirects"), "{e:#}");
}
