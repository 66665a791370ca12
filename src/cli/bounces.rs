//! `brief bounces import`: saved bounce reports (`.eml` files, Maildir folders, mbox files) fed
//! to the one bounce parser, with a line for each message saying what it changed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::app::{App, BounceHandling, TakenBounce};
use crate::error::UsageError;
use crate::metrics::Metrics;

/// The largest message or mbox file read (a bounce is a few kilobytes; a whole returned
/// message rarely passes a few megabytes).
const MAX_FILE: u64 = 256 * 1024 * 1024;

/// Tallies of one import, for the last line.
#[derive(Default)]
struct Tally {
    messages: usize,
    hard: usize,
    soft: usize,
    complaints: usize,
    suppressed: usize,
    duplicates: usize,
    unmatched: usize,
    ignored: usize,
    unreadable: usize,
}

/// `brief bounces import PATH...`: every message of every path, in order; a path that cannot
/// be read is reported and the others are still taken (exit 1 at the end).
pub(super) fn import(app: &App, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    if paths.is_empty() {
        return Err(UsageError::msg(
            "name at least one .eml file, Maildir folder or mbox file to import",
        )
        .into());
    }
    if app.config.bounces.is_none() {
        eprintln!(
            "note: no `[bounces]` in the config, so no VERP tags were sent: reports are matched \
             by the Message-ID they return"
        );
    }
    let mut ledger = app.open_ledger()?;
    let key = app.token_key()?;
    // The CLI serves no /metrics: counted into a registry nobody reads.
    let metrics = Metrics::new();
    let mut tally = Tally::default();
    let mut out = std::io::stdout().lock();
    for path in paths {
        let messages = match messages_in(path) {
            Ok(m) => m,
            Err(e) => {
                tally.unreadable += 1;
                eprintln!("error: {e:#}");
                continue;
            }
        };
        for (label, raw) in messages {
            let taken = app.take_bounce(&mut ledger, &key, &metrics, &raw)?;
            tally.count(&taken);
            writeln!(out, "{label}: {}", describe(&taken))?;
        }
    }
    writeln!(out, "{}", tally.line())?;
    Ok(if tally.unreadable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

impl Tally {
    fn count(&mut self, t: &TakenBounce) {
        self.messages += 1;
        match &t.outcome {
            BounceHandling::Ignored => self.ignored += 1,
            BounceHandling::Unmatched => self.unmatched += 1,
            BounceHandling::Duplicate(_) => self.duplicates += 1,
            BounceHandling::Recorded { suppressed, .. } => {
                match t.report.kind {
                    crate::bounce::Kind::Hard => self.hard += 1,
                    crate::bounce::Kind::Soft => self.soft += 1,
                    crate::bounce::Kind::Complaint => self.complaints += 1,
                    crate::bounce::Kind::Ignored => {}
                }
                if suppressed.is_some() {
                    self.suppressed += 1;
                }
            }
        }
    }

    fn line(&self) -> String {
        let mut s = format!(
            "{} message(s): {} hard, {} soft, {} complaint(s) recorded ({} address(es) \
             suppressed); {} already recorded, {} naming no delivery of ours, {} ignored",
            self.messages,
            self.hard,
            self.soft,
            self.complaints,
            self.suppressed,
            self.duplicates,
            self.unmatched,
            self.ignored
        );
        if self.unreadable > 0 {
            s.push_str(&format!("; {} path(s) could not be read", self.unreadable));
        }
        s
    }
}

/// One line on what a message changed.
fn describe(t: &TakenBounce) -> String {
    let r = &t.report;
    let what = match (&r.status, r.kind) {
        (_, crate::bounce::Kind::Complaint) => "complaint".to_string(),
        (Some(status), kind) => format!("{} bounce {status}", kind.as_str()),
        (None, kind) => format!("{} bounce", kind.as_str()),
    };
    match &t.outcome {
        BounceHandling::Ignored => format!("ignored: {}; nothing changed", r.note),
        BounceHandling::Unmatched => format!(
            "{what} naming no delivery of ours (no valid VERP tag, no known Message-ID); nothing \
             changed"
        ),
        BounceHandling::Duplicate(d) => format!(
            "{what} for {} (issue {}): already recorded; nothing changed",
            d.address, d.issue
        ),
        BounceHandling::Recorded { target, suppressed } => {
            let mut s = format!(
                "{what} for {} (issue {}): recorded",
                target.address, target.issue
            );
            match suppressed {
                Some(reason) => s.push_str(&format!("; the address is now {reason}")),
                None => s.push_str("; the address stays on the list"),
            }
            s
        }
    }
}

/// The messages at `path`, each with the label its line starts with: an `.eml` file is one
/// message, a Maildir folder one per file of `new/` and `cur/`, an mbox file one per `From `
/// line (`PATH#N`).
fn messages_in(path: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    if meta.is_dir() {
        if !path.join("cur").is_dir() && !path.join("new").is_dir() {
            anyhow::bail!(
                "{} is a folder but not a Maildir (no cur/ or new/ in it): name the Maildir \
                 folder, or the .eml files",
                path.display()
            );
        }
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let dir = path.join(sub);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            names.sort();
            files.extend(names);
        }
        return files
            .into_iter()
            .map(|f| Ok((f.display().to_string(), read(&f)?)))
            .collect();
    }
    let raw = read(path)?;
    if raw.starts_with(b"From ") {
        let messages = split_mbox(&raw);
        return Ok(messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| (format!("{}#{}", path.display(), i + 1), m))
            .collect());
    }
    Ok(vec![(path.display().to_string(), raw)])
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        .len();
    if len > MAX_FILE {
        anyhow::bail!(
            "{} is {len} bytes, over the {MAX_FILE} brief reads: split it",
            path.display()
        );
    }
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// Splits an mbox file at its `From ` lines (each starts a message and is not part of it) and
/// undoes the quoting of body lines that began with `From ` (`>From `, `>>From `: one `>` goes,
/// as mboxrd writes them; mboxo's ambiguity is harmless in a bounce).
fn split_mbox(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            messages.push(Vec::new());
            continue;
        }
        let Some(current) = messages.last_mut() else {
            continue;
        };
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            current.extend_from_slice(&line[1..]);
        } else {
            current.extend_from_slice(line);
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_splits_at_from_lines_and_unquotes_bodies() {
        let mbox = b"From MAILER-DAEMON Mon Nov 30 10:00:00 2026\nSubject: a\n\nbody\n>From here\n\
                     >>From there\n\nFrom x@y Mon Nov 30 10:01:00 2026\nSubject: b\n\nsecond\n";
        let m = split_mbox(mbox);
        assert_eq!(m.len(), 2);
        assert_eq!(
            String::from_utf8_lossy(&m[0]),
            "Subject: a\n\nbody\nFrom here\n>From there\n\n"
        );
        assert_eq!(String::from_utf8_lossy(&m[1]), "Subject: b\n\nsecond\n");
    }
}
