//! Reading and rewriting the header block of a ready message (sendmail `-t` and the header
//! fixes of the sendmail persona).
//!
//! This module owns three things: finding the header block (the bytes before the first
//! empty line, RFC 5322 §2.1), reading recipients and the sender from it, and rewriting it.
//! Fields are found with mail-parser, whose parsed headers carry byte offsets; every field
//! this module does not have to change is copied byte for byte (folding, odd spacing,
//! non-UTF-8 bytes and all). Address fields that must change are re-rendered with
//! mail-builder's address writers, so RFC 2047 encoding and quoting are never done here.
//! It does no I/O, never touches the body, and never panics on odd input.
//!
//! RFC anchors: RFC 5322 §3.6.2 (originator fields), §3.6.3 (destination fields; Bcc),
//! §3.6.6 (Resent- fields), §3.6.1 and §3.6.4 (Date and Message-ID, added when missing, as
//! RFC 6409 §8 lets a submission agent do), §3.4 (address lists and groups).

use std::borrow::Cow;
use std::io::{self, Write};

use anyhow::Result;
use mail_builder::headers::address::{EmailAddress, GroupedAddresses};
use mail_builder::headers::date::Date;
use mail_builder::headers::Header;
use mail_parser::{Addr, Address, HeaderName, MessageParser};

use crate::address::parse_mailbox;
use crate::error::Error;

/// Recipients for `-t`: the addresses in To, Cc and Bcc, or, if the head has any
/// Resent-To, Resent-Cc or Resent-Bcc field, the addresses in those fields only
/// (RFC 5322 §3.6.6). Groups are opened; display names and comments are dropped; bare local
/// names (`root`) are returned as they are, for the caller to qualify. Order is kept and
/// exact duplicates are dropped. Malformed addresses are returned too: validating them is
/// the envelope's job.
pub fn recipients(head: &[u8]) -> Vec<String> {
    let block = Block::split(head);
    let fields = parse_fields(block.fields);
    let resent = fields.iter().any(|f| f.name.is_resent_recipient());
    let mut out: Vec<String> = Vec::new();
    for f in &fields {
        let wanted = if resent {
            f.name.is_resent_recipient()
        } else {
            f.name.is_recipient()
        };
        if !wanted {
            continue;
        }
        for addr in f.items.iter().flat_map(|items| mailboxes(items)) {
            if !out.iter().any(|a| a == addr) {
                out.push(addr.to_string());
            }
        }
    }
    out
}

/// The addresses in an address list typed outside a message (a sendmail recipient
/// argument such as `a@x, "Doe, J" <j@x>`): split on its commas by mail-parser, display
/// names dropped, bare local names kept. `None` when part of it is not an address, or when
/// it contains a line break.
pub fn address_list(text: &str) -> Option<Vec<String>> {
    if text.contains(['\r', '\n']) {
        return None;
    }
    let field = format!("To: {text}\n");
    let fields = parse_fields(field.as_bytes());
    let items = fields.first()?.items.as_deref()?;
    let all = || {
        items.iter().flat_map(|i| match i {
            Item::Single(e) => std::slice::from_ref(e),
            Item::Group { members, .. } => members.as_slice(),
        })
    };
    if all().any(|e| *e == Entry::Unusable) {
        return None;
    }
    Some(mailboxes(items).map(str::to_string).collect())
}

/// The address of the first mailbox in the first From: field that has one, if any. A bare
/// local name (`From: root`) is returned as it is.
pub fn from_address(head: &[u8]) -> Option<String> {
    let block = Block::split(head);
    parse_fields(block.fields)
        .iter()
        .filter(|f| f.name == FieldName::From)
        .find_map(|f| f.items.as_deref().and_then(|i| mailboxes(i).next()))
        .map(str::to_string)
}

/// The byte ranges (from the field name to the end of its last line) of every field named
/// `name` (case-insensitively) in the header block at the start of `head`, in order.
pub fn field_ranges(head: &[u8], name: &str) -> Vec<(usize, usize)> {
    let block = Block::split(head);
    let owned;
    let buf: &[u8] = if block.fields.is_empty() || block.fields.ends_with(b"\n") {
        block.fields
    } else {
        owned = [block.fields, b"\n"].concat();
        &owned
    };
    let Some(message) = MessageParser::new().parse_headers(buf) else {
        return Vec::new();
    };
    let mut ranges: Vec<(usize, usize)> = message
        .headers()
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| {
            let end = (h.offset_end as usize).min(block.fields.len());
            (h.offset_field as usize, end)
        })
        .filter(|(start, end)| start <= end)
        .collect();
    ranges.sort_unstable();
    ranges
}

/// Maps a bare local name to the address or addresses it stands for.
pub type Qualify<'a> = &'a dyn Fn(&str) -> Vec<String>;

/// What [`rewrite`] changes. `Rewrite::default()` changes nothing.
#[derive(Default)]
pub struct Rewrite<'a> {
    /// Remove the Bcc and Resent-Bcc fields entirely, continuation lines included.
    pub strip_bcc: bool,
    /// Maps a bare local name (no `@`) to the address or addresses it stands for (alias
    /// targets, or `name@domain`). An empty answer leaves the name as it is.
    pub qualify: Option<Qualify<'a>>,
    /// The same for the originator fields (From, Sender and their Resent- forms), which
    /// name senders, not recipients; `None`: `qualify` is used for them too.
    pub qualify_sender: Option<Qualify<'a>>,
    /// The From: to add when the head has none: `addr` or `Name <addr>` (the name may be
    /// non-ASCII; it is encoded per RFC 2047).
    pub add_from: Option<String>,
    /// Unix time for a Date: to add when the head has none.
    pub add_date: Option<i64>,
    /// The id (without `<>`) for a Message-ID: to add when the head has none.
    pub add_message_id: Option<String>,
}

/// Rewrite the header block at the start of `head` and return the whole input with the new
/// block: anything after the block's terminating empty line (the start of the body, when
/// the caller read ahead) is returned unchanged. Without an empty line, all of `head` is
/// taken to be the header block.
///
/// * Address fields (From, Sender, Reply-To, To, Cc, Bcc and their Resent- forms) that
///   name a bare local name are re-rendered with the names qualified: `To: root` becomes
///   `To: root@example.org`, or the alias targets. A display name is kept when the name
///   maps to one address. Originator fields (From, Sender, Resent-From, Resent-Sender)
///   take only the first address. A field that also holds something that is not an address
///   (`To: John Smith`), or that is not UTF-8, is kept unchanged.
/// * Bcc and Resent-Bcc are removed when `strip_bcc` is set.
/// * Missing From, Date and Message-ID fields are added at the end of the block, in that
///   order.
/// * Every other byte is kept. What this writes uses the input's line ending (that of its
///   first line; LF when it has none).
pub fn rewrite(head: &[u8], r: &Rewrite) -> Result<Vec<u8>> {
    let block = Block::split(head);
    let eol: &[u8] = if block.crlf { b"\r\n" } else { b"\n" };
    let fields = parse_fields(block.fields);
    let mut out = Vec::with_capacity(head.len() + 256);
    let (mut has_from, mut has_date, mut has_message_id) = (false, false, false);
    let mut cursor = 0;
    for f in &fields {
        has_from |= f.name == FieldName::From;
        has_date |= f.name == FieldName::Date;
        has_message_id |= f.name == FieldName::MessageId;
        let (Some(gap), Some(raw)) = (
            block.fields.get(cursor..f.start),
            block.fields.get(f.start..f.end),
        ) else {
            continue; // offsets out of order: leave those bytes to the verbatim copy
        };
        out.extend_from_slice(gap);
        cursor = f.end;
        if r.strip_bcc && f.name.is_bcc() {
            continue;
        }
        let qualify = match (f.name.is_originator(), r.qualify_sender) {
            (true, Some(q)) => Some(q),
            _ => r.qualify,
        };
        match (qualify, &f.items) {
            (Some(q), Some(items))
                if needs_qualifying(items) && std::str::from_utf8(raw).is_ok() =>
            {
                let name = block.fields.get(f.start..f.value_start).unwrap_or(b"");
                out.extend_from_slice(name);
                let items = qualify_items(items, q, f.name.is_originator());
                let value = render_list(&items, name.len())?;
                out.extend_from_slice(&with_eol(&value, block.crlf));
                out.extend_from_slice(eol);
            }
            _ => out.extend_from_slice(raw),
        }
    }
    out.extend_from_slice(block.fields.get(cursor..).unwrap_or(b""));

    let mut added = Vec::new();
    if let (false, Some(from)) = (has_from, &r.add_from) {
        let m = parse_mailbox(from)?;
        let addr = EmailAddress {
            name: m.name.map(Cow::Owned),
            email: Cow::Owned(m.addr),
        };
        let mut value = Vec::new();
        addr.write_header(&mut value, "From: ".len());
        added.extend_from_slice(b"From: ");
        added.extend_from_slice(&with_eol(without_crlf(&value), block.crlf));
        added.extend_from_slice(eol);
    }
    if let (false, Some(t)) = (has_date, r.add_date) {
        added.extend_from_slice(format!("Date: {}", Date::new(t).to_rfc822()).as_bytes());
        added.extend_from_slice(eol);
    }
    if let (false, Some(id)) = (has_message_id, &r.add_message_id) {
        let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>');
        if id.is_empty() || id.chars().any(bad) {
            return Err(Error::Data(format!("unusable Message-ID {id:?}")).into());
        }
        added.extend_from_slice(format!("Message-ID: <{id}>").as_bytes());
        added.extend_from_slice(eol);
    }
    if !added.is_empty() {
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(&added);
    }
    out.extend_from_slice(block.blank);
    out.extend_from_slice(block.rest);
    Ok(out)
}

/// A head cut at its first empty line.
struct Block<'h> {
    /// The header fields, up to (not including) the empty line.
    fields: &'h [u8],
    /// The empty line (`\n` or `\r\n`), or nothing when there is none.
    blank: &'h [u8],
    /// Whatever follows the empty line.
    rest: &'h [u8],
    /// Whether the first line ends in CRLF.
    crlf: bool,
}

impl<'h> Block<'h> {
    fn split(head: &'h [u8]) -> Block<'h> {
        let crlf = head
            .iter()
            .position(|&b| b == b'\n')
            .is_some_and(|i| i > 0 && head.get(i - 1) == Some(&b'\r'));
        let mut start = 0;
        while let Some(line) = head.get(start..) {
            let blank_len = if line.starts_with(b"\n") {
                1
            } else if line.starts_with(b"\r\n") {
                2
            } else {
                0
            };
            if blank_len > 0 {
                let (fields, after) = head.split_at(start);
                let (blank, rest) = after.split_at(blank_len);
                return Block {
                    fields,
                    blank,
                    rest,
                    crlf,
                };
            }
            match line.iter().position(|&b| b == b'\n') {
                Some(i) => start += i + 1,
                None => break,
            }
        }
        Block {
            fields: head,
            blank: b"",
            rest: b"",
            crlf,
        }
    }
}

/// The header fields postie cares about; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldName {
    From,
    Sender,
    ReplyTo,
    To,
    Cc,
    Bcc,
    ResentFrom,
    ResentSender,
    ResentTo,
    ResentCc,
    ResentBcc,
    Date,
    MessageId,
    Other,
}

impl FieldName {
    fn of(name: &HeaderName) -> FieldName {
        match name {
            HeaderName::From => FieldName::From,
            HeaderName::Sender => FieldName::Sender,
            HeaderName::ReplyTo => FieldName::ReplyTo,
            HeaderName::To => FieldName::To,
            HeaderName::Cc => FieldName::Cc,
            HeaderName::Bcc => FieldName::Bcc,
            HeaderName::ResentFrom => FieldName::ResentFrom,
            HeaderName::ResentSender => FieldName::ResentSender,
            HeaderName::ResentTo => FieldName::ResentTo,
            HeaderName::ResentCc => FieldName::ResentCc,
            HeaderName::ResentBcc => FieldName::ResentBcc,
            HeaderName::Date => FieldName::Date,
            HeaderName::MessageId => FieldName::MessageId,
            _ => FieldName::Other,
        }
    }

    fn is_recipient(self) -> bool {
        matches!(self, FieldName::To | FieldName::Cc | FieldName::Bcc)
    }

    fn is_resent_recipient(self) -> bool {
        matches!(
            self,
            FieldName::ResentTo | FieldName::ResentCc | FieldName::ResentBcc
        )
    }

    fn is_bcc(self) -> bool {
        matches!(self, FieldName::Bcc | FieldName::ResentBcc)
    }

    /// Fields that name who wrote or sent the message: one address each is enough.
    fn is_originator(self) -> bool {
        matches!(
            self,
            FieldName::From | FieldName::Sender | FieldName::ResentFrom | FieldName::ResentSender
        )
    }
}

/// One entry of an address field as mail-parser read it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Mailbox {
        name: Option<String>,
        addr: String,
    },
    /// Something without a usable address, e.g. `John Smith`.
    Unusable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Single(Entry),
    Group { name: String, members: Vec<Entry> },
}

/// A parsed field: byte offsets into the header block, and the address entries when the
/// field is an address field.
#[derive(Debug)]
struct Field {
    name: FieldName,
    /// Start of the field name.
    start: usize,
    /// Just after the colon.
    value_start: usize,
    /// Just after the field's last line ending (continuation lines included).
    end: usize,
    items: Option<Vec<Item>>,
}

/// Parse the fields of a header block with mail-parser. The block is given a final line
/// ending when it lacks one, since mail-parser drops an unterminated last value.
fn parse_fields(block: &[u8]) -> Vec<Field> {
    let owned;
    let buf: &[u8] = if block.is_empty() || block.ends_with(b"\n") {
        block
    } else {
        owned = [block, b"\n"].concat();
        &owned
    };
    let Some(message) = MessageParser::new().parse_headers(buf) else {
        return Vec::new();
    };
    let mut fields: Vec<Field> = message
        .headers()
        .iter()
        .filter_map(|h| {
            let (start, value_start) = (h.offset_field as usize, h.offset_start as usize);
            let end = (h.offset_end as usize).min(block.len());
            if !(start <= value_start && value_start <= end) {
                return None;
            }
            let name = FieldName::of(&h.name);
            let items = match (&h.value, name) {
                (_, FieldName::Date | FieldName::MessageId | FieldName::Other) => None,
                (mail_parser::HeaderValue::Address(a), _) => Some(items_of(a)),
                _ => Some(Vec::new()),
            };
            Some(Field {
                name,
                start,
                value_start,
                end,
                items,
            })
        })
        .collect();
    fields.sort_by_key(|f| f.start);
    fields
}

fn items_of(a: &Address) -> Vec<Item> {
    match a {
        Address::List(list) => list.iter().filter_map(entry).map(Item::Single).collect(),
        Address::Group(groups) => {
            let mut items = Vec::new();
            for g in groups {
                let members = g.addresses.iter().filter_map(entry);
                match &g.name {
                    Some(name) => items.push(Item::Group {
                        name: name.to_string(),
                        members: members.collect(),
                    }),
                    None => items.extend(members.map(Item::Single)),
                }
            }
            items
        }
    }
}

/// mail-parser reads a lone word (`To: root`) as a display name without an address; such
/// a word that could be a local part is taken as a bare local address.
fn entry(a: &Addr) -> Option<Entry> {
    let name = a.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let addr = a
        .address
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    match (name, addr) {
        (name, Some(addr)) => Some(Entry::Mailbox {
            name: name.map(str::to_string),
            addr: addr.to_string(),
        }),
        (Some(word), None) if is_local_part(word) => Some(Entry::Mailbox {
            name: None,
            addr: word.to_string(),
        }),
        (Some(_), None) => Some(Entry::Unusable),
        (None, None) => None,
    }
}

/// A bare local name: one word with no `@`, nothing that needs quoting.
fn is_local_part(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(
                    c,
                    '@' | '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '[' | ']' | '\\'
                )
        })
}

/// The addresses in a field's entries, groups opened.
fn mailboxes(items: &[Item]) -> impl Iterator<Item = &str> {
    items
        .iter()
        .flat_map(|i| match i {
            Item::Single(e) => std::slice::from_ref(e),
            Item::Group { members, .. } => members.as_slice(),
        })
        .filter_map(|e| match e {
            Entry::Mailbox { addr, .. } => Some(addr.as_str()),
            Entry::Unusable => None,
        })
}

/// True when the field names a bare local name and holds nothing that re-rendering would
/// lose.
fn needs_qualifying(items: &[Item]) -> bool {
    let entries = || {
        items.iter().flat_map(|i| match i {
            Item::Single(e) => std::slice::from_ref(e),
            Item::Group { members, .. } => members.as_slice(),
        })
    };
    let bare = entries().any(|e| matches!(e, Entry::Mailbox { addr, .. } if is_local_part(addr)));
    bare && !entries().any(|e| *e == Entry::Unusable)
}

fn qualify_entries(
    entries: &[Entry],
    q: &dyn Fn(&str) -> Vec<String>,
    originator: bool,
) -> Vec<EmailAddress<'static>> {
    let mut out = Vec::new();
    for e in entries {
        let Entry::Mailbox { name, addr } = e else {
            continue;
        };
        let mut targets = if is_local_part(addr) {
            q(addr)
        } else {
            Vec::new()
        };
        if targets.is_empty() {
            targets.push(addr.clone());
        }
        if originator {
            targets.truncate(1);
        }
        let keep_name = targets.len() == 1;
        out.extend(targets.into_iter().map(|t| EmailAddress {
            name: name.clone().filter(|_| keep_name).map(Cow::Owned),
            email: Cow::Owned(t),
        }));
    }
    out
}

enum Rendered {
    Mailbox(EmailAddress<'static>),
    Group(GroupedAddresses<'static>),
}

fn qualify_items(
    items: &[Item],
    q: &dyn Fn(&str) -> Vec<String>,
    originator: bool,
) -> Vec<Rendered> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Single(e) => out.extend(
                qualify_entries(std::slice::from_ref(e), q, originator)
                    .into_iter()
                    .map(Rendered::Mailbox),
            ),
            Item::Group { name, members } => out.push(Rendered::Group(GroupedAddresses {
                name: Some(Cow::Owned(name.clone())),
                addresses: qualify_entries(members, q, originator)
                    .into_iter()
                    .map(mail_builder::headers::address::Address::Address)
                    .collect(),
            })),
        }
        if originator && !out.is_empty() {
            out.truncate(1);
            break;
        }
    }
    out
}

/// Render an address list after a field name of `name_len` bytes, CRLF-folded before 76
/// columns where possible. mail-builder writes each mailbox and group (quoting and RFC 2047
/// encoding); the list punctuation and folding between items are written here.
fn render_list(items: &[Rendered], name_len: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut col = name_len;
    for (i, item) in items.iter().enumerate() {
        let width = match item {
            Rendered::Mailbox(m) => m.email.len() + 2 + m.name.as_ref().map_or(0, |n| n.len() + 3),
            Rendered::Group(g) => g.name.as_ref().map_or(0, |n| n.len() + 2),
        };
        if i > 0 {
            out.write_all(b",")?;
            col += 1;
        }
        if i > 0 && col + 1 + width >= 76 {
            out.write_all(b"\r\n\t")?;
            col = 1;
        } else {
            out.write_all(b" ")?;
            col += 1;
        }
        let mut one = Vec::new();
        match item {
            Rendered::Mailbox(m) => m.write_header(&mut one, col),
            Rendered::Group(g) => g.write_header(&mut one, col),
        };
        out.extend_from_slice(without_crlf(&one));
        // Count the column from what was written, not from an estimate.
        col = match out.iter().rposition(|&b| b == b'\n') {
            Some(nl) => out.len() - nl - 1,
            None => name_len + out.len(),
        };
    }
    Ok(out)
}

/// mail-builder ends each header value with CRLF; the caller writes its own line end.
fn without_crlf(rendered: &[u8]) -> &[u8] {
    rendered.strip_suffix(b"\r\n").unwrap_or(rendered)
}

/// mail-builder folds with CRLF; turn that into LF for an LF head.
fn with_eol(rendered: &[u8], crlf: bool) -> Cow<'_, [u8]> {
    if crlf {
        return Cow::Borrowed(rendered);
    }
    let mut out = Vec::with_capacity(rendered.len());
    let mut i = 0;
    while let Some(&b) = rendered.get(i) {
        if b == b'\r' && rendered.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z
    const T: i64 = 1_767_225_600;

    fn qualify(name: &str) -> Vec<String> {
        match name {
            "staff" => vec!["alice@example.org".into(), "bob@example.org".into()],
            "nobody" => vec![],
            other => vec![format!("{other}@example.org")],
        }
    }

    /// Senders are qualified with the domain, never through the recipient aliases.
    fn qualify_sender(name: &str) -> Vec<String> {
        vec![format!("{name}@example.org")]
    }

    fn show(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// What the sendmail persona asks for: qualify, strip Bcc, add what is missing.
    fn full() -> Rewrite<'static> {
        Rewrite {
            strip_bcc: true,
            qualify: Some(&qualify),
            qualify_sender: Some(&qualify_sender),
            add_from: Some("CronDaemon <root@host.example>".into()),
            add_date: Some(T),
            add_message_id: Some("1.2@host.example".into()),
        }
    }

    #[test]
    fn rewrites_whole_heads() {
        let cases: &[(&str, &[u8], &[u8])] = &[
            (
                "cron's message, LF",
                b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> run-parts\n\
                  MIME-Version: 1.0\nX-Cron-Env: <SHELL=/bin/sh>\n\nout\n",
                b"From: \"Cron Daemon\" <root@example.org>\nTo: <root@example.org>\n\
                  Subject: Cron <root@h> run-parts\nMIME-Version: 1.0\nX-Cron-Env: <SHELL=/bin/sh>\n\
                  Date: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <1.2@host.example>\n\nout\n",
            ),
            (
                "cron's message, CRLF",
                b"From: root (Cron Daemon)\r\nTo: root\r\nSubject: s\r\n\r\nout\r\n",
                b"From: \"Cron Daemon\" <root@example.org>\r\nTo: <root@example.org>\r\n\
                  Subject: s\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\
                  Message-ID: <1.2@host.example>\r\n\r\nout\r\n",
            ),
            (
                "no From, Date or Message-ID: all added at the end of the block",
                b"To: ops@example.com\nSubject: disk\n\nbody\n",
                b"To: ops@example.com\nSubject: disk\nFrom: \"CronDaemon\" <root@host.example>\n\
                  Date: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <1.2@host.example>\n\nbody\n",
            ),
            (
                "folded To with bare names and an alias with two targets, refolded",
                b"From: a@x\nDate: d\nMessage-ID: <m@x>\nTo: a@example.com,\n  root,\n\tstaff\nX-Y: z\n\n",
                b"From: a@x\nDate: d\nMessage-ID: <m@x>\n\
                  To: <a@example.com>, <root@example.org>, <alice@example.org>,\n\t<bob@example.org>\n\
                  X-Y: z\n\n",
            ),
            (
                "Bcc with continuation lines removed cleanly; Cc kept as typed",
                b"From: a@x\nDate: d\nMessage-ID: <m@x>\nTo: t@x\nBcc: b1@x,\n  b2@x,\n\tb3@x\nCc:  c@x\n\n",
                b"From: a@x\nDate: d\nMessage-ID: <m@x>\nTo: t@x\nCc:  c@x\n\n",
            ),
            (
                "Bcc as the last field, CRLF",
                b"From: a@x\r\nDate: d\r\nMessage-ID: <m@x>\r\nBCC: b@x\r\n\r\n",
                b"From: a@x\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\n",
            ),
            (
                "originators are senders: From: staff is not expanded through the aliases",
                b"From: staff\nSender: nobody\nTo: staff\nDate: d\nMessage-ID: <m@x>\n\n",
                b"From: <staff@example.org>\nSender: <nobody@example.org>\n\
                  To: <alice@example.org>, <bob@example.org>\nDate: d\nMessage-ID: <m@x>\n\n",
            ),
            (
                "Resent- fields: qualified, Resent-Bcc stripped, the originals kept",
                b"Resent-From: root\nResent-To: staff\nResent-Bcc: hidden@x\nResent-Date: d\n\
                  From: a@x\nTo: b@x\nDate: d\nMessage-ID: <m@x>\n\n",
                b"Resent-From: <root@example.org>\nResent-To: <alice@example.org>, <bob@example.org>\n\
                  Resent-Date: d\nFrom: a@x\nTo: b@x\nDate: d\nMessage-ID: <m@x>\n\n",
            ),
            (
                "non-UTF-8 Subject kept byte for byte",
                b"Subject: caf\xe9 \xff\xfe\nTo: root\nFrom: a@x\nDate: d\nMessage-ID: <m@x>\n\n\xe9\n",
                b"Subject: caf\xe9 \xff\xfe\nTo: <root@example.org>\nFrom: a@x\nDate: d\n\
                  Message-ID: <m@x>\n\n\xe9\n",
            ),
            (
                "non-UTF-8 in the To field itself: kept, not mangled",
                b"To: J\xfcrgen <root>\nFrom: a@x\nDate: d\nMessage-ID: <m@x>\n\n",
                b"To: J\xfcrgen <root>\nFrom: a@x\nDate: d\nMessage-ID: <m@x>\n\n",
            ),
            (
                "a field with a non-address is kept unchanged",
                b"To: John Smith, root\nFrom: a@x\nDate: d\nMessage-ID: <m@x>\n\n",
                b"To: John Smith, root\nFrom: a@x\nDate: d\nMessage-ID: <m@x>\n\n",
            ),
            (
                "groups: members qualified, the comma after the group kept",
                b"To: team: root, x@y;, z@w\nCc: undisclosed-recipients:;\nFrom: a@x\nDate: d\nMessage-ID: <m@x>\n\n",
                b"To: \"team\": <root@example.org>, <x@y>;, <z@w>\n\
                  Cc: undisclosed-recipients:;\nFrom: a@x\nDate: d\nMessage-ID: <m@x>\n\n",
            ),
            (
                "RFC 2047 display name decoded and re-encoded; unqualifiable name left as is",
                b"To: =?utf-8?Q?J=C3=BCrgen?= <root>, nobody\nFrom: a@x\nDate: d\nMessage-ID: <m@x>\n\n",
                b"To: =?utf-8?Q?J=C3=BCrgen?= <root@example.org>, <nobody>\n\
                  From: a@x\nDate: d\nMessage-ID: <m@x>\n\n",
            ),
            (
                "From naming an alias is qualified as a sender, keeping its display name",
                b"From: Ops <staff>\nDate: d\nMessage-ID: <m@x>\n\n",
                b"From: \"Ops\" <staff@example.org>\nDate: d\nMessage-ID: <m@x>\n\n",
            ),
            (
                "no blank line and no final newline",
                b"To: root",
                b"To: <root@example.org>\nFrom: \"CronDaemon\" <root@host.example>\n\
                  Date: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <1.2@host.example>\n",
            ),
            (
                "unterminated last field that stays",
                b"From: a@x\nDate: d\nSubject: x",
                b"From: a@x\nDate: d\nSubject: x\nMessage-ID: <1.2@host.example>\n",
            ),
            (
                "empty header block: fields go before the blank line",
                b"\nbody\n",
                b"From: \"CronDaemon\" <root@host.example>\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n\
                  Message-ID: <1.2@host.example>\n\nbody\n",
            ),
            (
                "read-ahead body bytes after the block are untouched, even header-like ones",
                b"From: a@x\nDate: d\nMessage-ID: <m@x>\nTo: root\n\nTo: root\nBcc: x@y\n",
                b"From: a@x\nDate: d\nMessage-ID: <m@x>\nTo: <root@example.org>\n\nTo: root\nBcc: x@y\n",
            ),
            (
                "a line that is not a field, and lower-case names, kept",
                b"from: a@x\ndate: d\nmessage-id: <m@x>\nnot a field\nto: root\n\n",
                b"from: a@x\ndate: d\nmessage-id: <m@x>\nnot a field\nto: <root@example.org>\n\n",
            ),
        ];
        for (what, input, want) in cases {
            let got = rewrite(input, &full()).unwrap();
            assert_eq!(show(&got), show(want), "{what}");
            assert_eq!(got, *want, "{what} (bytes)");
        }
    }

    #[test]
    fn default_rewrite_changes_nothing() {
        for input in [
            &b"To: root\nBcc: x@y\n\nbody"[..],
            b"To: root\r\nBcc: x@y\r\n\r\n",
            b"garbage",
            b"",
        ] {
            assert_eq!(rewrite(input, &Rewrite::default()).unwrap(), input);
        }
    }

    #[test]
    fn added_from_is_encoded_by_mail_builder() {
        let r = Rewrite {
            add_from: Some("Jürgen Müller <j@example.org>".into()),
            ..Default::default()
        };
        let got = rewrite(b"Subject: x\n\n", &r).unwrap();
        assert_eq!(
            show(&got),
            "Subject: x\nFrom: =?utf-8?B?SsO8cmdlbiBNw7xsbGVy?= <j@example.org>\n\n"
        );
        let parsed = MessageParser::new().parse_headers(&got[..]).unwrap();
        let from = parsed.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name(), Some("Jürgen Müller"));
    }

    #[test]
    fn unusable_additions_are_data_errors() {
        for r in [
            Rewrite {
                add_from: Some("no at sign".into()),
                ..Default::default()
            },
            Rewrite {
                add_message_id: Some("a b@x".into()),
                ..Default::default()
            },
            Rewrite {
                add_message_id: Some("<a@x>".into()),
                ..Default::default()
            },
        ] {
            let err = rewrite(b"To: a@x\n\n", &r).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), crate::error::Exit::DataErr);
        }
        // Present fields are not replaced, so their values are never checked.
        let r = Rewrite {
            add_message_id: Some("a b".into()),
            ..Default::default()
        };
        assert!(rewrite(b"Message-ID: <x@y>\n\n", &r).is_ok());
    }

    #[test]
    fn odd_input_never_panics_and_keeps_what_follows_the_block() {
        let sample: &[u8] = b"From: root (x\r\nTo: \"a, <b>\n\t,root;:,\r\nBcc: ,,\n \n\
            Resent-Cc: g:;\nSubject: \xff\xfe\x00\n\r\nbody\xff\n";
        for end in 0..=sample.len() {
            let input = &sample[..end];
            let out = rewrite(input, &full()).unwrap();
            let block = Block::split(input);
            assert!(out.ends_with(block.rest), "prefix {end}");
            let _ = recipients(input);
            let _ = from_address(input);
        }
    }

    #[test]
    fn recipients_for_t() {
        let cases: &[(&str, &[u8], &[&str])] = &[
            (
                "To, Cc and Bcc; names, comments and duplicates",
                b"From: f@x\nTo: A <a@x>, root\nCc: root (Cron Daemon), <www-data>\nBcc: b@x,\n  a@x\n\n",
                &["a@x", "root", "www-data", "b@x"],
            ),
            (
                "several To fields, groups opened, empty group",
                b"To: t1@x\nTo: team: m1@x, m2@x;, t2@x\nCc: undisclosed-recipients:;\n\n",
                &["t1@x", "m1@x", "m2@x", "t2@x"],
            ),
            (
                "Resent- fields win over the originals",
                b"Resent-To: r1@x\nResent-Bcc: r2@x\nTo: t@x\nCc: c@x\n\n",
                &["r1@x", "r2@x"],
            ),
            (
                "an empty Resent-Bcc still means resent",
                b"Resent-Bcc:\nTo: t@x\n\n",
                &[],
            ),
            (
                "CRLF, folded, header-like body ignored",
                b"To: a@x,\r\n b@x\r\n\r\nCc: body@x\r\n",
                &["a@x", "b@x"],
            ),
            (
                "not an address, and malformed ones passed on",
                b"To: John Smith, @x, c@\n\n",
                &["@x", "c@"],
            ),
            ("nothing", b"Subject: x\n\n", &[]),
        ];
        for (what, head, want) in cases {
            assert_eq!(recipients(head), *want, "{what}");
        }
    }

    #[test]
    fn address_lists_typed_outside_a_message() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("a@x", Some(&["a@x"])),
            ("root", Some(&["root"])),
            ("a@x, b@y", Some(&["a@x", "b@y"])),
            ("a@x,b@y", Some(&["a@x", "b@y"])),
            ("\"Doe, J\" <j@x>, root", Some(&["j@x", "root"])),
            ("Ops <ops@x>", Some(&["ops@x"])),
            ("user@[192.0.2.1]", Some(&["user@[192.0.2.1]"])),
            ("jürgen@bücher.example", Some(&["jürgen@bücher.example"])),
            ("", Some(&[])),
            ("John Smith", None),
            ("a@x\r\nRCPT TO:<evil@x>", None),
            ("a@x\nBcc: evil@x", None),
        ];
        for (text, want) in cases {
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(address_list(text), want, "{text:?}");
        }
    }

    #[test]
    fn from_address_cases() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"From: Ops <ops@x.example>\n\n", Some("ops@x.example")),
            (b"From: root (Cron Daemon)\n\n", Some("root")),
            (b"From: root\n\n", Some("root")),
            (b"From:\nFrom: second@x\n\n", Some("second@x")),
            (b"Sender: s@x\n\n", None),
            (b"To: a@x\n\nFrom: body@x\n", None),
            (b"", None),
        ];
        for (head, want) in cases {
            assert_eq!(from_address(head).as_deref(), *want, "{}", show(head));
        }
    }
}
