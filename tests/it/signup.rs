//! Readers join by themselves: the form, the confirmation message over SMTP, the confirmation
//! link, and the abuse rules, against `brief run` over loopback HTTP and the test SMTP server.

use std::time::{Duration, Instant};

use brief::address::AddressKey;
use brief::ledger::Reason;

use crate::support::daemon::{metric, Running};
use crate::support::smtp_server::SmtpServer;
use crate::support::World;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// A world whose mail goes to the test SMTP server on `port`, with `server` keys added.
fn world(port: u16, server: &str) -> World {
    let w = World::new();
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         helo_name = \"news.example.org\"\ntimeout = \"5s\""
    ));
    if !server.is_empty() {
        w.add_server_keys(server);
    }
    w
}

fn form_body(email: &str, name: &str) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("email", email)
        .append_pair("name", name)
        .append_pair("website", "")
        .finish()
        .into_bytes()
}

/// The messages the server received for `rcpt`.
fn mail_to(server: &SmtpServer, rcpt: &str) -> Vec<Vec<u8>> {
    server
        .messages()
        .into_iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
        .map(|m| m.data)
        .collect()
}

/// Waits (bounded) for the `n`th message to `rcpt`.
async fn wait_mail(server: &SmtpServer, rcpt: &str, n: usize) -> Vec<u8> {
    let started = Instant::now();
    loop {
        let got = mail_to(server, rcpt);
        if got.len() >= n {
            return got[n - 1].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no message {n} to {rcpt}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The path of the confirmation link in a message (`/confirm/TOKEN`), from its text part.
fn confirm_path(raw: &[u8]) -> String {
    let m = mail_parser::MessageParser::default().parse(raw).unwrap();
    let text = m.body_text(0).unwrap().into_owned();
    let at = text
        .find("https://news.example.org/confirm/")
        .unwrap_or_else(|| panic!("no confirmation link in {text}"));
    let link: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    link.trim_start_matches("https://news.example.org")
        .to_string()
}

/// Runs `f` (blocking HTTP) off the async runtime, so the SMTP server keeps serving.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Asked, not confirmed: a sign-up request in the ledger and not a subscriber.
fn is_pending(w: &World, address: &str) -> bool {
    let l = w.ledger();
    l.signups().unwrap().iter().any(|s| s.address == address)
        && l.consent(&AddressKey::from_text(address))
            .unwrap()
            .is_none()
}

fn state_of(w: &World, address: &str) -> String {
    let out = w.brief().args(["subscribers", "list"]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.split('\t').next() == Some(address))
        .and_then(|l| l.split('\t').nth(1))
        .unwrap_or("not listed")
        .to_string()
}

/// The issue's first "Done when": request, mail, GET (nothing changes), POST confirm, and the
/// next campaign includes the reader; an address that never confirmed is not mailed the issue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_asks_confirms_and_gets_the_next_issue() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), "");
    let d = std::sync::Arc::new(Running::start(&w, &[]));

    let page = {
        let d = d.clone();
        blocking(move || d.get("/subscribe")).await
    };
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"email\"") && page.body.contains("I agree to receive"));
    for (email, name) in [("new@example.org", "New Reader"), ("maybe@example.org", "")] {
        let d = d.clone();
        let r = blocking(move || d.post("/subscribe", &[FORM], &form_body(email, name))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("Check your inbox"), "{}", r.body);
    }
    let mail = wait_mail(&server, "new@example.org", 1).await;
    let parsed = mail_parser::MessageParser::default().parse(&mail).unwrap();
    assert_eq!(parsed.subject(), Some("Confirm your subscription to BRIEF"));
    assert!(
        parsed.body_html(0).is_some(),
        "an HTML part in the newsletter's look"
    );
    assert!(
        parsed.header("List-Unsubscribe").is_none(),
        "a confirmation is no list message"
    );
    let path = confirm_path(&mail);

    // A link scanner's GET changes nothing.
    let got = {
        let (d, path) = (d.clone(), path.clone());
        blocking(move || d.get(&path)).await
    };
    assert_eq!(got.status, 200);
    assert!(got.body.contains("Confirm subscription"), "{}", got.body);
    assert!(is_pending(&w, "new@example.org"));
    assert_eq!(state_of(&w, "new@example.org"), "pending");

    let confirmed = {
        let (d, path) = (d.clone(), path.clone());
        blocking(move || d.post(&path, &[FORM], b"")).await
    };
    assert_eq!(confirmed.status, 200);
    assert!(
        confirmed.body.contains("You're subscribed"),
        "{}",
        confirmed.body
    );
    assert!(confirmed.body.contains("/archive/"), "{}", confirmed.body);
    let key = AddressKey::from_text("new@example.org");
    let consent = w
        .ledger()
        .consent(&key)
        .unwrap()
        .expect("held in the database");
    assert_eq!(consent.source, "form");
    let (requested, at) = (consent.requested_at.unwrap(), consent.confirmed_at.unwrap());
    assert!(requested <= at, "{consent:?}");
    // Doing it again changes nothing.
    let again = {
        let (d, path) = (d.clone(), path.clone());
        blocking(move || d.post(&path, &[FORM], b"")).await
    };
    assert_eq!(again.body, confirmed.body);
    assert_eq!(w.ledger().consent(&key).unwrap().unwrap(), consent);
    assert_eq!(state_of(&w, "new@example.org"), "active");
    assert!(is_pending(&w, "maybe@example.org"));
    let metrics = {
        let d = d.clone();
        blocking(move || d.get("/metrics").body).await
    };
    assert_eq!(
        metric(&metrics, "brief_subscriptions_total{event=\"confirmed\"}"),
        Some(1.0)
    );
    let stopped = std::sync::Arc::into_inner(d).unwrap().stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    for address in ["new@example.org", "maybe@example.org"] {
        assert!(
            !stopped.stderr.contains(address),
            "{address} logged: {}",
            stopped.stderr
        );
    }
    assert!(
        stopped.stderr.contains("subscription confirmed"),
        "{}",
        stopped.stderr
    );

    let before = server.messages().len();
    let out = {
        let mut cmd = w.brief();
        cmd.args(["send", "--yes", "--issue", "2021-07"]);
        blocking(move || cmd.output().unwrap()).await
    };
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let issue: Vec<String> = server.messages()[before..]
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    assert!(issue.iter().any(|r| r == "new@example.org"), "{issue:?}");
    assert!(!issue.iter().any(|r| r == "maybe@example.org"), "{issue:?}");
    assert_eq!(
        issue.len(),
        4,
        "the three of the file and the new reader: {issue:?}"
    );
}

/// `POST /subscribe` answers the same bytes whatever the address's state, and mails only the
/// addresses that are not active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_is_the_same_whatever_the_address() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), "");
    let out = w
        .brief()
        .args(["subscribers", "remove", "bob@example.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    w.ledger()
        .suppress(
            &"carla@example.org".parse().unwrap(),
            Reason::Bounced,
            "550 5.1.1",
            1,
        )
        .unwrap();
    let d = std::sync::Arc::new(Running::start(&w, &[]));
    let post = |email: &'static str| {
        let d = d.clone();
        blocking(move || d.post("/subscribe", &[FORM], &form_body(email, "")))
    };

    let new = post("new@example.org").await;
    wait_mail(&server, "new@example.org", 1).await;
    let pending = post("new@example.org").await;
    let active = post("ana@example.org").await;
    let unsubscribed = post("bob@example.org").await;
    let bounced = post("carla@example.org").await;

    for r in [&pending, &active, &unsubscribed, &bounced] {
        assert_eq!((r.status, &r.body), (new.status, &new.body));
    }
    // The leavers may come back: they get a confirmation; the active reader gets nothing.
    wait_mail(&server, "bob@example.org", 1).await;
    wait_mail(&server, "carla@example.org", 1).await;
    assert!(mail_to(&server, "ana@example.org").is_empty());
    // Within 10 minutes the pending address got no second message.
    assert_eq!(mail_to(&server, "new@example.org").len(), 1);
    let stopped = std::sync::Arc::into_inner(d).unwrap().stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

/// A reader who left comes back by confirming; `subscribers add` still never re-subscribes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_who_left_comes_back_by_confirming() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), "");
    let out = w
        .brief()
        .args(["subscribers", "remove", "bob@example.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let refused = w
        .brief()
        .args(["subscribers", "add", "bob@example.org"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let d = std::sync::Arc::new(Running::start(&w, &[]));

    {
        let d = d.clone();
        blocking(move || d.post("/subscribe", &[FORM], &form_body("Bob@Example.org", "Bob"))).await;
    }
    let path = confirm_path(&wait_mail(&server, "bob@example.org", 1).await);
    let confirmed = {
        let d = d.clone();
        blocking(move || d.post(&path, &[FORM], b"")).await
    };

    assert!(
        confirmed.body.contains("You're subscribed"),
        "{}",
        confirmed.body
    );
    assert_eq!(state_of(&w, "bob@example.org"), "active");
    std::sync::Arc::into_inner(d).unwrap().stop();
}

/// Consent moves forward only: a used confirmation link, posted again after the reader left
/// (unsubscribed, bounced or complained), changes nothing and offers the form; a new request
/// made after the leave, once confirmed, makes the reader active again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_confirmation_link_never_undoes_a_leave() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), "");
    let d = std::sync::Arc::new(Running::start(&w, &[]));
    let post = |path: String, body: Vec<u8>| {
        let d = d.clone();
        blocking(move || d.post(&path, &[FORM], &body))
    };
    let readers = [
        ("left@example.org", "unsubscribed"),
        ("bounced@example.org", "bounced"),
        ("complained@example.org", "complained"),
    ];
    for (address, leave) in readers {
        post("/subscribe".into(), form_body(address, "")).await;
        let path = confirm_path(&wait_mail(&server, address, 1).await);
        let first = post(path.clone(), Vec::new()).await;
        assert!(first.body.contains("You're subscribed"), "{}", first.body);
        assert_eq!(state_of(&w, address), "active");

        if leave == "unsubscribed" {
            let out = w
                .brief()
                .args(["subscribers", "remove", address])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{out:?}");
        } else {
            let reason = if leave == "bounced" {
                Reason::Bounced
            } else {
                Reason::Complained
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            w.ledger()
                .suppress(&address.parse().unwrap(), reason, "", now)
                .unwrap();
        }

        let old = post(path.clone(), Vec::new()).await;
        assert_eq!(old.status, 409, "{}", old.body);
        assert!(
            old.body.contains("older than the last change") && old.body.contains("name=\"email\""),
            "{}",
            old.body
        );
        let key = AddressKey::from_text(address);
        assert_eq!(
            w.ledger().suppression(&key).unwrap().map(|r| r.as_str()),
            Some(leave)
        );
        assert_eq!(state_of(&w, address), leave);

        // The owner asks again: the new link confirms.
        post("/subscribe".into(), form_body(address, "")).await;
        let path = confirm_path(&wait_mail(&server, address, 2).await);
        let again = post(path, Vec::new()).await;
        assert!(again.body.contains("You're subscribed"), "{}", again.body);
        assert_eq!(w.ledger().suppression(&key).unwrap(), None);
        assert_eq!(state_of(&w, address), "active");
    }
    std::sync::Arc::into_inner(d).unwrap().stop();
}

/// An altered link and an expired one get the form again, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_and_expired_links_get_the_form_and_change_nothing() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), "confirm_ttl = \"1s\"");
    let d = std::sync::Arc::new(Running::start(&w, &[]));
    {
        let d = d.clone();
        blocking(move || d.post("/subscribe", &[FORM], &form_body("late@example.org", ""))).await;
    }
    let path = confirm_path(&wait_mail(&server, "late@example.org", 1).await);
    let mut altered = path.clone().into_bytes();
    let i = altered.len() - 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();

    let bad = {
        let d = d.clone();
        blocking(move || d.post(&altered, &[FORM], b"")).await
    };
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("not valid") && bad.body.contains("name=\"email\""),
        "{}",
        bad.body
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for method in ["GET", "POST"] {
        let (d, path) = (d.clone(), path.clone());
        let r = blocking(move || d.request(method, &path, &[FORM], b"")).await;
        assert_eq!(r.status, 410, "{method}");
        assert!(
            r.body.contains("expired") && r.body.contains("name=\"email\""),
            "{}",
            r.body
        );
    }
    assert!(is_pending(&w, "late@example.org"));
    assert!(w
        .ledger()
        .consent(&AddressKey::from_text("late@example.org"))
        .unwrap()
        .is_none());
    std::sync::Arc::into_inner(d).unwrap().stop();
}

/// A bot that fills the hidden field gets the same answer and no message; a malformed address
/// gets the form back (400); a body over 4 KiB is refused (413).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_typos_and_big_bodies() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), "");
    let d = std::sync::Arc::new(Running::start(&w, &[]));
    let post = |body: Vec<u8>| {
        let d = d.clone();
        blocking(move || d.post("/subscribe", &[FORM], &body))
    };

    let person = post(form_body("person@example.org", "")).await;
    let bot =
        post(b"email=bot%40example.org&name=&website=http%3A%2F%2Fspam.example".to_vec()).await;
    let typo = post(form_body("not an address", "Typo")).await;
    let big = post(form_body("big@example.org", &"x".repeat(5000))).await;
    // The queue is worked in order: once a later request's mail is in, the bot's was not sent.
    post(form_body("after@example.org", "")).await;
    wait_mail(&server, "after@example.org", 1).await;

    assert_eq!((bot.status, &bot.body), (person.status, &person.body));
    assert!(mail_to(&server, "bot@example.org").is_empty());
    assert_eq!(typo.status, 400);
    assert!(
        typo.body.contains("Please check the address"),
        "{}",
        typo.body
    );
    assert!(
        typo.body.contains("value=\"Typo\""),
        "what was typed stays: {}",
        typo.body
    );
    assert_eq!(big.status, 413);
    let metrics = {
        let d = d.clone();
        blocking(move || d.get("/metrics").body).await
    };
    assert_eq!(
        metric(&metrics, "brief_subscriptions_total{event=\"rejected\"}"),
        Some(1.0)
    );
    std::sync::Arc::into_inner(d).unwrap().stop();
}

/// The form wants an address on the internet: a dotless domain, an IP literal and a NUL
/// (`%00`) get the form back (400) saying why, and nothing is noted or mailed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_refuses_local_domains_ip_literals_and_nul() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), "");
    let d = std::sync::Arc::new(Running::start(&w, &[]));
    for (email, why) in [
        ("x@localhost", "no dot in its domain"),
        ("x@[127.0.0.1]", "an IP address for its domain"),
        ("x@example.org\0", "a control character"),
    ] {
        let r = {
            let d = d.clone();
            blocking(move || d.post("/subscribe", &[FORM], &form_body(email, ""))).await
        };
        assert_eq!(r.status, 400, "{email:?}: {}", r.body);
        assert!(
            r.body.contains("Please check the address") && r.body.contains(why),
            "{email:?}: {}",
            r.body
        );
    }
    assert!(w.ledger().signups().unwrap().is_empty());
    assert!(server.messages().is_empty());
    std::sync::Arc::into_inner(d).unwrap().stop();
}

/// The per-client limit: the connection's address, or behind a proxy named in the config, the
/// address the proxy forwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_ip_has_an_hourly_limit() {
    let server = SmtpServer::start().await;
    let direct = world(server.port(), "signups_per_hour = 2");
    let behind = world(
        server.port(),
        "signups_per_hour = 1\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    let statuses = |w: &World, forwarded: &'static [&'static str]| {
        let d = Running::start(w, &[]);
        let got: Vec<u16> = forwarded
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let body = form_body(&format!("r{i}@example.org"), "");
                let mut headers = vec![FORM];
                if !ip.is_empty() {
                    headers.push(("X-Forwarded-For", ip));
                }
                d.post("/subscribe", &headers, &body).status
            })
            .collect();
        d.stop();
        got
    };

    // Without a trusted proxy, X-Forwarded-For is ignored: all come from 127.0.0.1.
    let (direct, behind) = blocking(move || {
        (
            statuses(&direct, &["203.0.113.5", "203.0.113.6", "203.0.113.7"]),
            statuses(
                &behind,
                &["203.0.113.5", "203.0.113.5", "198.51.100.1, 203.0.113.6"],
            ),
        )
    })
    .await;

    assert_eq!(direct, [200, 200, 429]);
    assert_eq!(behind, [200, 429, 200]);
}

/// The per-client limit is counted in the ledger: a restart does not reset it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_limit_survives_a_restart() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), "signups_per_hour = 1");
    let statuses = blocking(move || {
        let mut got = Vec::new();
        for run in 0..2 {
            let d = Running::start(&w, &[]);
            for i in 0..2 {
                let body = form_body(&format!("r{run}{i}@example.org"), "");
                got.push(d.post("/subscribe", &[FORM], &body).status);
            }
            d.stop();
        }
        got
    })
    .await;
    assert_eq!(statuses, [200, 429, 429, 429]);
}

/// While the relay stalls and the sign-up queue is full, the form still answers at once and the
/// unsubscribe links keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sign_ups_does_not_hold_the_unsubscribe_links() {
    use crate::support::smtp_server::Rule;
    let server = SmtpServer::start().await;
    server.rule(Rule::greeting().stall());
    let w = world(server.port(), "signups_per_hour = 1000");
    // The world's token key, made by a first run.
    let out = w.brief().args(["preview"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let d = std::sync::Arc::new(Running::start(&w, &[]));

    let slowest = {
        let d = d.clone();
        blocking(move || {
            (0..100)
                .map(|i| {
                    let started = Instant::now();
                    let r = d.post(
                        "/subscribe",
                        &[FORM],
                        &form_body(&format!("f{i}@example.org"), ""),
                    );
                    assert_eq!(r.status, 200);
                    started.elapsed()
                })
                .max()
                .unwrap()
        })
        .await
    };
    let key = std::fs::read_to_string(w.path("data/token.key")).unwrap();
    let token = brief::token::TokenKey::new(brief::config::Secret::new(key.trim().into()))
        .token("ana@example.org");
    let unsubscribed = {
        let d = d.clone();
        blocking(move || {
            let started = Instant::now();
            let r = d.post(
                &format!("/unsubscribe/{token}"),
                &[FORM],
                b"List-Unsubscribe=One-Click",
            );
            (r.status, started.elapsed())
        })
        .await
    };

    // Generous bounds: each answer is a few milliseconds; the relay stalls for seconds.
    assert!(
        slowest < Duration::from_secs(2),
        "a sign-up waited {slowest:?}"
    );
    assert_eq!(unsubscribed.0, 200);
    assert!(
        unsubscribed.1 < Duration::from_secs(2),
        "{:?}",
        unsubscribed.1
    );
    assert_eq!(state_of(&w, "ana@example.org"), "unsubscribed");
    let metrics = {
        let d = d.clone();
        blocking(move || d.get("/metrics").body).await
    };
    let rejected = metric(&metrics, "brief_subscriptions_total{event=\"rejected\"}").unwrap();
    assert!(
        rejected >= 100.0 - 64.0 - 1.0,
        "the overflow is refused and counted: {rejected}"
    );
    let stopped = std::sync::Arc::into_inner(d).unwrap().stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
