//! Personas: which command line postie was started to read, from the name it was run
//! under (`argv[0]`, e.g. a symlink /usr/sbin/sendmail → postie) or from a first argument
//! (`postie sendmail -t`).
//!
//! * [`sendmail`] reads the sendmail(8) command line into typed arguments;
//! * [`mailx`] translates the sending half of mailx(1) into postie's own argv;
//! * [`msmtp`] reads msmtp(1)'s command line into typed arguments;
//! * `smtp_server` is sendmail `-bs`: SMTP on stdin/stdout (RFC 5321 server side).
//!
//! This module only looks at names; it reads no files and decides nothing about
//! delivery.

pub mod mailx;
pub mod msmtp;
pub mod sendmail;
pub mod smtp_server;

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// The command line dialect postie speaks this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persona {
    /// postie's own flags (clap).
    Postie,
    /// sendmail(8).
    Sendmail,
    /// The sending half of mail/mailx(1).
    Mailx,
    /// `newaliases`: sendmail `-bi`.
    Newaliases,
    /// `mailq`: sendmail `-bp`.
    Mailq,
    /// msmtp(1): its options over the msmtprc account, sendmail mode.
    Msmtp,
}

impl Persona {
    /// The name the persona goes by, for messages (`sendmail: ...`).
    pub fn program(self) -> &'static str {
        match self {
            Persona::Postie => "postie",
            Persona::Sendmail => "sendmail",
            Persona::Mailx => "mail",
            Persona::Newaliases => "newaliases",
            Persona::Mailq => "mailq",
            Persona::Msmtp => "msmtp",
        }
    }

    fn from_name(name: &OsStr) -> Option<Persona> {
        let name = name.to_str()?;
        let name = match name.len().checked_sub(4).and_then(|i| name.get(i..)) {
            Some(ext) if ext.eq_ignore_ascii_case(".exe") => name.get(..name.len() - 4)?,
            _ => name,
        };
        Some(match name {
            "sendmail" => Persona::Sendmail,
            "mail" | "mailx" | "Mail" => Persona::Mailx,
            "newaliases" => Persona::Newaliases,
            "mailq" => Persona::Mailq,
            "msmtp" => Persona::Msmtp,
            _ => return None,
        })
    }
}

/// The persona for this argv and how many leading arguments belong to the invocation
/// rather than to the persona: the persona's own arguments are `argv[skip..]`.
///
/// * `sendmail -t` (argv[0]'s file name is `sendmail`, `mail`, `mailx`, `Mail`,
///   `newaliases`, `mailq` or `msmtp`; a `.exe` suffix is ignored) → that persona, skip 1;
/// * `postie sendmail -t` (the same names as postie's first argument) → skip 2;
/// * anything else → `Postie`, skip 1: clap is given the whole argv, and postie's
///   subcommands (`queue`, `batch`, `dkim`, `check`) are clap's, so no persona ever sees
///   them (`sendmail queue` sends to the user `queue`).
///
/// The first argument is only looked at when argv[0] is not itself a persona name, so
/// `sendmail mail` still sends to the local user `mail`.
pub fn detect(argv: &[OsString]) -> (Persona, usize) {
    let own = argv
        .first()
        .and_then(|a0| Path::new(a0).file_name())
        .and_then(Persona::from_name);
    if let Some(p) = own {
        return (p, 1);
    }
    match argv.get(1).and_then(|a1| Persona::from_name(a1)) {
        Some(p) => (p, 2),
        None => (Persona::Postie, argv.len().min(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let cases: &[(&[&str], Persona, usize)] = &[
            (&["/usr/sbin/sendmail", "-t"], Persona::Sendmail, 1),
            (&["/usr/lib/sendmail", "-bs"], Persona::Sendmail, 1),
            (&["sendmail"], Persona::Sendmail, 1),
            (&["sendmail", "mail"], Persona::Sendmail, 1),
            (&["/usr/bin/mail", "-s", "x", "root"], Persona::Mailx, 1),
            (&["mailx"], Persona::Mailx, 1),
            (&["/usr/bin/Mail"], Persona::Mailx, 1),
            (&["/usr/bin/newaliases"], Persona::Newaliases, 1),
            (&["mailq"], Persona::Mailq, 1),
            (&["sendmail.EXE"], Persona::Sendmail, 1),
            (&["postie", "sendmail", "-t"], Persona::Sendmail, 2),
            (
                &["/usr/bin/postie", "mail", "-s", "x", "root"],
                Persona::Mailx,
                2,
            ),
            (&["postie", "mailx"], Persona::Mailx, 2),
            (&["postie", "newaliases"], Persona::Newaliases, 2),
            (&["postie", "mailq"], Persona::Mailq, 2),
            (
                &["/usr/bin/msmtp", "-a", "work", "--", "a@x"],
                Persona::Msmtp,
                1,
            ),
            (&["postie", "msmtp", "--serverinfo"], Persona::Msmtp, 2),
            (&["msmtpq", "a@x"], Persona::Postie, 1),
            (&["postie", "check", "m.eml"], Persona::Postie, 1),
            (&["postie", "a@x", "check"], Persona::Postie, 1),
            (&["check", "m.eml"], Persona::Postie, 1),
            (&["postie", "-s", "x", "a@x"], Persona::Postie, 1),
            (&["postie", "a@x", "sendmail"], Persona::Postie, 1),
            (&["sendmail-wrapper", "-t"], Persona::Postie, 1),
            (&["postie"], Persona::Postie, 1),
            (&[], Persona::Postie, 0),
        ];
        for (argv, persona, skip) in cases {
            let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
            assert_eq!(detect(&argv), (*persona, *skip), "{argv:?}");
        }
    }
}
