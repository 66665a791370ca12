//! The CSV files brief writes, safe to open in a spreadsheet: every cell goes through [`cell`].
//!
//! Names and replies come from outside (a public sign-up form, a relay's reply): a cell that
//! starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a formula by a
//! spreadsheet (CSV injection), so it gets a leading `'`, which spreadsheets show as text. Every
//! CSV writer (`brief subscribers export`, `brief report --format csv`, the console's campaign
//! CSV) writes through [`Sheet`], whose only way to write a row passes each cell through
//! [`cell`]. A leaf module: it imports nothing of brief.

use std::borrow::Cow;
use std::io::Write;

/// The characters that make a spreadsheet read a cell as a formula (the OWASP CSV-injection
/// rule).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `s` as a CSV cell: with a leading `'` when a spreadsheet would read it as a formula.
pub fn cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(FORMULA_START) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// UTF-8's byte-order mark: a CSV that starts with it is read as UTF-8 by Excel, which
/// otherwise reads a CSV in the computer's legacy code page and garbles "García".
pub const EXCEL_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `csv` (UTF-8) made for Excel: the same bytes after [`EXCEL_BOM`].
pub fn for_excel(csv: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(csv.len() + EXCEL_BOM.len());
    out.extend_from_slice(EXCEL_BOM);
    out.extend(csv);
    out
}

/// A CSV writer whose every cell goes through [`cell`]: a header, then rows.
pub struct Sheet<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> Sheet<W> {
    /// A sheet over `out`, its header written first (even when no row follows).
    pub fn new(out: W, header: &[&str]) -> anyhow::Result<Sheet<W>> {
        let mut sheet = Sheet {
            out: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out),
        };
        sheet.row(header)?;
        Ok(sheet)
    }

    /// Writes one row, each field made safe by [`cell`].
    pub fn row<I, S>(&mut self, fields: I) -> anyhow::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut record = csv::StringRecord::new();
        for f in fields {
            record.push_field(&cell(f.as_ref()));
        }
        Ok(self.out.write_record(&record)?)
    }

    /// Flushes what was written and hands back the writer.
    pub fn finish(self) -> anyhow::Result<W> {
        self.out
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the CSV: {}", e.error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_get_a_leading_quote() {
        for (raw, safe) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+SUM(1)", "'+SUM(1)"),
            ("@cmd", "'@cmd"),
            ("-1+1", "'-1+1"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
        ] {
            assert_eq!(cell(raw), safe, "{raw:?}");
        }
        for plain in [
            "",
            "Ana",
            "a=b",
            "x@example.org",
            "2021-07-01T09:00:00.000Z",
            "'quoted",
        ] {
            assert!(
                matches!(cell(plain), Cow::Borrowed(s) if s == plain),
                "{plain:?}"
            );
        }
    }

    #[test]
    fn a_sheet_writes_the_header_and_safe_rows() {
        let mut s = Sheet::new(Vec::new(), &["email", "name"]).unwrap();
        s.row(["a@example.org", "=1+1"]).unwrap();
        s.row(["b@example.org", "Bo, \"B\""]).unwrap();
        let text = String::from_utf8(s.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "email,name\na@example.org,'=1+1\nb@example.org,\"Bo, \"\"B\"\"\"\n"
        );
    }
}
