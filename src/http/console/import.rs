//! The console's import of a CSV file (`/admin/subscribers/import`): staff upload an
//! `email,name,lang` file with the consent source, see what would change (new readers, readers
//! already on the list, addresses refused because suppressed, forgotten or pending, malformed
//! lines with their numbers), then apply it. Parsing, policy and messages are those of
//! `brief subscribers import` ([`crate::audience::import`]).
//!
//! Nothing is written before the apply. The preview page re-posts the file as base64 beside a
//! token signed with the app's key ([`Purpose::Import`]: the file's SHA-256, its name, the
//! consent source and the staff member, for an hour), so the apply runs on the very text that
//! was previewed, decided again against the ledger as it is then: a reader who unsubscribed
//! meanwhile is still refused. The routes take [`IMPORT_BODY_LIMIT`], not the site's 4 KiB.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use maud::{html, Markup};
use sha2::{Digest, Sha256};

use super::super::admin::{console_page, Section, Staff, StaffForm, StaffUpload};
use super::super::error::PageError;
use super::super::site::{Shared, Site, IMPORT_BODY_LIMIT, IMPORT_FILE_LIMIT};
use super::super::ui::url;
use super::parts::{cell, field, heading, link, paragraph, subheading, table};
use crate::audience::{ImportMode, ImportPlan, ImportRows, Refusal};
use crate::ledger::Action;
use crate::token::Purpose;

/// How long a preview may be applied.
const PREVIEW_TTL_S: i64 = 3600;

/// The most rows of each kind a page lists (the counts are whole).
const SHOWN: usize = 200;

/// The longest file name or consent source kept.
const MAX_TEXT: usize = 200;

fn cut(text: &str) -> String {
    crate::issue::one_line(text.trim())
        .chars()
        .take(MAX_TEXT)
        .collect()
}

fn trail(d: &Site, here: &str) -> Markup {
    html! {
        p.console-note {
            (link(d, "admin/", "Dashboard")) " / " (link(d, "admin/subscribers/", "Subscribers")) " / " (here)
        }
    }
}

fn upload_form(d: &Site, staff: &Staff, source: &str, error: Option<&str>) -> Markup {
    html! {
        (trail(d, "import"))
        (heading(d, "Import readers from a CSV file"))
        @if let Some(e) = error {
            p.form-error role="alert" { (e) }
        }
        (paragraph(d, "A CSV file with a header line naming an email column and, if you like, a name column and a lang column (each reader's language, like en or es; empty for the default), as brief subscribers import reads it, at most 2 MiB. You see what would change before anything is written."))
        (paragraph(d, "Suppressed, forgotten and pending addresses are never added: only the reader can join again. Readers already on the list are left as they are."))
        form method="post" enctype="multipart/form-data" action=(url(d, "admin/subscribers/import").as_str()) {
            (staff.csrf_field(d))
            label.field-label for="brief-import-file" { "The CSV file" }
            input.field id="brief-import-file" name="file" type="file" accept=".csv,text/csv" required;
            label.field-label for="brief-import-source" { "How these readers agreed (the consent source)" }
            input.field id="brief-import-source" name="source" type="text" required autocomplete="off" value=(source);
            p { button.page-button type="submit" { "Preview the import" } }
        }
    }
}

/// `GET /admin/subscribers/import`: the upload form.
pub(super) async fn import_page(State(d): Shared, staff: Staff) -> Result<Response, PageError> {
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Subscribers),
        "Import readers",
        upload_form(&d, &staff, "", None),
    ))
}

fn refuse(d: &Site, staff: &Staff, status: StatusCode, source: &str, why: &str) -> Response {
    let mut res = console_page(
        d,
        staff,
        Some(Section::Subscribers),
        "Import readers",
        upload_form(d, staff, source, Some(why)),
    );
    *res.status_mut() = status;
    res
}

fn digest(csv: &[u8]) -> String {
    crate::token::hex(&Sha256::digest(csv))
}

/// The file's name as the activity log names it: without any address in it.
fn logged_name(name: &str) -> String {
    if name.is_empty() {
        "a CSV file".to_string()
    } else {
        crate::address::redacted(name).into_owned()
    }
}

/// `POST /admin/subscribers/import` (a multipart upload): the preview, and the form that
/// applies it.
pub(super) async fn preview(State(d): Shared, form: StaffUpload) -> Result<Response, PageError> {
    let staff = &form.staff;
    let text = |name: &str| {
        form.parts
            .iter()
            .find(|p| p.name == name && p.file_name.is_none())
            .map(|p| cut(&String::from_utf8_lossy(&p.bytes)))
            .unwrap_or_default()
    };
    let source = text("source");
    let Some(file) = form
        .parts
        .iter()
        .find(|p| p.name == "file" && p.file_name.is_some())
    else {
        return Ok(refuse(
            &d,
            staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            &source,
            "Choose the CSV file to import.",
        ));
    };
    let name = file
        .file_name
        .as_deref()
        .map(|n| cut(n.rsplit(['/', '\\']).next().unwrap_or(n)))
        .unwrap_or_default();
    if file.bytes.len() > IMPORT_FILE_LIMIT {
        return Ok(refuse(
            &d,
            staff,
            StatusCode::PAYLOAD_TOO_LARGE,
            &source,
            "The file is larger than 2 MiB: split it, and import each part.",
        ));
    }
    if file.bytes.is_empty() {
        return Ok(refuse(
            &d,
            staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            &source,
            "The file is empty.",
        ));
    }
    if source.is_empty() {
        return Ok(refuse(
            &d,
            staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            &source,
            "Say how these readers agreed (the consent source).",
        ));
    }
    let csv = file.bytes.clone();
    let plan = match plan(&d, &name, csv.clone(), None).await? {
        Ok(p) => p,
        Err(why) => {
            return Ok(refuse(
                &d,
                staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                &source,
                &why,
            ))
        }
    };
    let expires = d.app.clock.now_ms() / 1000 + PREVIEW_TTL_S;
    let token = d.key.sign(
        Purpose::Import,
        &[&digest(&csv), &name, &source, staff.address.as_ref()],
        expires,
    );
    let counts = plan.counts();
    let body = html! {
        (trail(&d, "import"))
        (heading(&d, "What this import would change"))
        p.console-note role="status" {
            "Nothing is written yet. File: " strong { (if name.is_empty() { "(no name)" } else { &name }) }
            "; consent source: " strong { (source) } "."
        }
        (plan_body(&d, &plan, false))
        @if counts.added > 0 {
            form method="post" action=(url(&d, "admin/subscribers/import/apply").as_str()) {
                (staff.csrf_field(&d))
                input type="hidden" name="csv" value=(URL_SAFE_NO_PAD.encode(&csv));
                input type="hidden" name="name" value=(name);
                input type="hidden" name="source" value=(source);
                input type="hidden" name="token" value=(token);
                p { button.page-button type="submit" { "Add " (counts.added) " new reader" @if counts.added != 1 { "s" } } }
            }
        } @else {
            (paragraph(&d, "There is no new reader to add."))
        }
        p.paragraph { (link(&d, "admin/subscribers/import", "Cancel: import another file")) }
    };
    Ok(console_page(
        &d,
        staff,
        Some(Section::Subscribers),
        "Import preview",
        body,
    ))
}

/// Reads `csv` and runs the import policy on the shared connection: a preview, or, with
/// `apply` (the consent source), the import itself. `Ok(Err(why))` when the file as a whole
/// cannot be read.
async fn plan(
    d: &Site,
    name: &str,
    csv: Vec<u8>,
    apply: Option<String>,
) -> anyhow::Result<Result<ImportPlan, String>> {
    let path = std::path::PathBuf::from(if name.is_empty() { "the file" } else { name });
    let rows = match tokio::task::spawn_blocking(move || ImportRows::read(&path, &csv[..]))
        .await
        .map_err(|e| anyhow::anyhow!("the import's reading failed: {e}"))?
    {
        Ok(r) => r,
        Err(e) => return Ok(Err(format!("That file cannot be imported: {e:#}."))),
    };
    let app = d.app.clone();
    let plan = d
        .ledger
        .with(move |l| {
            let mode = match &apply {
                Some(source) => ImportMode::Apply {
                    source: Some(source),
                },
                None => ImportMode::Preview,
            };
            crate::audience::import(&app, l, rows, mode)
        })
        .await?;
    Ok(Ok(plan))
}

fn plan_body(d: &Site, plan: &ImportPlan, done: bool) -> Markup {
    let n = plan.counts();
    // Each new reader's language, when there is more than one to tell apart.
    let several = d.app.config.newsletter.languages.several();
    let new_columns: &[&str] = if several {
        &["address", "name", "language"]
    } else {
        &["address", "name"]
    };
    let more = |total: usize| {
        html! { @if total > SHOWN { (paragraph(d, &format!("And {} more.", total - SHOWN))) } }
    };
    html! {
        ul.list {
            li { @if done { "New readers added: " } @else { "New readers to add: " } (n.added) }
            li { "Already on the list, left as they are (names included): " (n.known) }
            li { "Refused (suppressed, forgotten, or waiting for their own confirmation): " (n.suppressed + n.pending) }
            li { "Malformed lines, skipped: " (n.bad) }
        }
        @if !plan.bad.is_empty() {
            (subheading(d, "Malformed lines"))
            ul.list {
                @for p in plan.bad.iter().take(SHOWN) {
                    li.reply { code.code { (p.to_string()) } }
                }
            }
            (more(plan.bad.len()))
        }
        @if !plan.added.is_empty() {
            (subheading(d, if done { "Added" } else { "New readers" }))
            (table(d, if done { "Added" } else { "New readers" }, new_columns, html! {
                @for s in plan.added.iter().take(SHOWN) {
                    tr {
                        (cell(d, s.address.to_string())) (cell(d, s.name.as_deref().unwrap_or("")))
                        @if several { (cell(d, super::subscribers::lang_words(d, s.lang.as_ref()))) }
                    }
                }
            }))
            (more(plan.added.len()))
        }
        @if !plan.refused.is_empty() {
            (subheading(d, "Refused"))
            (table(d, "Refused", &["address", "why"], html! {
                @for (s, r) in plan.refused.iter().take(SHOWN) {
                    tr { (cell(d, s.address.to_string())) (cell(d, refusal_words(*r))) }
                }
            }))
            (more(plan.refused.len()))
        }
        @if !plan.known.is_empty() {
            (subheading(d, "Already on the list"))
            (table(d, "Already on the list", &["address", "name in the file"], html! {
                @for s in plan.known.iter().take(SHOWN) {
                    tr { (cell(d, s.address.to_string())) (cell(d, s.name.as_deref().unwrap_or(""))) }
                }
            }))
            (more(plan.known.len()))
        }
    }
}

fn refusal_words(r: Refusal) -> String {
    match r {
        Refusal::Suppressed(reason) => {
            format!("{}: only the reader can join again", reason.as_str())
        }
        Refusal::Forgotten => "forgotten at its owner's request".to_string(),
        Refusal::Pending => "pending: waiting for the reader's own confirmation".to_string(),
    }
}

/// `POST /admin/subscribers/import/apply`: checks the token against the re-posted file, then
/// imports it as `brief subscribers import` does, against the ledger as it is now, and says
/// what was done.
pub(super) async fn apply(
    State(d): Shared,
    form: StaffForm<IMPORT_BODY_LIMIT>,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let get = |k: &str| field(&form, k).unwrap_or("");
    let (name, source) = (get("name").to_string(), get("source").to_string());
    let csv = URL_SAFE_NO_PAD.decode(get("csv")).unwrap_or_default();
    let now_s = d.app.clock.now_ms() / 1000;
    let opened = d.key.open(Purpose::Import, get("token"), now_s);
    let genuine = opened.as_ref().is_ok_and(|f| {
        f.len() == 4
            && f[0] == digest(&csv)
            && f[1] == name
            && f[2] == source
            && f[3] == staff.address.as_ref() as &str
    });
    if !genuine || source.is_empty() {
        let (status, why) = match opened {
            Err(crate::token::TokenError::Expired) => (
                StatusCode::GONE,
                "That preview is more than an hour old: nothing was imported. Upload the file again.",
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                "That is not the file that was previewed: nothing was imported. Upload the file again.",
            ),
        };
        tracing::warn!(staff = %d.key.tag(staff.address.as_ref()), "import refused: {why}");
        return Ok(refuse(&d, staff, status, &source, why));
    }
    let done = match plan(&d, &name, csv, Some(source.clone())).await? {
        Ok(p) => p,
        Err(why) => {
            return Ok(refuse(
                &d,
                staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                &source,
                &why,
            ))
        }
    };
    let n = done.counts();
    let counts = format!(
        "{} added, {} already on the list, {} suppressed, {} pending, {} bad rows",
        n.added, n.known, n.suppressed, n.pending, n.bad
    );
    tracing::info!(staff = %d.key.tag(staff.address.as_ref()), added = n.added, known = n.known, suppressed = n.suppressed, pending = n.pending, bad = n.bad, "readers imported from the console");
    staff
        .record(&d, Action::Import, logged_name(&name), counts)
        .await;
    let body = html! {
        (trail(&d, "import"))
        (heading(&d, "Imported"))
        p.console-ok role="status" { "The import is done. Consent source: " strong { (source) } "." }
        (plan_body(&d, &done, true))
        p.paragraph { (link(&d, "admin/subscribers/", "Back to the subscribers")) }
    };
    Ok(console_page(
        &d,
        staff,
        Some(Section::Subscribers),
        "Imported",
        body,
    ))
}
