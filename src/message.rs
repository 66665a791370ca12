//! Builds the MIME message: multipart/alternative, text first, quoted-printable parts.
//!
//! A [`MessageTemplate`] is made once per campaign from the rendered issue: every byte that is the
//! same for all readers is encoded up front. [`MessageTemplate::write`] then splices in only what
//! differs per reader (To, Message-ID, the unsubscribe URL in List-Unsubscribe and in both parts),
//! which keeps personalisation to a few microseconds. Header values pass through [`one_line`]
//! and RFC 2047 encoding, so no title, name or subject can add a header.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::Address;
use sha2::{Digest, Sha256};
use url::Url;

use crate::address::lowercase_chunks;
use crate::config::Newsletter;
use crate::issue::{display_name, one_line, IssueId};
use crate::render::Rendered;
use crate::token::{hex, TokenKey};

/// One reader of one message.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    pub address: &'a Address,
    pub name: Option<&'a str>,
}

/// Is this a campaign message or a staff test send?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Campaign,
    /// Subject prefixed `[TEST] `, and a Message-ID of its own so it never collides with the
    /// campaign's.
    Test {
        nonce: u64,
    },
    /// A campaign's very message mailed to staff before the readers (the canary): the same
    /// subject and headers, a Message-ID of its own so a staff member who is also a reader
    /// still gets the reader's copy.
    Canary,
    /// A message to one person that is no issue (a sign-up's confirmation request): no list
    /// headers, no unsubscribe link, a Message-ID of its own.
    Notice {
        nonce: u64,
    },
}

enum Piece {
    Fixed(Vec<u8>),
    /// The reader's token (or, in a template an older brief stored, the whole unsubscribe URL:
    /// see [`MessageTemplate::holes`]), quoted-printable, starting at this column.
    Hole {
        col: usize,
    },
}

/// What a template's holes are filled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holes {
    /// The reader's token, after the unsubscribe and language links' paths.
    Token,
    /// The whole unsubscribe URL: templates stored before language links (versions 1 and 2).
    UnsubscribeUrl,
}

/// Everything about a campaign's message that is the same for every reader, pre-encoded.
pub struct MessageTemplate {
    /// Date, From, Reply-To.
    head: Vec<u8>,
    /// Subject, then the Message-ID's prefix.
    subject: Vec<u8>,
    /// List-Id and the start of List-Unsubscribe.
    list: Vec<u8>,
    /// The end of List-Unsubscribe (the mailto), List-Unsubscribe-Post, MIME headers.
    tail: Vec<u8>,
    body: Vec<Piece>,
    issue: IssueId,
    kind: Kind,
    domain: String,
    /// The unsubscribe URL up to the token.
    unsubscribe_base: String,
    key: TokenKey,
    /// Keyed Message-IDs, or the unkeyed ones of a campaign an older brief started.
    ids: IdScheme,
    /// What the body's holes take.
    holes: Holes,
    /// A canary copy's language, with its dot (`es.`), for every edition but the first: mail
    /// clients fold copies that share a Message-ID, so each edition's copy names its language
    /// in its own (`brief.canary.es.ISSUE...`). Empty otherwise.
    edition: String,
}

/// How a template makes its Message-IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdScheme {
    /// `brief.ISSUE.kMAC@DOMAIN`, MAC keyed by the token key: what brief makes now.
    Keyed,
    /// `brief.ISSUE.HASH@DOMAIN`, HASH an unkeyed SHA-256 of the issue and the address: what
    /// campaigns stored before keyed ids send, so that their retries carry the ids their
    /// deliveries recorded. Anyone can compute these, so they never suppress anybody.
    Legacy,
}

/// Whether `id` (a Message-ID without angle brackets, as a report returns it) is the keyed
/// Message-ID of the campaign copy of `issue` for `address`: its MAC is checked under `key`
/// (in constant time), never merely looked up.
pub fn is_campaign_id(key: &TokenKey, id: &str, issue: &str, address: &str) -> bool {
    let Some(mac) = id
        .strip_prefix("brief.")
        .and_then(|r| r.strip_prefix(issue))
        .and_then(|r| r.strip_prefix(".k"))
        .and_then(|r| r.split_once('@'))
        .map(|(mac, _domain)| mac)
    else {
        return false;
    };
    key.message_id_mac_matches(issue, address, mac)
}

impl MessageTemplate {
    /// Prepares the message of `issue` for sending at `date`.
    pub fn new(
        rendered: &Rendered,
        newsletter: &Newsletter,
        issue: IssueId,
        date: DateTime<Utc>,
        public_url: &Url,
        key: &TokenKey,
        kind: Kind,
    ) -> MessageTemplate {
        let mut head = String::new();
        header(&mut head, "Date", &date.to_rfc2822());
        mailbox_header(&mut head, "From", &newsletter.from);
        if let Some(r) = &newsletter.reply_to {
            mailbox_header(&mut head, "Reply-To", r);
        }
        let subject_text = match kind {
            Kind::Campaign | Kind::Canary | Kind::Notice { .. } => rendered.subject.clone(),
            Kind::Test { .. } => format!("[TEST] {}", rendered.subject),
        };
        let mut subject = String::new();
        unstructured(&mut subject, "Subject", &subject_text);
        subject.push_str("Message-ID: <");
        let notice = matches!(kind, Kind::Notice { .. });
        let mut list = String::new();
        let list_name = format!("{} | {}", newsletter.kicker, newsletter.name);
        list.push_str("List-Id:");
        name_addr(
            &mut list,
            "List-Id:".len(),
            &list_name,
            &one_line(&newsletter.list_id()).replace(['<', '>'], ""),
        );
        list.push_str("\r\n");
        // The first URI stays on the header's own line, though with its token it passes 78
        // characters: folded before it, the value starts with a space, and parsers that do not
        // strip it (Python's `email` in its default policy) no longer see `<https://`.
        list.push_str("List-Unsubscribe: <");
        let mut tail = String::from(">");
        if let Some(m) = &newsletter.unsubscribe_mailto {
            let _ = write!(tail, ",\r\n <mailto:{}?subject=unsubscribe>", m.email);
        }
        tail.push_str("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
        if notice {
            // Not a list message: `write` leaves the unsubscribe URL out along with these.
            list.clear();
            tail.clear();
        }
        let boundary = format!("=_brief_{}", &hex(&Sha256::digest(issue.to_string()))[..24]);
        let _ = write!(
            tail,
            "Content-Language: {}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n\r\n\
             This is a multi-part message in MIME format.\r\n",
            rendered.lang
        );
        let mut body = Vec::new();
        for (ctype, parts) in [
            ("text/plain", &rendered.text),
            ("text/html", &rendered.html),
        ] {
            let intro = format!(
                "\r\n--{boundary}\r\nContent-Type: {ctype}; charset=utf-8\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            );
            push_fixed(&mut body, intro.into_bytes());
            let mut qp = Qp::default();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    push_fixed(&mut body, std::mem::take(&mut qp.out));
                    body.push(Piece::Hole { col: qp.col });
                    // The hole ends with a soft line break, so what follows starts at column 0.
                    qp.col = 0;
                }
                let last = i + 1 == parts.len();
                qp.encode(part, last);
            }
            push_fixed(&mut body, qp.out);
        }
        push_fixed(&mut body, format!("\r\n--{boundary}--\r\n").into_bytes());
        MessageTemplate {
            head: head.into_bytes(),
            subject: subject.into_bytes(),
            list: list.into_bytes(),
            tail: tail.into_bytes(),
            body,
            issue,
            kind,
            domain: newsletter.from.email.domain().to_string(),
            unsubscribe_base: public_url
                .join("unsubscribe/")
                .expect("base URL")
                .to_string(),
            key: key.clone(),
            ids: IdScheme::Keyed,
            holes: Holes::Token,
            edition: String::new(),
        }
    }

    /// The Message-ID (without angle brackets) of this message for `address`: stable for a
    /// campaign, so a retry carries the same one. `brief.[KIND.]ISSUE.kMAC@DOMAIN`, MAC the
    /// token key's [`TokenKey::message_id_mac`] of issue, address and kind: nobody without the
    /// key can compute a reader's id, so a report returning it is evidence (see
    /// [`is_campaign_id`]). A campaign stored by an older brief keeps its unkeyed ids
    /// ([`IdScheme::Legacy`]), the ones its deliveries recorded.
    pub fn message_id(&self, address: &Address) -> String {
        let (tag, variant): (&str, Vec<u8>) = match self.kind {
            Kind::Campaign => ("", Vec::new()),
            Kind::Canary => ("canary.", b"canary".to_vec()),
            Kind::Test { nonce } => ("test.", [&b"test"[..], &nonce.to_le_bytes()].concat()),
            Kind::Notice { nonce } => ("notice.", [&b"notice"[..], &nonce.to_le_bytes()].concat()),
        };
        let issue = self.issue.to_string();
        let edition = &self.edition;
        match self.ids {
            IdScheme::Keyed => format!(
                "brief.{tag}{edition}{issue}.k{}@{}",
                self.key.message_id_mac(&issue, address.as_ref(), &variant),
                self.domain
            ),
            IdScheme::Legacy => self.legacy_message_id(address),
        }
    }

    /// The unkeyed Message-ID of brief before keyed ids: a hash of public facts, still sent
    /// by campaigns started then, so that their retries match what their deliveries recorded.
    fn legacy_message_id(&self, address: &Address) -> String {
        let mut h = Sha256::new();
        h.update(self.issue.to_string());
        h.update([0]);
        lowercase_chunks(address.as_ref(), |c| h.update(c));
        let tag = match self.kind {
            Kind::Campaign => "",
            Kind::Canary => {
                h.update(b"canary");
                "canary."
            }
            Kind::Test { nonce } => {
                h.update(nonce.to_le_bytes());
                "test."
            }
            Kind::Notice { nonce } => {
                h.update(b"notice");
                h.update(nonce.to_le_bytes());
                "notice."
            }
        };
        format!(
            "brief.{tag}{}{}.{}@{}",
            self.edition,
            self.issue,
            hex(&h.finalize()[..16]),
            self.domain
        )
    }

    /// How this template makes Message-IDs.
    pub fn id_scheme(&self) -> IdScheme {
        self.ids
    }

    /// This campaign message as its canary: the same bytes, with canary Message-IDs; `edition`
    /// names the language of every edition's copy but the first, in its Message-ID.
    pub fn into_canary(self, edition: Option<&str>) -> MessageTemplate {
        let edition = edition
            .map(|lang| {
                let mut tag: String = lang
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                tag.push('.');
                tag
            })
            .unwrap_or_default();
        MessageTemplate {
            kind: Kind::Canary,
            edition,
            ..self
        }
    }

    /// The one-click unsubscribe URL of `address`.
    pub fn unsubscribe_url(&self, address: &Address) -> String {
        let mut u = String::with_capacity(self.unsubscribe_base.len() + 128);
        u.push_str(&self.unsubscribe_base);
        self.key.push_token(address.as_ref(), &mut u);
        u
    }

    /// The key this template signs with, for the log tags of its readers (`TokenKey::tag`).
    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    /// Writes the whole message for `r` into `out` (cleared first), with CRLF line ends.
    pub fn write(&self, r: Recipient<'_>, out: &mut Vec<u8>) {
        out.clear();
        let url = self.unsubscribe_url(r.address);
        let fill = match self.holes {
            Holes::Token => &url[self.unsubscribe_base.len()..],
            Holes::UnsubscribeUrl => url.as_str(),
        };
        out.reserve(self.size_hint() + 4 * url.len() + 256);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"To:");
        let address: &str = r.address.as_ref();
        // Capped here too: a name the ledger got from an older brief may be any length.
        match r.name.and_then(display_name) {
            Some(name) => {
                let mut to = String::with_capacity(name.len() * 2 + address.len() + 16);
                name_addr(&mut to, "To:".len(), &name, address);
                out.extend_from_slice(to.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            None => {
                out.push(b' ');
                out.extend_from_slice(address.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(&self.subject);
        out.extend_from_slice(self.message_id(r.address).as_bytes());
        out.extend_from_slice(b">\r\n");
        if !matches!(self.kind, Kind::Notice { .. }) {
            out.extend_from_slice(&self.list);
            out.extend_from_slice(url.as_bytes());
        }
        out.extend_from_slice(&self.tail);
        for p in &self.body {
            match p {
                Piece::Fixed(b) => out.extend_from_slice(b),
                Piece::Hole { col } => {
                    let mut qp = Qp {
                        out: std::mem::take(out),
                        col: *col,
                    };
                    qp.encode(fill, false);
                    qp.out.extend_from_slice(b"=\r\n");
                    *out = qp.out;
                }
            }
        }
    }

    /// The message as bytes for `r` (allocating; the send path reuses a buffer with `write`).
    pub fn to_bytes(&self, r: Recipient<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(r, &mut v);
        v
    }

    /// The template as it is stored with its campaign: every pre-encoded byte (all 7-bit ASCII:
    /// headers are RFC 2047-encoded, parts quoted-printable), never the token key. Only a
    /// campaign's template is stored; a test send's is made anew each time.
    pub fn freeze(&self) -> String {
        self.freeze_with(self.ids)
    }

    /// The frozen form of this template as a new revision of a campaign whose stored message
    /// is `previous`: with the Message-ID scheme of `previous`, since the campaign's
    /// deliveries recorded their ids when it started and a retry must carry the same one.
    pub fn freeze_as_revision_of(&self, previous: &str) -> String {
        #[derive(serde::Deserialize)]
        struct Version {
            version: u32,
        }
        let legacy = serde_json::from_str::<Version>(previous).is_ok_and(|v| {
            v.version == FROZEN_LEGACY_IDS || v.version == FROZEN_LEGACY_IDS_TOKEN_HOLES
        });
        self.freeze_with(if legacy { IdScheme::Legacy } else { self.ids })
    }

    fn freeze_with(&self, ids: IdScheme) -> String {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let frozen = Frozen {
            // The version says how the ids are made: a legacy template stays what it was.
            version: match (ids, self.holes) {
                (IdScheme::Keyed, Holes::Token) => FROZEN_VERSION,
                (IdScheme::Keyed, Holes::UnsubscribeUrl) => FROZEN_URL_HOLES,
                (IdScheme::Legacy, Holes::UnsubscribeUrl) => FROZEN_LEGACY_IDS,
                // A legacy campaign's new revision made by this brief: unkeyed ids, token
                // holes.
                (IdScheme::Legacy, Holes::Token) => FROZEN_LEGACY_IDS_TOKEN_HOLES,
            },
            head: text(&self.head),
            subject: text(&self.subject),
            list: text(&self.list),
            tail: text(&self.tail),
            body: self
                .body
                .iter()
                .map(|p| match p {
                    Piece::Fixed(b) => FrozenPiece::Fixed(text(b)),
                    Piece::Hole { col } => FrozenPiece::Hole(*col),
                })
                .collect(),
            domain: self.domain.clone(),
            unsubscribe_base: self.unsubscribe_base.clone(),
        };
        serde_json::to_string(&frozen).expect("a frozen template serializes")
    }

    /// The campaign template of `issue` that [`MessageTemplate::freeze`] stored, with `key` to
    /// sign the unsubscribe tokens.
    pub fn thaw(stored: &str, issue: IssueId, key: &TokenKey) -> anyhow::Result<MessageTemplate> {
        let f: Frozen = serde_json::from_str(stored)
            .map_err(|e| anyhow::anyhow!("the stored message of issue {issue} is damaged: {e}"))?;
        let (ids, holes) = match f.version {
            FROZEN_VERSION => (IdScheme::Keyed, Holes::Token),
            FROZEN_URL_HOLES => (IdScheme::Keyed, Holes::UnsubscribeUrl),
            FROZEN_LEGACY_IDS => (IdScheme::Legacy, Holes::UnsubscribeUrl),
            FROZEN_LEGACY_IDS_TOKEN_HOLES => (IdScheme::Legacy, Holes::Token),
            _ => anyhow::bail!(
                "the stored message of issue {issue} has format {}, which this brief does not read",
                f.version
            ),
        };
        Ok(MessageTemplate {
            head: f.head.into_bytes(),
            subject: f.subject.into_bytes(),
            list: f.list.into_bytes(),
            tail: f.tail.into_bytes(),
            body: f
                .body
                .into_iter()
                .map(|p| match p {
                    FrozenPiece::Fixed(s) => Piece::Fixed(s.into_bytes()),
                    FrozenPiece::Hole(col) => Piece::Hole { col },
                })
                .collect(),
            issue,
            kind: Kind::Campaign,
            domain: f.domain,
            unsubscribe_base: f.unsubscribe_base,
            key: key.clone(),
            ids,
            holes,
            edition: String::new(),
        })
    }

    fn size_hint(&self) -> usize {
        self.head.len()
            + self.subject.len()
            + self.list.len()
            + self.tail.len()
            + self
                .body
                .iter()
                .map(|p| match p {
                    Piece::Fixed(b) => b.len(),
                    Piece::Hole { .. } => 0,
                })
                .sum::<usize>()
    }
}

/// The stored form's version: bump it when the layout of [`Frozen`] or its meaning changes.
/// Version 3 is version 2 with holes that take the reader's token, not the whole unsubscribe
/// URL (the language links need it too): an older brief refuses it rather than put a URL
/// where a token goes.
const FROZEN_VERSION: u32 = 3;
/// Version 2: version 1's layout with keyed Message-IDs ([`IdScheme::Keyed`]), holes taking
/// the unsubscribe URL.
const FROZEN_URL_HOLES: u32 = 2;
/// A new revision (with token holes) of a campaign whose ids are [`IdScheme::Legacy`].
const FROZEN_LEGACY_IDS_TOKEN_HOLES: u32 = 4;
/// Version 1: stored before keyed Message-IDs; thawed with [`IdScheme::Legacy`].
const FROZEN_LEGACY_IDS: u32 = 1;

/// A [`MessageTemplate`] at rest (see [`MessageTemplate::freeze`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct Frozen {
    version: u32,
    head: String,
    subject: String,
    list: String,
    tail: String,
    body: Vec<FrozenPiece>,
    domain: String,
    unsubscribe_base: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
enum FrozenPiece {
    Fixed(String),
    Hole(usize),
}

fn push_fixed(body: &mut Vec<Piece>, bytes: Vec<u8>) {
    if let Some(Piece::Fixed(prev)) = body.last_mut() {
        prev.extend_from_slice(&bytes);
    } else {
        body.push(Piece::Fixed(bytes));
    }
}

/// Quoted-printable (RFC 2045 6.7) with `\n` in the input becoming CRLF hard breaks.
#[derive(Default)]
struct Qp {
    out: Vec<u8>,
    col: usize,
}

impl Qp {
    const MAX: usize = 76;

    fn put(&mut self, token: &[u8]) {
        if self.col + token.len() > Self::MAX - 1 {
            self.out.extend_from_slice(b"=\r\n");
            self.col = 0;
        }
        self.out.extend_from_slice(token);
        self.col += token.len();
    }

    /// `at_end`: the text ends the part, so trailing white space must be encoded.
    fn encode(&mut self, text: &str, at_end: bool) {
        let bytes = text.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let next = bytes.get(i + 1).copied();
            if b == b'\n' {
                self.out.extend_from_slice(b"\r\n");
                self.col = 0;
                continue;
            }
            if b == b'\r' {
                continue;
            }
            let line_end = next == Some(b'\n') || next == Some(b'\r') || (next.is_none() && at_end);
            let literal = match b {
                b'=' => false,
                b' ' | b'\t' => !line_end,
                // A leading dot or "From " is encoded so no relay or mbox file mangles the line.
                b'.' if self.col == 0 => false,
                b'F' if self.col == 0 && bytes[i..].starts_with(b"From ") => false,
                33..=126 => true,
                _ => false,
            };
            if literal {
                self.put(&[b]);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                self.put(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
        }
    }
}

/// Appends `Name: value` with the value as is (it must be ASCII without CR or LF).
fn header(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "{name}: {}\r\n", value.replace(['\r', '\n'], ""));
}

/// Appends an unstructured header (Subject): folded ASCII, or RFC 2047 encoded words.
fn unstructured(out: &mut String, name: &str, value: &str) {
    let value = one_line(value);
    out.push_str(name);
    out.push(':');
    if needs_encoding(&value) {
        encoded_words(out, &value, name.len() + 1);
    } else {
        let mut col = name.len() + 1;
        for word in value.split(' ') {
            if col + 1 + word.len() > 78 && col > name.len() + 1 {
                out.push_str("\r\n");
                col = 0;
            }
            out.push(' ');
            out.push_str(word);
            col += 1 + word.len();
        }
    }
    out.push_str("\r\n");
}

fn needs_encoding(s: &str) -> bool {
    s.contains("=?") || s.bytes().any(|b| !(0x20..0x7f).contains(&b))
}

/// The longest header line that holds encoded words (RFC 2047 §2 keeps such lines to 76).
const ENCODED_LINE: usize = 76;

/// Appends `s` as base64 encoded words, each after a space (the first) or a fold (the others),
/// so that no line, counted from column `col` where `out` ends now, exceeds [`ENCODED_LINE`].
/// Returns the column where the last line ends.
fn encoded_words(out: &mut String, s: &str, mut col: usize) -> usize {
    // `=?utf-8?b?` and `?=` around the base64.
    const FRAME: usize = 12;
    // The UTF-8 bytes whose base64 fits in a word after a space at `col`.
    let room = |col: usize| ENCODED_LINE.saturating_sub(col + 1 + FRAME) / 4 * 3;
    let mut chunk = String::new();
    let mut first = true;
    // Writes `chunk` as one word: after a space (the first), or on a line of its own.
    let flush = |chunk: &mut String, out: &mut String, col: &mut usize, first: &mut bool| {
        if !*first {
            out.push_str("\r\n");
            *col = 0;
        }
        *first = false;
        let word = format!(" =?utf-8?b?{}?=", STANDARD.encode(chunk.as_bytes()));
        *col += word.len();
        out.push_str(&word);
        chunk.clear();
    };
    for c in s.chars() {
        let limit = if first { room(col) } else { room(0) };
        if chunk.len() + c.len_utf8() > limit {
            if chunk.is_empty() {
                // Not even one character fits after what the line holds: start on the next.
                out.push_str("\r\n");
                col = 0;
            } else {
                flush(&mut chunk, out, &mut col, &mut first);
            }
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        flush(&mut chunk, out, &mut col, &mut first);
    }
    col
}

/// Appends ` NAME <ADDRESS>` to a header line that ends at column `col`: the display name as a
/// quoted string, or encoded words when it is not plain ASCII, and the address folded onto a
/// line of its own when it would pass the line's end.
///
/// A quoted name too long for its line is folded at its spaces (a fold inside a quoted string
/// unfolds to the same space); one with a word too long for any line becomes encoded words,
/// which may break anywhere. So no line passes 78 characters but for an address longer than
/// that, and none ever comes near RFC 5322's 998.
fn name_addr(out: &mut String, col: usize, name: &str, address: &str) {
    let name = one_line(name);
    let q = quoted(&name);
    let end = if needs_encoding(&name) || q.split(' ').any(|w| w.len() + 1 > ENCODED_LINE) {
        encoded_words(out, &name, col)
    } else {
        let mut col = col;
        for (i, word) in q.split(' ').enumerate() {
            if i > 0 && col + 1 + word.len() > ENCODED_LINE {
                out.push_str("\r\n");
                col = 0;
            }
            out.push(' ');
            out.push_str(word);
            col += 1 + word.len();
        }
        col
    };
    if end + 3 + address.len() > ENCODED_LINE {
        out.push_str("\r\n");
    }
    let _ = write!(out, " <{address}>");
}

/// `name` as a quoted string.
fn quoted(name: &str) -> String {
    let mut q = String::from("\"");
    for c in name.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// Appends `Name: MAILBOX` and the line end.
fn mailbox_header(out: &mut String, name: &str, m: &Mailbox) {
    out.push_str(name);
    out.push(':');
    match m.name.as_deref().map(one_line).filter(|n| !n.is_empty()) {
        Some(n) => name_addr(out, name.len() + 1, &n, m.email.as_ref()),
        None => {
            let _ = write!(out, " {}", m.email);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(s: &str) -> String {
        let mut q = Qp::default();
        q.encode(s, true);
        String::from_utf8(q.out).unwrap()
    }

    #[test]
    fn quoted_printable_encodes_and_wraps() {
        assert_eq!(qp("a=b é"), "a=3Db =C3=A9");
        assert_eq!(qp("trailing \nx "), "trailing=20\r\nx=20");
        assert_eq!(qp(".dot\nFrom me"), "=2Edot\r\n=46rom me");
        let long = qp(&"x".repeat(200));
        assert!(long.split("\r\n").all(|l| l.len() <= 76), "{long}");
        assert_eq!(long.replace("=\r\n", ""), "x".repeat(200));
    }

    /// Header lines stay within the 78 characters RFC 5322 recommends, folded where the
    /// header allows it; the only longer ones hold one URI, which cannot be folded
    /// (List-Unsubscribe's first one stays on the header's line: see `MessageTemplate::new`).
    #[test]
    fn header_lines_fold_within_78_except_a_lone_uri() {
        let text = format!(
            "{}\nunsubscribe_mailto = \"leave-the-binational-brief@news.example.org\"\n",
            crate::config::MINIMAL_FOR_TESTS.replace("[newsletter]\n", "[newsletter]\nlist_id = \"brief-binational-institutional-life.news.example.org\"\n")
        );
        let c = crate::config::parse(&text, std::path::Path::new("b.toml")).unwrap();
        let rendered = Rendered {
            subject: "BRIEF | U.S. – Mexico Binational Institutional Life | 07.23.21".into(),
            preheader: String::new(),
            lang: crate::lang::Lang::parse("en").unwrap(),
            html: vec!["<a href=\"".into(), "\">leave</a>".into()],
            text: vec!["leave: ".into(), "\n".into()],
        };
        let key = TokenKey::new(crate::config::Secret::new("k".repeat(32)));
        let t = MessageTemplate::new(
            &rendered,
            &c.newsletter,
            "2021-07".parse().unwrap(),
            DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            &c.server.public_url,
            &key,
            Kind::Campaign,
        );
        let ana: Address = "ana.garcia.de.la.fuente@example.org".parse().unwrap();
        let raw = t.to_bytes(Recipient {
            address: &ana,
            name: Some("Ana García de la Fuente"),
        });
        let raw = String::from_utf8(raw).unwrap();
        let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
        for line in headers.split("\r\n") {
            let uri = line.strip_prefix("List-Unsubscribe: ").unwrap_or(line);
            let lone_uri = uri.trim_start().starts_with('<')
                && uri.trim_end_matches(',').ends_with('>')
                && !uri.trim().contains(' ');
            assert!(
                line.len() <= 78 || lone_uri,
                "{} characters: {line:?}",
                line.len()
            );
        }
    }

    #[test]
    fn a_thawed_template_writes_the_same_bytes_and_a_damaged_one_is_refused() {
        let c = crate::config::parse(
            crate::config::MINIMAL_FOR_TESTS,
            std::path::Path::new("b.toml"),
        )
        .unwrap();
        let rendered = Rendered {
            subject: "Issue ñ of July".into(),
            preheader: String::new(),
            lang: crate::lang::Lang::parse("en").unwrap(),
            html: vec!["<p>hello é</p><a href=\"".into(), "\">leave</a>".into()],
            text: vec!["hello é\n\nleave: ".into(), "\n".into()],
        };
        let key = TokenKey::new(crate::config::Secret::new("k".repeat(32)));
        let issue: IssueId = "2021-07".parse().unwrap();
        let t = MessageTemplate::new(
            &rendered,
            &c.newsletter,
            issue,
            DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            &c.server.public_url,
            &key,
            Kind::Campaign,
        );
        let ana: Address = "Ana@example.org".parse().unwrap();
        let reader = Recipient {
            address: &ana,
            name: Some("Ana"),
        };
        let stored = t.freeze();
        assert!(!stored.contains(&"k".repeat(32)), "no key at rest");

        let back = MessageTemplate::thaw(&stored, issue, &key).unwrap();

        assert_eq!(back.to_bytes(reader), t.to_bytes(reader));
        let Err(e) = MessageTemplate::thaw(&stored[..stored.len() / 2], issue, &key) else {
            panic!("half a stored message was accepted");
        };
        assert!(
            e.to_string()
                .starts_with("the stored message of issue 2021-07 is damaged"),
            "{e}"
        );
    }

    /// A campaign template of 2021-07 under `key`.
    fn july(key: &TokenKey) -> MessageTemplate {
        let c = crate::config::parse(
            crate::config::MINIMAL_FOR_TESTS,
            std::path::Path::new("b.toml"),
        )
        .unwrap();
        let rendered = Rendered {
            subject: "July".into(),
            preheader: String::new(),
            lang: crate::lang::Lang::parse("en").unwrap(),
            html: vec!["<a href=\"".into(), "\">leave</a>".into()],
            text: vec!["leave: ".into(), "\n".into()],
        };
        MessageTemplate::new(
            &rendered,
            &c.newsletter,
            "2021-07".parse().unwrap(),
            DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            &c.server.public_url,
            key,
            Kind::Campaign,
        )
    }

    #[test]
    fn message_ids_are_keyed_and_cannot_be_made_from_public_facts() {
        let key = TokenKey::new(crate::config::Secret::new("k".repeat(32)));
        let t = july(&key);
        let ana: Address = "Ana@example.org".parse().unwrap();
        let id = t.message_id(&ana);
        let domain = t.domain.clone();
        assert!(id.starts_with("brief.2021-07.k"), "{id}");
        assert!(id.ends_with(&format!("@{domain}")), "{id}");
        assert_eq!(id, t.message_id(&"ana@EXAMPLE.org".parse().unwrap()));
        assert!(is_campaign_id(&key, &id, "2021-07", "ana@example.org"));
        assert!(!is_campaign_id(&key, &id, "2021-08", "ana@example.org"));
        assert!(!is_campaign_id(&key, &id, "2021-07", "bob@example.org"));

        // The formula of earlier versions, from the issue, the address and the From domain
        // alone, is what an outsider computes: it proves nothing.
        let mut h = Sha256::new();
        h.update("2021-07");
        h.update([0]);
        h.update("ana@example.org");
        let public = format!("brief.2021-07.{}@{domain}", hex(&h.finalize()[..16]));
        assert_ne!(id, public);
        assert!(!is_campaign_id(&key, &public, "2021-07", "ana@example.org"));
        let other = TokenKey::new(crate::config::Secret::new("x".repeat(32)));
        assert_ne!(july(&other).message_id(&ana), id);
        assert!(!is_campaign_id(&other, &id, "2021-07", "ana@example.org"));

        // A campaign stored before keyed ids keeps the ids its deliveries recorded, in every
        // revision; a new campaign's canary copies have ids of their own, which attribute
        // nothing.
        let legacy = t.freeze_with(IdScheme::Legacy);
        let old = MessageTemplate::thaw(&legacy, "2021-07".parse().unwrap(), &key).unwrap();
        assert_eq!(old.id_scheme(), IdScheme::Legacy);
        assert_eq!(old.message_id(&ana), public);
        let revised = t.freeze_as_revision_of(&legacy);
        let back = MessageTemplate::thaw(&revised, "2021-07".parse().unwrap(), &key).unwrap();
        assert_eq!(back.message_id(&ana), public);
        let kept = t.freeze_as_revision_of(&t.freeze());
        let back = MessageTemplate::thaw(&kept, "2021-07".parse().unwrap(), &key).unwrap();
        assert_eq!(back.message_id(&ana), id);
        let canary = back.into_canary(None).message_id(&ana);
        assert!(canary.starts_with("brief.canary.2021-07.k"), "{canary}");
        assert!(!is_campaign_id(&key, &canary, "2021-07", "ana@example.org"));
        // A further edition's copy names its language, with the same MAC.
        let back = MessageTemplate::thaw(&kept, "2021-07".parse().unwrap(), &key).unwrap();
        let spanish = back.into_canary(Some("es")).message_id(&ana);
        assert_eq!(
            spanish,
            canary.replacen("brief.canary.", "brief.canary.es.", 1)
        );
        let old = MessageTemplate::thaw(&legacy, "2021-07".parse().unwrap(), &key).unwrap();
        let (one, two) = (
            old.into_canary(None).message_id(&ana),
            MessageTemplate::thaw(&legacy, "2021-07".parse().unwrap(), &key)
                .unwrap()
                .into_canary(Some("es"))
                .message_id(&ana),
        );
        assert_eq!(two, one.replacen("brief.canary.", "brief.canary.es.", 1));
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let mut s = String::new();
        unstructured(&mut s, "Subject", "Hi\r\nBcc: evil@example.org");
        assert_eq!(s, "Subject: Hi Bcc: evil@example.org\r\n");
        let mut to = String::from("To:");
        name_addr(&mut to, 3, "A \"q\"\nB", "a@example.org");
        assert_eq!(to, "To: \"A \\\"q\\\" B\" <a@example.org>");
    }

    /// A 1,500-character plain-ASCII name (with spaces, and without): every header line stays
    /// within 76 characters, and the name parses back as the capped name.
    #[test]
    fn a_long_ascii_name_is_folded_and_capped_in_to() {
        let key = TokenKey::new(crate::config::Secret::new("k".repeat(32)));
        let c = crate::config::parse(
            crate::config::MINIMAL_FOR_TESTS,
            std::path::Path::new("b.toml"),
        )
        .unwrap();
        let rendered = Rendered {
            subject: "Issue of July".into(),
            preheader: String::new(),
            lang: crate::lang::Lang::parse("en").unwrap(),
            html: vec!["<a href=\"".into(), "\">leave</a>".into()],
            text: vec!["leave: ".into(), "\n".into()],
        };
        let template = MessageTemplate::new(
            &rendered,
            &c.newsletter,
            "2021-07".parse().unwrap(),
            DateTime::from_timestamp(1_600_000_000, 0).unwrap(),
            &c.server.public_url,
            &key,
            Kind::Campaign,
        );
        let address: Address = "reader@example.org".parse().unwrap();
        let parser = mail_parser::MessageParser::default();
        for name in [
            "Ana Lucía de la Cruz ".repeat(75),
            "Bartholomew ".repeat(125),
            "x".repeat(1500),
        ] {
            let bytes = template.to_bytes(Recipient {
                address: &address,
                name: Some(&name),
            });
            let text = String::from_utf8(bytes.clone()).unwrap();
            let head = &text[..text.find("\r\n\r\n").expect("a header")];
            assert!(head.split("\r\n").all(|l| l.len() <= 998), "{head}");
            let to_at = head.find("\r\nTo:").expect("a To") + 2;
            let to_len = head[to_at..]
                .split("\r\n")
                .enumerate()
                .take_while(|(i, l)| *i == 0 || l.starts_with(' '))
                .map(|(_, l)| l.len() + 2)
                .sum::<usize>();
            assert_short_lines(&head[to_at..to_at + to_len - 2]);
            let m = parser.parse(&bytes).expect("parses");
            let to = m.to().and_then(|a| a.first()).expect("a To");
            assert_eq!(to.address(), Some("reader@example.org"));
            let want = display_name(&name).unwrap();
            assert!(want.chars().count() <= crate::issue::NAME_MAX);
            assert!(
                want.chars().count() >= crate::issue::NAME_MAX - 12,
                "{want}"
            );
            assert_eq!(to.name(), Some(want.as_str()), "{head}");
        }
    }

    /// Every line of `headers` (CRLF-separated) is at most 76 characters.
    fn assert_short_lines(headers: &str) {
        for l in headers.split("\r\n") {
            assert!(
                l.len() <= 76,
                "{} characters: {l:?}\nin:\n{headers}",
                l.len()
            );
        }
    }

    #[test]
    fn encoded_header_lines_stay_within_76_and_decode_to_the_same_text() {
        let subjects = [
            "é".repeat(40),
            "BRIEF | Vida institucional binacional México – Estados Unidos | 23.07.21".into(),
            "Año nuevo: 🎉 reuniones, acuerdos y más de la Comisión Internacional de Límites y Aguas, \
             edición especial"
                .into(),
            "x".repeat(70) + "ñ",
            "日本語の件名".repeat(9),
        ];
        let names = [
            "Centro de Instituciones Binacionales – Ciudad Juárez y El Paso (Oficina)".to_string(),
            "José".into(),
            "Zoë ".repeat(30),
            "😀".repeat(25),
        ];
        let parser = mail_parser::MessageParser::default();
        for (i, subject) in subjects.iter().enumerate() {
            let name = &names[i % names.len()];
            let mut h = String::new();
            unstructured(&mut h, "Subject", subject);
            h.push_str("From:");
            name_addr(&mut h, 5, name, "brief@example.org");
            h.push_str("\r\nTo:");
            name_addr(&mut h, 3, name, &format!("{}@example.org", "r".repeat(40)));
            h.push_str("\r\nList-Id:");
            name_addr(&mut h, 8, subject, "brief.example.org");
            h.push_str("\r\n");
            assert_short_lines(&h);
            let raw = format!("{h}\r\nbody\r\n");
            let m = parser.parse(raw.as_bytes()).expect("parses");
            assert_eq!(m.subject(), Some(one_line(subject).as_str()), "{h}");
            let from = m.from().and_then(|a| a.first()).expect("a From");
            assert_eq!(from.name(), Some(one_line(name).as_str()), "{h}");
            assert_eq!(from.address(), Some("brief@example.org"));
            let to = m.to().and_then(|a| a.first()).expect("a To");
            assert_eq!(to.name(), Some(one_line(name).as_str()), "{h}");
        }
    }
}
