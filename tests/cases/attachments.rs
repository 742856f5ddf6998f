//! Attachments left in their files (issue 15): a composed message whose attachment is over
//! 1 MiB is read and base64-encoded while it is sent. The bytes that arrive are what
//! mail-builder would have made (the unit tests compare both paths byte for byte), the
//! size declared with SIZE= is exact, memory stays flat with the attachment's size, the
//! message can be spooled and sent again from the queue, and an attachment that changes
//! after the message was composed fails the send instead of delivering a corrupt message.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_server::{
    data, ehlo, expect, expect_prefix, greeting, quit, send, FakeServer, Session, Step,
};
use crate::support::postie;
use crate::support::run::{run, Outcome};

const FROM: &str = "sender@example.test";
const TO: &str = "rcpt@example.test";
const LIMIT: Duration = Duration::from_secs(120);

/// `n` pseudo-random bytes (every byte value, CR and LF included).
fn blob(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn plain(server: &FakeServer) -> Command {
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        "30",
        "--tls",
        "none",
    ]);
    cmd
}

/// The one DATA payload, un-stuffed (the trailing ".\r\n" removed, leading dots halved).
#[track_caller]
fn payload(session: &Session, run: &Outcome) -> Vec<u8> {
    assert_eq!(session.data.len(), 1, "expected one message\n{run}");
    let raw = &session.data[0];
    let body = raw.strip_suffix(b".\r\n").expect("end of data");
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// A server offering SIZE that takes one message, MAIL FROM with any parameters.
fn accepting() -> FakeServer {
    FakeServer::start(
        [
            vec![greeting()],
            ehlo(&["SIZE 100000000"]),
            vec![
                expect_prefix(format!("MAIL FROM:<{FROM}>")),
                send("250 2.1.0 ok\r\n"),
                expect(format!("RCPT TO:<{TO}>")),
                send("250 2.1.5 ok\r\n"),
            ],
            data("250 2.0.0 queued\r\n"),
            quit(),
        ]
        .concat(),
    )
}

/// The attachments of a received message, in order, decoded.
fn attachments(message: &[u8]) -> Vec<Vec<u8>> {
    let parsed = mail_parser::MessageParser::default()
        .parse(message)
        .expect("the message parses");
    parsed
        .attachments()
        .map(|a| a.contents().to_vec())
        .collect()
}

#[test]
fn a_large_attachment_arrives_from_its_file_identical_and_its_size_declared_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let big = blob(3 << 20);
    let small = blob(1000);
    let (big_path, small_path) = (dir.path().join("big.bin"), dir.path().join("small.bin"));
    std::fs::write(&big_path, &big).unwrap();
    std::fs::write(&small_path, &small).unwrap();
    let server = accepting();
    let mut cmd = plain(&server);
    cmd.args([
        "-f",
        FROM,
        "-s",
        "big one",
        "--body",
        "see attached\n",
        "-a",
    ])
    .arg(&big_path)
    .arg("-a")
    .arg(&small_path)
    .arg(TO);
    let out = run(cmd, None, LIMIT);
    let session = server.finish_with(&out.to_string());
    out.assert_quiet_success("a message with a 3 MiB attachment");
    let message = payload(&session, &out);
    assert!(message.is_ascii(), "raw binary on the wire");
    let mail = session
        .received
        .iter()
        .find(|l| l.starts_with("MAIL FROM:"))
        .expect("MAIL");
    assert!(
        mail.ends_with(&format!(" SIZE={}", message.len())),
        "{mail}: the message has {} bytes",
        message.len()
    );
    assert_eq!(
        attachments(&message),
        [big, small],
        "the attachments changed"
    );
    let text = String::from_utf8_lossy(&message);
    assert!(
        text.contains(
            "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; \
             filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ),
        "{}",
        &text[..2000.min(text.len())]
    );
    assert!(
        text.lines()
            .filter(|l| !l.is_empty() && !l.contains(':') && !l.starts_with("--"))
            .all(|l| l.len() <= 76),
        "base64 lines over 76 characters"
    );
}

/// The peak resident set size (VmHWM, kB) of `pid`, if it is still there to ask.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Run `cmd` to its end, sampling its peak RSS; the exit code, stderr and the peak (kB).
fn run_sampled(mut cmd: Command) -> (Option<i32>, String, u64) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn postie");
    let pid = child.id();
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut peak = 0;
    let code = loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("postie still running after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (code, reader.join().unwrap_or_default(), peak)
}

#[test]
fn memory_does_not_grow_with_the_attachment() {
    // 24 MiB: held in memory (raw and encoded) it would take well over 50 MiB. The 50 MB
    // comparison with s-nail is the bench script's.
    const SIZE: usize = 24 << 20;
    const RSS_LIMIT_KB: u64 = 32 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.tar");
    std::fs::write(&path, blob(SIZE)).unwrap();
    let server = FakeServer::start(
        [
            vec![greeting()],
            ehlo(&["8BITMIME"]),
            vec![
                expect_prefix(format!("MAIL FROM:<{FROM}>")),
                send("250 2.1.0 ok\r\n"),
                expect(format!("RCPT TO:<{TO}>")),
                send("250 2.1.5 ok\r\n"),
                expect("DATA"),
                send("354 go ahead\r\n"),
                Step::CountData,
                send("250 2.0.0 queued\r\n"),
            ],
            quit(),
        ]
        .concat(),
    );
    let mut cmd = plain(&server);
    cmd.args(["-f", FROM, "-s", "big", "--body", "x", "-a"])
        .arg(&path)
        .arg(TO);
    let (code, stderr, peak) = run_sampled(cmd);
    let session = server.finish_with(&stderr);
    assert_eq!(code, Some(0), "{stderr}");
    let sent = session.data_sizes.first().copied().unwrap_or(0);
    assert!(sent > SIZE as u64 * 4 / 3, "only {sent} bytes sent");
    assert!(peak > 0, "no RSS sample of postie");
    assert!(
        peak < RSS_LIMIT_KB,
        "postie's peak RSS was {peak} kB with a {} MiB attachment (limit {RSS_LIMIT_KB} kB)",
        SIZE >> 20
    );
    eprintln!("{} MiB attachment: peak RSS {peak} kB", SIZE >> 20);
}

#[test]
fn an_attachment_changed_after_composing_fails_the_send_and_nothing_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.bin");
    let original = blob(2 << 20);
    std::fs::write(&path, &original).unwrap();
    // The server is slow to greet: the file changes after postie composed the message
    // (at once, when it starts) and before it reads the file to send it.
    let server = FakeServer::start(
        [
            vec![Step::Sleep(Duration::from_secs(3)), greeting()],
            ehlo(&[]),
            vec![
                expect_prefix(format!("MAIL FROM:<{FROM}>")),
                send("250 2.1.0 ok\r\n"),
                expect(format!("RCPT TO:<{TO}>")),
                send("250 2.1.5 ok\r\n"),
                expect("DATA"),
                send("354 go ahead\r\n"),
                Step::ExpectDataCut,
            ],
        ]
        .concat(),
    );
    let mut cmd = plain(&server);
    cmd.args(["-f", FROM, "-s", "changing", "--body", "x", "-a"])
        .arg(&path)
        .arg(TO)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn postie");
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(&path, &original[..original.len() / 2]).unwrap();
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let session = server.finish_with(&stderr);
    assert_eq!(output.status.code(), Some(74), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    assert!(
        stderr.contains("report.bin changed after the message was composed")
            && stderr.contains("nothing was delivered"),
        "{stderr}"
    );
    assert!(
        !session.data.iter().any(|d| d.ends_with(b"\r\n.\r\n")),
        "the end of data was sent"
    );
}

#[test]
fn a_queued_message_with_a_large_attachment_is_delivered_identical_later() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue");
    let path = dir.path().join("data.bin");
    let big = blob((1 << 20) + 12345);
    std::fs::write(&path, &big).unwrap();
    // Nobody listens: the message is spooled.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut cmd = postie();
    cmd.arg("--queue")
        .arg("--queue-dir")
        .arg(&queue)
        .args([
            "--server", &closed, "--tls", "none", "-f", FROM, "-s", "later",
        ])
        .args(["--body", "hi", "-a"])
        .arg(&path)
        .arg(TO);
    let out = run(cmd, None, LIMIT);
    out.assert_code(0, "queued");
    assert!(out.stderr.contains("queued as"), "{out}");
    // The attachment may go: the spool has the whole message.
    std::fs::remove_file(&path).unwrap();
    let server = accepting();
    let mut cmd = postie();
    cmd.args(["queue", "flush", "--queue-dir"])
        .arg(&queue)
        .args(["--server", &server.addr(), "--tls", "none"]);
    let out = run(cmd, None, LIMIT);
    let session = server.finish_with(&out.to_string());
    out.assert_code(0, "queue flush");
    assert_eq!(attachments(&payload(&session, &out)), [big]);
}

/// Two recipient domains (direct MX delivery): the composed message is read again for the
/// second domain, its attachment from the file once more, and both get the same bytes.
#[test]
fn two_mx_domains_each_get_the_message_read_again_from_the_file() {
    use crate::support::dns_server::Zone;
    use crate::support::fake_server::envelope;
    use std::net::{IpAddr, Ipv4Addr};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let big = blob((1 << 20) + 999);
    std::fs::write(&path, &big).unwrap();
    let ip = |last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
    let port = crate::cases::mx::shared_port();
    let accepting = |rcpt: &str| {
        [
            vec![greeting()],
            ehlo(&[]),
            envelope(FROM, &[rcpt]),
            data("250 2.0.0 queued\r\n"),
            quit(),
        ]
        .concat()
    };
    let a = FakeServer::start_on(ip(2), port, accepting("x@a.test"));
    let b = FakeServer::start_on(ip(3), port, accepting("z@b.test"));
    let dns = Zone::new()
        .mx("a.test", &[(10, "mx.a.test")])
        .a("mx.a.test", "127.0.0.2")
        .mx("b.test", &[(10, "mx.b.test")])
        .a("mx.b.test", "127.0.0.3")
        .start();
    let mut cmd = postie();
    cmd.args(["--mx", "--port", &port.to_string()])
        .args(["--resolver", &dns.addr().to_string()])
        .args([
            "--timeout",
            "10",
            "-f",
            FROM,
            "-s",
            "both",
            "--body",
            "hi",
            "-a",
        ])
        .arg(&path)
        .args(["x@a.test", "z@b.test"]);
    let out = run(cmd, None, LIMIT);
    let sa = a.finish_with(&out.describe());
    let sb = b.finish_with(&out.describe());
    out.assert_code(0, "two domains");
    assert_eq!(sa.data, sb.data, "the same message to both");
    assert_eq!(attachments(&payload(&sa, &out)), [big]);
}
