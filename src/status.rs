//! RFC 3463 enhanced status codes (`5.1.1`): the one parser, for SMTP replies and bounce reports.
//!
//! A leaf: pure, no I/O, it imports nothing of brief.

use std::fmt;

/// An enhanced status code: class (2, 4 or 5), subject and detail, e.g. `5.1.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Enhanced {
    /// 2 success, 4 persistent transient failure, 5 permanent failure.
    pub class: u16,
    /// What the code is about (1 addressing, 7 security or policy, ...).
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl Enhanced {
    /// The code as (class, subject, detail).
    pub fn triple(self) -> (u16, u16, u16) {
        (self.class, self.subject, self.detail)
    }
}

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// `word` as a whole, if it is an enhanced status code: a class of 2, 4 or 5, then a subject
/// and a detail of one to three digits each.
pub fn parse(word: &str) -> Option<Enhanced> {
    let mut parts = word.split('.');
    let number = |s: &str, max: usize| -> Option<u16> {
        (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let class = number(parts.next()?, 1).filter(|c| matches!(c, 2 | 4 | 5))?;
    let subject = number(parts.next()?, 3)?;
    let detail = number(parts.next()?, 3)?;
    parts.next().is_none().then_some(Enhanced {
        class,
        subject,
        detail,
    })
}

/// The first enhanced status code anywhere in `text` (`5.1.1`, `5.1.10`, the `5.1.1` of
/// `550-5.1.1`), with its text as written, but not one inside a longer dotted number such as an
/// IP address (`4.16.55.1`).
pub fn find(text: &str) -> Option<(&str, Enhanced)> {
    let b = text.as_bytes();
    for i in 0..b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.')) {
            continue;
        }
        // The whole dotted number that starts here; a dot not followed by a digit ends it.
        let mut end = i;
        while end < b.len()
            && (b[end].is_ascii_digit()
                || (b[end] == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit)))
        {
            end += 1;
        }
        if let Some(code) = parse(&text[i..end]) {
            return Some((&text[i..end], code));
        }
    }
    None
}

/// The enhanced status code of an SMTP reply: the word that follows the reply `code` in `text`,
/// or else the word `text` starts with, if its class agrees with `code` (`550 5.1.1`, not
/// `550 4.1.1`).
pub fn of_reply(code: u16, text: &str) -> Option<Enhanced> {
    let agrees = |s: Enhanced| s.class == code / 100;
    let words: Vec<&str> = text.split_whitespace().collect();
    let code = code.to_string();
    words
        .windows(2)
        .find(|w| w[0] == code)
        .and_then(|w| parse(w[1]).filter(|s| agrees(*s)))
        .or_else(|| words.first().and_then(|w| parse(w)).filter(|s| agrees(*s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Option<&str> {
        find(text).map(|(text, _)| text)
    }

    #[test]
    fn codes_are_found_and_not_in_longer_numbers() {
        assert_eq!(found("5.1.10 x"), Some("5.1.10"));
        assert_eq!(found("550-5.1.1 x"), Some("5.1.1"));
        assert_eq!(found("status 5.1.1."), Some("5.1.1"));
        assert_eq!(
            found("from 192.0.2.1 (4.16.55.1) then 4.7.0"),
            Some("4.7.0")
        );
        assert_eq!(found("5.1.1234"), None);
        assert_eq!(found("5.1.1.9"), None);
        assert_eq!(found("3.1.1"), None);
        assert_eq!(found("5."), None);
        assert_eq!(found("5.01.1"), Some("5.01.1"));
        assert_eq!(find("x 4.7.0").map(|(_, s)| s.triple()), Some((4, 7, 0)));
    }

    #[test]
    fn a_word_is_a_code_only_whole() {
        assert_eq!(parse("5.1.1").map(Enhanced::triple), Some((5, 1, 1)));
        assert_eq!(
            parse("2.0.0").map(|s| s.to_string()).as_deref(),
            Some("2.0.0")
        );
        assert_eq!(parse("5.1.1,"), None);
        assert_eq!(parse("5.1"), None);
        assert_eq!(parse("55.1.1"), None);
        assert_eq!(parse("1.1.1"), None);
        assert_eq!(parse("5.1234.1"), None);
    }

    #[test]
    fn a_reply_code_is_followed_by_a_code_of_its_class() {
        let triple = |code, text| of_reply(code, text).map(Enhanced::triple);
        assert_eq!(
            triple(
                550,
                "mx:25 answered RCPT TO <a@x.org> with 550 5.1.1 <a@x.org>: no"
            ),
            Some((5, 1, 1))
        );
        assert_eq!(triple(550, "5.1.10 null MX"), Some((5, 1, 10)));
        assert_eq!(
            triple(451, "mx:25 answered DATA with 451 4.3.0 later"),
            Some((4, 3, 0))
        );
        // The class must agree with the reply code.
        assert_eq!(triple(550, "4.1.1 odd"), None);
        assert_eq!(triple(550, "no such user"), None);
        // An IPv4 host in brief's own text is not a code.
        assert_eq!(
            triple(550, "5.1.1.9:25 answered DATA with 550 5.7.1 no"),
            Some((5, 7, 1))
        );
    }
}
