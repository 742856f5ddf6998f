//! One mail transaction: MAIL FROM, RCPT TO for each recipient, DATA or BDAT, and the
//! replies to the end of the message; or less, when `--quit-after` says mail, rcpt or data
//! (after DATA's 354, a close without the end-of-data mark, so that nothing is delivered:
//! RFC 5321 §4.1.1.4, the server has no message until CRLF.CRLF).
//!
//! Owns: the MAIL and RCPT parameters (SIZE, BODY, SMTPUTF8, REQUIRETLS, DSN's RET, ENVID,
//! NOTIFY and ORCPT as xtext), refusing before MAIL what the server cannot take; the order
//! of commands and replies — one write up to DATA with PIPELINING, a small message's
//! `BDAT n LAST` in that same write (a big one that can be read again: its first chunks,
//! never the last), one command at a time without — and what the replies
//! mean per recipient ([`Report`]). A transaction in which no recipient was accepted sends
//! no message (RSET, or an empty data after an unexpected 354). All or nothing
//! (`--all-or-nothing`, the msmtp persona) holds DATA or BDAT back until every RCPT reply
//! is in, and a refused recipient means RSET: the accepted ones are withheld.
//!
//! LMTP (RFC 2033) is the same transaction with, after the end of data, one reply per
//! recipient accepted at RCPT, in RCPT order (§4.2); each lands in that recipient's entry
//! of the [`Report`].
//!
//! The message is only looked at here (size, kind, a small one's bytes) until the server
//! is ready for it; then [`deliver`] hands it to `data` by value, and gives it back to the
//! caller otherwise, so a message can be offered to the next host only while no server has
//! it. When its first chunks go early, a copy read afresh stands for it, and that copy is
//! what comes back if no recipient was accepted (the server had no LAST: it has nothing).
//!
//! For a server without 8BITMIME, a message that is (or, streamed, may be) 8-bit is first
//! handed to `message::for_seven_bit_server`, which converts its 8-bit MIME parts to 7-bit
//! (RFC 6152 §3) or refuses it; the converted message is what MAIL declares and what is
//! sent, and it is what comes back to the caller when no server took it.
//!
//! Must not: read or encode the message itself (that is `data`'s, and the conversion
//! `message`'s), or decide on QUIT after a failure (the caller does).
//!
//! RFC 5321 §3.3, §4.1.1.2-§4.1.1.5 (MAIL, RCPT, DATA, RSET); RFC 2920 (PIPELINING);
//! RFC 3030 (CHUNKING, BINARYMIME); RFC 1870 (SIZE); RFC 6152 (8BITMIME); RFC 6531
//! (SMTPUTF8); RFC 8689 (REQUIRETLS); RFC 3461 §4 (DSN parameters, xtext); RFC 2033 §4.2.

use anyhow::Result;

use crate::config::{Protocol, SessionOptions};
use crate::envelope::Envelope;
use crate::error::Error;
use crate::message::{BodyKind, Message};
use crate::net::timeout::Phase;
use crate::net::Connection;
use crate::report::{Recipient, Report};
use crate::smtp::command::Command;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::{Reply, Severity};

use super::data::{self, eight_bit_refused, Body, Chunks, Sending};
use super::{command, expect, no_report, End, Late};

/// MAIL FROM parameters, and how the body must travel. Without a message (--quit-after
/// mail/rcpt) there is no SIZE or BODY to declare. Refusals here happen before MAIL.
pub(super) fn mail_params(
    caps: &Capabilities,
    opts: &SessionOptions,
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
            if !(caps.chunking && caps.binarymime && opts.chunking) {
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
    if opts.require_tls {
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

/// What [`deliver`] does around MAIL..end of data.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Around {
    /// RSET first: an earlier transaction ran on this connection.
    pub reset_first: bool,
    /// QUIT right after the end of data, in the same write when pipelining.
    pub quit_last: bool,
}

/// A message at most this big (on the wire) goes as one `BDAT n LAST` in the same write as
/// MAIL and RCPT.
pub(super) const SMALL_BDAT: usize = 64 * 1024;

/// How to read a reply inside a pipelined group: a 421 ends everything at once (the server
/// is closing; later replies will never come).
pub(super) fn read_group(conn: &mut Connection, phase: Phase, what: &str) -> Result<Reply> {
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

/// The replies to a pipelined group's MAIL and RCPTs, read in order (after its RSET's, if
/// any): the MAIL reply and whether it accepted, and each recipient with its reply. A 421
/// (or a lost connection) is the error.
pub(super) fn envelope_replies(
    conn: &mut Connection,
    envelope: &Envelope,
) -> Result<(Reply, bool, Vec<Recipient>)> {
    let what_mail = format!("MAIL FROM <{}>", envelope.reverse_path);
    let mail_reply = read_group(conn, Phase::Mail, &what_mail)?;
    let mail_ok = mail_reply.code.severity == Severity::PositiveCompletion;
    if mail_ok {
        conn.set_transaction_open(true);
    }
    let mut recipients = Vec::with_capacity(envelope.forward_paths.len());
    for rcpt in &envelope.forward_paths {
        let reply = read_group(conn, Phase::Rcpt, &format!("RCPT TO <{rcpt}>"))?;
        recipients.push(Recipient::at_rcpt(rcpt.clone(), reply));
    }
    Ok((mail_reply, mail_ok, recipients))
}

/// MAIL's refusal as the error.
pub(super) fn mail_refused(envelope: &Envelope, reply: Reply) -> anyhow::Error {
    Error::Reply {
        phase: Phase::Mail,
        what: format!("MAIL FROM <{}>", envelope.reverse_path),
        reply,
    }
    .into()
}

/// MAIL, RCPT for each recipient, DATA (or BDAT) and the message. With PIPELINING
/// (RFC 2920) the commands up to DATA go out in one write and the replies are read after,
/// in order; without, one by one (see [`lockstep`]). The message comes back (second value)
/// when the server was never given it: refused, or failed before DATA's 354 or a BDAT.
pub(super) fn deliver(
    conn: &mut Connection,
    opts: &SessionOptions,
    caps: &Capabilities,
    envelope: &Envelope,
    message: Message,
    around: Around,
) -> (Result<(Report, End)>, Option<Message>) {
    let message = match as_sent(conn, opts, caps, message) {
        Ok(message) => message,
        // Refused (65) or unreadable: no server will be given it.
        Err(e) => return (Err(e), None),
    };
    // Early data: the message itself goes (it may be watched), and a copy read afresh
    // stands for it — declared in MAIL, and given back when no server took the message.
    let (message, early) = match early_data(opts, caps, &message) {
        true => match message.again() {
            Some(copy) => (copy, Some(message)),
            None => (message, None),
        },
        false => (message, None),
    };
    let (sending, opened) = match open(conn, opts, caps, envelope, &message, early, around) {
        Ok(x) => x,
        Err(e) => return (Err(e), Some(message)),
    };
    let outcome = match opened {
        Opened::Done(report, end) => return (Ok((report, end)), Some(message)),
        // The message went out whole with MAIL and RCPT: only the replies are left.
        Opened::Sent(recipients, end) => finish(conn, opts, recipients, end),
        Opened::Data(recipients) => data::send_message(conn, sending, message)
            .and_then(|end| finish(conn, opts, recipients, end)),
        Opened::Chunks(recipients, started) => {
            let chunks = started.unwrap_or_else(|| Chunks::new(message, sending.body));
            chunks
                .send_rest(conn, sending)
                .and_then(|end| finish(conn, opts, recipients, end))
        }
    };
    (outcome, None)
}

/// Whether the message's first chunks go in the same write as MAIL and RCPT, before their
/// replies are in (RFC 3030 §4.2: BDAT may be pipelined; a big message then takes one
/// round trip less than with DATA): with PIPELINING and CHUNKING, not all or nothing (the
/// data would come before the verdict) and not LMTP, for a message that streams (a small
/// one held whole goes whole in that write already; a big one held whole is not copied)
/// and can be read again ([`Message::again`]: a file, or composed with its attachments in
/// their files — not stdin), so that when no recipient is accepted it is still whole for
/// another host. Only chunks before the last go early: until the rest goes, the server has
/// no LAST, so it cannot have taken the message.
fn early_data(opts: &SessionOptions, caps: &Capabilities, message: &Message) -> bool {
    caps.pipelining
        && opts.pipelining
        && caps.chunking
        && opts.chunking
        && !opts.all_or_nothing
        && opts.protocol != Protocol::Lmtp
        && message.whole().is_none()
}

/// The message as this server will be given it: for one without 8BITMIME, converted to
/// 7-bit when it needs to be (said in the transcript), or refused.
fn as_sent(
    conn: &mut Connection,
    opts: &SessionOptions,
    caps: &Capabilities,
    message: Message,
) -> Result<Message> {
    if !needs_seven_bit(caps, &message) {
        return Ok(message);
    }
    let (message, converted) = crate::message::for_seven_bit_server(opts.dkim.as_ref(), message)?;
    if let Some(note) = converted {
        conn.transcript().info(&note);
    }
    Ok(message)
}

/// The server has no 8BITMIME and the message is, or may be (not read whole), 8-bit: it
/// must be converted to 7-bit MIME first (RFC 6152 §3), by `message`.
pub(super) fn needs_seven_bit(caps: &Capabilities, message: &Message) -> bool {
    !caps.eightbitmime
        && match message.body_kind() {
            BodyKind::EightBit => true,
            BodyKind::SevenBit => message.eight_bit.is_none(),
            BodyKind::Binary => false,
        }
}

/// How a transaction stands once the server has answered up to DATA (or BDAT).
enum Opened {
    /// Over without the message: no recipient accepted.
    Done(Report, End),
    /// A small message went as `BDAT n LAST` with MAIL and RCPT, and some recipient was
    /// accepted: the reply to its end is next.
    Sent(Vec<Recipient>, End),
    /// DATA answered 354: the message goes next.
    Data(Vec<Recipient>),
    /// CHUNKING, and some recipient was accepted: the message goes as BDAT chunks (the
    /// first ones already sent, when they went early).
    Chunks(Vec<Recipient>, Option<Chunks>),
}

/// MAIL .. DATA of a delivery, the message only looked at: its size, its kind, and when it
/// is small and held whole, its bytes (pipelined with MAIL as one `BDAT n LAST`).
fn open(
    conn: &mut Connection,
    opts: &SessionOptions,
    caps: &Capabilities,
    envelope: &Envelope,
    message: &Message,
    early: Option<Message>,
    around: Around,
) -> Result<(Sending, Opened)> {
    let (params, body) = mail_params(caps, opts, conn.is_tls(), envelope, Some(message))?;
    let (mail, rcpts) = envelope_commands(conn, opts, caps, envelope, params);
    let chunking = caps.chunking && opts.chunking;
    let pipelined = caps.pipelining && opts.pipelining;
    let sending = Sending {
        body,
        pipelined,
        quit_last: around.quit_last,
        // With one recipient there is nothing to hold back for.
        all_or_nothing: opts.all_or_nothing && rcpts.len() > 1,
    };
    let opened = if pipelined {
        let early = early.map(|m| Chunks::new(m, body));
        one_write(
            conn, sending, chunking, envelope, message, early, &mail, &rcpts, around,
        )?
    } else {
        lockstep(conn, sending, chunking, envelope, &mail, &rcpts, around)?
    };
    Ok((sending, opened))
}

/// `--quit-after` mail, rcpt or data: MAIL, RCPT and DATA one at a time, up to `at`.
/// `declared`, the message when there is one, is declared in MAIL FROM (SIZE, BODY) and
/// never sent: after DATA's 354 the connection closes without the end-of-data mark. For a
/// server without 8BITMIME it is first converted, or refused, as [`deliver`] would; it comes
/// back as converted.
pub(super) fn rehearse(
    conn: &mut Connection,
    opts: &SessionOptions,
    caps: &Capabilities,
    envelope: &Envelope,
    declared: Option<Message>,
    at: Late,
) -> (Result<(Report, End)>, Option<Message>) {
    // The same decision as a real send: converted to 7-bit when the server needs it (the
    // converted message is what MAIL declares), or refused (no server will be given it).
    let declared = match declared.map(|m| as_sent(conn, opts, caps, m)).transpose() {
        Ok(declared) => declared,
        Err(e) => return (Err(e), None),
    };
    let outcome = rehearse_declared(conn, opts, caps, envelope, declared.as_ref(), at);
    (outcome, declared)
}

/// [`rehearse`] once the message, if any, is as it would be sent.
fn rehearse_declared(
    conn: &mut Connection,
    opts: &SessionOptions,
    caps: &Capabilities,
    envelope: &Envelope,
    declared: Option<&Message>,
    at: Late,
) -> Result<(Report, End)> {
    let (params, _) = mail_params(caps, opts, conn.is_tls(), envelope, declared)?;
    let (mail, rcpts) = envelope_commands(conn, opts, caps, envelope, params);
    mail_from(conn, envelope, &mail)?;
    if at == Late::Mail {
        conn.transcript().info("--quit-after mail: quitting");
        return Ok((no_report(), End::Quit));
    }
    let recipients = rcpt_to(conn, envelope, &rcpts)?;
    if !recipients.iter().any(Recipient::accepted) {
        return Ok((abandon(conn, recipients), End::Quit));
    }
    let report = Report {
        recipients,
        final_reply: None,
    };
    if at == Late::Rcpt {
        conn.transcript().info("--quit-after rcpt: quitting");
        return Ok((report, End::Quit));
    }
    command(
        conn,
        &Command::Data,
        Phase::DataInit,
        Severity::PositiveIntermediate,
        "DATA",
    )?;
    conn.transcript().info(
        "--quit-after data: closing without sending the message or the end-of-data \
         mark (nothing is delivered)",
    );
    Ok((report, End::Close))
}

/// MAIL FROM with `params`, and RCPT TO for each recipient, with DSN's parameters when
/// asked for and offered.
pub(super) fn envelope_commands(
    conn: &mut Connection,
    opts: &SessionOptions,
    caps: &Capabilities,
    envelope: &Envelope,
    mut params: Vec<String>,
) -> (Command, Vec<Command>) {
    let dsn = &opts.dsn;
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
    let rcpts = envelope
        .forward_paths
        .iter()
        .map(|rcpt| Command::Rcpt {
            forward_path: rcpt.clone(),
            params: rcpt_params(dsn, use_dsn, rcpt),
        })
        .collect();
    (mail, rcpts)
}

/// With PIPELINING, one write: (RSET) MAIL RCPT... then DATA, or a small message's
/// `BDAT n LAST` (and QUIT); then the replies, in order.
#[allow(clippy::too_many_arguments)]
fn one_write(
    conn: &mut Connection,
    sending: Sending,
    chunking: bool,
    envelope: &Envelope,
    message: &Message,
    mut early: Option<Chunks>,
    mail: &Command,
    rcpts: &[Command],
    around: Around,
) -> Result<Opened> {
    let small = match (chunking, message.whole()) {
        // All or nothing: no data before every RCPT reply is known.
        _ if sending.all_or_nothing => None,
        (true, Some(bytes)) => {
            Some(data::bdat_bytes(bytes, sending.body)).filter(|b| b.len() <= SMALL_BDAT)
        }
        _ => None,
    };
    if around.reset_first {
        conn.queue(&Command::Rset, Phase::Rset);
    }
    conn.queue(mail, Phase::Mail);
    for rcpt in rcpts {
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
        None if !chunking && !sending.all_or_nothing => conn.queue(&Command::Data, Phase::DataInit),
        None => {}
    }
    if let Some(chunks) = early.as_mut() {
        chunks.send_early(conn)?;
    }

    if around.reset_first {
        let reply = read_group(conn, Phase::Rset, "RSET")?;
        expect(reply, Severity::PositiveCompletion, Phase::Rset, "RSET")?;
        conn.set_transaction_open(false);
    }
    let (mail_reply, mail_ok, recipients) = envelope_replies(conn, envelope)?;
    let accepted = if mail_ok {
        recipients.iter().filter(|r| r.accepted()).count()
    } else {
        0
    };
    let mail_error = || mail_refused(envelope, mail_reply.clone());
    let refused = |recipients: Vec<Recipient>, end: End| {
        Ok(Opened::Done(
            Report {
                recipients,
                final_reply: None,
            },
            end,
        ))
    };

    if sending.all_or_nothing {
        if !mail_ok {
            return Err(mail_error());
        }
        if accepted == 0 {
            return Ok(Opened::Done(abandon(conn, recipients), End::Quit));
        }
        return after_all_rcpts(conn, chunking, recipients);
    }
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
                Err(mail_error())
            };
        }
        return Ok(Opened::Sent(recipients, end));
    }
    if chunking {
        if !mail_ok || accepted == 0 {
            if let Some(chunks) = early.take() {
                // The server read the early chunks and refused them: nothing was delivered.
                chunks.abandon(conn)?;
            }
        }
        if !mail_ok {
            return Err(mail_error());
        }
        if accepted == 0 {
            return refused(recipients, End::Quit);
        }
        return Ok(Opened::Chunks(recipients, early));
    }
    let data_reply = read_group(conn, Phase::DataInit, "DATA")?;
    let go = data_reply.code.severity == Severity::PositiveIntermediate;
    if accepted == 0 {
        if go {
            // RFC 2920 §3.1: a server that says 354 with no valid recipient gets an empty
            // message, which it cannot deliver to anyone.
            data::abandon_data(conn)?;
        }
        return if mail_ok {
            refused(recipients, End::Quit)
        } else {
            Err(mail_error())
        };
    }
    expect(
        data_reply,
        Severity::PositiveIntermediate,
        Phase::DataInit,
        "DATA",
    )?;
    Ok(Opened::Data(recipients))
}

/// All or nothing, every RCPT answered and some accepted: if any was refused, RSET and the
/// message goes to nobody (the accepted are withheld); otherwise DATA (or BDAT) now.
fn after_all_rcpts(
    conn: &mut Connection,
    chunking: bool,
    mut recipients: Vec<Recipient>,
) -> Result<Opened> {
    if Report::withhold_all_if_any_refused(&mut recipients) {
        conn.transcript()
            .info("all or nothing: a recipient was refused, so the message goes to nobody (RSET)");
        return Ok(Opened::Done(abandon(conn, recipients), End::Quit));
    }
    if chunking {
        return Ok(Opened::Chunks(recipients, None));
    }
    command(
        conn,
        &Command::Data,
        Phase::DataInit,
        Severity::PositiveIntermediate,
        "DATA",
    )?;
    Ok(Opened::Data(recipients))
}

/// Without PIPELINING (or with --no-pipelining): each command waits for its reply, and the
/// transaction stops at the first refusal.
fn lockstep(
    conn: &mut Connection,
    sending: Sending,
    chunking: bool,
    envelope: &Envelope,
    mail: &Command,
    rcpts: &[Command],
    around: Around,
) -> Result<Opened> {
    if around.reset_first {
        command(
            conn,
            &Command::Rset,
            Phase::Rset,
            Severity::PositiveCompletion,
            "RSET",
        )?;
        conn.set_transaction_open(false);
    }
    mail_from(conn, envelope, mail)?;
    let recipients = rcpt_to(conn, envelope, rcpts)?;
    if !recipients.iter().any(Recipient::accepted) {
        return Ok(Opened::Done(abandon(conn, recipients), End::Quit));
    }
    if sending.all_or_nothing {
        return after_all_rcpts(conn, chunking, recipients);
    }
    if chunking {
        return Ok(Opened::Chunks(recipients, None));
    }
    command(
        conn,
        &Command::Data,
        Phase::DataInit,
        Severity::PositiveIntermediate,
        "DATA",
    )?;
    Ok(Opened::Data(recipients))
}

/// MAIL FROM on its own, which must be accepted.
fn mail_from(conn: &mut Connection, envelope: &Envelope, mail: &Command) -> Result<()> {
    command(
        conn,
        mail,
        Phase::Mail,
        Severity::PositiveCompletion,
        format!("MAIL FROM <{}>", envelope.reverse_path),
    )?;
    conn.set_transaction_open(true);
    Ok(())
}

/// RCPT TO for each recipient, one at a time, each reply kept with its recipient.
fn rcpt_to(
    conn: &mut Connection,
    envelope: &Envelope,
    rcpts: &[Command],
) -> Result<Vec<Recipient>> {
    let mut recipients = Vec::new();
    for (rcpt, cmd) in envelope.forward_paths.iter().zip(rcpts) {
        conn.send(cmd, Phase::Rcpt)?;
        let reply = conn.read_reply(Phase::Rcpt)?;
        recipients.push(Recipient::at_rcpt(rcpt.clone(), reply));
    }
    Ok(recipients)
}

/// No recipient accepted, nothing to send: abandon the transaction (RFC 5321 §4.1.1.5).
/// Best effort: the RCPT replies decide the outcome, and a server that said 421 has already
/// closed (reporting the lost RSET instead would hide its reply).
fn abandon(conn: &mut Connection, recipients: Vec<Recipient>) -> Report {
    if conn.send(&Command::Rset, Phase::Rset).is_ok() {
        if let Ok(reply) = conn.read_reply(Phase::Rset) {
            if reply.code.severity == Severity::PositiveCompletion {
                conn.set_transaction_open(false);
            }
        }
    }
    Report {
        recipients,
        final_reply: None,
    }
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

/// The reply (SMTP) or replies (LMTP) to the end of the message.
fn finish(
    conn: &mut Connection,
    opts: &SessionOptions,
    mut recipients: Vec<Recipient>,
    end: End,
) -> Result<(Report, End)> {
    if opts.protocol == Protocol::Lmtp {
        let final_reply = lmtp_replies(conn, &mut recipients)?;
        // One reply per recipient: the transaction is over, whatever they said.
        conn.set_transaction_open(false);
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
    conn.set_transaction_open(false);
    Ok((
        Report {
            recipients,
            final_reply: Some(reply),
        },
        end,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::timeout::Timeouts;
    use crate::smtp::reply::parse;
    use crate::transcript::Transcript;
    use std::io::Write;
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
