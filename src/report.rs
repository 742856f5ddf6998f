//! What happened, per recipient, and the exit code that follows (design.md §2).
//!
//! Silent on success. On failure, one stderr line per refused recipient, naming the
//! server's reply and its category in words.

use crate::error::{reply_exit, Exit};
use crate::net::timeout::Phase;
use crate::smtp::reply::{Reply, Severity};

/// One recipient and the server's answer to its RCPT TO.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: String,
    pub reply: Reply,
}

impl Recipient {
    pub fn accepted(&self) -> bool {
        self.reply.code.severity == Severity::PositiveCompletion
    }
}

/// The result of a transaction that got as far as the recipients.
#[derive(Debug, Clone)]
pub struct Report {
    pub recipients: Vec<Recipient>,
    /// The reply to the end of data; `None` when no recipient was accepted.
    pub final_reply: Option<Reply>,
}

impl Report {
    /// 0 when every recipient was accepted and the message taken; 75 if any refusal was
    /// temporary; otherwise the permanent code (67).
    pub fn exit(&self) -> Exit {
        self.recipients
            .iter()
            .filter(|r| !r.accepted())
            .map(|r| match r.reply.code.severity {
                // A positive intermediate reply to RCPT is nonsense.
                Severity::PositiveIntermediate => Exit::Protocol,
                _ => reply_exit(Phase::Rcpt, &r.reply),
            })
            .fold(Exit::Ok, Exit::most_urgent)
    }

    /// Lines for stderr: one per refused recipient, and the partial-delivery note.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .recipients
            .iter()
            .filter(|r| !r.accepted())
            .map(|r| {
                format!(
                    "RCPT TO <{}> refused: {} ({})",
                    r.address,
                    r.reply.summary(),
                    r.reply.code.severity.describe()
                )
            })
            .collect();
        let accepted = self.recipients.iter().filter(|r| r.accepted()).count();
        if let (Some(reply), true) = (&self.final_reply, !lines.is_empty()) {
            lines.push(format!(
                "message accepted for {accepted} of {} recipients: {}",
                self.recipients.len(),
                reply.summary()
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::parse;

    fn rcpt(addr: &str, reply: &str) -> Recipient {
        Recipient {
            address: addr.into(),
            reply: parse(reply.as_bytes()).unwrap().unwrap().0,
        }
    }

    fn report(rcpts: Vec<Recipient>) -> Report {
        Report {
            recipients: rcpts,
            final_reply: Some(
                parse(b"250 2.0.0 Ok: queued as ABC\r\n")
                    .unwrap()
                    .unwrap()
                    .0,
            ),
        }
    }

    #[test]
    fn exit_codes_by_outcomes() {
        let ok = || rcpt("a@x", "250 2.1.5 Ok\r\n");
        let perm = || rcpt("b@x", "550 5.1.1 no such user\r\n");
        let temp = || rcpt("c@x", "450 4.2.0 later\r\n");
        assert_eq!(report(vec![ok(), ok()]).exit(), Exit::Ok);
        assert_eq!(report(vec![ok(), perm()]).exit(), Exit::NoUser);
        assert_eq!(report(vec![perm(), temp()]).exit(), Exit::TempFail);
        assert_eq!(report(vec![temp(), perm()]).exit(), Exit::TempFail);
    }

    #[test]
    fn failure_lines_name_recipient_reply_and_category() {
        let r = report(vec![
            rcpt("a@x", "250 2.1.5 Ok\r\n"),
            rcpt("b@x", "550 5.1.1 no such user\r\n"),
        ]);
        assert_eq!(
            r.failure_lines(),
            [
                "RCPT TO <b@x> refused: 550 5.1.1 no such user (permanent negative completion)",
                "message accepted for 1 of 2 recipients: 250 2.0.0 Ok: queued as ABC",
            ]
        );
        assert!(report(vec![rcpt("a@x", "250 Ok\r\n")])
            .failure_lines()
            .is_empty());
    }
}
