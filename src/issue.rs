//! The domain model of one issue: its id, its entries and their labelled sections.
//!
//! Everything here is already parsed and validated: past `content` and `feed` there are no raw
//! date strings or URLs. `render` turns these values into HTML and text without doing any I/O.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use url::Url;

/// One edition, named by its month: `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IssueId {
    year: i32,
    month: u32,
}

impl IssueId {
    /// The issue of the month that `date` falls in.
    pub fn of_date(date: NaiveDate) -> IssueId {
        IssueId {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    /// The first day of the issue's month.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("validated month")
    }

    /// The first day of the following month (the end, exclusive, of this issue's calendar month).
    pub fn next_first_day(self) -> NaiveDate {
        let (y, m) = if self.month == 12 {
            (self.year + 1, 1)
        } else {
            (self.year, self.month + 1)
        };
        NaiveDate::from_ymd_opt(y, m, 1).expect("validated month")
    }
}

impl fmt::Display for IssueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The error of parsing an [`IssueId`].
#[derive(Debug, thiserror::Error)]
#[error("invalid issue id `{0}`: expected YYYY-MM, like 2021-07")]
pub struct InvalidIssueId(String);

impl FromStr for IssueId {
    type Err = InvalidIssueId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidIssueId(s.to_string());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || year < 1900 {
            return Err(bad());
        }
        Ok(IssueId { year, month })
    }
}

/// One edition, ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    pub id: IssueId,
    /// The date printed in the masthead.
    pub date: NaiveDate,
    /// Overrides the subject line built from the newsletter's name and the date.
    pub subject: Option<String>,
    /// Overrides the newsletter's standing intro paragraph.
    pub intro: Option<String>,
    /// The preview line mail clients show after the subject; default: the intro, shortened.
    pub preheader: Option<String>,
    /// In display order; `Entry::number` is the number printed.
    pub entries: Vec<Entry>,
}

/// One numbered item of an issue.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The number printed before the title (1, 2, ...), assigned after ordering.
    pub number: u32,
    /// Plain text: no markup, no control characters.
    pub title: String,
    /// The date of the event the entry is about.
    pub date: NaiveDate,
    /// The "Learn more" link.
    pub link: Url,
    /// The labelled paragraphs, in order.
    pub sections: Vec<Section>,
    /// Where the entry came from (for messages and for the feed ledger).
    pub source: EntrySource,
}

/// Where an entry came from.
#[derive(Clone, Debug, PartialEq)]
pub enum EntrySource {
    /// A Markdown file in the issue's folder.
    File(PathBuf),
    /// An item of a remote feed; `item_key` is the item's id, or its link when it has none.
    /// `lang` is the language it is in, as its feed's `lang` in the config or the feed itself
    /// says (`None`: not said, or not a language tag): which editions it goes into.
    Feed {
        feed_url: Url,
        label: Option<String>,
        item_key: String,
        lang: Option<crate::lang::Lang>,
    },
}

/// A labelled paragraph: "**Institutional context** - ...".
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// The bold label; `None` for text before the first `## Label` heading.
    pub label: Option<String>,
    pub body: Body,
}

/// The body of a section.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// Parsed from Markdown: blocks of inline text, escaped at render time.
    Blocks(Vec<Block>),
    /// From a feed: HTML already cleaned to a small allow-list, and a plain-text rendering of it.
    Sanitized(SanitizedHtml),
}

/// HTML that went through the feed sanitizer; the only way HTML from outside reaches a message.
#[derive(Clone, Debug, PartialEq)]
pub struct SanitizedHtml {
    html: String,
    text: String,
}

impl SanitizedHtml {
    /// Wraps HTML that the caller has cleaned with the feed allow-list, and its text rendering.
    /// Only `feed` calls this.
    pub fn from_cleaned(html: String, text: String) -> Self {
        SanitizedHtml { html, text }
    }

    pub fn html(&self) -> &str {
        &self.html
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A block of a Markdown section.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    Paragraph(Vec<Inline>),
    /// A bulleted list: one item a line of inlines.
    List(Vec<Vec<Inline>>),
}

/// Inline text with the few kinds of markup an entry may use.
#[derive(Clone, Debug, PartialEq)]
pub enum Inline {
    Text(String),
    Strong(Vec<Inline>),
    Emphasis(Vec<Inline>),
    Code(String),
    Link { url: Url, children: Vec<Inline> },
    LineBreak,
}

impl Inline {
    /// The text of a run of inlines with all markup dropped.
    pub fn plain(inlines: &[Inline]) -> String {
        let mut out = String::new();
        fn walk(inlines: &[Inline], out: &mut String) {
            for i in inlines {
                match i {
                    Inline::Text(t) | Inline::Code(t) => out.push_str(t),
                    Inline::Strong(c) | Inline::Emphasis(c) | Inline::Link { children: c, .. } => {
                        walk(c, out)
                    }
                    Inline::LineBreak => out.push(' '),
                }
            }
        }
        walk(inlines, &mut out);
        out
    }
}

/// Text for a single-line field (a title, a name): control characters removed and runs of
/// whitespace, CR and LF included, folded into one space.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The longest display name brief keeps, in characters: longer ones (a CSV cell, the sign-up
/// form, `subscribers add --name`) are cut to this, and the `To:` header is written from at
/// most this many, whatever the ledger holds.
pub const NAME_MAX: usize = 200;

/// A reader's display name as brief keeps it: on one line ([`one_line`]), at most
/// [`NAME_MAX`] characters, `None` when nothing is left.
pub fn display_name(s: &str) -> Option<String> {
    let line = one_line(s);
    let capped = match line.char_indices().nth(NAME_MAX) {
        Some((at, _)) => line[..at].trim_end().to_string(),
        None => line,
    };
    Some(capped).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_id_round_trips_and_rejects_bad_forms() {
        let id: IssueId = "2021-07".parse().unwrap();
        assert_eq!(id.to_string(), "2021-07");
        assert_eq!(
            id.next_first_day(),
            NaiveDate::from_ymd_opt(2021, 8, 1).unwrap()
        );
        let dec: IssueId = "2021-12".parse().unwrap();
        assert_eq!(
            dec.next_first_day(),
            NaiveDate::from_ymd_opt(2022, 1, 1).unwrap()
        );
        for bad in [
            "2021-7", "2021-13", "21-07", "2021_07", "abcd-ef", "2021-00",
        ] {
            assert!(bad.parse::<IssueId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn one_line_folds_breaks_and_controls() {
        assert_eq!(one_line(" a\r\nBcc: x\u{7}y \t z "), "a Bcc: x y z");
    }

    #[test]
    fn display_names_are_one_line_and_capped() {
        assert_eq!(display_name(" Ana\r\n García "), Some("Ana García".into()));
        assert_eq!(display_name(" \t "), None);
        let long = "ñ".repeat(NAME_MAX + 50);
        assert_eq!(display_name(&long), Some("ñ".repeat(NAME_MAX)));
        let spaced = format!("{} b", "a".repeat(NAME_MAX - 1));
        assert_eq!(display_name(&spaced), Some("a".repeat(NAME_MAX - 1)));
    }
}
