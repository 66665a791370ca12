//! The errors callers branch on: problems found in an issue, and the error that means exit 2.
//!
//! A [`Problem`] is something wrong with what staff wrote or configured, at a place in a file,
//! with a [`ProblemKind`] that code can match on (`NoEntries`, `Feed { url }`, ...), so nothing
//! ever has to look inside a message's text. [`UsageError`] marks an error as the caller's
//! doing (bad arguments, bad config): the command line maps it to exit code 2.

use std::fmt;
use std::path::{Path, PathBuf};

/// What a [`Problem`] is about, for the code that decides what to do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Something in an issue folder: front matter, Markdown, `issue.toml`.
    Content,
    /// The issue has no entries at all: no file in its folder and no new feed item.
    NoEntries,
    /// A required feed could not be fetched or read.
    Feed { url: Box<url::Url> },
    /// The config file (outside the feeds): a key file, a window, the DKIM table.
    Config,
    /// A row of the subscriber list (CSV file or database).
    Subscriber,
    /// A link of an issue that does not answer with success (`brief check --links`).
    Link { url: Box<url::Url> },
    /// The ledger could not be read (its path is the problem's): not the fault nor the
    /// config's, and fixed where the database is (a full disk, permissions, a lock).
    Ledger,
}

/// One thing wrong, at a place in a file; printed as `path:line: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based; `None` when the problem is about the whole file or folder.
    pub line: Option<usize>,
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    /// A content problem at `line` of `path`.
    pub fn at(path: &Path, line: usize, message: impl Into<String>) -> Problem {
        Problem {
            path: path.to_path_buf(),
            line: Some(line),
            kind: ProblemKind::Content,
            message: message.into(),
        }
    }

    /// A content problem about the whole of `path`.
    pub fn whole(path: &Path, message: impl Into<String>) -> Problem {
        Problem {
            path: path.to_path_buf(),
            line: None,
            kind: ProblemKind::Content,
            message: message.into(),
        }
    }

    /// The same problem, of another kind.
    pub fn kind(mut self, kind: ProblemKind) -> Problem {
        self.kind = kind;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Every problem found in an issue: the error of loading or collecting one.
#[derive(Debug)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Whether every problem is of a kind `pred` accepts (false for no problems).
    pub fn all(&self, pred: impl Fn(&ProblemKind) -> bool) -> bool {
        !self.0.is_empty() && self.0.iter().all(|p| pred(&p.kind))
    }

    /// The URLs of the feeds that failed.
    pub fn feed_urls(&self) -> impl Iterator<Item = &url::Url> {
        self.0.iter().filter_map(|p| match &p.kind {
            ProblemKind::Feed { url } => Some(&**url),
            _ => None,
        })
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} in the content",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A value that does not parse (a duration, a mailbox, a cron line, a date): the message says
/// what is wrong and how to write it. Callers branch only on its presence; they show the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// An error that means the command was called wrongly or the config is wrong (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct UsageError(pub anyhow::Error);

impl UsageError {
    /// A usage error with this message.
    pub fn msg(message: impl fmt::Display + fmt::Debug + Send + Sync + 'static) -> UsageError {
        UsageError(anyhow::Error::msg(message))
    }
}

/// The exit code of a failed command: 2 when a [`UsageError`] is in the chain, else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<UsageError>()) {
        2
    } else {
        1
    }
}
