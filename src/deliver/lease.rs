//! A campaign's lease in the ledger: who is running it, renewed every [`LEASE_HEARTBEAT`], so
//! another daemon takes the campaign over only once it is stale ([`LEASE_STALE`]).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::ledger::{CampaignId, SharedLedger};

/// How often a process running a campaign renews its lease in the ledger.
pub const LEASE_HEARTBEAT: Duration = Duration::from_secs(3);

/// A lease not renewed for this long (over three heartbeats) is stale: its process is taken
/// for dead, and a live daemon on the same ledger takes the campaign over.
pub const LEASE_STALE: Duration = Duration::from_secs(10);

/// This process's name in the ledger's leases: its pid and a random number, since pids are
/// reused.
pub fn lease_owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(|| {
        let nonce: u32 = rand::random();
        format!("pid {} ({nonce:08x})", std::process::id())
    })
}

/// A campaign's lease, renewed every [`LEASE_HEARTBEAT`] by a task of its own until dropped:
/// while it is fresh, other daemons leave the campaign alone. It only says who is alive; the
/// send lock (`Ledger::lock_campaign`) is still what keeps two processes from sending.
pub struct Lease {
    stop: CancellationToken,
}

impl Lease {
    /// Starts renewing the lease of `campaign` for this process (needs a tokio runtime).
    pub fn hold(ledger: &SharedLedger, campaign: CampaignId, clock: Arc<dyn Clock>) -> Lease {
        let stop = CancellationToken::new();
        let (ledger, done) = (ledger.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let now = clock.now_ms();
                let renewed = ledger
                    .with(move |l| l.renew_lease(campaign, lease_owner(), now))
                    .await;
                if let Err(e) = renewed {
                    // Only a takeover's timing depends on it: the run goes on.
                    tracing::warn!(error.message = %e, "cannot renew the campaign's lease: {e:#}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(LEASE_HEARTBEAT) => {}
                    _ = done.cancelled() => return,
                }
            }
        });
        Lease { stop }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
