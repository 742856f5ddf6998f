//! The SMTP dialogue over one connection: greeting, EHLO (HELO fallback), STARTTLS, AUTH,
//! one mail transaction, QUIT (RFC 5321 §3, §4.1; RFC 3207; RFC 4954).
//!
//! It enforces the security policy — STARTTLS required means no AUTH and no MAIL without
//! it; AUTH never crosses a plaintext link unless allowed — and returns the outcome per
//! recipient. A reply decides what happens by its severity, never by comparing text. AUTH
//! is driven generically: [`auth::Exchange`] says what to send for each 334 and judges the
//! 235 (SCRAM's server signature); this module only moves the lines.

use std::io::{self, Read, Write};

use anyhow::Result;

use crate::config::{Config, Security};
use crate::envelope::Envelope;
use crate::error::Error;
use crate::message::wire::DotStuffer;
use crate::message::Message;
use crate::net::timeout::Phase;
use crate::net::tls::Tls;
use crate::net::Connection;
use crate::report::{Recipient, Report};
use crate::smtp::auth::{self, Exchange};
use crate::smtp::command::Command;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::{Reply, Severity};

/// Run the whole dialogue and return what the server did with each recipient.
pub fn deliver(
    conn: Connection,
    cfg: &Config,
    tls: &Tls,
    envelope: &Envelope,
    message: Message,
) -> Result<Report> {
    let mut conn = conn;
    let caps = match greet(&mut conn, cfg) {
        Ok(c) => c,
        Err(e) => return Err(quit_after(&mut conn, e)),
    };
    let (mut conn, caps) = match cfg.security {
        Security::StartTlsRequired => secure(conn, cfg, tls, caps)?,
        Security::Implicit | Security::Plain => (conn, caps),
    };
    let result = authenticate(&mut conn, cfg, &caps)
        .and_then(|()| transaction(&mut conn, cfg, &caps, envelope, message));
    match result {
        Ok(report) => {
            quit(&mut conn);
            Ok(report)
        }
        Err(e) => Err(quit_after(&mut conn, e)),
    }
}

/// Send QUIT when the server is still in a state to hear it (it replied, negatively), then
/// hand the error back.
fn quit_after(conn: &mut Connection, err: anyhow::Error) -> anyhow::Error {
    let polite = matches!(
        err.downcast_ref::<Error>(),
        Some(Error::Reply { .. } | Error::Unavailable(_) | Error::Data(_))
    );
    if polite {
        quit(conn);
    }
    err
}

/// QUIT, best effort: the outcome is already decided.
fn quit(conn: &mut Connection) {
    if conn.send(&Command::Quit, Phase::Quit).is_ok() {
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

/// Greeting, then EHLO, falling back to HELO when EHLO is refused permanently.
fn greet(conn: &mut Connection, cfg: &Config) -> Result<Capabilities> {
    let greeting = conn.read_reply(Phase::Greeting)?;
    expect(
        greeting,
        Severity::PositiveCompletion,
        Phase::Greeting,
        "the server's greeting",
    )?;
    ehlo(conn, cfg)
}

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

/// STARTTLS is required: the server must offer it; then the capabilities are learned again
/// inside TLS and the old ones thrown away (RFC 3207 §4.2).
fn secure(
    mut conn: Connection,
    cfg: &Config,
    tls: &Tls,
    caps: Capabilities,
) -> Result<(Connection, Capabilities)> {
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
    if let Err(e) = command(
        &mut conn,
        &Command::StartTls,
        Phase::StartTls,
        Severity::PositiveCompletion,
        "STARTTLS",
    ) {
        return Err(quit_after(&mut conn, e));
    }
    let mut conn = conn.starttls(tls)?;
    match ehlo(&mut conn, cfg) {
        Ok(caps) => Ok((conn, caps)),
        Err(e) => Err(quit_after(&mut conn, e)),
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
    let (host, port) = match &cfg.server {
        Some(server) => (server.host.clone(), server.port),
        None => (conn.peer().ip().to_string(), conn.peer().port()),
    };
    let mut exchange = Exchange::new(mech, &creds.user, &creds.password, &host, port);
    let cmd = Command::Auth {
        mechanism: mech.name().to_string(),
        initial_response: exchange.initial_response().map_err(Error::from)?,
    };
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

fn mail_params(caps: &Capabilities, envelope: &Envelope, message: &Message) -> Result<Vec<String>> {
    let mut params = Vec::new();
    if let (Some(limit), Some(size)) = (caps.size, message.size) {
        if limit > 0 && size > limit {
            return Err(Error::Data(format!(
                "the message is {size} bytes but the server accepts at most {limit}"
            ))
            .into());
        }
        params.push(format!("SIZE={size}"));
    }
    if caps.eightbitmime && message.eight_bit != Some(false) {
        params.push("BODY=8BITMIME".into());
    }
    if envelope.needs_smtputf8() {
        if !caps.smtputf8 {
            return Err(Error::Data(
                "an address is not ASCII and the server does not offer SMTPUTF8".into(),
            )
            .into());
        }
        params.push("SMTPUTF8".into());
    }
    Ok(params)
}

fn transaction(
    conn: &mut Connection,
    cfg: &Config,
    caps: &Capabilities,
    envelope: &Envelope,
    message: Message,
) -> Result<Report> {
    let mut params = mail_params(caps, envelope, &message)?;
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
    let rcpt_params: Vec<String> = match (&dsn.notify, use_dsn) {
        (Some(notify), true) => vec![format!("NOTIFY={notify}")],
        _ => Vec::new(),
    };
    let from = &envelope.reverse_path;
    command(
        conn,
        &Command::Mail {
            reverse_path: from.clone(),
            params,
        },
        Phase::Mail,
        Severity::PositiveCompletion,
        format!("MAIL FROM <{from}>"),
    )?;

    let mut recipients = Vec::new();
    for rcpt in &envelope.forward_paths {
        let cmd = Command::Rcpt {
            forward_path: rcpt.clone(),
            params: rcpt_params.clone(),
        };
        conn.send(&cmd, Phase::Rcpt)?;
        let reply = conn.read_reply(Phase::Rcpt)?;
        recipients.push(Recipient {
            address: rcpt.clone(),
            reply,
        });
    }
    let accepted = recipients.iter().filter(|r| r.accepted()).count();
    if accepted == 0 {
        // Nothing to send: abandon the transaction (RFC 5321 §4.1.1.5).
        conn.send(&Command::Rset, Phase::Rset)?;
        let _ = conn.read_reply(Phase::Rset)?;
        return Ok(Report {
            recipients,
            final_reply: None,
        });
    }

    command(
        conn,
        &Command::Data,
        Phase::DataInit,
        Severity::PositiveIntermediate,
        "DATA",
    )?;
    send_data(conn, message)?;
    let reply = conn.read_reply(Phase::DataEnd)?;
    let reply = expect(
        reply,
        Severity::PositiveCompletion,
        Phase::DataEnd,
        "the message (end of data)",
    )?;
    Ok(Report {
        recipients,
        final_reply: Some(reply),
    })
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

/// Stream the message through the dot-stuffing codec. If reading the message fails, the
/// end-of-data mark is never sent, so the server discards the partial message.
fn send_data(conn: &mut Connection, message: Message) -> Result<()> {
    let mut input = message.into_reader();
    let mut writer = conn.data_writer();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut stuffer = DotStuffer::new(&mut writer);
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Io(format!(
                    "reading the message failed part-way, nothing was delivered: {e}"
                ))
                .into())
            }
        };
        if let Err(e) = stuffer.write_all(&chunk[..n]) {
            drop(stuffer);
            return Err(writer.failure(e).into());
        }
    }
    match stuffer.finish() {
        Ok(_) => Ok(()),
        Err(e) => Err(writer.failure(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_encodes_plus_equals_and_non_graphic() {
        assert_eq!(xtext("abc-123"), "abc-123");
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("\u{e9}"), "+C3+A9");
    }
}
