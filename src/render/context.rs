//! What every part of the renderer shares: the [`Context`] it renders in (the newsletter and
//! its words in one language, the templates, the public URL) and the [`HOLE`] where a reader's
//! token goes.

use chrono::NaiveDate;
use url::Url;

use crate::config::Newsletter;
use crate::issue::Issue;
use crate::lang::Lang;
use crate::templates::{Edition, Templates, Words};

/// Marks where a recipient's token goes (in the unsubscribe and language links). It holds NUL
/// characters, which no escaped content can contain (they are removed from all text before
/// rendering).
pub const HOLE: &str = "\u{0}brief-reader-token\u{0}";

/// What the renderer needs besides the issue.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The newsletter in [`Context::lang`] (`[newsletter.LANG]` over `[newsletter]`).
    pub newsletter: &'a Newsletter,
    pub templates: &'a Templates,
    /// The catalogue of [`Context::lang`].
    pub words: &'a Words,
    /// The language rendered in: `lang` and `dir` of every page, `Content-Language`.
    pub lang: &'a Lang,
    /// The daemon's public base URL (ends with `/`).
    pub public_url: &'a Url,
    /// Where "View in browser" points instead of the archive: a test copy's signed preview,
    /// since an issue not sent yet has no page in the archive. The default language's; another
    /// language's is this with `/LANG` added.
    pub web_version: Option<&'a Url>,
}

impl<'a> Context<'a> {
    /// The context of `edition`'s language.
    pub fn of(templates: &'a Templates, edition: &'a Edition, public_url: &'a Url) -> Context<'a> {
        Context {
            newsletter: &edition.newsletter,
            templates,
            words: &edition.words,
            lang: &edition.lang,
            public_url,
            web_version: None,
        }
    }

    /// The same in `lang` (the default language when `lang` is not configured).
    pub fn in_lang(self, lang: &Lang) -> Context<'a> {
        let edition = self.templates.edition(lang);
        Context {
            newsletter: &edition.newsletter,
            words: &edition.words,
            lang: &edition.lang,
            ..self
        }
    }

    /// The direction of the language's script, `dir` beside each `lang`.
    pub fn dir(&self) -> &'static str {
        self.lang.direction()
    }

    /// Whether this is the default language (the first configured).
    pub fn is_default_lang(&self) -> bool {
        self.templates.editions()[0].lang == *self.lang
    }

    /// The other languages' editions, in the configured order.
    pub fn other_editions(&self) -> impl Iterator<Item = &'a Edition> + '_ {
        self.templates
            .editions()
            .iter()
            .filter(move |e| e.lang != *self.lang)
    }

    /// The web version's URL in this language, linked as "View in browser": the archive page,
    /// or [`Context::web_version`] when set.
    pub fn archive_url(&self, issue: &Issue) -> Url {
        self.edition_url(issue, self.lang)
    }

    /// The web version's URL in `lang`: the default language's at `archive/ID` (or the
    /// preview), another's with `/LANG` added.
    pub fn edition_url(&self, issue: &Issue, lang: &Lang) -> Url {
        let base = match self.web_version {
            Some(url) => url.clone(),
            None => self
                .public_url
                .join(&format!("archive/{}", issue.id))
                .expect("public_url is a base URL"),
        };
        if self.templates.editions()[0].lang == *lang {
            base
        } else {
            let mut u = base;
            u.path_segments_mut()
                .expect("an http base URL")
                .push(lang.as_str());
            u
        }
    }

    /// A reader's link to `path` (`unsubscribe`) with the [`HOLE`] for the
    /// reader's token after it, and, in a language other than the default, `?lang=` so that
    /// the page it opens speaks it.
    pub fn reader_link(&self, path: &str) -> String {
        if self.is_default_lang() {
            format!("{}{path}/{HOLE}", self.public_url)
        } else {
            format!("{}{path}/{HOLE}?lang={}", self.public_url, self.lang)
        }
    }

    /// A reader's link to the page that moves them to `lang` (it speaks that language, so
    /// it needs no `?lang=`), with the [`HOLE`] for their token.
    pub fn switch_link(&self, lang: &Lang) -> String {
        format!("{}language/{lang}/{HOLE}", self.public_url)
    }

    /// `date` in the newsletter's `date_format` for this language, month and day names in it.
    pub fn date(&self, date: NaiveDate) -> String {
        format_date(date, &self.newsletter.date_format, self.lang)
    }
}

/// `date` in `format` (chrono strftime), with month and day names in `lang` when the format
/// has any.
pub fn format_date(date: NaiveDate, format: &str, lang: &Lang) -> String {
    let named = ["%B", "%b", "%h", "%A", "%a", "%c", "%x"];
    if named.iter().any(|n| format.contains(n)) {
        date.format_localized(format, locale(lang)).to_string()
    } else {
        date.format(format).to_string()
    }
}

/// chrono's locale for `lang`: its region's when it names one, else the language's usual one.
fn locale(lang: &Lang) -> chrono::Locale {
    let primary = lang.primary();
    let region = lang
        .as_str()
        .split('-')
        .skip(1)
        .find(|s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()));
    let usual = match primary {
        "en" => "US",
        "es" => "MX",
        "pt" => "BR",
        "zh" => "CN",
        "ar" => "EG",
        _ => "",
    };
    let mut tries = Vec::new();
    if let Some(r) = region {
        tries.push(format!("{primary}_{r}"));
    }
    if !usual.is_empty() {
        tries.push(format!("{primary}_{usual}"));
    }
    tries.push(format!("{primary}_{}", primary.to_ascii_uppercase()));
    tries.push(primary.to_string());
    tries
        .iter()
        .find_map(|t| chrono::Locale::try_from(t.as_str()).ok())
        .unwrap_or(chrono::Locale::POSIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_in_the_readers_language() {
        let d = NaiveDate::from_ymd_opt(2021, 7, 23).unwrap();
        let es = Lang::parse("es").unwrap();
        let en = Lang::parse("en").unwrap();
        assert_eq!(
            format_date(d, "%-d de %B de %Y", &es),
            "23 de julio de 2021"
        );
        assert_eq!(format_date(d, "%B %-d, %Y", &en), "July 23, 2021");
        assert_eq!(format_date(d, "%d/%m/%y", &es), "23/07/21");
    }
}
