//! Criterion benches of DKIM signing one finished message, Ed25519 against RSA-2048.
//!
//! The keys are generated here, in memory; the message is brief's own for the example issue, so
//! the body hash covers a real message's size. Run with `cargo bench --bench dkim`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use brief::app::App;
use brief::clock::FixedClock;
use brief::config::Secret;
use brief::dkim::{BlindingRng, DkimSigner};
use brief::message::Kind;
use brief::token::TokenKey;
use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::LineEnding;

/// brief's message for the example issue, as one reader gets it.
fn message() -> Vec<u8> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = brief::config::load(&repo.join("config/brief.toml")).expect("shipped config");
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2021, 7, 23, 14, 0, 0).unwrap());
    let app = App::new(config, Arc::new(clock)).expect("shipped templates");
    let issue = app
        .load_issue("2021-07".parse().unwrap())
        .expect("example issue");
    let key = TokenKey::new(Secret::new("k".repeat(64)));
    let (_, template) = app.prepare(&issue, &key, Kind::Campaign);
    App::sample_message(&template)
}

fn benches(c: &mut Criterion) {
    let raw = message();
    let rsa_key = rsa::RsaPrivateKey::new(&mut BlindingRng, 2048).expect("rsa key generation");
    let rsa_pem = rsa_key
        .to_pkcs1_pem(LineEnding::LF)
        .expect("pkcs1 pem")
        .to_string();
    let seed: [u8; 32] = rand::random();
    let keys = [("ed25519", BASE64.encode(seed)), ("rsa-2048", rsa_pem)];
    for (name, pem) in keys {
        let signer = DkimSigner::from_pem(&pem, "example.org", "brief").expect("bench key");
        c.bench_function(&format!("dkim sign {name} ({} bytes)", raw.len()), |b| {
            b.iter(|| signer.sign(black_box(&raw), 1_627_048_800))
        });
    }
    rsa_engines(c, &rsa_key);
}

/// One bare RSA-2048 PKCS#1 v1.5 SHA-256 signature of a DKIM-sized header block, by the engine
/// brief uses (`aws-lc-rs`) and by `ring` (already built for TLS), so the choice can be re-checked.
fn rsa_engines(c: &mut Criterion, key: &rsa::RsaPrivateKey) {
    let der = key.to_pkcs1_der().expect("pkcs1 der");
    let data = vec![b'h'; 800];
    let aws = aws_lc_rs::signature::RsaKeyPair::from_der(der.as_bytes()).expect("aws-lc key");
    let aws_rng = aws_lc_rs::rand::SystemRandom::new();
    let mut sig = vec![0; aws.public_modulus_len()];
    c.bench_function("rsa-2048 pkcs1v15 sha256 sign, aws-lc-rs", |b| {
        b.iter(|| {
            aws.sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_rng,
                black_box(&data),
                &mut sig,
            )
            .expect("sign")
        })
    });
    let ring = ring::signature::RsaKeyPair::from_der(der.as_bytes()).expect("ring key");
    let ring_rng = ring::rand::SystemRandom::new();
    c.bench_function("rsa-2048 pkcs1v15 sha256 sign, ring", |b| {
        b.iter(|| {
            ring.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring_rng,
                black_box(&data),
                &mut sig,
            )
            .expect("sign")
        })
    });
}

criterion_group!(dkim_benches, benches);
criterion_main!(dkim_benches);
