//! The checks before a scheduled send: the daemon's schedule runs them `[schedule] preflight`
//! ahead of a fire, once, fetches every link of the issue, and mails staff the result.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use brief::clock::FixedClock;
use brief::daemon::Daemon;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::support::{subject_of, text_of, World};

/// A loopback web server that answers 404 for paths starting with `/missing` and 200 for the
/// rest; its base URL. The thread ends with the test process.
pub(crate) fn web() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            // The rest of the head.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = first.split_whitespace().nth(1).unwrap_or("/");
            let status = if path.starts_with("/missing") {
                "404 Not Found"
            } else {
                "200 OK"
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    base
}

/// Points every entry link of `issue` in `w` at `base`, the first one at `base/missing`.
pub(crate) fn links_to(w: &World, issue: &str, base: &str) {
    let dir = w.path(&format!("content/{issue}"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        // The entries, not their translations (which take their entry's link).
        .filter(|p| brief::content::is_entry_file(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    for (i, f) in files.iter().enumerate() {
        let text = std::fs::read_to_string(f).unwrap();
        let target = if i == 0 {
            format!("{base}/missing")
        } else {
            format!("{base}/page{i}")
        };
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("link = ") {
                    format!("link = \"{target}\"\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(f, text).unwrap();
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn subjects(w: &World) -> Vec<String> {
    w.outbox("staff").iter().map(|p| subject_of(p)).collect()
}

fn texts(w: &World) -> Vec<String> {
    w.outbox("staff").iter().map(|p| text_of(p)).collect()
}

fn world() -> World {
    let w = World::with_config(
        "[schedule]\ncron = \"0 0 9 23 * *\"\ntimezone = \"UTC\"\npreflight = \"24h\"\n",
    );
    w.add_server_keys("staff = [\"editor@example.org\"]");
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_checks_the_issue_a_day_ahead_and_mails_staff_once() {
    let w = world();
    let base = web();
    links_to(&w, "2021-07", &base);
    // 21 hours before the fire of 2021-07-23 09:00: inside the 24-hour window.
    let clock = Arc::new(FixedClock::new(utc("2021-07-22T12:00:00Z")));
    let app = brief::app::App::new(w.config(), clock.clone()).unwrap();
    let d = Daemon::new(app, CancellationToken::new()).unwrap();
    d.start();
    crate::support::daemon::wait_until("the checks mail", Duration::from_secs(30), || {
        !w.outbox("staff").is_empty()
    });
    assert!(d.shutdown(Duration::from_secs(10)).await);
    assert_eq!(
        subjects(&w),
        ["Checks before the send of BRIEF 2021-07: 1 problem"]
    );
    let text = texts(&w).remove(0);
    assert!(
        text.contains(&format!(
            "01-mayorkas-visit.md:4: link {base}/missing answered 404"
        )),
        "{text}"
    );
    assert!(text.contains("Links checked: 4"), "{text}");
    assert!(text.contains("2021-07-23 09:00 UTC"), "{text}");
    assert!(text.contains("/admin/issues/2021-07"), "{text}");
    let kept = w.ledger().latest_preflight().unwrap().unwrap();
    assert_eq!(kept.problems, 1);
    assert_eq!(kept.fire_at, utc("2021-07-23T09:00:00Z").timestamp_millis());
    // Nothing was sent: the checks come before the fire.
    assert!(w
        .ledger()
        .campaign("2021-07".parse().unwrap())
        .unwrap()
        .is_none());

    // Once per fire, across restarts.
    let app = brief::app::App::new(w.config(), clock.clone()).unwrap();
    let d = Daemon::new(app, CancellationToken::new()).unwrap();
    assert_eq!(d.preflight(utc("2021-07-23T09:00:00Z")).await, None);
    assert_eq!(w.outbox("staff").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_issue_is_reported_ready_and_a_sent_one_is_not_checked() {
    let w = world();
    let base = web();
    links_to(&w, "2021-07", &base);
    // Every link fine now.
    for f in std::fs::read_dir(w.path("content/2021-07")).unwrap() {
        let p = f.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("/missing", "/found")).unwrap();
    }
    let clock = Arc::new(FixedClock::new(utc("2021-07-22T12:00:00Z")));
    let app = brief::app::App::new(w.config(), clock.clone()).unwrap();
    let d = Daemon::new(app, CancellationToken::new()).unwrap();
    let p = d.preflight(utc("2021-07-23T09:00:00Z")).await.unwrap();
    assert_eq!(p.problems, 0, "{}", p.report);
    assert_eq!(
        subjects(&w),
        ["Checks before the send of BRIEF 2021-07: ready"]
    );
    // Once the issue has its campaign, a fire of it sends nothing, so it is not checked.
    crate::http::send(&w, "2021-07");
    let before = w.outbox("staff").len();
    assert_eq!(d.preflight(utc("2021-07-24T09:00:00Z")).await, None);
    assert_eq!(w.outbox("staff").len(), before);

    // `preflight = "0s"` turns the checks off.
    let w = World::with_config(
        "[schedule]\ncron = \"0 0 9 23 * *\"\ntimezone = \"UTC\"\npreflight = \"0s\"\n",
    );
    w.add_server_keys("staff = [\"editor@example.org\"]");
    let clock = Arc::new(FixedClock::new(utc("2021-07-22T12:00:00Z")));
    let app = brief::app::App::new(w.config(), clock).unwrap();
    let d = Daemon::new(app, CancellationToken::new()).unwrap();
    d.start();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(d.shutdown(Duration::from_secs(10)).await);
    assert!(w.outbox("staff").is_empty(), "{:?}", subjects(&w));
}
