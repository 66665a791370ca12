//! The MIME message, parsed back: structure, headers once each, and no header injection.

use brief::message::{Kind, MessageTemplate, Recipient};
use brief::render::Rendered;
use brief::token::TokenKey;
use mail_parser::{HeaderName, HeaderValue, MessageParser, MimeHeaders};

use crate::render::example;

fn key() -> TokenKey {
    TokenKey::new(brief::config::Secret::new("s".repeat(32)))
}

fn template_for(r: &Rendered, cfg: &brief::config::Config, kind: Kind) -> MessageTemplate {
    let date = chrono::DateTime::from_timestamp(1_627_030_800, 0).unwrap();
    MessageTemplate::new(
        r,
        &cfg.newsletter,
        "2021-07".parse().unwrap(),
        date,
        &cfg.server.public_url,
        &key(),
        kind,
    )
}

fn count(raw: &[u8], name: &str) -> usize {
    let head = &raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()];
    String::from_utf8_lossy(head)
        .split("\r\n")
        .filter(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .count()
}

#[test]
fn message_structure_and_headers() {
    let (cfg, issue, r, _) = example();
    let t = template_for(&r, &cfg, Kind::Campaign);
    let addr = "Ana@Example.org".parse().unwrap();
    let raw = t.to_bytes(Recipient {
        address: &addr,
        name: Some("Ana García"),
    });
    assert!(
        raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'),
        "CRLF line ends only"
    );
    for h in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "MIME-Version",
    ] {
        assert_eq!(count(&raw, h), 1, "{h} exactly once");
    }
    let m = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        m.subject(),
        Some("BRIEF | U.S. – Mexico Binational Institutional Life | 07.23.21")
    );
    let to = m.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("Ana@Example.org"));
    assert_eq!(to.name(), Some("Ana García"));
    let ct = m.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    let parts: Vec<String> = m.parts[1..]
        .iter()
        .map(|p| {
            let c = p.content_type().unwrap();
            format!("{}/{}", c.ctype(), c.subtype().unwrap())
        })
        .collect();
    assert_eq!(parts, ["text/plain", "text/html"], "text part first");
    // Stable Message-ID in the sender's domain, the same for any casing of the address.
    let id = m.message_id().unwrap();
    assert!(id.ends_with("@news.example.org"), "{id}");
    let again = t.message_id(&"ana@example.org".parse().unwrap());
    assert_eq!(id, again);
    // The ledger stores the ids of a campaign's messages when it starts, so a resume with a later
    // brief must compute the same ones: `k` and 128 bits of HMAC-SHA256 under the token key of
    // "brief-message-id-v1\0ISSUE\0address\0", the address lowercased, in hex. Keyed, so that
    // nobody can compute a reader's id from the issue, the address and the domain.
    assert_eq!(
        id,
        "brief.2021-07.ke2b22d5ee29a61c3269d8f255ea7c706@news.example.org"
    );
    let unsub = t.unsubscribe_url(&addr);
    assert!(
        unsub.starts_with("https://news.example.org/unsubscribe/"),
        "{unsub}"
    );
    match m.header(HeaderName::ListUnsubscribe).unwrap() {
        HeaderValue::Address(a) => {
            let urls: Vec<_> = a.iter().filter_map(|x| x.address()).collect();
            assert_eq!(urls, [unsub.as_str()]);
        }
        other => panic!("List-Unsubscribe parsed as {other:?}"),
    }
    assert_eq!(
        m.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(m
        .header_raw("List-Id")
        .unwrap()
        .contains("<brief.news.example.org>"));
    // The unsubscribe link is visible in both parts, and both carry the content.
    let text = m.body_text(0).unwrap();
    let html = m.body_html(0).unwrap();
    assert!(text.contains(&unsub), "text part has the unsubscribe URL");
    assert!(
        html.contains(&format!("href=\"{unsub}\"")),
        "html part links it"
    );
    assert!(text.contains(&issue.entries[2].title));
    assert!(html.contains("Rosa Icela Rodríguez"));
}

#[test]
fn personalisation_changes_only_the_personal_parts() {
    let (cfg, _, r, _) = example();
    let t = template_for(&r, &cfg, Kind::Campaign);
    let a = t.to_bytes(Recipient {
        address: &"a@example.org".parse().unwrap(),
        name: None,
    });
    let b = t.to_bytes(Recipient {
        address: &"b@example.org".parse().unwrap(),
        name: None,
    });
    let pa = MessageParser::default().parse(&a).unwrap();
    let pb = MessageParser::default().parse(&b).unwrap();
    assert_ne!(pa.message_id(), pb.message_id());
    let strip = |s: &str, addr: &str| s.replace(&t.unsubscribe_url(&addr.parse().unwrap()), "URL");
    assert_eq!(
        strip(&pa.body_html(0).unwrap(), "a@example.org"),
        strip(&pb.body_html(0).unwrap(), "b@example.org")
    );
}

#[test]
fn test_sends_are_marked_and_have_their_own_message_id() {
    let (cfg, _, r, _) = example();
    let camp = template_for(&r, &cfg, Kind::Campaign);
    let test = template_for(&r, &cfg, Kind::Test { nonce: 7 });
    let addr = "a@example.org".parse().unwrap();
    let m = test.to_bytes(Recipient {
        address: &addr,
        name: None,
    });
    let m = MessageParser::default().parse(&m).unwrap();
    assert!(m.subject().unwrap().starts_with("[TEST] BRIEF |"));
    assert_ne!(camp.message_id(&addr), test.message_id(&addr));
}

#[test]
fn cr_lf_in_subject_title_or_name_cannot_add_a_header() {
    let w = crate::support::World::new();
    w.write(
        "content/2021-07/issue.toml",
        "date = 2021-07-23\nsubject = \"Hello\\r\\nBcc: evil@example.com\"\n",
    );
    w.write(
        "content/2021-07/05-x.md",
        "+++\ntitle = \"Title\\r\\nX-Evil: 1\"\ndate = 2021-07-08\nlink = \"https://example.org/\"\n+++\n\n## A\n\nB\n",
    );
    w.write(
        "subscribers.csv",
        "email,name\n\"eve@example.org\",\"Eve\r\nCc: evil@example.com\"\n",
    );
    let out = w.brief().args(["send", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let files = w.outbox("2021-07");
    assert_eq!(files.len(), 1);
    let raw = std::fs::read(&files[0]).unwrap();
    let m = MessageParser::default().parse(&raw).unwrap();
    assert!(m.header("Bcc").is_none() && m.header("Cc").is_none() && m.header("X-Evil").is_none());
    assert_eq!(m.subject(), Some("Hello Bcc: evil@example.com"));
    assert_eq!(
        m.to().unwrap().first().unwrap().name(),
        Some("Eve Cc: evil@example.com")
    );
    assert!(m.body_text(0).unwrap().contains("Title X-Evil: 1"));
}

#[test]
fn python_email_reads_the_preview_eml() {
    let w = crate::support::World::new();
    let out = w
        .brief()
        .args(["preview", "--issue", "2021-07", "--out", "pv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let script = crate::support::repo().join("tests/fixtures/check_eml.py");
    let py = std::process::Command::new("python3")
        .arg(script)
        .arg(w.path("pv/2021-07.eml"))
        .output()
        .expect("python3 must be installed (it checks the message with an independent parser)");
    let stdout = String::from_utf8_lossy(&py.stdout);
    assert!(
        py.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert!(
        stdout.contains("ok multipart/alternative text/plain text/html"),
        "{stdout}"
    );
}
