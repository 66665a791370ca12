//! The ledger: campaigns, per-recipient deliveries and the suppression list, in one SQLite file.
//!
//! Only this module touches the database. It runs in WAL mode with versioned migrations. A
//! campaign is unique per issue; a delivery is unique per (campaign, lowercased address), which is
//! what makes a re-run resume instead of mailing the list again. Times are Unix milliseconds
//! passed in by the caller: the ledger never reads the clock.

#[macro_use]
mod base;
mod activity;
mod audience;
mod bounces;
mod campaigns;
mod deliveries;
mod journal;
mod migrations;
mod notices;
mod readers;
mod staff;
mod summaries;

pub use self::activity::*;
pub use self::audience::*;
pub use self::base::{CampaignId, DeliveryId, Ledger, SharedLedger, State, FORGOTTEN};
pub use self::bounces::*;
pub use self::campaigns::*;
pub use self::deliveries::*;
pub use self::notices::*;
pub use self::readers::*;
pub use self::staff::*;
pub use self::summaries::*;

#[cfg(test)]
mod tests {
    use super::base::*;
    use super::migrations::MIGRATIONS;
    use super::*;

    #[test]
    fn unknown_words_in_the_ledger_are_refused_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("brief.db")).unwrap();
        l.conn
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 INSERT INTO suppressions (address_key, address, reason, at)
                 VALUES ('x@example.org', 'x@example.org', 'spam', 1);",
            )
            .unwrap();
        let e = l
            .suppression(&AddressKey::from_text("x@example.org"))
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown value `spam` in the ledger"),
            "{e:#}"
        );
    }

    #[test]
    fn processes_opening_a_fresh_ledger_at_once_all_migrate_it_once() {
        // Two `brief` processes started together on a new data folder once failed with
        // "migration 1 failed: table campaigns already exists".
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("data/brief.db");
            let n = 8;
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
            let opened: Vec<_> = (0..n)
                .map(|_| {
                    let (p, barrier) = (p.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Ledger::open(&p).map_err(|e| format!("{e:#}"))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            for l in &opened {
                let l = l.as_ref().unwrap();
                let version: i64 = l
                    .conn
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(version as usize, MIGRATIONS.len());
            }
        }
    }

    #[test]
    fn migration_5_keeps_suppressions_and_allows_complaints() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brief.db");
        {
            // A ledger as brief left it at schema version 4.
            let conn = Connection::open(&p).unwrap();
            for m in &MIGRATIONS[..4] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 4;
                 INSERT INTO suppressions (address_key, address, reason, detail, at)
                 VALUES ('x@example.org', 'X@example.org', 'bounced', '550', 7);",
            )
            .unwrap();
        }
        let mut l = Ledger::open(&p).unwrap();
        assert_eq!(
            l.suppressed_addresses().unwrap(),
            [("X@example.org".to_string(), Reason::Bounced)]
        );
        l.suppress(&addr("y@example.org"), Reason::Complained, "spam", 8)
            .unwrap();
        assert_eq!(
            l.suppression(&AddressKey::from_text("y@example.org"))
                .unwrap(),
            Some(Reason::Complained)
        );
        let e = l
            .conn
            .execute(
                "INSERT INTO suppressions (address_key, address, reason, at) VALUES ('z', 'z', 'spam', 1)",
                [],
            )
            .unwrap_err();
        assert!(e.to_string().contains("CHECK"), "{e}");
    }

    #[test]
    fn migration_15_gives_held_readers_and_sign_ups_no_language_and_takes_choices() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brief.db");
        {
            // A ledger as brief left it at schema version 14, with a subscriber and a sign-up.
            let conn = Connection::open(&p).unwrap();
            for m in &MIGRATIONS[..14] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 14;
                 INSERT INTO subscribers (address_key, address, name, added_at)
                 VALUES ('ana@example.org', 'Ana@example.org', 'Ana', 1);
                 INSERT INTO signups (address_key, address, name, requested_at, expires_at)
                 VALUES ('bo@example.org', 'bo@example.org', NULL, 2, 99);",
            )
            .unwrap();
        }
        let mut l = Ledger::open(&p).unwrap();
        let held = l.stored_subscribers().unwrap();
        assert_eq!(
            held,
            [StoredSubscriber {
                address: "Ana@example.org".into(),
                name: Some("Ana".into()),
                lang: None,
            }]
        );
        assert_eq!(l.signups().unwrap()[0].lang, None);
        let ana = AddressKey::from_text("ANA@example.org");
        let es = crate::lang::Lang::parse("es").unwrap();
        assert!(l.language_choices().unwrap().is_empty());
        assert!(l.set_language(&ana, &es, 3).unwrap());
        assert_eq!(l.language_choice(&ana).unwrap(), Some(es.clone()));
        let id = l.reader_id(&ana).unwrap().unwrap();
        let r = l.reader(id, 4).unwrap().unwrap();
        assert_eq!((r.lang, r.lang_chosen_at), (Some(es), Some(3)));
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brief.db");
        {
            let mut l = Ledger::open(&p).unwrap();
            l.suppress(&addr("x@example.org"), Reason::Bounced, "550", 1)
                .unwrap();
        }
        let l = Ledger::open(&p).unwrap();
        assert_eq!(
            l.suppression(&AddressKey::from_text("X@example.org"))
                .unwrap(),
            Some(Reason::Bounced)
        );
    }

    /// Migration 16: a campaign stored before editions keeps its one message (read as the
    /// default language's, `lang` None) and its deliveries (no language: the default); a
    /// new campaign stores one message per language and a language per delivery.
    #[test]
    fn migration_16_keeps_an_older_campaign_in_the_default_language() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("brief.db");
        {
            // A ledger as brief left it at schema version 15, with a campaign under way.
            let conn = Connection::open(&p).unwrap();
            for m in &MIGRATIONS[..15] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 15;
                 INSERT INTO campaigns (id, issue, subject, state, trigger, created_at)
                 VALUES (1, '2021-07', 'old subject', 'sending', 'cli', 1);
                 INSERT INTO campaign_messages
                     (campaign_id, revision, subject, template, web, folder_hash, unsent, at)
                 VALUES (1, 1, 'old subject', 'frozen', '<p>old web</p>', NULL, 2, 1);
                 INSERT INTO deliveries (campaign_id, address, address_key, name, state, message_id)
                 VALUES (1, 'a@x.org', 'a@x.org', NULL, 'sent', 'm1'),
                        (1, 'b@x.org', 'b@x.org', NULL, 'pending', 'm2');",
            )
            .unwrap();
        }
        let mut l = Ledger::open(&p).unwrap();
        let c = l.campaign("2021-07".parse().unwrap()).unwrap().unwrap();
        let messages = l.campaign_messages(c.id).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(
            (
                messages[0].lang.as_deref(),
                messages[0].template.as_str(),
                messages[0].revision
            ),
            (None, "frozen", 1)
        );
        assert_eq!(
            l.campaign_web(c.id, None).unwrap().as_deref(),
            Some("<p>old web</p>")
        );
        assert_eq!(l.campaign_web(c.id, Some("es")).unwrap(), None);
        let subjects = l.campaign_subjects(c.id).unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].0, None);
        let due = l.claim_due(c.id, 10, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].address.as_str(), due[0].lang.as_deref()),
            ("b@x.org", None)
        );
        // A revision of the older campaign stores every language, keyed apart.
        let mut en = campaigns::kit::message("en");
        en.lang = Some("en".into());
        let mut es = campaigns::kit::message("es");
        es.lang = Some("es".into());
        assert_eq!(l.revise_campaign(c.id, &[en, es]).unwrap(), 2);
        let now: Vec<_> = l
            .campaign_messages(c.id)
            .unwrap()
            .into_iter()
            .map(|m| (m.revision, m.lang, m.subject))
            .collect();
        assert_eq!(
            now,
            [
                (2, Some("en".to_string()), "en".to_string()),
                (2, Some("es".to_string()), "es".to_string())
            ]
        );
        assert_eq!(
            l.campaign_web(c.id, Some("ES")).unwrap().as_deref(),
            Some("<p>es</p>")
        );
        let split = l.counts_by_lang(c.id).unwrap();
        assert_eq!(split.len(), 1);
        assert_eq!((split[0].0.as_deref(), split[0].1.sent), (None, 1));
    }
}
