//! MTA-STS (RFC 8461): whether a recipient domain asks senders to deliver only to named MX
//! hosts over TLS with a verified certificate, and which hosts those are.
//!
//! Owns: reading the `_mta-sts.DOMAIN` TXT record (§3.1), fetching the policy from
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` (§3.3), parsing it (§3.2), matching MX
//! host names against its patterns (§4.1), and the policy cache under the user's cache
//! directory (§3.3, §5.1). This is postie's only HTTP: a minimal HTTP/1.1 GET over
//! `rustls::StreamOwned` with the run's own rustls configuration (WebPKI roots plus
//! `--tls-ca`), because no maintained small blocking client takes a ready
//! `rustls::ClientConfig` (ureq 3 builds its own from roots and a provider). It follows no
//! redirect, reads at most [`MAX_BODY`] bytes, and wants `200` with `text/plain`.
//!
//! Must not: decide how delivery reacts. [`Fetcher::policy`] only says what the domain
//! published; the caller restricts MX hosts with [`Policy::allows`] and requires verified
//! TLS in `enforce` mode, and only reports in `testing` mode (§5). A fetch that fails
//! without a fresh cached policy is an `Err` the caller reports and then delivers as if
//! the domain had no policy (§5.1: "MUST continue with delivery as though the domain has
//! not implemented MTA-STS"); it must not turn that into a failed delivery.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use rustls::{ClientConnection, StreamOwned};

use crate::config::parse_url_base;
use crate::error::Error;
use crate::net::tls::{server_name, Tls};

/// The longest policy body read (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_BODY: usize = 64 * 1024;
/// The largest `max_age` honoured: one year (RFC 8461 §3.2); larger values are capped.
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// Longest status line plus headers read before giving up.
const MAX_HEAD: usize = 16 * 1024;
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
    tls: Tls,
    timeout: Duration,
}

impl Fetcher {
    /// `resolver`: the DNS server for the TXT record and the policy host (None = the
    /// system's). `url_base` (`--mta-sts-url-base`, for tests): fetch
    /// `URL_BASE/DOMAIN/.well-known/mta-sts.txt` instead; it must be `https://HOST[:PORT]`
    /// with an optional path, else EX_USAGE. `cache_dir`: the directory of cached policies
    /// (see [`crate::config::mta_sts_cache_dir`]); None = no cache. `tls` must verify certificates: the policy is
    /// only as good as its certificate (RFC 8461 §3.3), so a `--tls-no-verify` set-up is
    /// refused here (EX_USAGE); build one with `Tls::new(ca, true)`. `timeout` bounds the
    /// DNS lookups and the connect, and each read and write of the fetch.
    pub fn new(
        resolver: Option<SocketAddr>,
        url_base: Option<String>,
        cache_dir: Option<PathBuf>,
        tls: Tls,
        timeout: Duration,
    ) -> Result<Fetcher> {
        if !tls.verify {
            return Err(Error::Usage(
                "MTA-STS needs certificate verification; it cannot run with --tls-no-verify".into(),
            )
            .into());
        }
        if let Some(base) = &url_base {
            parse_url_base(base).map_err(|e| Error::Usage(format!("--mta-sts-url-base: {e}")))?;
        }
        Ok(Fetcher {
            resolver,
            url_base,
            cache_dir,
            tls,
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
        let deadline = Instant::now() + self.timeout;
        let addrs = resolver.addrs(&host, port)?;
        let tcp = connect(&addrs, deadline).with_context(|| format!("connecting to {url}"))?;
        tcp.set_read_timeout(Some(self.timeout))?;
        tcp.set_write_timeout(Some(self.timeout))?;
        let conn = ClientConnection::new(Arc::clone(&self.tls.config), server_name(&host)?)
            .map_err(|e| anyhow!("TLS set-up for {host}: {e}"))?;
        let mut stream = StreamOwned::new(conn, tcp);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: postie/{}\r\n\
             Accept: text/plain\r\nConnection: close\r\n\r\n",
            authority(&host, port),
            env!("CARGO_PKG_VERSION")
        );
        let io = |e: std::io::Error| self.io_error(&host, &url, e);
        stream.write_all(request.as_bytes()).map_err(io)?;
        stream.flush().map_err(io)?;
        let response = read_response(&mut stream, deadline).map_err(|e| match e {
            ReadError::Io(e) => io(e),
            ReadError::Http(why) => anyhow!("{url}: {why}"),
        })?;
        check_response(&response).map_err(|why| anyhow!("{url}: {why}"))?;
        String::from_utf8(response.body).map_err(|_| anyhow!("{url}: the policy is not UTF-8"))
    }

    /// An I/O error of the fetch, in words: a refused certificate names the certificate.
    fn io_error(&self, host: &str, url: &str, e: std::io::Error) -> anyhow::Error {
        let tls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls {
            Some(err) => self.tls.handshake_error(host, err).into(),
            None => anyhow!("{url}: {e}"),
        }
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

fn connect(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    Err(anyhow!(last.unwrap_or_else(|| "no address in time".into())))
}

/// A response: status, headers (names in lower case), body.
#[derive(Debug, Default)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    Http(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Read the status line, headers and body (Content-Length, chunked, or up to a clean
/// close), never more than [`MAX_HEAD`] + [`MAX_BODY`] bytes, nor past `deadline`.
fn read_response(stream: &mut impl Read, deadline: Instant) -> Result<Response, ReadError> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Http("response headers too long".into()));
        }
        if fill(stream, &mut buf, deadline)? == 0 {
            return Err(ReadError::Http(
                "connection closed before the headers ended".into(),
            ));
        }
    };
    let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).into_owned();
    let mut body = buf.get(head_end + 4..).unwrap_or_default().to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status(status_line)
        .ok_or_else(|| ReadError::Http(format!("not an HTTP status line: {status_line:?}")))?;
    let mut response = Response {
        status,
        ..Response::default()
    };
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ReadError::Http(format!("bad header line {line:?}")))?;
        response
            .headers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    if status != 200 {
        // Only the status matters then; the body is not read.
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let too_big = || ReadError::Http(format!("policy larger than {MAX_BODY} bytes"));
    if chunked {
        response.body = read_chunked(stream, body, deadline)?;
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| ReadError::Http(format!("bad Content-Length {len:?}")))?;
        if len > MAX_BODY {
            return Err(too_big());
        }
        while body.len() < len {
            if fill(stream, &mut body, deadline)? == 0 {
                return Err(ReadError::Http(
                    "connection closed before the body ended".into(),
                ));
            }
        }
        body.truncate(len);
        response.body = body;
    } else {
        // Up to the close, which must be a TLS close_notify (rustls reports an unclean
        // end as UnexpectedEof, which stays an error: the body may be cut short).
        loop {
            if body.len() > MAX_BODY {
                return Err(too_big());
            }
            if fill(stream, &mut body, deadline)? == 0 {
                break;
            }
        }
        response.body = body;
    }
    Ok(response)
}

/// Decode a chunked body, `buf` holding what was already read after the headers.
fn read_chunked(
    stream: &mut impl Read,
    mut buf: Vec<u8>,
    deadline: Instant,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf, b"\r\n") {
                break i;
            }
            if buf.len() > 1024 {
                return Err(ReadError::Http("bad chunk size line".into()));
            }
            if fill(stream, &mut buf, deadline)? == 0 {
                return Err(ReadError::Http("connection closed inside a chunk".into()));
            }
        };
        let line = String::from_utf8_lossy(buf.get(..line_end).unwrap_or_default()).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Http(format!("bad chunk size {size_text:?}")))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(ReadError::Http(format!(
                "policy larger than {MAX_BODY} bytes"
            )));
        }
        while buf.len() < size + 2 {
            if fill(stream, &mut buf, deadline)? == 0 {
                return Err(ReadError::Http("connection closed inside a chunk".into()));
            }
        }
        body.extend_from_slice(buf.get(..size).unwrap_or_default());
        if buf.get(size..size + 2) != Some(b"\r\n") {
            return Err(ReadError::Http("chunk not followed by CRLF".into()));
        }
        buf.drain(..size + 2);
    }
}

/// Read once more into `buf`; 0 at the end of the stream.
fn fill(stream: &mut impl Read, buf: &mut Vec<u8>, deadline: Instant) -> std::io::Result<usize> {
    if Instant::now() >= deadline {
        return Err(std::io::Error::new(
            ErrorKind::TimedOut,
            "no complete answer in time",
        ));
    }
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk)?;
    buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.x NNN reason` → NNN.
fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// RFC 8461 §3.3: 200 only (a redirect is not followed), media type text/plain.
fn check_response(response: &Response) -> std::result::Result<(), String> {
    match response.status {
        200 => {}
        300..=399 => {
            let to = response.header("location").unwrap_or("nowhere");
            return Err(format!(
                "redirected ({}) to {to}; MTA-STS forbids following redirects (RFC 8461 §3.3)",
                response.status
            ));
        }
        other => return Err(format!("HTTP status {other}, not 200")),
    }
    let media = response
        .header("content-type")
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
        let tls = Tls::new(None, true).unwrap();
        let f = Fetcher::new(None, None, Some("/c".into()), tls, Duration::from_secs(1)).unwrap();
        assert_eq!(
            f.cache_file("example.com"),
            Some(PathBuf::from("/c/example.com"))
        );
        for bad in ["", "..", ".hidden", "a/b", "../x", "a b"] {
            assert_eq!(f.cache_file(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fetcher_refuses_unverified_tls_and_bad_url_bases() {
        let err = Fetcher::new(
            None,
            None,
            None,
            Tls::new(None, false).unwrap(),
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert_eq!(exit_code(&err), Exit::Usage);
        let err = Fetcher::new(
            None,
            Some("http://127.0.0.1".into()),
            None,
            Tls::new(None, true).unwrap(),
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert_eq!(exit_code(&err), Exit::Usage);
    }

    fn response(raw: &str) -> Result<Response, ReadError> {
        let far = Instant::now() + Duration::from_secs(5);
        read_response(&mut raw.as_bytes(), far)
    }

    #[test]
    fn responses_are_read_and_checked() {
        let ok = "version: STSv1\nmode: none\nmax_age: 1\n";
        let cases: &[(&str, std::result::Result<&str, &str>)] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 37\r\n\r\nversion: STSv1\nmode: none\nmax_age: 1\nEXTRA",
                Ok(ok),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nversi\r\n20;x=y\r\non: STSv1\nmode: none\nmax_age: 1\n\r\n0\r\n\r\n",
                Ok(ok),
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-type: TEXT/PLAIN\r\n\r\nversion: STSv1\nmode: none\nmax_age: 1\n",
                Ok(ok),
            ),
            ("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n", Err("HTTP status 404")),
            (
                "HTTP/1.1 301 Moved\r\nLocation: https://evil.test/\r\n\r\n",
                Err("forbids following redirects"),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n",
                Err("not text/plain"),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                Err("no content type"),
            ),
        ];
        for (raw, want) in cases {
            let got = response(raw).map_err(|e| format!("{e:?}")).and_then(|r| {
                check_response(&r)?;
                Ok(String::from_utf8(r.body).unwrap())
            });
            match (got, want) {
                (Ok(body), Ok(want)) => assert_eq!(body, *want, "{raw:?}"),
                (Err(e), Err(want)) => assert!(e.contains(want), "{raw:?}: {e}"),
                (got, _) => panic!("{raw:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn broken_and_oversized_responses_are_errors() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let unbounded = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{}",
            "x".repeat(MAX_BODY + 10)
        );
        let big_chunk = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY + 1
        );
        let cases: Vec<(String, &str)> = vec![
            (big, "larger than"),
            (unbounded, "larger than"),
            (big_chunk, "larger than"),
            ("SMTP 220 hello\r\n\r\n".into(), "not an HTTP status line"),
            (
                "HTTP/1.1 200 OK\r\nno colon\r\n\r\n".into(),
                "bad header line",
            ),
            ("HTTP/1.1 200 OK\r\n".into(), "before the headers ended"),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort".into(),
                "before the body ended",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".into(),
                "bad Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".into(),
                "bad chunk size",
            ),
            (
                format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "y".repeat(MAX_HEAD + 10)),
                "too long",
            ),
        ];
        for (raw, want) in cases {
            let err = format!("{:?}", response(&raw).unwrap_err());
            assert!(
                err.contains(want),
                "{}: {err}",
                raw.get(..60).unwrap_or(&raw)
            );
        }
    }

    #[test]
    fn status_lines() {
        let cases: &[(&str, Option<u16>)] = &[
            ("HTTP/1.1 200 OK", Some(200)),
            ("HTTP/1.0 404 Not Found", Some(404)),
            ("HTTP/1.1 200", Some(200)),
            ("HTTP/2 200 OK", None),
            ("HTTP/1.1 2000 OK", None),
            ("HTTP/1.1 abc OK", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_status(line), *want, "{line:?}");
        }
    }
}
