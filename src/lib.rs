//! brief publishes a monthly email newsletter from reviewable files, with a per-recipient ledger.
//!
//! # Layout
//! - [`config`] reads `brief.toml` into typed values, with secrets only from the environment.
//! - [`issue`] is the domain model of one edition: its id, entries and labelled sections.
//! - [`token`] signs and checks the HMAC tokens of unsubscribe links.
//! - [`smtp`] opens one SMTP connection per worker and classifies each message's outcome.

pub mod config;
pub mod issue;
pub mod smtp;
pub mod token;
