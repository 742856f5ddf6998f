//! The DATA transparency codec (src/message/wire.rs `DotStuffer`, RFC 5321 §4.5.2).
//!
//! Oracle: stuffing the message in arbitrary pieces gives exactly `wire::encode` of the
//! whole; the output is CRLF-only, ends with the one end-of-data line ".", and no earlier
//! line is "."; and un-stuffing it (drop the end line, drop one leading dot per line)
//! gives the input with its line endings made CRLF and a final CRLF added when missing.
//! The first 8 input bytes seed the piece sizes; the rest is the message.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use postie::message::wire::{encode, DotStuffer};

fuzz_target!(|data: &[u8]| {
    let (seed, message) = data.split_at(data.len().min(8));
    let mut seed = seed.iter().fold(0x9e37_79b9_7f4a_7c15u64, |s, &b| {
        s.rotate_left(8) ^ u64::from(b)
    });
    let whole = encode(message);

    // Arbitrary pieces (0 to 63 bytes; empty writes included), with flushes now and then.
    let mut stuffer = DotStuffer::new(Vec::new());
    let mut rest = message;
    while !rest.is_empty() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = ((seed >> 33) % 64) as usize;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        stuffer.write_all(piece).expect("write to a Vec");
        if seed & 0x10_0000 != 0 {
            stuffer.flush().expect("flush a Vec");
        }
        rest = tail;
    }
    assert_eq!(stuffer.bytes_in(), message.len() as u64);
    let streamed = stuffer.finish().expect("finish to a Vec");
    assert_eq!(streamed, whole, "piecewise stuffing differs from the whole");

    // CRLF only, ending in the one "." line.
    for (i, &b) in whole.iter().enumerate() {
        match b {
            b'\n' => assert!(i > 0 && whole[i - 1] == b'\r', "bare LF at {i}"),
            b'\r' => assert_eq!(whole.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
            _ => {}
        }
    }
    assert!(whole.ends_with(b".\r\n"));
    let body = &whole[..whole.len() - 3];
    assert!(body.is_empty() || body.ends_with(b"\r\n"));
    let mut unstuffed = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        assert_ne!(line, b".\r\n", "an end-of-data line inside the data");
        if line.starts_with(b".") {
            assert!(line.starts_with(b".."), "a leading dot was not doubled");
        }
        unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    assert_eq!(
        unstuffed,
        normalized(message),
        "un-stuffing did not recover the input"
    );
});

/// `message` with CRLF, bare CR and bare LF all made CRLF, and a CRLF added to a last line
/// that has none.
fn normalized(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
