//! Reads an issue folder (`content/ID/`) into an [`Issue`], reporting every problem at once.
//!
//! An issue folder holds an optional `issue.toml` and one Markdown file per entry with TOML front
//! matter between `+++` lines. Loading either yields a whole, valid issue or the full list of
//! problems as `path:line: message`: an issue with problems is never rendered for sending.
//! This module knows nothing of rendering or SMTP.

mod front_matter;
mod markdown;
mod values;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use values::parse_date;
use values::toml_problem;

use crate::error::{Problem, ProblemKind, Problems};
use crate::issue::{one_line, Entry, Issue, IssueId};

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

/// `issue.toml`: what an issue may say about itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueFile {
    /// The date printed in the masthead; default: the newest entry's date.
    date: Option<toml::Spanned<toml::Value>>,
    /// The subject line, instead of the one built from the newsletter name and the date.
    subject: Option<String>,
    /// The intro paragraph, instead of the newsletter's standing one.
    intro: Option<String>,
    /// The preview line after the subject in the inbox; default: the intro, shortened.
    preheader: Option<String>,
}

/// Loads `dir/ID/` into an issue, or returns every problem found in it.
pub fn load_issue(dir: &Path, id: IssueId) -> Result<Issue, Problems> {
    let folder = dir.join(id.to_string());
    let mut problems = Vec::new();
    let files = match std::fs::read_dir(&folder) {
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
            return Err(Problems(vec![Problem::whole(&folder, msg)]));
        }
    };

    let mut issue_file = IssueFile::default();
    let mut issue_date = None;
    let mut entries: Vec<(Option<u32>, Entry)> = Vec::new();
    let mut numbers: HashMap<u32, PathBuf> = HashMap::new();

    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            problems.push(Problem::whole(
                path,
                format!(
                    "a folder inside an issue folder is not read: move its entries up into {}, or the folder out of the content folder",
                    folder.display()
                ),
            ));
            continue;
        }
        if name != "issue.toml" && !is_entry_file(name) {
            problems.push(Problem::whole(path, not_an_entry(name)));
            continue;
        }
        let text = match read_utf8(path) {
            Ok(t) => t,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        if name == "issue.toml" {
            match toml::from_str::<IssueFile>(&text) {
                Ok(f) => {
                    if let Some(d) = &f.date {
                        let line = crate::config::line_of(&text, d.span().start);
                        match front_matter::as_date(d.get_ref()) {
                            Ok(date) if IssueId::of_date(date) != id => problems.push(Problem::at(
                                path,
                                line,
                                format!("`date` {date} is not in the month of issue {id}"),
                            )),
                            Ok(date) => issue_date = Some(date),
                            Err(m) => {
                                problems.push(Problem::at(path, line, format!("`date`: {m}")))
                            }
                        }
                    }
                    issue_file = f;
                }
                Err(e) => problems.push(toml_problem(path, &text, 0, &e)),
            }
            continue;
        }
        match front_matter::parse_entry(path, &text) {
            Ok((number, entry)) => {
                if let Some(n) = number {
                    if let Some(first) = numbers.get(&n.value) {
                        problems.push(Problem::at(
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
                entries.push((number.map(|n| n.value), entry));
            }
            Err(mut ps) => problems.append(&mut ps),
        }
    }

    if entries.is_empty() && problems.is_empty() {
        problems.push(
            Problem::whole(
                &folder,
                "the issue has no entries: add one Markdown file per entry",
            )
            .kind(ProblemKind::NoEntries),
        );
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }

    // Numbered entries first, in number order; then the rest by date; the file name breaks ties.
    entries.sort_by_key(|(n, e)| (n.unwrap_or(u32::MAX), e.date));
    let mut entries: Vec<Entry> = entries.into_iter().map(|(_, e)| e).collect();
    renumber(&mut entries);
    let date = issue_date
        .or_else(|| entries.iter().map(|e| e.date).max())
        .unwrap_or_else(|| id.first_day());
    Ok(Issue {
        id,
        date,
        subject: issue_file.subject.map(|s| one_line(&s)),
        intro: issue_file.intro.map(|s| s.trim().to_string()),
        preheader: issue_file
            .preheader
            .map(|s| one_line(&s))
            .filter(|s| !s.is_empty()),
        entries,
    })
}

/// Whether a file of an issue folder is an entry: a Markdown file, `.md` or `.markdown` in any
/// case (`.DS_Store` and other hidden files are never entries).
pub fn is_entry_file(name: &str) -> bool {
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !name.starts_with('.') => ext,
        _ => return false,
    };
    ext.eq_ignore_ascii_case("md") || ext.eq_ignore_ascii_case("markdown")
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

/// Adds feed entries to an issue: they join the folder's entries by date (the folder's own order
/// is kept), and everything is numbered again.
/// A fingerprint of the issue folder `dir/ID/` as it is on disk: a SHA-256 over the name and
/// bytes of every file in it, in name order. `None` when the folder cannot be read (no folder:
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

/// Whether an issue folder holds at least one entry file (without reading any).
pub fn has_entry_files(folder: &Path) -> bool {
    std::fs::read_dir(folder).is_ok_and(|read| {
        read.filter_map(Result::ok)
            .any(|e| is_entry_file(&e.file_name().to_string_lossy()))
    })
}

#[cfg(test)]
mod tests {
    use super::is_entry_file;

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
}
