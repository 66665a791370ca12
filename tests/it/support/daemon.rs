//! `brief run` as a child process for the tests: start, read its address, speak HTTP, stop it.
//!
//! HTTP goes over a plain loopback `TcpStream` (one request per connection), so a test sees the
//! exact status line and headers the daemon writes. Every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::World;

/// How long a daemon may take to print its address.
const START: Duration = Duration::from_secs(30);
/// The issue's bound on a stop is 10 s; this only keeps a hung test from hanging the suite.
const STOP: Duration = Duration::from_secs(30);

/// A running `brief run`.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// One HTTP answer. Two answers are equal when all but their `Date` header is, byte for byte:
/// the time an answer was made says nothing of what was asked, and two requests a moment apart
/// can fall in different seconds.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl PartialEq for Reply {
    fn eq(&self, other: &Reply) -> bool {
        let timeless = |r: &Reply| -> Vec<(String, String)> {
            r.headers
                .iter()
                .filter(|(n, _)| n != "date")
                .cloned()
                .collect()
        };
        self.status == other.status && self.body == other.body && timeless(self) == timeless(other)
    }
}

impl Eq for Reply {}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a stopped daemon ended.
pub struct Stopped {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn drain(r: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
}

impl Running {
    /// Starts `brief run` in `w` with extra environment variables, and waits for its address.
    pub fn start(w: &World, env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("brief"));
        cmd.current_dir(&w.root)
            .env_remove("BRIEF_CONFIG")
            .env_remove("BRIEF_LISTEN")
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg(w.config_path())
            .arg("run");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Running::spawn(cmd)
    }

    /// Starts a prepared command (stdout and stderr are taken here) and waits for its address.
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("brief run starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().unwrap(), stdout.clone());
        drain(child.stderr.take().unwrap(), stderr.clone());
        let started = Instant::now();
        let addr = loop {
            let out = stdout.lock().unwrap().clone();
            if let Some(rest) = out.split("listening on http://").nth(1) {
                break rest.lines().next().unwrap().trim().parse().unwrap();
            }
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "brief run exited ({status}) before listening:\n{}",
                    stderr.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < START,
                "brief run printed no address:\n{}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Running {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the daemon logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.request("POST", path, headers, body)
    }

    /// One request with a `Content-Length` body, on its own connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body);
        self.exchange(&raw)
    }

    /// Sends `raw` bytes as they are and reads the answer to the end of the connection. The
    /// answer is read while the request is written: a server may answer (413, say) and close
    /// before a large body is all written, and what it said must not be lost to the reset.
    pub fn exchange(&self, raw: &[u8]) -> Reply {
        let mut s = self.connect();
        let mut reader = s.try_clone().unwrap();
        let answer = std::thread::spawn(move || read_reply(&mut reader));
        if let Err(e) = s.write_all(raw) {
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ),
                "writing the request: {e}"
            );
        }
        answer.join().unwrap()
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Polls `/metrics` until `series` (a whole sample line's name and labels) reaches `at_least`.
    pub fn wait_for_metric(&self, series: &str, at_least: f64, within: Duration) -> f64 {
        let started = Instant::now();
        loop {
            let v = metric(&self.get("/metrics").body, series).unwrap_or(0.0);
            if v >= at_least {
                return v;
            }
            assert!(
                started.elapsed() < within,
                "{series} stayed at {v} (wanted {at_least}); log:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits (bounded) for the process to end.
    pub fn stop(mut self) -> Stopped {
        signal(self.pid(), "TERM");
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > STOP {
                let _ = self.child.kill();
                panic!(
                    "brief run did not end within {STOP:?} of SIGTERM:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader threads see the pipes close right after the exit.
        std::thread::sleep(Duration::from_millis(100));
        Stopped {
            status,
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with the system's `kill`.
pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{name} {pid} failed");
}

/// The value of one sample line (`name{labels}`) in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn read_reply(s: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        // A reset after the answer (the server closed with a request body unread) keeps it.
        assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty(),
            "reading the answer: {e}"
        );
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&b[..eol])
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// Waits (bounded) until `f` holds, polling.
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sleeps until a little after the canary window of `issue`'s campaign in `w` has ended (the
/// window is read from the ledger, so a slow machine does not shorten what a test sees).
pub fn sleep_past_canary_window(w: &crate::support::World, issue: &str) {
    use brief::clock::Clock;
    let c = w
        .ledger()
        .campaign(issue.parse().unwrap())
        .unwrap()
        .expect("a campaign");
    let until = c.release_at.expect("a canary window") + 1500;
    let now = brief::clock::SystemClock.now_ms();
    if until > now {
        std::thread::sleep(Duration::from_millis((until - now) as u64));
    }
}
