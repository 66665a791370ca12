//! The notice queue against the fault-injecting SMTP server: a confirmation and a staff
//! sign-in link answered 451 once still arrive within seconds, a refused confirmation does not
//! stop its reader asking again, a 5xx is not tried again, and a canary that no staff address
//! accepts holds its campaign with no reader mailed (ledger, `brief status`, metric).

use std::time::{Duration, Instant};

use brief::ledger::{HoldReason, NoticeKind, NoticeState};

use crate::support::daemon::{metric, Running};
use crate::support::smtp_server::{Rule, SmtpServer};
use crate::support::World;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const EDITOR: &str = "editor@example.org";
const SECOND: &str = "second@example.org";
const READERS: [&str; 3] = ["ana@example.org", "bob@example.org", "carla@example.org"];

/// A world whose mail goes to the test SMTP server on `port`, with one staff address.
fn world(port: u16) -> World {
    world_with_staff(port, &[EDITOR])
}

fn world_with_staff(port: u16, staff: &[&str]) -> World {
    let w = World::new();
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         helo_name = \"news.example.org\"\ntimeout = \"5s\""
    ));
    let list: Vec<String> = staff.iter().map(|a| format!("\"{a}\"")).collect();
    w.add_server_keys(&format!("staff = [{}]", list.join(", ")));
    w
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

/// Waits (bounded: 20 s) until `server` accepted a message for `rcpt`.
async fn wait_accepted(server: &SmtpServer, rcpt: &str) -> Duration {
    let started = Instant::now();
    while server.copies(rcpt) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing reached {rcpt}; commands: {:?}",
            server.commands()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// How many RCPT TO commands named `rcpt`.
fn rcpts(server: &SmtpServer, rcpt: &str) -> usize {
    server
        .commands()
        .iter()
        .filter(|c| {
            c.to_ascii_lowercase()
                .starts_with(&format!("rcpt to:<{rcpt}>"))
        })
        .count()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_and_a_sign_in_link_answered_451_once_arrive_within_seconds() {
    let server = SmtpServer::start().await;
    for rcpt in ["new@example.org", EDITOR] {
        server.rule(
            Rule::rcpt(rcpt)
                .reply("451 4.7.1 greylisted, try again later")
                .times(1),
        );
    }
    let w = world(server.port());
    let d = std::sync::Arc::new(Running::start(&w, &[]));
    let dd = d.clone();
    let (joined, signed) = blocking(move || {
        let joined = dd.post(
            "/subscribe",
            &[FORM],
            &form(&[("email", "new@example.org"), ("name", ""), ("website", "")]),
        );
        let signed = dd.post("/admin/login", &[FORM], &form(&[("email", EDITOR)]));
        (joined.status, signed.status)
    })
    .await;
    assert_eq!((joined, signed), (200, 200));
    wait_accepted(&server, "new@example.org").await;
    wait_accepted(&server, EDITOR).await;
    // Each was refused once, then accepted once: two RCPTs, one message.
    for rcpt in ["new@example.org", EDITOR] {
        assert_eq!(rcpts(&server, rcpt), 2, "{rcpt}: {:?}", server.commands());
        assert_eq!(server.copies(rcpt), 1, "{rcpt}");
    }
    let notices = w.ledger().notices().unwrap();
    for kind in [NoticeKind::Confirmation, NoticeKind::StaffLogin] {
        let n = notices.iter().find(|n| n.kind == kind).unwrap();
        assert_eq!((n.state, n.attempts), (NoticeState::Sent, 2), "{kind}");
        assert_eq!(n.last_code, Some(250), "{kind}");
    }
    let stopped = std::sync::Arc::into_inner(d).unwrap().stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("not accepted: it is tried again"),
        "{}",
        stopped.stderr
    );
    // The log names them by keyed tag, never by address.
    assert!(
        !stopped.stderr.contains("new@example.org") && !stopped.stderr.contains(EDITOR),
        "{}",
        stopped.stderr
    );
}

/// The rate mark (one confirmation per address per 10 minutes) is set when the relay accepts a
/// confirmation: one refused with 451 does not keep its reader from asking again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_refused_with_451_does_not_stop_the_reader_asking_again() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::rcpt("new@example.org")
            .reply("451 4.3.0 try again later")
            .times(1),
    );
    let w = world(server.port());
    let ask = |w: &World| {
        let mut cmd = w.brief();
        cmd.args(["subscribers", "add", "new@example.org", "--confirm"]);
        async move {
            let out = blocking(move || cmd.output().unwrap()).await;
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let (code, out) = ask(&w).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("did not take the confirmation message"),
        "{out}"
    );
    assert_eq!(server.copies("new@example.org"), 0);

    let (code, out) = ask(&w).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("mailed a confirmation link to new@example.org"),
        "{out}"
    );
    assert_eq!(server.copies("new@example.org"), 1);
    // The older link, still queued for a retry, is replaced by the newer one: not sent too.
    let notices = w.ledger().notices().unwrap();
    assert_eq!(
        notices
            .iter()
            .map(|n| (n.state, n.attempts))
            .collect::<Vec<_>>(),
        [(NoticeState::Failed, 1), (NoticeState::Sent, 1)]
    );

    // Now that one was accepted, the mark holds: a third ask within 10 minutes sends nothing.
    let (code, out) = ask(&w).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("less than 10 minutes ago"), "{out}");
    assert_eq!(server.copies("new@example.org"), 1);
}

/// A canary copy refused (5xx) by every staff address: the campaign is held, every reader is
/// left unmailed, the 5xx is not tried again, and the ledger, `brief status` and the metric
/// say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_no_staff_address_accepted_holds_the_campaign_and_mails_no_reader() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt(EDITOR).reply("550 5.1.1 no such user here"));
    // The second staff address refuses the canary copy only: it gets the word that the
    // campaign is held, and signs in to the console with it.
    server.rule(
        Rule::rcpt(SECOND)
            .reply("554 5.7.1 message refused")
            .times(1),
    );
    let w = world_with_staff(server.port(), &[EDITOR, SECOND]);
    let mut cmd = w.brief();
    cmd.args(["send", "--yes", "--canary=2s"])
        .timeout(Duration::from_secs(60));
    let out = blocking(move || cmd.output().unwrap()).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("no staff address accepted the canary copy"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("held because no staff address accepted the canary copy"),
        "{stdout}"
    );
    for r in READERS {
        assert_eq!(server.copies(r), 0, "{r} was mailed");
    }
    let l = w.ledger();
    let c = l.campaign("2021-07".parse().unwrap()).unwrap().unwrap();
    assert!(c.held_at.is_some(), "{c:?}");
    assert_eq!(c.hold_reason, Some(HoldReason::CanaryUnaccepted));
    let n = l.counts(c.id).unwrap();
    assert_eq!((n.sent, n.pending, n.total()), (0, 3, 3));
    // The 5xx is final: one try of the canary copy, and of the notice that says it is held.
    let notices = l.notices().unwrap();
    for kind in [NoticeKind::Canary, NoticeKind::CanaryHeld] {
        let n = notices.iter().find(|n| n.kind == kind).unwrap();
        assert_eq!((n.state, n.attempts), (NoticeState::Failed, 1), "{kind}");
    }
    assert_eq!(rcpts(&server, EDITOR), 2, "{:?}", server.commands());

    let status = w.brief().args(["status"]).output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains("held: no staff address accepted the canary copy"),
        "{status}"
    );
    // Another `brief send` mails nobody while it is held; the daemon's metric says so.
    let mut cmd = w.brief();
    cmd.args(["send", "--yes"]).timeout(Duration::from_secs(60));
    let again = blocking(move || cmd.output().unwrap()).await;
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    let d = std::sync::Arc::new(Running::start(&w, &[]));
    let dd = d.clone();
    let metrics = blocking(move || dd.get("/metrics").body).await;
    assert_eq!(
        metric(&metrics, "brief_canary_unaccepted"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "brief_campaigns_waiting{gate=\"held\"}"),
        Some(1.0)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    for r in READERS {
        assert_eq!(server.copies(r), 0, "{r} was mailed by the daemon");
    }
    let stopped = std::sync::Arc::into_inner(d).unwrap().stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert_eq!(rcpts(&server, EDITOR), 2, "a 5xx was tried again");
}

/// Canary copies the relay answers 451 are tried again within seconds, and the readers wait
/// for a staff address to accept one even after the window has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reader_is_mailed_before_a_staff_address_accepted_the_canary_copy() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt(EDITOR).reply("451 4.3.0 mailbox busy").times(2));
    let w = world(server.port());
    let mut cmd = w.brief();
    cmd.args(["send", "--yes", "--canary=1s"])
        .timeout(Duration::from_secs(60));
    let out = blocking(move || cmd.output().unwrap()).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(tried again within seconds)"), "{stdout}");
    let order: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m.rcpt_to[0].to_ascii_lowercase())
        .collect();
    let canary = order
        .iter()
        .position(|r| r == EDITOR)
        .expect("the canary copy");
    for r in READERS {
        let at = order
            .iter()
            .position(|x| x == r)
            .unwrap_or_else(|| panic!("{r}: {order:?}"));
        assert!(
            at > canary,
            "{r} was mailed before staff got the canary: {order:?}"
        );
    }
    assert_eq!(
        rcpts(&server, EDITOR),
        3 + 1,
        "two 451s, the copy, the summary"
    );
    let l = w.ledger();
    let c = l.campaign("2021-07".parse().unwrap()).unwrap().unwrap();
    let sends = l.canary_sends(c.id).unwrap();
    assert_eq!(sends.len(), 1);
    assert!(sends[0].accepted);
    assert!(c.finished && c.held_at.is_none() && !c.canary_pending);
}

/// A stop waits for a notice being tried: a sign-in link whose relay answers the final dot
/// 3 seconds late is recorded as sent before the daemon exits (0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_for_the_notice_being_tried() {
    let server = SmtpServer::start().await;
    server.rule(
        Rule::end_of_data_for(EDITOR)
            .reply_after(Duration::from_secs(3), "250 2.0.0 Ok: queued late"),
    );
    let w = world(server.port());
    let d = Running::start(&w, &[]);
    let d = blocking(move || {
        assert_eq!(
            d.post("/admin/login", &[FORM], &form(&[("email", EDITOR)]))
                .status,
            200
        );
        d
    })
    .await;
    let started = Instant::now();
    while !server
        .commands()
        .iter()
        .any(|c| c.eq_ignore_ascii_case("DATA"))
    {
        assert!(started.elapsed() < Duration::from_secs(20), "no DATA");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = blocking(move || d.stop()).await;
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    let notices = w.ledger().notices().unwrap();
    assert_eq!(
        notices
            .iter()
            .map(|n| (n.kind, n.state, n.attempts))
            .collect::<Vec<_>>(),
        [(NoticeKind::StaffLogin, NoticeState::Sent, 1)],
        "{}",
        stopped.stderr
    );
    assert_eq!(server.copies(EDITOR), 1);
}

/// In the daemon, the notice worker tries again the canary copies the relay answered 451, and
/// the scheduled campaign's readers wait for the accepted copy, past the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_retries_the_canary_copy_and_mails_readers_after_it() {
    let server = SmtpServer::start().await;
    server.rule(Rule::rcpt(EDITOR).reply("451 4.3.0 mailbox busy").times(2));
    let w = World::with_config(
        "[schedule]\ncron = \"*/4 * * * * *\"\ntimezone = \"UTC\"\ncanary = \"1s\"\n",
    );
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n\
         helo_name = \"news.example.org\"\ntimeout = \"5s\"",
        server.port()
    ));
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    let issue = crate::daemon::current_issue(&w);
    let d = Running::start(&w, &[]);
    let started = Instant::now();
    loop {
        let done = w
            .ledger()
            .campaign(issue)
            .unwrap()
            .is_some_and(|c| c.finished);
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the campaign did not finish: {:?}",
            server.commands()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let order: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m.rcpt_to[0].to_ascii_lowercase())
        .collect();
    let canary = order
        .iter()
        .position(|r| r == EDITOR)
        .expect("the canary copy");
    for r in READERS {
        let at = order
            .iter()
            .position(|x| x == r)
            .unwrap_or_else(|| panic!("{r}: {order:?}"));
        assert!(
            at > canary,
            "{r} was mailed before staff got the canary: {order:?}"
        );
    }
    let stopped = blocking(move || d.stop()).await;
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    let l = w.ledger();
    let canary = l
        .notices()
        .unwrap()
        .into_iter()
        .find(|n| n.kind == NoticeKind::Canary)
        .unwrap();
    assert_eq!((canary.state, canary.attempts), (NoticeState::Sent, 3));
}
