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
        ("forged.eml", "unattributed"),
        ("message-id-only.eml", "for r08@example.org"),
        ("delayed.mbox#1", "soft bounce"),
    ] {
        assert!(line(file).contains(said), "{file}: {said} in {out}");
    }
    assert!(
        out.contains("14 message(s): 6 hard, 2 soft, 0 blocked, 1 complaint(s) recorded (7 address(es) suppressed); 1 already recorded, 1 unattributed, 3 ignored"),
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
        // The third move comes before the fourth message is settled and the visit logged.
        crate::support::daemon::wait_until(
            "the bounce mailbox read",
            Duration::from_secs(20),
            || {
                dovecot.folder_count("brief-processed") == 3
                    && d.stderr().contains("bounce mailbox read:")
            },
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

/// The Message-ID earlier versions gave `address`'s copy of `issue`: a SHA-256 of the issue id
/// (which `/archive/` lists) and the address, at the From domain. Every input is public: this
/// is what a forger computes.
fn public_message_id(issue: &str, address: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(issue);
    h.update([0]);
    h.update(address.to_ascii_lowercase());
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("brief.{issue}.{hex}@news.example.org")
}

/// A Message-ID in today's keyed form with a MAC the forger made up.
fn guessed_keyed_id(issue: &str, address: &str) -> String {
    let mac = &public_message_id(issue, address)["brief.".len() + issue.len() + 1..][..32];
    format!("brief.{issue}.k{mac}@news.example.org")
}

/// A hard bounce about `victim` as a forger writes it from public facts: addressed to the
/// bounce address with a made-up VERP tag, returning headers with `message_id`.
fn forged_dsn(victim: &str, message_id: &str, n: u32) -> String {
    dsn(
        &format!("bounces+{n}-0123456789@news.example.org"),
        victim,
        message_id,
        "5.1.1",
        &format!("550 5.1.1 <{victim}>: Recipient address rejected: User unknown"),
        n,
    )
}

/// A delivery-status report about `victim` sent to `to`, with `status` and `diagnostic`,
/// returning headers with `message_id`.
fn dsn(to: &str, victim: &str, message_id: &str, status: &str, diagnostic: &str, n: u32) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.attacker.example>\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <forged-dsn-{n}@mx.attacker.example>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"F{n}\"\r\n\
         \r\n\
         --F{n}\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Your message could not be delivered.\r\n\
         \r\n\
         --F{n}\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.attacker.example\r\n\
         \r\n\
         Final-Recipient: rfc822; {victim}\r\n\
         Original-Recipient: rfc822; {victim}\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n\
         \r\n\
         --F{n}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         Return-Path: <bounces@news.example.org>\r\n\
         From: Center for Binational Institutions <brief@news.example.org>\r\n\
         To: {victim}\r\n\
         Subject: BRIEF | U.S. - Mexico Binational Institutional Life | {JULY}\r\n\
         Message-ID: <{message_id}>\r\n\
         \r\n\
         --F{n}--\r\n"
    )
}

/// A spam complaint (ARF) about `victim` as a forger writes it from public facts.
fn forged_arf(victim: &str, message_id: &str, n: u32) -> String {
    format!(
        "From: Feedback Loop <feedback@arf.attacker.example>\r\n\
         To: bounces@news.example.org\r\n\
         Subject: Abuse report\r\n\
         Message-ID: <forged-arf-{n}@arf.attacker.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"A{n}\"\r\n\
         \r\n\
         --A{n}\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is an email abuse report.\r\n\
         \r\n\
         --A{n}\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: ForgedFBL/1.0\r\n\
         Version: 1\r\n\
         Original-Mail-From: <bounces@news.example.org>\r\n\
         Original-Rcpt-To: <{victim}>\r\n\
         Reporting-MTA: dns; arf.attacker.example\r\n\
         \r\n\
         --A{n}\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: Center for Binational Institutions <brief@news.example.org>\r\n\
         To: {victim}\r\n\
         Message-ID: <{message_id}>\r\n\
         \r\n\
         --A{n}--\r\n"
    )
}

/// Why reader `i` is suppressed, if they are.
fn suppression(w: &World, i: usize) -> Option<Reason> {
    w.ledger()
        .suppression(&AddressKey::from_text(&reader(i)))
        .unwrap()
}

/// Reports computed from public facts only (the issue id, the victim's address, the From
/// domain: the Message-ID earlier versions used, or today's form with a made-up MAC, and a
/// made-up VERP tag) change nothing through `brief bounces import`; the real thing still
/// works: a report with the reader's keyed Message-ID and no tag, and one with the VERP tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_forged_from_public_facts_change_nothing_through_import() {
    let server = SmtpServer::start().await;
    let w = world(server.port(), 4, "");
    let sent = brief(&w, &["send", "--yes"]).await;
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    let july = envelopes(&server, JULY);
    w.write(
        "in/dsn.eml",
        &forged_dsn(&reader(0), &public_message_id("2021-07", &reader(0)), 1),
    );
    w.write(
        "in/arf.eml",
        &forged_arf(&reader(1), &public_message_id("2021-07", &reader(1)), 2),
    );
    w.write(
        "in/keyed-shape.eml",
        &forged_dsn(&reader(2), &guessed_keyed_id("2021-07", &reader(2)), 3),
    );
    w.write(
        "in/keyed-arf.eml",
        &forged_arf(&reader(2), &guessed_keyed_id("2021-07", &reader(2)), 4),
    );
    let path = |f: &str| w.path(f).display().to_string();

    let forged = brief(
        &w,
        &[
            "bounces",
            "import",
            &path("in/dsn.eml"),
            &path("in/arf.eml"),
            &path("in/keyed-shape.eml"),
            &path("in/keyed-arf.eml"),
        ],
    )
    .await;

    let out = String::from_utf8_lossy(&forged.stdout).to_string();
    assert_eq!(forged.status.code(), Some(0), "{forged:?}");
    assert_eq!(
        out.matches(": hard bounce 5.1.1, unattributed").count(),
        2,
        "{out}"
    );
    assert_eq!(out.matches(": complaint, unattributed").count(), 2, "{out}");
    assert!(
        out.contains("4 message(s): 0 hard, 0 soft, 0 blocked, 0 complaint(s) recorded (0 address(es) suppressed); 0 already recorded, 4 unattributed, 0 ignored"),
        "{out}"
    );
    for i in 0..4 {
        assert_eq!(suppression(&w, i), None, "{}", reader(i));
    }
    let report = brief(&w, &["report", "--issue", "2021-07", "--format", "jsonl"]).await;
    let report = String::from_utf8_lossy(&report.stdout).to_string();
    for line in report.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["bounce"], "",
            "nothing is counted against a reader: {line}"
        );
    }

    // The real reports: r02's keyed Message-ID alone (no VERP tag), r03's VERP tag.
    let (_, mid2) = &july[&reader(2)];
    assert!(mid2.starts_with("brief.2021-07.k"), "{mid2}");
    assert_ne!(*mid2, public_message_id("2021-07", &reader(2)));
    w.write("in/real-id.eml", &fixture("message-id-only", None, mid2));
    w.write("in/real-tag.eml", &report_for(&july, 3, "postfix-hard"));
    let real = brief(
        &w,
        &[
            "bounces",
            "import",
            &path("in/real-id.eml"),
            &path("in/real-tag.eml"),
        ],
    )
    .await;
    let out = String::from_utf8_lossy(&real.stdout).to_string();
    assert!(
        out.contains("for r02@example.org (issue 2021-07): recorded; the address is now bounced"),
        "{out}"
    );
    assert!(
        out.contains("for r03@example.org (issue 2021-07): recorded; the address is now bounced"),
        "{out}"
    );
    assert_eq!(suppression(&w, 0), None);
    assert_eq!(suppression(&w, 1), None);
    assert_eq!(suppression(&w, 2), Some(Reason::Bounced));
    assert_eq!(suppression(&w, 3), Some(Reason::Bounced));

    // A genuine policy refusal (5.7.1, spam), through r01's own VERP tag: recorded as blocked,
    // counted for the staff summary, and r01 stays on the list.
    let (senders, mid1) = &july[&reader(1)];
    w.write(
        "in/policy.eml",
        &dsn(
            &senders[0],
            &reader(1),
            mid1,
            "5.7.1",
            "550 5.7.1 Message rejected as spam by Content Filtering",
            9,
        ),
    );
    let policy = brief(&w, &["bounces", "import", &path("in/policy.eml")]).await;
    let out = String::from_utf8_lossy(&policy.stdout).to_string();
    assert!(
        out.contains(
            "blocked bounce 5.7.1 for r01@example.org (issue 2021-07): recorded; the address stays on the list"
        ),
        "{out}"
    );
    assert!(out.contains("0 hard, 0 soft, 1 blocked"), "{out}");
    assert_eq!(suppression(&w, 1), None);
    let l = w.ledger();
    let campaign = l.campaign("2021-07".parse().unwrap()).unwrap().unwrap();
    let facts = l.summary_facts(&campaign).unwrap();
    assert_eq!(
        (
            facts.bounces.hard,
            facts.bounces.blocked,
            facts.bounces.complaints
        ),
        (2, 1, 0),
        "the forgeries count for nothing"
    );
}

/// The same forgeries posted to the webhook and mailed to the bounce mailbox that the daemon
/// reads over IMAP change nothing: the webhook answers `unattributed`, the mailbox leaves them
/// in place; a real complaint (webhook) and a real bounce (IMAP) still suppress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_forged_from_public_facts_change_nothing_through_the_webhook_and_imap() {
    use crate::support::dovecot::{Dovecot, PASSWORD, USER};
    let server = SmtpServer::start().await;
    let dovecot = std::sync::Arc::new(tokio::task::spawn_blocking(Dovecot::start).await.unwrap());
    let w = world(
        server.port(),
        4,
        &format!(
            "[bounces.imap]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"tls\"\nusername = \"{USER}\"\n\
             password_env = \"BRIEF_TEST_IMAP\"\ninterval = \"1s\"\nca_file = \"{}\"\n",
            dovecot.port(),
            dovecot.ca_pem_path().display()
        ),
    );
    let sent = brief(&w, &["send", "--yes"]).await;
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    let july = envelopes(&server, JULY);
    let public = |i: usize| public_message_id("2021-07", &reader(i));
    dovecot.deliver(forged_dsn(&reader(0), &public(0), 1).as_bytes());
    dovecot.deliver(forged_arf(&reader(1), &public(1), 2).as_bytes());
    dovecot.deliver(report_for(&july, 3, "postfix-hard").as_bytes());
    let webhook_forgeries = [
        forged_dsn(&reader(2), &public(2), 3),
        forged_arf(&reader(2), &public(2), 4),
        forged_arf(&reader(2), &guessed_keyed_id("2021-07", &reader(2)), 5),
    ];
    let real_complaint = report_for(&july, 2, "yahoo-complaint");

    let w = std::sync::Arc::new(w);
    let ww = w.clone();
    let dc = dovecot.clone();
    let (answers, real, metrics, log) = tokio::task::spawn_blocking(move || {
        let dovecot = dc;
        let d = Running::start(
            &ww,
            &[("BRIEF_TEST_WEBHOOK", TOKEN), ("BRIEF_TEST_IMAP", PASSWORD)],
        );
        let bearer = format!("Bearer {TOKEN}");
        let post = |body: &str| {
            d.post(
                "/webhooks/bounce",
                &[
                    ("Content-Type", "message/rfc822"),
                    ("Authorization", &bearer),
                ],
                body.as_bytes(),
            )
        };
        let answers: Vec<_> = webhook_forgeries.iter().map(|f| post(f)).collect();
        let real = post(&real_complaint);
        crate::support::daemon::wait_until(
            "the bounce mailbox read",
            Duration::from_secs(30),
            || {
                dovecot.folder_count("brief-processed") == 1
                    && dovecot
                        .messages("INBOX")
                        .iter()
                        .filter(|m| m.flags.iter().any(|f| f == "brief-ignored"))
                        .count()
                        == 2
            },
        );
        let metrics = d.get("/metrics").body;
        let log = d.stderr();
        assert_eq!(d.stop().status.code(), Some(0));
        (answers, real, metrics, log)
    })
    .await
    .unwrap();
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.body);
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["outcome"], "unattributed", "{}", a.body);
        assert_eq!(v["suppressed"], serde_json::Value::Null, "{}", a.body);
    }
    let v: serde_json::Value = serde_json::from_str(&real.body).unwrap();
    assert_eq!(v["suppressed"], "complained", "{}", real.body);
    assert_eq!(
        crate::support::daemon::metric(&metrics, "brief_bounces_total{kind=\"unattributed\"}"),
        Some(5.0),
        "{metrics}"
    );
    assert_eq!(suppression(&w, 0), None, "{log}");
    assert_eq!(suppression(&w, 1), None, "{log}");
    assert_eq!(suppression(&w, 2), Some(Reason::Complained), "{log}");
    assert_eq!(suppression(&w, 3), Some(Reason::Bounced), "{log}");
    assert!(log.contains("unattributed"), "{log}");
    for i in 0..4 {
        assert!(!log.contains(&reader(i)), "{log}");
    }
}

/// A campaign stored before keyed Message-IDs keeps its unkeyed ones: a report naming a
/// delivery by one is shown against it (`brief report`, marked unverified) but suppresses
/// nobody, since anyone could have computed it.
#[test]
fn an_old_campaigns_unkeyed_message_id_is_shown_but_suppresses_nobody() {
    let w = World::with_config(&format!("[bounces]\naddress = \"{BOUNCES}\"\n"));
    let sent = w.brief().args(["send", "--yes"]).output().unwrap();
    assert!(sent.status.success(), "{sent:?}");
    // What an earlier brief stored: unkeyed ids in the deliveries, a template of version 1.
    let db = rusqlite::Connection::open(w.path("data/brief.db")).unwrap();
    let addresses: Vec<String> = db
        .prepare("SELECT address FROM deliveries")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for a in &addresses {
        db.execute(
            "UPDATE deliveries SET message_id = ?1 WHERE address = ?2",
            [public_message_id("2021-07", a), a.clone()],
        )
        .unwrap();
    }
    let n = db
        .execute(
            "UPDATE campaign_messages SET template = replace(template, '\"version\":2', '\"version\":1')",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    w.write(
        "forged.eml",
        &forged_dsn(
            "ana@example.org",
            &public_message_id("2021-07", "ana@example.org"),
            1,
        ),
    );

    let out = w
        .brief()
        .args(["bounces", "import"])
        .arg(w.path("forged.eml"))
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("hard bounce 5.1.1 for ana@example.org (issue 2021-07): named by an unkeyed Message-ID only"),
        "{stdout}"
    );
    assert!(stdout.contains("the address stays on the list"), "{stdout}");
    assert_eq!(
        w.ledger()
            .suppression(&AddressKey::from_text("ana@example.org"))
            .unwrap(),
        None
    );
    let report = w
        .brief()
        .args(["report", "--issue", "2021-07", "--format", "jsonl"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&report.stdout).to_string();
    let ana = report
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["address"] == "ana@example.org")
        .unwrap();
    let bounce = ana["bounce"].as_str().unwrap();
    assert!(bounce.starts_with("hard 5.1.1"), "{bounce}");
    assert!(bounce.ends_with("[unverified]"), "{bounce}");
}

/// `[bounces.imap] tls = "none"` to a host that is not this machine fails `brief check` with
/// exit 2, naming the key; to loopback it passes.
#[test]
fn imap_without_tls_off_this_machine_fails_the_check() {
    for (host, refused) in [
        ("imap.example.org", true),
        ("192.0.2.7", true),
        ("127.0.0.1", false),
        ("localhost", false),
    ] {
        let w = World::with_config(&format!(
            "[bounces]\naddress = \"{BOUNCES}\"\n[bounces.imap]\nhost = \"{host}\"\nport = 143\n\
             tls = \"none\"\nusername = \"bounces\"\npassword_env = \"BRIEF_TEST_IMAP\"\n"
        ));
        let out = w
            .brief()
            .arg("check")
            .env("BRIEF_TEST_IMAP", "secret")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if refused {
            assert_eq!(out.status.code(), Some(2), "{host}: {stderr}");
            assert!(
                stderr.contains("`bounces.imap.tls = \"none\"` sends the mailbox password"),
                "{host}: {stderr}"
            );
            assert!(stderr.contains("brief.toml:"), "{host}: {stderr}");
            assert!(stderr.contains(host), "{host}: {stderr}");
        } else {
            assert_eq!(out.status.code(), Some(0), "{host}: {stderr}");
        }
    }
}

/// `brief bounces import` reads at most `[bounces] max_size` of a file: a larger one is
/// refused with a message naming it, and of a stream (a FIFO here) brief takes no more than
/// the limit, so a huge file costs no memory.
#[test]
fn bounces_import_reads_at_most_the_size_limit() {
    use std::io::Write as _;
    let w = World::with_config(&format!("[bounces]\naddress = \"{BOUNCES}\"\n"));
    let huge = std::fs::File::create(w.path("huge.eml")).unwrap();
    huge.set_len(64 * 1024 * 1024).unwrap();
    drop(huge);
    let out = w
        .brief()
        .args(["bounces", "import"])
        .arg(w.path("huge.eml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is over `bounces.max_size` (1048576 bytes)",
            w.path("huge.eml").display()
        )),
        "{stderr}"
    );

    let fifo = w.path("stream.eml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    const OFFERED: usize = 32 * 1024 * 1024;
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Opening blocks until brief opens the other end.
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let chunk = vec![b'x'; 64 * 1024];
            let mut written = 0;
            while written < OFFERED {
                match f.write(&chunk) {
                    Ok(n) => written += n,
                    // brief closed its end (EPIPE): it read all it wanted.
                    Err(_) => break,
                }
            }
            written
        })
    };
    let out = w
        .brief()
        .args(["bounces", "import"])
        .arg(&fifo)
        .output()
        .unwrap();
    if !writer.is_finished() {
        // brief never opened the FIFO: open it here so the writer can finish.
        drop(std::fs::File::open(&fifo));
    }
    let written = writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is over `bounces.max_size`"), "{stderr}");
    assert!(
        written < 2 * 1024 * 1024,
        "brief took {written} bytes of a {OFFERED}-byte stream"
    );
}

/// Thirty large junk mails (about 9.7 MB each) in the bounce mailbox: the daemon (a real
/// `brief run`) reads their sizes, never their bodies, and leaves them in place, unread and
/// flagged `brief-too-large`, and its peak memory (VmHWM) stays under 64 MB; a small message
/// behind them is still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_junk_in_the_bounce_mailbox_is_left_unread_and_memory_stays_bounded() {
    use crate::support::dovecot::{Dovecot, PASSWORD, USER};
    let dovecot = std::sync::Arc::new(tokio::task::spawn_blocking(Dovecot::start).await.unwrap());
    let w = World::with_config(&format!(
        "[bounces]\naddress = \"{BOUNCES}\"\n[bounces.imap]\nhost = \"127.0.0.1\"\nport = {}\n\
         tls = \"none\"\nusername = \"{USER}\"\npassword_env = \"BRIEF_TEST_IMAP\"\n\
         interval = \"1s\"\n",
        dovecot.plain_port()
    ));
    const JUNK: usize = 30;
    let dc = dovecot.clone();
    tokio::task::spawn_blocking(move || {
        let line = format!("{}\r\n", "J".repeat(76));
        let body = line.repeat(9_700_000 / line.len());
        for n in 0..JUNK {
            let junk = format!(
                "From: someone@junk.example\r\nTo: {BOUNCES}\r\nSubject: junk {n}\r\n\
                 Message-ID: <junk-{n}@junk.example>\r\n\r\n{body}"
            );
            dc.deliver(junk.as_bytes());
        }
        dc.deliver(
            b"From: ana@example.org\r\nTo: bounces@news.example.org\r\nSubject: Re: BRIEF\r\n\
              Message-ID: <reply@example.org>\r\n\r\nThanks for the issue!\r\n",
        );
    })
    .await
    .unwrap();

    let ww = std::sync::Arc::new(w);
    let dc = dovecot.clone();
    let (hwm_kb, metrics, log) = tokio::task::spawn_blocking(move || {
        let dovecot = dc;
        let d = Running::start(&ww, &[("BRIEF_TEST_IMAP", PASSWORD)]);
        crate::support::daemon::wait_until(
            "every message settled",
            Duration::from_secs(60),
            || {
                dovecot
                    .messages("INBOX")
                    .iter()
                    .all(|m| m.flags.iter().any(|f| f == "brief-ignored"))
            },
        );
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
        let hwm_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in {status}"));
        let metrics = d.get("/metrics").body;
        let log = d.stderr();
        assert_eq!(d.stop().status.code(), Some(0));
        (hwm_kb, metrics, log)
    })
    .await
    .unwrap();

    assert!(
        hwm_kb < 64 * 1024,
        "the daemon peaked at {hwm_kb} kB reading {JUNK} large messages\n{log}"
    );
    let inbox = dovecot.messages("INBOX");
    assert_eq!(inbox.len(), JUNK + 1, "nothing moved or deleted");
    for m in &inbox {
        assert!(!m.flags.iter().any(|f| f == "\\Seen"), "{m:?}");
        let too_large = m.flags.iter().any(|f| f == "brief-too-large");
        assert_eq!(too_large, m.subject.starts_with("junk "), "{m:?}");
    }
    assert_eq!(dovecot.folder_count("brief-processed"), 0);
    assert_eq!(
        crate::support::daemon::metric(&metrics, "brief_bounces_total{kind=\"too_large\"}"),
        Some(JUNK as f64),
        "{metrics}"
    );
    assert_eq!(
        crate::support::daemon::metric(&metrics, "brief_bounces_total{kind=\"ignored\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        log.matches("over `bounces.max_size` (1048576): left unread, flagged brief-too-large")
            .count(),
        JUNK,
        "{log}"
    );
}
