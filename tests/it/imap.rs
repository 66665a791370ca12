//! The IMAP bounce-mailbox client against a real Dovecot, one instance per test.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::dovecot::{Dovecot, PASSWORD, USER};
use brief::imap::{
    Body, ImapTls, Mailbox, MailboxConfig, Verdict, DEFAULT_FOLDER, DEFAULT_PROCESSED_FOLDER,
    IGNORED_KEYWORD, TOO_LARGE_KEYWORD,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn config(host: &str, port: u16, tls: ImapTls, dovecot: Option<&Dovecot>) -> MailboxConfig {
    MailboxConfig {
        host: host.to_string(),
        port,
        tls,
        username: USER.to_string(),
        password: PASSWORD.to_string(),
        folder: DEFAULT_FOLDER.to_string(),
        processed_folder: DEFAULT_PROCESSED_FOLDER.to_string(),
        ca_file: dovecot.map(Dovecot::ca_pem_path),
        timeout: TIMEOUT,
    }
}

/// A small bounce with CRLF line ends (what IMAP hands back) and an 8-bit byte in the body.
fn bounce(n: u32) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n\
         To: bounces@example.org\r\n\
         Subject: bounce {n}\r\n\
         Message-ID: <bounce-{n}@mx.example.org>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Delivery to reader{n}@example.net failed permanently: 550 5.1.1 user unknown.\r\n\
         Zustellung fehlgeschlagen, übrigens.\r\n"
    )
    .into_bytes()
}

async fn open(cfg: &MailboxConfig, dovecot: &Dovecot) -> Mailbox {
    match Mailbox::open(cfg).await {
        Ok(mailbox) => mailbox,
        Err(e) => panic!("open failed: {e:#}\n{}", dovecot.log()),
    }
}

/// One message read whole.
struct Fetched {
    uid: u32,
    raw: Vec<u8>,
}

/// The limit the tests read messages under (the daemon's default).
const LIMIT: u64 = 1024 * 1024;

/// Up to `max` new messages, listed then read one by one as the daemon does.
async fn fetch(mailbox: &mut Mailbox, max: usize, dovecot: &Dovecot) -> Vec<Fetched> {
    let waiting = match mailbox.list_new(max).await {
        Ok(w) => w,
        Err(e) => panic!("list_new failed: {e:#}\n{}", dovecot.log()),
    };
    let mut out = Vec::new();
    for w in waiting {
        match mailbox.fetch(w.uid, LIMIT).await {
            Ok(Body::Read(raw)) => {
                assert_eq!(raw.len() as u64, w.size, "RFC822.SIZE of UID {}", w.uid);
                out.push(Fetched { uid: w.uid, raw });
            }
            Ok(other) => panic!("UID {}: {other:?}", w.uid),
            Err(e) => panic!("fetch failed: {e:#}\n{}", dovecot.log()),
        }
    }
    out
}

async fn settle(mailbox: &mut Mailbox, uid: u32, verdict: Verdict, dovecot: &Dovecot) {
    if let Err(e) = mailbox.settle(uid, verdict).await {
        panic!("settle {uid} {verdict:?} failed: {e:#}\n{}", dovecot.log());
    }
}

fn subjects(dovecot: &Dovecot, folder: &str) -> Vec<String> {
    dovecot
        .messages(folder)
        .into_iter()
        .map(|m| m.subject)
        .collect()
}

/// The commands of the session(s) so far, after checking that none was a plain EXPUNGE, which
/// would remove every `\Deleted` message in the folder, not only brief's.
fn commands(dovecot: &Dovecot) -> Vec<String> {
    let commands = dovecot.commands();
    assert!(
        commands.iter().all(|c| !c.eq_ignore_ascii_case("EXPUNGE")),
        "{commands:#?}"
    );
    commands
}

fn has(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

#[tokio::test]
async fn implicit_tls_fetches_unread_and_settles_without_deleting() {
    let dovecot = Dovecot::start();
    let sent: Vec<Vec<u8>> = (1..=3).map(bounce).collect();
    for raw in &sent {
        dovecot.deliver(raw);
    }
    let cfg = config("127.0.0.1", dovecot.port(), ImapTls::Tls, Some(&dovecot));

    let mut mailbox = open(&cfg, &dovecot).await;
    let first_two = fetch(&mut mailbox, 2, &dovecot).await;
    assert_eq!(first_two.len(), 2, "max is honoured");
    let fetched = fetch(&mut mailbox, 10, &dovecot).await;
    assert_eq!(fetched.len(), 3);
    assert_eq!(
        first_two.iter().map(|f| f.uid).collect::<Vec<_>>(),
        fetched[..2].iter().map(|f| f.uid).collect::<Vec<_>>(),
        "the lowest UIDs come first"
    );
    assert!(fetched.windows(2).all(|w| w[0].uid < w[1].uid));
    for (got, want) in fetched.iter().zip(&sent) {
        assert_eq!(
            got.raw,
            *want,
            "message UID {} differs:\n{}",
            got.uid,
            String::from_utf8_lossy(&got.raw)
        );
    }
    // BODY.PEEK[]: a person reading the mailbox still sees them as new.
    for m in dovecot.messages("INBOX") {
        assert!(!has(&m.flags, "\\Seen"), "{m:?}");
    }

    settle(&mut mailbox, fetched[0].uid, Verdict::Processed, &dovecot).await;
    settle(&mut mailbox, fetched[1].uid, Verdict::Ignored, &dovecot).await;
    mailbox.close().await;

    let mut again = open(&cfg, &dovecot).await;
    let rest = fetch(&mut again, 10, &dovecot).await;
    again.close().await;
    assert_eq!(rest.len(), 1, "only the unsettled message is new");
    assert_eq!(rest[0].uid, fetched[2].uid);
    assert_eq!(rest[0].raw, sent[2]);

    assert_eq!(dovecot.folder_count("INBOX"), 2);
    assert_eq!(dovecot.folder_count(DEFAULT_PROCESSED_FOLDER), 1);
    assert_eq!(subjects(&dovecot, DEFAULT_PROCESSED_FOLDER), ["bounce 1"]);
    let inbox = dovecot.messages("INBOX");
    assert_eq!(
        inbox.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["bounce 2", "bounce 3"]
    );
    assert_eq!(
        inbox.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [fetched[1].uid, fetched[2].uid],
        "UIDs are Dovecot's own"
    );
    assert!(has(&inbox[0].flags, IGNORED_KEYWORD), "{inbox:?}");
    assert!(!has(&inbox[1].flags, IGNORED_KEYWORD), "{inbox:?}");
    for m in inbox
        .iter()
        .chain(&dovecot.messages(DEFAULT_PROCESSED_FOLDER))
    {
        assert!(
            !has(&m.flags, "\\Deleted") && !has(&m.flags, "\\Seen"),
            "{m:?}"
        );
    }
    assert!(
        dovecot.logins().iter().all(|l| l.contains(", TLS,")),
        "{:?}",
        dovecot.logins()
    );
    let commands = commands(&dovecot);
    let uid = fetched[0].uid;
    assert!(
        commands.contains(&format!("UID MOVE {uid} \"{DEFAULT_PROCESSED_FOLDER}\"")),
        "Dovecot offers MOVE: {commands:#?}"
    );
    assert!(
        commands.iter().all(|c| !c.contains("EXPUNGE")),
        "{commands:#?}"
    );
}

/// A message is sized before it is read: one over the limit is never fetched (its size says
/// so), one whose size the caller misjudged is cut by the server at the limit and refused, and
/// a message settled as too large stays, unread, with both keywords, out of every later list.
#[tokio::test]
async fn messages_are_sized_first_and_the_large_ones_left_unread() {
    let dovecot = Dovecot::start();
    dovecot.deliver(&bounce(1));
    let mut big = bounce(2);
    big.extend(std::iter::repeat_n(b'x', 300_000));
    big.extend_from_slice(b"\r\n");
    dovecot.deliver(&big);
    dovecot.deliver(&bounce(3));
    let cfg = config("127.0.0.1", dovecot.port(), ImapTls::Tls, Some(&dovecot));

    let mut mailbox = open(&cfg, &dovecot).await;
    let waiting = mailbox.list_new(10).await.unwrap();
    assert_eq!(waiting.len(), 3);
    assert_eq!(waiting[0].size, bounce(1).len() as u64);
    assert_eq!(waiting[1].size, big.len() as u64);
    let big_uid = waiting[1].uid;
    // Read under a limit below its size anyway: the server sends at most the limit + 1 bytes.
    match mailbox.fetch(big_uid, 100_000).await.unwrap() {
        Body::TooLarge => {}
        other => panic!("{other:?}"),
    }
    match mailbox.fetch(waiting[0].uid, 100_000).await.unwrap() {
        Body::Read(raw) => assert_eq!(raw, bounce(1)),
        other => panic!("{other:?}"),
    }
    settle(&mut mailbox, big_uid, Verdict::TooLarge, &dovecot).await;
    let rest = mailbox.list_new(10).await.unwrap();
    mailbox.close().await;

    assert_eq!(
        rest.iter().map(|w| w.uid).collect::<Vec<_>>(),
        [waiting[0].uid, waiting[2].uid]
    );
    let inbox = dovecot.messages("INBOX");
    assert_eq!(inbox.len(), 3, "nothing moved or deleted");
    let stored = inbox.iter().find(|m| m.uid == big_uid).unwrap();
    assert!(has(&stored.flags, IGNORED_KEYWORD), "{stored:?}");
    assert!(has(&stored.flags, TOO_LARGE_KEYWORD), "{stored:?}");
    for m in &inbox {
        assert!(!has(&m.flags, "\\Seen"), "{m:?}");
    }
    let commands = commands(&dovecot);
    assert!(
        commands
            .iter()
            .any(|c| c.contains("(UID FLAGS RFC822.SIZE)")),
        "{commands:#?}"
    );
    assert!(
        commands.contains(&format!("UID FETCH {big_uid} (UID BODY.PEEK[]<0.100001>)")),
        "{commands:#?}"
    );
    assert!(
        commands.iter().all(|c| !c.contains("BODY.PEEK[])")),
        "no unbounded body fetch: {commands:#?}"
    );
}

/// Plain text (no TLS) is for a server on this machine only: to any other host the mailbox is
/// not even opened.
#[tokio::test]
async fn plain_text_to_another_host_is_refused_before_connecting() {
    let cfg = config("192.0.2.1", 143, ImapTls::None, None);
    let e = Mailbox::open(&cfg).await.unwrap_err().to_string();
    assert!(
        e.contains("IMAP without TLS to 192.0.2.1:143, which is not this machine"),
        "{e}"
    );
}

#[tokio::test]
async fn starttls_and_plain_text_on_the_plain_port() {
    let dovecot = Dovecot::start();
    dovecot.deliver(&bounce(1));

    // A DNS name this time: the certificate names `localhost` too.
    let cfg = config(
        "localhost",
        dovecot.plain_port(),
        ImapTls::Starttls,
        Some(&dovecot),
    );
    let mut mailbox = open(&cfg, &dovecot).await;
    let fetched = fetch(&mut mailbox, 10, &dovecot).await;
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].raw, bounce(1));
    mailbox.close().await;
    let logins = dovecot.logins();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert!(
        logins[0].contains(", TLS,"),
        "STARTTLS was not used: {logins:?}"
    );

    let cfg = config("127.0.0.1", dovecot.plain_port(), ImapTls::None, None);
    let mut mailbox = open(&cfg, &dovecot).await;
    let fetched = fetch(&mut mailbox, 10, &dovecot).await;
    assert_eq!(fetched.len(), 1);
    settle(&mut mailbox, fetched[0].uid, Verdict::Processed, &dovecot).await;
    mailbox.close().await;
    let logins = dovecot.logins();
    assert_eq!(logins.len(), 2, "{logins:?}");
    assert!(
        !logins[1].contains(", TLS,"),
        "expected a plain session: {logins:?}"
    );
    assert_eq!(dovecot.folder_count("INBOX"), 0);
    assert_eq!(dovecot.folder_count(DEFAULT_PROCESSED_FOLDER), 1);
    commands(&dovecot);
}

#[tokio::test]
async fn a_wrong_password_names_server_and_user_but_not_the_password() {
    let dovecot = Dovecot::start();
    let mut cfg = config("127.0.0.1", dovecot.port(), ImapTls::Tls, Some(&dovecot));
    cfg.password = "Wrong-pass-51d0e2".to_string();
    let e = Mailbox::open(&cfg)
        .await
        .expect_err("a wrong password must not log in");
    let text = format!("{e:#} {e:?}");
    let server = format!("127.0.0.1:{}", dovecot.port());
    assert!(text.contains(&server), "{text}");
    assert!(text.contains("log in") && text.contains(USER), "{text}");
    assert!(!text.contains("Wrong-pass-51d0e2"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!format!("{cfg:?}").contains("Wrong-pass-51d0e2"));
}

#[tokio::test]
async fn nothing_listening_fails_fast_naming_the_server() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("port").port()
    };
    let mut cfg = config("127.0.0.1", port, ImapTls::Tls, None);
    cfg.timeout = Duration::from_secs(3);
    let start = Instant::now();
    let e = Mailbox::open(&cfg)
        .await
        .expect_err("nothing listens there");
    assert!(start.elapsed() < cfg.timeout, "took {:?}", start.elapsed());
    let text = format!("{e:#}");
    assert!(
        text.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_that_never_greets_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("port").port();
    // Accepts one connection and says nothing, for a bounded while.
    let silent = tokio::spawn(async move {
        if let Ok((socket, _)) = listener.accept().await {
            tokio::time::sleep(Duration::from_secs(20)).await;
            drop(socket);
        }
    });
    let mut cfg = config("127.0.0.1", port, ImapTls::None, None);
    cfg.timeout = Duration::from_millis(500);
    let start = Instant::now();
    let e = Mailbox::open(&cfg).await.expect_err("no greeting");
    let took = start.elapsed();
    silent.abort();
    assert!(
        took >= cfg.timeout && took < Duration::from_secs(5),
        "took {took:?}"
    );
    let text = format!("{e:#}");
    assert!(
        text.contains(&format!("no IMAP greeting from 127.0.0.1:{port}"))
            && text.contains("no answer within"),
        "{text}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let dovecot = Dovecot::start();
    for (tls, port) in [
        (ImapTls::Tls, dovecot.port()),
        (ImapTls::Starttls, dovecot.plain_port()),
    ] {
        let cfg = config("127.0.0.1", port, tls, None);
        let e = Mailbox::open(&cfg)
            .await
            .expect_err("a certificate from an unknown CA must be refused");
        let text = format!("{e:#}");
        assert!(
            text.contains("TLS handshake with 127.0.0.1")
                && text.contains("certificate")
                && text.contains(&port.to_string()),
            "{tls:?}: {text}"
        );
    }
    assert!(dovecot.logins().is_empty(), "{:?}", dovecot.logins());
}

#[tokio::test]
async fn the_wrong_kind_of_port_is_explained() {
    let dovecot = Dovecot::start();
    let cfg = config(
        "127.0.0.1",
        dovecot.plain_port(),
        ImapTls::Tls,
        Some(&dovecot),
    );
    let text = format!(
        "{:#}",
        Mailbox::open(&cfg).await.expect_err("TLS to a plain port")
    );
    assert!(text.contains("starttls"), "{text}");

    let mut cfg = config(
        "127.0.0.1",
        dovecot.port(),
        ImapTls::Starttls,
        Some(&dovecot),
    );
    cfg.timeout = Duration::from_millis(500);
    let text = format!(
        "{:#}",
        Mailbox::open(&cfg).await.expect_err("STARTTLS to IMAPS")
    );
    assert!(
        text.contains("no IMAP greeting") && text.contains("`tls = \"tls\"`"),
        "{text}"
    );
}

/// Capabilities as Dovecot 2.3 advertises them after LOGIN, less MOVE (and less UIDPLUS).
const WITHOUT_MOVE: &str = "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE \
                            LITERAL+ NAMESPACE CHILDREN UIDPLUS";
const WITHOUT_MOVE_OR_UIDPLUS: &str =
    "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE CHILDREN";

#[tokio::test]
async fn without_move_a_processed_message_is_copied_then_expunged_alone() {
    let dovecot = Dovecot::start_with(WITHOUT_MOVE);
    for n in 1..=3 {
        dovecot.deliver(&bounce(n));
    }
    let cfg = config("127.0.0.1", dovecot.port(), ImapTls::Tls, Some(&dovecot));
    let mut mailbox = open(&cfg, &dovecot).await;
    let fetched = fetch(&mut mailbox, 10, &dovecot).await;
    assert_eq!(fetched.len(), 3);
    settle(&mut mailbox, fetched[1].uid, Verdict::Processed, &dovecot).await;
    let rest = fetch(&mut mailbox, 10, &dovecot).await;
    mailbox.close().await;

    assert_eq!(
        rest.iter().map(|f| f.uid).collect::<Vec<_>>(),
        [fetched[0].uid, fetched[2].uid]
    );
    assert_eq!(subjects(&dovecot, "INBOX"), ["bounce 1", "bounce 3"]);
    let processed = dovecot.messages(DEFAULT_PROCESSED_FOLDER);
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].subject, "bounce 2");
    assert!(
        !has(&processed[0].flags, "\\Deleted") && !has(&processed[0].flags, IGNORED_KEYWORD),
        "the copy is taken before the original is flagged: {processed:?}"
    );
    for m in dovecot.messages("INBOX") {
        assert!(!has(&m.flags, "\\Deleted"), "{m:?}");
    }
    let commands = commands(&dovecot);
    let uid = fetched[1].uid;
    let expected = [
        format!("UID COPY {uid} \"{DEFAULT_PROCESSED_FOLDER}\""),
        format!("UID STORE {uid} +FLAGS (\\Deleted {IGNORED_KEYWORD})"),
        format!("UID EXPUNGE {uid}"),
    ];
    let used: Vec<&String> = commands
        .iter()
        .filter(|c| c.contains("COPY") || c.contains("STORE") || c.contains("EXPUNGE"))
        .collect();
    assert_eq!(used, expected.iter().collect::<Vec<_>>(), "{commands:#?}");
    assert!(
        commands.iter().all(|c| !c.contains("MOVE")),
        "{commands:#?}"
    );
}

#[tokio::test]
async fn without_move_or_uidplus_a_processed_message_is_copied_and_marked() {
    let dovecot = Dovecot::start_with(WITHOUT_MOVE_OR_UIDPLUS);
    for n in 1..=2 {
        dovecot.deliver(&bounce(n));
    }
    let cfg = config("127.0.0.1", dovecot.port(), ImapTls::Tls, Some(&dovecot));
    let mut mailbox = open(&cfg, &dovecot).await;
    let fetched = fetch(&mut mailbox, 10, &dovecot).await;
    assert_eq!(fetched.len(), 2);
    settle(&mut mailbox, fetched[0].uid, Verdict::Processed, &dovecot).await;
    mailbox.close().await;

    let mut again = open(&cfg, &dovecot).await;
    let rest = fetch(&mut again, 10, &dovecot).await;
    again.close().await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].uid, fetched[1].uid);

    let inbox = dovecot.messages("INBOX");
    assert_eq!(inbox.len(), 2, "nothing is expunged: {inbox:?}");
    assert!(has(&inbox[0].flags, IGNORED_KEYWORD), "{inbox:?}");
    assert!(!has(&inbox[0].flags, "\\Deleted"), "{inbox:?}");
    assert_eq!(subjects(&dovecot, DEFAULT_PROCESSED_FOLDER), ["bounce 1"]);
    let commands = commands(&dovecot);
    let uid = fetched[0].uid;
    assert!(
        commands.contains(&format!("UID COPY {uid} \"{DEFAULT_PROCESSED_FOLDER}\""))
            && commands.contains(&format!("UID STORE {uid} +FLAGS ({IGNORED_KEYWORD})")),
        "{commands:#?}"
    );
    assert!(
        commands
            .iter()
            .all(|c| !c.contains("MOVE") && !c.contains("EXPUNGE") && !c.contains("Deleted")),
        "{commands:#?}"
    );
}

#[tokio::test]
async fn settling_a_message_that_is_gone_is_not_an_error() {
    let dovecot = Dovecot::start();
    dovecot.deliver(&bounce(1));
    let cfg = config("127.0.0.1", dovecot.port(), ImapTls::Tls, Some(&dovecot));
    let mut mailbox = open(&cfg, &dovecot).await;
    let fetched = fetch(&mut mailbox, 10, &dovecot).await;
    settle(&mut mailbox, fetched[0].uid, Verdict::Processed, &dovecot).await;
    settle(&mut mailbox, fetched[0].uid, Verdict::Processed, &dovecot).await;
    settle(&mut mailbox, fetched[0].uid, Verdict::Ignored, &dovecot).await;
    assert!(fetch(&mut mailbox, 10, &dovecot).await.is_empty());
    mailbox.close().await;
    assert_eq!(dovecot.folder_count("INBOX"), 0);
    assert_eq!(dovecot.folder_count(DEFAULT_PROCESSED_FOLDER), 1);
    commands(&dovecot);
}

#[tokio::test]
async fn a_missing_bounce_folder_is_named_in_the_error() {
    let dovecot = Dovecot::start();
    let mut cfg = config("127.0.0.1", dovecot.port(), ImapTls::Tls, Some(&dovecot));
    cfg.folder = "Bounces".to_string();
    let e = Mailbox::open(&cfg).await.expect_err("no such folder");
    let text = format!("{e:#}");
    assert!(
        text.contains("cannot select folder `Bounces` on 127.0.0.1:") && text.contains("NO"),
        "{text}"
    );
}

/// Every `log` record, whoever wrote it.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.target(), record.args());
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[tokio::test]
async fn the_password_reaches_no_log_record() {
    log::set_logger(&CAPTURE).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Trace);
    let dovecot = Dovecot::start();
    dovecot.deliver(&bounce(1));
    let cfg = config("127.0.0.1", dovecot.port(), ImapTls::Tls, Some(&dovecot));
    let mut mailbox = open(&cfg, &dovecot).await;
    fetch(&mut mailbox, 10, &dovecot).await;
    mailbox.close().await;

    let lines = CAPTURE.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // rustls logs its handshake at debug level: proof that the logger saw this session.
    assert!(!lines.is_empty(), "no log record at all");
    for line in &lines {
        assert!(!line.contains(PASSWORD), "{line}");
    }
}
