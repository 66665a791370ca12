//! A real Dovecot for the IMAP tests: a private instance per test, listening on two free loopback
//! ports (implicit TLS, and plain text with STARTTLS), one user with a Maildir in a temp dir.
//!
//! Written for Debian 12's Dovecot 2.3 (`apt-get install dovecot-imapd dovecot-core`); Dovecot
//! 2.4 reads a different configuration format. The tests run as root: Dovecot's master process
//! must start as root to switch its login and mail processes to other users, and it refuses to
//! open mail as uid 0 unless `first_valid_uid = 0`. So the mail processes run as `nobody`, whose
//! home the harness creates and hands over, and the temp dir is made 0755 so that `nobody` and
//! Dovecot's own `dovenull` can walk through it. No system Dovecot is used or needed: the
//! instance has its own `base_dir`, `state_dir` and log file, and every `doveadm` call names its
//! configuration file.
//!
//! The certificate is a CA:FALSE leaf for `localhost` and `127.0.0.1`, signed by a throwaway CA
//! ([`Dovecot::ca_pem_path`]): rustls does not accept a self-signed leaf as its own trust anchor.

use std::fs;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The IMAP user of every instance.
pub const USER: &str = "bounces";
/// Its password.
pub const PASSWORD: &str = "Bounce-pass-7c1e9a";

/// How long Dovecot gets to start listening, and to stop.
const PATIENCE: Duration = Duration::from_secs(10);

/// One running Dovecot; stopped when dropped.
pub struct Dovecot {
    dir: tempfile::TempDir,
    conf: PathBuf,
    child: Option<Child>,
    tls_port: u16,
    plain_port: u16,
}

/// One message as Dovecot stores it, from `doveadm fetch`.
#[derive(Debug, Clone)]
pub struct Stored {
    pub uid: u32,
    /// Flags and keywords, e.g. `["\\Seen", "brief-ignored"]`.
    pub flags: Vec<String>,
    pub subject: String,
}

impl Dovecot {
    /// Starts an instance with the stock settings.
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// Starts an instance with `extra` appended to its `dovecot.conf` (a later setting wins),
    /// e.g. `imap_capability = ...` to hide MOVE.
    pub fn start_with(extra: &str) -> Dovecot {
        let dir = tempfile::Builder::new()
            .prefix("dovecot-")
            .tempdir()
            .expect("create the Dovecot temp dir");
        let root = dir.path().to_path_buf();
        assert_eq!(
            fs::metadata(&root).expect("stat the temp dir").uid(),
            0,
            "the Dovecot tests run as root: Dovecot's master must start as root"
        );
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod the temp dir");

        let (uid, gid) = nobody();
        let home = root.join("home");
        fs::create_dir(&home).expect("create the mail home");
        std::os::unix::fs::chown(&home, Some(uid), Some(gid)).expect("chown the mail home");
        // The imap process writes what each client sent after LOGIN here, so that a test can see
        // which commands were used. Dovecot writes nothing if the directory is missing.
        let rawlog = home.join("rawlog");
        fs::create_dir(&rawlog).expect("create the rawlog dir");
        std::os::unix::fs::chown(&rawlog, Some(uid), Some(gid)).expect("chown the rawlog dir");

        let pki = crate::support::pki::TestPki::new();
        let (cert_pem, key_pem, ca_pem) = (pki.chain_pem(), pki.key_pem(), pki.ca_pem());
        fs::write(root.join("cert.pem"), cert_pem).expect("write cert.pem");
        fs::write(root.join("key.pem"), key_pem).expect("write key.pem");
        fs::write(root.join("ca.pem"), ca_pem).expect("write ca.pem");
        // Read by the auth process, which need not run as root.
        fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n"))
            .expect("write the passwd file");

        let mut dovecot = Dovecot {
            dir,
            conf: root.join("dovecot.conf"),
            child: None,
            tls_port: 0,
            plain_port: 0,
        };
        // Another process may take a port between our probe and Dovecot's bind: try new ones.
        for attempt in 1..=3 {
            match dovecot.launch(uid, gid, extra) {
                Ok(()) => return dovecot,
                Err(why) if why.contains("Address already in use") && attempt < 3 => continue,
                Err(why) => panic!("{why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Writes `dovecot.conf` for two fresh ports, starts Dovecot and waits until it listens.
    fn launch(&mut self, uid: u32, gid: u32, extra: &str) -> Result<(), String> {
        let (tls_port, plain_port) = free_ports();
        self.tls_port = tls_port;
        self.plain_port = plain_port;
        let root = self.dir.path().to_path_buf();
        let r = root.display();
        fs::write(
            &self.conf,
            format!(
                r#"# A throwaway instance for one test, written by the Dovecot test harness.
base_dir = {r}/run
state_dir = {r}/state
instance_name = brief-test-{tls_port}
log_path = {r}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = yes
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
# Dovecot 2.3 counts a loopback connection as secure already; say so anyway, so that the plain
# listener takes LOGIN whatever that heuristic does.
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
rawlog_dir = {r}/home/rawlog
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={r}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {plain_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
{extra}
"#
            ),
        )
        .expect("write dovecot.conf");

        self.child = Some(spawn(&self.conf, &root.join("stderr.log")));

        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "dovecot exited at start ({status})\n{}",
                    self.log()
                ));
            }
            let up = [tls_port, plain_port]
                .iter()
                .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "dovecot not listening after {PATIENCE:?}\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The implicit-TLS (IMAPS) port.
    pub fn port(&self) -> u16 {
        self.tls_port
    }

    /// The plain-text port, which offers STARTTLS and also takes LOGIN without it.
    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    /// The CA certificate (PEM) that signed the server's certificate: what `ca_file` must name.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Dovecot's log file, for failure messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("dovecot.log")
    }

    /// Dovecot's log so far, with what it wrote to stderr.
    pub fn log(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let stderr = fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        format!("--- {} ---\n{log}{stderr}", self.log_path().display())
    }

    /// The `imap-login: Login:` lines so far; each ends with `TLS` for an encrypted session and
    /// `secured` for a plain one from loopback.
    pub fn logins(&self) -> Vec<String> {
        fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("imap-login: Info: Login:"))
            .map(str::to_string)
            .collect()
    }

    /// Every IMAP command clients sent after LOGIN so far (Dovecot's rawlog), without timestamp
    /// and tag, e.g. `UID MOVE 1 "brief-processed"`.
    pub fn commands(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.dir.path().join("home/rawlog"))
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        // Named by date and time, then `.in` for what the client sent.
        files.retain(|p| p.extension().is_some_and(|e| e == "in"));
        files.sort();
        files
            .iter()
            .flat_map(|p| {
                fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    // `<unix time> <tag> <command>`
                    .filter_map(|l| l.splitn(3, ' ').nth(2).map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Puts a message into the user's INBOX, as a delivery would (UIDs in call order).
    pub fn deliver(&self, raw: &[u8]) {
        let mut child = self
            .doveadm()
            .args(["save", "-u", USER, "-m", "INBOX"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run doveadm save");
        child
            .stdin
            .take()
            .expect("doveadm's stdin")
            .write_all(raw)
            .expect("write the message to doveadm save");
        let out = child.wait_with_output().expect("wait for doveadm save");
        assert!(
            out.status.success(),
            "doveadm save failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// How many messages folder `name` holds, `\Deleted` ones included; 0 when it does not exist.
    pub fn folder_count(&self, name: &str) -> usize {
        let out = self
            .doveadm()
            .args(["mailbox", "status", "-u", USER, "messages", name])
            .output()
            .expect("run doveadm mailbox status");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            assert!(
                stderr.contains("doesn't exist"),
                "doveadm mailbox status {name} failed: {stderr}\n{}",
                self.log()
            );
            return 0;
        }
        // Flow format: `NAME messages=N`.
        stdout
            .trim()
            .rsplit_once("messages=")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected doveadm mailbox status output: {stdout:?}"))
    }

    /// The messages of folder `name`, lowest UID first.
    pub fn messages(&self, name: &str) -> Vec<Stored> {
        let out = self
            .doveadm()
            .args([
                "fetch",
                "-u",
                USER,
                "uid flags hdr.subject",
                "mailbox",
                name,
                "ALL",
            ])
            .output()
            .expect("run doveadm fetch");
        assert!(
            out.status.success(),
            "doveadm fetch {name} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // doveadm's flow format: `field: value` lines, messages separated by a form feed.
        text.split('\x0c')
            .filter(|block| !block.trim().is_empty())
            .map(|block| {
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                        .unwrap_or_default()
                };
                Stored {
                    uid: field("uid:").parse().expect("a numeric uid"),
                    flags: field("flags:")
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                    subject: field("hdr.subject:"),
                }
            })
            .collect()
    }

    /// Stops Dovecot and waits (bounded) until its ports are closed.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGKILL to the master alone: Dovecot's other processes watch the master and exit
        // within a fraction of a second when it dies. `doveadm stop` and SIGTERM take one to
        // three seconds, which adds up over a test suite.
        let _ = child.kill();
        let _ = child.wait();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            let open = [self.tls_port, self.plain_port]
                .iter()
                .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if !open {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn doveadm(&self) -> Command {
        let mut cmd = Command::new(binary("doveadm"));
        cmd.arg("-c").arg(&self.conf);
        cmd
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two loopback ports free right now (held together, so they differ).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let ports = (
        a.local_addr().expect("port").port(),
        b.local_addr().expect("port").port(),
    );
    drop((a, b));
    ports
}

/// `nobody`'s uid and primary gid, from /etc/passwd.
fn nobody() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"nobody") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .expect("a `nobody` user in /etc/passwd")
}

/// Dovecot's programs live in /usr/sbin, which a non-login shell's PATH may lack.
/// Runs Dovecot in the foreground from the config `conf`, its stderr into `stderr`.
pub fn spawn(conf: &Path, stderr: &Path) -> Child {
    Command::new(binary("dovecot"))
        .arg("-c")
        .arg(conf)
        .arg("-F")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            fs::File::create(stderr).expect("create Dovecot's stderr log"),
        ))
        .spawn()
        .expect("run dovecot (apt-get install dovecot-imapd dovecot-core)")
}

/// Where the system keeps `name` (Dovecot's and Postfix's tools live in sbin).
pub fn binary(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
