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
}

/// What became of one message sent over [`Sessions`].
pub struct Sent {
    pub result: Result<Report>,
    /// Set when no session can be had any more: the run should give up, for this reason
    /// (the result's own error, with this said about it when not empty).
    pub give_up: Option<String>,
}

impl Sessions {
    pub fn new(cfg: &Config) -> Sessions {
        let servers = hops(cfg);
        let links = servers.iter().map(|_| None).collect();
        Sessions {
            cfg: cfg.clone(),
            servers,
            links,
            current: None,
            connections: 0,
        }
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
    /// attempt got as far as sending it.
    pub fn send(
        &mut self,
        envelope: &Envelope,
        message: Message,
        label: &str,
        reopen: &mut dyn FnMut() -> Result<Message>,
    ) -> Sent {
        let done = |result| Sent {
            result,
            give_up: None,
        };
        let mut message = Some(message);
        let mut reconnects = 0;
        // Where a new session starts: the first server, or the one after a server that
        // could not take this message. Pinned to one server when that server may already
        // have the message (a failure the classification retries "later"): the message
        // goes to it again, never to another server as well.
        let mut first = 0;
        let mut pinned = false;
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
            let (class, why) = match &outcome {
                Err(e) => (Some(classify(e)), format!("{e:#}")),
                Ok(report) => (None, report.failure_lines().join("; ")),
            };
            // The next server, for a message this one could not take now.
            let move_on = more_servers
                && match &class {
                    Some(c) => c.retry == Retry::NextHost && !c.reconnect,
                    None => true,
                };
            let reconnect = class.is_some_and(|c| c.reconnect);
            let in_step = class.is_none_or(|c| c.in_step);
            if move_on || reconnect || !in_step {
                if let Some((mut s, _)) = self.current.take() {
                    let printable = crate::transcript::printable(&why);
                    if move_on {
                        s.transcript()
                            .info(&format!("{label}: trying the next server ({printable})"));
                    } else if reconnect {
                        s.transcript().info(&format!(
                            "{label}: the server ended the session; reconnecting ({printable})"
                        ));
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

    /// QUIT the open session, if any.
    pub fn close(&mut self) {
        if let Some((s, _)) = self.current.take() {
            s.quit();
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
    let transcript = cfg.transcript();
    let trace = transcript.trace().clone();
    let started = Instant::now();
    let result = session(
        link.open(cfg, transcript).map(|conn| (conn, &link.tls)),
        observer,
    );
    let seen = trace.snapshot();
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
