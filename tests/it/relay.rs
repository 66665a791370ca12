//! brief through a real relay: a private Postfix on loopback with STARTTLS and SASL AUTH through
//! a private Dovecot, delivering into one Maildir per reader (`support::relay`). What a relay's
//! admin would look at: one copy per reader, DKIM intact after Postfix added its headers, the
//! client's manners in Postfix's log (EHLO name and count, AUTH, QUIT), and what happens when
//! the relay limits, refuses or goes away.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::dkim::{dkimpy_all, ed25519_key, DOMAIN, SELECTOR};
use crate::support::relay::{Relay, SMTP_PASSWORD, SMTP_USER};
use crate::support::World;

fn reader(i: usize) -> String {
    format!("r{i:02}")
}

/// A world of `n` readers (`rNN@example.org`) sending through `relay` with STARTTLS and AUTH
/// (password from `BRIEF_TEST_RELAY_PASSWORD`), DKIM-signed with Ed25519, no `helo_name` (the
/// default is used), and these `[delivery]` lines. Returns the world and the DKIM TXT record.
fn world(relay: &Relay, n: usize, delivery: &str, smtp: &str) -> (World, String) {
    let (_, pem, txt) = ed25519_key();
    let w = World::with_config(&format!(
        "[dkim]\ndomain = \"{DOMAIN}\"\nselector = \"{SELECTOR}\"\nprivate_key_file = \"dkim.pem\"\n"
    ));
    w.write("dkim.pem", &pem);
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\n\
         ca_file = \"{}\"\nusername = \"{SMTP_USER}\"\npassword_env = \"BRIEF_TEST_RELAY_PASSWORD\"\n\
         timeout = \"5s\"\n{smtp}",
        relay.port(),
        relay.ca_pem_path().display()
    ));
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &text.replace(
            "[delivery]\ndatabase = \"data/brief.db\"\n",
            &format!("[delivery]\ndatabase = \"data/brief.db\"\n{delivery}\n"),
        ),
    );
    let mut csv = String::from("email,name\n");
    for i in 0..n {
        csv.push_str(&format!("{}@example.org,Reader {i}\n", reader(i)));
    }
    w.write("subscribers.csv", &csv);
    (w, txt)
}

fn send(w: &World, password: &str) -> Output {
    w.brief()
        .args(["send", "--yes"])
        .env("BRIEF_TEST_RELAY_PASSWORD", password)
        .output()
        .unwrap()
}

/// `brief report --format jsonl`, by address.
fn report(w: &World) -> HashMap<String, Value> {
    let out = w
        .brief()
        .args(["report", "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["address"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Every reader gets exactly one copy through STARTTLS and AUTH, the DKIM signature verifies
/// on the copy Postfix delivered (with the headers it added), and Postfix's log shows a good
/// client: a fully qualified EHLO name, two EHLOs and one AUTH a session, QUIT at the end.
#[test]
fn a_campaign_through_a_real_relay_reaches_every_reader_once_and_verifies() {
    let relay = Relay::start();
    let (w, txt) = world(&relay, 6, "concurrency = 2", "");

    let out = send(&w, SMTP_PASSWORD);

    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", relay.logs());
    assert_eq!(
        relay.wait_delivered(6, Duration::from_secs(20)),
        6,
        "{}",
        relay.logs()
    );
    let records = [(format!("{SELECTOR}._domainkey.{DOMAIN}"), txt)];
    for i in 0..6 {
        let copies = relay.maildir_messages(&reader(i));
        assert_eq!(copies.len(), 1, "{}: {}", reader(i), relay.logs());
        assert!(
            String::from_utf8_lossy(&copies[0]).starts_with("Return-Path: <"),
            "delivered by the relay"
        );
        dkimpy_all(&copies[0], &records).unwrap_or_else(|e| panic!("{}: {e}", reader(i)));
    }
    let log = relay.log();
    assert!(!log.contains("Helo command rejected"), "{log}");
    let sessions = relay.disconnect_lines();
    assert!(!sessions.is_empty(), "{log}");
    for s in &sessions {
        assert!(
            s.contains(" ehlo=2 starttls=1 auth=1 ") && s.contains(" quit=1 "),
            "{s}"
        );
    }
}

/// A wrong password: no reader is charged, Postfix sees one failed login for the whole run
/// (not one per worker), the session still ends with QUIT, and the error names the setting.
#[test]
fn a_wrong_password_charges_no_reader_and_costs_one_failed_login() {
    let relay = Relay::start();
    let (w, _) = world(&relay, 4, "concurrency = 4", "");

    let out = send(&w, "not-the-password");

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "refused the credentials for smtp.username \"{SMTP_USER}\""
        )) && stderr.contains("password_env BRIEF_TEST_RELAY_PASSWORD"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    assert!(
        relay.wait_for_log(" auth=0/1 ", Duration::from_secs(10)),
        "{}",
        relay.log()
    );
    let log = relay.log();
    assert_eq!(log.matches("authentication failed").count(), 1, "{log}");
    for s in relay.disconnect_lines() {
        assert!(s.contains(" quit=1 "), "{s}");
    }
    assert!(report(&w)
        .values()
        .all(|r| r["state"] == "pending" && r["attempts"] == 0));
    assert!(relay.mailboxes().is_empty());
}

/// A relay that limits how much mail a client may send (Postfix's
/// `smtpd_client_message_rate_limit`: `450 4.7.1` at MAIL FROM) and brief's own
/// `max_messages_per_connection`: the deliveries wait and go again without charging anyone,
/// each connection ends with QUIT, and every reader gets one copy.
#[test]
fn a_relay_limit_is_met_without_charging_any_reader() {
    let relay = Relay::start_with("smtpd_client_message_rate_limit = 4\nanvil_rate_time_unit = 1s");
    let (w, _) = world(
        &relay,
        10,
        "concurrency = 2\nmax_attempts = 30\nretry_min = \"300ms\"\nretry_max = \"600ms\"",
        "max_messages_per_connection = 3",
    );

    let out = send(&w, SMTP_PASSWORD);

    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", relay.logs());
    assert_eq!(relay.wait_delivered(10, Duration::from_secs(20)), 10);
    for i in 0..10 {
        assert_eq!(relay.maildir_messages(&reader(i)).len(), 1, "{}", reader(i));
    }
    assert!(
        relay
            .log()
            .contains("Message delivery request rate limit exceeded"),
        "the limit was reached: {}",
        relay.log()
    );
    assert!(
        report(&w).values().all(|r| r["attempts"] == 1),
        "{:?}",
        report(&w)
    );
    let sessions = relay.disconnect_lines();
    for s in &sessions {
        assert!(s.contains(" quit=1 "), "{s}");
    }
    assert!(
        sessions.len() >= 4,
        "10 messages, at most 3 a connection: {sessions:?}"
    );
}

/// The relay goes away mid-send and comes back: the run waits it out and everyone is
/// delivered, with no more extra copies than the crash bound (messages in flight when the
/// connections were cut).
#[test]
fn a_relay_restarted_mid_send_ends_with_everyone_delivered() {
    let relay = Relay::start();
    let n = 30;
    let (w, _) = world(
        &relay,
        n,
        "concurrency = 2\nrate_per_second = 15\nmax_attempts = 30\nretry_min = \"300ms\"\nretry_max = \"1s\"",
        "",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_brief"))
        .current_dir(w.path(""))
        .env_remove("BRIEF_CONFIG")
        .env_remove("RUST_LOG")
        .env("BRIEF_TEST_RELAY_PASSWORD", SMTP_PASSWORD)
        .arg("--config")
        .arg(w.config_path())
        .args(["send", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        relay.wait_delivered(5, Duration::from_secs(20)) >= 5,
        "{}",
        relay.logs()
    );
    relay.stop_smtpd();
    std::thread::sleep(Duration::from_millis(1500));
    relay.start_smtpd();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "brief send did not end"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}\n{}", relay.logs());
    assert!(
        stderr.contains("no attempt counted"),
        "the run saw the relay go away: {stderr}"
    );
    // Bounded, and generous: on a loaded machine the restarted relay takes a while to deliver
    // what it queued before the stop.
    relay.wait_delivered(n, Duration::from_secs(60));
    let mut extra = 0;
    for i in 0..n {
        let copies = relay.maildir_messages(&reader(i)).len();
        assert!(copies >= 1, "{} got nothing: {}", reader(i), relay.logs());
        extra += copies - 1;
    }
    // At most 2 x concurrency messages can be in flight when the relay goes away.
    assert!(extra <= 4, "{extra} extra copies");
    assert!(report(&w).values().all(|r| r["state"] == "sent"));
}

/// The relay's own bounces close the loop: a reader whose mailbox does not exist is accepted by
/// Postfix (250) and bounced later with a real RFC 3464 report to the VERP sender, which lands
/// in the `bounces` Maildir; `brief bounces import` of that report makes the address `bounced`.
#[test]
fn a_real_postfix_bounce_to_the_verp_sender_suppresses_the_reader() {
    let relay = Relay::start();
    let (w, _) = world(&relay, 2, "concurrency = 2", "");
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &format!("{text}\n[bounces]\naddress = \"bounces@{DOMAIN}\"\n"),
    );
    let list = std::fs::read_to_string(w.path("subscribers.csv")).unwrap();
    w.write(
        "subscribers.csv",
        &format!("{list}unknown-reader@{DOMAIN},Nobody\n"),
    );

    let out = send(&w, SMTP_PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Two readers, and the report about the third.
    assert_eq!(
        relay.wait_delivered(3, Duration::from_secs(30)),
        3,
        "{}",
        relay.logs()
    );
    let reports = relay.maildir_messages("bounces");
    assert_eq!(reports.len(), 1, "{}", relay.logs());
    let report_text = String::from_utf8_lossy(&reports[0]).to_string();
    assert!(
        report_text.contains("report-type=delivery-status"),
        "{report_text}"
    );
    // Postfix offers DSN, so brief asked for RET=HDRS and ENVID=TAG: the report returns the
    // headers only and names the delivery's tag.
    assert!(report_text.contains("text/rfc822-headers"), "{report_text}");
    let envid = report_text
        .lines()
        .find_map(|l| l.strip_prefix("Original-Envelope-Id: "))
        .unwrap_or_else(|| panic!("no Original-Envelope-Id in {report_text}"));
    assert!(
        report_text.contains(&format!("bounces+{}@{DOMAIN}", envid.trim())),
        "{report_text}"
    );
    w.write_bytes("returned/1.eml", &reports[0]);

    let import = w
        .brief()
        .args(["bounces", "import"])
        .arg(w.path("returned/1.eml"))
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&import.stdout);
    assert!(import.status.success(), "{import:?}");
    assert!(
        stdout.contains(&format!(
            "hard bounce 5.1.1 for unknown-reader@{DOMAIN} (issue 2021-07): recorded; the address is now bounced"
        )),
        "{stdout}\n{report_text}"
    );
}
