//! The configuration file: typed, validated once at load, with secrets only from the environment.
//!
//! `parse` is pure (text in, `Config` out); `load` reads the file, resolves relative paths against
//! the config file's folder and reads the secrets named by `*_env` keys. Every error names the
//! file, the line and the key.
//!
//! A folder: `sections` (the typed tables, [`Config`] first), `values` (the value parsers and
//! [`Secret`]), `lines` (where a key is, for messages) and `check` (what is refused, and the
//! warnings). This file parses and loads; the children never import it, and it re-exports what
//! callers name as `crate::config::X`. The unit tests of the checks are here too: each goes
//! through `parse`, as a config does.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

mod check;
mod lines;
mod sections;
mod values;

pub use check::delivery_warnings;
pub use lines::{key_line, line_of};
pub use sections::NewsletterText;
pub use sections::{
    default_bounce_max_size, default_soft_limit, Ambiguous, Bounces, Config, Content, Delivery,
    Dkim, Feed, FeedWindow, Imap, Log, LogFormat, Newsletter, Schedule, Server, Smtp, Subscribers,
    Tls, TransportKind, BOUNCE_MAX_SIZE_RANGE, MAX_CONNECTIONS_PER_CLIENT,
};
pub use values::{parse_cron, parse_duration, Secret};

use check::{unset_env, validate};

/// Parses config text. `path` is used only in error messages. Relative paths are left as they are.
pub fn parse(text: &str, path: &Path) -> anyhow::Result<Config> {
    use serde::Deserialize;
    let fail = |e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| line_of(text, s.start))
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        anyhow::anyhow!("{}{line}: {}", path.display(), e.message().trim_end())
    };
    let mut doc = toml::de::DeTable::parse(text).map_err(fail)?;
    let texts = language_tables(&mut doc).map_err(fail)?;
    let mut config = Config::deserialize(toml::de::Deserializer::from(doc)).map_err(fail)?;
    for (lang, at) in texts.keys() {
        if !config.newsletter.languages.all().contains(lang) {
            anyhow::bail!(
                "{}:{}: `[newsletter.{lang}]` is a language that `newsletter.languages` does not list ({})",
                path.display(),
                line_of(text, *at),
                config.newsletter.languages
            );
        }
    }
    config.newsletter.texts = texts.into_iter().map(|((l, _), t)| (l, t)).collect();
    config.source = path.to_path_buf();
    config.smtp.sender_domain = config.newsletter.from.email.domain().to_string();
    for (i, f) in config.content.feeds.iter_mut().enumerate() {
        f.line = key_line(text, &["content", "feeds", &i.to_string(), "url"]);
    }
    validate(&config, text, path)?;
    config.warnings = delivery_warnings(&config, text);
    Ok(config)
}

/// Takes the `[newsletter.LANG]` tables out of `doc` (the other keys of `[newsletter]` are
/// read by serde, which refuses unknown ones), each with where it starts.
fn language_tables(
    doc: &mut toml::Spanned<toml::de::DeTable<'_>>,
) -> Result<
    std::collections::BTreeMap<(crate::lang::Lang, usize), sections::NewsletterText>,
    toml::de::Error,
> {
    use serde::Deserialize;
    use toml::de::DeValue;
    let mut out = std::collections::BTreeMap::new();
    let Some(newsletter) = doc.get_mut().get_mut("newsletter") else {
        return Ok(out);
    };
    let DeValue::Table(table) = newsletter.get_mut() else {
        return Ok(out);
    };
    let keys: Vec<String> = table
        .iter()
        .filter(|(k, v)| {
            matches!(v.get_ref(), DeValue::Table(_))
                && crate::lang::Lang::parse(k.get_ref()).is_ok()
        })
        .map(|(k, _)| k.get_ref().to_string())
        .collect();
    for key in keys {
        let (k, v) = table.remove_entry(key.as_str()).expect("listed just now");
        let lang = crate::lang::Lang::parse(k.get_ref()).expect("checked just now");
        let at = k.span().start;
        let t = sections::NewsletterText::deserialize(toml::de::ValueDeserializer::from(v))?;
        out.insert((lang, at), t);
    }
    Ok(out)
}

/// Reads and parses the config file, resolves relative paths against its folder and reads the
/// secrets from the environment.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut config = parse(&text, path)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let resolve = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = normalize(&base.join(&*p));
        }
    };
    resolve(&mut config.content.dir);
    resolve(&mut config.subscribers.file);
    resolve(&mut config.delivery.database);
    resolve(&mut config.smtp.outbox_dir);
    if let Some(t) = &mut config.newsletter.templates {
        resolve(t);
    }
    if let Some(ca) = &mut config.smtp.ca_file {
        resolve(ca);
    }
    if let Some(d) = &mut config.dkim {
        resolve(&mut d.private_key_file);
        if let Some(second) = &mut d.second_private_key_file {
            resolve(second);
        }
    }
    config.smtp.password = read_secret(config.smtp.password_env.as_deref(), path)?;
    config.server.secret = read_secret(config.server.secret_env.as_deref(), path)?;
    config.server.admin_token = read_secret(config.server.admin_token_env.as_deref(), path)?;
    if let Some(b) = &mut config.bounces {
        b.webhook_token = read_secret(b.webhook_token_env.as_deref(), path)?;
        if let Some(imap) = &mut b.imap {
            imap.password = read_secret(Some(&imap.password_env), path)?;
            if let Some(ca) = &mut imap.ca_file {
                resolve(ca);
            }
        }
    }
    let delivery = std::mem::take(&mut config.warnings);
    config.warnings = unset_env(&config, &text);
    config.warnings.extend(delivery);
    Ok(config)
}

/// Reads a secret from the environment variable the config names. A variable that is not set
/// leaves the secret unset: commands that need it (SMTP AUTH, the daemon's admin endpoint) say so
/// when they start, while `status` or `report` keep working without it.
fn read_secret(var: Option<&str>, path: &Path) -> anyhow::Result<Option<Secret>> {
    let Some(var) = var else { return Ok(None) };
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            tracing::debug!(
                "environment variable {var} (named by {}) is not set",
                path.display()
            );
            Ok(None)
        }
        Err(std::env::VarError::NotUnicode(_)) => bail!(
            "{}: environment variable {var} (named by the config) is not UTF-8",
            path.display()
        ),
    }
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The smallest valid config, for unit tests across the crate.
#[cfg(test)]
pub(crate) const MINIMAL_FOR_TESTS: &str = r#"
[newsletter]
name = "Life"
kicker = "BRIEF"
organization = "Center"
intro = "Hello"
from = "Center <brief@example.org>"
postal_address = "1 Main St"
"#;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MIN: &str = MINIMAL_FOR_TESTS;

    #[test]
    fn minimal_config_gets_working_defaults() {
        let c = parse(MIN, Path::new("b.toml")).unwrap();
        assert_eq!(c.smtp.transport, TransportKind::Outbox);
        assert_eq!(c.delivery.concurrency, 4);
        assert_eq!(c.newsletter.list_id(), "brief.example.org");
        assert_eq!(c.server.public_url.as_str(), "http://localhost:8080/");
        assert_eq!(c.server.header_timeout, Duration::from_secs(10));
        assert_eq!(c.server.request_timeout, Duration::from_secs(30));
        assert_eq!(c.server.connections_per_client, 32);
        assert_eq!(c.content.link_timeout, Duration::from_secs(10));
    }

    #[test]
    fn languages_and_their_texts_are_read_and_checked_at_their_line() {
        let c = parse(MIN, Path::new("b.toml")).unwrap();
        assert_eq!(c.newsletter.languages.default_lang().as_str(), "en");
        let with = MIN.replacen(
            "[newsletter]\n",
            "[newsletter]\nlanguages = [\"en\", \"es\"]\n",
            1,
        );
        let text = format!(
            "{with}\n[newsletter.es]\nname = \"Vida institucional binacional\"\ndate_format = \"%d/%m/%y\"\n"
        );
        let c = parse(&text, Path::new("b.toml")).unwrap();
        let es = crate::lang::Lang::parse("es").unwrap();
        let n = c.newsletter.localized(&es);
        assert_eq!(n.name, "Vida institucional binacional");
        assert_eq!(n.date_format, "%d/%m/%y");
        assert_eq!(
            n.kicker, c.newsletter.kicker,
            "a key left out is the default's"
        );
        // A typo inside a language's table names its line.
        let bad = format!("{with}\n[newsletter.es]\nnmae = \"x\"\n");
        let e = parse(&bad, Path::new("b.toml")).unwrap_err().to_string();
        let line = bad.lines().position(|l| l.starts_with("nmae")).unwrap() + 1;
        assert!(
            e.starts_with(&format!("b.toml:{line}: unknown field `nmae`")),
            "{e}"
        );
        // A table for a language not listed.
        let e = parse(
            &format!("{MIN}\n[newsletter.es]\nname = \"x\"\n"),
            Path::new("b.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "`[newsletter.es]` is a language that `newsletter.languages` does not list (en)"
            ),
            "{e}"
        );
        let e = parse(
            &MIN.replacen(
                "[newsletter]\n",
                "[newsletter]\nlanguages = [\"en\", \"english\"]\n",
                1,
            ),
            Path::new("b.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`english` is not a language tag"), "{e}");
    }

    #[test]
    fn a_feeds_language_must_be_configured_and_is_refused_at_its_line() {
        let feeds = "\n[[content.feeds]]\nurl = \"https://a.example.org/feed.json\"\n\n[[content.feeds]]\nurl = \"https://b.example.org/feed.json\"\nlang = \"es\"\n";
        let text = format!("{MIN}{feeds}");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        let line = text.lines().position(|l| l.starts_with("lang")).unwrap() + 1;
        assert!(
            e.starts_with(&format!(
                "b.toml:{line}: `lang` of feed `https://b.example.org/feed.json`: `es` is a language that `newsletter.languages` does not list (en)"
            )),
            "{e}"
        );
        let with = MIN.replacen(
            "[newsletter]\n",
            "[newsletter]\nlanguages = [\"en\", \"es\"]\n",
            1,
        );
        let c = parse(&format!("{with}{feeds}"), Path::new("b.toml")).unwrap();
        assert_eq!(c.content.feeds[0].lang, None);
        assert_eq!(c.content.feeds[1].lang.as_ref().unwrap().as_str(), "es");
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = format!("{MIN}\n[delivery]\nconcurency = 3\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert!(
            e.starts_with("b.toml:11: unknown field `concurency`"),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_and_five_field_cron_explain_themselves() {
        let text = format!("{MIN}\n[delivery]\nretry_min = \"soon\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert!(
            e.contains("b.toml:11") && e.contains("invalid duration `soon`"),
            "{e}"
        );
        let text = format!("{MIN}\n[schedule]\ncron = \"0 9 23 * *\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert!(e.contains("try \"0 0 9 23 * *\""), "{e}");
    }

    #[test]
    fn a_cron_that_can_never_fire_is_refused_naming_the_key() {
        for cron in ["0 0 9 31 2 *", "0 0 9 30 2 *", "0 0 9 31 4,6,9,11 *"] {
            let text = format!("{MIN}\n[schedule]\ncron = \"{cron}\"\n");
            let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
            assert!(
                e.contains("b.toml:11")
                    && e.contains("`[schedule] cron`")
                    && e.contains("never fire"),
                "{cron}: {e}"
            );
        }
        // Rare but possible: February 29, and the 31st of only the months that have one.
        for cron in ["0 0 9 29 2 *", "0 0 9 31 1-12 *"] {
            let text = format!("{MIN}\n[schedule]\ncron = \"{cron}\"\n");
            parse(&text, Path::new("b.toml")).unwrap_or_else(|e| panic!("{cron}: {e:#}"));
        }
    }

    #[test]
    fn semantic_errors_name_the_key_line() {
        let text = format!("{MIN}\n[delivery]\nconcurrency = 0\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `delivery.concurrency` must be between 1 and 256"
        );
    }

    #[test]
    fn smtp_settings_that_hurt_delivery_are_warnings_naming_their_line() {
        let risky = "[newsletter]\nname = \"Life\"\nkicker = \"BRIEF\"\norganization = \"Center\"\n\
            intro = \"Hello\"\nfrom = \"Center <brief@example.org>\"\npostal_address = \"1 Main St\"\n\
            [smtp]\ntransport = \"smtp\"\nhost = \"relay.center.mx\"\nusername = \"brief\"\n\
            [server]\npublic_url = \"http://localhost:8080/\"\n";
        let c = parse(risky, Path::new("b.toml")).unwrap();
        let w = c.warnings.join("\n");
        assert_eq!(c.warnings.len(), 4, "{w}");
        assert!(
            w.contains("b.toml:13: `server.public_url` is http://localhost:8080/"),
            "{w}"
        );
        assert!(w.contains("b.toml: no `[dkim]` table"), "{w}");
        assert!(
            w.contains("b.toml:6: `newsletter.from` is brief@example.org, an example domain"),
            "{w}"
        );
        assert!(
            w.contains("`smtp.username` is set with `tls = \"none\"`"),
            "{w}"
        );

        let good = "[newsletter]\nname = \"Life\"\nkicker = \"BRIEF\"\norganization = \"Center\"\n\
            intro = \"Hello\"\nfrom = \"Center <brief@news.center.mx>\"\npostal_address = \"1 Main St\"\n\
            [smtp]\ntransport = \"smtp\"\nhost = \"relay.center.mx\"\nport = 587\ntls = \"starttls\"\n\
            username = \"brief\"\n[server]\npublic_url = \"https://brief.center.mx/\"\n\
            [dkim]\ndomain = \"center.mx\"\nselector = \"s1\"\nprivate_key_file = \"k.pem\"\n";
        assert_eq!(
            parse(good, Path::new("b.toml")).unwrap().warnings,
            Vec::<String>::new()
        );
        let unaligned = good.replace("domain = \"center.mx\"", "domain = \"mailer.example.net\"");
        let w = parse(&unaligned, Path::new("b.toml")).unwrap().warnings;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("`dkim.domain` mailer.example.net is not aligned with the From domain news.center.mx"), "{w:?}");
        // The outbox sends nothing anywhere: nothing to warn about.
        assert!(parse(MIN, Path::new("b.toml")).unwrap().warnings.is_empty());
        // A bare EHLO name; a full one and an address literal are fine.
        let bare = good.replace("port = 587\n", "port = 587\nhelo_name = \"vm\"\n");
        let w = parse(&bare, Path::new("b.toml")).unwrap().warnings;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("b.toml:12: `smtp.helo_name` is \"vm\", not a fully qualified name"),
            "{w:?}"
        );
        for fine in ["mail.center.mx", "192.0.2.7"] {
            let text = good.replace(
                "port = 587\n",
                &format!("port = 587\nhelo_name = \"{fine}\"\n"),
            );
            assert!(
                parse(&text, Path::new("b.toml"))
                    .unwrap()
                    .warnings
                    .is_empty(),
                "{fine}"
            );
        }
    }

    #[test]
    fn a_zero_header_timeout_is_refused() {
        let text = format!("{MIN}\n[server]\nheader_timeout = \"0s\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `server.header_timeout` must be longer than 0s"
        );
    }

    #[test]
    fn request_timeout_and_connections_per_client_are_checked() {
        let text = format!("{MIN}\n[server]\nrequest_timeout = \"0s\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `server.request_timeout` must be longer than 0s"
        );
        for n in [0, MAX_CONNECTIONS_PER_CLIENT + 1] {
            let text = format!("{MIN}\n[server]\nconnections_per_client = {n}\n");
            let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
            assert!(
                e.starts_with(
                    "b.toml:11: `server.connections_per_client` must be between 1 and 256"
                ),
                "{e}"
            );
        }
        let text =
            format!("{MIN}\n[server]\nrequest_timeout = \"5s\"\nconnections_per_client = 4\n");
        let c = parse(&text, Path::new("b.toml")).unwrap();
        assert_eq!(c.server.request_timeout, Duration::from_secs(5));
        assert_eq!(c.server.connections_per_client, 4);
    }

    #[test]
    fn link_timeout_parses_and_zero_is_refused() {
        let text = format!("{MIN}\n[content]\nlink_timeout = \"1s\"\n");
        let c = parse(&text, Path::new("b.toml")).unwrap();
        assert_eq!(c.content.link_timeout, Duration::from_secs(1));
        let text = format!("{MIN}\n[content]\nlink_timeout = \"0s\"\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `content.link_timeout` must be longer than 0s"
        );
    }

    #[test]
    fn smtp_port_0_is_refused_at_its_line() {
        let text = format!("{MIN}\n[smtp]\ntransport = \"smtp\"\nport = 0\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:12: `smtp.port` must be between 1 and 65535: 587 for STARTTLS submission, 465 for implicit TLS, 25 for relay"
        );
    }

    #[test]
    fn an_env_key_naming_an_unset_variable_is_a_warning_naming_key_and_variable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.toml");
        let var = "BRIEF_UNIT_TEST_NEVER_SET_ADMIN_TOKEN";
        std::fs::write(
            &p,
            format!("{MIN}\n[server]\nadmin_token_env = \"{var}\"\n"),
        )
        .unwrap();
        let c = load(&p).unwrap();
        assert_eq!(
            c.warnings,
            [format!(
                "{}:11: `server.admin_token_env` names the environment variable {var}, which is \
                 not set: the admin API (`POST /admin/test-send`) is off; set {var}, or remove the key",
                p.display()
            )]
        );
    }

    #[test]
    fn bounces_take_a_plain_address_and_name_what_is_wrong() {
        let c = parse(
            &format!("{MIN}\n[bounces]\naddress = \"bounces@example.org\"\n"),
            Path::new("b.toml"),
        )
        .unwrap();
        let b = c.bounces.unwrap();
        assert_eq!(b.soft_limit, 3);
        assert!(b.imap.is_none() && b.webhook_token.is_none());
        let imap = parse(
            &format!(
                "{MIN}\n[bounces]\naddress = \"bounces@example.org\"\n[bounces.imap]\n\
                 host = \"imap.example.org\"\nusername = \"bounces\"\npassword_env = \"X\"\n"
            ),
            Path::new("b.toml"),
        )
        .unwrap();
        let i = imap.bounces.unwrap().imap.unwrap();
        assert_eq!((i.port, i.tls), (993, Tls::Tls));
        assert_eq!(
            (i.folder.as_str(), i.processed_folder.as_str()),
            ("INBOX", "brief-processed")
        );
        assert_eq!(i.interval, Duration::from_secs(300));
        for (extra, want) in [
            (
                "address = \"bounces+x@example.org\"",
                "b.toml:11: `bounces.address` bounces+x@example.org already holds a `+`",
            ),
            (
                "address = \"bounces@example.org\"\nsoft_limit = 0",
                "b.toml:12: `bounces.soft_limit` must be at least 1",
            ),
            (
                "address = \"bounces@example.org\"\nwebhook_token_env = \"A=B\"",
                "b.toml:12: `bounces.webhook_token_env` is not an environment variable name",
            ),
        ] {
            let e = parse(&format!("{MIN}\n[bounces]\n{extra}\n"), Path::new("b.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }

    #[test]
    fn imap_without_tls_is_for_this_machine_only() {
        let imap = |host: &str, tls: &str| {
            format!(
                "{MIN}\n[bounces]\naddress = \"bounces@example.org\"\n[bounces.imap]\n\
                 host = \"{host}\"\nport = 143\n{tls}username = \"b\"\npassword_env = \"X\"\n"
            )
        };
        for host in [
            "127.0.0.1",
            "localhost",
            "LocalHost",
            "::1",
            "[::1]",
            "127.0.0.9",
        ] {
            let c = parse(&imap(host, "tls = \"none\"\n"), Path::new("b.toml"));
            assert!(c.is_ok(), "{host}: {:?}", c.err());
        }
        for host in [
            "imap.example.org",
            "192.0.2.1",
            "10.0.0.1",
            "localhost.example.org",
        ] {
            let e = parse(&imap(host, "tls = \"none\"\n"), Path::new("b.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(
                    "b.toml:15: `bounces.imap.tls = \"none\"` sends the mailbox password"
                ),
                "{host}: {e}"
            );
            assert!(e.contains(host), "{e}");
            for tls in ["tls = \"starttls\"\n", "tls = \"tls\"\n", ""] {
                assert!(
                    parse(&imap(host, tls), Path::new("b.toml")).is_ok(),
                    "{host} {tls}"
                );
            }
        }
    }

    #[test]
    fn the_bounce_size_limit_defaults_to_1_mib_within_bounds() {
        let with = |extra: &str| {
            parse(
                &format!("{MIN}\n[bounces]\naddress = \"bounces@example.org\"\n{extra}"),
                Path::new("b.toml"),
            )
        };
        assert_eq!(with("").unwrap().bounces.unwrap().max_size, 1024 * 1024);
        assert_eq!(
            with("max_size = 2048\n").unwrap().bounces.unwrap().max_size,
            2048
        );
        for bad in ["max_size = 0", "max_size = 1023", "max_size = 16777217"] {
            let e = with(&format!("{bad}\n")).unwrap_err().to_string();
            assert!(e.starts_with("b.toml:12: `bounces.max_size` is "), "{e}");
        }
    }

    #[test]
    fn the_breaker_defaults_to_20_and_is_off_at_0_but_never_1() {
        let c = parse(MIN, Path::new("b.toml")).unwrap();
        assert_eq!(c.delivery.breaker, 20);
        let text = format!("{MIN}\n[delivery]\nbreaker = 0\n");
        assert_eq!(
            parse(&text, Path::new("b.toml")).unwrap().delivery.breaker,
            0
        );
        let text = format!("{MIN}\n[delivery]\nbreaker = 1\n");
        let e = parse(&text, Path::new("b.toml")).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.toml:11: `delivery.breaker` must be 0 (off) or at least 2"
        );
    }
}
