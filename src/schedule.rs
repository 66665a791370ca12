//! When the monthly send fires: the `[schedule]` cron expression read in its IANA time zone.
//!
//! Pure: every function takes the time it reasons about, none reads the clock or does I/O, so
//! the daemon's loop and its tests drive it with fixed instants. A fire belongs to the issue of
//! the month it falls in on the wall clock of the plan's time zone, not in UTC.
//!
//! The cron crate walks local wall-clock time. Around a daylight-saving fall-back, where one hour
//! of wall-clock time happens twice, that walk can return a first-pass fire that is already in
//! the past, or never come back for the second pass of a time it has walked over. [`Plan`]
//! filters by instant and, inside a repeated hour, makes a second walk, so `next_fire` and
//! `last_fire` stay exact. A wall-clock time skipped by a spring-forward never fires that day.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::config;
use crate::issue::IssueId;

/// How far back [`Plan::on_start`] looks for a missed fire to report: two monthly periods.
const MISSED_LOOKBACK: TimeDelta = TimeDelta::days(62);

/// The most fires a walk across a repeated hour may step over. An every-second cron steps
/// about 11,000 times across a one-hour fold; anything sparser steps fewer.
const FOLD_WALK_LIMIT: usize = 20_000;

/// The daemon's schedule: a cron expression in a time zone, and how late a missed fire may
/// still be made up.
#[derive(Debug, Clone)]
pub struct Plan {
    cron: cron::Schedule,
    tz: Tz,
    catch_up: TimeDelta,
}

/// What the daemon does at start about fires that happened while it was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The latest fire is inside the catch-up window: create that issue's campaign now (the
    /// ledger's unique key makes this a no-op when it already exists).
    Send {
        issue: IssueId,
        fired_at: DateTime<Utc>,
    },
    /// The latest fire is older than the catch-up window: log it and leave it to staff. The
    /// campaign may well exist already; the caller checks the ledger before warning.
    Missed {
        issue: IssueId,
        fired_at: DateTime<Utc>,
    },
}

impl Decision {
    /// The issue the fire belongs to.
    pub fn issue(&self) -> IssueId {
        match *self {
            Decision::Send { issue, .. } | Decision::Missed { issue, .. } => issue,
        }
    }

    /// When the fire was due.
    pub fn fired_at(&self) -> DateTime<Utc> {
        match *self {
            Decision::Send { fired_at, .. } | Decision::Missed { fired_at, .. } => fired_at,
        }
    }
}

impl Plan {
    /// The plan of `[schedule]`; `None` when no cron expression is set (no scheduled sends).
    pub fn new(cfg: &config::Schedule) -> Option<Plan> {
        let cron = cfg.cron.clone()?;
        Some(Plan {
            cron,
            tz: cfg.timezone,
            // Longer than chrono can represent means "always catch up".
            catch_up: TimeDelta::from_std(cfg.catch_up).unwrap_or(TimeDelta::MAX),
        })
    }

    /// The time zone the cron expression is read in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire strictly after `after`; `None` when the expression never fires again
    /// (a year field in the past).
    pub fn next_fire(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let walk = |from: DateTime<Utc>, limit: usize| {
            self.cron
                .after(&from.with_timezone(&self.tz))
                .take(limit)
                .map(|t| t.with_timezone(&Utc))
                .find(|&t| t > after)
        };
        // Each wall-clock time yields at most two instants, the first of which may be past.
        let mut best = walk(after, 4);
        if let Some(fold) = self.fold_ahead(after) {
            // `after` is in the first pass of a repeated hour: the second pass of the wall-clock
            // times before it is still ahead, so walk again from one fold earlier.
            if let Some(second) = walk(after - fold, FOLD_WALK_LIMIT) {
                best = Some(best.map_or(second, |b| b.min(second)));
            }
        }
        best
    }

    /// The latest fire at or before `at`.
    pub fn last_fire(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // cron's backward walk yields fires strictly before its start; one nanosecond later
        // lets a fire exactly at `at` count.
        let start = at + TimeDelta::nanoseconds(1);
        let walk = |from: DateTime<Utc>, limit: usize| {
            self.cron
                .after(&from.with_timezone(&self.tz))
                .rev()
                .take(limit)
                .map(|t| t.with_timezone(&Utc))
                .find(|&t| t <= at)
        };
        let mut best = walk(start, 4);
        let year = at.with_timezone(&self.tz).year();
        if best.is_none_or(|b| b.with_timezone(&self.tz).year() < year) {
            // cron 0.17 walks years before `at`'s own with `at`'s month as the upper bound when
            // the expression restricts years, and misses fires later in those years. From the
            // last second of the year before, every bound is the largest, so that walk is right.
            let eve = NaiveDate::from_ymd_opt(year - 1, 12, 31)
                .and_then(|d| d.and_hms_opt(23, 59, 59))
                .and_then(|t| self.tz.from_local_datetime(&t).latest());
            if let Some(earlier) = eve.and_then(|eve| walk(eve.with_timezone(&Utc), 4)) {
                best = Some(best.map_or(earlier, |b| b.max(earlier)));
            }
        }
        if let Some(fold) = self.fold_behind(at) {
            // `at` is in the second pass of a repeated hour: the first pass of the wall-clock
            // times after it is already past, so walk again from one fold later.
            if let Some(first) = walk(start + fold, FOLD_WALK_LIMIT) {
                best = Some(best.map_or(first, |b| b.max(first)));
            }
        }
        best
    }

    /// At daemon start: the latest fire in `(now - catch_up, now]` is a [`Decision::Send`];
    /// otherwise the latest fire in the 62 days before is a [`Decision::Missed`]; otherwise
    /// nothing.
    pub fn on_start(&self, now: DateTime<Utc>) -> Option<Decision> {
        let fired_at = self.last_fire(now)?;
        let issue = self.issue_for(fired_at);
        let window_opens = now.checked_sub_signed(self.catch_up);
        if window_opens.is_none_or(|opens| fired_at > opens) {
            Some(Decision::Send { issue, fired_at })
        } else if fired_at > now - MISSED_LOOKBACK {
            Some(Decision::Missed { issue, fired_at })
        } else {
            None
        }
    }

    /// The issue a fire belongs to: the month of `fired_at` on the plan's wall clock.
    pub fn issue_for(&self, fired_at: DateTime<Utc>) -> IssueId {
        IssueId::of_date(fired_at.with_timezone(&self.tz).date_naive())
    }

    /// When `t` lies in the first pass of a repeated hour: how long the repeat is.
    fn fold_ahead(&self, t: DateTime<Utc>) -> Option<TimeDelta> {
        match self.fold(t) {
            Some((early, late)) if early == t => Some(late - early),
            _ => None,
        }
    }

    /// When `t` lies in the second pass of a repeated hour: how long the repeat is.
    fn fold_behind(&self, t: DateTime<Utc>) -> Option<TimeDelta> {
        match self.fold(t) {
            Some((early, late)) if late == t => Some(late - early),
            _ => None,
        }
    }

    /// The two instants that share `t`'s wall-clock time, when it has two.
    fn fold(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let wall = t.with_timezone(&self.tz).naive_local();
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Ambiguous(early, late) => {
                Some((early.with_timezone(&Utc), late.with_timezone(&Utc)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    fn plan(cron: &str, tz: &str, catch_up: &str) -> Plan {
        Plan::new(&config::Schedule {
            cron: Some(config::parse_cron(cron).unwrap()),
            timezone: tz.parse().unwrap(),
            catch_up: config::parse_duration(catch_up).unwrap(),
            ..config::Schedule::default()
        })
        .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn id(s: &str) -> IssueId {
        s.parse().unwrap()
    }

    #[test]
    fn fire_belongs_to_the_local_month_not_the_utc_month() {
        // 23:30 on June 30 in Mexico City (UTC-6) is already July 1 in UTC.
        let p = plan("0 30 23 30 6 *", "America/Mexico_City", "12h");
        let fire = p.next_fire(utc("2026-06-01T00:00:00Z")).unwrap();
        assert_eq!(fire, utc("2026-07-01T05:30:00Z"));
        assert_eq!(p.issue_for(fire), id("2026-06"));

        // 00:30 on the 1st belongs to that local month; in Tokyo (UTC+9) it is still the
        // previous month in UTC.
        let p = plan("0 30 0 1 * *", "America/Mexico_City", "12h");
        let fire = p.next_fire(utc("2026-06-15T00:00:00Z")).unwrap();
        assert_eq!(fire, utc("2026-07-01T06:30:00Z"));
        assert_eq!(p.issue_for(fire), id("2026-07"));
        let p = plan("0 30 0 1 * *", "Asia/Tokyo", "12h");
        let fire = p.next_fire(utc("2026-06-15T00:00:00Z")).unwrap();
        assert_eq!(fire, utc("2026-06-30T15:30:00Z"));
        assert_eq!(p.issue_for(fire), id("2026-07"));
    }

    #[test]
    fn dst_fall_back_fires_twice_for_one_issue() {
        // New York falls back on 2026-11-01: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST).
        let p = plan("0 30 1 1 11 *", "America/New_York", "12h");
        let first = p.next_fire(utc("2026-10-31T00:00:00Z")).unwrap();
        let second = p.next_fire(first).unwrap();
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        assert_eq!(second, utc("2026-11-01T06:30:00Z"));
        assert_eq!(p.issue_for(first), p.issue_for(second));
        assert_eq!(p.issue_for(second), id("2026-11"));
        // From between the two passes, the repeat is still next.
        assert_eq!(p.next_fire(utc("2026-11-01T05:45:00Z")), Some(second));
        assert_eq!(p.next_fire(second), Some(utc("2027-11-01T05:30:00Z")));
        assert_eq!(p.last_fire(utc("2026-11-01T06:10:00Z")), Some(first));
    }

    #[test]
    fn spring_forward_skips_the_missing_time_and_keeps_going() {
        // 02:30 does not exist in New York on 2026-03-08.
        let p = plan("0 30 2 * * *", "America/New_York", "12h");
        let fire = p.next_fire(utc("2026-03-07T12:00:00Z")).unwrap();
        assert_eq!(fire, utc("2026-03-09T06:30:00Z"));
    }

    /// The first instant after `after` (or the last at or before it) whose wall-clock time
    /// matches, found by trying every minute: slow, obviously right for crons firing at :00.
    fn brute_next(p: &Plan, after: DateTime<Utc>) -> DateTime<Utc> {
        let mut t = after - TimeDelta::seconds(after.timestamp().rem_euclid(60));
        loop {
            t += TimeDelta::minutes(1);
            if p.cron.includes(t.with_timezone(&p.tz)) {
                return t;
            }
        }
    }

    fn brute_last(p: &Plan, at: DateTime<Utc>) -> DateTime<Utc> {
        let mut t = at - TimeDelta::seconds(at.timestamp().rem_euclid(60));
        while !p.cron.includes(t.with_timezone(&p.tz)) {
            t -= TimeDelta::minutes(1);
        }
        t
    }

    #[test]
    fn next_and_last_fire_are_exact_around_dst_changes() {
        let cases = [
            ("America/New_York", "2026-11-01T06:00:00Z"),
            ("America/New_York", "2026-03-08T07:00:00Z"),
            // A 30-minute fold.
            ("Australia/Lord_Howe", "2026-04-04T15:00:00Z"),
            ("Europe/London", "2026-10-25T01:00:00Z"),
        ];
        for cron in ["0 */20 * * * *", "0 15,45 1 * * *", "0 0 2 * * *"] {
            for (tz, change) in cases {
                let p = plan(cron, tz, "1h");
                let change = utc(change);
                // Every 7 minutes and 13 seconds across the change, so `after` lands on both
                // passes of a repeated hour, on fires and between them.
                let mut t = change - TimeDelta::hours(4);
                while t < change + TimeDelta::hours(4) {
                    assert_eq!(
                        p.next_fire(t),
                        Some(brute_next(&p, t)),
                        "next_fire({t}) for {cron} in {tz}"
                    );
                    assert_eq!(
                        p.last_fire(t),
                        Some(brute_last(&p, t)),
                        "last_fire({t}) for {cron} in {tz}"
                    );
                    t += TimeDelta::seconds(7 * 60 + 13);
                }
            }
        }
    }

    #[test]
    fn on_start_catches_up_only_inside_the_window() {
        // The 23rd at 09:00 in Mexico City is 15:00Z; catch-up is 12 hours.
        let p = plan("0 0 9 23 * *", "America/Mexico_City", "12h");
        let fired_at = utc("2026-07-23T15:00:00Z");
        let send = Some(Decision::Send {
            issue: id("2026-07"),
            fired_at,
        });
        let missed = Some(Decision::Missed {
            issue: id("2026-07"),
            fired_at,
        });
        assert_eq!(p.on_start(fired_at), send, "a fire exactly now counts");
        assert_eq!(p.on_start(utc("2026-07-24T02:59:59Z")), send);
        assert_eq!(
            p.on_start(utc("2026-07-24T03:00:00Z")),
            missed,
            "the window is open at its far end"
        );
        assert_eq!(p.on_start(utc("2026-08-20T00:00:00Z")), missed);
        assert_eq!(
            p.on_start(utc("2026-07-23T14:59:59Z")).map(|d| d.issue()),
            Some(id("2026-06")),
            "a second before the fire, the latest fire is June's"
        );

        // A yearly fire long gone is neither sent nor reported.
        let p = plan("0 0 9 23 1 *", "America/Mexico_City", "12h");
        assert_eq!(p.on_start(utc("2026-07-01T00:00:00Z")), None);
    }

    #[test]
    fn huge_catch_up_always_sends() {
        let mut cfg = config::Schedule {
            cron: Some(config::parse_cron("0 0 9 23 * *").unwrap()),
            ..config::Schedule::default()
        };
        cfg.catch_up = Duration::from_secs(u64::MAX);
        let p = Plan::new(&cfg).unwrap();
        let d = p.on_start(utc("2026-07-01T00:00:00Z")).unwrap();
        assert!(matches!(d, Decision::Send { .. }), "{d:?}");
        assert_eq!(d.fired_at(), utc("2026-06-23T09:00:00Z"));
    }

    #[test]
    fn a_cron_that_ended_has_no_next_fire() {
        let p = plan("0 0 9 23 7 * 2021", "UTC", "12h");
        assert_eq!(p.next_fire(utc("2026-01-01T00:00:00Z")), None);
        assert_eq!(
            p.last_fire(utc("2026-01-01T00:00:00Z")),
            Some(utc("2021-07-23T09:00:00Z"))
        );
        // Across a new year, a December fire is still found and reported as missed.
        let p = plan("0 0 9 23 12 * 2021,2023", "America/Mexico_City", "12h");
        assert_eq!(
            p.on_start(utc("2024-01-05T00:00:00Z")),
            Some(Decision::Missed {
                issue: id("2023-12"),
                fired_at: utc("2023-12-23T15:00:00Z")
            })
        );
    }

    #[test]
    fn last_fire_skips_short_months_and_honours_weekdays() {
        let p = plan("0 0 9 31 * *", "UTC", "12h");
        assert_eq!(
            p.last_fire(utc("2026-07-15T00:00:00Z")),
            Some(utc("2026-05-31T09:00:00Z"))
        );
        // The first Monday of the month: day of month and day of week must both match.
        let p = plan("0 0 9 1-7 * Mon", "UTC", "12h");
        let at = utc("2026-07-05T00:00:00Z");
        assert_eq!(p.last_fire(at), Some(utc("2026-06-01T09:00:00Z")));
        assert_eq!(p.next_fire(at), Some(utc("2026-07-06T09:00:00Z")));
    }

    const NEWSLETTER: &str = config::MINIMAL_FOR_TESTS;

    #[test]
    fn config_without_cron_has_no_plan_and_five_fields_get_a_hint() {
        let c = config::parse(NEWSLETTER, Path::new("brief.toml")).unwrap();
        assert!(Plan::new(&c.schedule).is_none());

        let text = format!("{NEWSLETTER}\n[schedule]\ncron = \"0 9 23 * *\"\n");
        let e = config::parse(&text, Path::new("brief.toml")).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.starts_with("brief.toml:11:"), "{e}");
        assert!(
            e.contains("it has 5 fields") && e.contains("try \"0 0 9 23 * *\""),
            "{e}"
        );

        let text = format!(
            "{NEWSLETTER}\n[schedule]\ncron = \"0 0 9 23 * *\"\ntimezone = \"America/Mexico_City\"\ncatch_up = \"12h\"\n"
        );
        let c = config::parse(&text, Path::new("brief.toml")).unwrap();
        let p = Plan::new(&c.schedule).unwrap();
        assert_eq!(p.timezone(), chrono_tz::America::Mexico_City);
        assert_eq!(
            p.next_fire(utc("2026-07-01T00:00:00Z")),
            Some(utc("2026-07-23T15:00:00Z"))
        );
    }
}
