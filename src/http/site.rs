//! What every handler shares: [`Site`] (the app, keys, the ledger connection, the sign-up and
//! staff state), the request body limit, and the client a request comes from.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::Extension;

use super::door;
use crate::app::App;
use crate::dkim::DkimSigner;
use crate::ledger::SharedLedger;
use crate::metrics::Metrics;
use crate::signup::{Mailer, Queue};
use crate::token::TokenKey;

/// The largest request body accepted: one-click bodies and test-send requests are tiny.
pub const BODY_LIMIT: usize = 4 * 1024;

/// The largest CSV file the console's import takes (about 50,000 readers).
pub const IMPORT_FILE_LIMIT: usize = 2 * 1024 * 1024;

/// The request body limit of the console's import routes alone: the upload (the file and a
/// few fields), and the confirmation, which re-posts the file as base64 (a third larger).
pub const IMPORT_BODY_LIMIT: usize = IMPORT_FILE_LIMIT / 3 * 4 + 64 * 1024;

/// What the handlers share: built by whoever serves the router (the daemon, a test).
pub struct Site {
    pub app: Arc<App>,
    pub key: TokenKey,
    pub dkim: Option<Arc<DkimSigner>>,
    /// The connection the handlers share (calls run off the async threads).
    pub ledger: SharedLedger,
    pub metrics: Arc<Metrics>,
    /// The sign-up pages' queue and limits; `None`: no sign-up pages (404).
    pub join: Option<Join>,
    /// The staff pages' rate limits.
    pub admin: Admin,
    /// Runs a campaign that the console's "Send now" created, in the background, the way the
    /// daemon runs the schedule's; `None`: "Send now" is unavailable (503).
    pub launch: Option<Launch>,
    /// Wrong bearer tokens per client (the admin test send and the bounce webhook).
    pub bearers: door::Bearers,
}

/// The seam through which the HTTP side hands a new campaign (with its frozen message and its
/// own ledger connection) to whoever runs campaigns: the daemon provides it, so `http` never
/// imports `daemon`.
pub type Launch = Arc<
    dyn Fn(crate::ledger::Campaign, crate::deliver::Editions, crate::ledger::Ledger) + Send + Sync,
>;

pub(super) type Shared = State<Arc<Site>>;

/// What the sign-up pages need: the queue, the mailer's keys, and the per-client limit.
pub struct Join {
    pub queue: Queue,
    pub mailer: Arc<Mailer>,
    /// The connection the per-client counts are kept on (the ledger's, so a restart does not
    /// reset them): the sign-up mailer's own, so a flood never holds the unsubscribe links'.
    pub(super) limits: SharedLedger,
    pub(super) per_hour: u32,
}

impl Join {
    /// Sign-up pages over `queue`, at most `per_hour` requests per client IP and hour, counted
    /// in the ledger through `limits`.
    pub fn new(queue: Queue, mailer: Arc<Mailer>, limits: SharedLedger, per_hour: u32) -> Join {
        Join {
            queue,
            mailer,
            limits,
            per_hour,
        }
    }
}

impl std::fmt::Debug for Join {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join").finish_non_exhaustive()
    }
}

/// The staff pages' own state. The sign-in limits are kept in the ledger (see
/// [`crate::ledger::Ledger::take_rate_limit`]), not here, so a restart does not reset them.
#[derive(Debug, Default)]
pub struct Admin {}

/// The client's IP: the connection's peer, or, when the peer is a proxy named in
/// `[server] trusted_proxies`, the last address its `X-Forwarded-For` names
/// ([`door::client_ip`], which the connection caps use too).
pub(super) fn client_ip(d: &Site, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    door::client_ip(&d.app.config.server.trusted_proxies, peer, headers)
}

/// The client of a request, for the limits: [`client_ip`] of its peer.
pub(super) fn client_of(
    d: &Site,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> std::net::IpAddr {
    let peer = peer.map(|Extension(ConnectInfo(p))| p);
    client_ip(d, peer, headers).unwrap_or(door::UNKNOWN_CLIENT)
}

impl Site {
    /// What sends and records the site's mail (test copies) over its ledger connection.
    pub(super) fn sender(&self) -> crate::notices::Sender<'_> {
        crate::notices::Sender {
            app: &self.app,
            ledger: &self.ledger,
            key: &self.key,
            dkim: self.dkim.as_deref(),
            metrics: Some(&self.metrics),
        }
    }
}
