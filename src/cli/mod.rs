//! The command line: parses arguments, runs one command, maps the outcome to an exit code.
//!
//! Exit codes: 0 success, 1 the work failed or problems were found, 2 a usage or config error
//! (an [`UsageError`] anywhere in the error's chain). Each group of commands has a file:
//! `inspect` (check, preview, status, report), `send` (campaigns and test sends),
//! `subscribers`, `bounces` (import), and `progress` (the bar of `brief send`, and log lines printed above it).
//! The files they share are leaves that this one only re-exports or calls: `args` (the clap
//! types) and `load` (an issue loaded for a command, its problems printed).

mod args;
mod bounces;
mod inspect;
mod load;
mod progress;
mod send;
mod subscribers;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

pub use args::{BouncesCommand, Cli, Command, ReportFormat, SubscribersCommand};

use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::config;
use crate::error::UsageError;
use crate::keyfile::Need;

/// Parses the arguments and runs; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(crate::error::exit_code(&e))
        }
    }
}

/// Runs one parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = config::load(&cli.config).map_err(UsageError)?;
    progress::init_logging(config.log.format);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The token key is loaded once, here: a command that mails no link never makes its file.
    let need = match cli.command {
        Command::Check { .. }
        | Command::Preview { .. }
        | Command::Status { .. }
        | Command::Report { .. }
        | Command::Hold { .. }
        | Command::Release { .. }
        | Command::SubscribeForm { .. } => Need::Passing,
        Command::Send { .. }
        | Command::Run { .. }
        | Command::Subscribers { .. }
        | Command::Bounces { .. } => Need::Lasting,
    };
    let app = App::with_key(config, clock, need).map_err(UsageError)?;
    match cli.command {
        Command::Check { issue, links } => inspect::check(&app, issue, links).await,
        Command::Preview { issue, out } => inspect::preview(&app, issue, &out).await,
        // --yes asks nothing of a test send: it only reaches the addresses given.
        Command::Send {
            issue,
            test: true,
            to,
            lang,
            ..
        } => send::test_send(&app, issue, &to, lang.as_deref()).await,
        Command::Send {
            issue,
            yes,
            restart_unsent,
            retry_failed,
            canary,
            ..
        } => {
            let canary = canary
                .map(|c| canary_window(&app, &c))
                .transpose()
                .map_err(UsageError)?;
            let resume = if restart_unsent {
                send::Resume::RestartUnsent
            } else if retry_failed {
                send::Resume::RetryFailed
            } else {
                send::Resume::AsStarted
            };
            send::send(&app, issue, yes, resume, canary).await
        }
        Command::Hold { issue } => send::hold(&app, issue),
        Command::Release { issue } => send::release(&app, issue),
        Command::Status { issue } => inspect::status(&app, issue),
        Command::Report { issue, format } => inspect::report(&app, issue, format),
        Command::Run { listen } => crate::daemon::run(app, listen).await,
        Command::SubscribeForm { lang } => subscribers::form(&app, lang.as_deref()),
        Command::Subscribers { action } => subscribers::run(Arc::new(app), action).await,
        Command::Bounces {
            action: BouncesCommand::Import { paths },
        } => bounces::import(&app, &paths),
    }
}

/// The canary window of `brief send --canary[=DURATION]`: the one given, else
/// `[schedule] canary`, else 30 minutes.
fn canary_window(app: &App, given: &str) -> anyhow::Result<std::time::Duration> {
    if given.is_empty() {
        return Ok(app
            .config
            .schedule
            .canary
            .unwrap_or(std::time::Duration::from_secs(30 * 60)));
    }
    match config::parse_duration(given) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => anyhow::bail!("--canary must be longer than 0s"),
        Err(e) => anyhow::bail!("--canary: {e}"),
    }
}
