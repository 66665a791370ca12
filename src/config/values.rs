//! The value parsers of the config file (durations, mailboxes, cron expressions, time zones, base
//! URLs, date formats), with the serde functions that use them, and [`Secret`].

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::error::Invalid;

/// A secret string: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Parses a duration like `"30s"`, `"5m"`, `"12h"`, `"1h 30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, Invalid> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        Invalid(format!(
            "invalid duration `{s}` ({e}): write it like \"30s\", \"5m\" or \"12h\""
        ))
    })
}

pub(super) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

pub(super) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn parse_mailbox(s: &str) -> Result<Mailbox, Invalid> {
    s.parse::<Mailbox>().map_err(|e| {
        Invalid(format!(
            "invalid mailbox `{s}` ({e}): write `Name <user@example.org>` or `user@example.org`"
        ))
    })
}

pub(super) fn de_mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<Mailbox, D::Error> {
    let s = String::deserialize(d)?;
    parse_mailbox(&s).map_err(serde::de::Error::custom)
}

pub(super) fn de_opt_mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mailbox>, D::Error> {
    let s = String::deserialize(d)?;
    parse_mailbox(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

pub(super) fn de_mailboxes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Mailbox>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| parse_mailbox(s))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

pub(super) fn de_date_format<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use chrono::format::{Item, StrftimeItems};
    let s = String::deserialize(d)?;
    if StrftimeItems::new(&s).any(|i| matches!(i, Item::Error)) {
        return Err(serde::de::Error::custom(format!(
            "invalid date format `{s}`: use chrono strftime fields like \"%m.%d.%y\" or \"%B %-d, %Y\""
        )));
    }
    Ok(s)
}

/// [`de_date_format`] of a key that may be left out.
pub(super) fn de_opt_date_format<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    de_date_format(d).map(Some)
}

/// Parses a cron expression with a seconds field first; five fields get a hint. An expression
/// that can never fire (February 31, April 31, a year that is not in its range) is refused:
/// it would pass for a schedule and send nothing, ever.
pub fn parse_cron(s: &str) -> Result<cron::Schedule, Invalid> {
    let schedule = s.parse::<cron::Schedule>().map_err(|e| {
        let fields = s.split_whitespace().count();
        Invalid(if fields == 5 {
            format!(
                "invalid cron expression `{s}`: it has 5 fields, but brief's cron starts with a seconds field: try \"0 {s}\""
            )
        } else {
            format!(
                "invalid cron expression `{s}` ({e}): write 6 fields, seconds first, like \"0 0 9 23 * *\""
            )
        })
    })?;
    // cron walks a bounded range of years (to 2100), so a search from 1970 ends: no date in it
    // matches an impossible day such as the 31st of February. A fixed start keeps `parse` pure;
    // a schedule whose last fire is past (a year field) is the daemon's to report, not this.
    let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    if schedule.after(&epoch).next().is_none() {
        return Err(Invalid(format!(
            "`[schedule] cron` = \"{s}\" can never fire: no date matches it (a day the month \
             never has, such as February 31, or a year out of range); pick a day every chosen \
             month has, e.g. \"0 0 9 28 2 *\""
        )));
    }
    Ok(schedule)
}

pub(super) fn de_opt_cron<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<cron::Schedule>, D::Error> {
    let s = String::deserialize(d)?;
    parse_cron(&s).map(Some).map_err(serde::de::Error::custom)
}

pub(super) fn de_timezone<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<chrono_tz::Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "unknown time zone `{s}`: use an IANA name like \"America/Mexico_City\""
        ))
    })
}

pub(super) fn de_base_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let s = String::deserialize(d)?;
    let mut url =
        Url::parse(&s).map_err(|e| serde::de::Error::custom(format!("invalid URL `{s}`: {e}")))?;
    if url.cannot_be_a_base() {
        return Err(serde::de::Error::custom(format!(
            "`{s}` cannot be a base URL"
        )));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
