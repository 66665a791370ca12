//! Pages driven in headless Chromium as a person would: open the link, read, press the button.

use crate::http::{send, state_of, unsubscribe_path};
use crate::support::browser::{Browser, Scheme};
use crate::support::daemon::Running;
use crate::support::World;

/// The width and height in a PNG's header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn a_reader_on_a_phone_unsubscribes_with_the_pages_button() {
    let w = World::new();
    send(&w, "2021-07");
    // The link in Ana's message, on this daemon instead of the public host.
    let path = unsubscribe_path(&w, "2021-07", "ana@example.org");
    let d = Running::start(&w, &[]);
    let link = format!("http://{}{path}", d.addr);
    let b = Browser::phone(390);

    // Opening the link asks first, and changes nothing.
    b.open(&link);
    let page = b.wait_for_text("Unsubscribe from BRIEF?");
    assert!(page.contains("Nothing changes until you do."), "{page}");
    assert_eq!(state_of(&w, "ana@example.org"), "active");
    let shot = b.screenshot();
    assert_eq!(png_size(&shot).0, 390, "the phone's width");
    // To look at the page: BRIEF_SCREENSHOTS=/some/dir cargo test browser
    if let Some(dir) = std::env::var_os("BRIEF_SCREENSHOTS") {
        let file = std::path::Path::new(&dir).join("unsubscribe-confirm-390.png");
        std::fs::write(&file, &shot).unwrap();
    }

    // The button unsubscribes her, on the same address (no redirect), and only her.
    b.click("Unsubscribe");
    let done = b.wait_for_text("You are unsubscribed");
    assert!(
        done.contains("This address will receive no more BRIEF."),
        "{done}"
    );
    assert_eq!(b.url(), link);
    assert_eq!(state_of(&w, "ana@example.org"), "unsubscribed");
    assert_eq!(state_of(&w, "bob@example.org"), "active");

    drop(b);
    assert_eq!(d.stop().status.code(), Some(0));
}

/// The harness finds fields as a person names them: by a label that points at the field, by a
/// label around it, or by its name; and quotes in a label do not break the lookup.
#[test]
fn the_browser_fills_fields_by_label_or_name() {
    let page = "<!doctype html><title>form</title>\
        <label for=e>Your email</label><input id=e name=email>\
        <label>Name <input name=n></label>\
        <label for=q>Say \"hi\" o'clock</label><input id=q>\
        <textarea name=note>old</textarea>";
    let b = Browser::start();
    b.open(&format!("data:text/html,{}", page.replace('#', "%23")));
    b.fill("Your email", "ana@example.org");
    b.fill("Name", "Ana García");
    b.fill("Say \"hi\" o'clock", "hello");
    b.fill("note", "new");
    assert_eq!(b.value("email"), "ana@example.org");
    assert_eq!(b.value("n"), "Ana García");
    assert_eq!(b.value("Say \"hi\" o'clock"), "hello");
    assert_eq!(b.value("note"), "new");
    assert!(b.text().contains("Your email"));
}

/// A reader joins as a person would: fills in the form, opens the link from the confirmation
/// message, and presses the button.
#[test]
fn a_reader_joins_with_the_form_and_the_link_in_the_message() {
    let (w, port) = world_on_own_port("");
    let d = Running::start(&w, &[]);
    let b = Browser::start();

    b.open(&format!("http://127.0.0.1:{port}/subscribe"));
    let form = b.wait_for_text("Subscribe to BRIEF");
    assert!(form.contains("I agree to receive BRIEF"), "{form}");
    assert!(
        !form.contains("Leave this field empty"),
        "the honeypot is hidden from people: {form}"
    );
    b.fill("Email address", "Reader@Example.org");
    b.fill("Name (optional)", "Rea Der");
    b.click("Subscribe");
    b.wait_for_text("Check your inbox");

    let mut mail = Vec::new();
    crate::support::daemon::wait_until(
        "the confirmation message",
        std::time::Duration::from_secs(20),
        || {
            mail = w.outbox("signup");
            !mail.is_empty()
        },
    );
    let raw = std::fs::read(&mail[0]).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let body = m.body_text(0).unwrap().into_owned();
    let start = body
        .find(&format!("http://127.0.0.1:{port}/confirm/"))
        .unwrap_or_else(|| panic!("no link in {body}"));
    let link: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert_eq!(state_of(&w, "Reader@Example.org"), "pending");

    b.open(&link);
    b.wait_for_text("Confirm your subscription to BRIEF");
    assert_eq!(
        state_of(&w, "Reader@Example.org"),
        "pending",
        "a GET changes nothing"
    );
    b.click("Confirm subscription");
    let done = b.wait_for_text("You're subscribed");
    assert!(done.contains("archive"), "{done}");
    assert_eq!(state_of(&w, "Reader@Example.org"), "active");

    drop(b);
    assert_eq!(d.stop().status.code(), Some(0));
}

/// The contrast ratio (WCAG 2) of each selector's first element's text against the background
/// it sits on; `null` for a selector that matches nothing.
const CONTRAST_JS: &str = "
const lum = c => {
  const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const bg = el => {
  for (; el; el = el.parentElement) {
    const m = getComputedStyle(el).backgroundColor.match(/[\\d.]+/g);
    if (m && (m.length < 4 || Number(m[3]) > 0)) return getComputedStyle(el).backgroundColor;
  }
  return 'rgb(255, 255, 255)';
};
const out = {};
for (const sel of SELECTORS) {
  const el = document.querySelector(sel);
  if (!el) { out[sel] = null; continue; }
  const a = lum(getComputedStyle(el).color), b = lum(bg(el));
  out[sel] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}
return out;";

/// The email, its web version in the archive and the unsubscribe page, on a 375px phone in
/// light and in dark mode: every part's text is readable on its background, and the bar at the
/// top, the masthead and the footer stay apart from the body. (That they fit the screen and
/// pass axe-core, `faces` checks with every other face.)
#[test]
fn the_email_the_archive_and_the_unsubscribe_page_fit_a_phone_in_light_and_dark() {
    let w = World::new();
    send(&w, "2021-07");
    let out = w
        .brief()
        .args(["preview", "--issue", "2021-07", "--out", "preview"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let email = format!("file://{}", w.path("preview/2021-07.html").display());
    let path = unsubscribe_path(&w, "2021-07", "ana@example.org");
    let d = Running::start(&w, &[]);
    let pages = [
        ("email", email, "View in browser"),
        (
            "archive",
            format!("http://{}/archive/2021-07", d.addr),
            "Learn more",
        ),
        (
            "unsubscribe",
            format!("http://{}{path}", d.addr),
            "Unsubscribe from BRIEF?",
        ),
    ];
    let parts = [
        ".topbar-link",
        ".kicker",
        ".title",
        ".issue-date",
        ".intro-text",
        ".entry-title",
        ".entry-meta",
        ".learn-more",
        ".paragraph",
        ".footer-org",
        ".footer-text",
        ".footer-link",
        ".page-button",
    ];
    let selectors = serde_json::to_string(&parts).unwrap();
    let b = Browser::start();
    for scheme in [Scheme::Light, Scheme::Dark] {
        let (dark, mode) = (scheme == Scheme::Dark, scheme.name());
        b.view(375, scheme);
        for (name, url, says) in &pages {
            b.open(url);
            b.wait_for_text(says);
            let contrast = b.execute(&format!("const SELECTORS = {selectors};\n{CONTRAST_JS}"));
            for (part, ratio) in contrast.as_object().unwrap() {
                if let Some(r) = ratio.as_f64() {
                    assert!(
                        r >= 4.5,
                        "{part} on the {name} page in {mode} mode: contrast {r:.2} < 4.5"
                    );
                }
            }
            if *name == "email" {
                let backgrounds = b.execute(
                    "return ['.topbar', '.masthead', '.entry', '.footer'].map(s => \
                     { let el = document.querySelector(s); \
                       for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor; \
                         if (c !== 'rgba(0, 0, 0, 0)') return c; } return 'none'; });",
                );
                let bg: Vec<&str> = backgrounds
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let (bar, masthead, body, footer) = (bg[0], bg[1], bg[2], bg[3]);
                assert!(
                    bar != body && footer != body && bar != footer,
                    "the bar, the body and the footer share a colour in {mode} mode: {backgrounds}"
                );
                // In light mode the masthead stands out by its red rule; in dark mode by its shade too.
                assert!(
                    !dark || (masthead != body && masthead != bar && masthead != footer),
                    "the masthead shares a colour in dark mode: {backgrounds}"
                );
            }
        }
    }
    assert_eq!(d.stop().status.code(), Some(0));
}

/// A world whose `public_url` is the daemon itself (forms post there), on a free port.
fn world_on_own_port(server: &str) -> (World, u16) {
    let w = World::new();
    w.add_server_keys(server);
    let port = on_own_port(&w);
    (w, port)
}

/// Makes `w`'s daemon listen on a free loopback port and its `public_url` that address (so
/// forms post there and links in mails lead there); the port.
pub(crate) fn on_own_port(w: &World) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    let (listen, public) = (
        "listen = \"127.0.0.1:0\"",
        "public_url = \"https://news.example.org/\"",
    );
    assert!(text.contains(listen) && text.contains(public), "{text}");
    w.write(
        "brief.toml",
        &text
            .replace(listen, &format!("listen = \"127.0.0.1:{port}\""))
            .replace(
                public,
                &format!("public_url = \"http://127.0.0.1:{port}/\""),
            ),
    );
    port
}

/// Signs `email` in as a person would: asks for a link, opens the one in the `nth` message of
/// the outbox (`staff/`), presses the button; ends on the dashboard.
pub(crate) fn sign_in(b: &Browser, w: &World, port: u16, email: &str, nth: usize) {
    b.open(&format!("http://127.0.0.1:{port}/admin/"));
    b.wait_for_text("Staff sign-in");
    b.fill("Email address", email);
    b.click("Email me a sign-in link");
    b.wait_for_text("Check your inbox");
    let mut mail = Vec::new();
    crate::support::daemon::wait_until(
        "the sign-in message",
        std::time::Duration::from_secs(20),
        || {
            mail = w.outbox("staff");
            mail.len() >= nth
        },
    );
    mail.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let raw = std::fs::read(&mail[nth - 1]).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let body = m.body_text(0).unwrap().into_owned();
    let start = body
        .find(&format!("http://127.0.0.1:{port}/admin/login/"))
        .unwrap_or_else(|| panic!("no link in {body}"));
    let link: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    b.open(&link);
    b.wait_for_text("Press the button to sign in");
    b.click("Sign in");
    b.wait_for_text(&format!("Signed in as {email}"));
}

/// A staff member signs in from the emailed link on a phone, reads the dashboard, previews the
/// issue and sends themselves a test.
#[test]
fn a_staff_member_uses_the_console_in_a_browser() {
    let (w, port) = world_on_own_port("staff = [\"editor@example.org\"]");
    let d = Running::start(&w, &[]);

    // (The faces harness looks at every page at both widths, light and dark.)
    let b = Browser::phone(375);
    let email = "editor@example.org";
    sign_in(&b, &w, port, email, 1);
    let home = b.wait_for_text("Next send");
    assert!(home.contains("No schedule"), "{home}");
    assert!(home.contains("Check: ok, 4 entries."), "{home}");
    assert!(home.contains("Latest unsubscribes and bounces"), "{home}");
    b.click("2021-07");
    let issue = b.wait_for_text("Send a test to me");
    assert!(issue.contains("Subject:"), "{issue}");
    assert!(
        issue.contains("Content-Type: multipart/alternative"),
        "{issue}"
    );

    let before = w.outbox("test").len();
    b.click("Send a test to me");
    let sent = b.wait_for_text("Test sent");
    assert!(sent.contains(&format!("{email}: accepted")), "{sent}");
    let mut tests = w.outbox("test");
    assert_eq!(tests.len(), before + 1);
    tests.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let raw = std::fs::read(tests.last().unwrap()).unwrap();
    let copy = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let view = copy
        .body_text(0)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("View in browser: ").map(str::to_string))
        .expect("a View in browser line");
    b.click("Back to issue 2021-07");
    b.wait_for_text("Test sends so far: ");
    // The test copy's "View in browser" link opens the issue, not sent yet.
    b.open(&view);
    let web = b.wait_for_text("Learn more");
    assert!(!web.contains("Not found"), "{web}");
    assert_eq!(d.stop().status.code(), Some(0));
}

/// "Send now" from the issue page, with the typed id, lands on the campaign page, whose counts
/// then move by themselves (the page's script polls them) until the campaign is finished.
#[test]
fn a_campaign_sent_from_the_console_counts_live() {
    let (w, port) = world_on_own_port("staff = [\"editor@example.org\"]");
    // Twelve readers at two a second: the campaign runs for some seconds.
    let mut list = String::from("email,name\n");
    for i in 0..12 {
        list.push_str(&format!("reader{i}@example.org,Reader {i}\n"));
    }
    w.write("subscribers.csv", &list);
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    let db = "database = \"data/brief.db\"";
    assert!(text.contains(db), "{text}");
    w.write(
        "brief.toml",
        &text.replace(db, &format!("{db}\nrate_per_second = 2")),
    );
    let d = Running::start(&w, &[]);
    let b = Browser::start();
    sign_in(&b, &w, port, "editor@example.org", 1);
    b.click("2021-07");
    b.wait_for_text("Send now");
    b.fill("Type the issue id (2021-07) to confirm", "2021-07");
    b.click("Send now");
    let page = b.wait_for_text("Campaign 2021-07");
    assert!(
        page.contains("Sending to readers for") || page.contains("No reader has been mailed yet"),
        "{page}"
    );
    let url = b.url();
    // No reload: the script brings the counts up to date.
    let started = std::time::Instant::now();
    loop {
        let text = b.text();
        if text.contains("finished\t0\t0\t12") || text.contains("finished 0 0 12") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the counts never showed the finished campaign: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(b.url(), url, "the page was not reloaded");
    assert!(!b.text().contains("Finished "), "the page was not reloaded");
    drop(b);
    assert_eq!(d.stop().status.code(), Some(0));
}

#[test]
fn staff_hold_and_release_a_canary_campaign_in_the_console() {
    let (w, port) = world_on_own_port("staff = [\"editor@example.org\"]");
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &format!("{text}\n[schedule]\ncanary = \"15s\"\n"),
    );
    let d = Running::start(&w, &[]);
    let b = Browser::start();
    sign_in(&b, &w, port, "editor@example.org", 1);
    b.click("2021-07");
    b.wait_for_text("Staff get it first; the readers 15s later");
    b.fill("Type the issue id (2021-07) to confirm", "2021-07");
    b.click("Send now");
    b.wait_for_text("Canary window: the readers are mailed at");
    // The canary replies come live: with the list emptied in the page (and a mark that a
    // reload would lose), the script writes the relay's reply back from the counts.
    b.execute(
        "document.querySelector('[data-canaries]').textContent = ''; window.briefMark = 'kept'; return null;",
    );
    assert!(!b.text().contains("editor@example.org: 250"));
    b.wait_for_text("editor@example.org: 250");
    assert_eq!(
        b.execute("return window.briefMark;"),
        "kept",
        "the page was reloaded"
    );
    b.click("Hold");
    let page = b.wait_for_text("Held by staff since");
    assert!(page.contains("editor@example.org: 250"), "{page}");
    // Past the window: still nobody mailed.
    crate::support::daemon::sleep_past_canary_window(&w, "2021-07");
    assert!(
        w.outbox("2021-07").is_empty(),
        "a held campaign mailed readers"
    );
    assert_eq!(w.outbox("canary").len(), 1);
    b.click("Release");
    crate::support::daemon::wait_until(
        "the released campaign to finish",
        std::time::Duration::from_secs(30),
        || {
            w.ledger()
                .campaign("2021-07".parse().unwrap())
                .unwrap()
                .is_some_and(|c| c.finished)
        },
    );
    b.wait_for_text("finished");
    assert_eq!(w.outbox("2021-07").len(), 3);
    drop(b);
    assert_eq!(d.stop().status.code(), Some(0));
}

/// The accessibility check is live: on a page with an image without `alt` and grey text on
/// grey, axe-core reports both as serious (so a clean report elsewhere means something).
#[test]
fn the_accessibility_check_finds_faults_where_there_are_some() {
    let w = World::new();
    let page = w.path("faulty.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html lang=\"en\"><head><title>Faulty</title></head><body><main>\
         <img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">\
         <p style=\"color:#999;background:#aaa\">Hard to read</p></main></body></html>",
    )
    .unwrap();
    let b = Browser::phone(375);
    b.open(&format!("file://{}", page.display()));
    let faults = b.axe();
    for rule in ["image-alt", "color-contrast"] {
        assert!(
            faults.iter().any(|f| f.starts_with(rule)),
            "axe-core missed {rule}: {faults:?}"
        );
    }
}

/// Staff find a reader by part of her name, open her page (by its number), see her delivery,
/// and unsubscribe her, confirming first; the ledger then says so and the others stay.
#[test]
fn staff_find_a_reader_open_her_page_and_unsubscribe_her() {
    let (w, port) = world_on_own_port("staff = [\"editor@example.org\"]");
    send(&w, "2021-07");
    let d = Running::start(&w, &[]);
    let b = Browser::phone(375);
    // The send's summary went to staff first: the sign-in link is the second message.
    sign_in(&b, &w, port, "editor@example.org", 2);
    b.open(&format!("http://127.0.0.1:{port}/admin/subscribers/"));
    b.wait_for_text("Readers 1");
    b.fill("Part of the address or name", "garcía");
    b.click("Search");
    let found = b.wait_for_text("Readers 1\u{2013}1 of 1");
    assert!(found.contains("ana@example.org"), "{found}");
    assert!(!found.contains("bob@example.org"), "{found}");
    b.click("ana@example.org");
    let page = b.wait_for_text("Deliveries");
    assert!(page.contains("Ana García"), "{page}");
    assert!(page.contains("2021-07"), "{page}");
    let url = b.url();
    assert!(!url.contains('@') && !url.contains("ana"), "{url}");
    b.click("Unsubscribe\u{2026}");
    b.wait_for_text("Unsubscribe this reader?");
    assert_eq!(state_of(&w, "ana@example.org"), "active");
    b.click("Unsubscribe");
    let done = b.wait_for_text("removed by staff in the console");
    assert!(done.contains("Unsubscribed"), "{done}");
    assert_eq!(b.url(), url);
    assert_eq!(state_of(&w, "ana@example.org"), "unsubscribed");
    assert_eq!(state_of(&w, "bob@example.org"), "active");
    assert!(b.axe().is_empty(), "{:?}", b.axe());
    drop(b);
    assert_eq!(d.stop().status.code(), Some(0));
}

/// Staff import a CSV file from an event's sign-up sheet: the preview names the bad line by its
/// number and refuses the unsubscribed reader; nothing is written until they apply it.
#[test]
fn staff_import_a_csv_file_see_the_bad_line_named_and_apply_it() {
    let (w, port) = world_on_own_port("staff = [\"editor@example.org\"]");
    w.brief()
        .args(["subscribers", "add", "una@example.org"])
        .assert()
        .success();
    w.brief()
        .args(["subscribers", "remove", "una@example.org"])
        .assert()
        .success();
    w.write(
        "fair.csv",
        "email,name\nnell@example.org,Nell\nuna@example.org,Una\nnot an address,Oops\nolga@example.org,Olga\n",
    );
    let d = Running::start(&w, &[]);
    let b = Browser::phone(375);
    sign_in(&b, &w, port, "editor@example.org", 1);
    b.open(&format!("http://127.0.0.1:{port}/admin/subscribers/"));
    b.click("import readers from a CSV file");
    b.wait_for_text("Import readers from a CSV file");
    b.attach("The CSV file", &w.path("fair.csv"));
    b.fill(
        "How these readers agreed (the consent source)",
        "sign-up sheet at the open day",
    );
    b.click("Preview the import");
    let preview = b.wait_for_text("What this import would change");
    assert!(
        preview.contains("fair.csv:4: `not an address` is not a valid email address"),
        "{preview}"
    );
    assert!(preview.contains("New readers to add: 2"), "{preview}");
    assert!(
        preview.contains("unsubscribed: only the reader can join again"),
        "{preview}"
    );
    assert!(!w
        .ledger()
        .is_stored_subscriber(&brief::address::AddressKey::from_text("nell@example.org"))
        .unwrap());
    b.click("Add 2 new readers");
    let done = b.wait_for_text("The import is done");
    assert!(done.contains("New readers added: 2"), "{done}");
    assert_eq!(state_of(&w, "nell@example.org"), "active");
    assert_eq!(state_of(&w, "olga@example.org"), "active");
    assert_eq!(state_of(&w, "una@example.org"), "unsubscribed");
    assert!(b.axe().is_empty(), "{:?}", b.axe());
    drop(b);
    assert_eq!(d.stop().status.code(), Some(0));
}
