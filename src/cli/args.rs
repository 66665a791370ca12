//! The command line's arguments: the clap types of every command and subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::issue::IssueId;

/// brief publishes a monthly email newsletter from reviewable files.
#[derive(Debug, Parser)]
#[command(name = "brief", version, about, long_about = None)]
pub struct Cli {
    /// The config file.
    #[arg(
        long,
        global = true,
        env = "BRIEF_CONFIG",
        default_value = "config/brief.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// The help text of every `--issue`.
const ISSUE_HELP: &str =
    "The issue, as YYYY-MM; default: the newest issue folder in the content folder";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config, the subscriber list and an issue's content.
    Check {
        #[arg(long, help = ISSUE_HELP)]
        issue: Option<IssueId>,
        /// Also fetch every link of the issue and report those that do not answer with success.
        #[arg(long)]
        links: bool,
    },
    /// Render an issue without sending: ID.html, ID.txt and ID.eml.
    Preview {
        #[arg(long, help = ISSUE_HELP)]
        issue: Option<IssueId>,
        /// Where to write the files.
        #[arg(long, default_value = "out/preview")]
        out: PathBuf,
    },
    /// Send an issue to every active subscriber (or, with --test, to a few addresses).
    Send {
        #[arg(long, help = ISSUE_HELP)]
        issue: Option<IssueId>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// A test send: subject prefixed [TEST], never recorded as the campaign; to --to, or
        /// else to every address of `[server] staff`.
        #[arg(long)]
        test: bool,
        /// The test-send addresses, comma-separated.
        #[arg(long, value_delimiter = ',', requires = "test")]
        to: Vec<String>,
        /// The language of the test copies (a configured one, `es`); default: one copy in
        /// every configured language.
        #[arg(long, value_name = "LANG", requires = "test")]
        lang: Option<String>,
        /// For a campaign already under way: render the issue folder again and send that to
        /// the readers not yet sent (recorded as a new revision). Without it, a campaign always
        /// sends the message it started with.
        #[arg(long, conflicts_with = "test")]
        restart_unsent: bool,
        /// Put the campaign's failed deliveries back to pending (attempts reset, suppressed
        /// addresses excluded) and send them: for when a cause brief could not see was fixed.
        /// Works on a finished campaign too.
        #[arg(long, conflicts_with_all = ["test", "restart_unsent"])]
        retry_failed: bool,
        /// Mail the new campaign to the `[server] staff` addresses first, and to the readers
        /// only after this window (default: `[schedule] canary`, else 30m), unless staff hold
        /// it meanwhile (`brief hold`).
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "", conflicts_with = "test")]
        canary: Option<String>,
    },
    /// Hold a campaign in its canary window: no reader is mailed until `brief release`.
    Hold {
        #[arg(long, help = ISSUE_HELP)]
        issue: Option<IssueId>,
    },
    /// Let a held campaign (or one in its canary window) go to its readers now.
    Release {
        #[arg(long, help = ISSUE_HELP)]
        issue: Option<IssueId>,
    },
    /// Campaign states and counts per delivery state.
    Status {
        /// The issue, as YYYY-MM; default: every campaign.
        #[arg(long)]
        issue: Option<IssueId>,
    },
    /// The per-recipient delivery log of a campaign.
    Report {
        #[arg(long, help = ISSUE_HELP)]
        issue: Option<IssueId>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
        format: ReportFormat,
    },
    /// The daemon: schedule, HTTP endpoints, resume of interrupted campaigns.
    Run {
        /// Listen here instead of `[server] listen` (e.g. `0.0.0.0:8080` in a container).
        #[arg(long, env = "BRIEF_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print the sign-up form as an HTML snippet for the website (no JavaScript), posting to
    /// `[server] public_url` + `subscribe`.
    SubscribeForm {
        /// The form's language (one of `[newsletter] languages`); default: the first. The
        /// form offers every configured language, this one chosen.
        #[arg(long)]
        lang: Option<String>,
    },
    /// Manage the subscriber list.
    Subscribers {
        #[command(subcommand)]
        action: SubscribersCommand,
    },
    /// Take in bounces and complaints that came back to the bounce address.
    Bounces {
        #[command(subcommand)]
        action: BouncesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Feed saved reports to the bounce parser: .eml files, Maildir folders and mbox files;
    /// prints what each message changed.
    Import {
        /// The files and folders to read.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Every address with its state (active, pending, unsubscribed, bounced, complained) and
    /// name (and, with more than one language configured, its language), then the counts per
    /// state.
    List,
    /// Add an address to the list held in the database (never a suppressed one); with
    /// --confirm, mail it a confirmation link instead.
    Add {
        address: String,
        #[arg(long)]
        name: Option<String>,
        /// The reader's language, one of `[newsletter] languages` (`es`, or `es-MX` for `es`);
        /// default: the first configured. For an address on the list already, it becomes the
        /// reader's choice.
        #[arg(long)]
        lang: Option<String>,
        /// Mail the address a confirmation link instead of adding it: it joins when its owner
        /// confirms (an unsubscribed reader too).
        #[arg(long)]
        confirm: bool,
    },
    /// Unsubscribe an address that is on the list (it stays on the suppression list).
    Remove { address: String },
    /// Add the rows of an `email,name,lang` CSV file (`name` and `lang` optional); suppressed
    /// addresses are not re-subscribed.
    Import { file: PathBuf },
    /// Every address as CSV: email,name,state,source,requested_at,confirmed_at,lang.
    Export,
    /// Erase a person's data from the ledger, keeping only a keyed hash so the address stays
    /// suppressed.
    Forget { address: String },
}
