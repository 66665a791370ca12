//! The run's one rate limit ([`Pacer`]), shared by every worker.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// The one rate limit of a run, shared by every worker: one message every
/// `1 / rate_per_second`, without bursts, so no second carries more than `rate_per_second + 1`.
///
/// It runs on tokio's clock, so tests can drive it with paused time.
pub struct Pacer {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>,
    clock: TokioClock,
}

/// governor's view of tokio's clock: the time since the pacer was made.
#[derive(Clone, Debug)]
struct TokioClock {
    start: Instant,
}

impl governor::clock::Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Pacer {
    /// A pacer for `rate_per_second` messages per second; none for 0 (no limit).
    pub fn new(rate_per_second: u32) -> Option<Pacer> {
        let rate = NonZeroU32::new(rate_per_second)?;
        let clock = TokioClock {
            start: Instant::now(),
        };
        let quota = Quota::per_second(rate).allow_burst(NonZeroU32::MIN);
        Some(Pacer {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
        })
    }

    /// Waits for the next free slot and takes it.
    pub async fn until_ready(&self) {
        loop {
            match self.limiter.check() {
                Ok(()) => return,
                Err(later) => {
                    let wait = later.wait_time_from(governor::clock::Clock::now(&self.clock));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Four workers share one pacer: 21 messages at 10 per second take 2 s of (paused, virtual)
    /// time in all, not a quarter of it as four separate limits would allow.
    #[tokio::test(start_paused = true)]
    async fn one_pace_for_all_workers() {
        let pacer = Arc::new(Pacer::new(10).expect("a limit"));
        let begin = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                let mut slots = Vec::new();
                for _ in 0..(if w == 0 { 6 } else { 5 }) {
                    pacer.until_ready().await;
                    slots.push(begin.elapsed());
                }
                slots
            }));
        }
        let mut slots = Vec::new();
        for t in tasks {
            slots.extend(t.await.unwrap());
        }
        slots.sort();
        assert_eq!(slots.len(), 21);
        assert_eq!(slots[0], Duration::ZERO);
        assert_eq!(*slots.last().unwrap(), Duration::from_secs(2));
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(99), "{slots:?}");
        }
        assert!(Pacer::new(0).is_none(), "0 means no limit");
    }
}
