//! The delivery state machine ([`classify`]) and the circuit breaker that watches its outcomes for
//! a streak of one failure across distinct readers ([`Breaker`]).

use std::collections::HashSet;
use std::fmt;

use crate::address::AddressKey;
use crate::config::Ambiguous;
use crate::ledger::{Attempt, Due, State};
use crate::transport::{Reply, SendFailure, Stage};

use super::settings::Settings;

/// What makes two failures "the same" for the circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub stage: Stage,
    /// The reply code; none when the connection was lost or timed out.
    pub code: Option<u16>,
    /// The enhanced status code (RFC 3463), e.g. `(4, 3, 0)`.
    pub status: Option<(u16, u16, u16)>,
}

impl Signature {
    /// The signature of a failure the breaker watches; none for a 5.1.x rejection of the
    /// recipient ("no such user"), which is about one reader by nature: a list with many dead
    /// addresses in a row must not stop a run.
    pub fn of(failure: &SendFailure) -> Option<Signature> {
        if failure.suppresses_address() {
            return None;
        }
        Some(Signature {
            stage: failure.stage(),
            code: failure.code(),
            status: failure.status(),
        })
    }
}

impl fmt::Display for Signature {
    /// "`451 4.3.0` at DATA", "`554` at the final dot", "no reply at DATA".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.status) {
            (Some(code), Some((c, s, d))) => write!(f, "`{code} {c}.{s}.{d}` at {}", self.stage),
            (Some(code), None) => write!(f, "`{code}` at {}", self.stage),
            (None, _) => write!(f, "no reply at {}", self.stage),
        }
    }
}

/// The circuit breaker's verdict: the same failure for `readers` distinct readers in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trip {
    pub signature: Signature,
    pub readers: usize,
    /// The last failure of the streak, as the server said it (it names the server).
    pub last: String,
}

impl fmt::Display for Trip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.signature.code.is_some() {
            "answered"
        } else {
            "failed"
        };
        write!(
            f,
            "the relay {verb} {} readers in a row with {}: {}",
            self.readers, self.signature, self.last
        )
    }
}

/// The circuit breaker: watches the outcome of every attempt, in the order they are made, for
/// a streak of one failure across distinct readers.
///
/// Why distinct readers: one reader retried is not evidence about the relay. Why a streak and not
/// a rate: any reader the relay takes proves it can deliver, so one success ends the streak.
/// Failures the breaker does not watch (a 5.1.x rejection of a recipient) neither count nor end
/// it, and neither do deliveries put back untouched (they were never attempted).
#[derive(Debug, Default)]
pub struct Breaker {
    /// Distinct readers that trip it; 0: off.
    limit: usize,
    streak: Option<Streak>,
    tripped: Option<Trip>,
}

#[derive(Debug)]
struct Streak {
    signature: Signature,
    readers: HashSet<AddressKey>,
    /// The deliveries to put back if it trips, with their attempts before the streak; not those
    /// counted as sent (a lost reply under `ambiguous = "skip"`), which stay sent.
    touched: Vec<(AddressKey, u32)>,
    last: String,
}

impl Breaker {
    /// A breaker that trips at `limit` distinct readers (never for 0).
    pub fn new(limit: u32) -> Breaker {
        Breaker {
            limit: limit as usize,
            ..Breaker::default()
        }
    }

    /// Notes one attempt: `attempt` as classified from `result`, `before` the attempts made
    /// before it. Returns the trip the moment the streak reaches the limit, once. After that,
    /// further failures of the same signature (messages that were in flight) join the streak, so
    /// they are put back too.
    pub fn observe(
        &mut self,
        before: u32,
        attempt: &Attempt,
        result: &Result<Reply, SendFailure>,
    ) -> Option<Trip> {
        if self.limit == 0 {
            return None;
        }
        let signature = match result {
            Ok(_) => None,
            Err(failure) => match Signature::of(failure) {
                Some(s) => Some((s, failure)),
                None => return None,
            },
        };
        if let Some(trip) = &self.tripped {
            if let (Some((s, _)), Some(streak)) = (signature, &mut self.streak) {
                if s == trip.signature {
                    streak.add(before, attempt);
                }
            }
            return None;
        }
        let Some((signature, failure)) = signature else {
            self.streak = None;
            return None;
        };
        let streak = match &mut self.streak {
            Some(streak) if streak.signature == signature => streak,
            other => other.insert(Streak {
                signature,
                readers: HashSet::new(),
                touched: Vec::new(),
                last: String::new(),
            }),
        };
        streak.add(before, attempt);
        streak.last = failure.to_string();
        if streak.readers.len() < self.limit {
            return None;
        }
        let trip = Trip {
            signature,
            readers: streak.readers.len(),
            last: streak.last.clone(),
        };
        self.tripped = Some(trip.clone());
        Some(trip)
    }

    /// The trip, once the breaker has opened.
    pub fn tripped(&self) -> Option<&Trip> {
        self.tripped.as_ref()
    }

    /// Once it has tripped: the deliveries of the streak to put back, each with its attempts
    /// before the streak. Empty before.
    pub fn touched(&self) -> Vec<(AddressKey, u32)> {
        match (&self.tripped, &self.streak) {
            (Some(_), Some(streak)) => streak.touched.clone(),
            _ => Vec::new(),
        }
    }
}

impl Streak {
    fn add(&mut self, before: u32, attempt: &Attempt) {
        if self.readers.insert(attempt.key.clone()) && attempt.state != State::Sent {
            self.touched.push((attempt.key.clone(), before));
        }
    }
}

/// Decides the state of a delivery from one attempt's result (the delivery state machine the
/// "Delivery" section of docs/sending.md describes); `due.attempts` counts earlier attempts.
///
/// - 2xx: sent.
/// - [`SendFailure::Temporary`] (4xx, or the connection lost or timed out before the end of
///   DATA): deferred until `now + backoff`, or failed once this was attempt `max_attempts`.
/// - [`SendFailure::Permanent`] (5xx): failed, never retried; a 5.1.x reply also suppresses the
///   address for later campaigns.
/// - [`SendFailure::Ambiguous`] (the reply after the final dot was lost): flagged as a possible
///   duplicate; `retry` treats it like a temporary failure, `skip` counts it as sent.
pub fn classify(
    due: &Due,
    result: &Result<Reply, SendFailure>,
    settings: &Settings,
    now_ms: i64,
) -> Attempt {
    let mut a = Attempt {
        address: due.address.clone(),
        key: due.key.clone(),
        state: State::Sent,
        code: None,
        text: String::new(),
        next_at: None,
        possible_duplicate: false,
        suppress: false,
        at: now_ms,
    };
    let made = due.attempts + 1;
    let retry = |a: &mut Attempt| {
        if made >= settings.max_attempts {
            a.state = State::Failed;
            a.text = format!("gave up after {made} attempts: {}", a.text);
        } else {
            a.state = State::Deferred;
            a.next_at = Some(now_ms + settings.backoff(made).as_millis() as i64);
        }
    };
    match result {
        Ok(r) => {
            a.code = Some(r.code);
            a.text = r.text.clone();
        }
        Err(SendFailure::Temporary { code, text, .. }) => {
            a.code = *code;
            a.text = text.clone();
            retry(&mut a);
        }
        Err(f @ SendFailure::Permanent { code, text, .. }) => {
            a.code = Some(*code);
            a.text = text.clone();
            a.state = State::Failed;
            a.suppress = f.suppresses_address();
        }
        Err(SendFailure::Ambiguous { text }) => {
            a.possible_duplicate = true;
            match settings.ambiguous {
                Ambiguous::Retry => {
                    a.text = format!("reply lost after the final dot, sending again: {text}");
                    retry(&mut a);
                }
                Ambiguous::Skip => {
                    a.text = format!("reply lost after the final dot, counted as sent: {text}");
                }
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::settings::tests::settings;
    use super::*;
    use crate::ledger::DeliveryId;

    #[test]
    fn replies_map_to_states() {
        let s = settings();
        let due = |attempts| Due {
            id: DeliveryId::from_tag(1),
            address: "A@x.org".into(),
            key: AddressKey::from_text("A@x.org"),
            name: None,
            attempts,
            lang: None,
        };
        let t = |r| classify(&due(0), &r, &s, 1000);
        assert_eq!(
            t(Ok(Reply {
                code: 250,
                text: "ok".into()
            }))
            .key
            .as_str(),
            "a@x.org"
        );
        assert_eq!(
            t(Ok(Reply {
                code: 250,
                text: "ok".into()
            }))
            .state,
            State::Sent
        );
        let d = t(Err(SendFailure::Temporary {
            code: Some(451),
            text: "4.7.1 greylisted".into(),
            stage: Stage::Rcpt,
        }));
        assert_eq!((d.state, d.next_at), (State::Deferred, Some(61_000)));
        let f = t(Err(SendFailure::Permanent {
            code: 550,
            text: "5.1.1 no such user".into(),
            stage: Stage::Rcpt,
        }));
        assert_eq!((f.state, f.suppress), (State::Failed, true));
        let f = t(Err(SendFailure::Permanent {
            code: 550,
            text: "5.7.1 policy".into(),
            stage: Stage::Rcpt,
        }));
        assert_eq!((f.state, f.suppress), (State::Failed, false));
        let a = t(Err(SendFailure::Ambiguous { text: "eof".into() }));
        assert_eq!((a.state, a.possible_duplicate), (State::Deferred, true));
        let last = classify(
            &due(2),
            &Err(SendFailure::Temporary {
                code: Some(451),
                text: "busy".into(),
                stage: Stage::Rcpt,
            }),
            &s,
            0,
        );
        assert_eq!(last.state, State::Failed);
        assert!(last.text.starts_with("gave up after 3 attempts"));
        let skip = Settings {
            ambiguous: Ambiguous::Skip,
            ..s
        };
        let a = classify(
            &due(0),
            &Err(SendFailure::Ambiguous { text: "eof".into() }),
            &skip,
            0,
        );
        assert_eq!((a.state, a.possible_duplicate), (State::Sent, true));
    }

    /// One attempt of reader `n`, with `before` attempts made earlier, as the worker would
    /// classify it; for the breaker.
    fn seen(
        b: &mut Breaker,
        n: usize,
        before: u32,
        result: Result<Reply, SendFailure>,
    ) -> Option<Trip> {
        let s = Settings {
            max_attempts: 2,
            ..settings()
        };
        let address = format!("r{n}@x.org");
        let due = Due {
            id: DeliveryId::from_tag(n as u64),
            key: AddressKey::from_text(&address),
            address,
            name: None,
            attempts: before,
            lang: None,
        };
        let attempt = classify(&due, &result, &s, 0);
        b.observe(before, &attempt, &result)
    }

    fn ok() -> Result<Reply, SendFailure> {
        Ok(Reply {
            code: 250,
            text: "2.0.0 ok".into(),
        })
    }

    fn reply(code: u16, text: &str, stage: Stage) -> Result<Reply, SendFailure> {
        let text = format!("mx:25 answered {stage} with {code} {text}");
        Err(if code >= 500 {
            SendFailure::Permanent { code, text, stage }
        } else {
            SendFailure::Temporary {
                code: Some(code),
                text,
                stage,
            }
        })
    }

    fn keys(touched: &[(AddressKey, u32)]) -> Vec<(&str, u32)> {
        touched.iter().map(|(k, a)| (k.as_str(), *a)).collect()
    }

    #[test]
    fn the_breaker_trips_at_n_distinct_readers_with_the_same_failure() {
        let mut b = Breaker::new(3);
        let busy = || reply(451, "4.3.0 try later", Stage::Data);
        assert_eq!(seen(&mut b, 0, 0, busy()), None);
        assert_eq!(seen(&mut b, 1, 1, busy()), None);
        assert!(b.touched().is_empty(), "nothing to put back before a trip");
        let trip = seen(&mut b, 2, 0, busy()).expect("the third reader trips it");
        assert_eq!(trip.readers, 3);
        assert_eq!(
            trip.signature,
            Signature {
                stage: Stage::Data,
                code: Some(451),
                status: Some((4, 3, 0)),
            }
        );
        assert_eq!(
            trip.to_string(),
            "the relay answered 3 readers in a row with `451 4.3.0` at DATA: mx:25 answered \
             DATA with 451 4.3.0 try later"
        );
        // Messages in flight when it tripped join the streak; it trips only once.
        assert_eq!(seen(&mut b, 3, 4, busy()), None);
        assert_eq!(seen(&mut b, 4, 0, ok()), None);
        assert_eq!(
            seen(&mut b, 5, 0, reply(451, "4.7.1 grey", Stage::Rcpt)),
            None
        );
        assert_eq!(
            keys(&b.touched()),
            [
                ("r0@x.org", 0),
                ("r1@x.org", 1),
                ("r2@x.org", 0),
                ("r3@x.org", 4)
            ],
            "each with its attempts before the streak"
        );
        assert_eq!(b.tripped(), Some(&trip));
    }

    #[test]
    fn a_success_or_another_failure_ends_the_streak() {
        let mut b = Breaker::new(3);
        let busy = || reply(451, "4.3.0 try later", Stage::Data);
        seen(&mut b, 0, 0, busy());
        seen(&mut b, 1, 0, busy());
        seen(&mut b, 2, 0, ok());
        seen(&mut b, 3, 0, busy());
        seen(&mut b, 4, 0, busy());
        // Same code, another enhanced status; then same reply at another step; then no reply.
        seen(&mut b, 5, 0, reply(451, "4.3.2 shutting down", Stage::Data));
        seen(&mut b, 6, 0, reply(451, "4.3.2 shutting down", Stage::Rcpt));
        let lost = || {
            Err(SendFailure::Temporary {
                code: None,
                text: "connection lost at DATA".into(),
                stage: Stage::Data,
            })
        };
        seen(&mut b, 7, 0, lost());
        seen(&mut b, 8, 0, busy());
        assert_eq!(seen(&mut b, 9, 0, busy()), None);
        assert!(b.tripped().is_none());
        // A failure without a reply code has a signature too: the relay hanging up on everyone.
        let mut b = Breaker::new(2);
        seen(&mut b, 0, 0, lost());
        let trip = seen(&mut b, 1, 0, lost()).expect("tripped");
        assert!(
            trip.to_string()
                .starts_with("the relay failed 2 readers in a row with no reply at DATA: "),
            "{trip}"
        );
    }

    #[test]
    fn one_reader_failing_again_is_not_a_second_reader() {
        let mut b = Breaker::new(3);
        let busy = || reply(451, "4.3.0 try later", Stage::Rcpt);
        for attempts in 0..5 {
            assert_eq!(seen(&mut b, 0, attempts, busy()), None);
            assert_eq!(seen(&mut b, 1, attempts, busy()), None);
        }
        assert!(b.tripped().is_none());
        assert!(seen(&mut b, 2, 0, busy()).is_some());
        assert_eq!(
            keys(&b.touched()),
            [("r0@x.org", 0), ("r1@x.org", 0), ("r2@x.org", 0)]
        );
    }

    #[test]
    fn dead_addresses_never_count_nor_end_a_streak() {
        let mut b = Breaker::new(3);
        let unknown = || reply(550, "5.1.1 no such user", Stage::Rcpt);
        for n in 0..50 {
            assert_eq!(seen(&mut b, n, 0, unknown()), None);
        }
        let policy = || reply(550, "5.7.1 relaying denied", Stage::Rcpt);
        seen(&mut b, 50, 0, policy());
        seen(&mut b, 51, 0, unknown());
        seen(&mut b, 52, 0, policy());
        assert!(
            seen(&mut b, 53, 0, policy()).is_some(),
            "5.7.1 is not 5.1.x"
        );
        assert_eq!(
            keys(&b.touched()),
            [("r50@x.org", 0), ("r52@x.org", 0), ("r53@x.org", 0)],
            "the dead address stays failed"
        );
    }

    #[test]
    fn a_lost_reply_counted_as_sent_counts_but_stays_sent() {
        let mut b = Breaker::new(2);
        let lost = || Err(SendFailure::Ambiguous { text: "eof".into() });
        // `seen` classifies with `retry`; a skip-policy attempt is sent.
        let attempt = |n: usize, state| Attempt {
            address: format!("r{n}@x.org"),
            key: AddressKey::from_text(&format!("r{n}@x.org")),
            state,
            code: None,
            text: "eof".into(),
            next_at: None,
            possible_duplicate: true,
            suppress: false,
            at: 0,
        };
        assert_eq!(b.observe(0, &attempt(0, State::Sent), &lost()), None);
        let trip = b.observe(0, &attempt(1, State::Deferred), &lost());
        assert_eq!(trip.map(|t| t.signature.stage), Some(Stage::Message));
        assert_eq!(keys(&b.touched()), [("r1@x.org", 0)]);
    }

    #[test]
    fn a_breaker_of_0_never_trips() {
        let mut b = Breaker::new(0);
        for n in 0..100 {
            assert_eq!(seen(&mut b, n, 0, reply(451, "4.3.0 x", Stage::Data)), None);
        }
        assert!(b.tripped().is_none() && b.touched().is_empty());
    }
}
