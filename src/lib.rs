//! brief publishes a monthly email newsletter from reviewable files, with a per-recipient ledger.
//!
//! # Layout
//! - [`config`] reads `brief.toml` into typed values, with secrets only from the environment.
//! - [`issue`] is the domain model of one edition: its id, entries and labelled sections.
//! - [`token`] signs and checks the HMAC tokens of unsubscribe links.
//! - [`schedule`] decides when the monthly send fires and which issue a fire belongs to.
//! - [`dkim`] signs finished messages with DKIM (RSA or Ed25519, relaxed canonicalization).
//! - [`metrics`] counts what the daemon does and renders it for Prometheus at `/metrics`.

pub mod config;
pub mod dkim;
pub mod issue;
pub mod metrics;
pub mod schedule;
pub mod token;
