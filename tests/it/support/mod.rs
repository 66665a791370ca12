//! The test harness: an isolated world per test (temp content, config, subscribers and ledger),
//! an in-process SMTP server with scripted faults, and a throwaway certificate authority.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tempfile::TempDir;

pub mod browser;
pub mod daemon;
pub mod dovecot;
pub mod pki;
pub mod relay;
pub mod smtp_server;

/// The repository's root (the shipped config, content and templates live there).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A private folder with a config, content, templates and a subscriber list.
pub struct World {
    _dir: TempDir,
    pub root: PathBuf,
}

/// The config every world starts from; `{extra}` is appended.
const CONFIG: &str = r#"
[newsletter]
kicker = "BRIEF"
name = "U.S. – Mexico Binational Institutional Life"
organization = "Center for Binational Institutions"
intro = "The monthly newsletter on the institutions Mexico and the United States share."
from = "Center for Binational Institutions <brief@news.example.org>"
postal_address = "1 Example Plaza\nEl Paso, TX 79901"
date_format = "%m.%d.%y"
templates = "templates"

[content]
dir = "content"

[subscribers]
file = "subscribers.csv"

[delivery]
database = "data/brief.db"

[smtp]
transport = "outbox"
outbox_dir = "outbox"

[server]
# `brief run` binds a free port and prints it (see `support::daemon`).
listen = "127.0.0.1:0"
public_url = "https://news.example.org/"
"#;

impl World {
    /// A world with the repository's templates, the 2021-07 example issue and three readers.
    pub fn new() -> World {
        World::with_config("")
    }

    /// Like [`World::new`], with `extra` TOML appended to the config.
    pub fn with_config(extra: &str) -> World {
        // Tests talk only to loopback: the daemon's checks before a fire would fetch the
        // example issue's real links, so a world turns them off unless its test sets them.
        let extra = if extra.contains("[schedule]") && !extra.contains("preflight") {
            extra.replacen("[schedule]\n", "[schedule]\npreflight = \"0s\"\n", 1)
        } else {
            extra.to_string()
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let w = World { _dir: dir, root };
        w.write("brief.toml", &format!("{CONFIG}\n{extra}"));
        for f in ["email.css", "en.ftl"] {
            w.copy(&repo().join("templates").join(f), &format!("templates/{f}"));
        }
        w.copy_issue("2021-07");
        w.write(
            "subscribers.csv",
            "email,name\nana@example.org,Ana García\nbob@example.org,Bob\ncarla@example.org,Carla\n",
        );
        w
    }

    /// Copies an example issue from the repository's content folder.
    pub fn copy_issue(&self, id: &str) {
        for e in std::fs::read_dir(repo().join("content").join(id)).expect("example issue") {
            let p = e.expect("entry").path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            self.copy(&p, &format!("content/{id}/{name}"));
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("brief.toml")
    }

    pub fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        let p = self.path(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }

    fn copy(&self, from: &Path, rel: &str) {
        self.write_bytes(rel, &std::fs::read(from).unwrap());
    }

    /// Replaces the outbox transport of this world's `[smtp]` table with `settings`.
    pub fn use_smtp(&self, settings: &str) {
        let text = std::fs::read_to_string(self.config_path()).unwrap();
        let old = "transport = \"outbox\"\noutbox_dir = \"outbox\"";
        assert!(
            text.contains(old),
            "the world's [smtp] table changed: {text}"
        );
        self.write("brief.toml", &text.replace(old, settings));
    }

    /// Adds `lines` (TOML keys) to the `[newsletter]` table of this world's config.
    pub fn add_newsletter_keys(&self, lines: &str) {
        let text = std::fs::read_to_string(self.config_path()).unwrap();
        let table = "[newsletter]\n";
        assert!(
            text.contains(table),
            "the world's config has no [newsletter] table: {text}"
        );
        self.write(
            "brief.toml",
            &text.replacen(table, &format!("{table}{lines}\n"), 1),
        );
    }

    /// Adds `lines` (TOML keys) to the `[server]` table of this world's config.
    pub fn add_server_keys(&self, lines: &str) {
        let text = std::fs::read_to_string(self.config_path()).unwrap();
        let old = "public_url = \"https://news.example.org/\"";
        assert!(
            text.contains(old),
            "the world's [server] table changed: {text}"
        );
        self.write("brief.toml", &text.replace(old, &format!("{old}\n{lines}")));
    }

    /// The `brief` binary, configured for this world, without a terminal on stdin.
    pub fn brief(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("brief").expect("brief binary");
        c.current_dir(&self.root)
            .env_remove("BRIEF_CONFIG")
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg(self.config_path())
            .write_stdin("");
        c
    }

    /// The `.eml` files in the outbox folder of an issue (or `test`).
    pub fn outbox(&self, sub: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = match std::fs::read_dir(self.path("outbox").join(sub)) {
            Ok(r) => r
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    pub fn ledger(&self) -> brief::ledger::Ledger {
        brief::ledger::Ledger::open(&self.path("data/brief.db")).expect("ledger")
    }

    /// The loaded config of this world.
    pub fn config(&self) -> brief::config::Config {
        brief::config::load(&self.config_path()).expect("config")
    }
}

/// Copies a folder tree (the shipped config, content or templates into a temp dir).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// Text with all runs of white space folded to one space (for "contains, in order" checks).
pub fn fold(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Asserts that `needles` occur in `hay` in this order.
pub fn assert_in_order(hay: &str, needles: &[String], what: &str) {
    let mut from = 0;
    for n in needles {
        match hay[from..].find(n.as_str()) {
            Some(i) => from += i + n.len(),
            None => panic!("{what}: `{n}` missing or out of order"),
        }
    }
}

/// The decoded subject of a message file.
pub fn subject_of(p: &Path) -> String {
    let raw = std::fs::read(p).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    m.subject().unwrap_or("").to_string()
}

/// The decoded text part of a message file.
pub fn text_of(p: &Path) -> String {
    let raw = std::fs::read(p).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    m.body_text(0).unwrap_or_default().to_string()
}

/// Fails naming `rule` and every one of `found`, one per line, unless there are none.
pub fn assert_none(rule: &str, found: &[String]) {
    assert!(found.is_empty(), "{rule}:\n  {}", found.join("\n  "));
}
