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
//!
//! A folder: this file is the client, which opens connections (TCP, TLS, EHLO, STARTTLS, AUTH);
//! `connection` is an open session and its sends, `reply` the outcomes and their classification,
//! and `wire` the bytes on the wire. The children never import this file, which re-exports what
//! callers name as `crate::smtp::X`.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Auth, Ehlo, Starttls};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;

use crate::config::{self, Tls};
use crate::tls;

mod connection;
mod reply;
mod wire;

pub use connection::SmtpConnection;
pub use reply::{Reply, SendFailure, Stage};

use reply::{classify, temporary, Failed, Step};
use wire::{Io, Wire};

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
