//! MTA-STS policy discovery (`postie::mta_sts::Fetcher`) against the in-process test DNS
//! server (the `_mta-sts` TXT record) and a local HTTPS server with the test PKI (the
//! policy): fetching, the cache (hit, changed id, expiry, fallback when the fetch fails),
//! and the fetch's refusals (404, wrong content type, redirect, untrusted certificate).
//! Nothing here touches real DNS or the network beyond loopback.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use postie::error::{exit_code, Exit};
use postie::mta_sts::{Fetcher, Mode, Source};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::support::certs::pki;
use crate::support::dns_server::{DnsServer, Zone};

const ENFORCE: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.mx.example.test\r\nmax_age: 86400\r\n";
const TESTING: &str = "version: STSv1\nmode: testing\nmx: other.example.test\nmax_age: 86400\n";

/// A 200 text/plain response carrying `policy`.
fn ok(policy: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{policy}",
        policy.len()
    )
}

/// An HTTPS server on 127.0.0.1 answering each request with the next canned response (the
/// last one repeats), recording the request lines. Stopped and joined on drop.
struct Https {
    addr: SocketAddr,
    responses: Arc<Mutex<VecDeque<String>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn server_config() -> Arc<ServerConfig> {
    crate::support::idp::server_config()
}

impl Https {
    fn start(responses: &[String]) -> Https {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let responses = Arc::new(Mutex::new(
            responses.iter().cloned().collect::<VecDeque<_>>(),
        ));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (responses, requests, stop) = (
                Arc::clone(&responses),
                Arc::clone(&requests),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let tcp = match listener.accept() {
                        Ok((tcp, _)) => tcp,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    };
                    tcp.set_nonblocking(false).unwrap();
                    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let conn = ServerConnection::new(server_config()).unwrap();
                    let mut tls = StreamOwned::new(conn, tcp);
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match tls.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => break,
                        }
                    }
                    if !head.ends_with(b"\r\n\r\n") {
                        // Handshake refused by the client (untrusted certificate): no request.
                        continue;
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    requests
                        .lock()
                        .unwrap()
                        .push(text.lines().next().unwrap_or_default().to_string());
                    let response = {
                        let mut queue = responses.lock().unwrap();
                        if queue.len() > 1 {
                            queue.pop_front().unwrap()
                        } else {
                            queue.front().cloned().unwrap_or_default()
                        }
                    };
                    let _ = tls.write_all(response.as_bytes());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            })
        };
        Https {
            addr,
            responses,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url_base(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// From now on, answer every request with `response`.
    fn answer(&self, response: String) {
        *self.responses.lock().unwrap() = VecDeque::from([response]);
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn fetcher(dns: &DnsServer, https: &Https, cache: Option<&Path>) -> Fetcher {
    Fetcher::new(
        Some(dns.addr()),
        Some(https.url_base()),
        cache.map(Path::to_path_buf),
        Some(pki().ca_pem.clone()),
        Duration::from_secs(5),
    )
    .unwrap()
}

fn sts_zone(id: &str) -> DnsServer {
    Zone::new()
        .txt("_mta-sts.example.test", "v=spf1 -all")
        .txt("_mta-sts.example.test", &format!("v=STSv1; id={id};"))
        .start()
}

const REQUEST: &str = "GET /example.test/.well-known/mta-sts.txt HTTP/1.1";

fn cache_file(dir: &Path) -> PathBuf {
    dir.join("example.test")
}

#[test]
fn policy_is_fetched_then_served_from_the_cache() {
    let dns = sts_zone("20240101T000000");
    let https = Https::start(&[ok(ENFORCE)]);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(&dns, &https, Some(cache.path()));

    let found = f.lookup("Example.Test.").unwrap().unwrap();
    assert_eq!(found.source, Source::Fetched);
    assert_eq!(found.note, None);
    let policy = found.policy;
    assert_eq!(policy.id, "20240101T000000");
    assert_eq!(policy.mode, Mode::Enforce);
    assert_eq!(policy.max_age, 86400);
    assert_eq!(policy.mx, ["mx1.example.test", "*.mx.example.test"]);
    assert!(policy.allows("mx1.example.test"));
    assert!(policy.allows("a.mx.example.test"));
    assert!(!policy.allows("mx2.example.test"));
    assert_eq!(https.requests(), [REQUEST]);
    assert!(cache_file(cache.path()).exists());

    // Fresh, same id: no second request, also from a new Fetcher (a new run).
    for f in [f, fetcher(&dns, &https, Some(cache.path()))] {
        let found = f.lookup("example.test").unwrap().unwrap();
        assert_eq!(found.source, Source::Cached);
        assert_eq!(found.policy, policy);
        assert_eq!(f.policy("example.test").unwrap(), Some(policy.clone()));
    }
    assert_eq!(https.requests().len(), 1, "{:?}", https.requests());
}

#[test]
fn a_changed_id_fetches_again() {
    let https = Https::start(&[ok(ENFORCE), ok(TESTING)]);
    let cache = tempfile::tempdir().unwrap();
    let first = sts_zone("1");
    let p = fetcher(&first, &https, Some(cache.path()))
        .policy("example.test")
        .unwrap()
        .unwrap();
    assert_eq!((p.id.as_str(), p.mode), ("1", Mode::Enforce));

    let second = sts_zone("2");
    let found = fetcher(&second, &https, Some(cache.path()))
        .lookup("example.test")
        .unwrap()
        .unwrap();
    assert_eq!(found.source, Source::Fetched);
    assert_eq!(
        (found.policy.id.as_str(), found.policy.mode),
        ("2", Mode::Testing)
    );
    assert_eq!(found.policy.mx, ["other.example.test"]);
    assert_eq!(https.requests(), [REQUEST, REQUEST]);
    // The cache now holds the new policy.
    let text = std::fs::read_to_string(cache_file(cache.path())).unwrap();
    assert!(
        text.contains("id: 2\n") && text.contains("mode: testing"),
        "{text}"
    );
}

#[test]
fn an_expired_cache_entry_is_fetched_again() {
    let dns = sts_zone("1");
    let https = Https::start(&[ok(ENFORCE)]);
    let cache = tempfile::tempdir().unwrap();
    let f = fetcher(&dns, &https, Some(cache.path()));
    f.policy("example.test").unwrap().unwrap();
    // Pretend the fetch happened two days ago (max_age is one day).
    let file = cache_file(cache.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().find(|l| l.starts_with("fetched: ")).unwrap();
    let fetched: u64 = line["fetched: ".len()..].parse().unwrap();
    std::fs::write(
        &file,
        text.replace(line, &format!("fetched: {}", fetched - 2 * 86400)),
    )
    .unwrap();

    let found = f.lookup("example.test").unwrap().unwrap();
    assert_eq!(found.source, Source::Fetched);
    assert_eq!(https.requests().len(), 2);
    // And the refreshed entry is fresh again.
    assert_eq!(
        f.lookup("example.test").unwrap().unwrap().source,
        Source::Cached
    );
    assert_eq!(https.requests().len(), 2);

    // An expired entry is no fallback: a failing fetch is then an error.
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().find(|l| l.starts_with("fetched: ")).unwrap();
    std::fs::write(&file, text.replace(line, "fetched: 1000")).unwrap();
    https.answer("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n".into());
    let err = f.lookup("example.test").unwrap_err();
    assert!(format!("{err:#}").contains("HTTP status 500"), "{err:#}");
}

#[test]
fn no_txt_record_means_no_policy_and_no_fetch() {
    let dns = Zone::new()
        .txt("_mta-sts.other.test", "v=spf1 -all")
        .nxdomain("_mta-sts.gone.test")
        .start();
    let https = Https::start(&[ok(ENFORCE)]);
    let f = fetcher(&dns, &https, None);
    for domain in ["example.test", "other.test", "gone.test", "[127.0.0.1]"] {
        assert_eq!(f.policy(domain).unwrap(), None, "{domain}");
    }
    assert!(https.requests().is_empty(), "{:?}", https.requests());
}

#[test]
fn two_sts_records_mean_no_policy() {
    let dns = Zone::new()
        .txt("_mta-sts.example.test", "v=STSv1; id=1")
        .txt("_mta-sts.example.test", "v=STSv1; id=2")
        .start();
    let https = Https::start(&[ok(ENFORCE)]);
    assert_eq!(
        fetcher(&dns, &https, None).policy("example.test").unwrap(),
        None
    );
    assert!(https.requests().is_empty());
}

#[test]
fn refused_fetches_are_errors_without_a_cache() {
    let dns = sts_zone("1");
    let cases: &[(&str, &str)] = &[
        ("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found", "HTTP status 404"),
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 14\r\n\r\n<html></html>\n",
            "content type \"text/html\", not text/plain",
        ),
        (
            "HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n",
            "forbids following redirects",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nversion: STSv1\nmode:",
            "invalid MTA-STS policy",
        ),
    ];
    for (response, want) in cases {
        let https = Https::start(&[response.to_string()]);
        let cache = tempfile::tempdir().unwrap();
        let err = fetcher(&dns, &https, Some(cache.path()))
            .policy("example.test")
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(want), "{want}: {text}");
        assert!(text.contains("MTA-STS policy of example.test"), "{text}");
        // Exactly one request: a redirect is not followed.
        assert_eq!(https.requests(), [REQUEST], "{want}");
        assert!(!cache_file(cache.path()).exists(), "{want}");
    }
}

/// The policy arrives however the server frames it (length, chunks, up to the close;
/// media type in any case, with parameters), and broken or oversized answers are errors
/// that name the problem. The HTTP itself is ureq's; these hold it to RFC 8461 §3.3.
#[test]
fn policies_are_read_in_every_framing_and_broken_answers_refused() {
    let dns = sts_zone("1");
    let ok_policy = "version: STSv1\nmode: none\nmax_age: 1\n";
    let good = [
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 37\r\n\r\n{ok_policy}"),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nversi\r\n20;x=y\r\non: STSv1\nmode: none\nmax_age: 1\n\r\n0\r\n\r\n".to_string(),
        format!("HTTP/1.0 200 OK\r\ncontent-type: TEXT/PLAIN\r\n\r\n{ok_policy}"),
    ];
    for response in good {
        let https = Https::start(std::slice::from_ref(&response));
        let policy = fetcher(&dns, &https, None)
            .policy("example.test")
            .unwrap_or_else(|e| panic!("{response:?}: {e:#}"))
            .unwrap();
        assert_eq!(policy.mode, Mode::None, "{response:?}");
    }
    let max = postie::mta_sts::MAX_BODY;
    let bad: Vec<(String, &str)> = vec![
        (
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}", max + 1, "x".repeat(max + 1)),
            "more than 64 KiB",
        ),
        (
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{}", "x".repeat(max + 10)),
            "more than 64 KiB",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into(),
            "no content type, not text/plain",
        ),
        ("SMTP 220 hello\r\n\r\n".into(), "the MTA-STS policy at https://"),
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nshort".into(),
            "the MTA-STS policy at https://",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".into(),
            "the MTA-STS policy at https://",
        ),
    ];
    for (response, want) in bad {
        let https = Https::start(std::slice::from_ref(&response));
        let err = fetcher(&dns, &https, None)
            .policy("example.test")
            .unwrap_err();
        let text = format!("{err:#}");
        let shown = response.get(..60).unwrap_or(&response);
        assert!(text.contains(want), "{shown:?}: {text}");
        assert!(
            text.contains("MTA-STS policy of example.test"),
            "{shown:?}: {text}"
        );
    }
}

#[test]
fn a_failed_refetch_falls_back_to_the_fresh_cached_policy() {
    let https = Https::start(&[ok(ENFORCE)]);
    let cache = tempfile::tempdir().unwrap();
    let p1 = fetcher(&sts_zone("1"), &https, Some(cache.path()))
        .policy("example.test")
        .unwrap()
        .unwrap();

    // The id changed, but the new policy cannot be fetched: the cached one still applies.
    https.answer("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into());
    let found = fetcher(&sts_zone("2"), &https, Some(cache.path()))
        .lookup("example.test")
        .unwrap()
        .unwrap();
    assert_eq!(found.policy, p1);
    match &found.source {
        Source::CachedAfterFailure(why) => assert!(why.contains("HTTP status 404"), "{why}"),
        other => panic!("{other:?}"),
    }

    // The TXT record is gone or DNS fails: the fresh cached policy still applies (§3.3).
    for dns in [
        Zone::new().start(),
        Zone::new().servfail("_mta-sts.example.test").start(),
    ] {
        let found = fetcher(&dns, &https, Some(cache.path()))
            .lookup("example.test")
            .unwrap()
            .unwrap();
        assert_eq!(found.policy, p1);
        assert!(
            matches!(found.source, Source::CachedAfterFailure(_)),
            "{found:?}"
        );
    }
    // A DNS failure with no cache is a temporary error.
    let dns = Zone::new().servfail("_mta-sts.example.test").start();
    let err = fetcher(&dns, &https, None)
        .policy("example.test")
        .unwrap_err();
    assert_eq!(exit_code(&err), Exit::TempFail, "{err:#}");
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let dns = sts_zone("1");
    let https = Https::start(&[ok(ENFORCE)]);
    // Web roots only: the test CA is unknown.
    let f = Fetcher::new(
        Some(dns.addr()),
        Some(https.url_base()),
        None,
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let err = f.policy("example.test").unwrap_err();
    assert_eq!(exit_code(&err), Exit::Unavailable, "{err:#}");
    assert!(format!("{err:#}").contains("unknown CA"), "{err:#}");
    assert!(https.requests().is_empty());
}

#[test]
fn a_cache_that_cannot_be_written_is_a_note_not_a_failure() {
    let dns = sts_zone("1");
    let https = Https::start(&[ok(ENFORCE)]);
    let file = tempfile::NamedTempFile::new().unwrap();
    // The cache "directory" is a regular file.
    let found = fetcher(&dns, &https, Some(&file.path().join("mta-sts")))
        .lookup("example.test")
        .unwrap()
        .unwrap();
    assert_eq!(found.policy.mode, Mode::Enforce);
    assert!(
        found
            .note
            .as_deref()
            .is_some_and(|n| n.contains("not cached")),
        "{found:?}"
    );
}

#[test]
fn txt_records_are_joined_and_absent_ones_are_empty() {
    let long = format!("v=STSv1; id=1; ext={}", "x".repeat(300));
    let dns = Zone::new()
        .txt("long.test", &long)
        .txt("two.test", "a")
        .txt("two.test", "b")
        .nxdomain("gone.test")
        .empty("empty.test")
        .servfail("broken.test")
        .start();
    let r = postie::dns::Resolver::new(Some(dns.addr()), Duration::from_secs(5)).unwrap();
    // 320 bytes travel as two character-strings and come back as one record.
    assert_eq!(r.txt("long.test").unwrap(), [long]);
    let mut two = r.txt("two.test").unwrap();
    two.sort();
    assert_eq!(two, ["a", "b"]);
    assert!(r.txt("gone.test").unwrap().is_empty());
    assert!(r.txt("empty.test").unwrap().is_empty());
    let err = r.txt("broken.test").unwrap_err();
    assert_eq!(exit_code(&err), Exit::TempFail, "{err:#}");
}

/// postie --mx for example.test, with the policy served by `https` and DNS from `dns`.
fn mx_run(dns: &DnsServer, https: &Https, cache: &Path, port: u16) -> std::process::Output {
    crate::support::postie()
        .args(["--mx", "--port", &port.to_string()])
        .args(["--resolver", &dns.addr().to_string()])
        .args(["--mta-sts-url-base", &https.url_base()])
        .arg("--tls-ca")
        .arg(&pki().ca_pem)
        .env("POSTIE_CACHE_DIR", cache)
        .args(["--timeout", "10", "-f", "a@origin.test", "--body", "hi"])
        .args(["-v", "u@example.test"])
        .output()
        .unwrap()
}

#[test]
fn enforce_refuses_an_mx_the_policy_does_not_name_without_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let dns = Zone::new()
        .txt("_mta-sts.example.test", "v=STSv1; id=e2e1;")
        .mx("example.test", &[(10, "rogue.attacker.test")])
        .a("rogue.attacker.test", "127.0.0.1")
        .start();
    let https = Https::start(&[ok(ENFORCE)]);
    let cache = tempfile::tempdir().unwrap();
    let out = mx_run(&dns, &https, cache.path(), port);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("MTA-STS"), "{stderr}");
    assert!(
        !stderr.contains("Trying"),
        "no connection may be made: {stderr}"
    );
    assert!(listener.accept().is_err(), "the rogue MX was contacted");
    assert_eq!(https.requests(), [REQUEST]);
}

#[test]
fn testing_mode_reports_but_delivers() {
    use crate::support::fake_server::{data, ehlo, envelope, greeting, quit, FakeServer};
    let script = [
        vec![greeting()],
        ehlo(&[]),
        envelope("a@origin.test", &["u@example.test"]),
        data("250 2.0.0 Ok\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let dns = Zone::new()
        .txt("_mta-sts.example.test", "v=STSv1; id=e2e2;")
        .mx("example.test", &[(10, "mx.example.test")])
        .a("mx.example.test", "127.0.0.1")
        .start();
    let https = Https::start(&[ok(TESTING)]);
    let cache = tempfile::tempdir().unwrap();
    let out = mx_run(&dns, &https, cache.path(), server.port);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    server.finish_with(&stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("MTA-STS (testing) would refuse MX mx.example.test"),
        "{stderr}"
    );
}
