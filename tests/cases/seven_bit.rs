//! 8-bit mail to a server without 8BITMIME (RFC 6152 §3, issue 13): the built postie
//! converts the 8-bit MIME parts to 7-bit (quoted-printable for text, base64 otherwise) and
//! sends, as Postfix's SMTP client does; what cannot be converted (8-bit headers without
//! SMTPUTF8, someone else's DKIM signature) is refused with 65 before MAIL.
//!
//! Owns: the scripted-server side (whole `-v` transcripts and the exact DATA payloads) for
//! submission, the sendmail persona and `postie batch`. The real-MTA side is in
//! `postfix.rs` (a Postfix listener with `smtpd_discard_ehlo_keywords = 8bitmime`) and in
//! `batch.rs` (smtp-sink `-8`); the DKIM re-signing is verified in `dkim.rs`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mail_parser::MessageParser;

use crate::support::fake_server::{
    data, ehlo, envelope, expect, greeting, quit, send, FakeServer, Step,
};
use crate::support::postie;
use crate::support::run::Outcome;

const FROM: &str = "sender@example.test";
const TO: &str = "a@example.test";
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Cron's kind of message: UTF-8 text, no MIME headers, LF line ends.
const CRON: &str =
    "From: cron@example.test\nTo: a@example.test\nSubject: report\n\nCaf\u{e9} cr\u{e8}me = 1\n";

/// What [`CRON`] becomes on the wire (without the end-of-data line).
const CRON_7BIT: &str = "From: cron@example.test\r\nTo: a@example.test\r\nSubject: report\r\n\
                         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                         Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                         Caf=C3=A9 cr=C3=A8me =3D 1\r\n";

fn run(cmd: Command, stdin: Option<&[u8]>) -> Outcome {
    crate::support::run::run(cmd, stdin, RUN_LIMIT)
}

/// postie sending the ready message in `path` to the fake server, in plain text.
fn send_file(server: &FakeServer, path: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--tls",
        "none",
        "--timeout",
        "10",
    ])
    .args(["-f", FROM])
    .args(extra)
    .arg("--message")
    .arg(path)
    .arg(TO);
    cmd
}

/// `bytes` in a temporary file (the directory must outlive the run).
fn message_file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("message.eml");
    std::fs::write(&path, bytes).expect("write message");
    (dir, path)
}

/// A DATA payload as the message it carries: dot-stuffing undone, the end-of-data line
/// dropped.
fn unstuffed(payload: &[u8]) -> Vec<u8> {
    let body = payload
        .strip_suffix(b".\r\n")
        .expect("payload ends with the end-of-data line");
    let mut out = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// Every line of `bytes`, without CRLF, is at most `max` octets long.
fn assert_lines_at_most(bytes: &[u8], max: usize) {
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            line.len() <= max,
            "a line of {} octets: {:?}",
            line.len(),
            String::from_utf8_lossy(line)
        );
    }
}

/// Lines (with a trailing newline each) from a block written one line per `&str`.
fn block(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The server side of one lockstep delivery to a server that offers no extension at all.
fn no_extensions_delivery() -> Vec<crate::support::fake_server::Step> {
    [
        vec![greeting()],
        ehlo(&[]),
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as FAKE1\r\n"),
        quit(),
    ]
    .concat()
}

/// The same with SIZE offered (and no 8BITMIME), MAIL FROM declaring `size`.
fn sized_delivery(size: usize) -> Vec<crate::support::fake_server::Step> {
    [
        vec![greeting()],
        ehlo(&["SIZE 10000000"]),
        vec![
            expect(format!("MAIL FROM:<{FROM}> SIZE={size}")),
            send("250 2.1.0 sender ok\r\n"),
            expect(format!("RCPT TO:<{TO}>")),
            send("250 2.1.5 recipient ok\r\n"),
        ],
        data("250 2.0.0 Ok: queued as FAKE1\r\n"),
        quit(),
    ]
    .concat()
}

#[test]
fn cron_output_is_converted_to_quoted_printable_for_a_server_without_8bitmime() {
    // SIZE counts the message's own bytes: its three header lines end in LF, one byte
    // shorter each than on the wire.
    let size = CRON_7BIT.len() - 3;
    let server = FakeServer::start(sized_delivery(size));
    let (_dir, path) = message_file(CRON.as_bytes());
    let out = run(send_file(&server, &path, &["-v"]), None);
    let session = server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let addr = server_addr(&session, &out);
    let expected = block(&[
        &format!("=== Trying {addr}..."),
        &format!("=== Connected to {addr}"),
        "<-  220 fake.test ESMTP postie-fake   [2xx positive completion]",
        " -> EHLO postie.test",
        "<-  250-fake.test greets postie.test",
        "<-  250 SIZE 10000000   [2xx positive completion]",
        "=== the server does not offer 8BITMIME: converted 1 MIME part to quoted-printable",
        &format!(" -> MAIL FROM:<{FROM}> SIZE={size}"),
        "<-  250 2.1.0 sender ok   [2xx positive completion; 2.1.0 other address status]",
        &format!(" -> RCPT TO:<{TO}>"),
        "<-  250 2.1.5 recipient ok   [2xx positive completion; 2.1.5 destination address valid]",
        " -> DATA",
        "<-  354 end data with <CR><LF>.<CR><LF>   [3xx positive intermediate]",
        "<-  250 2.0.0 Ok: queued as FAKE1   [2xx positive completion; 2.0.0 other undefined status]",
        " -> QUIT",
        "<-  221 2.0.0 fake.test closing   [2xx positive completion; 2.0.0 other undefined status]",
    ]);
    assert_eq!(out.stderr, expected);
    assert_eq!(
        String::from_utf8_lossy(&session.data[0]),
        format!("{CRON_7BIT}.\r\n")
    );
}

/// The fake server's address as the transcript shows it.
fn server_addr(_session: &crate::support::fake_server::Session, out: &Outcome) -> String {
    out.stderr
        .lines()
        .find_map(|l| l.strip_prefix("=== Connected to "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn multipart_8bit_parts_are_encoded_and_the_rest_kept_byte_for_byte() {
    let message: &[u8] = b"From: php@example.test\nTo: a@example.test\nSubject: invoice\n\
        MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"=_b\"\n\n\
        This is a MIME message.\n\
        --=_b\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\
        <p>Gr\xc3\xbc\xc3\x9fe, \xe2\x82\xac 10</p>\n\
        --=_b\nContent-Type: application/pdf; name=\"a.pdf\"\nContent-Transfer-Encoding: base64\n\n\
        JVBERi0xLjQK\n\
        --=_b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: 8bit\n\n\
        \x00\x01\xfe\xff raw\n\
        --=_b--\n";
    let server = FakeServer::start(no_extensions_delivery());
    let (_dir, path) = message_file(message);
    let out = run(send_file(&server, &path, &["-v"]), None);
    let session = server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "=== the server does not offer 8BITMIME: converted 2 MIME parts (1 \
             quoted-printable, 1 base64)\n"
        ),
        "{}",
        out.stderr
    );
    let sent = unstuffed(&session.data[0]);
    assert!(sent.is_ascii());
    assert_lines_at_most(&sent, 76);
    let text = String::from_utf8(sent.clone()).unwrap();
    // Boundaries, preamble and the already encoded part are as they were.
    for kept in [
        "This is a MIME message.\r\n--=_b\r\n",
        "--=_b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--=_b\r\n",
        "--=_b--\r\n",
    ] {
        assert!(text.contains(kept), "{kept:?} missing:\n{text}");
    }
    assert!(
        text.contains(
            "Content-Type: text/html; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n\
             <p>Gr=C3=BC=C3=9Fe, =E2=82=AC 10</p>\r\n--=_b"
        ),
        "{text}"
    );
    assert!(!text.contains("8bit"), "{text}");
    // Decoded by an independent reader, every part is what was given.
    let parsed = MessageParser::new().parse(&sent[..]).expect("parses");
    assert_eq!(
        parsed.body_html(0).as_deref(),
        Some("<p>Gr\u{fc}\u{df}e, \u{20ac} 10</p>")
    );
    let attachments: Vec<&[u8]> = parsed.attachments().map(|a| a.contents()).collect();
    assert_eq!(
        attachments,
        [&b"%PDF-1.4\n"[..], &b"\x00\x01\xfe\xff raw"[..]]
    );
}

#[test]
fn a_streamed_message_with_8bit_past_the_read_ahead_is_converted() {
    // From stdin, no size known; the 8-bit byte comes after the first 200 kB.
    let mut message = b"From: s@example.test\nSubject: big\n\n".to_vec();
    for i in 0..4000 {
        message.extend_from_slice(format!("line {i:05} {}\n", "x".repeat(40)).as_bytes());
    }
    message.extend_from_slice("caf\u{e9}\n".as_bytes());
    let server = FakeServer::start(no_extensions_delivery());
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--tls",
        "none",
        "--timeout",
        "10",
    ])
    .args(["-f", FROM, "-v", "--message", "-", TO]);
    let out = run(cmd, Some(&message));
    let session = server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let sent = unstuffed(&session.data[0]);
    assert!(sent.is_ascii());
    let parsed = MessageParser::new().parse(&sent[..]).expect("parses");
    let body = String::from_utf8_lossy(&message[35..]).replace('\n', "\r\n");
    assert_eq!(parsed.body_text(0).as_deref(), Some(body.as_str()));
    assert!(
        out.stderr
            .contains("=== the server does not offer 8BITMIME: converted 1 MIME part"),
        "{}",
        out.stderr
    );
}

#[test]
fn what_cannot_be_converted_is_refused_with_65_before_mail() {
    let cases: &[(&[u8], &str)] = &[
        (
            "From: s@example.test\nSubject: Gr\u{fc}\u{df}e\n\nbody \u{e9}\n".as_bytes(),
            "postie: the message has 8-bit data and the server does not offer 8BITMIME, but \
             it cannot be converted to 7-bit: its header has 8-bit bytes (that needs a server \
             offering SMTPUTF8 and 8BITMIME)\n",
        ),
        (
            "DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=s; h=from; bh=AAAA; b=AAAA\n\
             From: s@example.test\nSubject: signed\n\nbody \u{e9}\n"
                .as_bytes(),
            "postie: the message has 8-bit data and the server does not offer 8BITMIME, but \
             it carries a DKIM-Signature that converting it to 7-bit would break: send it \
             through a server that offers 8BITMIME, or have it signed after encoding it 7-bit\n",
        ),
    ];
    for (message, line) in cases {
        let server = FakeServer::start([vec![greeting()], ehlo(&[]), quit()].concat());
        let (_dir, path) = message_file(message);
        let out = run(send_file(&server, &path, &[]), None);
        server.finish_with(&out.stderr);
        out.assert_code(65, "not convertible");
        assert_eq!(out.stderr, *line);
    }
}

#[test]
fn the_sendmail_persona_converts_cron_mail_for_a_server_without_8bitmime() {
    let inst = super::sendmail::Install::new();
    let server = FakeServer::start(no_extensions_delivery());
    let port = server.addr().rsplit_once(':').map(|(_, p)| p.to_string());
    inst.write(
        "etc/postie.toml",
        &format!(
            "[defaults]\nserver = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"{FROM}\"\n",
            port.unwrap_or_default()
        ),
        0o644,
    );
    let mut cmd = inst.command("sendmail");
    cmd.args(["-i", "-t"]);
    let out = run(cmd, Some(CRON.as_bytes()));
    let session = server.finish_with(&out.stderr);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""));
    let sent = String::from_utf8(unstuffed(&session.data[0])).unwrap();
    // The sendmail persona adds Date and Message-ID; the body is converted all the same.
    assert!(
        sent.ends_with(
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n\
             Caf=C3=A9 cr=C3=A8me =3D 1\r\n"
        ),
        "{sent}"
    );
}

#[test]
fn batch_converts_each_8bit_message_for_a_server_without_8bitmime() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("m1.eml"), CRON).unwrap();
    std::fs::write(
        dir.path().join("m2.eml"),
        "From: s@example.test\nTo: a@example.test\nSubject: ascii\n\nplain\n",
    )
    .unwrap();
    let script = [
        vec![greeting()],
        ehlo(&[]),
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as FAKE1\r\n"),
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as FAKE2\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie();
    cmd.args(["batch", "--server", &server.addr(), "--tls", "none"])
        .args(["--timeout", "10", "-f", FROM, "-v"])
        .arg(dir.path());
    let out = run(cmd, None);
    let session = server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("=== the server does not offer 8BITMIME: converted")
            .count(),
        1,
        "only the 8-bit message is converted: {}",
        out.stderr
    );
    // batch adds Date and Message-ID (fixed in test mode) to a ready message without them.
    let added = "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <postie-test@postie.test>\r\n";
    assert_eq!(
        String::from_utf8_lossy(&session.data[0]),
        CRON_7BIT.replace("MIME-Version", &format!("{added}MIME-Version")) + ".\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&session.data[1]),
        format!(
            "From: s@example.test\r\nTo: a@example.test\r\nSubject: ascii\r\n{added}\r\n\
             plain\r\n.\r\n"
        )
    );
}

#[test]
fn quit_after_data_makes_the_same_8bit_decision_as_a_real_send() {
    // Convertible: the rehearsal converts as a send would, declares the converted size and
    // goes as far as DATA's 354, then closes (nothing delivered).
    let size = CRON_7BIT.len() - 3;
    let server = FakeServer::start(
        [
            vec![greeting()],
            ehlo(&["SIZE 10000000"]),
            vec![
                expect(format!("MAIL FROM:<{FROM}> SIZE={size}")),
                send("250 2.1.0 sender ok\r\n"),
                expect(format!("RCPT TO:<{TO}>")),
                send("250 2.1.5 recipient ok\r\n"),
                expect("DATA"),
                send("354 end data with <CR><LF>.<CR><LF>\r\n"),
                Step::ExpectClose,
            ],
        ]
        .concat(),
    );
    let (_dir, path) = message_file(CRON.as_bytes());
    let out = run(
        send_file(&server, &path, &["-v", "--quit-after", "data"]),
        None,
    );
    let session = server.finish_with(&out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(session.data.is_empty());
    let addr = server_addr(&session, &out);
    let expected = block(&[
        &format!("=== Trying {addr}..."),
        &format!("=== Connected to {addr}"),
        "<-  220 fake.test ESMTP postie-fake   [2xx positive completion]",
        " -> EHLO postie.test",
        "<-  250-fake.test greets postie.test",
        "<-  250 SIZE 10000000   [2xx positive completion]",
        "=== the server does not offer 8BITMIME: converted 1 MIME part to quoted-printable",
        &format!(" -> MAIL FROM:<{FROM}> SIZE={size}"),
        "<-  250 2.1.0 sender ok   [2xx positive completion; 2.1.0 other address status]",
        &format!(" -> RCPT TO:<{TO}>"),
        "<-  250 2.1.5 recipient ok   [2xx positive completion; 2.1.5 destination address valid]",
        " -> DATA",
        "<-  354 end data with <CR><LF>.<CR><LF>   [3xx positive intermediate]",
        "=== --quit-after data: closing without sending the message or the end-of-data mark \
         (nothing is delivered)",
        "=== Closing the connection",
    ]);
    assert_eq!(out.stderr, expected);

    // Not convertible (8-bit header, no SMTPUTF8): 65 before MAIL, as a send would.
    let server = FakeServer::start([vec![greeting()], ehlo(&[]), quit()].concat());
    let (_dir, path) =
        message_file("From: s@example.test\nSubject: Gr\u{fc}\u{df}e\n\nbody \u{e9}\n".as_bytes());
    let out = run(send_file(&server, &path, &["--quit-after", "data"]), None);
    server.finish_with(&out.stderr);
    out.assert_code(65, "not convertible");
    assert_eq!(
        out.stderr,
        "postie: the message has 8-bit data and the server does not offer 8BITMIME, but it \
         cannot be converted to 7-bit: its header has 8-bit bytes (that needs a server \
         offering SMTPUTF8 and 8BITMIME)\n"
    );
}
