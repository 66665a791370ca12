//! `brief::smtp` against the in-process SMTP server: sends, every scripted fault's outcome, TLS
//! and AUTH.

use std::time::Duration;

use brief::config::{self, Secret, Tls};
use brief::smtp::{SendFailure, SmtpClient, SmtpConnection, Stage};
use lettre::Address;

use crate::support::pki::TestPki;
use crate::support::smtp_server::{Rule, SmtpServer};

const FROM: &str = "brief@example.org";

fn cfg(server: &SmtpServer) -> config::Smtp {
    config::Smtp {
        transport: config::TransportKind::Smtp,
        host: "127.0.0.1".into(),
        port: server.port(),
        helo_name: Some("client.test".into()),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn addr(s: &str) -> Address {
    s.parse().expect("test address")
}

/// A small message with CRLF line ends and a line that starts with a dot (to be stuffed).
fn message(to: &str) -> Vec<u8> {
    format!(
        "From: <{FROM}>\r\nTo: <{to}>\r\nSubject: BRIEF\r\nMessage-ID: <{to}.test@example.org>\r\n\
         \r\nHello {to}.\r\n.a line starting with a dot\r\n..and one with two\r\n"
    )
    .into_bytes()
}

async fn connect(server: &SmtpServer) -> SmtpConnection {
    connect_with(&cfg(server)).await
}

/// A connection with settings of the test's own (TLS, AUTH, timeouts).
async fn connect_with(c: &config::Smtp) -> SmtpConnection {
    let client = SmtpClient::new(c).expect("client");
    client.connect().await.expect("connect")
}

async fn send(conn: &mut SmtpConnection, to: &str) -> Result<brief::smtp::Reply, SendFailure> {
    conn.send(&addr(FROM), &addr(to), &message(to), None).await
}

#[tokio::test]
async fn a_message_arrives_byte_for_byte() {
    let server = SmtpServer::start().await;
    let mut conn = connect(&server).await;

    let reply = send(&mut conn, "ana@example.net").await.expect("sent");
    conn.quit().await;

    assert_eq!(reply.code, 250);
    assert!(reply.text.starts_with("2.0.0 Ok: queued as"), "{reply}");
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, FROM);
    assert_eq!(got[0].rcpt_to, vec!["ana@example.net".to_string()]);
    assert_eq!(
        String::from_utf8_lossy(&got[0].data),
        String::from_utf8_lossy(&message("ana@example.net"))
    );
    assert!(!got[0].tls);
    let commands = server.commands();
    assert_eq!(
        commands.first().map(String::as_str),
        Some("EHLO client.test")
    );
    assert_eq!(commands.last().map(String::as_str), Some("QUIT"));
}

#[tokio::test]
async fn one_connection_carries_one_message_per_recipient() {
    let server = SmtpServer::start().await;
    let mut conn = connect(&server).await;
    let recipients: Vec<String> = (0..20).map(|i| format!("r{i}@example.net")).collect();

    for to in &recipients {
        send(&mut conn, to).await.expect("sent");
    }
    conn.quit().await;

    assert_eq!(server.connections(), 1);
    assert_eq!(server.accepted(), 20);
    for to in &recipients {
        assert_eq!(server.copies(to), 1, "{to}");
    }
    assert!(server.messages().iter().all(|m| m.rcpt_to.len() == 1));
}

#[tokio::test]
async fn temporary_rcpt_replies_are_temporary_and_keep_the_connection() {
    let server = SmtpServer::start().await;
    server
        .rule(Rule::rcpt("a@example.net").reply("450 4.2.0 mailbox busy"))
        .rule(Rule::rcpt("b@example.net").reply("451 4.3.0 local error"))
        .rule(Rule::rcpt("c@example.net").reply("452 4.2.2 mailbox full"));
    let mut conn = connect(&server).await;

    for (to, code) in [
        ("a@example.net", 450),
        ("b@example.net", 451),
        ("c@example.net", 452),
    ] {
        let e = send(&mut conn, to).await.unwrap_err();
        assert!(
            matches!(e, SendFailure::Temporary { code: Some(c), .. } if c == code),
            "{to}: {e:?}"
        );
        assert!(!e.suppresses_address());
        assert_eq!(e.stage(), Stage::Rcpt, "{e}");
        assert!(!e.precedes_recipient());
        assert!(
            e.to_string()
                .contains(&format!("127.0.0.1:{}", server.port())),
            "{e}"
        );
        assert!(conn.is_usable(), "{to}");
    }
    send(&mut conn, "d@example.net")
        .await
        .expect("sent after the rejections");

    assert_eq!(server.connections(), 1);
    assert_eq!(server.accepted(), 1);
    let commands = server.commands();
    let rcpt = commands
        .iter()
        .position(|c| c == "RCPT TO:<a@example.net>")
        .expect("RCPT sent");
    // The server offers PIPELINING, so DATA went out with RCPT (and was refused for want of a
    // recipient); then the transaction is reset.
    assert_eq!(
        commands[rcpt + 1..rcpt + 3],
        ["DATA", "RSET"],
        "{commands:?}"
    );
    // PIPELINING was read from the one EHLO reply the session has.
    let ehlos = commands.iter().filter(|c| c.starts_with("EHLO ")).count();
    assert_eq!(ehlos, 1, "{commands:?}");
}

#[tokio::test]
async fn without_pipelining_commands_go_one_by_one() {
    let server = SmtpServer::start().await;
    server
        .rule(Rule::command("EHLO").reply("250 smtp.test says hello"))
        .rule(Rule::rcpt("a@example.net").reply("450 4.2.0 mailbox busy"));
    let mut conn = connect(&server).await;

    let e = send(&mut conn, "a@example.net").await.unwrap_err();
    assert!(
        matches!(
            e,
            SendFailure::Temporary {
                code: Some(450),
                ..
            }
        ),
        "{e:?}"
    );
    send(&mut conn, "b@example.net")
        .await
        .expect("sent after the rejection");

    assert_eq!(server.accepted(), 1);
    let commands = server.commands();
    let rcpt = commands
        .iter()
        .position(|c| c == "RCPT TO:<a@example.net>")
        .expect("RCPT sent");
    assert_eq!(commands[rcpt + 1], "RSET", "{commands:?}");
}

#[tokio::test]
async fn a_pipelined_refusal_of_mail_is_reported_at_mail() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::command("MAIL")
            .reply("451 4.3.2 try again later")
            .times(1),
    );
    let mut conn = connect(&server).await;

    let e = send(&mut conn, "a@example.net").await.unwrap_err();
    assert!(
        matches!(
            e,
            SendFailure::Temporary {
                code: Some(451),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("MAIL FROM"), "{e}");
    // Before any recipient is named: the relay's failure, never a reader's.
    assert_eq!(e.stage(), Stage::Mail);
    assert!(e.precedes_recipient());
    assert_eq!(e.status(), Some((4, 3, 2)));
    assert!(conn.is_usable());
    send(&mut conn, "a@example.net")
        .await
        .expect("sent on the same connection");
    assert_eq!((server.connections(), server.accepted()), (1, 1));
}

#[tokio::test]
async fn greylisting_defers_twice_then_accepts() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::rcpt("grey@example.net")
            .reply("451 4.7.1 greylisted, try again later")
            .times(2),
    );
    let mut conn = connect(&server).await;

    let first = send(&mut conn, "grey@example.net").await.unwrap_err();
    let second = send(&mut conn, "grey@example.net").await.unwrap_err();
    let third = send(&mut conn, "grey@example.net").await;

    assert_eq!(first.code(), Some(451));
    assert!(matches!(
        second,
        SendFailure::Temporary {
            code: Some(451),
            ..
        }
    ));
    assert!(second.text().contains("4.7.1 greylisted"), "{second}");
    assert_eq!(third.expect("third try accepted").code, 250);
    assert_eq!(server.copies("grey@example.net"), 1);
}

#[tokio::test]
async fn unknown_user_is_permanent_and_suppresses_the_address() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt("gone@example.net").reply("550 5.1.1 <gone@example.net>: user unknown"));
    let mut conn = connect(&server).await;

    let e = send(&mut conn, "gone@example.net").await.unwrap_err();

    assert!(
        matches!(e, SendFailure::Permanent { code: 550, .. }),
        "{e:?}"
    );
    assert!(e.suppresses_address());
    assert!(e.to_string().contains("550 5.1.1"), "{e}");
    assert!(conn.is_usable());
    send(&mut conn, "here@example.net")
        .await
        .expect("next recipient");
    assert_eq!(server.copies("gone@example.net"), 0);
}

#[tokio::test]
async fn policy_rejection_is_permanent_but_does_not_suppress() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt("vip@example.net").reply("550 5.7.1 relaying denied"));
    let mut conn = connect(&server).await;

    let e = send(&mut conn, "vip@example.net").await.unwrap_err();

    assert!(
        matches!(e, SendFailure::Permanent { code: 550, .. }),
        "{e:?}"
    );
    assert!(!e.suppresses_address());
    assert!(conn.is_usable());
}

#[tokio::test]
async fn replies_to_the_final_dot_are_classified_too() {
    let server = SmtpServer::start().await;
    server
        .rule(Rule::end_of_data_for("spam@example.net").reply("554 5.6.0 content rejected"))
        .rule(Rule::end_of_data_for("busy@example.net").reply("451 4.3.0 try later"));
    let mut conn = connect(&server).await;

    let permanent = send(&mut conn, "spam@example.net").await.unwrap_err();
    let temporary = send(&mut conn, "busy@example.net").await.unwrap_err();

    assert!(
        matches!(permanent, SendFailure::Permanent { code: 554, .. }),
        "{permanent:?}"
    );
    assert!(
        matches!(
            temporary,
            SendFailure::Temporary {
                code: Some(451),
                ..
            }
        ),
        "{temporary:?}"
    );
    assert!(conn.is_usable());
    assert_eq!(server.accepted(), 0);
}

#[tokio::test]
async fn a_reply_lost_after_the_final_dot_is_ambiguous() {
    let server = SmtpServer::start().await;
    server.rule(Rule::end_of_data_for("lost@example.net").hang_up());
    let mut conn = connect(&server).await;

    let e = send(&mut conn, "lost@example.net").await.unwrap_err();

    assert!(matches!(e, SendFailure::Ambiguous { .. }), "{e:?}");
    assert_eq!(e.code(), None);
    assert!(e.to_string().contains("may have been accepted"), "{e}");
    assert!(!conn.is_usable());
    // The server did take it: a retry would be the duplicate that the policy accepts.
    assert_eq!(server.copies("lost@example.net"), 1);
    let again = send(&mut conn, "next@example.net").await.unwrap_err();
    assert!(
        matches!(again, SendFailure::Temporary { code: None, .. }),
        "{again:?}"
    );
    assert!(again.to_string().contains("no longer usable"), "{again}");
}

#[tokio::test]
async fn a_stall_after_the_final_dot_is_ambiguous() {
    let server = SmtpServer::start().await;
    server.rule(Rule::end_of_data().stall());
    let mut c = cfg(&server);
    c.timeout = Duration::from_millis(500);
    let mut conn = SmtpClient::new(&c).unwrap().connect().await.unwrap();

    let e = send(&mut conn, "slow@example.net").await.unwrap_err();

    assert!(matches!(e, SendFailure::Ambiguous { .. }), "{e:?}");
    assert!(
        e.to_string().contains("to the final dot within 500ms"),
        "{e}"
    );
    assert!(!conn.is_usable());
}

#[tokio::test]
async fn a_stall_at_rcpt_times_out_as_temporary() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt("slow@example.net").stall().times(1));
    let mut c = cfg(&server);
    c.timeout = Duration::from_millis(500);
    let client = SmtpClient::new(&c).unwrap();
    let mut conn = client.connect().await.unwrap();

    let e = send(&mut conn, "slow@example.net").await.unwrap_err();

    assert!(
        matches!(e, SendFailure::Temporary { code: None, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("no reply from 127.0.0.1:")
            && e.to_string().contains("within 500ms"),
        "{e}"
    );
    assert!(!conn.is_usable());
    // A fresh connection goes through once the rule is used up.
    let mut conn = client.connect().await.unwrap();
    send(&mut conn, "slow@example.net")
        .await
        .expect("second connection");
    assert_eq!(server.copies("slow@example.net"), 1);
}

#[tokio::test]
async fn service_closing_421_is_temporary_at_the_greeting_and_at_a_command() {
    let server = SmtpServer::start().await;
    server
        .rule(
            Rule::greeting()
                .reply_and_hang_up("421 4.3.2 too busy, come back later")
                .times(1),
        )
        .rule(
            Rule::command("MAIL")
                .reply_and_hang_up("421 4.4.2 idle too long")
                .times(1),
        );
    let client = SmtpClient::new(&cfg(&server)).unwrap();

    let at_greeting = client.connect().await.unwrap_err();
    let mut conn = client.connect().await.expect("second connection");
    let at_mail = send(&mut conn, "a@example.net").await.unwrap_err();

    assert!(
        matches!(
            at_greeting,
            SendFailure::Temporary {
                code: Some(421),
                ..
            }
        ),
        "{at_greeting:?}"
    );
    assert!(
        matches!(
            at_mail,
            SendFailure::Temporary {
                code: Some(421),
                ..
            }
        ),
        "{at_mail:?}"
    );
    assert!(at_mail.to_string().contains("MAIL FROM"), "{at_mail}");
    assert!(!conn.is_usable(), "421 closes the session");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_connection_lost_before_data_is_temporary() {
    let server = SmtpServer::start().await;
    server.rule(Rule::command("DATA").hang_up());
    let mut conn = connect(&server).await;

    let e = send(&mut conn, "a@example.net").await.unwrap_err();

    assert!(
        matches!(e, SendFailure::Temporary { code: None, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("lost at DATA: the server closed the connection"),
        "{e}"
    );
    assert!(!conn.is_usable());
}

#[tokio::test]
async fn many_connections_at_once() {
    let server = SmtpServer::start().await;
    let client = SmtpClient::new(&cfg(&server)).unwrap();

    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let client = client.clone();
        workers.spawn(async move {
            let mut conn = client.connect().await.expect("connect");
            for i in 0..10 {
                let to = format!("w{w}.{i}@example.net");
                conn.send(&addr(FROM), &addr(&to), &message(&to), None)
                    .await
                    .expect("sent");
            }
            conn.quit().await;
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("worker");
    }

    assert_eq!(server.connections(), 8);
    assert_eq!(server.accepted(), 80);
    let mut used: Vec<usize> = server.messages().iter().map(|m| m.connection).collect();
    used.sort();
    used.dedup();
    assert_eq!(used.len(), 8, "each worker kept its own connection");
}

#[tokio::test]
async fn two_hundred_messages_on_one_connection() {
    let server = SmtpServer::start().await;
    let mut conn = connect(&server).await;

    for i in 0..200 {
        send(&mut conn, &format!("r{i}@example.net"))
            .await
            .expect("sent");
    }
    conn.quit().await;

    assert_eq!(server.accepted(), 200);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn eight_bit_bodies_are_declared() {
    let server = SmtpServer::start().await;
    let mut conn = connect(&server).await;
    let raw = "Subject: ñ\r\n\r\nCiudad de México\r\n".as_bytes();

    conn.send(&addr(FROM), &addr("a@example.net"), raw, None)
        .await
        .expect("sent");

    assert!(server
        .commands()
        .contains(&format!("MAIL FROM:<{FROM}> BODY=8BITMIME")));
    assert_eq!(server.messages()[0].data, raw);
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_refused() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start().await;
    let mut c = cfg(&server);
    c.tls = Tls::Starttls;
    c.ca_file = Some(pki.write_ca(dir.path()));

    let e = SmtpClient::new(&c).unwrap().connect().await.unwrap_err();

    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "127.0.0.1:{} does not offer STARTTLS",
            server.port()
        )),
        "{text}"
    );
    assert!(text.contains("never falls back to plain text"), "{text}");
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
}

#[tokio::test]
async fn starttls_with_the_test_ca() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::builder()
        .starttls(pki.server_config())
        .start()
        .await;
    let mut c = cfg(&server);
    c.tls = Tls::Starttls;
    c.ca_file = Some(pki.write_ca(dir.path()));
    let mut conn = connect_with(&c).await;

    send(&mut conn, "a@example.net").await.expect("sent");

    assert!(server.messages()[0].tls);
    let commands = server.commands();
    assert_eq!(
        commands[..3],
        ["EHLO client.test", "STARTTLS", "EHLO client.test"]
    );
}

#[tokio::test]
async fn implicit_tls_with_the_test_ca() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::builder()
        .implicit_tls(pki.server_config())
        .start()
        .await;
    let mut c = cfg(&server);
    c.tls = Tls::Tls;
    c.ca_file = Some(pki.write_ca(dir.path()));
    let mut conn = connect_with(&c).await;

    send(&mut conn, "a@example.net").await.expect("sent");

    assert!(server.messages()[0].tls);
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let pki = TestPki::new();
    let server = SmtpServer::builder()
        .implicit_tls(pki.server_config())
        .start()
        .await;
    let mut c = cfg(&server);
    c.tls = Tls::Tls;

    let e = SmtpClient::new(&c).unwrap().connect().await.unwrap_err();

    assert!(
        matches!(e, SendFailure::Temporary { code: None, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("TLS handshake with 127.0.0.1:"),
        "{e}"
    );
    assert!(e.to_string().contains("certificate"), "{e}");
    assert_eq!(server.accepted(), 0);
}

#[tokio::test]
async fn auth_plain_sends_the_configured_credentials() {
    let server = SmtpServer::builder()
        .auth("newsletter", "correct horse")
        .start()
        .await;
    let mut c = cfg(&server);
    c.username = Some("newsletter".into());
    c.password = Some(Secret::new("correct horse".into()));
    let mut conn = connect_with(&c).await;

    send(&mut conn, "a@example.net").await.expect("sent");

    assert_eq!(
        server.auth_attempts(),
        vec![("newsletter".to_string(), "correct horse".to_string())]
    );
    assert!(server.commands().contains(&"AUTH PLAIN ***".to_string()));
}

#[tokio::test]
async fn auth_after_starttls() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::builder()
        .starttls(pki.server_config())
        .auth("newsletter", "correct horse")
        .start()
        .await;
    let mut c = cfg(&server);
    c.tls = Tls::Starttls;
    c.ca_file = Some(pki.write_ca(dir.path()));
    c.username = Some("newsletter".into());
    c.password = Some(Secret::new("correct horse".into()));
    let mut conn = connect_with(&c).await;

    send(&mut conn, "a@example.net").await.expect("sent");

    assert_eq!(server.auth_attempts().len(), 1);
    assert!(server.messages()[0].tls);
    // One EHLO before STARTTLS and the one RFC 3207 asks for after it.
    let commands = server.commands();
    let ehlos = commands.iter().filter(|c| c.starts_with("EHLO ")).count();
    assert_eq!(ehlos, 2, "{commands:?}");
}

#[tokio::test]
async fn a_wrong_password_fails_without_showing_it() {
    let server = SmtpServer::builder()
        .auth("newsletter", "right")
        .start()
        .await;
    let mut c = cfg(&server);
    c.username = Some("newsletter".into());
    c.password = Some(Secret::new("hunter2-wrong".into()));
    let client = SmtpClient::new(&c).unwrap();

    let e = client.connect().await.unwrap_err();

    assert!(
        matches!(e, SendFailure::Permanent { code: 535, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("refused the credentials for smtp.username \"newsletter\" (535 "),
        "{e}"
    );
    for shown in [e.to_string(), format!("{e:?}"), format!("{client:?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert_eq!(server.auth_attempts()[0].1, "hunter2-wrong");
}

#[tokio::test]
async fn an_unreadable_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start().await;
    let mut c = cfg(&server);
    c.tls = Tls::Starttls;
    c.ca_file = Some(dir.path().join("missing.pem"));
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();

    let missing = SmtpClient::new(&c).unwrap_err();
    c.ca_file = Some(empty);
    let no_cert = SmtpClient::new(&c).unwrap_err();

    assert!(
        format!("{missing:#}").contains("cannot read `smtp.ca_file`"),
        "{missing:#}"
    );
    assert!(
        format!("{missing:#}").contains("missing.pem"),
        "{missing:#}"
    );
    assert!(
        format!("{no_cert:#}").contains("holds no certificate"),
        "{no_cert:#}"
    );
}

#[tokio::test]
async fn auth_login_when_plain_is_not_offered() {
    let server = SmtpServer::builder()
        .auth("newsletter", "correct horse")
        .auth_mechanisms("LOGIN")
        .start()
        .await;
    let mut c = cfg(&server);
    c.username = Some("newsletter".into());
    c.password = Some(Secret::new("correct horse".into()));
    let mut conn = connect_with(&c).await;

    send(&mut conn, "a@example.net").await.expect("sent");

    assert!(server.commands().contains(&"AUTH LOGIN ***".to_string()));
    assert_eq!(
        server.auth_attempts(),
        vec![("newsletter".to_string(), "correct horse".to_string())]
    );
}

#[tokio::test]
async fn a_server_without_a_usable_auth_mechanism_is_refused() {
    let server = SmtpServer::builder()
        .auth("newsletter", "correct horse")
        .auth_mechanisms("CRAM-MD5")
        .start()
        .await;
    let mut c = cfg(&server);
    c.username = Some("newsletter".into());
    c.password = Some(Secret::new("correct horse".into()));

    let e = SmtpClient::new(&c).unwrap().connect().await.unwrap_err();

    assert!(
        e.to_string()
            .contains("offers no AUTH mechanism brief can use"),
        "{e}"
    );
    assert!(server.auth_attempts().is_empty());
}

#[tokio::test]
async fn a_reply_out_of_sequence_ends_the_connection() {
    let server = SmtpServer::start().await;
    server.rule(Rule::command("RCPT").reply("354 go ahead"));
    let mut conn = connect(&server).await;

    let e = send(&mut conn, "a@example.net").await.unwrap_err();

    assert!(
        matches!(e, SendFailure::Temporary { code: None, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("unexpected 354"), "{e}");
    assert!(!conn.is_usable());
    assert_eq!(server.accepted(), 0);
}

#[tokio::test]
async fn settings_that_cannot_work_fail_at_start() {
    let server = SmtpServer::start().await;
    let mut no_password = cfg(&server);
    no_password.username = Some("newsletter".into());
    let mut bad_name = cfg(&server);
    bad_name.host = "smtp example org".into();
    bad_name.tls = Tls::Starttls;
    let mut bad_helo = cfg(&server);
    bad_helo.helo_name = Some("two words".into());

    let no_password = SmtpClient::new(&no_password).unwrap_err();
    let bad_name = SmtpClient::new(&bad_name).unwrap_err();
    let bad_helo = SmtpClient::new(&bad_helo).unwrap_err();

    assert!(
        no_password
            .to_string()
            .contains("named by `smtp.password_env`"),
        "{no_password}"
    );
    assert!(
        bad_name
            .to_string()
            .contains("neither a DNS name nor an IP address"),
        "{bad_name}"
    );
    assert!(
        format!("{bad_helo:#}").contains("must be one word"),
        "{bad_helo:#}"
    );
}

#[tokio::test]
async fn check_tells_an_open_session_from_a_closed_one() {
    let server = SmtpServer::start().await;
    server.rule(Rule::command("NOOP").hang_up().times(1));
    let client = SmtpClient::new(&cfg(&server)).unwrap();
    let mut closed = client.connect().await.unwrap();
    let mut open = client.connect().await.unwrap();

    let closed_answers = closed.check().await;
    let open_answers = open.check().await;

    assert!(!closed_answers);
    assert!(!closed.is_usable());
    assert!(open_answers);
    send(&mut open, "a@example.net")
        .await
        .expect("sent after NOOP");
}
