//! The commands end to end: preview files, the shipped config's first run, confirmation, status,
//! report and the subscriber commands.

use crate::support::{fold, repo, World};

#[test]
fn preview_writes_html_text_and_eml_with_every_entry() {
    let w = World::new();
    let out = w
        .brief()
        .args(["preview", "--issue", "2021-07"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for ext in ["html", "txt", "eml"] {
        assert!(
            w.path(&format!("out/preview/2021-07.{ext}")).is_file(),
            "{ext}"
        );
    }
    let (_, issue, _, _) = crate::render::example();
    let text = fold(&std::fs::read_to_string(w.path("out/preview/2021-07.txt")).unwrap());
    let html = fold(&crate::render::html_text(
        &std::fs::read_to_string(w.path("out/preview/2021-07.html")).unwrap(),
    ));
    let mut want = Vec::new();
    for (title, ps) in crate::render::paragraphs(&issue) {
        want.push(fold(&title));
        want.extend(ps.iter().map(|p| fold(p)));
    }
    crate::support::assert_in_order(&text, &want, "preview text");
    crate::support::assert_in_order(&html, &want, "preview html");
    assert!(!w.path("out/preview/2021-07.es.html").exists());

    // Two languages: each edition beside the default's, in its language.
    crate::faces::bilingual(&w);
    let out = w
        .brief()
        .args(["preview", "--issue", "2021-07"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let es = std::fs::read_to_string(w.path("out/preview/2021-07.es.html")).unwrap();
    assert!(es.contains("<html lang=\"es\"") && es.contains("Ver en el navegador"));
    let eml = std::fs::read_to_string(w.path("out/preview/2021-07.es.eml")).unwrap();
    assert!(eml.contains("\r\nContent-Language: es\r\n"));
    assert!(
        std::fs::read_to_string(w.path("out/preview/2021-07.es.txt"))
            .unwrap()
            .contains("Contexto institucional")
    );
}

/// Copies the shipped config, content and templates, as a fresh clone has them.
fn shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["config", "content", "templates"] {
        crate::support::copy_dir(&repo().join(sub), &dir.path().join(sub));
    }
    dir
}

/// The token key is loaded once when a command starts: the commands that mail no link
/// (check, preview, status) never make `data/token.key`; the first send does, and the next
/// preview uses that key instead of one of its own.
#[test]
fn only_a_command_that_mails_links_makes_the_token_key_file() {
    let dir = shipped();
    let brief = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("brief")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("BRIEF_CONFIG")
            .args(args)
            .write_stdin("")
            .output()
            .unwrap()
    };
    let key = dir.path().join("data/token.key");
    for args in [&["check"][..], &["preview", "--out", "out"], &["status"]] {
        let out = brief(args);
        assert!(out.status.code().is_some(), "{args:?}: {out:?}");
        assert!(!key.exists(), "{args:?} made the key file");
    }
    let out = brief(&["send", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let made = std::fs::read_to_string(&key).expect("the send made the key file");
    let out = brief(&["preview", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), made);
}

fn eml_count(dir: &std::path::Path) -> usize {
    walk(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .count()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    if let Ok(r) = std::fs::read_dir(dir) {
        for e in r {
            let p = e.unwrap().path();
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

#[test]
fn shipped_config_sends_once_to_every_example_subscriber() {
    let dir = shipped();
    let run = || {
        assert_cmd::Command::cargo_bin("brief")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("BRIEF_CONFIG")
            .args(["send", "--yes"])
            .write_stdin("")
            .output()
            .unwrap()
    };
    let readers = std::fs::read_to_string(dir.path().join("config/subscribers.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let outbox = dir.path().join("data/outbox");
    // The readers' copies, and the summary to the shipped config's one staff address.
    assert_eq!(eml_count(&outbox.join("2021-08")), readers);
    assert_eq!(eml_count(&outbox.join("staff")), 1);
    assert_eq!(eml_count(&outbox), readers + 1);
    let second = run();
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert_eq!(
        eml_count(&outbox),
        readers + 1,
        "the second run writes nothing"
    );
    assert!(String::from_utf8_lossy(&second.stdout).contains("already sent"));
    let status = assert_cmd::Command::cargo_bin("brief")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("BRIEF_CONFIG")
        .arg("status")
        .output()
        .unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(
        status.contains("finished  started") && status.contains(&format!("sent {readers} ")),
        "{status}"
    );
}

#[test]
fn send_without_yes_and_without_a_terminal_refuses() {
    let w = World::new();
    let out = w.brief().args(["send"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("refusing to send without confirmation"),
        "{err}"
    );
    assert!(err.contains("--yes"), "{err}");
    assert!(w.outbox("2021-07").is_empty());
}

#[test]
fn resend_skips_delivered_and_suppressed_and_dedupes_case() {
    let w = World::new();
    w.write(
        "subscribers.csv",
        "email,name\nana@example.org,Ana\nANA@example.org,Ana again\nnot an address,X\nbob@example.org,Bob\n",
    );
    let out = w
        .brief()
        .args(["subscribers", "remove", "bob@example.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = w.brief().args(["send", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("1 sent, 0 failed, 1 suppressed"),
        "{stdout}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("subscribers.csv:4: `not an address` is not a valid email address"),
        "{stderr}"
    );
    assert_eq!(w.outbox("2021-07").len(), 1);
    let report = w
        .brief()
        .args(["report", "--issue", "2021-07", "--format", "jsonl"])
        .output()
        .unwrap();
    let report = String::from_utf8(report.stdout).unwrap();
    let rows: Vec<serde_json::Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["address"], "ana@example.org");
    assert_eq!(rows[0]["state"], "sent");
    assert_eq!(rows[0]["last_code"], 250);
    assert_eq!(rows[1]["state"], "suppressed");
    let csv = w
        .brief()
        .args(["report", "--issue", "2021-07"])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(
        csv.starts_with("address,name,state,attempts,last_code"),
        "{csv}"
    );
}

#[test]
fn test_send_goes_to_its_own_folder_and_not_into_the_campaign() {
    let w = World::new();
    let out = w
        .brief()
        .args([
            "send",
            "--test",
            "--to",
            "editor@example.org,copy@example.org",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("editor@example.org: 250 written to"),
        "{stdout}"
    );
    assert_eq!(w.outbox("test").len(), 2);
    let raw = std::fs::read(&w.outbox("test")[0]).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(m.subject().unwrap().starts_with("[TEST] "));
    let l = w.ledger();
    assert!(
        l.campaign("2021-07".parse().unwrap()).unwrap().is_none(),
        "no campaign"
    );
    assert_eq!(l.test_send_count("2021-07".parse().unwrap()).unwrap(), 2);
}

#[test]
fn subscribers_commands_manage_the_list() {
    let w = World::new();
    let run = |args: &[&str]| {
        let o = w.brief().args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    assert_eq!(
        run(&["subscribers", "add", "New@Example.org", "--name", "New"]).0,
        Some(0)
    );
    assert_eq!(
        run(&["subscribers", "remove", "bob@example.org"]).0,
        Some(0)
    );
    w.write(
        "import.csv",
        "email,name\nnew@example.org,Dup\nbob@EXAMPLE.org,Bob\nzed@example.org,Zed\nbad,Bad\n",
    );
    let (code, out, err) = run(&["subscribers", "import", "import.csv"]);
    assert_eq!(code, Some(1), "a bad row makes the import exit 1");
    assert!(
        out.contains("1 added, 1 already on the list, 1 suppressed"),
        "{out}"
    );
    assert!(err.contains("import.csv:5:"), "{err}");
    let (_, list, _) = run(&["subscribers", "list"]);
    assert!(list.contains("bob@example.org\tunsubscribed"), "{list}");
    assert!(list.contains("New@Example.org\tactive"), "{list}");
    assert!(list.contains("zed@example.org\tactive"), "{list}");
    let (code, _, err) = run(&["subscribers", "add", "bob@example.org"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not re-subscribe"), "{err}");
}

/// Runs `brief ARGS` on a pseudo-terminal (util-linux `script`), as a person at a shell would,
/// typing `input`; returns the exit code and everything the terminal showed.
fn on_a_terminal(w: &World, args: &str, input: &str) -> (Option<i32>, String) {
    let command = format!(
        "{} --config {} {args}",
        assert_cmd::cargo::cargo_bin("brief").display(),
        w.config_path().display()
    );
    let out = assert_cmd::Command::new("timeout")
        .current_dir(&w.root)
        .env_remove("BRIEF_CONFIG")
        .env_remove("RUST_LOG")
        .args(["60", "script", "-qec", &command, "/dev/null"])
        .write_stdin(input)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_confirmation_prompt_says_how_many_readers_get_the_issue() {
    let w = World::new();
    // Three on the list, one of them unsubscribed: two readers would get it.
    let out = w
        .brief()
        .args(["subscribers", "remove", "bob@example.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let (code, screen) = on_a_terminal(&w, "send --issue 2021-07", "n\n");

    assert!(
        screen.contains("Send issue 2021-07 (") && screen.contains(") to 2 readers via "),
        "{screen}"
    );
    assert!(screen.contains("not sent"), "{screen}");
    assert_eq!(code, Some(1), "{screen}");
    assert!(w.outbox("2021-07").is_empty());
}

#[test]
fn every_issue_flag_has_help_text() {
    let w = World::new();
    for command in ["check", "preview", "send", "status", "report"] {
        let out = w.brief().args([command, "--help"]).output().unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with("--issue"))
            .unwrap_or_else(|| panic!("`{command} --help` has no --issue: {help}"));
        let text = line
            .trim_start()
            .trim_start_matches("--issue <ISSUE>")
            .trim();
        assert!(
            text.contains("YYYY-MM"),
            "`{command} --help`: --issue has no help text: {line:?}"
        );
    }
}

#[test]
fn report_without_issue_acts_on_the_newest_issue() {
    let w = World::new();
    let out = w.brief().args(["send", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let out = w
        .brief()
        .args(["report", "--format", "jsonl"])
        .output()
        .unwrap();

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r["state"] == "sent"), "{rows:?}");
}

#[test]
fn test_send_without_to_goes_to_the_staff() {
    let w = World::new();
    w.add_server_keys(
        "staff = [\"Editor <editor@example.org>\", \"copy@example.org\", \"EDITOR@example.org\"]",
    );

    let out = w.brief().args(["send", "--test"]).output().unwrap();

    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("editor@example.org: 250"), "{stdout}");
    assert!(stdout.contains("copy@example.org: 250"), "{stdout}");
    assert!(
        stdout.contains("2 of 2 accepted"),
        "one copy per address: {stdout}"
    );
    assert_eq!(w.outbox("test").len(), 2);
}

#[test]
fn a_test_send_to_one_address_named_150_times_sends_one_message() {
    let w = World::new();
    let to: Vec<&str> = [
        "editor@example.org",
        "EDITOR@example.org",
        "Editor@Example.Org",
    ]
    .into_iter()
    .cycle()
    .take(150)
    .collect();
    let out = w
        .brief()
        .args(["send", "--test", "--to", &to.join(",")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("1 of 1 accepted"), "{stdout}");
    assert_eq!(w.outbox("test").len(), 1);
    assert_eq!(
        w.ledger()
            .test_send_count("2021-07".parse().unwrap())
            .unwrap(),
        1
    );
}

#[test]
fn test_send_without_to_and_without_staff_says_what_to_do() {
    let w = World::new();
    let out = w.brief().args(["send", "--test"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("a test send needs --to ADDRESS, or staff addresses in `[server] staff`"),
        "{err}"
    );
    assert!(w.outbox("test").is_empty());
}

#[test]
fn removing_an_address_that_was_never_on_the_list_changes_nothing() {
    let w = World::new();
    let run = |args: &[&str]| w.brief().args(args).output().unwrap();

    // A typo of bob@example.org.
    let out = run(&["subscribers", "remove", "bbo@example.org"]);

    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bbo@example.org is not on the list") && err.contains("nothing changed"),
        "{err}"
    );
    let l = w.ledger();
    assert!(l.suppressions().unwrap().is_empty(), "nothing suppressed");

    // The address meant is removed, whatever its case; removing it again says so.
    let out = run(&["subscribers", "remove", "BOB@example.org"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = run(&["subscribers", "remove", "bob@example.org"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("bob@example.org is already unsubscribed"),);
    // An address added to the database (not in the file) can be removed too.
    assert_eq!(
        run(&["subscribers", "add", "dee@example.org"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["subscribers", "remove", "dee@example.org"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(l.suppressions().unwrap().len(), 2);
}

#[test]
fn a_missing_subscriber_list_is_a_config_error_naming_the_key_and_the_path() {
    let w = World::new();
    w.remove("subscribers.csv");
    for args in [&["check"][..], &["send", "--yes"]] {
        let out = w.brief().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        let want = format!(
            "the subscriber list {} does not exist (`[subscribers] file` in {}): create it with \
             the header line `email,name`, or set `file` to where the list is",
            w.path("subscribers.csv").display(),
            w.config_path().display()
        );
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    assert!(w.outbox("2021-07").is_empty());
}

/// A ledger that fails mid-run (a full disk): `brief send` still prints its summary line of what
/// the ledger holds, then the error.
#[test]
fn a_send_that_ends_with_a_ledger_error_still_prints_its_summary_line() {
    let w = World::new();
    // One connection: outcomes are committed one at a time, so exactly one is recorded.
    let cfg = std::fs::read_to_string(w.config_path())
        .unwrap()
        .replace("[delivery]\n", "[delivery]\nconcurrency = 1\n");
    w.write("brief.toml", &cfg);
    drop(w.ledger());
    // Once one delivery is recorded as sent, every later change to a delivery fails, the way a
    // full disk fails every write.
    rusqlite::Connection::open(w.path("data/brief.db"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER disk_full BEFORE UPDATE ON deliveries
             WHEN (SELECT count(*) FROM deliveries WHERE state = 'sent') >= 1
             BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
        )
        .unwrap();

    let out = w.brief().args(["send", "--yes"]).output().unwrap();

    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stdout.ends_with(
            "issue 2021-07: 1 sent now; 1 sent, 0 failed, 0 suppressed, 0 deferred, 2 pending of 3 (not finished)\n"
        ),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("database or disk is full"), "{stderr}");
}

/// A secret the config names by `*_env` whose variable is not set is a setup error: `send` and
/// `run` exit 2 (not 1, as for a failed send), naming the key and the variable.
#[test]
fn an_unset_secret_variable_exits_2_naming_the_key_and_the_variable() {
    let var = "BRIEF_TEST_NEVER_SET_SECRET";
    let w = World::new();
    w.add_server_keys(&format!("secret_env = \"{var}\""));
    for args in [&["send", "--yes"][..], &["run"]] {
        let out = w
            .brief()
            .env_remove(var)
            .args(args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("`server.secret_env`") && err.contains(var),
            "{args:?}: {err}"
        );
    }
    assert!(w.outbox("2021-07").is_empty());

    // The relay's password: `smtp.password_env` with `username`, the variable unset.
    let var = "BRIEF_TEST_NEVER_SET_PASSWORD";
    let w = World::new();
    w.use_smtp(&format!(
        "transport = \"smtp\"\nhost = \"127.0.0.1\"\nport = 9\nusername = \"brief\"\n\
         password_env = \"{var}\""
    ));
    let out = w
        .brief()
        .env_remove(var)
        .args(["send", "--yes"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("smtp.password_env") && err.contains(var),
        "{err}"
    );
}
