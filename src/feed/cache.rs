//! The last good copy of each feed, kept on disk so a conditional GET can answer 304.
//!
//! One file per feed, named by the SHA-256 of its URL, holding a small header (the URL and the
//! validators the server sent) and then the body exactly as received after decompression:
//!
//! ```text
//! brief-feed-cache 1
//! url: https://partner.example.org/feed.json
//! etag: "abc"
//! last-modified: Tue, 06 Jul 2021 10:00:00 GMT
//! fetched: 1625565600000
//!
//! {"version": ...
//! ```
//!
//! Body and validators live in one file so a single rename replaces both: a reader never sees
//! the validators of one copy beside the body of another. `fetched` is when the copy was last
//! confirmed current (a 200, or a 304 for it), in Unix milliseconds: the console's "last
//! fetched". A fetch that failed leaves a note beside the copy (`<hash>.failed`: the time, a
//! line break, the failure), removed by the next good fetch; the console shows it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use url::Url;

const MAGIC: &str = "brief-feed-cache 1";

/// What a server said identifies its copy: sent back as `If-None-Match` / `If-Modified-Since`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A cached copy of one feed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cached {
    pub validators: Validators,
    /// When the copy was last confirmed current, in Unix milliseconds (absent in older copies).
    pub fetched_at: Option<i64>,
    pub body: Vec<u8>,
}

/// The last failed fetch of a feed: when, and why.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FailureNote {
    pub at: i64,
    pub message: String,
}

/// The cache file of `url` in `dir`.
pub(crate) fn path(dir: &Path, url: &Url) -> PathBuf {
    let digest = Sha256::digest(url.as_str().as_bytes());
    let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.feed"))
}

/// Reads the cached copy of `url`; `Ok(None)` when there is none or it belongs to another URL
/// or is not in this format (a damaged copy is only a missed optimisation, not an error).
pub(crate) async fn read(dir: &Path, url: &Url) -> io::Result<Option<Cached>> {
    let bytes = match tokio::fs::read(path(dir, url)).await {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(decode(&bytes, url))
}

/// [`read`] for a blocking thread (the console reads the cache inside `spawn_blocking`).
pub(crate) fn read_blocking(dir: &Path, url: &Url) -> io::Result<Option<Cached>> {
    match std::fs::read(path(dir, url)) {
        Ok(b) => Ok(decode(&b, url)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn failure_path(dir: &Path, url: &Url) -> PathBuf {
    path(dir, url).with_extension("failed")
}

/// Notes that a fetch of `url` failed at `at` (Unix milliseconds) with `message`.
pub(crate) async fn note_failure(dir: &Path, url: &Url, at: i64, message: &str) -> io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    tokio::fs::write(failure_path(dir, url), format!("{at}\n{message}")).await
}

/// Removes the failure note of `url`, after a good fetch.
pub(crate) async fn clear_failure(dir: &Path, url: &Url) -> io::Result<()> {
    match tokio::fs::remove_file(failure_path(dir, url)).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The failure note of `url`, if the last fetch failed (blocking; a damaged note is none).
pub(crate) fn read_failure_blocking(dir: &Path, url: &Url) -> Option<FailureNote> {
    let text = std::fs::read_to_string(failure_path(dir, url)).ok()?;
    let (at, message) = text.split_once('\n')?;
    Some(FailureNote {
        at: at.parse().ok()?,
        message: message.to_string(),
    })
}

fn decode(bytes: &[u8], url: &Url) -> Option<Cached> {
    let split = bytes.windows(2).position(|w| w == b"\n\n")?;
    let header = std::str::from_utf8(&bytes[..split]).ok()?;
    let mut lines = header.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let mut validators = Validators::default();
    let mut same_url = false;
    let mut fetched_at = None;
    for line in lines {
        let (key, value) = line.split_once(": ")?;
        match key {
            "url" => same_url = value == url.as_str(),
            "etag" => validators.etag = Some(value.to_string()),
            "last-modified" => validators.last_modified = Some(value.to_string()),
            "fetched" => fetched_at = Some(value.parse().ok()?),
            _ => return None,
        }
    }
    if !same_url {
        return None;
    }
    Some(Cached {
        validators,
        fetched_at,
        body: bytes[split + 2..].to_vec(),
    })
}

fn encode(url: &Url, cached: &Cached) -> Vec<u8> {
    let mut out = format!("{MAGIC}\nurl: {url}\n");
    // Header values came through `HeaderValue::to_str`, so they hold no CR or LF; checked again
    // because a line break would corrupt the header of this file.
    let one_line = |v: &String| !v.contains(['\r', '\n']);
    if let Some(etag) = cached.validators.etag.as_ref().filter(|v| one_line(v)) {
        out.push_str(&format!("etag: {etag}\n"));
    }
    if let Some(lm) = cached
        .validators
        .last_modified
        .as_ref()
        .filter(|v| one_line(v))
    {
        out.push_str(&format!("last-modified: {lm}\n"));
    }
    if let Some(at) = cached.fetched_at {
        out.push_str(&format!("fetched: {at}\n"));
    }
    out.push('\n');
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&cached.body);
    bytes
}

/// Replaces the cached copy of `url` atomically: written to a temporary file in the same folder,
/// then renamed over the old one, so a crash or a concurrent reader never sees half a file.
pub(crate) async fn write(dir: &Path, url: &Url, cached: &Cached) -> io::Result<()> {
    // Two fetches of the same URL (in one process or two) must not share a temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    tokio::fs::create_dir_all(dir).await?;
    let target = path(dir, url);
    let tmp = target.with_extension(format!(
        "feed.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = async {
        tokio::fs::write(&tmp, encode(url, cached)).await?;
        tokio::fs::rename(&tmp, &target).await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("https://partner.example.org/feed.json").unwrap()
    }

    #[tokio::test]
    async fn a_written_copy_reads_back_and_belongs_to_its_url_only() {
        let dir = tempfile::tempdir().unwrap();
        let cached = Cached {
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: Some("Tue, 06 Jul 2021 10:00:00 GMT".into()),
            },
            fetched_at: Some(1_625_565_600_000),
            body: b"{\"version\": 1}\n\nbody with a blank line".to_vec(),
        };
        write(dir.path(), &url(), &cached).await.unwrap();
        assert_eq!(read(dir.path(), &url()).await.unwrap(), Some(cached));
        assert_eq!(
            read_blocking(dir.path(), &url())
                .unwrap()
                .unwrap()
                .fetched_at,
            Some(1_625_565_600_000)
        );

        let other = Url::parse("https://other.example.org/feed.json").unwrap();
        assert_eq!(read(dir.path(), &other).await.unwrap(), None);
        // A copy renamed onto another URL's name is not taken for it.
        std::fs::rename(path(dir.path(), &url()), path(dir.path(), &other)).unwrap();
        assert_eq!(read(dir.path(), &other).await.unwrap(), None);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[tokio::test]
    async fn a_failure_note_reads_back_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_failure_blocking(dir.path(), &url()), None);
        note_failure(dir.path(), &url(), 42, "feed x: HTTP status 500")
            .await
            .unwrap();
        let note = read_failure_blocking(dir.path(), &url()).unwrap();
        assert_eq!(
            (note.at, note.message.as_str()),
            (42, "feed x: HTTP status 500")
        );
        clear_failure(dir.path(), &url()).await.unwrap();
        clear_failure(dir.path(), &url()).await.unwrap();
        assert_eq!(read_failure_blocking(dir.path(), &url()), None);
    }

    #[test]
    fn damaged_copies_are_ignored() {
        for bad in [
            &b""[..],
            b"junk",
            b"brief-feed-cache 9\nurl: x\n\n",
            b"brief-feed-cache 1\nurl https://partner.example.org/feed.json\n\nx",
        ] {
            assert_eq!(decode(bad, &url()), None);
        }
    }
}
