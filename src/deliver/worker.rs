//! The send workers: each owns one connection, takes claimed deliveries, sends and classifies
//! them, and hands the outcomes to the recorder. Also the crew they form (one login at a time
//! until one succeeds), the shared circuit breaker ([`Fuse`]), the envelope sender and DKIM
//! signing off the async threads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lettre::Address;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::editions::Editions;
use crate::address::AddressKey;
use crate::clock::Clock;
use crate::dkim::DkimSigner;
use crate::ledger::{Attempt, DeliveryId, Due, State};
use crate::message::Recipient;
use crate::metrics::{Metrics, SendErrorKind};
use crate::token::TokenKey;
use crate::transport::{Connection, Reply, SendFailure, Stage, Transport};

use super::breaker::{classify, Breaker};
use super::pace::Pacer;
use super::settings::Settings;

/// Counters of one run, for its [`Summary`](super::Summary) and its last log line.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Messages the server accepted (including lost replies counted as sent by `skip`).
    pub(super) sent: AtomicU64,
    /// Replies lost after the final dot.
    pub(super) possible_duplicates: AtomicU64,
}

pub(super) struct Job {
    pub(super) due: Due,
    pub(super) permit: OwnedSemaphorePermit,
}

/// What a worker did with a job.
pub(super) enum Outcome {
    /// One attempt was made; record it.
    Attempted(Attempt),
    /// Not attempted (no connection, or stopping): back to `pending`, no attempt counted.
    Released(AddressKey),
}

pub(super) struct Done {
    pub(super) outcome: Outcome,
    pub(super) permit: OwnedSemaphorePermit,
}

/// The workers still running, and why the last one that gave up did.
pub(super) struct Crew {
    alive: AtomicUsize,
    /// Cancelled when no worker is left.
    pub(super) gone: CancellationToken,
    reason: Mutex<Option<String>>,
    /// A connection has opened in this run: workers may open theirs at once from now on.
    opened: std::sync::atomic::AtomicBool,
    /// Held by the one worker opening a connection while none has opened yet.
    first: tokio::sync::Mutex<()>,
    /// The relay refused a connection for good (535: the credentials): nobody tries again.
    refused: Mutex<Option<SendFailure>>,
}

impl Crew {
    pub(super) fn new(workers: usize) -> Crew {
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

    pub(super) fn reason(&self) -> Option<String> {
        self.reason.lock().expect("crew lock").clone()
    }
}

/// The run's circuit breaker, shared by the workers: each attempt is observed where it is
/// classified, so the breaker sees the attempts in the order they were made.
pub(super) struct Fuse {
    breaker: Mutex<Breaker>,
    /// Cancelled when the breaker trips: the dispatcher stops, and no worker starts a message.
    pub(super) blown: CancellationToken,
}

impl Fuse {
    pub(super) fn new(limit: u32) -> Fuse {
        Fuse {
            breaker: Mutex::new(Breaker::new(limit)),
            blown: CancellationToken::new(),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // The breaker's state is a few collections updated in place: a panic elsewhere cannot
        // leave it half changed, so go on.
        self.breaker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
pub(super) struct Worker {
    pub(super) jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    pub(super) done: mpsc::UnboundedSender<Done>,
    pub(super) editions: Arc<Editions>,
    pub(super) transport: Arc<Transport>,
    pub(super) envelope: Envelope,
    pub(super) settings: Settings,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) pacer: Option<Arc<Pacer>>,
    pub(super) progress: Arc<Progress>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) halt: CancellationToken,
    pub(super) crew: Arc<Crew>,
    pub(super) fuse: Arc<Fuse>,
    pub(super) signing: Option<Arc<Signing>>,
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
    pub fn sender(&self, id: DeliveryId) -> (Address, Option<String>) {
        match self {
            Envelope::Fixed(a) => (a.clone(), None),
            Envelope::Verp { user, domain, key } => {
                let tag = key.verp_tag(id.get());
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
pub(super) struct Signing {
    signer: Arc<DkimSigner>,
    cores: Arc<Semaphore>,
}

impl Signing {
    pub(super) fn new(signer: Arc<DkimSigner>) -> Signing {
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
    pub(super) async fn run(self) {
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
                    tracing::debug!(error.message = %self.editions.key().redact(&f.to_string()), "the relay ended the session: reconnecting");
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
                    tracing::debug!(error.message = %self.editions.key().redact(&f.to_string()), "the server closed the session: reconnecting");
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
                error.message = %self.editions.key().redact(failure.text()), failures = *refused,
                "{what}: this worker stops"
            );
            self.crew.leave(failure.to_string());
            return Step::Stop;
        }
        let wait = self.settings.backoff(*refused);
        tracing::warn!(
            error.message = %self.editions.key().redact(failure.text()), failures = *refused, retry_in = ?wait,
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
        fields(recipient = %self.editions.key().tag(due.address.as_str()))
    )]
    async fn send(
        &self,
        conn: &mut Connection,
        due: &Due,
        to: &Address,
        buf: &mut Vec<u8>,
    ) -> Result<Reply, SendFailure> {
        self.editions.for_lang(due.lang.as_deref()).write(
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
        log_outcome(self.editions.key(), &attempt, job.due.attempts + 1, result);
        // Observed before the outcome is handed over, so a trip is known before its permit is
        // released (the dispatcher relies on it).
        let trip = self.fuse.lock().observe(job.due.attempts, &attempt, result);
        if let Some(trip) = trip {
            let trip = self.editions.key().redact(&trip.to_string()).into_owned();
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
