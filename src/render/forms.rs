//! The sign-up form, the message that asks a new reader to confirm, and the staff sign-in
//! message, in the newsletter's look.
//!
//! The form is one piece of markup for the daemon's `GET /subscribe` page and for the snippet
//! `brief subscribe-form` prints for the center's website: plain HTML that posts without
//! JavaScript. Its honeypot field is hidden from people (and from screen readers) but not from
//! the bots that fill in every field.

use maud::{html, Markup, PreEscaped};
use url::Url;

use super::context::Context;

/// The name of the honeypot field: a person never sees it, so a value in it means a bot.
pub const HONEYPOT: &str = "website";

/// The sign-up form posting to `action`, with `error` shown above it and the fields filled with
/// what the reader typed.
pub fn signup_form(
    ctx: Context<'_>,
    action: &Url,
    error: Option<&str>,
    email: &str,
    name: &str,
) -> Markup {
    let t = ctx.templates;
    let w = ctx.words;
    let editions = t.editions();
    html! {
        // Its own `lang`: the snippet goes into pages of any language.
        form method="post" action=(action.as_str()) accept-charset="utf-8" lang=(ctx.lang) {
            @if let Some(e) = error {
                p.form-error style=(t.style("form-error")) role="alert" { (e) }
            }
            label.field-label style=(t.style("field-label")) for="brief-email" { (w.get("form-email")) }
            input.field style=(t.style("field")) id="brief-email" type="email" name="email"
                value=(email) required autocomplete="email" maxlength="254";
            label.field-label style=(t.style("field-label")) for="brief-name" { (w.get("form-name")) }
            input.field style=(t.style("field")) id="brief-name" type="text" name="name"
                value=(name) autocomplete="name" maxlength="200";
            // The language the reader will read in, preselected to the page's; each option
            // named in its own language.
            @if editions.len() > 1 {
                label.field-label style=(t.style("field-label")) for="brief-lang" { (w.get("form-language")) }
                select.field style=(t.style("field")) id="brief-lang" name="lang" {
                    @for e in editions {
                        option value=(e.lang) lang=(e.lang) selected[e.lang == *ctx.lang] { (e.words.get("language-name")) }
                    }
                }
            } @else {
                input type="hidden" name="lang" value=(ctx.lang);
            }
            div style="position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden;" aria-hidden="true" {
                label for="brief-website" { (w.get("form-honeypot")) }
                input id="brief-website" type="text" name=(HONEYPOT) tabindex="-1" autocomplete="off";
            }
            p.consent style=(t.style("consent")) { (w.get("consent")) }
            button type="submit" style=(t.style("page-button")) { (w.get("form-subscribe")) }
        }
    }
}

/// A page or a short message in the newsletter's look: masthead, `body`, footer with the
/// organization and postal address. The daemon's pages and the emailed links use it.
pub fn frame(ctx: Context<'_>, title: &str, body: Markup) -> Markup {
    frame_with(ctx, title, None, body)
}

/// [`frame`] with links to the same page in the other languages above the masthead: `here`
/// with `?lang=LANG` for each (a public page, which reads that parameter first).
pub fn frame_with(ctx: Context<'_>, title: &str, here: Option<&Url>, body: Markup) -> Markup {
    let t = ctx.templates;
    let n = ctx.newsletter;
    let nav = html! {
        @if let Some(here) = here.filter(|_| t.editions().len() > 1) {
            tr { td.pad.topbar style=(t.style("topbar")) {
                nav aria-label=(ctx.words.get("languages-nav")) {
                    @for (i, e) in t.editions().iter().enumerate() {
                        @if i > 0 { " | " }
                        @if e.lang == *ctx.lang {
                            span aria-current="page" { (e.words.get("language-name")) }
                        } @else {
                            @let mut u = here.clone();
                            @let _ = u.query_pairs_mut().clear().append_pair("lang", e.lang.as_str());
                            a.topbar-link style=(t.style("topbar-link")) lang=(e.lang) hreflang=(e.lang) href=(u.as_str()) { (e.words.get("language-name")) }
                        }
                    }
                }
            } }
        }
    };
    html! {
        (maud::DOCTYPE)
        html lang=(ctx.lang) dir=(ctx.dir()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="format-detection" content=(super::html::FORMAT_DETECTION);
                meta name="color-scheme" content="light dark";
                meta name="supported-color-schemes" content="light dark";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(t.head_css())) }
            }
            body.body style=(t.style("body")) {
                table.outer role="presentation" lang=(ctx.lang) dir=(ctx.dir()) width="100%" cellpadding="0" cellspacing="0" border="0" style=(t.style("outer")) {
                    tr { td align="center" {
                        table.container role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style=(t.style("container")) {
                            (nav)
                            tr { td.pad.masthead style=(t.style("masthead")) {
                                p.kicker style=(t.style("kicker")) { (n.kicker) }
                                p.title style=(t.style("title")) { (n.name) }
                            } }
                            // Its own padding, deeper than an entry's, keeps a page's last
                            // button clear of the footer.
                            tr { td.pad.page-body style=(t.style("page-body")) { (body) } }
                            tr { td.pad.footer style=(t.style("footer")) {
                                p.footer-org style=(t.style("footer-org")) { (n.organization) }
                                p.footer-text style=(t.style("footer-text")) {
                                    @for (i, l) in n.postal_address.lines().enumerate() {
                                        @if i > 0 { br; }
                                        (l)
                                    }
                                }
                            } }
                        }
                    } }
                }
            }
        }
    }
}

/// The HTML and text parts of the message asking to confirm at `link`.
pub fn confirmation(ctx: Context<'_>, link: &Url) -> (String, String) {
    let w = ctx.words;
    link_message(
        ctx,
        &w.get("confirm-subject"),
        &w.get("confirm-text"),
        &w.get("confirm-button"),
        &w.get("confirm-link-label"),
        link,
    )
}

/// The HTML and text parts of a staff member's sign-in message with its `link`, valid for
/// `valid_for` (words, like "15 minutes").
pub fn staff_login(
    ctx: Context<'_>,
    subject: &str,
    link: &Url,
    valid_for: &str,
) -> (String, String) {
    let text = format!(
        "Someone (you, we hope) asked to sign in to the {} staff pages with this address. The link works once, within {valid_for}. If it was not you, ignore this message: nothing happens without the link.",
        ctx.newsletter.kicker
    );
    link_message(ctx, subject, &text, "Sign in", "Sign in:", link)
}

/// The HTML and text parts of a report mailed to staff (a send's summary, the checks before
/// a fire): `paragraphs` in order, each line of one kept as a line, then a button to `link`.
pub fn staff_report(
    ctx: Context<'_>,
    subject: &str,
    paragraphs: &[String],
    button: &str,
    link: &Url,
) -> (String, String) {
    let t = ctx.templates;
    let n = ctx.newsletter;
    let body = html! {
        @for para in paragraphs {
            p.paragraph style=(t.style("paragraph")) {
                @for (i, line) in para.lines().enumerate() {
                    @if i > 0 { br; }
                    (line)
                }
            }
        }
        p { a.page-button style=(t.style("page-button")) href=(link.as_str()) { (button) } }
    };
    let html = frame(ctx, subject, body);
    let text = format!(
        "{kicker} | {name}\n\n{body}\n\n{button}:\n{link}\n",
        kicker = n.kicker,
        name = n.name,
        body = paragraphs.join("\n\n"),
    );
    (html.into_string(), text)
}

/// A short message in the newsletter's look: `text`, then a button to `link` and the link
/// spelled out (after `text_label` in the text part).
fn link_message(
    ctx: Context<'_>,
    subject: &str,
    text: &str,
    button: &str,
    text_label: &str,
    link: &Url,
) -> (String, String) {
    let t = ctx.templates;
    let n = ctx.newsletter;
    let body = html! {
        p.paragraph style=(t.style("paragraph")) { (text) }
        p { a.page-button style=(t.style("page-button")) href=(link.as_str()) { (button) } }
        p.paragraph style=(t.style("paragraph")) {
            (ctx.words.get("or-open")) " "
            // A link is one long word: it breaks anywhere rather than widen the message.
            a.raw-link style=(t.style("raw-link")) href=(link.as_str()) { (link.as_str()) }
        }
    };
    let html = frame(ctx, subject, body);
    let text = format!(
        "{kicker} | {name}\n\n{body}\n\n{text_label}\n{link}\n\n-- \n{org}\n{address}\n",
        kicker = n.kicker,
        name = n.name,
        body = super::text::wrap(text, 72, ""),
        org = n.organization,
        address = n.postal_address,
    );
    (html.into_string(), text)
}
