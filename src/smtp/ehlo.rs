//! Capabilities from an EHLO reply (RFC 5321 §4.1.1.1 and §2.2.2: one keyword per line
//! after the first, keywords case-insensitive; RFC 1870 SIZE, RFC 2920 PIPELINING,
//! RFC 3207 STARTTLS, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 3030 CHUNKING and BINARYMIME, RFC 3461
//! DSN, RFC 2034 ENHANCEDSTATUSCODES, RFC 4954 AUTH, RFC 8689 REQUIRETLS).
//!
//! This module owns turning the lines of a 250 EHLO reply into [`Capabilities`]. It reads
//! a parsed [`Reply`] only (no I/O) and does not check the reply code or decide policy:
//! the session does both. Server text is untrusted: empty or whitespace-only lines are
//! skipped, unknown keywords and garbage parameters only listed (`extensions`, as sent,
//! for reports to print escaped), never a panic. The old `AUTH=PLAIN LOGIN` form some
//! servers still send is merged with `AUTH ...`.

use crate::smtp::reply::Reply;

/// What the server said it supports. Built fresh from every EHLO reply (after STARTTLS
/// the old value must be thrown away, RFC 3207 §4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// First word of the first line.
    pub domain: String,
    /// `SIZE n`: Some(0) means "no fixed limit" (RFC 1870; also a bare `SIZE`); None when
    /// SIZE is absent or its parameter is not a number.
    pub size: Option<u64>,
    pub pipelining: bool,
    pub starttls: bool,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub chunking: bool,
    /// RFC 3030 §3: BODY=BINARYMIME (only usable together with CHUNKING).
    pub binarymime: bool,
    pub dsn: bool,
    pub enhanced_status_codes: bool,
    pub requiretls: bool,
    /// Upper-case mechanism names, in the order offered, no duplicates.
    pub auth: Vec<String>,
    /// Every extension line after the first, in order, as (keyword upper-cased, its
    /// parameters joined by single spaces), known or not, for reports that show them all
    /// (`--probe`). The old `AUTH=PLAIN LOGIN` form appears as ("AUTH=PLAIN", "LOGIN").
    pub extensions: Vec<(String, String)>,
}

impl Capabilities {
    /// Reads the reply's lines; call it only with a positive EHLO reply.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        let mut lines = reply.lines.iter();
        if let Some(first) = lines.next() {
            caps.domain = first
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
        for line in lines {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            let params: Vec<&str> = words.clone().collect();
            caps.extensions.push((keyword.clone(), params.join(" ")));
            // "AUTH=PLAIN LOGIN" (pre-RFC 4954 servers): mechanisms start after the '='.
            if let Some(first_mechanism) = keyword.strip_prefix("AUTH=") {
                caps.add_auth(std::iter::once(first_mechanism).chain(words));
                continue;
            }
            match keyword.as_str() {
                "AUTH" => caps.add_auth(words),
                "SIZE" => match words.next() {
                    None => caps.size = Some(0),
                    // Garbage leaves whatever an earlier SIZE line said (normally None).
                    Some(limit) => {
                        if let Some(n) = parse_size(limit) {
                            caps.size = Some(n);
                        }
                    }
                },
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "CHUNKING" => caps.chunking = true,
                "BINARYMIME" => caps.binarymime = true,
                "DSN" => caps.dsn = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "REQUIRETLS" => caps.requiretls = true,
                _ => {}
            }
        }
        caps
    }

    /// Whether the server offered this SASL mechanism (case-insensitive).
    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    fn add_auth<'a>(&mut self, mechanisms: impl Iterator<Item = &'a str>) {
        for mechanism in mechanisms {
            if !mechanism.is_empty() && !self.offers_auth(mechanism) {
                self.auth.push(mechanism.to_ascii_uppercase());
            }
        }
    }
}

/// RFC 1870 size-param: 1*20DIGIT; anything else (signs, overflow, letters) is garbage.
fn parse_size(s: &str) -> Option<u64> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::parse;

    fn caps(wire: &str) -> Capabilities {
        let (reply, used) = parse(wire.as_bytes()).unwrap().unwrap();
        assert_eq!(used, wire.len());
        Capabilities::from_ehlo(&reply)
    }

    fn auth(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn postfix_like_reply() {
        let got = caps(
            "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
             250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n\
             250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n\
             250 CHUNKING\r\n",
        );
        let ext = |k: &str, p: &str| (k.to_string(), p.to_string());
        let expected = Capabilities {
            domain: "mail.example.test".into(),
            size: Some(10_240_000),
            pipelining: true,
            starttls: true,
            eightbitmime: true,
            smtputf8: true,
            chunking: true,
            binarymime: false,
            dsn: true,
            enhanced_status_codes: true,
            requiretls: false,
            auth: auth(&["PLAIN", "LOGIN"]),
            extensions: vec![
                ext("PIPELINING", ""),
                ext("SIZE", "10240000"),
                ext("VRFY", ""),
                ext("ETRN", ""),
                ext("STARTTLS", ""),
                ext("AUTH", "PLAIN LOGIN"),
                ext("AUTH=PLAIN", "LOGIN"),
                ext("ENHANCEDSTATUSCODES", ""),
                ext("8BITMIME", ""),
                ext("DSN", ""),
                ext("SMTPUTF8", ""),
                ext("CHUNKING", ""),
            ],
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn mixed_case_keywords() {
        let got = caps(
            "250-Mail.Example.Test Hello client [127.0.0.1]\r\n250-pipelining\r\n250-StartTLS\r\n\
             250-Size 1000\r\n250-auth login Plain cram-md5\r\n250-8bitmime\r\n\
             250 EnhancedStatusCodes\r\n",
        );
        assert_eq!(got.domain, "Mail.Example.Test");
        assert!(got.pipelining && got.starttls && got.eightbitmime && got.enhanced_status_codes);
        assert!(!got.smtputf8 && !got.chunking && !got.dsn);
        assert_eq!(got.size, Some(1000));
        assert_eq!(got.auth, auth(&["LOGIN", "PLAIN", "CRAM-MD5"]));
        assert!(got.offers_auth("plain") && got.offers_auth("Cram-Md5"));
        assert!(!got.offers_auth("XOAUTH2") && !got.offers_auth(""));
    }

    #[test]
    fn auth_forms() {
        let cases: &[(&str, &[&str])] = &[
            ("250-h\r\n250 AUTH=LOGIN\r\n", &["LOGIN"]),
            ("250-h\r\n250 AUTH=PLAIN LOGIN\r\n", &["PLAIN", "LOGIN"]),
            (
                "250-h\r\n250-AUTH=LOGIN\r\n250 AUTH PLAIN LOGIN\r\n",
                &["LOGIN", "PLAIN"],
            ),
            (
                "250-h\r\n250-auth=login plain\r\n250 AUTH XOAUTH2\r\n",
                &["LOGIN", "PLAIN", "XOAUTH2"],
            ),
            ("250-h\r\n250 AUTH=\r\n", &[]),
            ("250-h\r\n250 AUTH\r\n", &[]),
            ("250-h\r\n250 AUTH PLAIN plain PLAIN\r\n", &["PLAIN"]),
            ("250-h\r\n250 AUTHX PLAIN\r\n", &[]),
            (
                "250-h\r\n250 AUTH    CRAM-MD5\tDIGEST-MD5\r\n",
                &["CRAM-MD5", "DIGEST-MD5"],
            ),
        ];
        for (wire, expected) in cases {
            assert_eq!(caps(wire).auth, auth(expected), "{wire:?}");
        }
    }

    #[test]
    fn size_variants() {
        let cases: &[(&str, Option<u64>)] = &[
            ("250-h\r\n250 SIZE 52428800\r\n", Some(52_428_800)),
            ("250-h\r\n250 SIZE 0\r\n", Some(0)),
            ("250-h\r\n250 SIZE\r\n", Some(0)),
            ("250-h\r\n250 SIZE \r\n", Some(0)),
            ("250-h\r\n250 SIZE abc\r\n", None),
            ("250-h\r\n250 SIZE -5\r\n", None),
            ("250-h\r\n250 SIZE +5\r\n", None),
            ("250-h\r\n250 SIZE 99999999999999999999999\r\n", None),
            ("250-h\r\n250 SIZE 18446744073709551615\r\n", Some(u64::MAX)),
            ("250-h\r\n250 size 10 extra\r\n", Some(10)),
            ("250-h\r\n250 PIPELINING\r\n", None),
            // Garbage does not stop later keywords, nor override an earlier SIZE.
            ("250-h\r\n250-SIZE junk\r\n250 STARTTLS\r\n", None),
            ("250-h\r\n250-SIZE 100\r\n250 SIZE junk\r\n", Some(100)),
        ];
        for (wire, expected) in cases {
            assert_eq!(caps(wire).size, *expected, "{wire:?}");
        }
        assert!(caps("250-h\r\n250-SIZE junk\r\n250 STARTTLS\r\n").starttls);
    }

    #[test]
    fn requiretls_and_every_extension_kept_in_order() {
        let got = caps(
            "250-h\r\n250-requiretls\r\n250-XCLIENT  NAME   ADDR\r\n250-Size 0\r\n\
             250 auth=login\r\n",
        );
        assert!(got.requiretls);
        assert!(caps("250-h\r\n250-CHUNKING\r\n250 binarymime\r\n").binarymime);
        assert!(!caps("250-h\r\n250 REQUIRETLSX\r\n").requiretls);
        let want: Vec<(String, String)> = [
            ("REQUIRETLS", ""),
            ("XCLIENT", "NAME ADDR"),
            ("SIZE", "0"),
            ("AUTH=LOGIN", ""),
        ]
        .iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect();
        assert_eq!(got.extensions, want);
        assert!(caps("250 h.example\r\n").extensions.is_empty());
    }

    #[test]
    fn empty_and_odd_lines_are_skipped() {
        let got = caps(
            "250-\r\n250-   \r\n250-\t\r\n250- \r\n250-X-UNKNOWN foo\r\n250-STARTTLS\r\n250 \r\n",
        );
        assert_eq!(
            got,
            Capabilities {
                starttls: true,
                extensions: vec![
                    ("X-UNKNOWN".into(), "foo".into()),
                    ("STARTTLS".into(), String::new()),
                ],
                ..Capabilities::default()
            }
        );
        // A single-line reply: just the domain.
        assert_eq!(caps("250 h.example greets you\r\n").domain, "h.example");
        assert_eq!(caps("250\r\n"), Capabilities::default());
        // Keywords on the first line are the greeting, not capabilities.
        assert!(!caps("250 STARTTLS\r\n").starttls);
        // A reply without lines at all (built by hand) does not panic.
        let empty = Reply {
            code: crate::smtp::reply::Code::from_u16(250).unwrap(),
            enhanced: None,
            lines: vec![],
        };
        assert_eq!(Capabilities::from_ehlo(&empty), Capabilities::default());
    }
}
