//! The audience: suppressions, subscribers held in the database, sign-ups and consent, the
//! readers' own language choices, confirmation sends, rate limits, and forgetting an address.

use super::base::*;

/// Why an address is on the suppression list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Unsubscribed,
    Bounced,
    /// The reader marked a message as spam.
    Complained,
}

words!(Reason {
    Unsubscribed => "unsubscribed",
    Bounced => "bounced",
    Complained => "complained",
});

/// One suppressed address, as [`Ledger::recent_suppressions`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressionRow {
    pub address: String,
    pub reason: Reason,
    pub detail: Option<String>,
    pub at: i64,
}

/// A sign-up request, as [`Ledger::request_signup`] takes it.
#[derive(Clone, Copy, Debug)]
pub struct Asking<'a> {
    pub address: &'a Address,
    pub name: Option<&'a str>,
    /// The language the reader asked in (a configured one).
    pub lang: Option<&'a Lang>,
    /// The address's keyed hash ([`crate::token::TokenKey::forget_hash`]).
    pub forget_hash: &'a str,
}

/// A confirmation link's request, as [`Ledger::confirm_signup`] takes it: named fields, so the
/// time of the request cannot trade places with the time of the confirmation.
#[derive(Clone, Copy, Debug)]
pub struct Confirming<'a> {
    pub address: &'a Address,
    pub name: Option<&'a str>,
    /// The language the link carries (`None` for a link made before brief recorded one).
    pub lang: Option<&'a Lang>,
    /// The address's keyed hash ([`crate::token::TokenKey::forget_hash`]).
    pub forget_hash: &'a str,
    /// When the request was made (the link carries it).
    pub requested_at: Millis,
}

/// What [`Ledger::forget`] erased, in rows per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forgot {
    pub subscribers: u64,
    pub signups: u64,
    pub suppressions: u64,
    pub test_sends: u64,
    pub confirmation_sends: u64,
    /// Deliveries of past campaigns made anonymous.
    pub deliveries: u64,
    /// The address had been forgotten before.
    pub already: bool,
    /// The file was rebuilt and the WAL emptied, so no copy of the erased rows is left on disk.
    pub scrubbed: bool,
}

/// A subscriber held in the database (added with `brief subscribers add` or `import`).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSubscriber {
    pub address: String,
    pub name: Option<String>,
    /// The language it was added or confirmed with, as recorded (see [`crate::subscribers::Subscriber::lang`]).
    pub lang: Option<Lang>,
}

/// What became of a sign-up request (see [`Ledger::request_signup`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupRequest {
    /// Noted: mail the confirmation now.
    Mail,
    /// A confirmation went to this address less than the minimum gap ago: none now.
    TooSoon,
    /// The address was forgotten at its owner's request: nothing noted, nothing to send.
    Forgotten,
}

/// What became of a confirmation (see [`Ledger::confirm_signup`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The address is active now.
    Subscribed,
    /// It was active with its consent already: nothing changed.
    Already,
    /// The address was forgotten at its owner's request: nothing changed.
    Forgotten,
    /// The request is not newer than the address's suppression (an unsubscribe, bounce or
    /// complaint since it was made): nothing changed, consent moves forward only.
    Outdated(Reason),
}

/// A sign-up waiting for its confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signup {
    pub address: String,
    pub name: Option<String>,
    /// The language the reader asked in, when recorded.
    pub lang: Option<Lang>,
    pub requested_at: i64,
    pub expires_at: i64,
}

/// How a subscriber held in the database came to be there, and their consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    /// `staff` (`subscribers add` or `import`) or `form` (confirmed by the reader).
    pub source: String,
    pub requested_at: Option<i64>,
    pub confirmed_at: Option<i64>,
}

impl Ledger {
    /// The latest `limit` suppressions (unsubscribes, bounces, complaints), newest first.
    pub fn recent_suppressions(&self, limit: u32) -> anyhow::Result<Vec<SuppressionRow>> {
        let mut st = self.conn.prepare(
            "SELECT address, reason, detail, at FROM suppressions ORDER BY at DESC, rowid DESC LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| {
            Ok(SuppressionRow {
                address: r.get(0)?,
                reason: r.get(1)?,
                detail: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Puts `address` on the suppression list; returns false when it already was.
    pub fn suppress(
        &mut self,
        address: &Address,
        reason: Reason,
        detail: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO suppressions (address_key, address, reason, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![AddressKey::of(address).as_str(), address.as_ref() as &str, reason, detail, now],
        )? == 1)
    }

    /// Why the address of `key` is suppressed, if it is.
    pub fn suppression(&self, key: &AddressKey) -> anyhow::Result<Option<Reason>> {
        Ok(self
            .conn
            .query_row(
                "SELECT reason FROM suppressions WHERE address_key = ?1",
                [key.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Adds a subscriber held in the database, with the language it was given (`None`: the
    /// default); returns false when the address was there (nothing changes then).
    pub fn add_subscriber(
        &mut self,
        address: &Address,
        name: Option<&str>,
        lang: Option<&Lang>,
        now: i64,
    ) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO subscribers (address_key, address, name, added_at, lang) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![AddressKey::of(address).as_str(), address.as_ref() as &str, name, now, lang],
        )? == 1)
    }

    /// Records `lang` as the language the reader of `key` chose (with the switch link in an
    /// issue, or staff for them) at `now`: it applies to the address wherever it is listed (the
    /// list file included) over the language the list recorded, until the reader's next word.
    /// True when the record changed (false: that was the choice already).
    pub fn set_language(
        &mut self,
        key: &AddressKey,
        lang: &Lang,
        now: i64,
    ) -> anyhow::Result<bool> {
        Ok(self.conn.execute(
            "INSERT INTO language_choices (address_key, lang, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (address_key) DO UPDATE SET lang = ?2, at = ?3 WHERE lang <> ?2",
            params![key.as_str(), lang, now],
        )? == 1)
    }

    /// The language the reader of `key` chose, if they chose one.
    pub fn language_choice(&self, key: &AddressKey) -> anyhow::Result<Option<Lang>> {
        Ok(self
            .conn
            .query_row(
                "SELECT lang FROM language_choices WHERE address_key = ?1",
                [key.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every reader's own language choice, by address key: read once for a whole list (only
    /// readers who chose are in it).
    pub fn language_choices(&self) -> anyhow::Result<HashMap<AddressKey, Lang>> {
        let mut st = self
            .conn
            .prepare("SELECT address_key, lang FROM language_choices")?;
        let rows = st.query_map([], |r| {
            Ok((AddressKey::from_text(&r.get::<_, String>(0)?), r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `key` is a subscriber held in the database.
    pub fn is_stored_subscriber(&self, key: &AddressKey) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM subscribers WHERE address_key = ?1",
                [key.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The subscribers held in the database, in the order they were added.
    pub fn stored_subscribers(&self) -> anyhow::Result<Vec<StoredSubscriber>> {
        let mut st = self
            .conn
            .prepare("SELECT address, name, lang FROM subscribers ORDER BY added_at, rowid")?;
        let rows = st.query_map([], |r| {
            Ok(StoredSubscriber {
                address: r.get(0)?,
                name: r.get(1)?,
                lang: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Notes that `request.address` asked to subscribe at `now` (a request that lasts `ttl`),
    /// with its name and language, unless the relay accepted a confirmation to it less than
    /// `min_gap` ago, or it was forgotten. A new request replaces an older one of the same
    /// address.
    pub fn request_signup(
        &mut self,
        request: &Asking<'_>,
        now: Millis,
        ttl: Duration,
        min_gap: Duration,
    ) -> anyhow::Result<SignupRequest> {
        let Asking {
            address,
            name,
            lang,
            forget_hash,
        } = *request;
        let expires_at = now.after(ttl).0;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if forgotten_in(&tx, forget_hash)? {
            return Ok(SignupRequest::Forgotten);
        }
        let key = AddressKey::of(address);
        let mailed: Option<Option<i64>> = tx
            .query_row(
                "SELECT mailed_at FROM signups WHERE address_key = ?1",
                [key.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(Some(at)) = mailed {
            if now.since(Millis(at)) < min_gap {
                return Ok(SignupRequest::TooSoon);
            }
        }
        tx.execute(
            // `mailed_at`, the rate mark, is set when the relay accepts the confirmation
            // ([`Ledger::record_notice`]), not here: a refused one does not stop the next ask.
            "INSERT INTO signups (address_key, address, name, requested_at, expires_at, lang)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (address_key) DO UPDATE SET address = ?2, name = ?3, requested_at = ?4,
                 expires_at = ?5, lang = ?6",
            params![
                key.as_str(),
                address.as_ref() as &str,
                name,
                now.0,
                expires_at,
                lang
            ],
        )?;
        tx.commit()?;
        Ok(SignupRequest::Mail)
    }

    /// Makes the address of a confirmed request an active subscriber held in the database,
    /// with its consent: the time of the request, of the confirmation, and the source `form`.
    /// A confirmed request lifts a suppression (unsubscribed, bounced, complained) made before
    /// it: its owner asked again. A request made at or before the suppression (an old link used
    /// after an unsubscribe) changes nothing: [`Confirmed::Outdated`]. An address forgotten since
    /// the link was mailed (`forget_hash`, its keyed hash) stays forgotten. The language the
    /// link carries becomes the subscriber's, and replaces a choice the reader made before
    /// the request (their newest word wins); a link without one changes no language.
    pub fn confirm_signup(
        &mut self,
        request: &Confirming<'_>,
        now: Millis,
    ) -> anyhow::Result<Confirmed> {
        let Confirming {
            address,
            name,
            lang,
            forget_hash,
            requested_at,
        } = *request;
        let (requested_at, now) = (requested_at.0, now.0);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if forgotten_in(&tx, forget_hash)? {
            return Ok(Confirmed::Forgotten);
        }
        let key = AddressKey::of(address);
        // Read and lifted in this one write transaction: an unsubscribe cannot slip between.
        let suppressed: Option<(Reason, i64)> = tx
            .query_row(
                "SELECT reason, at FROM suppressions WHERE address_key = ?1",
                [key.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((reason, at)) = suppressed {
            if at >= requested_at {
                return Ok(Confirmed::Outdated(reason));
            }
        }
        let lifted = tx.execute(
            "DELETE FROM suppressions WHERE address_key = ?1",
            [key.as_str()],
        )?;
        tx.execute("DELETE FROM signups WHERE address_key = ?1", [key.as_str()])?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO subscribers
             (address_key, address, name, added_at, source, requested_at, confirmed_at, lang)
             VALUES (?1, ?2, ?3, ?4, 'form', ?5, ?4, ?6)",
            params![
                key.as_str(),
                address.as_ref() as &str,
                name,
                now,
                requested_at,
                lang
            ],
        )?;
        if let Some(lang) = lang {
            // Not a change of consent: `Already` stays `Already`.
            tx.execute(
                "UPDATE subscribers SET lang = ?2 WHERE address_key = ?1",
                params![key.as_str(), lang],
            )?;
            tx.execute(
                "DELETE FROM language_choices WHERE address_key = ?1 AND at <= ?2",
                params![key.as_str(), requested_at],
            )?;
        }
        // Held already (added by staff, or confirmed before a leave): the consent is new.
        let consented = tx.execute(
            "UPDATE subscribers SET source = 'form', requested_at = ?2, confirmed_at = ?3
             WHERE address_key = ?1 AND confirmed_at IS NULL",
            params![key.as_str(), requested_at, now],
        )?;
        tx.commit()?;
        Ok(if lifted + added + consented > 0 {
            Confirmed::Subscribed
        } else {
            Confirmed::Already
        })
    }

    /// Counts one request of `client` against the limit `name`, which allows `max` requests
    /// per `window` (a burst of `max`, then one each `window / max`, as a leaky bucket:
    /// GCRA); true when this request is within it. A refused request spends nothing. Kept in
    /// the ledger so a restart does not reset it; rows whose time has passed are deleted.
    pub fn take_rate_limit(
        &mut self,
        name: &str,
        client: &str,
        max: u32,
        window: Duration,
        now: Millis,
    ) -> anyhow::Result<bool> {
        let (window_ms, now) = (span_ms(window), now.0);
        let max = i64::from(max.max(1));
        let interval = (window_ms / max).max(1);
        let tolerance = window_ms - interval;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM rate_limits WHERE until <= ?1", [now])?;
        let until: Option<i64> = tx
            .query_row(
                "SELECT until FROM rate_limits WHERE name = ?1 AND client = ?2",
                [name, client],
                |r| r.get(0),
            )
            .optional()?;
        let spent_until = until.unwrap_or(now).max(now);
        if spent_until - now > tolerance {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO rate_limits (name, client, until) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, client) DO UPDATE SET until = ?3",
            params![name, client, spent_until + interval],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Deletes the sign-up requests that expired by `now`; returns how many.
    pub fn purge_expired_signups(&mut self, now: i64) -> anyhow::Result<u64> {
        Ok(self
            .conn
            .execute("DELETE FROM signups WHERE expires_at <= ?1", [now])? as u64)
    }

    /// The sign-up requests waiting for their confirmation, oldest first.
    pub fn signups(&self) -> anyhow::Result<Vec<Signup>> {
        let mut st = self.conn.prepare(
            "SELECT address, name, requested_at, expires_at, lang FROM signups
             ORDER BY requested_at, rowid",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Signup {
                address: r.get(0)?,
                name: r.get(1)?,
                lang: r.get(4)?,
                requested_at: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The consent of a subscriber held in the database, if it is one.
    pub fn consent(&self, key: &AddressKey) -> anyhow::Result<Option<Consent>> {
        Ok(self
            .conn
            .query_row(
                "SELECT source, requested_at, confirmed_at FROM subscribers WHERE address_key = ?1",
                [key.as_str()],
                |r| {
                    Ok(Consent {
                        source: r.get(0)?,
                        requested_at: r.get(1)?,
                        confirmed_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records one confirmation message's reply (kept apart from every campaign).
    pub fn record_confirmation_send(
        &mut self,
        address: &Address,
        code: Option<u16>,
        text: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO confirmation_sends (address, code, text, at) VALUES (?1, ?2, ?3, ?4)",
            params![address.as_ref() as &str, code, text, now],
        )?;
        Ok(())
    }

    /// How many confirmation messages were recorded for `address`.
    pub fn confirmation_send_count(&self, address: &Address) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM confirmation_sends WHERE lower(address) = lower(?1)",
            [address.as_ref() as &str],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Every suppressed address (by its key) with its reason.
    pub fn suppressions(&self) -> anyhow::Result<Vec<(AddressKey, Reason)>> {
        let mut st = self
            .conn
            .prepare("SELECT address_key, reason FROM suppressions ORDER BY address_key")?;
        let rows = st.query_map([], |r| {
            Ok((AddressKey::from_text(&r.get::<_, String>(0)?), r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every suppressed address as the ledger spelled it, with its reason.
    pub fn suppressed_addresses(&self) -> anyhow::Result<Vec<(String, Reason)>> {
        let mut st = self
            .conn
            .prepare("SELECT address, reason FROM suppressions ORDER BY at, address_key")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The keyed hashes of every forgotten address.
    pub fn forgotten_hashes(&self) -> anyhow::Result<HashSet<String>> {
        let mut st = self.conn.prepare("SELECT hash FROM forgotten")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether the address of keyed hash `hash` was forgotten.
    pub fn is_forgotten(&self, hash: &str) -> anyhow::Result<bool> {
        forgotten_in(&self.conn, hash)
    }

    /// Erases what the ledger holds about the address of `key`, at its owner's request, in one
    /// transaction: its rows in `subscribers`, `signups`, `suppressions`, `language_choices`,
    /// `test_sends` and `confirmation_sends` are deleted; in past campaigns' deliveries, the address, name and
    /// Message-ID become [`FORGOTTEN`], the key becomes `hash` (its keyed hash, unique like the
    /// key), a reply that named the address no longer does, and a delivery not yet sent or
    /// failed becomes `suppressed`. Only `hash` is kept, in `forgotten`, so that the address
    /// stays suppressed. Call it holding the send lock of every unfinished campaign.
    pub fn forget(&mut self, key: &AddressKey, hash: &str, now: i64) -> anyhow::Result<Forgot> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let k = key.as_str();
        let mut f = Forgot {
            already: forgotten_in(&tx, hash)?,
            ..Forgot::default()
        };
        f.subscribers = tx.execute("DELETE FROM subscribers WHERE address_key = ?1", [k])? as u64;
        f.signups = tx.execute("DELETE FROM signups WHERE address_key = ?1", [k])? as u64;
        f.suppressions = tx.execute("DELETE FROM suppressions WHERE address_key = ?1", [k])? as u64;
        tx.execute("DELETE FROM readers WHERE address_key = ?1", [k])?;
        tx.execute("DELETE FROM language_choices WHERE address_key = ?1", [k])?;
        // These keep the address as typed: compared by key in Rust (SQLite's lower() is ASCII).
        for table in ["test_sends", "confirmation_sends"] {
            let ids = {
                let mut st = tx.prepare(&format!("SELECT id, address FROM {table}"))?;
                let rows =
                    st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                let mut ids = Vec::new();
                for row in rows {
                    let (id, address) = row?;
                    if AddressKey::from_text(&address) == *key {
                        ids.push(id);
                    }
                }
                ids
            };
            let mut del = tx.prepare(&format!("DELETE FROM {table} WHERE id = ?1"))?;
            for id in &ids {
                del.execute([id])?;
            }
            let n = ids.len() as u64;
            match table {
                "test_sends" => f.test_sends = n,
                _ => f.confirmation_sends = n,
            }
        }
        // The notices to the address (a confirmation, queued or sent) hold its whole message.
        {
            let ids = {
                let mut st = tx.prepare("SELECT id, recipient FROM notices")?;
                let rows =
                    st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                let mut ids = Vec::new();
                for row in rows {
                    let (id, recipient) = row?;
                    if AddressKey::from_text(&recipient) == *key {
                        ids.push(id);
                    }
                }
                ids
            };
            let mut del = tx.prepare("DELETE FROM notices WHERE id = ?1")?;
            for id in &ids {
                del.execute([id])?;
            }
        }
        let rows = {
            let mut st =
                tx.prepare("SELECT id, last_text FROM deliveries WHERE address_key = ?1")?;
            let rows = st.query_map([k], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        {
            let mut up = tx.prepare(
                "UPDATE deliveries SET address = ?2, address_key = ?3, message_id = ?2,
                        name = CASE WHEN name IS NULL THEN NULL ELSE ?2 END, last_text = ?4,
                        state = CASE WHEN state = 'sent' THEN 'sent' ELSE 'suppressed' END,
                        next_attempt_at = NULL
                 WHERE id = ?1",
            )?;
            // A bounce's diagnostic quotes the address ("550 5.1.1 <ana@...>: unknown").
            let mut bounces =
                tx.prepare("UPDATE bounces SET diagnostic = NULL WHERE delivery_id = ?1")?;
            for (id, text) in rows {
                bounces.execute([id])?;
                let text = text.map(|t| {
                    let lower = t.to_lowercase();
                    if lower.contains(k) {
                        lower.replace(k, FORGOTTEN)
                    } else {
                        t
                    }
                });
                up.execute(params![id, FORGOTTEN, hash, text])?;
                f.deliveries += 1;
            }
        }
        tx.execute(
            "INSERT OR IGNORE INTO forgotten (hash, at) VALUES (?1, ?2)",
            params![hash, now],
        )?;
        tx.commit()?;
        // Deleted and rewritten rows linger in the file's free space and in the WAL until
        // overwritten: rebuild the file and empty the WAL, so the address is gone from the
        // disk too. Another connection busy for longer than the busy timeout leaves that undone.
        f.scrubbed = self
            .conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .is_ok();
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::notices::{NewNotice, NoticeKind, NoticeOutcome};

    /// A sign-up request of `address` with no language.
    fn ask<'a>(address: &'a Address, name: Option<&'a str>, hash: &'a str) -> Asking<'a> {
        Asking {
            address,
            name,
            lang: None,
            forget_hash: hash,
        }
    }

    #[test]
    fn sign_ups_wait_ten_minutes_between_messages_and_expire() {
        let ms = |n: i64| Duration::from_millis(n as u64);
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let a = addr("New@example.org");
        let gap = 600_000;
        assert_eq!(
            l.request_signup(
                &ask(&a, Some("N"), "h1"),
                Millis(1_000),
                ms(49_000),
                ms(gap)
            )
            .unwrap(),
            SignupRequest::Mail
        );
        // The rate mark is set when the relay accepts the confirmation, not before: one it
        // answered 451 does not stop the next request.
        let notice = NewNotice {
            kind: NoticeKind::Confirmation,
            recipient: "New@example.org".into(),
            message: b"m".to_vec(),
            campaign: None,
        };
        let id = l
            .enqueue_notices(&[notice], Millis(1_000), Some(ms(60_000)))
            .unwrap()[0];
        let refused = NoticeOutcome::Retry {
            code: Some(451),
            text: "451 4.3.0 later".into(),
            next_at: 3_000,
        };
        assert_eq!(l.record_notice(id, &refused, Millis(1_000)).unwrap(), None);
        assert_eq!(
            l.request_signup(
                &ask(&a, Some("N"), "h1"),
                Millis(1_000),
                ms(49_000),
                ms(gap)
            )
            .unwrap(),
            SignupRequest::Mail
        );
        let accepted = NoticeOutcome::Sent {
            code: 250,
            text: "ok".into(),
        };
        assert_eq!(l.record_notice(id, &accepted, Millis(1_000)).unwrap(), None);
        assert_eq!(l.confirmation_send_count(&a).unwrap(), 1);
        assert_eq!(
            l.request_signup(
                &ask(&addr("new@example.org"), None, "h1"),
                Millis(1_000 + gap - 1),
                ms(60_000),
                ms(gap)
            )
            .unwrap(),
            SignupRequest::TooSoon
        );
        assert_eq!(l.signups().unwrap().len(), 1);
        assert_eq!(l.purge_expired_signups(49_999).unwrap(), 0);
        assert_eq!(l.purge_expired_signups(50_000).unwrap(), 1);
        assert!(l.signups().unwrap().is_empty());
        // After the gap, a new request mails again.
        assert_eq!(
            l.request_signup(
                &ask(&a, None, "h1"),
                Millis(1_000 + gap),
                ms((2_000_000) - (1_000 + gap)),
                ms(gap)
            )
            .unwrap(),
            SignupRequest::Mail
        );
        // Confirming makes an active subscriber with consent, once.
        assert_eq!(
            l.confirm_signup(
                &Confirming {
                    address: &a,
                    name: Some("N"),
                    lang: None,
                    forget_hash: "h1",
                    requested_at: Millis(1_000),
                },
                Millis(5_000),
            )
            .unwrap(),
            Confirmed::Subscribed
        );
        assert_eq!(
            l.confirm_signup(
                &Confirming {
                    address: &a,
                    name: Some("N"),
                    lang: None,
                    forget_hash: "h1",
                    requested_at: Millis(1_000),
                },
                Millis(6_000),
            )
            .unwrap(),
            Confirmed::Already
        );
        let c = l.consent(&AddressKey::of(&a)).unwrap().unwrap();
        assert_eq!(
            (c.source.as_str(), c.requested_at, c.confirmed_at),
            ("form", Some(1_000), Some(5_000))
        );
        assert!(l.signups().unwrap().is_empty());
    }

    #[test]
    fn rate_limits_survive_a_reopen_and_refill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("brief.db");
        let hour = Duration::from_secs(3600);
        let at = |ms: u64| Millis(ms as i64);
        {
            let mut l = Ledger::open(&path).unwrap();
            assert!(l.take_rate_limit("signup", "a", 2, hour, at(0)).unwrap());
            assert!(l.take_rate_limit("signup", "a", 2, hour, at(1)).unwrap());
            assert!(!l.take_rate_limit("signup", "a", 2, hour, at(2)).unwrap());
            // Another client, another limit: their own budgets.
            assert!(l.take_rate_limit("signup", "b", 2, hour, at(2)).unwrap());
            assert!(l.take_rate_limit("login", "a", 2, hour, at(2)).unwrap());
        }
        let mut l = Ledger::open(&path).unwrap();
        assert!(!l.take_rate_limit("signup", "a", 2, hour, at(3)).unwrap());
        // One request's worth comes back after half the window, all of it after the window,
        // and the spent rows are gone by then.
        assert!(l
            .take_rate_limit("signup", "a", 2, hour, at(3_600_000 / 2))
            .unwrap());
        assert!(!l
            .take_rate_limit("signup", "a", 2, hour, at(3_600_000 / 2 + 1))
            .unwrap());
        let rows = |l: &Ledger| -> i64 {
            l.conn
                .query_row("SELECT count(*) FROM rate_limits", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(&l), 3);
        assert!(l
            .take_rate_limit("signup", "c", 2, hour, at(3 * 3_600_000))
            .unwrap());
        assert_eq!(rows(&l), 1);
    }

    #[test]
    fn consent_moves_forward_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        for (i, reason) in [Reason::Unsubscribed, Reason::Bounced, Reason::Complained]
            .into_iter()
            .enumerate()
        {
            let a = addr(&format!("r{i}@example.org"));
            let key = AddressKey::of(&a);
            // Asked at 1,000, confirmed at 2,000, left at 3,000.
            assert_eq!(
                l.confirm_signup(
                    &Confirming {
                        address: &a,
                        name: None,
                        lang: None,
                        forget_hash: "h",
                        requested_at: Millis(1_000),
                    },
                    Millis(2_000),
                )
                .unwrap(),
                Confirmed::Subscribed
            );
            l.suppress(&a, reason, "", 3_000).unwrap();
            // The old link (and one made in the very millisecond of the leave) changes nothing.
            for requested_at in [1_000, 3_000] {
                assert_eq!(
                    l.confirm_signup(
                        &Confirming {
                            address: &a,
                            name: None,
                            lang: None,
                            forget_hash: "h",
                            requested_at: Millis(requested_at),
                        },
                        Millis(4_000),
                    )
                    .unwrap(),
                    Confirmed::Outdated(reason)
                );
                assert_eq!(l.suppression(&key).unwrap(), Some(reason));
            }
            // A request made after the leave is the owner asking again.
            assert_eq!(
                l.confirm_signup(
                    &Confirming {
                        address: &a,
                        name: None,
                        lang: None,
                        forget_hash: "h",
                        requested_at: Millis(3_001),
                    },
                    Millis(5_000),
                )
                .unwrap(),
                Confirmed::Subscribed
            );
            assert_eq!(l.suppression(&key).unwrap(), None);
            let c = l.consent(&key).unwrap().unwrap();
            assert_eq!(c.confirmed_at, Some(2_000));
        }
    }

    #[test]
    fn a_choice_is_kept_by_address_key_replaced_by_a_newer_sign_up_and_forgotten_with_the_address()
    {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        let (en, es) = (Lang::parse("en").unwrap(), Lang::parse("es").unwrap());
        // A reader only in the list file: the ledger holds nothing else of them.
        let file_only = AddressKey::from_text("Fay@Example.org");
        assert!(l.set_language(&file_only, &es, 10).unwrap());
        // The same choice again changes nothing (and keeps its time).
        assert!(!l.set_language(&file_only, &es, 11).unwrap());
        assert!(l.set_language(&file_only, &en, 12).unwrap());
        let choices = l.language_choices().unwrap();
        assert_eq!(
            choices.get(&AddressKey::from_text("fay@example.org")),
            Some(&en)
        );

        // A staff addition keeps its language; a held reader's choice is over it.
        let ana = addr("ana@example.org");
        assert!(l.add_subscriber(&ana, None, Some(&es), 20).unwrap());
        assert_eq!(l.stored_subscribers().unwrap()[0].lang, Some(es.clone()));

        // A sign-up keeps the language asked in; confirmed, it is the subscriber's.
        let bo = addr("bo@example.org");
        let bo_key = AddressKey::of(&bo);
        assert!(l.set_language(&bo_key, &en, 25).unwrap());
        let asking = Asking {
            address: &bo,
            name: None,
            lang: Some(&es),
            forget_hash: "hb",
        };
        let ttl = Duration::from_secs(3600);
        l.request_signup(&asking, Millis(30), ttl, Duration::ZERO)
            .unwrap();
        assert_eq!(l.signups().unwrap()[0].lang, Some(es.clone()));
        let confirming = Confirming {
            address: &bo,
            name: None,
            lang: Some(&es),
            forget_hash: "hb",
            requested_at: Millis(30),
        };
        assert_eq!(
            l.confirm_signup(&confirming, Millis(40)).unwrap(),
            Confirmed::Subscribed
        );
        // The request (at 30) is newer than the choice (at 25): the reader's newest word wins.
        assert_eq!(l.language_choice(&bo_key).unwrap(), None);
        let bo_row = l
            .stored_subscribers()
            .unwrap()
            .into_iter()
            .find(|s| s.address == "bo@example.org")
            .unwrap();
        assert_eq!(bo_row.lang, Some(es.clone()));
        // A choice made after the request outlives a late confirmation of it.
        assert!(l.set_language(&bo_key, &en, 50).unwrap());
        assert_eq!(
            l.confirm_signup(&confirming, Millis(60)).unwrap(),
            Confirmed::Already
        );
        assert_eq!(l.language_choice(&bo_key).unwrap(), Some(en.clone()));
        // A link made before links carried a language changes none.
        let old = Confirming {
            lang: None,
            ..confirming
        };
        l.confirm_signup(&old, Millis(70)).unwrap();
        assert_eq!(l.language_choice(&bo_key).unwrap(), Some(en));

        // Forgetting the address forgets its choice.
        l.forget(&bo_key, "hb", 80).unwrap();
        assert_eq!(l.language_choice(&bo_key).unwrap(), None);
        assert!(!l.language_choices().unwrap().contains_key(&bo_key));
    }
}
