//! The daemon (`brief run`): the monthly schedule, the HTTP side, resumed campaigns, a graceful stop.
//!
//! [`run`] checks what it can at start, binds the HTTP listener, resumes every unfinished
//! campaign, catches up a fire missed within `catch_up`, then sleeps until each fire of
//! `[schedule] cron`. Every task it starts watches one [`CancellationToken`], and all but the
//! HTTP server are tracked by one [`TaskTracker`]: on SIGTERM or SIGINT the scheduler stops,
//! running campaigns let their in-flight messages finish and be recorded, and the process waits
//! for that (at most [`GRACE`]) before it exits. The server stops accepting and bounds its own
//! stop (`http::STOP_GRACE`): a slow HTTP client never holds the stop or makes it fail.
//!
//! A fire creates the campaign of the month it falls in, on the plan's wall clock. The ledger's
//! unique key per issue makes that at most once: a later fire in the month, the second pass of a
//! DST fall-back, a restart or a second daemon on the same database finds the campaign and does
//! nothing. [`Daemon::fire`] is one step that returns a [`Fire`] outcome, so tests drive the
//! schedule with fixed instants instead of timers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::campaign::run::{self, Ended, Means, Policy, Watch};
use crate::campaign::start::{self, NotStarted, Started};
use crate::deliver::{Editions, Stopped};
use crate::dkim::DkimSigner;
use crate::error::UsageError;
use crate::feed::FetchPolicy;
use crate::http::Site;
use crate::issue::IssueId;
use crate::ledger::{Campaign, Ledger, SharedLedger, Trigger};
use crate::message::Kind;
use crate::metrics::{CampaignState, FireOutcome, Metrics};
use crate::schedule::{Decision, Plan};
use crate::shutdown::Signals;
use crate::token::TokenKey;

/// How long a stop waits for in-flight messages to be recorded before the process exits
/// anyway; below the 10 s that service managers commonly allow before they kill.
pub const GRACE: Duration = Duration::from_secs(8);

/// The longest single sleep of the scheduler: it re-reads the clock at least this often, so a
/// wall-clock change or a suspended machine delays a fire by at most this much.
const SLEEP_SLICE: Duration = Duration::from_secs(60);

/// How long a campaign waits after a run that could not reach the relay before it runs again
/// (at most `[delivery] retry_max`).
const RELAY_RETRY: Duration = Duration::from_secs(15 * 60);

/// How often the daemon looks for unfinished campaigns whose sender stopped heartbeating
/// (`deliver::LEASE_STALE`), to take them over.
const TAKEOVER_CHECK: Duration = Duration::from_secs(5);

/// What one schedule fire did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fire {
    /// The campaign was created, and its run started.
    Created { issue: IssueId, recipients: u64 },
    /// The issue has a campaign already (an earlier fire, a restart, another daemon, staff).
    Exists(IssueId),
    /// The month has no issue folder or no entries: skipped with a warning.
    Empty(IssueId),
    /// At start: the latest fire is older than `catch_up` and its issue has no campaign. It is
    /// logged and left to staff.
    Missed {
        issue: IssueId,
        fired_at: DateTime<Utc>,
    },
    /// The issue has problems, or the ledger failed: logged, nothing sent.
    Failed(IssueId),
    /// The daemon began stopping during the fire: nothing was created.
    Stopped,
}

impl Fire {
    /// The `brief_schedule_fires_total` outcome label.
    fn outcome(&self) -> Option<FireOutcome> {
        Some(match self {
            Fire::Created { .. } => FireOutcome::created,
            Fire::Exists(_) => FireOutcome::exists,
            Fire::Empty(_) => FireOutcome::empty,
            Fire::Missed { .. } => FireOutcome::missed,
            Fire::Failed(_) => FireOutcome::failed,
            Fire::Stopped => return None,
        })
    }
}

/// The daemon's state, shared by the scheduler, the campaign runs and the HTTP handlers.
pub struct Daemon {
    pub app: Arc<App>,
    pub key: TokenKey,
    pub dkim: Option<Arc<DkimSigner>>,
    /// The connection that HTTP handlers and the scheduler share; each campaign run opens its
    /// own, so its group commits never wait behind a request.
    pub ledger: SharedLedger,
    pub metrics: Arc<Metrics>,
    /// Cancelled once, when the daemon stops.
    pub stop: CancellationToken,
    tracker: TaskTracker,
    plan: Option<Plan>,
    /// The last problem logged per issue: a frequent cron logs a problem once, not every fire.
    reported: Mutex<HashMap<IssueId, String>>,
    /// The campaigns this daemon is running (their leases are its own): never taken over, nor
    /// launched twice.
    running: Mutex<std::collections::HashSet<crate::ledger::CampaignId>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("key", &self.key)
            .field("dkim", &self.dkim)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Loads the token key, the DKIM key and the ledger. A bad DKIM key is a usage error.
    pub fn new(app: App, stop: CancellationToken) -> anyhow::Result<Arc<Daemon>> {
        let key = app.key().clone();
        let dkim = app.dkim_signer().map_err(UsageError)?.map(Arc::new);
        let ledger = app.open_ledger()?;
        let plan = Plan::new(&app.config.schedule);
        Ok(Arc::new(Daemon {
            app: Arc::new(app),
            key,
            dkim,
            ledger: SharedLedger::new(ledger),
            metrics: Arc::new(Metrics::new()),
            stop,
            tracker: TaskTracker::new(),
            plan,
            reported: Mutex::new(HashMap::new()),
            running: Mutex::new(std::collections::HashSet::new()),
        }))
    }

    /// The sign-up pages' state, and the task (tracked with the others) that works through
    /// their queue on a ledger connection of its own, so that a sign-up never holds the one the
    /// unsubscribe links use.
    fn join(&self) -> crate::http::Join {
        let mailer = crate::signup::Mailer {
            app: self.app.clone(),
            key: self.key.clone(),
            dkim: self.dkim.clone(),
            metrics: self.metrics.clone(),
        };
        let ledger = match self.app.open_ledger() {
            Ok(l) => SharedLedger::new(l),
            Err(e) => {
                tracing::warn!(error.message = %e, "sign-ups share the daemon's ledger connection: {e:#}");
                self.ledger.clone()
            }
        };
        let mailer = Arc::new(mailer);
        let (queue, task) =
            crate::signup::Mailer::start(mailer.clone(), ledger.clone(), self.stop.clone());
        self.tracker.spawn(task);
        crate::http::Join::new(
            queue,
            mailer,
            ledger,
            self.app.config.server.signups_per_hour,
        )
    }

    /// The HTTP side's state: the daemon's app, keys, ledger connection and metrics.
    pub fn site(self: &Arc<Self>) -> Arc<Site> {
        let d = self.clone();
        let launch: crate::http::Launch = Arc::new(move |campaign, template, ledger| {
            d.metrics.campaign(CampaignState::created);
            d.launch(campaign, template, ledger)
        });
        Arc::new(Site {
            app: self.app.clone(),
            key: self.key.clone(),
            dkim: self.dkim.clone(),
            ledger: self.ledger.clone(),
            metrics: self.metrics.clone(),
            join: Some(self.join()),
            admin: crate::http::Admin::default(),
            launch: Some(launch),
            bearers: Default::default(),
        })
    }

    /// Checks at start what would otherwise fail at the first fire: the transport settings, the
    /// content folder and the subscriber list (a usage error if any is wrong). Issues still to be sent are
    /// loaded and their problems logged; they do not stop the daemon, because unsubscribe links
    /// must keep working while staff fix an issue.
    pub fn validate(&self) -> anyhow::Result<()> {
        let cfg = &self.app.config;
        for warning in &cfg.warnings {
            tracing::warn!("{warning}");
        }
        // The SMTP settings (TLS name, CA file) are checked now, not at the first fire.
        self.app.transport("").map_err(UsageError)?;
        let ids = match crate::content::list_issues(&cfg.content.dir) {
            Ok(ids) => ids,
            Err(_) if !cfg.content.feeds.is_empty() && !cfg.content.dir.exists() => Vec::new(),
            Err(e) => return Err(UsageError(e).into()),
        };
        let ledger = self.ledger.lock();
        let held = crate::audience::Held::load(&ledger)?;
        let mut readers = 0u64;
        crate::audience::each_subscriber(
            &self.app,
            &held,
            |_| {
                readers += 1;
                Ok(())
            },
            |p| tracing::warn!("subscriber list: {p}"),
        )
        .map_err(UsageError)?;
        let current = self.current_issue();
        for id in ids.into_iter().filter(|id| *id >= current) {
            if ledger.campaign(id)?.is_some() {
                continue;
            }
            match self.app.load_issue(id) {
                Ok(issue) => {
                    tracing::info!(issue = %id, entries = issue.entries.len(), "issue ready")
                }
                Err(problems) => {
                    for p in &problems.0 {
                        tracing::error!("{p}");
                    }
                    tracing::error!(
                        issue = %id,
                        problems = problems.0.len(),
                        "issue has problems: the schedule will not send it until they are fixed (see `brief check --issue {id}`)"
                    );
                }
            }
        }
        tracing::info!(subscribers = readers, "subscriber list read");
        Ok(())
    }

    /// The issue of the current month on the plan's wall clock (UTC without a plan).
    fn current_issue(&self) -> IssueId {
        self.issue_of_fire(self.app.clock.now())
    }

    /// The start-up work, as one tracked task: resume unfinished campaigns, catch up a missed
    /// fire, then run the schedule until the daemon stops.
    pub fn start(self: &Arc<Self>) {
        if let Some(imap) = self
            .app
            .config
            .bounces
            .as_ref()
            .and_then(|b| b.imap.clone())
        {
            let mailbox = crate::intake::Mailbox {
                app: self.app.clone(),
                ledger: self.ledger.clone(),
                key: self.key.clone(),
                metrics: self.metrics.clone(),
            };
            self.tracker.spawn(crate::intake::watch_mailbox(
                mailbox,
                imap,
                self.stop.clone(),
            ));
        }
        if self.app.config.schedule.summary && !self.app.config.server.staff.is_empty() {
            let d = self.clone();
            self.tracker.spawn(d.summaries());
        }
        self.tracker.spawn(self.notice_worker());
        let d = self.clone();
        self.tracker.spawn(d.take_over_stale());
        let d = self.clone();
        self.tracker.spawn(async move {
            d.resume_unfinished().await;
            if d.stop.is_cancelled() {
                return;
            }
            match &d.plan {
                Some(plan) => {
                    d.catch_up().await;
                    d.schedule(plan.clone()).await;
                }
                None => tracing::info!("no `[schedule] cron`: the daemon sends nothing by itself"),
            }
        });
    }

    /// Starts a run for every campaign that is not finished; returns how many were started.
    /// A campaign whose issue cannot be loaded any more is logged and left as it is, and so is
    /// one that another process is sending (its send lock is taken): this daemon takes it over
    /// if that process stops heartbeating ([`Daemon::take_over_stale`]).
    pub async fn resume_unfinished(self: &Arc<Self>) -> usize {
        let campaigns = match self.ledger.with(|l| l.campaigns()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error.message = %e, "cannot list campaigns to resume: {e:#}");
                return 0;
            }
        };
        self.resume(campaigns.into_iter().filter(|c| !c.finished).collect())
            .await
    }

    /// Every [`TAKEOVER_CHECK`] until the stop: takes over the unfinished campaigns whose lease
    /// went stale (their sender, a daemon or `brief send` on the same ledger, died or was cut
    /// off) and that no process holds the send lock of. Each stale lease is tried once: a
    /// campaign that cannot be resumed is not retried until someone heartbeats it again.
    async fn take_over_stale(self: Arc<Self>) {
        let mut tried: HashMap<crate::ledger::CampaignId, Option<i64>> = HashMap::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TAKEOVER_CHECK) => {}
                _ = self.stop.cancelled() => return,
            }
            let stale_before = self.app.clock.now_ms()
                - i64::try_from(crate::deliver::LEASE_STALE.as_millis()).unwrap_or(i64::MAX);
            let stale = match self
                .ledger
                .with(move |l| l.stale_campaigns(stale_before))
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error.message = %e, "cannot read the ledger: {e:#}");
                    continue;
                }
            };
            let mut orphans = Vec::new();
            for (c, beat) in stale {
                let ours = self
                    .running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(&c.id);
                if ours || tried.insert(c.id, beat) == Some(beat) {
                    continue;
                }
                tracing::warn!(
                    issue = %c.issue,
                    last_heartbeat = %crate::clock::fmt_ms(beat),
                    "taking over an unfinished campaign whose sender stopped heartbeating"
                );
                orphans.push(c);
            }
            if !orphans.is_empty() {
                self.resume(orphans).await;
            }
        }
    }

    /// Starts a run for each of `campaigns` that this daemon is not running already and whose
    /// send lock is free; returns how many were started.
    async fn resume(self: &Arc<Self>, campaigns: Vec<Campaign>) -> usize {
        let mut resumed = 0;
        for c in campaigns {
            if self.stop.is_cancelled() {
                break;
            }
            let id = c.issue;
            if self
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&c.id)
            {
                continue;
            }
            // Another live process sending it holds its lock: leave it (the lease tells when
            // that process stops). A probe only: the run takes the lock for itself.
            let probe = c.clone();
            if let Err(e) = self
                .ledger
                .with(move |l| l.lock_campaign(&probe).map(drop))
                .await
            {
                tracing::info!(
                    issue = %id,
                    "not resumed now: {e:#}; this daemon takes it over if that process stops"
                );
                continue;
            }
            let Some(editions) = self.editions_to_resume(&c).await else {
                continue;
            };
            let app = self.app.clone();
            let opened = tokio::task::spawn_blocking(move || {
                let ledger = app.open_ledger()?;
                let counts = ledger.counts(c.id)?;
                Ok::<_, anyhow::Error>((ledger, counts, c))
            })
            .await
            .context("ledger task panicked")
            .and_then(|r| r);
            match opened {
                Ok((ledger, counts, c)) => {
                    tracing::debug!(
                        issue = %id,
                        trigger = %c.trigger,
                        left = counts.pending + counts.sending + counts.deferred,
                        "resuming an unfinished campaign"
                    );
                    self.metrics.campaign(CampaignState::resumed);
                    self.launch(c, editions, ledger);
                    resumed += 1;
                }
                Err(e) => tracing::error!(issue = %id, error.message = %e, "cannot resume: {e:#}"),
            }
        }
        resumed
    }

    /// The messages an unfinished campaign goes on with: those stored when it started (one
    /// per language), whatever the folder says now (feeds are not fetched again). A campaign
    /// an older brief started without storing it is rendered from the folder in the default
    /// language, as that brief did. `None` (logged) when neither works, or when the daemon
    /// stops meanwhile.
    async fn editions_to_resume(&self, c: &Campaign) -> Option<Editions> {
        let id = c.issue;
        let (key, campaign) = (self.key.clone(), c.clone());
        let default = self.app.config.newsletter.languages.default_lang().clone();
        let stored = self
            .ledger
            .with(move |l| start::stored_editions(l, &campaign, &key, &default))
            .await;
        match stored {
            Ok(Some((editions, sent))) => {
                let sent = &sent[0];
                if start::folder_changed(&self.app, id, sent) {
                    tracing::warn!(
                        issue = %id,
                        "the content folder changed since the campaign started: the readers not yet sent get the issue as it was (revision {}); `brief send --issue {id} --restart-unsent` sends the corrected one",
                        sent.revision
                    );
                }
                return Some(editions);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(issue = %id, error.message = %e, "cannot resume: {e:#}");
                return None;
            }
        }
        let issue = tokio::select! {
            r = self.app.collect_issue(id, FetchPolicy::SCHEDULED) => r,
            _ = self.stop.cancelled() => return None,
        };
        match issue {
            Ok(issue) => {
                let default = self.app.config.newsletter.languages.default_lang();
                let template = self.app.prepare(&issue, &self.key, Kind::Campaign).1;
                Some(Editions::single(default.clone(), template))
            }
            Err(problems) => {
                for p in &problems.0 {
                    tracing::error!("{p}");
                }
                tracing::error!(
                    issue = %id,
                    "cannot resume the unfinished campaign: its issue has problems; fix them and restart, or run `brief send --issue {id}`"
                );
                None
            }
        }
    }

    /// At start: makes up the latest fire when it lies within `catch_up`, or reports it as
    /// missed when it is older and its issue has no campaign. `None` without a plan or a fire.
    pub async fn catch_up(self: &Arc<Self>) -> Option<Fire> {
        let plan = self.plan.as_ref()?;
        match plan.on_start(self.app.clock.now())? {
            Decision::Send { fired_at, issue } => {
                tracing::debug!(issue = %issue, %fired_at, "catching up the latest fire");
                Some(self.fire(fired_at).await)
            }
            Decision::Missed { issue, fired_at } => {
                match self.ledger.with(move |l| l.campaign(issue)).await {
                    Ok(Some(_)) => return Some(Fire::Exists(issue)),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error.message = %e, "cannot read the ledger: {e:#}"),
                }
                let fire = Fire::Missed { issue, fired_at };
                // Said once per missed fire: staff who read it and chose to skip the month are
                // not told again at every start.
                let now = self.app.clock.instant();
                let first = self
                    .ledger
                    .with(move |l| l.note_missed_fire(issue, fired_at, now))
                    .await
                    .unwrap_or_else(|e| {
                        tracing::error!(error.message = %e, "cannot read the ledger: {e:#}");
                        true
                    });
                if !first {
                    tracing::debug!(issue = %issue, %fired_at, "missed fire already reported");
                    return Some(fire);
                }
                let catch_up = humantime::format_duration(self.app.config.schedule.catch_up);
                let cfg = &self.app.config.content;
                let folder = cfg.dir.join(issue.to_string());
                if cfg.feeds.is_empty() && !crate::content::has_entry_files(&folder) {
                    tracing::warn!(
                        issue = %issue, %fired_at, %catch_up,
                        "the scheduled send was missed while the daemon was down, longer ago than `catch_up`; it had nothing to send anyway ({} holds no entries), so no issue was lost",
                        folder.display()
                    );
                } else {
                    tracing::warn!(
                        issue = %issue, %fired_at, %catch_up,
                        "the scheduled send was missed while the daemon was down, longer ago than `catch_up`: nothing sent; send it with `brief send --issue {issue}` if it should still go out"
                    );
                }
                self.count(&fire);
                Some(fire)
            }
        }
    }

    /// Sleeps until each fire of `plan` and fires, until the daemon stops.
    async fn schedule(self: &Arc<Self>, plan: Plan) {
        let mut after = self.app.clock.now();
        loop {
            let Some(next) = plan.next_fire(after) else {
                tracing::info!("the `[schedule] cron` expression fires no more: scheduling ends");
                return;
            };
            tracing::debug!(%next, issue = %plan.issue_for(next), "next scheduled fire");
            // The checks before the fire, once its time comes (at once when it has come).
            let mut preflight_at = self.preflight_time(next);
            loop {
                let now = self.app.clock.now();
                if now >= next {
                    break;
                }
                if preflight_at.is_some_and(|at| now >= at) {
                    preflight_at = None;
                    let d = self.clone();
                    self.tracker.spawn(async move {
                        d.preflight(next).await;
                    });
                }
                let until = preflight_at.map_or(next, |at| at.min(next));
                let wait = (until - now).to_std().unwrap_or_default().min(SLEEP_SLICE);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.stop.cancelled() => return,
                }
            }
            if self.fire(next).await == Fire::Stopped {
                return;
            }
            // Fires that passed while this one worked are not made up: they belong to the
            // same month, or the next fire covers theirs.
            after = next.max(self.app.clock.now());
        }
    }

    /// One schedule fire at `fired_at`: creates the campaign of that month's issue unless it
    /// exists, and starts its run.
    pub async fn fire(self: &Arc<Self>, fired_at: DateTime<Utc>) -> Fire {
        let issue = self.issue_of_fire(fired_at);
        let fire = self.fire_issue(issue).await;
        self.count(&fire);
        fire
    }

    /// The issue a fire at `at` sends: the month it falls in on the plan's wall clock (UTC
    /// without a plan).
    fn issue_of_fire(&self, at: DateTime<Utc>) -> IssueId {
        match &self.plan {
            Some(p) => p.issue_for(at),
            None => IssueId::of_date(at.date_naive()),
        }
    }

    fn count(&self, fire: &Fire) {
        if let Some(outcome) = fire.outcome() {
            self.metrics.schedule_fire(outcome);
        }
    }

    async fn fire_issue(self: &Arc<Self>, id: IssueId) -> Fire {
        let started = start::from_folder(
            &self.app,
            &self.ledger,
            &self.key,
            id,
            Trigger::Schedule,
            FetchPolicy::SCHEDULED,
            &self.stop,
        )
        .await;
        let Started {
            ledger,
            editions,
            campaign,
            problems,
            counts,
        } = match started {
            Ok(s) => s,
            // Every later fire of the month ends here; so does one that another daemon on the
            // same database, or staff, got to first.
            Err(NotStarted::Exists) => return Fire::Exists(id),
            Err(NotStarted::Stopped) => return Fire::Stopped,
            Err(NotStarted::Empty) => {
                let folder = self.app.config.content.dir.join(id.to_string());
                self.report(
                    id,
                    false,
                    format!(
                        "no entries for issue {id} in {}: the scheduled send is skipped this month",
                        folder.display()
                    ),
                );
                return Fire::Empty(id);
            }
            Err(NotStarted::Problems(problems)) => {
                // A feed that still fails after the retries: counted per URL, and no partial issue.
                for url in problems.feed_urls() {
                    self.metrics.feed_failure(url.as_str());
                }
                self.report(
                    id,
                    true,
                    format!(
                        "issue {id} has problems, so the scheduled send is not made (run `brief check --issue {id}`):\n{problems}"
                    ),
                );
                return Fire::Failed(id);
            }
            Err(NotStarted::Failed(e)) => {
                self.report(id, true, format!("{e:#}"));
                return Fire::Failed(id);
            }
        };
        for p in &problems {
            tracing::warn!("skipped subscriber: {p}");
        }
        tracing::info!(
            issue = %id,
            recipients = counts.total(),
            suppressed = counts.suppressed,
            trigger = "schedule",
            "campaign created by the schedule"
        );
        self.metrics.campaign(CampaignState::created);
        self.launch(campaign, editions, ledger);
        Fire::Created {
            issue: id,
            recipients: counts.total(),
        }
    }

    /// Logs a problem of `issue`'s fire: as a warning or error the first time, at debug level
    /// while it stays the same.
    fn report(&self, issue: IssueId, error: bool, message: String) {
        let mut seen = self.reported.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.get(&issue) == Some(&message) {
            tracing::debug!(issue = %issue, "{message}");
            return;
        }
        if error {
            tracing::error!(issue = %issue, "{message}");
        } else {
            tracing::warn!(issue = %issue, "{message}");
        }
        seen.insert(issue, message);
    }

    /// Runs a campaign in a tracked task until it is finished or the daemon stops.
    fn launch(self: &Arc<Self>, campaign: Campaign, editions: Editions, ledger: Ledger) {
        let cid = campaign.id;
        if !self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cid)
        {
            tracing::debug!(issue = %campaign.issue, "the campaign is running already");
            return;
        }
        let d = self.clone();
        self.tracker.spawn(async move {
            d.clone().run_campaign(campaign, editions, ledger).await;
            d.running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&cid);
        });
    }

    /// Runs `campaign` under the daemon's policy ([`campaign::run::drive`]): holds are waited
    /// out, and a run the relay stopped runs again [`RELAY_RETRY`] later; a stop leaves it to
    /// the next start.
    async fn run_campaign(self: Arc<Self>, campaign: Campaign, editions: Editions, ledger: Ledger) {
        let id = campaign.issue;
        let transport = match self.app.transport(&id.to_string()) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                tracing::error!(issue = %id, error.message = %e, "cannot send: {e:#}");
                return;
            }
        };
        let ledger = SharedLedger::new(ledger);
        let sender = self.sender(&ledger);
        let means = Means {
            notices: &sender,
            transport,
            dkim: self.dkim.clone(),
            metrics: self.metrics.clone(),
        };
        let policy = Policy::daemon(RELAY_RETRY.min(self.app.config.delivery.retry_max));
        let ended = run::drive(
            &means,
            campaign,
            Arc::new(editions),
            policy,
            &self.stop,
            &mut Logger,
        )
        .await;
        match ended {
            Ok(Ended { summary: s, .. }) if s.finished => {
                if s.counts.sent == 0 && s.counts.failed > 0 {
                    tracing::error!(
                        issue = %id, failed = s.counts.failed,
                        "every delivery of the campaign failed: see `brief report --issue \
                         {id}`; once the cause is fixed, `brief send --issue {id} \
                         --retry-failed` sends them again"
                    );
                }
            }
            Ok(_) => {
                tracing::debug!(issue = %id, "campaign run stopped: it resumes at the next start");
            }
            Err(e) => tracing::error!(
                issue = %id,
                error.message = %e,
                "campaign run failed, it resumes when the daemon starts again: {e:#}"
            ),
        }
    }

    /// When the checks before the fire at `fire_at` run: `[schedule] preflight` before it;
    /// `None` when they are off.
    fn preflight_time(&self, fire_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let ahead = self.app.config.schedule.preflight;
        if ahead.is_zero() {
            return None;
        }
        let ahead = chrono::TimeDelta::from_std(ahead).unwrap_or(chrono::TimeDelta::MAX);
        Some(
            fire_at
                .checked_sub_signed(ahead)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    }

    /// The checks before the fire at `fire_at`: the issue it sends, its links and the
    /// delivery settings, recorded in the ledger and mailed to staff. Returns what was
    /// recorded; `None` when the fire was checked before (an earlier start), or its issue
    /// has a campaign already (the fire sends nothing), or the ledger failed.
    pub async fn preflight(&self, fire_at: DateTime<Utc>) -> Option<crate::ledger::Preflight> {
        let issue = self.issue_of_fire(fire_at);
        crate::preflight::run(&self.sender(&self.ledger), issue, fire_at, &self.stop).await
    }

    /// Mails the summaries that are due (a finished campaign's, a day-old one's follow-up);
    /// returns how many. Failures are logged: a summary never stops the daemon.
    pub async fn mail_summaries(&self) -> usize {
        match crate::summary::mail_due(&self.sender(&self.ledger)).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error.message = %e, "cannot mail the summary to staff: {e:#}");
                0
            }
        }
    }

    /// Mails due summaries every minute until the stop (the follow-ups a day after a send,
    /// and any a stop or a crash kept from going out).
    async fn summaries(self: Arc<Self>) {
        loop {
            self.mail_summaries().await;
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(SUMMARY_INTERVAL) => {}
            }
        }
    }

    /// What sends notices for the daemon, over `ledger`.
    fn sender<'a>(&'a self, ledger: &'a SharedLedger) -> crate::notices::Sender<'a> {
        crate::notices::Sender {
            app: &self.app,
            ledger,
            key: &self.key,
            dkim: self.dkim.as_deref(),
            metrics: Some(&self.metrics),
        }
    }

    /// The notice worker (`notices::run`) on a ledger connection of its own: it tries again
    /// what the relay did not take, and sends what HTTP handlers queue (sign-in links). A stop
    /// waits for the notice being tried (at most `notices::STOP_GRACE`).
    fn notice_worker(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let ledger = match self.app.open_ledger() {
            Ok(l) => SharedLedger::new(l),
            Err(e) => {
                tracing::warn!(error.message = %e, "notices share the daemon's ledger connection: {e:#}");
                self.ledger.clone()
            }
        };
        crate::notices::run(
            self.app.clone(),
            ledger,
            self.key.clone(),
            self.dkim.clone(),
            self.metrics.clone(),
            self.stop.clone(),
        )
    }

    /// Tries every queued notice that is due now (what the worker does when it wakes);
    /// returns how many were tried.
    pub async fn drain_notices(&self) -> usize {
        match self.sender(&self.ledger).drain(None, None).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error.message = %e, "cannot send the queued notices: {e:#}");
                0
            }
        }
    }

    /// Tracks `task` with the daemon's other tasks, so a stop waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Stops the daemon: cancels every task and waits up to `grace` for them to end. Returns
    /// false when some did not end in time (their in-flight deliveries resume at next start).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.metrics.set_up(false);
        self.stop.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// What the daemon logs as a campaign's run goes (each canary copy's try is logged by
/// `notices`, the window and holds by `canary::wait`, each run's start and end by the engine).
struct Logger;

impl Watch for Logger {
    fn canary_mailed(&mut self, campaign: &Campaign, tries: &[crate::notices::Tried]) {
        let accepted = tries.iter().filter(|t| t.reply.accepted).count();
        tracing::info!(issue = %campaign.issue, accepted, copies = tries.len(), "canary copies mailed to staff");
    }

    fn relay_wait(&mut self, campaign: &Campaign, stopped: &Stopped, wait: Duration) {
        let (id, retry_in) = (campaign.issue, humantime::format_duration(wait));
        match stopped {
            Stopped::Relay(_) => tracing::warn!(
                issue = %id, %retry_in,
                "the relay could not be reached: the campaign runs again later"
            ),
            // The engine counted it (`brief_circuit_breaks_total`) where it tripped.
            Stopped::Breaker(trip) => tracing::error!(
                issue = %id, %retry_in, readers = trip.readers,
                error.message = %trip.last,
                "campaign stopped by the circuit breaker: {trip}; no reader was charged, and \
                 the campaign runs again later"
            ),
            Stopped::Held => {}
        }
    }
}

/// How often the daemon looks for summaries to mail.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// `brief run`: the daemon, until SIGTERM or SIGINT. Exit 0 after a clean stop.
pub async fn run(app: App, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let stop = CancellationToken::new();
    let signals = Signals::new()?;
    let addr = listen.unwrap_or(app.config.server.listen);
    let daemon = Daemon::new(app, stop.clone())?;
    daemon.validate()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (`[server] listen` or --listen)"))?;
    let local = listener
        .local_addr()
        .context("the listener has no address")?;
    // The real address (the port may have been 0), on stdout for scripts and tests.
    println!("listening on http://{local}");
    tracing::info!(
        address = %local,
        public_url = %daemon.app.config.server.public_url,
        dkim = ?daemon.dkim.as_ref().map(|d| d.records().into_iter().map(|(name, _)| name).collect::<Vec<_>>()),
        admin = daemon.app.config.server.admin_token.is_some(),
        "brief daemon started"
    );
    // Not one of the daemon's tasks: the server bounds its own stop (`http::STOP_GRACE`), so a
    // slow client never holds the stop of the campaign runs, nor is taken for one.
    let http = tokio::spawn(crate::http::serve(
        listener,
        crate::http::router(daemon.site()),
        crate::http::door::Limits::of(&daemon.app.config.server),
        stop.clone(),
    ));
    daemon.start();
    signals.watch(stop.clone());
    stop.cancelled().await;
    tracing::info!("stopping: no new work; letting messages in flight finish and be recorded");
    let (finished, http) = tokio::join!(daemon.shutdown(GRACE), http);
    match http {
        Ok(s) if s.dropped > 0 => tracing::info!(
            connections = s.dropped,
            "closed {} HTTP connection(s) still open {}s after the stop (a request not finished, or a client that never finished sending one)",
            s.dropped,
            crate::http::STOP_GRACE.as_secs()
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error.message = %e, "the HTTP server task failed: {e}"),
    }
    if finished {
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    } else {
        tracing::error!(
            "stopped after {}s with campaign runs still running: deliveries in flight resume at the next start (possible duplicates)",
            GRACE.as_secs()
        );
        Ok(ExitCode::from(1))
    }
}
