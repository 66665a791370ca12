//! The languages brief writes in: a [`Lang`] is a BCP 47 tag as `[newsletter] languages` names
//! it; [`Languages`] is that list, the first being the default, and picks a reader's language
//! from a tag (by prefix: `es-MX`, then `es`, then the default) or from a browser's
//! `Accept-Language` header.

use std::fmt;

/// A language tag as configured (`en`, `es`, `pt-BR`): letters and digits in subtags of at most
/// eight, separated by `-`, the first of two or three letters. Kept in the usual case
/// (language lowercase, a two-letter region uppercase) and compared as that.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lang(String);

/// Primary languages written right to left, for `dir`.
const RIGHT_TO_LEFT: &[&str] = &[
    "ar", "arc", "ckb", "dv", "fa", "ha", "he", "khw", "ks", "ku", "ps", "sd", "ur", "yi",
];

impl Lang {
    /// Parses a BCP 47 tag; the error says what is wrong with it.
    pub fn parse(tag: &str) -> Result<Lang, String> {
        let tag = tag.trim();
        let mut out = String::with_capacity(tag.len());
        for (i, sub) in tag.split(['-', '_']).enumerate() {
            let ok = !sub.is_empty()
                && sub.len() <= 8
                && sub.bytes().all(|b| b.is_ascii_alphanumeric())
                && (i > 0
                    || (2..=3).contains(&sub.len())
                        && sub.bytes().all(|b| b.is_ascii_alphabetic()));
            if !ok {
                return Err(format!(
                    "`{tag}` is not a language tag (BCP 47, like `en`, `es` or `es-MX`)"
                ));
            }
            if i > 0 {
                out.push('-');
            }
            if i > 0 && sub.len() == 2 && sub.bytes().all(|b| b.is_ascii_alphabetic()) {
                out.push_str(&sub.to_ascii_uppercase());
            } else {
                out.push_str(&sub.to_ascii_lowercase());
            }
        }
        Ok(Lang(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The primary language subtag (`es` of `es-MX`).
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }

    /// The direction of the language's script, for `dir`: `rtl` or `ltr`.
    pub fn direction(&self) -> &'static str {
        if RIGHT_TO_LEFT.contains(&self.primary()) {
            "rtl"
        } else {
            "ltr"
        }
    }

    /// The tag with its last subtag removed (`es` of `es-MX`), if it has more than one.
    fn shorter(&self) -> Option<Lang> {
        self.0
            .rsplit_once('-')
            .map(|(head, _)| Lang(head.to_string()))
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl maud::Render for Lang {
    fn render_to(&self, buffer: &mut String) {
        self.0.render_to(buffer)
    }
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Lang {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Lang::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Lang {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Languages {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Lang>::deserialize(d)?;
        Languages::new(list).map_err(|e| serde::de::Error::custom(format!("the list {e}")))
    }
}

/// The configured languages, the default first; never empty. Shown as `en, es`, for messages
/// that list them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Languages(Vec<Lang>);

impl Default for Languages {
    fn default() -> Self {
        Languages(vec![Lang("en".into())])
    }
}

impl fmt::Display for Languages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(l.as_str())?;
        }
        Ok(())
    }
}

impl Languages {
    /// The list as configured; refused when it is empty or names a language twice.
    pub fn new(list: Vec<Lang>) -> Result<Languages, String> {
        if list.is_empty() {
            return Err("names no language: list at least one, the default first".into());
        }
        for (i, l) in list.iter().enumerate() {
            if list[..i].contains(l) {
                return Err(format!("names `{l}` twice"));
            }
        }
        Ok(Languages(list))
    }

    /// The default language: the first configured.
    pub fn default_lang(&self) -> &Lang {
        &self.0[0]
    }

    pub fn all(&self) -> &[Lang] {
        &self.0
    }

    /// Whether more than one language is configured.
    pub fn several(&self) -> bool {
        self.0.len() > 1
    }

    /// The configured language equal to `tag`, ignoring case.
    pub fn find(&self, tag: &str) -> Option<&Lang> {
        let l = Lang::parse(tag).ok()?;
        self.0.iter().find(|c| **c == l)
    }

    /// The configured language that `tag` asks for, by BCP 47 prefix: the tag itself, then the
    /// tag with its last subtag cut, and so on (`es-MX` -> `es`); `None` when none matches.
    pub fn matching(&self, tag: &str) -> Option<&Lang> {
        let mut l = Lang::parse(tag).ok()?;
        loop {
            if let Some(c) = self.0.iter().find(|c| **c == l) {
                return Some(c);
            }
            l = l.shorter()?;
        }
    }

    /// The reader's language for the tag on record (a CSV cell, the ledger): [`Self::matching`],
    /// else the default (an empty or unknown tag included).
    pub fn pick(&self, tag: Option<&str>) -> &Lang {
        tag.and_then(|t| self.matching(t))
            .unwrap_or_else(|| self.default_lang())
    }

    /// The language a browser asks for with `Accept-Language`: the configured language that the
    /// highest-weighted range matches (in the header's order among equal weights, by prefix,
    /// `*` meaning the default), else the default. Ranges weighted `q=0` are refused.
    pub fn negotiate(&self, accept_language: Option<&str>) -> &Lang {
        let Some(header) = accept_language else {
            return self.default_lang();
        };
        let mut ranges: Vec<(u16, usize, &str)> = Vec::new();
        for (i, item) in header.split(',').enumerate().take(32) {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim();
            let mut q = 1000u16;
            for p in parts {
                if let Some(v) = p
                    .trim()
                    .strip_prefix("q=")
                    .or_else(|| p.trim().strip_prefix("Q="))
                {
                    q = parse_q(v.trim()).unwrap_or(0);
                }
            }
            if !range.is_empty() && q > 0 {
                ranges.push((q, i, range));
            }
        }
        // Highest weight first; the header's order among equal weights.
        ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, range) in ranges {
            if range == "*" {
                return self.default_lang();
            }
            if let Some(l) = self.matching(range) {
                return l;
            }
        }
        self.default_lang()
    }
}

/// A q-value (`0`, `0.5`, `1.000`) in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    Some((whole + thousandths).min(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs(list: &[&str]) -> Languages {
        Languages::new(list.iter().map(|l| Lang::parse(l).unwrap()).collect()).unwrap()
    }

    #[test]
    fn tags_are_checked_and_kept_in_their_usual_case() {
        assert_eq!(Lang::parse("ES-mx").unwrap().as_str(), "es-MX");
        assert_eq!(Lang::parse("es_MX").unwrap().as_str(), "es-MX");
        assert_eq!(Lang::parse("zh-Hant-TW").unwrap().as_str(), "zh-hant-TW");
        for bad in [
            "",
            "e",
            "english",
            "es-",
            "es--MX",
            "e1",
            "es MX",
            "es-toolongsubtag",
        ] {
            assert!(Lang::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Lang::parse("ar").unwrap().direction(), "rtl");
        assert_eq!(Lang::parse("es-MX").unwrap().direction(), "ltr");
    }

    #[test]
    fn a_tag_finds_its_language_by_prefix_then_the_default() {
        let l = langs(&["en", "es"]);
        assert_eq!(l.pick(Some("es-MX")).as_str(), "es");
        assert_eq!(l.pick(Some("ES")).as_str(), "es");
        assert_eq!(l.pick(Some("es")).as_str(), "es");
        assert_eq!(l.pick(Some("fr-CA")).as_str(), "en");
        assert_eq!(l.pick(Some("")).as_str(), "en");
        assert_eq!(l.pick(None).as_str(), "en");
        // A regional language configured is found before its prefix.
        let l = langs(&["es", "es-MX"]);
        assert_eq!(l.pick(Some("es-mx")).as_str(), "es-MX");
        assert_eq!(l.pick(Some("es-AR")).as_str(), "es");
        assert!(Languages::new(vec![]).is_err());
        assert!(
            Languages::new(vec![Lang::parse("en").unwrap(), Lang::parse("EN").unwrap()]).is_err()
        );
    }

    #[test]
    fn accept_language_is_read_by_weight_then_order() {
        let l = langs(&["en", "es"]);
        assert_eq!(l.negotiate(Some("es-MX,es;q=0.9,en;q=0.8")).as_str(), "es");
        assert_eq!(l.negotiate(Some("fr, es;q=0.5, en;q=0.7")).as_str(), "en");
        assert_eq!(l.negotiate(Some("en;q=0.1, es-419")).as_str(), "es");
        assert_eq!(l.negotiate(Some("es;q=0, fr")).as_str(), "en");
        assert_eq!(l.negotiate(Some("de, *;q=0.5")).as_str(), "en");
        assert_eq!(l.negotiate(Some("es;q=0.50, en;q=0.5")).as_str(), "es");
        assert_eq!(l.negotiate(Some("garbage;;;q=x,es")).as_str(), "es");
        assert_eq!(l.negotiate(None).as_str(), "en");
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1.0"), Some(1000));
        assert_eq!(parse_q("2"), None);
    }
}
