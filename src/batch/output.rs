//! What `postie batch` tells its user. On stderr: nothing for a message that was sent
//! (unless -v), one line per failure (`postie: list.jsonl:5: RCPT TO <a@x> refused: ...`),
//! and a summary line (`postie: sent 9998 of 10000 messages, 1 deferred, 1 failed`) unless
//! every message was sent and -v is off. With `--json`, stdout carries JSON lines: one
//! object per message as it finishes (`"type": "message"`), then one summary object
//! (`"type": "summary"`), as documented by `schema/postie-batch.schema.json`. Nothing here
//! decides an outcome; it only shows [`Outcome`]s and the [`Summary`].

use std::io::{self, Write};

use serde::Serialize;

use super::{Outcome, Summary};
use crate::error::{exit_code, Error, Exit};
use crate::json::{
    queue_id, recipient_replies, EnvelopeJson, ErrorJson, ExitJson, RecipientJson, ReplyJson, Step,
};
use crate::transcript::printable;

/// Where the report goes, and how much of it.
pub struct Printer {
    program: String,
    verbose: bool,
    json: bool,
}

/// One message, as a JSON line.
#[derive(Debug, Serialize)]
struct MessageJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    source: &'a str,
    status: &'static str,
    envelope: Option<EnvelopeJson>,
    recipients: Vec<RecipientJson>,
    final_reply: Option<ReplyJson>,
    /// The server's queue id, from its reply to the end of data.
    queue_id: Option<String>,
    /// postie's queue id, when the message was queued for a later retry.
    spool_id: Option<&'a str>,
    exit: ExitJson,
    error: Option<ErrorJson>,
}

/// The whole run, as the last JSON line.
#[derive(Debug, Serialize)]
struct SummaryJson {
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
    total: usize,
    sent: usize,
    queued: usize,
    deferred: usize,
    failed: usize,
    connections: usize,
    elapsed_ms: f64,
    exit: ExitJson,
    error: Option<ErrorJson>,
}

/// A failure as JSON: its text, the phase it happened in when it names one, the reply.
fn error_json(e: &anyhow::Error) -> ErrorJson {
    let typed = e.chain().find_map(|c| c.downcast_ref::<Error>());
    let phase = match typed {
        Some(Error::Reply { phase, .. } | Error::Timeout { phase, .. }) => Some((*phase).into()),
        Some(Error::Lost { phase, .. }) => Some((*phase).into()),
        Some(Error::Connect(_)) => Some(Step::Connect),
        Some(Error::NoHost(_) | Error::DnsTemporary(_)) => Some(Step::Resolve),
        Some(Error::Usage(_) | Error::NoInput { .. } | Error::Config(_)) => Some(Step::Setup),
        _ => None,
    };
    ErrorJson {
        message: format!("{e:#}"),
        phase,
        reply: match typed {
            Some(Error::Reply { reply, .. }) => Some(ReplyJson::from(reply)),
            _ => None,
        },
    }
}

fn write_json(doc: &impl Serialize) {
    let text = serde_json::to_string(doc).unwrap_or_else(|e| {
        format!("{{\"type\":\"error\",\"message\":\"cannot serialize the result: {e}\"}}")
    });
    let mut out = io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("postie: warning: cannot write the JSON result to stdout: {e}");
        }
    }
}

impl Printer {
    pub fn new(program: &str, verbosity: u8, json: bool) -> Printer {
        Printer {
            program: program.to_string(),
            verbose: verbosity > 0,
            json,
        }
    }

    fn say(&self, source: &str, text: &str) {
        eprintln!("{}: {}: {}", self.program, source, printable(text));
    }

    /// One message's outcome.
    pub fn message(&mut self, o: &Outcome) {
        if !o.not_tried {
            self.human(o);
        }
        if self.json {
            write_json(&message_json(o));
        }
    }

    fn human(&self, o: &Outcome) {
        match &o.result {
            Ok(report) if o.exit() == Exit::Ok && o.queued.is_none() => {
                if self.verbose {
                    let reply = report
                        .final_reply
                        .as_ref()
                        .map_or_else(String::new, |r| format!(": {}", r.summary()));
                    self.say(&o.source, &format!("sent{reply}"));
                }
            }
            Ok(report) => {
                for line in report.failure_lines() {
                    self.say(&o.source, &line);
                }
            }
            Err(e) => self.say(&o.source, &format!("{e:#}")),
        }
        if let Some(id) = &o.queued {
            self.say(&o.source, &format!("queued as {id} for a later retry"));
        }
        if let Some(e) = &o.queue_error {
            self.say(&o.source, &format!("cannot queue it: {e}"));
        }
    }

    /// The run gives up after `o`: `left` messages after it are not tried.
    pub fn giving_up(&mut self, o: &super::GaveUp, left: usize) {
        if left > 0 {
            eprintln!(
                "{}: giving up: the {left} message(s) after {} are not sent",
                self.program,
                printable(&o.source)
            );
        }
    }

    /// `--connections`: a connection gave up after `o` (its messages in flight are not
    /// sent); `going` connections have not given up so far.
    pub fn connection_gave_up(&mut self, o: &super::GaveUp, going: usize) {
        let rest = if going == 0 {
            "no connection is left: the messages not sent yet are not sent".to_string()
        } else {
            format!("{going} connection(s) go on")
        };
        eprintln!(
            "{}: giving up on one connection after {}: {rest}",
            self.program,
            printable(&o.source)
        );
    }

    /// The summary line (stderr, unless all went well and -v is off) and JSON object.
    pub fn summary(&mut self, s: &Summary) {
        if self.verbose || s.sent != s.total {
            eprintln!("{}: {}", self.program, s.line());
        }
        if self.json {
            write_json(&SummaryJson {
                kind: "summary",
                version: env!("CARGO_PKG_VERSION"),
                total: s.total,
                sent: s.sent,
                queued: s.queued,
                deferred: s.deferred,
                failed: s.failed,
                connections: s.connections,
                elapsed_ms: (s.elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
                exit: s.exit.into(),
                error: None,
            });
        }
    }

    /// With --json: the summary object of a run that stopped before sending anything (bad
    /// input, bad command line). The error line itself goes to stderr as usual.
    pub fn setup_failure(json: bool, err: &anyhow::Error) {
        if !json {
            return;
        }
        write_json(&SummaryJson {
            kind: "summary",
            version: env!("CARGO_PKG_VERSION"),
            total: 0,
            sent: 0,
            queued: 0,
            deferred: 0,
            failed: 0,
            connections: 0,
            elapsed_ms: 0.0,
            exit: exit_code(err).into(),
            error: Some(error_json(err)),
        });
    }
}

fn message_json(o: &Outcome) -> MessageJson<'_> {
    let report = o.result.as_ref().ok();
    let final_reply = report.and_then(|r| r.final_reply.as_ref());
    let error = match &o.result {
        Err(e) => Some(error_json(e)),
        Ok(r) if r.exit() != Exit::Ok => Some(ErrorJson {
            message: r.failure_lines().join("; "),
            phase: Some(Step::Rcpt),
            reply: None,
        }),
        Ok(_) => None,
    };
    let error = match (&o.queue_error, error) {
        (Some(q), Some(mut e)) => {
            e.message = format!("{}; cannot queue it: {q}", e.message);
            Some(e)
        }
        (_, e) => e,
    };
    MessageJson {
        kind: "message",
        index: o.index,
        source: &o.source,
        status: o.class().name(),
        envelope: o.envelope.as_ref().map(|e| EnvelopeJson {
            from: e.reverse_path.clone(),
            recipients: e.forward_paths.clone(),
        }),
        recipients: report.map_or_else(Vec::new, recipient_replies),
        final_reply: final_reply.map(ReplyJson::from),
        queue_id: final_reply
            .filter(|r| r.code.is_positive())
            .and_then(|r| queue_id(&r.text())),
        spool_id: o.queued.as_deref(),
        exit: o.exit().into(),
        error,
    }
}
