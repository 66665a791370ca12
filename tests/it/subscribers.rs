//! The console's Subscribers section against `brief run` over loopback HTTP: search, a reader's
//! page by its numeric id, and the actions (add, unsubscribe, forget), each CSRF-checked and
//! confirmed before it acts.

use crate::admin::{csrf_of, get_with, post_form, sign_in};
use crate::support::daemon::Running;
use crate::support::World;

const EDITOR: &str = "editor@example.org";

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

#[test]
fn staff_find_add_unsubscribe_and_forget_a_reader_from_the_console() {
    let w = World::new();
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    w.brief()
        .args([
            "subscribers",
            "add",
            "Bea@Example.org",
            "--name",
            "Bea Núñez",
        ])
        .assert()
        .success();
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);
    let csrf = csrf_of(&get("/admin/").body);
    let post = |path: &str, pairs: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        post_form(&d, path, &cookie, &form(&all))
    };

    // Search by part of the address or name, in any case.
    let list = get("/admin/subscribers/?q=N%C3%BA%C3%B1ez");
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("Bea@Example.org"), "{}", list.body);
    assert!(get("/admin/subscribers/?q=BEA@")
        .body
        .contains("Bea@Example.org"));
    let none = get("/admin/subscribers/?q=bea&state=unsubscribed");
    assert!(none.body.contains("No reader matches."), "{}", none.body);

    // Adding needs the consent source, then a confirmation; nothing is added before it.
    let dora = [
        ("address", "dora@example.org"),
        ("name", "Dora"),
        ("source", "paper form at the fair"),
    ];
    let refused = post("/admin/subscribers/add", &dora[..2]);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("consent source"), "{}", refused.body);
    let asked = post("/admin/subscribers/add", &dora);
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("Add this reader?"), "{}", asked.body);
    assert!(get("/admin/subscribers/?q=dora")
        .body
        .contains("No reader matches."));
    // Without the session's CSRF token, nothing.
    let forged = post_form(
        &d,
        "/admin/subscribers/add",
        &cookie,
        &form(&[dora[0], dora[1], dora[2], ("confirmed", "yes")]),
    );
    assert_eq!(forged.status, 403);
    let mut confirmed = dora.to_vec();
    confirmed.push(("confirmed", "yes"));
    let added = post("/admin/subscribers/add", &confirmed);
    assert_eq!(added.status, 303, "{}", added.body);
    let location = added.header("location").unwrap().to_string();
    let path = location.trim_start_matches("https://news.example.org");
    let id: i64 = path
        .strip_prefix("/admin/subscribers/")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a reader's page by number, not {location}"));
    assert!(!location.contains("dora"), "{location}");
    let page = get(path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("staff: paper form at the fair"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-reader-state=\"active\""),
        "{}",
        page.body
    );
    let listed = get("/admin/subscribers/?q=DORA&state=active");
    assert!(
        listed.body.contains(&format!("/admin/subscribers/{id}\"")),
        "{}",
        listed.body
    );

    // Unsubscribe: asked first, then done; the reader page says so and adding is refused.
    let ask = post(&format!("{path}/unsubscribe"), &[]);
    assert!(
        ask.body.contains("Unsubscribe this reader?"),
        "{}",
        ask.body
    );
    assert!(w
        .ledger()
        .suppression(&brief::address::AddressKey::from_text("dora@example.org"))
        .unwrap()
        .is_none());
    let done = post(&format!("{path}/unsubscribe"), &[("confirmed", "yes")]);
    assert_eq!(done.status, 303, "{}", done.body);
    let page = get(path);
    assert!(
        page.body.contains("data-reader-state=\"unsubscribed\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("removed by staff in the console"));
    let again = post("/admin/subscribers/add", &confirmed);
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(again.body.contains("only the reader can join again"));

    // Forget: the address must be typed; a wrong one erases nothing.
    let wrong = post(
        &format!("{path}/forget"),
        &[("address", "dora@example.com")],
    );
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert_eq!(get(path).status, 200);
    let gone = post(
        &format!("{path}/forget"),
        &[("address", "DORA@example.org")],
    );
    assert_eq!(gone.status, 303, "{}", gone.body);
    assert_eq!(get(path).status, 404);
    let list = get("/admin/subscribers/?forgotten=1");
    assert!(
        list.body.contains("The reader was forgotten"),
        "{}",
        list.body
    );
    assert!(!list.body.contains("dora@"), "{}", list.body);
    let never = post("/admin/subscribers/add", &confirmed);
    assert_eq!(never.status, 422, "{}", never.body);
    assert!(never.body.contains("forgotten"), "{}", never.body);
    // Logs name readers by keyed tags only.
    assert!(!d.stderr().contains("dora@example.org"), "{}", d.stderr());
    // The activity log says what staff did to the reader, by number, and only that she was
    // forgotten once she was.
    let log = get("/admin/activity/");
    assert_eq!(log.status, 200, "{}", log.body);
    for said in ["added", "unsubscribed", "forgot"] {
        assert!(
            log.body
                .contains(&format!("<td class=\"console-td\">{said}</td>")),
            "{said}: {}",
            log.body
        );
    }
    assert!(log.body.contains("a reader"), "{}", log.body);
    assert!(!log.body.to_lowercase().contains("dora@"), "{}", log.body);
}

#[test]
fn the_list_files_readers_show_after_a_send_with_their_deliveries_and_both_csvs_download() {
    let w = World::new();
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    // Before any send, the ledger knows none of the file's readers.
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);
    assert!(get("/admin/subscribers/?q=ana")
        .body
        .contains("No reader matches."));
    crate::http::send(&w, "2021-07");

    let list = get("/admin/subscribers/?state=file");
    assert!(
        list.body.contains("Readers 1\u{2013}3 of 3"),
        "{}",
        list.body
    );
    let hrefs: Vec<&str> = list
        .body
        .split("href=\"")
        .skip(1)
        .map(|h| &h[..h.find('"').unwrap()])
        .collect();
    assert!(hrefs.iter().any(|h| h.contains("/admin/subscribers/")));
    assert!(
        hrefs.iter().all(|h| !h.contains('@') && !h.contains("%40")),
        "no address in a URL: {hrefs:?}"
    );
    let link = list.body[..list.body.find(">ana@example.org<").unwrap()]
        .rsplit("href=\"")
        .next()
        .unwrap()
        .trim_end_matches('"')
        .trim_start_matches("https://news.example.org")
        .to_string();
    let page = get(&link);
    assert_eq!(page.status, 200, "{link}: {}", page.body);
    assert!(page.body.contains("Ana García"), "{}", page.body);
    assert!(
        page.body.contains("/admin/campaigns/2021-07"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">sent<"), "{}", page.body);

    // The export: the columns of `brief subscribers export`, plain and for Excel.
    let export = w.brief().args(["subscribers", "export"]).output().unwrap();
    let cli = String::from_utf8(export.stdout).unwrap();
    let plain = get("/admin/subscribers/export.csv");
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert!(plain
        .body
        .starts_with("email,name,state,source,requested_at,confirmed_at\n"));
    assert!(
        plain
            .body
            .contains("ana@example.org,Ana García,active,file,,\n"),
        "{}",
        plain.body
    );
    assert_eq!(plain.body, cli);
    let excel = get("/admin/subscribers/export.csv?excel=1");
    assert_eq!(excel.body, format!("\u{feff}{cli}"));
    assert!(excel
        .header("content-disposition")
        .unwrap()
        .contains("brief-subscribers-excel.csv"));
    // And the campaign's report, beside its plain CSV.
    let report = get("/admin/campaigns/2021-07.csv");
    let report_excel = get("/admin/campaigns/2021-07.csv?excel=1");
    assert!(!report.body.starts_with('\u{feff}'));
    assert!(report.body.contains("Ana García"), "{}", report.body);
    assert_eq!(report_excel.body, format!("\u{feff}{}", report.body));
    assert!(get("/admin/campaigns/2021-07")
        .body
        .contains("/admin/campaigns/2021-07.csv?excel=1"));
}

#[test]
fn forgetting_while_a_campaign_is_being_sent_erases_nothing_and_says_to_wait() {
    let w = World::new();
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    w.brief()
        .args(["subscribers", "add", "dee@example.org"])
        .assert()
        .success();
    let mut ledger = w.ledger();
    let message = brief::ledger::CampaignMessage {
        revision: 1,
        subject: "s".into(),
        template: String::new(),
        web: String::new(),
        folder_hash: None,
        unsent: 0,
        at: 1,
    };
    let (campaign, _) = ledger
        .create_campaign(
            "2099-01".parse().unwrap(),
            &message,
            brief::ledger::Trigger::Cli,
            brief::clock::Millis(1),
            None,
            |_| Ok(()),
        )
        .unwrap();
    // Another process is sending it: its send lock is held.
    let lock = ledger.lock_campaign(&campaign).unwrap();
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);
    let csrf = csrf_of(&get("/admin/").body);
    let id = ledger
        .reader_id(&brief::address::AddressKey::from_text("dee@example.org"))
        .unwrap()
        .unwrap();
    let path = format!("/admin/subscribers/{id}/forget");
    let body = form(&[("csrf", &csrf), ("address", "dee@example.org")]);
    let refused = post_form(&d, &path, &cookie, &body);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("Issue 2099-01 is being sent"),
        "{}",
        refused.body
    );
    assert_eq!(get(&format!("/admin/subscribers/{id}")).status, 200);
    // Once it is sent, the forget goes through.
    assert!(ledger.finish_if_done(campaign.id, 2).unwrap());
    drop(lock);
    let done = post_form(&d, &path, &cookie, &body);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(get(&format!("/admin/subscribers/{id}")).status, 404);
}
