//! Hostile servers and hostile input (issue 6).
//!
//! STARTTLS attacks, in the categories of the "NO STARTTLS" study (Poddebniak et al.,
//! USENIX Security 2021) and of RFC 3207 §6: *negotiation* (STARTTLS stripped from EHLO,
//! STARTTLS answered 4xx/5xx, capabilities changed across the upgrade), *buffering*
//! (plaintext injected after the 220, in the same write or just after it; replies
//! pipelined before the handshake) and *tampering* (a certificate for the wrong name,
//! expired, or self-signed; a server that never really starts TLS). In every case postie
//! must stop before the password or the mail cross the wire: the fake server must never
//! see AUTH or MAIL, and the password must appear nowhere in what it received.
//!
//! Hostile input: header injection through `-s`, `-H`, `--to`, `-c`, `--from` (CR, LF);
//! malformed and over-long addresses; 8-bit headers for a server without SMTPUTF8; lines
//! over 998 octets; empty input; binary attachments; a big stdin streamed in bounded memory.
//! Each case ends in one clear error line and its exit code (design.md §2), or a correct
//! message; never a panic.
//!
//! NUL cannot be tested through argv: execve(2) takes C strings, so no argument can hold
//! one (std's `Command` refuses to spawn). NUL reaches postie only through files and stdin,
//! which the raw-message cases cover.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::certs::{pki, BadCert};
use crate::support::fake_server::{
    data, ehlo, envelope, expect, greeting, quit, send, starttls, FakeServer, Session, Step,
};
use crate::support::postie;
use crate::support::run::{run as run_postie, Outcome};

const FROM: &str = "sender@example.test";
const TO: &str = "rcpt@example.test";
const USER: &str = "user";
const PASSWORD: &str = "s3cr3t-Pa55";
/// base64("\0user\0s3cr3t-Pa55") and base64("s3cr3t-Pa55"): the password as AUTH would
/// carry it.
const PASSWORD_FORMS: [&str; 3] = [PASSWORD, "AHVzZXIAczNjcjN0LVBhNTU=", "czNjcjN0LVBhNTU="];
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn ca() -> &'static str {
    pki().ca_pem.to_str().expect("UTF-8 path")
}

#[track_caller]
fn assert_no_panic(run: &Outcome, case: &str) {
    assert!(
        !run.stderr.contains("panicked") && run.code != Some(101) && run.code.is_some(),
        "{case}: postie panicked or was killed\n{run}"
    );
}

/// Exit in `allowed`, exactly one `postie: ` line on stderr, no panic.
#[track_caller]
fn assert_clean_failure(run: &Outcome, allowed: &[i32], case: &str) {
    assert_no_panic(run, case);
    assert!(
        run.code.is_some_and(|c| allowed.contains(&c)),
        "{case}: expected an exit in {allowed:?}\n{run}"
    );
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("postie: "),
        "{case}: expected one `postie: ...` line on stderr\n{run}"
    );
}

// ---------------------------------------------------------------------------------------
// STARTTLS attacks
// ---------------------------------------------------------------------------------------

/// One STARTTLS attack: the server's script after the greeting, and the exits allowed.
struct Attack {
    case: &'static str,
    script: Vec<Step>,
    exits: &'static [i32],
}

fn attacks() -> Vec<Attack> {
    let offer = || ehlo(&["STARTTLS", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"]);
    let refused_cert = |kind| [offer(), starttls(Step::StartTlsRejectedWith(kind))].concat();
    vec![
        // Negotiation.
        Attack {
            case: "STARTTLS stripped from EHLO (required)",
            script: [
                ehlo(&["AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"]),
                vec![Step::QuitOrClose],
            ]
            .concat(),
            exits: &[69],
        },
        Attack {
            case: "STARTTLS answered 454",
            script: [
                offer(),
                vec![
                    expect("STARTTLS"),
                    send("454 4.7.0 TLS not available due to temporary reason\r\n"),
                    Step::QuitOrClose,
                ],
            ]
            .concat(),
            exits: &[75],
        },
        Attack {
            case: "STARTTLS answered 502",
            script: [
                offer(),
                vec![
                    expect("STARTTLS"),
                    send("502 5.5.1 command not implemented\r\n"),
                    Step::QuitOrClose,
                ],
            ]
            .concat(),
            exits: &[69],
        },
        Attack {
            case: "AUTH offered only before TLS (capabilities changed across the upgrade)",
            script: [
                offer(),
                starttls(Step::StartTls),
                ehlo(&["ENHANCEDSTATUSCODES"]),
                vec![Step::QuitOrClose],
            ]
            .concat(),
            exits: &[69],
        },
        // Buffering.
        Attack {
            case: "plaintext injected after the 220, in the same write",
            script: [
                offer(),
                vec![
                    expect("STARTTLS"),
                    send("220 2.0.0 Ready to start TLS\r\n250 2.1.0 injected\r\n"),
                    Step::QuitOrClose,
                ],
            ]
            .concat(),
            exits: &[76],
        },
        Attack {
            case: "EHLO reply pipelined with the 220, before the handshake",
            script: [
                offer(),
                vec![
                    expect("STARTTLS"),
                    send(
                        "220 2.0.0 Ready to start TLS\r\n250-fake.test\r\n250 AUTH PLAIN LOGIN\r\n",
                    ),
                    Step::QuitOrClose,
                ],
            ]
            .concat(),
            exits: &[76],
        },
        Attack {
            case: "plaintext injected just after the 220, in its own write",
            script: [
                offer(),
                vec![
                    expect("STARTTLS"),
                    send("220 2.0.0 Ready to start TLS\r\n"),
                    Step::Sleep(Duration::from_millis(30)),
                    send("250 2.1.0 injected\r\n"),
                    Step::Drain,
                ],
            ]
            .concat(),
            // Seen in the buffer (76) or as garbage where the TLS handshake was due.
            exits: &[69, 76],
        },
        // Tampering.
        Attack {
            case: "server says 220 but never starts TLS",
            script: [
                offer(),
                vec![
                    expect("STARTTLS"),
                    send("220 2.0.0 Ready to start TLS\r\n"),
                    Step::Sleep(Duration::from_millis(200)),
                    send("250 2.0.0 plain text instead of TLS\r\n"),
                    Step::Drain,
                ],
            ]
            .concat(),
            exits: &[69, 76],
        },
        Attack {
            case: "certificate for the wrong name",
            script: refused_cert(BadCert::WrongName),
            exits: &[69],
        },
        Attack {
            case: "expired certificate",
            script: refused_cert(BadCert::Expired),
            exits: &[69],
        },
        Attack {
            case: "self-signed certificate",
            script: refused_cert(BadCert::SelfSigned),
            exits: &[69],
        },
    ]
}

#[test]
fn starttls_attacks_abort_before_credentials_or_mail() {
    for Attack {
        case,
        script,
        exits,
    } in attacks()
    {
        let server = FakeServer::start([vec![greeting()], script].concat());
        let mut cmd = postie();
        cmd.args(["--server", &server.addr(), "--timeout", "5"])
            .args(["--tls-ca", ca(), "--user", USER])
            .env("POSTIE_PASSWORD", PASSWORD)
            .args(["-f", FROM, "-s", "secret", "--body", "the secret body", TO]);
        let run = run_postie(cmd, None, RUN_LIMIT);
        let session = server.finish_with(&format!("case: {case}\n{run}"));
        assert_clean_failure(&run, exits, case);
        assert!(
            run.stderr.contains("TLS") || run.stderr.contains("AUTH"),
            "{case}\n{run}"
        );
        assert_never_leaked(&session, &run, case);
    }
}

/// Neither AUTH nor MAIL nor the body nor the password reached the server.
#[track_caller]
fn assert_never_leaked(session: &Session, run: &Outcome, case: &str) {
    for verb in ["AUTH", "MAIL", "RCPT", "DATA"] {
        assert!(
            !session.saw(verb),
            "{case}: the server received {verb}\n{session}\n{run}"
        );
    }
    assert!(
        session.data.is_empty(),
        "{case}: the message was sent\n{run}"
    );
    let everything = [
        session.received.join("\n").into_bytes(),
        session.drained.clone(),
    ]
    .concat();
    let text = String::from_utf8_lossy(&everything);
    for secret in PASSWORD_FORMS.iter().chain(&["the secret body"]) {
        assert!(
            !text.contains(secret),
            "{case}: {secret:?} crossed the wire\n{session}\n{run}"
        );
    }
    for secret in PASSWORD_FORMS {
        assert!(
            !run.stderr.contains(secret),
            "{case}: the password is on stderr\n{run}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------

/// A plain-text server that must accept one message from `FROM` to `rcpts`.
fn accepting(exts: &[&str], rcpts: &[&str]) -> FakeServer {
    FakeServer::start(
        [
            vec![greeting()],
            ehlo(exts),
            envelope(FROM, rcpts),
            data("250 2.0.0 queued\r\n"),
            quit(),
        ]
        .concat(),
    )
}

fn plain(server: &FakeServer) -> Command {
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--timeout",
        "10",
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

/// The header section of a message (up to the first empty line), unfolded text lines.
fn head_of(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text.split("\r\n\r\n").next().unwrap_or("").to_string()
}

#[test]
fn header_injection_through_arguments_is_refused_with_65() {
    const EVIL: [&str; 3] = [
        "\r\nBcc: evil@x.test",
        "\nBcc: evil@x.test",
        "\rBcc: evil@x.test",
    ];
    // (flag, how the value is built from the injected text)
    type Inject = fn(&str) -> String;
    let flags: &[(&str, Inject)] = &[
        ("-s", |e| format!("hello{e}")),
        ("-H", |e| format!("X-Test: a{e}")),
        ("--to", |e| format!("a@x.test{e}")),
        ("-c", |e| format!("a@x.test{e}")),
        ("-b", |e| format!("a@x.test{e}")),
        ("--from", |e| format!("Me <me@x.test>{e}")),
        ("--from", |e| format!("Me{e} <me@x.test>")),
    ];
    for (flag, value) in flags {
        for evil in EVIL {
            let case = format!("{flag} {:?}", value(evil));
            let server = FakeServer::start(vec![greeting(), Step::QuitOrClose]);
            let mut cmd = plain(&server);
            if *flag != "--from" {
                cmd.args(["-f", FROM]);
            }
            if *flag != "-s" {
                cmd.args(["-s", "subject"]);
            }
            cmd.args([*flag, value(evil).as_str()])
                .args(["--body", "x", TO]);
            let run = run_postie(cmd, None, RUN_LIMIT);
            let session = server.finish_if_connected(&format!("case: {case}\n{run}"));
            assert!(
                session.is_none(),
                "{case}: bad input reached the server\n{run}"
            );
            assert_clean_failure(&run, &[65], &case);
        }
    }
}

#[test]
fn malformed_and_over_long_addresses_are_refused_with_65() {
    let long_local = format!("{}@example.test", "a".repeat(65));
    let long_domain = format!("a@{}.test", "d".repeat(250));
    let long_path = format!(
        "{}@{}.example.test",
        "a".repeat(64),
        vec!["d".repeat(60); 4].join(".")
    );
    let bad: Vec<String> = [
        "plainly-not-an-address@",
        "@example.test",
        "a@@example.test",
        "a b@example.test",
        "<a@example.test",
        "a@example.test>",
        "a@example..test",
        "a@.example.test",
        "a@example.test.",
        "a@exa mple.test",
        "a@example.test, b@",
        "a@[127.0.0.1",
        "\u{7}a@example.test",
    ]
    .into_iter()
    .map(String::from)
    .chain([long_local, long_domain, long_path])
    .collect();
    for addr in &bad {
        for flag in ["--to", "--from"] {
            let case = format!("{flag} {addr:?}");
            let server = FakeServer::start(vec![greeting(), Step::QuitOrClose]);
            let mut cmd = plain(&server);
            if flag == "--to" {
                cmd.args(["-f", FROM, "--to", addr]);
            } else {
                cmd.args(["--from", addr, TO]);
            }
            cmd.args(["-s", "s", "--body", "x"]);
            let run = run_postie(cmd, None, RUN_LIMIT);
            let session = server.finish_if_connected(&format!("case: {case}\n{run}"));
            assert!(
                session.is_none(),
                "{case}: bad input reached the server\n{run}"
            );
            assert_clean_failure(&run, &[65], &case);
        }
    }
}

#[test]
fn eight_bit_headers_are_rfc_2047_encoded_for_a_server_without_smtputf8() {
    let server = accepting(&["8BITMIME"], &[TO]);
    let mut cmd = plain(&server);
    cmd.args([
        "-f",
        "Jörg Müller <sender@example.test>",
        "-s",
        "Grüße aus Köln",
    ])
    .args(["-H", "X-Note: naïve café", "--body", "Grüße!", TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_eq!(run.code, Some(0), "{run}");
    let message = payload(&session, &run);
    let head = head_of(&message);
    assert!(
        head.is_ascii(),
        "8-bit bytes in the header section:\n{head}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .expect("the message parses");
    assert_eq!(parsed.subject(), Some("Grüße aus Köln"), "{head}");
    let from = parsed.from().and_then(|a| a.first()).expect("a From");
    assert_eq!(from.name(), Some("Jörg Müller"), "{head}");
    assert_eq!(from.address(), Some("sender@example.test"), "{head}");
    // mail-parser leaves unknown fields undecoded; decode the value as a Subject.
    let note = parsed.header_raw("X-Note").expect("X-Note").trim();
    let as_subject = format!("Subject: {note}\r\n\r\n");
    let decoded = mail_parser::MessageParser::default()
        .parse(as_subject.as_bytes())
        .expect("a one-field message");
    assert_eq!(decoded.subject(), Some("naïve café"), "{head}");
    let body = parsed.body_text(0).expect("a text body");
    assert_eq!(body.trim_end_matches("\r\n"), "Grüße!");
}

#[test]
fn raw_message_with_8bit_headers_to_a_server_without_smtputf8() {
    // A ready message is sent unchanged (GUIDE.md "Sending mail": --message): postie does
    // not re-encode someone else's headers. Without SMTPUTF8 the server may refuse it;
    // with 8BITMIME it is announced as BODY=8BITMIME. postie must deliver it unchanged or
    // fail cleanly.
    let raw = "From: Jörg <sender@example.test>\r\nTo: rcpt@example.test\r\n\
               Subject: Grüße\r\n\r\nHallo\r\n";
    let server = FakeServer::start(
        [
            vec![greeting()],
            ehlo(&["8BITMIME"]),
            vec![
                Step::ExpectPrefix(format!("MAIL FROM:<{FROM}>")),
                send("250 2.1.0 ok\r\n"),
            ],
            vec![expect(format!("RCPT TO:<{TO}>")), send("250 2.1.5 ok\r\n")],
            data("250 2.0.0 queued\r\n"),
            quit(),
        ]
        .concat(),
    );
    let mut cmd = plain(&server);
    cmd.args(["-f", FROM, "--message", "-", TO]);
    let run = run_postie(cmd, Some(raw.as_bytes()), RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_no_panic(&run, "raw 8-bit");
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(payload(&session, &run), raw.as_bytes(), "{run}");
    let mail = &session.received[1];
    assert!(mail.ends_with(" BODY=8BITMIME"), "{mail:?}\n{run}");
}

#[test]
fn long_lines_in_a_built_message_are_re_encoded_under_998_octets() {
    let long = "x".repeat(5000);
    let server = accepting(&["8BITMIME"], &[TO]);
    let mut cmd = plain(&server);
    cmd.args(["-f", FROM, "-s", "long", "--body", &long, TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_eq!(run.code, Some(0), "{run}");
    let message = payload(&session, &run);
    for line in message.split(|&b| b == b'\n') {
        assert!(
            line.len() <= 1000,
            "a line of {} octets was sent\n{run}",
            line.len()
        );
    }
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .expect("the message parses");
    let body = parsed.body_text(0).expect("a text body");
    assert_eq!(
        body.trim_end_matches("\r\n"),
        long,
        "{head}",
        head = head_of(&message)
    );
}

#[test]
fn long_lines_in_a_raw_message_are_sent_as_they_are() {
    // Decision (GUIDE.md "Reliability"): a ready message is never rewritten beyond line
    // endings; a line over 998 octets is the author's to fix and the server's to refuse.
    // postie sends it byte for byte, so nothing is lost or silently changed.
    let raw = format!(
        "From: sender@example.test\r\nSubject: long\r\n\r\n{}\r\n.{}\r\n",
        "y".repeat(3000),
        "z".repeat(2000)
    );
    let server = accepting(&[], &[TO]);
    let mut cmd = plain(&server);
    cmd.args(["-f", FROM, "--message", "-", TO]);
    let run = run_postie(cmd, Some(raw.as_bytes()), RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_no_panic(&run, "raw long lines");
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(payload(&session, &run), raw.as_bytes());
}

#[test]
fn empty_input_is_a_clear_outcome() {
    // An empty ready message: refused as unusable data (65) before connecting.
    let server = FakeServer::start(vec![greeting(), Step::QuitOrClose]);
    let mut cmd = plain(&server);
    cmd.args(["-f", FROM, "--message", "-", TO]);
    let run = run_postie(cmd, Some(b""), RUN_LIMIT);
    let session = server.finish_if_connected(&run.to_string());
    assert!(
        session.is_none(),
        "an empty message reached the server\n{run}"
    );
    assert_clean_failure(&run, &[65], "empty --message -");
    assert!(run.stderr.contains("empty"), "{run}");

    // An empty body for a composed message is a message with headers and no text.
    let server = accepting(&[], &[TO]);
    let mut cmd = plain(&server);
    cmd.args(["-f", FROM, "-s", "nothing to say", TO]);
    let run = run_postie(cmd, Some(b""), RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_eq!(run.code, Some(0), "{run}");
    let head = head_of(&payload(&session, &run));
    assert!(head.contains("Subject: nothing to say"), "{head}");
}

#[test]
fn binary_attachment_arrives_base64_and_decodes_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("blob.bin");
    // Every byte value, NUL and CR/LF included, then a pseudo-random stretch.
    let mut blob: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..60_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        blob.push(x as u8);
    }
    std::fs::write(&path, &blob).expect("write the attachment");
    let server = accepting(&["8BITMIME"], &[TO]);
    let mut cmd = plain(&server);
    cmd.args(["-f", FROM, "-s", "binary", "--body", "see attached"])
        .args(["-a", path.to_str().expect("UTF-8 path"), TO]);
    let run = run_postie(cmd, None, RUN_LIMIT);
    let session = server.finish_with(&run.to_string());
    assert_eq!(run.code, Some(0), "{run}");
    let message = payload(&session, &run);
    assert!(message.is_ascii(), "raw binary on the wire\n{run}");
    let text = String::from_utf8_lossy(&message);
    assert!(
        text.to_ascii_lowercase()
            .contains("content-transfer-encoding: base64"),
        "{run}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .expect("the message parses");
    let attachment = parsed.attachment(0).expect("one attachment");
    assert_eq!(
        attachment.contents(),
        blob.as_slice(),
        "the attachment changed"
    );
}

// ---------------------------------------------------------------------------------------
// Big stdin, bounded memory
// ---------------------------------------------------------------------------------------

/// The peak resident set size (VmHWM, kB) of `pid`, if it is still there to ask.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_64_mb_stdin_streams_through_in_bounded_memory() {
    // 64 MiB of CRLF lines from a generator (no line starts with a dot, so the payload is
    // the input plus the end mark). The 1 GB run is the bench script's.
    const LINE: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-+=_\r\n";
    const SIZE: usize = 64 * 1024 * 1024;
    const RSS_LIMIT_KB: u64 = 48 * 1024;
    let head = b"From: sender@example.test\r\nSubject: big\r\n\r\n";
    let lines = (SIZE - head.len()) / LINE.len();
    let total = head.len() + lines * LINE.len();

    let server = FakeServer::start(
        [
            vec![greeting()],
            ehlo(&["8BITMIME"]),
            vec![
                Step::ExpectPrefix(format!("MAIL FROM:<{FROM}>")),
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
    cmd.args(["-f", FROM, "--message", "-", TO])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn postie");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(head);
        let block = LINE.repeat(1024);
        let mut left = lines;
        while left > 0 {
            let n = left.min(1024);
            if stdin.write_all(&block[..n * LINE.len()]).is_err() {
                break;
            }
            left -= n;
        }
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
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
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("postie still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let stderr = err_reader.join().unwrap_or_default();
    let session = server.finish_with(&stderr);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        session.data_sizes,
        [total as u64 + 3],
        "bytes received (the input plus \".\\r\\n\")"
    );
    assert!(peak > 0, "no RSS sample of postie");
    assert!(
        peak < RSS_LIMIT_KB,
        "postie's peak RSS was {peak} kB for a {} MiB message (limit {RSS_LIMIT_KB} kB)",
        SIZE >> 20
    );
    eprintln!(
        "64 MiB through postie in {:.2?}, peak RSS {peak} kB",
        start.elapsed()
    );
}
