//! The send engine: runs a campaign until every delivery is final, one message per recipient.
//!
//! A dispatcher claims due deliveries from the ledger in batches and hands them to `concurrency`
//! workers; each worker owns one connection, waits for the shared rate limiter, personalises the
//! pre-encoded message and sends it. Outcomes go to a recorder that commits them in groups.
//! A worker takes one of `2 x concurrency` in-flight permits before sending and the permit is
//! released only after the outcome is committed: after a crash at most that many messages can
//! have been sent without being recorded, which bounds the duplicates of a resume.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::Address;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Ambiguous, Delivery};
use crate::dkim::DkimSigner;
use crate::ledger::{Attempt, Campaign, Counts, Due, Ledger, State};
use crate::message::{MessageTemplate, Recipient};
use crate::transport::{Connection, Reply, SendFailure, Transport};

/// How many deliveries the dispatcher claims per ledger transaction.
const CLAIM_BATCH: usize = 256;
/// The longest the recorder holds outcomes before committing them.
const GROUP_COMMIT: Duration = Duration::from_millis(20);

/// The engine's settings (from `[delivery]`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub concurrency: u32,
    pub rate_per_second: u32,
    pub max_attempts: u32,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub ambiguous: Ambiguous,
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

    /// The most messages that can be sent but not yet recorded at any moment.
    pub fn in_flight_bound(&self) -> usize {
        2 * self.concurrency as usize
    }
}

/// Live counters of a running campaign, for the progress bar and the metrics.
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub deferred: AtomicU64,
    pub failed: AtomicU64,
    pub possible_duplicates: AtomicU64,
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
}

/// Decides the state of a delivery from one attempt's result (the state machine of DESIGN
/// "Delivery semantics"). `attempts` counts earlier attempts.
pub fn classify(
    address: &str,
    attempts: u32,
    result: &Result<Reply, SendFailure>,
    settings: &Settings,
    now_ms: i64,
) -> Attempt {
    let mut a = Attempt {
        address: address.to_string(),
        state: State::Sent,
        code: None,
        text: String::new(),
        next_at: None,
        possible_duplicate: false,
        suppress: false,
        at: now_ms,
    };
    let made = attempts + 1;
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
        Err(f @ SendFailure::Temporary { code, text }) => {
            a.code = *code;
            a.text = text.clone();
            let _ = f;
            retry(&mut a);
        }
        Err(f @ SendFailure::Permanent { code, text }) => {
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

struct Job {
    due: Due,
    permit: OwnedSemaphorePermit,
}

struct Done {
    attempt: Attempt,
    _permit: OwnedSemaphorePermit,
}

/// Everything a campaign run needs.
pub struct Run {
    pub ledger: Arc<Mutex<Ledger>>,
    pub campaign: Campaign,
    pub template: Arc<MessageTemplate>,
    pub transport: Arc<Transport>,
    pub envelope_from: Address,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    pub progress: Arc<Progress>,
    /// Signs every message with DKIM when set (`[dkim]`).
    pub dkim: Option<Arc<DkimSigner>>,
}

async fn with_ledger<T: Send + 'static>(
    ledger: &Arc<Mutex<Ledger>>,
    f: impl FnOnce(&mut Ledger) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let ledger = ledger.clone();
    tokio::task::spawn_blocking(move || f(&mut ledger.lock().expect("ledger lock")))
        .await
        .context("ledger task panicked")?
}

impl Run {
    /// Sends until every delivery is final or `stop` is cancelled. In-flight messages always
    /// finish and are recorded before this returns.
    #[tracing::instrument(skip_all, fields(issue = %self.campaign.issue))]
    pub async fn execute(self, stop: CancellationToken) -> anyhow::Result<Summary> {
        let cid = self.campaign.id;
        let reset = with_ledger(&self.ledger, move |l| l.reset_in_flight(cid)).await?;
        if reset > 0 {
            tracing::warn!(
                count = reset,
                "resuming: {reset} deliveries were in flight when the last run stopped; they are sent again (possible duplicates)"
            );
        }
        let c = self.settings.concurrency.max(1) as usize;
        let permits = Arc::new(Semaphore::new(self.settings.in_flight_bound()));
        let (job_tx, job_rx) = mpsc::channel::<Job>(c);
        let job_rx = Arc::new(tokio::sync::Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Done>();
        let limiter = NonZeroU32::new(self.settings.rate_per_second)
            .map(|r| Arc::new(RateLimiter::direct(Quota::per_second(r))));
        let sent_before = self.progress.sent.load(Ordering::Relaxed);

        let recorder = tokio::spawn(record(self.ledger.clone(), cid, done_rx));
        let mut workers = Vec::with_capacity(c);
        for _ in 0..c {
            workers.push(tokio::spawn(worker(
                job_rx.clone(),
                done_tx.clone(),
                self.template.clone(),
                self.transport.clone(),
                self.envelope_from.clone(),
                self.settings.clone(),
                self.clock.clone(),
                limiter.clone(),
                self.progress.clone(),
                self.dkim.clone(),
            )));
        }
        drop(done_tx);

        let mut interrupted = false;
        let mut finished = false;
        'dispatch: loop {
            if stop.is_cancelled() {
                interrupted = true;
                break;
            }
            let now = self.clock.now_ms();
            let batch =
                with_ledger(&self.ledger, move |l| l.claim_due(cid, now, CLAIM_BATCH)).await?;
            if batch.is_empty() {
                // Wait for what is in flight to be recorded before deciding anything.
                let all = permits
                    .clone()
                    .acquire_many_owned(self.settings.in_flight_bound() as u32);
                let all = tokio::select! {
                    p = all => p.expect("semaphore open"),
                    _ = stop.cancelled() => { interrupted = true; break 'dispatch; }
                };
                drop(all);
                let now = self.clock.now_ms();
                if with_ledger(&self.ledger, move |l| l.finish_if_done(cid, now)).await? {
                    finished = true;
                    break;
                }
                let next = with_ledger(&self.ledger, move |l| l.next_retry_at(cid)).await?;
                let wait = next
                    .map(|t| Duration::from_millis((t - self.clock.now_ms()).max(0) as u64))
                    .unwrap_or(Duration::from_millis(100))
                    .clamp(Duration::from_millis(5), Duration::from_secs(5));
                tracing::debug!(?wait, "waiting for deferred deliveries");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => { interrupted = true; break 'dispatch; }
                }
                continue;
            }
            for due in batch {
                let permit = tokio::select! {
                    p = permits.clone().acquire_owned() => p.expect("semaphore open"),
                    _ = stop.cancelled() => { interrupted = true; break 'dispatch; }
                };
                if job_tx.send(Job { due, permit }).await.is_err() {
                    break 'dispatch;
                }
            }
        }
        drop(job_tx);
        for w in workers {
            w.await.context("send worker panicked")?;
        }
        recorder.await.context("ledger recorder panicked")??;
        // Claimed but never handed to a worker: back to pending for the next run.
        with_ledger(&self.ledger, move |l| l.reset_in_flight(cid)).await?;
        let now = self.clock.now_ms();
        if !finished {
            finished = with_ledger(&self.ledger, move |l| l.finish_if_done(cid, now)).await?;
        }
        let counts = with_ledger(&self.ledger, move |l| l.counts(cid)).await?;
        Ok(Summary {
            counts,
            sent_now: self.progress.sent.load(Ordering::Relaxed) - sent_before,
            finished,
            interrupted,
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    done: mpsc::UnboundedSender<Done>,
    template: Arc<MessageTemplate>,
    transport: Arc<Transport>,
    from: Address,
    settings: Settings,
    clock: Arc<dyn Clock>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    progress: Arc<Progress>,
    dkim: Option<Arc<DkimSigner>>,
) {
    let mut conn: Option<Connection> = None;
    let mut buf = Vec::new();
    loop {
        let job = { jobs.lock().await.recv().await };
        let Some(Job { due, permit }) = job else {
            break;
        };
        if let Some(l) = &limiter {
            l.until_ready().await;
        }
        let sign = dkim.as_deref().map(|d| (d, clock.now().timestamp()));
        let result = send_one(
            &mut conn, &transport, &template, &from, &due, &mut buf, sign,
        )
        .await;
        let attempt = classify(
            &due.address,
            due.attempts,
            &result,
            &settings,
            clock.now_ms(),
        );
        log_outcome(&attempt, &result);
        let counter = match attempt.state {
            State::Sent => &progress.sent,
            State::Deferred => &progress.deferred,
            _ => &progress.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if attempt.possible_duplicate {
            progress.possible_duplicates.fetch_add(1, Ordering::Relaxed);
        }
        if done
            .send(Done {
                attempt,
                _permit: permit,
            })
            .is_err()
        {
            break;
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
}

async fn send_one(
    conn: &mut Option<Connection>,
    transport: &Transport,
    template: &MessageTemplate,
    from: &Address,
    due: &Due,
    buf: &mut Vec<u8>,
    sign: Option<(&DkimSigner, i64)>,
) -> Result<Reply, SendFailure> {
    let to: Address = due.address.parse().map_err(|e| SendFailure::Permanent {
        code: 553,
        text: format!("invalid address {}: {e}", due.address),
    })?;
    if !conn.as_ref().is_some_and(Connection::is_usable) {
        if let Some(old) = conn.take() {
            old.close().await;
        }
        *conn = Some(transport.connect().await?);
    }
    template.write(
        Recipient {
            address: &to,
            name: due.name.as_deref(),
        },
        buf,
    );
    if let Some((dkim, now_unix)) = sign {
        dkim.sign_in_place(buf, now_unix);
    }
    let c = conn.as_mut().expect("connected above");
    c.send(from, &to, buf).await
}

fn log_outcome(a: &Attempt, result: &Result<Reply, SendFailure>) {
    match (a.state, result) {
        (State::Sent, Ok(_)) => {
            tracing::debug!(recipient = %a.address, code = a.code, "sent")
        }
        (_, Err(SendFailure::Ambiguous { .. })) => tracing::warn!(
            recipient = %a.address, state = a.state.as_str(), reply = %a.text,
            "possible duplicate: the reply to the final dot was lost"
        ),
        (State::Deferred, _) => tracing::info!(
            recipient = %a.address, code = a.code, reply = %a.text, "deferred"
        ),
        _ => tracing::warn!(
            recipient = %a.address, code = a.code, reply = %a.text, suppressed = a.suppress, "failed"
        ),
    }
}

/// Commits outcomes in groups: when `GROUP_COMMIT` has passed since the first uncommitted one,
/// or when the channel runs dry. Permits are released only after their outcome is committed.
async fn record(
    ledger: Arc<Mutex<Ledger>>,
    campaign: i64,
    mut rx: mpsc::UnboundedReceiver<Done>,
) -> anyhow::Result<()> {
    loop {
        let Some(first) = rx.recv().await else { break };
        let mut pending = vec![first];
        let deadline = tokio::time::sleep(GROUP_COMMIT);
        tokio::pin!(deadline);
        let mut closed = false;
        loop {
            while let Ok(d) = rx.try_recv() {
                pending.push(d);
            }
            if pending.len() >= 512 {
                break;
            }
            tokio::select! {
                d = rx.recv() => match d {
                    Some(d) => pending.push(d),
                    None => { closed = true; break; }
                },
                _ = &mut deadline => break,
            }
        }
        let batch = pending;
        let ledger = ledger.clone();
        tokio::task::spawn_blocking(move || {
            let attempts: Vec<Attempt> = batch.iter().map(|d| d.attempt.clone()).collect();
            let r = ledger
                .lock()
                .expect("ledger lock")
                .record(campaign, &attempts);
            drop(batch); // releases the permits, now that the outcomes are durable
            r
        })
        .await
        .context("ledger task panicked")??;
        if closed {
            break;
        }
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
        }
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
        let t = |r| classify("a@x.org", 0, &r, &s, 1000);
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
        }));
        assert_eq!((d.state, d.next_at), (State::Deferred, Some(61_000)));
        let f = t(Err(SendFailure::Permanent {
            code: 550,
            text: "5.1.1 no such user".into(),
        }));
        assert_eq!((f.state, f.suppress), (State::Failed, true));
        let f = t(Err(SendFailure::Permanent {
            code: 550,
            text: "5.7.1 policy".into(),
        }));
        assert_eq!((f.state, f.suppress), (State::Failed, false));
        let a = t(Err(SendFailure::Ambiguous { text: "eof".into() }));
        assert_eq!((a.state, a.possible_duplicate), (State::Deferred, true));
        let last = classify(
            "a@x.org",
            2,
            &Err(SendFailure::Temporary {
                code: Some(451),
                text: "busy".into(),
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
            "a@x.org",
            0,
            &Err(SendFailure::Ambiguous { text: "eof".into() }),
            &skip,
            0,
        );
        assert_eq!((a.state, a.possible_duplicate), (State::Sent, true));
    }
}
