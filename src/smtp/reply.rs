//! What came of a message: the server's [`Reply`] when it took it, else a [`SendFailure`] with the
//! [`Stage`] it happened at, classified from the step and what went wrong there.

use std::fmt;
use std::time::Duration;

use lettre::transport::smtp::response::Response;
use lettre::Address;

use crate::status;

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
pub(super) enum Step<'a> {
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
pub(super) enum Failed {
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
            // lettre ends a reply it could not read with a response error, with no variant
            // that tells a closed connection from a garbled reply (and its text is no API):
            // both mean no reply came, and the text says so without guessing which.
            None if e.is_response() => Failed::Transport(
                "the server closed the connection, or sent no reply that can be read".into(),
            ),
            None => Failed::Transport(e.to_string()),
        }
    }
}

pub(super) fn classify(server: &str, step: Step<'_>, failed: Failed) -> SendFailure {
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

pub(super) fn temporary(stage: Stage, text: String) -> SendFailure {
    SendFailure::Temporary {
        code: None,
        text,
        stage,
    }
}

pub(super) fn code_of(r: &Response) -> u16 {
    r.code().into()
}

pub(super) fn reply_text(r: &Response) -> String {
    r.message().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
