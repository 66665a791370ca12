//! A throwaway certificate authority and server certificate, made fresh for each test run.
//!
//! rustls refuses a self-signed certificate that is its own trust anchor unless it says
//! `CA:FALSE`, and real relays present a leaf signed by a CA anyway, so the tests do the same: a
//! CA that the client trusts through `smtp.ca_file`, and a `CA:FALSE` leaf for `localhost` and
//! `127.0.0.1` that the test server presents.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The test CA and the server's certificate chain and key.
pub struct TestPki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
    /// The chain and the key as PEM, for servers configured by files (Dovecot).
    chain_pem: String,
    key_pem: String,
}

impl TestPki {
    /// Makes a new CA and a leaf certificate for `localhost` and `127.0.0.1` signed by it.
    pub fn new() -> TestPki {
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "brief test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let ca = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().expect("generate the server key");
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .expect("sign the server certificate");

        TestPki {
            ca_pem: ca_cert.pem(),
            chain: vec![leaf.der().clone(), ca_cert.der().clone()],
            key_pkcs8: leaf_key.serialize_der(),
            chain_pem: format!("{}{}", leaf.pem(), ca_cert.pem()),
            key_pem: leaf_key.serialize_pem(),
        }
    }

    /// The CA certificate as PEM, what `smtp.ca_file` holds.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server's chain (leaf, then CA) as PEM.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The server's private key as PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns the path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write ca.pem");
        path
    }

    /// A rustls server config (ring) presenting the leaf and the CA.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("server certificate and key");
        Arc::new(config)
    }
}
