//! `brief subscribers`: list, add, remove and import, over the CSV file and the database.

use std::collections::HashSet;
use std::process::ExitCode;

use anyhow::bail;

use super::SubscribersCommand;
use crate::address::{parse_address, AddressKey};
use crate::app::App;
use crate::error::UsageError;
use crate::ledger::{Ledger, Reason};

pub(super) fn run(app: &App, action: SubscribersCommand) -> anyhow::Result<ExitCode> {
    let mut ledger = app.open_ledger()?;
    let parse = |a: &str| parse_address(a).map_err(UsageError::msg);
    match action {
        SubscribersCommand::List => list(app, &ledger),
        SubscribersCommand::Add { address, name } => {
            let address = parse(&address)?;
            if let Some(r) = ledger.suppression(&AddressKey::of(&address))? {
                bail!(
                    "{address} is {}: brief does not re-subscribe a suppressed address",
                    r.as_str()
                );
            }
            let name = name.as_deref().map(crate::issue::one_line);
            if ledger.add_subscriber(&address, name.as_deref(), app.clock.now_ms())? {
                println!("added {address}");
            } else {
                println!("{address} is already on the list");
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscribersCommand::Remove { address } => {
            let address = parse(&address)?;
            let key = AddressKey::of(&address);
            if let Some(r) = ledger.suppression(&key)? {
                println!("{address} is already {}: nothing changed", r.as_str());
                return Ok(ExitCode::SUCCESS);
            }
            // Suppressing an address nobody is subscribed with would hide a typo: the reader
            // meant stays subscribed while staff believe otherwise.
            if !app.on_the_list(&ledger, &key)? {
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
            let n = app.import_subscribers(&mut ledger, &file, |p| eprintln!("{p}"))?;
            println!(
                "imported {}: {} added, {} already on the list, {} suppressed (not re-subscribed), {} bad rows",
                file.display(),
                n.added,
                n.known,
                n.suppressed,
                n.bad
            );
            Ok(if n.bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn list(app: &App, ledger: &Ledger) -> anyhow::Result<ExitCode> {
    let stored = ledger.stored_subscribers()?;
    let mut seen = HashSet::new();
    let mut bad = Vec::new();
    let mut rows = Vec::new();
    app.each_subscriber(
        &stored,
        |s| {
            if seen.insert(AddressKey::of(&s.address)) {
                rows.push(s);
            }
            Ok(())
        },
        |p| bad.push(p),
    )?;
    for s in &rows {
        println!(
            "{}\t{}\t{}",
            s.address,
            App::subscriber_state(ledger, &AddressKey::of(&s.address))?,
            s.name.as_deref().unwrap_or("")
        );
    }
    // Suppressed addresses that are on no list any more still show, so staff see them.
    for (key, reason) in ledger.suppressions()? {
        if !seen.contains(&key) {
            println!("{key}\t{reason}\t");
        }
    }
    for p in &bad {
        eprintln!("{p}");
    }
    Ok(ExitCode::SUCCESS)
}
