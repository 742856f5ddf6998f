//! `postie queue list|run|flush|remove` (a subcommand in [`crate::cli`]): each action
//! takes postie's own options
//! (`--queue-dir`, `-C`, `-A`, `--server`, `--tls`, `-v`, ...), so a queue run takes the
//! same route as a normal run with the same options would. A run on the submission route
//! (a server and its fallbacks, or a socket) sends the due entries over shared sessions
//! ([`Over`], the engine's `Sessions` with `--window` messages in flight; with
//! `--connections N`, [`Pool`]: N of them in parallel over the server list); direct MX
//! delivery attempts each entry on its own.

use std::io::{self, Write};

use anyhow::Result;

use super::shared::{Over, Pool};
use super::{Deliver, Shared, Spool};
use crate::cli::{Args, QueueAction};
use crate::config::{Config, Environment, Route};
use crate::error::{Error, Exit};

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
            let mut shared: Option<Box<dyn Shared>> = match cfg.route {
                Route::Submission(_) | Route::Socket(_) if cfg.connections > 1 => {
                    Some(Box::new(Pool::new(cfg, &spool, cfg.connections)?))
                }
                Route::Submission(_) | Route::Socket(_) => Some(Box::new(Over::new(cfg, &spool))),
                Route::Mx { .. } | Route::Nowhere => None,
            };
            let shared = shared.as_mut().map(|s| &mut **s as &mut dyn Shared);
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
