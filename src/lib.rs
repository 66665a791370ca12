//! brief publishes a monthly email newsletter from reviewable files, with a per-recipient ledger.
//!
//! # Layout
//! - [`config`] reads `brief.toml` into typed values, with secrets only from the environment.
//! - [`issue`] is the domain model of one edition: its id, entries and labelled sections.
//! - [`feed`] fetches remote feeds with hard limits and turns their new items into sanitized entries.
//! - [`token`] signs and checks the HMAC tokens of unsubscribe links.

pub mod config;
pub mod feed;
pub mod issue;
pub mod token;
