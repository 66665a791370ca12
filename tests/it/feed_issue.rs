//! Feeds in a real issue, through the `brief` binary: items join the month's entries in both
//! parts, hostile markup is gone, and a failing feed ends `brief preview` with its URL.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use mail_parser::MessageParser;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::support::World;

const JSON: &[u8] = include_bytes!("../fixtures/feeds/partner.json");
const RSS: &[u8] = include_bytes!("../fixtures/feeds/partner.rss");
const ATOM: &[u8] = include_bytes!("../fixtures/feeds/partner.atom");

/// Serves the three fixture feeds, an endless body and a 404 on 127.0.0.1; returns the base URL.
async fn feeds_server() -> String {
    let endless = || async {
        static CHUNK: [u8; 16 * 1024] = [b'a'; 16 * 1024];
        // A gigabyte, made only as fast as the client reads: "endless" for a 5 MiB limit.
        let chunks = futures_util::stream::iter(
            (0..65_536u32).map(|_| Ok::<_, Infallible>(Bytes::from_static(&CHUNK))),
        );
        (
            [(header::CONTENT_TYPE, "application/rss+xml")],
            Body::from_stream(chunks),
        )
            .into_response()
    };
    let app = Router::new()
        .route(
            "/feed.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/feed+json")], JSON) }),
        )
        .route(
            "/feed.rss",
            get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], RSS) }),
        )
        .route(
            "/feed.atom",
            get(|| async { ([(header::CONTENT_TYPE, "application/atom+xml")], ATOM) }),
        )
        .route("/endless", get(endless));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Accepts connections and reads requests, never answering (bounded to a few connections).
async fn stalled_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..8 {
            let Ok((mut s, _)) = listener.accept().await else {
                break;
            };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            held.push(s);
        }
        std::future::pending::<()>().await;
    });
    format!("http://{addr}/feed.json")
}

fn feeds_config(urls: &[(&str, &str)], extra: &str) -> String {
    let mut s = format!("[content]\ndir = \"content\"\n{extra}\n");
    for (url, label) in urls {
        s.push_str(&format!(
            "\n[[content.feeds]]\nurl = \"{url}\"\nlabel = \"{label}\"\n"
        ));
    }
    s
}

/// A world whose config has these feeds in place of the plain `[content]` table.
fn world_with(content: &str) -> World {
    let w = World::new();
    let cfg = std::fs::read_to_string(w.config_path())
        .unwrap()
        .replace("[content]\ndir = \"content\"\n", content);
    w.write("brief.toml", &cfg);
    w
}

#[tokio::test(flavor = "multi_thread")]
async fn items_of_three_formats_join_the_issue_in_both_parts_and_nothing_hostile_survives() {
    let base = feeds_server().await;
    let w = world_with(&feeds_config(
        &[
            (&format!("{base}/feed.json"), "Border Water Council"),
            (&format!("{base}/feed.rss"), "Trade Forum"),
            (&format!("{base}/feed.atom"), "Border Health"),
        ],
        "window = \"calendar-month\"",
    ));
    let out = tokio::task::spawn_blocking({
        let mut c = w.brief();
        c.args(["preview", "--issue", "2021-07", "--out", "pv"]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(w.path("pv/2021-07.txt")).unwrap();
    let html = std::fs::read_to_string(w.path("pv/2021-07.html")).unwrap();
    for part in [&text, &html] {
        assert!(
            part.contains("Binational water council meets in El Paso"),
            "JSON Feed item"
        );
        assert!(
            part.contains("DHS Secretary Mayorkas"),
            "the folder's entries stay"
        );
        assert!(!part.contains("founding"), "an item from 2015 is left out");
    }
    let rss_title = "Trade Forum";
    assert!(
        text.contains(&format!("via {rss_title}")),
        "RSS item labelled in text"
    );
    assert!(
        html.contains("via Border Health"),
        "Atom item labelled in html"
    );
    assert!(
        text.contains("Hostile Bcc: victim@example.com title"),
        "title on one line"
    );
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script",
        "onerror",
        "onclick",
        "onmouseover",
        "javascript:",
        "<style>p",
        "tracker.example.net",
    ] {
        assert!(!lower.contains(bad), "`{bad}` survived in the html");
    }
    assert!(!text.contains("javascript:"));
    // Numbering covers folder and feed entries alike, in date order.
    assert!(text.contains("1) DHS Secretary Mayorkas' visit to Mexico"));
    // The message: a CR/LF in a feed title adds no header.
    let raw = std::fs::read(w.path("pv/2021-07.eml")).unwrap();
    let m = MessageParser::default().parse(&raw).unwrap();
    assert!(m.header("Bcc").is_none());
    assert_eq!(String::from_utf8_lossy(&raw).matches("\r\nBcc:").count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sent_items_are_recorded_and_never_repeated() {
    use brief::app::App;
    use brief::clock::FixedClock;
    use brief::feed::FetchPolicy;
    use brief::message::Kind;
    use std::sync::Arc;

    let base = feeds_server().await;
    let w = world_with(&feeds_config(
        &[(&format!("{base}/feed.atom"), "Health")],
        "window = \"since-last-issue\"",
    ));
    w.copy_issue("2021-08");
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let clock = Arc::new(FixedClock::new(at("2021-07-23T12:00:00Z")));
    let app = App::new(w.config(), clock.clone()).unwrap();
    // July is the first issue: its window is its calendar month, which holds the 07-28 item.
    let july = app
        .collect_issue("2021-07".parse().unwrap(), FetchPolicy::Once)
        .await
        .unwrap();
    let titles: Vec<&str> = july.entries.iter().map(|e| e.title.as_str()).collect();
    assert!(
        titles.contains(&"Vaccination campaign update"),
        "{titles:?}"
    );
    let key = app.key().clone();
    let lang = app.config.newsletter.languages.default_lang().clone();
    let prepared =
        brief::campaign::start::prepare(&app, vec![(lang, july.clone())], &key, Kind::Campaign);
    let mut ledger = app.open_ledger().unwrap();
    let (_, new, _) = brief::campaign::start::begin(
        &app,
        &mut ledger,
        &prepared,
        brief::ledger::Trigger::Cli,
        None,
    )
    .unwrap();
    assert!(new);
    drop(ledger);
    // August's window starts when July's campaign did (07-23), so it too holds the 07-28 item:
    // only the ledger keeps it out.
    clock.set(at("2021-08-23T12:00:00Z"));
    let august = app
        .collect_issue("2021-08".parse().unwrap(), FetchPolicy::Once)
        .await
        .unwrap();
    let titles: Vec<&str> = august.entries.iter().map(|e| e.title.as_str()).collect();
    assert!(
        !titles.contains(&"Vaccination campaign update"),
        "repeated: {titles:?}"
    );
    assert!(
        titles.contains(&"Preparations for the High-Level Economic Dialogue"),
        "{titles:?}"
    );
    // July again (a resume) keeps its own items.
    let again = app
        .collect_issue("2021-07".parse().unwrap(), FetchPolicy::Once)
        .await
        .unwrap();
    assert!(again
        .entries
        .iter()
        .any(|e| e.title == "Vaccination campaign update"));
}

/// Runs `brief preview` and samples its peak RSS from /proc until it exits (bounded).
fn preview_with_peak_rss(w: &World) -> (std::process::Output, u64, Duration) {
    let bin = assert_cmd::cargo::cargo_bin("brief");
    let started = Instant::now();
    let child = std::process::Command::new(bin)
        .current_dir(&w.root)
        .env_remove("BRIEF_CONFIG")
        .args([
            "--config",
            w.config_path().to_str().unwrap(),
            "preview",
            "--issue",
            "2021-07",
            "--out",
            "pv",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak_kb = 0u64;
    let sampler = std::thread::spawn(move || {
        // At most 90 s of 10 ms samples; the process is expected to end long before.
        for _ in 0..9000 {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                break;
            };
            if let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
            if status.contains("State:\tZ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        peak_kb
    });
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    (out, sampler.join().unwrap(), elapsed)
}

async fn failing_feed_ends_preview(url: &str, expect: &str) {
    let w = world_with(&feeds_config(&[(url, "Partner")], "feed_timeout = \"3s\""));
    let (out, peak_kb, elapsed) = tokio::task::spawn_blocking(move || {
        let r = preview_with_peak_rss(&w);
        drop(w);
        r
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(url), "the error names the URL: {stderr}");
    assert!(
        stderr.contains(expect),
        "the error says `{expect}`: {stderr}"
    );
    assert!(
        stderr.contains("brief.toml:"),
        "located at the feed's config line: {stderr}"
    );
    // The issue's own bounds (60 s, 256 MB), as guards rather than performance claims.
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    assert!(peak_kb > 0 && peak_kb < 256 * 1024, "peak RSS {peak_kb} kB");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_feed_ends_preview_naming_the_url() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/feed.json", l.local_addr().unwrap());
    drop(l);
    failing_feed_ends_preview(&url, "connection failed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_body_ends_preview_naming_the_url() {
    let base = feeds_server().await;
    failing_feed_ends_preview(&format!("{base}/endless"), "too large").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_server_ends_preview_naming_the_url() {
    let url = stalled_server().await;
    failing_feed_ends_preview(&url, "timed out").await;
}
