//! Test harness pieces: an in-process SMTP server and a throwaway certificate authority.

pub mod pki;
pub mod smtp_server;
