//! The fault matrix (issue 6): every phase of a submission meets every way a server can
//! fail — a 4xx, a 5xx, a close without a word, silence past the timeout — first against
//! the scripted fake server ([`crate::support::fake_server`]), then against Postfix's
//! `smtp-sink` with its own fault injection (`-q` disconnect, `-Q` 421 and disconnect, `-r`
//! 4xx, `-f` 5xx, `-W` delay), plus the odd servers: a connection closed mid-body, a reply
//! trickled one byte a second, a 10 MB reply line, an endless multiline reply, NUL and
//! non-ASCII bytes in replies, reply codes outside 2xx–5xx.
//!
//! For each row the test asserts what design.md promises: the exit code of §2, one stderr
//! line that names the phase, a wait bounded by the phase's timeout (postie runs with
//! `--timeout 1` or `2`; the test kills it after a generous outer bound), never a panic, and
//! never exit 0 unless the server answered the end of data with 250 (§6). Assertions are on
//! behaviour (exit code, stderr, what the server saw), not on the order of writes, so that
//! pipelining changes in the session do not break them.
//!
//! The `smtp-sink` rows skip with a printed reason when Postfix is not installed, unless
//! `POSTIE_REQUIRE_POSTFIX=1`.
//!
//! Timeouts: postie's deadline is per reply, not per read (src/net/mod.rs `read_reply`):
//! a server that trickles a byte a second cannot stretch one phase past its limit. The
//! trickle test pins that.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::certs::pki;
use crate::support::fake_server::{
    ehlo, envelope, expect, expect_prefix, greeting, quit, send, starttls, FakeServer, Session,
    Step,
};
use crate::support::postie;
use crate::support::run::{run as run_postie, Outcome};

pub(crate) const FROM: &str = "sender@example.test";
pub(crate) const TO: &str = "rcpt@example.test";
pub(crate) const USER: &str = "user";
pub(crate) const PASSWORD: &str = "s3cr3t-Pa55";
/// The outer bound on any one postie run: far above every timeout used here.
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// postie's `--timeout` in the matrix (seconds): every phase waits at most this long.
pub(crate) const TIMEOUT: u64 = 2;
/// How much longer than its timeout a run may take (start-up, the QUIT, a loaded machine);
/// a run that waits for no timeout must end within this too. (A per-read deadline would
/// let the trickle test run for 20 s, far past TIMEOUT + SLACK.)
const SLACK: Duration = Duration::from_secs(5);
/// How long a silent server stays silent: well past postie's timeout.
const SILENCE: Duration = Duration::from_secs(TIMEOUT + 3);

// ---------------------------------------------------------------------------------------
// Shared assertions
// ---------------------------------------------------------------------------------------

/// What every failing row must show: the exit code, exactly one `postie: ` line naming the
/// phase (one of `phase_words`, ASCII case-insensitive unless a word is all upper-case),
/// no panic, and a run no longer than `bound`.
#[track_caller]
fn assert_failure(run: &Outcome, want: i32, phase_words: &[&str], bound: Duration, case: &str) {
    assert_no_panic(run, case);
    assert_eq!(run.code, Some(want), "{case}: wrong exit code\n{run}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("postie: "),
        "{case}: expected one `postie: ...` line on stderr\n{run}"
    );
    assert!(
        phase_words.iter().any(|w| names(lines[0], w)),
        "{case}: the error line names none of {phase_words:?}\n{run}"
    );
    assert!(
        run.elapsed <= bound,
        "{case}: took {:?}, more than {bound:?}\n{run}",
        run.elapsed
    );
}

/// Whether `line` contains `word`: exactly when `word` is all upper-case (SMTP verbs, so
/// that "DATA" does not match "end of data"), ignoring ASCII case otherwise.
fn names(line: &str, word: &str) -> bool {
    if word.bytes().any(|b| b.is_ascii_lowercase()) {
        line.to_ascii_lowercase()
            .contains(&word.to_ascii_lowercase())
    } else {
        line.contains(word)
    }
}

#[track_caller]
fn assert_no_panic(run: &Outcome, case: &str) {
    assert!(
        !run.stderr.contains("panicked") && run.code != Some(101),
        "{case}: postie panicked\n{run}"
    );
    assert!(run.code.is_some(), "{case}: killed by a signal\n{run}");
}

// ---------------------------------------------------------------------------------------
// The scripted matrix
// ---------------------------------------------------------------------------------------

/// Where in the dialogue the fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Data,
    DataEnd,
}

pub(crate) const PHASES: [Phase; 8] = [
    Phase::Greeting,
    Phase::Ehlo,
    Phase::StartTls,
    Phase::Auth,
    Phase::Mail,
    Phase::Rcpt,
    Phase::Data,
    Phase::DataEnd,
];

/// How the server fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A 4xx reply (421 for the greeting), then it waits for QUIT or a close.
    Temporary,
    /// A 5xx reply, then it waits for QUIT or a close.
    Permanent,
    /// It closes the connection instead of replying.
    Close,
    /// It says nothing for longer than postie's timeout.
    Silence,
}

impl Phase {
    /// Words of which the error line must contain one.
    fn words(self) -> &'static [&'static str] {
        match self {
            Phase::Greeting => &["greeting"],
            Phase::Ehlo => &["EHLO", "HELO"],
            Phase::StartTls => &["STARTTLS"],
            Phase::Auth => &["AUTH"],
            Phase::Mail => &["MAIL FROM"],
            Phase::Rcpt => &["RCPT TO"],
            Phase::Data => &["DATA"],
            Phase::DataEnd => &["end of data"],
        }
    }

    /// The script up to the fault: everything the server does before it must answer the
    /// command of this phase (for the greeting: nothing).
    pub(crate) fn lead(self) -> Vec<Step> {
        let tls_lead = || {
            [
                vec![greeting()],
                ehlo(&["STARTTLS", "AUTH PLAIN", "ENHANCEDSTATUSCODES"]),
            ]
            .concat()
        };
        let plain = || [vec![greeting()], ehlo(&["ENHANCEDSTATUSCODES"])].concat();
        match self {
            Phase::Greeting => vec![],
            Phase::Ehlo => vec![greeting(), expect("EHLO postie.test")],
            Phase::StartTls => [tls_lead(), vec![expect("STARTTLS")]].concat(),
            Phase::Auth => [
                tls_lead(),
                starttls(Step::StartTls),
                ehlo(&["AUTH PLAIN", "ENHANCEDSTATUSCODES"]),
                vec![expect_prefix("AUTH PLAIN")],
            ]
            .concat(),
            Phase::Mail => [plain(), vec![expect(format!("MAIL FROM:<{FROM}>"))]].concat(),
            Phase::Rcpt => [
                plain(),
                vec![
                    expect(format!("MAIL FROM:<{FROM}>")),
                    send("250 2.1.0 ok\r\n"),
                    expect(format!("RCPT TO:<{TO}>")),
                ],
            ]
            .concat(),
            Phase::Data => [plain(), envelope(FROM, &[TO]), vec![expect("DATA")]].concat(),
            Phase::DataEnd => [
                plain(),
                envelope(FROM, &[TO]),
                vec![expect("DATA"), send("354 go ahead\r\n"), Step::ReadData],
            ]
            .concat(),
        }
    }

    /// The command line for a run that reaches this phase.
    fn command(self, server: &FakeServer, timeout: u64) -> Command {
        let mut cmd = postie();
        cmd.args([
            "--server",
            &server.addr(),
            "--timeout",
            &timeout.to_string(),
        ])
        .args(["-f", FROM, "-s", "fault matrix", "--body", "Hello"]);
        match self {
            Phase::StartTls => {
                cmd.args(["--tls-ca", ca()]);
            }
            Phase::Auth => {
                cmd.args(["--tls-ca", ca(), "--user", USER])
                    .env("POSTIE_PASSWORD", PASSWORD);
            }
            _ => {
                cmd.args(["--tls", "none"]);
            }
        }
        cmd.arg(TO);
        cmd
    }

    /// The fault's steps and the exit postie must give.
    pub(crate) fn fault(self, fault: Fault) -> (Vec<Step>, i32) {
        match fault {
            Fault::Temporary => {
                let reply = match self {
                    Phase::Greeting => "421 4.3.2 too busy, try later\r\n",
                    Phase::Auth => "454 4.7.0 temporary authentication failure\r\n",
                    _ => "451 4.3.0 try again later\r\n",
                };
                let then = if self == Phase::Greeting {
                    Step::Close
                } else {
                    Step::QuitOrClose
                };
                (vec![send(reply), then], 75)
            }
            Fault::Permanent => match self {
                Phase::Greeting => (
                    vec![
                        send("554 5.3.2 no SMTP service here\r\n"),
                        Step::QuitOrClose,
                    ],
                    69,
                ),
                // A 5xx to EHLO makes postie try HELO (RFC 5321 §4.1.4); refuse that too.
                Phase::Ehlo => (
                    vec![
                        send("550 5.5.0 go away\r\n"),
                        expect("HELO postie.test"),
                        send("550 5.5.0 go away\r\n"),
                        Step::QuitOrClose,
                    ],
                    69,
                ),
                Phase::StartTls => (
                    vec![send("554 5.7.0 TLS not available\r\n"), Step::QuitOrClose],
                    69,
                ),
                Phase::Auth => (
                    vec![
                        send("535 5.7.8 authentication credentials invalid\r\n"),
                        Step::QuitOrClose,
                    ],
                    77,
                ),
                Phase::Mail => (
                    vec![send("550 5.7.1 sender rejected\r\n"), Step::QuitOrClose],
                    65,
                ),
                Phase::Rcpt => (
                    vec![send("550 5.1.1 no such user\r\n"), Step::QuitOrClose],
                    67,
                ),
                Phase::Data => (
                    vec![send("554 5.5.1 no valid recipients\r\n"), Step::QuitOrClose],
                    65,
                ),
                Phase::DataEnd => (
                    vec![send("554 5.7.1 message refused\r\n"), Step::QuitOrClose],
                    65,
                ),
            },
            Fault::Close => (vec![Step::Close], 75),
            Fault::Silence => (vec![Step::Sleep(SILENCE)], 75),
        }
    }
}

pub(crate) fn ca() -> &'static str {
    pki().ca_pem.to_str().expect("UTF-8 path")
}

/// Runs one row; returns what the server saw.
fn matrix_row(phase: Phase, fault: Fault) -> (Outcome, Session) {
    let (steps, want) = phase.fault(fault);
    let server = FakeServer::start([phase.lead(), steps].concat());
    let run = run_postie(phase.command(&server, TIMEOUT), None, RUN_LIMIT);
    let case = format!("{fault:?} at {phase:?}");
    let session = server.finish_with(&format!("case: {case}\n{run}"));
    // Silence must be waited out for the timeout, no less (the deadline is real) and not
    // much more; every other fault is answered at once.
    let bound = match fault {
        Fault::Silence => {
            assert!(
                run.elapsed >= Duration::from_secs(TIMEOUT),
                "{case}: gave up after {:?}, before the {TIMEOUT} s timeout\n{run}",
                run.elapsed
            );
            Duration::from_secs(TIMEOUT) + SLACK
        }
        _ => SLACK,
    };
    assert_failure(&run, want, phase.words(), bound, &case);
    if fault == Fault::Silence {
        assert!(
            run.stderr.contains("timed out"),
            "{case}: a timeout must say so\n{run}"
        );
    }
    // Nothing past the fault: no message text unless the fault came after it, and no
    // credentials or mail after a failed STARTTLS.
    if phase != Phase::DataEnd {
        assert!(
            session.data.is_empty(),
            "{case}: the message was sent\n{run}"
        );
    }
    if phase == Phase::StartTls {
        assert!(
            !session.saw("AUTH") && !session.saw("MAIL"),
            "{case}: AUTH or MAIL after a failed STARTTLS\n{session}\n{run}"
        );
    }
    (run, session)
}

fn matrix(fault: Fault) {
    for phase in PHASES {
        matrix_row(phase, fault);
    }
}

#[test]
fn fault_matrix_temporary_replies_exit_75_naming_the_phase() {
    matrix(Fault::Temporary);
}

#[test]
fn fault_matrix_permanent_replies_exit_with_the_phase_code() {
    matrix(Fault::Permanent);
}

#[test]
fn fault_matrix_server_closing_instead_of_replying_exits_75() {
    matrix(Fault::Close);
}

#[test]
fn fault_matrix_silence_times_out_within_the_phase_timeout() {
    matrix(Fault::Silence);
}

// ---------------------------------------------------------------------------------------
// Odd servers
// ---------------------------------------------------------------------------------------

/// Greeting and a one-line EHLO reply without extensions, for plain-text runs.
fn plain_lead() -> Vec<Step> {
    [vec![greeting()], ehlo(&[])].concat()
}

fn plain_send(server: &FakeServer, timeout: u64) -> Command {
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        &timeout.to_string(),
    ])
    .args(["--tls", "none", "-f", FROM, "-s", "odd server"]);
    cmd
}

#[test]
fn connection_closed_mid_body_is_a_temporary_failure_never_success() {
    // A small body fits in the socket buffers (postie then waits for the final reply and
    // sees the close); a big one is still being written when the server goes.
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.txt");
    let line = "all work and no play makes a long message\n".repeat(1024);
    std::fs::write(&big, line.repeat(64)).expect("write the body"); // ~2.7 MB
    let small: &[&str] = &["--body", "short body"];
    let large: &[&str] = &["--body-file", big.to_str().expect("UTF-8 path")];
    for (case, body) in [("small body", small), ("big body", large)] {
        let script = [
            plain_lead(),
            envelope(FROM, &[TO]),
            vec![expect("DATA"), send("354 go ahead\r\n"), Step::Close],
        ]
        .concat();
        let server = FakeServer::start(script);
        let mut cmd = plain_send(&server, TIMEOUT);
        cmd.args(body).arg(TO);
        let run = run_postie(cmd, None, RUN_LIMIT);
        let session = server.finish_with(&format!("case: {case}\n{run}"));
        assert_failure(
            &run,
            75,
            &["message data", "end of data"],
            Duration::from_secs(TIMEOUT) + SLACK,
            case,
        );
        assert!(session.data.is_empty(), "{case}\n{run}");
    }
}

#[test]
fn rcpt_answered_421_then_close_reports_the_421_not_the_lost_rset() {
    // Regression: with every recipient refused postie abandons the transaction with RSET;
    // after a 421 the server has closed (RFC 5321 §3.8), and the lost RSET used to become
    // the error ("connection lost waiting for reply to RSET"), hiding the server's reply.
    let script = [
        plain_lead(),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 ok\r\n"),
            expect(format!("RCPT TO:<{TO}>")),
            send("421 4.3.2 shutting down\r\n"),
            Step::Close,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = plain_send(&server, TIMEOUT);
    cmd.args(["--body", "x", TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_failure(&run, 75, &["RCPT TO"], SLACK, "421 at RCPT");
    assert!(run.stderr.contains("421 4.3.2 shutting down"), "{run}");
    assert!(session.data.is_empty(), "{run}");
}

#[test]
fn a_reply_trickled_one_byte_a_second_is_bounded_by_the_phase_timeout() {
    // Each byte comes well within the timeout, so a per-read timeout would wait for the
    // whole reply (20 s); the per-reply deadline gives up after TIMEOUT.
    let script = [
        plain_lead(),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            Step::Trickle {
                bytes: b"250 2.1.0 sender ok\r\n".to_vec(),
                every: Duration::from_millis(900),
            },
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = plain_send(&server, TIMEOUT);
    cmd.args(["--body", "x", TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert!(
        run.elapsed >= Duration::from_secs(TIMEOUT),
        "gave up before the timeout\n{run}"
    );
    assert_failure(
        &run,
        75,
        &["MAIL FROM"],
        Duration::from_secs(TIMEOUT) + SLACK,
        "trickle",
    );
    assert!(run.stderr.contains("timed out"), "{run}");
    assert!(session.data.is_empty(), "{run}");
}

#[test]
fn a_10_mb_reply_line_is_refused_as_a_protocol_error_without_reading_it_all() {
    let script = [
        vec![greeting(), expect("EHLO postie.test")],
        vec![Step::Flood {
            head: b"250 ".to_vec(),
            unit: b"x".to_vec(),
            total: 10 * 1024 * 1024,
        }],
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = plain_send(&server, TIMEOUT);
    cmd.args(["--body", "x", TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_failure(&run, 76, &["EHLO"], SLACK, "10 MB line");
    assert!(run.stderr.contains("longer than"), "{run}");
    assert!(!session.saw("MAIL"), "{session}\n{run}");
}

#[test]
fn an_endless_multiline_reply_is_cut_off_as_a_protocol_error() {
    let script = vec![
        greeting(),
        expect("EHLO postie.test"),
        Step::Flood {
            head: Vec::new(),
            unit: b"250-AND-ANOTHER-EXTENSION\r\n".to_vec(),
            total: 64 * 1024 * 1024,
        },
    ];
    let server = FakeServer::start(script);
    let mut cmd = plain_send(&server, TIMEOUT);
    cmd.args(["--body", "x", TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_failure(&run, 76, &["EHLO"], SLACK, "endless multiline");
    assert!(run.stderr.contains("more than"), "{run}");
    assert!(!session.saw("MAIL"), "{session}\n{run}");
}

#[test]
fn nul_and_non_ascii_bytes_in_positive_replies_do_not_stop_delivery() {
    // Server text is decoded lossily (design §3): junk in the text of a positive reply is
    // not a reason to fail, and the message gets through.
    let script = [
        vec![
            Step::SendBytes(b"220 fake.test \xff\xfe ESMTP \x00 gr\xc3\xbc\xc3\x9fe\r\n".to_vec()),
            expect("EHLO postie.test"),
            Step::SendBytes(
                b"250-fake.test \x00\x01\r\n250-X-\xe9T\xe9\r\n250 8BITMIME\r\n".to_vec(),
            ),
            expect_prefix(format!("MAIL FROM:<{FROM}>")),
            Step::SendBytes(b"250 2.1.0 \xc3(\x00 ok\r\n".to_vec()),
            expect(format!("RCPT TO:<{TO}>")),
            send("250 2.1.5 ok\r\n"),
            expect("DATA"),
            Step::SendBytes(b"354 \x00\r\n".to_vec()),
            Step::ReadData,
            Step::SendBytes(b"250 2.0.0 queued \xf0\x9f\x93\xa8 \x00\r\n".to_vec()),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = plain_send(&server, TIMEOUT);
    cmd.args(["--body", "hello", TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_no_panic(&run, "junk in replies");
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(session.data.len(), 1, "{run}");
}

#[test]
fn nul_escape_and_non_ascii_bytes_in_an_error_reply_are_shown_escaped() {
    // The reply text goes into the one error line; a hostile server must not be able to
    // put NUL or terminal escape sequences on the user's terminal.
    let script = [
        plain_lead(),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            Step::SendBytes(b"550 5.7.1 b\xe4d \x00s\x1b[31mender\x07\r\n".to_vec()),
            Step::QuitOrClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = plain_send(&server, TIMEOUT);
    cmd.args(["--body", "x", TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    server.finish_with(&run.to_string());
    assert_failure(&run, 65, &["MAIL FROM"], SLACK, "junk in a 550");
    assert!(
        !run.stderr.contains(['\0', '\x1b', '\x07']),
        "control characters from the server reached stderr: {:?}\n{run}",
        run.stderr
    );
    assert!(run.stderr.contains("ender"), "{run}");
}

#[test]
fn reply_codes_outside_2xx_to_5xx_are_protocol_errors() {
    // (where, the bytes): a greeting, or the reply to MAIL FROM.
    let table: &[(Phase, &[u8])] = &[
        (Phase::Greeting, b"199 hello\r\n"),
        (Phase::Greeting, b"600 hello\r\n"),
        (Phase::Greeting, b"000 hello\r\n"),
        (Phase::Greeting, b"abc hello\r\n"),
        (Phase::Greeting, b"2200 hello\r\n"),
        (Phase::Greeting, b"22 hello\r\n"),
        (Phase::Greeting, b"\r\n"),
        (Phase::Mail, b"199 fine\r\n"),
        (Phase::Mail, b"699 fine\r\n"),
        (Phase::Mail, b"25O ok\r\n"),
        (Phase::Mail, b"-250 ok\r\n"),
        // A positive intermediate reply where a completion was due (354 to MAIL).
        (Phase::Mail, b"354 go on\r\n"),
    ];
    for (at, bytes) in table {
        let mut script = match at {
            Phase::Greeting => vec![],
            _ => [plain_lead(), vec![expect(format!("MAIL FROM:<{FROM}>"))]].concat(),
        };
        script.extend([Step::SendBytes(bytes.to_vec()), Step::QuitOrClose]);
        let server = FakeServer::start(script);
        let mut cmd = plain_send(&server, TIMEOUT);
        cmd.args(["--body", "x", TO]);
        let run = run_postie(cmd, None, RUN_LIMIT);
        let case = format!("{:?} at {at:?}", String::from_utf8_lossy(bytes));
        let session = server.finish_with(&format!("case: {case}\n{run}"));
        assert_failure(&run, 76, at.words(), SLACK, &case);
        assert!(session.data.is_empty(), "{case}\n{run}");
    }
}

// ---------------------------------------------------------------------------------------
// Postfix smtp-sink
// ---------------------------------------------------------------------------------------

/// One `smtp-sink` on 127.0.0.1, killed (by its PID) when dropped. Each message it
/// accepts is dumped into `dump`.
struct Sink {
    child: Child,
    port: u16,
    dump: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    /// The `smtp-sink` binary, or `None` after printing why the tests skip (a panic with
    /// `POSTIE_REQUIRE_POSTFIX=1`).
    fn binary() -> Option<PathBuf> {
        let found = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        if found.is_none() {
            let reason = "smtp-sink (Debian package postfix) is not installed";
            if std::env::var_os("POSTIE_REQUIRE_POSTFIX").is_some_and(|v| v == "1") {
                panic!("POSTIE_REQUIRE_POSTFIX=1 but {reason}");
            }
            crate::support::skip(reason);
        }
        found
    }

    /// Start `smtp-sink` with fault-injection `flags`; waits (bounded) until it listens.
    fn start(bin: &Path, flags: &[&str]) -> Sink {
        let mut errors = Vec::new();
        // A port picked by binding :0 may be taken by someone else before smtp-sink binds
        // it; then try again with another.
        for _ in 0..3 {
            let port = {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").port()
            };
            let dump = tempfile::tempdir().expect("tempdir");
            // smtp-sink drops to `nobody` (-u), who must be able to write the dumps.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dump.path(), std::fs::Permissions::from_mode(0o777))
                .expect("chmod the dump directory");
            let template = format!("{}/msg.", dump.path().display());
            let mut cmd = Command::new(bin);
            cmd.args(["-u", "nobody", "-t", "30", "-d", &template])
                .args(flags)
                .arg(format!("127.0.0.1:{port}"))
                .arg("10")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("spawn smtp-sink");
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(status) = child.try_wait().expect("wait for smtp-sink") {
                    let err = crate::support::run::drain(child.stderr.take().expect("stderr"));
                    errors.push(format!("{status}: {}", err.join().unwrap_or_default()));
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sink { child, port, dump };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    errors.push(format!("not listening on {port} after 5 s"));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("smtp-sink {flags:?} did not start: {}", errors.join("; "));
    }

    /// The messages smtp-sink dumped so far.
    fn dumped(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.dump.path())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read(e.path()).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

/// smtp-sink's names for the phases it can fail, and ours.
const SINK_PHASES: [(&str, Phase); 6] = [
    ("connect", Phase::Greeting),
    ("ehlo", Phase::Ehlo),
    ("mail", Phase::Mail),
    ("rcpt", Phase::Rcpt),
    ("data", Phase::Data),
    (".", Phase::DataEnd),
];

/// Runs postie against an smtp-sink started with `flag cmd` for each phase; `want` gives
/// the exit code per phase (0: the message must be delivered, and dumped).
fn sink_matrix(
    flag: &str,
    arg: impl Fn(&str) -> String,
    timeout: u64,
    want: impl Fn(Phase) -> i32,
) {
    let Some(bin) = Sink::binary() else {
        return;
    };
    for (name, phase) in SINK_PHASES {
        let sink = Sink::start(&bin, &[flag, &arg(name)]);
        let subject = format!("sink {flag} {name}");
        let mut cmd = postie();
        cmd.args(["--server", &format!("127.0.0.1:{}", sink.port)])
            .args(["--timeout", &timeout.to_string(), "--tls", "none"])
            .args(["-f", FROM, "-s", &subject, "--body", "Hello sink", TO]);
        if flag == "-W" {
            // smtp-sink's -W answers the commands pipelined after the delayed one at once
            // ("503 need MAIL command" before MAIL's own reply): out of order, so the
            // phase a timeout names would be the wrong one. In lockstep each delay is
            // its own phase's.
            cmd.arg("--no-pipelining");
        }
        let run = run_postie(cmd, None, RUN_LIMIT);
        let case = format!("smtp-sink {flag} {}", arg(name));
        let want = want(phase);
        let dumped = sink.dumped();
        let delivered = dumped.iter().any(|m| m.contains(&subject));
        if want == 0 {
            assert_no_panic(&run, &case);
            assert_eq!(run.code, Some(0), "{case}\n{run}");
            assert!(
                delivered,
                "{case}: exit 0 but smtp-sink has no message\n{run}"
            );
        } else {
            let bound = Duration::from_secs(timeout) + SLACK;
            assert_failure(&run, want, phase.words(), bound, &case);
            if phase != Phase::DataEnd {
                assert!(!delivered, "{case}: a message was delivered\n{run}");
            }
        }
    }
}

#[test]
fn smtp_sink_disconnect_after_each_command_exits_75() {
    sink_matrix("-q", str::to_string, TIMEOUT, |_| 75);
}

#[test]
fn smtp_sink_421_and_disconnect_after_each_command_exits_75() {
    sink_matrix("-Q", str::to_string, TIMEOUT, |_| 75);
}

#[test]
fn smtp_sink_4xx_to_each_command_exits_75() {
    sink_matrix("-r", str::to_string, TIMEOUT, |_| 75);
}

#[test]
fn smtp_sink_5xx_to_each_command_exits_with_the_phase_code() {
    sink_matrix("-f", str::to_string, TIMEOUT, |phase| match phase {
        Phase::Greeting => 69,
        // EHLO refused permanently: postie falls back to HELO, which smtp-sink accepts.
        Phase::Ehlo => 0,
        Phase::Mail | Phase::Data | Phase::DataEnd => 65,
        Phase::Rcpt => 67,
        Phase::StartTls | Phase::Auth => unreachable!("smtp-sink has no STARTTLS here"),
    });
}

#[test]
fn smtp_sink_delay_past_the_timeout_exits_75_and_within_it_delivers() {
    // 4 s of delay against a 2 s timeout: a timeout in that phase.
    sink_matrix("-W", |c| format!("{c}:4"), TIMEOUT, |_| 75);
    // 1 s of delay against a 5 s timeout: slow but fine.
    sink_matrix("-W", |c| format!("{c}:1"), 5, |_| 0);
}
