//! The canary and the summaries: staff get the campaign's very message first and can hold it
//! (CLI or console) across restarts, a release sends every reader once, and staff get a summary
//! when the campaign finishes and another a day later.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brief::clock::{Clock, FixedClock, SystemClock};
use brief::daemon::Daemon;
use tokio_util::sync::CancellationToken;

use crate::daemon::current_issue;
use crate::support::daemon::{wait_until, Running};
use crate::support::{subject_of as subject, text_of as body_text, World};

const STAFF: &str = "staff = [\"Editor <editor@example.org>\"]";

/// A world whose daemon fires every 4 seconds with a canary window of `window`, with one
/// staff address.
fn canary_world(window: &str) -> World {
    let w = World::with_config(&format!(
        "[schedule]\ncron = \"*/4 * * * * *\"\ntimezone = \"UTC\"\ncanary = \"{window}\"\n"
    ));
    w.add_server_keys(STAFF);
    w
}

fn header<'a>(eml: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}:");
    eml.lines()
        .take_while(|l| !l.is_empty())
        .find(|l| l.starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim())
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// The subjects of the mails in the staff outbox (summaries, checks).
fn staff_subjects(w: &World) -> Vec<String> {
    w.outbox("staff").iter().map(|p| subject(p)).collect()
}

#[test]
fn the_daemon_mails_staff_first_and_a_hold_keeps_readers_waiting_across_a_restart() {
    let w = canary_world("15s");
    let id = current_issue(&w);
    let d = Running::start(&w, &[]);
    wait_until("the canary copy", Duration::from_secs(30), || {
        !w.outbox("canary").is_empty()
    });
    // Staff have the readers' message, with its real subject, and no reader has anything yet.
    assert!(
        w.outbox(&id.to_string()).is_empty(),
        "readers were mailed during the window"
    );
    let l = w.ledger();
    let c = l.campaign(id).unwrap().unwrap();
    assert_eq!(l.counts(c.id).unwrap().sent, 0);
    assert_eq!(
        l.counts(c.id).unwrap().total(),
        3,
        "staff are not counted as readers"
    );
    let canary = read(&w.outbox("canary")[0]);
    assert_eq!(subject(&w.outbox("canary")[0]), c.subject);
    assert!(header(&canary, "To")
        .unwrap()
        .contains("editor@example.org"));
    assert!(
        header(&canary, "List-Unsubscribe").is_some(),
        "the readers' headers too"
    );

    let held = w
        .brief()
        .args(["hold", "--issue", &id.to_string()])
        .output()
        .unwrap();
    assert!(held.status.success(), "{held:?}");
    assert!(String::from_utf8_lossy(&held.stdout).contains(&format!("issue {id} is held")));

    // Past the window, and across a restart, nobody is mailed.
    crate::support::daemon::sleep_past_canary_window(&w, &id.to_string());
    assert!(
        w.outbox(&id.to_string()).is_empty(),
        "a held campaign mailed readers"
    );
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("held by staff"),
        "{}",
        stopped.stderr
    );
    let status = w
        .brief()
        .args(["status", "--issue", &id.to_string()])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains(" held "), "{status}");
    assert!(
        status.contains("canary: 1 of 1 staff copies accepted"),
        "{status}"
    );

    let d = Running::start(&w, &[]);
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        w.outbox(&id.to_string()).is_empty(),
        "the restart mailed a held campaign"
    );
    assert_eq!(w.outbox("canary").len(), 1, "the canary goes out once");

    let released = w
        .brief()
        .args(["release", "--issue", &id.to_string()])
        .output()
        .unwrap();
    assert!(released.status.success(), "{released:?}");
    wait_until(
        "the released campaign to finish",
        Duration::from_secs(30),
        || w.ledger().campaign(id).unwrap().unwrap().finished,
    );
    let mut to: Vec<String> = w
        .outbox(&id.to_string())
        .iter()
        .map(|p| header(&read(p), "To").unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to.len(), 3, "each reader once: {to:?}");
    to.dedup();
    assert_eq!(to.len(), 3, "each reader once: {to:?}");

    wait_until("the summary mail", Duration::from_secs(30), || {
        staff_subjects(&w).iter().any(|s| s.contains("Summary"))
    });
    let subjects = staff_subjects(&w);
    let summary = subjects.iter().find(|s| s.contains("Summary")).unwrap();
    assert!(summary.contains(&id.to_string()), "{summary}");
    let text = body_text(
        w.outbox("staff")
            .iter()
            .find(|p| subject(p).contains("Summary"))
            .unwrap(),
    );
    assert!(text.contains("Sent: 3"), "{text}");
    assert!(text.contains(&format!("admin/campaigns/{id}")), "{text}");
    let stopped = d.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    let n = w.ledger().counts(c.id).unwrap();
    assert_eq!((n.sent, n.total()), (3, 3));
}

#[test]
fn brief_send_canary_waits_for_the_window_and_stops_at_a_hold() {
    let w = World::new();
    w.add_server_keys(STAFF);
    // With a window of 2 seconds, the readers are mailed when it ends.
    let sent = w
        .brief()
        .args(["send", "--yes", "--canary=2s"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&sent.stdout).to_string();
    assert!(
        sent.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(out.contains("canary to editor@example.org: "), "{out}");
    assert!(out.contains("the readers are mailed at"), "{out}");
    assert_eq!(w.outbox("canary").len(), 1);
    assert_eq!(w.outbox("2021-07").len(), 3);
    let canary_at = std::fs::metadata(&w.outbox("canary")[0])
        .unwrap()
        .modified()
        .unwrap();
    let first_reader = w
        .outbox("2021-07")
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .min()
        .unwrap();
    assert!(
        first_reader.duration_since(canary_at).unwrap() >= Duration::from_millis(1500),
        "the readers went out before the window ended"
    );
    // The CLI mails the summary itself.
    assert!(
        staff_subjects(&w)
            .iter()
            .any(|s| s.starts_with("Summary: BRIEF 2021-07")),
        "{:?}",
        staff_subjects(&w)
    );
    // A finished campaign cannot be held.
    let late = w
        .brief()
        .args(["hold", "--issue", "2021-07"])
        .output()
        .unwrap();
    assert_eq!(late.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&late.stderr).contains("reached 3 readers already"),
        "{late:?}"
    );

    // A hold during the window ends `brief send`, with nobody mailed.
    let w = World::new();
    w.add_server_keys(STAFF);
    let mut send = Command::new(assert_cmd::cargo::cargo_bin("brief"))
        .current_dir(&w.root)
        .env_remove("BRIEF_CONFIG")
        .env_remove("RUST_LOG")
        .args(["--config", w.config_path().to_str().unwrap()])
        .args(["send", "--yes", "--canary=60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the canary copy", Duration::from_secs(30), || {
        !w.outbox("canary").is_empty()
    });
    let held = w.brief().args(["hold"]).output().unwrap();
    assert!(held.status.success(), "{held:?}");
    let started = Instant::now();
    let out = loop {
        if send.try_wait().unwrap().is_some() {
            break send.wait_with_output().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "brief send did not see the hold"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("held by staff before any reader was mailed"),
        "{stdout}"
    );
    assert!(w.outbox("2021-07").is_empty());
    // A send while held says so and mails nobody; after a release it sends everyone.
    let again = w.brief().args(["send", "--yes"]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(w.outbox("2021-07").is_empty());
    let released = w.brief().args(["release"]).output().unwrap();
    assert!(released.status.success(), "{released:?}");
    let done = w.brief().args(["send", "--yes"]).output().unwrap();
    assert!(done.status.success(), "{done:?}");
    assert_eq!(w.outbox("2021-07").len(), 3);
    assert_eq!(w.outbox("canary").len(), 1);
}

#[test]
fn canary_needs_staff() {
    let w = World::with_config("[schedule]\ncanary = \"30m\"\n");
    let out = w.brief().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`schedule.canary` needs `server.staff`"),
        "{out:?}"
    );
    let w = World::new();
    let out = w
        .brief()
        .args(["send", "--yes", "--canary"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(w.outbox("2021-07").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_summary_a_day_later_adds_what_came_back() {
    let w = World::new();
    w.add_server_keys(STAFF);
    let sent = w.brief().args(["send", "--yes"]).output().unwrap();
    assert!(sent.status.success(), "{sent:?}");
    assert_eq!(staff_subjects(&w).len(), 1, "{:?}", staff_subjects(&w));
    // Ana unsubscribes; the daemon a day later mails the follow-up, once.
    let unsub = w
        .brief()
        .args(["subscribers", "remove", "ana@example.org"])
        .output()
        .unwrap();
    assert!(unsub.status.success(), "{unsub:?}");
    let clock = std::sync::Arc::new(FixedClock::new(
        SystemClock.now() + chrono::TimeDelta::hours(23),
    ));
    let app = brief::app::App::new(w.config(), clock.clone()).unwrap();
    let d = Daemon::new(app, CancellationToken::new()).unwrap();
    assert_eq!(d.mail_summaries().await, 0, "not before a day has passed");
    clock.set(SystemClock.now() + chrono::TimeDelta::hours(25));
    assert_eq!(d.mail_summaries().await, 1);
    assert_eq!(d.mail_summaries().await, 0, "each summary goes out once");
    let subjects = staff_subjects(&w);
    assert!(
        subjects
            .iter()
            .any(|s| s == "Summary a day later: BRIEF 2021-07"),
        "{subjects:?}"
    );
    let followup = w
        .outbox("staff")
        .into_iter()
        .find(|p| subject(p).contains("a day later"))
        .map(|p| body_text(&p))
        .unwrap();
    assert!(followup.contains("Unsubscribes: 1"), "{followup}");
    assert!(followup.contains("Hard bounces: 0"), "{followup}");

    // `summary = false` turns both off.
    let w = World::with_config("[schedule]\nsummary = false\n");
    w.add_server_keys(STAFF);
    let sent = w.brief().args(["send", "--yes"]).output().unwrap();
    assert!(sent.status.success(), "{sent:?}");
    assert!(staff_subjects(&w).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_the_relay_could_not_take_is_tried_again() {
    use crate::support::smtp_server::{Rule, SmtpServer};
    let server = SmtpServer::start().await;
    server.rule(
        Rule::rcpt("editor@example.org")
            .reply("451 4.3.0 try again later")
            .times(1),
    );
    let w = World::new();
    w.add_server_keys(STAFF);
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n",
        server.port()
    ));
    let mut cmd = w.brief();
    cmd.args(["send", "--yes"]);
    let sent = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    for r in ["ana@example.org", "bob@example.org", "carla@example.org"] {
        assert_eq!(server.copies(r), 1, "{r}");
    }
    assert_eq!(server.copies("editor@example.org"), 0, "the relay said 451");
    // It waits in the notice queue: the daemon's worker tries it again a minute later, once
    // (a clock two minutes on stands for the wait), and makes no second summary.
    let clock = std::sync::Arc::new(FixedClock::new(
        SystemClock.now() + chrono::TimeDelta::minutes(2),
    ));
    let app = brief::app::App::new(w.config(), clock).unwrap();
    let d = Daemon::new(app, CancellationToken::new()).unwrap();
    assert_eq!(d.mail_summaries().await, 0, "the summary was made once");
    assert_eq!(d.drain_notices().await, 1);
    assert_eq!(d.drain_notices().await, 0);
    assert_eq!(server.copies("editor@example.org"), 1);
}
