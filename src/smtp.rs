//! SMTP delivery (placeholder until the delivery-engine work lands: `transport = "smtp"` is refused).

use crate::config::Smtp;
use crate::transport::{Reply, SendFailure};

/// An SMTP relay.
pub struct SmtpClient {
    addr: String,
}

/// One SMTP connection.
pub struct SmtpConnection;

impl SmtpClient {
    pub fn new(cfg: &Smtp) -> anyhow::Result<SmtpClient> {
        anyhow::bail!(
            "`smtp.transport = \"smtp\"` ({}:{}) is not available in this build yet: use \"outbox\"",
            cfg.host,
            cfg.port
        )
    }

    pub fn describe(&self) -> String {
        self.addr.clone()
    }

    pub async fn connect(&self) -> Result<SmtpConnection, SendFailure> {
        Err(SendFailure::Temporary {
            code: None,
            text: "smtp is not available".into(),
        })
    }
}

impl SmtpConnection {
    pub async fn send(
        &mut self,
        _from: &lettre::Address,
        _to: &lettre::Address,
        _raw: &[u8],
    ) -> Result<Reply, SendFailure> {
        Err(SendFailure::Temporary {
            code: None,
            text: "smtp is not available".into(),
        })
    }

    pub fn is_usable(&self) -> bool {
        false
    }

    pub async fn quit(self) {}
}
