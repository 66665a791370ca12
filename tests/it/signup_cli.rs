//! The command-line side of readers joining: the form snippet, `subscribers add --confirm`,
//! the states of `subscribers list`, `subscribers export`, and `subscribers forget`.

use crate::support::World;
use brief::ledger::Reason;

/// Runs `brief ARGS` in `w`: exit code, stdout, stderr.
fn run(w: &World, args: &[&str]) -> (Option<i32>, String, String) {
    let o = w.brief().args(args).output().unwrap();
    (
        o.status.code(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

fn addr(s: &str) -> lettre::Address {
    s.parse().unwrap()
}

/// The text parts of an .eml file, decoded.
fn eml_text(path: &std::path::Path) -> String {
    let raw = std::fs::read(path).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    (0..m.text_body_count())
        .filter_map(|i| m.body_text(i))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn subscribe_form_prints_the_signup_form_for_the_website() {
    let w = World::new();

    let (code, html, err) = run(&w, &["subscribe-form"]);

    assert_eq!(code, Some(0), "{err}");
    assert!(
        html.contains(r#"<form method="post" action="https://news.example.org/subscribe""#),
        "{html}"
    );
    assert!(html.contains(r#"type="email" name="email""#), "{html}");
    assert!(html.contains(r#"name="name""#), "{html}");
    assert!(
        html.contains(r#"name="website" tabindex="-1""#),
        "the honeypot: {html}"
    );
    let consent = "I agree to receive BRIEF, the monthly newsletter of the Center for Binational \
                   Institutions, by email.";
    assert!(html.contains(consent), "{html}");
    assert!(!html.to_lowercase().contains("<script"), "{html}");
    // One language: the form says it without asking.
    assert!(
        html.contains(r#"<input type="hidden" name="lang" value="en">"#),
        "{html}"
    );

    // Two languages: the form in Spanish, offering both, Spanish chosen.
    crate::faces::bilingual(&w);
    let (code, html, err) = run(&w, &["subscribe-form", "--lang", "es-MX"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        html.contains("Correo electrónico") && html.contains("Suscribirme"),
        "{html}"
    );
    assert!(
        html.contains(r#"<option value="en" lang="en">English</option><option value="es" lang="es" selected>Español</option>"#),
        "{html}"
    );
    let (code, _, err) = run(&w, &["subscribe-form", "--lang", "fr"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--lang fr: `newsletter.languages` lists en, es"),
        "{err}"
    );
}

#[test]
fn add_with_confirm_mails_a_link_instead_of_adding() {
    let w = World::new();
    assert_eq!(
        run(&w, &["subscribers", "remove", "bob@example.org"]).0,
        Some(0)
    );

    let (code, out, err) = run(
        &w,
        &[
            "subscribers",
            "add",
            "new@example.org",
            "--confirm",
            "--name",
            "New",
        ],
    );

    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("mailed a confirmation link to new@example.org"),
        "{out}"
    );
    let mails = w.outbox("signup");
    assert_eq!(mails.len(), 1, "{mails:?}");
    let text = eml_text(&mails[0]);
    assert!(text.contains("https://news.example.org/confirm/"), "{text}");
    let l = w.ledger();
    assert!(!l
        .is_stored_subscriber(&brief::address::AddressKey::of(&addr("new@example.org")))
        .unwrap());

    // An unsubscribed reader can be asked to join again; an active one gets nothing; a second
    // request within 10 minutes sends nothing.
    let (code, out, _) = run(&w, &["subscribers", "add", "bob@example.org", "--confirm"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("mailed a confirmation link to bob@example.org"),
        "{out}"
    );
    let (code, out, _) = run(&w, &["subscribers", "add", "ana@example.org", "--confirm"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("ana@example.org is already active: nothing sent"),
        "{out}"
    );
    let (code, out, _) = run(&w, &["subscribers", "add", "New@example.org", "--confirm"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("less than 10 minutes ago: nothing sent"),
        "{out}"
    );
    assert_eq!(w.outbox("signup").len(), 2);

    let (_, list, _) = run(&w, &["subscribers", "list"]);
    assert!(list.contains("new@example.org\tpending\tNew\n"), "{list}");
    assert!(list.contains("bob@example.org\tpending\t"), "{list}");
    // Plain `add` still never re-subscribes a suppressed address.
    let (code, _, err) = run(&w, &["subscribers", "add", "bob@example.org"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not re-subscribe"), "{err}");
}

#[test]
fn list_shows_every_state_and_ends_with_the_counts() {
    let w = World::new();
    assert_eq!(
        run(&w, &["subscribers", "add", "dee@example.org"]).0,
        Some(0)
    );
    assert_eq!(
        run(&w, &["subscribers", "add", "eve@example.org"]).0,
        Some(0)
    );
    assert_eq!(
        run(&w, &["subscribers", "remove", "bob@example.org"]).0,
        Some(0)
    );
    {
        let mut l = w.ledger();
        l.suppress(&addr("carla@example.org"), Reason::Bounced, "550 5.1.1", 1)
            .unwrap();
        l.suppress(
            &addr("dee@example.org"),
            Reason::Complained,
            "spam report",
            1,
        )
        .unwrap();
        // Suppressed, on no list any more.
        l.suppress(&addr("old@example.org"), Reason::Unsubscribed, "", 1)
            .unwrap();
    }
    assert_eq!(
        run(&w, &["subscribers", "add", "fay@example.org", "--confirm"]).0,
        Some(0)
    );

    let (code, list, err) = run(&w, &["subscribers", "list"]);

    assert_eq!(code, Some(0), "{err}");
    let states: Vec<(&str, &str)> = list
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, f.next()?))
        })
        .collect();
    assert_eq!(
        states,
        [
            ("ana@example.org", "active"),
            ("bob@example.org", "unsubscribed"),
            ("carla@example.org", "bounced"),
            ("dee@example.org", "complained"),
            ("eve@example.org", "active"),
            ("fay@example.org", "pending"),
            ("old@example.org", "unsubscribed"),
        ]
    );
    assert!(
        list.ends_with("2 active, 1 pending, 2 unsubscribed, 1 bounced, 1 complained\n"),
        "{list}"
    );
}

#[test]
fn export_writes_every_address_as_csv_with_its_consent() {
    let w = World::new();
    assert_eq!(
        run(
            &w,
            &["subscribers", "add", "dee@example.org", "--name", "Dee"]
        )
        .0,
        Some(0)
    );
    assert_eq!(
        run(&w, &["subscribers", "remove", "bob@example.org"]).0,
        Some(0)
    );
    assert_eq!(
        run(
            &w,
            &[
                "subscribers",
                "add",
                "fay@example.org",
                "--confirm",
                "--name",
                "=Fay"
            ]
        )
        .0,
        Some(0)
    );
    {
        let mut l = w.ledger();
        // Requested 2020-09-13T12:26:40Z, confirmed 100 s later.
        l.confirm_signup(
            &brief::ledger::Confirming {
                address: &addr("gil@example.org"),
                name: Some("Gil"),
                lang: None,
                forget_hash: "no hash",
                requested_at: brief::clock::Millis(1_600_000_000_000),
            },
            brief::clock::Millis(1_600_000_100_000),
        )
        .unwrap();
        l.suppress(&addr("old@example.org"), Reason::Bounced, "", 1)
            .unwrap();
    }

    let (code, csv, err) = run(&w, &["subscribers", "export"]);

    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "email,name,state,source,requested_at,confirmed_at,lang"
    );
    assert_eq!(lines[1], "ana@example.org,Ana García,active,file,,,");
    assert_eq!(lines[2], "bob@example.org,Bob,unsubscribed,file,,,");
    assert_eq!(lines[3], "carla@example.org,Carla,active,file,,,");
    // The database's readers in the order they were added: Gil's confirmation is dated 2020.
    assert_eq!(
        lines[4],
        "gil@example.org,Gil,active,form,2020-09-13T12:26:40.000Z,2020-09-13T12:28:20.000Z,"
    );
    assert_eq!(lines[5], "dee@example.org,Dee,active,staff,,,");
    // A name a spreadsheet would take for a formula is quoted away.
    assert!(
        lines[6].starts_with("fay@example.org,'=Fay,pending,form,20")
            && lines[6].ends_with("Z,,en"),
        "{}",
        lines[6]
    );
    assert_eq!(lines[7], "old@example.org,,bounced,,,,");
    assert_eq!(lines.len(), 8, "{csv}");
}

/// Every text value in every table of the ledger, as `table: value`.
fn ledger_texts(w: &World) -> Vec<String> {
    let conn = rusqlite::Connection::open(w.path("data/brief.db")).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut texts = Vec::new();
    for t in tables {
        let mut st = conn.prepare(&format!("SELECT * FROM {t}")).unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for i in 0..n {
                if let rusqlite::types::ValueRef::Text(b) = r.get_ref(i).unwrap() {
                    texts.push(format!("{t}: {}", String::from_utf8_lossy(b)));
                }
            }
        }
    }
    texts
}

/// Every `.eml` file under the outbox folder (sub-folders included) with its `To:` address,
/// lowercased, by path.
fn outbox_recipients(w: &World) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut folders = vec![w.path("outbox")];
    while let Some(folder) = folders.pop() {
        for e in std::fs::read_dir(&folder).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                folders.push(p);
            } else if p.extension().is_some_and(|e| e == "eml") {
                let raw = std::fs::read(&p).unwrap();
                let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
                let to = m.to().unwrap().first().unwrap().address().unwrap();
                out.push((p.clone(), to.to_lowercase()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn forget_erases_a_reader_and_keeps_the_address_suppressed() {
    let w = World::new();
    w.copy_issue("2021-08");
    // Ana got an issue, a test send and a confirmation link, and unsubscribed.
    let (code, _, err) = run(&w, &["send", "--issue", "2021-07", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        run(
            &w,
            &[
                "send",
                "--issue",
                "2021-07",
                "--test",
                "--to",
                "Ana@example.org"
            ]
        )
        .0,
        Some(0)
    );
    assert_eq!(
        run(&w, &["subscribers", "remove", "ana@example.org"]).0,
        Some(0)
    );
    assert_eq!(
        run(&w, &["subscribers", "add", "ana@example.org", "--confirm"]).0,
        Some(0)
    );
    let has_ana = |texts: &[String]| {
        texts
            .iter()
            .filter(|t| t.to_lowercase().contains("ana@example.org") || t.contains("Ana García"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(has_ana(&ledger_texts(&w)).len() >= 4);
    // Her issue, her test copy and her confirmation are in the outbox, beside Bob's and Carla's.
    let before = outbox_recipients(&w);
    let to_ana = before
        .iter()
        .filter(|(_, to)| to == "ana@example.org")
        .count();
    assert_eq!(to_ana, 3, "{before:?}");

    let (code, out, err) = run(&w, &["subscribers", "forget", "ANA@example.org"]);

    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("forgot ANA@example.org"), "{out}");
    assert!(
        out.contains("deleted 3 message files to ANA@example.org from the outbox"),
        "{out}"
    );
    let after = outbox_recipients(&w);
    let kept: Vec<_> = before
        .iter()
        .filter(|(_, to)| to != "ana@example.org")
        .cloned()
        .collect();
    assert_eq!(after, kept, "only Ana's files are gone");
    assert!(after.len() >= 2, "{after:?}");
    assert!(
        err.contains(&format!(
            "ANA@example.org is still in {}: brief cannot edit that file, so remove its line",
            w.path("subscribers.csv").display()
        )),
        "{err}"
    );
    let left = has_ana(&ledger_texts(&w));
    assert!(left.is_empty(), "{left:?}");
    let db = std::fs::read(w.path("data/brief.db")).unwrap();
    assert!(
        !db.windows(15)
            .any(|b| b.eq_ignore_ascii_case(b"ana@example.org")),
        "no copy left in the file's free space"
    );
    let l = w.ledger();
    let mut past = Vec::new();
    l.each_delivery(
        l.campaign("2021-07".parse().unwrap()).unwrap().unwrap().id,
        |d| {
            past.push((d.address, d.state));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(past.len(), 3, "the past campaign keeps its count: {past:?}");
    assert!(past.contains(&("forgotten".to_string(), brief::ledger::State::Sent)));

    // The list file still holds Ana: the next campaign does not mail her.
    let (code, out, err) = run(&w, &["send", "--issue", "2021-08", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("2 sent, 0 failed, 1 suppressed"), "{out}");
    let mailed: Vec<String> = w
        .outbox("2021-08")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(mailed.len(), 2);
    assert!(!mailed.iter().any(|m| m.contains("ana")), "{mailed:?}");
    let left = has_ana(&ledger_texts(&w));
    assert!(left.is_empty(), "{left:?}");

    // Nothing brings her back: add, import, a sign-up request.
    let (code, _, err) = run(&w, &["subscribers", "add", "ana@example.org"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("ana@example.org was forgotten at its owner's request"),
        "{err}"
    );
    let (code, _, err) = run(&w, &["subscribers", "add", "ana@example.org", "--confirm"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("was forgotten"), "{err}");
    w.write("again.csv", "email,name\nana@example.org,Ana\n");
    let (code, out, _) = run(&w, &["subscribers", "import", "again.csv"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("0 added, 0 already on the list, 1 suppressed"),
        "{out}"
    );
    let left = has_ana(&ledger_texts(&w));
    assert!(left.is_empty(), "{left:?}");
    let (_, list, err) = run(&w, &["subscribers", "list"]);
    assert!(list.contains("ana@example.org\tforgotten"), "{list}");
    assert!(err.contains("remove their lines"), "{err}");
}
