//! The plain-text part: the same model as the HTML, wrapped for 72 columns.

use std::fmt::Write;

use super::context::Context;
use crate::issue::{Block, Body, Inline, Issue};

/// The width plain text is wrapped to.
pub const WIDTH: usize = 72;

pub(super) fn email(issue: &Issue, ctx: Context<'_>) -> String {
    let n = ctx.newsletter;
    let w = ctx.words;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}",
        w.get("view-in-browser"),
        ctx.archive_url(issue)
    );
    for other in ctx.other_editions() {
        let _ = writeln!(
            out,
            "{}: {}",
            other.words.get("read-in-language"),
            ctx.switch_link(&other.lang)
        );
    }
    out.push('\n');
    let masthead = format!("{} | {} | {}", n.kicker, n.name, ctx.date(issue.date));
    out.push_str(&wrap(&masthead, WIDTH, ""));
    out.push_str(&"=".repeat(masthead.chars().count().min(WIDTH)));
    out.push_str("\n\n");
    for para in intro_paragraphs(issue, ctx) {
        out.push_str(&wrap(para, WIDTH, ""));
        out.push('\n');
    }
    for e in &issue.entries {
        let date = ctx.date(e.date);
        out.push_str(&wrap(
            &format!("{}) {} ({date})", e.number, e.title),
            WIDTH,
            "",
        ));
        let _ = writeln!(out, "{}: {}", w.get("learn-more"), e.link);
        if let crate::issue::EntrySource::Feed { label: Some(l), .. } = &e.source {
            let _ = writeln!(out, "{}", w.with_text("via", "source", l));
        }
        out.push('\n');
        for sec in &e.sections {
            let lead = sec
                .label
                .as_ref()
                .map(|l| format!("{l} - "))
                .unwrap_or_default();
            match &sec.body {
                Body::Blocks(blocks) => {
                    let mut lead = Some(lead);
                    for b in blocks {
                        match b {
                            Block::Paragraph(p) => {
                                let t = format!(
                                    "{}{}",
                                    lead.take().unwrap_or_default(),
                                    inline_text(p)
                                );
                                out.push_str(&wrap(&t, WIDTH, ""));
                            }
                            Block::List(items) => {
                                if let Some(l) = lead.take().filter(|l| !l.is_empty()) {
                                    out.push_str(&wrap(l.trim_end_matches(" - "), WIDTH, ""));
                                }
                                for item in items {
                                    out.push_str(&wrap(
                                        &format!("- {}", inline_text(item)),
                                        WIDTH,
                                        "  ",
                                    ));
                                }
                            }
                        }
                        out.push('\n');
                    }
                }
                Body::Sanitized(h) => {
                    let mut first = true;
                    for para in h.text().split("\n\n").filter(|p| !p.trim().is_empty()) {
                        let t = if first {
                            format!("{lead}{}", para.trim())
                        } else {
                            para.trim().to_string()
                        };
                        first = false;
                        for line in t.lines() {
                            let indent = if line.starts_with("- ") { "  " } else { "" };
                            out.push_str(&wrap(line, WIDTH, indent));
                        }
                        out.push('\n');
                    }
                }
            }
        }
    }
    out.push_str(&"-".repeat(WIDTH));
    out.push('\n');
    out.push_str(&wrap(&n.organization, WIDTH, ""));
    for line in n.postal_address.lines() {
        out.push_str(&wrap(line, WIDTH, ""));
    }
    out.push('\n');
    out.push_str(&wrap(&w.get("why"), WIDTH, ""));
    let _ = writeln!(
        out,
        "{}: {}",
        w.get("unsubscribe"),
        ctx.reader_link("unsubscribe")
    );
    out
}

pub(super) fn intro_paragraphs<'a>(issue: &'a Issue, ctx: Context<'a>) -> Vec<&'a str> {
    issue
        .intro
        .as_deref()
        .unwrap_or(&ctx.newsletter.intro)
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Inline markup as plain text: links become "text (url)" unless the text is the URL.
fn inline_text(inlines: &[Inline]) -> String {
    let mut out = String::new();
    for i in inlines {
        match i {
            Inline::Text(t) | Inline::Code(t) => out.push_str(t),
            Inline::Strong(c) | Inline::Emphasis(c) => out.push_str(&inline_text(c)),
            Inline::Link { url, children } => {
                let label = inline_text(children);
                let target = url.as_str().strip_prefix("mailto:").unwrap_or(url.as_str());
                if label.trim() == target || label.trim() == url.as_str() {
                    out.push_str(url.as_str());
                } else {
                    let _ = write!(out, "{label} ({url})");
                }
            }
            Inline::LineBreak => out.push('\n'),
        }
    }
    out
}

/// Wraps `text` at `width` columns (counted in characters), each line ending in `\n`. Lines after
/// the first start with `indent`. Words longer than a line (URLs) stay whole on their own line.
/// Existing line breaks are kept.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width + 1);
    for (n, source_line) in text.split('\n').enumerate() {
        let mut col = 0;
        if n > 0 {
            out.push_str(indent);
            col = indent.chars().count();
        }
        let start_col = col;
        for word in source_line.split(' ').filter(|w| !w.is_empty()) {
            let len = word.chars().count();
            if col > start_col && col + 1 + len > width {
                out.push('\n');
                out.push_str(indent);
                col = indent.chars().count();
            } else if col > start_col {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += len;
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_lines_within_width_and_long_words_whole() {
        let long = "https://example.org/".to_string() + &"x".repeat(80);
        let t = format!(
            "one two three four five six seven eight nine ten eleven twelve thirteen {long} end"
        );
        let w = wrap(&t, 20, "  ");
        for line in w.lines() {
            assert!(
                line.chars().count() <= 20 || line.trim() == long,
                "{line:?}"
            );
        }
        assert!(w.contains(&long));
        assert!(w.lines().skip(1).all(|l| l.starts_with("  ")));
        assert_eq!(wrap("a\nb", 72, ""), "a\nb\n");
    }
}
