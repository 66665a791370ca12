//! The pieces every command needs, put together once: config, templates, token key, ledger.
//!
//! Commands and the daemon go through [`App`] so that "which issue", "who are the subscribers"
//! and "how is a campaign started" have one answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use lettre::Address;
use url::Url;

use crate::address::{parse_address, AddressKey};
use crate::bounce;
use crate::clock::Clock;
use crate::config::{Config, FeedWindow, Secret};
use crate::content;
use crate::deliver::{Envelope, Run, Settings};
use crate::dkim::DkimSigner;
use crate::error::{Problem, ProblemKind, Problems, UsageError};
use crate::feed::{self, FetchPolicy};
use crate::issue::{Issue, IssueId};
use crate::ledger::{
    BounceOutcome, BounceTarget, Campaign, CampaignId, DeliveryRow, Evidence, Forgot, Ledger,
    NewBounce, Reason, SharedLedger, State, StoredSubscriber,
};
use crate::message::{Kind, MessageTemplate, Recipient};
use crate::metrics::{BounceKind as BounceMetric, Metrics};
use crate::render::{self, Context as RenderContext, Rendered};
use crate::subscribers::{self, Subscriber};
use crate::templates::Templates;
use crate::token::{Purpose, TokenKey};
use crate::transport::{Connection, Transport};
use sha2::{Digest, Sha256};

/// Loaded configuration and what follows from it.
pub struct App {
    pub config: Config,
    pub templates: Templates,
    pub clock: Arc<dyn Clock>,
    /// Wakes the daemon's notice worker (`notices::run`) when a notice is queued or put back
    /// for a retry; nobody waits on it outside the daemon.
    pub notice_wake: Arc<tokio::sync::Notify>,
}

/// What [`App::take_bounce`] made of one message that came back to the bounce address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenBounce {
    /// What the parser found.
    pub report: bounce::Report,
    pub outcome: BounceHandling,
}

/// What a message that came back changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BounceHandling {
    /// Not a bounce or complaint (an auto-reply, a reply from a person, a success notice,
    /// anything unrecognised): nothing changed.
    Ignored,
    /// A bounce or complaint that neither a valid VERP tag nor a keyed Message-ID attributes
    /// to a delivery of ours (a forgery, or a report about mail brief did not send): nothing
    /// changed.
    Unattributed,
    /// Named a delivery only by an unkeyed Message-ID (of a campaign stored before keyed ids,
    /// which anyone can compute): recorded against the delivery as unverified, for staff to
    /// see; nobody suppressed, nothing counted toward a limit.
    Unverified(BounceTarget),
    /// Recorded before for this delivery: nothing changed.
    Duplicate(BounceTarget),
    /// Recorded against the delivery; the address was suppressed for this reason by it.
    Recorded {
        target: BounceTarget,
        suppressed: Option<Reason>,
    },
}

impl TakenBounce {
    /// Whether it changed nothing and matched nothing: what an IMAP mailbox leaves in place.
    pub fn recognised(&self) -> bool {
        !matches!(
            self.outcome,
            BounceHandling::Ignored | BounceHandling::Unattributed
        )
    }
}

/// The delivery `report` is about and what names it: the first VERP tag whose HMAC checks out
/// and names a delivery; else the first returned Message-ID of a delivery whose keyed MAC
/// checks out for that delivery's issue and address; else a delivery whose recorded
/// Message-ID is merely equal to a returned one, as [`Evidence::Unverified`]. `None`: nothing
/// names a delivery of ours.
fn attribute(
    ledger: &Ledger,
    key: &TokenKey,
    report: &bounce::Report,
) -> anyhow::Result<Option<(BounceTarget, Evidence)>> {
    for id in report.tags.iter().filter_map(|t| key.open_verp_tag(t)) {
        if let Some(target) = ledger.bounce_target(id)? {
            return Ok(Some((target, Evidence::Tag)));
        }
    }
    let mut unverified = None;
    for mid in &report.original_message_ids {
        let Some(target) = ledger.bounce_target_by_message_id(mid)? else {
            continue;
        };
        if crate::message::is_campaign_id(key, mid, &target.issue, &target.address) {
            return Ok(Some((target, Evidence::MessageId)));
        }
        unverified.get_or_insert(target);
    }
    Ok(unverified.map(|t| (t, Evidence::Unverified)))
}

/// The address previews are made out to.
pub const SAMPLE_ADDRESS: &str = "reader@example.org";

/// How long a test copy's "View in browser" link (a signed preview) works: long enough to
/// review an issue over a fortnight, short enough that a forwarded test copy stops showing a
/// draft.
pub const PREVIEW_TTL: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

impl App {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        let templates =
            Templates::load(config.newsletter.templates.as_deref(), &config.newsletter)?;
        Ok(App {
            config,
            templates,
            clock,
            notice_wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// brief's data folder: the ledger's folder.
    pub fn data_dir(&self) -> PathBuf {
        self.config
            .delivery
            .database
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    }

    /// The key that signs unsubscribe tokens: from `server.secret_env`, else a random key made
    /// once in the data folder (and announced once), so links stay valid across runs.
    pub fn token_key(&self) -> anyhow::Result<TokenKey> {
        if let Some(s) = &self.config.server.secret {
            return Ok(TokenKey::new(s.clone()));
        }
        if let Some(var) = &self.config.server.secret_env {
            // Falling back to the generated key would silently break every link already sent.
            // A variable the config names and the environment lacks is a setup error (exit 2),
            // like any other config error, not a failed send.
            return Err(UsageError::msg(format!(
                "environment variable {var} (named by `server.secret_env` in {}) is not set: \
                 unsubscribe links cannot be signed without it; set {var}, or remove the key",
                self.config.source.display()
            ))
            .into());
        }
        let path = self.data_dir().join("token.key");
        match std::fs::read_to_string(&path) {
            Ok(k) if k.trim().len() >= 32 => return Ok(TokenKey::new(Secret::new(k.trim().to_string()))),
            Ok(_) => bail!(
                "{} is too short to be a token key: delete it to make a new one (old unsubscribe links stop working)",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        std::fs::create_dir_all(self.data_dir()).with_context(|| {
            format!(
                "cannot create the data folder {}",
                self.data_dir().display()
            )
        })?;
        let key: String = {
            use rand::Rng;
            let bytes: [u8; 32] = rand::rng().random();
            crate::token::hex(&bytes)
        };
        write_private(&path, &key)?;
        tracing::info!(
            path = %path.display(),
            "made a new unsubscribe token key (set `server.secret_env` to manage it yourself)"
        );
        Ok(TokenKey::new(Secret::new(key)))
    }

    pub fn open_ledger(&self) -> anyhow::Result<Ledger> {
        Ledger::open(&self.config.delivery.database)
    }

    /// The DKIM signer of `[dkim]`, or `None` when the table is absent. Errors name the key
    /// file and say which key formats are accepted.
    pub fn dkim_signer(&self) -> anyhow::Result<Option<DkimSigner>> {
        self.config.dkim.as_ref().map(DkimSigner::load).transpose()
    }

    /// Where the messages of one issue (or of `test` sends) go: the configured transport, with
    /// the outbox folder narrowed to `outbox_dir/sub` so each issue's files stay apart.
    pub fn transport(&self, sub: &str) -> anyhow::Result<Transport> {
        let mut smtp = self.config.smtp.clone();
        smtp.outbox_dir = smtp.outbox_dir.join(sub);
        Transport::from_config(&smtp)
    }

    /// The issue a command acts on: the one named, else the newest folder in `content/`.
    pub fn resolve_issue(&self, named: Option<IssueId>) -> anyhow::Result<IssueId> {
        if let Some(id) = named {
            return Ok(id);
        }
        let dir = &self.config.content.dir;
        match content::list_issues(dir)?.last() {
            Some(id) => Ok(*id),
            None if !self.config.content.feeds.is_empty() => {
                Ok(IssueId::of_date(self.clock.now().date_naive()))
            }
            None => bail!(
                "no issue folders in {}: make one named like 2021-07, or pass --issue",
                dir.display()
            ),
        }
    }

    /// Loads an issue with everything that joins it: the content folder's entries and, when
    /// feeds are configured, their new items (fetched with `policy`). This is what `check`,
    /// `preview`, `send` and the daemon use. A feed that fails is a problem located at its
    /// `url` line in the config; an issue with any problem is never returned.
    pub async fn collect_issue(&self, id: IssueId, policy: FetchPolicy) -> Result<Issue, Problems> {
        let feeds = &self.config.content.feeds;
        let folder = self.config.content.dir.join(id.to_string());
        // An issue that feeds alone may fill: no folder, or a folder with only issue.toml.
        let empty = || Issue {
            id,
            date: id.first_day(),
            subject: None,
            intro: None,
            preheader: None,
            entries: Vec::new(),
        };
        let mut issue = if feeds.is_empty() || folder.is_dir() {
            match self.load_issue(id) {
                Ok(i) => i,
                // A folder holding only issue.toml is fine when feeds may fill it.
                Err(p) if !feeds.is_empty() && p.all(|k| *k == ProblemKind::NoEntries) => empty(),
                Err(p) => return Err(p),
            }
        } else {
            empty()
        };
        if feeds.is_empty() {
            return Ok(issue);
        }
        let config_problem =
            |m: String| Problem::whole(&self.config.source, m).kind(ProblemKind::Config);
        let (window, sent) = match self.feed_window(&issue) {
            Ok(x) => x,
            Err(e) => return Err(Problems(vec![config_problem(format!("{e:#}"))])),
        };
        let cache = self.data_dir().join("feeds");
        match feed::collect(&self.config.content, &cache, window, &sent, policy).await {
            Ok(collected) => {
                for f in &collected.skipped {
                    tracing::warn!(url = %f.url, "optional feed left out: {f}");
                }
                let folder_dated = !issue.entries.is_empty();
                content::merge_entries(&mut issue, collected.entries);
                if !folder_dated {
                    if let Some(d) = issue.entries.iter().map(|e| e.date).max() {
                        issue.date = d;
                    }
                }
            }
            Err(feed::CollectError::Feeds(errs)) => {
                return Err(Problems(
                    errs.0.iter().map(|f| self.feed_problem(f)).collect(),
                ));
            }
            Err(e @ feed::CollectError::Setup(_)) => {
                return Err(Problems(vec![config_problem(e.to_string())]))
            }
        }
        if issue.entries.is_empty() {
            return Err(Problems(vec![Problem::whole(
                &folder,
                format!(
                    "the issue has no entries: no file in the folder and no new feed item dated {} to {} (exclusive)",
                    window.start, window.end
                ),
            )
            .kind(ProblemKind::NoEntries)]));
        }
        Ok(issue)
    }

    /// The window feed items are taken from, and the keys of items already sent in other issues.
    fn feed_window(
        &self,
        issue: &Issue,
    ) -> anyhow::Result<(feed::Window, std::collections::HashSet<String>)> {
        let ledger = self.open_ledger()?;
        let sent = ledger.sent_feed_items_except(issue.id)?;
        let window = match self.config.content.window {
            FeedWindow::CalendarMonth => feed::Window::calendar_month(issue.id),
            FeedWindow::SinceLastIssue => {
                let previous = ledger
                    .campaigns()?
                    .into_iter()
                    .filter(|c| c.issue < issue.id)
                    .map(|c| c.created_at)
                    .max();
                let today = self.clock.now().date_naive();
                let end = issue.date.max(today).succ_opt().unwrap_or(today);
                match previous.and_then(chrono::DateTime::from_timestamp_millis) {
                    Some(t) => feed::Window {
                        start: t.date_naive(),
                        end,
                    },
                    // The first issue takes its calendar month.
                    None => feed::Window::calendar_month(issue.id),
                }
            }
        };
        Ok((window, sent))
    }

    /// A feed failure as a problem at the feed's `url` line in the config.
    fn feed_problem(&self, failure: &feed::FeedFailure) -> Problem {
        let line = self
            .config
            .content
            .feeds
            .iter()
            .find(|f| f.url == failure.url)
            .map_or(1, |f| f.line);
        Problem::at(&self.config.source, line, failure.to_string()).kind(ProblemKind::Feed {
            url: Box::new(failure.url.clone()),
        })
    }

    /// Loads an issue from the content folder only.
    pub fn load_issue(&self, id: IssueId) -> Result<Issue, Problems> {
        content::load_issue(&self.config.content.dir, id)
    }

    /// Fetches every link of `issue`, each within `[content] link_timeout`.
    pub async fn check_links(&self, issue: &Issue) -> anyhow::Result<crate::links::LinkReport> {
        crate::links::check_issue(issue, self.config.content.link_timeout).await
    }

    pub fn render_context(&self) -> RenderContext<'_> {
        RenderContext {
            newsletter: &self.config.newsletter,
            templates: &self.templates,
            public_url: &self.config.server.public_url,
            web_version: None,
        }
    }

    /// The signed URL of `id`'s preview (`public_url/preview/TOKEN`), valid for
    /// [`PREVIEW_TTL`]: where a test copy's "View in browser" points.
    pub fn preview_url(&self, id: IssueId, key: &TokenKey) -> Url {
        let expires = self.clock.now().timestamp() + PREVIEW_TTL.as_secs() as i64;
        let token = key.sign(Purpose::Preview, &[&id.to_string()], expires);
        self.config
            .server
            .public_url
            .join(&format!("preview/{token}"))
            .expect("public_url is a base URL")
    }

    /// Renders an issue and prepares its message.
    pub fn prepare(
        &self,
        issue: &Issue,
        key: &TokenKey,
        kind: Kind,
    ) -> (Rendered, MessageTemplate) {
        let mut ctx = self.render_context();
        // A test copy's "View in browser" cannot point at the archive, which publishes only
        // sent issues: it gets a signed preview link instead.
        let preview;
        if let Kind::Test { .. } = kind {
            preview = self.preview_url(issue.id, key);
            ctx.web_version = Some(&preview);
        }
        let rendered = render::render_email(issue, ctx);
        let template = MessageTemplate::new(
            &rendered,
            &self.config.newsletter,
            issue.id,
            self.clock.now(),
            &self.config.server.public_url,
            key,
            kind,
        );
        (rendered, template)
    }

    /// Calls `f` for each subscriber: the CSV file's rows (streamed), then `stored`, the ones held
    /// in the database. Bad rows go to `bad`. Suppression is not applied here (the ledger does).
    pub fn each_subscriber(
        &self,
        stored: &[StoredSubscriber],
        mut f: impl FnMut(Subscriber) -> anyhow::Result<()>,
        mut bad: impl FnMut(Problem),
    ) -> anyhow::Result<()> {
        let file = &self.config.subscribers.file;
        if file.exists() {
            subscribers::read(file, |row| {
                match row {
                    Ok(s) => f(s)?,
                    Err(p) => bad(p),
                }
                Ok(())
            })?;
        } else if stored.is_empty() {
            // The config points at it: a config error (exit 2), not a failed send.
            return Err(UsageError::msg(format!(
                "the subscriber list {} does not exist (`[subscribers] file` in {}): create it \
                 with the header line `email,name`, or set `file` to where the list is",
                file.display(),
                self.config.source.display()
            ))
            .into());
        }
        for s in stored {
            match parse_address(&s.address) {
                Ok(address) => f(Subscriber {
                    address,
                    name: s.name.clone(),
                })?,
                Err(m) => bad(
                    Problem::whole(Path::new("ledger subscribers"), m.to_string())
                        .kind(ProblemKind::Subscriber),
                ),
            }
        }
        Ok(())
    }

    /// Where an older brief kept the web version of a sent issue (`DATA/archive/ID.html`); the
    /// ledger holds it for campaigns started since.
    pub fn legacy_web_version_path(&self, id: IssueId) -> PathBuf {
        self.data_dir().join("archive").join(format!("{id}.html"))
    }

    /// The forgotten addresses (see [`Ledger::forget`]), to test addresses against. The token
    /// key is needed (and read) only when there are any.
    pub fn forgotten(&self, ledger: &Ledger) -> anyhow::Result<Forgotten> {
        let hashes = ledger.forgotten_hashes()?;
        let key = if hashes.is_empty() {
            None
        } else {
            Some(self.token_key()?)
        };
        Ok(Forgotten { key, hashes })
    }

    /// Every address brief knows with its state, for `brief subscribers list` and `export`:
    /// the list (the file's rows, then the database's), then sign-ups waiting for their
    /// confirmation, then suppressed addresses on no list. An address shows once; a file row
    /// of a forgotten address shows as [`RosterState::Forgotten`].
    pub fn roster(
        &self,
        ledger: &Ledger,
        mut bad: impl FnMut(Problem),
    ) -> anyhow::Result<Vec<RosterRow>> {
        let stored = ledger.stored_subscribers()?;
        let forgotten = self.forgotten(ledger)?;
        let now = self.clock.now_ms();
        let signups: std::collections::HashMap<AddressKey, crate::ledger::Signup> = ledger
            .signups()?
            .into_iter()
            .filter(|s| s.expires_at > now)
            .map(|s| (AddressKey::from_text(&s.address), s))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut rows = Vec::new();
        let mut listed = Vec::new();
        self.each_subscriber(
            &stored,
            |s| {
                if seen.insert(AddressKey::of(&s.address)) {
                    listed.push(s);
                }
                Ok(())
            },
            &mut bad,
        )?;
        for s in listed {
            let key = AddressKey::of(&s.address);
            let consent = ledger.consent(&key)?;
            let mut row = RosterRow {
                address: s.address.to_string(),
                name: s.name,
                state: RosterState::Active,
                source: consent
                    .as_ref()
                    .map_or_else(|| "file".to_string(), |c| c.source.clone()),
                requested_at: consent.as_ref().and_then(|c| c.requested_at),
                confirmed_at: consent.as_ref().and_then(|c| c.confirmed_at),
            };
            if forgotten.hash_of(&s.address).is_some() {
                row.state = RosterState::Forgotten;
            } else if let Some(r) = ledger.suppression(&key)? {
                // An unsubscribed reader who asked to join again waits for the confirmation.
                match signups.get(&key) {
                    Some(p) => {
                        row.state = RosterState::Pending;
                        row.requested_at = Some(p.requested_at);
                        row.confirmed_at = None;
                    }
                    None => row.state = RosterState::Suppressed(r),
                }
            }
            rows.push(row);
        }
        for p in ledger.signups()? {
            let key = AddressKey::from_text(&p.address);
            if p.expires_at > now && seen.insert(key) {
                rows.push(RosterRow {
                    address: p.address,
                    name: p.name,
                    state: RosterState::Pending,
                    source: "form".to_string(),
                    requested_at: Some(p.requested_at),
                    confirmed_at: None,
                });
            }
        }
        for (address, reason) in ledger.suppressed_addresses()? {
            if seen.insert(AddressKey::from_text(&address)) {
                rows.push(RosterRow {
                    address,
                    name: None,
                    state: RosterState::Suppressed(reason),
                    source: String::new(),
                    requested_at: None,
                    confirmed_at: None,
                });
            }
        }
        Ok(rows)
    }

    /// Erases what brief holds about `address` at its owner's request ([`Ledger::forget`]),
    /// holding the send lock of every unfinished campaign so no run is sending meanwhile, then
    /// the messages to it in the outbox folder ([`crate::transport::remove_outbox_files`]).
    /// Returns what was erased and whether the list file still holds the address (brief does
    /// not edit that file: staff must remove the line).
    pub fn forget(&self, ledger: &mut Ledger, address: &Address) -> anyhow::Result<Forgetting> {
        let key = self.token_key()?;
        let hash = key.forget_hash(address.as_ref());
        let mut locks = Vec::new();
        for c in ledger.campaigns()?.iter().filter(|c| !c.finished) {
            locks.push(ledger.lock_campaign(c)?);
        }
        let address_key = AddressKey::of(address);
        let forgot = ledger.forget(&address_key, &hash, self.clock.now_ms())?;
        drop(locks);
        // Whatever the transport is now: files an earlier outbox run wrote are kept there.
        let outbox_files =
            crate::transport::remove_outbox_files(&self.config.smtp.outbox_dir, &address_key)?;
        let mut in_file = false;
        if self.config.subscribers.file.exists() {
            self.each_subscriber(
                &[],
                |s| {
                    in_file |= AddressKey::of(&s.address) == address_key;
                    Ok(())
                },
                |_| {},
            )?;
        }
        Ok(Forgetting {
            rows: forgot,
            in_file,
            outbox_files,
        })
    }

    /// Whether `key` is on the list: held in the database or a good row of the CSV file
    /// (suppressed or not).
    pub fn on_the_list(&self, ledger: &Ledger, key: &AddressKey) -> anyhow::Result<bool> {
        if ledger.is_stored_subscriber(key)? {
            return Ok(true);
        }
        if !self.config.subscribers.file.exists() {
            return Ok(false);
        }
        let mut found = false;
        self.each_subscriber(
            &[],
            |s| {
                found |= AddressKey::of(&s.address) == *key;
                Ok(())
            },
            |_| {},
        )?;
        Ok(found)
    }

    /// How many readers a campaign started now would mail: the distinct addresses of the list
    /// (file and database) that are not suppressed.
    pub fn reachable_readers(&self, ledger: &Ledger) -> anyhow::Result<u64> {
        let stored = ledger.stored_subscribers()?;
        let forgotten = self.forgotten(ledger)?;
        let mut seen = std::collections::HashSet::new();
        let mut readers = 0;
        self.each_subscriber(
            &stored,
            |s| {
                let key = AddressKey::of(&s.address);
                if ledger.suppression(&key)?.is_none()
                    && forgotten.hash_of(&s.address).is_none()
                    && seen.insert(key)
                {
                    readers += 1;
                }
                Ok(())
            },
            |_| {},
        )?;
        Ok(readers)
    }

    /// The send engine's run of `campaign`: the one place a run is put together, for
    /// `brief send` and the daemon alike. `ledger` is the run's own connection.
    pub fn campaign_run(
        &self,
        ledger: SharedLedger,
        campaign: Campaign,
        template: Arc<MessageTemplate>,
        transport: Arc<Transport>,
        dkim: Option<Arc<DkimSigner>>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Run> {
        Ok(Run {
            ledger,
            campaign,
            template,
            transport,
            envelope: self.envelope()?,
            settings: Settings {
                messages_per_connection: self.config.smtp.max_messages_per_connection,
                ..Settings::from(&self.config.delivery)
            },
            clock: self.clock.clone(),
            metrics,
            dkim,
        })
    }

    /// The envelope sender of campaign messages: VERP under `[bounces] address`, else the From
    /// address.
    pub fn envelope(&self) -> anyhow::Result<Envelope> {
        Ok(match &self.config.bounces {
            None => Envelope::Fixed(self.config.newsletter.from.email.clone()),
            Some(b) => Envelope::Verp {
                user: b.address.email.user().to_string(),
                domain: b.address.email.domain().to_string(),
                key: Box::new(self.token_key()?),
            },
        })
    }

    /// Takes one message that came back to the bounce address (from `brief bounces import`,
    /// the webhook or the IMAP mailbox): classifies it, attributes it to a delivery, and
    /// records it under the policy of [`Ledger::record_bounce`]. Counts it in
    /// `brief_bounces_total` and logs a suppression with the address as a keyed hash.
    ///
    /// Only unforgeable evidence attributes a report: a VERP tag whose HMAC checks out under
    /// `key`, else a returned Message-ID whose MAC does (see [`crate::message::is_campaign_id`]).
    /// A returned Message-ID of a campaign stored before keyed ids (which anyone can compute
    /// from the issue id, the address and the From domain) is recorded against its delivery as
    /// [`Evidence::Unverified`], for staff to see, and suppresses nobody. A report nothing
    /// attributes is *unattributed*: counted and logged, nothing changed.
    pub fn take_bounce(
        &self,
        ledger: &mut Ledger,
        key: &TokenKey,
        metrics: &Metrics,
        raw: &[u8],
    ) -> anyhow::Result<TakenBounce> {
        let bounces = self.config.bounces.as_ref();
        let address = bounces.map(|b| b.address.email.to_string());
        let report = bounce::parse(raw, address.as_deref());
        let Some(kind) = report.kind.recorded() else {
            metrics.bounce(BounceMetric::ignored);
            return Ok(TakenBounce {
                report,
                outcome: BounceHandling::Ignored,
            });
        };
        let Some((target, evidence)) = attribute(ledger, key, &report)? else {
            tracing::info!(
                kind = kind.as_str(),
                reporting_mta = report.reporting_mta.as_deref().unwrap_or("-"),
                "an unattributed {kind} report (no valid VERP tag, no keyed Message-ID of ours); \
                 nothing changed"
            );
            metrics.bounce(BounceMetric::unattributed);
            return Ok(TakenBounce {
                report,
                outcome: BounceHandling::Unattributed,
            });
        };
        let report_key = match &report.report_id {
            Some(id) => format!("mid:{id}"),
            None => format!("sha256:{}", crate::token::hex(&Sha256::digest(raw))),
        };
        let soft_limit = bounces.map_or_else(crate::config::default_soft_limit, |b| b.soft_limit);
        let outcome = ledger.record_bounce(
            &target,
            &NewBounce {
                kind,
                evidence,
                report_key: &report_key,
                status: report.status.as_deref(),
                diagnostic: report.diagnostic.as_deref(),
                reporting_mta: report.reporting_mta.as_deref(),
                at: self.clock.now_ms(),
            },
            soft_limit,
        )?;
        let outcome = match outcome {
            BounceOutcome::Duplicate => BounceHandling::Duplicate(target),
            BounceOutcome::Recorded { .. } if evidence == Evidence::Unverified => {
                tracing::info!(
                    recipient = %key.tag(&target.address),
                    issue = %target.issue,
                    kind = kind.as_str(),
                    "a {kind} report names a delivery by an unkeyed Message-ID only (a campaign \
                     stored before keyed ids): recorded as unverified, nobody suppressed"
                );
                metrics.bounce(BounceMetric::unattributed);
                BounceHandling::Unverified(target)
            }
            BounceOutcome::Recorded { suppressed } => {
                metrics.bounce(kind.into());
                if let Some(reason) = suppressed {
                    tracing::info!(
                        recipient = %key.tag(&target.address),
                        issue = %target.issue,
                        kind = kind.as_str(),
                        status = report.status.as_deref().unwrap_or("-"),
                        "suppressed as {reason} after a {kind} report"
                    );
                }
                BounceHandling::Recorded { target, suppressed }
            }
        };
        Ok(TakenBounce { report, outcome })
    }

    /// Adds the rows of the `email,name` CSV at `file` to the list held in the database. The
    /// import policy: a suppressed address (unsubscribed, bounced) is never re-subscribed, an
    /// address already on the list is left as it is, and a bad row is reported with its line
    /// (through `bad`) and skipped. A forgotten address counts as suppressed.
    pub fn import_subscribers(
        &self,
        ledger: &mut Ledger,
        file: &Path,
        mut bad: impl FnMut(Problem),
    ) -> anyhow::Result<Imported> {
        let mut rows = Vec::new();
        let mut n = Imported::default();
        subscribers::read(file, |row| {
            match row {
                Ok(s) => rows.push(s),
                Err(p) => {
                    n.bad += 1;
                    bad(p);
                }
            }
            Ok(())
        })?;
        let now = self.clock.now_ms();
        let forgotten = self.forgotten(ledger)?;
        for s in rows {
            if ledger.suppression(&AddressKey::of(&s.address))?.is_some()
                || forgotten.hash_of(&s.address).is_some()
            {
                n.suppressed += 1;
            } else if ledger.add_subscriber(&s.address, s.name.as_deref(), now)? {
                n.added += 1;
            } else {
                n.known += 1;
            }
        }
        Ok(n)
    }

    /// Sends `template` to each address in `to` over one connection of the `sub` transport
    /// (the outbox folder `outbox_dir/sub`), signed when `dkim` is set; no retries. Calls
    /// `on_reply` as each reply comes in and returns them all; a failure to one address does not
    /// stop the others. What test sends and confirmation messages go through.
    pub async fn send_each(
        &self,
        template: &MessageTemplate,
        sub: &str,
        dkim: Option<&DkimSigner>,
        to: &[Address],
        on_reply: &mut impl FnMut(&TestReply),
    ) -> anyhow::Result<Vec<TestReply>> {
        let transport = self.transport(sub)?;
        // Not a campaign delivery, so no VERP tag: a bounce of it reaches the bounce mailbox
        // and names no delivery.
        let from = match &self.config.bounces {
            Some(b) => &b.address.email,
            None => &self.config.newsletter.from.email,
        };
        let mut replies = Vec::with_capacity(to.len());
        let mut conn: Option<Connection> = None;
        for address in to {
            // A connection that failed is replaced; a test send has no retries, so each reply
            // (or connect error) is reported as it is.
            let result = async {
                if !conn.as_ref().is_some_and(|c| c.is_usable()) {
                    if let Some(old) = conn.take() {
                        old.close().await;
                    }
                    conn = Some(transport.connect().await?);
                }
                let mut raw = template.to_bytes(Recipient {
                    address,
                    name: None,
                });
                if let Some(d) = dkim {
                    d.sign_in_place(&mut raw, self.clock.now().timestamp());
                }
                conn.as_mut()
                    .expect("connected")
                    .send(from, address, &raw, None)
                    .await
            }
            .await;
            let reply = match result {
                Ok(r) => TestReply {
                    address: address.clone(),
                    code: Some(r.code),
                    text: r.text,
                    accepted: true,
                },
                Err(f) => {
                    tracing::warn!(
                        to = %template.key().tag(address.as_ref()),
                        code = f.code(),
                        reply = %template.key().redact(f.text()),
                        "sending to one address failed"
                    );
                    TestReply {
                        address: address.clone(),
                        code: f.code(),
                        text: f.to_string(),
                        accepted: false,
                    }
                }
            };
            on_reply(&reply);
            replies.push(reply);
        }
        if let Some(c) = conn {
            c.close().await;
        }
        Ok(replies)
    }

    /// A sample recipient for previews.
    pub fn sample_recipient() -> (Address, &'static str) {
        (
            SAMPLE_ADDRESS.parse().expect("literal address"),
            "Sample Reader",
        )
    }

    /// The whole message for the sample recipient.
    pub fn sample_message(template: &MessageTemplate) -> Vec<u8> {
        let (address, name) = Self::sample_recipient();
        template.to_bytes(Recipient {
            address: &address,
            name: Some(name),
        })
    }
}

/// What [`App::import_subscribers`] did, row by row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub added: u64,
    /// Already on the list.
    pub known: u64,
    /// Unsubscribed, bounced, complained or forgotten: not re-subscribed.
    pub suppressed: u64,
    pub bad: u64,
}

/// The addresses forgotten at their owners' request, as keyed hashes ([`App::forgotten`]).
pub struct Forgotten {
    key: Option<TokenKey>,
    hashes: std::collections::HashSet<String>,
}

impl Forgotten {
    /// The keyed hash of `address` when it was forgotten.
    pub fn hash_of(&self, address: &Address) -> Option<String> {
        let hash = self.key.as_ref()?.forget_hash(address.as_ref());
        self.hashes.contains(&hash).then_some(hash)
    }
}

/// The state of an address in `brief subscribers list` and `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RosterState {
    /// On the list and not suppressed: gets the next issue.
    Active,
    /// Asked to join (a sign-up request), not confirmed yet.
    Pending,
    Suppressed(Reason),
    /// Forgotten at its owner's request, yet still in the list file.
    Forgotten,
}

impl RosterState {
    pub fn as_str(self) -> &'static str {
        match self {
            RosterState::Active => "active",
            RosterState::Pending => "pending",
            RosterState::Suppressed(r) => r.as_str(),
            RosterState::Forgotten => "forgotten",
        }
    }
}

/// One address of [`App::roster`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterRow {
    pub address: String,
    pub name: Option<String>,
    pub state: RosterState,
    /// `file`, `staff` (`subscribers add`, `import`), `form` (the reader confirmed), or empty
    /// (a suppressed address on no list).
    pub source: String,
    /// When the reader asked to join, when known (Unix milliseconds).
    pub requested_at: Option<i64>,
    /// When the reader confirmed, when known.
    pub confirmed_at: Option<i64>,
}

/// A Unix-milliseconds time as RFC 3339 UTC (`2021-07-01T09:00:00.000Z`); empty for `None`.
pub fn fmt_ms(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// What [`App::forget`] erased.
#[derive(Clone, Copy, Debug)]
pub struct Forgetting {
    /// The ledger's rows.
    pub rows: Forgot,
    /// The list file still holds the address (brief does not edit it).
    pub in_file: bool,
    /// The messages to the address deleted from the outbox folder.
    pub outbox_files: u64,
}

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
        }
    }
}

impl ReportRow<'_> {
    /// The CSV header: the field names, in order, as the JSON lines name them.
    pub const COLUMNS: [&'static str; 13] = [
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
    ];

    /// The row as CSV fields, in the order of [`ReportRow::COLUMNS`] (an absent value is empty).
    pub fn cells(&self) -> [String; 13] {
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

/// The server's answer to one test-send message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestReply {
    pub address: Address,
    /// The SMTP reply code; `None` when the connection failed before a reply.
    pub code: Option<u16>,
    pub text: String,
    /// Whether the server took the message (2xx).
    pub accepted: bool,
}

/// Writes a file readable only by its owner.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
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
                "a@example.org,'=1+1,failed,1,550,'-ERR,<m@x>,1970-01-01T00:00:00.000Z,,,false,1,"
            )
        );
    }
}
