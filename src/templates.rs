//! The look that staff may change without touching Rust: `email.css` and `snippets.toml`.
//!
//! Both files are read once, before rendering; copies are built into the binary and used when the
//! config names no templates folder. The stylesheet is a deliberately small subset of CSS: one
//! `.name { declarations }` rule per part of the layout, copied into `style` attributes at render
//! time, since most mail clients drop `<style>` blocks; and `@media (...) { ... }` blocks (small
//! screens, dark mode), copied as they are into the page's `<style>` block for the clients that
//! read it. Elements carry their part's name as a class, so those blocks can key on it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::config::Newsletter;

const DEFAULT_CSS: &str = include_str!("../templates/email.css");
const DEFAULT_SNIPPETS: &str = include_str!("../templates/snippets.toml");
const DEFAULT_CONSOLE_CSS: &str = include_str!("../templates/console.css");

/// The stylesheet and words around the content, ready for the renderer.
#[derive(Clone, Debug)]
pub struct Templates {
    styles: HashMap<String, String>,
    /// The `@media` blocks, for the `<style>` element.
    head_css: String,
    /// The staff console's stylesheet (`console.css`), whole.
    console_css: String,
    pub snippets: Snippets,
}

/// The words around the content (`snippets.toml`), placeholders already filled in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snippets {
    /// The "View in browser" link text.
    pub view_in_browser: String,
    /// The text of each entry's link.
    pub learn_more: String,
    /// What follows it, in a lighter face, so that the link makes sense out of context (a list
    /// of links, a screen reader's); `{title}` is the entry's title.
    #[serde(default = "default_learn_more_about")]
    pub learn_more_about: String,
    /// Why the reader gets this message.
    pub why: String,
    /// The unsubscribe link's text.
    pub unsubscribe: String,
    /// Shown after the unsubscribe link.
    #[serde(default)]
    pub unsubscribe_note: String,
    /// The hidden preview line; empty: the intro.
    #[serde(default)]
    pub preheader: String,
    /// What the web version says in place of the unsubscribe link.
    pub archive_note: String,
    /// The consent sentence of the sign-up form.
    #[serde(default = "default_consent")]
    pub consent: String,
    /// The subject of the message that asks a new reader to confirm.
    #[serde(default = "default_confirm_subject")]
    pub confirm_subject: String,
    /// Its text, above the confirmation button.
    #[serde(default = "default_confirm_text")]
    pub confirm_text: String,
}

fn default_learn_more_about() -> String {
    "about {title}".into()
}

fn default_consent() -> String {
    "I agree to receive {kicker}, the monthly newsletter of the {organization}, by email. I can \
     leave at any time with the link in every message."
        .into()
}

fn default_confirm_subject() -> String {
    "Confirm your subscription to {kicker}".into()
}

fn default_confirm_text() -> String {
    "Someone, probably you, asked to receive {kicker}, the monthly newsletter of the \
     {organization}, at this address. Confirm with the button below. If it was not you, ignore \
     this message: nothing will be sent."
        .into()
}

impl Templates {
    /// The built-in look.
    pub fn builtin(newsletter: &Newsletter) -> anyhow::Result<Templates> {
        Templates::parse(
            DEFAULT_CSS,
            Path::new("<built-in email.css>"),
            DEFAULT_SNIPPETS,
            Path::new("<built-in snippets.toml>"),
            newsletter,
        )
    }

    /// The same with the console's stylesheet `css` (read from `path`) instead of the built-in
    /// one; refused if it holds `<`, which could end the `<style>` element it goes into.
    pub fn with_console_css(mut self, css: String, path: &Path) -> anyhow::Result<Templates> {
        if let Some(at) = css.find('<') {
            anyhow::bail!(
                "{}:{}: a `<` in the console's stylesheet (it would end the page's <style> element)",
                path.display(),
                crate::config::line_of(&css, at)
            );
        }
        self.console_css = css;
        Ok(self)
    }

    /// Reads `email.css` and `snippets.toml` from `dir`, or the built-in copies when `dir` is `None`.
    pub fn load(dir: Option<&Path>, newsletter: &Newsletter) -> anyhow::Result<Templates> {
        let Some(dir) = dir else {
            return Templates::builtin(newsletter);
        };
        let read = |name: &str| -> anyhow::Result<(String, PathBuf)> {
            let p = dir.join(name);
            let text = std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "cannot read template {} (named by `newsletter.templates`)",
                    p.display()
                )
            })?;
            Ok((text, p))
        };
        let (css, css_path) = read("email.css")?;
        let (snippets, snippets_path) = read("snippets.toml")?;
        let t = Templates::parse(&css, &css_path, &snippets, &snippets_path, newsletter)?;
        // The console's stylesheet is optional: a templates folder made before it existed
        // keeps the built-in one.
        let console = dir.join("console.css");
        match std::fs::read_to_string(&console) {
            Ok(css) => t.with_console_css(css, &console),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(t),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read template {}: {e}",
                console.display()
            )),
        }
    }

    /// Parses the two template texts; paths are for error messages only.
    pub fn parse(
        css: &str,
        css_path: &Path,
        snippets: &str,
        snippets_path: &Path,
        newsletter: &Newsletter,
    ) -> anyhow::Result<Templates> {
        let Sheet { styles, head_css } = parse_css(css, css_path)?;
        let mut s: Snippets = toml::from_str(snippets).map_err(|e| {
            let line = e
                .span()
                .map(|sp| crate::config::line_of(snippets, sp.start))
                .unwrap_or(1);
            anyhow::anyhow!(
                "{}:{line}: {}",
                snippets_path.display(),
                e.message().trim_end()
            )
        })?;
        for field in [
            &mut s.view_in_browser,
            &mut s.learn_more,
            &mut s.learn_more_about,
            &mut s.why,
            &mut s.unsubscribe,
            &mut s.unsubscribe_note,
            &mut s.preheader,
            &mut s.archive_note,
            &mut s.consent,
            &mut s.confirm_subject,
            &mut s.confirm_text,
        ] {
            *field = field
                .replace("{name}", &newsletter.name)
                .replace("{kicker}", &newsletter.kicker)
                .replace("{organization}", &newsletter.organization);
        }
        Ok(Templates {
            styles,
            head_css,
            console_css: DEFAULT_CONSOLE_CSS.to_string(),
            snippets: s,
        })
    }

    /// The inline style of a part of the layout (empty when the stylesheet has no rule for it).
    pub fn style(&self, class: &str) -> &str {
        self.styles.get(class).map(String::as_str).unwrap_or("")
    }

    /// The stylesheet's `@media` blocks (small screens, dark mode) for a `<style>` element, one
    /// per line; they hold no `<`, so they cannot end the element.
    pub fn head_css(&self) -> &str {
        &self.head_css
    }

    /// The staff console's stylesheet, for its pages' `<style>` element (it holds no `<`).
    pub fn console_css(&self) -> &str {
        &self.console_css
    }

    /// The classes the stylesheet defines.
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.styles.keys().map(String::as_str)
    }
}

/// What `parse_css` reads: the inline styles by class, and the `@media` blocks.
#[derive(Debug)]
struct Sheet {
    styles: HashMap<String, String>,
    head_css: String,
}

/// Reads `.name { decl; decl }` rules and `@media ... { ... }` blocks. Declarations are
/// normalised to `prop: value;` with single spaces, and blocks to one line each without
/// comments, so the output is stable and small.
fn parse_css(css: &str, path: &Path) -> anyhow::Result<Sheet> {
    let mut styles = HashMap::new();
    let mut head_css = String::new();
    let bytes = css.as_bytes();
    let mut i = 0;
    let line = |at: usize| crate::config::line_of(css, at);
    while i < bytes.len() {
        let rest = &css[i..];
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if rest.starts_with("/*") {
            let end = rest
                .find("*/")
                .with_context(|| format!("{}:{}: comment never closed", path.display(), line(i)))?;
            i += end + 2;
        } else if c == b'@' {
            let (block, len) = media_block(rest, path, line(i))?;
            if !head_css.is_empty() {
                head_css.push('\n');
            }
            head_css.push_str(&block);
            i += len;
        } else if c == b'.' {
            let open = rest
                .find('{')
                .with_context(|| format!("{}:{}: rule without `{{`", path.display(), line(i)))?;
            let name = rest[1..open].trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                bail!(
                    "{}:{}: `{}` is not a simple class selector: brief's stylesheet takes only `.name {{ ... }}` rules",
                    path.display(),
                    line(i),
                    rest[..open].trim()
                );
            }
            let close = rest[open..].find('}').with_context(|| {
                format!(
                    "{}:{}: rule `.{name}` never closed with `}}`",
                    path.display(),
                    line(i)
                )
            })? + open;
            let body = &rest[open + 1..close];
            if body.contains('<') || body.contains('"') {
                bail!(
                    "{}:{}: rule `.{name}` contains `<` or `\"`, which cannot go into a style attribute",
                    path.display(),
                    line(i)
                );
            }
            let mut decls = String::new();
            for d in body.split(';') {
                let d = d.trim();
                if d.is_empty() {
                    continue;
                }
                let Some((prop, value)) = d.split_once(':') else {
                    bail!(
                        "{}:{}: `{d}` in `.{name}` is not a `property: value` declaration",
                        path.display(),
                        line(i + open)
                    );
                };
                if !decls.is_empty() {
                    decls.push(' ');
                }
                let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
                decls.push_str(&format!("{}: {};", prop.trim(), value));
            }
            styles
                .entry(name.to_string())
                .and_modify(|s: &mut String| {
                    s.push(' ');
                    s.push_str(&decls)
                })
                .or_insert(decls);
            i += close + 1;
        } else {
            bail!(
                "{}:{}: expected a `.name {{ ... }}` rule or an `@media` block: brief's stylesheet takes only these",
                path.display(),
                line(i)
            );
        }
    }
    Ok(Sheet { styles, head_css })
}

/// The `@media` block at the start of `rest` (at `line`), on one line without comments, and how
/// many bytes of `rest` it took.
fn media_block(rest: &str, path: &Path, line: usize) -> anyhow::Result<(String, usize)> {
    let open = rest
        .find('{')
        .with_context(|| format!("{}:{line}: `@` block without `{{`", path.display()))?;
    let prelude = rest[..open]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if !prelude.starts_with("@media ") {
        bail!(
            "{}:{line}: `{prelude}` is not an `@media` block: brief's stylesheet takes only `@media` blocks besides `.name {{ ... }}` rules",
            path.display()
        );
    }
    let mut depth = 0usize;
    let mut out = String::new();
    let mut word = String::new();
    let mut chars = rest.char_indices().skip(open).peekable();
    while let Some((at, ch)) = chars.next() {
        match ch {
            '/' if chars.peek().map(|&(_, c)| c) == Some('*') => {
                let end = rest[at + 2..].find("*/").with_context(|| {
                    format!("{}:{line}: comment never closed", path.display())
                })?;
                while chars.peek().is_some_and(|&(j, _)| j < at + 2 + end + 2) {
                    chars.next();
                }
            }
            '<' => bail!(
                "{}:{line}: the block `{prelude}` contains `<`, which cannot go into a <style> element",
                path.display()
            ),
            '{' | '}' | ';' => {
                let w = word.split_whitespace().collect::<Vec<_>>().join(" ");
                word.clear();
                out.push_str(&w);
                if ch == '{' {
                    depth += 1;
                    out.push_str(if w.is_empty() { "{ " } else { " { " });
                } else if ch == ';' {
                    out.push_str("; ");
                } else {
                    if !out.ends_with(' ') {
                        out.push(' ');
                    }
                    out.push_str("} ");
                    depth -= 1;
                    if depth == 0 {
                        let block = format!("{prelude} {}", out.trim_end());
                        return Ok((block, at + 1));
                    }
                }
            }
            _ => word.push(ch),
        }
    }
    bail!(
        "{}:{line}: the block `{prelude}` is never closed with `}}`",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_stylesheet_is_built_in_or_the_folders_and_may_not_end_its_element() {
        let n = crate::config::parse(crate::config::MINIMAL_FOR_TESTS, Path::new("brief.toml"))
            .unwrap()
            .newsletter;
        let dir = tempfile::tempdir().unwrap();
        for f in ["email.css", "snippets.toml"] {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("templates")
                    .join(f),
                dir.path().join(f),
            )
            .unwrap();
        }
        // A folder made before console.css existed keeps the built-in one.
        let t = Templates::load(Some(dir.path()), &n).unwrap();
        assert_eq!(t.console_css(), DEFAULT_CONSOLE_CSS);
        assert!(!DEFAULT_CONSOLE_CSS.contains('<'));
        std::fs::write(dir.path().join("console.css"), "body { color: red; }\n").unwrap();
        let t = Templates::load(Some(dir.path()), &n).unwrap();
        assert_eq!(t.console_css(), "body { color: red; }\n");
        std::fs::write(
            dir.path().join("console.css"),
            "a {}\n</style><script>x</script>",
        )
        .unwrap();
        let e = Templates::load(Some(dir.path()), &n).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("console.css:2: a `<`"), "{e}");
    }

    #[test]
    fn css_rules_become_inline_styles() {
        let s = parse_css(
            "/* c */ .a { color: red;  margin : 0 } .b{x:y}\n.a { padding: 1px; }",
            Path::new("e.css"),
        )
        .unwrap()
        .styles;
        assert_eq!(s["a"], "color: red; margin: 0; padding: 1px;");
        assert_eq!(s["b"], "x: y;");
    }

    #[test]
    fn media_blocks_go_to_the_style_element_as_they_are() {
        let s = parse_css(
            ".a { color: red; }\n@media (prefers-color-scheme: dark) {\n  /* night */ .a,\n .b { color: #fff !important; }\n}\n.b { x: y }",
            Path::new("e.css"),
        )
        .unwrap();
        assert_eq!(s.styles["a"], "color: red;");
        assert_eq!(s.styles["b"], "x: y;");
        assert_eq!(
            s.head_css,
            "@media (prefers-color-scheme: dark) { .a, .b { color: #fff !important; } }"
        );
        let e = parse_css("@media x { .a { b: c } ", Path::new("e.css"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("never closed"), "{e}");
        let e = parse_css("@media x { .a { b: c </style> } }", Path::new("e.css"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("contains `<`"), "{e}");
        let e = parse_css("@import url(x); .a { b: c }", Path::new("e.css"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not an `@media` block"), "{e}");
    }

    #[test]
    fn css_errors_name_file_and_line() {
        let e = parse_css(".a { color: red; }\n\ndiv p { x: y }", Path::new("e.css"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("e.css:3: expected a `.name"), "{e}");
        let e = parse_css(".a { color: \"red\" }", Path::new("e.css"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot go into a style attribute"), "{e}");
    }
}
