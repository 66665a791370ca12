//! One campaign, one edition per language: each reader gets exactly one copy, in the language
//! the list (or their choice) gives them, signed like any other; the report names it;
//! `--restart-unsent` keeps it; an older campaign of one message still resumes; canary and
//! test copies go out in every language; the archive serves each language at its own URL.

use std::path::Path;

use brief::clock::SystemClock;
use brief::feed::FetchPolicy;
use brief::message::Kind;
use mail_parser::MessageParser;

use crate::dkim::{dkimpy_all, ed25519_key};
use crate::support::daemon::Running;
use crate::support::smtp_server::SmtpServer;
use crate::support::World;

/// The readers: a tag of every kind, and none. `fr` is not configured: the default.
const LIST: &str = "email,name,lang\n\
    ana@example.org,Ana,en\n\
    bob@example.org,Bob,es\n\
    carla@example.org,Carla,es-MX\n\
    dan@example.org,Dan,\n\
    eve@example.org,Eve,fr\n";

/// Who reads Spanish among [`LIST`].
const SPANISH: [&str; 2] = ["bob@example.org", "carla@example.org"];
const ENGLISH: [&str; 3] = ["ana@example.org", "dan@example.org", "eve@example.org"];

/// A world in English (the default) and Spanish, with a Spanish newsletter name (so the two
/// subjects differ), one staff address, the readers of [`LIST`] and `extra` appended.
fn bilingual(extra: &str) -> World {
    let w = World::with_config(&format!(
        "{extra}\n[newsletter.es]\nname = \"Vida Institucional Binacional\"\n"
    ));
    w.add_newsletter_keys("languages = [\"en\", \"es\"]");
    w.add_server_keys("staff = [\"editor@example.org\"]");
    w.write("subscribers.csv", LIST);
    w
}

/// What a reader's copy says of its language.
#[derive(Debug)]
struct Copy {
    subject: String,
    content_language: String,
    html: String,
    text: String,
}

fn parse(raw: &[u8]) -> Copy {
    let m = MessageParser::default().parse(raw).expect("a message");
    let header = |name: &str| {
        m.header_raw(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    Copy {
        subject: m.subject().unwrap_or("").to_string(),
        content_language: header("Content-Language"),
        html: m.body_html(0).unwrap_or_default().to_string(),
        text: m.body_text(0).unwrap_or_default().to_string(),
    }
}

/// Asserts `c` is the Spanish edition (`es`) or the English one.
fn assert_in(c: &Copy, spanish: bool, who: &str) {
    let (lang, subject, word, title, not_word) = if spanish {
        (
            "es",
            "Vida Institucional Binacional",
            "Ver en el navegador",
            "Visita a México del secretario del DHS",
            "View in browser",
        )
    } else {
        (
            "en",
            "U.S. – Mexico Binational Institutional Life",
            "View in browser",
            "DHS Secretary Mayorkas",
            "Ver en el navegador",
        )
    };
    assert_eq!(c.content_language, lang, "{who}: {}", c.subject);
    assert!(c.subject.contains(subject), "{who}: {}", c.subject);
    assert!(
        c.html.contains(&format!("<html lang=\"{lang}\"")),
        "{who}: no <html lang=\"{lang}\">"
    );
    assert!(c.html.contains(word), "{who}: `{word}` missing");
    assert!(!c.html.contains(not_word), "{who}: `{not_word}` found");
    assert!(c.text.contains(title), "{who}: `{title}` missing");
    // "View in browser" opens the web version in the copy's language.
    if spanish && !c.subject.starts_with("[TEST]") {
        assert!(
            c.html
                .contains("href=\"https://news.example.org/archive/2021-07/es\""),
            "{who}: the Spanish archive link"
        );
    }
}

fn run(w: &World, args: &[&str]) -> (Option<i32>, String, String) {
    let o = w.brief().args(args).output().unwrap();
    (
        o.status.code(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// The `.eml` of `address` in the outbox folder `sub`.
fn copies_of(w: &World, sub: &str, address: &str) -> Vec<Vec<u8>> {
    w.outbox(sub)
        .iter()
        .filter(|p| file_is_for(p, address))
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn file_is_for(p: &Path, address: &str) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(&format!("{address}-")))
}

/// Over SMTP: every reader gets exactly one copy, in their language (a tag the newsletter does
/// not have, or none, gets the default), each signed and verifying; the report's last column
/// and `brief status` say which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_gets_one_copy_in_their_language_signed() {
    let (_, pem, txt) = ed25519_key();
    let w = bilingual(&format!(
        "[dkim]\ndomain = \"{}\"\nselector = \"{}\"\nprivate_key_file = \"dkim.pem\"\n",
        crate::dkim::DOMAIN,
        crate::dkim::SELECTOR
    ));
    w.write("dkim.pem", &pem);
    let server = SmtpServer::start().await;
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntimeout = \"5s\"",
        server.port()
    ));
    let cmd = {
        let mut c = w.brief();
        c.args(["send", "--yes"]);
        c
    };
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = cmd;
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let records = [(
        format!(
            "{}._domainkey.{}",
            crate::dkim::SELECTOR,
            crate::dkim::DOMAIN
        ),
        txt,
    )];
    for (who, spanish) in ENGLISH
        .iter()
        .map(|a| (*a, false))
        .chain(SPANISH.iter().map(|a| (*a, true)))
    {
        assert_eq!(server.copies(who), 1, "{who}: one copy");
        let got = server
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to == [who.to_string()])
            .unwrap();
        assert_in(&parse(&got.data), spanish, who);
        if let Err(why) = dkimpy_all(&got.data, &records) {
            panic!("{who}'s copy does not verify: {why}");
        }
    }
    let to_readers = server
        .messages()
        .iter()
        .filter(|m| m.rcpt_to != ["editor@example.org".to_string()])
        .count();
    assert_eq!(to_readers, 5, "one copy per reader (staff get the summary)");

    let (code, csv, _) = run(&w, &["report", "--issue", "2021-07"]);
    assert_eq!(code, Some(0));
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",bounce,lang"), "{csv}");
    let langs: Vec<(&str, &str)> = lines
        .map(|l| (l.split(',').next().unwrap(), l.rsplit(',').next().unwrap()))
        .collect();
    assert_eq!(
        langs,
        [
            ("ana@example.org", "en"),
            ("bob@example.org", "es"),
            ("carla@example.org", "es"),
            ("dan@example.org", "en"),
            ("eve@example.org", "en"),
        ]
    );
    let (_, status, _) = run(&w, &["status"]);
    assert!(
        status.contains("by language: en 3 sent, es 2 sent"),
        "{status}"
    );
}

/// `--restart-unsent` stores a new revision of every language, and each reader not yet sent
/// gets the corrected issue in the language their delivery recorded at the start.
#[tokio::test]
async fn restart_unsent_revises_every_language_and_keeps_each_readers_own() {
    let w = bilingual("");
    // The campaign starts (every language stored, every reader's language recorded) but sends
    // nobody yet, as if its process had stopped at once.
    let app = brief::app::App::new(w.config(), std::sync::Arc::new(SystemClock)).unwrap();
    let id = "2021-07".parse().unwrap();
    let editions = app.collect_editions(id, FetchPolicy::Once).await.unwrap();
    let key = app.key().clone();
    let prepared = brief::campaign::start::prepare(&app, editions, &key, Kind::Campaign);
    let mut ledger = app.open_ledger().unwrap();
    let (c, new, problems) = brief::campaign::start::begin(
        &app,
        &mut ledger,
        &prepared,
        brief::ledger::Trigger::Cli,
        None,
    )
    .unwrap();
    assert!(new && problems.is_empty());
    assert_eq!(ledger.campaign_subjects(c.id).unwrap().len(), 2);
    drop(ledger);
    // Staff correct the Spanish entry, then send the corrected issue.
    let es = w.path("content/2021-07/01-mayorkas-visit.es.md");
    let text = std::fs::read_to_string(&es).unwrap();
    std::fs::write(
        &es,
        text.replace(
            "Visita a México del secretario del DHS",
            "Visita corregida del secretario del DHS",
        ),
    )
    .unwrap();
    let (code, out, err) = run(&w, &["send", "--yes", "--restart-unsent"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("revision 2"), "{out}");
    let l = w.ledger();
    let now = l.campaign_messages(c.id).unwrap();
    let revs: Vec<(u32, Option<&str>)> = now
        .iter()
        .map(|m| (m.revision, m.lang.as_deref()))
        .collect();
    assert_eq!(revs, [(2, Some("en")), (2, Some("es"))]);
    for who in SPANISH {
        let copies = copies_of(&w, "2021-07", who);
        assert_eq!(copies.len(), 1, "{who}");
        let c = parse(&copies[0]);
        assert_eq!(c.content_language, "es", "{who}");
        assert!(c.text.contains("Visita corregida"), "{who}: {}", c.text);
    }
    for who in ENGLISH {
        let copies = copies_of(&w, "2021-07", who);
        assert_eq!(copies.len(), 1, "{who}");
        assert_in(&parse(&copies[0]), false, who);
    }
}

/// A campaign started before editions (one stored message, deliveries without a language, as
/// migration 16 leaves them) resumes: every reader left gets that one message, in the default
/// language, whatever the list says now; the archive has no other language of it.
#[tokio::test]
async fn an_older_campaign_of_one_message_resumes_in_the_default_language() {
    let w = bilingual("");
    let app = brief::app::App::new(w.config(), std::sync::Arc::new(SystemClock)).unwrap();
    let id = "2021-07".parse().unwrap();
    let editions = app.collect_editions(id, FetchPolicy::Once).await.unwrap();
    let key = app.key().clone();
    let prepared = brief::campaign::start::prepare(&app, editions, &key, Kind::Campaign);
    let mut ledger = app.open_ledger().unwrap();
    brief::campaign::start::begin(
        &app,
        &mut ledger,
        &prepared,
        brief::ledger::Trigger::Cli,
        None,
    )
    .unwrap();
    drop(ledger);
    // What the migration makes of a campaign an older brief stored: one message, keyed ''.
    let db = rusqlite::Connection::open(w.path("data/brief.db")).unwrap();
    db.execute_batch(
        "DELETE FROM campaign_messages WHERE lang <> 'en';
         UPDATE campaign_messages SET lang = '';
         UPDATE deliveries SET lang = NULL;",
    )
    .unwrap();
    drop(db);
    let (code, out, err) = run(&w, &["send", "--yes"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("5 sent now"), "{out}");
    for who in ENGLISH.iter().chain(&SPANISH) {
        let copies = copies_of(&w, "2021-07", who);
        assert_eq!(copies.len(), 1, "{who}");
        assert_in(&parse(&copies[0]), false, who);
    }
    let (_, report, _) = run(&w, &["report", "--issue", "2021-07"]);
    assert!(
        report.lines().skip(1).all(|l| l.ends_with(",")),
        "no language recorded: {report}"
    );
    let d = Running::start(&w, &[]);
    assert_eq!(d.get("/archive/2021-07").status, 200);
    assert_eq!(d.get("/archive/2021-07/es").status, 404);
}

/// The canary goes to each staff address once per language; a test send covers every
/// language unless one is picked (`--lang`, prefix-matched), and refuses one not configured.
#[test]
fn canary_and_test_copies_go_out_in_every_language_or_the_one_picked() {
    let w = bilingual("");
    let (code, out, err) = run(&w, &["send", "--yes", "--canary", "1s"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let canary = w.outbox("canary");
    assert_eq!(canary.len(), 2, "one copy per language: {canary:?}");
    let mut langs: Vec<String> = canary
        .iter()
        .map(|p| parse(&std::fs::read(p).unwrap()).content_language)
        .collect();
    langs.sort();
    assert_eq!(langs, ["en", "es"]);
    // Two messages to one address: two Message-IDs, the Spanish one naming its language.
    let mut ids: Vec<String> = canary
        .iter()
        .map(|p| {
            let raw = std::fs::read(p).unwrap();
            let m = MessageParser::default().parse(&raw).unwrap();
            m.message_id().unwrap().to_string()
        })
        .collect();
    ids.sort();
    assert!(ids[0].starts_with("brief.canary.2021-07."), "{ids:?}");
    assert!(ids[1].starts_with("brief.canary.es.2021-07."), "{ids:?}");
    assert_eq!(w.outbox("2021-07").len(), 5);
    // The summary to staff splits the counts by language and counts staff, not copies.
    let summary = w
        .outbox("staff")
        .into_iter()
        .map(|p| crate::support::text_of(&p))
        .find(|t| t.contains("has finished sending"))
        .expect("the summary mail");
    let folded = crate::support::fold(&summary);
    assert!(
        folded.contains("By language: en 3 sent, es 2 sent"),
        "{summary}"
    );
    assert!(
        folded.contains("The canary went to 1 staff address before the readers"),
        "{summary}"
    );

    let (code, out, _) = run(&w, &["send", "--test"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("[en] editor@example.org"), "{out}");
    assert!(out.contains("[es] editor@example.org"), "{out}");
    assert_eq!(w.outbox("test").len(), 2);
    for p in w.outbox("test") {
        let c = parse(&std::fs::read(p).unwrap());
        assert!(c.subject.starts_with("[TEST] "), "{}", c.subject);
        assert_in(&c, c.content_language == "es", "the test copy");
        // "View in browser" points at the signed preview, in the copy's language.
        if c.content_language == "es" {
            assert!(c.html.contains("/es\""), "the Spanish preview link");
        }
    }
    let (code, out, _) = run(&w, &["send", "--test", "--lang", "es-MX"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(w.outbox("test").len(), 3);
    assert!(out.contains("1 of 1 accepted"), "{out}");
    let (code, _, err) = run(&w, &["send", "--test", "--lang", "fr"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("\"fr\" is not one of the newsletter's languages (en, es)"),
        "{err}"
    );
    assert_eq!(w.outbox("test").len(), 3, "nothing sent");
}

/// `/archive/ID` is the default language's stored web version, `/archive/ID/es` the Spanish
/// one, an unknown or unconfigured language is a 404, and the index links both.
#[test]
fn the_archive_serves_each_language_and_the_index_links_them() {
    let w = bilingual("");
    let (code, out, err) = run(&w, &["send", "--yes"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let d = Running::start(&w, &[]);
    let en = d.get("/archive/2021-07");
    assert_eq!(en.status, 200);
    assert!(en.body.contains("<html lang=\"en\""), "{}", en.body);
    assert!(en.body.contains("DHS Secretary Mayorkas"));
    let es = d.get("/archive/2021-07/es");
    assert_eq!(es.status, 200);
    assert!(es.body.contains("<html lang=\"es\""));
    assert!(es.body.contains("Visita a México del secretario del DHS"));
    // The default language by its tag is the same page.
    assert_eq!(d.get("/archive/2021-07/en").body, en.body);
    for missing in [
        "/archive/2021-07/fr",
        "/archive/2021-07/xx-not",
        "/archive/2021-08/es",
    ] {
        assert_eq!(d.get(missing).status, 404, "{missing}");
    }
    let index = d.get("/archive/");
    assert_eq!(index.status, 200);
    assert!(
        index
            .body
            .contains("https://news.example.org/archive/2021-07/es"),
        "{}",
        index.body
    );
    assert!(index.body.contains("Español"), "{}", index.body);
    assert!(index.body.contains("English"), "{}", index.body);
}

/// The console's issue page previews every edition and offers the language of a test; its
/// test form and the JSON endpoint send every language, or the one picked.
#[test]
fn the_console_and_the_json_endpoint_test_in_every_language_or_the_one_picked() {
    use crate::admin::{csrf_of, get_with, post_form, sign_in};
    let w = bilingual("");
    w.add_server_keys("admin_token_env = \"BRIEF_TEST_ADMIN\"");
    let admin = "an-admin-token-long-enough-to-pass-0123456789";
    let d = Running::start(&w, &[("BRIEF_TEST_ADMIN", admin)]);
    let cookie = sign_in(&d, &w, "editor@example.org", 1);
    let page = get_with(&d, "/admin/issues/2021-07", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200);
    for want in [
        "Edition in Español",
        "id=\"the-email-es\"",
        "<option value=\"\" selected>All languages</option>",
        "<option value=\"es\">Español</option>",
    ] {
        assert!(page.body.contains(want), "`{want}` missing");
    }
    let csrf = csrf_of(&page.body);
    let sent = post_form(
        &d,
        "/admin/issues/2021-07/test",
        &cookie,
        &format!("csrf={csrf}&to=editor%40example.org&lang=es"),
    );
    assert_eq!(sent.status, 200, "{}", sent.body);
    let tests = w.outbox("test");
    assert_eq!(tests.len(), 1);
    assert_in(
        &parse(&std::fs::read(&tests[0]).unwrap()),
        true,
        "the console's test",
    );
    let sent = post_form(
        &d,
        "/admin/issues/2021-07/test",
        &cookie,
        &format!("csrf={csrf}&to=editor%40example.org&lang="),
    );
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(w.outbox("test").len(), 3, "one more copy per language");

    let bearer = format!("Bearer {admin}");
    let json = |body: &str| {
        d.post(
            "/admin/test-send",
            &[
                ("Authorization", bearer.as_str()),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let r = json(r#"{"to": ["editor@example.org"], "issue": "2021-07", "lang": "es"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let langs: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["lang"].as_str().unwrap())
        .collect();
    assert_eq!(langs, ["es"]);
    let r = json(r#"{"to": ["editor@example.org"], "issue": "2021-07"}"#);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{}", r.body);
    let r = json(r#"{"to": ["editor@example.org"], "lang": "fr"}"#);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("not one of the newsletter's languages"),
        "{}",
        r.body
    );
    assert_eq!(w.outbox("test").len(), 6);

    // Once sent, the campaign page splits the counts by language and its CSV ends with `lang`.
    let (code, out, err) = run(&w, &["send", "--yes"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let page = get_with(&d, "/admin/campaigns/2021-07", &[("Cookie", &cookie)]);
    assert!(
        page.body.contains("By language: en 3 sent, es 2 sent"),
        "{}",
        page.body
    );
    let csv = get_with(&d, "/admin/campaigns/2021-07.csv", &[("Cookie", &cookie)]);
    assert_eq!(csv.status, 200);
    assert!(
        csv.body.lines().next().unwrap().ends_with(",lang"),
        "{}",
        csv.body
    );
    assert!(
        csv.body
            .lines()
            .any(|l| l.starts_with("carla@example.org,") && l.ends_with(",es")),
        "{}",
        csv.body
    );
}
