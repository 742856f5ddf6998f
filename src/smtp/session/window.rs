//! Transactions in flight: a small message queued whole — (RSET,) MAIL, RCPT..., `BDAT n
//! LAST` and its bytes — without waiting for any reply, and judged later by its own
//! replies, read in order. What `postie batch` keeps a window of (the engine decides how
//! many; [`Session::queue_blind`], [`Session::settle_blind`]). Without CHUNKING, a DATA
//! transaction's commands go in the same write as the end of data of the one before
//! ([`Session::queue_data_group`], [`Session::continue_data`]): DATA ends a group, so its
//! data waits for the 354, and two transactions overlap at most.
//!
//! RFC 2920 §3.1 lets RSET, MAIL and RCPT go in one group after the previous message's end
//! of data, and RFC 3030 §4.2 makes BDAT a command that may be pipelined (not last in its
//! group, unlike DATA): so a whole small transaction can follow another before either is
//! answered. Only a message held whole and at most [`SMALL_BDAT`] on the wire goes so
//! (its bytes are sent even if every recipient is refused: a server rejects a BDAT without
//! recipients after reading it, RFC 3030 §2); anything else is declined and goes the
//! ordinary way ([`Session::send`]) once the window is empty.
//!
//! The guard RSET: a transaction queued behind one whose replies are not in yet starts with
//! RSET, because that one may leave its transaction open — MAIL accepted, every recipient
//! refused, the BDAT refused — and RFC 3030 leaves the state after a refused BDAT
//! undetermined (RFC 1830 said so outright: "a RSET command must be issued"). A server
//! that keeps the sender would answer the next MAIL "503 nested MAIL", and the next
//! message's recipients would join the abandoned transaction, under the wrong sender. RSET costs no round trip in the group; after a delivered message whose reply
//! is in, none is sent ([`Connection::transaction_open`]).
//!
//! Must not: decide how many transactions are in flight, or what to do with a failure
//! (the engine does); leave a transaction's replies half read when the server still talks
//! (each settle reads all of its replies, so the next one's replies stay its own).

use anyhow::Result;

use crate::config::{Protocol, SessionOptions};
use crate::envelope::Envelope;
use crate::error::Error;
use crate::message::Message;
use crate::net::timeout::Phase;
use crate::report::{Recipient, Report};
use crate::smtp::command::Command;
use crate::smtp::reply::Severity;

use super::data::{self, Body};
use super::transaction::{
    envelope_commands, envelope_replies, mail_params, mail_refused, needs_seven_bit, read_group,
    SMALL_BDAT,
};
use super::Session;

/// A transaction in flight, its replies (or the rest of them) not read yet.
#[derive(Debug)]
pub struct Blind {
    envelope: Envelope,
    /// It starts with the guard RSET.
    reset: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Queued whole: (RSET,) MAIL, RCPT..., `BDAT n LAST` and its bytes.
    Whole,
    /// With DATA: the recipients' replies are in and the data and its end-of-data mark
    /// have gone; only the reply to the end of data is left.
    DataSent(Vec<Recipient>),
    /// Over already, its replies read: what became of it.
    Answered(Result<Report>),
}

/// A DATA transaction's commands — (RSET,) MAIL, RCPT..., DATA — queued behind the
/// transaction in flight, in the same write as its end of data (RFC 2920 §3.1), the
/// replies and the message still to come ([`Session::queue_data_group`],
/// [`Session::continue_data`]).
pub struct Half {
    envelope: Envelope,
    message: Message,
    body: Body,
    reset: bool,
}

impl Blind {
    /// Its data and end-of-data mark have gone with DATA: whatever the server answers, the
    /// transaction ends there (a transaction queued behind it needs no RSET).
    pub fn data_sent(&self) -> bool {
        matches!(self.kind, Kind::DataSent(_))
    }
}

impl Half {
    /// The message, never sent: the group went with a session that ended before its
    /// replies were read.
    pub fn into_message(self) -> Message {
        self.message
    }
}

/// What [`Session::queue_data_group`] did with a message.
pub enum QueuedData {
    /// Its commands are queued: read the transaction ahead, then [`Session::continue_data`].
    Half(Half),
    /// Not for an overlap (refused before MAIL, to be converted to 7-bit, ...): nothing was
    /// queued, and the message is given back for [`Session::send`].
    Declined(Message),
}

/// What [`Session::queue_blind`] did with a message.
pub enum Queued {
    /// Queued whole: settle it later, in order.
    Blind(Blind),
    /// Not for a window (too big, streamed, refused before MAIL, all or nothing, LMTP...):
    /// nothing was queued, and the message is given back for [`Session::send`].
    Declined(Message),
}

impl Session {
    /// Whether this session can keep transactions in flight at all: PIPELINING and
    /// CHUNKING offered and not turned off, SMTP (not LMTP), and no all-or-nothing rule
    /// (which waits for every RCPT reply before the data).
    pub fn can_window(&self, opts: &SessionOptions) -> bool {
        self.caps.pipelining
            && opts.pipelining
            && self.caps.chunking
            && opts.chunking
            && opts.protocol == Protocol::Smtp
            && !opts.all_or_nothing
    }

    /// Queue one small message's whole transaction without reading a reply. `behind`: a
    /// transaction queued earlier is still unanswered (so this one starts with RSET, see
    /// the module docs). Nothing is written until the next read or flush.
    pub fn queue_blind(
        &mut self,
        opts: &SessionOptions,
        envelope: &Envelope,
        message: Message,
        behind: bool,
    ) -> Queued {
        let Some((params, body)) = self
            .can_window(opts)
            .then(|| self.group_params(opts, envelope, &message))
            .flatten()
        else {
            return Queued::Declined(message);
        };
        let bytes = match message.whole() {
            Some(whole) if whole.len() <= SMALL_BDAT => data::bdat_bytes(whole, body),
            _ => return Queued::Declined(message),
        };
        if bytes.len() > SMALL_BDAT {
            return Queued::Declined(message);
        }
        let conn = &mut self.conn;
        let reset = behind || conn.transaction_open();
        queue_envelope(conn, opts, &self.caps, envelope, params, reset);
        conn.queue(
            &Command::Bdat {
                size: bytes.len() as u64,
                last: true,
            },
            Phase::DataBlock,
        );
        if let Err(e) = conn.queue_data(&bytes) {
            // A write failed: the connection is gone, and the transaction with it. The
            // settle reads that (a lost connection) for this message.
            conn.transcript().error(&format!("{e:#}"));
        }
        Queued::Blind(Blind {
            envelope: envelope.clone(),
            reset,
            kind: Kind::Whole,
        })
    }

    /// MAIL's parameters and how the body travels, for a message queued in a group; `None`
    /// when it must go the ordinary way, which says why or does what it needs: converted
    /// to 7-bit first, refused before MAIL, or streaming 7-bit only.
    fn group_params(
        &self,
        opts: &SessionOptions,
        envelope: &Envelope,
        message: &Message,
    ) -> Option<(Vec<String>, Body)> {
        if needs_seven_bit(&self.caps, message) {
            return None;
        }
        let tls = self.conn.is_tls();
        let (params, body) = mail_params(&self.caps, opts, tls, envelope, Some(message)).ok()?;
        (body != Body::SevenBitOnly).then_some((params, body))
    }

    /// Whether DATA transactions can overlap on this session: PIPELINING offered and used
    /// but not CHUNKING (then [`Session::can_window`] holds a whole window), SMTP, and no
    /// all-or-nothing rule. The commands of one transaction go in the same write as the end
    /// of data of the one before; DATA ends a group (RFC 2920 §3.1), so the data itself
    /// waits for its 354 and no more than these two overlap.
    pub fn can_overlap_data(&self, opts: &SessionOptions) -> bool {
        self.caps.pipelining
            && opts.pipelining
            && !(self.caps.chunking && opts.chunking)
            && opts.protocol == Protocol::Smtp
            && !opts.all_or_nothing
    }

    /// Queue a DATA transaction's commands without reading a reply (they go with the next
    /// read: the end-of-data reply of the transaction ahead). `behind`: the transaction
    /// ahead has sent its data ([`Blind::data_sent`]), its end-of-data reply unread;
    /// whatever that reply is, it ends the transaction (RFC 5321 §4.1.1.4), so no RSET goes
    /// first. Otherwise RSET goes first when a transaction may still be open (one whose
    /// recipients were all refused).
    pub fn queue_data_group(
        &mut self,
        opts: &SessionOptions,
        envelope: &Envelope,
        message: Message,
        behind: bool,
    ) -> QueuedData {
        let Some((params, body)) = self
            .can_overlap_data(opts)
            .then(|| self.group_params(opts, envelope, &message))
            .flatten()
        else {
            return QueuedData::Declined(message);
        };
        let conn = &mut self.conn;
        let reset = !behind && conn.transaction_open();
        queue_envelope(conn, opts, &self.caps, envelope, params, reset);
        conn.queue(&Command::Data, Phase::DataInit);
        QueuedData::Half(Half {
            envelope: envelope.clone(),
            message,
            body,
            reset,
        })
    }

    /// The replies to a [`Half`]'s commands; on DATA's 354 with some recipient accepted,
    /// its message and end-of-data mark, queued (they go with the next read): in flight,
    /// its end-of-data reply next. Otherwise it is over, and the flight says how.
    pub fn continue_data(&mut self, half: Half) -> Blind {
        let Half {
            envelope,
            message,
            body,
            reset,
        } = half;
        let sending = data::Sending {
            body,
            pipelined: true,
            quit_last: false,
            all_or_nothing: false,
        };
        let kind = match self.data_replies(&envelope, reset) {
            Ok(Ok(recipients)) => match data::send_message(&mut self.conn, sending, message) {
                Ok(_) => Kind::DataSent(recipients),
                Err(e) => {
                    // Part-way through the message: only a close keeps the partial
                    // message from being delivered.
                    if self.conn.in_data() {
                        self.conn.abort();
                    }
                    Kind::Answered(Err(e))
                }
            },
            Ok(Err(report)) => Kind::Answered(Ok(report)),
            Err(e) => Kind::Answered(Err(e)),
        };
        Blind {
            envelope,
            reset: false,
            kind,
        }
    }

    /// A [`Half`]'s replies, in order: the recipients when DATA may go on (`Ok(Ok)`), the
    /// report when no recipient was accepted (`Ok(Err)`; after a 354 regardless, an empty
    /// message ends the data at once), or the refusal of MAIL or DATA.
    fn data_replies(
        &mut self,
        envelope: &Envelope,
        reset: bool,
    ) -> Result<Result<Vec<Recipient>, Report>> {
        let conn = &mut self.conn;
        guard_rset(conn, reset)?;
        let (mail_reply, mail_ok, recipients) = envelope_replies(conn, envelope)?;
        let data_reply = read_group(conn, Phase::DataInit, "DATA")?;
        let go = data_reply.code.severity == Severity::PositiveIntermediate;
        let accepted = mail_ok && recipients.iter().any(Recipient::accepted);
        if !accepted {
            if go {
                // RFC 2920 §3.1: a 354 with no valid recipient gets an empty message.
                data::abandon_data(conn)?;
            }
            if !mail_ok {
                return Err(mail_refused(envelope, mail_reply));
            }
            return Ok(Err(Report {
                recipients,
                final_reply: None,
            }));
        }
        if !go {
            return Err(Error::Reply {
                phase: Phase::DataInit,
                what: "DATA".into(),
                reply: data_reply,
            }
            .into());
        }
        Ok(Ok(recipients))
    }

    /// Read the replies of the oldest transaction in flight (every one of them, when the
    /// server still talks) and judge it as [`Session::send`] would have: per recipient,
    /// then the reply to its data. An error that is not a reply (a lost connection, a
    /// timeout, a 421) leaves the session unusable, and the transactions after this one
    /// unanswered.
    pub fn settle_blind(&mut self, blind: Blind) -> Result<Report> {
        let conn = &mut self.conn;
        match blind.kind {
            Kind::Whole => {}
            Kind::Answered(outcome) => return outcome,
            Kind::DataSent(recipients) => {
                let what = "the message (end of data)";
                let reply = read_group(conn, Phase::DataEnd, what)?;
                // Any reply to the end-of-data mark ends the transaction.
                conn.set_transaction_open(false);
                let reply =
                    super::expect(reply, Severity::PositiveCompletion, Phase::DataEnd, what)?;
                return Ok(Report {
                    recipients,
                    final_reply: Some(reply),
                });
            }
        }
        guard_rset(conn, blind.reset)?;
        let (mail_reply, mail_ok, recipients) = envelope_replies(conn, &blind.envelope)?;
        let end = read_group(conn, Phase::DataEnd, "the message (end of data)")?;
        if !mail_ok {
            return Err(mail_refused(&blind.envelope, mail_reply));
        }
        if !recipients.iter().any(Recipient::accepted) {
            // The server read the chunk and refused it (503/554): nothing was delivered,
            // and the transaction may still be open (the next one starts with RSET).
            return Ok(Report {
                recipients,
                final_reply: None,
            });
        }
        if end.code.severity != Severity::PositiveCompletion {
            return Err(Error::Reply {
                phase: Phase::DataEnd,
                what: "the message (end of data)".into(),
                reply: end,
            }
            .into());
        }
        conn.set_transaction_open(false);
        Ok(Report {
            recipients,
            final_reply: Some(end),
        })
    }
}

/// The reply to a group's guard RSET, when it has one: a refusal is no failure (the
/// transaction it guards against may not exist); a 421 (or a lost connection) is.
fn guard_rset(conn: &mut crate::net::Connection, reset: bool) -> Result<()> {
    if reset {
        let reply = read_group(conn, Phase::Rset, "RSET")?;
        if reply.code.severity == Severity::PositiveCompletion {
            conn.set_transaction_open(false);
        }
    }
    Ok(())
}

/// Queue (RSET,) MAIL and the RCPTs of `envelope` with `params`.
fn queue_envelope(
    conn: &mut crate::net::Connection,
    opts: &SessionOptions,
    caps: &crate::smtp::ehlo::Capabilities,
    envelope: &Envelope,
    params: Vec<String>,
    reset: bool,
) {
    let (mail, rcpts) = envelope_commands(conn, opts, caps, envelope, params);
    if reset {
        conn.queue(&Command::Rset, Phase::Rset);
    }
    conn.queue(&mail, Phase::Mail);
    for rcpt in &rcpts {
        conn.queue(rcpt, Phase::Rcpt);
    }
}
