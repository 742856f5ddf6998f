//! One delivery engine (issue 12): every mode decides a failure the same way.
//!
//! The fault table — a 4xx, a 5xx, a close and silence at every phase
//! ([`faults::Phase`], scripted as the fault matrix scripts them), plus a server that
//! answers 451 or 552 and closes, or just closes, while postie is still writing a big
//! message (postie's write then fails with EPIPE/ECONNRESET) — runs through every mode:
//! a single submission, a fallback list (`--server F,G`), direct MX (two MX hosts), `postie
//! batch`, `postie queue flush` and `sendmail -bs`. Each row has one expected [`Verdict`],
//! derived from design.md §2 and the engine's rule (src/engine/mod.rs): a temporary
//! failure before the message data lets the next host take the message now; a temporary
//! failure in or after the data is retried later; a permanent one keeps its exit code.
//! Each mode shows the verdict in its own way (exit code and which server got the
//! message; what stays in the queue; the reply `-bs` gives its client), and the test reads
//! the verdict back from that and compares.
//!
//! MX rows leave out STARTTLS and AUTH: MX delivery uses opportunistic TLS without AUTH
//! (tests/cases/mx.rs covers it), and the test certificate names `localhost`, not the MX
//! host names.
//!
//! Then the cases the issue reported: a tarpit MX that never greets, a message over the
//! server's size limit refused in the middle of its BDAT chunks or its DATA (with and
//! without the server closing at once), a submission server whose name lookup fails
//! temporarily, and greetings or STARTTLS replies that are not 220.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cases::faults::{self, Fault, Phase, FROM, PASSWORD, PHASES, TIMEOUT, TO, USER};
use crate::support::dns_server::{DnsServer, Zone};
use crate::support::fake_server::{
    data, ehlo, envelope, expect, expect_prefix, greeting, quit, send, starttls, FakeServer, Step,
};
use crate::support::postie;
use crate::support::run::{run, Outcome};

const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

/// Where a fault strikes: instead of the reply to a phase's command, or in the middle of
/// a message body too big to fit in the socket buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Reply(Phase),
    Body,
}

#[derive(Clone, Copy, Debug)]
struct Row {
    at: At,
    fault: Fault,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} at {:?}", self.fault, self.at)
    }
}

/// What the engine's classification makes of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// The next host (fallback server, next MX) takes the message now.
    NextHost,
    /// Temporary, and not for another host now: retry later (75, stays queued, 4xx).
    Later,
    /// Permanent, with this exit code.
    Never(i32),
}

impl Verdict {
    /// With no other host to go to, "next host" is "later".
    fn alone(self) -> Verdict {
        match self {
            Verdict::NextHost => Verdict::Later,
            v => v,
        }
    }
}

fn rows() -> Vec<Row> {
    let faults = [
        Fault::Temporary,
        Fault::Permanent,
        Fault::Close,
        Fault::Silence,
    ];
    let mut rows: Vec<Row> = PHASES
        .iter()
        .flat_map(|&p| {
            faults.iter().map(move |&fault| Row {
                at: At::Reply(p),
                fault,
            })
        })
        .collect();
    for fault in [Fault::Temporary, Fault::Permanent, Fault::Close] {
        rows.push(Row {
            at: At::Body,
            fault,
        });
    }
    rows
}

/// design.md §2 and the engine's rule, per row.
fn expected(row: Row) -> Verdict {
    match row.at {
        At::Reply(phase) => match phase.fault(row.fault).1 {
            75 if phase == Phase::DataEnd => Verdict::Later,
            75 => Verdict::NextHost,
            code => Verdict::Never(code),
        },
        At::Body => match row.fault {
            Fault::Permanent => Verdict::Never(65),
            _ => Verdict::Later,
        },
    }
}

/// STARTTLS and AUTH rows run with required STARTTLS and a login; the others in plain text.
fn secured(row: Row) -> bool {
    matches!(row.at, At::Reply(Phase::StartTls | Phase::Auth))
}

/// The failing server's script.
fn failing(row: Row) -> Vec<Step> {
    match row.at {
        // Silence only a little longer than postie's timeout: the table is long.
        At::Reply(phase) if row.fault == Fault::Silence => [
            phase.lead(),
            vec![Step::Sleep(Duration::from_millis(TIMEOUT * 1000 + 500))],
        ]
        .concat(),
        At::Reply(phase) => [phase.lead(), phase.fault(row.fault).0].concat(),
        At::Body => {
            let lead = [
                vec![greeting()],
                ehlo(&["ENHANCEDSTATUSCODES"]),
                envelope(FROM, &[TO]),
                vec![expect("DATA"), send("354 go ahead\r\n")],
                // Let postie fill the socket buffers, then fail while it is still writing;
                // the close with unread data resets the connection.
                vec![Step::Sleep(Duration::from_millis(300))],
            ]
            .concat();
            let end = match row.fault {
                Fault::Temporary => vec![send("451 4.3.0 out of spool space\r\n"), Step::Close],
                Fault::Permanent => vec![
                    send("552 5.3.4 message size exceeds fixed limit\r\n"),
                    Step::Close,
                ],
                _ => vec![Step::Close],
            };
            [lead, end].concat()
        }
    }
}

/// The server that takes the message when postie moves on to it.
fn accepting(row: Row) -> Vec<Step> {
    let lead = if secured(row) {
        [
            vec![greeting()],
            ehlo(&["STARTTLS", "AUTH PLAIN", "ENHANCEDSTATUSCODES"]),
            starttls(Step::StartTls),
            ehlo(&["AUTH PLAIN", "ENHANCEDSTATUSCODES"]),
            vec![
                expect_prefix("AUTH PLAIN"),
                send("235 2.7.0 Authentication successful\r\n"),
            ],
        ]
        .concat()
    } else {
        [vec![greeting()], ehlo(&["ENHANCEDSTATUSCODES"])].concat()
    };
    [
        lead,
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as NEXT1\r\n"),
        quit(),
    ]
    .concat()
}

/// The connection options of a row: TLS and a login, or plain text.
fn security_args(cmd: &mut Command, row: Row) {
    if secured(row) {
        cmd.args(["--tls-ca", faults::ca(), "--user", USER])
            .env("POSTIE_PASSWORD", PASSWORD);
    } else {
        cmd.args(["--tls", "none"]);
    }
}

/// The ready message every mode sends: small, or (body rows) 16 MiB, far more than the
/// socket buffers hold.
fn message(dir: &Path, row: Row) -> PathBuf {
    let mut text = format!("From: {FROM}\r\nTo: {TO}\r\nSubject: engine\r\n\r\nHello\r\n");
    if row.at == At::Body {
        let line = "0123456789 the quick brown fox jumps over the lazy dog 0123456789\r\n";
        text.push_str(&line.repeat(16 * 1024 * 1024 / line.len()));
    }
    let path = dir.join("m1.eml");
    std::fs::write(&path, text).expect("write the message");
    path
}

/// The verdict a run shows: its exit code and whether the second server took the message.
fn shown(code: Option<i32>, taken: bool, row: Row, out: &Outcome) -> Verdict {
    assert!(
        !out.stderr.contains("panicked") && code.is_some(),
        "{row}: postie panicked or was killed\n{out}"
    );
    match (code, taken) {
        (Some(0), true) => Verdict::NextHost,
        (Some(75), false) => Verdict::Later,
        (Some(c), false) if c != 0 => Verdict::Never(c),
        _ => panic!("{row}: exit {code:?}, second server took it: {taken}\n{out}"),
    }
}

fn check(mode: &str, row: Row, want: Verdict, got: Verdict, out: &Outcome) {
    assert_eq!(got, want, "{mode}: {row}\n{out}");
}

/// A port nobody listens on.
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("local_addr");
    drop(l);
    addr.to_string()
}

// ---------------------------------------------------------------------------------------
// The modes
// ---------------------------------------------------------------------------------------

/// `postie --server F[,G] --message FILE TO`: the verdict by exit code and by who got it.
fn submission(row: Row, fallback: bool) -> (Verdict, Outcome) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = message(dir.path(), row);
    let first = FakeServer::start(failing(row));
    let second = fallback.then(|| FakeServer::start(accepting(row)));
    let servers = match &second {
        Some(g) => format!("{},{}", first.addr(), g.addr()),
        None => first.addr(),
    };
    let mut cmd = postie();
    cmd.args(["--server", &servers, "--timeout", &TIMEOUT.to_string()])
        .args(["-f", FROM, "--message"])
        .arg(&file);
    security_args(&mut cmd, row);
    cmd.arg(TO);
    let out = run(cmd, None, LIMIT);
    first.finish_with(&format!("{row}\n{out}"));
    let taken = second.is_some_and(|g| g.finish_if_connected(&format!("{row}\n{out}")).is_some());
    (shown(out.code, taken, row, &out), out)
}

#[test]
fn fault_table_single_submission() {
    for row in rows() {
        let (got, out) = submission(row, false);
        check("submission", row, expected(row).alone(), got, &out);
    }
}

#[test]
fn fault_table_fallback_list() {
    for row in rows() {
        let (got, out) = submission(row, true);
        check("fallback list", row, expected(row), got, &out);
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

#[test]
fn fault_table_direct_mx() {
    for row in rows().into_iter().filter(|r| !secured(*r)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = message(dir.path(), row);
        let port = crate::cases::mx::shared_port();
        let first = FakeServer::start_on(ip(2), port, failing(row));
        let second = FakeServer::start_on(ip(3), port, accepting(row));
        let dns: DnsServer = Zone::new()
            .mx(
                "example.test",
                &[(10, "mx1.example.test"), (20, "mx2.example.test")],
            )
            .a("mx1.example.test", "127.0.0.2")
            .a("mx2.example.test", "127.0.0.3")
            .start();
        let mut cmd = postie();
        cmd.args(["--mx", "--port", &port.to_string()])
            .args(["--resolver", &dns.addr().to_string()])
            .args(["--timeout", &TIMEOUT.to_string(), "--tls", "none"])
            .args(["-f", FROM, "--message"])
            .arg(&file)
            .arg(TO);
        let out = run(cmd, None, LIMIT);
        first.finish_with(&format!("{row}\n{out}"));
        let taken = second
            .finish_if_connected(&format!("{row}\n{out}"))
            .is_some();
        check(
            "mx",
            row,
            expected(row),
            shown(out.code, taken, row, &out),
            &out,
        );
    }
}

#[test]
fn fault_table_batch() {
    for row in rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        message(dir.path(), row);
        let first = FakeServer::start(failing(row));
        let second = FakeServer::start(accepting(row));
        let mut cmd = postie();
        cmd.arg("batch")
            .arg(dir.path())
            .args(["--server", &format!("{},{}", first.addr(), second.addr())])
            .args(["--timeout", &TIMEOUT.to_string(), "-f", FROM]);
        security_args(&mut cmd, row);
        let out = run(cmd, None, LIMIT);
        first.finish_with(&format!("{row}\n{out}"));
        let taken = second
            .finish_if_connected(&format!("{row}\n{out}"))
            .is_some();
        check(
            "batch",
            row,
            expected(row),
            shown(out.code, taken, row, &out),
            &out,
        );
    }
}

/// The queue's live entries.
fn entries(queue: &Path) -> usize {
    std::fs::read_dir(queue.join("meta")).map_or(0, |l| l.flatten().count())
}

/// `queue run` keeps a message whose attempt failed with a server speaking nonsense (76)
/// or a refused login (77): those are for the sender or the server to fix, not reasons to
/// return the mail (src/queue/mod.rs; Postfix's smtp_sasl_auth_soft_bounce likewise).
fn in_queue(verdict: Verdict) -> Verdict {
    match verdict {
        Verdict::Never(76 | 77) => Verdict::Later,
        v => v,
    }
}

#[test]
fn fault_table_queue_run() {
    queue_run_table("queue run", &[]);
}

/// The same over the pool of `--connections 2` (the entry goes to connection 1, which
/// starts at the first server and falls back as one connection does).
#[test]
fn fault_table_queue_run_over_two_connections() {
    queue_run_table("queue run --connections 2", &["--connections", "2"]);
}

fn queue_run_table(mode: &str, extra: &[&str]) {
    for row in rows() {
        let want = in_queue(expected(row));
        let dir = tempfile::tempdir().expect("tempdir");
        let file = message(dir.path(), row);
        let queue = dir.path().join("queue");
        // Queued first: the only server is down.
        let mut stage = postie();
        stage
            .args(["--queue", "--queue-dir"])
            .arg(&queue)
            .args(["--server", &closed_port(), "--tls", "none", "-f", FROM])
            .arg("--message")
            .arg(&file)
            .arg(TO);
        run(stage, None, LIMIT).assert_code(0, &format!("{row}: queue it"));
        assert_eq!(entries(&queue), 1, "{row}");
        let first = FakeServer::start(failing(row));
        // A permanent refusal sends the sender a report through the same servers: give
        // no second server then, so that the report does not meet a script for the
        // message.
        let second =
            (!matches!(want, Verdict::Never(_))).then(|| FakeServer::start(accepting(row)));
        let servers = match &second {
            Some(g) => format!("{},{}", first.addr(), g.addr()),
            None => first.addr(),
        };
        let mut cmd = postie();
        cmd.args(["queue", "flush", "--queue-dir"])
            .arg(&queue)
            .args(["--server", &servers, "--timeout", &TIMEOUT.to_string()])
            .args(extra);
        security_args(&mut cmd, row);
        let out = run(cmd, None, LIMIT);
        first.finish_with(&format!("{row}\n{out}"));
        let taken =
            second.is_some_and(|g| g.finish_if_connected(&format!("{row}\n{out}")).is_some());
        let left = entries(&queue);
        let got = match (out.code, taken, left) {
            (Some(0), true, 0) => Verdict::NextHost,
            (Some(0), false, 1) => Verdict::Later,
            (Some(c), false, 0) if c != 0 => Verdict::Never(c),
            _ => panic!(
                "{row}: exit {:?}, taken {taken}, {left} entries left\n{out}",
                out.code
            ),
        };
        check(mode, row, want, got, &out);
    }
}

#[test]
fn fault_table_sendmail_bs() {
    for row in rows() {
        let want = expected(row);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = message(dir.path(), row);
        let first = FakeServer::start(failing(row));
        let second = FakeServer::start(accepting(row));
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).expect("etc");
        let tls = if secured(row) {
            format!(
                "tls = \"starttls\"\ntls_ca = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
                faults::ca()
            )
        } else {
            "tls = \"none\"\n".to_string()
        };
        let conf = etc.join("postie.toml");
        std::fs::write(
            &conf,
            format!(
                "[defaults]\nserver = [\"{}\", \"{}\"]\ntimeout = {TIMEOUT}\n{tls}",
                first.addr(),
                second.addr()
            ),
        )
        .expect("write postie.toml");
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
        let sendmail = dir.path().join("sendmail");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_postie"), &sendmail).expect("symlink");
        let mut cmd = Command::new(&sendmail);
        for (key, value) in postie().get_envs() {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.env("POSTIE_SYSCONFDIR", &etc).arg("-bs");
        // The whole client side at once (the server reads it line by line): the message
        // dot-stuffed (no line of it starts with a dot).
        let body = std::fs::read(&file).expect("read the message");
        let mut input =
            format!("EHLO client.test\r\nMAIL FROM:<{FROM}>\r\nRCPT TO:<{TO}>\r\nDATA\r\n")
                .into_bytes();
        input.extend_from_slice(&body);
        input.extend_from_slice(b".\r\nQUIT\r\n");
        let out = run(cmd, Some(&input), LIMIT);
        first.finish_with(&format!("{row}\n{out}"));
        let taken = second
            .finish_if_connected(&format!("{row}\n{out}"))
            .is_some();
        out.assert_code(0, &format!("{row}: sendmail -bs"));
        // Replies: greeting, EHLO (multiline), MAIL, RCPT, 354, end of data, QUIT.
        let codes: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.get(3..4) == Some(" "))
            .map(|l| l.get(..3).unwrap_or_default())
            .collect();
        let end_of_data = codes.get(5).copied().unwrap_or_default();
        let got = match (end_of_data.chars().next(), taken) {
            (Some('2'), true) => Verdict::NextHost,
            (Some('4'), false) => Verdict::Later,
            (Some('5'), false) => {
                // -bs can say only "permanent", not which exit code a direct run gives.
                assert!(
                    matches!(want, Verdict::Never(_)),
                    "sendmail -bs: {row}: refused for good, expected {want:?}\n{out}"
                );
                continue;
            }
            _ => panic!("{row}: end of data answered {end_of_data:?}, taken {taken}\n{out}"),
        };
        check("sendmail -bs", row, want, got, &out);
    }
}

// ---------------------------------------------------------------------------------------
// The cases the issue reported
// ---------------------------------------------------------------------------------------

#[test]
fn a_tarpit_mx_that_never_greets_yields_to_the_next_mx() {
    let port = crate::cases::mx::shared_port();
    // Accepts the connection, then says nothing for longer than postie waits.
    let tarpit = FakeServer::start_on(ip(2), port, vec![Step::Sleep(Duration::from_secs(4))]);
    let good = FakeServer::start_on(
        ip(3),
        port,
        [
            vec![greeting()],
            ehlo(&[]),
            envelope(FROM, &[TO]),
            data("250 2.0.0 Ok: queued as T1\r\n"),
            quit(),
        ]
        .concat(),
    );
    let dns = Zone::new()
        .mx(
            "example.test",
            &[(10, "tarpit.example.test"), (20, "mx2.example.test")],
        )
        .a("tarpit.example.test", "127.0.0.2")
        .a("mx2.example.test", "127.0.0.3")
        .start();
    let mut cmd = postie();
    cmd.args(["--mx", "--port", &port.to_string()])
        .args(["--resolver", &dns.addr().to_string(), "--timeout", "2"])
        .args(["-f", FROM, "-s", "tarpit", "--body", "hi", "-v", TO]);
    let out = run(cmd, None, LIMIT);
    tarpit.finish_with(&out.to_string());
    good.finish_with(&out.to_string());
    out.assert_code(0, "tarpit first MX");
    assert!(
        out.stderr
            .contains("tarpit.example.test: timed out waiting for the server's greeting"),
        "the transcript says why the first MX was left: {out}"
    );
}

/// A server with a 10 MiB limit that offers CHUNKING but does not say its limit (no SIZE,
/// so that postie cannot refuse the message before MAIL even when it knows the size, as it
/// does when the message is queued first): it takes the first BDAT chunk and refuses the second with 552 5.3.4; then it waits for
/// QUIT, or (`close`, as Exim does) closes at once while postie is still writing.
fn too_big_for_bdat(close: bool) -> Vec<Step> {
    let refuse = send("552 5.3.4 Message size exceeds fixed limit\r\n");
    // Postfix reads the second chunk, then refuses it; Exim refuses while it is still
    // coming and closes.
    let end = if close {
        vec![refuse, Step::Close]
    } else {
        vec![Step::ReadBdat, refuse, Step::QuitOrClose]
    };
    [
        vec![greeting()],
        ehlo(&["CHUNKING", "ENHANCEDSTATUSCODES"]),
        envelope(FROM, &[TO]),
        vec![
            Step::ReadBdat,
            send("250 2.0.0 1048576 octets received\r\n"),
        ],
        end,
    ]
    .concat()
}

/// The same limit (unsaid) without CHUNKING: DATA, then 552 after or part-way through
/// the body.
fn too_big_for_data(close: bool) -> Vec<Step> {
    let refuse = send("552 5.3.4 Message size exceeds fixed limit\r\n");
    let end = if close {
        vec![refuse, Step::Close]
    } else {
        vec![Step::ReadData, refuse, Step::QuitOrClose]
    };
    [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES"]),
        envelope(FROM, &[TO]),
        vec![expect("DATA"), send("354 go ahead\r\n")],
        if close {
            vec![Step::Sleep(Duration::from_millis(300))]
        } else {
            vec![]
        },
        end,
    ]
    .concat()
}

/// 12 MB, a ready message for `--message -`.
fn twelve_megabytes() -> Vec<u8> {
    let mut text = format!("From: {FROM}\r\nTo: {TO}\r\nSubject: big\r\n\r\n").into_bytes();
    let line = b"this line is part of a message that is too big for the server......\r\n";
    while text.len() < 12_000_000 {
        text.extend_from_slice(line);
    }
    text
}

#[test]
fn a_message_over_the_size_limit_exits_65_with_or_without_chunking() {
    let message = twelve_megabytes();
    let cases: [(&str, Vec<Step>, &[&str]); 4] = [
        ("BDAT, 552 to a middle chunk", too_big_for_bdat(false), &[]),
        ("BDAT, 552 and close (Exim)", too_big_for_bdat(true), &[]),
        (
            "DATA, 552 after the body",
            too_big_for_data(false),
            &["--no-chunking"],
        ),
        (
            "DATA, 552 and close mid-body",
            too_big_for_data(true),
            &["--no-chunking"],
        ),
    ];
    for (case, script, extra) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue = dir.path().join("queue");
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
        .args(["-f", FROM, "--queue", "--queue-dir"])
        .arg(&queue)
        .args(extra)
        .arg(TO);
        let out = run(cmd, Some(&message), LIMIT);
        server.finish_with(&format!("{case}\n{out}"));
        out.assert_one_error_line(
            "postie: ",
            &["552 5.3.4 Message size exceeds fixed limit"],
            case,
        );
        out.assert_code(65, case);
        // Permanent: --queue keeps nothing, a retry could never fit.
        assert_eq!(entries(&queue), 0, "{case}: queued\n{out}");
    }
}

#[test]
fn postfix_refusing_a_big_chunked_message_exits_65() {
    let Some(pf) = crate::support::mta::Postfix::get() else {
        return;
    };
    // Over the test Postfix's 20 MiB message_size_limit, a ready message from a pipe: its
    // size is unknown before MAIL, so Postfix refuses it part-way (552 5.3.4 to a BDAT
    // chunk, or at the end of DATA).
    let mut message =
        format!("From: {FROM}\r\nTo: big@example.test\r\nSubject: big\r\n\r\n").into_bytes();
    let line = b"twenty-two megabytes of this line make a message that Postfix refuses.\r\n";
    while message.len() < 22_000_000 {
        message.extend_from_slice(line);
    }
    for extra in [&[][..], &["--no-chunking"][..]] {
        let mut cmd = postie();
        cmd.args([
            "--server",
            &format!("127.0.0.1:{}", pf.plain_port),
            "--tls",
            "none",
            "-f",
            FROM,
        ])
        .args(["--message", "-"])
        .args(extra)
        .arg("big@example.test");
        let out = run(cmd, Some(&message), LIMIT);
        out.assert_code(65, &format!("Postfix, {extra:?}"));
        assert!(out.stderr.contains("552 5.3.4"), "{out}");
    }
}

#[test]
fn a_temporary_dns_failure_for_the_server_is_75_and_queued() {
    let dns = Zone::new().servfail("relay.example.test").start();
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = dir.path().join("queue");
    let mut cmd = postie();
    cmd.args(["--server", "relay.example.test", "--resolver"])
        .arg(dns.addr().to_string())
        .args(["--tls", "none", "-f", FROM, "--body", "x", TO]);
    let out = run(cmd, None, LIMIT);
    out.assert_code(75, "SERVFAIL for the server's name");
    // --queue keeps it for later.
    let mut cmd = postie();
    cmd.args(["--server", "relay.example.test", "--resolver"])
        .arg(dns.addr().to_string())
        .args(["--tls", "none", "--queue", "--queue-dir"])
        .arg(&queue)
        .args(["-f", FROM, "--body", "x", TO]);
    let out = run(cmd, None, LIMIT);
    out.assert_code(0, "queued");
    assert_eq!(entries(&queue), 1, "{out}");
}

/// The system resolver (getaddrinfo) with no name server answering: EAI_AGAIN. Runs
/// postie in a private mount namespace whose /etc/resolv.conf names a loopback address
/// where nothing listens on port 53 (root and `unshare` needed: CI has both; elsewhere
/// the test says it skips).
#[test]
fn eai_again_from_the_system_resolver_is_75() {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let unshare = Command::new("unshare").arg("--version").output().is_ok();
    if !(root && unshare) {
        assert!(
            std::env::var_os("POSTIE_REQUIRE_POSTFIX").is_none(),
            "CI must run this test (root and unshare are needed)"
        );
        crate::support::skip("needs root and unshare(1) for a private /etc/resolv.conf");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.9\noptions timeout:1 attempts:1\n",
    )
    .expect("resolv.conf");
    let base = postie();
    let mut cmd = Command::new("unshare");
    for (key, value) in base.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.args(["--mount", "--", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/resolv.conf && shift && exec \"$@\"")
        .arg("sh")
        .arg(&resolv)
        .arg(env!("CARGO_BIN_EXE_postie"))
        .args(["--server", "relay.postie-test.invalid", "--tls", "none"])
        .args(["-f", FROM, "--body", "x", TO]);
    let out = run(cmd, None, LIMIT);
    out.assert_one_error_line(
        "postie: ",
        &["cannot resolve relay.postie-test.invalid now (temporary failure"],
        "EAI_AGAIN",
    );
    out.assert_code(75, "EAI_AGAIN");
}

#[test]
fn a_greeting_that_is_not_220_is_refused() {
    // (greeting, exit, QUIT expected): 554 means "no service here", answered with QUIT
    // (RFC 5321 §3.1); a 2xx other than 220 is no greeting at all.
    let cases: [(&'static str, i32, bool); 3] = [
        ("554 5.3.2 no SMTP service here\r\n", 69, true),
        ("221 2.0.0 bye\r\n", 76, false),
        ("250 mail.example.test\r\n", 76, false),
    ];
    for (greet, want, quits) in cases {
        let tail = if quits {
            vec![expect("QUIT"), send("221 2.0.0 bye\r\n"), Step::ExpectClose]
        } else {
            vec![Step::ExpectClose]
        };
        let server = FakeServer::start([vec![send(greet)], tail].concat());
        let mut cmd = postie();
        cmd.args([
            "--server",
            &server.addr(),
            "--tls",
            "none",
            "--timeout",
            "5",
        ])
        .args(["-f", FROM, "--body", "x", TO]);
        let out = run(cmd, None, LIMIT);
        server.finish_with(&format!("greeting {greet:?}\n{out}"));
        out.assert_code(want, greet);
    }
}

#[test]
fn starttls_answered_with_anything_but_220_starts_no_handshake() {
    let server = FakeServer::start(
        [
            vec![greeting()],
            ehlo(&["STARTTLS"]),
            vec![expect("STARTTLS"), send("250 ok\r\n"), Step::ExpectClose],
        ]
        .concat(),
    );
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--tls-ca",
        faults::ca(),
        "--timeout",
        "5",
    ])
    .args(["-f", FROM, "--body", "x", TO]);
    let out = run(cmd, None, LIMIT);
    server.finish_with(&out.to_string());
    out.assert_one_error_line(
        "postie: ",
        &["the server answered STARTTLS with 250 ok where only 220 is valid"],
        "250 to STARTTLS",
    );
    out.assert_code(76, "250 to STARTTLS");
}
