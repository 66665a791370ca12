//! The seam between the send engine and where mail goes: an SMTP relay or a local outbox folder.
//!
//! One enum picks the transport, so the engine is written once: it asks for a connection, sends
//! one message to one recipient, and gets a [`Reply`] or a classified [`SendFailure`].

use std::path::{Path, PathBuf};

use anyhow::Context;
use lettre::Address;
use sha2::{Digest, Sha256};

use crate::address::AddressKey;
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

/// Deletes the messages to `key` from the outbox folder `dir` and its sub-folders (each issue,
/// `staff`, `signup`, `test`): the `.eml` files (and unfinished `.eml.tmp` ones) whose `To:`
/// names that address, by [`AddressKey`]. The file name is not trusted for this: it folds
/// characters away. Returns how many files were deleted; a missing folder holds none.
pub fn remove_outbox_files(dir: &Path, key: &AddressKey) -> anyhow::Result<u64> {
    let mut removed = 0;
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", folder.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", folder.display()))?;
            let path = entry.path();
            // The entry's own type: a symbolic link is neither followed nor deleted.
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            if kind.is_dir() {
                folders.push(path);
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !kind.is_file() || !(name.ends_with(".eml") || name.ends_with(".eml.tmp")) {
                continue;
            }
            let raw =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            if addressed_to(&raw, key) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot delete {}", path.display()))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Whether the `To:` of the message `raw` names `key`.
fn addressed_to(raw: &[u8], key: &AddressKey) -> bool {
    let Some(m) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return false;
    };
    m.to().is_some_and(|to| {
        to.iter()
            .filter_map(|a| a.address())
            .any(|a| AddressKey::from_text(a) == *key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_readers_outbox_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let issue = dir.path().join("2021-07");
        std::fs::create_dir_all(&issue).unwrap();
        let mail =
            |to: &str| format!("From: n@example.org\r\nTo: {to}\r\nSubject: s\r\n\r\nbody\r\n");
        std::fs::write(
            issue.join("ana@example.org-1.eml"),
            mail("=?utf-8?q?Ana_Garc=C3=ADa?= <Ana@Example.org>"),
        )
        .unwrap();
        std::fs::write(
            issue.join(".ana@example.org-2.eml.tmp"),
            mail("ana@example.org"),
        )
        .unwrap();
        std::fs::write(dir.path().join("x.eml"), mail("\"Ana\" <ANA@example.org>")).unwrap();
        std::fs::write(issue.join("bob@example.org-1.eml"), mail("bob@example.org")).unwrap();
        // Names the reader only in the body, or is not a message file: kept.
        std::fs::write(
            issue.join("note.eml"),
            mail("bob@example.org") + "ana@example.org",
        )
        .unwrap();
        std::fs::write(issue.join("ana.txt"), mail("ana@example.org")).unwrap();

        let key = AddressKey::from_text("ana@example.org");
        assert_eq!(remove_outbox_files(dir.path(), &key).unwrap(), 3);
        let mut left: Vec<String> = walk(dir.path());
        left.sort();
        assert_eq!(left, ["ana.txt", "bob@example.org-1.eml", "note.eml"]);
        assert_eq!(
            remove_outbox_files(&dir.path().join("missing"), &key).unwrap(),
            0
        );
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        out
    }
}
