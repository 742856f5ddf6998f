//! EHLO capabilities (src/smtp/ehlo.rs) from whatever reply the parser accepts.
//!
//! Oracle: the AUTH mechanisms are upper-case, non-empty and without duplicates; there is
//! at most one extension per line after the first; a STARTTLS line (any case) and only one
//! turns `starttls` on; and the same reply always gives the same capabilities.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postie::smtp::ehlo::Capabilities;
use postie::smtp::reply::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((reply, _))) = parse(data) else {
        return;
    };
    let caps = Capabilities::from_ehlo(&reply);
    for (i, m) in caps.auth.iter().enumerate() {
        assert!(!m.is_empty());
        assert_eq!(*m, m.to_ascii_uppercase());
        assert!(!caps.auth[..i].contains(m), "duplicate mechanism {m}");
        assert!(caps.offers_auth(&m.to_ascii_lowercase()));
    }
    assert!(caps.extensions.len() < reply.lines.len().max(1));
    let starttls = reply.lines.iter().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    assert_eq!(caps.starttls, starttls);
    assert_eq!(Capabilities::from_ehlo(&reply), caps);
});
