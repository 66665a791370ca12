//! A campaign report's rows: one per reader, the columns `brief report` (CSV or JSON lines)
//! and the console's CSV download share, every CSV written through `sheet`.

use crate::clock::fmt_ms;
use crate::ledger::{CampaignId, DeliveryRow, Ledger, State};

/// One reader's row of a campaign report: `brief report` (CSV or JSON lines) and the staff
/// console's CSV download share these columns.
#[derive(serde::Serialize)]
pub struct ReportRow<'a> {
    pub address: &'a str,
    pub name: &'a str,
    pub state: State,
    pub attempts: u32,
    pub last_code: Option<u16>,
    pub last_text: &'a str,
    pub message_id: &'a str,
    pub first_attempt_at: String,
    pub last_attempt_at: String,
    pub next_attempt_at: String,
    pub possible_duplicate: bool,
    /// The revision of the campaign's message this reader was sent (empty before an attempt).
    pub revision: Option<u32>,
    /// The latest bounce or complaint reported after the send (empty: none).
    pub bounce: &'a str,
    /// The language this reader is sent in (empty: a campaign started before editions, sent in
    /// the default language). Last, so the columns before it keep their place.
    pub lang: &'a str,
}

impl<'a> From<&'a DeliveryRow> for ReportRow<'a> {
    fn from(d: &'a DeliveryRow) -> Self {
        ReportRow {
            address: &d.address,
            name: d.name.as_deref().unwrap_or(""),
            state: d.state,
            attempts: d.attempts,
            last_code: d.last_code,
            last_text: d.last_text.as_deref().unwrap_or(""),
            message_id: &d.message_id,
            first_attempt_at: fmt_ms(d.first_attempt_at),
            last_attempt_at: fmt_ms(d.last_attempt_at),
            next_attempt_at: fmt_ms(d.next_attempt_at),
            possible_duplicate: d.possible_duplicate,
            revision: d.revision,
            bounce: d.bounce.as_deref().unwrap_or(""),
            lang: d.lang.as_deref().unwrap_or(""),
        }
    }
}

impl ReportRow<'_> {
    /// The CSV header: the field names, in order, as the JSON lines name them.
    pub const COLUMNS: [&'static str; 14] = [
        "address",
        "name",
        "state",
        "attempts",
        "last_code",
        "last_text",
        "message_id",
        "first_attempt_at",
        "last_attempt_at",
        "next_attempt_at",
        "possible_duplicate",
        "revision",
        "bounce",
        "lang",
    ];

    /// The row as CSV fields, in the order of [`ReportRow::COLUMNS`] (an absent value is empty).
    pub fn cells(&self) -> [String; 14] {
        let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
        [
            self.address.to_string(),
            self.name.to_string(),
            self.state.as_str().to_string(),
            self.attempts.to_string(),
            opt(self.last_code.map(u32::from)),
            self.last_text.to_string(),
            self.message_id.to_string(),
            self.first_attempt_at.clone(),
            self.last_attempt_at.clone(),
            self.next_attempt_at.clone(),
            self.possible_duplicate.to_string(),
            opt(self.revision),
            self.bounce.to_string(),
            self.lang.to_string(),
        ]
    }

    /// A campaign's report as CSV (`brief report` and the console's download), every cell
    /// safe to open in a spreadsheet ([`crate::sheet`]).
    pub fn write_csv<W: std::io::Write>(
        ledger: &Ledger,
        campaign: CampaignId,
        out: W,
    ) -> anyhow::Result<W> {
        let mut sheet = crate::sheet::Sheet::new(out, &ReportRow::COLUMNS)?;
        ledger.each_delivery(campaign, |d| sheet.row(ReportRow::from(&d).cells()))?;
        sheet.finish()
    }
}

/// A campaign's counts split by language (from [`Ledger::counts_by_lang`]) in one line, as
/// `brief status`, the console's campaign page and the summary mail show it:
/// `en 3 sent, es 2 sent (1 failed)`. `None` when the campaign is in one language only: the
/// totals say it all. A delivery of a campaign started before editions counts as `default`.
pub fn by_language(split: &[(Option<String>, crate::ledger::Counts)]) -> Option<String> {
    if split.len() < 2 {
        return None;
    }
    let parts: Vec<String> = split
        .iter()
        .map(|(lang, n)| {
            let mut extra = Vec::new();
            if n.failed > 0 {
                extra.push(format!("{} failed", n.failed));
            }
            if n.suppressed > 0 {
                extra.push(format!("{} suppressed", n.suppressed));
            }
            let left = n.pending + n.sending + n.deferred;
            if left > 0 {
                extra.push(format!("{left} to send"));
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(", "))
            };
            format!(
                "{} {} sent{extra}",
                lang.as_deref().unwrap_or("default"),
                n.sent
            )
        })
        .collect();
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CSV's columns are the JSON lines' keys, in the same order, and every cell is made
    /// safe (a reply starting with `-` too, not only the name).
    #[test]
    fn report_csv_columns_are_the_json_keys() {
        let d = DeliveryRow {
            address: "a@example.org".into(),
            name: Some("=1+1".into()),
            state: State::Failed,
            attempts: 1,
            last_code: Some(550),
            last_text: Some("-ERR".into()),
            message_id: "<m@x>".into(),
            first_attempt_at: Some(0),
            last_attempt_at: None,
            next_attempt_at: None,
            possible_duplicate: false,
            revision: Some(1),
            bounce: None,
            lang: Some("es".into()),
        };
        let row = ReportRow::from(&d);
        let json = serde_json::to_string(&row).unwrap();
        let mut at = 0;
        for c in ReportRow::COLUMNS {
            let i = json[at..]
                .find(&format!("\"{c}\":"))
                .unwrap_or_else(|| panic!("{c} not next in {json}"));
            at += i;
        }
        assert_eq!(json.matches("\":").count(), ReportRow::COLUMNS.len());
        let mut out = crate::sheet::Sheet::new(Vec::new(), &ReportRow::COLUMNS).unwrap();
        out.row(row.cells()).unwrap();
        let text = String::from_utf8(out.finish().unwrap()).unwrap();
        assert_eq!(
            text.lines().nth(1),
            Some(
                "a@example.org,'=1+1,failed,1,550,'-ERR,<m@x>,1970-01-01T00:00:00.000Z,,,false,1,,es"
            )
        );
    }

    #[test]
    fn counts_split_by_language_only_when_there_are_several() {
        use crate::ledger::Counts;
        let one = [(Some("en".to_string()), Counts::default())];
        assert_eq!(by_language(&one), None);
        let two = [
            (
                Some("en".to_string()),
                Counts {
                    sent: 3,
                    ..Counts::default()
                },
            ),
            (
                Some("es".to_string()),
                Counts {
                    sent: 2,
                    failed: 1,
                    pending: 4,
                    ..Counts::default()
                },
            ),
        ];
        assert_eq!(
            by_language(&two).as_deref(),
            Some("en 3 sent, es 2 sent (1 failed, 4 to send)")
        );
    }
}
