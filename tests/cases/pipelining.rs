//! The dialogue's performance and extension handling against the scripted fake server:
//! PIPELINING (RFC 2920: MAIL, every RCPT and DATA or BDAT in one write, replies matched in
//! order, QUIT with the end of data), CHUNKING (RFC 3030: exact BDAT byte counts, no
//! dot-stuffing, big messages in chunks, BINARYMIME), and the MAIL FROM parameters SIZE
//! (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531) and REQUIRETLS (RFC 8689).
//!
//! "One write" is checked on the server side: [`Step::ExpectPipelined`] fails when a group
//! needs more than one socket read, and a client that waited for replies would never send
//! the rest of the group at all (the fake answers only after the whole group), so a
//! lockstep client fails these tests by timing out. The opposite (`--no-pipelining`) is
//! checked with [`Session::reads_at`]: each command in its own read.
//!
//! Must not: touch anything but loopback, or wait unboundedly (postie runs with
//! `--timeout 10`, each run is killed after [`RUN_LIMIT`]).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::certs::pki;
use crate::support::fake_server::{
    data, ehlo, envelope, expect, expect_pipelined, greeting, quit, send, starttls, FakeServer,
    Session, Step,
};
use crate::support::postie;
use crate::support::run::Outcome;

const FROM: &str = "sender@example.test";
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn run(cmd: Command) -> Outcome {
    crate::support::run::run(cmd, None, RUN_LIMIT)
}

fn postie_at(server: &FakeServer, extra: &[&str]) -> Command {
    let mut cmd = postie();
    cmd.args(["--server", &server.addr(), "--timeout", "10"]);
    if !extra.contains(&"--tls") {
        cmd.args(["--tls", "none"]);
    }
    cmd.args(["-f", FROM]).args(extra);
    cmd
}

/// A composed message to `rcpts`.
fn composed(server: &FakeServer, extra: &[&str], rcpts: &[&str]) -> Command {
    let mut cmd = postie_at(server, extra);
    cmd.args(["-s", "Pipelined", "--body", "Hello"]).args(rcpts);
    cmd
}

/// A ready message from a file to `rcpts`; the temporary directory must outlive the run.
fn ready(
    server: &FakeServer,
    extra: &[&str],
    bytes: &[u8],
    rcpts: &[&str],
) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("message.eml");
    std::fs::write(&path, bytes).expect("write message");
    let mut cmd = postie_at(server, extra);
    cmd.arg("--message").arg(&path).args(rcpts);
    (cmd, dir)
}

/// What RFC 5321 makes of a message's lines: CRLF, CR or LF each end a line, written as
/// CRLF, and a last line without an end gets one. Independent of postie's codec.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn finish(server: FakeServer, out: &Outcome) -> Session {
    server.finish_with(&out.to_string())
}

/// A small message with everything DATA would stuff or fix: dot lines, bare LF, a bare CR.
const TRICKY: &[u8] =
    b"From: s@example.test\nSubject: dots\n\n.leading dot\n..two\r\n.\nbare\rcr\nlast";

// ---------------------------------------------------------------------------------------
// PIPELINING
// ---------------------------------------------------------------------------------------

/// Pipelined replies answer one write: each is waited for from the previous reply, so
/// the waits (--json phases, --show-time's "waiting") never add up to more than the
/// dialogue took. The server holds the group's replies back 300 ms.
#[test]
fn pipelined_waits_add_up_to_no_more_than_the_total() {
    let rcpts = ["a@example.test", "b@example.test", "c@example.test"];
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "8BITMIME"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test>",
                "RCPT TO:<a@example.test>",
                "RCPT TO:<b@example.test>",
                "RCPT TO:<c@example.test>",
                "DATA",
            ]),
            Step::Sleep(Duration::from_millis(300)),
            send("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 2.0.0 queued as W1\r\n221 2.0.0 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &["--json"], &rcpts));
    finish(server, &out);
    out.assert_code(0, "pipelined");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json output");
    let total = json["timings"]["total_ms"].as_f64().expect("total_ms");
    let phases = json["timings"]["phases"].as_object().expect("phases");
    let waited: f64 = phases.values().filter_map(|v| v.as_f64()).sum();
    assert!(total >= 300.0, "{}", out.stdout);
    assert!(
        waited <= total,
        "waited {waited} ms of a {total} ms dialogue: {}",
        out.stdout
    );
}

#[test]
fn mail_rcpts_and_data_go_in_one_write_and_replies_match_in_order() {
    let rcpts = ["ok@example.test", "gone@example.test", "later@example.test"];
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "8BITMIME"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test>",
                "RCPT TO:<ok@example.test>",
                "RCPT TO:<gone@example.test>",
                "RCPT TO:<later@example.test>",
                "DATA",
            ]),
            send(
                "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n\
                 451 4.3.0 try later\r\n354 go ahead\r\n",
            ),
            Step::ReadData,
            // QUIT went in the same write as the end-of-data mark.
            Step::ExpectBuffered("QUIT".into()),
            send("250 2.0.0 queued as P1\r\n221 2.0.0 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &["--json"], &rcpts));
    let session = finish(server, &out);
    // Something retryable is left (451): 75 wins over the 550 (design §2).
    out.assert_code(75, "mixed recipients");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json output");
    // Each reply belongs to its own recipient, in RCPT order.
    let got: Vec<(String, u64)> = json["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap_or_default().to_string(),
                r["code"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [(rcpts[0], 250), (rcpts[1], 550), (rcpts[2], 451)]
        .iter()
        .map(|(a, c)| (a.to_string(), *c))
        .collect();
    assert_eq!(got, want, "{}", out.stdout);
    assert_eq!(session.data.len(), 1);
}

#[test]
fn every_recipient_refused_means_datas_refusal_is_expected_and_nothing_is_sent() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test>",
                "RCPT TO:<a@example.test>",
                "RCPT TO:<b@example.test>",
                "DATA",
            ]),
            send(
                "250 2.1.0 ok\r\n550 5.1.1 a unknown\r\n550 5.1.1 b unknown\r\n\
                 554 5.5.1 no valid recipients\r\n",
            ),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(
        &server,
        &[],
        &["a@example.test", "b@example.test"],
    ));
    let session = finish(server, &out);
    out.assert_code(67, "all recipients refused");
    assert!(session.data.is_empty(), "no message may be sent");
    assert!(
        !out.stderr.contains("554"),
        "DATA's 554 is expected, not the error: {}",
        out.stderr
    );
}

#[test]
fn refused_mail_still_reads_the_rcpt_and_data_replies_and_reports_mail() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test>",
                "RCPT TO:<a@example.test>",
                "DATA",
            ]),
            send(
                "553 5.7.1 sender rejected\r\n503 5.5.1 need MAIL first\r\n\
                 503 5.5.1 need RCPT first\r\n",
            ),
        ],
        // In step: QUIT is read and answered, not one of the 503s.
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &[], &["a@example.test"]));
    finish(server, &out);
    out.assert_code(65, "MAIL refused");
    assert!(
        out.stderr.contains("553") && out.stderr.contains("MAIL"),
        "the error is MAIL's: {}",
        out.stderr
    );
}

#[test]
fn a_421_inside_the_group_ends_the_dialogue_with_75() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test>",
                "RCPT TO:<a@example.test>",
                "DATA",
            ]),
            send("250 2.1.0 ok\r\n421 4.3.2 shutting down\r\n"),
            Step::Close,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &[], &["a@example.test"]));
    finish(server, &out);
    out.assert_code(75, "421");
    assert!(out.stderr.contains("421"), "{}", out.stderr);
}

#[test]
fn no_pipelining_waits_for_each_reply() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING"]),
        envelope(FROM, &["a@example.test", "b@example.test"]),
        data("250 2.0.0 queued\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(
        &server,
        &["--no-pipelining"],
        &["a@example.test", "b@example.test"],
    ));
    let session = finish(server, &out);
    out.assert_quiet_success("--no-pipelining");
    // MAIL, RCPT, RCPT, DATA and QUIT each came in a read of its own.
    let at = |verb: &str| {
        let i = session
            .received
            .iter()
            .position(|l| l.starts_with(verb))
            .unwrap_or_else(|| panic!("{verb} in {:?}", session.received));
        session.reads_at[i]
    };
    let reads = [at("MAIL"), at("RCPT TO:<a"), at("RCPT TO:<b"), at("DATA")];
    assert!(
        reads.windows(2).all(|w| w[0] < w[1]),
        "each command in its own read: {reads:?} {:?}",
        session.received
    );
}

#[test]
fn without_pipelining_offered_the_dialogue_is_lockstep() {
    let script = [
        vec![greeting()],
        ehlo(&["8BITMIME"]),
        envelope(FROM, &["a@example.test"]),
        data("250 2.0.0 queued\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &[], &["a@example.test"]));
    let session = finish(server, &out);
    out.assert_quiet_success("no PIPELINING");
    let mail = session.received.iter().position(|l| l.starts_with("MAIL"));
    let rcpt = session.received.iter().position(|l| l.starts_with("RCPT"));
    let (Some(mail), Some(rcpt)) = (mail, rcpt) else {
        panic!("{:?}", session.received)
    };
    assert!(session.reads_at[mail] < session.reads_at[rcpt]);
}

// ---------------------------------------------------------------------------------------
// CHUNKING
// ---------------------------------------------------------------------------------------

#[test]
fn small_message_is_one_bdat_last_pipelined_with_mail_rcpt_and_quit() {
    let body = crlf(TRICKY);
    let mail = format!("MAIL FROM:<sender@example.test> SIZE={}", TRICKY.len());
    let bdat = format!("BDAT {} LAST", body.len());
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING", "SIZE 1000000"]),
        vec![
            // One write: the whole transaction and QUIT. Greeting + EHLO + one round trip.
            expect_pipelined(&[&mail, "RCPT TO:<a@example.test>", &bdat, "QUIT"]),
            send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued\r\n221 2.0.0 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &[], TRICKY, &["a@example.test"]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_quiet_success("BDAT LAST");
    // Exact bytes: line ends normalised, no dot doubled, no end-of-data line.
    assert_eq!(
        String::from_utf8_lossy(&session.chunks[0]),
        String::from_utf8_lossy(&body)
    );
    assert!(session.data.is_empty(), "no DATA");
}

#[test]
fn no_chunking_sends_data_with_dot_stuffing() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING", "SIZE"]),
        vec![
            expect_pipelined(&[
                &format!("MAIL FROM:<sender@example.test> SIZE={}", TRICKY.len()),
                "RCPT TO:<a@example.test>",
                "DATA",
            ]),
            send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 2.0.0 queued\r\n221 2.0.0 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &["--no-chunking"], TRICKY, &["a@example.test"]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_quiet_success("--no-chunking");
    let stuffed = b"From: s@example.test\r\nSubject: dots\r\n\r\n..leading dot\r\n...two\r\n..\r\nbare\r\ncr\r\nlast\r\n.\r\n";
    assert_eq!(
        String::from_utf8_lossy(&session.data[0]),
        String::from_utf8_lossy(stuffed)
    );
}

/// A message of `size` bytes with dot lines and bare LFs all through it.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: s@example.test\nSubject: big\n\n".to_vec();
    let mut i = 0u32;
    while m.len() < size {
        let line = if i.is_multiple_of(5) {
            format!(".line {i}\n")
        } else {
            format!("line {i} of a big message\r\n")
        };
        m.extend_from_slice(line.as_bytes());
        i += 1;
    }
    m
}

/// QUIT written with the LAST chunk (already read), the end-of-data reply and QUIT's.
fn quit_after_last() -> Vec<Step> {
    vec![
        expect("QUIT"),
        send("250 2.0.0 queued\r\n221 2.0.0 bye\r\n"),
        Step::ExpectClose,
    ]
}

/// The BDAT lines a session received must match its chunks (exact counts), and only the
/// last says LAST; the chunks together are the normalised message.
fn assert_chunks(session: &Session, message: &[u8], n: usize) {
    let bdats: Vec<&String> = session
        .received
        .iter()
        .filter(|l| l.starts_with("BDAT"))
        .collect();
    assert_eq!((bdats.len(), session.chunks.len()), (n, n), "{bdats:?}");
    for (i, (line, chunk)) in bdats.iter().zip(&session.chunks).enumerate() {
        let want = if i + 1 == n {
            format!("BDAT {} LAST", chunk.len())
        } else {
            format!("BDAT {}", chunk.len())
        };
        assert_eq!(**line, want);
    }
    assert!(session.chunks[0].len() >= 1 << 20, "chunks of about 1 MiB");
    let all: Vec<u8> = session.chunks.concat();
    assert!(
        all == crlf(message),
        "the chunks are the normalised message"
    );
}

/// A big message that can be read again (a file) sends its first two chunks in the same
/// write as MAIL and RCPT (RFC 3030 §4.2), so it takes a round trip less than with DATA:
/// the server reads MAIL, RCPT and both chunks before it answers anything (a client
/// waiting for the RCPT reply would time out here). The last chunk waits for the replies.
#[test]
fn big_message_from_a_file_sends_its_first_chunks_with_mail_and_rcpt() {
    let message = big_message(2_600_000);
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING", "8BITMIME", "SIZE 10000000"]),
        vec![
            expect(format!(
                "MAIL FROM:<sender@example.test> SIZE={} BODY=8BITMIME",
                message.len()
            )),
            expect("RCPT TO:<a@example.test>"),
            Step::ReadBdat,
            Step::ReadBdat,
            send(
                "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 chunk 1 ok\r\n250 2.0.0 chunk 2 ok\r\n",
            ),
            Step::ReadBdat,
        ],
        quit_after_last(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &[], &message, &["a@example.test"]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_quiet_success("early chunks");
    assert_chunks(&session, &message, 3);
    let c = |i: usize| session.chunks[i].len();
    assert_eq!(
        session.received,
        [
            "EHLO postie.test".to_string(),
            format!(
                "MAIL FROM:<sender@example.test> SIZE={} BODY=8BITMIME",
                message.len()
            ),
            "RCPT TO:<a@example.test>".into(),
            format!("BDAT {}", c(0)),
            format!("BDAT {}", c(1)),
            format!("BDAT {} LAST", c(2)),
            "QUIT".into(),
        ]
    );
}

/// From stdin a message cannot be read again, so no chunk goes before the RCPT replies are
/// in: the first BDAT comes in a later read than MAIL and RCPT, after the server answered.
#[test]
fn big_message_from_stdin_goes_in_chunks_after_the_rcpt_replies() {
    let message = big_message(2_600_000);
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING", "8BITMIME"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test> BODY=8BITMIME",
                "RCPT TO:<a@example.test>",
            ]),
            send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n"),
            Step::ReadBdat,
            send("250 2.0.0 chunk 1 ok\r\n"),
            Step::ReadBdat,
            send("250 2.0.0 chunk 2 ok\r\n"),
            Step::ReadBdat,
        ],
        quit_after_last(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie_at(&server, &["--message", "-"]);
    cmd.arg("a@example.test");
    let out = crate::support::run::run(cmd, Some(&message), RUN_LIMIT);
    let session = finish(server, &out);
    out.assert_quiet_success("chunks after the replies");
    assert_chunks(&session, &message, 3);
    let at = |prefix: &str| {
        let i = session
            .received
            .iter()
            .position(|l| l.starts_with(prefix))
            .expect(prefix);
        session.reads_at[i]
    };
    assert!(at("BDAT") > at("RCPT"), "{:?}", session.reads_at);
}

/// Every recipient refused after the first chunks went early: the replies to those chunks
/// are read (refusals), no LAST is ever sent (nothing was delivered), and the outcome is
/// the RCPT refusal's (67), with QUIT's reply QUIT's.
#[test]
fn early_chunks_to_a_refused_recipient_end_without_last() {
    let message = big_message(2_600_000);
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING", "8BITMIME"]),
        vec![
            expect("MAIL FROM:<sender@example.test> BODY=8BITMIME"),
            expect("RCPT TO:<a@example.test>"),
            Step::ReadBdat,
            Step::ReadBdat,
            send(concat!(
                "250 2.1.0 ok\r\n",
                "550 5.1.1 <a@example.test>: no such user\r\n",
                "554 5.5.1 Error: no valid recipients\r\n",
                "554 5.5.1 Error: no valid recipients\r\n",
            )),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &["-v"], &message, &["a@example.test"]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_code(67, "no such user");
    let c = |i: usize| session.chunks[i].len();
    assert_eq!(
        session.received,
        [
            "EHLO postie.test".to_string(),
            "MAIL FROM:<sender@example.test> BODY=8BITMIME".into(),
            "RCPT TO:<a@example.test>".into(),
            format!("BDAT {}", c(0)),
            format!("BDAT {}", c(1)),
            "QUIT".into(),
        ]
    );
    assert!(out.stderr.contains("<-  221"), "{}", out.stderr);
}

/// The first server closes (421 to MAIL) after reading the early chunks: it had no LAST, so
/// it has nothing, and the message goes whole to the next server of the list (read again
/// from its file), its first chunks early there too.
#[test]
fn early_chunks_then_421_send_the_whole_message_to_the_next_server() {
    let message = big_message(2_600_000);
    // Up to the two early chunks, read before anything is answered.
    let early = || {
        [
            vec![greeting()],
            ehlo(&["PIPELINING", "CHUNKING", "8BITMIME"]),
            vec![
                expect("MAIL FROM:<sender@example.test> BODY=8BITMIME"),
                expect("RCPT TO:<a@example.test>"),
                Step::ReadBdat,
                Step::ReadBdat,
            ],
        ]
        .concat()
    };
    let first = FakeServer::start(
        [
            early(),
            vec![send("421 4.3.2 shutting down\r\n"), Step::Close],
        ]
        .concat(),
    );
    let second = FakeServer::start(
        [
            early(),
            vec![
                send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 1\r\n250 2.0.0 2\r\n"),
                Step::ReadBdat,
                expect("QUIT"),
                send("250 2.0.0 queued as Q2\r\n221 2.0.0 bye\r\n"),
                Step::ExpectClose,
            ],
        ]
        .concat(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("message.eml");
    std::fs::write(&path, &message).expect("write message");
    let mut cmd = postie();
    let servers = format!("{},{}", first.addr(), second.addr());
    cmd.args(["--server", &servers, "--timeout", "10", "--tls", "none"])
        .args(["-f", FROM, "--message"])
        .arg(&path)
        .arg("a@example.test");
    let out = run(cmd);
    let seen_first = first.finish_with(&out.to_string());
    let seen_second = second.finish_with(&out.to_string());
    out.assert_code(0, "the second server took it");
    assert_eq!(seen_first.chunks.len(), 2, "{out}");
    assert!(
        !seen_first.received.iter().any(|l| l.ends_with("LAST")),
        "no LAST to the first: {:?}",
        seen_first.received
    );
    assert_chunks(&seen_second, &message, 3);
}

#[test]
fn big_message_to_refused_recipients_is_never_sent() {
    let message = big_message(300_000);
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING", "SIZE"]),
        vec![
            expect_pipelined(&[
                &format!("MAIL FROM:<sender@example.test> SIZE={}", message.len()),
                "RCPT TO:<a@example.test>",
            ]),
            send("250 2.1.0 ok\r\n550 5.1.1 unknown\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &[], &message, &["a@example.test"]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_code(67, "refused");
    assert!(session.chunks.is_empty());
}

const BINARY: &[u8] = b"From: s@example.test\r\nMIME-Version: 1.0\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\
\x00\x01\xff\n.\r\rno CRLF here\n.";

#[test]
fn binary_body_goes_as_binarymime_with_exact_bytes() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test> BODY=BINARYMIME",
                "RCPT TO:<a@example.test>",
                &format!("BDAT {} LAST", BINARY.len()),
                "QUIT",
            ]),
            send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued\r\n221 2.0.0 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &[], BINARY, &["a@example.test"]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_quiet_success("BINARYMIME");
    assert!(session.chunks[0] == BINARY, "binary bytes untouched");
}

#[test]
fn binary_body_without_binarymime_is_refused_before_mail() {
    for (exts, extra) in [
        (&["PIPELINING", "CHUNKING", "8BITMIME"][..], &[][..]),
        (
            &["PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME"][..],
            &["--no-chunking"][..],
        ),
    ] {
        let script = [vec![greeting()], ehlo(exts), quit()].concat();
        let server = FakeServer::start(script);
        let (cmd, _dir) = ready(&server, extra, BINARY, &["a@example.test"]);
        let out = run(cmd);
        finish(server, &out);
        out.assert_code(65, &format!("{exts:?} {extra:?}"));
        assert!(out.stderr.contains("BINARYMIME"), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// MAIL FROM parameters
// ---------------------------------------------------------------------------------------

#[test]
fn message_over_the_advertised_size_is_refused_before_mail_with_65() {
    let message = big_message(5_000);
    let script = [vec![greeting()], ehlo(&["PIPELINING", "SIZE 1000"]), quit()].concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &[], &message, &["a@example.test"]);
    let out = run(cmd);
    finish(server, &out);
    out.assert_code(65, "SIZE");
    assert!(
        out.stderr.contains("1000") && out.stderr.contains(&message.len().to_string()),
        "the limit and the size: {}",
        out.stderr
    );
}

const EIGHT_BIT: &[u8] =
    "From: s@example.test\nSubject: plain\n\nCaf\u{e9} cr\u{e8}me\n".as_bytes();

#[test]
fn eight_bit_raw_message_declares_8bitmime() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "8BITMIME", "SIZE 1000"]),
        vec![
            expect_pipelined(&[
                &format!(
                    "MAIL FROM:<sender@example.test> SIZE={} BODY=8BITMIME",
                    EIGHT_BIT.len()
                ),
                "RCPT TO:<a@example.test>",
                "DATA",
            ]),
            send("250 ok\r\n250 ok\r\n354 go\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 queued\r\n221 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &[], EIGHT_BIT, &["a@example.test"]);
    let out = run(cmd);
    finish(server, &out);
    out.assert_quiet_success("8BITMIME");
}

#[test]
fn eight_bit_headers_without_8bitmime_are_refused_with_65() {
    // The body would be converted to 7-bit (seven_bit.rs); a UTF-8 header cannot be.
    let message = "From: s@example.test\nSubject: Gr\u{fc}\u{df}e\n\nCaf\u{e9}\n";
    let script = [vec![greeting()], ehlo(&["PIPELINING"]), quit()].concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &[], message.as_bytes(), &["a@example.test"]);
    let out = run(cmd);
    finish(server, &out);
    out.assert_code(65, "8-bit header without 8BITMIME");
    assert!(out.stderr.contains("8BITMIME"), "{}", out.stderr);
}

#[test]
fn composed_utf8_message_goes_7bit_to_a_server_without_8bitmime() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING"]),
        vec![
            Step::ExpectPipelined(vec![
                "MAIL FROM:<sender@example.test>".into(),
                "RCPT TO:<a@example.test>".into(),
                "DATA".into(),
            ]),
            send("250 ok\r\n250 ok\r\n354 go\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 queued\r\n221 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie_at(&server, &[]);
    cmd.args([
        "-s",
        "Caf\u{e9}",
        "--body",
        "Cr\u{e8}me br\u{fb}l\u{e9}e",
        "a@example.test",
    ]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_quiet_success("re-encoded");
    assert!(session.data[0].is_ascii(), "the builder encoded it 7-bit");
}

#[test]
fn utf8_address_uses_smtputf8_and_is_refused_without_it() {
    let rcpt = "j\u{f6}rg@example.test";
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "8BITMIME", "SMTPUTF8"]),
        vec![
            expect_pipelined(&[
                // The builder cannot encode a UTF-8 address in To:, so the message is 8-bit.
                "MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8",
                &format!("RCPT TO:<{rcpt}>"),
                "DATA",
            ]),
            send("250 ok\r\n250 ok\r\n354 go\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 queued\r\n221 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &[], &[rcpt]));
    finish(server, &out);
    out.assert_quiet_success("SMTPUTF8");

    let script = [vec![greeting()], ehlo(&["PIPELINING", "8BITMIME"]), quit()].concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &[], &[rcpt]));
    finish(server, &out);
    out.assert_code(65, "no SMTPUTF8");
    assert!(out.stderr.contains("SMTPUTF8"), "{}", out.stderr);
}

#[test]
fn utf8_headers_ask_for_smtputf8_when_offered() {
    let message = "From: s@example.test\nSubject: Gr\u{fc}\u{df}e\n\nhi\n";
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE"]),
        vec![
            expect_pipelined(&[
                &format!(
                    "MAIL FROM:<sender@example.test> SIZE={} BODY=8BITMIME SMTPUTF8",
                    message.len()
                ),
                "RCPT TO:<a@example.test>",
                "DATA",
            ]),
            send("250 ok\r\n250 ok\r\n354 go\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 queued\r\n221 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &[], message.as_bytes(), &["a@example.test"]);
    let out = run(cmd);
    finish(server, &out);
    out.assert_quiet_success("UTF-8 headers");
}

/// `--require-tls` over STARTTLS with the test CA.
fn require_tls_args() -> [&'static str; 5] {
    let ca = pki().ca_pem.to_str().expect("UTF-8 path");
    ["--require-tls", "--tls", "starttls", "--tls-ca", ca]
}

#[test]
fn require_tls_is_sent_inside_tls_when_offered() {
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS"]),
        starttls(Step::StartTls),
        ehlo(&["PIPELINING", "REQUIRETLS"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test> REQUIRETLS",
                "RCPT TO:<a@example.test>",
                "DATA",
            ]),
            send("250 ok\r\n250 ok\r\n354 go\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 queued\r\n221 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &require_tls_args(), &["a@example.test"]));
    finish(server, &out);
    out.assert_quiet_success("REQUIRETLS");
}

#[test]
fn require_tls_is_refused_with_69_before_mail_when_impossible() {
    // Inside TLS but not offered.
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS"]),
        starttls(Step::StartTls),
        ehlo(&["PIPELINING"]),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &require_tls_args(), &["a@example.test"]));
    finish(server, &out);
    out.assert_code(69, "REQUIRETLS not offered");
    assert!(out.stderr.contains("REQUIRETLS"), "{}", out.stderr);

    // Offered, but the connection is not encrypted.
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "REQUIRETLS"]),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(composed(&server, &["--require-tls"], &["a@example.test"]));
    finish(server, &out);
    out.assert_code(69, "REQUIRETLS without TLS");
    assert!(out.stderr.contains("not encrypted"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// AUTH round trips
// ---------------------------------------------------------------------------------------

fn auth_script(exts: &[&str], auth: Vec<Step>) -> Vec<Step> {
    [
        vec![greeting()],
        ehlo(exts),
        auth,
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test>",
                "RCPT TO:<a@example.test>",
                "DATA",
            ]),
            send("250 ok\r\n250 ok\r\n354 go\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 queued\r\n221 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat()
}

#[test]
fn auth_plain_and_oauth_take_one_round_trip_unless_the_line_would_pass_512() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let short = "ya29.short-token";
    let long = "t".repeat(600);
    let cases: Vec<(&str, &str, Vec<Step>)> = vec![
        (
            "PLAIN",
            "pw",
            vec![
                expect(format!("AUTH PLAIN {}", b64("\0user\0pw"))),
                send("235 2.7.0 ok\r\n"),
            ],
        ),
        (
            "XOAUTH2",
            short,
            vec![
                expect(format!(
                    "AUTH XOAUTH2 {}",
                    b64(&format!("user=user\x01auth=Bearer {short}\x01\x01"))
                )),
                send("235 2.7.0 ok\r\n"),
            ],
        ),
        // RFC 4954 §4: too long for the AUTH line, so sent after an empty 334.
        (
            "XOAUTH2",
            &long,
            vec![
                expect("AUTH XOAUTH2"),
                send("334 \r\n"),
                expect(b64(&format!("user=user\x01auth=Bearer {long}\x01\x01"))),
                send("235 2.7.0 ok\r\n"),
            ],
        ),
    ];
    for (mech, secret, auth) in cases {
        let server = FakeServer::start(auth_script(&["PIPELINING", &format!("AUTH {mech}")], auth));
        let mut cmd = composed(
            &server,
            &["--user", "user", "--auth", mech, "--allow-plaintext-auth"],
            &["a@example.test"],
        );
        cmd.env("POSTIE_PASSWORD", secret);
        let out = run(cmd);
        finish(server, &out);
        out.assert_quiet_success(&format!("AUTH {mech} ({} bytes)", secret.len()));
    }
}

#[test]
fn eight_bit_found_past_the_read_ahead_without_8bitmime_is_converted_before_mail() {
    // Past the read-ahead, so only found once the message is read whole for the server
    // without 8BITMIME; converted (seven_bit.rs), it still goes in the pipelined group.
    let mut message = big_message(200_000);
    message.extend_from_slice("caf\u{e9}\n".as_bytes());
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test>",
                "RCPT TO:<a@example.test>",
                "DATA",
            ]),
            send("250 ok\r\n250 ok\r\n354 go\r\n"),
            Step::ReadData,
            Step::ExpectBuffered("QUIT".into()),
            send("250 queued\r\n221 bye\r\n"),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie_at(&server, &["--message", "-"]);
    cmd.arg("a@example.test");
    let out = crate::support::run::run(cmd, Some(&message), RUN_LIMIT);
    let session = finish(server, &out);
    out.assert_quiet_success("converted while streaming");
    assert!(session.data[0].is_ascii(), "no 8-bit byte went out");
    assert!(
        session.data[0].ends_with(b"caf=C3=A9\r\n.\r\n"),
        "the 8-bit line, quoted-printable"
    );
}

#[test]
fn lmtp_with_chunking_reads_one_bdat_reply_per_accepted_recipient() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("lmtp");
    let script = [
        vec![greeting()],
        vec![
            expect("LHLO postie.test"),
            send(crate::support::fake_server::ehlo_reply(&[
                "PIPELINING",
                "CHUNKING",
                "8BITMIME",
            ])),
            Step::ExpectPipelined(vec![
                "MAIL FROM:<sender@example.test>".into(),
                "RCPT TO:<a@example.test>".into(),
                "RCPT TO:<gone@example.test>".into(),
                "RCPT TO:<b@example.test>".into(),
                // The composed message (fixed Date and Message-ID in test mode). Its exact
                // length is checked by what follows: QUIT must start right after 286 bytes.
                "BDAT 286 LAST".into(),
                "QUIT".into(),
            ]),
            send(
                "250 ok\r\n250 ok\r\n550 5.1.1 gone\r\n250 ok\r\n\
                 250 2.0.0 <a> saved\r\n452 4.2.2 <b> mailbox full\r\n221 bye\r\n",
            ),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start_unix(&socket, script);
    let mut cmd = postie();
    cmd.arg("--socket").arg(&socket).args([
        "--protocol",
        "lmtp",
        "--timeout",
        "10",
        "-f",
        FROM,
        "--json",
        "-s",
        "lmtp",
        "--body",
        "hello",
        "a@example.test",
        "gone@example.test",
        "b@example.test",
    ]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_code(75, "b's 452 is retryable");
    assert_eq!(session.chunks.len(), 1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json");
    let statuses: Vec<&str> = json["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        ["accepted", "permanent", "transient"],
        "{}",
        out.stdout
    );
}

/// With PIPELINING the chunks of a big message go out without waiting for their replies
/// (up to a byte window of several MiB): the server reads all three before it answers.
/// Its 552 to the middle one is read and is the outcome (65), not a broken pipe; the reply
/// to the chunk behind it is read too, so QUIT's reply is QUIT's.
#[test]
fn big_message_chunks_are_pipelined_and_a_552_on_a_middle_one_is_the_outcome() {
    let message = big_message(2_600_000);
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING"]),
        vec![
            expect_pipelined(&[
                "MAIL FROM:<sender@example.test>",
                "RCPT TO:<a@example.test>",
            ]),
            send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n"),
            // All three before any reply: a client waiting for chunk 1's reply would stall.
            Step::ReadBdat,
            Step::ReadBdat,
            Step::ReadBdat,
            Step::ExpectBuffered("QUIT".into()),
            send(concat!(
                "250 2.0.0 chunk 1 ok\r\n",
                "552 5.3.4 Message too big for system\r\n",
                "554 5.5.0 transaction already failed\r\n",
                "221 2.0.0 bye\r\n"
            )),
            Step::ExpectClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let (cmd, _dir) = ready(&server, &["-v"], &message, &["a@example.test"]);
    let out = run(cmd);
    let session = finish(server, &out);
    out.assert_code(65, "552 to the second chunk");
    assert_eq!(session.chunks.len(), 3);
    assert!(out.stderr.contains("552 5.3.4"), "{}", out.stderr);
    assert!(out.stderr.contains("<-  221 2.0.0 bye"), "{}", out.stderr);
}
