//! mbox files (RFC 4155) for `postie batch`: where each message starts and ends, and a
//! reader that undoes the mboxrd quoting of body lines while the message streams.
//!
//! A message starts at a line beginning with `From ` (the "From_" line, which `message`
//! drops) and ends where the next one starts; the empty line a writer puts between
//! messages is not part of the message. Quoting is read as mboxrd: a line of one or more
//! `>` followed by `From ` loses one `>`. That also reads mboxo files right for every line
//! mboxo can represent (`>From ` becomes `From `); an mboxo file cannot tell a quoted
//! `From ` from a literal `>From `, and mboxrd's reading is the one that round-trips.
//! Nothing here holds a whole message: the scan reads line by line, the reader a line (at
//! most [`LINE_LIMIT`] bytes) at a time.

use std::io::{self, BufRead, Read};

use anyhow::Result;

use crate::error::Error;

/// Longest piece of a line handled at once; a longer line streams through in pieces, and
/// only its first piece can be a quoted From_ line.
const LINE_LIMIT: u64 = 64 * 1024;

/// One message of an mbox file: byte offsets, From_ line included, separating empty line
/// excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

/// Where the messages of an mbox are. `what` names the file in errors. Fails when
/// something other than empty lines comes before the first From_ line (not an mbox).
#[cfg(test)]
pub fn split(input: impl BufRead, what: &str) -> Result<Vec<Span>> {
    Spans::new(input, what).collect()
}

/// The messages of an mbox, one [`Span`] at a time, as the scan finds them (nothing is
/// kept of the ones before): an error ends it (a read failure, or something other than
/// empty lines before the first From_ line: not an mbox).
pub struct Spans<R> {
    input: R,
    /// Names the file in errors.
    what: String,
    line: Vec<u8>,
    offset: u64,
    /// Length of the last line when it was empty ("\n" or "\r\n"), else 0.
    trailing_empty: u64,
    at_line_start: bool,
    line_no: usize,
    /// Where the message being scanned starts.
    open: Option<u64>,
    done: bool,
}

impl<R: BufRead> Spans<R> {
    pub fn new(input: R, what: &str) -> Spans<R> {
        Spans {
            input,
            what: what.to_string(),
            line: Vec::new(),
            offset: 0,
            trailing_empty: 0,
            at_line_start: true,
            line_no: 0,
            open: None,
            done: false,
        }
    }

    fn fail(&mut self, e: Error) -> Option<Result<Span>> {
        self.done = true;
        Some(Err(e.into()))
    }
}

impl<R: BufRead> Iterator for Spans<R> {
    type Item = Result<Span>;

    fn next(&mut self) -> Option<Result<Span>> {
        if self.done {
            return None;
        }
        loop {
            self.line.clear();
            let n = match (&mut self.input)
                .take(LINE_LIMIT)
                .read_until(b'\n', &mut self.line)
            {
                Ok(n) => n,
                Err(e) => {
                    let e = Error::Io(format!("reading {}: {e}", self.what));
                    return self.fail(e);
                }
            };
            if n == 0 {
                self.done = true;
                let end = self.offset - self.trailing_empty;
                return self.open.take().map(|start| Ok(Span { start, end }));
            }
            let starts_line = self.at_line_start;
            self.at_line_start = self.line.ends_with(b"\n");
            if starts_line {
                self.line_no += 1;
            }
            let empty = self.line == b"\n" || self.line == b"\r\n";
            let mut finished = None;
            if starts_line && self.line.starts_with(b"From ") {
                if let Some(start) = self.open.take() {
                    finished = Some(Span {
                        start,
                        end: self.offset - self.trailing_empty,
                    });
                }
                self.open = Some(self.offset);
            } else if self.open.is_none() && !empty {
                let e = Error::Data(format!(
                    "{} is not an mbox: line {} comes before any \"From \" line",
                    self.what, self.line_no
                ));
                return self.fail(e);
            }
            self.offset += n as u64;
            self.trailing_empty = if starts_line && empty { n as u64 } else { 0 };
            if let Some(span) = finished {
                return Some(Ok(span));
            }
        }
    }
}

/// A reader over one message of an mbox that removes one `>` from lines of the form
/// `>...>From ` (mboxrd).
pub struct Unquote<R> {
    inner: R,
    line: Vec<u8>,
    pos: usize,
    at_line_start: bool,
}

impl<R: BufRead> Unquote<R> {
    pub fn new(inner: R) -> Self {
        Unquote {
            inner,
            line: Vec::new(),
            pos: 0,
            at_line_start: true,
        }
    }
}

/// `>From `, `>>From `, ...: a From_ line quoted once or more.
fn is_quoted_from(line: &[u8]) -> bool {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    quotes > 0 && line[quotes..].starts_with(b"From ")
}

impl<R: BufRead> Read for Unquote<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.line.len() {
            self.line.clear();
            self.pos = 0;
            let n = (&mut self.inner)
                .take(LINE_LIMIT)
                .read_until(b'\n', &mut self.line)?;
            if n == 0 {
                return Ok(0);
            }
            if self.at_line_start && is_quoted_from(&self.line) {
                self.pos = 1;
            }
            self.at_line_start = self.line.ends_with(b"\n");
        }
        let rest = &self.line[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans_of(text: &str) -> Vec<(u64, u64)> {
        split(text.as_bytes(), "test.mbox")
            .unwrap()
            .iter()
            .map(|s| (s.start, s.end))
            .collect()
    }

    #[test]
    fn splits_at_from_lines_and_drops_the_separating_empty_line() {
        let text = "From a@x Mon Jan  1 00:00:00 2026\nSubject: 1\n\none\n\n\
                    From b@x Mon Jan  1 00:00:01 2026\nSubject: 2\n\ntwo\n";
        let first_end = text.find("one\n").unwrap() as u64 + 4;
        let second = text.rfind("From b@x").unwrap() as u64;
        assert_eq!(
            spans_of(text),
            [(0, first_end), (second, text.len() as u64)]
        );
        // CRLF files, leading empty lines, a trailing empty line at the end.
        let text = "\r\nFrom a@x\r\nS: 1\r\n\r\nbody\r\n\r\n";
        assert_eq!(spans_of(text), [(2, text.len() as u64 - 2)]);
        assert!(spans_of("").is_empty());
        assert!(spans_of("\n\n").is_empty());
    }

    #[test]
    fn a_from_inside_a_line_or_quoted_does_not_split() {
        let text = "From a@x\nS: 1\n\nsaid: From here\n>From there\n";
        assert_eq!(spans_of(text), [(0, text.len() as u64)]);
    }

    #[test]
    fn text_before_the_first_from_line_is_not_an_mbox() {
        let err = split(&b"Subject: hi\n\nbody\n"[..], "x.mbox").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::DataErr);
        assert!(err.to_string().contains("x.mbox"), "{err}");
    }

    #[test]
    fn unquotes_one_level_mboxrd() {
        let cases = [
            (">From here\n", "From here\n"),
            (">>From here\n", ">From here\n"),
            (">>>From x\r\n", ">>From x\r\n"),
            ("> From here\n", "> From here\n"),
            (">Fromage\n", ">Fromage\n"),
            ("a >From b\n", "a >From b\n"),
            ("x\n>From y\nz", "x\nFrom y\nz"),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            Unquote::new(input.as_bytes())
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, want, "{input:?}");
        }
    }

    #[test]
    fn long_lines_stream_in_pieces_and_only_line_starts_unquote() {
        let mut input = vec![b'a'; LINE_LIMIT as usize + 10];
        input.extend_from_slice(b">From not a line start\n>From a line start\n");
        let mut out = Vec::new();
        Unquote::new(&input[..]).read_to_end(&mut out).unwrap();
        let mut want = vec![b'a'; LINE_LIMIT as usize + 10];
        want.extend_from_slice(b">From not a line start\nFrom a line start\n");
        assert_eq!(out, want);
    }
}
