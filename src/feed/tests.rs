//! Unit tests of the pure side of feeds: parsing, item rules, keys and failure messages.

use super::*;

const JSON: &[u8] = include_bytes!("../../tests/fixtures/feeds/partner.json");
const RSS: &[u8] = include_bytes!("../../tests/fixtures/feeds/partner.rss");
const ATOM: &[u8] = include_bytes!("../../tests/fixtures/feeds/partner.atom");

fn feed(url: &str, label: Option<&str>) -> config::Feed {
    config::Feed {
        url: Url::parse(url).unwrap(),
        label: label.map(str::to_string),
        optional: false,
        lang: None,
        line: 1,
    }
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn key(e: &Entry) -> &str {
    item_key(e).unwrap()
}

fn body(e: &Entry) -> &SanitizedHtml {
    match &e.sections[..] {
        [Section {
            body: Body::Sanitized(s),
            ..
        }] => s,
        other => panic!("expected one sanitized section, got {other:?}"),
    }
}

#[test]
fn json_feed_items_become_entries_and_bad_items_are_left_out() {
    let f = feed("https://water.example.org/feed.json", Some("Water Council"));
    let entries = parse(JSON, &f).unwrap();
    // Item 3 has no date and item 4 a javascript: link: both left out.
    let titles: Vec<_> = entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Binational water council meets in El Paso",
            "Hostile Bcc: victim@example.com title",
            "A short note without a title, about the binational conference on shared…",
        ]
    );
    let first = &entries[0];
    assert_eq!(first.number, 0);
    // 15:00 at UTC-6 is 21:00 UTC, still the 12th.
    assert_eq!(first.date, date("2021-07-12"));
    assert_eq!(
        first.link.as_str(),
        "https://water.example.org/news/el-paso-meeting"
    );
    assert_eq!(
        first.source,
        EntrySource::Feed {
            feed_url: f.url.clone(),
            label: Some("Water Council".into()),
            item_key: "https://water.example.org/feed.json 1".into(),
            lang: None,
        }
    );
    assert_eq!(first.sections[0].label.as_deref(), Some("Water Council"));
    let b = body(first);
    assert_eq!(
        b.html(),
        "<p>The council <strong>met</strong> to review the <em>1944 treaty</em> deliveries.</p>\
         <ul><li>Rio Grande allocations</li><li>Colorado River minutes</li></ul>\
         <p>Read the <a href=\"https://water.example.org/minutes/2021-07\" rel=\"noopener noreferrer\">minutes</a>.</p>"
    );
    assert_eq!(
        b.text(),
        "The council met to review the 1944 treaty deliveries.\n\n\
         - Rio Grande allocations\n- Colorado River minutes\n\n\
         Read the minutes (https://water.example.org/minutes/2021-07)."
    );
    // An id that is already a URI is its own key.
    assert_eq!(key(&entries[2]), "https://water.example.org/notes/5");
    assert_eq!(
        body(&entries[2]).text(),
        "A short note without a title, about the binational conference on shared aquifers held in Ciudad Juárez this week.\n\nSecond paragraph."
    );
}

#[test]
fn hostile_item_is_defanged_in_title_html_and_text() {
    let entries = parse(JSON, &feed("https://water.example.org/feed.json", None)).unwrap();
    let hostile = &entries[1];
    assert!(!hostile.title.contains(['\r', '\n', '\u{7}']));
    assert_eq!(hostile.sections[0].label, None);
    let b = body(hostile);
    let html = b.html().to_ascii_lowercase();
    for banned in [
        "<script",
        "alert",
        "onclick",
        "onerror",
        "onmouseover",
        "style",
        "javascript:",
        "<img",
        "tracker",
    ] {
        assert!(!html.contains(banned), "{banned} survived in {html}");
        assert!(
            !b.text().to_ascii_lowercase().contains(banned),
            "{banned} in text"
        );
    }
    assert_eq!(
        b.html(),
        "<p>Safe words</p><p><a rel=\"noopener noreferrer\">click me</a> and \
         <a href=\"https://water.example.org/ok\" rel=\"noopener noreferrer\">a fine link</a></p>"
    );
    assert_eq!(
        b.text(),
        "Safe words\n\nclick me and a fine link (https://water.example.org/ok)"
    );
}

#[test]
fn rss_items_use_content_encoded_guid_or_link_as_key_and_fold_title_breaks() {
    let f = feed("https://trade.example.org/rss.xml", Some("Trade Forum"));
    let entries = parse(RSS, &f).unwrap();
    assert_eq!(entries.len(), 3);
    let forum = &entries[0];
    assert_eq!(forum.date, date("2021-07-06"));
    assert_eq!(key(forum), "https://trade.example.org/2021/07/forum");
    assert_eq!(
        body(forum).text(),
        "Ministers met on supply chains. See the agenda (https://trade.example.org/agenda)."
    );
    let customs = &entries[1];
    assert_eq!(customs.title, "Customs X-Injected: yes working group");
    // No guid: the link is the key.
    assert_eq!(key(customs), "https://trade.example.org/2021/07/customs");
    assert_eq!(
        body(customs).text(),
        "The customs working group agreed on three points:\n\n\
         1. shared inspections\n2. data exchange\n\n\
         Contact the secretariat (customs@trade.example.org)."
    );
    assert!(!body(customs).html().contains("onload"));
    assert_eq!(entries[2].date, date("2021-06-30"));
}

#[test]
fn atom_entries_take_html_titles_as_text_and_fall_back_to_updated() {
    let f = feed("https://health.example.org/feed.atom", None);
    let entries = parse(ATOM, &f).unwrap();
    assert_eq!(entries.len(), 3);
    let week = &entries[0];
    assert_eq!(week.title, "Border health week");
    assert_eq!(week.date, date("2021-07-15"));
    assert_eq!(key(week), "tag:health.example.org,2021:week");
    assert_eq!(
        body(week).html(),
        "<p>Clinics on both sides of the border offer free check-ups.</p>"
    );
    assert_eq!(entries[1].date, date("2015-03-01"));
    let vaccines = &entries[2];
    // Only <updated>: it is the date. The relative link resolves against the feed URL.
    assert_eq!(vaccines.date, date("2021-07-28"));
    assert_eq!(
        vaccines.link.as_str(),
        "https://health.example.org/2021/vaccines"
    );
    assert_eq!(
        body(vaccines).html(),
        "<p>Plain text content &lt;not a tag&gt;.</p><p>Second paragraph.</p>"
    );
    assert_eq!(
        body(vaccines).text(),
        "Plain text content <not a tag>.\n\nSecond paragraph."
    );
}

#[test]
fn an_item_without_title_or_body_is_left_out_and_an_empty_body_has_no_section() {
    let json = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [
        {"id": "a", "url": "https://x.example.org/a", "date_published": "2021-07-01T00:00:00Z"},
        {"id": "b", "url": "https://x.example.org/b", "title": "Only a title", "date_modified": "2021-07-02T00:00:00Z"}
    ]}"#;
    let entries = parse(json, &feed("https://x.example.org/feed.json", None)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].title, "Only a title");
    assert_eq!(entries[0].date, date("2021-07-02"));
    assert!(entries[0].sections.is_empty());
}

#[test]
fn long_titles_are_shortened_at_a_word() {
    let long = "word ".repeat(100);
    let short = shorten(long.trim(), MAX_TITLE_CHARS);
    assert!(short.chars().count() <= MAX_TITLE_CHARS, "{short}");
    assert!(short.ends_with("word…"), "{short}");
    assert_eq!(shorten("short", 10), "short");
}

#[test]
fn garbage_is_a_parse_failure_naming_the_url() {
    let f = feed("https://x.example.org/feed", None);
    let e = parse(b"<html><body>not a feed</body></html>", &f).unwrap_err();
    assert!(matches!(e.kind, FailureKind::Parse(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("feed https://x.example.org/feed: cannot parse: "),
        "{e}"
    );
}

#[test]
fn failures_say_url_and_reason_and_know_whether_to_retry() {
    let url = Url::parse("https://x.example.org/feed").unwrap();
    let f = |kind| FeedFailure {
        url: url.clone(),
        kind,
    };
    let cases = [
        (
            f(FailureKind::Status(StatusCode::NOT_FOUND)),
            "feed https://x.example.org/feed: HTTP status 404 Not Found",
            false,
        ),
        (
            f(FailureKind::Status(StatusCode::SERVICE_UNAVAILABLE)),
            "feed https://x.example.org/feed: HTTP status 503 Service Unavailable",
            true,
        ),
        (
            f(FailureKind::Timeout(Duration::from_secs(30))),
            "feed https://x.example.org/feed: timed out after 30s (`content.feed_timeout`)",
            true,
        ),
        (
            f(FailureKind::TooLarge(5 * 1024 * 1024)),
            "feed https://x.example.org/feed: too large: more than 5242880 bytes (`content.feed_max_bytes`)",
            false,
        ),
        (
            f(FailureKind::TooManyRedirects),
            "feed https://x.example.org/feed: too many redirects: more than 3",
            false,
        ),
        (
            f(FailureKind::Connection("tcp connect error".into())),
            "feed https://x.example.org/feed: connection failed: tcp connect error",
            true,
        ),
    ];
    for (failure, message, transient) in cases {
        assert_eq!(failure.to_string(), message);
        assert_eq!(failure.is_transient(), transient, "{message}");
    }
    let both = FeedErrors(vec![
        f(FailureKind::TooManyRedirects),
        f(FailureKind::Scheme),
    ]);
    assert_eq!(
        both.to_string(),
        "2 feeds failed: feed https://x.example.org/feed: too many redirects: more than 3; \
         feed https://x.example.org/feed: not an http or https URL"
    );
}

#[test]
fn calendar_month_window_is_start_inclusive_end_exclusive() {
    let w = Window::calendar_month("2021-07".parse().unwrap());
    assert!(w.contains(date("2021-07-01")));
    assert!(w.contains(date("2021-07-31")));
    assert!(!w.contains(date("2021-08-01")));
    assert!(!w.contains(date("2021-06-30")));
}

#[test]
fn an_item_is_in_its_feeds_configured_language_else_its_own_else_its_feeds() {
    let lang = |s: &str| Some(Lang::parse(s).unwrap());
    let lang_of = |e: &Entry| match &e.source {
        EntrySource::Feed { lang, .. } => lang.clone(),
        EntrySource::File(_) => unreachable!("a feed entry"),
    };
    let json =
        br#"{"version": "https://jsonfeed.org/version/1.1", "title": "P", "language": "es-mx",
        "items": [{"id": "https://p.example.org/1", "url": "https://p.example.org/1",
        "title": "Uno", "date_published": "2021-07-05T00:00:00Z", "content_text": "Hola."}]}"#;
    let mut f = feed("https://p.example.org/feed.json", None);
    assert_eq!(lang_of(&parse(json, &f).unwrap()[0]), lang("es-MX"));
    f.lang = lang("en");
    assert_eq!(lang_of(&parse(json, &f).unwrap()[0]), lang("en"));
    // No language said, or none that is a tag: none.
    let f = feed("https://water.example.org/feed.json", None);
    assert_eq!(lang_of(&parse(JSON, &f).unwrap()[0]), None);
    let odd = String::from_utf8_lossy(json).replace("es-mx", "Spanish!");
    assert_eq!(lang_of(&parse(odd.as_bytes(), &f).unwrap()[0]), None);
    // Atom: the xml:lang of an entry's content over the feed's.
    let atom = br#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <title>P</title><id>urn:p</id><updated>2021-07-05T00:00:00Z</updated>
  <entry><title>Uno</title><id>urn:p:1</id><link href="https://p.example.org/1"/>
    <updated>2021-07-05T00:00:00Z</updated><content type="text" xml:lang="es">Hola.</content></entry>
  <entry><title>Two</title><id>urn:p:2</id><link href="https://p.example.org/2"/>
    <updated>2021-07-05T00:00:00Z</updated><summary>Hello.</summary></entry>
</feed>"#;
    let f = feed("https://p.example.org/feed.atom", None);
    let entries = parse(atom, &f).unwrap();
    assert_eq!(lang_of(&entries[0]), lang("es"));
    assert_eq!(lang_of(&entries[1]), lang("en"));
}
