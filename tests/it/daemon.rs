//! `brief run`: the schedule sends each month once (ticks, DST, restarts, two daemons), catch-up,
//! graceful stop with in-flight messages recorded, bounces, DKIM on scheduled mail, the container.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use brief::clock::{Clock, FixedClock, SystemClock};
use brief::daemon::{Daemon, Fire};
use brief::issue::IssueId;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::support::daemon::{metric, wait_until, Running};
use crate::support::World;

const CREATED: &str = r#"brief_schedule_fires_total{outcome="created"}"#;
const EXISTS: &str = r#"brief_schedule_fires_total{outcome="exists"}"#;

/// Copies the example entries (not its `issue.toml`, whose date is July 2021) into the folder
/// of issue `id`.
fn write_issue(w: &World, id: IssueId) {
    let from = crate::support::repo().join("content/2021-07");
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            let name = p.file_name().unwrap().to_str().unwrap();
            w.write(
                &format!("content/{id}/{name}"),
                &std::fs::read_to_string(&p).unwrap(),
            );
        }
    }
}

/// The current month in UTC, with its issue folder written. Waits out the last seconds of a
/// month, so the daemon cannot fire in the next one.
pub(crate) fn current_issue(w: &World) -> IssueId {
    loop {
        let now = SystemClock.now();
        let id = IssueId::of_date(now.date_naive());
        let later = IssueId::of_date((now + chrono::TimeDelta::seconds(90)).date_naive());
        if id == later {
            write_issue(w, id);
            return id;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// Replaces the world's outbox transport with `smtp` settings.
fn use_smtp(w: &World, settings: &str) {
    w.use_smtp(settings);
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A daemon in this process, on `w`'s config, at a fixed time.
fn daemon_at(w: &World, at: &str) -> (Arc<Daemon>, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(utc(at)));
    let app = brief::app::App::new(w.config(), clock.clone()).unwrap();
    (Daemon::new(app, CancellationToken::new()).unwrap(), clock)
}

/// Waits (bounded) for the campaign of `id` to finish, then stops the daemon.
async fn finish_and_stop(w: &World, d: &Daemon, id: IssueId) {
    let started = Instant::now();
    while !w.ledger().campaign(id).unwrap().is_some_and(|c| c.finished) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "campaign {id} never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(d.shutdown(Duration::from_secs(30)).await);
}

#[test]
fn scheduled_send_goes_out_once_across_ticks_and_a_restart() {
    let (_, pem, txt) = crate::dkim::ed25519_key();
    let w = World::with_config(&format!(
        "[schedule]\ncron = \"*/4 * * * * *\"\ntimezone = \"UTC\"\n\n\
         [dkim]\ndomain = \"{}\"\nselector = \"{}\"\nprivate_key_file = \"dkim.pem\"\n",
        crate::dkim::DOMAIN,
        crate::dkim::SELECTOR
    ));
    w.write("dkim.pem", &pem);
    let id = current_issue(&w);
    let sent = |w: &World| {
        let l = w.ledger();
        l.campaign(id)
            .unwrap()
            .filter(|c| c.finished)
            .map(|c| l.counts(c.id).unwrap().sent)
    };

    let d = Running::start(&w, &[]);
    wait_until(
        "the scheduled campaign to finish",
        Duration::from_secs(30),
        || sent(&w).is_some(),
    );
    // A later tick of the same month finds the campaign and sends nothing.
    d.wait_for_metric(EXISTS, 1.0, Duration::from_secs(20));
    d.wait_for_metric("brief_messages_sent_total", 3.0, Duration::from_secs(10));
    d.wait_for_metric(
        r#"brief_campaigns_total{state="finished"}"#,
        1.0,
        Duration::from_secs(10),
    );
    let m = d.get("/metrics").body;
    assert_eq!(metric(&m, CREATED), Some(1.0), "{m}");
    assert_eq!(metric(&m, "brief_messages_sent_total"), Some(3.0), "{m}");
    let first = d.stop();
    assert_eq!(first.status.code(), Some(0), "{}", first.stderr);
    assert!(
        first.stderr.contains("campaign started"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("campaign finished"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.lines().all(|l| !l.starts_with('{')),
        "human-readable logs by default:\n{}",
        first.stderr
    );

    // A restart catches up the latest fire, finds the campaign, and keeps ticking.
    let again = Running::start(&w, &[]);
    again.wait_for_metric(EXISTS, 2.0, Duration::from_secs(20));
    assert_eq!(metric(&again.get("/metrics").body, CREATED), Some(0.0));
    let second = again.stop();
    assert_eq!(second.status.code(), Some(0), "{}", second.stderr);

    assert_eq!(sent(&w), Some(3));
    assert_eq!(w.ledger().campaigns().unwrap().len(), 1);
    let files = w.outbox(&id.to_string());
    assert_eq!(files.len(), 3, "one message per subscriber: {files:?}");
    for f in files {
        let raw = std::fs::read(&f).unwrap();
        assert!(raw.starts_with(b"DKIM-Signature: "), "{}", f.display());
        if let Err(why) = crate::dkim::dkimpy(&raw, &txt) {
            panic!("{} does not verify: {why}", f.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_is_created_once_across_a_dst_repeat_and_two_daemons() {
    // New York falls back on 2026-11-01: 01:30 happens at 05:30Z and again at 06:30Z.
    let w = World::with_config(
        "[schedule]\ncron = \"0 30 1 1 11 *\"\ntimezone = \"America/New_York\"\n",
    );
    let id: IssueId = "2026-11".parse().unwrap();
    write_issue(&w, id);
    let (a, _) = daemon_at(&w, "2026-11-01T05:30:00Z");
    let (b, _) = daemon_at(&w, "2026-11-01T05:30:00Z");

    let first = utc("2026-11-01T05:30:00Z");
    let (fa, fb) = tokio::join!(a.fire(first), b.fire(first));
    let created = Fire::Created {
        issue: id,
        recipients: 3,
    };
    let mut outcomes = [fa.clone(), fb.clone()];
    outcomes.sort_by_key(|f| matches!(f, Fire::Exists(_)));
    assert_eq!(outcomes, [created, Fire::Exists(id)], "{fa:?} {fb:?}");

    // The second pass of the repeated hour belongs to the same issue.
    assert_eq!(a.fire(utc("2026-11-01T06:30:00Z")).await, Fire::Exists(id));
    assert_eq!(b.fire(utc("2026-11-01T06:30:00Z")).await, Fire::Exists(id));

    let creator = if matches!(fa, Fire::Created { .. }) {
        &a
    } else {
        &b
    };
    finish_and_stop(&w, creator, id).await;
    let other = if matches!(fa, Fire::Created { .. }) {
        &b
    } else {
        &a
    };
    assert!(other.shutdown(Duration::from_secs(10)).await);
    assert_eq!(w.outbox("2026-11").len(), 3);
    let l = w.ledger();
    assert_eq!(l.campaigns().unwrap().len(), 1);
    assert_eq!(
        l.campaign(id).unwrap().unwrap().trigger,
        brief::ledger::Trigger::Schedule
    );
    let text = a.metrics.render() + &b.metrics.render();
    assert_eq!(text.matches(&format!("{CREATED} 1\n")).count(), 1, "{text}");
    assert_eq!(text.matches(&format!("{EXISTS} 2\n")).count(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_catches_up_inside_the_window_and_leaves_older_fires_to_staff() {
    let config = "[schedule]\ncron = \"0 0 9 23 * *\"\ntimezone = \"UTC\"\ncatch_up = \"12h\"\n";
    let id: IssueId = "2026-07".parse().unwrap();

    // Started 6 hours after the fire: it is made up now.
    let w = World::with_config(config);
    write_issue(&w, id);
    let (d, _) = daemon_at(&w, "2026-07-23T15:00:00Z");
    assert_eq!(
        d.catch_up().await,
        Some(Fire::Created {
            issue: id,
            recipients: 3
        })
    );
    finish_and_stop(&w, &d, id).await;
    assert_eq!(w.outbox("2026-07").len(), 3);

    // Started 25 hours after: logged and left for staff; nothing is created.
    let w = World::with_config(config);
    write_issue(&w, id);
    let (d, _) = daemon_at(&w, "2026-07-24T10:00:00Z");
    assert_eq!(
        d.catch_up().await,
        Some(Fire::Missed {
            issue: id,
            fired_at: utc("2026-07-23T09:00:00Z")
        })
    );
    assert!(w.ledger().campaign(id).unwrap().is_none());
    assert!(d.metrics.render().contains("outcome=\"missed\"} 1\n"));

    // A month without a folder, or with a folder but no entries, is skipped.
    assert_eq!(
        d.fire(utc("2026-08-23T09:00:00Z")).await,
        Fire::Empty("2026-08".parse().unwrap())
    );
    w.write("content/2026-09/notes.txt", "not an entry");
    assert_eq!(
        d.fire(utc("2026-09-23T09:00:00Z")).await,
        Fire::Empty("2026-09".parse().unwrap())
    );
    // A month whose entries have problems is not sent either.
    w.write("content/2026-10/01.md", "no front matter here");
    assert_eq!(
        d.fire(utc("2026-10-23T09:00:00Z")).await,
        Fire::Failed("2026-10".parse().unwrap())
    );
    assert!(w.ledger().campaigns().unwrap().is_empty());
    assert!(d.shutdown(Duration::from_secs(10)).await);
}

/// A one-connection-at-a-time SMTP server that holds the reply to each final dot for
/// `delay`, and says on `dots` when it has a message in hand.
struct SlowSmtp {
    addr: SocketAddr,
    /// The recipient of each message it accepted.
    accepted: Arc<Mutex<Vec<String>>>,
    dots: mpsc::Receiver<()>,
}

impl SlowSmtp {
    fn start(delay: Duration) -> SlowSmtp {
        SlowSmtp::start_on("127.0.0.1:0".parse().unwrap(), delay)
    }

    fn start_on(addr: SocketAddr, delay: Duration) -> SlowSmtp {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (tx, dots) = mpsc::channel();
        let acc = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (acc, tx) = (acc.clone(), tx.clone());
                std::thread::spawn(move || {
                    let _ = SlowSmtp::session(conn, delay, &acc, &tx);
                });
            }
        });
        SlowSmtp {
            addr,
            accepted,
            dots,
        }
    }

    fn session(
        conn: TcpStream,
        delay: Duration,
        accepted: &Mutex<Vec<String>>,
        dots: &mpsc::Sender<()>,
    ) -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut out = conn.try_clone()?;
        let mut lines = BufReader::new(conn);
        out.write_all(b"220 slow.test ESMTP\r\n")?;
        let mut rcpt = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => out.write_all(b"250-slow.test\r\n250 8BITMIME\r\n")?,
                "RCPT" => {
                    rcpt = line.trim_end()[8..]
                        .trim_matches(['<', '>', ' '])
                        .to_string();
                    out.write_all(b"250 2.1.5 ok\r\n")?
                }
                "DATA" => {
                    out.write_all(b"354 go ahead\r\n")?;
                    loop {
                        line.clear();
                        if lines.read_line(&mut line)? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" {
                            break;
                        }
                    }
                    let _ = dots.send(());
                    std::thread::sleep(delay);
                    accepted.lock().unwrap().push(rcpt.clone());
                    out.write_all(b"250 2.0.0 queued\r\n")?;
                }
                "QUIT" => return out.write_all(b"221 bye\r\n"),
                _ => out.write_all(b"250 ok\r\n")?,
            }
        }
    }
}

#[test]
fn sigterm_lets_the_message_in_flight_finish_and_be_recorded() {
    let smtp = SlowSmtp::start(Duration::from_millis(1500));
    let w = World::with_config("[schedule]\ncron = \"*/4 * * * * *\"\ntimezone = \"UTC\"\n");
    use_smtp(
        &w,
        &format!(
            "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n",
            smtp.addr.port()
        ),
    );
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &text.replace(
            "database = \"data/brief.db\"",
            "database = \"data/brief.db\"\nconcurrency = 1",
        ),
    );
    let id = current_issue(&w);

    let d = Running::start(&w, &[]);
    // The server holds a message: it is in flight when the signal comes.
    smtp.dots
        .recv_timeout(Duration::from_secs(30))
        .expect("a message reaches the server");
    let signalled = Instant::now();
    let stopped = d.stop();
    let took = signalled.elapsed();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");

    let l = w.ledger();
    let c = l.campaign(id).unwrap().unwrap();
    let n = l.counts(c.id).unwrap();
    assert_eq!(n.sending, 0, "nothing is left in flight: {n:?}");
    assert!(n.sent >= 1, "the message in flight was recorded: {n:?}");
    assert_eq!(
        n.sent as usize,
        smtp.accepted.lock().unwrap().len(),
        "the ledger agrees with the server"
    );

    // The next start resumes the rest, and nobody gets a message twice.
    let again = Running::start(&w, &[]);
    wait_until(
        "the resumed campaign to finish",
        Duration::from_secs(30),
        || w.ledger().campaign(id).unwrap().unwrap().finished,
    );
    let resumed = again.stop();
    assert_eq!(resumed.status.code(), Some(0), "{}", resumed.stderr);
    if !c.finished {
        assert!(
            resumed.stderr.contains("campaign resumed"),
            "{}",
            resumed.stderr
        );
    }
    let mut got = smtp.accepted.lock().unwrap().clone();
    got.sort();
    assert_eq!(
        got,
        ["ana@example.org", "bob@example.org", "carla@example.org"]
    );
}

#[test]
fn a_relay_that_is_down_at_the_fire_gets_the_campaign_once_it_is_back() {
    // A free port with nobody listening yet.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let w = World::with_config("[schedule]\ncron = \"*/4 * * * * *\"\ntimezone = \"UTC\"\n");
    use_smtp(
        &w,
        &format!(
            "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n",
            addr.port()
        ),
    );
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &text.replace(
            "database = \"data/brief.db\"",
            "database = \"data/brief.db\"\nconcurrency = 1\nmax_attempts = 1\n\
             retry_min = \"1s\"\nretry_max = \"2s\"",
        ),
    );
    let id = current_issue(&w);
    let d = Running::start(&w, &[]);
    d.wait_for_metric(
        r#"brief_send_errors_total{kind="connection"}"#,
        1.0,
        Duration::from_secs(30),
    );
    wait_until(
        "the daemon to plan another run",
        Duration::from_secs(30),
        || d.stderr().contains("runs again later"),
    );
    let n = w
        .ledger()
        .counts(w.ledger().campaign(id).unwrap().unwrap().id)
        .unwrap();
    assert_eq!(
        (n.pending, n.sent, n.failed),
        (3, 0, 0),
        "no attempt was counted"
    );

    let smtp = SlowSmtp::start_on(addr, Duration::ZERO);
    wait_until("the campaign to finish", Duration::from_secs(30), || {
        w.ledger().campaign(id).unwrap().unwrap().finished
    });
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert_eq!(smtp.accepted.lock().unwrap().len(), 3);
}

/// A relay answering the same 451 to every reader trips the circuit breaker: the daemon logs it
/// as an error, counts it, charges nobody, and runs the campaign again later, which finishes
/// once the relay is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_break_is_logged_counted_and_the_campaign_runs_again_later() {
    use crate::support::smtp_server::{Rule, SmtpServer};
    let server = SmtpServer::start().await;
    server.rule(Rule::command("RCPT").reply("451 4.3.0 try later"));
    let w = World::with_config("[schedule]\ncron = \"*/4 * * * * *\"\ntimezone = \"UTC\"\n");
    use_smtp(
        &w,
        &format!(
            "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n",
            server.port()
        ),
    );
    // Three readers: a breaker of 2 trips on them.
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    w.write(
        "brief.toml",
        &text.replace(
            "database = \"data/brief.db\"",
            "database = \"data/brief.db\"\nconcurrency = 1\nbreaker = 2\n\
             retry_min = \"1s\"\nretry_max = \"2s\"",
        ),
    );
    let id = current_issue(&w);
    let d = Running::start(&w, &[]);
    let d = tokio::task::spawn_blocking(move || {
        d.wait_for_metric("brief_circuit_breaks_total", 1.0, Duration::from_secs(30));
        wait_until(
            "the daemon to plan another run",
            Duration::from_secs(30),
            || d.stderr().contains("runs again later"),
        );
        d
    })
    .await
    .unwrap();
    let log = d.stderr();
    let error = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("campaign stopped by the circuit breaker"))
        .unwrap_or_else(|| panic!("no error logged:\n{log}"));
    assert!(
        error.contains("the relay answered 2 readers in a row with `451 4.3.0` at RCPT TO"),
        "{error}"
    );
    let n = w
        .ledger()
        .counts(w.ledger().campaign(id).unwrap().unwrap().id)
        .unwrap();
    assert_eq!((n.sent, n.failed), (0, 0), "nobody charged: {n:?}");

    server.clear_rules();
    let started = Instant::now();
    while !w.ledger().campaign(id).unwrap().is_some_and(|c| c.finished) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            d.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = tokio::task::spawn_blocking(move || d.stop()).await.unwrap();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    for reader in ["ana@example.org", "bob@example.org", "carla@example.org"] {
        assert_eq!(server.copies(reader), 1, "{reader}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_bounce_is_logged_with_its_reply_and_suppresses_later_campaigns() {
    use crate::support::smtp_server::{Rule, SmtpServer};
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt("bob@example.org").reply("550 5.1.1 <bob@example.org>: no such user"));
    let w = World::with_config("[schedule]\ncron = \"*/4 * * * * *\"\ntimezone = \"UTC\"\n");
    use_smtp(
        &w,
        &format!(
            "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n",
            server.port()
        ),
    );
    let id = current_issue(&w);
    let d = Running::start(&w, &[]);
    let started = Instant::now();
    while !w.ledger().campaign(id).unwrap().is_some_and(|c| c.finished) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            d.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let errors = r#"brief_send_errors_total{kind="permanent"}"#;
    let d = tokio::task::spawn_blocking(move || {
        d.wait_for_metric(errors, 1.0, Duration::from_secs(10));
        d
    })
    .await
    .unwrap();
    let stopped = tokio::task::spawn_blocking(move || d.stop()).await.unwrap();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    // The reader is named by a keyed tag, in the reply too: never by address.
    let failure = stopped
        .stderr
        .lines()
        .find(|l| l.contains("failed") && l.contains("5.1.1"))
        .unwrap_or_else(|| panic!("no failure logged:\n{}", stopped.stderr));
    assert!(
        failure.contains("no such user") && failure.contains("recipient="),
        "{failure}"
    );
    assert!(
        !stopped.stderr.contains("bob@example.org"),
        "{}",
        stopped.stderr
    );
    assert_eq!(server.copies("ana@example.org"), 1);

    let list = w.brief().args(["subscribers", "list"]).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("bob@example.org\tbounced"), "{list}");

    // The next campaign, from the CLI and the same CSV, skips the bounced address.
    let out = w
        .brief()
        .args(["send", "--issue", "2021-07", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(server.copies("ana@example.org"), 2);
    assert_eq!(server.copies("bob@example.org"), 0);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("1 suppressed"), "{stdout}");
}

#[test]
fn shipped_config_runs_as_the_container_command_does() {
    let dockerfile = std::fs::read_to_string(crate::support::repo().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("ENV BRIEF_LISTEN=0.0.0.0:8080"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains(r#"CMD ["brief", "run"]"#),
        "{dockerfile}"
    );

    let dir = tempfile::tempdir().unwrap();
    for sub in ["config", "content", "templates"] {
        crate::support::copy_dir(&crate::support::repo().join(sub), &dir.path().join(sub));
    }
    // As in the image: the working directory holds config/brief.toml, and BRIEF_LISTEN moves
    // the listener (here to a free loopback port instead of 0.0.0.0:8080).
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("brief"));
    cmd.current_dir(dir.path())
        .env_remove("BRIEF_CONFIG")
        .env_remove("RUST_LOG")
        .env("BRIEF_LISTEN", "127.0.0.1:0")
        .arg("run");
    let d = Running::spawn(cmd);
    let health = d.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[test]
fn a_bad_dkim_key_stops_the_daemon_at_start_with_a_usage_error() {
    let w = World::with_config(
        "[dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nprivate_key_file = \"dkim.pem\"\n",
    );
    w.write("dkim.pem", "not a key");
    let out = w
        .brief()
        .arg("run")
        .env("BRIEF_LISTEN", "127.0.0.1:0")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("dkim.pem") && err.contains("not a PEM key"),
        "{err}"
    );
    // `brief check` reports the same problem, before anyone starts the daemon.
    let out = w.brief().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8(out.stdout).unwrap().contains("[dkim]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_feed_stops_the_scheduled_send_loudly_instead_of_sending_part_of_the_issue() {
    // A feed that answers 404: not transient, so the scheduled policy gives up at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/feed.json", listener.local_addr().unwrap());
    let app = axum::Router::new();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = "[schedule]\ncron = \"0 0 9 23 * *\"\ntimezone = \"UTC\"\n";
    let w = World::with_config(config);
    let text = std::fs::read_to_string(w.config_path()).unwrap().replace(
        "[content]\ndir = \"content\"\n",
        &format!("[content]\ndir = \"content\"\n\n[[content.feeds]]\nurl = \"{url}\"\n"),
    );
    w.write("brief.toml", &text);
    let id: IssueId = "2026-07".parse().unwrap();
    write_issue(&w, id);
    let (d, _) = daemon_at(&w, "2026-07-23T09:00:00Z");
    assert_eq!(d.fire(utc("2026-07-23T09:00:00Z")).await, Fire::Failed(id));
    assert!(
        w.ledger().campaign(id).unwrap().is_none(),
        "no partial issue is sent"
    );
    assert!(w.outbox("2026-07").is_empty());
    let metrics = d.metrics.render();
    assert!(
        metrics.contains(&format!("brief_feed_failures_total{{url=\"{url}\"}} 1\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains("brief_schedule_fires_total{outcome=\"failed\"} 1\n"),
        "{metrics}"
    );
    assert!(d.shutdown(Duration::from_secs(10)).await);
}

/// A daily fire (at midnight UTC) already past a 1 s `catch_up` when the daemon starts: the
/// warning names no folder to send when that month has none, and a later start does not repeat
/// it.
#[test]
fn a_missed_fire_is_reported_once_and_suggests_only_what_exists() {
    let config = "[schedule]\ncron = \"0 0 0 * * *\"\ntimezone = \"UTC\"\ncatch_up = \"1s\"\n";
    let debug = [("RUST_LOG", "brief=debug")];
    let start = |w: &World| {
        let d = Running::start(w, &debug);
        wait_until(
            "the missed fire is handled",
            Duration::from_secs(20),
            || d.stderr().contains("missed"),
        );
        let stopped = d.stop();
        assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
        stopped.stderr
    };
    // The fire at the last midnight belongs to this month.
    let missed = SystemClock.now().format("%Y-%m").to_string();

    // No folder for the month: nothing to send, so no `brief send` advice.
    let w = World::with_config(config);
    let first = start(&w);
    assert!(
        first.contains("it had nothing to send anyway") && first.contains("no issue was lost"),
        "{first}"
    );
    assert!(!first.contains("brief send --issue"), "{first}");
    let again = start(&w);
    assert!(
        !again.contains("was missed"),
        "said once, not at every start: {again}"
    );
    assert!(again.contains("missed fire already reported"), "{again}");

    // A folder with entries for the month: the advice to send it stands, once.
    let w = World::with_config(config);
    crate::support::copy_dir(
        &w.path("content/2021-07"),
        &w.path(&format!("content/{missed}")),
    );
    let first = start(&w);
    assert!(
        first.contains(&format!("send it with `brief send --issue {missed}`")),
        "{first}"
    );
    assert!(!start(&w).contains("was missed"));
}

/// An `admin_token_env` naming a variable that is not set turned the admin API off in silence.
#[test]
fn check_and_run_warn_about_an_env_key_naming_an_unset_variable() {
    let w = World::new();
    let var = "BRIEF_TEST_ADMIN_TOKEN_NOT_SET";
    let cfg = std::fs::read_to_string(w.config_path()).unwrap().replace(
        "[server]\n",
        &format!("[server]\nadmin_token_env = \"{var}\"\n"),
    );
    w.write("brief.toml", &cfg);
    let line = cfg
        .lines()
        .position(|l| l.starts_with("admin_token_env"))
        .unwrap()
        + 1;
    let warning = format!(
        "{}:{line}: `server.admin_token_env` names the environment variable {var}, which is not \
         set: the admin API (`POST /admin/test-send`) is off; set {var}, or remove the key",
        w.config_path().display()
    );

    let out = w.brief().env_remove(var).arg("check").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning, not a problem: {out:?}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(&format!("warning: {warning}")), "{stdout}");

    let d = Running::start(&w, &[]);
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    let logged = stopped
        .stderr
        .lines()
        .find(|l| l.contains(&warning))
        .unwrap_or_else(|| panic!("no warning logged:\n{}", stopped.stderr));
    assert!(logged.contains("WARN"), "{logged}");
}

/// A config that sends over SMTP without DKIM, from an example domain: `check`, `send` and
/// `run` all say so, naming the key, and the warnings alone do not fail `check`.
#[test]
fn check_send_and_run_warn_about_settings_that_break_real_delivery() {
    let w = World::new();
    // A closed port: nothing here connects before the warnings are out.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntimeout = \"2s\""
    ));
    let dkim = format!("{}: no `[dkim]` table", w.config_path().display());
    let example = "`newsletter.from` is brief@news.example.org, an example domain";

    let out = w.brief().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "warnings only: {out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(&format!("warning: {dkim}")), "{stdout}");
    assert!(stdout.contains(example), "{stdout}");
    assert!(
        !stdout.contains("public_url"),
        "an https public_url is fine: {stdout}"
    );

    let out = w
        .brief()
        .args(["send", "--test", "--to", "editor@example.org"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&format!("warning: {dkim}")), "{stderr}");

    let stopped = Running::start(&w, &[]).stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains(&dkim)),
        "{}",
        stopped.stderr
    );
}
