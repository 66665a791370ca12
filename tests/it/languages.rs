//! Content in several languages: translations beside the entries, `brief check` naming every
//! missing or stray one, feed items kept to the edition of their language, and the shipped
//! example whole in English and Spanish.

use std::sync::Arc;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use brief::app::App;
use brief::clock::FixedClock;
use brief::content;
use brief::feed::FetchPolicy;
use brief::issue::Issue;
use brief::lang::{Lang, Languages};
use tokio::net::TcpListener;

use crate::support::{repo, World};

fn lang(tag: &str) -> Lang {
    Lang::parse(tag).unwrap()
}

fn en_es() -> Languages {
    Languages::new(vec![lang("en"), lang("es")]).unwrap()
}

/// A world read in English and Spanish (the example issue brings its translations), with
/// `extra` appended to its config.
fn bilingual(extra: &str) -> World {
    let w = World::with_config(extra);
    w.add_newsletter_keys("languages = [\"en\", \"es\"]");
    w
}

fn july_23() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2021-07-23T12:00:00Z")
        .unwrap()
        .to_utc()
}

fn check(w: &World) -> (Option<i32>, String) {
    let out = w
        .brief()
        .args(["check", "--issue", "2021-07"])
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

fn has(stdout: &str, want: &str) {
    assert!(
        stdout.lines().any(|l| l.contains(want)),
        "expected a line containing `{want}` in:\n{stdout}"
    );
}

#[test]
fn the_shipped_example_loads_whole_in_english_and_spanish() {
    let config = brief::config::load(&repo().join("config/brief.toml")).unwrap();
    assert_eq!(config.newsletter.languages, en_es());
    let es = config.newsletter.localized(&lang("es"));
    assert!(es.name.contains("México"), "{}", es.name);
    for id in ["2021-07", "2021-08"] {
        let dir = repo().join("content");
        let editions = content::load_editions(&dir, id.parse().unwrap(), &en_es())
            .unwrap_or_else(|p| panic!("{p}"));
        let [(l0, en), (l1, sp)] = &editions[..] else {
            panic!("two editions: {editions:?}")
        };
        assert_eq!((l0.as_str(), l1.as_str()), ("en", "es"));
        assert_eq!(*en, content::load_issue(&dir, id.parse().unwrap()).unwrap());
        assert_eq!(en.entries.len(), sp.entries.len());
        for (e, s) in en.entries.iter().zip(&sp.entries) {
            assert_ne!(e.title, s.title, "{id}: `{}` is translated", e.title);
            assert_eq!((e.number, e.date, &e.link), (s.number, s.date, &s.link));
            assert_eq!(
                s.sections[0].label.as_deref(),
                Some("Contexto institucional")
            );
        }
    }
}

#[test]
fn check_of_a_bilingual_issue_is_clean_and_names_each_edition() {
    let w = bilingual("");
    let (code, out) = check(&w);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.trim(),
        "ok: issue 2021-07, en: 4 entries, es: 4 entries, 3 subscribers"
    );
}

#[test]
fn check_names_every_missing_and_stray_translation_with_its_file_and_line() {
    let w = bilingual("");
    // A missing translation, a translation without a title, one without its entry, one in a
    // language not configured, and an issue.toml text without its Spanish twin.
    w.remove("content/2021-07/03-amlo-senators.es.md");
    w.write(
        "content/2021-07/02-defense-working-group.es.md",
        "+++\nlink = \"https://www.defense.gov/\"\n+++\n\n## Contexto institucional\n\nTexto.\n\n## Reunión\n\nTexto.\n",
    );
    w.write(
        "content/2021-07/09-extra.es.md",
        "+++\ntitle = \"Extra\"\n+++\n\n## Contexto institucional\n\nTexto.\n",
    );
    w.write(
        "content/2021-07/01-mayorkas-visit.fr.md",
        "+++\ntitle = \"Visite\"\n+++\n\n## Contexte\n\nTexte.\n",
    );
    w.write(
        "content/2021-07/issue.toml",
        "date = 2021-07-23\nsubject = \"July\"\nintro = \"The month.\"\n\n[es]\nintro = \"El mes.\"\n",
    );
    let (code, out) = check(&w);
    assert_eq!(code, Some(1), "{out}");
    has(
        &out,
        "content/2021-07/03-amlo-senators.md: no Spanish translation: add 03-amlo-senators.es.md",
    );
    has(
        &out,
        "content/2021-07/02-defense-working-group.es.md:1: missing field `title` in the front matter",
    );
    has(
        &out,
        "content/2021-07/09-extra.es.md: a Spanish translation of `09-extra.md`, which is not in the folder",
    );
    has(
        &out,
        "content/2021-07/01-mayorkas-visit.fr.md: unknown language `fr`: `newsletter.languages` lists en, es",
    );
    has(
        &out,
        "content/2021-07/issue.toml:2: `subject` has no Spanish text: add `subject = \"...\"` to its `[es]` table",
    );
    has(&out, "5 problem(s) in issue 2021-07");

    // The checks before a scheduled send report them too.
    let app = App::new(w.config(), Arc::new(FixedClock::new(july_23()))).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let findings = rt.block_on(brief::preflight::check(&app, "2021-07".parse().unwrap()));
    assert!(
        findings
            .problems
            .iter()
            .any(|p| p.ends_with("no Spanish translation: add 03-amlo-senators.es.md")),
        "{findings:?}"
    );
    // The default language's issue is whole all the same (the console's pages show it).
    let en = rt
        .block_on(app.collect_issue("2021-07".parse().unwrap(), FetchPolicy::Once))
        .unwrap();
    assert_eq!(en.entries.len(), 4);
}

/// A JSON Feed with one item dated in July 2021, and `language` if given.
fn json_feed(id: &str, language: Option<&str>) -> String {
    let language = language.map_or(String::new(), |l| format!("\"language\": \"{l}\","));
    format!(
        r#"{{"version": "https://jsonfeed.org/version/1.1", "title": "{id}", {language}
        "items": [{{"id": "https://{id}.example.org/1", "url": "https://{id}.example.org/1",
        "title": "Item of {id}", "date_published": "2021-07-10T12:00:00Z",
        "content_text": "Text of {id}."}}]}}"#
    )
}

/// Serves `/spanish.json` (a feed that says `es-MX`), `/plain.json` (one that says nothing)
/// and `/configured.json` (says nothing; the config gives it `en`); the base URL.
async fn language_feeds() -> String {
    let serve = |body: String| {
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/feed+json")], body) }
        })
    };
    let app = Router::new()
        .route("/spanish.json", serve(json_feed("spanish", Some("es-MX"))))
        .route("/plain.json", serve(json_feed("plain", None)))
        .route("/configured.json", serve(json_feed("configured", None)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn titles(issue: &Issue) -> Vec<&str> {
    issue
        .entries
        .iter()
        .filter(|e| e.title.starts_with("Item of"))
        .map(|e| e.title.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_item_goes_into_its_languages_edition_and_one_without_into_every_edition() {
    let base = language_feeds().await;
    let w = bilingual("");
    let cfg = std::fs::read_to_string(w.config_path()).unwrap().replacen(
        "[content]\ndir = \"content\"\n",
        &format!(
            "[content]\ndir = \"content\"\nwindow = \"calendar-month\"\n\n\
             [[content.feeds]]\nurl = \"{base}/spanish.json\"\n\n\
             [[content.feeds]]\nurl = \"{base}/plain.json\"\n\n\
             [[content.feeds]]\nurl = \"{base}/configured.json\"\nlang = \"en\"\n"
        ),
        1,
    );
    w.write("brief.toml", &cfg);
    let app = App::new(w.config(), Arc::new(FixedClock::new(july_23()))).unwrap();
    let id = "2021-07".parse().unwrap();
    let editions = app
        .collect_editions(id, FetchPolicy::Once)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let [(en_lang, en), (es_lang, es)] = &editions[..] else {
        panic!("two editions: {editions:?}")
    };
    assert_eq!((en_lang.as_str(), es_lang.as_str()), ("en", "es"));
    assert_eq!(titles(en), ["Item of plain", "Item of configured"]);
    assert_eq!(titles(es), ["Item of spanish", "Item of plain"]);
    // The folder's entries are in each edition, translated in the Spanish one.
    assert_eq!(en.entries.len(), 6);
    assert_eq!(es.entries.len(), 6);
    assert!(es
        .entries
        .iter()
        .any(|e| e.title.starts_with("Reunión del T-MEC")));
    // The default language's issue is the English edition.
    let issue = app.collect_issue(id, FetchPolicy::Once).await.unwrap();
    assert_eq!(&issue, en);
    // From the cached copies (the console's pages), the same.
    let cached = tokio::task::spawn_blocking(move || app.collect_editions_cached(id).0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached, editions);
}

#[test]
fn check_links_fetches_the_links_of_every_edition_once() {
    let w = bilingual("");
    let base = crate::preflight::web();
    // Every English link answers (the first 404s); the Spanish translation of the second entry
    // has a link of its own, which 404s too; the others take their entry's.
    crate::preflight::links_to(&w, "2021-07", &base);
    let es = "content/2021-07/02-defense-working-group.es.md";
    let text = std::fs::read_to_string(w.path(es)).unwrap().replacen(
        "+++\ntitle",
        &format!("+++\nlink = \"{base}/missing-es\"\ntitle"),
        1,
    );
    w.write(es, &text);
    let out = w
        .brief()
        .args(["check", "--links", "--issue", "2021-07"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    has(
        &stdout,
        &format!("01-mayorkas-visit.md:4: link {base}/missing answered 404"),
    );
    has(
        &stdout,
        &format!("02-defense-working-group.es.md:2: link {base}/missing-es answered 404"),
    );
    // Four English links and one Spanish: the translations' inherited links are the same URLs.
    has(&stdout, "links: 5 checked, 2 broken");
}
