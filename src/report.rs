//! What happened, per recipient, and the exit code that follows (design.md §2).
//!
//! Silent on success. On failure, one stderr line per refused recipient, naming the
//! server's reply and its category in words.
//!
//! Under LMTP (RFC 2033 §4.2) each recipient accepted at RCPT also gets its own reply to
//! the end of data; a recipient refused there counts exactly like one refused at RCPT,
//! with that reply (4xx → 75, 5xx → 67).

use std::time::Duration;

use crate::error::{reply_exit, Exit};
use crate::net::timeout::Phase;
use crate::smtp::reply::{Reply, Severity};
use crate::trace::Trace;

/// What a delivery tells whoever watches it, as it goes: `--json` (json::Facts), the
/// queue (which drops a delivered entry the moment its transaction ends, before QUIT),
/// and anything else. The engine and the session call it; nothing else reaches back.
/// Every method has a default that does nothing.
pub trait Observer {
    /// Routing has begun: names are being looked up.
    fn resolving(&mut self) {}
    /// One connection ended: what the wire showed, and how long the dialogue took.
    fn connection(&mut self, _seen: Trace, _elapsed: Duration) {}
    /// A mail transaction ended with these per-recipient replies, before QUIT.
    fn transaction_end(&mut self, _report: &Report) {}
}

/// An observer that watches nothing.
pub struct Unobserved;

impl Observer for Unobserved {}

/// One recipient and the server's answer to its RCPT TO.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: String,
    pub reply: Reply,
    /// LMTP only: this recipient's own reply to the end of data (RFC 2033 §4.2); `None`
    /// under SMTP, and for a recipient refused at RCPT.
    pub data_reply: Option<Reply>,
    /// Accepted at RCPT, but the message was not sent to it: another recipient was
    /// refused and all-or-nothing (msmtp's behaviour) sends to nobody then.
    pub withheld: bool,
}

impl Recipient {
    /// A recipient as answered at RCPT (no end-of-data reply of its own yet).
    pub fn at_rcpt(address: String, reply: Reply) -> Recipient {
        Recipient {
            address,
            reply,
            data_reply: None,
            withheld: false,
        }
    }

    /// Accepted at RCPT and, under LMTP, at the end of data too (and not withheld).
    pub fn accepted(&self) -> bool {
        let positive = |r: &Reply| r.code.severity == Severity::PositiveCompletion;
        !self.withheld && positive(&self.reply) && self.data_reply.as_ref().is_none_or(positive)
    }

    /// The reply that decided this recipient: its end-of-data reply under LMTP, else the
    /// reply to RCPT.
    pub fn outcome(&self) -> &Reply {
        self.data_reply.as_ref().unwrap_or(&self.reply)
    }
}

/// Where one recipient stands after an attempt (the [`Outcome`]'s first part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The server took the message for this recipient.
    Delivered,
    /// Not now: a 4xx reply, or withheld (all or nothing) because of a temporary refusal.
    Deferred,
    /// For good: a 5xx (or nonsensical) reply, or withheld because of a permanent refusal.
    Refused,
}

/// The exit code a recipient's refusal stands for: the reply's own (75 for 4xx, 67 and the
/// like for 5xx); a positive intermediate reply to RCPT (or to LMTP's end of data) is
/// nonsense (76).
fn refusal_exit(reply: &Reply) -> Exit {
    match reply.code.severity {
        Severity::PositiveIntermediate => Exit::Protocol,
        _ => reply_exit(Phase::Rcpt, reply),
    }
}

/// What became of one recipient of one attempt, on any route and in any mode (submission
/// and its fallbacks, MX per domain, socket, batch, queue run, `-bs`): the one
/// per-recipient outcome that the queue (deliver, retry, bounce), `--json`'s per-recipient
/// status, the log line's `refused` field, the stderr lines and the exit code all read.
/// Made by [`Report::outcomes`] when the transaction got as far as the recipients, and by
/// [`outcomes`] for an attempt that may have failed as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub address: String,
    pub fate: Fate,
    /// The exit code this recipient alone stands for: 0 when delivered, and when withheld
    /// (the refusal that withheld it speaks for it).
    pub exit: Exit,
    pub cause: Cause,
}

/// What decided a recipient's [`Outcome`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// The server's answer for this recipient: its reply to RCPT, or under LMTP its own
    /// reply to the end of data (`at_data`, RFC 2033 §4.2).
    Reply { reply: Reply, at_data: bool },
    /// Accepted at RCPT (this reply), but the message was not sent to it: all or nothing,
    /// and another recipient was refused.
    Withheld { reply: Reply },
    /// The attempt failed as a whole before this recipient had an answer of its own
    /// (connection, TLS, AUTH, MAIL FROM, the data, ...): the error, in words, which every
    /// recipient of the attempt shares.
    Failed(String),
}

impl Outcome {
    /// The server's reply for this recipient, when it had one of its own.
    pub fn reply(&self) -> Option<&Reply> {
        match &self.cause {
            Cause::Reply { reply, .. } | Cause::Withheld { reply } => Some(reply),
            Cause::Failed(_) => None,
        }
    }

    /// Why, in one short phrase: the deciding reply's summary, the all-or-nothing note,
    /// or the error.
    pub fn why(&self) -> String {
        match &self.cause {
            Cause::Reply { reply, .. } => reply.summary(),
            Cause::Withheld { .. } => "withheld (all or nothing)".to_string(),
            Cause::Failed(text) => text.clone(),
        }
    }

    /// The stderr line for a recipient the server refused (`None` for the others: a
    /// delivered or withheld recipient, or one whose attempt failed as a whole, which its
    /// error reports once for all).
    pub fn failure_line(&self) -> Option<String> {
        match (&self.cause, self.fate) {
            (_, Fate::Delivered) | (Cause::Withheld { .. } | Cause::Failed(_), _) => None,
            (Cause::Reply { reply, at_data }, _) => {
                let (what, when) = if *at_data {
                    (format!("delivery to <{}>", self.address), " at end of data")
                } else {
                    (format!("RCPT TO <{}>", self.address), "")
                };
                Some(format!(
                    "{what} refused{when}: {} ({})",
                    reply.summary(),
                    reply.code.severity.describe()
                ))
            }
        }
    }
}

/// Each of `recipients`' outcome of one attempt: per recipient when the transaction got as
/// far as the recipients, else the attempt's error for every one of them (deferred when the
/// error is temporary, refused otherwise).
pub fn outcomes(recipients: &[String], result: &anyhow::Result<Report>) -> Vec<Outcome> {
    match result {
        Ok(report) => report.outcomes(),
        Err(e) => failed(recipients, e),
    }
}

/// Every one of `recipients` failed with `e`.
pub fn failed(recipients: &[String], e: &anyhow::Error) -> Vec<Outcome> {
    let exit = crate::error::exit_code(e);
    let fate = Fate::of_exit(exit);
    let text = format!("{e:#}");
    recipients
        .iter()
        .map(|address| Outcome {
            address: address.clone(),
            fate,
            exit,
            cause: Cause::Failed(text.clone()),
        })
        .collect()
}

/// The most urgent exit code of some outcomes (0 for none).
pub fn exit_of(outcomes: &[Outcome]) -> Exit {
    outcomes
        .iter()
        .map(|o| o.exit)
        .fold(Exit::Ok, Exit::most_urgent)
}

impl Fate {
    /// The fate of recipients whose attempt ended with this exit code as a whole: deferred
    /// when it is temporary (75), refused otherwise.
    pub fn of_exit(exit: Exit) -> Fate {
        if exit == Exit::TempFail {
            Fate::Deferred
        } else {
            Fate::Refused
        }
    }
}

/// The result of a transaction that got as far as the recipients.
#[derive(Debug, Clone)]
pub struct Report {
    pub recipients: Vec<Recipient>,
    /// The reply to the end of data; `None` when no recipient was accepted. Under LMTP,
    /// the first positive per-recipient reply (`None` when every recipient was refused).
    pub final_reply: Option<Reply>,
}

impl Report {
    /// 0 when every recipient was accepted and the message taken; 75 if any refusal was
    /// temporary; otherwise the permanent code (67). A withheld recipient adds nothing of
    /// its own: the refusal that withheld it decides.
    pub fn exit(&self) -> Exit {
        self.recipients
            .iter()
            .filter(|r| !r.accepted() && !r.withheld)
            .map(|r| refusal_exit(r.outcome()))
            .fold(Exit::Ok, Exit::most_urgent)
    }

    /// Each recipient's [`Outcome`]: its fate, the exit code it stands for and the reply
    /// that decided it. A withheld recipient (all or nothing) goes with the refusal that
    /// withheld it: deferred when the transaction's exit is temporary.
    pub fn outcomes(&self) -> Vec<Outcome> {
        let withheld = if self.exit() == Exit::TempFail {
            Fate::Deferred
        } else {
            Fate::Refused
        };
        self.recipients
            .iter()
            .map(|r| {
                let reply = r.outcome().clone();
                let at_data = r.data_reply.is_some();
                let (fate, exit, cause) = if r.accepted() {
                    (Fate::Delivered, Exit::Ok, Cause::Reply { reply, at_data })
                } else if r.withheld {
                    (withheld, Exit::Ok, Cause::Withheld { reply })
                } else {
                    let fate = if reply.code.severity == Severity::TransientNegative {
                        Fate::Deferred
                    } else {
                        Fate::Refused
                    };
                    let exit = refusal_exit(&reply);
                    (fate, exit, Cause::Reply { reply, at_data })
                };
                Outcome {
                    address: r.address.clone(),
                    fate,
                    exit,
                    cause,
                }
            })
            .collect()
    }

    /// No recipient took the message and at least one refusal was temporary: another host
    /// may take it now (the engine's "next host" rule for a transaction that ended in
    /// replies rather than an error).
    pub fn untaken_and_retryable(&self) -> bool {
        self.final_reply.is_none() && self.exit() == Exit::TempFail
    }

    /// Lines for stderr: one per refused recipient, and (SMTP) the partial-delivery note,
    /// or the all-or-nothing note naming the recipients withheld. Under LMTP every
    /// recipient's line already carries its own final reply, so there is no note.
    pub fn failure_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .outcomes()
            .iter()
            .filter_map(Outcome::failure_line)
            .collect();
        let accepted = self.recipients.iter().filter(|r| r.accepted()).count();
        let lmtp = self.recipients.iter().any(|r| r.data_reply.is_some());
        if let (Some(reply), true) = (&self.final_reply, !lines.is_empty() && !lmtp) {
            lines.push(format!(
                "message accepted for {accepted} of {} recipients: {}",
                self.recipients.len(),
                reply.summary()
            ));
        }
        let withheld: Vec<String> = self
            .recipients
            .iter()
            .filter(|r| r.withheld)
            .map(|r| format!("<{}>", r.address))
            .collect();
        if !withheld.is_empty() {
            lines.push(format!(
                "message sent to nobody (all or nothing): not to {} either, accepted but \
                 withheld because a recipient was refused",
                withheld.join(", ")
            ));
        }
        lines
    }

    /// All or nothing (msmtp's behaviour): when any recipient was refused, the accepted
    /// ones are withheld, and the message goes to nobody.
    pub fn withhold_all_if_any_refused(recipients: &mut [Recipient]) -> bool {
        let refused = recipients.iter().any(|r| !r.accepted());
        if refused {
            for r in recipients.iter_mut().filter(|r| r.accepted()) {
                r.withheld = true;
            }
        }
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::smtp::reply::parse;

    fn rcpt(addr: &str, reply: &str) -> Recipient {
        Recipient::at_rcpt(addr.into(), parse(reply.as_bytes()).unwrap().unwrap().0)
    }

    /// Accepted at RCPT, then `data` at LMTP's end of data.
    fn lmtp(addr: &str, data: &str) -> Recipient {
        Recipient {
            data_reply: Some(parse(data.as_bytes()).unwrap().unwrap().0),
            ..rcpt(addr, "250 2.1.5 Ok\r\n")
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

    #[test]
    fn all_or_nothing_withholds_the_accepted_and_the_refusal_decides() {
        let mut rcpts = vec![
            rcpt("a@x", "250 2.1.5 Ok\r\n"),
            rcpt("b@x", "550 5.1.1 no such user\r\n"),
            rcpt("c@x", "250 2.1.5 Ok\r\n"),
        ];
        assert!(Report::withhold_all_if_any_refused(&mut rcpts));
        let r = Report {
            recipients: rcpts,
            final_reply: None,
        };
        assert!(r.recipients.iter().all(|r| !r.accepted()));
        assert_eq!(r.exit(), Exit::NoUser);
        assert_eq!(
            r.failure_lines(),
            [
                "RCPT TO <b@x> refused: 550 5.1.1 no such user (permanent negative completion)",
                "message sent to nobody (all or nothing): not to <a@x>, <c@x> either, accepted \
                 but withheld because a recipient was refused",
            ]
        );
        let mut later = vec![
            rcpt("a@x", "250 2.1.5 Ok\r\n"),
            rcpt("b@x", "450 4.2.0 later\r\n"),
        ];
        Report::withhold_all_if_any_refused(&mut later);
        let r = Report {
            recipients: later,
            final_reply: None,
        };
        assert_eq!(r.exit(), Exit::TempFail);
        assert!(r.untaken_and_retryable());
        let mut fine = vec![rcpt("a@x", "250 2.1.5 Ok\r\n")];
        assert!(!Report::withhold_all_if_any_refused(&mut fine));
        assert!(fine[0].accepted());
    }

    #[test]
    fn withheld_recipients_follow_the_refusal_that_withheld_them() {
        let fates = |r: &Report| r.outcomes().iter().map(|o| o.fate).collect::<Vec<_>>();
        use Fate::{Deferred, Refused};
        for (refusal, fate) in [
            ("450 4.2.0 later\r\n", Deferred),
            ("550 5.1.1 no\r\n", Refused),
        ] {
            let mut rcpts = vec![rcpt("a@x", "250 2.1.5 Ok\r\n"), rcpt("b@x", refusal)];
            Report::withhold_all_if_any_refused(&mut rcpts);
            let r = Report {
                recipients: rcpts,
                final_reply: None,
            };
            assert_eq!(fates(&r), [fate, fate], "{refusal:?}");
        }
    }

    #[test]
    fn lmtp_end_of_data_refusals_count_like_rcpt_refusals() {
        let ok = || lmtp("a@x", "250 2.0.0 <a@x> saved\r\n");
        let full = || lmtp("b@x", "452 4.2.2 <b@x> mailbox full\r\n");
        let gone = || lmtp("c@x", "550 5.1.1 <c@x> no such user\r\n");
        let odd = || lmtp("d@x", "354 go on\r\n");
        let cases: Vec<(Vec<Recipient>, Exit)> = vec![
            (vec![ok(), ok()], Exit::Ok),
            (vec![ok(), full()], Exit::TempFail),
            (vec![ok(), gone()], Exit::NoUser),
            (vec![gone(), full()], Exit::TempFail),
            (vec![ok(), odd()], Exit::Protocol),
            (
                vec![rcpt("e@x", "550 5.1.1 unknown\r\n"), ok()],
                Exit::NoUser,
            ),
        ];
        for (rcpts, want) in cases {
            let r = report(rcpts);
            assert_eq!(r.exit(), want, "{:?}", r.failure_lines());
        }
        assert!(ok().accepted());
        assert!(!full().accepted());
        assert_eq!(full().outcome().code.as_u16(), 452);
        assert_eq!(rcpt("e@x", "550 no\r\n").outcome().code.as_u16(), 550);
    }

    #[test]
    fn lmtp_failure_lines_name_each_refused_recipient_and_no_note() {
        let r = report(vec![
            lmtp("a@x", "250 2.0.0 <a@x> saved\r\n"),
            lmtp("b@x", "452 4.2.2 <b@x> mailbox full\r\n"),
            rcpt("c@x", "550 5.1.1 unknown\r\n"),
        ]);
        assert_eq!(
            r.failure_lines(),
            [
                "delivery to <b@x> refused at end of data: 452 4.2.2 <b@x> mailbox full \
                 (transient negative completion)",
                "RCPT TO <c@x> refused: 550 5.1.1 unknown (permanent negative completion)",
            ]
        );
        assert!(report(vec![lmtp("a@x", "250 2.0.0 saved\r\n")])
            .failure_lines()
            .is_empty());
    }

    #[test]
    fn one_outcome_per_recipient_whether_replies_or_an_error_ended_the_attempt() {
        let r = report(vec![
            rcpt("a@x", "250 2.1.5 Ok\r\n"),
            rcpt("b@x", "450 4.2.0 later\r\n"),
            rcpt("c@x", "550 5.1.1 no\r\n"),
            rcpt("d@x", "354 what\r\n"),
            lmtp("e@x", "452 4.2.2 full\r\n"),
            lmtp("f@x", "250 2.0.0 saved\r\n"),
        ]);
        let got: Vec<(String, Fate, Exit, Option<String>)> = r
            .outcomes()
            .into_iter()
            .map(|o| (o.address.clone(), o.fate, o.exit, o.failure_line()))
            .collect();
        use Fate::{Deferred, Delivered, Refused};
        let line = |s: &str| Some(s.to_string());
        assert_eq!(
            got,
            [
                ("a@x".into(), Delivered, Exit::Ok, None),
                (
                    "b@x".into(),
                    Deferred,
                    Exit::TempFail,
                    line("RCPT TO <b@x> refused: 450 4.2.0 later (transient negative completion)")
                ),
                (
                    "c@x".into(),
                    Refused,
                    Exit::NoUser,
                    line("RCPT TO <c@x> refused: 550 5.1.1 no (permanent negative completion)")
                ),
                (
                    "d@x".into(),
                    Refused,
                    Exit::Protocol,
                    line("RCPT TO <d@x> refused: 354 what (positive intermediate)")
                ),
                (
                    "e@x".into(),
                    Deferred,
                    Exit::TempFail,
                    line(
                        "delivery to <e@x> refused at end of data: 452 4.2.2 full \
                         (transient negative completion)"
                    )
                ),
                ("f@x".into(), Delivered, Exit::Ok, None),
            ]
        );
        // The report's exit is the outcomes' most urgent.
        assert_eq!(exit_of(&r.outcomes()), r.exit());
        // An attempt that failed as a whole: every recipient shares its error.
        let to = ["a@x".to_string(), "b@x".to_string()];
        for (e, fate, exit) in [
            (Error::Connect("refused".into()), Deferred, Exit::TempFail),
            (Error::NoHost("no such host".into()), Refused, Exit::NoHost),
            (Error::Data("too big".into()), Refused, Exit::DataErr),
        ] {
            let got = outcomes(&to, &Err(e.into()));
            assert_eq!(got.len(), 2);
            for o in &got {
                assert_eq!((o.fate, o.exit), (fate, exit), "{o:?}");
                assert!(
                    matches!(&o.cause, Cause::Failed(t) if !t.is_empty()),
                    "{o:?}"
                );
                assert_eq!(
                    o.failure_line(),
                    None,
                    "the error is reported once, not per recipient"
                );
            }
            assert_eq!(exit_of(&got), exit);
        }
        assert_eq!(exit_of(&[]), Exit::Ok);
    }
}
