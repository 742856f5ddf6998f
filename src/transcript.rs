//! The `-v` transcript, swaks-style (design.md §4), written to stderr as things happen.
//!
//! Markers: `===` information, ` -> ` sent and `<-  ` received in plain text, ` ~> ` and
//! `<~  ` inside TLS, `***` errors. The last line of every reply carries its category in
//! words. Only [`crate::net::Connection`] calls `sent`/`received`, with commands already
//! redacted, so no secret can reach this sink. `-vv` adds the message data lines.

use std::borrow::Cow;
use std::io::Write;

use crate::smtp::reply::Reply;
use crate::trace::SharedTrace;

/// Server text with control characters escaped, so a reply cannot drive the terminal.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\t' => "\t".to_string(),
                c if c.is_control() => c.escape_default().to_string(),
                c => c.to_string(),
            })
            .collect(),
    )
}

pub struct Transcript {
    level: u8,
    out: Box<dyn Write + Send>,
    /// --show-time: each reply's latency after its category.
    show_time: bool,
    trace: SharedTrace,
}

impl Transcript {
    pub fn new(level: u8, out: Box<dyn Write + Send>) -> Self {
        Transcript {
            level,
            out,
            show_time: false,
            trace: SharedTrace::default(),
        }
    }

    /// Show each reply's latency (--show-time).
    pub fn with_times(mut self, show: bool) -> Self {
        self.show_time = show;
        self
    }

    /// What the run observed; the caller keeps a clone to read it afterwards.
    pub fn trace(&self) -> &SharedTrace {
        &self.trace
    }

    pub fn stderr(level: u8) -> Self {
        Transcript::new(level, Box::new(std::io::stderr()))
    }

    /// A transcript that prints nothing.
    pub fn silent() -> Self {
        Transcript::new(0, Box::new(std::io::sink()))
    }

    pub fn level(&self) -> u8 {
        self.level
    }

    fn line(&mut self, min_level: u8, marker: &str, text: &str) {
        if self.level >= min_level {
            // A transcript that cannot be written must not stop the mail.
            let _ = writeln!(self.out, "{marker}{}", printable(text));
        }
    }

    pub fn info(&mut self, text: &str) {
        self.line(1, "=== ", text);
    }

    pub fn error(&mut self, text: &str) {
        self.line(1, "*** ", text);
    }

    /// A command line as sent (already redacted by the caller).
    pub fn sent(&mut self, line: &str, tls: bool) {
        self.line(1, if tls { " ~> " } else { " -> " }, line);
    }

    /// A reply as received, `elapsed` after the command it answers.
    pub fn received(&mut self, reply: &Reply, tls: bool, elapsed: Option<std::time::Duration>) {
        if self.level == 0 {
            return;
        }
        let marker = if tls { "<~  " } else { "<-  " };
        let lines = reply.wire_lines();
        let last = lines.len().saturating_sub(1);
        for (i, l) in lines.iter().enumerate() {
            if i == last {
                let mut category = format!(
                    "{l}   [{}xx {}]",
                    reply.code.severity as u8,
                    reply.code.severity.describe()
                );
                if let (true, Some(d)) = (self.show_time, elapsed) {
                    category.push_str(&format!(" ({:.1} ms)", d.as_secs_f64() * 1000.0));
                }
                self.line(1, marker, &category);
            } else {
                self.line(1, marker, l);
            }
        }
    }

    /// One line of message data as sent (without its CRLF), shown at -vv.
    pub fn data_line(&mut self, line: &[u8], tls: bool) {
        if self.level >= 2 {
            let text = String::from_utf8_lossy(line);
            self.line(2, if tls { " ~> " } else { " -> " }, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(level: u8, f: impl FnOnce(&mut Transcript)) -> String {
        let buf = Shared::default();
        let mut t = Transcript::new(level, Box::new(buf.clone()));
        f(&mut t);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn markers_and_categories() {
        let reply = crate::smtp::reply::parse(b"250-mx.example\r\n250 PIPELINING\r\n")
            .unwrap()
            .unwrap()
            .0;
        let out = capture(1, |t| {
            t.info("Connected");
            t.sent("EHLO me", false);
            t.received(&reply, false, None);
            t.sent("EHLO me", true);
            t.received(&reply, true, None);
            t.error("boom");
            t.data_line(b"Subject: x", true);
        });
        assert_eq!(
            out,
            "=== Connected\n -> EHLO me\n<-  250-mx.example\n<-  250 PIPELINING   [2xx positive completion]\n ~> EHLO me\n<~  250-mx.example\n<~  250 PIPELINING   [2xx positive completion]\n*** boom\n"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(printable("a\u{1b}[31mred\rx"), "a\\u{1b}[31mred\\rx");
        assert_eq!(capture(1, |t| t.error("bell\u{7}")), "*** bell\\u{7}\n");
    }

    #[test]
    fn level_zero_is_silent_and_level_two_shows_data() {
        assert_eq!(capture(0, |t| t.info("x")), "");
        assert_eq!(capture(2, |t| t.data_line(b"hello", false)), " -> hello\n");
    }
}
