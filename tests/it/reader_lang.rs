//! Every reader has a language: the list file's `lang` column, the reader's choice in the ledger
//! over it, a sign-up's language kept through its confirmation link (and a link made before
//! links carried one still working), the console's reader page showing and changing it, and
//! the CLI's add, list, import and export with it.

use std::sync::Arc;
use std::time::Duration;

use brief::address::AddressKey;
use brief::audience::{each_subscriber, Held};
use brief::clock::{Clock, SystemClock};
use brief::lang::Lang;
use brief::ledger::{Action, Asking};

use crate::admin::{csrf_of, get_with, post_form, sign_in};
use crate::support::daemon::{wait_until, Running};
use crate::support::World;

const EDITOR: &str = "editor@example.org";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// A world whose newsletter is written in English (the default) and Spanish.
fn bilingual() -> World {
    let w = World::new();
    w.add_newsletter_keys("languages = [\"en\", \"es\"]");
    w
}

fn lang(tag: &str) -> Lang {
    Lang::parse(tag).unwrap()
}

/// Runs `brief ARGS` in `w`: exit code, stdout, stderr.
fn run(w: &World, args: &[&str]) -> (Option<i32>, String, String) {
    let o = w.brief().args(args).output().unwrap();
    (
        o.status.code(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Each reader of `w`'s list with the language on record, in list order, and the bad rows.
fn languages_on_record(w: &World) -> (Vec<(String, Option<String>)>, Vec<String>) {
    let clock = Arc::new(SystemClock);
    let app = brief::app::App::new(w.config(), clock).unwrap();
    let held = Held::load(&w.ledger()).unwrap();
    let (mut readers, mut bad) = (Vec::new(), Vec::new());
    each_subscriber(
        &app,
        &held,
        |s| {
            readers.push((s.address.to_string(), s.lang.map(|l| l.to_string())));
            Ok(())
        },
        |p| bad.push(p.to_string()),
    )
    .unwrap();
    (readers, bad)
}

#[test]
fn the_list_files_lang_and_the_readers_own_choice_make_each_readers_language() {
    let w = bilingual();
    w.write(
        "subscribers.csv",
        "email,name,lang\nana@example.org,Ana García,es\nbob@example.org,Bob,\n\
         carla@example.org,Carla,fr\nbad@example.org,Bad,not a tag\n",
    );
    {
        let mut l = w.ledger();
        l.add_subscriber(
            &"dora@example.org".parse().unwrap(),
            Some("Dora"),
            Some(&lang("es-MX")),
            1,
        )
        .unwrap();
        // Choices by address key, for readers only in the file: over the file's cell.
        assert!(l
            .set_language(&AddressKey::from_text("ANA@example.org"), &lang("en"), 2)
            .unwrap());
        assert!(l
            .set_language(&AddressKey::from_text("bob@example.org"), &lang("es"), 3)
            .unwrap());
    }
    let (readers, bad) = languages_on_record(&w);
    let on_record = |t: &str| Some(t.to_string());
    assert_eq!(
        readers,
        [
            ("ana@example.org".to_string(), on_record("en")),
            ("bob@example.org".to_string(), on_record("es")),
            // A language brief does not write in is kept as written: the send picks.
            ("carla@example.org".to_string(), on_record("fr")),
            ("dora@example.org".to_string(), on_record("es-MX")),
        ]
    );
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].ends_with(
            "subscribers.csv:5: the `lang` column: `not a tag` is not a language tag (BCP 47, like `en`, `es` or `es-MX`)"
        ),
        "{bad:?}"
    );
    let languages = &w.config().newsletter.languages;
    assert_eq!(languages.pick(Some("fr")).as_str(), "en");
    assert_eq!(languages.pick(Some("es-MX")).as_str(), "es");

    // The list shows the language on record after the name; the export has it as a column,
    // plain and the same in the console's download.
    let (code, list, err) = run(&w, &["subscribers", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        list.contains("ana@example.org\tactive\tAna García\ten\n"),
        "{list}"
    );
    assert!(
        list.contains("carla@example.org\tactive\tCarla\tfr\n"),
        "{list}"
    );
    assert!(
        list.contains("dora@example.org\tactive\tDora\tes-MX\n"),
        "{list}"
    );
    assert!(
        err.contains("subscribers.csv:5: the `lang` column"),
        "{err}"
    );
    let (code, csv, _) = run(&w, &["subscribers", "export"]);
    assert_eq!(code, Some(0));
    assert!(
        csv.starts_with("email,name,state,source,requested_at,confirmed_at,lang\n"),
        "{csv}"
    );
    assert!(
        csv.contains("ana@example.org,Ana García,active,file,,,en\n"),
        "{csv}"
    );
    assert!(
        csv.contains("bob@example.org,Bob,active,file,,,es\n"),
        "{csv}"
    );
    assert!(
        csv.contains("dora@example.org,Dora,active,staff,,,es-MX\n"),
        "{csv}"
    );

    // Adding with --lang: a configured language (by prefix), kept as typed; anything else is a
    // usage error. For an address the list file has, it becomes the reader's choice.
    let (code, out, err) = run(
        &w,
        &["subscribers", "add", "eve@example.org", "--lang", "ES"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("added eve@example.org"), "{out}");
    for bad in ["de", "e s"] {
        let (code, _, err) = run(
            &w,
            &["subscribers", "add", "fay@example.org", "--lang", bad],
        );
        assert_eq!(code, Some(2), "{bad}: {err}");
        assert!(err.contains("--lang"), "{err}");
    }
    let (code, _, err) = run(
        &w,
        &["subscribers", "add", "carla@example.org", "--lang", "es"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(
        &w,
        &["subscribers", "add", "dora@example.org", "--lang", "en"],
    );
    assert_eq!(code, Some(0));
    assert!(out.contains("its language is now en"), "{out}");
    let (readers, _) = languages_on_record(&w);
    let of = |a: &str| readers.iter().find(|(r, _)| r == a).unwrap().1.clone();
    assert_eq!(of("carla@example.org").as_deref(), Some("es"));
    assert_eq!(of("dora@example.org").as_deref(), Some("en"));
    assert_eq!(of("eve@example.org").as_deref(), Some("es"));

    // The import reads the column; an export imports back with its languages.
    w.write(
        "more.csv",
        "email,name,lang\ngus@example.org,Gus,es\nhal@example.org,Hal,\nivy@example.org,Ivy,??\n",
    );
    let (code, out, err) = run(&w, &["subscribers", "import", "more.csv"]);
    assert_eq!(code, Some(1), "a bad row: {out}{err}");
    assert!(out.contains("2 added"), "{out}");
    assert!(err.contains("more.csv:4: the `lang` column"), "{err}");
    let held = w.ledger().stored_subscribers().unwrap();
    let stored = |a: &str| held.iter().find(|s| s.address == a).unwrap().lang.clone();
    assert_eq!(stored("gus@example.org"), Some(lang("es")));
    assert_eq!(stored("hal@example.org"), None);
}

/// The path of the confirmation link (`/confirm/TOKEN`) in the sign-up message to `to`.
fn confirm_path(w: &World, to: &str) -> String {
    let mut found = None;
    wait_until(
        &format!("the confirmation to {to}"),
        Duration::from_secs(20),
        || {
            found = w.outbox("signup").into_iter().find_map(|p| {
                let raw = std::fs::read(&p).unwrap();
                let m = mail_parser::MessageParser::default().parse(&raw)?;
                let to_it = m
                    .to()
                    .and_then(|t| t.first())
                    .and_then(|a| a.address())
                    .is_some_and(|a| a.eq_ignore_ascii_case(to));
                to_it.then(|| m.body_text(0).unwrap().into_owned())
            });
            found.is_some()
        },
    );
    let text = found.unwrap();
    let at = text.find("https://news.example.org/confirm/").unwrap();
    text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect::<String>()
        .trim_start_matches("https://news.example.org")
        .to_string()
}

/// The language a sign-up request of `address` was noted with, once it is noted.
fn signup_lang(w: &World, address: &str) -> Option<String> {
    let mut lang = None;
    wait_until(
        &format!("the sign-up of {address}"),
        Duration::from_secs(20),
        || match w
            .ledger()
            .signups()
            .unwrap()
            .into_iter()
            .find(|s| s.address == address)
        {
            Some(s) => {
                lang = s.lang.map(|l| l.to_string());
                true
            }
            None => false,
        },
    );
    lang
}

#[test]
fn a_sign_up_keeps_its_language_through_the_link_and_an_old_link_still_confirms() {
    let w = bilingual();
    let d = Running::start(&w, &[]);
    let ask = |fields: &[(&str, &str)], accept: Option<&str>| {
        let mut headers = vec![FORM];
        if let Some(a) = accept {
            headers.push(("Accept-Language", a));
        }
        let r = d.post("/subscribe", &headers, form(fields).as_bytes());
        assert_eq!(r.status, 200, "{}", r.body);
    };

    // The form's language, over what the browser asks for.
    ask(&[("email", "sol@example.org"), ("lang", "ES")], Some("en"));
    assert_eq!(signup_lang(&w, "sol@example.org").as_deref(), Some("es"));
    let path = confirm_path(&w, "sol@example.org");
    let r = d.post(&path, &[FORM], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let held = w.ledger().stored_subscribers().unwrap();
    let sol = held
        .iter()
        .find(|s| s.address == "sol@example.org")
        .unwrap();
    assert_eq!(sol.lang, Some(lang("es")));

    // No language in the form, or one brief does not write in: the browser's.
    ask(
        &[("email", "tom@example.org")],
        Some("es-MX,es;q=0.9,en;q=0.8"),
    );
    assert_eq!(signup_lang(&w, "tom@example.org").as_deref(), Some("es"));
    ask(
        &[("email", "uma@example.org"), ("lang", "de")],
        Some("de, en;q=0.5"),
    );
    assert_eq!(signup_lang(&w, "uma@example.org").as_deref(), Some("en"));
    ask(&[("email", "val@example.org")], None);
    assert_eq!(signup_lang(&w, "val@example.org").as_deref(), Some("en"));

    // A link mailed before links carried the language (three fields, signed with the same
    // key) still confirms, and records none.
    let app = brief::app::App::new(w.config(), Arc::new(SystemClock)).unwrap();
    let now_ms = SystemClock.now_ms();
    let token = app.key().sign(
        brief::token::Purpose::Confirm,
        &["old@example.org", "Old Reader", &now_ms.to_string()],
        now_ms / 1000 + 3600,
    );
    assert_eq!(d.get(&format!("/confirm/{token}")).status, 200);
    let r = d.post(&format!("/confirm/{token}"), &[FORM], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let held = w.ledger().stored_subscribers().unwrap();
    let old = held
        .iter()
        .find(|s| s.address == "old@example.org")
        .expect("the old link confirmed");
    assert_eq!(
        (old.name.as_deref(), old.lang.as_ref()),
        (Some("Old Reader"), None)
    );
    // A link whose language field is not a tag is not genuine.
    let token = app.key().sign(
        brief::token::Purpose::Confirm,
        &["odd@example.org", "", &now_ms.to_string(), "not a tag"],
        now_ms / 1000 + 3600,
    );
    assert_eq!(
        d.post(&format!("/confirm/{token}"), &[FORM], b"").status,
        400
    );
    d.stop();
}

/// The `data-reader-lang` of a reader's page: the language the reader gets.
fn shown_lang(page: &str) -> String {
    let at = page
        .find("data-reader-lang=\"")
        .unwrap_or_else(|| panic!("no language on {page}"));
    let rest = &page[at + "data-reader-lang=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[test]
fn staff_see_and_change_a_readers_language_on_the_reader_page() {
    let w = bilingual();
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    w.write(
        "subscribers.csv",
        "email,name,lang\nana@example.org,Ana García,es\nbob@example.org,Bob\n",
    );
    let (code, _, err) = run(
        &w,
        &["subscribers", "add", "dora@example.org", "--lang", "es"],
    );
    assert_eq!(code, Some(0), "{err}");
    // Ana, a reader of the list file, is known to the ledger by a sign-up (with no language).
    w.ledger()
        .request_signup(
            &Asking {
                address: &"ana@example.org".parse().unwrap(),
                name: None,
                lang: None,
                forget_hash: "h",
            },
            SystemClock.instant(),
            Duration::from_secs(3600),
            Duration::ZERO,
        )
        .unwrap();
    let (dora, ana) = {
        let l = w.ledger();
        let id = |a: &str| l.reader_id(&AddressKey::from_text(a)).unwrap().unwrap();
        (id("dora@example.org"), id("ana@example.org"))
    };
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);
    let csrf = csrf_of(&get("/admin/").body);
    let post = |path: &str, pairs: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        post_form(&d, path, &cookie, &form(&all))
    };

    let page = get(&format!("/admin/subscribers/{dora}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(shown_lang(&page.body), "es");
    assert!(page.body.contains("as added or confirmed"), "{}", page.body);
    assert!(page.body.contains("name=\"lang\""), "{}", page.body);
    // The list file's cell, for a reader it lists.
    let page = get(&format!("/admin/subscribers/{ana}"));
    assert_eq!(shown_lang(&page.body), "es");
    assert!(page.body.contains("from the list file"), "{}", page.body);

    // Changed: recorded as the reader's choice, and in the activity log.
    let r = post(
        &format!("/admin/subscribers/{ana}/language"),
        &[("lang", "en")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = get(&format!("/admin/subscribers/{ana}"));
    assert_eq!(shown_lang(&page.body), "en");
    assert!(page.body.contains("chosen"), "{}", page.body);
    let (readers, _) = languages_on_record(&w);
    assert!(
        readers.contains(&("ana@example.org".to_string(), Some("en".to_string()))),
        "{readers:?}"
    );
    let log = w.ledger().activity(None, 10).unwrap();
    assert_eq!(
        (
            log[0].action,
            log[0].subject.as_str(),
            log[0].detail.as_str()
        ),
        (Action::SetLanguage, format!("reader {ana}").as_str(), "en")
    );
    // A language brief does not write in changes nothing; nor does a post without the token.
    let r = post(
        &format!("/admin/subscribers/{dora}/language"),
        &[("lang", "fr")],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = post_form(
        &d,
        &format!("/admin/subscribers/{dora}/language"),
        &cookie,
        &form(&[("lang", "en")]),
    );
    assert!(
        r.status == 403 || r.status == 400,
        "{}: {}",
        r.status,
        r.body
    );
    assert_eq!(
        shown_lang(&get(&format!("/admin/subscribers/{dora}")).body),
        "es"
    );
    assert_eq!(w.ledger().activity(None, 10).unwrap().len(), log.len());

    // The add form offers the languages, and the reader is added with the one chosen.
    assert!(get("/admin/subscribers/add")
        .body
        .contains("brief-add-lang"));
    let r = post(
        "/admin/subscribers/add",
        &[
            ("address", "ned@example.org"),
            ("source", "asked at the fair"),
            ("lang", "es"),
            ("confirmed", "yes"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let held = w.ledger().stored_subscribers().unwrap();
    let ned = held
        .iter()
        .find(|s| s.address == "ned@example.org")
        .unwrap();
    assert_eq!(ned.lang, Some(lang("es")));
    d.stop();
}

#[test]
fn with_one_language_the_reader_page_offers_no_change() {
    let w = World::new();
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    let (code, _, err) = run(&w, &["subscribers", "add", "dora@example.org"]);
    assert_eq!(code, Some(0), "{err}");
    let dora = w
        .ledger()
        .reader_id(&AddressKey::from_text("dora@example.org"))
        .unwrap()
        .unwrap();
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let page = get_with(
        &d,
        &format!("/admin/subscribers/{dora}"),
        &[("Cookie", &cookie)],
    );
    assert_eq!(shown_lang(&page.body), "en");
    assert!(page.body.contains("en (the default)"), "{}", page.body);
    assert!(!page.body.contains("brief-reader-lang"), "{}", page.body);
    let csrf = csrf_of(&page.body);
    let r = post_form(
        &d,
        &format!("/admin/subscribers/{dora}/language"),
        &cookie,
        &form(&[("csrf", &csrf), ("lang", "en")]),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        w.ledger()
            .language_choice(&AddressKey::from_text("dora@example.org"))
            .unwrap(),
        None
    );
    d.stop();
}
