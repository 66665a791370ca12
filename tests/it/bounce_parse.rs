//! The bounce parser on each saved report in `tests/fixtures/bounces/` (written as the named
//! MTAs write them): parsed in full, in its own line endings and the other ones, and every
//! prefix of each parsed without a panic.

use brief::bounce::{parse, Kind, Report};

const BOUNCES: Option<&str> = Some("bounces@news.example.org");

fn read(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/bounces/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `raw` with the other line endings: CRLF made LF, or LF made CRLF.
fn other_line_endings(raw: &[u8]) -> Vec<u8> {
    if raw.windows(2).any(|w| w == b"\r\n") {
        raw.iter().copied().filter(|&b| b != b'\r').collect()
    } else {
        raw.iter()
            .flat_map(|&b| {
                if b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![b]
                }
            })
            .collect()
    }
}

/// What one fixture must give; `diagnostic` is a prefix.
struct Expect {
    kind: Kind,
    tags: &'static [&'static str],
    ids: &'static [&'static str],
    recipient: Option<&'static str>,
    status: Option<&'static str>,
    diagnostic: Option<&'static str>,
    reporting_mta: Option<&'static str>,
    report_id: Option<&'static str>,
    note: &'static str,
}

fn check(name: &str, want: Expect) -> Report {
    let raw = read(name);
    let got = parse(&raw, BOUNCES);
    assert_eq!(got.kind, want.kind, "{name}: {got:#?}");
    assert_eq!(got.tags, want.tags, "{name}");
    assert_eq!(got.original_message_ids, want.ids, "{name}");
    assert_eq!(got.recipient.as_deref(), want.recipient, "{name}");
    assert_eq!(got.status.as_deref(), want.status, "{name}");
    match (got.diagnostic.as_deref(), want.diagnostic) {
        (Some(g), Some(w)) => assert!(g.starts_with(w), "{name}: {g:?} does not start {w:?}"),
        (g, w) => assert_eq!(g, w, "{name}"),
    }
    assert_eq!(got.reporting_mta.as_deref(), want.reporting_mta, "{name}");
    assert_eq!(got.report_id.as_deref(), want.report_id, "{name}");
    assert_eq!(got.note, want.note, "{name}");
    assert_eq!(
        parse(&other_line_endings(&raw), BOUNCES),
        got,
        "{name} in the other line endings"
    );
    // Without a bounce address the same report, less the tags.
    let untagged = parse(&raw, None);
    assert!(untagged.tags.is_empty(), "{name}");
    assert_eq!(
        Report {
            tags: got.tags.clone(),
            ..untagged
        },
        got,
        "{name} without a bounce address"
    );
    got
}

#[test]
fn postfix_hard() {
    check(
        "postfix-hard.eml",
        Expect {
            kind: Kind::Hard,
            tags: &["d42-7f3a9c01e2"],
            ids: &["c2021-07.r1a2b3c@news.example.org"],
            recipient: Some("gone@example.net"),
            status: Some("5.1.1"),
            diagnostic: Some(
                "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in \
                 virtual mailbox table",
            ),
            reporting_mta: Some("mail.example.net"),
            report_id: Some("20210713091407.4GPH2w6Qm8z9vQr@mail.example.net"),
            note: "delivery failed: 5.1.1",
        },
    );
}

#[test]
fn postfix_headers_only_with_envid() {
    check(
        "postfix-hdrs.eml",
        Expect {
            kind: Kind::Hard,
            tags: &["d43-0a1b2c3d4e"],
            ids: &["c2021-07.r9f8e7d@news.example.org"],
            recipient: Some("old.reader@example.net"),
            status: Some("5.1.1"),
            diagnostic: Some("550 5.1.1 <old.reader@example.net>: Recipient address rejected"),
            reporting_mta: Some("smtp.example.net"),
            report_id: Some("20210713092031.4GPJ0b6n2Tz4wXy@smtp.example.net"),
            note: "delivery failed: 5.1.1",
        },
    );
}

#[test]
fn postfix_delayed() {
    check(
        "postfix-delayed.eml",
        Expect {
            kind: Kind::Soft,
            tags: &["d4a-19c0ffee42"],
            ids: &["c2021-07.r5d6e7f@news.example.org"],
            recipient: Some("slow@example.net"),
            status: Some("4.4.1"),
            diagnostic: Some("connect to mx.example.net[203.0.113.25]:25: Connection timed out"),
            reporting_mta: Some("mail.example.org"),
            report_id: Some("20210713131411.4GPK5t0Hq1z8kLm@mail.example.org"),
            note: "delivery delayed: 4.4.1",
        },
    );
}

#[test]
fn exim_hard() {
    check(
        "exim-hard.eml",
        Expect {
            kind: Kind::Hard,
            tags: &["d46-5e6f7a8b9c"],
            ids: &["c2021-07.r0a0b0c@news.example.org"],
            recipient: Some("nobody@example.com"),
            status: Some("5.0.0"),
            diagnostic: Some("550 No such user"),
            reporting_mta: Some("mx.example.com"),
            report_id: Some("E1m3FqN-0002Kc-9V@mx.example.com"),
            note: "delivery failed: 5.0.0",
        },
    );
}

#[test]
fn exchange_hard() {
    check(
        "exchange-hard.eml",
        Expect {
            kind: Kind::Hard,
            tags: &["d47-a1b2c3d4e5"],
            ids: &["c2021-07.r4c5d6e@news.example.org"],
            recipient: Some("m.garcia@contoso.com"),
            status: Some("5.1.10"),
            diagnostic: Some(
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address \
                 lookup",
            ),
            reporting_mta: Some("EX01.contoso.com"),
            report_id: Some("0a7b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d@EX01.contoso.com"),
            note: "delivery failed: 5.1.10",
        },
    );
}

#[test]
fn gmail_hard() {
    let r = check(
        "gmail-hard.eml",
        Expect {
            kind: Kind::Hard,
            tags: &["d48-0f1e2d3c4b"],
            ids: &["c2021-07.r7a8b9c@news.example.org"],
            recipient: Some("nobody.here.1987@gmail.com"),
            status: Some("5.1.1"),
            diagnostic: Some(
                "550-5.1.1 The email account that you tried to reach does not exist. Please try \
                 550-5.1.1 double-checking",
            ),
            reporting_mta: Some("googlemail.com"),
            report_id: Some("60ed5a62.1c69fb81.6a4f1.8f3bGMR@mx.google.com"),
            note: "delivery failed: 5.1.1",
        },
    );
    assert!(r.diagnostic.unwrap().ends_with("- gsmtp"));
}

#[test]
fn yahoo_soft() {
    check(
        "yahoo-soft.eml",
        Expect {
            kind: Kind::Soft,
            tags: &["d49-77aa88bb99"],
            ids: &["c2021-07.r3c4d5e@news.example.org"],
            recipient: Some("jane.reader@aol.com"),
            status: Some("4.7.0"),
            diagnostic: Some(
                "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to \
                 unexpected volume",
            ),
            reporting_mta: Some("sonic301-2.consmr.mail.bf2.yahoo.com"),
            report_id: Some("1626210859.4711.a1b2c3@sonic301-2.consmr.mail.bf2.yahoo.com"),
            note: "delivery failed: 4.7.0",
        },
    );
}

#[test]
fn yahoo_complaint() {
    check(
        "yahoo-complaint.eml",
        Expect {
            kind: Kind::Complaint,
            tags: &["d44-1122aabbcc"],
            ids: &["c2021-07.r2b3c4d@news.example.org"],
            recipient: Some("reader@yahoo.com"),
            status: None,
            diagnostic: None,
            reporting_mta: Some("mail.yahoo.com"),
            report_id: Some("1626367264.60342.arf-7c1d@mta1007.arf.mail.bf1.yahoo.com"),
            note: "feedback report: abuse",
        },
    );
}

#[test]
fn vacation() {
    check(
        "vacation.eml",
        Expect {
            kind: Kind::Ignored,
            tags: &["d45-3c4d5e6f70"],
            ids: &[],
            recipient: None,
            status: None,
            diagnostic: None,
            reporting_mta: None,
            report_id: Some("b81d6f2a9c3e4d1b8a7f6e5d4c3b2a19@example.com"),
            note: "auto-reply (Auto-Submitted: auto-replied)",
        },
    );
}

#[test]
fn human_reply() {
    check(
        "human-reply.eml",
        Expect {
            kind: Kind::Ignored,
            tags: &["d4b-aa11bb22cc"],
            ids: &[],
            recipient: None,
            status: None,
            diagnostic: None,
            reporting_mta: None,
            report_id: Some("CAF3k9x2Lq8mZ1nR7vT4wY6uB0cD5eG@mail.example.net"),
            note: "not a delivery report",
        },
    );
}

#[test]
fn success_notice() {
    check(
        "success.eml",
        Expect {
            kind: Kind::Ignored,
            tags: &["d4c-5566778899"],
            ids: &["c2021-07.r1c2d3e@news.example.org"],
            recipient: Some("lucia@example.net"),
            status: Some("2.0.0"),
            diagnostic: Some("250 2.0.0 Ok: queued as 4GPHC83nTrz2wXv"),
            reporting_mta: Some("relay.example.org"),
            report_id: Some("20210713091415.4GPHC71yZ3z7pQw@relay.example.org"),
            note: "success notice (Action: delivered)",
        },
    );
}

#[test]
fn message_id_only() {
    check(
        "message-id-only.eml",
        Expect {
            kind: Kind::Hard,
            tags: &[],
            ids: &["c2021-07.r0f1e2d@news.example.org"],
            recipient: Some("prof.emeritus@example.edu"),
            status: Some("5.1.1"),
            diagnostic: Some("550 5.1.1 <prof.emeritus@example.edu>... User unknown"),
            reporting_mta: Some("mail.example.edu"),
            report_id: Some("202107130914.16D9EKXq021877@mail.example.edu"),
            note: "delivery failed: 5.1.1",
        },
    );
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/tests/fixtures/bounces", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 12, "{names:?}");
    names.into_iter().map(|n| (n.clone(), read(&n))).collect()
}

#[test]
fn every_prefix_of_every_fixture_parses() {
    for (name, raw) in fixtures() {
        for len in (0..=raw.len()).step_by(97).chain([raw.len()]) {
            let r = parse(&raw[..len], BOUNCES);
            assert!(!r.note.is_empty(), "{name}[..{len}]");
            assert!(r.tags.len() <= 16 && r.original_message_ids.len() <= 16);
            assert!(r.diagnostic.as_ref().is_none_or(|d| d.len() <= 500));
        }
    }
}

#[test]
fn damaged_fixtures_parse() {
    // A fixed pseudo-random sequence, so a failure can be replayed.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (name, raw) in fixtures() {
        for round in 0..40 {
            let mut bytes = raw.clone();
            for _ in 0..1 + next() % 8 {
                let at = (next() % bytes.len() as u64) as usize;
                match next() % 4 {
                    0 => bytes[at] = next() as u8,
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, b"\n:;<>-\r"[(next() % 7) as usize]),
                    _ => {
                        let end = (at + (next() % 200) as usize).min(bytes.len());
                        bytes.drain(at..end);
                    }
                }
            }
            let r = parse(&bytes, BOUNCES);
            assert!(!r.note.is_empty(), "{name} round {round}");
        }
    }
}
