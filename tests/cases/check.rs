//! `postie check` end to end: the built binary lints a corpus of small messages, each
//! written to trigger exactly one lint (and a clean one that passes), and asks the test DNS
//! server (`support::dns_server`, never real DNS) for SPF, DKIM and DMARC answers.

use std::time::Duration;

use base64::Engine;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;

use crate::support::dns_server::{DnsServer, Zone};
use crate::support::postie;
use crate::support::run::{run, Outcome};

const LIMIT: Duration = Duration::from_secs(60);

const CLEAN: &str = "From: Alice <alice@example.test>\r\n\
To: bob@example.test\r\n\
Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Message-ID: <1@example.test>\r\n\
Subject: hello\r\n\
\r\n\
Hi Bob.\r\n";

/// `postie check ARGS` with `message` in a file (named as the first argument).
fn check(message: &[u8], args: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, message).unwrap();
    let mut cmd = postie();
    cmd.arg("check").arg(&path).args(args);
    run(cmd, None, LIMIT)
}

/// The codes of the error and warning lines.
fn problems(out: &Outcome) -> Vec<String> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("error: ") || l.starts_with("warning: "))
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect()
}

#[test]
fn each_message_of_the_corpus_triggers_exactly_its_lint() {
    let long_line = format!("{CLEAN}{}\r\n", "y".repeat(999));
    let corpus: Vec<(&str, String, &[&str], &str, i32)> = vec![
        ("clean", CLEAN.to_string(), &[], "", 0),
        (
            "missing Date",
            CLEAN.replace("Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n", ""),
            &[],
            "missing-date",
            65,
        ),
        ("999-octet line", long_line, &[], "line-too-long", 65),
        (
            "8-bit Subject",
            CLEAN.replace("Subject: hello", "Subject: h\u{e9}llo"),
            &[],
            "header-8bit",
            0,
        ),
        (
            "bare LF in a CRLF message",
            CLEAN.replace("Hi Bob.\r\n", "Hi Bob.\nBye.\r\n"),
            &[],
            "bare-lf",
            65,
        ),
        (
            "From/envelope mismatch",
            CLEAN.to_string(),
            &["-f", "bounces@elsewhere.test"],
            "envelope-mismatch",
            0,
        ),
        (
            "duplicate From",
            CLEAN.replace("To:", "From: mallory@example.test\r\nTo:"),
            &[],
            "duplicate-header",
            65,
        ),
        (
            "Bcc",
            CLEAN.replace("To:", "Bcc: carol@example.test\r\nTo:"),
            &[],
            "bcc-present",
            0,
        ),
    ];
    for (what, message, extra, code, exit) in corpus {
        let mut args = vec!["--no-dns"];
        args.extend_from_slice(extra);
        let out = check(message.as_bytes(), &args);
        out.assert_code(exit, what);
        let want: Vec<String> = if code.is_empty() {
            vec![]
        } else {
            vec![code.to_string()]
        };
        assert_eq!(problems(&out), want, "{what}: {}", out.describe());
        if code.is_empty() {
            assert!(out.stdout.starts_with("ok: "), "{what}: {}", out.describe());
        }
    }
}

#[test]
fn json_lists_findings_and_usage_errors_exit_64() {
    let out = check(
        CLEAN
            .replace("Message-ID: <1@example.test>\r\n", "")
            .as_bytes(),
        &["--no-dns", "--json"],
    );
    out.assert_code(0, "json");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["level"], "warning");
    assert_eq!(v["findings"][0]["code"], "missing-message-id");
    assert_eq!(v["warnings"], 1);
    assert_eq!(v["errors"], 0);
    assert!(v["dns"].is_null());

    let out = check(CLEAN.as_bytes(), &["--no-such-flag"]);
    out.assert_code(64, "unknown flag");

    let mut cmd = postie();
    cmd.args(["check", "/nonexistent/postie-check.eml", "--no-dns"]);
    run(cmd, None, LIMIT).assert_code(66, "unreadable file");
}

#[test]
fn stdin_is_read_for_dash() {
    let mut cmd = postie();
    cmd.args(["check", "-", "--no-dns"]);
    let out = run(cmd, Some(CLEAN.as_bytes()), LIMIT);
    out.assert_code(0, "stdin");
    assert!(out.stdout.starts_with("ok: "), "{}", out.describe());
}

fn zone() -> Zone {
    Zone::new()
        .txt("example.test", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt(
            "_dmarc.example.test",
            "v=DMARC1; p=reject; rua=mailto:d@example.test",
        )
}

fn with_dns(dns: &DnsServer, message: &[u8], extra: &[&str]) -> Outcome {
    let server = dns.addr().to_string();
    let mut args = vec!["--resolver", server.as_str()];
    args.extend_from_slice(extra);
    check(message, &args)
}

#[test]
fn spf_verdicts_with_ip_and_the_dmarc_policy() {
    let dns = zone().start();
    let pass = with_dns(&dns, CLEAN.as_bytes(), &["--ip", "192.0.2.7"]);
    pass.assert_code(0, "SPF pass");
    assert!(
        pass.stdout.contains("ok: spf-pass: "),
        "{}",
        pass.describe()
    );
    assert!(
        pass.stdout
            .contains("ok: dmarc-policy: DMARC policy for example.test: p=reject"),
        "{}",
        pass.describe()
    );

    let fail = with_dns(&dns, CLEAN.as_bytes(), &["--ip", "198.51.100.1", "--json"]);
    fail.assert_code(65, "SPF fail");
    let v: serde_json::Value = serde_json::from_str(&fail.stdout).unwrap();
    assert_eq!(v["dns"]["spf"]["result"], "fail", "{}", fail.describe());
    assert_eq!(v["dns"]["dmarc"]["policy"], "reject");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "spf-fail" && f["level"] == "error"),
        "{}",
        fail.describe()
    );

    // Without --ip the record is shown, not judged.
    let unknown = with_dns(&dns, CLEAN.as_bytes(), &[]);
    unknown.assert_code(0, "no --ip");
    assert!(
        unknown.stdout.contains("v=spf1 ip4:192.0.2.0/24 -all")
            && unknown.stdout.contains("not evaluated"),
        "{}",
        unknown.describe()
    );
}

#[test]
fn dkim_selector_missing_is_an_error_and_a_published_key_verifies() {
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
    let signature = DkimSigner::from_key(key)
        .domain("example.test")
        .selector("s1")
        .headers(["From", "To", "Date", "Subject", "Message-ID"])
        .sign(CLEAN.as_bytes())
        .unwrap();
    let signed = format!("{}{CLEAN}", signature.to_header());

    let missing = with_dns(&zone().start(), signed.as_bytes(), &[]);
    missing.assert_code(65, "selector missing");
    assert!(
        missing.stdout.contains(
            "error: dkim-key-missing: no DKIM key published at s1._domainkey.example.test"
        ),
        "{}",
        missing.describe()
    );

    let dns = zone()
        .txt(
            "s1._domainkey.example.test",
            &format!("v=DKIM1; k=ed25519; p={public}"),
        )
        .start();
    let good = with_dns(&dns, signed.as_bytes(), &[]);
    good.assert_code(0, "key published");
    assert!(
        good.stdout.contains("ok: dkim-pass: "),
        "{}",
        good.describe()
    );

    let tampered = signed.replace("Hi Bob.", "Hi Eve.");
    let bad = with_dns(&dns, tampered.as_bytes(), &[]);
    bad.assert_code(65, "tampered body");
    assert!(
        bad.stdout.contains("error: dkim-fail: "),
        "{}",
        bad.describe()
    );
}
