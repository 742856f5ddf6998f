//! The SMTP envelope (RFC 5321 §3.3): the reverse-path for MAIL FROM and the forward-paths
//! for RCPT TO, derived from the configuration and the message.
//!
//! Bcc recipients are here and only here; the message never names them. Addresses given on
//! the command line are validated so that nothing unusable reaches the server.

use anyhow::Result;

use crate::address::{check_addr, parse_recipient};
pub use crate::address::{parse_mailbox, Mailbox};
use crate::config::Config;
use crate::error::Error;
use crate::message::Message;

/// The addresses a bare local name stands for: its aliases (targets without a domain get
/// the configured one), else `name@domain`. Empty when neither is configured; an error when
/// the aliases loop (EX_CONFIG).
pub fn qualify_local(cfg: &Config, name: &str) -> Result<Vec<String>> {
    let with_domain = |n: &str| match (&cfg.domain, n.contains('@')) {
        (_, true) => Some(n.to_string()),
        (Some(d), false) => Some(format!("{n}@{d}")),
        (None, false) => None,
    };
    let expanded = match &cfg.aliases {
        Some(a) => a.expand(name)?,
        None => None,
    };
    Ok(match expanded {
        Some(targets) => targets.iter().filter_map(|t| with_domain(t)).collect(),
        None => with_domain(name).into_iter().collect(),
    })
}

/// A recipient as typed, as envelope addresses: an address as it is, a bare local name
/// through [`qualify_local`].
pub fn qualify(cfg: &Config, raw: &str) -> Result<Vec<String>> {
    Ok(qualify_mailbox(cfg, raw)?
        .into_iter()
        .map(|m| m.addr)
        .collect())
}

/// Like [`qualify`], keeping the display name where the recipient stays one address (for
/// the To:/Cc: headers of a composed message).
pub fn qualify_mailbox(cfg: &Config, raw: &str) -> Result<Vec<Mailbox>> {
    let m = parse_recipient(raw)?;
    if m.addr.contains('@') {
        return Ok(vec![m]);
    }
    let addrs = qualify_local(cfg, &m.addr)?;
    if addrs.is_empty() {
        return Err(Error::Data(format!(
            "bare recipient {:?}: set a domain (--domain, config domain) or an aliases file",
            m.addr
        ))
        .into());
    }
    for a in &addrs {
        check_addr(raw, a)?;
    }
    let name = if addrs.len() == 1 { m.name } else { None };
    Ok(addrs
        .into_iter()
        .map(|addr| Mailbox {
            name: name.clone(),
            addr,
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// MAIL FROM address (without brackets).
    pub reverse_path: String,
    /// RCPT TO addresses, in order, without duplicates.
    pub forward_paths: Vec<String>,
}

impl Envelope {
    /// True when an address needs the SMTPUTF8 extension (RFC 6531).
    pub fn needs_smtputf8(&self) -> bool {
        std::iter::once(&self.reverse_path)
            .chain(&self.forward_paths)
            .any(|a| !a.is_ascii())
    }
}

/// Sender: --envelope-from, else -f, else the message's From:, else the configured
/// default.
/// Recipients: to, cc and bcc, deduplicated (case-insensitively), in order.
pub fn build(cfg: &Config, message: &Message) -> Result<Envelope> {
    let reverse_path = match (&cfg.from, &message.header_from) {
        _ if cfg.envelope_from.is_some() => envelope_sender(cfg)?,
        (Some(f), _) => sender(cfg, f)?,
        (None, Some(h)) => h.clone(),
        (None, None) => sender(cfg, &cfg.default_sender)?,
    };
    let r = &cfg.recipients;
    let typed = r.to.iter().chain(&r.cc).chain(&r.bcc);
    let forward_paths = forward_paths(cfg, typed.chain(&message.header_recipients))?;
    if forward_paths.is_empty() {
        return Err(Error::Data(
            "no recipients: name at least one (RECIPIENT, --to, -c or -b)".into(),
        )
        .into());
    }
    Ok(Envelope {
        reverse_path,
        forward_paths,
    })
}

/// The envelope from the command line alone, for runs that send no message
/// (`--quit-after mail|rcpt`): -f or the default sender (there is no From: to fall back
/// on), and the recipients as typed, which may be none.
pub fn without_message(cfg: &Config) -> Result<Envelope> {
    let reverse_path = match &cfg.envelope_from {
        Some(_) => envelope_sender(cfg)?,
        None => sender(cfg, cfg.from.as_deref().unwrap_or(&cfg.default_sender))?,
    };
    let r = &cfg.recipients;
    let forward_paths = forward_paths(cfg, r.to.iter().chain(&r.cc).chain(&r.bcc))?;
    Ok(Envelope {
        reverse_path,
        forward_paths,
    })
}

/// Recipients qualified and deduplicated (case-insensitively), in order.
fn forward_paths<'a>(
    cfg: &Config,
    raw: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<String>> {
    let mut paths: Vec<String> = Vec::new();
    for raw in raw {
        for addr in qualify(cfg, raw)? {
            if !paths.iter().any(|a| a.eq_ignore_ascii_case(&addr)) {
                paths.push(addr);
            }
        }
    }
    Ok(paths)
}

/// The envelope sender: an address, or a bare name (`-f root`) qualified with
/// [`Config::sender_domain`] — never through the aliases, which map recipients.
pub fn sender(cfg: &Config, raw: &str) -> Result<String> {
    let m = parse_recipient(raw)?;
    if m.addr.contains('@') {
        return Ok(m.addr);
    }
    let addr = qualify_sender(cfg, &m.addr);
    check_addr(raw, &addr)?;
    Ok(addr)
}

/// `--envelope-from`: an address (a bare name qualified like any sender), or `<>` (or
/// nothing) for the null reverse-path (RFC 5321 §4.5.5).
fn envelope_sender(cfg: &Config) -> Result<String> {
    match cfg.envelope_from.as_deref().map(str::trim) {
        None | Some("" | "<>") => Ok(String::new()),
        Some(f) => sender(cfg, f),
    }
}

/// A bare sender name as an address: `name@` [`Config::sender_domain`].
pub fn qualify_sender(cfg: &Config, name: &str) -> String {
    format!("{name}@{}", cfg.sender_domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_forms() {
        let cases = [
            ("a@b.example", None, "a@b.example"),
            ("<a@b.example>", None, "a@b.example"),
            (
                "Ops Team <ops@x.example>",
                Some("Ops Team"),
                "ops@x.example",
            ),
            (
                "\"Doe, Jane\" <jane@x.example>",
                Some("Doe, Jane"),
                "jane@x.example",
            ),
            ("  spaced@x.example  ", None, "spaced@x.example"),
            (
                "Jürgen <jürgen@bücher.example>",
                Some("Jürgen"),
                "jürgen@bücher.example",
            ),
            ("\"a@b\"@x.example", None, "\"a@b\"@x.example"),
            ("a@[192.0.2.1]", None, "a@[192.0.2.1]"),
            ("a@[IPv6:2001:db8::1]", None, "a@[IPv6:2001:db8::1]"),
            (
                "first.last+tag@sub.x-y.example",
                None,
                "first.last+tag@sub.x-y.example",
            ),
        ];
        for (input, name, addr) in cases {
            let m = parse_mailbox(input).unwrap();
            assert_eq!(
                (m.name.as_deref(), m.addr.as_str()),
                (name, addr),
                "{input}"
            );
        }
    }

    #[test]
    fn bad_mailboxes() {
        for bad in [
            "",
            "plain",
            "@x.example",
            "a@",
            "a b@x.example",
            "a@x..example",
            "<a@x.example",
            "a@x.example>",
            "a@x.example\r\nRCPT TO:<evil@x>",
            "a,b@x.example",
            "a@.x",
            // Found by the hostile-input tests (issue 6): these used to be accepted.
            "a@@x.example",
            "a\"b@x.example",
            "a;b@x.example",
            "a@[127.0.0.1",
            "a@x_y.example",
            "a@-x.example",
            "a@x:example",
            format!("{}@x.example", "a".repeat(65)).as_str(),
            format!("a@{}.example", "d".repeat(64)).as_str(),
            format!("a@{}.example", vec!["d".repeat(60); 5].join(".")).as_str(),
            // Found by the header_recipients fuzz target in CI: a local part that is a
            // lone quote made the closing-quote check subtract below zero (a panic).
            "\"@y.test",
            "\"\"\"@y.test",
        ] {
            let err = parse_mailbox(bad).unwrap_err();
            assert_eq!(
                crate::error::exit_code(&err),
                crate::error::Exit::DataErr,
                "{bad:?}"
            );
        }
    }

    fn config(args: &[&str]) -> Config {
        crate::config::for_tests(args, &[])
    }

    #[test]
    fn envelope_without_a_message() {
        let cases: &[(&[&str], &str, &[&str])] = &[
            // The default sender takes the configured domain (bare senders do too).
            (&["--server", "h"], "ops@d.example", &[]),
            (&["--server", "h", "-f", "root"], "root@d.example", &[]),
            (
                &["--server", "h", "-f", "Me <me@x.example>"],
                "me@x.example",
                &[],
            ),
            (
                &[
                    "--server",
                    "h",
                    "a@x.example",
                    "-c",
                    "B@x.example",
                    "-b",
                    "b@x.example,root",
                ],
                "ops@d.example",
                &["a@x.example", "B@x.example", "root@d.example"],
            ),
        ];
        for (args, from, rcpts) in cases {
            let mut args = args.to_vec();
            args.extend(["--domain", "d.example"]);
            let e = without_message(&config(&args)).unwrap();
            assert_eq!(e.reverse_path, *from, "{args:?}");
            assert_eq!(e.forward_paths, *rcpts, "{args:?}");
        }
        let err = without_message(&config(&["--server", "h", "root"])).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::DataErr);
        // Without a domain a bare sender takes the host's (fully qualified) name.
        let e = without_message(&config(&["--server", "h", "-f", "root", "a@x.example"])).unwrap();
        assert_eq!(e.reverse_path, "root@box.example");
    }

    #[test]
    fn smtputf8_detection() {
        let e = Envelope {
            reverse_path: "a@x.example".into(),
            forward_paths: vec!["b@x.example".into()],
        };
        assert!(!e.needs_smtputf8());
        let e = Envelope {
            forward_paths: vec!["jürgen@x.example".into()],
            ..e
        };
        assert!(e.needs_smtputf8());
    }
}
