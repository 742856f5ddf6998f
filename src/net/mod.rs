//! The connection: the only place bytes cross the wire.
//!
//! Every command goes out through [`Connection::send`] and every reply comes in through
//! [`Connection::read_reply`]; both write the transcript, with commands redacted here so
//! that no other code can leak a secret. Every read and write first sets the socket timeout
//! of its [`Phase`], and a timeout or a broken connection is reported with that phase.
//! STARTTLS upgrades the connection by value ([`Connection::starttls`]) and refuses
//! plaintext the server sent after its 220 (RFC 3207 §6).
//!
//! Writes are grouped (RFC 2920 PIPELINING): [`Connection::queue`] adds a command to an
//! outgoing buffer (and its redacted line to the transcript, in order), and the buffer
//! goes out in one `write` when a reply is read, when it is flushed, or when message data
//! fills it past [`FLUSH_AT`]. So MAIL, every RCPT and DATA (or a small `BDAT n LAST` with
//! its payload) leave in one segment, the end-of-data mark and a pipelined QUIT in
//! another, and message data in large writes (one TLS record group each, never a write
//! per line): with TCP_NODELAY on, postie's own writes cause no 40 ms Nagle/delayed-ACK
//! stall, because nothing small is ever written while an earlier small write waits for
//! its ACK. The server's writes can: after a TLS handshake it sends its session tickets
//! and then its greeting or EHLO reply in separate segments, and its Nagle waits for our
//! ACK of the first; so reads on TLS connections set TCP_QUICKACK first ([`quick_ack`]).
//!
//! The connection is TCP, or a unix domain socket ([`Connection::open_unix`], for LMTP
//! delivery agents, RFC 2033 §1): same dialogue and timeouts, no TLS, no IP peer.

pub mod certinfo;
pub mod timeout;
pub mod tls;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rustls::{ClientConnection, StreamOwned};

use crate::error::Error;
use crate::smtp::command::Command;
use crate::smtp::reply::{self, Reply};
use crate::trace;
use crate::transcript::Transcript;
use timeout::{Phase, Timeouts};

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// A local unix domain socket; never TLS.
    Unix(UnixStream),
}

impl Stream {
    /// Set the socket's read timeout. Only a zero duration fails, which callers never give.
    fn set_read_timeout(&self, t: Duration) {
        let _ = match self {
            Stream::Plain(s) => s.set_read_timeout(Some(t)),
            Stream::Tls(s) => s.sock.set_read_timeout(Some(t)),
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
        };
    }

    fn set_write_timeout(&self, t: Duration) {
        let _ = match self {
            Stream::Plain(s) => s.set_write_timeout(Some(t)),
            Stream::Tls(s) => s.sock.set_write_timeout(Some(t)),
            Stream::Unix(s) => s.set_write_timeout(Some(t)),
        };
    }
}

/// TCP_QUICKACK (Linux): acknowledge at once instead of holding the ACK up to 40 ms. A
/// server writes its TLS session tickets and then its greeting or EHLO reply as separate
/// small segments, and its Nagle algorithm holds the second until the first is
/// acknowledged; with our delayed ACK that is a 40 ms stall per TLS connection. Linux
/// clears the flag as it goes, so it is set again before every read of a TLS connection
/// (and of its handshake). A no-op elsewhere; a failure only costs the stall.
fn quick_ack(tcp: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = tcp;
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => {
                quick_ack(&s.sock);
                s.read(buf)
            }
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// An open connection to one SMTP server.
pub struct Connection {
    stream: Stream,
    /// Bytes received but not yet parsed into a reply.
    buf: Vec<u8>,
    host: String,
    /// The address connected to; `None` for a unix domain socket.
    peer: Option<SocketAddr>,
    timeouts: Timeouts,
    transcript: Transcript,
    /// When the last command went out (or the connection opened), for reply latency.
    last_sent: Instant,
    /// When the last reply was complete: pipelined replies all answer one write, so each
    /// is waited for only from the later of this and `last_sent` (the waits then add up
    /// to no more than the dialogue took).
    last_reply: Instant,
    /// Queued bytes not yet written: commands and message data (see the module docs).
    out: Vec<u8>,
    /// The phase of the oldest queued bytes, for the write timeout and error messages.
    out_phase: Phase,
    /// Inside DATA: message data has been written but not the end-of-data mark. A QUIT now
    /// would be message text, so [`Connection::in_data`] tells the session to close instead.
    in_data: bool,
    /// QUIT has been queued or sent (pipelined after the end of data); only its reply is left.
    quit_sent: bool,
    /// A mail transaction may be open on the server: MAIL was accepted and no reply since
    /// has ended the transaction for sure (see [`Connection::set_transaction_open`]).
    transaction_open: bool,
    /// -vv: message data not yet shown because its line is not complete.
    partial: Vec<u8>,
    /// The socket's read and write timeouts as last set: setting them again to the same
    /// value is a system call per command saved (batch sends thousands of commands).
    timeouts_set: Cell<(Option<Duration>, Option<Duration>)>,
}

/// Queued bytes past this size are written at once: the size of the writes that carry
/// message data (big enough for few syscalls and full TLS records, small enough to keep
/// memory flat whatever the message size).
pub const FLUSH_AT: usize = 64 * 1024;

/// How long a failed write waits for a reply the server may have sent before closing.
const WAITING_REPLY: Duration = Duration::from_secs(2);

/// A read or write error in a phase, as a typed error.
fn io_failure(phase: Phase, after: Duration, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout { phase, after },
        _ => Error::Lost { phase, source: e },
    }
}

impl Connection {
    /// Connect to the first of `addrs` that answers, sharing one connect budget among them,
    /// then (for implicit TLS) do the TLS handshake.
    pub fn open(
        host: &str,
        addrs: &[SocketAddr],
        implicit_tls: Option<&tls::Tls>,
        timeouts: Timeouts,
        mut transcript: Transcript,
    ) -> Result<Connection> {
        let budget = timeouts.for_phase(Phase::Connect);
        let start = Instant::now();
        let mut failures = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let left = budget.saturating_sub(start.elapsed());
            if left.is_zero() {
                failures.push(format!("{addr}: connect budget used up"));
                break;
            }
            // An equal share of what is left for each address still to try.
            let share = (left / (addrs.len() - i) as u32).max(Duration::from_millis(100));
            transcript.info(&format!("Trying {addr}..."));
            match TcpStream::connect_timeout(addr, share) {
                Ok(tcp) => {
                    transcript.info(&format!("Connected to {addr}"));
                    transcript.trace().record(|t| {
                        t.attempts.push(trace::Attempt {
                            addr: *addr,
                            error: None,
                        });
                        t.peer = Some(*addr);
                    });
                    let _ = tcp.set_nodelay(true);
                    let conn = Connection {
                        stream: Stream::Plain(tcp),
                        buf: Vec::new(),
                        host: host.to_string(),
                        peer: Some(*addr),
                        timeouts,
                        transcript,
                        last_sent: Instant::now(),
                        last_reply: Instant::now(),
                        timeouts_set: Cell::default(),
                        out: Vec::new(),
                        out_phase: Phase::Connect,
                        in_data: false,
                        quit_sent: false,
                        transaction_open: false,
                        partial: Vec::new(),
                    };
                    return match implicit_tls {
                        Some(config) => conn.handshake(config),
                        None => Ok(conn),
                    };
                }
                Err(e) => {
                    let why = match e.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                            format!("timed out after {} ms", share.as_millis())
                        }
                        _ => e.to_string(),
                    };
                    transcript.error(&format!("{addr}: {why}"));
                    transcript.trace().record(|t| {
                        t.attempts.push(trace::Attempt {
                            addr: *addr,
                            error: Some(why.clone()),
                        })
                    });
                    failures.push(format!("{addr}: {why}"));
                }
            }
        }
        // "cannot connect to 127.0.0.1:25: refused", or with a name, every address tried.
        let why = failures.join("; ");
        let msg = match addrs {
            [only] if only.ip().to_string() == host => format!("cannot connect to {why}"),
            _ => format!("cannot connect to {host}: {why}"),
        };
        Err(Error::Connect(msg).into())
    }

    /// Connect to the unix domain socket at `path` (no TLS: the socket is local). The
    /// transcript and error messages name the path; a missing socket or one nobody listens
    /// on is a connection failure like a refused TCP connect (exit 75, retry later: the
    /// delivery agent is probably not running yet).
    pub fn open_unix(
        path: &Path,
        timeouts: Timeouts,
        mut transcript: Transcript,
    ) -> Result<Connection> {
        let shown = path.display().to_string();
        transcript.info(&format!("Trying unix socket {shown}..."));
        // std has no connect timeout for unix sockets; a local connect does not wait for a
        // network, and every later read and write is bounded by its phase's timeout.
        match UnixStream::connect(path) {
            Ok(stream) => {
                transcript.info(&format!("Connected to {shown}"));
                Ok(Connection {
                    stream: Stream::Unix(stream),
                    buf: Vec::new(),
                    host: shown,
                    peer: None,
                    timeouts,
                    transcript,
                    last_sent: Instant::now(),
                    last_reply: Instant::now(),
                    out: Vec::new(),
                    out_phase: Phase::Connect,
                    in_data: false,
                    quit_sent: false,
                    transaction_open: false,
                    partial: Vec::new(),
                    timeouts_set: Cell::default(),
                })
            }
            Err(e) => {
                let why = format!("cannot connect to unix socket {shown}: {e}");
                transcript.error(&why);
                Err(Error::Connect(why).into())
            }
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The name of the host connected to, as the route gave it (the name TLS checks);
    /// `None` over a unix domain socket.
    pub fn host(&self) -> Option<&str> {
        self.peer.is_some().then_some(self.host.as_str())
    }

    /// The IP address and port connected to; `None` over a unix domain socket.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// This end's IP address; `None` over a unix domain socket.
    pub fn local_ip(&self) -> Option<std::net::IpAddr> {
        let addr = match &self.stream {
            Stream::Plain(s) => s.local_addr(),
            Stream::Tls(s) => s.sock.local_addr(),
            Stream::Unix(_) => return None,
        };
        addr.ok().map(|a| a.ip())
    }

    pub fn transcript(&mut self) -> &mut Transcript {
        &mut self.transcript
    }

    fn set_timeouts(&self, phase: Phase) -> Duration {
        // QUIT after a failure must not hide the phase the failure happened in.
        if phase != Phase::Quit {
            self.transcript.trace().record(|t| t.phase = Some(phase));
        }
        let t = self.timeouts.for_phase(phase);
        // Setting a timeout only fails for a zero duration, which Timeouts never gives.
        self.set_read_timeout(t);
        let (read, write) = self.timeouts_set.get();
        if write != Some(t) {
            self.stream.set_write_timeout(t);
            self.timeouts_set.set((read, Some(t)));
        }
        t
    }

    /// The socket's read timeout, set only when it changes.
    fn set_read_timeout(&self, t: Duration) {
        let (read, write) = self.timeouts_set.get();
        if read != Some(t) {
            self.stream.set_read_timeout(t);
            self.timeouts_set.set((Some(t), write));
        }
    }

    /// Send one command now (with anything queued before it); the transcript shows its
    /// redacted form.
    pub fn send(&mut self, cmd: &Command, phase: Phase) -> Result<()> {
        self.queue(cmd, phase);
        self.flush_out()
    }

    /// Queue one command for the next write (RFC 2920 pipelining: the caller reads the
    /// replies afterwards, in order). The transcript shows it now, redacted, so the
    /// transcript lists the commands in the order they go out.
    pub fn queue(&mut self, cmd: &Command, phase: Phase) {
        let tls = self.is_tls();
        self.transcript.sent(&cmd.redacted(), tls);
        if *cmd == Command::Quit {
            self.quit_sent = true;
        }
        self.queue_raw(&cmd.to_wire(), phase);
    }

    fn queue_raw(&mut self, bytes: &[u8], phase: Phase) {
        if self.out.is_empty() {
            self.out_phase = phase;
        }
        self.out.extend_from_slice(bytes);
    }

    /// Queue message bytes (a DATA payload already dot-stuffed, or a BDAT chunk's bytes),
    /// shown line by line at -vv; written at once when the queue passes [`FLUSH_AT`].
    pub fn queue_data(&mut self, bytes: &[u8]) -> Result<()> {
        self.show_data(bytes);
        if self.out.len() + bytes.len() <= FLUSH_AT {
            self.queue_raw(bytes, Phase::DataBlock);
            if self.out.len() < FLUSH_AT {
                return Ok(());
            }
            return self.flush_out();
        }
        // Large: what is queued goes first, then the bytes themselves in one write_all,
        // without another copy.
        self.flush_out()?;
        let after = self.set_timeouts(Phase::DataBlock);
        let result = self.stream.write_all(bytes);
        self.last_sent = Instant::now();
        result.map_err(|e| self.write_failed(Phase::DataBlock, after, e))
    }

    /// A write failed. A server that refuses a message often says why and closes (Exim's
    /// 552 for a message too big, then the close that breaks the pipe): a reply already
    /// waiting is read (briefly: it is there or it is not) and is the error, so the
    /// outcome does not depend on how far the write got. Otherwise the write's failure.
    fn write_failed(&mut self, phase: Phase, after: Duration, e: io::Error) -> anyhow::Error {
        let failure = io_failure(phase, after, e);
        if !matches!(failure, Error::Lost { .. }) {
            return failure.into();
        }
        self.out.clear();
        match self.waiting_reply(after.min(WAITING_REPLY)) {
            Some(reply) => {
                let tls = self.is_tls();
                self.transcript.received(&reply, tls, None);
                let what = match phase {
                    Phase::DataBlock | Phase::DataEnd => "the message".to_string(),
                    other => other.to_string(),
                };
                Error::Reply { phase, what, reply }.into()
            }
            None => failure.into(),
        }
    }

    /// A complete reply that is already on its way, within `wait`; `None` when the
    /// connection ends or the time passes first.
    fn waiting_reply(&mut self, wait: Duration) -> Option<Reply> {
        let deadline = Instant::now() + wait;
        let mut chunk = [0u8; 8192];
        loop {
            if let Ok(Some((reply, used))) = reply::parse(&self.buf) {
                self.buf.drain(..used);
                return Some(reply);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.set_read_timeout(left.max(Duration::from_millis(1)));
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// At -vv, message data line by line.
    fn show_data(&mut self, bytes: &[u8]) {
        if self.transcript.level() < 2 {
            return;
        }
        let tls = self.is_tls();
        self.partial.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(i) = self.partial[start..].windows(2).position(|w| w == b"\r\n") {
            let end = start + i;
            self.transcript.data_line(&self.partial[start..end], tls);
            start = end + 2;
        }
        self.partial.drain(..start);
        // A binary body may have no line end for megabytes: show it in pieces instead of
        // holding it.
        if self.partial.len() > FLUSH_AT {
            let piece = std::mem::take(&mut self.partial);
            self.transcript.data_line(&piece, tls);
        }
    }

    /// Write everything queued, in one write.
    pub fn flush_out(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let phase = self.out_phase;
        let after = self.set_timeouts(phase);
        let result = self
            .stream
            .write_all(&self.out)
            .and_then(|()| self.stream.flush());
        // A reply's latency counts from when the last byte went out, not from when a
        // long write began (a big body would otherwise count as waiting for the server).
        self.last_sent = Instant::now();
        self.out.clear();
        if self.out.capacity() > 2 * FLUSH_AT {
            self.out.shrink_to(FLUSH_AT);
        }
        result.map_err(|e| self.write_failed(phase, after, e))
    }

    /// True between the first byte of a DATA payload and its end-of-data mark: the server
    /// reads everything as message text, so the dialogue can only be ended by a close.
    pub fn in_data(&self) -> bool {
        self.in_data
    }

    /// Shut the connection down where it stands, without QUIT or close_notify (inside
    /// DATA after a failure: the server must not see an end-of-data mark). Later reads and
    /// writes fail as a lost connection.
    pub fn abort(&mut self) {
        self.out.clear();
        let _ = match &self.stream {
            Stream::Plain(s) => s.shutdown(Shutdown::Both),
            Stream::Tls(s) => s.sock.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
        self.transcript
            .info("Closing the connection inside DATA: nothing is delivered");
    }

    /// The end-of-data mark has been queued: the dialogue is back to commands.
    pub fn end_data(&mut self) {
        self.in_data = false;
        self.partial.clear();
    }

    /// QUIT has already gone out (pipelined); only its reply is left to read.
    pub fn quit_sent(&self) -> bool {
        self.quit_sent
    }

    /// The session says, as it reads the replies in order, whether a mail transaction may
    /// be open on the server: from a positive reply to MAIL until a reply that surely ends
    /// it (a positive reply to the end of the data, any reply to DATA's end-of-data mark,
    /// RSET's 250). What is left open (every recipient refused, a refused end of data or
    /// BDAT chunk, whose state RFC 3030 leaves undetermined) is reset before the next MAIL.
    pub fn set_transaction_open(&mut self, open: bool) {
        self.transaction_open = open;
    }

    /// See [`Connection::set_transaction_open`].
    pub fn transaction_open(&self) -> bool {
        self.transaction_open
    }

    /// Read one complete reply.
    pub fn read_reply(&mut self, phase: Phase) -> Result<Reply> {
        self.read_reply_within(phase, None)
    }

    /// [`Connection::read_reply`], waiting at most `limit` when that is shorter than the
    /// phase's own timeout.
    pub fn read_reply_within(&mut self, phase: Phase, limit: Option<Duration>) -> Result<Reply> {
        // A reply can only come to what has been sent.
        self.flush_out()?;
        let mut after = self.set_timeouts(phase);
        if let Some(limit) = limit.filter(|l| *l < after && !l.is_zero()) {
            after = limit;
            self.set_read_timeout(after);
        }
        let deadline = Instant::now() + after;
        let mut chunk = [0u8; 8192];
        loop {
            match reply::parse(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    let tls = self.is_tls();
                    let now = Instant::now();
                    let elapsed = now.duration_since(self.last_sent);
                    let waited = now.duration_since(self.last_sent.max(self.last_reply));
                    self.last_reply = now;
                    self.transcript.received(&reply, tls, Some(elapsed));
                    self.transcript.trace().record(|t| {
                        t.waited(phase, waited);
                        if phase == Phase::Greeting {
                            t.greeting = Some(reply.clone());
                        }
                        t.last_reply = Some(reply.clone());
                    });
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => {
                    let msg = format!("{} sent a malformed reply ({phase}): {e}", self.host);
                    self.transcript.error(&msg);
                    return Err(Error::Protocol(msg).into());
                }
            }
            // A server trickling bytes must not stretch one phase past its limit.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout { phase, after }.into());
            }
            // The phase's whole timeout is set already; only a later read of the same
            // reply needs the shorter time left (to the millisecond: no call per read).
            let rounded =
                Duration::from_millis(u64::try_from(left.as_millis().max(1)).unwrap_or(u64::MAX));
            if rounded + Duration::from_millis(1) < after {
                self.set_read_timeout(rounded);
            }
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    );
                    return Err(io_failure(phase, after, e).into());
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_failure(phase, after, e).into()),
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Upgrade after the server's 220 to STARTTLS. Bytes already received after that reply
    /// were sent in plaintext before the handshake and may be an injection: refuse them.
    pub fn starttls(self, config: &tls::Tls) -> Result<Connection> {
        if !self.buf.is_empty() {
            let msg = format!(
                "{} sent {} bytes after its 220 reply to STARTTLS, before the TLS handshake \
                 (RFC 3207 §6: possible injection); giving up",
                self.host,
                self.buf.len()
            );
            let mut t = self.transcript;
            t.error(&msg);
            return Err(Error::Protocol(msg).into());
        }
        self.handshake(config)
    }

    fn handshake(mut self, tls: &tls::Tls) -> Result<Connection> {
        if matches!(self.stream, Stream::Unix(_)) {
            return Err(Error::Unavailable(
                "TLS over a unix domain socket is not supported".into(),
            )
            .into());
        }
        let after = self.set_timeouts(Phase::TlsHandshake);
        let name = tls::server_name(&self.host)?;
        let mut conn = ClientConnection::new(Arc::clone(&tls.config), name)
            .map_err(|e| tls::handshake_error(&self.host, &e))?;
        let mut tcp = match self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(_) | Stream::Unix(_) => {
                return Err(Error::Protocol("TLS requested on a TLS connection".into()).into())
            }
        };
        // A certificate recorded by an earlier handshake is not this one's.
        let _ = tls.take_certificate();
        while conn.is_handshaking() {
            quick_ack(&tcp);
            if let Err(e) = conn.complete_io(&mut tcp) {
                let err = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(tls_err) => tls.handshake_error(&self.host, tls_err),
                    None => io_failure(Phase::TlsHandshake, after, e),
                };
                let text = err.to_string();
                tls::report_failure(&conn, tls, &self.host, &text, &mut self.transcript);
                return Err(err.into());
            }
        }
        tls::report_established(&conn, tls, &self.host, &mut self.transcript);
        Ok(Connection {
            stream: Stream::Tls(Box::new(StreamOwned::new(conn, tcp))),
            buf: Vec::new(),
            ..self
        })
    }

    /// Close without QUIT (`--quit-after connect`, or inside DATA, where QUIT would be
    /// message text and a close is what keeps the message from being delivered): TLS
    /// sends its close_notify, then the TCP connection is shut down. Best effort.
    pub fn close(self) {
        let Connection {
            stream,
            mut transcript,
            ..
        } = self;
        transcript.info("Closing the connection");
        match stream {
            Stream::Plain(tcp) => {
                let _ = tcp.shutdown(Shutdown::Both);
            }
            Stream::Tls(mut tls) => {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let _ = tls.sock.shutdown(Shutdown::Both);
            }
            Stream::Unix(unix) => {
                let _ = unix.shutdown(Shutdown::Both);
            }
        }
    }

    /// A writer for the DATA phase's payload (already dot-stuffed by the caller). It
    /// queues: bytes go out in writes of [`FLUSH_AT`], and the last of them (the
    /// end-of-data mark) with whatever is queued after it, at the next read or flush.
    pub fn data_writer(&mut self) -> DataWriter<'_> {
        self.in_data = true;
        DataWriter {
            conn: self,
            failed: None,
        }
    }
}

/// Writes message data to the wire under the data-block timeout; at `-vv` it also shows
/// each line in the transcript.
pub struct DataWriter<'a> {
    conn: &'a mut Connection,
    /// The typed error of the write that failed (a reply the server sent, a timeout): what
    /// [`DataWriter::failure`] gives back, since `io::Write` can only carry an io error.
    failed: Option<anyhow::Error>,
}

impl DataWriter<'_> {
    /// The typed error for a failed data write: the connection's own, when the failure
    /// came from it; else `e` as a failure of the data phase.
    pub fn failure(&mut self, e: io::Error) -> anyhow::Error {
        match self.failed.take() {
            Some(err) => err,
            None => io_failure(
                Phase::DataBlock,
                self.conn.timeouts.for_phase(Phase::DataBlock),
                e,
            )
            .into(),
        }
    }
}

impl Write for DataWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.conn.queue_data(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let text = e.to_string();
                self.failed = Some(e);
                Err(io::Error::other(text))
            }
        }
    }

    /// Nothing: queued data goes out with the next command group or reply read, so the
    /// end-of-data mark is never a write of its own.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    fn timeouts() -> Timeouts {
        Timeouts {
            uniform: Some(Duration::from_secs(5)),
        }
    }

    #[test]
    fn unix_socket_carries_the_dialogue_without_tls_or_ip_peer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lmtp");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"220 local LMTP\r\n").unwrap();
            let mut line = String::new();
            BufReader::new(s.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            s.write_all(b"221 bye\r\n").unwrap();
            line
        });
        let mut conn = Connection::open_unix(&path, timeouts(), Transcript::silent()).unwrap();
        assert!(!conn.is_tls());
        assert_eq!(conn.peer(), None);
        assert_eq!(conn.read_reply(Phase::Greeting).unwrap().code.as_u16(), 220);
        conn.send(&Command::Lhlo("client.test".into()), Phase::Ehlo)
            .unwrap();
        assert_eq!(conn.read_reply(Phase::Ehlo).unwrap().code.as_u16(), 221);
        assert_eq!(server.join().unwrap(), "LHLO client.test\r\n");
        // A unix socket cannot be upgraded: refused, not attempted.
        let tls = tls::Tls::new(None, true).unwrap();
        let err = conn.starttls(&tls).err().unwrap();
        assert_eq!(exit_code(&err), Exit::Unavailable, "{err:#}");
    }

    #[test]
    fn unix_socket_connect_failures_are_temporary_and_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // Missing, and a socket file nobody listens on any more (a stopped daemon).
        let missing = dir.path().join("missing");
        let stale = dir.path().join("stale");
        drop(UnixListener::bind(&stale).unwrap());
        for path in [missing, stale] {
            let err = Connection::open_unix(&path, timeouts(), Transcript::silent())
                .err()
                .unwrap();
            assert_eq!(exit_code(&err), Exit::TempFail, "{err:#}");
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
        }
    }
}
