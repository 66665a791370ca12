//! The values an issue file and an entry's front matter and body share the reading of: dates,
//! web addresses written without their scheme, and TOML errors as problems.

use std::path::Path;

use chrono::NaiveDate;

use crate::error::{Invalid, Problem};

/// A TOML error as a problem; `line_offset` is the line before the TOML text starts.
pub(super) fn toml_problem(
    path: &Path,
    text: &str,
    line_offset: usize,
    e: &toml::de::Error,
) -> Problem {
    let line = e
        .span()
        .map(|s| crate::config::line_of(text, s.start))
        .unwrap_or(1);
    Problem::at(path, line + line_offset, e.message().trim_end().to_string())
}

/// Parses a date written as a TOML date or a `YYYY-MM-DD` string.
pub fn parse_date(s: &str) -> Result<NaiveDate, Invalid> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Invalid(format!(
            "invalid date `{s}`: write it as YYYY-MM-DD, like 2021-07-23"
        ))
    })
}

/// The `https://` address a writer most likely meant by `s`, when `s` is a web address without
/// its scheme: `www.example.org/page` or `//example.org/page` (which the URL parser refuses as
/// relative), or `example.org:8080/x` (which it reads as the scheme `example.org`). `None` when
/// `s` has a scheme, or does not start with something that looks like a domain name, such as
/// `/about`, `page.html` or `not a url`.
pub(super) fn with_https(s: &str) -> Option<String> {
    let s = s.trim();
    let rest = s.strip_prefix("//").unwrap_or(s);
    if rest.is_empty() || rest.starts_with(['/', '.', '#', '?']) {
        return None;
    }
    match url::Url::parse(s) {
        Err(url::ParseError::RelativeUrlWithoutBase) => {}
        // `host:port` parses as a scheme, but no real scheme has a dot in it.
        Ok(u) if u.scheme().contains('.') => {}
        _ => return None,
    }
    let candidate = format!("https://{rest}");
    let url = url::Url::parse(&candidate).ok()?;
    let looks_like_a_site = match url.host()? {
        url::Host::Domain(d) => {
            let tld = d.rsplit('.').next().unwrap_or("");
            d.contains('.')
                && tld.len() >= 2
                && tld.bytes().all(|b| b.is_ascii_alphabetic())
                // A file name is more likely a relative link than a web site.
                && !matches!(
                    tld.to_ascii_lowercase().as_str(),
                    "htm" | "html" | "md" | "pdf" | "php" | "png" | "jpg" | "jpeg" | "gif" | "txt"
                )
        }
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => true,
    };
    looks_like_a_site.then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::with_https;

    #[test]
    fn content_with_https_suggests_only_for_addresses_without_a_scheme() {
        for (s, want) in [
            ("www.example.org/page", Some("https://www.example.org/page")),
            ("example.org", Some("https://example.org")),
            (
                "  dhs.gov/news?x=1#top ",
                Some("https://dhs.gov/news?x=1#top"),
            ),
            ("//example.org/x", Some("https://example.org/x")),
            ("example.org:8080/x", Some("https://example.org:8080/x")),
            ("192.0.2.1/status", Some("https://192.0.2.1/status")),
            ("https://example.org/", None),
            ("mailto:ana@example.org", None),
            ("javascript:alert(1)", None),
            ("localhost:8080/x", None),
            ("/about", None),
            ("../about", None),
            ("#top", None),
            ("page.html", None),
            ("intranet", None),
            ("not a url", None),
            ("", None),
        ] {
            assert_eq!(with_https(s).as_deref(), want, "for {s:?}");
        }
    }
}
