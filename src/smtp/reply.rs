//! SMTP replies, parsed once from bytes into types (RFC 5321 §4.2, §4.2.1 reply code
//! digits; RFC 3463 enhanced status codes, RFC 2034 for their placement in the text).
//!
//! This module owns the reply model ([`Reply`], [`Code`], [`Severity`], [`Category`],
//! [`EnhancedCode`]) and the incremental [`parse`] function that the connection calls
//! with whatever bytes it has buffered so far. It does no I/O and keeps no state between
//! calls: `Ok(None)` means "read more and call again". Everything a server sends is
//! untrusted: the parser never panics, decodes text lossily (non-UTF-8 is not an error)
//! and bounds both the line length ([`MAX_LINE_LEN`], more lenient than the RFC's 512)
//! and the line count ([`MAX_LINES`]), so a hostile or broken server cannot make us
//! buffer without limit. It must not decide what a reply *means* for the dialogue; that
//! is the session's job, which asks `reply.code.severity` instead of comparing strings.

use std::fmt;

/// Longest reply line accepted, in bytes, without its CRLF. RFC 5321 §4.5.3.1.5 says
/// 512 including CRLF; real servers exceed it, so be lenient but bounded.
pub const MAX_LINE_LEN: usize = 2048;

/// Most lines one reply may have.
pub const MAX_LINES: usize = 512;

/// First digit of a reply code (RFC 5321 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    PositiveCompletion = 2,
    PositiveIntermediate = 3,
    TransientNegative = 4,
    PermanentNegative = 5,
}

impl Severity {
    /// The RFC 5321 §4.2.1 name, as shown to the user ("permanent negative completion").
    pub fn describe(self) -> &'static str {
        match self {
            Severity::PositiveCompletion => "positive completion",
            Severity::PositiveIntermediate => "positive intermediate",
            Severity::TransientNegative => "transient negative completion",
            Severity::PermanentNegative => "permanent negative completion",
        }
    }

    fn from_digit(d: u8) -> Option<Severity> {
        match d {
            2 => Some(Severity::PositiveCompletion),
            3 => Some(Severity::PositiveIntermediate),
            4 => Some(Severity::TransientNegative),
            5 => Some(Severity::PermanentNegative),
            _ => None,
        }
    }
}

/// Second digit of a reply code (RFC 5321 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Syntax = 0,
    Information = 1,
    Connections = 2,
    Unspecified3 = 3,
    Unspecified4 = 4,
    MailSystem = 5,
}

impl Category {
    fn from_digit(d: u8) -> Option<Category> {
        match d {
            0 => Some(Category::Syntax),
            1 => Some(Category::Information),
            2 => Some(Category::Connections),
            3 => Some(Category::Unspecified3),
            4 => Some(Category::Unspecified4),
            5 => Some(Category::MailSystem),
            _ => None,
        }
    }
}

/// A three-digit reply code such as 550.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub severity: Severity,
    pub category: Category,
    /// Third digit, 0..=9.
    pub detail: u8,
}

impl Code {
    /// True for 2xx (positive completion) only; 3xx is intermediate, not success.
    pub fn is_positive(self) -> bool {
        self.severity == Severity::PositiveCompletion
    }

    /// The code as a number, e.g. 550.
    pub fn as_u16(self) -> u16 {
        (self.severity as u16) * 100 + (self.category as u16) * 10 + u16::from(self.detail)
    }

    /// The code for a number such as 250; `None` unless the first digit is 2..=5, the
    /// second 0..=5 (and the number has three digits). Handy for tests and fake servers.
    pub fn from_u16(n: u16) -> Option<Code> {
        if !(100..=999).contains(&n) {
            return None;
        }
        // Each digit is < 10, so the casts cannot truncate.
        Code::from_digits((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8)
    }

    fn from_digits(severity: u8, category: u8, detail: u8) -> Option<Code> {
        if detail > 9 {
            return None;
        }
        Some(Code {
            severity: Severity::from_digit(severity)?,
            category: Category::from_digit(category)?,
            detail,
        })
    }

    /// Three ASCII digits from the wire.
    fn from_ascii(digits: [u8; 3]) -> Option<Code> {
        let [a, b, c] = digits;
        if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
            return None;
        }
        Code::from_digits(a - b'0', b - b'0', c - b'0')
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// An RFC 3463 enhanced status code such as 5.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode {
    /// 2, 4 or 5; equal to the reply code's first digit.
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One complete reply: every line shares `code`; `lines` hold the text after the code
/// and its separator, decoded lossily, trailing whitespace trimmed, enhanced code kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    /// Parsed from the first line's text when it starts with one (RFC 2034).
    pub enhanced: Option<EnhancedCode>,
    pub lines: Vec<String>,
}

impl Reply {
    /// Text of all lines joined by a single space, with the enhanced code (if any)
    /// stripped from each line's start; lines left empty are skipped. E.g. "user unknown".
    pub fn text(&self) -> String {
        let first_digit = self.code.severity as u8;
        let mut parts: Vec<&str> = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let mut text = line.as_str();
            if let Some(enhanced) = self.enhanced {
                if let Some((found, rest)) = split_enhanced(text, first_digit) {
                    if found == enhanced {
                        text = rest;
                    }
                }
            }
            if !text.is_empty() {
                parts.push(text);
            }
        }
        parts.join(" ")
    }

    /// "550 5.1.1 user unknown": code, enhanced code if present, text, on one line.
    pub fn summary(&self) -> String {
        let mut out = self.code.to_string();
        if let Some(enhanced) = self.enhanced {
            out.push(' ');
            out.push_str(&enhanced.to_string());
        }
        let text = self.text();
        if !text.is_empty() {
            out.push(' ');
            out.push_str(&text);
        }
        out
    }

    /// The lines as they appeared on the wire, without CRLF ("250-PIPELINING", "250 OK"),
    /// rebuilt from code + separator + text, for the transcript. A last line with no text
    /// is shown as the bare code ("250"); a reply without lines shows just its code.
    pub fn wire_lines(&self) -> Vec<String> {
        if self.lines.is_empty() {
            return vec![self.code.to_string()];
        }
        let last = self.lines.len() - 1;
        self.lines
            .iter()
            .enumerate()
            .map(|(i, text)| match (i == last, text.is_empty()) {
                (true, true) => self.code.to_string(),
                (true, false) => format!("{} {}", self.code, text),
                (false, _) => format!("{}-{}", self.code, text),
            })
            .collect()
    }
}

/// Why bytes from the server are not a reply. All variants are protocol errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// The offending line (lossy, at most 80 characters).
    Malformed(String),
    MismatchedCodes {
        first: u16,
        later: u16,
    },
    LineTooLong,
    TooManyLines,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Debug formatting quotes the line and escapes control characters, so a
            // hostile server cannot put terminal escapes into our error messages.
            ReplyError::Malformed(line) => write!(f, "malformed reply line {line:?}"),
            ReplyError::MismatchedCodes { first, later } => {
                write!(f, "reply lines disagree on the code ({first} then {later})")
            }
            ReplyError::LineTooLong => write!(f, "reply line longer than {MAX_LINE_LEN} bytes"),
            ReplyError::TooManyLines => write!(f, "reply has more than {MAX_LINES} lines"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Incremental parser: `Ok(None)` = need more bytes; `Ok(Some((reply, consumed)))` = one
/// complete reply occupying `buf[..consumed]` (bytes after it belong to the next reply).
/// Lines end in CRLF or a bare LF. Never panics on any input.
///
/// Each call starts from the beginning of `buf`; the work per call is bounded by
/// `MAX_LINES * MAX_LINE_LEN`, because every limit is checked before more is scanned.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0usize;
    let mut code: Option<Code> = None;
    let mut enhanced = None;
    let mut lines: Vec<String> = Vec::new();
    // Bounded: every pass either returns or pushes a line, and MAX_LINES lines return.
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        // Look for the newline only as far as a line may reach (content + CR + LF).
        let window = rest.get(..MAX_LINE_LEN + 2).unwrap_or(rest);
        let Some(newline) = window.iter().position(|&b| b == b'\n') else {
            // An unterminated tail: too long already, or wait for more bytes.
            let content = window.strip_suffix(b"\r").unwrap_or(window);
            return if content.len() > MAX_LINE_LEN {
                Err(ReplyError::LineTooLong)
            } else {
                Ok(None)
            };
        };
        let with_cr = window.get(..newline).unwrap_or_default();
        let raw = with_cr.strip_suffix(b"\r").unwrap_or(with_cr);
        if raw.len() > MAX_LINE_LEN {
            return Err(ReplyError::LineTooLong);
        }
        pos += newline + 1;

        let line = parse_line(raw)?;
        match code {
            None => {
                code = Some(line.code);
                enhanced = split_enhanced(&line.text, line.code.severity as u8).map(|(e, _)| e);
            }
            Some(first) if first != line.code => {
                return Err(ReplyError::MismatchedCodes {
                    first: first.as_u16(),
                    later: line.code.as_u16(),
                });
            }
            Some(_) => {}
        }
        lines.push(line.text);
        if line.last {
            let reply = Reply {
                code: line.code,
                enhanced,
                lines,
            };
            return Ok(Some((reply, pos)));
        }
        // This line promised another one, which would be line MAX_LINES + 1.
        if lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
    }
}

struct Line {
    code: Code,
    last: bool,
    text: String,
}

/// One line without its line ending: `DDD` then `-` (more follow), ` ` or nothing (last).
fn parse_line(raw: &[u8]) -> Result<Line, ReplyError> {
    let malformed = || {
        let lossy = String::from_utf8_lossy(raw);
        ReplyError::Malformed(lossy.chars().take(80).collect())
    };
    let [a, b, c, after @ ..] = raw else {
        return Err(malformed());
    };
    let code = Code::from_ascii([*a, *b, *c]).ok_or_else(malformed)?;
    let (last, text) = match after {
        [] => (true, after),
        [b' ', text @ ..] => (true, text),
        [b'-', text @ ..] => (false, text),
        _ => return Err(malformed()),
    };
    let text = String::from_utf8_lossy(text).trim_end().to_string();
    Ok(Line { code, last, text })
}

/// An enhanced status code at the start of `text` (`class.subject.detail`, class equal to
/// the reply's first digit and one of 2/4/5, 1–3 digit subject and detail), followed by a
/// space or the end; returns it and the text after it with leading spaces removed.
fn split_enhanced(text: &str, first_digit: u8) -> Option<(EnhancedCode, &str)> {
    let (token, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut parts = token.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let class: u8 = digits(class, 1)?.try_into().ok()?;
    if class != first_digit || !matches!(class, 2 | 4 | 5) {
        return None;
    }
    let enhanced = EnhancedCode {
        class,
        subject: digits(subject, 3)?,
        detail: digits(detail, 3)?,
    };
    Some((enhanced, rest.trim_start_matches(' ')))
}

/// 1..=max ASCII digits as a number (max ≤ 3, so it fits).
fn digits(s: &str, max: usize) -> Option<u16> {
    if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: u16) -> Code {
        Code::from_u16(n).unwrap()
    }

    fn reply(n: u16, enhanced: Option<(u8, u16, u16)>, lines: &[&str]) -> Reply {
        Reply {
            code: code(n),
            enhanced: enhanced.map(|(class, subject, detail)| EnhancedCode {
                class,
                subject,
                detail,
            }),
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    const EHLO: &[u8] = b"250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n";

    #[test]
    fn complete_replies() {
        let cases: &[(&str, &[u8], Reply)] = &[
            (
                "single line",
                b"220 mail.example.test ESMTP\r\n",
                reply(220, None, &["mail.example.test ESMTP"]),
            ),
            (
                "multiline EHLO",
                EHLO,
                reply(
                    250,
                    None,
                    &[
                        "mail.example.test",
                        "PIPELINING",
                        "SIZE 10240000",
                        "AUTH PLAIN LOGIN",
                        "ENHANCEDSTATUSCODES",
                        "8BITMIME",
                    ],
                ),
            ),
            ("bare code", b"250\r\n", reply(250, None, &[""])),
            ("code and space", b"250 \r\n", reply(250, None, &[""])),
            (
                "continuation of a space",
                b"250- \r\n250 x\r\n",
                reply(250, None, &["", "x"]),
            ),
            (
                "empty continuation",
                b"250-\r\n250 x\r\n",
                reply(250, None, &["", "x"]),
            ),
            (
                "bare LF",
                b"354 go ahead\n",
                reply(354, None, &["go ahead"]),
            ),
            (
                "mixed endings",
                b"250-a\n250 b\r\n",
                reply(250, None, &["a", "b"]),
            ),
            (
                "trailing whitespace trimmed",
                b"250 OK \t\r\n",
                reply(250, None, &["OK"]),
            ),
            (
                "CR inside a line is text",
                b"250 a\rb\r\n",
                reply(250, None, &["a\rb"]),
            ),
            (
                "enhanced code",
                b"550 5.1.1 user unknown\r\n",
                reply(550, Some((5, 1, 1)), &["5.1.1 user unknown"]),
            ),
            (
                "enhanced code alone",
                b"250 2.0.0\r\n",
                reply(250, Some((2, 0, 0)), &["2.0.0"]),
            ),
            (
                "enhanced code 3 digits",
                b"452 4.123.999 full\r\n",
                reply(452, Some((4, 123, 999)), &["4.123.999 full"]),
            ),
            (
                "enhanced class mismatch ignored",
                b"550 4.1.1 odd\r\n",
                reply(550, None, &["4.1.1 odd"]),
            ),
            (
                "no enhanced class 3",
                b"354 3.0.0 go\r\n",
                reply(354, None, &["3.0.0 go"]),
            ),
            (
                "enhanced needs a space after",
                b"250 2.0.0.ok\r\n",
                reply(250, None, &["2.0.0.ok"]),
            ),
            (
                "enhanced subject too long",
                b"250 2.1234.0 x\r\n",
                reply(250, None, &["2.1234.0 x"]),
            ),
            (
                "enhanced detail empty",
                b"250 2.1. x\r\n",
                reply(250, None, &["2.1. x"]),
            ),
            (
                "enhanced not numeric",
                b"250 2.a.0 x\r\n",
                reply(250, None, &["2.a.0 x"]),
            ),
            (
                "plain text",
                b"250 OK queued as 12345\r\n",
                reply(250, None, &["OK queued as 12345"]),
            ),
        ];
        for (name, input, expected) in cases {
            let got = parse(input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, Some((expected.clone(), input.len())), "{name}");
        }
    }

    #[test]
    fn non_utf8_text_is_lossy() {
        let input = b"250 caf\xe9 \xff\xfe ok\r\n";
        let (r, used) = parse(input).unwrap().unwrap();
        assert_eq!(used, input.len());
        assert_eq!(r.lines, vec!["caf\u{fffd} \u{fffd}\u{fffd} ok".to_string()]);
    }

    #[test]
    fn errors() {
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE_LEN));
        let cases: Vec<(&str, Vec<u8>, ReplyError)> = vec![
            (
                "hello",
                b"hello\r\n".to_vec(),
                ReplyError::Malformed("hello".into()),
            ),
            (
                "short",
                b"2\r\n".to_vec(),
                ReplyError::Malformed("2".into()),
            ),
            (
                "empty line",
                b"\r\n".to_vec(),
                ReplyError::Malformed(String::new()),
            ),
            (
                "first digit 6",
                b"600 x\r\n".to_vec(),
                ReplyError::Malformed("600 x".into()),
            ),
            (
                "first digit 1",
                b"100 x\r\n".to_vec(),
                ReplyError::Malformed("100 x".into()),
            ),
            (
                "second digit 6",
                b"260 x\r\n".to_vec(),
                ReplyError::Malformed("260 x".into()),
            ),
            (
                "letter",
                b"25x y\r\n".to_vec(),
                ReplyError::Malformed("25x y".into()),
            ),
            (
                "bad separator",
                b"250:x\r\n".to_vec(),
                ReplyError::Malformed("250:x".into()),
            ),
            (
                "four digits",
                b"2501 x\r\n".to_vec(),
                ReplyError::Malformed("2501 x".into()),
            ),
            (
                "tab separator",
                b"250\tx\r\n".to_vec(),
                ReplyError::Malformed("250\tx".into()),
            ),
            (
                "malformed after good lines",
                b"250-a\r\nxyz\r\n".to_vec(),
                ReplyError::Malformed("xyz".into()),
            ),
            (
                "mismatched codes",
                b"250-a\r\n550 b\r\n".to_vec(),
                ReplyError::MismatchedCodes {
                    first: 250,
                    later: 550,
                },
            ),
            (
                "mismatched later",
                b"250-a\r\n250-b\r\n251 c\r\n".to_vec(),
                ReplyError::MismatchedCodes {
                    first: 250,
                    later: 251,
                },
            ),
            (
                "line too long",
                long.clone().into_bytes(),
                ReplyError::LineTooLong,
            ),
            (
                "too long before its newline",
                long.as_bytes()[..MAX_LINE_LEN + 1].to_vec(),
                ReplyError::LineTooLong,
            ),
            (
                "garbage without newline, too long",
                vec![b'z'; MAX_LINE_LEN + 1],
                ReplyError::LineTooLong,
            ),
            (
                "too long continuation",
                format!("250-a\r\n250-{}\r\n250 b\r\n", "y".repeat(MAX_LINE_LEN)).into_bytes(),
                ReplyError::LineTooLong,
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(parse(&input), Err(expected), "{name}");
        }
    }

    #[test]
    fn malformed_line_is_truncated_to_80_chars() {
        let line = format!("xx{}\r\n", "é".repeat(200));
        match parse(line.as_bytes()) {
            Err(ReplyError::Malformed(shown)) => {
                assert_eq!(shown.chars().count(), 80);
                assert!(shown.starts_with("xxé"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn line_length_limit_is_exact() {
        // Content of exactly MAX_LINE_LEN bytes is fine, with CRLF or LF, and waiting for
        // the LF after a CR that completes a maximal line is not an error.
        let text = "x".repeat(MAX_LINE_LEN - 4);
        let line = format!("250 {text}\r\n");
        let (r, used) = parse(line.as_bytes()).unwrap().unwrap();
        assert_eq!((r.lines, used), (vec![text.clone()], line.len()));
        let bare = format!("250 {text}\n");
        assert!(parse(bare.as_bytes()).unwrap().is_some());
        assert_eq!(parse(&line.as_bytes()[..line.len() - 1]), Ok(None));
        assert_eq!(parse(&line.as_bytes()[..line.len() - 2]), Ok(None));
        let over = format!("250 {text}x\r\n");
        assert_eq!(parse(over.as_bytes()), Err(ReplyError::LineTooLong));
        assert_eq!(
            parse(&over.as_bytes()[..over.len() - 1]),
            Err(ReplyError::LineTooLong)
        );
    }

    fn many_lines(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let sep = if i + 1 == n { ' ' } else { '-' };
            out.extend_from_slice(format!("250{sep}line {i}\r\n").as_bytes());
        }
        out
    }

    #[test]
    fn line_count_limit() {
        let ok = many_lines(MAX_LINES);
        let (r, used) = parse(&ok).unwrap().unwrap();
        assert_eq!((r.lines.len(), used), (MAX_LINES, ok.len()));
        assert_eq!(
            parse(&many_lines(MAX_LINES + 1)),
            Err(ReplyError::TooManyLines)
        );
        // Known as soon as line MAX_LINES turns out to be a continuation line.
        let mut early = many_lines(MAX_LINES + 1);
        early.truncate(ok.len());
        assert_eq!(parse(&early), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn incomplete_input_needs_more() {
        let cases: &[&[u8]] = &[
            b"",
            b"2",
            b"250",
            b"250 OK",
            b"250 OK\r",
            b"250-a\r\n",
            b"250-a\r\n250 b",
        ];
        for input in cases {
            assert_eq!(
                parse(input),
                Ok(None),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn every_split_point_gives_none_then_the_same_reply() {
        let inputs: &[&[u8]] = &[
            EHLO,
            b"550-5.1.1 first\r\n550 5.1.1 second\r\n",
            b"250\r\n",
            b"250- \n250 x\n",
        ];
        for input in inputs {
            let whole = parse(input).unwrap().unwrap();
            assert_eq!(whole.1, input.len());
            for split in 0..input.len() {
                assert_eq!(parse(&input[..split]), Ok(None), "split at {split}");
                // Feeding the rest later: the connection appends and parses again.
                let mut buf = input[..split].to_vec();
                buf.extend_from_slice(&input[split..]);
                assert_eq!(parse(&buf).unwrap().as_ref(), Some(&whole));
            }
        }
    }

    #[test]
    fn two_replies_in_one_buffer() {
        let buf = b"250 first\r\n354 second\r\n";
        let (first, used) = parse(buf).unwrap().unwrap();
        assert_eq!((first, used), (reply(250, None, &["first"]), 11));
        let (second, used2) = parse(&buf[used..]).unwrap().unwrap();
        assert_eq!((second, used2), (reply(354, None, &["second"]), 12));
        // The next reply may be incomplete: still only the first is consumed.
        let partial = b"250-a\r\n250 b\r\n221 by";
        assert_eq!(parse(partial).unwrap().unwrap().1, 14);
    }

    #[test]
    fn text_summary_and_wire_lines() {
        struct Case {
            input: &'static [u8],
            text: &'static str,
            summary: &'static str,
            wire: &'static [&'static str],
        }
        let cases = [
            Case {
                input: b"550 5.1.1 user unknown\r\n",
                text: "user unknown",
                summary: "550 5.1.1 user unknown",
                wire: &["550 5.1.1 user unknown"],
            },
            Case {
                input: b"550-5.1.1 no such\r\n550 5.1.1  user here\r\n",
                text: "no such user here",
                summary: "550 5.1.1 no such user here",
                wire: &["550-5.1.1 no such", "550 5.1.1  user here"],
            },
            Case {
                // Only a matching enhanced code is stripped from later lines.
                input: b"451-4.3.0 a\r\n451 4.4.1 b\r\n",
                text: "a 4.4.1 b",
                summary: "451 4.3.0 a 4.4.1 b",
                wire: &["451-4.3.0 a", "451 4.4.1 b"],
            },
            Case {
                input: b"250-PIPELINING\r\n250 8BITMIME\r\n",
                text: "PIPELINING 8BITMIME",
                summary: "250 PIPELINING 8BITMIME",
                wire: &["250-PIPELINING", "250 8BITMIME"],
            },
            Case {
                input: b"250\r\n",
                text: "",
                summary: "250",
                wire: &["250"],
            },
            Case {
                input: b"250 \r\n",
                text: "",
                summary: "250",
                wire: &["250"],
            },
            Case {
                input: b"250- \r\n250 x\r\n",
                text: "x",
                summary: "250 x",
                wire: &["250-", "250 x"],
            },
            Case {
                input: b"250 2.0.0\r\n",
                text: "",
                summary: "250 2.0.0",
                wire: &["250 2.0.0"],
            },
            Case {
                input: b"550 4.1.1 class mismatch\r\n",
                text: "4.1.1 class mismatch",
                summary: "550 4.1.1 class mismatch",
                wire: &["550 4.1.1 class mismatch"],
            },
        ];
        for case in cases {
            let (r, _) = parse(case.input).unwrap().unwrap();
            assert_eq!(r.text(), case.text, "{:?}", r);
            assert_eq!(r.summary(), case.summary, "{:?}", r);
            assert_eq!(r.wire_lines(), case.wire, "{:?}", r);
        }
        let empty = Reply {
            code: code(221),
            enhanced: None,
            lines: vec![],
        };
        assert_eq!(
            (empty.text(), empty.summary(), empty.wire_lines()),
            (String::new(), "221".to_string(), vec!["221".to_string()])
        );
    }

    #[test]
    fn codes() {
        let cases = [
            (
                220,
                Severity::PositiveCompletion,
                Category::Connections,
                0,
                true,
            ),
            (
                250,
                Severity::PositiveCompletion,
                Category::MailSystem,
                0,
                true,
            ),
            (
                354,
                Severity::PositiveIntermediate,
                Category::MailSystem,
                4,
                false,
            ),
            (
                421,
                Severity::TransientNegative,
                Category::Connections,
                1,
                false,
            ),
            (500, Severity::PermanentNegative, Category::Syntax, 0, false),
            (
                214,
                Severity::PositiveCompletion,
                Category::Information,
                4,
                true,
            ),
            (
                239,
                Severity::PositiveCompletion,
                Category::Unspecified3,
                9,
                true,
            ),
            (
                541,
                Severity::PermanentNegative,
                Category::Unspecified4,
                1,
                false,
            ),
        ];
        for (n, severity, category, detail, positive) in cases {
            let c = code(n);
            assert_eq!(
                c,
                Code {
                    severity,
                    category,
                    detail
                },
                "{n}"
            );
            assert_eq!(
                (c.as_u16(), c.to_string(), c.is_positive()),
                (n, n.to_string(), positive)
            );
        }
        for bad in [0, 99, 199, 260, 600, 1000, 170] {
            assert_eq!(Code::from_u16(bad), None, "{bad}");
        }
        let describe: Vec<_> = [2, 3, 4, 5]
            .iter()
            .map(|&d| Severity::from_digit(d).unwrap().describe())
            .collect();
        assert_eq!(
            describe,
            [
                "positive completion",
                "positive intermediate",
                "transient negative completion",
                "permanent negative completion"
            ]
        );
        let e = EnhancedCode {
            class: 5,
            subject: 7,
            detail: 26,
        };
        assert_eq!(e.to_string(), "5.7.26");
    }

    #[test]
    fn error_messages() {
        let cases = [
            (
                ReplyError::Malformed("hello".into()),
                "malformed reply line \"hello\"",
            ),
            (
                ReplyError::Malformed("a\u{1b}[2J".into()),
                "malformed reply line \"a\\u{1b}[2J\"",
            ),
            (
                ReplyError::MismatchedCodes {
                    first: 250,
                    later: 550,
                },
                "reply lines disagree on the code (250 then 550)",
            ),
            (ReplyError::LineTooLong, "reply line longer than 2048 bytes"),
            (ReplyError::TooManyLines, "reply has more than 512 lines"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    /// Deterministic pseudo-random inputs, biased towards reply-like bytes so the parser
    /// gets past the code check; it must never panic and must report sane lengths.
    #[test]
    fn pseudo_random_input_never_panics() {
        let mut state: u64 = 0x5eed_1234_abcd_0042;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        const ALPHABET: &[u8] = b"0123456789 -\r\n\r\n.25AZaz\xff\xc3\x00";
        let mut complete = 0;
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut input: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        (r >> 8) as u8
                    } else {
                        ALPHABET[(r as usize >> 8) % ALPHABET.len()]
                    }
                })
                .collect();
            // Often start with a valid-looking code.
            if next() % 2 == 0 {
                input.splice(0..0, b"250".iter().copied());
            }
            if let Ok(Some((reply, used))) = parse(&input) {
                complete += 1;
                assert!(used > 0 && used <= input.len());
                assert!(!reply.lines.is_empty());
                let _ = (reply.text(), reply.summary(), reply.wire_lines());
            }
        }
        // The generator does reach complete replies, so the test exercises that path.
        assert!(complete > 100, "only {complete} complete replies");
    }
}
