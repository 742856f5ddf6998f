//! LMTP (RFC 2033) and unix domain sockets: the built postie against the scripted fake
//! server, on a unix socket in a temporary directory ([`FakeServer::start_unix`]) and over
//! loopback TCP ([`FakeServer::start`]).
//!
//! Owns: `--protocol lmtp` end to end — LHLO instead of EHLO (§4.1), one reply per
//! recipient accepted at RCPT after the end of data, in RCPT order (§4.2), and the exit
//! code and stderr lines that follow (a recipient refused at the end of data counts like
//! one refused at RCPT: 4xx → 75, 5xx → 67) — and `--socket PATH`: no TLS, no --server, a
//! missing socket is a temporary failure (75), TLS asked for over it is a usage error (64).
//! Must not: touch anything beyond the temporary directory and 127.0.0.1, or wait
//! unboundedly: each run is killed after [`RUN_LIMIT`] and postie gets `--timeout 10`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::fake_server::{expect, greeting, quit, send, FakeServer, Session, Step};
use crate::support::postie;
use crate::support::run::{run, Outcome};

const FROM: &str = "sender@example.test";
const A: &str = "alice@example.test";
const B: &str = "bob@example.test";
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Where the fake listens: a unix socket, or loopback TCP.
#[derive(Clone, Copy, Debug)]
enum Via {
    Socket,
    Tcp,
}

/// The LMTP dialogue up to DATA's payload: greeting, LHLO, MAIL, one RCPT per `(rcpt,
/// reply)`, and (when any is accepted) DATA, 354 and the payload.
fn lmtp_script(rcpts: &[(&str, &'static str)]) -> Vec<Step> {
    let mut steps = vec![
        greeting(),
        expect("LHLO postie.test"),
        send("250-fake.test\r\n250 ENHANCEDSTATUSCODES\r\n"),
        expect(format!("MAIL FROM:<{FROM}>")),
        send("250 2.1.0 sender ok\r\n"),
    ];
    for (rcpt, reply) in rcpts {
        steps.push(expect(format!("RCPT TO:<{rcpt}>")));
        steps.push(send(*reply));
    }
    steps.extend([expect("DATA"), send("354 go ahead\r\n"), Step::ReadData]);
    steps
}

/// Start the fake on `via` with `script`; the temporary directory holds the socket.
fn start(via: Via, script: Vec<Step>) -> (FakeServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = match via {
        Via::Socket => FakeServer::start_unix(&dir.path().join("lmtp"), script),
        Via::Tcp => FakeServer::start(script),
    };
    (server, dir)
}

/// postie sending a short message to `rcpts` over LMTP to `server`.
fn lmtp_send(server: &FakeServer, rcpts: &[&str]) -> Command {
    let mut cmd = postie();
    match &server.socket {
        Some(path) => cmd.arg("--socket").arg(path),
        None => cmd.args(["--server", &server.addr(), "--tls", "none"]),
    };
    cmd.args(["--protocol", "lmtp", "--timeout", "10", "--from", FROM])
        .args(["-s", "lmtp test", "--body", "hello"])
        .args(rcpts);
    cmd
}

fn finish(server: FakeServer, out: &Outcome) -> Session {
    server.finish_with(&out.describe())
}

#[test]
fn lmtp_says_lhlo_and_all_accepted_is_silent_success() {
    for via in [Via::Socket, Via::Tcp] {
        let script = [
            lmtp_script(&[(A, "250 2.1.5 ok\r\n"), (B, "250 2.1.5 ok\r\n")]),
            vec![send("250 2.0.0 <alice> saved\r\n250 2.0.0 <bob> saved\r\n")],
            quit(),
        ]
        .concat();
        let (server, _dir) = start(via, script);
        let out = run(lmtp_send(&server, &[A, B]), None, RUN_LIMIT);
        let session = finish(server, &out);
        out.assert_quiet_success(&format!("{via:?}"));
        assert_eq!(
            session.received.first().map(String::as_str),
            Some("LHLO postie.test")
        );
        assert!(!session.saw("EHLO") && !session.saw("HELO") && !session.saw("STARTTLS"));
        assert_eq!(session.data.len(), 1);
    }
}

#[test]
fn lmtp_per_recipient_replies_decide_the_exit_code() {
    // (replies after the end of data, in RCPT order; exit code; the refused recipient and
    // what its stderr line says)
    let cases: [(&'static str, i32, &str, &str); 3] = [
        (
            "250 2.0.0 <alice> saved\r\n452 4.2.2 <bob> mailbox full\r\n",
            75,
            B,
            "452 4.2.2 <bob> mailbox full (transient negative completion)",
        ),
        (
            "250 2.0.0 <alice> saved\r\n550 5.1.1 <bob> no such user\r\n",
            67,
            B,
            "550 5.1.1 <bob> no such user (permanent negative completion)",
        ),
        // Replies come one write at a time, and the refusal may come first.
        (
            "451 4.3.0 <alice> try later\r\n",
            75,
            A,
            "451 4.3.0 <alice> try later (transient negative completion)",
        ),
    ];
    for via in [Via::Socket, Via::Tcp] {
        for (replies, code, refused, says) in cases {
            let mut script = lmtp_script(&[(A, "250 2.1.5 ok\r\n"), (B, "250 2.1.5 ok\r\n")]);
            script.push(send(replies));
            if !replies.contains("<bob>") {
                script.push(send("250 2.0.0 <bob> saved\r\n"));
            }
            script.extend(quit());
            let (server, _dir) = start(via, script);
            let out = run(lmtp_send(&server, &[A, B]), None, RUN_LIMIT);
            finish(server, &out);
            let what = format!("{via:?} {replies:?}");
            out.assert_code(code, &what);
            out.assert_one_error_line(
                "postie: ",
                &[&format!("<{refused}> refused at end of data"), says],
                &what,
            );
            let other = if refused == A { B } else { A };
            assert!(!out.stderr.contains(other), "{what}: {}", out.describe());
        }
    }
}

#[test]
fn lmtp_recipient_refused_at_rcpt_gets_no_end_of_data_reply() {
    let script = [
        lmtp_script(&[(A, "550 5.1.1 unknown\r\n"), (B, "250 2.1.5 ok\r\n")]),
        // Exactly one reply: for bob, the only recipient accepted at RCPT.
        vec![send("250 2.0.0 <bob> saved\r\n")],
        quit(),
    ]
    .concat();
    let (server, _dir) = start(Via::Socket, script);
    let out = run(lmtp_send(&server, &[A, B]), None, RUN_LIMIT);
    finish(server, &out);
    out.assert_code(67, "RCPT refusal");
    out.assert_one_error_line(
        "postie: ",
        &[&format!("RCPT TO <{A}> refused: 550 5.1.1 unknown")],
        "RCPT refusal",
    );
}

#[test]
fn lmtp_json_names_the_socket_and_each_recipients_own_reply() {
    let script = [
        lmtp_script(&[(A, "250 2.1.5 ok\r\n"), (B, "250 2.1.5 ok\r\n")]),
        vec![send("250 2.0.0 <alice> saved\r\n452 4.2.2 <bob> full\r\n")],
        quit(),
    ]
    .concat();
    let (server, _dir) = start(Via::Socket, script);
    let path = server.socket.clone().unwrap();
    let mut cmd = lmtp_send(&server, &[A, B]);
    cmd.arg("--json");
    let out = run(cmd, None, RUN_LIMIT);
    finish(server, &out);
    out.assert_code(75, "json");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["route"]["protocol"], "lmtp", "{}", out.describe());
    assert_eq!(doc["route"]["host"], path.display().to_string());
    assert_eq!(doc["route"]["port"], 0);
    let codes: Vec<u64> = doc["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [250, 452], "{}", out.describe());
}

#[test]
fn missing_socket_is_a_temporary_failure_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-socket");
    let mut cmd = postie();
    cmd.arg("--socket")
        .arg(&path)
        .args(["--protocol", "lmtp", "--timeout", "10", "--from", FROM])
        .args(["--body", "hello", A]);
    let out = run(cmd, None, RUN_LIMIT);
    out.assert_code(75, "missing socket");
    out.assert_one_error_line(
        "postie: ",
        &[&path.display().to_string(), "unix socket"],
        "missing socket",
    );
    assert!(!Path::new(&path).exists());
}

#[test]
fn tls_over_a_socket_is_a_usage_error_before_connecting() {
    for mode in ["starttls", "implicit"] {
        let dir = tempfile::tempdir().unwrap();
        // A listener that fails the test if postie connects.
        let server = FakeServer::start_unix(&dir.path().join("lmtp"), vec![greeting()]);
        let mut cmd = lmtp_send(&server, &[A]);
        cmd.args(["--tls", mode]);
        let out = run(cmd, None, RUN_LIMIT);
        assert!(
            server.finish_if_connected(&out.describe()).is_none(),
            "{mode}: postie connected"
        );
        out.assert_code(64, mode);
        out.assert_one_error_line("postie: ", &["--tls", mode, "unix domain socket"], mode);
    }
}

#[test]
fn socket_and_server_together_are_a_usage_error() {
    let mut cmd = postie();
    cmd.args(["--socket", "/nonexistent/lmtp", "--server", "127.0.0.1:24"])
        .args(["--from", FROM, "--body", "x", A]);
    let out = run(cmd, None, RUN_LIMIT);
    out.assert_code(64, "--socket with --server");
}
