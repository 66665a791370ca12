//! A campaign's lifecycle, written once for `brief send`, the daemon's schedule and the
//! console's "Send now".
//!
//! - [`decide`]: what a request to send an issue means for its campaign in each state (none yet,
//!   unfinished, finished), as a pure function of the ledger's facts.
//! - [`start`]: the steps that change the ledger: start a campaign with its whole list, store a
//!   corrected message as a new revision, put the failed deliveries back; and the one start the
//!   schedule and the console share ([`start::from_folder`]).
//! - [`run`]: a campaign's run: its canary copies, the wait for the window (and any hold), the
//!   readers, the summary; the caller supplies the relay-retry policy and what it reports.
//! - [`test_send`]: a test copy of an issue to staff, sent and recorded the same way from the
//!   CLI, the console and the JSON endpoint.

pub mod run;
pub mod start;
pub mod test_send;

use crate::ledger::Campaign;

/// What the caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Start the issue's campaign; one that exists is left alone (a schedule fire, the
    /// console's "Send now").
    Start,
    /// Start it, or go on with it when it is not finished (`brief send`).
    StartOrResume,
    /// Render the issue again for the readers not yet sent (`brief send --restart-unsent`).
    RestartUnsent,
    /// Put the failed deliveries back to pending and send them (`brief send --retry-failed`),
    /// finished campaign or not.
    RetryFailed,
}

/// What a request to send means for the issue's campaign.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The issue has no campaign: render its folder and start one.
    Start,
    /// Go on with the unfinished campaign and the message it started with.
    Resume(Campaign),
    /// Render the folder again, store it as the campaign's next revision, and send that to the
    /// readers not yet sent.
    RestartUnsent(Campaign),
    /// Put the `retryable` failed deliveries back to pending, then send as started.
    RetryFailed { campaign: Campaign, retryable: u64 },
    /// Nothing to send: the campaign exists and the request leaves it alone (a start), or it is
    /// finished with no failed delivery to retry.
    Exists(Campaign),
    /// A restart or a retry of an issue that has no campaign.
    NoCampaign,
}

/// What `intent` means for an issue whose campaign is `existing`, of which `retryable` failed
/// deliveries could be sent again (of addresses not suppressed).
pub fn decide(existing: Option<Campaign>, retryable: u64, intent: Intent) -> Decision {
    match (existing, intent) {
        (None, Intent::Start | Intent::StartOrResume) => Decision::Start,
        (None, Intent::RestartUnsent | Intent::RetryFailed) => Decision::NoCampaign,
        (Some(c), Intent::Start) => Decision::Exists(c),
        (Some(c), Intent::RetryFailed) if !c.finished || retryable > 0 => Decision::RetryFailed {
            campaign: c,
            retryable,
        },
        (Some(c), _) if c.finished => Decision::Exists(c),
        (Some(c), Intent::RestartUnsent) => Decision::RestartUnsent(c),
        (Some(c), _) => Decision::Resume(c),
    }
}

/// [`decide`] on what `ledger` holds for issue `id`.
pub fn consider(
    ledger: &crate::ledger::Ledger,
    id: crate::issue::IssueId,
    intent: Intent,
) -> anyhow::Result<Decision> {
    let existing = ledger.campaign(id)?;
    let retryable = match &existing {
        Some(c) if intent == Intent::RetryFailed => ledger.retryable_failed(c.id)?,
        _ => 0,
    };
    Ok(decide(existing, retryable, intent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::IssueId;
    use crate::ledger::{CampaignId, Trigger};

    fn campaign(finished: bool) -> Campaign {
        Campaign {
            id: CampaignId::for_tests(7),
            issue: "2026-12".parse::<IssueId>().unwrap(),
            subject: "BRIEF".into(),
            finished,
            created_at: 0,
            finished_at: finished.then_some(1),
            trigger: Trigger::Cli,
            release_at: None,
            held_at: None,
            hold_reason: None,
            canary_pending: false,
        }
    }

    /// Every intent against every state, the table `brief send`, the schedule and the console
    /// all follow.
    #[test]
    fn each_intent_in_each_state() {
        use Intent::*;
        let (open, done) = (campaign(false), campaign(true));
        assert_eq!(decide(None, 0, Start), Decision::Start);
        assert_eq!(decide(None, 0, StartOrResume), Decision::Start);
        assert_eq!(decide(None, 0, RestartUnsent), Decision::NoCampaign);
        assert_eq!(decide(None, 0, RetryFailed), Decision::NoCampaign);
        // A fire or "Send now" never touches a campaign that exists, finished or not.
        assert_eq!(
            decide(Some(open.clone()), 3, Start),
            Decision::Exists(open.clone())
        );
        assert_eq!(
            decide(Some(done.clone()), 3, Start),
            Decision::Exists(done.clone())
        );
        assert_eq!(
            decide(Some(open.clone()), 0, StartOrResume),
            Decision::Resume(open.clone())
        );
        assert_eq!(
            decide(Some(done.clone()), 0, StartOrResume),
            Decision::Exists(done.clone())
        );
        assert_eq!(
            decide(Some(open.clone()), 0, RestartUnsent),
            Decision::RestartUnsent(open.clone())
        );
        // A finished campaign has no reader left unsent to restart.
        assert_eq!(
            decide(Some(done.clone()), 0, RestartUnsent),
            Decision::Exists(done.clone())
        );
        assert_eq!(
            decide(Some(done.clone()), 2, RetryFailed),
            Decision::RetryFailed {
                campaign: done.clone(),
                retryable: 2
            }
        );
        // Nothing failed: a finished campaign is done; an unfinished one goes on.
        assert_eq!(
            decide(Some(done.clone()), 0, RetryFailed),
            Decision::Exists(done)
        );
        assert_eq!(
            decide(Some(open.clone()), 0, RetryFailed),
            Decision::RetryFailed {
                campaign: open,
                retryable: 0
            }
        );
    }
}
