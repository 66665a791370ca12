//! Bounce and complaint reports: classifies one message that came back to the bounce address
//! and finds what names the original delivery.
//!
//! brief sends each campaign message with a VERP envelope sender `bounces+TAG@domain`, so
//! delivery reports (RFC 3464, and RFC 6533's `global` forms), feedback-loop complaints
//! (RFC 5965 ARF) and auto-replies all come back to the bounce mailbox. [`parse`] looks at one
//! raw message and says what it is ([`Kind`]), which VERP tags and original Message-IDs it
//! carries, and the failed recipient, status and diagnostic. It is pure: no I/O, no clock, no
//! database; brief checks the tags' HMAC and finds the delivery itself.
//!
//! mail-parser splits the MIME structure and undoes transfer encodings; the report fields and
//! returned headers are read here, from the bytes, because mail-parser hands a
//! `message/delivery-status` part over as an opaque binary body. mail-parser is never allowed
//! to build a nested message (see `defang`): its nested-message tree is dropped and copied
//! recursively without a depth limit, and a small hostile message overflows the stack.

use std::borrow::Cow;

use mail_parser::{Encoding, MessageParser, MessagePart, MimeHeaders};

use crate::{ledger, status};

/// How many messages deep a report is looked for (a report forwarded as an attachment is
/// still found; a hostile nesting costs at most this many parses).
const MAX_DEPTH: usize = 5;
/// The longest diagnostic kept, in bytes.
const MAX_DIAGNOSTIC: usize = 500;
/// The most tags and the most Message-IDs kept: brief sends one message per recipient, so a
/// real report names one; the cap only bounds hostile input.
const MAX_FOUND: usize = 16;
/// The most returned messages (or header parts) read in the report's container.
const MAX_ORIGINALS: usize = 4;
/// The most MIME boundaries a message may declare (a delivery report with its returned
/// message uses about six).
const MAX_BOUNDARIES: usize = 32;
/// The most bytes from a `boundary` parameter to the end of its header field (RFC 2046 allows
/// 70 for the boundary itself).
const MAX_BOUNDARY_SPAN: usize = 256;

/// What a message that came back to the bounce address says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The address does not exist or will never take mail: `Action: failed` with a 5.x.x status.
    Hard,
    /// A temporary failure: `Action: failed` with a 4.x.x status, or `Action: delayed`.
    Soft,
    /// A permanent refusal that says nothing about the address: a policy or content
    /// rejection (5.7.x, unless the diagnostic says the mailbox does not exist) or a
    /// diagnostic that speaks of blocking, spam, policy or reputation (see [`judge`]). It is
    /// the sender's problem, not the reader's: it never suppresses.
    Blocked,
    /// A reader marked the message as spam: an RFC 5965 feedback report.
    Complaint,
    /// An auto-reply, a human reply, a success notice, or anything not recognised.
    Ignored,
}

impl Kind {
    /// "hard", "soft", "blocked", "complaint", "ignored" (metrics labels and ledger words).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hard => "hard",
            Kind::Soft => "soft",
            Kind::Blocked => "blocked",
            Kind::Complaint => "complaint",
            Kind::Ignored => "ignored",
        }
    }

    /// The kind the ledger records a report of this kind as, against its delivery; none for
    /// [`Kind::Ignored`], which is never recorded. The one mapping between the two.
    pub fn recorded(self) -> Option<ledger::BounceKind> {
        match self {
            Kind::Hard => Some(ledger::BounceKind::Hard),
            Kind::Soft => Some(ledger::BounceKind::Soft),
            Kind::Blocked => Some(ledger::BounceKind::Blocked),
            Kind::Complaint => Some(ledger::BounceKind::Complaint),
            Kind::Ignored => None,
        }
    }

    /// How bad a recipient block is, for picking the worst of several.
    fn rank(self) -> u8 {
        match self {
            Kind::Hard => 4,
            Kind::Complaint => 3,
            Kind::Blocked => 2,
            Kind::Soft => 1,
            Kind::Ignored => 0,
        }
    }
}

/// What [`parse`] found in one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// What the message says.
    pub kind: Kind,
    /// VERP tags found, in order of trust, no duplicates, lowercased: from addresses
    /// `<bounce local part>+TAG@<bounce domain>` (local part and domain matched
    /// case-insensitively) in the report's own `To`, `Delivered-To`, `X-Original-To`,
    /// `Envelope-To` and `X-Envelope-To`; then the report's `Original-Envelope-Id` (the bare
    /// TAG); then a feedback report's `Original-Mail-From`; then the `Return-Path` of the
    /// returned original. Only tags matching `^[a-z0-9][a-z0-9-]{0,63}$` are kept.
    pub tags: Vec<String>,
    /// Message-IDs of the original message, without angle brackets: from the returned message
    /// (`message/rfc822` or `text/rfc822-headers` part, or their RFC 6533 `global` forms), for
    /// a feedback report from the attached original. Never the report's own Message-ID.
    pub original_message_ids: Vec<String>,
    /// The failed recipient (`Final-Recipient`, else `Original-Recipient`; for a complaint
    /// `Original-Rcpt-To`), address only, lowercased.
    pub recipient: Option<String>,
    /// The status code, e.g. "5.1.1": from `Status:`, else the enhanced code in the diagnostic.
    pub status: Option<String>,
    /// The `Diagnostic-Code` text without its type prefix, unfolded, trimmed, at most 500
    /// bytes (cut on a char boundary).
    pub diagnostic: Option<String>,
    /// `Reporting-MTA` without its `dns;` prefix.
    pub reporting_mta: Option<String>,
    /// The report's own Message-ID (no angle brackets), if it has one: what makes "the same
    /// report twice" recognisable.
    pub report_id: Option<String>,
    /// One short phrase saying why, for the CLI to print, e.g. "delivery failed: 5.1.1",
    /// "feedback report: abuse", "auto-reply (Auto-Submitted: auto-replied)".
    pub note: String,
}

/// Classifies `raw`. `bounce_address` is the configured `[bounces] address` (e.g.
/// "bounces@example.org"), used to recognise VERP tags; `None` finds no tags.
pub fn parse(raw: &[u8], bounce_address: Option<&str>) -> Report {
    let mut report = Report {
        kind: Kind::Ignored,
        tags: Vec::new(),
        original_message_ids: Vec::new(),
        recipient: None,
        status: None,
        diagnostic: None,
        reporting_mta: None,
        report_id: None,
        note: String::new(),
    };
    let head = read_block(raw, 0).0;
    if head.is_empty() {
        report.note = "not a mail message".to_string();
        return report;
    }
    let bounce = bounce_address.and_then(BounceAddress::new);
    report.report_id = field(&head, "Message-ID").and_then(message_id);
    add_address_tags(&mut report.tags, &head, bounce.as_ref());

    let Some(found) = find_report(raw, 0) else {
        report.note = auto_reply(raw, &head).unwrap_or_else(|| "not a delivery report".into());
        return report;
    };
    if found.depth > 0 {
        // A report forwarded as an attachment: its own headers were addressed to us too.
        add_address_tags(&mut report.tags, &found.headers, bounce.as_ref());
    }
    let mut mail_from = None;
    let envid = match &found.what {
        What::Status(body) => read_delivery_status(body, &mut report),
        What::Feedback(body) => {
            let fields: Vec<Field> = blocks(body).into_iter().flatten().collect();
            mail_from = field(&fields, "Original-Mail-From").map(str::to_string);
            read_feedback(&fields, &mut report);
            field(&fields, "Original-Envelope-Id").map(str::to_string)
        }
        What::DeclaredStatus => {
            report.note = "delivery report without a status part".into();
            None
        }
        What::DeclaredFeedback => {
            report.kind = Kind::Complaint;
            report.note = "feedback report".into();
            None
        }
    };
    // Without a bounce address brief sent no tags, so an envelope id names none of ours.
    if let (Some(tag), Some(_)) = (envid.map(|e| e.to_ascii_lowercase()), &bounce) {
        if is_tag(&tag) {
            push_unique(&mut report.tags, tag);
        }
    }
    if let (Some(from), Some(b)) = (mail_from, &bounce) {
        for tag in addresses(&from).filter_map(|a| b.tag(a)) {
            push_unique(&mut report.tags, tag);
        }
    }
    for original in &found.originals {
        if let Some(b) = &bounce {
            for value in values(original, "Return-Path") {
                for tag in addresses(value).filter_map(|a| b.tag(a)) {
                    push_unique(&mut report.tags, tag);
                }
            }
        }
        if let Some(id) = field(original, "Message-ID").and_then(message_id) {
            push_unique(&mut report.original_message_ids, id);
        }
    }
    report
}

/// The report part that decided a message's class, in order of precedence.
enum What {
    /// A `message/delivery-status` (or `global-delivery-status`) part's body.
    Status(Vec<u8>),
    /// A `message/feedback-report` part's body.
    Feedback(Vec<u8>),
    /// `multipart/report; report-type=delivery-status` with no status part.
    DeclaredStatus,
    /// `multipart/report; report-type=feedback-report` with no feedback part.
    DeclaredFeedback,
}

impl What {
    /// Rule 1 (delivery status) before rule 2 (feedback); a real part before a bare declaration.
    fn rank(&self) -> u8 {
        match self {
            What::Status(_) => 3,
            What::Feedback(_) => 2,
            What::DeclaredStatus => 1,
            What::DeclaredFeedback => 0,
        }
    }
}

/// The message holding the report part, with what identifies the original.
struct Found {
    /// The report part.
    what: What,
    /// How many messages deep the report sits (0: the message itself).
    depth: usize,
    /// The header fields of the message holding the report.
    headers: Vec<Field>,
    /// The header fields of each returned original (whole message or headers only).
    originals: Vec<Vec<Field>>,
}

/// The report in `raw` (a whole message) or in the messages attached to it, at most
/// [`MAX_DEPTH`] levels down; the best by [`What::rank`], the shallowest on a tie.
fn find_report(raw: &[u8], depth: usize) -> Option<Found> {
    let mut what: Option<What> = None;
    let mut originals = Vec::new();
    let mut attached = Vec::new();
    // The copy and its parse are dropped before the attached messages are searched, so they
    // do not pile up along a nesting path.
    let tame = defang(raw);
    let message = MessageParser::new().parse(&tame)?;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let here = match (ct.ctype(), ct.subtype().unwrap_or("")) {
            ("multipart", "report") => match ct.attribute("report-type") {
                Some(t)
                    if t.eq_ignore_ascii_case("delivery-status")
                        || t.eq_ignore_ascii_case("xlobal-delivery-status") =>
                {
                    Some(What::DeclaredStatus)
                }
                Some(t) if t.eq_ignore_ascii_case("feedback-report") => {
                    Some(What::DeclaredFeedback)
                }
                _ => None,
            },
            ("message", "delivery-status" | "xlobal-delivery-status") => {
                Some(What::Status(body(raw, part).into_owned()))
            }
            ("message", "feedback-report") => Some(What::Feedback(body(raw, part).into_owned())),
            ("message", "xfc822" | "xlobal") => {
                let b = body(raw, part);
                if originals.len() < MAX_ORIGINALS {
                    originals.push(read_block(&b, 0).0);
                }
                attached.push(b);
                None
            }
            ("text", "xfc822-headers") | ("message", "xlobal-headers") => {
                if originals.len() < MAX_ORIGINALS {
                    originals.push(read_block(&body(raw, part), 0).0);
                }
                None
            }
            _ => None,
        };
        if let Some(h) = here {
            if what.as_ref().is_none_or(|w| h.rank() > w.rank()) {
                what = Some(h);
            }
        }
    }
    drop(message);
    drop(tame);
    let mut best = what.map(|what| Found {
        what,
        depth,
        headers: read_block(raw, 0).0,
        originals,
    });
    if best
        .as_ref()
        .is_some_and(|b| matches!(b.what, What::Status(_)))
        || depth >= MAX_DEPTH
    {
        return best;
    }
    for inner in attached {
        if let Some(f) = find_report(&inner, depth + 1) {
            if best.as_ref().is_none_or(|b| f.what.rank() > b.what.rank()) {
                best = Some(f);
            }
        }
    }
    best
}

/// A copy of `raw` that mail-parser parses in bounded time and stack. The bytes keep their
/// offsets, so a part's exact bytes can still be cut from `raw`; a word is disarmed by an `x`
/// for its first letter.
///
/// - Every `rfc822`, `global` and `digest` (any case): `message/rfc822` reads
///   `message/xfc822` and comes back as a flat body that [`find_report`] parses itself, to a
///   bounded depth. mail-parser nests only on those subtypes (or on a part without a type
///   inside `multipart/digest`), and copies and drops its nested trees recursively: a few
///   hundred levels of `message/rfc822` inside a quoted-printable one, some 16 KB, overflow
///   a 2 MB stack.
/// - A `boundary` past the first [`MAX_BOUNDARIES`], or with more than [`MAX_BOUNDARY_SPAN`]
///   bytes to the end of its header field: mail-parser scans to the end of the input for each
///   boundary it cannot find, and compares the whole boundary at every `--`, so many unused
///   or very long boundaries take minutes on a few megabytes.
fn defang(raw: &[u8]) -> Vec<u8> {
    let mut out = raw.to_vec();
    let mut boundaries = 0;
    let mut i = 0;
    while i < out.len() {
        let rest = &out[i..];
        let starts = |word: &[u8]| {
            rest.get(..word.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(word))
        };
        let len = match rest[0] | 0x20 {
            b'r' | b'g' | b'd'
                if [&b"rfc822"[..], b"global", b"digest"]
                    .into_iter()
                    .any(starts) =>
            {
                6
            }
            b'b' if starts(b"boundary") => {
                if boundaries < MAX_BOUNDARIES && field_span(&rest[8..]) <= MAX_BOUNDARY_SPAN {
                    boundaries += 1;
                    i += 8;
                    continue;
                }
                8
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out[i] = b'x';
        i += len;
    }
    out
}

/// How many bytes of `text` there are before its header field ends (a line break not
/// followed by a space or tab); past [`MAX_BOUNDARY_SPAN`] it stops counting.
fn field_span(text: &[u8]) -> usize {
    // One byte past the limit, and one more to see what follows a line break there.
    let text = &text[..text.len().min(MAX_BOUNDARY_SPAN + 2)];
    let mut at = 0;
    while let Some(nl) = memchr::memchr(b'\n', &text[at..]).map(|i| at + i) {
        if !matches!(text.get(nl + 1), Some(b' ' | b'\t')) {
            return nl;
        }
        at = nl + 1;
    }
    text.len()
}

/// A part's body: the untouched bytes of `raw` where it was sent as it is (the defanged copy
/// has the same offsets), else mail-parser's decoding of it.
fn body<'a>(raw: &'a [u8], part: &MessagePart<'_>) -> Cow<'a, [u8]> {
    if part.encoding == Encoding::None {
        if let Some(bytes) = raw.get(part.offset_body as usize..part.offset_end as usize) {
            return Cow::Borrowed(bytes);
        }
    }
    Cow::Owned(part.contents().to_vec())
}

/// Reads a delivery-status body into `report`: the per-message fields, and the worst
/// recipient block with its fields. Returns the `Original-Envelope-Id`.
fn read_delivery_status(body: &[u8], report: &mut Report) -> Option<String> {
    let blocks = blocks(body);
    let first = |name: &str| blocks.iter().find_map(|b| field(b, name));
    report.reporting_mta = first("Reporting-MTA").and_then(mta_name);
    let envid = first("Original-Envelope-Id").map(str::to_string);

    let mut worst: Option<(Verdict, &[Field])> = None;
    for block in &blocks {
        let is_recipient = ["Final-Recipient", "Original-Recipient", "Action", "Status"]
            .iter()
            .any(|name| field(block, name).is_some());
        if !is_recipient {
            continue;
        }
        let verdict = judge(block);
        if worst
            .as_ref()
            .is_none_or(|(w, _)| verdict.kind.rank() > w.kind.rank())
        {
            worst = Some((verdict, block));
        }
    }
    let Some((verdict, block)) = worst else {
        report.note = "delivery report without recipients".into();
        return envid;
    };
    report.kind = verdict.kind;
    report.note = verdict.note;
    report.status = verdict.status;
    report.diagnostic = verdict.diagnostic;
    report.recipient = field(block, "Final-Recipient")
        .or_else(|| field(block, "Original-Recipient"))
        .and_then(address_field);
    envid
}

/// What one recipient block of a delivery-status part says.
struct Verdict {
    /// The class of the block.
    kind: Kind,
    /// The phrase for [`Report::note`].
    note: String,
    /// The enhanced status code, from `Status` or else the diagnostic.
    status: Option<String>,
    /// The diagnostic text without its type.
    diagnostic: Option<String>,
}

/// Classifies one recipient block: `Action` decides, the status class (or, lacking one, the
/// diagnostic's SMTP reply code) tells hard from soft, and [`permanent`] tells a hard bounce
/// from a refusal that is no verdict on the address (blocked).
fn judge(block: &[Field]) -> Verdict {
    let diagnostic = field(block, "Diagnostic-Code").and_then(|d| {
        let d = cut(strip_type(d), MAX_DIAGNOSTIC).trim_end();
        (!d.is_empty()).then(|| d.to_string())
    });
    let status = field(block, "Status")
        .and_then(|s| enhanced_code(cut(s, 100)))
        .or_else(|| diagnostic.as_deref().and_then(enhanced_code));
    let reply = diagnostic.as_deref().and_then(reply_code);
    let code = status.as_deref().or(reply);
    let class = code.and_then(|c| c.bytes().next());
    let action = field(block, "Action").map(first_word);
    // A failure without a usable code is taken as soft: suppressing a reader on a malformed
    // report would be the worse mistake.
    let failed = if class == Some(b'5') {
        permanent(status.as_deref(), diagnostic.as_deref())
    } else {
        Kind::Soft
    };
    let failed_note = match failed {
        Kind::Blocked => format!("delivery blocked: {}", code.unwrap_or("no status")),
        _ => format!("delivery failed: {}", code.unwrap_or("no status")),
    };
    let (kind, note) = match action.as_deref() {
        Some("failed") => (failed, failed_note),
        Some("delayed") => match code {
            Some(c) => (Kind::Soft, format!("delivery delayed: {c}")),
            None => (Kind::Soft, "delivery delayed".into()),
        },
        Some(a @ ("delivered" | "relayed" | "expanded")) => {
            (Kind::Ignored, format!("success notice (Action: {a})"))
        }
        // No action at all: a 4xx or 5xx code still says the delivery failed.
        Some("") | None if matches!(class, Some(b'4' | b'5')) => (failed, failed_note),
        Some("") | None => (Kind::Ignored, "delivery report without an action".into()),
        Some(other) => (Kind::Ignored, format!("unknown delivery action: {other}")),
    };
    Verdict {
        kind,
        note,
        status,
        diagnostic,
    }
}

/// What a permanent (5.x.x) failure says: [`Kind::Hard`] when it is about the address,
/// [`Kind::Blocked`] when it is about the message or its sender. In this order:
///
/// - A status 5.1.7 or 5.1.8 (RFC 3463: the sender's address is bad) is about our sender.
/// - A diagnostic that says the mailbox or user does not exist ([`NO_SUCH_MAILBOX`]) is about
///   the address, whatever the status (some servers answer "5.7.1 ... User unknown"), unless
///   it names the sender ("sender domain does not exist").
/// - A 5.7.x status (security or policy), or a diagnostic that names the sender or speaks of
///   blocking, spam, policy, reputation, block lists or content ([`POLICY_WORDS`]: "5.7.1
///   Service unavailable; client host blocked using Spamhaus", "5.7.9 Message not accepted
///   for policy reasons", "554 5.0.0 rejected as spam") is a policy or content rejection: the
///   same address would take another message, or this one from a better-reputed sender.
/// - The rest (5.1.x bad mailbox, 5.2.x mailbox disabled, "550 No such user", ...) is hard.
///
/// Wrongly blocked costs a reader nothing (the next issue tries again, and staff see the
/// count in the summary); wrongly hard drops a reader for good. So the mailbox phrases are few
/// and plain, and whatever speaks of policy stays blocked.
fn permanent(status: Option<&str>, diagnostic: Option<&str>) -> Kind {
    let text = diagnostic.unwrap_or("").to_ascii_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if matches!(status, Some("5.1.7" | "5.1.8")) {
        return Kind::Blocked;
    }
    let about_sender = text.contains("sender");
    if says(NO_SUCH_MAILBOX) && !about_sender {
        return Kind::Hard;
    }
    let policy_status = status.is_some_and(|s| s.starts_with("5.7."));
    if policy_status || about_sender || says(POLICY_WORDS) {
        Kind::Blocked
    } else {
        Kind::Hard
    }
}

/// Phrases (lowercase) by which a diagnostic says the mailbox or user does not exist.
const NO_SUCH_MAILBOX: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such mailbox",
    "no such recipient",
    "unknown recipient",
    "recipient unknown",
    "recipient not found",
    "mailbox not found",
    "mailbox does not exist",
    "user does not exist",
    "address does not exist",
    "account does not exist",
    "does not exist",
    "doesn't exist",
    "no mailbox here",
    "invalid recipient",
    "invalid mailbox",
    "unknown mailbox",
];

/// Words (lowercase) by which a diagnostic says the message or its sender was refused on
/// policy, reputation or content.
const POLICY_WORDS: &[&str] = &[
    "block",
    "blacklist",
    "denylist",
    "dnsbl",
    "spam",
    "policy",
    "policies",
    "reputation",
    "content",
    "unsolicited",
    "junk",
    "phish",
    "virus",
    "malware",
];

/// Reads a feedback report's fields into `report`.
fn read_feedback(fields: &[Field], report: &mut Report) {
    let kind = field(fields, "Feedback-Type").map(first_word);
    report.kind = match kind.as_deref() {
        // not-spam takes a complaint back; auth-failure (RFC 6591) is a DMARC failure report
        // about the sending domain, not a reader's complaint.
        Some("not-spam" | "auth-failure") => Kind::Ignored,
        _ => Kind::Complaint,
    };
    report.note = match kind.as_deref() {
        Some(k) if !k.is_empty() => format!("feedback report: {k}"),
        _ => "feedback report".into(),
    };
    report.recipient = field(fields, "Original-Rcpt-To").and_then(address_field);
    report.reporting_mta = field(fields, "Reporting-MTA").and_then(mta_name);
}

/// Why a message that is no report was sent automatically, if it says so.
fn auto_reply(raw: &[u8], head: &[Field]) -> Option<String> {
    if let Some(v) = field(head, "Auto-Submitted") {
        let v = first_word(v);
        if v != "no" {
            return Some(if v.is_empty() {
                "auto-reply (Auto-Submitted)".into()
            } else {
                format!("auto-reply (Auto-Submitted: {v})")
            });
        }
    }
    for name in ["X-Autoreply", "X-Autorespond"] {
        if field(head, name).is_some() {
            return Some(format!("auto-reply ({name})"));
        }
    }
    if let Some(v) = field(head, "Precedence").map(first_word) {
        if matches!(v.as_str(), "auto_reply" | "bulk" | "junk") {
            return Some(format!("auto-reply (Precedence: {v})"));
        }
    }
    // The subject may be an RFC 2047 encoded word (Outlook encodes non-ASCII subjects):
    // mail-parser decodes it. Headers only, so no nesting can arise.
    let parsed = MessageParser::new().parse_headers(raw);
    let subject = parsed
        .as_ref()
        .and_then(|m| m.subject())
        .or_else(|| field(head, "Subject"))?;
    let subject = subject.trim_start().as_bytes();
    ["Out of Office", "Automatic reply", "Auto:", "Autoreply"]
        .into_iter()
        .find(|p| subject.len() >= p.len() && subject[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
        .map(|p| format!("auto-reply (Subject: {p})"))
}

/// The configured bounce address, split for matching VERP addresses against it.
struct BounceAddress {
    /// The local part, lowercased (`bounces`).
    local: String,
    /// The domain, lowercased.
    domain: String,
}

impl BounceAddress {
    /// Splits `address`; `None` if it is not `local@domain`.
    fn new(address: &str) -> Option<Self> {
        let (local, domain) = addresses(address).next()?.rsplit_once('@')?;
        (!local.is_empty() && !domain.is_empty()).then(|| Self {
            local: local.to_ascii_lowercase(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    /// The valid VERP tag of `address`, if it is `local+TAG@domain`.
    fn tag(&self, address: &str) -> Option<String> {
        let (local, domain) = address.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return None;
        }
        let (base, tag) = local.split_once('+')?;
        let tag = tag.to_ascii_lowercase();
        (base.eq_ignore_ascii_case(&self.local) && is_tag(&tag)).then_some(tag)
    }
}

/// Adds the tags of the envelope-ish headers of a report, in order of trust.
fn add_address_tags(tags: &mut Vec<String>, head: &[Field], bounce: Option<&BounceAddress>) {
    let Some(bounce) = bounce else {
        return;
    };
    for name in [
        "To",
        "Delivered-To",
        "X-Original-To",
        "Envelope-To",
        "X-Envelope-To",
    ] {
        for value in values(head, name) {
            for tag in addresses(value).filter_map(|a| bounce.tag(a)) {
                push_unique(tags, tag);
            }
        }
    }
}

/// Whether `s` (already lowercase) has the shape of a VERP tag brief makes.
fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Appends `item` unless it is there already or the list is full.
fn push_unique(list: &mut Vec<String>, item: String) {
    if list.len() < MAX_FOUND && !list.contains(&item) {
        list.push(item);
    }
}

/// The words of a header value that look like addresses (`local@domain`), whatever the
/// syntax around them: display names, angle brackets, comments, `rfc822;` type prefixes.
fn addresses(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c.is_whitespace() || "<>,;:\"()[]".contains(c))
        .filter(|w| w.contains('@'))
}

/// A Message-ID without angle brackets: the text between the first `<` and the next `>`,
/// or the first word when there are no brackets.
fn message_id(value: &str) -> Option<String> {
    let id = match value.split_once('<') {
        Some((_, rest)) => rest.split('>').next().unwrap_or(""),
        None => value.split_whitespace().next().unwrap_or(""),
    };
    let id = id.trim();
    (!id.is_empty() && id.len() <= 998 && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

/// The address of a recipient field (`rfc822; a@b`, `<a@b>`, `a@b`), lowercased.
fn address_field(value: &str) -> Option<String> {
    let word = strip_type(value).split_whitespace().next()?;
    let address = word.trim_matches(|c| c == '<' || c == '>');
    (!address.is_empty() && address.len() <= 320).then(|| address.to_lowercase())
}

/// An MTA field (`dns; mx.example.net`) without its type.
fn mta_name(value: &str) -> Option<String> {
    let name = cut(strip_type(value), 255).trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// `value` without a leading `type;` (`dns;`, `rfc822;`, `smtp;`, `X-Postfix;`): a type is
/// one word, so a `;` later in free text is left alone.
fn strip_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest))
            if !kind.trim().is_empty()
                && kind
                    .trim()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            rest.trim()
        }
        _ => value.trim(),
    }
}

/// The first word of a field value, lowercased: `Action: failed (x)` gives "failed".
fn first_word(value: &str) -> String {
    let word = value
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(')
        .find(|w| !w.is_empty())
        .unwrap_or("");
    cut(word, 32).to_ascii_lowercase()
}

/// The first RFC 3463 enhanced status code in `text`, as written (see [`status::find`]).
fn enhanced_code(text: &str) -> Option<String> {
    status::find(text).map(|(code, _)| code.to_string())
}

/// The SMTP reply code a diagnostic starts with (`550`, or `550` of `550-5.1.1`).
fn reply_code(diagnostic: &str) -> Option<&str> {
    let b = diagnostic.as_bytes();
    (b.len() >= 3
        && matches!(b[0], b'2'..=b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b.get(3).is_none_or(|c| !c.is_ascii_digit()))
    .then(|| &diagnostic[..3])
}

/// `s` cut to at most `max` bytes, on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One `Name: value` field of a header block or of a report's field block.
struct Field {
    /// The name as written.
    name: String,
    /// The value, unfolded (each fold one space), control characters turned into spaces
    /// (values are printed on terminals), trimmed.
    value: String,
}

/// The value of the first field called `name` (any case).
fn field<'a>(fields: &'a [Field], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| f.value.as_str())
}

/// The values of every field called `name` (any case), in order.
fn values<'a>(fields: &'a [Field], name: &'a str) -> impl Iterator<Item = &'a str> {
    fields
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(name))
        .map(|f| f.value.as_str())
}

/// The field blocks of a report part (RFC 3464 and 5965 bodies are blocks of header-like
/// fields separated by blank lines); empty blocks are skipped.
fn blocks(text: &[u8]) -> Vec<Vec<Field>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let (fields, next) = read_block(text, pos);
        if !fields.is_empty() {
            out.push(fields);
        }
        if next <= pos {
            break;
        }
        pos = next;
    }
    out
}

/// The fields of the block starting at `pos`, up to a blank line (a message's header when
/// `pos` is 0), and the position after that line. A line that is neither a field nor a
/// continuation (an mbox `From ` line, garbage) is skipped, and so are its continuations.
fn read_block(text: &[u8], mut pos: usize) -> (Vec<Field>, usize) {
    let mut fields: Vec<(&[u8], Vec<u8>)> = Vec::new();
    let mut open = false;
    while pos < text.len() {
        let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i);
        let line = trim_end(&text[pos..end]);
        pos = (end + 1).min(text.len());
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let (true, Some((_, value))) = (open, fields.last_mut()) {
                value.push(b' ');
                value.extend_from_slice(line.trim_ascii_start());
            }
            continue;
        }
        open = false;
        if let Some(colon) = memchr::memchr(b':', line) {
            let name = trim_end(&line[..colon]);
            if !name.is_empty() && name.len() <= 100 && name.iter().all(|&b| b.is_ascii_graphic()) {
                fields.push((name, line[colon + 1..].to_vec()));
                open = true;
            }
        }
    }
    let fields = fields
        .into_iter()
        .map(|(name, value)| Field {
            name: String::from_utf8_lossy(name).into_owned(),
            value: String::from_utf8_lossy(&value)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
                .trim()
                .to_string(),
        })
        .collect();
    (fields, pos)
}

/// `line` without trailing spaces, tabs and the CR of a CRLF.
fn trim_end(line: &[u8]) -> &[u8] {
    line.trim_ascii_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNCES: Option<&str> = Some("bounces@news.example.org");

    #[test]
    fn every_kind_but_ignored_is_recorded_under_its_own_word() {
        for kind in [Kind::Hard, Kind::Soft, Kind::Blocked, Kind::Complaint] {
            assert_eq!(kind.recorded().map(|k| k.as_str()), Some(kind.as_str()));
        }
        assert_eq!(Kind::Ignored.recorded(), None);
    }

    /// A minimal delivery report around `status` (the delivery-status body).
    fn dsn(status: &str) -> String {
        format!(
            "From: MAILER-DAEMON@mx.example.net\n\
             To: bounces+a1-ff@news.example.org\n\
             Message-ID: <report-1@mx.example.net>\n\
             Subject: Undelivered Mail Returned to Sender\n\
             Auto-Submitted: auto-replied\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\
             \n\
             --B\n\
             Content-Type: text/plain\n\
             \n\
             Your message could not be delivered.\n\
             \n\
             --B\n\
             Content-Type: message/delivery-status\n\
             \n\
             {status}\n\
             --B\n\
             Content-Type: text/rfc822-headers\n\
             \n\
             Return-Path: <bounces+a1-ff@news.example.org>\n\
             Message-ID: <orig-1@news.example.org>\n\
             Subject: BRIEF\n\
             \n\
             --B--\n"
        )
    }

    #[test]
    fn folded_fields_are_unfolded() {
        let raw = dsn("Reporting-MTA: dns;\n mx.example.net\n\n\
                       Final-Recipient: rfc822;\n\tgone@example.net\n\
                       Action: failed\n\
                       Status: 5.1.1\n\
                       Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>:\n    Recipient address\n\t rejected: User unknown\n");
        let r = parse(raw.as_bytes(), BOUNCES);
        assert_eq!(r.kind, Kind::Hard);
        assert_eq!(r.reporting_mta.as_deref(), Some("mx.example.net"));
        assert_eq!(r.recipient.as_deref(), Some("gone@example.net"));
        assert_eq!(
            r.diagnostic.as_deref(),
            Some("550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown")
        );
        assert_eq!(r.note, "delivery failed: 5.1.1");
    }

    #[test]
    fn lf_and_crlf_give_the_same_report() {
        let lf = dsn("Reporting-MTA: dns; mx.example.net\n\n\
                      Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.1.1\n");
        let crlf = lf.replace('\n', "\r\n");
        let a = parse(lf.as_bytes(), BOUNCES);
        let b = parse(crlf.as_bytes(), BOUNCES);
        assert_eq!(a, b);
        assert_eq!(a.kind, Kind::Hard);
        assert_eq!(a.tags, ["a1-ff"]);
        assert_eq!(a.original_message_ids, ["orig-1@news.example.org"]);
        assert_eq!(a.report_id.as_deref(), Some("report-1@mx.example.net"));
    }

    #[test]
    fn garbage_is_not_a_mail_message() {
        for raw in [
            &b""[..],
            b"\0\x01\xff\xfegarbage",
            b"hello world\n",
            b"\n\nFrom: a@b\n",
            b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01",
        ] {
            let r = parse(raw, BOUNCES);
            assert_eq!(r.kind, Kind::Ignored, "{raw:?}");
            assert_eq!(r.note, "not a mail message", "{raw:?}");
            assert!(r.tags.is_empty() && r.report_id.is_none());
        }
    }

    #[test]
    fn a_tag_with_invalid_characters_is_skipped() {
        let raw = "To: bounces+bad_tag!@news.example.org, bounces+-lead@news.example.org\n\
                   Delivered-To: bounces+ok-1@news.example.org\n\
                   X-Original-To: bounces+@news.example.org\n\
                   Envelope-To: bounces+\u{e9}t\u{e9}@news.example.org\n\
                   X-Envelope-To: <bounces+OK-2@news.example.org>\n\
                   Subject: hi\n\nbody\n";
        let r = parse(raw.as_bytes(), BOUNCES);
        assert_eq!(r.tags, ["ok-1", "ok-2"]);
        let long = format!("To: bounces+{}@news.example.org\n\nx\n", "a".repeat(65));
        assert!(parse(long.as_bytes(), BOUNCES).tags.is_empty());
        let max = format!("To: bounces+{}@news.example.org\n\nx\n", "a".repeat(64));
        assert_eq!(parse(max.as_bytes(), BOUNCES).tags.len(), 1);
    }

    #[test]
    fn the_bounce_address_matches_in_any_case() {
        let raw = b"To: \"Brief\" <BOUNCES+D42-7F3A9C01E2@News.Example.ORG>\n\
                    Delivered-To: bounces+other@elsewhere.example\n\
                    Delivered-To: notbounces+x1@news.example.org\n\nhi\n";
        for address in ["bounces@news.example.org", "Bounces@NEWS.example.org"] {
            let r = parse(raw, Some(address));
            assert_eq!(r.tags, ["d42-7f3a9c01e2"], "{address}");
        }
        assert!(parse(raw, None).tags.is_empty());
        assert!(parse(raw, Some("not an address")).tags.is_empty());
    }

    #[test]
    fn the_worst_recipient_block_wins() {
        let raw = dsn("Reporting-MTA: dns; mx.example.net\n\n\
                       Final-Recipient: rfc822; ok@example.net\nAction: delivered\nStatus: 2.0.0\n\n\
                       Final-Recipient: rfc822; slow@example.net\nAction: delayed\nStatus: 4.4.1\n\n\
                       Final-Recipient: rfc822; Gone@Example.net\nAction: failed\nStatus: 5.1.1\n\
                       Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n\
                       Final-Recipient: rfc822; later@example.net\nAction: failed\nStatus: 5.2.1\n");
        let r = parse(raw.as_bytes(), BOUNCES);
        assert_eq!(r.kind, Kind::Hard);
        assert_eq!(r.recipient.as_deref(), Some("gone@example.net"));
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.diagnostic.as_deref(), Some("550 5.1.1 user unknown"));

        let soft = dsn("Final-Recipient: rfc822; ok@example.net\nAction: delivered\nStatus: 2.0.0\n\n\
                        Final-Recipient: rfc822; slow@example.net\nAction: delayed\nStatus: 4.4.1\n");
        let r = parse(soft.as_bytes(), BOUNCES);
        assert_eq!(
            (r.kind, r.note.as_str()),
            (Kind::Soft, "delivery delayed: 4.4.1")
        );
        assert_eq!(r.recipient.as_deref(), Some("slow@example.net"));
    }

    #[test]
    fn a_failure_without_status_uses_the_diagnostic() {
        let enhanced = dsn("Final-Recipient: rfc822; a@example.net\nAction: failed\n\
                            Diagnostic-Code: smtp; 550-5.1.1 no such user\n");
        let r = parse(enhanced.as_bytes(), BOUNCES);
        assert_eq!((r.kind, r.status.as_deref()), (Kind::Hard, Some("5.1.1")));

        let basic = dsn("Final-Recipient: rfc822; a@example.net\nAction: failed\n\
                         Diagnostic-Code: smtp; 452 mailbox busy\n");
        let r = parse(basic.as_bytes(), BOUNCES);
        assert_eq!((r.kind, r.status.as_deref()), (Kind::Soft, None));
        assert_eq!(r.note, "delivery failed: 452");

        let basic = dsn("Final-Recipient: rfc822; a@example.net\nAction: failed\n\
                         Status: bogus\nDiagnostic-Code: smtp; 554 rejected\n");
        assert_eq!(parse(basic.as_bytes(), BOUNCES).kind, Kind::Hard);

        let nothing = dsn("Final-Recipient: rfc822; a@example.net\nAction: failed\n");
        let r = parse(nothing.as_bytes(), BOUNCES);
        assert_eq!(
            (r.kind, r.note.as_str()),
            (Kind::Soft, "delivery failed: no status")
        );
    }

    /// The class of a failed recipient block with `status` and `diagnostic`.
    fn failed(status: Option<&str>, diagnostic: Option<&str>) -> (Kind, String) {
        let mut block = String::from("Final-Recipient: rfc822; a@example.net\nAction: failed\n");
        if let Some(s) = status {
            block.push_str(&format!("Status: {s}\n"));
        }
        if let Some(d) = diagnostic {
            block.push_str(&format!("Diagnostic-Code: smtp; {d}\n"));
        }
        let r = parse(dsn(&block).as_bytes(), BOUNCES);
        (r.kind, r.note)
    }

    #[test]
    fn policy_and_content_refusals_are_blocked_not_hard() {
        for (status, diagnostic) in [
            (Some("5.7.1"), None),
            (
                Some("5.7.1"),
                Some("550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"),
            ),
            (
                Some("5.7.1"),
                Some("550-5.7.1 Our system has detected that this message is likely unsolicited mail"),
            ),
            (
                Some("5.7.9"),
                Some("554 5.7.9 Message not accepted for policy reasons"),
            ),
            (Some("5.7.26"), Some("550 5.7.26 unauthenticated email")),
            (Some("5.7.0"), Some("550 5.7.0 Local policy violation")),
            (Some("5.7.1"), Some("550 5.7.1 Relaying denied")),
            (
                Some("5.0.0"),
                Some("554 5.0.0 Message rejected as spam by Content Filtering"),
            ),
            (None, Some("554 rejected: poor sender reputation")),
            (None, Some("550 Your IP is on our blocklist")),
            (Some("5.1.8"), Some("553 5.1.8 Domain of sender address does not exist")),
            (
                Some("5.1.0"),
                Some("550 5.1.0 Sender rejected: sender address does not exist"),
            ),
        ] {
            let (kind, note) = failed(status, diagnostic);
            assert_eq!(kind, Kind::Blocked, "{status:?} {diagnostic:?}");
            assert!(note.starts_with("delivery blocked: "), "{note}");
        }
    }

    #[test]
    fn address_level_refusals_stay_hard_whatever_the_status() {
        for (status, diagnostic) in [
            (
                Some("5.7.1"),
                Some("550 5.7.1 <a@example.net>: Recipient address rejected: User unknown"),
            ),
            (
                Some("5.7.1"),
                Some("550 5.7.1 The email account that you tried to reach does not exist"),
            ),
            (Some("5.1.1"), Some("550 5.1.1 user unknown")),
            (Some("5.1.1"), None),
            (Some("5.2.1"), Some("550 5.2.1 The email account is disabled")),
            (None, Some("550 No such user")),
            (
                Some("5.1.10"),
                Some("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
            ),
            (Some("5.0.0"), Some("550 mailbox unavailable")),
        ] {
            let (kind, note) = failed(status, diagnostic);
            assert_eq!(kind, Kind::Hard, "{status:?} {diagnostic:?}");
            assert!(note.starts_with("delivery failed: "), "{note}");
        }
        // A policy deferral (4.7.x) is a soft bounce, as before: it is no final refusal.
        assert_eq!(
            failed(
                Some("4.7.0"),
                Some("421 4.7.0 deferred due to spam complaints")
            )
            .0,
            Kind::Soft
        );
        // A hard block beside a blocked one in the same report: the hard one decides.
        let two = dsn(
            "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.7.1\n\n\
                       Final-Recipient: rfc822; b@example.net\nAction: failed\nStatus: 5.1.1\n",
        );
        let r = parse(two.as_bytes(), BOUNCES);
        assert_eq!(
            (r.kind, r.recipient.as_deref()),
            (Kind::Hard, Some("b@example.net"))
        );
    }

    #[test]
    fn not_spam_feedback_is_ignored() {
        let report = |kind: &str| {
            format!(
                "From: feedback@arf.example.com\nTo: bounces@news.example.org\n\
                 Content-Type: multipart/report; report-type=feedback-report; boundary=F\n\n\
                 --F\nContent-Type: text/plain\n\nA report.\n\
                 --F\nContent-Type: message/feedback-report\n\n\
                 Feedback-Type: {kind}\nVersion: 1\nOriginal-Rcpt-To: <Reader@Example.com>\n\
                 Original-Mail-From: <bounces+a2-00@news.example.org>\n\
                 --F\nContent-Type: text/rfc822-headers\n\n\
                 Message-ID: <orig-2@news.example.org>\n\n--F--\n"
            )
        };
        let r = parse(report("not-spam").as_bytes(), BOUNCES);
        assert_eq!(
            (r.kind, r.note.as_str()),
            (Kind::Ignored, "feedback report: not-spam")
        );
        let r = parse(report("auth-failure").as_bytes(), BOUNCES);
        assert_eq!(r.kind, Kind::Ignored);
        for kind in ["abuse", "fraud", "other", "Abuse"] {
            let r = parse(report(kind).as_bytes(), BOUNCES);
            assert_eq!(r.kind, Kind::Complaint, "{kind}");
            assert_eq!(r.note, format!("feedback report: {}", kind.to_lowercase()));
            assert_eq!(r.recipient.as_deref(), Some("reader@example.com"));
            assert_eq!(r.tags, ["a2-00"]);
            assert_eq!(r.original_message_ids, ["orig-2@news.example.org"]);
        }
    }

    #[test]
    fn a_status_part_nested_in_a_forward_is_found() {
        let inner = dsn("Reporting-MTA: dns; mx.example.net\n\n\
                         Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.1.1\n");
        let raw = format!(
            "From: helpdesk@example.org\nTo: bounces@news.example.org\nMessage-ID: <fwd@x>\n\
             Content-Type: multipart/mixed; boundary=OUT\n\n\
             --OUT\nContent-Type: text/plain\n\nForwarding a bounce.\n\
             --OUT\nContent-Type: message/rfc822\n\n{inner}\n--OUT--\n"
        );
        let r = parse(raw.as_bytes(), BOUNCES);
        assert_eq!(r.kind, Kind::Hard);
        assert_eq!(r.tags, ["a1-ff"]);
        assert_eq!(r.original_message_ids, ["orig-1@news.example.org"]);
        assert_eq!(r.report_id.as_deref(), Some("fwd@x"));
    }

    #[test]
    fn global_delivery_status_is_read() {
        let raw = b"From: postmaster@example.jp\nTo: bounces+g1@news.example.org\n\
                    Content-Type: multipart/report; report-type=global-delivery-status; boundary=G\n\n\
                    --G\nContent-Type: message/global-delivery-status\n\n\
                    Reporting-MTA: dns; mx.example.jp\n\n\
                    Final-Recipient: utf-8; \xe7\x94\xb0\xe4\xb8\xad@example.jp\n\
                    Action: failed\nStatus: 5.1.1\n\n\
                    --G\nContent-Type: message/global-headers\n\n\
                    Message-ID: <g-orig@news.example.org>\n\n--G--\n";
        let r = parse(raw, BOUNCES);
        assert_eq!(r.kind, Kind::Hard);
        assert_eq!(r.recipient.as_deref(), Some("\u{7530}\u{4e2d}@example.jp"));
        assert_eq!(r.original_message_ids, ["g-orig@news.example.org"]);
        assert_eq!(r.tags, ["g1"]);
    }

    #[test]
    fn a_base64_status_part_is_decoded() {
        // "Final-Recipient: rfc822; b@example.net\nAction: failed\nStatus: 5.7.1\n"
        let raw = "To: bounces@news.example.org\n\
                   Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n\
                   --B\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n\
                   RmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGJAZXhhbXBsZS5uZXQKQWN0aW9uOiBmYWlsZWQKU3Rh\n\
                   dHVzOiA1LjcuMQo=\n--B--\n";
        let r = parse(raw.as_bytes(), BOUNCES);
        // 5.7.1 without a diagnostic: a policy refusal, no verdict on the address.
        assert_eq!(
            (r.kind, r.status.as_deref()),
            (Kind::Blocked, Some("5.7.1"))
        );
        assert_eq!(r.recipient.as_deref(), Some("b@example.net"));
    }

    #[test]
    fn auto_replies_are_recognised() {
        let cases = [
            (
                "Auto-Submitted: auto-replied\nSubject: hi",
                "auto-reply (Auto-Submitted: auto-replied)",
            ),
            ("Auto-Submitted: no\nSubject: hi", "not a delivery report"),
            ("X-Autoreply: yes\nSubject: hi", "auto-reply (X-Autoreply)"),
            (
                "X-Autorespond: yes\nSubject: hi",
                "auto-reply (X-Autorespond)",
            ),
            (
                "Precedence: bulk\nSubject: hi",
                "auto-reply (Precedence: bulk)",
            ),
            ("Precedence: list\nSubject: hi", "not a delivery report"),
            (
                "Subject: OUT OF OFFICE: back Monday",
                "auto-reply (Subject: Out of Office)",
            ),
            ("Subject: Auto: away", "auto-reply (Subject: Auto:)"),
            (
                "Subject: =?utf-8?q?Automatic_reply=3A_caf=C3=A9?=",
                "auto-reply (Subject: Automatic reply)",
            ),
            ("Subject: Re: BRIEF", "not a delivery report"),
        ];
        for (headers, note) in cases {
            let raw = format!(
                "From: a@example.com\nTo: bounces+t1@news.example.org\n{headers}\n\nbody\n"
            );
            let r = parse(raw.as_bytes(), BOUNCES);
            assert_eq!(
                (r.kind, r.note.as_str()),
                (Kind::Ignored, note),
                "{headers}"
            );
            assert_eq!(r.tags, ["t1"]);
        }
    }

    #[test]
    fn enhanced_codes_are_found_and_not_in_longer_numbers() {
        assert_eq!(enhanced_code("5.1.10 x").as_deref(), Some("5.1.10"));
        assert_eq!(enhanced_code("550-5.1.1 x").as_deref(), Some("5.1.1"));
        assert_eq!(
            enhanced_code("from 192.0.2.1 (4.16.55.1) then 4.7.0").as_deref(),
            Some("4.7.0")
        );
        assert_eq!(enhanced_code("5.1.1234"), None);
        assert_eq!(enhanced_code("3.1.1"), None);
        assert_eq!(enhanced_code("5."), None);
        assert_eq!(reply_code("550-5.1.1"), Some("550"));
        assert_eq!(reply_code("5500"), None);
        assert_eq!(
            strip_type("550 5.1.10 RESOLVER; x"),
            "550 5.1.10 RESOLVER; x"
        );
        assert_eq!(strip_type("X-Postfix; connect"), "connect");
    }

    #[test]
    fn the_diagnostic_is_cut_on_a_char_boundary() {
        let long = format!(
            "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.0.0\n\
                            Diagnostic-Code: smtp; 550 {}\n",
            "\u{e9}".repeat(400)
        );
        let r = parse(dsn(&long).as_bytes(), BOUNCES);
        let d = r.diagnostic.unwrap();
        assert!(d.len() <= 500 && d.len() >= 498, "{}", d.len());
        assert!(d.starts_with("550 \u{e9}"));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // mail-parser alone overflows the stack on these (see `defang`).
        let mut wrapped = String::from("Subject: x\n\nbody\n");
        for _ in 0..3000 {
            wrapped = format!("Content-Type: message/rfc822\n\n{wrapped}");
        }
        let r = parse(wrapped.as_bytes(), BOUNCES);
        assert_eq!(r.note, "not a delivery report");

        let mut qp = String::new();
        for _ in 0..2000 {
            qp.push_str("Content-Type: message/rfc822\n\n");
        }
        let raw = format!(
            "To: bounces@news.example.org\nContent-Type: message/rfc822\n\
             Content-Transfer-Encoding: quoted-printable\n\n{qp}Subject: x\n\nbody\n"
        );
        assert_eq!(parse(raw.as_bytes(), BOUNCES).kind, Kind::Ignored);

        let mut digest = String::new();
        for i in 0..3000 {
            digest.push_str(&format!(
                "Content-Type: multipart/digest; boundary=\"b{i}\"\n\n--b{i}\n\n"
            ));
        }
        assert_eq!(parse(digest.as_bytes(), BOUNCES).kind, Kind::Ignored);
    }

    #[test]
    fn defang_disarms_surplus_and_long_boundaries() {
        let mut raw = String::new();
        for i in 0..40 {
            raw.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}\n"));
        }
        let tame = String::from_utf8(defang(raw.as_bytes())).unwrap();
        assert_eq!(tame.matches("boundary=").count(), MAX_BOUNDARIES);
        assert_eq!(tame.matches("xoundary=").count(), 40 - MAX_BOUNDARIES);

        let long = format!(
            "Content-Type: multipart/mixed; boundary=\"{}\"\n\n",
            "-".repeat(300)
        );
        assert!(String::from_utf8(defang(long.as_bytes()))
            .unwrap()
            .contains("xoundary"));
        let folded =
            "Content-Type: multipart/report;\n boundary=\"abc\";\n report-type=delivery-status\n\n";
        assert_eq!(defang(folded.as_bytes()), folded.as_bytes());
        let continued = format!(
            "Content-Type: multipart/mixed; boundary=a;\n x=\"{}\"\n\n",
            "y".repeat(300)
        );
        assert!(String::from_utf8(defang(continued.as_bytes()))
            .unwrap()
            .contains("xoundary"));
        assert_eq!(field_span(b"abc\n x\ny"), 6);
        assert_eq!(field_span(b"abc"), 3);
    }

    #[test]
    fn unused_boundaries_cost_one_scan_each_at_most() {
        // Each multipart whose boundary never comes makes mail-parser scan to the end; past
        // the cap they are plain parts. A 1 MB report with 20,000 of them parses quickly.
        let mut raw = String::from(
            "To: bounces+u1@news.example.org\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n\
             --B\nContent-Type: message/delivery-status\n\n\
             Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n\n",
        );
        for i in 0..20_000 {
            raw.push_str(&format!(
                "--B\nContent-Type: multipart/mixed; boundary=\"q{i}\"\n\nx\n"
            ));
        }
        let r = parse(raw.as_bytes(), BOUNCES);
        assert_eq!(
            (r.kind, r.tags.as_slice()),
            (Kind::Hard, &["u1".to_string()][..])
        );
    }

    #[test]
    fn defang_keeps_offsets() {
        let raw = b"Content-Type: Message/RFC822; x=GLOBAL\n\ndigest rfc82";
        let tame = defang(raw);
        assert_eq!(tame.len(), raw.len());
        assert_eq!(
            &tame[..],
            b"Content-Type: Message/xFC822; x=xLOBAL\n\nxigest rfc82"
        );
    }
}
