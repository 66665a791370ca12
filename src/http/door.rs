//! The door of the HTTP side: who may come in, how many at once, and for how long.
//!
//! - **A deadline for the whole request.** A request, header and body, must arrive within
//!   `[server] request_timeout`, counted from when its connection began waiting for it (the
//!   connection's accept, or the end of the previous answer on a keep-alive connection). The
//!   header also has `[server] header_timeout` (hyper's own timer); the body is read through
//!   [`Deadline`], which fails once the deadline passes: the client gets `408` and the
//!   connection is closed, whatever the handler was doing with the body.
//! - **A cap per client.** A client may hold at most `[server] connections_per_client`
//!   connections ([`Clients`]), so one address can never take all of the server's
//!   `MAX_CONNECTIONS`. A direct client is counted by its TCP peer when the connection is
//!   accepted, and one over its cap is answered `429` and closed at once, without taking a slot.
//!   A trusted proxy (`[server] trusted_proxies`) is not counted: all its connections come from
//!   one address. Its clients, named by [`client_ip`] (the one function that reads
//!   `X-Forwarded-For`, also used by the sign-up and sign-in limits), are counted per request
//!   instead, once the header is read, and a forwarded client over its cap gets `429` at once,
//!   its body unread. IPv6 clients are counted by their /64, which one host usually owns whole.
//! - **Wrong bearer tokens throttled** ([`Bearers`]): after [`FREE_FAILURES`] wrong tokens in a
//!   minute, a client is answered `429` with `Retry-After` until its minute ends, without its
//!   token being compared, and the log gets one line for its first failure and then one summary
//!   line a minute while failures go on, instead of one line per try.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::{Instant, Sleep};

/// Wrong bearer tokens a client may send in a minute before it is throttled.
pub const FREE_FAILURES: u32 = 5;

/// The window of the bearer throttle and of its log lines.
const MINUTE: Duration = Duration::from_secs(60);

// One client can hold at most half the connections (`[server] connections_per_client` is
// checked against this bound when the config is read).
/// The most HTTP connections served at once. Further clients wait, unaccepted, in the listen
/// backlog: slow clients cannot use up the process's file descriptors (512 leaves room under
/// the common limit of 1024 for the ledger, SMTP and feeds) or its memory. One client holds at
/// most `[server] connections_per_client` of them (at most half): connections over that cap
/// are accepted and closed at once, so they never wait for, or take, a slot.
pub const MAX_CONNECTIONS: usize = 512;

const _: () = assert!(2 * crate::config::MAX_CONNECTIONS_PER_CLIENT <= MAX_CONNECTIONS);

/// The door's settings, from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub per_client: usize,
    pub trusted_proxies: Vec<IpAddr>,
}

impl Limits {
    pub fn of(server: &crate::config::Server) -> Limits {
        Limits {
            header_timeout: server.header_timeout,
            request_timeout: server.request_timeout,
            per_client: server.connections_per_client,
            trusted_proxies: server.trusted_proxies.clone(),
        }
    }

    fn is_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.contains(&peer)
    }
}

/// The client's IP: the connection's peer, or, when the peer is one of `trusted_proxies`, the
/// last address its `X-Forwarded-For` names (the one the proxy itself added).
pub fn client_ip(
    trusted_proxies: &[IpAddr],
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .next_back();
    Some(forwarded.unwrap_or(peer))
}

/// What a client is counted by: its IPv4 address (also when it comes mapped into IPv6), or the
/// /64 of its IPv6 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let net = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(net))
        }
        v4 => v4,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while counting leaves the counts usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many connections (or, behind a proxy, requests) each client holds now.
#[derive(Debug, Clone, Default)]
pub struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One of a client's places, given back when dropped.
#[derive(Debug)]
pub struct Seat {
    clients: Clients,
    key: IpAddr,
}

impl Clients {
    /// A place for `ip`'s client, if it holds fewer than `cap`.
    pub fn take(&self, ip: IpAddr, cap: usize) -> Option<Seat> {
        let key = client_key(ip);
        let mut held = lock(&self.0);
        let n = held.entry(key).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Seat {
            clients: self.clone(),
            key,
        })
    }

    /// How many places `ip`'s client holds.
    pub fn held(&self, ip: IpAddr) -> usize {
        lock(&self.0).get(&client_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut held = lock(&self.clients.0);
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The answer to a client over its cap: written (if the socket takes it at once) before the
/// connection is closed, or returned for a forwarded client's request.
const TOO_MANY: &str = "too many connections from your address: try again when one of them ends";

/// Turns away a connection over its client's cap: a short 429, if the socket takes it at once
/// (a refused client never holds the server), then the close.
pub fn refuse(stream: tokio::net::TcpStream) {
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 1\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{TOO_MANY}\n",
        TOO_MANY.len() + 1
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// One accepted connection, as the requests on it see it.
pub struct Conn {
    peer: SocketAddr,
    limits: Arc<Limits>,
    clients: Clients,
    /// When the connection began waiting for its current request: the accept, then the end of
    /// each answer ([`Finished`]).
    waiting_since: Arc<Mutex<Instant>>,
}

impl Conn {
    pub fn new(peer: SocketAddr, limits: Arc<Limits>, clients: Clients) -> Conn {
        Conn {
            peer,
            limits,
            clients,
            waiting_since: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Answers one request with `router`, within the door's limits.
    pub async fn answer(&self, router: Router, req: Request<Incoming>) -> Response<Finished> {
        let deadline = *lock(&self.waiting_since) + self.limits.request_timeout;
        // A direct client's connection holds its seat; a proxy's client holds one per request.
        let _seat = if self.limits.is_proxy(self.peer.ip()) {
            let client = client_ip(&self.limits.trusted_proxies, Some(self.peer), req.headers())
                .unwrap_or(self.peer.ip());
            match self.clients.take(client, self.limits.per_client) {
                Some(seat) => Some(seat),
                None => {
                    tracing::debug!(client = %client, "request refused: the client's connection cap is reached");
                    let res = (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "1")],
                        format!("{TOO_MANY}\n"),
                    );
                    return self.finished(res.into_response());
                }
            }
        } else {
            None
        };
        let late = Arc::new(AtomicBool::new(false));
        let (mut parts, body) = req.into_parts();
        // Handlers that need the client's address (the limits) read it from here.
        parts.extensions.insert(ConnectInfo(self.peer));
        let body = Body::new(Deadline {
            inner: body,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            late: late.clone(),
        });
        let res = tower::ServiceExt::oneshot(router, Request::from_parts(parts, body))
            .await
            .unwrap_or_else(|never| match never {});
        if late.load(Ordering::Relaxed) {
            tracing::debug!(peer = %self.peer, "request refused: its body did not arrive within request_timeout");
            let mut res = (
                StatusCode::REQUEST_TIMEOUT,
                "the request did not arrive in time\n",
            )
                .into_response();
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return self.finished(res);
        }
        self.finished(res)
    }

    fn finished(&self, res: Response) -> Response<Finished> {
        res.map(|inner| Finished {
            inner,
            waiting_since: self.waiting_since.clone(),
        })
    }
}

/// A request body that fails once the request's deadline has passed.
pub struct Deadline<B> {
    inner: B,
    timer: Pin<Box<Sleep>>,
    /// Set when the deadline failed the body, so that the answer is a 408 whatever the handler
    /// made of the error.
    late: Arc<AtomicBool>,
}

/// The error of a body that did not arrive in time.
#[derive(Debug)]
pub struct TooSlow;

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within `[server] request_timeout`")
    }
}

impl std::error::Error for TooSlow {}

impl<B> HttpBody for Deadline<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        // What has arrived is taken even past the deadline; waiting for more is not.
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            this.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(TooSlow.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that notes, when hyper is done with it, that the connection now waits for
/// its next request.
pub struct Finished {
    inner: Body,
    waiting_since: Arc<Mutex<Instant>>,
}

impl HttpBody for Finished {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        *lock(&self.waiting_since) = Instant::now();
    }
}

/// Wrong bearer tokens per client (in memory: a restart forgets them).
#[derive(Debug, Clone, Default)]
pub struct Bearers(Arc<Mutex<HashMap<IpAddr, Tries>>>);

#[derive(Debug)]
struct Tries {
    /// When the client's current minute began.
    since: Instant,
    /// Wrong tokens in the current minute.
    failed: u32,
    /// Requests since the last log line: wrong tokens, and requests refused unread while
    /// throttled.
    unlogged: u32,
}

/// Why [`Bearers::check`] turned a request away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No token, or a wrong one: 401.
    Wrong,
    /// Too many wrong tokens from this client lately: 429, for this long.
    Throttled(Duration),
}

impl Bearers {
    /// Checks a request's `Authorization: Bearer` against `expected` for `what` (the endpoint,
    /// for the log), unless its client (`client`, as [`client_ip`] names it) is throttled, in
    /// which case the token is not compared at all.
    pub fn check(
        &self,
        client: IpAddr,
        headers: &HeaderMap,
        expected: &str,
        what: &str,
    ) -> Result<(), Refused> {
        let key = client_key(client);
        let now = Instant::now();
        let mut all = lock(&self.0);
        if let Some(t) = all.get_mut(&key).filter(|t| t.failed >= FREE_FAILURES) {
            t.unlogged += 1;
            let left = (t.since + MINUTE).saturating_duration_since(now);
            return Err(Refused::Throttled(left.max(Duration::from_secs(1))));
        }
        if bearer_matches(headers, expected) {
            return Ok(());
        }
        match all.get_mut(&key) {
            Some(t) => {
                t.failed += 1;
                t.unlogged += 1;
            }
            None => {
                all.insert(
                    key,
                    Tries {
                        since: now,
                        failed: 1,
                        unlogged: 0,
                    },
                );
                drop(all);
                tracing::warn!(client = %key, "{what} refused: missing or wrong bearer token (from {key}; further failures from it are summed up once a minute)");
                tokio::spawn(self.clone().summaries(key));
            }
        }
        Err(Refused::Wrong)
    }

    /// Every minute from a client's first failure: one line with its failures in that minute,
    /// and a new minute for the throttle; ends after a minute without failures.
    async fn summaries(self, key: IpAddr) {
        loop {
            tokio::time::sleep(MINUTE).await;
            let unlogged = {
                let mut all = lock(&self.0);
                let Some(t) = all.get_mut(&key) else { return };
                if t.unlogged == 0 {
                    all.remove(&key);
                    return;
                }
                let n = t.unlogged;
                *t = Tries {
                    since: Instant::now(),
                    failed: 0,
                    unlogged: 0,
                };
                n
            };
            tracing::warn!(client = %key, failures = unlogged, "{unlogged} failed bearer token(s) from {key} in the last minute (after {FREE_FAILURES} in a minute, a client is answered 429 until its minute ends)");
        }
    }
}

impl Refused {
    /// The answer: 401 with `WWW-Authenticate: Bearer realm="REALM"`, or 429 with
    /// `Retry-After`.
    pub fn response(self, realm: &'static str) -> Response {
        match self {
            Refused::Wrong => {
                let mut res = super::error::json_error(
                    StatusCode::UNAUTHORIZED,
                    "a valid bearer token is required",
                );
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_str(&format!("Bearer realm=\"{realm}\""))
                        .expect("a static realm"),
                );
                res
            }
            Refused::Throttled(left) => {
                let secs = left.as_secs_f64().ceil() as u64;
                let mut res = super::error::json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "too many wrong bearer tokens from your address: try again in {secs} s"
                    ),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                res
            }
        }
    }
}

/// The address a request without a known peer is counted under (in-process callers).
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Whether `Authorization: Bearer T` carries the expected token. Both sides are hashed first,
/// so the constant-time comparison runs over equal lengths and leaks not even the length.
pub(super) fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
    else {
        return false;
    };
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[tokio::test(start_paused = true)]
    async fn a_client_is_throttled_after_a_few_wrong_tokens_for_the_rest_of_its_minute() {
        let b = Bearers::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(
                b.check(A, &bearer("wrong"), "right", "t"),
                Err(Refused::Wrong)
            );
        }
        // Throttled: even the right token is not compared.
        assert!(matches!(
            b.check(A, &bearer("right"), "right", "t"),
            Err(Refused::Throttled(d)) if d <= MINUTE && d >= Duration::from_secs(59)
        ));
        // Another client is not.
        assert_eq!(b.check(B, &bearer("right"), "right", "t"), Ok(()));
        tokio::time::sleep(MINUTE + Duration::from_secs(1)).await;
        assert_eq!(b.check(A, &bearer("right"), "right", "t"), Ok(()));
        // A quiet minute forgets the client.
        tokio::time::sleep(2 * MINUTE).await;
        assert!(lock(&b.0).is_empty());
    }

    #[test]
    fn clients_are_counted_by_ipv4_address_and_ipv6_64() {
        let c = Clients::default();
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = c.take(v6("2001:db8::1"), 2).unwrap();
        let _b = c.take(v6("2001:db8::ffff:2"), 2).unwrap();
        assert!(c.take(v6("2001:db8::3"), 2).is_none(), "the same /64");
        assert!(c.take(v6("2001:db8:0:1::3"), 2).is_some(), "another /64");
        let _m = c.take(v6("::ffff:192.0.2.1"), 1).unwrap();
        assert!(c.take(A, 1).is_none(), "a mapped IPv4 is that IPv4");
        drop(a);
        assert_eq!(c.held(v6("2001:db8::9")), 1);
    }
}
