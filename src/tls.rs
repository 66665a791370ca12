//! The TLS client side that SMTP and the IMAP bounce mailbox share: which roots are trusted,
//! the name a server's certificate must match, and whether a host is this machine.
//!
//! A leaf: it imports nothing of brief, so every network module (and `config`) can use it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// A TLS client config trusting the Mozilla roots (webpki-roots), the system's and those of
/// `ca_file` (the config key `key`, as errors name it).
///
/// Fails when `ca_file` cannot be read, holds no certificate, or holds one that cannot be a
/// trust anchor; errors name `key`, the file and `server`.
pub fn client_config(
    ca_file: Option<&Path>,
    key: &str,
    server: &str,
) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in extra_roots(ca_file, key)? {
        roots.add(der).context("cannot use a trusted certificate")?;
    }
    // The provider is named here rather than taken from a process default, so this works
    // whether or not `main` installed one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .with_context(|| format!("cannot set up TLS for {server}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name the server's certificate must match: `host` as a DNS name or an IP address.
/// `what` names the host in the error ("`smtp.host` `x y`", "IMAP host `x y`").
pub fn server_name(host: &str, what: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).map_err(|_| {
        anyhow::anyhow!(
            "{what} is neither a DNS name nor an IP address, so its TLS certificate cannot be \
             checked"
        )
    })
}

/// Whether `host` (a name or an IP address, IPv6 with or without brackets) is this machine:
/// `localhost` or a loopback address. Only there may a password cross in plain text.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The trusted roots beyond the Mozilla set: the system's, and those of `ca_file`.
fn extra_roots(ca_file: Option<&Path>, key: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let mut out = Vec::new();
    // A system store may hold certificates that rustls cannot use as anchors; skip those the way
    // rustls' own `add_parsable_certificates` does, instead of failing the whole start.
    let mut probe = RootCertStore::empty();
    for der in rustls_native_certs::load_native_certs().certs {
        if probe.add(der.clone()).is_ok() {
            out.push(der);
        }
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read `{key}` {}", path.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("`{key}` {}: {e}", path.display()))?;
        if certs.is_empty() {
            bail!(
                "`{key}` {} holds no certificate: expected PEM blocks starting with \
                 `-----BEGIN CERTIFICATE-----`",
                path.display()
            );
        }
        for (i, der) in certs.into_iter().enumerate() {
            probe.add(der.clone()).with_context(|| {
                format!(
                    "`{key}` {}: certificate {} cannot be a trust anchor",
                    path.display(),
                    i + 1
                )
            })?;
            out.push(der);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_this_machine_only() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.0.0.5",
            "::1",
            "[::1]",
            " ::1 ",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.org",
            "192.0.2.1",
            "localhost.example.org",
            "[::2]",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn a_server_name_is_a_dns_name_or_an_ip_address() {
        assert!(server_name("mail.example.org", "`smtp.host`").is_ok());
        assert!(server_name("127.0.0.1", "`smtp.host`").is_ok());
        let e = server_name("not a host", "IMAP host `not a host`")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("IMAP host `not a host` is neither a DNS name"),
            "{e}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = client_config(Some(&path), "smtp.ca_file", "mx:25")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`smtp.ca_file`") && e.contains("holds no certificate"),
            "{e}"
        );
    }
}
