//! `--probe`: what a mail server offers, told to the person who runs it (msmtp's
//! `--serverinfo`, plus the warnings a mail admin wants).
//!
//! Owns: choosing the hosts to probe (the `--server`, or every MX host of `--mx DOMAIN` in
//! preference order, names resolved through `--resolver` when given), running [`session::explore`] against each (greeting, EHLO, STARTTLS
//! where offered unless `--tls none`, EHLO again inside TLS, QUIT: RFC 5321 §4.1.1.1,
//! RFC 3207 §4), turning what the connection's trace recorded into [`Findings`], and
//! printing them on stdout: the greeting, every extension before and after TLS (RFC 1870
//! SIZE in human units, RFC 4954 AUTH, RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 6152
//! 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN, RFC 2034 ENHANCEDSTATUSCODES, RFC 8689
//! REQUIRETLS, and any other keyword as sent), the TLS session and the server certificate,
//! and warnings ([`warnings`]).
//!
//! When the certificate fails verification, the reason is a warning and the probe connects
//! a second time without verification (it sends nothing but EHLO and QUIT, so nothing can
//! leak) to show the certificate and the extensions inside TLS. rustls speaks only TLS 1.2
//! and 1.3, so a server that offers only TLS 1.0/1.1 shows up as a failed handshake.
//!
//! Must not: authenticate, send mail, or write anything but the report to stdout. Server
//! text is untrusted: every string that came from the server or its certificate is printed
//! through [`printable`]. The exit code is 0 when the probe completed, whatever the
//! warnings; the failure's own code when a host could not be reached, did not greet, or
//! broke the connection (the part of the report learned until then is still printed).

pub mod json;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use anyhow::Result;

use crate::config::{Config, Probe, Security, Server};
use crate::error::{exit_code, Error, Exit};
use crate::net::certinfo::CertInfo;
use crate::net::timeout::Phase;
use crate::net::tls::Tls;
use crate::net::Connection;
use crate::route;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::Reply;
use crate::smtp::session::{self, Explored};
use crate::trace::{Attempt, TlsInfo, Trace};
use crate::transcript::{printable, Transcript};

/// A certificate this close to its end is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// One host to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Its MX preference, when probing a domain's MX hosts.
    pub preference: Option<u16>,
}

/// How TLS is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS when the server offers it.
    StartTls,
    /// TLS from the first byte.
    Implicit,
    /// `--tls none`: never.
    Off,
}

/// What became of certificate verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Chain and name verified.
    Verified,
    /// `--tls-no-verify`.
    Disabled,
    /// Verification failed for this reason; the TLS facts shown come from a second,
    /// unverified connection.
    Failed(String),
}

/// Why no TLS session came up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server answered STARTTLS negatively (its reply, in one line).
    Refused(String),
    /// The handshake failed, also without verification.
    Handshake(String),
}

/// Everything one probe learned.
#[derive(Debug, Clone)]
pub struct Findings {
    pub target: Target,
    pub mode: TlsMode,
    /// The address that answered.
    pub peer: Option<SocketAddr>,
    /// Addresses that did not answer before it, with the reason.
    pub failed_attempts: Vec<Attempt>,
    pub greeting: Option<Reply>,
    /// EHLO in plain text (none with implicit TLS).
    pub plain: Option<Capabilities>,
    /// EHLO inside TLS.
    pub secured: Option<Capabilities>,
    pub tls: Option<TlsInfo>,
    pub cert: Option<CertInfo>,
    /// Set when a TLS session came up.
    pub verification: Option<Verification>,
    /// STARTTLS refused, or no TLS session possible even without verification.
    pub tls_error: Option<TlsFailure>,
    /// Why the probe stopped early, when it did.
    pub error: Option<String>,
}

impl Findings {
    pub fn new(target: Target, mode: TlsMode) -> Findings {
        Findings {
            target,
            mode,
            peer: None,
            failed_attempts: Vec::new(),
            greeting: None,
            plain: None,
            secured: None,
            tls: None,
            cert: None,
            verification: None,
            tls_error: None,
            error: None,
        }
    }

    /// Take what one connection's trace recorded; later connections fill in what earlier
    /// ones could not learn (after a failed verification: TLS, certificate, EHLO in TLS).
    fn absorb(&mut self, t: &Trace) {
        if self.peer.is_none() {
            self.peer = t.peer;
            self.failed_attempts = t
                .attempts
                .iter()
                .filter(|a| a.error.is_some())
                .cloned()
                .collect();
        }
        if self.greeting.is_none() {
            self.greeting.clone_from(&t.greeting);
        }
        for (in_tls, caps) in &t.ehlo {
            match (in_tls, &self.plain) {
                (true, _) => self.secured = Some(caps.clone()),
                (false, None) => self.plain = Some(caps.clone()),
                (false, Some(_)) => {}
            }
        }
        if let Some(info) = &t.tls {
            self.cert = info
                .peer_certificate
                .as_deref()
                .and_then(CertInfo::from_der);
            self.tls = Some(info.clone());
        }
    }

    /// Whether there is anything to report beyond a failed connection.
    fn learned_anything(&self) -> bool {
        self.greeting.is_some() || self.tls.is_some() || self.tls_error.is_some()
    }
}

/// Where the findings go: the text report on stdout, host by host as each probe ends, or
/// (`--json`) into the one document printed when the run is over.
enum Out<'a> {
    Text,
    Json(&'a mut json::ProbeJson),
}

impl Out<'_> {
    /// The text report's line naming a domain's MX hosts, or the document's domain entry.
    fn mx_hosts(&mut self, domain: &str, hosts: &Result<Vec<(u16, String)>>) -> Result<()> {
        match (self, hosts) {
            (Out::Json(doc), Ok(hosts)) => doc.domain(domain, Ok(hosts.as_slice())),
            (Out::Json(doc), Err(e)) => doc.domain(domain, Err(format!("{e:#}"))),
            (Out::Text, Ok(hosts)) => {
                let listed: Vec<String> = hosts.iter().map(|(p, h)| format!("{p} {h}")).collect();
                print(&format!(
                    "MX hosts of {}: {}\n",
                    printable(domain),
                    printable(&listed.join(", "))
                ))?;
            }
            (Out::Text, Err(_)) => {}
        }
        Ok(())
    }

    /// One host's report. `before` goes ahead of a text report (a blank line between two).
    fn host(
        &mut self,
        f: &Findings,
        result: &Result<()>,
        domain: Option<&str>,
        before: &str,
    ) -> Result<()> {
        match self {
            Out::Json(doc) => {
                doc.host(f, result, domain);
                Ok(())
            }
            Out::Text => print(&format!("{before}{}", render(f))),
        }
    }
}

/// `--probe`: probe the server, or every MX host of the domain, and print the reports;
/// with `doc` (`--probe --json`), collect them there instead and print nothing on stdout
/// (the caller finishes and prints the document, whatever the outcome).
pub fn run(cfg: &Config, probe: &Probe, doc: Option<&mut json::ProbeJson>) -> Result<Exit> {
    let mut out = match doc {
        Some(doc) => Out::Json(doc),
        None => Out::Text,
    };
    let tls = Tls::new(cfg.tls_ca.as_deref(), cfg.tls_verify)?;
    // For the second look after a failed verification.
    let unverified = Tls::new(cfg.tls_ca.as_deref(), false)?;
    let tls = Looks {
        first: &tls,
        retry: cfg.tls_verify.then_some(&unverified),
    };
    match probe {
        Probe::Mx { domains, port } => {
            let mut exit = Exit::Ok;
            for (i, domain) in domains.iter().enumerate() {
                if i > 0 && matches!(out, Out::Text) {
                    print("\n")?;
                }
                let outcome = match probe_mx(cfg, &tls, domain, *port, &mut out) {
                    Ok(e) => e,
                    // One domain's DNS failure does not hide the others' reports.
                    Err(e) if domains.len() > 1 => {
                        eprintln!("postie: {}", printable(&format!("{e:#}")));
                        exit_code(&e)
                    }
                    Err(e) => return Err(e),
                };
                exit = exit.most_urgent(outcome);
            }
            Ok(exit)
        }
        Probe::Server => {
            let Some(server) = cfg.route.server() else {
                return Err(Error::Config(
                    "no mail server to probe: use --server HOST[:PORT]".into(),
                )
                .into());
            };
            let target = Target {
                host: server.host.clone(),
                port: server.port,
                preference: None,
            };
            let (findings, result) = probe_one(cfg, &tls, target);
            // A text report only when there is something to tell beyond the error line;
            // the document always has the host, with what it learned and why it stopped.
            if findings.learned_anything() || matches!(out, Out::Json(_)) {
                out.host(&findings, &result, None, "")?;
            }
            result.map(|()| Exit::Ok)
        }
    }
}

/// Every MX host of `domain`, one report each; the exit code is the most urgent one.
fn probe_mx(
    cfg: &Config,
    tls: &Looks<'_>,
    domain: &str,
    port: u16,
    out: &mut Out<'_>,
) -> Result<Exit> {
    let hosts = crate::dns::mx_hosts(domain, cfg.resolver);
    out.mx_hosts(domain, &hosts)?;
    let hosts = hosts?;
    let mut exit = Exit::Ok;
    for (preference, host) in hosts {
        let target = Target {
            host,
            port,
            preference: Some(preference),
        };
        let (findings, result) = probe_one(cfg, tls, target);
        out.host(&findings, &result, Some(domain), "\n")?;
        if let Err(e) = result {
            let host = &findings.target.host;
            let msg = format!("{e:#}");
            if msg.contains(host.as_str()) {
                eprintln!("postie: {}", printable(&msg));
            } else {
                eprintln!("postie: {}: {}", printable(host), printable(&msg));
            }
            exit = exit.most_urgent(exit_code(&e));
        }
    }
    Ok(exit)
}

/// The TLS set-ups of a probe: as configured, and (when that verifies) one without
/// verification for a second look.
struct Looks<'a> {
    first: &'a Tls,
    retry: Option<&'a Tls>,
}

/// Probe one host. The findings are whatever was learned, also when it failed.
fn probe_one(cfg: &Config, tls: &Looks<'_>, target: Target) -> (Findings, Result<()>) {
    let mode = match cfg.session.security {
        Security::StartTlsRequired => TlsMode::StartTls,
        Security::Implicit => TlsMode::Implicit,
        Security::Plain => TlsMode::Off,
        Security::Opportunistic => TlsMode::StartTls,
    };
    let mut f = Findings::new(target, mode);
    let result = probe_into(cfg, tls, &mut f);
    if let Err(e) = &result {
        f.error = Some(format!("{e:#}"));
    }
    (f, result)
}

fn probe_into(cfg: &Config, tls: &Looks<'_>, f: &mut Findings) -> Result<()> {
    let server = Server {
        host: f.target.host.clone(),
        port: f.target.port,
    };
    let dns_timeout = cfg.timeouts.for_phase(Phase::Connect);
    let route = route::submission(&server, cfg.session.security, cfg.resolver, dns_timeout)?;
    let (trace, outcome) = look(cfg, &route, tls.first, None);
    f.absorb(&trace);
    let failure = match outcome {
        Ok(Explored::Done) => {
            if f.tls.is_some() {
                f.verification = Some(if tls.first.verify {
                    Verification::Verified
                } else {
                    Verification::Disabled
                });
            }
            return Ok(());
        }
        Ok(Explored::TlsFailed(e)) => e,
        // With implicit TLS the handshake is part of connecting.
        Err(e) if f.mode == TlsMode::Implicit && f.peer.is_some() && f.greeting.is_none() => e,
        Err(e) => return Err(e),
    };
    if let Some(Error::Reply { reply, .. }) = failure.downcast_ref::<Error>() {
        // STARTTLS answered 4xx/5xx: the server still talked, and the probe ended with QUIT.
        f.tls_error = Some(TlsFailure::Refused(reply.summary()));
        return Ok(());
    }
    // Only a handshake that rustls refused (certificate, protocol) is worth a second look;
    // a timeout or a lost connection would just repeat.
    let rejected = matches!(failure.downcast_ref::<Error>(), Some(Error::Unavailable(_)));
    let Some(retry) = tls.retry.filter(|_| rejected) else {
        f.tls_error = Some(TlsFailure::Handshake(format!("{failure:#}")));
        return Err(failure);
    };
    let why = format!("{failure:#}");
    let note = "certificate verification failed: connecting again without verification, \
                to show the certificate";
    let (trace, outcome) = look(cfg, &route, retry, Some(note));
    let secured = trace.tls.is_some();
    f.absorb(&trace);
    match outcome {
        Ok(Explored::Done) if secured => {
            f.verification = Some(Verification::Failed(why));
            Ok(())
        }
        // Not the certificate, then: TLS does not work with this server at all.
        Ok(Explored::Done | Explored::TlsFailed(_)) => {
            f.tls_error = Some(TlsFailure::Handshake(why));
            Err(failure)
        }
        Err(e) => Err(e),
    }
}

/// One connection: connect (with implicit TLS, the handshake too) and explore. Returns
/// what the trace recorded, whatever happened.
fn look(
    cfg: &Config,
    route: &route::Route,
    tls: &Tls,
    note: Option<&str>,
) -> (Trace, Result<Explored>) {
    let (back, trace) = std::sync::mpsc::channel();
    let mut transcript = Transcript::stderr(cfg.verbosity)
        .with_times(cfg.show_time)
        .handing_back(back);
    if let Some(note) = note {
        transcript.info(note);
    }
    let implicit = (route.security == Security::Implicit).then_some(tls);
    let starttls = matches!(
        route.security,
        Security::StartTlsRequired | Security::Opportunistic
    );
    let outcome = Connection::open(
        &route.host,
        &route.addrs,
        implicit,
        cfg.timeouts,
        transcript,
    )
    .and_then(|conn| session::explore(conn, &cfg.session, tls, starttls));
    (crate::trace::handed_back(&trace), outcome)
}

/// Write to stdout; a closed stdout (`| head`) is not an error.
fn print(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Io(format!("writing to stdout: {e}")).into()),
    }
}

/// The warnings a mail admin wants, most important first.
pub fn warnings(f: &Findings) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(plain) = &f.plain {
        if !plain.auth.is_empty() {
            out.push(format!(
                "AUTH ({}) is offered before TLS: clients can send passwords in clear text",
                plain.auth.join(" ")
            ));
        }
        // Wanted wherever postie would have used it; on 25 and 587 even with --tls none.
        let expected = match f.mode {
            TlsMode::StartTls => true,
            TlsMode::Off => matches!(f.target.port, 25 | 587),
            TlsMode::Implicit => false,
        };
        if !plain.starttls && expected {
            out.push(format!(
                "no STARTTLS on port {}: mail{} crosses the network in clear text",
                f.target.port,
                if f.target.port == 587 {
                    " and passwords"
                } else {
                    ""
                }
            ));
        }
    }
    match &f.tls_error {
        Some(TlsFailure::Refused(reply)) => {
            out.push(format!("STARTTLS is offered but refused: {reply}"));
        }
        Some(TlsFailure::Handshake(why)) => out.push(format!("TLS does not work: {why}")),
        None => {}
    }
    match &f.verification {
        Some(Verification::Failed(why)) => out.push(format!(
            "certificate not trusted: {why} (what is shown was learned without verification)"
        )),
        Some(Verification::Disabled) => {
            if let Some(cert) = &f.cert {
                if !name_matches(&f.target.host, &cert.sans) {
                    out.push(format!(
                        "certificate is not valid for {} (it names {})",
                        f.target.host,
                        names(cert)
                    ));
                }
            }
        }
        Some(Verification::Verified) | None => {}
    }
    if let Some(cert) = &f.cert {
        if cert.days_left < 0 {
            out.push(format!("certificate expired on {}", cert.not_after));
        } else if cert.days_left < EXPIRY_WARNING_DAYS {
            out.push(format!(
                "certificate expires in {} day{} ({})",
                cert.days_left,
                if cert.days_left == 1 { "" } else { "s" },
                cert.not_after
            ));
        }
    }
    if let Some(tls) = &f.tls {
        if matches!(tls.version.as_str(), "TLSv1.0" | "TLSv1.1" | "TLSv1") {
            out.push(format!(
                "{} negotiated: TLS 1.0 and 1.1 are obsolete (RFC 8996)",
                tls.version
            ));
        }
    }
    out
}

fn names(cert: &CertInfo) -> String {
    if cert.sans.is_empty() {
        "no names".into()
    } else {
        cert.sans.join(", ")
    }
}

/// Whether `host` is one of the certificate's names (RFC 6125 §6.4: DNS names compared
/// case-insensitively, a wildcard only as the whole left-most label; IP addresses only
/// against IP entries). SANs come as "DNS:name" or "IP:address" ([`CertInfo::sans`]).
pub fn name_matches(host: &str, sans: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    sans.iter().any(|san| {
        if let Some(addr) = san.strip_prefix("IP:") {
            ip.is_some_and(|ip| addr.parse::<IpAddr>().is_ok_and(|a| a == ip))
        } else if let Some(name) = san.strip_prefix("DNS:") {
            ip.is_none() && dns_name_matches(&host, name)
        } else {
            // A bare name; other kinds ("email:", "URI:") never name a host.
            ip.is_none() && !san.contains(':') && dns_name_matches(&host, san)
        }
    })
}

fn dns_name_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => host == pattern,
    }
}

/// "10 MiB (10485760 bytes)", "9.8 MiB (10240000 bytes)", "512 bytes" (RFC 1870 SIZE).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n == 1 {
        return "1 byte".into();
    }
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    let shown = if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    };
    format!("{shown} {unit} ({n} bytes)")
}

/// The extensions a report always shows, in this order; others follow as the server sent
/// them.
const KNOWN: [&str; 10] = [
    "STARTTLS",
    "AUTH",
    "SIZE",
    "PIPELINING",
    "CHUNKING",
    "8BITMIME",
    "SMTPUTF8",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "REQUIRETLS",
];

/// One cell of the extensions table: what `caps` says about `keyword`.
fn cell(caps: &Capabilities, keyword: &str) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    match keyword {
        "STARTTLS" => yes_no(caps.starttls),
        "AUTH" if caps.auth.is_empty() => "no".into(),
        "AUTH" => caps.auth.join(" "),
        "SIZE" => match caps.size {
            None => "no".into(),
            Some(0) => "yes, no limit given".into(),
            Some(n) => human_size(n),
        },
        "PIPELINING" => yes_no(caps.pipelining),
        "CHUNKING" => yes_no(caps.chunking),
        "8BITMIME" => yes_no(caps.eightbitmime),
        "SMTPUTF8" => yes_no(caps.smtputf8),
        "DSN" => yes_no(caps.dsn),
        "ENHANCEDSTATUSCODES" => yes_no(caps.enhanced_status_codes),
        "REQUIRETLS" => yes_no(caps.requiretls),
        other => match caps.extensions.iter().find(|(k, _)| k == other) {
            None => "no".into(),
            Some((_, params)) if params.is_empty() => "yes".into(),
            Some((_, params)) => params.clone(),
        },
    }
}

/// The extensions as a table: one row per keyword, one column per EHLO.
fn extensions_table(out: &mut String, columns: &[(&str, &Capabilities)]) {
    let mut rows: Vec<String> = KNOWN.iter().map(|k| k.to_string()).collect();
    for (_, caps) in columns {
        for (keyword, _) in &caps.extensions {
            let listed = rows.iter().any(|r| r == keyword);
            // "AUTH=PLAIN LOGIN" is the old spelling of AUTH, already in its row.
            if !listed && !keyword.starts_with("AUTH=") {
                rows.push(keyword.clone());
            }
        }
    }
    let table: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|k| {
            let cells = columns
                .iter()
                .map(|(_, caps)| printable(&cell(caps, k)).into_owned())
                .collect();
            (printable(k).into_owned(), cells)
        })
        .collect();
    let width = |i: Option<usize>, title: &str| {
        table
            .iter()
            .map(|(k, cells)| match i {
                None => k.chars().count(),
                Some(i) => cells.get(i).map_or(0, |c| c.chars().count()),
            })
            .chain(std::iter::once(title.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let first = width(None, "extension");
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (title, _))| width(Some(i), title))
        .collect();
    let line = |out: &mut String, first_cell: &str, cells: &[&str]| {
        let mut text = format!("  {first_cell:<first$}");
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let _ = write!(text, "  {c:<w$}");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    let titles: Vec<&str> = columns.iter().map(|(t, _)| *t).collect();
    line(out, "extension", &titles);
    for (k, cells) in &table {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        line(out, k, &cells);
    }
}

/// The readable report of one probe.
pub fn render(f: &Findings) -> String {
    let mut out = String::new();
    let host = printable(&f.target.host);
    match f.target.preference {
        Some(p) => {
            let _ = writeln!(out, "{host} port {} (MX preference {p})", f.target.port);
        }
        None => {
            let _ = writeln!(out, "{host} port {}", f.target.port);
        }
    }
    let field = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(out, "  {name:<13} {}", printable(value));
    };
    if !f.learned_anything() {
        for a in &f.failed_attempts {
            let why = a.error.as_deref().unwrap_or("failed");
            field(&mut out, "unreachable", &format!("{}: {why}", a.addr));
        }
        let why = f.error.as_deref().unwrap_or("nothing learned");
        field(&mut out, "probe failed", why);
        return out;
    }
    for a in &f.failed_attempts {
        let why = a.error.as_deref().unwrap_or("failed");
        field(&mut out, "unreachable", &format!("{}: {why}", a.addr));
    }
    if let Some(peer) = f.peer {
        field(&mut out, "address", &peer.to_string());
    }
    if let Some(g) = &f.greeting {
        for (i, line) in g.wire_lines().iter().enumerate() {
            field(&mut out, if i == 0 { "greeting" } else { "" }, line);
        }
    }
    let first_ehlo = f.plain.as_ref().or(f.secured.as_ref());
    if let Some(caps) = first_ehlo.filter(|c| !c.domain.is_empty()) {
        field(&mut out, "EHLO name", &caps.domain);
    }
    field(&mut out, "TLS", &tls_summary(f));

    let mut columns: Vec<(&str, &Capabilities)> = Vec::new();
    if let Some(c) = &f.plain {
        columns.push(("before TLS", c));
    }
    if let Some(c) = &f.secured {
        columns.push(("inside TLS", c));
    }
    if !columns.is_empty() {
        out.push('\n');
        extensions_table(&mut out, &columns);
    }

    if let Some(tls) = &f.tls {
        out.push('\n');
        let _ = writeln!(out, "  TLS session");
        field(&mut out, "protocol", &tls.version);
        field(&mut out, "cipher", &tls.cipher);
        if let Some(g) = &tls.group {
            field(&mut out, "key exchange", g);
        }
        let verified = match &f.verification {
            Some(Verification::Verified) => format!("verified for {}", f.target.host),
            Some(Verification::Disabled) => "NOT verified (--tls-no-verify)".into(),
            Some(Verification::Failed(_)) => "NOT trusted (see the warnings)".into(),
            None if f.tls_error.is_some() => "handshake failed (see the warnings)".into(),
            None => "unknown".into(),
        };
        field(&mut out, "certificate", &verified);
        match &f.cert {
            Some(c) => {
                field(&mut out, "subject", &c.subject);
                field(&mut out, "issuer", &c.issuer);
                field(&mut out, "names", &names(c));
                field(&mut out, "valid from", &c.not_before);
                field(
                    &mut out,
                    "valid until",
                    &format!("{} ({} days left)", c.not_after, c.days_left),
                );
                field(&mut out, "SHA-256", &c.sha256);
            }
            None if tls.peer_certificate.is_some() => {
                field(&mut out, "", "(the certificate could not be read)");
            }
            None => field(&mut out, "", "(the server sent no certificate)"),
        }
    }

    out.push('\n');
    let warnings = warnings(f);
    if warnings.is_empty() {
        let _ = writeln!(out, "  warnings: none");
    } else {
        let _ = writeln!(out, "  warnings:");
        for w in &warnings {
            let _ = writeln!(out, "  ! {}", printable(w));
        }
    }
    if let Some(e) = &f.error {
        let _ = writeln!(out, "  probe stopped: {}", printable(e));
    }
    out
}

/// The TLS line of the report's head.
fn tls_summary(f: &Findings) -> String {
    // A failed handshake may have left its partial session (and certificate) in the trace.
    let session = f
        .tls
        .as_ref()
        .filter(|_| f.tls_error.is_none())
        .map(|t| format!("{}, {}", t.version, t.cipher));
    let offered = f.plain.as_ref().is_some_and(|c| c.starttls);
    match (f.mode, session) {
        (TlsMode::Implicit, Some(s)) => format!("implicit ({s})"),
        (TlsMode::Implicit, None) => "implicit, failed".into(),
        (TlsMode::StartTls, Some(s)) => format!("STARTTLS ({s})"),
        (TlsMode::StartTls, None) if offered => "STARTTLS offered, failed".into(),
        (TlsMode::StartTls, None) if f.plain.is_some() => "none: STARTTLS not offered".into(),
        (TlsMode::Off, _) if offered => "not tried (--tls none); STARTTLS offered".into(),
        (TlsMode::Off, _) => "not tried (--tls none)".into(),
        (TlsMode::StartTls, None) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::parse;

    fn reply(wire: &str) -> Reply {
        parse(wire.as_bytes()).unwrap().unwrap().0
    }

    fn caps(wire: &str) -> Capabilities {
        Capabilities::from_ehlo(&reply(wire))
    }

    fn cert(days_left: i64, sans: &[&str]) -> CertInfo {
        CertInfo {
            subject: "CN=mx.example.test".into(),
            issuer: "CN=Test CA, O=Example".into(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2026-12-31T00:00:00Z".into(),
            days_left,
            sha256: "AB:CD".into(),
        }
    }

    fn tls_info(version: &str) -> TlsInfo {
        TlsInfo {
            version: version.into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            group: Some("X25519".into()),
            verified: true,
            peer_certificate: Some(vec![1, 2, 3]),
        }
    }

    const PLAIN_EHLO: &str = "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
                              250-VRFY\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n\
                              250-8BITMIME\r\n250-DSN\r\n250 CHUNKING\r\n";
    const TLS_EHLO: &str = "250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
                            250-VRFY\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n\
                            250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n\
                            250-SMTPUTF8\r\n250 CHUNKING\r\n";

    /// A STARTTLS probe of a well-configured submission server.
    fn submission() -> Findings {
        let mut f = Findings::new(
            Target {
                host: "mx.example.test".into(),
                port: 587,
                preference: None,
            },
            TlsMode::StartTls,
        );
        f.peer = Some("192.0.2.25:587".parse().unwrap());
        f.greeting = Some(reply("220 mx.example.test ESMTP Postfix\r\n"));
        f.plain = Some(caps(PLAIN_EHLO));
        f.secured = Some(caps(TLS_EHLO));
        f.tls = Some(tls_info("TLSv1.3"));
        f.cert = Some(cert(200, &["DNS:mx.example.test", "IP:192.0.2.25"]));
        f.verification = Some(Verification::Verified);
        f
    }

    #[test]
    fn full_report_of_a_good_server() {
        let want = "\
mx.example.test port 587
  address       192.0.2.25:587
  greeting      220 mx.example.test ESMTP Postfix
  EHLO name     mx.example.test
  TLS           STARTTLS (TLSv1.3, TLS13_AES_256_GCM_SHA384)

  extension            before TLS                inside TLS
  STARTTLS             yes                       no
  AUTH                 no                        PLAIN LOGIN
  SIZE                 9.8 MiB (10240000 bytes)  9.8 MiB (10240000 bytes)
  PIPELINING           yes                       yes
  CHUNKING             yes                       yes
  8BITMIME             yes                       yes
  SMTPUTF8             no                        yes
  DSN                  yes                       yes
  ENHANCEDSTATUSCODES  yes                       yes
  REQUIRETLS           no                        no
  VRFY                 yes                       yes

  TLS session
  protocol      TLSv1.3
  cipher        TLS13_AES_256_GCM_SHA384
  key exchange  X25519
  certificate   verified for mx.example.test
  subject       CN=mx.example.test
  issuer        CN=Test CA, O=Example
  names         DNS:mx.example.test, IP:192.0.2.25
  valid from    2026-01-01T00:00:00Z
  valid until   2026-12-31T00:00:00Z (200 days left)
  SHA-256       AB:CD

  warnings: none
";
        let got = render(&submission());
        assert_eq!(got, want, "\n--- got ---\n{got}");
    }

    #[test]
    fn mx_report_with_implicit_tls_and_odd_extensions() {
        let mut f = Findings::new(
            Target {
                host: "mx2.example.test".into(),
                port: 465,
                preference: Some(20),
            },
            TlsMode::Implicit,
        );
        f.failed_attempts = vec![Attempt {
            addr: "[2001:db8::25]:465".parse().unwrap(),
            error: Some("Connection refused (os error 111)".into()),
        }];
        f.peer = Some("192.0.2.26:465".parse().unwrap());
        f.greeting = Some(reply("220-mx2.example.test ESMTP\r\n220 no UCE\r\n"));
        f.secured = Some(caps(
            "250-mx2.example.test\r\n250-SIZE\r\n250-X-\u{1b}[31mEVIL\r\n250 XCLIENT NAME ADDR\r\n",
        ));
        f.tls = Some(tls_info("TLSv1.2"));
        f.cert = None;
        f.verification = Some(Verification::Verified);
        let got = render(&f);
        for want in [
            "mx2.example.test port 465 (MX preference 20)\n",
            "  unreachable   [2001:db8::25]:465: Connection refused (os error 111)\n",
            "  greeting      220-mx2.example.test ESMTP\n                220 no UCE\n",
            "  TLS           implicit (TLSv1.2, TLS13_AES_256_GCM_SHA384)\n",
            "  extension            inside TLS\n",
            "  SIZE                 yes, no limit given\n",
            "  XCLIENT              NAME ADDR\n",
            "  X-\\u{1b}[31MEVIL     yes\n",
            "  (the certificate could not be read)\n",
            "  warnings: none\n",
        ] {
            assert!(got.contains(want), "missing {want:?} in:\n{got}");
        }
        assert!(!got.contains('\u{1b}'), "control character printed:\n{got}");
        assert!(!got.contains("before TLS"));
    }

    #[test]
    fn warnings_table() {
        type Change = fn(&mut Findings);
        let cases: &[(&str, Change, &[&str])] = &[
            ("good server", |_| {}, &[]),
            (
                "AUTH before TLS",
                |f| f.plain = Some(caps("250-h\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")),
                &["AUTH (PLAIN LOGIN) is offered before TLS: clients can send passwords in clear text"],
            ),
            (
                "no STARTTLS on 587",
                |f| {
                    f.plain = Some(caps("250-h\r\n250 PIPELINING\r\n"));
                    f.secured = None;
                    f.tls = None;
                    f.cert = None;
                    f.verification = None;
                },
                &["no STARTTLS on port 587: mail and passwords crosses the network in clear text"],
            ),
            (
                "no STARTTLS on 25",
                |f| {
                    f.target.port = 25;
                    f.plain = Some(caps("250 h\r\n"));
                },
                &["no STARTTLS on port 25: mail crosses the network in clear text"],
            ),
            (
                "no STARTTLS on 2525",
                |f| {
                    f.target.port = 2525;
                    f.plain = Some(caps("250 h\r\n"));
                },
                &["no STARTTLS on port 2525: mail crosses the network in clear text"],
            ),
            (
                "no STARTTLS on 2525 with --tls none is what was asked for",
                |f| {
                    f.target.port = 2525;
                    f.mode = TlsMode::Off;
                    f.plain = Some(caps("250 h\r\n"));
                },
                &[],
            ),
            (
                "but not on 25",
                |f| {
                    f.target.port = 25;
                    f.mode = TlsMode::Off;
                    f.plain = Some(caps("250 h\r\n"));
                },
                &["no STARTTLS on port 25: mail crosses the network in clear text"],
            ),
            (
                "expires soon",
                |f| f.cert = Some(cert(29, &["DNS:mx.example.test"])),
                &["certificate expires in 29 days (2026-12-31T00:00:00Z)"],
            ),
            (
                "expires tomorrow",
                |f| f.cert = Some(cert(1, &["DNS:mx.example.test"])),
                &["certificate expires in 1 day (2026-12-31T00:00:00Z)"],
            ),
            (
                "30 days is fine",
                |f| f.cert = Some(cert(30, &["DNS:mx.example.test"])),
                &[],
            ),
            (
                "expired",
                |f| f.cert = Some(cert(-3, &["DNS:mx.example.test"])),
                &["certificate expired on 2026-12-31T00:00:00Z"],
            ),
            (
                "untrusted",
                |f| {
                    f.verification = Some(Verification::Failed(
                        "TLS certificate of mx.example.test rejected: issued by an unknown CA"
                            .into(),
                    ))
                },
                &["certificate not trusted: TLS certificate of mx.example.test rejected: \
                   issued by an unknown CA (what is shown was learned without verification)"],
            ),
            (
                "unverified and the wrong name",
                |f| {
                    f.verification = Some(Verification::Disabled);
                    f.cert = Some(cert(200, &["DNS:other.example", "IP:192.0.2.9"]));
                },
                &["certificate is not valid for mx.example.test (it names DNS:other.example, \
                   IP:192.0.2.9)"],
            ),
            (
                "unverified, the right name by wildcard",
                |f| {
                    f.verification = Some(Verification::Disabled);
                    f.cert = Some(cert(200, &["DNS:*.example.test"]));
                },
                &[],
            ),
            (
                "TLS 1.1",
                |f| f.tls = Some(tls_info("TLSv1.1")),
                &["TLSv1.1 negotiated: TLS 1.0 and 1.1 are obsolete (RFC 8996)"],
            ),
            (
                "STARTTLS refused",
                |f| {
                    f.secured = None;
                    f.tls = None;
                    f.cert = None;
                    f.verification = None;
                    f.tls_error = Some(TlsFailure::Refused("454 4.7.0 TLS not available".into()));
                },
                &["STARTTLS is offered but refused: 454 4.7.0 TLS not available"],
            ),
            (
                "handshake impossible",
                |f| {
                    f.secured = None;
                    f.tls = None;
                    f.cert = None;
                    f.verification = None;
                    f.tls_error = Some(TlsFailure::Handshake(
                        "TLS handshake with mx.example.test failed: x".into(),
                    ));
                },
                &["TLS does not work: TLS handshake with mx.example.test failed: x"],
            ),
            (
                "several at once, in order",
                |f| {
                    f.target.port = 25;
                    f.plain = Some(caps("250-h\r\n250 AUTH LOGIN\r\n"));
                    f.cert = Some(cert(-1, &["DNS:mx.example.test"]));
                },
                &[
                    "AUTH (LOGIN) is offered before TLS: clients can send passwords in clear text",
                    "no STARTTLS on port 25: mail crosses the network in clear text",
                    "certificate expired on 2026-12-31T00:00:00Z",
                ],
            ),
        ];
        for (what, change, want) in cases {
            let mut f = submission();
            change(&mut f);
            assert_eq!(warnings(&f), *want, "{what}");
        }
    }

    #[test]
    fn a_host_that_could_not_be_probed_is_one_line() {
        let mut f = Findings::new(
            Target {
                host: "mx2.example.test".into(),
                port: 25,
                preference: Some(20),
            },
            TlsMode::StartTls,
        );
        f.failed_attempts = vec![Attempt {
            addr: "192.0.2.2:25".parse().unwrap(),
            error: Some("timed out after 30000 ms".into()),
        }];
        f.error = Some("cannot connect to mx2.example.test: 192.0.2.2:25: timed out".into());
        assert_eq!(
            render(&f),
            "mx2.example.test port 25 (MX preference 20)\n\
             \x20 unreachable   192.0.2.2:25: timed out after 30000 ms\n\
             \x20 probe failed  cannot connect to mx2.example.test: 192.0.2.2:25: timed out\n"
        );
    }

    #[test]
    fn warnings_are_printed_escaped_with_the_stop_reason() {
        let mut f = submission();
        f.target.port = 25;
        f.plain = Some(caps("250-h\r\n250 AUTH PLAIN\r\n"));
        f.secured = None;
        f.tls = None;
        f.cert = None;
        f.verification = None;
        f.error = Some("connection lost waiting for reply to EHLO: reset".into());
        let got = render(&f);
        assert!(
            got.ends_with(
                "  warnings:\n  ! AUTH (PLAIN) is offered before TLS: clients can send passwords \
                 in clear text\n  ! no STARTTLS on port 25: mail crosses the network in clear \
                 text\n  probe stopped: connection lost waiting for reply to EHLO: reset\n"
            ),
            "{got}"
        );
        assert!(
            got.contains("  TLS           none: STARTTLS not offered\n"),
            "{got}"
        );
    }

    #[test]
    fn tls_summaries() {
        let cases: &[(TlsMode, Option<&str>, bool, &str)] = &[
            (
                TlsMode::StartTls,
                Some(PLAIN_EHLO),
                true,
                "STARTTLS (TLSv1.3, TLS13_AES_256_GCM_SHA384)",
            ),
            (
                TlsMode::StartTls,
                Some(PLAIN_EHLO),
                false,
                "STARTTLS offered, failed",
            ),
            (
                TlsMode::StartTls,
                Some("250 h\r\n"),
                false,
                "none: STARTTLS not offered",
            ),
            (TlsMode::StartTls, None, false, "unknown"),
            (
                TlsMode::Implicit,
                None,
                true,
                "implicit (TLSv1.3, TLS13_AES_256_GCM_SHA384)",
            ),
            (TlsMode::Implicit, None, false, "implicit, failed"),
            (
                TlsMode::Off,
                Some(PLAIN_EHLO),
                false,
                "not tried (--tls none); STARTTLS offered",
            ),
            (
                TlsMode::Off,
                Some("250 h\r\n"),
                false,
                "not tried (--tls none)",
            ),
        ];
        for (mode, plain, tls, want) in cases {
            let mut f = Findings::new(
                Target {
                    host: "h".into(),
                    port: 25,
                    preference: None,
                },
                *mode,
            );
            f.plain = plain.map(caps);
            f.tls = tls.then(|| tls_info("TLSv1.3"));
            assert_eq!(tls_summary(&f), *want, "{mode:?} {plain:?} {tls}");
        }
    }

    #[test]
    fn a_failed_handshake_is_not_shown_as_a_session() {
        // The transcript layer records the session and certificate of a failed handshake.
        let mut f = submission();
        f.secured = None;
        f.verification = None;
        f.tls_error = Some(TlsFailure::Handshake(
            "TLS handshake with mx.example.test failed: no shared cipher".into(),
        ));
        let got = render(&f);
        for want in [
            "  TLS           STARTTLS offered, failed\n",
            "  certificate   handshake failed (see the warnings)\n",
            "  subject       CN=mx.example.test\n",
            "  ! TLS does not work: TLS handshake with mx.example.test failed: no shared cipher\n",
        ] {
            assert!(got.contains(want), "missing {want:?} in:\n{got}");
        }
        f.mode = TlsMode::Implicit;
        assert_eq!(tls_summary(&f), "implicit, failed");
    }

    #[test]
    fn sizes_in_human_units() {
        let cases: &[(u64, &str)] = &[
            (0, "0 bytes"),
            (1, "1 byte"),
            (1023, "1023 bytes"),
            (1024, "1 KiB (1024 bytes)"),
            (1536, "1.5 KiB (1536 bytes)"),
            (10_485_760, "10 MiB (10485760 bytes)"),
            (10_240_000, "9.8 MiB (10240000 bytes)"),
            (20_971_520, "20 MiB (20971520 bytes)"),
            (5 * 1024 * 1024 * 1024, "5 GiB (5368709120 bytes)"),
            (u64::MAX, "16384 PiB (18446744073709551615 bytes)"),
        ];
        for (n, want) in cases {
            assert_eq!(human_size(*n), *want, "{n}");
        }
    }

    #[test]
    fn certificate_names() {
        let sans = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&str, &[&str], bool)] = &[
            ("mx.example.test", &["DNS:mx.example.test"], true),
            ("MX.Example.Test.", &["DNS:mx.example.test"], true),
            ("mx.example.test", &["DNS:*.example.test"], true),
            ("a.mx.example.test", &["DNS:*.example.test"], false),
            ("example.test", &["DNS:*.example.test"], false),
            (
                "mx.example.test",
                &["DNS:other.test", "DNS:mx.example.test"],
                true,
            ),
            ("mx.example.test", &["mx.example.test"], true),
            ("127.0.0.1", &["IP:127.0.0.1"], true),
            ("127.0.0.1", &["DNS:127.0.0.1"], false),
            ("::1", &["IP:::1"], true),
            ("[::1]", &["IP:0:0:0:0:0:0:0:1"], true),
            ("localhost", &["IP:127.0.0.1"], false),
            ("mx.example.test", &[], false),
            ("mx.example.test", &["email:mx.example.test"], false),
            ("mx.example.test", &["URI:mx.example.test"], false),
        ];
        for (host, list, want) in cases {
            assert_eq!(name_matches(host, &sans(list)), *want, "{host} {list:?}");
        }
    }

    #[test]
    fn absorbing_traces_keeps_the_first_plain_ehlo_and_the_last_tls() {
        let target = Target {
            host: "h".into(),
            port: 25,
            preference: None,
        };
        let mut f = Findings::new(target, TlsMode::StartTls);
        let first = Trace {
            attempts: vec![
                Attempt {
                    addr: "[::1]:25".parse().unwrap(),
                    error: Some("refused".into()),
                },
                Attempt {
                    addr: "127.0.0.1:25".parse().unwrap(),
                    error: None,
                },
            ],
            peer: Some("127.0.0.1:25".parse().unwrap()),
            greeting: Some(reply("220 first\r\n")),
            ehlo: vec![(false, caps("250-h\r\n250 STARTTLS\r\n"))],
            ..Trace::default()
        };
        f.absorb(&first);
        let second = Trace {
            peer: Some("127.0.0.2:25".parse().unwrap()),
            greeting: Some(reply("220 second\r\n")),
            ehlo: vec![
                (false, caps("250-h\r\n250 PIPELINING\r\n")),
                (true, caps("250-h\r\n250 AUTH PLAIN\r\n")),
            ],
            tls: Some(TlsInfo {
                peer_certificate: None,
                ..tls_info("TLSv1.3")
            }),
            ..Trace::default()
        };
        f.absorb(&second);
        assert_eq!(f.peer, Some("127.0.0.1:25".parse().unwrap()));
        assert_eq!(f.failed_attempts.len(), 1);
        assert_eq!(
            f.greeting.as_ref().map(Reply::text).as_deref(),
            Some("first")
        );
        assert!(f.plain.as_ref().is_some_and(|c| c.starttls));
        assert_eq!(
            f.secured.as_ref().map(|c| c.auth.clone()),
            Some(vec!["PLAIN".to_string()])
        );
        assert!(f.tls.is_some() && f.cert.is_none());
        assert!(f.learned_anything());
        assert!(!Findings::new(f.target.clone(), TlsMode::Off).learned_anything());
    }
}
