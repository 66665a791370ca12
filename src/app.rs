//! The pieces every command needs, put together once: config, templates, token key, ledger.
//!
//! Commands and the daemon go through [`App`] so that "which issue", "who are the subscribers"
//! and "how is a campaign started" have one answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use lettre::Address;
use url::Url;

use crate::clock::Clock;
use crate::config::{Config, FeedWindow};
use crate::content;
use crate::deliver::{Envelope, Run, Settings};
use crate::dkim::DkimSigner;
use crate::error::{Problem, ProblemKind, Problems};
use crate::feed::{self, FetchPolicy};
use crate::issue::{Issue, IssueId};
use crate::keyfile::Need;
use crate::lang::{Lang, Languages};
use crate::ledger::{Campaign, Ledger, SharedLedger};
use crate::message::{Kind, MessageTemplate, Recipient};
use crate::metrics::Metrics;
use crate::render::{self, Context as RenderContext, Rendered};
use crate::templates::Templates;
use crate::token::{Purpose, TokenKey};
use crate::transport::{Connection, Transport};

/// An issue's editions as read from its folder: the languages asked for, and their editions
/// or problems.
type Loaded = (Vec<Lang>, Result<Vec<(Lang, Issue)>, Problems>);

/// How an issue's editions are read from its folder.
type Loader = fn(&App, IssueId) -> Loaded;

/// The first edition: the default language's.
fn first(editions: Vec<(Lang, Issue)>) -> Issue {
    editions
        .into_iter()
        .next()
        .map(|(_, i)| i)
        .expect("an issue has its default language's edition")
}

/// Whether a feed entry belongs in `lang`'s edition: its language matches `lang` (by prefix),
/// or it has none that a configured language matches. Folder entries belong everywhere.
fn in_edition(entry: &crate::issue::Entry, lang: &Lang, languages: &Languages) -> bool {
    match &entry.source {
        crate::issue::EntrySource::Feed { lang: Some(l), .. } => {
            languages.matching(l.as_str()).is_none_or(|m| m == lang)
        }
        _ => true,
    }
}

/// Loaded configuration and what follows from it.
pub struct App {
    pub config: Config,
    pub templates: Templates,
    pub clock: Arc<dyn Clock>,
    /// Wakes the daemon's notice worker (`notices::run`) when a notice is queued or put back
    /// for a retry; nobody waits on it outside the daemon.
    pub notice_wake: Arc<tokio::sync::Notify>,
    /// Loaded once at start: see [`App::key`].
    key: TokenKey,
}

/// brief's data folder, where the token key file is: the ledger's folder.
fn data_dir_of(config: &Config) -> PathBuf {
    config
        .delivery
        .database
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// The address previews are made out to.
pub const SAMPLE_ADDRESS: &str = "reader@example.org";

/// How long a test copy's "View in browser" link (a signed preview) works: long enough to
/// review an issue over a fortnight, short enough that a forwarded test copy stops showing a
/// draft.
pub const PREVIEW_TTL: std::time::Duration = std::time::Duration::from_secs(14 * 24 * 3600);

impl App {
    /// The app of a command whose links are mailed ([`Need::Lasting`]): the token key file is
    /// made if there is none.
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        App::with_key(config, clock, Need::Lasting)
    }

    /// The app of a command that needs the token key as `need`, which is loaded now, once.
    pub fn with_key(config: Config, clock: Arc<dyn Clock>, need: Need) -> anyhow::Result<App> {
        let templates =
            Templates::load(config.newsletter.templates.as_deref(), &config.newsletter)?;
        let key = crate::keyfile::load(&config, &data_dir_of(&config), need)?;
        Ok(App {
            config,
            templates,
            clock,
            notice_wake: Arc::new(tokio::sync::Notify::new()),
            key,
        })
    }

    /// brief's data folder: the ledger's folder.
    pub fn data_dir(&self) -> PathBuf {
        data_dir_of(&self.config)
    }

    /// The key that signs every link and keyed hash, loaded once when the app was made (see
    /// [`crate::keyfile`]).
    pub fn key(&self) -> &TokenKey {
        &self.key
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
    ///
    /// The issue is in the default language: the folder's translations are not read, and feed
    /// items in another configured language are left out (see [`App::collect_editions`]).
    pub async fn collect_issue(&self, id: IssueId, policy: FetchPolicy) -> Result<Issue, Problems> {
        let editions = self.collect(id, policy, Self::default_only).await?;
        Ok(first(editions))
    }

    /// The issue once per configured language, the default first (see
    /// [`content::load_editions`]), each with the feed items that belong to it: an item in a
    /// configured language (its feed's `lang`, else what the feed says, matched by prefix) goes
    /// into that language's edition only; an item without a language, or in one that is not
    /// configured, goes into every edition, so no reader misses it. Every problem of every
    /// language is returned together; with one language this is `[(default, collect_issue)]`.
    pub async fn collect_editions(
        &self,
        id: IssueId,
        policy: FetchPolicy,
    ) -> Result<Vec<(Lang, Issue)>, Problems> {
        self.collect(id, policy, Self::every_language).await
    }

    /// [`App::collect_issue`] with each feed's last fetched copy instead of a fetch (a feed
    /// never fetched is a problem saying so), and the cache's state of every feed: what the
    /// console's pages show, so no page load fetches a feed. Blocking (the folder, the ledger
    /// and the cache are read here): call it inside `spawn_blocking`.
    pub fn collect_issue_cached(
        &self,
        id: IssueId,
    ) -> (Result<Issue, Problems>, Vec<feed::FeedStatus>) {
        let (editions, statuses) = self.collect_cached(id, Self::default_only);
        (editions.map(first), statuses)
    }

    /// [`App::collect_editions`] from the feeds' cached copies, as [`App::collect_issue_cached`].
    /// Blocking.
    #[allow(clippy::type_complexity)]
    pub fn collect_editions_cached(
        &self,
        id: IssueId,
    ) -> (Result<Vec<(Lang, Issue)>, Problems>, Vec<feed::FeedStatus>) {
        self.collect_cached(id, Self::every_language)
    }

    /// The default language's issue from the folder, as the one edition.
    fn default_only(&self, id: IssueId) -> Loaded {
        let lang = self.config.newsletter.languages.default_lang().clone();
        let issue = self.load_issue(id).map(|i| vec![(lang.clone(), i)]);
        (vec![lang], issue)
    }

    /// Every configured language's edition from the folder.
    fn every_language(&self, id: IssueId) -> Loaded {
        let languages = &self.config.newsletter.languages;
        let editions = content::load_editions(&self.config.content.dir, id, languages);
        (languages.all().to_vec(), editions)
    }

    async fn collect(
        &self,
        id: IssueId,
        policy: FetchPolicy,
        load: Loader,
    ) -> Result<Vec<(Lang, Issue)>, Problems> {
        let (editions, window, sent) = match self.editions_before_feeds(id, load)? {
            Ok(editions) => return Ok(editions),
            Err(x) => x,
        };
        let cache = self.data_dir().join("feeds");
        let collected = feed::collect(
            &self.config.content,
            &cache,
            window,
            &sent,
            policy,
            self.clock.as_ref(),
        )
        .await;
        self.join_feeds(editions, window, collected)
    }

    #[allow(clippy::type_complexity)]
    fn collect_cached(
        &self,
        id: IssueId,
        load: Loader,
    ) -> (Result<Vec<(Lang, Issue)>, Problems>, Vec<feed::FeedStatus>) {
        let cache = self.data_dir().join("feeds");
        let statuses = feed::statuses(&self.config.content, &cache);
        let editions = match self.editions_before_feeds(id, load) {
            Ok(Ok(editions)) => Ok(editions),
            Ok(Err((editions, window, sent))) => {
                let collected = feed::collect_cached(&self.config.content, &cache, window, &sent);
                self.join_feeds(editions, window, collected)
            }
            Err(p) => Err(p),
        };
        (editions, statuses)
    }

    /// The folder's part of an issue's editions (as `load` reads them): `Ok(Ok(editions))` when
    /// no feeds are configured (they are whole), else `Ok(Err(..))` with the window and the
    /// keys already sent that their feed items are taken with.
    #[allow(clippy::type_complexity)]
    fn editions_before_feeds(
        &self,
        id: IssueId,
        load: Loader,
    ) -> Result<
        Result<
            Vec<(Lang, Issue)>,
            (
                Vec<(Lang, Issue)>,
                feed::Window,
                std::collections::HashSet<String>,
            ),
        >,
        Problems,
    > {
        let feeds = &self.config.content.feeds;
        let folder = self.config.content.dir.join(id.to_string());
        // An issue that feeds alone may fill: no folder, or a folder with only issue.toml.
        let empty = |langs: Vec<Lang>| {
            langs
                .into_iter()
                .map(|l| {
                    let issue = Issue {
                        id,
                        date: id.first_day(),
                        subject: None,
                        intro: None,
                        preheader: None,
                        entries: Vec::new(),
                    };
                    (l, issue)
                })
                .collect::<Vec<_>>()
        };
        let editions = if feeds.is_empty() || folder.is_dir() {
            match load(self, id) {
                (_, Ok(e)) => e,
                // A folder holding only issue.toml is fine when feeds may fill it.
                (langs, Err(p)) if !feeds.is_empty() && p.all(|k| *k == ProblemKind::NoEntries) => {
                    empty(langs)
                }
                (_, Err(p)) => return Err(p),
            }
        } else {
            empty(load(self, id).0)
        };
        if feeds.is_empty() {
            return Ok(Ok(editions));
        }
        match self.feed_window(&editions[0].1) {
            Ok((window, sent)) => Ok(Err((editions, window, sent))),
            Err(e) => {
                let database = &self.config.delivery.database;
                Err(Problems(vec![Problem::whole(
                    database,
                    format!("cannot read the ledger for the feed window (the items already sent, the last issue's date): {e:#}"),
                )
                .kind(ProblemKind::Ledger)]))
            }
        }
    }

    /// The editions with the feed items `collected` joined to their folder's entries, each item
    /// to the editions of its language (see [`App::collect_editions`]).
    fn join_feeds(
        &self,
        mut editions: Vec<(Lang, Issue)>,
        window: feed::Window,
        collected: Result<feed::Collected, feed::CollectError>,
    ) -> Result<Vec<(Lang, Issue)>, Problems> {
        let config_problem =
            |m: String| Problem::whole(&self.config.source, m).kind(ProblemKind::Config);
        let collected = match collected {
            Ok(collected) => collected,
            Err(feed::CollectError::Feeds(errs)) => {
                return Err(Problems(
                    errs.0.iter().map(|f| self.feed_problem(f)).collect(),
                ));
            }
            Err(e @ feed::CollectError::Setup(_)) => {
                return Err(Problems(vec![config_problem(e.to_string())]))
            }
        };
        for f in &collected.skipped {
            tracing::warn!(url = %f.url, "optional feed left out: {f}");
        }
        let languages = &self.config.newsletter.languages;
        for (lang, issue) in &mut editions {
            let items = collected
                .entries
                .iter()
                .filter(|e| in_edition(e, lang, languages))
                .cloned()
                .collect();
            let folder_dated = !issue.entries.is_empty();
            content::merge_entries(issue, items);
            if !folder_dated {
                if let Some(d) = issue.entries.iter().map(|e| e.date).max() {
                    issue.date = d;
                }
            }
        }
        let Some((_, first)) = editions.first() else {
            return Ok(editions);
        };
        let folder = self.config.content.dir.join(first.id.to_string());
        if editions.iter().all(|(_, i)| i.entries.is_empty()) {
            return Err(Problems(vec![Problem::whole(
                &folder,
                format!(
                    "the issue has no entries: no file in the folder and no new feed item dated {} to {} (exclusive)",
                    window.start, window.end
                ),
            )
            .kind(ProblemKind::NoEntries)]));
        }
        // Some language has entries and another none: not an empty issue, a problem.
        let bare: Vec<Problem> = editions
            .iter()
            .filter(|(_, i)| i.entries.is_empty())
            .map(|(lang, _)| {
                Problem::whole(
                    &folder,
                    format!(
                        "the `{lang}` edition has no entries: no file in the folder and no new feed item in `{lang}` or without a language dated {} to {} (exclusive), while other languages have some: add entries with their translations, or set the feeds' `lang`",
                        window.start, window.end
                    ),
                )
            })
            .collect();
        if !bare.is_empty() {
            return Err(Problems(bare));
        }
        Ok(editions)
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

    /// Fetches every link of every edition, each URL once (where it first appears, the default
    /// language's files first), each within `[content] link_timeout`.
    pub async fn check_edition_links(
        &self,
        editions: &[(Lang, Issue)],
    ) -> anyhow::Result<crate::links::LinkReport> {
        let Some((_, first)) = editions.first() else {
            return Ok(crate::links::LinkReport::default());
        };
        let mut all = first.clone();
        all.entries = editions
            .iter()
            .flat_map(|(_, i)| i.entries.iter().cloned())
            .collect();
        self.check_links(&all).await
    }

    /// The renderer's context in the default language.
    pub fn render_context(&self) -> RenderContext<'_> {
        RenderContext::of(
            &self.templates,
            &self.templates.editions()[0],
            &self.config.server.public_url,
        )
    }

    /// The renderer's context in `lang` (the default language when it is not configured).
    pub fn render_context_in(&self, lang: &crate::lang::Lang) -> RenderContext<'_> {
        RenderContext::of(
            &self.templates,
            self.templates.edition(lang),
            &self.config.server.public_url,
        )
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

    /// Renders an issue and prepares its message, in the default language.
    pub fn prepare(
        &self,
        issue: &Issue,
        key: &TokenKey,
        kind: Kind,
    ) -> (Rendered, MessageTemplate) {
        let lang = self.config.newsletter.languages.default_lang().clone();
        self.prepare_in(&lang, issue, key, kind)
    }

    /// Renders `issue` (its edition in `lang`) and prepares its message in `lang`: the
    /// catalogue's words, the newsletter's texts in that language, `Content-Language`.
    pub fn prepare_in(
        &self,
        lang: &crate::lang::Lang,
        issue: &Issue,
        key: &TokenKey,
        kind: Kind,
    ) -> (Rendered, MessageTemplate) {
        let mut ctx = self.render_context_in(lang);
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
            ctx.newsletter,
            issue.id,
            self.clock.now(),
            &self.config.server.public_url,
            key,
            kind,
        );
        (rendered, template)
    }

    /// Where an older brief kept the web version of a sent issue (`DATA/archive/ID.html`); the
    /// ledger holds it for campaigns started since.
    pub fn legacy_web_version_path(&self, id: IssueId) -> PathBuf {
        self.data_dir().join("archive").join(format!("{id}.html"))
    }

    /// The send engine's run of `campaign`: the one place a run is put together, for
    /// `brief send` and the daemon alike. `ledger` is the run's own connection.
    pub fn campaign_run(
        &self,
        ledger: SharedLedger,
        campaign: Campaign,
        editions: Arc<crate::deliver::Editions>,
        transport: Arc<Transport>,
        dkim: Option<Arc<DkimSigner>>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Run> {
        Ok(Run {
            ledger,
            campaign,
            editions,
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
                key: Box::new(self.key.clone()),
            },
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger that cannot be read while the feed window is worked out is the ledger's
    /// problem, at the database's path, not a config problem at brief.toml.
    #[tokio::test]
    async fn a_ledger_failure_in_the_feed_window_names_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the database file should be: SQLite cannot open it.
        let database = dir.path().join("brief.db");
        std::fs::create_dir_all(&database).unwrap();
        let text = format!(
            "{}\n[content]\ndir = {:?}\n[[content.feeds]]\nurl = \"http://127.0.0.1:9/feed\"\n\
             [delivery]\ndatabase = {database:?}\n[server]\nsecret_env = \"BRIEF_UNIT_SECRET\"\n",
            crate::config::MINIMAL_FOR_TESTS,
            dir.path().join("content"),
        );
        let mut config = crate::config::parse(&text, &dir.path().join("brief.toml")).unwrap();
        config.server.secret = Some(crate::config::Secret::new("k".repeat(32)));
        let clock = Arc::new(crate::clock::FixedClock::new(chrono::DateTime::UNIX_EPOCH));
        let app = App::new(config, clock).unwrap();
        let problems = app
            .collect_issue("2021-07".parse().unwrap(), FetchPolicy::Once)
            .await
            .unwrap_err();
        let [p] = &problems.0[..] else {
            panic!("{problems}")
        };
        assert_eq!(p.kind, ProblemKind::Ledger, "{p}");
        assert_eq!(p.path, database);
        assert!(p.message.contains("feed window"), "{p}");
    }
}
