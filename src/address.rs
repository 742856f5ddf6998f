//! Mailbox grammar: what an address given by the user, a header or an SMTP client may
//! look like (RFC 5321 §4.1.2 Mailbox, §4.5.3.1 length limits; RFC 6531 UTF-8), and the
//! `Name <addr>` form (RFC 5322 §3.4).
//!
//! Owns: parsing and checking one address. Must not: qualify bare names or read the
//! configuration (that is [`crate::envelope`]'s), or touch the network. A leaf: every
//! stage that handles an address (config for `--from`, message, envelope, the `-bs`
//! server) uses it without depending on the later stages.

use anyhow::Result;

use crate::error::Error;

/// A mailbox as typed: `addr` or `Name <addr>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub addr: String,
}

/// Parse `addr`, `<addr>` or `Name <addr>` ("Name" may be quoted).
pub fn parse_mailbox(input: &str) -> Result<Mailbox> {
    let m = split_mailbox(input)?;
    check_addr(input, &m.addr)?;
    Ok(m)
}

/// Like [`parse_mailbox`], but a bare local name (`root`, `www-data`) is allowed too.
pub(crate) fn parse_recipient(input: &str) -> Result<Mailbox> {
    let m = split_mailbox(input)?;
    if m.addr.contains('@') {
        check_addr(input, &m.addr)?;
    } else if m.addr.is_empty()
        || !m
            .addr
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    {
        return Err(bad_address(input, "not an address or a local user name"));
    }
    Ok(m)
}

fn split_mailbox(input: &str) -> Result<Mailbox> {
    let s = input.trim();
    if s.chars().any(char::is_control) {
        return Err(bad_address(input, "control character or line break in it"));
    }
    let (name, addr) = match (s.rfind('<'), s.ends_with('>')) {
        (Some(open), true) => {
            let name = s[..open].trim().trim_matches('"').trim();
            let addr = &s[open + 1..s.len() - 1];
            ((!name.is_empty()).then(|| name.to_string()), addr.trim())
        }
        (None, false) => (None, s),
        _ => return Err(bad_address(input, "unbalanced angle brackets")),
    };
    Ok(Mailbox {
        name,
        addr: addr.to_string(),
    })
}

/// RFC 5321 §4.5.3.1: local part at most 64 octets, domain at most 255, and a path at most
/// 256 with its angle brackets, so an address at most 254.
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_ADDRESS: usize = 254;

/// `addr` must be an RFC 5321 §4.1.2 Mailbox (local part a dot-string or a quoted string
/// without spaces; domain a host name or an address literal; UTF-8 allowed where RFC 6531
/// allows it) within the §4.5.3.1 length limits.
pub(crate) fn check_addr(input: &str, addr: &str) -> Result<()> {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return Err(bad_address(input, "no @domain"));
    };
    if local.is_empty() || domain.is_empty() {
        return Err(bad_address(input, "empty local part or domain"));
    }
    if addr
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '(' | ')'))
    {
        return Err(bad_address(
            input,
            "space, control character or bracket in it",
        ));
    }
    if !(is_domain(domain) || is_address_literal(domain))
        || domain.split('.').any(|label| label.len() > 63)
    {
        return Err(bad_address(input, "malformed domain"));
    }
    let quoted = local
        .strip_prefix('"')
        // The closing quote must end the local part (a lone `"` has none).
        .is_some_and(|q| quoted_end(q).is_some_and(|end| end + 1 == q.len()));
    if !(quoted || is_dot_string(local)) {
        return Err(bad_address(input, "malformed local part"));
    }
    if local.len() > MAX_LOCAL || domain.len() > MAX_DOMAIN || addr.len() > MAX_ADDRESS {
        return Err(bad_address(
            input,
            "too long (RFC 5321 §4.5.3.1: local part at most 64 octets, address at most 254)",
        ));
    }
    Ok(())
}

/// Index (in `text`, which follows the opening quote) of the closing quote of a
/// Quoted-string whose content is qtextSMTP / quoted-pairSMTP (RFC 5321 §4.1.2).
pub(crate) fn quoted_end(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            if !(' '..='~').contains(&c) {
                return None;
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i);
        } else if c.is_control() {
            return None;
        }
    }
    None
}

/// Dot-string = Atom *("." Atom); atext per RFC 5322 §3.2.3, plus UTF-8 (RFC 6531).
pub(crate) fn is_dot_string(text: &str) -> bool {
    text.split('.').all(|atom| {
        !atom.is_empty()
            && atom.chars().all(|c| {
                c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
            })
    })
}

/// Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]; U-labels allowed.
pub(crate) fn is_domain(text: &str) -> bool {
    text.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && !c.is_control())
            })
    })
}

/// address-literal = "[" ... "]" with dcontent (%d33-90 / %d94-126) inside.
pub(crate) fn is_address_literal(text: &str) -> bool {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .is_some_and(|inner| {
            !inner.is_empty() && inner.bytes().all(|b| matches!(b, 33..=90 | 94..=126))
        })
}

pub(crate) fn bad_address(input: &str, why: &str) -> anyhow::Error {
    Error::Data(format!("malformed address {input:?}: {why}")).into()
}
