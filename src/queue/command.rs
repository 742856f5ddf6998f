//! `postie queue list|run|flush|remove`: a command of its own (like `postie dkim`), with
//! a small parser for the action; everything after it is read as postie's own options
//! (`--queue-dir`, `-C`, `-A`, `--server`, `--tls`, `-v`, ...), so a queue run takes the
//! same route as a normal run with the same options would.

use std::ffi::OsString;
use std::io::{self, Write};

use anyhow::Result;
use clap::{Parser, Subcommand};

use super::{Deliver, Spool};
use crate::cli::Args;
use crate::config::{Config, Environment};
use crate::error::{Error, Exit};

/// `postie queue ...`.
#[derive(Debug, Parser)]
#[command(
    name = "postie queue",
    bin_name = "postie queue",
    about = "Look at and run the queue of messages kept by --queue",
    long_about = "Look at and run the queue of messages kept by --queue.\n\n\
        Each action takes postie's own options after it: --queue-dir DIR (or -C/-A for a \
        configuration's queue_dir), and for run and flush the connection options \
        (--server, --tls, --user, -v, ...) that say how to deliver. Every entry keeps its \
        own envelope.",
    after_help = "Examples:\n  postie queue list --queue-dir /var/spool/postie\n  \
        postie queue run --server smtp.example.com      # from cron, e.g. every 10 minutes\n  \
        postie queue remove 0069a3f0c-1f3a-0ab12cd0"
)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub command: QueueCommand,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List the queue: id, age, size, sender, recipients, attempts, last error.
    List(Rest),
    /// Try every entry that is due; give up on those older than --queue-max-age.
    Run(Rest),
    /// Try every entry now, whatever its backoff says.
    Flush(Rest),
    /// Remove the entries named (postie queue remove ID... [OPTIONS]).
    Remove(Rest),
}

#[derive(Debug, clap::Args)]
pub struct Rest {
    /// postie's options (for remove: the ids first).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// Run `postie queue` with its own arguments (`argv[0]` is "queue").
pub fn main(argv: Vec<OsString>, deliver: &mut Deliver) -> Result<Exit> {
    let args = QueueArgs::try_parse_from(argv)?;
    match args.command {
        QueueCommand::List(r) => list(&r.args),
        QueueCommand::Run(r) => run(&r.args, false, deliver),
        QueueCommand::Flush(r) => run(&r.args, true, deliver),
        QueueCommand::Remove(r) => remove(&r.args),
    }
}

/// Resolve postie's options. `look`: only the queue is looked at, so no password is read
/// and no server is needed.
fn config(options: &[OsString], look: bool) -> Result<(Config, Vec<String>)> {
    let mut argv = vec![OsString::from("postie")];
    if look {
        argv.push(OsString::from("--dry-run"));
    }
    argv.extend(options.iter().cloned());
    let args = Args::try_parse_argv(argv)?;
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
pub fn list(options: &[OsString]) -> Result<Exit> {
    let (cfg, positional) = config(options, true)?;
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
pub fn run(options: &[OsString], flush: bool, deliver: &mut Deliver) -> Result<Exit> {
    let (cfg, positional) = config(options, false)?;
    no_positional(&positional)?;
    match Spool::existing(&cfg)? {
        Some(spool) => super::run(&spool, &cfg, flush, deliver),
        None => Ok(Exit::Ok),
    }
}

/// `postie queue remove ID...`.
fn remove(options: &[OsString]) -> Result<Exit> {
    let (cfg, ids) = config(options, true)?;
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
