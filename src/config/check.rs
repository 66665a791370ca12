//! The checks of a parsed config: [`validate`] refuses what cannot work, naming the key's line;
//! [`delivery_warnings`] and [`unset_env`] list what works but will hurt.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use super::lines::key_line;
use super::sections::{
    Config, Tls, TransportKind, BOUNCE_MAX_SIZE_RANGE, MAX_CONNECTIONS_PER_CLIENT,
};

pub(super) fn validate(c: &Config, text: &str, path: &Path) -> anyhow::Result<()> {
    let at = |table: &str, key: &str| {
        format!(
            "{}:{}: `{table}.{key}`",
            path.display(),
            key_line(text, &[table, key])
        )
    };
    if c.delivery.concurrency == 0 || c.delivery.concurrency > 256 {
        bail!(
            "{} must be between 1 and 256",
            at("delivery", "concurrency")
        );
    }
    if c.delivery.max_attempts == 0 {
        bail!("{} must be at least 1", at("delivery", "max_attempts"));
    }
    if c.delivery.breaker == 1 {
        // One failure says nothing about the relay: it would stop the run at any bad address.
        bail!(
            "{} must be 0 (off) or at least 2",
            at("delivery", "breaker")
        );
    }
    if c.delivery.retry_min > c.delivery.retry_max {
        bail!(
            "{} must not be longer than `delivery.retry_max`",
            at("delivery", "retry_min")
        );
    }
    if c.content.feed_timeout.is_zero() {
        bail!("{} must be longer than 0s", at("content", "feed_timeout"));
    }
    if c.content.link_timeout.is_zero() {
        bail!("{} must be longer than 0s", at("content", "link_timeout"));
    }
    if let Some(d) = &c.dkim {
        if d.second_selector.is_some() != d.second_private_key_file.is_some() {
            bail!(
                "{}:{}: `dkim.second_selector` and `dkim.second_private_key_file` go together: \
                 set both for a second signature, or neither",
                path.display(),
                key_line(text, &["dkim"])
            );
        }
        if d.second_selector.as_deref() == Some(d.selector.as_str()) {
            bail!(
                "{}:{}: `dkim.second_selector` must differ from `dkim.selector`: each key is \
                 published under its own selector",
                path.display(),
                key_line(text, &["dkim", "second_selector"])
            );
        }
    }
    if c.server.confirm_ttl.is_zero() {
        bail!("{} must be longer than 0s", at("server", "confirm_ttl"));
    }
    if c.server.signups_per_hour == 0 {
        bail!(
            "{} must be at least 1 (sign-ups are refused only past it)",
            at("server", "signups_per_hour")
        );
    }
    if c.server.header_timeout.is_zero() {
        bail!("{} must be longer than 0s", at("server", "header_timeout"));
    }
    if c.server.request_timeout.is_zero() {
        bail!("{} must be longer than 0s", at("server", "request_timeout"));
    }
    if !(1..=MAX_CONNECTIONS_PER_CLIENT).contains(&c.server.connections_per_client) {
        bail!(
            "{} must be between 1 and {MAX_CONNECTIONS_PER_CLIENT} (one client must not hold \
             the connections every reader needs)",
            at("server", "connections_per_client")
        );
    }
    for (i, f) in c.content.feeds.iter().enumerate() {
        if f.url.scheme() != "https" && f.url.scheme() != "http" {
            bail!(
                "{}:{}: feed `{}` must be an http or https URL",
                path.display(),
                f.line,
                f.url
            );
        }
        let languages = &c.newsletter.languages;
        if let Some(lang) = f.lang.as_ref().filter(|l| !languages.all().contains(l)) {
            bail!(
                "{}:{}: `lang` of feed `{}`: `{lang}` is a language that `newsletter.languages` does not list ({})",
                path.display(),
                key_line(text, &["content", "feeds", &i.to_string(), "lang"]),
                f.url,
                languages
            );
        }
    }
    if c.content.feed_max_bytes == 0 {
        bail!("{} must be at least 1", at("content", "feed_max_bytes"));
    }
    if c.smtp.port == 0 {
        bail!(
            "{} must be between 1 and 65535: 587 for STARTTLS submission, 465 for implicit TLS, 25 for relay",
            at("smtp", "port")
        );
    }
    if c.smtp.password_env.is_some() && c.smtp.username.is_none() {
        bail!(
            "{} is set but `smtp.username` is not: AUTH needs both",
            at("smtp", "password_env")
        );
    }
    for (key, name) in [
        ("password_env", &c.smtp.password_env),
        ("secret_env", &c.server.secret_env),
        ("admin_token_env", &c.server.admin_token_env),
    ] {
        if let Some(name) = name {
            let table = if key == "password_env" {
                "smtp"
            } else {
                "server"
            };
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                bail!("{} is not an environment variable name", at(table, key));
            }
        }
    }
    if let Some(b) = &c.bounces {
        let key = |keys: &[&str]| format!("{}:{}", path.display(), key_line(text, keys));
        if b.address.email.user().contains('+') {
            bail!(
                "{}: `bounces.address` {} already holds a `+`: brief adds `+TAG` to it for each \
                 delivery; use the plain address",
                key(&["bounces", "address"]),
                b.address.email
            );
        }
        if b.soft_limit == 0 {
            bail!(
                "{}: `bounces.soft_limit` must be at least 1",
                key(&["bounces", "soft_limit"])
            );
        }
        if !BOUNCE_MAX_SIZE_RANGE.contains(&b.max_size) {
            bail!(
                "{}: `bounces.max_size` is {} bytes; it must be between {} and {} (1 MiB, the \
                 default, holds any real bounce)",
                key(&["bounces", "max_size"]),
                b.max_size,
                BOUNCE_MAX_SIZE_RANGE.start(),
                BOUNCE_MAX_SIZE_RANGE.end()
            );
        }
        let mut names = vec![(
            "bounces",
            "webhook_token_env",
            b.webhook_token_env.as_deref(),
        )];
        if let Some(imap) = &b.imap {
            if imap.tls == Tls::None && !crate::tls::is_loopback_host(&imap.host) {
                bail!(
                    "{}: `bounces.imap.tls = \"none\"` sends the mailbox password and every \
                     report in clear text to {}, which is not this machine: use `tls = \"tls\"` \
                     (port 993) or `\"starttls\"` (143); plain text is for a server on \
                     localhost only",
                    key(&["bounces", "imap", "tls"]),
                    imap.host
                );
            }
            names.push(("bounces.imap", "password_env", Some(&imap.password_env)));
            if imap.host.is_empty() || imap.port == 0 {
                bail!(
                    "{}: `bounces.imap` needs a host and a port (993 for TLS)",
                    key(&["bounces", "imap"])
                );
            }
            if imap.interval < Duration::from_secs(1) {
                bail!(
                    "{}: `bounces.imap.interval` must be at least 1s",
                    key(&["bounces", "imap", "interval"])
                );
            }
        }
        for (table, k, name) in names {
            if let Some(name) = name {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    let keys: Vec<&str> = table.split('.').chain([k]).collect();
                    bail!(
                        "{}: `{table}.{k}` is not an environment variable name",
                        key(&keys)
                    );
                }
            }
        }
    }
    if let Some(canary) = c.schedule.canary {
        if canary.is_zero() {
            bail!(
                "{} must be longer than 0s (leave it out for no canary window)",
                at("schedule", "canary")
            );
        }
        if c.server.staff.is_empty() {
            bail!(
                "{} needs `server.staff`: the canary copies go to the staff addresses",
                at("schedule", "canary")
            );
        }
    }
    let scheme = c.server.public_url.scheme();
    if scheme != "https" && scheme != "http" {
        bail!(
            "{} must be an http or https URL",
            at("server", "public_url")
        );
    }
    Ok(())
}

/// What a config that sends over SMTP gets wrong for real delivery, though it works: big
/// receivers (Gmail, Yahoo) want an https one-click unsubscribe URL readers can reach and DKIM
/// aligned with the From domain; `example.*` senders and AUTH over plain text are mistakes.
/// Nothing for the outbox transport.
pub fn delivery_warnings(c: &Config, text: &str) -> Vec<String> {
    if c.smtp.transport != TransportKind::Smtp {
        return Vec::new();
    }
    let at = |keys: &[&str]| format!("{}:{}", c.source.display(), key_line(text, keys));
    let mut w = Vec::new();
    let url = &c.server.public_url;
    let local = match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    };
    if url.scheme() != "https" || local {
        w.push(format!(
            "{}: `server.public_url` is {url}: the unsubscribe and \"View in browser\" links in \
             every message start with it, and Gmail and Yahoo want an https address readers can \
             reach; set it to the public https:// address of `brief run`",
            at(&["server", "public_url"])
        ));
    }
    if let Some(name) = c.smtp.helo_name.as_deref().map(str::trim) {
        let literal = name.parse::<std::net::IpAddr>().is_ok();
        if !literal && !name.trim_end_matches('.').contains('.') {
            w.push(format!(
                "{}: `smtp.helo_name` is \"{name}\", not a fully qualified name: strict relays \
                 refuse it (Postfix: \"504 5.5.2 need fully-qualified hostname\"); use the \
                 machine's full name, e.g. \"mail.{}\", or remove the key",
                at(&["smtp", "helo_name"]),
                c.smtp.sender_domain
            ));
        }
    }
    let from = c.newsletter.from.email.domain().to_ascii_lowercase();
    match &c.dkim {
        None => w.push(format!(
            "{}: no `[dkim]` table: unsigned bulk mail is refused or sent to spam by Gmail and \
             Yahoo; add `[dkim] domain, selector, private_key_file` (see the DKIM part of docs/operating.md)",
            c.source.display()
        )),
        Some(d) => {
            let dkim = d.domain.to_ascii_lowercase();
            let aligned = from == dkim
                || from.ends_with(&format!(".{dkim}"))
                || dkim.ends_with(&format!(".{from}"));
            if !aligned {
                w.push(format!(
                    "{}: `dkim.domain` {dkim} is not aligned with the From domain {from}: DMARC \
                     passes only when they share their domain; sign with {from} (or its parent)",
                    at(&["dkim", "domain"])
                ));
            }
        }
    }
    let example = |domain: &str| {
        ["example.org", "example.com", "example.net"]
            .iter()
            .any(|e| domain == *e || domain.ends_with(&format!(".{e}")))
    };
    for (key, mailbox) in [
        ("from", Some(&c.newsletter.from)),
        ("reply_to", c.newsletter.reply_to.as_ref()),
    ] {
        if let Some(m) = mailbox.filter(|m| example(&m.email.domain().to_ascii_lowercase())) {
            w.push(format!(
                "{}: `newsletter.{key}` is {}, an example domain that cannot receive mail or \
                 pass DKIM: use the center's own address",
                at(&["newsletter", key]),
                m.email
            ));
        }
    }
    if c.smtp.username.is_some() && c.smtp.tls == Tls::None {
        w.push(format!(
            "{}: `smtp.username` is set with `tls = \"none\"`: the password would cross the \
             network in clear text; set `tls = \"starttls\"` (port 587) or `\"tls\"` (465)",
            at(&["smtp", "tls"])
        ));
    }
    w
}

/// The warnings for `*_env` keys whose variable is not set (or empty) in this environment.
pub(super) fn unset_env(c: &Config, text: &str) -> Vec<String> {
    let bounces = c.bounces.as_ref();
    let imap = bounces.and_then(|b| b.imap.as_ref());
    let imap_var = imap.map(|i| i.password_env.clone());
    [
        (
            "smtp",
            "password_env",
            &c.smtp.password_env,
            c.smtp.password.is_some(),
            "brief cannot log in to the SMTP relay",
        ),
        (
            "server",
            "secret_env",
            &c.server.secret_env,
            c.server.secret.is_some(),
            "unsubscribe links cannot be signed, so `brief send` and `brief run` stop",
        ),
        (
            "server",
            "admin_token_env",
            &c.server.admin_token_env,
            c.server.admin_token.is_some(),
            "the admin API (`POST /admin/test-send`) is off",
        ),
        (
            "bounces",
            "webhook_token_env",
            &bounces.and_then(|b| b.webhook_token_env.clone()),
            bounces.is_some_and(|b| b.webhook_token.is_some()),
            "the bounce webhook (`POST /webhooks/bounce`) is off",
        ),
        (
            "bounces.imap",
            "password_env",
            &imap_var,
            imap.is_some_and(|i| i.password.is_some()),
            "the daemon cannot read the bounce mailbox",
        ),
    ]
    .into_iter()
    .filter_map(|(table, key, var, set, effect)| {
        let var = var.as_ref().filter(|_| !set)?;
        let keys: Vec<&str> = table.split('.').chain([key]).collect();
        Some(format!(
            "{}:{}: `{table}.{key}` names the environment variable {var}, which is not set: \
             {effect}; set {var}, or remove the key",
            c.source.display(),
            key_line(text, &keys)
        ))
    })
    .collect()
}
