//! `brief subscribers`: list, add (or mail a confirmation link), remove, import, export and
//! forget, over the CSV file and the database; and `brief subscribe-form`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use lettre::Address;

use super::args::SubscribersCommand;
use crate::address::{parse_address, AddressKey};
use crate::app::App;
use crate::audience::{self, RosterState};
use crate::error::UsageError;
use crate::lang::Lang;
use crate::ledger::{Ledger, Reason, SharedLedger};
use crate::signup::{Mailer, Outcome, Request};

/// `brief subscribe-form`: the daemon's sign-up form as a snippet for the center's website.
pub(super) fn form(app: &App, lang: Option<&str>) -> anyhow::Result<ExitCode> {
    let languages = &app.config.newsletter.languages;
    let lang = match lang {
        None => languages.default_lang(),
        Some(tag) => languages.matching(tag).ok_or_else(|| {
            UsageError::msg(format!(
                "--lang {tag}: `newsletter.languages` lists {languages}"
            ))
        })?,
    };
    let action = app
        .config
        .server
        .public_url
        .join("subscribe")
        .expect("public_url is a base URL");
    let form = crate::render::signup_form(app.render_context_in(lang), &action, None, "", "");
    println!("{}", form.into_string());
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn run(app: Arc<App>, action: SubscribersCommand) -> anyhow::Result<ExitCode> {
    let mut ledger = app.open_ledger()?;
    let parse = |a: &str| parse_address(a).map_err(UsageError::msg);
    match action {
        SubscribersCommand::List => list(&app, &ledger),
        SubscribersCommand::Export => export(&app, &ledger),
        SubscribersCommand::Add {
            address,
            name,
            lang,
            confirm: true,
        } => {
            let address = parse(&address)?;
            let lang = match lang_arg(&app, lang.as_deref())? {
                Some((_, configured)) => configured,
                None => app.config.newsletter.languages.default_lang().clone(),
            };
            refuse_forgotten(&app, &ledger, &address)?;
            confirm(app, ledger, address, name, lang).await
        }
        SubscribersCommand::Add {
            address,
            name,
            lang,
            ..
        } => {
            let address = parse(&address)?;
            let lang = lang_arg(&app, lang.as_deref())?.map(|(typed, _)| typed);
            refuse_forgotten(&app, &ledger, &address)?;
            if let Some(r) = ledger.suppression(&AddressKey::of(&address))? {
                bail!(
                    "{address} is {}: brief does not re-subscribe a suppressed address \
                     (`brief subscribers add {address} --confirm` mails its owner a link to \
                     join again)",
                    r.as_str()
                );
            }
            let name = name.as_deref().and_then(crate::issue::display_name);
            let now = app.clock.now_ms();
            let key = AddressKey::of(&address);
            if ledger.add_subscriber(&address, name.as_deref(), lang.as_ref(), now)? {
                // The list file's row comes first in a send: a language given for an address
                // the file lists is recorded as the reader's choice, which is over the file's.
                if let Some(lang) = &lang {
                    if audience::file_row(&app, &key)?.is_some() {
                        ledger.set_language(&key, lang, now)?;
                    }
                }
                println!("added {address}");
            } else if let Some(lang) = lang {
                let changed = ledger.set_language(&key, &lang, now)?;
                println!(
                    "{address} is already on the list; its language {} {lang}",
                    if changed { "is now" } else { "was already" }
                );
            } else {
                println!("{address} is already on the list");
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Remove { address } => {
            let address = parse(&address)?;
            let key = AddressKey::of(&address);
            if audience::forgotten(&app, &ledger)?
                .hash_of(&address)
                .is_some()
            {
                println!("{address} was forgotten: it stays suppressed; nothing changed");
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(r) = ledger.suppression(&key)? {
                println!("{address} is already {}: nothing changed", r.as_str());
                return Ok(ExitCode::SUCCESS);
            }
            // Suppressing an address nobody is subscribed with would hide a typo: the reader
            // meant stays subscribed while staff believe otherwise.
            if !audience::on_the_list(&app, &ledger, &key)? {
                eprintln!(
                    "error: {address} is not on the list (neither in {} nor added with \
                     `brief subscribers add`): nothing changed; check the spelling",
                    app.config.subscribers.file.display()
                );
                return Ok(ExitCode::from(1));
            }
            ledger.suppress(
                &address,
                Reason::Unsubscribed,
                "removed by staff",
                app.clock.now_ms(),
            )?;
            println!("unsubscribed {address}");
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Import { file } => {
            let n = audience::import_subscribers(&app, &mut ledger, &file, |p| eprintln!("{p}"))?;
            println!(
                "imported {}: {} added, {} already on the list, {} suppressed (not re-subscribed), \
                 {} pending (their own confirmation decides), {} bad rows",
                file.display(),
                n.added,
                n.known,
                n.suppressed,
                n.pending,
                n.bad
            );
            Ok(if n.bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        SubscribersCommand::Forget { address } => {
            let address = parse(&address)?;
            let forgetting = audience::forget(&app, &mut ledger, &address)?;
            let (f, in_file) = (forgetting.rows, forgetting.in_file);
            let erased = f.subscribers
                + f.signups
                + f.suppressions
                + f.test_sends
                + f.confirmation_sends
                + f.deliveries;
            if f.already && erased == 0 && forgetting.outbox_files == 0 {
                println!("{address} was forgotten already: nothing more to erase");
            } else {
                println!(
                    "forgot {address}: {} subscriber, {} sign-up, {} suppression, {} test-send, \
                     {} confirmation and {} delivery rows erased or made anonymous; only a keyed \
                     hash is kept, so the address stays suppressed",
                    f.subscribers,
                    f.signups,
                    f.suppressions,
                    f.test_sends,
                    f.confirmation_sends,
                    f.deliveries
                );
                println!(
                    "deleted {} message files to {address} from the outbox {}",
                    forgetting.outbox_files,
                    app.config.smtp.outbox_dir.display()
                );
            }
            if !f.scrubbed {
                eprintln!(
                    "warning: the ledger is busy, so copies of the erased rows may remain in its \
                     free space: run `brief subscribers forget {address}` again when nothing is \
                     sending"
                );
            }
            if in_file {
                eprintln!(
                    "warning: {address} is still in {}: brief cannot edit that file, so remove \
                     its line there (until then brief does not mail it)",
                    app.config.subscribers.file.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The `--lang` of `add`: the tag as typed and the configured language it names (by prefix:
/// `es-MX` names `es`); a usage error when it is malformed or names no configured language.
fn lang_arg(app: &App, lang: Option<&str>) -> anyhow::Result<Option<(Lang, Lang)>> {
    let Some(tag) = lang else {
        return Ok(None);
    };
    let typed = Lang::parse(tag).map_err(|e| UsageError::msg(format!("--lang: {e}")))?;
    let languages = &app.config.newsletter.languages;
    let Some(configured) = languages.matching(typed.as_str()) else {
        return Err(UsageError::msg(format!(
            "--lang: `{typed}` is none of the languages brief writes in (`[newsletter] \
             languages` in {}: {})",
            app.config.source.display(),
            languages
        ))
        .into());
    };
    Ok(Some((typed, configured.clone())))
}

/// Fails, saying why, when `address` was forgotten.
fn refuse_forgotten(app: &App, ledger: &Ledger, address: &Address) -> anyhow::Result<()> {
    if audience::forgotten(app, ledger)?.hash_of(address).is_some() {
        bail!(
            "{address} was forgotten at its owner's request (`brief subscribers forget`): \
             brief does not add it again"
        );
    }
    Ok(())
}

/// `subscribers add --confirm`: mails `address` a confirmation link, as the sign-up form does.
async fn confirm(
    app: Arc<App>,
    ledger: Ledger,
    address: Address,
    name: Option<String>,
    lang: Lang,
) -> anyhow::Result<ExitCode> {
    let mailer = Mailer {
        key: app.key().clone(),
        dkim: app.dkim_signer()?.map(Arc::new),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        app: app.clone(),
    };
    let ledger = SharedLedger::new(ledger);
    let name = name.as_deref().and_then(crate::issue::display_name);
    let outcome = mailer
        .handle(
            &ledger,
            Request {
                address: address.clone(),
                name,
                lang,
            },
        )
        .await?;
    match outcome {
        Outcome::Mailed(reply) if reply.accepted => {
            println!(
                "mailed a confirmation link to {address} (valid for {}): it is pending until its \
                 owner confirms",
                humantime::format_duration(app.config.server.confirm_ttl)
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Retrying(reply) => {
            eprintln!(
                "warning: the relay did not take the confirmation message to {address} yet ({}): \
                 it stays queued, and a running daemon (`brief run`) tries it again within seconds",
                reply.text
            );
            Ok(ExitCode::from(1))
        }
        Outcome::Mailed(reply) => {
            eprintln!(
                "error: the confirmation message to {address} was refused: {}",
                reply.text
            );
            Ok(ExitCode::from(1))
        }
        Outcome::Active => {
            println!("{address} is already active: nothing sent");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::TooSoon => {
            println!(
                "a confirmation went to {address} less than 10 minutes ago: nothing sent; \
                 try again later"
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Forgotten => {
            bail!("{address} was forgotten at its owner's request: brief does not mail it")
        }
    }
}

fn list(app: &App, ledger: &Ledger) -> anyhow::Result<ExitCode> {
    let mut bad = Vec::new();
    let rows = audience::roster(app, ledger, |p| bad.push(p))?;
    let bounces = ledger.latest_bounces()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let several = app.config.newsletter.languages.several();
    for r in &rows {
        // With more than one language, the language on record (empty: the default) follows
        // the name in every row.
        let lang = if several {
            format!("\t{}", r.lang.as_ref().map_or("", Lang::as_str))
        } else {
            String::new()
        };
        // A last column only for an address with a bounce: the others stay as they were.
        let bounce = bounces
            .get(&AddressKey::from_text(&r.address))
            .map(|b| format!("\t{b}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{}\t{}\t{}{lang}{bounce}",
            r.address,
            r.state.as_str(),
            r.name.as_deref().unwrap_or("")
        )?;
    }
    let count = |s: RosterState| rows.iter().filter(|r| r.state == s).count();
    let mut counts = vec![
        format!("{} active", count(RosterState::Active)),
        format!("{} pending", count(RosterState::Pending)),
    ];
    counts.extend(
        Reason::ALL
            .iter()
            .map(|r| format!("{} {r}", count(RosterState::Suppressed(*r)))),
    );
    let forgotten = count(RosterState::Forgotten);
    if forgotten > 0 {
        counts.push(format!("{forgotten} forgotten"));
    }
    writeln!(out, "{}", counts.join(", "))?;
    out.flush()?;
    for p in &bad {
        eprintln!("{p}");
    }
    if forgotten > 0 {
        eprintln!(
            "warning: {} still holds {forgotten} forgotten address(es): brief does not mail \
             them; remove their lines",
            app.config.subscribers.file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn export(app: &App, ledger: &Ledger) -> anyhow::Result<ExitCode> {
    let mut bad = Vec::new();
    let rows = audience::roster(app, ledger, |p| bad.push(p))?;
    let stdout = std::io::stdout();
    audience::write_roster_csv(&rows, std::io::BufWriter::new(stdout.lock()))?.flush()?;
    for p in &bad {
        eprintln!("{p}");
    }
    Ok(ExitCode::SUCCESS)
}
