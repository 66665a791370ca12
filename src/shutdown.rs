//! SIGTERM, SIGINT and SIGHUP, handled once for every command: the first stops gracefully, a
//! second quits.
//!
//! `brief send` and `brief run` both stop the same way. The first signal cancels one
//! [`CancellationToken`] that every long-running loop `select!`s on: no new message starts, and
//! those in flight finish and are recorded. A second signal is an operator who will not wait: the
//! process exits at once with 130, and what was in flight counts towards the crash bound, as
//! after `kill -9`. SIGHUP counts as a stop signal too: a dropped SSH session sends it to
//! `brief send`, and it must not end the run like a crash.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// The exit code after a second signal (128 + SIGINT, as shells report it).
pub const QUIT_AT_ONCE: i32 = 130;

/// The stop signals, registered before any work starts so that none is lost.
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers for SIGTERM, SIGINT and SIGHUP (Ctrl-C elsewhere). Needs a tokio runtime.
    pub fn new() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?,
                hup: signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }

    /// Watches in a task of its own: the first signal cancels `stop`, a second one exits the
    /// process at once with [`QUIT_AT_ONCE`].
    pub fn watch(mut self, stop: CancellationToken) {
        tokio::spawn(async move {
            self.next().await;
            tracing::warn!(
                "stopping: no new messages; those in flight finish and are recorded (signal \
                 again to quit at once)"
            );
            stop.cancel();
            self.next().await;
            tracing::warn!(
                "stopped at once: messages in flight may go out a second time when the campaign \
                 resumes"
            );
            std::process::exit(QUIT_AT_ONCE);
        });
    }
}
