//! `postie batch PATH...` (`--messages PATH...`): many messages over one connection, the
//! way a user feeds a relay at full speed.
//!
//! The inputs are checked whole first ([`input::plan`]): a bad JSON line or an empty
//! directory stops the run before anything is sent. Then each message is opened (ready
//! messages stream from their files), enveloped as a single message would be, and sent as
//! one transaction over the engine's [`Sessions`]; the route, the TLS set-up, the
//! greeting, EHLO, STARTTLS and AUTH happen once per connection, not per message. With
//! `--connections N`, N connections share the batch (`parallel.rs`), each message taken
//! by one of them, the outcomes reported here in input order all the same.
//!
//! Reconnecting and falling back are the engine's ([`Sessions::send`]): a server that
//! limits messages per connection says so with 421 (at any point, RFC 5321 §3.8) or with
//! 452 to MAIL (RFC 5321 §4.5.3.1.10 "too many"; 4.5.3 in enhanced codes), and a server
//! may also just drop the connection. Then the session is closed, a new one opened, and
//! the same message tried again: at most [`MAX_RECONNECTS`] times per message. A failure
//! that lets the next host take the message (a 4xx before the data, every recipient
//! deferred) moves on to the next server of a fallback list, as a single message does.
//! When the reconnections run out, or a new session cannot be opened at all, the run
//! gives up: the message and every one after it end with that failure (75 when it is
//! temporary), and are offered to the retry hook.
//!
//! Every other failure is that message's own outcome: a permanent one is reported and the
//! run goes on; a temporary one (4xx to RCPT or DATA, ...) is offered to the retry hook
//! (the queue, when it is on), with the envelope narrowed to the recipients still due. The
//! exit code is the most urgent over all messages (design.md §2: 75, then the permanent
//! code, then 0); a message the hook queued counts as done.
//!
//! Owns: reading the inputs, one outcome per message, the retry hook, the report. Must
//! not: open connections or decide retries itself (the engine does, through
//! [`crate::error::classify`]).

pub mod input;
mod mbox;
pub mod output;
mod parallel;

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::config::{Config, Mode};
use crate::engine::{Sent, Sessions};
use crate::envelope::Envelope;
use crate::error::{exit_code, Error, Exit};
use crate::report::{Fate, Report};
use input::{Item, Prepare};
pub use output::Printer;

pub use crate::engine::MAX_RECONNECTS;

/// Offered each message that failed temporarily: its envelope (only the recipients still
/// due), the whole message, and why it failed. Returns the queue id when the message was
/// durably queued, `None` when nothing took it.
pub type OnRetryable<'a> = dyn FnMut(&Envelope, &mut dyn Read, &str) -> Result<Option<String>> + 'a;

/// Connection `i`'s sessions (`--connections N`: `i` is 0 ... N-1). Called on the thread
/// that sends over them.
pub type Connect<'a> = dyn Fn(usize) -> Sessions + Sync + 'a;

/// What became of one message.
#[derive(Debug)]
pub struct Outcome {
    /// 1 for the first message.
    pub index: usize,
    /// Where it came from (`dir/a.eml`, `box.mbox#2`, `list.jsonl:5`).
    pub source: String,
    /// `None` when the message could not even be opened or enveloped.
    pub envelope: Option<Envelope>,
    pub size: Option<u64>,
    pub result: Result<Report>,
    /// The queue id, when the retry hook queued the message.
    pub queued: Option<String>,
    /// Why the retry hook could not take the message.
    pub queue_error: Option<String>,
    /// Not tried: the run had given up before its turn (one line reports them all).
    pub not_tried: bool,
}

/// How a message ended, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The server accepted it for every recipient.
    Sent,
    /// It failed temporarily and is in the queue.
    Queued,
    /// It failed temporarily and nothing took it: retry later (75).
    Deferred,
    /// Permanently refused, or unusable (65, 66, 67, ...).
    Failed,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Sent => "sent",
            Class::Queued => "queued",
            Class::Deferred => "deferred",
            Class::Failed => "failed",
        }
    }
}

impl Outcome {
    /// This message's exit code: a queued message counts as done (design.md §2).
    pub fn exit(&self) -> Exit {
        if self.queued.is_some() {
            return Exit::Ok;
        }
        match &self.result {
            Ok(report) => report.exit(),
            Err(e) => exit_code(e),
        }
    }

    pub fn class(&self) -> Class {
        match (self.exit(), &self.queued) {
            (_, Some(_)) => Class::Queued,
            (Exit::Ok, None) => Class::Sent,
            (Exit::TempFail, None) => Class::Deferred,
            _ => Class::Failed,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub sent: usize,
    pub queued: usize,
    pub deferred: usize,
    pub failed: usize,
    /// Sessions opened.
    pub connections: usize,
    pub exit: Exit,
    pub elapsed: Duration,
}

impl Summary {
    fn new(total: usize) -> Summary {
        Summary {
            total,
            sent: 0,
            queued: 0,
            deferred: 0,
            failed: 0,
            connections: 0,
            exit: Exit::Ok,
            elapsed: Duration::ZERO,
        }
    }

    fn add(&mut self, o: &Outcome) {
        match o.class() {
            Class::Sent => self.sent += 1,
            Class::Queued => self.queued += 1,
            Class::Deferred => self.deferred += 1,
            Class::Failed => self.failed += 1,
        }
        self.exit = self.exit.most_urgent(o.exit());
    }

    /// "sent 9998 of 10000 messages, 1 deferred, 1 failed"
    pub fn line(&self) -> String {
        let noun = if self.total == 1 {
            "message"
        } else {
            "messages"
        };
        let mut line = format!("sent {} of {} {noun}", self.sent, self.total);
        for (n, what) in [
            (self.queued, "queued"),
            (self.deferred, "deferred"),
            (self.failed, "failed"),
        ] {
            if n > 0 {
                line.push_str(&format!(", {n} {what}"));
            }
        }
        line
    }
}

/// Send every message `cfg.messages` names; print each outcome and the summary through
/// `out`. Fails (sending nothing) when the inputs do not check out.
/// `connect(i)` gives connection `i`'s sessions (`--connections`: one per worker, each
/// built on the worker's own thread).
pub fn run(
    cfg: &Config,
    connect: &Connect<'_>,
    on_retryable: &mut OnRetryable<'_>,
    out: &mut Printer,
) -> Result<Summary> {
    let started = Instant::now();
    let paths = match &cfg.mode {
        Mode::Batch(paths) => paths.as_slice(),
        _ => &[],
    };
    let plan = input::plan(cfg, paths)?;
    let total = plan.total;
    let mut summary = Summary::new(total);
    if cfg.connections > 1 && total > 1 {
        let workers = cfg.connections.min(total);
        let run = parallel::Run {
            cfg,
            plan: &plan,
            connect,
            workers,
        };
        summary.connections = run.go(on_retryable, out, &mut summary);
        summary.elapsed = started.elapsed();
        out.summary(&summary);
        return Ok(summary);
    }
    let mut sessions = connect(0);
    let mut prep = Prepare::new(cfg);
    let mut gave_up: Option<anyhow::Error> = None;
    // Each message handed to the engine, until its outcome is back: at most a window's
    // worth, so memory does not grow with the batch.
    let mut flight: Flight = HashMap::new();
    let mut report = |prep: &mut Prepare<'_>,
                      finished: Vec<(usize, Option<Sent>)>,
                      gave_up: &mut Option<anyhow::Error>,
                      flight: &mut Flight| {
        for (id, sent) in finished {
            let Some(InFlight { item, known }) = flight.remove(&id) else {
                continue;
            };
            let one = One {
                index: id,
                item: &item,
                known,
                sent,
                total,
            };
            report_one(cfg, prep, one, gave_up, on_retryable, out, &mut summary);
        }
    };
    for (i, item) in plan.items().enumerate() {
        let prepared = if gave_up.is_some() {
            None
        } else {
            Some(prep.item(&item))
        };
        let source = item.source();
        flight.insert(i, InFlight { item, known: None });
        let finished = match prepared {
            None => vec![(i, None)],
            Some(Ok((envelope, message))) => {
                if let Some(f) = flight.get_mut(&i) {
                    f.known = Some((envelope.clone(), message.size));
                }
                let mut reopen = |id: usize| reopen_in_flight(&mut prep, &flight, id);
                sessions.push(i, &envelope, message, &source, &mut reopen)
            }
            Some(Err(e)) => {
                // Reported in order: after the messages still in flight.
                let mut reopen = |id: usize| reopen_in_flight(&mut prep, &flight, id);
                let mut finished = sessions.finish(&mut reopen);
                let sent = Sent {
                    result: Err(e),
                    give_up: None,
                };
                finished.push((i, Some(sent)));
                finished
            }
        };
        report(&mut prep, finished, &mut gave_up, &mut flight);
    }
    let mut reopen = |id: usize| reopen_in_flight(&mut prep, &flight, id);
    let finished = sessions.finish(&mut reopen);
    report(&mut prep, finished, &mut gave_up, &mut flight);
    sessions.close();
    summary.connections = sessions.connections;
    summary.elapsed = started.elapsed();
    out.summary(&summary);
    Ok(summary)
}

/// A message of the batch taken from the plan, until its outcome is reported: the item
/// (to open it again after a reconnect, and to report it), and once prepared, its
/// envelope and size.
struct InFlight {
    item: Item,
    known: Option<(Envelope, Option<u64>)>,
}

/// The messages in flight, by their index in the batch.
type Flight = HashMap<usize, InFlight>;

/// Message `id` of the batch, opened again (the engine sends it once more).
fn reopen_in_flight(
    prep: &mut Prepare<'_>,
    flight: &Flight,
    id: usize,
) -> Result<crate::message::Message> {
    match flight.get(&id) {
        Some(f) => prep.item(&f.item).map(|(_, m)| m),
        None => Err(anyhow::anyhow!(
            "no message {} of this batch in flight",
            id + 1
        )),
    }
}

/// One message back from the engine.
struct One<'a> {
    /// 0 for the first message.
    index: usize,
    item: &'a Item,
    /// Its envelope and size, when it got as far as the engine.
    known: Option<(Envelope, Option<u64>)>,
    /// What became of it; `None`: the run gave up before its turn.
    sent: Option<Sent>,
    /// Messages in the batch.
    total: usize,
}

/// One message's outcome, in order: offered for retry, logged, printed and counted. A
/// give-up is remembered in `gave_up`, for every message after this one.
fn report_one(
    cfg: &Config,
    prep: &mut Prepare<'_>,
    one: One<'_>,
    gave_up: &mut Option<anyhow::Error>,
    on_retryable: &mut OnRetryable<'_>,
    out: &mut Printer,
    summary: &mut Summary,
) {
    let (index, item, total) = (one.index, one.item, one.total);
    let (outcome, give_up) = settle(prep, one, gave_up.as_ref());
    publish(cfg, prep, item, outcome, on_retryable, out, summary);
    if let Some(why) = give_up {
        out.giving_up(&why.0, total - index - 1);
        *gave_up = Some(why.1);
    }
}

/// One message's [`Outcome`]; with it, when the run gave up after it, the outcome's
/// copy for the report line and the reason each message after it ends with. `gave_up`:
/// the reason of an earlier give-up, for a message that was not tried.
fn settle(
    prep: &mut Prepare<'_>,
    one: One<'_>,
    gave_up: Option<&anyhow::Error>,
) -> (Outcome, Option<(GaveUp, anyhow::Error)>) {
    let One {
        index,
        item,
        known,
        sent,
        total: _,
    } = one;
    let mut give_up = None;
    let outcome = match (sent, gave_up) {
        (Some(sent), _) => {
            give_up = match (&sent.give_up, &sent.result) {
                (Some(why), Err(e)) if why.is_empty() => Some(duplicate(e)),
                (Some(why), Err(e)) => Some(duplicate(e).context(why.clone())),
                _ => None,
            };
            let (envelope, size) = match known {
                Some((e, size)) => (Some(e), size),
                None => (None, None),
            };
            Outcome {
                index: index + 1,
                source: item.source(),
                envelope,
                size,
                result: sent.result,
                queued: None,
                queue_error: None,
                not_tried: false,
            }
        }
        (None, Some(reason)) => not_tried(prep, index, item, reason),
        (None, None) => {
            let reason = anyhow::anyhow!("not tried: the run gave up");
            not_tried(prep, index, item, &reason)
        }
    };
    let give_up = give_up.map(|why| {
        let source = GaveUp {
            source: outcome.source.clone(),
        };
        (source, why)
    });
    (outcome, give_up)
}

/// The message after which the run gave up, for [`Printer::giving_up`].
pub struct GaveUp {
    pub source: String,
}

/// A settled message, in order: offered for retry, logged, printed and counted.
fn publish(
    cfg: &Config,
    prep: &mut Prepare<'_>,
    item: &Item,
    mut outcome: Outcome,
    on_retryable: &mut OnRetryable<'_>,
    out: &mut Printer,
    summary: &mut Summary,
) {
    offer_for_retry(prep, item, &mut outcome, on_retryable);
    log(cfg, &outcome);
    out.message(&outcome);
    summary.add(&outcome);
}

/// A message after the run gave up: opened only to have its envelope for the report and
/// the retry hook; its result is the give-up reason.
fn not_tried(prep: &mut Prepare<'_>, index: usize, item: &Item, reason: &anyhow::Error) -> Outcome {
    let (envelope, size, result) = match prep.item(item) {
        Ok((e, m)) => (Some(e), m.size, Err(duplicate(reason))),
        Err(e) => (None, None, Err(e)),
    };
    Outcome {
        index: index + 1,
        source: item.source(),
        envelope,
        size,
        result,
        queued: None,
        queue_error: None,
        not_tried: true,
    }
}

/// Hand a temporarily failed message to the retry hook, with only the recipients still due.
fn offer_for_retry(
    prep: &mut Prepare<'_>,
    item: &Item,
    outcome: &mut Outcome,
    on_retryable: &mut OnRetryable<'_>,
) {
    if outcome.exit() != Exit::TempFail {
        return;
    }
    let Some(envelope) = &outcome.envelope else {
        return;
    };
    let (due, why) = match &outcome.result {
        Ok(report) => {
            // The recipients whose fate is "later" — with all or nothing, also those
            // withheld because of a temporary refusal: they did not get the message either.
            let due: Vec<String> = report
                .outcomes()
                .into_iter()
                .filter(|o| o.fate == Fate::Deferred)
                .map(|o| o.address)
                .collect();
            let why = report.failure_lines().join("; ");
            (
                Envelope {
                    reverse_path: envelope.reverse_path.clone(),
                    forward_paths: due,
                },
                why,
            )
        }
        Err(e) => (envelope.clone(), format!("{e:#}")),
    };
    let result = prep
        .item(item)
        .and_then(|(_, m)| on_retryable(&due, &mut m.into_reader(), &why));
    match result {
        Ok(id) => outcome.queued = id,
        Err(e) => outcome.queue_error = Some(format!("{e:#}")),
    }
}

/// `--log` / `--syslog`: one line per message that got as far as an envelope.
fn log(cfg: &Config, o: &Outcome) {
    if cfg.log.is_none() && !cfg.syslog {
        return;
    }
    let Some(envelope) = &o.envelope else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let line = crate::log::line(now, cfg, envelope, o.size, &o.result);
    if let Some(path) = &cfg.log {
        crate::log::append(path, &line);
    }
    if cfg.syslog {
        crate::log::syslog(&line, o.exit() != Exit::Ok);
    }
}

/// The same failure again, for each message after the run gave up: the typed [`Error`]
/// (so the exit code and the reply are the same) under the whole message as context.
fn duplicate(err: &anyhow::Error) -> anyhow::Error {
    let io = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
    let typed = err.chain().find_map(|c| c.downcast_ref::<Error>());
    let copy = match typed {
        Some(Error::Usage(m)) => Error::Usage(m.clone()),
        Some(Error::Data(m)) => Error::Data(m.clone()),
        Some(Error::NoInput { what, path, source }) => Error::NoInput {
            what,
            path: path.clone(),
            source: io(source),
        },
        Some(Error::Config(m)) => Error::Config(m.clone()),
        Some(Error::Reply { phase, what, reply }) => Error::Reply {
            phase: *phase,
            what: what.clone(),
            reply: reply.clone(),
        },
        Some(Error::Timeout { phase, after }) => Error::Timeout {
            phase: *phase,
            after: *after,
        },
        Some(Error::Connect(m)) => Error::Connect(m.clone()),
        Some(Error::NoHost(m)) => Error::NoHost(m.clone()),
        Some(Error::DnsTemporary(m)) => Error::DnsTemporary(m.clone()),
        Some(Error::Lost { phase, source }) => Error::Lost {
            phase: *phase,
            source: io(source),
        },
        Some(Error::Protocol(m)) => Error::Protocol(m.clone()),
        Some(Error::Unavailable(m)) => Error::Unavailable(m.clone()),
        Some(Error::Io(m)) => Error::Io(m.clone()),
        Some(Error::NoPerm(m)) => Error::NoPerm(m.clone()),
        Some(Error::Temporary(m)) => Error::Temporary(m.clone()),
        None => return anyhow::anyhow!("{err:#}"),
    };
    let text = format!("{err:#}");
    let inner = copy.to_string();
    match text
        .strip_suffix(inner.as_str())
        .and_then(|p| p.strip_suffix(": "))
    {
        Some(prefix) => anyhow::Error::new(copy).context(prefix.to_string()),
        None if text == inner => copy.into(),
        None => anyhow::Error::new(copy).context(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::timeout::Phase;
    use crate::smtp::reply::parse;

    fn reply_err(phase: Phase, text: &str) -> anyhow::Error {
        Error::Reply {
            phase,
            what: "X".into(),
            reply: parse(text.as_bytes()).unwrap().unwrap().0,
        }
        .into()
    }

    #[test]
    fn duplicates_keep_exit_code_text_and_reply() {
        let errs: Vec<anyhow::Error> = vec![
            reply_err(Phase::Auth, "535 5.7.8 bad\r\n"),
            Error::Connect("refused".into()).into(),
            anyhow::Error::new(Error::Unavailable("no TLS".into())).context("connecting"),
            Error::Lost {
                phase: Phase::Greeting,
                source: std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"),
            }
            .into(),
        ];
        for e in errs {
            let d = duplicate(&e);
            assert_eq!(exit_code(&d), exit_code(&e), "{e:#}");
            assert_eq!(format!("{d:#}"), format!("{e:#}"));
        }
    }

    #[test]
    fn summary_line_counts_only_what_happened() {
        let mut s = Summary::new(10000);
        s.sent = 9998;
        s.deferred = 1;
        s.failed = 1;
        assert_eq!(
            s.line(),
            "sent 9998 of 10000 messages, 1 deferred, 1 failed"
        );
        let mut s = Summary::new(1);
        s.sent = 1;
        assert_eq!(s.line(), "sent 1 of 1 message");
    }
}
