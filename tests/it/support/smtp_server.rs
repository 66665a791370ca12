//! A real SMTP server on 127.0.0.1 for the tests, with faults scripted per command and recipient.
//!
//! It speaks enough ESMTP for brief's client and for lettre: EHLO/HELO, MAIL, RCPT, DATA (with
//! dot-unstuffing), RSET, NOOP, QUIT, AUTH PLAIN/LOGIN, STARTTLS and implicit TLS. By default
//! it accepts everything and records each message; [`Rule`]s make it misbehave:
//!
//! ```ignore
//! let server = SmtpServer::start().await;
//! server.rule(Rule::rcpt("a@example.org").reply("451 4.7.1 greylisted").times(2));
//! server.rule(Rule::end_of_data_for("b@example.org").hang_up());
//! ```
//!
//! Rules are tried in the order they were added; the first that matches and is not used up
//! decides. Dropping the server stops it and every session it runs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The longest command or data line read; longer ones end the session.
const MAX_LINE: u64 = 64 * 1024;
/// The host name in the greeting and EHLO reply.
const NAME: &str = "smtp.test";

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The reverse path of MAIL FROM, without angle brackets.
    pub mail_from: String,
    /// The parameters of MAIL FROM after the path (`RET=HDRS ENVID=...`), as sent.
    pub mail_params: String,
    /// The forward paths of the accepted RCPT TO commands.
    pub rcpt_to: Vec<String>,
    /// The message as stored: dot-unstuffed, ending with the CRLF of its last line.
    pub data: Vec<u8>,
    /// Which connection carried it (1 for the first accepted connection).
    pub connection: usize,
    /// Whether the session was encrypted.
    pub tls: bool,
}

/// A scripted fault: where it applies, what the server does instead, and how often.
#[derive(Debug, Clone)]
pub struct Rule {
    on: On,
    rcpt: Option<String>,
    action: Option<Action>,
    times: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
enum On {
    Greeting,
    /// A command verb, upper case.
    Command(String),
    /// The final dot of DATA.
    EndOfData,
}

#[derive(Debug, Clone)]
enum Action {
    /// Answer with this line instead. A 2xx or 3xx line lets the command take effect as usual
    /// (only the text changes); a 4xx or 5xx line refuses it.
    Reply(String),
    /// Answer with this line, then close the connection (e.g. 421).
    ReplyAndHangUp(String),
    /// Close the connection without a word.
    HangUp,
    /// Never answer: read and discard until the client gives up and closes.
    Stall,
    /// Wait this long, then answer as `Reply` would (a slow server).
    ReplyAfter(std::time::Duration, String),
}

impl Rule {
    /// At the greeting, before any command.
    pub fn greeting() -> Rule {
        Rule::on(On::Greeting)
    }

    /// At every use of a command verb: "EHLO", "MAIL", "RCPT", "DATA", "RSET", "AUTH",
    /// "STARTTLS", "QUIT"... (any case).
    pub fn command(verb: &str) -> Rule {
        Rule::on(On::Command(verb.to_ascii_uppercase()))
    }

    /// At RCPT TO for this recipient (compared without case).
    pub fn rcpt(addr: &str) -> Rule {
        Rule::command("RCPT").for_rcpt(addr)
    }

    /// At the final dot of any message. A hang-up or stall here happens after the message was
    /// accepted and recorded: the client's reply is lost, not the message.
    pub fn end_of_data() -> Rule {
        Rule::on(On::EndOfData)
    }

    /// At the final dot of a message that has this recipient.
    pub fn end_of_data_for(addr: &str) -> Rule {
        Rule::end_of_data().for_rcpt(addr)
    }

    /// Narrows the rule to one recipient: for RCPT, the one it names; for other commands and the
    /// final dot, one of the current transaction's recipients (so it never matches MAIL).
    pub fn for_rcpt(mut self, addr: &str) -> Rule {
        self.rcpt = Some(addr.to_ascii_lowercase());
        self
    }

    /// Answers with `line` (e.g. "451 4.7.1 greylisted") instead of the usual reply.
    pub fn reply(mut self, line: &str) -> Rule {
        self.action = Some(Action::Reply(line.to_string()));
        self
    }

    /// Answers with `line` (e.g. "421 4.3.2 shutting down"), then hangs up.
    pub fn reply_and_hang_up(mut self, line: &str) -> Rule {
        self.action = Some(Action::ReplyAndHangUp(line.to_string()));
        self
    }

    /// Hangs up without answering.
    pub fn hang_up(mut self) -> Rule {
        self.action = Some(Action::HangUp);
        self
    }

    /// Answers with `line` after `wait` (a slow server; at the final dot, the message is
    /// taken after the wait).
    pub fn reply_after(mut self, wait: std::time::Duration, line: &str) -> Rule {
        self.action = Some(Action::ReplyAfter(wait, line.to_string()));
        self
    }

    /// Never answers.
    pub fn stall(mut self) -> Rule {
        self.action = Some(Action::Stall);
        self
    }

    /// Applies to the first `n` matching events only (default: all of them).
    pub fn times(mut self, n: u32) -> Rule {
        self.times = Some(n);
        self
    }

    fn on(on: On) -> Rule {
        Rule {
            on,
            rcpt: None,
            action: None,
            times: None,
        }
    }

    fn matches(&self, event: &Event<'_>) -> bool {
        if self.times == Some(0) || self.on != event.on {
            return false;
        }
        let Some(want) = &self.rcpt else {
            return true;
        };
        match event.rcpt {
            Some(rcpt) => rcpt.eq_ignore_ascii_case(want),
            None => event.tx_rcpts.iter().any(|r| r.eq_ignore_ascii_case(want)),
        }
    }
}

/// What just happened in a session, for the rules to match against.
struct Event<'a> {
    on: On,
    /// The recipient a RCPT command names.
    rcpt: Option<&'a str>,
    /// The current transaction's recipients.
    tx_rcpts: &'a [String],
}

/// Transport security of the test server.
#[derive(Clone, Default)]
enum ServerTls {
    #[default]
    None,
    Starttls(Arc<rustls::ServerConfig>),
    Implicit(Arc<rustls::ServerConfig>),
}

/// Options of a server before it starts.
#[derive(Default)]
pub struct SmtpServerBuilder {
    tls: ServerTls,
    dsn: bool,
    auth: Option<(String, String)>,
    mechanisms: Option<String>,
}

impl SmtpServerBuilder {
    /// Offers DSN (RFC 3461) in the EHLO reply.
    pub fn dsn(mut self) -> Self {
        self.dsn = true;
        self
    }

    /// Offers STARTTLS with this certificate (AUTH is then offered only after it).
    pub fn starttls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = ServerTls::Starttls(config);
        self
    }

    /// Speaks TLS from the first byte (like port 465).
    pub fn implicit_tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = ServerTls::Implicit(config);
        self
    }

    /// Offers AUTH PLAIN and LOGIN, accepts only this user and password, and requires AUTH
    /// before MAIL.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// Offers only these AUTH mechanisms (e.g. "LOGIN"); default "PLAIN LOGIN".
    pub fn auth_mechanisms(mut self, mechanisms: &str) -> Self {
        self.mechanisms = Some(mechanisms.to_ascii_uppercase());
        self
    }

    /// Binds 127.0.0.1 on a free port and starts accepting connections.
    pub async fn start(self) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP server");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            tls: self.tls,
            dsn: self.dsn,
            auth: self.auth,
            mechanisms: self.mechanisms.unwrap_or_else(|| "PLAIN LOGIN".to_string()),
            state: Mutex::new(State::default()),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        SmtpServer {
            addr,
            shared,
            accept,
        }
    }
}

/// A running test server; dropping it stops the accept loop and aborts every session.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // The accept task owns the JoinSet of sessions: aborting it drops the set, which aborts
        // them all.
        self.accept.abort();
    }
}

impl SmtpServer {
    /// A plain-text server without AUTH.
    pub async fn start() -> SmtpServer {
        SmtpServer::builder().start().await
    }

    pub fn builder() -> SmtpServerBuilder {
        SmtpServerBuilder::default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Adds a rule; it applies to commands read from now on, in every session.
    ///
    /// # Panics
    /// When the rule has no action (`reply`, `reply_and_hang_up`, `hang_up` or `stall`).
    pub fn rule(&self, rule: Rule) -> &Self {
        assert!(rule.action.is_some(), "a rule needs an action: {rule:?}");
        self.shared.state().rules.push(rule);
        self
    }

    /// Drops every rule: from now on the server behaves (a relay fixed by its staff).
    pub fn clear_rules(&self) -> &Self {
        self.shared.state().rules.clear();
        self
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.state().messages.clone()
    }

    /// How many accepted messages had this recipient (compared without case).
    pub fn copies(&self, rcpt: &str) -> usize {
        self.shared
            .state()
            .messages
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
            .count()
    }

    /// How many messages were accepted in all.
    pub fn accepted(&self) -> usize {
        self.shared.state().messages.len()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.state().connections
    }

    /// The (user, password) of every AUTH attempt, in order.
    pub fn auth_attempts(&self) -> Vec<(String, String)> {
        self.shared.state().auth_attempts.clone()
    }

    /// Every command line received, in order over all sessions, without its CRLF (AUTH
    /// payloads replaced by `***`).
    pub fn commands(&self) -> Vec<String> {
        self.shared.state().commands.clone()
    }
}

struct Shared {
    tls: ServerTls,
    /// Whether EHLO offers DSN (RFC 3461).
    dsn: bool,
    auth: Option<(String, String)>,
    /// The AUTH mechanisms offered, space-separated.
    mechanisms: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    messages: Vec<Received>,
    connections: usize,
    auth_attempts: Vec<(String, String)>,
    commands: Vec<String>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed; keep serving the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The action of the first live rule matching `event`, using up one of its times.
    fn scripted(&self, event: &Event<'_>) -> Option<Action> {
        let mut state = self.state();
        let rule = state.rules.iter_mut().find(|r| r.matches(event))?;
        if let Some(n) = &mut rule.times {
            *n -= 1;
        }
        rule.action.clone()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of file descriptors or the like: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        // Reap finished sessions so a long test does not pile them up.
        while sessions.try_join_next().is_some() {}
        let id = {
            let mut state = shared.state();
            state.connections += 1;
            state.connections
        };
        sessions.spawn(session(Arc::clone(&shared), tcp, id));
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn session(shared: Arc<Shared>, tcp: TcpStream, id: usize) {
    let _ = tcp.set_nodelay(true);
    let (io, tls): (Box<dyn Io>, bool) = match &shared.tls {
        ServerTls::Implicit(config) => {
            match tokio_rustls::TlsAcceptor::from(Arc::clone(config))
                .accept(tcp)
                .await
            {
                Ok(tls) => (Box::new(tls), true),
                Err(_) => return,
            }
        }
        _ => (Box::new(tcp), false),
    };
    let mut session = Session {
        shared,
        io: BufReader::new(io),
        id,
        tls,
        greeted: false,
        authed: false,
        tx: None,
    };
    // An I/O error only means the client went away.
    let _ = session.run().await;
}

struct Session {
    shared: Arc<Shared>,
    io: BufReader<Box<dyn Io>>,
    id: usize,
    tls: bool,
    greeted: bool,
    authed: bool,
    tx: Option<Transaction>,
}

struct Transaction {
    from: String,
    params: String,
    rcpts: Vec<String>,
}

/// What a rule left for the command handler to do.
enum Next {
    /// Handle the command as usual, answering with this line if the rule gave one.
    Proceed(Option<String>),
    /// The rule already answered (a refusal); read the next command.
    Answered,
    /// The session is over.
    Closed,
}

impl Session {
    async fn run(&mut self) -> std::io::Result<()> {
        match self.intercept(On::Greeting, None).await? {
            Next::Proceed(line) => {
                let line = line.unwrap_or_else(|| format!("220 {NAME} ESMTP brief test server"));
                self.send(&line).await?;
            }
            Next::Answered => {}
            Next::Closed => return Ok(()),
        }
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(());
            };
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let (verb, arg) = match line.split_once(' ') {
                Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
                None => (line.to_ascii_uppercase(), String::new()),
            };
            let logged = if verb == "AUTH" {
                format!("AUTH {} ***", arg.split(' ').next().unwrap_or(""))
            } else {
                line.clone()
            };
            self.shared.state().commands.push(logged);

            let rcpt = (verb == "RCPT").then(|| path_of(&arg, "TO:")).flatten();
            let next = self
                .intercept(On::Command(verb.clone()), rcpt.as_deref())
                .await?;
            let line = match next {
                Next::Proceed(line) => line,
                Next::Answered => continue,
                Next::Closed => return Ok(()),
            };
            let open = match verb.as_str() {
                "EHLO" => self.ehlo(&arg, line).await?,
                "HELO" => {
                    self.greeted = true;
                    self.tx = None;
                    self.send(&line.unwrap_or_else(|| format!("250 {NAME}")))
                        .await?;
                    true
                }
                "MAIL" => self.mail(&arg, line).await?,
                "RCPT" => self.rcpt(rcpt, line).await?,
                "DATA" => self.data(line).await?,
                "RSET" => {
                    self.tx = None;
                    self.ok(line, "250 2.0.0 Ok").await?
                }
                "NOOP" => self.ok(line, "250 2.0.0 Ok").await?,
                "QUIT" => {
                    self.ok(line, "221 2.0.0 Bye").await?;
                    false
                }
                "AUTH" => self.auth(&arg, line).await?,
                "STARTTLS" => self.starttls(line).await?,
                _ => {
                    self.send("500 5.5.2 command not recognized").await?;
                    true
                }
            };
            if !open {
                return Ok(());
            }
        }
    }

    /// Applies the first matching rule for this event.
    async fn intercept(&mut self, on: On, rcpt: Option<&str>) -> std::io::Result<Next> {
        let no_rcpts = Vec::new();
        let tx_rcpts = self.tx.as_ref().map_or(&no_rcpts, |t| &t.rcpts);
        let event = Event { on, rcpt, tx_rcpts };
        let Some(action) = self.shared.scripted(&event) else {
            return Ok(Next::Proceed(None));
        };
        let action = match action {
            Action::ReplyAfter(wait, line) => {
                tokio::time::sleep(wait).await;
                Action::Reply(line)
            }
            other => other,
        };
        match action {
            Action::ReplyAfter(..) => unreachable!("made a reply above"),
            Action::Reply(line) if positive(&line) => Ok(Next::Proceed(Some(line))),
            Action::Reply(line) => {
                self.send(&line).await?;
                Ok(Next::Answered)
            }
            Action::ReplyAndHangUp(line) => {
                self.send(&line).await?;
                Ok(Next::Closed)
            }
            Action::HangUp => Ok(Next::Closed),
            Action::Stall => {
                self.drain().await;
                Ok(Next::Closed)
            }
        }
    }

    async fn ehlo(&mut self, arg: &str, line: Option<String>) -> std::io::Result<bool> {
        self.greeted = true;
        self.tx = None;
        if let Some(line) = line {
            self.send(&line).await?;
            return Ok(true);
        }
        let mut lines = vec![
            format!("{NAME} greets {arg}"),
            "PIPELINING".to_string(),
            "8BITMIME".to_string(),
            "SIZE 10485760".to_string(),
        ];
        let starttls = matches!(self.shared.tls, ServerTls::Starttls(_));
        if starttls && !self.tls {
            lines.push("STARTTLS".to_string());
        }
        // Like most submission servers, AUTH is offered only once the session is encrypted.
        if self.shared.auth.is_some() && (self.tls || !starttls) {
            lines.push(format!("AUTH {}", self.shared.mechanisms));
        }
        if self.shared.dsn {
            lines.push("DSN".to_string());
        }
        lines.push("ENHANCEDSTATUSCODES".to_string());
        let last = lines.len() - 1;
        let mut reply = String::new();
        for (i, l) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            reply.push_str(&format!("250{sep}{l}\r\n"));
        }
        self.write_raw(reply.as_bytes()).await?;
        Ok(true)
    }

    async fn mail(&mut self, arg: &str, line: Option<String>) -> std::io::Result<bool> {
        let refusal = if !self.greeted {
            Some("503 5.5.1 send EHLO first")
        } else if self.shared.auth.is_some() && !self.authed {
            Some("530 5.7.0 authentication required")
        } else if self.tx.is_some() {
            Some("503 5.5.1 nested MAIL command")
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.send(refusal).await?;
            return Ok(true);
        }
        let Some(from) = path_of(arg, "FROM:") else {
            self.send("501 5.5.4 syntax: MAIL FROM:<address>").await?;
            return Ok(true);
        };
        let params = arg
            .split_once('>')
            .map_or("", |(_, rest)| rest.trim())
            .to_string();
        self.tx = Some(Transaction {
            from,
            params,
            rcpts: Vec::new(),
        });
        self.ok(line, "250 2.1.0 Ok").await
    }

    async fn rcpt(&mut self, rcpt: Option<String>, line: Option<String>) -> std::io::Result<bool> {
        let Some(tx) = &mut self.tx else {
            self.send("503 5.5.1 need MAIL before RCPT").await?;
            return Ok(true);
        };
        let Some(rcpt) = rcpt.filter(|r| !r.is_empty()) else {
            self.send("501 5.5.4 syntax: RCPT TO:<address>").await?;
            return Ok(true);
        };
        tx.rcpts.push(rcpt);
        self.ok(line, "250 2.1.5 Ok").await
    }

    async fn data(&mut self, line: Option<String>) -> std::io::Result<bool> {
        if self.tx.as_ref().is_none_or(|t| t.rcpts.is_empty()) {
            self.send("503 5.5.1 no valid recipients").await?;
            return Ok(true);
        }
        let go = line.unwrap_or_else(|| "354 end data with <CR><LF>.<CR><LF>".to_string());
        self.send(&go).await?;
        let mut data = Vec::new();
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(false);
            };
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            // RFC 5321 4.5.2: a line starting with a dot had one more dot added by the client.
            let line = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(line);
        }
        let tx = self.tx.take().expect("transaction checked above");
        let received = Received {
            mail_from: tx.from,
            mail_params: tx.params,
            rcpt_to: tx.rcpts,
            data,
            connection: self.id,
            tls: self.tls,
        };

        let event = Event {
            on: On::EndOfData,
            rcpt: None,
            tx_rcpts: &received.rcpt_to,
        };
        let action = self.shared.scripted(&event);
        let (reply, keep, open) = match action {
            None => (
                Some(format!("250 2.0.0 Ok: queued as {}", self.queue_id())),
                true,
                true,
            ),
            Some(Action::Reply(l)) => {
                let keep = positive(&l);
                (Some(l), keep, true)
            }
            Some(Action::ReplyAfter(wait, l)) => {
                tokio::time::sleep(wait).await;
                let keep = positive(&l);
                (Some(l), keep, true)
            }
            Some(Action::ReplyAndHangUp(l)) => {
                let keep = positive(&l);
                (Some(l), keep, false)
            }
            // The message was taken; only the reply is lost.
            Some(Action::HangUp) => (None, true, false),
            Some(Action::Stall) => {
                self.shared.state().messages.push(received);
                self.drain().await;
                return Ok(false);
            }
        };
        if keep {
            self.shared.state().messages.push(received);
        }
        if let Some(reply) = reply {
            self.send(&reply).await?;
        }
        Ok(open)
    }

    async fn auth(&mut self, arg: &str, line: Option<String>) -> std::io::Result<bool> {
        let Some((user, password)) = self.shared.auth.clone() else {
            self.send("502 5.5.1 AUTH not offered").await?;
            return Ok(true);
        };
        let mut words = arg.split_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next().map(str::to_string);
        let offered = self.shared.mechanisms.split(' ').any(|m| m == mechanism);
        let given = match mechanism.as_str() {
            _ if !offered => {
                self.send("504 5.5.4 unrecognized authentication type")
                    .await?;
                return Ok(true);
            }
            "PLAIN" => {
                let Some(payload) = self.response(initial, "").await? else {
                    return Ok(true);
                };
                let mut parts = payload.split(|&b| b == 0);
                let _authzid = parts.next();
                let authcid = parts.next().unwrap_or_default();
                let passwd = parts.next().unwrap_or_default();
                (lossy(authcid), lossy(passwd))
            }
            "LOGIN" => {
                let Some(u) = self.response(initial, "VXNlcm5hbWU6").await? else {
                    return Ok(true);
                };
                let Some(p) = self.response(None, "UGFzc3dvcmQ6").await? else {
                    return Ok(true);
                };
                (lossy(&u), lossy(&p))
            }
            _ => {
                self.send("504 5.5.4 unrecognized authentication type")
                    .await?;
                return Ok(true);
            }
        };
        let ok = given == (user, password);
        self.shared.state().auth_attempts.push(given);
        if ok {
            self.authed = true;
            self.ok(line, "235 2.7.0 authentication successful").await
        } else {
            self.send("535 5.7.8 authentication credentials invalid")
                .await?;
            Ok(true)
        }
    }

    /// The client's base64 answer to a 334 challenge (or the initial response it already
    /// gave); `None` after answering a cancel or bad base64.
    async fn response(
        &mut self,
        initial: Option<String>,
        challenge: &str,
    ) -> std::io::Result<Option<Vec<u8>>> {
        let text = match initial {
            Some(text) => text,
            None => {
                self.send(&format!("334 {challenge}")).await?;
                let Some(line) = self.read_line().await? else {
                    return Ok(None);
                };
                lossy(&line).trim().to_string()
            }
        };
        if text == "*" {
            self.send("501 5.0.0 authentication cancelled").await?;
            return Ok(None);
        }
        match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(_) => {
                self.send("501 5.5.2 cannot decode response").await?;
                Ok(None)
            }
        }
    }

    async fn starttls(&mut self, line: Option<String>) -> std::io::Result<bool> {
        let ServerTls::Starttls(config) = self.shared.tls.clone() else {
            self.send("502 5.5.1 STARTTLS not offered").await?;
            return Ok(true);
        };
        if self.tls {
            self.send("503 5.5.1 already encrypted").await?;
            return Ok(true);
        }
        self.ok(line, "220 2.0.0 ready to start TLS").await?;
        // Anything the client pipelined after STARTTLS is dropped with the old reader (RFC 3207
        // 4.2: it must not be acted on).
        let placeholder: Box<dyn Io> = Box::new(tokio::io::empty());
        let plain = std::mem::replace(&mut self.io, BufReader::new(placeholder)).into_inner();
        let Ok(tls) = tokio_rustls::TlsAcceptor::from(config).accept(plain).await else {
            return Ok(false);
        };
        self.io = BufReader::new(Box::new(tls));
        self.tls = true;
        // RFC 3207 4.2: the session starts over; the client must say EHLO again.
        self.greeted = false;
        self.authed = false;
        self.tx = None;
        Ok(true)
    }

    async fn ok(&mut self, line: Option<String>, default: &str) -> std::io::Result<bool> {
        let line = line.unwrap_or_else(|| default.to_string());
        self.send(&line).await?;
        Ok(true)
    }

    fn queue_id(&self) -> String {
        format!("{}.{}", self.id, self.shared.state().messages.len() + 1)
    }

    async fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let n = (&mut self.io)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\n") {
            // Over-long line or EOF in the middle of one: either way the session is over.
            return Ok(None);
        }
        Ok(Some(line))
    }

    async fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.write_raw(format!("{line}\r\n").as_bytes()).await
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let io = self.io.get_mut();
        io.write_all(bytes).await?;
        io.flush().await
    }

    /// Reads and discards until the client closes, so a stalled session ends with its client.
    async fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.io.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// The address inside `FROM:<...>` or `TO:<...>`, ignoring ESMTP parameters after it.
fn path_of(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

/// A 2xx or 3xx reply line.
fn positive(line: &str) -> bool {
    matches!(line.as_bytes().first(), Some(b'2' | b'3'))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
