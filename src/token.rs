//! Unsubscribe tokens: the address and an HMAC-SHA256 of it under the server's secret key.
//!
//! A token is `base64url(address) . base64url(hmac)`, so the daemon learns the address from the
//! token itself and needs no lookup table; verification is constant-time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::address::lowercase_chunks;
use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks unsubscribe tokens with one key.
#[derive(Clone)]
pub struct TokenKey {
    /// The HMAC keyed and fed the domain prefix once: each token clones it instead of hashing
    /// the key again.
    keyed: HmacSha256,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

impl TokenKey {
    pub fn new(key: Secret) -> Self {
        let mut keyed =
            HmacSha256::new_from_slice(key.expose().as_bytes()).expect("hmac takes any key");
        keyed.update(b"brief-unsubscribe-v1\0");
        TokenKey { keyed }
    }

    fn mac(&self, address: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        lowercase_chunks(address, |c| mac.update(c));
        mac
    }

    /// The token for `address` (compared case-insensitively, so any casing verifies).
    pub fn token(&self, address: &str) -> String {
        let mut out = String::new();
        self.push_token(address, &mut out);
        out
    }

    /// Appends the token for `address` to `out` (the send path's version of [`Self::token`]).
    pub fn push_token(&self, address: &str, out: &mut String) {
        let tag = self.mac(address).finalize().into_bytes();
        out.reserve(4 * (address.len() + tag.len()) / 3 + 4);
        URL_SAFE_NO_PAD.encode_string(address.as_bytes(), out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, out);
    }

    /// The address a token was made for, if the token is genuine.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (addr, tag) = token.split_once('.')?;
        let addr = String::from_utf8(URL_SAFE_NO_PAD.decode(addr).ok()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(&addr).verify_slice(&tag).ok()?;
        Some(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(Secret::new("k".repeat(32)))
    }

    #[test]
    fn token_round_trips_and_tampering_fails() {
        let k = key();
        let t = k.token("Ana@Example.org");
        assert_eq!(k.verify(&t).as_deref(), Some("Ana@Example.org"));
        let mut bad = t.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(k.verify(std::str::from_utf8(&bad).unwrap()), None);
        let other = TokenKey::new(Secret::new("x".repeat(32)));
        assert_eq!(other.verify(&t), None);
        assert_eq!(k.verify("nonsense"), None);
    }

    #[test]
    fn tokens_do_not_change_across_versions() {
        // Links already in readers' mailboxes must keep working: a known answer, computed as
        // base64url(address) . base64url(HMAC-SHA256(key, "brief-unsubscribe-v1\0" + lowercase)).
        let t = key().token("Ana@Example.org");
        assert_eq!(
            t,
            "QW5hQEV4YW1wbGUub3Jn.H-RWmupmfLQ9-IEHJbW_kHOEZRLo-HE9-dUbg01H1NE"
        );
        let long = "A".repeat(150) + "@example.org";
        assert_eq!(key().verify(&key().token(&long)), Some(long));
    }
}
