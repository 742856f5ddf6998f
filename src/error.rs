//! Failures that decide the exit status, and the one function that maps any error to a
//! sysexits(3) code (design.md §2).
//!
//! Only failures whose exit code callers care about get a variant here; everything else is
//! an `anyhow` error with context, which maps to EX_SOFTWARE (70) unless an I/O error sits
//! in its chain (EX_IOERR, 74). 4xx replies always map to EX_TEMPFAIL (75), never to
//! msmtp's EX_UNAVAILABLE.
//!
//! [`classify`] is the one place that also decides what a failure means for the delivery
//! engine: try the next host now, retry later, give up ([`Retry`]), and whether the
//! session it happened in can go on ([`Class::in_step`], [`Class::reconnect`]). Every
//! route and mode (submission with fallbacks, MX, batch, queue run, `-bs`) asks it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::net::timeout::Phase;
use crate::smtp::reply::{Reply, Severity};

/// sysexits.h codes postie exits with: every one of them, and no other (EX_OSERR, 71, is
/// never returned). The exit-code tables in README.md and GUIDE.md and the man page's
/// EXIT STATUS list these, and `tests/cases/docs.rs` checks that they agree with
/// [`Exit::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exit {
    #[default]
    Ok = 0,
    Usage = 64,
    DataErr = 65,
    NoInput = 66,
    NoUser = 67,
    NoHost = 68,
    Unavailable = 69,
    Software = 70,
    IoErr = 74,
    TempFail = 75,
    Protocol = 76,
    NoPerm = 77,
    Config = 78,
}

impl Exit {
    /// Every code, in numeric order (a unit test keeps it complete).
    pub const ALL: [Exit; 13] = [
        Exit::Ok,
        Exit::Usage,
        Exit::DataErr,
        Exit::NoInput,
        Exit::NoUser,
        Exit::NoHost,
        Exit::Unavailable,
        Exit::Software,
        Exit::IoErr,
        Exit::TempFail,
        Exit::Protocol,
        Exit::NoPerm,
        Exit::Config,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// The sysexits name, e.g. `EX_TEMPFAIL`.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Ok => "EX_OK",
            Exit::Usage => "EX_USAGE",
            Exit::DataErr => "EX_DATAERR",
            Exit::NoInput => "EX_NOINPUT",
            Exit::NoUser => "EX_NOUSER",
            Exit::NoHost => "EX_NOHOST",
            Exit::Unavailable => "EX_UNAVAILABLE",
            Exit::Software => "EX_SOFTWARE",
            Exit::IoErr => "EX_IOERR",
            Exit::TempFail => "EX_TEMPFAIL",
            Exit::Protocol => "EX_PROTOCOL",
            Exit::NoPerm => "EX_NOPERM",
            Exit::Config => "EX_CONFIG",
        }
    }

    /// When several things went wrong, the one to report: anything retryable (75) wins
    /// over a permanent code, which wins over success.
    pub fn most_urgent(self, other: Exit) -> Exit {
        let rank = |e: Exit| match e {
            Exit::Ok => 0,
            Exit::TempFail => 2,
            _ => 1,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// A failure with a definite exit code.
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong (EX_USAGE).
    Usage(String),
    /// The message or an address is unusable (EX_DATAERR).
    Data(String),
    /// A named input file cannot be read (EX_NOINPUT).
    NoInput {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Configuration is wrong or incomplete (EX_CONFIG).
    Config(String),
    /// The server answered a command with a negative reply.
    Reply {
        phase: Phase,
        what: String,
        reply: Reply,
    },
    /// No reply (or no progress) within the phase's time limit.
    Timeout { phase: Phase, after: Duration },
    /// Could not reach the server at any of its addresses.
    Connect(String),
    /// The host name does not resolve (EX_NOHOST).
    NoHost(String),
    /// A DNS lookup failed in a way that may pass: SERVFAIL, REFUSED, no answer in time,
    /// the resolver unreachable (EX_TEMPFAIL).
    DnsTemporary(String),
    /// The connection broke while waiting in a phase.
    Lost {
        phase: Phase,
        source: std::io::Error,
    },
    /// The server said something that is not SMTP.
    Protocol(String),
    /// Security policy could not be met: STARTTLS missing, certificate rejected, AUTH not
    /// possible safely (EX_UNAVAILABLE).
    Unavailable(String),
    /// Local I/O failed (reading stdin, writing output).
    Io(String),
    /// Credentials refused outside SMTP: an OAuth provider no longer accepts the refresh
    /// token (`invalid_grant`), or the user denied the login (EX_NOPERM).
    NoPerm(String),
    /// A service postie needs besides the mail server failed in a way that may pass: an
    /// OAuth token endpoint unreachable or answering 5xx (EX_TEMPFAIL, retried later).
    Temporary(String),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Data(_) => Exit::DataErr,
            Error::NoInput { .. } => Exit::NoInput,
            Error::Config(_) => Exit::Config,
            Error::Reply { phase, reply, .. } => reply_exit(*phase, reply),
            Error::Timeout { .. }
            | Error::Connect(_)
            | Error::Lost { .. }
            | Error::DnsTemporary(_) => Exit::TempFail,
            Error::NoHost(_) => Exit::NoHost,
            Error::Protocol(_) => Exit::Protocol,
            Error::Unavailable(_) => Exit::Unavailable,
            Error::Io(_) => Exit::IoErr,
            Error::NoPerm(_) => Exit::NoPerm,
            Error::Temporary(_) => Exit::TempFail,
        }
    }
}

impl Error {
    /// Temporary, and raised before the message reached the server (the phase is one
    /// before the message data): another host may take the message now.
    fn before_data(&self) -> bool {
        let phase = match self {
            Error::Reply { phase, .. }
            | Error::Timeout { phase, .. }
            | Error::Lost { phase, .. } => *phase,
            // No connection at all, or no address for this host at the moment.
            Error::Connect(_) | Error::DnsTemporary(_) => return true,
            _ => return false,
        };
        !matches!(phase, Phase::DataBlock | Phase::DataEnd | Phase::Quit)
    }
}

/// What a failure means for the next step of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Permanent: neither another host nor a later try can help (5xx, bad data, policy,
    /// configuration). The exit code is the permanent one.
    Never,
    /// Temporary, and the message has not reached this server yet: the next host (the
    /// next server of a fallback list, the next MX) may take it now (RFC 5321 §5.1).
    NextHost,
    /// Temporary, but the server may already have the message (the connection was lost
    /// or timed out in or after the data): no other host now, retry later (75, queue).
    Later,
}

/// A failure, classified once for every route and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub exit: Exit,
    pub retry: Retry,
    /// The server answered with a reply and is still talking: the session may go on (after
    /// RSET) or end with QUIT.
    pub in_step: bool,
    /// The session is over, but a new one may take the message: a 421 anywhere (RFC 5321
    /// §3.8), a "too many messages" 452 / x.5.3 to MAIL, a lost or silent connection.
    pub reconnect: bool,
}

/// Classify any error: the first typed [`Error`] in the chain decides (as for
/// [`exit_code`]); an untyped error is local or a bug, never retried.
pub fn classify(err: &anyhow::Error) -> Class {
    let exit = exit_code(err);
    let Some(typed) = err.chain().find_map(|c| c.downcast_ref::<Error>()) else {
        return Class {
            exit,
            retry: Retry::Never,
            in_step: false,
            reconnect: false,
        };
    };
    let closing = matches!(typed, Error::Reply { reply, .. } if reply.code.as_u16() == 421);
    let retry = match exit {
        Exit::TempFail if typed.before_data() => Retry::NextHost,
        Exit::TempFail => Retry::Later,
        _ => Retry::Never,
    };
    let too_many = matches!(typed, Error::Reply { phase: Phase::Mail, reply, .. }
        if reply.code.severity == Severity::TransientNegative
            && (reply.code.as_u16() == 452
                || reply.enhanced.is_some_and(|e| e.class == 4 && e.subject == 5 && e.detail == 3)));
    let in_step = matches!(
        typed,
        // A token the OAuth provider would not give: the mail server is still talking.
        Error::Reply { .. }
            | Error::Unavailable(_)
            | Error::Data(_)
            | Error::NoPerm(_)
            | Error::Temporary(_)
    ) && !closing;
    let reconnect =
        closing || too_many || matches!(typed, Error::Lost { .. } | Error::Timeout { .. });
    Class {
        exit,
        retry,
        in_step,
        reconnect,
    }
}

/// Exit code for a negative reply in a phase (design.md §2).
pub fn reply_exit(phase: Phase, reply: &Reply) -> Exit {
    match reply.code.severity {
        Severity::TransientNegative => Exit::TempFail,
        Severity::PermanentNegative => match phase {
            Phase::Auth => Exit::NoPerm,
            Phase::Rcpt => Exit::NoUser,
            // Any BDAT chunk too (a 552 to a middle chunk: the message is too big).
            Phase::Mail | Phase::DataInit | Phase::DataBlock | Phase::DataEnd => Exit::DataErr,
            _ => Exit::Unavailable,
        },
        // A positive reply where another was required, e.g. 250 to DATA.
        Severity::PositiveCompletion | Severity::PositiveIntermediate => Exit::Protocol,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m)
            | Error::Data(m)
            | Error::Config(m)
            | Error::Connect(m)
            | Error::NoHost(m)
            | Error::DnsTemporary(m)
            | Error::Protocol(m)
            | Error::Unavailable(m)
            | Error::Io(m)
            | Error::NoPerm(m)
            | Error::Temporary(m) => f.write_str(m),
            Error::NoInput { what, path, source } => {
                write!(f, "cannot read {what} {}: {source}", path.display())
            }
            Error::Reply { what, reply, .. } => write!(
                f,
                "{what} refused: {} ({})",
                reply.summary(),
                reply.code.severity.describe()
            ),
            Error::Timeout { phase, after } => write!(
                f,
                "timed out {} ({} s)",
                phase.waiting_for(),
                after.as_secs()
            ),
            Error::Lost { phase, source } => {
                write!(f, "connection lost {}: {source}", phase.waiting_for())
            }
        }
    }
}

impl std::error::Error for Error {}

/// The exit code for any error: the first typed [`Error`] in the chain decides; a bare I/O
/// error means EX_IOERR; anything else is a bug (EX_SOFTWARE).
pub fn exit_code(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return e.exit();
        }
    }
    for cause in err.chain() {
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return Exit::IoErr;
        }
    }
    Exit::Software
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::parse;

    fn reply(text: &str) -> Reply {
        parse(text.as_bytes()).unwrap().unwrap().0
    }

    /// `Exit::ALL` names every variant once, in numeric order: adding a variant breaks
    /// the exhaustive match below until it is in `ALL` (and so in the documented table).
    #[test]
    fn all_lists_every_code_once_in_order() {
        let index = |e: Exit| match e {
            Exit::Ok => 0,
            Exit::Usage => 1,
            Exit::DataErr => 2,
            Exit::NoInput => 3,
            Exit::NoUser => 4,
            Exit::NoHost => 5,
            Exit::Unavailable => 6,
            Exit::Software => 7,
            Exit::IoErr => 8,
            Exit::TempFail => 9,
            Exit::Protocol => 10,
            Exit::NoPerm => 11,
            Exit::Config => 12,
        };
        for (i, e) in Exit::ALL.into_iter().enumerate() {
            assert_eq!(index(e), i, "{e:?}");
        }
        assert!(Exit::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
        assert!(Exit::ALL.iter().all(|e| e.name().starts_with("EX_")));
    }

    #[test]
    fn replies_map_by_severity_and_phase() {
        let cases = [
            (Phase::Rcpt, "550 5.1.1 no\r\n", Exit::NoUser),
            (Phase::Rcpt, "450 4.2.0 later\r\n", Exit::TempFail),
            (Phase::Mail, "553 bad sender\r\n", Exit::DataErr),
            (Phase::Mail, "421 closing\r\n", Exit::TempFail),
            (Phase::DataEnd, "554 rejected\r\n", Exit::DataErr),
            (Phase::DataInit, "451 later\r\n", Exit::TempFail),
            (Phase::Auth, "535 5.7.8 bad\r\n", Exit::NoPerm),
            (Phase::Auth, "454 4.7.0 later\r\n", Exit::TempFail),
            (Phase::Greeting, "554 go away\r\n", Exit::Unavailable),
            (Phase::DataBlock, "552 5.3.4 too big\r\n", Exit::DataErr),
            (Phase::Ehlo, "250 ok\r\n", Exit::Protocol),
        ];
        for (phase, text, want) in cases {
            assert_eq!(reply_exit(phase, &reply(text)), want, "{phase:?} {text:?}");
        }
    }

    fn refused(phase: Phase, text: &str) -> anyhow::Error {
        Error::Reply {
            phase,
            what: "x".into(),
            reply: reply(&format!("{text}\r\n")),
        }
        .into()
    }

    fn lost(phase: Phase) -> anyhow::Error {
        Error::Lost {
            phase,
            source: std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone"),
        }
        .into()
    }

    fn timeout(phase: Phase) -> anyhow::Error {
        Error::Timeout {
            phase,
            after: Duration::from_secs(1),
        }
        .into()
    }

    /// The one classification every route and mode uses: (error, exit, retry, in step,
    /// reconnect).
    #[test]
    fn one_classification_for_every_failure() {
        use Retry::{Later, Never, NextHost};
        let cases: Vec<(anyhow::Error, Exit, Retry, bool, bool)> = vec![
            (
                Error::Connect("refused".into()).into(),
                Exit::TempFail,
                NextHost,
                false,
                false,
            ),
            (
                Error::DnsTemporary("servfail".into()).into(),
                Exit::TempFail,
                NextHost,
                false,
                false,
            ),
            (
                Error::NoHost("nxdomain".into()).into(),
                Exit::NoHost,
                Never,
                false,
                false,
            ),
            // A tarpit: the greeting never comes (RFC 5321 §5.1: try the next MX).
            (
                timeout(Phase::Greeting),
                Exit::TempFail,
                NextHost,
                false,
                true,
            ),
            (timeout(Phase::Ehlo), Exit::TempFail, NextHost, false, true),
            (timeout(Phase::Rcpt), Exit::TempFail, NextHost, false, true),
            (timeout(Phase::DataEnd), Exit::TempFail, Later, false, true),
            (lost(Phase::Greeting), Exit::TempFail, NextHost, false, true),
            (lost(Phase::Mail), Exit::TempFail, NextHost, false, true),
            (lost(Phase::DataBlock), Exit::TempFail, Later, false, true),
            (lost(Phase::DataEnd), Exit::TempFail, Later, false, true),
            (
                refused(Phase::Greeting, "421 busy"),
                Exit::TempFail,
                NextHost,
                false,
                true,
            ),
            (
                refused(Phase::Greeting, "554 no service"),
                Exit::Unavailable,
                Never,
                true,
                false,
            ),
            (
                refused(Phase::Ehlo, "451 later"),
                Exit::TempFail,
                NextHost,
                true,
                false,
            ),
            (
                refused(Phase::Auth, "454 4.7.0 later"),
                Exit::TempFail,
                NextHost,
                true,
                false,
            ),
            (
                refused(Phase::Auth, "535 5.7.8 bad"),
                Exit::NoPerm,
                Never,
                true,
                false,
            ),
            (
                refused(Phase::Mail, "452 4.5.3 too many messages"),
                Exit::TempFail,
                NextHost,
                true,
                true,
            ),
            (
                refused(Phase::Mail, "451 4.5.3 too many"),
                Exit::TempFail,
                NextHost,
                true,
                true,
            ),
            (
                refused(Phase::Mail, "452 too many messages"),
                Exit::TempFail,
                NextHost,
                true,
                true,
            ),
            (
                refused(Phase::Mail, "450 4.7.1 greylisted"),
                Exit::TempFail,
                NextHost,
                true,
                false,
            ),
            (
                refused(Phase::Mail, "421 4.3.2 bye"),
                Exit::TempFail,
                NextHost,
                false,
                true,
            ),
            (
                refused(Phase::Mail, "550 5.7.1 no"),
                Exit::DataErr,
                Never,
                true,
                false,
            ),
            (
                refused(Phase::Rcpt, "452 4.5.3 too many recipients"),
                Exit::TempFail,
                NextHost,
                true,
                false,
            ),
            (
                refused(Phase::DataInit, "451 later"),
                Exit::TempFail,
                NextHost,
                true,
                false,
            ),
            // A BDAT chunk or the end of data refused: the message reached the server.
            (
                refused(Phase::DataBlock, "552 5.3.4 too big"),
                Exit::DataErr,
                Never,
                true,
                false,
            ),
            (
                refused(Phase::DataBlock, "451 later"),
                Exit::TempFail,
                Later,
                true,
                false,
            ),
            (
                refused(Phase::DataEnd, "451 later"),
                Exit::TempFail,
                Later,
                true,
                false,
            ),
            (
                refused(Phase::DataEnd, "421 closing"),
                Exit::TempFail,
                Later,
                false,
                true,
            ),
            (
                refused(Phase::DataEnd, "554 rejected"),
                Exit::DataErr,
                Never,
                true,
                false,
            ),
            (
                Error::Protocol("junk".into()).into(),
                Exit::Protocol,
                Never,
                false,
                false,
            ),
            (
                Error::Unavailable("no TLS".into()).into(),
                Exit::Unavailable,
                Never,
                true,
                false,
            ),
            (
                anyhow::Error::from(Error::Connect("x".into())).context("with context"),
                Exit::TempFail,
                NextHost,
                false,
                false,
            ),
            (
                anyhow::anyhow!("a bug"),
                Exit::Software,
                Never,
                false,
                false,
            ),
        ];
        for (err, exit, retry, in_step, reconnect) in cases {
            let want = Class {
                exit,
                retry,
                in_step,
                reconnect,
            };
            assert_eq!(classify(&err), want, "{err:#}");
        }
    }

    #[test]
    fn tempfail_outranks_permanent_outranks_ok() {
        assert_eq!(Exit::Ok.most_urgent(Exit::NoUser), Exit::NoUser);
        assert_eq!(Exit::NoUser.most_urgent(Exit::TempFail), Exit::TempFail);
        assert_eq!(Exit::TempFail.most_urgent(Exit::NoUser), Exit::TempFail);
        assert_eq!(Exit::TempFail.most_urgent(Exit::Ok), Exit::TempFail);
    }

    #[test]
    fn exit_code_finds_typed_error_under_context() {
        let err = anyhow::Error::new(Error::Config("x".into())).context("loading");
        assert_eq!(exit_code(&err), Exit::Config);
        let io = anyhow::Error::new(std::io::Error::other("disk")).context("writing");
        assert_eq!(exit_code(&io), Exit::IoErr);
        assert_eq!(exit_code(&anyhow::anyhow!("bug")), Exit::Software);
    }
}
