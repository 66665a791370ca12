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
        .starts_with("email,name,state,source,requested_at,confirmed_at,lang\n"));
    assert!(
        plain
            .body
            .contains("ana@example.org,Ana García,active,file,,,\n"),
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
        lang: None,
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
            std::slice::from_ref(&message),
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

/// A `multipart/form-data` body, built by hand as a browser sends it: `fields` as text parts,
/// then `file` (its name and bytes) as the `file` part; with its content type.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----briefTestBoundary7MA4YWxk";
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(bytes);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

fn upload(
    d: &Running,
    cookie: &str,
    content_type: &str,
    body: &[u8],
) -> crate::support::daemon::Reply {
    d.post(
        "/admin/subscribers/import",
        &[
            ("Content-Type", content_type),
            ("Cookie", cookie),
            ("Origin", "https://news.example.org"),
        ],
        body,
    )
}

/// The hidden fields of the preview's apply form.
fn apply_fields(page: &str) -> Vec<(String, String)> {
    let at = page
        .find("/admin/subscribers/import/apply")
        .unwrap_or_else(|| panic!("no apply form in {page}"));
    let form = &page[at..page[at..].find("</form>").unwrap() + at];
    form.split("<input ")
        .skip(1)
        .map(|i| {
            let attr = |a: &str| {
                let s = &i[i.find(&format!("{a}=\"")).unwrap() + a.len() + 2..];
                s[..s.find('"').unwrap()].replace("&amp;", "&")
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

#[test]
fn staff_preview_then_apply_a_csv_import_under_the_cli_imports_policy() {
    let w = World::new();
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    for (a, n) in [("old@example.org", "Old"), ("gone@example.org", "Gone")] {
        w.brief()
            .args(["subscribers", "add", a, "--name", n])
            .assert()
            .success();
    }
    w.brief()
        .args(["subscribers", "remove", "gone@example.org"])
        .assert()
        .success();
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let get = |path: &str| get_with(&d, path, &[("Cookie", &cookie)]);
    let csrf = csrf_of(&get("/admin/").body);
    assert!(get("/admin/subscribers/")
        .body
        .contains("/admin/subscribers/import\""));
    let form = get("/admin/subscribers/import");
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    assert!(form.body.contains("accept=\".csv,text/csv\""));

    let csv = "email,name\r\nnew@example.org,Nia New\r\nold@example.org,Renamed\r\nGONE@example.org,Gone\r\nnot-an-address,Bad\r\nlate@example.org,Late\r\n";
    let fields = [
        ("csrf", csrf.as_str()),
        ("source", "sign-up sheet at the fair"),
    ];
    let (t, body) = multipart(&fields, Some(("fair.csv", csv.as_bytes())));
    let preview = upload(&d, &cookie, &t, &body);
    assert_eq!(preview.status, 200, "{}", preview.body);
    let p = &preview.body;
    assert!(p.contains("Nothing is written yet"), "{p}");
    assert!(p.contains("New readers to add: 2"), "{p}");
    assert!(p.contains("Add 2 new readers"), "{p}");
    assert!(p.contains("(names included): 1"), "{p}");
    assert!(
        p.contains("unsubscribed: only the reader can join again"),
        "{p}"
    );
    // The malformed line, named by its line as the CLI names it.
    assert!(
        p.contains("fair.csv:5: `not-an-address` is not a valid email address"),
        "{p}"
    );
    // Nothing written yet.
    let key = |a: &str| brief::address::AddressKey::from_text(a);
    assert!(!w
        .ledger()
        .is_stored_subscriber(&key("new@example.org"))
        .unwrap());

    // Between preview and apply, late@ unsubscribes (as a sign-up and its unsubscribe would):
    // the apply decides again and refuses her.
    w.ledger()
        .suppress(
            &"late@example.org".parse().unwrap(),
            brief::ledger::Reason::Unsubscribed,
            "one-click unsubscribe",
            1,
        )
        .unwrap();
    let pairs = apply_fields(p);
    let encoded = |pairs: &[(String, String)]| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    };
    // A different file under the preview's token is refused, and writes nothing.
    let mut forged = pairs.clone();
    for (k, v) in forged.iter_mut() {
        if k == "csv" {
            use base64::Engine;
            *v = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode("email\nmallory@example.org\n");
        }
    }
    let refused = post_form(
        &d,
        "/admin/subscribers/import/apply",
        &cookie,
        &encoded(&forged),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("not the file that was previewed"));
    // Without the CSRF token, nothing either.
    let no_csrf: Vec<_> = pairs.iter().filter(|(k, _)| k != "csrf").cloned().collect();
    let forbidden = post_form(
        &d,
        "/admin/subscribers/import/apply",
        &cookie,
        &encoded(&no_csrf),
    );
    assert_eq!(forbidden.status, 403);

    let done = post_form(
        &d,
        "/admin/subscribers/import/apply",
        &cookie,
        &encoded(&pairs),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("New readers added: 1"), "{}", done.body);
    let l = w.ledger();
    assert!(l.is_stored_subscriber(&key("new@example.org")).unwrap());
    assert!(!l.is_stored_subscriber(&key("mallory@example.org")).unwrap());
    assert!(!l.is_stored_subscriber(&key("late@example.org")).unwrap());
    assert!(l.suppression(&key("gone@example.org")).unwrap().is_some());
    let consent = l.consent(&key("new@example.org")).unwrap().unwrap();
    assert_eq!(consent.source, "staff: sign-up sheet at the fair");
    // The name of a reader on the list stays as it was, as with the CLI.
    let export = get("/admin/subscribers/export.csv").body;
    assert!(export.contains("old@example.org,Old,"), "{export}");

    // The activity log: the file and the counts, never an address.
    let log = get("/admin/activity/").body;
    assert!(log.contains("fair.csv"), "{log}");
    assert!(
        log.contains("1 added, 1 already on the list, 2 suppressed, 0 pending, 1 bad rows"),
        "{log}"
    );
    for a in ["new@", "late@", "gone@", "old@", "not-an-address"] {
        assert!(!log.contains(a), "{a} in {log}");
        assert!(!d.stderr().contains(a), "{a} in the log: {}", d.stderr());
    }
}

#[test]
fn the_import_refuses_a_forged_or_missing_csrf_a_bad_form_and_a_file_too_large() {
    let w = World::new();
    w.add_server_keys(&format!("staff = [\"{EDITOR}\"]"));
    let d = Running::start(&w, &[]);
    let cookie = sign_in(&d, &w, EDITOR, 1);
    let csrf = csrf_of(&get_with(&d, "/admin/", &[("Cookie", &cookie)]).body);
    let csv: &[u8] = b"email\nzoe@example.org\n";
    let source = ("source", "fair");
    for fields in [vec![source], vec![("csrf", "forged"), source]] {
        let (t, body) = multipart(&fields, Some(("a.csv", csv)));
        assert_eq!(upload(&d, &cookie, &t, &body).status, 403);
    }
    // From another site, even with the token.
    let (t, body) = multipart(&[("csrf", &csrf), source], Some(("a.csv", csv)));
    let other = d.post(
        "/admin/subscribers/import",
        &[
            ("Content-Type", &t),
            ("Cookie", &cookie),
            ("Origin", "https://evil.example"),
        ],
        &body,
    );
    assert_eq!(other.status, 403);
    // Signed out: to the sign-in page.
    let anonymous = d.post("/admin/subscribers/import", &[("Content-Type", &t)], &body);
    assert_eq!(anonymous.status, 303);
    // Not a well-formed form: 400, saying why.
    let cut = upload(&d, &cookie, &t, &body[..body.len() - 20]);
    assert_eq!(cut.status, 400, "{}", cut.body);
    assert!(
        cut.body.contains("before its closing boundary"),
        "{}",
        cut.body
    );
    let not_multipart = upload(&d, &cookie, "application/x-www-form-urlencoded", b"csrf=x");
    assert_eq!(not_multipart.status, 400);
    // No consent source: asked for.
    let (t, body) = multipart(&[("csrf", &csrf)], Some(("a.csv", csv)));
    let unsourced = upload(&d, &cookie, &t, &body);
    assert_eq!(unsourced.status, 422, "{}", unsourced.body);
    assert!(unsourced.body.contains("consent source"));
    // No email column: the CLI's message.
    let (t, body) = multipart(
        &[("csrf", &csrf), source],
        Some(("a.csv", b"mail,name\nx,y\n")),
    );
    let headless = upload(&d, &cookie, &t, &body);
    assert_eq!(headless.status, 422, "{}", headless.body);
    assert!(
        headless.body.contains("no `email` column"),
        "{}",
        headless.body
    );
    // Too large: a file over 2 MiB in a body the route still takes, then a body over the
    // route's own limit.
    let mut big = b"email\n".to_vec();
    while big.len() <= 2 * 1024 * 1024 {
        big.extend_from_slice(b"reader@example.org\n");
    }
    let (t, body) = multipart(&[("csrf", &csrf), source], Some(("big.csv", &big)));
    let too_big = upload(&d, &cookie, &t, &body);
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert!(
        too_big.body.contains("larger than 2 MiB"),
        "{}",
        too_big.body
    );
    big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    let (t, body) = multipart(&[("csrf", &csrf), source], Some(("big.csv", &big)));
    assert_eq!(upload(&d, &cookie, &t, &body).status, 413);
    // The rest of the site keeps its 4 KiB limit, the console's other forms included.
    let long = format!("csrf={csrf}&address={}", "a".repeat(5000));
    assert_eq!(
        post_form(&d, "/admin/subscribers/add", &cookie, &long).status,
        413
    );
    assert!(!w
        .ledger()
        .is_stored_subscriber(&brief::address::AddressKey::from_text("zoe@example.org"))
        .unwrap());
}

#[test]
fn an_address_waiting_for_its_own_confirmation_is_not_imported() {
    let w = World::new();
    w.brief()
        .args(["subscribers", "add", "pia@example.org", "--confirm"])
        .assert()
        .success();
    w.write(
        "in.csv",
        "email,name\npia@example.org,Pia\nqed@example.org,Q\n",
    );
    let out = w
        .brief()
        .args(["subscribers", "import", "in.csv"])
        .output()
        .unwrap();
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(
            "1 added, 0 already on the list, 0 suppressed (not re-subscribed), 1 pending"
        ),
        "{said}"
    );
    let key = brief::address::AddressKey::from_text;
    assert!(!w
        .ledger()
        .is_stored_subscriber(&key("pia@example.org"))
        .unwrap());
    assert!(w
        .ledger()
        .is_stored_subscriber(&key("qed@example.org"))
        .unwrap());
}
