//! Turns an entry's Markdown body into labelled sections of paragraphs, lists and inline text.
//!
//! Only what an email can carry safely is accepted: `## Label` headings, paragraphs, lists, emphasis,
//! inline code and links. Raw HTML, images, tables, strikethrough and other headings are
//! reported as problems rather than dropped or misprinted, so nothing a writer typed silently
//! disappears or changes meaning.

use std::path::Path;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use url::Url;

use super::values::with_https;
use crate::error::Problem;
use crate::issue::{one_line, Block, Body, Inline, Section};

/// Parses `body` (which starts at line `first_line` of `path`) into sections.
pub(super) fn sections(
    path: &Path,
    body: &str,
    first_line: usize,
) -> Result<Vec<Section>, Vec<Problem>> {
    let line_at = |offset: usize| first_line + crate::config::line_of(body, offset) - 1;
    let mut problems = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut label: Option<String> = None;
    // A stack of open inline containers; index 0 collects the current block's inlines.
    let mut stack: Vec<(Option<Tag>, Vec<Inline>)> = Vec::new();
    let mut list: Option<Vec<Vec<Inline>>> = None;
    let mut in_heading = false;
    let mut heading_text = String::new();
    let mut in_html_block = false;
    // The line of the last inline HTML, the index of its problem and the tags found on that line.
    let mut html_run: Option<(usize, usize, Vec<String>)> = None;

    let flush =
        |label: &mut Option<String>, blocks: &mut Vec<Block>, sections: &mut Vec<Section>| {
            if !blocks.is_empty() {
                sections.push(Section {
                    label: label.take(),
                    body: Body::Blocks(std::mem::take(blocks)),
                });
            }
        };

    // Tables and `~~strikethrough~~` are parsed only to be refused (printed, they would be pipes
    // and tildes); a single `~text~` parses as subscript only so that it stays text, tildes and
    // all, rather than being taken for strikethrough.
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_SUBSCRIPT;
    for (event, range) in Parser::new_ext(body, options).into_offset_iter() {
        let line = line_at(range.start);
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                if level != HeadingLevel::H2 {
                    problems.push(Problem::at(
                        path,
                        line,
                        "only `## Label` headings are allowed: each one starts a labelled paragraph",
                    ));
                }
                in_heading = true;
                heading_text.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                in_heading = false;
                if let Some(l) = label.take() {
                    if blocks.is_empty() {
                        problems.push(Problem::at(
                            path,
                            line,
                            format!("the section `## {l}` before this one has no text"),
                        ));
                    }
                    label = Some(l);
                }
                flush(&mut label, &mut blocks, &mut sections);
                let text = one_line(&heading_text);
                if text.is_empty() {
                    problems.push(Problem::at(path, line, "a `##` heading needs a label"));
                }
                label = Some(text);
            }
            Event::Start(Tag::Paragraph) if list.is_none() => stack.push((None, Vec::new())),
            Event::Start(Tag::Paragraph) => {}
            Event::End(TagEnd::Paragraph) if list.is_none() => {
                if let Some((_, inlines)) = stack.pop() {
                    blocks.push(Block::Paragraph(trim(inlines)));
                }
            }
            Event::End(TagEnd::Paragraph) => {}
            Event::Start(Tag::List(_)) => {
                if list.is_some() {
                    problems.push(Problem::at(
                        path,
                        line,
                        "nested lists are not supported in an email entry",
                    ));
                } else {
                    list = Some(Vec::new());
                }
            }
            Event::End(TagEnd::List(_)) => {
                if let Some(items) = list.take() {
                    blocks.push(Block::List(items));
                }
            }
            Event::Start(Tag::Item) => stack.push((None, Vec::new())),
            Event::End(TagEnd::Item) => {
                if let (Some((_, inlines)), Some(items)) = (stack.pop(), list.as_mut()) {
                    items.push(trim(inlines));
                }
            }
            Event::Start(tag @ (Tag::Strong | Tag::Emphasis | Tag::Subscript)) => {
                stack.push((Some(tag), Vec::new()))
            }
            Event::Start(Tag::Strikethrough) => {
                problems.push(Problem::at(
                    path,
                    line,
                    "strikethrough (`~~text~~`) is not supported in entries: delete the struck-out text, or write the tildes as `\\~\\~` to print them",
                ));
                stack.push((None, Vec::new()));
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                // The missing scheme is checked first: `example.org:8080` parses, with the
                // scheme `example.org`.
                let url = match (with_https(&dest_url), Url::parse(&dest_url)) {
                    (Some(fixed), _) => {
                        problems.push(Problem::at(
                            path,
                            line,
                            format!("link `{dest_url}` has no scheme: did you mean `{fixed}`?"),
                        ));
                        None
                    }
                    (None, Ok(u)) if matches!(u.scheme(), "http" | "https" | "mailto") => Some(u),
                    (None, Ok(u)) => {
                        problems.push(Problem::at(
                            path,
                            line,
                            format!("link `{dest_url}`: only http, https and mailto links are allowed, not {}:", u.scheme()),
                        ));
                        None
                    }
                    (None, Err(url::ParseError::RelativeUrlWithoutBase)) => {
                        problems.push(Problem::at(
                            path,
                            line,
                            format!("link `{dest_url}` is relative, which cannot work in an email: write the full address, starting with https://"),
                        ));
                        None
                    }
                    (None, Err(e)) => {
                        problems.push(Problem::at(
                            path,
                            line,
                            format!("link `{dest_url}` is not an absolute URL ({e}): write it with https://"),
                        ));
                        None
                    }
                };
                let tag = url.map(|u| Tag::Link {
                    link_type: pulldown_cmark::LinkType::Inline,
                    dest_url: u.to_string().into(),
                    title: "".into(),
                    id: "".into(),
                });
                stack.push((tag, Vec::new()));
            }
            Event::End(
                TagEnd::Strong
                | TagEnd::Emphasis
                | TagEnd::Strikethrough
                | TagEnd::Subscript
                | TagEnd::Link,
            ) => {
                if let Some((tag, children)) = stack.pop() {
                    let inline = match tag {
                        Some(Tag::Strong) => Inline::Strong(children),
                        Some(Tag::Emphasis) => Inline::Emphasis(children),
                        // Not markup in an entry: the tildes print as they were typed.
                        Some(Tag::Subscript) => {
                            push(&mut stack, Inline::Text("~".into()));
                            for c in children {
                                push(&mut stack, c);
                            }
                            Inline::Text("~".into())
                        }
                        Some(Tag::Link { dest_url, .. }) => Inline::Link {
                            url: Url::parse(&dest_url).expect("checked above"),
                            children,
                        },
                        // A link whose URL was reported keeps its text.
                        _ => Inline::Text(Inline::plain(&children)),
                    };
                    push(&mut stack, inline);
                }
            }
            Event::Text(t) if in_heading => heading_text.push_str(&t),
            Event::Code(t) if in_heading => heading_text.push_str(&t),
            Event::Text(t) => push(&mut stack, Inline::Text(t.replace(['\r', '\n'], " "))),
            Event::Code(t) => push(&mut stack, Inline::Code(t.to_string())),
            Event::SoftBreak => push(&mut stack, Inline::Text(" ".into())),
            Event::HardBreak => push(&mut stack, Inline::LineBreak),
            // One problem per place: an HTML block comes as one event per line, inline HTML as
            // one event per tag, so a block is reported at its first line and the tags of one
            // line are gathered into one problem.
            Event::Start(Tag::HtmlBlock) => {
                in_html_block = true;
                problems.push(html_block_problem(
                    path,
                    &body[range.clone()],
                    line,
                    line_at(range.end.saturating_sub(1).max(range.start)),
                ));
            }
            Event::End(TagEnd::HtmlBlock) => in_html_block = false,
            Event::Html(_) if in_html_block => {}
            Event::Html(html) | Event::InlineHtml(html) => match &mut html_run {
                Some((run_line, index, tags)) if *run_line == line => {
                    tags.push(html.trim().to_string());
                    problems[*index] = inline_html_problem(path, line, tags);
                }
                run => {
                    let tags = vec![html.trim().to_string()];
                    problems.push(inline_html_problem(path, line, &tags));
                    *run = Some((line, problems.len() - 1, tags));
                }
            },
            Event::Start(Tag::Image { .. }) => problems.push(Problem::at(
                path,
                line,
                "images are not supported in entries: link to the picture instead",
            )),
            Event::Start(Tag::CodeBlock(_)) => problems.push(Problem::at(
                path,
                line,
                "code blocks are not supported in entries",
            )),
            Event::Start(Tag::BlockQuote(_)) => problems.push(Problem::at(
                path,
                line,
                "block quotes are not supported in entries",
            )),
            Event::Start(Tag::Table(_)) => problems.push(Problem::at(
                path,
                line,
                "tables are not supported in entries (an email would show the pipes): write one `- ` list item per row instead",
            )),
            Event::Rule => problems.push(Problem::at(
                path,
                line,
                "horizontal rules are not supported in entries: start a `## Label` section instead",
            )),
            _ => {}
        }
    }
    if let Some(l) = &label {
        if blocks.is_empty() {
            problems.push(Problem::at(
                path,
                first_line + body.lines().count().saturating_sub(1),
                format!("the section `## {l}` has no text"),
            ));
        }
    }
    flush(&mut label, &mut blocks, &mut sections);
    if problems.is_empty() {
        Ok(sections)
    } else {
        Err(problems)
    }
}

fn push(stack: &mut [(Option<Tag>, Vec<Inline>)], inline: Inline) {
    if let Some((_, top)) = stack.last_mut() {
        // Adjacent text runs are joined so that the model stays small and snapshots readable.
        if let (Inline::Text(new), Some(Inline::Text(prev))) = (&inline, top.last_mut()) {
            prev.push_str(new);
            return;
        }
        top.push(inline);
    }
}

/// Drops leading and trailing spaces of a block.
fn trim(mut inlines: Vec<Inline>) -> Vec<Inline> {
    if let Some(Inline::Text(t)) = inlines.first_mut() {
        *t = t.trim_start().to_string();
    }
    if let Some(Inline::Text(t)) = inlines.last_mut() {
        *t = t.trim_end().to_string();
    }
    inlines.retain(|i| !matches!(i, Inline::Text(t) if t.is_empty()));
    inlines
}

/// The problem for an HTML block from `first` to `last` line, naming its first tag.
fn html_block_problem(path: &Path, html: &str, first: usize, last: usize) -> Problem {
    let tag = first_tag(html);
    let lines = if last > first {
        format!(" (lines {first}-{last})")
    } else {
        String::new()
    };
    if tag.starts_with("<!--") {
        return Problem::at(
            path,
            first,
            format!("an HTML comment{lines} is not allowed in an entry: remove it, or it would be printed as text"),
        );
    }
    Problem::at(
        path,
        first,
        format!(
            "raw HTML block `{tag}`{lines} is not allowed in an entry: {}",
            html_fix(&[tag.as_str()])
        ),
    )
}

/// The problem for the inline HTML `tags` found on one line.
fn inline_html_problem(path: &Path, line: usize, tags: &[String]) -> Problem {
    let shown: Vec<String> = tags.iter().map(|t| format!("`{}`", shorten(t))).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    Problem::at(
        path,
        line,
        format!(
            "raw HTML {} is not allowed in an entry: {}",
            shown.join(", "),
            html_fix(&tags)
        ),
    )
}

/// The first tag (or comment opening) of an HTML text, shortened for a message.
fn first_tag(html: &str) -> String {
    let html = html.trim_start();
    let tag = if html.starts_with("<!--") {
        "<!--"
    } else {
        match html.find('>') {
            Some(end) => &html[..=end],
            None => html.lines().next().unwrap_or(""),
        }
    };
    shorten(tag)
}

/// `s` on one line, cut to a length that fits in a message.
fn shorten(s: &str) -> String {
    let s = one_line(s);
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// How to write in Markdown what the HTML `tags` meant, as the fix of a problem.
fn html_fix(tags: &[&str]) -> String {
    let mut fixes: Vec<&str> = Vec::new();
    for tag in tags {
        let name: String = tag
            .trim_start_matches(['<', '/'])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!' || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        let fix = match name.as_str() {
            "b" | "strong" => "write **bold** instead",
            "i" | "em" => "write *emphasis* instead",
            "a" => "write a link as [text](https://example.org/page) instead",
            "br" => "end the line with a backslash `\\` for a line break instead",
            "p" | "div" => "write the text as Markdown, with a blank line between paragraphs",
            "ul" | "ol" | "li" => "write a list with one `- ` line per item instead",
            "img" => "link to the picture instead",
            "!--" => "remove the comment, or it would be printed as text",
            _ => "write it in Markdown instead (brief escapes everything)",
        };
        if !fixes.contains(&fix) {
            fixes.push(fix);
        }
    }
    fixes.join("; ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The problems of `body` (starting at line 1), as `line: message`.
    fn problems(body: &str) -> Vec<String> {
        match super::sections(Path::new("e.md"), body, 1) {
            Ok(_) => Vec::new(),
            Err(ps) => ps
                .iter()
                .map(|p| format!("{}: {}", p.line.unwrap_or(0), p.message))
                .collect(),
        }
    }

    #[test]
    fn content_inline_html_is_one_problem_per_line() {
        assert_eq!(
            problems("## A\n\nOne <b>two</b> <i>three</i>\nfour <em>five\nsix</em> seven<br>\n"),
            [
                "3: raw HTML `<b>`, `</b>`, `<i>`, `</i>` is not allowed in an entry: write **bold** instead; write *emphasis* instead",
                "4: raw HTML `<em>` is not allowed in an entry: write *emphasis* instead",
                "5: raw HTML `</em>`, `<br>` is not allowed in an entry: write *emphasis* instead; end the line with a backslash `\\` for a line break instead",
            ]
        );
    }

    #[test]
    fn content_html_blocks_are_one_problem_each() {
        assert_eq!(
            problems("## A\n\n<!-- a note\nfor reviewers -->\n\nText.\n\n<table><tr><td>x</td></tr></table>\n"),
            [
                "3: an HTML comment (lines 3-4) is not allowed in an entry: remove it, or it would be printed as text",
                "8: raw HTML block `<table>` is not allowed in an entry: write it in Markdown instead (brief escapes everything)",
            ]
        );
    }

    #[test]
    fn content_tables_are_refused_at_their_first_line() {
        assert_eq!(
            problems("## A\n\nText.\n\n| Country | Office |\n| --- | --- |\n| Mexico | CDMX |\n"),
            ["5: tables are not supported in entries (an email would show the pipes): write one `- ` list item per row instead"]
        );
        // Pipes without a delimiter row are just text.
        assert!(problems("## A\n\nYes | no\n").is_empty());
    }

    #[test]
    fn content_strikethrough_is_refused_and_single_tildes_stay_text() {
        assert_eq!(
            problems("## A\n\nText.\n\nThe ~~old~~ new office.\n"),
            ["5: strikethrough (`~~text~~`) is not supported in entries: delete the struck-out text, or write the tildes as `\\~\\~` to print them"]
        );
        let sections = super::sections(
            Path::new("e.md"),
            "## A\n\nAbout ~5~ people, ~6 km and \\~\\~x\\~\\~.\n",
            1,
        )
        .unwrap();
        assert_eq!(
            crate::issue::Inline::plain(match &sections[0].body {
                crate::issue::Body::Blocks(b) => match &b[0] {
                    crate::issue::Block::Paragraph(p) => p,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }),
            "About ~5~ people, ~6 km and ~~x~~."
        );
    }

    #[test]
    fn content_body_links_need_a_scheme() {
        assert_eq!(
            problems("## A\n\n[a](https://example.org/) [b](mailto:a@example.org)\n[c](example.org:8080/x) [d](#top)\n"),
            [
                "4: link `example.org:8080/x` has no scheme: did you mean `https://example.org:8080/x`?",
                "4: link `#top` is relative, which cannot work in an email: write the full address, starting with https://",
            ]
        );
    }
}
