//! Reads the subscriber list (`email,name,lang` CSV; `name` and `lang` optional) one row at a
//! time, reporting bad rows by line.
//!
//! Rows stream to the caller: a list of any size is read in constant memory, and duplicates are
//! left to the ledger's unique key (addresses compare case-insensitively).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use anyhow::Context;
use lettre::Address;

use crate::address::parse_address;
use crate::error::{Problem, ProblemKind};
use crate::issue::display_name;
use crate::lang::Lang;

/// One reader from the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub address: Address,
    pub name: Option<String>,
    /// The reader's language as recorded (the `lang` cell, or the ledger's record), not yet
    /// resolved against `[newsletter] languages`: a tag brief does not write in is kept as
    /// written, and the send picks by prefix, else the default ([`crate::lang::Languages::pick`]).
    /// `None`: nothing recorded, the default language.
    pub lang: Option<Lang>,
}

/// Calls `row` for each subscriber of the CSV file at `path`, in file order: `Ok` for a good row,
/// `Err(problem)` for a bad one (with its line). Fails only when the file cannot be read at all or
/// has no `email` column.
pub fn read(
    path: &Path,
    row: impl FnMut(Result<Subscriber, Problem>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the subscriber list {}", path.display()))?;
    read_from(path, file, row)
}

/// As [`read`], from `file` (an upload, say), its problems named by `path`.
pub fn read_from(
    path: &Path,
    file: impl Read,
    mut row: impl FnMut(Result<Subscriber, Problem>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let feeds = Rc::new(RefCell::new(LineFeeds::default()));
    // Fields are trimmed here rather than by the reader, so that the line feeds inside a quoted
    // field can be counted.
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .comment(Some(b'#'))
        .from_reader(Counted {
            inner: file,
            read: 0,
            feeds: feeds.clone(),
        });
    let headers = rdr
        .byte_headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?
        .clone();
    let col = |name: &str| {
        headers.iter().position(|h| {
            // Excel's "CSV UTF-8" starts the file with a byte order mark.
            let h = h.strip_prefix("\u{feff}".as_bytes()).unwrap_or(h);
            h.eq_ignore_ascii_case(name.as_bytes())
        })
    };
    let email_col = col("email").with_context(|| {
        format!(
            "{}:1: no `email` column: the first line must be a header like `email,name`",
            path.display()
        )
    })?;
    let name_col = col("name");
    let lang_col = col("lang");
    let mut record = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                // The reader's own line count is off by the blank lines and comments before a
                // row, and by one after a CRLF; its byte position is exact. It stands just past
                // the byte that ended the row (`\n`, or the `\r` of a CRLF), or at the end of
                // the file: the line of that byte, less the line feeds inside the row's quoted
                // fields, is the row's first line.
                let end = rdr.position().byte().saturating_sub(1);
                let inside = record.as_slice().iter().filter(|&&b| b == b'\n').count();
                let line = feeds.borrow_mut().line_of(end) - inside;
                let field =
                    |i: usize| std::str::from_utf8(record.get(i).unwrap_or(b"").trim_ascii());
                let parsed = match (
                    field(email_col),
                    name_col.map(field).transpose(),
                    lang_col.map(field).transpose(),
                ) {
                    (Ok(e), Ok(n), Ok(l)) => parse_address(e)
                        .map_err(|m| m.to_string())
                        .and_then(|address| {
                            Ok(Subscriber {
                                address,
                                name: n.and_then(display_name),
                                lang: parse_lang(l)?,
                            })
                        })
                        .map_err(|m| bad_row(path, line, m)),
                    _ => Err(bad_row(
                        path,
                        line,
                        "not valid UTF-8: save the list as UTF-8",
                    )),
                };
                row(parsed)?;
            }
            Err(e) => {
                let line = feeds.borrow_mut().line_of(rdr.position().byte());
                row(Err(bad_row(path, line, format!("unreadable row: {e}"))))?;
            }
        }
    }
    Ok(())
}

/// A `lang` cell: empty (or no column) is `None`, the default language; a malformed tag is the
/// row's problem.
fn parse_lang(cell: Option<&str>) -> Result<Option<Lang>, String> {
    match cell.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => Lang::parse(c)
            .map(Some)
            .map_err(|e| format!("the `lang` column: {e}")),
    }
}

/// The file under the CSV reader, noting where each line feed is as the reader takes bytes.
struct Counted<R> {
    inner: R,
    /// Bytes handed to the reader so far.
    read: u64,
    feeds: Rc<RefCell<LineFeeds>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut feeds = self.feeds.borrow_mut();
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            feeds.ahead.push_back(self.read + i as u64);
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// The line feeds read so far: those before the last position asked about are only counted, so
/// memory stays within the reader's buffer.
#[derive(Default)]
struct LineFeeds {
    passed: usize,
    ahead: VecDeque<u64>,
}

impl LineFeeds {
    /// The 1-based line of the byte at `offset`; offsets must not go backwards between calls.
    fn line_of(&mut self, offset: u64) -> usize {
        while self.ahead.front().is_some_and(|&f| f < offset) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

fn bad_row(path: &Path, line: usize, message: impl Into<String>) -> Problem {
    Problem::at(path, line, message).kind(ProblemKind::Subscriber)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bad rows of a list with these bytes, as `path:line: message` (the path as written).
    fn bad_rows(bytes: &str) -> (std::path::PathBuf, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(&p, bytes).unwrap();
        let mut bad = Vec::new();
        read(&p, |r| {
            if let Err(p) = r {
                bad.push(p.to_string());
            }
            Ok(())
        })
        .unwrap();
        (p, bad)
    }

    fn at(p: &Path, line: usize, address: &str) -> String {
        format!(
            "{}:{line}: `{address}` is not a valid email address (Missing domain or user)",
            p.display()
        )
    }

    #[test]
    fn a_crlf_list_reports_bad_rows_at_their_own_line() {
        // What Excel's "CSV UTF-8" export writes: a byte order mark, then CRLF lines.
        let (p, bad) = bad_rows(
            "\u{feff}email,name\r\nana@example.org,Ana\r\nbob,Bob\r\ncarl@example.org,Carl\r\ndan,Dan\r\neve",
        );
        assert_eq!(bad, [at(&p, 3, "bob"), at(&p, 5, "dan"), at(&p, 6, "eve")]);
    }

    #[test]
    fn blank_lines_and_comments_before_a_bad_row_do_not_shift_its_line() {
        let (p, bad) =
            bad_rows("email,name\nana@example.org,Ana\n\nbob,Bob\n\n\n# a comment\ncarl,Carl\n");
        assert_eq!(bad, [at(&p, 4, "bob"), at(&p, 8, "carl")]);
        let (p, bad) = bad_rows("email,name\r\n\r\nana@example.org,Ana\r\n\r\nbob,Bob\r\n");
        assert_eq!(bad, [at(&p, 5, "bob")]);
    }

    #[test]
    fn a_row_with_a_name_over_two_lines_is_reported_at_its_first_line() {
        let (p, bad) = bad_rows(
            "email,name\nana@example.org,\"Ana\nGarcía\"\nbob,\"Bob\r\nSmith\"\ncarl,Carl\n",
        );
        assert_eq!(bad, [at(&p, 4, "bob"), at(&p, 6, "carl")]);
    }

    #[test]
    fn bad_rows_are_reported_with_their_line_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(
            &p,
            "email,name\nana@example.org,Ana\nnot-an-address,Bob\n\n# comment\nCARL@example.org, Carl \r\n",
        )
        .unwrap();
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        read(&p, |r| {
            match r {
                Ok(s) => good.push(s),
                Err(p) => bad.push(p.to_string()),
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(good.len(), 2);
        assert_eq!(good[1].name.as_deref(), Some("Carl"));
        assert_eq!(
            crate::address::AddressKey::of(&good[1].address).as_str(),
            "carl@example.org"
        );
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].ends_with(
                "s.csv:3: `not-an-address` is not a valid email address (Missing domain or user)"
            ),
            "{}",
            bad[0]
        );
    }

    #[test]
    fn the_lang_column_is_read_as_written_and_a_malformed_tag_is_a_bad_row_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(
            &p,
            "email,name,lang\nana@example.org,Ana,es\nbo@example.org,Bo,\ncy@example.org,Cy,ES_mx\n\
             dee@example.org,Dee,spanish!\neve@example.org,Eve\nfay@example.org,Fay, fr \n",
        )
        .unwrap();
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        read(&p, |r| {
            match r {
                Ok(s) => good.push((s.address.to_string(), s.lang.map(|l| l.to_string()))),
                Err(p) => bad.push(p.to_string()),
            }
            Ok(())
        })
        .unwrap();
        let lang = |s: &str| Some(s.to_string());
        assert_eq!(
            good,
            [
                ("ana@example.org".into(), lang("es")),
                // Empty, or a row short of the column: nothing recorded, the default.
                ("bo@example.org".into(), None),
                ("cy@example.org".into(), lang("es-MX")),
                ("eve@example.org".into(), None),
                // A language brief may not write in is kept as written: the send picks.
                ("fay@example.org".into(), lang("fr")),
            ]
        );
        assert_eq!(
            bad,
            [format!(
                "{}:5: the `lang` column: `spanish!` is not a language tag (BCP 47, like `en`, `es` or `es-MX`)",
                p.display()
            )]
        );

        // No `lang` column at all: every reader has the default.
        std::fs::write(&p, "email,name\nana@example.org,Ana\n").unwrap();
        let mut langs = Vec::new();
        read(&p, |r| {
            langs.push(r.unwrap().lang);
            Ok(())
        })
        .unwrap();
        assert_eq!(langs, [None]);
    }
}
