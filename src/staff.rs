//! Staff sign-in: emailed one-time links and sessions, for the staff pages under `/admin/`.
//!
//! Staff are the addresses of `[server] staff`; there are no passwords. A staff member asks for
//! a link; the message (in the newsletter's look, through the notice queue, the same transport
//! and DKIM signer as every message, outbox sub-folder `staff`) carries `public_url/admin/login/TOKEN`, a token
//! ([`Purpose::StaffLogin`]) holding the address and a random link id, valid for [`LINK_TTL`].
//! Using it records the link id in the ledger (so it works once) and opens a session of
//! [`SESSION_TTL`]: a random id the cookie holds, of which the ledger keeps only the hash
//! ([`session_hash`]). The HTTP side (`http::admin`) does the pages, the cookie and the checks.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lettre::Address;
use sha2::{Digest, Sha256};

use crate::address::AddressKey;
use crate::app::App;
use crate::ledger::{CampaignId, NoticeKind, SharedLedger};
use crate::notices;
use crate::token::{hex, Purpose, TokenError, TokenKey};

/// How long an emailed sign-in link works (once).
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// How long a session lasts from sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The outbox sub-folder (and the transport's name) of sign-in messages.
pub const OUTBOX: &str = "staff";

/// The staff address of `[server] staff` that `address` names (in any casing), if any.
pub fn staff_address(app: &App, address: &Address) -> Option<Address> {
    let key = AddressKey::of(address);
    app.config
        .server
        .staff
        .iter()
        .find(|m| AddressKey::of(&m.email) == key)
        .map(|m| m.email.clone())
}

/// A sign-in link's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub address: Address,
    /// The link's random id: recorded in the ledger when the link is used.
    pub id: String,
    /// When the link expires (Unix milliseconds).
    pub expires_at: i64,
}

/// A fresh random id (256 bits, base64url): a link's id or a session's.
pub fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the ledger keeps of a session id: its SHA-256, in hex. The id is random and long, so
/// no key is needed; a copy of the database opens no session.
pub fn session_hash(session_id: &str) -> String {
    hex(&Sha256::digest(session_id.as_bytes()))
}

/// A sign-in link for `address`, valid for [`LINK_TTL`] from `now_ms`.
pub fn login_link(
    key: &TokenKey,
    public_url: &url::Url,
    address: &Address,
    now_ms: i64,
) -> url::Url {
    let expires = now_ms / 1000 + LINK_TTL.as_secs() as i64;
    let token = key.sign(
        Purpose::StaffLogin,
        &[address.as_ref(), &random_id()],
        expires,
    );
    public_url
        .join(&format!("admin/login/{token}"))
        .expect("public_url is a base URL")
}

/// Reads a sign-in token: `Err` when it is forged, altered or expired at `now_ms`. (Whether it
/// was used already is the ledger's to say.)
pub fn open_login(key: &TokenKey, token: &str, now_ms: i64) -> Result<Login, TokenError> {
    let (payload, _) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let fields = key.open(Purpose::StaffLogin, token, now_ms / 1000)?;
    let [address, id] = fields.as_slice() else {
        return Err(TokenError::Invalid);
    };
    // The expiry is the payload's first line; `open` has checked it is a number.
    let expires = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
        .and_then(|p| p.split('\n').next()?.parse::<i64>().ok())
        .ok_or(TokenError::Invalid)?;
    Ok(Login {
        address: address.parse().map_err(|_| TokenError::Invalid)?,
        id: id.clone(),
        expires_at: expires * 1000,
    })
}

/// Renders the sign-in message for `address` (a staff address) with a fresh link and queues
/// it: the daemon's notice worker mails it at once, and again within seconds if the relay
/// answers 4xx (see `notices`).
pub async fn queue_login(
    app: &App,
    ledger: &SharedLedger,
    key: &TokenKey,
    address: &Address,
) -> anyhow::Result<()> {
    let now = app.clock.now_ms();
    let link = login_link(key, &app.config.server.public_url, address, now);
    let subject = format!("Sign in to {}", app.config.newsletter.kicker);
    let valid_for = humantime::format_duration(LINK_TTL).to_string();
    let (html, text) =
        crate::render::staff_login(app.render_context(), &subject, &link, &valid_for);
    let template = notices::template(app, key, subject, html, text);
    let notice = notices::notice(NoticeKind::StaffLogin, &template, address, None);
    let sender = notices::Sender {
        app,
        ledger,
        key,
        dkim: None,
        metrics: None,
    };
    sender.queue(vec![notice]).await
}

/// The addresses of `[server] staff`, each once however it is spelled.
pub fn staff_addresses(app: &App) -> Vec<Address> {
    notices::staff_addresses(app)
}

/// Mails a report to every `[server] staff` address (a send's summary, the checks before a
/// fire) through the notice queue: tried at once, and again later if the relay did not take
/// it. Returns the tries, none without staff.
pub async fn mail_staff(
    sender: &notices::Sender<'_>,
    kind: NoticeKind,
    campaign: Option<CampaignId>,
    report: notices::Report<'_>,
) -> anyhow::Result<Vec<notices::Tried>> {
    let queued = notices::staff_report(sender.app, sender.key, kind, campaign, report);
    sender.send_now(queued).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn a_link_works_for_fifteen_minutes_and_carries_a_fresh_id() {
        let key = TokenKey::new(Secret::new("k".repeat(32)));
        let url = url::Url::parse("https://news.example.org/").unwrap();
        let address: Address = "editor@example.org".parse().unwrap();
        let now = 1_700_000_000_000;
        let link = login_link(&key, &url, &address, now);
        let token = link.path().strip_prefix("/admin/login/").unwrap();
        let login = open_login(&key, token, now + 14 * 60 * 1000).unwrap();
        assert_eq!(login.address, address);
        assert_eq!(login.expires_at, now + 15 * 60 * 1000);
        assert_eq!(
            open_login(&key, token, now + 15 * 60 * 1000),
            Err(TokenError::Expired)
        );
        let other = login_link(&key, &url, &address, now);
        let other = other.path().strip_prefix("/admin/login/").unwrap();
        assert_ne!(open_login(&key, other, now).unwrap().id, login.id);
        // A confirmation token is no sign-in token.
        let confirm = key.sign(
            Purpose::Confirm,
            &["editor@example.org", "x"],
            now / 1000 + 60,
        );
        assert_eq!(open_login(&key, &confirm, now), Err(TokenError::Invalid));
        assert_eq!(session_hash("a").len(), 64);
        assert_ne!(random_id(), random_id());
    }
}
