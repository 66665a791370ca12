//! One SMTP connection per send worker, and the classified outcome of every message sent on it.
//!
//! [`SmtpClient`] is built once from `[smtp]` (TLS trust, EHLO name, credentials); each worker
//! calls [`SmtpClient::connect`] and then [`SmtpConnection::send`] once per recipient.
//!
//! Why not lettre's `AsyncSmtpTransport`: it opens its own sockets without `TCP_NODELAY` (lettre
//! writes the final dot on its own, and Nagle plus delayed ACK then costs about 40 ms a message),
//! its pool bounds idle connections rather than concurrency, and its `send` hides which step
//! failed. Here the socket is ours, and the reply to each of MAIL, RCPT, DATA and the message is
//! read on its own (MAIL, RCPT and DATA share one write when the server offers PIPELINING, which
//! halves the round trips of a message), so each failure says whether the server can have
//! accepted the message:
//!
//! - a 4xx reply at any step, or a lost connection or timeout before the message was handed over,
//!   is [`SendFailure::Temporary`]: the message was certainly not accepted;
//! - a 5xx reply is [`SendFailure::Permanent`];
//! - a lost connection or timeout while the message is written or its reply awaited is
//!   [`SendFailure::Ambiguous`]. lettre reports a failed write of the message and a lost reply to
//!   the final dot as the same kind of error, so both count as ambiguous: the server may have
//!   accepted the message, and the `[delivery] ambiguous` policy decides.
//!
//! Every failure also says at which [`Stage`] it happened. One before RCPT TO (opening the
//! connection, MAIL FROM) cannot be about the recipient, so the send engine charges it to the
//! relay instead of the reader.
//!
//! Every network step, from the TCP connect to the reply to the final dot, is bounded by
//! `[smtp] timeout`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{bail, Context as _};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::commands::{Auth, Data, Ehlo, Mail, Noop, Rcpt, Rset, Starttls};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::Address;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::{self, Tls};
use crate::{status, tls};

/// The AUTH mechanisms brief offers, best first (LOGIN only for servers without PLAIN).
const MECHANISMS: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

/// Everything needed to open connections to the configured relay; built once, cheap to clone.
#[derive(Clone)]
pub struct SmtpClient {
    host: String,
    port: u16,
    /// `host:port`, as every error names it.
    server: Arc<str>,
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// `smtp.username` and `smtp.password_env`, for the message when the relay refuses them.
    login: (String, String),
    timeout: Duration,
}

/// How the connection is protected, with the TLS settings it needs.
#[derive(Clone)]
enum Security {
    None,
    /// STARTTLS after the first EHLO; brief does the handshake itself (see [`Wire`]).
    Starttls {
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    },
    /// TLS from the first byte: we do the handshake before lettre sees the stream.
    Implicit {
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    },
}

impl fmt::Debug for SmtpClient {
    // Hand-written so that the credentials can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match self.security {
            Security::None => "none",
            Security::Starttls { .. } => "starttls",
            Security::Implicit { .. } => "tls",
        };
        f.debug_struct("SmtpClient")
            .field("server", &self.server)
            .field("tls", &tls)
            .field("hello", &self.hello)
            .field("auth", &self.credentials.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpClient {
    /// Checks `[smtp]` and prepares TLS: the Mozilla roots (webpki-roots), the system's roots and
    /// the certificates of `ca_file`.
    ///
    /// Fails when `ca_file` cannot be read or holds no usable certificate, when the host cannot
    /// be a TLS server name, when `helo_name` is not a single word, or when `username` is set
    /// without a password.
    pub fn new(cfg: &config::Smtp) -> anyhow::Result<SmtpClient> {
        let host = cfg.host.trim().to_string();
        if host.is_empty() {
            bail!("`smtp.host` is empty: name the relay, e.g. \"smtp.example.org\"");
        }
        let server: Arc<str> = if host.contains(':') {
            format!("[{host}]:{}", cfg.port).into()
        } else {
            format!("{host}:{}", cfg.port).into()
        };
        if cfg.timeout.is_zero() {
            bail!("`smtp.timeout` for {server} is zero: every SMTP step would time out");
        }
        let hello = match &cfg.helo_name {
            None => default_hello(ClientId::default(), &cfg.sender_domain),
            Some(name) => hello_name(name)
                .with_context(|| format!("invalid `smtp.helo_name` for {server}"))?,
        };
        let credentials = match (&cfg.username, &cfg.password) {
            (None, _) => None,
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            )),
            (Some(_), None) => bail!(
                "`smtp.username` is set for {server} but there is no password: set the \
                 environment variable named by `smtp.password_env`{}",
                cfg.password_env
                    .as_deref()
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default()
            ),
        };
        if credentials.is_some() && cfg.tls == Tls::None && !tls::is_loopback_host(&host) {
            // Allowed, since the operator chose it, but the password crosses the network in
            // the clear (AUTH PLAIN is only base64).
            tracing::warn!(
                server = %server,
                "smtp.tls = \"none\" with AUTH: the password is sent unencrypted"
            );
        }
        let security = match cfg.tls {
            Tls::None => Security::None,
            Tls::Starttls => {
                let (config, name) = tls_config(&host, &server, cfg.ca_file.as_deref())?;
                Security::Starttls { config, name }
            }
            Tls::Tls => {
                let (config, name) = tls_config(&host, &server, cfg.ca_file.as_deref())?;
                Security::Implicit { config, name }
            }
        };
        Ok(SmtpClient {
            host,
            port: cfg.port,
            server,
            security,
            hello,
            credentials,
            login: (
                cfg.username.clone().unwrap_or_default(),
                cfg.password_env.clone().unwrap_or_default(),
            ),
            timeout: cfg.timeout,
        })
    }

    /// The relay as `host:port`, for log lines.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Opens one ready-to-send connection: TCP with `TCP_NODELAY`, TLS from the first byte for
    /// `tls = "tls"`, the greeting and EHLO, STARTTLS for `tls = "starttls"` (a server that does
    /// not offer it is an error, never a fall back to plain text), then AUTH when a username is
    /// set.
    ///
    /// The failure is about the relay, not about any recipient: a caller should wait and
    /// reconnect rather than charge it to a delivery, even when it is `Permanent` (535 for bad
    /// credentials, 554 at the greeting).
    pub async fn connect(&self) -> Result<SmtpConnection, SendFailure> {
        let server = &self.server;
        let t = humantime::format_duration(self.timeout);
        let addrs = self.resolve().await?;
        let tcp = match tokio::time::timeout(self.timeout, TcpStream::connect(&addrs[..])).await {
            Err(_) => {
                return Err(temporary(
                    Stage::Connect,
                    format!("cannot connect to {server}: no answer within {t}"),
                ))
            }
            Ok(Err(e)) => {
                return Err(temporary(
                    Stage::Connect,
                    format!("cannot connect to {server}: {e}"),
                ))
            }
            Ok(Ok(tcp)) => tcp,
        };
        // lettre writes the final dot in a write of its own; with Nagle's algorithm on, that
        // write waits for the delayed ACK of the previous one, about 40 ms per message.
        tcp.set_nodelay(true).map_err(|e| {
            temporary(
                Stage::Connect,
                format!("cannot set TCP_NODELAY on the connection to {server}: {e}"),
            )
        })?;
        let io = match &self.security {
            Security::Implicit { config, name } => {
                Io::Tls(Box::new(self.handshake(config, name, tcp).await?))
            }
            Security::None | Security::Starttls { .. } => Io::Plain(tcp),
        };
        let encrypted = matches!(io, Io::Tls(_));
        let wire = Wire::new(io);

        // lettre reads the greeting and says EHLO in one call, so both share one timeout. The
        // wire keeps what it read, since lettre keeps only the EHLO keywords it acts on, and
        // PIPELINING is not one of them.
        let mut conn = self
            .setup(
                Step::Greeting,
                AsyncSmtpConnection::connect_with_transport(Box::new(wire.clone()), &self.hello),
            )
            .await?;
        let mut ehlo = Ehlo250::read(&wire.stop_recording());
        let mut encrypted = encrypted;

        if let Security::Starttls { config, name } = &self.security {
            if !conn.can_starttls() {
                // Be polite: the server did nothing wrong, we just will not talk in plain text.
                let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
                return Err(temporary(
                    Stage::Connect,
                    format!(
                    "{server} does not offer STARTTLS, which `smtp.tls = \"starttls\"` requires: \
                     brief never falls back to plain text (use `tls = \"tls\"` for implicit TLS, \
                     usually port 465)"
                ),
                ));
            }
            // STARTTLS, the handshake on the same socket, and the one EHLO RFC 3207 asks for
            // after it, whose reply (AUTH, PIPELINING) replaces the first one's.
            self.setup(Step::Starttls, conn.command(Starttls)).await?;
            let tcp = wire
                .take_plain()
                .map_err(|e| temporary(Stage::Connect, format!("STARTTLS with {server}: {e}")))?;
            let tls = self.handshake(config, name, tcp).await?;
            wire.put(Io::Tls(Box::new(tls)));
            encrypted = true;
            let reply = self
                .setup(Step::Greeting, conn.command(Ehlo::new(self.hello.clone())))
                .await?;
            ehlo = Ehlo250::from_lines(reply.message());
        }
        let (pipelining, dsn) = (ehlo.pipelining, ehlo.dsn);

        if let Some(credentials) = &self.credentials {
            let Some(mechanism) = MECHANISMS.iter().find(|m| ehlo.auth.contains(m)).copied() else {
                let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
                if !encrypted && conn.can_starttls() {
                    // A setting to change, not a relay to wait for: retrying cannot help.
                    return Err(SendFailure::Permanent {
                        code: 530,
                        text: format!(
                            "{server} offers AUTH only over TLS, and `smtp.tls` is \"none\": set \
                             [smtp] tls = \"starttls\" (the password never crosses in clear text)"
                        ),
                        stage: Stage::Connect,
                    });
                }
                return Err(temporary(
                    Stage::Connect,
                    format!(
                        "{server} offers no AUTH mechanism brief can use (PLAIN or LOGIN), but \
                     `smtp.username` is set"
                    ),
                ));
            };
            if let Err(f) = self
                .setup(Step::Auth, authenticate(&mut conn, mechanism, credentials))
                .await
            {
                // A clean end (QUIT), not a lost connection after AUTH: what fail2ban-style
                // tools count against a client is the latter.
                let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
                return Err(match f {
                    SendFailure::Permanent { code, text, stage } => {
                        let (user, var) = &self.login;
                        let reply = text
                            .split_once(&format!(" with {code} "))
                            .map_or(text.as_str(), |(_, r)| r);
                        let check = if var.is_empty() {
                            "check the password".to_string()
                        } else {
                            format!("check the password in password_env {var}")
                        };
                        SendFailure::Permanent {
                            code,
                            text: format!(
                                "{server} refused the credentials for smtp.username \"{user}\" \
                                 ({code} {reply}): {check}"
                            ),
                            stage,
                        }
                    }
                    other => other,
                });
            }
        }

        tracing::debug!(server = %server, encrypted, pipelining, dsn, "smtp connected");
        Ok(SmtpConnection {
            conn,
            server: Arc::clone(&self.server),
            timeout: self.timeout,
            broken: false,
            pipelining,
            dsn,
        })
    }

    /// The relay's addresses: an IP literal as it is, else the system resolver's answer (on the
    /// blocking pool, under the timeout).
    ///
    /// A name that does not exist is [`SendFailure::Permanent`] (with no reply code, since no
    /// server was reached): waiting cannot make it exist, so the run stops at once with a message
    /// naming `[smtp] host` instead of retrying for a quarter of an hour. The resolver's answer is
    /// told apart by its error kind (`EAI_NONAME`, `EAI_NODATA`), never by its text; any other
    /// failure (no resolver reachable, `EAI_AGAIN`) stays temporary. A name under `.invalid`
    /// (RFC 6761: it never resolves) is refused without asking anyone.
    async fn resolve(&self) -> Result<Vec<SocketAddr>, SendFailure> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let server = &self.server;
        let host = self.host.trim_end_matches('.').to_ascii_lowercase();
        let no_such_host = || SendFailure::Permanent {
            code: 0,
            text: format!(
                "cannot connect to {server}: the relay's name {host} does not exist (the DNS has \
                 no such host): check `[smtp] host` in the config"
            ),
            stage: Stage::Connect,
        };
        if host == "invalid" || host.ends_with(".invalid") {
            return Err(no_such_host());
        }
        let name = host.clone();
        let lookup = tokio::task::spawn_blocking(move || {
            dns_lookup::getaddrinfo(Some(&name), None, None).map(|found| {
                let mut ips: Vec<IpAddr> = Vec::new();
                for ip in found.filter_map(Result::ok).map(|a| a.sockaddr.ip()) {
                    if !ips.contains(&ip) {
                        ips.push(ip);
                    }
                }
                ips
            })
        });
        let t = humantime::format_duration(self.timeout);
        match tokio::time::timeout(self.timeout, lookup).await {
            Err(_) => Err(temporary(
                Stage::Connect,
                format!("cannot connect to {server}: its name did not resolve within {t}"),
            )),
            Ok(Err(e)) => Err(temporary(
                Stage::Connect,
                format!("cannot connect to {server}: the name lookup failed: {e}"),
            )),
            Ok(Ok(Err(e))) => match e.kind() {
                dns_lookup::LookupErrorKind::NoName | dns_lookup::LookupErrorKind::NoData => {
                    Err(no_such_host())
                }
                _ => Err(temporary(
                    Stage::Connect,
                    format!(
                        "cannot connect to {server}: cannot resolve {host}: {}",
                        io::Error::from(e)
                    ),
                )),
            },
            Ok(Ok(Ok(ips))) if ips.is_empty() => Err(no_such_host()),
            Ok(Ok(Ok(ips))) => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, self.port))
                .collect()),
        }
    }

    /// The TLS handshake on `tcp`, under the timeout.
    async fn handshake(
        &self,
        config: &Arc<ClientConfig>,
        name: &ServerName<'static>,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SendFailure> {
        let server = &self.server;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
        match tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp)).await {
            Err(_) => Err(temporary(
                Stage::Connect,
                format!(
                    "TLS handshake with {server} timed out after {}",
                    humantime::format_duration(self.timeout)
                ),
            )),
            Ok(Err(e)) => Err(temporary(
                Stage::Connect,
                format!("TLS handshake with {server} failed: {e}"),
            )),
            Ok(Ok(tls)) => Ok(tls),
        }
    }

    /// Runs one connection setup step under the timeout; any failure ends the connection, which
    /// the caller drops.
    async fn setup<T>(
        &self,
        step: Step<'_>,
        fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, SendFailure> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(&self.server, step, Failed::from(e))),
            Err(_) => Err(classify(&self.server, step, Failed::Timeout(self.timeout))),
        }
    }
}

/// The TLS client settings for `host`: the Mozilla roots, the system's and `ca_file`'s.
fn tls_config(
    host: &str,
    server: &str,
    ca_file: Option<&Path>,
) -> anyhow::Result<(Arc<ClientConfig>, ServerName<'static>)> {
    let name = tls::server_name(host, &format!("`smtp.host` `{host}`"))?;
    Ok((tls::client_config(ca_file, "smtp.ca_file", server)?, name))
}

/// The EHLO name when none is configured: `host` (the machine's name) when it is fully
/// qualified, else the From address's domain. A bare `vm` is what strict relays refuse
/// ("504 5.5.2 need fully-qualified hostname").
fn default_hello(host: ClientId, sender_domain: &str) -> ClientId {
    match &host {
        ClientId::Domain(d) if d.trim_end_matches('.').contains('.') => host,
        _ if !sender_domain.is_empty() => ClientId::Domain(sender_domain.to_string()),
        _ => host,
    }
}

/// Parses `helo_name` into what EHLO sends: a domain, or an address literal for an IP.
fn hello_name(name: &str) -> anyhow::Result<ClientId> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!(
            "`{}` must be one word, like \"mail.example.org\"",
            name.escape_debug()
        );
    }
    Ok(match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
        Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
        Err(_) => ClientId::Domain(name.to_string()),
    })
}

/// One open SMTP session. Send as many messages on it as you like while [`Self::is_usable`].
pub struct SmtpConnection {
    conn: AsyncSmtpConnection,
    server: Arc<str>,
    timeout: Duration,
    /// Set after a timeout, an I/O error, a 421 or a reply out of sequence: the session's state
    /// is unknown, so it must not carry another message.
    broken: bool,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go out in one write.
    pipelining: bool,
    /// The server offers DSN (RFC 3461): MAIL FROM may carry `RET` and `ENVID`.
    dsn: bool,
}

impl fmt::Debug for SmtpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConnection")
            .field("server", &self.server)
            .field("usable", &self.is_usable())
            .finish()
    }
}

impl SmtpConnection {
    /// Sends one message to one recipient: MAIL FROM `from`, RCPT TO `to`, DATA, then `raw` (a
    /// complete RFC 5322 message with CRLF line ends; a bare CR or LF is sent as CRLF, so that no
    /// server reads a line end that another would not).
    ///
    /// With an `envid` (a campaign delivery's VERP tag) and a server that offers DSN, MAIL FROM
    /// also carries `RET=HDRS` (a bounce returns the headers, not the whole issue) and
    /// `ENVID=envid` (a bounce names the delivery in `Original-Envelope-Id`).
    ///
    /// Returns the server's reply to the final dot. After a 4xx or 5xx reply to MAIL, RCPT or
    /// DATA the transaction is reset with RSET and the connection stays usable; after a timeout
    /// or a lost connection it is not (see [`Self::is_usable`]).
    pub async fn send(
        &mut self,
        from: &Address,
        to: &Address,
        raw: &[u8],
        envid: Option<&str>,
    ) -> Result<Reply, SendFailure> {
        if !self.is_usable() {
            return Err(temporary(
                Stage::Mail,
                format!(
                    "the connection to {} is no longer usable: connect again",
                    self.server
                ),
            ));
        }
        let body = wire_body(raw);
        let info = self.conn.server_info();
        let mut params = Vec::new();
        if !body.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(temporary(
                    Stage::Mail,
                    format!(
                    "the message to {to} has 8-bit bytes but {} does not offer 8BITMIME: encode \
                     it as quoted-printable or base64",
                    self.server
                ),
                ));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if !AsRef::<str>::as_ref(from).is_ascii() || !AsRef::<str>::as_ref(to).is_ascii() {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                // Charged to the reader only when it is the reader's address that needs SMTPUTF8.
                let stage = if AsRef::<str>::as_ref(from).is_ascii() {
                    Stage::Rcpt
                } else {
                    Stage::Mail
                };
                return Err(temporary(
                    stage,
                    format!(
                        "the envelope {from} -> {to} is not ASCII but {} does not offer SMTPUTF8",
                        self.server
                    ),
                ));
            }
            params.push(MailParameter::SmtpUtfEight);
        }

        if let Some(id) = envid.filter(|_| self.dsn) {
            params.push(MailParameter::Other {
                keyword: "RET".into(),
                value: Some("HDRS".into()),
            });
            params.push(MailParameter::Other {
                keyword: "ENVID".into(),
                value: Some(id.into()),
            });
        }
        let mail = Mail::new(Some(from.clone()), params);
        let rcpt = Rcpt::new(to.clone(), Vec::new());
        if self.pipelining {
            self.envelope(mail, rcpt, to).await?;
        } else {
            self.command(Step::Mail, mail, 2).await?;
            self.command(Step::Rcpt(to), rcpt, 2).await?;
            self.command(Step::Data, Data, 3).await?;
        }
        self.message(&body).await
    }

    /// False once the connection failed at the transport level or the server said 421; such a
    /// connection must be dropped and a new one opened.
    pub fn is_usable(&self) -> bool {
        !self.broken && !self.conn.has_broken()
    }

    /// Asks the server with NOOP whether the session is still open; false (and unusable from
    /// then on) when it is not.
    ///
    /// Servers close sessions idle for a few minutes (RFC 5321 4.5.3.2.7), and a send on such a
    /// connection fails as `Temporary` at MAIL FROM. Checking a connection that sat idle (behind
    /// the rate limit or a retry delay) costs a reconnect instead of a delivery attempt.
    pub async fn check(&mut self) -> bool {
        if !self.is_usable() {
            return false;
        }
        let ok = matches!(
            tokio::time::timeout(self.timeout, self.conn.command(Noop)).await,
            Ok(Ok(r)) if code_of(&r) / 100 == 2
        );
        if !ok {
            self.broken = true;
        }
        ok
    }

    /// Says QUIT (bounded by the timeout) and closes the connection; a broken one is just closed.
    pub async fn quit(mut self) {
        if self.is_usable() {
            let _ = tokio::time::timeout(self.timeout, self.conn.quit()).await;
        }
    }

    /// Sends one command of the transaction and checks its reply's class (`2` or `3`).
    async fn command(
        &mut self,
        step: Step<'_>,
        cmd: impl fmt::Display,
        class: u16,
    ) -> Result<Response, SendFailure> {
        let outcome = tokio::time::timeout(self.timeout, self.conn.command(cmd)).await;
        let failed = match outcome {
            Ok(Ok(r)) if code_of(&r) / 100 == class => return Ok(r),
            Ok(Ok(r)) => Failed::Unexpected(code_of(&r), reply_text(&r)),
            Ok(Err(e)) => Failed::from(e),
            Err(_) => Failed::Timeout(self.timeout),
        };
        let failure = classify(&self.server, step, failed.clone());
        match failed {
            // RFC 5321 3.3: a rejected MAIL, RCPT or DATA leaves a transaction half open; RSET
            // closes it so the next message starts clean on the same connection.
            Failed::Reply(code, _) if code != 421 => self.reset().await,
            _ => self.broken = true,
        }
        Err(failure)
    }

    /// Sends MAIL, RCPT and DATA in one write and reads their three replies in order (RFC 2920).
    /// The first refusal is the failure, as if the commands had gone one by one; then the
    /// transaction is reset with RSET. Anything but a plain refusal breaks the connection.
    async fn envelope(&mut self, mail: Mail, rcpt: Rcpt, to: &Address) -> Result<(), SendFailure> {
        let steps = [(Step::Mail, 2), (Step::Rcpt(to), 2), (Step::Data, 3)];
        let mut refused = None;
        let mut data_accepted = false;
        for (i, (step, class)) in steps.into_iter().enumerate() {
            let reply = if i == 0 {
                let batch = format!("{mail}{rcpt}{Data}");
                tokio::time::timeout(self.timeout, self.conn.command(batch)).await
            } else {
                tokio::time::timeout(self.timeout, self.conn.read_response()).await
            };
            let failed = match reply {
                Ok(Ok(r)) if code_of(&r) / 100 == class => {
                    data_accepted = class == 3;
                    continue;
                }
                Ok(Ok(r)) => Failed::Unexpected(code_of(&r), reply_text(&r)),
                Ok(Err(e)) => Failed::from(e),
                Err(_) => Failed::Timeout(self.timeout),
            };
            // Past a reply that is not a plain refusal the replies can no longer be matched to
            // the commands.
            let plain = matches!(failed, Failed::Reply(code, _) if code != 421);
            refused.get_or_insert((step, failed));
            if !plain {
                self.broken = true;
                break;
            }
        }
        let Some((step, failed)) = refused else {
            return Ok(());
        };
        if data_accepted {
            // A server that takes DATA after refusing MAIL or RCPT waits for a message that
            // brief will not send: drop the session rather than guess how to end it.
            self.broken = true;
        } else if !self.broken {
            self.reset().await;
        }
        Err(classify(&self.server, step, failed))
    }

    /// Writes the message and the final dot, and reads the reply that says whether it was taken.
    async fn message(&mut self, body: &[u8]) -> Result<Reply, SendFailure> {
        // lettre's `message` dot-stuffs one byte at a time and writes the final dot on its own,
        // which was a third of brief's CPU per message. A body that is text goes out through
        // `command` instead: stuffed with a substring search and ended by the dot, one write.
        let outcome = match std::str::from_utf8(body) {
            Ok(text) => {
                tokio::time::timeout(self.timeout, self.conn.command(DataLines(text))).await
            }
            Err(_) => tokio::time::timeout(self.timeout, self.conn.message(body)).await,
        };
        let failed = match outcome {
            Ok(Ok(r)) if code_of(&r) / 100 == 2 => {
                return Ok(Reply {
                    code: code_of(&r),
                    text: reply_text(&r),
                })
            }
            Ok(Ok(r)) => Failed::Unexpected(code_of(&r), reply_text(&r)),
            Ok(Err(e)) => Failed::from(e),
            Err(_) => Failed::Timeout(self.timeout),
        };
        // After the final dot the transaction is over whatever the reply, so no RSET; anything
        // but a plain 4xx/5xx leaves the session in an unknown state.
        if !matches!(failed, Failed::Reply(code, _) if code != 421) {
            self.broken = true;
        }
        Err(classify(&self.server, Step::Message, failed))
    }

    async fn reset(&mut self) {
        let ok = matches!(
            tokio::time::timeout(self.timeout, self.conn.command(Rset)).await,
            Ok(Ok(_))
        );
        if !ok {
            self.broken = true;
        }
    }
}

/// The server's reply to a message it accepted (usually `250 2.0.0 Ok: queued as ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code, e.g. 250.
    pub code: u16,
    /// The reply's text, lines joined with spaces.
    pub text: String,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why a message was not (certainly) delivered. The text names the server and the step, and
/// quotes the server's reply when there was one; it never holds the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    /// Not accepted, try again later: a 4xx reply at any step, or the connection lost or timed
    /// out before the message was handed over.
    #[error("{text}")]
    Temporary {
        /// The reply code when the server said 4xx; none for a lost connection or a timeout.
        code: Option<u16>,
        text: String,
        /// Where in the conversation it happened.
        stage: Stage,
    },
    /// Refused for good (5xx): never retry this message to this recipient. Code 0 when no
    /// server was reached, because the relay's name does not exist.
    #[error("{text}")]
    Permanent {
        code: u16,
        text: String,
        /// Where in the conversation it happened.
        stage: Stage,
    },
    /// The message was handed over but its reply never came (the connection was lost or timed
    /// out while writing it or waiting after the final dot): the server may have accepted it.
    #[error("{text}")]
    Ambiguous { text: String },
}

impl SendFailure {
    /// The SMTP reply code, when the server gave one.
    pub fn code(&self) -> Option<u16> {
        match self {
            SendFailure::Temporary { code, .. } => *code,
            SendFailure::Permanent { code, .. } => Some(*code),
            SendFailure::Ambiguous { .. } => None,
        }
    }

    /// Where in the conversation the failure happened; a lost reply is always at the final dot.
    pub fn stage(&self) -> Stage {
        match self {
            SendFailure::Temporary { stage, .. } | SendFailure::Permanent { stage, .. } => *stage,
            SendFailure::Ambiguous { .. } => Stage::Message,
        }
    }

    /// True when the failure came before RCPT TO named the recipient (opening the connection,
    /// MAIL FROM): whatever it says, it cannot be about the recipient, so it is the relay's.
    pub fn precedes_recipient(&self) -> bool {
        matches!(self.stage(), Stage::Connect | Stage::Mail)
    }

    /// The enhanced status code (RFC 3463) of the server's reply as (class, subject, detail),
    /// e.g. `(4, 3, 0)` for `451 4.3.0`; none without a reply or without such a code.
    pub fn status(&self) -> Option<(u16, u16, u16)> {
        enhanced_status(self.code()?, self.text())
    }

    /// The failure's text, as `Display` shows it.
    pub fn text(&self) -> &str {
        match self {
            SendFailure::Temporary { text, .. }
            | SendFailure::Permanent { text, .. }
            | SendFailure::Ambiguous { text } => text,
        }
    }

    /// True for a permanent failure whose enhanced status code (RFC 3463) is 5.1.x, "bad
    /// destination address" (e.g. `550 5.1.1 user unknown`): the address should be suppressed.
    ///
    /// 5.1.7 and 5.1.8 are about the sender's address, not the recipient's, so they do not count;
    /// neither does a reply without an enhanced status code.
    pub fn suppresses_address(&self) -> bool {
        let SendFailure::Permanent { code, text, .. } = self else {
            return false;
        };
        matches!(enhanced_status(*code, text), Some((5, 1, detail)) if detail != 7 && detail != 8)
    }
}

/// The enhanced status code (class, subject, detail) that follows the reply code in `text`, or
/// that `text` starts with, if its class agrees with `code` (see [`status::of_reply`]).
fn enhanced_status(code: u16, text: &str) -> Option<(u16, u16, u16)> {
    status::of_reply(code, text).map(status::Enhanced::triple)
}

/// Where in the conversation a failure happened, as far as it matters to whom the failure is
/// charged: before RCPT it cannot be about the recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Opening the connection: TCP, TLS, the greeting, EHLO, STARTTLS, AUTH.
    Connect,
    /// MAIL FROM, or a check made before it (8BITMIME, an unusable connection).
    Mail,
    /// RCPT TO (or a check about the recipient's address).
    Rcpt,
    /// DATA.
    Data,
    /// The message and the reply to its final dot.
    Message,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "the final dot",
        })
    }
}

/// The SMTP step a failure happened at, for the failure's text.
#[derive(Clone, Copy)]
enum Step<'a> {
    Greeting,
    Starttls,
    Auth,
    Mail,
    Rcpt(&'a Address),
    Data,
    Message,
}

impl Step<'_> {
    fn stage(self) -> Stage {
        match self {
            Step::Greeting | Step::Starttls | Step::Auth => Stage::Connect,
            Step::Mail => Stage::Mail,
            Step::Rcpt(_) => Stage::Rcpt,
            Step::Data => Stage::Data,
            Step::Message => Stage::Message,
        }
    }
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Greeting => f.write_str("the greeting or EHLO"),
            Step::Starttls => f.write_str("STARTTLS"),
            Step::Auth => f.write_str("AUTH"),
            Step::Mail => f.write_str("MAIL FROM"),
            Step::Rcpt(to) => write!(f, "RCPT TO <{to}>"),
            Step::Data => f.write_str("DATA"),
            Step::Message => f.write_str("the final dot"),
        }
    }
}

/// What went wrong at a step, before it is classified.
#[derive(Clone)]
enum Failed {
    /// A 4xx or 5xx reply.
    Reply(u16, String),
    /// A positive reply of the wrong class: the session is out of step.
    Unexpected(u16, String),
    /// An I/O, TLS or protocol error: no usable reply.
    Transport(String),
    Timeout(Duration),
}

impl From<lettre::transport::smtp::Error> for Failed {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        match e.status() {
            // lettre keeps the reply's text as the error's source.
            Some(code) => Failed::Reply(
                code.into(),
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            ),
            None if closed_by_server(&e) => {
                Failed::Transport("the server closed the connection".into())
            }
            None => Failed::Transport(e.to_string()),
        }
    }
}

/// Whether lettre gave up reading a reply because the server closed the connection.
///
/// lettre 0.11 has no variant for it: its reader ends with a response error whose source is the
/// text "incomplete response" (`AsyncSmtpConnection::read_response`). This is the one place brief
/// reads lettre's text; `tests/it/smtp.rs` `a_connection_lost_before_data_is_temporary` pins it
/// (a server that hangs up must read as "the server closed the connection").
fn closed_by_server(e: &lettre::transport::smtp::Error) -> bool {
    e.is_response()
        && std::error::Error::source(e).is_some_and(|s| s.to_string() == "incomplete response")
}

fn classify(server: &str, step: Step<'_>, failed: Failed) -> SendFailure {
    let handed_over = matches!(step, Step::Message);
    let stage = step.stage();
    match failed {
        Failed::Reply(code, text) => {
            let text = format!("{server} answered {step} with {code} {text}");
            if code >= 500 {
                SendFailure::Permanent { code, text, stage }
            } else {
                SendFailure::Temporary {
                    code: Some(code),
                    text,
                    stage,
                }
            }
        }
        Failed::Unexpected(code, text) if handed_over => SendFailure::Ambiguous {
            text: format!(
                "{server} answered {step} with an unexpected {code} {text}: the message may have \
                 been accepted"
            ),
        },
        Failed::Unexpected(code, text) => temporary(
            stage,
            format!("{server} answered {step} with an unexpected {code} {text}"),
        ),
        Failed::Transport(e) if handed_over => SendFailure::Ambiguous {
            text: format!(
                "connection to {server} lost after the message was handed over, before the reply \
                 to {step} ({e}): the message may have been accepted"
            ),
        },
        Failed::Transport(e) => {
            temporary(stage, format!("connection to {server} lost at {step}: {e}"))
        }
        Failed::Timeout(t) if handed_over => SendFailure::Ambiguous {
            text: format!(
                "no reply from {server} to {step} within {}: the message may have been accepted",
                humantime::format_duration(t)
            ),
        },
        Failed::Timeout(t) => temporary(
            stage,
            format!(
                "no reply from {server} to {step} within {}",
                humantime::format_duration(t)
            ),
        ),
    }
}

fn temporary(stage: Stage, text: String) -> SendFailure {
    SendFailure::Temporary {
        code: None,
        text,
        stage,
    }
}

fn code_of(r: &Response) -> u16 {
    r.code().into()
}

fn reply_text(r: &Response) -> String {
    r.message().collect::<Vec<_>>().join(" ")
}

/// The message as it goes on the wire: CRLF line ends only, and without the last line's CRLF,
/// which lettre's end-of-data marker (`\r\n.\r\n`) supplies; the server then stores exactly
/// the message we rendered.
fn wire_body(raw: &[u8]) -> Cow<'_, [u8]> {
    let mut body: Cow<'_, [u8]> = if has_bare_line_end(raw) {
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                    out.extend_from_slice(b"\r\n");
                    i += 1;
                }
                b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
                b => out.push(b),
            }
            i += 1;
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw)
    };
    if body.ends_with(b"\r\n") {
        match &mut body {
            Cow::Borrowed(b) => *b = &b[..b.len() - 2],
            Cow::Owned(v) => v.truncate(v.len() - 2),
        }
    }
    body
}

/// Whether `raw` has a CR that no LF follows or an LF that no CR precedes.
fn has_bare_line_end(raw: &[u8]) -> bool {
    if raw.first() == Some(&b'\n') || raw.last() == Some(&b'\r') {
        return true;
    }
    // Every byte against the next, without branches, so the compiler vectorizes the loop (a
    // message is tens of kilobytes): in a CRLF pair both tests hold, elsewhere neither does.
    let Some(next) = raw.get(1..) else {
        return false;
    };
    let mut odd = false;
    for (a, b) in raw.iter().zip(next) {
        odd |= (*a == b'\r') != (*b == b'\n');
    }
    odd
}

/// The DATA section as lettre's `command` writes it: `wire_body`'s text with every line that
/// starts with a dot given one more (RFC 5321 4.5.2), then CRLF, the final dot and CRLF.
struct DataLines<'a>(&'a str);

impl fmt::Display for DataLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut from = 0;
        for i in memchr::memmem::find_iter(text.as_bytes(), b"\n.") {
            // `\n` is ASCII, so `i + 1` is a character boundary.
            f.write_str(&text[from..=i])?;
            f.write_str(".")?;
            from = i + 1;
        }
        f.write_str(&text[from..])?;
        f.write_str("\r\n.\r\n")
    }
}

/// What the socket under lettre carries: plain TCP, or TLS over it.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Between STARTTLS and the end of its handshake.
    Gone,
}

/// The connection's byte stream as lettre sees it (lettre takes its own stream types or an
/// `AsyncTokioStream`). brief keeps a handle on it for two things lettre does not do: keep the
/// bytes of the greeting and the first EHLO reply (lettre drops the PIPELINING keyword), and
/// put TLS under the session after STARTTLS, so that the one EHLO that follows is brief's and
/// its reply can be read. Only one task uses a connection at a time; the lock is never
/// contended.
#[derive(Clone)]
struct Wire(Arc<std::sync::Mutex<WireState>>);

struct WireState {
    io: Io,
    /// What was read while recording (the greeting and the first EHLO reply).
    recorded: Option<Vec<u8>>,
}

impl Wire {
    fn new(io: Io) -> Wire {
        Wire(Arc::new(std::sync::Mutex::new(WireState {
            io,
            recorded: Some(Vec::new()),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WireState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What was read so far; nothing more is kept.
    fn stop_recording(&self) -> Vec<u8> {
        self.state().recorded.take().unwrap_or_default()
    }

    /// The plain socket, for the TLS handshake after STARTTLS.
    fn take_plain(&self) -> io::Result<TcpStream> {
        match std::mem::replace(&mut self.state().io, Io::Gone) {
            Io::Plain(tcp) => Ok(tcp),
            other => {
                self.state().io = other;
                Err(io::Error::other("the connection is not plain text"))
            }
        }
    }

    fn put(&self, io: Io) {
        self.state().io = io;
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wire")
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection is being upgraded",
    )
}

impl AsyncTokioStream for Wire {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.state().io {
            Io::Plain(tcp) => tcp.peer_addr(),
            Io::Tls(tls) => tls.get_ref().0.peer_addr(),
            Io::Gone => Err(gone()),
        }
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.state();
        let before = buf.filled().len();
        let poll = match &mut state.io {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Io::Gone => return Poll::Ready(Err(gone())),
        };
        if let Some(rec) = &mut state.recorded {
            rec.extend_from_slice(&buf.filled()[before..]);
        }
        poll
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.state().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Io::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.state().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Io::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.state().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// What an EHLO reply offers that brief acts on itself.
#[derive(Debug, Default, PartialEq, Eq)]
struct Ehlo250 {
    pipelining: bool,
    dsn: bool,
    auth: Vec<Mechanism>,
}

impl Ehlo250 {
    /// From the lines of a reply (without their `250-` prefixes).
    fn from_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Ehlo250 {
        let mut out = Ehlo250::default();
        for line in lines {
            let mut words = line.split_whitespace();
            match words.next() {
                Some(k) if k.eq_ignore_ascii_case("PIPELINING") => out.pipelining = true,
                Some(k) if k.eq_ignore_ascii_case("DSN") => out.dsn = true,
                Some(k) if k.eq_ignore_ascii_case("AUTH") => {
                    for m in words {
                        if m.eq_ignore_ascii_case("PLAIN") {
                            out.auth.push(Mechanism::Plain);
                        } else if m.eq_ignore_ascii_case("LOGIN") {
                            out.auth.push(Mechanism::Login);
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// From the raw bytes of the greeting and the EHLO reply that followed it: the `250` lines.
    fn read(raw: &[u8]) -> Ehlo250 {
        let text = String::from_utf8_lossy(raw);
        Ehlo250::from_lines(
            text.lines()
                .filter(|l| l.starts_with("250"))
                .map(|l| l.get(4..).unwrap_or("")),
        )
    }
}

/// AUTH with `mechanism` (one the server offered), answering its challenges (LOGIN asks for
/// the user and then the password; at most 10, so a confused server cannot hold the worker).
async fn authenticate(
    conn: &mut AsyncSmtpConnection,
    mechanism: Mechanism,
    credentials: &Credentials,
) -> Result<Response, lettre::transport::smtp::Error> {
    let mut reply = conn
        .command(Auth::new(mechanism, credentials.clone(), None)?)
        .await?;
    for _ in 0..10 {
        if !reply.has_code(334) {
            return Ok(reply);
        }
        reply = conn
            .command(Auth::new_from_response(
                mechanism,
                credentials.clone(),
                &reply,
            )?)
            .await?;
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_stuff_leading_dots_and_end_with_the_final_dot() {
        let d = |s: &str| DataLines(s).to_string();
        assert_eq!(d(".a\r\nb.\r\n..c"), "..a\r\nb.\r\n...c\r\n.\r\n");
        assert_eq!(d("plain"), "plain\r\n.\r\n");
        assert_eq!(d(""), "\r\n.\r\n");
        assert_eq!(d("é\r\n.é"), "é\r\n..é\r\n.\r\n");
    }

    #[test]
    fn wire_body_drops_the_last_crlf_and_fixes_bare_line_ends() {
        assert_eq!(&*wire_body(b"A: b\r\n\r\nhi\r\n"), b"A: b\r\n\r\nhi");
        assert!(matches!(wire_body(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert_eq!(&*wire_body(b"a\nb\rc\r\n.\n"), b"a\r\nb\r\nc\r\n.");
        assert_eq!(&*wire_body(b"no end"), b"no end");
        assert_eq!(&*wire_body(b""), b"");
        for (text, bare) in [
            (&b"\r"[..], true),
            (b"\n", true),
            (b"a\rb", true),
            (b"a\nb", true),
            (b"a\r\r\n", true),
            (b"a\r\n\n", true),
            (b"a\r\nb\r\n", false),
            (b"\r\n", false),
            (b"ab", false),
            (b"", false),
        ] {
            assert_eq!(has_bare_line_end(text), bare, "{:?}", text.escape_ascii());
        }
    }

    fn permanent(code: u16, text: &str) -> SendFailure {
        SendFailure::Permanent {
            code,
            text: text.into(),
            stage: Stage::Rcpt,
        }
    }

    #[test]
    fn only_permanent_bad_destination_codes_suppress() {
        let ours = "mx:25 answered RCPT TO <a@x.org> with 550 5.1.1 <a@x.org>: user unknown";
        assert!(permanent(550, ours).suppresses_address());
        assert!(permanent(550, "5.1.10 null MX").suppresses_address());
        assert!(!permanent(550, "5.7.1 relaying denied").suppresses_address());
        assert!(!permanent(553, "5.1.8 bad sender domain").suppresses_address());
        assert!(!permanent(550, "no such user").suppresses_address());
        // The class of the enhanced code must agree with the reply code.
        assert!(!permanent(550, "4.1.1 odd").suppresses_address());
        let temp = SendFailure::Temporary {
            code: Some(450),
            text: "4.1.1 try later".into(),
            stage: Stage::Rcpt,
        };
        assert!(!temp.suppresses_address());
        // An IPv4 host in our text is not an enhanced code.
        assert!(!permanent(550, "5.1.1.9:25 answered DATA with 550 5.7.1 no").suppresses_address());
    }

    #[test]
    fn the_default_ehlo_name_is_fully_qualified() {
        let host = |d: &str| ClientId::Domain(d.to_string());
        assert_eq!(
            default_hello(host("mail.example.org"), "example.org"),
            host("mail.example.org")
        );
        assert_eq!(
            default_hello(host("vm"), "news.example.org"),
            host("news.example.org")
        );
        assert_eq!(default_hello(host("vm"), ""), host("vm"));
    }

    #[test]
    fn helo_name_must_be_one_word() {
        assert!(matches!(
            hello_name("mail.example.org"),
            Ok(ClientId::Domain(_))
        ));
        assert!(matches!(hello_name("192.0.2.1"), Ok(ClientId::Ipv4(_))));
        let e = hello_name("a\r\nRCPT TO:<x@y>").unwrap_err().to_string();
        assert!(e.contains("must be one word"), "{e}");
    }
}
