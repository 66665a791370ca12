//! Readers join by themselves: sign-up requests, the confirmation message, and its queue.
//!
//! A request (the form's `POST /subscribe`, or `brief subscribers add --confirm`) for an address
//! that is not active is noted in the ledger and answered by a message in the newsletter's look
//! with a link `public_url/confirm/TOKEN`: the token is signed and carries the address, the name,
//! the time of the request, the reader's language and an expiry (`[server] confirm_ttl`); on
//! confirmation the language becomes the subscriber's. An address gets at most one
//! such message per [`MIN_GAP`], counted from when the relay accepted one (a refused one does not
//! stop the reader asking again). The message is a notice (`notices`): a 4xx reply or a lost
//! connection is tried again within seconds. An active address gets nothing, and the person asking cannot
//! tell the difference: the web answer is the same.
//!
//! The web side never waits on the ledger or the relay for a sign-up: it offers the request to a
//! small bounded [`Queue`], and one [`Mailer`] task works through it. A flood of requests fills
//! the queue (the overflow is refused and counted) instead of slowing the unsubscribe links or a
//! running campaign. Addresses never appear in logs above debug level: a short keyed tag
//! ([`crate::token::TokenKey::tag`]) stands in for them.

use std::sync::Arc;
use std::time::Duration;

use lettre::Address;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::address::AddressKey;
use crate::app::{App, TestReply};
use crate::clock::Millis;
use crate::dkim::DkimSigner;
use crate::issue::one_line;
use crate::lang::Lang;
use crate::ledger::{Asking, Ledger, NoticeKind, SharedLedger, SignupRequest};
use crate::message::{Kind, MessageTemplate};
use crate::metrics::{Metrics, SubscriptionEvent};
use crate::render::Rendered;
use crate::token::{Purpose, TokenKey};

/// The least time between two confirmation messages to one address.
pub const MIN_GAP: Duration = Duration::from_secs(10 * 60);

/// How many requests may wait for the mailer; more are refused.
pub const QUEUE: usize = 64;

/// How often expired requests are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(15 * 60);

/// A reader's request to join.
#[derive(Clone, Debug)]
pub struct Request {
    pub address: Address,
    pub name: Option<String>,
    /// The reader's language, one of `[newsletter] languages` (the caller resolves it): kept
    /// with the request, carried by the link, and the subscriber's once confirmed.
    pub lang: Lang,
}

/// What became of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The address is active already: nothing was sent.
    Active,
    /// A confirmation went to the address less than [`MIN_GAP`] ago: nothing was sent.
    TooSoon,
    /// The address was forgotten at its owner's request (`brief subscribers forget`): nothing
    /// was noted or sent.
    Forgotten,
    /// The confirmation message was handed to the relay (or the outbox), or refused for good
    /// (5xx); its reply.
    Mailed(TestReply),
    /// The relay did not take it yet (4xx, a lost connection): it stays queued and is tried
    /// again (`notices`); the reply.
    Retrying(TestReply),
}

/// The fields a confirmation token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub address: Address,
    pub name: Option<String>,
    /// When the reader asked (Unix milliseconds).
    pub requested_at: i64,
    /// The language asked in; `None` for a link made before brief carried one.
    pub lang: Option<Lang>,
}

/// The HTTP side's end of the queue.
#[derive(Clone, Debug)]
pub struct Queue(mpsc::Sender<Request>);

impl Queue {
    /// Hands `request` to the mailer without waiting; false when the queue is full.
    pub fn offer(&self, request: Request) -> bool {
        self.0.try_send(request).is_ok()
    }
}

/// Sends confirmation messages: what both the queue's task and the CLI go through.
pub struct Mailer {
    pub app: Arc<App>,
    pub key: TokenKey,
    pub dkim: Option<Arc<DkimSigner>>,
    pub metrics: Arc<Metrics>,
}

impl Mailer {
    /// The link that confirms `request`, valid for `[server] confirm_ttl` from now.
    pub fn confirm_link(&self, request: &Request, now_ms: i64) -> url::Url {
        let ttl = self.app.config.server.confirm_ttl.as_secs() as i64;
        let name = request.name.as_deref().map(one_line).unwrap_or_default();
        let token = self.key.sign(
            Purpose::Confirm,
            &[
                request.address.as_ref(),
                name.as_str(),
                &now_ms.to_string(),
                request.lang.as_str(),
            ],
            now_ms / 1000 + ttl,
        );
        self.app
            .config
            .server
            .public_url
            .join(&format!("confirm/{token}"))
            .expect("public_url is a base URL")
    }

    /// Reads a confirmation token; `Err` when it is forged, altered or expired at `now_ms`. A
    /// link mailed before brief carried the language (three fields) still opens, without one.
    pub fn open(&self, token: &str, now_ms: i64) -> Result<Confirmation, crate::token::TokenError> {
        let fields = self.key.open(Purpose::Confirm, token, now_ms / 1000)?;
        let invalid = crate::token::TokenError::Invalid;
        let (address, name, requested_at, lang) = match fields.as_slice() {
            [address, name, requested_at] => (address, name, requested_at, None),
            [address, name, requested_at, lang] => (
                address,
                name,
                requested_at,
                Some(Lang::parse(lang).map_err(|_| invalid)?),
            ),
            _ => return Err(invalid),
        };
        Ok(Confirmation {
            address: address.parse().map_err(|_| invalid)?,
            name: Some(name.clone()).filter(|n| !n.is_empty()),
            requested_at: requested_at.parse().map_err(|_| invalid)?,
            lang,
        })
    }

    /// Handles one request: an active address gets nothing; otherwise the request is noted and,
    /// unless one went out less than [`MIN_GAP`] ago, the confirmation message is sent and its
    /// reply recorded. Blocking ledger work runs on `ledger`'s thread pool.
    pub async fn handle(&self, ledger: &SharedLedger, request: Request) -> anyhow::Result<Outcome> {
        let now = self.app.clock.now_ms();
        let ttl = self.app.config.server.confirm_ttl;
        let (app, r) = (self.app.clone(), request.clone());
        let hash = self.key.forget_hash(request.address.as_ref());
        let noted = ledger
            .with(move |l| note(&app, l, &r, &hash, Millis(now), ttl))
            .await?;
        let tag = self.key.tag(request.address.as_ref());
        match noted {
            None => {
                tracing::debug!(reader = %tag, "sign-up of an active address: nothing sent");
                return Ok(Outcome::Active);
            }
            Some(SignupRequest::TooSoon) => {
                tracing::info!(reader = %tag, "sign-up repeated within 10 minutes: no second message");
                return Ok(Outcome::TooSoon);
            }
            Some(SignupRequest::Forgotten) => {
                tracing::info!(reader = %tag, "sign-up of a forgotten address: nothing noted or sent");
                return Ok(Outcome::Forgotten);
            }
            Some(SignupRequest::Mail) => {}
        }
        let tried = self.send(ledger, &request, now).await?;
        Ok(if tried.retried() {
            Outcome::Retrying(tried.reply)
        } else {
            Outcome::Mailed(tried.reply)
        })
    }

    /// Renders the confirmation message of `request`, queues it and tries it at once (a
    /// refusal with 4xx is tried again within seconds by the daemon's notice worker).
    async fn send(
        &self,
        ledger: &SharedLedger,
        request: &Request,
        now: i64,
    ) -> anyhow::Result<crate::notices::Tried> {
        let link = self.confirm_link(request, now);
        let template = self.compose(&link, &request.lang, now);
        let notice =
            crate::notices::notice(NoticeKind::Confirmation, &template, &request.address, None);
        let sender = crate::notices::Sender {
            app: &self.app,
            ledger,
            key: &self.key,
            dkim: self.dkim.as_deref(),
            metrics: Some(&self.metrics),
        };
        let mut tried = sender.send_now(vec![notice]).await?;
        anyhow::ensure!(
            tried.len() == 1,
            "one confirmation queued, {} tried",
            tried.len()
        );
        Ok(tried.remove(0))
    }

    /// The confirmation message with `link`, for a reader of language `lang` (written in the
    /// default language until the words are per language).
    fn compose(&self, link: &url::Url, lang: &Lang, now: i64) -> MessageTemplate {
        let ctx = self.app.render_context_in(lang);
        let (html, text) = crate::render::confirmation(ctx, link);
        let rendered = Rendered {
            subject: ctx.words.get("confirm-subject"),
            preheader: String::new(),
            lang: ctx.lang.clone(),
            html: vec![html],
            text: vec![text],
        };
        MessageTemplate::new(
            &rendered,
            ctx.newsletter,
            crate::issue::IssueId::of_date(self.app.clock.now().date_naive()),
            self.app.clock.now(),
            &self.app.config.server.public_url,
            &self.key,
            Kind::Notice { nonce: now as u64 },
        )
    }

    /// The queue and its task: requests offered to the queue are handled one at a time until
    /// `stop` is cancelled; expired requests are deleted every so often.
    pub fn start(
        self: Arc<Self>,
        ledger: SharedLedger,
        stop: CancellationToken,
    ) -> (Queue, impl std::future::Future<Output = ()> + Send) {
        let (tx, mut rx) = mpsc::channel::<Request>(QUEUE);
        let task = async move {
            let mut purge = tokio::time::interval(PURGE_EVERY);
            loop {
                tokio::select! {
                    // Biased: after a stop, no request waiting in the queue is started.
                    biased;
                    _ = stop.cancelled() => return,
                    _ = purge.tick() => self.purge(&ledger).await,
                    r = rx.recv() => {
                        let Some(request) = r else { return };
                        // A stop waits for the confirmation being tried, within a bound: one
                        // left unfinished stays queued and is tried again at the next start.
                        let grace = async {
                            stop.cancelled().await;
                            tokio::time::sleep(crate::notices::STOP_GRACE).await;
                        };
                        let handled = tokio::select! {
                            () = grace => return,
                            h = self.handle(&ledger, request) => h,
                        };
                        if let Err(e) = handled {
                            tracing::error!(error.message = %e, "sign-up failed: {e:#}");
                        }
                    }
                }
            }
        };
        (Queue(tx), task)
    }

    async fn purge(&self, ledger: &SharedLedger) {
        let now = self.app.clock.now_ms();
        match ledger.with(move |l| l.purge_expired_signups(now)).await {
            Ok(0) => {}
            Ok(n) => {
                for _ in 0..n {
                    self.metrics.subscription(SubscriptionEvent::expired);
                }
                tracing::info!(count = n, "deleted expired sign-up requests");
            }
            Err(e) => tracing::error!(error.message = %e, "cannot delete expired sign-ups: {e:#}"),
        }
    }
}

/// Notes a request unless its address is active: `None` for an active address.
fn note(
    app: &App,
    ledger: &mut Ledger,
    r: &Request,
    forget_hash: &str,
    now: Millis,
    ttl: Duration,
) -> anyhow::Result<Option<SignupRequest>> {
    let key = AddressKey::of(&r.address);
    if ledger.suppression(&key)?.is_none() && crate::audience::on_the_list(app, ledger, &key)? {
        return Ok(None);
    }
    let name = r.name.as_deref().map(one_line).filter(|n| !n.is_empty());
    let asking = Asking {
        address: &r.address,
        name: name.as_deref(),
        lang: Some(&r.lang),
        forget_hash,
    };
    ledger.request_signup(&asking, now, ttl, MIN_GAP).map(Some)
}
