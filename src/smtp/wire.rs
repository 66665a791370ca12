//! The bytes on the wire: the message body as DATA sends it (CRLF line ends, dot-stuffed, the
//! final dot), and [`Wire`], the byte stream under lettre, plain TCP or TLS over it.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The message as it goes on the wire: CRLF line ends only, and without the last line's CRLF,
/// which lettre's end-of-data marker (`\r\n.\r\n`) supplies; the server then stores exactly
/// the message we rendered.
pub(super) fn wire_body(raw: &[u8]) -> Cow<'_, [u8]> {
    let mut body: Cow<'_, [u8]> = if has_bare_line_end(raw) {
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                    out.extend_from_slice(b"\r\n");
                    i += 1;
                }
                b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
                b => out.push(b),
            }
            i += 1;
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw)
    };
    if body.ends_with(b"\r\n") {
        match &mut body {
            Cow::Borrowed(b) => *b = &b[..b.len() - 2],
            Cow::Owned(v) => v.truncate(v.len() - 2),
        }
    }
    body
}

/// Whether `raw` has a CR that no LF follows or an LF that no CR precedes.
fn has_bare_line_end(raw: &[u8]) -> bool {
    if raw.first() == Some(&b'\n') || raw.last() == Some(&b'\r') {
        return true;
    }
    // Every byte against the next, without branches, so the compiler vectorizes the loop (a
    // message is tens of kilobytes): in a CRLF pair both tests hold, elsewhere neither does.
    let Some(next) = raw.get(1..) else {
        return false;
    };
    let mut odd = false;
    for (a, b) in raw.iter().zip(next) {
        odd |= (*a == b'\r') != (*b == b'\n');
    }
    odd
}

/// The DATA section as lettre's `command` writes it: `wire_body`'s text with every line that
/// starts with a dot given one more (RFC 5321 4.5.2), then CRLF, the final dot and CRLF.
pub(super) struct DataLines<'a>(pub(super) &'a str);

impl fmt::Display for DataLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut from = 0;
        for i in memchr::memmem::find_iter(text.as_bytes(), b"\n.") {
            // `\n` is ASCII, so `i + 1` is a character boundary.
            f.write_str(&text[from..=i])?;
            f.write_str(".")?;
            from = i + 1;
        }
        f.write_str(&text[from..])?;
        f.write_str("\r\n.\r\n")
    }
}

/// What the socket under lettre carries: plain TCP, or TLS over it.
pub(super) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Between STARTTLS and the end of its handshake.
    Gone,
}

/// The connection's byte stream as lettre sees it (lettre takes its own stream types or an
/// `AsyncTokioStream`). brief keeps a handle on it for two things lettre does not do: keep the
/// bytes of the greeting and the first EHLO reply (lettre drops the PIPELINING keyword), and
/// put TLS under the session after STARTTLS, so that the one EHLO that follows is brief's and
/// its reply can be read. Only one task uses a connection at a time; the lock is never
/// contended.
#[derive(Clone)]
pub(super) struct Wire(Arc<std::sync::Mutex<WireState>>);

struct WireState {
    io: Io,
    /// What was read while recording (the greeting and the first EHLO reply).
    recorded: Option<Vec<u8>>,
}

impl Wire {
    pub(super) fn new(io: Io) -> Wire {
        Wire(Arc::new(std::sync::Mutex::new(WireState {
            io,
            recorded: Some(Vec::new()),
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WireState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What was read so far; nothing more is kept.
    pub(super) fn stop_recording(&self) -> Vec<u8> {
        self.state().recorded.take().unwrap_or_default()
    }

    /// The plain socket, for the TLS handshake after STARTTLS.
    pub(super) fn take_plain(&self) -> io::Result<TcpStream> {
        match std::mem::replace(&mut self.state().io, Io::Gone) {
            Io::Plain(tcp) => Ok(tcp),
            other => {
                self.state().io = other;
                Err(io::Error::other("the connection is not plain text"))
            }
        }
    }

    pub(super) fn put(&self, io: Io) {
        self.state().io = io;
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wire")
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection is being upgraded",
    )
}

impl AsyncTokioStream for Wire {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.state().io {
            Io::Plain(tcp) => tcp.peer_addr(),
            Io::Tls(tls) => tls.get_ref().0.peer_addr(),
            Io::Gone => Err(gone()),
        }
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.state();
        let before = buf.filled().len();
        let poll = match &mut state.io {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Io::Gone => return Poll::Ready(Err(gone())),
        };
        if let Some(rec) = &mut state.recorded {
            rec.extend_from_slice(&buf.filled()[before..]);
        }
        poll
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.state().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Io::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.state().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Io::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.state().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Io::Gone => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_stuff_leading_dots_and_end_with_the_final_dot() {
        let d = |s: &str| DataLines(s).to_string();
        assert_eq!(d(".a\r\nb.\r\n..c"), "..a\r\nb.\r\n...c\r\n.\r\n");
        assert_eq!(d("plain"), "plain\r\n.\r\n");
        assert_eq!(d(""), "\r\n.\r\n");
        assert_eq!(d("é\r\n.é"), "é\r\n..é\r\n.\r\n");
    }

    #[test]
    fn wire_body_drops_the_last_crlf_and_fixes_bare_line_ends() {
        assert_eq!(&*wire_body(b"A: b\r\n\r\nhi\r\n"), b"A: b\r\n\r\nhi");
        assert!(matches!(wire_body(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert_eq!(&*wire_body(b"a\nb\rc\r\n.\n"), b"a\r\nb\r\nc\r\n.");
        assert_eq!(&*wire_body(b"no end"), b"no end");
        assert_eq!(&*wire_body(b""), b"");
        for (text, bare) in [
            (&b"\r"[..], true),
            (b"\n", true),
            (b"a\rb", true),
            (b"a\nb", true),
            (b"a\r\r\n", true),
            (b"a\r\n\n", true),
            (b"a\r\nb\r\n", false),
            (b"\r\n", false),
            (b"ab", false),
            (b"", false),
        ] {
            assert_eq!(has_bare_line_end(text), bare, "{:?}", text.escape_ascii());
        }
    }
}
