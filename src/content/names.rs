//! What the name of a file in an issue folder says it is: an entry (`01-x.md`), a translation of
//! one (`01-x.es.md`), or neither; and the English names of languages, for problems.

use crate::lang::Lang;

/// The part of a Markdown file's name before its extension (`01-x` of `01-x.md`, `01-x.es` of
/// `01-x.es.md`); `None` when the file is not Markdown (`.md` or `.markdown`, in any case) or is
/// hidden.
pub(super) fn markdown_stem(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || name.starts_with('.') {
        return None;
    }
    (ext.eq_ignore_ascii_case("md") || ext.eq_ignore_ascii_case("markdown")).then_some(stem)
}

/// The entry a translation file translates and its language: `("01-x", es)` for `01-x.es.md`.
/// A Markdown file whose name ends, before the extension, in a dot and a language tag (BCP 47:
/// `es`, `pt-BR`) is a translation; any other dotted name (`01-x.v2.md`, `01-x.final.md`) is an
/// entry of its own, as it always was.
pub fn translation_of(name: &str) -> Option<(&str, Lang)> {
    let stem = markdown_stem(name)?;
    let (base, tag) = stem.rsplit_once('.')?;
    if base.is_empty() {
        return None;
    }
    Lang::parse(tag).ok().map(|lang| (base, lang))
}

/// The English name of a language, for a problem ("no Spanish translation"); the tag in
/// backquotes for a language not listed here.
pub(super) fn language_name(lang: &Lang) -> String {
    let name = match lang.primary() {
        "ar" => "Arabic",
        "de" => "German",
        "en" => "English",
        "es" => "Spanish",
        "fr" => "French",
        "it" => "Italian",
        "ja" => "Japanese",
        "ko" => "Korean",
        "nl" => "Dutch",
        "pt" => "Portuguese",
        "ru" => "Russian",
        "zh" => "Chinese",
        _ => return format!("`{lang}`"),
    };
    if lang.as_str() == lang.primary() {
        name.to_string()
    } else {
        format!("{name} (`{lang}`)")
    }
}
