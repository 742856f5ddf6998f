//! The message on the wire, once the server is ready for it: after DATA's 354, streamed
//! through the dot-stuffing codec and ended with CRLF.CRLF; or as BDAT chunks with exact
//! counts.
//!
//! Owns: reading the message while sending (a failed read never sends the end-of-data
//! mark, so the server discards the partial message); refusing an 8-bit byte met while
//! streaming to a server without 8BITMIME ([`SevenBit`]); line-ending normalisation for
//! BDAT (exact bytes for BINARYMIME); how many chunk replies may be outstanding.
//!
//! Must not: decide whether the message may go (the transaction did, from the replies);
//! dot-stuff or normalise itself (`message::wire` does).
//!
//! RFC 5321 §4.1.1.4 (DATA), §4.5.2 (transparency); RFC 3030 (BDAT, BINARYMIME); RFC 6152
//! (8BITMIME).

use std::io::{self, Read, Write};

use anyhow::Result;

use crate::error::Error;
use crate::message::wire::DotStuffer;
use crate::message::Message;
use crate::net::timeout::Phase;
use crate::net::Connection;
use crate::report::{Recipient, Report};
use crate::smtp::command::Command;
use crate::smtp::reply::Severity;

use super::expect;
use super::transaction::{eight_bit_refused, finish, Body, Tx, CHUNK};
use super::End;

/// After DATA's 354: the message, dot-stuffed, the end-of-data mark (and QUIT when
/// pipelining and this is the last transaction), then the reply.
pub(super) fn send_message(
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

/// The BDAT bytes of a message held whole: line ends normalised to CRLF (exact bytes for
/// BINARYMIME).
pub(super) fn bdat_bytes(message: &[u8], body: Body) -> Vec<u8> {
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
pub(super) fn abandon_data(conn: &mut Connection) -> Result<()> {
    conn.queue_data(b".\r\n")?;
    conn.read_reply(Phase::DataEnd)?;
    Ok(())
}

/// The message as it is read while sending (through whatever the caller watches it with,
/// [`Message::watched`]): 8-bit bytes refused when the server has no 8BITMIME.
fn message_reader(message: Message, ctx: &Tx) -> Box<dyn Read> {
    let input = message.into_reader();
    if ctx.body == Body::SevenBitOnly {
        return Box::new(SevenBit(input));
    }
    input
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
pub(super) fn send_chunks(
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
