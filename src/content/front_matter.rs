//! Splits an entry file into its `+++` TOML front matter and Markdown body, and checks the fields.

use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::markdown;
use super::values::{parse_date, toml_problem, with_https};
use crate::error::{Invalid, Problem};
use crate::issue::{one_line, Entry, EntrySource, Section};

/// The front matter of an entry. Fields are optional here so that every missing one is reported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    /// The entry's title.
    title: Option<Spanned<String>>,
    /// The event date.
    date: Option<Spanned<toml::Value>>,
    /// The "Learn more" link.
    link: Option<Spanned<String>>,
    /// The entry's place in the issue.
    number: Option<Spanned<i64>>,
}

/// Where the front matter sits in the file.
struct Split<'a> {
    /// The TOML text between the `+++` lines.
    toml: &'a str,
    /// The line of the opening `+++` (1-based).
    open_line: usize,
    /// The Markdown after the closing `+++`.
    body: &'a str,
    /// The line the body starts on.
    body_line: usize,
}

fn split<'a>(path: &Path, text: &'a str) -> Result<Split<'a>, Problem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n').enumerate();
    // Blank lines before the front matter are allowed; anything else is not.
    let open = loop {
        match lines.next() {
            Some((_, l)) if l.trim().is_empty() => continue,
            Some((i, l)) if l.trim_end() == "+++" => break i,
            Some((i, _)) => {
                return Err(Problem::at(
                    path,
                    i + 1,
                    "no front matter: did you forget the `+++` lines? An entry starts with `+++`, then title, date and link, then `+++`",
                ))
            }
            None => {
                return Err(Problem::at(
                    path,
                    1,
                    "the file is empty: an entry needs front matter between `+++` lines",
                ))
            }
        }
    };
    let start: usize = text
        .split_inclusive('\n')
        .take(open + 1)
        .map(str::len)
        .sum();
    let mut offset = start;
    for (i, l) in lines {
        if l.trim_end() == "+++" {
            return Ok(Split {
                toml: &text[start..offset],
                open_line: open + 1,
                body: &text[offset + l.len()..],
                body_line: i + 2,
            });
        }
        offset += l.len();
    }
    Err(Problem::at(
        path,
        open + 1,
        "the front matter opened here with `+++` is never closed: add a `+++` line after the last field",
    ))
}

/// A date field: a TOML date (`2021-06-15`) or a string in that form.
pub(super) fn as_date(v: &toml::Value) -> Result<NaiveDate, Invalid> {
    match v {
        toml::Value::String(s) => parse_date(s),
        toml::Value::Datetime(dt) => match (dt.date, dt.time) {
            (Some(d), None) => NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())
                .ok_or_else(|| Invalid(format!("invalid date `{dt}`"))),
            _ => Err(Invalid(format!(
                "`{dt}` has a time: write only the date, like 2021-07-23"
            ))),
        },
        other => Err(Invalid(format!(
            "expected a date like 2021-07-23, found a {}",
            other.type_str()
        ))),
    }
}

/// An entry's ordering number from the front matter, with the line that sets it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Number {
    pub value: u32,
    pub line: usize,
}

/// The checked fields of the front matter; `None` where a problem was reported.
#[derive(Default)]
struct Fields {
    title: Option<String>,
    date: Option<NaiveDate>,
    link: Option<Url>,
    number: Option<Number>,
}

/// Parses one entry file, with its optional ordering number.
///
/// Past the `+++` lines, every problem is reported at once: a front matter that does not parse
/// is one problem, and the body is still read for its own.
pub(super) fn parse_entry(
    path: &Path,
    text: &str,
) -> Result<(Option<Number>, Entry), Vec<Problem>> {
    let parts = parse_parts(path, text, Need::Whole)?;
    let (Some(title), Some(date), Some(link)) =
        (parts.fields.title, parts.fields.date, parts.fields.link)
    else {
        unreachable!("every missing part was reported as a problem")
    };
    Ok((
        parts.fields.number,
        Entry {
            number: 0,
            title,
            date,
            link,
            sections: parts.sections,
            source: EntrySource::File(path.to_path_buf()),
        },
    ))
}

/// A translation file (`01-x.es.md`), read: what it sets over its entry.
pub(super) struct Translation {
    pub title: String,
    /// `None`: the entry's date.
    pub date: Option<NaiveDate>,
    /// `None`: the entry's link.
    pub link: Option<Url>,
    /// The `number` it repeats, if any (it must be the entry's).
    pub number: Option<Number>,
    pub sections: Vec<Section>,
    /// The line its body starts on.
    pub body_line: usize,
}

/// Parses a translation file: an entry file whose `date` and `link` may be left out.
pub(super) fn parse_translation(path: &Path, text: &str) -> Result<Translation, Vec<Problem>> {
    let parts = parse_parts(path, text, Need::Title)?;
    let Some(title) = parts.fields.title else {
        unreachable!("a missing title was reported as a problem")
    };
    Ok(Translation {
        title,
        date: parts.fields.date,
        link: parts.fields.link,
        number: parts.fields.number,
        sections: parts.sections,
        body_line: parts.body_line,
    })
}

/// Which fields a file must set: all of them (an entry), or only the title (a translation).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Whole,
    Title,
}

/// The checked parts of a file without problems.
struct Parts {
    fields: Fields,
    sections: Vec<Section>,
    body_line: usize,
}

fn parse_parts(path: &Path, text: &str, need: Need) -> Result<Parts, Vec<Problem>> {
    let split = split(path, text).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let fields = match toml::from_str::<FrontMatter>(split.toml) {
        Ok(fm) => fields(path, &split, &fm, need, &mut problems),
        Err(e) => {
            problems.push(toml_problem(path, split.toml, split.open_line, &e));
            Fields::default()
        }
    };
    let sections = match markdown::sections(path, split.body, split.body_line) {
        Ok(s) if s.is_empty() => {
            problems.push(Problem::at(
                path,
                split.body_line,
                "the entry has no text: add `## Institutional context` and a paragraph",
            ));
            Vec::new()
        }
        Ok(s) => s,
        Err(mut ps) => {
            problems.append(&mut ps);
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Parts {
        fields,
        sections,
        body_line: split.body_line,
    })
}

/// Checks the fields of a front matter that parsed, adding what is wrong to `problems`.
fn fields(
    path: &Path,
    split: &Split,
    fm: &FrontMatter,
    need: Need,
    problems: &mut Vec<Problem>,
) -> Fields {
    let line = |span: std::ops::Range<usize>| {
        split.open_line + crate::config::line_of(split.toml, span.start)
    };
    let missing = |field: &str, example: &str| {
        Problem::at(
            path,
            split.open_line,
            format!("missing field `{field}` in the front matter (e.g. {example})"),
        )
    };

    let title = match &fm.title {
        Some(t) if one_line(t.get_ref()).is_empty() => {
            problems.push(Problem::at(path, line(t.span()), "`title` is empty"));
            None
        }
        Some(t) => Some(one_line(t.get_ref())),
        None => {
            problems.push(missing(
                "title",
                "title = \"USMCA Meeting: Ministry Level\"",
            ));
            None
        }
    };
    let date = match &fm.date {
        Some(d) => match as_date(d.get_ref()) {
            Ok(date) => Some(date),
            Err(m) => {
                problems.push(Problem::at(path, line(d.span()), format!("`date`: {m}")));
                None
            }
        },
        None if need == Need::Whole => {
            problems.push(missing("date", "date = 2021-07-07"));
            None
        }
        None => None,
    };
    let link = match &fm.link {
        Some(l) => {
            let text = l.get_ref().trim();
            let problem = |m: String| Problem::at(path, line(l.span()), m);
            match (Url::parse(text), with_https(text)) {
                (_, Some(fixed)) => {
                    problems.push(problem(format!(
                        "`link`: `{text}` has no scheme: did you mean `{fixed}`?"
                    )));
                    None
                }
                (Ok(u), None) if u.scheme() == "https" || u.scheme() == "http" => Some(u),
                (Ok(u), None) => {
                    problems.push(problem(format!(
                        "`link` must be an http or https URL, not {}:",
                        u.scheme()
                    )));
                    None
                }
                (Err(url::ParseError::RelativeUrlWithoutBase), None) => {
                    problems.push(problem(format!(
                        "`link`: invalid URL `{text}`: write the full address, starting with https://"
                    )));
                    None
                }
                (Err(e), None) => {
                    problems.push(problem(format!(
                        "`link`: invalid URL `{text}` ({e}): write the full address, starting with https://"
                    )));
                    None
                }
            }
        }
        None if need == Need::Whole => {
            problems.push(missing("link", "link = \"https://example.org/news\""));
            None
        }
        None => None,
    };
    let number = match &fm.number {
        Some(n) if *n.get_ref() < 1 || *n.get_ref() > 999 => {
            problems.push(Problem::at(
                path,
                line(n.span()),
                format!("`number` must be between 1 and 999, not {}", n.get_ref()),
            ));
            None
        }
        Some(n) => Some(Number {
            value: *n.get_ref() as u32,
            line: line(n.span()),
        }),
        None => None,
    };
    Fields {
        title,
        date,
        link,
        number,
    }
}
