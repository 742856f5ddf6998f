//! The message on the wire, once the server is ready for it: after DATA's 354, streamed
//! through the dot-stuffing codec and ended with CRLF.CRLF; or as BDAT chunks with exact
//! counts, the first of which may go before the envelope's replies are in when the
//! transaction says so ([`Chunks::send_early`]: never the last, so the server cannot take
//! the message before the replies are read).
//!
//! Owns: reading the message while sending (a failed read never sends the end-of-data
//! mark, so the server discards the partial message); refusing an 8-bit byte met while
//! streaming to a server without 8BITMIME ([`SevenBit`]: only a message too big to be read
//! whole and converted first still streams to such a server); line-ending normalisation for
//! BDAT (exact bytes for BINARYMIME); how many chunk replies may be outstanding.
//!
//! Must not: decide whether the message may go (the transaction did, from the replies),
//! or read the replies to its end (the transaction does: one per LMTP recipient); decide
//! how the message is watched going out (the caller's progress bar wraps it before the
//! session sees it); dot-stuff or normalise itself (`message::wire` does).
//!
//! RFC 5321 §4.1.1.4 (DATA), §4.5.2 (transparency); RFC 3030 (BDAT, BINARYMIME); RFC 6152
//! (8BITMIME).

use std::io::{self, Read, Write};

use anyhow::Result;

use crate::error::Error;
use crate::message::wire::{Crlf, DotStuffer};
use crate::message::Message;
use crate::net::timeout::Phase;
use crate::net::Connection;
use crate::smtp::command::Command;
use crate::smtp::reply::Severity;

use super::{expect, End};

/// How the body travels, decided before MAIL from the message and the capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// Any bytes as they are (mostly 7-bit; 8-bit declared with BODY=8BITMIME).
    Text,
    /// The server has no 8BITMIME and the message streams: its bytes must stay 7-bit, and
    /// an 8-bit byte found while sending aborts the transaction.
    SevenBitOnly,
    /// BODY=BINARYMIME: exact bytes with BDAT, no line-ending normalisation.
    Binary,
}

/// How the message goes, decided before MAIL.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sending {
    pub body: Body,
    /// The server offers PIPELINING and it is used: BDAT replies may be outstanding, and
    /// QUIT may go out with the end of the data.
    pub pipelined: bool,
    /// The last transaction on the connection: QUIT right after the end of data.
    pub quit_last: bool,
    /// All or nothing: DATA (or BDAT) waits for every RCPT reply, and a refused recipient
    /// means RSET instead.
    pub all_or_nothing: bool,
}

/// BDAT chunk size (a small message goes whole: see the transaction).
const CHUNK: usize = 1024 * 1024;

/// With PIPELINING, how many bytes of BDAT chunks may be unanswered: enough to cover the
/// bandwidth-delay product of a fast link with some delay (8 MiB: 1.6 Gbit/s at 40 ms), so
/// that a big message streams instead of waiting a round trip per chunk. A chunk's reply
/// is a few bytes, so the server never blocks writing them while postie writes.
const CHUNK_WINDOW: usize = 8 * 1024 * 1024;

pub(super) fn eight_bit_refused() -> Error {
    Error::Data(
        "the message has 8-bit data but the server does not offer 8BITMIME: encode it \
         (quoted-printable or base64), or send it through a server that offers 8BITMIME"
            .into(),
    )
}

/// After DATA's 354: the message, dot-stuffed, and the end-of-data mark (and QUIT when
/// pipelining and this is the last transaction). The caller reads the reply.
pub(super) fn send_message(
    conn: &mut Connection,
    sending: Sending,
    message: Message,
) -> Result<End> {
    send_data(conn, sending.body, message)?;
    Ok(quit_with_end(conn, sending))
}

/// QUIT in the same write as the end of the data, when pipelining the last transaction.
fn quit_with_end(conn: &mut Connection, sending: Sending) -> End {
    if sending.quit_last && sending.pipelined {
        conn.queue(&Command::Quit, Phase::Quit);
        End::QuitSent
    } else {
        End::Quit
    }
}

/// The BDAT bytes of a message held whole: line ends normalised to CRLF (exact bytes for
/// BINARYMIME).
pub(super) fn bdat_bytes(message: &[u8], body: Body) -> Vec<u8> {
    if body == Body::Binary {
        return message.to_vec();
    }
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 2);
    let mut normaliser = Crlf::default();
    normaliser.push(message, &mut out);
    normaliser.finish(&mut out);
    out
}

/// After a 354 that should not have come (no recipient accepted): end the data at once,
/// and read the (negative) reply.
pub(super) fn abandon_data(conn: &mut Connection) -> Result<()> {
    conn.queue_data(b".\r\n")?;
    conn.read_reply(Phase::DataEnd)?;
    // Any reply to the end-of-data mark ends the transaction (RFC 5321 §4.1.1.4).
    conn.set_transaction_open(false);
    Ok(())
}

/// The message as it is read while sending (through whatever the caller watches it with,
/// [`Message::watched`]): 8-bit bytes refused when the server has no 8BITMIME.
fn message_reader(message: Message, body: Body) -> Box<dyn Read> {
    let input = message.into_reader();
    if body == Body::SevenBitOnly {
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
fn send_data(conn: &mut Connection, body: Body, message: Message) -> Result<()> {
    let mut input = message_reader(message, body);
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

/// How many chunks may go before the envelope's replies are in ([`Chunks::send_early`]):
/// 2 MiB, about what a 400 Mbit/s link carries in a 40 ms round trip.
const EARLY_CHUNKS: usize = 2;

/// BDAT (RFC 3030): the message in chunks of about [`CHUNK`] bytes with exact counts,
/// line ends normalised (exact bytes for BINARYMIME), the last one marked LAST: all once
/// the envelope's replies are in ([`Chunks::send_rest`]), or its first chunks in the same
/// write as MAIL and RCPT ([`Chunks::send_early`]) and the rest once the replies say some
/// recipient was accepted. With PIPELINING up to [`CHUNK_WINDOW`] bytes of chunks go out
/// before their replies are read; without, each waits. A chunk refused (a 552 to a middle
/// chunk) ends the message: no more chunks, the replies to those already sent are read
/// (RFC 3030 §2: the server reads and refuses them too), and the refusal is the error.
pub(super) struct Chunks {
    input: Box<dyn Read>,
    read_buf: Vec<u8>,
    /// The chunk being filled: normalised straight into it, so that it is the data's only
    /// copy before the connection's buffer.
    chunk: Vec<u8>,
    normaliser: Option<Crlf>,
    /// The message has been read to its end: what is in `chunk` is the last chunk.
    at_end: bool,
    /// Chunks sent whose reply has not been read (the LAST chunk's is the caller's).
    unanswered: usize,
}

impl Chunks {
    pub(super) fn new(message: Message, body: Body) -> Chunks {
        let read_buf = vec![0u8; 64 * 1024];
        Chunks {
            input: message_reader(message, body),
            chunk: Vec::with_capacity(CHUNK + 2 * read_buf.len() + 2),
            read_buf,
            normaliser: (body != Body::Binary).then(Crlf::default),
            at_end: false,
            unanswered: 0,
        }
    }

    /// Read into the chunk until it is full or the message ends (`at_end`).
    fn fill(&mut self) -> Result<()> {
        loop {
            let n = read_message(&mut self.input, &mut self.read_buf)?;
            if n == 0 {
                if let Some(normaliser) = self.normaliser.take() {
                    normaliser.finish(&mut self.chunk);
                }
                self.at_end = true;
                return Ok(());
            }
            match self.normaliser.as_mut() {
                None => self.chunk.extend_from_slice(&self.read_buf[..n]),
                Some(normaliser) => normaliser.push(&self.read_buf[..n], &mut self.chunk),
            }
            if self.chunk.len() >= CHUNK {
                return Ok(());
            }
        }
    }

    /// `BDAT n` (LAST at the end of the message) and the chunk, queued.
    fn queue_chunk(&mut self, conn: &mut Connection) -> Result<()> {
        let bdat = Command::Bdat {
            size: self.chunk.len() as u64,
            last: self.at_end,
        };
        conn.queue(&bdat, Phase::DataBlock);
        conn.queue_data(&self.chunk)?;
        self.chunk.clear();
        if !self.at_end {
            self.unanswered += 1;
        }
        Ok(())
    }

    /// Up to [`EARLY_CHUNKS`] chunks, before any reply is read; never the last one, so
    /// that until the rest goes, the server cannot take the message (it has no LAST).
    pub(super) fn send_early(&mut self, conn: &mut Connection) -> Result<()> {
        for _ in 0..EARLY_CHUNKS {
            self.fill()?;
            if self.at_end {
                // Kept for the rest: it is the last.
                return Ok(());
            }
            self.queue_chunk(conn)?;
        }
        Ok(())
    }

    /// The rest of the message, LAST included, with up to [`CHUNK_WINDOW`] bytes of chunks
    /// unanswered when pipelining (the replies to chunks sent early are read first, as the
    /// window needs); QUIT after LAST when this is the last transaction. The caller reads
    /// the reply to LAST.
    pub(super) fn send_rest(mut self, conn: &mut Connection, sending: Sending) -> Result<End> {
        let window = if sending.pipelined {
            CHUNK_WINDOW / CHUNK - 1
        } else {
            0
        };
        loop {
            while self.unanswered > window {
                self.unanswered -= 1;
                chunk_reply(conn, self.unanswered)?;
            }
            if !self.at_end {
                self.fill()?;
            }
            let last = self.at_end;
            self.queue_chunk(conn)?;
            if last {
                break;
            }
        }
        let end = quit_with_end(conn, sending);
        while self.unanswered > 0 {
            self.unanswered -= 1;
            // Behind the rest: the LAST chunk's reply.
            chunk_reply(conn, self.unanswered + 1)?;
        }
        Ok(end)
    }

    /// The envelope's replies refused the message: no more chunks; the replies to those
    /// sent early (refusals: RFC 3030 §4.2) are read, so that none is taken later for the
    /// reply to another command.
    pub(super) fn abandon(self, conn: &mut Connection) -> Result<()> {
        for _ in 0..self.unanswered {
            super::transaction::read_group(conn, Phase::DataBlock, "BDAT")?;
        }
        Ok(())
    }
}

/// The reply to a BDAT chunk that is not the last: 250, or the transaction is over. When
/// it is refused, the replies of the `behind` chunks sent after it are read too (best
/// effort), so that none is taken later for the reply to another command.
fn chunk_reply(conn: &mut Connection, behind: usize) -> Result<()> {
    let reply = conn.read_reply(Phase::DataBlock)?;
    let refused = expect(
        reply,
        Severity::PositiveCompletion,
        Phase::DataBlock,
        "BDAT",
    );
    if refused.is_err() {
        for _ in 0..behind {
            if conn.read_reply(Phase::DataBlock).is_err() {
                break;
            }
        }
    }
    refused.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};

    #[test]
    fn an_eight_bit_byte_for_a_seven_bit_only_server_fails_the_message() {
        let mut buf = [0u8; 16];
        let eight = Message::in_memory("caf\u{e9}\r\n".as_bytes().to_vec());
        let mut input = message_reader(eight, Body::SevenBitOnly);
        let err = read_message(&mut input, &mut buf).unwrap_err();
        assert_eq!(exit_code(&err), Exit::DataErr, "{err:#}");
        let seven = Message::in_memory(b"cafe\r\n".to_vec());
        let mut input = message_reader(seven, Body::SevenBitOnly);
        assert_eq!(read_message(&mut input, &mut buf).unwrap(), 6);
    }

    #[test]
    fn binary_bdat_bytes_are_the_exact_bytes() {
        let bytes = b"a\nb\r\n\x00\xff";
        assert_eq!(bdat_bytes(bytes, Body::Binary), bytes);
    }
}
