//! The send engine: runs a campaign until every delivery is final, one message per recipient.
//!
//! # How a run goes
//! A dispatcher claims due deliveries from the ledger (marking them `sending`) and hands them to
//! `concurrency` workers. Each worker owns one connection, waits for the run's one shared
//! [`Pacer`] (`rate_per_second` over all workers, not per worker), makes sure its connection is
//! usable (after any failure it is replaced; after sitting idle for [`IDLE_CHECK`] it is probed
//! with NOOP first), personalises the pre-encoded message and sends it. [`classify`] turns the
//! result into the delivery's next state, and a recorder commits outcomes in groups of
//! `concurrency` (half the in-flight bound below), so "sent" is durable within that many
//! replies, or 20 ms at most, of the server's reply.
//!
//! # What a crash can cost
//! The dispatcher claims a delivery only while holding one of `2 x concurrency` in-flight
//! permits, and a permit is released only after the delivery's outcome is committed. So at any
//! moment at most `2 x concurrency` deliveries are `sending`, and only those can have reached
//! the server without being recorded. After `kill -9` (or a power cut), the next run puts them
//! back to `pending` and sends them again: **nobody is skipped, and at most `2 x concurrency`
//! readers get a second copy.** A campaign is marked finished only when every delivery is final
//! (sent, failed or suppressed).
//!
//! # Whom a failure is charged to
//! - A failure *before RCPT TO* names the reader is about the relay, not a reader: a failed
//!   connect (refused, timed out, 421 at the greeting, TLS or AUTH refused) or a refused MAIL FROM
//!   (e.g. `550 5.7.1` sender not authorised, a configuration problem). The worker puts its
//!   delivery back untouched (no attempt counted) and backs off like a retry (`retry_min`,
//!   doubling up to `retry_max`). A worker whose relay fails it `max_attempts` times in a row, or
//!   once with a 5xx (e.g. 535 bad credentials), stops; when every worker has stopped the run ends
//!   with that error ([`Stopped::Relay`]) and the deliveries left for the next run. So a relay
//!   down for a moment costs time, not attempts, and one that stays down ends the run instead of
//!   spinning. One exception: a connection that already carried a message and is found closed at
//!   MAIL FROM (the server ended an idle session, or its per-session limit) is replaced at once,
//!   without backing off.
//! - From RCPT TO on, the delivery state machine applies (see [`classify`]), watched by the
//!   circuit breaker ([`Breaker`]): when `[delivery] breaker` distinct readers in a row get the
//!   same failure (same step, reply code and enhanced status), the relay is to blame, not them.
//!   The run stops ([`Stopped::Breaker`]) and every delivery of that streak goes back to `pending`
//!   with the attempts it had before, as if never attempted. A `5.1.x` rejection of a recipient
//!   never counts: a dead address is a reader's own, however many come in a row.
//!
//! A graceful stop (the `stop` token) takes no new deliveries; those being sent finish and are
//! recorded, and those claimed but not started go back to `pending`.
//!
//! # Files
//! This file holds the run (the dispatcher and the recorder) and what it ends with ([`Summary`],
//! [`Stopped`]). Under it: `settings` (the engine's [`Settings`]), `breaker` ([`classify`] and
//! the circuit [`Breaker`]), `pace` (the [`Pacer`]), `worker` (the send workers, their crew,
//! the [`Envelope`] and DKIM signing) and `lease` (the campaign's [`Lease`]). They import each
//! other one way (`worker` uses `breaker`, `pace` and `settings`; `breaker` uses `settings`),
//! never this file, which re-exports what callers name as `crate::deliver::X`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::dkim::DkimSigner;
use crate::ledger::{Campaign, CampaignId, Counts, Gate, SharedLedger};
use crate::metrics::Metrics;
use crate::transport::Transport;

mod breaker;
mod editions;
mod lease;
mod pace;
mod settings;
mod worker;

pub use breaker::{classify, Breaker, Signature, Trip};
pub use editions::Editions;
pub use lease::{lease_owner, Lease, LEASE_HEARTBEAT, LEASE_STALE};
pub use pace::Pacer;
pub use settings::{Settings, IDLE_CHECK};
pub use worker::Envelope;

use worker::{Crew, Done, Fuse, Job, Outcome, Progress, Signing, Worker};

/// The most outcomes committed in one ledger transaction.
const COMMIT_BATCH: usize = 512;
/// The longest an outcome waits for its group to fill before it is committed anyway.
const GROUP_WAIT: Duration = Duration::from_millis(20);

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Counts in the ledger when the run stopped.
    pub counts: Counts,
    /// Messages accepted during this run.
    pub sent_now: u64,
    /// Whether every delivery is final (the campaign is finished).
    pub finished: bool,
    /// Stopped early by a signal.
    pub interrupted: bool,
    /// Stopped early because of the relay (not finished, not interrupted).
    pub stopped: Option<Stopped>,
}

/// Why a run stopped before the campaign was finished, other than a signal: the relay, or
/// staff. Either way no reader was charged for it: run again once the relay is fixed, or the
/// campaign released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Staff held the campaign (or its canary window is not over): nobody is claimed until it
    /// is released.
    Held,
    /// Every worker gave up on the relay before naming a reader (no connection could be opened,
    /// or MAIL FROM was refused): the last error.
    Relay(String),
    /// The circuit breaker opened; the deliveries of its streak went back to `pending`.
    Breaker(Trip),
}

/// How the dispatcher stopped.
enum End {
    Finished,
    Interrupted,
    /// Every worker gave up.
    NoWorkers,
    /// The circuit breaker tripped.
    Breaker,
    /// The campaign is held or in its canary window: nothing may be claimed.
    Gated,
}

/// Everything a campaign run needs.
pub struct Run {
    pub ledger: SharedLedger,
    pub campaign: Campaign,
    /// The campaign's message in each of its languages; each delivery gets its own's.
    pub editions: Arc<Editions>,
    pub transport: Arc<Transport>,
    pub envelope: Envelope,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    /// Counts each attempt where it is classified (`brief_messages_sent_total`,
    /// `brief_send_errors_total`).
    pub metrics: Arc<Metrics>,
    /// Signs every message with DKIM when set (`[dkim]`).
    pub dkim: Option<Arc<DkimSigner>>,
}

impl Run {
    /// Sends until every delivery is final, `stop` is cancelled, or no connection to the relay
    /// can be opened (see the module doc). In-flight messages always finish and are recorded
    /// before this returns.
    ///
    /// Errors only when the ledger fails; the end of a run, whatever it is, is a [`Summary`].
    #[tracing::instrument(skip_all, fields(issue = %self.campaign.issue))]
    pub async fn execute(self, stop: CancellationToken) -> anyhow::Result<Summary> {
        let cid = self.campaign.id;
        let bound = self.settings.in_flight_bound();
        let campaign = self.campaign.clone();
        // Before anything else: another process's deliveries in flight are not ours to reset.
        let _lock = self
            .ledger
            .with(move |l| l.lock_campaign(&campaign))
            .await?;
        let _lease = Lease::hold(&self.ledger, cid, self.clock.clone());
        let reset = self
            .ledger
            .with(move |l| l.reset_in_flight_as_possible_duplicates(cid))
            .await?;
        if reset > 0 {
            tracing::warn!(
                count = reset,
                "resuming: {reset} deliveries were in flight when the last run stopped; they are \
                 sent again, so up to {reset} readers may get a second copy"
            );
        }
        let start = self.ledger.with(move |l| l.counts(cid)).await?;
        tracing::info!(
            recipients = start.total(),
            to_send = start.pending + start.deferred,
            sent = start.sent,
            failed = start.failed,
            suppressed = start.suppressed,
            transport = %self.transport.describe(),
            concurrency = self.settings.concurrency,
            rate_per_second = self.settings.rate_per_second,
            "campaign {}",
            if start.total() == start.pending + start.suppressed && reset == 0 {
                "started"
            } else {
                "resumed"
            }
        );

        let c = self.settings.concurrency.max(1) as usize;
        let permits = Arc::new(Semaphore::new(bound));
        let (job_tx, job_rx) = mpsc::channel::<Job>(c);
        let job_rx = Arc::new(tokio::sync::Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Done>();
        let pacer = Pacer::new(self.settings.rate_per_second).map(Arc::new);
        let crew = Arc::new(Crew::new(c));
        let fuse = Arc::new(Fuse::new(self.settings.breaker));
        // Workers stop taking jobs once this is cancelled: on `stop`, or when the dispatcher ends.
        let halt = stop.child_token();
        let progress = Arc::new(Progress::default());
        let signing = self.dkim.clone().map(|d| Arc::new(Signing::new(d)));

        let recorder = tokio::spawn(record(self.ledger.clone(), cid, bound / 2, done_rx));
        let mut workers = Vec::with_capacity(c);
        for _ in 0..c {
            let w = Worker {
                jobs: job_rx.clone(),
                done: done_tx.clone(),
                editions: self.editions.clone(),
                transport: self.transport.clone(),
                envelope: self.envelope.clone(),
                settings: self.settings.clone(),
                clock: self.clock.clone(),
                pacer: pacer.clone(),
                progress: progress.clone(),
                metrics: self.metrics.clone(),
                halt: halt.clone(),
                crew: crew.clone(),
                fuse: fuse.clone(),
                signing: signing.clone(),
            };
            workers.push(tokio::spawn(w.run()));
        }
        drop((done_tx, job_rx));

        let end = self.dispatch(&permits, &job_tx, &stop, &crew, &fuse).await;
        halt.cancel();
        drop(job_tx);
        for w in workers {
            w.await.context("send worker panicked")?;
        }
        recorder.await.context("ledger recorder panicked")??;
        let end = end?;

        // The streak was the relay's fault: its deliveries go back as if never attempted. This
        // comes before anything can mark the campaign finished (the dispatcher checks the fuse
        // first), and after every outcome is recorded, in-flight ones included.
        let (trip, touched) = {
            let breaker = fuse.lock();
            (breaker.tripped().cloned(), breaker.touched())
        };
        if trip.is_some() {
            let back = self
                .ledger
                .with(move |l| l.undo_streak_attempts(cid, &touched))
                .await?;
            tracing::info!(
                count = back,
                "circuit breaker: {back} deliveries are back to pending, no attempt counted"
            );
        }
        // Claimed but never attempted: back to pending for the next run.
        self.ledger
            .with(move |l| l.unclaim_all_sending(cid))
            .await?;
        let now = self.clock.now_ms();
        let finished = trip.is_none()
            && self
                .ledger
                .with(move |l| l.finish_if_done(cid, now))
                .await?;
        let counts = self.ledger.with(move |l| l.counts(cid)).await?;
        let stopped = match (trip, &end) {
            (Some(trip), _) => Some(Stopped::Breaker(trip)),
            (None, End::Gated) if !finished => Some(Stopped::Held),
            (None, End::NoWorkers) if !finished => Some(Stopped::Relay(
                crew.reason()
                    .unwrap_or_else(|| "every send worker stopped".to_string()),
            )),
            _ => None,
        };
        let summary = Summary {
            counts,
            sent_now: progress.sent.load(Ordering::Relaxed),
            finished,
            interrupted: matches!(end, End::Interrupted) && !finished && stopped.is_none(),
            stopped,
        };
        let left = counts.pending + counts.sending + counts.deferred;
        let key = self.editions.key();
        if let Some(Stopped::Relay(e)) = &summary.stopped {
            tracing::error!(
                error.message = %key.redact(e), left,
                "campaign stopped: the relay failed before any reader was named"
            );
        } else if let Some(Stopped::Breaker(trip)) = &summary.stopped {
            tracing::error!(
                error.message = %key.redact(&trip.last), readers = trip.readers, left,
                "campaign stopped by the circuit breaker: {}", key.redact(&trip.to_string())
            );
        } else {
            tracing::info!(
                sent = counts.sent,
                failed = counts.failed,
                suppressed = counts.suppressed,
                deferred = counts.deferred,
                left,
                sent_now = summary.sent_now,
                possible_duplicates = progress.possible_duplicates.load(Ordering::Relaxed),
                "campaign {}",
                if finished { "finished" } else { "stopped" }
            );
        }
        Ok(summary)
    }

    /// Claims due deliveries and hands them to the workers until the campaign is done, `stop`
    /// is cancelled, or no worker is left.
    async fn dispatch(
        &self,
        permits: &Arc<Semaphore>,
        jobs: &mpsc::Sender<Job>,
        stop: &CancellationToken,
        crew: &Crew,
        fuse: &Fuse,
    ) -> anyhow::Result<End> {
        let cid = self.campaign.id;
        let bound = self.settings.in_flight_bound() as u32;
        loop {
            // Every claimed delivery holds a permit, so no more than `bound` are ever `sending`.
            let first = tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(End::Interrupted),
                _ = fuse.blown.cancelled() => return Ok(End::Breaker),
                _ = crew.gone.cancelled() => return Ok(End::NoWorkers),
                p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            };
            let mut held = vec![first];
            while let Ok(p) = permits.clone().try_acquire_owned() {
                held.push(p);
            }
            let now = self.clock.now_ms();
            let limit = held.len();
            let batch = self
                .ledger
                .with(move |l| l.claim_due(cid, now, limit))
                .await?;
            if batch.is_empty() {
                drop(held);
                // Wait for everything in flight to be recorded before deciding anything.
                let all = tokio::select! {
                    biased;
                    _ = stop.cancelled() => return Ok(End::Interrupted),
                    _ = fuse.blown.cancelled() => return Ok(End::Breaker),
                    _ = crew.gone.cancelled() => return Ok(End::NoWorkers),
                    p = permits.clone().acquire_many_owned(bound) => p.expect("semaphore never closed"),
                };
                drop(all);
                // A trip happens before its attempt's permit is released, so with every permit
                // back it is known: a streak that failed everyone must not finish the campaign.
                if fuse.blown.is_cancelled() {
                    return Ok(End::Breaker);
                }
                let now = self.clock.now_ms();
                if self
                    .ledger
                    .with(move |l| l.finish_if_done(cid, now))
                    .await?
                {
                    return Ok(End::Finished);
                }
                if self.ledger.with(move |l| l.gate(cid, now)).await? != Gate::Open {
                    return Ok(End::Gated);
                }
                let next = self.ledger.with(move |l| l.next_retry_at(cid)).await?;
                let wait = next
                    .map(|t| Duration::from_millis((t - self.clock.now_ms()).max(0) as u64))
                    .unwrap_or(Duration::from_millis(100))
                    .clamp(Duration::from_millis(5), Duration::from_secs(5));
                tracing::debug!(?wait, "waiting for deferred deliveries");
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return Ok(End::Interrupted),
                    _ = fuse.blown.cancelled() => return Ok(End::Breaker),
                    _ = crew.gone.cancelled() => return Ok(End::NoWorkers),
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            for (due, permit) in batch.into_iter().zip(held) {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return Ok(End::Interrupted),
                    _ = fuse.blown.cancelled() => return Ok(End::Breaker),
                    sent = jobs.send(Job { due, permit }) => {
                        if sent.is_err() {
                            return Ok(End::NoWorkers);
                        }
                    }
                }
            }
        }
    }
}

/// Commits outcomes in groups of `group` (half the in-flight bound, at most [`COMMIT_BATCH`]),
/// or fewer once the first has waited [`GROUP_WAIT`] or the workers are done. Permits are
/// released only after their outcome is committed.
///
/// Why groups: the dispatcher claims as many deliveries as there are free permits, so commits of
/// one or two outcomes meant claims of one or two deliveries, and two ledger transactions per
/// message cost more CPU than the SMTP conversation. Half the bound fills before the workers can
/// run out of permits; a slow trickle (a rate limit, a slow relay) waits at most `GROUP_WAIT`.
async fn record(
    ledger: SharedLedger,
    campaign: CampaignId,
    group: usize,
    mut rx: mpsc::UnboundedReceiver<Done>,
) -> anyhow::Result<()> {
    let group = group.clamp(1, COMMIT_BATCH);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::sleep(GROUP_WAIT);
        tokio::pin!(deadline);
        while batch.len() < group {
            let next = tokio::select! {
                biased;
                d = rx.recv() => d,
                _ = &mut deadline => None,
            };
            let Some(d) = next else { break };
            batch.push(d);
        }
        ledger
            .with(move |l| {
                let mut attempts = Vec::with_capacity(batch.len());
                let mut released = Vec::new();
                let mut permits = Vec::with_capacity(batch.len());
                for d in batch {
                    match d.outcome {
                        Outcome::Attempted(a) => attempts.push(a),
                        Outcome::Released(address) => released.push(address),
                    }
                    permits.push(d.permit);
                }
                l.record(campaign, &attempts)?;
                if !released.is_empty() {
                    l.release_untried(campaign, &released)?;
                }
                drop(permits); // the outcomes are durable: these deliveries are no longer in flight
                Ok(())
            })
            .await?;
    }
    Ok(())
}
