//! The phases of an SMTP session and how long each may wait (RFC 5321 §4.5.3.2), and the
//! milestones of the dialogue that `--quit-after` can stop at.
//!
//! Every blocking read or write names its phase, so a timeout tells the user *what* the
//! server failed to do ("timed out waiting for reply to RCPT TO (300 s)").

use std::fmt;
use std::time::Duration;

/// Where in the dialogue postie is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    TlsHandshake,
    Auth,
    Mail,
    Rcpt,
    DataInit,
    DataBlock,
    DataEnd,
    Rset,
    Quit,
}

impl Phase {
    /// Words for "timed out …" and "connection lost …".
    pub fn waiting_for(self) -> &'static str {
        match self {
            Phase::Connect => "connecting",
            Phase::Greeting => "waiting for the server's greeting",
            Phase::Ehlo => "waiting for reply to EHLO",
            Phase::StartTls => "waiting for reply to STARTTLS",
            Phase::TlsHandshake => "during the TLS handshake",
            Phase::Auth => "waiting for reply to AUTH",
            Phase::Mail => "waiting for reply to MAIL FROM",
            Phase::Rcpt => "waiting for reply to RCPT TO",
            Phase::DataInit => "waiting for reply to DATA",
            Phase::DataBlock => "sending the message data",
            Phase::DataEnd => "waiting for reply to end of data",
            Phase::Rset => "waiting for reply to RSET",
            Phase::Quit => "waiting for reply to QUIT",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Greeting => "greeting",
            Phase::Ehlo => "EHLO",
            Phase::StartTls => "STARTTLS",
            Phase::TlsHandshake => "TLS handshake",
            Phase::Auth => "AUTH",
            Phase::Mail => "MAIL FROM",
            Phase::Rcpt => "RCPT TO",
            Phase::DataInit => "DATA",
            Phase::DataBlock => "message data",
            Phase::DataEnd => "end of data",
            Phase::Rset => "RSET",
            Phase::Quit => "QUIT",
        })
    }
}

/// The steps `--quit-after` can stop after, in dialogue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Milestone {
    /// The TCP connection (and, with implicit TLS, its handshake) is up: close it.
    Connect,
    /// The server's 220 greeting.
    Greeting,
    /// The first EHLO (or HELO) reply.
    Ehlo,
    /// The 220 to STARTTLS and the TLS handshake, before EHLO is repeated.
    StartTls,
    /// TLS is up and EHLO has been repeated inside it (implicit TLS: the first EHLO).
    Tls,
    /// AUTH succeeded.
    Auth,
    /// MAIL FROM accepted.
    Mail,
    /// Every RCPT TO answered.
    Rcpt,
    /// DATA answered 354: close without the message, so nothing is delivered.
    Data,
}

impl Milestone {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Milestone::Connect => "connect",
            Milestone::Greeting => "greeting",
            Milestone::Ehlo => "ehlo",
            Milestone::StartTls => "starttls",
            Milestone::Tls => "tls",
            Milestone::Auth => "auth",
            Milestone::Mail => "mail",
            Milestone::Rcpt => "rcpt",
            Milestone::Data => "data",
        }
    }
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Time limits per phase. `uniform` (from `--timeout SECS`) overrides every phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub uniform: Option<Duration>,
}

impl Timeouts {
    pub fn for_phase(&self, phase: Phase) -> Duration {
        if let Some(d) = self.uniform {
            return d;
        }
        let secs = match phase {
            Phase::Connect => 30,
            // RFC 5321 §4.5.3.2.1-2 and .4: 5 minutes.
            Phase::Greeting | Phase::Ehlo | Phase::Auth | Phase::Mail | Phase::Rcpt => 300,
            Phase::StartTls | Phase::TlsHandshake => 120,
            Phase::DataInit => 120,  // §4.5.3.2.3
            Phase::DataBlock => 180, // §4.5.3.2.5
            Phase::DataEnd => 600,   // §4.5.3.2.6
            Phase::Rset | Phase::Quit => 30,
        };
        Duration::from_secs(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_defaults_and_override() {
        let t = Timeouts { uniform: None };
        assert_eq!(t.for_phase(Phase::DataEnd), Duration::from_secs(600));
        assert_eq!(t.for_phase(Phase::Connect), Duration::from_secs(30));
        assert_eq!(t.for_phase(Phase::Rcpt), Duration::from_secs(300));
        let t = Timeouts {
            uniform: Some(Duration::from_secs(7)),
        };
        assert_eq!(t.for_phase(Phase::DataEnd), Duration::from_secs(7));
    }
}
