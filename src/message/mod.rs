//! The message: composed from arguments with mail-builder (MIME, RFC 2047 and base64 are
//! the library's job, never ours), or a ready RFC 5322 message from a file or stdin.
//!
//! A ready message is streamed: only its header block and at most [`READ_AHEAD`] bytes are
//! read ahead (to find the From: for the envelope, drop a leading mbox `From ` line, and
//! know a small message whole: its exact size for SIZE=, whether it has 8-bit bytes, and
//! its bytes for a `BDAT n LAST` pipelined with MAIL); the rest is read while sending, so a
//! large message is never held in memory. Line endings and dot-stuffing are `wire`'s job.
//!
//! A composed message is written by mail-builder: the whole MIME tree, its text bodies and
//! small attachments encoded in memory. An attachment larger than
//! [`attach::STREAM_FROM`] stays in its file: mail-builder writes its part with a
//! placeholder body, and the file is read and base64-encoded in its place while the
//! message is sent ([`attach`]), so memory does not grow with the attachment's size, and
//! the message can still be read again (to DKIM-sign it, spool it, or offer it to another
//! server). mail-builder encodes every 8-bit text as quoted-printable or base64, so a
//! composed message is always 7-bit and needs no 8BITMIME. A ready 8-bit message meets a server without 8BITMIME in
//! [`for_seven_bit_server`], which the session calls: its 8-bit parts are converted to
//! 7-bit ([`seven_bit`]) and postie's own DKIM signature is made again.

pub mod attach;
pub mod headers;
pub mod seven_bit;
pub mod wire;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use crate::config::{Body, Compose, Config, Content, Source};
use crate::error::Error;

/// How much of a ready message is read ahead to find its header block.
const HEAD_LIMIT: usize = 1 << 20;
/// A ready message up to this size is read whole before connecting (see the module docs).
pub const READ_AHEAD: usize = 64 * 1024;
/// The most of a streamed message read into memory to convert it for a server without
/// 8BITMIME ([`for_seven_bit_server`]); a bigger one still streams, 8-bit bytes refused.
pub const CONVERT_LIMIT: usize = 64 << 20;
/// Fixed Date in test mode: 2026-01-01T00:00:00Z.
const TEST_DATE: i64 = 1_767_225_600;

/// A message ready to send.
pub struct Message {
    /// The bytes in memory: all of a composed message, or the read-ahead of a ready one.
    head: Vec<u8>,
    /// The unread rest of a ready message.
    rest: Option<Box<dyn Read>>,
    /// Where `rest` comes from when it is a file's: the file and the offset `rest` starts
    /// at, so that the message can be read again ([`Message::again`]).
    file: Option<(PathBuf, u64)>,
    /// What follows `head` in a composed message whose attachments stay in their files:
    /// read afresh each time the message is read.
    attached: Option<Arc<attach::Streamed>>,
    /// Size in bytes when known before sending (for SIZE=).
    pub size: Option<u64>,
    /// Whether the message has bytes above 127 (`None`: not known before sending).
    pub eight_bit: Option<bool>,
    /// The address in the message's From: header, if any.
    pub header_from: Option<String>,
    /// Recipients named in the headers (sendmail -t), not yet qualified.
    pub header_recipients: Vec<String>,
    /// A composed message whose body is empty (mailx -E sends nothing then).
    pub empty_body: bool,
    /// What [`Message::into_reader`] reads through: the caller's way of watching the
    /// message go (the progress bar), see [`Message::watched`].
    watch: Option<Watch>,
}

/// Wraps the reader of a message being sent, passing its bytes through unchanged.
pub type Watch = Box<dyn FnOnce(Box<dyn Read>) -> Box<dyn Read>>;

/// How the body must travel (RFC 6152 8BITMIME, RFC 3030 BINARYMIME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Only ASCII bytes seen so far (for a streamed message: in the read-ahead).
    SevenBit,
    /// Bytes above 127 in CRLF lines: BODY=8BITMIME, or refused when not offered.
    EightBit,
    /// A `Content-Transfer-Encoding: binary` part: exact bytes, BDAT and BODY=BINARYMIME
    /// only, no line-ending normalisation.
    Binary,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("head_len", &self.head.len())
            .field("streamed", &self.rest.is_some())
            .field("attached", &self.attached.is_some())
            .field("size", &self.size)
            .field("watched", &self.watch.is_some())
            .finish()
    }
}

impl Message {
    /// What follows the bytes in memory, if anything: the unread rest of a ready message,
    /// or a new reader of a composed message's attachment files.
    fn take_rest(&mut self) -> Option<Box<dyn Read>> {
        match (self.rest.take(), &self.attached) {
            (Some(rest), _) => Some(rest),
            (None, Some(attached)) => Some(Box::new(attached.reader())),
            (None, None) => None,
        }
    }

    /// Write the whole message (unencoded) to `out`, consuming it; returns the byte count.
    pub fn write_to(mut self, out: &mut dyn Write) -> io::Result<u64> {
        out.write_all(&self.head)?;
        let mut n = self.head.len() as u64;
        if let Some(mut rest) = self.take_rest() {
            n += io::copy(&mut rest, out)?;
        }
        Ok(n)
    }

    /// The whole message as one reader: the read-ahead, then the rest (through the
    /// [`Message::watched`] wrapper, if any).
    pub fn into_reader(mut self) -> Box<dyn Read> {
        let rest = self.take_rest();
        let head = io::Cursor::new(self.head);
        let whole: Box<dyn Read> = match rest {
            Some(rest) => Box::new(head.chain(rest)),
            None => Box::new(head),
        };
        match self.watch {
            Some(watch) => watch(whole),
            None => whole,
        }
    }

    /// The message, read through `watch` when it is sent ([`Message::into_reader`]; not by
    /// [`Message::write_to`]), in place of any earlier watch. The bytes, size and kind
    /// stay as they are: a small message held whole still goes out from memory.
    pub fn watched(mut self, watch: Watch) -> Message {
        self.watch = Some(watch);
        self
    }

    /// The whole message when it is in memory (composed without an attachment left in its
    /// file, or read ahead to its end).
    pub fn whole(&self) -> Option<&[u8]> {
        (self.rest.is_none() && self.attached.is_none()).then_some(&self.head[..])
    }

    /// A new copy of the message to read from the start, when it can be read again: held
    /// whole, composed with its attachments in their files, or a ready message from a file
    /// (its rest read from the file again; not from stdin). Not watched.
    pub fn again(&self) -> Option<Message> {
        let rest: Option<Box<dyn Read>> = match (&self.rest, &self.file) {
            (None, _) => None,
            (Some(_), Some((path, offset))) => {
                let mut file = File::open(path).ok()?;
                file.seek(SeekFrom::Start(*offset)).ok()?;
                Some(Box::new(file))
            }
            (Some(_), None) => return None,
        };
        Some(Message {
            head: self.head.clone(),
            rest,
            file: self.file.clone(),
            attached: self.attached.clone(),
            size: self.size,
            eight_bit: self.eight_bit,
            header_from: self.header_from.clone(),
            header_recipients: self.header_recipients.clone(),
            empty_body: self.empty_body,
            watch: None,
        })
    }

    /// What the bytes known before sending say about the body: binary when the read-ahead
    /// declares a binary part, 8-bit when it has bytes above 127.
    pub fn body_kind(&self) -> BodyKind {
        if declares_binary(&self.head) {
            BodyKind::Binary
        } else if self.eight_bit == Some(true) || !self.head.is_ascii() {
            BodyKind::EightBit
        } else {
            BodyKind::SevenBit
        }
    }

    /// The header block has bytes above 127 (RFC 6532 UTF-8 headers: SMTPUTF8).
    pub fn utf8_headers(&self) -> bool {
        let end = header_end(&self.head).unwrap_or(self.head.len());
        !self.head[..end].is_ascii()
    }

    /// A message that streams `rest` after `head`, of unknown size (tests).
    #[cfg(test)]
    pub fn streaming(head: Vec<u8>, rest: Box<dyn Read>) -> Message {
        Message {
            head,
            rest: Some(rest),
            file: None,
            attached: None,
            size: None,
            eight_bit: None,
            header_from: None,
            header_recipients: Vec::new(),
            empty_body: false,
            watch: None,
        }
    }

    /// The same message (recipients, From:, watch) with other bytes, held whole.
    fn with_bytes(self, bytes: Vec<u8>) -> Message {
        Message {
            size: Some(bytes.len() as u64),
            eight_bit: Some(!bytes.is_ascii()),
            head: bytes,
            rest: None,
            file: None,
            attached: None,
            ..self
        }
    }

    /// A composed message's bytes (tests and dry runs).
    pub fn in_memory(bytes: Vec<u8>) -> Message {
        let eight_bit = Some(!bytes.is_ascii());
        Message {
            size: Some(bytes.len() as u64),
            head: bytes,
            rest: None,
            file: None,
            attached: None,
            eight_bit,
            header_from: None,
            header_recipients: Vec::new(),
            empty_body: false,
            watch: None,
        }
    }
}

/// Build or open the message the configuration describes. `stdin` is where `-` and a
/// missing body come from.
/// With DKIM on, the message is signed here (see [`sign`]).
pub fn prepare(cfg: &Config, stdin: Box<dyn Read>) -> Result<Message> {
    let m = match &cfg.content {
        Content::Compose(c) => compose(cfg, c, stdin),
        Content::Ready(Source::Stdin) => sendmail_fixups(cfg, ready(stdin, None, None)?),
        Content::Ready(Source::File(path)) => {
            let file = File::open(path).map_err(|source| Error::NoInput {
                what: "message file",
                path: path.clone(),
                source,
            })?;
            let len = file.metadata().ok().map(|m| m.len());
            sendmail_fixups(cfg, ready(Box::new(file), len, Some(path))?)
        }
    }?;
    sign(cfg, m)
}

/// DKIM-sign the message when the configuration asks for it: the DKIM-Signature header
/// goes on top. Signing needs the whole message, so the unread rest of a ready message is
/// read into memory here, and a message over [`crate::dkim::SIGN_LIMIT`] is refused
/// (EX_DATAERR). Without DKIM the message passes through untouched and still streams.
pub fn sign(cfg: &Config, m: Message) -> Result<Message> {
    sign_with(cfg.session.dkim.as_ref(), m)
}

/// [`sign`] with these options (`None`: the message passes through).
fn sign_with(opts: Option<&crate::dkim::Options>, mut m: Message) -> Result<Message> {
    let Some(opts) = opts else {
        return Ok(m);
    };
    let signer = crate::dkim::Signer::load(opts)?;
    if let Some(attached) = m.attached.clone() {
        // The attachments stay in their files: the body is hashed as they are read (the
        // first of two passes; sending is the second), and the header goes on top.
        let from = m
            .header_from
            .clone()
            .or_else(|| headers::from_address(&m.head));
        let domain = from.as_deref().and_then(crate::dkim::domain_of);
        let header =
            signer.signature_streaming(&mut (&m.head[..]).chain(attached.reader()), domain)?;
        m.head.splice(0..0, header.bytes());
        m.size = m.size.map(|s| s + header.len() as u64);
        return Ok(m);
    }
    if m.head.len() as u64 > crate::dkim::SIGN_LIMIT {
        return Err(crate::dkim::too_large());
    }
    let mut bytes = std::mem::take(&mut m.head);
    if let Some(mut rest) = m.rest.take() {
        let more = crate::dkim::read_bounded(&mut rest, bytes.len())?;
        bytes.extend_from_slice(&more);
    }
    let from = m
        .header_from
        .clone()
        .or_else(|| headers::from_address(&bytes));
    let signed = signer.sign(&bytes, from.as_deref().and_then(crate::dkim::domain_of))?;
    m.size = Some(signed.len() as u64);
    m.eight_bit = Some(!signed.is_ascii());
    m.head = signed;
    Ok(m)
}

/// The message as it may go to a server that does not offer 8BITMIME (RFC 6152 §3): its
/// 8-bit MIME parts converted to 7-bit ([`seven_bit`]), and the second value says so (for
/// the transcript). A 7-bit or binary message comes back as it is.
///
/// A streamed message is read into memory here, up to [`CONVERT_LIMIT`]: only a whole
/// message can be converted. One that is still 7-bit at that point goes on streaming (an
/// 8-bit byte further on is then refused while sending); one that is 8-bit and bigger is
/// refused now (EX_DATAERR), before MAIL.
///
/// DKIM stays correct: a signature postie made (the topmost DKIM-Signature, when the
/// configuration signs) is made again over the converted message; one made by anyone else
/// would break, so such a message is refused, with a line that says why.
pub fn for_seven_bit_server(
    signer: Option<&crate::dkim::Options>,
    mut m: Message,
) -> Result<(Message, Option<String>)> {
    if m.body_kind() == BodyKind::Binary {
        return Ok((m, None));
    }
    if m.attached.is_some() {
        // Composed: 7-bit throughout (mail-builder's bytes, the files in base64); nothing
        // to read or convert (and any 8-bit byte would still be refused while sending).
        return Ok((m, None));
    }
    if let Some(mut rest) = m.rest.take() {
        let mut eight_bit = !m.head.is_ascii();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match rest.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(format!("reading the message: {e}")).into()),
            };
            eight_bit |= !chunk[..n].is_ascii();
            m.head.extend_from_slice(&chunk[..n]);
            if let Some((_, offset)) = m.file.as_mut() {
                // The rest (if it goes on streaming) starts further on in the file.
                *offset += n as u64;
            }
            if m.head.len() > CONVERT_LIMIT {
                if eight_bit {
                    return Err(Error::Data(format!(
                        "the message has 8-bit data and the server does not offer 8BITMIME, \
                         and it is larger than {} MiB: too large to convert to 7-bit; encode \
                         it (quoted-printable or base64), or use a server that offers 8BITMIME",
                        CONVERT_LIMIT >> 20
                    ))
                    .into());
                }
                m.rest = Some(rest);
                return Ok((m, None));
            }
        }
        m.size = Some(m.head.len() as u64);
        m.eight_bit = Some(eight_bit);
        if !eight_bit || m.body_kind() == BodyKind::Binary {
            return Ok((m, None));
        }
    }
    if m.head.is_ascii() {
        return Ok((m, None));
    }
    let signatures = headers::field_ranges(&m.head, "DKIM-Signature");
    let ours = match signatures.first() {
        Some(&(0, end)) if signer.is_some() => Some(end),
        _ => None,
    };
    if signatures.len() > usize::from(ours.is_some()) {
        return Err(Error::Data(
            "the message has 8-bit data and the server does not offer 8BITMIME, but it \
             carries a DKIM-Signature that converting it to 7-bit would break: send it \
             through a server that offers 8BITMIME, or have it signed after encoding it 7-bit"
                .into(),
        )
        .into());
    }
    let unsigned = &m.head[ours.unwrap_or(0)..];
    let Some(converted) = seven_bit::convert(unsigned)? else {
        return Ok((m, None));
    };
    let summary = converted.summary();
    let m = m.with_bytes(converted.bytes);
    if ours.is_some() {
        let m = sign_with(signer, m)?;
        return Ok((
            m,
            Some(format!(
                "the server does not offer 8BITMIME: converted {summary} and DKIM-signed the \
                 converted message again"
            )),
        ));
    }
    Ok((
        m,
        Some(format!(
            "the server does not offer 8BITMIME: converted {summary}"
        )),
    ))
}

/// What the sendmail persona does to a ready message: -t takes the recipients from the
/// headers; then Bcc goes, bare local names in To/Cc/From are qualified so the mail that
/// arrives is readable, and a missing From, Date or Message-ID is added.
fn sendmail_fixups(cfg: &Config, mut m: Message) -> Result<Message> {
    let opts = &cfg.sendmail;
    if opts.extract_recipients {
        m.header_recipients = headers::recipients(&m.head);
    }
    if !opts.rewrite_headers {
        return Ok(m);
    }
    let sender = crate::envelope::sender(cfg, cfg.from.as_deref().unwrap_or(&cfg.default_sender))?;
    let add_from = match &opts.full_name {
        Some(name) => format!("{name} <{sender}>"),
        None => sender,
    };
    // A name whose aliases loop stays as it is in the headers; the envelope refuses it.
    let qualify = |name: &str| crate::envelope::qualify_local(cfg, name).unwrap_or_default();
    let qualify_sender = |name: &str| vec![crate::envelope::qualify_sender(cfg, name)];
    let (date, id) = if cfg.test_mode {
        (TEST_DATE, "postie-test@postie.test".to_string())
    } else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let id = format!(
            "{:x}.{:x}.{}@{}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id(),
            cfg.session.helo
        );
        (i64::try_from(now.as_secs()).unwrap_or(0), id)
    };
    let rewrite = headers::Rewrite {
        strip_bcc: true,
        qualify: Some(&qualify),
        qualify_sender: Some(&qualify_sender),
        add_from: Some(add_from),
        add_date: Some(date),
        add_message_id: Some(id),
    };
    let before = m.head.len() as u64;
    m.head = headers::rewrite(&m.head, &rewrite)?;
    let after = m.head.len() as u64;
    m.size = m.size.map(|s| (s + after).saturating_sub(before));
    m.header_from = headers::from_address(&m.head);
    Ok(m)
}

fn read_input(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        Error::NoInput {
            what,
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

fn compose(cfg: &Config, c: &Compose, stdin: Box<dyn Read>) -> Result<Message> {
    compose_streaming_from(cfg, c, stdin, attach::STREAM_FROM)
}

/// [`compose`], leaving the attachments larger than `stream_from` bytes in their files.
fn compose_streaming_from(
    cfg: &Config,
    c: &Compose,
    mut stdin: Box<dyn Read>,
    stream_from: u64,
) -> Result<Message> {
    let mut read = |body: &Body, what: &'static str| -> Result<String> {
        let bytes = match body {
            Body::Text(t) => t.clone().into_bytes(),
            Body::File(p) => read_input(p, what)?,
            Body::Stdin => {
                let mut buf = Vec::new();
                stdin
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::Io(format!("reading the {what} from stdin: {e}")))?;
                buf
            }
        };
        String::from_utf8(bytes).map_err(|_| {
            Error::Data(format!(
                "the {what} is not UTF-8 text: attach it with -a, or send it with --message"
            ))
            .into()
        })
    };
    let text = c.body.as_ref().map(|b| read(b, "body")).transpose()?;
    let html = c.html.as_ref().map(|b| read(b, "HTML body")).transpose()?;

    let body_is_empty = [&text, &html]
        .into_iter()
        .flatten()
        .all(|b| b.trim().is_empty());
    let mut from =
        crate::address::parse_recipient(cfg.from.as_deref().unwrap_or(&cfg.default_sender))?;
    if !from.addr.contains('@') {
        // `-f root`: the same address MAIL FROM gets.
        from.addr = crate::envelope::sender(cfg, &from.addr)?;
    }
    let mut b = MessageBuilder::new().from(address(&from));
    if let Some(to) = address_list(cfg, &cfg.recipients.to)? {
        b = b.to(to);
    }
    if let Some(cc) = address_list(cfg, &cfg.recipients.cc)? {
        b = b.cc(cc);
    }
    if let Some(s) = &c.subject {
        b = b.subject(s.as_str());
    }
    if let Some(reply_to) = address_list(cfg, &c.reply_to)? {
        b = b.reply_to(reply_to);
    }
    let headers = checked_headers(c)?;
    let given = |name: &str| headers.iter().any(|(n, _)| n == name);
    if cfg.test_mode {
        // Fixed, unless -H gives its own (which replaces the builder's).
        if !given("Date") {
            b = b.date(Date::new(TEST_DATE));
        }
        if !given("Message-ID") {
            b = b.message_id("postie-test@postie.test");
        }
    }
    for (name, value) in headers {
        b = b.header(name, Text::new(value));
    }
    // Both: mail-builder makes it multipart/alternative (RFC 2046 §5.1.4), text first.
    if let Some(text) = text {
        b = b.text_body(text);
    }
    if let Some(html) = html {
        b = b.html_body(html);
    }
    // The attachments left in their files, each with the placeholder its part's body is.
    let mut in_files: Vec<(Vec<u8>, attach::Attached)> = Vec::new();
    for a in &c.attachments {
        let no_input = |source| Error::NoInput {
            what: "attachment",
            path: a.path.clone(),
            source,
        };
        let mut file = File::open(&a.path).map_err(no_input)?;
        let meta = file.metadata().map_err(no_input)?;
        let content_type = match &a.content_type {
            Some(t) => t.clone(),
            None => mime_guess::from_path(&a.path)
                .first_or_octet_stream()
                .essence_str()
                .to_string(),
        };
        let filename = a
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        if meta.is_file() && meta.len() > stream_from {
            // The part exactly as `attachment` makes it, with the encoding that mail-builder
            // would choose for a binary body named: the body is the file's base64.
            let placeholder = format!(
                "postie-attachment-{}-{}",
                in_files.len(),
                mail_builder::mime::make_boundary("_")
            )
            .into_bytes();
            let part = MimePart::new(content_type, BodyPart::Binary(placeholder.clone().into()))
                .attachment(filename)
                .transfer_encoding("base64");
            b.attachments.get_or_insert_with(Vec::new).push(part);
            in_files.push((placeholder, attach::Attached::new(&a.path, &meta)));
            continue;
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(no_input)?;
        b = b.attachment(content_type, filename, data);
    }
    let bytes = b
        .write_to_vec()
        .map_err(|e| Error::Io(format!("building the message: {e}")))?;
    let mut m = if in_files.is_empty() {
        Message::in_memory(bytes)
    } else {
        with_files(bytes, in_files)?
    };
    m.header_from = Some(from.addr);
    m.empty_body = body_is_empty;
    Ok(m)
}

/// The message mail-builder wrote as `bytes`, each placeholder replaced by its file (read
/// while the message is sent, [`attach`]).
fn with_files(bytes: Vec<u8>, in_files: Vec<(Vec<u8>, attach::Attached)>) -> Result<Message> {
    let mut segments = Vec::new();
    let mut head = None;
    let mut at = 0;
    for (placeholder, file) in in_files {
        let found: Vec<usize> = memchr::memmem::find_iter(&bytes[at..], &placeholder)
            .map(|i| at + i)
            .collect();
        let [start] = found[..] else {
            return Err(anyhow::anyhow!(
                "composing: the placeholder for an attachment was found {} times in the \
                 message built",
                found.len()
            ));
        };
        let before = bytes[at..start].to_vec();
        match head {
            None => head = Some(before),
            Some(_) => segments.push(attach::Segment::Bytes(before)),
        }
        segments.push(attach::Segment::File(file));
        at = start + placeholder.len();
    }
    segments.push(attach::Segment::Bytes(bytes[at..].to_vec()));
    let head = head.unwrap_or_default();
    let eight_bit = !head.is_ascii()
        || segments
            .iter()
            .any(|s| matches!(s, attach::Segment::Bytes(b) if !b.is_ascii()));
    let attached = attach::Streamed::new(segments);
    Ok(Message {
        size: Some(head.len() as u64 + attached.size()),
        head,
        rest: None,
        file: None,
        attached: Some(Arc::new(attached)),
        eight_bit: Some(eight_bit),
        header_from: None,
        header_recipients: Vec::new(),
        empty_body: false,
        watch: None,
    })
}

/// The -H headers as they go into the builder, or the refusal of one of them, naming it
/// and saying why: the fields postie writes itself from other options (From, To, Cc,
/// Subject; Bcc, which it never writes; the MIME structure's Content-*), a Reply-To that
/// --reply-to also gives, and a second copy of a field a message has at most once (RFC
/// 5322 §3.6). Date, Message-ID and MIME-Version (1.0) replace the builder's own.
fn checked_headers(c: &Compose) -> Result<Vec<(String, String)>> {
    let refuse = |text: String| -> anyhow::Error { Error::Usage(text).into() };
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in &c.headers {
        let lower = name.to_ascii_lowercase();
        let from_option = match lower.as_str() {
            "from" => Some("-f ADDR (--from)"),
            "to" => Some("the recipient arguments and --to ADDR"),
            "cc" => Some("-c ADDR (--cc)"),
            "subject" => Some("-s TEXT (--subject)"),
            _ => None,
        };
        if let Some(option) = from_option {
            return Err(refuse(format!(
                "-H {name}: postie writes the {name}: header itself, from {option}; give it there"
            )));
        }
        if lower == "bcc" {
            return Err(refuse(format!(
                "-H {name}: a Bcc: header would show the blind copies to every recipient; \
                 give them with -b ADDR (--bcc), which never appears in the message"
            )));
        }
        if lower.starts_with("content-") {
            return Err(refuse(format!(
                "-H {name}: postie writes the MIME headers (Content-*) itself for the body and \
                 attachments; send a ready message with --message for your own"
            )));
        }
        if lower == "reply-to" && !c.reply_to.is_empty() {
            return Err(refuse(format!(
                "-H {name} and --reply-to: that would be two Reply-To: headers; give it once"
            )));
        }
        if lower == "mime-version" && value.trim() != "1.0" {
            return Err(refuse(format!(
                "-H {name}: {value}: postie builds MIME 1.0 messages (RFC 2045 §4)"
            )));
        }
        const ONCE: &[&str] = &[
            "date",
            "sender",
            "reply-to",
            "message-id",
            "in-reply-to",
            "references",
            "mime-version",
        ];
        if ONCE.contains(&lower.as_str()) && out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(refuse(format!(
                "-H {name} given twice: a message has at most one {name}: header (RFC 5322 §3.6)"
            )));
        }
        let canonical = match lower.as_str() {
            "date" => "Date".to_string(),
            "message-id" => "Message-ID".to_string(),
            "mime-version" => "MIME-Version".to_string(),
            _ => name.to_string(),
        };
        out.push((canonical, value.clone()));
    }
    Ok(out)
}

fn address(m: &crate::envelope::Mailbox) -> Address<'static> {
    Address::new_address(m.name.clone(), m.addr.clone())
}

/// A To:/Cc: header value from typed recipients (bare local names qualified); `None` for
/// an empty list.
fn address_list(cfg: &Config, raw: &[String]) -> Result<Option<Address<'static>>> {
    let mut list = Vec::new();
    for r in raw {
        list.extend(
            crate::envelope::qualify_mailbox(cfg, r)?
                .iter()
                .map(address),
        );
    }
    Ok((!list.is_empty()).then(|| Address::new_list(list)))
}

/// Read ahead the header block of a ready message, drop a leading mbox `From ` line, and
/// find the From: address. `path`: the file `input` reads, from its start (so that the
/// message can be read again).
fn ready(mut input: Box<dyn Read>, len: Option<u64>, path: Option<&Path>) -> Result<Message> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut at_end = false;
    // The header block (up to HEAD_LIMIT), and at least READ_AHEAD bytes, or all of it.
    while head.len() < HEAD_LIMIT && (head.len() < READ_AHEAD || !has_header_end(&head)) {
        let n = match input.read(&mut chunk) {
            Ok(0) => {
                at_end = true;
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(format!("reading the message: {e}")).into()),
        };
        head.extend_from_slice(&chunk[..n]);
    }
    let mut dropped = 0;
    if head.starts_with(b"From ") {
        let end = head
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |i| i + 1);
        head.drain(..end);
        dropped = end as u64;
    }
    if head.is_empty() {
        return Err(Error::Data("the message is empty".into()).into());
    }
    let header_from = mail_parser::MessageParser::new()
        .parse_headers(&head[..])
        .and_then(|m| {
            m.from()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_string)
        });
    let (size, eight_bit, rest) = if at_end {
        (Some(head.len() as u64), Some(!head.is_ascii()), None)
    } else {
        (len.map(|l| l.saturating_sub(dropped)), None, Some(input))
    };
    // The rest starts after what was read: the dropped From_ line and the read-ahead.
    let file = match (&rest, path) {
        (Some(_), Some(path)) => Some((path.to_path_buf(), dropped + head.len() as u64)),
        _ => None,
    };
    Ok(Message {
        size,
        eight_bit,
        head,
        rest,
        file,
        attached: None,
        header_from,
        header_recipients: Vec::new(),
        empty_body: false,
        watch: None,
    })
}

/// Where the header block ends (the index of its empty line), if it is in `buf`.
fn header_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A `Content-Transfer-Encoding: binary` header line anywhere in `buf` (the message's own
/// or a MIME part's, as far as it was read ahead): the body must go as BINARYMIME.
fn declares_binary(buf: &[u8]) -> bool {
    const NAME: &[u8] = b"content-transfer-encoding:";
    buf.split(|&b| b == b'\n').any(|line| {
        line.len() > NAME.len()
            && line[..NAME.len()].eq_ignore_ascii_case(NAME)
            && line[NAME.len()..]
                .trim_ascii()
                .eq_ignore_ascii_case(b"binary")
    })
}

fn has_header_end(buf: &[u8]) -> bool {
    buf.windows(2).any(|w| w == b"\n\n") || buf.windows(4).any(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_from(bytes: &'static [u8]) -> Message {
        ready(Box::new(bytes), Some(bytes.len() as u64), None).unwrap()
    }

    fn all(m: Message) -> Vec<u8> {
        let mut out = Vec::new();
        m.write_to(&mut out).unwrap();
        out
    }

    #[test]
    fn ready_message_passes_through_and_finds_from() {
        let text = b"From: Ops <ops@x.example>\nTo: a@y.example\n\nbody\n.\n";
        let m = ready_from(text);
        assert_eq!(m.header_from.as_deref(), Some("ops@x.example"));
        assert_eq!(all(m), text);
    }

    #[test]
    fn mbox_from_line_is_dropped() {
        let m = ready_from(b"From ops@x Mon Jan  1 00:00:00 2026\nSubject: x\n\nhi\n");
        assert_eq!(m.size, Some(15));
        assert_eq!(all(m), b"Subject: x\n\nhi\n");
    }

    #[test]
    fn empty_ready_message_is_refused() {
        let err = ready(Box::new(&b""[..]), Some(0), None).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::DataErr);
    }

    /// A ready message from a file streams, and can still be read again from the start
    /// (its rest from the file, where the read-ahead stopped: the From_ line dropped once,
    /// nothing twice); from stdin it cannot. After a 7-bit check read more of it into
    /// memory, the copy still starts where the rest does.
    #[test]
    fn a_ready_message_from_a_file_can_be_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.eml");
        let line = "y".repeat(70) + "\n";
        let body = line.repeat(4000);
        std::fs::write(&path, format!("From sender Mon\nSubject: big\n\n{body}")).unwrap();
        let file = File::open(&path).unwrap();
        let m = ready(Box::new(file), None, Some(&path)).unwrap();
        assert!(m.whole().is_none(), "streamed");
        let want = format!("Subject: big\n\n{body}").into_bytes();
        let copies = [m.again().unwrap(), m.again().unwrap()];
        assert_eq!(all(m), want);
        for copy in copies {
            assert_eq!(all(copy), want);
        }
        // Read further into memory (a server without 8BITMIME: still 7-bit, so it
        // streams on when over the limit; here under it, so it is held whole).
        let file = File::open(&path).unwrap();
        let m = ready(Box::new(file), None, Some(&path)).unwrap();
        let (m, _) = for_seven_bit_server(None, m).unwrap();
        assert_eq!(all(m.again().unwrap()), want);
        assert_eq!(all(m), want);
        let stdin = ready(Box::new(io::Cursor::new(want.clone())), None, None);
        assert!(stdin.unwrap().again().is_none(), "stdin is read once");
    }

    #[test]
    fn large_ready_message_is_not_read_ahead_whole() {
        let mut big = b"Subject: big\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 4 << 20));
        let len = big.len();
        let m = ready(Box::new(io::Cursor::new(big)), None, None).unwrap();
        assert!(
            m.head.len() <= READ_AHEAD + 8192,
            "read ahead {} bytes",
            m.head.len()
        );
        assert!(m.whole().is_none());
        assert_eq!((m.size, m.eight_bit), (None, None));
        assert_eq!(all(m).len(), len);
    }

    #[test]
    fn small_ready_message_is_known_whole() {
        // From stdin: no length given, yet the size and the 8-bit question are answered.
        let m = ready(Box::new(&b"Subject: x\n\nh\xc3\xa9\n"[..]), None, None).unwrap();
        assert_eq!(m.size, Some(16));
        assert_eq!(m.eight_bit, Some(true));
        assert_eq!(m.body_kind(), BodyKind::EightBit);
        assert!(!m.utf8_headers());
        assert_eq!(m.whole(), Some(&b"Subject: x\n\nh\xc3\xa9\n"[..]));
        let m = ready(Box::new(&b"Subject: caf\xc3\xa9\n\nhi\n"[..]), None, None).unwrap();
        assert!(m.utf8_headers());
        let m = ready(Box::new(&b"Subject: x\n\nhi\n"[..]), None, None).unwrap();
        assert_eq!(m.body_kind(), BodyKind::SevenBit);
    }

    #[test]
    fn binary_parts_are_recognised() {
        let cases: &[(&[u8], bool)] = &[
            (b"Content-Transfer-Encoding: binary\r\n\r\n\x00", true),
            (
                b"Subject: x\n\n--b\ncontent-transfer-encoding:  BINARY \n\n\x00\n",
                true,
            ),
            (b"Content-Transfer-Encoding: base64\n\nAAAA\n", false),
            (
                b"Subject: binary\n\nContent-Transfer-Encoding binary\n",
                false,
            ),
        ];
        for (text, binary) in cases {
            let m = ready(Box::new(*text), None, None).unwrap();
            assert_eq!(m.body_kind() == BodyKind::Binary, *binary, "{text:?}");
        }
    }

    #[test]
    fn composed_messages_are_seven_bit_even_with_utf8_text() {
        let m = Message::in_memory(
            MessageBuilder::new()
                .from(("", "a@x.test"))
                .to(("", "b@x.test"))
                .subject("caf\u{e9}")
                .text_body("na\u{ef}ve caf\u{e9} \u{2603}\n")
                .write_to_vec()
                .unwrap(),
        );
        assert_eq!(m.eight_bit, Some(false));
        assert_eq!(m.body_kind(), BodyKind::SevenBit);
    }

    #[test]
    fn a_streamed_message_is_read_whole_and_converted_for_a_seven_bit_server() {
        // Nothing 8-bit in the read-ahead; the rest (unread until now) has some.
        let mut rest = "x\n".repeat(READ_AHEAD).into_bytes();
        rest.extend_from_slice("caf\u{e9}\n".as_bytes());
        let m = Message::streaming(b"Subject: s\n\n".to_vec(), Box::new(io::Cursor::new(rest)));
        let (m, note) = for_seven_bit_server(None, m).unwrap();
        assert_eq!(
            note.as_deref(),
            Some("the server does not offer 8BITMIME: converted 1 MIME part to quoted-printable")
        );
        let bytes = m.whole().expect("held whole").to_vec();
        assert!(bytes.is_ascii());
        assert_eq!(m.size, Some(bytes.len() as u64));
        assert!(bytes.ends_with(b"caf=C3=A9\r\n"));
        assert_eq!(m.body_kind(), BodyKind::SevenBit);
    }

    #[test]
    fn a_streamed_seven_bit_message_is_only_read_ahead() {
        let m = Message::streaming(b"Subject: s\n\n".to_vec(), Box::new(&b"all ascii\n"[..]));
        let (m, note) = for_seven_bit_server(None, m).unwrap();
        assert_eq!(note, None);
        assert_eq!(m.whole(), Some(&b"Subject: s\n\nall ascii\n"[..]));
        assert_eq!(m.eight_bit, Some(false));
    }

    #[test]
    fn someone_elses_dkim_signature_is_not_broken_by_converting() {
        let signed = "DKIM-Signature: v=1; a=rsa-sha256; d=x.test; s=s; b=AAAA\n\
                      From: a@x.test\n\ncaf\u{e9}\n";
        let err = for_seven_bit_server(None, Message::in_memory(signed.into())).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::DataErr);
        let text = format!("{err:#}");
        assert!(text.contains("DKIM-Signature"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    /// The message the arguments compose (test mode: fixed Date and Message-ID), with
    /// attachments over `stream_from` bytes left in their files, as bytes with each MIME
    /// boundary replaced by a fixed name (mail-builder makes new ones each time).
    fn composed(args: &[&str], stream_from: u64) -> (Message, Vec<u8>) {
        let mut all = vec!["--server", "127.0.0.1", "--tls", "none", "-f", "a@x.test"];
        all.extend_from_slice(args);
        let cfg = crate::config::for_tests(&all, &[(crate::config::TEST_MODE_ENV, "1")]);
        let Content::Compose(c) = &cfg.content else {
            panic!("not composed")
        };
        let m = compose_streaming_from(&cfg, c, Box::new(io::empty()), stream_from).unwrap();
        let again = m.again().expect("composed messages can be read again");
        let mut bytes = Vec::new();
        again.write_to(&mut bytes).unwrap();
        assert_eq!(
            m.size,
            Some(bytes.len() as u64),
            "the size declared is exact"
        );
        let mut text = String::from_utf8(bytes).unwrap();
        let names: Vec<String> = text
            .split("boundary=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect();
        for (n, name) in names.iter().enumerate() {
            text = text.replace(name, &format!("BOUNDARY{n}"));
        }
        (m, text.into_bytes())
    }

    fn file_with(dir: &Path, name: &str, data: &[u8]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        path.to_str().unwrap().to_string()
    }

    #[test]
    fn attachments_left_in_their_files_make_the_same_message_as_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let bin: Vec<u8> = (0..200_003u32).map(|i| (i * 31 + i / 997) as u8).collect();
        let bin = file_with(dir.path(), "data.bin", &bin);
        let empty = file_with(dir.path(), "empty.dat", b"");
        let small = file_with(dir.path(), "one.png", b"\x89PNG");
        let cases: &[&[&str]] = &[
            &["-s", "one", "--body", "hi", "-a", &bin, "b@x.test"],
            &[
                "-s", "three", "--body", "hi", "-a", &small, "-a", &bin, "-a", &empty, "b@x.test",
            ],
            &[
                "--html-body",
                "<p>hi</p>",
                "--body",
                "hi",
                "-a",
                &bin,
                "b@x.test",
            ],
            &["-a", &bin, "b@x.test"],
        ];
        for args in cases {
            let (memory, want) = composed(args, u64::MAX);
            let (files, got) = composed(args, 0);
            assert!(
                memory.whole().is_some() && files.whole().is_none(),
                "{args:?}"
            );
            assert!(got == want, "{args:?}: the messages differ");
            assert_eq!(files.eight_bit, Some(false));
            assert_eq!(files.body_kind(), BodyKind::SevenBit);
        }
    }

    #[test]
    fn a_large_text_attachment_goes_as_base64_and_a_small_one_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let log = "2026-01-01 all good\n".repeat(100);
        let path = file_with(dir.path(), "backup.log", log.as_bytes());
        // Small: mail-builder chooses (quoted-printable for bare LF lines).
        let (m, small) = composed(&["-a", &path, "b@x.test"], attach::STREAM_FROM);
        assert!(m.whole().is_some());
        // In a file: base64, the same text when decoded.
        let (m, big) = composed(&["-a", &path, "b@x.test"], 0);
        assert!(m.whole().is_none());
        assert_ne!(small, big);
        let parsed = mail_parser::MessageParser::new().parse(&big[..]).unwrap();
        let part = parsed.attachment(0).unwrap();
        assert_eq!(part.contents(), log.as_bytes());
        assert_eq!(
            mail_parser::MimeHeaders::attachment_name(part),
            Some("backup.log")
        );
        let text = String::from_utf8(big).unwrap();
        assert!(text.contains("Content-Type: text/plain\r\nContent-Disposition: attachment; filename=\"backup.log\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"), "{text}");
    }

    #[test]
    fn a_composed_message_with_attachments_in_files_is_signed_as_it_streams() {
        let dir = tempfile::tempdir().unwrap();
        let bin: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let bin = file_with(dir.path(), "data.bin", &bin);
        let (pem, _) = crate::dkim::generate(crate::dkim::KeyType::Ed25519, 0).unwrap();
        let key = file_with(dir.path(), "k.pem", pem.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let args = [
            "--server",
            "127.0.0.1",
            "--tls",
            "none",
            "-f",
            "a@x.test",
            "--dkim-key",
            &key,
            "--dkim-selector",
            "sel",
            "-s",
            "signed",
            "--body",
            "hi",
            "-a",
            &bin,
            "b@x.test",
        ];
        let cfg = crate::config::for_tests(&args, &[(crate::config::TEST_MODE_ENV, "1")]);
        let Content::Compose(c) = &cfg.content else {
            panic!("not composed")
        };
        let m = compose_streaming_from(&cfg, c, Box::new(io::empty()), 0).unwrap();
        let unsigned = all(m.again().unwrap());
        let m = sign(&cfg, m).unwrap();
        assert!(m.whole().is_none(), "still streams");
        let signed = all(m.again().unwrap());
        assert_eq!(m.size, Some(signed.len() as u64));
        assert!(signed.starts_with(b"DKIM-Signature: "));
        assert!(signed.ends_with(&unsigned));
        // The body hash is that of the message signed whole.
        let header = &signed[..signed.len() - unsigned.len()];
        let whole = crate::dkim::Signer::load(cfg.session.dkim.as_ref().unwrap())
            .unwrap()
            .signature(&unsigned, Some("x.test"))
            .unwrap();
        let bh = |h: &[u8]| {
            let flat: String = String::from_utf8_lossy(h).split_whitespace().collect();
            flat.split(';')
                .find(|t| t.starts_with("bh="))
                .unwrap()
                .to_string()
        };
        assert_eq!(bh(header), bh(whole.as_bytes()));
    }

    #[test]
    fn h_headers_postie_writes_itself_are_refused_naming_the_header_and_why() {
        let compose = |headers: &[(&str, &str)], reply_to: &[&str]| Compose {
            subject: None,
            reply_to: reply_to.iter().map(|s| s.to_string()).collect(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: None,
            html: None,
            attachments: Vec::new(),
        };
        /// -H headers, --reply-to values, what the refusal says.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
        let cases: &[Case] = &[
            (
                &[("from", "a@x")],
                &[],
                "-H from: postie writes the from: header itself, from -f ADDR (--from); give it there",
            ),
            (&[("To", "a@x")], &[], "from the recipient arguments and --to ADDR"),
            (&[("CC", "a@x")], &[], "-c ADDR (--cc)"),
            (&[("Subject", "x")], &[], "-s TEXT (--subject)"),
            (&[("BCC", "a@x")], &[], "-H BCC: a Bcc: header would show the blind copies"),
            (
                &[("Content-Disposition", "inline")],
                &[],
                "-H Content-Disposition: postie writes the MIME headers (Content-*) itself",
            ),
            (
                &[("Reply-To", "a@x")],
                &["b@x"],
                "-H Reply-To and --reply-to: that would be two Reply-To: headers; give it once",
            ),
            (
                &[("Message-ID", "<a@x>"), ("message-id", "<b@x>")],
                &[],
                "-H message-id given twice: a message has at most one message-id: header",
            ),
            (
                &[("MIME-Version", "2.0")],
                &[],
                "-H MIME-Version: 2.0: postie builds MIME 1.0 messages",
            ),
        ];
        for (headers, reply_to, want) in cases {
            let err = checked_headers(&compose(headers, reply_to)).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), crate::error::Exit::Usage);
            let text = format!("{err:#}");
            assert!(text.contains(want), "{headers:?}: {text}");
        }
        let ok = checked_headers(&compose(
            &[
                ("message-id", "<a@x>"),
                ("Reply-To", "r@x"),
                ("X-Thing", "1"),
            ],
            &[],
        ))
        .unwrap();
        let names: Vec<&str> = ok.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Message-ID", "Reply-To", "X-Thing"]);
    }
}
