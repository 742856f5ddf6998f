//! `postie batch --connections N`: N connections send the batch in parallel, each over
//! its own engine [`Sessions`] (its own connection, window of messages in flight,
//! reconnects and fallbacks), started at its own server of the list (connection `i` at
//! server `i`, round the list: [`Sessions::starting_at`]).
//!
//! Worker `i` takes message `i` first (so each of the N connections is used), then the
//! next message of the batch from the one shared [`Items`] (read as the batch goes), so a
//! message is taken by exactly one connection and sent by it alone (reconnects and the server pinning of the engine
//! stay within the connection that took it). The outcomes go back to the calling thread
//! over a channel; that thread alone offers them to the retry hook, logs, prints and
//! counts them, in input order (an outcome that arrives early waits for the ones before
//! it).
//!
//! When a connection gives up (no session can be had, or one message used up its
//! reconnections), the message that made it give up ends with that failure, as with one
//! connection; the messages it still had in flight are not tried by another connection
//! (their data may have reached that server: they are reported as not tried, for a later
//! retry, never sent to a second server), and the other connections go on with the rest.
//! When every connection has given up, the messages nobody took are not tried either.
//!
//! Owns: the workers, the shared message source, putting the outcomes back in order. Must not:
//! decide an outcome (the engine and [`super::settle`] do), or call the retry hook off
//! the calling thread.

use std::collections::{BTreeMap, HashMap};
use std::iter::Enumerate;
use std::sync::{mpsc, Mutex};

use super::input::{Item, Items, Plan, Prepare};
use super::{
    duplicate, publish, reopen_in_flight, settle, Connect, Flight, InFlight, OnRetryable, One,
    Printer, Summary,
};
use crate::config::Config;
use crate::engine::{Sent, Sessions};
use crate::envelope::Envelope;

/// The batch's messages, numbered, for whichever worker is ready first.
type Source<'a> = Mutex<Enumerate<Items<'a>>>;

/// One batch over `workers` connections.
pub(super) struct Run<'a> {
    pub cfg: &'a Config,
    pub plan: &'a Plan,
    pub connect: &'a Connect<'a>,
    pub workers: usize,
}

/// What a worker tells the calling thread.
enum Event {
    /// Message `id` is settled by the engine.
    Done {
        worker: usize,
        id: usize,
        item: Item,
        known: Option<(Envelope, Option<u64>)>,
        sent: Sent,
    },
    /// Message `id` was in flight when its connection gave up: not tried again.
    NotTried {
        worker: usize,
        id: usize,
        item: Item,
    },
    /// A worker ended, having opened this many sessions.
    Ended { connections: usize },
}

/// A message back, waiting for its turn to be reported.
enum Back {
    Done {
        item: Item,
        known: Option<(Envelope, Option<u64>)>,
        sent: Sent,
    },
    NotTried(Item, anyhow::Error),
}

impl Run<'_> {
    /// Send the batch; report every message through `out` (the summary is the caller's).
    /// Returns the sessions opened over all connections.
    pub(super) fn go(
        &self,
        on_retryable: &mut OnRetryable<'_>,
        out: &mut Printer,
        summary: &mut Summary,
    ) -> usize {
        // Connection i's first message is message i (so every connection is used and
        // each server of the list gets its session); the rest go to whoever is free.
        let mut items = self.plan.items().enumerate();
        let firsts: Vec<Option<(usize, Item)>> = (0..self.workers).map(|_| items.next()).collect();
        let source: Source<'_> = Mutex::new(items);
        let (tx, rx) = mpsc::channel::<Event>();
        let mut prep = Prepare::new(self.cfg);
        let mut connections = 0;
        let mut report = Report {
            run: self,
            ready: BTreeMap::new(),
            printed: 0,
            going: self.workers,
        };
        // Per worker, the reason it gave up (for its messages not tried); and the latest.
        let mut reasons: Vec<Option<anyhow::Error>> = (0..self.workers).map(|_| None).collect();
        let mut latest: Option<anyhow::Error> = None;
        std::thread::scope(|scope| {
            for (worker, first) in firsts.into_iter().enumerate() {
                let tx = tx.clone();
                let source = &source;
                scope.spawn(move || self.work(worker, first, source, &tx));
            }
            drop(tx);
            for event in rx {
                match event {
                    Event::Done {
                        worker,
                        id,
                        item,
                        known,
                        sent,
                    } => {
                        if let Some(why) = give_up_reason(&sent) {
                            report.going = report.going.saturating_sub(1);
                            latest = Some(duplicate(&why));
                            if let Some(slot) = reasons.get_mut(worker) {
                                *slot = Some(why);
                            }
                        }
                        report.ready.insert(id, Back::Done { item, known, sent });
                    }
                    Event::NotTried { worker, id, item } => {
                        let reason = match reasons.get(worker).and_then(Option::as_ref) {
                            Some(why) => duplicate(why),
                            None => anyhow::anyhow!("not tried: the run gave up"),
                        };
                        report.ready.insert(id, Back::NotTried(item, reason));
                    }
                    Event::Ended { connections: n } => connections += n,
                }
                report.flush(&mut prep, on_retryable, out, summary);
            }
        });
        // Every connection gave up before the messages ran out: the rest is not tried.
        let rest = source
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, item) in rest {
            let why = match &latest {
                Some(why) => duplicate(why),
                None => anyhow::anyhow!("not tried: the run gave up"),
            };
            report.ready.insert(id, Back::NotTried(item, why));
            // In order as they come: report them as they are ready (a few at a time).
            report.flush(&mut prep, on_retryable, out, summary);
        }
        report.flush(&mut prep, on_retryable, out, summary);
        connections
    }

    /// One worker: its own sessions, its first message, then messages from the shared
    /// source until it runs out or the sessions give up, each outcome sent back.
    fn work(
        &self,
        worker: usize,
        first: Option<(usize, Item)>,
        source: &Source<'_>,
        tx: &mpsc::Sender<Event>,
    ) {
        let mut sessions: Sessions = (self.connect)(worker);
        let mut prep = Prepare::new(self.cfg);
        let mut flight: Flight = HashMap::new();
        let send_back = |finished: Vec<(usize, Option<Sent>)>, flight: &mut Flight| {
            for (id, sent) in finished {
                let Some(InFlight { item, known }) = flight.remove(&id) else {
                    continue;
                };
                let event = match sent {
                    Some(sent) => Event::Done {
                        worker,
                        id,
                        item,
                        known,
                        sent,
                    },
                    None => Event::NotTried { worker, id, item },
                };
                // The receiver lives until every worker has ended.
                let _ = tx.send(event);
            }
        };
        let mut first = first;
        while !sessions.gave_up() {
            let taken = match first.take() {
                Some(taken) => Some(taken),
                None => match source.lock() {
                    Ok(mut items) => items.next(),
                    Err(_) => None,
                },
            };
            let Some((id, item)) = taken else {
                break;
            };
            let prepared = prep.item(&item);
            let label = item.source();
            flight.insert(id, InFlight { item, known: None });
            let finished = match prepared {
                Ok((envelope, message)) => {
                    if let Some(f) = flight.get_mut(&id) {
                        f.known = Some((envelope.clone(), message.size));
                    }
                    let mut reopen = |k: usize| reopen_in_flight(&mut prep, &flight, k);
                    sessions.push(id, &envelope, message, &label, &mut reopen)
                }
                // Reported in order by the calling thread, whatever is still in flight here.
                Err(e) => vec![(
                    id,
                    Some(Sent {
                        result: Err(e),
                        give_up: None,
                    }),
                )],
            };
            send_back(finished, &mut flight);
        }
        let mut reopen = |k: usize| reopen_in_flight(&mut prep, &flight, k);
        let finished = sessions.finish(&mut reopen);
        send_back(finished, &mut flight);
        sessions.close();
        let _ = tx.send(Event::Ended {
            connections: sessions.connections,
        });
    }
}

/// The give-up reason carried by `sent`, as [`settle`] makes it.
fn give_up_reason(sent: &Sent) -> Option<anyhow::Error> {
    match (&sent.give_up, &sent.result) {
        (Some(why), Err(e)) if why.is_empty() => Some(duplicate(e)),
        (Some(why), Err(e)) => Some(duplicate(e).context(why.clone())),
        _ => None,
    }
}

/// The outcomes back so far, reported in input order.
struct Report<'a> {
    run: &'a Run<'a>,
    ready: BTreeMap<usize, Back>,
    /// Messages reported so far (the next one to report).
    printed: usize,
    /// Connections that have not given up (as far as the outcomes back so far show).
    going: usize,
}

impl Report<'_> {
    fn flush(
        &mut self,
        prep: &mut Prepare<'_>,
        on_retryable: &mut OnRetryable<'_>,
        out: &mut Printer,
        summary: &mut Summary,
    ) {
        let total = self.run.plan.total;
        while let Some(back) = self.ready.remove(&self.printed) {
            let index = self.printed;
            self.printed += 1;
            let (item, known, sent, reason) = match back {
                Back::Done { item, known, sent } => (item, known, Some(sent), None),
                Back::NotTried(item, reason) => (item, None, None, Some(reason)),
            };
            let one = One {
                index,
                item: &item,
                known,
                sent,
                total,
            };
            let (outcome, gave_up) = settle(prep, one, reason.as_ref());
            publish(
                self.run.cfg,
                prep,
                &item,
                outcome,
                on_retryable,
                out,
                summary,
            );
            if let Some((source, _)) = gave_up {
                out.connection_gave_up(&source, self.going);
            }
        }
    }
}
