//! DKIM: `postie dkim keygen` makes keys whose TXT record parses; postie signs with RSA and
//! Ed25519 keys and an independent verifier (mail-auth against the local test DNS server)
//! accepts the signature; a key file readable by the group is refused (78).

use std::path::Path;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};

use crate::support::dns_server::Zone;
use crate::support::postie;
use crate::support::run::run;

const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `postie dkim keygen`; returns the TXT record's value (the quoted strings joined).
fn keygen(dir: &Path, kind: &str, selector: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(format!("{kind}.pem"));
    let mut cmd = postie();
    cmd.args([
        "dkim",
        "keygen",
        "--selector",
        selector,
        "--domain",
        "example.org",
    ])
    .args(["--type", kind, "--out"])
    .arg(&key);
    let out = run(cmd, None, LIMIT);
    out.assert_code(0, "keygen");
    let line = out.stdout.trim();
    let prefix = format!("{selector}._domainkey.example.org. IN TXT ");
    assert!(line.starts_with(&prefix), "{line}");
    let value: String = line[prefix.len()..].split('"').skip(1).step_by(2).collect();
    assert!(
        value.starts_with(&format!("v=DKIM1; k={kind}; p=")),
        "{value}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    (key, value)
}

/// The message --dry-run would send (after the envelope lines and the blank line).
fn signed_dry_run(key: &Path, selector: &str, extra: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let mut cmd = postie();
    cmd.args([
        "--dry-run",
        "--server",
        "mail.example.org",
        "--message",
        "-",
    ])
    .arg("--dkim-key")
    .arg(key)
    .args(["--dkim-selector", selector])
    .args(extra)
    .arg("b@example.net");
    let msg = b"From: A <a@example.org>\nTo: b@example.net\nSubject: dkim test\nDate: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <x@example.org>\n\nHello,\n  world  \n\n";
    let out = run(cmd, Some(msg), LIMIT);
    let body = out
        .stdout
        .split_once("\n\n")
        .map(|(_, m)| m.to_string())
        .unwrap_or_default();
    // On the wire every line ends in CRLF (wire.rs); verify what would arrive.
    let crlf = body.replace("\r\n", "\n").replace('\n', "\r\n");
    (out.code, crlf.into_bytes(), out.stderr)
}

fn verify(dns: std::net::SocketAddr, message: &[u8]) -> Vec<DkimResult> {
    let mut ns = NameServerConfig::udp_and_tcp(dns.ip());
    for conn in &mut ns.connections {
        conn.port = dns.port();
    }
    let auth = MessageAuthenticator::new(
        ResolverConfig::from_name_servers(vec![ns]),
        ResolverOpts::default(),
    )
    .unwrap();
    let parsed = AuthenticatedMessage::parse(message).expect("parsable message");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(auth.verify_dkim(&parsed))
        .into_iter()
        .map(|o| o.result().clone())
        .collect()
}

#[test]
fn rsa_and_ed25519_signatures_verify_with_mail_auth() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, sel) in [("rsa", "s-rsa"), ("ed25519", "s-ed")] {
        let (key, txt) = keygen(dir.path(), kind, sel);
        let dns = Zone::new()
            .txt(&format!("{sel}._domainkey.example.org"), &txt)
            .start();
        let (code, signed, stderr) = signed_dry_run(&key, sel, &[]);
        assert_eq!(code, Some(0), "{kind}: {stderr}");
        assert!(signed.starts_with(b"DKIM-Signature: "), "{kind}");
        assert_eq!(
            verify(dns.addr(), &signed),
            vec![DkimResult::Pass],
            "{kind}"
        );
        // Tampering breaks it.
        let text = String::from_utf8(signed).unwrap().replace("Hello", "Jello");
        let results = verify(dns.addr(), text.as_bytes());
        // mail-auth reports a body hash mismatch as neutral (RFC 6376 §6.3): never pass.
        assert!(
            matches!(
                results.as_slice(),
                [DkimResult::Fail(_) | DkimResult::Neutral(_)]
            ),
            "{kind}: {results:?}"
        );
    }
}

#[test]
fn a_group_readable_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "ed25519", "s");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, stderr) = signed_dry_run(&key, "s", &[]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("must not be readable by others"),
        "{stderr}"
    );
}

/// Verify `message` with Python's dkimpy (an independent implementation), answering its
/// one DNS question with `txt`. None when dkimpy is not installed (unless CI requires it).
fn dkimpy_verifies(message: &[u8], txt: &str) -> Option<bool> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import dkim, nacl"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        if std::env::var_os("POSTIE_REQUIRE_DKIMPY").is_some() {
            panic!("dkimpy (and pynacl) must be installed: python3 -m pip install dkimpy pynacl");
        }
        crate::support::skip("dkimpy is not installed (python3 -m pip install dkimpy pynacl)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.eml");
    std::fs::write(&path, message).unwrap();
    let script = "import dkim, sys\n\
                  msg = open(sys.argv[1], 'rb').read()\n\
                  txt = sys.argv[2].encode()\n\
                  ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: txt)\n\
                  print('PASS' if ok else 'FAIL')\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .arg(txt)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dkimpy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout.trim() == "PASS")
}

#[test]
fn rsa_and_ed25519_signatures_verify_with_dkimpy() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, sel) in [("rsa", "p-rsa"), ("ed25519", "p-ed")] {
        let (key, txt) = keygen(dir.path(), kind, sel);
        let (code, signed, stderr) = signed_dry_run(&key, sel, &[]);
        assert_eq!(code, Some(0), "{kind}: {stderr}");
        let Some(pass) = dkimpy_verifies(&signed, &txt) else {
            return;
        };
        assert!(pass, "{kind}: dkimpy does not verify postie's signature");
        let tampered = String::from_utf8(signed).unwrap().replace("Hello", "Jello");
        assert_eq!(
            dkimpy_verifies(tampered.as_bytes(), &txt),
            Some(false),
            "{kind}: dkimpy passed a tampered message"
        );
    }
}

#[test]
fn a_signed_message_still_verifies_after_transit_through_postfix() {
    use crate::support::mta::Postfix;
    use crate::support::run::strip_received;
    let Some(pf) = Postfix::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (key, txt) = keygen(dir.path(), "rsa", "transit");
    let rcpt = "dkim-transit@example.test";
    let msg = format!(
        "From: A <a@example.org>\nTo: {rcpt}\nSubject: dkim through postfix\n\
         Date: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <transit@example.org>\n\n\
         line one\n.leading dot\n\nlast line\n"
    );
    let mut cmd = postie();
    cmd.args([
        "--server",
        &format!("127.0.0.1:{}", pf.plain_port),
        "--tls",
        "none",
    ])
    .args(["--timeout", "60", "--message", "-"])
    .arg("--dkim-key")
    .arg(&key)
    .args(["--dkim-selector", "transit", rcpt]);
    let out = run(cmd, Some(msg.as_bytes()), LIMIT);
    out.assert_code(0, "signed send through Postfix");
    let delivered = pf.delivered(rcpt);
    let (_, rest) = strip_received(&delivered);
    // The pipe transport delivers LF lines; the signature was made over CRLF ones.
    let text = String::from_utf8_lossy(rest)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let dns = Zone::new()
        .txt("transit._domainkey.example.org", &txt)
        .start();
    assert_eq!(
        verify(dns.addr(), text.as_bytes()),
        vec![DkimResult::Pass],
        "{text}"
    );
    if let Some(pass) = dkimpy_verifies(text.as_bytes(), &txt) {
        assert!(pass, "dkimpy does not verify the delivered message");
    }
}

/// A message postie signs and then converts to 7-bit for a server without 8BITMIME
/// (Postfix with `smtpd_discard_ehlo_keywords = 8bitmime`) is signed again over the
/// converted bytes: mail-auth and dkimpy both verify what Postfix delivered.
#[test]
fn a_signed_8bit_message_converted_for_a_server_without_8bitmime_verifies() {
    use crate::support::mta::Postfix;
    use crate::support::run::strip_received;
    let Some(pf) = Postfix::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rcpt = "dkim-seven-bit@example.test";
    let msg = format!(
        "From: A <a@example.org>\nTo: {rcpt}\nSubject: dkim and 7-bit\n\
         Date: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <seven@example.org>\n\n\
         Caf\u{e9} cr\u{e8}me, {}\n.leading dot\n",
        "\u{e9}".repeat(100)
    );
    for (kind, sel) in [("rsa", "seven-rsa"), ("ed25519", "seven-ed")] {
        let (key, txt) = keygen(dir.path(), kind, sel);
        let rcpt = format!("{kind}-{rcpt}");
        let mut cmd = postie();
        cmd.args([
            "--server",
            &format!("127.0.0.1:{}", pf.seven_bit_port),
            "--tls",
            "none",
            "-v",
        ])
        .args(["--timeout", "60", "--message", "-"])
        .arg("--dkim-key")
        .arg(&key)
        .args(["--dkim-selector", sel, &rcpt]);
        let out = run(cmd, Some(msg.as_bytes()), LIMIT);
        out.assert_code(0, "signed 8-bit send to a server without 8BITMIME");
        assert!(
            out.stderr.contains(
                "=== the server does not offer 8BITMIME: converted 1 MIME part to \
                 quoted-printable and DKIM-signed the converted message again\n"
            ),
            "{}",
            out.stderr
        );
        let delivered = pf.delivered(&rcpt);
        let (_, rest) = strip_received(&delivered);
        assert!(rest.is_ascii(), "{kind}");
        let text = String::from_utf8_lossy(rest)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n");
        assert_eq!(text.matches("DKIM-Signature:").count(), 1, "{text}");
        let dns = Zone::new()
            .txt(&format!("{sel}._domainkey.example.org"), &txt)
            .start();
        assert_eq!(
            verify(dns.addr(), text.as_bytes()),
            vec![DkimResult::Pass],
            "{kind}: {text}"
        );
        if let Some(pass) = dkimpy_verifies(text.as_bytes(), &txt) {
            assert!(pass, "{kind}: dkimpy does not verify the converted message");
        }
    }
}

/// A message postie signed and spooled (`--queue`, the first attempt failing to connect)
/// is, at `queue flush` (a `queue run` of every entry, due or not) to a server without 8BITMIME, converted to 7-bit and signed again
/// with the options recorded in its entry — no `--dkim-*` at the run, which starts in
/// another directory than the relative key path given at queueing — and the signature the
/// server received verifies with mail-auth and dkimpy.
#[test]
fn a_queued_signed_8bit_message_is_converted_and_signed_again_at_queue_run() {
    use crate::support::fake_server::{data, ehlo, envelope, greeting, quit, FakeServer};
    let dir = tempfile::tempdir().unwrap();
    let (_key, txt) = keygen(dir.path(), "ed25519", "queued");
    let queue_dir = dir.path().join("queue");
    let from = "a@example.org";
    let rcpt = "b@example.net";
    let msg = format!(
        "From: A <{from}>\nTo: {rcpt}\nSubject: queued, signed, 8-bit\n\
         Date: Thu, 1 Jan 2026 00:00:00 +0000\nMessage-ID: <queued@example.org>\n\n\
         Caf\u{e9} cr\u{e8}me\n.leading dot\n"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    let mut cmd = postie();
    cmd.current_dir(dir.path())
        .args(["--queue", "--queue-dir"])
        .arg(&queue_dir)
        .args(["--server", &nobody, "--tls", "none", "--timeout", "10"])
        .args(["-f", from, "--message", "-"])
        .args([
            "--dkim-key",
            "ed25519.pem",
            "--dkim-selector",
            "queued",
            rcpt,
        ]);
    let out = run(cmd, Some(msg.as_bytes()), LIMIT);
    out.assert_code(0, "queued");
    let id = out
        .stderr
        .strip_prefix("postie: queued as ")
        .and_then(|rest| rest.split_once(':'))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("not queued: {}", out.stderr));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(queue_dir.join("meta").join(&id)).unwrap()).unwrap();
    assert_eq!(
        meta["dkim"],
        serde_json::json!({
            "key": dir.path().join("ed25519.pem").to_str().unwrap(),
            "selector": "queued",
            "domain": null,
            "expire": null,
        })
    );

    let server = FakeServer::start(
        [
            vec![greeting()],
            ehlo(&[]),
            envelope(from, &[rcpt]),
            data("250 2.0.0 Ok: queued as FAKE1\r\n"),
            quit(),
        ]
        .concat(),
    );
    let mut cmd = postie();
    cmd.args(["queue", "flush", "--queue-dir"])
        .arg(&queue_dir)
        .args([
            "--server",
            &server.addr(),
            "--tls",
            "none",
            "--timeout",
            "10",
        ]);
    let out = run(cmd, None, LIMIT);
    let session = server.finish_with(&out.to_string());
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out}");
    assert!(std::fs::read_dir(queue_dir.join("meta"))
        .unwrap()
        .next()
        .is_none());
    let payload = session.data[0]
        .strip_suffix(b".\r\n")
        .expect("end-of-data line");
    let mut received = Vec::new();
    for line in payload.split_inclusive(|&b| b == b'\n') {
        received.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    let text = String::from_utf8(received).expect("7-bit");
    assert!(text.is_ascii(), "{text}");
    assert_eq!(text.matches("DKIM-Signature:").count(), 1, "{text}");
    assert!(
        text.ends_with(
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n\
             Caf=C3=A9 cr=C3=A8me\r\n.leading dot\r\n"
        ),
        "{text}"
    );
    let dns = Zone::new()
        .txt("queued._domainkey.example.org", &txt)
        .start();
    assert_eq!(
        verify(dns.addr(), text.as_bytes()),
        vec![DkimResult::Pass],
        "{text}"
    );
    if let Some(pass) = dkimpy_verifies(text.as_bytes(), &txt) {
        assert!(
            pass,
            "dkimpy does not verify the message sent from the queue"
        );
    }
}

/// A composed message whose attachment stays in its file (over 1 MiB) is signed as the
/// file streams by (mail-auth's streaming signer) and sent in a second read of the file:
/// what arrives verifies with mail-auth and with dkimpy.
#[test]
fn a_message_with_a_large_attachment_is_signed_as_it_streams_and_verifies() {
    use crate::support::fake_server::{data, ehlo, envelope, greeting, quit, FakeServer};
    let dir = tempfile::tempdir().unwrap();
    let attachment = dir.path().join("big.bin");
    let bytes: Vec<u8> = (0..(2u32 << 20) + 7)
        .map(|i| (i * 7 + i / 4093) as u8)
        .collect();
    std::fs::write(&attachment, &bytes).unwrap();
    for (kind, sel) in [("rsa", "big-rsa"), ("ed25519", "big-ed")] {
        let (key, txt) = keygen(dir.path(), kind, sel);
        let server = FakeServer::start(
            [
                vec![greeting()],
                ehlo(&[]),
                envelope("a@example.org", &["b@example.net"]),
                data("250 2.0.0 queued\r\n"),
                quit(),
            ]
            .concat(),
        );
        let mut cmd = postie();
        cmd.args([
            "--server",
            &server.addr(),
            "--tls",
            "none",
            "-f",
            "a@example.org",
        ])
        .args([
            "-s",
            "signed, with a big attachment",
            "--body",
            "see attached\n",
        ])
        .arg("-a")
        .arg(&attachment)
        .arg("--dkim-key")
        .arg(&key)
        .args(["--dkim-selector", sel, "b@example.net"]);
        let out = run(cmd, None, LIMIT);
        let session = server.finish_with(&out.to_string());
        out.assert_quiet_success(kind);
        let raw = session.data[0].strip_suffix(b".\r\n").expect("end of data");
        let mut message = Vec::with_capacity(raw.len());
        for line in raw.split_inclusive(|&b| b == b'\n') {
            message.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        assert!(message.starts_with(b"DKIM-Signature: "), "{kind}");
        let parsed = mail_parser::MessageParser::default()
            .parse(&message)
            .unwrap();
        assert_eq!(parsed.attachment(0).map(|a| a.contents()), Some(&bytes[..]));
        let dns = Zone::new()
            .txt(&format!("{sel}._domainkey.example.org"), &txt)
            .start();
        assert_eq!(
            verify(dns.addr(), &message),
            vec![DkimResult::Pass],
            "{kind}"
        );
        if let Some(pass) = dkimpy_verifies(&message, &txt) {
            assert!(
                pass,
                "{kind}: dkimpy does not verify the streamed, signed message"
            );
        }
    }
}
