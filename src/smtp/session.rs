//! The SMTP dialogue over one connection: greeting, EHLO (HELO fallback), STARTTLS, AUTH,
//! one mail transaction, QUIT (RFC 5321 §3, §4.1; RFC 3207; RFC 4954).
//!
//! It enforces the security policy — STARTTLS required means no AUTH and no MAIL without
//! it; AUTH never crosses a plaintext link unless allowed — and returns the outcome per
//! recipient. A reply decides what happens by its severity, never by comparing text. AUTH
//! is driven generically: [`auth::Exchange`] says what to send for each 334 and judges the
//! 235 (SCRAM's server signature); this module only moves the lines.
//!
//! `--quit-after` ([`Milestone`]) ends the same dialogue early: QUIT right after the named
//! step, or, after DATA's 354, a close without the end-of-data mark so that nothing is
//! delivered (RFC 5321 §4.1.1.4: the server has no message until CRLF.CRLF). [`explore`]
//! is the dialogue of `--probe`: greeting, EHLO, STARTTLS where offered, EHLO, QUIT, with
//! everything learned left in the trace.
//!
//! Opportunistic STARTTLS (direct MX delivery, RFC 7435): STARTTLS is used when the server
//! offers it; when it is not offered, or refused with a reply, the dialogue goes on in plain
//! text on the same connection. When the handshake itself fails the connection is gone: the
//! error carries [`StartTlsFailed`], and the caller (`deliver`) may retry that host without
//! TLS, which is what RFC 7435 §6.1 ("fall back to cleartext") and Postfix's `may` level do.
//!
//! LMTP (RFC 2033, `cfg.protocol`) is the same dialogue with LHLO for EHLO (no HELO
//! fallback) and, after the end of data, one reply per recipient accepted at RCPT, in RCPT
//! order (§4.2); each lands in that recipient's entry of the [`Report`].

use std::io::{self, Read, Write};

use anyhow::Result;

use crate::config::{Config, Protocol, Security};
use crate::envelope::Envelope;
use crate::error::Error;
use crate::message::wire::DotStuffer;
use crate::message::{BodyKind, Message};
use crate::net::timeout::{Milestone, Phase};
use crate::net::tls::Tls;
use crate::net::Connection;
use crate::report::{Recipient, Report};
use crate::smtp::auth::{self, Exchange};
use crate::smtp::command::Command;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::{Reply, Severity};
use crate::transcript::Transcript;

/// Run the whole dialogue and return what the server did with each recipient. With
/// `cfg.quit_after` it stops after that milestone instead (the message is then never sent).
pub fn deliver(
    conn: Connection,
    cfg: &Config,
    tls: &Tls,
    envelope: &Envelope,
    message: Message,
) -> Result<Report> {
    deliver_keeping(conn, cfg, tls, envelope, &mut Some(message))
}

/// [`deliver`], taking the message out of `message` only when the server is ready for it
/// (after DATA's 354): a dialogue that fails before that leaves it there, to be offered to
/// the next MX host.
pub fn deliver_keeping(
    conn: Connection,
    cfg: &Config,
    tls: &Tls,
    envelope: &Envelope,
    message: &mut Option<Message>,
) -> Result<Report> {
    dialogue(conn, cfg, tls, Some(envelope), message, cfg.quit_after())
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

/// `--quit-after` before DATA: the dialogue up to `stop`, then QUIT (after `connect`, just a
/// close). No message is needed; `envelope` is, from `mail` on (MAIL FROM then carries no
/// SIZE or BODY parameter). The report lists the RCPT replies when `stop` is `rcpt`.
pub fn rehearse(
    conn: Connection,
    cfg: &Config,
    tls: &Tls,
    envelope: Option<&Envelope>,
    stop: Milestone,
) -> Result<Report> {
    dialogue(conn, cfg, tls, envelope, &mut None, Some(stop))
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

fn dialogue(
    conn: Connection,
    cfg: &Config,
    tls: &Tls,
    envelope: Option<&Envelope>,
    message: &mut Option<Message>,
    stop: Option<Milestone>,
) -> Result<Report> {
    let mut session = match establish(conn, cfg, tls, stop)? {
        Established::Ready(session) => *session,
        Established::Stopped(report) => return Ok(report),
    };
    let Some(envelope) = envelope else {
        session.quit();
        return Err(anyhow::anyhow!("no envelope for MAIL FROM (a bug)"));
    };
    let around = Around {
        reset_first: false,
        quit_last: true,
    };
    match transaction(
        &mut session.conn,
        cfg,
        &session.caps,
        envelope,
        message,
        stop,
        around,
    ) {
        Ok((report, End::Quit | End::QuitSent)) => {
            // The transaction is over: let the queue drop a delivered entry before QUIT
            // (or, pipelined, before QUIT's reply is read).
            if let Some(hook) = &cfg.on_transaction_end {
                (hook.0)(&report);
            }
            session.quit();
            Ok(report)
        }
        Ok((report, End::Close)) => {
            session.conn.close();
            Ok(report)
        }
        Err(e) => Err(quit_after(&mut session.conn, e)),
    }
}

/// How [`establish`] ended: a session ready for MAIL, or `--quit-after` reached before it.
enum Established {
    Ready(Box<Session>),
    Stopped(Report),
}

/// Greeting, EHLO, STARTTLS (as the policy says), EHLO again, AUTH: everything before the
/// first MAIL. With `stop`, QUIT at that milestone instead.
fn establish(
    mut conn: Connection,
    cfg: &Config,
    tls: &Tls,
    stop: Option<Milestone>,
) -> Result<Established> {
    // At or past the milestone asked for: a configuration that skips a step (no STARTTLS
    // with --tls none) still stops at the next check, never later.
    let stops = |m: Milestone| stop.is_some_and(|s| s <= m);
    if stops(Milestone::Connect) {
        conn.transcript()
            .info("--quit-after connect: closing the connection");
        conn.close();
        return Ok(Established::Stopped(no_report()));
    }
    if let Err(e) = greeting(&mut conn) {
        return Err(quit_after(&mut conn, e));
    }
    if stops(Milestone::Greeting) {
        return Ok(Established::Stopped(stop_here(
            &mut conn,
            Milestone::Greeting,
        )));
    }
    let caps = match ehlo(&mut conn, cfg) {
        Ok(c) => c,
        Err(e) => return Err(quit_after(&mut conn, e)),
    };
    if stops(Milestone::Ehlo) {
        return Ok(Established::Stopped(stop_here(&mut conn, Milestone::Ehlo)));
    }
    let (mut conn, caps) = match cfg.security {
        Security::StartTlsRequired => {
            let mut conn = secure(conn, cfg, tls, &caps)?;
            if stops(Milestone::StartTls) {
                return Ok(Established::Stopped(stop_here(
                    &mut conn,
                    Milestone::StartTls,
                )));
            }
            match ehlo(&mut conn, cfg) {
                Ok(caps) => (conn, caps),
                Err(e) => return Err(quit_after(&mut conn, e)),
            }
        }
        Security::Opportunistic if caps.starttls && !conn.is_tls() => {
            match opportunistic(conn, tls)? {
                (mut conn, true) => match ehlo(&mut conn, cfg) {
                    Ok(caps) => (conn, caps),
                    Err(e) => return Err(quit_after(&mut conn, e)),
                },
                (conn, false) => (conn, caps),
            }
        }
        Security::Implicit | Security::Plain | Security::Opportunistic => (conn, caps),
    };
    if stops(Milestone::Tls) {
        return Ok(Established::Stopped(stop_here(&mut conn, Milestone::Tls)));
    }
    if let Err(e) = authenticate(&mut conn, cfg, &caps) {
        return Err(quit_after(&mut conn, e));
    }
    if stops(Milestone::Auth) {
        return Ok(Established::Stopped(stop_here(&mut conn, Milestone::Auth)));
    }
    Ok(Established::Ready(Box::new(Session {
        conn,
        caps,
        used: false,
    })))
}

/// A connection through greeting, EHLO, STARTTLS and AUTH, ready for mail transactions:
/// what `postie batch` sends many messages over. Each [`Session::send`] is one
/// transaction (MAIL, RCPT..., DATA, message); after one that failed with a reply, the
/// session is reset (RSET) and ready for the next.
pub struct Session {
    conn: Connection,
    caps: Capabilities,
    /// A transaction has run (or failed) since the last RSET: the next one starts with RSET,
    /// pipelined with its MAIL.
    used: bool,
}

impl Session {
    /// Run the dialogue up to the first MAIL. On failure the connection is closed
    /// (after QUIT when the server is still talking).
    pub fn open(conn: Connection, cfg: &Config, tls: &Tls) -> Result<Session> {
        match establish(conn, cfg, tls, None)? {
            Established::Ready(session) => Ok(*session),
            Established::Stopped(_) => Err(anyhow::anyhow!("session stopped early (a bug)")),
        }
    }

    /// What the server offered in its last EHLO (inside TLS when TLS is up).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The connection's transcript, for notes between transactions.
    pub fn transcript(&mut self) -> &mut Transcript {
        self.conn.transcript()
    }

    /// One mail transaction. The message is taken out of `message` only when the server
    /// is ready for it; a transaction that failed before leaves it there. The second and
    /// later transactions start with RSET (RFC 5321 §4.1.1.5), in the same write as MAIL
    /// when the server offers PIPELINING, so a transaction abandoned with a reply (the
    /// connection still talks) leaves the session ready for the next. Any other error
    /// (connection lost, timeout, 421) leaves a session that should be dropped.
    pub fn send(
        &mut self,
        cfg: &Config,
        envelope: &Envelope,
        message: &mut Option<Message>,
    ) -> Result<Report> {
        let around = Around {
            reset_first: self.used,
            quit_last: false,
        };
        self.used = true;
        transaction(
            &mut self.conn,
            cfg,
            &self.caps,
            envelope,
            message,
            None,
            around,
        )
        .map(|(report, _)| report)
        .inspect_err(|_| {
            // A failure part-way through the message (reading it, or an 8-bit byte for a
            // server without 8BITMIME): only a close keeps the partial message from being
            // delivered, and the session is over.
            if self.conn.in_data() {
                self.conn.abort();
            }
        })
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
        self.used = false;
        Ok(())
    }

    /// QUIT and close, best effort.
    pub fn quit(mut self) {
        quit(&mut self.conn);
    }
}

/// A reply-shaped error: the server answered, so the connection is still in step.
fn is_polite(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<Error>(),
        Some(Error::Reply { .. } | Error::Unavailable(_) | Error::Data(_))
    )
}

/// The report of a dialogue that stopped before RCPT: no recipients, no final reply.
fn no_report() -> Report {
    Report {
        recipients: Vec::new(),
        final_reply: None,
    }
}

/// --quit-after reached: say so in the transcript and QUIT.
fn stop_here(conn: &mut Connection, at: Milestone) -> Report {
    conn.transcript()
        .info(&format!("--quit-after {at}: quitting"));
    quit(conn);
    no_report()
}

/// What `--probe` does with one server: greeting, EHLO, STARTTLS when the server offers it
/// and `starttls` allows, EHLO again inside TLS, QUIT. No AUTH, no mail. Everything learned
/// (greeting, each EHLO, the TLS session) is in the connection's trace.
///
/// A failed STARTTLS (refused, or the handshake failed) is not an error here: it comes
/// back as [`Explored::TlsFailed`], since it is one of the things a probe finds out.
/// Everything else that stops the dialogue is an error, as in [`deliver`].
pub fn explore(conn: Connection, cfg: &Config, tls: &Tls, starttls: bool) -> Result<Explored> {
    let mut conn = conn;
    if let Err(e) = greeting(&mut conn) {
        return Err(quit_after(&mut conn, e));
    }
    let caps = match ehlo(&mut conn, cfg) {
        Ok(c) => c,
        Err(e) => return Err(quit_after(&mut conn, e)),
    };
    if !(starttls && caps.starttls && !conn.is_tls()) {
        quit(&mut conn);
        return Ok(Explored::Done);
    }
    if let Err(e) = starttls_command(&mut conn) {
        // A refused STARTTLS leaves a server that still talks.
        let polite = matches!(e.downcast_ref::<Error>(), Some(Error::Reply { .. }));
        if polite {
            quit(&mut conn);
            return Ok(Explored::TlsFailed(e));
        }
        return Err(e);
    }
    let mut conn = match conn.starttls(tls) {
        Ok(c) => c,
        Err(e) => return Ok(Explored::TlsFailed(e)),
    };
    if let Err(e) = ehlo(&mut conn, cfg) {
        return Err(quit_after(&mut conn, e));
    }
    quit(&mut conn);
    Ok(Explored::Done)
}

/// How [`explore`] ended.
#[derive(Debug)]
pub enum Explored {
    /// The dialogue ran to QUIT.
    Done,
    /// STARTTLS was refused, or its handshake failed (then the connection is gone).
    TlsFailed(anyhow::Error),
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
fn greeting(conn: &mut Connection) -> Result<()> {
    let reply = conn.read_reply(Phase::Greeting)?;
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
fn ehlo(conn: &mut Connection, cfg: &Config) -> Result<Capabilities> {
    let caps = ehlo_or_helo(conn, cfg)?;
    let tls = conn.is_tls();
    let copy = caps.clone();
    conn.transcript()
        .trace()
        .record(|t| t.ehlo.push((tls, copy)));
    Ok(caps)
}

fn ehlo_or_helo(conn: &mut Connection, cfg: &Config) -> Result<Capabilities> {
    if cfg.protocol == Protocol::Lmtp {
        // RFC 2033 §4.1: LHLO replaces EHLO, and there is no HELO to fall back to.
        let reply = command(
            conn,
            &Command::Lhlo(cfg.helo.clone()),
            Phase::Ehlo,
            Severity::PositiveCompletion,
            "LHLO",
        )?;
        return Ok(Capabilities::from_ehlo(&reply));
    }
    conn.send(&Command::Ehlo(cfg.helo.clone()), Phase::Ehlo)?;
    let reply = conn.read_reply(Phase::Ehlo)?;
    match reply.code.severity {
        Severity::PositiveCompletion => Ok(Capabilities::from_ehlo(&reply)),
        Severity::PermanentNegative => {
            conn.transcript().info("EHLO refused; trying HELO");
            command(
                conn,
                &Command::Helo(cfg.helo.clone()),
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
fn secure(
    mut conn: Connection,
    cfg: &Config,
    tls: &Tls,
    caps: &Capabilities,
) -> Result<Connection> {
    if !caps.starttls {
        let err = Error::Unavailable(format!(
            "{} does not offer STARTTLS, which is required (use --tls implicit for port 465, \
             or --tls none to send in plain text)",
            cfg.server
                .as_ref()
                .map_or("the server", |s| s.host.as_str())
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

fn authenticate(conn: &mut Connection, cfg: &Config, caps: &Capabilities) -> Result<()> {
    let Some(creds) = &cfg.credentials else {
        return Ok(());
    };
    if !conn.is_tls() && !cfg.allow_plaintext_auth {
        return Err(Error::Unavailable(
            "refusing to send the password over a connection without TLS \
             (use TLS, or --allow-plaintext-auth if you must)"
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
    let mech = auth::choose(&caps.auth, cfg.auth).map_err(Error::Unavailable)?;
    conn.transcript().trace().record(|t| t.auth = Some(mech));
    // OAUTHBEARER names the server it talks to (RFC 7628 §3.1).
    let (host, port) = match (&cfg.server, conn.peer()) {
        (Some(server), _) => (server.host.clone(), server.port),
        (None, Some(peer)) => (peer.ip().to_string(), peer.port()),
        // A unix domain socket: the local host, no port.
        (None, None) => ("localhost".to_string(), 0),
    };
    let mut exchange = Exchange::new(mech, &creds.user, &creds.password, &host, port);
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

/// How the body travels, decided before MAIL from the message and the capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Any bytes as they are (mostly 7-bit; 8-bit declared with BODY=8BITMIME).
    Text,
    /// The server has no 8BITMIME and the message streams: its bytes must stay 7-bit, and
    /// an 8-bit byte found while sending aborts the transaction.
    SevenBitOnly,
    /// BODY=BINARYMIME: exact bytes with BDAT, no line-ending normalisation.
    Binary,
}

/// MAIL FROM parameters, and how the body must travel. Without a message (--quit-after
/// mail/rcpt) there is no SIZE or BODY to declare. Refusals here happen before MAIL.
fn mail_params(
    caps: &Capabilities,
    cfg: &Config,
    tls: bool,
    envelope: &Envelope,
    message: Option<&Message>,
) -> Result<(Vec<String>, Body)> {
    let mut params = Vec::new();
    if let (Some(limit), Some(size)) = (caps.size, message.and_then(|m| m.size)) {
        if limit > 0 && size > limit {
            return Err(Error::Data(format!(
                "the message is {size} bytes but the server accepts at most {limit}"
            ))
            .into());
        }
        params.push(format!("SIZE={size}"));
    }
    let body = match message.map(|m| (m.body_kind(), m.eight_bit)) {
        None => Body::Text,
        Some((BodyKind::Binary, _)) => {
            if !(caps.chunking && caps.binarymime && cfg.chunking) {
                return Err(Error::Data(
                    "the message has a binary part (Content-Transfer-Encoding: binary), which \
                     needs a server offering CHUNKING and BINARYMIME (and no --no-chunking)"
                        .into(),
                )
                .into());
            }
            params.push("BODY=BINARYMIME".into());
            Body::Binary
        }
        Some((BodyKind::EightBit, _)) => {
            if !caps.eightbitmime {
                return Err(eight_bit_refused().into());
            }
            params.push("BODY=8BITMIME".into());
            Body::Text
        }
        // Not read whole: its rest may be 8-bit.
        Some((BodyKind::SevenBit, None)) if caps.eightbitmime => {
            params.push("BODY=8BITMIME".into());
            Body::Text
        }
        Some((BodyKind::SevenBit, None)) => Body::SevenBitOnly,
        Some((BodyKind::SevenBit, Some(_))) => Body::Text,
    };
    let utf8_headers = message.is_some_and(|m| m.utf8_headers());
    if envelope.needs_smtputf8() {
        if !caps.smtputf8 {
            return Err(Error::Data(
                "an address is not ASCII and the server does not offer SMTPUTF8".into(),
            )
            .into());
        }
        params.push("SMTPUTF8".into());
    } else if utf8_headers && caps.smtputf8 {
        // RFC 6532 UTF-8 header fields. Without SMTPUTF8 they can still go as 8-bit data.
        params.push("SMTPUTF8".into());
    }
    if cfg.require_tls {
        if !tls {
            return Err(Error::Unavailable(
                "--require-tls: the connection is not encrypted, so REQUIRETLS cannot be asked \
                 for (RFC 8689 §4.1)"
                    .into(),
            )
            .into());
        }
        if !caps.requiretls {
            return Err(Error::Unavailable(
                "--require-tls: the server does not offer REQUIRETLS".into(),
            )
            .into());
        }
        params.push("REQUIRETLS".into());
    }
    Ok((params, body))
}

fn eight_bit_refused() -> Error {
    Error::Data(
        "the message has 8-bit data but the server does not offer 8BITMIME: encode it \
         (quoted-printable or base64), or send it through a server that offers 8BITMIME"
            .into(),
    )
}

/// What [`transaction`] does around MAIL..end of data.
#[derive(Debug, Clone, Copy, Default)]
struct Around {
    /// RSET first: an earlier transaction ran on this connection.
    reset_first: bool,
    /// QUIT right after the end of data, in the same write when pipelining.
    quit_last: bool,
}

/// A message at most this big (on the wire) goes as one `BDAT n LAST` in the same write as
/// MAIL and RCPT.
const SMALL_BDAT: usize = 64 * 1024;
/// BDAT chunk size for bigger messages.
const CHUNK: usize = 1024 * 1024;

/// How to read a reply inside a pipelined group: a 421 ends everything at once (the server
/// is closing; later replies will never come).
fn read_group(conn: &mut Connection, phase: Phase, what: &str) -> Result<Reply> {
    let reply = conn.read_reply(phase)?;
    if reply.code.as_u16() == 421 {
        return Err(Error::Reply {
            phase,
            what: what.into(),
            reply,
        }
        .into());
    }
    Ok(reply)
}

/// MAIL, RCPT for each recipient, DATA (or BDAT) and the message; or less, as `stop`
/// says. With PIPELINING (RFC 2920) the commands up to DATA go out in one write and the
/// replies are read after, in order; without, one by one (see [`lockstep`]).
fn transaction(
    conn: &mut Connection,
    cfg: &Config,
    caps: &Capabilities,
    envelope: &Envelope,
    message: &mut Option<Message>,
    stop: Option<Milestone>,
    around: Around,
) -> Result<(Report, End)> {
    let (mut params, body) = mail_params(caps, cfg, conn.is_tls(), envelope, message.as_ref())?;
    let dsn = &cfg.dsn;
    let wants_dsn = dsn.notify.is_some() || dsn.ret.is_some() || dsn.envid.is_some();
    let use_dsn = wants_dsn && caps.dsn;
    if wants_dsn && !caps.dsn {
        conn.transcript()
            .info("DSN requested but the server does not offer DSN: ignored");
    }
    if use_dsn {
        if let Some(ret) = &dsn.ret {
            params.push(format!("RET={ret}"));
        }
        if let Some(envid) = &dsn.envid {
            params.push(format!("ENVID={}", xtext(envid)));
        }
    }
    let mail = Command::Mail {
        reverse_path: envelope.reverse_path.clone(),
        params,
    };
    let rcpts: Vec<Command> = envelope
        .forward_paths
        .iter()
        .map(|rcpt| Command::Rcpt {
            forward_path: rcpt.clone(),
            params: rcpt_params(dsn, use_dsn, rcpt),
        })
        .collect();
    let chunking = caps.chunking && cfg.chunking && stop.is_none();
    let pipelined = caps.pipelining && cfg.pipelining && stop.is_none();
    let ctx = Tx {
        cfg,
        body,
        chunking,
        pipelined,
        quit_last: around.quit_last,
    };
    if !pipelined {
        return lockstep(conn, &ctx, envelope, &mail, &rcpts, message, stop, around);
    }

    // One write: [RSET] MAIL RCPT... then DATA, or a small message's BDAT n LAST (and QUIT).
    let small = match (chunking, message.as_ref().and_then(Message::whole)) {
        (true, Some(bytes)) => Some(bdat_bytes(bytes, body)).filter(|b| b.len() <= SMALL_BDAT),
        _ => None,
    };
    if around.reset_first {
        conn.queue(&Command::Rset, Phase::Rset);
    }
    conn.queue(&mail, Phase::Mail);
    for rcpt in &rcpts {
        conn.queue(rcpt, Phase::Rcpt);
    }
    match &small {
        Some(bytes) => {
            let bdat = Command::Bdat {
                size: bytes.len() as u64,
                last: true,
            };
            conn.queue(&bdat, Phase::DataBlock);
            conn.queue_data(bytes)?;
            if around.quit_last {
                conn.queue(&Command::Quit, Phase::Quit);
            }
        }
        None if !chunking => conn.queue(&Command::Data, Phase::DataInit),
        None => {}
    }

    if around.reset_first {
        let reply = read_group(conn, Phase::Rset, "RSET")?;
        expect(reply, Severity::PositiveCompletion, Phase::Rset, "RSET")?;
    }
    let what_mail = format!("MAIL FROM <{}>", envelope.reverse_path);
    let mail_reply = read_group(conn, Phase::Mail, &what_mail)?;
    let mail_ok = mail_reply.code.severity == Severity::PositiveCompletion;
    let mut recipients = Vec::new();
    for rcpt in &envelope.forward_paths {
        let reply = read_group(conn, Phase::Rcpt, &format!("RCPT TO <{rcpt}>"))?;
        recipients.push(Recipient::at_rcpt(rcpt.clone(), reply));
    }
    let accepted = if mail_ok {
        recipients.iter().filter(|r| r.accepted()).count()
    } else {
        0
    };
    let mail_refused = || -> anyhow::Error {
        Error::Reply {
            phase: Phase::Mail,
            what: what_mail.clone(),
            reply: mail_reply.clone(),
        }
        .into()
    };
    let refused = |recipients: Vec<Recipient>, end: End| {
        Ok((
            Report {
                recipients,
                final_reply: None,
            },
            end,
        ))
    };

    if small.is_some() {
        let end = if around.quit_last {
            End::QuitSent
        } else {
            End::Quit
        };
        if accepted == 0 {
            // The server read the chunk and refused it (503/554): nothing was delivered.
            read_group(conn, Phase::DataEnd, "BDAT")?;
            return if mail_ok {
                refused(recipients, end)
            } else {
                Err(mail_refused())
            };
        }
        message.take();
        return finish(conn, cfg, recipients, end);
    }
    if chunking {
        if !mail_ok {
            return Err(mail_refused());
        }
        if accepted == 0 {
            return refused(recipients, End::Quit);
        }
        return send_chunks(conn, &ctx, recipients, message);
    }
    let data_reply = read_group(conn, Phase::DataInit, "DATA")?;
    let go = data_reply.code.severity == Severity::PositiveIntermediate;
    if accepted == 0 {
        if go {
            // RFC 2920 §3.1: a server that says 354 with no valid recipient gets an empty
            // message, which it cannot deliver to anyone.
            abandon_data(conn)?;
        }
        return if mail_ok {
            refused(recipients, End::Quit)
        } else {
            Err(mail_refused())
        };
    }
    expect(
        data_reply,
        Severity::PositiveIntermediate,
        Phase::DataInit,
        "DATA",
    )?;
    send_message(conn, &ctx, recipients, message)
}

/// Settings of one transaction, for its helpers.
struct Tx<'a> {
    cfg: &'a Config,
    body: Body,
    chunking: bool,
    pipelined: bool,
    quit_last: bool,
}

/// RCPT parameters: NOTIFY as asked, and ORCPT (RFC 3461 §4.2) with the address as given,
/// so that a DSN names the recipient the sender used. ORCPT is "rfc822;" + xtext, for ASCII
/// addresses only (a UTF-8 one would need RFC 6533's utf-8 type: left out).
fn rcpt_params(dsn: &crate::config::Dsn, use_dsn: bool, rcpt: &str) -> Vec<String> {
    let mut params = Vec::new();
    if !use_dsn {
        return params;
    }
    if let Some(notify) = &dsn.notify {
        params.push(format!("NOTIFY={notify}"));
    }
    if rcpt.is_ascii() {
        params.push(format!("ORCPT=rfc822;{}", xtext(rcpt)));
    }
    params
}

/// The BDAT bytes of a message held whole: line ends normalised to CRLF (exact bytes for
/// BINARYMIME).
fn bdat_bytes(message: &[u8], body: Body) -> Vec<u8> {
    if body == Body::Binary {
        return message.to_vec();
    }
    let mut normaliser = DotStuffer::crlf_only(Vec::with_capacity(message.len() + 2));
    // Writing to a Vec cannot fail.
    let _ = normaliser.write_all(message);
    normaliser.finish().unwrap_or_default()
}

/// After a 354 that should not have come (no recipient accepted): end the data at once,
/// and read the (negative) reply.
fn abandon_data(conn: &mut Connection) -> Result<()> {
    conn.queue_data(b".\r\n")?;
    conn.read_reply(Phase::DataEnd)?;
    Ok(())
}

/// The reply (SMTP) or replies (LMTP) to the end of the message.
fn finish(
    conn: &mut Connection,
    cfg: &Config,
    mut recipients: Vec<Recipient>,
    end: End,
) -> Result<(Report, End)> {
    if cfg.protocol == Protocol::Lmtp {
        let final_reply = lmtp_replies(conn, &mut recipients)?;
        return Ok((
            Report {
                recipients,
                final_reply,
            },
            end,
        ));
    }
    let reply = conn.read_reply(Phase::DataEnd)?;
    let reply = expect(
        reply,
        Severity::PositiveCompletion,
        Phase::DataEnd,
        "the message (end of data)",
    )?;
    Ok((
        Report {
            recipients,
            final_reply: Some(reply),
        },
        end,
    ))
}

/// Without PIPELINING (or with --no-pipelining or --quit-after): each command waits for its
/// reply, and the dialogue stops at the first refusal or at `stop`.
#[allow(clippy::too_many_arguments)]
fn lockstep(
    conn: &mut Connection,
    ctx: &Tx,
    envelope: &Envelope,
    mail: &Command,
    rcpts: &[Command],
    message: &mut Option<Message>,
    stop: Option<Milestone>,
    around: Around,
) -> Result<(Report, End)> {
    if around.reset_first {
        command(
            conn,
            &Command::Rset,
            Phase::Rset,
            Severity::PositiveCompletion,
            "RSET",
        )?;
    }
    command(
        conn,
        mail,
        Phase::Mail,
        Severity::PositiveCompletion,
        format!("MAIL FROM <{}>", envelope.reverse_path),
    )?;
    if stop == Some(Milestone::Mail) {
        conn.transcript().info("--quit-after mail: quitting");
        return Ok((no_report(), End::Quit));
    }

    let mut recipients = Vec::new();
    for (rcpt, cmd) in envelope.forward_paths.iter().zip(rcpts) {
        conn.send(cmd, Phase::Rcpt)?;
        let reply = conn.read_reply(Phase::Rcpt)?;
        recipients.push(Recipient::at_rcpt(rcpt.clone(), reply));
    }
    let accepted = recipients.iter().filter(|r| r.accepted()).count();
    if accepted == 0 {
        // Nothing to send: abandon the transaction (RFC 5321 §4.1.1.5). Best effort: the
        // RCPT replies decide the outcome, and a server that said 421 has already closed
        // (reporting the lost RSET instead would hide its reply).
        if conn.send(&Command::Rset, Phase::Rset).is_ok() {
            let _ = conn.read_reply(Phase::Rset);
        }
        return Ok((
            Report {
                recipients,
                final_reply: None,
            },
            End::Quit,
        ));
    }
    if stop == Some(Milestone::Rcpt) {
        conn.transcript().info("--quit-after rcpt: quitting");
        return Ok((
            Report {
                recipients,
                final_reply: None,
            },
            End::Quit,
        ));
    }
    if ctx.chunking {
        return send_chunks(conn, ctx, recipients, message);
    }
    command(
        conn,
        &Command::Data,
        Phase::DataInit,
        Severity::PositiveIntermediate,
        "DATA",
    )?;
    if stop.is_some() {
        conn.transcript().info(
            "--quit-after data: closing without sending the message or the end-of-data \
             mark (nothing is delivered)",
        );
        return Ok((
            Report {
                recipients,
                final_reply: None,
            },
            End::Close,
        ));
    }
    send_message(conn, ctx, recipients, message)
}

/// After DATA's 354: the message, dot-stuffed, the end-of-data mark (and QUIT when
/// pipelining and this is the last transaction), then the reply.
fn send_message(
    conn: &mut Connection,
    ctx: &Tx,
    recipients: Vec<Recipient>,
    message: &mut Option<Message>,
) -> Result<(Report, End)> {
    let Some(message) = message.take() else {
        return Err(anyhow::anyhow!("no message to send (a bug)"));
    };
    send_data(conn, ctx, message)?;
    let end = if ctx.quit_last && ctx.pipelined {
        conn.queue(&Command::Quit, Phase::Quit);
        End::QuitSent
    } else {
        End::Quit
    };
    finish(conn, ctx.cfg, recipients, end)
}

/// LMTP's end of data (RFC 2033 §4.2): one reply per recipient accepted at RCPT, in RCPT
/// order, each stored with its recipient. Returns the first positive one (the report's
/// final reply, for the queue id and the log), or `None` when every recipient was refused.
/// A reply missing (the connection lost or timed out part-way) fails the whole run: the
/// recipients already answered may have their copy, the rest are unknown, so retry (75).
fn lmtp_replies(conn: &mut Connection, recipients: &mut [Recipient]) -> Result<Option<Reply>> {
    let mut first_positive = None;
    for rcpt in recipients.iter_mut().filter(|r| r.accepted()) {
        let reply = conn.read_reply(Phase::DataEnd)?;
        if first_positive.is_none() && reply.code.severity == Severity::PositiveCompletion {
            first_positive = Some(reply.clone());
        }
        rcpt.data_reply = Some(reply);
    }
    Ok(first_positive)
}

/// RFC 3461 §4 xtext: '+', '=' and bytes outside '!'..='~' become "+HH".
fn xtext(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'!'..=b'~' if b != b'+' && b != b'=' => (b as char).to_string(),
            _ => format!("+{b:02X}"),
        })
        .collect()
}

/// The message as it is read while sending: 8-bit bytes refused when the server has no
/// 8BITMIME, and the progress bar moved.
fn message_reader(message: Message, ctx: &Tx) -> Box<dyn Read> {
    let size = message.size;
    let mut input = message.into_reader();
    if ctx.body == Body::SevenBitOnly {
        input = Box::new(SevenBit(input));
    }
    progress::wrap(ctx.cfg, size, input)
}

/// Fails at the first byte above 127 (the server has no 8BITMIME).
struct SevenBit(Box<dyn Read>);

/// The error [`SevenBit`] returns; the sender turns it into [`eight_bit_refused`].
#[derive(Debug)]
struct EightBitFound;

impl std::fmt::Display for EightBitFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("8-bit data")
    }
}

impl std::error::Error for EightBitFound {}

impl Read for SevenBit {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if !buf[..n].is_ascii() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, EightBitFound));
        }
        Ok(n)
    }
}

/// One read of the message, with the error a failed read becomes. If reading fails, the
/// end of the data is never sent, so the server discards the partial message.
fn read_message(input: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.get_ref().is_some_and(|i| i.is::<EightBitFound>()) => {
                return Err(eight_bit_refused().into())
            }
            Err(e) => {
                return Err(Error::Io(format!(
                    "reading the message failed part-way, nothing was delivered: {e}"
                ))
                .into())
            }
        }
    }
}

/// Stream the message through the dot-stuffing codec into the connection's queue; the
/// end-of-data mark is queued last and goes out with the next read (or a pipelined QUIT).
fn send_data(conn: &mut Connection, ctx: &Tx, message: Message) -> Result<()> {
    let mut input = message_reader(message, ctx);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut writer = conn.data_writer();
    let mut stuffer = DotStuffer::new(&mut writer);
    loop {
        let n = read_message(&mut input, &mut chunk)?;
        if n == 0 {
            break;
        }
        if let Err(e) = stuffer.write_all(&chunk[..n]) {
            drop(stuffer);
            return Err(writer.failure(e));
        }
    }
    match stuffer.finish() {
        Ok(_) => {
            conn.end_data();
            Ok(())
        }
        Err(e) => Err(writer.failure(e)),
    }
}

/// BDAT (RFC 3030): the message in chunks of about [`CHUNK`] bytes with exact counts,
/// line ends normalised (exact bytes for BINARYMIME), the last one marked LAST. With
/// PIPELINING one chunk's reply is read while the next goes out; without, each waits.
fn send_chunks(
    conn: &mut Connection,
    ctx: &Tx,
    recipients: Vec<Recipient>,
    message: &mut Option<Message>,
) -> Result<(Report, End)> {
    let Some(message) = message.take() else {
        return Err(anyhow::anyhow!("no message to send (a bug)"));
    };
    let mut input = message_reader(message, ctx);
    let mut read_buf = vec![0u8; 64 * 1024];
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK + 2 * read_buf.len() + 2);
    let mut normaliser = (ctx.body != Body::Binary).then(|| DotStuffer::crlf_only(Vec::new()));
    // Chunks sent whose reply has not been read, and how many may be.
    let mut unanswered = 0usize;
    let window = if ctx.pipelined { 1 } else { 0 };
    loop {
        let n = read_message(&mut input, &mut read_buf)?;
        let last = n == 0;
        match normaliser.as_mut() {
            None => chunk.extend_from_slice(&read_buf[..n]),
            Some(normaliser) => {
                // Writing to a Vec cannot fail.
                let _ = normaliser.write_all(&read_buf[..n]);
                chunk.append(normaliser.get_mut());
            }
        }
        if last {
            if let Some(normaliser) = normaliser.take() {
                chunk.extend_from_slice(&normaliser.finish().unwrap_or_default());
            }
        } else if chunk.len() < CHUNK {
            continue;
        }
        let bdat = Command::Bdat {
            size: chunk.len() as u64,
            last,
        };
        conn.queue(&bdat, Phase::DataBlock);
        conn.queue_data(&chunk)?;
        chunk.clear();
        if last {
            break;
        }
        unanswered += 1;
        while unanswered > window {
            chunk_reply(conn)?;
            unanswered -= 1;
        }
    }
    let end = if ctx.quit_last && ctx.pipelined {
        conn.queue(&Command::Quit, Phase::Quit);
        End::QuitSent
    } else {
        End::Quit
    };
    for _ in 0..unanswered {
        chunk_reply(conn)?;
    }
    finish(conn, ctx.cfg, recipients, end)
}

/// The reply to a BDAT chunk that is not the last: 250, or the transaction is over.
fn chunk_reply(conn: &mut Connection) -> Result<()> {
    let reply = conn.read_reply(Phase::DataBlock)?;
    expect(
        reply,
        Severity::PositiveCompletion,
        Phase::DataBlock,
        "BDAT",
    )?;
    Ok(())
}

/// The progress bar for big bodies (indicatif): only on a terminal (stderr), never with
/// -v (it would garble the transcript) or in test mode, and only once more than
/// [`progress::MIN_SIZE`] bytes have been read, so a small message never flashes one.
mod progress {
    use std::io::{self, IsTerminal, Read};

    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

    use crate::config::Config;

    /// The bar appears after this many bytes.
    pub const MIN_SIZE: u64 = 4 * 1024 * 1024;

    /// Counts what is read through it; shows the bar past [`MIN_SIZE`].
    pub struct Progress<R> {
        inner: R,
        seen: u64,
        total: Option<u64>,
        bar: Option<ProgressBar>,
    }

    /// `input`, with a progress bar when the configuration and stderr allow one.
    pub fn wrap(cfg: &Config, size: Option<u64>, input: Box<dyn Read>) -> Box<dyn Read> {
        if cfg.verbosity > 0 || cfg.test_mode || !io::stderr().is_terminal() {
            return input;
        }
        if size.is_some_and(|n| n < MIN_SIZE) {
            return input;
        }
        Box::new(Progress {
            inner: input,
            seen: 0,
            total: size,
            bar: None,
        })
    }

    fn new_bar(total: Option<u64>) -> ProgressBar {
        let template = match total {
            Some(_) => "{bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
            None => "{bytes} sent, {bytes_per_sec}",
        };
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        match ProgressStyle::with_template(template) {
            Ok(style) => bar.with_style(style.progress_chars("=> ")),
            Err(_) => bar,
        }
    }

    impl<R: Read> Read for Progress<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.seen += n as u64;
            if self.bar.is_none() && self.seen >= MIN_SIZE {
                self.bar = Some(new_bar(self.total));
            }
            if let Some(bar) = &self.bar {
                bar.set_position(self.seen);
            }
            Ok(n)
        }
    }

    impl<R> Drop for Progress<R> {
        fn drop(&mut self) {
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::timeout::Timeouts;
    use crate::smtp::reply::parse;
    use crate::transcript::Transcript;
    use std::os::unix::net::UnixListener;
    use std::time::Duration;

    fn reply(text: &str) -> Reply {
        parse(text.as_bytes()).unwrap().unwrap().0
    }

    /// A connection over a unix socket to a thread that sends `bytes` and closes.
    fn serving(bytes: &'static str) -> (Connection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lmtp");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(bytes.as_bytes()).unwrap();
        });
        let timeouts = Timeouts {
            uniform: Some(Duration::from_secs(5)),
        };
        let conn = Connection::open_unix(&path, timeouts, Transcript::silent()).unwrap();
        (conn, dir)
    }

    /// RCPT replies, what the server sends after the end of data, each recipient's data
    /// reply code, the final reply's code.
    type LmtpCase = (
        &'static [&'static str],
        &'static str,
        &'static [Option<u16>],
        Option<u16>,
    );

    #[test]
    fn lmtp_reads_one_reply_per_accepted_recipient_in_order() {
        const OK: &str = "250 2.1.5 ok\r\n";
        const NO: &str = "550 5.1.1 unknown\r\n";
        let cases: &[LmtpCase] = &[
            (
                &[OK, OK],
                "250 2.0.0 <a> saved\r\n452 4.2.2 <b> full\r\n",
                &[Some(250), Some(452)],
                Some(250),
            ),
            (
                &[OK, OK],
                "550 5.1.1 <a> gone\r\n250 2.0.0 <b> saved\r\n",
                &[Some(550), Some(250)],
                Some(250),
            ),
            // A recipient refused at RCPT gets no reply at the end of data.
            (
                &[NO, OK, OK],
                "452 4.2.2 <b> full\r\n250-2.0.0 <c>\r\n250 2.0.0 saved\r\n",
                &[None, Some(452), Some(250)],
                Some(250),
            ),
            (&[OK], "451 4.3.0 <a> later\r\n", &[Some(451)], None),
        ];
        for (rcpts, script, want, want_final) in cases {
            let (mut conn, _dir) = serving(script);
            let mut recipients: Vec<Recipient> = rcpts
                .iter()
                .enumerate()
                .map(|(i, r)| Recipient::at_rcpt(format!("r{i}@x"), reply(r)))
                .collect();
            let final_reply = lmtp_replies(&mut conn, &mut recipients).unwrap();
            let got: Vec<Option<u16>> = recipients
                .iter()
                .map(|r| r.data_reply.as_ref().map(|d| d.code.as_u16()))
                .collect();
            assert_eq!(&got, want, "{script:?}");
            assert_eq!(final_reply.map(|r| r.code.as_u16()), *want_final);
        }
    }

    #[test]
    fn lmtp_replies_cut_short_are_a_lost_connection() {
        let ok = "250 2.1.5 ok\r\n";
        let (mut conn, _dir) = serving("250 2.0.0 <a> saved\r\n");
        let mut recipients = vec![
            Recipient::at_rcpt("a@x".into(), reply(ok)),
            Recipient::at_rcpt("b@x".into(), reply(ok)),
        ];
        let err = lmtp_replies(&mut conn, &mut recipients).unwrap_err();
        assert_eq!(
            crate::error::exit_code(&err),
            crate::error::Exit::TempFail,
            "{err:#}"
        );
    }

    /// A plain-text [`Session`] to the test server at `addr` (5 s timeouts), its
    /// configuration, and the envelope a@x.test -> b@x.test.
    fn session_to(addr: std::net::SocketAddr) -> (Session, Config, Envelope) {
        let cfg = config_for_tests(&["--server", &addr.to_string(), "--tls", "none"]);
        let tls = Tls::new(None, true).unwrap();
        let timeouts = Timeouts {
            uniform: Some(Duration::from_secs(5)),
        };
        let conn =
            Connection::open("127.0.0.1", &[addr], None, timeouts, Transcript::silent()).unwrap();
        let session = Session::open(conn, &cfg, &tls).unwrap();
        let envelope = Envelope {
            reverse_path: "a@x.test".into(),
            forward_paths: vec!["b@x.test".into()],
        };
        (session, cfg, envelope)
    }

    /// What a thread playing a pipelining server saw of two transactions on one Session:
    /// the bytes of the second group, read once after the client had time to send it all.
    #[test]
    fn second_transaction_pipelines_rset_with_mail() {
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
            // A lockstep client would have sent RSET alone and be waiting for its reply.
            std::thread::sleep(Duration::from_millis(300));
            let mut group = vec![0u8; 4096];
            let n = r.read(&mut group).unwrap();
            s.write_all(b"250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n")
                .unwrap();
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
        let (mut session, cfg, envelope) = session_to(addr);
        for i in 1..=2 {
            let mut message = Some(Message::in_memory(b"Subject: x\r\n\r\nhi\r\n".to_vec()));
            let report = session.send(&cfg, &envelope, &mut message).unwrap();
            assert!(message.is_none());
            assert_eq!(
                report.final_reply.map(|r| r.text()),
                Some(format!("queued {i}"))
            );
        }
        session.quit();
        assert_eq!(
            server.join().unwrap(),
            "RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"
        );
    }

    /// An 8-bit byte met while streaming to a server without 8BITMIME: 65 for this
    /// message, no end-of-data mark, and the session is over (the next send is a lost
    /// connection, 75), instead of RSET being written into the message.
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
            s.write_all(b"250-t\r\n250 PIPELINING\r\n").unwrap();
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
        let (mut session, cfg, envelope) = session_to(addr);
        let mut body = b"line\r\n".repeat(20_000);
        body.extend_from_slice("caf\u{e9}\r\n".as_bytes());
        let mut message = Some(Message::streaming(
            b"Subject: x\r\n\r\n".to_vec(),
            Box::new(io::Cursor::new(body)),
        ));
        let err = session.send(&cfg, &envelope, &mut message).unwrap_err();
        assert_eq!(
            crate::error::exit_code(&err),
            crate::error::Exit::DataErr,
            "{err:#}"
        );
        let mut again = Some(Message::in_memory(b"Subject: y\r\n\r\nhi\r\n".to_vec()));
        let err = session.send(&cfg, &envelope, &mut again).unwrap_err();
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

    fn config_for_tests(args: &[&str]) -> Config {
        crate::config::for_tests(args, &[])
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

    #[test]
    fn rcpt_params_carry_notify_and_orcpt_only_with_dsn() {
        let dsn = crate::config::Dsn {
            notify: Some("FAILURE,DELAY".into()),
            ret: None,
            envid: None,
        };
        assert_eq!(
            rcpt_params(&dsn, true, "a+b=c@x.test"),
            ["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;a+2Bb+3Dc@x.test"]
        );
        assert!(rcpt_params(&dsn, false, "a@x.test").is_empty());
        // A UTF-8 address would need RFC 6533's utf-8 type: no ORCPT.
        assert_eq!(
            rcpt_params(&dsn, true, "j\u{f6}rg@x.test"),
            ["NOTIFY=FAILURE,DELAY"]
        );
        let ret_only = crate::config::Dsn {
            ret: Some("HDRS".into()),
            ..crate::config::Dsn::default()
        };
        assert_eq!(
            rcpt_params(&ret_only, true, "a@x.test"),
            ["ORCPT=rfc822;a@x.test"]
        );
    }

    #[test]
    fn xtext_encodes_plus_equals_and_non_graphic() {
        assert_eq!(xtext("abc-123"), "abc-123");
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("\u{e9}"), "+C3+A9");
    }
}
