//! Feed HTML made safe for a subscriber's mail client, and its plain-text rendering.
//!
//! [`sanitize`] is the only door from a feed's markup to a message: it keeps a small allow-list
//! (paragraphs, links, emphasis, lists, line breaks) and drops everything else. [`to_text`] then
//! walks that cleaned HTML, which ammonia serializes in a regular form, to write the text part.

use std::collections::{HashMap, HashSet};

use url::Url;

/// The tags a feed body may keep; anything else is unwrapped (its text stays) or, for the
/// tags in [`DROP_WITH_CONTENT`], removed with its content.
const ALLOWED_TAGS: [&str; 10] = ["p", "a", "em", "strong", "i", "b", "ul", "ol", "li", "br"];

/// Tags whose content is code, styling or embedded documents, never prose to show.
const DROP_WITH_CONTENT: [&str; 12] = [
    "script", "style", "iframe", "noscript", "template", "object", "embed", "svg", "math",
    "textarea", "select", "title",
];

/// Cleans feed HTML to the allow-list. Relative link targets are resolved against `base` (the
/// item's page) so they still work from a mailbox; only http, https and mailto targets survive,
/// and every link gets `rel="noopener noreferrer"` (the archive page must not leak to partners
/// nor be reachable from their pages).
pub(crate) fn sanitize(html: &str, base: &Url) -> String {
    // Control characters have no business in prose and could confuse later text handling.
    let html: String = html
        .chars()
        .filter(|&c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
        .collect();
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(HashSet::from(ALLOWED_TAGS))
        .clean_content_tags(HashSet::from(DROP_WITH_CONTENT))
        .tag_attributes(HashMap::from([("a", HashSet::from(["href"]))]))
        .generic_attributes(HashSet::new())
        .generic_attribute_prefixes(HashSet::new())
        .tag_attribute_values(HashMap::new())
        .set_tag_attribute_values(HashMap::new())
        .allowed_classes(HashMap::new())
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true)
        .id_prefix(None);
    builder.clean(&html).to_string().trim().to_string()
}

/// Turns plain text (a feed's `text/plain` body) into HTML paragraphs: blank lines separate
/// paragraphs, single line breaks stay line breaks.
pub(crate) fn text_to_html(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::new();
    for para in normalized.split("\n\n") {
        let lines: Vec<&str> = para
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            continue;
        }
        out.push_str("<p>");
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                out.push_str("<br>");
            }
            escape_into(line, &mut out);
        }
        out.push_str("</p>");
    }
    out
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The plain-text rendering of HTML cleaned by [`sanitize`]: paragraphs separated by blank
/// lines, list items as `- ` (numbered in ordered lists), nested lists indented, links as
/// `text (url)`.
///
/// This is not a general HTML parser: it relies on ammonia's output being well formed, with
/// only the allow-listed tags, double-quoted attributes and entities only for `& < > " nbsp`.
pub(crate) fn to_text(cleaned: &str) -> String {
    let mut w = TextWriter::default();
    let mut rest = cleaned;
    while !rest.is_empty() {
        if let Some(after_lt) = rest.strip_prefix('<') {
            let Some(end) = tag_end(after_lt) else {
                // Unterminated tag: cannot come from ammonia; treat the rest as text.
                w.text(&decode_entities(rest));
                break;
            };
            w.tag(&after_lt[..end]);
            rest = &after_lt[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            w.text(&decode_entities(&rest[..end]));
            rest = &rest[end..];
        }
    }
    w.finish()
}

/// The index of the `>` that closes a tag, skipping `>` inside quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// The value of `name="..."` in a tag's inside (`a href="..." rel="..."`), entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    while let Some(pos) = rest.find(name) {
        let before_ok = rest[..pos].ends_with(|c: char| c.is_ascii_whitespace());
        let after = &rest[pos + name.len()..];
        if before_ok {
            if let Some(value) = after.strip_prefix("=\"") {
                let end = value.find('"')?;
                return Some(decode_entities(&value[..end]));
            }
        }
        rest = after;
    }
    None
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &after[..semi];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The kind of an open list and, for ordered lists, the next item's number.
enum List {
    Unordered,
    Ordered(u32),
}

#[derive(Default)]
struct TextWriter {
    /// Finished blocks (paragraphs and whole top-level lists), joined by blank lines at the end.
    blocks: Vec<String>,
    /// Finished lines of the top-level list being written.
    list_lines: Vec<String>,
    /// The line being written.
    line: String,
    /// The open lists, innermost last.
    lists: Vec<List>,
    /// A list item's marker, written before its first visible character.
    pending_marker: Option<String>,
    /// Whitespace seen since the last visible character; folded into one space.
    pending_space: bool,
    /// Open links: their target and where their text starts in `line`.
    links: Vec<(Option<String>, usize)>,
}

impl TextWriter {
    fn tag(&mut self, inside: &str) {
        let (closing, inside) = match inside.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, inside),
        };
        let name_end = inside
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(inside.len());
        let name = inside[..name_end].to_ascii_lowercase();
        match (name.as_str(), closing) {
            ("p", _) => self.end_line(),
            ("br", false) => self.line_break(),
            ("ul", false) => self.open_list(List::Unordered),
            ("ol", false) => self.open_list(List::Ordered(1)),
            ("ul" | "ol", true) => self.close_list(),
            ("li", false) => self.open_item(),
            ("li", true) => self.end_line(),
            ("a", false) => {
                self.begin_visible();
                let href = attribute(inside, "href");
                self.links.push((href, self.line.len()));
            }
            ("a", true) => self.close_link(),
            // Emphasis has no plain-text form worth the noise.
            _ => {}
        }
    }

    fn text(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() || c.is_control() {
                self.pending_space = true;
            } else {
                self.begin_visible();
                self.line.push(c);
            }
        }
    }

    /// Writes what must precede the next visible character: the list marker or the
    /// indentation of a continued list item, or one space for folded whitespace.
    fn begin_visible(&mut self) {
        if self.at_line_start() {
            if let Some(marker) = self.pending_marker.take() {
                self.line.push_str(&marker);
            } else if !self.lists.is_empty() {
                self.line.push_str(&"  ".repeat(self.lists.len()));
            }
        } else if self.pending_space {
            self.line.push(' ');
        }
        self.pending_space = false;
    }

    fn at_line_start(&self) -> bool {
        self.line.is_empty() || self.line.ends_with('\n')
    }

    fn line_break(&mut self) {
        let trimmed = self.line.trim_end_matches(' ').len();
        self.line.truncate(trimmed);
        if !self.line.is_empty() {
            self.line.push('\n');
        }
        self.pending_space = false;
    }

    fn end_line(&mut self) {
        let line = self.line.trim_end();
        if !line.is_empty() {
            if self.lists.is_empty() {
                self.blocks.push(line.to_string());
            } else {
                self.list_lines.push(line.to_string());
            }
        }
        self.line.clear();
        self.pending_space = false;
    }

    fn open_list(&mut self, kind: List) {
        self.end_line();
        self.lists.push(kind);
    }

    fn close_list(&mut self) {
        self.end_line();
        self.pending_marker = None;
        self.lists.pop();
        if self.lists.is_empty() && !self.list_lines.is_empty() {
            let list = std::mem::take(&mut self.list_lines).join("\n");
            self.blocks.push(list);
        }
    }

    fn open_item(&mut self) {
        self.end_line();
        let depth = self.lists.len().saturating_sub(1);
        let marker = match self.lists.last_mut() {
            Some(List::Ordered(n)) => {
                let m = format!("{n}. ");
                *n += 1;
                m
            }
            Some(List::Unordered) | None => "- ".to_string(),
        };
        self.pending_marker = Some(format!("{}{marker}", "  ".repeat(depth)));
    }

    fn close_link(&mut self) {
        let Some((href, start)) = self.links.pop() else {
            return;
        };
        let Some(href) = href else { return };
        let start = start.min(self.line.len());
        let shown = href.strip_prefix("mailto:").unwrap_or(&href).to_string();
        let label = self.line[start..].trim();
        if label.is_empty() {
            self.begin_visible();
            self.line.push_str(&shown);
        } else if label != shown && label != href {
            self.line.push_str(" (");
            self.line.push_str(&shown);
            self.line.push(')');
        }
    }

    fn finish(mut self) -> String {
        // Close whatever the input left open so no text is lost.
        while !self.lists.is_empty() {
            self.close_list();
        }
        self.end_line();
        self.blocks.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://partner.example.org/news/item").unwrap()
    }

    #[test]
    fn hostile_markup_loses_scripts_styles_handlers_and_javascript_urls() {
        let dirty = r#"<p style="color:red" onclick="steal()">Hi <script>alert(1)</script>
            <img src="x" onerror="alert(2)"><a href="javascript:alert(3)">click</a>
            <a href="JaVaScRiPt:alert(4)">again</a><style>p{}</style>
            <iframe src="https://evil.example/">frame text</iframe>
            <a href="/agenda" target="_blank" onmouseover="x()">agenda</a>
            <a href="mailto:info@example.org">write</a><a href="ftp://x/">ftp</a>
            <span class="c" id="i">kept text</span><!-- comment --></p>"#;
        let clean = sanitize(dirty, &base());
        for banned in [
            "script",
            "alert",
            "onerror",
            "onclick",
            "onmouseover",
            "style",
            "javascript",
            "<img",
            "iframe",
            "frame text",
            "target",
            "class",
            "<span",
            "comment",
            "ftp:",
        ] {
            assert!(
                !clean.to_ascii_lowercase().contains(banned),
                "{banned} in {clean}"
            );
        }
        assert!(
            clean.contains(r#"<a href="https://partner.example.org/agenda" rel="noopener noreferrer">agenda</a>"#),
            "{clean}"
        );
        assert!(
            clean.contains(r#"href="mailto:info@example.org""#),
            "{clean}"
        );
        assert!(clean.contains("kept text"), "{clean}");
    }

    #[test]
    fn control_characters_are_dropped_before_cleaning() {
        assert_eq!(sanitize("<p>a\u{7}b\u{0}c</p>", &base()), "<p>abc</p>");
    }

    #[test]
    fn text_rendering_separates_paragraphs_and_shows_lists_and_links() {
        let html = sanitize(
            "<p>First   paragraph\n with <strong>bold</strong> and a \
             <a href=\"https://example.org/x\">link</a>.</p>\
             <p>Second<br>line two</p>\
             <ul><li>one</li><li>two <a href=\"https://example.org/\">https://example.org/</a></li>\
             <li>three<ol><li>a</li><li>b</li></ol></li></ul>\
             tail text &amp; more <a href=\"mailto:info@example.org\">write to us</a>",
            &base(),
        );
        assert_eq!(
            to_text(&html),
            "First paragraph with bold and a link (https://example.org/x).\n\
             \n\
             Second\nline two\n\
             \n\
             - one\n\
             - two https://example.org/\n\
             - three\n  1. a\n  2. b\n\
             \n\
             tail text & more write to us (info@example.org)"
        );
    }

    #[test]
    fn text_rendering_decodes_entities_and_keeps_quotes_in_links() {
        let html = sanitize(
            r#"<p>5 &lt; 6 &gt; 4 "quoted" &#233;t&#xE9; <a href="https://example.org/?a=1&amp;b=%3E">q</a></p>"#,
            &base(),
        );
        assert_eq!(
            to_text(&html),
            "5 < 6 > 4 \"quoted\" été q (https://example.org/?a=1&b=%3E)"
        );
    }

    #[test]
    fn link_without_text_shows_its_target_and_removed_href_shows_only_text() {
        let html = sanitize(
            r#"<p>see <a href="https://example.org/a"></a> or <a href="javascript:x()">this</a></p>"#,
            &base(),
        );
        assert_eq!(to_text(&html), "see https://example.org/a or this");
    }

    #[test]
    fn plain_text_becomes_escaped_paragraphs() {
        let html = text_to_html("a <b> & c\r\nsecond line\r\n\r\n\r\nnext");
        assert_eq!(html, "<p>a &lt;b&gt; &amp; c<br>second line</p><p>next</p>");
        assert_eq!(
            to_text(&sanitize(&html, &base())),
            "a <b> & c\nsecond line\n\nnext"
        );
    }
}
