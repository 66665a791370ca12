//! The console's activity log: who did what and when, newest first.

use super::base::*;

/// What a staff member did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SignIn,
    TestSend,
    SendNow,
    Hold,
    Release,
    FetchFeeds,
    AddReader,
    UnsubscribeReader,
    ResendConfirmation,
    ForgetReader,
    Import,
    /// Changed a reader's language.
    SetLanguage,
}

words!(Action {
    SignIn => "sign_in",
    TestSend => "test_send",
    SendNow => "send_now",
    Hold => "hold",
    Release => "release",
    FetchFeeds => "fetch_feeds",
    AddReader => "add_reader",
    UnsubscribeReader => "unsubscribe_reader",
    ResendConfirmation => "resend_confirmation",
    ForgetReader => "forget_reader",
    Import => "import",
    SetLanguage => "set_language",
});

/// One thing a staff member did: `subject` is what it was done to (an issue id, a reader's
/// number, a file name), never a reader's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityRow {
    pub id: i64,
    pub at: i64,
    pub staff: String,
    pub action: Action,
    pub subject: String,
    pub detail: String,
}

impl Ledger {
    /// Records that `staff` did `action` to `subject` at `at`.
    pub fn record_activity(
        &mut self,
        at: i64,
        staff: &str,
        action: Action,
        subject: &str,
        detail: &str,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO activity (at, staff, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![at, staff, action, subject, detail],
        )?;
        Ok(())
    }

    /// Up to `limit` entries of the log, newest first, older than entry `before` if given.
    pub fn activity(&self, before: Option<i64>, limit: u32) -> anyhow::Result<Vec<ActivityRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, staff, action, subject, detail FROM activity
             WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![before.unwrap_or(i64::MAX), limit], |r| {
            Ok(ActivityRow {
                id: r.get(0)?,
                at: r.get(1)?,
                staff: r.get(2)?,
                action: r.get(3)?,
                subject: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_reads_newest_first_in_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        for (i, a) in [Action::SignIn, Action::TestSend, Action::SendNow]
            .iter()
            .enumerate()
        {
            l.record_activity(i as i64, "editor@example.org", *a, "2021-07", "")
                .unwrap();
        }
        let page = l.activity(None, 2).unwrap();
        let actions: Vec<Action> = page.iter().map(|r| r.action).collect();
        assert_eq!(actions, [Action::SendNow, Action::TestSend]);
        let rest = l.activity(Some(page[1].id), 2).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            (rest[0].action, rest[0].at, rest[0].subject.as_str()),
            (Action::SignIn, 0, "2021-07")
        );
        // The words survive a round trip through the file.
        drop(l);
        let l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        assert_eq!(l.activity(None, 10).unwrap().len(), 3);
    }
}
