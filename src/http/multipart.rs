//! A small, strict `multipart/form-data` reader (RFC 7578) for the one form that uploads a
//! file, the console's import: the boundary from the `Content-Type`, then each part's
//! `Content-Disposition` name (and file name) and bytes. The body is read whole beforehand, at
//! most the route's limit; anything that does not follow the format is refused with a reason,
//! never guessed at.

/// The most parts a form may have (the import form has four).
pub const MAX_PARTS: usize = 16;

/// The longest a part's headers may be.
const MAX_HEAD: usize = 2 * 1024;

/// The longest a text field may be (a file part is bounded only by the body's limit).
pub const MAX_FIELD: usize = 4 * 1024;

/// One part of the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The field's name.
    pub name: String,
    /// The file's name as the browser sent it, for a file part.
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// Why a body is not a form this reader takes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

/// The boundary a `multipart/form-data` content type names.
pub fn boundary(content_type: &str) -> Result<String, Malformed> {
    let mut params = content_type.split(';');
    let kind = params.next().unwrap_or("").trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err(Malformed("the form was not sent as multipart/form-data"));
    }
    let b = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| unquote(v.trim()))
        .ok_or(Malformed("the form's content type names no boundary"))?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    if b.is_empty() || b.len() > 70 || !b.chars().all(allowed) || b.ends_with(' ') {
        return Err(Malformed("the form's boundary is not a valid one"));
    }
    Ok(b)
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.extend(if c == '\\' { chars.next() } else { Some(c) });
            }
            out
        }
        None => v.to_string(),
    }
}

/// The parts of `body`, a form whose content type is `content_type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, Malformed> {
    let boundary = boundary(content_type)?;
    let delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    // The first delimiter may open the body (no CRLF before it) or follow a preamble.
    let mut at = if body.starts_with(&delimiter.as_bytes()[2..]) {
        delimiter.len() - 2
    } else {
        finder
            .find(body)
            .map(|i| i + delimiter.len())
            .ok_or(Malformed("the form has no part"))?
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let rest = rest.strip_prefix(b"\r\n").ok_or(Malformed(
            "a boundary of the form is not followed by a line break",
        ))?;
        if parts.len() == MAX_PARTS {
            return Err(Malformed("the form has too many parts"));
        }
        let head_end = memchr::memmem::find(&rest[..rest.len().min(MAX_HEAD + 4)], b"\r\n\r\n")
            .ok_or(Malformed("a part's headers do not end, or are too long"))?;
        let head = std::str::from_utf8(&rest[..head_end])
            .map_err(|_| Malformed("a part's headers are not UTF-8"))?;
        let content = &rest[head_end + 4..];
        let end = finder
            .find(content)
            .ok_or(Malformed("the form ends before its closing boundary"))?;
        let (name, file_name) = disposition(head)?;
        if file_name.is_none() && end > MAX_FIELD {
            return Err(Malformed("a text field of the form is too long"));
        }
        parts.push(Part {
            name,
            file_name,
            bytes: content[..end].to_vec(),
        });
        at = body.len() - content.len() + end + delimiter.len();
    }
}

/// The name and file name of a part's `Content-Disposition: form-data` header.
fn disposition(head: &str) -> Result<(String, Option<String>), Malformed> {
    let value = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
        .map(|(_, v)| v.trim())
        .ok_or(Malformed("a part of the form has no Content-Disposition"))?;
    let params = split_params(value);
    if !params
        .first()
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("form-data"))
    {
        return Err(Malformed("a part of the form is not form-data"));
    }
    let param = |key: &str| {
        params[1..]
            .iter()
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            .map(|(_, v)| unquote(v.trim()))
    };
    let name = param("name").ok_or(Malformed("a part of the form has no name"))?;
    Ok((name, param("filename")))
}

/// `value` split at the semicolons outside quoted strings.
fn split_params(value: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "multipart/form-data; boundary=----WebKitFormBoundaryAbC123";

    fn body(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut b = String::new();
        for (name, file, content) in parts {
            b.push_str("------WebKitFormBoundaryAbC123\r\n");
            match file {
                Some(f) => b.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n"
                )),
                None => b.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                )),
            }
            b.push_str(content);
            b.push_str("\r\n");
        }
        b.push_str("------WebKitFormBoundaryAbC123--\r\n");
        b.into_bytes()
    }

    #[test]
    fn reads_text_fields_and_a_file_with_its_name_and_bytes() {
        let csv = "email,name\r\nana@example.org,Ana\r\n\r\n--not a boundary\r\n";
        let parts = parse(
            TYPE,
            &body(&[
                ("csrf", None, "t0k"),
                ("source", None, "fair; \"stand\" 3"),
                ("file", Some("sign-ups.csv"), csv),
            ]),
        )
        .unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].bytes, b"t0k");
        assert_eq!(parts[1].bytes, b"fair; \"stand\" 3");
        assert_eq!(parts[2].file_name.as_deref(), Some("sign-ups.csv"));
        assert_eq!(parts[2].bytes, csv.as_bytes());
    }

    #[test]
    fn takes_a_quoted_boundary_a_preamble_and_an_empty_file() {
        let t = "multipart/form-data; charset=utf-8; boundary=\"a b:c\"";
        let b = b"preamble\r\n--a b:c\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\r\n\r\n--a b:c--";
        let parts = parse(t, b).unwrap();
        assert_eq!(parts[0].file_name.as_deref(), Some(""));
        assert!(parts[0].bytes.is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_well_formed_form() {
        let good = body(&[("file", Some("a.csv"), "email\n")]);
        let cut = &good[..good.len() - 30];
        for (t, b, why) in [
            ("application/x-www-form-urlencoded", &good[..], "not sent as multipart"),
            ("multipart/form-data", &good[..], "no boundary"),
            ("multipart/form-data; boundary=", &good[..], "not a valid one"),
            (TYPE, cut, "before its closing boundary"),
            (TYPE, b"nothing here", "no part"),
            (
                TYPE,
                b"------WebKitFormBoundaryAbC123\r\nContent-Type: text/plain\r\n\r\nx\r\n------WebKitFormBoundaryAbC123--",
                "no Content-Disposition",
            ),
            (
                TYPE,
                b"------WebKitFormBoundaryAbC123\r\nContent-Disposition: form-data; name=\"a\"\r\nx",
                "headers do not end",
            ),
            (
                TYPE,
                b"------WebKitFormBoundaryAbC123\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n------WebKitFormBoundaryAbC123--",
                "not form-data",
            ),
            (
                TYPE,
                b"------WebKitFormBoundaryAbC123junk",
                "not followed by a line break",
            ),
        ] {
            let e = parse(t, b).unwrap_err();
            assert!(e.0.contains(why), "{t:?}: {e} (wanted {why:?})");
        }
    }

    #[test]
    fn bounds_the_parts_and_the_text_fields() {
        let many: Vec<(&str, Option<&str>, &str)> =
            (0..=MAX_PARTS).map(|_| ("x", None, "1")).collect();
        assert!(parse(TYPE, &body(&many))
            .unwrap_err()
            .0
            .contains("too many"));
        let long = "x".repeat(MAX_FIELD + 1);
        assert!(parse(TYPE, &body(&[("source", None, &long)]))
            .unwrap_err()
            .0
            .contains("too long"));
        // A file part may be longer.
        assert!(parse(TYPE, &body(&[("file", Some("a.csv"), &long)])).is_ok());
    }
}
