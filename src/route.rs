//! Where the message goes: the submission server's socket addresses, in the order the
//! resolver returns them (RFC 6724 sorting is the system resolver's); or, for direct
//! delivery, the envelope's recipients grouped by domain and each domain's mail exchangers
//! (RFC 5321 §5.1: MX hosts by preference, the implicit MX, address literals). The DNS
//! questions are `dns`'s; this module connects to nothing.

use std::net::{IpAddr, SocketAddr};

use anyhow::Result;

use crate::config::{Family, Security, Server};
use crate::dns::Resolver;
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub addrs: Vec<SocketAddr>,
}

/// Resolve the server. An IP address is used as it is; with `resolver` (--resolver) the
/// name is looked up there, else with the system's resolver.
pub fn submission(
    server: &Server,
    security: Security,
    resolver: Option<SocketAddr>,
    timeout: std::time::Duration,
) -> Result<Route> {
    let addrs = match (server.host.parse::<IpAddr>(), resolver) {
        (Ok(ip), _) => vec![SocketAddr::new(ip, server.port)],
        (Err(_), Some(dns)) => {
            crate::dns::Resolver::new(Some(dns), timeout)?.addrs(&server.host, server.port)?
        }
        (Err(_), None) => system_lookup(&server.host)?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, server.port))
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Error::NoHost(format!("{} has no address", server.host)).into());
    }
    Ok(Route {
        host: server.host.clone(),
        port: server.port,
        security,
        addrs,
    })
}

/// The system resolver's addresses for `host` (getaddrinfo: /etc/hosts, nsswitch, DNS),
/// in its order. The answer decides the exit code as the MX route's lookups do: a name
/// that does not exist (or has no address) is NoHost (68); a lookup that may work later —
/// EAI_AGAIN (no resolver answered, SERVFAIL), or a local failure (EAI_SYSTEM, memory) —
/// is DnsTemporary (75), so the message is queued rather than given up.
fn system_lookup(host: &str) -> Result<Vec<IpAddr>> {
    use dns_lookup::LookupErrorKind as Kind;
    match dns_lookup::lookup_host(host) {
        Ok(ips) => {
            let mut unique: Vec<IpAddr> = Vec::new();
            for ip in ips {
                if !unique.contains(&ip) {
                    unique.push(ip);
                }
            }
            Ok(unique)
        }
        Err(e) => {
            let kind = e.kind();
            let why = std::io::Error::from(e);
            Err(match kind {
                Kind::Again | Kind::System | Kind::Memory | Kind::IO | Kind::Unknown => {
                    Error::DnsTemporary(format!(
                        "cannot resolve {host} now (temporary failure: {why}); try again later"
                    ))
                }
                _ => Error::NoHost(format!("cannot resolve {host}: {why}")),
            }
            .into())
        }
    }
}

/// One recipient domain of the envelope, and its recipients in envelope order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// As first written in the envelope (an address literal keeps its brackets).
    pub name: String,
    pub recipients: Vec<String>,
}

/// Group forward-paths by domain (the part after the last `@`, compared case-insensitively),
/// in the order the domains first appear. A path without `@` is grouped under "".
pub fn by_domain(forward_paths: &[String]) -> Vec<Domain> {
    let mut domains: Vec<Domain> = Vec::new();
    for path in forward_paths {
        let name = path.rsplit_once('@').map_or("", |(_, d)| d);
        match domains
            .iter_mut()
            .find(|d| d.name.eq_ignore_ascii_case(name))
        {
            Some(d) => d.recipients.push(path.clone()),
            None => domains.push(Domain {
                name: name.to_string(),
                recipients: vec![path.clone()],
            }),
        }
    }
    domains
}

/// One mail exchanger of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    pub preference: u16,
    /// Lower-case host name, or an address literal (`[192.0.2.1]`).
    pub host: String,
}

/// The mail exchangers of `domain`, most preferred first (see [`Resolver::mx`]): NoHost (68)
/// for a null MX, NXDOMAIN or a domain with no address; DnsTemporary (75) for SERVFAIL and
/// timeouts.
pub fn mx_hosts(resolver: &Resolver, domain: &str) -> Result<Vec<MxHost>> {
    if domain.is_empty() {
        return Err(Error::Data("a recipient has no domain".into()).into());
    }
    Ok(resolver
        .mx(domain)?
        .into_iter()
        .map(|(preference, host)| MxHost { preference, host })
        .collect())
}

/// The socket addresses of one MX host on `port`, keeping only the families `family`
/// allows.
pub fn host_addrs(
    resolver: &Resolver,
    host: &str,
    port: u16,
    family: Family,
) -> Result<Vec<SocketAddr>> {
    let all = resolver.addrs(host, port)?;
    let kept = only(all, family);
    if kept.is_empty() {
        let which = match family {
            Family::V4 => "IPv4 ",
            Family::V6 => "IPv6 ",
            Family::Any => "",
        };
        return Err(Error::NoHost(format!("{host} has no {which}address")).into());
    }
    Ok(kept)
}

/// The addresses `family` allows, in their order.
pub fn only(addrs: Vec<SocketAddr>, family: Family) -> Vec<SocketAddr> {
    addrs
        .into_iter()
        .filter(|a| family.allows(a.ip()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_grouped_by_domain_case_insensitively() {
        let paths: Vec<String> = [
            "a@one.example",
            "b@Two.example",
            "c@ONE.example",
            "d@[192.0.2.1]",
            "e@two.example",
            "local",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got: Vec<(String, Vec<String>)> = by_domain(&paths)
            .into_iter()
            .map(|d| (d.name, d.recipients))
            .collect();
        let want: Vec<(String, Vec<String>)> = vec![
            (
                "one.example".into(),
                vec!["a@one.example".into(), "c@ONE.example".into()],
            ),
            (
                "Two.example".into(),
                vec!["b@Two.example".into(), "e@two.example".into()],
            ),
            ("[192.0.2.1]".into(), vec!["d@[192.0.2.1]".into()]),
            ("".into(), vec!["local".into()]),
        ];
        assert_eq!(got, want);
        assert!(by_domain(&[]).is_empty());
    }

    #[test]
    fn families_filter_addresses() {
        let addrs: Vec<SocketAddr> = vec![
            "[2001:db8::1]:25".parse().unwrap(),
            "192.0.2.1:25".parse().unwrap(),
        ];
        let cases = [
            (Family::Any, vec![addrs[0], addrs[1]]),
            (Family::V4, vec![addrs[1]]),
            (Family::V6, vec![addrs[0]]),
        ];
        for (family, want) in cases {
            assert_eq!(only(addrs.clone(), family), want, "{family:?}");
        }
    }

    #[test]
    fn literals_route_without_dns() {
        // An unreachable resolver: a literal must never ask it.
        let r = Resolver::new(
            Some("127.0.0.1:9".parse().unwrap()),
            std::time::Duration::from_millis(300),
        )
        .unwrap();
        let hosts = mx_hosts(&r, "[IPv6:2001:db8::1]").unwrap();
        assert_eq!(hosts.len(), 1);
        let addrs = host_addrs(&r, &hosts[0].host, 2525, Family::Any).unwrap();
        assert_eq!(addrs, ["[2001:db8::1]:2525".parse::<SocketAddr>().unwrap()]);
        let err = host_addrs(&r, "[192.0.2.1]", 25, Family::V6).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::NoHost);
        let err = mx_hosts(&r, "").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::DataErr);
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        let r = submission(
            &Server {
                host: "::1".into(),
                port: 2525,
            },
            Security::Plain,
            None,
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.addrs, ["[::1]:2525".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn localhost_resolves_to_loopback() {
        let r = submission(
            &Server {
                host: "localhost".into(),
                port: 25,
            },
            Security::Plain,
            None,
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        assert!(
            r.addrs.iter().all(|a| a.ip().is_loopback()),
            "{:?}",
            r.addrs
        );
    }
}
