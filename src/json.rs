//! `--json`: one JSON object on stdout when postie ends, successful or not, so monitoring
//! scripts never have to scrape text. Its shape is documented, field by field, by the JSON
//! Schema `schema/postie-result.schema.json` (draft 2020-12), which the tests validate real
//! output against; a field added here must be added there (the schema forbids others).
//!
//! This module owns the document: [`Facts`] collects what a run learnt as it went (the
//! resolved server, the envelope, the wire [`Trace`], the per-recipient [`Report`]),
//! [`JsonResult::new`] turns the facts and the run's outcome into the document, and
//! [`print`] writes it. It also owns reading the queue id out of the final reply
//! ([`queue_id`]). It must not decide the outcome: the exit code comes from
//! [`crate::error::exit_code`] and [`Report::exit`], exactly as for the process status.
//! It never holds a secret: [`Facts`] has no field for a password or a token (only the
//! login name), and the configuration itself is not kept. Human error lines still go to
//! stderr from `app`; stdout carries nothing but this object.
//!
//! RFC anchors: reply codes and their classes per RFC 5321 §4.2.1 (2xx accepted, 4xx
//! transient, 5xx permanent); enhanced status codes per RFC 3463; the queue id is
//! free text of the 250 reply to end of data (RFC 5321 §4.1.1.4), so it is parsed from
//! common server forms and left null when none matches.

use std::io::{self, Write};
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::config::{self, Config, Security, Server};
use crate::envelope::Envelope;
use crate::error::{exit_code, Error, Exit};
use crate::net::certinfo::CertInfo;
use crate::net::timeout::Phase;
use crate::report::{Cause, Fate, Outcome, Report};
use crate::smtp::reply::Reply;
use crate::trace::Trace;

/// What a run learnt, stage by stage; whatever a failed run never reached stays `None`.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The server named by the configuration, and how it is secured. For --socket, the
    /// socket's path as the host and port 0.
    pub server: Option<(Server, Security)>,
    /// The run spoke LMTP (RFC 2033) rather than SMTP.
    pub lmtp: bool,
    /// The login name for AUTH, when credentials were configured (never the password).
    pub user: Option<String>,
    pub envelope: Option<Envelope>,
    /// What the connection and the session observed.
    pub trace: Option<Trace>,
    /// Per-recipient replies, when the transaction got that far (for direct MX delivery,
    /// every domain's in one report).
    pub report: Option<Report>,
    /// Direct MX delivery: each recipient domain's outcome.
    pub domains: Vec<crate::engine::mx::DomainOutcome>,
    /// From the first connection attempt to the end of the session.
    pub elapsed: Option<Duration>,
    /// The step the run entered last before any connection (e.g. resolving the server):
    /// where a failure is placed that neither names its phase nor happened on the wire.
    pub stage: Option<Step>,
    /// --queue: the message was kept for a later attempt.
    pub queued: Option<Queued>,
}

/// A message kept in the queue (`--queue`) after a temporary failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queued {
    /// postie's queue id (`postie queue list`, `postie queue remove ID`).
    pub id: String,
    /// Why it could not be delivered now.
    pub reason: String,
    /// The recipients still to deliver to.
    pub recipients: Vec<String>,
}

/// The engine reports what the wire showed as it goes.
impl crate::report::Observer for Facts {
    fn resolving(&mut self) {
        self.stage = Some(Step::Resolve);
    }

    fn connection(&mut self, seen: Trace, elapsed: Duration) {
        self.trace = Some(seen);
        self.elapsed = Some(elapsed);
    }
}

impl Facts {
    /// Take what the document needs from the resolved configuration, and nothing secret.
    pub fn note_config(&mut self, cfg: &Config) {
        let server = match &cfg.route {
            config::Route::Socket(path) => Some(Server {
                host: path.display().to_string(),
                port: 0,
            }),
            route => route.server().cloned(),
        };
        self.server = server.map(|s| (s, cfg.session.security));
        self.lmtp = cfg.session.protocol == config::Protocol::Lmtp;
        self.user = cfg.session.credentials.as_ref().map(|c| c.user.clone());
    }
}

/// The whole `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonResult {
    /// postie's version.
    pub version: &'static str,
    pub route: Option<RouteJson>,
    pub attempts: Vec<AttemptJson>,
    pub tls: Option<TlsJson>,
    pub auth: Option<AuthJson>,
    pub envelope: Option<EnvelopeJson>,
    pub recipients: Vec<RecipientJson>,
    /// The reply to the end of data.
    pub final_reply: Option<ReplyJson>,
    pub queue_id: Option<String>,
    pub timings: TimingsJson,
    pub exit: ExitJson,
    pub error: Option<ErrorJson>,
    /// Direct MX delivery: one entry per recipient domain; empty for submission.
    pub domains: Vec<DomainJson>,
    /// --queue: the message was kept in postie's queue for a later attempt.
    pub queued: Option<Queued>,
}

/// One recipient domain of a direct delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainJson {
    pub domain: String,
    /// Every recipient of the domain, as in the envelope.
    pub recipients: Vec<String>,
    /// The MX host that answered (or ended the transaction), its preference and the
    /// address connected to.
    pub mx: Option<String>,
    pub preference: Option<u16>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<DomainTlsJson>,
    /// "none", "opportunistic", "required" (MTA-STS and DANE add theirs).
    pub policy: String,
    /// MX hosts given up on first, each with why.
    pub tried: Vec<String>,
    /// The answer to each RCPT TO, when the transaction got that far.
    pub replies: Vec<RecipientJson>,
    pub final_reply: Option<ReplyJson>,
    pub exit: ExitJson,
    /// What stopped the domain before its recipients were answered.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainTlsJson {
    pub version: String,
    pub cipher: String,
    pub verified: bool,
}

impl From<&crate::engine::mx::DomainOutcome> for DomainJson {
    fn from(d: &crate::engine::mx::DomainOutcome) -> DomainJson {
        DomainJson {
            domain: d.domain.clone(),
            recipients: d.recipients.clone(),
            mx: d.mx.clone(),
            preference: d.preference,
            address: d.address.map(|a| a.ip().to_string()),
            port: d.address.map(|a| a.port()),
            tls: d.tls.as_ref().map(|t| DomainTlsJson {
                version: t.version.clone(),
                cipher: t.cipher.clone(),
                verified: t.verified,
            }),
            policy: d.policy.clone(),
            tried: d.tried.clone(),
            replies: d.report.as_ref().map_or_else(Vec::new, recipient_replies),
            final_reply: d
                .report
                .as_ref()
                .and_then(|r| r.final_reply.as_ref())
                .map(ReplyJson::from),
            exit: d.exit().into(),
            error: d.error.as_ref().map(|e| format!("{e:#}")),
        }
    }
}

/// Each recipient's outcome, as the document shows it (also `postie batch`'s per message).
pub fn recipient_replies(r: &Report) -> Vec<RecipientJson> {
    recipients_json(&r.outcomes())
}

/// The recipients that had an answer of their own (an attempt that failed as a whole
/// shows its error instead), each with the status its [`Outcome`] stands for.
pub fn recipients_json(outcomes: &[Outcome]) -> Vec<RecipientJson> {
    outcomes
        .iter()
        .filter_map(|o| {
            let reply = o.reply()?;
            Some(RecipientJson {
                address: o.address.clone(),
                status: Status::of(o),
                code: reply.code.as_u16(),
                enhanced_code: reply.enhanced.map(|e| e.to_string()),
                text: reply.text(),
            })
        })
        .collect()
}

impl Status {
    /// The status of a recipient's outcome: its fate, told apart from all or nothing.
    pub fn of(o: &Outcome) -> Status {
        match (o.fate, &o.cause) {
            (_, Cause::Withheld { .. }) => Status::Withheld,
            (Fate::Delivered, _) => Status::Accepted,
            (Fate::Deferred, _) => Status::Transient,
            (Fate::Refused, _) => Status::Permanent,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteJson {
    pub host: String,
    /// The IP address actually connected to.
    pub address: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Protocol {
    #[serde(rename = "smtp")]
    Smtp,
    #[serde(rename = "smtps")]
    Smtps,
    #[serde(rename = "smtp+starttls")]
    SmtpStartTls,
    /// LMTP (RFC 2033), over TCP or a unix domain socket.
    #[serde(rename = "lmtp")]
    Lmtp,
    #[serde(rename = "lmtps")]
    Lmtps,
    #[serde(rename = "lmtp+starttls")]
    LmtpStartTls,
}

impl From<Security> for Protocol {
    fn from(s: Security) -> Protocol {
        match s {
            Security::Plain => Protocol::Smtp,
            Security::Implicit => Protocol::Smtps,
            Security::StartTlsRequired | Security::Opportunistic => Protocol::SmtpStartTls,
        }
    }
}

impl Protocol {
    /// The name for `security` under SMTP (`lmtp` false) or LMTP.
    fn of(security: Security, lmtp: bool) -> Protocol {
        match (security, lmtp) {
            (s, false) => s.into(),
            (Security::Plain, true) => Protocol::Lmtp,
            (Security::Implicit, true) => Protocol::Lmtps,
            (Security::StartTlsRequired | Security::Opportunistic, true) => Protocol::LmtpStartTls,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptJson {
    pub address: String,
    pub port: u16,
    /// Why it failed; null for the attempt that connected.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsJson {
    /// False when the handshake failed (the certificate was refused): the rest is what was
    /// seen of it.
    pub established: bool,
    pub version: String,
    pub cipher: String,
    pub group: Option<String>,
    pub verified: bool,
    pub certificate: Option<CertificateJson>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateJson {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub sha256: String,
}

impl From<CertInfo> for CertificateJson {
    fn from(c: CertInfo) -> CertificateJson {
        CertificateJson {
            subject: c.subject,
            issuer: c.issuer,
            sans: c.sans,
            not_before: c.not_before,
            not_after: c.not_after,
            days_left: c.days_left,
            sha256: c.sha256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthJson {
    pub mechanism: &'static str,
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvelopeJson {
    pub from: String,
    pub recipients: Vec<String>,
}

/// How the server answered one RCPT TO (under LMTP, this recipient's end of data), and
/// whether the message went to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// 2xx.
    Accepted,
    /// 2xx at RCPT, but the message was not sent to it: all or nothing, and another
    /// recipient was refused ([`crate::report::Recipient::withheld`]).
    Withheld,
    /// 4xx: try again later.
    Transient,
    /// 5xx, or a nonsensical 3xx: will not be delivered as it is.
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientJson {
    pub address: String,
    pub status: Status,
    pub code: u16,
    pub enhanced_code: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyJson {
    pub code: u16,
    pub enhanced_code: Option<String>,
    pub text: String,
}

impl From<&Reply> for ReplyJson {
    fn from(r: &Reply) -> ReplyJson {
        ReplyJson {
            code: r.code.as_u16(),
            enhanced_code: r.enhanced.map(|e| e.to_string()),
            text: r.text(),
        }
    }
}

/// Milliseconds: the whole run, and the server's reply latency summed per phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimingsJson {
    pub total_ms: Option<f64>,
    pub phases: PhaseTimes,
}

/// Phase name → milliseconds, in the order the phases first occurred.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseTimes(pub Vec<(Step, f64)>);

impl Serialize for PhaseTimes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (step, ms) in &self.0 {
            map.serialize_entry(step, ms)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExitJson {
    pub code: u8,
    pub name: &'static str,
}

impl From<Exit> for ExitJson {
    fn from(e: Exit) -> ExitJson {
        ExitJson {
            code: e.code(),
            name: e.name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorJson {
    pub message: String,
    pub phase: Option<Step>,
    /// The server's refusal, when a reply ended the run.
    pub reply: Option<ReplyJson>,
}

/// Where a run was: the stages before the SMTP dialogue, then its phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Command line, configuration, message, envelope: before any connection.
    Setup,
    /// Looking up the server's addresses.
    Resolve,
    Connect,
    Greeting,
    Ehlo,
    Starttls,
    TlsHandshake,
    Auth,
    Mail,
    Rcpt,
    /// The DATA command.
    Data,
    /// Sending the message content.
    DataBlock,
    /// The reply to the end of data.
    DataEnd,
    Rset,
    Quit,
}

impl From<Phase> for Step {
    fn from(p: Phase) -> Step {
        match p {
            Phase::Connect => Step::Connect,
            Phase::Greeting => Step::Greeting,
            Phase::Ehlo => Step::Ehlo,
            Phase::StartTls => Step::Starttls,
            Phase::TlsHandshake => Step::TlsHandshake,
            Phase::Auth => Step::Auth,
            Phase::Mail => Step::Mail,
            Phase::Rcpt => Step::Rcpt,
            Phase::DataInit => Step::Data,
            Phase::DataBlock => Step::DataBlock,
            Phase::DataEnd => Step::DataEnd,
            Phase::Rset => Step::Rset,
            Phase::Quit => Step::Quit,
        }
    }
}

/// Milliseconds with microsecond resolution.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The step a failure happened in: the error's own phase when it has one; else the phase
/// the connection was last in; else setup for a local problem (command line, files,
/// configuration), or the stage the run had reached (resolving the server).
fn error_step(err: &anyhow::Error, facts: &Facts) -> Step {
    let typed = err.chain().find_map(|c| c.downcast_ref::<Error>());
    match typed {
        Some(Error::Reply { phase, .. } | Error::Timeout { phase, .. }) => return (*phase).into(),
        Some(Error::Lost { phase, .. }) => return (*phase).into(),
        Some(Error::Connect(_)) => return Step::Connect,
        Some(Error::NoHost(_) | Error::DnsTemporary(_)) => return Step::Resolve,
        _ => {}
    }
    if let Some(phase) = facts.trace.as_ref().and_then(|t| t.phase) {
        return phase.into();
    }
    match typed {
        Some(Error::Usage(_) | Error::NoInput { .. } | Error::Config(_)) => Step::Setup,
        _ => facts.stage.unwrap_or(Step::Setup),
    }
}

impl JsonResult {
    /// The document for a run that ended with `outcome` (its exit code, or the error that
    /// stopped it), from whatever `facts` it collected.
    pub fn new(facts: &Facts, outcome: &anyhow::Result<Exit>) -> JsonResult {
        let trace = facts.trace.as_ref();
        let exit = match outcome {
            Ok(e) => *e,
            Err(e) => exit_code(e),
        };
        let route = facts.server.as_ref().map(|(server, security)| RouteJson {
            host: server.host.clone(),
            address: trace.and_then(|t| t.peer).map(|a| a.ip().to_string()),
            port: server.port,
            protocol: Protocol::of(*security, facts.lmtp),
        });
        let attempts = trace.map_or_else(Vec::new, |t| {
            t.attempts
                .iter()
                .map(|a| AttemptJson {
                    address: a.addr.ip().to_string(),
                    port: a.addr.port(),
                    error: a.error.clone(),
                })
                .collect()
        });
        // The handshake is the only step in the tls_handshake phase: failing there means no
        // session, whatever was recorded of the attempt.
        let handshake_failed = outcome
            .as_ref()
            .err()
            .is_some_and(|e| error_step(e, facts) == Step::TlsHandshake);
        let tls = trace.and_then(|t| t.tls.as_ref()).map(|t| TlsJson {
            established: !handshake_failed,
            version: t.version.clone(),
            cipher: t.cipher.clone(),
            group: t.group.clone(),
            verified: t.verified,
            certificate: t
                .peer_certificate
                .as_deref()
                .and_then(CertInfo::from_der)
                .map(CertificateJson::from),
        });
        let auth = trace.and_then(|t| t.auth).map(|m| AuthJson {
            mechanism: m.name(),
            user: facts.user.clone(),
        });
        let envelope = facts.envelope.as_ref().map(|e| EnvelopeJson {
            from: e.reverse_path.clone(),
            recipients: e.forward_paths.clone(),
        });
        let report = facts.report.as_ref();
        let recipients = report.map_or_else(Vec::new, recipient_replies);
        let final_reply = report.and_then(|r| r.final_reply.as_ref());
        let queue_id = final_reply
            .filter(|r| r.code.is_positive())
            .and_then(|r| queue_id(&r.text()));
        let error = match outcome {
            Err(e) => Some(ErrorJson {
                message: format!("{e:#}"),
                phase: Some(error_step(e, facts)),
                reply: e.chain().find_map(|c| match c.downcast_ref::<Error>() {
                    Some(Error::Reply { reply, .. }) => Some(ReplyJson::from(reply)),
                    _ => None,
                }),
            }),
            Ok(Exit::Ok) => None,
            // Direct delivery: each failed domain or refused recipient.
            Ok(_) if !facts.domains.is_empty() => Some(ErrorJson {
                message: facts
                    .domains
                    .iter()
                    .flat_map(crate::engine::mx::DomainOutcome::failure_lines)
                    .collect::<Vec<_>>()
                    .join("; "),
                phase: None,
                reply: None,
            }),
            // Refused recipients: the run itself went through.
            Ok(other) => Some(match report {
                Some(r) => ErrorJson {
                    message: r.failure_lines().join("; "),
                    phase: Some(Step::Rcpt),
                    reply: None,
                },
                None => ErrorJson {
                    message: other.name().to_string(),
                    phase: None,
                    reply: None,
                },
            }),
        };
        JsonResult {
            version: env!("CARGO_PKG_VERSION"),
            route,
            attempts,
            tls,
            auth,
            envelope,
            recipients,
            final_reply: final_reply.map(ReplyJson::from),
            queue_id,
            timings: TimingsJson {
                total_ms: facts.elapsed.map(ms),
                phases: phase_times(trace),
            },
            exit: exit.into(),
            error,
            domains: facts.domains.iter().map(DomainJson::from).collect(),
            queued: facts.queued.clone(),
        }
    }

    /// The document as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        // Serializing plain structs with string keys cannot fail; still, never panic.
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"version\":\"{}\",\"error\":{{\"message\":\"cannot serialize the result\"}}}}",
                env!("CARGO_PKG_VERSION")
            )
        })
    }
}

/// Reply latencies summed per phase, in the order the phases first occurred.
fn phase_times(trace: Option<&Trace>) -> PhaseTimes {
    let mut sums: Vec<(Step, Duration)> = Vec::new();
    for t in trace.map_or(&[][..], |t| &t.timings) {
        let step = Step::from(t.phase);
        match sums.iter_mut().find(|(s, _)| *s == step) {
            Some((_, d)) => *d += t.elapsed,
            None => sums.push((step, t.elapsed)),
        }
    }
    PhaseTimes(sums.into_iter().map(|(s, d)| (s, ms(d))).collect())
}

/// Whether `--json` is on a command line that clap refused (so the usage error can still be
/// reported as JSON). Arguments after `--` are operands, not options.
pub fn requested(argv: &[std::ffi::OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|a| a.as_os_str() != "--")
        .any(|a| a.as_os_str() == "--json")
}

/// Write the document and a newline to stdout. A closed stdout is not an error; any other
/// failure is a warning on stderr, since the outcome (and the exit code) stands either way.
pub fn print(doc: &JsonResult) {
    let mut out = io::stdout().lock();
    let result = writeln!(out, "{}", doc.to_json()).and_then(|()| out.flush());
    if let Err(e) = result {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("postie: warning: cannot write the JSON result to stdout: {e}");
        }
    }
}

/// Longest queue id accepted.
const MAX_ID_LEN: usize = 128;

/// The queue id in the text of a positive reply to end of data (enhanced code already
/// removed), e.g. "Ok: queued as 4F3AB12" → "4F3AB12". Recognized forms, first match wins:
/// `queued as ID` (Postfix and many others), `id=ID` (Exim), `OK <stamp> ID - gsmtp`
/// (Gmail), `Ok ID` (Amazon SES, Microsoft), `ID Message accepted for delivery` (Sendmail).
/// `None` when no form matches or the candidate does not look like an id.
pub fn queue_id(text: &str) -> Option<String> {
    // ASCII lower-casing keeps every byte offset, so offsets in `lower` are valid in `text`.
    let lower = text.to_ascii_lowercase();
    if let Some(rest) = after_word(text, &lower, "queued as ") {
        return rest.split_whitespace().next().and_then(id_token);
    }
    if let Some(rest) = after_word(text, &lower, "id=") {
        return rest.split_whitespace().next().and_then(id_token);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let is_ok = |w: &str| {
        let w = w.trim_end_matches([':', ',']);
        w.eq_ignore_ascii_case("ok")
    };
    match words.as_slice() {
        [ok, _stamp, id, "-", gsmtp] if is_ok(ok) && gsmtp.eq_ignore_ascii_case("gsmtp") => {
            id_token(id)
        }
        // A bare number after "OK" is a timestamp or a count (qmail), not an id.
        [ok, id, ..] if is_ok(ok) && !id.bytes().all(|b| b.is_ascii_digit()) => id_token(id),
        [id, m, a, f, d]
            if [*m, *a, *f, *d]
                .join(" ")
                .eq_ignore_ascii_case("message accepted for delivery") =>
        {
            id_token(id)
        }
        _ => None,
    }
}

/// The text after the first occurrence of `needle` (lower case) that starts a word.
fn after_word<'a>(text: &'a str, lower: &str, needle: &str) -> Option<&'a str> {
    lower
        .match_indices(needle)
        .find(|(i, _)| {
            lower[..*i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric())
        })
        .and_then(|(i, _)| text.get(i + needle.len()..))
}

/// A candidate id without surrounding brackets or trailing punctuation, if it looks like
/// one: 1 to 128 characters of letters, digits and `-_.@+=/:`, with at least one digit.
fn id_token(word: &str) -> Option<String> {
    let id = word
        .trim_start_matches(['<', '(', '['])
        .trim_end_matches(['>', ')', ']', '.', ',', ';', ':']);
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().any(|b| b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@+=/:".contains(&b));
    ok.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Recipient;
    use crate::smtp::auth::Mechanism;
    use crate::trace::{Attempt, Timing, TlsInfo};
    use std::net::SocketAddr;

    fn reply(text: &str) -> Reply {
        crate::smtp::reply::parse(text.as_bytes())
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn queue_ids_from_common_server_replies() {
        let table: [(&str, Option<&str>); 22] = [
            ("Ok: queued as 4F3AB12", Some("4F3AB12")),
            ("Ok: queued as 4VxYz01kLmz9abc", Some("4VxYz01kLmz9abc")),
            ("OK queued as <3e4f-11ee-9a2b>", Some("3e4f-11ee-9a2b")),
            ("Queued as 12AB34. Thank you", Some("12AB34")),
            ("OK id=1rABCD-000AbC-2X", Some("1rABCD-000AbC-2X")),
            ("Accepted (id=abc123)", Some("abc123")),
            (
                "Ok 0100018b4f2a-1c9e-000000",
                Some("0100018b4f2a-1c9e-000000"),
            ),
            (
                "OK <DM6PR01MB1234.namprd01.prod.outlook.com> [Hostname=X]",
                Some("DM6PR01MB1234.namprd01.prod.outlook.com"),
            ),
            (
                "OK  1700000000 d2e1a72fcca58-6c0b7a.12 - gsmtp",
                Some("d2e1a72fcca58-6c0b7a.12"),
            ),
            (
                "u7QAIpwX012345 Message accepted for delivery",
                Some("u7QAIpwX012345"),
            ),
            // No id, or nothing that looks like one.
            ("Ok", None),
            ("OK", None),
            ("Ok thanks", None),
            ("ok 1700000000 qp 12345", None),
            ("Message accepted for delivery", None),
            ("Great success", None),
            ("queued as", None),
            ("Ok: queued as <>", None),
            ("Ok: queued as \u{1b}[31m123", None),
            // "id=" must start a word: InternalId= is not a queue id.
            (
                "Queued mail for delivery [InternalId=15345, Hostname=X]",
                None,
            ),
            ("Ok: queued as ", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(queue_id(text).as_deref(), want, "{text:?}");
        }
        let long = format!("Ok: queued as {}", "A1".repeat(100));
        assert_eq!(queue_id(&long), None);
        // Non-ASCII text around the phrase does not disturb the offsets.
        assert_eq!(queue_id("Çé queued as X9").as_deref(), Some("X9"));
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Facts of a run that reached the end of data over STARTTLS with AUTH PLAIN.
    fn delivered() -> Facts {
        Facts {
            server: Some((
                Server {
                    host: "mail.example.test".into(),
                    port: 587,
                },
                Security::StartTlsRequired,
            )),
            lmtp: false,
            user: Some("alice".into()),
            envelope: Some(Envelope {
                reverse_path: "alice@example.test".into(),
                forward_paths: vec!["bob@example.test".into(), "carol@example.test".into()],
            }),
            trace: Some(Trace {
                attempts: vec![
                    Attempt {
                        addr: addr("[::1]:587"),
                        error: Some("connection refused".into()),
                    },
                    Attempt {
                        addr: addr("127.0.0.1:587"),
                        error: None,
                    },
                ],
                peer: Some(addr("127.0.0.1:587")),
                tls: Some(TlsInfo {
                    version: "TLSv1.3".into(),
                    cipher: "TLS13_AES_256_GCM_SHA384".into(),
                    group: Some("X25519".into()),
                    verified: true,
                    peer_certificate: None,
                }),
                auth: Some(Mechanism::Plain),
                timings: vec![
                    Timing {
                        phase: Phase::Greeting,
                        elapsed: Duration::from_micros(1500),
                    },
                    Timing {
                        phase: Phase::Ehlo,
                        elapsed: Duration::from_micros(250),
                    },
                    Timing {
                        phase: Phase::Rcpt,
                        elapsed: Duration::from_micros(100),
                    },
                    Timing {
                        phase: Phase::Ehlo,
                        elapsed: Duration::from_micros(750),
                    },
                ],
                phase: Some(Phase::DataEnd),
                ..Trace::default()
            }),
            report: Some(Report {
                recipients: vec![
                    Recipient::at_rcpt("bob@example.test".into(), reply("250 2.1.5 Ok\r\n")),
                    Recipient::at_rcpt(
                        "carol@example.test".into(),
                        reply("550 5.1.1 <carol@example.test>: unknown\r\n"),
                    ),
                ],
                final_reply: Some(reply("250 2.0.0 Ok: queued as 4F3AB12\r\n")),
            }),
            elapsed: Some(Duration::from_millis(12)),
            stage: Some(Step::Resolve),
            domains: Vec::new(),
            queued: None,
        }
    }

    #[test]
    fn direct_delivery_lists_each_domain() {
        use crate::engine::mx::DomainOutcome;
        use std::sync::Arc;
        let accepted = DomainOutcome {
            domain: "a.test".into(),
            recipients: vec!["u@a.test".into()],
            mx: Some("mx1.a.test".into()),
            preference: Some(10),
            address: Some(addr("127.0.0.2:2525")),
            tls: Some(TlsInfo {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_128_GCM_SHA256".into(),
                verified: true,
                ..TlsInfo::default()
            }),
            policy: "opportunistic".into(),
            tried: vec!["mx0.a.test: cannot connect".into()],
            report: Some(Report {
                recipients: vec![Recipient {
                    address: "u@a.test".into(),
                    reply: reply("250 2.1.5 Ok\r\n"),
                    data_reply: None,
                    withheld: false,
                }],
                final_reply: Some(reply("250 2.0.0 Ok: queued as Q1\r\n")),
            }),
            error: None,
        };
        let failed = DomainOutcome {
            domain: "b.test".into(),
            recipients: vec!["v@b.test".into()],
            mx: None,
            preference: None,
            address: None,
            tls: None,
            policy: "opportunistic".into(),
            tried: Vec::new(),
            report: None,
            error: Some(Arc::new(
                Error::DnsTemporary("b.test: the DNS server answered SERVFAIL".into()).into(),
            )),
        };
        let facts = Facts {
            domains: vec![accepted, failed],
            ..Facts::default()
        };
        let v = json_of(&facts, Ok(Exit::TempFail));
        assert_eq!(
            v["domains"],
            serde_json::json!([
                {"domain": "a.test", "recipients": ["u@a.test"], "mx": "mx1.a.test",
                 "preference": 10, "address": "127.0.0.2", "port": 2525,
                 "tls": {"version": "TLSv1.3", "cipher": "TLS13_AES_128_GCM_SHA256",
                         "verified": true},
                 "policy": "opportunistic", "tried": ["mx0.a.test: cannot connect"],
                 "replies": [{"address": "u@a.test", "status": "accepted", "code": 250,
                              "enhanced_code": "2.1.5", "text": "Ok"}],
                 "final_reply": {"code": 250, "enhanced_code": "2.0.0",
                                 "text": "Ok: queued as Q1"},
                 "exit": {"code": 0, "name": "EX_OK"}, "error": null},
                {"domain": "b.test", "recipients": ["v@b.test"], "mx": null,
                 "preference": null, "address": null, "port": null, "tls": null,
                 "policy": "opportunistic", "tried": [], "replies": [], "final_reply": null,
                 "exit": {"code": 75, "name": "EX_TEMPFAIL"},
                 "error": "b.test: the DNS server answered SERVFAIL"}
            ])
        );
        assert_eq!(
            v["error"],
            serde_json::json!({"message": "b.test: the DNS server answered SERVFAIL",
                               "phase": null, "reply": null})
        );
    }

    fn json_of(facts: &Facts, outcome: anyhow::Result<Exit>) -> serde_json::Value {
        serde_json::from_str(&JsonResult::new(facts, &outcome).to_json()).unwrap()
    }

    #[test]
    fn partial_delivery_document() {
        let facts = delivered();
        let exit = facts.report.as_ref().unwrap().exit();
        let v = json_of(&facts, Ok(exit));
        let want = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "route": {"host": "mail.example.test", "address": "127.0.0.1", "port": 587,
                      "protocol": "smtp+starttls"},
            "attempts": [
                {"address": "::1", "port": 587, "error": "connection refused"},
                {"address": "127.0.0.1", "port": 587, "error": null}
            ],
            "tls": {"established": true, "version": "TLSv1.3",
                    "cipher": "TLS13_AES_256_GCM_SHA384",
                    "group": "X25519", "verified": true, "certificate": null},
            "auth": {"mechanism": "PLAIN", "user": "alice"},
            "envelope": {"from": "alice@example.test",
                         "recipients": ["bob@example.test", "carol@example.test"]},
            "recipients": [
                {"address": "bob@example.test", "status": "accepted", "code": 250,
                 "enhanced_code": "2.1.5", "text": "Ok"},
                {"address": "carol@example.test", "status": "permanent", "code": 550,
                 "enhanced_code": "5.1.1", "text": "<carol@example.test>: unknown"}
            ],
            "final_reply": {"code": 250, "enhanced_code": "2.0.0",
                            "text": "Ok: queued as 4F3AB12"},
            "queue_id": "4F3AB12",
            "timings": {"total_ms": 12.0,
                        "phases": {"greeting": 1.5, "ehlo": 1.0, "rcpt": 0.1}},
            "exit": {"code": 67, "name": "EX_NOUSER"},
            "error": {
                "message": "RCPT TO <carol@example.test> refused: 550 5.1.1 \
                    <carol@example.test>: unknown (permanent negative completion); \
                    message accepted for 1 of 2 recipients: 250 2.0.0 Ok: queued as 4F3AB12",
                "phase": "rcpt",
                "reply": null
            },
            "domains": [],
            "queued": null
        });
        assert_eq!(v, want);
        // Phases keep the order in which they first occurred.
        let text = JsonResult::new(&facts, &Ok(exit)).to_json();
        let (g, e, r) = (
            text.find("\"greeting\"").unwrap(),
            text.find("\"ehlo\"").unwrap(),
            text.find("\"rcpt\"").unwrap(),
        );
        assert!(g < e && e < r, "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }

    #[test]
    fn statuses_by_reply_class() {
        let table = [
            ("250 ok\r\n", Status::Accepted),
            ("251 2.1.5 will forward\r\n", Status::Accepted),
            ("451 4.3.0 later\r\n", Status::Transient),
            ("550 5.1.1 no\r\n", Status::Permanent),
            ("354 what\r\n", Status::Permanent),
        ];
        for (text, want) in table {
            let report = Report {
                recipients: vec![Recipient::at_rcpt("a@x".into(), reply(text))],
                final_reply: None,
            };
            assert_eq!(recipient_replies(&report)[0].status, want, "{text:?}");
        }
    }

    #[test]
    fn errors_name_their_step_and_exit() {
        let refused = Error::Reply {
            phase: Phase::Auth,
            what: "AUTH PLAIN".into(),
            reply: reply("535 5.7.8 Authentication credentials invalid\r\n"),
        };
        let at = |phase| Trace {
            phase: Some(phase),
            ..Trace::default()
        };
        let table: Vec<(anyhow::Error, Option<Trace>, &str, u8, &str)> = vec![
            (
                anyhow::Error::new(refused).context("sending"),
                Some(at(Phase::Auth)),
                "auth",
                77,
                "EX_NOPERM",
            ),
            (
                Error::Config("no mail server given".into()).into(),
                None,
                "setup",
                78,
                "EX_CONFIG",
            ),
            (
                Error::Connect("cannot connect to 127.0.0.1:1: refused".into()).into(),
                Some(Trace::default()),
                "connect",
                75,
                "EX_TEMPFAIL",
            ),
            (
                Error::NoHost("cannot resolve nx.test".into()).into(),
                None,
                "resolve",
                68,
                "EX_NOHOST",
            ),
            (
                Error::DnsTemporary("SERVFAIL".into()).into(),
                None,
                "resolve",
                75,
                "EX_TEMPFAIL",
            ),
            (
                Error::Unavailable("TLS certificate of x rejected".into()).into(),
                Some(at(Phase::TlsHandshake)),
                "tls_handshake",
                69,
                "EX_UNAVAILABLE",
            ),
            (
                Error::Protocol("malformed reply".into()).into(),
                Some(at(Phase::Rcpt)),
                "rcpt",
                76,
                "EX_PROTOCOL",
            ),
            (
                Error::Timeout {
                    phase: Phase::DataEnd,
                    after: Duration::from_secs(600),
                }
                .into(),
                Some(at(Phase::Quit)),
                "data_end",
                75,
                "EX_TEMPFAIL",
            ),
            (
                anyhow::anyhow!("a bug"),
                Some(at(Phase::DataInit)),
                "data",
                70,
                "EX_SOFTWARE",
            ),
            // Before any connection: where the run had got to (looking up the server),
            // unless the problem is local.
            (
                anyhow::anyhow!("SERVFAIL for mail.example.test"),
                None,
                "resolve",
                70,
                "EX_SOFTWARE",
            ),
            (
                Error::NoInput {
                    what: "CA file",
                    path: "/nonexistent/ca.pem".into(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                }
                .into(),
                None,
                "setup",
                66,
                "EX_NOINPUT",
            ),
        ];
        for (err, trace, step, code, name) in table {
            // deliver() enters the resolve stage before anything can fail in it.
            let facts = Facts {
                trace,
                stage: Some(Step::Resolve),
                ..Facts::default()
            };
            let message = format!("{err:#}");
            let v = json_of(&facts, Err(err));
            assert_eq!(v["error"]["phase"], step, "{message}");
            assert_eq!(v["error"]["message"], message.as_str());
            assert_eq!(v["exit"], serde_json::json!({"code": code, "name": name}));
            assert_eq!(v["queue_id"], serde_json::Value::Null);
        }
    }

    #[test]
    fn a_failure_before_any_stage_is_setup() {
        let v = json_of(&Facts::default(), Err(anyhow::anyhow!("stdin unreadable")));
        assert_eq!(v["error"]["phase"], "setup");
        let v = json_of(
            &Facts::default(),
            Err(Error::Data("no recipients".into()).into()),
        );
        assert_eq!(v["error"]["phase"], "setup");
    }

    #[test]
    fn refusal_carries_the_reply_and_unknowns_are_null() {
        let err = Error::Reply {
            phase: Phase::Auth,
            what: "AUTH PLAIN".into(),
            reply: reply("535 5.7.8 Authentication credentials invalid\r\n"),
        };
        let v = json_of(&Facts::default(), Err(err.into()));
        assert_eq!(
            v["error"]["reply"],
            serde_json::json!({"code": 535, "enhanced_code": "5.7.8",
                               "text": "Authentication credentials invalid"})
        );
        for key in [
            "route",
            "tls",
            "auth",
            "envelope",
            "final_reply",
            "queue_id",
        ] {
            assert_eq!(v[key], serde_json::Value::Null, "{key}");
        }
        assert_eq!(v["attempts"], serde_json::json!([]));
        assert_eq!(v["recipients"], serde_json::json!([]));
        assert_eq!(
            v["timings"],
            serde_json::json!({"total_ms": null, "phases": {}})
        );
    }

    #[test]
    fn success_has_no_error_and_protocols_follow_security() {
        let mut facts = delivered();
        if let Some(r) = facts.report.as_mut() {
            r.recipients.truncate(1);
        }
        let v = json_of(&facts, Ok(Exit::Ok));
        assert_eq!(v["error"], serde_json::Value::Null);
        assert_eq!(v["exit"], serde_json::json!({"code": 0, "name": "EX_OK"}));
        for (security, lmtp, want) in [
            (Security::Plain, false, "smtp"),
            (Security::Implicit, false, "smtps"),
            (Security::StartTlsRequired, false, "smtp+starttls"),
            (Security::Plain, true, "lmtp"),
            (Security::Implicit, true, "lmtps"),
            (Security::StartTlsRequired, true, "lmtp+starttls"),
        ] {
            facts.server = Some((
                Server {
                    host: "h".into(),
                    port: 1,
                },
                security,
            ));
            facts.lmtp = lmtp;
            let doc = json_of(&facts, Ok(Exit::Ok));
            assert_eq!(doc["route"]["protocol"], want);
            assert_valid(&doc);
        }
    }

    #[test]
    fn lmtp_recipients_show_their_own_end_of_data_reply() {
        let mut facts = delivered();
        facts.lmtp = true;
        let lmtp = |addr: &str, data: &str| Recipient {
            data_reply: Some(reply(data)),
            ..Recipient::at_rcpt(addr.into(), reply("250 2.1.5 Ok\r\n"))
        };
        facts.report = Some(Report {
            recipients: vec![
                lmtp("bob@example.test", "250 2.0.0 <bob@example.test> saved\r\n"),
                lmtp(
                    "carol@example.test",
                    "452 4.2.2 <carol@example.test> full\r\n",
                ),
            ],
            final_reply: Some(reply("250 2.0.0 <bob@example.test> saved\r\n")),
        });
        let exit = facts.report.as_ref().unwrap().exit();
        assert_eq!(exit, Exit::TempFail);
        let doc = json_of(&facts, Ok(exit));
        assert_valid(&doc);
        let got: Vec<(String, u64)> = doc["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["code"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("accepted".to_string(), 250),
                ("transient".to_string(), 452)
            ]
        );
        assert_eq!(doc["route"]["protocol"], "lmtp+starttls");
        assert!(doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("<carol@example.test> refused at end of data"));
    }

    /// A self-signed certificate for json.test, valid until 2099-01-02.
    fn certificate_der() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["json.test".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "json.test");
        params.not_after = rcgen::date_time_ymd(2099, 1, 2);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// [`delivered`] with `der` as the server's certificate.
    fn with_certificate(der: &[u8]) -> Facts {
        let mut facts = delivered();
        if let Some(tls) = facts.trace.as_mut().and_then(|t| t.tls.as_mut()) {
            tls.peer_certificate = Some(der.to_vec());
        }
        facts
    }

    #[test]
    fn certificate_facts_come_from_the_peer_certificate() {
        let der = certificate_der();
        let with_certificate = |der: &[u8]| json_of(&with_certificate(der), Ok(Exit::Ok));
        let cert = &with_certificate(&der)["tls"]["certificate"];
        assert_eq!(cert["subject"], "CN=json.test");
        assert_eq!(cert["sans"], serde_json::json!(["DNS:json.test"]));
        assert_eq!(cert["not_after"], "2099-01-02T00:00:00Z");
        assert_eq!(
            cert["sha256"],
            crate::net::certinfo::fingerprint(&der).as_str()
        );
        assert!(cert["days_left"].as_i64().unwrap() > 0);
        // A certificate that cannot be read is left out, not guessed at.
        let v = with_certificate(b"not DER");
        assert_eq!(v["tls"]["certificate"], serde_json::Value::Null);
        assert_eq!(v["tls"]["verified"], true);
    }

    #[test]
    fn a_refused_certificate_is_a_tls_attempt_not_a_session() {
        let mut facts = delivered();
        facts.report = None;
        if let Some(t) = facts.trace.as_mut() {
            t.auth = None;
            t.phase = Some(Phase::TlsHandshake);
            if let Some(tls) = t.tls.as_mut() {
                tls.verified = false;
            }
        }
        let rejected = || Error::Unavailable("TLS certificate of x rejected".into()).into();
        let v = json_of(&facts, Err(rejected()));
        assert_eq!(v["tls"]["established"], false);
        assert_eq!(v["tls"]["verified"], false);
        assert_eq!(v["error"]["phase"], "tls_handshake");
        // Any later failure leaves the session established.
        if let Some(t) = facts.trace.as_mut() {
            t.phase = Some(Phase::Mail);
        }
        let v = json_of(&facts, Err(rejected()));
        assert_eq!(v["tls"]["established"], true);
        let v = json_of(&facts, Ok(Exit::Ok));
        assert_eq!(v["tls"]["established"], true);
    }

    #[test]
    fn json_flag_is_found_before_the_end_of_options() {
        let argv = |a: &[&str]| {
            a.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        let table: [(&[&str], bool); 5] = [
            (&["postie", "--json", "--bogus"], true),
            (&["postie", "--bogus", "--json"], true),
            (&["postie", "--bogus"], false),
            (&["postie", "--", "--json"], false),
            (&["--json"], false),
        ];
        for (args, want) in table {
            assert_eq!(requested(&argv(args)), want, "{args:?}");
        }
    }

    /// A configuration that holds a password gives the document only the login name.
    #[test]
    fn the_password_never_reaches_the_document() {
        let password = "pw-0f-Alice!";
        let args = crate::cli::Args::try_parse_argv(
            [
                "postie",
                "--server",
                "mail.example.test:587",
                "--user",
                "alice",
                "b@x.test",
            ]
            .map(Into::into)
            .to_vec(),
        )
        .unwrap();
        let env = crate::config::Environment {
            var: Box::new(move |k| match k {
                crate::config::PASSWORD_ENV => Some(password.to_string()),
                crate::config::SYSCONFDIR_ENV => Some("/nonexistent/postie-test-etc".into()),
                _ => None,
            }),
            hostname: "box.example".into(),
            fqdn: |_| None,
        };
        let cfg = Config::resolve(args, &env).unwrap();
        assert!(
            cfg.session.credentials.is_some(),
            "the test needs a password to hide"
        );
        let mut facts = delivered();
        facts.note_config(&cfg);
        for outcome in [
            Ok(Exit::Ok),
            Err(anyhow::anyhow!("failed")),
            Err(Error::Reply {
                phase: Phase::Auth,
                what: "AUTH PLAIN".into(),
                reply: reply("535 5.7.8 no\r\n"),
            }
            .into()),
        ] {
            let text = JsonResult::new(&facts, &outcome).to_json();
            assert!(!text.contains(password), "{text}");
            assert!(text.contains("\"user\":\"alice\""), "{text}");
        }
    }

    // ---- the schema ----

    fn schema() -> serde_json::Value {
        serde_json::from_str(include_str!("../schema/postie-result.schema.json")).unwrap()
    }

    fn assert_valid(doc: &serde_json::Value) {
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema())
            .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    }

    #[test]
    fn schema_is_valid_draft_2020_12() {
        let s = schema();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        jsonschema::meta::validate(&s).unwrap();
    }

    /// Every property in the schema says what it means.
    #[test]
    fn schema_documents_every_field() {
        fn walk(v: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
            let Some(obj) = v.as_object() else { return };
            if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
                for (name, sub) in props {
                    let has = sub.get("description").and_then(|d| d.as_str());
                    if has.is_none_or(str::is_empty) {
                        missing.push(format!("{path}/{name}"));
                    }
                    walk(sub, &format!("{path}/{name}"), missing);
                }
            }
            for (k, sub) in obj {
                // if/then/else restate constraints on fields documented elsewhere.
                if !["properties", "if", "then", "else"].contains(&k.as_str()) {
                    match sub {
                        serde_json::Value::Array(items) => items
                            .iter()
                            .for_each(|i| walk(i, &format!("{path}/{k}"), missing)),
                        _ => walk(sub, &format!("{path}/{k}"), missing),
                    }
                }
            }
        }
        let mut missing = Vec::new();
        walk(&schema(), "", &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:?}");
    }

    #[test]
    fn built_documents_validate_against_the_schema() {
        let facts = delivered();
        let partial = facts.report.as_ref().unwrap().exit();
        let refused = Error::Reply {
            phase: Phase::Rcpt,
            what: "x".into(),
            reply: reply("451 4.3.0 later\r\n"),
        };
        let cases: Vec<(Facts, anyhow::Result<Exit>)> = vec![
            (facts.clone(), Ok(partial)),
            (with_certificate(&certificate_der()), Ok(Exit::Ok)),
            (facts.clone(), Ok(Exit::Ok)),
            (
                Facts::default(),
                Err(Error::Usage("bad flag".into()).into()),
            ),
            (facts, Err(refused.into())),
            (
                Facts {
                    report: Some(Report {
                        recipients: Vec::new(),
                        final_reply: None,
                    }),
                    ..Facts::default()
                },
                Ok(Exit::TempFail),
            ),
        ];
        for (facts, outcome) in cases {
            let doc: serde_json::Value =
                serde_json::from_str(&JsonResult::new(&facts, &outcome).to_json()).unwrap();
            assert_valid(&doc);
        }
    }

    #[test]
    fn schema_rejects_what_postie_never_prints() {
        let facts = delivered();
        let good: serde_json::Value =
            serde_json::from_str(&JsonResult::new(&facts, &Ok(Exit::Ok)).to_json()).unwrap();
        let validator = jsonschema::validator_for(&schema()).unwrap();
        assert!(validator.is_valid(&good));
        let edits: [(&str, serde_json::Value); 6] = [
            ("/recipients/0/status", "delivered".into()),
            ("/exit/name", "EX_WHATEVER".into()),
            ("/route/protocol", "smtp+ssl".into()),
            ("/error", serde_json::json!({"message": "x"})),
            ("/queue_id", 42.into()),
            ("/password", "s3cr3t".into()),
        ];
        for (pointer, value) in edits {
            let mut bad = good.clone();
            match bad.pointer_mut(pointer) {
                Some(slot) => *slot = value,
                None => {
                    bad.as_object_mut()
                        .unwrap()
                        .insert(pointer.trim_start_matches('/').into(), value);
                }
            }
            assert!(!validator.is_valid(&bad), "{pointer} accepted");
        }
        // error is null exactly when the exit code is 0.
        let partial: serde_json::Value = serde_json::from_str(
            &JsonResult::new(&facts, &Ok(facts.report.as_ref().unwrap().exit())).to_json(),
        )
        .unwrap();
        assert!(validator.is_valid(&partial));
        let mut bad = good.clone();
        bad["error"] = partial["error"].clone();
        assert!(!validator.is_valid(&bad), "error with exit 0 accepted");
        let mut bad = partial;
        bad["error"] = serde_json::Value::Null;
        assert!(!validator.is_valid(&bad), "exit 67 without error accepted");
    }
}
