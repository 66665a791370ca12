//! Every public page in the reader's language: chosen by `?lang=`, else `Accept-Language`
//! (by prefix, by weight), with the links to the other languages; the language switch of an
//! issue asks first, records the choice only for a genuine token, and answers everyone alike.

use crate::support::daemon::Running;
use crate::support::World;

fn header<'a>(r: &'a crate::support::daemon::Reply, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_page_speaks_the_language_asked_for_and_links_to_the_others() {
    let w = World::new();
    crate::faces::bilingual(&w);
    let d = Running::start(&w, &[]);
    // No preference: the default, English.
    let r = d.get("/subscribe");
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("<html lang=\"en\" dir=\"ltr\">"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Subscribe to BRIEF"));
    assert_eq!(header(&r, "content-language"), Some("en"));
    assert_eq!(header(&r, "vary"), Some("Accept-Language"));
    // The link to the same page in Spanish, named in Spanish.
    assert!(
        r.body.contains("lang=\"es\" hreflang=\"es\" href=\"https://news.example.org/subscribe?lang=es\">Español</a>"),
        "{}",
        r.body
    );
    // Accept-Language, by prefix and by weight.
    for (accept, lang) in [
        ("es-MX,es;q=0.9", "es"),
        ("fr-CA, es;q=0.4, en;q=0.3", "es"),
        ("es;q=0.2, en", "en"),
        ("es;q=0, de", "en"),
    ] {
        let r = d.request("GET", "/subscribe", &[("Accept-Language", accept)], b"");
        assert!(
            r.body.contains(&format!("<html lang=\"{lang}\"")),
            "{accept}: {}",
            &r.body[..200]
        );
    }
    // ?lang= wins over the browser, and the answer no longer varies with it.
    let r = d.request(
        "GET",
        "/subscribe?lang=es",
        &[("Accept-Language", "en")],
        b"",
    );
    assert!(r.body.contains("Suscríbase a BRIEF"), "{}", r.body);
    assert!(
        r.body
            .contains("<option value=\"es\" lang=\"es\" selected>Español</option>"),
        "{}",
        r.body
    );
    assert_eq!(header(&r, "vary"), None);
    // A language not configured is the default; so are the error pages.
    let r = d.get("/subscribe?lang=fr");
    assert!(r.body.contains("Subscribe to BRIEF"));
    let r = d.request("GET", "/nothing/here", &[("Accept-Language", "es")], b"");
    assert_eq!(r.status, 404);
    assert!(
        r.body.contains("Aquí no hay nada.") && r.body.contains("<html lang=\"es\""),
        "{}",
        r.body
    );
    // A 404's links to itself in the other languages stay on this site, whatever the path.
    for path in [
        "//evil.example/x",
        "/%2F%2Fevil.example/x",
        "/a//evil.example",
        "/\\\\evil.example/x",
    ] {
        let r = d.get(path);
        // A backslash is no URI character: hyper may refuse the request outright.
        if r.status == 400 {
            continue;
        }
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.body
                .contains("hreflang=\"es\" href=\"https://news.example.org/")
                && !r.body.contains("href=\"https://evil")
                && !r.body.contains("href=\"//"),
            "{path}: {}",
            r.body
        );
    }
    d.stop();
}

#[test]
fn the_language_switch_asks_records_a_genuine_choice_and_answers_everyone_alike() {
    let w = World::new();
    crate::faces::bilingual(&w);
    let d = Running::start(&w, &[]);
    let app =
        brief::app::App::new(w.config(), std::sync::Arc::new(brief::clock::SystemClock)).unwrap();
    let token = app.key().token("bob@example.org");
    let bob = brief::address::AddressKey::of(&"bob@example.org".parse().unwrap());
    let choice = || {
        w.ledger()
            .language_choice(&bob)
            .unwrap()
            .map(|l| l.to_string())
    };
    // A GET asks, in the language offered, and changes nothing (link scanners follow links).
    let r = d.get(&format!("/language/es/{token}"));
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("¿Leer BRIEF en español?") && r.body.contains("<html lang=\"es\""),
        "{}",
        r.body
    );
    assert_eq!(choice(), None);
    // A forged token gets the very same answer, and nothing is recorded.
    let forged = app.key().token("eve@example.org").replace('.', ".x");
    let genuine = d.post(&format!("/language/es/{token}"), &[], b"");
    let fake = d.post(&format!("/language/es/{forged}"), &[], b"");
    assert_eq!((genuine.status, fake.status), (200, 200));
    assert_eq!(genuine.body, fake.body);
    assert!(
        genuine.body.contains("BRIEF llegará en español"),
        "{}",
        genuine.body
    );
    assert_eq!(choice(), Some("es".into()));
    let eve = brief::address::AddressKey::of(&"eve@example.org".parse().unwrap());
    assert_eq!(w.ledger().language_choice(&eve).unwrap(), None);
    // Back to English, by the English link.
    let r = d.post(&format!("/language/en/{token}"), &[], b"");
    assert!(r.body.contains("BRIEF will come in English"), "{}", r.body);
    assert_eq!(choice(), Some("en".into()));
    // A language brief does not write in is no page.
    assert_eq!(d.get(&format!("/language/fr/{token}")).status, 404);
    assert_eq!(
        d.post(&format!("/language/fr/{token}"), &[], b"").status,
        404
    );
    assert_eq!(choice(), Some("en".into()));
    d.stop();
}

/// The message to `to` in the outbox folder `sub`.
fn mail_to(w: &World, sub: &str, to: &str) -> Vec<u8> {
    std::fs::read(crate::faces::file_of(w, sub, to)).unwrap()
}

fn language_of(eml: &[u8]) -> String {
    let m = mail_parser::MessageParser::default().parse(eml).unwrap();
    m.header_raw("Content-Language").unwrap().trim().to_string()
}

/// Bob reads English; he presses the Spanish link in his issue, and the next issue comes to him
/// in Spanish.
#[test]
fn the_switch_link_changes_the_next_campaigns_language() {
    let w = World::new();
    crate::faces::bilingual(&w);
    w.copy_issue("2021-08");
    w.brief()
        .args(["send", "--issue", "2021-07", "--yes"])
        .assert()
        .success();
    let july = mail_to(&w, "2021-07", "bob@example.org");
    assert_eq!(language_of(&july), "en");
    let link = crate::faces::link_in(&july, "https://news.example.org/language/es/");
    let d = Running::start(&w, &[]);
    let path = link.trim_start_matches("https://news.example.org");
    let r = d.post(path, &[], b"");
    assert!(r.body.contains("BRIEF llegará en español"), "{}", r.body);
    d.stop();
    w.brief()
        .args(["send", "--issue", "2021-08", "--yes"])
        .assert()
        .success();
    let august = mail_to(&w, "2021-08", "bob@example.org");
    assert_eq!(language_of(&august), "es");
    let text = mail_parser::MessageParser::default()
        .parse(&august[..])
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(text.contains("Ver en el navegador"), "{text}");
}
