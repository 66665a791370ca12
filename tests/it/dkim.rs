//! DKIM signatures made by brief, checked by an independent verifier (Python's dkimpy).
//!
//! dkimpy runs under `/usr/bin/python3` (Debian's `python3-dkim`), or the interpreter named by
//! `BRIEF_PYTHON3`. A missing interpreter or module fails the test: it never skips.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use brief::dkim::DkimSigner;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::RsaPrivateKey;

pub(crate) const DOMAIN: &str = "example.org";
pub(crate) const SELECTOR: &str = "brief2026";
const T: i64 = 1_700_000_000;

/// A message shaped like the ones brief sends: the list headers, a folded header, a
/// multipart/alternative body with trailing whitespace and trailing empty lines.
const MESSAGE: &str = "From: Center for Binational Institutions <brief@example.org>\r\n\
To: Ana Reader <ana@example.net>\r\n\
Subject: BRIEF | U.S. - Mexico Binational Institutional Life  07.23.21\r\n\
Date: Fri, 23 Jul 2021 09:00:00 -0500\r\n\
Message-ID: <2021-07.3f2a9c@example.org>\r\n\
List-Id: BRIEF <brief.example.org>\r\n\
List-Unsubscribe: <https://brief.example.org/unsubscribe/abc123>,\r\n\
 <mailto:unsubscribe@example.org?subject=unsubscribe>\r\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
X-Mailer: brief\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
1. Binational water commission meets   \r\n\
Learn more: https://example.org/1\r\n\
\r\n\
--b1\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>1. Binational water commission meets</p>\r\n\
--b1--\r\n\
\r\n\
\r\n";

/// rand 0.9's generator for the rsa crate, which speaks rand_core 0.6 (brief's own bridge).
use brief::dkim::BlindingRng as Rng;

/// One RSA 2048 key for all tests: generating it is the slow part.
pub(crate) fn rsa_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut Rng, 2048).expect("rsa key generation"))
}

/// The TXT record of an RSA key, built with the rsa crate rather than by the signer.
pub(crate) fn rsa_txt(key: &RsaPrivateKey) -> String {
    let spki = key.to_public_key().to_public_key_der().unwrap();
    format!("v=DKIM1; k=rsa; p={}", BASE64.encode(spki.as_bytes()))
}

/// A fresh Ed25519 seed, its PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes it) and
/// its TXT record (RFC 8463 §4: the raw 32-byte public key).
pub(crate) fn ed25519_key() -> ([u8; 32], String, String) {
    let seed: [u8; 32] = rand::random();
    // RFC 8410 §7: the fixed DER prefix of a PKCS#8 Ed25519 key, then the seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        BASE64.encode(&der)
    );
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let txt = format!("v=DKIM1; k=ed25519; p={}", BASE64.encode(public));
    (seed, pem, txt)
}

fn dns_name() -> String {
    format!("{SELECTOR}._domainkey.{DOMAIN}")
}

/// Runs dkimpy on `message`: `Ok` when the signature verifies, `Err(reasons)` when it does not.
/// Anything else (no python, no dkimpy, a usage error) panics with the reason.
pub(crate) fn dkimpy(message: &[u8], txt: &str) -> Result<(), String> {
    dkimpy_all(message, &[(dns_name(), txt.to_string())])
}

/// Runs dkimpy on `message` with these published `(DNS name, TXT record)`s: `Ok` when every
/// signature of the message verifies.
pub(crate) fn dkimpy_all(message: &[u8], records: &[(String, String)]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signed.eml");
    std::fs::write(&file, message).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim_verify.py");
    let python = std::env::var("BRIEF_PYTHON3").unwrap_or_else(|_| "/usr/bin/python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .arg(&file)
        .args(records.iter().flat_map(|(name, txt)| [name, txt]))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} for the DKIM check ({e}): install python3 and python3-dkim")
        });
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(stderr),
        _ => panic!(
            "the dkimpy verifier did not run ({}):\n{stderr}",
            out.status
        ),
    }
}

fn signed(signer: &DkimSigner, message: &str) -> Vec<u8> {
    let header = signer.sign(message.as_bytes(), T);
    [header.as_bytes(), message.as_bytes()].concat()
}

#[test]
fn rsa_signatures_from_pkcs1_and_pkcs8_keys_verify() {
    let key = rsa_key();
    let txt = rsa_txt(key);
    for pem in [
        key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string(),
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
    ] {
        let signer = DkimSigner::from_pem(&pem, DOMAIN, SELECTOR).unwrap();
        assert_eq!(signer.algorithm(), "rsa-sha256");
        assert_eq!(signer.dns_txt(), txt);
        assert_eq!(signer.dns_name(), dns_name());
        let message = signed(&signer, MESSAGE);
        if let Err(why) = dkimpy(&message, &txt) {
            panic!("{why}\n{}", String::from_utf8_lossy(&message));
        }
    }
}

#[test]
fn ed25519_signatures_from_pkcs8_and_raw_seed_verify() {
    let (seed, pem, txt) = ed25519_key();
    for text in [pem, BASE64.encode(seed)] {
        let signer = DkimSigner::from_pem(&text, DOMAIN, SELECTOR).unwrap();
        assert_eq!(signer.algorithm(), "ed25519-sha256");
        assert_eq!(signer.dns_txt(), txt);
        let message = signed(&signer, MESSAGE);
        if let Err(why) = dkimpy(&message, &txt) {
            panic!("{why}\n{}", String::from_utf8_lossy(&message));
        }
    }
}

/// RFC 8463's advice: an Ed25519 and an RSA signature on every message, each under its own
/// selector. dkimpy verifies both, each with its own public key, and a message whose second key
/// is not published fails.
#[test]
fn a_dual_signed_message_carries_two_signatures_that_each_verify() {
    let (_, ed_pem, ed_txt) = ed25519_key();
    let rsa = rsa_key();
    let rsa_pem = rsa.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let signer = DkimSigner::from_pem(&ed_pem, DOMAIN, "ed2026")
        .unwrap()
        .with_second(&rsa_pem, "rsa2026")
        .unwrap();
    let records = signer.records();
    assert_eq!(
        records,
        [
            (format!("ed2026._domainkey.{DOMAIN}"), ed_txt.clone()),
            (format!("rsa2026._domainkey.{DOMAIN}"), rsa_txt(rsa)),
        ]
    );

    let message = signed(&signer, MESSAGE);

    let text = String::from_utf8_lossy(&message);
    assert_eq!(text.matches("DKIM-Signature:").count(), 2, "{text}");
    assert!(
        text.contains("a=ed25519-sha256") && text.contains("a=rsa-sha256"),
        "{text}"
    );
    if let Err(why) = dkimpy_all(&message, &records) {
        panic!("{why}\n{text}");
    }
    let only_ed = [records[0].clone()];
    assert!(
        dkimpy_all(&message, &only_ed).is_err(),
        "both signatures are checked, not just the first"
    );
}

#[test]
fn signature_covers_the_headers_rfc_8058_needs() {
    let (_, pem, _) = ed25519_key();
    let signer = DkimSigner::from_pem(&pem, DOMAIN, SELECTOR).unwrap();
    let header = signer.sign(MESSAGE.as_bytes(), T);
    let unfolded: String = header.split_whitespace().collect();
    assert!(
        unfolded.contains(
            "h=from:to:subject:date:message-id:list-id:list-unsubscribe:\
             list-unsubscribe-post:mime-version:content-type;"
        ),
        "{header}"
    );
    assert!(!unfolded.contains("x-mailer"), "{header}");
}

#[test]
fn whitespace_changes_by_relays_keep_the_signature_valid() {
    let (_, pem, txt) = ed25519_key();
    let signer = DkimSigner::from_pem(&pem, DOMAIN, SELECTOR).unwrap();
    let message = String::from_utf8(signed(&signer, MESSAGE)).unwrap();
    // Relaxed canonicalization tolerates refolding, collapsed spaces and lost trailing lines.
    let relayed = message
        .replace("Life  07.23.21", "Life 07.23.21")
        .replace("abc123>,\r\n <mailto", "abc123>, <mailto")
        .replace("meets   \r\n", "meets\r\n")
        .replace("--b1--\r\n\r\n\r\n", "--b1--\r\n");
    assert_ne!(relayed, message);
    if let Err(why) = dkimpy(relayed.as_bytes(), &txt) {
        panic!("{why}\n{relayed}");
    }
}

#[test]
fn tampered_body_or_unsubscribe_link_fails_for_both_algorithms() {
    let (_, pem, ed_txt) = ed25519_key();
    let rsa_pem = rsa_key().to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let cases = [(pem, ed_txt), (rsa_pem, rsa_txt(rsa_key()))];
    for (pem, txt) in cases {
        let signer = DkimSigner::from_pem(&pem, DOMAIN, SELECTOR).unwrap();
        let message = String::from_utf8(signed(&signer, MESSAGE)).unwrap();
        // The untouched message passes, so a failure below is the tampering's doing.
        assert_eq!(dkimpy(message.as_bytes(), &txt), Ok(()));

        let body = message.replace("https://example.org/1", "https://evil.example/1");
        let why = dkimpy(body.as_bytes(), &txt).expect_err("a changed body must not verify");
        assert!(why.contains("body hash mismatch"), "{why}");

        let unsubscribe = message.replace("unsubscribe/abc123", "unsubscribe/xyz789");
        let why = dkimpy(unsubscribe.as_bytes(), &txt)
            .expect_err("a changed List-Unsubscribe must not verify");
        // The body is intact, so it is the header signature that fails.
        assert!(!why.contains("body hash mismatch"), "{why}");
    }
}

/// The `h=` tag of the DKIM-Signature at the top of `raw`, unfolded.
fn signed_headers(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    assert!(text.starts_with("DKIM-Signature: "), "not signed:\n{text}");
    let end = text.find("\r\n").unwrap();
    let mut header = text[..end].to_string();
    for line in text[end + 2..].split("\r\n") {
        if !line.starts_with([' ', '\t']) {
            break;
        }
        header.push_str(line);
    }
    let unfolded: String = header.split_whitespace().collect();
    let h = unfolded
        .split(';')
        .find_map(|t| t.strip_prefix("h="))
        .unwrap();
    h.split(':').map(str::to_string).collect()
}

/// Every sending path signs with both configured keys (an Ed25519 key and an RSA key), and
/// `brief check` prints both records to publish.
#[test]
fn messages_brief_sends_tests_and_previews_are_signed_and_verify() {
    let (_, pem, txt) = ed25519_key();
    let rsa_txt = rsa_txt(rsa_key());
    let w = crate::support::World::with_config(&format!(
        "[dkim]\ndomain = \"{DOMAIN}\"\nselector = \"{SELECTOR}\"\nprivate_key_file = \"dkim.pem\"\n\
         second_selector = \"rsa2026\"\nsecond_private_key_file = \"dkim-rsa.pem\"\n"
    ));
    w.write("dkim.pem", &pem);
    w.write(
        "dkim-rsa.pem",
        &rsa_key().to_pkcs1_pem(LineEnding::LF).unwrap(),
    );
    let records = [
        (dns_name(), txt.clone()),
        (format!("rsa2026._domainkey.{DOMAIN}"), rsa_txt.clone()),
    ];
    let run = |args: &[&str]| {
        let out = w.brief().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    };
    run(&["send", "--yes"]);
    run(&["send", "--test", "--to", "editor@example.org"]);
    run(&["preview", "--out", "preview"]);
    // `brief check` tells staff what to publish.
    let check = w.brief().arg("check").output().unwrap();
    let stdout = String::from_utf8(check.stdout).unwrap();
    for (name, record) in &records {
        assert!(
            stdout.contains(&format!("TXT record at {name}:\n  {record}\n")),
            "{stdout}"
        );
    }
    let mut files = w.outbox("2021-07");
    assert_eq!(files.len(), 3);
    files.extend(w.outbox("test"));
    files.push(w.path("preview/2021-07.eml"));
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let h = signed_headers(&raw);
        for name in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert!(
                h.iter().any(|x| x == name),
                "{name} unsigned in {}",
                f.display()
            );
        }
        assert_eq!(
            String::from_utf8_lossy(&raw)
                .matches("DKIM-Signature:")
                .count(),
            2,
            "{}",
            f.display()
        );
        if let Err(why) = dkimpy_all(&raw, &records) {
            panic!("{} does not verify: {why}", f.display());
        }
    }
}
