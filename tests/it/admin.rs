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

/// The sign-in messages in the outbox: (recipient, link path), oldest first.
fn mails(w: &World) -> Vec<(String, String)> {
    w.outbox("staff")
        .iter()
        .map(|p| {
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
            let at = text
                .find("news.example.org/admin/login/")
                .unwrap_or_else(|| panic!("no sign-in link in {text}"));
            let link: String = text[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            (to, link.trim_start_matches("news.example.org").to_string())
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
fn sign_in(d: &Running, w: &World, email: &str, nth: usize) -> String {
    assert_eq!(ask_link(d, email).status, 200);
    let (to, path) = wait_mails(w, nth)[nth - 1].clone();
    assert_eq!(to, email);
    let r = d.post(&path, &[FORM], b"");
    assert_eq!(r.status, 303, "{}", r.body);
    session_cookie(&r)
}

fn get_with(d: &Running, path: &str, headers: &[(&str, &str)]) -> Reply {
    d.request("GET", path, headers, b"")
}

/// The CSRF token of the sign-out form on `/admin/`.
fn csrf_of(page: &str) -> String {
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
