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

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use lettre::Address;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::address::AddressKey;
use crate::clock::Clock;
use crate::config::{Ambiguous, Delivery};
use crate::dkim::DkimSigner;
use crate::ledger::{Attempt, Campaign, CampaignId, Counts, Due, Gate, SharedLedger, State};
use crate::message::{MessageTemplate, Recipient};
use crate::metrics::{Metrics, SendErrorKind};
use crate::token::TokenKey;
use crate::transport::{Connection, Reply, SendFailure, Stage, Transport};

/// The most outcomes committed in one ledger transaction.
const COMMIT_BATCH: usize = 512;
/// The longest an outcome waits for its group to fill before it is committed anyway.
const GROUP_WAIT: Duration = Duration::from_millis(20);
/// A connection idle for this long is probed with NOOP before it carries a message: servers close
/// idle sessions, and a message sent into a closed one would cost its reader an attempt.
pub const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The engine's settings (from `[delivery]`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub concurrency: u32,
    pub rate_per_second: u32,
    pub max_attempts: u32,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub ambiguous: Ambiguous,
    /// Probe a connection with NOOP before reusing it after this much idle time
    /// (default [`IDLE_CHECK`]).
    pub idle_check: Duration,
    /// Stop the run when this many distinct readers in a row get the same failure; 0: never.
    pub breaker: u32,
    /// Messages sent on one connection before it is closed and a new one opened (many relays
    /// cap a session at about 100); 0: no limit. From `[smtp] max_messages_per_connection`.
    pub messages_per_connection: u32,
}

impl From<&Delivery> for Settings {
    fn from(d: &Delivery) -> Self {
        Settings {
            concurrency: d.concurrency,
            rate_per_second: d.rate_per_second,
            max_attempts: d.max_attempts,
            retry_min: d.retry_min,
            retry_max: d.retry_max,
            ambiguous: d.ambiguous,
            idle_check: IDLE_CHECK,
            breaker: d.breaker,
            messages_per_connection: 0,
        }
    }
}

impl Settings {
    /// The delay before attempt `attempts + 1`: `retry_min` doubled per attempt made, at most
    /// `retry_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_min
            .checked_mul(factor)
            .unwrap_or(self.retry_max)
            .min(self.retry_max)
    }

    /// The most messages that can be sent but not yet recorded at any moment, hence the most
    /// duplicates a crash can cause.
    pub fn in_flight_bound(&self) -> usize {
        2 * self.concurrency.max(1) as usize
    }
}

/// Counters of one run, for its [`Summary`] and its last log line.
#[derive(Debug, Default)]
struct Progress {
    /// Messages the server accepted (including lost replies counted as sent by `skip`).
    sent: AtomicU64,
    /// Replies lost after the final dot.
    possible_duplicates: AtomicU64,
}

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

/// What makes two failures "the same" for the circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub stage: Stage,
    /// The reply code; none when the connection was lost or timed out.
    pub code: Option<u16>,
    /// The enhanced status code (RFC 3463), e.g. `(4, 3, 0)`.
    pub status: Option<(u16, u16, u16)>,
}

impl Signature {
    /// The signature of a failure the breaker watches; none for a 5.1.x rejection of the
    /// recipient ("no such user"), which is about one reader by nature: a list with many dead
    /// addresses in a row must not stop a run.
    pub fn of(failure: &SendFailure) -> Option<Signature> {
        if failure.suppresses_address() {
            return None;
        }
        Some(Signature {
            stage: failure.stage(),
            code: failure.code(),
            status: failure.status(),
        })
    }
}

impl fmt::Display for Signature {
    /// "`451 4.3.0` at DATA", "`554` at the final dot", "no reply at DATA".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.status) {
            (Some(code), Some((c, s, d))) => write!(f, "`{code} {c}.{s}.{d}` at {}", self.stage),
            (Some(code), None) => write!(f, "`{code}` at {}", self.stage),
            (None, _) => write!(f, "no reply at {}", self.stage),
        }
    }
}

/// The circuit breaker's verdict: the same failure for `readers` distinct readers in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trip {
    pub signature: Signature,
    pub readers: usize,
    /// The last failure of the streak, as the server said it (it names the server).
    pub last: String,
}

impl fmt::Display for Trip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.signature.code.is_some() {
            "answered"
        } else {
            "failed"
        };
        write!(
            f,
            "the relay {verb} {} readers in a row with {}: {}",
            self.readers, self.signature, self.last
        )
    }
}

/// The circuit breaker: watches the outcome of every attempt, in the order they are made, for
/// a streak of one failure across distinct readers.
///
/// Why distinct readers: one reader retried is not evidence about the relay. Why a streak and not
/// a rate: any reader the relay takes proves it can deliver, so one success ends the streak.
/// Failures the breaker does not watch (a 5.1.x rejection of a recipient) neither count nor end
/// it, and neither do deliveries put back untouched (they were never attempted).
#[derive(Debug, Default)]
pub struct Breaker {
    /// Distinct readers that trip it; 0: off.
    limit: usize,
    streak: Option<Streak>,
    tripped: Option<Trip>,
}

#[derive(Debug)]
struct Streak {
    signature: Signature,
    readers: HashSet<AddressKey>,
    /// The deliveries to put back if it trips, with their attempts before the streak; not those
    /// counted as sent (a lost reply under `ambiguous = "skip"`), which stay sent.
    touched: Vec<(AddressKey, u32)>,
    last: String,
}

impl Breaker {
    /// A breaker that trips at `limit` distinct readers (never for 0).
    pub fn new(limit: u32) -> Breaker {
        Breaker {
            limit: limit as usize,
            ..Breaker::default()
        }
    }

    /// Notes one attempt: `attempt` as classified from `result`, `before` the attempts made
    /// before it. Returns the trip the moment the streak reaches the limit, once. After that,
    /// further failures of the same signature (messages that were in flight) join the streak, so
    /// they are put back too.
    pub fn observe(
        &mut self,
        before: u32,
        attempt: &Attempt,
        result: &Result<Reply, SendFailure>,
    ) -> Option<Trip> {
        if self.limit == 0 {
            return None;
        }
        let signature = match result {
            Ok(_) => None,
            Err(failure) => match Signature::of(failure) {
                Some(s) => Some((s, failure)),
                None => return None,
            },
        };
        if let Some(trip) = &self.tripped {
            if let (Some((s, _)), Some(streak)) = (signature, &mut self.streak) {
                if s == trip.signature {
                    streak.add(before, attempt);
                }
            }
            return None;
        }
        let Some((signature, failure)) = signature else {
            self.streak = None;
            return None;
        };
        let streak = match &mut self.streak {
            Some(streak) if streak.signature == signature => streak,
            other => other.insert(Streak {
                signature,
                readers: HashSet::new(),
                touched: Vec::new(),
                last: String::new(),
            }),
        };
        streak.add(before, attempt);
        streak.last = failure.to_string();
        if streak.readers.len() < self.limit {
            return None;
        }
        let trip = Trip {
            signature,
            readers: streak.readers.len(),
            last: streak.last.clone(),
        };
        self.tripped = Some(trip.clone());
        Some(trip)
    }

    /// The trip, once the breaker has opened.
    pub fn tripped(&self) -> Option<&Trip> {
        self.tripped.as_ref()
    }

    /// Once it has tripped: the deliveries of the streak to put back, each with its attempts
    /// before the streak. Empty before.
    pub fn touched(&self) -> Vec<(AddressKey, u32)> {
        match (&self.tripped, &self.streak) {
            (Some(_), Some(streak)) => streak.touched.clone(),
            _ => Vec::new(),
        }
    }
}

impl Streak {
    fn add(&mut self, before: u32, attempt: &Attempt) {
        if self.readers.insert(attempt.key.clone()) && attempt.state != State::Sent {
            self.touched.push((attempt.key.clone(), before));
        }
    }
}

/// Decides the state of a delivery from one attempt's result (the delivery state machine the
/// "Delivery" section of docs/sending.md describes); `due.attempts` counts earlier attempts.
///
/// - 2xx: sent.
/// - [`SendFailure::Temporary`] (4xx, or the connection lost or timed out before the end of
///   DATA): deferred until `now + backoff`, or failed once this was attempt `max_attempts`.
/// - [`SendFailure::Permanent`] (5xx): failed, never retried; a 5.1.x reply also suppresses the
///   address for later campaigns.
/// - [`SendFailure::Ambiguous`] (the reply after the final dot was lost): flagged as a possible
///   duplicate; `retry` treats it like a temporary failure, `skip` counts it as sent.
pub fn classify(
    due: &Due,
    result: &Result<Reply, SendFailure>,
    settings: &Settings,
    now_ms: i64,
) -> Attempt {
    let mut a = Attempt {
        address: due.address.clone(),
        key: due.key.clone(),
        state: State::Sent,
        code: None,
        text: String::new(),
        next_at: None,
        possible_duplicate: false,
        suppress: false,
        at: now_ms,
    };
    let made = due.attempts + 1;
    let retry = |a: &mut Attempt| {
        if made >= settings.max_attempts {
            a.state = State::Failed;
            a.text = format!("gave up after {made} attempts: {}", a.text);
        } else {
            a.state = State::Deferred;
            a.next_at = Some(now_ms + settings.backoff(made).as_millis() as i64);
        }
    };
    match result {
        Ok(r) => {
            a.code = Some(r.code);
            a.text = r.text.clone();
        }
        Err(SendFailure::Temporary { code, text, .. }) => {
            a.code = *code;
            a.text = text.clone();
            retry(&mut a);
        }
        Err(f @ SendFailure::Permanent { code, text, .. }) => {
            a.code = Some(*code);
            a.text = text.clone();
            a.state = State::Failed;
            a.suppress = f.suppresses_address();
        }
        Err(SendFailure::Ambiguous { text }) => {
            a.possible_duplicate = true;
            match settings.ambiguous {
                Ambiguous::Retry => {
                    a.text = format!("reply lost after the final dot, sending again: {text}");
                    retry(&mut a);
                }
                Ambiguous::Skip => {
                    a.text = format!("reply lost after the final dot, counted as sent: {text}");
                }
            }
        }
    }
    a
}

/// The one rate limit of a run, shared by every worker: one message every
/// `1 / rate_per_second`, without bursts, so no second carries more than `rate_per_second + 1`.
///
/// It runs on tokio's clock, so tests can drive it with paused time.
pub struct Pacer {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>,
    clock: TokioClock,
}

/// governor's view of tokio's clock: the time since the pacer was made.
#[derive(Clone, Debug)]
struct TokioClock {
    start: Instant,
}

impl governor::clock::Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Pacer {
    /// A pacer for `rate_per_second` messages per second; none for 0 (no limit).
    pub fn new(rate_per_second: u32) -> Option<Pacer> {
        let rate = NonZeroU32::new(rate_per_second)?;
        let clock = TokioClock {
            start: Instant::now(),
        };
        let quota = Quota::per_second(rate).allow_burst(NonZeroU32::MIN);
        Some(Pacer {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
        })
    }

    /// Waits for the next free slot and takes it.
    pub async fn until_ready(&self) {
        loop {
            match self.limiter.check() {
                Ok(()) => return,
                Err(later) => {
                    let wait = later.wait_time_from(governor::clock::Clock::now(&self.clock));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

struct Job {
    due: Due,
    permit: OwnedSemaphorePermit,
}

/// What a worker did with a job.
enum Outcome {
    /// One attempt was made; record it.
    Attempted(Attempt),
    /// Not attempted (no connection, or stopping): back to `pending`, no attempt counted.
    Released(AddressKey),
}

struct Done {
    outcome: Outcome,
    permit: OwnedSemaphorePermit,
}

/// The workers still running, and why the last one that gave up did.
struct Crew {
    alive: AtomicUsize,
    /// Cancelled when no worker is left.
    gone: CancellationToken,
    reason: Mutex<Option<String>>,
    /// A connection has opened in this run: workers may open theirs at once from now on.
    opened: std::sync::atomic::AtomicBool,
    /// Held by the one worker opening a connection while none has opened yet.
    first: tokio::sync::Mutex<()>,
    /// The relay refused a connection for good (535: the credentials): nobody tries again.
    refused: Mutex<Option<SendFailure>>,
}

impl Crew {
    fn new(workers: usize) -> Crew {
        Crew {
            alive: AtomicUsize::new(workers),
            gone: CancellationToken::new(),
            reason: Mutex::new(None),
            opened: std::sync::atomic::AtomicBool::new(false),
            first: tokio::sync::Mutex::new(()),
            refused: Mutex::new(None),
        }
    }

    /// Opens a connection for a worker. Until one has opened in this run, workers open theirs
    /// one at a time, and after a permanent refusal nobody tries again: a relay that refuses
    /// the credentials sees one failed login per run, not one per worker (which is what
    /// fail2ban-style tools count as an attack).
    async fn open(&self, transport: &Transport) -> Result<Connection, SendFailure> {
        let _first = if self.opened.load(Ordering::Acquire) {
            None
        } else {
            Some(self.first.lock().await)
        };
        if let Some(f) = self.refused.lock().expect("crew lock").clone() {
            return Err(f);
        }
        let result = transport.connect().await;
        match &result {
            Ok(_) => self.opened.store(true, Ordering::Release),
            Err(f @ SendFailure::Permanent { .. }) => {
                *self.refused.lock().expect("crew lock") = Some(f.clone());
            }
            Err(_) => {}
        }
        result
    }

    /// A worker stops early, for `reason`.
    fn leave(&self, reason: String) {
        *self.reason.lock().expect("crew lock") = Some(reason);
        if self.alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.gone.cancel();
        }
    }

    fn reason(&self) -> Option<String> {
        self.reason.lock().expect("crew lock").clone()
    }
}

/// The run's circuit breaker, shared by the workers: each attempt is observed where it is
/// classified, so the breaker sees the attempts in the order they were made.
struct Fuse {
    breaker: Mutex<Breaker>,
    /// Cancelled when the breaker trips: the dispatcher stops, and no worker starts a message.
    blown: CancellationToken,
}

impl Fuse {
    fn new(limit: u32) -> Fuse {
        Fuse {
            breaker: Mutex::new(Breaker::new(limit)),
            blown: CancellationToken::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // The breaker's state is a few collections updated in place: a panic elsewhere cannot
        // leave it half changed, so go on.
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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
    pub template: Arc<MessageTemplate>,
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
                template: self.template.clone(),
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
        let key = self.template.key();
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

/// A connection, when it last carried a message, and whether it ever did.
struct Live {
    conn: Connection,
    last_used: Instant,
    /// It carried a message: a failure at MAIL FROM then more likely means the server ended the
    /// session than that the relay is failing.
    used: bool,
    /// Messages (transactions) tried on it.
    sent: u32,
}

/// One send worker: owns one connection, takes jobs until the channel closes or it is halted.
struct Worker {
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    done: mpsc::UnboundedSender<Done>,
    template: Arc<MessageTemplate>,
    transport: Arc<Transport>,
    envelope: Envelope,
    settings: Settings,
    clock: Arc<dyn Clock>,
    pacer: Option<Arc<Pacer>>,
    progress: Arc<Progress>,
    metrics: Arc<Metrics>,
    halt: CancellationToken,
    crew: Arc<Crew>,
    fuse: Arc<Fuse>,
    signing: Option<Arc<Signing>>,
}

/// The envelope sender (MAIL FROM) of a campaign's messages: where relays send bounces.
#[derive(Clone, Debug)]
pub enum Envelope {
    /// One address for every message (no `[bounces]`).
    Fixed(Address),
    /// VERP: `user+TAG@domain`, TAG the delivery's signed tag ([`TokenKey::verp_tag`]), so a
    /// bounce names the delivery it is about whatever the relay does to the message.
    Verp {
        user: String,
        domain: String,
        key: Box<TokenKey>,
    },
}

impl Envelope {
    /// The envelope sender of delivery `id` (the same for each of its attempts), and under
    /// VERP its tag, which is also the delivery's DSN envelope id.
    pub fn sender(&self, id: i64) -> (Address, Option<String>) {
        match self {
            Envelope::Fixed(a) => (a.clone(), None),
            Envelope::Verp { user, domain, key } => {
                let tag = key.verp_tag(id);
                let address = Address::new(format!("{user}+{tag}"), domain)
                    .expect("a valid address with a tag of letters, digits and a dash");
                (address, Some(tag))
            }
        }
    }
}

/// Whether `f` says the relay ended the session or takes no more messages on it: a 421 at any
/// step (RFC 5321 3.8), or 452 with 4.5.3 (too many recipients or messages for this session).
/// The message was not taken, and the reader had no part in it.
fn ends_session(f: &SendFailure) -> bool {
    match f {
        SendFailure::Temporary {
            code: Some(421), ..
        } => true,
        SendFailure::Temporary {
            code: Some(452), ..
        } => f.status() == Some((4, 5, 3)),
        _ => false,
    }
}

/// DKIM signing, off the async I/O threads. An RSA-2048 signature costs about half a
/// millisecond of CPU: signed on a runtime thread it would stall every connection that thread
/// serves. Each signature runs on the blocking pool instead, at most one per core at a time, so
/// signing uses the cores without queueing more work than they can do.
struct Signing {
    signer: Arc<DkimSigner>,
    cores: Arc<Semaphore>,
}

impl Signing {
    fn new(signer: Arc<DkimSigner>) -> Signing {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Signing {
            signer,
            cores: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Prepends the DKIM signature(s) of `message`, made at `now_unix`.
    async fn sign(&self, message: &mut Vec<u8>, now_unix: i64) {
        let _core = self
            .cores
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let signer = self.signer.clone();
        let mut owned = std::mem::take(message);
        *message = tokio::task::spawn_blocking(move || {
            signer.sign_in_place(&mut owned, now_unix);
            owned
        })
        .await
        .expect("dkim signing panicked");
    }
}

/// What one step of a worker came to.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Ready for the next job.
    Next,
    /// The worker must stop (it gave up on the relay, or the recorder is gone).
    Stop,
}

impl Worker {
    async fn run(self) {
        let mut conn: Option<Live> = None;
        let mut buf = Vec::new();
        let mut refused = 0u32;
        loop {
            let job = { self.jobs.lock().await.recv().await };
            let Some(job) = job else { break };
            if self.step(job, &mut conn, &mut buf, &mut refused).await == Step::Stop {
                break;
            }
        }
        if let Some(live) = conn {
            live.conn.close().await;
        }
    }

    /// Handles one job: sends it and reports the attempt, or puts it back.
    async fn step(
        &self,
        job: Job,
        conn: &mut Option<Live>,
        buf: &mut Vec<u8>,
        refused: &mut u32,
    ) -> Step {
        if self.halt.is_cancelled() || self.fuse.blown.is_cancelled() {
            return self.release(job);
        }
        let to: Address = match job.due.address.parse() {
            Ok(a) => a,
            Err(e) => {
                let result = Err(SendFailure::Permanent {
                    code: 553,
                    text: format!("invalid address {}: {e}", job.due.address),
                    stage: Stage::Rcpt,
                });
                return self.report(job, &result);
            }
        };
        if let Some(p) = &self.pacer {
            tokio::select! {
                _ = p.until_ready() => {}
                _ = self.halt.cancelled() => return self.release(job),
            }
        }
        if let Err(failure) = self.connection(conn).await {
            return self.relay_fault(job, failure, refused).await;
        }
        let live = conn.as_mut().expect("connected above");
        let reused = live.used;
        let result = self.send(&mut live.conn, &job.due, &to, buf).await;
        live.last_used = Instant::now();
        live.used = true;
        live.sent += 1;
        match result {
            Err(f) if ends_session(&f) => {
                // The relay ended the session (421) or will take no more messages on it
                // (452 4.5.3): the message was not taken, and the reader is not at fault. A new
                // connection, at once, when this one had carried mail; else it is the relay's
                // trouble, with its backoff.
                if let Some(old) = conn.take() {
                    old.conn.close().await;
                }
                if reused {
                    tracing::debug!(error.message = %self.template.key().redact(&f.to_string()), "the relay ended the session: reconnecting");
                    return self.release(job);
                }
                self.relay_fault(job, f, refused).await
            }
            Err(f) if f.precedes_recipient() => {
                let closed = matches!(
                    f,
                    SendFailure::Temporary {
                        code: None | Some(421),
                        ..
                    }
                );
                if reused && closed {
                    // The server ended a session that had carried mail (idle, or its own limit of
                    // messages per session): a new connection, at once, is the cure.
                    tracing::debug!(error.message = %self.template.key().redact(&f.to_string()), "the server closed the session: reconnecting");
                    return self.release(job);
                }
                self.relay_fault(job, f, refused).await
            }
            result => {
                *refused = 0;
                self.report(job, &result)
            }
        }
    }

    /// A failure that named no reader (no connection, or MAIL FROM refused): the delivery goes
    /// back untouched and the worker waits like a retry, or stops for good after a 5xx or
    /// `max_attempts` such failures in a row.
    async fn relay_fault(&self, job: Job, failure: SendFailure, refused: &mut u32) -> Step {
        *refused += 1;
        let connecting = failure.stage() == Stage::Connect;
        self.metrics.send_error(if connecting {
            SendErrorKind::connection
        } else {
            error_kind(&failure)
        });
        if self.release(job) == Step::Stop {
            return Step::Stop;
        }
        let what = if connecting {
            "cannot open a connection"
        } else {
            "the relay refused the message before any reader was named"
        };
        let permanent = matches!(failure, SendFailure::Permanent { .. });
        if permanent || *refused >= self.settings.max_attempts {
            tracing::error!(
                error.message = %self.template.key().redact(failure.text()), failures = *refused,
                "{what}: this worker stops"
            );
            self.crew.leave(failure.to_string());
            return Step::Stop;
        }
        let wait = self.settings.backoff(*refused);
        tracing::warn!(
            error.message = %self.template.key().redact(failure.text()), failures = *refused, retry_in = ?wait,
            "{what}: the delivery is put back, no attempt counted"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.halt.cancelled() => {}
        }
        Step::Next
    }

    /// Makes sure `slot` holds a usable connection: replaces a broken one or one that carried
    /// its `messages_per_connection`, probes one that sat idle, opens one when there is none.
    async fn connection(&self, slot: &mut Option<Live>) -> Result<(), SendFailure> {
        if let Some(live) = slot {
            let cap = self.settings.messages_per_connection;
            let usable = live.conn.is_usable()
                && (cap == 0 || live.sent < cap)
                && (live.last_used.elapsed() < self.settings.idle_check || live.conn.check().await);
            if usable {
                return Ok(());
            }
            tracing::debug!("the connection is no longer usable: opening a new one");
            if let Some(old) = slot.take() {
                old.conn.close().await;
            }
        }
        let conn = self.crew.open(&self.transport).await?;
        *slot = Some(Live {
            conn,
            last_used: Instant::now(),
            used: false,
            sent: 0,
        });
        Ok(())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(recipient = %self.template.key().tag(due.address.as_str()))
    )]
    async fn send(
        &self,
        conn: &mut Connection,
        due: &Due,
        to: &Address,
        buf: &mut Vec<u8>,
    ) -> Result<Reply, SendFailure> {
        self.template.write(
            Recipient {
                address: to,
                name: due.name.as_deref(),
            },
            buf,
        );
        if let Some(signing) = &self.signing {
            signing.sign(buf, self.clock.now().timestamp()).await;
        }
        let (from, envid) = self.envelope.sender(due.id);
        conn.send(&from, to, buf, envid.as_deref()).await
    }

    /// Classifies an attempt, logs and counts it, and hands it to the recorder.
    fn report(&self, job: Job, result: &Result<Reply, SendFailure>) -> Step {
        let attempt = classify(&job.due, result, &self.settings, self.clock.now_ms());
        log_outcome(self.template.key(), &attempt, job.due.attempts + 1, result);
        // Observed before the outcome is handed over, so a trip is known before its permit is
        // released (the dispatcher relies on it).
        let trip = self.fuse.lock().observe(job.due.attempts, &attempt, result);
        if let Some(trip) = trip {
            let trip = self.template.key().redact(&trip.to_string()).into_owned();
            tracing::error!(
                "circuit breaker: {trip}; the run stops and these deliveries go back to pending"
            );
            self.metrics.circuit_break();
            self.fuse.blown.cancel();
        }
        if attempt.state == State::Sent {
            self.progress.sent.fetch_add(1, Ordering::Relaxed);
            self.metrics.message_sent();
        }
        if let Err(failure) = result {
            self.metrics.send_error(error_kind(failure));
        }
        if attempt.possible_duplicate {
            self.progress
                .possible_duplicates
                .fetch_add(1, Ordering::Relaxed);
        }
        self.hand_over(Outcome::Attempted(attempt), job.permit)
    }

    /// Puts a job back without an attempt.
    fn release(&self, job: Job) -> Step {
        self.hand_over(Outcome::Released(job.due.key), job.permit)
    }

    fn hand_over(&self, outcome: Outcome, permit: OwnedSemaphorePermit) -> Step {
        if self.done.send(Done { outcome, permit }).is_err() {
            // The recorder is gone (its error ends the run); nothing more can be recorded.
            self.crew.leave("the ledger recorder stopped".to_string());
            return Step::Stop;
        }
        Step::Next
    }
}

/// The `brief_send_errors_total` kind of a failed attempt: by what the server said, whatever
/// the delivery's state became (a 4xx that used the last attempt is still `transient`).
fn error_kind(failure: &SendFailure) -> SendErrorKind {
    match failure {
        SendFailure::Temporary { code: Some(_), .. } => SendErrorKind::transient,
        SendFailure::Temporary { code: None, .. } => SendErrorKind::connection,
        SendFailure::Permanent { .. } => SendErrorKind::permanent,
        SendFailure::Ambiguous { .. } => SendErrorKind::ambiguous,
    }
}

/// Logs an attempt: the reader by keyed tag, and the reply with any address in it (relays
/// quote `RCPT TO:<...>`) replaced by its tag, so no log line holds a reader's address.
fn log_outcome(key: &TokenKey, a: &Attempt, attempt: u32, result: &Result<Reply, SendFailure>) {
    let recipient = key.tag(a.address.as_str());
    let reply = key.redact(&a.text);
    match (a.state, result) {
        (State::Sent, Ok(_)) => {
            tracing::debug!(%recipient, attempt, code = a.code, %reply, "sent")
        }
        (_, Err(SendFailure::Ambiguous { .. })) => tracing::warn!(
            %recipient, attempt, state = a.state.as_str(), %reply,
            "possible duplicate: the reply to the final dot was lost"
        ),
        (State::Deferred, _) => tracing::info!(
            %recipient, attempt, code = a.code, %reply, "deferred"
        ),
        _ => tracing::warn!(
            %recipient, attempt, code = a.code, %reply,
            suppressed = a.suppress, "failed"
        ),
    }
}

/// How often a process running a campaign renews its lease in the ledger.
pub const LEASE_HEARTBEAT: Duration = Duration::from_secs(3);

/// A lease not renewed for this long (over three heartbeats) is stale: its process is taken
/// for dead, and a live daemon on the same ledger takes the campaign over.
pub const LEASE_STALE: Duration = Duration::from_secs(10);

/// This process's name in the ledger's leases: its pid and a random number, since pids are
/// reused.
pub fn lease_owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(|| {
        let nonce: u32 = rand::random();
        format!("pid {} ({nonce:08x})", std::process::id())
    })
}

/// A campaign's lease, renewed every [`LEASE_HEARTBEAT`] by a task of its own until dropped:
/// while it is fresh, other daemons leave the campaign alone. It only says who is alive; the
/// send lock (`Ledger::lock_campaign`) is still what keeps two processes from sending.
pub struct Lease {
    stop: CancellationToken,
}

impl Lease {
    /// Starts renewing the lease of `campaign` for this process (needs a tokio runtime).
    pub fn hold(ledger: &SharedLedger, campaign: CampaignId, clock: Arc<dyn Clock>) -> Lease {
        let stop = CancellationToken::new();
        let (ledger, done) = (ledger.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let now = clock.now_ms();
                let renewed = ledger
                    .with(move |l| l.renew_lease(campaign, lease_owner(), now))
                    .await;
                if let Err(e) = renewed {
                    // Only a takeover's timing depends on it: the run goes on.
                    tracing::warn!(error.message = %e, "cannot renew the campaign's lease: {e:#}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(LEASE_HEARTBEAT) => {}
                    _ = done.cancelled() => return,
                }
            }
        });
        Lease { stop }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            concurrency: 4,
            rate_per_second: 0,
            max_attempts: 3,
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(300),
            ambiguous: Ambiguous::Retry,
            idle_check: IDLE_CHECK,
            breaker: 20,
            messages_per_connection: 0,
        }
    }

    /// Four workers share one pacer: 21 messages at 10 per second take 2 s of (paused, virtual)
    /// time in all, not a quarter of it as four separate limits would allow.
    #[tokio::test(start_paused = true)]
    async fn one_pace_for_all_workers() {
        let pacer = Arc::new(Pacer::new(10).expect("a limit"));
        let begin = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                let mut slots = Vec::new();
                for _ in 0..(if w == 0 { 6 } else { 5 }) {
                    pacer.until_ready().await;
                    slots.push(begin.elapsed());
                }
                slots
            }));
        }
        let mut slots = Vec::new();
        for t in tasks {
            slots.extend(t.await.unwrap());
        }
        slots.sort();
        assert_eq!(slots.len(), 21);
        assert_eq!(slots[0], Duration::ZERO);
        assert_eq!(*slots.last().unwrap(), Duration::from_secs(2));
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(99), "{slots:?}");
        }
        assert!(Pacer::new(0).is_none(), "0 means no limit");
    }

    #[test]
    fn the_crash_bound_is_twice_the_workers() {
        assert_eq!(settings().in_flight_bound(), 8);
        let one = Settings {
            concurrency: 0,
            ..settings()
        };
        assert_eq!(one.in_flight_bound(), 2);
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let s = settings();
        assert_eq!(s.backoff(1), Duration::from_secs(60));
        assert_eq!(s.backoff(2), Duration::from_secs(120));
        assert_eq!(s.backoff(3), Duration::from_secs(240));
        assert_eq!(s.backoff(4), Duration::from_secs(300));
        assert_eq!(s.backoff(60), Duration::from_secs(300));
    }

    #[test]
    fn replies_map_to_states() {
        let s = settings();
        let due = |attempts| Due {
            id: 1,
            address: "A@x.org".into(),
            key: AddressKey::from_text("A@x.org"),
            name: None,
            attempts,
        };
        let t = |r| classify(&due(0), &r, &s, 1000);
        assert_eq!(
            t(Ok(Reply {
                code: 250,
                text: "ok".into()
            }))
            .key
            .as_str(),
            "a@x.org"
        );
        assert_eq!(
            t(Ok(Reply {
                code: 250,
                text: "ok".into()
            }))
            .state,
            State::Sent
        );
        let d = t(Err(SendFailure::Temporary {
            code: Some(451),
            text: "4.7.1 greylisted".into(),
            stage: Stage::Rcpt,
        }));
        assert_eq!((d.state, d.next_at), (State::Deferred, Some(61_000)));
        let f = t(Err(SendFailure::Permanent {
            code: 550,
            text: "5.1.1 no such user".into(),
            stage: Stage::Rcpt,
        }));
        assert_eq!((f.state, f.suppress), (State::Failed, true));
        let f = t(Err(SendFailure::Permanent {
            code: 550,
            text: "5.7.1 policy".into(),
            stage: Stage::Rcpt,
        }));
        assert_eq!((f.state, f.suppress), (State::Failed, false));
        let a = t(Err(SendFailure::Ambiguous { text: "eof".into() }));
        assert_eq!((a.state, a.possible_duplicate), (State::Deferred, true));
        let last = classify(
            &due(2),
            &Err(SendFailure::Temporary {
                code: Some(451),
                text: "busy".into(),
                stage: Stage::Rcpt,
            }),
            &s,
            0,
        );
        assert_eq!(last.state, State::Failed);
        assert!(last.text.starts_with("gave up after 3 attempts"));
        let skip = Settings {
            ambiguous: Ambiguous::Skip,
            ..s
        };
        let a = classify(
            &due(0),
            &Err(SendFailure::Ambiguous { text: "eof".into() }),
            &skip,
            0,
        );
        assert_eq!((a.state, a.possible_duplicate), (State::Sent, true));
    }

    /// One attempt of reader `n`, with `before` attempts made earlier, as the worker would
    /// classify it; for the breaker.
    fn seen(
        b: &mut Breaker,
        n: usize,
        before: u32,
        result: Result<Reply, SendFailure>,
    ) -> Option<Trip> {
        let s = Settings {
            max_attempts: 2,
            ..settings()
        };
        let address = format!("r{n}@x.org");
        let due = Due {
            id: n as i64,
            key: AddressKey::from_text(&address),
            address,
            name: None,
            attempts: before,
        };
        let attempt = classify(&due, &result, &s, 0);
        b.observe(before, &attempt, &result)
    }

    fn ok() -> Result<Reply, SendFailure> {
        Ok(Reply {
            code: 250,
            text: "2.0.0 ok".into(),
        })
    }

    fn reply(code: u16, text: &str, stage: Stage) -> Result<Reply, SendFailure> {
        let text = format!("mx:25 answered {stage} with {code} {text}");
        Err(if code >= 500 {
            SendFailure::Permanent { code, text, stage }
        } else {
            SendFailure::Temporary {
                code: Some(code),
                text,
                stage,
            }
        })
    }

    fn keys(touched: &[(AddressKey, u32)]) -> Vec<(&str, u32)> {
        touched.iter().map(|(k, a)| (k.as_str(), *a)).collect()
    }

    #[test]
    fn the_breaker_trips_at_n_distinct_readers_with_the_same_failure() {
        let mut b = Breaker::new(3);
        let busy = || reply(451, "4.3.0 try later", Stage::Data);
        assert_eq!(seen(&mut b, 0, 0, busy()), None);
        assert_eq!(seen(&mut b, 1, 1, busy()), None);
        assert!(b.touched().is_empty(), "nothing to put back before a trip");
        let trip = seen(&mut b, 2, 0, busy()).expect("the third reader trips it");
        assert_eq!(trip.readers, 3);
        assert_eq!(
            trip.signature,
            Signature {
                stage: Stage::Data,
                code: Some(451),
                status: Some((4, 3, 0)),
            }
        );
        assert_eq!(
            trip.to_string(),
            "the relay answered 3 readers in a row with `451 4.3.0` at DATA: mx:25 answered \
             DATA with 451 4.3.0 try later"
        );
        // Messages in flight when it tripped join the streak; it trips only once.
        assert_eq!(seen(&mut b, 3, 4, busy()), None);
        assert_eq!(seen(&mut b, 4, 0, ok()), None);
        assert_eq!(
            seen(&mut b, 5, 0, reply(451, "4.7.1 grey", Stage::Rcpt)),
            None
        );
        assert_eq!(
            keys(&b.touched()),
            [
                ("r0@x.org", 0),
                ("r1@x.org", 1),
                ("r2@x.org", 0),
                ("r3@x.org", 4)
            ],
            "each with its attempts before the streak"
        );
        assert_eq!(b.tripped(), Some(&trip));
    }

    #[test]
    fn a_success_or_another_failure_ends_the_streak() {
        let mut b = Breaker::new(3);
        let busy = || reply(451, "4.3.0 try later", Stage::Data);
        seen(&mut b, 0, 0, busy());
        seen(&mut b, 1, 0, busy());
        seen(&mut b, 2, 0, ok());
        seen(&mut b, 3, 0, busy());
        seen(&mut b, 4, 0, busy());
        // Same code, another enhanced status; then same reply at another step; then no reply.
        seen(&mut b, 5, 0, reply(451, "4.3.2 shutting down", Stage::Data));
        seen(&mut b, 6, 0, reply(451, "4.3.2 shutting down", Stage::Rcpt));
        let lost = || {
            Err(SendFailure::Temporary {
                code: None,
                text: "connection lost at DATA".into(),
                stage: Stage::Data,
            })
        };
        seen(&mut b, 7, 0, lost());
        seen(&mut b, 8, 0, busy());
        assert_eq!(seen(&mut b, 9, 0, busy()), None);
        assert!(b.tripped().is_none());
        // A failure without a reply code has a signature too: the relay hanging up on everyone.
        let mut b = Breaker::new(2);
        seen(&mut b, 0, 0, lost());
        let trip = seen(&mut b, 1, 0, lost()).expect("tripped");
        assert!(
            trip.to_string()
                .starts_with("the relay failed 2 readers in a row with no reply at DATA: "),
            "{trip}"
        );
    }

    #[test]
    fn one_reader_failing_again_is_not_a_second_reader() {
        let mut b = Breaker::new(3);
        let busy = || reply(451, "4.3.0 try later", Stage::Rcpt);
        for attempts in 0..5 {
            assert_eq!(seen(&mut b, 0, attempts, busy()), None);
            assert_eq!(seen(&mut b, 1, attempts, busy()), None);
        }
        assert!(b.tripped().is_none());
        assert!(seen(&mut b, 2, 0, busy()).is_some());
        assert_eq!(
            keys(&b.touched()),
            [("r0@x.org", 0), ("r1@x.org", 0), ("r2@x.org", 0)]
        );
    }

    #[test]
    fn dead_addresses_never_count_nor_end_a_streak() {
        let mut b = Breaker::new(3);
        let unknown = || reply(550, "5.1.1 no such user", Stage::Rcpt);
        for n in 0..50 {
            assert_eq!(seen(&mut b, n, 0, unknown()), None);
        }
        let policy = || reply(550, "5.7.1 relaying denied", Stage::Rcpt);
        seen(&mut b, 50, 0, policy());
        seen(&mut b, 51, 0, unknown());
        seen(&mut b, 52, 0, policy());
        assert!(
            seen(&mut b, 53, 0, policy()).is_some(),
            "5.7.1 is not 5.1.x"
        );
        assert_eq!(
            keys(&b.touched()),
            [("r50@x.org", 0), ("r52@x.org", 0), ("r53@x.org", 0)],
            "the dead address stays failed"
        );
    }

    #[test]
    fn a_lost_reply_counted_as_sent_counts_but_stays_sent() {
        let mut b = Breaker::new(2);
        let lost = || Err(SendFailure::Ambiguous { text: "eof".into() });
        // `seen` classifies with `retry`; a skip-policy attempt is sent.
        let attempt = |n: usize, state| Attempt {
            address: format!("r{n}@x.org"),
            key: AddressKey::from_text(&format!("r{n}@x.org")),
            state,
            code: None,
            text: "eof".into(),
            next_at: None,
            possible_duplicate: true,
            suppress: false,
            at: 0,
        };
        assert_eq!(b.observe(0, &attempt(0, State::Sent), &lost()), None);
        let trip = b.observe(0, &attempt(1, State::Deferred), &lost());
        assert_eq!(trip.map(|t| t.signature.stage), Some(Stage::Message));
        assert_eq!(keys(&b.touched()), [("r1@x.org", 0)]);
    }

    #[test]
    fn a_breaker_of_0_never_trips() {
        let mut b = Breaker::new(0);
        for n in 0..100 {
            assert_eq!(seen(&mut b, n, 0, reply(451, "4.3.0 x", Stage::Data)), None);
        }
        assert!(b.tripped().is_none() && b.touched().is_empty());
    }
}
