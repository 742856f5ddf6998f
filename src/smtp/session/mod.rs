//! The SMTP dialogue over one connection, up to the first MAIL: greeting, EHLO (LHLO,
//! HELO fallback), STARTTLS, AUTH; and the entry points that run a whole dialogue
//! ([`deliver`], [`deliver_keeping`], [`rehearse`], [`Session`] for `postie batch`,
//! [`explore()`] for `--probe`). QUIT on every path where the server still talks.
//!
//! Owns: the security policy — STARTTLS required means no AUTH and no MAIL without it; AUTH
//! never crosses a plaintext link unless allowed — and where `--quit-after` ([`Milestone`])
//! stops before MAIL: QUIT right after the named step (after `connect`, just a close). The
//! dialogue's goal is typed: a [`Rehearsal`] that reaches MAIL carries its envelope, a
//! delivery owns its message (and gets it back when the server never had it), and a
//! [`Session`] is only ever opened through to MAIL. A reply decides what happens by its
//! severity, never by comparing text. AUTH is driven generically: [`auth::Exchange`] says
//! what to send for each 334 and judges the 235 (SCRAM's server signature); this module
//! only moves the lines. With an OAuth account ([`Login::OAuth`]) the access token comes
//! from [`crate::oauth::Tokens`] at AUTH time, and a refused AUTH is tried once more with
//! a renewed token; how the token is got is the oauth module's. The mail transaction itself (MAIL .. end of data) is
//! `transaction`'s, the message bytes `data`'s, the `--probe` dialogue `explore`'s.
//!
//! Opportunistic STARTTLS (direct MX delivery, RFC 7435): STARTTLS is used when the server
//! offers it; when it is not offered, or refused with a reply, the dialogue goes on in plain
//! text on the same connection. When the handshake itself fails the connection is gone: the
//! error carries [`StartTlsFailed`], and the caller (`deliver`) may retry that host without
//! TLS, which is what RFC 7435 §6.1 ("fall back to cleartext") and Postfix's `may` level do.
//!
//! Must not: write bytes other than through [`Connection`] (the transcript's choke point);
//! decide where to connect or whether to try another host (the engine does).
//!
//! RFC 5321 §3.1-§3.3, §4.1.1.1 (EHLO/HELO), §4.1.1.10 (QUIT), §4.3.2 (greeting);
//! RFC 3207 (STARTTLS); RFC 4954 (AUTH); RFC 2033 §4.1 (LMTP: LHLO for EHLO, no HELO).

mod data;
mod explore;
mod transaction;
mod window;

pub use explore::{explore, Explored};
pub use window::{Blind, Half, Queued, QueuedData};

use std::ops::ControlFlow;

use anyhow::Result;

use crate::config::{Login, Protocol, Security, SessionOptions};
use crate::envelope::Envelope;
use crate::error::Error;
use crate::message::Message;
use crate::net::timeout::{Milestone, Phase};
use crate::net::tls::Tls;
use crate::net::Connection;
use crate::report::{Observer, Report, Unobserved};
use crate::smtp::auth::{self, Exchange};
use crate::smtp::command::Command;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::{Reply, Severity};
use crate::transcript::Transcript;

use transaction::Around;

/// Run the whole dialogue and return what the server did with each recipient. With
/// `stop` (--quit-after) it stops after that milestone instead (the message is then never
/// sent).
pub fn deliver(
    conn: Connection,
    opts: &SessionOptions,
    tls: &Tls,
    envelope: &Envelope,
    message: Message,
    stop: Option<Milestone>,
    observer: &mut dyn Observer,
) -> Result<Report> {
    deliver_keeping(conn, opts, tls, envelope, message, stop, observer).0
}

/// [`deliver`], giving the message back when the server was never given it (a dialogue
/// that ended before DATA's 354, or before a `BDAT`), so that it can be offered to the next
/// host. `None` once the server has (some of) it.
pub fn deliver_keeping(
    conn: Connection,
    opts: &SessionOptions,
    tls: &Tls,
    envelope: &Envelope,
    message: Message,
    stop: Option<Milestone>,
    observer: &mut dyn Observer,
) -> (Result<Report>, Option<Message>) {
    match stop.map(Stop::from) {
        None => {
            let mut session = match establish(conn, opts, tls, ToMail) {
                Ok(session) => session,
                Err(e) => return (Err(e), Some(message)),
            };
            let around = Around {
                reset_first: false,
                quit_last: true,
            };
            let (outcome, kept) = transaction::deliver(
                &mut session.conn,
                opts,
                &session.caps,
                envelope,
                message,
                around,
            );
            (session.end(outcome, observer), kept)
        }
        Some(Stop::Early(at)) => (establish(conn, opts, tls, at), Some(message)),
        Some(Stop::Late(at)) => stop_in_transaction(conn, opts, tls, envelope, Some(message), at),
    }
}

/// Marks an error whose cause is a failed TLS handshake after an opportunistic STARTTLS:
/// the connection is gone, and the host may be tried again without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartTlsFailed;

impl std::fmt::Display for StartTlsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("opportunistic STARTTLS failed")
    }
}

/// `--quit-after` before DATA ([`rehearse`]): where the dialogue stops, and the envelope
/// when it gets as far as MAIL. No message: MAIL FROM then carries no SIZE or BODY.
#[derive(Debug, Clone)]
pub struct Rehearsal(Plan);

#[derive(Debug, Clone)]
enum Plan {
    Early(Early),
    Late(Envelope, Late),
}

impl Rehearsal {
    /// Stop at `stop`; `envelope` is called only when the dialogue reaches MAIL (`mail` and
    /// later), so that a rehearsal of the greeting needs no recipients.
    pub fn new(stop: Milestone, envelope: impl FnOnce() -> Result<Envelope>) -> Result<Rehearsal> {
        Ok(Rehearsal(match Stop::from(stop) {
            Stop::Early(at) => Plan::Early(at),
            Stop::Late(at) => Plan::Late(envelope()?, at),
        }))
    }

    /// Stop at `stop`, with an envelope at hand.
    pub fn with_envelope(stop: Milestone, envelope: Envelope) -> Rehearsal {
        Rehearsal(match Stop::from(stop) {
            Stop::Early(at) => Plan::Early(at),
            Stop::Late(at) => Plan::Late(envelope, at),
        })
    }

    /// The envelope, when the rehearsal reaches MAIL.
    pub fn envelope(&self) -> Option<&Envelope> {
        match &self.0 {
            Plan::Early(_) => None,
            Plan::Late(envelope, _) => Some(envelope),
        }
    }
}

/// `--quit-after` before DATA: the dialogue up to the rehearsal's milestone, then QUIT
/// (after `connect`, just a close). The report lists the RCPT replies when it stops at
/// `rcpt`.
pub fn rehearse(
    conn: Connection,
    opts: &SessionOptions,
    tls: &Tls,
    rehearsal: &Rehearsal,
) -> Result<Report> {
    match &rehearsal.0 {
        Plan::Early(at) => establish(conn, opts, tls, *at),
        Plan::Late(envelope, at) => stop_in_transaction(conn, opts, tls, envelope, None, *at).0,
    }
}

/// `--quit-after` ([`Milestone`]), split by whether the dialogue reaches MAIL: only then
/// does it need an envelope, and only the transaction knows how to stop there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Early(Early),
    Late(Late),
}

/// A `--quit-after` step before MAIL, in dialogue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Early {
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    Tls,
    Auth,
}

/// A `--quit-after` step inside the mail transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Late {
    Mail,
    Rcpt,
    Data,
}

impl From<Milestone> for Stop {
    fn from(m: Milestone) -> Stop {
        match m {
            Milestone::Connect => Stop::Early(Early::Connect),
            Milestone::Greeting => Stop::Early(Early::Greeting),
            Milestone::Ehlo => Stop::Early(Early::Ehlo),
            Milestone::StartTls => Stop::Early(Early::StartTls),
            Milestone::Tls => Stop::Early(Early::Tls),
            Milestone::Auth => Stop::Early(Early::Auth),
            Milestone::Mail => Stop::Late(Late::Mail),
            Milestone::Rcpt => Stop::Late(Late::Rcpt),
            Milestone::Data => Stop::Late(Late::Data),
        }
    }
}

impl From<Early> for Milestone {
    fn from(e: Early) -> Milestone {
        match e {
            Early::Connect => Milestone::Connect,
            Early::Greeting => Milestone::Greeting,
            Early::Ehlo => Milestone::Ehlo,
            Early::StartTls => Milestone::StartTls,
            Early::Tls => Milestone::Tls,
            Early::Auth => Milestone::Auth,
        }
    }
}

/// `--quit-after` mail, rcpt or data: the dialogue through AUTH, then the transaction up to
/// `at`. `declared` is the message, when there is one: declared in MAIL FROM (SIZE, BODY),
/// never sent, and given back (as a real send would have sent it: converted to 7-bit for a
/// server without 8BITMIME), unless it was refused.
fn stop_in_transaction(
    conn: Connection,
    opts: &SessionOptions,
    tls: &Tls,
    envelope: &Envelope,
    declared: Option<Message>,
    at: Late,
) -> (Result<Report>, Option<Message>) {
    let mut session = match establish(conn, opts, tls, ToMail) {
        Ok(session) => session,
        Err(e) => return (Err(e), declared),
    };
    let (outcome, kept) = transaction::rehearse(
        &mut session.conn,
        opts,
        &session.caps,
        envelope,
        declared,
        at,
    );
    // A rehearsal delivers nothing: no transaction ends for anyone to act on.
    (session.end(outcome, &mut Unobserved), kept)
}

/// How a dialogue that went well ends.
enum End {
    /// QUIT and its reply.
    Quit,
    /// QUIT already went out after the end of data (pipelined): its reply only.
    QuitSent,
    /// Close the connection without a word (inside DATA, QUIT would be message text).
    Close,
}

/// Where [`establish`] ends, and what it gives back there: at a `--quit-after` step
/// ([`Early`]: a report), or ready for MAIL ([`ToMail`]: a [`Session`]).
trait Until {
    type Out;
    /// Reached `at`: stop here (QUIT, or after `connect` a close), or go on.
    fn stop(&self, conn: Connection, at: Milestone) -> ControlFlow<Self::Out, Connection>;
    /// AUTH done, or not needed: the last step before MAIL.
    fn ready(self, conn: Connection, caps: Capabilities) -> Self::Out;
}

/// Through to the first MAIL.
struct ToMail;

impl Until for ToMail {
    type Out = Session;

    fn stop(&self, conn: Connection, _: Milestone) -> ControlFlow<Session, Connection> {
        ControlFlow::Continue(conn)
    }

    fn ready(self, conn: Connection, caps: Capabilities) -> Session {
        Session { conn, caps }
    }
}

/// At or past the milestone asked for: a configuration that skips a step (no STARTTLS with
/// --tls none) still stops at the next check, never later. AUTH is the last check, so every
/// early stop ends there at the latest.
impl Until for Early {
    type Out = Report;

    fn stop(&self, conn: Connection, at: Milestone) -> ControlFlow<Report, Connection> {
        if Milestone::from(*self) <= at {
            ControlFlow::Break(stop_here(conn, at))
        } else {
            ControlFlow::Continue(conn)
        }
    }

    fn ready(self, conn: Connection, _: Capabilities) -> Report {
        stop_here(conn, Milestone::Auth)
    }
}

/// Greeting, EHLO, STARTTLS (as the policy says), EHLO again, AUTH: everything before the
/// first MAIL, or as far as `until` says.
fn establish<U: Until>(
    conn: Connection,
    opts: &SessionOptions,
    tls: &Tls,
    until: U,
) -> Result<U::Out> {
    // The connection after `until` had its say at a milestone: stop there, or go on.
    macro_rules! at {
        ($conn:expr, $milestone:expr) => {
            match until.stop($conn, $milestone) {
                ControlFlow::Break(out) => return Ok(out),
                ControlFlow::Continue(conn) => conn,
            }
        };
    }
    let mut conn = at!(conn, Milestone::Connect);
    if let Err(e) = greeting(&mut conn) {
        return Err(quit_after(&mut conn, e));
    }
    let mut conn = at!(conn, Milestone::Greeting);
    let caps = match ehlo(&mut conn, opts) {
        Ok(c) => c,
        Err(e) => return Err(quit_after(&mut conn, e)),
    };
    let conn = at!(conn, Milestone::Ehlo);
    let (conn, caps) = match opts.security {
        Security::StartTlsRequired => {
            let conn = secure(conn, tls, &caps)?;
            let mut conn = at!(conn, Milestone::StartTls);
            match ehlo(&mut conn, opts) {
                Ok(caps) => (conn, caps),
                Err(e) => return Err(quit_after(&mut conn, e)),
            }
        }
        Security::Opportunistic if caps.starttls && !conn.is_tls() => {
            match opportunistic(conn, tls)? {
                (mut conn, true) => match ehlo(&mut conn, opts) {
                    Ok(caps) => (conn, caps),
                    Err(e) => return Err(quit_after(&mut conn, e)),
                },
                (conn, false) => (conn, caps),
            }
        }
        Security::Implicit | Security::Plain | Security::Opportunistic => (conn, caps),
    };
    let mut conn = at!(conn, Milestone::Tls);
    if let Err(e) = authenticate(&mut conn, opts, &caps) {
        return Err(quit_after(&mut conn, e));
    }
    Ok(until.ready(conn, caps))
}

/// A connection through greeting, EHLO, STARTTLS and AUTH, ready for mail transactions:
/// what `postie batch` sends many messages over. Each [`Session::send`] is one
/// transaction (MAIL, RCPT..., DATA, message); after one that failed with a reply and may
/// have left the transaction open on the server, the next starts with RSET.
pub struct Session {
    conn: Connection,
    caps: Capabilities,
}

impl Session {
    /// Run the dialogue up to the first MAIL. On failure the connection is closed
    /// (after QUIT when the server is still talking).
    pub fn open(conn: Connection, opts: &SessionOptions, tls: &Tls) -> Result<Session> {
        establish(conn, opts, tls, ToMail)
    }

    /// What the server offered in its last EHLO (inside TLS when TLS is up).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The connection's transcript, for notes between transactions.
    pub fn transcript(&mut self) -> &mut Transcript {
        self.conn.transcript()
    }

    /// One mail transaction. The message comes back (second value) when the server was
    /// never given it: a transaction that failed before DATA's 354 leaves it to the caller.
    /// A transaction after one that may still be open on the server (it failed or was
    /// abandoned after MAIL was accepted, and nothing since has surely ended it) starts
    /// with RSET (RFC 5321 §4.1.1.5), in the same write as MAIL when the server offers
    /// PIPELINING; after a delivered message there is none (the reply to the end of the
    /// data ended the transaction). So a transaction abandoned with a reply (the
    /// connection still talks) leaves the session ready for the next. Any other error
    /// (connection lost, timeout, 421) leaves a session that should be dropped.
    pub fn send(
        &mut self,
        opts: &SessionOptions,
        envelope: &Envelope,
        message: Message,
    ) -> (Result<Report>, Option<Message>) {
        let around = Around {
            reset_first: self.conn.transaction_open(),
            quit_last: false,
        };
        let (outcome, kept) =
            transaction::deliver(&mut self.conn, opts, &self.caps, envelope, message, around);
        let outcome = outcome.map(|(report, _)| report).inspect_err(|_| {
            // A failure part-way through the message (reading it, or an 8-bit byte for a
            // server without 8BITMIME): only a close keeps the partial message from being
            // delivered, and the session is over.
            if self.conn.in_data() {
                self.conn.abort();
            }
        });
        (outcome, kept)
    }

    /// RSET: abandon whatever transaction is under way (RFC 5321 §4.1.1.5). [`Session::send`]
    /// does this itself before a second transaction; after this call it need not.
    pub fn reset(&mut self) -> Result<()> {
        command(
            &mut self.conn,
            &Command::Rset,
            Phase::Rset,
            Severity::PositiveCompletion,
            "RSET",
        )?;
        self.conn.set_transaction_open(false);
        Ok(())
    }

    /// QUIT and close, best effort.
    pub fn quit(mut self) {
        quit(&mut self.conn);
    }

    /// The end of a one-transaction dialogue: QUIT (or a close inside DATA), and on a
    /// failure QUIT only when the server still talks.
    fn end(
        mut self,
        outcome: Result<(Report, End)>,
        observer: &mut dyn Observer,
    ) -> Result<Report> {
        match outcome {
            Ok((report, End::Quit | End::QuitSent)) => {
                // The transaction is over: let the queue drop a delivered entry before QUIT
                // (or, pipelined, before QUIT's reply is read).
                observer.transaction_end(&report);
                self.quit();
                Ok(report)
            }
            Ok((report, End::Close)) => {
                self.conn.close();
                Ok(report)
            }
            Err(e) => Err(quit_after(&mut self.conn, e)),
        }
    }
}

/// A reply-shaped error: the server answered, so the connection is still in step.
fn is_polite(err: &anyhow::Error) -> bool {
    crate::error::classify(err).in_step
}

/// The report of a dialogue that stopped before RCPT: no recipients, no final reply.
fn no_report() -> Report {
    Report {
        recipients: Vec::new(),
        final_reply: None,
    }
}

/// --quit-after reached: say so in the transcript and QUIT (after `connect`, just close).
fn stop_here(mut conn: Connection, at: Milestone) -> Report {
    if at == Milestone::Connect {
        conn.transcript()
            .info("--quit-after connect: closing the connection");
        conn.close();
        return no_report();
    }
    conn.transcript()
        .info(&format!("--quit-after {at}: quitting"));
    quit(&mut conn);
    no_report()
}

/// Send QUIT when the server is still in a state to hear it (it replied, negatively), then
/// hand the error back.
fn quit_after(conn: &mut Connection, err: anyhow::Error) -> anyhow::Error {
    if is_polite(&err) {
        quit(conn);
    }
    err
}

/// QUIT, best effort: the outcome is already decided. When QUIT already went out
/// (pipelined after the end of data) only its reply is read; inside DATA (a failure while
/// sending the message) nothing is sent: QUIT would be message text, and the connection
/// closes without the end-of-data mark, so nothing is delivered.
fn quit(conn: &mut Connection) {
    if conn.in_data() {
        conn.abort();
        return;
    }
    if conn.quit_sent() || conn.send(&Command::Quit, Phase::Quit).is_ok() {
        let _ = conn.read_reply(Phase::Quit);
    }
}

/// Check that a reply has the expected severity; otherwise it is an error of `phase`.
fn expect(reply: Reply, want: Severity, phase: Phase, what: impl Into<String>) -> Result<Reply> {
    if reply.code.severity == want {
        Ok(reply)
    } else {
        Err(Error::Reply {
            phase,
            what: what.into(),
            reply,
        }
        .into())
    }
}

fn command(
    conn: &mut Connection,
    cmd: &Command,
    phase: Phase,
    want: Severity,
    what: impl Into<String>,
) -> Result<Reply> {
    conn.send(cmd, phase)?;
    let reply = conn.read_reply(phase)?;
    expect(reply, want, phase, what)
}

/// The server's greeting must be 220 (RFC 5321 §4.3.2). A 4xx or 5xx greeting (554: "no
/// SMTP service here", §3.1) is a refusal, answered with QUIT by the caller; any other
/// code (221, 250, ...) is not a greeting at all.
/// How long a plain-text client waits for a greeting on port 465, where the server most
/// likely waits for a TLS handshake instead (other ports keep RFC 5321's 5 minutes: MX
/// servers may delay their greeting on purpose).
const PORT_465_GREETING: std::time::Duration = std::time::Duration::from_secs(10);

fn greeting(conn: &mut Connection) -> Result<()> {
    let tls_port = !conn.is_tls() && conn.peer().is_some_and(|p| p.port() == 465);
    let reply = if tls_port {
        conn.read_reply_within(Phase::Greeting, Some(PORT_465_GREETING))
            .map_err(|e| match e.downcast_ref::<Error>() {
                Some(Error::Timeout { .. }) => e.context(
                    "the server sent no greeting: port 465 usually speaks implicit TLS \
                     (--tls implicit)",
                ),
                _ => e,
            })?
    } else {
        conn.read_reply(Phase::Greeting)?
    };
    match reply.code.severity {
        _ if reply.code.as_u16() == 220 => Ok(()),
        Severity::TransientNegative | Severity::PermanentNegative => Err(Error::Reply {
            phase: Phase::Greeting,
            what: "the server's greeting".into(),
            reply,
        }
        .into()),
        Severity::PositiveCompletion | Severity::PositiveIntermediate => {
            Err(not_expected(conn, &reply, "its greeting", 220))
        }
    }
}

/// A reply of the right severity but the wrong code (250 to STARTTLS, 221 as a greeting):
/// the server does not speak the protocol, and the dialogue cannot go on.
fn not_expected(conn: &mut Connection, reply: &Reply, what: &str, want: u16) -> anyhow::Error {
    let msg = format!(
        "the server answered {what} with {} where only {want} is valid; giving up",
        reply.summary()
    );
    conn.transcript().error(&msg);
    Error::Protocol(msg).into()
}

/// STARTTLS and its reply, which must be 220 (RFC 3207 §4): anything else positive is
/// no go-ahead for a handshake. A refusal comes back as the reply error.
fn starttls_command(conn: &mut Connection) -> Result<()> {
    let reply = command(
        conn,
        &Command::StartTls,
        Phase::StartTls,
        Severity::PositiveCompletion,
        "STARTTLS",
    )?;
    if reply.code.as_u16() != 220 {
        return Err(not_expected(conn, &reply, "STARTTLS", 220));
    }
    Ok(())
}

/// EHLO, falling back to HELO when EHLO is refused permanently.
fn ehlo(conn: &mut Connection, opts: &SessionOptions) -> Result<Capabilities> {
    let caps = ehlo_or_helo(conn, opts)?;
    let tls = conn.is_tls();
    let copy = caps.clone();
    conn.transcript()
        .trace()
        .record(|t| t.ehlo.push((tls, copy)));
    Ok(caps)
}

/// The name this client gives in EHLO/HELO/LHLO: the configured or fully qualified host
/// name, or — when the host has no fully qualified name — this end's address as an address
/// literal (RFC 5321 §4.1.4, §4.1.3: `[192.0.2.1]`, `[IPv6:2001:db8::1]`), never a bare
/// host name that servers refuse (Postfix's reject_non_fqdn_helo_hostname).
fn client_name(conn: &Connection, opts: &SessionOptions) -> String {
    match (opts.ehlo_literal, conn.local_ip()) {
        (true, Some(std::net::IpAddr::V4(ip))) => format!("[{ip}]"),
        (true, Some(std::net::IpAddr::V6(ip))) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{ip}]"),
        },
        _ => opts.helo.clone(),
    }
}

fn ehlo_or_helo(conn: &mut Connection, opts: &SessionOptions) -> Result<Capabilities> {
    let name = client_name(conn, opts);
    if opts.protocol == Protocol::Lmtp {
        // RFC 2033 §4.1: LHLO replaces EHLO, and there is no HELO to fall back to.
        let reply = command(
            conn,
            &Command::Lhlo(name),
            Phase::Ehlo,
            Severity::PositiveCompletion,
            "LHLO",
        )?;
        return Ok(Capabilities::from_ehlo(&reply));
    }
    conn.send(&Command::Ehlo(name.clone()), Phase::Ehlo)?;
    let reply = conn.read_reply(Phase::Ehlo)?;
    match reply.code.severity {
        Severity::PositiveCompletion => Ok(Capabilities::from_ehlo(&reply)),
        Severity::PermanentNegative => {
            conn.transcript().info("EHLO refused; trying HELO");
            command(
                conn,
                &Command::Helo(name),
                Phase::Ehlo,
                Severity::PositiveCompletion,
                "HELO",
            )?;
            Ok(Capabilities::default())
        }
        _ => Err(Error::Reply {
            phase: Phase::Ehlo,
            what: "EHLO".into(),
            reply,
        }
        .into()),
    }
}

/// STARTTLS is required: the server must offer it. The caller then learns the capabilities
/// again inside TLS and throws the old ones away (RFC 3207 §4.2).
fn secure(mut conn: Connection, tls: &Tls, caps: &Capabilities) -> Result<Connection> {
    if !caps.starttls {
        let err = Error::Unavailable(format!(
            "{} does not offer STARTTLS, which is required (use --tls implicit for port 465, \
             or --tls none to send in plain text)",
            conn.host().unwrap_or("the server")
        ));
        conn.transcript().error(&err.to_string());
        return Err(quit_after(&mut conn, err.into()));
    }
    if let Err(e) = starttls_command(&mut conn) {
        return Err(quit_after(&mut conn, e));
    }
    conn.starttls(tls)
}

/// STARTTLS offered and opportunistic: try it. `(conn, true)` inside TLS; `(conn, false)`
/// when the server refused STARTTLS with a reply (still talking, in plain text). A failed
/// handshake is an error marked [`StartTlsFailed`].
fn opportunistic(mut conn: Connection, tls: &Tls) -> Result<(Connection, bool)> {
    match starttls_command(&mut conn) {
        Ok(()) => {}
        Err(e) if matches!(e.downcast_ref::<Error>(), Some(Error::Reply { .. })) => {
            conn.transcript()
                .info("STARTTLS refused; going on without TLS (opportunistic, RFC 7435)");
            return Ok((conn, false));
        }
        Err(e) => return Err(e),
    }
    match conn.starttls(tls) {
        Ok(conn) => Ok((conn, true)),
        Err(e) => Err(e.context(StartTlsFailed)),
    }
}

fn authenticate(conn: &mut Connection, opts: &SessionOptions, caps: &Capabilities) -> Result<()> {
    let Some(creds) = &opts.credentials else {
        return Ok(());
    };
    if !conn.is_tls() && !opts.allow_plaintext_auth {
        return Err(Error::Unavailable(
            "refusing to send the password over a connection without TLS \
             (use TLS; if you must: --allow-plaintext-auth, allow_plaintext_auth = true in the \
             account, or an msmtprc's explicit `auth plain`)"
                .into(),
        )
        .into());
    }
    if caps.auth.is_empty() {
        return Err(Error::Unavailable(
            "--user was given but the server does not offer AUTH".into(),
        )
        .into());
    }
    let mech = auth::choose(&caps.auth, opts.auth).map_err(Error::Unavailable)?;
    conn.transcript().trace().record(|t| t.auth = Some(mech));
    // OAUTHBEARER names the server it talks to (RFC 7628 §3.1).
    let (host, port) = match (conn.host(), conn.peer()) {
        (Some(host), Some(peer)) => (host.to_string(), peer.port()),
        // A unix domain socket: the local host, no port.
        _ => ("localhost".to_string(), 0),
    };
    match &creds.secret {
        Login::Password(password) => auth_exchange(conn, mech, &creds.user, password, &host, port),
        Login::OAuth(tokens) => {
            let token = tokens.access()?;
            match auth_exchange(conn, mech, &creds.user, &token, &host, port) {
                // Refused (an expired or revoked token, whatever its expiry said): once
                // more with a new token, then the server's answer stands.
                Err(e) if refused_auth(&e) => {
                    let renewed = tokens.renew(&token)?;
                    auth_exchange(conn, mech, &creds.user, &renewed, &host, port)
                }
                other => other,
            }
        }
    }
}

/// The server answered AUTH with a negative reply and is still talking.
fn refused_auth(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        matches!(
            c.downcast_ref::<Error>(),
            Some(Error::Reply {
                phase: Phase::Auth,
                reply,
                ..
            }) if reply.code.as_u16() != 421
        )
    })
}

/// One AUTH exchange with `secret`, to its 235 or its refusal.
fn auth_exchange(
    conn: &mut Connection,
    mech: auth::Mechanism,
    user: &str,
    secret: &crate::secret::Secret,
    host: &str,
    port: u16,
) -> Result<()> {
    let mut exchange = Exchange::new(mech, user, secret, host, port);
    let cmd = auth_command(
        mech.name(),
        exchange.initial_response().map_err(Error::from)?,
    );
    conn.send(&cmd, Phase::Auth)?;
    // Ends: every mechanism refuses challenges past its last step, and each read is
    // bounded by the phase's timeout.
    loop {
        let reply = conn.read_reply(Phase::Auth)?;
        match reply.code.severity {
            Severity::PositiveIntermediate => {
                // "334 base64": the whole text is the challenge (enhanced codes do not
                // apply to 3xx, and base64 has no spaces).
                let challenge = reply.lines.concat();
                match exchange.respond(&challenge) {
                    Ok(line) => conn.send(&Command::AuthResponse(line), Phase::Auth)?,
                    Err(e) => {
                        cancel_auth(conn);
                        return Err(Error::from(e).into());
                    }
                }
            }
            Severity::PositiveCompletion => {
                return exchange
                    .finish(Some(&reply.text()))
                    .map_err(|e| Error::from(e).into());
            }
            Severity::TransientNegative | Severity::PermanentNegative => {
                let what = match exchange.server_error() {
                    Some(detail) => format!("AUTH {mech} (the server said: {detail})"),
                    None => format!("AUTH {mech}"),
                };
                return Err(Error::Reply {
                    phase: Phase::Auth,
                    what,
                    reply,
                }
                .into());
            }
        }
    }
}

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
const COMMAND_LINE_MAX: usize = 512;

/// AUTH with its initial response, which saves a round trip (one for PLAIN, XOAUTH2 and
/// OAUTHBEARER) — unless the line would pass 512 octets: then the response is not sent
/// with AUTH (RFC 4954 §4) but after the server's empty 334 (a long OAuth token).
fn auth_command(mechanism: &str, initial_response: Option<String>) -> Command {
    let initial_response = initial_response.filter(|ir| {
        // "AUTH " MECH " " IR CRLF; an empty response is sent as "=".
        "AUTH ".len() + mechanism.len() + 1 + ir.len().max(1) + 2 <= COMMAND_LINE_MAX
    });
    Command::Auth {
        mechanism: mechanism.to_string(),
        initial_response,
    }
}

/// Abandon an AUTH exchange mid-way with "*" (RFC 4954 §4), so the server answers (501)
/// and is ready for QUIT. Best effort: we are already failing.
fn cancel_auth(conn: &mut Connection) {
    if conn
        .send(&Command::AuthResponse("*".into()), Phase::Auth)
        .is_ok()
    {
        let _ = conn.read_reply(Phase::Auth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::timeout::Timeouts;
    use std::io::{self, Read, Write};
    use std::time::Duration;

    /// A plain-text [`Session`] to the test server at `addr` (5 s timeouts), its
    /// configuration, and the envelope a@x.test -> b@x.test.
    fn session_to(addr: std::net::SocketAddr) -> (Session, SessionOptions, Envelope) {
        let opts = config_for_tests(&["--server", &addr.to_string(), "--tls", "none"]);
        let tls = Tls::new(None, true).unwrap();
        let timeouts = Timeouts {
            uniform: Some(Duration::from_secs(5)),
        };
        let conn =
            Connection::open("127.0.0.1", &[addr], None, timeouts, Transcript::silent()).unwrap();
        let session = Session::open(conn, &opts, &tls).unwrap();
        let envelope = Envelope {
            reverse_path: "a@x.test".into(),
            forward_paths: vec!["b@x.test".into()],
        };
        (session, opts, envelope)
    }

    /// What a thread playing a pipelining server saw of two transactions on one Session:
    /// the bytes of the second group, read once after the client had time to send it all.
    /// The first was delivered, so the second needs no RSET (the 250 to the end of the data
    /// ended the transaction).
    #[test]
    fn second_transaction_after_a_delivered_one_has_no_rset() {
        use std::io::{BufRead, BufReader};
        use std::net::TcpListener;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let mut next = |r: &mut BufReader<std::net::TcpStream>| {
                line.clear();
                r.read_line(&mut line).unwrap();
                line.clone()
            };
            s.write_all(b"220 t ESMTP\r\n").unwrap();
            assert!(next(&mut r).starts_with("EHLO"));
            s.write_all(b"250-t\r\n250 PIPELINING\r\n").unwrap();
            for want in [
                "MAIL FROM:<a@x.test>\r\n",
                "RCPT TO:<b@x.test>\r\n",
                "DATA\r\n",
            ] {
                assert_eq!(next(&mut r), want);
            }
            s.write_all(b"250 ok\r\n250 ok\r\n354 go\r\n").unwrap();
            while next(&mut r) != ".\r\n" {}
            s.write_all(b"250 queued 1\r\n").unwrap();
            // A lockstep client would have sent MAIL alone and be waiting for its reply.
            std::thread::sleep(Duration::from_millis(300));
            let mut group = vec![0u8; 4096];
            let n = r.read(&mut group).unwrap();
            s.write_all(b"250 ok\r\n250 ok\r\n354 go\r\n").unwrap();
            let mut rest = String::new();
            while !rest.ends_with("\r\n.\r\n") {
                if r.read_line(&mut rest).unwrap() == 0 {
                    break;
                }
            }
            s.write_all(b"250 queued 2\r\n").unwrap();
            assert_eq!(next(&mut r), "QUIT\r\n");
            s.write_all(b"221 bye\r\n").unwrap();
            String::from_utf8_lossy(&group[..n]).into_owned()
        });
        let (mut session, opts, envelope) = session_to(addr);
        for i in 1..=2 {
            let message = Message::in_memory(b"Subject: x\r\n\r\nhi\r\n".to_vec());
            let (outcome, kept) = session.send(&opts, &envelope, message);
            let report = outcome.unwrap();
            assert!(kept.is_none(), "the server was given the message");
            assert_eq!(
                report.final_reply.map(|r| r.text()),
                Some(format!("queued {i}"))
            );
        }
        session.quit();
        assert_eq!(
            server.join().unwrap(),
            "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"
        );
    }

    /// Reading the message fails part-way through the data: an error for this message,
    /// no end-of-data mark, and the session is over (the next send is a lost connection,
    /// 75), instead of RSET being written into the message. (An 8-bit byte to a server
    /// without 8BITMIME no longer gets this far: the message is converted before MAIL.)
    #[test]
    fn failure_inside_data_ends_the_session_without_an_end_of_data_mark() {
        use std::io::{BufRead, BufReader};
        use std::net::TcpListener;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            s.write_all(b"220 t ESMTP\r\n").unwrap();
            let mut lines = Vec::new();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            s.write_all(b"250-t\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                .unwrap();
            for _ in 0..3 {
                line.clear();
                r.read_line(&mut line).unwrap();
            }
            s.write_all(b"250 ok\r\n250 ok\r\n354 go\r\n").unwrap();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => lines.push(line.clone()),
                }
            }
            lines
        });
        let (mut session, opts, envelope) = session_to(addr);
        /// The body's first 120 kB, then a read error.
        struct FailsPartWay(io::Cursor<Vec<u8>>);
        impl io::Read for FailsPartWay {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::other("disk gone")),
                    n => Ok(n),
                }
            }
        }
        let body = b"line\r\n".repeat(20_000);
        let message = Message::streaming(
            b"Subject: x\r\n\r\n".to_vec(),
            Box::new(FailsPartWay(io::Cursor::new(body))),
        );
        let (outcome, kept) = session.send(&opts, &envelope, message);
        assert!(kept.is_none(), "part of the message went out");
        let err = outcome.unwrap_err();
        assert!(
            format!("{err:#}").contains("reading the message failed part-way"),
            "{err:#}"
        );
        let again = Message::in_memory(b"Subject: y\r\n\r\nhi\r\n".to_vec());
        let (outcome, kept) = session.send(&opts, &envelope, again);
        assert!(kept.is_some(), "lost before MAIL: the message comes back");
        let err = outcome.unwrap_err();
        assert_eq!(
            crate::error::exit_code(&err),
            crate::error::Exit::TempFail,
            "{err:#}"
        );
        let seen = server.join().unwrap();
        assert!(!seen.is_empty(), "some data went out");
        assert!(
            !seen.iter().any(|l| l == ".\r\n" || l.starts_with("RSET")),
            "no end of data, no RSET inside the message"
        );
    }

    /// What a scripted server saw of one rehearsal: it answers each line read with the next
    /// reply of `replies` (the greeting first), and records the lines until the client
    /// closes.
    fn rehearsed(replies: &'static [&'static str], stop: Milestone) -> (Report, Vec<String>) {
        use std::io::{BufRead, BufReader};
        use std::net::TcpListener;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut replies = replies.iter();
            let mut seen = Vec::new();
            if let Some(greeting) = replies.next() {
                s.write_all(greeting.as_bytes()).unwrap();
            }
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return seen,
                    Ok(_) => seen.push(line),
                }
                if let Some(reply) = replies.next() {
                    let _ = s.write_all(reply.as_bytes());
                }
            }
        });
        let opts = config_for_tests(&["--server", &addr.to_string(), "--tls", "none"]);
        let tls = Tls::new(None, true).unwrap();
        let timeouts = Timeouts {
            uniform: Some(Duration::from_secs(5)),
        };
        let conn =
            Connection::open("127.0.0.1", &[addr], None, timeouts, Transcript::silent()).unwrap();
        let envelope = Envelope {
            reverse_path: "a@x.test".into(),
            forward_paths: vec!["b@x.test".into()],
        };
        let rehearsal = Rehearsal::with_envelope(stop, envelope);
        let report = rehearse(conn, &opts, &tls, &rehearsal).unwrap();
        (report, server.join().unwrap())
    }

    #[test]
    fn rehearsals_stop_where_asked_or_at_the_next_step_there_is() {
        const EHLO: &str = "250-t\r\n250 PIPELINING\r\n";
        // No STARTTLS with --tls none: `starttls` stops at the next check, after EHLO.
        let (report, seen) = rehearsed(&["220 t\r\n", EHLO, "221 bye\r\n"], Milestone::StartTls);
        assert!(report.recipients.is_empty());
        assert_eq!(seen[1], "QUIT\r\n", "{seen:?}");
        assert_eq!(seen.len(), 2, "{seen:?}");
        // `data`: one command at a time (no pipelining), then a close after 354 without
        // the end-of-data mark or QUIT.
        let script = &["220 t\r\n", EHLO, "250 ok\r\n", "250 ok\r\n", "354 go\r\n"];
        let (report, seen) = rehearsed(script, Milestone::Data);
        assert_eq!(report.recipients.len(), 1);
        assert!(report.recipients[0].accepted());
        assert_eq!(
            seen[1..],
            [
                "MAIL FROM:<a@x.test>\r\n",
                "RCPT TO:<b@x.test>\r\n",
                "DATA\r\n"
            ],
            "{seen:?}"
        );
        // `connect`: a close before the greeting is read.
        let (_, seen) = rehearsed(&["220 t\r\n"], Milestone::Connect);
        assert!(seen.is_empty(), "{seen:?}");
    }

    fn config_for_tests(args: &[&str]) -> SessionOptions {
        crate::config::for_tests(args, &[]).session
    }

    #[test]
    fn auth_initial_response_only_within_the_command_line_limit() {
        let fits = "A".repeat(512 - "AUTH XOAUTH2 \r\n".len());
        let cmd = auth_command("XOAUTH2", Some(fits.clone()));
        assert_eq!(cmd.to_wire().len(), 512);
        assert!(matches!(
            cmd,
            Command::Auth {
                initial_response: Some(_),
                ..
            }
        ));
        let long = format!("{fits}A");
        let cmd = auth_command("XOAUTH2", Some(long));
        assert_eq!(cmd.to_wire(), b"AUTH XOAUTH2\r\n");
        assert!(matches!(
            auth_command("PLAIN", Some(String::new())),
            Command::Auth { initial_response: Some(ir), .. } if ir.is_empty()
        ));
        assert_eq!(auth_command("LOGIN", None).to_wire(), b"AUTH LOGIN\r\n");
    }
}
