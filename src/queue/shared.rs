//! The sessions a queue run's entries share on the submission route ([`super::Shared`]):
//! [`Over`], one engine [`Sessions`] (one connection at a time, `--window` entries in
//! flight, reconnects and fallbacks as `postie batch` has them); and [`Pool`], for
//! `--connections N`: N workers, each with its own [`Over`] started at its own server of
//! the list (worker `i` at server `i`, round the list), taking the next entry when it is
//! ready for one.
//!
//! An entry is handed to exactly one worker (a rendezvous channel: the run hands an entry
//! over only when a worker takes it, so no more entries are locked than are in flight) and
//! sent by it alone. Each worker opens its entries' messages from the spool itself, and
//! again after a reconnect. When a worker's sessions give up, its entries in flight come
//! back not tried (with its reason: deferred, never sent to a second server) and it takes
//! no more; the others go on. When every worker has given up, the entries still to hand
//! over get the last reason, as with one connection.
//!
//! Owns: the workers, handing entries over, sorting each engine outcome per recipient for
//! the queue. Must not: settle an entry (lock, drop, reschedule, report to its sender:
//! that is the run's, on its own thread), or decide an outcome (the engine does).

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use anyhow::Result;

use super::{Back, Shared, Sorted, Spool};
use crate::config::Config;
use crate::engine::{Sent, Sessions};
use crate::envelope::Envelope;
use crate::error::Error;
use crate::queue::spool::Meta;

/// The entries of a queue run over one engine [`Sessions`]: each outcome sorted per
/// recipient for the queue, as a per-entry attempt ([`crate::engine::attempt`]) sorts it.
/// When the sessions give up (no session can be had any more), every entry after that
/// one gets the same failure, as it would have got trying on its own.
pub struct Over {
    sessions: Sessions,
    spool: Spool,
    /// The run's configuration, to open entries' messages with.
    cfg: Config,
    /// The entries in flight.
    due: HashMap<usize, Meta>,
    /// Why the sessions gave up.
    gave_up: Option<anyhow::Error>,
}

impl Over {
    /// Sessions from the first server of the list.
    pub fn new(cfg: &Config, spool: &Spool) -> Over {
        Over::starting_at(cfg, spool, 0)
    }

    /// Sessions from server `first` of the list on (counting round it).
    fn starting_at(cfg: &Config, spool: &Spool, first: usize) -> Over {
        // As [`super::Spool::entry_config`] for an entry postie did not sign: no DKIM key
        // of this run's signs a message converted to 7-bit (the entries postie signed go
        // on their own, with theirs).
        let mut c = cfg.clone();
        c.session.dkim = None;
        Over {
            sessions: Sessions::new(&c).starting_at(first),
            spool: spool.clone(),
            cfg: cfg.clone(),
            due: HashMap::new(),
            gave_up: None,
        }
    }

    fn sort(&mut self, finished: Vec<(usize, Option<Sent>)>) -> Vec<(usize, Back)> {
        let mut out = Vec::with_capacity(finished.len());
        for (n, sent) in finished {
            let recipients = self
                .due
                .remove(&n)
                .map(|m| m.recipients)
                .unwrap_or_default();
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
                    None => Sorted::of_error(&recipients, &not_tried(), true),
                },
            };
            out.push((n, Back::Sorted(sorted)));
        }
        out
    }
}

/// Why an entry was not tried when no reason is known.
fn not_tried() -> anyhow::Error {
    Error::Connect("not tried: the run gave up".into()).into()
}

impl Shared for Over {
    fn push(&mut self, n: usize, meta: &Meta) -> Vec<(usize, Back)> {
        let message = match Spool::prepare(&self.spool.entry_config(&self.cfg, meta)) {
            Ok(m) => m,
            Err(e) => return vec![(n, Back::Unopened(e))],
        };
        let envelope = Envelope {
            reverse_path: meta.sender.clone(),
            forward_paths: meta.recipients.clone(),
        };
        self.due.insert(n, meta.clone());
        let (spool, cfg, due) = (&self.spool, &self.cfg, &self.due);
        let mut reopen = |k: usize| match due.get(&k) {
            Some(m) => Spool::prepare(&spool.entry_config(cfg, m)),
            None => Err(Error::Io(format!("queue run: no entry {k} in flight")).into()),
        };
        let finished = self
            .sessions
            .push(n, &envelope, message, &meta.id, &mut reopen);
        self.sort(finished)
    }

    fn finish(&mut self) -> Vec<(usize, Back)> {
        let (spool, cfg, due) = (&self.spool, &self.cfg, &self.due);
        let mut reopen = |k: usize| match due.get(&k) {
            Some(m) => Spool::prepare(&spool.entry_config(cfg, m)),
            None => Err(Error::Io(format!("queue run: no entry {k} in flight")).into()),
        };
        let finished = self.sessions.finish(&mut reopen);
        self.sort(finished)
    }

    fn close(&mut self) -> usize {
        self.sessions.close();
        self.sessions.connections
    }
}

/// What a worker tells the run.
enum Event {
    /// Entry `n` is back.
    Back(usize, Back),
    /// The worker's sessions gave up, for this reason.
    GaveUp(anyhow::Error),
    /// The worker ended, having opened this many sessions.
    Ended { connections: usize },
}

/// An entry handed to a worker.
type Job = (usize, Meta);

/// `--connections N`: the entries over N [`Over`] workers in parallel.
pub struct Pool {
    /// Worker i's first entry goes to it alone (so that every connection is used, and the
    /// servers of the list each get their share): one channel per worker, until each has
    /// had its first.
    firsts: std::vec::IntoIter<mpsc::SyncSender<Job>>,
    /// The entries after those, to whichever worker is ready first; `None` once the run
    /// has handed over its last one (or every worker has ended).
    jobs: Option<mpsc::SyncSender<Job>>,
    events: mpsc::Receiver<Event>,
    workers: Vec<thread::JoinHandle<()>>,
    /// Why the last worker to give up did.
    gave_up: Option<anyhow::Error>,
    connections: usize,
}

impl Pool {
    /// `workers` workers, each building its sessions on its own thread.
    pub fn new(cfg: &Config, spool: &Spool, workers: usize) -> Result<Pool> {
        // A rendezvous: an entry is handed over (and so locked) only when a worker takes it.
        let (jobs, take) = mpsc::sync_channel::<Job>(0);
        let take = Arc::new(Mutex::new(take));
        let (tx, events) = mpsc::channel();
        let mut handles = Vec::with_capacity(workers);
        let mut firsts = Vec::with_capacity(workers);
        for i in 0..workers {
            let (first_tx, first) = mpsc::sync_channel::<Job>(1);
            firsts.push(first_tx);
            let (cfg, spool, take, tx) =
                (cfg.clone(), spool.clone(), Arc::clone(&take), tx.clone());
            let handle = thread::Builder::new()
                .name(format!("queue-connection-{i}"))
                .spawn(move || work(i, &cfg, &spool, &first, &take, &tx))
                .map_err(|e| Error::Io(format!("starting connection {}: {e}", i + 1)))?;
            handles.push(handle);
        }
        Ok(Pool {
            firsts: firsts.into_iter(),
            jobs: Some(jobs),
            events,
            workers: handles,
            gave_up: None,
            connections: 0,
        })
    }

    /// What the workers have said so far (`wait`: until every worker has ended).
    fn collect(&mut self, wait: bool, out: &mut Vec<(usize, Back)>) {
        loop {
            let event = if wait {
                match self.events.recv() {
                    Ok(e) => e,
                    Err(_) => return,
                }
            } else {
                match self.events.try_recv() {
                    Ok(e) => e,
                    Err(_) => return,
                }
            };
            match event {
                Event::Back(n, back) => out.push((n, back)),
                Event::GaveUp(why) => self.gave_up = Some(why),
                Event::Ended { connections } => self.connections += connections,
            }
        }
    }
}

/// Worker `i`: its first entry, then entries until there are none, or its sessions give
/// up.
fn work(
    i: usize,
    cfg: &Config,
    spool: &Spool,
    first: &mpsc::Receiver<Job>,
    take: &Mutex<mpsc::Receiver<Job>>,
    tx: &mpsc::Sender<Event>,
) {
    let mut over = Over::starting_at(cfg, spool, i);
    // The run lives until every worker has ended: a send cannot fail before that.
    let send = |finished: Vec<(usize, Back)>| {
        for (n, back) in finished {
            let _ = tx.send(Event::Back(n, back));
        }
    };
    // None when the run has fewer entries than workers.
    if let Ok((n, meta)) = first.recv() {
        send(over.push(n, &meta));
    }
    while !over.sessions.gave_up() {
        // Taken while holding the lock: one worker waits for the next entry, the others
        // for their turn to wait.
        let job = match take.lock() {
            Ok(take) => take.recv(),
            Err(_) => break,
        };
        let Ok((n, meta)) = job else { break };
        send(over.push(n, &meta));
    }
    send(over.finish());
    if let Some(why) = over.gave_up.take() {
        let _ = tx.send(Event::GaveUp(why));
    }
    let connections = over.close();
    let _ = tx.send(Event::Ended { connections });
}

impl Shared for Pool {
    fn push(&mut self, n: usize, meta: &Meta) -> Vec<(usize, Back)> {
        let mut out = Vec::new();
        if let Some(first) = self.firsts.next() {
            // Room for one: never blocks. Fails only if the worker ended (it panicked).
            if first.send((n, meta.clone())).is_ok() {
                self.collect(false, &mut out);
                return out;
            }
        }
        let taken = match &self.jobs {
            // Blocks until a worker takes it; fails once every worker has ended.
            Some(jobs) => jobs.send((n, meta.clone())).is_ok(),
            None => false,
        };
        if !taken {
            self.jobs = None;
            // Every worker gave up: what they said is in (each ends by saying it).
            self.collect(true, &mut out);
            let why = self.gave_up.take().unwrap_or_else(not_tried);
            out.push((
                n,
                Back::Sorted(Sorted::of_error(&meta.recipients, &why, true)),
            ));
            self.gave_up = Some(why);
            return out;
        }
        self.collect(false, &mut out);
        out
    }

    fn finish(&mut self) -> Vec<(usize, Back)> {
        self.firsts = Vec::new().into_iter();
        self.jobs = None;
        let mut out = Vec::new();
        self.collect(true, &mut out);
        for handle in self.workers.drain(..) {
            // A worker that panicked left its entries locked until this run ends: they
            // stay as they were, for the next run.
            let _ = handle.join();
        }
        out
    }

    fn close(&mut self) -> usize {
        if !self.workers.is_empty() {
            let _ = self.finish();
        }
        self.connections
    }
}
