//! Turns an [`Issue`] into the HTML and plain-text parts of the email, and into the web version.
//!
//! Rendering is pure: no files, no clock, no network. It runs once per campaign; the result
//! keeps a hole ([`HOLE`]) wherever a recipient's token goes (the unsubscribe and language
//! links), so that personalising a
//! message is splicing, not rendering (see `message`). Both parts are built from the same model,
//! the text part never from the HTML.

mod context;
mod forms;
mod html;
mod text;

use crate::issue::Issue;
use crate::lang::Lang;

pub use context::{format_date, Context, HOLE};
pub use forms::{
    confirmation, frame, frame_with, signup_form, staff_login, staff_report, HONEYPOT,
};
pub use text::wrap;

/// The email parts of one issue, rendered once per campaign.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub preheader: String,
    /// The language it is written in (`Content-Language`).
    pub lang: Lang,
    /// The HTML part, split at each reader token hole.
    pub html: Vec<String>,
    /// The text part, split at each reader token hole.
    pub text: Vec<String>,
}

impl Rendered {
    /// One part with the holes filled by a reader's `token` (for previews and tests).
    pub fn fill(parts: &[String], token: &str) -> String {
        parts.join(token)
    }
}

/// The subject line: the issue's own, or "KICKER | NAME | DATE" in the context's language.
pub fn subject(issue: &Issue, ctx: Context<'_>) -> String {
    let n = ctx.newsletter;
    match &issue.subject {
        Some(s) => s.clone(),
        None => format!("{} | {} | {}", n.kicker, n.name, ctx.date(issue.date)),
    }
}

/// Renders the email parts of `issue`.
pub fn render_email(issue: &Issue, ctx: Context<'_>) -> Rendered {
    let issue = scrub(issue);
    let subject = subject(&issue, ctx);
    let preheader = preheader(&issue, ctx);
    let html = html::email(&issue, ctx, &subject, &preheader);
    let text = text::email(&issue, ctx);
    Rendered {
        subject,
        preheader,
        lang: ctx.lang.clone(),
        html: html.split(HOLE).map(str::to_owned).collect(),
        text: text.split(HOLE).map(str::to_owned).collect(),
    }
}

/// Renders the web version of `issue`: the same layout, no personal data, no unsubscribe link.
pub fn render_web(issue: &Issue, ctx: Context<'_>) -> String {
    let issue = scrub(issue);
    let subject = subject(&issue, ctx);
    html::web(&issue, ctx, &subject)
}

/// How many characters of the intro the preview line takes at most (mail clients show 40 to
/// 140).
const PREHEADER_MAX: usize = 140;

/// The preview line: `issue.toml`'s `preheader`, else the catalogue's `preheader`, else the
/// intro shortened at a word boundary, else the first entry's title.
fn preheader(issue: &Issue, ctx: Context<'_>) -> String {
    let p = &ctx.words.get("preheader");
    let mut out = if let Some(p) = &issue.preheader {
        p.clone()
    } else if !p.trim().is_empty() {
        crate::issue::one_line(p)
    } else {
        let intro = issue.intro.as_deref().unwrap_or(&ctx.newsletter.intro);
        shorten(&crate::issue::one_line(intro), PREHEADER_MAX)
    };
    if out.is_empty() {
        out = issue
            .entries
            .first()
            .map(|e| e.title.clone())
            .unwrap_or_default();
    }
    out
}

/// `s` cut to at most `max` characters at a word boundary, with an ellipsis when cut (a single
/// word longer than `max` is cut inside).
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    // Room for the ellipsis.
    let head: String = s.chars().take(max - 1).collect();
    let cut = match s[head.len()..].starts_with(' ') {
        true => head.as_str(),
        false => head.rsplit_once(' ').map_or(head.as_str(), |(w, _)| w),
    };
    let cut = cut.trim_end_matches(|c: char| c == ' ' || c.is_ascii_punctuation());
    format!("{cut}\u{2026}")
}

/// A copy of the issue with NUL removed from every free text, so no content can forge a hole.
fn scrub(issue: &Issue) -> Issue {
    use crate::issue::{Block, Body, Inline};
    fn inl(v: &mut [Inline]) {
        for i in v {
            match i {
                Inline::Text(t) | Inline::Code(t) => t.retain(|c| c != '\0'),
                Inline::Strong(c) | Inline::Emphasis(c) | Inline::Link { children: c, .. } => {
                    inl(c)
                }
                Inline::LineBreak => {}
            }
        }
    }
    let mut issue = issue.clone();
    if let Some(s) = &mut issue.subject {
        s.retain(|c| c != '\0');
    }
    for s in [&mut issue.intro, &mut issue.preheader]
        .into_iter()
        .flatten()
    {
        s.retain(|c| c != '\0');
    }
    for e in &mut issue.entries {
        e.title.retain(|c| c != '\0');
        for s in &mut e.sections {
            if let Some(l) = &mut s.label {
                l.retain(|c| c != '\0');
            }
            if let Body::Blocks(blocks) = &mut s.body {
                for b in blocks {
                    match b {
                        Block::Paragraph(p) => inl(p),
                        Block::List(items) => items.iter_mut().for_each(|i| inl(i)),
                    }
                }
            }
        }
    }
    issue
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn a_long_preview_line_is_cut_between_words() {
        assert_eq!(shorten("short enough", 20), "short enough");
        assert_eq!(shorten("one two three four", 12), "one two\u{2026}");
        assert_eq!(shorten("one two, three", 10), "one two\u{2026}");
        assert_eq!(shorten("one two three", 8), "one two\u{2026}");
        assert_eq!(shorten("abcdefghij", 5), "abcd\u{2026}");
        assert_eq!(shorten("áé íó úñ", 6), "áé íó\u{2026}");
        let long = shorten(&"word ".repeat(60), 140);
        assert!(
            long.chars().count() <= 140 && long.ends_with("word\u{2026}"),
            "{long}"
        );
    }
}
