//! The HTML layout, written with maud: tables, a 600px column and inline styles, which is what
//! mail clients (Outlook, Gmail, Apple Mail) render alike. All text goes through maud's escaping;
//! the only pre-escaped HTML is our own fixed markup and feed HTML that went through the sanitizer.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::context::Context;
use crate::issue::{Block, Body, EntrySource, Inline, Issue, Section};

/// Outlook for Windows: allow PNG images and lay out at 96 dpi, so sizes in pixels stay sizes
/// in pixels on high-resolution screens.
const MSO_SETTINGS: &str = "<!--[if mso]><xml><o:OfficeDocumentSettings><o:AllowPNG/>\
<o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml><![endif]-->";

/// Keeps iOS and Android from turning dates, numbers and addresses into links of their own
/// colour (the postal address in the footer, the dates of entries).
pub(super) const FORMAT_DETECTION: &str = "telephone=no, date=no, address=no, email=no";

pub(super) fn email(issue: &Issue, ctx: Context<'_>, subject: &str, preheader: &str) -> String {
    let t = ctx.templates;
    let w = ctx.words;
    // "View in browser", then a link to each other language, in that language: it leads to
    // the page that switches this reader's language.
    let top = html! {
        tr { td.pad.topbar style=(t.style("topbar")) {
            a.topbar-link style=(t.style("topbar-link")) href=(ctx.archive_url(issue).as_str()) { (w.get("view-in-browser")) }
            @for other in ctx.other_editions() {
                " \u{00b7} "
                a.topbar-link style=(t.style("topbar-link")) lang=(other.lang) hreflang=(other.lang)
                    href=(ctx.switch_link(&other.lang)) { (other.words.get("read-in-language")) }
            }
        } }
    };
    let footer = html! {
        tr { td.pad.footer style=(t.style("footer")) {
            p.footer-org style=(t.style("footer-org")) { (ctx.newsletter.organization) }
            p.footer-text style=(t.style("footer-text")) { (lines(&ctx.newsletter.postal_address)) }
            p.footer-text style=(t.style("footer-text")) { (w.get("why")) }
            p.footer-text style=(t.style("footer-text")) {
                a.footer-link style=(t.style("footer-link")) href=(ctx.reader_link("unsubscribe")) { (w.get("unsubscribe")) }
                @let note = w.get("unsubscribe-note");
                @if !note.is_empty() { " " (note) }
            }
        } }
    };
    page(issue, ctx, subject, Some(preheader), html! {}, top, footer).into_string()
}

pub(super) fn web(issue: &Issue, ctx: Context<'_>, subject: &str) -> String {
    let t = ctx.templates;
    // Each language's web version names the others (`hreflang`), for search engines in the
    // head and for people at the top.
    let alternates = html! {
        @for e in ctx.templates.editions() {
            link rel="alternate" hreflang=(e.lang) href=(ctx.edition_url(issue, &e.lang).as_str());
        }
    };
    let top = html! {
        @if ctx.other_editions().next().is_some() {
            tr { td.pad.topbar style=(t.style("topbar")) {
                @for (i, other) in ctx.other_editions().enumerate() {
                    @if i > 0 { " \u{00b7} " }
                    a.topbar-link style=(t.style("topbar-link")) lang=(other.lang) hreflang=(other.lang)
                        href=(ctx.edition_url(issue, &other.lang).as_str()) { (other.words.get("language-name")) }
                }
            } }
        }
    };
    let footer = html! {
        tr { td.pad.footer style=(t.style("footer")) {
            p.footer-org style=(t.style("footer-org")) { (ctx.newsletter.organization) }
            p.footer-text style=(t.style("footer-text")) { (lines(&ctx.newsletter.postal_address)) }
            p.footer-text style=(t.style("footer-text")) { (ctx.words.get("archive-note")) }
        } }
    };
    page(issue, ctx, subject, None, alternates, top, footer).into_string()
}

fn page(
    issue: &Issue,
    ctx: Context<'_>,
    subject: &str,
    preheader: Option<&str>,
    head: Markup,
    top: Markup,
    footer: Markup,
) -> Markup {
    let t = ctx.templates;
    let n = ctx.newsletter;
    html! {
        (DOCTYPE)
        html lang=(ctx.lang) dir=(ctx.dir()) xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="x-apple-disable-message-reformatting";
                meta name="format-detection" content=(FORMAT_DETECTION);
                meta name="color-scheme" content="light dark";
                meta name="supported-color-schemes" content="light dark";
                title { (subject) }
                (PreEscaped(MSO_SETTINGS))
                style { (PreEscaped(t.head_css())) }
                (head)
            }
            body.body style=(t.style("body")) {
                @if let Some(p) = preheader {
                    // Preview text, hidden by the stylesheet's `.preheader` rule; the padding keeps
                    // clients from pulling body text into the preview after it.
                    div.preheader lang=(ctx.lang) dir=(ctx.dir()) style=(t.style("preheader")) {
                        (p) (PreEscaped("&#8199;&#847;".repeat(60)))
                    }
                }
                table.outer role="presentation" lang=(ctx.lang) dir=(ctx.dir()) width="100%" cellpadding="0" cellspacing="0" border="0" style=(t.style("outer")) {
                    tr { td align="center" {
                        (PreEscaped("<!--[if mso]><table role=\"presentation\" width=\"600\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr><td><![endif]-->"))
                        table.container role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style=(t.style("container")) {
                            (top)
                            tr { td.pad.masthead style=(t.style("masthead")) {
                                p.kicker style=(t.style("kicker")) { (n.kicker) }
                                h1.title style=(t.style("title")) { (n.name) }
                                p.issue-date style=(t.style("issue-date")) { (ctx.date(issue.date)) }
                            } }
                            tr { td.pad.intro style=(t.style("intro")) {
                                @for para in super::text::intro_paragraphs(issue, ctx) {
                                    p.intro-text style=(t.style("intro-text")) { (para) }
                                }
                            } }
                            @for e in &issue.entries {
                                tr { td.pad.entry style=(t.style("entry")) {
                                    h2.entry-title style=(t.style("entry-title")) {
                                        span.entry-number style=(t.style("entry-number")) { (e.number) ")" } " " (e.title)
                                    }
                                    p.entry-meta style=(t.style("entry-meta")) {
                                        (ctx.date(e.date))
                                        " \u{00b7} "
                                        // The link names its entry in words everyone sees (WCAG
                                        // 2.4.4): "Learn more" stands out, "about <title>" is lighter.
                                        a.learn-more style=(t.style("learn-more")) href=(e.link.as_str()) {
                                            (ctx.words.get("learn-more")) " "
                                            span.learn-more-about style=(t.style("learn-more-about")) {
                                                (ctx.words.with_text("learn-more-about", "title", &e.title))
                                            }
                                        }
                                        @if let EntrySource::Feed { label: Some(l), .. } = &e.source {
                                            " \u{00b7} " span.source style=(t.style("source")) { (ctx.words.with_text("via", "source", l)) }
                                        }
                                    }
                                    @for s in &e.sections { (section(s, ctx)) }
                                } }
                            }
                            (footer)
                        }
                        (PreEscaped("<!--[if mso]></td></tr></table><![endif]-->"))
                    } }
                }
            }
        }
    }
}

fn section(s: &Section, ctx: Context<'_>) -> Markup {
    let t = ctx.templates;
    let label = |m: Markup| {
        html! {
            @if let Some(l) = &s.label { strong.label style=(t.style("label")) { (l) } " \u{2013} " }
            (m)
        }
    };
    match &s.body {
        Body::Blocks(blocks) => html! {
            @for (i, b) in blocks.iter().enumerate() {
                @match b {
                    Block::Paragraph(p) => {
                        p.paragraph style=(t.style("paragraph")) {
                            @if i == 0 { (label(inlines(p, ctx))) } @else { (inlines(p, ctx)) }
                        }
                    }
                    Block::List(items) => {
                        @if i == 0 && s.label.is_some() {
                            p.paragraph style=(t.style("paragraph")) { (label(html! {})) }
                        }
                        ul.list style=(t.style("list")) {
                            @for item in items { li { (inlines(item, ctx)) } }
                        }
                    }
                }
            }
        },
        Body::Sanitized(h) => html! {
            @if let Some(l) = &s.label {
                p.paragraph style=(t.style("paragraph")) { strong.label style=(t.style("label")) { (l) } }
            }
            (PreEscaped(style_sanitized(h.html(), ctx)))
        },
    }
}

fn inlines(v: &[Inline], ctx: Context<'_>) -> Markup {
    let t = ctx.templates;
    html! {
        @for i in v {
            @match i {
                Inline::Text(s) => (s),
                Inline::Code(s) => code style=(t.style("code")) { (s) },
                Inline::Strong(c) => strong { (inlines(c, ctx)) },
                Inline::Emphasis(c) => em { (inlines(c, ctx)) },
                Inline::Link { url, children } => a.link style=(t.style("link")) href=(url.as_str()) { (inlines(children, ctx)) },
                Inline::LineBreak => br;,
            }
        }
    }
}

fn lines(text: &str) -> Markup {
    html! {
        @for (i, l) in text.lines().enumerate() {
            @if i > 0 { br; }
            (l)
        }
    }
}

/// Gives the few tags the feed sanitizer lets through the same inline styles as our own. The
/// sanitizer writes these tags without attributes (links start `<a href=`), so plain replacement is
/// exact; an attribute value cannot contain a raw `<`.
fn style_sanitized(html: &str, ctx: Context<'_>) -> String {
    let t = ctx.templates;
    html.replace(
        "<p>",
        &format!("<p class=\"paragraph\" style=\"{}\">", t.style("paragraph")),
    )
    .replace(
        "<ul>",
        &format!("<ul class=\"list\" style=\"{}\">", t.style("list")),
    )
    .replace(
        "<ol>",
        &format!("<ol class=\"list\" style=\"{}\">", t.style("list")),
    )
    .replace(
        "<a href=",
        &format!("<a class=\"link\" style=\"{}\" href=", t.style("link")),
    )
}
