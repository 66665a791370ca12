//! Staff: sign-in links used, sessions, and test sends.

use super::base::*;

/// A new staff session (see [`Ledger::sign_in_staff`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStaffSession<'a> {
    /// The random id of the sign-in link used, and when that link expires.
    pub link_id: &'a str,
    pub link_expires_at: i64,
    /// The hash of the session id (the id itself stays in the staff member's cookie).
    pub id_hash: &'a str,
    pub address: &'a str,
    pub expires_at: i64,
}

impl Ledger {
    /// Marks a sign-in link used and opens its session, in one transaction: `false` (and no
    /// session) when the link was used before. Expired links and sessions are deleted on the way.
    pub fn sign_in_staff(&mut self, s: &NewStaffSession<'_>, now: i64) -> anyhow::Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM staff_links_used WHERE expires_at <= ?1", [now])?;
        tx.execute("DELETE FROM staff_sessions WHERE expires_at <= ?1", [now])?;
        let fresh = tx.execute(
            "INSERT OR IGNORE INTO staff_links_used (id, used_at, expires_at) VALUES (?1, ?2, ?3)",
            params![s.link_id, now, s.link_expires_at],
        )?;
        if fresh == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO staff_sessions (id_hash, address, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![s.id_hash, s.address, now, s.expires_at],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The staff address of the session whose id hashes to `id_hash`, if it has not expired
    /// by `now`.
    pub fn staff_session(&self, id_hash: &str, now: i64) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT address FROM staff_sessions WHERE id_hash = ?1 AND expires_at > ?2",
                params![id_hash, now],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Ends the session whose id hashes to `id_hash`; `false` if there was none.
    pub fn end_staff_session(&mut self, id_hash: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM staff_sessions WHERE id_hash = ?1", [id_hash])?
            > 0)
    }

    /// Records one test-send reply (kept apart from every campaign).
    pub fn record_test_send(
        &mut self,
        issue: IssueId,
        address: &Address,
        code: Option<u16>,
        text: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO test_sends (issue, address, code, text, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![issue.to_string(), address.as_ref() as &str, code, text, now],
        )?;
        Ok(())
    }

    /// How many test sends were recorded for `issue`.
    pub fn test_send_count(&self, issue: IssueId) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM test_sends WHERE issue = ?1",
            [issue.to_string()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_link_opens_one_session_and_sessions_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let s = NewStaffSession {
            link_id: "link-1",
            link_expires_at: 1_000,
            id_hash: "hash-1",
            address: "editor@example.org",
            expires_at: 5_000,
        };
        assert!(l.sign_in_staff(&s, 100).unwrap());
        assert_eq!(
            l.staff_session("hash-1", 200).unwrap().as_deref(),
            Some("editor@example.org")
        );
        // The same link again: refused, and no second session.
        let again = NewStaffSession {
            id_hash: "hash-2",
            ..s.clone()
        };
        assert!(!l.sign_in_staff(&again, 300).unwrap());
        assert_eq!(l.staff_session("hash-2", 300).unwrap(), None);
        // Past its expiry a session opens nothing, and it is deleted at the next sign-in.
        assert_eq!(l.staff_session("hash-1", 5_000).unwrap(), None);
        let other = NewStaffSession {
            link_id: "link-2",
            link_expires_at: 7_000,
            id_hash: "hash-3",
            ..s.clone()
        };
        assert!(l.sign_in_staff(&other, 6_000).unwrap());
        let n: i64 = l
            .conn
            .query_row("SELECT count(*) FROM staff_sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(l.end_staff_session("hash-3").unwrap());
        assert!(!l.end_staff_session("hash-3").unwrap());
        assert_eq!(l.staff_session("hash-3", 6_001).unwrap(), None);
    }
}
