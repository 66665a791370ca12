//! The command line: parses arguments, runs one command, maps the outcome to an exit code.
//!
//! Exit codes: 0 success, 1 the work failed or problems were found, 2 a usage or config error.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::config::{self, LogFormat};
use crate::deliver::{Run, Settings, Summary};
use crate::error::{Problem, ProblemKind, UsageError};
use crate::feed::FetchPolicy;
use crate::issue::IssueId;
use crate::ledger::{Ledger, Reason};
use crate::message::Kind;
use crate::subscribers;
use crate::transport::Transport;

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config, the subscriber list and an issue's content.
    Check {
        /// The issue (YYYY-MM); default: the newest folder in the content folder.
        #[arg(long)]
        issue: Option<IssueId>,
    },
    /// Render an issue without sending: ID.html, ID.txt and ID.eml.
    Preview {
        #[arg(long)]
        issue: Option<IssueId>,
        /// Where to write the files.
        #[arg(long, default_value = "out/preview")]
        out: PathBuf,
    },
    /// Send an issue to every active subscriber (or, with --test, to a few addresses).
    Send {
        #[arg(long)]
        issue: Option<IssueId>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// A test send: subject prefixed [TEST], never recorded as the campaign.
        #[arg(long, requires = "to")]
        test: bool,
        /// The test-send addresses, comma-separated.
        #[arg(long, value_delimiter = ',', requires = "test")]
        to: Vec<String>,
    },
    /// Campaign states and counts per delivery state.
    Status {
        #[arg(long)]
        issue: Option<IssueId>,
    },
    /// The per-recipient delivery log of a campaign.
    Report {
        #[arg(long)]
        issue: IssueId,
        #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
        format: ReportFormat,
    },
    /// The daemon: schedule, HTTP endpoints, resume of interrupted campaigns.
    Run {
        /// Listen here instead of `[server] listen` (e.g. `0.0.0.0:8080` in a container).
        #[arg(long, env = "BRIEF_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Manage the subscriber list.
    Subscribers {
        #[command(subcommand)]
        action: SubscribersCommand,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Every address with its state (active, unsubscribed, bounced).
    List,
    /// Add an address to the list held in the database.
    Add {
        address: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Unsubscribe an address (it stays on the suppression list).
    Remove { address: String },
    /// Add the rows of an `email,name` CSV file; suppressed addresses are not re-subscribed.
    Import { file: PathBuf },
}

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
    init_logging(config.log.format);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = App::new(config, clock).map_err(UsageError)?;
    match cli.command {
        Command::Check { issue } => check(&app, issue).await,
        Command::Preview { issue, out } => preview(&app, issue, &out).await,
        // --yes asks nothing of a test send: it only reaches the addresses given.
        Command::Send {
            issue,
            test: true,
            to,
            ..
        } => test_send(&app, issue, &to).await,
        Command::Send { issue, yes, .. } => send(&app, issue, yes).await,
        Command::Status { issue } => status(&app, issue),
        Command::Report { issue, format } => report(&app, issue, format),
        Command::Run { listen } => crate::daemon::run(app, listen).await,
        Command::Subscribers { action } => subscribers_cmd(&app, action),
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("brief=info,warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn check(app: &App, issue: Option<IssueId>) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    let mut problems = Vec::new();
    let issue = match app.collect_issue(id, FetchPolicy::Once).await {
        Ok(i) => Some(i),
        Err(p) => {
            problems.extend(p.0);
            None
        }
    };
    match app.dkim_signer() {
        Ok(Some(d)) => println!(
            "dkim: publish this TXT record at {}:\n  {}",
            d.dns_name(),
            d.dns_txt()
        ),
        Ok(None) => {}
        Err(e) => problems.push(
            Problem::whole(&app.config.source, format!("[dkim]: {e:#}")).kind(ProblemKind::Config),
        ),
    }
    let ledger = app.open_ledger()?;
    let stored = ledger.stored_subscribers()?;
    let mut readers = 0u64;
    app.each_subscriber(
        &stored,
        |_| {
            readers += 1;
            Ok(())
        },
        |p| problems.push(p),
    )?;
    for p in &problems {
        println!("{p}");
    }
    match (&issue, problems.is_empty()) {
        (Some(i), true) => {
            println!(
                "ok: issue {id}, {} entries, {readers} subscribers",
                i.entries.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            println!("{} problem(s) found in issue {id}", problems.len());
            Ok(ExitCode::from(1))
        }
    }
}

/// Loads an issue (with its feed items), printing its problems; `None` when it has any.
async fn load_or_report(app: &App, id: IssueId) -> Option<crate::issue::Issue> {
    match app.collect_issue(id, FetchPolicy::Once).await {
        Ok(i) => Some(i),
        Err(problems) => {
            for p in &problems.0 {
                eprintln!("{p}");
            }
            eprintln!(
                "error: issue {id} has {} problem(s): nothing was sent or written",
                problems.0.len()
            );
            None
        }
    }
}

async fn preview(app: &App, issue: Option<IssueId>, out: &Path) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    let Some(issue) = load_or_report(app, id).await else {
        return Ok(ExitCode::from(1));
    };
    let key = app.token_key()?;
    let dkim = app.dkim_signer().map_err(UsageError)?;
    let (rendered, template) = app.prepare(&issue, &key, Kind::Campaign);
    let mut eml = App::sample_message(&template);
    if let Some(d) = &dkim {
        d.sign_in_place(&mut eml, app.clock.now().timestamp());
    }
    let (sample, _) = App::sample_recipient();
    let url = template.unsubscribe_url(&sample);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let files = [
        (
            "html",
            crate::render::Rendered::fill(&rendered.html, &url).into_bytes(),
        ),
        (
            "txt",
            crate::render::Rendered::fill(&rendered.text, &url).into_bytes(),
        ),
        ("eml", eml),
    ];
    for (ext, bytes) in files {
        let p = out.join(format!("{id}.{ext}"));
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        println!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn confirm(prompt: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(anyhow::anyhow!(
            "refusing to send without confirmation: standard input is not a terminal, so pass --yes"
        ))
        .into());
    }
    eprint!("{prompt} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn campaign_transport(app: &App, sub: &str) -> anyhow::Result<Transport> {
    app.transport(sub).map_err(|e| UsageError(e).into())
}

async fn send(app: &App, issue: Option<IssueId>, yes: bool) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    let Some(issue) = load_or_report(app, id).await else {
        return Ok(ExitCode::from(1));
    };
    let mut ledger = app.open_ledger()?;
    if let Some(c) = ledger.campaign(id)? {
        if c.finished {
            let counts = ledger.counts(c.id)?;
            println!(
                "issue {id} was already sent (campaign finished, {} sent, {} failed): nothing to send",
                counts.sent, counts.failed
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    let transport = campaign_transport(app, &id.to_string())?;
    let dkim = app.dkim_signer().map_err(UsageError)?.map(Arc::new);
    let key = app.token_key()?;
    let (rendered, template) = app.prepare(&issue, &key, Kind::Campaign);
    let existing = ledger.campaign(id)?;
    if !yes {
        let what = match &existing {
            Some(c) => {
                let n = ledger.counts(c.id)?;
                format!(
                    "Resume issue {id} (\"{}\"): {} deliveries left, via {}?",
                    rendered.subject,
                    n.pending + n.sending + n.deferred,
                    transport.describe()
                )
            }
            None => format!(
                "Send issue {id} (\"{}\") to every subscriber via {}?",
                rendered.subject,
                transport.describe()
            ),
        };
        if !confirm(&what)? {
            println!("not sent");
            return Ok(ExitCode::from(1));
        }
    }
    let (campaign, _new, problems) =
        app.start_campaign(&mut ledger, &issue, &template, &rendered.subject, "cli")?;
    for p in &problems {
        tracing::warn!("skipped subscriber: {p}");
    }
    let summary = run_campaign(app, ledger, campaign, template, transport, dkim).await?;
    print_summary(id, &summary);
    if let Some(e) = &summary.relay_error {
        let left = summary.counts.pending + summary.counts.sending + summary.counts.deferred;
        bail!(
            "{e}: no connection to the relay could be opened, so {left} deliveries are left \
             untouched (no attempt was counted); run `brief send` again once the relay is back"
        );
    }
    Ok(if summary.interrupted || !summary.finished {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs a campaign to its end with a progress bar on a terminal, stopping cleanly on a signal.
async fn run_campaign(
    app: &App,
    ledger: Ledger,
    campaign: crate::ledger::Campaign,
    template: crate::message::MessageTemplate,
    transport: Transport,
    dkim: Option<Arc<crate::dkim::DkimSigner>>,
) -> anyhow::Result<Summary> {
    let stop = CancellationToken::new();
    spawn_signal_handler(stop.clone());
    let bar = ProgressBar::start(&app.config.delivery.database, campaign.id);
    let run = Run {
        ledger: Arc::new(Mutex::new(ledger)),
        campaign,
        template: Arc::new(template),
        transport: Arc::new(transport),
        envelope_from: app.config.newsletter.from.email.clone(),
        settings: Settings::from(&app.config.delivery),
        clock: app.clock.clone(),
        // `brief send` serves no metrics; the engine counts into a registry of its own.
        metrics: Arc::new(crate::metrics::Metrics::new()),
        dkim,
    };
    let summary = run.execute(stop).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    summary
}

/// Cancels `stop` on the first SIGINT or SIGTERM; a second one exits at once (what is in flight
/// then counts towards the crash bound, like `kill -9`).
fn spawn_signal_handler(stop: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            let Ok(mut int) = signal(SignalKind::interrupt()) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::warn!(
                "stopping: no new messages; those in flight finish and are recorded (signal \
                 again to quit at once)"
            );
            stop.cancel();
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            tracing::warn!("stopping: no new messages; those in flight finish and are recorded");
            stop.cancel();
            let _ = tokio::signal::ctrl_c().await;
        }
        eprintln!("stopped at once: messages in flight may go out again when `brief send` resumes");
        std::process::exit(130);
    });
}

/// The progress bar of `brief send` on a terminal: sent / deferred / failed, rate and ETA, read
/// from the ledger (a second, read-only use of the WAL database) a few times a second.
struct ProgressBar {
    bar: indicatif::ProgressBar,
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl ProgressBar {
    fn start(database: &Path, campaign: i64) -> Option<ProgressBar> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let ledger = Ledger::open(database).ok()?;
        let counts = ledger.counts(campaign).ok()?;
        let done = |c: &crate::ledger::Counts| c.sent + c.failed + c.suppressed;
        let first = done(&counts);
        let bar = indicatif::ProgressBar::new(counts.total()).with_position(first);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}  eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.reset_eta();
        // Updates are drawn at most every so often; a steady tick redraws the latest of both.
        bar.enable_steady_tick(Duration::from_millis(120));
        let (stop, stopped) = std::sync::mpsc::channel();
        let b = bar.clone();
        let thread = std::thread::spawn(move || {
            let began = std::time::Instant::now();
            loop {
                if let Ok(c) = ledger.counts(campaign) {
                    let rate = (done(&c) - first) as f64 / began.elapsed().as_secs_f64().max(0.001);
                    b.set_message(format!(
                        "sent {} · deferred {} · failed {}  {rate:.0}/s",
                        c.sent, c.deferred, c.failed
                    ));
                    b.set_position(done(&c));
                }
                match stopped.recv_timeout(Duration::from_millis(250)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        });
        Some(ProgressBar { bar, stop, thread })
    }

    fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        self.bar.finish_and_clear();
    }
}

fn print_summary(id: IssueId, s: &Summary) {
    let c = &s.counts;
    let state = if s.finished {
        "finished".to_string()
    } else if s.interrupted {
        "interrupted: run `brief send` again to resume".to_string()
    } else if s.relay_error.is_some() {
        "stopped: the relay could not be reached".to_string()
    } else {
        "not finished".to_string()
    };
    println!(
        "issue {id}: {} sent now; {} sent, {} failed, {} suppressed, {} deferred, {} pending of {} ({state})",
        s.sent_now,
        c.sent,
        c.failed,
        c.suppressed,
        c.deferred,
        c.pending + c.sending,
        c.total()
    );
}

async fn test_send(app: &App, issue: Option<IssueId>, to: &[String]) -> anyhow::Result<ExitCode> {
    let id = app.resolve_issue(issue).map_err(UsageError)?;
    let mut addresses = Vec::new();
    for a in to {
        addresses.push(
            subscribers::parse_address(a).map_err(|m| UsageError(anyhow::anyhow!("--to: {m}")))?,
        );
    }
    let Some(issue) = load_or_report(app, id).await else {
        return Ok(ExitCode::from(1));
    };
    let key = app.token_key()?;
    let dkim = app.dkim_signer().map_err(UsageError)?;
    // Fails here, with exit 2, when the transport is misconfigured.
    campaign_transport(app, "test")?;
    let replies = app
        .test_send(&issue, &key, dkim.as_ref(), &addresses, |r| {
            println!(
                "{}: {}{}",
                r.address,
                r.code.map(|c| format!("{c} ")).unwrap_or_default(),
                r.text
            );
        })
        .await?;
    let mut ledger = app.open_ledger()?;
    for r in &replies {
        ledger.record_test_send(id, r.address.as_ref(), r.code, &r.text, app.clock.now_ms())?;
    }
    let accepted = replies.iter().filter(|r| r.accepted).count();
    println!(
        "test send of issue {id}: {accepted} of {} accepted",
        replies.len()
    );
    Ok(if accepted == replies.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn fmt_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn status(app: &App, issue: Option<IssueId>) -> anyhow::Result<ExitCode> {
    let ledger = app.open_ledger()?;
    let campaigns = match issue {
        Some(id) => match ledger.campaign(id)? {
            Some(c) => vec![c],
            None => {
                println!("issue {id}: no campaign yet");
                return Ok(ExitCode::SUCCESS);
            }
        },
        None => ledger.campaigns()?,
    };
    if campaigns.is_empty() {
        println!("no campaigns yet");
    }
    for c in campaigns {
        let n = ledger.counts(c.id)?;
        println!(
            "{}  {:<9} started {}  sent {}  failed {}  suppressed {}  deferred {}  pending {}  sending {}  total {}  \"{}\"",
            c.issue,
            if c.finished { "finished" } else { "sending" },
            fmt_ms(Some(c.created_at)),
            n.sent,
            n.failed,
            n.suppressed,
            n.deferred,
            n.pending,
            n.sending,
            n.total(),
            c.subject
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct ReportRow<'a> {
    address: &'a str,
    name: &'a str,
    state: &'a str,
    attempts: u32,
    last_code: Option<u16>,
    last_text: &'a str,
    message_id: &'a str,
    first_attempt_at: String,
    last_attempt_at: String,
    next_attempt_at: String,
    possible_duplicate: bool,
}

fn report(app: &App, id: IssueId, format: ReportFormat) -> anyhow::Result<ExitCode> {
    let ledger = app.open_ledger()?;
    let Some(c) = ledger.campaign(id)? else {
        bail!("issue {id} has no campaign yet: nothing to report");
    };
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::new(stdout.lock());
    let to_row = |d: &crate::ledger::DeliveryRow| {
        (
            fmt_ms(d.first_attempt_at),
            fmt_ms(d.last_attempt_at),
            fmt_ms(d.next_attempt_at),
        )
    };
    match format {
        ReportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            ledger.each_delivery(c.id, |d| {
                let (first, last, next) = to_row(&d);
                w.serialize(report_row(&d, first, last, next))?;
                Ok(())
            })?;
            w.flush()?;
        }
        ReportFormat::Jsonl => {
            let mut out = out;
            ledger.each_delivery(c.id, |d| {
                let (first, last, next) = to_row(&d);
                serde_json::to_writer(&mut out, &report_row(&d, first, last, next))?;
                out.write_all(b"\n")?;
                Ok(())
            })?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report_row(
    d: &crate::ledger::DeliveryRow,
    first_attempt_at: String,
    last_attempt_at: String,
    next_attempt_at: String,
) -> ReportRow<'_> {
    ReportRow {
        address: &d.address,
        name: d.name.as_deref().unwrap_or(""),
        state: d.state,
        attempts: d.attempts,
        last_code: d.last_code,
        last_text: d.last_text.as_deref().unwrap_or(""),
        message_id: &d.message_id,
        first_attempt_at,
        last_attempt_at,
        next_attempt_at,
        possible_duplicate: d.possible_duplicate,
    }
}

fn subscribers_cmd(app: &App, action: SubscribersCommand) -> anyhow::Result<ExitCode> {
    let mut ledger = app.open_ledger()?;
    let now = app.clock.now_ms();
    let parse = |a: &str| subscribers::parse_address(a).map_err(|m| UsageError(anyhow::anyhow!(m)));
    match action {
        SubscribersCommand::List => {
            let stored = ledger.stored_subscribers()?;
            let mut seen = std::collections::HashSet::new();
            let mut bad = Vec::new();
            let mut rows = Vec::new();
            app.each_subscriber(
                &stored,
                |s| {
                    if seen.insert(subscribers::key(&s.address)) {
                        rows.push(s);
                    }
                    Ok(())
                },
                |p| bad.push(p),
            )?;
            for s in &rows {
                println!(
                    "{}\t{}\t{}",
                    s.address,
                    App::subscriber_state(&ledger, &s.address)?,
                    s.name.as_deref().unwrap_or("")
                );
            }
            // Suppressed addresses that are on no list any more still show, so staff see them.
            for (key, reason) in ledger.suppressions()? {
                if !seen.contains(&key) {
                    println!("{key}\t{}\t", reason.as_str());
                }
            }
            for p in &bad {
                eprintln!("{p}");
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Add { address, name } => {
            let address = parse(&address)?;
            if let Some(r) = ledger.suppression(address.as_ref())? {
                bail!(
                    "{address} is {}: brief does not re-subscribe a suppressed address",
                    r.as_str()
                );
            }
            let name = name.as_deref().map(crate::issue::one_line);
            if ledger.add_subscriber(address.as_ref(), name.as_deref(), now)? {
                println!("added {address}");
            } else {
                println!("{address} is already on the list");
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Remove { address } => {
            let address = parse(&address)?;
            if ledger.suppress(
                address.as_ref(),
                Reason::Unsubscribed,
                "removed by staff",
                now,
            )? {
                println!("unsubscribed {address}");
            } else {
                println!("{address} was already unsubscribed or bounced");
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Import { file } => import(&mut ledger, &file, now),
    }
}

fn import(ledger: &mut Ledger, file: &Path, now: i64) -> anyhow::Result<ExitCode> {
    let (mut added, mut known, mut suppressed, mut bad) = (0, 0, 0, 0);
    let mut rows = Vec::new();
    subscribers::read(file, |row| {
        match row {
            Ok(s) => rows.push(s),
            Err(p) => {
                bad += 1;
                eprintln!("{p}");
            }
        }
        Ok(())
    })?;
    for s in rows {
        if ledger.suppression(s.address.as_ref())?.is_some() {
            suppressed += 1;
        } else if ledger.add_subscriber(s.address.as_ref(), s.name.as_deref(), now)? {
            added += 1;
        } else {
            known += 1;
        }
    }
    println!(
        "imported {}: {added} added, {known} already on the list, {suppressed} suppressed (not re-subscribed), {bad} bad rows",
        file.display()
    );
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
