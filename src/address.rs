//! Email addresses at the edge: parsed once into `lettre::Address`, compared by [`AddressKey`].
//!
//! brief compares addresses case-insensitively (`Ana@Example.org` and `ana@example.org` are one
//! reader). The lowercasing happens here and nowhere else: in [`AddressKey`], the key the ledger
//! stores and looks up, and in [`lowercase_chunks`], which feeds the same lowercased bytes to a
//! hash (tokens, Message-IDs) without allocating on the send path.

use std::fmt;

use lettre::Address;

/// Why [`parse_address`] refused an address; its text names the address (control characters
/// escaped) and what brief wants instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("empty address")]
    Empty,
    /// The address, escaped.
    #[error("`{0}` has a control character (such as NUL or a line break): an address has none")]
    ControlCharacter(String),
    #[error("`{0}` has non-ASCII characters: internationalised addresses are not supported yet")]
    NonAscii(String),
    /// What lettre's parser says is wrong.
    #[error("`{address}` is not a valid email address ({reason})")]
    Syntax { address: String, reason: String },
    #[error(
        "`{0}` has an IP address for its domain: brief mails only domain names (like \
         example.org)"
    )]
    IpDomain(String),
    #[error(
        "`{address}` has no dot in its domain `{domain}`: brief mails only full domain names \
         (like example.org), not local names like localhost"
    )]
    NoDot { address: String, domain: String },
}

impl AddressError {
    /// The message of the catalogues (`templates/LANG.ftl`) that tells a reader on the sign-up
    /// form what is wrong, in their language.
    pub fn catalogue_id(&self) -> &'static str {
        match self {
            AddressError::Empty => "address-empty",
            AddressError::ControlCharacter(_) => "address-control",
            AddressError::NonAscii(_) => "address-non-ascii",
            AddressError::Syntax { .. } => "address-syntax",
            AddressError::IpDomain(_) => "address-ip",
            AddressError::NoDot { .. } => "address-no-dot",
        }
    }
}

/// Parses one address as the list, the CLI and the web forms accept it: ASCII, no control
/// characters (a NUL from `%00` included), and a domain that could receive mail from the
/// internet: a dotted name, not an IP literal (`[127.0.0.1]`), a bare number or a single label
/// (`localhost`).
pub fn parse_address(s: &str) -> Result<Address, AddressError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(AddressError::Empty);
    }
    if s.chars().any(char::is_control) {
        // Echoed escaped: the error may be printed or logged.
        return Err(AddressError::ControlCharacter(
            s.escape_default().to_string(),
        ));
    }
    if !s.is_ascii() {
        return Err(AddressError::NonAscii(s.to_string()));
    }
    let address = s.parse::<Address>().map_err(|e| AddressError::Syntax {
        address: s.to_string(),
        reason: e.to_string(),
    })?;
    let domain = address.domain();
    if domain.starts_with('[') {
        return Err(AddressError::IpDomain(s.to_string()));
    }
    let labels: Vec<&str> = domain.trim_end_matches('.').split('.').collect();
    if labels.len() < 2 {
        return Err(AddressError::NoDot {
            address: s.to_string(),
            domain: domain.to_string(),
        });
    }
    if labels
        .last()
        .is_some_and(|top| top.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(AddressError::IpDomain(s.to_string()));
    }
    Ok(address)
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

/// `text` with every substring that looks like an address (`local@domain`, with or without
/// `<...>` around it) replaced by what `name` makes of it: the one function that keeps
/// addresses out of log lines, for text brief did not write itself, such as an SMTP reply
/// quoting `RCPT TO:<bob@example.org>` or `550 5.1.1 <bob@example.org>: Recipient address
/// rejected`. `TokenKey::redact` replaces each with its keyed tag; [`redacted`] with
/// `<redacted>`. Text without an `@` is returned as it is, without allocating.
pub fn redact(text: &str, mut name: impl FnMut(&str) -> String) -> std::borrow::Cow<'_, str> {
    if !text.contains('@') {
        return std::borrow::Cow::Borrowed(text);
    }
    let local = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.\"".contains(c);
    let domain = |c: char| c.is_alphanumeric() || "-.[]:_".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (at, _) in text.match_indices('@') {
        if at < done {
            continue;
        }
        let start = text[done..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| local(c))
            .last()
            .map_or(at, |(i, _)| done + i);
        let end = text[at + 1..]
            .char_indices()
            .find(|&(_, c)| !domain(c))
            .map_or(text.len(), |(i, _)| at + 1 + i);
        // A sentence's full stop, or a colon after the address, is not part of it.
        let end = at + 1 + text[at + 1..end].trim_end_matches(['.', ':']).len();
        if start == at || end == at + 1 {
            continue;
        }
        out.push_str(&text[done..start]);
        out.push_str(&name(&text[start..end]));
        done = end;
    }
    if done == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    std::borrow::Cow::Owned(out)
}

/// `text` with every address in it replaced by `<redacted>` (see [`redact`]), for log lines
/// written where no token key is at hand.
pub fn redacted(text: &str) -> std::borrow::Cow<'_, str> {
    redact(text, |_| "<redacted>".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_replaces_every_address_looking_substring() {
        let tag = |a: &str| format!("tag({})", a.to_ascii_lowercase());
        assert_eq!(
            redact(
                "550 5.1.1 <Bob@Example.org>: Recipient address rejected",
                tag
            ),
            "550 5.1.1 <tag(bob@example.org)>: Recipient address rejected"
        );
        assert_eq!(
            redact(
                "mx:25 answered RCPT TO <a.b+c@x.org> with 550 a.b+c@x.org: no. Ask postmaster@x.org.",
                tag
            ),
            "mx:25 answered RCPT TO <tag(a.b+c@x.org)> with 550 tag(a.b+c@x.org): no. Ask \
             tag(postmaster@x.org)."
        );
        assert_eq!(
            redacted("RCPT TO:<bob@example.org> ok"),
            "RCPT TO:<<redacted>> ok"
        );
        // Nothing that looks like an address: unchanged, and not copied.
        for text in ["250 2.0.0 Ok: queued as 4F2", "a @ b", "@@", "x@", "@y"] {
            assert!(
                matches!(redacted(text), std::borrow::Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        assert_eq!(
            redacted("mail for x@y and z@w.org"),
            "mail for <redacted> and <redacted>"
        );
    }

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
        assert_eq!(parse_address(" "), Err(AddressError::Empty));
        assert_eq!(parse_address(" ").unwrap_err().to_string(), "empty address");
        assert!(parse_address("josé@example.org")
            .unwrap_err()
            .to_string()
            .contains("non-ASCII"));
        assert!(parse_address("nope")
            .unwrap_err()
            .to_string()
            .starts_with("`nope` is not a valid email address"));
        assert!(matches!(
            parse_address("x@localhost"),
            Err(AddressError::NoDot { .. })
        ));
    }

    #[test]
    fn an_address_needs_a_dotted_domain_and_no_control_characters() {
        for (bad, why) in [
            ("x@localhost", "no dot in its domain `localhost`"),
            ("x@[127.0.0.1]", "an IP address for its domain"),
            ("x@127.0.0.1", "an IP address for its domain"),
            (
                "x@example.org\0",
                "`x@example.org\\u{0}` has a control character",
            ),
            ("x\0y@example.org", "has a control character"),
            ("x@exa\u{1b}mple.org", "has a control character"),
        ] {
            let e = parse_address(bad).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(!e.contains('\0'), "{bad:?}: the error echoes no NUL: {e:?}");
        }
        for good in ["x@example.org", "X.Y+tag@mail.example.co.uk", "a@b.c"] {
            assert!(parse_address(good).is_ok(), "{good}");
        }
    }
}
