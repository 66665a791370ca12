//! The look and the words that staff may change without touching Rust: `email.css`,
//! `console.css`, and one message catalogue per language (`en.ftl`, `es.ftl`: Project Fluent).
//!
//! All are read once, before rendering; copies are built into the binary and used when the
//! config names no templates folder (or the folder lacks a file). The stylesheet is a
//! deliberately small subset of CSS: one `.name { declarations }` rule per part of the layout,
//! copied into `style` attributes at render time, since most mail clients drop `<style>`
//! blocks; and `@media (...) { ... }` blocks (small screens, dark mode), copied as they are into
//! the page's `<style>` block for the clients that read it. Elements carry their part's name as
//! a class, so those blocks can key on it.
//!
//! A catalogue must hold every message the built-in English one holds, each formatting without
//! error: a missing or broken message is an error naming the file (and line), never a blank in
//! a reader's mail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

use crate::config::Newsletter;
use crate::lang::Lang;

const DEFAULT_CSS: &str = include_str!("../templates/email.css");
const DEFAULT_CONSOLE_CSS: &str = include_str!("../templates/console.css");

/// The catalogues built into brief, by language.
const BUILTIN_CATALOGUES: &[(&str, &str)] = &[
    ("en", include_str!("../templates/en.ftl")),
    ("es", include_str!("../templates/es.ftl")),
];

/// The variables a catalogue's messages may use besides the newsletter's own, each with a
/// sample value to check the messages with.
const VARIABLES: &[(&str, &str)] = &[
    ("title", "A title"),
    ("source", "A partner"),
    ("ttl", "7 days"),
    ("days", "14"),
    ("issue", "2021-07"),
    ("count", "2"),
    ("problem", "it is empty"),
];

/// The stylesheet and words around the content, ready for the renderer.
#[derive(Clone, Debug)]
pub struct Templates {
    styles: HashMap<String, String>,
    /// The `@media` blocks, for the `<style>` element.
    head_css: String,
    /// The staff console's stylesheet (`console.css`), whole.
    console_css: String,
    /// One per configured language, the default first.
    editions: Vec<Edition>,
}

/// What one language's readers read around the content: the newsletter's texts in that
/// language and its catalogue.
#[derive(Clone, Debug)]
pub struct Edition {
    pub lang: Lang,
    /// `[newsletter]` with `[newsletter.LANG]` over it.
    pub newsletter: Newsletter,
    pub words: Words,
}

/// One language's catalogue, with the newsletter's `kicker`, `name` and `organization` in that
/// language given to every message.
#[derive(Clone)]
pub struct Words {
    bundle: std::sync::Arc<FluentBundle<FluentResource>>,
    /// kicker, name, organization.
    newsletter: [(&'static str, String); 3],
    source: PathBuf,
}

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Words")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Words {
    /// Message `id` with the newsletter's words only.
    pub fn get(&self, id: &str) -> String {
        self.with(id, &[])
    }

    /// Message `id` with `args` besides the newsletter's words. A message the catalogue lacks
    /// cannot happen past [`Templates::load`], which refuses such a catalogue; it would show
    /// as its id.
    pub fn with(&self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            debug_assert!(false, "message {id} missing from {}", self.source.display());
            return id.to_string();
        };
        let mut a = FluentArgs::new();
        for (k, v) in &self.newsletter {
            a.set(*k, v.as_str());
        }
        for (k, v) in args {
            a.set(*k, v.clone());
        }
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(pattern, Some(&a), &mut errors)
            .into_owned()
    }

    /// Message `id` with one text variable.
    pub fn with_text(&self, id: &str, name: &str, value: &str) -> String {
        self.with(id, &[(name, FluentValue::from(value))])
    }

    /// A duration in words ("7 days", "one hour"), rounded down to whole days, hours or minutes.
    pub fn duration(&self, d: std::time::Duration) -> String {
        let s = d.as_secs();
        let (id, n) = if s >= 2 * 86_400 || (s >= 86_400 && s.is_multiple_of(86_400)) {
            ("duration-days", s / 86_400)
        } else if s >= 3600 {
            ("duration-hours", s / 3600)
        } else {
            ("duration-minutes", (s / 60).max(1))
        };
        self.with(id, &[("count", FluentValue::from(n))])
    }
}

/// Reads catalogue `text` (from `path`) for `lang`, checked to hold and format each of the
/// messages `wanted` (those of the built-in English catalogue).
fn catalogue(
    text: &str,
    path: &Path,
    lang: &Lang,
    newsletter: &Newsletter,
    wanted: &[String],
) -> anyhow::Result<Words> {
    let resource = match FluentResource::try_new(text.to_string()) {
        Ok(r) => r,
        Err((_, errors)) => {
            let e = &errors[0];
            bail!(
                "{}:{}: the catalogue does not parse ({}); see https://projectfluent.org for its syntax",
                path.display(),
                crate::config::line_of(text, e.pos.start),
                e.kind
            );
        }
    };
    let id: unic_langid::LanguageIdentifier = lang
        .as_str()
        .parse()
        .or_else(|_| lang.primary().parse())
        .unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around values: they would show in plain-text mail.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        bail!("{}: {}", path.display(), errors[0]);
    }
    let words = Words {
        bundle: std::sync::Arc::new(bundle),
        newsletter: [
            ("kicker", newsletter.kicker.clone()),
            ("name", newsletter.name.clone()),
            ("organization", newsletter.organization.clone()),
        ],
        source: path.to_path_buf(),
    };
    let mut a = FluentArgs::new();
    for (k, v) in words
        .newsletter
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(VARIABLES.iter().copied())
    {
        a.set(k, v);
    }
    for id in wanted {
        let Some(pattern) = words.bundle.get_message(id).and_then(|m| m.value()) else {
            bail!(
                "{}: the message `{id}` is missing: every catalogue needs each message of the built-in en.ftl",
                path.display()
            );
        };
        let mut errors = Vec::new();
        let _ = words.bundle.format_pattern(pattern, Some(&a), &mut errors);
        if let Some(e) = errors.first() {
            let at = text
                .find(&format!("\n{id} "))
                .map_or(1, |i| crate::config::line_of(text, i + 1));
            bail!(
                "{}:{at}: the message `{id}` does not format: {e}",
                path.display()
            );
        }
    }
    Ok(words)
}

/// The built-in catalogue for `lang`: its own, else its primary language's.
fn builtin_catalogue(lang: &Lang) -> Option<&'static str> {
    BUILTIN_CATALOGUES
        .iter()
        .find(|(l, _)| *l == lang.as_str())
        .or_else(|| {
            BUILTIN_CATALOGUES
                .iter()
                .find(|(l, _)| *l == lang.primary())
        })
        .map(|(_, t)| *t)
}

impl Templates {
    /// The built-in look.
    pub fn builtin(newsletter: &Newsletter) -> anyhow::Result<Templates> {
        Templates::load(None, newsletter)
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

    /// Reads the templates from `dir`, each file that it lacks (or all, when `dir` is `None`)
    /// built in: `email.css`, `console.css`, and the catalogue of each configured language.
    pub fn load(dir: Option<&Path>, newsletter: &Newsletter) -> anyhow::Result<Templates> {
        // A file of the folder, if it is there.
        let read = |name: &str| -> anyhow::Result<Option<(String, PathBuf)>> {
            let Some(dir) = dir else { return Ok(None) };
            let p = dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(text) => Ok(Some((text, p))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(anyhow::anyhow!(
                    "cannot read template {} (in `newsletter.templates`): {e}",
                    p.display()
                )),
            }
        };
        if let Some(dir) = dir {
            if !dir.is_dir() {
                bail!(
                    "cannot read the templates folder {} (named by `newsletter.templates`): it is not a folder",
                    dir.display()
                );
            }
            let old = dir.join("snippets.toml");
            if old.exists() {
                bail!(
                    "{}: snippets.toml is no longer read: its words are now in one Fluent catalogue per language (en.ftl, es.ftl). Copy brief's templates/en.ftl into the folder, move your words into it (`view_in_browser` is `view-in-browser`, `{{kicker}}` is `{{ $kicker }}`), then remove snippets.toml",
                    old.display()
                );
            }
        }
        let (css, css_path) = read("email.css")?.unwrap_or_else(|| {
            (
                DEFAULT_CSS.to_string(),
                PathBuf::from("<built-in email.css>"),
            )
        });
        let Sheet { styles, head_css } = parse_css(&css, &css_path)?;
        // Every catalogue holds each message of the built-in English one.
        let wanted: Vec<String> = FluentResource::try_new(BUILTIN_CATALOGUES[0].1.to_string())
            .expect("the built-in en.ftl parses")
            .entries()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
                _ => None,
            })
            .collect();
        let mut editions = Vec::new();
        for lang in newsletter.languages.all() {
            let localized = newsletter.localized(lang);
            let file = format!("{lang}.ftl");
            let (text, path) = match read(&file)? {
                Some(found) => found,
                None => match builtin_catalogue(lang) {
                    Some(t) => (t.to_string(), PathBuf::from(format!("<built-in {file}>"))),
                    None => bail!(
                        "no catalogue for the language `{lang}` of `newsletter.languages`: brief has en and es built in; put a {file} in the templates folder (`newsletter.templates`), made from brief's templates/en.ftl"
                    ),
                },
            };
            let words = catalogue(&text, &path, lang, &localized, &wanted)?;
            editions.push(Edition {
                lang: lang.clone(),
                newsletter: localized,
                words,
            });
        }
        let t = Templates {
            styles,
            head_css,
            console_css: DEFAULT_CONSOLE_CSS.to_string(),
            editions,
        };
        match read("console.css")? {
            Some((css, path)) => t.with_console_css(css, &path),
            None => Ok(t),
        }
    }

    /// The edition of `lang`, or the default language's when `lang` is not configured.
    pub fn edition(&self, lang: &Lang) -> &Edition {
        self.editions
            .iter()
            .find(|e| e.lang == *lang)
            .unwrap_or(&self.editions[0])
    }

    /// Every language's edition, the default first.
    pub fn editions(&self) -> &[Edition] {
        &self.editions
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
        for f in ["email.css", "en.ftl"] {
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

    fn newsletter(languages: &str) -> Newsletter {
        let text = crate::config::MINIMAL_FOR_TESTS.replacen(
            "[newsletter]\n",
            &format!("[newsletter]\nlanguages = {languages}\n"),
            1,
        );
        crate::config::parse(&text, Path::new("brief.toml"))
            .unwrap()
            .newsletter
    }

    #[test]
    fn each_language_has_its_catalogue_with_the_newsletters_words_and_plurals() {
        let t = Templates::builtin(&newsletter(r#"["en", "es-MX"]"#)).unwrap();
        let en = &t.edition(&Lang::parse("en").unwrap()).words;
        let es = &t.edition(&Lang::parse("es-MX").unwrap()).words;
        assert_eq!(es.get("view-in-browser"), "Ver en el navegador");
        assert_eq!(en.get("subscribe-heading"), "Subscribe to BRIEF");
        // No isolation marks around values: they would show in plain text.
        assert_eq!(
            es.with_text("learn-more-about", "title", "Uno"),
            "sobre Uno"
        );
        assert_eq!(
            es.duration(std::time::Duration::from_secs(86_400)),
            "un día"
        );
        assert_eq!(
            es.duration(std::time::Duration::from_secs(7 * 86_400)),
            "7 días"
        );
        assert_eq!(
            en.duration(std::time::Duration::from_secs(3 * 3600)),
            "3 hours"
        );
        assert_eq!(
            en.duration(std::time::Duration::from_secs(60)),
            "one minute"
        );
        // A language not configured reads as the default.
        assert_eq!(t.edition(&Lang::parse("fr").unwrap()).lang.as_str(), "en");
        // A language brief has no catalogue for is refused, naming the file to add.
        let e = Templates::builtin(&newsletter(r#"["en", "fr"]"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no catalogue for the language `fr`") && e.contains("fr.ftl"),
            "{e}"
        );
    }

    #[test]
    fn a_catalogue_missing_a_message_or_broken_is_refused_with_file_and_line() {
        let n = newsletter(r#"["en", "es"]"#);
        let dir = tempfile::tempdir().unwrap();
        let es = builtin_catalogue(&Lang::parse("es").unwrap()).unwrap();
        std::fs::write(
            dir.path().join("es.ftl"),
            es.replace("unsubscribe-note =", "# gone\nunsubscribe-nota ="),
        )
        .unwrap();
        let e = Templates::load(Some(dir.path()), &n)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("es.ftl: the message `unsubscribe-note` is missing"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("es.ftl"),
            es.replace("sobre { $title }", "sobre { $titulo }"),
        )
        .unwrap();
        let e = Templates::load(Some(dir.path()), &n)
            .unwrap_err()
            .to_string();
        let line = es
            .lines()
            .position(|l| l.starts_with("learn-more-about"))
            .unwrap()
            + 1;
        assert!(
            e.contains(&format!(
                "es.ftl:{line}: the message `learn-more-about` does not format"
            )),
            "{e}"
        );
        std::fs::write(dir.path().join("es.ftl"), format!("{es}\nbroken = {{ $x\n")).unwrap();
        let e = Templates::load(Some(dir.path()), &n)
            .unwrap_err()
            .to_string();
        assert!(e.contains("es.ftl:") && e.contains("does not parse"), "{e}");
        // The folder's own catalogue wins; the other language stays built in.
        std::fs::write(
            dir.path().join("es.ftl"),
            es.replace("Ver en el navegador", "Verlo en línea"),
        )
        .unwrap();
        let t = Templates::load(Some(dir.path()), &n).unwrap();
        assert_eq!(
            t.edition(&Lang::parse("es").unwrap())
                .words
                .get("view-in-browser"),
            "Verlo en línea"
        );
        assert_eq!(
            t.edition(&Lang::parse("en").unwrap())
                .words
                .get("view-in-browser"),
            "View in browser"
        );
        // A folder from before the catalogues says what to do.
        std::fs::write(
            dir.path().join("snippets.toml"),
            "view_in_browser = \"x\"\n",
        )
        .unwrap();
        let e = Templates::load(Some(dir.path()), &n)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("snippets.toml is no longer read") && e.contains("en.ftl"),
            "{e}"
        );
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
