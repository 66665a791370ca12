//! One open SMTP session ([`SmtpConnection`]): a message per call of `send`, MAIL, RCPT and DATA
//! pipelined when the server offers it, each failure classified by the step it happened at.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Noop, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::Address;

use super::reply::{
    classify, code_of, reply_text, temporary, Failed, Reply, SendFailure, Stage, Step,
};
use super::wire::{wire_body, DataLines};

/// One open SMTP session. Send as many messages on it as you like while [`Self::is_usable`].
pub struct SmtpConnection {
    pub(super) conn: AsyncSmtpConnection,
    pub(super) server: Arc<str>,
    pub(super) timeout: Duration,
    /// Set after a timeout, an I/O error, a 421 or a reply out of sequence: the session's state
    /// is unknown, so it must not carry another message.
    pub(super) broken: bool,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go out in one write.
    pub(super) pipelining: bool,
    /// The server offers DSN (RFC 3461): MAIL FROM may carry `RET` and `ENVID`.
    pub(super) dsn: bool,
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
