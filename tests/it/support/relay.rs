//! A real Postfix relay for the SMTP tests: a private Postfix and Dovecot per test.
//!
//! The relay listens on a free loopback port, offers STARTTLS, takes SASL AUTH from one user
//! ([`SMTP_USER`]) and delivers every `@example.org` recipient into a Maildir of its own.
//!
//! Written for Debian 12's Postfix 3.7 and Dovecot 2.3 (`apt-get install postfix dovecot-core`;
//! nothing else: no `dovecot-lmtpd`). The tests run as root, and no system instance is used,
//! changed or needed: `postfix -c DIR/etc` runs an instance from its own `main.cf` and
//! `master.cf` with its own queue, data directory and log file (`DIR/postfix.log`, written by
//! Postfix's own `postlogd`, no syslog). Run as root, `postfix -c` takes a config directory that
//! no `alternate_config_directories` names; only the set-gid `postdrop`/`sendmail` insist on
//! that, and the harness uses neither.
//!
//! How mail flows:
//! - Postfix listens on `127.0.0.1:PORT` only. AUTH (PLAIN, LOGIN) is offered only after
//!   STARTTLS (`smtpd_tls_auth_only`), and only an authenticated client may send
//!   (`permit_sasl_authenticated, reject`; `mynetworks` is empty, so loopback is no exception).
//!   The certificate is a CA:FALSE leaf for `localhost` and `127.0.0.1` from [`TestPki`]; a
//!   client trusts [`Relay::ca_pem_path`].
//! - Dovecot (its own `dovecot.conf`, `base_dir` in the temp dir, no protocols) checks the
//!   password for Postfix over its auth socket (`smtpd_sasl_type = dovecot`).
//! - Every `LOCAL@example.org` is a virtual mailbox, delivered by Dovecot's LDA through a Postfix
//!   `pipe` into `DIR/mail/LOCAL/` (one Maildir per local part, made on first delivery, owned by
//!   `nobody`; `LOCAL+tag@` lands in `LOCAL/`). Postfix's own `virtual(8)` cannot do this: it
//!   refuses `$1` substitution in `virtual_mailbox_maps`.
//! - `unknown…@example.org` (any local part starting with `unknown`) is accepted at RCPT and
//!   then bounced by Postfix with a real RFC 3464 report (`multipart/report;
//!   report-type=delivery-status`) to the envelope sender, which lands in that sender's Maildir
//!   when it is an `@example.org` address (e.g. `bounces@example.org`).
//! - Nothing leaves the machine: every other domain goes to the `error` transport and bounces.
//!
//! The HELO checks only warn (`warn_if_reject`): a name that a strict relay would refuse logs
//! `reject_warning: ... need fully-qualified hostname` and the mail is still taken. Retries are
//! quick (`minimal_backoff_time = 1s`). Client ports are logged (`smtpd_client_port_logging`),
//! so [`Relay::disconnect_lines`] leaves out the harness's own readiness probes.

use crate::support::dovecot::binary;
use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::pki::TestPki;

/// The SASL user that may send through every relay.
pub const SMTP_USER: &str = "sender";
/// Its password.
pub const SMTP_PASSWORD: &str = "Relay-pass-5e2c07";
/// The domain whose addresses the relay delivers into Maildirs.
pub const DOMAIN: &str = "example.org";

/// How long Postfix and Dovecot get to start, greet and stop.
const PATIENCE: Duration = Duration::from_secs(10);
/// Dovecot's delivery agent, from dovecot-core.
const DOVECOT_LDA: &str = "/usr/lib/dovecot/dovecot-lda";

/// One running Postfix with its Dovecot; both stopped when dropped.
pub struct Relay {
    dir: tempfile::TempDir,
    port: u16,
    dovecot: Option<Child>,
    /// Local ports of the harness's readiness probes, whose sessions are not the test's.
    probes: Mutex<Vec<u16>>,
}

impl Relay {
    /// Starts a relay with the stock settings and waits (bounded) until it greets.
    pub fn start() -> Relay {
        Relay::start_with("")
    }

    /// Starts a relay with `main_cf_extra`'s settings in its `main.cf`, e.g.
    /// `"smtpd_client_message_rate_limit = 3\nanvil_rate_time_unit = 60s"`. A setting of the
    /// stock config that `main_cf_extra` names again is replaced, not repeated (Postfix would
    /// log `overriding earlier entry` from every daemon).
    pub fn start_with(main_cf_extra: &str) -> Relay {
        for tool in [
            binary("postfix"),
            binary("dovecot"),
            PathBuf::from(DOVECOT_LDA),
        ] {
            assert!(
                tool.exists(),
                "{} is missing (apt-get install postfix dovecot-core)",
                tool.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("relay-")
            .tempdir()
            .expect("create the relay's temp dir");
        let root = dir.path().to_path_buf();
        // Postfix's daemons and the mail user must walk through every folder on the way.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod the temp dir");
        let (nobody_uid, nobody_gid) = ids("nobody");
        let (postfix_uid, _) = ids("postfix");
        for sub in ["etc", "queue", "data", "mail", "dovecot"] {
            fs::create_dir(root.join(sub)).expect("create a relay folder");
        }
        std::os::unix::fs::chown(root.join("data"), Some(postfix_uid), None)
            .expect("chown the Postfix data directory");
        std::os::unix::fs::chown(root.join("mail"), Some(nobody_uid), Some(nobody_gid))
            .expect("chown the mail folder");
        // dovecot-lda runs as `nobody` and logs here.
        fs::write(root.join("dovecot/lda.log"), "").expect("create lda.log");
        std::os::unix::fs::chown(root.join("dovecot/lda.log"), Some(nobody_uid), None)
            .expect("chown lda.log");

        let pki = TestPki::new();
        pki.write_ca(&root);
        fs::write(root.join("etc/cert.pem"), pki.chain_pem()).expect("write cert.pem");
        fs::write(root.join("etc/key.pem"), pki.key_pem()).expect("write key.pem");
        fs::set_permissions(root.join("etc/key.pem"), fs::Permissions::from_mode(0o600))
            .expect("chmod key.pem");
        fs::write(
            root.join("etc/transport"),
            "/^unknown[^@]*@example\\.org$/\terror:5.1.1 unknown user: this test relay bounces unknown*@example.org\n",
        )
        .expect("write the transport map");

        let mut relay = Relay {
            dir,
            port: 0,
            dovecot: None,
            probes: Mutex::new(Vec::new()),
        };
        // From here on a panic drops `relay`, which stops whatever did start.
        relay.start_dovecot(nobody_uid, nobody_gid);
        // Another process may take the port between our probe and Postfix's bind: try new ones.
        let mut since = 0;
        for attempt in 1..=3 {
            relay.port = free_port();
            relay.write_postfix_config(main_cf_extra);
            since = relay.log().len();
            match relay.postfix_start() {
                Ok(()) => break,
                Err(why) if why.contains("Address already in use") && attempt < 3 => continue,
                Err(why) => panic!("{why}"),
            }
        }
        relay.wait_greeting(since);
        relay
    }

    /// The loopback port Postfix listens on (plain SMTP that offers STARTTLS).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) that signed the relay's certificate: what a client must trust
    /// (brief's `[smtp] ca_file`).
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The raw messages delivered to `local@example.org` so far (its Maildir's `new/` and `cur/`),
    /// oldest first, each starting with the `Return-Path:`, `Delivered-To:` and `Received:`
    /// headers that delivery added.
    pub fn maildir_messages(&self, local: &str) -> Vec<Vec<u8>> {
        let mut files = maildir_files(&self.dir.path().join("mail").join(local));
        files.sort_by_key(|p| delivery_order(p));
        files
            .iter()
            .map(|p| fs::read(p).expect("read a delivered message"))
            .collect()
    }

    /// The local parts that have a Maildir, i.e. got at least one message, sorted.
    pub fn mailboxes(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path().join("mail"))
            .map(|dir| {
                dir.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Waits (bounded by `within`) until all Maildirs together hold at least `n` messages, and
    /// returns how many they hold then (fewer than `n` when time ran out).
    pub fn wait_delivered(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let count = self.delivered();
            if count >= n || Instant::now() >= deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Postfix's log so far (`DIR/postfix.log`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// Postfix's log with Dovecot's (auth and delivery), for failure messages.
    pub fn logs(&self) -> String {
        let read = |name: &str| {
            let path = self.dir.path().join(name);
            format!(
                "--- {} ---\n{}",
                path.display(),
                fs::read_to_string(&path).unwrap_or_default()
            )
        };
        [
            "postfix.log",
            "dovecot/dovecot.log",
            "dovecot/lda.log",
            "dovecot/stderr.log",
        ]
        .map(read)
        .join("\n")
    }

    /// Waits (bounded by `within`) until Postfix's log contains `needle`; whether it did. Log
    /// lines arrive a moment after the event (e.g. a client's `disconnect from` after its QUIT).
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `disconnect from` lines of client sessions so far, oldest first, without the
    /// harness's own probes. Each counts the commands of one session, e.g.
    /// `... disconnect from localhost[127.0.0.1]:40312 ehlo=2 starttls=1 auth=1 mail=2 rcpt=2 data=2 quit=1 commands=11`
    /// (a command that failed shows as `auth=0/1`).
    pub fn disconnect_lines(&self) -> Vec<String> {
        let probes = self.probes.lock().expect("the probe list").clone();
        self.log()
            .lines()
            .filter(|l| l.contains("postfix/smtpd[") && l.contains(": disconnect from "))
            .filter(|l| client_port(l).is_none_or(|p| !probes.contains(&p)))
            .map(str::to_string)
            .collect()
    }

    /// Stops Postfix (`postfix stop`, bounded; the queue stays on disk): new connections are
    /// refused and open ones are cut, as when a relay goes away mid-send.
    pub fn stop_smtpd(&self) {
        self.postfix_stop();
    }

    /// Starts Postfix again on the same port after [`Relay::stop_smtpd`], and waits (bounded)
    /// until it greets. Queued mail goes on from where it was.
    pub fn start_smtpd(&self) {
        let since = self.log().len();
        if let Err(why) = self.postfix_start() {
            panic!("{why}");
        }
        self.wait_greeting(since);
    }

    /// Stops Postfix and Dovecot (bounded); also done on drop.
    pub fn stop(&mut self) {
        self.postfix_stop();
        if let Some(mut child) = self.dovecot.take() {
            // SIGKILL to the master alone, as in dovecot.rs: its children watch it and exit.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Writes `dovecot.conf` and the password file, starts Dovecot and waits until its auth
    /// socket answers: an smtpd that finds no SASL socket exits, and Postfix then throttles the
    /// service for a minute.
    fn start_dovecot(&mut self, uid: u32, gid: u32) {
        let root = self.dir.path().to_path_buf();
        let r = root.display();
        let name = root
            .file_name()
            .expect("temp dir name")
            .to_string_lossy()
            .into_owned();
        // Read by the auth process, which does not run as root.
        fs::write(
            root.join("dovecot/passwd"),
            format!("{SMTP_USER}:{{PLAIN}}{SMTP_PASSWORD}\n"),
        )
        .expect("write the passwd file");
        let conf = root.join("dovecot/dovecot.conf");
        fs::write(
            &conf,
            format!(
                r#"# A throwaway instance for one test, written by the relay test harness.
base_dir = {r}/dovecot/run
state_dir = {r}/dovecot/state
instance_name = {name}
log_path = {r}/dovecot/dovecot.log
# Only the SASL service for Postfix and the userdb for dovecot-lda: no IMAP, no LMTP.
protocols =
ssl = no
# Postfix offers AUTH only inside TLS; Dovecot sees a local socket and need not check that.
disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password is answered after about 0.5 s instead of 2 s (Dovecot 2.3 sends failures
# from a queue it checks every 500 ms; 0.5 s is as fast as it gets).
auth_failure_delay = 0
# No growing delay either after repeated failures from one IP (Dovecot's auth penalty); this is
# the documented way to turn it off.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# dovecot-lda runs as nobody and cannot reach the stats socket; it need not.
stats_writer_socket_path =
mail_location = maildir:{r}/mail/%n
recipient_delimiter = +
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/dovecot/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={r}/mail/%n allow_all_users=yes
}}
service auth {{
  unix_listener {r}/dovecot/auth {{
    mode = 0660
    user = postfix
    group = postfix
  }}
  unix_listener auth-userdb {{
    mode = 0600
    user = nobody
  }}
}}
"#
            ),
        )
        .expect("write dovecot.conf");

        self.dovecot = Some(crate::support::dovecot::spawn(
            &conf,
            &root.join("dovecot/stderr.log"),
        ));

        let socket = root.join("dovecot/auth");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self
                .dovecot
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.dovecot = None;
                panic!("dovecot exited at start ({status})\n{}", self.logs());
            }
            if UnixStream::connect(&socket).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dovecot's auth socket not up after {PATIENCE:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes `main.cf` and `master.cf` for the current port.
    fn write_postfix_config(&self, extra: &str) {
        let root = self.dir.path();
        let r = root.display();
        let port = self.port;
        let stock = format!(
            r#"# A throwaway instance for one test, written by the relay test harness.
compatibility_level = 3.6
# The config lives in etc/, apart from the queue: `postfix-script check-warn` walks the config
# directory and would warn about every queue folder not owned by root.
queue_directory = {r}/queue
data_directory = {r}/data
maillog_file = {r}/postfix.log
maillog_file_prefixes = {r}
# import_environment keeps its default, which passes POSTLOG_SERVICE and POSTLOG_HOSTNAME,
# needed for logging to maillog_file.
mail_owner = postfix
setgid_group = postdrop
inet_protocols = ipv4
inet_interfaces = 127.0.0.1
myhostname = relay.example.org
mydomain = example.org
myorigin = $myhostname
mydestination =
mynetworks =
alias_maps =
alias_database =
local_transport = error:5.1.1 no local delivery on this test relay
default_transport = error:5.7.1 nothing leaves this test relay
relay_transport = error:5.7.1 nothing leaves this test relay
virtual_mailbox_domains = example.org
virtual_transport = dovecot
dovecot_destination_recipient_limit = 1
transport_maps = regexp:{r}/etc/transport
smtpd_reject_unlisted_recipient = no
recipient_delimiter = +
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0h
smtpd_client_port_logging = yes
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_cert_file = {r}/etc/cert.pem
smtpd_tls_key_file = {r}/etc/key.pem
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {r}/dovecot/auth
smtpd_helo_required = yes
smtpd_helo_restrictions = warn_if_reject reject_invalid_helo_hostname, warn_if_reject reject_non_fqdn_helo_hostname
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_data_restrictions = reject_unauth_pipelining
"#
        );
        fs::write(root.join("etc/main.cf"), merge_main_cf(&stock, extra)).expect("write main.cf");
        let lda = format!(
            "{DOVECOT_LDA} -c {r}/dovecot/dovecot.conf -o log_path={r}/dovecot/lda.log -e -f ${{sender}} -d ${{user}}"
        );
        fs::write(
            root.join("etc/master.cf"),
            format!(
                r#"# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
dovecot   unix  -       n       n       -       -       pipe
  flags=DRhu user=nobody argv={lda}
"#
            ),
        )
        .expect("write master.cf");
        // Postfix reads a `main.cf` whose mtime is not yet a second or two old again and again,
        // 300 ms apart, until it is (a guard against a file still being edited): 2.4 s per
        // start. Hence files from the past.
        let past = std::time::SystemTime::now() - Duration::from_secs(60);
        for name in ["main.cf", "master.cf", "transport"] {
            fs::File::options()
                .write(true)
                .open(root.join("etc").join(name))
                .and_then(|f| f.set_modified(past))
                .expect("backdate the Postfix config");
        }
    }

    /// `postfix start`: checks the instance (creating the queue folders), then starts the
    /// master and waits for its initialization (`master -w`). Err carries the log.
    fn postfix_start(&self) -> Result<(), String> {
        let mut out = self
            .postfix()
            .arg("start")
            .output()
            .expect("run postfix start");
        // Postfix opens its log file only if it belongs to the user opening it; a daemon that
        // logged straight to the file while the previous stop was under way (no postlogd to
        // hand it to) can leave it owned by `postfix`, and the root-run `postsuper` of the
        // next start then refuses it. Given back to root, the start is tried again: a few
        // times, a moment apart, since a daemon of the old instance still exiting on a loaded
        // machine can take the file back once more.
        for _ in 0..5 {
            if out.status.success()
                || !String::from_utf8_lossy(&out.stderr).contains("open logfile")
            {
                break;
            }
            let log = self.dir.path().join("postfix.log");
            std::os::unix::fs::chown(&log, Some(0), Some(0)).expect("chown the Postfix log");
            std::thread::sleep(Duration::from_millis(200));
            out = self
                .postfix()
                .arg("start")
                .output()
                .expect("run postfix start");
        }
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "postfix start failed ({}): {}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        ))
    }

    /// `postfix stop`, then waits (bounded) until the master is gone and the port refuses;
    /// `postfix abort` and SIGKILL if it lingers.
    fn postfix_stop(&self) {
        let Some(pid) = self.master_pid() else {
            return;
        };
        let _ = self.postfix().arg("stop").output();
        if self.wait_stopped(pid, PATIENCE) {
            return;
        }
        let _ = self.postfix().arg("abort").output();
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
        assert!(
            self.wait_stopped(pid, PATIENCE),
            "postfix master {pid} still running after stop, abort and SIGKILL\n{}",
            self.logs()
        );
    }

    fn wait_stopped(&self, pid: u32, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let closed = TcpStream::connect(("127.0.0.1", self.port)).is_err();
            if !alive(pid) && closed {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The running master's pid, from `queue/pid/master.pid`.
    fn master_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.dir.path().join("queue/pid/master.pid")).ok()?;
        let pid = text.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// Waits (bounded) until a connection gets Postfix's `220` greeting and a `250` to EHLO,
    /// then says QUIT. An smtpd that exits instead (e.g. on a bad setting) panics with the logs;
    /// only the log past byte `since` (this start's) counts, since a failed earlier attempt on a
    /// taken port left a `fatal:` line before it.
    fn wait_greeting(&self, since: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let why = match self.probe(since, deadline) {
                Ok(()) => return,
                Err(why) => why,
            };
            // An smtpd that exited says why in the log a moment later.
            let settle = Instant::now() + Duration::from_millis(500);
            while Instant::now() < settle {
                self.panic_on_fatal(since);
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                Instant::now() < deadline,
                "postfix did not greet on port {} within {PATIENCE:?} ({why})\n{}",
                self.port,
                self.logs()
            );
        }
    }

    /// Panics with the logs if Postfix logged a fatal error past byte `since`.
    fn panic_on_fatal(&self, since: usize) {
        let log = self.log();
        let fatal = log
            .get(since..)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains("fatal:") || l.contains("bad command startup"));
        if let Some(line) = fatal {
            panic!(
                "postfix fails to serve port {}: {line}\n{}",
                self.port,
                self.logs()
            );
        }
    }

    /// One SMTP session: greeting, EHLO, QUIT. Its local port is remembered, so that
    /// [`Relay::disconnect_lines`] leaves it out.
    fn probe(&self, since: usize, deadline: Instant) -> Result<(), String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| format!("connect: {e}"))?;
        let local = stream.local_addr().map_err(|e| e.to_string())?.port();
        self.probes.lock().expect("the probe list").push(local);
        // Short reads, with a look at the log in between: an smtpd that dies before it accepts
        // leaves the connection waiting in the listener's backlog, and nothing ever arrives.
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut read_line = |what: &str| -> Result<String, String> {
            let mut line = String::new();
            loop {
                match reader.read_line(&mut line) {
                    Ok(0) => return Err(format!("connection closed before the {what}")),
                    Ok(_) => return Ok(line),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        self.panic_on_fatal(since);
                        if Instant::now() >= deadline {
                            return Err(format!("no {what} in time"));
                        }
                    }
                    Err(e) => return Err(format!("read the {what}: {e}")),
                }
            }
        };
        let greeting = read_line("greeting")?;
        if !greeting.starts_with("220 ") {
            return Err(format!("greeting {greeting:?}"));
        }
        stream
            .write_all(b"EHLO probe.example.org\r\n")
            .map_err(|e| format!("send EHLO: {e}"))?;
        loop {
            let line = read_line("EHLO reply")?;
            if !line.starts_with("250") {
                return Err(format!("EHLO reply {line:?}"));
            }
            if line.starts_with("250 ") {
                break;
            }
        }
        // A polite goodbye, so that the log shows no lost connection.
        stream
            .write_all(b"QUIT\r\n")
            .map_err(|e| format!("send QUIT: {e}"))?;
        read_line("QUIT reply").map(drop)
    }

    fn delivered(&self) -> usize {
        self.mailboxes()
            .iter()
            .map(|local| maildir_files(&self.dir.path().join("mail").join(local)).len())
            .sum()
    }

    fn postfix(&self) -> Command {
        let mut cmd = Command::new(binary("postfix"));
        cmd.arg("-c").arg(self.dir.path().join("etc"));
        cmd.stdin(Stdio::null());
        cmd
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `stock` without the settings that `extra` makes again, then `extra`.
fn merge_main_cf(stock: &str, extra: &str) -> String {
    // `name = value` starts a setting; a line that starts with white space continues one.
    let name = |line: &str| -> Option<String> {
        let first = line.chars().next()?;
        if first.is_whitespace() || first == '#' {
            return None;
        }
        line.split_once('=').map(|(n, _)| n.trim().to_string())
    };
    let names: Vec<String> = extra.lines().filter_map(name).collect();
    let mut out = String::new();
    let mut dropping = false;
    for line in stock.lines() {
        if line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            // A continuation line goes with its setting.
        } else {
            dropping = name(line).is_some_and(|n| names.contains(&n));
        }
        if !dropping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !extra.trim().is_empty() {
        out.push_str("# The test's own settings.\n");
        out.push_str(extra.trim_end());
        out.push('\n');
    }
    out
}

/// The message files of one Maildir (`new/` and `cur/`).
fn maildir_files(maildir: &Path) -> Vec<PathBuf> {
    ["new", "cur"]
        .iter()
        .flat_map(|sub| {
            fs::read_dir(maildir.join(sub))
                .map(|dir| {
                    dir.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// Sort key of a Maildir file: Dovecot names it `SECS.MUSECSPPID.HOST,...`.
fn delivery_order(path: &Path) -> (u64, u64, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = name.splitn(3, '.');
    let secs = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let usecs = parts
        .next()
        .and_then(|s| s.strip_prefix('M'))
        .and_then(|s| s.split('P').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    (secs, usecs, name)
}

/// The client port of an smtpd log line (`... from localhost[127.0.0.1]:40312 ...`).
fn client_port(line: &str) -> Option<u16> {
    let from = &line[line.find(" from ")?..];
    let after = &from[from.find("]:")? + 2..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Whether process `pid` runs (a zombie does not count).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // `pid (comm) state ...`; comm may hold spaces and parentheses.
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|s| s != "Z" && s != "X")
        })
        .unwrap_or(false)
}

/// A loopback port free right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A user's uid and primary gid, from /etc/passwd.
fn ids(user: &str) -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&user) && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .unwrap_or_else(|| panic!("a `{user}` user in /etc/passwd (apt-get install postfix)"))
}
