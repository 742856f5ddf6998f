//! `postie queue list|run|flush|remove` (a subcommand in [`crate::cli`]): each action
//! takes postie's own options
//! (`--queue-dir`, `-C`, `-A`, `--server`, `--tls`, `-v`, ...), so a queue run takes the
//! same route as a normal run with the same options would.

use std::io::{self, Write};

use anyhow::Result;

use super::{Deliver, Spool};
use crate::cli::{Args, QueueAction};
use crate::config::{Config, Environment};
use crate::error::{Error, Exit};

/// Run `postie queue ACTION` (parsed by [`crate::cli::parse`]).
pub fn main(action: QueueAction, args: Args, deliver: &mut Deliver) -> Result<Exit> {
    match action {
        QueueAction::List => list(args),
        QueueAction::Run => run(args, false, deliver),
        QueueAction::Flush => run(args, true, deliver),
        QueueAction::Remove => remove(args),
    }
}

/// Resolve postie's options. `look`: only the queue is looked at, so no password is read
/// and no server is needed.
fn config(mut args: Args, look: bool) -> Result<(Config, Vec<String>)> {
    args.dry_run |= look;
    let positional = args.recipients.clone();
    Ok((Config::resolve(args, &Environment::real())?, positional))
}

fn no_positional(positional: &[String]) -> Result<()> {
    match positional.first() {
        Some(p) => Err(Error::Usage(format!("postie queue: unexpected argument {p:?}")).into()),
        None => Ok(()),
    }
}

/// `postie queue list`, `mailq`, `sendmail -bp`.
pub fn list(args: Args) -> Result<Exit> {
    let (cfg, positional) = config(args, true)?;
    no_positional(&positional)?;
    let mut out = io::stdout().lock();
    let listed = match Spool::existing(&cfg)? {
        Some(spool) => super::list(&spool, &cfg, &mut out),
        None => writeln!(out, "Mail queue is empty"),
    };
    match listed.and_then(|()| out.flush()) {
        Ok(()) => Ok(Exit::Ok),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(e) => Err(Error::Io(format!("listing the queue: {e}")).into()),
    }
}

/// `postie queue run` / `flush`, `sendmail -q`.
pub fn run(args: Args, flush: bool, deliver: &mut Deliver) -> Result<Exit> {
    let (cfg, positional) = config(args, false)?;
    no_positional(&positional)?;
    match Spool::existing(&cfg)? {
        Some(spool) => super::run(&spool, &cfg, flush, deliver),
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
fn remove(args: Args) -> Result<Exit> {
    let (cfg, ids) = config(args, true)?;
    if ids.is_empty() {
        return Err(Error::Usage("postie queue remove: name the entries' ids".into()).into());
    }
    let Some(spool) = Spool::existing(&cfg)? else {
        return Err(Error::Usage(format!("no queue entry {}", ids[0])).into());
    };
    for id in &ids {
        spool.remove(id)?;
    }
    Ok(Exit::Ok)
}
