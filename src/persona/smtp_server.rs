//! `sendmail -bs`: postie as a local SMTP server on stdin/stdout (RFC 5321 §3.3 mail
//! transactions, §4.1.1 commands, §4.1.2 path syntax, §4.1.4 command order, §4.2 and
//! §4.2.4 replies, §4.5.2 transparency, §4.5.3.1 size limits; RFC 2034/3463 enhanced
//! status codes; RFC 1870 SIZE; RFC 2920 PIPELINING; RFC 6152 8BITMIME).
//!
//! This module owns the server half of the dialogue and nothing else: [`serve`] greets,
//! reads commands in order (so pipelined input simply works), answers each one, collects
//! each message's envelope and dot-unstuffed data, and hands every complete message to the
//! caller's `deliver` callback, whose [`Verdict`] becomes the reply to the end of data. It
//! does no routing, no address rewriting (bare local names such as `<root>` are accepted
//! and passed through for the caller's alias handling) and no real I/O of its own: it is
//! generic over `BufRead`/`Write`, so tests drive it from memory.
//!
//! Everything the client sends is untrusted. Lines are read through a bounded reader
//! (`Limits::max_line`; longer lines are discarded to their end and answered `500 5.5.2`),
//! message data stops being stored past `Limits::max_message` (the rest is read and
//! dropped, then answered `552 5.3.4`), recipients and commands are counted, and nothing
//! here can panic on input. Text from the caller (host name, verdict) is reduced to one
//! line before it is written, so it cannot inject a reply line.

use std::io::{self, BufRead, Write};

use crate::address::{is_address_literal, is_domain, is_dot_string, quoted_end};

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The MAIL FROM path without angle brackets or source route; "" for the null path `<>`.
    pub reverse_path: String,
    /// The accepted RCPT TO paths in order, without brackets; may be bare local names.
    pub forward_paths: Vec<String>,
    /// Dot-unstuffed data, every line ending in CRLF, without the final ".\r\n".
    pub data: Vec<u8>,
}

/// What submitting a message did (the caller maps postie's outcome to this). The text is
/// shown to the client after `250 2.0.0`, `451 4.0.0` or `554 5.0.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted(String),
    TempFail(String),
    PermFail(String),
}

/// Bounds on what one session may make the server hold or do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest command or text line in bytes, without its line ending (RFC 5321
    /// §4.5.3.1.4/§4.5.3.1.6 give 512 and 1000; real clients need some slack).
    pub max_line: usize,
    /// Largest message in bytes (dot-unstuffed, CRLF line endings); advertised as SIZE.
    pub max_message: usize,
    /// Most recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100).
    pub max_recipients: usize,
    /// Most command lines per session; then `421` and the session ends.
    pub max_commands: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line: 4096,
            max_message: 64 * 1024 * 1024,
            max_recipients: 1000,
            max_commands: 10_000,
        }
    }
}

/// Longest reply text taken from the caller (host name, verdict), so that every reply line
/// stays within RFC 5321 §4.5.3.1.5's 512 octets.
const MAX_TEXT: usize = 400;

/// What HELP lists.
const HELP_TEXT: &str = "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT";

/// Commands that exist in SMTP or its extensions but that this server does not offer.
const NOT_IMPLEMENTED: &[&str] = &[
    "EXPN", "TURN", "ETRN", "ATRN", "STARTTLS", "AUTH", "BDAT", "SEND", "SOML", "SAML",
];

/// Serve one session until QUIT or EOF. Greeting "220 HOST ESMTP postie" first.
///
/// Returns `Ok(())` after QUIT, at end of input (also in the middle of a command or of
/// message data: nothing is delivered then), and after the `421` that ends a session
/// exceeding `limits.max_commands`. I/O errors on either side are returned as they are.
/// `deliver` is called once per complete message that was within the limits.
pub fn serve<R: BufRead, W: Write>(
    mut input: R,
    mut output: W,
    host: &str,
    limits: &Limits,
    deliver: &mut dyn FnMut(Incoming) -> Verdict,
) -> io::Result<()> {
    let host = match one_line(host) {
        h if h.trim().is_empty() => "localhost".to_string(),
        h => h.trim().to_string(),
    };
    send(
        &mut output,
        &Reply::plain(220, vec![format!("{host} ESMTP postie")]),
    )?;

    let mut transaction: Option<Transaction> = None;
    let mut line = Vec::new();
    let mut commands = 0usize;
    loop {
        let read = read_line(&mut input, limits.max_line, &mut line)?;
        if read == Line::Eof {
            return Ok(());
        }
        commands = commands.saturating_add(1);
        if commands > limits.max_commands {
            let text = format!("{host} Error: too many commands, closing transmission channel");
            return send(&mut output, &Reply::status(421, "4.7.0", text));
        }
        if read == Line::TooLong {
            let text = format!("Error: line longer than {} bytes", limits.max_line);
            send(&mut output, &Reply::status(500, "5.5.2", text))?;
            continue;
        }
        let command = match std::str::from_utf8(&line) {
            Ok(text) => parse_command(text),
            Err(_) => Err(Reply::status(
                500,
                "5.5.2",
                "Error: command is not valid UTF-8",
            )),
        };
        let command = match command {
            Ok(command) => command,
            Err(reply) => {
                send(&mut output, &reply)?;
                continue;
            }
        };
        let reply = match command {
            Command::Ehlo => {
                // RFC 5321 §4.1.4: EHLO/HELO also reset any transaction in progress.
                transaction = None;
                Reply::plain(
                    250,
                    vec![
                        host.clone(),
                        "8BITMIME".to_string(),
                        "PIPELINING".to_string(),
                        "ENHANCEDSTATUSCODES".to_string(),
                        format!("SIZE {}", limits.max_message),
                    ],
                )
            }
            Command::Helo => {
                transaction = None;
                Reply::plain(250, vec![host.clone()])
            }
            Command::Mail { reverse_path, size } => {
                if transaction.is_some() {
                    Reply::status(503, "5.5.1", "Error: nested MAIL command")
                } else if size.is_some_and(|size| size > limits.max_message as u64) {
                    Reply::status(552, "5.3.4", too_big(limits))
                } else {
                    transaction = Some(Transaction {
                        reverse_path,
                        forward_paths: Vec::new(),
                    });
                    Reply::status(250, "2.1.0", "Ok")
                }
            }
            Command::Rcpt(forward_path) => match transaction.as_mut() {
                None => Reply::status(503, "5.5.1", "Error: need MAIL command"),
                Some(t) if t.forward_paths.len() >= limits.max_recipients => {
                    Reply::status(452, "4.5.3", "Error: too many recipients")
                }
                Some(t) => {
                    t.forward_paths.push(forward_path);
                    Reply::status(250, "2.1.5", "Ok")
                }
            },
            Command::Data => match transaction.take() {
                None => Reply::status(503, "5.5.1", "Error: need MAIL command"),
                Some(t) if t.forward_paths.is_empty() => {
                    transaction = Some(t);
                    Reply::status(503, "5.5.1", "Error: need RCPT command")
                }
                Some(t) => {
                    let go_ahead = "End data with <CR><LF>.<CR><LF>";
                    send(&mut output, &Reply::plain(354, vec![go_ahead.to_string()]))?;
                    match read_data(&mut input, limits, &mut line)? {
                        Data::Eof => return Ok(()),
                        Data::TooBig => Reply::status(552, "5.3.4", too_big(limits)),
                        Data::LineTooLong => {
                            let text = format!(
                                "Error: message has a line longer than {} bytes",
                                limits.max_line
                            );
                            Reply::status(554, "5.6.0", text)
                        }
                        Data::Complete(data) => verdict_reply(deliver(Incoming {
                            reverse_path: t.reverse_path,
                            forward_paths: t.forward_paths,
                            data,
                        })),
                    }
                }
            },
            Command::Rset => {
                transaction = None;
                Reply::status(250, "2.0.0", "Ok")
            }
            Command::Noop => Reply::status(250, "2.0.0", "Ok"),
            Command::Vrfy => Reply::status(
                252,
                "2.0.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::Help => Reply::status(214, "2.0.0", HELP_TEXT),
            Command::Quit => {
                let text = format!("{host} closing connection");
                return send(&mut output, &Reply::status(221, "2.0.0", text));
            }
        };
        send(&mut output, &reply)?;
    }
}

/// The envelope of the transaction in progress (between MAIL and the end of data).
#[derive(Debug)]
struct Transaction {
    reverse_path: String,
    forward_paths: Vec<String>,
}

fn too_big(limits: &Limits) -> String {
    format!(
        "Error: message size exceeds fixed maximum message size of {} bytes",
        limits.max_message
    )
}

fn verdict_reply(verdict: Verdict) -> Reply {
    let (code, status, text, fallback) = match verdict {
        Verdict::Accepted(text) => (250, "2.0.0", text, "Ok: message accepted"),
        Verdict::TempFail(text) => (451, "4.0.0", text, "Error: try again later"),
        Verdict::PermFail(text) => (554, "5.0.0", text, "Error: message refused"),
    };
    let text = one_line(&text);
    let text = if text.trim().is_empty() {
        fallback.to_string()
    } else {
        text
    };
    Reply::status(code, status, text)
}

// ---------------------------------------------------------------------------------------
// Replies

/// One reply: a code, the RFC 3463 status that prefixes each line's text (none on the
/// greeting, on EHLO/HELO replies (RFC 2034 §3) and on 354, which has no class), and the
/// text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    code: u16,
    status: Option<&'static str>,
    lines: Vec<String>,
}

impl Reply {
    fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines,
        }
    }

    fn status(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// "250-a\r\n250 b\r\n" (RFC 5321 §4.2: "-" on every line but the last).
    fn to_wire(&self) -> Vec<u8> {
        let mut wire = Vec::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, text) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let line = match self.status {
                Some(status) => format!("{}{sep}{status} {text}\r\n", self.code),
                None => format!("{}{sep}{text}\r\n", self.code),
            };
            wire.extend_from_slice(line.as_bytes());
        }
        if self.lines.is_empty() {
            wire.extend_from_slice(format!("{}\r\n", self.code).as_bytes());
        }
        wire
    }
}

/// Writes one whole reply and flushes it, so a client waiting for it is never stuck
/// behind our buffer (simple and correct with PIPELINING, RFC 2920 §3.2 item 7).
fn send<W: Write>(output: &mut W, reply: &Reply) -> io::Result<()> {
    output.write_all(&reply.to_wire())?;
    output.flush()
}

/// Caller-supplied text as one reply line: control characters (CR, LF, ...) become
/// spaces and the length is cut to [`MAX_TEXT`] bytes on a character boundary.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_TEXT {
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Reading lines

/// How [`read_line`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// A whole line is in the buffer, without its line ending.
    Complete,
    /// The line was longer than allowed; it was read to its end and dropped.
    TooLong,
    /// The input ended before a line ending (any partial line is dropped).
    Eof,
}

/// Reads one line into `buf` (cleared first) without its LF and the CR before it, holding
/// at most `max + 1` bytes however long the line is. A bare LF ends a line too, for
/// sloppy clients; a CR elsewhere is kept as data.
fn read_line<R: BufRead>(input: &mut R, max: usize, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            buf.clear();
            return Ok(Line::Eof);
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = match newline {
            Some(end) => available.get(..end).unwrap_or_default(),
            None => available,
        };
        // Room for the line plus one CR that may precede the LF.
        if !too_long && buf.len().saturating_add(chunk.len()) > max.saturating_add(1) {
            too_long = true;
            buf.clear();
        }
        if !too_long {
            buf.extend_from_slice(chunk);
        }
        let used = chunk.len() + usize::from(newline.is_some());
        input.consume(used);
        if newline.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            if too_long || buf.len() > max {
                buf.clear();
                return Ok(Line::TooLong);
            }
            return Ok(Line::Complete);
        }
    }
}

/// How the data phase ended.
#[derive(Debug, PartialEq, Eq)]
enum Data {
    Complete(Vec<u8>),
    /// More than `max_message` bytes; read to the end and dropped.
    TooBig,
    /// A line longer than `max_line`; read to the end and dropped.
    LineTooLong,
    /// The input ended before the end-of-data line.
    Eof,
}

/// Reads message data after 354 up to the line "." (RFC 5321 §4.1.1.4), removing the
/// leading dot that transparency added (§4.5.2) and ending every line in CRLF.
fn read_data<R: BufRead>(input: &mut R, limits: &Limits, line: &mut Vec<u8>) -> io::Result<Data> {
    let mut data = Vec::new();
    let mut too_big = false;
    let mut line_too_long = false;
    loop {
        match read_line(input, limits.max_line, line)? {
            Line::Eof => return Ok(Data::Eof),
            Line::TooLong => {
                line_too_long = true;
                data = Vec::new();
                continue;
            }
            Line::Complete => {}
        }
        if line.as_slice() == b"." {
            break;
        }
        if too_big || line_too_long {
            continue;
        }
        let text = line.strip_prefix(b".").unwrap_or(line.as_slice());
        if data.len() + text.len() + 2 > limits.max_message {
            too_big = true;
            data = Vec::new();
            continue;
        }
        data.extend_from_slice(text);
        data.extend_from_slice(b"\r\n");
    }
    Ok(if too_big {
        Data::TooBig
    } else if line_too_long {
        Data::LineTooLong
    } else {
        Data::Complete(data)
    })
}

// ---------------------------------------------------------------------------------------
// Commands

/// One command as the server understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Ehlo,
    Helo,
    /// `reverse_path` is "" for `<>`; `size` is the SIZE parameter (RFC 1870), saturated.
    Mail {
        reverse_path: String,
        size: Option<u64>,
    },
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Vrfy,
    Help,
    Quit,
}

/// Parses one command line (no line ending). The verb and the FROM:/TO: keywords are
/// case-insensitive (RFC 5321 §2.4). Errors are the reply to send.
fn parse_command(line: &str) -> Result<Command, Reply> {
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, args) = line.split_once(' ').unwrap_or((line, ""));
    let verb = verb.to_ascii_uppercase();
    let args = args.trim_start_matches(' ');
    match verb.as_str() {
        "EHLO" | "HELO" => {
            if args.is_empty() {
                return Err(syntax(&format!("{verb} hostname")));
            }
            Ok(if verb == "EHLO" {
                Command::Ehlo
            } else {
                Command::Helo
            })
        }
        "MAIL" => {
            let path = keyword_arg(args, "FROM:").ok_or_else(|| syntax("MAIL FROM:<address>"))?;
            let (path, params) =
                split_path(path).ok_or_else(|| bad_path("5.1.7", "sender address"))?;
            let reverse_path = if path.is_empty() {
                String::new()
            } else {
                mailbox(path).ok_or_else(|| bad_path("5.1.7", "sender address"))?
            };
            let size = mail_size(params)?;
            Ok(Command::Mail { reverse_path, size })
        }
        "RCPT" => {
            let path = keyword_arg(args, "TO:").ok_or_else(|| syntax("RCPT TO:<address>"))?;
            let (path, params) =
                split_path(path).ok_or_else(|| bad_path("5.1.3", "recipient address"))?;
            let forward_path =
                mailbox(path).ok_or_else(|| bad_path("5.1.3", "recipient address"))?;
            // RCPT parameters (NOTIFY, ORCPT, ...) are checked for syntax, then ignored.
            parameters(params)?;
            Ok(Command::Rcpt(forward_path))
        }
        "DATA" if args.is_empty() => Ok(Command::Data),
        "DATA" => Err(syntax("DATA")),
        "RSET" => Ok(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "VRFY" if args.is_empty() => Err(syntax("VRFY address")),
        "VRFY" => Ok(Command::Vrfy),
        "HELP" => Ok(Command::Help),
        "QUIT" => Ok(Command::Quit),
        v if NOT_IMPLEMENTED.contains(&v) => Err(Reply::status(
            502,
            "5.5.1",
            "Error: command not implemented",
        )),
        _ => Err(Reply::status(500, "5.5.1", "Error: command not recognized")),
    }
}

fn syntax(usage: &str) -> Reply {
    Reply::status(501, "5.5.4", format!("Syntax: {usage}"))
}

fn bad_path(status: &'static str, what: &str) -> Reply {
    Reply::status(501, status, format!("Error: bad {what} syntax"))
}

/// The text after "FROM:" or "TO:" (matched case-insensitively; spaces after the colon
/// are tolerated, as most servers do).
fn keyword_arg<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    Some(args.get(keyword.len()..)?.trim_start_matches(' '))
}

/// Splits "<path> params" into the path without brackets and the parameter text. A path
/// without brackets (a lenient form many servers take) ends at the first space. A '>'
/// or space inside a quoted local part does not end the path.
fn split_path(arg: &str) -> Option<(&str, &str)> {
    let (path, rest) = match arg.strip_prefix('<') {
        Some(inner) => {
            let end = path_end(inner, '>')?;
            let rest = inner.get(end + 1..)?;
            (inner.get(..end)?, rest)
        }
        None => {
            let end = path_end(arg, ' ').unwrap_or(arg.len());
            let path = arg.get(..end)?;
            if path.is_empty() || path.contains(['<', '>']) {
                return None;
            }
            (path, arg.get(end..)?)
        }
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((path, rest.trim_start_matches(' ')))
}

/// Byte index of the first `stop` outside a quoted string.
fn path_end(text: &str, stop: char) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == stop && !quoted {
            return Some(i);
        }
    }
    None
}

/// Checks a path's content (RFC 5321 §4.1.2) and returns the mailbox to use: the source
/// route, if any, is dropped (§3.6.1, Appendix C: servers ignore it). Besides
/// `local@domain` a bare dot-string local name (`root`, `Postmaster`) is accepted: the
/// caller qualifies or aliases it, as for recipients on the sendmail command line.
/// Non-ASCII UTF-8 is allowed where RFC 6531 allows it; the outgoing session decides
/// about SMTPUTF8 from the envelope.
fn mailbox(path: &str) -> Option<String> {
    let mailbox = match path.strip_prefix('@') {
        Some(_) => {
            let (route, mailbox) = path.split_once(':')?;
            for hop in route.split(',') {
                if !is_domain(hop.strip_prefix('@')?) {
                    return None;
                }
            }
            mailbox
        }
        None => path,
    };
    let (local, domain) = match mailbox.strip_prefix('"') {
        Some(quoted) => {
            let close = quoted_end(quoted)?;
            let local = mailbox.get(..close + 2)?;
            let domain = mailbox.get(close + 2..)?.strip_prefix('@')?;
            (local, Some(domain))
        }
        None => match mailbox.split_once('@') {
            Some((local, domain)) => (local, Some(domain)),
            None => (mailbox, None),
        },
    };
    let local_ok = local.starts_with('"') || is_dot_string(local);
    let domain_ok = domain.is_none_or(|d| is_domain(d) || is_address_literal(d));
    (local_ok && domain_ok).then(|| mailbox.to_string())
}

/// Checks the syntax of MAIL parameters and returns SIZE (RFC 1870 §6), saturated to
/// `u64::MAX` when it has too many digits. Other parameters (BODY, RET, ENVID, ...) are
/// accepted and ignored.
fn mail_size(params: &str) -> Result<Option<u64>, Reply> {
    let mut size = None;
    for (keyword, value) in parameters(params)? {
        if keyword.eq_ignore_ascii_case("SIZE") {
            let digits = value.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
            let digits = digits.ok_or_else(|| syntax("MAIL FROM:<address> SIZE=number"))?;
            size = Some(digits.parse::<u64>().unwrap_or(u64::MAX));
        }
    }
    Ok(size)
}

/// esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 §4.1.2), split on spaces.
fn parameters(params: &str) -> Result<Vec<(&str, Option<&str>)>, Reply> {
    let mut out = Vec::new();
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (keyword, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        let keyword_ok = keyword.starts_with(|c: char| c.is_ascii_alphanumeric())
            && keyword
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        let value_ok = value
            .is_none_or(|v| !v.is_empty() && v.bytes().all(|b| matches!(b, 33..=60 | 62..=126)));
        if !keyword_ok || !value_ok {
            return Err(Reply::status(501, "5.5.4", "Error: bad parameter syntax"));
        }
        out.push((keyword, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    const GREETING: &str = "220 mx.test ESMTP postie";
    const EHLO: [&str; 5] = [
        "250-mx.test",
        "250-8BITMIME",
        "250-PIPELINING",
        "250-ENHANCEDSTATUSCODES",
        "250 SIZE 67108864",
    ];

    /// Runs a session over `input`; `deliver` records each message and answers with the
    /// next verdict from `verdicts` (then `Accepted("queued")`).
    fn session(input: &[u8], limits: Limits, verdicts: &[Verdict]) -> (Vec<String>, Vec<Incoming>) {
        let mut output = Vec::new();
        let mut delivered = Vec::new();
        let mut verdicts = verdicts.iter().cloned();
        let mut deliver = |incoming: Incoming| {
            delivered.push(incoming);
            verdicts
                .next()
                .unwrap_or_else(|| Verdict::Accepted("queued".into()))
        };
        serve(
            Cursor::new(input),
            &mut output,
            "mx.test",
            &limits,
            &mut deliver,
        )
        .unwrap();
        let text = String::from_utf8(output).unwrap();
        assert!(text.ends_with("\r\n") || text.is_empty(), "{text:?}");
        let lines = text.split_terminator("\r\n").map(str::to_string).collect();
        (lines, delivered)
    }

    fn msg(from: &str, to: &[&str], data: &str) -> Incoming {
        Incoming {
            reverse_path: from.to_string(),
            forward_paths: to.iter().map(|s| s.to_string()).collect(),
            data: data.as_bytes().to_vec(),
        }
    }

    fn ehlo_then(rest: &[&str]) -> Vec<String> {
        let mut lines = vec![GREETING.to_string()];
        lines.extend(EHLO.iter().map(|s| s.to_string()));
        lines.extend(rest.iter().map(|s| s.to_string()));
        lines
    }

    fn small(max_message: usize, max_line: usize) -> Limits {
        Limits {
            max_message,
            max_line,
            ..Limits::default()
        }
    }

    struct Case {
        name: &'static str,
        input: &'static str,
        limits: Limits,
        verdicts: Vec<Verdict>,
        /// Replies after the greeting and the EHLO reply (the input starts with EHLO).
        replies: Vec<&'static str>,
        delivered: Vec<Incoming>,
    }

    fn case(
        name: &'static str,
        input: &'static str,
        replies: &[&'static str],
        delivered: Vec<Incoming>,
    ) -> Case {
        Case {
            name,
            input,
            limits: Limits::default(),
            verdicts: Vec::new(),
            replies: replies.to_vec(),
            delivered,
        }
    }

    #[test]
    fn scripted_sessions() {
        let ok_tx = [
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
        ];
        let cases = vec![
            case(
                "simple transaction",
                "EHLO client\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n",
                &[ok_tx[0], ok_tx[1], ok_tx[2], "250 2.0.0 queued", "221 2.0.0 mx.test closing connection"],
                vec![msg("a@x.test", &["b@y.test"], "Subject: hi\r\n\r\nbody\r\n")],
            ),
            case(
                "dot-stuffed lines are restored",
                "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n..\r\n...x\r\n.y\r\nz.\r\n.\r\nQUIT\r\n",
                &[ok_tx[0], ok_tx[1], ok_tx[2], "250 2.0.0 queued", "221 2.0.0 mx.test closing connection"],
                vec![msg("a@x.test", &["b@y.test"], ".\r\n..x\r\ny\r\nz.\r\n")],
            ),
            case(
                "two transactions, several recipients",
                "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\none\r\n.\r\n\
                 MAIL FROM:<d@x.test>\r\nRCPT TO:<e@y.test>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n",
                &[ok_tx[0], ok_tx[1], "250 2.1.5 Ok", ok_tx[2], "250 2.0.0 queued",
                  ok_tx[0], ok_tx[1], ok_tx[2], "250 2.0.0 queued", "221 2.0.0 mx.test closing connection"],
                vec![
                    msg("a@x.test", &["b@y.test", "c@y.test"], "one\r\n"),
                    msg("d@x.test", &["e@y.test"], "two\r\n"),
                ],
            ),
            case(
                "RSET drops the transaction",
                "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRSET\r\nDATA\r\nMAIL FROM:<c@x.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\nm\r\n.\r\n",
                &[ok_tx[0], ok_tx[1], "250 2.0.0 Ok", "503 5.5.1 Error: need MAIL command", ok_tx[0], ok_tx[1], ok_tx[2], "250 2.0.0 queued"],
                vec![msg("c@x.test", &["d@y.test"], "m\r\n")],
            ),
            case(
                "EHLO drops the transaction too",
                "EHLO c\r\nMAIL FROM:<a@x.test>\r\nEHLO c\r\nRCPT TO:<b@y.test>\r\n",
                &[ok_tx[0], EHLO[0], EHLO[1], EHLO[2], EHLO[3], EHLO[4], "503 5.5.1 Error: need MAIL command"],
                vec![],
            ),
            case(
                "bad sequence",
                "EHLO c\r\nRCPT TO:<b@y.test>\r\nDATA\r\nMAIL FROM:<a@x.test>\r\nDATA\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n.\r\n",
                &[
                    "503 5.5.1 Error: need MAIL command",
                    "503 5.5.1 Error: need MAIL command",
                    ok_tx[0],
                    "503 5.5.1 Error: need RCPT command",
                    "503 5.5.1 Error: nested MAIL command",
                    ok_tx[1],
                    ok_tx[2],
                    "250 2.0.0 queued",
                ],
                vec![msg("a@x.test", &["b@y.test"], "")],
            ),
            case(
                "null sender, bare LF, lower case, lenient spacing, source route, local name",
                "EHLO c\nmail from: <> BODY=8BITMIME\nrcpt to:<@relay.test,@b.test:u@y.test> NOTIFY=NEVER\nRcPt To:root\ndata\nline\n..dot\n.\nquit\n",
                &[ok_tx[0], ok_tx[1], "250 2.1.5 Ok", ok_tx[2], "250 2.0.0 queued", "221 2.0.0 mx.test closing connection"],
                vec![msg("", &["u@y.test", "root"], "line\r\n.dot\r\n")],
            ),
            case(
                "pipelined commands in one buffer are answered in order",
                "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<bad address@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\nhello\r\n.\r\nNOOP\r\nQUIT\r\nNOOP\r\n",
                &[ok_tx[0], ok_tx[1], "501 5.1.3 Error: bad recipient address syntax", "250 2.1.5 Ok", ok_tx[2],
                  "250 2.0.0 queued", "250 2.0.0 Ok", "221 2.0.0 mx.test closing connection"],
                vec![msg("a@x.test", &["b@y.test", "c@y.test"], "hello\r\n")],
            ),
            case(
                "EOF in the middle of data delivers nothing",
                "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\npartial\r\n",
                &[ok_tx[0], ok_tx[1], ok_tx[2]],
                vec![],
            ),
            case(
                "EOF without QUIT, and a partial last command is dropped",
                "EHLO c\r\nNOOP\r\nQUI",
                &["250 2.0.0 Ok"],
                vec![],
            ),
            case(
                "other commands",
                "EHLO c\r\nHELO c\r\nVRFY root\r\nVRFY\r\nHELP\r\nNOOP anything\r\nEXPN list\r\nSTARTTLS\r\nFOO\r\n\r\nEHLO\r\nDATA x\r\n",
                &[
                    "250 mx.test",
                    "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
                    "501 5.5.4 Syntax: VRFY address",
                    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
                    "250 2.0.0 Ok",
                    "502 5.5.1 Error: command not implemented",
                    "502 5.5.1 Error: command not implemented",
                    "500 5.5.1 Error: command not recognized",
                    "500 5.5.1 Error: command not recognized",
                    "501 5.5.4 Syntax: EHLO hostname",
                    "501 5.5.4 Syntax: DATA",
                ],
                vec![],
            ),
            case(
                "syntax errors in paths and parameters",
                "EHLO c\r\nMAIL FROM:<a@x.test\r\nMAIL FROM <a@x.test>\r\nMAIL FROM:<a@@x.test>\r\nMAIL FROM:<a@x.test>junk\r\n\
                 MAIL FROM:<a@x.test> SIZE=ten\r\nMAIL FROM:<a@x.test> =x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<>\r\nRCPT TO:<b@-y.test>\r\n\
                 RCPT TO:<\"b c\"@y.test>\r\n",
                &[
                    "501 5.1.7 Error: bad sender address syntax",
                    "501 5.5.4 Syntax: MAIL FROM:<address>",
                    "501 5.1.7 Error: bad sender address syntax",
                    "501 5.1.7 Error: bad sender address syntax",
                    "501 5.5.4 Syntax: MAIL FROM:<address> SIZE=number",
                    "501 5.5.4 Error: bad parameter syntax",
                    ok_tx[0],
                    "501 5.1.3 Error: bad recipient address syntax",
                    "501 5.1.3 Error: bad recipient address syntax",
                    ok_tx[1],
                ],
                vec![],
            ),
            Case {
                verdicts: vec![
                    Verdict::TempFail("server busy".into()),
                    Verdict::PermFail("recipient refused\r\n250 fake".into()),
                    Verdict::Accepted(String::new()),
                ],
                ..case(
                    "verdicts become 451, 554 and 250; their text stays on one line",
                    "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n1\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n2\r\n.\r\n\
                     MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n3\r\n.\r\n",
                    &[
                        ok_tx[0], ok_tx[1], ok_tx[2], "451 4.0.0 server busy",
                        ok_tx[0], ok_tx[1], ok_tx[2], "554 5.0.0 recipient refused  250 fake",
                        ok_tx[0], ok_tx[1], ok_tx[2], "250 2.0.0 Ok: message accepted",
                    ],
                    vec![
                        msg("a@x.test", &["b@y.test"], "1\r\n"),
                        msg("a@x.test", &["b@y.test"], "2\r\n"),
                        msg("a@x.test", &["b@y.test"], "3\r\n"),
                    ],
                )
            },
            Case {
                limits: small(64 * 1024 * 1024, 10),
                ..case(
                    "a long command line is refused and the session goes on",
                    "EHLO c\r\nNOOP 123456789\r\nNOOP 12345\r\nNOOP 123456\r\nNOOP 12345\n",
                    &["500 5.5.2 Error: line longer than 10 bytes", "250 2.0.0 Ok", "500 5.5.2 Error: line longer than 10 bytes", "250 2.0.0 Ok"],
                    vec![],
                )
            },
            Case {
                limits: small(64 * 1024 * 1024, 16),
                ..case(
                    "a long data line refuses the message, the next one goes through",
                    "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nshort\r\n0123456789abcdefg\r\nmore\r\n.\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n0123456789abcdef\r\n.\r\n",
                    &[ok_tx[0], ok_tx[1], ok_tx[2], "554 5.6.0 Error: message has a line longer than 16 bytes",
                      ok_tx[0], ok_tx[1], ok_tx[2], "250 2.0.0 queued"],
                    vec![msg("a@x", &["b@y"], "0123456789abcdef\r\n")],
                )
            },
            Case {
                limits: small(10, 4096),
                ..case(
                    "oversize message: read to the end, 552, not delivered; exactly at the limit is fine",
                    "EHLO c\r\nMAIL FROM:<a@x> SIZE=11\r\nMAIL FROM:<a@x> SIZE=99999999999999999999999\r\nMAIL FROM:<a@x> SIZE=10\r\nRCPT TO:<b@y>\r\nDATA\r\n123456\r\n12\r\n.\r\n\
                     MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n12345\r\n..\r\n.\r\nNOOP\r\n",
                    &[
                        "552 5.3.4 Error: message size exceeds fixed maximum message size of 10 bytes",
                        "552 5.3.4 Error: message size exceeds fixed maximum message size of 10 bytes",
                        ok_tx[0], ok_tx[1], ok_tx[2],
                        "552 5.3.4 Error: message size exceeds fixed maximum message size of 10 bytes",
                        ok_tx[0], ok_tx[1], ok_tx[2], "250 2.0.0 queued", "250 2.0.0 Ok",
                    ],
                    vec![msg("a@x", &["b@y"], "12345\r\n.\r\n")],
                )
            },
            Case {
                limits: Limits { max_recipients: 2, ..Limits::default() },
                ..case(
                    "too many recipients: 452, the accepted ones are kept",
                    "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nRCPT TO:<d@y>\r\nDATA\r\nm\r\n.\r\n",
                    &[ok_tx[0], ok_tx[1], "250 2.1.5 Ok", "452 4.5.3 Error: too many recipients", ok_tx[2], "250 2.0.0 queued"],
                    vec![msg("a@x", &["b@y", "c@y"], "m\r\n")],
                )
            },
            Case {
                limits: Limits { max_commands: 3, ..Limits::default() },
                ..case(
                    "too many commands: 421 and the session ends",
                    "EHLO c\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n",
                    &["250 2.0.0 Ok", "250 2.0.0 Ok", "421 4.7.0 mx.test Error: too many commands, closing transmission channel"],
                    vec![],
                )
            },
        ];
        for c in cases {
            let (lines, delivered) = session(c.input.as_bytes(), c.limits, &c.verdicts);
            let mut expected = if c.limits.max_message == Limits::default().max_message {
                ehlo_then(&[])
            } else {
                let mut e = vec![GREETING.to_string()];
                e.extend(EHLO.iter().take(4).map(|s| s.to_string()));
                e.push(format!("250 SIZE {}", c.limits.max_message));
                e
            };
            expected.extend(c.replies.iter().map(|s| s.to_string()));
            assert_eq!(lines, expected, "{}", c.name);
            assert_eq!(delivered, c.delivered, "{}", c.name);
        }
    }

    #[test]
    fn greeting_and_nothing_else_on_empty_input() {
        let (lines, delivered) = session(b"", Limits::default(), &[]);
        assert_eq!(lines, vec![GREETING]);
        assert!(delivered.is_empty());
    }

    #[test]
    fn non_utf8_command_is_refused() {
        let (lines, _) = session(b"MAIL FROM:<\xff@x>\r\nNOOP\r\n", Limits::default(), &[]);
        assert_eq!(
            lines,
            vec![
                GREETING,
                "500 5.5.2 Error: command is not valid UTF-8",
                "250 2.0.0 Ok"
            ]
        );
    }

    #[test]
    fn eight_bit_data_passes_through_and_mail_works_without_ehlo() {
        let input = b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n\xe4\xff\rx\r\n.\r\n";
        let (lines, delivered) = session(input, Limits::default(), &[]);
        assert_eq!(lines.last().map(String::as_str), Some("250 2.0.0 queued"));
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].data, b"\xe4\xff\rx\r\n");
    }

    #[test]
    fn host_text_is_one_line() {
        let mut out = Vec::new();
        let mut deliver = |_: Incoming| Verdict::Accepted(String::new());
        serve(
            Cursor::new(b"HELO c\r\n"),
            &mut out,
            "evil\r\n250 x",
            &Limits::default(),
            &mut deliver,
        )
        .unwrap();
        assert_eq!(out, b"220 evil  250 x ESMTP postie\r\n250 evil  250 x\r\n");
    }

    #[test]
    fn works_through_a_tiny_read_buffer() {
        // Lines arrive split across many fill_buf calls; the result must not change.
        let input = "EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n..a\r\nbb\r\n.\r\nQUIT\r\n";
        let limits = Limits {
            max_line: 20,
            ..Limits::default()
        };
        let mut out = Vec::new();
        let mut got = Vec::new();
        let mut deliver = |m: Incoming| {
            got.push(m);
            Verdict::Accepted("ok".into())
        };
        let reader = BufReader::with_capacity(3, input.as_bytes());
        serve(reader, &mut out, "mx.test", &limits, &mut deliver).unwrap();
        assert_eq!(got, vec![msg("a@x.test", &["b@y.test"], ".a\r\nbb\r\n")]);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("250 2.0.0 ok\r\n221 2.0.0 mx.test closing connection\r\n"));
    }

    #[test]
    fn read_line_bounds() {
        // (input, max, results in order, each with the buffer's content after it)
        type Reads = &'static [(Line, &'static [u8])];
        let cases: &[(&[u8], usize, Reads)] = &[
            (b"abc\r\n", 3, &[(Line::Complete, b"abc"), (Line::Eof, b"")]),
            (b"abc\n", 3, &[(Line::Complete, b"abc"), (Line::Eof, b"")]),
            (
                b"abcd\r\nx\n",
                3,
                &[(Line::TooLong, b""), (Line::Complete, b"x")],
            ),
            (
                b"abcd\nx\n",
                3,
                &[(Line::TooLong, b""), (Line::Complete, b"x")],
            ),
            (b"a\rb\r\n", 3, &[(Line::Complete, b"a\rb")]),
            (
                b"\r\n\n",
                3,
                &[(Line::Complete, b""), (Line::Complete, b"")],
            ),
            (b"abc", 3, &[(Line::Eof, b"")]),
            (b"abcdefgh", 3, &[(Line::Eof, b"")]),
        ];
        for &(input, max, expected) in cases {
            for capacity in [1, 2, 64] {
                let mut reader = BufReader::with_capacity(capacity, input);
                let mut buf = Vec::new();
                for (want, content) in expected {
                    let got = read_line(&mut reader, max, &mut buf).unwrap();
                    assert_eq!(
                        (got, buf.as_slice()),
                        (*want, *content),
                        "{input:?} cap {capacity}"
                    );
                }
            }
        }
    }

    #[test]
    fn path_syntax() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("<a@x.test>", Some(("a@x.test", ""))),
            (
                "<a@x.test> SIZE=5 BODY=8BITMIME",
                Some(("a@x.test", "SIZE=5 BODY=8BITMIME")),
            ),
            ("a@x.test SIZE=5", Some(("a@x.test", "SIZE=5"))),
            ("<>", Some(("", ""))),
            ("<\"a>b c\"@x.test> X", Some(("\"a>b c\"@x.test", "X"))),
            ("<a@x.test", None),
            ("<a@x.test>x", None),
            ("", None),
            ("a<b>", None),
        ];
        for &(input, want) in cases {
            assert_eq!(split_path(input), want, "{input:?}");
        }

        let mailboxes: &[(&str, Option<&str>)] = &[
            ("a@x.test", Some("a@x.test")),
            (
                "first.last+tag@sub.x-y.test",
                Some("first.last+tag@sub.x-y.test"),
            ),
            ("root", Some("root")),
            ("Postmaster", Some("Postmaster")),
            ("a@[192.0.2.1]", Some("a@[192.0.2.1]")),
            ("a@[IPv6:2001:db8::1]", Some("a@[IPv6:2001:db8::1]")),
            ("\"a b\\\"c\"@x.test", Some("\"a b\\\"c\"@x.test")),
            ("@r1.test,@r2.test:a@x.test", Some("a@x.test")),
            ("jörg@bücher.test", Some("jörg@bücher.test")),
            ("a@b@x.test", None),
            ("a..b@x.test", None),
            (".a@x.test", None),
            ("a@", None),
            ("@x.test", None),
            ("a@x..test", None),
            ("a@-x.test", None),
            ("a@x.test.", None),
            ("a b@x.test", None),
            ("a@x test", None),
            ("a\r@x.test", None),
            ("\"a b\"", None),
            ("\"a\"b@x.test", None),
            ("\"a\rb\"@x.test", None),
            ("a@[]", None),
            ("a@[1.2.3.4", None),
            ("@r1.test:", None),
            ("@r1.test,r2.test:a@x.test", None),
        ];
        for &(input, want) in mailboxes {
            assert_eq!(mailbox(input).as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn mail_parameters() {
        let cases: &[(&str, Result<Option<u64>, &str>)] = &[
            ("", Ok(None)),
            ("SIZE=0", Ok(Some(0))),
            ("size=123 BODY=8BITMIME", Ok(Some(123))),
            ("BODY=7BIT RET=HDRS ENVID=QQ314159", Ok(None)),
            ("SMTPUTF8", Ok(None)),
            ("SIZE=99999999999999999999999", Ok(Some(u64::MAX))),
            ("SIZE=", Err("501 5.5.4 Error: bad parameter syntax")),
            (
                "SIZE",
                Err("501 5.5.4 Syntax: MAIL FROM:<address> SIZE=number"),
            ),
            (
                "SIZE=-1",
                Err("501 5.5.4 Syntax: MAIL FROM:<address> SIZE=number"),
            ),
            ("BODY=a=b", Err("501 5.5.4 Error: bad parameter syntax")),
            ("-X=1", Err("501 5.5.4 Error: bad parameter syntax")),
        ];
        for &(input, ref want) in cases {
            let got = mail_size(input).map_err(|r| String::from_utf8(r.to_wire()).unwrap());
            let want = want.map_err(|w| format!("{w}\r\n"));
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn io_errors_are_returned() {
        struct Broken;
        impl io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"))
            }
        }
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut deliver = |_: Incoming| Verdict::Accepted(String::new());
        let limits = Limits::default();
        let err = serve(
            BufReader::new(Broken),
            Vec::new(),
            "h",
            &limits,
            &mut deliver,
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let err = serve(Cursor::new(b"NOOP\r\n"), Broken, "h", &limits, &mut deliver).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
