//! The staff pages: sign-in by emailed link, the session cookie, the extractor that turns
//! anonymous requests away, CSRF and Origin checks, sign-out, and the sign-in limits, against
//! `brief run` over loopback HTTP (sign-in messages land in the outbox, under `staff/`).

use std::time::{Duration, Instant};

use crate::support::daemon::{Reply, Running};
use crate::support::World;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const EDITOR: &str = "editor@example.org";
const SECOND: &str = "second@example.org";

fn world() -> World {
    let w = World::new();
    w.add_server_keys(&format!("staff = [\"{EDITOR}\", \"{SECOND}\"]"));
    w
}

fn email_body(email: &str) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("email", email)
        .finish()
        .into_bytes()
}

/// The sign-in messages in the outbox: (recipient, link path), oldest first (other staff
/// mail, a send's summary say, is left out).
fn mails(w: &World) -> Vec<(String, String)> {
    w.outbox("staff")
        .iter()
        .filter_map(|p| {
            let raw = std::fs::read(p).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let to = m
                .to()
                .unwrap()
                .first()
                .unwrap()
                .address()
                .unwrap()
                .to_string();
            let text = m.body_text(0).unwrap().into_owned();
            let at = text.find("news.example.org/admin/login/")?;
            let link: String = text[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            Some((to, link.trim_start_matches("news.example.org").to_string()))
        })
        .collect()
}

/// Waits (bounded) for `n` sign-in messages.
fn wait_mails(w: &World, n: usize) -> Vec<(String, String)> {
    let started = Instant::now();
    loop {
        let got = mails(w);
        if got.len() >= n {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} sign-in messages, not {n}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ask_link(d: &Running, email: &str) -> Reply {
    d.post("/admin/login", &[FORM], &email_body(email))
}

/// The `name=value` of the session cookie a sign-in set.
fn session_cookie(r: &Reply) -> String {
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().trim().to_string()
}

/// Signs `email` in (its `nth` sign-in message): the session cookie.
pub(crate) fn sign_in(d: &Running, w: &World, email: &str, nth: usize) -> String {
    assert_eq!(ask_link(d, email).status, 200);
    let (to, path) = wait_mails(w, nth)[nth - 1].clone();
    assert_eq!(to, email);
    let r = d.post(&path, &[FORM], b"");
    assert_eq!(r.status, 303, "{}", r.body);
    session_cookie(&r)
}

pub(crate) fn get_with(d: &Running, path: &str, headers: &[(&str, &str)]) -> Reply {
    d.request("GET", path, headers, b"")
}

/// The CSRF token of the sign-out form on `/admin/`.
pub(crate) fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF field in {page}"));
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[test]
fn a_staff_member_signs_in_by_an_emailed_link_that_works_once() {
    let w = world();
    let d = Running::start(&w, &[]);
    let form = d.get("/admin/login");
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"email\""), "{}", form.body);
    assert_eq!(form.header("cache-control"), Some("no-store"));

    // A stranger and a staff member get the same answer, byte for byte.
    let stranger = ask_link(&d, "stranger@example.org");
    let staff = ask_link(&d, "Editor@Example.org");
    let garbage = ask_link(&d, "not an address");
    assert_eq!(stranger.status, 200);
    assert_eq!(stranger, staff);
    assert_eq!(stranger, garbage);
    assert!(
        stranger.body.contains("Check your inbox"),
        "{}",
        stranger.body
    );

    // Only the staff member gets a message, in the newsletter's look.
    let got = wait_mails(&w, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mails(&w).len(), 1, "{got:?}");
    let (to, path) = got[0].clone();
    assert_eq!(to, EDITOR);
    let raw = std::fs::read(&w.outbox("staff")[0]).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.subject(), Some("Sign in to BRIEF"));
    assert!(m.body_html(0).unwrap().contains("Sign in"));
    assert!(m.header("List-Unsubscribe").is_none());

    // A GET (a link scanner) changes nothing: a button, no cookie.
    let page = d.get(&path);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign in"), "{}", page.body);
    assert!(page.header("set-cookie").is_none());

    let signed_in = d.post(&path, &[FORM], b"");
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(
        signed_in.header("location"),
        Some("https://news.example.org/admin/")
    );
    let set = signed_in.header("set-cookie").unwrap();
    let flags: Vec<&str> = set.split(';').map(str::trim).collect();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Secure"] {
        assert!(flags.contains(&flag), "{flag} missing in {set}");
    }
    let cookie = session_cookie(&signed_in);
    let home = get_with(&d, "/admin/", &[("Cookie", &cookie)]);
    assert_eq!(home.status, 200);

    // The link works once.
    let again = d.post(&path, &[FORM], b"");
    assert_eq!(again.status, 410);
    assert!(again.body.contains("used already"), "{}", again.body);
    assert!(again.body.contains("Ask for a new link"), "{}", again.body);
    assert!(again.header("set-cookie").is_none());

    // A link that is not genuine is refused too.
    let forged = d.post("/admin/login/bm90LmEudG9rZW4.AAAA", &[FORM], b"");
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("new link"), "{}", forged.body);

    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    let log = stopped.stderr;
    assert!(log.contains("staff signed in"), "{log}");
    let token = path.trim_start_matches("/admin/login/");
    let session = cookie.split_once('=').unwrap().1;
    for secret in [EDITOR, "stranger@example.org", token, session] {
        assert!(!log.contains(secret), "{secret} logged: {log}");
    }
}

#[test]
fn the_cookie_is_not_secure_over_plain_http() {
    let w = world();
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &text.replace("https://news.example.org/", "http://news.example.org/"),
    );
    let d = Running::start(&w, &[]);
    assert_eq!(ask_link(&d, EDITOR).status, 200);
    let (_, path) = wait_mails(&w, 1)[0].clone();
    let r = d.post(&path, &[FORM], b"");
    assert_eq!(r.status, 303, "{}", r.body);
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
}

#[test]
fn staff_pages_turn_anonymous_requests_away() {
    let w = world();
    let d = Running::start(&w, &[]);
    let page = d.get("/admin/");
    assert_eq!(page.status, 303);
    assert_eq!(
        page.header("location"),
        Some("https://news.example.org/admin/login")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let json = get_with(&d, "/admin/", &[("Accept", "application/json")]);
    assert_eq!(json.status, 401);
    assert!(json.body.contains("\"error\""), "{}", json.body);
    let forged = get_with(&d, "/admin/", &[("Cookie", "brief_staff=abcdef")]);
    assert_eq!(forged.status, 303);

    let cookie = sign_in(&d, &w, EDITOR, 1);
    let home = get_with(&d, "/admin/", &[("Cookie", &cookie)]);
    assert_eq!(home.status, 200);
    assert!(
        home.body
            .contains("Signed in as <strong>editor@example.org</strong>"),
        "{}",
        home.body
    );
    assert_eq!(home.header("cache-control"), Some("no-store"));
    assert_eq!(home.header("x-frame-options"), Some("DENY"));
    assert!(home.header("content-security-policy").is_some());
}

#[test]
fn forms_need_the_session_csrf_token_and_our_origin() {
    let w = world();
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let home = get_with(&d, "/admin/", &[("Cookie", &cookie)]);
    let csrf = csrf_of(&home.body);
    let logout = |extra: &[(&str, &str)], body: &str| {
        let mut headers = vec![FORM, ("Cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        d.post("/admin/logout", &headers, body.as_bytes())
    };
    let good = format!("csrf={csrf}");

    assert_eq!(logout(&[], "").status, 403);
    assert_eq!(logout(&[], "csrf=wrong").status, 403);
    // The token of another session is wrong for this one.
    let other = sign_in(&d, &w, SECOND, 2);
    let other_csrf = csrf_of(&get_with(&d, "/admin/", &[("Cookie", &other)]).body);
    assert_ne!(other_csrf, csrf);
    assert_eq!(logout(&[], &format!("csrf={other_csrf}")).status, 403);
    let evil = logout(&[("Origin", "https://evil.example")], &good);
    assert_eq!(evil.status, 403);
    assert_eq!(logout(&[("Origin", "null")], &good).status, 403);
    // Still signed in after all of those.
    assert_eq!(get_with(&d, "/admin/", &[("Cookie", &cookie)]).status, 200);

    let out = logout(&[("Origin", "https://news.example.org")], &good);
    assert_eq!(out.status, 303, "{}", out.body);
    let cleared = out.header("set-cookie").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie opens nothing any more.
    assert_eq!(get_with(&d, "/admin/", &[("Cookie", &cookie)]).status, 303);

    // No Origin at all (an older browser): the token alone will do.
    let out = d.post(
        "/admin/logout",
        &[FORM, ("Cookie", other.as_str())],
        format!("csrf={other_csrf}").as_bytes(),
    );
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(get_with(&d, "/admin/", &[("Cookie", &other)]).status, 303);

    // Without a session, a logout is sent to the sign-in page.
    assert_eq!(
        d.post("/admin/logout", &[FORM], good.as_bytes()).status,
        303
    );

    let log = d.stop().stderr;
    assert!(log.contains("staff signed out"), "{log}");
    assert!(!log.contains(&csrf), "{log}");
}

#[test]
fn repeated_sign_in_requests_mail_one_link() {
    let w = world();
    let d = Running::start(&w, &[]);
    let first = ask_link(&d, EDITOR);
    for _ in 0..4 {
        assert_eq!(ask_link(&d, EDITOR), first);
    }
    wait_mails(&w, 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mails(&w).len(), 1);
    // Another staff member is not held up by the first one's limit.
    assert_eq!(ask_link(&d, SECOND).status, 200);
    let got = wait_mails(&w, 2);
    assert_eq!(got[1].0, SECOND);
}

/// The sign-in limits are counted in the ledger: after a restart an address still gets no
/// second link within the minute, and a client past its hourly limit is still refused.
#[test]
fn sign_in_limits_survive_a_restart() {
    let w = world();
    let d = Running::start(&w, &[]);
    assert_eq!(ask_link(&d, EDITOR).status, 200);
    wait_mails(&w, 1);
    // The client's hourly budget: 30 requests, whatever the address.
    for _ in 1..30 {
        assert_eq!(ask_link(&d, "nobody@example.org").status, 200);
    }
    assert_eq!(ask_link(&d, "nobody@example.org").status, 429);
    d.stop();

    let d = Running::start(&w, &[]);
    assert_eq!(ask_link(&d, EDITOR).status, 429);
    d.stop();
    // Behind a proxy, another client asks for both staff members: only the second one is
    // mailed, since the first one's minute is not over.
    w.add_server_keys("trusted_proxies = [\"127.0.0.1\"]");
    let d = Running::start(&w, &[]);
    let other = |email: &str| {
        d.post(
            "/admin/login",
            &[FORM, ("X-Forwarded-For", "203.0.113.9")],
            &email_body(email),
        )
    };
    assert_eq!(other(EDITOR).status, 200);
    assert_eq!(other(SECOND).status, 200);
    let got = wait_mails(&w, 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(mails(&w).len(), 2, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[1].0.as_str()), (EDITOR, SECOND));
    d.stop();
}

/// The console's pages, each turned away without a session.
const CONSOLE_PAGES: [&str; 14] = [
    "/admin/",
    "/admin/issues/",
    "/admin/activity/",
    "/admin/subscribers/",
    "/admin/subscribers/1",
    "/admin/subscribers/export.csv",
    "/admin/subscribers/import",
    "/admin/campaigns/",
    "/admin/bounces/",
    "/admin/issues/2021-07",
    "/admin/campaigns/2021-07",
    "/admin/campaigns/2021-07.csv",
    "/admin/campaigns/2021-07/counts",
    "/admin/live.js",
];

pub(crate) fn post_form(d: &Running, path: &str, cookie: &str, body: &str) -> Reply {
    d.post(
        path,
        &[
            FORM,
            ("Cookie", cookie),
            ("Origin", "https://news.example.org"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn the_console_shows_the_next_send_previews_sends_and_reports_an_issue() {
    let w = World::with_config(
        "[schedule]\ncron = \"0 0 9 23 * *\"\ntimezone = \"America/Mexico_City\"\ncatch_up = \"1s\"\n",
    );
    w.add_server_keys(&format!("staff = [\"{EDITOR}\", \"{SECOND}\"]"));
    let d = Running::start(&w, &[]);

    // Without a session: every page is 303 (JSON: 401), every form 403 or 303.
    for page in CONSOLE_PAGES {
        let r = d.get(page);
        assert_eq!(r.status, 303, "{page}: {}", r.body);
        assert_eq!(
            r.header("location"),
            Some("https://news.example.org/admin/login")
        );
    }
    assert_eq!(
        get_with(
            &d,
            "/admin/campaigns/2021-07/counts",
            &[("Accept", "application/json")]
        )
        .status,
        401
    );
    // The web version of an issue not sent is not published (its test copies link to a
    // signed preview instead).
    assert_eq!(d.get("/archive/2021-07").status, 404);

    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);

    // The dashboard: the next send in the schedule's zone, the issue and its check.
    let home = get("/admin/");
    assert_eq!(home.status, 200, "{}", home.body);
    let csp = home.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(home.body.contains("Next send"), "{}", home.body);
    assert!(home.body.contains("(America/Mexico_City)"), "{}", home.body);
    assert!(
        home.body.contains(", 09:00 CST") || home.body.contains(", 09:00 CDT"),
        "{}",
        home.body
    );
    assert!(home.body.contains("Check: ok"), "{}", home.body);
    assert!(home.body.contains("/admin/issues/2021-07"), "{}", home.body);
    // The next fire's month has no folder: that fire sends nothing, and the page says so
    // rather than offering the newest folder as what it will send.
    assert!(home.body.contains("data-next=\"empty\""), "{}", home.body);
    assert!(home.body.contains("data-next=\"newest\""), "{}", home.body);
    assert!(
        !home.body.contains("Will send issue 2021-07"),
        "{}",
        home.body
    );
    assert!(home.body.contains("No campaign yet."), "{}", home.body);
    assert!(home.body.contains(">active<"), "{}", home.body);
    // Public pages keep the strict policy: no scripts.
    let public = d.get("/archive/");
    assert!(!public
        .header("content-security-policy")
        .unwrap()
        .contains("script-src"));

    // A newer issue with a problem: the dashboard checks it and lists the problem as
    // path:line: message; its page offers no send.
    w.write("content/2021-08/issue.toml", "subject = [broken\n");
    let home = get("/admin/");
    assert!(home.body.contains("Check: 1 problem(s)"), "{}", home.body);
    assert!(home.body.contains("issue.toml:1:"), "{}", home.body);
    let broken = get("/admin/issues/2021-08");
    assert_eq!(broken.status, 200);
    assert!(broken.body.contains("issue.toml:1:"), "{}", broken.body);
    assert!(!broken.body.contains("Send now"), "{}", broken.body);
    let csrf = csrf_of(&home.body);
    let refused = post_form(
        &d,
        "/admin/issues/2021-08/send",
        &cookie,
        &format!("csrf={csrf}&confirm=2021-08"),
    );
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("has problems"), "{}", refused.body);

    // The issue page: the email in a sandboxed frame, its text, subject, size and headers.
    // Hostile paging and ids are refused plainly (the search ignores what it cannot read),
    // never a server error.
    for bad in ["/admin/activity/?before=abc", "/admin/bounces/?page=-1"] {
        let r = get(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let junk = get("/admin/subscribers/?page=x&state=nonsense");
    assert_eq!(junk.status, 200, "{}", junk.body);
    for missing in [
        "/admin/subscribers/abc",
        "/admin/subscribers/99999999999999999999",
    ] {
        assert_eq!(get(missing).status, 404, "{missing}");
    }

    let page = get("/admin/issues/2021-07");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("<iframe class=\"console-frame\" id=\"the-email\" sandbox=\"\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("srcdoc=\"&lt;!DOCTYPE html&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<pre"), "{}", page.body);
    assert!(
        page.body
            .contains("To: &quot;Sample Reader&quot; &lt;reader@example.org&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Subject: <strong>"), "{}", page.body);
    assert!(page.body.contains("Send a test to me"), "{}", page.body);
    assert!(
        page.body.contains("to <strong>3</strong> readers"),
        "{}",
        page.body
    );

    // POSTs without the CSRF token are refused, and change nothing.
    assert_eq!(
        post_form(&d, "/admin/issues/2021-07/send", &cookie, "confirm=2021-07").status,
        403
    );
    assert_eq!(
        post_form(&d, "/admin/issues/2021-07/test", &cookie, "").status,
        403
    );
    assert_eq!(
        post_form(
            &d,
            "/admin/issues/2021-07/send",
            &cookie,
            "csrf=wrong&confirm=2021-07"
        )
        .status,
        403
    );
    // A wrong typed id sends nothing.
    let wrong = post_form(
        &d,
        "/admin/issues/2021-07/send",
        &cookie,
        &format!("csrf={csrf}&confirm=2021-06"),
    );
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.body.contains("does not match"), "{}", wrong.body);
    assert!(w
        .ledger()
        .campaign("2021-07".parse().unwrap())
        .unwrap()
        .is_none());

    // The right one starts the campaign and goes to its page.
    let sent = post_form(
        &d,
        "/admin/issues/2021-07/send",
        &cookie,
        &format!("csrf={csrf}&confirm=2021-07"),
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(
        sent.header("location"),
        Some("https://news.example.org/admin/campaigns/2021-07")
    );
    crate::support::daemon::wait_until("the campaign to finish", Duration::from_secs(20), || {
        w.ledger()
            .campaign("2021-07".parse().unwrap())
            .unwrap()
            .is_some_and(|c| c.finished)
    });
    assert_eq!(w.outbox("2021-07").len(), 3);
    // Sent once: the page says so, and a second "Send now" sends nothing.
    let again = get("/admin/issues/2021-07");
    assert!(again.body.contains("was already sent"), "{}", again.body);
    let twice = post_form(
        &d,
        "/admin/issues/2021-07/send",
        &cookie,
        &format!("csrf={csrf}&confirm=2021-07"),
    );
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert_eq!(w.outbox("2021-07").len(), 3);

    // The campaign page: counts, duration, rate and the readers, filterable by state.
    let campaign = get("/admin/campaigns/2021-07");
    assert_eq!(campaign.status, 200, "{}", campaign.body);
    for needle in [
        "Campaign 2021-07",
        "Finished",
        "Rate:",
        "ana@example.org",
        "Ana García",
        "3 readers.",
        "by staff",
    ] {
        assert!(
            campaign.body.contains(needle),
            "{needle}: {}",
            campaign.body
        );
    }
    let failed = get("/admin/campaigns/2021-07?state=failed");
    assert!(failed.body.contains("0 readers."), "{}", failed.body);
    assert!(!failed.body.contains("ana@example.org"), "{}", failed.body);
    let counts = get_with(
        &d,
        "/admin/campaigns/2021-07/counts",
        &[("Cookie", &cookie), ("Accept", "application/json")],
    );
    let v: serde_json::Value = serde_json::from_str(&counts.body).unwrap();
    assert_eq!(v["sent"], 3);
    assert_eq!(v["finished"], true);

    // The CSV: `brief report`'s columns and rows.
    let csv = get("/admin/campaigns/2021-07.csv");
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let report = w
        .brief()
        .args(["report", "--issue", "2021-07"])
        .output()
        .unwrap();
    assert_eq!(csv.body, String::from_utf8(report.stdout).unwrap());
    let mut lines = csv.body.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("address,name,state,attempts,last_code"),
        "{}",
        csv.body
    );
    assert_eq!(lines.filter(|l| l.contains(",sent,")).count(), 3);

    // Sent: the archive shows the web version to everyone.
    assert_eq!(d.get("/archive/2021-07").status, 200);
    let home = get("/admin/");
    assert!(home.body.contains("finished"), "{}", home.body);
    let log = d.stop().stderr;
    assert!(log.contains("campaign started from the console"), "{log}");
}

/// A test send from the issue page's form reaches the relay with a `[TEST]` subject, and goes
/// only to staff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_send_from_the_issue_page_reaches_the_relay() {
    use crate::support::smtp_server::SmtpServer;
    let server = SmtpServer::start().await;
    let w = world();
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n\
         helo_name = \"news.example.org\"\ntimeout = \"5s\"",
        server.port()
    ));
    let d = std::sync::Arc::new(Running::start(&w, &[]));
    let dd = d.clone();
    assert_eq!(
        tokio::task::spawn_blocking(move || ask_link(&dd, EDITOR).status)
            .await
            .unwrap(),
        200
    );
    let started = Instant::now();
    let login = loop {
        if let Some(m) = server.messages().into_iter().next() {
            break m.data;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no sign-in message"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let m = mail_parser::MessageParser::default().parse(&login).unwrap();
    let text = m.body_text(0).unwrap().into_owned();
    let at = text.find("news.example.org/admin/login/").unwrap();
    let path: String = text[at + "news.example.org".len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let dd = d.clone();
    let (status, body, strangers) = tokio::task::spawn_blocking(move || {
        let r = dd.post(&path, &[FORM], b"");
        let cookie = session_cookie(&r);
        let page = get_with(&dd, "/admin/issues/2021-07", &[("Cookie", &cookie)]);
        assert!(
            page.body
                .contains("<option value=\"editor@example.org\" selected>"),
            "{}",
            page.body
        );
        let csrf = csrf_of(&page.body);
        // Not a staff address: refused.
        let strangers = post_form(
            &dd,
            "/admin/issues/2021-07/test",
            &cookie,
            &format!("csrf={csrf}&to=ana%40example.org"),
        )
        .status;
        let r = post_form(
            &dd,
            "/admin/issues/2021-07/test",
            &cookie,
            &format!("csrf={csrf}&to={EDITOR}"),
        );
        (r.status, r.body, strangers)
    })
    .await
    .unwrap();
    assert_eq!(strangers, 422);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Test sent"), "{body}");
    let to_editor: Vec<_> = server
        .messages()
        .into_iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == EDITOR))
        .collect();
    assert_eq!(to_editor.len(), 2, "the sign-in link and the test");
    let test = mail_parser::MessageParser::default()
        .parse(&to_editor[1].data)
        .unwrap();
    assert!(
        test.subject().unwrap().starts_with("[TEST]"),
        "{:?}",
        test.subject()
    );
    // Its "View in browser" link opens the issue before it is sent, without a session (from
    // webmail, the SameSite cookie does not ride along), and never the public 404.
    let text = test.body_text(0).unwrap().into_owned();
    let view = text
        .lines()
        .find_map(|l| l.strip_prefix("View in browser: "))
        .unwrap_or_else(|| panic!("no View in browser line in {text}"))
        .to_string();
    let html = test.body_html(0).unwrap().into_owned();
    assert!(html.contains(&format!("href=\"{view}\"")), "{html}");
    let path = view
        .strip_prefix("https://news.example.org")
        .unwrap_or_else(|| panic!("{view}"))
        .to_string();
    assert!(path.starts_with("/preview/"), "{path}");
    let dd = d.clone();
    let (preview, tampered, archive) = tokio::task::spawn_blocking(move || {
        let mut forged = path.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        (
            dd.get(&path),
            dd.get(&forged),
            dd.get("/archive/2021-07").status,
        )
    })
    .await
    .unwrap();
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("Learn more"), "{}", preview.body);
    assert!(!preview.body.contains("unsubscribe/"), "{}", preview.body);
    assert_eq!(preview.header("cache-control"), Some("no-store"));
    assert_eq!(preview.header("x-robots-tag"), Some("noindex, nofollow"));
    assert_eq!(tampered.status, 404);
    assert_eq!(archive, 404, "the archive still publishes only sent issues");
    assert!(!server
        .messages()
        .iter()
        .any(|m| m.rcpt_to.iter().any(|r| r == "ana@example.org")));
    assert_eq!(
        w.ledger()
            .test_send_count("2021-07".parse().unwrap())
            .unwrap(),
        1
    );
    let d = std::sync::Arc::try_unwrap(d).ok().unwrap();
    tokio::task::spawn_blocking(move || d.stop()).await.unwrap();
}

/// A sign-in link past its 15 minutes is refused over HTTP, opens no session, and says to ask
/// for a new one. The link is made with the daemon's own key, as the daemon would have made it
/// 16 minutes ago.
#[test]
fn an_expired_sign_in_link_opens_no_session() {
    let w = world();
    let d = Running::start(&w, &[]);
    // The daemon made its token key at start; the link is signed with it.
    let key = std::fs::read_to_string(w.path("data/token.key")).unwrap();
    let key = brief::token::TokenKey::new(brief::config::Secret::new(key.trim().into()));
    let sixteen_minutes_ago = brief::clock::Clock::now_ms(&brief::clock::SystemClock) - 16 * 60_000;
    let link = brief::staff::login_link(
        &key,
        &"https://news.example.org/".parse().unwrap(),
        &EDITOR.parse().unwrap(),
        sixteen_minutes_ago,
    );

    let r = d.post(link.path(), &[FORM], b"");

    assert_eq!(r.status, 410, "{}", r.body);
    assert!(r.body.contains("expired"), "{}", r.body);
    assert!(
        r.header("set-cookie").is_none(),
        "no session: {:?}",
        r.headers
    );
    assert_eq!(get_with(&d, "/admin/", &[]).status, 303);
    assert_eq!(d.stop().status.code(), Some(0));
}

/// A test copy's preview link past its fortnight says it expired and where to look instead,
/// rather than a bare 404. The link is made with the daemon's own key, as a test send 15 days
/// ago would have made it.
#[test]
fn an_expired_preview_link_says_so_and_points_at_the_console() {
    let w = world();
    let d = Running::start(&w, &[]);
    let key = std::fs::read_to_string(w.path("data/token.key")).unwrap();
    let key = brief::token::TokenKey::new(brief::config::Secret::new(key.trim().into()));
    let now = brief::clock::Clock::now(&brief::clock::SystemClock).timestamp();
    let sign = |expires: i64| {
        format!(
            "/preview/{}",
            key.sign(brief::token::Purpose::Preview, &["2021-07"], expires)
        )
    };

    let fresh = d.get(&sign(now + 3600));
    let expired = d.get(&sign(now - 24 * 3600));

    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(expired.status, 410, "{}", expired.body);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert!(
        expired
            .body
            .contains("href=\"https://news.example.org/admin/\""),
        "{}",
        expired.body
    );
    assert_eq!(d.stop().status.code(), Some(0));
}

#[test]
fn the_console_holds_and_releases_a_campaign_in_its_canary_window() {
    let w = World::with_config("[schedule]\ncanary = \"15s\"\n");
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);
    let csrf = csrf_of(&get("/admin/").body);

    // "Send now" with a canary window: staff get the readers' message, readers wait.
    let sent = post_form(
        &d,
        "/admin/issues/2021-07/send",
        &cookie,
        &format!("csrf={csrf}&confirm=2021-07"),
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    crate::support::daemon::wait_until("the canary copy", Duration::from_secs(20), || {
        !w.outbox("canary").is_empty()
    });
    let page = get("/admin/campaigns/2021-07");
    assert!(page.body.contains("Canary window"), "{}", page.body);
    assert!(
        page.body.contains(&format!("{EDITOR}: 250")),
        "{}",
        page.body
    );
    assert!(page.body.contains(">Hold<"), "{}", page.body);
    let waiting = |gate: &str| {
        crate::support::daemon::metric(
            &d.get("/metrics").body,
            &format!("brief_campaigns_waiting{{gate=\"{gate}\"}}"),
        )
    };
    assert_eq!((waiting("canary"), waiting("held")), (Some(1.0), Some(0.0)));

    // Hold needs the session's CSRF token; with it, the campaign is held past its window.
    assert_eq!(
        post_form(&d, "/admin/campaigns/2021-07/hold", &cookie, "").status,
        403
    );
    let held = post_form(
        &d,
        "/admin/campaigns/2021-07/hold",
        &cookie,
        &format!("csrf={csrf}"),
    );
    assert_eq!(held.status, 303, "{}", held.body);
    let id = "2021-07".parse().unwrap();
    assert!(w.ledger().campaign(id).unwrap().unwrap().held_at.is_some());
    crate::support::daemon::sleep_past_canary_window(&w, "2021-07");
    assert!(
        w.outbox("2021-07").is_empty(),
        "a held campaign mailed readers"
    );
    let page = get("/admin/campaigns/2021-07");
    assert!(page.body.contains("Held by staff since"), "{}", page.body);
    // Held, nothing is being sent: no sending time and no rate, the wait told apart.
    assert!(
        page.body.contains("No reader has been mailed yet"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Waiting before the first reader"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Sending"), "{}", page.body);
    assert!(!page.body.contains("Rate:"), "{}", page.body);
    assert!(page.body.contains(">Release<"), "{}", page.body);
    assert!(!page.body.contains(">Hold<"), "{}", page.body);
    assert_eq!((waiting("canary"), waiting("held")), (Some(0.0), Some(1.0)));
    let home = get("/admin/");
    assert!(
        home.body.contains("data-count=\"state\">held<"),
        "{}",
        home.body
    );

    // Release: the daemon sends every reader once, within seconds.
    let released = post_form(
        &d,
        "/admin/campaigns/2021-07/release",
        &cookie,
        &format!("csrf={csrf}"),
    );
    assert_eq!(released.status, 303, "{}", released.body);
    crate::support::daemon::wait_until("the campaign to finish", Duration::from_secs(20), || {
        w.ledger().campaign(id).unwrap().unwrap().finished
    });
    assert_eq!(w.outbox("2021-07").len(), 3);
    assert_eq!(w.outbox("canary").len(), 1);
    let l = w.ledger();
    let c = l.campaign(id).unwrap().unwrap();
    assert_eq!(l.counts(c.id).unwrap().total(), 3, "staff are not readers");
    // Too late to hold now.
    let late = post_form(
        &d,
        "/admin/campaigns/2021-07/hold",
        &cookie,
        &format!("csrf={csrf}"),
    );
    assert_eq!(late.status, 409, "{}", late.body);
    assert_eq!((waiting("canary"), waiting("held")), (Some(0.0), Some(0.0)));

    // The page and the summary mail count time and rate from the first reader tried (the
    // window and the hold apart), so they say the same rate.
    crate::support::daemon::wait_until("the summary mail", Duration::from_secs(30), || {
        w.outbox("staff")
            .iter()
            .any(|p| crate::support::subject_of(p).contains("Summary"))
    });
    let summary = w
        .outbox("staff")
        .into_iter()
        .find(|p| crate::support::subject_of(p).contains("Summary"))
        .unwrap();
    let text = crate::support::text_of(&summary);
    let mailed_rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Rate: "))
        .unwrap_or_else(|| panic!("no rate in the summary: {text}"))
        .to_string();
    let page = get("/admin/campaigns/2021-07");
    let shown_rate = page
        .body
        .split_once("data-rate=\"\">")
        .and_then(|(_, rest)| rest.split_once('<'))
        .map(|(rate, _)| rate.to_string())
        .unwrap_or_else(|| panic!("no rate on the page: {}", page.body));
    assert_eq!(shown_rate, mailed_rate);
    assert!(
        page.body
            .contains("Canary window and hold, before the first reader: "),
        "{}",
        page.body
    );
    assert!(page.body.contains("readers mailed in "), "{}", page.body);
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[test]
fn the_dashboard_shows_the_checks_before_the_next_send() {
    use brief::clock::{Clock, SystemClock};
    // A daily send at 09:00 UTC, checked 25 hours ahead: the daemon checks at once.
    let w = World::with_config(
        "[schedule]\ncron = \"0 0 9 * * *\"\ntimezone = \"UTC\"\ncatch_up = \"1s\"\npreflight = \"25h\"\n",
    );
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    let now = SystemClock.now();
    let today = now.date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc();
    let next = if now < today {
        today
    } else {
        today + chrono::TimeDelta::days(1)
    };
    let id = brief::issue::IssueId::of_date(next.date_naive());
    for e in std::fs::read_dir(w.path("content/2021-07")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            w.write(
                &format!("content/{id}/{name}"),
                &std::fs::read_to_string(&p).unwrap(),
            );
        }
    }
    let base = crate::preflight::web();
    crate::preflight::links_to(&w, &id.to_string(), &base);
    let d = Running::start(&w, &[]);
    crate::support::daemon::wait_until("the checks", Duration::from_secs(30), || {
        w.ledger().latest_preflight().unwrap().is_some()
    });
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let home = get_with(&d, "/admin/", &[("Cookie", &cookie)]);
    assert_eq!(home.status, 200, "{}", home.body);
    for needle in [
        "Checks before the send".to_string(),
        format!("Issue {id}, checked "),
        "1 problem(s).".to_string(),
        format!("link {base}/missing answered 404"),
        "Links checked: 4".to_string(),
    ] {
        assert!(home.body.contains(&needle), "{needle}: {}", home.body);
    }
    let metrics = d.get("/metrics").body;
    assert_eq!(
        crate::support::daemon::metric(&metrics, "brief_preflight_problems"),
        Some(1.0),
        "{metrics}"
    );
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

/// Names a spreadsheet would run as formulas: the subscribers' export, `brief report`'s CSV and
/// the console's campaign CSV all write them with a leading `'`. (Tab and CR are folded away by
/// the form and `subscribers add`, so these readers are added to the ledger directly.)
#[test]
fn every_csv_brief_writes_neutralises_formula_cells() {
    const NAMES: [&str; 6] = [
        "=HYPERLINK(\"http://x\",\"y\")",
        "+SUM(1)",
        "@cmd",
        "-1+1",
        "\tx",
        "\rx",
    ];
    let w = world();
    {
        let mut l = w.ledger();
        for (i, name) in NAMES.iter().enumerate() {
            let a = format!("f{i}@example.org").parse().unwrap();
            assert!(l.add_subscriber(&a, Some(name), None, i as i64).unwrap());
        }
    }
    // The name column (`column`) of each formula reader in a CSV, by address.
    let names_in = |csv: &str, column: usize| -> Vec<String> {
        let mut r = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        (0..NAMES.len())
            .map(|i| {
                let row = rows
                    .iter()
                    .find(|row| row[0] == format!("f{i}@example.org"))
                    .unwrap_or_else(|| panic!("f{i} not in {csv}"));
                row[column].to_string()
            })
            .collect()
    };
    let safe: Vec<String> = NAMES.iter().map(|n| format!("'{n}")).collect();

    let export = w.brief().args(["subscribers", "export"]).output().unwrap();
    assert_eq!(export.status.code(), Some(0), "{export:?}");
    assert_eq!(
        names_in(&String::from_utf8(export.stdout).unwrap(), 1),
        safe
    );

    let sent = w
        .brief()
        .args(["send", "--yes", "--issue", "2021-07"])
        .output()
        .unwrap();
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    let report = w
        .brief()
        .args(["report", "--issue", "2021-07", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(0), "{report:?}");
    let report = String::from_utf8(report.stdout).unwrap();
    assert!(
        report.starts_with("address,name,state,attempts,last_code,last_text,message_id,"),
        "{report}"
    );
    assert_eq!(names_in(&report, 1), safe);

    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let console = get_with(&d, "/admin/campaigns/2021-07.csv", &[("Cookie", &cookie)]);
    assert_eq!(console.status, 200, "{}", console.body);
    assert_eq!(names_in(&console.body, 1), safe);
    assert_eq!(console.body, report);
    d.stop();
}

/// Records a bounce of `kind` against the delivery of `address` in campaign 2021-07, as the
/// intake would after checking the report's tag.
pub(crate) fn bounce(
    w: &World,
    address: &str,
    kind: brief::ledger::BounceKind,
    diagnostic: &str,
    at: i64,
) {
    let mut l = w.ledger();
    let c = l.campaign("2021-07".parse().unwrap()).unwrap().unwrap();
    let (rows, _) = l.deliveries(c.id, None, 100).unwrap();
    let row = rows.iter().find(|r| r.address == address).unwrap();
    let target = l
        .bounce_target_by_message_id(&row.message_id)
        .unwrap()
        .unwrap();
    let key = format!("report-{address}-{at}");
    l.record_bounce(
        &target,
        &brief::ledger::NewBounce {
            kind,
            evidence: brief::ledger::Evidence::Tag,
            report_key: &key,
            status: Some("5.1.1"),
            diagnostic: Some(diagnostic),
            reporting_mta: Some("mx.example.net"),
            at,
        },
        3,
    )
    .unwrap();
}

#[test]
fn the_console_lists_campaigns_and_bounces_with_links_to_readers_by_id() {
    use brief::ledger::BounceKind;
    let w = world();
    // One reader held in the database (she has a row id), the others only in the file.
    let added = w
        .brief()
        .args(["subscribers", "add", "bea@example.org"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);

    let none = get("/admin/campaigns/");
    assert_eq!(none.status, 200, "{}", none.body);
    assert!(none.body.contains("No campaign yet"), "{}", none.body);
    let quiet = get("/admin/bounces/");
    assert_eq!(quiet.status, 200, "{}", quiet.body);
    assert!(
        quiet.body.contains("Nothing came back yet"),
        "{}",
        quiet.body
    );

    let csrf = csrf_of(&get("/admin/").body);
    let sent = post_form(
        &d,
        "/admin/issues/2021-07/send",
        &cookie,
        &format!("csrf={csrf}&confirm=2021-07"),
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    crate::support::daemon::wait_until("the campaign to finish", Duration::from_secs(20), || {
        w.ledger()
            .campaign("2021-07".parse().unwrap())
            .unwrap()
            .is_some_and(|c| c.finished)
    });
    let readers = w.outbox("2021-07").len();
    assert_eq!(readers, 4, "the file's three and bea");
    // The dashboard no longer shows the sent issue as one to send, nor checks it.
    let home = get("/admin/");
    assert!(
        home.body.contains("data-next=\"newest-sent\""),
        "{}",
        home.body
    );
    assert!(home.body.contains("was sent on"), "{}", home.body);
    assert!(!home.body.contains("Check: ok"), "{}", home.body);

    let list = get("/admin/campaigns/");
    assert_eq!(list.status, 200, "{}", list.body);
    for needle in [
        "1 campaign, newest issue first.",
        "href=\"https://news.example.org/admin/campaigns/2021-07\"",
        "data-count=\"state\">finished<",
        "data-count=\"sent\">4<",
    ] {
        assert!(list.body.contains(needle), "{needle}: {}", list.body);
    }

    // Three reports, oldest first; the page lists them newest first.
    bounce(
        &w,
        "ana@example.org",
        BounceKind::Soft,
        "452 mailbox full",
        1_000,
    );
    bounce(
        &w,
        "bea@example.org",
        BounceKind::Hard,
        "550 <no such user>",
        2_000,
    );
    bounce(
        &w,
        "ana@example.org",
        BounceKind::Complaint,
        "abuse report",
        3_000,
    );
    let page = get("/admin/bounces/");
    assert_eq!(page.status, 200, "{}", page.body);
    let at = |needle: &str| {
        page.body
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}: {}", page.body))
    };
    assert!(at("abuse report") < at("550 &lt;no such user&gt;"));
    assert!(at("550 &lt;no such user&gt;") < at("452 mailbox full"));
    assert!(
        page.body.contains("3 in all, newest first"),
        "{}",
        page.body
    );
    for kind in ["hard", "soft", "complaint"] {
        assert!(
            page.body.contains(&format!("data-kind=\"{kind}\">{kind}")),
            "{kind}: {}",
            page.body
        );
    }
    // The reader held in the database links to her page by row id; no URL has an address.
    let bea: i64 = rusqlite::Connection::open(w.path("data/brief.db"))
        .unwrap()
        .query_row(
            "SELECT rowid FROM subscribers WHERE address = 'bea@example.org'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        page.body.contains(&format!(
            "href=\"https://news.example.org/admin/subscribers/{bea}\">bea@example.org<"
        )),
        "{}",
        page.body
    );
    for href in page.body.split("href=\"").skip(1) {
        let target = &href[..href.find('"').unwrap()];
        assert!(!target.contains('@') && !target.contains("%40"), "{target}");
    }
    assert!(
        page.body
            .contains("href=\"https://news.example.org/admin/campaigns/2021-07\">2021-07<"),
        "{}",
        page.body
    );
    // A page past the last shows the last.
    let far = get("/admin/bounces/?page=9");
    assert_eq!(far.status, 200, "{}", far.body);
    assert!(far.body.contains("abuse report"), "{}", far.body);
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
