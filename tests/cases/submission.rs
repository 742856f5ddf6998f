//! Submission scenarios: the built postie binary against the scripted fake SMTP server
//! ([`crate::support::fake_server`]), one `#[test]` per scenario, asserting the exit code
//! (design §2), the stderr line or transcript (design §4), and exactly what the server
//! received, byte for byte where it matters.
//!
//! Owns: end-to-end behaviour of one submission over loopback — command order, STARTTLS and
//! its security rules (design §5, RFC 3207 §4.2/§6), AUTH PLAIN/LOGIN/CRAM-MD5/XOAUTH2
//! (RFC 4954, RFC 4616, RFC 2195), reply → exit-code mapping (RFC 5321 §4.2.1), DATA
//! transparency (RFC 5321 §4.5.2), timeouts (RFC 5321 §4.5.3.2) and input validation.
//! Must not: touch the network beyond 127.0.0.1, put a password on argv (it goes in
//! `POSTIE_PASSWORD` on the `Command`), or wait unboundedly: every run of postie is killed
//! after [`RUN_LIMIT`], and postie gets `--timeout 10` unless a test says otherwise.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::certs::{other_ca_pem, pki};
use crate::support::fake_server::{
    data, ehlo, envelope, expect, greeting, quit, send, starttls, FakeServer, Session, Step,
};
use crate::support::postie;

const FROM: &str = "sender@example.test";
const TO: &str = "rcpt@example.test";
const USER: &str = "user";
const PASSWORD: &str = "s3cr3t-Pa55";
/// base64("\0user\0s3cr3t-Pa55"): the AUTH PLAIN initial response (RFC 4616 §2).
const PLAIN_B64: &str = "AHVzZXIAczNjcjN0LVBhNTU=";
/// base64("user") and base64("s3cr3t-Pa55"): the AUTH LOGIN answers.
const USER_B64: &str = "dXNlcg==";
const PASS_B64: &str = "czNjcjN0LVBhNTU=";
/// Longest a single postie run may take before the test kills it and fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Running postie
// ---------------------------------------------------------------------------------------

/// One finished run of postie.
type Run = crate::support::run::Outcome;

/// Run `cmd` to completion (killed after `RUN_LIMIT`), feeding `stdin` if given.
fn run_with(cmd: Command, stdin: Option<&[u8]>) -> Run {
    crate::support::run::run(cmd, stdin, RUN_LIMIT)
}

fn run(cmd: Command) -> Run {
    run_with(cmd, None)
}

/// postie pointed at `addr` with a 10 s timeout for every phase.
fn postie_at(addr: &str) -> Command {
    let mut cmd = postie();
    cmd.args(["--server", addr, "--timeout", "10"]);
    cmd
}

/// A composed one-recipient message from `FROM` to `TO` sent to `server`.
fn simple_send(server: &FakeServer, extra: &[&str]) -> Command {
    let mut cmd = postie_at(&server.addr());
    cmd.args(["-f", FROM, "-s", "Test subject", "--body", "Hello"])
        .args(extra)
        .arg(TO);
    cmd
}

/// [`simple_send`] with `--user user` and the password in the environment.
fn auth_send(server: &FakeServer, extra: &[&str]) -> Command {
    let mut cmd = simple_send(server, &[&["--user", USER], extra].concat());
    cmd.env("POSTIE_PASSWORD", PASSWORD);
    cmd
}

fn ca() -> &'static str {
    pki().ca_pem.to_str().expect("UTF-8 path")
}

// ---------------------------------------------------------------------------------------
// Scripts and assertions
// ---------------------------------------------------------------------------------------

/// Greeting, EHLO offering STARTTLS, STARTTLS, the handshake, EHLO again offering `exts`.
fn tls_prelude(exts: &[&str]) -> Vec<Step> {
    [
        vec![greeting()],
        ehlo(&["STARTTLS", "ENHANCEDSTATUSCODES"]),
        starttls(Step::StartTls),
        ehlo(exts),
    ]
    .concat()
}

/// MAIL, RCPT per recipient, DATA accepted, QUIT.
fn accepted_tail(rcpts: &[&str]) -> Vec<Step> {
    [
        envelope(FROM, rcpts),
        data("250 2.0.0 Ok: queued as FAKE1\r\n"),
        quit(),
    ]
    .concat()
}

fn auth_plain_ok() -> Vec<Step> {
    vec![
        expect(format!("AUTH PLAIN {PLAIN_B64}")),
        send("235 2.7.0 Authentication successful\r\n"),
    ]
}

fn auth_login_ok() -> Vec<Step> {
    vec![
        expect("AUTH LOGIN"),
        send("334 VXNlcm5hbWU6\r\n"),
        expect(USER_B64),
        send("334 UGFzc3dvcmQ6\r\n"),
        expect(PASS_B64),
        send("235 2.7.0 Authentication successful\r\n"),
    ]
}

#[track_caller]
fn assert_exit(run: &Run, allowed: &[i32]) {
    assert!(
        run.code.is_some_and(|c| allowed.contains(&c)),
        "expected exit status in {allowed:?}\n{run}"
    );
}

/// Success is silent: exit 0, nothing on stdout or stderr.
#[track_caller]
fn assert_silent_success(run: &Run) {
    assert_exit(run, &[0]);
    assert!(
        run.stdout.is_empty() && run.stderr.is_empty(),
        "success must be silent\n{run}"
    );
}

/// stderr is exactly one line starting `postie: ` and containing each of `needles`.
#[track_caller]
fn assert_error_line(run: &Run, needles: &[&str]) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("postie: "),
        "expected one `postie: ...` line on stderr\n{run}"
    );
    assert_stderr_has(run, needles);
}

#[track_caller]
fn assert_stderr_has(run: &Run, needles: &[&str]) {
    for n in needles {
        assert!(run.stderr.contains(n), "stderr lacks {n:?}\n{run}");
    }
}

#[track_caller]
fn assert_not_seen(session: &Session, run: &Run, verbs: &[&str]) {
    for v in verbs {
        assert!(
            !session.saw(v),
            "the server must not have received {v}\n{session}\n{run}"
        );
    }
}

/// The one DATA payload of `session`.
#[track_caller]
fn only_payload(session: &Session, run: &Run) -> String {
    assert_eq!(session.data.len(), 1, "expected one DATA payload\n{run}");
    String::from_utf8(session.data[0].clone()).expect("ASCII payload")
}

/// Lines of the header section (unfolded continuation lines kept separate).
fn header_lines(payload: &str) -> Vec<&str> {
    let head = payload.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n").collect()
}

fn header_value<'a>(payload: &'a str, name: &str) -> Option<&'a str> {
    header_lines(payload).into_iter().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Every LF is preceded by CR and every CR followed by LF (RFC 5321 §2.3.8).
fn has_only_crlf(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        _ => true,
    })
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------------------------------
// 1. Plain send of a composed message
// ---------------------------------------------------------------------------------------

#[test]
fn plain_send_has_exact_commands_and_a_dot_stuffed_payload_without_bcc() {
    let rcpts = [TO, "cc@example.test", "hidden@example.test"];
    let script = [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES", "HELP"]),
        accepted_tail(&rcpts),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie_at(&server.addr());
    cmd.args(["--tls", "none", "-f", FROM, "-s", "Test subject"])
        .args(["--cc", "cc@example.test", "--bcc", "hidden@example.test"])
        .args(["--body", "Hello\n.dot line\n..two dots\nend"])
        .arg(TO);
    let run = run(cmd);
    let session = server.finish_with(&run.to_string());
    assert_silent_success(&run);
    assert_eq!(
        session.received,
        [
            "EHLO postie.test",
            "MAIL FROM:<sender@example.test>",
            "RCPT TO:<rcpt@example.test>",
            "RCPT TO:<cc@example.test>",
            "RCPT TO:<hidden@example.test>",
            "DATA",
            "QUIT",
        ]
    );
    let payload = only_payload(&session, &run);
    assert!(payload.ends_with("\r\n.\r\n"), "{payload:?}");
    assert!(
        has_only_crlf(payload.as_bytes()),
        "bare CR or LF: {payload:?}"
    );
    assert!(
        payload.contains("\r\n..dot line\r\n"),
        "not dot-stuffed: {payload:?}"
    );
    assert!(
        payload.contains("\r\n...two dots\r\n"),
        "not dot-stuffed: {payload:?}"
    );
    assert!(payload.contains("\r\nend\r\n.\r\n"), "{payload:?}");
    for name in ["From", "To", "Cc", "Subject", "Date", "Message-ID"] {
        assert!(
            header_value(&payload, name).is_some(),
            "no {name} header in {payload:?}"
        );
    }
    assert_eq!(header_value(&payload, "Subject"), Some("Test subject"));
    assert!(header_value(&payload, "Bcc").is_none(), "{payload:?}");
    assert!(
        !payload.contains("hidden@example.test"),
        "the Bcc address leaked into the message: {payload:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 2, 3. STARTTLS and AUTH
// ---------------------------------------------------------------------------------------

#[test]
fn starttls_then_ehlo_again_then_auth_plain_then_send() {
    let script = [
        tls_prelude(&["AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"]),
        auth_plain_ok(),
        accepted_tail(&[TO]),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(&server, &["--tls", "starttls", "--tls-ca", ca()]));
    let session = server.finish_with(&run.to_string());
    assert_silent_success(&run);
    assert_eq!(
        session.received,
        [
            "EHLO postie.test",
            "STARTTLS",
            "EHLO postie.test",
            &format!("AUTH PLAIN {PLAIN_B64}"),
            "MAIL FROM:<sender@example.test>",
            "RCPT TO:<rcpt@example.test>",
            "DATA",
            "QUIT",
        ]
    );
    assert_eq!(
        session.tls_from,
        Some(2),
        "everything after STARTTLS inside TLS"
    );
}

#[test]
fn auth_login_exchange_when_forced() {
    let script = [
        tls_prelude(&["AUTH PLAIN LOGIN"]),
        auth_login_ok(),
        accepted_tail(&[TO]),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(&server, &["--tls-ca", ca(), "--auth", "login"]));
    let session = server.finish_with(&run.to_string());
    assert_silent_success(&run);
    assert_eq!(
        session.received_in_tls()[1..4],
        ["AUTH LOGIN", USER_B64, PASS_B64]
    );
}

// ---------------------------------------------------------------------------------------
// 4, 5, 6. TLS policy
// ---------------------------------------------------------------------------------------

#[test]
fn starttls_required_but_not_offered_fails_before_auth() {
    let script = [
        vec![greeting()],
        ehlo(&["AUTH PLAIN LOGIN", "8BITMIME"]),
        vec![Step::QuitOrClose],
    ]
    .concat();
    let server = FakeServer::start(script);
    // No --tls: on a port other than 465 the default is STARTTLS, required.
    let run = run(auth_send(&server, &["--tls-ca", ca()]));
    let session = server.finish_with(&run.to_string());
    assert_exit(&run, &[69]);
    assert_error_line(&run, &[]);
    assert!(run.stderr.to_ascii_uppercase().contains("TLS"), "{run}");
    assert_not_seen(&session, &run, &["AUTH", "MAIL", "STARTTLS"]);
}

#[test]
fn bytes_buffered_after_starttls_220_abort_the_session() {
    // RFC 3207 §6: anything the server sent after its 220 arrived before TLS and may be an
    // injection; the client must not use it, and here it must give up.
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS", "AUTH PLAIN LOGIN"]),
        vec![
            expect("STARTTLS"),
            send("220 2.0.0 go ahead\r\n250 junk\r\n"),
            Step::QuitOrClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(&server, &["--tls-ca", ca()]));
    let session = server.finish_with(&run.to_string());
    assert_exit(&run, &[76, 69]);
    assert_error_line(&run, &[]);
    assert_eq!(session.tls_from, None);
    assert_eq!(
        session.received[..2],
        ["EHLO postie.test", "STARTTLS"],
        "{run}"
    );
    assert_not_seen(&session, &run, &["AUTH", "MAIL"]);
    assert!(
        session.received[2..].iter().all(|l| l == "QUIT"),
        "after the injected bytes only QUIT may follow\n{session}\n{run}"
    );
}

#[test]
fn certificate_from_untrusted_ca_is_rejected_before_auth() {
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS", "AUTH PLAIN LOGIN"]),
        starttls(Step::StartTlsRejected),
    ]
    .concat();
    let server = FakeServer::start(script);
    let other = other_ca_pem().to_str().expect("UTF-8 path");
    let run = run(auth_send(&server, &["--tls-ca", other]));
    let session = server.finish_with(&run.to_string());
    assert_exit(&run, &[69]);
    assert_error_line(&run, &[]);
    assert!(
        run.stderr.to_ascii_lowercase().contains("certificate"),
        "{run}"
    );
    assert_eq!(session.received, ["EHLO postie.test", "STARTTLS"]);
}

// ---------------------------------------------------------------------------------------
// 7, 8. AUTH policy and refusal
// ---------------------------------------------------------------------------------------

#[test]
fn auth_over_plaintext_is_refused_without_allow_plaintext_auth() {
    let script = [
        vec![greeting()],
        ehlo(&["AUTH PLAIN LOGIN"]),
        vec![Step::QuitOrClose],
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(&server, &["--tls", "none"]));
    // Refusing before connecting (78, config) is as good as refusing after EHLO (69).
    let session = server.finish_if_connected(&run.to_string());
    assert_exit(&run, &[69, 78]);
    assert_error_line(&run, &[]);
    if let Some(session) = session {
        assert_not_seen(&session, &run, &["AUTH", "MAIL"]);
    }
}

#[test]
fn auth_over_plaintext_works_with_allow_plaintext_auth() {
    let script = [
        vec![greeting()],
        ehlo(&["AUTH PLAIN LOGIN"]),
        auth_plain_ok(),
        accepted_tail(&[TO]),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(
        &server,
        &["--tls", "none", "--allow-plaintext-auth"],
    ));
    server.finish_with(&run.to_string());
    assert_silent_success(&run);
}

#[test]
fn auth_refused_535_exits_77_with_server_text_and_quits() {
    let script = [
        vec![greeting()],
        ehlo(&["AUTH PLAIN LOGIN"]),
        vec![
            expect(format!("AUTH PLAIN {PLAIN_B64}")),
            send("535 5.7.8 Authentication credentials invalid\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(
        &server,
        &["--tls", "none", "--allow-plaintext-auth"],
    ));
    let session = server.finish_with(&run.to_string());
    assert_exit(&run, &[77]);
    assert_error_line(&run, &["535", "Authentication credentials invalid"]);
    assert_not_seen(&session, &run, &["MAIL"]);
}

/// AUTH CRAM-MD5 (RFC 2195) only when named: the RFC's challenge, answered with
/// "user " + HMAC-MD5(password, challenge) in hex.
#[test]
fn auth_cram_md5_when_forced() {
    let script = [
        tls_prelude(&["AUTH CRAM-MD5 PLAIN"]),
        vec![
            expect("AUTH CRAM-MD5"),
            send("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
            expect("dXNlciA2MjM5OWY3NzE3MTMyNDkzNzJjMzYwYTAzMWZjNDc1MA=="),
            send("235 2.7.0 Authentication successful\r\n"),
        ],
        accepted_tail(&[TO]),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(
        &server,
        &["--tls-ca", ca(), "--auth", "cram-md5"],
    ));
    server.finish_with(&run.to_string());
    assert_silent_success(&run);
}

/// XOAUTH2 with a refused token: the server's JSON error challenge is answered with an empty
/// line, and its 535 is exit 77 with the JSON in the error line.
#[test]
fn auth_xoauth2_refused_token_exits_77_with_the_server_error() {
    let script = [
        tls_prelude(&["AUTH PLAIN XOAUTH2"]),
        vec![
            expect("AUTH XOAUTH2 dXNlcj11c2VyAWF1dGg9QmVhcmVyIHMzY3IzdC1QYTU1AQE="),
            send("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n"),
            expect(""),
            send("535 5.7.8 Username and Password not accepted\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(&server, &["--tls-ca", ca(), "--auth", "xoauth2"]));
    let session = server.finish_with(&run.to_string());
    assert_exit(&run, &[77]);
    assert_error_line(&run, &["AUTH XOAUTH2", "535", r#"{\"status\":\"401\""#]);
    assert_not_seen(&session, &run, &["MAIL"]);
}

/// A challenge that is not base64: the exchange is cancelled with "*" (RFC 4954 §4) and the
/// server spoke nonsense (76); no password-bearing answer is sent.
#[test]
fn auth_malformed_challenge_is_cancelled_and_exits_76() {
    let script = [
        tls_prelude(&["AUTH CRAM-MD5"]),
        vec![
            expect("AUTH CRAM-MD5"),
            send("334 this is not base64!\r\n"),
            expect("*"),
            send("501 5.5.2 AUTH aborted\r\n"),
            Step::QuitOrClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(
        &server,
        &["--tls-ca", ca(), "--auth", "CRAM-MD5"],
    ));
    let session = server.finish_with(&run.to_string());
    assert_exit(&run, &[76]);
    assert_error_line(&run, &["AUTH CRAM-MD5", "malformed"]);
    assert_not_seen(&session, &run, &["MAIL"]);
}

// ---------------------------------------------------------------------------------------
// 9, 10. Replies to MAIL, RCPT, DATA
// ---------------------------------------------------------------------------------------

#[test]
fn one_recipient_refused_the_other_gets_the_message_and_exit_is_67() {
    let script = [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES"]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 ok\r\n"),
            expect("RCPT TO:<good@example.test>"),
            send("250 2.1.5 ok\r\n"),
            expect("RCPT TO:<bad@example.test>"),
            send("550 5.1.1 user unknown\r\n"),
        ],
        data("250 2.0.0 Ok: queued as FAKE2\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie_at(&server.addr());
    cmd.args(["--tls", "none", "-f", FROM, "-s", "partial", "--body", "hi"])
        .args(["good@example.test", "bad@example.test"]);
    let run = run(cmd);
    let session = server.finish_with(&run.to_string());
    assert_exit(&run, &[67]);
    assert_stderr_has(&run, &["bad@example.test", "550", "user unknown"]);
    assert_eq!(
        session.data.len(),
        1,
        "the accepted recipient must get the message"
    );
}

#[test]
fn all_recipients_refused_means_no_data_and_exit_67() {
    let script = [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES"]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 ok\r\n"),
            expect("RCPT TO:<bad1@example.test>"),
            send("550 5.1.1 user unknown\r\n"),
            expect("RCPT TO:<bad2@example.test>"),
            send("553 5.1.3 mailbox name not allowed\r\n"),
            Step::QuitOrClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie_at(&server.addr());
    cmd.args(["--tls", "none", "-f", FROM, "-s", "none", "--body", "hi"])
        .args(["bad1@example.test", "bad2@example.test"]);
    let run = run(cmd);
    let session = server.finish_with(&run.to_string());
    assert_exit(&run, &[67]);
    assert_stderr_has(
        &run,
        &["bad1@example.test", "bad2@example.test", "550", "553"],
    );
    assert_not_seen(&session, &run, &["DATA"]);
}

/// Where in the dialogue a scripted failure reply is given.
#[derive(Clone, Copy, Debug)]
enum At {
    Mail,
    Rcpt,
    DataCommand,
    DataEnd,
}

#[test]
fn failure_replies_map_to_exit_codes() {
    // Each row: the reply, where it is given, the exit postie must give, and the reply
    // text its stderr must carry. 421 is followed by the server closing (RFC 5321 §3.8).
    let table = [
        ("451 4.3.0 try again later", At::Rcpt, 75),
        ("450 4.2.0 mailbox busy", At::Rcpt, 75),
        ("452 4.3.1 insufficient system storage", At::Mail, 75),
        ("421 4.3.2 service shutting down", At::Mail, 75),
        ("550 5.7.1 sender rejected", At::Mail, 65),
        ("451 4.3.0 local problem", At::DataCommand, 75),
        ("554 5.5.1 no valid recipients", At::DataCommand, 65),
        ("554 5.7.1 message looks like spam", At::DataEnd, 65),
        ("552 5.3.4 message too big", At::DataEnd, 65),
        ("451 4.3.0 queue file write error", At::DataEnd, 75),
    ];
    for (reply, at, want) in table {
        let close = reply.starts_with("421");
        let mut script = [vec![greeting()], ehlo(&["ENHANCEDSTATUSCODES"])].concat();
        script.push(expect(format!("MAIL FROM:<{FROM}>")));
        if !matches!(at, At::Mail) {
            script.extend([send("250 2.1.0 ok\r\n"), expect(format!("RCPT TO:<{TO}>"))]);
        }
        if matches!(at, At::DataCommand | At::DataEnd) {
            script.extend([send("250 2.1.5 ok\r\n"), expect("DATA")]);
        }
        if matches!(at, At::DataEnd) {
            script.extend([send("354 go ahead\r\n"), Step::ReadData]);
        }
        script.push(send(format!("{reply}\r\n")));
        script.push(if close {
            Step::Close
        } else {
            Step::QuitOrClose
        });
        let server = FakeServer::start(script);
        let run = run(simple_send(&server, &["--tls", "none"]));
        let context = format!("case: {reply:?} at {at:?}\n{run}");
        let session = server.finish_with(&context);
        assert!(run.code == Some(want), "expected exit {want}\n{context}");
        let (code, text) = reply.split_at(3);
        let text = text.trim_start_matches(|c: char| c == ' ' || c.is_ascii_digit() || c == '.');
        assert!(
            run.stderr.contains(code) && run.stderr.contains(text),
            "stderr must carry the server's reply {code} {text:?}\n{context}"
        );
        if !matches!(at, At::DataEnd) {
            assert!(session.data.is_empty(), "no message may be sent\n{context}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 11, 12. EHLO fallback and greetings
// ---------------------------------------------------------------------------------------

#[test]
fn ehlo_answered_502_falls_back_to_helo() {
    let script = [
        vec![
            greeting(),
            expect("EHLO postie.test"),
            send("502 5.5.2 command not recognized\r\n"),
            expect("HELO postie.test"),
            send("250 fake.test\r\n"),
        ],
        accepted_tail(&[TO]),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(simple_send(&server, &["--tls", "none"]));
    server.finish_with(&run.to_string());
    assert_silent_success(&run);
}

#[test]
fn bad_greetings_map_to_exit_codes() {
    // (greeting, server closes afterwards, expected exit)
    let table: &[(&'static str, bool, i32)] = &[
        ("hello\r\n", false, 76),
        ("554 5.3.2 no SMTP service here\r\n", false, 69),
        ("421 4.3.2 too busy, try later\r\n", true, 75),
    ];
    for &(greet, close, want) in table {
        let server = FakeServer::start(vec![
            send(greet),
            if close {
                Step::Close
            } else {
                Step::QuitOrClose
            },
        ]);
        let run = run(simple_send(&server, &["--tls", "none"]));
        let context = format!("case: greeting {greet:?}\n{run}");
        let session = server.finish_with(&context);
        assert!(run.code == Some(want), "expected exit {want}\n{context}");
        assert!(
            !session.saw("EHLO") && !session.saw("MAIL"),
            "{session}\n{context}"
        );
        assert!(run.stderr.starts_with("postie: "), "{context}");
    }
}

// ---------------------------------------------------------------------------------------
// 13. Timeouts and refused connections
// ---------------------------------------------------------------------------------------

#[test]
fn server_silent_after_mail_times_out_naming_the_phase() {
    let script = [
        vec![greeting()],
        ehlo(&[]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            Step::Sleep(Duration::from_secs(5)),
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        "1",
        "--tls",
        "none",
    ])
    .args(["-f", FROM, "-s", "slow", "--body", "x", TO]);
    let run = run(cmd);
    server.finish_with(&run.to_string());
    assert_exit(&run, &[75]);
    assert!(run.elapsed < Duration::from_secs(4), "took too long\n{run}");
    assert_error_line(&run, &["MAIL"]);
    assert!(run.stderr.to_ascii_lowercase().contains("time"), "{run}");
}

#[test]
fn connection_refused_is_a_temporary_failure() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let mut cmd = postie_at(&addr);
    cmd.args(["--tls", "none", "-f", FROM, "-s", "x", "--body", "x", TO]);
    let run = run(cmd);
    assert_exit(&run, &[75]);
    assert_error_line(&run, &[]);
    assert!(run.elapsed < Duration::from_secs(5), "{run}");
}

// ---------------------------------------------------------------------------------------
// 14. Transcript
// ---------------------------------------------------------------------------------------

#[test]
fn transcript_of_starttls_and_auth_plain_is_readable_and_masked() {
    let script = [
        tls_prelude(&["AUTH PLAIN LOGIN"]),
        auth_plain_ok(),
        accepted_tail(&[TO]),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(&server, &["--tls-ca", ca(), "-v"]));
    server.finish_with(&run.to_string());
    assert_exit(&run, &[0]);
    assert!(
        run.stdout.is_empty(),
        "the transcript goes to stderr\n{run}"
    );
    assert_stderr_has(
        &run,
        &[
            "=== Connected",
            "<-  220",
            " -> EHLO postie.test",
            " -> STARTTLS",
            "=== TLS established",
            " ~> EHLO postie.test",
            "<~  250",
            " ~> AUTH PLAIN ********",
            "<~  235",
            "positive completion",
        ],
    );
    for secret in [PASSWORD, PLAIN_B64, PASS_B64] {
        assert!(
            !run.stderr.contains(secret),
            "transcript leaks {secret:?}\n{run}"
        );
    }
}

#[test]
fn transcript_of_auth_login_is_masked() {
    let script = [
        tls_prelude(&["AUTH PLAIN LOGIN"]),
        auth_login_ok(),
        accepted_tail(&[TO]),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(
        &server,
        &["--tls-ca", ca(), "--auth", "login", "-v"],
    ));
    server.finish_with(&run.to_string());
    assert_exit(&run, &[0]);
    assert_stderr_has(&run, &[" ~> AUTH LOGIN", "<~  334", "<~  235"]);
    for secret in [PASSWORD, PLAIN_B64, PASS_B64] {
        assert!(
            !run.stderr.contains(secret),
            "transcript leaks {secret:?}\n{run}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 15. Dry run
// ---------------------------------------------------------------------------------------

#[test]
fn dry_run_prints_message_and_envelope_without_connecting() {
    // A server that would notice any connection (design: --dry-run opens none).
    let server = FakeServer::start(vec![greeting(), Step::QuitOrClose]);
    let mut cmd = postie_at(&server.addr());
    cmd.args([
        "--dry-run",
        "--tls",
        "none",
        "-f",
        FROM,
        "-s",
        "Dry subject",
    ])
    .args(["--body", "dry body line", "--cc", "cc@example.test"])
    .args(["--bcc", "hidden@example.test", TO]);
    let run = run(cmd);
    let session = server.finish_if_connected(&run.to_string());
    assert!(
        session.is_none(),
        "--dry-run connected to the server\n{run}"
    );
    assert_exit(&run, &[0]);
    for want in [
        "Subject: Dry subject",
        "dry body line",
        FROM,
        TO,
        "cc@example.test",
        "hidden@example.test",
    ] {
        assert!(run.stdout.contains(want), "stdout lacks {want:?}\n{run}");
    }
}

// ---------------------------------------------------------------------------------------
// 16. Ready-made messages
// ---------------------------------------------------------------------------------------

#[test]
fn ready_message_is_sent_unchanged_except_line_endings_and_mbox_line() {
    let expected = "From: Sender <sender@example.test>\r\n\
                    To: rcpt@example.test\r\n\
                    Subject: raw message\r\n\
                    Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
                    Message-ID: <raw-1@example.test>\r\n\
                    \r\n\
                    first line\r\n\
                    ..leading dot\r\n\
                    ...two dots\r\n\
                    From here on, a body line\r\n\
                    last line\r\n\
                    .\r\n";
    let body_lf = "From: Sender <sender@example.test>\n\
                   To: rcpt@example.test\n\
                   Subject: raw message\n\
                   Date: Mon, 1 Jan 2024 00:00:00 +0000\n\
                   Message-ID: <raw-1@example.test>\n\
                   \n\
                   first line\n\
                   .leading dot\n\
                   ..two dots\n\
                   From here on, a body line\n\
                   last line\n";
    let mbox = format!("From sender@example.test Mon Jan  1 00:00:00 2024\n{body_lf}");
    let crlf = body_lf.replace('\n', "\r\n");
    let no_final_newline = body_lf.trim_end_matches('\n').to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("message.eml");
    std::fs::write(&file, &mbox).expect("write message");
    // (case, --message argument, stdin)
    let cases: [(&str, &Path, Option<&str>); 3] = [
        ("file, LF, mbox From line", &file, None),
        ("stdin, CRLF", Path::new("-"), Some(crlf.as_str())),
        (
            "stdin, no final newline",
            Path::new("-"),
            Some(no_final_newline.as_str()),
        ),
    ];
    for (case, arg, stdin) in cases {
        let script = [vec![greeting()], ehlo(&[]), accepted_tail(&[TO])].concat();
        let server = FakeServer::start(script);
        let mut cmd = postie_at(&server.addr());
        cmd.args(["--tls", "none", "-f", FROM, "--message"])
            .arg(arg)
            .arg(TO);
        let run = run_with(cmd, stdin.map(str::as_bytes));
        let context = format!("case: {case}\n{run}");
        let session = server.finish_with(&context);
        assert!(run.code == Some(0), "expected exit 0\n{context}");
        let payload = only_payload(&session, &run);
        assert_eq!(payload, expected, "{context}");
    }
}

// ---------------------------------------------------------------------------------------
// 17. Bad input never reaches the server
// ---------------------------------------------------------------------------------------

/// One row of [`bad_input_is_rejected_before_connecting`].
struct Bad {
    case: &'static str,
    args: &'static [&'static str],
    allowed: &'static [i32],
    one_line: bool,
}

impl Bad {
    fn new(case: &'static str, args: &'static [&'static str]) -> Bad {
        Bad {
            case,
            args,
            allowed: &[],
            one_line: true,
        }
    }

    fn exits(self, allowed: &'static [i32]) -> Bad {
        Bad { allowed, ..self }
    }

    fn multiline(self) -> Bad {
        Bad {
            one_line: false,
            ..self
        }
    }
}

#[test]
fn bad_input_is_rejected_before_connecting() {
    const MISSING: &str = "/nonexistent-postie-test/missing.txt";
    const INJECT_CRLF: &str = "X-A: b\r\nBcc: evil@x.test";
    const INJECT_LF: &str = "X-A: b\nBcc: evil@x.test";
    const SUBJECT_CRLF: &str = "hi\r\nBcc: evil@x.test";
    // Each row: the case, the arguments after `--tls none -f FROM`, the allowed exits, and
    // whether stderr must be exactly one `postie: ...` line (clap's usage errors are longer).
    let table = [
        Bad::new(
            "header injection CRLF",
            &["-s", "s", "-H", INJECT_CRLF, "--body", "x", TO],
        )
        .exits(&[65, 64]),
        Bad::new(
            "header injection LF",
            &["-s", "s", "-H", INJECT_LF, "--body", "x", TO],
        )
        .exits(&[65, 64]),
        Bad::new(
            "subject injection",
            &["-s", SUBJECT_CRLF, "--body", "x", TO],
        )
        .exits(&[65, 64]),
        Bad::new(
            "unreadable --body-file",
            &["-s", "s", "--body-file", MISSING, TO],
        )
        .exits(&[66]),
        Bad::new(
            "unreadable --attach",
            &["-s", "s", "--body", "x", "-a", MISSING, TO],
        )
        .exits(&[66]),
        Bad::new("unreadable --message", &["--message", MISSING, TO]).exits(&[66]),
        Bad::new("no recipients", &["-s", "s", "--body", "x"])
            .exits(&[64, 65])
            .multiline(),
        Bad::new(
            "unknown flag",
            &["-s", "s", "--body", "x", "--frobnicate", TO],
        )
        .exits(&[64])
        .multiline(),
    ];
    for Bad {
        case,
        args,
        allowed,
        one_line,
    } in table
    {
        let server = FakeServer::start(vec![greeting(), Step::QuitOrClose]);
        let mut cmd = postie_at(&server.addr());
        cmd.args(["--tls", "none", "-f", FROM]).args(args);
        let run = run(cmd);
        let context = format!("case: {case}\n{run}");
        let session = server.finish_if_connected(&context);
        assert!(session.is_none(), "bad input reached the server\n{context}");
        assert!(
            run.code.is_some_and(|c| allowed.contains(&c)),
            "expected exit in {allowed:?}\n{context}"
        );
        let lines = run.stderr.lines().count();
        assert!(lines >= 1, "no error message\n{context}");
        if one_line {
            assert!(
                lines == 1 && run.stderr.starts_with("postie: "),
                "expected one `postie: ...` line\n{context}"
            );
        }
    }
}

/// `--envelope-from` sets MAIL FROM alone (bounces go there, From: stays), `<>` is the
/// null sender, and `--reply-to` adds a Reply-To: header: the whole dry run, exactly.
#[test]
fn envelope_from_and_reply_to() {
    let mut cmd = postie();
    cmd.args(["--dry-run", "--server", "relay.test", "-f", "me@ex.org"])
        .args(["--envelope-from", "bounces@ex.org"])
        .args([
            "--reply-to",
            "Help <help@ex.org>,b@ex.org",
            "-s",
            "hi",
            "--body",
            "x",
        ])
        .arg("a@b.org");
    let out = crate::support::run::run(cmd, None, Duration::from_secs(30));
    out.assert_code(0, "dry run");
    assert_eq!(
        out.stdout,
        "# server: relay.test:587 (starttls)\nMAIL FROM:<bounces@ex.org>\nRCPT TO:<a@b.org>\n\n\
         From: <me@ex.org>\r\nTo: <a@b.org>\r\nSubject: hi\r\n\
         Reply-To: \"Help\" <help@ex.org>, <b@ex.org>\r\n\
         Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <postie-test@postie.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\nx",
        "{}",
        out.describe()
    );
    let mut cmd = postie();
    cmd.args([
        "--dry-run",
        "--server",
        "relay.test",
        "--envelope-from",
        "<>",
    ])
    .args(["--message", "-", "a@b.org"]);
    let out = crate::support::run::run(
        cmd,
        Some(b"From: me@ex.org\n\nbody\n"),
        Duration::from_secs(30),
    );
    out.assert_code(0, "null sender");
    assert!(
        out.stdout.lines().nth(1) == Some("MAIL FROM:<>"),
        "{}",
        out.describe()
    );
    // CR or LF in either is refused before anything else (65).
    for flag in ["--envelope-from", "--reply-to"] {
        let mut cmd = postie();
        cmd.args([
            "--dry-run",
            "--server",
            "relay.test",
            flag,
            "a@x\r\nBcc: e@x",
            "a@b.org",
        ]);
        crate::support::run::run(cmd, None, Duration::from_secs(30)).assert_code(65, flag);
    }
}

/// `-H` may set any header postie does not write itself; for one it does, the one error
/// line names the header and says why (64), before anything is sent. A -H Message-ID or
/// Date replaces postie's own (one copy, also in test mode).
#[test]
fn h_refuses_the_headers_postie_writes_naming_them_and_why() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["-H", "From: boss@ex.org"],
            "postie: -H From: postie writes the From: header itself, from -f ADDR (--from); \
             give it there\n",
        ),
        (
            &["-H", "Subject: x"],
            "postie: -H Subject: postie writes the Subject: header itself, from -s TEXT \
             (--subject); give it there\n",
        ),
        (
            &["-H", "Bcc: hidden@ex.org"],
            "postie: -H Bcc: a Bcc: header would show the blind copies to every recipient; \
             give them with -b ADDR (--bcc), which never appears in the message\n",
        ),
        (
            &["-H", "Reply-To: a@ex.org", "--reply-to", "b@ex.org"],
            "postie: -H Reply-To and --reply-to: that would be two Reply-To: headers; give it \
             once\n",
        ),
        (
            &["-H", "Content-Disposition: inline"],
            "postie: -H Content-Disposition: postie writes the MIME headers (Content-*) itself \
             for the body and attachments; send a ready message with --message for your own\n",
        ),
        (
            &[
                "-H",
                "Date: Mon, 1 Jan 2024 00:00:00 +0000",
                "-H",
                "Date: now",
            ],
            "postie: -H Date given twice: a message has at most one Date: header (RFC 5322 \
             §3.6)\n",
        ),
    ];
    for (extra, line) in cases {
        let mut cmd = postie();
        cmd.args(["--dry-run", "--server", "relay.test", "-f", "me@ex.org"])
            .args(*extra)
            .args(["--body", "x", "a@b.org"]);
        let out = crate::support::run::run(cmd, None, Duration::from_secs(30));
        out.assert_code(64, line);
        assert_eq!(out.stderr, *line);
        assert!(out.stdout.is_empty(), "{}", out.describe());
    }
    let mut cmd = postie();
    cmd.args(["--dry-run", "--server", "relay.test", "-f", "me@ex.org"])
        .args([
            "-H",
            "Message-ID: <mine@ex.org>",
            "-H",
            "Reply-To: r@ex.org",
        ])
        .args(["--body", "x", "a@b.org"]);
    let out = crate::support::run::run(cmd, None, Duration::from_secs(30));
    out.assert_code(0, "own Message-ID and Reply-To");
    assert_eq!(
        out.stdout.matches("Message-ID:").count(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Message-ID: <mine@ex.org>\r\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Reply-To: r@ex.org\r\n"),
        "{}",
        out.stdout
    );
}

/// Plain SMTP/STARTTLS chosen for port 465, where the server waits for a TLS handshake:
/// 10 s of silence end with a hint, not RFC 5321's 5-minute greeting timeout. Port 465
/// needs root to bind; elsewhere the test says it skips.
#[test]
fn silence_on_port_465_ends_in_10_s_with_a_tls_hint() {
    let listener = match TcpListener::bind("127.0.0.1:465") {
        Ok(l) => l,
        Err(e) => {
            crate::support::skip(&format!("cannot bind 127.0.0.1:465 ({e})"));
            return;
        }
    };
    let server = std::thread::spawn(move || {
        // Accept and say nothing, as an implicit-TLS server does to a plain client.
        let conn = listener.accept().map(|(c, _)| c);
        std::thread::sleep(Duration::from_secs(15));
        drop(conn);
    });
    let mut cmd = postie();
    cmd.args(["--server", "127.0.0.1:465", "--tls", "starttls", "-f", FROM])
        .args(["-s", "x", "--body", "x", TO]);
    let out = crate::support::run::run(cmd, None, Duration::from_secs(30));
    out.assert_code(75, "silent 465");
    assert_eq!(
        out.stderr,
        "postie: the server sent no greeting: port 465 usually speaks implicit TLS \
         (--tls implicit): timed out waiting for the server's greeting (10 s)\n",
        "{}",
        out.describe()
    );
    assert!(
        out.elapsed >= Duration::from_secs(9) && out.elapsed < Duration::from_secs(14),
        "{}",
        out.describe()
    );
    drop(server);
}
