//! The mails that tell staff how a send went: one when a campaign finishes, one a day later
//! with the bounces, complaints and unsubscribes that came back since.
//!
//! Which summaries went out is in the ledger (`summary_at`, `followup_at` of each campaign),
//! and a summary is claimed there before it is mailed, so each goes out at most once whoever
//! finishes the campaign (`brief send`, the daemon) and whenever the daemon restarts. The
//! daemon looks for due summaries every minute; `brief send` mails the first one itself. A
//! summary is a notice (`notices`): what the relay does not take is tried again for a day.

use std::time::Duration;

use url::Url;

use crate::clock::Millis;
use crate::ledger::{Campaign, NoticeKind, SummaryFacts, SummaryKind};
use crate::notices::{Report, Sender, Tried};
use crate::timing::Pace;

/// How long after a campaign finishes its second summary is mailed.
pub const FOLLOW_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A summary mail, before it is rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub paragraphs: Vec<String>,
    /// The console's page of the campaign.
    pub link: Url,
}

/// The summary of `campaign` of this kind, from `facts` (pure: no I/O).
pub fn compose(
    kicker: &str,
    public_url: &Url,
    campaign: &Campaign,
    kind: SummaryKind,
    facts: &SummaryFacts,
    canaries: usize,
) -> Composed {
    let id = campaign.issue;
    let n = &facts.counts;
    let subject = match kind {
        SummaryKind::AtFinish => format!(
            "Summary: {kicker} {id} sent to {} reader{}",
            n.sent,
            plural(n.sent)
        ),
        SummaryKind::FollowUp => format!("Summary a day later: {kicker} {id}"),
    };
    let mut paragraphs = Vec::new();
    paragraphs.push(match kind {
        SummaryKind::AtFinish => format!(
            "Issue {id} (\"{}\") has finished sending.",
            campaign.subject
        ),
        SummaryKind::FollowUp => format!(
            "What came back in the day since issue {id} (\"{}\") finished sending.",
            campaign.subject
        ),
    });
    paragraphs.push(format!(
        "Sent: {}\nFailed: {}\nSuppressed: {}\nDeferred: {}",
        n.sent, n.failed, n.suppressed, n.deferred
    ));
    if let Some(split) = crate::report::by_language(&facts.by_language) {
        paragraphs.push(format!("By language: {split}"));
    }
    if let Some(end) = campaign.finished_at {
        let pace = Pace::of(campaign.created_at, facts.first_attempt, end, n.sent);
        if let (Some(duration), Some(rate)) = (pace.readers_duration(), pace.rate()) {
            paragraphs.push(format!("Duration: {duration}\nRate: {rate}"));
        }
    }
    if kind == SummaryKind::FollowUp {
        let b = &facts.bounces;
        paragraphs.push(format!(
            "Hard bounces: {}\nSoft bounces: {}\nBlocked (policy or content, nobody \
             suppressed): {}\nComplaints: {}\nUnsubscribes: {}",
            b.hard, b.soft, b.blocked, b.complaints, b.unsubscribes
        ));
    }
    if facts.failures.is_empty() {
        paragraphs.push("No failure replies.".to_string());
    } else {
        let mut p = String::from("Top failure replies:");
        for (code, text, count) in &facts.failures {
            let reply = match code {
                Some(c) if !text.starts_with(&c.to_string()) => format!("{c} {text}"),
                _ => text.clone(),
            };
            p.push_str(&format!("\n{count} x {}", crate::issue::one_line(&reply)));
        }
        paragraphs.push(p);
    }
    if canaries > 0 && kind == SummaryKind::AtFinish {
        paragraphs.push(format!(
            "The canary went to {canaries} staff address{} before the readers (not counted above).",
            if canaries == 1 { "" } else { "es" }
        ));
    }
    let link = public_url
        .join(&format!("admin/campaigns/{id}"))
        .expect("an issue id is a valid path");
    Composed {
        subject,
        paragraphs,
        link,
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Mails every summary that is due now to `[server] staff`, each claimed in the ledger first
/// so it is made once, then queued as notices and tried at once (what the relay does not
/// take is tried again later, see `notices`); returns how many were made. Does nothing under
/// `[schedule] summary = false` or without staff.
pub async fn mail_due(sender: &Sender<'_>) -> anyhow::Result<usize> {
    let (app, ledger) = (sender.app, sender.ledger);
    if !app.config.schedule.summary || app.config.server.staff.is_empty() {
        return Ok(0);
    }
    let now = app.clock.now_ms();
    let due = ledger
        .with(move |l| l.due_summaries(Millis(now), FOLLOW_UP_AFTER))
        .await?;
    let mut mailed = 0;
    for (campaign, kind) in due {
        let (cid, issue) = (campaign.id, campaign.issue);
        let claimed = ledger
            .with(move |l| {
                if !l.claim_summary(cid, kind, now)? {
                    return Ok(None);
                }
                Ok(Some((
                    l.summary_facts(&campaign)?,
                    // Staff addresses, not copies: each got one per language.
                    l.canary_sends(cid)?
                        .iter()
                        .map(|s| s.address.to_lowercase())
                        .collect::<std::collections::HashSet<_>>()
                        .len(),
                    campaign,
                )))
            })
            .await?;
        let Some((facts, canaries, campaign)) = claimed else {
            continue;
        };
        let c = compose(
            &app.config.newsletter.kicker,
            &app.config.server.public_url,
            &campaign,
            kind,
            &facts,
            canaries,
        );
        let sent = crate::staff::mail_staff(
            sender,
            NoticeKind::Summary,
            Some(cid),
            Report {
                subject: &c.subject,
                paragraphs: &c.paragraphs,
                button: "Open the campaign",
                link: &c.link,
            },
        )
        .await;
        let tried = match sent {
            Ok(r) => r,
            Err(e) => {
                ledger.with(move |l| l.unclaim_summary(cid, kind)).await?;
                return Err(e);
            }
        };
        if tried.iter().any(|t| t.reply.accepted) {
            tracing::info!(issue = %issue, ?kind, "summary mailed to staff");
        } else if tried.iter().any(Tried::retried) {
            tracing::warn!(issue = %issue, ?kind, "the summary was not accepted yet: it is queued and tried again");
        } else {
            // Each try has logged its refusal; a 5xx is final, so nothing waits in the queue.
            tracing::error!(issue = %issue, ?kind, "the summary mail to staff failed: every staff address refused it");
        }
        mailed += 1;
    }
    Ok(mailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Counts, SummaryBounces, Trigger};

    fn campaign() -> Campaign {
        Campaign {
            id: crate::ledger::CampaignId::for_tests(1),
            issue: "2021-07".parse().unwrap(),
            subject: "BRIEF 07.23.21".into(),
            finished: true,
            created_at: 0,
            finished_at: Some(125_000),
            trigger: Trigger::Schedule,
            release_at: None,
            held_at: None,
            hold_reason: None,
            canary_pending: false,
        }
    }

    #[test]
    fn the_summary_names_counts_rate_failures_and_the_campaign_page() {
        let facts = SummaryFacts {
            counts: Counts {
                sent: 240,
                failed: 3,
                suppressed: 2,
                ..Counts::default()
            },
            first_attempt: Some(5_000),
            failures: vec![
                (Some(550), "5.1.1 no such user".into(), 2),
                (Some(554), "554 5.7.1 rejected".into(), 1),
            ],
            bounces: SummaryBounces::default(),
            by_language: vec![
                (
                    Some("en".into()),
                    Counts {
                        sent: 140,
                        failed: 3,
                        suppressed: 2,
                        ..Counts::default()
                    },
                ),
                (
                    Some("es".into()),
                    Counts {
                        sent: 100,
                        ..Counts::default()
                    },
                ),
            ],
        };
        let url = Url::parse("https://news.example.org/").unwrap();
        let c = compose("BRIEF", &url, &campaign(), SummaryKind::AtFinish, &facts, 1);
        assert_eq!(c.subject, "Summary: BRIEF 2021-07 sent to 240 readers");
        let text = c.paragraphs.join("\n\n");
        for want in [
            "Sent: 240\nFailed: 3\nSuppressed: 2\nDeferred: 0",
            "Duration: 2m\nRate: 2.0 messages a second",
            "2 x 550 5.1.1 no such user",
            "1 x 554 5.7.1 rejected",
            "By language: en 140 sent (3 failed, 2 suppressed), es 100 sent",
            "The canary went to 1 staff address before the readers",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        assert!(!text.contains("Hard bounces"), "{text}");
        assert_eq!(
            c.link.as_str(),
            "https://news.example.org/admin/campaigns/2021-07"
        );
    }

    #[test]
    fn the_follow_up_adds_what_came_back() {
        let facts = SummaryFacts {
            counts: Counts {
                sent: 1,
                ..Counts::default()
            },
            first_attempt: Some(124_500),
            failures: Vec::new(),
            bounces: SummaryBounces {
                hard: 4,
                soft: 1,
                complaints: 2,
                blocked: 3,
                unsubscribes: 7,
            },
            by_language: Vec::new(),
        };
        let url = Url::parse("https://news.example.org/brief/").unwrap();
        let c = compose("BRIEF", &url, &campaign(), SummaryKind::FollowUp, &facts, 1);
        assert_eq!(c.subject, "Summary a day later: BRIEF 2021-07");
        let text = c.paragraphs.join("\n\n");
        for want in [
            "Hard bounces: 4\nSoft bounces: 1\nBlocked (policy or content, nobody suppressed): 3\n\
             Complaints: 2\nUnsubscribes: 7",
            "Duration: under a second",
            "No failure replies.",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        assert!(!text.contains("canary"), "{text}");
        assert!(!text.contains("By language"), "{text}");
        assert_eq!(
            c.link.as_str(),
            "https://news.example.org/brief/admin/campaigns/2021-07"
        );
    }
}
