//! SASL mechanisms postie speaks and their payloads: PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login), carried by SMTP AUTH (RFC 4954); base64 per RFC 4648 §4.
//!
//! This module owns which mechanism to use ([`choose`]) and how credentials are encoded.
//! It does no I/O and keeps no secrets: the caller passes the password in and sends the
//! returned payload inside a sensitive [`Command`](crate::smtp::command::Command), which
//! the transcript masks. Nothing here may log or format a password or a payload.
//! RFC 4616 forbids NUL in the user name and password; the caller validates that (a NUL
//! would shift the fields of the PLAIN message, it cannot break the SMTP line).

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A SASL mechanism postie implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

/// In order of preference: PLAIN needs one round trip, LOGIN two.
const PREFERENCE: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

impl Mechanism {
    /// The name as used on the wire ("PLAIN").
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

impl FromStr for Mechanism {
    type Err = String;

    /// Case-insensitive "plain" / "login".
    fn from_str(s: &str) -> Result<Mechanism, String> {
        PREFERENCE
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unsupported AUTH mechanism {} (supported: {})",
                    quoted(s),
                    supported()
                )
            })
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Picks the mechanism: PLAIN, then LOGIN, among those offered (case-insensitive);
/// `forced` must be offered. The error names what the server offered.
pub fn choose(offered: &[String], forced: Option<Mechanism>) -> Result<Mechanism, String> {
    let is_offered = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
    match forced {
        Some(m) if is_offered(m) => Ok(m),
        Some(m) => Err(format!(
            "server does not offer AUTH {m} (offered: {})",
            list(offered)
        )),
        None => PREFERENCE
            .into_iter()
            .find(|&m| is_offered(m))
            .ok_or_else(|| {
                format!(
                    "server offers no AUTH mechanism postie supports (offered: {})",
                    list(offered)
                )
            }),
    }
}

/// RFC 4616 initial response: base64("\0user\0password"), padded standard alphabet
/// (no authorization identity, so the server derives it from the user name).
pub fn plain_initial_response(user: &str, password: &str) -> String {
    let mut message = Vec::with_capacity(user.len() + password.len() + 2);
    message.push(0);
    message.extend_from_slice(user.as_bytes());
    message.push(0);
    message.extend_from_slice(password.as_bytes());
    STANDARD.encode(message)
}

/// LOGIN answer to the "Username:" challenge: base64(user).
pub fn login_username(user: &str) -> String {
    STANDARD.encode(user)
}

/// LOGIN answer to the "Password:" challenge: base64(password).
pub fn login_password(password: &str) -> String {
    STANDARD.encode(password)
}

fn supported() -> String {
    PREFERENCE.map(Mechanism::name).join(", ")
}

/// Server- or user-supplied text in an error message: quoted, control characters escaped.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// The offered list for an error message; server text, so control characters escaped.
fn list(offered: &[String]) -> String {
    if offered.is_empty() {
        return "none".to_string();
    }
    offered
        .iter()
        .map(|m| m.escape_debug().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4616_example() {
        assert_eq!(
            plain_initial_response("tim", "tanstaaftanstaaf"),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
        );
    }

    #[test]
    fn payloads() {
        let plain = [
            ("", "", "AAA="),
            ("u", "p", "AHUAcA=="),
            (
                "user@example.test",
                "pässwörd",
                "AHVzZXJAZXhhbXBsZS50ZXN0AHDDpHNzd8O2cmQ=",
            ),
        ];
        for (user, password, expected) in plain {
            assert_eq!(plain_initial_response(user, password), expected, "{user}");
            let decoded = STANDARD.decode(expected).unwrap();
            assert_eq!(decoded, format!("\0{user}\0{password}").into_bytes());
        }
        let login = [
            ("", ""),
            ("tim", "dGlt"),
            ("user@example.test", "dXNlckBleGFtcGxlLnRlc3Q="),
            ("pass word!", "cGFzcyB3b3JkIQ=="),
            ("ü", "w7w="),
        ];
        for (input, expected) in login {
            assert_eq!(login_username(input), expected, "{input}");
            assert_eq!(login_password(input), expected, "{input}");
        }
    }

    #[test]
    fn names_and_parsing() {
        for (text, expected) in [
            ("PLAIN", Mechanism::Plain),
            ("plain", Mechanism::Plain),
            ("Login", Mechanism::Login),
            ("LOGIN", Mechanism::Login),
        ] {
            assert_eq!(text.parse::<Mechanism>(), Ok(expected));
        }
        assert_eq!(
            (
                Mechanism::Plain.name(),
                Mechanism::Login.to_string().as_str()
            ),
            ("PLAIN", "LOGIN")
        );
        for bad in ["CRAM-MD5", "", "plain ", "XOAUTH2"] {
            assert_eq!(
                bad.parse::<Mechanism>(),
                Err(format!(
                    "unsupported AUTH mechanism \"{bad}\" (supported: PLAIN, LOGIN)"
                ))
            );
        }
    }

    #[test]
    fn choose_table() {
        use Mechanism::{Login, Plain};
        type Case<'a> = (&'a [&'a str], Option<Mechanism>, Result<Mechanism, &'a str>);
        let cases: &[Case] = &[
            (&["PLAIN", "LOGIN"], None, Ok(Plain)),
            (&["LOGIN", "PLAIN"], None, Ok(Plain)),
            (&["LOGIN"], None, Ok(Login)),
            (&["CRAM-MD5", "login"], None, Ok(Login)),
            (&["plain"], None, Ok(Plain)),
            (&["PLAIN", "LOGIN"], Some(Login), Ok(Login)),
            (&["PLAIN"], Some(Plain), Ok(Plain)),
            (&["login"], Some(Login), Ok(Login)),
            (
                &["CRAM-MD5"],
                None,
                Err("server offers no AUTH mechanism postie supports (offered: CRAM-MD5)"),
            ),
            (
                &["CRAM-MD5", "XOAUTH2"],
                None,
                Err("server offers no AUTH mechanism postie supports (offered: CRAM-MD5, XOAUTH2)"),
            ),
            (
                &[],
                None,
                Err("server offers no AUTH mechanism postie supports (offered: none)"),
            ),
            (
                &["PLAIN"],
                Some(Login),
                Err("server does not offer AUTH LOGIN (offered: PLAIN)"),
            ),
            (
                &[],
                Some(Plain),
                Err("server does not offer AUTH PLAIN (offered: none)"),
            ),
            (
                &["X\u{1b}[31m"],
                None,
                Err("server offers no AUTH mechanism postie supports (offered: X\\u{1b}[31m)"),
            ),
        ];
        for (offered, forced, expected) in cases {
            let offered: Vec<String> = offered.iter().map(|s| s.to_string()).collect();
            let expected = expected.map_err(str::to_string);
            assert_eq!(
                choose(&offered, *forced),
                expected,
                "{offered:?} {forced:?}"
            );
        }
    }
}
