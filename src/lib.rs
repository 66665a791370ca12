//! brief publishes a monthly email newsletter from reviewable files, with a per-recipient ledger.
//!
//! # Layout
//! - [`config`] reads `brief.toml` into typed values, with secrets only from the environment.
//! - [`issue`] is the domain model of one edition: its id, entries and labelled sections.
//! - [`token`] signs and checks the HMAC tokens of unsubscribe links.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod content;
pub mod deliver;
pub mod issue;
pub mod ledger;
pub mod message;
pub mod render;
pub mod smtp;
pub mod subscribers;
pub mod templates;
pub mod token;
pub mod transport;
