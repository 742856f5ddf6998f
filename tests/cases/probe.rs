//! `--quit-after PHASE` and `--probe`: the built postie against the scripted fake server
//! ([`crate::support::fake_server`]) and against a real Postfix ([`crate::support::mta`]).
//!
//! Owns: that `--quit-after` stops after exactly its phase (the server's record of the
//! commands it received is compared whole, and no DATA payload may ever arrive: RFC 5321
//! §4.1.1.4, the message exists only after CRLF.CRLF), that runs before `data` never read
//! stdin, that failures before the phase keep their exit codes (design §2); and that
//! `--probe` reports what the server offers before and after STARTTLS (RFC 3207), the TLS
//! certificate (compared with the test PKI) and the warnings.
//! Must not: touch anything but 127.0.0.1, put a password on argv, or wait unboundedly
//! (every postie run is killed after [`RUN_LIMIT`]). `--probe --mx` asks the in-process
//! test DNS server ([`crate::support::dns_server`]) through `--resolver`, never real DNS.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::certs::pki;
use crate::support::fake_server::{
    ehlo, expect, expect_prefix, greeting, quit, send, starttls, FakeServer, Session, Step,
};
use crate::support::mta::Postfix;
use crate::support::postie;

const FROM: &str = "sender@example.test";
const TO: &str = "rcpt@example.test";
const USER: &str = "user";
const PASSWORD: &str = "s3cr3t-Pa55";
/// base64("\0user\0s3cr3t-Pa55") (RFC 4616 §2).
const PLAIN_B64: &str = "AHVzZXIAczNjcjN0LVBhNTU=";
const RUN_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Running postie
// ---------------------------------------------------------------------------------------

/// What postie's stdin is.
enum Input {
    /// /dev/null.
    Null,
    /// A pipe that stays open, empty, until postie exits: a run that reads stdin hangs
    /// until it is killed, so a prompt exit proves stdin was left alone.
    HeldOpen,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(self.code, Some(code), "{what}: {}", self.describe());
    }

    /// The commands postie sent, per the `-v` transcript (` -> ` clear, ` ~> ` in TLS).
    fn sent_commands(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix(" -> ").or_else(|| l.strip_prefix(" ~> ")))
            .map(str::to_owned)
            .collect()
    }
}

fn run(mut cmd: Command, input: Input) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Input::HeldOpen = input {
        cmd.stdin(Stdio::piped());
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn postie");
    // Kept (open, never written) until postie has exited.
    let held = child.stdin.take();
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout pipe")));
    let err = drain(Box::new(child.stderr.take().expect("stderr pipe")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for postie") {
            break Some(status);
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    drop(held);
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "postie did not exit within {RUN_LIMIT:?} (did it read stdin?); killed\n{}",
        run.describe()
    );
    run
}

fn ca() -> &'static str {
    pki().ca_pem.to_str().expect("UTF-8 path")
}

/// postie at the fake server, STARTTLS with the test CA, logged in, one recipient, no
/// message given (its body would come from stdin).
fn quit_after(server: &FakeServer, phase: &str) -> Command {
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        "10",
        "--tls-ca",
        ca(),
    ])
    .args(["--user", USER, "-f", FROM, "-s", "not sent", "-v"])
    .args(["--quit-after", phase, TO])
    .env("POSTIE_PASSWORD", PASSWORD);
    cmd
}

// ---------------------------------------------------------------------------------------
// --quit-after against the fake server
// ---------------------------------------------------------------------------------------

/// The whole dialogue, as far as `phase`, ending the way postie must end it there.
fn script_up_to(phase: &str) -> Vec<Step> {
    let order = [
        "connect", "greeting", "ehlo", "starttls", "tls", "auth", "mail", "rcpt", "data",
    ];
    let at = order.iter().position(|p| *p == phase).expect("known phase");
    let mut steps = Vec::new();
    let stages: [Vec<Step>; 9] = [
        vec![],
        vec![greeting()],
        // SIZE and 8BITMIME offered: without a message MAIL FROM must carry neither.
        ehlo(&["STARTTLS", "SIZE 10485760", "8BITMIME"]),
        starttls(Step::StartTls),
        ehlo(&["AUTH PLAIN LOGIN", "SIZE 10485760", "8BITMIME"]),
        vec![
            expect(format!("AUTH PLAIN {PLAIN_B64}")),
            send("235 2.7.0 Authentication successful\r\n"),
        ],
        vec![
            // With data the message is prepared, so MAIL FROM declares its SIZE.
            if phase == "data" {
                expect_prefix(format!("MAIL FROM:<{FROM}> SIZE="))
            } else {
                expect(format!("MAIL FROM:<{FROM}>"))
            },
            send("250 2.1.0 sender ok\r\n"),
        ],
        vec![
            expect(format!("RCPT TO:<{TO}>")),
            send("250 2.1.5 recipient ok\r\n"),
        ],
        vec![
            expect("DATA"),
            send("354 end data with <CR><LF>.<CR><LF>\r\n"),
        ],
    ];
    for stage in stages.into_iter().take(at + 1) {
        steps.extend(stage);
    }
    match phase {
        // Nothing more: not QUIT (it would be message text), not the end-of-data mark.
        "connect" | "data" => steps.push(Step::ExpectClose),
        _ => steps.extend(quit()),
    }
    steps
}

/// What the server must have received for `phase`, in order (for `data`, MAIL FROM also
/// carries SIZE=, checked separately).
fn commands_up_to(phase: &str) -> Vec<String> {
    let steps = [
        ("connect", None),
        ("greeting", None),
        ("ehlo", Some("EHLO postie.test".to_string())),
        ("starttls", Some("STARTTLS".to_string())),
        ("tls", Some("EHLO postie.test".to_string())),
        ("auth", Some(format!("AUTH PLAIN {PLAIN_B64}"))),
        ("mail", Some(format!("MAIL FROM:<{FROM}>"))),
        ("rcpt", Some(format!("RCPT TO:<{TO}>"))),
        ("data", Some("DATA".to_string())),
    ];
    let mut out = Vec::new();
    for (p, cmd) in steps {
        out.extend(cmd);
        if p == phase {
            break;
        }
    }
    if !matches!(phase, "connect" | "data") {
        out.push("QUIT".to_string());
    }
    out
}

#[test]
fn quit_after_every_phase_stops_exactly_there() {
    for phase in [
        "connect", "greeting", "ehlo", "starttls", "tls", "auth", "mail", "rcpt", "data",
    ] {
        let server = FakeServer::start(script_up_to(phase));
        let mut cmd = quit_after(&server, phase);
        let input = if phase == "data" {
            // The message is prepared for data (SIZE); it must still not be sent.
            cmd.args(["--body", "must never arrive"]);
            Input::Null
        } else {
            Input::HeldOpen
        };
        let run = run(cmd, input);
        let session: Session = server.finish_with(&run.describe());
        run.assert_code(0, phase);
        let mut received = session.received.clone();
        if phase == "data" {
            let mail = received
                .iter_mut()
                .find(|l| l.starts_with("MAIL FROM:"))
                .expect("MAIL FROM received");
            assert!(
                mail.starts_with(&format!("MAIL FROM:<{FROM}> SIZE=")),
                "{mail}"
            );
            *mail = format!("MAIL FROM:<{FROM}>");
        }
        assert_eq!(
            received,
            commands_up_to(phase),
            "{phase}: {}",
            run.describe()
        );
        assert!(session.data.is_empty(), "{phase}: a DATA payload arrived");
        assert!(
            run.stdout.is_empty() && !run.stderr.lines().any(|l| l.starts_with("*** ")),
            "{phase}: {}",
            run.describe()
        );
        if phase != "connect" {
            assert!(
                run.stderr.contains(&format!("=== --quit-after {phase}: ")),
                "{phase}: the transcript should say where it stopped: {}",
                run.describe()
            );
        }
        let in_tls = matches!(
            phase,
            "starttls" | "tls" | "auth" | "mail" | "rcpt" | "data"
        );
        assert_eq!(session.tls_from.is_some(), in_tls, "{phase}");
    }
}

#[test]
fn quit_after_data_closes_without_the_message() {
    // -vv would show message lines as they are sent: there must be none.
    let server = FakeServer::start(script_up_to("data"));
    let mut cmd = quit_after(&server, "data");
    cmd.args(["--body", "secret body line", "-v"]);
    let run = run(cmd, Input::Null);
    let session = server.finish_with(&run.describe());
    run.assert_code(0, "data");
    assert!(session.data.is_empty());
    assert!(
        !run.stderr.contains("secret body line"),
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains(
            "=== --quit-after data: closing without sending the message or the end-of-data \
             mark (nothing is delivered)"
        ),
        "{}",
        run.describe()
    );
    assert_eq!(session.received.last().map(String::as_str), Some("DATA"));
}

#[test]
fn quit_after_with_implicit_tls() {
    // connect: the handshake is part of connecting; then a close.
    let server = FakeServer::start(vec![Step::StartTls, Step::ExpectClose]);
    let mut cmd = quit_after(&server, "connect");
    cmd.args(["--tls", "implicit"]);
    let first = run(cmd, Input::HeldOpen);
    let session = server.finish_with(&first.describe());
    first.assert_code(0, "implicit connect");
    assert!(session.received.is_empty());

    // tls: after the first EHLO, which is already inside TLS.
    let script = [
        vec![Step::StartTls, greeting()],
        ehlo(&["AUTH PLAIN"]),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = quit_after(&server, "tls");
    cmd.args(["--tls", "implicit"]);
    let run = run(cmd, Input::HeldOpen);
    let session = server.finish_with(&run.describe());
    run.assert_code(0, "implicit tls");
    assert_eq!(session.received, ["EHLO postie.test", "QUIT"]);
    assert_eq!(session.tls_from, Some(0));
}

#[test]
fn quit_after_mail_needs_no_recipient_and_rcpt_needs_one() {
    let script = [
        vec![greeting()],
        ehlo(&["SIZE 1000", "8BITMIME"]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 ok\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--tls",
        "none",
        "--timeout",
        "10",
    ])
    .args(["-f", FROM, "--quit-after", "mail"]);
    let run1 = run(cmd, Input::HeldOpen);
    server.finish_with(&run1.describe());
    run1.assert_code(0, "mail without recipients");

    let server = FakeServer::start(vec![]);
    let mut cmd = postie();
    cmd.args(["--server", &server.addr(), "--tls", "none"])
        .args(["-f", FROM, "--quit-after", "rcpt"]);
    let run2 = run(cmd, Input::HeldOpen);
    assert!(server.finish_if_connected(&run2.describe()).is_none());
    run2.assert_code(64, "rcpt without recipients");
    assert!(
        run2.stderr
            .contains("--quit-after rcpt: name at least one recipient"),
        "{}",
        run2.describe()
    );
}

#[test]
fn quit_after_refuses_phases_the_run_will_not_have() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--tls", "none", "--quit-after", "starttls"],
            "--quit-after starttls",
        ),
        (
            &["--tls", "implicit", "--quit-after", "starttls"],
            "--quit-after starttls",
        ),
        (
            &["--tls", "none", "--quit-after", "tls"],
            "--quit-after tls",
        ),
        (&["--quit-after", "auth"], "--quit-after auth: no login"),
    ];
    for (args, says) in cases {
        let server = FakeServer::start(vec![]);
        let mut cmd = postie();
        cmd.args(["--server", &server.addr()]).args(*args).arg(TO);
        let run = run(cmd, Input::HeldOpen);
        assert!(server.finish_if_connected(&run.describe()).is_none());
        run.assert_code(64, says);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.describe());
    }
}

#[test]
fn failures_before_the_phase_keep_their_exit_codes() {
    // RCPT refused: 67, the transaction abandoned, then QUIT.
    let script = [
        vec![greeting()],
        ehlo(&[]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 ok\r\n"),
            expect(format!("RCPT TO:<{TO}>")),
            send("550 5.1.1 no such user\r\n"),
            expect("RSET"),
            send("250 2.0.0 ok\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--tls",
        "none",
        "--timeout",
        "10",
    ])
    .args(["-f", FROM, "--quit-after", "data", "--body", "x", TO]);
    let run1 = run(cmd, Input::Null);
    let session = server.finish_with(&run1.describe());
    run1.assert_code(67, "rcpt refused before data");
    assert!(session.data.is_empty() && !session.saw("DATA"));
    assert!(
        run1.stderr
            .contains("RCPT TO <rcpt@example.test> refused: 550 5.1.1 no such user"),
        "{}",
        run1.describe()
    );

    // STARTTLS required but not offered: 69 before the phase.
    let script = [vec![greeting()], ehlo(&["AUTH PLAIN"]), quit()].concat();
    let server = FakeServer::start(script);
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        "10",
        "--quit-after",
        "tls",
    ]);
    let run2 = run(cmd, Input::HeldOpen);
    server.finish_with(&run2.describe());
    run2.assert_code(69, "no STARTTLS before tls");

    // AUTH refused: 77.
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS"]),
        vec![
            expect("STARTTLS"),
            send("220 2.0.0 go ahead\r\n"),
            Step::StartTls,
        ],
        ehlo(&["AUTH PLAIN"]),
        vec![
            expect(format!("AUTH PLAIN {PLAIN_B64}")),
            send("535 5.7.8 authentication failed\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run3 = run(quit_after(&server, "auth"), Input::HeldOpen);
    server.finish_with(&run3.describe());
    run3.assert_code(77, "auth refused");
}

// ---------------------------------------------------------------------------------------
// --probe against the fake server
// ---------------------------------------------------------------------------------------

/// The cells of the report's extension row for `keyword` (columns are separated by at
/// least two spaces).
fn row(report: &str, keyword: &str) -> Vec<String> {
    let line = report
        .lines()
        .find(|l| {
            l.strip_prefix("  ")
                .and_then(|l| l.split("  ").next())
                .is_some_and(|k| k == keyword)
        })
        .unwrap_or_else(|| panic!("no {keyword} row in:\n{report}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// The value of a `  name   value` line of the report.
fn field<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("  ")?.strip_prefix(name)?;
            rest.starts_with(' ').then(|| rest.trim())
        })
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{report}"))
}

fn warnings(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter_map(|l| l.strip_prefix("  ! "))
        .collect()
}

#[test]
fn probe_reports_before_and_after_starttls() {
    let script = [
        vec![greeting()],
        ehlo(&[
            "PIPELINING",
            "SIZE 10485760",
            "STARTTLS",
            "AUTH PLAIN LOGIN",
            "8BITMIME",
            "X-EXPERIMENT a b",
        ]),
        starttls(Step::StartTls),
        ehlo(&[
            "PIPELINING",
            "SIZE 10485760",
            "AUTH PLAIN LOGIN SCRAM-SHA-256",
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "REQUIRETLS",
        ]),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let port = server.port;
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        "10",
        "--tls-ca",
        ca(),
    ])
    .args(["--probe", "--user", USER, "--password-command", "exit 3"]);
    let run = run(cmd, Input::HeldOpen);
    let session = server.finish_with(&run.describe());
    run.assert_code(0, "probe");
    assert_eq!(
        session.received,
        ["EHLO postie.test", "STARTTLS", "EHLO postie.test", "QUIT"]
    );
    assert_eq!(session.tls_from, Some(2));
    let r = &run.stdout;
    assert!(r.starts_with(&format!("127.0.0.1 port {port}\n")), "{r}");
    assert_eq!(field(r, "greeting"), "220 fake.test ESMTP postie-fake");
    assert_eq!(field(r, "EHLO name"), "fake.test");
    assert!(field(r, "TLS").starts_with("STARTTLS (TLSv1."), "{r}");
    assert_eq!(row(r, "extension"), ["before TLS", "inside TLS"]);
    assert_eq!(row(r, "STARTTLS"), ["yes", "no"]);
    assert_eq!(row(r, "AUTH"), ["PLAIN LOGIN", "PLAIN LOGIN SCRAM-SHA-256"]);
    assert_eq!(
        row(r, "SIZE"),
        ["10 MiB (10485760 bytes)", "10 MiB (10485760 bytes)"]
    );
    for (keyword, before, after) in [
        ("PIPELINING", "yes", "yes"),
        ("CHUNKING", "no", "yes"),
        ("8BITMIME", "yes", "yes"),
        ("SMTPUTF8", "no", "yes"),
        ("DSN", "no", "yes"),
        ("ENHANCEDSTATUSCODES", "no", "yes"),
        ("REQUIRETLS", "no", "yes"),
        ("X-EXPERIMENT", "a b", "no"),
    ] {
        assert_eq!(row(r, keyword), [before, after], "{keyword}");
    }
    assert_eq!(field(r, "certificate"), "verified for 127.0.0.1");
    assert_eq!(
        warnings(r),
        ["AUTH (PLAIN LOGIN) is offered before TLS: clients can send passwords in clear text"]
    );
}

#[test]
fn probe_reports_a_refused_starttls_and_exits_0() {
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS"]),
        vec![
            expect("STARTTLS"),
            send("454 4.7.0 TLS not available due to local problem\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie();
    cmd.args(["--server", &server.addr(), "--timeout", "10", "--probe"]);
    let run = run(cmd, Input::HeldOpen);
    server.finish_with(&run.describe());
    run.assert_code(0, "refused STARTTLS");
    assert_eq!(field(&run.stdout, "TLS"), "STARTTLS offered, failed");
    assert_eq!(
        warnings(&run.stdout),
        ["STARTTLS is offered but refused: 454 4.7.0 TLS not available due to local problem"]
    );
}

#[test]
fn probe_that_cannot_connect_prints_no_report() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cmd = postie();
    cmd.args(["--server", &format!("127.0.0.1:{port}"), "--probe"]);
    let run = run(cmd, Input::HeldOpen);
    run.assert_code(75, "refused connection");
    assert!(run.stdout.is_empty(), "{}", run.describe());
    assert!(run.stderr.contains("cannot connect"), "{}", run.describe());
}

#[test]
fn probe_with_tls_none_leaves_starttls_alone() {
    let script = [vec![greeting()], ehlo(&["STARTTLS", "AUTH LOGIN"]), quit()].concat();
    let server = FakeServer::start(script);
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        "10",
        "--tls",
        "none",
        "--probe",
    ]);
    let run = run(cmd, Input::HeldOpen);
    let session = server.finish_with(&run.describe());
    run.assert_code(0, "--tls none");
    assert_eq!(session.received, ["EHLO postie.test", "QUIT"]);
    assert_eq!(
        field(&run.stdout, "TLS"),
        "not tried (--tls none); STARTTLS offered"
    );
    assert_eq!(row(&run.stdout, "extension"), ["before TLS"]);
    assert_eq!(
        warnings(&run.stdout),
        ["AUTH (LOGIN) is offered before TLS: clients can send passwords in clear text"]
    );
}

// ---------------------------------------------------------------------------------------
// Against Postfix
// ---------------------------------------------------------------------------------------

/// postie at Postfix's STARTTLS submission port with the test CA, logged in.
fn postfix_submission(pf: &Postfix) -> Command {
    let mut cmd = postie();
    cmd.args(["--timeout", "30", "--tls-ca", ca()])
        .arg("--server")
        .arg(format!("127.0.0.1:{}", pf.submission_port))
        .args(["--user", &pf.user])
        .arg("--password-file")
        .arg(&pf.password_file)
        .args(["--auth", "plain", "-f", "alice@example.test", "-v"]);
    cmd
}

#[test]
fn postfix_quit_after_every_phase() {
    let Some(pf) = Postfix::get() else { return };
    let cases: &[(&str, &[&str])] = &[
        ("greeting", &["QUIT"]),
        ("ehlo", &["EHLO postie.test", "QUIT"]),
        ("starttls", &["EHLO postie.test", "STARTTLS", "QUIT"]),
        (
            "tls",
            &["EHLO postie.test", "STARTTLS", "EHLO postie.test", "QUIT"],
        ),
        (
            "auth",
            &[
                "EHLO postie.test",
                "STARTTLS",
                "EHLO postie.test",
                "AUTH PLAIN ********",
                "QUIT",
            ],
        ),
        (
            "mail",
            &[
                "EHLO postie.test",
                "STARTTLS",
                "EHLO postie.test",
                "AUTH PLAIN ********",
                "MAIL FROM:<alice@example.test>",
                "QUIT",
            ],
        ),
        (
            "rcpt",
            &[
                "EHLO postie.test",
                "STARTTLS",
                "EHLO postie.test",
                "AUTH PLAIN ********",
                "MAIL FROM:<alice@example.test>",
                "RCPT TO:<qa-rcpt@example.test>",
                "QUIT",
            ],
        ),
    ];
    for (phase, sent) in cases {
        let mut cmd = postfix_submission(pf);
        cmd.args(["--quit-after", phase, "qa-rcpt@example.test"]);
        let run = run(cmd, Input::HeldOpen);
        run.assert_code(0, phase);
        assert_eq!(run.sent_commands(), *sent, "{phase}: {}", run.describe());
        assert!(
            run.stderr.contains("<~  221 ") || run.stderr.contains("<-  221 "),
            "{phase}: QUIT should be answered: {}",
            run.describe()
        );
    }

    // connect: the TCP connection is made and closed again; nothing is said.
    let mut cmd = postfix_submission(pf);
    cmd.args(["--quit-after", "connect", "qa-rcpt@example.test"]);
    let connected = run(cmd, Input::HeldOpen);
    connected.assert_code(0, "connect");
    assert!(
        connected.sent_commands().is_empty(),
        "{}",
        connected.describe()
    );
    assert!(
        connected.stderr.contains("=== Connected to"),
        "{}",
        connected.describe()
    );

    // data: DATA answered 354, then the connection is closed: nothing is delivered.
    let rcpt = "qa-data@example.test";
    let mut cmd = postfix_submission(pf);
    cmd.args(["--quit-after", "data", "--body", "never delivered", rcpt]);
    let run = run(cmd, Input::Null);
    run.assert_code(0, "data");
    assert_eq!(
        run.sent_commands().last().map(String::as_str),
        Some("DATA"),
        "{}",
        run.describe()
    );
    assert!(run.stderr.contains("<~  354 "), "{}", run.describe());
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert!(
            pf.try_delivered(rcpt).is_none(),
            "--quit-after data delivered a message:\n{}",
            pf.log_tail(20)
        );
        thread::sleep(Duration::from_millis(200));
    }
    // Postfix saw the session end inside DATA.
    let log = pf.log();
    assert!(
        log.contains("lost connection after DATA"),
        "Postfix should log the lost connection after DATA:\n{}",
        pf.log_tail(20)
    );
}

/// Hex digits only, upper-case: fingerprints compared whatever their separators.
fn hex_only(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[test]
fn postfix_probe_starttls_shows_auth_only_inside_tls_and_the_certificate() {
    let Some(pf) = Postfix::get() else { return };
    let mut cmd = postie();
    cmd.args(["--timeout", "30", "--tls-ca", ca(), "--probe"])
        .arg("--server")
        .arg(format!("127.0.0.1:{}", pf.submission_port));
    let run = run(cmd, Input::HeldOpen);
    run.assert_code(0, "probe submission");
    let r = &run.stdout;
    assert!(
        field(r, "greeting").starts_with("220 mx.example.test ESMTP"),
        "{r}"
    );
    assert_eq!(field(r, "EHLO name"), "mx.example.test");
    assert!(field(r, "TLS").starts_with("STARTTLS (TLSv1.3, "), "{r}");
    assert_eq!(row(r, "STARTTLS"), ["yes", "no"]);
    // smtpd_tls_auth_only = yes: AUTH only inside TLS.
    let auth = row(r, "AUTH");
    assert_eq!(auth.first().map(String::as_str), Some("no"), "{r}");
    let inside: Vec<&str> = auth.get(1).map_or(vec![], |a| a.split(' ').collect());
    for mech in ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"] {
        assert!(inside.contains(&mech), "{mech} missing inside TLS: {r}");
    }
    // message_size_limit = 20971520.
    assert_eq!(row(r, "SIZE")[1], "20 MiB (20971520 bytes)");
    for keyword in [
        "PIPELINING",
        "8BITMIME",
        "DSN",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
    ] {
        assert_eq!(row(r, keyword), ["yes", "yes"], "{keyword}: {r}");
    }
    assert_eq!(row(r, "REQUIRETLS"), ["no", "no"]);
    assert_eq!(row(r, "VRFY"), ["yes", "yes"]);
    assert_eq!(row(r, "ETRN"), ["yes", "yes"]);

    // The certificate is the test PKI's leaf.
    assert_eq!(field(r, "certificate"), "verified for 127.0.0.1");
    assert!(field(r, "subject").contains("CN=localhost"), "{r}");
    assert!(field(r, "issuer").contains("CN=postie test CA"), "{r}");
    let names = field(r, "names");
    for name in ["localhost", "127.0.0.1", "::1"] {
        assert!(names.contains(name), "{name} not in {names:?}");
    }
    assert!(field(r, "valid from").starts_with("2000-01-01"), "{r}");
    assert!(field(r, "valid until").starts_with("2099-12-31"), "{r}");
    assert_eq!(hex_only(field(r, "SHA-256")), sha256_hex(&pki().cert_der));
    assert!(warnings(r).is_empty(), "{r}");
    assert!(r.contains("  warnings: none\n"), "{r}");
}

#[test]
fn postfix_probe_untrusted_certificate_is_a_warning_and_still_shown() {
    let Some(pf) = Postfix::get() else { return };
    let mut cmd = postie();
    // No --tls-ca: the test CA is unknown to the web roots.
    cmd.args(["--timeout", "30", "--probe", "-v"])
        .arg("--server")
        .arg(format!("127.0.0.1:{}", pf.submission_port));
    let run = run(cmd, Input::HeldOpen);
    run.assert_code(0, "untrusted");
    let r = &run.stdout;
    assert_eq!(field(r, "certificate"), "NOT trusted (see the warnings)");
    assert_eq!(hex_only(field(r, "SHA-256")), sha256_hex(&pki().cert_der));
    let w = warnings(r);
    assert_eq!(w.len(), 1, "{r}");
    assert!(
        w[0].starts_with("certificate not trusted: ") && w[0].contains("unknown CA"),
        "{r}"
    );
    // The second, unverified look still learned the extensions inside TLS.
    assert!(row(r, "AUTH")[1].contains("PLAIN"), "{r}");
    assert!(
        run.stderr.contains("connecting again without verification"),
        "{}",
        run.describe()
    );
}

#[test]
fn postfix_probe_implicit_tls() {
    let Some(pf) = Postfix::get() else { return };
    for trusted in [true, false] {
        let mut cmd = postie();
        cmd.args(["--timeout", "30", "--probe", "--tls", "implicit"])
            .arg("--server")
            .arg(format!("127.0.0.1:{}", pf.smtps_port));
        if trusted {
            cmd.args(["--tls-ca", ca()]);
        }
        let run = run(cmd, Input::HeldOpen);
        run.assert_code(0, "smtps");
        let r = &run.stdout;
        assert!(field(r, "TLS").starts_with("implicit (TLSv1.3, "), "{r}");
        assert_eq!(row(r, "extension"), ["inside TLS"]);
        assert!(row(r, "AUTH")[0].contains("PLAIN"), "{r}");
        assert_eq!(hex_only(field(r, "SHA-256")), sha256_hex(&pki().cert_der));
        let w = warnings(r);
        if trusted {
            assert!(w.is_empty(), "{r}");
        } else {
            // The handshake is part of connecting: the second look connects again.
            assert_eq!(w.len(), 1, "{r}");
            assert!(w[0].contains("unknown CA"), "{r}");
            assert_eq!(field(r, "certificate"), "NOT trusted (see the warnings)");
        }
    }
}

#[test]
fn postfix_probe_plain_port_warns_about_no_starttls() {
    let Some(pf) = Postfix::get() else { return };
    let port = pf.plain_port;
    let mut cmd = postie();
    cmd.args(["--timeout", "30", "--probe"])
        .arg("--server")
        .arg(format!("127.0.0.1:{port}"));
    let run = run(cmd, Input::HeldOpen);
    run.assert_code(0, "plain port");
    let r = &run.stdout;
    assert_eq!(field(r, "TLS"), "none: STARTTLS not offered");
    assert_eq!(row(r, "extension"), ["before TLS"]);
    assert_eq!(row(r, "STARTTLS"), ["no"]);
    assert!(!r.contains("TLS session"), "{r}");
    let w = warnings(r);
    assert!(
        w.contains(
            &format!("no STARTTLS on port {port}: mail crosses the network in clear text").as_str()
        ),
        "{r}"
    );
    // This port lets AUTH go in clear text (smtpd_tls_auth_only = no).
    assert!(
        w.iter().any(|l| l.starts_with("AUTH (")
            && l.ends_with("is offered before TLS: clients can send passwords in clear text")),
        "{r}"
    );
    assert!(run.stderr.is_empty(), "{}", run.describe());
}

// ---------------------------------------------------------------------------------------
// --probe --mx, with the test DNS server
// ---------------------------------------------------------------------------------------

#[test]
fn probe_mx_reports_every_host_in_preference_order() {
    use crate::support::dns_server::Zone;
    // mx1 is the fake server (via --port); mx2 does not exist.
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS"]),
        starttls(Step::StartTls),
        ehlo(&["AUTH PLAIN"]),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let port = server.port.to_string();
    let dns = Zone::new()
        .mx(
            "probe.test",
            &[(20, "mx2.probe.test"), (10, "mx1.probe.test")],
        )
        .a("mx1.probe.test", "127.0.0.1")
        .nxdomain("mx2.probe.test")
        .start();
    let mut cmd = postie();
    // Unverified: the test certificate names localhost, not mx1.probe.test.
    cmd.args(["--probe", "--mx", "probe.test", "--port", &port])
        .args(["--timeout", "10", "--tls-no-verify"])
        .args(["--resolver", &dns.addr().to_string()]);
    let run = run(cmd, Input::HeldOpen);
    let session = server.finish_with(&run.describe());
    assert_eq!(
        session.received,
        ["EHLO postie.test", "STARTTLS", "EHLO postie.test", "QUIT"]
    );
    // mx2 has no address: EX_NOHOST is the most urgent outcome.
    run.assert_code(68, "mx");
    let r = &run.stdout;
    assert!(
        r.starts_with("MX hosts of probe.test: 10 mx1.probe.test, 20 mx2.probe.test\n"),
        "{r}"
    );
    let (first, second) = r.split_once("\nmx2.probe.test").expect("two reports");
    assert!(
        first.contains(&format!(
            "\nmx1.probe.test port {port} (MX preference 10)\n"
        )),
        "{r}"
    );
    assert_eq!(
        field(first, "certificate"),
        "NOT verified (--tls-no-verify)"
    );
    assert_eq!(
        warnings(first),
        [
            "certificate is not valid for mx1.probe.test (it names DNS:localhost, \
          IP:127.0.0.1, IP:::1)"
        ]
    );
    assert!(
        second.starts_with(&format!(" port {port} (MX preference 20)\n")),
        "{r}"
    );
    assert_eq!(
        field(second, "probe failed"),
        "mx2.probe.test: no such domain (NXDOMAIN)"
    );
    assert!(!second.contains("warnings"), "{r}");
    assert!(
        run.stderr
            .contains("postie: mx2.probe.test: no such domain (NXDOMAIN)\n"),
        "{}",
        run.describe()
    );
}

// ---------------------------------------------------------------------------------------
// --probe --json, validated against schema/postie-probe.schema.json
// ---------------------------------------------------------------------------------------

fn probe_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/postie-probe.schema.json"
        );
        let text = std::fs::read_to_string(path).expect("read the schema");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the schema compiles")
    })
}

/// What every `--probe --json` run must give: one line on stdout holding one object valid
/// against the schema, with the process's exit code in it, and no password.
#[track_caller]
fn json_of(run: &Run) -> serde_json::Value {
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "one line\n{}",
        run.describe()
    );
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON: {e}\n{}", run.describe()));
    let errors: Vec<String> = probe_schema()
        .iter_errors(&doc)
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "schema violations: {errors:#?}\n{}",
        run.describe()
    );
    assert_eq!(
        doc["exit"]["code"].as_i64(),
        run.code.map(i64::from),
        "{}",
        run.describe()
    );
    for secret in [PASSWORD, PLAIN_B64] {
        assert!(!run.stdout.contains(secret), "{secret}\n{}", run.describe());
    }
    doc
}

#[test]
fn probe_json_reports_before_and_after_starttls_and_the_certificate() {
    let script = [
        vec![greeting()],
        ehlo(&[
            "PIPELINING",
            "SIZE 10485760",
            "STARTTLS",
            "AUTH PLAIN LOGIN",
            "X-EXPERIMENT a b",
        ]),
        starttls(Step::StartTls),
        ehlo(&[
            "SIZE",
            "AUTH PLAIN LOGIN SCRAM-SHA-256",
            "SMTPUTF8",
            "CHUNKING",
        ]),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let port = server.port;
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        "10",
        "--tls-ca",
        ca(),
    ])
    .args(["--probe", "--json", "--user", USER])
    .env("POSTIE_PASSWORD", PASSWORD);
    let run = run(cmd, Input::HeldOpen);
    let session = server.finish_with(&run.describe());
    run.assert_code(0, "probe --json");
    assert_eq!(
        session.received,
        ["EHLO postie.test", "STARTTLS", "EHLO postie.test", "QUIT"]
    );
    let doc = json_of(&run);
    assert_eq!(doc["domains"], serde_json::json!([]));
    assert_eq!(doc["error"], serde_json::Value::Null);
    let hosts = doc["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1, "{}", run.describe());
    let h = &hosts[0];
    assert_eq!(h["host"], "127.0.0.1");
    assert_eq!(h["port"], port);
    assert_eq!(h["address"], "127.0.0.1");
    assert_eq!(h["tls_mode"], "starttls");
    assert_eq!(h["greeting"]["code"], 220);
    assert_eq!(h["greeting"]["text"], "fake.test ESMTP postie-fake");
    assert_eq!(h["ehlo_name"], "fake.test");
    let before = &h["before_tls"];
    assert_eq!(before["starttls"], true);
    assert_eq!(before["auth"], serde_json::json!(["PLAIN", "LOGIN"]));
    assert_eq!(before["size"], 10485760);
    assert_eq!(before["pipelining"], true);
    assert_eq!(before["smtputf8"], false);
    assert!(
        before["keywords"]
            .as_array()
            .expect("keywords")
            .contains(&serde_json::json!({"keyword": "X-EXPERIMENT", "params": "a b"})),
        "{before}"
    );
    let inside = &h["inside_tls"];
    assert_eq!(inside["starttls"], false);
    assert_eq!(
        inside["auth"],
        serde_json::json!(["PLAIN", "LOGIN", "SCRAM-SHA-256"])
    );
    assert_eq!(inside["size"], 0, "a bare SIZE: no fixed limit");
    assert_eq!(
        (&inside["smtputf8"], &inside["chunking"]),
        (&true.into(), &true.into())
    );
    let tls = &h["tls"];
    assert!(
        tls["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{tls}"
    );
    assert_eq!(tls["verification"], "verified");
    assert_eq!(tls["verification_error"], serde_json::Value::Null);
    let cert = &tls["certificate"];
    assert!(
        cert["sans"]
            .as_array()
            .expect("sans")
            .contains(&"DNS:localhost".into()),
        "{cert}"
    );
    assert_eq!(h["tls_error"], serde_json::Value::Null);
    assert_eq!(
        h["warnings"],
        serde_json::json!([
            "AUTH (PLAIN LOGIN) is offered before TLS: clients can send passwords in clear text"
        ])
    );
    assert_eq!(h["error"], serde_json::Value::Null);
    assert_eq!(h["exit"], serde_json::json!({"code": 0, "name": "EX_OK"}));
}

#[test]
fn probe_json_reports_a_refused_starttls() {
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS"]),
        vec![
            expect("STARTTLS"),
            send("454 4.7.0 TLS not available due to local problem\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie();
    cmd.args(["--server", &server.addr(), "--timeout", "10"])
        .args(["--probe", "--json"]);
    let run = run(cmd, Input::HeldOpen);
    server.finish_with(&run.describe());
    run.assert_code(0, "refused STARTTLS");
    let doc = json_of(&run);
    let h = &doc["hosts"][0];
    assert_eq!(h["tls"], serde_json::Value::Null);
    assert_eq!(h["inside_tls"], serde_json::Value::Null);
    assert_eq!(
        h["tls_error"],
        serde_json::json!({
            "kind": "refused",
            "message": "454 4.7.0 TLS not available due to local problem"
        })
    );
    assert_eq!(
        h["warnings"][0],
        "STARTTLS is offered but refused: 454 4.7.0 TLS not available due to local problem"
    );
}

#[test]
fn probe_json_that_cannot_connect_still_prints_the_document() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cmd = postie();
    cmd.args([
        "--server",
        &format!("127.0.0.1:{port}"),
        "--probe",
        "--json",
    ]);
    let run = run(cmd, Input::HeldOpen);
    run.assert_code(75, "refused connection");
    let doc = json_of(&run);
    assert_eq!(doc["exit"]["name"], "EX_TEMPFAIL");
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot connect")),
        "{}",
        run.describe()
    );
    let h = &doc["hosts"][0];
    assert_eq!(h["address"], serde_json::Value::Null);
    assert_eq!(h["greeting"], serde_json::Value::Null);
    assert_eq!(h["exit"]["code"], 75);
    assert!(h["error"]
        .as_str()
        .is_some_and(|e| e.contains("cannot connect")));
    let attempt = &h["failed_attempts"][0];
    assert_eq!(
        (&attempt["address"], &attempt["port"]),
        (&"127.0.0.1".into(), &port.into())
    );
    assert!(run.stderr.contains("cannot connect"), "{}", run.describe());
}

#[test]
fn probe_json_setup_and_usage_errors_are_probe_documents() {
    // No server anywhere: a configuration error before any probe.
    let mut cmd = postie();
    cmd.args(["--probe", "--json", "-C", "/dev/null"]);
    let setup = run(cmd, Input::HeldOpen);
    let doc = json_of(&setup);
    assert_ne!(setup.code, Some(0), "{}", setup.describe());
    assert_eq!(doc["hosts"], serde_json::json!([]));
    assert!(doc["error"]["message"].is_string(), "{}", setup.describe());
    // A command line clap refuses.
    let mut cmd = postie();
    cmd.args(["--probe", "--json", "--no-such-option"]);
    let usage = run(cmd, Input::HeldOpen);
    usage.assert_code(64, "usage");
    let doc = json_of(&usage);
    assert_eq!(doc["exit"]["name"], "EX_USAGE");
}

#[test]
fn probe_json_mx_lists_each_domain_and_every_host() {
    use crate::support::dns_server::Zone;
    let script = [vec![greeting()], ehlo(&["SIZE 1000"]), quit()].concat();
    let server = FakeServer::start(script);
    let port = server.port.to_string();
    let dns = Zone::new()
        .mx(
            "probe.test",
            &[(20, "mx2.probe.test"), (10, "mx1.probe.test")],
        )
        .a("mx1.probe.test", "127.0.0.1")
        .nxdomain("mx2.probe.test")
        .nxdomain("gone.test")
        .start();
    let mut cmd = postie();
    cmd.args(["--probe", "--json", "--mx", "probe.test", "gone.test"])
        .args(["--port", &port, "--timeout", "10"])
        .args(["--resolver", &dns.addr().to_string()]);
    let run = run(cmd, Input::HeldOpen);
    server.finish_with(&run.describe());
    run.assert_code(68, "NXDOMAIN for mx2 and gone.test");
    let doc = json_of(&run);
    assert_eq!(
        doc["domains"][0],
        serde_json::json!({
            "domain": "probe.test",
            "mx": [
                {"preference": 10, "host": "mx1.probe.test"},
                {"preference": 20, "host": "mx2.probe.test"}
            ],
            "error": null
        })
    );
    assert_eq!(doc["domains"][1]["domain"], "gone.test");
    assert_eq!(doc["domains"][1]["mx"], serde_json::json!([]));
    assert!(doc["domains"][1]["error"].is_string(), "{}", run.describe());
    let hosts = doc["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2, "{}", run.describe());
    let (mx1, mx2) = (&hosts[0], &hosts[1]);
    assert_eq!(
        (&mx1["host"], &mx1["domain"], &mx1["preference"]),
        (&"mx1.probe.test".into(), &"probe.test".into(), &10.into())
    );
    assert_eq!(mx1["before_tls"]["size"], 1000);
    assert_eq!(mx1["exit"]["code"], 0);
    // Port 25 was not probed, so no STARTTLS is only a warning for an MX on the test port
    // when postie would have used it: with the default (starttls when offered), it would.
    assert!(
        mx1["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("no STARTTLS on port")),
        "{mx1}"
    );
    assert_eq!(mx2["host"], "mx2.probe.test");
    assert_eq!(mx2["exit"]["code"], 68);
    assert_eq!(mx2["error"], "mx2.probe.test: no such domain (NXDOMAIN)");
}

/// Against Postfix, twice: verified with the test CA (the certificate's fingerprint is the
/// test PKI's), and without it (verification "failed", and the certificate still shown
/// from the second, unverified look).
#[test]
fn postfix_probe_json_certificate_verified_and_untrusted() {
    let Some(pf) = Postfix::get() else { return };
    let server = format!("127.0.0.1:{}", pf.submission_port);
    let mut cmd = postie();
    cmd.args(["--timeout", "30", "--tls-ca", ca(), "--probe", "--json"])
        .args(["--server", &server]);
    let trusted = run(cmd, Input::HeldOpen);
    trusted.assert_code(0, "probe --json");
    let doc = json_of(&trusted);
    let h = &doc["hosts"][0];
    assert_eq!(
        h["before_tls"]["auth"],
        serde_json::json!([]),
        "auth only in TLS"
    );
    let inside: Vec<&str> = h["inside_tls"]["auth"]
        .as_array()
        .expect("auth")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    for mech in ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"] {
        assert!(inside.contains(&mech), "{mech}: {inside:?}");
    }
    assert_eq!(h["inside_tls"]["size"], 20971520);
    assert_eq!(h["tls"]["verification"], "verified");
    let sha = h["tls"]["certificate"]["sha256"].as_str().expect("sha256");
    assert_eq!(hex_only(sha), sha256_hex(&pki().cert_der));
    assert_eq!(h["warnings"], serde_json::json!([]));

    let mut cmd = postie();
    cmd.args(["--timeout", "30", "--probe", "--json", "--server", &server]);
    let untrusted = run(cmd, Input::HeldOpen);
    untrusted.assert_code(0, "an untrusted certificate is a finding, not a failure");
    let doc = json_of(&untrusted);
    let tls = &doc["hosts"][0]["tls"];
    assert_eq!(tls["verification"], "failed");
    assert!(tls["verification_error"].is_string(), "{tls}");
    assert_eq!(
        hex_only(tls["certificate"]["sha256"].as_str().expect("sha256")),
        sha256_hex(&pki().cert_der)
    );
    assert!(
        doc["hosts"][0]["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("certificate not trusted: ")),
        "{}",
        untrusted.describe()
    );
}
