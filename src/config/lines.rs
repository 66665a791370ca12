//! Where a key or an offset is in a TOML text, as a 1-based line, for messages that name it.

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The 1-based line where the key at `keys` is set in the TOML `text`, read from the parser's
/// spans: `["delivery", "concurrency"]`, or `["content", "feeds", "2", "url"]` (a number indexes
/// an array). When the key is absent, the line of the nearest table on the way that exists; 1
/// when there is none or the text does not parse.
pub fn key_line(text: &str, keys: &[&str]) -> usize {
    use toml::de::{DeTable, DeValue};
    let Ok(root) = DeTable::parse(text) else {
        return 1;
    };
    let root = DeValue::Table(root.into_inner());
    let mut value = &root;
    let mut line = 1;
    for key in keys {
        let next = match value {
            DeValue::Table(t) => t.get_key_value(*key).map(|(k, v)| (k.span().start, v)),
            DeValue::Array(a) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .map(|v| (v.span().start, v)),
            _ => None,
        };
        let Some((start, v)) = next else { break };
        line = line_of(text, start);
        value = v.get_ref();
    }
    line
}
