//! A test send: the `[TEST]` copy of an issue, as rendered now, to staff addresses; sent and
//! recorded the same way from `brief send --test`, the console and `POST /admin/test-send`.

use lettre::Address;

use crate::app::TestReply;
use crate::issue::Issue;
use crate::message::Kind;
use crate::notices::Sender;

/// Sends the `[TEST]` message of `issue` to each address in `to` over one connection of the
/// `test` transport, signed like a campaign, and keeps each reply in the ledger's test log
/// (a failure to record is logged: the messages went out either way). Calls `on_reply` as
/// each reply comes in and returns them all; a failure to one address does not stop the
/// others. Which addresses may get a test is the caller's rule.
pub async fn send(
    sender: &Sender<'_>,
    issue: &Issue,
    to: &[Address],
    mut on_reply: impl FnMut(&TestReply),
) -> anyhow::Result<Vec<TestReply>> {
    let app = sender.app;
    let nonce = app.clock.now_ms() as u64;
    let (_, template) = app.prepare(issue, sender.key, Kind::Test { nonce });
    let replies = app
        .send_each(&template, "test", sender.dkim, to, &mut on_reply)
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
    Ok(replies)
}
