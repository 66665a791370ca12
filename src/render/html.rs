//! The HTML layout, written with maud: tables, a 600px column and inline styles, which is what
//! mail clients (Outlook, Gmail, Apple Mail) render alike. All text goes through maud's escaping;
//! the only pre-escaped HTML is our own fixed markup and feed HTML that went through the sanitizer.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{Context, HOLE};
use crate::issue::{Block, Body, EntrySource, Inline, Issue, Section};

/// Small-screen rules; mail clients that honour `<style>` use them, the others get the inline
/// 600px layout that still scales down through `max-width: 100%`.
const RESPONSIVE: &str = "@media only screen and (max-width: 620px) { \
.container { width: 100% !important; } \
.pad { padding-left: 18px !important; padding-right: 18px !important; } }";

pub(super) fn email(issue: &Issue, ctx: Context<'_>, subject: &str, preheader: &str) -> String {
    let t = ctx.templates;
    let s = &t.snippets;
    let top = html! {
        tr { td.pad style=(t.style("topbar")) {
            a style=(t.style("topbar-link")) href=(ctx.archive_url(issue).as_str()) { (s.view_in_browser) }
        } }
    };
    let footer = html! {
        tr { td.pad style=(t.style("footer")) {
            p style=(t.style("footer-org")) { (ctx.newsletter.organization) }
            p style=(t.style("footer-text")) { (lines(&ctx.newsletter.postal_address)) }
            p style=(t.style("footer-text")) { (s.why) }
            p style=(t.style("footer-text")) {
                a style=(t.style("footer-link")) href=(PreEscaped(HOLE)) { (s.unsubscribe) }
                @if !s.unsubscribe_note.is_empty() { " " (s.unsubscribe_note) }
            }
        } }
    };
    page(issue, ctx, subject, Some(preheader), top, footer).into_string()
}

pub(super) fn web(issue: &Issue, ctx: Context<'_>, subject: &str) -> String {
    let t = ctx.templates;
    let footer = html! {
        tr { td.pad style=(t.style("footer")) {
            p style=(t.style("footer-org")) { (ctx.newsletter.organization) }
            p style=(t.style("footer-text")) { (lines(&ctx.newsletter.postal_address)) }
            p style=(t.style("footer-text")) { (t.snippets.archive_note) }
        } }
    };
    page(issue, ctx, subject, None, html! {}, footer).into_string()
}

fn page(
    issue: &Issue,
    ctx: Context<'_>,
    subject: &str,
    preheader: Option<&str>,
    top: Markup,
    footer: Markup,
) -> Markup {
    let t = ctx.templates;
    let n = ctx.newsletter;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="x-apple-disable-message-reformatting";
                meta name="color-scheme" content="light";
                meta name="supported-color-schemes" content="light";
                title { (subject) }
                style { (PreEscaped(RESPONSIVE)) }
            }
            body style=(t.style("body")) {
                @if let Some(p) = preheader {
                    // Hidden preview text; the padding keeps clients from pulling body text into it.
                    div style="display: none; max-height: 0; overflow: hidden; mso-hide: all; font-size: 1px; line-height: 1px; color: #ffffff; opacity: 0;" {
                        (p) (PreEscaped("&#8199;&#847;".repeat(60)))
                    }
                }
                table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style=(t.style("outer")) {
                    tr { td align="center" {
                        (PreEscaped("<!--[if mso]><table role=\"presentation\" width=\"600\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr><td><![endif]-->"))
                        table.container role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style=(t.style("container")) {
                            (top)
                            tr { td.pad style=(t.style("masthead")) {
                                p style=(t.style("kicker")) { (n.kicker) }
                                h1 style=(t.style("title")) { (n.name) }
                                p style=(t.style("issue-date")) { (issue.date.format(&n.date_format).to_string()) }
                            } }
                            tr { td.pad style=(t.style("intro")) {
                                @for para in super::text::intro_paragraphs(issue, ctx) {
                                    p style=(t.style("intro-text")) { (para) }
                                }
                            } }
                            @for e in &issue.entries {
                                tr { td.pad style=(t.style("entry")) {
                                    h2 style=(t.style("entry-title")) {
                                        span style=(t.style("entry-number")) { (e.number) ")" } " " (e.title)
                                    }
                                    p style=(t.style("entry-meta")) {
                                        (e.date.format(&n.date_format).to_string())
                                        " \u{00b7} "
                                        a style=(t.style("learn-more")) href=(e.link.as_str()) { (t.snippets.learn_more) }
                                        @if let EntrySource::Feed { label: Some(l), .. } = &e.source {
                                            " \u{00b7} " span style=(t.style("source")) { "via " (l) }
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
            @if let Some(l) = &s.label { strong style=(t.style("label")) { (l) } " \u{2013} " }
            (m)
        }
    };
    match &s.body {
        Body::Blocks(blocks) => html! {
            @for (i, b) in blocks.iter().enumerate() {
                @match b {
                    Block::Paragraph(p) => {
                        p style=(t.style("paragraph")) {
                            @if i == 0 { (label(inlines(p, ctx))) } @else { (inlines(p, ctx)) }
                        }
                    }
                    Block::List(items) => {
                        @if i == 0 && s.label.is_some() {
                            p style=(t.style("paragraph")) { (label(html! {})) }
                        }
                        ul style=(t.style("list")) {
                            @for item in items { li { (inlines(item, ctx)) } }
                        }
                    }
                }
            }
        },
        Body::Sanitized(h) => html! {
            @if let Some(l) = &s.label {
                p style=(t.style("paragraph")) { strong style=(t.style("label")) { (l) } }
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
                Inline::Link { url, children } => a style=(t.style("link")) href=(url.as_str()) { (inlines(children, ctx)) },
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
    html.replace("<p>", &format!("<p style=\"{}\">", t.style("paragraph")))
        .replace("<ul>", &format!("<ul style=\"{}\">", t.style("list")))
        .replace("<ol>", &format!("<ol style=\"{}\">", t.style("list")))
        .replace(
            "<a href=",
            &format!("<a style=\"{}\" href=", t.style("link")),
        )
}
