//! MTA-STS (RFC 8461): whether a recipient domain asks senders to deliver only to named MX
//! hosts over TLS with a verified certificate, and which hosts those are.
//!
//! Owns: reading the `_mta-sts.DOMAIN` TXT record (§3.1), fetching the policy from
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` (§3.3), parsing it (§3.2), matching MX
//! host names against its patterns (§4.1), and the policy cache under the user's cache
//! directory (§3.3, §5.1). The GET goes through [`crate::http`] (ureq: WebPKI roots plus
//! `--tls-ca`), to the addresses postie's own resolver found for the policy host; it
//! follows no redirect, reads at most [`MAX_BODY`] bytes, and wants `200` with
//! `text/plain`.
//!
//! Must not: decide how delivery reacts. [`Fetcher::policy`] only says what the domain
//! published; the caller restricts MX hosts with [`Policy::allows`] and requires verified
//! TLS in `enforce` mode, and only reports in `testing` mode (§5). A fetch that fails
//! without a fresh cached policy is an `Err` the caller reports and then delivers as if
//! the domain had no policy (§5.1: "MUST continue with delivery as though the domain has
//! not implemented MTA-STS"); it must not turn that into a failed delivery.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};

use crate::config::parse_url_base;
use crate::error::Error;

/// The longest policy body read (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_BODY: usize = crate::http::MAX_BODY as usize;
/// The largest `max_age` honoured: one year (RFC 8461 §3.2); larger values are capped.
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// First line of a cache file, so that a future format is recognised as foreign.
const CACHE_MAGIC: &str = "postie-mta-sts-cache 1";
/// Where the policy lives on `mta-sts.DOMAIN` (RFC 8461 §3.2).
const WELL_KNOWN: &str = "/.well-known/mta-sts.txt";

/// What the domain asks senders to do (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to matching MX hosts, over TLS with a verified certificate.
    Enforce,
    /// Report what enforcing would have refused, but deliver anyway.
    Testing,
    /// The domain withdrew its policy: behave as if there were none.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy, with the id of the TXT record it was fetched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The `id=` of the `_mta-sts` TXT record (empty from [`Policy::parse`] alone).
    pub id: String,
    pub mode: Mode,
    /// MX patterns, lower case without a final dot; `*.example.net` allowed.
    pub mx: Vec<String>,
    /// Seconds the policy may be cached, at most [`MAX_AGE_LIMIT`].
    pub max_age: u64,
}

impl Policy {
    /// Parse a policy body (RFC 8461 §3.2): `key: value` lines ended by LF or CRLF;
    /// `version: STSv1`, `mode` and `max_age` are required, `mx` too unless the mode is
    /// `none`. Unknown keys are ignored; of repeated keys other than `mx` the first counts.
    /// A `max_age` above one year is capped to one year. Errors are EX_DATAERR.
    pub fn parse(text: &str) -> Result<Policy> {
        let bad = |why: String| -> anyhow::Error {
            Error::Data(format!("invalid MTA-STS policy: {why}")).into()
        };
        let (mut version, mut mode, mut max_age) = (None, None, None);
        let mut mx = Vec::new();
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let line = line.trim_end_matches([' ', '\t']);
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(bad(format!("line {}: no \"key: value\": {line:?}", n + 1)));
            };
            let value = value.trim_start_matches([' ', '\t']);
            match key {
                "version" => {
                    version.get_or_insert(value);
                }
                "mode" => {
                    mode.get_or_insert(value);
                }
                "max_age" => {
                    max_age.get_or_insert(value);
                }
                "mx" => mx.push(value),
                _ => {}
            }
        }
        match version {
            Some("STSv1") => {}
            Some(other) => return Err(bad(format!("unsupported version {other:?}"))),
            None => return Err(bad("no \"version\" field".into())),
        }
        let mode = match mode {
            Some("enforce") => Mode::Enforce,
            Some("testing") => Mode::Testing,
            Some("none") => Mode::None,
            Some(other) => return Err(bad(format!("unknown mode {other:?}"))),
            None => return Err(bad("no \"mode\" field".into())),
        };
        let max_age = match max_age {
            Some(v) if !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse::<u64>()
                .map_err(|e| bad(format!("max_age {v:?}: {e}")))?
                .min(MAX_AGE_LIMIT),
            Some(v) => return Err(bad(format!("max_age {v:?} is not 1 to 10 digits"))),
            None => return Err(bad("no \"max_age\" field".into())),
        };
        let mx = mx
            .into_iter()
            .map(|p| mx_pattern(p).ok_or_else(|| bad(format!("bad mx pattern {p:?}"))))
            .collect::<Result<Vec<String>>>()?;
        if mx.is_empty() && mode != Mode::None {
            return Err(bad(format!("no \"mx\" field in {} mode", mode.as_str())));
        }
        Ok(Policy {
            id: String::new(),
            mode,
            mx,
            max_age,
        })
    }

    /// Whether `mx_host` matches one of the policy's patterns (RFC 8461 §4.1): exactly, or
    /// `*.example.net` for one more label on the left (`mx1.example.net`, not
    /// `a.b.example.net` nor `example.net`). Case-insensitive; a final dot is ignored.
    pub fn allows(&self, mx_host: &str) -> bool {
        let host = mx_host.strip_suffix('.').unwrap_or(mx_host);
        if host.is_empty() {
            return false;
        }
        let host = host.to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }
}

/// An `mx` value in canonical form (lower case, no final dot), or None when it is not a
/// domain name with an optional leading `*.`.
fn mx_pattern(value: &str) -> Option<String> {
    let v = value
        .strip_suffix('.')
        .unwrap_or(value)
        .to_ascii_lowercase();
    let name = v.strip_prefix("*.").unwrap_or(&v);
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(v)
}

/// What the `_mta-sts` TXT records say (RFC 8461 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Txt {
    /// No record starting with `v=STSv1`.
    Absent,
    /// Exactly one, valid: its id.
    Id(String),
    /// Several STSv1 records, or one that does not parse: "no available policy".
    Invalid(String),
}

/// Keep the records that begin with `v=STSv1`, and require exactly one valid one.
fn txt_policy_id(records: &[String]) -> Txt {
    let sts: Vec<&String> = records
        .iter()
        .filter(|r| {
            r.strip_prefix("v=STSv1")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([';', ' ', '\t']))
        })
        .collect();
    match sts.as_slice() {
        [] => Txt::Absent,
        [one] => match parse_txt(one) {
            Some(id) => Txt::Id(id),
            None => Txt::Invalid(format!("invalid MTA-STS TXT record {one:?}")),
        },
        many => Txt::Invalid(format!("{} MTA-STS TXT records, not one", many.len())),
    }
}

/// `v=STSv1; id=ID[; ext=value ...][;]` with optional white space around `;`; the id is
/// 1 to 32 letters and digits.
fn parse_txt(record: &str) -> Option<String> {
    let mut fields = record.split(';').map(|f| f.trim_matches([' ', '\t']));
    if fields.next()? != "v=STSv1" {
        return None;
    }
    let mut id = None;
    let mut rest: Vec<&str> = fields.collect();
    if rest.last() == Some(&"") {
        rest.pop();
    }
    for field in rest {
        let (key, value) = field.split_once('=')?;
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !key_ok {
            return None;
        }
        if key == "id" && id.is_none() {
            let ok =
                (1..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                return None;
            }
            id = Some(value.to_string());
        }
    }
    id
}

/// Where `policy()` got its answer, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Fetched over HTTPS just now.
    Fetched,
    /// From the cache, still fresh and with the TXT record's id.
    Cached,
    /// From the cache because the live lookup or fetch failed (why).
    CachedAfterFailure(String),
}

/// A policy and where it came from; `note` says what went wrong on the side (a cache that
/// could not be written, say) without having stopped anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub policy: Policy,
    pub source: Source,
    pub note: Option<String>,
}

/// Looks up, fetches and caches MTA-STS policies for one run.
pub struct Fetcher {
    resolver: Option<SocketAddr>,
    url_base: Option<String>,
    cache_dir: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    timeout: Duration,
}

impl Fetcher {
    /// `resolver`: the DNS server for the TXT record and the policy host (None = the
    /// system's). `url_base` (`--mta-sts-url-base`, for tests): fetch
    /// `URL_BASE/DOMAIN/.well-known/mta-sts.txt` instead; it must be `https://HOST[:PORT]`
    /// with an optional path, else EX_USAGE. `cache_dir`: the directory of cached policies
    /// (see [`crate::config::mta_sts_cache_dir`]); None = no cache. `ca_file`
    /// (`--tls-ca`) adds to the WebPKI roots; certificates are always verified: the policy is
    /// only as good as its certificate (RFC 8461 §3.3). `timeout` bounds the DNS lookups,
    /// and the whole fetch.
    pub fn new(
        resolver: Option<SocketAddr>,
        url_base: Option<String>,
        cache_dir: Option<PathBuf>,
        ca_file: Option<PathBuf>,
        timeout: Duration,
    ) -> Result<Fetcher> {
        if let Some(base) = &url_base {
            parse_url_base(base).map_err(|e| Error::Usage(format!("--mta-sts-url-base: {e}")))?;
        }
        Ok(Fetcher {
            resolver,
            url_base,
            cache_dir,
            ca_file,
            timeout,
        })
    }

    /// None when the domain publishes no `_mta-sts` TXT record (v=STSv1; id=...) and no
    /// fresh policy is cached. A fresh cached policy with the TXT record's id is used
    /// without fetching; a changed id fetches again; a failed lookup or fetch falls back to
    /// a fresh cached policy (§5.1). Address literals have no policy.
    pub fn policy(&self, domain: &str) -> Result<Option<Policy>> {
        Ok(self.lookup(domain)?.map(|found| found.policy))
    }

    /// [`policy`](Self::policy), saying where the answer came from.
    pub fn lookup(&self, domain: &str) -> Result<Option<Found>> {
        if crate::dns::address_literal(domain).is_some() {
            return Ok(None);
        }
        let domain = domain
            .strip_suffix('.')
            .unwrap_or(domain)
            .to_ascii_lowercase();
        let cache_file = self.cache_file(&domain);
        let now = unix_now();
        let cached = cache_file
            .as_deref()
            .and_then(|f| read_cache(f).ok())
            .filter(|(fetched, policy)| now < fetched.saturating_add(policy.max_age))
            .map(|(_, policy)| policy);
        let fallback = |why: String| -> Option<Found> {
            cached.clone().map(|policy| Found {
                policy,
                source: Source::CachedAfterFailure(why),
                note: None,
            })
        };
        let resolver = crate::dns::Resolver::new(self.resolver, self.timeout)?;
        let records = match resolver.txt(&format!("_mta-sts.{domain}")) {
            Ok(records) => records,
            Err(e) => {
                return match fallback(format!("{e:#}")) {
                    Some(found) => Ok(Some(found)),
                    None => Err(e.context(format!("MTA-STS policy of {domain}"))),
                }
            }
        };
        let id = match txt_policy_id(&records) {
            Txt::Id(id) => id,
            // §3.3: with no live policy, a fresh cached one still applies.
            Txt::Absent => return Ok(fallback("no MTA-STS TXT record".into())),
            Txt::Invalid(why) => return Ok(fallback(why)),
        };
        if let Some(policy) = cached.as_ref().filter(|p| p.id == id) {
            return Ok(Some(Found {
                policy: policy.clone(),
                source: Source::Cached,
                note: None,
            }));
        }
        let fetched = self
            .fetch(&resolver, &domain)
            .and_then(|body| Policy::parse(&body));
        let mut policy = match fetched {
            Ok(policy) => policy,
            Err(e) => {
                let e = e.context(format!("fetching the MTA-STS policy of {domain}"));
                return match fallback(format!("{e:#}")) {
                    Some(found) => Ok(Some(found)),
                    None => Err(e),
                };
            }
        };
        policy.id = id;
        let note = cache_file.and_then(|file| {
            write_cache(&file, now, &policy)
                .err()
                .map(|e| format!("MTA-STS policy not cached: {e:#}"))
        });
        Ok(Some(Found {
            policy,
            source: Source::Fetched,
            note,
        }))
    }

    /// The cache file of `domain`, when there is a cache and the name is safe as a file
    /// name (letters, digits, `-`, `_`, `.`; no leading dot).
    fn cache_file(&self, domain: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let safe = !domain.is_empty()
            && !domain.starts_with('.')
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        safe.then(|| dir.join(domain))
    }

    /// GET the policy: status 200, text/plain, at most [`MAX_BODY`] bytes, no redirects.
    fn fetch(&self, resolver: &crate::dns::Resolver, domain: &str) -> Result<String> {
        let (host, port, path) = match &self.url_base {
            Some(base) => {
                let (host, port, prefix) = parse_url_base(base).map_err(|e| anyhow!(e))?;
                (host, port, format!("{prefix}/{domain}{WELL_KNOWN}"))
            }
            None => (format!("mta-sts.{domain}"), 443, WELL_KNOWN.to_string()),
        };
        let url = format!("https://{}{path}", authority(&host, port));
        let addrs = resolver.addrs(&host, port)?;
        let client = crate::http::Client::pinned(self.ca_file.as_deref(), self.timeout, addrs)?;
        let response = client.get(&url, "the MTA-STS policy at", "text/plain")?;
        check_response(&response).map_err(|why| anyhow!("{url}: {why}"))?;
        Ok(response.body)
    }
}

/// `host:port` for the Host header and messages; IPv6 in brackets, `:443` left out.
fn authority(host: &str, port: u16) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    if port == 443 {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// RFC 8461 §3.3: 200 only (a redirect is not followed), media type text/plain.
fn check_response(response: &crate::http::Response) -> std::result::Result<(), String> {
    match response.status {
        200 => {}
        300..=399 => {
            let to = response.location.as_deref().unwrap_or("nowhere");
            return Err(format!(
                "redirected ({}) to {to}; MTA-STS forbids following redirects (RFC 8461 §3.3)",
                response.status
            ));
        }
        other => return Err(format!("HTTP status {other}, not 200")),
    }
    let media = response
        .content_type
        .as_deref()
        .map(|ct| ct.split(';').next().unwrap_or_default().trim());
    match media {
        Some(m) if m.eq_ignore_ascii_case("text/plain") => Ok(()),
        Some(m) => Err(format!("content type {m:?}, not text/plain")),
        None => Err("no content type, not text/plain".into()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Cache file: the magic line, `fetched: UNIX-SECONDS`, `id: ID`, an empty line, then the
/// policy in canonical form. Written to a temporary file and renamed into place.
fn write_cache(path: &Path, fetched: u64, policy: &Policy) -> Result<()> {
    let dir = path.parent().context("cache path without a directory")?;
    create_private_dir(dir)?;
    let mut text = format!(
        "{CACHE_MAGIC}\nfetched: {fetched}\nid: {}\n\nversion: STSv1\nmode: {}\nmax_age: {}\n",
        policy.id,
        policy.mode.as_str(),
        policy.max_age
    );
    for mx in &policy.mx {
        text.push_str(&format!("mx: {mx}\n"));
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("renaming {} into place", tmp.display()));
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// (fetch time, policy with its id) from a cache file.
fn read_cache(path: &Path) -> Result<(u64, Policy)> {
    let text = std::fs::read_to_string(path)?;
    parse_cache(&text)
}

fn parse_cache(text: &str) -> Result<(u64, Policy)> {
    let (head, body) = text.split_once("\n\n").context("no blank line")?;
    let mut lines = head.lines();
    if lines.next() != Some(CACHE_MAGIC) {
        bail!("not a postie MTA-STS cache file");
    }
    let fetched = lines
        .next()
        .and_then(|l| l.strip_prefix("fetched: "))
        .and_then(|v| v.parse::<u64>().ok())
        .context("no fetch time")?;
    let id = lines
        .next()
        .and_then(|l| l.strip_prefix("id: "))
        .context("no id")?;
    let mut policy = Policy::parse(body)?;
    policy.id = id.to_string();
    Ok((fetched, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};

    fn policy(mode: Mode, mx: &[&str], max_age: u64) -> Policy {
        Policy {
            id: String::new(),
            mode,
            mx: mx.iter().map(|s| s.to_string()).collect(),
            max_age,
        }
    }

    #[test]
    fn policies_parse() {
        let cases: &[(&str, Policy)] = &[
            // RFC 8461 §3.2's example.
            (
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n",
                policy(
                    Mode::Enforce,
                    &["mail.example.com", "*.example.net", "backupmx.example.com"],
                    604800,
                ),
            ),
            // CRLF, no final line end, spaces after the colon and at line ends.
            (
                "version: STSv1\r\nmode: testing\r\nmx:   MX.Example.COM. \r\nmax_age:86400",
                policy(Mode::Testing, &["mx.example.com"], 86400),
            ),
            // mode none needs no mx; unknown keys ignored; first of repeated keys wins.
            (
                "version: STSv1\nmode: none\nmode: enforce\nmax_age: 0\nfoo: bar\n",
                policy(Mode::None, &[], 0),
            ),
            // max_age above a year is capped to one.
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 9999999999\n",
                policy(Mode::Enforce, &["a.test"], MAX_AGE_LIMIT),
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557600\n",
                policy(Mode::Enforce, &["a.test"], 31557600),
            ),
            // Blank lines are tolerated.
            (
                "\nversion: STSv1\n\nmode: enforce\nmx: a.test\nmax_age: 1\n\n",
                policy(Mode::Enforce, &["a.test"], 1),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&Policy::parse(text).unwrap(), want, "{text:?}");
        }
    }

    #[test]
    fn bad_policies_are_refused() {
        let cases: &[(&str, &str)] = &[
            ("mode: enforce\nmx: a.test\nmax_age: 1\n", "no \"version\""),
            (
                "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
                "version",
            ),
            (
                "version: stsv1\nmode: enforce\nmx: a.test\nmax_age: 1\n",
                "version",
            ),
            (
                "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
                "unknown mode",
            ),
            (
                "version: STSv1\nmode: Enforce\nmx: a.test\nmax_age: 1\n",
                "unknown mode",
            ),
            ("version: STSv1\nmx: a.test\nmax_age: 1\n", "no \"mode\""),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\n",
                "no \"max_age\"",
            ),
            ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no \"mx\""),
            ("version: STSv1\nmode: testing\nmax_age: 1\n", "no \"mx\""),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
                "max_age",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1.5\n",
                "max_age",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: \n",
                "max_age",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 12345678901\n",
                "max_age",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a..test\nmax_age: 1\n",
                "mx pattern",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 1\n",
                "mx pattern",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n",
                "mx pattern",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: \nmax_age: 1\n",
                "mx pattern",
            ),
            (
                "version STSv1\nmode: enforce\nmx: a.test\nmax_age: 1\n",
                "line 1",
            ),
            ("<html>Not found</html>", "line 1"),
            ("", "no \"version\""),
        ];
        for (text, want) in cases {
            let err = Policy::parse(text).unwrap_err();
            assert_eq!(exit_code(&err), Exit::DataErr, "{text:?}");
            assert!(format!("{err:#}").contains(want), "{text:?}: {err:#}");
        }
    }

    #[test]
    fn mx_patterns_match_one_label_of_wildcard() {
        let p = policy(Mode::Enforce, &["mail.example.com", "*.example.net"], 1);
        let cases: &[(&str, bool)] = &[
            ("mail.example.com", true),
            ("MAIL.Example.Com", true),
            ("mail.example.com.", true),
            ("mx1.example.net", true),
            ("MX1.EXAMPLE.NET.", true),
            ("a.b.example.net", false),
            ("example.net", false),
            (".example.net", false),
            ("mx1.example.org", false),
            ("xmail.example.com", false),
            ("mail.example.com.evil.test", false),
            ("sub.mail.example.com", false),
            ("", false),
            (".", false),
        ];
        for (host, want) in cases {
            assert_eq!(p.allows(host), *want, "{host:?}");
        }
        assert!(!policy(Mode::None, &[], 1).allows("mail.example.com"));
    }

    #[test]
    fn txt_records_select_one_id() {
        let s = |list: &[&str]| list.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], Txt)] = &[
            (&[], Txt::Absent),
            (&["v=spf1 -all"], Txt::Absent),
            (
                &["v=STSv1; id=20160831085700Z;"],
                Txt::Id("20160831085700Z".into()),
            ),
            (&["v=STSv1;id=abc"], Txt::Id("abc".into())),
            (&["v=STSv1 ; id=abc ; ext=1"], Txt::Id("abc".into())),
            (&["v=STSv1; ext=x; id=A1"], Txt::Id("A1".into())),
            (&["v=spf1 -all", "v=STSv1; id=1"], Txt::Id("1".into())),
            (&["v=STSv10; id=1"], Txt::Absent),
        ];
        for (records, want) in cases {
            assert_eq!(&txt_policy_id(&s(records)), want, "{records:?}");
        }
        let invalid: &[&[&str]] = &[
            &["v=STSv1; id=1", "v=STSv1; id=2"],
            &["v=STSv1;"],
            &["v=STSv1"],
            &["v=STSv1; id="],
            &["v=STSv1; id=has-dash"],
            &["v=STSv1; id=123456789012345678901234567890123"],
            &["v=STSv1; id=1; garbage"],
        ];
        for records in invalid {
            assert!(
                matches!(txt_policy_id(&s(records)), Txt::Invalid(_)),
                "{records:?}"
            );
        }
    }

    #[test]
    fn url_bases() {
        type Case<'a> = (&'a str, Option<(&'a str, u16, &'a str)>);
        let cases: &[Case] = &[
            ("https://127.0.0.1:8443", Some(("127.0.0.1", 8443, ""))),
            ("https://localhost/sts/", Some(("localhost", 443, "/sts"))),
            ("https://[::1]:9443/x", Some(("::1", 9443, "/x"))),
            ("http://127.0.0.1", None),
            ("https://", None),
            ("https://h:0", None),
            ("https://h:99999", None),
            ("https://u@h", None),
            ("https://h/?q", None),
            ("https://[::1", None),
        ];
        for (base, want) in cases {
            let got = parse_url_base(base).ok();
            let want = want.map(|(h, p, x)| (h.to_string(), p, x.to_string()));
            assert_eq!(got, want, "{base}");
        }
        assert_eq!(authority("::1", 8443), "[::1]:8443");
        assert_eq!(authority("mta-sts.example.com", 443), "mta-sts.example.com");
    }

    #[test]
    fn cache_dirs_from_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        type Vars = &'static [(&'static str, &'static str)];
        let cases: &[(Vars, Option<&str>)] = &[
            (
                &[
                    ("POSTIE_CACHE_DIR", "/c"),
                    ("XDG_CACHE_HOME", "/x"),
                    ("HOME", "/h"),
                ],
                Some("/c/mta-sts"),
            ),
            (
                &[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")],
                Some("/x/postie/mta-sts"),
            ),
            (
                &[("XDG_CACHE_HOME", "relative"), ("HOME", "/h")],
                Some("/h/.cache/postie/mta-sts"),
            ),
            (
                &[("POSTIE_CACHE_DIR", ""), ("HOME", "/h")],
                Some("/h/.cache/postie/mta-sts"),
            ),
            (&[], None),
        ];
        for (vars, want) in cases {
            assert_eq!(
                crate::config::mta_sts_cache_dir(&env(vars)),
                want.map(PathBuf::from),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn cache_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("example.com");
        let mut p = policy(Mode::Enforce, &["mx.example.com", "*.example.net"], 600);
        p.id = "abc123".into();
        write_cache(&path, 1_700_000_000, &p).unwrap();
        assert_eq!(read_cache(&path).unwrap(), (1_700_000_000, p));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        for bad in [
            "",
            "something else\nfetched: 1\nid: a\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
            "postie-mta-sts-cache 1\nfetched: x\nid: a\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
            "postie-mta-sts-cache 1\nfetched: 1\n\nversion: STSv1\nmode: none\nmax_age: 1\n",
            "postie-mta-sts-cache 1\nfetched: 1\nid: a\n\nmode: none\n",
        ] {
            assert!(parse_cache(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cache_file_names_are_safe() {
        let f = Fetcher::new(None, None, Some("/c".into()), None, Duration::from_secs(1)).unwrap();
        assert_eq!(
            f.cache_file("example.com"),
            Some(PathBuf::from("/c/example.com"))
        );
        for bad in ["", "..", ".hidden", "a/b", "../x", "a b"] {
            assert_eq!(f.cache_file(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fetcher_refuses_bad_url_bases() {
        let err = Fetcher::new(
            None,
            Some("http://127.0.0.1".into()),
            None,
            None,
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert_eq!(exit_code(&err), Exit::Usage);
    }
}
