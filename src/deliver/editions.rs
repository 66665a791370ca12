//! A campaign's messages, one per language, as a run sends them: thawed once per run, and
//! looked up per delivery by the language it records (a short list compared in place: no
//! allocation on the way to the message).

use crate::lang::Lang;
use crate::message::MessageTemplate;
use crate::token::TokenKey;

/// The message of each language a campaign is sent in, the default language's first.
pub struct Editions {
    list: Vec<(Lang, MessageTemplate)>,
}

impl Editions {
    /// `list` in order, the default language's first. Panics when it is empty: a campaign
    /// always has its default language's message.
    pub fn new(list: Vec<(Lang, MessageTemplate)>) -> Editions {
        assert!(!list.is_empty(), "a campaign has at least one edition");
        Editions { list }
    }

    /// One message, in `lang` (a campaign of one language, or one stored before editions).
    pub fn single(lang: Lang, template: MessageTemplate) -> Editions {
        Editions::new(vec![(lang, template)])
    }

    /// The message for a delivery recorded in `lang`: that language's, else (no language
    /// recorded, an older campaign, or a language since removed) the default language's.
    pub fn for_lang(&self, lang: Option<&str>) -> &MessageTemplate {
        lang.and_then(|tag| {
            self.list
                .iter()
                .find(|(l, _)| l.as_str().eq_ignore_ascii_case(tag))
        })
        .map_or(&self.list[0].1, |(_, t)| t)
    }

    /// The default language's message.
    pub fn default_template(&self) -> &MessageTemplate {
        &self.list[0].1
    }

    /// Every language with its message, the default first.
    pub fn iter(&self) -> impl Iterator<Item = (&Lang, &MessageTemplate)> {
        self.list.iter().map(|(l, t)| (l, t))
    }

    /// How many languages.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Never: there is always the default language's message (for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The key the messages sign with (the same for every language).
    pub fn key(&self) -> &TokenKey {
        self.list[0].1.key()
    }
}
