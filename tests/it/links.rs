//! `brief check --links` against a loopback HTTP server: HEAD and its GET fallback, redirects,
//! a 404 named by file and line, a stall bounded by `link_timeout`, one fetch per URL, and no
//! request at all from a plain `check`.

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;

use crate::support::World;

/// A guard so a broken timeout fails the test instead of hanging it; not a timing assertion.
const GUARD: Duration = Duration::from_secs(20);

/// Every request the server saw, as `(method, path)`, in order.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Answers by path: `/no-head` and `/no-head-501` refuse HEAD (405, 501) and answer GET with
/// 200; `/moved` redirects to `/ok`; `/hop/N` redirects N times; `/missing` and `/gone` are 404;
/// `/stall` never answers; anything else is 200.
async fn answer(State(seen): State<Seen>, method: Method, uri: Uri) -> Response {
    let path = uri.path().to_string();
    seen.lock()
        .unwrap()
        .push((method.to_string(), path.clone()));
    let head = method == Method::HEAD;
    match path.as_str() {
        "/no-head" if head => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        "/no-head-501" if head => StatusCode::NOT_IMPLEMENTED.into_response(),
        "/moved" => (StatusCode::FOUND, [(header::LOCATION, "/ok")]).into_response(),
        "/missing" | "/gone" => StatusCode::NOT_FOUND.into_response(),
        "/stall" => std::future::pending().await,
        p => match p.strip_prefix("/hop/").and_then(|n| n.parse::<u32>().ok()) {
            Some(n) if n > 0 => (
                StatusCode::FOUND,
                [(header::LOCATION, format!("/hop/{}", n - 1))],
            )
                .into_response(),
            _ => "fine".into_response(),
        },
    }
}

/// Starts the server on 127.0.0.1, port 0; it lives as long as the test's runtime.
async fn server() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new().fallback(answer).with_state(seen.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

/// The entry files of the example issue, in order; each has its `link` on line 4.
const FILES: [&str; 4] = [
    "01-mayorkas-visit.md",
    "02-defense-working-group.md",
    "03-amlo-senators.md",
    "04-usmca-ministers.md",
];

/// A world whose four entries link to `base` + each of `paths`, with `[content]` keys `extra`.
fn world(base: &str, paths: [&str; 4], extra: &str) -> World {
    let w = World::new();
    let cfg = std::fs::read_to_string(w.config_path()).unwrap().replace(
        "[content]\ndir = \"content\"\n",
        &format!("[content]\ndir = \"content\"\n{extra}\n"),
    );
    w.write("brief.toml", &cfg);
    for (file, path) in FILES.iter().zip(paths) {
        let rel = format!("content/2021-07/{file}");
        let text = std::fs::read_to_string(w.path(&rel)).unwrap();
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("link = ") {
                    format!("link = \"{base}{path}\"")
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert_eq!(lines[3], format!("link = \"{base}{path}\""), "{rel}");
        w.write(&rel, &(lines.join("\n") + "\n"));
    }
    w
}

/// Appends a paragraph with a Markdown link to `url` to an entry file; returns its line.
fn add_body_link(w: &World, file: &str, url: &str) -> usize {
    let rel = format!("content/2021-07/{file}");
    let text = std::fs::read_to_string(w.path(&rel)).unwrap();
    let text = format!("{text}\nThe minutes are [on the _council's_ site]({url}).\n");
    w.write(&rel, &text);
    text.lines().position(|l| l.contains("minutes")).unwrap() + 1
}

/// Runs `brief ARGS` off the runtime's threads (the server needs them), bounded by [`GUARD`].
async fn brief(w: &World, args: &[&str]) -> (Output, String) {
    let mut c = w.brief();
    c.args(args).timeout(GUARD);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    (out, stdout)
}

/// The methods of the requests for `path`, in order.
fn methods(seen: &Seen, path: &str) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(_, p)| p == path)
        .map(|(m, _)| m.clone())
        .collect()
}

/// The path of an entry file as `check` prints it.
fn shown(w: &World, file: &str) -> String {
    w.path(&format!("content/2021-07/{file}"))
        .display()
        .to_string()
}

fn assert_exit(out: &Output, code: i32, stdout: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn head_answered_405_or_501_falls_back_to_get() {
    let (base, seen) = server().await;
    let w = world(&base, ["/no-head", "/no-head-501", "/ok/3", "/ok/4"], "");
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    assert_exit(&out, 0, &stdout);
    assert_eq!(methods(&seen, "/no-head"), ["HEAD", "GET"]);
    assert_eq!(methods(&seen, "/no-head-501"), ["HEAD", "GET"]);
    assert_eq!(
        methods(&seen, "/ok/3"),
        ["HEAD"],
        "a fine HEAD needs no GET"
    );
    assert_eq!(
        stdout.trim(),
        "links: 4 checked, 0 broken\nok: issue 2021-07, 4 entries, 3 subscribers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_a_fine_page_is_fine() {
    let (base, seen) = server().await;
    let w = world(&base, ["/moved", "/ok/2", "/ok/3", "/ok/4"], "");
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    assert_exit(&out, 0, &stdout);
    assert_eq!(methods(&seen, "/moved"), ["HEAD"]);
    assert_eq!(methods(&seen, "/ok"), ["HEAD"], "the redirect was followed");
    assert!(stdout.contains("links: 4 checked, 0 broken"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_redirects_are_followed_and_a_sixth_is_a_problem() {
    let (base, _seen) = server().await;
    let w = world(&base, ["/hop/5", "/hop/6", "/ok/3", "/ok/4"], "");
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    assert_exit(&out, 1, &stdout);
    let problem = format!(
        "{}:4: link {base}/hop/6 failed: too many redirects (more than 5)",
        shown(&w, FILES[1])
    );
    assert!(stdout.lines().any(|l| l == problem), "{problem}\n{stdout}");
    assert!(
        !stdout.contains("/hop/5 "),
        "five redirects are fine:\n{stdout}"
    );
    assert!(stdout.contains("links: 4 checked, 1 broken"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_is_named_with_its_file_and_line_and_fails_check() {
    let (base, _seen) = server().await;
    let w = world(&base, ["/ok/1", "/missing", "/ok/3", "/ok/4"], "");
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    assert_exit(&out, 1, &stdout);
    let want = format!(
        "{}:4: link {base}/missing answered 404",
        shown(&w, FILES[1])
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with(&want)),
        "no line starting with `{want}` in:\n{stdout}"
    );
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "links: 4 checked, 1 broken",
            "1 problem(s) in issue 2021-07"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_link_is_bounded_by_link_timeout() {
    let (base, seen) = server().await;
    let w = world(
        &base,
        ["/ok/1", "/ok/2", "/stall", "/ok/4"],
        "link_timeout = \"1s\"",
    );
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    // Killed by the guard, the command would have no exit code.
    assert_exit(&out, 1, &stdout);
    assert_eq!(methods(&seen, "/stall"), ["HEAD"]);
    let want = format!(
        "{}:4: link {base}/stall timed out after 1s",
        shown(&w, FILES[2])
    );
    assert!(stdout.lines().any(|l| l == want), "{want}\n{stdout}");
    assert!(stdout.contains("links: 4 checked, 1 broken"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_url_is_fetched_once_where_it_first_appears() {
    let (base, seen) = server().await;
    let w = world(&base, ["/ok/1", "/gone", "/gone", "/ok/1"], "");
    add_body_link(&w, FILES[3], &format!("{base}/gone"));
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    assert_exit(&out, 1, &stdout);
    assert_eq!(methods(&seen, "/ok/1"), ["HEAD"]);
    assert_eq!(methods(&seen, "/gone"), ["HEAD"]);
    let broken: Vec<&str> = stdout.lines().filter(|l| l.contains("/gone")).collect();
    assert_eq!(
        broken,
        [format!(
            "{}:4: link {base}/gone answered 404 Not Found",
            shown(&w, FILES[1])
        )],
        "one problem, at the first place:\n{stdout}"
    );
    assert!(stdout.contains("links: 2 checked, 1 broken"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_check_makes_no_request() {
    let (base, seen) = server().await;
    let w = world(&base, ["/missing", "/stall", "/ok/3", "/ok/4"], "");
    add_body_link(&w, FILES[0], &format!("{base}/gone"));
    let (out, stdout) = brief(&w, &["check"]).await;
    assert_exit(&out, 0, &stdout);
    assert_eq!(stdout.trim(), "ok: issue 2021-07, 4 entries, 3 subscribers");
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_link_is_checked_with_its_own_line() {
    let (base, seen) = server().await;
    let w = world(&base, ["/ok/1", "/ok/2", "/ok/3", "/ok/4"], "");
    let line = add_body_link(&w, FILES[0], &format!("{base}/gone"));
    assert!(line > 4);
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    assert_exit(&out, 1, &stdout);
    assert_eq!(methods(&seen, "/gone"), ["HEAD"]);
    let want = format!(
        "{}:{line}: link {base}/gone answered 404 Not Found",
        shown(&w, FILES[0])
    );
    assert!(stdout.lines().any(|l| l == want), "{want}\n{stdout}");
    assert!(stdout.contains("links: 5 checked, 1 broken"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_a_problem_with_a_short_reason() {
    let (base, _seen) = server().await;
    // A loopback port where nothing listens.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let w = world(&base, ["/ok/1", "/ok/2", "/ok/3", "/ok/4"], "");
    let rel = format!("content/2021-07/{}", FILES[3]);
    let text = std::fs::read_to_string(w.path(&rel))
        .unwrap()
        .replace(&format!("{base}/ok/4"), &format!("{refused}/x"));
    w.write(&rel, &text);
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    assert_exit(&out, 1, &stdout);
    let want = format!("{}:4: link {refused}/x failed: ", shown(&w, FILES[3]));
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&want))
        .unwrap_or_else(|| panic!("no line starting with `{want}` in:\n{stdout}"));
    let reason = &line[want.len()..];
    assert!(reason.contains("refused"), "{line}");
    assert!(!reason.contains(&refused), "the URL is said once: {line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn links_are_not_checked_when_the_issue_has_problems() {
    let (base, seen) = server().await;
    let w = world(&base, ["/ok/1", "/ok/2", "/ok/3", "/ok/4"], "");
    w.write("content/2021-07/99-bad.md", "+++\ntitle = \"T\"\n");
    let (out, stdout) = brief(&w, &["check", "--links"]).await;
    assert_exit(&out, 1, &stdout);
    assert!(
        stdout.contains("links: not checked, since the issue has problems"),
        "{stdout}"
    );
    assert!(seen.lock().unwrap().is_empty());
}
