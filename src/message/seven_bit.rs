//! 8-bit to 7-bit MIME conversion, for a server that does not offer 8BITMIME (RFC 6152 §3:
//! a client that cannot send 8-bit data as it is must convert it to 7-bit MIME or not send
//! it). This is what Postfix's SMTP client does, and it keeps cron output and PHP `mail()`
//! messages (UTF-8 text, no Content-Transfer-Encoding) from being refused by such relays.
//!
//! Owns: finding the MIME parts whose body has bytes above 127 and re-encoding just those
//! (RFC 2045 §6): quoted-printable for text (and for a part with no Content-Type, which is
//! text/plain, RFC 2045 §5.2), base64 for anything else; the part's
//! Content-Transfer-Encoding header is replaced. Everything else — other parts, their
//! headers, boundaries, preamble and epilogue — is copied byte for byte. A message without
//! MIME headers is a text/plain one: it gets MIME-Version, a Content-Type whose charset is
//! utf-8 when the body is valid UTF-8 and unknown-8bit otherwise (RFC 1428), and
//! Content-Transfer-Encoding: quoted-printable. Multiparts are walked to any depth; an
//! encapsulated message/rfc822 (which may not itself be encoded, RFC 2046 §5.2.1) is
//! converted inside, part by part. The body is put in canonical form (CRLF line ends) before
//! it is encoded, so decoding the result gives the bytes that would have gone as 8-bit.
//!
//! Must not: parse MIME or encode by hand — the structure and the part offsets are
//! mail-parser's, quoted-printable is the quoted_printable crate's, base64 the base64
//! crate's; touch a part that is already 7-bit; convert what cannot be converted: 8-bit
//! bytes in a header (the message's or a part's: that needs SMTPUTF8, RFC 6532), in a
//! preamble or epilogue, in a part that claims to be encoded already or binary. Those are
//! refused with one line (EX_DATAERR). Deciding when to convert, and DKIM, are the caller's
//! (`message::for_seven_bit_server`).
//!
//! RFC 6152 §3; RFC 2045 §2.7-§2.8, §5.2, §6 (7bit, 8bit, quoted-printable, base64, line
//! length 76); RFC 2046 §5.1 (multipart), §5.2.1 (message/rfc822); RFC 1428 (unknown-8bit);
//! RFC 5321 §4.5.3.1.6 (998-octet lines).

use std::io::Write;

use base64::Engine;
use mail_parser::{HeaderName, MessageParser, MessagePart, MimeHeaders, PartType};

use super::wire::DotStuffer;
use crate::error::Error;

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The message, 7-bit.
    pub bytes: Vec<u8>,
    /// MIME parts re-encoded as quoted-printable.
    pub quoted_printable: usize,
    /// MIME parts re-encoded as base64.
    pub base64: usize,
}

impl Converted {
    /// For the transcript: "2 MIME parts (1 quoted-printable, 1 base64)".
    pub fn summary(&self) -> String {
        let parts = self.quoted_printable + self.base64;
        let noun = if parts == 1 { "part" } else { "parts" };
        match (self.quoted_printable, self.base64) {
            (_, 0) => format!("{parts} MIME {noun} to quoted-printable"),
            (0, _) => format!("{parts} MIME {noun} to base64"),
            (q, b) => format!("{parts} MIME parts ({q} quoted-printable, {b} base64)"),
        }
    }
}

/// Why a message cannot be converted (the caller adds that the server lacks 8BITMIME).
fn refuse(why: &str) -> anyhow::Error {
    Error::Data(format!(
        "the message has 8-bit data and the server does not offer 8BITMIME, but it cannot \
         be converted to 7-bit: {why}"
    ))
    .into()
}

/// The message with every 8-bit MIME part re-encoded 7-bit; `None` when it is 7-bit already.
pub fn convert(raw: &[u8]) -> anyhow::Result<Option<Converted>> {
    if raw.is_ascii() {
        return Ok(None);
    }
    let message = MessageParser::new()
        .parse(raw)
        .ok_or_else(|| refuse("it cannot be read as a MIME message"))?;
    let root = message
        .parts
        .first()
        .ok_or_else(|| refuse("it cannot be read as a MIME message"))?;
    if !raw[root.offset_header as usize..root.offset_body as usize].is_ascii() {
        return Err(refuse(
            "its header has 8-bit bytes (that needs a server offering SMTPUTF8 and 8BITMIME)",
        ));
    }
    let mut walk = Walk {
        raw,
        out: Vec::with_capacity(raw.len() + raw.len() / 3 + 256),
        quoted_printable: 0,
        base64: 0,
    };
    walk.verbatim(0, root.offset_header, "before the header")?;
    walk.part(&message.parts, 0, Place::Top)?;
    walk.verbatim(root.offset_end, raw.len() as u32, "after the message")?;
    if !walk.out.is_ascii() {
        // Every 8-bit byte is in a region refused or re-encoded above; this is a bug guard.
        return Err(refuse("8-bit bytes are left after converting it"));
    }
    Ok(Some(Converted {
        bytes: walk.out,
        quoted_printable: walk.quoted_printable,
        base64: walk.base64,
    }))
}

/// Where a part sits: a message's own header block (top level or encapsulated) needs
/// MIME-Version when it gets MIME headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Top,
    Inner,
}

struct Walk<'a> {
    raw: &'a [u8],
    out: Vec<u8>,
    quoted_printable: usize,
    base64: usize,
}

impl Walk<'_> {
    /// Copy `raw[from..to]`, which must be 7-bit (`what` names it in the refusal).
    fn verbatim(&mut self, from: u32, to: u32, what: &str) -> anyhow::Result<()> {
        let bytes = self
            .raw
            .get(from as usize..to as usize)
            .ok_or_else(|| refuse("its MIME structure cannot be followed"))?;
        if !bytes.is_ascii() {
            return Err(refuse(&format!("it has 8-bit bytes {what}")));
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// The part `parts[id]`, from its header to its end.
    fn part(&mut self, parts: &[MessagePart<'_>], id: usize, place: Place) -> anyhow::Result<()> {
        let p = parts
            .get(id)
            .ok_or_else(|| refuse("its MIME structure cannot be followed"))?;
        let region = self
            .raw
            .get(p.offset_header as usize..p.offset_end as usize)
            .ok_or_else(|| refuse("its MIME structure cannot be followed"))?;
        if region.is_ascii() {
            self.out.extend_from_slice(region);
            return Ok(());
        }
        match &p.body {
            PartType::Multipart(children) => {
                self.verbatim(p.offset_header, p.offset_body, "in a MIME part's header")?;
                let mut at = p.offset_body;
                for &child in children {
                    let c = parts
                        .get(child as usize)
                        .ok_or_else(|| refuse("its MIME structure cannot be followed"))?;
                    self.verbatim(at, c.offset_header, "in a multipart's preamble")?;
                    self.part(parts, child as usize, Place::Inner)?;
                    at = c.offset_end;
                }
                self.verbatim(at, p.offset_end, "in a multipart's epilogue")
            }
            PartType::Message(inner) => {
                self.verbatim(p.offset_header, p.offset_body, "in a MIME part's header")?;
                // mail-parser reads an unencoded message/rfc822 in place: its offsets are
                // this message's. An encoded one (not allowed, RFC 2046 §5.2.1) is a copy.
                let inner_root = inner.parts.first().filter(|_| {
                    inner.raw_message.len() == self.raw.len()
                        && p.encoding == mail_parser::Encoding::None
                });
                let Some(root) = inner_root else {
                    return Err(refuse("it has an encoded message/rfc822 part"));
                };
                if !self.raw[root.offset_header as usize..root.offset_body as usize].is_ascii() {
                    return Err(refuse(
                        "an attached message (message/rfc822) has 8-bit bytes in its header",
                    ));
                }
                self.verbatim(
                    p.offset_body,
                    root.offset_header,
                    "in a message/rfc822 part",
                )?;
                self.part(&inner.parts, 0, Place::Top)?;
                self.verbatim(root.offset_end, p.offset_end, "in a message/rfc822 part")
            }
            _ => self.leaf(p, place),
        }
    }

    /// A part with a body of its own and 8-bit bytes in it: re-encoded.
    fn leaf(&mut self, p: &MessagePart<'_>, place: Place) -> anyhow::Result<()> {
        let header = &self.raw[p.offset_header as usize..p.offset_body as usize];
        if !header.is_ascii() {
            return Err(refuse(
                "a MIME part's header has 8-bit bytes (that needs SMTPUTF8)",
            ));
        }
        match p
            .content_transfer_encoding()
            .map(|e| e.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("7bit" | "8bit") => {}
            Some("binary") => {
                return Err(refuse(
                    "it has a binary part (that needs a server offering BINARYMIME)",
                ))
            }
            Some(other) => return Err(refuse(&format!("a part declared {other} has 8-bit bytes"))),
        }
        let body = &self.raw[p.offset_body as usize..p.offset_end as usize];
        let (kind, subtype) = match p.content_type() {
            Some(ct) => (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or_default().to_ascii_lowercase(),
            ),
            None => ("text".to_string(), "plain".to_string()),
        };
        let quoted_printable = match (kind.as_str(), subtype.as_str()) {
            ("text", _) => true,
            // RFC 6532 §3.5: message/global may be encoded; the other message/* may not.
            ("message", "global") => false,
            ("message", _) | ("multipart", _) => {
                return Err(refuse(&format!(
                    "its {kind}/{subtype} part has 8-bit bytes and may not be encoded"
                )))
            }
            _ => false,
        };

        // The header block without its Content-Transfer-Encoding field(s), and without the
        // empty line that ends it (put back after the new fields).
        let cte: Vec<(usize, usize)> = p
            .headers
            .iter()
            .filter(|h| h.name == HeaderName::ContentTransferEncoding)
            .map(|h| (h.offset_field as usize, h.offset_end as usize))
            .collect();
        let start = p.offset_header as usize;
        let blank = if header.ends_with(b"\r\n") {
            2
        } else if header.ends_with(b"\n") {
            1
        } else {
            0
        };
        let fields_end = p.offset_body as usize - blank;
        let mut at = start;
        for (from, to) in cte {
            if from < at || to > fields_end {
                return Err(refuse("its MIME structure cannot be followed"));
            }
            self.out.extend_from_slice(&self.raw[at..from]);
            at = to;
        }
        self.out.extend_from_slice(&self.raw[at..fields_end]);
        if place == Place::Top && !p.headers.iter().any(|h| h.name == HeaderName::MimeVersion) {
            self.out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        }
        if p.content_type().is_none() {
            let charset = if std::str::from_utf8(body).is_ok() {
                "utf-8"
            } else {
                "unknown-8bit"
            };
            self.out.extend_from_slice(
                format!("Content-Type: text/plain; charset={charset}\r\n").as_bytes(),
            );
        }
        let encoding = if quoted_printable {
            "quoted-printable"
        } else {
            "base64"
        };
        self.out
            .extend_from_slice(format!("Content-Transfer-Encoding: {encoding}\r\n").as_bytes());
        self.out.extend_from_slice(b"\r\n");

        let canonical = crlf(body);
        if quoted_printable {
            self.out
                .extend_from_slice(&quoted_printable::encode(&canonical));
            self.quoted_printable += 1;
        } else {
            base64_lines(&canonical, &mut self.out);
            self.base64 += 1;
        }
        Ok(())
    }
}

/// The body with CRLF line ends (RFC 2045 §2.7-§2.8: the canonical form that 8bit data
/// stands for), by the same codec that puts a message on the wire.
fn crlf(body: &[u8]) -> Vec<u8> {
    let mut normaliser = DotStuffer::crlf_only(Vec::with_capacity(body.len() + body.len() / 32));
    // Writing to a Vec cannot fail.
    let _ = normaliser.write_all(body);
    let mut out = std::mem::take(normaliser.get_mut());
    // A CR at the very end is still pending in the codec: `finish` would also end an
    // unterminated last line, which is not ours to add before a boundary.
    if body.ends_with(b"\r") && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Base64 in lines of 76 characters (RFC 2045 §6.8), each ended with CRLF.
fn base64_lines(data: &[u8], out: &mut Vec<u8>) {
    const PER_LINE: usize = 57;
    let engine = base64::engine::general_purpose::STANDARD;
    for chunk in data.chunks(PER_LINE) {
        out.extend_from_slice(engine.encode(chunk).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message decoded by mail-parser (an independent reader of what we wrote).
    fn parsed(bytes: &[u8]) -> mail_parser::Message<'_> {
        MessageParser::new().parse(bytes).expect("parses")
    }

    /// Every line of `bytes` is at most `max` octets before its CRLF.
    fn longest_line(bytes: &[u8]) -> usize {
        bytes
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
            .max()
            .unwrap_or(0)
    }

    /// The decoded bytes of leaf part `id`, by mail-parser.
    fn decoded(m: &mail_parser::Message<'_>, id: usize) -> Vec<u8> {
        match &m.parts[id].body {
            PartType::Text(t) | PartType::Html(t) => t.as_bytes().to_vec(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
            other => panic!("part {id} is not a leaf: {other:?}"),
        }
    }

    #[test]
    fn seven_bit_messages_are_left_alone() {
        assert_eq!(convert(b"Subject: x\r\n\r\nplain\r\n").unwrap(), None);
    }

    #[test]
    fn a_non_mime_message_becomes_quoted_printable_text_plain_utf8() {
        let raw = "From: cron@x.test\nSubject: report\n\nCaf\u{e9} cr\u{e8}me = ok\n.\n".as_bytes();
        let c = convert(raw).unwrap().expect("converted");
        assert_eq!(
            String::from_utf8(c.bytes.clone()).unwrap(),
            "From: cron@x.test\nSubject: report\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n\
             Caf=C3=A9 cr=C3=A8me =3D ok\r\n.\r\n"
        );
        assert_eq!((c.quoted_printable, c.base64), (1, 0));
        let m = parsed(&c.bytes);
        assert_eq!(
            m.body_text(0).unwrap(),
            "Caf\u{e9} cr\u{e8}me = ok\r\n.\r\n"
        );
    }

    #[test]
    fn invalid_utf8_is_labelled_unknown_8bit() {
        let c = convert(b"Subject: x\n\nlatin-1 caf\xe9\n")
            .unwrap()
            .unwrap();
        let text = String::from_utf8(c.bytes).unwrap();
        assert!(
            text.contains("Content-Type: text/plain; charset=unknown-8bit\r\n"),
            "{text}"
        );
        assert!(text.ends_with("latin-1 caf=E9\r\n"), "{text}");
    }

    #[test]
    fn long_lines_are_wrapped_and_round_trip() {
        let line = "\u{e9}t\u{e9} ".repeat(200);
        let body = format!("{line}\r\nshort\r\n{}\r\n", "x".repeat(2000));
        let raw = format!("Subject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}");
        let c = convert(raw.as_bytes()).unwrap().unwrap();
        assert!(c.bytes.is_ascii());
        assert!(longest_line(&c.bytes) <= 76, "{}", longest_line(&c.bytes));
        let m = parsed(&c.bytes);
        assert_eq!(m.body_text(0).unwrap(), body);
        // The existing Content-Type is kept, not doubled.
        let text = String::from_utf8(c.bytes).unwrap();
        assert_eq!(text.matches("Content-Type:").count(), 1, "{text}");
        // A Content-Transfer-Encoding only means something under MIME-Version.
        assert_eq!(text.matches("MIME-Version: 1.0\r\n").count(), 1, "{text}");
    }

    #[test]
    fn multipart_converts_only_the_8bit_parts_and_keeps_the_rest_byte_for_byte() {
        let raw: &[u8] = b"From: a@x.test\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
            preamble\r\n\
            --b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
            caf\xc3\xa9\r\nline2\r\n\
            --b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            aGVsbG8=\r\n\
            --b1\r\nContent-Type: application/octet-stream\r\n\r\n\
            \xff\xfe\x00bin\r\n\
            --b1\r\nContent-Type: text/plain\r\n\r\nseven bit\r\n\
            --b1--\r\nepilogue\r\n";
        let c = convert(raw).unwrap().unwrap();
        assert_eq!((c.quoted_printable, c.base64), (1, 1));
        let text = String::from_utf8(c.bytes.clone()).unwrap();
        assert_eq!(
            text,
            "From: a@x.test\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             preamble\r\n\
             --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n\
             caf=C3=A9\r\nline2\
             \r\n--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             aGVsbG8=\r\n\
             --b1\r\nContent-Type: application/octet-stream\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n\
             //4AYmlu\r\n\
             \r\n--b1\r\nContent-Type: text/plain\r\n\r\nseven bit\r\n\
             --b1--\r\nepilogue\r\n"
        );
        let m = parsed(&c.bytes);
        assert_eq!(decoded(&m, 1), b"caf\xc3\xa9\r\nline2");
        assert_eq!(decoded(&m, 2), b"hello");
        assert_eq!(decoded(&m, 3), b"\xff\xfe\x00bin");
        assert_eq!(decoded(&m, 4), b"seven bit");
    }

    #[test]
    fn nested_multiparts_and_attached_messages_are_converted_inside() {
        let raw = "From: a@x.test\nContent-Type: multipart/mixed; boundary=x\n\n\
            --x\n\nno headers \u{e9}\n\
            --x\nContent-Type: multipart/alternative; boundary=y\n\n\
            --y\nContent-Type: text/html; charset=utf-8\n\n<p>\u{e9}</p>\n--y--\n\n\
            --x\nContent-Type: message/rfc822\n\n\
            Subject: inner\nFrom: b@x.test\n\ninner \u{e9}\n\
            --x--\n";
        let c = convert(raw.as_bytes()).unwrap().unwrap();
        assert_eq!((c.quoted_printable, c.base64), (3, 0));
        assert!(c.bytes.is_ascii());
        let text = String::from_utf8(c.bytes.clone()).unwrap();
        // The encapsulated message is a message itself: it gets MIME-Version.
        assert!(
            text.contains(
                "Subject: inner\nFrom: b@x.test\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\ninner =C3=A9\n--x--\n"
            ),
            "{text}"
        );
        let m = parsed(&c.bytes);
        assert_eq!(decoded(&m, 1), "no headers \u{e9}".as_bytes());
        assert_eq!(decoded(&m, 3), "<p>\u{e9}</p>".as_bytes());
        let inner = m.attachment(0).and_then(|a| a.message()).expect("rfc822");
        assert_eq!(inner.body_text(0).unwrap(), "inner \u{e9}");
    }

    #[test]
    fn base64_lines_are_76_characters_and_round_trip() {
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let mut raw = b"Content-Type: image/png\r\n\r\n".to_vec();
        raw.extend_from_slice(&data);
        let c = convert(&raw).unwrap().unwrap();
        assert!(c.bytes.is_ascii());
        assert_eq!(longest_line(&c.bytes), 76);
        let m = parsed(&c.bytes);
        // The canonical form: the body's line ends as CRLF.
        assert_eq!(decoded(&m, 0), crlf(&data));
    }

    #[test]
    fn what_cannot_be_converted_is_refused_with_65() {
        let cases: &[(&[u8], &str)] = &[
            (b"Subject: caf\xc3\xa9\n\nbody \xc3\xa9\n", "header"),
            (
                b"Content-Type: multipart/mixed; boundary=b\n\n\xc3\xa9 pre\n--b\n\nx\n--b--\n",
                "preamble",
            ),
            (
                b"Content-Type: multipart/mixed; boundary=b\n\n--b\nX-Name: \xc3\xa9\n\nx\xc3\xa9\n--b--\n",
                "part's header",
            ),
            (
                b"Content-Transfer-Encoding: base64\n\n\xc3\xa9\n",
                "declared base64",
            ),
            (b"Content-Transfer-Encoding: binary\n\n\xc3\xa9\n", "BINARYMIME"),
        ];
        for (raw, why) in cases {
            let err = convert(raw).unwrap_err();
            assert_eq!(
                crate::error::exit_code(&err),
                crate::error::Exit::DataErr,
                "{err:#}"
            );
            let text = format!("{err:#}");
            assert!(text.contains(why), "{why}: {text}");
            assert!(!text.contains('\n'), "one line: {text}");
        }
    }

    #[test]
    fn summary_names_the_encodings() {
        let c = |q, b| Converted {
            bytes: Vec::new(),
            quoted_printable: q,
            base64: b,
        };
        assert_eq!(c(1, 0).summary(), "1 MIME part to quoted-printable");
        assert_eq!(c(0, 2).summary(), "2 MIME parts to base64");
        assert_eq!(
            c(2, 1).summary(),
            "3 MIME parts (2 quoted-printable, 1 base64)"
        );
    }
}
