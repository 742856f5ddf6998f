//! A scripted, in-process fake SMTP server for the integration tests: a std `TcpListener` on
//! 127.0.0.1:0 that accepts one connection and plays a fixed list of [`Step`]s on a thread —
//! send these bytes, expect that line, read the DATA payload, upgrade to TLS (rustls, with the
//! test PKI of [`super::certs`]), sleep, close.
//!
//! [`FakeServer::start_unix`] plays the same steps on a unix domain socket (for LMTP, RFC
//! 2033), without TLS.
//!
//! Owns: the server side of one SMTP session and the record of what the client sent.
//! Must not: be clever. It never answers on its own except in [`Step::QuitOrClose`]; it
//! never reorders or pipelines; it only listens on loopback. Every socket read and write has
//! a timeout ([`IO_TIMEOUT`]), and every loop has a bound, so a test can never hang on it.
//! A mismatch records the failure, closes the connection (the client sees a lost connection)
//! and [`FakeServer::finish`] panics with an account: the failed step, expected vs got, and
//! the whole exchange.
//!
//! RFC anchors: RFC 5321 §2.3.8 (lines end in CRLF), §4.5.2 (DATA ends with
//! `CRLF.CRLF`, dot-stuffing), RFC 3207 §4–§6 (STARTTLS; bytes after the 220 are what
//! [`Step::Send`] with two replies in one write lets a test inject).

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::certs::{bad_leaf, pki, BadCert};

/// Timeout of every socket read and write on the server side.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server waits for the client to connect.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`FakeServer::finish`] waits for the script thread.
const FINISH_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest line the server buffers before handing it over as is (binary junk, TLS records).
const MAX_LINE: usize = 4096;
/// Largest DATA payload accepted.
const MAX_DATA: usize = 16 * 1024 * 1024;
/// Longest [`Step::Sleep`] honoured.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// One action of the server's script, played in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write these bytes verbatim, in one write (several replies may be sent at once).
    Send(Cow<'static, str>),
    /// Read one CRLF-terminated line and require it to equal this (CRLF not included).
    Expect(String),
    /// Read one CRLF-terminated line and require it to start with this.
    ExpectPrefix(String),
    /// Read the DATA content up to and including the line `.`; store the raw bytes (still
    /// dot-stuffed, ending in `\r\n.\r\n`) in [`Session::data`].
    ReadData,
    /// Perform the server side of a TLS handshake (rustls, certificate from `pki()`); later
    /// steps run inside TLS. Fails if the client sent bytes before the handshake.
    StartTls,
    /// Offer the TLS handshake and require the client to abort it (certificate rejected);
    /// the connection is over afterwards.
    StartTlsRejected,
    /// Do nothing for this long (at most 30 s), e.g. to make the client time out.
    Sleep(Duration),
    /// Close the connection now (for lost-connection scenarios); the script ends here.
    Close,
    /// Require the client to close the connection without sending anything more.
    ExpectClose,
    /// Read these command lines, in order, and require that they all arrived in at most one
    /// socket read: the client wrote them as one group, without waiting for a reply (RFC
    /// 2920 PIPELINING). A line starting with `BDAT ` is followed by its chunk, which is
    /// read too (its bytes go to [`Session::chunks`]). The group must fit in one read
    /// (4 KiB).
    ExpectPipelined(Vec<String>),
    /// Read `BDAT n` or `BDAT n LAST` and exactly n bytes after it; the line goes to
    /// [`Session::received`], the bytes to [`Session::chunks`].
    ReadBdat,
    /// Like [`Step::Expect`], but the line must already have arrived with an earlier read
    /// (e.g. QUIT written in the same write as the end of data).
    ExpectBuffered(String),
    /// Read DATA content and require the client to close the connection before the
    /// end-of-data line `.` (a send abandoned part-way, so nothing is delivered); the
    /// bytes received go to [`Session::data`].
    ExpectDataCut,
    /// Let the client end politely or not: accept any number (at most 3) of `RSET` (answered
    /// 250), then either `QUIT` (answered 221, then the close) or a plain close. Anything else
    /// fails the step.
    QuitOrClose,
    /// Close this connection (if still open) and accept the client's next one on the same
    /// listener; the steps after it play on the new connection. A script with this step keeps
    /// its listener open until the script ends (others stop listening after the first
    /// connection).
    Reconnect,
    /// Write these bytes verbatim, in one write; unlike [`Step::Send`] they need not be
    /// UTF-8 (NUL, bytes above 127, half a UTF-8 sequence).
    SendBytes(Vec<u8>),
    /// Write `head`, then `unit` again and again until `total` bytes are out or the client
    /// has gone (a write error ends the step quietly: a client that gives up on a flood
    /// closes in the middle of it). For a 10 MB reply line, an endless multiline reply.
    Flood {
        head: Vec<u8>,
        unit: Vec<u8>,
        total: usize,
    },
    /// Write `bytes` one byte at a time, `every` apart (at most 30 s in all), stopping
    /// quietly when the client has gone: a server that trickles its reply.
    Trickle { bytes: Vec<u8>, every: Duration },
    /// Like [`Step::StartTlsRejected`], presenting the bad certificate `kind` instead of the
    /// test PKI's leaf: the client must abort the handshake.
    StartTlsRejectedWith(BadCert),
    /// Read and discard whatever the client sends until it closes (at most [`MAX_DATA`]
    /// bytes, each read bounded by [`IO_TIMEOUT`]), keeping the bytes in
    /// [`Session::drained`]: for clients that must give up in the middle of something
    /// (a TLS handshake disturbed by injected plaintext).
    Drain,
    /// Like [`Step::ReadData`], but only count the payload's bytes (into
    /// [`Session::data_sizes`]) instead of keeping them, with no size limit: a sink for big
    /// messages. The count includes the final `.\r\n`.
    CountData,
    /// Take any number (at most [`MAX_TRANSACTIONS`]) of mail transactions until `QUIT`,
    /// reading one command at a time and answering each in order: MAIL, RCPT, RSET and
    /// NOOP 250; DATA 354, the payload (into [`Session::data`]) and 250; `BDAT n [LAST]`
    /// its chunk (into [`Session::chunks`]) and 250; QUIT 221 (the step ends there, before
    /// the close). Anything else fails the step. For clients whose share of the messages
    /// is not known in advance (`postie batch --connections`).
    AcceptMail,
}

/// Most transactions [`Step::AcceptMail`] takes.
pub const MAX_TRANSACTIONS: usize = 10_000;

/// `Step::Send` of a string.
pub fn send(bytes: impl Into<Cow<'static, str>>) -> Step {
    Step::Send(bytes.into())
}

/// `Step::Expect` of a line.
pub fn expect(line: impl Into<String>) -> Step {
    Step::Expect(line.into())
}

/// `Step::ExpectPipelined` of these lines.
pub fn expect_pipelined(lines: &[&str]) -> Step {
    Step::ExpectPipelined(lines.iter().map(|l| l.to_string()).collect())
}

/// `Step::ExpectPrefix` of a line start.
pub fn expect_prefix(prefix: impl Into<String>) -> Step {
    Step::ExpectPrefix(prefix.into())
}

/// The server's greeting: `220 fake.test ESMTP postie-fake`.
pub fn greeting() -> Step {
    send("220 fake.test ESMTP postie-fake\r\n")
}

/// A (multiline when `exts` is not empty) 250 reply to EHLO advertising `exts`,
/// e.g. `ehlo_reply(&["STARTTLS", "AUTH PLAIN LOGIN"])`.
pub fn ehlo_reply(exts: &[&str]) -> String {
    let mut lines = vec!["fake.test greets postie.test"];
    lines.extend_from_slice(exts);
    let last = lines.len() - 1;
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i == last { ' ' } else { '-' };
        let _ = write!(out, "250{sep}{line}\r\n");
    }
    out
}

/// `EHLO postie.test` answered with [`ehlo_reply`]`(exts)`.
pub fn ehlo(exts: &[&str]) -> Vec<Step> {
    vec![expect("EHLO postie.test"), send(ehlo_reply(exts))]
}

/// A server that takes whatever share of a batch or queue run comes to it
/// ([`Step::AcceptMail`]), over `connections` sessions one after the other (a second
/// session waits in the listen queue until the first has ended): for `--connections N`.
pub fn pool_server(exts: &[&str], connections: usize) -> FakeServer {
    let mut script = Vec::new();
    for i in 0..connections {
        if i > 0 {
            script.push(Step::Reconnect);
        }
        script.push(greeting());
        script.extend(ehlo(exts));
        script.extend([Step::AcceptMail, Step::ExpectClose]);
    }
    FakeServer::start(script)
}

/// `MAIL FROM:<from>` and one `RCPT TO:<r>` per recipient, each answered 250.
pub fn envelope(from: &str, rcpts: &[&str]) -> Vec<Step> {
    let mut steps = vec![
        expect(format!("MAIL FROM:<{from}>")),
        send("250 2.1.0 sender ok\r\n"),
    ];
    for r in rcpts {
        steps.push(expect(format!("RCPT TO:<{r}>")));
        steps.push(send("250 2.1.5 recipient ok\r\n"));
    }
    steps
}

/// `DATA`, 354, the payload, then `final_reply` (e.g. `"250 2.0.0 queued\r\n"`).
pub fn data(final_reply: &'static str) -> Vec<Step> {
    vec![
        expect("DATA"),
        send("354 end data with <CR><LF>.<CR><LF>\r\n"),
        Step::ReadData,
        send(final_reply),
    ]
}

/// `STARTTLS` answered 220, then `then`: [`Step::StartTls`] for the handshake, or
/// [`Step::StartTlsRejected`] when the client must refuse the certificate.
pub fn starttls(then: Step) -> Vec<Step> {
    vec![
        expect("STARTTLS"),
        send("220 2.0.0 Ready to start TLS\r\n"),
        then,
    ]
}

/// `QUIT`, 221, and the client's close.
pub fn quit() -> Vec<Step> {
    vec![
        expect("QUIT"),
        send("221 2.0.0 fake.test closing\r\n"),
        Step::ExpectClose,
    ]
}

/// What the client did, returned by [`FakeServer::finish`].
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// Every command line received, in order, without CRLF (DATA content not included).
    pub received: Vec<String>,
    /// Each DATA payload, raw: dot-stuffed and ending in `\r\n.\r\n`.
    pub data: Vec<Vec<u8>>,
    /// Index into `received` of the first line read inside TLS, if TLS was started.
    pub tls_from: Option<usize>,
    /// For each line of `received`, how many socket reads the server had done when it
    /// took the line: lines with the same number came in one read (one write, usually).
    pub reads_at: Vec<usize>,
    /// Each BDAT chunk's bytes, exactly as received ([`Step::ReadBdat`],
    /// [`Step::ExpectPipelined`]).
    pub chunks: Vec<Vec<u8>>,
    /// Connections accepted (more than one only with [`Step::Reconnect`]).
    pub connections: usize,
    /// What [`Step::Drain`] read, raw.
    pub drained: Vec<u8>,
    /// The byte count of each payload read by [`Step::CountData`].
    pub data_sizes: Vec<u64>,
}

impl Session {
    /// Whether any received command line starts with `verb` (ASCII case-insensitive).
    pub fn saw(&self, verb: &str) -> bool {
        self.received.iter().any(|l| starts_with_ci(l, verb))
    }

    /// The lines received inside TLS (empty if TLS never started).
    pub fn received_in_tls(&self) -> &[String] {
        match self.tls_from {
            Some(i) => self.received.get(i..).unwrap_or(&[]),
            None => &[],
        }
    }
}

fn starts_with_ci(line: &str, prefix: &str) -> bool {
    line.len() >= prefix.len()
        && line.is_char_boundary(prefix.len())
        && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A running fake server. Call [`FakeServer::finish`] (or [`FakeServer::finish_if_connected`])
/// after the client has exited; dropping it unfinished is a test bug and panics.
pub struct FakeServer {
    /// The port the server listens on (on [`FakeServer::ip`]; 0 for a unix socket).
    pub port: u16,
    /// The loopback address it listens on: 127.0.0.1 unless started with
    /// [`FakeServer::start_on`].
    pub ip: IpAddr,
    /// The unix socket the server listens on, for [`FakeServer::start_unix`].
    pub socket: Option<PathBuf>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    done: Option<mpsc::Receiver<()>>,
    thread: Option<thread::JoinHandle<()>>,
    script: Vec<String>,
}

#[derive(Default)]
struct State {
    connected: bool,
    gave_up_waiting: bool,
    session: Session,
    /// Human-readable exchange: `C: ` received, `S: ` sent, `== ` events.
    log: Vec<String>,
    step: usize,
    failure: Option<String>,
    completed: bool,
}

impl State {
    fn fail(&mut self, msg: String) {
        if self.failure.is_none() {
            self.failure = Some(msg);
        }
    }
}

impl Session {
    /// The number `n` of each `RCPT TO:<r{n}@...>` line, per session (one starts at each
    /// EHLO), in order: which messages or queue entries each session carried.
    pub fn numbers_per_session(&self) -> Vec<Vec<usize>> {
        let mut sessions: Vec<Vec<usize>> = Vec::new();
        for line in &self.received {
            if line.starts_with("EHLO") {
                sessions.push(Vec::new());
            } else if let Some(rest) = line.strip_prefix("RCPT TO:<r") {
                let n = rest.split('@').next().and_then(|n| n.parse().ok());
                if let (Some(last), Some(n)) = (sessions.last_mut(), n) {
                    last.push(n);
                }
            }
        }
        sessions
    }

    /// What the session received, RSETs left out when `pipelined` (a group queued behind
    /// an unanswered one starts with RSET).
    pub fn received_but_rset(&self, pipelined: bool) -> Vec<String> {
        self.received
            .iter()
            .filter(|l| !pipelined || *l != "RSET")
            .cloned()
            .collect()
    }
}

/// A whole session of a pool connection: EHLO, for each number `n` in order MAIL FROM
/// `from`, RCPT TO `r{n}@y.example` and `end(n)` (DATA or its BDAT line), then QUIT.
pub fn pooled_transcript(
    from: &str,
    numbers: &[usize],
    end: impl Fn(usize) -> String,
) -> Vec<String> {
    let mut lines = vec!["EHLO postie.test".to_string()];
    for &n in numbers {
        lines.push(format!("MAIL FROM:<{from}>"));
        lines.push(format!("RCPT TO:<r{n}@y.example>"));
        lines.push(end(n));
    }
    lines.push("QUIT".into());
    lines
}

impl FakeServer {
    /// Bind 127.0.0.1:0 and play `script` on the first connection, on a new thread.
    pub fn start(script: Vec<Step>) -> FakeServer {
        FakeServer::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, script)
    }

    /// Bind `ip:port` (port 0: any free one) and play `script` there. `ip` must be a
    /// loopback address (127.0.0.2, 127.0.0.3 ... are all loopback): several servers on
    /// different addresses with the same port stand for several MX hosts. Panics if the
    /// address is taken; see [`FakeServer::try_start_on`].
    pub fn start_on(ip: IpAddr, port: u16, script: Vec<Step>) -> FakeServer {
        FakeServer::try_start_on(ip, port, script)
            .unwrap_or_else(|e| panic!("bind {}: {e}", SocketAddr::new(ip, port)))
    }

    /// [`FakeServer::start_on`], returning the bind error instead of panicking.
    pub fn try_start_on(ip: IpAddr, port: u16, script: Vec<Step>) -> io::Result<FakeServer> {
        assert!(
            ip.is_loopback(),
            "fake servers listen on loopback only, not {ip}"
        );
        let listener = TcpListener::bind(SocketAddr::new(ip, port))?;
        let port = listener.local_addr()?.port();
        Ok(FakeServer::spawn(
            Listener::Tcp(listener),
            ip,
            port,
            None,
            script,
        ))
    }

    /// Bind a unix domain socket at `path` (which must not exist yet; put it in a temporary
    /// directory) and play `script` on the first connection, on a new thread. No TLS.
    pub fn start_unix(path: &Path, script: Vec<Step>) -> FakeServer {
        let listener = UnixListener::bind(path).expect("bind the unix socket");
        FakeServer::spawn(
            Listener::Unix(listener),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
            Some(path.to_path_buf()),
            script,
        )
    }

    fn spawn(
        listener: Listener,
        ip: IpAddr,
        port: u16,
        socket: Option<PathBuf>,
        script: Vec<Step>,
    ) -> FakeServer {
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let described = script.iter().map(describe).collect();
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name(format!("fake-smtp-{port}"))
                .spawn(move || {
                    serve(listener, script, &state, &stop);
                    let _ = tx.send(());
                })
                .expect("spawn fake server thread")
        };
        FakeServer {
            port,
            ip,
            socket,
            state,
            stop,
            done: Some(rx),
            thread: Some(thread),
            script: described,
        }
    }

    /// `"IP:PORT"` (`"127.0.0.1:PORT"` for [`FakeServer::start`]), for `--server`.
    pub fn addr(&self) -> String {
        SocketAddr::new(self.ip, self.port).to_string()
    }

    /// Wait (bounded) for the script to end and return what the client did. Panics with a
    /// readable account if a step failed, the client never connected, or the script hung.
    /// Call it after the client has exited: a connection not yet made by then counts as none.
    pub fn finish(self) -> Session {
        self.finish_with("")
    }

    /// [`FakeServer::finish`], adding `context` (e.g. the client's exit status and stderr)
    /// to the panic message.
    pub fn finish_with(self, context: &str) -> Session {
        let ip = self.ip;
        match self.wait(context) {
            Some(session) => session,
            None => panic!(
                "fake SMTP server: the client never connected to {}\n{}",
                ip,
                context_block(context)
            ),
        }
    }

    /// Like [`FakeServer::finish_with`], but a client that never connected is not an error:
    /// returns `None` then (for runs that must fail before connecting, or must not connect).
    pub fn finish_if_connected(self, context: &str) -> Option<Session> {
        self.wait(context)
    }

    fn wait(mut self, context: &str) -> Option<Session> {
        self.stop.store(true, Ordering::SeqCst);
        let rx = self.done.take().expect("finish called once");
        let handle = self.thread.take().expect("finish called once");
        let ended = rx.recv_timeout(FINISH_TIMEOUT).is_ok();
        if ended {
            let _ = handle.join();
        }
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !ended {
            panic!(
                "fake SMTP server: script still running after {FINISH_TIMEOUT:?} (at step {})\n{}",
                st.step,
                self.account(&st, context)
            );
        }
        if !st.connected && st.gave_up_waiting && st.failure.is_none() {
            return None;
        }
        if let Some(failure) = &st.failure {
            panic!(
                "fake SMTP server: {failure}\n{}",
                self.account(&st, context)
            );
        }
        assert!(
            st.completed,
            "fake SMTP server: script did not run to the end\n{}",
            self.account(&st, context)
        );
        Some(st.session.clone())
    }

    fn account(&self, st: &State, context: &str) -> String {
        let mut out = String::from("--- script ---\n");
        for (i, step) in self.script.iter().enumerate() {
            let mark = if i == st.step && !st.completed {
                ">>"
            } else {
                "  "
            };
            let _ = writeln!(out, "{mark}{i:3} {step}");
        }
        out.push_str("--- exchange (C: client, S: server) ---\n");
        for line in &st.log {
            let _ = writeln!(out, "  {line}");
        }
        for (i, d) in st.session.data.iter().enumerate() {
            let _ = writeln!(
                out,
                "--- DATA payload {i} ({} bytes) ---\n{}",
                d.len(),
                String::from_utf8_lossy(d).escape_debug()
            );
        }
        out.push_str(&context_block(context));
        out
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if self.thread.is_some() && !thread::panicking() {
            panic!("FakeServer on port {} dropped without finish()", self.port);
        }
    }
}

fn context_block(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!("--- client ---\n{context}\n")
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Send(s) => format!("Send {:?}", s.as_ref()),
        Step::Expect(s) => format!("Expect {s:?}"),
        Step::ExpectPrefix(s) => format!("ExpectPrefix {s:?}"),
        Step::ReadData => "ReadData".into(),
        Step::ExpectPipelined(lines) => format!("ExpectPipelined {lines:?}"),
        Step::ReadBdat => "ReadBdat".into(),
        Step::ExpectDataCut => "ExpectDataCut".into(),
        Step::ExpectBuffered(s) => format!("ExpectBuffered {s:?}"),
        Step::StartTls => "StartTls".into(),
        Step::StartTlsRejected => "StartTlsRejected".into(),
        Step::Sleep(d) => format!("Sleep {d:?}"),
        Step::Close => "Close".into(),
        Step::ExpectClose => "ExpectClose".into(),
        Step::QuitOrClose => "QuitOrClose".into(),
        Step::Reconnect => "Reconnect".into(),
        Step::SendBytes(b) => format!("SendBytes {:?}", shorten(b)),
        Step::Flood { head, unit, total } => format!(
            "Flood {:?} then {:?} up to {total} bytes",
            shorten(head),
            shorten(unit)
        ),
        Step::Trickle { bytes, every } => {
            format!("Trickle {:?} one byte every {every:?}", shorten(bytes))
        }
        Step::StartTlsRejectedWith(kind) => format!("StartTlsRejectedWith {kind:?}"),
        Step::Drain => "Drain".into(),
        Step::CountData => "CountData".into(),
        Step::AcceptMail => "AcceptMail".into(),
    }
}

/// At most 60 bytes of `bytes`, lossily, for the script account.
fn shorten(bytes: &[u8]) -> String {
    let end = bytes.len().min(60);
    let mut out = String::from_utf8_lossy(&bytes[..end]).into_owned();
    if end < bytes.len() {
        let _ = write!(out, "... ({} bytes)", bytes.len());
    }
    out
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the server listens on.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Unix(l) => l.set_nonblocking(true),
        }
    }

    /// One connection, blocking with the I/O timeouts set, and who it came from.
    fn accept(&self) -> io::Result<(Conn, String)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept()?;
                stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(IO_TIMEOUT)))
                    .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))?;
                Ok((Conn::Plain(stream), peer.to_string()))
            }
            Listener::Unix(l) => {
                let (stream, _) = l.accept()?;
                stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(IO_TIMEOUT)))
                    .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))?;
                Ok((Conn::Unix(stream), "a unix socket client".into()))
            }
        }
    }
}

fn serve(listener: Listener, script: Vec<Step>, state: &Mutex<State>, stop: &AtomicBool) {
    let Some(conn) = accept(&listener, state, stop) else {
        return;
    };
    // Only a script that expects the client back keeps listening.
    let listener = script
        .iter()
        .any(|s| matches!(s, Step::Reconnect))
        .then_some(listener);
    let mut server = Server {
        conn: Some(conn),
        buf: Vec::new(),
        state,
        reads: 0,
        tls_config: None,
    };
    for (i, step) in script.iter().enumerate() {
        lock(state).step = i;
        let result = match (step, &listener) {
            (Step::Reconnect, Some(listener)) => {
                server.close();
                server.buf.clear();
                lock(state)
                    .log
                    .push("== server closed the connection; waiting for the next".into());
                match accept(listener, state, stop) {
                    Some(conn) => {
                        server.conn = Some(conn);
                        Ok(())
                    }
                    None => Err("the client did not connect again".to_string()),
                }
            }
            _ => server.step(step),
        };
        if let Err(msg) = result {
            let mut st = lock(state);
            st.log
                .push(format!("== step {i} failed; server closes the connection"));
            st.fail(format!("step {i} ({}) failed: {msg}", describe(step)));
            drop(st);
            server.close();
            return;
        }
    }
    server.close();
    let mut st = lock(state);
    st.step = script.len();
    st.completed = true;
}

fn accept(listener: &Listener, state: &Mutex<State>, stop: &AtomicBool) -> Option<Conn> {
    let deadline = Instant::now() + ACCEPT_TIMEOUT;
    if let Err(e) = listener.set_nonblocking() {
        lock(state).fail(format!("set_nonblocking: {e}"));
        return None;
    }
    loop {
        match listener.accept() {
            Ok((conn, peer)) => {
                let mut st = lock(state);
                st.connected = true;
                st.session.connections += 1;
                st.log.push(format!("== connection from {peer}"));
                return Some(conn);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::SeqCst) {
                    lock(state).gave_up_waiting = true;
                    return None;
                }
                if Instant::now() >= deadline {
                    lock(state).fail(format!("no connection within {ACCEPT_TIMEOUT:?}"));
                    return None;
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                lock(state).fail(format!("accept: {e}"));
                return None;
            }
        }
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Unix(UnixStream),
}

impl Conn {
    fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Unix(s) => s.flush(),
        }
    }
}

/// What one read of a line produced.
enum Line {
    /// A line ending in CRLF (the CRLF removed).
    Crlf(Vec<u8>),
    /// Bytes ending in a bare LF, or a chunk cut at `MAX_LINE`, or the tail before EOF.
    Odd(Vec<u8>),
    /// The client closed the connection (nothing buffered).
    Eof,
}

struct Server<'a> {
    conn: Option<Conn>,
    /// Bytes read from the client but not yet consumed.
    buf: Vec<u8>,
    state: &'a Mutex<State>,
    /// Socket reads that returned bytes so far (to tell one write from several).
    reads: usize,
    /// The TLS configuration for the next handshake when not the default one.
    tls_config: Option<Arc<ServerConfig>>,
}

type StepResult = Result<(), String>;

impl Server<'_> {
    fn log(&self, entry: String) {
        lock(self.state).log.push(entry);
    }

    fn conn(&mut self) -> Result<&mut Conn, String> {
        self.conn
            .as_mut()
            .ok_or_else(|| "the connection is already closed".to_string())
    }

    fn step(&mut self, step: &Step) -> StepResult {
        match step {
            Step::Send(bytes) => self.send(bytes),
            Step::Expect(want) => {
                let got = self.command()?;
                if &got == want {
                    Ok(())
                } else {
                    Err(format!("expected {want:?}, got {got:?}"))
                }
            }
            Step::ExpectPrefix(want) => {
                let got = self.command()?;
                if got.starts_with(want.as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected a line starting with {want:?}, got {got:?}"
                    ))
                }
            }
            Step::ReadData => self.read_data(),
            Step::ExpectPipelined(lines) => self.expect_pipelined(lines),
            Step::ExpectDataCut => self.expect_data_cut(),
            Step::ReadBdat => {
                let line = self.command()?;
                self.read_chunk(&line)
            }
            Step::ExpectBuffered(want) => {
                if !self.buf.contains(&b'\n') {
                    return Err(format!(
                        "expected {want:?} to have arrived already (sent in the same write as \
                         what came before), but nothing more is buffered"
                    ));
                }
                let got = self.command()?;
                if &got == want {
                    Ok(())
                } else {
                    Err(format!("expected {want:?}, got {got:?}"))
                }
            }
            Step::StartTls => self.start_tls(true),
            Step::StartTlsRejected => self.start_tls(false),
            Step::StartTlsRejectedWith(kind) => self.start_tls_with(server_config_for(*kind)),
            Step::SendBytes(bytes) => self.send_bytes(bytes),
            Step::Flood { head, unit, total } => self.flood(head, unit, *total),
            Step::Trickle { bytes, every } => self.trickle(bytes, *every),
            Step::Drain => self.drain(),
            Step::CountData => self.count_data(),
            Step::AcceptMail => self.accept_mail(),
            Step::Sleep(d) => {
                thread::sleep((*d).min(MAX_SLEEP));
                Ok(())
            }
            Step::Close => {
                self.close();
                self.log("== server closed the connection".into());
                Ok(())
            }
            Step::ExpectClose => self.expect_close(),
            Step::QuitOrClose => self.quit_or_close(),
            // Handled by `serve`, which owns the listener.
            Step::Reconnect => Err("Reconnect outside serve (a test support bug)".into()),
        }
    }

    fn send(&mut self, bytes: &str) -> StepResult {
        let tls = self.conn()?.is_tls();
        for line in bytes.split_inclusive('\n') {
            let mark = if tls { "S~" } else { "S:" };
            self.log(format!("{mark} {:?}", line));
        }
        let conn = self.conn()?;
        conn.write_all(bytes.as_bytes())
            .and_then(|()| conn.flush())
            .map_err(|e| format!("write failed ({e}): the client has probably gone"))
    }

    /// Read one line from the client (bounded by `MAX_LINE` and the socket timeout).
    fn read_line(&mut self) -> Result<Line, String> {
        let mut chunk = [0u8; 4096];
        // Each pass either returns or appends at least one byte; MAX_LINE bounds the passes.
        for _ in 0..=MAX_LINE {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.ends_with(b"\r\n") {
                    line.truncate(line.len() - 2);
                    return Ok(Line::Crlf(line));
                }
                return Ok(Line::Odd(line));
            }
            if self.buf.len() >= MAX_LINE {
                return Ok(Line::Odd(std::mem::take(&mut self.buf)));
            }
            let conn = self.conn()?;
            match conn.read(&mut chunk) {
                Ok(0) => {
                    return Ok(if self.buf.is_empty() {
                        Line::Eof
                    } else {
                        Line::Odd(std::mem::take(&mut self.buf))
                    })
                }
                Ok(n) => {
                    self.reads += 1;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!(
                        "the client sent no complete line within {IO_TIMEOUT:?} (buffered: {:?})",
                        String::from_utf8_lossy(&self.buf)
                    ))
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return Ok(if self.buf.is_empty() {
                        Line::Eof
                    } else {
                        Line::Odd(std::mem::take(&mut self.buf))
                    })
                }
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
        Err("line reader made no progress".into())
    }

    /// Read one command line; record it; fail on EOF or a line not ending in CRLF.
    fn command(&mut self) -> Result<String, String> {
        let tls = self.conn()?.is_tls();
        match self.read_line()? {
            Line::Crlf(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.record(tls, &text);
                Ok(text)
            }
            Line::Odd(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.record(tls, &text);
                Err(format!(
                    "got {text:?}, which is not a CRLF-terminated line (bare LF, binary, or cut by close)"
                ))
            }
            Line::Eof => {
                self.log("== client closed the connection".into());
                Err("the client closed the connection instead".into())
            }
        }
    }

    fn record(&self, tls: bool, text: &str) {
        let mut st = lock(self.state);
        if tls && st.session.tls_from.is_none() {
            st.session.tls_from = Some(st.session.received.len());
        }
        st.session.received.push(text.to_string());
        st.session.reads_at.push(self.reads);
        st.log
            .push(format!("{} {text:?}", if tls { "C~" } else { "C:" }));
    }

    fn read_data(&mut self) -> StepResult {
        let mut payload = Vec::new();
        loop {
            if payload.len() > MAX_DATA {
                return Err(format!("DATA longer than {MAX_DATA} bytes"));
            }
            match self.read_line()? {
                Line::Crlf(line) => {
                    let end = line == b".";
                    payload.extend_from_slice(&line);
                    payload.extend_from_slice(b"\r\n");
                    if end {
                        break;
                    }
                }
                Line::Odd(bytes) if bytes.ends_with(b"\n") => payload.extend_from_slice(&bytes),
                Line::Odd(bytes) if bytes.len() >= MAX_LINE => payload.extend_from_slice(&bytes),
                Line::Odd(bytes) => {
                    payload.extend_from_slice(&bytes);
                    return self.data_cut(payload);
                }
                Line::Eof => return self.data_cut(payload),
            }
        }
        let mut st = lock(self.state);
        st.log
            .push(format!("C: <DATA payload, {} bytes>", payload.len()));
        st.session.data.push(payload);
        Ok(())
    }

    fn expect_pipelined(&mut self, lines: &[String]) -> StepResult {
        let before = self.reads;
        for want in lines {
            let got = self.command()?;
            if &got != want {
                return Err(format!("expected {want:?}, got {got:?}"));
            }
            if starts_with_ci(&got, "BDAT ") {
                self.read_chunk(&got)?;
            }
        }
        let reads = self.reads - before;
        if reads > 1 {
            return Err(format!(
                "the group {lines:?} arrived in {reads} reads: the client did not write it at once"
            ));
        }
        self.log(format!("== the group arrived in {reads} read(s)"));
        Ok(())
    }

    /// After a `BDAT n [LAST]` line: exactly n bytes, stored in `Session::chunks`.
    fn read_chunk(&mut self, line: &str) -> StepResult {
        let mut words = line.split(' ');
        let size = match (words.next(), words.next().map(str::parse::<usize>)) {
            (Some(verb), Some(Ok(n))) if verb.eq_ignore_ascii_case("BDAT") => n,
            _ => return Err(format!("expected BDAT n [LAST], got {line:?}")),
        };
        if size > MAX_DATA {
            return Err(format!(
                "BDAT chunk of {size} bytes is too big for the fake"
            ));
        }
        let mut chunk = [0u8; 4096];
        // Each pass reads at least one byte or returns; MAX_DATA bounds the total.
        while self.buf.len() < size {
            let conn = self.conn()?;
            match conn.read(&mut chunk) {
                Ok(0) => {
                    return Err(format!(
                        "the connection closed inside a BDAT chunk after {} of {size} bytes",
                        self.buf.len()
                    ))
                }
                Ok(n) => {
                    self.reads += 1;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading a BDAT chunk: {e}")),
            }
        }
        let bytes: Vec<u8> = self.buf.drain(..size).collect();
        let mut st = lock(self.state);
        st.log.push(format!("C: <BDAT chunk, {size} bytes>"));
        st.session.chunks.push(bytes);
        Ok(())
    }

    fn expect_data_cut(&mut self) -> StepResult {
        let mut payload = Vec::new();
        loop {
            if payload.len() > MAX_DATA {
                return Err(format!("DATA longer than {MAX_DATA} bytes"));
            }
            match self.read_line()? {
                Line::Crlf(line) if line == b"." => {
                    lock(self.state).session.data.push(payload);
                    return Err("the client ended the data; it should have closed instead".into());
                }
                Line::Crlf(line) => {
                    payload.extend_from_slice(&line);
                    payload.extend_from_slice(b"\r\n");
                }
                Line::Odd(bytes) => payload.extend_from_slice(&bytes),
                Line::Eof => break,
            }
        }
        let mut st = lock(self.state);
        st.log.push(format!(
            "== the client closed inside DATA after {} bytes, as expected",
            payload.len()
        ));
        st.session.data.push(payload);
        drop(st);
        self.close();
        Ok(())
    }

    fn data_cut(&self, payload: Vec<u8>) -> StepResult {
        let len = payload.len();
        lock(self.state).session.data.push(payload);
        Err(format!(
            "the connection closed inside DATA after {len} bytes, before CRLF.CRLF"
        ))
    }

    fn send_bytes(&mut self, bytes: &[u8]) -> StepResult {
        let mark = if self.conn()?.is_tls() { "S~" } else { "S:" };
        self.log(format!("{mark} {:?}", shorten(bytes)));
        let conn = self.conn()?;
        conn.write_all(bytes)
            .and_then(|()| conn.flush())
            .map_err(|e| format!("write failed ({e}): the client has probably gone"))
    }

    fn flood(&mut self, head: &[u8], unit: &[u8], total: usize) -> StepResult {
        if unit.is_empty() {
            return Err("Flood needs a non-empty unit".into());
        }
        self.log(format!(
            "S: <flood: {:?}, then {:?} up to {total} bytes>",
            shorten(head),
            shorten(unit)
        ));
        // Whole units in 64 KiB writes, so the flood is quick but the client sees every
        // byte in order.
        let per_write = (64 * 1024 / unit.len()).max(1);
        let block = unit.repeat(per_write);
        let conn = self.conn()?;
        let mut sent = 0usize;
        let mut outcome = conn.write_all(head);
        sent += head.len();
        while outcome.is_ok() && sent < total {
            let n = block.len().min(total - sent);
            outcome = conn.write_all(&block[..n]);
            sent += n;
        }
        let outcome = outcome.and_then(|()| conn.flush());
        match outcome {
            Ok(()) => self.log(format!("== flood of {sent} bytes written")),
            Err(e) => self.log(format!(
                "== flood stopped after about {sent} bytes: {e} (the client went away)"
            )),
        }
        Ok(())
    }

    fn trickle(&mut self, bytes: &[u8], every: Duration) -> StepResult {
        self.log(format!(
            "S: <trickle {:?}, one byte every {every:?}>",
            shorten(bytes)
        ));
        let start = Instant::now();
        for (i, b) in bytes.iter().enumerate() {
            if start.elapsed() >= MAX_SLEEP {
                self.log(format!("== trickle stopped at {MAX_SLEEP:?}"));
                return Ok(());
            }
            let conn = self.conn()?;
            if let Err(e) = conn.write_all(&[*b]).and_then(|()| conn.flush()) {
                self.log(format!(
                    "== trickle stopped after {i} bytes: {e} (the client went away)"
                ));
                return Ok(());
            }
            thread::sleep(every);
        }
        self.log("== trickle done".into());
        Ok(())
    }

    fn drain(&mut self) -> StepResult {
        let mut got = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 16 * 1024];
        let outcome = loop {
            if got.len() > MAX_DATA {
                break Err(format!("drained more than {MAX_DATA} bytes"));
            }
            let conn = self.conn()?;
            match conn.read(&mut chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break Err(format!("the client did not close within {IO_TIMEOUT:?}"))
                }
                // A TLS stream or a reset ends the drain like a close.
                Err(_) => break Ok(()),
            }
        };
        self.log(format!("C: <drained {} bytes, then the close>", got.len()));
        lock(self.state).session.drained = got;
        self.close();
        outcome
    }

    fn count_data(&mut self) -> StepResult {
        const END: &[u8] = b"\r\n.\r\n";
        let mut count = 0u64;
        // The last 4 bytes counted, so an end mark split between reads is found.
        let mut tail: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 256 * 1024];
        let mut pending = std::mem::take(&mut self.buf);
        // Bounded: each pass consumes the bytes read or ends; the socket timeout ends a
        // stalled client.
        loop {
            if pending.is_empty() {
                let conn = self.conn()?;
                match conn.read(&mut chunk) {
                    Ok(0) => {
                        return Err(format!(
                            "the connection closed inside DATA after {count} bytes"
                        ))
                    }
                    Ok(n) => pending.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(format!("read error inside DATA after {count} bytes: {e}"))
                    }
                }
            }
            // An empty payload is just ".\r\n".
            if count == 0 && pending.starts_with(b".\r\n") {
                count = 3;
                self.buf = pending.split_off(3);
                break;
            }
            let mut hay = tail.clone();
            hay.extend_from_slice(&pending);
            if let Some(at) = hay.windows(END.len()).position(|w| w == END) {
                let used = at + END.len() - tail.len();
                count += used as u64;
                self.buf = pending.split_off(used);
                break;
            }
            count += pending.len() as u64;
            tail = hay[hay.len().saturating_sub(END.len() - 1)..].to_vec();
            pending.clear();
        }
        let mut st = lock(self.state);
        st.log
            .push(format!("C: <DATA payload, {count} bytes, counted>"));
        st.session.data_sizes.push(count);
        Ok(())
    }

    /// Offer a TLS handshake with `config` and require the client to abort it.
    fn start_tls_with(&mut self, config: Arc<ServerConfig>) -> StepResult {
        self.tls_config = Some(config);
        let outcome = self.start_tls(false);
        self.tls_config = None;
        outcome
    }

    fn start_tls(&mut self, must_succeed: bool) -> StepResult {
        if !self.buf.is_empty() {
            return Err(format!(
                "the client sent {:?} before the TLS handshake (RFC 3207 §4: it must wait)",
                String::from_utf8_lossy(&self.buf)
            ));
        }
        let tcp = match self.conn.take() {
            Some(Conn::Plain(tcp)) => tcp,
            Some(tls @ Conn::Tls(_)) => {
                self.conn = Some(tls);
                return Err("TLS is already active".into());
            }
            Some(unix @ Conn::Unix(_)) => {
                self.conn = Some(unix);
                return Err("the fake does no TLS over a unix socket".into());
            }
            None => return Err("the connection is already closed".into()),
        };
        let mut tcp = tcp;
        let config = self.tls_config.clone().unwrap_or_else(server_config);
        let mut tls =
            ServerConnection::new(config).map_err(|e| format!("rustls ServerConnection: {e}"))?;
        let mut outcome = Ok(());
        // Each complete_io call moves the handshake on or fails; the socket timeouts bound it.
        for _ in 0..64 {
            if !tls.is_handshaking() {
                break;
            }
            if let Err(e) = tls.complete_io(&mut tcp) {
                outcome = Err(e);
                break;
            }
        }
        if outcome.is_ok() && tls.is_handshaking() {
            outcome = Err(io::Error::other("handshake did not finish"));
        }
        match (outcome, must_succeed) {
            (Ok(()), true) => {
                let version = tls
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                self.log(format!("== TLS established ({version})"));
                self.conn = Some(Conn::Tls(Box::new(StreamOwned::new(tls, tcp))));
                Ok(())
            }
            (Err(e), true) => {
                let _ = tcp.shutdown(Shutdown::Both);
                Err(format!("TLS handshake failed: {e}"))
            }
            (Err(e), false) => {
                self.log(format!(
                    "== TLS handshake aborted by the client, as expected: {e}"
                ));
                let _ = tcp.shutdown(Shutdown::Both);
                Ok(())
            }
            (Ok(()), false) => {
                let _ = tcp.shutdown(Shutdown::Both);
                Err("the client completed the TLS handshake; it should have rejected the certificate".into())
            }
        }
    }

    fn expect_close(&mut self) -> StepResult {
        let tls = self.conn()?.is_tls();
        match self.read_line()? {
            Line::Eof => {
                self.log("== client closed the connection".into());
                self.close();
                Ok(())
            }
            Line::Crlf(bytes) | Line::Odd(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                self.record(tls, &text);
                Err(format!("expected the client to close, got {text:?}"))
            }
        }
    }

    fn accept_mail(&mut self) -> StepResult {
        // At most a MAIL, a few RCPTs, a DATA or BDAT and a RSET per transaction.
        for _ in 0..MAX_TRANSACTIONS * 8 {
            let line = self.command()?;
            let verb = line
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match verb.as_str() {
                "MAIL" | "RCPT" => self.send("250 2.1.0 ok\r\n")?,
                "RSET" | "NOOP" => self.send("250 2.0.0 ok\r\n")?,
                "DATA" => {
                    self.send("354 end data with <CR><LF>.<CR><LF>\r\n")?;
                    self.read_data()?;
                    self.send("250 2.0.0 Ok: queued\r\n")?;
                }
                "BDAT" => {
                    self.read_chunk(&line)?;
                    self.send("250 2.0.0 Ok: chunk taken\r\n")?;
                }
                "QUIT" => return self.send("221 2.0.0 fake.test closing\r\n"),
                _ => return Err(format!("expected a mail transaction or QUIT, got {line:?}")),
            }
        }
        Err(format!("more than {MAX_TRANSACTIONS} transactions"))
    }

    fn quit_or_close(&mut self) -> StepResult {
        for _ in 0..4 {
            let tls = self.conn()?.is_tls();
            let text = match self.read_line()? {
                Line::Eof => {
                    self.log("== client closed the connection".into());
                    self.close();
                    return Ok(());
                }
                Line::Crlf(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.record(tls, &text);
                    text
                }
                Line::Odd(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.record(tls, &text);
                    return Err(format!("expected RSET, QUIT or a close, got {text:?}"));
                }
            };
            if text.eq_ignore_ascii_case("QUIT") {
                self.send("221 2.0.0 fake.test closing\r\n")?;
                return self.expect_close();
            } else if text.eq_ignore_ascii_case("RSET") {
                self.send("250 2.0.0 reset\r\n")?;
            } else {
                return Err(format!("expected RSET, QUIT or a close, got {text:?}"));
            }
        }
        Err("more than 3 RSETs".into())
    }

    fn close(&mut self) {
        match self.conn.take() {
            Some(Conn::Plain(tcp)) => {
                let _ = tcp.shutdown(Shutdown::Both);
            }
            Some(Conn::Tls(mut s)) => {
                s.conn.send_close_notify();
                let _ = s.flush();
                let _ = s.sock.shutdown(Shutdown::Both);
            }
            Some(Conn::Unix(s)) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            None => {}
        }
    }
}

/// The rustls server configuration (ring provider, the test PKI's leaf), built once.
fn server_config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let pki = pki();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(pki.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
            )
            .expect("server certificate");
        Arc::new(config)
    }))
}

/// A rustls server configuration presenting the bad certificate `kind`.
fn server_config_for(kind: BadCert) -> Arc<ServerConfig> {
    let (cert, key) = bad_leaf(kind);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.clone())),
        )
        .expect("server certificate");
    Arc::new(config)
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.received.iter().enumerate() {
            let mark = if self.tls_from.is_some_and(|t| i >= t) {
                "C~"
            } else {
                "C:"
            };
            writeln!(f, "{mark} {line:?}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Self-tests: drive the fake server with a raw TcpStream (and a rustls client).
    use super::*;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::ServerName;
    use std::io::{BufRead, BufReader};

    fn connect(server: &FakeServer) -> TcpStream {
        let s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn read_reply(r: &mut impl BufRead) -> String {
        let mut all = String::new();
        for _ in 0..20 {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        all
    }

    #[test]
    fn plain_dialogue_with_data_is_recorded() {
        let script = [
            vec![greeting()],
            ehlo(&["8BITMIME", "SIZE 1000"]),
            envelope("a@x.test", &["b@y.test"]),
            data("250 2.0.0 queued\r\n"),
            quit(),
        ]
        .concat();
        let server = FakeServer::start(script);
        let mut s = connect(&server);
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert_eq!(read_reply(&mut r), "220 fake.test ESMTP postie-fake\r\n");
        s.write_all(b"EHLO postie.test\r\n").unwrap();
        assert_eq!(
            read_reply(&mut r),
            "250-fake.test greets postie.test\r\n250-8BITMIME\r\n250 SIZE 1000\r\n"
        );
        // Pipelined on purpose: the server's buffer must keep the rest.
        s.write_all(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n")
            .unwrap();
        assert!(read_reply(&mut r).starts_with("250 "));
        assert!(read_reply(&mut r).starts_with("250 "));
        assert!(read_reply(&mut r).starts_with("354 "));
        s.write_all(b"Subject: t\r\n\r\n..dot\r\n.\r\n").unwrap();
        assert!(read_reply(&mut r).starts_with("250 "));
        s.write_all(b"QUIT\r\n").unwrap();
        assert!(read_reply(&mut r).starts_with("221 "));
        drop(r);
        drop(s);
        let session = server.finish();
        assert_eq!(
            session.received,
            [
                "EHLO postie.test",
                "MAIL FROM:<a@x.test>",
                "RCPT TO:<b@y.test>",
                "DATA",
                "QUIT"
            ]
        );
        assert_eq!(
            session.data,
            vec![b"Subject: t\r\n\r\n..dot\r\n.\r\n".to_vec()]
        );
        assert_eq!(session.tls_from, None);
        assert!(session.saw("rcpt to:"));
        assert!(!session.saw("AUTH"));
    }

    #[test]
    fn unix_socket_plays_the_same_steps_and_refuses_tls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lmtp.sock");
        let server = FakeServer::start_unix(
            &path,
            vec![
                greeting(),
                expect("LHLO postie.test"),
                send("250 fake.test\r\n"),
                Step::ExpectClose,
            ],
        );
        assert_eq!(
            (server.port, server.socket.as_deref()),
            (0, Some(path.as_path()))
        );
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert_eq!(read_reply(&mut r), "220 fake.test ESMTP postie-fake\r\n");
        s.write_all(b"LHLO postie.test\r\n").unwrap();
        assert_eq!(read_reply(&mut r), "250 fake.test\r\n");
        drop(r);
        drop(s);
        assert_eq!(server.finish().received, ["LHLO postie.test"]);

        let path = dir.path().join("tls.sock");
        let server = FakeServer::start_unix(&path, vec![greeting(), Step::StartTls]);
        let s = UnixStream::connect(&path).unwrap();
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.finish()));
        drop(s);
        let msg = failed.unwrap_err();
        let msg = msg.downcast_ref::<String>().map_or("", String::as_str);
        assert!(msg.contains("no TLS over a unix socket"), "{msg}");
    }

    #[test]
    fn ehlo_reply_without_extensions_is_one_line() {
        assert_eq!(ehlo_reply(&[]), "250 fake.test greets postie.test\r\n");
    }

    #[test]
    fn mismatch_panics_with_expected_got_and_log() {
        let server = FakeServer::start([vec![greeting()], ehlo(&[])].concat());
        let mut s = connect(&server);
        let mut r = BufReader::new(s.try_clone().unwrap());
        read_reply(&mut r);
        s.write_all(b"HELO wrong.test\r\n").unwrap();
        // The server closes after the mismatch.
        let mut rest = String::new();
        let _ = r.read_line(&mut rest);
        assert_eq!(rest, "");
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            server.finish_with("exit status: 99")
        }))
        .unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        for want in [
            "step 1",
            "expected \"EHLO postie.test\", got \"HELO wrong.test\"",
            "C: \"HELO wrong.test\"",
            ">>  1 Expect",
            "exit status: 99",
        ] {
            assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
        }
    }

    #[test]
    fn expect_prefix_matches_the_line_start_only() {
        let server = FakeServer::start(vec![
            expect_prefix("AUTH PLAIN "),
            send("235 ok\r\n"),
            expect_prefix("MAIL FROM:"),
        ]);
        let mut s = connect(&server);
        let mut r = BufReader::new(s.try_clone().unwrap());
        s.write_all(b"AUTH PLAIN AGEAYg==\r\n").unwrap();
        assert_eq!(read_reply(&mut r), "235 ok\r\n");
        s.write_all(b"RCPT TO:<MAIL FROM:>\r\n").unwrap();
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.finish())).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains(
                "expected a line starting with \"MAIL FROM:\", got \"RCPT TO:<MAIL FROM:>\""
            ),
            "{msg}"
        );
    }

    #[test]
    fn bare_lf_command_is_a_failure() {
        let server = FakeServer::start(vec![expect("NOOP")]);
        let mut s = connect(&server);
        s.write_all(b"NOOP\n").unwrap();
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.finish())).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("not a CRLF-terminated line"), "{msg}");
    }

    #[test]
    fn no_connection_is_reported_or_tolerated() {
        let server = FakeServer::start(vec![greeting()]);
        assert!(server.finish_if_connected("").is_none());
        let server = FakeServer::start(vec![greeting()]);
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.finish())).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("never connected"), "{msg}");
    }

    #[test]
    fn two_replies_in_one_write_arrive_together_then_expect_close() {
        let server = FakeServer::start(vec![
            send("220 go ahead\r\n250 junk\r\n"),
            Step::ExpectClose,
        ]);
        let mut s = connect(&server);
        // Give the single write time to land, then one read must see both replies.
        thread::sleep(Duration::from_millis(100));
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"220 go ahead\r\n250 junk\r\n");
        drop(s);
        assert!(server.finish().received.is_empty());
    }

    #[test]
    fn expect_close_fails_when_the_client_talks() {
        let server = FakeServer::start(vec![Step::ExpectClose]);
        let mut s = connect(&server);
        s.write_all(b"QUIT\r\n").unwrap();
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.finish())).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("expected the client to close, got \"QUIT\""),
            "{msg}"
        );
    }

    #[test]
    fn quit_or_close_accepts_rset_then_quit() {
        let server = FakeServer::start(vec![Step::QuitOrClose]);
        let mut s = connect(&server);
        let mut r = BufReader::new(s.try_clone().unwrap());
        s.write_all(b"RSET\r\n").unwrap();
        assert!(read_reply(&mut r).starts_with("250 "));
        s.write_all(b"QUIT\r\n").unwrap();
        assert!(read_reply(&mut r).starts_with("221 "));
        drop(r);
        drop(s);
        assert_eq!(server.finish().received, ["RSET", "QUIT"]);
    }

    fn client_config(ca: &std::path::Path) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    #[test]
    fn starttls_upgrade_verifies_against_the_test_ca() {
        let script = [
            vec![greeting()],
            ehlo(&["STARTTLS"]),
            vec![
                expect("STARTTLS"),
                send("220 2.0.0 ready\r\n"),
                Step::StartTls,
            ],
            ehlo(&["AUTH PLAIN"]),
            quit(),
        ]
        .concat();
        let server = FakeServer::start(script);
        let mut s = connect(&server);
        let mut r = BufReader::new(s.try_clone().unwrap());
        read_reply(&mut r);
        s.write_all(b"EHLO postie.test\r\n").unwrap();
        read_reply(&mut r);
        s.write_all(b"STARTTLS\r\n").unwrap();
        assert!(read_reply(&mut r).starts_with("220 "));
        drop(r);
        let server_name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = ClientConnection::new(client_config(&pki().ca_pem), server_name).unwrap();
        let tls = StreamOwned::new(conn, s);
        let mut r = BufReader::new(tls);
        r.get_mut().write_all(b"EHLO postie.test\r\n").unwrap();
        assert_eq!(
            read_reply(&mut r),
            "250-fake.test greets postie.test\r\n250 AUTH PLAIN\r\n"
        );
        r.get_mut().write_all(b"QUIT\r\n").unwrap();
        assert!(read_reply(&mut r).starts_with("221 "));
        let mut tls = r.into_inner();
        tls.conn.send_close_notify();
        let _ = tls.flush();
        drop(tls);
        let session = server.finish();
        assert_eq!(session.tls_from, Some(2));
        assert_eq!(session.received_in_tls(), ["EHLO postie.test", "QUIT"]);
    }

    #[test]
    fn starttls_rejected_by_a_client_trusting_another_ca() {
        let server = FakeServer::start(vec![Step::StartTlsRejected]);
        let s = connect(&server);
        let server_name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(
            client_config(super::super::certs::other_ca_pem()),
            server_name,
        )
        .unwrap();
        let mut tls = StreamOwned::new(conn, s);
        let err = tls.write_all(b"EHLO x\r\n").and_then(|()| tls.flush());
        let err = match err {
            Err(e) => e,
            Ok(()) => tls.read(&mut [0u8; 16]).unwrap_err(),
        };
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
        drop(tls);
        server.finish();
    }

    #[test]
    fn pki_files_exist_with_modes() {
        use std::os::unix::fs::PermissionsExt;
        let p = pki();
        for f in [
            &p.ca_pem,
            &p.cert_pem,
            &p.key_pem,
            super::super::certs::other_ca_pem(),
        ] {
            let meta = std::fs::metadata(f).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o644, "{}", f.display());
        }
        let dir = std::fs::metadata(p.ca_pem.parent().unwrap()).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o755);
        assert!(std::fs::read_to_string(&p.key_pem)
            .unwrap()
            .contains("PRIVATE KEY"));
    }
}
