//! Whole `-v` transcripts (design.md §4, issue 5): the built postie against the scripted
//! fake server ([`crate::support::fake_server`]) in test mode, comparing all of stderr with
//! an expected block, line for line.
//!
//! Owns: the transcript's exact shape — markers, reply categories with RFC 3463 enhanced
//! codes explained, the TLS session and certificate lines (subject, issuer, names, validity,
//! SHA-256, verdict; the reason in words when the certificate is refused), `--show-time`
//! latencies (`T ms` in test mode) and colour (`--color`, `NO_COLOR`).
//! Must not: depend on the clock or the port. The port is put into the expected block, and
//! the certificate lines are computed here from the test PKI's leaf with postie's own
//! `CertInfo` (its fingerprint changes every test run, its days left every day).

use std::process::Command;
use std::time::Duration;

use postie::net::certinfo::CertInfo;

use crate::support::certs::{other_ca_pem, pki};
use crate::support::fake_server::{
    data, ehlo, envelope, expect, greeting, quit, send, starttls, FakeServer, Step,
};
use crate::support::postie;

const FROM: &str = "sender@example.test";
const TO: &str = "rcpt@example.test";
const RUN_LIMIT: Duration = Duration::from_secs(60);

type Run = crate::support::run::Outcome;

/// Run postie (killed after [`RUN_LIMIT`]) and keep what it left.
fn run(cmd: Command) -> Run {
    crate::support::run::run(cmd, None, RUN_LIMIT)
}

/// `postie -v` sending one composed message to the fake server.
fn send_cmd(server: &FakeServer, extra: &[&str]) -> Command {
    let mut cmd = postie();
    cmd.args(["--server", &server.addr(), "--timeout", "10", "-v"])
        .args(["-f", FROM, "-s", "Test", "--body", "Hello"])
        .args(extra)
        .arg(TO);
    cmd
}

/// Compare a whole transcript; on a difference show both between rulers and the first
/// line that differs.
#[track_caller]
fn assert_transcript(expected: &str, got: &str) {
    if expected == got {
        return;
    }
    let first = expected
        .lines()
        .zip(got.lines())
        .position(|(e, g)| e != g)
        .unwrap_or_else(|| expected.lines().count().min(got.lines().count()));
    let ruler = "-".repeat(78);
    panic!(
        "transcript differs (first at line {})\n\
         {ruler}\nexpected:\n{ruler}\n{expected}{ruler}\ngot:\n{ruler}\n{got}{ruler}\n\
         expected line: {:?}\ngot line:      {:?}",
        first + 1,
        expected.lines().nth(first),
        got.lines().nth(first),
    );
}

/// Lines (with a trailing newline each) from a block written one line per `&str`.
fn block(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The certificate lines postie prints for the test PKI's leaf, counted from `now`.
fn leaf_lines(now: i64) -> String {
    let c = CertInfo::from_der_at(&pki().cert_der, now).expect("test leaf parses");
    block(&[
        &format!("=== Certificate: {}", c.subject),
        &format!("===   issuer: {}", c.issuer),
        &format!("===   names: {}", c.sans.join(", ")),
        &format!(
            "===   valid: {} to {} ({})",
            c.not_before,
            c.not_after,
            c.remaining()
        ),
        &format!("===   SHA-256: {}", c.sha256),
    ])
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Assert a transcript that contains the test leaf's certificate lines (`{CERT}` in
/// `expected`): counted from before or after the run, so a run across midnight UTC passes.
#[track_caller]
fn assert_transcript_with_cert(expected: &str, got: &str, before: i64) {
    let with = |now| expected.replace("{CERT}", &leaf_lines(now));
    let after = with(unix_now());
    if got == after {
        return;
    }
    assert_transcript(&with(before), got);
}

fn connected(server: &FakeServer) -> String {
    let addr = server.addr();
    block(&[
        &format!("=== Trying {addr}..."),
        &format!("=== Connected to {addr}"),
        "<-  220 fake.test ESMTP postie-fake   [2xx positive completion]",
    ])
}

/// The server side of STARTTLS up to the second EHLO, which offers `exts`.
fn tls_prelude(exts: &[&str]) -> Vec<Step> {
    [
        vec![greeting()],
        ehlo(&["STARTTLS", "ENHANCEDSTATUSCODES"]),
        starttls(Step::StartTls),
        ehlo(exts),
    ]
    .concat()
}

#[test]
fn plain_send() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "8BITMIME"]),
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as FAKE1\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(send_cmd(&server, &["--tls", "none"]));
    let expected = connected(&server)
        + &block(&[
            " -> EHLO postie.test",
            "<-  250-fake.test greets postie.test",
            "<-  250-PIPELINING",
            "<-  250 8BITMIME   [2xx positive completion]",
            // PIPELINING (RFC 2920): the group goes out first, then its replies in order;
            // QUIT rides with the end of data.
            " -> MAIL FROM:<sender@example.test>",
            " -> RCPT TO:<rcpt@example.test>",
            " -> DATA",
            "<-  250 2.1.0 sender ok   [2xx positive completion; 2.1.0 other address status]",
            "<-  250 2.1.5 recipient ok   [2xx positive completion; 2.1.5 destination address valid]",
            "<-  354 end data with <CR><LF>.<CR><LF>   [3xx positive intermediate]",
            " -> QUIT",
            "<-  250 2.0.0 Ok: queued as FAKE1   [2xx positive completion; 2.0.0 other undefined status]",
            "<-  221 2.0.0 fake.test closing   [2xx positive completion; 2.0.0 other undefined status]",
        ]);
    server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_transcript(&expected, &out.stderr);
}

#[test]
fn starttls_and_auth_plain_show_the_session_and_the_certificate() {
    let script = [
        tls_prelude(&["AUTH PLAIN LOGIN"]),
        vec![
            expect("AUTH PLAIN AHVzZXIAczNjcjN0LVBhNTU="),
            send("235 2.7.0 Authentication successful\r\n"),
        ],
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as FAKE1\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let ca = pki().ca_pem.to_str().expect("UTF-8 path");
    let mut cmd = send_cmd(&server, &["--user", "user", "--tls-ca", ca]);
    cmd.env("POSTIE_PASSWORD", "s3cr3t-Pa55");
    let before = unix_now();
    let out = run(cmd);
    let expected = connected(&server)
        + &block(&[
            " -> EHLO postie.test",
            "<-  250-fake.test greets postie.test",
            "<-  250-STARTTLS",
            "<-  250 ENHANCEDSTATUSCODES   [2xx positive completion]",
            " -> STARTTLS",
            "<-  220 2.0.0 Ready to start TLS   [2xx positive completion; 2.0.0 other undefined status]",
            "=== TLS established: TLSv1.3, TLS13_AES_256_GCM_SHA384, key exchange X25519",
        ])
        + "{CERT}"
        + &block(&[
            "===   verified for 127.0.0.1",
            " ~> EHLO postie.test",
            "<~  250-fake.test greets postie.test",
            "<~  250 AUTH PLAIN LOGIN   [2xx positive completion]",
            " ~> AUTH PLAIN ********",
            "<~  235 2.7.0 Authentication successful   [2xx positive completion; 2.7.0 other or undefined security status]",
            " ~> MAIL FROM:<sender@example.test>",
            "<~  250 2.1.0 sender ok   [2xx positive completion; 2.1.0 other address status]",
            " ~> RCPT TO:<rcpt@example.test>",
            "<~  250 2.1.5 recipient ok   [2xx positive completion; 2.1.5 destination address valid]",
            " ~> DATA",
            "<~  354 end data with <CR><LF>.<CR><LF>   [3xx positive intermediate]",
            "<~  250 2.0.0 Ok: queued as FAKE1   [2xx positive completion; 2.0.0 other undefined status]",
            " ~> QUIT",
            "<~  221 2.0.0 fake.test closing   [2xx positive completion; 2.0.0 other undefined status]",
        ]);
    server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_transcript_with_cert(&expected, &out.stderr, before);
}

#[test]
fn untrusted_ca_shows_the_certificate_and_why_it_was_refused() {
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS", "AUTH PLAIN LOGIN"]),
        starttls(Step::StartTlsRejected),
    ]
    .concat();
    let server = FakeServer::start(script);
    let other = other_ca_pem().to_str().expect("UTF-8 path");
    let before = unix_now();
    let out = run(send_cmd(&server, &["--tls-ca", other]));
    let reason = "issued by an unknown CA (CN=postie test CA, O=postie tests); \
                  use --tls-ca FILE to trust a private CA";
    let expected = connected(&server)
        + &block(&[
            " -> EHLO postie.test",
            "<-  250-fake.test greets postie.test",
            "<-  250-STARTTLS",
            "<-  250 AUTH PLAIN LOGIN   [2xx positive completion]",
            " -> STARTTLS",
            "<-  220 2.0.0 Ready to start TLS   [2xx positive completion; 2.0.0 other undefined status]",
        ])
        + "{CERT}"
        + &block(&[
            &format!("*** certificate rejected: {reason}"),
            &format!("postie: TLS certificate of 127.0.0.1 rejected: {reason}"),
        ]);
    server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    assert_transcript_with_cert(&expected, &out.stderr, before);
}

#[test]
fn tls_no_verify_still_says_what_verification_would_have_found() {
    let script = [
        tls_prelude(&["8BITMIME"]),
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as FAKE1\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let before = unix_now();
    let out = run(send_cmd(&server, &["--tls-no-verify"]));
    let expected = "postie: warning: TLS certificates are NOT verified (--tls-no-verify)\n"
        .to_string()
        + &connected(&server)
        + &block(&[
            " -> EHLO postie.test",
            "<-  250-fake.test greets postie.test",
            "<-  250-STARTTLS",
            "<-  250 ENHANCEDSTATUSCODES   [2xx positive completion]",
            " -> STARTTLS",
            "<-  220 2.0.0 Ready to start TLS   [2xx positive completion; 2.0.0 other undefined status]",
            "=== TLS established: TLSv1.3, TLS13_AES_256_GCM_SHA384, key exchange X25519",
        ])
        + "{CERT}"
        + &block(&[
            "===   NOT verified: --tls-no-verify (it would have been rejected: issued by an \
             unknown CA (CN=postie test CA, O=postie tests); use --tls-ca FILE to trust a \
             private CA)",
            " ~> EHLO postie.test",
            "<~  250-fake.test greets postie.test",
            "<~  250 8BITMIME   [2xx positive completion]",
            " ~> MAIL FROM:<sender@example.test>",
            "<~  250 2.1.0 sender ok   [2xx positive completion; 2.1.0 other address status]",
            " ~> RCPT TO:<rcpt@example.test>",
            "<~  250 2.1.5 recipient ok   [2xx positive completion; 2.1.5 destination address valid]",
            " ~> DATA",
            "<~  354 end data with <CR><LF>.<CR><LF>   [3xx positive intermediate]",
            "<~  250 2.0.0 Ok: queued as FAKE1   [2xx positive completion; 2.0.0 other undefined status]",
            " ~> QUIT",
            "<~  221 2.0.0 fake.test closing   [2xx positive completion; 2.0.0 other undefined status]",
        ]);
    server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_transcript_with_cert(&expected, &out.stderr, before);
}

#[test]
fn refused_recipient_has_its_enhanced_code_explained() {
    let script = [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES"]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 sender ok\r\n"),
            expect(format!("RCPT TO:<{TO}>")),
            send("550 5.1.1 <rcpt@example.test>: no such user\r\n"),
            expect("RSET"),
            send("250 2.0.0 reset\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(send_cmd(&server, &["--tls", "none"]));
    let expected = connected(&server)
        + &block(&[
            " -> EHLO postie.test",
            "<-  250-fake.test greets postie.test",
            "<-  250 ENHANCEDSTATUSCODES   [2xx positive completion]",
            " -> MAIL FROM:<sender@example.test>",
            "<-  250 2.1.0 sender ok   [2xx positive completion; 2.1.0 other address status]",
            " -> RCPT TO:<rcpt@example.test>",
            "<-  550 5.1.1 <rcpt@example.test>: no such user   \
             [5xx permanent negative completion; 5.1.1 bad destination mailbox address]",
            " -> RSET",
            "<-  250 2.0.0 reset   [2xx positive completion; 2.0.0 other undefined status]",
            " -> QUIT",
            "<-  221 2.0.0 fake.test closing   [2xx positive completion; 2.0.0 other undefined status]",
            "postie: RCPT TO <rcpt@example.test> refused: \
             550 5.1.1 <rcpt@example.test>: no such user (permanent negative completion)",
        ]);
    server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(67), "{}", out.stderr);
    assert_transcript(&expected, &out.stderr);
}

#[test]
fn show_time_in_test_mode_prints_fixed_latencies_and_total() {
    let script = [
        vec![greeting()],
        ehlo(&["8BITMIME"]),
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as FAKE1\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(send_cmd(&server, &["--tls", "none", "--show-time"]));
    let addr = server.addr();
    let expected = block(&[
        &format!("=== Trying {addr}..."),
        &format!("=== Connected to {addr}"),
        "<-  220 fake.test ESMTP postie-fake   [2xx positive completion] (T ms)",
        " -> EHLO postie.test",
        "<-  250-fake.test greets postie.test",
        "<-  250 8BITMIME   [2xx positive completion] (T ms)",
        " -> MAIL FROM:<sender@example.test>",
        "<-  250 2.1.0 sender ok   [2xx positive completion; 2.1.0 other address status] (T ms)",
        " -> RCPT TO:<rcpt@example.test>",
        "<-  250 2.1.5 recipient ok   [2xx positive completion; 2.1.5 destination address valid] (T ms)",
        " -> DATA",
        "<-  354 end data with <CR><LF>.<CR><LF>   [3xx positive intermediate] (T ms)",
        "<-  250 2.0.0 Ok: queued as FAKE1   [2xx positive completion; 2.0.0 other undefined status] (T ms)",
        " -> QUIT",
        "<-  221 2.0.0 fake.test closing   [2xx positive completion; 2.0.0 other undefined status] (T ms)",
        "=== Total: T ms, of which T ms waiting for replies",
    ]);
    server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_transcript(&expected, &out.stderr);
}

#[test]
fn colour_only_when_asked_for_or_on_a_terminal() {
    // (extra arguments, NO_COLOR, coloured?) — stderr is a pipe here, so auto means none.
    for (extra, no_color, coloured) in [
        (&[][..], None, false),
        (&["--color", "auto"][..], None, false),
        (&["--color", "never"][..], None, false),
        (&["--color", "always"][..], None, true),
        (&["--color", "always"][..], Some("1"), true),
        (&[][..], Some("1"), false),
    ] {
        let server = FakeServer::start(vec![send("554 5.7.1 go away\r\n"), Step::QuitOrClose]);
        let mut cmd = send_cmd(&server, &[&["--tls", "none"][..], extra].concat());
        cmd.env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = run(cmd);
        server.finish_if_connected(&out.stderr);
        assert_eq!(
            out.stderr.contains('\u{1b}'),
            coloured,
            "{extra:?} NO_COLOR={no_color:?}\n{}",
            out.stderr
        );
        if coloured {
            // 554 in red, the info lines in blue.
            assert!(
                out.stderr.contains("\u{1b}[31m554 5.7.1 go away"),
                "{:?}",
                out.stderr
            );
            assert!(
                out.stderr.contains("\u{1b}[34m=== Trying"),
                "{:?}",
                out.stderr
            );
        }
    }
}
