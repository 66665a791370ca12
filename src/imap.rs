//! The bounce mailbox over IMAP: fetches the messages brief has not settled yet, and files each
//! one away once brief has read it.
//!
//! A poll is [`Mailbox::open`], [`Mailbox::list_new`] (UIDs and sizes, no bodies), then per
//! message [`Mailbox::fetch`] and [`Mailbox::settle`], then [`Mailbox::close`]. Only one body is
//! held at a time, and never more than the caller's size limit: the server is asked for at most
//! that many bytes, and a message announced larger is not read at all ([`Verdict::TooLarge`]).
//! Nothing here deletes a message: a processed one is moved to `processed_folder`, an ignored or
//! too large one stays where it is with the keyword [`IGNORED_KEYWORD`], which keeps it out of
//! every later fetch. Messages are read with `BODY.PEEK[]`, so a person who opens the same
//! mailbox still sees them as unread.
//!
//! async-imap carries the connection and parses the server's responses, but every command after
//! LOGIN is sent and answered here: its search, fetch, store and expunge helpers stop at the
//! tagged reply without looking at its status, so a `NO` (a full disk, a read-only folder) would
//! pass for an empty answer or a stored flag.
//!
//! Every network step is bounded by [`MailboxConfig::timeout`]. After a timeout or a lost
//! connection the [`Mailbox`] refuses further commands, since a late reply could otherwise be
//! read as the answer to the next one; open a new one.
//!
//! async-imap writes each command it sends, LOGIN and its password included, to the `log` crate
//! at trace level. This crate turns on `log`'s `max_level_debug` feature, which compiles every
//! `log::trace!` out of the build, so no logger or `RUST_LOG` setting can bring that line back.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{
    AttributeValue, Capability, MailboxDatum, Outcome, Response, ResponseCode, Status,
};
use async_imap::{Client, Session};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The folder brief reads bounces from when the configuration names none.
pub const DEFAULT_FOLDER: &str = "INBOX";

/// The folder processed messages are moved to when the configuration names none.
pub const DEFAULT_PROCESSED_FOLDER: &str = "brief-processed";

/// The IMAP keyword that marks a message brief has settled but not moved: such a message is never
/// fetched again.
pub const IGNORED_KEYWORD: &str = "brief-ignored";

/// The IMAP keyword that marks a message brief left unread because it is over the size limit
/// (along with [`IGNORED_KEYWORD`], which keeps it out of every later fetch).
pub const TOO_LARGE_KEYWORD: &str = "brief-too-large";

/// How to reach the bounce mailbox (brief's `[bounces.imap]` config; brief will convert its config
/// to this).
#[derive(Clone)]
pub struct MailboxConfig {
    /// The server's DNS name or IP address; the TLS certificate must match it.
    pub host: String,
    /// Usually 993 for [`ImapTls::Tls`] and 143 for the others.
    pub port: u16,
    /// How the connection is protected.
    pub tls: ImapTls,
    /// The IMAP user name.
    pub username: String,
    /// The IMAP password; never shown by `Debug` nor named in an error.
    pub password: String,
    /// The folder the bounces arrive in ([`DEFAULT_FOLDER`] by default).
    pub folder: String,
    /// Where processed messages go ([`DEFAULT_PROCESSED_FOLDER`] by default); created if
    /// missing.
    pub processed_folder: String,
    /// A PEM file of certificates to trust besides the Mozilla roots (webpki-roots), for a server
    /// whose certificate comes from a private CA.
    pub ca_file: Option<PathBuf>,
    /// The bound on each network step: connecting, the TLS handshake, and every command.
    pub timeout: Duration,
}

impl fmt::Debug for MailboxConfig {
    // Hand-written so that the password can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("folder", &self.folder)
            .field("processed_folder", &self.processed_folder)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How the connection to the IMAP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImapTls {
    /// TLS from the first byte (IMAPS, usually port 993).
    Tls,
    /// Plain text until STARTTLS (usually port 143); a server that refuses STARTTLS is an error,
    /// never a reason to go on in plain text.
    Starttls,
    /// No encryption at all, password included: for a server on this machine (tests, a local
    /// Dovecot) only; [`Mailbox::open`] refuses it for any other host.
    None,
}

/// What brief decided about one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// brief used the message: it is moved to `processed_folder`.
    Processed,
    /// brief has no use for the message: it stays, marked with [`IGNORED_KEYWORD`].
    Ignored,
    /// The message is over the size limit and was never read: it stays, unread, marked with
    /// [`IGNORED_KEYWORD`] and [`TOO_LARGE_KEYWORD`], for a person to look at.
    TooLarge,
}

/// A message waiting in the bounce folder, as [`Mailbox::list_new`] finds it: before its body
/// is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The message's UID in the bounce folder, what [`Mailbox::fetch`] and
    /// [`Mailbox::settle`] take.
    pub uid: u32,
    /// Its size as the server announces it (`RFC822.SIZE`), in bytes.
    pub size: u64,
}

/// What [`Mailbox::fetch`] read.
pub enum Body {
    /// The whole message as the server stores it (`BODY[]`), headers and body, CRLF line ends.
    Read(Vec<u8>),
    /// More than the limit: nothing of it is kept.
    TooLarge,
    /// No longer in the folder.
    Gone,
}

impl fmt::Debug for Body {
    // A whole message, byte by byte, would drown a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Read(raw) => write!(f, "Read({} bytes)", raw.len()),
            Body::TooLarge => f.write_str("TooLarge"),
            Body::Gone => f.write_str("Gone"),
        }
    }
}

/// The byte stream under an IMAP session: plain TCP, or TLS over it.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Transport for T {}

/// An open session on the bounce folder.
pub struct Mailbox {
    session: Session<Box<dyn Transport>>,
    /// `host:port`, as every error names it.
    server: String,
    folder: String,
    processed_folder: String,
    timeout: Duration,
    /// The server offers MOVE (RFC 6851).
    can_move: bool,
    /// The server offers UIDPLUS (RFC 4315), hence UID EXPUNGE of one message.
    uidplus: bool,
    /// Set after a timeout or a lost connection: a reply may still be on its way, and it would be
    /// taken for the answer to the next command.
    broken: bool,
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("server", &self.server)
            .field("folder", &self.folder)
            .field("processed_folder", &self.processed_folder)
            .field("move", &self.can_move)
            .field("uidplus", &self.uidplus)
            .field("broken", &self.broken)
            .finish()
    }
}

impl Mailbox {
    /// Connects, (STARTTLS if asked), logs in, makes sure `processed_folder` exists (CREATE if
    /// missing), SELECTs `folder`.
    ///
    /// Errors name host:port and the step ("cannot log in to imap.example.org:993 as bounces:
    /// ..."), never the password.
    pub async fn open(cfg: &MailboxConfig) -> anyhow::Result<Mailbox> {
        let host = cfg.host.trim();
        if host.is_empty() {
            bail!("the IMAP host is empty: name the server, e.g. \"imap.example.org\"");
        }
        let server = if host.contains(':') {
            format!("[{host}]:{}", cfg.port)
        } else {
            format!("{host}:{}", cfg.port)
        };
        if cfg.timeout.is_zero() {
            bail!("the IMAP timeout for {server} is zero: every step would time out");
        }
        let folder = mailbox_name(&cfg.folder)
            .with_context(|| format!("invalid bounce folder for {server}"))?;
        let processed_folder = mailbox_name(&cfg.processed_folder)
            .with_context(|| format!("invalid processed folder for {server}"))?;
        if same_mailbox(&cfg.folder, &cfg.processed_folder) {
            bail!(
                "the processed folder for {server} is the bounce folder `{}` itself: processed \
                 messages would be fetched again",
                cfg.folder
            );
        }
        let tls = match cfg.tls {
            ImapTls::None => {
                if !crate::tls::is_loopback_host(host) {
                    // LOGIN would send the password as is, and every report could be read or
                    // altered on the way. The config check refuses it too.
                    bail!(
                        "IMAP without TLS to {server}, which is not this machine: the password \
                         would cross the network in clear text; use TLS or STARTTLS"
                    );
                }
                None
            }
            ImapTls::Tls | ImapTls::Starttls => Some((
                TlsConnector::from(crate::tls::client_config(
                    cfg.ca_file.as_deref(),
                    "bounces.imap.ca_file",
                    &server,
                )?),
                crate::tls::server_name(host, &format!("IMAP host `{host}`"))?,
            )),
        };
        let t = cfg.timeout;

        let tcp = bounded(t, TcpStream::connect((host, cfg.port)))
            .await
            .map_err(|e| anyhow!("cannot connect to {server}: {e}"))?;
        // Each command is one small write that waits for its answer: Nagle would only add delay.
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Transport> = match (&tls, cfg.tls) {
            (Some((connector, name)), ImapTls::Tls) => Box::new(
                bounded(t, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|e| {
                        let hint = if matches!(&e, Step::Failed(e) if plain_text_answer(e)) {
                            "; the port seems to speak plain text first: use `tls = \"starttls\"` \
                             there, or the IMAPS port (usually 993)"
                        } else {
                            ""
                        };
                        anyhow!("TLS handshake with {server} failed: {e}{hint}")
                    })?,
            ),
            _ => Box::new(tcp),
        };

        let mut client = Client::new(stream);
        let greeting = bounded(t, async {
            match client.read_response().await? {
                Some(response) => Ok(greeting_refusal(response.parsed())),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )),
            }
        })
        .await
        .map_err(|e| {
            // An IMAPS port waits for the client's TLS hello and says nothing before it.
            let hint = if cfg.tls != ImapTls::Tls && matches!(e, Step::Timeout(_)) {
                "; if the port expects TLS from the first byte (usually 993), use `tls = \"tls\"`"
            } else {
                ""
            };
            anyhow!("no IMAP greeting from {server}: {e}{hint}")
        })?;
        if let Some(refusal) = greeting {
            bail!("{server} refused the IMAP session: {refusal}");
        }

        if let (Some((connector, name)), ImapTls::Starttls) = (&tls, cfg.tls) {
            bounded(t, client.run_command_and_check_ok("STARTTLS", None))
                .await
                .map_err(|e| {
                    anyhow!(
                        "cannot start TLS with {server} (STARTTLS): {e}; brief never falls back \
                         to plain text"
                    )
                })?;
            // Whatever the server sent after its OK stays in the dropped buffer: bytes from before
            // the handshake must not be read as if they came over TLS.
            let plain = client.into_inner();
            let secured = bounded(t, connector.connect(name.clone(), plain))
                .await
                .map_err(|e| anyhow!("TLS handshake with {server} failed after STARTTLS: {e}"))?;
            client = Client::new(Box::new(secured) as Box<dyn Transport>);
        }

        let session = bounded(t, async {
            client
                .login(&cfg.username, &cfg.password)
                .await
                .map_err(|(e, _client)| e)
        })
        .await
        .map_err(|e| {
            let why = match e {
                Step::Failed(e) => imap_error(e),
                Step::Timeout(_) => e.to_string(),
            };
            anyhow!("cannot log in to {server} as {}: {why}", cfg.username)
        })?;

        let mut mailbox = Mailbox {
            session,
            server,
            folder: cfg.folder.clone(),
            processed_folder: cfg.processed_folder.clone(),
            timeout: t,
            can_move: false,
            uidplus: false,
            broken: false,
        };

        // Asked again after LOGIN: the list before it may be shorter, and one sent before
        // STARTTLS must not be trusted (RFC 3501 6.2.1).
        let mut capabilities = Vec::new();
        mailbox
            .run("cannot read the capabilities of", "CAPABILITY", |r| {
                if let Response::Capabilities(list) = r {
                    for c in list {
                        if let Capability::Atom(name) = c {
                            capabilities.push(name.to_ascii_uppercase());
                        }
                    }
                }
            })
            .await?;
        mailbox.can_move = capabilities.iter().any(|c| c == "MOVE");
        mailbox.uidplus = capabilities.iter().any(|c| c == "UIDPLUS");

        if !mailbox.exists(&processed_folder).await? {
            let created = mailbox
                .run(
                    &format!("cannot create folder `{}` on", cfg.processed_folder),
                    &format!("CREATE {processed_folder}"),
                    |_| {},
                )
                .await;
            // Another poller may have created it between LIST and CREATE.
            if let Err(e) = created {
                if !mailbox.exists(&processed_folder).await? {
                    return Err(e);
                }
            } else {
                // So that a person's mail client shows the folder too; brief does not need it.
                let _ = mailbox
                    .run(
                        "cannot subscribe to",
                        &format!("SUBSCRIBE {processed_folder}"),
                        |_| {},
                    )
                    .await;
            }
        }

        let mut read_only = false;
        let mut permanent = None;
        mailbox
            .run(
                &format!("cannot select folder `{}` on", cfg.folder),
                &format!("SELECT {folder}"),
                |r| match r {
                    Response::Data {
                        status: Status::Ok,
                        outcome:
                            Outcome {
                                code: Some(ResponseCode::PermanentFlags(flags)),
                                ..
                            },
                    } => {
                        permanent = Some(flags.iter().map(|f| f.to_string()).collect::<Vec<_>>());
                    }
                    Response::Done {
                        outcome:
                            Outcome {
                                code: Some(ResponseCode::ReadOnly),
                                ..
                            },
                        ..
                    } => read_only = true,
                    _ => {}
                },
            )
            .await?;
        if read_only {
            bail!(
                "folder `{}` on {} is read-only for {}: brief could neither move nor mark a \
                 message",
                cfg.folder,
                mailbox.server,
                cfg.username
            );
        }
        // Without PERMANENTFLAGS the server allows every flag (RFC 3501 7.1); an empty list says
        // too little to judge, and STORE checks each keyword anyway.
        if let Some(flags) = permanent.filter(|f| !f.is_empty()) {
            if !flags
                .iter()
                .any(|f| f == "\\*" || f.eq_ignore_ascii_case(IGNORED_KEYWORD))
            {
                bail!(
                    "folder `{}` on {} does not keep new keywords (PERMANENTFLAGS {}), so brief \
                     cannot mark a message `{IGNORED_KEYWORD}` and would fetch it again and again",
                    cfg.folder,
                    mailbox.server,
                    flags.join(" ")
                );
            }
        }
        tracing::debug!(
            server = %mailbox.server,
            folder = %mailbox.folder,
            tls = ?cfg.tls,
            r#move = mailbox.can_move,
            uidplus = mailbox.uidplus,
            "imap mailbox open"
        );
        Ok(mailbox)
    }

    /// Up to `max` messages not handled before, with their sizes, lowest UID first: UID SEARCH
    /// for messages without the keyword `brief-ignored` (UID SEARCH UNKEYWORD brief-ignored),
    /// then one UID FETCH of (UID FLAGS RFC822.SIZE) for them. No body is read: the caller
    /// reads each one it wants with [`Mailbox::fetch`], one at a time, and leaves one over its
    /// limit unread ([`Verdict::TooLarge`]).
    ///
    /// A message that disappears between the search and the fetch (another client moved it),
    /// or that another poller flagged meanwhile, is left out.
    pub async fn list_new(&mut self, max: usize) -> anyhow::Result<Vec<Waiting>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut uids = Vec::new();
        self.run(
            &format!("cannot search folder `{}` on", self.folder),
            &format!("UID SEARCH UNKEYWORD {IGNORED_KEYWORD}"),
            |r| {
                if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                    uids.extend_from_slice(found);
                }
            },
        )
        .await?;
        uids.sort_unstable();
        uids.dedup();
        uids.truncate(max);
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut found: Vec<Waiting> = Vec::with_capacity(uids.len());
        self.run(
            &format!("cannot read message sizes in `{}` on", self.folder),
            &format!("UID FETCH {set} (UID FLAGS RFC822.SIZE)"),
            |r| {
                let Response::Fetch(_, attrs) = r else {
                    return;
                };
                let (mut uid, mut size, mut settled) = (None, None, false);
                for a in attrs {
                    match a {
                        AttributeValue::Uid(u) => uid = Some(*u),
                        AttributeValue::Rfc822Size(n) => size = Some(u64::from(*n)),
                        AttributeValue::Flags(flags) => {
                            settled = flags
                                .iter()
                                .any(|f| f.eq_ignore_ascii_case(IGNORED_KEYWORD));
                        }
                        _ => {}
                    }
                }
                // Unsolicited FETCH responses about other messages may come along.
                if let (Some(uid), Some(size), false) = (uid, size, settled) {
                    if uids.binary_search(&uid).is_ok() && found.iter().all(|w| w.uid != uid) {
                        found.push(Waiting { uid, size });
                    }
                }
            },
        )
        .await?;
        found.sort_unstable_by_key(|w| w.uid);
        Ok(found)
    }

    /// Reads message `uid` whole, if it holds at most `max_size` bytes: with
    /// `BODY.PEEK[]<0.N>` (so `\Seen` is not set, and the server sends at most `max_size` + 1
    /// bytes whatever size it announced). [`Body::TooLarge`] past the limit,
    /// [`Body::Gone`] when the message is no longer there.
    pub async fn fetch(&mut self, uid: u32, max_size: u64) -> anyhow::Result<Body> {
        let mut raw = None;
        // One FETCH per message, so that a large one gets a whole timeout of its own.
        self.run(
            &format!("cannot fetch message UID {uid} from `{}` on", self.folder),
            &format!(
                "UID FETCH {uid} (UID BODY.PEEK[]<0.{}>)",
                max_size.saturating_add(1)
            ),
            |r| {
                // Unsolicited FETCH responses about other messages may come along.
                if let Some(attrs) = fetch_of(r, uid) {
                    for a in attrs {
                        if let AttributeValue::BodySection {
                            section: None,
                            data: Some(data),
                            ..
                        } = a
                        {
                            raw = Some(data.to_vec());
                        }
                    }
                }
            },
        )
        .await?;
        Ok(match raw {
            Some(raw) if raw.len() as u64 > max_size => Body::TooLarge,
            Some(raw) => Body::Read(raw),
            None => {
                tracing::debug!(
                    server = %self.server,
                    uid,
                    "imap message gone before it was fetched"
                );
                Body::Gone
            }
        })
    }

    /// Settles one message: Processed → UID MOVE to `processed_folder` (if the server lacks MOVE:
    /// UID COPY, then UID STORE +FLAGS (\Deleted) and UID EXPUNGE of that UID only if UIDPLUS; if
    /// neither, COPY and flag it `brief-ignored` so it is never fetched again — never a plain
    /// EXPUNGE that could remove other messages). Ignored → UID STORE +FLAGS (brief-ignored),
    /// nothing else; TooLarge → UID STORE +FLAGS (brief-ignored brief-too-large). Never deletes
    /// a message.
    ///
    /// Without MOVE, the copy is expunged only when the server's COPYUID reply confirms that this
    /// very UID was copied, and the original is flagged `brief-ignored` along with `\Deleted`, so
    /// that a failed expunge cannot have it fetched and copied a second time. A UID that is no
    /// longer in the folder settles as a success: there is nothing left to do.
    pub async fn settle(&mut self, uid: u32, verdict: Verdict) -> anyhow::Result<()> {
        let target = mailbox_name(&self.processed_folder)?;
        match verdict {
            Verdict::Ignored => self.mark(uid, &format!("({IGNORED_KEYWORD})")).await,
            Verdict::TooLarge => {
                self.mark(uid, &format!("({IGNORED_KEYWORD} {TOO_LARGE_KEYWORD})"))
                    .await
            }
            Verdict::Processed if self.can_move => {
                self.run(
                    &format!(
                        "cannot move message UID {uid} to `{}` on",
                        self.processed_folder
                    ),
                    &format!("UID MOVE {uid} {target}"),
                    |_| {},
                )
                .await
            }
            Verdict::Processed => {
                let mut confirmed = false;
                self.run(
                    &format!(
                        "cannot copy message UID {uid} to `{}` on",
                        self.processed_folder
                    ),
                    &format!("UID COPY {uid} {target}"),
                    |r| {
                        if let Response::Done {
                            outcome:
                                Outcome {
                                    code: Some(ResponseCode::CopyUid(_, from, _)),
                                    ..
                                },
                            ..
                        } = r
                        {
                            confirmed = from.iter().any(|m| match m {
                                UidSetMember::Uid(u) => *u == uid,
                                UidSetMember::UidRange(range) => range.contains(&uid),
                            });
                        }
                    },
                )
                .await?;
                if self.uidplus && confirmed {
                    self.mark(uid, &format!("(\\Deleted {IGNORED_KEYWORD})"))
                        .await?;
                    self.run(
                        &format!(
                            "cannot expunge message UID {uid} (copied to `{}`) on",
                            self.processed_folder
                        ),
                        &format!("UID EXPUNGE {uid}"),
                        |_| {},
                    )
                    .await
                } else {
                    self.mark(uid, &format!("({IGNORED_KEYWORD})")).await
                }
            }
        }
    }

    /// LOGOUT (errors ignored).
    pub async fn close(mut self) {
        if !self.broken {
            let _ = self.run("cannot log out of", "LOGOUT", |_| {}).await;
        }
    }

    /// Adds `flags` (a parenthesized list) to message `uid`, and checks that the server kept
    /// [`IGNORED_KEYWORD`]: one that accepts STORE but drops unknown keywords would otherwise
    /// hand the message out again on every poll.
    async fn mark(&mut self, uid: u32, flags: &str) -> anyhow::Result<()> {
        let mut kept = None;
        self.run(
            &format!(
                "cannot flag message UID {uid} in `{}` {flags} on",
                self.folder
            ),
            &format!("UID STORE {uid} +FLAGS {flags}"),
            |r| {
                if let Some(attrs) = fetch_of(r, uid) {
                    for a in attrs {
                        if let AttributeValue::Flags(list) = a {
                            kept =
                                Some(list.iter().any(|f| f.eq_ignore_ascii_case(IGNORED_KEYWORD)));
                        }
                    }
                }
            },
        )
        .await?;
        if kept == Some(false) {
            bail!(
                "{} accepted the keyword `{IGNORED_KEYWORD}` for message UID {uid} in `{}` but \
                 did not keep it",
                self.server,
                self.folder
            );
        }
        Ok(())
    }

    /// Sends one command and reads up to its tagged reply, all within the timeout, handing every
    /// other response (and the tagged OK) to `seen`. A `NO` or `BAD` is an error that starts with
    /// `failed` and the server's name ("cannot select folder `X` on" + " host:port: ...").
    async fn run(
        &mut self,
        failed: &str,
        command: &str,
        mut seen: impl FnMut(&Response<'_>) + Send,
    ) -> anyhow::Result<()> {
        let server = &self.server;
        if self.broken {
            bail!(
                "{failed} {server}: the connection broke earlier in this session; open the \
                 mailbox again"
            );
        }
        let session = &mut self.session;
        let exchange = async {
            let tag = session
                .run_command(command)
                .await
                .map_err(|e| Ended::Lost(imap_error(e)))?;
            let mut farewell = None;
            loop {
                let Some(response) = session.read_response().await? else {
                    return Err(match farewell.take() {
                        Some(text) => Ended::Lost(format!("the server said BYE: {text}")),
                        None => Ended::Lost("the server closed the connection".to_string()),
                    });
                };
                match response.parsed() {
                    Response::Done {
                        tag: t,
                        status,
                        outcome,
                    } if *t == tag => {
                        if *status == Status::Ok {
                            seen(response.parsed());
                            return Ok(());
                        }
                        return Err(Ended::Refused(said(status, outcome)));
                    }
                    // The reply to LOGOUT starts with BYE too; only the tagged reply counts.
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => farewell = Some(outcome.information.as_deref().unwrap_or("").to_string()),
                    other => seen(other),
                }
            }
        };
        let outcome = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Ended::Lost(format!("no answer within {:?}", self.timeout))),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(Ended::Refused(text)) => Err(anyhow!("{failed} {server}: the server said {text}")),
            Err(Ended::Lost(text)) => {
                self.broken = true;
                Err(anyhow!("{failed} {}: {text}", self.server))
            }
        }
    }

    /// Whether a mailbox of exactly that (quoted) name exists.
    async fn exists(&mut self, quoted: &str) -> anyhow::Result<bool> {
        let wanted = unquote(quoted);
        let mut found = false;
        self.run(
            "cannot list the folders on",
            &format!("LIST \"\" {quoted}"),
            |r| {
                if let Response::MailboxData(MailboxDatum::List(list)) = r {
                    // The name is a LIST pattern too: `*` or `%` in it would match others.
                    found |= same_mailbox(&list.name, &wanted);
                }
            },
        )
        .await?;
        Ok(found)
    }
}

/// How a command ended other than with OK.
enum Ended {
    /// A tagged NO or BAD: the session is still in step.
    Refused(String),
    /// A timeout, a lost connection, unreadable data: the session is not.
    Lost(String),
}

impl From<std::io::Error> for Ended {
    fn from(e: std::io::Error) -> Ended {
        Ended::Lost(e.to_string())
    }
}

/// A tagged NO or BAD as a person reads it: "NO [TRYCREATE] Mailbox doesn't exist".
fn said(status: &Status, outcome: &Outcome<'_>) -> String {
    let status = match status {
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::Bye => "BYE",
        Status::PreAuth => "PREAUTH",
        Status::Ok => "OK",
    };
    let text = outcome.information.as_deref().unwrap_or("").trim();
    match &outcome.code {
        Some(code) => format!("{status} [{code:?}] {text}"),
        None => format!("{status} {text}"),
    }
}

/// An async-imap error as a person reads it.
///
/// async-imap 0.12 carries a NO or BAD to LOGIN only as the `Debug` text of the reply's outcome
/// (`Error::No("code: None, info: Some(\"...\")")`), so that text is unwrapped here to keep only
/// the server's words; anything else is shown whole. This is the one place brief reads that
/// text, and only to show it: nothing branches on it. `login_refusals_read_as_the_server_wrote_them`
/// pins the shape, and `tests/it/imap.rs` a real refusal.
fn imap_error(e: async_imap::error::Error) -> String {
    use async_imap::error::Error;
    let (status, detail) = match &e {
        Error::No(detail) => ("NO", detail),
        Error::Bad(detail) => ("BAD", detail),
        other => return other.to_string(),
    };
    let text = detail
        .strip_prefix("code: None, info: Some(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .map(|text| text.replace("\\\"", "\""))
        .unwrap_or_else(|| detail.clone());
    format!("the server said {status} {text}")
}

/// Why a greeting is no invitation to log in, if it is not.
fn greeting_refusal(greeting: &Response<'_>) -> Option<String> {
    match greeting {
        Response::Data {
            status: Status::Ok, ..
        } => None,
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Some(format!(
            "BYE {}",
            outcome.information.as_deref().unwrap_or("")
        )),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Some(
            "the session is already authenticated (PREAUTH), so brief cannot log in as the \
             configured user"
                .to_string(),
        ),
        other => Some(format!("unexpected greeting {other:?}")),
    }
}

/// The attributes of a FETCH response about message `uid`, if `response` is one.
fn fetch_of<'r, 'a>(response: &'r Response<'a>, uid: u32) -> Option<&'r [AttributeValue<'a>]> {
    match response {
        Response::Fetch(_, attrs)
            if attrs
                .iter()
                .any(|a| matches!(a, AttributeValue::Uid(u) if *u == uid)) =>
        {
            Some(attrs)
        }
        _ => None,
    }
}

/// Why one network step before LOGIN's answer failed: the step's own error, or no answer in time.
#[derive(Debug, thiserror::Error)]
enum Step<E> {
    #[error("{0}")]
    Failed(E),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Runs one network step under the timeout.
async fn bounded<T, E>(
    timeout: Duration,
    step: impl Future<Output = Result<T, E>>,
) -> Result<T, Step<E>> {
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Step::Failed(e)),
        Err(_) => Err(Step::Timeout(timeout)),
    }
}

/// Whether a TLS handshake failed because the server answered in plain text (a STARTTLS or
/// plain port): rustls finds no TLS record there (`InvalidContentType`), and tokio-rustls hands
/// its error over inside the `io::Error`.
fn plain_text_answer(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

/// A folder name as an IMAP quoted string.
///
/// Non-ASCII names are refused rather than encoded: IMAP wants them in modified UTF-7, and the
/// name as a mail client's folder list shows it would silently name another folder.
fn mailbox_name(name: &str) -> anyhow::Result<String> {
    if name.is_empty() {
        bail!("a folder name is empty");
    }
    if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        bail!(
            "folder `{}` has characters IMAP cannot carry as they are: use printable ASCII (for \
             other names, their modified UTF-7 form as the server lists it)",
            name.escape_debug()
        );
    }
    Ok(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The inverse of [`mailbox_name`].
fn unquote(quoted: &str) -> String {
    quoted[1..quoted.len() - 1]
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
}

/// Whether two folder names are the same folder: INBOX is case-insensitive, the rest are not.
fn same_mailbox(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let cfg = MailboxConfig {
            host: "imap.example.org".into(),
            port: 993,
            tls: ImapTls::Tls,
            username: "bounces".into(),
            password: "hunter2-secret".into(),
            folder: DEFAULT_FOLDER.into(),
            processed_folder: DEFAULT_PROCESSED_FOLDER.into(),
            ca_file: None,
            timeout: Duration::from_secs(30),
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("bounces"), "{shown}");
    }

    #[test]
    fn log_trace_lines_are_compiled_out() {
        // async-imap's trace line for LOGIN carries the password: see the module's docs.
        assert!(log::STATIC_MAX_LEVEL <= log::LevelFilter::Debug);
    }

    #[test]
    fn folder_names_are_quoted_and_checked() {
        assert_eq!(mailbox_name("INBOX").unwrap(), "\"INBOX\"");
        assert_eq!(mailbox_name(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert_eq!(unquote(&mailbox_name(r#"a"b\c"#).unwrap()), r#"a"b\c"#);
        assert!(mailbox_name("").is_err());
        assert!(mailbox_name("a\r\nb").is_err());
        assert!(mailbox_name("Rückläufer").is_err());
        assert!(same_mailbox("inbox", "INBOX"));
        assert!(!same_mailbox("Bounces", "bounces"));
    }

    #[test]
    fn a_plain_text_answer_to_a_tls_hello_is_recognised_by_its_type() {
        let plain = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert!(plain_text_answer(&plain));
        let other = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::HandshakePayloadTooLarge),
        );
        assert!(!plain_text_answer(&other));
        // The text alone no longer counts.
        let text = std::io::Error::other("received corrupt message of type InvalidContentType");
        assert!(!plain_text_answer(&text));
    }

    #[test]
    fn login_refusals_read_as_the_server_wrote_them() {
        let e = async_imap::error::Error::No(
            "code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")".into(),
        );
        assert_eq!(
            imap_error(e),
            "the server said NO [AUTHENTICATIONFAILED] Authentication failed."
        );
    }
}
