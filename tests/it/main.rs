//! Integration tests, compiled as one binary around the isolated worlds of `support`.

mod admin;
mod bounce_parse;
mod bounces;
mod browser;
mod canary;
mod cli;
mod content;
mod daemon;
mod delivery;
mod dkim;
mod feed_issue;
mod feeds;
mod http;
mod imap;
mod links;
mod mime;
mod preflight;
mod relay;
mod render;
mod signup;
mod signup_cli;
mod smtp;
mod spam;
mod support;
mod tidy;
