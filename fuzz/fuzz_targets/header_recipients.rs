//! Header-block reading and rewriting (src/message/headers.rs) and address checks
//! (src/envelope.rs) on arbitrary message heads: what `-t` and the sendmail persona do
//! with a ready message.
//!
//! Oracle: `rewrite` with nothing to do returns the input byte for byte; stripping Bcc
//! leaves no Bcc or Resent-Bcc field that mail-parser (the parser postie reads headers
//! with, so the one that decides what a field is) finds in the header block, and doing it
//! twice changes nothing more;
//! every address `parse_mailbox` accepts is free of line breaks, controls and spaces
//! (nothing it lets through can inject an SMTP command).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_parser::{HeaderName, MessageParser};
use postie::envelope::parse_mailbox;
use postie::message::headers::{address_list, from_address, recipients, rewrite, Rewrite};

fuzz_target!(|data: &[u8]| {
    let before = recipients(data);
    let _ = from_address(data);
    if let Ok(same) = rewrite(data, &Rewrite::default()) {
        assert_eq!(same, data, "Rewrite::default() changed the message");
    }
    let strip = Rewrite {
        strip_bcc: true,
        ..Rewrite::default()
    };
    if let Ok(stripped) = rewrite(data, &strip) {
        if let Some(parsed) = MessageParser::new().parse_headers(&head(&stripped)) {
            for h in parsed.headers() {
                let bcc = match &h.name {
                    HeaderName::Bcc | HeaderName::ResentBcc => true,
                    HeaderName::Other(name) => {
                        name.eq_ignore_ascii_case("bcc") || name.eq_ignore_ascii_case("resent-bcc")
                    }
                    _ => false,
                };
                assert!(!bcc, "a Bcc field survived: {h:?}");
            }
        }
        let again = rewrite(&stripped, &strip).expect("the stripped head rewrites");
        assert_eq!(again, stripped, "stripping Bcc twice changed more");
    }
    for r in before
        .iter()
        .map(String::as_str)
        .chain(std::str::from_utf8(data).ok())
    {
        if let Ok(m) = parse_mailbox(r) {
            assert!(
                !m.addr.chars().any(|c| c.is_control() || c.is_whitespace()),
                "accepted {:?}",
                m.addr
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(list) = address_list(text) {
            assert!(list.iter().all(|a| !a.contains(['\r', '\n'])));
        }
    }
});

/// The header block: everything before the first empty line (LF or CRLF endings), with
/// a final line end added when it has none (as postie does before parsing).
fn head(message: &[u8]) -> Vec<u8> {
    let mut start = 0;
    let mut block = message;
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            block = &message[..start];
            break;
        }
        start += line.len();
    }
    let mut out = block.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}
