//! The durable queue (`--queue`, `postie queue ...`): messages whose delivery failed
//! temporarily are kept in a spool directory and retried later by `postie queue run`
//! (cron), with exponential backoff per entry, until they are delivered, refused for good,
//! or older than the maximum age — then the sender gets a short report (or, for the null
//! sender or when that fails too, stderr does).
//!
//! What the queue promises (design.md §6): `postie --queue` exits 0 only when the message
//! was accepted by a server or is durably in the spool ([`spool`] says how: fsync, rename,
//! fsync the directory, in an order that makes a crash leave the old or the new state).
//! Two `queue run`s at once never hand the same entry to a server twice (per-entry flock).
//! Delivery is at least once, not exactly once: a crash after the server's 250 to the end
//! of data and before the entry is removed leaves it queued, and SMTP has no way to ask a
//! server whether it already has a message. The window is kept as short as it can be: the
//! entry is removed right after the 250, before QUIT (the session calls
//! [`crate::report::Observer::transaction_end`]); when the due entries share one session
//! ([`Shared`]: a server or a socket, not `--mx`), as soon as its outcome is back from
//! the session, before the next entry's replies are read and before QUIT.
//!
//! The message is spooled *before* the first attempt ([`Spool::stage`]): stdin can be read
//! only once, and whichever phase fails, the bytes are still there. The staged copy is the
//! one sent, so a big message is on disk once and never twice in memory. On success (or a
//! permanent failure) the staged file is simply deleted.
//!
//! Which failures are retried: by `--queue`, exactly those that exit 75 (4xx, no
//! connection, timeouts, DNS SERVFAIL). By `queue run` also a server speaking nonsense
//! (76), a refused login (77) and local I/O trouble (74), which are the sender's or the
//! server's to fix, not reasons to return the mail; a configuration or usage error stops
//! the run and touches nothing. 5xx-class outcomes (65, 67, 68, 69) are permanent.

pub mod command;
mod shared;
pub mod spool;

pub use crate::settings::{parse_age, DEFAULT_MAX_AGE};

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Config, Content, SendmailOptions, Source};
use crate::envelope::Envelope;
use crate::error::Exit;
use crate::message::{self, Message};
use crate::report::{self, Cause, Fate, Outcome, Report};
use crate::report::{Observer, Unobserved};
use crate::transcript::printable;
use spool::{Meta, TmpFile};

/// First retry this long after a failed attempt; each later one waits twice as long...
pub const FIRST_RETRY: i64 = 5 * 60;
/// ... up to this.
pub const MAX_RETRY: i64 = 4 * 60 * 60;
/// How much of a message's header block goes into a report to its sender.
const REPORT_HEADERS: usize = 16 * 1024;

/// The wait after `attempts` failed attempts: 5 min, 10, 20, ... capped at 4 h.
pub fn backoff(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(16);
    (FIRST_RETRY << doublings).min(MAX_RETRY)
}

/// "now" in unix seconds; tests shift it (`POSTIE_TEST_CLOCK_SHIFT`, test mode only).
pub fn now(cfg: &Config) -> i64 {
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    real.saturating_add(cfg.queue.clock_shift)
}

/// A duration as people read it: `42s`, `5m`, `3h`, `2d`.
pub fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A queue directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The configured queue directory (`--queue-dir`, config `queue_dir`, else the
    /// default), created with mode 0700 if missing.
    pub fn for_config(cfg: &Config) -> Result<Spool> {
        let dir = cfg.queue.dir.clone().ok_or_else(|| {
            crate::error::Error::Config(
                "no queue directory: set --queue-dir, queue_dir in the configuration, \
                 XDG_STATE_HOME or HOME"
                    .into(),
            )
        })?;
        Spool::open(dir)
    }

    /// The configured queue directory if it exists (looking and running never create one).
    pub fn existing(cfg: &Config) -> Result<Option<Spool>> {
        match &cfg.queue.dir {
            Some(dir) if dir.join("meta").is_dir() => Spool::open(dir.clone()).map(Some),
            _ => Ok(None),
        }
    }

    /// The spool in `dir`, created if missing.
    pub fn open(dir: PathBuf) -> Result<Spool> {
        for sub in ["tmp", "msg", "meta"] {
            spool::make_dir(&dir.join(sub))?;
        }
        Ok(Spool { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn msg(&self, id: &str) -> PathBuf {
        self.dir.join("msg").join(id)
    }

    fn meta(&self, id: &str) -> PathBuf {
        self.dir.join("meta").join(id)
    }

    /// Queue `message` for `envelope` durably, with `error` as the reason; returns the id.
    /// `signed`: postie DKIM-signed the message with these options (see [`Meta::dkim`]).
    pub fn add(
        &self,
        envelope: &Envelope,
        message: &mut dyn Read,
        error: &str,
        signed: Option<&crate::dkim::Options>,
    ) -> Result<String> {
        let dkim = signed_record(signed)?;
        let mut staged = self.stage_reader(message)?;
        staged.dkim = dkim;
        staged.commit(envelope, error, wall_clock())
    }

    /// Copy `message` into a locked temporary file in the spool, ready to be sent from
    /// there and committed if it has to wait. `signed` as for [`Spool::add`].
    pub fn stage(&self, message: Message, signed: Option<&crate::dkim::Options>) -> Result<Staged> {
        let dkim = signed_record(signed)?;
        let eight_bit = message.eight_bit;
        let id = spool::new_id(wall_clock());
        let mut tmp = TmpFile::create(&self.dir.join("tmp"), &id)?;
        // Flushed explicitly: dropping the BufWriter would lose the error of its last
        // write (a full disk), and a truncated spool copy is what would then be sent.
        let size = {
            let mut out = io::BufWriter::new(&mut tmp.file);
            message
                .write_to(&mut out)
                .and_then(|n| out.flush().map(|()| n))
        }
        .map_err(|e| crate::error::Error::Io(format!("spooling the message: {e}")))?;
        Ok(Staged {
            spool: self.clone(),
            id,
            tmp,
            size,
            eight_bit,
            dkim,
        })
    }

    fn stage_reader(&self, message: &mut dyn Read) -> Result<Staged> {
        let id = spool::new_id(wall_clock());
        let mut tmp = TmpFile::create(&self.dir.join("tmp"), &id)?;
        let size = io::copy(message, &mut tmp.file)
            .map_err(|e| crate::error::Error::Io(format!("spooling the message: {e}")))?;
        Ok(Staged {
            spool: self.clone(),
            id,
            tmp,
            size,
            eight_bit: None,
            dkim: None,
        })
    }

    /// Every live entry, oldest first; a damaged one as its error.
    pub fn entries(&self) -> Result<Vec<Result<Meta>>> {
        let list = fs::read_dir(self.dir.join("meta"))
            .map_err(|e| crate::error::Error::Io(format!("reading {}: {e}", self.dir.display())))?;
        let mut out: Vec<Result<Meta>> = Vec::new();
        for entry in list.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !spool::valid_id(&name) {
                continue;
            }
            match spool::read_meta(&entry.path()) {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => {}
                Err(e) => out.push(Err(e)),
            }
        }
        out.sort_by_key(|m| m.as_ref().map_or(i64::MIN, |m| m.created));
        Ok(out)
    }

    /// Remove entry `id`: refused while a run is delivering it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let missing = || crate::error::Error::Usage(format!("no queue entry {id}"));
        if !spool::valid_id(id) {
            return Err(missing().into());
        }
        let Some(lock) = spool::lock_message(&self.msg(id))? else {
            if self.meta(id).exists() {
                return Err(crate::error::Error::Io(format!(
                    "{id} is being delivered right now; try again later"
                ))
                .into());
            }
            return Err(missing().into());
        };
        if !self.meta(id).exists() {
            return Err(missing().into());
        }
        self.drop_entry(id)?;
        drop(lock);
        Ok(())
    }

    /// Delete `meta/ID` (the commit point), then `msg/ID`. The caller holds the lock.
    fn drop_entry(&self, id: &str) -> Result<()> {
        fs::remove_file(self.meta(id))
            .map_err(|e| crate::error::Error::Io(format!("removing queue entry {id}: {e}")))?;
        spool::sync_dir(&self.dir.join("meta"))?;
        let _ = fs::remove_file(self.msg(id));
        Ok(())
    }

    /// The configuration that delivers entry `meta`: its stored bytes as they are (no
    /// fix-ups), and as DKIM options the ones postie signed it with, if it did
    /// ([`Meta::dkim`]): the message is not signed a second time (see [`Spool::prepare`]),
    /// but one converted to 7-bit is signed again, as a direct send's would be.
    fn entry_config(&self, cfg: &Config, meta: &Meta) -> Config {
        let mut c = cfg.clone();
        c.content = Content::Ready(Source::File(self.msg(&meta.id)));
        c.sendmail = SendmailOptions::default();
        c.session.dkim.clone_from(&meta.dkim);
        c
    }

    /// Entry `entry_cfg`'s message (from [`Spool::entry_config`]), opened, not signed again.
    fn prepare(entry_cfg: &Config) -> Result<Message> {
        let mut c = entry_cfg.clone();
        c.session.dkim = None;
        message::prepare(&c, Box::new(io::empty()))
    }
}

/// What a queue entry records of the DKIM options its message was signed with: the key as
/// an absolute path (a `queue run` may start in another directory), which must be UTF-8
/// to go into the entry's JSON. Checked before the message is spooled, so that committing
/// the entry later cannot fail on it.
fn signed_record(signed: Option<&crate::dkim::Options>) -> Result<Option<crate::dkim::Options>> {
    let Some(opts) = signed else {
        return Ok(None);
    };
    let key = std::path::absolute(&opts.key).map_err(|e| {
        crate::error::Error::Config(format!("DKIM key {}: {e}", opts.key.display()))
    })?;
    if key.to_str().is_none() {
        return Err(crate::error::Error::Config(format!(
            "DKIM key {}: the path is not UTF-8, so a queue entry cannot record it",
            key.display()
        ))
        .into());
    }
    Ok(Some(crate::dkim::Options {
        key,
        ..opts.clone()
    }))
}

fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// A message copied into the spool's `tmp/` before the first attempt; deleted when
/// dropped, unless committed.
pub struct Staged {
    spool: Spool,
    id: String,
    tmp: TmpFile,
    size: u64,
    /// What the original message knew about 8-bit bytes (for MAIL FROM's BODY=).
    eight_bit: Option<bool>,
    /// The DKIM options postie signed it with ([`Meta::dkim`]).
    dkim: Option<crate::dkim::Options>,
}

impl Staged {
    /// The staged bytes as a message to send (read from the file, not from memory).
    pub fn message(&self, cfg: &Config) -> Result<Message> {
        let mut c = cfg.clone();
        c.content = Content::Ready(Source::File(self.tmp.path.clone()));
        c.sendmail = SendmailOptions::default();
        c.session.dkim = None;
        let mut m = message::prepare(&c, Box::new(io::empty()))?;
        m.size = Some(self.size);
        m.eight_bit = self.eight_bit.or(m.eight_bit);
        Ok(m)
    }

    /// Make the entry live for `envelope`: the message into `msg/`, then its metadata into
    /// `meta/`, each durably. `now` is when it was queued; the first retry is due
    /// [`FIRST_RETRY`] later.
    pub fn commit(mut self, envelope: &Envelope, error: &str, now: i64) -> Result<String> {
        let id = self.id.clone();
        self.tmp.persist(&self.spool.msg(&id))?;
        let meta = Meta {
            version: spool::META_VERSION,
            id: id.clone(),
            created: now,
            attempts: 1,
            next_attempt: now + backoff(1),
            last_attempt: now,
            last_error: one_line(error),
            sender: envelope.reverse_path.clone(),
            recipients: envelope.forward_paths.clone(),
            size: self.size,
            dkim: self.dkim.take(),
        };
        write_meta(&self.spool, &meta)?;
        Ok(id)
    }
}

fn write_meta(spool: &Spool, meta: &Meta) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(meta)
        .map_err(|e| crate::error::Error::Io(format!("encoding queue entry: {e}")))?;
    spool::write_durably(&spool.dir.join("tmp"), &spool.meta(&meta.id), &bytes)
}

fn one_line(s: &str) -> String {
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    line.chars().take(500).collect()
}

/// What one attempt did with each recipient.
#[derive(Debug, Default)]
pub struct Sorted {
    pub delivered: Vec<String>,
    /// To try again later.
    pub deferred: Vec<String>,
    /// Refused for good.
    pub refused: Vec<String>,
    /// Why the deferred ones wait.
    pub deferred_reason: String,
    /// Why the refused ones were refused.
    pub refused_reason: String,
    /// The exit code the refused ones alone stand for (0 when none).
    pub refused_exit: Exit,
    /// A local problem (exit 74 and the like) that kept the attempt from happening.
    pub local: Option<Exit>,
    /// A configuration or usage error: nothing can be delivered until it is fixed.
    pub abort: Option<(Exit, String)>,
}

impl Sorted {
    /// One transaction's outcome for `recipients`: a report (per recipient) or an error
    /// (for all). `in_queue`: classified for `queue run`, which retries more (module doc).
    pub fn of(recipients: &[String], outcome: &Result<Report>, in_queue: bool) -> Sorted {
        Sorted::of_outcomes(&report::outcomes(recipients, outcome), in_queue)
    }

    pub fn of_report(report: &Report) -> Sorted {
        Sorted::of_outcomes(&report.outcomes(), false)
    }

    pub fn of_error(recipients: &[String], e: &anyhow::Error, in_queue: bool) -> Sorted {
        Sorted::of_outcomes(&report::failed(recipients, e), in_queue)
    }

    /// The queue's reading of per-recipient outcomes (of one attempt, or of one per
    /// domain, in order). An attempt that failed as a whole is read by its exit code: a
    /// configuration or usage error aborts the run (nothing can be delivered until it is
    /// fixed); under `in_queue`, a protocol or permission error is tried again later,
    /// and a local problem (74 and the like) keeps the entry as it is.
    pub fn of_outcomes(outcomes: &[Outcome], in_queue: bool) -> Sorted {
        let mut s = Sorted::default();
        for o in outcomes {
            let fate = match (&o.cause, o.exit) {
                (Cause::Failed(text), Exit::Config | Exit::Usage) => {
                    s.abort.get_or_insert((o.exit, text.clone()));
                    continue;
                }
                (Cause::Failed(_), Exit::Protocol | Exit::NoPerm) if in_queue => Fate::Deferred,
                (Cause::Failed(_), Exit::IoErr | Exit::Software | Exit::NoInput) if in_queue => {
                    s.local.get_or_insert(o.exit);
                    Fate::Deferred
                }
                _ => o.fate,
            };
            let why = || match &o.cause {
                Cause::Failed(text) => text.clone(),
                _ => format!("<{}>: {}", o.address, o.why()),
            };
            let first = !matches!(o.cause, Cause::Withheld { .. });
            match fate {
                Fate::Delivered => s.delivered.push(o.address.clone()),
                Fate::Deferred => {
                    s.deferred.push(o.address.clone());
                    if s.deferred_reason.is_empty() && first {
                        s.deferred_reason = why();
                    }
                }
                Fate::Refused => {
                    s.refused.push(o.address.clone());
                    if s.refused_reason.is_empty() && first {
                        s.refused_reason = why();
                    }
                    s.refused_exit = s.refused_exit.most_urgent(o.exit);
                }
            }
        }
        s
    }
}

/// How `queue run` sends one message: the same routes as a normal run.
pub type Deliver<'a> = dyn FnMut(&Config, &Envelope, Message, &mut dyn Observer) -> Sorted + 'a;

/// `postie queue list` (and `mailq`, `sendmail -bp`): one line per entry.
pub fn list(spool: &Spool, cfg: &Config, out: &mut dyn Write) -> io::Result<()> {
    let entries = match spool.entries() {
        Ok(e) => e,
        Err(e) => return Err(io::Error::other(format!("{e:#}"))),
    };
    if entries.is_empty() {
        return writeln!(out, "Mail queue is empty");
    }
    let now = now(cfg);
    writeln!(
        out,
        "{:<30} {:>5} {:>9}  {:<28} {:<30} {:>8}  LAST ERROR",
        "ID", "AGE", "SIZE", "SENDER", "RECIPIENTS", "ATTEMPTS"
    )?;
    let (mut n, mut bytes) = (0u64, 0u64);
    for entry in &entries {
        match entry {
            Ok(m) => {
                n += 1;
                bytes += m.size;
                let sender = if m.sender.is_empty() {
                    "<>".to_string()
                } else {
                    m.sender.clone()
                };
                writeln!(
                    out,
                    "{:<30} {:>5} {:>9}  {:<28} {:<30} {:>8}  {}",
                    m.id,
                    human_age(now - m.created),
                    m.size,
                    printable(&sender),
                    printable(&m.recipients.join(",")),
                    m.attempts,
                    printable(&m.last_error)
                )?;
            }
            Err(e) => writeln!(out, "(damaged entry: {})", printable(&format!("{e:#}")))?,
        }
    }
    writeln!(
        out,
        "-- {n} message{}, {bytes} bytes",
        if n == 1 { "" } else { "s" }
    )
}

/// Sessions that a queue run's entries share: on the submission route (a server and its
/// fallbacks, or a socket) every entry goes to the same place, so the due entries go over
/// one session, reconnecting as `postie batch` does, or over `--connections N` sessions in
/// parallel ([`shared`] implements both over `engine::Sessions`, with `--window`
/// transactions in flight on each). The sessions open each entry's message from the spool
/// themselves (and again after a reconnect). Each entry comes back as its recipients'
/// outcomes the moment its replies are in — before the next transaction's and before QUIT.
pub trait Shared {
    /// Hand entry `n` over; returns the entries finished meanwhile.
    fn push(&mut self, n: usize, meta: &Meta) -> Vec<(usize, Back)>;
    /// Every entry still in flight, finished.
    fn finish(&mut self) -> Vec<(usize, Back)>;
    /// QUIT; returns how many sessions were opened.
    fn close(&mut self) -> usize;
}

/// An entry back from the [`Shared`] sessions.
#[derive(Debug)]
pub enum Back {
    /// What became of each recipient.
    Sorted(Sorted),
    /// Its message could not be opened from the spool: no server was given it.
    Unopened(anyhow::Error),
}

/// An entry handed to the [`Shared`] sessions: locked until its outcome is settled.
struct Held {
    _lock: fs::File,
    meta: Meta,
    now: i64,
    expired: bool,
}

/// `postie queue run` (`flush`: every entry now, whatever its backoff says). Returns the
/// run's exit code: 0 unless something was refused for good or a local error happened.
/// With `shared`, the entries go over those sessions (an entry postie DKIM-signed still
/// goes on its own, through `deliver`: its signing options are the session's); without,
/// each entry through `deliver` (direct MX delivery: each entry's domains decide the
/// hosts). Reports to senders always go through `deliver`.
pub fn run(
    spool: &Spool,
    cfg: &Config,
    flush: bool,
    deliver: &mut Deliver,
    mut shared: Option<&mut dyn Shared>,
) -> Result<Exit> {
    spool::sweep(spool.dir());
    let mut exit = Exit::Ok;
    let entries = spool.entries()?;
    let mut order: Vec<Meta> = Vec::new();
    for e in entries {
        match e {
            Ok(m) => order.push(m),
            Err(e) => {
                eprintln!("postie: queue: {}", printable(&format!("{e:#}")));
                exit = exit.most_urgent(Exit::IoErr);
            }
        }
    }
    order.sort_by_key(|m| m.next_attempt);
    let waiting = order.len();
    let (mut tried, mut next_due) = (0usize, None::<i64>);
    let mut held: std::collections::HashMap<usize, Held> = std::collections::HashMap::new();
    // A configuration or usage error from the shared sessions: the entries still in
    // flight are settled, nothing more is handed over, and the run stops with it.
    let mut stop: Option<anyhow::Error> = None;
    for (n, listed) in order.into_iter().enumerate() {
        if stop.is_some() {
            break;
        }
        let id = listed.id;
        let Some(lock) = spool::lock_message(&spool.msg(&id))? else {
            continue; // another run has it, or it is gone
        };
        // Read again under the lock: another run may have delivered or rescheduled it.
        let meta = match spool::read_meta(&spool.meta(&id)) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("postie: queue: {}", printable(&format!("{e:#}")));
                exit = exit.most_urgent(Exit::IoErr);
                continue;
            }
        };
        let now = now(cfg);
        let expired = now.saturating_sub(meta.created) >= max_age_secs(cfg);
        if !(flush || expired || meta.next_attempt <= now) {
            next_due = Some(next_due.map_or(meta.next_attempt, |n| n.min(meta.next_attempt)));
            continue;
        }
        tried += 1;
        let sessions = match shared.as_deref_mut() {
            Some(s) if meta.dkim.is_none() => s,
            _ => {
                let entry_exit = run_entry(spool, cfg, meta, now, expired, deliver)?;
                exit = exit.most_urgent(entry_exit);
                drop(lock);
                continue;
            }
        };
        let handed = meta.clone();
        held.insert(
            n,
            Held {
                _lock: lock,
                meta,
                now,
                expired,
            },
        );
        for (k, back) in sessions.push(n, &handed) {
            exit = exit.most_urgent(settle_held(
                spool, cfg, &mut held, k, back, &mut stop, deliver,
            )?);
        }
    }
    let mut connections = None;
    if let Some(sessions) = shared {
        for (k, back) in sessions.finish() {
            exit = exit.most_urgent(settle_held(
                spool, cfg, &mut held, k, back, &mut stop, deliver,
            )?);
        }
        connections = Some(sessions.close());
    }
    // Not reached: every entry handed over comes back. Left as they were, unlocked.
    held.clear();
    if let Some(e) = stop {
        return Err(e);
    }
    if cfg.verbosity > 0 {
        let dir = spool.dir().display();
        let over = match connections {
            Some(c) if c > 0 => format!(" over {c} connection{}", if c == 1 { "" } else { "s" }),
            _ => String::new(),
        };
        let later = match next_due {
            Some(at) => format!(
                "; {} not due yet (next in {})",
                waiting - tried,
                human_age((at - now(cfg)).max(0))
            ),
            None => String::new(),
        };
        eprintln!(
            "postie: queue: {dir}: {waiting} {}, {tried} tried{over}{later}",
            if waiting == 1 { "entry" } else { "entries" }
        );
    }
    Ok(exit)
}

/// Entry `k` back from the shared sessions: settled as [`run_entry`] settles an entry
/// (dropped at once when the server took it for everyone), and unlocked. An abort is kept
/// in `stop` (the first one) and the entry left as it was.
fn settle_held(
    spool: &Spool,
    cfg: &Config,
    held: &mut std::collections::HashMap<usize, Held>,
    k: usize,
    back: Back,
    stop: &mut Option<anyhow::Error>,
    deliver: &mut Deliver,
) -> Result<Exit> {
    let Some(h) = held.remove(&k) else {
        return Ok(Exit::Ok);
    };
    let sorted = match back {
        Back::Sorted(sorted) => sorted,
        Back::Unopened(e) => {
            // Settled at once, as a per-entry attempt would be.
            let sorted = Sorted::of_error(&h.meta.recipients, &e, true);
            return settle(spool, cfg, h.meta, h.now, h.expired, sorted, false, deliver);
        }
    };
    if let Some((exit, text)) = &sorted.abort {
        if stop.is_none() {
            *stop = Some(
                crate::error::Error::Config(format!("queue run stopped ({}): {text}", exit.name()))
                    .into(),
            );
        }
        return Ok(Exit::Ok);
    }
    let mut dropped = false;
    if !sorted.delivered.is_empty() && sorted.deferred.is_empty() && sorted.refused.is_empty() {
        // Taken for every recipient: the entry goes now, before anything else is read or
        // written on the session (the window of a duplicate stays as short as SMTP allows).
        spool.drop_entry(&h.meta.id)?;
        dropped = true;
    }
    settle(
        spool, cfg, h.meta, h.now, h.expired, sorted, dropped, deliver,
    )
}

fn max_age_secs(cfg: &Config) -> i64 {
    i64::try_from(cfg.queue.max_age.as_secs()).unwrap_or(i64::MAX)
}

/// Watches one entry's delivery: when its one transaction ends with every recipient
/// taken, the entry is dropped there and then, before QUIT, so the window in which a
/// crash would deliver it twice stays as short as SMTP allows.
struct DropWhenTaken<'a> {
    spool: &'a Spool,
    id: &'a str,
    /// The envelope goes in one transaction (submission, or a single MX domain).
    one_transaction: bool,
    dropped: bool,
}

impl Observer for DropWhenTaken<'_> {
    fn transaction_end(&mut self, report: &Report) {
        let s = Sorted::of_report(report);
        if self.one_transaction
            && !self.dropped
            && !s.delivered.is_empty()
            && s.deferred.is_empty()
            && s.refused.is_empty()
            && self.spool.drop_entry(self.id).is_ok()
        {
            self.dropped = true;
        }
    }
}

/// One attempt at one locked entry; the entry is removed, rescheduled or (partly)
/// returned to its sender.
fn run_entry(
    spool: &Spool,
    cfg: &Config,
    meta: Meta,
    now: i64,
    expired: bool,
    deliver: &mut Deliver,
) -> Result<Exit> {
    let id = meta.id.clone();
    let envelope = Envelope {
        reverse_path: meta.sender.clone(),
        forward_paths: meta.recipients.clone(),
    };
    let entry_cfg = spool.entry_config(cfg, &meta);
    // One transaction for the whole envelope (submission, or one MX domain): drop the
    // entry the moment the server has taken it for everyone, before QUIT.
    let mut watch = DropWhenTaken {
        spool,
        id: &id,
        one_transaction: cfg.route.mx_port().is_none()
            || crate::route::by_domain(&meta.recipients).len() == 1,
        dropped: false,
    };
    let sorted = match Spool::prepare(&entry_cfg) {
        Ok(message) => deliver(&entry_cfg, &envelope, message, &mut watch),
        Err(e) => Sorted::of_error(&meta.recipients, &e, true),
    };
    let dropped = watch.dropped;
    settle(spool, cfg, meta, now, expired, sorted, dropped, deliver)
}

/// An entry's attempt, `sorted` per recipient: the entry is removed (unless `dropped`
/// already), rescheduled or (partly) returned to its sender. The caller holds its lock.
#[allow(clippy::too_many_arguments)]
fn settle(
    spool: &Spool,
    cfg: &Config,
    mut meta: Meta,
    now: i64,
    expired: bool,
    sorted: Sorted,
    dropped: bool,
    deliver: &mut Deliver,
) -> Result<Exit> {
    let id = meta.id.clone();
    if let Some((exit, text)) = sorted.abort {
        return Err(crate::error::Error::Config(format!(
            "queue run stopped ({}): {text}",
            exit.name()
        ))
        .into());
    }
    let mut exit = sorted.local.unwrap_or(Exit::Ok);
    if !sorted.refused.is_empty() {
        exit = exit.most_urgent(sorted.refused_exit);
        eprintln!(
            "postie: queue: {id}: refused for good: {}",
            printable(&sorted.refused_reason)
        );
        return_to_sender(
            spool,
            cfg,
            &meta,
            &sorted.refused,
            &sorted.refused_reason,
            deliver,
        );
    }
    if sorted.deferred.is_empty() {
        if !dropped {
            spool.drop_entry(&id)?;
        }
        if cfg.verbosity > 0 {
            eprintln!("postie: queue: {id}: done");
        }
        return Ok(exit);
    }
    if expired {
        let why = format!(
            "gave up after {} attempts over {}: {}",
            meta.attempts + 1,
            human_age(now - meta.created),
            sorted.deferred_reason
        );
        eprintln!("postie: queue: {id}: {}", printable(&why));
        return_to_sender(spool, cfg, &meta, &sorted.deferred, &why, deliver);
        spool.drop_entry(&id)?;
        return Ok(exit.most_urgent(Exit::Unavailable));
    }
    meta.attempts = meta.attempts.saturating_add(1);
    meta.last_attempt = now;
    meta.last_error = one_line(&sorted.deferred_reason);
    meta.recipients = sorted.deferred;
    meta.next_attempt = now + backoff(meta.attempts);
    write_meta(spool, &meta)?;
    if cfg.verbosity > 0 {
        eprintln!(
            "postie: queue: {id}: deferred (next try in {}): {}",
            human_age(backoff(meta.attempts)),
            printable(&meta.last_error)
        );
    }
    Ok(exit)
}

/// Tell the sender that `recipients` will not get the message (a short report in the
/// spirit of RFC 3464, as plain text, from the null sender so it cannot loop); when the
/// sender is the null sender or the report cannot be delivered, stderr has to do.
fn return_to_sender(
    spool: &Spool,
    cfg: &Config,
    meta: &Meta,
    recipients: &[String],
    reason: &str,
    deliver: &mut Deliver,
) {
    let what = format!(
        "{}: not delivered to {}: {}",
        meta.id,
        recipients.join(", "),
        reason
    );
    if meta.sender.is_empty() {
        eprintln!(
            "postie: queue: {} (null sender: no report sent)",
            printable(&what)
        );
        return;
    }
    let headers = header_block(&spool.msg(&meta.id));
    let sent = report_message(cfg, meta, recipients, reason, &headers).map(|bytes| {
        let envelope = Envelope {
            reverse_path: String::new(),
            forward_paths: vec![meta.sender.clone()],
        };
        let mut c = cfg.clone();
        c.content = Content::Ready(Source::Stdin);
        c.sendmail = SendmailOptions::default();
        c.session.dkim = None;
        deliver(&c, &envelope, Message::in_memory(bytes), &mut Unobserved)
    });
    match sent {
        Ok(s) if s.deferred.is_empty() && s.refused.is_empty() && s.abort.is_none() => {
            eprintln!(
                "postie: queue: {}: report sent to <{}>",
                meta.id,
                printable(&meta.sender)
            );
        }
        Ok(s) => eprintln!(
            "postie: queue: {} (the report to <{}> failed too: {}{})",
            printable(&what),
            printable(&meta.sender),
            printable(&s.deferred_reason),
            printable(&s.refused_reason)
        ),
        Err(e) => eprintln!(
            "postie: queue: {} (no report: {})",
            printable(&what),
            printable(&format!("{e:#}"))
        ),
    }
}

/// The header block of the stored message (bounded), for the report.
fn header_block(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = fs::File::open(path) {
        let _ = f.take(REPORT_HEADERS as u64).read_to_end(&mut buf);
    }
    let text = String::from_utf8_lossy(&buf);
    let end = text
        .find("\r\n\r\n")
        .or_else(|| text.find("\n\n"))
        .unwrap_or(text.len());
    text[..end].replace("\r\n", "\n")
}

/// The report to the sender, built with mail-builder.
fn report_message(
    cfg: &Config,
    meta: &Meta,
    recipients: &[String],
    reason: &str,
    headers: &str,
) -> Result<Vec<u8>> {
    use mail_builder::headers::text::Text;
    let daemon = format!("MAILER-DAEMON@{}", cfg.session.helo);
    let mut b = mail_builder::MessageBuilder::new()
        .from(("Mail Delivery System", daemon.as_str()))
        .to(meta.sender.as_str())
        .subject("Undelivered Mail Returned to Sender")
        .header("Auto-Submitted", Text::new("auto-replied"));
    if cfg.test_mode {
        b = b
            .date(mail_builder::headers::date::Date::new(1_767_225_600))
            .message_id(format!("postie-report-{}@postie.test", meta.id));
    }
    let body = format!(
        "This is postie on {host}.\n\n\
         Your message could not be delivered to:\n\n{rcpts}\n\n\
         Reason: {reason}\n\n\
         It was queued as {id} and tried {attempts} time(s). The headers of your \
         message follow.\n\n{headers}\n",
        host = cfg.session.helo,
        rcpts = recipients
            .iter()
            .map(|r| format!("  <{r}>"))
            .collect::<Vec<_>>()
            .join("\n"),
        id = meta.id,
        attempts = meta.attempts + 1,
    );
    b.text_body(body)
        .write_to_vec()
        .map_err(|e| crate::error::Error::Io(format!("building the report: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_minutes_to_four_hours() {
        let waits: Vec<i64> = (1..=8).map(backoff).collect();
        assert_eq!(
            waits,
            [300, 600, 1200, 2400, 4800, 9600, 14_400, 14_400],
            "seconds"
        );
        assert_eq!(backoff(0), 300);
        assert_eq!(backoff(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn ages_parse_with_units() {
        for (s, secs) in [
            ("90", 90),
            ("90s", 90),
            ("5m", 300),
            ("12h", 43_200),
            ("5d", 432_000),
        ] {
            assert_eq!(
                parse_age(s),
                Some(std::time::Duration::from_secs(secs)),
                "{s}"
            );
        }
        for bad in ["", "0", "5w", "d", "-1", "1.5h"] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(3599), "59m");
        assert_eq!(human_age(7200), "2h");
        assert_eq!(human_age(5 * 86_400), "5d");
    }

    fn meta_of(spool: &Spool, id: &str) -> Meta {
        spool::read_meta(&spool.meta(id)).unwrap().unwrap()
    }

    #[test]
    fn add_commits_message_then_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("q")).unwrap();
        let env = Envelope {
            reverse_path: "a@x.example".into(),
            forward_paths: vec!["b@y.example".into()],
        };
        let id = spool
            .add(
                &env,
                &mut &b"Subject: hi\r\n\r\nbody\r\n"[..],
                "451 4.3.0 later\nmore",
                None,
            )
            .unwrap();
        let m = meta_of(&spool, &id);
        assert_eq!(m.recipients, ["b@y.example"]);
        assert_eq!(m.size, 21);
        assert_eq!(m.attempts, 1);
        assert_eq!(m.next_attempt - m.created, FIRST_RETRY);
        assert_eq!(m.last_error, "451 4.3.0 later more");
        assert_eq!(
            fs::read(spool.msg(&id)).unwrap(),
            b"Subject: hi\r\n\r\nbody\r\n"
        );
        assert_eq!(fs::read_dir(dir.path().join("q/tmp")).unwrap().count(), 0);
        assert_eq!(spool.entries().unwrap().len(), 1);
        spool.remove(&id).unwrap();
        assert!(spool.entries().unwrap().is_empty());
        assert!(!spool.msg(&id).exists());
        assert!(spool.remove(&id).is_err());
        assert!(spool.remove("../etc").is_err());
    }

    #[test]
    fn an_entry_being_delivered_cannot_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().to_path_buf()).unwrap();
        let env = Envelope {
            reverse_path: String::new(),
            forward_paths: vec!["b@y.example".into()],
        };
        let id = spool
            .add(&env, &mut &b"x: y\r\n\r\n"[..], "later", None)
            .unwrap();
        let lock = spool::lock_message(&spool.msg(&id)).unwrap().unwrap();
        let err = spool.remove(&id).unwrap_err();
        assert!(format!("{err:#}").contains("being delivered"), "{err:#}");
        drop(lock);
        spool.remove(&id).unwrap();
    }
}
