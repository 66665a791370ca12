//! Readers as the staff console finds them: every address the ledger holds (the subscribers it
//! keeps, the list file's readers once a campaign mailed them, sign-ups, suppressions), each
//! with its own numeric id, searched by part of the address or name and paged; and one
//! reader's whole record: consent, language, every delivery with its reply, every bounce.

use super::audience::*;
use super::base::*;
use super::bounces::BounceKind;

/// A reader's id in the ledger: the console's key for a reader's page. It never changes for
/// an address and names no one outside the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReaderId(pub(super) i64);

impl ReaderId {
    /// The id a URL names (whether a reader has it is the ledger's to say).
    pub fn from_url(n: i64) -> ReaderId {
        ReaderId(n)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ReaderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a reader stands, as the ledger alone can say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderState {
    /// A subscriber the ledger holds, not suppressed.
    Active,
    /// Asked to join, not confirmed yet (the request has not expired).
    Pending,
    Unsubscribed,
    Bounced,
    Complained,
    /// Known only from past deliveries: a reader of the list file when it was last mailed.
    /// Whether the file still has them is the file's to say.
    File,
}

words!(ReaderState {
    Active => "active",
    Pending => "pending",
    Unsubscribed => "unsubscribed",
    Bounced => "bounced",
    Complained => "complained",
    File => "file",
});

/// What [`Ledger::search_readers`] looks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReaderSearch {
    /// Part of the address or of the name, any case; empty: every reader.
    pub text: String,
    /// Only readers in this state.
    pub state: Option<ReaderState>,
    /// Readers to skip (a page times its size).
    pub offset: u64,
    /// Readers to return at most.
    pub limit: u32,
}

/// One reader of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderRow {
    pub id: ReaderId,
    pub address: String,
    pub name: Option<String>,
    pub state: ReaderState,
}

/// A page of readers and how many match in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderPage {
    pub rows: Vec<ReaderRow>,
    pub total: u64,
}

/// One delivery of a reader, as [`ReaderRecord`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderDelivery {
    pub issue: String,
    pub state: State,
    pub attempts: u32,
    pub last_code: Option<u16>,
    pub last_text: Option<String>,
    pub first_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
}

/// One bounce or complaint about a reader's copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderBounce {
    pub issue: String,
    pub kind: BounceKind,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub at: i64,
}

/// Why and when an address is suppressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderSuppression {
    pub reason: Reason,
    /// What suppressed it (`one-click unsubscribe`, a bounce's reply, a staff note).
    pub detail: Option<String>,
    pub at: i64,
}

/// Everything the ledger holds about one reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderRecord {
    pub id: ReaderId,
    pub address: String,
    pub name: Option<String>,
    pub state: ReaderState,
    /// Held as a subscriber by the ledger: when it was added and its consent.
    pub added_at: Option<i64>,
    pub consent: Option<Consent>,
    /// A sign-up request waiting for its confirmation: when it was asked.
    pub pending_since: Option<i64>,
    /// The reader's language as the ledger records it: their own choice, else the one they
    /// were added, confirmed or asked with; `None` when the ledger records none (the list
    /// file's `lang` cell, if any, is the file's to say; else the default language).
    pub lang: Option<Lang>,
    /// When the reader (or staff for them) chose `lang`, if it is a choice.
    pub lang_chosen_at: Option<i64>,
    pub suppression: Option<ReaderSuppression>,
    /// Newest campaign first.
    pub deliveries: Vec<ReaderDelivery>,
    /// Newest first.
    pub bounces: Vec<ReaderBounce>,
}

/// The readers with their state (`?1`: now, for sign-ups that have not expired). A suppressed
/// reader who asked to join again waits for the confirmation: pending, as `brief subscribers
/// list` says.
const READERS_WITH_STATE: &str = "
    SELECT r.id, r.address, coalesce(s.name, r.name) AS name, r.address_key,
        CASE
            WHEN g.address_key IS NOT NULL AND (p.reason IS NOT NULL OR s.address_key IS NULL)
                THEN 'pending'
            WHEN p.reason IS NOT NULL THEN p.reason
            WHEN s.address_key IS NOT NULL THEN 'active'
            ELSE 'file'
        END AS state
    FROM readers r
    LEFT JOIN subscribers s ON s.address_key = r.address_key
    LEFT JOIN suppressions p ON p.address_key = r.address_key
    LEFT JOIN signups g ON g.address_key = r.address_key AND g.expires_at > ?1";

/// `text` as a LIKE pattern that matches it anywhere, its `%`, `_` and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Ledger {
    /// The readers whose address or name contains `search.text` (ASCII letters in any case;
    /// SQLite folds no other), in `search.state` if given, ordered by address (the key, so
    /// the order is stable from page to page), with how many match in all. `now` decides
    /// which sign-up requests are still pending.
    pub fn search_readers(&self, search: &ReaderSearch, now: i64) -> anyhow::Result<ReaderPage> {
        let pattern = contains_pattern(search.text.trim());
        let offset = i64::try_from(search.offset).unwrap_or(i64::MAX);
        let row = |r: &rusqlite::Row<'_>| {
            Ok(ReaderRow {
                id: ReaderId(r.get(0)?),
                address: r.get(1)?,
                name: r.get(2)?,
                state: r.get(3)?,
            })
        };
        let Some(state) = search.state.map(|s| s.as_str()) else {
            // No state asked for: the match and the order need only the readers (and a
            // subscriber's name), so the count and the page's ids come from them alone, and
            // the states are worked out for the page's rows only.
            // The pattern is parameter `?{n}`.
            let matching = |n: u8| {
                format!(
                    "FROM readers r LEFT JOIN subscribers s ON s.address_key = r.address_key
                     WHERE (?{n} = '%%' OR r.address_key LIKE ?{n} ESCAPE '\\'
                            OR coalesce(s.name, r.name) LIKE ?{n} ESCAPE '\\')"
                )
            };
            let total: i64 = self.conn.query_row(
                &format!("SELECT count(*) {}", matching(1)),
                params![pattern],
                |r| r.get(0),
            )?;
            // `READERS_WITH_STATE` takes `now` as ?1, so the pattern is ?2 here.
            let mut st = self.conn.prepare(&format!(
                "SELECT id, address, name, state FROM ({READERS_WITH_STATE})
                 WHERE id IN (SELECT r.id {} ORDER BY r.address_key LIMIT ?3 OFFSET ?4)
                 ORDER BY address_key",
                matching(2)
            ))?;
            let st_rows = st.query_map(params![now, pattern, search.limit, offset], row)?;
            return Ok(ReaderPage {
                rows: st_rows.collect::<Result<_, _>>()?,
                total: total as u64,
            });
        };
        let filter =
            "WHERE (?2 = '%%' OR address_key LIKE ?2 ESCAPE '\\' OR name LIKE ?2 ESCAPE '\\')
                      AND state = ?3";
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM ({READERS_WITH_STATE}) {filter}"),
            params![now, pattern, state],
            |r| r.get(0),
        )?;
        let mut st = self.conn.prepare(&format!(
            "SELECT id, address, name, state FROM ({READERS_WITH_STATE}) {filter}
             ORDER BY address_key LIMIT ?4 OFFSET ?5"
        ))?;
        let rows = st.query_map(params![now, pattern, state, search.limit, offset], row)?;
        Ok(ReaderPage {
            rows: rows.collect::<Result<_, _>>()?,
            total: total as u64,
        })
    }

    /// Adds a subscriber from the staff console, with the consent source staff typed (kept as
    /// `staff: SOURCE`) and its language (`None`: the default); returns its reader id, and
    /// false as the second value when the address was held already (nothing changed then).
    /// The import policy is the caller's.
    pub fn add_subscriber_by_staff(
        &mut self,
        address: &Address,
        name: Option<&str>,
        lang: Option<&Lang>,
        source: &str,
        now: i64,
    ) -> anyhow::Result<(ReaderId, bool)> {
        let key = AddressKey::of(address);
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO subscribers (address_key, address, name, added_at, source, lang)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                key.as_str(),
                address.as_ref() as &str,
                name,
                now,
                format!("staff: {source}"),
                lang
            ],
        )? == 1;
        let id = self
            .reader_id(&key)?
            .context("a subscriber the ledger holds has a reader id")?;
        Ok((id, added))
    }

    /// The id of the reader of `key`, if the ledger holds the address.
    pub fn reader_id(&self, key: &AddressKey) -> anyhow::Result<Option<ReaderId>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM readers WHERE address_key = ?1",
                [key.as_str()],
                |r| r.get(0).map(ReaderId),
            )
            .optional()?)
    }

    /// Everything the ledger holds about the reader `id`: `None` when no reader has it (never
    /// had it, or was forgotten).
    pub fn reader(&self, id: ReaderId, now: i64) -> anyhow::Result<Option<ReaderRecord>> {
        let head = self
            .conn
            .query_row(
                &format!("SELECT id, address, name, address_key, state FROM ({READERS_WITH_STATE}) WHERE id = ?2"),
                params![now, id.0],
                |r| {
                    Ok((
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, ReaderState>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((address, name, key, state)) = head else {
            return Ok(None);
        };
        let held: Option<(i64, Consent, Option<Lang>)> = self
            .conn
            .query_row(
                "SELECT added_at, source, requested_at, confirmed_at, lang FROM subscribers
                 WHERE address_key = ?1",
                [&key],
                |r| {
                    Ok((
                        r.get(0)?,
                        Consent {
                            source: r.get(1)?,
                            requested_at: r.get(2)?,
                            confirmed_at: r.get(3)?,
                        },
                        r.get(4)?,
                    ))
                },
            )
            .optional()?;
        let pending: Option<(i64, Option<Lang>)> = self
            .conn
            .query_row(
                "SELECT requested_at, lang FROM signups WHERE address_key = ?1 AND expires_at > ?2",
                params![key, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let chosen: Option<(Lang, i64)> = self
            .conn
            .query_row(
                "SELECT lang, at FROM language_choices WHERE address_key = ?1",
                [&key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let suppression = self
            .conn
            .query_row(
                "SELECT reason, detail, at FROM suppressions WHERE address_key = ?1",
                [&key],
                |r| {
                    Ok(ReaderSuppression {
                        reason: r.get(0)?,
                        detail: r.get(1)?,
                        at: r.get(2)?,
                    })
                },
            )
            .optional()?;
        let deliveries = {
            let mut st = self.conn.prepare(
                "SELECT c.issue, d.state, d.attempts, d.last_code, d.last_text,
                        d.first_attempt_at, d.last_attempt_at
                 FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
                 WHERE d.address_key = ?1 ORDER BY c.created_at DESC, c.id DESC",
            )?;
            let rows = st.query_map([&key], |r| {
                Ok(ReaderDelivery {
                    issue: r.get(0)?,
                    state: r.get(1)?,
                    attempts: r.get(2)?,
                    last_code: r.get(3)?,
                    last_text: r.get(4)?,
                    first_attempt_at: r.get(5)?,
                    last_attempt_at: r.get(6)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        let bounces = {
            let mut st = self.conn.prepare(
                "SELECT c.issue, b.kind, b.status, b.diagnostic, b.at
                 FROM bounces b JOIN deliveries d ON d.id = b.delivery_id
                 JOIN campaigns c ON c.id = d.campaign_id
                 WHERE d.address_key = ?1 ORDER BY b.at DESC, b.id DESC",
            )?;
            let rows = st.query_map([&key], |r| {
                Ok(ReaderBounce {
                    issue: r.get(0)?,
                    kind: r.get(1)?,
                    status: r.get(2)?,
                    diagnostic: r.get(3)?,
                    at: r.get(4)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        let (added_at, consent, held_lang) = match held {
            Some((at, c, l)) => (Some(at), Some(c), l),
            None => (None, None, None),
        };
        let (pending_since, pending_lang) = match pending {
            Some((at, l)) => (Some(at), l),
            None => (None, None),
        };
        let lang_chosen_at = chosen.as_ref().map(|(_, at)| *at);
        let lang = chosen.map(|(l, _)| l).or(held_lang).or(pending_lang);
        Ok(Some(ReaderRecord {
            id,
            address,
            name,
            state,
            added_at,
            consent,
            pending_since,
            lang,
            lang_chosen_at,
            suppression,
            deliveries,
            bounces,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::bounces::{BounceTarget, Evidence, NewBounce};
    use crate::ledger::campaigns::kit::message;
    use crate::ledger::campaigns::Trigger;
    use crate::ledger::deliveries::Attempt;

    fn search(l: &Ledger, text: &str, state: Option<ReaderState>, offset: u64) -> ReaderPage {
        l.search_readers(
            &ReaderSearch {
                text: text.into(),
                state,
                offset,
                limit: 2,
            },
            100,
        )
        .unwrap()
    }

    fn addresses(p: &ReaderPage) -> Vec<&str> {
        p.rows.iter().map(|r| r.address.as_str()).collect()
    }

    #[test]
    fn readers_are_found_by_part_of_address_or_name_in_any_case_and_paged_in_a_stable_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        l.add_subscriber(&addr("Ana@Example.org"), Some("Ana García"), None, 1)
            .unwrap();
        l.add_subscriber(&addr("bo@example.net"), Some("Bo"), None, 2)
            .unwrap();
        l.add_subscriber(&addr("cy@example.org"), None, None, 3)
            .unwrap();
        l.suppress(
            &addr("cy@example.org"),
            Reason::Unsubscribed,
            "one-click unsubscribe",
            4,
        )
        .unwrap();
        // Known only from a campaign: a reader of the list file.
        let (c, _) = l
            .create_campaign(
                "2026-11".parse().unwrap(),
                &[message("s")],
                Trigger::Cli,
                Millis(5),
                None,
                |sink| {
                    sink.add(&addr("dee@example.org"), Some("Dee 100%"), "m1", None)?;
                    sink.add(&addr("ana@example.org"), None, "m2", None)?;
                    Ok(())
                },
            )
            .unwrap();
        l.request_signup(
            &Asking {
                address: &addr("eve@example.org"),
                name: None,
                lang: None,
                forget_hash: "h",
            },
            Millis(6),
            Duration::from_millis(1_000),
            Duration::from_millis(1),
        )
        .unwrap();

        let all = search(&l, "", None, 0);
        assert_eq!(all.total, 5);
        assert_eq!(addresses(&all), ["Ana@Example.org", "bo@example.net"]);
        assert_eq!(
            addresses(&search(&l, "", None, 2)),
            ["cy@example.org", "dee@example.org"]
        );
        assert_eq!(addresses(&search(&l, "", None, 4)), ["eve@example.org"]);
        // Part of the address or the name, any case; the search's % is a percent sign.
        assert_eq!(addresses(&search(&l, "EXAMPLE.ORG", None, 0)).len(), 2);
        assert_eq!(search(&l, "EXAMPLE.ORG", None, 0).total, 4);
        assert_eq!(addresses(&search(&l, "garc", None, 0)), ["Ana@Example.org"]);
        assert_eq!(addresses(&search(&l, "0%", None, 0)), ["dee@example.org"]);
        assert_eq!(search(&l, "a%b", None, 0).total, 0);
        assert_eq!(search(&l, "_", None, 0).total, 0);
        // Each state.
        let states: Vec<_> = all
            .rows
            .iter()
            .chain(search(&l, "", None, 2).rows.iter())
            .chain(search(&l, "", None, 4).rows.iter())
            .map(|r| r.state)
            .collect();
        assert_eq!(
            states,
            [
                ReaderState::Active,
                ReaderState::Active,
                ReaderState::Unsubscribed,
                ReaderState::File,
                ReaderState::Pending
            ]
        );
        let file = search(&l, "", Some(ReaderState::File), 0);
        assert_eq!((file.total, addresses(&file)), (1, vec!["dee@example.org"]));
        assert_eq!(
            search(&l, "bo", Some(ReaderState::Unsubscribed), 0).total,
            0
        );
        // An expired request is no longer pending.
        let later = l
            .search_readers(
                &ReaderSearch {
                    state: Some(ReaderState::Pending),
                    limit: 10,
                    ..ReaderSearch::default()
                },
                2_000,
            )
            .unwrap();
        assert_eq!(later.total, 0);

        // Ids stay what they were when another reader is forgotten (forget rebuilds the file).
        let dee = file.rows[0].id;
        let ana = all.rows[0].id;
        let bo = l
            .reader_id(&AddressKey::from_text("BO@example.net"))
            .unwrap();
        assert_eq!(bo, Some(all.rows[1].id));
        l.forget(&AddressKey::from_text("bo@example.net"), "hash-bo", 7)
            .unwrap();
        assert_eq!(l.reader(all.rows[1].id, 100).unwrap(), None);
        assert_eq!(search(&l, "", None, 0).total, 4);
        assert_eq!(
            l.reader(dee, 100).unwrap().unwrap().address,
            "dee@example.org"
        );
        assert_eq!(
            l.reader(ana, 100).unwrap().unwrap().address,
            "Ana@Example.org"
        );
        drop(c);
    }

    #[test]
    fn a_readers_record_holds_consent_every_delivery_and_bounce_and_the_unsubscribe() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let ana = addr("ana@example.org");
        l.confirm_signup(
            &Confirming {
                address: &ana,
                name: Some("Ana"),
                lang: None,
                forget_hash: "h",
                requested_at: Millis(10),
            },
            Millis(20),
        )
        .unwrap();
        let mut campaigns = Vec::new();
        for (issue, at) in [("2026-10", 30), ("2026-11", 40)] {
            let (c, _) = l
                .create_campaign(
                    issue.parse().unwrap(),
                    &[message("s")],
                    Trigger::Cli,
                    Millis(at),
                    None,
                    |sink| {
                        sink.add(&ana, Some("Ana"), &format!("m-{issue}"), None)?;
                        Ok(())
                    },
                )
                .unwrap();
            campaigns.push(c);
        }
        l.claim_due(campaigns[0].id, 10, 31).unwrap();
        l.record(
            campaigns[0].id,
            &[Attempt {
                address: "ana@example.org".into(),
                key: AddressKey::of(&ana),
                state: State::Sent,
                code: Some(250),
                text: "250 2.0.0 queued as 7".into(),
                next_at: None,
                possible_duplicate: false,
                suppress: false,
                at: 32,
            }],
        )
        .unwrap();
        let delivery: i64 = l
            .conn
            .query_row(
                "SELECT id FROM deliveries WHERE campaign_id = ?1",
                [campaigns[0].id],
                |r| r.get(0),
            )
            .unwrap();
        l.record_bounce(
            &BounceTarget {
                delivery,
                campaign: campaigns[0].id,
                issue: "2026-10".into(),
                address: "ana@example.org".into(),
            },
            &NewBounce {
                kind: BounceKind::Soft,
                evidence: Evidence::Tag,
                report_key: "r1",
                status: Some("4.2.2"),
                diagnostic: Some("452 mailbox full"),
                reporting_mta: None,
                at: 35,
            },
            3,
        )
        .unwrap();
        l.suppress(&ana, Reason::Unsubscribed, "one-click unsubscribe", 50)
            .unwrap();

        let id = l.reader_id(&AddressKey::of(&ana)).unwrap().unwrap();
        let r = l.reader(id, 60).unwrap().unwrap();
        assert_eq!(
            (r.address.as_str(), r.name.as_deref()),
            ("ana@example.org", Some("Ana"))
        );
        assert_eq!(r.state, ReaderState::Unsubscribed);
        assert_eq!(r.added_at, Some(20));
        let c = r.consent.unwrap();
        assert_eq!(
            (c.source.as_str(), c.requested_at, c.confirmed_at),
            ("form", Some(10), Some(20))
        );
        assert_eq!(r.pending_since, None);
        let s = r.suppression.unwrap();
        assert_eq!(
            (s.reason, s.detail.as_deref(), s.at),
            (Reason::Unsubscribed, Some("one-click unsubscribe"), 50)
        );
        let d: Vec<_> = r
            .deliveries
            .iter()
            .map(|d| {
                (
                    d.issue.as_str(),
                    d.state,
                    d.attempts,
                    d.last_code,
                    d.last_attempt_at,
                )
            })
            .collect();
        assert_eq!(
            d,
            [
                ("2026-11", State::Pending, 0, None, None),
                ("2026-10", State::Sent, 1, Some(250), Some(32)),
            ]
        );
        assert_eq!(
            r.deliveries[1].last_text.as_deref(),
            Some("250 2.0.0 queued as 7")
        );
        assert_eq!(
            r.bounces,
            [ReaderBounce {
                issue: "2026-10".into(),
                kind: BounceKind::Soft,
                status: Some("4.2.2".into()),
                diagnostic: Some("452 mailbox full".into()),
                at: 35,
            }]
        );
        assert_eq!(
            l.reader(ReaderId::from_url(id.get() + 100), 60).unwrap(),
            None
        );
    }
}
