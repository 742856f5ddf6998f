//! The dialogue of `--probe`: greeting, EHLO, STARTTLS where offered, EHLO again, QUIT —
//! no AUTH, no mail — with everything learned left in the connection's trace.
//!
//! Owns: which failures are findings rather than errors (a refused or failed STARTTLS).
//!
//! Must not: authenticate or start a mail transaction; judge what the server offers (the
//! probe report does).
//!
//! RFC 5321 §4.1.1.1 (EHLO), §4.3.2 (greeting); RFC 3207 §4 (STARTTLS, EHLO again).

use anyhow::Result;

use crate::config::SessionOptions;
use crate::error::Error;
use crate::net::tls::Tls;
use crate::net::Connection;

use super::{ehlo, greeting, quit, quit_after, starttls_command};

/// What `--probe` does with one server: greeting, EHLO, STARTTLS when the server offers it
/// and `starttls` allows, EHLO again inside TLS, QUIT. No AUTH, no mail. Everything learned
/// (greeting, each EHLO, the TLS session) is in the connection's trace.
///
/// A failed STARTTLS (refused, or the handshake failed) is not an error here: it comes
/// back as [`Explored::TlsFailed`], since it is one of the things a probe finds out.
/// Everything else that stops the dialogue is an error, as in [`super::deliver`].
pub fn explore(
    conn: Connection,
    opts: &SessionOptions,
    tls: &Tls,
    starttls: bool,
) -> Result<Explored> {
    let mut conn = conn;
    if let Err(e) = greeting(&mut conn) {
        return Err(quit_after(&mut conn, e));
    }
    let caps = match ehlo(&mut conn, opts) {
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
    if let Err(e) = ehlo(&mut conn, opts) {
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
