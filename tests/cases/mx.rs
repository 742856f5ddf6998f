//! Direct MX delivery (`--mx`, issue 4 "Routing"): the in-process test DNS server answers
//! MX/A records that point at fake SMTP servers on distinct loopback addresses (127.0.0.2,
//! 127.0.0.3) sharing one port, and postie runs with `--mx --port PORT --resolver DNS`.
//! Covers: best MX used, a dead or 4xx-greeting first MX skipped, the implicit MX, null MX /
//! NXDOMAIN / SERVFAIL, two domains in two transactions (the message read once from stdin
//! and sent to both), a mixed outcome, opportunistic STARTTLS (used when offered, plain
//! when not) and an address literal. No test here touches real DNS.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::certs::pki;
use crate::support::dns_server::{DnsServer, Zone};
use crate::support::fake_server::{
    data, ehlo, envelope, expect, greeting, quit, send, starttls, FakeServer, Step,
};
use crate::support::postie;
use crate::support::run::{run, Outcome};

const FROM: &str = "sender@origin.test";
const LIMIT: Duration = Duration::from_secs(60);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A port free on both 127.0.0.2 and 127.0.0.3 (bound on the first, checked on the second).
pub(crate) fn shared_port() -> u16 {
    for _ in 0..20 {
        let first = TcpListener::bind((ip(2), 0)).expect("bind 127.0.0.2:0");
        let port = first.local_addr().expect("local_addr").port();
        if TcpListener::bind((ip(3), port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// A plain-text server taking one message for `rcpts`.
fn accepting(rcpts: &[&str]) -> Vec<Step> {
    [
        vec![greeting()],
        ehlo(&[]),
        envelope(FROM, rcpts),
        data("250 2.0.0 Ok: queued as Q1\r\n"),
        quit(),
    ]
    .concat()
}

/// postie --mx to `rcpts`, a composed message, asking `dns`, on `port`.
fn mx_cmd(dns: &DnsServer, port: u16, rcpts: &[&str]) -> Command {
    let mut cmd = postie();
    cmd.args(["--mx", "--port", &port.to_string()])
        .args(["--resolver", &dns.addr().to_string()])
        .args(["--timeout", "10", "-f", FROM, "-s", "hello", "--body", "hi"])
        .args(rcpts);
    cmd
}

fn go(cmd: Command) -> Outcome {
    run(cmd, None, LIMIT)
}

fn json_of(out: &Outcome) -> Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.describe()))
}

#[test]
fn the_best_mx_is_used_and_success_is_silent() {
    let port = shared_port();
    let best = FakeServer::start_on(ip(2), port, accepting(&["u@best.test"]));
    let other = FakeServer::start_on(ip(3), port, accepting(&["u@best.test"]));
    let dns = Zone::new()
        .mx("best.test", &[(20, "mx2.best.test"), (10, "mx1.best.test")])
        .a("mx1.best.test", "127.0.0.2")
        .a("mx2.best.test", "127.0.0.3")
        .start();
    let out = go(mx_cmd(&dns, port, &["u@best.test"]));
    let session = best.finish_with(&out.describe());
    assert!(other.finish_if_connected(&out.describe()).is_none());
    out.assert_quiet_success("best MX");
    assert_eq!(session.data.len(), 1);
    assert!(session.saw("MAIL FROM:<sender@origin.test>"));
}

#[test]
fn a_dead_first_mx_is_skipped() {
    let port = shared_port();
    // Nothing listens on 127.0.0.2:port.
    let second = FakeServer::start_on(ip(3), port, accepting(&["u@dead.test"]));
    let dns = Zone::new()
        .mx("dead.test", &[(10, "mx1.dead.test"), (20, "mx2.dead.test")])
        .a("mx1.dead.test", "127.0.0.2")
        .a("mx2.dead.test", "127.0.0.3")
        .start();
    let mut cmd = mx_cmd(&dns, port, &["u@dead.test"]);
    cmd.arg("--json");
    let out = go(cmd);
    second.finish_with(&out.describe());
    out.assert_code(0, "dead first MX");
    let j = json_of(&out);
    let d = &j["domains"][0];
    assert_eq!(d["mx"], "mx2.dead.test", "{j}");
    assert_eq!(d["address"], "127.0.0.3");
    assert_eq!(d["preference"], 20);
    let tried = d["tried"][0].as_str().unwrap();
    assert!(
        tried.starts_with("mx1.dead.test: cannot connect"),
        "{tried}"
    );
}

#[test]
fn a_4xx_greeting_sends_postie_to_the_next_mx_but_a_5xx_does_not() {
    let port = shared_port();
    let busy = FakeServer::start_on(
        ip(2),
        port,
        vec![send("421 4.3.2 too busy\r\n"), Step::QuitOrClose],
    );
    let second = FakeServer::start_on(ip(3), port, accepting(&["u@busy.test"]));
    let dns = Zone::new()
        .mx("busy.test", &[(10, "mx1.busy.test"), (20, "mx2.busy.test")])
        .a("mx1.busy.test", "127.0.0.2")
        .a("mx2.busy.test", "127.0.0.3")
        .start();
    let out = go(mx_cmd(&dns, port, &["u@busy.test"]));
    busy.finish_with(&out.describe());
    second.finish_with(&out.describe());
    out.assert_quiet_success("4xx greeting");

    // 5xx: permanent, the second MX is never asked.
    let port = shared_port();
    let refusing = FakeServer::start_on(
        ip(2),
        port,
        vec![send("554 5.7.1 go away\r\n"), Step::QuitOrClose],
    );
    let untouched = FakeServer::start_on(ip(3), port, accepting(&["u@busy.test"]));
    let out = go(mx_cmd(&dns, port, &["u@busy.test"]));
    refusing.finish_with(&out.describe());
    assert!(untouched.finish_if_connected(&out.describe()).is_none());
    out.assert_one_error_line(
        "postie: busy.test: ",
        &["554 5.7.1 go away"],
        "5xx greeting",
    );
    out.assert_code(69, "5xx greeting");
}

#[test]
fn without_mx_records_the_domain_address_is_used() {
    let port = shared_port();
    let server = FakeServer::start_on(ip(2), port, accepting(&["u@nomx.test"]));
    let dns = Zone::new().a("nomx.test", "127.0.0.2").start();
    let out = go(mx_cmd(&dns, port, &["u@nomx.test"]));
    server.finish_with(&out.describe());
    out.assert_quiet_success("implicit MX");
}

#[test]
fn dns_answers_that_stop_a_domain() {
    let port = shared_port();
    let dns = Zone::new()
        .null_mx("null.test")
        .nxdomain("gone.test")
        .servfail("broken.test")
        .start();
    // (domain, exit code, text on the one stderr line)
    let cases = [
        ("null.test", 68, "accepts no mail (null MX, RFC 7505)"),
        ("gone.test", 68, "no such domain (NXDOMAIN)"),
        ("broken.test", 75, "Server Failure"),
    ];
    for (domain, code, text) in cases {
        let rcpt = format!("u@{domain}");
        let mut cmd = mx_cmd(&dns, port, &[&rcpt]);
        cmd.arg("-v");
        let out = go(cmd);
        out.assert_code(code, domain);
        assert!(out.stderr.contains(text), "{domain}: {}", out.describe());
        assert!(
            !out.stderr.contains("Trying"),
            "{domain}: no connection may be attempted: {}",
            out.describe()
        );
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("postie: "))
            .collect();
        assert_eq!(errors.len(), 1, "{domain}: {}", out.describe());
    }
}

#[test]
fn two_domains_two_transactions_from_one_stdin_message() {
    let port = shared_port();
    let a = FakeServer::start_on(ip(2), port, accepting(&["x@a.test", "y@A.test"]));
    let b = FakeServer::start_on(ip(3), port, accepting(&["z@b.test"]));
    let dns = Zone::new()
        .mx("a.test", &[(10, "mx.a.test")])
        .a("mx.a.test", "127.0.0.2")
        .mx("b.test", &[(10, "mx.b.test")])
        .a("mx.b.test", "127.0.0.3")
        .start();
    let mut cmd = postie();
    cmd.args(["--mx", "--port", &port.to_string(), "--json"])
        .args(["--resolver", &dns.addr().to_string()])
        .args(["--timeout", "10", "-f", FROM, "--message", "-"])
        .args(["x@a.test", "z@b.test", "y@A.test"]);
    let message = b"From: sender@origin.test\r\nSubject: both\r\n\r\none body\r\n.dot line\r\n";
    let out = run(cmd, Some(message), LIMIT);
    let sa = a.finish_with(&out.describe());
    let sb = b.finish_with(&out.describe());
    out.assert_code(0, "two domains");
    assert_eq!(sa.data, sb.data, "the same message to both");
    let payload = String::from_utf8_lossy(&sa.data[0]).into_owned();
    assert!(payload.contains("\r\n..dot line\r\n"), "{payload}");
    let j = json_of(&out);
    let domains = j["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 2, "{j}");
    assert_eq!(domains[0]["domain"], "a.test");
    assert_eq!(
        domains[0]["recipients"],
        serde_json::json!(["x@a.test", "y@A.test"])
    );
    assert_eq!(domains[0]["address"], "127.0.0.2");
    assert_eq!(domains[1]["domain"], "b.test");
    assert_eq!(domains[1]["address"], "127.0.0.3");
    for d in domains {
        assert_eq!(d["exit"]["code"], 0);
        let policy = d["policy"].as_str().unwrap();
        assert!(policy.starts_with("opportunistic"), "{policy}");
        // The test DNS server does not validate: DANE is said to be unavailable.
        assert!(policy.contains("dane: not available"), "{policy}");
        assert_eq!(d["tls"], Value::Null, "no STARTTLS offered: plain text");
        assert_eq!(d["final_reply"]["code"], 250);
    }
    assert_eq!(j["recipients"].as_array().unwrap().len(), 3);
}

#[test]
fn one_domain_deferred_makes_the_run_retryable() {
    let port = shared_port();
    let ok = FakeServer::start_on(ip(2), port, accepting(&["x@ok.test"]));
    let later = FakeServer::start_on(
        ip(3),
        port,
        [
            vec![greeting()],
            ehlo(&[]),
            vec![
                expect(format!("MAIL FROM:<{FROM}>")),
                send("250 2.1.0 ok\r\n"),
                expect("RCPT TO:<z@later.test>"),
                send("451 4.7.1 greylisted, try again\r\n"),
                Step::QuitOrClose,
            ],
        ]
        .concat(),
    );
    let dns = Zone::new()
        .mx("ok.test", &[(10, "mx.ok.test")])
        .a("mx.ok.test", "127.0.0.2")
        .mx("later.test", &[(10, "mx.later.test")])
        .a("mx.later.test", "127.0.0.3")
        .start();
    let out = go(mx_cmd(&dns, port, &["x@ok.test", "z@later.test"]));
    ok.finish_with(&out.describe());
    later.finish_with(&out.describe());
    out.assert_code(75, "mixed outcome");
    out.assert_one_error_line(
        "postie: RCPT TO <z@later.test> refused: 451 4.7.1",
        &["greylisted"],
        "mixed outcome",
    );
}

#[test]
fn opportunistic_starttls_is_used_when_offered() {
    let port = shared_port();
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS"]),
        starttls(Step::StartTls),
        ehlo(&[]),
        envelope(FROM, &["u@tls.test"]),
        data("250 2.0.0 Ok: queued as T1\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start_on(ip(2), port, script);
    let dns = Zone::new()
        .mx("tls.test", &[(10, "mx.tls.test")])
        .a("mx.tls.test", "127.0.0.2")
        .start();
    let mut cmd = mx_cmd(&dns, port, &["u@tls.test"]);
    cmd.args(["--json", "-v", "--tls-ca"]).arg(&pki().ca_pem);
    let out = go(cmd);
    let session = server.finish_with(&out.describe());
    out.assert_code(0, "opportunistic TLS");
    // The transcript says why the certificate is not enforced: the policy, not a flag the
    // user never gave.
    assert!(
        out.stderr.contains(
            "NOT verified: opportunistic TLS (RFC 7435) does not enforce certificates \
             (it would have been rejected"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("--tls-no-verify"), "{}", out.stderr);
    assert!(
        session.received_in_tls().iter().any(|l| l == "DATA"),
        "the message went inside TLS: {:?}",
        session.received
    );
    let j = json_of(&out);
    let d = &j["domains"][0];
    assert!(
        d["policy"].as_str().unwrap().starts_with("opportunistic"),
        "{j}"
    );
    assert!(
        d["tls"]["version"].as_str().unwrap().starts_with("TLSv1."),
        "{j}"
    );
    // Opportunistic TLS is unauthenticated: the certificate (for localhost, not
    // mx.tls.test) is not enforced, and the report says so.
    assert_eq!(d["tls"]["verified"], false);
}

#[test]
fn an_address_literal_needs_no_dns() {
    let port = shared_port();
    let rcpt = "u@[127.0.0.3]";
    let server = FakeServer::start_on(ip(3), port, accepting(&[rcpt]));
    let dns = Zone::new().start();
    let out = go(mx_cmd(&dns, port, &[rcpt]));
    server.finish_with(&out.describe());
    out.assert_quiet_success("address literal");
    assert!(dns.queries().is_empty(), "{:?}", dns.queries());
}

/// SHA-256 of the test leaf's SubjectPublicKeyInfo, hex: the data of a `3 1 1` record.
fn leaf_spki_sha256() -> String {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(&pki().cert_der).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Greeting, EHLO offering STARTTLS, STARTTLS answered 220, then `then`.
fn starttls_prelude(then: Step) -> Vec<Step> {
    [vec![greeting()], ehlo(&["STARTTLS"]), starttls(then)].concat()
}

#[test]
fn dane_ee_record_requires_tls_and_authenticates_without_webpki() {
    let port = shared_port();
    let script = [
        starttls_prelude(Step::StartTls),
        ehlo(&[]),
        envelope(FROM, &["u@dane.test"]),
        data("250 2.0.0 Ok: queued as D1\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start_on(ip(2), port, script);
    let dns = Zone::new()
        .authentic(true)
        .mx("dane.test", &[(10, "mx.dane.test")])
        .a("mx.dane.test", "127.0.0.2")
        .tlsa(
            &format!("_{port}._tcp.mx.dane.test"),
            3,
            1,
            1,
            &leaf_spki_sha256(),
        )
        .start();
    // No --tls-ca: the test CA is not trusted; the TLSA record alone vouches for the key.
    let mut cmd = mx_cmd(&dns, port, &["u@dane.test"]);
    cmd.arg("--json");
    let out = go(cmd);
    let session = server.finish_with(&out.describe());
    out.assert_code(0, "DANE-EE");
    assert!(session.received_in_tls().iter().any(|l| l == "DATA"));
    let j = json_of(&out);
    let d = &j["domains"][0];
    assert!(d["policy"].as_str().unwrap().starts_with("dane"), "{j}");
    assert_eq!(d["tls"]["verified"], true, "{j}");
}

#[test]
fn dane_record_that_does_not_match_stops_before_mail() {
    let port = shared_port();
    let script = starttls_prelude(Step::StartTlsRejected);
    let server = FakeServer::start_on(ip(2), port, script);
    let dns = Zone::new()
        .authentic(true)
        .mx("dane.test", &[(10, "mx.dane.test")])
        .a("mx.dane.test", "127.0.0.2")
        .tlsa(
            &format!("_{port}._tcp.mx.dane.test"),
            3,
            1,
            1,
            &"ab".repeat(32),
        )
        .start();
    let mut cmd = mx_cmd(&dns, port, &["u@dane.test"]);
    cmd.arg("--tls-ca").arg(&pki().ca_pem);
    let out = go(cmd);
    let session = server.finish_with(&out.describe());
    assert_ne!(out.code, Some(0), "{}", out.describe());
    assert!(!session.saw("MAIL"), "{:?}", session.received);
    assert!(out.stderr.contains("DANE"), "{}", out.describe());
}

#[test]
fn dane_record_but_no_starttls_is_not_plain_text() {
    let port = shared_port();
    let script = [vec![greeting()], ehlo(&[]), quit()].concat();
    let server = FakeServer::start_on(ip(2), port, script);
    let dns = Zone::new()
        .authentic(true)
        .mx("dane.test", &[(10, "mx.dane.test")])
        .a("mx.dane.test", "127.0.0.2")
        .tlsa(
            &format!("_{port}._tcp.mx.dane.test"),
            3,
            1,
            1,
            &leaf_spki_sha256(),
        )
        .start();
    let out = go(mx_cmd(&dns, port, &["u@dane.test"]));
    let session = server.finish_with(&out.describe());
    assert_eq!(out.code, Some(69), "{}", out.describe());
    assert!(!session.saw("MAIL"), "{:?}", session.received);
}
