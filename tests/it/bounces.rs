//! Bounces and complaints: VERP envelope senders on a real SMTP conversation, reports written
//! as real MTAs write them taken in through `brief bounces import`, the webhook and an IMAP
//! mailbox, and the suppression that follows.

use std::collections::HashMap;
use std::time::Duration;

use brief::address::AddressKey;
use brief::ledger::Reason;

use crate::support::daemon::Running;
use crate::support::smtp_server::{Rule, SmtpServer};
use crate::support::World;

const BOUNCES: &str = "bounces@news.example.org";
const TOKEN: &str = "webhook-token-0123456789";
/// The end of the example issues' subjects.
const JULY: &str = "07.23.21";

fn reader(i: usize) -> String {
    format!("r{i:02}@example.org")
}

/// A world of `n` readers sending over SMTP to `port`, with `[bounces]` (and `extra` keys in
/// that table).
fn world(port: u16, n: usize, extra: &str) -> World {
    let w = World::with_config(&format!(
        "[bounces]\naddress = \"{BOUNCES}\"\nwebhook_token_env = \"BRIEF_TEST_WEBHOOK\"\n{extra}\n"
    ));
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         helo_name = \"news.example.org\"\ntimeout = \"5s\""
    ));
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &text.replace(
            "[delivery]\ndatabase = \"data/brief.db\"\n",
            "[delivery]\ndatabase = \"data/brief.db\"\nconcurrency = 2\nretry_min = \"50ms\"\nretry_max = \"100ms\"\n",
        ),
    );
    let mut csv = String::from("email,name\n");
    for i in 0..n {
        csv.push_str(&format!("{},Reader {i}\n", reader(i)));
    }
    w.write("subscribers.csv", &csv);
    w
}

/// Runs `brief ARGS` to its end off the async runtime, so the test server keeps serving.
async fn brief(w: &World, args: &[&str]) -> std::process::Output {
    let mut cmd = w.brief();
    cmd.args(args).env("BRIEF_TEST_WEBHOOK", TOKEN);
    tokio::task::spawn_blocking(move || cmd.output().expect("run brief"))
        .await
        .unwrap()
}

/// What the server took for each reader of the campaign whose subject ends in `date` (as
/// `%m.%d.%y`): the envelope sender of every copy, and the Message-ID of the last.
fn envelopes(server: &SmtpServer, date: &str) -> HashMap<String, (Vec<String>, String)> {
    let mut out: HashMap<String, (Vec<String>, String)> = HashMap::new();
    for m in server.messages() {
        let parsed = mail_parser::MessageParser::default()
            .parse(&m.data)
            .unwrap();
        let subject = parsed.subject().unwrap_or("");
        if subject.starts_with("[TEST]") || !subject.ends_with(date) {
            continue;
        }
        let mid = parsed.message_id().unwrap().to_string();
        for r in &m.rcpt_to {
            let e = out.entry(r.clone()).or_default();
            e.0.push(m.mail_from.clone());
            e.1 = mid.clone();
        }
    }
    out
}

/// Each reader's messages leave with an envelope sender of its own, `bounces+TAG@`, and the
/// retry of a deferred one keeps its tag; a test send uses the plain bounce address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reader_gets_a_verp_sender_of_its_own_and_retries_keep_it() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::rcpt(&reader(1))
            .reply("451 4.3.0 try again later")
            .times(1),
    );
    let w = world(server.port(), 4, "");

    let sent = brief(&w, &["send", "--yes"]).await;
    let test = brief(&w, &["send", "--test", "--to", "editor@example.org"]).await;

    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    assert_eq!(test.status.code(), Some(0), "{test:?}");
    let got = envelopes(&server, JULY);
    let mut tags = std::collections::HashSet::new();
    for i in 0..4 {
        let (senders, _) = &got[&reader(i)];
        let first = &senders[0];
        let tag = first
            .strip_prefix("bounces+")
            .and_then(|s| s.strip_suffix("@news.example.org"))
            .unwrap_or_else(|| panic!("not a VERP sender: {first}"));
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{tag}"
        );
        assert!(tags.insert(tag.to_string()), "{tag} twice");
        assert!(senders.iter().all(|s| s == first), "{senders:?}");
    }
    // The deferred reader's first attempt (refused at RCPT, so not among the messages) and
    // its retry went out from the same sender.
    let sender = format!("MAIL FROM:<{}>", got[&reader(1)].0[0]);
    let attempts = server
        .commands()
        .iter()
        .filter(|c| c.starts_with(&sender))
        .count();
    assert_eq!(attempts, 2, "{:?}", server.commands());
    let test_copy = server
        .messages()
        .into_iter()
        .find(|m| m.rcpt_to.iter().any(|r| r == "editor@example.org"))
        .unwrap();
    assert_eq!(test_copy.mail_from, BOUNCES);
    // This relay offers no DSN: MAIL FROM carries no DSN parameters.
    assert!(
        server.messages().iter().all(|m| m.mail_params.is_empty()),
        "{:?}",
        server.commands()
    );
}

/// A relay that offers DSN gets `RET=HDRS` and the delivery's tag as `ENVID` on each campaign
/// message (so its bounces return headers only and name the delivery); a test send, which is
/// no delivery, carries neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_offering_dsn_gets_ret_hdrs_and_the_tag_as_envid() {
    let server = SmtpServer::builder().dsn().start().await;
    let w = world(server.port(), 3, "");
    let sent = brief(&w, &["send", "--yes"]).await;
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    let test = brief(&w, &["send", "--test", "--to", "editor@example.org"]).await;
    assert_eq!(test.status.code(), Some(0), "{test:?}");
    let mut readers = 0;
    for m in server.messages() {
        if m.rcpt_to == ["editor@example.org"] {
            assert_eq!(m.mail_from, BOUNCES);
            assert_eq!(m.mail_params, "", "a test send names no delivery");
            continue;
        }
        let tag = m
            .mail_from
            .strip_prefix("bounces+")
            .and_then(|s| s.strip_suffix("@news.example.org"))
            .unwrap_or_else(|| panic!("not a VERP sender: {}", m.mail_from));
        assert_eq!(m.mail_params, format!("RET=HDRS ENVID={tag}"));
        readers += 1;
    }
    assert_eq!(readers, 3);
}

/// After one report of each kind: the metrics count one of each, and reader `i` is suppressed
/// for `want[i]`.
fn assert_one_of_each(metrics: &str, w: &World, want: &[Option<Reason>]) {
    for kind in ["hard", "soft", "complaint", "ignored"] {
        let sample = format!("brief_bounces_total{{kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&sample), "{sample} in {metrics}");
    }
    let l = w.ledger();
    for (i, reason) in want.iter().enumerate() {
        let got = l.suppression(&AddressKey::from_text(&reader(i))).unwrap();
        assert_eq!(got, *reason, "{}", reader(i));
    }
}

/// The fixture report `name` made to be about reader `i`'s delivery in `sent` (what
/// [`envelopes`] found: its VERP sender and Message-ID).
fn report_for(sent: &HashMap<String, (Vec<String>, String)>, i: usize, name: &str) -> String {
    let (senders, mid) = &sent[&reader(i)];
    fixture(name, Some(&senders[0]), mid)
}

/// A fixture report (`tests/fixtures/bounces/NAME.eml`) made to be about a real delivery: every
/// VERP sender in it becomes `sender` (when given) and its `Original-Envelope-Id` that
/// sender's tag; every Message-ID below its own header (the returned original's) becomes
/// `message_id`. The report's own headers, Message-ID included, stay as written.
fn fixture(name: &str, sender: Option<&str>, message_id: &str) -> String {
    let path = crate::support::repo()
        .join("tests/fixtures/bounces")
        .join(format!("{name}.eml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut out = String::with_capacity(text.len());
    let mut in_headers = true;
    for line in text.split_inclusive('\n') {
        let mut line = line.to_string();
        let eol = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
        if let Some(sender) = sender {
            let tag = sender
                .strip_prefix("bounces+")
                .and_then(|s| s.split_once('@'))
                .map(|(t, _)| t)
                .unwrap();
            while let Some(at) = line.find("bounces+") {
                let end = line[at..].find('@').map(|e| at + e).unwrap();
                line.replace_range(at..end, &format!("BOUNCES_PLUS{tag}"));
            }
            line = line.replace("BOUNCES_PLUS", "bounces+");
            if line
                .to_ascii_lowercase()
                .starts_with("original-envelope-id:")
            {
                line = format!("Original-Envelope-Id: {tag}{eol}");
            }
        }
        if line.trim().is_empty() {
            in_headers = false;
        }
        let lower = line.to_ascii_lowercase();
        if !in_headers && lower.starts_with("message-id:") {
            line = format!("Message-ID: <{message_id}>{eol}");
        }
        out.push_str(&line);
    }
    out
}

/// Every kind of report, as Postfix, Exim, Exchange, Gmail and Yahoo write them, taken in by
/// `brief bounces import` from `.eml` files, a Maildir and an mbox: hard bounces and complaints
/// suppress, soft ones count, auto-replies, human replies, success notices and forged tags
/// change nothing, a report taken twice counts once, and the next campaign skips whom they
/// suppressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_of_every_kind_take_effect_through_import_and_the_next_campaign_skips_them() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), 12, "soft_limit = 2");
    w.copy_issue("2021-08");
    let sent = brief(&w, &["send", "--yes", "--issue", "2021-07"]).await;
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    let july = envelopes(&server, JULY);
    let about = |i: usize, name: &str| report_for(&july, i, name);
    // A forged tag: r11's with its hash changed.
    let forged = {
        let (senders, mid) = &july[&reader(11)];
        let real = &senders[0];
        let at = real.find('@').unwrap();
        let last = &real[at - 1..at];
        let flipped = format!(
            "{}{}{}",
            &real[..at - 1],
            if last == "0" { "1" } else { "0" },
            &real[at..]
        );
        // Its Message-ID is unknown too, so nothing can name the delivery.
        let _ = mid;
        fixture("postfix-hard", Some(&flipped), "nobody@news.example.org")
    };
    let (_, mid8) = &july[&reader(8)];
    let files = [
        ("in/postfix-hard.eml", about(0, "postfix-hard")),
        ("in/exim-hard.eml", about(1, "exim-hard")),
        ("maildir/new/1.host", about(2, "exchange-hard")),
        ("maildir/cur/2.host:2,S", about(3, "gmail-hard")),
        ("maildir/new/3.host", about(4, "yahoo-complaint")),
        ("in/yahoo-soft.eml", about(5, "yahoo-soft")),
        ("in/vacation.eml", about(6, "vacation")),
        ("in/human-reply.eml", about(7, "human-reply")),
        (
            "in/message-id-only.eml",
            fixture("message-id-only", None, mid8),
        ),
        ("in/postfix-hdrs.eml", about(9, "postfix-hdrs")),
        ("in/success.eml", about(11, "success")),
        ("in/forged.eml", forged),
    ];
    for (path, text) in &files {
        w.write(path, text);
    }
    // r10's delay notice, in an mbox, quoted as mboxrd quotes body lines.
    let delayed = about(10, "postfix-delayed").replace("\r\n", "\n");
    w.write(
        "in/delayed.mbox",
        &format!("From MAILER-DAEMON Tue Jul 13 09:14:07 2021\n{delayed}\n"),
    );
    std::fs::create_dir_all(w.path("maildir/tmp")).unwrap();

    let mut args: Vec<String> = vec!["bounces".into(), "import".into()];
    for f in [
        "in/postfix-hard.eml",
        "in/exim-hard.eml",
        "maildir",
        "in/yahoo-soft.eml",
        "in/vacation.eml",
        "in/human-reply.eml",
        "in/message-id-only.eml",
        "in/postfix-hdrs.eml",
        "in/success.eml",
        "in/forged.eml",
        "in/delayed.mbox",
        // The same report again.
        "in/postfix-hard.eml",
    ] {
        args.push(w.path(f).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let import = brief(&w, &args).await;
    let out = String::from_utf8_lossy(&import.stdout).to_string();
    assert_eq!(import.status.code(), Some(0), "{import:?}");
    let line = |file: &str| -> String {
        out.lines()
            .filter(|l| l.contains(file))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (file, said) in [
        (
            "postfix-hard.eml",
            "hard bounce 5.1.1 for r00@example.org (issue 2021-07): recorded; the address is now bounced",
        ),
        ("postfix-hard.eml", "already recorded"),
        ("yahoo-soft.eml", "soft bounce"),
        ("yahoo-soft.eml", "stays on the list"),
        ("vacation.eml", "ignored: auto-reply"),
        ("human-reply.eml", "ignored"),
        ("success.eml", "ignored"),
        ("forged.eml", "naming no delivery of ours"),
        ("message-id-only.eml", "for r08@example.org"),
        ("delayed.mbox#1", "soft bounce"),
    ] {
        assert!(line(file).contains(said), "{file}: {said} in {out}");
    }
    assert!(
        out.contains("14 message(s): 6 hard, 2 soft, 1 complaint(s) recorded (7 address(es) suppressed); 1 already recorded, 1 naming no delivery of ours, 3 ignored"),
        "{out}"
    );

    let list = brief(&w, &["subscribers", "list"]).await;
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    let state = |i: usize| {
        list.lines()
            .find(|l| l.starts_with(&format!("{}\t", reader(i))))
            .unwrap_or_else(|| panic!("{list}"))
            .to_string()
    };
    for i in [0, 1, 2, 3, 8, 9] {
        assert!(state(i).contains("\tbounced\t"), "{}", state(i));
        assert!(state(i).contains("\thard 5."), "{}", state(i));
    }
    assert!(state(4).contains("\tcomplained\t"), "{}", state(4));
    assert!(state(4).contains("\tcomplaint"), "{}", state(4));
    for i in [5, 6, 7, 10, 11] {
        assert!(state(i).contains("\tactive\t"), "{}", state(i));
    }
    assert!(state(5).contains("\tsoft 4."), "{}", state(5));

    let report = brief(&w, &["report", "--issue", "2021-07", "--format", "jsonl"]).await;
    let report = String::from_utf8_lossy(&report.stdout).to_string();
    let row = |i: usize| -> serde_json::Value {
        report
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["address"] == reader(i))
            .unwrap()
    };
    let bounce = row(0)["bounce"].as_str().unwrap().to_string();
    assert!(bounce.starts_with("hard 5.1.1: 550 5.1.1"), "{bounce}");
    assert!(bounce.ends_with("(mail.example.net)"), "{bounce}");
    assert_eq!(row(6)["bounce"], "");

    // The next issue skips every suppressed reader; the others get it once.
    let august = brief(&w, &["send", "--yes", "--issue", "2021-08"]).await;
    assert_eq!(august.status.code(), Some(0), "{august:?}");
    let aug = envelopes(&server, &date_of(&w, "2021-08"));
    let mut got: Vec<String> = aug.keys().cloned().collect();
    got.sort();
    let want: Vec<String> = [5, 6, 7, 10, 11].iter().map(|&i| reader(i)).collect();
    assert_eq!(got, want);

    // A second soft bounce for r05, in another campaign, reaches the limit of 2; a second
    // (different) delay report for r10 in the same campaign does not.
    w.write("in/soft-again.eml", &report_for(&aug, 5, "yahoo-soft"));
    let again = about(10, "postfix-delayed").replacen("Message-Id: <", "Message-Id: <another.", 1);
    w.write("in/delayed-again.eml", &again);
    let second = brief(
        &w,
        &[
            "bounces",
            "import",
            &w.path("in/soft-again.eml").display().to_string(),
            &w.path("in/delayed-again.eml").display().to_string(),
        ],
    )
    .await;
    let second_out = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(
        second_out
            .contains("for r05@example.org (issue 2021-08): recorded; the address is now bounced"),
        "{second_out}"
    );
    assert!(
        second_out.contains(
            "for r10@example.org (issue 2021-07): recorded; the address stays on the list"
        ),
        "{second_out}"
    );
}

/// The date part of an issue's subject, as the world's `date_format` prints it.
fn date_of(w: &World, issue: &str) -> String {
    let out = w
        .brief()
        .args(["preview", "--issue", issue, "--out"])
        .arg(w.path("pv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let eml = std::fs::read(w.path(&format!("pv/{issue}.eml"))).unwrap();
    let m = mail_parser::MessageParser::default().parse(&eml).unwrap();
    m.subject().unwrap().rsplit(' ').next().unwrap().to_string()
}

/// The webhook: a report posted with the token is recorded and counted in the metrics; one
/// without it, or with a wrong one, is refused and changes nothing; a vacation reply posted
/// with the token changes nothing; a body past 1 MiB is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_takes_reports_with_its_token_only() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), 4, "soft_limit = 1");
    let sent = brief(&w, &["send", "--yes"]).await;
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    let july = envelopes(&server, JULY);
    let about = |i: usize, name: &str| report_for(&july, i, name);
    let hard = about(0, "postfix-hard");
    let complaint = about(1, "yahoo-complaint");
    let vacation = about(2, "vacation");
    let soft = about(3, "yahoo-soft");
    let w2 = std::sync::Arc::new(w);
    let w = w2.clone();
    let (anonymous, wrong, recorded, complained, ignored, twice, soft, huge, metrics) =
        tokio::task::spawn_blocking(move || {
            let d = Running::start(&w, &[("BRIEF_TEST_WEBHOOK", TOKEN)]);
            let bearer = format!("Bearer {TOKEN}");
            let post = |auth: Option<&str>, body: &[u8]| {
                let mut h = vec![("Content-Type", "message/rfc822")];
                if let Some(a) = auth {
                    h.push(("Authorization", a));
                }
                d.post("/webhooks/bounce", &h, body)
            };
            let anonymous = post(None, hard.as_bytes());
            let wrong = post(Some("Bearer nope"), hard.as_bytes());
            let recorded = post(Some(&bearer), hard.as_bytes());
            let complained = post(Some(&bearer), complaint.as_bytes());
            let ignored = post(Some(&bearer), vacation.as_bytes());
            let twice = post(Some(&bearer), hard.as_bytes());
            let soft = post(Some(&bearer), soft.as_bytes());
            let huge = post(Some(&bearer), &vec![b'a'; 1024 * 1024 + 10]);
            let metrics = d.get("/metrics").body;
            assert_eq!(d.stop().status.code(), Some(0));
            (
                anonymous, wrong, recorded, complained, ignored, twice, soft, huge, metrics,
            )
        })
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(recorded.status, 200, "{}", recorded.body);
    let v: serde_json::Value = serde_json::from_str(&recorded.body).unwrap();
    assert_eq!(v["kind"], "hard");
    assert_eq!(v["outcome"], "recorded");
    assert_eq!(v["suppressed"], "bounced");
    assert_eq!(v["issue"], "2021-07");
    let v: serde_json::Value = serde_json::from_str(&complained.body).unwrap();
    assert_eq!(v["suppressed"], "complained", "{}", complained.body);
    let v: serde_json::Value = serde_json::from_str(&ignored.body).unwrap();
    assert_eq!(v["outcome"], "ignored", "{}", ignored.body);
    let v: serde_json::Value = serde_json::from_str(&twice.body).unwrap();
    assert_eq!(v["outcome"], "duplicate", "{}", twice.body);
    // With `soft_limit = 1`, one soft bounce is enough.
    let v: serde_json::Value = serde_json::from_str(&soft.body).unwrap();
    assert_eq!(v["kind"], "soft", "{}", soft.body);
    assert_eq!(v["suppressed"], "bounced", "{}", soft.body);
    assert_eq!(huge.status, 413);
    assert_one_of_each(
        &metrics,
        &w2,
        &[
            Some(Reason::Bounced),
            Some(Reason::Complained),
            None,
            Some(Reason::Bounced),
        ],
    );
}

/// The daemon reads the bounce mailbox on a real Dovecot over TLS: a hard bounce, a complaint
/// and a soft bounce of its deliveries are recorded and moved to the processed folder, a
/// vacation reply stays where it was, nothing is deleted; and a mailbox that cannot be reached
/// is logged and tried again without stopping the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reads_the_bounce_mailbox_over_imap() {
    use crate::support::dovecot::{Dovecot, PASSWORD, USER};
    let server = SmtpServer::start().await;
    let dovecot = std::sync::Arc::new(tokio::task::spawn_blocking(Dovecot::start).await.unwrap());
    let ca = dovecot.ca_pem_path();
    let imap = |port: u16| {
        format!(
            "[bounces.imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"tls\"\nusername = \"{USER}\"\n\
             password_env = \"BRIEF_TEST_IMAP\"\ninterval = \"1s\"\nca_file = \"{}\"\n",
            ca.display()
        )
    };
    let w = world(server.port(), 4, &imap(dovecot.port()));
    let sent = brief(&w, &["send", "--yes"]).await;
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    let july = envelopes(&server, JULY);
    let about = |i: usize, name: &str| report_for(&july, i, name);
    for (i, name) in [
        (0, "postfix-hard"),
        (1, "yahoo-complaint"),
        (2, "yahoo-soft"),
        (3, "vacation"),
    ] {
        dovecot.deliver(about(i, name).as_bytes());
    }

    let w = std::sync::Arc::new(w);
    let ww = w.clone();
    let dc = dovecot.clone();
    let (log, metrics, processed, inbox) = tokio::task::spawn_blocking(move || {
        let dovecot = dc;
        let d = Running::start(
            &ww,
            &[("BRIEF_TEST_WEBHOOK", TOKEN), ("BRIEF_TEST_IMAP", PASSWORD)],
        );
        crate::support::daemon::wait_until(
            "the bounce mailbox read",
            Duration::from_secs(20),
            || dovecot.folder_count("brief-processed") == 3,
        );
        let metrics = d.get("/metrics").body;
        let log = d.stderr();
        assert_eq!(d.stop().status.code(), Some(0));
        (
            log,
            metrics,
            dovecot.folder_count("brief-processed"),
            dovecot.folder_count("INBOX"),
        )
    })
    .await
    .unwrap();
    assert_eq!((processed, inbox), (3, 1), "{log}");
    assert!(
        log.contains("3 report(s) taken and moved to brief-processed, 1 message(s) left in place"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "{log}");
    // One line per suppression, naming the reader by a keyed hash only.
    assert!(
        log.contains("suppressed as bounced after a hard report"),
        "{log}"
    );
    assert!(
        log.contains("suppressed as complained after a complaint report"),
        "{log}"
    );
    for i in 0..4 {
        assert!(!log.contains(&reader(i)), "{log}");
    }
    assert_one_of_each(
        &metrics,
        &w,
        &[Some(Reason::Bounced), Some(Reason::Complained), None, None],
    );

    // A mailbox nobody answers for: logged, tried again, and the daemon goes on serving.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    let at = text.find("[bounces.imap]").unwrap();
    w.write("brief.toml", &format!("{}{}", &text[..at], imap(closed)));
    let ww = w.clone();
    let (log, health) = tokio::task::spawn_blocking(move || {
        let d = Running::start(&ww, &[("BRIEF_TEST_IMAP", PASSWORD)]);
        crate::support::daemon::wait_until("two failed reads", Duration::from_secs(20), || {
            d.stderr().matches("cannot read the bounce mailbox").count() >= 2
        });
        let health = d.get("/healthz").status;
        let log = d.stderr();
        assert_eq!(d.stop().status.code(), Some(0));
        (log, health)
    })
    .await
    .unwrap();
    assert_eq!(health, 200);
    assert!(
        log.contains(&format!(
            "cannot read the bounce mailbox 127.0.0.1:{closed}"
        )),
        "{log}"
    );
}
