//! A campaign's run, written once: its canary copies to staff, the wait for the window to end
//! (and for any hold to be released), the readers, and the summary to staff once it is
//! finished. `brief send` and the daemon differ only in their [`Policy`] and in what they
//! report as it goes ([`Watch`]): the CLI prints and ends at a hold or a relay failure, the
//! daemon logs, waits holds out and runs again later when the relay failed.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::canary::Waited;
use crate::deliver::{Editions, Lease, Stopped, Summary};
use crate::dkim::DkimSigner;
use crate::ledger::{Campaign, Gate, HoldReason};
use crate::metrics::{CampaignState, Metrics};
use crate::notices::{Sender, Tried};
use crate::transport::Transport;

/// How a run meets holds and a relay that fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Wait a hold out (the daemon); without it a hold ends the run (`brief send`).
    pub through_holds: bool,
    /// After a run the relay stopped (it could not be reached, or the circuit breaker opened),
    /// wait this long and run again; `None`: the run ends there.
    pub relay_retry: Option<Duration>,
    /// Try the campaign's queued notices (canary copies the relay did not take) while waiting:
    /// where no daemon's notice worker runs (`brief send`).
    pub retry_notices: bool,
}

impl Policy {
    /// `brief send`: a hold or a relay failure ends the command; the command tries its own
    /// canary copies again.
    pub const COMMAND: Policy = Policy {
        through_holds: false,
        relay_retry: None,
        retry_notices: true,
    };

    /// The daemon: holds are waited out, a relay failure is tried again after `retry`; the
    /// daemon's notice worker tries the copies again.
    pub fn daemon(retry: Duration) -> Policy {
        Policy {
            through_holds: true,
            relay_retry: Some(retry),
            retry_notices: false,
        }
    }
}

/// What a run reports as it goes; every step has a default that says nothing.
pub trait Watch: Send {
    /// The canary copies were mailed (their first tries).
    fn canary_mailed(&mut self, _campaign: &Campaign, _tries: &[Tried]) {}
    /// The readers wait for the gate, closed as `gate`, before they are mailed.
    fn waiting(&mut self, _campaign: &Campaign, _gate: Gate) {}
    /// The readers are about to be mailed.
    fn readers_start(&mut self, _campaign: &Campaign) {}
    /// The engine's run over the readers ended (before the summary is mailed).
    fn readers_end(&mut self, _campaign: &Campaign) {}
    /// The relay stopped the run; it runs again after `wait`.
    fn relay_wait(&mut self, _campaign: &Campaign, _stopped: &Stopped, _wait: Duration) {}
}

/// A [`Watch`] that reports nothing.
pub struct Quiet;

impl Watch for Quiet {}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Ended {
    /// The engine's summary (counts as the ledger holds them when it ended).
    pub summary: Summary,
    /// Why the campaign is held, when the run ended at a hold.
    pub held: Option<HoldReason>,
}

/// What a run sends with, besides the campaign and its message.
pub struct Means<'a> {
    /// Sends the canary copies and the summary, and records them, over the run's ledger.
    pub notices: &'a Sender<'a>,
    pub transport: Arc<Transport>,
    pub dkim: Option<Arc<DkimSigner>>,
    /// Where the engine counts (a registry nobody reads in the CLI).
    pub metrics: Arc<Metrics>,
}

/// Runs `campaign` with `editions` (its message in each language) until it is finished, `stop` is cancelled, or `policy`
/// ends it (a hold, a relay failure), holding the campaign's lease throughout so that a
/// daemon on the same ledger leaves it alone. Each pass: the canary copies (once per
/// campaign), the wait for the gate, the readers; once finished, the summaries that are due
/// are mailed to staff (a failure to do so is logged: the campaign is sent either way).
pub async fn drive(
    means: &Means<'_>,
    campaign: Campaign,
    editions: Arc<Editions>,
    policy: Policy,
    stop: &CancellationToken,
    watch: &mut dyn Watch,
) -> anyhow::Result<Ended> {
    let sender = means.notices;
    let (app, ledger) = (sender.app, sender.ledger);
    let (issue, cid) = (campaign.issue, campaign.id);
    let _lease = Lease::hold(ledger, cid, app.clock.clone());
    loop {
        // Read again: a release or a hold since the campaign was loaded changes the gate.
        let current = ledger
            .with(move |l| l.campaign(issue))
            .await?
            .unwrap_or_else(|| campaign.clone());
        if let Some(tries) = crate::canary::send_copies(sender, &current).await? {
            watch.canary_mailed(&current, &tries);
        }
        let gate = current.gate(app.clock.now_ms());
        if gate != Gate::Open {
            watch.waiting(&current, gate);
        }
        let retry = policy.retry_notices.then_some(sender);
        let waited =
            crate::canary::wait(ledger, cid, &*app.clock, stop, policy.through_holds, retry)
                .await?;
        if waited != Waited::Open {
            let held = match waited {
                Waited::Held { .. } => hold_reason(ledger, issue)
                    .await?
                    .or(Some(HoldReason::Staff)),
                _ => None,
            };
            if held == Some(HoldReason::CanaryUnaccepted) && policy.retry_notices {
                // Staff hear of it by mail too, if any address takes one now.
                sender.drain(Some(cid), None).await?;
            }
            let counts = ledger.with(move |l| l.counts(cid)).await?;
            let summary = Summary {
                counts,
                sent_now: 0,
                finished: false,
                interrupted: waited == Waited::Stopped,
                stopped: held.map(|_| Stopped::Held),
            };
            return Ok(Ended { summary, held });
        }
        watch.readers_start(&current);
        let run = app.campaign_run(
            ledger.clone(),
            current.clone(),
            editions.clone(),
            means.transport.clone(),
            means.dkim.clone(),
            means.metrics.clone(),
        )?;
        let summary = run.execute(stop.clone()).await;
        watch.readers_end(&current);
        let summary = summary?;
        if summary.finished {
            if let Some(m) = sender.metrics {
                m.campaign(CampaignState::finished);
            }
            if let Err(e) = crate::summary::mail_due(sender).await {
                tracing::warn!(issue = %issue, error.message = %e, "cannot mail the summary to staff: {e:#}");
            }
            return Ok(Ended {
                summary,
                held: None,
            });
        }
        match (&summary.stopped, policy) {
            // Held as the window ended (staff pressed Hold just then): wait again.
            (
                Some(Stopped::Held),
                Policy {
                    through_holds: true,
                    ..
                },
            ) => continue,
            (
                Some(stopped @ (Stopped::Relay(_) | Stopped::Breaker(_))),
                Policy {
                    relay_retry: Some(wait),
                    ..
                },
            ) if !stop.is_cancelled() => {
                // The relay's fault, not the readers' (none was charged): run again later, as
                // staff would once the relay is fixed.
                watch.relay_wait(&current, stopped, wait);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return Ok(Ended { summary, held: None }),
                }
            }
            (Some(Stopped::Held), _) => {
                let held = hold_reason(ledger, issue).await?;
                return Ok(Ended { summary, held });
            }
            _ => {
                return Ok(Ended {
                    summary,
                    held: None,
                })
            }
        }
    }
}

/// Why the campaign of `issue` is held, as the ledger says now (`None`: not held, or only in
/// its window).
async fn hold_reason(
    ledger: &crate::ledger::SharedLedger,
    issue: crate::issue::IssueId,
) -> anyhow::Result<Option<HoldReason>> {
    ledger
        .with(move |l| Ok(l.campaign(issue)?.and_then(|c| c.hold_reason)))
        .await
}

#[cfg(test)]
mod tests {
    //! The run in process, on a fixed clock, into the outbox: no subprocess, no server, and no
    //! sleep (a window's end and a release come from the [`Watch`] as the run reaches them).
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::app::App;
    use crate::clock::{Clock, FixedClock};
    use crate::feed::FetchPolicy;
    use crate::ledger::{Ledger, SharedLedger, Trigger};
    use crate::message::Kind;
    use crate::token::TokenKey;

    struct World {
        _dir: tempfile::TempDir,
        root: PathBuf,
        app: App,
        clock: Arc<FixedClock>,
        key: TokenKey,
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2021-07-23T15:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// Three readers, one staff address, the example issue 2021-07 and the outbox; a relay
    /// (an outbox) that fails once has failed for good, so no run backs off.
    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let content = Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
        let text = format!(
            "{}\n[content]\ndir = {content:?}\n[subscribers]\nfile = {:?}\n[delivery]\n\
             database = {:?}\nmax_attempts = 1\n[smtp]\noutbox_dir = {:?}\n[server]\n\
             staff = [\"editor@example.org\"]\n",
            crate::config::MINIMAL_FOR_TESTS,
            root.join("subscribers.csv"),
            root.join("data/brief.db"),
            root.join("data/outbox"),
        );
        std::fs::write(
            root.join("subscribers.csv"),
            "email,name\nana@example.org,Ana\nbo@example.org,Bo\ncy@example.org,Cy\n",
        )
        .unwrap();
        let config = crate::config::parse(&text, &root.join("brief.toml")).unwrap();
        let clock = Arc::new(FixedClock::new(at()));
        let app = App::new(config, clock.clone()).unwrap();
        let key = app.key().clone();
        World {
            _dir: dir,
            root,
            app,
            clock,
            key,
        }
    }

    impl World {
        /// Starts the campaign of 2021-07 (`canary`: its window) on a ledger of its own.
        async fn start(&self, canary: Option<Duration>) -> (Campaign, Arc<Editions>) {
            let id = "2021-07".parse().unwrap();
            let editions = self
                .app
                .collect_editions(id, FetchPolicy::Once)
                .await
                .unwrap();
            let prepared =
                super::super::start::prepare(&self.app, editions, &self.key, Kind::Campaign);
            let mut ledger = self.app.open_ledger().unwrap();
            let (campaign, new, problems) =
                super::super::start::begin(&self.app, &mut ledger, &prepared, Trigger::Cli, canary)
                    .unwrap();
            assert!(new && problems.is_empty(), "{problems:?}");
            (
                campaign,
                Arc::new(super::super::start::into_editions(prepared)),
            )
        }

        fn ledger(&self) -> Ledger {
            self.app.open_ledger().unwrap()
        }

        /// The messages in the outbox folder `sub`.
        fn outbox(&self, sub: &str) -> usize {
            let dir = self.root.join("data/outbox").join(sub);
            std::fs::read_dir(dir).map_or(0, |d| d.count())
        }

        async fn drive(
            &self,
            campaign: Campaign,
            template: Arc<Editions>,
            policy: Policy,
            watch: &mut dyn Watch,
        ) -> Ended {
            let ledger = SharedLedger::new(self.ledger());
            let sender = Sender {
                app: &self.app,
                ledger: &ledger,
                key: &self.key,
                dkim: None,
                metrics: None,
            };
            let transport = self.app.transport(&campaign.issue.to_string()).unwrap();
            let means = Means {
                notices: &sender,
                transport: Arc::new(transport),
                dkim: None,
                metrics: Arc::new(Metrics::new()),
            };
            let stop = CancellationToken::new();
            drive(&means, campaign, template, policy, &stop, watch)
                .await
                .unwrap()
        }
    }

    /// What a run reported, in order; `on_wait` acts where staff or time would.
    struct Seen<'a> {
        events: Vec<String>,
        on_wait: Box<dyn FnMut(Gate) + Send + 'a>,
        on_relay: Box<dyn FnMut() + Send + 'a>,
    }

    impl<'a> Seen<'a> {
        fn new() -> Seen<'a> {
            Seen {
                events: Vec::new(),
                on_wait: Box::new(|_| {}),
                on_relay: Box::new(|| {}),
            }
        }
    }

    impl Watch for Seen<'_> {
        fn canary_mailed(&mut self, _c: &Campaign, tries: &[Tried]) {
            let ok = tries.iter().filter(|t| t.reply.accepted).count();
            self.events.push(format!("canary {ok}/{}", tries.len()));
        }
        fn waiting(&mut self, _c: &Campaign, gate: Gate) {
            let word = match gate {
                Gate::Canary { .. } => "window",
                Gate::Held { .. } => "held",
                Gate::AwaitingCanary => "awaiting",
                Gate::Open => "open",
            };
            self.events.push(format!("wait {word}"));
            (self.on_wait)(gate);
        }
        fn readers_start(&mut self, _c: &Campaign) {
            self.events.push("readers".into());
        }
        fn readers_end(&mut self, _c: &Campaign) {
            self.events.push("end".into());
        }
        fn relay_wait(&mut self, _c: &Campaign, stopped: &Stopped, _wait: Duration) {
            let what = match stopped {
                Stopped::Relay(_) => "relay",
                Stopped::Breaker(_) => "breaker",
                Stopped::Held => "held",
            };
            self.events.push(format!("retry {what}"));
            (self.on_relay)();
        }
    }

    #[tokio::test]
    async fn without_a_window_every_reader_is_mailed_then_staff_get_the_summary() {
        let w = world();
        let (campaign, template) = w.start(None).await;
        let mut seen = Seen::new();
        let ended = w
            .drive(campaign, template, Policy::COMMAND, &mut seen)
            .await;
        assert_eq!(seen.events, ["readers", "end"]);
        assert!(ended.summary.finished && ended.held.is_none());
        assert_eq!((ended.summary.counts.sent, ended.summary.sent_now), (3, 3));
        assert_eq!(w.outbox("2021-07"), 3);
        assert_eq!(w.outbox("canary"), 0);
        // The summary was claimed and queued for staff once the campaign finished.
        assert_eq!(w.outbox("staff"), 1, "the summary to editor@example.org");
    }

    #[tokio::test]
    async fn a_window_mails_staff_first_and_the_readers_only_once_it_ends() {
        let w = world();
        let (campaign, template) = w.start(Some(Duration::from_secs(3600))).await;
        let mut seen = Seen::new();
        let (clock, root) = (w.clock.clone(), w.root.clone());
        seen.on_wait = Box::new(move |gate| {
            assert!(matches!(gate, Gate::Canary { .. }), "{gate:?}");
            // Nobody but staff has the message while the window lasts.
            let readers =
                std::fs::read_dir(root.join("data/outbox/2021-07")).map_or(0, |d| d.count());
            assert_eq!(readers, 0);
            clock.set(at() + chrono::TimeDelta::hours(1));
        });
        let ended = w
            .drive(campaign, template, Policy::COMMAND, &mut seen)
            .await;
        assert_eq!(seen.events, ["canary 1/1", "wait window", "readers", "end"]);
        assert!(ended.summary.finished);
        assert_eq!(ended.summary.counts.sent, 3);
        assert_eq!(w.outbox("canary"), 1);
    }

    /// `brief send` ends at a hold and mails nobody; the daemon waits it out and goes on once
    /// staff release it.
    #[tokio::test]
    async fn a_hold_ends_the_command_and_the_daemon_waits_until_it_is_released() {
        let w = world();
        let (campaign, template) = w.start(None).await;
        let now = w.clock.now_ms();
        w.ledger().hold_campaign(campaign.issue, now).unwrap();
        let mut seen = Seen::new();
        let ended = w
            .drive(
                campaign.clone(),
                template.clone(),
                Policy::COMMAND,
                &mut seen,
            )
            .await;
        assert_eq!(seen.events, ["wait held"]);
        assert_eq!(ended.held, Some(HoldReason::Staff));
        assert_eq!(ended.summary.stopped, Some(Stopped::Held));
        assert!(!ended.summary.finished && !ended.summary.interrupted);
        assert_eq!(w.outbox("2021-07"), 0);

        let mut seen = Seen::new();
        let db = w.app.config.delivery.database.clone();
        let issue = campaign.issue;
        seen.on_wait = Box::new(move |_| {
            let mut l = Ledger::open(&db).unwrap();
            l.open_gate(issue, now).unwrap().expect("released");
        });
        let ended = w
            .drive(
                campaign,
                template,
                Policy::daemon(Duration::ZERO),
                &mut seen,
            )
            .await;
        assert_eq!(seen.events, ["wait held", "readers", "end"]);
        assert!(ended.summary.finished);
        assert_eq!(w.outbox("2021-07"), 3);
    }

    /// A relay that cannot be reached ends `brief send` with nobody charged; the daemon runs
    /// again after its wait and finishes once the relay is back.
    #[tokio::test]
    async fn a_relay_that_fails_ends_the_command_and_the_daemon_runs_again() {
        let w = world();
        let (campaign, template) = w.start(None).await;
        // The outbox folder cannot be made: a file is in its way.
        let blocked = w.root.join("data/outbox/2021-07");
        std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
        std::fs::write(&blocked, "in the way").unwrap();
        let mut seen = Seen::new();
        let ended = w
            .drive(
                campaign.clone(),
                template.clone(),
                Policy::COMMAND,
                &mut seen,
            )
            .await;
        assert!(
            matches!(ended.summary.stopped, Some(Stopped::Relay(_))),
            "{ended:?}"
        );
        assert_eq!(ended.summary.counts.pending, 3, "nobody charged: {ended:?}");
        assert_eq!(seen.events, ["readers", "end"]);

        let mut seen = Seen::new();
        let path = blocked.clone();
        seen.on_relay = Box::new(move || std::fs::remove_file(&path).unwrap());
        let ended = w
            .drive(
                campaign,
                template,
                Policy::daemon(Duration::ZERO),
                &mut seen,
            )
            .await;
        assert_eq!(
            seen.events,
            ["readers", "end", "retry relay", "readers", "end"]
        );
        assert!(ended.summary.finished);
        assert_eq!(w.outbox("2021-07"), 3);
    }
}
