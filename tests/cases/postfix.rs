//! Interop with a real Postfix (see `support::mta`): postie's exit codes, stderr and the
//! bytes Postfix actually delivers, over clear text, STARTTLS (RFC 3207) and implicit TLS
//! (RFC 8314), with AUTH PLAIN (RFC 4616), LOGIN, SCRAM-SHA-256 (RFC 7677) and CRAM-MD5
//! (RFC 2195) via Cyrus SASL.
//!
//! Each test skips itself (prints `skipping: ...`) when Postfix is not installed, unless
//! `POSTIE_REQUIRE_POSTFIX=1` (CI) turns that into a failure. Every test uses its own
//! recipient addresses, since all share one Postfix. Delivered messages come back with LF
//! line endings and Postfix's `Received:` header on top: comparisons fold CRLF to LF and
//! strip exactly those leading `Received:` headers; anything else must be byte-identical.
//! Passwords go through `--password-file`, never argv.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use crate::support::certs::pki;
use crate::support::mta::Postfix;
use crate::support::postie;
use crate::support::run::{strip_received, Outcome};

const FROM: &str = "alice@example.test";
/// Upper bound for one postie run (the 5 MB one included).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// postie's own `--timeout` (per phase), well under RUN_TIMEOUT.
const POSTIE_TIMEOUT: &str = "60";

/// Runs postie with optional stdin, bounded by RUN_TIMEOUT.
fn run(cmd: Command, stdin: Option<Vec<u8>>) -> Outcome {
    crate::support::run::run(cmd, stdin.as_deref(), RUN_TIMEOUT)
}

/// The ways postie reaches the test Postfix.
#[derive(Clone, Copy, Debug)]
enum Link {
    /// plain_port, `--tls none --allow-plaintext-auth`.
    Clear,
    /// submission_port, `--tls starttls` with the test CA.
    StartTls,
    /// smtps_port, `--tls implicit` with the test CA.
    Implicit,
}

/// postie aimed at `pf` over `link`, logged in as the test user, sender FROM.
fn postie_to(pf: &Postfix, link: Link) -> Command {
    postie_with_password_file(pf, link, &pf.password_file)
}

fn postie_with_password_file(pf: &Postfix, link: Link, password_file: &Path) -> Command {
    let mut cmd = postie();
    cmd.args(["--timeout", POSTIE_TIMEOUT]);
    let (port, tls) = match link {
        Link::Clear => (pf.plain_port, "none"),
        Link::StartTls => (pf.submission_port, "starttls"),
        Link::Implicit => (pf.smtps_port, "implicit"),
    };
    cmd.arg("--server")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--tls", tls]);
    match link {
        Link::Clear => {
            cmd.arg("--allow-plaintext-auth");
        }
        Link::StartTls | Link::Implicit => {
            cmd.arg("--tls-ca").arg(&pki().ca_pem);
        }
    }
    cmd.args(["--user", &pf.user])
        .arg("--password-file")
        .arg(password_file)
        .args(["-f", FROM]);
    cmd
}

/// A complete message that Postfix has no reason to add headers to.
fn ready_message(tag: &str, rcpt: &str, body: &str) -> String {
    format!(
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\n\
         Message-ID: <{tag}@postie.test>\n\
         From: Alice <{FROM}>\n\
         To: <{rcpt}>\n\
         Subject: postie interop {tag}\n\
         \n\
         {body}"
    )
}

fn temp_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    // Password files must be private (postie refuses one others can read).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// assert_eq for big byte strings: reports lengths and the first difference in context.
fn assert_same_bytes(what: &str, expected: &[u8], actual: &[u8]) {
    if expected == actual {
        return;
    }
    let at = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let context = |b: &[u8]| {
        let from = at.saturating_sub(60);
        String::from_utf8_lossy(&b[from..(at + 60).min(b.len())]).into_owned()
    };
    panic!(
        "{what}: delivered bytes differ from what was sent: expected {} bytes, got {}, first \
         difference at offset {at}\n--- expected around it ---\n{:?}\n--- delivered around it \
         ---\n{:?}",
        expected.len(),
        actual.len(),
        context(expected),
        context(actual)
    );
}

/// Checks that `rcpt` received exactly `sent` (line endings folded) and returns the
/// `Received:` headers Postfix added.
fn assert_delivered_exact(pf: &Postfix, what: &str, rcpt: &str, sent: &[u8]) -> Vec<String> {
    let delivered = pf.delivered(rcpt);
    let (received, rest) = strip_received(&delivered);
    assert_eq!(
        received.len(),
        1,
        "{what}: expected one Received header: {received:?}"
    );
    assert_same_bytes(what, &lf(sent), rest);
    received
}

/// The SASL mechanism Postfix logged for the message a `Received:` header names.
fn sasl_method(pf: &Postfix, received: &str) -> Option<String> {
    let id = received
        .split_whitespace()
        .skip_while(|w| *w != "id")
        .nth(1)?
        .trim_end_matches(';');
    let needle = format!("{id}: client=");
    let log = pf.log();
    let line = log.lines().find(|l| l.contains(&needle))?;
    let method = line.split("sasl_method=").nth(1)?;
    Some(method.split(',').next()?.trim().to_owned())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Sends a ready message over `link` and checks exit, silence, exact delivery, that the
/// session was authenticated (Received says ESMTP[S]A) and which SASL mechanism was used.
fn send_ready_message(link: Link, auth: Option<&str>, tag: &str, esmtp: &str) {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = format!("{tag}@example.test");
    let dir = tempfile::tempdir().expect("tempdir");
    let message = ready_message(
        tag,
        &rcpt,
        &format!("Hello over {link:?}.\r\nSecond line.\r\n"),
    );
    let file = temp_file(&dir, "message.eml", message.as_bytes());
    let mut cmd = postie_to(pf, link);
    if let Some(mech) = auth {
        cmd.args(["--auth", mech]);
    }
    cmd.arg("--message").arg(&file).arg(&rcpt);
    run(cmd, None).assert_quiet_success(tag);

    let received = assert_delivered_exact(pf, tag, &rcpt, message.as_bytes());
    assert!(
        received[0].contains(&format!(" with {esmtp} id ")),
        "{tag}: Received should say the session was {esmtp}: {received:?}"
    );
    let method = sasl_method(pf, &received[0]);
    assert!(
        method.is_some(),
        "{tag}: Postfix logged no SASL login:\n{}",
        pf.log_tail(20)
    );
    if let Some(mech) = auth {
        assert_eq!(
            method.as_deref(),
            Some(mech.to_ascii_uppercase().as_str()),
            "{tag}"
        );
    }
}

#[test]
fn cleartext_auth_when_allowed_delivers_exact() {
    send_ready_message(Link::Clear, None, "pf-clear", "ESMTPA");
}

#[test]
fn starttls_auth_plain_delivers_exact() {
    send_ready_message(
        Link::StartTls,
        Some("plain"),
        "pf-starttls-plain",
        "ESMTPSA",
    );
}

#[test]
fn starttls_auth_login_delivers_exact() {
    send_ready_message(
        Link::StartTls,
        Some("login"),
        "pf-starttls-login",
        "ESMTPSA",
    );
}

#[test]
fn implicit_tls_auth_delivers_exact() {
    send_ready_message(Link::Implicit, None, "pf-implicit", "ESMTPSA");
}

#[test]
fn wrong_password_is_exit_77_naming_the_reply() {
    let Some(pf) = Postfix::get() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = temp_file(&dir, "password", b"not-the-password");
    let rcpt = "pf-wrong-password@example.test";
    let mut cmd = postie_with_password_file(pf, Link::StartTls, &wrong);
    cmd.args(["-s", "never", "--body", "never delivered\n", rcpt]);
    let out = run(cmd, None);
    out.assert_code(77, "AUTH refused");
    assert!(
        out.stderr.contains("535") && out.stderr.contains("authentication failed"),
        "stderr should carry Postfix's 535 reply: {}",
        out.describe()
    );
    assert!(
        !out.stderr.contains("not-the-password"),
        "{}",
        out.describe()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        pf.try_delivered(rcpt).is_none(),
        "delivered despite failed AUTH"
    );
}

#[test]
fn refused_recipients_map_to_67_and_75() {
    let Some(pf) = Postfix::get() else { return };
    // (recipients, exit code, text the stderr must carry)
    let cases: &[(&[&str], i32, &[&str])] = &[
        (
            &["nosuchuser@example.test"],
            67,
            &["550", "5.1.1", "nosuchuser@example.test"],
        ),
        (
            &["tempfail@example.test"],
            75,
            &["450", "4.2.0", "tempfail@example.test"],
        ),
        // Something retryable is left: 75 wins over the permanent code.
        (
            &["nosuchuser@example.test", "tempfail@example.test"],
            75,
            &["550", "450"],
        ),
    ];
    for (rcpts, code, texts) in cases {
        let mut cmd = postie_to(pf, Link::StartTls);
        cmd.args(["-s", "refused", "--body", "nobody gets this\n"])
            .args(*rcpts);
        let out = run(cmd, None);
        out.assert_code(*code, &format!("{rcpts:?}"));
        for text in *texts {
            assert!(
                out.stderr.contains(text),
                "{rcpts:?}: stderr lacks {text:?}: {}",
                out.describe()
            );
        }
    }
}

#[test]
fn required_starttls_not_offered_is_69_before_auth_and_mail() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "pf-no-starttls@example.test";
    let mut cmd = postie();
    cmd.args(["--timeout", POSTIE_TIMEOUT])
        .arg("--server")
        .arg(format!("127.0.0.1:{}", pf.plain_port))
        .args(["--tls", "starttls", "--tls-ca"])
        .arg(&pki().ca_pem)
        .args(["--user", &pf.user])
        .arg("--password-file")
        .arg(&pf.password_file)
        .args([
            "-f",
            FROM,
            "-v",
            "-s",
            "no tls",
            "--body",
            "must not be sent\n",
            rcpt,
        ]);
    let out = run(cmd, None);
    out.assert_code(69, "STARTTLS required but not offered");
    let sent = out.sent_commands();
    assert!(
        sent.iter()
            .any(|c| c.to_ascii_uppercase().starts_with("EHLO")),
        "the -v transcript should show EHLO: {}",
        out.describe()
    );
    for forbidden in ["AUTH", "MAIL", "RCPT", "DATA", "STARTTLS"] {
        assert!(
            !sent
                .iter()
                .any(|c| c.to_ascii_uppercase().starts_with(forbidden)),
            "{forbidden} must not be sent: {}",
            out.describe()
        );
    }
    assert!(!out.stderr.contains(&pf.password), "{}", out.describe());
    std::thread::sleep(Duration::from_millis(500));
    assert!(pf.try_delivered(rcpt).is_none(), "delivered without TLS");
}

#[test]
fn verbose_transcript_never_shows_credentials() {
    let Some(pf) = Postfix::get() else { return };
    let secrets = [
        ("the password", pf.password.clone()),
        (
            "PLAIN's base64",
            b64(format!("\0{}\0{}", pf.user, pf.password).as_bytes()),
        ),
        ("LOGIN's base64 password", b64(pf.password.as_bytes())),
    ];
    for mech in ["plain", "login"] {
        let rcpt = format!("pf-verbose-{mech}@example.test");
        let mut cmd = postie_to(pf, Link::StartTls);
        cmd.args([
            "--auth",
            mech,
            "-v",
            "-s",
            "verbose",
            "--body",
            "transcript\n",
            &rcpt,
        ]);
        let out = run(cmd, None);
        out.assert_code(0, mech);
        let sent = out.sent_commands();
        let auth = format!("AUTH {}", mech.to_ascii_uppercase());
        assert!(
            sent.iter()
                .any(|c| c.to_ascii_uppercase().starts_with(&auth)),
            "{mech}: the transcript should show {auth}: {}",
            out.describe()
        );
        assert!(
            out.stderr.contains("235"),
            "{mech}: no 235 in the transcript: {}",
            out.describe()
        );
        for (name, secret) in &secrets {
            assert!(
                !out.stderr.contains(secret.as_str()) && !out.stdout.contains(secret.as_str()),
                "{mech}: {name} ({secret:?}) appears in the output: {}",
                out.describe()
            );
        }
        pf.delivered(&rcpt);
    }
}

#[test]
fn dot_lines_arrive_byte_identical() {
    let Some(pf) = Postfix::get() else { return };
    // Dot-stuffing (RFC 5321 §4.5.2) both ways: lone dots, leading dots, a dot line at the
    // very start and at the very end of the body.
    let body = ".\n..\n.leading dot\n...three dots\nmiddle line\n.\n . space first\n\
                after a lone dot\n.\r\n.\n";
    let dir = tempfile::tempdir().expect("tempdir");
    for (tag, crlf) in [("pf-dots-lf", false), ("pf-dots-crlf", true)] {
        let rcpt = format!("{tag}@example.test");
        let mut message = ready_message(tag, &rcpt, body).into_bytes();
        if crlf {
            message = lf(&message)
                .split(|&b| b == b'\n')
                .collect::<Vec<_>>()
                .join(&b"\r\n"[..]);
        }
        let file = temp_file(&dir, &format!("{tag}.eml"), &message);
        let mut cmd = postie_to(pf, Link::StartTls);
        cmd.arg("--message").arg(&file).arg(&rcpt);
        run(cmd, None).assert_quiet_success(tag);
        assert_delivered_exact(pf, tag, &rcpt, &message);
    }
}

/// A deterministic ~5 MiB body: printable lines of varying length, some starting with dots.
fn big_body() -> Vec<u8> {
    const SIZE: usize = 5 * 1024 * 1024;
    let mut body = Vec::with_capacity(SIZE + 1024);
    let mut state: u32 = 0x1234_5678;
    let mut next = || {
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut line_no = 0u32;
    while body.len() < SIZE {
        line_no += 1;
        if line_no.is_multiple_of(37) {
            body.push(b'.');
        }
        let len = next() % 200;
        for _ in 0..len {
            body.push(b' ' + (next() % 95) as u8);
        }
        body.push(b'\n');
    }
    body
}

#[test]
fn five_megabyte_message_from_stdin_arrives_identical() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "pf-big@example.test";
    let mut message = ready_message("pf-big", rcpt, "").into_bytes();
    message.extend_from_slice(&big_body());
    let mut cmd = postie_to(pf, Link::StartTls);
    cmd.args(["--message", "-", rcpt]);
    run(cmd, Some(message.clone())).assert_quiet_success("5 MB via stdin");
    assert_delivered_exact(pf, "5 MB via stdin", rcpt, &message);
}

/// The header section of a message (up to the first empty line), continuation lines
/// unfolded, as (name, value) pairs.
fn headers(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    out
}

#[test]
fn composed_message_encodes_subject_attaches_and_hides_bcc() {
    let Some(pf) = Postfix::get() else { return };
    let (to, bcc) = ("pf-compose-to@example.test", "pf-compose-bcc@example.test");
    let dir = tempfile::tempdir().expect("tempdir");
    let attachment: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    let file = temp_file(&dir, "report.bin", &attachment);
    let mut cmd = postie_to(pf, Link::StartTls);
    cmd.args(["-s", "Grüße", "--body", "Hallo Welt, viele Grüße.\n", "-a"])
        .arg(&file)
        .args(["--to", to, "-b", bcc]);
    run(cmd, None).assert_quiet_success("composed");

    let to_copy = pf.delivered(to);
    let bcc_copy = pf.delivered(bcc);
    let (_, to_rest) = strip_received(&to_copy);
    let (_, bcc_rest) = strip_received(&bcc_copy);
    assert_same_bytes("the Bcc recipient's copy", to_rest, bcc_rest);

    let hdrs = headers(to_rest);
    let names: Vec<&str> = hdrs.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !names.iter().any(|n| n.eq_ignore_ascii_case("bcc")),
        "Bcc header delivered: {names:?}"
    );
    assert!(
        !String::from_utf8_lossy(to_rest).contains(bcc),
        "the Bcc address appears in the delivered message"
    );
    let subject = hdrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no Subject header: {names:?}"));
    assert!(
        subject.is_ascii() && subject.to_ascii_lowercase().contains("=?utf-8?"),
        "Subject not RFC 2047-encoded: {subject:?}"
    );
    for name in ["From", "To", "Date", "Message-ID", "MIME-Version"] {
        assert!(
            names.iter().any(|n| n.eq_ignore_ascii_case(name)),
            "no {name} header: {names:?}"
        );
    }

    let parsed = mail_parser::MessageParser::default()
        .parse(to_rest)
        .expect("parse the delivered message");
    assert_eq!(parsed.subject(), Some("Grüße"));
    let body = parsed.body_text(0).expect("a text body");
    assert!(body.contains("Hallo Welt, viele Grüße."), "body: {body:?}");
    assert_eq!(parsed.attachment_count(), 1, "attachments");
    let part = parsed.attachment(0).expect("the attachment");
    use mail_parser::MimeHeaders as _;
    assert_eq!(part.attachment_name(), Some("report.bin"));
    assert_eq!(part.contents(), &attachment[..], "attachment bytes");
}

#[test]
fn starttls_auth_scram_sha256_delivers_exact() {
    send_ready_message(
        Link::StartTls,
        Some("scram-sha-256"),
        "pf-starttls-scram",
        "ESMTPSA",
    );
}

#[test]
fn starttls_auth_cram_md5_delivers_exact() {
    send_ready_message(
        Link::StartTls,
        Some("cram-md5"),
        "pf-starttls-cram",
        "ESMTPSA",
    );
}

/// Cyrus sends SCRAM's server-final in a 334 (answered with an empty line) before 235, and
/// refuses a wrong proof with 535: exit 77 for both challenge-response mechanisms.
#[test]
fn wrong_password_with_scram_and_cram_md5_is_exit_77() {
    let Some(pf) = Postfix::get() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = temp_file(&dir, "password", b"not-the-password");
    for mech in ["scram-sha-256", "cram-md5"] {
        let rcpt = format!("pf-wrong-{mech}@example.test");
        let mut cmd = postie_with_password_file(pf, Link::StartTls, &wrong);
        cmd.args(["--auth", mech, "-s", "never", "--body", "never\n", &rcpt]);
        let out = run(cmd, None);
        out.assert_code(77, mech);
        assert!(
            out.stderr.contains("535") && !out.stderr.contains("not-the-password"),
            "{mech}: {}",
            out.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
        assert!(pf.try_delivered(&rcpt).is_none(), "{mech}: delivered");
    }
}

/// PIPELINING and CHUNKING (Postfix offers both) on by default, then off with the
/// switches: the same exact bytes arrive either way, for a small message (one `BDAT n
/// LAST` pipelined with MAIL and RCPT) and for one of several 1 MiB chunks. The -v
/// transcript shows which path was taken: MAIL, RCPT and BDAT sent as one group before any
/// reply, or each command answered before the next.
#[test]
fn pipelining_and_chunking_deliver_the_same_exact_bytes_on_and_off() {
    let Some(pf) = Postfix::get() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut big_body = String::new();
    let mut i = 0;
    while big_body.len() < 2_600_000 {
        // Dot lines (stuffed with DATA, not with BDAT) and mixed line ends.
        big_body.push_str(&format!(".line {i}\nline {i} of a big message\r\n"));
        i += 1;
    }
    let modes: [(&str, &[&str]); 3] = [
        ("on", &[]),
        ("nochunk", &["--no-chunking"]),
        ("off", &["--no-pipelining", "--no-chunking"]),
    ];
    for (mode, flags) in modes {
        for (size, body) in [
            ("small", ".dot line\n..two dots\r\nend\n".to_string()),
            ("big", big_body.clone()),
        ] {
            let tag = format!("pf-pipe-{mode}-{size}");
            let rcpt = format!("{tag}@example.test");
            let message = ready_message(&tag, &rcpt, &body);
            let file = temp_file(&dir, &format!("{tag}.eml"), message.as_bytes());
            let mut cmd = postie_to(pf, Link::StartTls);
            cmd.args(flags)
                .arg("-v")
                .arg("--message")
                .arg(&file)
                .arg(&rcpt);
            let out = run(cmd, None);
            out.assert_code(0, &tag);
            assert_delivered_exact(pf, &tag, &rcpt, message.as_bytes());

            // The transcript in order: commands sent (">") and replies ("<").
            let events: Vec<char> = out
                .stderr
                .lines()
                .filter_map(|l| {
                    let l = l.trim_start();
                    if l.starts_with("->") || l.starts_with("~>") {
                        Some('>')
                    } else if l.starts_with("<-") || l.starts_with("<~") {
                        Some('<')
                    } else {
                        None
                    }
                })
                .collect();
            let sent = out.sent_commands();
            let mail = sent.iter().position(|c| c.starts_with("MAIL FROM"));
            let bdat = sent.iter().any(|c| c.starts_with("BDAT"));
            let data = sent.iter().any(|c| c == "DATA");
            assert!(mail.is_some(), "{tag}: {}", out.stderr);
            assert_eq!(bdat, mode == "on", "{tag}: BDAT used: {}", out.stderr);
            assert_eq!(data, mode != "on", "{tag}: DATA used: {}", out.stderr);
            // Where MAIL is among the sent lines, find it among all events, and count
            // the commands sent before the next reply.
            let mut seen = 0;
            let mut group = 0;
            for (i, e) in events.iter().enumerate() {
                if *e == '>' {
                    seen += 1;
                    if Some(seen - 1) == mail {
                        group = events[i..].iter().take_while(|e| **e == '>').count();
                        break;
                    }
                }
            }
            let want = match (mode, size) {
                // MAIL RCPT BDAT-LAST QUIT
                ("on", "small") => 4,
                // MAIL RCPT and the first two chunks (the message is a file: it can be
                // read again), the last chunk after the RCPT reply
                ("on", "big") => 4,
                // MAIL RCPT DATA
                ("nochunk", _) => 3,
                _ => 1,
            };
            assert_eq!(group, want, "{tag}: commands sent at once: {}", out.stderr);
        }
    }
}

/// RFC 6152 §3 against a real server: Postfix on `seven_bit_port` does not offer 8BITMIME,
/// so postie converts the 8-bit parts (quoted-printable text, base64 otherwise) and what
/// Postfix delivers is 7-bit and decodes to what was given.
#[test]
fn eight_bit_mail_to_postfix_without_8bitmime_arrives_7bit_and_decodes_the_same() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "seven-bit@example.test";
    let text = "Gr\u{fc}\u{df}e aus K\u{f6}ln, \u{20ac} 10\n".repeat(20);
    let mut message = format!(
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <seven-bit@postie.test>\n\
         From: Alice <{FROM}>\nTo: <{rcpt}>\nSubject: postie interop seven-bit\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"sep\"\n\n\
         --sep\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\
         {text}--sep\nContent-Type: application/octet-stream\n\n"
    )
    .into_bytes();
    let blob: Vec<u8> = (0..=255u8).filter(|b| *b != b'\r' && *b != b'\n').collect();
    message.extend_from_slice(&blob);
    message.extend_from_slice(b"\n--sep--\n");
    let mut cmd = postie();
    cmd.args(["--timeout", POSTIE_TIMEOUT, "-v"])
        .arg("--server")
        .arg(format!("127.0.0.1:{}", pf.seven_bit_port))
        .args(["--tls", "none", "-f", FROM, "--message", "-", rcpt]);
    let out = run(cmd, Some(message.clone()));
    out.assert_code(0, "8-bit mail to Postfix without 8BITMIME");
    assert!(
        out.stderr.contains(
            "=== the server does not offer 8BITMIME: converted 2 MIME parts (1 \
             quoted-printable, 1 base64)\n"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("8BITMIME\n<-"), "{}", out.stderr);
    let delivered = pf.delivered(rcpt);
    let (_, arrived) = strip_received(&delivered);
    assert!(arrived.is_ascii(), "{}", String::from_utf8_lossy(arrived));
    let parsed = mail_parser::MessageParser::new()
        .parse(arrived)
        .expect("the delivered message parses");
    // The pipe transport delivers LF lines; the text was sent with CRLF ones. Its last
    // line end belongs to the boundary that follows (RFC 2046 §5.1.1).
    assert_eq!(
        parsed
            .body_text(0)
            .map(|t| t.replace("\r\n", "\n"))
            .as_deref(),
        text.strip_suffix('\n')
    );
    let attachment = parsed.attachment(0).expect("the binary part");
    assert_eq!(attachment.contents(), &blob[..]);
}

/// `postie batch` with its window of transactions in flight, against Postfix (PIPELINING
/// and CHUNKING): the second message's only recipient is refused, which may leave its
/// transaction open (MAIL accepted, the BDAT refused for want of recipients). The guard
/// RSET in front of the third keeps it from joining that transaction: it is delivered
/// under its own sender, and so is the fourth. With `--no-chunking` the same batch goes
/// with DATA, each message's commands in the same write as the end of data before it.
#[test]
fn batch_window_to_postfix_survives_a_refused_message_in_the_middle() {
    let Some(pf) = Postfix::get() else { return };
    for (variant, extra) in [("win", &[][..]), ("dat", &["--no-chunking"][..])] {
        let dir = tempfile::tempdir().expect("tempdir");
        let senders: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(|x| format!("{variant}-{x}"))
            .collect();
        let rcpts = [
            format!("pf-{variant}-1@example.test"),
            "nosuchuser@example.test".to_string(),
            format!("pf-{variant}-3@example.test"),
            format!("pf-{variant}-4@example.test"),
        ];
        for (i, (from, rcpt)) in senders.iter().zip(&rcpts).enumerate() {
            let text = format!(
                "Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <{variant}{i}@postie.test>\n\
                 From: <{from}@example.test>\nTo: <{rcpt}>\nSubject: window {i}\n\nmessage {i}\n"
            );
            temp_file(&dir, &format!("m{i}.eml"), text.as_bytes());
        }
        let mut cmd = postie();
        cmd.args(["batch", "--timeout", POSTIE_TIMEOUT, "-v"])
            .args(extra)
            .arg("--server")
            .arg(format!("127.0.0.1:{}", pf.plain_port))
            .args(["--tls", "none", "--allow-plaintext-auth"])
            .args(["--user", &pf.user])
            .arg("--password-file")
            .arg(&pf.password_file)
            .arg(dir.path());
        let out = run(cmd, None);
        out.assert_code(67, "the second message refused");
        assert!(
            out.stderr
                .contains("m1.eml: RCPT TO <nosuchuser@example.test> refused: 550"),
            "{}",
            out.describe()
        );
        assert!(
            out.stderr
                .contains("postie: sent 3 of 4 messages, 1 failed"),
            "{}",
            out.describe()
        );
        let lines: Vec<&str> = out.stderr.lines().map(str::trim_start).collect();
        if extra.is_empty() {
            // Pipelined: the fourth message's group went out before the first was answered.
            assert!(
                out.stderr.contains(" -> BDAT") && out.stderr.matches(" -> RSET").count() >= 3,
                "{}",
                out.stderr
            );
        } else {
            // DATA: the second MAIL went before the first message's end-of-data reply.
            let second_mail = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.starts_with("-> MAIL FROM"))
                .nth(1)
                .map(|(i, _)| i);
            let first_queued = lines.iter().position(|l| l.contains("queued as"));
            assert!(
                matches!((second_mail, first_queued), (Some(m), Some(q)) if m < q),
                "{}",
                out.stderr
            );
            assert!(!out.stderr.contains(" -> BDAT"), "{}", out.stderr);
            assert!(out.stderr.contains(" -> RSET"), "{}", out.stderr);
        }
        for rcpt in [&rcpts[0], &rcpts[2], &rcpts[3]] {
            let got = String::from_utf8_lossy(&pf.delivered(rcpt)).into_owned();
            assert!(got.contains("Subject: window"), "{variant}: {got}");
        }
        let log = pf.log();
        for from in [&senders[2], &senders[3]] {
            assert!(
                log.contains(&format!("from=<{from}@example.test>")),
                "{from}'s message went under another sender:\n{}",
                pf.log_tail(40)
            );
        }
    }
}
