//! `brief bounces import`: saved bounce reports (`.eml` files, Maildir folders, mbox files) fed
//! to the one bounce parser, with a line for each message saying what it changed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::app::App;
use crate::error::UsageError;
use crate::intake::{BounceHandling, TakenBounce};
use crate::metrics::Metrics;

/// Tallies of one import, for the last line.
#[derive(Default)]
struct Tally {
    messages: usize,
    hard: usize,
    soft: usize,
    blocked: usize,
    complaints: usize,
    suppressed: usize,
    duplicates: usize,
    unattributed: usize,
    unverified: usize,
    ignored: usize,
    too_large: usize,
    unreadable: usize,
}

/// One message found at a path: its bytes, or only the news that it is over the limit (its
/// bytes were never held).
enum Found {
    Message(Vec<u8>),
    TooLarge,
}

/// `brief bounces import PATH...`: every message of every path, in order, one at a time; a
/// path that cannot be read, or a file over `[bounces] max_size`, is reported and the others
/// are still taken (exit 1 at the end).
pub(super) fn import(app: &App, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    if paths.is_empty() {
        return Err(UsageError::msg(
            "name at least one .eml file, Maildir folder or mbox file to import",
        )
        .into());
    }
    if app.config.bounces.is_none() {
        eprintln!(
            "note: no `[bounces]` in the config, so no VERP tags were sent: reports are \
             attributed by the keyed Message-ID they return"
        );
    }
    let limit = app
        .config
        .bounces
        .as_ref()
        .map_or_else(crate::config::default_bounce_max_size, |b| b.max_size);
    let mut ledger = app.open_ledger()?;
    let key = app.key().clone();
    // The CLI serves no /metrics: counted into a registry nobody reads.
    let metrics = Metrics::new();
    let mut tally = Tally::default();
    let mut out = std::io::stdout().lock();
    for path in paths {
        let each = each_message(path, limit, |label, found| {
            match found {
                Found::Message(raw) => {
                    let taken = crate::intake::take_bounce(app, &mut ledger, &key, &metrics, &raw)?;
                    tally.count(&taken);
                    writeln!(out, "{label}: {}", describe(&taken))?;
                }
                Found::TooLarge => {
                    tally.messages += 1;
                    tally.too_large += 1;
                    writeln!(
                        out,
                        "{label}: over `bounces.max_size` ({limit} bytes); skipped, nothing changed"
                    )?;
                }
            }
            Ok(())
        });
        if let Err(e) = each {
            if e.is::<Unreadable>() {
                tally.unreadable += 1;
                eprintln!("error: {e:#}");
            } else {
                return Err(e);
            }
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
            BounceHandling::Unattributed => self.unattributed += 1,
            BounceHandling::Unverified(_) => self.unverified += 1,
            BounceHandling::Duplicate(_) => self.duplicates += 1,
            BounceHandling::Recorded { suppressed, .. } => {
                match t.report.kind {
                    crate::bounce::Kind::Hard => self.hard += 1,
                    crate::bounce::Kind::Soft => self.soft += 1,
                    crate::bounce::Kind::Blocked => self.blocked += 1,
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
            "{} message(s): {} hard, {} soft, {} blocked, {} complaint(s) recorded ({} \
             address(es) suppressed); {} already recorded, {} unattributed, {} ignored",
            self.messages,
            self.hard,
            self.soft,
            self.blocked,
            self.complaints,
            self.suppressed,
            self.duplicates,
            self.unattributed,
            self.ignored
        );
        if self.unverified > 0 {
            s.push_str(&format!(
                "; {} recorded as unverified (an unkeyed Message-ID only)",
                self.unverified
            ));
        }
        if self.too_large > 0 {
            s.push_str(&format!("; {} too large", self.too_large));
        }
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
        BounceHandling::Unattributed => format!(
            "{what}, unattributed: no valid VERP tag and no keyed Message-ID of ours names a \
             delivery; nothing changed"
        ),
        BounceHandling::Unverified(d) => format!(
            "{what} for {} (issue {}): named by an unkeyed Message-ID only (a campaign stored \
             before keyed ids), recorded as unverified; the address stays on the list",
            d.address, d.issue
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

/// A path that cannot be read, or a file over the limit: reported, and the import goes on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unreadable(String);

/// Hands each message at `path` to `take`, one at a time, with the label its line starts
/// with: an `.eml` file is one message, a Maildir folder one per file of `new/` and `cur/`, an
/// mbox file one per `From ` line (`PATH#N`). At most `limit` bytes of a message are ever
/// held: an `.eml` or Maildir file over it is [`Unreadable`] (named, with the limit), an mbox
/// message over it is [`Found::TooLarge`], and an mbox file is read line by line.
fn each_message(
    path: &Path,
    limit: u64,
    mut take: impl FnMut(String, Found) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let unreadable = |e: std::io::Error| Unreadable(format!("cannot read {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.is_dir() {
        if !path.join("cur").is_dir() && !path.join("new").is_dir() {
            return Err(Unreadable(format!(
                "{} is a folder but not a Maildir (no cur/ or new/ in it): name the Maildir \
                 folder, or the .eml files",
                path.display()
            ))
            .into());
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
        for f in files {
            take(f.display().to_string(), read(&f, limit)?)?;
        }
        return Ok(());
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut reader = BufReader::new(file);
    let is_mbox = reader.fill_buf().map_err(unreadable)?.starts_with(b"From ");
    if is_mbox {
        let mut n = 0;
        return split_mbox(&mut reader, limit, |found| {
            n += 1;
            take(format!("{}#{n}", path.display()), found)
        })
        .map_err(|e| match e.downcast::<std::io::Error>() {
            Ok(io) => unreadable(io).into(),
            Err(other) => other,
        });
    }
    // Read through the handle already open: the file is the one that was looked at.
    match read_at_most(reader, limit).map_err(unreadable)? {
        Found::Message(raw) => take(path.display().to_string(), Found::Message(raw)),
        Found::TooLarge => Err(Unreadable(format!(
            "{} is over `bounces.max_size` ({limit} bytes), so brief did not read it: a bounce \
             is a few kilobytes; look at it by hand, or raise `max_size` in [bounces]",
            path.display()
        ))
        .into()),
    }
}

/// The message in file `path` (one of a Maildir), reading at most `limit` + 1 bytes of it.
fn read(path: &Path, limit: u64) -> anyhow::Result<Found> {
    let unreadable = |e: std::io::Error| Unreadable(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    Ok(read_at_most(file, limit).map_err(unreadable)?)
}

/// What `reader` holds, reading at most `limit` + 1 bytes: past `limit`, nothing is kept.
fn read_at_most(reader: impl Read, limit: u64) -> std::io::Result<Found> {
    let mut raw = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut raw)?;
    Ok(if raw.len() as u64 > limit {
        Found::TooLarge
    } else {
        Found::Message(raw)
    })
}

/// Splits an mbox stream at its `From ` lines (each starts a message and is not part of it)
/// and undoes the quoting of body lines that began with `From ` (`>From `, `>>From `: one `>`
/// goes, as mboxrd writes them; mboxo's ambiguity is harmless in a bounce), handing each
/// message to `take`. At most `limit` bytes of a message are held: past that, its bytes are
/// dropped and it comes out as [`Found::TooLarge`]; a line is read `limit` + 1 bytes at a time,
/// so not even one endless line is held whole.
fn split_mbox(
    reader: &mut impl BufRead,
    limit: u64,
    mut take: impl FnMut(Found) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // None before the first `From ` line, and after a message went over the limit it is
    // `Some` with `over` set.
    let mut current: Option<Vec<u8>> = None;
    let mut over = false;
    let mut line = Vec::new();
    let mut at_line_start = true;
    // The rest of a `From ` line longer than one read.
    let mut in_from_line = false;
    let mut flush = |current: &mut Option<Vec<u8>>, over: &mut bool| -> anyhow::Result<()> {
        if let Some(m) = current.take() {
            take(if *over {
                Found::TooLarge
            } else {
                Found::Message(m)
            })?;
        }
        *over = false;
        Ok(())
    };
    loop {
        line.clear();
        let n = reader
            .by_ref()
            .take(limit as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let starts_line = at_line_start;
        at_line_start = line.ends_with(b"\n");
        if starts_line && line.starts_with(b"From ") {
            flush(&mut current, &mut over)?;
            current = Some(Vec::new());
            in_from_line = !at_line_start;
            continue;
        }
        if in_from_line {
            in_from_line = !at_line_start;
            continue;
        }
        let Some(message) = current.as_mut() else {
            continue;
        };
        if over {
            continue;
        }
        let quoted = if starts_line {
            line.iter().take_while(|&&b| b == b'>').count()
        } else {
            0
        };
        let bytes = if quoted > 0 && line[quoted..].starts_with(b"From ") {
            &line[1..]
        } else {
            &line[..]
        };
        if message.len() + bytes.len() > limit {
            over = true;
            *message = Vec::new();
            continue;
        }
        message.extend_from_slice(bytes);
    }
    flush(&mut current, &mut over)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of `mbox` as `split_mbox` hands them over (`None`: too large).
    fn split(mbox: &[u8], limit: u64) -> Vec<Option<String>> {
        let mut out = Vec::new();
        split_mbox(&mut &mbox[..], limit, |found| {
            out.push(match found {
                Found::Message(m) => Some(String::from_utf8_lossy(&m).into_owned()),
                Found::TooLarge => None,
            });
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn mbox_splits_at_from_lines_and_unquotes_bodies() {
        let mbox = b"From MAILER-DAEMON Mon Nov 30 10:00:00 2026\nSubject: a\n\nbody\n>From here\n\
                     >>From there\n\nFrom x@y Mon Nov 30 10:01:00 2026\nSubject: b\n\nsecond\n";
        let m = split(mbox, 1024);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0].as_deref(),
            Some("Subject: a\n\nbody\nFrom here\n>From there\n\n")
        );
        assert_eq!(m[1].as_deref(), Some("Subject: b\n\nsecond\n"));
    }

    #[test]
    fn an_mbox_message_over_the_limit_is_skipped_without_being_held() {
        let big = format!(
            "From a Mon Nov 30 10:00:00 2026\nSubject: big\n\n{}\n\
             From b Mon Nov 30 10:00:00 2026\nSubject: endless line\n\n{}\
             \nFrom c Mon Nov 30 10:01:00 2026\nSubject: small\n\nok\n",
            "x\n".repeat(600),
            "y".repeat(5000)
        );
        let m = split(big.as_bytes(), 1024);
        assert_eq!(m, [None, None, Some("Subject: small\n\nok\n".to_string())]);
        // A `From ` line longer than one read is still one separator.
        let long_from = format!("From {}\nSubject: a\n\nbody\n", "z".repeat(3000));
        assert_eq!(
            split(long_from.as_bytes(), 1024),
            [Some("Subject: a\n\nbody\n".to_string())]
        );
    }
}
