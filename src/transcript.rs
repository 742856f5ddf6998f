//! The `-v` transcript, swaks-style (design.md §4), written to stderr as things happen.
//!
//! Markers: `===` information, ` -> ` sent and `<-  ` received in plain text, ` ~> ` and
//! `<~  ` inside TLS, `***` errors. The last line of every reply carries its category in
//! words (RFC 5321 §4.2.1) and, when the reply has one, its enhanced status code explained
//! (RFC 3463, [`crate::smtp::enhanced`]). Only [`crate::net::Connection`] calls
//! `sent`/`received`, with commands already redacted, so no secret can reach this sink.
//! `-vv` adds the message data lines; `--show-time` each reply's latency, which test mode
//! (POSTIE_TEST_MODE) prints as `T` so whole transcripts compare equal.
//!
//! Colour (anstyle) only when asked for or when stderr is a terminal and `NO_COLOR` is not
//! set ([`use_colour`]); it is added after [`printable`] has escaped the server's control
//! characters, so server text can never colour the terminal itself.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use anstyle::{AnsiColor, Style};

use crate::net::certinfo::CertInfo;
use crate::smtp::enhanced;
use crate::smtp::reply::{Reply, Severity};
use crate::trace::{Recorder, Trace};

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

/// What a line is, for its colour.
#[derive(Clone, Copy)]
enum Kind {
    Info,
    Error,
    Sent,
    Received(Severity),
}

impl Kind {
    /// Style of the marker and of the text.
    fn styles(self) -> (Style, Style) {
        let dim = Style::new().dimmed();
        match self {
            Kind::Info => {
                let blue = AnsiColor::Blue.on_default();
                (blue, blue)
            }
            Kind::Error => {
                let red = AnsiColor::Red.on_default().bold();
                (red, red)
            }
            Kind::Sent => (dim, Style::new()),
            Kind::Received(severity) => (
                dim,
                match severity {
                    Severity::PositiveCompletion => AnsiColor::Green,
                    Severity::PositiveIntermediate => AnsiColor::Cyan,
                    Severity::TransientNegative => AnsiColor::Yellow,
                    Severity::PermanentNegative => AnsiColor::Red,
                }
                .on_default(),
            ),
        }
    }
}

pub struct Transcript {
    level: u8,
    out: Box<dyn Write + Send>,
    /// --show-time: each reply's latency after its category.
    show_time: bool,
    /// Test mode: latencies print as `T`, so transcripts are comparable.
    fixed_times: bool,
    colour: bool,
    trace: Recorder,
}

impl Transcript {
    pub fn new(level: u8, out: Box<dyn Write + Send>) -> Self {
        Transcript {
            level,
            out,
            show_time: false,
            fixed_times: false,
            colour: false,
            trace: Recorder::default(),
        }
    }

    /// Show each reply's latency (--show-time).
    pub fn with_times(mut self, show: bool) -> Self {
        self.show_time = show;
        self
    }

    /// Print every latency as `T` (test mode).
    pub fn with_fixed_times(mut self, fixed: bool) -> Self {
        self.fixed_times = fixed;
        self
    }

    /// Colour the lines (see [`use_colour`]).
    pub fn with_colour(mut self, colour: bool) -> Self {
        self.colour = colour;
        self
    }

    /// What this connection observed; [`Transcript::handing_back`] says who gets it at
    /// the end.
    pub fn trace(&self) -> &Recorder {
        &self.trace
    }

    /// When this transcript ends (with its connection, or with a connection that never
    /// opened), its trace goes to `back` ([`crate::trace::handed_back`] reads it).
    pub fn handing_back(mut self, back: std::sync::mpsc::Sender<Trace>) -> Self {
        self.trace = Recorder::handing_back(back);
        self
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

    fn line(&mut self, min_level: u8, kind: Kind, marker: &str, text: &str) {
        if self.level < min_level {
            return;
        }
        let text = printable(text);
        // A transcript that cannot be written must not stop the mail.
        let _ = if self.colour {
            let (m, t) = kind.styles();
            if m == t {
                writeln!(self.out, "{m}{marker}{text}{m:#}")
            } else {
                writeln!(self.out, "{m}{marker}{m:#}{t}{text}{t:#}")
            }
        } else {
            writeln!(self.out, "{marker}{text}")
        };
    }

    pub fn info(&mut self, text: &str) {
        self.line(1, Kind::Info, "=== ", text);
    }

    pub fn error(&mut self, text: &str) {
        self.line(1, Kind::Error, "*** ", text);
    }

    /// A command line as sent (already redacted by the caller).
    pub fn sent(&mut self, line: &str, tls: bool) {
        self.line(1, Kind::Sent, if tls { " ~> " } else { " -> " }, line);
    }

    /// A latency as printed: "12.3 ms", or "T ms" in test mode.
    pub fn millis(&self, d: Duration) -> String {
        if self.fixed_times {
            "T ms".to_string()
        } else {
            format!("{:.1} ms", d.as_secs_f64() * 1000.0)
        }
    }

    /// A reply as received, `elapsed` after the command it answers.
    pub fn received(&mut self, reply: &Reply, tls: bool, elapsed: Option<Duration>) {
        if self.level == 0 {
            return;
        }
        let marker = if tls { "<~  " } else { "<-  " };
        let kind = Kind::Received(reply.code.severity);
        let lines = reply.wire_lines();
        let last = lines.len().saturating_sub(1);
        for (i, l) in lines.iter().enumerate() {
            if i == last {
                let severity = reply.code.severity;
                let mut category = format!("{l}   [{}xx {}", severity as u8, severity.describe());
                if let Some(code) = &reply.enhanced {
                    category.push_str(&format!("; {code} {}", enhanced::describe(code)));
                }
                category.push(']');
                if let (true, Some(d)) = (self.show_time, elapsed) {
                    category.push_str(&format!(" ({})", self.millis(d)));
                }
                self.line(1, kind, marker, &category);
            } else {
                self.line(1, kind, marker, l);
            }
        }
    }

    /// One line of message data as sent (without its CRLF), shown at -vv.
    pub fn data_line(&mut self, line: &[u8], tls: bool) {
        if self.level >= 2 {
            let text = String::from_utf8_lossy(line);
            self.line(2, Kind::Sent, if tls { " ~> " } else { " -> " }, &text);
        }
    }

    /// The server certificate, one fact a line (subject, issuer, names, validity, SHA-256).
    pub fn certificate(&mut self, cert: &CertInfo) {
        let or_none = |s: &str| {
            if s.is_empty() {
                "(none)".to_string()
            } else {
                s.to_string()
            }
        };
        self.info(&format!("Certificate: {}", or_none(&cert.subject)));
        self.info(&format!("  issuer: {}", or_none(&cert.issuer)));
        self.info(&format!("  names: {}", or_none(&cert.sans.join(", "))));
        self.info(&format!(
            "  valid: {} to {} ({})",
            cert.not_before,
            cert.not_after,
            cert.remaining()
        ));
        self.info(&format!("  SHA-256: {}", cert.sha256));
    }

    /// `--show-time`'s last line: the whole run and the part spent waiting for replies.
    pub fn total(&mut self, elapsed: Duration, waited: Duration) {
        if self.show_time {
            let text = format!(
                "Total: {}, of which {} waiting for replies",
                self.millis(elapsed),
                self.millis(waited)
            );
            self.info(&text);
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

    fn capture_with(
        level: u8,
        setup: impl FnOnce(Transcript) -> Transcript,
        f: impl FnOnce(&mut Transcript),
    ) -> String {
        let buf = Shared::default();
        let mut t = setup(Transcript::new(level, Box::new(buf.clone())));
        f(&mut t);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn capture(level: u8, f: impl FnOnce(&mut Transcript)) -> String {
        capture_with(level, |t| t, f)
    }

    fn reply(wire: &[u8]) -> Reply {
        crate::smtp::reply::parse(wire).unwrap().unwrap().0
    }

    #[test]
    fn markers_and_categories() {
        let reply = reply(b"250-mx.example\r\n250 PIPELINING\r\n");
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
    fn enhanced_codes_are_explained() {
        for (wire, line) in [
            (
                &b"550 5.1.1 no such user\r\n"[..],
                "<-  550 5.1.1 no such user   [5xx permanent negative completion; 5.1.1 bad destination mailbox address]\n",
            ),
            (
                b"452-4.2.2 over quota\r\n452 4.2.2 try later\r\n",
                "<-  452-4.2.2 over quota\n<-  452 4.2.2 try later   [4xx transient negative completion; 4.2.2 mailbox full]\n",
            ),
            (
                b"535 5.7.8 nope\r\n",
                "<-  535 5.7.8 nope   [5xx permanent negative completion; 5.7.8 authentication credentials invalid]\n",
            ),
            (
                b"250 2.1.99 odd\r\n",
                "<-  250 2.1.99 odd   [2xx positive completion; 2.1.99 other address status]\n",
            ),
            (b"354 go ahead\r\n", "<-  354 go ahead   [3xx positive intermediate]\n"),
        ] {
            let r = reply(wire);
            assert_eq!(capture(1, |t| t.received(&r, false, None)), line);
        }
    }

    #[test]
    fn latencies_and_total() {
        let r = reply(b"250 ok\r\n");
        let ms = Some(Duration::from_micros(12_345));
        let (total, waited) = (Duration::from_millis(1500), Duration::from_millis(20));
        for (show, fixed, expected) in [
            (false, false, "<-  250 ok   [2xx positive completion]\n"),
            (false, true, "<-  250 ok   [2xx positive completion]\n"),
            (
                true,
                false,
                "<-  250 ok   [2xx positive completion] (12.3 ms)\n=== Total: 1500.0 ms, of which 20.0 ms waiting for replies\n",
            ),
            (
                true,
                true,
                "<-  250 ok   [2xx positive completion] (T ms)\n=== Total: T ms, of which T ms waiting for replies\n",
            ),
        ] {
            let out = capture_with(
                1,
                |t| t.with_times(show).with_fixed_times(fixed),
                |t| {
                    t.received(&r, false, ms);
                    t.total(total, waited);
                },
            );
            assert_eq!(out, expected, "show {show} fixed {fixed}");
        }
        // No latency known: nothing printed for it.
        let out = capture_with(1, |t| t.with_times(true), |t| t.received(&r, false, None));
        assert_eq!(out, "<-  250 ok   [2xx positive completion]\n");
        // Not verbose: no total either.
        assert_eq!(
            capture_with(0, |t| t.with_times(true), |t| t.total(total, waited)),
            ""
        );
    }

    #[test]
    fn certificate_lines() {
        let cert = CertInfo {
            subject: "CN=localhost".into(),
            issuer: "CN=postie test CA".into(),
            sans: vec!["DNS:localhost".into(), "IP:::1".into()],
            not_before: "2026-11-23T10:00:00Z".into(),
            not_after: "2027-11-23T10:00:00Z".into(),
            days_left: 365,
            sha256: "AB:CD".into(),
        };
        assert_eq!(
            capture(1, |t| t.certificate(&cert)),
            "=== Certificate: CN=localhost\n===   issuer: CN=postie test CA\n===   names: DNS:localhost, IP:::1\n===   valid: 2026-11-23T10:00:00Z to 2027-11-23T10:00:00Z (365 days left)\n===   SHA-256: AB:CD\n"
        );
        let bare = CertInfo {
            subject: String::new(),
            sans: Vec::new(),
            days_left: -2,
            ..cert
        };
        let out = capture(1, |t| t.certificate(&bare));
        assert!(out.starts_with("=== Certificate: (none)\n"), "{out}");
        assert!(out.contains("===   names: (none)\n"), "{out}");
        assert!(out.contains("(expired 2 days ago)"), "{out}");
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

    #[test]
    fn coloured_lines_have_escapes_and_plain_lines_none() {
        let ok = reply(b"250 ok\r\n");
        let bad = reply(b"550 5.1.1 \x1b[2Jno\r\n");
        let script = |t: &mut Transcript| {
            t.info("Connected");
            t.sent("MAIL FROM:<a@b>", false);
            t.received(&ok, false, None);
            t.received(&bad, true, None);
            t.error("boom");
        };
        let plain = capture_with(1, |t| t.with_colour(false), script);
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        let coloured = capture_with(1, |t| t.with_colour(true), script);
        // Without the escapes, the coloured transcript is the plain one.
        let mut stripped = String::new();
        let mut chars = coloured.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                stripped.push(c);
            }
        }
        assert_eq!(stripped, plain);
        let lines: Vec<&str> = coloured.lines().collect();
        let blue = AnsiColor::Blue.on_default();
        let red_bold = AnsiColor::Red.on_default().bold();
        let dim = Style::new().dimmed();
        let green = AnsiColor::Green.on_default();
        let red = AnsiColor::Red.on_default();
        assert_eq!(lines[0], format!("{blue}=== Connected{blue:#}"));
        assert_eq!(lines[1], format!("{dim} -> {dim:#}MAIL FROM:<a@b>"));
        assert!(lines[2].starts_with(&format!("{dim}<-  {dim:#}{green}250 ok")));
        // The server's own escape stays escaped inside the red.
        assert!(
            lines[3].starts_with(&format!("{dim}<~  {dim:#}{red}550 5.1.1 \\u{{1b}}[2Jno")),
            "{:?}",
            lines[3]
        );
        assert_eq!(lines[4], format!("{red_bold}*** boom{red_bold:#}"));
    }
}
