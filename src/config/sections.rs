//! The sections of `brief.toml` as typed values: [`Config`] and one type per table, with the
//! defaults of the keys left out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;
use url::Url;

use crate::lang::{Lang, Languages};

use super::values::{
    de_base_url, de_date_format, de_duration, de_mailbox, de_mailboxes, de_opt_cron,
    de_opt_date_format, de_opt_duration, de_opt_mailbox, de_timezone, Secret,
};

/// The whole configuration (`config/brief.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The masthead and the sender.
    pub newsletter: Newsletter,
    /// Where the issues come from.
    #[serde(default)]
    pub content: Content,
    /// The subscriber list.
    #[serde(default)]
    pub subscribers: Subscribers,
    /// The ledger and the send engine.
    #[serde(default)]
    pub delivery: Delivery,
    /// Where mail goes.
    #[serde(default)]
    pub smtp: Smtp,
    /// The monthly send of the daemon.
    #[serde(default)]
    pub schedule: Schedule,
    /// The daemon's HTTP side and the links in every message.
    #[serde(default)]
    pub server: Server,
    /// Optional DKIM signing.
    #[serde(default)]
    pub dkim: Option<Dkim>,
    /// Optional bounce and complaint handling: a VERP envelope sender and the intakes.
    #[serde(default)]
    pub bounces: Option<Bounces>,
    /// Logging.
    #[serde(default)]
    pub log: Log,
    /// The config file this was loaded from (not a key of the file).
    #[serde(skip)]
    pub source: PathBuf,
    /// Settings that work but will hurt: a `*_env` key naming a variable that is not set, and,
    /// with the SMTP transport, settings that break real delivery (see
    /// [`delivery_warnings`](super::delivery_warnings)). Each is `file:line: what, and the fix`;
    /// filled by `parse` and `load`, for `brief check` and `brief send` to print and `brief run`
    /// to log (not a key of the file).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// `[newsletter]`: the masthead and the sender.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Newsletter {
    /// The newsletter's title line, e.g. "U.S. – Mexico Binational Institutional Life".
    pub name: String,
    /// The short word before the title, e.g. "BRIEF".
    pub kicker: String,
    /// Who publishes it; shown in the footer.
    pub organization: String,
    /// The standing intro paragraph; an issue's `issue.toml` may override it.
    pub intro: String,
    /// The From mailbox, e.g. `Center for Binational Institutions <brief@example.org>`.
    #[serde(deserialize_with = "de_mailbox")]
    pub from: Mailbox,
    /// Where replies go, if not to `from`.
    #[serde(default, deserialize_with = "de_opt_mailbox")]
    pub reply_to: Option<Mailbox>,
    /// The postal address shown in the footer (required by anti-spam law in the U.S. and Mexico).
    pub postal_address: String,
    /// How dates are printed (chrono `strftime`), e.g. `"%m.%d.%y"` for 07.23.21.
    #[serde(default = "default_date_format", deserialize_with = "de_date_format")]
    pub date_format: String,
    /// The List-Id header's identifier; default: the kicker, lowercased, at the sender's domain.
    #[serde(default)]
    pub list_id: Option<String>,
    /// An address for `mailto:` unsubscribe requests in List-Unsubscribe; default: none.
    #[serde(default, deserialize_with = "de_opt_mailbox")]
    pub unsubscribe_mailto: Option<Mailbox>,
    /// The folder with `email.css`, `console.css` and one message catalogue per language
    /// (`en.ftl`, `es.ftl`); default: the copies built into brief.
    #[serde(default)]
    pub templates: Option<PathBuf>,
    /// The languages readers may read in (BCP 47 tags), the default first; default `["en"]`.
    #[serde(default)]
    pub languages: Languages,
    /// The texts of each other language (`[newsletter.es]`), read from the config apart from
    /// the keys above (not a serde field; see `config::parse`).
    #[serde(skip)]
    pub texts: BTreeMap<Lang, NewsletterText>,
}

/// `[newsletter.LANG]`: the newsletter's own words in one language; a key left out is the
/// default language's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewsletterText {
    pub name: Option<String>,
    pub kicker: Option<String>,
    pub organization: Option<String>,
    pub intro: Option<String>,
    pub postal_address: Option<String>,
    #[serde(default, deserialize_with = "de_opt_date_format")]
    pub date_format: Option<String>,
}

impl Newsletter {
    /// The newsletter in `lang`: its `[newsletter.LANG]` texts over the default language's.
    pub fn localized(&self, lang: &Lang) -> Newsletter {
        let mut n = self.clone();
        if let Some(t) = self.texts.get(lang) {
            let over = |field: &mut String, v: &Option<String>| {
                if let Some(v) = v {
                    field.clone_from(v);
                }
            };
            over(&mut n.name, &t.name);
            over(&mut n.kicker, &t.kicker);
            over(&mut n.organization, &t.organization);
            over(&mut n.intro, &t.intro);
            over(&mut n.postal_address, &t.postal_address);
            over(&mut n.date_format, &t.date_format);
        }
        n
    }

    /// The List-Id identifier (without angle brackets).
    pub fn list_id(&self) -> String {
        match &self.list_id {
            Some(id) => id.clone(),
            None => {
                let word: String = self
                    .kicker
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .to_ascii_lowercase();
                let word = if word.is_empty() {
                    "newsletter".into()
                } else {
                    word
                };
                format!("{word}.{}", self.from.email.domain())
            }
        }
    }
}

fn default_date_format() -> String {
    "%m.%d.%y".into()
}

/// `[content]`: the content folder and remote feeds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// The folder with one sub-folder per issue (`content/2021-07/`).
    #[serde(default = "default_content_dir")]
    pub dir: PathBuf,
    /// Which feed items belong to an issue: `since-last-issue` (default: from the previous
    /// campaign's start, so no item falls between two issues) or `calendar-month`.
    #[serde(default)]
    pub window: FeedWindow,
    /// The total time one feed fetch may take.
    #[serde(default = "default_feed_timeout", deserialize_with = "de_duration")]
    pub feed_timeout: Duration,
    /// The largest feed body accepted, in bytes.
    #[serde(default = "default_feed_max_bytes")]
    pub feed_max_bytes: u64,
    /// The total time `brief check --links` gives one link: connection, redirects and answer.
    #[serde(default = "default_link_timeout", deserialize_with = "de_duration")]
    pub link_timeout: Duration,
    /// Remote feeds whose items join the month's issue.
    #[serde(default)]
    pub feeds: Vec<Feed>,
}

impl Default for Content {
    fn default() -> Self {
        Content {
            dir: default_content_dir(),
            window: FeedWindow::default(),
            feed_timeout: default_feed_timeout(),
            feed_max_bytes: default_feed_max_bytes(),
            link_timeout: default_link_timeout(),
            feeds: Vec::new(),
        }
    }
}

fn default_content_dir() -> PathBuf {
    "../content".into()
}
fn default_feed_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_link_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_feed_max_bytes() -> u64 {
    5 * 1024 * 1024
}

/// Which feed items belong to an issue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedWindow {
    /// Items dated in the issue's calendar month: items published after a month's send but
    /// before the month ends are never sent.
    CalendarMonth,
    /// Items dated from the day the previous campaign started up to this issue (or today): no
    /// gap between consecutive issues. The first issue takes its calendar month.
    #[default]
    SinceLastIssue,
}

/// `[[content.feeds]]`: one remote feed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    /// The feed's URL (JSON Feed 1.1, RSS 2.0 or Atom).
    pub url: Url,
    /// A name shown with the feed's entries, e.g. the partner's name.
    #[serde(default)]
    pub label: Option<String>,
    /// When true, a failing fetch leaves the feed out instead of stopping the send.
    #[serde(default)]
    pub optional: bool,
    /// The language of its items (one of `newsletter.languages`): they go into that language's
    /// edition only. Default: the feed's own (RSS `<language>`, Atom `xml:lang`, JSON Feed
    /// `language`); a feed with none, or one not configured, goes into every edition.
    #[serde(default)]
    pub lang: Option<Lang>,
    /// The line of the config file that sets `url` (for problems about this feed).
    #[serde(skip)]
    pub line: usize,
}

/// `[subscribers]`: the list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribers {
    /// The CSV file (`email,name,lang`; `name` and `lang` optional).
    #[serde(default = "default_subscribers_file")]
    pub file: PathBuf,
}

impl Default for Subscribers {
    fn default() -> Self {
        Subscribers {
            file: default_subscribers_file(),
        }
    }
}

fn default_subscribers_file() -> PathBuf {
    "subscribers.csv".into()
}

/// `[delivery]`: the ledger and the send engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// The SQLite ledger file; its folder is brief's data folder.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// SMTP connections used at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Messages per second over all connections; 0 means no limit.
    #[serde(default)]
    pub rate_per_second: u32,
    /// Attempts per delivery before a temporary failure becomes final.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first retry delay; each later one doubles, up to `retry_max`.
    #[serde(default = "default_retry_min", deserialize_with = "de_duration")]
    pub retry_min: Duration,
    /// The longest retry delay.
    #[serde(default = "default_retry_max", deserialize_with = "de_duration")]
    pub retry_max: Duration,
    /// What to do when the reply to the final dot is lost: `retry` (may send twice) or `skip`
    /// (may not send at all).
    #[serde(default)]
    pub ambiguous: Ambiguous,
    /// The circuit breaker: a run stops when this many distinct readers in a row get the same
    /// failure (same step, reply code and enhanced status, e.g. `451 4.3.0` at DATA), since that
    /// is the relay's fault, not theirs; their attempts are not counted. A `5.1.x` rejection of
    /// a recipient never counts. 0 turns the breaker off.
    #[serde(default = "default_breaker")]
    pub breaker: u32,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            database: default_database(),
            concurrency: default_concurrency(),
            rate_per_second: 0,
            max_attempts: default_max_attempts(),
            retry_min: default_retry_min(),
            retry_max: default_retry_max(),
            ambiguous: Ambiguous::default(),
            breaker: default_breaker(),
        }
    }
}

fn default_database() -> PathBuf {
    "../data/brief.db".into()
}
fn default_concurrency() -> u32 {
    4
}
fn default_max_attempts() -> u32 {
    5
}
fn default_breaker() -> u32 {
    20
}
fn default_retry_min() -> Duration {
    Duration::from_secs(60)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(3600)
}

/// What a lost reply after the final dot means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ambiguous {
    /// Send again: nobody is skipped, the reader may get two copies.
    #[default]
    Retry,
    /// Count it as sent: nobody gets two copies, the reader may get none.
    Skip,
}

/// `[smtp]`: where mail goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    /// `outbox` writes one `.eml` per message into `outbox_dir`; `smtp` talks to `host:port`.
    #[serde(default)]
    pub transport: TransportKind,
    /// The relay's host name.
    #[serde(default = "default_host")]
    pub host: String,
    /// The relay's port (587 for STARTTLS submission, 465 for implicit TLS, 25 for relay).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `none`, `starttls` (required: never falls back to plain text) or `tls` (implicit).
    #[serde(default)]
    pub tls: Tls,
    /// The SMTP AUTH user; AUTH is used only when set.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The folder for `transport = "outbox"`.
    #[serde(default = "default_outbox_dir")]
    pub outbox_dir: PathBuf,
    /// The name sent in EHLO; default: this machine's host name when it is fully qualified,
    /// else the From address's domain.
    #[serde(default)]
    pub helo_name: Option<String>,
    /// The timeout for each SMTP command (RFC 5321 4.5.3.2 allows minutes; we wait this long).
    #[serde(default = "default_smtp_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// A PEM file of extra trusted root certificates (for a private relay's CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Messages sent on one connection before brief closes it (QUIT) and opens another; many
    /// relays cap a session at about 100. 0: no limit.
    #[serde(default = "default_messages_per_connection")]
    pub max_messages_per_connection: u32,
    /// The SMTP password, read from `password_env` at load (not a key of the file).
    #[serde(skip)]
    pub password: Option<Secret>,
    /// The From address's domain, the EHLO name when `helo_name` is unset and the host's name
    /// is not fully qualified (filled at parse, not a key of the file).
    #[serde(skip)]
    pub sender_domain: String,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            transport: TransportKind::default(),
            host: default_host(),
            port: default_port(),
            tls: Tls::default(),
            username: None,
            password_env: None,
            outbox_dir: default_outbox_dir(),
            helo_name: None,
            timeout: default_smtp_timeout(),
            ca_file: None,
            max_messages_per_connection: default_messages_per_connection(),
            password: None,
            sender_domain: String::new(),
        }
    }
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    25
}
fn default_outbox_dir() -> PathBuf {
    "../data/outbox".into()
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Which transport carries messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// One `.eml` file per message in `outbox_dir`.
    #[default]
    Outbox,
    /// SMTP to `host:port`.
    Smtp,
}

fn default_messages_per_connection() -> u32 {
    100
}

/// Transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tls {
    /// Plain text (loopback relays only).
    #[default]
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// `[bounces]`: where bounces and complaints come back, and how brief takes them in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounces {
    /// The bounce mailbox: each campaign message's envelope sender (MAIL FROM) becomes
    /// `LOCAL+TAG@DOMAIN` of it, TAG a signed id of the delivery (VERP).
    #[serde(deserialize_with = "de_mailbox")]
    pub address: Mailbox,
    /// The environment variable holding the bearer token of `POST /webhooks/bounce`; unset:
    /// no webhook (404).
    #[serde(default)]
    pub webhook_token_env: Option<String>,
    /// How many soft bounces, in distinct campaigns, make an address `bounced`.
    #[serde(default = "default_soft_limit")]
    pub soft_limit: u32,
    /// The largest returned message brief reads, in bytes, by every way in: an IMAP message
    /// over it is left unread and flagged, `bounces import` refuses a file (or skips an mbox
    /// message) over it, the webhook answers 413. A bounce is a few kilobytes.
    #[serde(default = "default_bounce_max_size")]
    pub max_size: u64,
    /// The bounce mailbox over IMAP, polled by the daemon.
    #[serde(default)]
    pub imap: Option<Imap>,
    /// The webhook's token, read from `webhook_token_env` at load (not a key of the file).
    #[serde(skip)]
    pub webhook_token: Option<Secret>,
}

/// `[bounces] soft_limit` when not set (also what applies without `[bounces]`).
pub fn default_soft_limit() -> u32 {
    3
}

/// `[bounces] max_size` when not set (also what applies without `[bounces]`): 1 MiB.
pub fn default_bounce_max_size() -> u64 {
    1024 * 1024
}

/// The bounds of `[bounces] max_size`: the parser needs some 20 times a message's size, so
/// 16 MiB keeps one message's parse within a few hundred megabytes at worst.
pub const BOUNCE_MAX_SIZE_RANGE: std::ops::RangeInclusive<u64> = 1024..=16 * 1024 * 1024;

/// `[bounces.imap]`: the bounce mailbox the daemon polls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imap {
    /// The IMAP server's host name.
    pub host: String,
    /// Its port: 993 for implicit TLS, 143 for STARTTLS.
    #[serde(default = "default_imap_port")]
    pub port: u16,
    /// `tls` (implicit, the default), `starttls` (required), or `none` (loopback only).
    #[serde(default = "default_imap_tls")]
    pub tls: Tls,
    /// The mailbox's user name.
    pub username: String,
    /// The environment variable holding its password.
    pub password_env: String,
    /// The folder bounces arrive in.
    #[serde(default = "default_imap_folder")]
    pub folder: String,
    /// Where processed reports are moved (created when missing). Nothing is ever deleted.
    #[serde(default = "default_processed_folder")]
    pub processed_folder: String,
    /// How often the daemon looks.
    #[serde(default = "default_imap_interval", deserialize_with = "de_duration")]
    pub interval: Duration,
    /// A PEM file of extra trusted root certificates (for a private server's CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The password, read from `password_env` at load (not a key of the file).
    #[serde(skip)]
    pub password: Option<Secret>,
}

fn default_imap_port() -> u16 {
    993
}

fn default_imap_tls() -> Tls {
    Tls::Tls
}

fn default_imap_folder() -> String {
    "INBOX".into()
}

fn default_processed_folder() -> String {
    "brief-processed".into()
}

fn default_imap_interval() -> Duration {
    Duration::from_secs(300)
}

/// `[schedule]`: the daemon's monthly send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A cron expression with a seconds field first, e.g. `"0 0 9 23 * *"`; none: no scheduled send.
    #[serde(default, deserialize_with = "de_opt_cron")]
    pub cron: Option<cron::Schedule>,
    /// The IANA time zone the cron expression is read in.
    #[serde(default = "default_timezone", deserialize_with = "de_timezone")]
    pub timezone: chrono_tz::Tz,
    /// How late a fire missed while the daemon was down may still be made up.
    #[serde(default = "default_catch_up", deserialize_with = "de_duration")]
    pub catch_up: Duration,
    /// A canary window: the daemon's sends (the schedule's and the console's "Send now") go
    /// first to the `[server] staff` addresses, and to the readers only this long after,
    /// unless staff hold the campaign meanwhile. None: readers at once.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub canary: Option<Duration>,
    /// How long before each fire the daemon checks the issue (content, links, delivery
    /// settings) and mails the result to staff; `"0s"` turns it off.
    #[serde(default = "default_preflight", deserialize_with = "de_duration")]
    pub preflight: Duration,
    /// Whether staff get a summary mail when a campaign finishes, and another a day later.
    #[serde(default = "default_summary")]
    pub summary: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            cron: None,
            timezone: default_timezone(),
            catch_up: default_catch_up(),
            canary: None,
            preflight: default_preflight(),
            summary: default_summary(),
        }
    }
}

fn default_preflight() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_summary() -> bool {
    true
}

fn default_timezone() -> chrono_tz::Tz {
    chrono_tz::UTC
}
fn default_catch_up() -> Duration {
    Duration::from_secs(12 * 3600)
}

/// `[server]`: the daemon's HTTP side and the links in every message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// The address the daemon listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The public base URL of the daemon: unsubscribe and archive links start with it.
    #[serde(default = "default_public_url", deserialize_with = "de_base_url")]
    pub public_url: Url,
    /// The environment variable holding the key that signs unsubscribe tokens; when unset, a
    /// random key is made once in the data folder.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The environment variable holding the bearer token of `POST /admin/test-send`.
    #[serde(default)]
    pub admin_token_env: Option<String>,
    /// The staff addresses that `POST /admin/test-send` may send to.
    #[serde(default, deserialize_with = "de_mailboxes")]
    pub staff: Vec<Mailbox>,
    /// How long an HTTP client may take to send a request's header, and how long a keep-alive
    /// connection may wait idle for its next request, before the daemon closes it.
    #[serde(default = "default_header_timeout", deserialize_with = "de_duration")]
    pub header_timeout: Duration,
    /// How long an HTTP client may take to send a whole request, header and body, counted from
    /// when its connection began waiting for it; a body not in by then gets 408 and the close.
    #[serde(default = "default_request_timeout", deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// How many HTTP connections one client may hold at once (behind a trusted proxy: requests
    /// in progress per forwarded client); at most 256, half of what the daemon serves at once.
    #[serde(default = "default_connections_per_client")]
    pub connections_per_client: usize,
    /// How long a sign-up's confirmation link stays valid.
    #[serde(default = "default_confirm_ttl", deserialize_with = "de_duration")]
    pub confirm_ttl: Duration,
    /// How many sign-up requests (`POST /subscribe`) one client IP may make per hour.
    #[serde(default = "default_signups_per_hour")]
    pub signups_per_hour: u32,
    /// Reverse proxies in front of the daemon: only a request coming from one of these has its
    /// client IP taken from `X-Forwarded-For` (for the sign-up limit).
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The token-signing key, read from `secret_env` at load (not a key of the file).
    #[serde(skip)]
    pub secret: Option<Secret>,
    /// The admin bearer token, read from `admin_token_env` at load (not a key of the file).
    #[serde(skip)]
    pub admin_token: Option<Secret>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: default_listen(),
            public_url: default_public_url(),
            secret_env: None,
            admin_token_env: None,
            staff: Vec::new(),
            header_timeout: default_header_timeout(),
            request_timeout: default_request_timeout(),
            connections_per_client: default_connections_per_client(),
            confirm_ttl: default_confirm_ttl(),
            signups_per_hour: default_signups_per_hour(),
            trusted_proxies: Vec::new(),
            secret: None,
            admin_token: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("literal address")
}
fn default_public_url() -> Url {
    Url::parse("http://localhost:8080/").expect("literal url")
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
/// Half of `http::MAX_CONNECTIONS` at most, so that one client never holds them all.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 256;
fn default_connections_per_client() -> usize {
    32
}
fn default_confirm_ttl() -> Duration {
    Duration::from_secs(48 * 3600)
}
fn default_signups_per_hour() -> u32 {
    20
}

/// `[dkim]`: optional DKIM signing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dkim {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`); the public key is published at `SELECTOR._domainkey.DOMAIN`.
    pub selector: String,
    /// A PEM private key file: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
    pub private_key_file: PathBuf,
    /// A second key's selector, so every message carries two signatures (RFC 8463 recommends
    /// Ed25519 and RSA together: receivers that cannot verify one verify the other).
    #[serde(default)]
    pub second_selector: Option<String>,
    /// The second key's PEM file (with `second_selector`).
    #[serde(default)]
    pub second_private_key_file: Option<PathBuf>,
}

/// `[log]`: how brief logs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// `text` for people, `json` for log collectors.
    #[serde(default)]
    pub format: LogFormat,
}

/// The log format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
