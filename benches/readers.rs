//! Criterion benches of the console's subscriber search at 100,000 readers: a page of 50, by
//! part of the address or name, by state, and deep in the list, with the total count each
//! page shows. The ledger is a real SQLite file in a temporary folder, filled once: 100,000
//! readers of a sent campaign (the list file's), 1,000 of them also held by the ledger and
//! 1,000 unsubscribed. Run with `cargo bench --bench readers`.

use std::hint::black_box;

use brief::clock::Millis;
use brief::ledger::{CampaignMessage, Ledger, ReaderSearch, ReaderState, Reason, Trigger};
use criterion::{criterion_group, criterion_main, Criterion};

const READERS: u64 = 100_000;

fn filled(path: &std::path::Path) -> Ledger {
    let mut l = Ledger::open(path).expect("ledger");
    let message = CampaignMessage {
        revision: 1,
        lang: None,
        subject: "s".into(),
        template: String::new(),
        web: String::new(),
        folder_hash: None,
        unsent: 0,
        at: 1,
    };
    l.create_campaign(
        "2026-11".parse().unwrap(),
        std::slice::from_ref(&message),
        Trigger::Cli,
        Millis(1),
        None,
        |sink| {
            for i in 0..READERS {
                let a: lettre::Address = format!("reader-{i}@example{}.org", i % 97).parse()?;
                sink.add(
                    &a,
                    Some(&format!("Reader Number {i}")),
                    &format!("m{i}"),
                    None,
                )?;
            }
            Ok(())
        },
    )
    .expect("campaign");
    for i in (0..READERS).step_by(100) {
        let a: lettre::Address = format!("reader-{i}@example{}.org", i % 97).parse().unwrap();
        l.add_subscriber(&a, None, None, 2).unwrap();
        let b: lettre::Address = format!("reader-{}@example{}.org", i + 1, (i + 1) % 97)
            .parse()
            .unwrap();
        l.suppress(&b, Reason::Unsubscribed, "one-click unsubscribe", 3)
            .unwrap();
    }
    l
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let l = filled(&dir.path().join("brief.db"));
    let page = |text: &str, state: Option<ReaderState>, offset: u64| ReaderSearch {
        text: text.into(),
        state,
        offset,
        limit: 50,
    };
    let cases = [
        ("first page of every reader", page("", None, 0)),
        ("last page of every reader", page("", None, READERS - 50)),
        (
            "part of an address (reader-4242)",
            page("reader-4242", None, 0),
        ),
        (
            "part of a name, any case (NUMBER 99)",
            page("NUMBER 99", None, 0),
        ),
        ("no match", page("nobody-at-all", None, 0)),
        (
            "unsubscribed only",
            page("", Some(ReaderState::Unsubscribed), 0),
        ),
    ];
    let mut g = c.benchmark_group("search_readers at 100,000");
    g.sample_size(20)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    for (name, search) in &cases {
        let found = l.search_readers(search, 10).unwrap();
        assert!(found.total > 0 || name == &"no match", "{name}");
        g.bench_function(*name, |b| {
            b.iter(|| black_box(l.search_readers(black_box(search), 10).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
