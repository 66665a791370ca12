//! Criterion benches of the once-per-campaign work (render, pre-encode) and the per-recipient splice.
//!
//! Targets (issue 6): rendering the example issue at most 5 ms, one recipient's splice at most
//! 10 µs. Run with `cargo bench --bench render`; nothing here is a test assertion.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use brief::app::App;
use brief::clock::FixedClock;
use brief::config::Secret;
use brief::issue::IssueId;
use brief::message::{Kind, MessageTemplate, Recipient};
use brief::render;
use brief::token::TokenKey;
use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use lettre::Address;

/// The shipped config (content/, templates/) on a fixed clock.
fn app() -> App {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = brief::config::load(&repo.join("config/brief.toml")).expect("shipped config");
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2021, 7, 23, 14, 0, 0).unwrap());
    App::new(config, Arc::new(clock)).expect("shipped templates")
}

fn benches(c: &mut Criterion) {
    let app = app();
    let id: IssueId = "2021-07".parse().unwrap();
    let issue = app.load_issue(id).expect("the example issue loads");
    let key = TokenKey::new(Secret::new("k".repeat(64)));

    c.bench_function("render_email 2021-07", |b| {
        b.iter(|| render::render_email(black_box(&issue), app.render_context()))
    });

    let rendered = render::render_email(&issue, app.render_context());
    c.bench_function("MessageTemplate::new 2021-07", |b| {
        b.iter(|| {
            MessageTemplate::new(
                black_box(&rendered),
                &app.config.newsletter,
                id,
                app.clock.now(),
                &app.config.server.public_url,
                &key,
                Kind::Campaign,
            )
        })
    });

    let (_, template) = app.prepare(&issue, &key, Kind::Campaign);
    let address: Address = "ana.reader@example.net".parse().unwrap();
    let mut buf = Vec::new();
    template.write(
        Recipient {
            address: &address,
            name: Some("Ana Reader"),
        },
        &mut buf,
    );
    let size = buf.len();
    c.bench_function(&format!("MessageTemplate::write ({size} bytes)"), |b| {
        b.iter(|| {
            template.write(
                black_box(Recipient {
                    address: &address,
                    name: Some("Ana Reader"),
                }),
                &mut buf,
            );
            black_box(buf.len())
        })
    });
}

criterion_group!(render_benches, benches);
criterion_main!(render_benches);
