//! SMTP commands as types; `Display` is the exact wire form without CRLF (RFC 5321
//! §4.1.1 command syntax, §4.1.2 paths; RFC 3207 STARTTLS; RFC 4954 AUTH; RFC 2033 §4.1
//! LHLO, LMTP's EHLO; RFC 3030 BDAT).
//!
//! This module owns the spelling of every command postie sends and how each one may
//! appear in a transcript ([`Command::redacted`]). It does no I/O and no validation of
//! addresses (the envelope does that), but it will never emit a line break inside a
//! command: CR and LF in any caller-supplied field are written as spaces, so a value that
//! slipped past validation cannot inject a second command. AUTH payloads are secrets:
//! `redacted` masks them, and the connection must log `redacted()`, never `Display`.

use std::fmt;

/// What a transcript shows instead of an AUTH payload.
const MASK: &str = "********";

/// One command line of the SMTP dialogue. Addresses are given without angle brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// LMTP's greeting in place of EHLO (RFC 2033 §4.1); same syntax, same reply.
    Lhlo(String),
    StartTls,
    /// `initial_response` is base64 already; `Some("")` is sent as "=" (RFC 4954 §4).
    Auth {
        mechanism: String,
        initial_response: Option<String>,
    },
    /// A base64 line in an AUTH exchange.
    AuthResponse(String),
    /// "MAIL FROM:<a@b> SIZE=123 BODY=8BITMIME"; an empty path is the null reverse path.
    Mail {
        reverse_path: String,
        params: Vec<String>,
    },
    /// "RCPT TO:<x@y>" plus parameters.
    Rcpt {
        forward_path: String,
        params: Vec<String>,
    },
    Data,
    /// "BDAT 4096" or "BDAT 12 LAST" (RFC 3030 §2): exactly `size` bytes of message follow
    /// the command line.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Quit,
}

/// Writes a caller-supplied field with CR and LF replaced by spaces.
struct OneLine<'a>(&'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        // Bounded by the field's length: each pass consumes at least one character.
        while let Some(i) = rest.find(['\r', '\n']) {
            let (clean, tail) = rest.split_at(i);
            f.write_str(clean)?;
            f.write_str(" ")?;
            rest = tail.get(1..).unwrap_or_default();
        }
        f.write_str(rest)
    }
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[String]) -> fmt::Result {
    for param in params {
        write!(f, " {}", OneLine(param))?;
    }
    Ok(())
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ehlo(domain) => write!(f, "EHLO {}", OneLine(domain)),
            Command::Helo(domain) => write!(f, "HELO {}", OneLine(domain)),
            Command::Lhlo(domain) => write!(f, "LHLO {}", OneLine(domain)),
            Command::StartTls => f.write_str("STARTTLS"),
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                write!(f, "AUTH {}", OneLine(mechanism))?;
                match initial_response.as_deref() {
                    None => Ok(()),
                    Some("") => f.write_str(" ="),
                    Some(payload) => write!(f, " {}", OneLine(payload)),
                }
            }
            Command::AuthResponse(payload) => write!(f, "{}", OneLine(payload)),
            Command::Mail {
                reverse_path,
                params,
            } => {
                write!(f, "MAIL FROM:<{}>", OneLine(reverse_path))?;
                write_params(f, params)
            }
            Command::Rcpt {
                forward_path,
                params,
            } => {
                write!(f, "RCPT TO:<{}>", OneLine(forward_path))?;
                write_params(f, params)
            }
            Command::Data => f.write_str("DATA"),
            Command::Bdat { size, last } => {
                write!(f, "BDAT {size}")?;
                if *last {
                    f.write_str(" LAST")?;
                }
                Ok(())
            }
            Command::Rset => f.write_str("RSET"),
            Command::Quit => f.write_str("QUIT"),
        }
    }
}

impl Command {
    /// The bytes to send: `Display` followed by CRLF.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut wire = self.to_string().into_bytes();
        wire.extend_from_slice(b"\r\n");
        wire
    }

    /// True when the wire form carries a secret (an AUTH payload).
    pub fn is_sensitive(&self) -> bool {
        matches!(
            self,
            Command::Auth {
                initial_response: Some(_),
                ..
            } | Command::AuthResponse(_)
        )
    }

    /// What a transcript may show: AUTH keeps its mechanism but masks the payload
    /// ("AUTH PLAIN ********", "AUTH LOGIN" unchanged when it has no initial response);
    /// an AuthResponse is "********"; everything else equals `Display`.
    pub fn redacted(&self) -> String {
        match self {
            Command::Auth {
                mechanism,
                initial_response: Some(_),
            } => format!("AUTH {} {MASK}", OneLine(mechanism)),
            Command::AuthResponse(_) => MASK.to_string(),
            other => other.to_string(),
        }
    }

    /// The command's verb for error messages ("MAIL"); an AuthResponse counts as "AUTH".
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::Lhlo(_) => "LHLO",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } | Command::AuthResponse(_) => "AUTH",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn auth(mechanism: &str, initial: Option<&str>) -> Command {
        Command::Auth {
            mechanism: mechanism.into(),
            initial_response: initial.map(String::from),
        }
    }

    fn mail(path: &str, params: &[&str]) -> Command {
        Command::Mail {
            reverse_path: path.into(),
            params: strings(params),
        }
    }

    fn rcpt(path: &str, params: &[&str]) -> Command {
        Command::Rcpt {
            forward_path: path.into(),
            params: strings(params),
        }
    }

    #[test]
    fn wire_forms() {
        let cases: Vec<(Command, &[u8], &str)> = vec![
            (
                Command::Ehlo("client.example.test".into()),
                b"EHLO client.example.test\r\n",
                "EHLO",
            ),
            (
                Command::Ehlo("[127.0.0.1]".into()),
                b"EHLO [127.0.0.1]\r\n",
                "EHLO",
            ),
            (
                Command::Helo("client.example.test".into()),
                b"HELO client.example.test\r\n",
                "HELO",
            ),
            (
                Command::Lhlo("client.example.test".into()),
                b"LHLO client.example.test\r\n",
                "LHLO",
            ),
            (Command::StartTls, b"STARTTLS\r\n", "STARTTLS"),
            (
                auth("PLAIN", Some("dGVzdA==")),
                b"AUTH PLAIN dGVzdA==\r\n",
                "AUTH",
            ),
            (auth("PLAIN", Some("")), b"AUTH PLAIN =\r\n", "AUTH"),
            (auth("LOGIN", None), b"AUTH LOGIN\r\n", "AUTH"),
            (
                Command::AuthResponse("c2VjcmV0".into()),
                b"c2VjcmV0\r\n",
                "AUTH",
            ),
            (Command::AuthResponse("*".into()), b"*\r\n", "AUTH"),
            (
                mail("a@b.example", &[]),
                b"MAIL FROM:<a@b.example>\r\n",
                "MAIL",
            ),
            (mail("", &[]), b"MAIL FROM:<>\r\n", "MAIL"),
            (
                mail("a@b", &["SIZE=123", "BODY=8BITMIME"]),
                b"MAIL FROM:<a@b> SIZE=123 BODY=8BITMIME\r\n",
                "MAIL",
            ),
            (
                mail("", &["SMTPUTF8"]),
                b"MAIL FROM:<> SMTPUTF8\r\n",
                "MAIL",
            ),
            (
                rcpt("x@y.example", &[]),
                b"RCPT TO:<x@y.example>\r\n",
                "RCPT",
            ),
            (
                rcpt("x@y", &["NOTIFY=NEVER"]),
                b"RCPT TO:<x@y> NOTIFY=NEVER\r\n",
                "RCPT",
            ),
            (rcpt("Postmaster", &[]), b"RCPT TO:<Postmaster>\r\n", "RCPT"),
            (Command::Data, b"DATA\r\n", "DATA"),
            (
                Command::Bdat {
                    size: 4096,
                    last: false,
                },
                b"BDAT 4096\r\n",
                "BDAT",
            ),
            (
                Command::Bdat {
                    size: 0,
                    last: true,
                },
                b"BDAT 0 LAST\r\n",
                "BDAT",
            ),
            (Command::Rset, b"RSET\r\n", "RSET"),
            (Command::Quit, b"QUIT\r\n", "QUIT"),
        ];
        for (command, wire, verb) in cases {
            assert_eq!(
                String::from_utf8_lossy(&command.to_wire()),
                String::from_utf8_lossy(wire),
                "{command:?}"
            );
            assert_eq!(
                command.to_wire().strip_suffix(b"\r\n").unwrap(),
                command.to_string().as_bytes()
            );
            assert_eq!(command.verb(), verb);
        }
    }

    #[test]
    fn line_breaks_in_fields_cannot_inject_commands() {
        let cases: Vec<(Command, &str)> = vec![
            (
                rcpt("a@b>\r\nRCPT TO:<evil@x", &[]),
                "RCPT TO:<a@b>  RCPT TO:<evil@x>",
            ),
            (
                mail("a@b", &["SIZE=1\nDATA"]),
                "MAIL FROM:<a@b> SIZE=1 DATA",
            ),
            (Command::Ehlo("h\r".into()), "EHLO h "),
            (Command::Lhlo("h\nQUIT".into()), "LHLO h QUIT"),
            (Command::AuthResponse("abc\r\nQUIT".into()), "abc  QUIT"),
            (auth("PLAIN\n", Some("x\ry")), "AUTH PLAIN  x y"),
        ];
        for (command, display) in cases {
            assert_eq!(command.to_string(), display);
            let wire = command.to_wire();
            let breaks = wire.iter().filter(|&&b| b == b'\r' || b == b'\n').count();
            assert_eq!(breaks, 2, "{command:?}");
            assert!(wire.ends_with(b"\r\n"));
            assert!(!command.redacted().contains(['\r', '\n']));
        }
    }

    #[test]
    fn redaction() {
        let cases: Vec<(Command, bool, &str)> = vec![
            (
                auth("PLAIN", Some("AHRpbQB0YW5zdGFhZnRhbnN0YWFm")),
                true,
                "AUTH PLAIN ********",
            ),
            (auth("PLAIN", Some("")), true, "AUTH PLAIN ********"),
            (auth("LOGIN", None), false, "AUTH LOGIN"),
            (
                Command::AuthResponse("dGFuc3RhYWY=".into()),
                true,
                "********",
            ),
            (Command::Ehlo("h.example".into()), false, "EHLO h.example"),
            (mail("a@b", &["SIZE=5"]), false, "MAIL FROM:<a@b> SIZE=5"),
            (Command::Quit, false, "QUIT"),
        ];
        for (command, sensitive, shown) in cases {
            assert_eq!(command.is_sensitive(), sensitive, "{command:?}");
            assert_eq!(command.redacted(), shown, "{command:?}");
            if !sensitive {
                assert_eq!(command.redacted(), command.to_string());
            }
        }
    }

    #[test]
    fn redaction_never_contains_the_payload() {
        let payloads = [
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
            "dXNlcg==",
            "cGFzcw==",
            "s3cr3t!",
            "x",
        ];
        for payload in payloads {
            for command in [
                auth("PLAIN", Some(payload)),
                auth("XOAUTH2", Some(payload)),
                Command::AuthResponse(payload.into()),
            ] {
                assert!(
                    command.to_string().contains(payload),
                    "test sanity: {command:?}"
                );
                assert!(command.is_sensitive());
                assert!(
                    !command.redacted().contains(payload),
                    "{command:?} -> {}",
                    command.redacted()
                );
            }
        }
    }
}
