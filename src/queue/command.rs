//! `postie queue list|run|flush|remove` (a subcommand in [`crate::cli`]): each action
//! takes postie's own options
//! (`--queue-dir`, `-C`, `-A`, `--server`, `--tls`, `-v`, ...), so a queue run takes the
//! same route as a normal run with the same options would. A run on the submission route
//! (a server and its fallbacks, or a socket) sends the due entries over shared sessions
//! ([`Over`], the engine's [`Sessions`] with `--window` messages in flight); direct MX
//! delivery attempts each entry on its own.

use std::collections::HashMap;
use std::io::{self, Write};

use anyhow::Result;

use super::{Deliver, Shared, Sorted, Spool};
use crate::cli::{Args, QueueAction};
use crate::config::{Config, Environment, Route};
use crate::engine::{Sent, Sessions};
use crate::envelope::Envelope;
use crate::error::{Error, Exit};
use crate::message::Message;

/// Run `postie queue ACTION` (parsed by [`crate::cli::parse`]): resolve the options
/// (their mode is the action's), then [`on`].
pub fn main(action: QueueAction, mut args: Args, deliver: &mut Deliver) -> Result<Exit> {
    args.queue_action = Some(action);
    let positional = args.recipients.clone();
    let cfg = Config::resolve(args, &Environment::real())?;
    on(&cfg, action, &positional, deliver)
}

/// A queue action on the resolved configuration (`Mode::Queue`); `positional`: the
/// arguments after the options (remove's ids; nothing for the others).
pub fn on(
    cfg: &Config,
    action: QueueAction,
    positional: &[String],
    deliver: &mut Deliver,
) -> Result<Exit> {
    if action != QueueAction::Remove {
        no_positional(positional)?;
    }
    match action {
        QueueAction::List => list(cfg),
        QueueAction::Run => run(cfg, false, deliver),
        QueueAction::Flush => run(cfg, true, deliver),
        QueueAction::Remove => remove(cfg, positional),
    }
}

fn no_positional(positional: &[String]) -> Result<()> {
    match positional.first() {
        Some(p) => Err(Error::Usage(format!("postie queue: unexpected argument {p:?}")).into()),
        None => Ok(()),
    }
}

/// `postie queue list`, `mailq`, `sendmail -bp`.
fn list(cfg: &Config) -> Result<Exit> {
    let mut out = io::stdout().lock();
    let listed = match Spool::existing(cfg)? {
        Some(spool) => super::list(&spool, cfg, &mut out),
        None => writeln!(out, "Mail queue is empty"),
    };
    match listed.and_then(|()| out.flush()) {
        Ok(()) => Ok(Exit::Ok),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(e) => Err(Error::Io(format!("listing the queue: {e}")).into()),
    }
}

/// `postie queue run` / `flush`, `sendmail -q`.
fn run(cfg: &Config, flush: bool, deliver: &mut Deliver) -> Result<Exit> {
    match Spool::existing(cfg)? {
        Some(spool) => {
            let mut over = match cfg.route {
                Route::Submission(_) | Route::Socket(_) => Some(Over::new(cfg)),
                Route::Mx { .. } | Route::Nowhere => None,
            };
            let shared = over.as_mut().map(|o| o as &mut dyn Shared);
            super::run(&spool, cfg, flush, deliver, shared)
        }
        None => {
            if cfg.verbosity > 0 {
                let dir = cfg.queue.dir.as_deref().map(|d| d.display().to_string());
                eprintln!(
                    "postie: queue: {}: no queue, nothing to do",
                    dir.as_deref().unwrap_or("(no queue directory)")
                );
            }
            Ok(Exit::Ok)
        }
    }
}

/// `postie queue remove ID...`.
fn remove(cfg: &Config, ids: &[String]) -> Result<Exit> {
    let Some(first) = ids.first() else {
        return Err(Error::Usage("postie queue remove: name the entries' ids".into()).into());
    };
    let Some(spool) = Spool::existing(cfg)? else {
        return Err(Error::Usage(format!("no queue entry {first}")).into());
    };
    for id in ids {
        spool.remove(id)?;
    }
    Ok(Exit::Ok)
}

/// The entries of a queue run over the engine's [`Sessions`]: each outcome sorted per
/// recipient for the queue, as a per-entry attempt ([`crate::engine::attempt`]) sorts it.
/// When the sessions give up (no session can be had any more), every entry after that
/// one gets the same failure, as it would have got trying on its own.
pub struct Over {
    sessions: Sessions,
    /// The recipients of each entry in flight.
    due: HashMap<usize, Vec<String>>,
    /// Why the sessions gave up.
    gave_up: Option<anyhow::Error>,
}

impl Over {
    pub fn new(cfg: &Config) -> Over {
        // As [`super::Spool::entry_config`] for an entry postie did not sign: no DKIM key
        // of this run's signs a message converted to 7-bit (the entries postie signed go
        // on their own, with theirs).
        let mut c = cfg.clone();
        c.session.dkim = None;
        Over {
            sessions: Sessions::new(&c).with_window(cfg.window),
            due: HashMap::new(),
            gave_up: None,
        }
    }

    fn sort(&mut self, finished: Vec<(usize, Option<Sent>)>) -> Vec<(usize, Sorted)> {
        let mut out = Vec::with_capacity(finished.len());
        for (n, sent) in finished {
            let recipients = self.due.remove(&n).unwrap_or_default();
            let sorted = match sent {
                Some(sent) => {
                    let sorted = Sorted::of(&recipients, &sent.result, true);
                    if let (Some(_), Err(e), None) = (&sent.give_up, sent.result, &self.gave_up) {
                        self.gave_up = Some(e);
                    }
                    sorted
                }
                None => match &self.gave_up {
                    Some(e) => Sorted::of_error(&recipients, e, true),
                    None => {
                        let e = Error::Connect("not tried: the run gave up".into()).into();
                        Sorted::of_error(&recipients, &e, true)
                    }
                },
            };
            out.push((n, sorted));
        }
        out
    }
}

impl Shared for Over {
    fn push(
        &mut self,
        n: usize,
        envelope: &Envelope,
        message: Message,
        label: &str,
        reopen: &mut dyn FnMut(usize) -> Result<Message>,
    ) -> Vec<(usize, Sorted)> {
        self.due.insert(n, envelope.forward_paths.clone());
        let finished = self.sessions.push(n, envelope, message, label, reopen);
        self.sort(finished)
    }

    fn finish(&mut self, reopen: &mut dyn FnMut(usize) -> Result<Message>) -> Vec<(usize, Sorted)> {
        let finished = self.sessions.finish(reopen);
        self.sort(finished)
    }

    fn close(&mut self) -> usize {
        self.sessions.close();
        self.sessions.connections
    }
}
