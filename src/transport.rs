//! The seam between the send engine and where mail goes: an SMTP relay or a local outbox folder.
//!
//! One enum picks the transport, so the engine is written once: it asks for a connection, sends
//! one message to one recipient, and gets a [`Reply`] or a classified [`SendFailure`].

use std::path::PathBuf;

use lettre::Address;
use sha2::{Digest, Sha256};

use crate::config::{Smtp, TransportKind};

pub use crate::smtp::{Reply, SendFailure, Stage};

/// Where messages go.
pub enum Transport {
    /// One `.eml` file per message in a folder.
    Outbox { dir: PathBuf },
    /// An SMTP relay.
    Smtp(Box<crate::smtp::SmtpClient>),
}

/// One open channel of a transport; each send worker owns one.
pub enum Connection {
    Outbox { dir: PathBuf },
    Smtp(Box<crate::smtp::SmtpConnection>),
}

impl Transport {
    /// The transport the config asks for.
    pub fn from_config(cfg: &Smtp) -> anyhow::Result<Transport> {
        Ok(match cfg.transport {
            TransportKind::Outbox => Transport::Outbox {
                dir: cfg.outbox_dir.clone(),
            },
            TransportKind::Smtp => Transport::Smtp(Box::new(crate::smtp::SmtpClient::new(cfg)?)),
        })
    }

    /// Where messages go, for messages to people ("the outbox data/outbox", "smtp 10.0.0.1:587").
    pub fn describe(&self) -> String {
        match self {
            Transport::Outbox { dir } => format!("the outbox {}", dir.display()),
            Transport::Smtp(c) => format!("smtp {}", c.server()),
        }
    }

    /// Opens a connection.
    pub async fn connect(&self) -> Result<Connection, SendFailure> {
        match self {
            Transport::Outbox { dir } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| SendFailure::Temporary {
                        code: None,
                        text: format!("cannot create the outbox {}: {e}", dir.display()),
                        stage: Stage::Connect,
                    })?;
                Ok(Connection::Outbox { dir: dir.clone() })
            }
            Transport::Smtp(c) => Ok(Connection::Smtp(Box::new(c.connect().await?))),
        }
    }
}

impl Connection {
    /// Sends one message to one recipient; `envid` is the delivery's DSN envelope id (SMTP
    /// only, when the server offers DSN).
    pub async fn send(
        &mut self,
        from: &Address,
        to: &Address,
        raw: &[u8],
        envid: Option<&str>,
    ) -> Result<Reply, SendFailure> {
        match self {
            Connection::Outbox { dir } => {
                let name = outbox_name(to, raw);
                let path = dir.join(&name);
                let tmp = dir.join(format!(".{name}.tmp"));
                let write = async {
                    tokio::fs::write(&tmp, raw).await?;
                    tokio::fs::rename(&tmp, &path).await
                };
                // Not the reader's fault either, but a full disk fails every reader alike, which
                // the engine's circuit breaker stops.
                write.await.map_err(|e| SendFailure::Temporary {
                    code: None,
                    text: format!("cannot write {}: {e}", path.display()),
                    stage: Stage::Message,
                })?;
                Ok(Reply {
                    code: 250,
                    text: format!("written to {}", path.display()),
                })
            }
            Connection::Smtp(c) => c.send(from, to, raw, envid).await,
        }
    }

    /// Asks the server whether the session is still open (SMTP NOOP); false when the connection
    /// must be replaced. The outbox is always open.
    pub async fn check(&mut self) -> bool {
        match self {
            Connection::Outbox { .. } => true,
            Connection::Smtp(c) => c.check().await,
        }
    }

    /// False once the connection must be replaced.
    pub fn is_usable(&self) -> bool {
        match self {
            Connection::Outbox { .. } => true,
            Connection::Smtp(c) => c.is_usable(),
        }
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        if let Connection::Smtp(c) = self {
            c.quit().await;
        }
    }
}

/// The outbox file name: the recipient and a hash of the message, so writing the same message
/// again replaces its file instead of adding one.
fn outbox_name(to: &Address, raw: &[u8]) -> String {
    let who: String = AsRef::<str>::as_ref(to)
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = crate::token::hex(&Sha256::digest(raw));
    format!("{who}-{}.eml", &hash[..12])
}
