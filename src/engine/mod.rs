//! The delivery engine: the only code that drives route → connection → session.
//!
//! Owns: the order in which hosts are tried and when to move on — the submission server
//! and its fallbacks (`--server a,b`), each recipient domain's MX hosts ([`mx`]: MX
//! preference, A/AAAA, MTA-STS, DANE, the opportunistic-TLS retry in plain text), a unix
//! socket (LMTP) — and the sessions `postie batch` reconnects ([`Connector`]). Every mode
//! comes through here: a single send ([`submit`], [`mx::run`]), `--quit-after` rehearsals
//! ([`rehearse`]), `postie batch`, `postie queue run` ([`attempt`]) and `sendmail -bs`.
//!
//! Decides through one classification: [`crate::error::classify`] says whether a failure
//! lets the next host take the message now ([`Retry::NextHost`]: no connection, a 4xx or
//! a silent server before the message data), must wait ([`Retry::Later`]: the server may
//! have the message), or is final. A transaction in which every recipient was deferred
//! (4xx to each RCPT) counts as "next host" too: the message has reached nobody. The
//! message is offered to the next host only while the session has not taken it
//! (`session::deliver_keeping` gives it back unless the server was given it: after DATA's
//! 354 or a BDAT).
//!
//! Must not: parse the command line, print the final report or pick the exit code (the
//! caller does, from the outcome); compare reply text.
//!
//! RFC 5321 §5.1 (try the next MX host), §3.8 (421), RFC 7435 §6.1 (opportunistic TLS).

pub mod mx;

use std::time::{Duration, Instant};

use anyhow::Result;

use std::path::PathBuf;

use crate::config::{Config, Route, Security, Server};
use crate::envelope::Envelope;
use crate::error::{classify, Error, Retry};
use crate::message::Message;
use crate::net::{self, Connection};
use crate::queue::Sorted;
use crate::report::Report;
use crate::route;
use crate::smtp;
use crate::smtp::session::{Rehearsal, Session};
use crate::transcript::Transcript;

use crate::report::Observer;

/// Whether the next host should be offered the message: a failure that [`classify`]
/// calls [`Retry::NextHost`], or a transaction whose recipients were all deferred.
pub fn next_host(outcome: &Result<Report>) -> bool {
    match outcome {
        Err(e) => classify(e).retry == Retry::NextHost,
        Ok(report) => report.untaken_and_retryable(),
    }
}

/// Send one message through the submission route: the server, then each fallback server
/// in order while [`next_host`] says so and the message has not been handed over.
pub fn submit(
    cfg: &Config,
    envelope: &Envelope,
    message: Message,
    observer: &mut dyn Observer,
) -> Result<Report> {
    // The progress bar is this caller's choice, made once: the message keeps it from one
    // server to the next.
    let mut message = crate::progress::watch(cfg, message);
    let hops = hops(cfg);
    let mut result = Err(no_server());
    for (i, one) in hops.iter().enumerate() {
        let kept;
        (result, kept) = over_connection(cfg, one, observer, |opened, observer| match opened {
            Ok((conn, tls)) => smtp::session::deliver_keeping(
                conn,
                &cfg.session,
                tls,
                envelope,
                message,
                cfg.quit_after(),
                observer,
            ),
            Err(e) => (Err(e), Some(message)),
        });
        let Some(next) = hops.get(i + 1) else {
            break;
        };
        // A message the server was given is never offered to the next one.
        let Some(kept) = kept else {
            break;
        };
        if !next_host(&result) {
            break;
        }
        message = kept;
        let why = match &result {
            Err(e) => format!("{e:#}"),
            Ok(report) => report.failure_lines().join("; "),
        };
        cfg.transcript()
            .info(&format!("Falling back to {next} ({one}: {why})"));
    }
    result
}

/// `--quit-after` before DATA through the submission route (the first server only: a
/// rehearsal is about one server).
pub fn rehearse(
    cfg: &Config,
    rehearsal: &Rehearsal,
    observer: &mut dyn Observer,
) -> Result<Report> {
    let Some(first) = hops(cfg).into_iter().next() else {
        return Err(no_server());
    };
    over_connection(cfg, &first, observer, |opened, _| {
        opened.and_then(|(conn, tls)| smtp::session::rehearse(conn, &cfg.session, tls, rehearsal))
    })
}

/// One delivery attempt for `postie queue run`, through the same routes as a normal run
/// (the submission server and its fallbacks, or the recipients' MX hosts), sorted per
/// recipient for the queue.
pub fn attempt(
    cfg: &Config,
    envelope: &Envelope,
    message: Message,
    observer: &mut dyn Observer,
) -> Sorted {
    if matches!(cfg.route, Route::Mx { .. }) {
        return match mx::run(cfg, envelope, Some(message), None, observer) {
            Ok(d) => d.sorted(true),
            Err(e) => Sorted::of_error(&envelope.forward_paths, &e, true),
        };
    }
    let outcome = submit(cfg, envelope, message, observer);
    Sorted::of(&envelope.forward_paths, &outcome, true)
}

/// How many times one message may make postie reconnect before a batch gives up.
pub const MAX_RECONNECTS: usize = 3;

/// The sessions `postie batch` sends its messages over: one at a time, through the server
/// and its fallbacks, each route and TLS set-up resolved once, when first needed.
///
/// A (re)connection tries the servers in order while [`classify`] says the next host may
/// help, as a single message does. A message is sent again over a new session when the
/// server ends the session ([`crate::error::Class::reconnect`]: 421, "too many messages",
/// a lost or silent connection), at most [`MAX_RECONNECTS`] times; a failure that lets
/// the next host take the message ([`next_host`]) moves the session on to the next server
/// of the list, as a single message would fall back. Everything else is the message's own
/// outcome.
pub struct Sessions {
    cfg: Config,
    servers: Vec<Hop>,
    links: Vec<Option<Link>>,
    /// The open session and the index of its server.
    current: Option<(Session, usize)>,
    /// Sessions opened so far.
    pub connections: usize,
    /// How many transactions [`Sessions::push`] keeps in flight (1: one at a time).
    window: usize,
    /// Transactions queued on the current session whose replies are not read yet, oldest
    /// first. Only ever non-empty while there is a current session.
    flights: std::collections::VecDeque<Flight>,
    /// A message gave up the run: the messages still in flight are not tried again.
    gave_up: bool,
}

/// A message in flight on the current session.
struct Flight {
    id: usize,
    envelope: Envelope,
    label: String,
    blind: crate::smtp::session::Blind,
}

/// Where [`Sessions::send_from`] starts: what the first attempts of a message in flight
/// already used up, and which server it must go to.
#[derive(Debug, Clone, Copy, Default)]
struct Start {
    reconnects: usize,
    first: usize,
    pinned: bool,
}

/// A message in flight that is settled, or to be sent again the ordinary way.
enum Settled {
    Done(Sent),
    Again(Envelope, String, Start),
}

/// What became of one message sent over [`Sessions`].
pub struct Sent {
    pub result: Result<Report>,
    /// Set when no session can be had any more: the run should give up, for this reason
    /// (the result's own error, with this said about it when not empty).
    pub give_up: Option<String>,
}

impl Sessions {
    /// Sessions over the configuration's route, keeping up to `--window` transactions in
    /// flight in [`Sessions::push`] (at least 1).
    pub fn new(cfg: &Config) -> Sessions {
        let servers = hops(cfg);
        let links = servers.iter().map(|_| None).collect();
        Sessions {
            cfg: cfg.clone(),
            servers,
            links,
            current: None,
            connections: 0,
            window: cfg.window.max(1),
            flights: std::collections::VecDeque::new(),
            gave_up: false,
        }
    }

    /// Start every new session at server `first` of the list (counted modulo its length)
    /// and fall back through the others after it, wrapping round: connection `i` of
    /// `postie batch --connections N` starts at server `i`, so the sessions spread over
    /// the list as over a pool of relays.
    pub fn starting_at(mut self, first: usize) -> Sessions {
        if !self.servers.is_empty() {
            let by = first % self.servers.len();
            self.servers.rotate_left(by);
            self.links.rotate_left(by);
        }
        self
    }

    /// Whether the run gave up on these sessions: no message is tried over them any more.
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// A session ready for MAIL, from the first of the servers from `first` on that gives
    /// one (with `pinned`, only from `first` itself); and that server's index.
    fn open_from(&mut self, first: usize, pinned: bool) -> Result<(Session, usize)> {
        let mut result = Err(no_server());
        let cfg = &self.cfg;
        let servers = self.servers.iter().zip(self.links.iter_mut()).enumerate();
        let count = if pinned { 1 } else { usize::MAX };
        for (i, (one, slot)) in servers.skip(first).take(count) {
            if i > first {
                if let Err(e) = &result {
                    cfg.transcript()
                        .info(&format!("Falling back to {one} ({e:#})"));
                }
            }
            result = (|| {
                let link = match slot {
                    Some(l) => l,
                    None => slot.insert(Link::resolve(cfg, one)?),
                };
                let conn = link.open(cfg, cfg.transcript())?;
                Session::open(conn, &cfg.session, &link.tls).map(|s| (s, i))
            })();
            match &result {
                Err(e) if classify(e).retry == Retry::NextHost => continue,
                _ => break,
            }
        }
        result
    }

    /// Send one message (`label` names it in the transcript), reconnecting or moving on
    /// to the next server as described above; `reopen` opens the message again when an
    /// attempt got as far as sending it. Only with nothing in flight ([`Sessions::push`]
    /// settles its window before it sends this way).
    pub fn send(
        &mut self,
        envelope: &Envelope,
        message: Message,
        label: &str,
        reopen: &mut dyn FnMut() -> Result<Message>,
    ) -> Sent {
        self.send_from(Some(message), envelope, label, reopen, Start::default())
    }

    /// [`Sessions::send`] from `start`; with no message, it is opened first.
    fn send_from(
        &mut self,
        message: Option<Message>,
        envelope: &Envelope,
        label: &str,
        reopen: &mut dyn FnMut() -> Result<Message>,
        start: Start,
    ) -> Sent {
        let done = |result| Sent {
            result,
            give_up: None,
        };
        let mut message = message;
        let mut reconnects = start.reconnects;
        if reconnects > 0 {
            pause(reconnects);
        }
        // Where a new session starts: the first server, or the one after a server that
        // could not take this message. Pinned to one server when that server may already
        // have the message (a failure the classification retries "later"): the message
        // goes to it again, never to another server as well.
        let mut first = start.first;
        let mut pinned = start.pinned;
        loop {
            if message.is_none() {
                match reopen() {
                    Ok(m) => message = Some(m),
                    Err(e) => return done(Err(e)),
                }
            }
            if self.current.is_none() {
                match self.open_from(first, pinned) {
                    Ok(opened) => {
                        self.connections += 1;
                        self.current = Some(opened);
                    }
                    Err(e) => {
                        if classify(&e).retry != Retry::Never && reconnects < MAX_RECONNECTS {
                            reconnects += 1;
                            pause(reconnects);
                            continue;
                        }
                        return Sent {
                            result: Err(e),
                            give_up: Some(String::new()),
                        };
                    }
                }
            }
            let Some((session, index)) = self.current.as_mut() else {
                continue;
            };
            let index = *index;
            let more_servers = index + 1 < self.servers.len();
            let cfg = &self.cfg;
            // Taken by an earlier attempt: opened again at the top of the loop.
            let Some(offered) = message.take() else {
                continue;
            };
            // The progress bar is the caller's choice (a reopened message needs it again).
            let watched = crate::progress::watch(cfg, offered);
            let (outcome, kept) = session.send(&cfg.session, envelope, watched);
            message = kept;
            let moves = more_servers && next_host(&outcome);
            let outcome = match outcome {
                Ok(report) if !moves => return done(Ok(report)),
                other => other,
            };
            let Next {
                class,
                move_on,
                reconnect,
                in_step,
                why,
            } = Next::after(&outcome, more_servers);
            if move_on || reconnect || !in_step {
                if let Some((mut s, _)) = self.current.take() {
                    if move_on || reconnect {
                        s.transcript().info(&Next::line(label, move_on, &why));
                    }
                    // After a reply the server still talks (and Session::send sent RSET).
                    if in_step {
                        s.quit();
                    }
                }
            }
            if move_on {
                first = index + 1;
                pinned = false;
                continue;
            }
            let Err(err) = outcome else {
                // Not reached: a report that does not move on was returned above.
                continue;
            };
            if !reconnect {
                return done(Err(err));
            }
            if reconnects >= MAX_RECONNECTS {
                return Sent {
                    result: Err(err),
                    give_up: Some(format!(
                        "giving up after {MAX_RECONNECTS} reconnections for one message"
                    )),
                };
            }
            reconnects += 1;
            pause(reconnects);
            pinned = class.is_some_and(|c| c.retry == Retry::Later);
            first = if pinned { index } else { 0 };
        }
    }

    /// QUIT the open session, if any. Call [`Sessions::finish`] first when messages may be
    /// in flight: their replies are read there.
    pub fn close(&mut self) {
        if let Some((s, _)) = self.current.take() {
            s.quit();
        }
    }

    /// Send message `id` through the window: queued whole behind the messages in flight
    /// when the session can (PIPELINING and CHUNKING, a small message held whole: see
    /// `smtp::session::window`); with PIPELINING and DATA, its commands behind the end of
    /// data of the one in flight ([`Sessions::overlap`]); else the ordinary way once those
    /// are settled. Returns the
    /// messages finished meanwhile, in the order pushed: each with what became of it, or
    /// `None` when the run had given up before its turn came again. `reopen` opens a
    /// message again by id (one sent again after a reconnect).
    pub fn push(
        &mut self,
        id: usize,
        envelope: &Envelope,
        message: Message,
        label: &str,
        reopen: &mut dyn FnMut(usize) -> Result<Message>,
    ) -> Vec<(usize, Option<Sent>)> {
        let mut out = Vec::new();
        if self.gave_up {
            out.push((id, None));
            return out;
        }
        let mut start = Start::default();
        if self.window > 1 && self.current.is_none() {
            // Open the session here, so that this message is the window's first.
            match self.open_from(0, false) {
                Ok(opened) => {
                    self.connections += 1;
                    self.current = Some(opened);
                }
                // As the ordinary way would go on after this failure.
                Err(e) if classify(&e).retry != Retry::Never => start.reconnects = 1,
                Err(e) => {
                    self.gave_up = true;
                    let sent = Sent {
                        result: Err(e),
                        give_up: Some(String::new()),
                    };
                    out.push((id, Some(sent)));
                    return out;
                }
            }
        }
        let message = match (self.window > 1, self.current.as_mut()) {
            (true, Some((session, _))) if session.can_overlap_data(&self.cfg.session) => {
                let behind = self.flights.back().is_some_and(|f| f.blind.data_sent());
                match session.queue_data_group(&self.cfg.session, envelope, message, behind) {
                    crate::smtp::session::QueuedData::Half(half) => {
                        match self.overlap(id, envelope, label, half, reopen, &mut out) {
                            None => return out,
                            Some(message) => message,
                        }
                    }
                    crate::smtp::session::QueuedData::Declined(message) => message,
                }
            }
            (true, Some((session, _))) => {
                let behind = !self.flights.is_empty();
                match session.queue_blind(&self.cfg.session, envelope, message, behind) {
                    crate::smtp::session::Queued::Blind(blind) => {
                        self.flights.push_back(Flight {
                            id,
                            envelope: envelope.clone(),
                            label: label.to_string(),
                            blind,
                        });
                        // The oldest is read when the window is full; the read writes the
                        // newest first, so `window` transactions are unanswered at once.
                        while self.flights.len() >= self.window {
                            let mut pending = self.settle_oldest(false);
                            out.extend(self.resolve(&mut pending, reopen));
                        }
                        return out;
                    }
                    crate::smtp::session::Queued::Declined(message) => message,
                }
            }
            _ => message,
        };
        // The ordinary way: after everything in flight (a new session, if need be).
        out.extend(self.finish(reopen));
        if self.gave_up {
            out.push((id, None));
            return out;
        }
        let sent = self.send_from(Some(message), envelope, label, &mut || reopen(id), start);
        self.gave_up = sent.give_up.is_some();
        out.push((id, Some(sent)));
        out
    }

    /// A DATA transaction whose commands are queued ([`Session::queue_data_group`]) behind
    /// the one in flight: that one is read first (the read writes this group with its end
    /// of data), then this one's replies and, on 354, its data, and it is in flight in
    /// turn. When the session ends while this group is unanswered (the one ahead must go
    /// again, or the connection is gone), the group goes with the session — no data of this
    /// message was sent — and the message comes back for the ordinary way.
    fn overlap(
        &mut self,
        id: usize,
        envelope: &Envelope,
        label: &str,
        half: crate::smtp::session::Half,
        reopen: &mut dyn FnMut(usize) -> Result<Message>,
        out: &mut Vec<(usize, Option<Sent>)>,
    ) -> Option<Message> {
        let mut pending = Vec::new();
        while !self.flights.is_empty() {
            pending.extend(self.settle_oldest(true));
        }
        let clean = pending.iter().all(|(_, s)| matches!(s, Settled::Done(_)));
        let kept = match (clean, self.current.as_mut()) {
            (true, Some((session, _))) => {
                let blind = session.continue_data(half);
                self.flights.push_back(Flight {
                    id,
                    envelope: envelope.clone(),
                    label: label.to_string(),
                    blind,
                });
                None
            }
            _ => {
                // Dropped, not QUIT: the server may be reading this group's DATA.
                self.current = None;
                Some(half.into_message())
            }
        };
        out.extend(self.resolve(&mut pending, reopen));
        kept
    }

    /// Settle every message in flight; see [`Sessions::push`].
    pub fn finish(
        &mut self,
        reopen: &mut dyn FnMut(usize) -> Result<Message>,
    ) -> Vec<(usize, Option<Sent>)> {
        let mut out = Vec::new();
        while !self.flights.is_empty() {
            let mut pending = self.settle_oldest(false);
            out.extend(self.resolve(&mut pending, reopen));
        }
        out
    }

    /// Every message in flight, unanswered, to be sent again pinned to this server (its
    /// data went out: the server may have it), and the session dropped.
    fn drain(&mut self) -> Vec<(usize, Settled)> {
        let index = self.current.as_ref().map_or(0, |(_, i)| *i);
        self.flights
            .drain(..)
            .map(|f| {
                let start = Start {
                    reconnects: 0,
                    first: index,
                    pinned: true,
                };
                (f.id, Settled::Again(f.envelope, f.label, start))
            })
            .collect()
    }

    /// Read the oldest message's replies and judge it as [`Sessions::send`] would. A
    /// message that must go again (a reconnect, or the next server) ends the session: the
    /// messages behind it are read first while the server still talks (each judged by its
    /// own replies), or, when it does not, are all to be sent again. `group_behind`: a DATA
    /// group is queued behind the flights ([`Sessions::overlap`]), so a session that ends
    /// here is dropped, not QUIT (the server may be reading that group's DATA).
    fn settle_oldest(&mut self, group_behind: bool) -> Vec<(usize, Settled)> {
        let mut pending = Vec::new();
        let mut closing = false;
        while let Some(flight) = self.flights.pop_front() {
            let Some((session, index)) = self.current.as_mut() else {
                // Not reached: flights only exist on a session.
                let start = Start::default();
                pending.push((
                    flight.id,
                    Settled::Again(flight.envelope, flight.label, start),
                ));
                continue;
            };
            let index = *index;
            let outcome = session.settle_blind(flight.blind);
            let more_servers = index + 1 < self.servers.len();
            let moves = more_servers && next_host(&outcome);
            let in_step = outcome
                .as_ref()
                .err()
                .map(classify)
                .is_none_or(|c| c.in_step);
            let settled = match outcome {
                Ok(report) if !moves => Settled::Done(Sent {
                    result: Ok(report),
                    give_up: None,
                }),
                outcome => {
                    let Next {
                        class,
                        move_on,
                        reconnect,
                        why,
                        ..
                    } = Next::after(&outcome, more_servers);
                    match outcome {
                        Err(err) if !move_on && !reconnect => Settled::Done(Sent {
                            result: Err(err),
                            give_up: None,
                        }),
                        _ => {
                            session
                                .transcript()
                                .info(&Next::line(&flight.label, move_on, &why));
                            closing = true;
                            let pinned = class.is_some_and(|c| c.retry == Retry::Later);
                            let start = if move_on {
                                Start {
                                    reconnects: 0,
                                    first: index + 1,
                                    pinned: false,
                                }
                            } else {
                                Start {
                                    reconnects: 1,
                                    first: if pinned { index } else { 0 },
                                    pinned,
                                }
                            };
                            Settled::Again(flight.envelope, flight.label, start)
                        }
                    }
                }
            };
            pending.push((flight.id, settled));
            if !in_step {
                // The connection is gone: nothing behind this message will be answered.
                pending.extend(self.drain());
                self.current = None;
                return pending;
            }
            if !closing {
                return pending;
            }
        }
        // Every message behind the one that ended the session has been read.
        if group_behind {
            self.current = None;
        } else {
            self.close();
        }
        pending
    }

    /// Turn settled messages into outcomes, in order, sending again those that must go
    /// again (the ordinary way, from where their first attempt left them).
    fn resolve(
        &mut self,
        pending: &mut Vec<(usize, Settled)>,
        reopen: &mut dyn FnMut(usize) -> Result<Message>,
    ) -> Vec<(usize, Option<Sent>)> {
        let mut out = Vec::new();
        for (id, settled) in pending.drain(..) {
            let sent = match settled {
                // Answered before the run gave up: its outcome stands (it may be delivered).
                Settled::Done(sent) => Some(sent),
                _ if self.gave_up => None,
                Settled::Again(envelope, label, start) => {
                    let sent = self.send_from(None, &envelope, &label, &mut || reopen(id), start);
                    self.gave_up = sent.give_up.is_some();
                    Some(sent)
                }
            };
            out.push((id, sent));
        }
        out
    }
}

/// What follows one message's failed (or untaken) outcome on a server of the list: the
/// one rule the ordinary send and the window both apply.
struct Next {
    /// The error's classification; `None` for a transaction that ended in replies.
    class: Option<crate::error::Class>,
    /// The next server, for a message this one could not take now.
    move_on: bool,
    /// The server ended the session: send again over a new one.
    reconnect: bool,
    /// The server still talks (QUIT may be sent).
    in_step: bool,
    /// Why, in words, for the transcript.
    why: String,
}

impl Next {
    fn after(outcome: &Result<Report>, more_servers: bool) -> Next {
        let (class, why) = match outcome {
            Err(e) => (Some(classify(e)), format!("{e:#}")),
            Ok(report) => (None, report.failure_lines().join("; ")),
        };
        Next {
            move_on: more_servers
                && match &class {
                    Some(c) => c.retry == Retry::NextHost && !c.reconnect,
                    None => true,
                },
            reconnect: class.is_some_and(|c| c.reconnect),
            in_step: class.is_none_or(|c| c.in_step),
            class,
            why,
        }
    }

    /// The transcript's line for a message moving on or reconnecting.
    fn line(label: &str, move_on: bool, why: &str) -> String {
        let printable = crate::transcript::printable(why);
        if move_on {
            format!("{label}: trying the next server ({printable})")
        } else {
            format!("{label}: the server ended the session; reconnecting ({printable})")
        }
    }
}

/// The first reconnection is at once (a per-connection message limit is routine); later
/// ones wait a little longer each time.
fn pause(reconnects: usize) {
    if reconnects > 1 {
        let ms = 500 * (reconnects as u64 - 1);
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// One place to try: a server of the submission list, or the socket.
#[derive(Debug, Clone)]
enum Hop {
    Server(Server),
    Socket(PathBuf),
}

impl std::fmt::Display for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hop::Server(s) => write!(f, "{}:{}", s.host, s.port),
            Hop::Socket(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The places to try, in order: the server, then each fallback server (--server a,b); or
/// the socket. None for a route that is not a submission (MX delivery has its own order).
fn hops(cfg: &Config) -> Vec<Hop> {
    match &cfg.route {
        Route::Submission(servers) => servers.iter().cloned().map(Hop::Server).collect(),
        Route::Socket(path) => vec![Hop::Socket(path.clone())],
        Route::Mx { .. } | Route::Nowhere => Vec::new(),
    }
}

fn no_server() -> anyhow::Error {
    Error::Config("no mail server given: use --server HOST[:PORT]".into()).into()
}

/// Route, connect (with the -v transcript) and run `session` over the connection; with
/// --show-time and -v, the total time at the end. The observer gets what the wire showed.
/// `session` is called in any case, with the error when there is no connection, so that
/// whatever it carries (the message) comes back.
fn over_connection<T>(
    cfg: &Config,
    hop: &Hop,
    observer: &mut dyn Observer,
    session: impl FnOnce(Result<(Connection, &net::tls::Tls)>, &mut dyn Observer) -> T,
) -> T {
    observer.resolving();
    let link = match Link::resolve(cfg, hop) {
        Ok(link) => link,
        Err(e) => return session(Err(e), observer),
    };
    let (back, trace) = std::sync::mpsc::channel();
    let transcript = cfg.transcript().handing_back(back);
    let started = Instant::now();
    let result = session(
        link.open(cfg, transcript).map(|conn| (conn, &link.tls)),
        observer,
    );
    // The session is over and its connection gone: the trace has come back.
    let seen = crate::trace::handed_back(&trace);
    let elapsed = started.elapsed();
    let waited = seen.timings.iter().map(|t| t.elapsed).sum();
    cfg.transcript().total(elapsed, waited);
    observer.connection(seen, elapsed);
    result
}

/// Where one hop is and how to reach it: resolved once, then any number of connections
/// (`postie batch` reconnects over the same route and TLS set-up).
struct Link {
    reach: Reach,
    tls: net::tls::Tls,
}

enum Reach {
    /// A server's resolved addresses.
    Tcp(route::Route),
    /// --socket: nothing to resolve, and never TLS (config refused it).
    Socket(PathBuf),
}

impl Link {
    fn resolve(cfg: &Config, hop: &Hop) -> Result<Link> {
        let reach = match hop {
            Hop::Socket(path) => Reach::Socket(path.clone()),
            Hop::Server(server) => {
                let dns_timeout = cfg.timeouts.for_phase(crate::net::timeout::Phase::Connect);
                let security = cfg.session.security;
                let mut route = route::submission(server, security, cfg.resolver, dns_timeout)?;
                route.addrs = route::only(route.addrs, cfg.family);
                if route.addrs.is_empty() {
                    return Err(Error::NoHost(format!(
                        "{} has no address of the family asked for (-4/-6)",
                        server.host
                    ))
                    .into());
                }
                Reach::Tcp(route)
            }
        };
        let tls = net::tls::Tls::new(cfg.tls_ca.as_deref(), cfg.tls_verify)?;
        Ok(Link { reach, tls })
    }

    /// A new connection (with implicit TLS, its handshake done), writing `transcript`.
    fn open(&self, cfg: &Config, transcript: Transcript) -> Result<Connection> {
        match &self.reach {
            Reach::Tcp(route) => {
                let implicit = (route.security == Security::Implicit).then_some(&self.tls);
                Connection::open(
                    &route.host,
                    &route.addrs,
                    implicit,
                    cfg.timeouts,
                    transcript,
                )
            }
            Reach::Socket(path) => Connection::open_unix(path, cfg.timeouts, transcript),
        }
    }
}
