//! A test send: the `[TEST]` copy of an issue, as rendered now, to staff addresses; sent and
//! recorded the same way from `brief send --test`, the console and `POST /admin/test-send`.
//! An issue goes out in every configured language (one copy per language per address) unless
//! staff pick one.

use lettre::Address;

use crate::app::{App, TestReply};
use crate::issue::Issue;
use crate::lang::Lang;
use crate::message::Kind;
use crate::notices::Sender;

/// The editions a test send covers: all of `editions` when `lang` is `None`, else the one of
/// the configured language `lang` names (`es-MX` picks `es`). An error names a language that
/// is not configured.
pub fn choose(
    app: &App,
    editions: Vec<(Lang, Issue)>,
    lang: Option<&str>,
) -> Result<Vec<(Lang, Issue)>, String> {
    let Some(tag) = lang.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(editions);
    };
    let languages = &app.config.newsletter.languages;
    let Some(wanted) = languages.matching(tag) else {
        let known: Vec<&str> = languages.all().iter().map(|l| l.as_str()).collect();
        return Err(format!(
            "{tag:?} is not one of the newsletter's languages ({})",
            known.join(", ")
        ));
    };
    Ok(editions.into_iter().filter(|(l, _)| l == wanted).collect())
}

/// Sends the `[TEST]` message of each of `editions` (in its language) to each address in `to`
/// over one connection of the `test` transport per language, signed like a campaign, and
/// keeps each reply in the ledger's test log (a failure to record is logged: the messages
/// went out either way). Calls `on_reply` as each reply comes in and returns them all with
/// their language; a failure to one address does not stop the others. Which addresses may
/// get a test is the caller's rule.
pub async fn send(
    sender: &Sender<'_>,
    editions: &[(Lang, Issue)],
    to: &[Address],
    mut on_reply: impl FnMut(&Lang, &TestReply),
) -> anyhow::Result<Vec<(Lang, TestReply)>> {
    let app = sender.app;
    let nonce = app.clock.now_ms() as u64;
    let mut all = Vec::with_capacity(editions.len() * to.len());
    for (i, (lang, issue)) in editions.iter().enumerate() {
        // A nonce of its own per language: each copy has its own Message-ID.
        let kind = Kind::Test {
            nonce: nonce.wrapping_add(i as u64),
        };
        let (_, template) = app.prepare_in(lang, issue, sender.key, kind);
        let replies = app
            .send_each(&template, "test", sender.dkim, to, &mut |r: &TestReply| {
                on_reply(lang, r)
            })
            .await?;
        let (id, now, record) = (issue.id, app.clock.now_ms(), replies.clone());
        let recorded = sender
            .ledger
            .with(move |l| {
                for r in &record {
                    l.record_test_send(id, &r.address, r.code, &r.text, now)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(issue = %id, error.message = %e, "cannot record the test send: {e:#}");
        }
        all.extend(replies.into_iter().map(|r| (lang.clone(), r)));
    }
    Ok(all)
}
