//! The progress bar of `brief send`, and the log writer that prints log lines above it.
//!
//! Logs and the bar share stderr. While a bar is shown, every log line is written with the bar
//! cleared first and drawn again after it ([`indicatif::ProgressBar::suspend`]), so a line never
//! lands in the middle of the bar and no remnant of the bar is left on the screen.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::config::LogFormat;
use crate::ledger::{CampaignId, Counts, Ledger};

/// The bar on the screen, if any.
static SHOWN: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

pub(super) fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("brief=info,warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogLine)
        // Colour codes only for a person at a terminal, never in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// stderr for one log event (the formatter writes each event whole, in one call).
struct LogLine;

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let shown = SHOWN.lock().unwrap_or_else(PoisonError::into_inner).clone();
        write_above(shown.as_ref(), buf, &mut std::io::stderr().lock())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Writes `text` to `out`, above `bar` when one is shown.
fn write_above(
    bar: Option<&indicatif::ProgressBar>,
    text: &[u8],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match bar {
        Some(bar) => bar.suspend(|| out.write_all(text).and_then(|_| out.flush())),
        None => out.write_all(text),
    }
}

/// The progress bar of `brief send` on a terminal: sent / deferred / failed, rate and ETA, read
/// from the ledger (a second, read-only use of the WAL database) a few times a second.
pub(super) struct ProgressBar {
    bar: indicatif::ProgressBar,
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl ProgressBar {
    pub(super) fn start(database: &Path, campaign: CampaignId) -> Option<ProgressBar> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let ledger = Ledger::open(database).ok()?;
        let counts = ledger.counts(campaign).ok()?;
        let done = |c: &Counts| c.sent + c.failed + c.suppressed;
        let first = done(&counts);
        let bar = indicatif::ProgressBar::new(counts.total()).with_position(first);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}  eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.reset_eta();
        // Updates are drawn at most every so often; a steady tick redraws the latest of both.
        bar.enable_steady_tick(Duration::from_millis(120));
        let (stop, stopped) = std::sync::mpsc::channel();
        let b = bar.clone();
        let thread = std::thread::spawn(move || {
            let began = std::time::Instant::now();
            loop {
                if let Ok(c) = ledger.counts(campaign) {
                    let rate = (done(&c) - first) as f64 / began.elapsed().as_secs_f64().max(0.001);
                    b.set_message(format!(
                        "sent {} · deferred {} · failed {}  {rate:.0}/s",
                        c.sent, c.deferred, c.failed
                    ));
                    b.set_position(done(&c));
                }
                match stopped.recv_timeout(Duration::from_millis(250)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        });
        *SHOWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        Some(ProgressBar { bar, stop, thread })
    }

    pub(super) fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        *SHOWN.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A terminal that records what is done to it, shared with the log "stderr".
    #[derive(Clone, Debug, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl Screen {
        fn push(&self, what: String) {
            self.0.lock().unwrap().push(what);
        }
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.push(format!("up {n}"));
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.push(format!("down {n}"));
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(format!("bar {s}"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(format!("bar {s}"));
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.push("clear".into());
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Write for Screen {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.push(format!("log {}", String::from_utf8_lossy(buf).trim_end()));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_clears_the_bar_and_the_bar_comes_back_below_it() {
        let screen = Screen::default();
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(10),
            indicatif::ProgressDrawTarget::term_like(Box::new(screen.clone())),
        );
        bar.set_style(indicatif::ProgressStyle::with_template("{pos}/{len} {msg}").unwrap());
        bar.set_message("sending");
        bar.set_position(3);
        bar.tick();
        let before = screen.0.lock().unwrap().len();
        assert!(before > 0, "the bar was drawn");

        write_above(Some(&bar), b"WARN deferred\n", &mut screen.clone()).unwrap();

        let ops = screen.0.lock().unwrap()[before..].to_vec();
        let log = ops
            .iter()
            .position(|o| o == "log WARN deferred")
            .expect("logged");
        assert!(
            ops[..log].iter().any(|o| o == "clear"),
            "the bar is cleared before the line: {ops:?}"
        );
        assert!(
            ops[log + 1..]
                .iter()
                .any(|o| o.starts_with("bar 3/10 sending")),
            "the bar is drawn again below the line: {ops:?}"
        );

        let plain = Screen::default();
        write_above(None, b"INFO no bar\n", &mut plain.clone()).unwrap();
        assert_eq!(*plain.0.lock().unwrap(), ["log INFO no bar"]);
    }
}
