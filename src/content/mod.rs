//! Reads an issue folder (`content/ID/`) into an [`Issue`], reporting every problem at once.
//!
//! An issue folder holds an optional `issue.toml` and one Markdown file per entry with TOML front
//! matter between `+++` lines. Loading either yields a whole, valid issue or the full list of
//! problems as `path:line: message`: an issue with problems is never rendered for sending.
//! This module knows nothing of rendering or SMTP.
//!
//! # Languages
//! The entry files are in the default language. Beside each, `01-x.es.md` is its translation
//! into `es` (another language of `[newsletter] languages`): the same front matter, where `date`
//! and `link` may be left out and are then the entry's, and the same `## Label` sections,
//! translated. `issue.toml`'s `[es]` table holds the Spanish `subject`, `intro` and
//! `preheader`. [`load_issue`] reads the default language only; [`load_issue_in`] one language;
//! [`load_editions`] all of them, with every problem of every language (a missing translation,
//! a missing title or text, a translation without its entry, a language not configured).
//!
//! A file is a translation when its name ends, before `.md`, in a dot and a language tag
//! (`.es`, `.pt-BR`); a dotted name that is not a language tag (`01-x.v2.md`, `01-x.final.md`)
//! stays an entry of its own, as before languages. With several languages configured, a
//! tag-like word that is no configured language (`01-dr.who.md`) is reported by
//! `load_editions` (so by `brief check`) as an unknown language; `load_issue` leaves such a
//! file out of the default language, and so does a single-language newsletter, which reads no
//! translation at all.

mod front_matter;
mod markdown;
mod names;
mod values;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;

use front_matter::Number;
use names::language_name;
pub use names::translation_of;
pub use values::parse_date;
use values::toml_problem;

use crate::error::{Problem, ProblemKind, Problems};
use crate::issue::{one_line, Entry, EntrySource, Issue, IssueId};
use crate::lang::{Lang, Languages};

/// The issue folders in `dir`, oldest first. Folders whose names are not `YYYY-MM` are ignored.
pub fn list_issues(dir: &Path) -> anyhow::Result<Vec<IssueId>> {
    use anyhow::Context;
    let mut ids = Vec::new();
    let read = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the content folder {}", dir.display()))?;
    for entry in read {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

/// `issue.toml`: what an issue may say about itself, in the default language. Its `[es]` tables
/// (one per other language, [`IssueTexts`]) are taken out before these keys are read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueFile {
    /// The date printed in the masthead; default: the newest entry's date.
    date: Option<Spanned<toml::Value>>,
    /// The subject line, instead of the one built from the newsletter name and the date.
    subject: Option<Spanned<String>>,
    /// The intro paragraph, instead of the newsletter's standing one.
    intro: Option<Spanned<String>>,
    /// The preview line after the subject in the inbox; default: the intro, shortened.
    preheader: Option<Spanned<String>>,
}

/// A `[LANG]` table of `issue.toml`: the issue's texts for readers of that language.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueTexts {
    subject: Option<String>,
    intro: Option<String>,
    preheader: Option<String>,
}

/// `issue.toml`, read.
struct Settings {
    path: PathBuf,
    text: String,
    file: IssueFile,
    /// Its `[LANG]` tables, each with the line of its header; a table that does not read is
    /// its problem.
    tables: Vec<(Lang, usize, Result<IssueTexts, Problem>)>,
}

/// A default-language entry file of the folder.
struct EntryFile {
    path: PathBuf,
    /// Its name without the extension: what its translations are named after.
    stem: String,
    /// Its entry and number; `None` when it has problems (they are the folder's).
    parsed: Option<(Option<Number>, Entry)>,
}

/// A translation file (`01-x.es.md`), not read yet.
struct TranslationFile {
    path: PathBuf,
    /// The stem of the entry it translates.
    base: String,
    lang: Lang,
}

/// An issue folder as read once: the default language's files parsed, with their problems,
/// and the translations found beside them.
struct Folder {
    path: PathBuf,
    id: IssueId,
    /// The default language's problems: what [`load_issue`] reports.
    problems: Vec<Problem>,
    issue_date: Option<NaiveDate>,
    settings: Option<Settings>,
    entries: Vec<EntryFile>,
    translations: Vec<TranslationFile>,
}

/// Loads `dir/ID/` into an issue in the default language, or returns every problem found in it.
/// Translation files (`01-x.es.md`) and `issue.toml`'s `[LANG]` tables are left out: they are
/// read by [`load_issue_in`] and [`load_editions`].
pub fn load_issue(dir: &Path, id: IssueId) -> Result<Issue, Problems> {
    let folder = read_folder(dir, id)?;
    default_issue(&folder).map_err(Problems)
}

/// Loads `dir/ID/` as readers of `lang` get it: each entry's translation into `lang` over the
/// entry (its title and sections, and its date and link when it sets them), and `issue.toml`'s
/// `[lang]` table over its top-level texts. For the default language, [`load_issue`].
///
/// An entry without a translation into `lang`, a translation without its entry, and a text of
/// `issue.toml` without its `[lang]` counterpart are problems: an issue is never sent half
/// translated.
pub fn load_issue_in(
    dir: &Path,
    id: IssueId,
    lang: &Lang,
    languages: &Languages,
) -> Result<Issue, Problems> {
    if lang == languages.default_lang() {
        return load_issue(dir, id);
    }
    if !languages.all().contains(lang) {
        return Err(Problems(vec![Problem::whole(
            &dir.join(id.to_string()),
            format!(
                "no edition in `{lang}`: `newsletter.languages` lists {}",
                languages
            ),
        )]));
    }
    let folder = read_folder(dir, id)?;
    let default = default_issue(&folder);
    let mut problems = default.as_ref().err().cloned().unwrap_or_default();
    problems.extend(
        language_problems(&folder, languages)
            .into_iter()
            .filter(|(l, _)| l.as_ref() == Some(lang))
            .map(|(_, p)| p),
    );
    let issue = translate(&folder, lang, default.as_ref().ok(), &mut problems);
    match issue {
        Some(i) if problems.is_empty() => Ok(i),
        _ => Err(Problems(problems)),
    }
}

/// Loads `dir/ID/` once per configured language, the default first: the editions readers get,
/// or every problem of every language together. Besides the problems of [`load_issue_in`], a
/// file or `issue.toml` table named for a language that `languages` does not list, or for the
/// default language, is a problem.
///
/// With one language configured this is `[(default, load_issue(dir, id))]`: brief is then not
/// multilingual, and translation files are neither read nor checked (a folder may hold them
/// before their language is turned on).
pub fn load_editions(
    dir: &Path,
    id: IssueId,
    languages: &Languages,
) -> Result<Vec<(Lang, Issue)>, Problems> {
    if !languages.several() {
        return Ok(vec![(
            languages.default_lang().clone(),
            load_issue(dir, id)?,
        )]);
    }
    let folder = read_folder(dir, id)?;
    let default = default_issue(&folder);
    let mut problems = default.as_ref().err().cloned().unwrap_or_default();
    problems.extend(
        language_problems(&folder, languages)
            .into_iter()
            .map(|(_, p)| p),
    );
    let mut editions = Vec::new();
    if let Ok(issue) = &default {
        editions.push((languages.default_lang().clone(), issue.clone()));
    }
    for lang in &languages.all()[1..] {
        if let Some(issue) = translate(&folder, lang, default.as_ref().ok(), &mut problems) {
            editions.push((lang.clone(), issue));
        }
    }
    if problems.is_empty() {
        Ok(editions)
    } else {
        Err(Problems(problems))
    }
}

/// Reads the folder: `issue.toml`, every default-language entry (parsed, each problem noted)
/// and the names of the translations. Fails only when the folder cannot be listed.
fn read_folder(dir: &Path, id: IssueId) -> Result<Folder, Problems> {
    let path = dir.join(id.to_string());
    let files = match std::fs::read_dir(&path) {
        Ok(read) => {
            let mut files: Vec<PathBuf> = read.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            files.sort();
            files
        }
        Err(e) => {
            let msg = if e.kind() == std::io::ErrorKind::NotFound {
                format!("no such issue folder: create it with one Markdown file per entry ({e})")
            } else {
                format!("cannot read the issue folder: {e}")
            };
            return Err(Problems(vec![Problem::whole(&path, msg)]));
        }
    };

    let mut f = Folder {
        path,
        id,
        problems: Vec::new(),
        issue_date: None,
        settings: None,
        entries: Vec::new(),
        translations: Vec::new(),
    };
    let mut numbers: HashMap<u32, PathBuf> = HashMap::new();

    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            f.problems.push(Problem::whole(
                path,
                format!(
                    "a folder inside an issue folder is not read: move its entries up into {}, or the folder out of the content folder",
                    f.path.display()
                ),
            ));
            continue;
        }
        if let Some((base, lang)) = translation_of(name) {
            f.translations.push(TranslationFile {
                path: path.clone(),
                base: base.to_string(),
                lang,
            });
            continue;
        }
        if name != "issue.toml" && !is_entry_file(name) {
            f.problems.push(Problem::whole(path, not_an_entry(name)));
            continue;
        }
        let text = match read_utf8(path) {
            Ok(t) => t,
            Err(p) => {
                f.problems.push(p);
                if let Some(stem) = names::markdown_stem(name) {
                    f.entries.push(EntryFile {
                        path: path.clone(),
                        stem: stem.to_string(),
                        parsed: None,
                    });
                }
                continue;
            }
        };
        if name == "issue.toml" {
            read_settings(&mut f, path, text);
            continue;
        }
        let stem = names::markdown_stem(name).unwrap_or(name).to_string();
        let parsed = match front_matter::parse_entry(path, &text) {
            Ok((number, entry)) => {
                if let Some(n) = number {
                    if let Some(first) = numbers.get(&n.value) {
                        f.problems.push(Problem::at(
                            path,
                            n.line,
                            format!(
                                "duplicate number {}: {} has it too",
                                n.value,
                                first.display()
                            ),
                        ));
                    } else {
                        numbers.insert(n.value, path.clone());
                    }
                }
                Some((number, entry))
            }
            Err(mut ps) => {
                f.problems.append(&mut ps);
                None
            }
        };
        f.entries.push(EntryFile {
            path: path.clone(),
            stem,
            parsed,
        });
    }
    Ok(f)
}

/// Reads `issue.toml` into `f`: its `[LANG]` tables taken out, then its own keys.
fn read_settings(f: &mut Folder, path: &Path, text: String) {
    use toml::de::DeValue;
    let mut doc = match toml::de::DeTable::parse(&text) {
        Ok(doc) => doc,
        Err(e) => {
            f.problems.push(toml_problem(path, &text, 0, &e));
            return;
        }
    };
    let keys: Vec<String> = doc
        .get_ref()
        .iter()
        .filter(|(k, v)| {
            matches!(v.get_ref(), DeValue::Table(_)) && Lang::parse(k.get_ref()).is_ok()
        })
        .map(|(k, _)| k.get_ref().to_string())
        .collect();
    let mut tables = Vec::new();
    for key in keys {
        let Some((k, v)) = doc.get_mut().remove_entry(key.as_str()) else {
            continue;
        };
        let Ok(lang) = Lang::parse(k.get_ref()) else {
            continue;
        };
        let line = crate::config::line_of(&text, k.span().start);
        let texts = IssueTexts::deserialize(toml::de::ValueDeserializer::from(v))
            .map_err(|e| toml_problem(path, &text, 0, &e));
        tables.push((lang, line, texts));
    }
    match IssueFile::deserialize(toml::de::Deserializer::from(doc)) {
        Ok(file) => {
            if let Some(d) = &file.date {
                let line = crate::config::line_of(&text, d.span().start);
                match front_matter::as_date(d.get_ref()) {
                    Ok(date) if IssueId::of_date(date) != f.id => f.problems.push(Problem::at(
                        path,
                        line,
                        format!("`date` {date} is not in the month of issue {}", f.id),
                    )),
                    Ok(date) => f.issue_date = Some(date),
                    Err(m) => f
                        .problems
                        .push(Problem::at(path, line, format!("`date`: {m}"))),
                }
            }
            f.settings = Some(Settings {
                path: path.to_path_buf(),
                text: text.clone(),
                file,
                tables,
            });
        }
        Err(e) => f.problems.push(toml_problem(path, &text, 0, &e)),
    }
}

/// The default language's issue of a folder read, or its problems.
fn default_issue(f: &Folder) -> Result<Issue, Vec<Problem>> {
    let mut problems = f.problems.clone();
    if f.entries.is_empty() && problems.is_empty() {
        problems.push(
            Problem::whole(
                &f.path,
                "the issue has no entries: add one Markdown file per entry",
            )
            .kind(ProblemKind::NoEntries),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut entries: Vec<(Option<u32>, Entry)> = f
        .entries
        .iter()
        .filter_map(|e| e.parsed.clone())
        .map(|(n, e)| (n.map(|n| n.value), e))
        .collect();
    // Numbered entries first, in number order; then the rest by date; the file name breaks ties.
    entries.sort_by_key(|(n, e)| (n.unwrap_or(u32::MAX), e.date));
    let mut entries: Vec<Entry> = entries.into_iter().map(|(_, e)| e).collect();
    renumber(&mut entries);
    let date = f
        .issue_date
        .or_else(|| entries.iter().map(|e| e.date).max())
        .unwrap_or_else(|| f.id.first_day());
    let file = f.settings.as_ref().map(|s| &s.file);
    let text = |v: Option<&Spanned<String>>| v.map(|s| s.get_ref().clone());
    Ok(Issue {
        id: f.id,
        date,
        subject: text(file.and_then(|f| f.subject.as_ref())).map(|s| one_line(&s)),
        intro: text(file.and_then(|f| f.intro.as_ref())).map(|s| s.trim().to_string()),
        preheader: text(file.and_then(|f| f.preheader.as_ref()))
            .map(|s| one_line(&s))
            .filter(|s| !s.is_empty()),
        entries,
    })
}

/// The problems of the folder's translation files and `issue.toml` tables as files: named for
/// a language `languages` does not list or for the default language, translating an entry the
/// folder does not have, twice for one entry, or not reading. Each with the configured language
/// it concerns (`None`: none).
fn language_problems(f: &Folder, languages: &Languages) -> Vec<(Option<Lang>, Problem)> {
    let default = languages.default_lang();
    let listed = languages.to_string();
    let mut out = Vec::new();
    for (i, t) in f.translations.iter().enumerate() {
        let name = file_name(&t.path);
        if t.lang == *default {
            out.push((
                None,
                Problem::whole(
                    &t.path,
                    format!(
                        "`{}` is the default language: the text of `{name}` belongs in `{}.md`, without a language in its name",
                        t.lang, t.base
                    ),
                ),
            ));
        } else if !languages.all().contains(&t.lang) {
            out.push((
                None,
                Problem::whole(
                    &t.path,
                    format!(
                        "unknown language `{}`: `newsletter.languages` lists {listed} (if `{name}` is not a translation, take the dot out of its name, like `{}-{}.md`)",
                        t.lang, t.base, t.lang
                    ),
                ),
            ));
        } else if let Some(first) = f.translations[..i]
            .iter()
            .find(|o| o.base == t.base && o.lang == t.lang)
        {
            out.push((
                Some(t.lang.clone()),
                Problem::whole(
                    &t.path,
                    format!(
                        "a second {} translation of `{}`: {} is one already; keep one",
                        language_name(&t.lang),
                        t.base,
                        first.path.display()
                    ),
                ),
            ));
        } else if !f.entries.iter().any(|e| e.stem == t.base) {
            out.push((
                Some(t.lang.clone()),
                Problem::whole(
                    &t.path,
                    format!(
                        "a {} translation of `{}.md`, which is not in the folder: add that entry in the default language ({default}), or rename this file after the entry it translates",
                        language_name(&t.lang),
                        t.base
                    ),
                ),
            ));
        }
    }
    if let Some(s) = &f.settings {
        for (lang, line, texts) in &s.tables {
            if lang == default {
                out.push((
                    None,
                    Problem::at(
                        &s.path,
                        *line,
                        format!("`[{lang}]` is the default language: its texts are the keys at the top of issue.toml, before any table"),
                    ),
                ));
            } else if !languages.all().contains(lang) {
                out.push((
                    None,
                    Problem::at(
                        &s.path,
                        *line,
                        format!("unknown language `{lang}`: `newsletter.languages` lists {listed}"),
                    ),
                ));
            } else if let Err(p) = texts {
                out.push((Some(lang.clone()), p.clone()));
            }
        }
    }
    out
}

/// The edition of `lang` (not the default language): `default` with each entry's translation
/// over it and `issue.toml`'s `[lang]` texts over its own. Adds to `problems` what is missing
/// or wrong in the translations (entries, fields, texts); `None` when anything is, or when
/// `default` is `None` (its problems are reported by the caller).
fn translate(
    f: &Folder,
    lang: &Lang,
    default: Option<&Issue>,
    problems: &mut Vec<Problem>,
) -> Option<Issue> {
    let before = problems.len();
    let mut translated: HashMap<&Path, Entry> = HashMap::new();
    for e in &f.entries {
        let Some(t) = f
            .translations
            .iter()
            .find(|t| t.base == e.stem && t.lang == *lang)
        else {
            problems.push(Problem::whole(
                &e.path,
                format!(
                    "no {} translation: add {}.{lang}.md",
                    language_name(lang),
                    e.stem
                ),
            ));
            continue;
        };
        let text = match read_utf8(&t.path) {
            Ok(text) => text,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let tr = match front_matter::parse_translation(&t.path, &text) {
            Ok(tr) => tr,
            Err(mut ps) => {
                problems.append(&mut ps);
                continue;
            }
        };
        let Some((number, entry)) = &e.parsed else {
            continue;
        };
        let own = file_name(&e.path);
        if let Some(n) = tr.number {
            if number.map(|m| m.value) != Some(n.value) {
                let theirs = number.map_or("none".to_string(), |m| m.value.to_string());
                problems.push(Problem::at(
                    &t.path,
                    n.line,
                    format!(
                        "`number` {} is not the number of `{own}` ({theirs}): leave `number` out, a translation takes its entry's place",
                        n.value
                    ),
                ));
            }
        }
        if tr.sections.len() != entry.sections.len() {
            problems.push(Problem::at(
                &t.path,
                tr.body_line,
                format!(
                    "{} section(s), but `{own}` has {}: translate each of its `## Label` sections, in its order",
                    tr.sections.len(),
                    entry.sections.len()
                ),
            ));
        }
        translated.insert(
            e.path.as_path(),
            Entry {
                number: 0,
                title: tr.title,
                date: tr.date.unwrap_or(entry.date),
                link: tr.link.unwrap_or_else(|| entry.link.clone()),
                sections: tr.sections,
                source: EntrySource::File(t.path.clone()),
            },
        );
    }
    let mut texts = IssueTexts::default();
    if let Some(s) = &f.settings {
        let table = s.tables.iter().find(|(l, _, _)| l == lang);
        if let Some((_, _, Ok(t))) = table {
            texts = IssueTexts {
                subject: t.subject.clone(),
                intro: t.intro.clone(),
                preheader: t.preheader.clone(),
            };
        }
        for (key, own, theirs) in [
            ("subject", &s.file.subject, &texts.subject),
            ("intro", &s.file.intro, &texts.intro),
            ("preheader", &s.file.preheader, &texts.preheader),
        ] {
            if let (Some(own), None) = (own, theirs) {
                let fix = if table.is_some() {
                    format!("add `{key} = \"...\"` to its `[{lang}]` table")
                } else {
                    format!("add a `[{lang}]` table at the end with `{key} = \"...\"`")
                };
                problems.push(Problem::at(
                    &s.path,
                    crate::config::line_of(&s.text, own.span().start),
                    format!("`{key}` has no {} text: {fix}", language_name(lang)),
                ));
            }
        }
    }
    let default = default?;
    if problems.len() > before {
        return None;
    }
    let mut issue = default.clone();
    for entry in &mut issue.entries {
        let EntrySource::File(path) = &entry.source else {
            continue;
        };
        if let Some(mut t) = translated.remove(path.as_path()) {
            t.number = entry.number;
            *entry = t;
        }
    }
    if let Some(s) = texts.subject {
        issue.subject = Some(one_line(&s));
    }
    if let Some(s) = texts.intro {
        issue.intro = Some(s.trim().to_string());
    }
    if let Some(s) = texts
        .preheader
        .map(|s| one_line(&s))
        .filter(|s| !s.is_empty())
    {
        issue.preheader = Some(s);
    }
    Some(issue)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether a file of an issue folder is an entry in the default language: a Markdown file,
/// `.md` or `.markdown` in any case, whose name does not end in a language tag (`01-x.es.md` is
/// a translation: see [`translation_of`]). `.DS_Store` and other hidden files are never entries.
pub fn is_entry_file(name: &str) -> bool {
    names::markdown_stem(name).is_some() && translation_of(name).is_none()
}

/// The problem of a file in an issue folder that is neither an entry nor `issue.toml`.
fn not_an_entry(name: &str) -> String {
    if name.eq_ignore_ascii_case("issue.toml") {
        return "the issue's settings file must be called `issue.toml`, in lower case: rename it"
            .to_string();
    }
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    format!(
        "`{name}` is not an entry: an entry is a Markdown file ending in `.md` (rename it to \
         `{stem}.md`), and anything else belongs outside the issue folder"
    )
}

/// Gives entries their printed numbers, 1 to n, in their current order.
pub fn renumber(entries: &mut [Entry]) {
    for (i, e) in entries.iter_mut().enumerate() {
        e.number = i as u32 + 1;
    }
}

/// A fingerprint of the issue folder `dir/ID/` as it is on disk: a SHA-256 over the name and
/// bytes of every file in it (translations and `issue.toml` included), in name order. `None` when the folder cannot be read (no folder:
/// an issue that feeds alone fill). Two reads give the same fingerprint exactly when no file
/// was added, removed, renamed or edited in between.
pub fn fingerprint(dir: &Path, id: IssueId) -> Option<String> {
    use sha2::{Digest, Sha256};
    let folder = dir.join(id.to_string());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&f).ok()?;
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Some(format!("{:x}", h.finalize()))
}

/// Adds feed entries to an issue: they join the folder's entries by date (the folder's own order
/// is kept), and everything is numbered again.
pub fn merge_entries(issue: &mut Issue, mut extra: Vec<Entry>) {
    if extra.is_empty() {
        return;
    }
    extra.sort_by_key(|e| e.date);
    let mut merged = Vec::with_capacity(issue.entries.len() + extra.len());
    let mut extra = extra.into_iter().peekable();
    for e in std::mem::take(&mut issue.entries) {
        while let Some(x) = extra.next_if(|x| x.date < e.date) {
            merged.push(x);
        }
        merged.push(e);
    }
    merged.extend(extra);
    renumber(&mut merged);
    issue.entries = merged;
}

fn read_utf8(path: &Path) -> Result<String, Problem> {
    let bytes =
        std::fs::read(path).map_err(|e| Problem::whole(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..bad].iter().filter(|&&b| b == b'\n').count() + 1;
        Problem::at(
            path,
            line,
            format!("not valid UTF-8 (byte {bad}): save the file as UTF-8"),
        )
    })
}

/// Whether an issue folder holds at least one entry file in the default language (without
/// reading any; translations do not count).
pub fn has_entry_files(folder: &Path) -> bool {
    std::fs::read_dir(folder).is_ok_and(|read| {
        read.filter_map(Result::ok)
            .any(|e| is_entry_file(&e.file_name().to_string_lossy()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_entry_files_are_markdown_in_any_case_and_never_hidden() {
        for name in ["01.md", "01-a.MD", "a.Md", "b.markdown", "c.MARKDOWN"] {
            assert!(is_entry_file(name), "{name}");
        }
        for name in [
            ".md",
            ".hidden.md",
            ".DS_Store",
            "a.txt",
            "a.md.bak",
            "md",
            "issue.toml",
        ] {
            assert!(!is_entry_file(name), "{name}");
        }
    }

    #[test]
    fn a_language_tag_before_the_extension_makes_a_translation_and_other_dots_stay_entries() {
        let es = Lang::parse("es").unwrap();
        assert_eq!(translation_of("01-x.es.md"), Some(("01-x", es.clone())));
        assert_eq!(translation_of("01-x.ES.markdown"), Some(("01-x", es)));
        assert_eq!(
            translation_of("01-x.pt-BR.md").map(|(b, l)| (b, l.to_string())),
            Some(("01-x", "pt-BR".to_string()))
        );
        for name in [
            "01-x.md",
            "01-x.v2.md",
            "01-x.final.md",
            ".es.md",
            "es.md",
            "x.es.txt",
        ] {
            assert_eq!(translation_of(name), None, "{name}");
        }
        assert!(!is_entry_file("01-x.es.md"));
        assert!(is_entry_file("01-x.v2.md"));
        assert!(is_entry_file("es.md"));
    }

    fn langs(list: &[&str]) -> Languages {
        Languages::new(list.iter().map(|l| Lang::parse(l).unwrap()).collect()).unwrap()
    }

    fn es() -> Lang {
        Lang::parse("es").unwrap()
    }

    const JULY: &str = "2021-07";

    /// A content folder with `files` (name, text) in its issue `2021-07`.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(JULY)).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(JULY).join(name), text).unwrap();
        }
        dir
    }

    const ONE: &str = "+++\ntitle = \"Water council\"\ndate = 2021-07-05\nlink = \"https://example.org/one\"\nnumber = 1\n+++\n\n## Institutional context\n\nThe council.\n\n## The meeting\n\nIt met.\n";
    const ONE_ES: &str = "+++\ntitle = \"Consejo del agua\"\nnumber = 1\n+++\n\n## Contexto institucional\n\nEl consejo.\n\n## La reunión\n\nSe reunió.\n";
    const TWO: &str = "+++\ntitle = \"Trade\"\ndate = 2021-07-09\nlink = \"https://example.org/two\"\n+++\n\n## Institutional context\n\nTrade.\n";
    const TWO_ES: &str = "+++\ntitle = \"Comercio\"\ndate = 2021-07-10\nlink = \"https://example.org/es/dos\"\n+++\n\n## Contexto institucional\n\nComercio.\n";

    fn id() -> IssueId {
        JULY.parse().unwrap()
    }

    fn messages(p: Problems) -> Vec<String> {
        p.0.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_translation_takes_its_entrys_place_and_inherits_date_and_link_it_leaves_out() {
        let dir = folder(&[
            ("01-one.md", ONE),
            ("01-one.es.md", ONE_ES),
            ("02-two.md", TWO),
            ("02-two.es.md", TWO_ES),
            (
                "issue.toml",
                "subject = \"July\"\nintro = \"Hello\"\n\n[es]\nsubject = \"Julio\"\nintro = \"Hola\"\n",
            ),
        ]);
        let l = langs(&["en", "es"]);
        let en = load_issue(dir.path(), id()).unwrap();
        assert_eq!(en.entries.len(), 2, "translations are not entries");
        assert_eq!(en.entries[0].title, "Water council");
        assert_eq!(en.subject.as_deref(), Some("July"));
        assert_eq!(
            load_issue_in(dir.path(), id(), l.default_lang(), &l).unwrap(),
            en
        );

        let sp = load_issue_in(dir.path(), id(), &es(), &l).unwrap();
        assert_eq!(sp.subject.as_deref(), Some("Julio"));
        assert_eq!(sp.intro.as_deref(), Some("Hola"));
        assert_eq!(sp.date, en.date);
        let (one, two) = (&sp.entries[0], &sp.entries[1]);
        assert_eq!((one.number, one.title.as_str()), (1, "Consejo del agua"));
        // Left out: the entry's date and link.
        assert_eq!(one.date, en.entries[0].date);
        assert_eq!(one.link, en.entries[0].link);
        assert_eq!(
            one.sections[0].label.as_deref(),
            Some("Contexto institucional")
        );
        assert_eq!(one.sections[1].label.as_deref(), Some("La reunión"));
        assert_eq!(
            one.source,
            EntrySource::File(dir.path().join(JULY).join("01-one.es.md"))
        );
        // Set: its own.
        assert_eq!((two.number, two.title.as_str()), (2, "Comercio"));
        assert_eq!(two.date.to_string(), "2021-07-10");
        assert_eq!(two.link.as_str(), "https://example.org/es/dos");

        let editions = load_editions(dir.path(), id(), &l).unwrap();
        assert_eq!(
            editions,
            vec![(l.default_lang().clone(), en.clone()), (es(), sp)]
        );
        // One language: the default language's issue, whatever lies beside it.
        assert_eq!(
            load_editions(dir.path(), id(), &langs(&["en"])).unwrap(),
            vec![(Lang::parse("en").unwrap(), en)]
        );
    }

    #[test]
    fn every_missing_or_stray_translation_is_a_problem_with_its_file_and_line() {
        let dir = folder(&[
            ("01-one.md", ONE),
            // No title, and a number that is not its entry's.
            (
                "01-one.es.md",
                "+++\nnumber = 4\n+++\n\n## Contexto institucional\n\nEl consejo.\n\n## La reunión\n\nSe reunió.\n",
            ),
            ("02-two.md", TWO),
            ("03-gone.es.md", TWO_ES),
            ("04-x.fr.md", TWO),
            ("05-y.en.md", TWO),
            (
                "issue.toml",
                "date = 2021-07-23\nsubject = \"July\"\npreheader = \"Water\"\n\n[es]\nsubject = \"Julio\"\n\n[fr]\nsubject = \"Juillet\"\n",
            ),
        ]);
        let l = langs(&["en", "es"]);
        let got = messages(load_editions(dir.path(), id(), &l).unwrap_err());
        let at = |name: &str| dir.path().join(JULY).join(name).display().to_string();
        let want = [
            format!("{}: unknown language `fr`", at("04-x.fr.md")),
            format!("{}: `en` is the default language", at("05-y.en.md")),
            format!(
                "{}: a Spanish translation of `03-gone.md`, which is not in the folder",
                at("03-gone.es.md")
            ),
            format!("{}:8: unknown language `fr`", at("issue.toml")),
            format!("{}:1: missing field `title`", at("01-one.es.md")),
            format!(
                "{}: no Spanish translation: add 02-two.es.md",
                at("02-two.md")
            ),
            format!(
                "{}:3: `preheader` has no Spanish text: add `preheader = \"...\"` to its `[es]` table",
                at("issue.toml")
            ),
        ];
        for w in &want {
            assert!(
                got.iter().any(|g| g.starts_with(w.as_str())),
                "{w}\nnot in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
        // `fr` in a list that has it is a language like another.
        let l3 = langs(&["en", "es", "fr"]);
        let got = messages(load_editions(dir.path(), id(), &l3).unwrap_err());
        assert!(
            got.iter()
                .any(|g| g.contains("no French translation: add 01-one.fr.md")),
            "{got:#?}"
        );
        // One language reads none of it.
        assert!(load_editions(dir.path(), id(), &langs(&["en"])).is_ok());
        // A language not configured has no edition.
        let fr = Lang::parse("fr").unwrap();
        let got = messages(load_issue_in(dir.path(), id(), &fr, &l).unwrap_err());
        assert!(got[0].ends_with("no edition in `fr`: `newsletter.languages` lists en, es"));
        // One language's load names that language's problems only.
        let got = messages(load_issue_in(dir.path(), id(), &es(), &l).unwrap_err());
        assert!(!got.iter().any(|g| g.contains("`fr`")), "{got:#?}");
        assert!(got.iter().any(|g| g.contains("03-gone.es.md")), "{got:#?}");
    }

    #[test]
    fn a_translation_repeats_its_entrys_number_and_sections() {
        let dir = folder(&[
            ("01-one.md", ONE),
            (
                "01-one.es.md",
                "+++\ntitle = \"Consejo\"\nnumber = 2\n+++\n\n## Contexto institucional\n\nEl consejo.\n",
            ),
        ]);
        let l = langs(&["en", "es"]);
        let got = messages(load_editions(dir.path(), id(), &l).unwrap_err());
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].ends_with("01-one.es.md:3: `number` 2 is not the number of `01-one.md` (1): leave `number` out, a translation takes its entry's place"), "{got:#?}");
        assert!(got[1].ends_with("01-one.es.md:5: 1 section(s), but `01-one.md` has 2: translate each of its `## Label` sections, in its order"), "{got:#?}");
        // The default language's problems come once, with the translations' own.
        let dir = folder(&[("01-one.md", "+++\ntitle = \"x\"\n+++\n\n## A\n\nB\n")]);
        let got = messages(load_editions(dir.path(), id(), &l).unwrap_err());
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            got[2].contains("no Spanish translation: add 01-one.es.md"),
            "{got:#?}"
        );
    }

    #[test]
    fn the_fingerprint_covers_translations() {
        let dir = folder(&[("01-one.md", ONE), ("01-one.es.md", ONE_ES)]);
        let before = fingerprint(dir.path(), id()).unwrap();
        std::fs::write(dir.path().join(JULY).join("01-one.es.md"), TWO_ES).unwrap();
        assert_ne!(fingerprint(dir.path(), id()).unwrap(), before);
        assert!(has_entry_files(&dir.path().join(JULY)));
        let only = folder(&[("01-one.es.md", ONE_ES)]);
        assert!(!has_entry_files(&only.path().join(JULY)));
    }
}
