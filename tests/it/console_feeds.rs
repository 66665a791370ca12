//! The console and the feeds, against `brief run` and a feed server on 127.0.0.1 that counts
//! its requests: loading pages never fetches a feed (they show each feed's last fetched copy),
//! a feed never fetched is reported as such, and "Fetch feeds now" fetches each feed once,
//! after which the pages show its items, its fetch time and any failure.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;

use crate::admin::{csrf_of, get_with, post_form, sign_in};
use crate::support::daemon::Running;
use crate::support::World;

const JSON: &[u8] = include_bytes!("../fixtures/feeds/partner.json");
const RSS: &[u8] = include_bytes!("../fixtures/feeds/partner.rss");
const EDITOR: &str = "editor@example.org";
/// An item of the JSON feed dated inside 2021-07.
const JSON_ITEM: &str = "Binational water council meets in El Paso";

/// Requests per feed: the JSON feed, the RSS feed, and the optional feed that is gone (404).
#[derive(Default)]
struct Hits([AtomicU32; 3]);

impl Hits {
    fn get(&self) -> [u32; 3] {
        [0, 1, 2].map(|i| self.0[i].load(Ordering::SeqCst))
    }
}

/// Serves the feeds on 127.0.0.1 from a runtime of its own; returns the base URL.
fn counting_server(rt: &tokio::runtime::Runtime, hits: Arc<Hits>) -> String {
    let (h0, h1, h2) = (hits.clone(), hits.clone(), hits);
    let app = Router::new()
        .route(
            "/feed.json",
            get(move || async move {
                h0.0[0].fetch_add(1, Ordering::SeqCst);
                ([(header::CONTENT_TYPE, "application/feed+json")], JSON)
            }),
        )
        .route(
            "/feed.rss",
            get(move || async move {
                h1.0[1].fetch_add(1, Ordering::SeqCst);
                ([(header::CONTENT_TYPE, "application/rss+xml")], RSS)
            }),
        )
        .route(
            "/gone",
            get(move || async move {
                h2.0[2].fetch_add(1, Ordering::SeqCst);
                StatusCode::NOT_FOUND
            }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn pages_never_fetch_feeds_and_fetch_feeds_now_fetches_each_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hits = Arc::new(Hits::default());
    let base = counting_server(&rt, hits.clone());
    let w = World::new();
    let cfg = std::fs::read_to_string(w.config_path()).unwrap().replace(
        "[content]\ndir = \"content\"\n",
        &format!(
            "[content]\ndir = \"content\"\nwindow = \"calendar-month\"\n\
             [[content.feeds]]\nurl = \"{base}/feed.json\"\nlabel = \"Border Water Council\"\n\
             [[content.feeds]]\nurl = \"{base}/feed.rss\"\nlabel = \"Trade Forum\"\n\
             [[content.feeds]]\nurl = \"{base}/gone\"\nlabel = \"Gone Partner\"\noptional = true\n"
        ),
    );
    assert!(
        cfg.contains("/feed.rss"),
        "the world's [content] table changed"
    );
    w.write("brief.toml", &cfg);
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);

    // Before any fetch: every page load, and not one feed request; each feed is reported as
    // not fetched yet, and the issue cannot pass its check without its required feeds.
    for _ in 0..3 {
        for page in ["/admin/", "/admin/issues/2021-07"] {
            let r = get(page);
            assert_eq!(r.status, 200, "{page}: {}", r.body);
            assert!(r.body.contains("Fetch feeds now"), "{page}: {}", r.body);
            assert_eq!(
                r.body
                    .matches("not fetched yet: press Fetch feeds now")
                    .count(),
                // The feeds table (3 feeds) and the problems (the 2 required ones).
                5,
                "{page}: {}",
                r.body
            );
            assert!(!r.body.contains(JSON_ITEM), "{page}: {}", r.body);
        }
    }
    assert_eq!(hits.get(), [0, 0, 0], "a page load fetched a feed");

    // "Fetch feeds now": each feed once, back to the dashboard (303), which now shows the
    // check passing with the feeds' items, when each was fetched, and the gone feed's failure.
    let csrf = csrf_of(&get("/admin/").body);
    let pressed = now_ms();
    let r = post_form(&d, "/admin/feeds/fetch", &cookie, &format!("csrf={csrf}"));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("https://news.example.org/admin/")
    );
    assert_eq!(hits.get(), [1, 1, 1]);
    let home = get("/admin/");
    assert!(home.body.contains("data-check=\"ok\""), "{}", home.body);
    // Only the gone feed still has no copy; optional, it is no problem of the issue.
    assert_eq!(
        home.body.matches("not fetched yet").count(),
        1,
        "{}",
        home.body
    );
    assert_eq!(
        home.body.matches("data-feed-failed").count(),
        1,
        "{}",
        home.body
    );
    assert!(home.body.contains("HTTP status 404"), "{}", home.body);
    let page = get("/admin/issues/2021-07");
    assert!(page.body.contains(JSON_ITEM), "{}", page.body);
    assert!(page.body.contains("Trade Forum"), "{}", page.body);
    // Each fetched feed shows when it was fetched: during the press.
    let fetched: Vec<i64> = page
        .body
        .split("data-fetched=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(fetched.len(), 2, "{}", page.body);
    assert!(
        fetched.iter().all(|t| (pressed..=now_ms()).contains(t)),
        "{fetched:?} not in {pressed}..: {}",
        page.body
    );
    for _ in 0..3 {
        get("/admin/");
        get("/admin/issues/2021-07");
    }
    assert_eq!(hits.get(), [1, 1, 1], "a page load fetched a feed");

    // From the issue page, the button comes back to it.
    let r = post_form(
        &d,
        "/admin/feeds/fetch",
        &cookie,
        &format!("csrf={csrf}&back=2021-07"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("https://news.example.org/admin/issues/2021-07")
    );
    assert_eq!(hits.get(), [2, 2, 2]);

    // Without the session's CSRF token nothing is fetched.
    let r = post_form(&d, "/admin/feeds/fetch", &cookie, "csrf=forged");
    assert_eq!(r.status, 403);
    assert_eq!(hits.get(), [2, 2, 2]);

    // The activity log says who fetched and how it went.
    let activity = get("/admin/activity/");
    assert_eq!(
        activity.body.matches("2 of 3 feed(s) fetched").count(),
        2,
        "{}",
        activity.body
    );
    d.stop();
}
