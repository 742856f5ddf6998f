//! The SMTP reply parser (src/smtp/reply.rs) on arbitrary server bytes.
//!
//! Oracle, beyond "no panic": a complete reply's consumed length is within the input and
//! not zero; parsing just those bytes gives the same reply (bytes after it do not matter);
//! every shorter prefix is "need more bytes", never a different answer (the connection
//! feeds the parser whatever a read returned); and the reply rebuilt from
//! `Reply::wire_lines` parses back to itself (unless lossy decoding, which turns one
//! invalid byte into a 3-byte U+FFFD, made a rebuilt line longer than the limit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postie::smtp::reply::{parse, MAX_LINE_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((reply, used))) = parse(data) else {
        return;
    };
    assert!(
        used > 0 && used <= data.len(),
        "consumed {used} of {}",
        data.len()
    );
    assert!(!reply.lines.is_empty());
    let alone = parse(&data[..used]).expect("the reply alone parses");
    assert_eq!(
        alone,
        Some((reply.clone(), used)),
        "bytes after the reply changed it"
    );
    // Prefixes ending before the last line's newline are incomplete. (Checking every
    // prefix is quadratic; a few cut points are enough for the fuzzer to find a bug.)
    for cut in [0, 1, used / 2, used.saturating_sub(2), used - 1] {
        if cut < used {
            assert_eq!(parse(&data[..cut]), Ok(None), "prefix of {cut} bytes");
        }
    }
    let lines = reply.wire_lines();
    if lines.iter().any(|l| l.len() > MAX_LINE_LEN) {
        return;
    }
    let mut wire = Vec::new();
    for line in lines {
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    let again = parse(&wire).expect("rebuilt reply parses");
    assert_eq!(again, Some((reply, wire.len())), "rebuilt reply differs");
});
