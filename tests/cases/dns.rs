//! MX and address lookups (`postie::dns`) against the in-process test DNS server: ordering
//! by preference, implicit MX, null MX, NXDOMAIN, SERVFAIL, a server that never answers,
//! A/AAAA and address literals. No test here touches real DNS.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use postie::dns::{mx_hosts, Resolver};
use postie::error::{exit_code, Exit};

use crate::support::dns_server::{DnsServer, Zone};

fn resolver(dns: &DnsServer) -> Resolver {
    Resolver::new(Some(dns.addr()), Duration::from_secs(5)).unwrap()
}

fn hosts(list: &[(u16, &str)]) -> Vec<(u16, String)> {
    list.iter().map(|(p, h)| (*p, h.to_string())).collect()
}

#[test]
fn mx_hosts_come_best_preference_first() {
    let dns = Zone::new()
        .mx(
            "example.test",
            &[
                (30, "mx3.example.test"),
                (10, "MX1.Example.Test"),
                (20, "mx2.example.test"),
            ],
        )
        .start();
    let got = resolver(&dns).mx("example.test").unwrap();
    assert_eq!(
        got,
        hosts(&[
            (10, "mx1.example.test"),
            (20, "mx2.example.test"),
            (30, "mx3.example.test")
        ])
    );
    // Absolute name, no search list: exactly one question, to our server.
    assert_eq!(
        dns.queries(),
        [("example.test".to_string(), RecordType::MX)]
    );
}

#[test]
fn equal_preferences_are_all_kept_in_random_order() {
    let dns = Zone::new()
        .mx(
            "example.test",
            &[
                (10, "a.example.test"),
                (20, "c.example.test"),
                (10, "b.example.test"),
            ],
        )
        .start();
    let r = resolver(&dns);
    let mut firsts = HashSet::new();
    for _ in 0..40 {
        let got = r.mx("example.test").unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        let top: HashSet<&str> = got[..2].iter().map(|(_, h)| h.as_str()).collect();
        assert_eq!(top, HashSet::from(["a.example.test", "b.example.test"]));
        assert!(got[..2].iter().all(|(p, _)| *p == 10));
        assert_eq!(got[2], (20, "c.example.test".to_string()));
        firsts.insert(got[0].1.clone());
    }
    // 40 shuffles of two hosts: both lead at some point (chance of failing: 2^-39).
    assert_eq!(firsts.len(), 2, "never shuffled: {firsts:?}");
}

#[test]
fn without_mx_the_domain_itself_is_the_mail_exchanger() {
    let dns = Zone::new()
        .a("v4.test", "192.0.2.10")
        .aaaa("v6.test", "2001:db8::10")
        .empty("nothing.test")
        .start();
    let r = resolver(&dns);
    assert_eq!(r.mx("v4.test").unwrap(), hosts(&[(0, "v4.test")]));
    assert_eq!(r.mx("V6.Test.").unwrap(), hosts(&[(0, "v6.test")]));
    // No MX and no address: nowhere to deliver, permanently.
    let err = r.mx("nothing.test").unwrap_err();
    assert_eq!(exit_code(&err), Exit::NoHost, "{err:#}");
    assert!(
        format!("{err:#}").contains("no MX and no address"),
        "{err:#}"
    );
}

#[test]
fn null_mx_is_a_permanent_failure() {
    let dns = Zone::new()
        .null_mx("nomail.test")
        .a("nomail.test", "192.0.2.20")
        .start();
    let err = resolver(&dns).mx("nomail.test").unwrap_err();
    assert_eq!(exit_code(&err), Exit::NoHost, "{err:#}");
    assert!(format!("{err:#}").contains("null MX"), "{err:#}");
    // The domain's address is not used as an implicit MX.
    assert!(!dns.queries().iter().any(|(_, t)| *t == RecordType::A));
}

#[test]
fn a_root_exchange_next_to_real_mx_hosts_is_skipped() {
    let dns = Zone::new()
        .mx("mixed.test", &[(0, "."), (10, "mx.mixed.test")])
        .start();
    assert_eq!(
        resolver(&dns).mx("mixed.test").unwrap(),
        hosts(&[(10, "mx.mixed.test")])
    );
}

#[test]
fn nxdomain_is_no_host() {
    let dns = Zone::new().nxdomain("gone.test").start();
    let r = resolver(&dns);
    for domain in ["gone.test", "never-heard-of.test"] {
        let err = r.mx(domain).unwrap_err();
        assert_eq!(exit_code(&err), Exit::NoHost, "{domain}: {err:#}");
        assert!(format!("{err:#}").contains("NXDOMAIN"), "{err:#}");
        let err = r.addrs(domain, 25).unwrap_err();
        assert_eq!(exit_code(&err), Exit::NoHost, "{domain}: {err:#}");
    }
}

#[test]
fn servfail_is_a_temporary_failure() {
    let dns = Zone::new().servfail("broken.test").start();
    let r = resolver(&dns);
    let started = Instant::now();
    let err = r.mx("broken.test").unwrap_err();
    assert_eq!(exit_code(&err), Exit::TempFail, "{err:#}");
    let err = r.addrs("broken.test", 25).unwrap_err();
    assert_eq!(exit_code(&err), Exit::TempFail, "{err:#}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_server_that_never_answers_times_out_as_temporary() {
    let dns = Zone::new().silent("slow.test").start();
    let limit = Duration::from_millis(600);
    let r = Resolver::new(Some(dns.addr()), limit).unwrap();
    for call in ["mx", "addrs"] {
        let started = Instant::now();
        let err = match call {
            "mx" => r.mx("slow.test").unwrap_err(),
            _ => r.addrs("slow.test", 25).unwrap_err(),
        };
        let took = started.elapsed();
        assert_eq!(exit_code(&err), Exit::TempFail, "{call}: {err:#}");
        assert!(
            took >= Duration::from_millis(500),
            "{call}: gave up after {took:?}"
        );
        assert!(took < Duration::from_secs(3), "{call}: took {took:?}");
    }
    // The query was sent more than once before giving up.
    let asked = dns
        .queries()
        .iter()
        .filter(|(_, t)| *t == RecordType::MX)
        .count();
    assert!(asked >= 2, "{:?}", dns.queries());
}

#[test]
fn a_resolver_nobody_listens_on_is_a_temporary_failure() {
    // Bind and drop a UDP socket to get a port that is (very likely) closed.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let err = Resolver::new(Some(addr), Duration::from_millis(600))
        .unwrap()
        .mx("example.test")
        .unwrap_err();
    assert_eq!(exit_code(&err), Exit::TempFail, "{err:#}");
}

#[test]
fn addresses_of_both_families_ipv6_first() {
    let dns = Zone::new()
        .a("mx.example.test", "192.0.2.1")
        .a("mx.example.test", "192.0.2.2")
        .aaaa("mx.example.test", "2001:db8::1")
        .a("v4only.test", "198.51.100.1")
        .aaaa("v6only.test", "2001:db8::6")
        .mx("example.test", &[(10, "mx.example.test")])
        .start();
    let r = resolver(&dns);
    let addrs = |h: &str| -> Vec<String> {
        r.addrs(h, 25)
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    assert_eq!(
        addrs("mx.example.test"),
        ["[2001:db8::1]:25", "192.0.2.1:25", "192.0.2.2:25"]
    );
    assert_eq!(addrs("v4only.test"), ["198.51.100.1:25"]);
    assert_eq!(addrs("v6only.test"), ["[2001:db8::6]:25"]);
    // A name that exists without addresses (here: only an MX) has no address: 68.
    let err = r.addrs("example.test", 25).unwrap_err();
    assert_eq!(exit_code(&err), Exit::NoHost, "{err:#}");
}

#[test]
fn mx_then_addresses_is_the_whole_route() {
    let dns = Zone::new()
        .mx("example.test", &[(10, "mx.example.test")])
        .a("mx.example.test", "127.0.0.1")
        .start();
    let r = resolver(&dns);
    let route: Vec<SocketAddr> = r
        .mx("example.test")
        .unwrap()
        .iter()
        .flat_map(|(_, host)| r.addrs(host, 2525).unwrap())
        .collect();
    assert_eq!(route, ["127.0.0.1:2525".parse::<SocketAddr>().unwrap()]);
}

#[test]
fn address_literals_go_to_that_address_without_dns() {
    let dns = Zone::new().start();
    let r = resolver(&dns);
    for (domain, want) in [
        ("[192.0.2.1]", "192.0.2.1:25"),
        ("[IPv6:2001:db8::1]", "[2001:db8::1]:25"),
    ] {
        let mx = r.mx(domain).unwrap();
        assert_eq!(mx, hosts(&[(0, domain)]));
        let addrs = r.addrs(&mx[0].1, 25).unwrap();
        assert_eq!(addrs, [want.parse::<SocketAddr>().unwrap()], "{domain}");
        assert_eq!(
            postie::dns::address_literal(domain).map(|ip| SocketAddr::new(ip, 25)),
            Some(want.parse().unwrap())
        );
    }
    assert!(dns.queries().is_empty(), "{:?}", dns.queries());
}

#[test]
fn international_domains_are_asked_in_punycode() {
    let dns = Zone::new()
        .mx("xn--bcher-kva.test", &[(10, "mx.xn--bcher-kva.test")])
        .start();
    assert_eq!(
        resolver(&dns).mx("bücher.test").unwrap(),
        hosts(&[(10, "mx.xn--bcher-kva.test")])
    );
}

#[test]
fn mx_hosts_convenience_uses_the_given_resolver() {
    let dns = Zone::new()
        .mx("example.test", &[(5, "mx.example.test")])
        .start();
    assert_eq!(
        mx_hosts("example.test", Some(dns.addr())).unwrap(),
        hosts(&[(5, "mx.example.test")])
    );
}

#[test]
fn server_name_resolved_through_resolver_flag() {
    use crate::support::fake_server::{data, ehlo, envelope, greeting, quit, FakeServer};
    let mut script = vec![greeting()];
    script.extend(ehlo(&[]));
    script.extend(envelope("a@example.test", &["b@example.test"]));
    script.extend(data("250 2.0.0 Ok\r\n"));
    script.extend(quit());
    let server = FakeServer::start(script);
    let port = server.addr().rsplit_once(':').unwrap().1.to_string();
    let dns = Zone::new().a("smtp.resolver.test", "127.0.0.1").start();
    let out = crate::support::postie()
        .args([
            "--server",
            &format!("smtp.resolver.test:{port}"),
            "--tls",
            "none",
        ])
        .args(["--timeout", "10", "-f", "a@example.test", "--body", "hi"])
        .args(["--resolver", &dns.addr().to_string(), "b@example.test"])
        .output()
        .unwrap();
    server.finish();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        dns.queries()
            .iter()
            .any(|(name, _)| name.trim_end_matches('.') == "smtp.resolver.test"),
        "{:?}",
        dns.queries()
    );
}

#[test]
fn unknown_server_name_via_resolver_is_exit_68() {
    let dns = Zone::new().nxdomain("nowhere.resolver.test").start();
    let out = crate::support::postie()
        .args(["--server", "nowhere.resolver.test:2525", "--tls", "none"])
        .args(["--timeout", "5", "-f", "a@example.test", "--body", "hi"])
        .args(["--resolver", &dns.addr().to_string(), "b@example.test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(68), "{out:?}");
}
