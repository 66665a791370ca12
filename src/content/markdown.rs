//! Turns an entry's Markdown body into labelled sections of paragraphs, lists and inline text.
//!
//! Only what an email can carry safely is accepted: `## Label` headings, paragraphs, lists, emphasis,
//! inline code and links. Raw HTML, images, tables and other headings are reported as problems
//! rather than dropped, so nothing a writer typed silently disappears.

use std::path::Path;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use url::Url;

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

    let flush =
        |label: &mut Option<String>, blocks: &mut Vec<Block>, sections: &mut Vec<Section>| {
            if !blocks.is_empty() {
                sections.push(Section {
                    label: label.take(),
                    body: Body::Blocks(std::mem::take(blocks)),
                });
            }
        };

    for (event, range) in Parser::new_ext(body, Options::ENABLE_STRIKETHROUGH).into_offset_iter() {
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
            Event::Start(tag @ (Tag::Strong | Tag::Emphasis | Tag::Strikethrough)) => {
                stack.push((Some(tag), Vec::new()))
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                let url = match Url::parse(&dest_url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https" | "mailto") => Some(u),
                    Ok(u) => {
                        problems.push(Problem::at(
                            path,
                            line,
                            format!("link `{dest_url}`: only http, https and mailto links are allowed, not {}:", u.scheme()),
                        ));
                        None
                    }
                    Err(e) => {
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
                TagEnd::Strong | TagEnd::Emphasis | TagEnd::Strikethrough | TagEnd::Link,
            ) => {
                if let Some((tag, children)) = stack.pop() {
                    let inline = match tag {
                        Some(Tag::Strong) => Inline::Strong(children),
                        Some(Tag::Emphasis) | Some(Tag::Strikethrough) => {
                            Inline::Emphasis(children)
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
            Event::Html(_) | Event::InlineHtml(_) => problems.push(Problem::at(
                path,
                line,
                "raw HTML is not allowed in an entry: write Markdown, brief escapes everything",
            )),
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
                "tables are not supported in entries",
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
