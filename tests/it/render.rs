//! The rendered example issue: snapshots of what subscribers see, and the promises of the layout.

use brief::config;
use brief::content;
use brief::issue::{Block, Body, Inline, Issue};
use brief::render::{self, Context, Rendered};
use brief::templates::Templates;

use crate::support::{fold, repo, World};

/// The 2021-07 example issue rendered with the world's config and the repository's templates.
pub fn example() -> (config::Config, Issue, Rendered, String) {
    let w = World::new();
    let cfg = w.config();
    let templates = Templates::load(cfg.newsletter.templates.as_deref(), &cfg.newsletter).unwrap();
    let issue = content::load_issue(&repo().join("content"), "2021-07".parse().unwrap()).unwrap();
    let ctx = Context::of(&templates, &templates.editions()[0], &cfg.server.public_url);
    let rendered = render::render_email(&issue, ctx);
    let web = render::render_web(&issue, ctx);
    (cfg, issue, rendered, web)
}

/// Every paragraph of an issue's entries as plain text.
pub fn paragraphs(issue: &Issue) -> Vec<(String, Vec<String>)> {
    issue
        .entries
        .iter()
        .map(|e| {
            let mut ps = Vec::new();
            for s in &e.sections {
                if let Some(l) = &s.label {
                    ps.push(l.clone());
                }
                if let Body::Blocks(blocks) = &s.body {
                    for b in blocks {
                        match b {
                            Block::Paragraph(p) => ps.push(Inline::plain(p)),
                            Block::List(items) => ps.extend(items.iter().map(|i| Inline::plain(i))),
                        }
                    }
                }
            }
            (e.title.clone(), ps)
        })
        .collect()
}

/// HTML with tags dropped and the few entities maud writes decoded.
pub fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// One element per line, so a snapshot diff shows what changed.
fn lines(html: &str) -> String {
    let mut s = html.to_string();
    for tag in [
        "<tr", "<p ", "<h1", "<h2", "<ul", "<li", "<table", "</table", "<div", "<head", "<body",
        "<style", "<!--",
    ] {
        s = s.replace(tag, &format!("\n{tag}"));
    }
    s
}

/// What a reader's token looks like in the tests, and the unsubscribe URL it makes.
const TOKEN: &str = "TOKEN";
const URL: &str = "https://news.example.org/unsubscribe/TOKEN";

#[test]
fn html_snapshot() {
    let (_, _, r, _) = example();
    insta::assert_snapshot!(lines(&Rendered::fill(&r.html, TOKEN)));
}

#[test]
fn text_snapshot() {
    let (_, _, r, _) = example();
    insta::assert_snapshot!(Rendered::fill(&r.text, TOKEN));
}

#[test]
fn both_parts_carry_every_title_and_paragraph_in_order() {
    let (_, issue, r, _) = example();
    let text = fold(&Rendered::fill(&r.text, TOKEN));
    let html = fold(&html_text(&Rendered::fill(&r.html, TOKEN)));
    let mut want = Vec::new();
    for (title, ps) in paragraphs(&issue) {
        want.push(fold(&title));
        want.extend(ps.iter().map(|p| fold(p)));
    }
    assert!(
        want.len() >= 12,
        "the example has 4 entries of title, 2 labels, 2 paragraphs"
    );
    crate::support::assert_in_order(&text, &want, "text part");
    crate::support::assert_in_order(&html, &want, "html part");
}

#[test]
fn text_part_is_wrapped_at_72_columns_except_long_urls() {
    let (_, _, r, _) = example();
    for line in Rendered::fill(&r.text, TOKEN).lines() {
        assert!(
            line.chars().count() <= 72 || !line.trim().contains(' ') || line.contains("https://"),
            "line over 72 columns: {line:?}"
        );
    }
}

#[test]
fn the_layout_has_its_parts() {
    let (_, _, r, web) = example();
    let html = Rendered::fill(&r.html, TOKEN);
    assert_eq!(r.html.len(), 2, "one unsubscribe hole in the html");
    assert_eq!(r.text.len(), 2, "one unsubscribe hole in the text");
    assert!(html.contains("max-width: 600px"));
    assert!(html.contains("role=\"presentation\""));
    assert!(html.contains("href=\"https://news.example.org/archive/2021-07\""));
    assert!(html.contains("View in browser"));
    assert!(html.contains(&format!("href=\"{URL}\"")));
    assert!(html.contains("display: none"), "hidden preheader");
    for trick in ["font-size: 1px", "opacity: 0", "color: #ffffff; opacity"] {
        assert!(!html.contains(trick), "no invisible-text trick: {trick}");
    }
    assert!(html.contains("xmlns:o=\"urn:schemas-microsoft-com:office:office\""));
    assert!(html.contains("xmlns:v=\"urn:schemas-microsoft-com:vml\""));
    assert!(html.contains("<o:PixelsPerInch>96</o:PixelsPerInch>"));
    assert!(html.contains("mso-line-height-rule: exactly"));
    assert!(html.contains(
        "<meta name=\"format-detection\" content=\"telephone=no, date=no, address=no, email=no\">"
    ));
    assert!(html.contains("<meta name=\"color-scheme\" content=\"light dark\">"));
    assert!(html.contains("@media (prefers-color-scheme: dark)"));
    assert!(
        html.contains("class=\"pad footer\""),
        "the dark rules key on classes"
    );
    assert!(html.contains("07.23.21"));
    assert!(html.contains("El Paso, TX 79901"));
    assert!(!html.contains("<style>.") || html.contains("@media"));
    assert!(
        !web.contains("unsubscribe"),
        "the web version has no personal link"
    );
    assert!(web.contains("Learn more"));
}

/// The class names every `style(...)` call in `src/` asks for, with file and line: `t.style("x")`,
/// `templates.style("x")` and the console's `style(d, "x")`. A call whose class is not a string
/// literal is returned as `None`, so a computed class cannot slip past the check; only a
/// forwarding wrapper's `style(class)` (its parameter, named `class`) is passed over.
fn style_calls(text: &str) -> Vec<(usize, Option<String>)> {
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") || line.contains("fn style") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("style(") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "style(".len()..];
            // `set_style(` and the like are other functions.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let arg = match rest.find(", \"") {
                Some(comma) if !rest[..comma].contains(['"', ')']) => &rest[comma + 2..],
                _ => rest,
            };
            if arg.starts_with("class)") {
                continue;
            }
            let class = arg
                .strip_prefix('"')
                .and_then(|a| a.split_once('"'))
                .map(|(class, _)| class.to_string());
            calls.push((n + 1, class));
        }
    }
    calls
}

#[test]
fn every_style_class_the_code_asks_for_is_in_the_stylesheet() {
    let (cfg, ..) = example();
    let t = Templates::load(Some(&repo().join("templates")), &cfg.newsletter).unwrap();
    let classes: std::collections::HashSet<&str> = t.classes().collect();
    let mut files = Vec::new();
    let mut dirs = vec![repo().join("src")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let (mut used, mut wrong) = (0, Vec::new());
    for file in files {
        let shown = file.strip_prefix(repo()).unwrap().display().to_string();
        for (line, class) in style_calls(&std::fs::read_to_string(&file).unwrap()) {
            match class {
                Some(c) if classes.contains(c.as_str()) => used += 1,
                Some(c) => wrong.push(format!(
                    "{shown}:{line}: `.{c}` is not in templates/email.css"
                )),
                None => wrong.push(format!("{shown}:{line}: a class that is not a literal")),
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The renderer and the readers' pages ask for classes (the console styles its pages by
    // class names in its own stylesheet, so it asks for none).
    assert!(used > 80, "found only {used} style calls");
}

#[test]
fn the_style_scanner_reads_each_form_of_call() {
    let text = "a style=(t.style(\"link\")) b style=(style(&d, \"console-ok\"))\n\
                bar.set_style(x)\n// style(\"commented\")\nstyle(d, other)\nt.style(class)\n";
    assert_eq!(
        style_calls(text),
        [
            (1, Some("link".to_string())),
            (1, Some("console-ok".to_string())),
            (4, None)
        ]
    );
}

#[test]
fn content_text_is_escaped() {
    let w = World::new();
    w.write(
        "content/2021-07/05-x.md",
        "+++\ntitle = \"<b>bold</b> & \\\"q\\\"\"\ndate = 2021-07-08\nlink = \"https://example.org/?a=1&b=<2>\"\n+++\n\n## A < B\n\nx < y & `<code>`\n",
    );
    let cfg = w.config();
    let templates = Templates::builtin(&cfg.newsletter).unwrap();
    let issue = content::load_issue(&w.path("content"), "2021-07".parse().unwrap()).unwrap();
    let r = render::render_email(
        &issue,
        Context::of(&templates, &templates.editions()[0], &cfg.server.public_url),
    );
    let html = Rendered::fill(&r.html, TOKEN);
    assert!(
        html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;q&quot;"),
        "title escaped"
    );
    assert!(html.contains("x &lt; y &amp; "), "paragraph escaped");
    assert!(html.contains("&lt;code&gt;"), "code escaped");
    assert!(!html.contains("<b>bold"));
    assert!(html.contains("A &lt; B"), "label escaped");
}

/// The visible words of every "Learn more" link, in order, tags stripped.
fn learn_more_texts(html: &str) -> Vec<String> {
    html.split("<a class=\"learn-more\"")
        .skip(1)
        .map(|s| {
            let inner = &s[s.find('>').unwrap() + 1..s.find("</a>").unwrap()];
            let mut text = String::new();
            let mut in_tag = false;
            for c in inner.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

/// Every entry's link says which entry it leads to in words a sighted reader scanning the links
/// sees too (WCAG 2.4.4), not only in a label for screen readers.
#[test]
fn every_learn_more_link_names_its_entry_in_words() {
    let (_, issue, r, web) = example();
    let html = Rendered::fill(&r.html, TOKEN);
    for page in [&html, &web] {
        let want: Vec<String> = issue
            .entries
            .iter()
            .map(|e| maud::html! { (format!("Learn more about {}", e.title)) }.into_string())
            .collect();
        assert_eq!(learn_more_texts(page), want);
        assert!(
            !page.contains("aria-label"),
            "the visible words are the name"
        );
    }
}

/// The email of the world's 2021-07 issue with `issue_toml` as its `issue.toml`.
fn render_with_issue_toml(issue_toml: &str) -> Rendered {
    let w = World::new();
    w.write("content/2021-07/issue.toml", issue_toml);
    let cfg = w.config();
    let templates = Templates::builtin(&cfg.newsletter).unwrap();
    let issue = content::load_issue(&w.path("content"), "2021-07".parse().unwrap()).unwrap();
    render::render_email(
        &issue,
        Context::of(&templates, &templates.editions()[0], &cfg.server.public_url),
    )
}

#[test]
fn the_preview_line_comes_from_issue_toml_or_the_intro_cut_between_words() {
    // No `preheader`: the intro, whole when it is short.
    let (cfg, _, r, _) = example();
    assert_eq!(r.preheader, brief::issue::one_line(&cfg.newsletter.intro));
    let html = Rendered::fill(&r.html, TOKEN);
    assert!(
        html.contains("<div class=\"preheader\" lang=\"en\" dir=\"ltr\" style=\"display: none;")
    );
    assert!(html.contains(&format!(">{}&#8199;", r.preheader)));

    // A long intro is cut after a word, with an ellipsis.
    let intro = "Each month this newsletter gathers the events that moved the institutions \
                 Mexico and the United States share: commissions, courts, working groups and \
                 the ministers who meet across the border.";
    let r = render_with_issue_toml(&format!("date = 2021-07-23\nintro = \"{intro}\"\n"));
    let stem = r.preheader.strip_suffix('\u{2026}').expect("an ellipsis");
    assert!(r.preheader.chars().count() <= 140, "{}", r.preheader);
    assert!(intro.starts_with(stem), "{}", r.preheader);
    assert!(
        intro[stem.len()..].starts_with(' '),
        "cut between words: {}",
        r.preheader
    );

    // `preheader` in issue.toml wins, on one line.
    let r = render_with_issue_toml(
        "date = 2021-07-23\npreheader = \"\"\"Water, defense and trade:\n  the month on the border\"\"\"\n",
    );
    assert_eq!(
        r.preheader,
        "Water, defense and trade: the month on the border"
    );
    assert!(Rendered::fill(&r.html, TOKEN)
        .contains(">Water, defense and trade: the month on the border&#8199;"));
}

/// What mail clients strip and screen readers need, beyond what a browser's checker sees: each
/// message and page states its language and direction on `<html>` and again on the wrapper
/// inside `<body>` (clients that drop `<html>` keep it), lays every table out as
/// presentation, has a title and an `alt` on each image; and each message says its language
/// in `Content-Language`.
#[test]
fn every_message_and_page_states_its_language_and_lays_tables_out_as_presentation() {
    let w = World::new();
    let clock = std::sync::Arc::new(brief::clock::SystemClock);
    let app = brief::app::App::new(w.config(), clock).unwrap();
    let ctx = app.render_context();
    let issue = app.load_issue("2021-07".parse().unwrap()).unwrap();
    let link = url::Url::parse(&format!(
        "https://news.example.org/confirm/{}",
        "t".repeat(180)
    ))
    .unwrap();
    let email = render::render_email(&issue, ctx);
    let faces = [
        ("the issue", email.html.concat()),
        ("its web version", render::render_web(&issue, ctx)),
        ("a confirmation", render::confirmation(ctx, &link).0),
        (
            "a staff sign-in",
            render::staff_login(ctx, "Sign in", &link, "15 minutes").0,
        ),
        (
            "a staff report",
            render::staff_report(ctx, "Sent", &["All sent.".into()], "Open", &link).0,
        ),
        (
            "a page",
            render::frame(ctx, "Unsubscribed", maud::html! { p { "Done." } }).into_string(),
        ),
    ];
    for (face, html) in &faces {
        crate::support::assert_none(face, &crate::faces::markup_faults(html, "en"));
    }
    // The long link of a notice breaks anywhere instead of widening the message.
    let (confirmation, _) = render::confirmation(ctx, &link);
    let at = confirmation
        .find(&format!(">{link}<"))
        .expect("the link spelled out");
    let a = &confirmation[confirmation[..at].rfind("<a ").unwrap()..at];
    assert!(a.contains("word-break: break-all"), "{a}");

    let key = app.key().clone();
    let (_, campaign) = app.prepare(&issue, &key, brief::message::Kind::Campaign);
    let (_, test) = app.prepare(&issue, &key, brief::message::Kind::Test { nonce: 1 });
    let (html, text) = render::confirmation(ctx, &link);
    let notice = brief::notices::template(&app, &key, "Confirm".into(), html, text);
    for (kind, template) in [("campaign", campaign), ("test", test), ("notice", notice)] {
        let raw = String::from_utf8(brief::app::App::sample_message(&template)).unwrap();
        let head = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(
            head.lines().any(|l| l == "Content-Language: en"),
            "a {kind} message has no Content-Language:\n{head}"
        );
    }
}
