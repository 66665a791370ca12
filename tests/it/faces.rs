//! Every face a person sees, in one place: each mail brief sends and each page it serves, made
//! the way a person meets it (the sign-up form filled in, the link in the mail opened, the
//! console signed into, a campaign sent), then looked at in headless Chromium at 375 and 1280 px
//! wide, light and dark (`prefers-color-scheme` through the DevTools protocol). In each of the
//! four views nothing may scroll sideways and axe-core may find no serious or critical fault of
//! the WCAG 2 A and AA rules.
//!
//! [`FACES`] lists them; `tidy::every_mail_kind_and_page_is_a_face` fails when brief gains a mail
//! kind or a route that is neither a face here nor in [`NOT_FACES`] with its reason.
//!
//! With `BRIEF_FACES=1`, each view's screenshot lands in `target/faces/` (`NAME-WIDTH-SCHEME.png`);
//! `scripts/screenshots.sh` runs it so and copies the docs' pictures from there.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use brief::clock::{Clock, FixedClock, SystemClock};
use brief::daemon::Daemon;
use tokio_util::sync::CancellationToken;

use crate::browser::{on_own_port, sign_in};
use crate::support::browser::{Browser, Scheme};
use crate::support::daemon::{wait_until, Running};
use crate::support::{subject_of, World};

/// What a face is: a kind of mail (its words: a `NoticeKind`'s, or a `message::Kind` variant's in
/// lower case), or a page some routes answer (their patterns as the router spells them).
pub(crate) enum Shows {
    Mail(&'static str),
    Page(&'static [&'static str]),
}

/// A face: its name (also its screenshots' file name) and what it shows.
pub(crate) struct Face {
    pub name: &'static str,
    pub shows: Shows,
}

const fn mail(name: &'static str, kind: &'static str) -> Face {
    Face {
        name,
        shows: Shows::Mail(kind),
    }
}

const fn page(name: &'static str, routes: &'static [&'static str]) -> Face {
    Face {
        name,
        shows: Shows::Page(routes),
    }
}

/// Every mail and page a person sees.
pub(crate) const FACES: &[Face] = &[
    // Mails.
    mail("issue-mail", "campaign"),
    mail("test-copy-mail", "test"),
    mail("canary-copy-mail", "canary"),
    mail("confirmation-mail", "confirmation"),
    mail("sign-in-mail", "staff_login"),
    mail("checks-before-send-mail", "preflight"),
    mail("summary-mail", "summary"),
    mail("summary-a-day-later-mail", "summary"),
    mail("canary-held-mail", "canary_held"),
    // A reader's pages.
    page("sign-up", &["/subscribe"]),
    page("sign-up-refused", &["/subscribe"]),
    page("sign-up-answer", &["/subscribe"]),
    page("confirm", &["/confirm/{token}"]),
    page("confirmed", &["/confirm/{token}"]),
    page("confirm-link-not-valid", &["/confirm/{token}"]),
    page("unsubscribe", &["/unsubscribe/{token}"]),
    page("unsubscribed", &["/unsubscribe/{token}"]),
    page("preview", &["/preview/{token}"]),
    page("preview-expired-410", &["/preview/{token}"]),
    page("archive-index", &["/archive", "/archive/"]),
    page("archive-issue", &["/archive/{id}"]),
    page("not-found-404", &[]),
    // Staff's pages.
    page("sign-in", &["/admin/login"]),
    page("sign-in-answer", &["/admin/login"]),
    page("sign-in-link", &["/admin/login/{token}"]),
    page("dashboard", &["/admin/"]),
    page("issues", &["/admin/issues/"]),
    page("issue", &["/admin/issues/{id}"]),
    page("test-sent", &["/admin/issues/{id}/test"]),
    page("send-refused", &["/admin/issues/{id}/send"]),
    page("campaign-canary", &["/admin/campaigns/{id}"]),
    page("campaign-held", &["/admin/campaigns/{id}"]),
    page("campaign", &["/admin/campaigns/{id}"]),
    page("campaigns", &["/admin/campaigns/"]),
    page("bounces", &["/admin/bounces/"]),
    page("issue-sent", &["/admin/issues/{id}"]),
    page("console-not-found", &["/admin/issues/{id}"]),
    page("activity", &["/admin/activity/"]),
    page("subscribers", &["/admin/subscribers/"]),
    page("reader", &["/admin/subscribers/{id}"]),
    page(
        "reader-unsubscribe-confirm",
        &["/admin/subscribers/{id}/unsubscribe"],
    ),
    page(
        "reader-resend-confirm",
        &["/admin/subscribers/{id}/confirmation"],
    ),
    page(
        "reader-confirmation-sent",
        &["/admin/subscribers/{id}/confirmation"],
    ),
    page("reader-forget-confirm", &["/admin/subscribers/{id}/forget"]),
    page("reader-add", &["/admin/subscribers/add"]),
    page("reader-add-confirm", &["/admin/subscribers/add"]),
    page("reader-import", &["/admin/subscribers/import"]),
    page("reader-import-preview", &["/admin/subscribers/import"]),
    page("reader-import-done", &["/admin/subscribers/import/apply"]),
];

/// Every face in Spanish, made and looked at by
/// `every_spanish_face_speaks_spanish_fits_and_passes_axe` in a world of two languages: the
/// same checks, and not one English word of the catalogue on it.
pub(crate) const SPANISH_FACES: &[Face] = &[
    mail("es-issue-mail", "campaign"),
    mail("es-confirmation-mail", "confirmation"),
    page("es-sign-up", &["/subscribe"]),
    page("es-sign-up-refused", &["/subscribe"]),
    page("es-sign-up-answer", &["/subscribe"]),
    page("es-confirm", &["/confirm/{token}"]),
    page("es-confirmed", &["/confirm/{token}"]),
    page("es-confirm-link-not-valid", &["/confirm/{token}"]),
    page("es-switch", &["/language/{lang}/{token}"]),
    page("es-switched", &["/language/{lang}/{token}"]),
    // The switch back, from a Spanish mail, speaks English.
    page("switch-to-english", &["/language/{lang}/{token}"]),
    // The English faces of a newsletter in two languages: the issue with its link to Spanish,
    // and the archive listing both editions.
    mail("en-issue-mail-with-spanish", "campaign"),
    page("en-archive-index-two-languages", &["/archive", "/archive/"]),
    page("es-unsubscribe", &["/unsubscribe/{token}"]),
    page("es-unsubscribed", &["/unsubscribe/{token}"]),
    page("es-preview", &["/preview/{token}/{lang}"]),
    page("es-preview-expired-410", &["/preview/{token}/{lang}"]),
    page("es-archive-index", &["/archive", "/archive/"]),
    page("es-archive-issue", &["/archive/{id}/{lang}"]),
    page("es-not-found-404", &[]),
];

/// Routes that show a person no page of their own, and why.
pub(crate) const NOT_FACES: &[(&str, &str)] = &[
    ("/healthz", "plain text for a monitor"),
    ("/metrics", "Prometheus text for a scraper"),
    ("/admin", "redirects to /admin/"),
    ("/admin/live.js", "the console's script"),
    ("/admin/campaigns/{id}/counts", "JSON for the campaign page's script"),
    ("/admin/logout", "redirects to the sign-in page"),
    (
        "/admin/campaigns/{id}/hold",
        "redirects to the campaign page (a refusal is the console's one-message page, as send-refused)",
    ),
    ("/admin/campaigns/{id}/release", "redirects to the campaign page"),
    (
        "/admin/feeds/fetch",
        "redirects to the dashboard or the issue page, whose feeds table shows the outcome",
    ),
    ("/admin/subscribers/export.csv", "a CSV download"),
    (
        "/admin/subscribers/{id}/language",
        "redirects to the reader page, which shows the language (a refused one is the console's one-message page)",
    ),
    ("/admin/test-send", "a JSON API for scripts"),
    ("/webhooks/bounce", "a JSON API for the relay"),
];

/// The four views of every face.
const VIEWS: [(u32, Scheme); 4] = [
    (375, Scheme::Light),
    (375, Scheme::Dark),
    (1280, Scheme::Light),
    (1280, Scheme::Dark),
];

/// Looks at faces and remembers which.
struct Looker {
    b: Browser,
    seen: BTreeSet<&'static str>,
    shots: Option<PathBuf>,
    mails: PathBuf,
}

impl Looker {
    /// Checks the page the browser shows, as face `name`, in every view.
    fn look(&mut self, name: &'static str) {
        assert!(
            FACES.iter().chain(SPANISH_FACES).any(|f| f.name == name),
            "{name} is not in FACES"
        );
        if name.starts_with("es-") {
            let text = self.b.text();
            crate::support::assert_none(name, &english_in(&text));
        }
        assert!(self.seen.insert(name), "{name} was looked at twice");
        let links = self.b.execute(LINK_TEXT_JS);
        assert_eq!(links, serde_json::json!([]), "the links of the {name} face");
        for (width, scheme) in VIEWS {
            let view = format!("the {name} face at {width}px, {}", scheme.name());
            self.b.view(width, scheme);
            let widths = self.b.execute(
                "return [document.documentElement.scrollWidth, document.body.scrollWidth, \
                 window.innerWidth];",
            );
            // A phone lays out a page wider than its screen at the page's width (and shrinks
            // it); a desktop scrolls it sideways.
            assert!(
                widths[2] == width && !self.b.scrolls_sideways(),
                "{view} is wider than the screen (scroll widths and window: {widths}): {}",
                self.widest(width)
            );
            let faults = self.b.axe();
            assert!(
                faults.is_empty(),
                "axe-core on {view}:\n{}",
                faults.join("\n")
            );
            if let Some(dir) = &self.shots {
                let file = dir.join(format!("{name}-{width}-{}.png", scheme.name()));
                std::fs::write(file, self.b.screenshot()).unwrap();
            }
        }
        self.b.view(1280, Scheme::Light);
    }

    /// The innermost elements that reach past the window's right edge: what makes a page too
    /// wide.
    fn widest(&self, width: u32) -> serde_json::Value {
        self.b.execute(&format!(
            "const w = {width}, wide = e => e.getBoundingClientRect().right > w;\
             return [...document.body.querySelectorAll('*')]\
               .filter(e => wide(e) && ![...e.children].some(wide))\
               .slice(0, 3)\
               .map(e => [Math.round(e.getBoundingClientRect().right), e.tagName + \
                 (e.className ? '.' + e.className : '') + ' ' + \
                 (e.textContent || '').trim().slice(0, 60)]);"
        ))
    }

    /// Opens `url`, waits until the page says `says`, and looks at it as face `name`.
    fn visit(&mut self, url: &str, says: &str, name: &'static str) {
        self.b.open(url);
        self.b.wait_for_text(says);
        self.look(name);
    }

    /// Opens the HTML part of the mail in `eml` as a mail program would show it, and looks at
    /// it as face `name`.
    fn look_at_mail(&mut self, name: &'static str, eml: &[u8]) {
        let m = mail_parser::MessageParser::default()
            .parse(eml)
            .unwrap_or_else(|| panic!("{name}: not a message"));
        let html = m
            .body_html(0)
            .unwrap_or_else(|| panic!("{name}: no HTML part"));
        let language = m
            .header_raw("Content-Language")
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name}: the message has no Content-Language"));
        // The markup says the language the header says.
        crate::support::assert_none(name, &markup_faults(&html, &language));
        if name.starts_with("es-") {
            assert_eq!(language, "es", "{name}: the message's Content-Language");
            let text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
            let subject = m.subject().unwrap_or_default().to_string();
            crate::support::assert_none(name, &english_in(&format!("{subject}\n{text}")));
        }
        let file = self.mails.join(format!("{name}.html"));
        std::fs::write(&file, html.as_bytes()).unwrap();
        self.b.open(&format!("file://{}", file.display()));
        self.look(name);
    }
}

/// What mail clients would lose or a reader could not use that axe-core cannot see in a
/// browser (several clients strip `<html>` and `<head>`): `lang` and `dir` on `<html>`, on the
/// first element inside `<body>` and on the wrapper table, `role="presentation"` on every layout table, `alt` on every
/// image, a `<title>`.
pub(crate) fn markup_faults(html: &str, lang: &str) -> Vec<String> {
    let dir = brief::lang::Lang::parse(lang)
        .map(|l| l.direction())
        .unwrap_or("ltr");
    let said = format!("lang=\"{lang}\" dir=\"{dir}\"");
    let tag_at = |i: usize| &html[i..i + html[i..].find('>').unwrap_or(html.len() - i)];
    let mut faults = Vec::new();
    if !html.contains(&format!("<html {said}")) {
        faults.push(format!("<html> has no {said}"));
    }
    // The first element inside `<body>` (a preheader, or the wrapper) and the wrapper table.
    match html.find("<body") {
        None => faults.push("no <body>".to_string()),
        Some(b) => {
            let first = html[b + 1..].find('<').map(|w| b + 1 + w);
            let table = html[b..].find("<table").map(|w| b + w);
            for at in [first, table] {
                if !at.is_some_and(|at| tag_at(at).contains(&said)) {
                    let tag = at.map(tag_at).unwrap_or("nothing");
                    faults.push(format!("{tag} inside <body> has no {said}"));
                }
            }
        }
    }
    for (i, _) in html.match_indices("<table") {
        if !tag_at(i).contains("role=\"presentation\"") {
            faults.push(format!(
                "a layout table without role=presentation: {}",
                tag_at(i)
            ));
        }
    }
    for (i, _) in html.match_indices("<img") {
        if !tag_at(i).contains(" alt=") {
            faults.push(format!("an image without alt: {}", tag_at(i)));
        }
    }
    let title = html
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next());
    if title.is_none_or(|t| t.trim().is_empty()) {
        faults.push("no <title>".to_string());
    }
    faults
}

/// Links a reader cannot tell apart out of context (WCAG 2.4.4, as a list of links shows them):
/// no words, words that say nothing ("Learn more", "click here"), or the same words leading to
/// different places.
const LINK_TEXT_JS: &str = r#"
const vague = ['learn more', 'read more', 'more', 'click here', 'here', 'link', 'this link'];
const seen = new Map(), faults = [];
for (const a of document.querySelectorAll('a[href]')) {
  const alts = [...a.querySelectorAll('img[alt]')].map(i => i.alt).join(' ');
  const words = (a.innerText || alts).replace(/\s+/g, ' ').trim();
  const key = words.toLowerCase();
  if (!words) faults.push('a link with no words: ' + a.href);
  else if (vague.includes(key)) faults.push('a link that says only "' + words + '": ' + a.href);
  if (seen.has(key) && seen.get(key) !== a.href)
    faults.push('two links say "' + words + '" but lead apart: ' + seen.get(key) + ', ' + a.href);
  seen.set(key, a.href);
}
return faults;"#;

/// The newest message in `w`'s outbox folder `sub` whose subject starts with `subject`.
fn mail_in(w: &World, sub: &str, subject: &str) -> Vec<u8> {
    let mut found = Vec::new();
    wait_until(
        &format!("a message {subject:?} in the outbox's {sub}"),
        Duration::from_secs(30),
        || {
            found = w
                .outbox(sub)
                .into_iter()
                .filter(|p| subject_of(p).starts_with(subject))
                .collect();
            !found.is_empty()
        },
    );
    found.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    std::fs::read(found.last().unwrap()).unwrap()
}

/// The first link in the text part of `eml` that starts with `prefix`.
pub(crate) fn link_in(eml: &[u8], prefix: &str) -> String {
    let m = mail_parser::MessageParser::default().parse(eml).unwrap();
    let text = m.body_text(0).unwrap().into_owned();
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect()
}

pub(crate) fn file_of(w: &World, sub: &str, to: &str) -> PathBuf {
    w.outbox(sub)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(to))
        .unwrap_or_else(|| panic!("no message to {to} in {sub}"))
}

/// Turns the browser's own checks of the page's forms off, so the server's answer to a bad
/// value can be seen.
fn no_validation(b: &Browser) {
    b.execute("document.querySelectorAll('form').forEach(f => f.noValidate = true); return true;");
}

fn config(w: &World, base: &str, schedule: &str) {
    w.write("brief.toml", &format!("{base}\n{schedule}"));
}

#[test]
fn every_face_fits_phone_and_desktop_in_light_and_dark_and_passes_axe() {
    let w = World::new();
    w.add_server_keys("staff = [\"editor@example.org\"]");
    let port = on_own_port(&w);
    let base = std::fs::read_to_string(w.config_path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shots = std::env::var_os("BRIEF_FACES").map(|_| {
        let dir = crate::support::repo().join("target/faces");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let mut l = Looker {
        b: Browser::start(),
        seen: BTreeSet::new(),
        shots,
        mails: w.path("faces"),
    };
    std::fs::create_dir_all(&l.mails).unwrap();
    let site = format!("http://127.0.0.1:{port}");

    // The checks before a scheduled send, a day ahead, on a fixed clock; the entries' links
    // point at a loopback server, the first one missing (a problem to report).
    config(
        &w,
        &base,
        "[schedule]\ncron = \"0 0 9 23 * *\"\ntimezone = \"UTC\"\npreflight = \"24h\"\n",
    );
    crate::preflight::links_to(&w, "2021-07", &crate::preflight::web());
    rt.block_on(async {
        let at = chrono::DateTime::parse_from_rfc3339("2021-07-22T12:00:00Z").unwrap();
        let app = brief::app::App::new(w.config(), Arc::new(FixedClock::new(at.to_utc()))).unwrap();
        let d = Daemon::new(app, CancellationToken::new()).unwrap();
        let fire = chrono::DateTime::parse_from_rfc3339("2021-07-23T09:00:00Z").unwrap();
        assert!(d.preflight(fire.to_utc()).await.is_some());
        d.drain_notices().await;
    });
    l.look_at_mail(
        "checks-before-send-mail",
        &mail_in(&w, "staff", "Checks before the send"),
    );

    // The daemon, with a canary window, for everything else.
    config(&w, &base, "[schedule]\ncanary = \"2h\"\n");
    let d = Running::start(&w, &[]);

    // A reader signs up.
    l.visit(
        &format!("{site}/subscribe"),
        "Subscribe to BRIEF",
        "sign-up",
    );
    no_validation(&l.b);
    l.b.fill("Email address", "not an address");
    l.b.click("Subscribe");
    l.b.wait_for_text("Please check the address");
    l.look("sign-up-refused");
    l.b.fill("Email address", "reader@example.org");
    l.b.click("Subscribe");
    l.b.wait_for_text("Check your inbox");
    l.look("sign-up-answer");
    let confirmation = mail_in(&w, "signup", "");
    l.look_at_mail("confirmation-mail", &confirmation);
    l.visit(
        &link_in(&confirmation, &format!("{site}/confirm/")),
        "Confirm your subscription",
        "confirm",
    );
    l.b.click("Confirm subscription");
    l.b.wait_for_text("You're subscribed");
    l.look("confirmed");
    l.visit(
        &format!("{site}/confirm/not-a-token"),
        "not valid",
        "confirm-link-not-valid",
    );

    // Staff sign in, test, and send with a canary.
    l.visit(&format!("{site}/admin/"), "Staff sign-in", "sign-in");
    // The checks mail came first to staff; the sign-in link is the second.
    sign_in(&l.b, &w, port, "editor@example.org", 2);
    l.look("dashboard");
    l.look_at_mail("sign-in-mail", &mail_in(&w, "staff", "Sign in"));
    // The link page, from a second link (the first one is used).
    l.b.open(&format!("{site}/admin/login"));
    l.b.fill("Email address", "editor@example.org");
    l.b.click("Email me a sign-in link");
    l.b.wait_for_text("Check your inbox");
    l.look("sign-in-answer");
    let second = mail_in(&w, "staff", "Sign in");
    l.visit(
        &link_in(&second, &format!("{site}/admin/login/")),
        "Press the button to sign in",
        "sign-in-link",
    );

    l.visit(
        &format!("{site}/admin/issues/2021-07"),
        "Send a test to me",
        "issue",
    );
    l.b.click("Send a test to me");
    l.b.wait_for_text("Test sent");
    l.look("test-sent");
    let test = mail_in(&w, "test", "");
    l.look_at_mail("test-copy-mail", &test);
    l.visit(
        &link_in(&test, &format!("{site}/preview/")),
        "Learn more",
        "preview",
    );

    l.b.open(&format!("{site}/admin/issues/2021-07"));
    no_validation(&l.b);
    l.b.fill("Type the issue id (2021-07) to confirm", "2021-08");
    l.b.click("Send now");
    l.b.wait_for_text("Not sent");
    l.look("send-refused");
    // Sent with a canary window that only a release ends: held, released, finished.
    l.b.open(&format!("{site}/admin/issues/2021-07"));
    l.b.fill("Type the issue id (2021-07) to confirm", "2021-07");
    l.b.click("Send now");
    l.b.wait_for_text("Canary window: the readers are mailed at");
    l.look("campaign-canary");
    let campaign = l.b.url();
    l.b.click("Hold");
    l.b.wait_for_text("Held by staff since");
    l.look("campaign-held");
    l.b.click("Release");
    wait_until("the campaign to finish", Duration::from_secs(60), || {
        w.ledger()
            .campaign("2021-07".parse().unwrap())
            .unwrap()
            .is_some_and(|c| c.finished)
    });
    l.visit(&campaign, "Finished", "campaign");
    l.visit(
        &format!("{site}/admin/campaigns/"),
        "newest issue first",
        "campaigns",
    );
    crate::admin::bounce(
        &w,
        "reader@example.org",
        brief::ledger::BounceKind::Hard,
        "550 5.1.1 <reader@example.org>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
        SystemClock.now_ms(),
    );
    l.visit(
        &format!("{site}/admin/bounces/"),
        "1 in all, newest first",
        "bounces",
    );
    l.look_at_mail("canary-copy-mail", &mail_in(&w, "canary", ""));
    l.look_at_mail(
        "issue-mail",
        &std::fs::read(file_of(&w, "2021-07", "ana@example.org")).unwrap(),
    );
    l.look_at_mail("summary-mail", &mail_in(&w, "staff", "Summary:"));
    l.b.open(&format!("{site}/admin/issues/"));
    let issues = l.b.wait_for_text("sent on");
    assert!(issues.contains("to 4 readers"), "{issues}");
    l.look("issues");
    l.b.click("2021-07");
    let sent = l.b.wait_for_text("already sent");
    assert!(sent.contains("what its readers got"), "{sent}");
    // The stored message's headers, as staff read them: the subject decoded.
    assert!(
        sent.contains("Subject: BRIEF | U.S. \u{2013} Mexico") && !sent.contains("Subject: =?"),
        "{sent}"
    );
    l.look("issue-sent");
    // What staff did, newest first.
    l.b.open(&format!("{site}/admin/activity/"));
    let log = l.b.wait_for_text("released the campaign of");
    let said = [
        "released the campaign of",
        "held the campaign of",
        "sent",
        "sent a test of",
        "signed in",
    ];
    let at: Vec<usize> = said
        .iter()
        .map(|s| {
            log.find(&format!("editor@example.org\t{s}\t"))
                .or_else(|| log.find(&format!("editor@example.org {s} ")))
                .unwrap_or_else(|| panic!("no {s:?} in {log}"))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "not newest first: {log}"
    );
    l.look("activity");
    l.visit(
        &format!("{site}/admin/issues/2099-01"),
        "Not found",
        "console-not-found",
    );

    // The subscribers: a search, a reader's page, and each action's confirmation.
    l.visit(
        &format!("{site}/admin/subscribers/?q=example.org"),
        "ana@example.org",
        "subscribers",
    );
    l.b.open(&format!("{site}/admin/subscribers/?q=BOB"));
    l.b.click("bob@example.org");
    l.b.wait_for_text("Deliveries");
    l.look("reader");
    l.b.click("Unsubscribe\u{2026}");
    l.b.wait_for_text("Unsubscribe this reader?");
    l.look("reader-unsubscribe-confirm");
    l.b.click("Unsubscribe");
    l.b.wait_for_text("removed by staff in the console");
    l.b.click("Re-send the confirmation\u{2026}");
    l.b.wait_for_text("Re-send the confirmation?");
    l.look("reader-resend-confirm");
    l.b.click("Send the confirmation");
    l.b.wait_for_text("Back to the reader");
    l.look("reader-confirmation-sent");
    l.b.click("Back to the reader");
    l.b.click("Forget this reader\u{2026}");
    l.b.wait_for_text("Type the reader's address");
    l.look("reader-forget-confirm");
    l.visit(
        &format!("{site}/admin/subscribers/add"),
        "How they agreed",
        "reader-add",
    );
    l.b.fill("Email address", "dora@example.org");
    l.b.fill(
        "How they agreed (the consent source)",
        "paper form at the fair",
    );
    l.b.click("Add\u{2026}");
    l.b.wait_for_text("Add this reader?");
    l.look("reader-add-confirm");
    // The import: the form, the preview (a bad line, a refused reader, new ones: ana is in
    // the list file, not held by the ledger, so the import holds her too, as the CLI does),
    // the result.
    w.write(
        "import.csv",
        "email,name\nnora@example.org,Nora Núñez\nbob@example.org,Bob\nnot an address,Oops\nana@example.org,Ana\n",
    );
    l.visit(
        &format!("{site}/admin/subscribers/import"),
        "Import readers from a CSV file",
        "reader-import",
    );
    l.b.attach("The CSV file", &w.path("import.csv"));
    l.b.fill(
        "How these readers agreed (the consent source)",
        "sign-up sheet at the open day",
    );
    l.b.click("Preview the import");
    l.b.wait_for_text("import.csv:4:");
    l.look("reader-import-preview");
    l.b.click("Add 2 new readers");
    l.b.wait_for_text("The import is done");
    l.look("reader-import-done");

    // A reader's pages after the send.
    let ana = std::fs::read(file_of(&w, "2021-07", "ana@example.org")).unwrap();
    l.visit(
        &link_in(&ana, &format!("{site}/unsubscribe/")),
        "Unsubscribe from BRIEF?",
        "unsubscribe",
    );
    l.b.click("Unsubscribe");
    l.b.wait_for_text("You are unsubscribed");
    l.look("unsubscribed");
    l.visit(&format!("{site}/archive/"), "2021-07", "archive-index");
    l.visit(
        &format!("{site}/archive/2021-07"),
        "Learn more",
        "archive-issue",
    );
    l.visit(
        &format!("{site}/no/such/page"),
        "Not found",
        "not-found-404",
    );
    let past = FixedClock::new(SystemClock.now() - chrono::TimeDelta::days(60));
    let old = brief::app::App::new(w.config(), Arc::new(past)).unwrap();
    let expired = old.preview_url("2021-07".parse().unwrap(), old.key());
    l.visit(
        &format!("{site}{}", expired.path()),
        "This preview has expired",
        "preview-expired-410",
    );
    assert_eq!(d.stop().status.code(), Some(0));

    // A day later, the second summary; and the notice of a canary nobody accepted, as the
    // daemon composes it.
    rt.block_on(async {
        let later = FixedClock::new(SystemClock.now() + chrono::TimeDelta::hours(25));
        let app = brief::app::App::new(w.config(), Arc::new(later)).unwrap();
        let d = Daemon::new(app, CancellationToken::new()).unwrap();
        assert_eq!(d.mail_summaries().await, 1);
    });
    l.look_at_mail(
        "summary-a-day-later-mail",
        &mail_in(&w, "staff", "Summary a day later"),
    );
    let app = brief::app::App::new(w.config(), Arc::new(SystemClock)).unwrap();
    let id = w
        .ledger()
        .campaign("2021-07".parse().unwrap())
        .unwrap()
        .unwrap()
        .id;
    let held = brief::notices::canary_held(&app, app.key(), id, "2021-07".parse().unwrap());
    l.look_at_mail("canary-held-mail", &held[0].message);

    let missed: Vec<_> = FACES
        .iter()
        .map(|f| f.name)
        .filter(|n| !l.seen.contains(n))
        .collect();
    assert!(missed.is_empty(), "faces never looked at: {missed:?}");
}

/// Makes `w` a world of two languages, English first: `[newsletter.es]` texts, and a list
/// whose readers read English (bob, no language), Spanish (ana) and Mexican Spanish (carla).
pub(crate) fn bilingual(w: &World) {
    w.add_newsletter_keys("languages = [\"en\", \"es\"]");
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &format!(
            "{text}\n[newsletter.es]\nname = \"Vida Institucional Binacional México – Estados Unidos\"\n\
             organization = \"Centro de Instituciones Binacionales\"\n\
             intro = \"Un resumen mensual de la vida institucional que comparten México y Estados Unidos.\"\n\
             date_format = \"%d.%m.%y\"\n"
        ),
    );
    w.write(
        "subscribers.csv",
        "email,name,lang\nana@example.org,Ana García,es\nbob@example.org,Bob,\ncarla@example.org,Carla,es-MX\n",
    );
}

/// Every Spanish face: a reader whose browser asks for Spanish signs up, confirms, gets the
/// issue in Spanish and leaves; an English reader moves to Spanish with the link in their
/// issue; the archive, a preview and the 404 in Spanish. Each is looked at as every face is,
/// and none may carry an English word of the catalogue.
#[test]
fn every_spanish_face_speaks_spanish_fits_and_passes_axe() {
    let w = World::new();
    w.add_server_keys("staff = [\"editor@example.org\"]");
    let port = on_own_port(&w);
    bilingual(&w);
    let shots = std::env::var_os("BRIEF_FACES").map(|_| {
        let dir = crate::support::repo().join("target/faces");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let mut l = Looker {
        b: Browser::speaking("es-MX,es;q=0.9,en;q=0.5"),
        seen: BTreeSet::new(),
        shots,
        mails: w.path("faces"),
    };
    std::fs::create_dir_all(&l.mails).unwrap();
    let site = format!("http://127.0.0.1:{port}");

    // The issue, sent to the list: each reader in their language.
    w.brief()
        .args(["send", "--issue", "2021-07", "--yes"])
        .assert()
        .success();
    let ana = std::fs::read(file_of(&w, "2021-07", "ana@example.org")).unwrap();
    let bob = std::fs::read(file_of(&w, "2021-07", "bob@example.org")).unwrap();
    let carla = std::fs::read(file_of(&w, "2021-07", "carla@example.org")).unwrap();
    for (who, eml) in [("ana", &ana), ("carla", &carla)] {
        let m = mail_parser::MessageParser::default().parse(eml).unwrap();
        assert_eq!(
            m.header_raw("Content-Language").map(str::trim),
            Some("es"),
            "{who}"
        );
    }
    l.look_at_mail("es-issue-mail", &ana);
    l.look_at_mail("en-issue-mail-with-spanish", &bob);
    let d = Running::start(&w, &[]);

    // A reader signs up: the form speaks the browser's Spanish.
    l.visit(
        &format!("{site}/subscribe"),
        "Suscríbase a BRIEF",
        "es-sign-up",
    );
    no_validation(&l.b);
    l.b.fill("Correo electrónico", "not an address");
    l.b.click("Suscribirme");
    l.b.wait_for_text("Revise la dirección");
    l.look("es-sign-up-refused");
    l.b.fill("Correo electrónico", "lectora@example.org");
    l.b.click("Suscribirme");
    l.b.wait_for_text("Revise su correo");
    l.look("es-sign-up-answer");
    let confirmation = mail_in(&w, "signup", "");
    assert!(
        subject_of_bytes(&confirmation).starts_with("Confirme su suscripción"),
        "{}",
        subject_of_bytes(&confirmation)
    );
    l.look_at_mail("es-confirmation-mail", &confirmation);
    l.visit(
        &link_in(&confirmation, &format!("{site}/confirm/")),
        "Confirme su suscripción",
        "es-confirm",
    );
    l.b.click("Confirmar la suscripción");
    l.b.wait_for_text("Ya está suscrito");
    l.look("es-confirmed");
    l.visit(
        &format!("{site}/confirm/not-a-token"),
        "no es válido",
        "es-confirm-link-not-valid",
    );

    // Bob reads English; the link in his issue moves him to Spanish.
    l.visit(
        &link_in(&bob, &format!("{site}/language/es/")),
        "¿Leer BRIEF en español?",
        "es-switch",
    );
    l.b.click("Leer en español");
    l.b.wait_for_text("BRIEF llegará en español");
    l.look("es-switched");
    let bob_key = brief::address::AddressKey::of(&"bob@example.org".parse().unwrap());
    assert_eq!(
        w.ledger()
            .language_choice(&bob_key)
            .unwrap()
            .map(|l| l.to_string()),
        Some("es".to_string())
    );
    // Ana's Spanish issue offers English, in English.
    l.visit(
        &link_in(&ana, &format!("{site}/language/en/")),
        "Read BRIEF in English?",
        "switch-to-english",
    );

    // Ana leaves, in Spanish: her link says so.
    l.visit(
        &link_in(&ana, &format!("{site}/unsubscribe/")),
        "¿Cancelar su suscripción a BRIEF?",
        "es-unsubscribe",
    );
    l.b.click("Cancelar la suscripción");
    l.b.wait_for_text("Su suscripción está cancelada");
    l.look("es-unsubscribed");

    l.visit(&format!("{site}/archive/"), "Archivo", "es-archive-index");
    l.visit(
        &format!("{site}/archive/?lang=en"),
        "Archive",
        "en-archive-index-two-languages",
    );
    l.visit(
        &format!("{site}/archive/2021-07/es"),
        "Más información",
        "es-archive-issue",
    );
    l.visit(
        &format!("{site}/no/such/page"),
        "No encontrado",
        "es-not-found-404",
    );
    let app = brief::app::App::new(w.config(), Arc::new(SystemClock)).unwrap();
    let preview = app.preview_url("2021-07".parse().unwrap(), app.key());
    l.visit(
        &format!("{site}{}/es", preview.path()),
        "Más información",
        "es-preview",
    );
    let past = FixedClock::new(SystemClock.now() - chrono::TimeDelta::days(60));
    let old = brief::app::App::new(w.config(), Arc::new(past)).unwrap();
    let expired = old.preview_url("2021-07".parse().unwrap(), old.key());
    l.visit(
        &format!("{site}{}/es", expired.path()),
        "Esta vista previa caducó",
        "es-preview-expired-410",
    );
    assert_eq!(d.stop().status.code(), Some(0));

    let missed: Vec<_> = SPANISH_FACES
        .iter()
        .map(|f| f.name)
        .filter(|n| !l.seen.contains(n))
        .collect();
    assert!(
        missed.is_empty(),
        "Spanish faces never looked at: {missed:?}"
    );
}

/// The subject of a raw message, decoded.
fn subject_of_bytes(eml: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse(eml)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

/// The English catalogue's words (each run of text between its placeables of two words or
/// more, or one long word), less those the Spanish catalogue says too and the language links
/// that are meant to be in English ("English", "Read in English").
fn english_words() -> Vec<String> {
    use fluent_syntax::ast::{Entry, Expression, InlineExpression, Pattern, PatternElement};
    fn pieces(p: &Pattern<&str>, out: &mut Vec<String>) {
        let mut run = String::new();
        for e in &p.elements {
            match e {
                PatternElement::TextElement { value } => run.push_str(value),
                PatternElement::Placeable { expression } => {
                    out.push(std::mem::take(&mut run));
                    match expression {
                        Expression::Select { variants, .. } => {
                            variants.iter().for_each(|v| pieces(&v.value, out))
                        }
                        Expression::Inline(InlineExpression::StringLiteral { value }) => {
                            out.push(value.to_string())
                        }
                        Expression::Inline(_) => {}
                    }
                }
            }
        }
        out.push(run);
    }
    let read = |lang: &str| {
        std::fs::read_to_string(crate::support::repo().join(format!("templates/{lang}.ftl")))
            .unwrap()
    };
    let (en, es) = (read("en"), read("es"));
    let mut spanish = Vec::new();
    for e in fluent_syntax::parser::parse(es.as_str()).unwrap().body {
        if let Entry::Message(m) = e {
            if let Some(v) = &m.value {
                pieces(v, &mut spanish);
            }
        }
    }
    // The words of the language links, meant to be in English on a Spanish face too.
    let mut meant = Vec::new();
    for e in fluent_syntax::parser::parse(en.as_str()).unwrap().body {
        if let Entry::Message(m) = e {
            if ["language-name", "read-in-language"].contains(&m.id.name) {
                if let Some(v) = &m.value {
                    pieces(v, &mut meant);
                }
            }
        }
    }
    let mut words = Vec::new();
    for e in fluent_syntax::parser::parse(en.as_str()).unwrap().body {
        if let Entry::Message(m) = e {
            if ["language-name", "read-in-language"].contains(&m.id.name) {
                continue;
            }
            let mut p = Vec::new();
            if let Some(v) = &m.value {
                pieces(v, &mut p);
            }
            for piece in p {
                let w = piece.trim().trim_end_matches([':', '.', ',', '?']).trim();
                let long = w.contains(' ') || w.chars().count() >= 6;
                if long
                    && !spanish.iter().any(|s| s.contains(w))
                    && !meant.iter().any(|m| m.contains(w))
                {
                    words.push(w.to_string());
                }
            }
        }
    }
    words.sort();
    words.dedup();
    words
}

/// The English catalogue's words in `text`.
fn english_in(text: &str) -> Vec<String> {
    static WORDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    WORDS
        .get_or_init(english_words)
        .iter()
        .filter(|w| text.contains(w.as_str()))
        .map(|w| format!("English words: {w:?}"))
        .collect()
}

/// The English words the Spanish faces are checked for are many, and the check finds them.
#[test]
fn the_english_word_check_finds_english() {
    let words = english_words();
    for w in [
        "View in browser",
        "Learn more",
        "Unsubscribe",
        "Confirm subscription",
    ] {
        assert!(
            words.iter().any(|x| x == w),
            "{w} is not checked: {words:?}"
        );
    }
    assert!(!words
        .iter()
        .any(|w| w == "English" || w == "Read in English"));
    assert!(words.len() > 60, "{}", words.len());
    assert_eq!(
        english_in("Ver en el navegador · Read in English · English | Español"),
        Vec::<String>::new()
    );
    assert_eq!(
        english_in("Más información sobre X · Learn more"),
        ["English words: \"Learn more\""]
    );
}

/// The checks beyond axe-core find what they look for: a message without `lang` on its
/// wrapper, a layout table without a role, an image without `alt`, no title; links that say
/// "Learn more" and lead to two places.
#[test]
fn the_checks_beyond_axe_find_what_they_look_for() {
    let html = "<!DOCTYPE html><html lang=\"en\" dir=\"ltr\"><head></head><body>\
        <table role=\"presentation\"><tr><td><table><tr><td><img src=\"a.png\">\
        <a href=\"https://example.org/1\">Learn more</a> <a href=\"https://example.org/2\">Learn more</a>\
        </td></tr></table></td></tr></table></body></html>";
    let faults = markup_faults(html, "en");
    for fault in [
        "<table role=\"presentation\" inside <body> has no lang=\"en\" dir=\"ltr\"",
        "a layout table without role=presentation: <table",
        "an image without alt: <img src=\"a.png\"",
        "no <title>",
    ] {
        assert!(
            faults.iter().any(|f| f == fault),
            "missed {fault:?}: {faults:?}"
        );
    }
    let w = World::new();
    let page = w.path("links.html");
    std::fs::write(&page, html).unwrap();
    let b = Browser::start();
    b.open(&format!("file://{}", page.display()));
    let links = b.execute(LINK_TEXT_JS);
    assert_eq!(
        links,
        serde_json::json!([
            "a link that says only \"Learn more\": https://example.org/1",
            "a link that says only \"Learn more\": https://example.org/2",
            "two links say \"Learn more\" but lead apart: https://example.org/1, https://example.org/2"
        ])
    );
}
