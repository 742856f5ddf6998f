//! `postie check [FILE|-]`: lint a ready message before it is sent, and (unless `--no-dns`)
//! ask DNS what receivers will make of it: SPF for the sending domain, the DKIM key of each
//! DKIM-Signature, and the DMARC policy of the From domain.
//!
//! This module owns the `check` command line (its own small clap parser, dispatched from
//! [`crate::app::main`] like `postie sendmail ...`), the lints, and the report (one finding a
//! line, or one JSON object with `--json`). It never sends or changes the message.
//! Exit status: 0 when no finding is an error, 65 (EX_DATAERR) when one is, 64 for a bad
//! command line, 66 for a file that cannot be read.
//!
//! RFC anchors: RFC 5322 §2.1.1 (998-octet lines), §2.2 and §2.3 (CRLF only; no bare CR or
//! LF), §3.6 (the fields required once: From, Date; at most once: Subject, To, ...);
//! RFC 2047 / RFC 6532 (8-bit header bytes need encoded-words unless SMTPUTF8);
//! RFC 7208 (SPF), RFC 6376 (DKIM), RFC 7489 (DMARC). DNS lookups and the SPF and DKIM
//! evaluations are mail-auth's; the DMARC record's `p=`/`sp=` tags are read here.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use mail_parser::{HeaderName, MessageParser};
use serde::Serialize;

use crate::dns::{self, Resolver};
use crate::error::{Error, Exit};

/// How long DNS questions may take, each.
const DNS_TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 5322 §2.1.1: at most 998 octets a line, CRLF not counted.
const MAX_LINE: usize = 998;

/// `postie check`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "check",
    about = "Lint a message before sending it: headers, line lengths and endings, and \
             (with DNS) SPF, DKIM and DMARC",
    disable_version_flag = true
)]
pub struct CheckArgs {
    /// The message file; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The envelope sender the message will be sent with (as `postie -f`).
    #[arg(short = 'f', long = "from", value_name = "ADDR")]
    pub envelope_from: Option<String>,
    /// One JSON object on stdout instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Ask only this DNS server (port 53 unless given).
    #[arg(long, value_name = "IP[:PORT]", value_parser = dns::parse_resolver)]
    pub resolver: Option<SocketAddr>,
    /// Lint the message only; ask DNS nothing.
    #[arg(long)]
    pub no_dns: bool,
    /// The HELO name SPF is evaluated with (default: the envelope domain).
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// The address the message will leave from, for an SPF verdict.
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<IpAddr>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// Stable identifier, e.g. `missing-date`, `line-too-long`, `spf-fail`.
    pub code: &'static str,
    pub message: String,
}

impl Finding {
    fn new(level: Level, code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            level,
            code,
            message: message.into(),
        }
    }
}

/// What DNS said, for `--json`.
#[derive(Debug, Default, Serialize)]
pub struct DnsResults {
    pub spf: Option<SpfCheck>,
    pub dkim: Vec<DkimCheck>,
    pub dmarc: Option<DmarcCheck>,
}

#[derive(Debug, Serialize)]
pub struct SpfCheck {
    pub domain: String,
    pub record: Option<String>,
    pub ip: Option<IpAddr>,
    /// `pass`, `fail`, `softfail`, ... or `not evaluated` (no `--ip`).
    pub result: String,
}

#[derive(Debug, Serialize)]
pub struct DkimCheck {
    pub domain: String,
    pub selector: String,
    pub key_published: bool,
    /// mail-auth's verdict (`pass`, `fail ...`, ...).
    pub result: String,
}

#[derive(Debug, Serialize)]
pub struct DmarcCheck {
    pub domain: String,
    /// The name the record was found at (`_dmarc.example.com`), if any.
    pub found_at: Option<String>,
    pub record: Option<String>,
    pub policy: Option<String>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    findings: &'a [Finding],
    dns: Option<&'a DnsResults>,
    errors: usize,
    warnings: usize,
}

/// `postie check` (parsed by [`crate::cli::parse`]).
pub fn run(args: &CheckArgs) -> Result<Exit> {
    let raw = read_message(args.file.as_ref())?;
    let envelope = args.envelope_from.as_deref();
    let mut findings = lint(&raw, envelope);
    let dns = if args.no_dns {
        None
    } else {
        let (more, results) = dns_checks(&raw, args)?;
        findings.extend(more);
        Some(results)
    };
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    if args.json {
        let report = JsonReport {
            findings: &findings,
            dns: dns.as_ref(),
            errors,
            warnings,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &findings {
            println!("{}: {}: {}", f.level.label(), f.code, f.message);
        }
    }
    Ok(if errors > 0 { Exit::DataErr } else { Exit::Ok })
}

fn read_message(file: Option<&PathBuf>) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    match file {
        Some(path) if path.as_os_str() != "-" => {
            raw = std::fs::read(path).map_err(|source| Error::NoInput {
                what: "message",
                path: path.clone(),
                source,
            })?;
        }
        _ => {
            io::stdin()
                .lock()
                .read_to_end(&mut raw)
                .context("reading the message from standard input")?;
        }
    }
    Ok(raw)
}

/// Fields RFC 5322 §3.6 allows at most once.
const SINGLETONS: &[(HeaderName<'static>, &str)] = &[
    (HeaderName::From, "From"),
    (HeaderName::Sender, "Sender"),
    (HeaderName::ReplyTo, "Reply-To"),
    (HeaderName::To, "To"),
    (HeaderName::Cc, "Cc"),
    (HeaderName::Bcc, "Bcc"),
    (HeaderName::Date, "Date"),
    (HeaderName::MessageId, "Message-ID"),
    (HeaderName::InReplyTo, "In-Reply-To"),
    (HeaderName::References, "References"),
    (HeaderName::Subject, "Subject"),
];

/// The lines of `raw`, each with its ending: `"\r\n"`, `"\n"`, `"\r"` (bare) or `""` (the
/// last line without one).
fn lines(raw: &[u8]) -> Vec<(&[u8], &'static str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < raw.len() {
        match raw.get(i) {
            Some(b'\n') => {
                out.push((raw.get(start..i).unwrap_or_default(), "\n"));
                start = i + 1;
            }
            Some(b'\r') if raw.get(i + 1) == Some(&b'\n') => {
                out.push((raw.get(start..i).unwrap_or_default(), "\r\n"));
                i += 1;
                start = i + 1;
            }
            Some(b'\r') => {
                out.push((raw.get(start..i).unwrap_or_default(), "\r"));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < raw.len() {
        out.push((raw.get(start..).unwrap_or_default(), ""));
    }
    out
}

/// The domain of an address (`a@Example.COM` → `example.com`), if it has one.
fn domain_of(addr: &str) -> Option<String> {
    let (_, d) = addr.trim().trim_matches(['<', '>']).rsplit_once('@')?;
    let d = d.trim().trim_end_matches('.');
    (!d.is_empty()).then(|| d.to_ascii_lowercase())
}

/// The lints that need no network, in message order where it matters.
pub fn lint(raw: &[u8], envelope_from: Option<&str>) -> Vec<Finding> {
    let mut out = Vec::new();
    let all = lines(raw);
    let head_len = all
        .iter()
        .position(|(l, _)| l.is_empty())
        .unwrap_or(all.len());

    // Line endings (RFC 5322 §2.3).
    let crlf = all.iter().filter(|(_, e)| *e == "\r\n").count();
    let lf = all.iter().filter(|(_, e)| *e == "\n").count();
    if let Some(n) = all.iter().position(|(_, e)| *e == "\r") {
        out.push(Finding::new(
            Level::Error,
            "bare-cr",
            format!("line {}: a CR not followed by LF (RFC 5322 §2.3)", n + 1),
        ));
    }
    if crlf > 0 && lf > 0 {
        let n = all.iter().position(|(_, e)| *e == "\n").unwrap_or(0);
        out.push(Finding::new(
            Level::Error,
            "bare-lf",
            format!(
                "mixed line endings: {crlf} CRLF and {lf} bare LF, the first on line {} \
                 (RFC 5322 §2.3)",
                n + 1
            ),
        ));
    }

    // Line length (RFC 5322 §2.1.1).
    for (n, (line, _)) in all.iter().enumerate() {
        if line.len() > MAX_LINE {
            out.push(Finding::new(
                Level::Error,
                "line-too-long",
                format!(
                    "line {}: {} octets; at most {MAX_LINE} are allowed (RFC 5322 §2.1.1)",
                    n + 1,
                    line.len()
                ),
            ));
        }
    }

    // 8-bit header bytes.
    for (n, (line, _)) in all.iter().take(head_len).enumerate() {
        if !line.is_ascii() {
            let name = String::from_utf8_lossy(line);
            let name = name.split(':').next().unwrap_or_default().trim();
            out.push(Finding::new(
                Level::Warning,
                "header-8bit",
                format!(
                    "line {} ({name}): 8-bit bytes in a header; without SMTPUTF8 they must \
                     be RFC 2047 encoded-words",
                    n + 1
                ),
            ));
        }
    }

    // Fields: required, once only, Bcc.
    let parsed = MessageParser::new().parse_headers(raw);
    let headers = parsed.as_ref().map(|m| m.headers()).unwrap_or_default();
    let count = |name: &HeaderName| headers.iter().filter(|h| &h.name == name).count();
    for (name, shown, level) in [
        (HeaderName::From, "From", Level::Error),
        (HeaderName::Date, "Date", Level::Error),
        (HeaderName::MessageId, "Message-ID", Level::Warning),
    ] {
        if count(&name) == 0 {
            out.push(Finding::new(
                level,
                match name {
                    HeaderName::From => "missing-from",
                    HeaderName::Date => "missing-date",
                    _ => "missing-message-id",
                },
                format!("no {shown}: field (RFC 5322 §3.6)"),
            ));
        }
    }
    for (name, shown) in SINGLETONS {
        let n = count(name);
        if n > 1 {
            out.push(Finding::new(
                Level::Error,
                "duplicate-header",
                format!("{shown}: appears {n} times; RFC 5322 §3.6 allows it once"),
            ));
        }
    }
    if count(&HeaderName::Bcc) > 0 {
        out.push(Finding::new(
            Level::Warning,
            "bcc-present",
            "Bcc: is present; sending with -t strips it from the message",
        ));
    }

    // Envelope sender against From.
    let head_bytes: usize = all
        .iter()
        .take(head_len)
        .map(|(l, e)| l.len() + e.len())
        .sum();
    let from = crate::message::headers::from_address(raw.get(..head_bytes).unwrap_or(raw));
    if let (Some(env), Some(from)) = (envelope_from, from.as_deref()) {
        let (ed, fd) = (domain_of(env), domain_of(from));
        if ed != fd {
            out.push(Finding::new(
                Level::Warning,
                "envelope-mismatch",
                format!(
                    "envelope sender {env} and From: {from} are in different domains; \
                     DMARC's SPF alignment will fail"
                ),
            ));
        }
    }
    if out.iter().all(|f| f.level == Level::Ok) {
        out.push(Finding::new(
            Level::Ok,
            "message",
            "no problems found in the message",
        ));
    }
    out
}

/// The `p=` and `sp=` tags of a DMARC record (RFC 7489 §6.3), if it is one.
pub fn dmarc_policy(record: &str) -> Option<(String, Option<String>)> {
    let mut tags = record.split(';').map(|t| t.trim());
    let version = tags.next()?;
    if !version.replace(' ', "").eq_ignore_ascii_case("v=DMARC1") {
        return None;
    }
    let mut p = None;
    let mut sp = None;
    for tag in tags {
        if let Some((k, v)) = tag.split_once('=') {
            match k.trim().to_ascii_lowercase().as_str() {
                "p" => p = Some(v.trim().to_ascii_lowercase()),
                "sp" => sp = Some(v.trim().to_ascii_lowercase()),
                _ => {}
            }
        }
    }
    Some((p?, sp))
}

/// The `d=` and `s=` tags of a DKIM-Signature value.
fn dkim_tags(value: &str) -> Option<(String, String)> {
    let mut d = None;
    let mut s = None;
    for tag in value.split(';') {
        if let Some((k, v)) = tag.split_once('=') {
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            match k.trim() {
                "d" => d = Some(v.to_ascii_lowercase()),
                "s" => s = Some(v),
                _ => {}
            }
        }
    }
    Some((d?, s?))
}

fn dns_checks(raw: &[u8], args: &CheckArgs) -> Result<(Vec<Finding>, DnsResults)> {
    let resolver = Resolver::new(args.resolver, DNS_TIMEOUT)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the DNS resolver")?;
    let auth = {
        let _context = runtime.enter();
        authenticator(args.resolver)?
    };
    let mut out = Vec::new();
    let mut results = DnsResults::default();
    let parsed = MessageParser::new().parse_headers(raw);
    let head = parsed.as_ref().map(|m| m.headers()).unwrap_or_default();
    let from_addr = crate::message::headers::from_address(raw);
    let from_domain = from_addr.as_deref().and_then(domain_of);

    // SPF of the envelope domain (or From's, when no -f).
    let sender = args.envelope_from.clone().or(from_addr.clone());
    if let Some((sender, domain)) = sender
        .as_ref()
        .and_then(|s| domain_of(s).map(|d| (s.clone(), d)))
    {
        let record = resolver
            .txt(&domain)?
            .into_iter()
            .find(|t| t.to_ascii_lowercase().starts_with("v=spf1"));
        let helo = args.helo.clone().unwrap_or_else(|| domain.clone());
        let result = match (args.ip, &record) {
            (_, None) => {
                out.push(Finding::new(
                    Level::Warning,
                    "spf-none",
                    format!("{domain} publishes no SPF record"),
                ));
                "none".to_string()
            }
            (None, Some(rec)) => {
                out.push(Finding::new(
                    Level::Ok,
                    "spf-record",
                    format!(
                        "{domain}: \"{rec}\"; not evaluated: this host's outbound address \
                         is unknown, give it with --ip"
                    ),
                ));
                "not evaluated".to_string()
            }
            (Some(ip), Some(_)) => {
                let params = mail_auth::spf::verify::SpfParameters::verify_mail_from(
                    ip, &helo, &helo, &sender,
                );
                let spf = runtime.block_on(auth.verify_spf(mail_auth::Parameters::new(params)));
                let (level, code, verdict) = spf_verdict(spf.result());
                out.push(Finding::new(
                    level,
                    code,
                    format!("SPF of {domain} for {ip}: {verdict}"),
                ));
                verdict.to_string()
            }
        };
        results.spf = Some(SpfCheck {
            domain,
            record,
            ip: args.ip,
            result,
        });
    }

    // DKIM: the key of each signature, and the signature itself.
    let signatures: Vec<(String, String)> = head
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case("DKIM-Signature"))
        .filter_map(|h| {
            let start = h.offset_start as usize;
            let end = h.offset_end as usize;
            let value = String::from_utf8_lossy(raw.get(start..end)?).into_owned();
            dkim_tags(&value)
        })
        .collect();
    if !signatures.is_empty() {
        let message = mail_auth::AuthenticatedMessage::parse(raw);
        let outputs = match &message {
            Some(m) => runtime.block_on(auth.verify_dkim(mail_auth::Parameters::new(m))),
            None => Vec::new(),
        };
        for (domain, selector) in signatures {
            let name = format!("{selector}._domainkey.{domain}");
            let published = resolver
                .txt(&name)?
                .iter()
                .any(|t| t.contains("p=") && !t.replace(' ', "").contains("p=;"));
            let verdict = outputs
                .iter()
                .find(|o| {
                    o.signature()
                        .is_some_and(|s| s.d.eq_ignore_ascii_case(&domain) && s.s == selector)
                })
                .map(|o| o.result());
            let passed = matches!(verdict, Some(mail_auth::DkimResult::Pass));
            let verdict = verdict.map_or_else(|| "not verified".to_string(), |r| r.to_string());
            if !published {
                out.push(Finding::new(
                    Level::Error,
                    "dkim-key-missing",
                    format!("no DKIM key published at {name}"),
                ));
            } else if passed {
                out.push(Finding::new(
                    Level::Ok,
                    "dkim-pass",
                    format!("DKIM signature d={domain} s={selector} verifies"),
                ));
            } else {
                out.push(Finding::new(
                    Level::Error,
                    "dkim-fail",
                    format!("DKIM signature d={domain} s={selector}: {verdict}"),
                ));
            }
            results.dkim.push(DkimCheck {
                domain,
                selector,
                key_published: published,
                result: verdict,
            });
        }
    }

    // DMARC: the From domain's record, else its parent's (a simple stand-in for the
    // organizational domain of RFC 7489 §3.2, which needs the public suffix list).
    if let Some(domain) = from_domain {
        let mut candidates = vec![domain.clone()];
        if let Some((_, parent)) = domain.split_once('.') {
            if parent.contains('.') {
                candidates.push(parent.to_string());
            }
        }
        let mut check = DmarcCheck {
            domain: domain.clone(),
            found_at: None,
            record: None,
            policy: None,
        };
        for (i, candidate) in candidates.iter().enumerate() {
            let name = format!("_dmarc.{candidate}");
            let found = resolver
                .txt(&name)?
                .into_iter()
                .find_map(|t| dmarc_policy(&t).map(|p| (t, p)));
            if let Some((record, (p, sp))) = found {
                let policy = match (i, sp) {
                    (0, _) | (_, None) => p,
                    (_, Some(sp)) => sp,
                };
                out.push(Finding::new(
                    Level::Ok,
                    "dmarc-policy",
                    format!("DMARC policy for {domain}: p={policy} (from {name})"),
                ));
                check.found_at = Some(name);
                check.record = Some(record);
                check.policy = Some(policy);
                break;
            }
        }
        if check.record.is_none() {
            out.push(Finding::new(
                Level::Warning,
                "dmarc-none",
                format!("{domain} publishes no DMARC record"),
            ));
        }
        results.dmarc = Some(check);
    }
    Ok((out, results))
}

/// The finding an SPF result makes, and its RFC 7208 §2.6 name.
fn spf_verdict(result: mail_auth::SpfResult) -> (Level, &'static str, &'static str) {
    use mail_auth::SpfResult as R;
    match result {
        R::Pass => (Level::Ok, "spf-pass", "pass"),
        R::Fail => (Level::Error, "spf-fail", "fail"),
        R::SoftFail => (Level::Warning, "spf-softfail", "softfail"),
        R::Neutral => (Level::Warning, "spf-neutral", "neutral"),
        R::None => (Level::Warning, "spf-none", "none"),
        R::TempError => (Level::Warning, "spf-temperror", "temperror"),
        R::PermError => (Level::Error, "spf-permerror", "permerror"),
    }
}

/// mail-auth's resolver, asking the same server as [`Resolver`].
fn authenticator(server: Option<SocketAddr>) -> Result<mail_auth::MessageAuthenticator> {
    use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    let built = match server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for conn in &mut ns.connections {
                conn.port = addr.port();
            }
            let mut opts = ResolverOpts::default();
            opts.timeout = DNS_TIMEOUT;
            mail_auth::MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![ns]), opts)
        }
        None => mail_auth::MessageAuthenticator::new_system_conf(),
    };
    built.map_err(|e| Error::Config(format!("cannot set up the DNS resolver: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(raw: &[u8], env: Option<&str>) -> Vec<&'static str> {
        lint(raw, env)
            .into_iter()
            .filter(|f| f.level != Level::Ok)
            .map(|f| f.code)
            .collect()
    }

    const CLEAN: &str = "From: a@example.test\r\nTo: b@example.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.test>\r\nSubject: hi\r\n\r\nbody\r\n";

    #[test]
    fn each_lint_fires_alone() {
        let long = format!("{}{}\r\n", CLEAN, "x".repeat(999));
        let cases: Vec<(String, Option<&str>, Vec<&str>)> = vec![
            (CLEAN.into(), None, vec![]),
            (CLEAN.replace("\r\n", "\n"), None, vec![]),
            (CLEAN.into(), Some("bounce@example.test"), vec![]),
            (
                CLEAN.into(),
                Some("bounce@other.test"),
                vec!["envelope-mismatch"],
            ),
            (
                CLEAN.replace("Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n", ""),
                None,
                vec!["missing-date"],
            ),
            (
                CLEAN.replace("Message-ID: <1@example.test>\r\n", ""),
                None,
                vec!["missing-message-id"],
            ),
            (
                CLEAN.replace("From: a@example.test\r\n", ""),
                None,
                vec!["missing-from"],
            ),
            (long, None, vec!["line-too-long"]),
            (format!("{}{}\r\n", CLEAN, "x".repeat(998)), None, vec![]),
            (
                CLEAN.replace("Subject: hi", "Subject: héllo"),
                None,
                vec!["header-8bit"],
            ),
            (
                CLEAN.replace("body\r\n", "body\nmore\r\n"),
                None,
                vec!["bare-lf"],
            ),
            (
                CLEAN.replace("body\r\n", "bo\rdy\r\n"),
                None,
                vec!["bare-cr"],
            ),
            (
                CLEAN.replace("To:", "From: c@example.test\r\nTo:"),
                None,
                vec!["duplicate-header"],
            ),
            (
                CLEAN.replace("To:", "Bcc: c@example.test\r\nTo:"),
                None,
                vec!["bcc-present"],
            ),
        ];
        for (msg, env, want) in cases {
            assert_eq!(codes(msg.as_bytes(), env), want, "{msg:?}");
        }
    }

    #[test]
    fn clean_message_says_ok() {
        let all = lint(CLEAN.as_bytes(), None);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].level, Level::Ok);
    }

    #[test]
    fn dmarc_records() {
        type Policy<'a> = Option<(&'a str, Option<&'a str>)>;
        let cases: &[(&str, Policy)] = &[
            ("v=DMARC1; p=reject", Some(("reject", None))),
            (
                "v=DMARC1;p=None; sp=quarantine; rua=mailto:x@y",
                Some(("none", Some("quarantine"))),
            ),
            ("v=DMARC1; rua=mailto:x@y", None),
            ("v=spf1 -all", None),
            ("", None),
        ];
        for (rec, want) in cases {
            let got = dmarc_policy(rec);
            let want = want.map(|(p, sp)| (p.to_string(), sp.map(str::to_string)));
            assert_eq!(got, want, "{rec}");
        }
    }

    #[test]
    fn dkim_signature_tags() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                " v=1; a=rsa-sha256; d=Example.test; s=sel1;\r\n b=abc",
                Some(("example.test", "sel1")),
            ),
            ("v=1; d=example.test", None),
            ("garbage", None),
        ];
        for (v, want) in cases {
            let want = want.map(|(d, s)| (d.to_string(), s.to_string()));
            assert_eq!(dkim_tags(v), want, "{v}");
        }
    }

    #[test]
    fn spf_results() {
        use mail_auth::SpfResult as R;
        let cases = [
            (R::Pass, Level::Ok, "pass"),
            (R::Fail, Level::Error, "fail"),
            (R::SoftFail, Level::Warning, "softfail"),
            (R::PermError, Level::Error, "permerror"),
            (R::TempError, Level::Warning, "temperror"),
        ];
        for (result, level, name) in cases {
            let (l, code, n) = spf_verdict(result);
            assert_eq!((l, n), (level, name));
            assert_eq!(code, format!("spf-{name}"));
        }
    }

    #[test]
    fn domains() {
        let cases = [
            ("a@Example.TEST", Some("example.test")),
            ("<a@x.test.>", Some("x.test")),
            ("root", None),
            ("a@", None),
        ];
        for (addr, want) in cases {
            assert_eq!(domain_of(addr).as_deref(), want, "{addr}");
        }
    }

    #[test]
    fn line_endings_are_told_apart() {
        let got: Vec<&str> = lines(b"a\r\nb\nc\rd").iter().map(|(_, e)| *e).collect();
        assert_eq!(got, ["\r\n", "\n", "\r", ""]);
    }
}
