//! SMTP transparency for the DATA phase (RFC 5321 §4.5.2 dot-stuffing, §2.3.8 lines end
//! in CRLF, §4.1.1.4 the end-of-data indicator).
//!
//! This module owns turning arbitrary message bytes into DATA-phase wire bytes: bare LF
//! and bare CR become CRLF, a '.' that starts a line is doubled, and [`DotStuffer::finish`]
//! terminates the last line and appends ".\r\n". [`DotStuffer`] streams: it holds two bits
//! of state and a small scratch buffer, so a message of any size passes through in
//! bounded memory, and its output does not depend on how the input was split into
//! writes. It must not interpret the message (headers, MIME) or read replies; the
//! session sends DATA, then this, then waits for the final reply.
//!
//! After an error from the inner writer the stuffer refuses further writes and `finish`:
//! sending ".\r\n" after a lost chunk would make the server accept a truncated message.
//!
//! The same state machine serves BDAT (RFC 3030 CHUNKING), where the byte counts delimit
//! the data: [`DotStuffer::crlf_only`] normalises line endings the same way but doubles no
//! dot and writes no end-of-data line, so a message sent with DATA or with BDAT arrives as
//! the same bytes. A BINARYMIME body (RFC 3030 §3) is not touched at all: it does not
//! pass through here.

use std::io::{self, Write};

/// Input is processed in pieces of this size, so the scratch buffer stays small
/// (worst case: every byte doubles, a bare CR or LF becomes CRLF).
const PIECE: usize = 8 * 1024;

/// The transparency state machine, shared by [`DotStuffer`] and [`encode`].
#[derive(Debug, Clone, Copy)]
struct Stuffing {
    /// The next byte starts a line (true at the beginning of the message).
    at_line_start: bool,
    /// The previous byte was a CR whose meaning depends on the next byte.
    pending_cr: bool,
    /// DATA (true): double a leading '.', end with ".\r\n". BDAT (false): line ends only.
    stuff: bool,
}

impl Stuffing {
    const fn new(stuff: bool) -> Stuffing {
        Stuffing {
            at_line_start: true,
            pending_cr: false,
            stuff,
        }
    }

    /// Appends the wire form of `input` to `out`. Scans for the next CR or LF with memchr
    /// and copies the span before it whole: only line starts and line ends are looked at
    /// byte by byte.
    fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 32 + 4);
        while let Some(&first) = input.first() {
            if self.pending_cr {
                self.pending_cr = false;
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
                if first == b'\n' {
                    // CRLF: already written.
                    input = &input[1..];
                    continue;
                }
                // A bare CR ended a line; `first` starts the next one.
            }
            if self.at_line_start && self.stuff && first == b'.' {
                // The doubling; the dot itself goes out with the span below.
                out.push(b'.');
            }
            match memchr::memchr2(b'\r', b'\n', input) {
                None => {
                    out.extend_from_slice(input);
                    self.at_line_start = false;
                    return;
                }
                Some(i) => {
                    out.extend_from_slice(&input[..i]);
                    if input[i] == b'\n' {
                        out.extend_from_slice(b"\r\n");
                        self.at_line_start = true;
                    } else {
                        self.pending_cr = true;
                        self.at_line_start = i == 0 && self.at_line_start;
                    }
                    input = &input[i + 1..];
                }
            }
        }
    }

    /// Appends what ends the data: a pending CR or unterminated last line becomes a
    /// line end, then (DATA only) the end-of-data line ".\r\n".
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        if self.stuff {
            out.extend_from_slice(b".\r\n");
        }
        *self = Stuffing::new(self.stuff);
    }
}

/// Streaming dot-stuffer around the connection's writer; see the module docs.
pub struct DotStuffer<W: Write> {
    inner: W,
    state: Stuffing,
    /// Reused output buffer for one piece of input (at most 2 × [`PIECE`] bytes).
    scratch: Vec<u8>,
    bytes_in: u64,
    /// Set when the inner writer failed: the data stream is incomplete.
    failed: bool,
}

impl<W: Write> DotStuffer<W> {
    /// DATA: CRLF line ends, dot-stuffing, and ".\r\n" at the end.
    pub fn new(inner: W) -> Self {
        DotStuffer::with(inner, true)
    }

    /// BDAT: CRLF line ends only (no dot-stuffing, no end-of-data line); `finish` only
    /// terminates an unterminated last line.
    pub fn crlf_only(inner: W) -> Self {
        DotStuffer::with(inner, false)
    }

    fn with(inner: W, stuff: bool) -> Self {
        DotStuffer {
            inner,
            state: Stuffing::new(stuff),
            scratch: Vec::new(),
            bytes_in: 0,
            failed: false,
        }
    }

    /// Ends the data: adds CRLF if the last line was not terminated, then ".\r\n"
    /// (DATA only); flushes; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.check()?;
        let mut tail = Vec::with_capacity(5);
        self.state.end(&mut tail);
        self.inner.write_all(&tail)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// The inner writer, e.g. to take what was written into a `Vec` so far (BDAT
    /// chunks). Bytes still pending (a CR at the very end) stay in the stuffer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Message bytes consumed so far (for reporting).
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    fn check(&self) -> io::Result<()> {
        if self.failed {
            Err(io::Error::other(
                "an earlier write of the message data failed; the data is incomplete",
            ))
        } else {
            Ok(())
        }
    }
}

impl<W: Write> Write for DotStuffer<W> {
    /// Consumes all of `buf`, writing the stuffed bytes with `write_all` on the inner
    /// writer, one piece of at most [`PIECE`] input bytes at a time.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        for piece in buf.chunks(PIECE) {
            self.scratch.clear();
            self.state.push(piece, &mut self.scratch);
            if let Err(e) = self.inner.write_all(&self.scratch) {
                self.failed = true;
                return Err(e);
            }
            self.bytes_in += piece.len() as u64;
        }
        Ok(buf.len())
    }

    /// Flushes the inner writer. A CR at the very end stays pending (its meaning depends
    /// on the next byte) until the next write or `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

/// BDAT line-end normalisation that appends to the caller's buffer: the chunk being built
/// is the only copy of the data (no scratch buffer, no inner writer).
#[derive(Debug)]
pub struct Crlf(Stuffing);

impl Default for Crlf {
    fn default() -> Self {
        Crlf(Stuffing::new(false))
    }
}

impl Crlf {
    /// Appends `input` with its line ends made CRLF (a CR at the very end stays pending).
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.0.push(input, out);
    }

    /// Ends the data: a pending CR or an unterminated last line gets its CRLF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.0.end(out);
    }
}

/// One-shot convenience used by tests and small messages: the complete DATA-phase
/// bytes for `message`, including the final ".\r\n".
pub fn encode(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 16 + 5);
    let mut state = Stuffing::new(true);
    state.push(message, &mut out);
    state.end(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undoes the stuffing (test only): the message lines, each with CRLF, up to the
    /// end-of-data line, which must be the last thing in `wire`.
    fn decode(wire: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut rest = wire;
        loop {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("CRLF-terminated line");
            let line = &rest[..end];
            rest = &rest[end + 2..];
            assert!(
                !line.contains(&b'\r') && !line.contains(&b'\n'),
                "bare CR/LF in {line:?}"
            );
            if line == b"." {
                assert!(rest.is_empty(), "bytes after the end of data");
                return body;
            }
            body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            body.extend_from_slice(b"\r\n");
        }
    }

    /// What the message's lines are, independently of the encoder: CRLF, then CR, then
    /// LF each become one line end, written as CRLF; a last line without one gets one.
    fn canonical(message: &[u8]) -> Vec<u8> {
        fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(from) {
                    out.extend_from_slice(to);
                    i += from.len();
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            out
        }
        let lf = replace(&replace(message, b"\r\n", b"\n"), b"\r", b"\n");
        let mut out = replace(&lf, b"\n", b"\r\n");
        if !out.is_empty() && !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    const TABLE: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\n", b"a\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".a\n", b"..a\r\n.\r\n"),
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"x\r", b"x\r\n.\r\n"),
        (b"a\rb", b"a\r\nb\r\n.\r\n"),
        (b"\r\n\r\n", b"\r\n\r\n.\r\n"),
        (b"..", b"...\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\nb\nc\r\nd\n", b"a\r\nb\r\nc\r\nd\r\n.\r\n"),
        (b"..x\n..\r\n", b"...x\r\n...\r\n.\r\n"),
        (b"a.b\n x.\n", b"a.b\r\n x.\r\n.\r\n"),
        (b"\r", b"\r\n.\r\n"),
        (b"\n", b"\r\n.\r\n"),
        (b"\r\r\n", b"\r\n\r\n.\r\n"),
        (b"\n\r", b"\r\n\r\n.\r\n"),
        (b"\r.\r.", b"\r\n..\r\n..\r\n.\r\n"),
        (b"x\r.", b"x\r\n..\r\n.\r\n"),
        (b"\r\n.", b"\r\n..\r\n.\r\n"),
        (b"\xff\x00.\n.\xfe", b"\xff\x00.\r\n..\xfe\r\n.\r\n"),
    ];

    fn through_stuffer(chunks: &[&[u8]]) -> Vec<u8> {
        let mut stuffer = DotStuffer::new(Vec::new());
        let mut total = 0;
        for chunk in chunks {
            assert_eq!(stuffer.write(chunk).unwrap(), chunk.len());
            total += chunk.len() as u64;
            assert_eq!(stuffer.bytes_in(), total);
        }
        stuffer.finish().unwrap()
    }

    /// The byte-at-a-time state machine the span scanner replaced, kept as an oracle.
    fn reference(message: &[u8], stuff: bool) -> Vec<u8> {
        let (mut at_line_start, mut pending_cr) = (true, false);
        let mut out = Vec::new();
        for &byte in message {
            if pending_cr {
                pending_cr = false;
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\r' => pending_cr = true,
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    at_line_start = true;
                }
                b'.' if at_line_start && stuff => {
                    out.extend_from_slice(b"..");
                    at_line_start = false;
                }
                _ => {
                    out.push(byte);
                    at_line_start = false;
                }
            }
        }
        if pending_cr || !at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        if stuff {
            out.extend_from_slice(b".\r\n");
        }
        out
    }

    /// Span scanning gives the byte-at-a-time answer on inputs dense in dots, CRs and
    /// LFs, fed whole and in odd pieces, for DATA and for BDAT.
    #[test]
    fn span_scanning_matches_the_byte_machine() {
        let alphabet = b".\r\n.a\r\nb..";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..400 {
            let len = (round * 7) % 300;
            let msg: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            assert_eq!(encode(&msg), reference(&msg, true), "{msg:?}");
            let piece = 1 + round % 13;
            let mut crlf = Crlf::default();
            let mut out = Vec::new();
            for p in msg.chunks(piece) {
                crlf.push(p, &mut out);
            }
            crlf.finish(&mut out);
            assert_eq!(out, reference(&msg, false), "{msg:?} in pieces of {piece}");
        }
    }

    #[test]
    fn table() {
        for (input, expected) in TABLE {
            let show = |b: &[u8]| String::from_utf8_lossy(b).escape_debug().to_string();
            assert_eq!(
                show(&encode(input)),
                show(expected),
                "input {}",
                show(input)
            );
            assert_eq!(
                through_stuffer(&[input]),
                *expected,
                "input {}",
                show(input)
            );
            // Round trip through an independent decoder.
            assert_eq!(decode(expected), canonical(input), "input {}", show(input));
        }
    }

    #[test]
    fn every_split_point_and_byte_at_a_time() {
        for (input, expected) in TABLE {
            for split in 0..=input.len() {
                let (a, b) = input.split_at(split);
                assert_eq!(
                    through_stuffer(&[a, b]),
                    *expected,
                    "{input:?} split at {split}"
                );
                for split2 in split..=input.len() {
                    let (b1, b2) = input[split..].split_at(split2 - split);
                    assert_eq!(
                        through_stuffer(&[a, b1, b2]),
                        *expected,
                        "{input:?} at {split},{split2}"
                    );
                }
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(
                through_stuffer(&bytes),
                *expected,
                "{input:?} byte at a time"
            );
        }
    }

    /// Deterministic pseudo-random messages over a hostile alphabet, cut into random
    /// chunks: the stream equals `encode`, and decoding gives the canonical lines.
    #[test]
    fn pseudo_random_chunking() {
        let mut state: u64 = 0x0ddc_0ffe_e15e_a5e5;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        const ALPHABET: &[u8] = b"..\r\r\n\nab";
        for _ in 0..2_000 {
            let len = next() % 40;
            let input: Vec<u8> = (0..len)
                .map(|_| ALPHABET[next() % ALPHABET.len()])
                .collect();
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(1 + next() % rest.len());
                chunks.push(chunk);
                rest = tail;
            }
            let wire = encode(&input);
            assert_eq!(through_stuffer(&chunks), wire, "{input:?}");
            assert_eq!(decode(&wire), canonical(&input), "{input:?}");
        }
    }

    #[test]
    fn one_megabyte_in_8k_chunks_equals_encode() {
        let mut body = Vec::with_capacity(1 << 20);
        let mut line = 0u32;
        while body.len() < 1 << 20 {
            // Line endings of all kinds, dot lines, and CRs that land on chunk edges.
            let ending: &[u8] = match line % 4 {
                0 => b"\r\n",
                1 => b"\n",
                2 => b"\r",
                _ => b"\r\n",
            };
            if line.is_multiple_of(7) {
                body.push(b'.');
            }
            body.extend_from_slice(format!("line {line} of the body").as_bytes());
            body.extend_from_slice(ending);
            line += 1;
        }
        body.truncate(1 << 20);
        let mut stuffer = DotStuffer::new(CountingWriter::default());
        for chunk in body.chunks(8 * 1024) {
            stuffer.write_all(chunk).unwrap();
        }
        assert_eq!(stuffer.bytes_in(), 1 << 20);
        let writer = stuffer.finish().unwrap();
        assert_eq!(writer.data, encode(&body));
        assert_eq!(decode(&writer.data), canonical(&body));
        // One inner write per 8 KiB piece (+ the end), not one per byte.
        assert!(writer.writes <= 128 + 1, "{} writes", writer.writes);
        assert_eq!(writer.flushes, 1);
    }

    #[test]
    fn large_single_write_uses_bounded_pieces() {
        let body = vec![b'x'; 100_000];
        let mut stuffer = DotStuffer::new(CountingWriter::default());
        stuffer.write_all(&body).unwrap();
        assert!(stuffer.scratch.capacity() <= 4 * PIECE);
        let writer = stuffer.finish().unwrap();
        assert_eq!(writer.writes, 100_000usize.div_ceil(PIECE) + 1);
        assert_eq!(writer.data.len(), 100_000 + 5);
    }

    #[derive(Default)]
    struct CountingWriter {
        data: Vec<u8>,
        writes: usize,
        flushes: usize,
    }

    impl Write for CountingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.data.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    /// Accepts `budget` bytes, then fails every write.
    struct FailingWriter {
        budget: usize,
        data: Vec<u8>,
    }

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            self.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_poisons_the_stuffer() {
        let mut writer = FailingWriter {
            budget: 4,
            data: Vec::new(),
        };
        let mut stuffer = DotStuffer::new(&mut writer);
        assert_eq!(stuffer.write(b"ab\n").unwrap(), 3);
        let err = stuffer.write(b"cd\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(stuffer.bytes_in(), 3);
        // Even if the writer recovers, nothing more is sent and no end-of-data is written.
        stuffer.inner.budget = 100;
        assert!(stuffer.write(b"ef\n").is_err());
        assert!(stuffer.flush().is_err());
        assert!(stuffer.finish().is_err());
        assert_eq!(writer.data, b"ab\r\n");
    }

    /// BDAT: the same line ends as DATA, no dot doubled, no end-of-data line, for every
    /// split of every table input.
    #[test]
    fn crlf_only_normalises_without_stuffing() {
        for (input, _) in TABLE {
            let want = canonical(input);
            for split in 0..=input.len() {
                let (a, b) = input.split_at(split);
                let mut normaliser = DotStuffer::crlf_only(Vec::new());
                normaliser.write_all(a).unwrap();
                normaliser.write_all(b).unwrap();
                assert_eq!(
                    normaliser.finish().unwrap(),
                    want,
                    "{input:?} split at {split}"
                );
            }
        }
        let mut normaliser = DotStuffer::crlf_only(Vec::new());
        normaliser.write_all(b".\n..x\r.").unwrap();
        assert_eq!(normaliser.finish().unwrap(), b".\r\n..x\r\n.\r\n");
        assert_eq!(DotStuffer::crlf_only(Vec::new()).finish().unwrap(), b"");
    }

    #[test]
    fn finish_without_writes_and_pending_cr_across_flush() {
        assert_eq!(DotStuffer::new(Vec::new()).finish().unwrap(), b".\r\n");
        let mut stuffer = DotStuffer::new(Vec::new());
        stuffer.write_all(b"a\r").unwrap();
        stuffer.flush().unwrap();
        assert_eq!(stuffer.inner, b"a");
        stuffer.write_all(b"\n.b").unwrap();
        assert_eq!(stuffer.finish().unwrap(), b"a\r\n..b\r\n.\r\n");
    }
}
