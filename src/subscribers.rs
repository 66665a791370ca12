//! Reads the subscriber list (`email,name` CSV) one row at a time, reporting bad rows by line.
//!
//! Rows stream to the caller: a list of any size is read in constant memory, and duplicates are
//! left to the ledger's unique key (addresses compare case-insensitively).

use std::path::Path;

use anyhow::Context;
use lettre::Address;

use crate::address::parse_address;
use crate::error::{Problem, ProblemKind};
use crate::issue::one_line;

/// One reader from the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub address: Address,
    pub name: Option<String>,
}

/// Calls `row` for each subscriber of the CSV file at `path`, in file order: `Ok` for a good row,
/// `Err(problem)` for a bad one (with its line). Fails only when the file cannot be read at all or
/// has no `email` column.
pub fn read(
    path: &Path,
    mut row: impl FnMut(Result<Subscriber, Problem>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the subscriber list {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(std::io::BufReader::new(file));
    let headers = rdr
        .byte_headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name.as_bytes()))
    };
    let email_col = col("email").with_context(|| {
        format!(
            "{}:1: no `email` column: the first line must be a header like `email,name`",
            path.display()
        )
    })?;
    let name_col = col("name");
    let mut record = csv::ByteRecord::new();
    loop {
        let line = rdr.position().line() as usize;
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line() as usize).unwrap_or(line);
                let field = |i: usize| std::str::from_utf8(record.get(i).unwrap_or(b""));
                let parsed = match (field(email_col), name_col.map(field).transpose()) {
                    (Ok(e), Ok(n)) => parse_address(e)
                        .map(|address| Subscriber {
                            address,
                            name: n.map(one_line).filter(|n| !n.is_empty()),
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
                let line = e.position().map(|p| p.line() as usize).unwrap_or(line);
                row(Err(bad_row(path, line, format!("unreadable row: {e}"))))?;
            }
        }
    }
    Ok(())
}

fn bad_row(path: &Path, line: usize, message: impl Into<String>) -> Problem {
    Problem::at(path, line, message).kind(ProblemKind::Subscriber)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
