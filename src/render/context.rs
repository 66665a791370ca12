//! What every part of the renderer shares: the [`Context`] it renders in (the newsletter, the
//! templates, the public URL) and the [`HOLE`] where a reader's unsubscribe URL goes.

use url::Url;

use crate::config::Newsletter;
use crate::issue::Issue;
use crate::templates::Templates;

/// Marks where a recipient's unsubscribe URL goes. It holds NUL characters, which no escaped
/// content can contain (they are removed from all text before rendering).
pub const HOLE: &str = "\u{0}brief-unsubscribe-url\u{0}";

/// The language every message and page is written in (BCP 47), as `lang` on `<html>` and on
/// the wrapper inside `<body>` (some mail clients drop `<html>`), and as each message's
/// `Content-Language`.
pub const LANGUAGE: &str = "en";

/// The direction of [`LANGUAGE`]'s script, as `dir` beside each `lang`.
pub const DIRECTION: &str = "ltr";

/// What the renderer needs besides the issue.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub newsletter: &'a Newsletter,
    pub templates: &'a Templates,
    /// The daemon's public base URL (ends with `/`).
    pub public_url: &'a Url,
    /// Where "View in browser" points instead of the archive: a test copy's signed preview,
    /// since an issue not sent yet has no page in the archive.
    pub web_version: Option<&'a Url>,
}

impl Context<'_> {
    /// The web version's URL, linked as "View in browser": the archive page, or
    /// [`Context::web_version`] when set.
    pub fn archive_url(&self, issue: &Issue) -> Url {
        match self.web_version {
            Some(url) => url.clone(),
            None => self
                .public_url
                .join(&format!("archive/{}", issue.id))
                .expect("public_url is a base URL"),
        }
    }
}
