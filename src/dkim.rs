//! DKIM signatures (RFC 6376; RFC 8463 for Ed25519) over the raw messages brief writes itself.
//!
//! brief builds its MIME bytes on its own, so the signer works on bytes, not on lettre's
//! `Message`: [`DkimSigner::sign`] takes a complete message with CRLF line ends and returns the
//! `DKIM-Signature` header line for the caller to prepend. Both header and body use relaxed
//! canonicalization, which survives the whitespace changes relays are known to make. The time
//! (`t=`) comes from the caller: this module never reads the clock.

use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::Signer;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::der::asn1::OctetStringRef;
use rsa::pkcs8::der::{pem, Decode, SecretDocument};
use rsa::pkcs8::{DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};

use crate::config;

/// The headers the signature covers, in `h=` order, when the message has them. RFC 8058 §4
/// requires List-Unsubscribe and List-Unsubscribe-Post to be signed, or a mailbox provider will
/// not offer one-click unsubscribe; Reply-To is signed so nobody can redirect replies.
const SIGNED_HEADERS: &[&str] = &[
    "from",
    "reply-to",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
];

/// The longest line the folded header may have, without its CRLF (RFC 5322 §2.1.1).
const MAX_LINE: usize = 78;

/// Accepted key formats, for error messages.
const FORMATS: &str = "expected an unencrypted PEM key: RSA as PKCS#1 (`BEGIN RSA PRIVATE KEY`) \
    or PKCS#8 (`BEGIN PRIVATE KEY`), Ed25519 as PKCS#8 (`openssl genpkey -algorithm ed25519`), \
    or the base64 of a raw 32-byte Ed25519 seed";

/// rsaEncryption (RFC 8017 appendix C).
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-Ed25519 (RFC 8410 §3).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Signs messages for one domain with one private key, or two under their own selectors (an
/// Ed25519 and an RSA key, as RFC 8463 recommends): each message then carries both signatures.
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: Key,
    /// A second key and its selector.
    second: Option<(String, Key)>,
}

enum Key {
    /// Signed by `aws-lc-rs` (AWS-LC: assembly, constant-time); the public key's DER (SubjectPublicKeyInfo,
    /// what the DNS record publishes) is kept beside it.
    Rsa {
        signer: Box<aws_lc_rs::signature::RsaKeyPair>,
        public_der: Vec<u8>,
    },
    Ed25519(ed25519_dalek::SigningKey),
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs and panics: only what the DNS record shows anyway.
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// Reads the key named by `[dkim] private_key_file`.
    ///
    /// Errors name the file and list the accepted formats when the key is none of them; an RSA
    /// key shorter than 2048 bits is refused (RFC 8301 §3.2).
    pub fn load(cfg: &config::Dkim) -> anyhow::Result<DkimSigner> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read dkim private key file {}", path.display()))
        };
        let path: &Path = &cfg.private_key_file;
        let signer = DkimSigner::from_pem(&read(path)?, &cfg.domain, &cfg.selector)
            .with_context(|| format!("dkim private key file {}", path.display()))?;
        match (&cfg.second_selector, &cfg.second_private_key_file) {
            (Some(selector), Some(path)) => signer
                .with_second(&read(path)?, selector)
                .with_context(|| format!("dkim private key file {}", path.display())),
            _ => Ok(signer),
        }
    }

    /// The same signer with a second key (any format [`DkimSigner::load`] accepts) under
    /// `selector`.
    pub fn with_second(mut self, pem: &str, selector: &str) -> anyhow::Result<DkimSigner> {
        check_dns_name(selector).map_err(|e| anyhow!("dkim selector `{selector}` {e}"))?;
        self.second = Some((selector.to_string(), parse_key(pem)?));
        Ok(self)
    }

    /// Where each key's public half must be published, with its TXT record: one line per key.
    pub fn records(&self) -> Vec<(String, String)> {
        let mut v = vec![(self.dns_name(), self.dns_txt())];
        if let Some((selector, key)) = &self.second {
            v.push((
                format!("{selector}._domainkey.{}", self.domain),
                txt_record(key),
            ));
        }
        v
    }

    /// Builds a signer from key text (any format [`DkimSigner::load`] accepts) for `domain` and
    /// `selector`, which must be plain DNS names (letters, digits, `-`, `_`, dots).
    pub fn from_pem(pem: &str, domain: &str, selector: &str) -> anyhow::Result<DkimSigner> {
        check_dns_name(domain).map_err(|e| anyhow!("dkim domain `{domain}` {e}"))?;
        check_dns_name(selector).map_err(|e| anyhow!("dkim selector `{selector}` {e}"))?;
        Ok(DkimSigner {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_string(),
            key: parse_key(pem)?,
            second: None,
        })
    }

    /// `rsa-sha256` or `ed25519-sha256`: the `a=` tag of the first key.
    pub fn algorithm(&self) -> &'static str {
        self.key.algorithm()
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Where the public key must be published: `SELECTOR._domainkey.DOMAIN`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish at [`DkimSigner::dns_name`], e.g. `v=DKIM1; k=ed25519; p=...`.
    pub fn dns_txt(&self) -> String {
        txt_record(&self.key)
    }

    /// The `DKIM-Signature: ...\r\n` header of each key, one after the other (see
    /// [`DkimSigner::sign_with`]).
    pub fn sign(&self, raw: &[u8], now_unix: i64) -> String {
        let (headers, body) = split_message(raw);
        // Both keys sign the same body: it is hashed once.
        let body_hash = body_hash(body);
        let mut out = self.sign_with(&self.selector, &self.key, headers, &body_hash, now_unix);
        if let Some((selector, key)) = &self.second {
            out.push_str(&self.sign_with(selector, key, headers, &body_hash, now_unix));
        }
        out
    }

    /// The `DKIM-Signature: ...\r\n` header (folded to 78 columns) of `key` under `selector`
    /// for a message of `headers` (CRLF line ends) and a body whose hash is `body_hash`, signed
    /// at `now_unix` (`t=`). The caller prepends it to the message and must not change the
    /// signed headers or the body afterwards.
    fn sign_with(
        &self,
        selector: &str,
        key: &Key,
        headers: &[u8],
        body_hash: &str,
        now_unix: i64,
    ) -> String {
        let fields = parse_fields(headers);
        let mut names = Vec::new();
        let mut hashed = Vec::new();
        for &wanted in SIGNED_HEADERS {
            // A header present k times is listed k times and hashed from the bottom up
            // (RFC 6376 §5.4.2); one absent is not listed, so no empty value is signed.
            for field in fields
                .iter()
                .rev()
                .filter(|f| f.name.eq_ignore_ascii_case(wanted.as_bytes()))
            {
                names.push(wanted);
                hashed.extend_from_slice(&relaxed_header(field.name, field.value));
            }
        }

        let tags = [
            ("v", "1".to_string()),
            ("a", key.algorithm().to_string()),
            ("c", "relaxed/relaxed".to_string()),
            ("d", self.domain.clone()),
            ("s", selector.to_string()),
            ("t", now_unix.to_string()),
        ];
        // The header is hashed with an empty `b=` and then emitted with the signature in it.
        // `b=` comes last and folding up to it does not depend on its value, so the two differ
        // only in what the verifier deletes before hashing.
        let unsigned = fold(&tags, &names, body_hash, "");
        let value = &unsigned["DKIM-Signature:".len()..unsigned.len() - 2];
        let mut sig_line = relaxed_header(b"DKIM-Signature", value.as_bytes());
        sig_line.truncate(sig_line.len() - 2); // hashed without its CRLF (RFC 6376 §3.7)
        hashed.extend_from_slice(&sig_line);

        let signature = key.signature(&hashed);
        fold(&tags, &names, body_hash, &BASE64.encode(signature))
    }

    /// Signs `raw` as [`DkimSigner::sign`] does and puts the `DKIM-Signature` header in front
    /// of it: the form every sending path uses, so none can forget to prepend.
    pub fn sign_in_place(&self, raw: &mut Vec<u8>, now_unix: i64) {
        let header = self.sign(raw, now_unix);
        raw.splice(0..0, header.into_bytes());
    }
}

impl Key {
    fn algorithm(&self) -> &'static str {
        match self {
            Key::Rsa { .. } => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// The signature (`b=`, before base64) over the canonical header block `hashed`.
    fn signature(&self, hashed: &[u8]) -> Vec<u8> {
        match self {
            // RSASSA-PKCS1-v1_5 with SHA-256 over the hashed data (the signer hashes it itself).
            Key::Rsa { signer, .. } => {
                let mut sig = vec![0; signer.public_modulus_len()];
                signer
                    .sign(
                        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                        &aws_lc_rs::rand::SystemRandom::new(),
                        hashed,
                        &mut sig,
                    )
                    .expect("an rsa key aws-lc-rs accepted signs");
                sig
            }
            // RFC 8463 §3: Ed25519 signs the SHA-256 hash, not the headers themselves.
            Key::Ed25519(key) => key.sign(&Sha256::digest(hashed)).to_bytes().to_vec(),
        }
    }
}

/// The TXT record publishing `key`'s public half: `v=DKIM1; k=...; p=...`.
fn txt_record(key: &Key) -> String {
    let (k, p) = match key {
        Key::Rsa { public_der, .. } => ("rsa", BASE64.encode(public_der)),
        Key::Ed25519(key) => ("ed25519", BASE64.encode(key.verifying_key().to_bytes())),
    };
    format!("v=DKIM1; k={k}; p={p}")
}

/// Checks a DKIM domain or selector: they end up in a header and in a DNS name, so only plain
/// DNS labels are allowed.
fn check_dns_name(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if s.len() > 253 || !s.split('.').all(label_ok) {
        return Err("is not a DNS name: use letters, digits, `-` and `_` in dot-separated labels (an IDN in its xn-- form)");
    }
    Ok(())
}

fn parse_key(text: &str) -> anyhow::Result<Key> {
    let text = text.trim();
    if !text.starts_with("-----BEGIN ") {
        // lettre's format: the base64 of the 32-byte seed, on its own.
        let compact: String = text.split_whitespace().collect();
        return match BASE64.decode(compact) {
            Ok(seed) => {
                let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| {
                    anyhow!(
                        "not a PEM key, and its base64 decodes to {} bytes, not a 32-byte ed25519 seed: {FORMATS}",
                        seed.len()
                    )
                })?;
                Ok(Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            Err(_) => bail!("not a PEM key: {FORMATS}"),
        };
    }
    let label =
        pem::decode_label(text.as_bytes()).map_err(|e| anyhow!("bad PEM ({e}): {FORMATS}"))?;
    if !matches!(label, "RSA PRIVATE KEY" | "PRIVATE KEY") {
        if label == "ENCRYPTED PRIVATE KEY" {
            bail!(
                "the key is encrypted, and brief cannot ask for a passphrase: write it unencrypted with `openssl pkey -in KEY -out KEY.pem` and protect the file instead"
            );
        }
        bail!("a `{label}` PEM block: {FORMATS}");
    }
    let (_, doc) =
        SecretDocument::from_pem(text).map_err(|e| anyhow!("bad `{label}` PEM ({e})"))?;
    if label == "RSA PRIVATE KEY" {
        let key = RsaPrivateKey::from_pkcs1_der(doc.as_bytes())
            .map_err(|e| anyhow!("bad PKCS#1 rsa key: {e}"))?;
        return rsa_key(key, || {
            aws_lc_rs::signature::RsaKeyPair::from_der(doc.as_bytes())
        });
    }
    let info =
        PrivateKeyInfo::from_der(doc.as_bytes()).map_err(|e| anyhow!("bad PKCS#8 key: {e}"))?;
    if info.algorithm.oid == OID_RSA {
        let key = RsaPrivateKey::from_pkcs8_der(doc.as_bytes())
            .map_err(|e| anyhow!("bad PKCS#8 rsa key: {e}"))?;
        rsa_key(key, || {
            aws_lc_rs::signature::RsaKeyPair::from_pkcs8(doc.as_bytes())
        })
    } else if info.algorithm.oid == OID_ED25519 {
        // RFC 8410 §7: the private key is an OCTET STRING holding the 32-byte seed.
        let seed = OctetStringRef::from_der(info.private_key)
            .ok()
            .and_then(|o| <[u8; 32]>::try_from(o.as_bytes()).ok())
            .ok_or_else(|| anyhow!("bad PKCS#8 ed25519 key: the seed is not 32 bytes"))?;
        Ok(Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
    } else {
        bail!(
            "a PKCS#8 key of algorithm {}, which DKIM cannot use: {FORMATS}",
            info.algorithm.oid
        )
    }
}

/// An RSA key of 2048 bits or more, with its signer (made by `signer` once the size is known
/// to be right, so a short key gets this message rather than the signer's).
fn rsa_key(
    public: RsaPrivateKey,
    signer: impl FnOnce() -> Result<aws_lc_rs::signature::RsaKeyPair, aws_lc_rs::error::KeyRejected>,
) -> anyhow::Result<Key> {
    let bits = public.size() * 8;
    if bits < 2048 {
        bail!(
            "the rsa key has {bits} bits: DKIM verifiers may ignore keys under 1024 bits and \
             RFC 8301 asks signers for 2048 (`openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048`)"
        );
    }
    let signer = signer().map_err(|e| anyhow!("the rsa key cannot sign: {e}"))?;
    use rsa::pkcs8::EncodePublicKey;
    let public_der = public
        .to_public_key()
        .to_public_key_der()
        .expect("an rsa public key always encodes")
        .into_vec();
    Ok(Key::Rsa {
        signer: Box::new(signer),
        public_der,
    })
}

/// The thread's CSPRNG for the rsa crate, which speaks `rand_core` 0.6 while brief's `rand` is
/// 0.9. brief no longer signs with the rsa crate (aws-lc-rs does): the tests and benches use
/// this to generate RSA keys and to check aws-lc-rs's signatures against the rsa crate's.
pub struct BlindingRng;

impl rsa::rand_core::RngCore for BlindingRng {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(&mut rand::rng())
    }
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut rand::rng())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rng(), dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for BlindingRng {}

/// Splits a message at the empty line into the header block (each field with its CRLF) and the
/// body. A message without an empty line is all headers and an empty body.
fn split_message(raw: &[u8]) -> (&[u8], &[u8]) {
    if raw.starts_with(b"\r\n") {
        return (&[], &raw[2..]);
    }
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&raw[..i + 2], &raw[i + 4..]),
        None => (raw, &[]),
    }
}

/// One header field: its name and its raw value (after the colon, folding kept).
struct Field<'a> {
    name: &'a [u8],
    value: &'a [u8],
}

fn parse_fields(block: &[u8]) -> Vec<Field<'_>> {
    let mut fields = Vec::new();
    let mut start = 0;
    while start < block.len() {
        // A field ends at a CRLF not followed by whitespace (RFC 5322 §2.2.3 folding).
        let mut end = start;
        loop {
            match find_crlf(&block[end..]) {
                Some(i) => {
                    end += i + 2;
                    if !matches!(block.get(end), Some(b' ' | b'\t')) {
                        break;
                    }
                }
                None => {
                    end = block.len();
                    break;
                }
            }
        }
        let line = &block[start..end];
        let line = line.strip_suffix(b"\r\n").unwrap_or(line);
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            fields.push(Field {
                name: trim_wsp(&line[..colon]),
                value: &line[colon + 1..],
            });
        }
        start = end;
    }
    fields
}

fn find_crlf(s: &[u8]) -> Option<usize> {
    s.windows(2).position(|w| w == b"\r\n")
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_wsp(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_wsp(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_wsp(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Relaxed header canonicalization (RFC 6376 §3.4.2): `name:value\r\n` with the name lowercased,
/// the value unfolded, whitespace runs made one space and trimmed at both ends.
pub(crate) fn relaxed_header(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = trim_wsp(name).to_ascii_lowercase();
    out.push(b':');
    let mut v: Vec<u8> = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'\r' && value.get(i + 1) == Some(&b'\n') {
            // Unfolding removes the CRLF; the whitespace after it joins the run.
            i += 2;
            continue;
        }
        if !is_wsp(value[i]) {
            v.push(value[i]);
        } else if v.last() != Some(&b' ') {
            v.push(b' ');
        }
        i += 1;
    }
    out.extend_from_slice(trim_wsp(&v));
    out.extend_from_slice(b"\r\n");
    out
}

/// The `bh=` value: base64 of the SHA-256 of the relaxed body. brief's own bodies are already
/// in relaxed form (quoted-printable and base64 leave no tab, no run of spaces and no space at a
/// line end), which a few vectorised searches confirm: such a body is hashed as it is, without
/// the copy [`relaxed_body`] makes. Any other body is canonicalised first.
fn body_hash(body: &[u8]) -> String {
    let digest = if is_relaxed(body) {
        Sha256::digest(body)
    } else {
        Sha256::digest(relaxed_body(body))
    };
    BASE64.encode(digest)
}

/// Whether [`relaxed_body`] would return `body` unchanged: no tab, no two spaces in a row, no
/// space before a CRLF, and a last line that is not empty and ends in CRLF.
fn is_relaxed(body: &[u8]) -> bool {
    body.ends_with(b"\r\n")
        && body != b"\r\n"
        && !body.ends_with(b"\r\n\r\n")
        && memchr::memchr(b'\t', body).is_none()
        && memchr::memmem::find(body, b"  ").is_none()
        && memchr::memmem::find(body, b" \r\n").is_none()
}

/// Relaxed body canonicalization (RFC 6376 §3.4.4): whitespace runs in a line become one space,
/// whitespace at line ends goes, empty lines at the end go, and a non-empty body ends in CRLF.
pub(crate) fn relaxed_body(body: &[u8]) -> Vec<u8> {
    // Words are copied whole between whitespace runs rather than byte by byte: a message is tens
    // of kilobytes and this runs for every reader.
    let crlf = memchr::memmem::Finder::new(b"\r\n");
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut empty_run = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match crlf.find(rest) {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if line.iter().all(|&b| is_wsp(b)) {
            // Held back until a non-empty line shows these were not the body's trailing lines.
            empty_run += 1;
            continue;
        }
        for _ in 0..empty_run {
            out.extend_from_slice(b"\r\n");
        }
        empty_run = 0;
        // Empty words mark whitespace: one space before the next word, none after the last.
        let mut space = false;
        for word in line.split(|&b| is_wsp(b)) {
            if word.is_empty() {
                space = true;
                continue;
            }
            if space {
                out.push(b' ');
            }
            out.extend_from_slice(word);
            space = true;
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Writes the `DKIM-Signature` header, folded at tag and list boundaries and inside the base64
/// values, each line at most [`MAX_LINE`] columns, ending in CRLF.
fn fold(tags: &[(&str, String)], names: &[&str], body_hash: &str, signature: &str) -> String {
    // Each tag is a list of atoms written without separators; a fold may go between atoms.
    let mut list: Vec<Vec<String>> = tags
        .iter()
        .map(|(k, v)| vec![format!("{k}={v};")])
        .collect();
    let mut h: Vec<String> = names.iter().map(|n| format!("{n}:")).collect();
    match h.last_mut() {
        Some(last) => {
            last.pop();
            last.push(';');
        }
        None => h.push(";".into()),
    }
    h[0].insert_str(0, "h=");
    list.push(h);
    list.push(vec![format!("bh={body_hash};")]);
    let mut b = vec!["b=".to_string()];
    b.extend(
        signature
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8(c.to_vec()).expect("base64 is ascii")),
    );
    list.push(b);

    let mut out = String::from("DKIM-Signature:");
    let mut col = out.len();
    for atoms in list {
        for (i, atom) in atoms.iter().enumerate() {
            let sep = if i == 0 { 1 } else { 0 };
            if col + sep + atom.len() > MAX_LINE {
                out.push_str("\r\n\t");
                col = 1;
            } else if sep == 1 {
                out.push(' ');
                col += 1;
            }
            out.push_str(atom);
            col += atom.len();
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6376 §3.4.5: the same two header fields and body under relaxed canonicalization.
    const RFC_HEADERS: &[u8] = b"A: X\r\nB : Y\t\r\n\tZ  \r\n";
    const RFC_BODY: &[u8] = b" C \r\nD \t E\r\n\r\n\r\n";

    #[test]
    fn relaxed_headers_match_rfc_6376_example() {
        let fields = parse_fields(RFC_HEADERS);
        let canon: Vec<u8> = fields
            .iter()
            .flat_map(|f| relaxed_header(f.name, f.value))
            .collect();
        assert_eq!(canon, b"a:X\r\nb:Y Z\r\n");
    }

    #[test]
    fn relaxed_body_matches_rfc_6376_example() {
        assert_eq!(relaxed_body(RFC_BODY), b" C\r\nD E\r\n");
    }

    #[test]
    fn relaxed_body_edge_cases() {
        // An empty body, or one of only empty lines, hashes as nothing (RFC 6376 errata 3133).
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n \r\n"), b"");
        // A missing final CRLF is added; inner empty lines stay.
        assert_eq!(relaxed_body(b"a\r\n\r\nb"), b"a\r\n\r\nb\r\n");
        assert_eq!(relaxed_body(b"a  \t\r\n"), b"a\r\n");
        // Runs inside a line and at its start become one space; a bare CR or LF is text.
        assert_eq!(relaxed_body(b"\t a\t\tb c\r\n"), b" a b c\r\n");
        assert_eq!(relaxed_body(b"a\rb \n c"), b"a\rb \n c\r\n");
        assert_eq!(relaxed_body(b"\r\n \r\nx\r\n\r\n"), b"\r\n\r\nx\r\n");
    }

    #[test]
    fn bodies_already_relaxed_hash_as_their_canonical_form() {
        for body in [
            &b""[..],
            b"\r\n",
            b"\r\n\r\n",
            b"a\r\n",
            b"a\r\n\r\n",
            b"a\r\n\r\nb\r\n",
            b"a b\r\n",
            b"a  b\r\n",
            b"a\tb\r\n",
            b"a \r\n",
            b"a\r\n \r\nb\r\n",
            b" a\r\n",
            b"a",
            b"a\rb \n c\r\n",
            RFC_BODY,
        ] {
            let canonical = relaxed_body(body);
            // Taken as it is only when canonicalising would not change it; every non-empty
            // canonical body is taken as it is.
            assert_eq!(
                is_relaxed(body),
                canonical == body && !body.is_empty(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(
                body_hash(body),
                BASE64.encode(Sha256::digest(&canonical)),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn header_value_whitespace_before_and_after_colon_goes() {
        assert_eq!(
            relaxed_header(b"Subject ", b"  \r\n hello   world \t"),
            b"subject:hello world\r\n"
        );
        assert_eq!(relaxed_header(b"X", b""), b"x:\r\n");
        assert_eq!(relaxed_header(b"X", b"a"), b"x:a\r\n");
    }

    #[test]
    fn split_handles_missing_body() {
        assert_eq!(
            split_message(b"A: 1\r\n\r\nbody"),
            (&b"A: 1\r\n"[..], &b"body"[..])
        );
        assert_eq!(split_message(b"A: 1\r\n"), (&b"A: 1\r\n"[..], &b""[..]));
    }

    // RFC 8410 §10.3: an Ed25519 private key in PKCS#8, as `openssl genpkey` writes it.
    const RFC8410_KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn ed25519_pkcs8_and_raw_seed_load_to_the_same_key() {
        let pem = DkimSigner::from_pem(RFC8410_KEY, "example.org", "s1").unwrap();
        assert_eq!(pem.algorithm(), "ed25519-sha256");
        let seed = "1O5y2/kTWErVttjx92n4rTr+fCjL8dT74Jeoj0R1WEI=";
        let raw = DkimSigner::from_pem(seed, "example.org", "s1").unwrap();
        assert_eq!(pem.dns_txt(), raw.dns_txt());
        // RFC 8410 §10.3 gives the public key of that seed.
        assert!(pem.dns_txt().ends_with(&BASE64.encode(hex(
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        ))));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn bad_keys_say_what_is_accepted() {
        let e = DkimSigner::from_pem("hello", "example.org", "s1").unwrap_err();
        assert!(format!("{e:#}").contains("BEGIN RSA PRIVATE KEY"), "{e:#}");
        let e = DkimSigner::from_pem("AAAA", "example.org", "s1").unwrap_err();
        assert!(format!("{e:#}").contains("decodes to 3 bytes"), "{e:#}");
        let ec = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let e = DkimSigner::from_pem(ec, "example.org", "s1").unwrap_err();
        assert!(
            format!("{e:#}").contains("`EC PRIVATE KEY` PEM block"),
            "{e:#}"
        );
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = DkimSigner::from_pem(enc, "example.org", "s1").unwrap_err();
        assert!(format!("{e:#}").contains("encrypted"), "{e:#}");
    }

    #[test]
    fn load_names_the_file() {
        let cfg = config::Dkim {
            domain: "example.org".into(),
            selector: "s1".into(),
            private_key_file: "/nonexistent/brief-dkim.pem".into(),
            second_selector: None,
            second_private_key_file: None,
        };
        let e = DkimSigner::load(&cfg).unwrap_err();
        assert!(
            format!("{e:#}")
                .starts_with("cannot read dkim private key file /nonexistent/brief-dkim.pem"),
            "{e:#}"
        );
    }

    #[test]
    fn domain_and_selector_cannot_inject() {
        let e = DkimSigner::from_pem(RFC8410_KEY, "example.org; b=x", "s1").unwrap_err();
        assert!(e.to_string().contains("is not a DNS name"), "{e}");
        let e = DkimSigner::from_pem(RFC8410_KEY, "example.org", "s1\r\nBcc: x").unwrap_err();
        assert!(e.to_string().contains("dkim selector"), "{e}");
    }

    #[test]
    fn debug_hides_the_key() {
        let s = DkimSigner::from_pem(RFC8410_KEY, "example.org", "s1").unwrap();
        let d = format!("{s:?}");
        assert!(d.contains("ed25519-sha256") && !d.contains("key"), "{d}");
    }

    /// PKCS#1 v1.5 is deterministic, so aws-lc-rs must produce, byte for byte, the signature
    /// the rsa crate (brief's signer before aws-lc-rs) makes with the same key over the same
    /// data, from either PEM form the loader accepts.
    #[test]
    fn rsa_signatures_equal_the_rsa_crates() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};

        let key = RsaPrivateKey::new(&mut BlindingRng, 2048).unwrap();
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let (headers, body) = split_message(MESSAGE);
        // A header block as sign_with hashes it, an empty input and a long one.
        let mut block: Vec<u8> = parse_fields(headers)
            .iter()
            .flat_map(|f| relaxed_header(f.name, f.value))
            .collect();
        block.extend_from_slice(
            format!("dkim-signature:v=1; bh={}; b=", body_hash(body)).as_bytes(),
        );
        let long = vec![b'x'; 100_000];
        for pem in [&pkcs1[..], &pkcs8[..]] {
            let signer = DkimSigner::from_pem(pem, "example.org", "s1").unwrap();
            assert_eq!(signer.algorithm(), "rsa-sha256");
            for data in [&block[..], b"", &long[..]] {
                let expected = key
                    .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data))
                    .unwrap();
                assert_eq!(signer.key.signature(data), expected, "{} bytes", data.len());
            }
        }
        // And the whole header carries it: `b=` unfolded is the rsa crate's signature of the
        // header block with `b=` empty, which verifies under the key's public half.
        let signer = DkimSigner::from_pem(&pkcs1, "example.org", "s1").unwrap();
        let h = signer.sign(MESSAGE, 1_700_000_000);
        // The `b=` tag, not a `b=` at the end of the `bh=` value.
        let at = h
            .match_indices("b=")
            .find(|(i, _)| matches!(h.as_bytes()[i - 1], b' ' | b'\t'))
            .unwrap()
            .0
            + 2;
        let b: String = h[at..].split_whitespace().collect();
        let sig = BASE64.decode(b).unwrap();
        assert_eq!(sig.len(), 256);
        assert_eq!(h, signer.sign(MESSAGE, 1_700_000_000), "deterministic");
        let unsigned = &h[..at];
        let mut hashed: Vec<u8> = Vec::new();
        let fields = parse_fields(headers);
        for &wanted in SIGNED_HEADERS {
            for f in fields
                .iter()
                .rev()
                .filter(|f| f.name.eq_ignore_ascii_case(wanted.as_bytes()))
            {
                hashed.extend_from_slice(&relaxed_header(f.name, f.value));
            }
        }
        let mut line = relaxed_header(
            b"DKIM-Signature",
            &unsigned.as_bytes()["DKIM-Signature:".len()..],
        );
        line.truncate(line.len() - 2);
        hashed.extend_from_slice(&line);
        let expected = key
            .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&hashed))
            .unwrap();
        assert_eq!(sig, expected);
    }

    const MESSAGE: &[u8] = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\
        X-Other: not signed\r\nTo: c@example.net\r\n\r\nbody\r\n";

    #[test]
    fn signs_present_headers_bottom_up_and_folds() {
        let s = DkimSigner::from_pem(RFC8410_KEY, "Example.org", "s1").unwrap();
        let h = s.sign(MESSAGE, 1_700_000_000);
        assert!(
            h.starts_with(
                "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=s1;"
            ),
            "{h}"
        );
        assert!(
            h.contains("t=1700000000;") && h.contains("h=from:to:to:subject;"),
            "{h}"
        );
        assert!(h.ends_with("\r\n") && !h[..h.len() - 2].contains("\r\n\r\n"));
        for line in h.split("\r\n") {
            assert!(line.len() <= MAX_LINE, "{line:?}");
        }
        // Ed25519 is deterministic: the same input gives the same header.
        assert_eq!(h, s.sign(MESSAGE, 1_700_000_000));
    }
}
