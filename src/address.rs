//! Email addresses at the edge: parsed once into `lettre::Address`, compared by [`AddressKey`].
//!
//! brief compares addresses case-insensitively (`Ana@Example.org` and `ana@example.org` are one
//! reader). The lowercasing happens here and nowhere else: in [`AddressKey`], the key the ledger
//! stores and looks up, and in [`lowercase_chunks`], which feeds the same lowercased bytes to a
//! hash (tokens, Message-IDs) without allocating on the send path.

use std::fmt;

use lettre::Address;

/// Parses one address as the list, the CLI and the web forms accept it.
pub fn parse_address(s: &str) -> Result<Address, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty address".into());
    }
    if !s.is_ascii() {
        return Err(format!(
            "`{s}` has non-ASCII characters: internationalised addresses are not supported yet"
        ));
    }
    s.parse::<Address>()
        .map_err(|e| format!("`{s}` is not a valid email address ({e})"))
}

/// An address as brief compares it: lowercased, once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressKey(String);

impl AddressKey {
    /// The key of `address`.
    pub fn of(address: &Address) -> AddressKey {
        AddressKey::from_text(address.as_ref())
    }

    /// The key of an address held as text (a ledger row, a token's payload).
    pub fn from_text(address: &str) -> AddressKey {
        AddressKey(address.to_ascii_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&Address> for AddressKey {
    fn from(address: &Address) -> AddressKey {
        AddressKey::of(address)
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Calls `f` with the lowercased bytes of `address`, a chunk at a time, without allocating:
/// hashing these gives the same digest for every casing of one address.
pub fn lowercase_chunks(address: &str, mut f: impl FnMut(&[u8])) {
    for chunk in address.as_bytes().chunks(64) {
        let mut lower = [0u8; 64];
        let lower = &mut lower[..chunk.len()];
        lower.copy_from_slice(chunk);
        lower.make_ascii_lowercase();
        f(lower);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_casing_has_one_key() {
        let a: Address = "Ana.Lopez@Example.ORG".parse().unwrap();
        assert_eq!(AddressKey::of(&a).as_str(), "ana.lopez@example.org");
        assert_eq!(
            AddressKey::of(&a),
            AddressKey::from_text("ana.lopez@example.org")
        );
        let long = format!("{}@Example.org", "X".repeat(150));
        let mut fed = Vec::new();
        lowercase_chunks(&long, |c| fed.extend_from_slice(c));
        assert_eq!(fed, long.to_ascii_lowercase().into_bytes());
    }

    #[test]
    fn bad_addresses_say_why() {
        assert_eq!(parse_address(" "), Err("empty address".to_string()));
        assert!(parse_address("josé@example.org")
            .unwrap_err()
            .contains("non-ASCII"));
        assert!(parse_address("nope")
            .unwrap_err()
            .starts_with("`nope` is not a valid email address"));
    }
}
