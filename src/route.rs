//! Where the message goes: the submission server's socket addresses, in the order the
//! resolver returns them (RFC 6724 sorting is the system resolver's). Direct MX delivery
//! will add its own route kind here.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use anyhow::Result;

use crate::config::{Security, Server};
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
        (Err(_), None) => (server.host.as_str(), server.port)
            .to_socket_addrs()
            .map_err(|e| Error::NoHost(format!("cannot resolve {}: {e}", server.host)))?
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

#[cfg(test)]
mod tests {
    use super::*;

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
