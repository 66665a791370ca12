//! The ledger's schema, as versioned migrations applied in order (append only).

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sending', 'finished')),
        trigger TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
        address TEXT NOT NULL,
        address_key TEXT NOT NULL,
        name TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'deferred', 'failed', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_code INTEGER,
        last_text TEXT,
        message_id TEXT NOT NULL,
        first_attempt_at INTEGER,
        last_attempt_at INTEGER,
        next_attempt_at INTEGER,
        possible_duplicate INTEGER NOT NULL DEFAULT 0,
        UNIQUE (campaign_id, address_key)
    );
    CREATE INDEX deliveries_by_state ON deliveries (campaign_id, state, next_attempt_at);
    CREATE TABLE suppressions (
        address_key TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced')),
        detail TEXT,
        at INTEGER NOT NULL
    );
    CREATE TABLE subscribers (
        address_key TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        name TEXT,
        added_at INTEGER NOT NULL
    );
    CREATE TABLE feed_items (
        item_key TEXT PRIMARY KEY,
        feed_url TEXT NOT NULL,
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id)
    );
    CREATE TABLE test_sends (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL,
        address TEXT NOT NULL,
        code INTEGER,
        text TEXT NOT NULL,
        at INTEGER NOT NULL
    );",
    // 2: schedule fires missed while the daemon was down, so each is reported once.
    "CREATE TABLE missed_fires (
        issue TEXT PRIMARY KEY,
        fired_at INTEGER NOT NULL,
        reported_at INTEGER NOT NULL
    );",
    // 3: what a campaign sends, fixed when it starts (revision 1) and changed only on purpose
    // (`--restart-unsent`: revision 2, ...); the revision each delivery was sent.
    "CREATE TABLE campaign_messages (
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
        revision INTEGER NOT NULL,
        subject TEXT NOT NULL,
        template TEXT NOT NULL,
        web TEXT NOT NULL,
        folder_hash TEXT,
        unsent INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, revision)
    );
    ALTER TABLE deliveries ADD COLUMN revision INTEGER;",
    // 4: readers who join by themselves: requests waiting for confirmation, the consent of
    // those who confirmed, and the confirmation messages sent.
    "CREATE TABLE signups (
        address_key TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        name TEXT,
        requested_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        mailed_at INTEGER
    );
    ALTER TABLE subscribers ADD COLUMN source TEXT NOT NULL DEFAULT 'staff';
    ALTER TABLE subscribers ADD COLUMN requested_at INTEGER;
    ALTER TABLE subscribers ADD COLUMN confirmed_at INTEGER;
    CREATE TABLE confirmation_sends (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        code INTEGER,
        text TEXT NOT NULL,
        at INTEGER NOT NULL
    );",
    // 5: a third reason to suppress an address, `complained` (SQLite cannot alter a CHECK: the
    // table is rebuilt), and the keyed hashes of the addresses whose owners asked to be
    // forgotten, which keep them suppressed without keeping them.
    "CREATE TABLE suppressions_new (
        address_key TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'complained')),
        detail TEXT,
        at INTEGER NOT NULL
    );
    INSERT INTO suppressions_new (address_key, address, reason, detail, at)
        SELECT address_key, address, reason, detail, at FROM suppressions;
    DROP TABLE suppressions;
    ALTER TABLE suppressions_new RENAME TO suppressions;
    CREATE TABLE forgotten (
        hash TEXT PRIMARY KEY,
        at INTEGER NOT NULL
    );",
    // 6: staff sign-in: the ids of emailed sign-in links already used (each works once; kept
    // until the link expires), and the sessions, by the hash of their id (never the id).
    "CREATE TABLE staff_links_used (
        id TEXT PRIMARY KEY,
        used_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE staff_sessions (
        id_hash TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );",
    // 7: bounces and complaints that came back after a delivery, one row per report and
    // delivery (the same report processed twice is one row), and a way to find a delivery by
    // the Message-ID a report returns.
    "CREATE TABLE bounces (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
        report_key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
        status TEXT,
        diagnostic TEXT,
        reporting_mta TEXT,
        at INTEGER NOT NULL,
        UNIQUE (report_key, delivery_id)
    );
    CREATE INDEX bounces_delivery ON bounces (delivery_id);
    CREATE INDEX deliveries_message_id ON deliveries (message_id);",
    // 8: confidence around a send. A canary window (readers wait until `release_at`, staff may
    // hold the campaign meanwhile) and the copies mailed to staff first, apart from the
    // deliveries so they never count as readers; when each summary mail to staff went (those
    // of campaigns finished before this version count as sent, so an upgrade mails nothing
    // old); and the checks run before each scheduled fire.
    "ALTER TABLE campaigns ADD COLUMN release_at INTEGER;
    ALTER TABLE campaigns ADD COLUMN held_at INTEGER;
    ALTER TABLE campaigns ADD COLUMN summary_at INTEGER;
    ALTER TABLE campaigns ADD COLUMN followup_at INTEGER;
    UPDATE campaigns SET summary_at = coalesce(finished_at, created_at),
        followup_at = coalesce(finished_at, created_at) WHERE state = 'finished';
    CREATE TABLE canary_sends (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
        address TEXT NOT NULL,
        accepted INTEGER NOT NULL,
        code INTEGER,
        text TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE preflights (
        issue TEXT NOT NULL,
        fire_at INTEGER NOT NULL,
        ran_at INTEGER NOT NULL,
        problems INTEGER NOT NULL,
        report TEXT NOT NULL,
        PRIMARY KEY (issue, fire_at)
    );",
    // 9: the HTTP side's rate limits (sign-ups per client, staff sign-ins), kept here so a
    // restart does not reset them: per limit and client (a keyed tag, never the IP or the
    // address), the time until which the client's budget is spent (`take_rate_limit`). A row
    // whose time has passed means nothing and is deleted.
    "CREATE TABLE rate_limits (
        name TEXT NOT NULL,
        client TEXT NOT NULL,
        until INTEGER NOT NULL,
        PRIMARY KEY (name, client)
    );
    CREATE INDEX rate_limits_until ON rate_limits (until);",
    // 10: the lease of a campaign run: which process sends it and when it last said so, so that a
    // live daemon takes over a campaign whose sender died (the send lock still decides who
    // sends).
    "CREATE TABLE campaign_leases (
        campaign_id INTEGER PRIMARY KEY REFERENCES campaigns (id),
        owner TEXT NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );",
    // 11: a report is recorded with what named its delivery (`evidence`: a VERP tag, a keyed
    // Message-ID, or an unkeyed one of an older campaign, which suppresses nobody; NULL for
    // rows recorded before), and a fourth kind, `blocked` (a policy or content refusal, which
    // never suppresses). SQLite cannot alter a CHECK: the table is rebuilt.
    "CREATE TABLE bounces_new (
        id INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
        report_key TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'blocked')),
        status TEXT,
        diagnostic TEXT,
        reporting_mta TEXT,
        at INTEGER NOT NULL,
        evidence TEXT CHECK (evidence IN ('tag', 'message-id', 'unverified')),
        UNIQUE (report_key, delivery_id)
    );
    INSERT INTO bounces_new (id, delivery_id, report_key, kind, status, diagnostic, reporting_mta, at)
        SELECT id, delivery_id, report_key, kind, status, diagnostic, reporting_mta, at FROM bounces;
    DROP TABLE bounces;
    ALTER TABLE bounces_new RENAME TO bounces;
    CREATE INDEX bounces_delivery ON bounces (delivery_id);",
    // 12: one durable queue for the notices brief mails (confirmations, staff sign-in links,
    // canary copies, the checks before a send, summaries), each with its rendered message,
    // state, tries and next try; a campaign whose canary copies went out waits until a staff
    // address accepts one (`canary_pending`), and a hold says why (`held_reason`, NULL: staff).
    "CREATE TABLE notices (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        message BLOB NOT NULL,
        campaign_id INTEGER REFERENCES campaigns (id),
        state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL,
        last_code INTEGER,
        last_text TEXT,
        created_at INTEGER NOT NULL,
        done_at INTEGER
    );
    CREATE INDEX notices_due ON notices (state, next_at);
    CREATE INDEX notices_campaign ON notices (campaign_id, kind);
    ALTER TABLE campaigns ADD COLUMN canary_pending INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE campaigns ADD COLUMN held_reason TEXT;",
    // 13: what staff did in the console and when (sign-in, test sends, sends, holds, releases,
    // changes to readers), newest first; a reader is named by number, never by address.
    "CREATE TABLE activity (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        staff TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );",
    // 14: every reader the ledger holds gets a numeric id of its own, the staff console's key
    // for a reader's page (never the address in a URL). An INTEGER PRIMARY KEY, so the VACUUM
    // that `forget` runs cannot renumber it; filled from the rows already held and kept up by
    // triggers on every table that brings an address in. `forget` deletes the row.
    "CREATE TABLE readers (
        id INTEGER PRIMARY KEY,
        address_key TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL,
        name TEXT
    );
    INSERT OR IGNORE INTO readers (address_key, address, name)
        SELECT address_key, address, name FROM subscribers ORDER BY added_at, rowid;
    INSERT OR IGNORE INTO readers (address_key, address, name)
        SELECT address_key, address, name FROM deliveries WHERE address <> 'forgotten' ORDER BY id;
    INSERT OR IGNORE INTO readers (address_key, address, name)
        SELECT address_key, address, name FROM signups ORDER BY requested_at, rowid;
    INSERT OR IGNORE INTO readers (address_key, address, name)
        SELECT address_key, address, NULL FROM suppressions ORDER BY at, rowid;
    CREATE TRIGGER readers_of_subscribers AFTER INSERT ON subscribers BEGIN
        INSERT OR IGNORE INTO readers (address_key, address, name)
        VALUES (NEW.address_key, NEW.address, NEW.name);
    END;
    CREATE TRIGGER readers_of_deliveries AFTER INSERT ON deliveries
    WHEN NEW.address <> 'forgotten' BEGIN
        INSERT OR IGNORE INTO readers (address_key, address, name)
        VALUES (NEW.address_key, NEW.address, NEW.name);
    END;
    CREATE TRIGGER readers_of_signups AFTER INSERT ON signups BEGIN
        INSERT OR IGNORE INTO readers (address_key, address, name)
        VALUES (NEW.address_key, NEW.address, NEW.name);
    END;
    CREATE TRIGGER readers_of_suppressions AFTER INSERT ON suppressions BEGIN
        INSERT OR IGNORE INTO readers (address_key, address, name)
        VALUES (NEW.address_key, NEW.address, NULL);
    END;
    CREATE INDEX deliveries_address_key ON deliveries (address_key);",
    // 15: every reader has a language. The tag a subscriber held here and a sign-up were
    // recorded with (NULL: none, the default language), and the reader's own choice (the
    // switch link in an issue, or staff), by address key so that it also applies to a reader
    // who is only in the list file, over that file's `lang` cell. `forget` deletes the choice.
    "ALTER TABLE subscribers ADD COLUMN lang TEXT;
    ALTER TABLE signups ADD COLUMN lang TEXT;
    CREATE TABLE language_choices (
        address_key TEXT PRIMARY KEY,
        lang TEXT NOT NULL,
        at INTEGER NOT NULL
    );",
    // 16: one edition per language. A campaign stores one message per configured language
    // (the key gains `lang`; the rows of older campaigns get '', read as the default
    // language), and each delivery records the language it is sent in (NULL for older rows:
    // the default language).
    "CREATE TABLE campaign_messages_by_lang (
        campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
        revision INTEGER NOT NULL,
        lang TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL,
        template TEXT NOT NULL,
        web TEXT NOT NULL,
        folder_hash TEXT,
        unsent INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, revision, lang)
    );
    INSERT INTO campaign_messages_by_lang
        (campaign_id, revision, lang, subject, template, web, folder_hash, unsent, at)
        SELECT campaign_id, revision, '', subject, template, web, folder_hash, unsent, at
        FROM campaign_messages ORDER BY campaign_id, revision;
    DROP TABLE campaign_messages;
    ALTER TABLE campaign_messages_by_lang RENAME TO campaign_messages;
    ALTER TABLE deliveries ADD COLUMN lang TEXT;",
];
