//! Direct delivery: one SMTP transaction per recipient domain, straight to that domain's
//! mail exchangers (RFC 5321 §5.1), and the per-domain outcome.
//!
//! For each domain (recipients grouped by `route::by_domain`), the MX hosts are tried in
//! preference order; each host's addresses share one connect budget
//! ([`Connection::open`]). The next host is tried by the engine's one rule
//! ([`super::next_host`]): the host cannot be reached, times out, loses the connection or
//! answers with a 4xx before the message data, or defers every recipient; never after a
//! 5xx, and never once the message data has begun. With opportunistic STARTTLS (RFC 7435) a failed handshake is retried once on
//! the same host in plain text (RFC 7435 §6.1; Postfix's `may` level does the same). AUTH
//! happens only when the user gave `--user` (`config` drops an account's login for MX
//! delivery). The MTA-STS and DANE checks are meant to plug in per domain: they set
//! [`DomainOutcome::policy`] and may restrict the hosts and the TLS demanded.
//!
//! The message must be sendable once per domain, and kept when a host fails before DATA:
//! `session::deliver_keeping` gives it back unless the server was given it (after DATA's
//! 354 or a BDAT), and a message a host was given is never offered to another. With one
//! domain the message is sent as it is. With several, a composed message is copied from
//! memory; a ready message from a FILE is opened again for each domain; a ready message
//! from STDIN is first copied once into a private temporary file (so its size is bounded by
//! the disk, not by memory), which is opened for each domain and removed at the end.
//!
//! This module decides nothing about exit codes beyond combining the domains' with
//! [`Exit::most_urgent`]: 75 if any domain may be retried, else the permanent code, else 0.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use crate::config::{Config, Content, Security, SendmailOptions, SessionOptions, Source};
use crate::dane;
use crate::dns::Resolver;
use crate::envelope::Envelope;
use crate::error::{classify, Error, Exit, Retry};
use crate::message::{self, Message};
use crate::mta_sts;
use crate::net::timeout::Milestone;
use crate::net::timeout::Phase;
use crate::net::tls::Tls;
use crate::net::Connection;
use crate::queue::Sorted;
use crate::report::{self, Outcome, Report};
use crate::route::{self, Domain};
use crate::smtp;
use crate::smtp::session::{Rehearsal, StartTlsFailed};
use crate::trace::TlsInfo;
use crate::transcript::Transcript;

/// What happened to one recipient domain.
#[derive(Debug, Clone)]
pub struct DomainOutcome {
    /// The domain as written in the envelope.
    pub domain: String,
    pub recipients: Vec<String>,
    /// The MX host that took the transaction (or ended it), and its preference.
    pub mx: Option<String>,
    pub preference: Option<u16>,
    /// The address connected to.
    pub address: Option<SocketAddr>,
    /// The TLS session, when there was one.
    pub tls: Option<TlsInfo>,
    /// "none" | "opportunistic" | "required"; MTA-STS and DANE add their own.
    pub policy: String,
    /// Hosts given up on before the one that answered, with why.
    pub tried: Vec<String>,
    /// The per-recipient replies, when the transaction got that far.
    pub report: Option<Report>,
    /// What stopped the domain before (or instead of) a per-recipient outcome.
    pub error: Option<Arc<anyhow::Error>>,
}

impl DomainOutcome {
    fn new(domain: &Domain, policy: &str) -> DomainOutcome {
        DomainOutcome {
            domain: domain.name.clone(),
            recipients: domain.recipients.clone(),
            mx: None,
            preference: None,
            address: None,
            tls: None,
            policy: policy.to_string(),
            tried: Vec::new(),
            report: None,
            error: None,
        }
    }

    pub fn exit(&self) -> Exit {
        report::exit_of(&self.outcomes())
    }

    /// Each of the domain's recipients' outcome: per recipient when its transaction got
    /// that far, else the domain's failure for every one of them.
    pub fn outcomes(&self) -> Vec<Outcome> {
        match (&self.error, &self.report) {
            (Some(e), _) => report::failed(&self.recipients, e),
            (None, Some(r)) => r.outcomes(),
            (None, None) => Vec::new(),
        }
    }

    /// One line for a failed domain, or one per refused recipient.
    pub fn failure_lines(&self) -> Vec<String> {
        if let Some(e) = &self.error {
            let msg = format!("{e:#}");
            let line = if !self.domain.is_empty() && msg.starts_with(self.domain.as_str()) {
                msg
            } else {
                format!("{}: {msg}", self.domain)
            };
            return vec![line];
        }
        self.report
            .as_ref()
            .map_or_else(Vec::new, Report::failure_lines)
    }
}

/// A domain's failure as an error, for callers that want one (the log line): its message
/// names the domain, and its exit code is the original error's.
#[derive(Debug)]
pub struct DomainFailed {
    pub domain: String,
    pub error: Arc<anyhow::Error>,
}

impl std::fmt::Display for DomainFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.domain)
    }
}

impl std::error::Error for DomainFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let inner: &(dyn std::error::Error + Send + Sync + 'static) = (*self.error).as_ref();
        Some(inner)
    }
}

/// Every domain's outcome, in envelope order.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub domains: Vec<DomainOutcome>,
}

impl Delivery {
    /// The most urgent of the domains' exit codes.
    pub fn exit(&self) -> Exit {
        self.domains
            .iter()
            .map(DomainOutcome::exit)
            .fold(Exit::Ok, Exit::most_urgent)
    }

    pub fn failure_lines(&self) -> Vec<String> {
        self.domains
            .iter()
            .flat_map(DomainOutcome::failure_lines)
            .collect()
    }

    /// All domains' recipient replies in one report; the final reply is the last domain's
    /// that has one.
    pub fn report(&self) -> Report {
        let reports = self.domains.iter().filter_map(|d| d.report.as_ref());
        Report {
            recipients: reports
                .clone()
                .flat_map(|r| r.recipients.iter().cloned())
                .collect(),
            final_reply: reports.filter_map(|r| r.final_reply.clone()).next_back(),
        }
    }

    /// Every recipient's outcome, domain by domain.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.domains
            .iter()
            .flat_map(DomainOutcome::outcomes)
            .collect()
    }

    /// Each recipient as the queue sees it (delivered, deferred, refused), domain by
    /// domain; `in_queue` classifies for `queue run`, which retries more.
    pub fn sorted(&self, in_queue: bool) -> Sorted {
        Sorted::of_outcomes(&self.outcomes(), in_queue)
    }

    /// The outcome as one result (for the log line): the combined report, or, when a
    /// domain failed before its recipients were answered, the most urgent such failure.
    pub fn as_result(&self) -> Result<Report> {
        let failed = self
            .domains
            .iter()
            .filter(|d| d.error.is_some())
            .reduce(|a, b| {
                if a.exit().most_urgent(b.exit()) == a.exit() {
                    a
                } else {
                    b
                }
            });
        match failed.and_then(|d| d.error.clone().map(|e| (d.domain.clone(), e))) {
            Some((domain, error)) => Err(DomainFailed { domain, error }.into()),
            None => Ok(self.report()),
        }
    }
}

/// Deliver (or, with `stop` before DATA, rehearse) to every recipient domain of `envelope`.
/// `message` is None only for a rehearsal. Errors are only those that stop everything
/// (the TLS set-up, the resolver, spooling the message); a domain's failure is in its
/// [`DomainOutcome`].
pub fn run(
    cfg: &Config,
    envelope: &Envelope,
    message: Option<Message>,
    stop: Option<Milestone>,
    observer: &mut dyn crate::report::Observer,
) -> Result<Delivery> {
    let port = cfg.route.mx_port().unwrap_or(crate::config::SMTP_PORT);
    let domains = route::by_domain(&envelope.forward_paths);
    if domains.is_empty() {
        return Err(Error::Data("no recipients".into()).into());
    }
    // Opportunistic TLS is unauthenticated (RFC 7435 §1, as MTAs do by default): a
    // certificate that does not verify must not push the mail back to plain text, so it is
    // checked and recorded but not enforced, and the report says "verified": false.
    // --tls starttls (required) verifies as configured.
    let tls = if cfg.tls_verify && cfg.session.security == Security::Opportunistic {
        Tls::unauthenticated(
            cfg.tls_ca.as_deref(),
            "opportunistic TLS (RFC 7435) does not enforce certificates",
        )?
    } else {
        Tls::new(
            cfg.tls_ca.as_deref(),
            cfg.tls_verify && cfg.session.security != Security::Opportunistic,
        )?
    };
    let resolver = Resolver::new(cfg.resolver, cfg.timeouts.for_phase(Phase::Connect))?;
    // MTA-STS (RFC 8461) needs certificates checked even where opportunistic TLS does not.
    let verified_tls = Tls::new(cfg.tls_ca.as_deref(), true)?;
    let sts = if cfg.mta_sts.enabled && cfg.tls_verify {
        Some(mta_sts::Fetcher::new(
            cfg.resolver,
            cfg.mta_sts.url_base.clone(),
            cfg.mta_sts.cache_dir.clone(),
            cfg.tls_ca.clone(),
            cfg.timeouts.for_phase(Phase::Connect),
        )?)
    } else {
        None
    };
    let (mut copies, _spool) = Copies::new(cfg, message, domains.len())?;
    let mut delivery = Delivery::default();
    for domain in &domains {
        let outcome = deliver_domain(
            cfg,
            &resolver,
            (&tls, &verified_tls),
            sts.as_ref(),
            port,
            domain,
            envelope,
            &mut copies,
            stop,
            observer,
        );
        delivery.domains.push(outcome);
    }
    Ok(delivery)
}

#[allow(clippy::too_many_arguments)]
fn deliver_domain(
    cfg: &Config,
    resolver: &Resolver,
    (tls, verified_tls): (&Tls, &Tls),
    sts: Option<&mta_sts::Fetcher>,
    port: u16,
    domain: &Domain,
    envelope: &Envelope,
    copies: &mut Copies,
    stop: Option<Milestone>,
    observer: &mut dyn crate::report::Observer,
) -> DomainOutcome {
    let mut out = DomainOutcome::new(domain, cfg.session.security.policy());
    let mut note = cfg.transcript();
    let hosts = match route::mx_hosts(resolver, &domain.name) {
        Ok(h) => h,
        Err(e) => {
            note.error(&format!("{}: {e:#}", domain.name));
            out.error = Some(Arc::new(e));
            return out;
        }
    };
    let (hosts, enforce) = match apply_mta_sts(sts, domain, hosts, &mut out, &mut note) {
        Ok(h) => h,
        Err(e) => {
            note.error(&format!("{e:#}"));
            out.error = Some(Arc::new(e));
            return out;
        }
    };
    let listed: Vec<String> = hosts
        .iter()
        .map(|h| format!("{} {}", h.preference, h.host))
        .collect();
    note.info(&format!(
        "Delivering to {}: MX {}",
        domain.name,
        listed.join(", ")
    ));
    let mut message = match copies.next() {
        Ok(m) => m.map(|m| crate::progress::watch(cfg, m)),
        Err(e) => {
            out.error = Some(Arc::new(e));
            return out;
        }
    };
    let env = Envelope {
        reverse_path: envelope.reverse_path.clone(),
        forward_paths: domain.recipients.clone(),
    };
    // --quit-after before DATA; a stop at `data` goes through deliver_keeping, which
    // declares the message in MAIL FROM.
    let rehearsal = stop
        .filter(|s| *s < Milestone::Data)
        .map(|s| Rehearsal::with_envelope(s, env.clone()));
    let mut last: Option<anyhow::Error> = None;
    let count = hosts.len();
    'hosts: for (i, host) in hosts.into_iter().enumerate() {
        let more_hosts = i + 1 < count;
        let addrs = match route::host_addrs(resolver, &host.host, port, cfg.family) {
            Ok(a) => a,
            Err(e) => {
                note.error(&format!("{e:#}"));
                out.tried.push(format!("{}: {e:#}", host.host));
                last = Some(e);
                continue;
            }
        };
        let (dane_tls, dane_policy) = match dane_step(cfg, &host.host, port) {
            Ok(DaneStep::Apply(t, policy)) => {
                note.info(&format!("{}: {policy}", host.host));
                (Some(t), Some(policy))
            }
            Ok(DaneStep::Usual(why)) => {
                if let Some(why) = why {
                    note.info(&format!("{}: dane: not available ({why})", host.host));
                    if !out.policy.contains("dane") {
                        out.policy = format!("{} (dane: not available: {why})", out.policy);
                    }
                }
                (None, None)
            }
            Err(e) => {
                // RFC 7672 §2.2: a TLSA lookup that fails is a reason not to use this host.
                note.error(&format!("{}: TLSA lookup: {e:#}", host.host));
                out.tried.push(format!("{}: TLSA lookup: {e:#}", host.host));
                last = Some(e);
                continue;
            }
        };
        // DANE, when it applies, wins over MTA-STS (RFC 8461 §2).
        let (tls, mut security) = match (&dane_tls, enforce) {
            (Some(t), _) => (t, Security::StartTlsRequired),
            (None, true) => (verified_tls, Security::StartTlsRequired),
            (None, false) => (tls, cfg.session.security),
        };
        loop {
            let plain;
            let opts = if security == cfg.session.security {
                &cfg.session
            } else {
                plain = SessionOptions {
                    security,
                    ..cfg.session.clone()
                };
                &plain
            };
            let (back, trace) = std::sync::mpsc::channel();
            let transcript = cfg.transcript().handing_back(back);
            let implicit = (security == Security::Implicit).then_some(tls);
            let open = || Connection::open(&host.host, &addrs, implicit, cfg.timeouts, transcript);
            let result = match &rehearsal {
                Some(r) => open().and_then(|conn| smtp::session::rehearse(conn, opts, tls, r)),
                None => {
                    // A message that a host was given is never offered to another.
                    let Some(offered) = message.take() else {
                        break 'hosts;
                    };
                    match open() {
                        Ok(conn) => {
                            let (result, kept) = smtp::session::deliver_keeping(
                                conn, opts, tls, &env, offered, stop, observer,
                            );
                            message = kept;
                            result
                        }
                        Err(e) => {
                            message = Some(offered);
                            Err(e)
                        }
                    }
                }
            };
            // The connection is gone: its trace has come back.
            let seen = crate::trace::handed_back(&trace);
            match result {
                Err(e)
                    if security == Security::Opportunistic
                        && e.downcast_ref::<StartTlsFailed>().is_some() =>
                {
                    note.error(&format!(
                        "{}: {e:#}; trying it again without TLS",
                        host.host
                    ));
                    out.tried
                        .push(format!("{}: {e:#} (retried without TLS)", host.host));
                    security = Security::Plain;
                }
                Err(e) if classify(&e).retry == Retry::NextHost => {
                    note.error(&format!("{}: {e:#}", host.host));
                    out.tried.push(format!("{}: {e:#}", host.host));
                    last = Some(e);
                    break;
                }
                // Every recipient deferred (4xx to each RCPT): nobody has the message, so
                // the next host is offered it, as after a 4xx to MAIL.
                Ok(report) if report.untaken_and_retryable() && more_hosts => {
                    out.tried.push(format!(
                        "{}: {}",
                        host.host,
                        report.failure_lines().join("; ")
                    ));
                    break;
                }
                result => {
                    if let Some(p) = &dane_policy {
                        out.policy = p.clone();
                    }
                    out.mx = Some(host.host.clone());
                    out.preference = Some(host.preference);
                    out.address = seen.peer;
                    out.tls = seen.tls;
                    match result {
                        Ok(report) => out.report = Some(report),
                        Err(e) => out.error = Some(Arc::new(e)),
                    }
                    return out;
                }
            }
        }
    }
    let err = last
        .unwrap_or_else(|| Error::NoHost(format!("{}: no mail server to try", domain.name)).into());
    out.error = Some(Arc::new(err));
    out
}

/// MTA-STS for one domain: `enforce` keeps only the MX hosts the policy names (none left:
/// the domain fails without connecting) and makes verified TLS required; `testing` only
/// says what it would refuse. A policy that cannot be had is reported, and the mail goes
/// as without one (RFC 8461 §5.1). Returns the hosts to try and whether TLS is enforced.
fn apply_mta_sts(
    sts: Option<&mta_sts::Fetcher>,
    domain: &Domain,
    hosts: Vec<route::MxHost>,
    out: &mut DomainOutcome,
    note: &mut Transcript,
) -> Result<(Vec<route::MxHost>, bool)> {
    let Some(fetcher) = sts else {
        return Ok((hosts, false));
    };
    let found = match fetcher.lookup(&domain.name) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok((hosts, false)),
        Err(e) => {
            note.error(&format!(
                "{}: MTA-STS policy unavailable ({e:#}); delivering without one",
                domain.name
            ));
            return Ok((hosts, false));
        }
    };
    if let Some(n) = &found.note {
        note.info(&format!("{}: MTA-STS: {n}", domain.name));
    }
    let policy = &found.policy;
    let refused: Vec<String> = hosts
        .iter()
        .filter(|h| !policy.allows(&h.host))
        .map(|h| h.host.clone())
        .collect();
    match policy.mode {
        mta_sts::Mode::None => Ok((hosts, false)),
        mta_sts::Mode::Testing => {
            out.policy = "mta-sts (testing)".into();
            for h in &refused {
                note.info(&format!(
                    "{}: MTA-STS (testing) would refuse MX {h}",
                    domain.name
                ));
            }
            Ok((hosts, false))
        }
        mta_sts::Mode::Enforce => {
            out.policy = "mta-sts (enforce)".into();
            let allowed: Vec<route::MxHost> = hosts
                .into_iter()
                .filter(|h| policy.allows(&h.host))
                .collect();
            if allowed.is_empty() {
                return Err(Error::Unavailable(format!(
                    "{}: its MTA-STS policy (enforce) allows none of its MX hosts ({})",
                    domain.name,
                    refused.join(", ")
                ))
                .into());
            }
            for h in &refused {
                note.info(&format!("{}: MTA-STS refuses MX {h}", domain.name));
            }
            Ok((allowed, true))
        }
    }
}

/// What DANE (RFC 7672) asks of one MX host.
enum DaneStep {
    /// TLS is required, checked with this configuration; the policy in words.
    Apply(Tls, String),
    /// The domain's usual policy; `Some(why)` when DANE could not be used.
    Usual(Option<String>),
}

/// Ask the resolver the user named (--resolver: one they trust to validate DNSSEC) for the
/// host's TLSA records. Usable records demand TLS verified by them alone; records none of
/// which are usable demand TLS without authentication; validated absence leaves the usual
/// policy; an answer that is not DNSSEC-validated is "not available", never trusted.
fn dane_step(cfg: &Config, host: &str, port: u16) -> Result<DaneStep> {
    let Some(resolver) = cfg.resolver else {
        return Ok(DaneStep::Usual(Some(
            "no validating resolver given (--resolver)".into(),
        )));
    };
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(DaneStep::Usual(None));
    }
    let timeout = cfg.timeouts.for_phase(Phase::Connect);
    Ok(match dane::lookup(resolver, host, port, timeout)? {
        dane::Lookup::Records(records) => {
            let n = records.len();
            DaneStep::Apply(
                Tls::with_verifier(dane::verifier(records, host))?,
                format!("dane ({n} usable TLSA record(s))"),
            )
        }
        dane::Lookup::Unusable(n) => DaneStep::Apply(
            Tls::unauthenticated(
                cfg.tls_ca.as_deref(),
                "DANE with no usable TLSA record (RFC 7672 §2.2) does not enforce certificates",
            )?,
            format!("dane ({n} TLSA record(s), none usable: TLS required, unauthenticated)"),
        ),
        dane::Lookup::NoRecords => DaneStep::Usual(None),
        dane::Lookup::NotAvailable(why) => DaneStep::Usual(Some(why)),
    })
}

/// The message, once per domain.
enum Copies {
    /// A rehearsal: no message.
    Nothing,
    /// One domain: the message itself.
    One(Option<Message>),
    /// A composed message, copied from memory.
    Memory(Vec<u8>),
    /// A message that can be read again ([`Message::again`]): held whole, or composed
    /// with its attachments left in their files (read again for each domain).
    Again(Message),
    /// A ready message opened again for each domain: its own file, or the spool.
    Reopen(Box<Config>),
}

/// The temporary copy of a message from stdin; removed when dropped.
struct Spool {
    path: PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Copies {
    fn new(
        cfg: &Config,
        message: Option<Message>,
        domains: usize,
    ) -> Result<(Copies, Option<Spool>)> {
        let Some(message) = message else {
            return Ok((Copies::Nothing, None));
        };
        if domains <= 1 {
            return Ok((Copies::One(Some(message)), None));
        }
        if cfg.session.dkim.is_some() || matches!(cfg.content, Content::Compose(_)) {
            if let Some(again) = message.again() {
                return Ok((Copies::Again(again), None));
            }
        }
        match &cfg.content {
            // A signed message is in memory already (and must not be signed again).
            _ if cfg.session.dkim.is_some() => {
                let mut bytes = Vec::new();
                message
                    .write_to(&mut bytes)
                    .map_err(|e| Error::Io(format!("copying the message: {e}")))?;
                Ok((Copies::Memory(bytes), None))
            }
            Content::Compose(_) => {
                let mut bytes = Vec::new();
                message
                    .write_to(&mut bytes)
                    .map_err(|e| Error::Io(format!("copying the message: {e}")))?;
                Ok((Copies::Memory(bytes), None))
            }
            Content::Ready(Source::File(_)) => Ok((Copies::Reopen(Box::new(cfg.clone())), None)),
            Content::Ready(Source::Stdin) => {
                let (spool, mut file) = spool_file()?;
                message
                    .write_to(&mut file)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| {
                        Error::Io(format!(
                            "copying the message to {}: {e}",
                            spool.path.display()
                        ))
                    })?;
                // The copy already has the sendmail fix-ups: open it as it is.
                let mut again = cfg.clone();
                again.content = Content::Ready(Source::File(spool.path.clone()));
                again.sendmail = SendmailOptions::default();
                Ok((Copies::Reopen(Box::new(again)), Some(spool)))
            }
        }
    }

    fn next(&mut self) -> Result<Option<Message>> {
        match self {
            Copies::Nothing => Ok(None),
            Copies::One(m) => Ok(m.take()),
            Copies::Memory(bytes) => Ok(Some(Message::in_memory(bytes.clone()))),
            Copies::Again(m) => Ok(m.again()),
            Copies::Reopen(cfg) => message::prepare(cfg, Box::new(io::empty())).map(Some),
        }
    }
}

/// A new private file in the temporary directory (mode 0600, never an existing file).
fn spool_file() -> Result<(Spool, File)> {
    let dir = std::env::temp_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for n in 0..16u32 {
        let path = dir.join(format!("postie-{}-{stamp:x}-{n}.eml", std::process::id()));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&path) {
            Ok(file) => return Ok((Spool { path }, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(Error::Io(format!(
                    "cannot create a temporary copy of the message in {}: {e}",
                    dir.display()
                ))
                .into())
            }
        }
    }
    Err(Error::Io(format!(
        "cannot create a temporary copy of the message in {}: {}",
        dir.display(),
        last.map_or_else(String::new, |e| e.to_string())
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code;
    use crate::report::Recipient;
    use crate::smtp::reply::parse;

    fn reply(text: &str) -> crate::smtp::reply::Reply {
        parse(format!("{text}\r\n").as_bytes()).unwrap().unwrap().0
    }

    fn outcome(
        domain: &str,
        report: Option<Report>,
        error: Option<anyhow::Error>,
    ) -> DomainOutcome {
        let mut d = DomainOutcome::new(
            &Domain {
                name: domain.into(),
                recipients: vec![format!("u@{domain}")],
            },
            "opportunistic",
        );
        d.report = report;
        d.error = error.map(Arc::new);
        d
    }

    fn report(rcpt: &str, text: &str) -> Report {
        let r = Recipient {
            address: rcpt.into(),
            reply: reply(text),
            data_reply: None,
            withheld: false,
        };
        let accepted = r.accepted();
        Report {
            recipients: vec![r],
            final_reply: accepted.then(|| reply("250 2.0.0 queued as Q1")),
        }
    }

    #[test]
    fn exit_is_the_most_urgent_over_domains() {
        let ok = || outcome("a.test", Some(report("u@a.test", "250 ok")), None);
        let temp = || outcome("b.test", Some(report("u@b.test", "451 later")), None);
        let perm = || outcome("c.test", Some(report("u@c.test", "550 no")), None);
        let nohost = || {
            outcome(
                "d.test",
                None,
                Some(Error::NoHost("d.test accepts no mail (null MX, RFC 7505)".into()).into()),
            )
        };
        let cases: Vec<(Vec<DomainOutcome>, Exit)> = vec![
            (vec![ok()], Exit::Ok),
            (vec![ok(), temp()], Exit::TempFail),
            (vec![ok(), perm()], Exit::NoUser),
            (vec![nohost(), ok()], Exit::NoHost),
            (vec![nohost(), temp(), perm()], Exit::TempFail),
            (vec![], Exit::Ok),
        ];
        for (domains, want) in cases {
            let d = Delivery { domains };
            assert_eq!(d.exit(), want);
            let logged = d.as_result().map_or_else(|e| exit_code(&e), |r| r.exit());
            // The log's view agrees, except that a failed domain outranks refused
            // recipients only when it is at least as urgent.
            if want == Exit::NoHost {
                assert_eq!(logged, Exit::NoHost);
            }
        }
    }

    #[test]
    fn failure_lines_name_the_domain_once() {
        let d = Delivery {
            domains: vec![
                outcome("a.test", Some(report("u@a.test", "250 ok")), None),
                outcome(
                    "d.test",
                    None,
                    Some(Error::NoHost("d.test: no such domain (NXDOMAIN)".into()).into()),
                ),
                outcome(
                    "e.test",
                    None,
                    Some(Error::Connect("cannot connect to mx.e.test: refused".into()).into()),
                ),
                outcome("b.test", Some(report("u@b.test", "451 4.3.0 later")), None),
            ],
        };
        assert_eq!(
            d.failure_lines(),
            [
                "d.test: no such domain (NXDOMAIN)",
                "e.test: cannot connect to mx.e.test: refused",
                "RCPT TO <u@b.test> refused: 451 4.3.0 later (transient negative completion)",
            ]
        );
        let combined = d.report();
        assert_eq!(combined.recipients.len(), 2);
        assert!(combined.final_reply.is_some());
        let err = d.as_result().unwrap_err();
        assert_eq!(exit_code(&err), Exit::TempFail);
        assert!(
            format!("{err:#}").starts_with("e.test: cannot connect"),
            "{err:#}"
        );
    }

    #[test]
    fn copies_give_the_same_bytes_each_time() {
        let bytes = b"Subject: hi\r\n\r\nbody\r\n".to_vec();
        let read = |m: Option<Message>| {
            let mut out = Vec::new();
            m.unwrap().write_to(&mut out).unwrap();
            out
        };
        let mut memory = Copies::Memory(bytes.clone());
        assert_eq!(read(memory.next().unwrap()), bytes);
        assert_eq!(read(memory.next().unwrap()), bytes);
        let mut one = Copies::One(Some(Message::in_memory(bytes.clone())));
        assert_eq!(read(one.next().unwrap()), bytes);
        assert!(one.next().unwrap().is_none());
        assert!(Copies::Nothing.next().unwrap().is_none());
    }

    #[test]
    fn spool_files_are_private_and_removed() {
        let (spool, file) = spool_file().unwrap();
        let path = spool.path.clone();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(file);
        assert!(path.exists());
        drop(spool);
        assert!(!path.exists());
    }
}
