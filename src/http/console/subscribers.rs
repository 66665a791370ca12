//! The console's Subscribers section: the readers, searched by part of the address or name,
//! filtered by state and paged (`/admin/subscribers/`); a reader's page (`/admin/subscribers/{id}`,
//! `{id}` the ledger's [`ReaderId`], never the address) with the consent, the language, every
//! delivery and its reply, every bounce and the unsubscribe; and the actions, each a
//! CSRF-checked POST that asks first and acts on the confirmed second POST: add a reader,
//! unsubscribe, re-send the confirmation, forget. Changing a reader's language (offered when
//! more than one is configured) acts at once: it is undone as easily.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::super::admin::{console_page, Section, Staff, StaffForm};
use super::super::error::PageError;
use super::super::site::{Shared, Site};
use super::super::ui::{see_other, url};
use super::parts::{
    cell, field, heading, link, local_ms, message, not_found, paragraph, preformatted, subheading,
    table,
};
use crate::address::{parse_address, AddressKey};
use crate::lang::Lang;
use crate::ledger::{
    Action, ReaderId, ReaderPage, ReaderRecord, ReaderSearch, ReaderState, Reason,
};

/// Readers on a page of the list.
pub const PAGE_SIZE: u32 = 50;

/// The longest search text, name or consent source kept (longer is cut).
const MAX_TEXT: usize = 200;

/// The list's query: `q` (part of an address or name), `state`, `page` (from 1).
#[derive(serde::Deserialize, Default)]
pub(super) struct Find {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: String,
    /// Set after a forget, to say that it was done (never which address).
    #[serde(default)]
    forgotten: String,
}

fn state_of(word: &str) -> Option<ReaderState> {
    ReaderState::ALL.into_iter().find(|s| s.as_str() == word)
}

/// What a state means, as staff read it.
fn state_words(s: ReaderState) -> &'static str {
    match s {
        ReaderState::Active => "active",
        ReaderState::Pending => "waiting for the reader's confirmation",
        ReaderState::Unsubscribed => "unsubscribed",
        ReaderState::Bounced => "bounced",
        ReaderState::Complained => "complained (marked a message as spam)",
        ReaderState::File => "in the list file when last mailed",
    }
}

fn cut(text: &str) -> String {
    crate::issue::one_line(text.trim())
        .chars()
        .take(MAX_TEXT)
        .collect()
}

fn reader_path(id: ReaderId) -> String {
    format!("admin/subscribers/{id}")
}

/// The list's URL for `q`, `state` and `page`.
fn list_path(q: &str, state: Option<ReaderState>, page: u64) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        s.append_pair("q", q);
    }
    if let Some(st) = state {
        s.append_pair("state", st.as_str());
    }
    if page > 1 {
        s.append_pair("page", &page.to_string());
    }
    let query = s.finish();
    if query.is_empty() {
        "admin/subscribers/".to_string()
    } else {
        format!("admin/subscribers/?{query}")
    }
}

fn trail(d: &Site, here: &str) -> Markup {
    html! {
        p.console-note {
            (link(d, "admin/", "Dashboard")) " / " (link(d, "admin/subscribers/", "Subscribers")) " / " (here)
        }
    }
}

/// `GET /admin/subscribers/`: the search form and a page of readers.
pub(super) async fn list(
    State(d): Shared,
    staff: Staff,
    Query(find): Query<Find>,
) -> Result<Response, PageError> {
    let q = cut(&find.q);
    let state = state_of(&find.state);
    let page = find.page.parse::<u64>().unwrap_or(1).clamp(1, 1_000_000);
    let search = ReaderSearch {
        text: q.clone(),
        state,
        offset: (page - 1) * u64::from(PAGE_SIZE),
        limit: PAGE_SIZE,
    };
    let now = d.app.clock.now_ms();
    let found = d
        .ledger
        .with(move |l| l.search_readers(&search, now))
        .await?;
    let body = list_body(&d, &q, state, page, &found, !find.forgotten.is_empty());
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Subscribers),
        "Subscribers",
        body,
    ))
}

fn list_body(
    d: &Site,
    q: &str,
    state: Option<ReaderState>,
    page: u64,
    found: &ReaderPage,
    forgotten: bool,
) -> Markup {
    let pages = found.total.div_ceil(u64::from(PAGE_SIZE)).max(1);
    let first = (page - 1) * u64::from(PAGE_SIZE);
    html! {
        p.console-note { (link(d, "admin/", "Dashboard")) " / subscribers" }
        (heading(d, "Subscribers"))
        @if forgotten {
            p.console-ok role="status" { "The reader was forgotten: the ledger keeps only a keyed hash of the address." }
        }
        (paragraph(d, "Every address the ledger holds: readers added here or with brief subscribers add or import, readers who signed up, suppressed addresses, and the list file's readers once an issue was sent to them."))
        form.console-search method="get" action=(url(d, "admin/subscribers/").as_str()) {
            label.field-label for="brief-q" { "Part of the address or name" }
            input.field id="brief-q" name="q" type="search" value=(q) autocomplete="off";
            label.field-label for="brief-reader-state" { "State" }
            select id="brief-reader-state" name="state" {
                option value="" selected[state.is_none()] { "any state" }
                @for s in ReaderState::ALL {
                    option value=(s.as_str()) selected[state == Some(s)] { (state_words(s)) }
                }
            }
            p { button.page-button type="submit" { "Search" } }
        }
        p.paragraph {
            (link(d, "admin/subscribers/add", "Add a reader"))
            " or "
            (link(d, "admin/subscribers/import", "import readers from a CSV file"))
        }
        p.paragraph {
            "Download every address with its state: "
            (link(d, "admin/subscribers/export.csv", "CSV"))
            " or "
            (link(d, "admin/subscribers/export.csv?excel=1", "CSV for Excel"))
            " (the columns of " code.code { "brief subscribers export" } ", the list file included)."
        }
        p.console-note role="status" {
            @if found.total == 0 {
                "No reader matches."
            } @else {
                "Readers " (first + 1) "\u{2013}" (first + found.rows.len() as u64) " of " (found.total)
                " (page " (page) " of " (pages) ")."
            }
        }
        @if !found.rows.is_empty() {
            (table(d, "Readers", &["address", "name", "state"], html! {
                @for r in &found.rows {
                    tr {
                        (cell(d, link(d, &reader_path(r.id), &r.address)))
                        (cell(d, r.name.as_deref().unwrap_or("")))
                        (cell(d, state_words(r.state)))
                    }
                }
            }))
        }
        @if pages > 1 {
            nav.console-pages aria-label="Pages of readers" {
                p.paragraph {
                    @if page > 1 { (link(d, &list_path(q, state, page - 1), "Previous page")) " " }
                    @if page < pages { (link(d, &list_path(q, state, page + 1), "Next page")) }
                }
            }
        }
    }
}

fn reader_id(raw: &str) -> Option<ReaderId> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(ReaderId::from_url)
}

/// The address the ledger holds for `r`, as an address to act on.
fn stored_address(r: &ReaderRecord) -> anyhow::Result<lettre::Address> {
    parse_address(&r.address).map_err(|e| anyhow::anyhow!("a stored address does not parse: {e}"))
}

async fn load(d: &Site, raw: &str) -> Result<Option<ReaderRecord>, PageError> {
    let Some(id) = reader_id(raw) else {
        return Ok(None);
    };
    let now = d.app.clock.now_ms();
    Ok(d.ledger.with(move |l| l.reader(id, now)).await?)
}

fn no_reader(d: &Site, staff: &Staff) -> Response {
    not_found(
        d,
        staff,
        "There is no reader by that id (a forgotten reader has none).",
    )
}

/// A language tag as staff read it: the tag, and the language the reader gets when brief does
/// not write in that very tag (`None`: nothing recorded, the default).
pub(super) fn lang_words(d: &Site, lang: Option<&Lang>) -> String {
    let languages = &d.app.config.newsletter.languages;
    let gets = languages.pick(lang.map(Lang::as_str));
    match lang {
        None => format!("{gets} (the default)"),
        Some(l) if l == gets => l.to_string(),
        Some(l) if languages.matching(l.as_str()).is_some() => format!("{l} (gets {gets})"),
        Some(l) => format!("{l} (not written in: gets {gets}, the default)"),
    }
}

/// Where a reader's language comes from, as the reader's page says it.
enum LangFrom {
    /// The reader's own choice (or staff's for them), at this time.
    Chosen(i64),
    /// The list file's `lang` cell (the file's row comes before the ledger's).
    File,
    /// The language they were added, confirmed or asked with.
    Ledger,
    /// Nothing recorded.
    Nothing,
}

/// The reader's language on record and where it comes from: their choice, else the list
/// file's row (read off the async threads, without the shared connection), else the ledger's.
async fn lang_of(d: &Site, r: &ReaderRecord) -> Result<(Option<Lang>, LangFrom), PageError> {
    if let Some(at) = r.lang_chosen_at {
        return Ok((r.lang.clone(), LangFrom::Chosen(at)));
    }
    let (app, key) = (d.app.clone(), AddressKey::from_text(&r.address));
    let row = tokio::task::spawn_blocking(move || crate::audience::file_row(&app, &key))
        .await
        .map_err(|e| anyhow::anyhow!("reading the list file failed: {e}"))??;
    Ok(match (row, &r.lang) {
        (Some(row), _) => (row.lang, LangFrom::File),
        (None, Some(l)) => (Some(l.clone()), LangFrom::Ledger),
        (None, None) => (None, LangFrom::Nothing),
    })
}

/// `GET /admin/subscribers/{id}`: everything the ledger holds about one reader.
pub(super) async fn reader_page(
    State(d): Shared,
    staff: Staff,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let Some(r) = load(&d, &raw).await? else {
        return Ok(no_reader(&d, &staff));
    };
    let lang = lang_of(&d, &r).await?;
    let body = reader_body(&d, &staff, &r, &lang);
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Subscribers),
        "Reader",
        body,
    ))
}

fn reply(code: Option<u16>, text: Option<&str>) -> String {
    format!(
        "{} {}",
        code.map(|c| c.to_string()).unwrap_or_default(),
        text.unwrap_or("")
    )
    .trim()
    .to_string()
}

fn reader_body(
    d: &Site,
    staff: &Staff,
    r: &ReaderRecord,
    (lang, from): &(Option<Lang>, LangFrom),
) -> Markup {
    let id = r.id;
    let action = |what: &str| url(d, &format!("admin/subscribers/{id}/{what}"));
    let languages = &d.app.config.newsletter.languages;
    let gets = languages.pick(lang.as_ref().map(Lang::as_str));
    html! {
        (trail(d, "reader"))
        (heading(d, &r.address))
        dl.console-facts {
            dt { "Name" } dd { (r.name.as_deref().unwrap_or("(none)")) }
            dt { "State" } dd data-reader-state=(r.state.as_str()) { (state_words(r.state)) }
            @if let Some(at) = r.added_at { dt { "Held by the ledger since" } dd { (local_ms(d, Some(at))) } }
            @if let Some(c) = &r.consent {
                dt { "Consent source" } dd { (c.source) }
                dt { "Asked to join" } dd { (c.requested_at.map_or_else(|| "(not recorded)".to_string(), |t| local_ms(d, Some(t)))) }
                dt { "Confirmed" } dd { (c.confirmed_at.map_or_else(|| "(not confirmed by the reader)".to_string(), |t| local_ms(d, Some(t)))) }
            } @else {
                dt { "Consent source" } dd { "the list file (its consent is kept where the file comes from)" }
            }
            @if let Some(at) = r.pending_since { dt { "Sign-up waiting since" } dd { (local_ms(d, Some(at))) } }
            dt { "Language" }
            dd data-reader-lang=(gets.as_str()) {
                (lang_words(d, lang.as_ref()))
                (match from {
                    LangFrom::Chosen(at) => format!(" \u{2014} chosen {}", local_ms(d, Some(*at))),
                    LangFrom::File => " \u{2014} from the list file".to_string(),
                    LangFrom::Ledger => " \u{2014} as added or confirmed".to_string(),
                    LangFrom::Nothing => String::new(),
                })
            }
            @if let Some(s) = &r.suppression {
                dt { (match s.reason { Reason::Unsubscribed => "Unsubscribed", Reason::Bounced => "Suppressed for bounces", Reason::Complained => "Complained" }) }
                dd { (local_ms(d, Some(s.at))) @if let Some(why) = &s.detail { " (" (why) ")" } }
            }
        }
        (subheading(d, "Deliveries"))
        @if r.deliveries.is_empty() {
            (paragraph(d, "No issue has been sent to this reader."))
        } @else {
            (table(d, "Deliveries", &["issue", "state", "attempts", "last reply", "first attempt", "last attempt"], html! {
                @for x in &r.deliveries {
                    tr {
                        (cell(d, link(d, &format!("admin/campaigns/{}", x.issue), &x.issue)))
                        (cell(d, x.state.as_str()))
                        (cell(d, x.attempts))
                        (cell(d, reply(x.last_code, x.last_text.as_deref())))
                        (cell(d, local_ms(d, x.first_attempt_at)))
                        (cell(d, local_ms(d, x.last_attempt_at)))
                    }
                }
            }))
        }
        (subheading(d, "Bounces and complaints"))
        @if r.bounces.is_empty() {
            (paragraph(d, "None came back."))
        } @else {
            (table(d, "Bounces and complaints", &["issue", "kind", "status", "diagnostic", "when"], html! {
                @for b in &r.bounces {
                    tr {
                        (cell(d, &b.issue))
                        (cell(d, b.kind.as_str()))
                        (cell(d, b.status.as_deref().unwrap_or("")))
                        (cell(d, b.diagnostic.as_deref().unwrap_or("")))
                        (cell(d, local_ms(d, Some(b.at))))
                    }
                }
            }))
        }
        (subheading(d, "Actions"))
        @if languages.several() {
            form method="post" action=(action("language").as_str()) {
                (staff.csrf_field(d))
                label.field-label for="brief-reader-lang" { "Language" }
                select id="brief-reader-lang" name="lang" {
                    @for l in languages.all() {
                        option value=(l.as_str()) selected[l == gets] { (l.as_str()) }
                    }
                }
                p { button.page-button type="submit" { "Change the language" } }
            }
        }
        @if r.suppression.is_none() {
            form method="post" action=(action("unsubscribe").as_str()) {
                (staff.csrf_field(d))
                p { button.page-button type="submit" { "Unsubscribe\u{2026}" } }
            }
        }
        @if d.join.is_some() && r.state != ReaderState::Active {
            form method="post" action=(action("confirmation").as_str()) {
                (staff.csrf_field(d))
                p { button.page-button type="submit" { "Re-send the confirmation\u{2026}" } }
            }
        }
        form method="post" action=(action("forget").as_str()) {
            (staff.csrf_field(d))
            p { button.page-button type="submit" { "Forget this reader\u{2026}" } }
        }
    }
}

fn confirmed(form: &StaffForm) -> bool {
    field(form, "confirmed") == Some("yes")
}

/// The first step of an action: what it will do, and a button that does it.
fn ask(
    d: &Site,
    staff: &Staff,
    r: &ReaderRecord,
    what: &str,
    title: &str,
    words: Markup,
    button: &str,
) -> Response {
    let body = html! {
        (trail(d, "reader"))
        (heading(d, title))
        (words)
        form method="post" action=(url(d, &format!("admin/subscribers/{}/{what}", r.id)).as_str()) {
            (staff.csrf_field(d))
            input type="hidden" name="confirmed" value="yes";
            p { button.page-button type="submit" { (button) } }
        }
        p.paragraph { (link(d, &reader_path(r.id), "Cancel: back to the reader")) }
    };
    console_page(d, staff, Some(Section::Subscribers), title, body)
}

/// `POST /admin/subscribers/{id}/unsubscribe`: asks, then suppresses the address as
/// unsubscribed by staff (as `brief subscribers remove`).
pub(super) async fn unsubscribe(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(r) = load(&d, &raw).await? else {
        return Ok(no_reader(&d, staff));
    };
    if !confirmed(&form) {
        let words = html! {
            p.paragraph {
                strong { (r.address) } " gets no further issue. Only the reader can join again, by signing up and confirming."
            }
        };
        return Ok(ask(
            &d,
            staff,
            &r,
            "unsubscribe",
            "Unsubscribe this reader?",
            words,
            "Unsubscribe",
        ));
    }
    let address = stored_address(&r)?;
    let now = d.app.clock.now_ms();
    let a = address.clone();
    let done = d
        .ledger
        .with(move |l| {
            l.suppress(
                &a,
                Reason::Unsubscribed,
                "removed by staff in the console",
                now,
            )
        })
        .await?;
    if done {
        tracing::info!(reader = %d.key.tag(address.as_ref()), staff = %d.key.tag(staff.address.as_ref()), "reader unsubscribed from the console");
        staff
            .record(
                &d,
                Action::UnsubscribeReader,
                format!("reader {}", r.id),
                String::new(),
            )
            .await;
    }
    Ok(see_other(&url(&d, &reader_path(r.id))))
}

/// `POST /admin/subscribers/{id}/confirmation`: asks, then mails the reader a new confirmation
/// link the way the sign-up form does ([`crate::signup::Mailer::handle`]: nothing to an active
/// or forgotten address, nor twice within ten minutes).
pub(super) async fn resend_confirmation(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(r) = load(&d, &raw).await? else {
        return Ok(no_reader(&d, staff));
    };
    let Some(join) = d.join.as_ref() else {
        return Ok(message(
            &d,
            staff,
            StatusCode::SERVICE_UNAVAILABLE,
            "Not sent",
            html! {
                (paragraph(&d, "Sign-up is not enabled on this site, so there is no confirmation to send."))
            },
        ));
    };
    if !confirmed(&form) {
        let words = html! {
            p.paragraph {
                strong { (r.address) } " gets a message with a new confirmation link. They join only if they open it."
            }
        };
        return Ok(ask(
            &d,
            staff,
            &r,
            "confirmation",
            "Re-send the confirmation?",
            words,
            "Send the confirmation",
        ));
    }
    let address = stored_address(&r)?;
    let mailer = join.mailer.clone();
    let outcome = mailer
        .handle(
            &d.ledger,
            crate::signup::Request {
                address: address.clone(),
                name: r.name.clone(),
                lang: d
                    .app
                    .config
                    .newsletter
                    .languages
                    .pick(r.lang.as_ref().map(Lang::as_str))
                    .clone(),
            },
        )
        .await?;
    use crate::signup::Outcome;
    let (said, replied) = match &outcome {
        Outcome::Active => ("The reader is active already: nothing was sent.", None),
        Outcome::TooSoon => (
            "A confirmation went to this reader less than ten minutes ago: nothing was sent now.",
            None,
        ),
        Outcome::Forgotten => ("The reader was forgotten: nothing was sent.", None),
        Outcome::Mailed(t) if t.accepted => ("Sent. The relay's reply:", Some(t)),
        Outcome::Mailed(t) => ("Refused by the relay. Its reply:", Some(t)),
        Outcome::Retrying(t) => (
            "Not taken yet; it is tried again. The relay's reply:",
            Some(t),
        ),
    };
    tracing::info!(reader = %d.key.tag(address.as_ref()), staff = %d.key.tag(staff.address.as_ref()), "confirmation re-sent from the console");
    staff
        .record(
            &d,
            Action::ResendConfirmation,
            format!("reader {}", r.id),
            String::new(),
        )
        .await;
    Ok(message(
        &d,
        staff,
        StatusCode::OK,
        "Confirmation",
        html! {
            (paragraph(&d, said))
        @if let Some(t) = replied { (preformatted(&d, "The relay's reply", &reply(t.code, Some(&t.text)))) }
            p.paragraph { (link(&d, &reader_path(r.id), "Back to the reader")) }
        },
    ))
}

/// `POST /admin/subscribers/{id}/language`: records the language chosen (one of the configured
/// ones) as the reader's choice, which applies wherever the address is listed, the list file
/// included; then back to the reader's page.
pub(super) async fn set_language(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(r) = load(&d, &raw).await? else {
        return Ok(no_reader(&d, staff));
    };
    let languages = &d.app.config.newsletter.languages;
    let chosen = field(&form, "lang")
        .and_then(|v| languages.find(v))
        .cloned();
    let Some(lang) = chosen.filter(|_| languages.several()) else {
        return Ok(message(
            &d,
            staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Language not changed",
            html! {
                (paragraph(&d, &format!("Choose one of the languages brief writes in: {languages}. Nothing changed.")))
                p.paragraph { (link(&d, &reader_path(r.id), "Back to the reader")) }
            },
        ));
    };
    let (key, now, l) = (
        AddressKey::from_text(&r.address),
        d.app.clock.now_ms(),
        lang.clone(),
    );
    let changed = d
        .ledger
        .with(move |ledger| ledger.set_language(&key, &l, now))
        .await?;
    if changed {
        tracing::info!(reader = %d.key.tag(&r.address), staff = %d.key.tag(staff.address.as_ref()), lang = %lang, "reader's language changed from the console");
        staff
            .record(
                &d,
                Action::SetLanguage,
                format!("reader {}", r.id),
                lang.to_string(),
            )
            .await;
    }
    Ok(see_other(&url(&d, &reader_path(r.id))))
}

/// `POST /admin/subscribers/{id}/forget`: asks for the address typed out, then erases the
/// reader as `brief subscribers forget` does ([`crate::audience::forget`]).
pub(super) async fn forget(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(r) = load(&d, &raw).await? else {
        return Ok(no_reader(&d, staff));
    };
    let typed = field(&form, "address").unwrap_or("").trim();
    let matches =
        parse_address(typed).is_ok_and(|a| AddressKey::of(&a) == AddressKey::from_text(&r.address));
    if !matches {
        let body = html! {
            (trail(&d, "reader"))
            (heading(&d, "Forget this reader?"))
            @if !typed.is_empty() {
                p.form-error role="alert" { "That is not the reader's address: nothing was erased." }
            }
            (paragraph(&d, "Forgetting erases the address from the ledger at its owner's request: the reader's subscription, sign-up, suppression and messages; past deliveries are kept without the address. Only a keyed hash stays, so the address is never mailed again. It cannot be undone."))
            form method="post" action=(url(&d, &format!("admin/subscribers/{}/forget", r.id)).as_str()) {
                (staff.csrf_field(&d))
                label.field-label for="brief-forget" { "Type the reader's address (" (r.address) ") to confirm" }
                input.field id="brief-forget" name="address" type="text" required autocomplete="off";
                p { button.page-button type="submit" { "Forget" } }
            }
            p.paragraph { (link(&d, &reader_path(r.id), "Cancel: back to the reader")) }
        };
        let mut res = console_page(
            &d,
            staff,
            Some(Section::Subscribers),
            "Forget this reader?",
            body,
        );
        if !typed.is_empty() {
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        }
        return Ok(res);
    }
    let address = stored_address(&r)?;
    let app = d.app.clone();
    let tag = d.key.tag(address.as_ref());
    // `forget` takes the send lock of every unfinished campaign, and the daemon holds the lock
    // of one it is sending: staff are told to try again once it is sent, not shown a failure.
    let forgetting = d
        .ledger
        .with(move |l| {
            for c in l.campaigns()?.into_iter().filter(|c| !c.finished) {
                if l.lock_campaign(&c).is_err() {
                    return Ok(Err(c.issue));
                }
            }
            crate::audience::forget(&app, l, &address).map(Ok)
        })
        .await?;
    let forgetting = match forgetting {
        Ok(f) => f,
        Err(issue) => {
            return Ok(message(
                &d,
                staff,
                StatusCode::CONFLICT,
                "Not forgotten yet",
                html! {
                    (paragraph(&d, &format!("Issue {issue} is being sent right now: forget the reader once it is sent, so that no copy goes out meanwhile. Nothing was erased.")))
                    p.paragraph { (link(&d, &reader_path(r.id), "Back to the reader")) }
                },
            ));
        }
    };
    tracing::info!(reader = %tag, staff = %d.key.tag(staff.address.as_ref()), in_file = forgetting.in_file, "reader forgotten from the console");
    staff
        .record(
            &d,
            Action::ForgetReader,
            "a reader".to_string(),
            String::new(),
        )
        .await;
    if forgetting.in_file {
        return Ok(message(
            &d,
            staff,
            StatusCode::OK,
            "Forgotten",
            html! {
                (paragraph(&d, "The reader was forgotten and stays suppressed. The list file still has the address: remove its line from the file too."))
                p.paragraph { (link(&d, "admin/subscribers/", "Back to the subscribers")) }
            },
        ));
    }
    Ok(see_other(&url(&d, "admin/subscribers/?forgotten=1")))
}

/// The add form's fields.
struct NewReader {
    address: String,
    name: String,
    source: String,
    /// The language chosen, as posted (empty: the default).
    lang: String,
}

fn add_form(d: &Site, staff: &Staff, n: &NewReader, error: Option<&str>) -> Markup {
    html! {
        (trail(d, "add a reader"))
        (heading(d, "Add a reader"))
        @if let Some(e) = error {
            p.form-error role="alert" { (e) }
        }
        (paragraph(d, "Add only someone who agreed to get the newsletter, and say how they agreed: it is kept as their consent record."))
        form method="post" action=(url(d, "admin/subscribers/add").as_str()) {
            (staff.csrf_field(d))
            label.field-label for="brief-add-address" { "Email address" }
            input.field id="brief-add-address" name="address" type="email" required autocomplete="off" value=(n.address);
            label.field-label for="brief-add-name" { "Name (optional)" }
            input.field id="brief-add-name" name="name" type="text" autocomplete="off" value=(n.name);
            label.field-label for="brief-add-source" { "How they agreed (the consent source)" }
            input.field id="brief-add-source" name="source" type="text" required autocomplete="off" value=(n.source);
            @let languages = &d.app.config.newsletter.languages;
            @if languages.several() {
                label.field-label for="brief-add-lang" { "Language" }
                select id="brief-add-lang" name="lang" {
                    @for l in languages.all() {
                        option value=(l.as_str()) selected[l.as_str() == n.lang] { (l.as_str()) }
                    }
                }
            }
            p { button.page-button type="submit" { "Add\u{2026}" } }
        }
    }
}

/// `GET /admin/subscribers/add`: the form.
pub(super) async fn add_page(State(d): Shared, staff: Staff) -> Result<Response, PageError> {
    let empty = NewReader {
        address: String::new(),
        name: String::new(),
        source: String::new(),
        lang: String::new(),
    };
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Subscribers),
        "Add a reader",
        add_form(&d, &staff, &empty, None),
    ))
}

/// `POST /admin/subscribers/add`: checks the fields and asks; on the confirmed second POST adds
/// the reader with the consent source typed, unless the address is suppressed or forgotten
/// (the import policy: only the reader can join again).
pub(super) async fn add(State(d): Shared, form: StaffForm) -> Result<Response, PageError> {
    let staff = &form.staff;
    let n = NewReader {
        address: cut(field(&form, "address").unwrap_or("")),
        name: cut(field(&form, "name").unwrap_or("")),
        source: cut(field(&form, "source").unwrap_or("")),
        lang: cut(field(&form, "lang").unwrap_or("")),
    };
    let refuse = |why: &str| {
        let mut res = console_page(
            &d,
            staff,
            Some(Section::Subscribers),
            "Add a reader",
            add_form(&d, staff, &n, Some(why)),
        );
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        res
    };
    let address = match parse_address(&n.address) {
        Ok(a) => a,
        Err(e) => return Ok(refuse(&format!("That address cannot be used: {e}."))),
    };
    if n.source.is_empty() {
        return Ok(refuse("Say how the reader agreed (the consent source)."));
    }
    // With one language there is nothing to choose: the default, recorded as nothing.
    let languages = &d.app.config.newsletter.languages;
    let lang = match (languages.several(), n.lang.as_str()) {
        (false, _) | (true, "") => None,
        (true, v) => match languages.find(v) {
            Some(l) => Some(l.clone()),
            None => return Ok(refuse("Choose one of the languages in the list.")),
        },
    };
    let key = AddressKey::of(&address);
    let hash = d.key.forget_hash(address.as_ref());
    let k = key.clone();
    let (forgotten, suppressed, known) = d
        .ledger
        .with(move |l| Ok((l.is_forgotten(&hash)?, l.suppression(&k)?, l.reader_id(&k)?)))
        .await?;
    if forgotten {
        return Ok(refuse(
            "This address was forgotten at its owner's request: it is never added again.",
        ));
    }
    if let Some(reason) = suppressed {
        return Ok(refuse(&format!(
            "This address is {}: only the reader can join again, by signing up and confirming.",
            reason.as_str()
        )));
    }
    if !confirmed(&form) {
        let body = html! {
            (trail(&d, "add a reader"))
            (heading(&d, "Add this reader?"))
            p.paragraph {
                strong { (address.to_string()) } @if !n.name.is_empty() { " (" (n.name) ")" }
                " gets the next issue" @if let Some(l) = &lang { ", in " strong { (l.as_str()) } }
                ". Consent source: " strong { (n.source) }
                @if known.is_some() { ". The ledger knows this address already." }
            }
            form method="post" action=(url(&d, "admin/subscribers/add").as_str()) {
                (staff.csrf_field(&d))
                input type="hidden" name="address" value=(n.address);
                input type="hidden" name="name" value=(n.name);
                input type="hidden" name="source" value=(n.source);
                @if let Some(l) = &lang { input type="hidden" name="lang" value=(l.as_str()); }
                input type="hidden" name="confirmed" value="yes";
                p { button.page-button type="submit" { "Add" } }
            }
            p.paragraph { (link(&d, "admin/subscribers/add", "Cancel")) }
        };
        return Ok(console_page(
            &d,
            staff,
            Some(Section::Subscribers),
            "Add this reader?",
            body,
        ));
    }
    let now = d.app.clock.now_ms();
    let (name, source, a) = (
        Some(n.name.clone()).filter(|s| !s.is_empty()),
        n.source.clone(),
        address.clone(),
    );
    let (id, added) = d
        .ledger
        .with(move |l| l.add_subscriber_by_staff(&a, name.as_deref(), lang.as_ref(), &source, now))
        .await?;
    if added {
        tracing::info!(reader = %d.key.tag(address.as_ref()), staff = %d.key.tag(staff.address.as_ref()), "reader added from the console");
        staff
            .record(&d, Action::AddReader, format!("reader {id}"), String::new())
            .await;
    }
    Ok(see_other(&url(&d, &reader_path(id))))
}

/// The export's query: `excel=1` for the Excel variant.
#[derive(serde::Deserialize, Default)]
pub(super) struct Export {
    #[serde(default)]
    excel: String,
}

/// A CSV download named `file`; with a byte-order mark for Excel when `excel`.
pub(super) fn csv_download(file: &str, csv: Vec<u8>, excel: bool) -> Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let (file, bytes) = if excel {
        (
            file.replacen(".csv", "-excel.csv", 1),
            crate::sheet::for_excel(csv),
        )
    } else {
        (file.to_string(), csv)
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /admin/subscribers/export.csv`: every address with its state, as `brief subscribers
/// export` writes it (the list file's rows, then the ledger's). Read on a connection of its
/// own, off the async threads, so the file's reading holds no other request's connection.
pub(super) async fn export(
    State(d): Shared,
    _staff: Staff,
    Query(q): Query<Export>,
) -> Result<Response, PageError> {
    let app = d.app.clone();
    let csv = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let ledger = app.open_ledger()?;
        let rows = crate::audience::roster(&app, &ledger, |_| {})?;
        crate::audience::write_roster_csv(&rows, Vec::new())
    })
    .await
    .map_err(|e| anyhow::anyhow!("the export task failed: {e}"))??;
    Ok(csv_download(
        "brief-subscribers.csv",
        csv,
        !q.excel.is_empty(),
    ))
}
