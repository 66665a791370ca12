//! The send engine over real SMTP conversations on loopback: the `brief` binary against the
//! fault-injecting test server, Postfix's `smtp-sink`, TLS, `kill -9` and SIGTERM mid-campaign.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use brief::app::App;
use brief::clock::{Clock, SystemClock};
use brief::deliver::Summary;
use brief::ledger::SharedLedger;
use brief::message::Kind;
use brief::transport::Transport;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::pki::TestPki;
use crate::support::smtp_server::{Received, Rule, SmtpServer};
use crate::support::World;

/// The envelope sender of every campaign message (the world's `newsletter.from`).
const FROM: &str = "brief@news.example.org";
const HELO: &str = "news.example.org";

/// Fast retries so a whole campaign with deferrals runs in seconds.
const FAST: &str =
    "concurrency = 4\nmax_attempts = 5\nretry_min = \"50ms\"\nretry_max = \"200ms\"\n";

fn rcpt(i: usize) -> String {
    format!("r{i:04}@example.org")
}

/// A world whose subscribers are `r0000@example.org` .. and whose mail goes over SMTP.
struct Mailer {
    world: World,
    /// The world's config without its `[delivery]` and `[smtp]` sections.
    base: String,
    /// Environment variables for every command.
    env: Vec<(String, String)>,
}

impl Mailer {
    fn new(subscribers: usize) -> Mailer {
        let world = World::new();
        let text = std::fs::read_to_string(world.config_path()).unwrap();
        let mut base = text.clone();
        for section in [
            "[delivery]\ndatabase = \"data/brief.db\"\n",
            "[smtp]\ntransport = \"outbox\"\noutbox_dir = \"outbox\"\n",
        ] {
            assert!(base.contains(section), "the world's config changed: {text}");
            base = base.replace(section, "");
        }
        let mut csv = String::from("email,name\n");
        for i in 0..subscribers {
            csv.push_str(&format!("{},Reader {i}\n", rcpt(i)));
        }
        world.write("subscribers.csv", &csv);
        Mailer {
            world,
            base,
            env: Vec::new(),
        }
    }

    /// Sets an environment variable for every command of this world.
    fn env(mut self, key: &str, value: &str) -> Mailer {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Points the world at `port` with these `[delivery]` and `[smtp]` lines (a 5 s timeout
    /// unless `smtp` sets one).
    fn configure(&self, port: u16, delivery: &str, smtp: &str) {
        let timeout = if smtp.contains("timeout") {
            ""
        } else {
            "timeout = \"5s\"\n"
        };
        self.world.write(
            "brief.toml",
            &format!(
                "{}\n[delivery]\ndatabase = \"data/brief.db\"\n{delivery}\n\n[smtp]\n\
                 transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
                 helo_name = \"{HELO}\"\n{timeout}{smtp}\n",
                self.base
            ),
        );
    }

    /// Runs `brief ARGS` to its end off the async runtime, so the test server keeps serving.
    async fn brief(&self, args: &[&str]) -> Output {
        let mut cmd = self.world.brief();
        cmd.args(args).envs(self.env.iter().cloned());
        tokio::task::spawn_blocking(move || cmd.output().expect("run brief"))
            .await
            .expect("brief runner")
    }

    /// `brief send --yes` in the background, its output going to files in the world.
    fn spawn_send(&self, tag: &str) -> Child {
        let file = |ext: &str| std::fs::File::create(self.world.path(&format!("{tag}.{ext}")));
        Command::new(env!("CARGO_BIN_EXE_brief"))
            .current_dir(&self.world.root)
            .env_remove("BRIEF_CONFIG")
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg(self.world.config_path())
            .args(["send", "--yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(file("out").unwrap()))
            .stderr(Stdio::from(file("err").unwrap()))
            .spawn()
            .expect("spawn brief send")
    }

    fn output_of(&self, tag: &str, ext: &str) -> String {
        std::fs::read_to_string(self.world.path(&format!("{tag}.{ext}"))).unwrap_or_default()
    }

    /// `brief report --format jsonl` of an issue, by address.
    async fn report(&self, issue: &str) -> HashMap<String, Value> {
        let out = self
            .brief(&["report", "--issue", issue, "--format", "jsonl"])
            .await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("a JSON line");
                (v["address"].as_str().unwrap().to_string(), v)
            })
            .collect()
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Copies received per recipient (lowercased).
fn copies(messages: &[Received]) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for m in messages {
        for r in &m.rcpt_to {
            *n.entry(r.to_ascii_lowercase()).or_insert(0) += 1;
        }
    }
    n
}

fn parsed(m: &Received) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(&m.data)
        .expect("a parsable message")
}

fn attempts(row: &Value) -> u64 {
    row["attempts"].as_u64().unwrap()
}

/// Waits (bounded) until `cond` holds; false when it never did.
async fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..1200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// Waits (bounded) for a child to exit; kills it and fails if it does not.
async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..1200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("brief did not exit within a minute");
}

/// The issue's "Done when": 1,045 readers through a server that answers 451 to one in ten on
/// their first try, greylists 20, rejects 20 with 550 5.1.1 and drops the reply after the final
/// dot for 5. Every deliverable reader gets exactly one copy (the 5 at least one), the rejected
/// none; a second send sends nothing; a test send arrives with [TEST] and stays out of the
/// report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_of_1045_through_every_fault_reaches_each_reader_once() {
    let server = SmtpServer::start().await;
    let m = Mailer::new(1045);
    // The 20 greylisted readers come in a row, each answered the same `451 4.7.1` twice: that is
    // what the circuit breaker stops at its default of 20 (a relay greylisting everyone). Here
    // they stand for readers greylisted one by one, so the breaker sits one reader above them.
    m.configure(server.port(), &format!("{FAST}breaker = 21\n"), "");
    let once_451: Vec<usize> = (0..1000).filter(|i| i % 10 == 0).collect();
    let rejected: Vec<usize> = (1000..1020).collect();
    let greylisted: Vec<usize> = (1020..1040).collect();
    let lost: Vec<usize> = (1040..1045).collect();
    for &i in &once_451 {
        server.rule(
            Rule::rcpt(&rcpt(i))
                .reply("451 4.3.0 try again later")
                .times(1),
        );
    }
    for &i in &rejected {
        server.rule(Rule::rcpt(&rcpt(i)).reply("550 5.1.1 no such user here"));
    }
    for &i in &greylisted {
        server.rule(
            Rule::rcpt(&rcpt(i))
                .reply("451 4.7.1 greylisted, come back later")
                .times(2),
        );
    }
    for &i in &lost {
        server.rule(Rule::end_of_data_for(&rcpt(i)).hang_up().times(1));
    }

    let out = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("issue 2021-07: 1025 sent now; 1025 sent, 20 failed, 0 suppressed, 0 deferred, 0 pending of 1045 (finished)"),
        "{stdout}"
    );
    let got = server.messages();
    let n = copies(&got);
    for i in 0..1045 {
        let c = n.get(&rcpt(i)).copied().unwrap_or(0);
        if rejected.contains(&i) {
            assert_eq!(c, 0, "{} was rejected", rcpt(i));
        } else if lost.contains(&i) {
            assert!(c >= 1, "{} lost its reply but must get a copy", rcpt(i));
        } else {
            assert_eq!(c, 1, "{} gets exactly one copy", rcpt(i));
        }
    }
    assert!(got
        .iter()
        .all(|r| r.mail_from == FROM && r.rcpt_to.len() == 1));
    let ehlos: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("EHLO"))
        .collect();
    assert!(!ehlos.is_empty() && ehlos.iter().all(|c| *c == format!("EHLO {HELO}")));

    let report = m.report("2021-07").await;
    assert_eq!(report.len(), 1045);
    for &i in &rejected {
        let row = &report[&rcpt(i)];
        assert_eq!(row["state"], "failed", "{row}");
        assert_eq!(row["last_code"], 550, "{row}");
        assert!(
            row["last_text"].as_str().unwrap().contains("5.1.1"),
            "{row}"
        );
        assert_eq!(attempts(row), 1, "a 5xx is never retried: {row}");
    }
    for &i in &greylisted {
        let row = &report[&rcpt(i)];
        assert_eq!(
            (row["state"].as_str(), attempts(row)),
            (Some("sent"), 3),
            "{row}"
        );
    }
    for &i in &once_451 {
        let row = &report[&rcpt(i)];
        assert_eq!(
            (row["state"].as_str(), attempts(row)),
            (Some("sent"), 2),
            "{row}"
        );
    }
    for &i in &lost {
        let row = &report[&rcpt(i)];
        assert_eq!(row["state"], "sent", "{row}");
        assert_eq!(row["possible_duplicate"], true, "{row}");
        // The retry is the same message: same Message-ID, same envelope sender.
        let ids: Vec<String> = got
            .iter()
            .filter(|r| r.rcpt_to[0] == rcpt(i))
            .map(|r| parsed(r).message_id().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 2, "ambiguous = retry sends it again");
        assert!(
            ids.iter().all(|id| *id == row["message_id"]),
            "{ids:?} {row}"
        );
    }
    assert!(
        stderr.contains("possible duplicate"),
        "lost replies are logged: {stderr}"
    );

    let again = m.brief(&["send", "--yes"]).await;
    let (stdout, _) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(stdout.contains("already sent"), "{stdout}");
    assert_eq!(server.accepted(), got.len(), "a second send sends nothing");

    let test = m
        .brief(&["send", "--test", "--to", "editor@example.org"])
        .await;
    let (stdout, stderr) = text(&test);
    assert_eq!(test.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("editor@example.org: 250 2.0.0 Ok: queued as"),
        "the server's reply is printed: {stdout}"
    );
    let last = server.messages().pop().unwrap();
    assert_eq!(last.rcpt_to, ["editor@example.org"]);
    assert!(parsed(&last).subject().unwrap().starts_with("[TEST] "));
    let report = m.report("2021-07").await;
    assert_eq!(report.len(), 1045);
    assert!(!report.contains_key("editor@example.org"));
    assert_eq!(
        m.world
            .ledger()
            .test_send_count("2021-07".parse().unwrap())
            .unwrap(),
        1
    );
}

/// Runs one campaign of `n` readers against `server` with `delivery` settings and returns the
/// output and the report.
async fn campaign(
    server: &SmtpServer,
    n: usize,
    delivery: &str,
    smtp: &str,
) -> (Mailer, Output, HashMap<String, Value>) {
    let m = Mailer::new(n);
    m.configure(server.port(), delivery, smtp);
    let out = m.brief(&["send", "--yes"]).await;
    let report = m.report("2021-07").await;
    (m, out, report)
}

/// A 421 mid-session (the relay ends the session) or a 452 4.5.3 (no more messages on this
/// session) is the relay's limit, not the reader's fault: the delivery goes back untried and the
/// worker reconnects at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_421_or_452_4_5_3_mid_session_puts_the_reader_back_untried_and_reconnects() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::rcpt(&rcpt(1))
            .reply_and_hang_up("421 4.3.2 service shutting down")
            .times(1),
    );
    server.rule(
        Rule::rcpt(&rcpt(3))
            .reply("452 4.5.3 too many messages in this session")
            .times(1),
    );
    let delivery = FAST.replace("concurrency = 4", "concurrency = 1");

    let (_m, out, report) = campaign(&server, 5, &delivery, "").await;

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for i in 0..5 {
        assert_eq!(attempts(&report[&rcpt(i)]), 1, "{}", report[&rcpt(i)]);
    }
    assert!(report.values().all(|r| r["state"] == "sent"));
    assert_eq!(server.accepted(), 5);
    assert_eq!(
        server.connections(),
        3,
        "a new connection after each of the two"
    );
}

/// `[smtp] max_messages_per_connection`: after that many messages the worker says QUIT and
/// opens a new connection; every reader gets one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_carries_at_most_max_messages_per_connection() {
    let server = SmtpServer::start().await;
    let delivery = FAST.replace("concurrency = 4", "concurrency = 1");

    let (_m, out, report) =
        campaign(&server, 25, &delivery, "max_messages_per_connection = 10").await;

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(report
        .values()
        .all(|r| r["state"] == "sent" && attempts(r) == 1));
    assert_eq!(server.accepted(), 25);
    assert_eq!(server.connections(), 3);
    let quits = server.commands().iter().filter(|c| *c == "QUIT").count();
    assert_eq!(quits, 3, "every session ends with QUIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_452_defers_and_the_retry_delivers() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::rcpt(&rcpt(0))
            .reply("452 4.2.2 mailbox full")
            .times(1),
    );

    let (_m, out, report) = campaign(&server, 3, FAST, "").await;

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let row = &report[&rcpt(0)];
    assert_eq!(
        (row["state"].as_str(), attempts(row)),
        (Some("sent"), 2),
        "{row}"
    );
    assert_eq!(copies(&server.messages())[&rcpt(0)], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_past_the_timeout_defers_and_the_retry_delivers() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt(&rcpt(0)).stall().times(1));

    let (_m, out, report) = campaign(&server, 3, FAST, "timeout = \"1s\"").await;

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let row = &report[&rcpt(0)];
    assert_eq!(
        (row["state"].as_str(), attempts(row)),
        (Some("sent"), 2),
        "{row}"
    );
    assert_eq!(server.accepted(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_deferred_max_attempts_times_fails_and_the_campaign_still_finishes() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt(&rcpt(1)).reply("451 4.3.0 try again later"));
    let delivery = FAST.replace("max_attempts = 5", "max_attempts = 3");

    let (m, out, report) = campaign(&server, 3, &delivery, "").await;

    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains("2 sent, 1 failed"), "{stdout}");
    let row = &report[&rcpt(1)];
    assert_eq!(row["state"], "failed", "{row}");
    assert_eq!(attempts(row), 3);
    assert_eq!(row["last_code"], 451);
    assert!(
        row["last_text"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 3 attempts"),
        "{row}"
    );
    let rcpts = server
        .commands()
        .iter()
        .filter(|c| c.contains(&rcpt(1)))
        .count();
    assert_eq!(rcpts, 3, "tried exactly max_attempts times");
    assert!(
        m.world
            .ledger()
            .campaign("2021-07".parse().unwrap())
            .unwrap()
            .unwrap()
            .finished
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_skip_counts_a_lost_reply_as_sent_and_never_sends_twice() {
    let server = SmtpServer::start().await;
    server.rule(Rule::end_of_data_for(&rcpt(0)).hang_up().times(1));
    let delivery = format!("{FAST}ambiguous = \"skip\"\n");

    let (_m, out, report) = campaign(&server, 3, &delivery, "").await;

    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let row = &report[&rcpt(0)];
    assert_eq!(row["state"], "sent", "{row}");
    assert_eq!(row["possible_duplicate"], true, "{row}");
    assert_eq!(attempts(row), 1);
    assert!(row["last_text"]
        .as_str()
        .unwrap()
        .contains("counted as sent"));
    assert_eq!(copies(&server.messages())[&rcpt(0)], 1);
    assert!(stderr.contains("possible duplicate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_suppressed_for_the_next_issue_but_a_policy_rejection_is_not() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::rcpt(&rcpt(0))
            .reply("550 5.1.1 user unknown")
            .times(1),
    );
    server.rule(
        Rule::rcpt(&rcpt(1))
            .reply("550 5.7.1 message refused")
            .times(1),
    );
    let m = Mailer::new(3);
    m.world.copy_issue("2021-08");
    m.configure(server.port(), FAST, "");

    let first = m.brief(&["send", "--yes", "--issue", "2021-07"]).await;
    let second = m.brief(&["send", "--yes", "--issue", "2021-08"]).await;

    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    let n = copies(&server.messages());
    assert_eq!(n.get(&rcpt(0)), None, "never got either issue");
    assert_eq!(n[&rcpt(1)], 1, "a policy rejection does not unsubscribe");
    assert_eq!(n[&rcpt(2)], 2);
    let report = m.report("2021-08").await;
    assert_eq!(report[&rcpt(0)]["state"], "suppressed");
    assert_eq!(attempts(&report[&rcpt(0)]), 0);
    assert_eq!(report[&rcpt(1)]["state"], "sent");
    let list = m.brief(&["subscribers", "list"]).await;
    let (stdout, _) = text(&list);
    assert!(
        stdout.contains(&format!("{}\tbounced", rcpt(0))),
        "{stdout}"
    );
}

/// Logs name readers by keyed tag, never by address, even when the relay's replies quote the
/// address (`550 5.1.1 <bob@...>: Recipient address rejected`): a campaign with a reader refused,
/// one deferred and the staff summary refused, logged at debug level, shows no address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_holds_an_address_even_when_the_relay_quotes_it() {
    const STAFF: &str = "editor.staff@example.org";
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt(&rcpt(0)).reply(&format!(
        "550 5.1.1 <{}>: Recipient address rejected",
        rcpt(0)
    )));
    server.rule(
        Rule::rcpt(&rcpt(1))
            .reply(&format!(
                "451 4.7.1 <{}>: greylisted, RCPT TO:<{}>",
                rcpt(1),
                rcpt(1)
            ))
            .times(1),
    );
    server.rule(Rule::rcpt(&rcpt(2)).reply(&format!(
        "550 5.7.1 RCPT TO:<{}> refused by policy",
        rcpt(2)
    )));
    server.rule(Rule::rcpt(STAFF).reply(&format!("550 5.1.1 <{STAFF}>: no such user")));
    let m = Mailer::new(4).env("RUST_LOG", "debug");
    m.configure(server.port(), FAST, "");
    m.world.add_server_keys(&format!("staff = [\"{STAFF}\"]"));

    let out = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("failed") && stderr.contains("deferred"),
        "the refusals are logged: {stderr}"
    );
    assert!(stderr.contains("Recipient address rejected"), "{stderr}");
    assert!(
        stderr.contains("the summary mail to staff failed"),
        "{stderr}"
    );
    for address in (0..4).map(rcpt).chain([STAFF.to_string()]) {
        assert!(
            !stderr.contains(&address) && !stdout.contains(&address),
            "{address} in the output:\n{stdout}\n{stderr}"
        );
    }
    assert!(!stderr.contains("@example.org"), "{stderr}");
}

/// A relay that turns connections away at the greeting for a moment costs time, not attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_busy_at_the_greeting_costs_no_attempts() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::greeting()
            .reply_and_hang_up("421 4.3.2 too many connections")
            .times(3),
    );

    let (_m, out, report) = campaign(&server, 6, FAST, "").await;

    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        report
            .values()
            .all(|r| r["state"] == "sent" && attempts(r) == 1),
        "{report:?}"
    );
    assert_eq!(server.accepted(), 6);
    assert!(stderr.contains("no attempt counted"), "{stderr}");
}

/// A relay that stays down ends the run with its error; nobody is charged an attempt, and the
/// next run, once the relay is back, delivers everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_stays_down_ends_the_run_and_the_next_run_delivers() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let m = Mailer::new(5);
    let delivery = FAST.replace("max_attempts = 5", "max_attempts = 3");
    m.configure(port, &delivery, "");

    let down = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&down);
    assert_eq!(down.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 sent now"), "a summary line: {stdout}");
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("run `brief send` again"), "{stderr}");
    let report = m.report("2021-07").await;
    assert!(
        report
            .values()
            .all(|r| r["state"] == "pending" && attempts(r) == 0),
        "{report:?}"
    );

    let server = SmtpServer::start().await;
    m.configure(server.port(), &delivery, "");
    let up = m.brief(&["send", "--yes"]).await;

    assert_eq!(up.status.code(), Some(0), "{up:?}");
    let report = m.report("2021-07").await;
    assert!(report
        .values()
        .all(|r| r["state"] == "sent" && attempts(r) == 1));
    assert_eq!(server.accepted(), 5);
}

/// A relay whose name does not exist (under `.invalid`, RFC 2606: it resolves nowhere) is a
/// permanent error: `brief send` ends at once (not after a quarter of an hour of retries),
/// names `[smtp] host`, and charges nobody an attempt. The default retry settings are kept, so
/// treating the name as a temporary failure would outlast the minute this test allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_name_that_does_not_exist_ends_the_send_at_once_naming_smtp_host() {
    let m = Mailer::new(5);
    m.configure(25, "", "");
    let path = m.world.config_path();
    let config = std::fs::read_to_string(&path).unwrap();
    assert!(config.contains("host = \"127.0.0.1\""), "{config}");
    m.world.write(
        "brief.toml",
        &config.replace(
            "host = \"127.0.0.1\"",
            "host = \"relay.brief-test.invalid\"",
        ),
    );

    let mut cmd = m.world.brief();
    cmd.args(["send", "--yes"]).timeout(Duration::from_secs(60));
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run brief"))
        .await
        .unwrap();

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("relay.brief-test.invalid")
            && stderr.contains("does not exist")
            && stderr.contains("`[smtp] host`"),
        "{stderr}"
    );
    let report = m.report("2021-07").await;
    assert!(
        report
            .values()
            .all(|r| r["state"] == "pending" && attempts(r) == 0),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_end_the_run_at_once_without_charging_anyone() {
    let server = SmtpServer::builder().auth("brief", "right").start().await;
    let m = Mailer::new(4).env("BRIEF_TEST_SMTP_PASSWORD", "wrong");
    m.configure(
        server.port(),
        FAST,
        "username = \"brief\"\npassword_env = \"BRIEF_TEST_SMTP_PASSWORD\"",
    );

    let out = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("535"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "the password is never shown: {stderr}"
    );
    assert!(
        stderr.contains("refused the credentials for smtp.username \"brief\"")
            && stderr.contains("check the password in password_env BRIEF_TEST_SMTP_PASSWORD"),
        "{stderr}"
    );
    // One failed login per run, however many workers, and the session ends with QUIT.
    assert_eq!(server.auth_attempts().len(), 1);
    let commands = server.commands();
    let auth = commands.iter().position(|c| c.starts_with("AUTH")).unwrap();
    assert_eq!(
        commands.get(auth + 1).map(String::as_str),
        Some("QUIT"),
        "{commands:?}"
    );
    let report = m.report("2021-07").await;
    assert!(report
        .values()
        .all(|r| r["state"] == "pending" && attempts(r) == 0));
}

/// `tls = "none"` against a relay that offers AUTH only after STARTTLS is a setting to fix,
/// said at once: no retry loop, no reader charged, no password sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_offered_only_over_tls_with_tls_none_is_a_config_error_at_once() {
    let pki = TestPki::new();
    let server = SmtpServer::builder()
        .starttls(pki.server_config())
        .auth("brief", "right")
        .start()
        .await;
    let m = Mailer::new(4).env("BRIEF_TEST_SMTP_PASSWORD", "right");
    m.configure(
        server.port(),
        FAST,
        "tls = \"none\"\nusername = \"brief\"\npassword_env = \"BRIEF_TEST_SMTP_PASSWORD\"",
    );

    let started = std::time::Instant::now();
    let out = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("offers AUTH only over TLS") && stderr.contains("tls = \"starttls\""),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(server.auth_attempts().is_empty());
    assert!(server.connections() <= 4, "one try per worker at most");
    assert!(untouched(&m.report("2021-07").await));
}

/// Every reader `pending` with no attempt counted: the ledger as if the run never happened.
fn untouched(report: &HashMap<String, Value>) -> bool {
    report
        .values()
        .all(|r| r["state"] == "pending" && attempts(r) == 0)
}

/// The relay fixed, `brief send` again: every reader gets exactly one copy, at the first attempt
/// counted.
async fn fixed_relay_delivers_each_reader_once(m: &Mailer, server: &SmtpServer, n: usize) {
    server.clear_rules();
    let before = server.accepted();
    let out = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{n} sent, 0 failed")), "{stdout}");
    assert_eq!(server.accepted() - before, n);
    let copies = copies(&server.messages());
    assert!(
        (0..n).all(|i| copies.get(&rcpt(i)) == Some(&1)),
        "{copies:?}"
    );
    let report = m.report("2021-07").await;
    assert!(
        report
            .values()
            .all(|r| r["state"] == "sent" && attempts(r) == 1),
        "{report:?}"
    );
}

/// A relay that refuses the sender (`550 5.7.1` to MAIL FROM: a configuration problem) says
/// nothing about any reader: nobody is failed, `send` exits 1 naming the reply, and once the
/// relay is fixed the next `send` reaches everyone once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refusing_the_sender_fails_no_reader_and_the_fixed_relay_delivers_once() {
    let server = SmtpServer::start().await;
    server.rule(Rule::command("MAIL").reply("550 5.7.1 sender not authorised"));
    let m = Mailer::new(30);
    m.configure(server.port(), FAST, "");

    let out = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 sent now"), "a summary line: {stdout}");
    assert!(
        stderr.contains("MAIL FROM with 550 5.7.1 sender not authorised"),
        "{stderr}"
    );
    assert!(
        stderr.contains("run `brief send` again once the relay is fixed"),
        "{stderr}"
    );
    assert!(untouched(&m.report("2021-07").await));
    // A 5xx before any reader is named stops a worker at once: one MAIL each, not one per reader.
    let mails = server
        .commands()
        .iter()
        .filter(|c| c.starts_with("MAIL"))
        .count();
    assert!(mails <= 4, "{mails} MAIL commands");

    fixed_relay_delivers_each_reader_once(&m, &server, 30).await;
}

/// A relay failing every reader the same way from RCPT on (a 451 to everyone at RCPT or at DATA,
/// or hanging up after RCPT) trips the circuit breaker at its default of 20 readers: the run
/// stops, no reader is charged an attempt, `send` exits 1 naming the reply, and the fixed relay
/// then reaches everyone once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_failing_everyone_alike_trips_the_breaker_and_costs_no_reader() {
    for (rule, named) in [
        (
            Rule::command("RCPT").reply("451 4.3.0 try later"),
            "the relay answered 20 readers in a row with `451 4.3.0` at RCPT TO",
        ),
        (
            Rule::command("DATA").reply("451 4.3.0 try later"),
            "the relay answered 20 readers in a row with `451 4.3.0` at DATA",
        ),
        (
            Rule::command("DATA").hang_up(),
            "the relay failed 20 readers in a row with no reply at DATA",
        ),
    ] {
        let server = SmtpServer::start().await;
        server.rule(rule);
        let m = Mailer::new(40);
        m.configure(server.port(), FAST, "");

        let out = m.brief(&["send", "--yes"]).await;

        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stderr.contains(named), "{named}: {stderr}");
        assert!(
            stderr.contains("run `brief send` again once the relay is fixed"),
            "{stderr}"
        );
        assert!(
            stdout.contains("stopped by the circuit breaker"),
            "{stdout}"
        );
        let report = m.report("2021-07").await;
        assert!(untouched(&report), "{named}: {report:?}");
        assert_eq!(server.accepted(), 0);
        // The reply stays on the deliveries it touched, so the report says what happened.
        if named.contains("answered") {
            assert!(
                report.values().filter(|r| r["last_code"] == 451).count() >= 20,
                "{report:?}"
            );
        }

        fixed_relay_delivers_each_reader_once(&m, &server, 40).await;
    }
}

/// A 5.1.1 at RCPT is about that reader: alone among good readers, or 25 in a row (more than
/// the breaker's 20), each stays that reader's failure and suppresses the address, and the run
/// finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_stay_their_own_failures_even_many_in_a_row() {
    let server = SmtpServer::start().await;
    let dead: Vec<usize> = std::iter::once(3).chain(10..35).collect();
    for &i in &dead {
        server.rule(Rule::rcpt(&rcpt(i)).reply("550 5.1.1 no such user here"));
    }

    let (m, out, report) = campaign(&server, 40, FAST, "").await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("14 sent, 26 failed"), "{stdout}");
    assert!(stdout.contains("(finished)"), "{stdout}");
    assert!(!stderr.contains("circuit breaker"), "{stderr}");
    for i in 0..40 {
        let row = &report[&rcpt(i)];
        if dead.contains(&i) {
            assert_eq!(
                (
                    row["state"].as_str(),
                    row["last_code"].as_u64(),
                    attempts(row)
                ),
                (Some("failed"), Some(550), 1),
                "{row}"
            );
        } else {
            assert_eq!(row["state"], "sent", "{row}");
        }
    }
    let list = text(&m.brief(&["subscribers", "list"]).await).0;
    assert!(list.contains(&format!("{}\tbounced", rcpt(3))), "{list}");
    assert!(list.contains(&format!("{}\tbounced", rcpt(20))), "{list}");
}

/// A campaign that reached nobody never exits 0, neither when it ends nor when `send` runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_whose_every_delivery_failed_exits_1() {
    let server = SmtpServer::start().await;
    // Three readers: too few for the breaker, so each is failed as the replies say.
    server.rule(Rule::command("RCPT").reply("550 5.7.1 message refused"));

    let (m, out, report) = campaign(&server, 3, FAST, "").await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 sent, 3 failed"), "{stdout}");
    assert!(
        stderr.contains("every delivery of issue 2021-07 failed (3 failed, none sent)"),
        "{stderr}"
    );
    assert!(stderr.contains("--retry-failed"), "{stderr}");
    assert!(report.values().all(|r| r["state"] == "failed"));

    let again = m.brief(&["send", "--yes"]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("already sent"), "{stdout}");
    assert!(
        stderr.contains("every delivery of issue 2021-07 failed"),
        "{stderr}"
    );
}

/// Staff fixed what brief could not see (a policy rejection, a mailbox that kept answering 451):
/// `--retry-failed` puts those failures back and sends them, on a finished campaign; a bounced
/// address stays suppressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_sends_the_failed_again_but_not_the_suppressed() {
    let server = SmtpServer::start().await;
    server
        .rule(Rule::rcpt(&rcpt(1)).reply("550 5.7.1 message refused"))
        .rule(Rule::rcpt(&rcpt(2)).reply("550 5.1.1 user unknown"))
        .rule(Rule::rcpt(&rcpt(3)).reply("451 4.2.2 mailbox full"));
    let m = Mailer::new(6);
    m.configure(
        server.port(),
        &FAST.replace("max_attempts = 5", "max_attempts = 2"),
        "",
    );

    let none = m.brief(&["send", "--yes", "--retry-failed"]).await;
    assert_eq!(none.status.code(), Some(2), "no campaign yet: {none:?}");
    assert!(text(&none).1.contains("has no campaign"), "{none:?}");
    for flags in [
        &["--retry-failed", "--restart-unsent"][..],
        &["--retry-failed", "--test"][..],
    ] {
        let both = m.brief(&[&["send", "--yes"][..], flags].concat()).await;
        assert_eq!(both.status.code(), Some(2), "{flags:?}: {both:?}");
        assert!(text(&both).1.contains("cannot be used with"), "{both:?}");
    }
    let first = m.brief(&["send", "--yes"]).await;
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert!(text(&first).0.contains("3 sent, 3 failed"), "{first:?}");
    let report = m.report("2021-07").await;
    assert_eq!(attempts(&report[&rcpt(3)]), 2);

    server.clear_rules();
    let retry = m.brief(&["send", "--yes", "--retry-failed"]).await;

    let (stdout, stderr) = text(&retry);
    assert_eq!(retry.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("issue 2021-07: 2 failed deliveries put back to pending"),
        "{stdout}"
    );
    assert!(stdout.contains("5 sent, 1 failed"), "{stdout}");
    assert!(stdout.contains("(finished)"), "{stdout}");
    let n = copies(&server.messages());
    assert_eq!((n.get(&rcpt(1)), n.get(&rcpt(3))), (Some(&1), Some(&1)));
    assert_eq!(n.get(&rcpt(2)), None, "a bounced address stays suppressed");
    assert!((0..6)
        .filter(|i| ![1, 2, 3].contains(i))
        .all(|i| n[&rcpt(i)] == 1));
    let report = m.report("2021-07").await;
    for i in [1, 3] {
        let row = &report[&rcpt(i)];
        assert_eq!(
            (row["state"].as_str(), attempts(row)),
            (Some("sent"), 1),
            "{row}"
        );
    }
    assert_eq!(report[&rcpt(2)]["state"], "failed");

    let again = m.brief(&["send", "--yes", "--retry-failed"]).await;
    let (stdout, _) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(stdout.contains("already sent"), "{stdout}");
    assert!(stdout.contains("no failed delivery to retry"), "{stdout}");
    assert_eq!(server.accepted(), 5, "nothing sent twice");
}

/// Drives the engine in-process (as the daemon does) with a chosen idle-check threshold.
async fn run_engine(m: &Mailer, idle_check: Duration) -> Summary {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = App::new(m.world.config(), clock.clone()).expect("app");
    let issue = app
        .load_issue("2021-07".parse().unwrap())
        .map_err(|p| p.to_string())
        .expect("issue");
    let key = app.key().clone();
    let lang = app.config.newsletter.languages.default_lang().clone();
    let prepared = brief::campaign::start::prepare(&app, vec![(lang, issue)], &key, Kind::Campaign);
    let mut ledger = app.open_ledger().unwrap();
    let (campaign, _, _) = brief::campaign::start::begin(
        &app,
        &mut ledger,
        &prepared,
        brief::ledger::Trigger::Cli,
        None,
    )
    .unwrap();
    let mut run = app
        .campaign_run(
            SharedLedger::new(ledger),
            campaign,
            Arc::new(brief::campaign::start::into_editions(prepared)),
            Arc::new(Transport::from_config(&app.config.smtp).unwrap()),
            None,
            Arc::new(brief::metrics::Metrics::new()),
        )
        .unwrap();
    run.settings.idle_check = idle_check;
    run.execute(CancellationToken::new()).await.expect("run")
}

/// A server that closes a connection after each message: probing an idle connection with NOOP
/// turns that into a reconnect; without the probe each next reader would pay an attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_the_server_closed_costs_a_reconnect_not_an_attempt() {
    let delivery = FAST.replace("concurrency = 4", "concurrency = 1");
    let closing = || Rule::end_of_data().reply_and_hang_up("250 2.0.0 Ok: queued, bye");

    let probed = SmtpServer::start().await;
    probed.rule(closing());
    let m = Mailer::new(3);
    m.configure(probed.port(), &delivery, "");
    let s = run_engine(&m, Duration::ZERO).await;

    assert!(s.finished);
    let report = m.report("2021-07").await;
    assert!(
        report
            .values()
            .all(|r| r["state"] == "sent" && attempts(r) == 1),
        "{report:?}"
    );
    assert_eq!(
        probed.connections(),
        3,
        "each closed connection was replaced"
    );

    let open = SmtpServer::start().await;
    let m = Mailer::new(3);
    m.configure(open.port(), &delivery, "");
    run_engine(&m, Duration::ZERO).await;

    let commands = open.commands();
    assert_eq!(
        commands.iter().filter(|c| *c == "NOOP").count(),
        2,
        "an open connection is probed before it is reused: {commands:?}"
    );
    assert_eq!(open.connections(), 1);

    // Without the probe the closed session shows at MAIL FROM, before any reader is named: the
    // relay's side, so it too costs a reconnect (at once, no backoff), never an attempt.
    let unprobed = SmtpServer::start().await;
    unprobed.rule(closing());
    let m = Mailer::new(3);
    m.configure(unprobed.port(), &delivery, "");
    let s = run_engine(&m, Duration::from_secs(3600)).await;

    assert!(s.finished);
    let report = m.report("2021-07").await;
    assert!(
        report
            .values()
            .all(|r| r["state"] == "sent" && attempts(r) == 1),
        "a closed session found at MAIL FROM costs no reader an attempt: {report:?}"
    );
    assert_eq!(unprobed.connections(), 3);
    assert_eq!(unprobed.accepted(), 3);
}

/// `kill -9` in the middle of 3,000 readers, then `brief send` again: everyone gets the issue,
/// and no more than 2 x concurrency readers get it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_campaign_then_resume_delivers_all_with_bounded_duplicates() {
    let server = SmtpServer::start().await;
    let m = Mailer::new(3000);
    // Throttled so that the kill lands mid-campaign, yet fast enough to have messages in flight.
    m.configure(
        server.port(),
        &format!("{FAST}rate_per_second = 1000\n"),
        "",
    );

    let mut child = m.spawn_send("first");
    let started = wait_for(|| server.accepted() >= 300).await;
    let early_exit = child.try_wait().unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        started && early_exit.is_none(),
        "brief should still be sending: {early_exit:?}\n{}",
        m.output_of("first", "err")
    );
    let before = server.accepted();
    assert!(before < 3000, "killed mid-campaign");

    m.configure(server.port(), FAST, "");
    let out = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let n = copies(&server.messages());
    for i in 0..3000 {
        assert!(n.contains_key(&rcpt(i)), "{} was skipped", rcpt(i));
    }
    let duplicates = server.accepted() - 3000;
    assert!(
        duplicates <= 8,
        "{duplicates} duplicates, more than 2 x concurrency"
    );
    // The resume names what was in flight; every duplicate is one of those.
    let in_flight: usize = stderr
        .split("resuming: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .map_or(0, |n| n.parse().expect("a count"));
    assert!(in_flight <= 8, "{stderr}");
    assert!(
        duplicates <= in_flight,
        "{duplicates} > {in_flight}: {stderr}"
    );
    assert!(stdout.contains("(finished)"), "{stdout}");
    let report = m.report("2021-07").await;
    assert!(report.values().all(|r| r["state"] == "sent"));
    // The report names the readers who may have two copies: those that were in flight, which
    // include everyone who did get two.
    let flagged: Vec<&String> = report
        .iter()
        .filter(|(_, r)| r["possible_duplicate"] == true)
        .map(|(a, _)| a)
        .collect();
    assert_eq!(flagged.len(), in_flight, "{flagged:?}\n{stderr}");
    for (address, copies) in n {
        assert!(
            copies == 1 || flagged.contains(&&address),
            "{address} got {copies} copies and is not flagged possible_duplicate"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_sending_records_what_was_in_flight_and_a_later_run_finishes() {
    graceful_stop_then_resume("-TERM").await;
}

/// A dropped SSH session sends SIGHUP: the same graceful stop as SIGTERM, never a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_stops_like_sigterm_and_a_later_run_finishes() {
    graceful_stop_then_resume("-HUP").await;
}

/// `brief send` gets `signal` mid-campaign: it stops, records what was in flight, exits 1, and
/// the next run sends the rest with no duplicate.
async fn graceful_stop_then_resume(signal: &str) {
    let server = SmtpServer::start().await;
    let m = Mailer::new(2000);
    m.configure(server.port(), &format!("{FAST}rate_per_second = 100\n"), "");

    let mut child = m.spawn_send("first");
    assert!(
        wait_for(|| server.accepted() >= 50).await,
        "sending started"
    );
    let term = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = wait_exit(&mut child).await;

    let stdout = m.output_of("first", "out");
    let stderr = m.output_of("first", "err");
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("interrupted"), "a summary line: {stdout}");
    assert!(stderr.contains("stopping"), "{stderr}");
    let counts = m
        .world
        .ledger()
        .counts(
            m.world
                .ledger()
                .campaign("2021-07".parse().unwrap())
                .unwrap()
                .unwrap()
                .id,
        )
        .unwrap();
    assert_eq!(counts.sending, 0, "nothing left in flight");
    assert_eq!(
        counts.sent as usize,
        server.accepted(),
        "every message the server took is recorded"
    );
    assert!(counts.pending > 0, "stopped mid-campaign");

    m.configure(server.port(), FAST, "");
    let out = m.brief(&["send", "--yes"]).await;

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        server.accepted(),
        2000,
        "no duplicates after a graceful stop"
    );
    assert!(copies(&server.messages()).values().all(|&c| c == 1));
}

/// While a graceful stop waits for a message stuck at the server, a second signal quits at once;
/// the resume then still reaches everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_quits_at_once_and_the_resume_still_reaches_everyone() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt(&rcpt(5)).stall().times(1));
    let m = Mailer::new(20);
    let delivery = FAST.replace("concurrency = 4", "concurrency = 1");
    m.configure(server.port(), &delivery, "timeout = \"30s\"");

    let mut child = m.spawn_send("first");
    let stuck = format!("RCPT TO:<{}>", rcpt(5));
    assert!(wait_for(|| server.commands().contains(&stuck)).await);
    let signal = |pid: u32| {
        let kill = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        assert!(kill.expect("kill -TERM").success());
    };
    signal(child.id());
    assert!(wait_for(|| m.output_of("first", "err").contains("stopping")).await);
    signal(child.id());
    let status = wait_exit(&mut child).await;

    let stderr = m.output_of("first", "err");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped at once"), "{stderr}");
    let out = m.brief(&["send", "--yes"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let n = copies(&server.messages());
    assert!((0..20).all(|i| n.contains_key(&rcpt(i))));
    assert!(server.accepted() - 20 <= 2);
}

/// Where Postfix's `smtp-sink` is (installed by `scripts/test.sh`).
const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// The last message count in smtp-sink's `-c` output (`sess=.. quit=.. mesg=N` lines).
fn sink_count(output: &Path) -> usize {
    let text = std::fs::read_to_string(output).unwrap_or_default();
    text.split(['\r', '\n', ' '])
        .rev()
        .find_map(|w| w.strip_prefix("mesg=").and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_readers_into_postfix_smtp_sink() {
    assert!(
        Path::new(SMTP_SINK).exists(),
        "{SMTP_SINK} is missing: install Postfix's tools with `scripts/test.sh`, or \
         `echo \"postfix postfix/main_mailer_type select No configuration\" | \
         debconf-set-selections; apt-get install -y --no-install-recommends postfix`"
    );
    let sink_dir = tempfile::tempdir().unwrap();
    let dumps = sink_dir.path().join("dump");
    std::fs::create_dir(&dumps).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let counter = sink_dir.path().join("count.out");
    let mut sink = Command::new(SMTP_SINK);
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        // smtp-sink refuses to run as root; the dump folder must then be open to `nobody`.
        use std::os::unix::fs::PermissionsExt;
        for d in [sink_dir.path(), dumps.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        sink.args(["-u", "nobody"]);
    }
    let mut sink = sink
        .arg("-c")
        .arg("-d")
        .arg(format!("{}/%M.", dumps.display()))
        .arg(format!("127.0.0.1:{port}"))
        .arg("256")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&counter).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    let listening = wait_for(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).await;

    let m = Mailer::new(1000);
    m.configure(port, FAST, "");
    let out = if listening {
        Some(m.brief(&["send", "--yes"]).await)
    } else {
        None
    };
    let all_counted = wait_for(|| sink_count(&counter) >= 1000).await;
    let _ = sink.kill();
    let _ = sink.wait();

    let out = out.expect("smtp-sink never listened");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("1000 sent, 0 failed"), "{stdout}");
    assert!(all_counted, "smtp-sink counted {}", sink_count(&counter));
    assert_eq!(sink_count(&counter), 1000);
    let dumped: Vec<_> = std::fs::read_dir(&dumps).unwrap().collect();
    assert!(!dumped.is_empty());
    let one = std::fs::read_to_string(dumped[0].as_ref().unwrap().path()).unwrap();
    assert!(one.contains(&format!("X-Mail-Args: <{FROM}>")), "{one}");
    assert!(one.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
}

async fn tls_campaign(server: SmtpServer, pki: &TestPki, tls: &str) {
    let m = Mailer::new(3);
    let ca = pki.write_ca(&m.world.root);
    m.configure(
        server.port(),
        FAST,
        &format!("tls = \"{tls}\"\nca_file = \"{}\"", ca.display()),
    );

    let out = m.brief(&["send", "--yes"]).await;

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let got = server.messages();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.tls), "every message went encrypted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_end_to_end_with_the_test_ca() {
    let pki = TestPki::new();
    let server = SmtpServer::builder()
        .starttls(pki.server_config())
        .start()
        .await;
    tls_campaign(server, &pki, "starttls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_end_to_end_with_the_test_ca() {
    let pki = TestPki::new();
    let server = SmtpServer::builder()
        .implicit_tls(pki.server_config())
        .start()
        .await;
    tls_campaign(server, &pki, "tls").await;
}

const TITLE: &str = "DHS Secretary Mayorkas' visit to Mexico";
const CORRECTED: &str = "DHS Secretary Mayorkas' second visit to Mexico";

/// Starts a send of 300 readers and kills it (`kill -9`) once 40 have the issue; then staff
/// correct an entry's title in the folder. Returns the number of messages accepted before.
async fn kill_mid_campaign_then_edit(m: &Mailer, server: &SmtpServer) -> usize {
    m.configure(server.port(), &format!("{FAST}rate_per_second = 200\n"), "");
    let mut child = m.spawn_send("first");
    let started = wait_for(|| server.accepted() >= 40).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started, "{}", m.output_of("first", "err"));
    let before = server.accepted();
    assert!(before < 300, "killed mid-campaign");
    let entry = m.world.path("content/2021-07/01-mayorkas-visit.md");
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains(TITLE));
    std::fs::write(&entry, text.replace(TITLE, CORRECTED)).unwrap();
    m.configure(server.port(), FAST, "");
    before
}

/// The title each received message carries, in its text part.
fn titles_sent(server: &SmtpServer) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for msg in server.messages() {
        let text = parsed(&msg).body_text(0).expect("a text part").into_owned();
        let title = if text.contains(CORRECTED) {
            CORRECTED
        } else if text.contains(TITLE) {
            TITLE
        } else {
            "neither"
        };
        *n.entry(title.to_string()).or_insert(0) += 1;
    }
    n
}

fn assert_every_message_is_the_first_version(server: &SmtpServer) {
    let titles = titles_sent(server);
    assert_eq!(titles.get(CORRECTED), None, "{titles:?}");
    assert_eq!(
        titles.get(TITLE).copied(),
        Some(server.accepted()),
        "{titles:?}"
    );
}

/// The issue's first "Done when": killed mid-way, edited, resumed with `brief send`: every
/// reader gets the issue as it was when the campaign started, and `status` says the folder
/// differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_campaign_sends_the_issue_as_it_was_at_its_start() {
    let server = SmtpServer::start().await;
    let m = Mailer::new(300);
    kill_mid_campaign_then_edit(&m, &server).await;

    let status = m.brief(&["status", "--issue", "2021-07"]).await;
    let (stdout, _) = text(&status);
    assert!(
        stdout.contains("the content folder of issue 2021-07 changed since its campaign started"),
        "{stdout}"
    );
    assert!(stdout.contains("--restart-unsent"), "{stdout}");
    let out = m.brief(&["send", "--yes"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("changed since its campaign started"),
        "{stderr}"
    );
    let n = copies(&server.messages());
    assert!((0..300).all(|i| n.contains_key(&rcpt(i))), "nobody skipped");
    assert_every_message_is_the_first_version(&server);
    let subjects: std::collections::HashSet<String> = server
        .messages()
        .iter()
        .map(|msg| parsed(msg).subject().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
}

/// The same through `brief run`: the daemon resumes the killed campaign with its stored message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_resumes_a_campaign_with_the_message_it_started_with() {
    let server = SmtpServer::start().await;
    let m = Mailer::new(300);
    kill_mid_campaign_then_edit(&m, &server).await;

    let d = crate::support::daemon::Running::start(&m.world, &[]);
    let done = wait_for(|| copies(&server.messages()).len() == 300).await;
    let stopped = d.stop();

    assert!(done, "{}", stopped.stderr);
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("the content folder changed since the campaign started"),
        "{}",
        stopped.stderr
    );
    assert_every_message_is_the_first_version(&server);
}

/// Staff who mean to send the correction say so: `--restart-unsent` renders the folder again for
/// the readers not yet sent, and the report says which revision each reader got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_unsent_sends_the_corrected_issue_to_the_rest_and_records_it() {
    let server = SmtpServer::start().await;
    let m = Mailer::new(300);
    kill_mid_campaign_then_edit(&m, &server).await;
    let first = server.accepted();

    let out = m.brief(&["send", "--yes", "--restart-unsent"]).await;

    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("revision 2 of the message"), "{stdout}");
    let titles = titles_sent(&server);
    let old = titles.get(TITLE).copied().unwrap_or(0);
    let new = titles.get(CORRECTED).copied().unwrap_or(0);
    assert_eq!(old + new, server.accepted(), "{titles:?}");
    assert!(
        old >= first && new >= 300 - first - 8,
        "{titles:?} after {first}"
    );
    let report = m.report("2021-07").await;
    assert!(report.values().all(|r| r["state"] == "sent"));
    let revision = |n: u64| report.values().filter(|r| r["revision"] == n).count();
    assert_eq!(revision(1) + revision(2), 300);
    assert!(revision(2) >= 300 - first - 8, "{report:?}");
    let status = m.brief(&["status", "--issue", "2021-07"]).await;
    assert!(
        text(&status)
            .0
            .contains("message revision 2 (by --restart-unsent)"),
        "{}",
        text(&status).0
    );
    // Nothing to restart once everyone has it.
    let again = m.brief(&["send", "--yes", "--restart-unsent"]).await;
    assert!(
        text(&again).0.contains("already sent"),
        "{:?}",
        text(&again)
    );
}

/// Two daemons on one ledger: the one sending is killed (`kill -9`) mid-campaign, and the other,
/// which left the campaign alone while its sender was alive, takes it over once that sender's
/// lease goes stale and reaches every reader: nobody skipped, and no more second copies than
/// the messages in flight at the two kills (`brief send`'s, then the first daemon's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_daemon_takes_over_a_campaign_whose_sending_daemon_was_killed() {
    use crate::support::daemon::{signal, Running};
    const N: usize = 600;
    let server = SmtpServer::start().await;
    let m = Mailer::new(N);
    // Slow enough that each kill lands mid-campaign.
    m.configure(server.port(), &format!("{FAST}rate_per_second = 40\n"), "");
    let mut child = m.spawn_send("first");
    let started = wait_for(|| server.accepted() >= 10).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started, "{}", m.output_of("first", "err"));

    // The first daemon resumes the campaign when it starts, and sends.
    let first = Running::start(&m.world, &[]);
    let resumed_at = server.accepted();
    assert!(
        wait_for(|| server.accepted() >= resumed_at + 40).await,
        "{}",
        first.stderr()
    );
    // The second finds it being sent: it leaves it alone while the first is alive.
    let second = Running::start(&m.world, &[]);
    let seen = server.accepted();
    assert!(
        wait_for(|| server.accepted() >= seen + 40).await,
        "{}",
        first.stderr()
    );
    assert!(
        second.stderr().contains("not resumed now"),
        "{}",
        second.stderr()
    );
    assert!(
        !second.stderr().contains("taking over"),
        "{}",
        second.stderr()
    );
    signal(first.pid(), "KILL");
    let killed_at = server.accepted();
    assert!(killed_at < N, "killed mid-campaign");

    let done = wait_for(|| copies(&server.messages()).len() == N).await;
    let stopped = second.stop();

    assert!(done, "{}", stopped.stderr);
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("taking over an unfinished campaign"),
        "{}",
        stopped.stderr
    );
    let n = copies(&server.messages());
    assert!((0..N).all(|i| n.get(&rcpt(i)).is_some_and(|&c| c >= 1)));
    // 4 workers: at most 2 x 4 messages in flight at each of the two kills.
    let extra: usize = n.values().map(|c| c - 1).sum();
    assert!(extra <= 2 * 8, "{extra} second copies");
    let report = m.report("2021-07").await;
    assert!(report.values().all(|r| r["state"] == "sent"), "{report:?}");
}
