//! The daemon's HTTP endpoints over real loopback HTTP: one-click unsubscribe from a sent
//! message, the archive, health and metrics, body limits, the admin test send, and logs.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use brief::config::Secret;
use brief::token::TokenKey;

use crate::support::daemon::{metric, Running};
use crate::support::World;

const ONE_CLICK: &[u8] = b"List-Unsubscribe=One-Click";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// Sends issue 2021-07 to the world's three readers with the CLI.
pub(crate) fn send(w: &World, issue: &str) -> String {
    let out = w
        .brief()
        .args(["send", "--issue", issue, "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The path of the List-Unsubscribe URL in the message sent to `address`.
pub(crate) fn unsubscribe_path(w: &World, issue: &str, address: &str) -> String {
    let file = w
        .outbox(issue)
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(address)
        })
        .unwrap_or_else(|| panic!("no message to {address}"));
    let raw = std::fs::read(file).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let header = m
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe header");
    let https = header
        .split(['<', '>'])
        .find(|p| p.starts_with("https://"))
        .unwrap_or_else(|| panic!("no https URL in {header}"));
    let url = url::Url::parse(https).unwrap();
    assert_eq!(url.host_str(), Some("news.example.org"));
    url.path().to_string()
}

/// `brief subscribers list` as (address, state) pairs.
fn states(w: &World) -> Vec<(String, String)> {
    let out = w.brief().args(["subscribers", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        // The last line, the counts per state, has no tab.
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

pub(crate) fn state_of(w: &World, address: &str) -> String {
    states(w)
        .into_iter()
        .find(|(a, _)| a == address)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("{address} is not listed"))
}

/// The token of the world's key (made by the first send) for `address`.
fn token_for(w: &World, address: &str) -> String {
    let key = std::fs::read_to_string(w.path("data/token.key")).unwrap();
    TokenKey::new(Secret::new(key.trim().to_string())).token(address)
}

fn tamper(path: &str) -> String {
    let mut b = path.as_bytes().to_vec();
    let last = b.len() - 1;
    b[last] = if b[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[test]
fn one_click_unsubscribe_from_a_sent_message() {
    let w = World::new();
    // Markup in the config shows up escaped on every page.
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &text.replace(
            "organization = \"Center for Binational Institutions\"",
            "organization = \"Center <b>for</b> & Institutions\"",
        ),
    );
    send(&w, "2021-07");
    let path = unsubscribe_path(&w, "2021-07", "ana@example.org");
    let d = Running::start(&w, &[]);

    // GET shows a confirmation page with a button, and changes nothing.
    let page = d.get(&path);
    assert_eq!(page.status, 200, "{page:?}");
    // No action: the form posts to this very URL, token included.
    let form = &page.body[page.body.find("<form ").expect("a form")..];
    let form_tag = &form[..form.find('>').unwrap()];
    assert!(
        form_tag.contains("method=\"post\"") && !form_tag.contains("action="),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<button class=\"page-button\" type=\"submit\""),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("Center &lt;b&gt;for&lt;/b&gt; &amp; Institutions"));
    assert!(!page.body.contains("<b>for</b>"));
    assert!(page.body.contains("#7a1f2b"), "the stylesheet's look");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(state_of(&w, "ana@example.org"), "active");
    // The page is the same for any token: it tells nothing about the token.
    assert_eq!(d.get(&tamper(&path)).body, page.body);

    // A tampered token changes nothing and gets the answer a genuine token of an address that
    // is not on the list gets.
    let tampered = d.post(&tamper(&path), &[FORM], ONE_CLICK);
    let unknown = d.post(
        &format!("/unsubscribe/{}", token_for(&w, "nobody@example.org")),
        &[FORM],
        ONE_CLICK,
    );
    assert_eq!(
        (tampered.status, &tampered.body),
        (unknown.status, &unknown.body)
    );
    assert_eq!(tampered.status, 200);
    assert_eq!(state_of(&w, "ana@example.org"), "active");

    // RFC 8058 one-click: 200, no redirect, and the reader is unsubscribed. Again: the same.
    let done = d.post(&path, &[FORM], ONE_CLICK);
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.header("location"), None);
    assert_eq!(done.body, unknown.body);
    assert_eq!(state_of(&w, "ana@example.org"), "unsubscribed");
    assert_eq!(state_of(&w, "bob@example.org"), "active");
    let again = d.post(&path, &[FORM], ONE_CLICK);
    assert_eq!((again.status, &again.body), (200, &done.body));
    assert_eq!(state_of(&w, "ana@example.org"), "unsubscribed");
    assert_eq!(d.stop().status.code(), Some(0));

    // The next issue goes to the CSV's other readers only: the ledger's suppression wins.
    w.copy_issue("2021-08");
    let stdout = send(&w, "2021-08");
    assert!(
        stdout.contains("2 sent, 0 failed, 1 suppressed"),
        "{stdout}"
    );
    let files = w.outbox("2021-08");
    assert_eq!(files.len(), 2);
    assert!(files
        .iter()
        .all(|f| !f.to_str().unwrap().contains("ana@example.org")));
}

#[test]
fn archive_health_metrics_and_not_found() {
    let w = World::new();
    w.copy_issue("2021-08");
    send(&w, "2021-07");
    // Edited after sending: the archive keeps what was sent.
    let entry = "content/2021-07/01-mayorkas-visit.md";
    let text = std::fs::read_to_string(w.path(entry)).unwrap();
    let edited = text.replacen("title = \"", "title = \"Edited after sending: ", 1);
    assert_ne!(edited, text);
    w.write(entry, &edited);
    let d = Running::start(&w, &[]);

    let health = d.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    let index = d.get("/archive/");
    assert_eq!(index.status, 200);
    assert!(
        index
            .body
            .contains("href=\"https://news.example.org/archive/2021-07\""),
        "{}",
        index.body
    );
    assert!(
        !index.body.contains("2021-08"),
        "an unsent issue is not listed"
    );

    let web = d.get("/archive/2021-07");
    assert_eq!(web.status, 200);
    assert_eq!(web.header("content-type"), Some("text/html; charset=utf-8"));
    let (_, issue, _, _) = crate::render::example();
    for e in &issue.entries {
        let title = maud::html! { (e.title) }.into_string();
        assert!(web.body.contains(&title), "{title} missing");
    }
    assert!(!web.body.contains("Edited after sending"));
    for personal in ["ana@example.org", "bob@example.org", "unsubscribe/"] {
        assert!(
            !web.body.contains(personal),
            "{personal} in the web version"
        );
    }

    // A handler's `PageError::NotFound` and the fallback answer the same page, byte for byte.
    let fallback = d.get("/nope").body;
    for missing in [
        "/archive/2021-08",
        "/archive/1999-13",
        "/archive/x",
        "/nope",
    ] {
        let r = d.get(missing);
        assert_eq!(r.status, 404, "{missing}");
        assert!(r.body.contains("Not found"), "{missing}: {}", r.body);
        assert_eq!(r.body, fallback, "{missing}");
    }
    // No admin token configured: the endpoint does not exist.
    let admin = d.post(
        "/admin/test-send",
        &[("Authorization", "Bearer anything")],
        b"{}",
    );
    assert_eq!(admin.status, 404);

    let m = d.get("/metrics");
    assert_eq!(m.status, 200);
    assert_eq!(
        m.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(
        m.body.ends_with("\n# EOF\n"),
        "OpenMetrics ends with EOF: {}",
        m.body
    );
    let samples: Vec<&str> = m.body.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(samples.len() > 10, "{}", m.body);
    assert!(
        samples.iter().all(|l| l.starts_with("brief_")),
        "{}",
        m.body
    );
    assert_eq!(
        metric(&m.body, "brief_deliveries{state=\"sent\"}"),
        Some(3.0)
    );
    assert_eq!(metric(&m.body, "brief_up"), Some(1.0));
    assert_eq!(d.stop().status.code(), Some(0));
}

#[test]
fn request_bodies_over_4_kib_are_refused() {
    let w = World::new();
    send(&w, "2021-07");
    let path = unsubscribe_path(&w, "2021-07", "ana@example.org");
    let d = Running::start(&w, &[]);

    // Declared too long: refused before the body is read.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5000\r\n\r\n"
    );
    assert_eq!(d.exchange(head.as_bytes()).status, 413);

    // Chunked, so the length shows only while reading.
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        4097
    )
    .into_bytes();
    raw.extend(std::iter::repeat_n(b'a', 4097));
    raw.extend_from_slice(b"\r\n");
    assert_eq!(d.exchange(&raw).status, 413);

    assert_eq!(state_of(&w, "ana@example.org"), "active");
    let small = d.post(&path, &[FORM], ONE_CLICK);
    assert_eq!(small.status, 200);
    assert_eq!(state_of(&w, "ana@example.org"), "unsubscribed");
    assert_eq!(d.stop().status.code(), Some(0));
}

const ADMIN: &str = "adm1n-T0ken-that-never-shows-4242";
const SECRET: &str = "s3cret-signing-key-that-never-shows-0123456789";

#[test]
fn admin_test_send_takes_the_bearer_token_and_only_staff_and_secrets_stay_out_of_logs() {
    let key = crate::dkim::rsa_key();
    let pem = {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    };
    let w = World::with_config(&format!(
        "[log]\nformat = \"json\"\n\n\
         [dkim]\ndomain = \"{}\"\nselector = \"{}\"\nprivate_key_file = \"dkim.pem\"\n",
        crate::dkim::DOMAIN,
        crate::dkim::SELECTOR
    ));
    w.write("dkim.pem", &pem);
    w.add_server_keys(
        "secret_env = \"BRIEF_TEST_SECRET\"\nadmin_token_env = \"BRIEF_TEST_ADMIN\"\n\
         staff = [\"Editor <editor@example.org>\"]",
    );
    let env = [("BRIEF_TEST_SECRET", SECRET), ("BRIEF_TEST_ADMIN", ADMIN)];
    let d = Running::start(&w, &env);
    let bearer = format!("Bearer {ADMIN}");
    let json = ("Content-Type", "application/json");
    // One address three times: one message.
    let body = br#"{"to": ["EDITOR@example.org", "editor@example.org", "Editor@Example.ORG"], "issue": "2021-07"}"#;

    let none = d.post("/admin/test-send", &[json], body);
    assert_eq!(none.status, 401);
    assert!(none
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Bearer")));
    let wrong = d.post(
        "/admin/test-send",
        &[json, ("Authorization", &format!("Bearer {ADMIN}x"))],
        body,
    );
    assert_eq!(wrong.status, 401);
    let stranger = d.post(
        "/admin/test-send",
        &[json, ("Authorization", &bearer)],
        br#"{"to": ["editor@example.org", "stranger@example.org"]}"#,
    );
    assert_eq!(stranger.status, 403, "{stranger:?}");
    assert!(stranger.body.contains("stranger@example.org"));
    let garbled = d.post(
        "/admin/test-send",
        &[json, ("Authorization", &bearer)],
        b"{to:",
    );
    assert_eq!(garbled.status, 400);
    assert!(w.outbox("test").is_empty(), "refused requests send nothing");

    let ok = d.post(
        "/admin/test-send",
        &[json, ("Authorization", &bearer)],
        body,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    let reply: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(reply["issue"], "2021-07");
    assert_eq!(reply["results"][0]["accepted"], true);
    assert_eq!(reply["results"][0]["code"], 250);
    assert_eq!(reply["results"].as_array().unwrap().len(), 1, "{reply}");
    let files = w.outbox("test");
    assert_eq!(files.len(), 1);
    let raw = std::fs::read(&files[0]).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(m.subject().unwrap().starts_with("[TEST] "));
    if let Err(why) = crate::dkim::dkimpy(&raw, &crate::dkim::rsa_txt(key)) {
        panic!("the test send does not verify: {why}");
    }
    assert_eq!(
        w.ledger()
            .test_send_count("2021-07".parse().unwrap())
            .unwrap(),
        1
    );
    // Its unsubscribe link is signed with the key from `secret_env`.
    let token = TokenKey::new(Secret::new(SECRET.into())).token("editor@example.org");
    let posted = d.post(&format!("/unsubscribe/{token}"), &[FORM], ONE_CLICK);
    assert_eq!(posted.status, 200);
    assert_eq!(
        state_of_with(&w, &env, "editor@example.org"),
        "unsubscribed"
    );

    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    for line in stopped.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(
        stopped.stderr.contains("admin test send"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("unsubscribed"),
        "{}",
        stopped.stderr
    );
    for secret in [ADMIN, SECRET, token.as_str()] {
        assert!(!stopped.stderr.contains(secret), "a secret in the log");
        assert!(!stopped.stdout.contains(secret), "a secret on stdout");
    }
}

/// `state_of` for a world whose config names secret variables.
fn state_of_with(w: &World, env: &[(&str, &str)], address: &str) -> String {
    let mut cmd = w.brief();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(["subscribers", "list"]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.starts_with(address))
        .and_then(|l| l.split('\t').nth(1))
        .unwrap_or_else(|| panic!("{address} is not listed"))
        .to_string()
}

#[test]
fn secrets_never_show_in_debug_output() {
    let w = World::new();
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    let mut c = brief::config::parse(&text, &w.config_path()).unwrap();
    c.server.secret = Some(Secret::new(SECRET.into()));
    c.server.admin_token = Some(Secret::new(ADMIN.into()));
    c.smtp.password = Some(Secret::new("smtp-password-9876".into()));
    c.delivery.database = w.path("data/brief.db");
    c.content.dir = w.path("content");
    c.subscribers.file = w.path("subscribers.csv");
    c.newsletter.templates = Some(w.path("templates"));
    let shown = format!("{c:?}");
    let app = brief::app::App::new(c, std::sync::Arc::new(brief::clock::SystemClock)).unwrap();
    let daemon =
        brief::daemon::Daemon::new(app, tokio_util::sync::CancellationToken::new()).unwrap();
    let shown = format!("{shown}\n{daemon:?}\n{:?}", daemon.key);
    for secret in [ADMIN, SECRET, "smtp-password-9876"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("redacted"), "{shown}");
}

/// Half a request header: no blank line, so the server is still reading it.
const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

/// The world's config with `[server] header_timeout` set.
fn with_header_timeout(w: &World, timeout: &str) {
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    let listen = "listen = \"127.0.0.1:0\"\n";
    assert!(text.contains(listen));
    w.write(
        "brief.toml",
        &text.replace(listen, &format!("{listen}header_timeout = \"{timeout}\"\n")),
    );
}

/// Reads until the server closes `s` (end of stream or a reset); panics on a read timeout.
/// Returns what was read.
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server kept the connection open: {e}")
            }
            Err(_) => return got,
        }
    }
}

#[test]
fn a_half_sent_request_does_not_hold_the_stop() {
    let w = World::new();
    let d = Running::start(&w, &[]);
    let mut slow = d.connect();
    slow.write_all(HALF_SENT).unwrap();
    // The server has accepted and read it once it answers a request made after it.
    assert_eq!(d.get("/healthz").status, 200);
    let started = Instant::now();
    let stopped = d.stop();
    let took = started.elapsed();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(took < Duration::from_secs(2), "the stop took {took:?}");
    assert!(
        stopped.stderr.contains("closed 1 HTTP connection(s)"),
        "{}",
        stopped.stderr
    );
    assert!(
        !stopped.stderr.contains("possible duplicates"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn a_header_not_finished_in_time_and_an_idle_keep_alive_are_closed() {
    let w = World::new();
    with_header_timeout(&w, "1s");
    let d = Running::start(&w, &[]);

    let mut slow = d.connect();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(HALF_SENT).unwrap();
    let started = Instant::now();
    let got = read_until_closed(&mut slow);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    // hyper may answer 408 before closing; it never serves the half request.
    assert!(!String::from_utf8_lossy(&got).contains("ok\n"), "{got:?}");

    // A keep-alive connection after its answer: closed once idle for the same time.
    let mut idle = d.connect();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let got = String::from_utf8(read_until_closed(&mut idle)).unwrap();
    let took = started.elapsed();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.ends_with("ok\n"), "{got}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );

    assert_eq!(d.get("/healthz").status, 200);
    assert_eq!(d.stop().status.code(), Some(0));
}

#[test]
fn connections_beyond_the_limit_wait_until_one_ends() {
    use crate::door::{connect_from, enough_file_descriptors, local};
    enough_file_descriptors();
    let w = World::new();
    let d = Running::start(&w, &[]);
    // One client holds at most 32 (`connections_per_client`): 16 clients hold them all.
    let per_client = 32;
    let clients = (brief::http::MAX_CONNECTIONS / per_client) as u8;
    let mut held: Vec<TcpStream> = (1..=clients)
        .flat_map(|c| connect_from(local(c), d.addr, per_client))
        .map(|mut s| {
            s.write_all(HALF_SENT).unwrap();
            s
        })
        .collect();
    // Give the server time to accept them all.
    std::thread::sleep(Duration::from_millis(500));
    let mut next = connect_from(local(clients + 1), d.addr, 1).remove(0);
    next.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    next.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    let err = next
        .read(&mut buf)
        .expect_err("not served while the limit is reached");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    // One slow client goes away: the waiting connection is accepted and served.
    drop(held.pop());
    next.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let got = String::from_utf8(read_until_closed(&mut next)).unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    let started = Instant::now();
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    // The stop drops the held connections (the log line below says so) instead of waiting for
    // them; the bound is the daemon's promise to stop within `docker stop`'s 10 s, with room for
    // a loaded machine, not a measure of speed.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?} {}",
        started.elapsed(),
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains(&format!(
            "closed {} HTTP connection(s)",
            brief::http::MAX_CONNECTIONS - 1
        )),
        "{}",
        stopped.stderr
    );
    drop(held);
}
