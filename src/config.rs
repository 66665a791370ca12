//! The configuration file: typed, validated once at load, with secrets only from the environment.
//!
//! `parse` is pure (text in, `Config` out); `load` reads the file, resolves relative paths against
//! the config file's folder and reads the secrets named by `*_env` keys. Every error names the
//! file, the line and the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::error::Invalid;

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
    /// with the SMTP transport, settings that break real delivery (see [`delivery_warnings`]).
    /// Each is `file:line: what, and the fix`; filled by `parse` and `load`, for `brief check`
    /// and `brief send` to print and `brief run` to log (not a key of the file).
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
    /// The folder with `email.css` and `snippets.toml`; default: the copies built into brief.
    #[serde(default)]
    pub templates: Option<PathBuf>,
}

impl Newsletter {
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
    /// The line of the config file that sets `url` (for problems about this feed).
    #[serde(skip)]
    pub line: usize,
}

/// `[subscribers]`: the list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribers {
    /// The CSV file (`email,name`).
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

/// A secret string: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Parses config text. `path` is used only in error messages. Relative paths are left as they are.
pub fn parse(text: &str, path: &Path) -> anyhow::Result<Config> {
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| line_of(text, s.start))
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        anyhow::anyhow!("{}{line}: {}", path.display(), e.message().trim_end())
    })?;
    config.source = path.to_path_buf();
    config.smtp.sender_domain = config.newsletter.from.email.domain().to_string();
    for (i, f) in config.content.feeds.iter_mut().enumerate() {
        f.line = key_line(text, &["content", "feeds", &i.to_string(), "url"]);
    }
    validate(&config, text, path)?;
    config.warnings = delivery_warnings(&config, text);
    Ok(config)
}

fn validate(c: &Config, text: &str, path: &Path) -> anyhow::Result<()> {
    let at = |table: &str, key: &str| {
        format!(
            "{}:{}: `{table}.{key}`",
            path.display(),
            key_line(text, &[table, key])
        )
    };
    if c.delivery.concurrency == 0 || c.delivery.concurrency > 256 {
        bail!(
            "{} must be between 1 and 256",
            at("delivery", "concurrency")
        );
    }
    if c.delivery.max_attempts == 0 {
        bail!("{} must be at least 1", at("delivery", "max_attempts"));
    }
    if c.delivery.breaker == 1 {
        // One failure says nothing about the relay: it would stop the run at any bad address.
        bail!(
            "{} must be 0 (off) or at least 2",
            at("delivery", "breaker")
        );
    }
    if c.delivery.retry_min > c.delivery.retry_max {
        bail!(
            "{} must not be longer than `delivery.retry_max`",
            at("delivery", "retry_min")
        );
    }
    if c.content.feed_timeout.is_zero() {
        bail!("{} must be longer than 0s", at("content", "feed_timeout"));
    }
    if c.content.link_timeout.is_zero() {
        bail!("{} must be longer than 0s", at("content", "link_timeout"));
    }
    if let Some(d) = &c.dkim {
        if d.second_selector.is_some() != d.second_private_key_file.is_some() {
            bail!(
                "{}:{}: `dkim.second_selector` and `dkim.second_private_key_file` go together: \
                 set both for a second signature, or neither",
                path.display(),
                key_line(text, &["dkim"])
            );
        }
        if d.second_selector.as_deref() == Some(d.selector.as_str()) {
            bail!(
                "{}:{}: `dkim.second_selector` must differ from `dkim.selector`: each key is \
                 published under its own selector",
                path.display(),
                key_line(text, &["dkim", "second_selector"])
            );
        }
    }
    if c.server.confirm_ttl.is_zero() {
        bail!("{} must be longer than 0s", at("server", "confirm_ttl"));
    }
    if c.server.signups_per_hour == 0 {
        bail!(
            "{} must be at least 1 (sign-ups are refused only past it)",
            at("server", "signups_per_hour")
        );
    }
    if c.server.header_timeout.is_zero() {
        bail!("{} must be longer than 0s", at("server", "header_timeout"));
    }
    if c.server.request_timeout.is_zero() {
        bail!("{} must be longer than 0s", at("server", "request_timeout"));
    }
    if !(1..=MAX_CONNECTIONS_PER_CLIENT).contains(&c.server.connections_per_client) {
        bail!(
            "{} must be between 1 and {MAX_CONNECTIONS_PER_CLIENT} (one client must not hold \
             the connections every reader needs)",
            at("server", "connections_per_client")
        );
    }
    for f in &c.content.feeds {
        if f.url.scheme() != "https" && f.url.scheme() != "http" {
            bail!(
                "{}:{}: feed `{}` must be an http or https URL",
                path.display(),
                f.line,
                f.url
            );
        }
    }
    if c.content.feed_max_bytes == 0 {
        bail!("{} must be at least 1", at("content", "feed_max_bytes"));
    }
    if c.smtp.port == 0 {
        bail!(
            "{} must be between 1 and 65535: 587 for STARTTLS submission, 465 for implicit TLS, 25 for relay",
            at("smtp", "port")
        );
    }
    if c.smtp.password_env.is_some() && c.smtp.username.is_none() {
        bail!(
            "{} is set but `smtp.username` is not: AUTH needs both",
            at("smtp", "password_env")
        );
    }
    for (key, name) in [
        ("password_env", &c.smtp.password_env),
        ("secret_env", &c.server.secret_env),
        ("admin_token_env", &c.server.admin_token_env),
    ] {
        if let Some(name) = name {
            let table = if key == "password_env" {
                "smtp"
            } else {
                "server"
            };
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                bail!("{} is not an environment variable name", at(table, key));
            }
        }
    }
    if let Some(b) = &c.bounces {
        let key = |keys: &[&str]| format!("{}:{}", path.display(), key_line(text, keys));
        if b.address.email.user().contains('+') {
            bail!(
                "{}: `bounces.address` {} already holds a `+`: brief adds `+TAG` to it for each \
                 delivery; use the plain address",
                key(&["bounces", "address"]),
                b.address.email
            );
        }
        if b.soft_limit == 0 {
            bail!(
                "{}: `bounces.soft_limit` must be at least 1",
                key(&["bounces", "soft_limit"])
            );
        }
        if !BOUNCE_MAX_SIZE_RANGE.contains(&b.max_size) {
            bail!(
                "{}: `bounces.max_size` is {} bytes; it must be between {} and {} (1 MiB, the \
                 default, holds any real bounce)",
                key(&["bounces", "max_size"]),
                b.max_size,
                BOUNCE_MAX_SIZE_RANGE.start(),
                BOUNCE_MAX_SIZE_RANGE.end()
            );
        }
        let mut names = vec![(
            "bounces",
            "webhook_token_env",
            b.webhook_token_env.as_deref(),
        )];
        if let Some(imap) = &b.imap {
            if imap.tls == Tls::None && !crate::tls::is_loopback_host(&imap.host) {
                bail!(
                    "{}: `bounces.imap.tls = \"none\"` sends the mailbox password and every \
                     report in clear text to {}, which is not this machine: use `tls = \"tls\"` \
                     (port 993) or `\"starttls\"` (143); plain text is for a server on \
                     localhost only",
                    key(&["bounces", "imap", "tls"]),
                    imap.host
                );
            }
            names.push(("bounces.imap", "password_env", Some(&imap.password_env)));
            if imap.host.is_empty() || imap.port == 0 {
                bail!(
                    "{}: `bounces.imap` needs a host and a port (993 for TLS)",
                    key(&["bounces", "imap"])
                );
            }
            if imap.interval < Duration::from_secs(1) {
                bail!(
                    "{}: `bounces.imap.interval` must be at least 1s",
                    key(&["bounces", "imap", "interval"])
                );
            }
        }
        for (table, k, name) in names {
            if let Some(name) = name {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    let keys: Vec<&str> = table.split('.').chain([k]).collect();
                    bail!(
                        "{}: `{table}.{k}` is not an environment variable name",
                        key(&keys)
                    );
                }
            }
        }
    }
    if let Some(canary) = c.schedule.canary {
        if canary.is_zero() {
            bail!(
                "{} must be longer than 0s (leave it out for no canary window)",
                at("schedule", "canary")
            );
        }
        if c.server.staff.is_empty() {
            bail!(
                "{} needs `server.staff`: the canary copies go to the staff addresses",
                at("schedule", "canary")
            );
        }
    }
    let scheme = c.server.public_url.scheme();
    if scheme != "https" && scheme != "http" {
        bail!(
            "{} must be an http or https URL",
            at("server", "public_url")
        );
    }
    Ok(())
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The 1-based line where the key at `keys` is set in the TOML `text`, read from the parser's
/// spans: `["delivery", "concurrency"]`, or `["content", "feeds", "2", "url"]` (a number indexes
/// an array). When the key is absent, the line of the nearest table on the way that exists; 1
/// when there is none or the text does not parse.
pub fn key_line(text: &str, keys: &[&str]) -> usize {
    use toml::de::{DeTable, DeValue};
    let Ok(root) = DeTable::parse(text) else {
        return 1;
    };
    let root = DeValue::Table(root.into_inner());
    let mut value = &root;
    let mut line = 1;
    for key in keys {
        let next = match value {
            DeValue::Table(t) => t.get_key_value(*key).map(|(k, v)| (k.span().start, v)),
            DeValue::Array(a) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .map(|v| (v.span().start, v)),
            _ => None,
        };
        let Some((start, v)) = next else { break };
        line = line_of(text, start);
        value = v.get_ref();
    }
    line
}

/// Reads and parses the config file, resolves relative paths against its folder and reads the
/// secrets from the environment.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut config = parse(&text, path)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let resolve = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = normalize(&base.join(&*p));
        }
    };
    resolve(&mut config.content.dir);
    resolve(&mut config.subscribers.file);
    resolve(&mut config.delivery.database);
    resolve(&mut config.smtp.outbox_dir);
    if let Some(t) = &mut config.newsletter.templates {
        resolve(t);
    }
    if let Some(ca) = &mut config.smtp.ca_file {
        resolve(ca);
    }
    if let Some(d) = &mut config.dkim {
        resolve(&mut d.private_key_file);
        if let Some(second) = &mut d.second_private_key_file {
            resolve(second);
        }
    }
    config.smtp.password = read_secret(config.smtp.password_env.as_deref(), path)?;
    config.server.secret = read_secret(config.server.secret_env.as_deref(), path)?;
    config.server.admin_token = read_secret(config.server.admin_token_env.as_deref(), path)?;
    if let Some(b) = &mut config.bounces {
        b.webhook_token = read_secret(b.webhook_token_env.as_deref(), path)?;
        if let Some(imap) = &mut b.imap {
            imap.password = read_secret(Some(&imap.password_env), path)?;
            if let Some(ca) = &mut imap.ca_file {
                resolve(ca);
            }
        }
    }
    let delivery = std::mem::take(&mut config.warnings);
    config.warnings = unset_env(&config, &text);
    config.warnings.extend(delivery);
    Ok(config)
}

/// What a config that sends over SMTP gets wrong for real delivery, though it works: big
/// receivers (Gmail, Yahoo) want an https one-click unsubscribe URL readers can reach and DKIM
/// aligned with the From domain; `example.*` senders and AUTH over plain text are mistakes.
/// Nothing for the outbox transport.
pub fn delivery_warnings(c: &Config, text: &str) -> Vec<String> {
    if c.smtp.transport != TransportKind::Smtp {
        return Vec::new();
    }
    let at = |keys: &[&str]| format!("{}:{}", c.source.display(), key_line(text, keys));
    let mut w = Vec::new();
    let url = &c.server.public_url;
    let local = match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    };
    if url.scheme() != "https" || local {
        w.push(format!(
            "{}: `server.public_url` is {url}: the unsubscribe and \"View in browser\" links in \
             every message start with it, and Gmail and Yahoo want an https address readers can \
             reach; set it to the public https:// address of `brief run`",
            at(&["server", "public_url"])
        ));
    }
    if let Some(name) = c.smtp.helo_name.as_deref().map(str::trim) {
        let literal = name.parse::<std::net::IpAddr>().is_ok();
        if !literal && !name.trim_end_matches('.').contains('.') {
            w.push(format!(
                "{}: `smtp.helo_name` is \"{name}\", not a fully qualified name: strict relays \
                 refuse it (Postfix: \"504 5.5.2 need fully-qualified hostname\"); use the \
                 machine's full name, e.g. \"mail.{}\", or remove the key",
                at(&["smtp", "helo_name"]),
                c.smtp.sender_domain
            ));
        }
    }
    let from = c.newsletter.from.email.domain().to_ascii_lowercase();
    match &c.dkim {
        None => w.push(format!(
            "{}: no `[dkim]` table: unsigned bulk mail is refused or sent to spam by Gmail and \
             Yahoo; add `[dkim] domain, selector, private_key_file` (see the DKIM part of docs/operating.md)",
            c.source.display()
        )),
        Some(d) => {
            let dkim = d.domain.to_ascii_lowercase();
            let aligned = from == dkim
                || from.ends_with(&format!(".{dkim}"))
                || dkim.ends_with(&format!(".{from}"));
            if !aligned {
                w.push(format!(
                    "{}: `dkim.domain` {dkim} is not aligned with the From domain {from}: DMARC \
                     passes only when they share their domain; sign with {from} (or its parent)",
                    at(&["dkim", "domain"])
                ));
            }
        }
    }
    let example = |domain: &str| {
        ["example.org", "example.com", "example.net"]
            .iter()
            .any(|e| domain == *e || domain.ends_with(&format!(".{e}")))
    };
    for (key, mailbox) in [
        ("from", Some(&c.newsletter.from)),
        ("reply_to", c.newsletter.reply_to.as_ref()),
    ] {
        if let Some(m) = mailbox.filter(|m| example(&m.email.domain().to_ascii_lowercase())) {
            w.push(format!(
                "{}: `newsletter.{key}` is {}, an example domain that cannot receive mail or \
                 pass DKIM: use the center's own address",
                at(&["newsletter", key]),
                m.email
            ));
        }
    }
    if c.smtp.username.is_some() && c.smtp.tls == Tls::None {
        w.push(format!(
            "{}: `smtp.username` is set with `tls = \"none\"`: the password would cross the \
             network in clear text; set `tls = \"starttls\"` (port 587) or `\"tls\"` (465)",
            at(&["smtp", "tls"])
        ));
    }
    w
}

/// The warnings for `*_env` keys whose variable is not set (or empty) in this environment.
fn unset_env(c: &Config, text: &str) -> Vec<String> {
    let bounces = c.bounces.as_ref();
    let imap = bounces.and_then(|b| b.imap.as_ref());
    let imap_var = imap.map(|i| i.password_env.clone());
    [
        (
            "smtp",
            "password_env",
            &c.smtp.password_env,
            c.smtp.password.is_some(),
            "brief cannot log in to the SMTP relay",
        ),
        (
            "server",
            "secret_env",
            &c.server.secret_env,
            c.server.secret.is_some(),
            "unsubscribe links cannot be signed, so `brief send` and `brief run` stop",
        ),
        (
            "server",
            "admin_token_env",
            &c.server.admin_token_env,
            c.server.admin_token.is_some(),
            "the admin API (`POST /admin/test-send`) is off",
        ),
        (
            "bounces",
            "webhook_token_env",
            &bounces.and_then(|b| b.webhook_token_env.clone()),
            bounces.is_some_and(|b| b.webhook_token.is_some()),
            "the bounce webhook (`POST /webhooks/bounce`) is off",
        ),
        (
            "bounces.imap",
            "password_env",
            &imap_var,
            imap.is_some_and(|i| i.password.is_some()),
            "the daemon cannot read the bounce mailbox",
        ),
    ]
    .into_iter()
    .filter_map(|(table, key, var, set, effect)| {
        let var = var.as_ref().filter(|_| !set)?;
        let keys: Vec<&str> = table.split('.').chain([key]).collect();
        Some(format!(
            "{}:{}: `{table}.{key}` names the environment variable {var}, which is not set: \
             {effect}; set {var}, or remove the key",
            c.source.display(),
            key_line(text, &keys)
        ))
    })
    .collect()
}

/// Reads a secret from the environment variable the config names. A variable that is not set
/// leaves the secret unset: commands that need it (SMTP AUTH, the daemon's admin endpoint) say so
/// when they start, while `status` or `report` keep working without it.
fn read_secret(var: Option<&str>, path: &Path) -> anyhow::Result<Option<Secret>> {
    let Some(var) = var else { return Ok(None) };
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Some(Secret(v))),
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            tracing::debug!(
                "environment variable {var} (named by {}) is not set",
                path.display()
            );
            Ok(None)
        }
        Err(std::env::VarError::NotUnicode(_)) => bail!(
            "{}: environment variable {var} (named by the config) is not UTF-8",
            path.display()
        ),
    }
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Parses a duration like `"30s"`, `"5m"`, `"12h"`, `"1h 30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, Invalid> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        Invalid(format!(
            "invalid duration `{s}` ({e}): write it like \"30s\", \"5m\" or \"12h\""
        ))
    })
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn parse_mailbox(s: &str) -> Result<Mailbox, Invalid> {
    s.parse::<Mailbox>().map_err(|e| {
        Invalid(format!(
            "invalid mailbox `{s}` ({e}): write `Name <user@example.org>` or `user@example.org`"
        ))
    })
}

fn de_mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<Mailbox, D::Error> {
    let s = String::deserialize(d)?;
    parse_mailbox(&s).map_err(serde::de::Error::custom)
}

fn de_opt_mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mailbox>, D::Error> {
    let s = String::deserialize(d)?;
    parse_mailbox(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn de_mailboxes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Mailbox>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| parse_mailbox(s))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn de_date_format<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use chrono::format::{Item, StrftimeItems};
    let s = String::deserialize(d)?;
    if StrftimeItems::new(&s).any(|i| matches!(i, Item::Error)) {
        return Err(serde::de::Error::custom(format!(
            "invalid date format `{s}`: use chrono strftime fields like \"%m.%d.%y\" or \"%B %-d, %Y\""
        )));
    }
    Ok(s)
}

/// Parses a cron expression with a seconds field first; five fields get a hint. An expression
/// that can never fire (February 31, April 31, a year that is not in its range) is refused:
/// it would pass for a schedule and send nothing, ever.
pub fn parse_cron(s: &str) -> Result<cron::Schedule, Invalid> {
    let schedule = s.parse::<cron::Schedule>().map_err(|e| {
        let fields = s.split_whitespace().count();
        Invalid(if fields == 5 {
            format!(
                "invalid cron expression `{s}`: it has 5 fields, but brief's cron starts with a seconds field: try \"0 {s}\""
            )
        } else {
            format!(
                "invalid cron expression `{s}` ({e}): write 6 fields, seconds first, like \"0 0 9 23 * *\""
            )
        })
    })?;
    // cron walks a bounded range of years (to 2100), so a search from 1970 ends: no date in it
    // matches an impossible day such as the 31st of February. A fixed start keeps `parse` pure;
    // a schedule whose last fire is past (a year field) is the daemon's to report, not this.
    let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    if schedule.after(&epoch).next().is_none() {
        return Err(Invalid(format!(
            "`[schedule] cron` = \"{s}\" can never fire: no date matches it (a day the month \
             never has, such as February 31, or a year out of range); pick a day every chosen \
             month has, e.g. \"0 0 9 28 2 *\""
        )));
    }
    Ok(schedule)
}

fn de_opt_cron<'de, D: Deserializer<'de>>(d: D) -> Result<Option<cron::Schedule>, D::Error> {
    let s = String::deserialize(d)?;
    parse_cron(&s).map(Some).map_err(serde::de::Error::custom)
}

fn de_timezone<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<chrono_tz::Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "unknown time zone `{s}`: use an IANA name like \"America/Mexico_City\""
        ))
    })
}

fn de_base_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let s = String::deserialize(d)?;
    let mut url =
        Url::parse(&s).map_err(|e| serde::de::Error::custom(format!("invalid URL `{s}`: {e}")))?;
    if url.cannot_be_a_base() {
        return Err(serde::de::Error::custom(format!(
            "`{s}` cannot be a base URL"
        )));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// The smallest valid config, for unit tests across the crate.
#[cfg(test)]
pub(crate) const MINIMAL_FOR_TESTS: &str = r#"
[newsletter]
name = "Life"
kicker = "BRIEF"
organization = "Center"
intro = "Hello"
from = "Center <brief@example.org>"
postal_address = "1 Main St"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = MINIMAL_FOR_TESTS;

    #[test]
    fn minimal_config_gets_working_defaults() {
        let c = parse(MIN, Path::new("b.toml")).unwrap();
        assert_eq!(c.smtp.transport, TransportKind::Outbox);
        assert_eq!(c.delivery.concurrency, 4);
        assert_eq!(c.newsletter.list_id(), "brief.example.org");
        assert_eq!(c.server.public_url.as_str(), "http://localhost:8080/");
        assert_eq!(c.server.header_timeout, Duration::from_secs(10));
        assert_eq!(c.server.request_timeout, Duration::from_secs(30));
        assert_eq!(c.server.connections_per_client, 32);
        assert_eq!(c.content.link_timeout, Duration::from_secs(10));
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = format!("{MIN}\n[delivery]\nconcurency = 3\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert!(
            e.starts_with("b.toml:11: unknown field `concurency`"),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_and_five_field_cron_explain_themselves() {
        let text = format!("{MIN}\n[delivery]\nretry_min = \"soon\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert!(
            e.contains("b.toml:11") && e.contains("invalid duration `soon`"),
            "{e}"
        );
        let text = format!("{MIN}\n[schedule]\ncron = \"0 9 23 * *\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert!(e.contains("try \"0 0 9 23 * *\""), "{e}");
    }

    #[test]
    fn a_cron_that_can_never_fire_is_refused_naming_the_key() {
        for cron in ["0 0 9 31 2 *", "0 0 9 30 2 *", "0 0 9 31 4,6,9,11 *"] {
            let text = format!("{MIN}\n[schedule]\ncron = \"{cron}\"\n");
            let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
            assert!(
                e.contains("b.toml:11")
                    && e.contains("`[schedule] cron`")
                    && e.contains("never fire"),
                "{cron}: {e}"
            );
        }
        // Rare but possible: February 29, and the 31st of only the months that have one.
        for cron in ["0 0 9 29 2 *", "0 0 9 31 1-12 *"] {
            let text = format!("{MIN}\n[schedule]\ncron = \"{cron}\"\n");
            parse(&text, Path::new("b.toml")).unwrap_or_else(|e| panic!("{cron}: {e:#}"));
        }
    }

    #[test]
    fn semantic_errors_name_the_key_line() {
        let text = format!("{MIN}\n[delivery]\nconcurrency = 0\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `delivery.concurrency` must be between 1 and 256"
        );
    }

    #[test]
    fn smtp_settings_that_hurt_delivery_are_warnings_naming_their_line() {
        let risky = "[newsletter]\nname = \"Life\"\nkicker = \"BRIEF\"\norganization = \"Center\"\n\
            intro = \"Hello\"\nfrom = \"Center <brief@example.org>\"\npostal_address = \"1 Main St\"\n\
            [smtp]\ntransport = \"smtp\"\nhost = \"relay.center.mx\"\nusername = \"brief\"\n\
            [server]\npublic_url = \"http://localhost:8080/\"\n";
        let c = parse(risky, Path::new("b.toml")).unwrap();
        let w = c.warnings.join("\n");
        assert_eq!(c.warnings.len(), 4, "{w}");
        assert!(
            w.contains("b.toml:13: `server.public_url` is http://localhost:8080/"),
            "{w}"
        );
        assert!(w.contains("b.toml: no `[dkim]` table"), "{w}");
        assert!(
            w.contains("b.toml:6: `newsletter.from` is brief@example.org, an example domain"),
            "{w}"
        );
        assert!(
            w.contains("`smtp.username` is set with `tls = \"none\"`"),
            "{w}"
        );

        let good = "[newsletter]\nname = \"Life\"\nkicker = \"BRIEF\"\norganization = \"Center\"\n\
            intro = \"Hello\"\nfrom = \"Center <brief@news.center.mx>\"\npostal_address = \"1 Main St\"\n\
            [smtp]\ntransport = \"smtp\"\nhost = \"relay.center.mx\"\nport = 587\ntls = \"starttls\"\n\
            username = \"brief\"\n[server]\npublic_url = \"https://brief.center.mx/\"\n\
            [dkim]\ndomain = \"center.mx\"\nselector = \"s1\"\nprivate_key_file = \"k.pem\"\n";
        assert_eq!(
            parse(good, Path::new("b.toml")).unwrap().warnings,
            Vec::<String>::new()
        );
        let unaligned = good.replace("domain = \"center.mx\"", "domain = \"mailer.example.net\"");
        let w = parse(&unaligned, Path::new("b.toml")).unwrap().warnings;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("`dkim.domain` mailer.example.net is not aligned with the From domain news.center.mx"), "{w:?}");
        // The outbox sends nothing anywhere: nothing to warn about.
        assert!(parse(MIN, Path::new("b.toml")).unwrap().warnings.is_empty());
        // A bare EHLO name; a full one and an address literal are fine.
        let bare = good.replace("port = 587\n", "port = 587\nhelo_name = \"vm\"\n");
        let w = parse(&bare, Path::new("b.toml")).unwrap().warnings;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("b.toml:12: `smtp.helo_name` is \"vm\", not a fully qualified name"),
            "{w:?}"
        );
        for fine in ["mail.center.mx", "192.0.2.7"] {
            let text = good.replace(
                "port = 587\n",
                &format!("port = 587\nhelo_name = \"{fine}\"\n"),
            );
            assert!(
                parse(&text, Path::new("b.toml"))
                    .unwrap()
                    .warnings
                    .is_empty(),
                "{fine}"
            );
        }
    }

    #[test]
    fn a_zero_header_timeout_is_refused() {
        let text = format!("{MIN}\n[server]\nheader_timeout = \"0s\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `server.header_timeout` must be longer than 0s"
        );
    }

    #[test]
    fn request_timeout_and_connections_per_client_are_checked() {
        let text = format!("{MIN}\n[server]\nrequest_timeout = \"0s\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `server.request_timeout` must be longer than 0s"
        );
        for n in [0, MAX_CONNECTIONS_PER_CLIENT + 1] {
            let text = format!("{MIN}\n[server]\nconnections_per_client = {n}\n");
            let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
            assert!(
                e.starts_with(
                    "b.toml:11: `server.connections_per_client` must be between 1 and 256"
                ),
                "{e}"
            );
        }
        let text =
            format!("{MIN}\n[server]\nrequest_timeout = \"5s\"\nconnections_per_client = 4\n");
        let c = parse(&text, Path::new("b.toml")).unwrap();
        assert_eq!(c.server.request_timeout, Duration::from_secs(5));
        assert_eq!(c.server.connections_per_client, 4);
    }

    #[test]
    fn link_timeout_parses_and_zero_is_refused() {
        let text = format!("{MIN}\n[content]\nlink_timeout = \"1s\"\n");
        let c = parse(&text, Path::new("b.toml")).unwrap();
        assert_eq!(c.content.link_timeout, Duration::from_secs(1));
        let text = format!("{MIN}\n[content]\nlink_timeout = \"0s\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `content.link_timeout` must be longer than 0s"
        );
    }

    #[test]
    fn smtp_port_0_is_refused_at_its_line() {
        let text = format!("{MIN}\n[smtp]\ntransport = \"smtp\"\nport = 0\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:12: `smtp.port` must be between 1 and 65535: 587 for STARTTLS submission, 465 for implicit TLS, 25 for relay"
        );
    }

    #[test]
    fn an_env_key_naming_an_unset_variable_is_a_warning_naming_key_and_variable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.toml");
        let var = "BRIEF_UNIT_TEST_NEVER_SET_ADMIN_TOKEN";
        std::fs::write(
            &p,
            format!("{MIN}\n[server]\nadmin_token_env = \"{var}\"\n"),
        )
        .unwrap();
        let c = load(&p).unwrap();
        assert_eq!(
            c.warnings,
            [format!(
                "{}:11: `server.admin_token_env` names the environment variable {var}, which is \
                 not set: the admin API (`POST /admin/test-send`) is off; set {var}, or remove the key",
                p.display()
            )]
        );
    }

    #[test]
    fn bounces_take_a_plain_address_and_name_what_is_wrong() {
        let c = parse(
            &format!("{MIN}\n[bounces]\naddress = \"bounces@example.org\"\n"),
            Path::new("b.toml"),
        )
        .unwrap();
        let b = c.bounces.unwrap();
        assert_eq!(b.soft_limit, 3);
        assert!(b.imap.is_none() && b.webhook_token.is_none());
        let imap = parse(
            &format!(
                "{MIN}\n[bounces]\naddress = \"bounces@example.org\"\n[bounces.imap]\n\
                 host = \"imap.example.org\"\nusername = \"bounces\"\npassword_env = \"X\"\n"
            ),
            Path::new("b.toml"),
        )
        .unwrap();
        let i = imap.bounces.unwrap().imap.unwrap();
        assert_eq!((i.port, i.tls), (993, Tls::Tls));
        assert_eq!(
            (i.folder.as_str(), i.processed_folder.as_str()),
            ("INBOX", "brief-processed")
        );
        assert_eq!(i.interval, Duration::from_secs(300));
        for (extra, want) in [
            (
                "address = \"bounces+x@example.org\"",
                "b.toml:11: `bounces.address` bounces+x@example.org already holds a `+`",
            ),
            (
                "address = \"bounces@example.org\"\nsoft_limit = 0",
                "b.toml:12: `bounces.soft_limit` must be at least 1",
            ),
            (
                "address = \"bounces@example.org\"\nwebhook_token_env = \"A=B\"",
                "b.toml:12: `bounces.webhook_token_env` is not an environment variable name",
            ),
        ] {
            let e = parse(&format!("{MIN}\n[bounces]\n{extra}\n"), Path::new("b.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }

    #[test]
    fn imap_without_tls_is_for_this_machine_only() {
        let imap = |host: &str, tls: &str| {
            format!(
                "{MIN}\n[bounces]\naddress = \"bounces@example.org\"\n[bounces.imap]\n\
                 host = \"{host}\"\nport = 143\n{tls}username = \"b\"\npassword_env = \"X\"\n"
            )
        };
        for host in [
            "127.0.0.1",
            "localhost",
            "LocalHost",
            "::1",
            "[::1]",
            "127.0.0.9",
        ] {
            let c = parse(&imap(host, "tls = \"none\"\n"), Path::new("b.toml"));
            assert!(c.is_ok(), "{host}: {:?}", c.err());
        }
        for host in [
            "imap.example.org",
            "192.0.2.1",
            "10.0.0.1",
            "localhost.example.org",
        ] {
            let e = parse(&imap(host, "tls = \"none\"\n"), Path::new("b.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(
                    "b.toml:15: `bounces.imap.tls = \"none\"` sends the mailbox password"
                ),
                "{host}: {e}"
            );
            assert!(e.contains(host), "{e}");
            for tls in ["tls = \"starttls\"\n", "tls = \"tls\"\n", ""] {
                assert!(
                    parse(&imap(host, tls), Path::new("b.toml")).is_ok(),
                    "{host} {tls}"
                );
            }
        }
    }

    #[test]
    fn the_bounce_size_limit_defaults_to_1_mib_within_bounds() {
        let with = |extra: &str| {
            parse(
                &format!("{MIN}\n[bounces]\naddress = \"bounces@example.org\"\n{extra}"),
                Path::new("b.toml"),
            )
        };
        assert_eq!(with("").unwrap().bounces.unwrap().max_size, 1024 * 1024);
        assert_eq!(
            with("max_size = 2048\n").unwrap().bounces.unwrap().max_size,
            2048
        );
        for bad in ["max_size = 0", "max_size = 1023", "max_size = 16777217"] {
            let e = with(&format!("{bad}\n")).unwrap_err().to_string();
            assert!(e.starts_with("b.toml:12: `bounces.max_size` is "), "{e}");
        }
    }

    #[test]
    fn the_breaker_defaults_to_20_and_is_off_at_0_but_never_1() {
        let c = parse(MIN, Path::new("b.toml")).unwrap();
        assert_eq!(c.delivery.breaker, 20);
        let text = format!("{MIN}\n[delivery]\nbreaker = 0\n");
        assert_eq!(
            parse(&text, Path::new("b.toml")).unwrap().delivery.breaker,
            0
        );
        let text = format!("{MIN}\n[delivery]\nbreaker = 1\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `delivery.breaker` must be 0 (off) or at least 2"
        );
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
