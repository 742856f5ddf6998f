//! DNS for direct delivery: the MX hosts of a mail domain, the addresses of a host, and
//! TXT records (the `_mta-sts` record of RFC 8461, read by [`crate::mta_sts`]).
//!
//! This is postie's only async code and its only hickory-resolver user. hickory-resolver
//! (0.25 and later) has no synchronous API, so each [`Resolver`] owns a private
//! current-thread tokio runtime and every public function blocks on it: the rest of the
//! crate stays plain std I/O and never sees a future. This module only asks questions; it
//! opens no SMTP connection and decides nothing about TLS.
//!
//! Routing rules (RFC 5321 §5.1): MX hosts are tried by preference, lowest first, and hosts
//! of equal preference in random order; a domain without MX records but with an A or AAAA
//! record is its own mail exchanger (the "implicit MX"). A null MX (`MX 0 .`, RFC 7505 §3)
//! says the domain accepts no mail, and a domain that does not exist (NXDOMAIN) cannot
//! either: both are permanent (EX_NOHOST, 68). A lookup that may succeed later (SERVFAIL,
//! REFUSED, no answer in time, resolver unreachable) is EX_TEMPFAIL (75). Address literals
//! (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, RFC 5321 §4.1.3) need no lookup at all.
//!
//! `--resolver IP[:PORT]` (or `POSTIE_RESOLVER`) points every lookup at one server, over UDP
//! with TCP for truncated answers, and then the hosts file is not read either: this is how
//! the tests answer from a DNS server of their own and never touch real DNS.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result};
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;

use crate::error::Error;

/// Default limit for one [`Resolver::mx`] or [`Resolver::addrs`] call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The DNS port `--resolver IP` means.
pub const DNS_PORT: u16 = 53;
/// Tries per query: hickory counts retries after the first try.
const RETRIES: usize = 2;
/// Longest wait for one answer before trying again (resolv.conf's default).
const MAX_TRY: Duration = Duration::from_secs(5);

/// A DNS resolver for one run: the system's configuration, or one server given by the user.
pub struct Resolver {
    // Declared before `runtime` so that the resolver, whose background tasks live on the
    // runtime, is dropped first.
    inner: TokioResolver,
    runtime: tokio::runtime::Runtime,
    server: Option<SocketAddr>,
    timeout: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("server", &self.server)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// `server`: None = the system configuration (/etc/resolv.conf); Some(addr) = only that
    /// server (UDP, and TCP when an answer is truncated), and no hosts file.
    ///
    /// `timeout` bounds each [`mx`](Self::mx) and [`addrs`](Self::addrs) call as a whole; a
    /// query unanswered for a third of it (at most 5 s) is sent again, twice at most.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Resolver> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("starting the DNS resolver")?;
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for conn in &mut ns.connections {
                    conn.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).map_err(|e| {
                Error::Config(format!(
                    "cannot read the system's DNS configuration (/etc/resolv.conf): {e}; \
                     name a DNS server with --resolver IP[:PORT]"
                ))
            })?,
        };
        let opts = builder.options_mut();
        opts.timeout = per_try(timeout);
        opts.attempts = RETRIES;
        if server.is_some() {
            opts.use_hosts_file = ResolveHosts::Never;
        }
        let inner = {
            let _context = runtime.enter();
            builder.build()
        }
        .map_err(|e| Error::Config(format!("cannot set up the DNS resolver: {e}")))?;
        Ok(Resolver {
            inner,
            runtime,
            server,
            timeout,
        })
    }

    /// MX hosts by preference (equal preferences shuffled); implicit MX [(0, domain)] when
    /// the domain has no MX but has A/AAAA; Err(NoHost) for null MX / NXDOMAIN / a domain
    /// with neither. An address literal is returned as its own host, `[(0, "[192.0.2.1]")]`,
    /// which [`addrs`](Self::addrs) understands. Host names come back in lower case, in
    /// ASCII (punycode for international names), without the final dot.
    pub fn mx(&self, domain: &str) -> Result<Vec<(u16, String)>> {
        if address_literal(domain).is_some() {
            return Ok(vec![(0, domain.to_string())]);
        }
        let name = query_name(domain)?;
        let shown = display_name(&name);
        let resolver = self.inner.clone();
        let what = format!("looking up the mail servers (MX) of {shown}");
        let answer = self.run(&what, async move {
            match resolver.lookup(name.clone(), RecordType::MX).await {
                Ok(lookup) => MxAnswer::Records(mx_records(&lookup)),
                Err(e) => match classify(&e) {
                    Miss::NoData => match lookup_addrs(&resolver, &name).await {
                        AddrAnswer::Found(_) => MxAnswer::Implicit,
                        AddrAnswer::Missing(miss) => MxAnswer::NoAddress(miss),
                    },
                    miss => MxAnswer::Missing(miss),
                },
            }
        })?;
        match answer {
            MxAnswer::Records(records) if records.is_empty() => {
                // A CNAME chain that ends without MX records: treat as "no MX" would need
                // another lookup of the chain's end; report it plainly instead.
                Err(Error::NoHost(format!("{shown} has no usable MX records")).into())
            }
            MxAnswer::Records(records) => {
                if records.iter().all(|(_, host)| host.is_empty()) {
                    return Err(Error::NoHost(format!(
                        "{shown} accepts no mail (null MX, RFC 7505)"
                    ))
                    .into());
                }
                let usable = records.into_iter().filter(|(_, h)| !h.is_empty()).collect();
                Ok(order(usable, &mut random_below))
            }
            MxAnswer::Implicit => Ok(vec![(0, shown)]),
            MxAnswer::Missing(miss) => Err(miss.into_error(&what, &shown)),
            MxAnswer::NoAddress(Miss::NoData) => Err(Error::NoHost(format!(
                "{shown} has no MX and no address (A/AAAA) records"
            ))
            .into()),
            MxAnswer::NoAddress(miss) => Err(miss.into_error(
                &format!("looking up the addresses of {shown} (it has no MX records)"),
                &shown,
            )),
        }
    }

    /// A and AAAA addresses of a host (AAAA first, then A), with `port`. An IP address or
    /// an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) is used as it is. Err(NoHost)
    /// when the host does not exist or has no address; when one family's lookup fails
    /// temporarily but the other answers, the answer is used.
    pub fn addrs(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        if let Some(ip) = address_literal(host).or_else(|| host.parse::<IpAddr>().ok()) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let name = query_name(host)?;
        let shown = display_name(&name);
        let resolver = self.inner.clone();
        let what = format!("looking up the addresses of {shown}");
        match self.run(&what, async move { lookup_addrs(&resolver, &name).await })? {
            AddrAnswer::Found(ips) => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            AddrAnswer::Missing(Miss::NoData) => {
                Err(Error::NoHost(format!("{shown} has no address (A/AAAA) records")).into())
            }
            AddrAnswer::Missing(miss) => Err(miss.into_error(&what, &shown)),
        }
    }

    /// The TXT records of `name` (e.g. `_mta-sts.example.com`, RFC 8461 §3.1), one string
    /// per record: its character-strings joined without separator (RFC 7208 §3.3 style),
    /// invalid UTF-8 replaced. A name that does not exist (NXDOMAIN) or has no TXT records
    /// answers `Ok(vec![])`; a temporary failure is Err(DnsTemporary).
    pub fn txt(&self, name: &str) -> Result<Vec<String>> {
        let query = query_name(name)?;
        let shown = display_name(&query);
        let resolver = self.inner.clone();
        let what = format!("looking up the TXT records of {shown}");
        let answer = self.run(&what, async move {
            match resolver.lookup(query, RecordType::TXT).await {
                Ok(lookup) => Ok(txt_records(&lookup)),
                Err(e) => Err(classify(&e)),
            }
        })?;
        match answer {
            Ok(records) => Ok(records),
            Err(Miss::NxDomain | Miss::NoData) => Ok(Vec::new()),
            Err(miss) => Err(miss.into_error(&what, &shown)),
        }
    }

    /// Runs `fut` on the private runtime, bounded by the timeout.
    fn run<T>(&self, what: &str, fut: impl Future<Output = T>) -> Result<T> {
        let limit = self.timeout;
        let outcome = self
            .runtime
            .block_on(async move { tokio::time::timeout(limit, fut).await });
        outcome.map_err(|_| {
            Error::DnsTemporary(format!(
                "{what}: no answer from DNS within {}",
                human_duration(limit)
            ))
            .into()
        })
    }
}

/// Convenience used by `--probe --mx`: the MX hosts of `domain`, asking `resolver` (or the
/// system's resolvers), with [`DEFAULT_TIMEOUT`].
pub fn mx_hosts(domain: &str, resolver: Option<SocketAddr>) -> Result<Vec<(u16, String)>> {
    Resolver::new(resolver, DEFAULT_TIMEOUT)?.mx(domain)
}

/// Parse `[192.0.2.1]` / `[IPv6:2001:db8::1]` domain literals (RFC 5321 §4.1.3; the tag is
/// case-insensitive). An IPv6 address without the tag, or any other tag, is not one.
pub fn address_literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
            inner.get(5..)?.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        }
        _ => inner.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// `--resolver`/`POSTIE_RESOLVER`: `IP`, `IP:PORT`, `[IPv6]`, `[IPv6]:PORT` or a bare IPv6
/// address; port 53 when none is given. The error says what is wrong, for the caller to
/// wrap with the flag's or variable's name.
pub fn parse_resolver(s: &str) -> std::result::Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return match addr.port() {
            0 => Err(format!("port 0 in {s:?}")),
            _ => Ok(addr),
        };
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| format!("not IP or IP:PORT: {s:?}"))
}

/// What an MX lookup found, before it becomes a result.
enum MxAnswer {
    /// (preference, host) with "" for the root (null MX).
    Records(Vec<(u16, String)>),
    /// No MX records, but the domain has an address.
    Implicit,
    Missing(Miss),
    /// No MX records, and looking for the domain's own address failed.
    NoAddress(Miss),
}

enum AddrAnswer {
    Found(Vec<IpAddr>),
    Missing(Miss),
}

/// Why a query gave no records.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Miss {
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// The name exists but has no record of the type asked for.
    NoData,
    /// Anything that may go away: SERVFAIL, REFUSED, timeouts, I/O errors.
    Temporary(String),
}

impl Miss {
    fn into_error(self, what: &str, name: &str) -> anyhow::Error {
        match self {
            Miss::NxDomain => Error::NoHost(format!("{name}: no such domain (NXDOMAIN)")).into(),
            Miss::NoData => Error::NoHost(format!("{what}: no records")).into(),
            Miss::Temporary(why) => Error::DnsTemporary(format!("{what}: {why}")).into(),
        }
    }

    /// When two lookups both found nothing: a temporary failure wins (it may have hidden
    /// records), then NXDOMAIN, then "no records".
    fn worse(self, other: Miss) -> Miss {
        match (self, other) {
            (t @ Miss::Temporary(_), _) | (_, t @ Miss::Temporary(_)) => t,
            (Miss::NxDomain, _) | (_, Miss::NxDomain) => Miss::NxDomain,
            _ => Miss::NoData,
        }
    }
}

fn classify(err: &NetError) -> Miss {
    match err {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code: ResponseCode::NXDomain,
            ..
        })) => Miss::NxDomain,
        NetError::Dns(DnsError::NoRecordsFound(_)) => Miss::NoData,
        NetError::Dns(DnsError::ResponseCode(code)) => {
            Miss::Temporary(format!("the DNS server answered {code}"))
        }
        NetError::Timeout => Miss::Temporary("no answer from DNS".into()),
        other => Miss::Temporary(other.to_string()),
    }
}

/// AAAA and A of `name`, asked at the same time.
async fn lookup_addrs(resolver: &TokioResolver, name: &Name) -> AddrAnswer {
    let v6 = {
        let resolver = resolver.clone();
        let name = name.clone();
        tokio::spawn(async move { resolver.lookup(name, RecordType::AAAA).await })
    };
    let v4 = resolver.lookup(name.clone(), RecordType::A).await;
    let v6 = match v6.await {
        Ok(result) => result,
        Err(e) => Err(NetError::Msg(format!("AAAA lookup task failed: {e}"))),
    };
    let mut ips = Vec::new();
    let mut miss: Option<Miss> = None;
    for result in [v6, v4] {
        match result {
            Ok(lookup) => ips.extend(addresses(&lookup)),
            Err(e) => {
                let m = classify(&e);
                miss = Some(match miss {
                    Some(prev) => prev.worse(m),
                    None => m,
                });
            }
        }
    }
    if !ips.is_empty() {
        AddrAnswer::Found(ips)
    } else {
        AddrAnswer::Missing(miss.unwrap_or(Miss::NoData))
    }
}

fn addresses(lookup: &Lookup) -> Vec<IpAddr> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// Each TXT record as one string: its character-strings concatenated.
fn txt_records(lookup: &Lookup) -> Vec<String> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part))
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

/// (preference, host) of each MX record; the root (null MX) becomes "".
fn mx_records(lookup: &Lookup) -> Vec<(u16, String)> {
    lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, display_name(&mx.exchange))),
            _ => None,
        })
        .collect()
}

/// Lower-case ASCII without the final dot; "" for the root.
fn display_name(name: &Name) -> String {
    name.to_lowercase()
        .to_ascii()
        .trim_end_matches('.')
        .to_string()
}

/// A mail domain or host name as an absolute DNS name: no search list, no ndots guessing.
/// International names become punycode (IDNA).
fn query_name(domain: &str) -> Result<Name> {
    let bad = |why: &str| Error::Data(format!("{domain:?} is not a valid domain name: {why}"));
    let d = domain.strip_suffix('.').unwrap_or(domain);
    if d.is_empty() {
        return Err(bad("empty").into());
    }
    if d.split('.').any(str::is_empty) {
        return Err(bad("empty label").into());
    }
    if let Some(c) = d
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(bad(&format!("{c:?} not allowed")).into());
    }
    let mut name = Name::from_utf8(d).map_err(|e| bad(&e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Sort by preference, drop repeated hosts (keeping the most preferred), and shuffle each
/// run of equal preference (RFC 5321 §5.1). `below(n)` picks a number in `0..n`.
fn order(
    mut records: Vec<(u16, String)>,
    below: &mut dyn FnMut(usize) -> usize,
) -> Vec<(u16, String)> {
    records.sort_by_key(|(pref, _)| *pref);
    let mut seen = std::collections::HashSet::new();
    records.retain(|(_, host)| seen.insert(host.clone()));
    let mut start = 0;
    while start < records.len() {
        let pref = records.get(start).map(|(p, _)| *p);
        let end = records
            .iter()
            .skip(start)
            .position(|(p, _)| Some(*p) != pref)
            .map_or(records.len(), |n| start + n);
        if let Some(run) = records.get_mut(start..end) {
            // Fisher-Yates.
            for i in (1..run.len()).rev() {
                run.swap(i, below(i + 1).min(i));
            }
        }
        start = end;
    }
    records
}

/// A random number in `0..n` from the system's generator (0 if it fails: no shuffle).
fn random_below(n: usize) -> usize {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    if n == 0 || ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return 0;
    }
    u32::from_le_bytes(bytes) as usize % n
}

/// How long one try may wait: a third of the call's limit, at most [`MAX_TRY`].
fn per_try(timeout: Duration) -> Duration {
    (timeout / (RETRIES as u32 + 1)).min(MAX_TRY)
}

fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};
    use hickory_resolver::proto::op::Query;

    #[test]
    fn address_literals() {
        let cases: &[(&str, Option<&str>)] = &[
            ("[192.0.2.1]", Some("192.0.2.1")),
            ("[IPv6:2001:db8::1]", Some("2001:db8::1")),
            ("[ipv6:2001:DB8::1]", Some("2001:db8::1")),
            ("[IPV6:::1]", Some("::1")),
            ("[IPv6:::ffff:192.0.2.1]", Some("::ffff:192.0.2.1")),
            ("[2001:db8::1]", None),
            ("[IPv6:192.0.2.1]", None),
            ("[192.0.2.256]", None),
            ("[192.0.2]", None),
            ("[012.0.2.1]", None),
            ("192.0.2.1", None),
            ("[192.0.2.1", None),
            ("[]", None),
            ("[IPv6:]", None),
            ("[IPv6:fe80::1%eth0]", None),
            ("[x-tag:foo]", None),
            ("example.com", None),
            ("[é]", None),
        ];
        for (text, want) in cases {
            let want = want.map(|w| w.parse::<IpAddr>().unwrap());
            assert_eq!(address_literal(text), want, "{text}");
        }
    }

    #[test]
    fn resolver_addresses() {
        let cases: &[(&str, Option<&str>)] = &[
            ("127.0.0.1", Some("127.0.0.1:53")),
            ("127.0.0.1:5353", Some("127.0.0.1:5353")),
            (" 10.0.0.1 ", Some("10.0.0.1:53")),
            ("::1", Some("[::1]:53")),
            ("[::1]", Some("[::1]:53")),
            ("[::1]:5300", Some("[::1]:5300")),
            ("127.0.0.1:0", None),
            ("127.0.0.1:99999", None),
            ("localhost", None),
            ("dns.example:53", None),
            ("", None),
            ("[::1", None),
        ];
        for (text, want) in cases {
            let want = want.map(|w| w.parse::<SocketAddr>().unwrap());
            assert_eq!(parse_resolver(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn query_names_are_absolute_and_checked() {
        let ok: &[(&str, &str)] = &[
            ("example.com", "example.com."),
            ("Example.COM.", "example.com."),
            ("bücher.example", "xn--bcher-kva.example."),
            ("_srv.example", "_srv.example."),
            ("localhost", "localhost."),
        ];
        for (input, want) in ok {
            let name = query_name(input).unwrap();
            assert!(name.is_fqdn(), "{input}");
            assert_eq!(name.to_ascii(), *want, "{input}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            "a b",
            "a/b",
            "a@b",
            "exa\nmple.com",
            "[1.2.3.4",
        ] {
            let err = query_name(bad).unwrap_err();
            assert_eq!(exit_code(&err), Exit::DataErr, "{bad:?}");
        }
    }

    #[test]
    fn mx_order_by_preference_then_shuffled_within() {
        let recs = |list: &[(u16, &str)]| -> Vec<(u16, String)> {
            list.iter().map(|(p, h)| (*p, h.to_string())).collect()
        };
        // below(n) = 0 always: Fisher-Yates with j=0 rotates each run left by one.
        type Case<'a> = (&'a [(u16, &'a str)], &'a [(u16, &'a str)]);
        let cases: &[Case] = &[
            (&[], &[]),
            (&[(10, "a")], &[(10, "a")]),
            (
                &[(20, "b"), (10, "a"), (30, "c")],
                &[(10, "a"), (20, "b"), (30, "c")],
            ),
            (
                &[(10, "a"), (10, "b"), (5, "z")],
                &[(5, "z"), (10, "b"), (10, "a")],
            ),
            (
                &[(10, "a"), (10, "b"), (10, "c"), (20, "d")],
                &[(10, "b"), (10, "c"), (10, "a"), (20, "d")],
            ),
            // A host listed twice keeps its best preference.
            (&[(20, "a"), (10, "a"), (15, "b")], &[(10, "a"), (15, "b")]),
        ];
        for (input, want) in cases {
            let got = order(recs(input), &mut |_| 0);
            assert_eq!(got, recs(want), "{input:?}");
        }
        // below(n) = n-1 (j = i): no swap, order as sorted.
        let got = order(recs(&[(10, "a"), (10, "b"), (10, "c")]), &mut |n| n - 1);
        assert_eq!(got, recs(&[(10, "a"), (10, "b"), (10, "c")]));
        // An out-of-range pick from a bad generator cannot panic.
        let got = order(recs(&[(10, "a"), (10, "b")]), &mut |_| usize::MAX);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn random_below_stays_in_range_and_varies() {
        let picks: Vec<usize> = (0..200).map(|_| random_below(3)).collect();
        assert!(picks.iter().all(|&p| p < 3));
        for v in 0..3 {
            assert!(picks.contains(&v), "{v} never picked in 200 draws");
        }
        assert_eq!(random_below(0), 0);
        assert_eq!(random_below(1), 0);
    }

    #[test]
    fn lookup_errors_are_classified() {
        let q = || Query::query(Name::from_ascii("x.test.").unwrap(), RecordType::MX);
        let cases: Vec<(NetError, Miss)> = vec![
            (
                DnsError::NoRecordsFound(NoRecords::new(q(), ResponseCode::NXDomain)).into(),
                Miss::NxDomain,
            ),
            (
                DnsError::NoRecordsFound(NoRecords::new(q(), ResponseCode::NoError)).into(),
                Miss::NoData,
            ),
            (
                DnsError::ResponseCode(ResponseCode::ServFail).into(),
                Miss::Temporary("the DNS server answered Server Failure".into()),
            ),
            (
                NetError::Timeout,
                Miss::Temporary("no answer from DNS".into()),
            ),
            (
                NetError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                Miss::Temporary(
                    NetError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
                        .to_string(),
                ),
            ),
        ];
        for (err, want) in cases {
            assert_eq!(classify(&err), want, "{err:?}");
        }
    }

    #[test]
    fn misses_map_to_exit_codes() {
        let cases = [
            (Miss::NxDomain, Exit::NoHost),
            (Miss::NoData, Exit::NoHost),
            (Miss::Temporary("SERVFAIL".into()), Exit::TempFail),
        ];
        for (miss, want) in cases {
            assert_eq!(
                exit_code(&miss.clone().into_error("q", "x.test")),
                want,
                "{miss:?}"
            );
        }
        let t = || Miss::Temporary("t".into());
        assert_eq!(Miss::NoData.worse(t()), t());
        assert_eq!(Miss::NxDomain.worse(t()), t());
        assert_eq!(Miss::NoData.worse(Miss::NxDomain), Miss::NxDomain);
        assert_eq!(Miss::NoData.worse(Miss::NoData), Miss::NoData);
    }

    #[test]
    fn per_try_is_a_third_capped() {
        assert_eq!(per_try(Duration::from_secs(30)), Duration::from_secs(5));
        assert_eq!(
            per_try(Duration::from_millis(600)),
            Duration::from_millis(200)
        );
        assert_eq!(human_duration(Duration::from_millis(600)), "600 ms");
        assert_eq!(human_duration(Duration::from_secs(30)), "30 s");
    }

    #[test]
    fn literals_and_ips_need_no_server() {
        // A resolver pointed at a port nothing listens on: any query would fail.
        let r = Resolver::new(
            Some("127.0.0.1:9".parse().unwrap()),
            Duration::from_millis(300),
        )
        .unwrap();
        assert_eq!(
            r.mx("[192.0.2.1]").unwrap(),
            [(0, "[192.0.2.1]".to_string())]
        );
        let cases: &[(&str, &str)] = &[
            ("[192.0.2.1]", "192.0.2.1:25"),
            ("[IPv6:2001:db8::1]", "[2001:db8::1]:25"),
            ("198.51.100.7", "198.51.100.7:25"),
            ("::1", "[::1]:25"),
        ];
        for (host, want) in cases {
            assert_eq!(
                r.addrs(host, 25).unwrap(),
                [want.parse::<SocketAddr>().unwrap()],
                "{host}"
            );
        }
        let err = r.mx("bad domain").unwrap_err();
        assert_eq!(exit_code(&err), Exit::DataErr);
    }
}
