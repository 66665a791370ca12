//! An issue's page (`/admin/issues/{id}`): its preview, test sends and "Send now".

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use lettre::Address;
use maud::{html, Markup};
use tokio_util::sync::CancellationToken;

use super::super::admin::{console_page, Section, Staff, StaffForm};
use super::super::error::PageError;
use super::super::site::{Shared, Site};
use super::super::ui::{see_other, url};
use super::feeds::{cached_editions, feeds_section};
use super::parts::{
    back_to_issue, field, heading, issue_id, link, local_ms, message, not_found,
    not_sent_for_problems, paragraph, preformatted, problem_list, subheading,
};
use crate::address::AddressKey;
use crate::app::App;
use crate::audience::{self};
use crate::campaign::start::{self, NotStarted, Started};
use crate::campaign::test_send;
use crate::feed::FetchPolicy;
use crate::issue::{Issue, IssueId};
use crate::lang::Lang;
use crate::ledger::{Action, Campaign, Trigger};
use crate::message::{Kind, MessageTemplate};
use crate::render::Rendered;

// ---------------------------------------------------------------------------------------------
// Issue page

/// The issue as a reader gets it, made out to the sample reader (as `brief preview` does).
pub(super) struct Preview {
    /// The language of this edition.
    lang: Lang,
    subject: String,
    html: String,
    text: String,
    headers: String,
    size: usize,
}

pub(super) fn preview(d: &Site, lang: &Lang, issue: &Issue) -> Preview {
    let (rendered, template) = d.app.prepare_in(lang, issue, &d.key, Kind::Campaign);
    let (eml, headers) = signed_sample(d, &template);
    let (sample, _) = App::sample_recipient();
    let token = d.key.token(sample.as_ref());
    Preview {
        lang: lang.clone(),
        subject: rendered.subject.clone(),
        html: Rendered::fill(&rendered.html, &token),
        text: Rendered::fill(&rendered.text, &token),
        headers,
        size: eml.len(),
    }
}

/// `template` made out to the sample reader and signed as a reader's copy is, and its header
/// block as staff read it (lines joined by `\n`, the subject decoded).
fn signed_sample(d: &Site, template: &MessageTemplate) -> (Vec<u8>, String) {
    let mut eml = App::sample_message(template);
    if let Some(k) = &d.dkim {
        k.sign_in_place(&mut eml, d.app.clock.now().timestamp());
    }
    let end = eml
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(eml.len());
    let headers = decoded_subject(&String::from_utf8_lossy(&eml[..end]).replace("\r\n", "\n"));
    (eml, headers)
}

/// The header block `headers` (lines joined by `\n`) with its Subject field shown as staff
/// read it: RFC 2047 encoded words decoded and the field unfolded onto one line.
pub(super) fn decoded_subject(headers: &str) -> String {
    let Some(subject) = mail_parser::MessageParser::new()
        .parse_headers(headers.replace('\n', "\r\n").as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
    else {
        return headers.to_string();
    };
    let mut out = String::with_capacity(headers.len());
    let mut in_subject = false;
    for line in headers.split('\n') {
        let folded = line.starts_with([' ', '\t']);
        if folded && in_subject {
            continue;
        }
        in_subject = !folded
            && line
                .split_once(':')
                .is_some_and(|(name, _)| name.eq_ignore_ascii_case("subject"));
        if !out.is_empty() {
            out.push('\n');
        }
        if in_subject {
            out.push_str("Subject: ");
            out.push_str(&subject);
        } else {
            out.push_str(line);
        }
    }
    out
}

pub(super) fn size(n: usize) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        format!("{:.1} KiB ({n} bytes)", n as f64 / 1024.0)
    }
}

/// The message its campaign stored for `id`, as the sample reader would get it: what readers
/// got, whatever the folder says now.
fn stored_preview(d: &Site, lang: &Lang, template: &MessageTemplate, subject: &str) -> Preview {
    let (eml, headers) = signed_sample(d, template);
    let parsed = mail_parser::MessageParser::default().parse(&eml);
    let part = |html: bool| {
        parsed
            .as_ref()
            .and_then(|m| if html { m.body_html(0) } else { m.body_text(0) })
            .map(|t| t.into_owned())
            .unwrap_or_default()
    };
    Preview {
        lang: lang.clone(),
        subject: subject.to_string(),
        html: part(true),
        text: part(false),
        headers,
        size: eml.len(),
    }
}

pub(super) async fn issue_page(
    State(d): Shared,
    staff: Staff,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, &staff, "There is no issue by that id."));
    };
    let app = d.app.clone();
    let key = d.key.clone();
    let default = d.app.config.newsletter.languages.default_lang().clone();
    let found = d
        .ledger
        .with(move |l| {
            let campaign = l.campaign(id)?;
            let stored = match &campaign {
                Some(c) => start::stored_editions(l, c, &key, &default)?,
                None => None,
            };
            let readers = match campaign {
                Some(_) => 0,
                None => audience::reachable_readers(&app, l)?,
            };
            Ok((campaign, stored, readers, l.test_send_count(id)?))
        })
        .await;
    let (campaign, stored, readers, tests) = found?;
    // A sent issue shows what its readers got; an unsent one, its folder (and feeds) now.
    let mut feed_states = Vec::new();
    let shown = match &stored {
        Some((editions, stored)) => Shown::Stored(
            editions
                .iter()
                .zip(stored)
                .map(|((lang, template), m)| stored_preview(&d, lang, template, &m.subject))
                .collect(),
        ),
        None => {
            let folder = d.app.config.content.dir.join(id.to_string());
            let is_dir = tokio::task::spawn_blocking(move || folder.is_dir())
                .await
                .unwrap_or(false);
            if !is_dir && d.app.config.content.feeds.is_empty() && campaign.is_none() {
                return Ok(not_found(
                    &d,
                    &staff,
                    &format!("There is no issue folder {id}."),
                ));
            }
            // Each feed as last fetched: a page load never fetches a feed.
            let (collected, states) = cached_editions(&d, id).await?;
            feed_states = states;
            match collected {
                Ok(editions) => Shown::Folder(
                    editions
                        .iter()
                        .map(|(lang, issue)| preview(&d, lang, issue))
                        .collect(),
                ),
                Err(problems) => Shown::Problems(problems),
            }
        }
    };
    let body = html! {
        (issue_body(&d, &staff, id, &shown, campaign.as_ref(), readers, tests))
        (feeds_section(&d, &staff, &feed_states, Some(id)))
    };
    Ok(console_page(
        &d,
        &staff,
        Some(Section::Issues),
        &format!("Issue {id}"),
        body,
    ))
}

/// What an issue page shows.
pub(super) enum Shown {
    /// The folder as it renders now, one preview per language (the default first).
    Folder(Vec<Preview>),
    /// The messages the issue's campaign stored, one per language (the default first).
    Stored(Vec<Preview>),
    /// Why the folder cannot be sent.
    Problems(crate::error::Problems),
}

pub(super) fn issue_body(
    d: &Site,
    staff: &Staff,
    id: IssueId,
    shown: &Shown,
    campaign: Option<&Campaign>,
    readers: u64,
    tests: u64,
) -> Markup {
    let staff_list = &d.app.config.server.staff;
    html! {
        p.console-crumbs { (link(d, "admin/issues/", "Issues")) " / " (id) }
        (heading(d, &format!("Issue {id}")))
        @if let Some(c) = campaign {
            p.console-ok {
                "This issue was already sent: its campaign started " (local_ms(d, Some(c.created_at)))
                @if c.finished { " and is finished" } @else { " and is still sending" }
                ". " (link(d, &format!("admin/campaigns/{id}"), &format!("See campaign {id}")))
                @if matches!(shown, Shown::Stored(_)) {
                    " Below is the message the campaign stored: what its readers got, whatever the folder says now."
                }
            }
        }
        @match shown {
            Shown::Problems(problems) => {
                p.form-error {
                    (problems.0.len()) " problem(s): this issue cannot be sent or tested until they are fixed."
                }
                (problem_list(d, &problems.0))
            }
            Shown::Folder(previews) | Shown::Stored(previews) if !previews.is_empty() => {
                @let p = &previews[0];
                @let several = previews.len() > 1;
                @if several {
                    p.paragraph { "Edition in " (language_name(d, &p.lang)) " (the default language); the other languages follow below." }
                }
                p.paragraph {
                    "Subject: " strong { (p.subject) } br;
                    "Size: " (size(p.size)) " (as made out to the sample reader "
                    (crate::app::SAMPLE_ADDRESS) ")" br;
                    "Test sends so far: " (tests)
                }
                iframe.console-frame id="the-email" sandbox="" title=(format!("Issue {id} as a reader sees it")) srcdoc=(p.html) {}
                section.console-section aria-labelledby="brief-test-heading" {
                    h2.console-heading id="brief-test-heading" { "Send a test" }
                    form method="post" action=(url(d, &format!("admin/issues/{id}/test")).as_str()) {
                        (staff.csrf_field(d))
                        label.field-label for="brief-test-to" { "Send the test to" }
                        select.field id="brief-test-to" name="to" {
                            @for m in staff_list {
                                @let me = AddressKey::of(&m.email) == AddressKey::of(&staff.address);
                                option value=(m.email) selected[me] { (m.email) @if me { " (me)" } }
                            }
                        }
                        @if d.app.config.newsletter.languages.several() {
                            label.field-label for="brief-test-lang" { "In" }
                            select.field id="brief-test-lang" name="lang" {
                                option value="" selected { "All languages" }
                                @for l in d.app.config.newsletter.languages.all() {
                                    option value=(l) { (language_name(d, l)) }
                                }
                            }
                        }
                        p { button.page-button.page-button.page-button type="submit" { "Send a test to me" } }
                        p.console-note {
                            "A test goes only to staff, with [TEST] in its subject, and is kept in the test log."
                            @if matches!(shown, Shown::Stored(_)) { " It is made from the folder as it is now." }
                        }
                    }
                }
                @if campaign.is_none() {
                    section.console-section.console-danger aria-labelledby="brief-send-heading" {
                        h2.console-heading id="brief-send-heading" { "Send now" }
                        form method="post" action=(url(d, &format!("admin/issues/{id}/send")).as_str()) {
                            (staff.csrf_field(d))
                            p.paragraph {
                                "Sends issue " (id) " to " strong { (readers) } " reader"
                                (if readers == 1 { "" } else { "s" }) " now. This cannot be undone."
                            }
                            @if let Some(w) = d.app.config.schedule.canary {
                                p.console-note {
                                    "Staff get it first; the readers " (humantime::format_duration(w))
                                    " later, unless it is held on the campaign's page."
                                }
                            }
                            label.field-label for="brief-confirm" {
                                "Type the issue id (" (id) ") to confirm"
                            }
                            input.field id="brief-confirm" name="confirm" type="text"
                                required autocomplete="off" inputmode="numeric";
                            p { button.page-button.page-button.page-button type="submit" { "Send now" } }
                        }
                    }
                }
                (subheading(d, "Text part"))
                (preformatted(d, "The text part", &p.text))
                (subheading(d, "Headers"))
                (preformatted(d, "The headers", &p.headers))
                @for e in &previews[1..] {
                    @let name = language_name(d, &e.lang);
                    section.console-section aria-labelledby=(format!("brief-edition-{}", e.lang)) {
                        h2.console-heading id=(format!("brief-edition-{}", e.lang)) { "Edition in " (name) }
                        p.paragraph {
                            "Subject: " strong { (e.subject) } br;
                            "Size: " (size(e.size))
                        }
                        iframe.console-frame id=(format!("the-email-{}", e.lang)) sandbox="" title=(format!("Issue {id} in {name} as a reader sees it")) srcdoc=(e.html) {}
                        (subheading(d, &format!("Text part in {name}")))
                        (preformatted(d, &format!("The text part in {name}"), &e.text))
                        (subheading(d, &format!("Headers in {name}")))
                        (preformatted(d, &format!("The headers in {name}"), &e.headers))
                    }
                }
            }
            Shown::Folder(_) | Shown::Stored(_) => {}
        }
    }
}

/// The name of `lang` in its own words (its catalogue's `language-name`).
pub(super) fn language_name(d: &Site, lang: &Lang) -> String {
    d.app.templates.edition(lang).words.get("language-name")
}

pub(super) async fn test_send(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, staff, "There is no issue by that id."));
    };
    // To the signed-in member, or another staff address; never anyone else.
    let to: Option<Address> = match field(&form, "to").filter(|t| !t.is_empty()) {
        None => Some(staff.address.clone()),
        Some(t) => crate::address::parse_address(t)
            .ok()
            .and_then(|a| crate::staff::staff_address(&d.app, &a)),
    };
    let Some(to) = to else {
        return Ok(message(
            &d,
            staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not sent",
            html! { (paragraph(&d, "Tests go only to addresses of the staff.")) (back_to_issue(&d, id)) },
        ));
    };
    let editions = match d.app.collect_editions(id, FetchPolicy::Once).await {
        Ok(e) => e,
        Err(problems) => return Ok(not_sent_for_problems(&d, staff, id, &problems)),
    };
    let editions = match test_send::choose(&d.app, editions, field(&form, "lang")) {
        Ok(e) => e,
        Err(e) => {
            return Ok(message(
                &d,
                staff,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not sent",
                html! { (paragraph(&d, &e)) (back_to_issue(&d, id)) },
            ))
        }
    };
    let tag = d.key.tag(staff.address.as_ref());
    tracing::info!(issue = %id, staff = %tag, "console test send");
    let replies = test_send::send(&d.sender(), &editions, &[to], |_, _| {}).await?;
    let several = editions.len() > 1;
    let all = replies.iter().all(|(_, r)| r.accepted);
    let detail = replies
        .iter()
        .map(|(lang, r)| {
            format!(
                "{}{}: {}",
                if several {
                    format!("[{lang}] ")
                } else {
                    String::new()
                },
                r.address,
                if r.accepted { "accepted" } else { "refused" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    staff
        .record(&d, Action::TestSend, id.to_string(), detail)
        .await;
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    let title = if all { "Test sent" } else { "Test not sent" };
    Ok(message(
        &d,
        staff,
        status,
        title,
        html! {
            ul.list {
                @for (lang, r) in &replies {
                    li.reply {
                        @if several { "[" (language_name(&d, lang)) "] " }
                        (r.address) ": "
                        @if r.accepted { "accepted" } @else { "refused" }
                        " (" (r.code.map(|c| c.to_string()).unwrap_or_default()) " " (r.text) ")"
                    }
                }
            }
            (back_to_issue(&d, id))
        },
    ))
}

pub(super) async fn send_now(
    State(d): Shared,
    Path(raw): Path<String>,
    form: StaffForm,
) -> Result<Response, PageError> {
    let staff = &form.staff;
    let Some(id) = issue_id(&raw) else {
        return Ok(not_found(&d, staff, "There is no issue by that id."));
    };
    let refuse = |status: StatusCode, text: &str| {
        message(
            &d,
            staff,
            status,
            "Not sent",
            html! { (paragraph(&d, text)) (back_to_issue(&d, id)) },
        )
    };
    if field(&form, "confirm").map(str::trim) != Some(id.to_string().as_str()) {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("The id typed does not match {id}: nothing was sent."),
        ));
    }
    let Some(launch) = d.launch.clone() else {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "This server cannot run campaigns: use `brief send`.",
        ));
    };
    // Like `brief send --yes`: the campaign with its whole list in one transaction. A request
    // is not cancelled midway: the campaign is made, or not at all.
    let started = start::from_folder(
        &d.app,
        &d.ledger,
        &d.key,
        id,
        Trigger::Staff,
        FetchPolicy::Once,
        &CancellationToken::new(),
    )
    .await;
    let Started {
        ledger,
        editions,
        campaign,
        problems,
        ..
    } = match started {
        Ok(s) => s,
        Err(NotStarted::Exists) => {
            return Ok(refuse(
                StatusCode::CONFLICT,
                &format!("Issue {id} was already sent: nothing more was sent."),
            ))
        }
        Err(NotStarted::Empty | NotStarted::Stopped) => {
            return Ok(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Issue {id} has no entries: nothing was sent."),
            ))
        }
        Err(NotStarted::Problems(problems)) => {
            return Ok(not_sent_for_problems(&d, staff, id, &problems))
        }
        Err(NotStarted::Failed(e)) => return Err(e.into()),
    };
    for p in &problems {
        tracing::warn!("skipped subscriber: {p}");
    }
    tracing::info!(issue = %id, staff = %d.key.tag(staff.address.as_ref()), trigger = "staff", "campaign started from the console");
    launch(campaign, editions, ledger);
    staff
        .record(&d, Action::SendNow, id.to_string(), String::new())
        .await;
    Ok(see_other(&url(&d, &format!("admin/campaigns/{id}"))))
}

#[cfg(test)]
mod tests {
    use super::decoded_subject;

    #[test]
    fn the_headers_box_shows_an_encoded_subject_decoded_and_the_rest_as_is() {
        let raw = "From: BRIEF <news@example.org>\nSubject: =?utf-8?b?QlJJRUYgwrcgR2FyY8OtYSB5IGVs?=\n =?utf-8?b?IGNhbmFyaW8=?=\nTo: ana@example.org";
        assert_eq!(
            decoded_subject(raw),
            "From: BRIEF <news@example.org>\nSubject: BRIEF \u{b7} Garc\u{ed}a y el canario\nTo: ana@example.org"
        );
        let plain = "Subject: BRIEF 07.23.21\nTo: ana@example.org";
        assert_eq!(decoded_subject(plain), plain);
    }
}
