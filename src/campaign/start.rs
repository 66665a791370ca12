//! The steps of a campaign's lifecycle that change the ledger: its start with the whole list,
//! a corrected message stored as a new revision, the failed deliveries put back; and the
//! message a campaign goes on with.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::content;
use crate::deliver::Editions;
use crate::error::{Problem, ProblemKind, Problems};
use crate::feed::FetchPolicy;
use crate::issue::{Issue, IssueId};
use crate::lang::Lang;
use crate::ledger::{Campaign, CampaignId, CampaignMessage, Counts, Ledger, SharedLedger, Trigger};
use crate::message::{Kind, MessageTemplate};
use crate::render;
use crate::token::TokenKey;

use super::{decide, Decision, Intent};

/// One language's edition of an issue, rendered and ready to store or send.
pub struct Prepared {
    pub lang: Lang,
    pub issue: Issue,
    pub subject: String,
    pub template: MessageTemplate,
}

/// Renders each of `editions` (from [`App::collect_editions`], the default language first)
/// as a message of `kind` in its language.
pub fn prepare(
    app: &App,
    editions: Vec<(Lang, Issue)>,
    key: &TokenKey,
    kind: Kind,
) -> Vec<Prepared> {
    editions
        .into_iter()
        .map(|(lang, issue)| {
            let (rendered, template) = app.prepare_in(&lang, &issue, key, kind);
            Prepared {
                lang,
                issue,
                subject: rendered.subject,
                template,
            }
        })
        .collect()
}

/// Creates the campaign of the issue of `editions` (one per configured language, the default
/// language's first) with every subscriber, unless it exists. Returns the campaign, whether
/// it is new, and the bad subscriber rows that were skipped. The list is streamed into the
/// campaign's transaction: memory does not grow with its length. What the campaign sends
/// (each language's `template`, `subject` and web version) is stored with it in the same
/// transaction, and each delivery records the language it is sent in (the reader's, as
/// [`crate::lang::Languages::pick`] resolves it: a language that is not configured gets the
/// default): every delivery of the campaign, resumed or not, is its language's message.
/// `canary` opens a window in which only staff get the message.
pub fn begin(
    app: &App,
    ledger: &mut Ledger,
    editions: &[Prepared],
    trigger: Trigger,
    canary: Option<std::time::Duration>,
) -> anyhow::Result<(Campaign, bool, Vec<Problem>)> {
    let mut problems = Vec::new();
    let Some(first) = editions.first() else {
        anyhow::bail!("a campaign needs at least one edition");
    };
    let id = first.issue.id;
    if let Some(c) = ledger.campaign(id)? {
        return Ok((c, false, problems));
    }
    let held = crate::audience::Held::load(ledger)?;
    let forgotten = crate::audience::forgotten(app, ledger)?;
    let messages: Vec<CampaignMessage> = editions
        .iter()
        .map(|e| campaign_message(app, e, e.template.freeze()))
        .collect();
    let languages = &app.config.newsletter.languages;
    let now = app.clock.instant();
    let (c, new) = ledger.create_campaign(id, &messages, trigger, now, canary, |sink| {
        crate::audience::each_subscriber(
            app,
            &held,
            |s| {
                // The list file may still hold a forgotten address: it comes out suppressed,
                // and only its hash is written.
                if let Some(hash) = forgotten.hash_of(&s.address) {
                    sink.add_forgotten(&hash)?;
                    return Ok(());
                }
                let lang = languages.pick(s.lang.as_ref().map(|l| l.as_str()));
                sink.add(
                    &s.address,
                    s.name.as_deref(),
                    &first.template.message_id(&s.address),
                    Some(lang.as_str()),
                )?;
                Ok(())
            },
            |p| problems.push(p),
        )
    })?;
    if new {
        record_feed_items(ledger, c.id, editions)?;
    }
    Ok((c, new, problems))
}

/// A campaign [`from_folder`] started, with what its run needs.
pub struct Started {
    /// The run's own ledger connection.
    pub ledger: Ledger,
    /// Its message in each language.
    pub editions: Editions,
    pub campaign: Campaign,
    /// Subscriber rows that were skipped.
    pub problems: Vec<Problem>,
    pub counts: Counts,
}

/// Why [`from_folder`] started nothing.
#[derive(Debug)]
pub enum NotStarted {
    /// The issue has a campaign already (finished or not): nothing more is sent.
    Exists,
    /// The issue has no entries.
    Empty,
    /// The issue has problems (a feed that failed, a bad entry): no partial issue is sent.
    Problems(Problems),
    /// The caller's stop came first.
    Stopped,
    /// The ledger failed.
    Failed(anyhow::Error),
}

/// Starts the campaign of issue `id` from its folder (and feeds, fetched under `fetch`),
/// rendered now with `key`, unless it has one: what a schedule fire and the console's "Send
/// now" do ([`Intent::Start`]). The campaign takes the configured canary window; it is created
/// on a ledger connection of its own, opened off the async threads, which the run then keeps.
/// `shared` answers the cheap question first, so a fire that finds its month sent touches
/// neither the folder nor the feeds.
pub async fn from_folder(
    app: &Arc<App>,
    shared: &SharedLedger,
    key: &TokenKey,
    id: IssueId,
    trigger: Trigger,
    fetch: FetchPolicy,
    stop: &CancellationToken,
) -> Result<Started, NotStarted> {
    let existing = shared
        .with(move |l| l.campaign(id))
        .await
        .map_err(|e| NotStarted::Failed(e.context("cannot read the ledger")))?;
    if decide(existing, 0, Intent::Start) != Decision::Start {
        return Err(NotStarted::Exists);
    }
    // Nothing written for the month (no entry file, no issue.toml) and no feed: empty, known
    // without reading a file. A folder with an issue.toml is read, so its problems are told.
    let (cfg, folder) = (
        &app.config.content,
        app.config.content.dir.join(id.to_string()),
    );
    if cfg.feeds.is_empty()
        && !content::has_entry_files(&folder)
        && !folder.join("issue.toml").exists()
    {
        return Err(NotStarted::Empty);
    }
    let loaded = tokio::select! {
        r = app.collect_editions(id, fetch) => r,
        () = stop.cancelled() => return Err(NotStarted::Stopped),
    };
    let editions = match loaded {
        Ok(e) if e.first().is_none_or(|(_, i)| i.entries.is_empty()) => {
            return Err(NotStarted::Empty)
        }
        Ok(e) => e,
        Err(p) if p.all(|k| *k == ProblemKind::NoEntries) => return Err(NotStarted::Empty),
        Err(p) => return Err(NotStarted::Problems(p)),
    };
    let prepared = prepare(app, editions, key, Kind::Campaign);
    let app = app.clone();
    let canary = app.config.schedule.canary;
    let begun = tokio::task::spawn_blocking(move || {
        let mut ledger = app.open_ledger()?;
        let (campaign, new, problems) = begin(&app, &mut ledger, &prepared, trigger, canary)?;
        let counts = ledger.counts(campaign.id)?;
        Ok::<_, anyhow::Error>(new.then_some(Started {
            ledger,
            editions: into_editions(prepared),
            campaign,
            problems,
            counts,
        }))
    })
    .await
    .context("the campaign task panicked")
    .and_then(|r| r)
    .map_err(|e| NotStarted::Failed(e.context("cannot create the campaign")))?;
    // Another daemon on the same database, or staff, got there first.
    begun.ok_or(NotStarted::Exists)
}

/// What a campaign stores of `edition`: its frozen message (`frozen`), subject, web version
/// in its language and the fingerprint of the folder they came from.
fn campaign_message(app: &App, edition: &Prepared, frozen: String) -> CampaignMessage {
    CampaignMessage {
        revision: 1,
        lang: Some(edition.lang.as_str().to_string()),
        subject: edition.subject.clone(),
        template: frozen,
        web: render::render_web(&edition.issue, app.render_context_in(&edition.lang)),
        folder_hash: content::fingerprint(&app.config.content.dir, edition.issue.id),
        unsent: 0,
        at: app.clock.now_ms(),
    }
}

/// The messages of `prepared`, to send.
pub fn into_editions(prepared: Vec<Prepared>) -> Editions {
    Editions::new(prepared.into_iter().map(|p| (p.lang, p.template)).collect())
}

/// Notes the feed items of every edition as sent with `campaign`, so no later issue repeats
/// them.
fn record_feed_items(
    ledger: &mut Ledger,
    campaign: CampaignId,
    editions: &[Prepared],
) -> anyhow::Result<()> {
    let items = editions
        .iter()
        .flat_map(|e| e.issue.entries.iter())
        .filter_map(|e| match &e.source {
            crate::issue::EntrySource::Feed {
                feed_url, item_key, ..
            } => Some((item_key.as_str(), feed_url.as_str())),
            _ => None,
        });
    ledger.record_feed_items(campaign, items)
}

/// The message `campaign` sends in its default language, as stored when it started (or last
/// revised), ready to send with `key`. `None` for a campaign that an older brief started
/// without storing it.
pub fn stored_message(
    ledger: &Ledger,
    campaign: &Campaign,
    key: &TokenKey,
) -> anyhow::Result<Option<(MessageTemplate, CampaignMessage)>> {
    let Some(m) = ledger.campaign_message(campaign.id)? else {
        return Ok(None);
    };
    let template = MessageTemplate::thaw(&m.template, campaign.issue, key)?;
    Ok(Some((template, m)))
}

/// Every message `campaign` sends, one per language, as stored when it started (or last
/// revised), thawed once with `key`: what a run sends. The one message of a campaign stored
/// before editions is `default`'s. `None` for a campaign an older brief started without
/// storing its message.
pub fn stored_editions(
    ledger: &Ledger,
    campaign: &Campaign,
    key: &TokenKey,
    default: &Lang,
) -> anyhow::Result<Option<(Editions, Vec<CampaignMessage>)>> {
    let messages = ledger.campaign_messages(campaign.id)?;
    if messages.is_empty() {
        return Ok(None);
    }
    let mut list = Vec::with_capacity(messages.len());
    for m in &messages {
        let lang = match &m.lang {
            None => default.clone(),
            Some(tag) => Lang::parse(tag).map_err(|e| {
                anyhow::anyhow!(
                    "the stored message of issue {} names a bad language {tag:?}: {e}",
                    campaign.issue
                )
            })?,
        };
        list.push((
            lang,
            MessageTemplate::thaw(&m.template, campaign.issue, key)?,
        ));
    }
    Ok(Some((Editions::new(list), messages)))
}

/// Whether the issue folder differs from the one `sent` was rendered from.
pub fn folder_changed(app: &App, id: IssueId, sent: &CampaignMessage) -> bool {
    content::fingerprint(&app.config.content.dir, id) != sent.folder_hash
}

/// Makes the corrected `editions` (every language's) what its running campaign sends to the
/// readers not yet sent (`brief send --restart-unsent`): a new revision, recorded in the
/// ledger. Each reader keeps the language its delivery records. Holds the campaign's send lock
/// while it does, so no run sends meanwhile.
pub fn revise(
    app: &App,
    ledger: &mut Ledger,
    campaign: &Campaign,
    editions: &[Prepared],
) -> anyhow::Result<u32> {
    let _lock = ledger.lock_campaign(campaign)?;
    // A campaign started before keyed Message-IDs keeps its ids: its deliveries recorded them.
    let previous = ledger.campaign_message(campaign.id)?;
    let messages: Vec<CampaignMessage> = editions
        .iter()
        .map(|e| {
            let frozen = match &previous {
                Some(p) => e.template.freeze_as_revision_of(&p.template),
                None => e.template.freeze(),
            };
            campaign_message(app, e, frozen)
        })
        .collect();
    let revision = ledger.revise_campaign(campaign.id, &messages)?;
    record_feed_items(ledger, campaign.id, editions)?;
    Ok(revision)
}

/// Puts the campaign's failed deliveries (not those of suppressed addresses) back to `pending`
/// for `brief send --retry-failed`, under the campaign's send lock so no other process is
/// sending it meanwhile; returns how many.
pub fn retry_failed(ledger: &mut Ledger, campaign: &Campaign) -> anyhow::Result<u64> {
    let _lock = ledger.lock_campaign(campaign)?;
    ledger.retry_failed_deliveries(campaign.id)
}
