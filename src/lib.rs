//! brief publishes a monthly email newsletter from reviewable files, with a per-recipient ledger.
//!
//! Data flows one way: config -> content -> render -> message -> deliver -> ledger. The binary
//! (`src/main.rs`) only calls [`cli::main`].
//!
//! # Layout
//! - [`address`] parses addresses at the edge and lowercases them once, into the key brief
//!   compares them by.
//! - [`config`] reads `brief.toml` into typed values, with secrets only from the environment.
//! - [`clock`] is the one place that reads the wall clock.
//! - [`error`] holds the errors callers branch on: typed problems and the usage error (exit 2).
//! - [`issue`] is the domain model of one edition: its id, entries and labelled sections.
//! - [`content`] reads an issue folder (Markdown with TOML front matter) and reports every problem.
//! - [`lang`] is a language tag and the configured languages: prefix matching, `Accept-Language`.
//! - [`templates`] loads the stylesheets and each language's words around the content.
//! - [`render`] turns an issue into the HTML and text parts, and the web version, without I/O.
//! - [`feed`] fetches remote feeds with hard limits and turns their new items into sanitized entries.
//! - [`links`] checks every link of an issue over HTTP (`brief check --links`), with hard limits.
//! - [`keyfile`] loads the token key once at start: from the environment, or a file made once.
//! - [`token`] signs and checks the HMAC tokens of unsubscribe, confirmation and sign-in links.
//! - [`message`] pre-encodes the MIME message once and splices in each reader's parts.
//! - [`dkim`] signs finished messages with DKIM (RSA or Ed25519, relaxed canonicalization).
//! - [`status`] parses RFC 3463 enhanced status codes (`5.1.1`) for SMTP replies and bounces.
//! - [`bounce`] classifies what comes back to the bounce address: bounces, complaints, the rest.
//! - [`audience`] is who gets an issue: the list as one stream, the roster, imports, forgetting.
//! - [`intake`] takes what comes back to the bounce address: attributed by a keyed tag, recorded.
//! - [`report`] is a campaign report's row: the columns of `brief report` and the console's CSV.
//! - [`subscribers`] streams the CSV subscriber list, reporting bad rows by line.
//! - [`sheet`] writes the CSV files brief makes, every cell safe from spreadsheet formulas.
//! - [`ledger`] is the SQLite ledger: campaigns, deliveries, suppressions (the only database code),
//!   a folder with one file per aggregate and the migrations in their own file.
//! - [`tls`] is the TLS client side SMTP and IMAP share: trusted roots, server names, loopback.
//! - [`smtp`] speaks SMTP to a relay: one connection per worker, outcomes classified.
//! - [`transport`] is the seam that picks SMTP or the local outbox folder.
//! - [`deliver`] is the send engine: workers, shared rate limit, retries, group commits.
//! - [`notices`] is the durable queue of notices (confirmations, sign-in links, canary copies, staff
//!   reports): tried at once, retried with backoff, each try in the ledger.
//! - [`canary`] mails a campaign to staff before its readers, and waits out its window or a hold.
//! - [`preflight`] checks an issue before its scheduled send (content, links, settings) for staff.
//! - [`timing`] is how long a campaign took and how fast, counted from its first reader tried.
//! - [`summary`] mails staff how a send went: when it finishes, and what came back a day later.
//! - [`schedule`] decides when the monthly send fires and which issue a fire belongs to.
//! - [`signup`] lets readers join: requests, the confirmation message and its queue.
//! - [`staff`] signs staff in with emailed one-time links and keeps their sessions.
//! - [`shutdown`] turns SIGTERM, SIGINT and SIGHUP into one graceful stop, and a second signal into a quit.
//! - [`metrics`] counts what the daemon does and renders it for Prometheus at `/metrics`.
//! - [`app`] puts config, templates, keys and ledger together for the commands and the daemon.
//! - [`campaign`] is a campaign's lifecycle, once for the CLI, the schedule and the console: what a
//!   send means in each state, the start, and the run (canary, window, readers, summary).
//! - [`imap`] reads the bounce mailbox over IMAP: fetches what is new, files away what was read.
//! - [`daemon`] is `brief run`: the schedule, resumed campaigns and a graceful stop.
//! - [`http`] is the daemon's HTTP side: health, metrics, archive, unsubscribe, staff pages.
//! - [`cli`] parses the command line and maps outcomes to exit codes.

#![forbid(unsafe_code)]

pub mod address;
pub mod app;
pub mod audience;
pub mod bounce;
pub mod campaign;
pub mod canary;
pub mod cli;
pub mod clock;
pub mod config;
pub mod content;
pub mod daemon;
pub mod deliver;
pub mod dkim;
pub mod error;
pub mod feed;
pub mod http;
pub mod imap;
pub mod intake;
pub mod issue;
pub mod keyfile;
pub mod lang;
pub mod ledger;
pub mod links;
pub mod message;
pub mod metrics;
pub mod notices;
pub mod preflight;
pub mod render;
pub mod report;
pub mod schedule;
pub mod sheet;
pub mod shutdown;
pub mod signup;
pub mod smtp;
pub mod staff;
pub mod status;
pub mod subscribers;
pub mod summary;
pub mod templates;
pub mod timing;
pub mod tls;
pub mod token;
pub mod transport;
